//! A schema's `config.notifications`, read into typed rules, with the JSON pointer of
//! everything wrong in it.
//!
//! Reading is lenient, like CAP: a malformed part is left out and the rest still
//! works, so a schema that is already stored keeps sending what it can. Every such
//! part is also reported as an [`Issue`]; the hook refuses a schema push with any
//! [`Severity::Error`] (CAP accepted such configs and then silently sent nothing).
//! Names capsule does not know (methods, conditions) are warnings, not errors: CAP
//! schemas name site-specific methods, and those simply yield nothing.

use serde::Serialize;
use serde_json::{Map, Value};

use super::render::{template_name, CheckError, Templates};
use super::rules::{is_well_formed_address, CONDITIONS, METHODS};
use crate::locate::escape_token;

/// The actions capsule fires.
pub const ACTIONS: [&str; 2] = ["publish", "review"];

/// How bad an [`Issue`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The config is broken here: a schema push is refused.
    Error,
    /// The config works, but probably not as meant.
    Warning,
}

/// One thing wrong in a notification config, at a JSON pointer of the schema file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    pub pointer: String,
    pub message: String,
    pub severity: Severity,
}

/// Every mail rule of a schema, by action, in the order written.
#[derive(Debug, Clone, Default)]
pub struct Notifications {
    pub actions: Vec<(String, Vec<MailRule>)>,
}

impl Notifications {
    /// The mail rules of one action (none when the action has none).
    pub fn rules(&self, action: &str) -> &[MailRule] {
        self.actions
            .iter()
            .find(|(name, _)| name == action)
            .map_or(&[], |(_, rules)| rules.as_slice())
    }
}

/// One mail config: produces at most one mail.
#[derive(Debug, Clone, Default)]
pub struct MailRule {
    /// Where it is in the schema file, e.g. `/config/notifications/actions/publish/0`.
    pub pointer: String,
    pub ctx: Vec<CtxItem>,
    pub subject: Option<SubjectRule>,
    pub body: Option<BodyRule>,
    pub recipients: RecipientsRule,
    /// The config names no `recipients` at all.
    pub no_recipients_key: bool,
}

/// One `ctx` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CtxItem {
    /// `{"name": N, "path": "a.b"}`: N is the deposit's value at the path.
    Path { name: String, path: String },
    /// `{"method": M}`: M is the method's result.
    Method(String),
}

#[derive(Debug, Clone, Default)]
pub struct SubjectRule {
    pub pointer: String,
    pub template: Option<String>,
    pub template_file: Option<String>,
    pub method: Option<String>,
    pub ctx: Vec<CtxItem>,
}

#[derive(Debug, Clone, Default)]
pub struct BodyRule {
    pub pointer: String,
    pub template: Option<String>,
    pub template_file: Option<String>,
    pub ctx: Vec<CtxItem>,
    pub plain: bool,
    pub base_template: Option<String>,
}

/// `recipients`, `cc` and `bcc`, each evaluated on its own.
#[derive(Debug, Clone, Default)]
pub struct RecipientsRule {
    pub to: Vec<RecipientItem>,
    pub cc: Vec<RecipientItem>,
    pub bcc: Vec<RecipientItem>,
}

/// One entry of a recipient list.
#[derive(Debug, Clone)]
pub enum RecipientItem {
    /// A literal address.
    Address(String),
    /// `checks`/`op` gate the whole entry; `method` and `mails` add addresses.
    Rule {
        pointer: String,
        checks: Option<Checks>,
        methods: Vec<String>,
        default: Vec<String>,
        formatted: Vec<Formatted>,
    },
}

/// `{"template": ..., "ctx": [...]}`: one address from a template.
#[derive(Debug, Clone)]
pub struct Formatted {
    pub pointer: String,
    pub template: Option<String>,
    pub ctx: Vec<CtxItem>,
}

/// A group of checks joined by `op`.
#[derive(Debug, Clone, PartialEq)]
pub struct Checks {
    pub op: Op,
    pub items: Vec<Check>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    And,
    Or,
    /// Not `and` or `or`: a config error, and false at run time.
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    Group(Checks),
    Condition {
        path: Option<String>,
        condition: String,
        value: Value,
    },
    /// Neither a group nor a condition: false, as in CAP.
    Malformed,
}

/// Reads `config.notifications` from a schema's `config` value. `base` is where
/// `config` sits in the file (`/config`).
pub fn parse(config: &Value, base: &str) -> (Notifications, Vec<Issue>) {
    let mut reader = Reader { issues: Vec::new() };
    let notifications = match config.get("notifications") {
        None | Some(Value::Null) => Notifications::default(),
        Some(value) => reader.notifications(value, &format!("{base}/notifications")),
    };
    (notifications, reader.issues)
}

/// Checks the templates a config names against the archive's templates: inline
/// templates compile, template files and base templates exist and compile.
pub fn check_templates(notifications: &Notifications, templates: &Templates) -> Vec<Issue> {
    let mut issues = Vec::new();
    let mut error = |pointer: String, message: String| {
        issues.push(Issue {
            pointer,
            message,
            severity: Severity::Error,
        })
    };
    let mut inline = |pointer: String, source: &Option<String>| {
        if let Some(source) = source {
            match templates.check_str(source) {
                Ok(()) => {}
                Err(CheckError::Compile(e)) => {
                    error(pointer, format!("the template does not compile: {e}"))
                }
                Err(CheckError::Limit(e)) => {
                    error(pointer, format!("the template is refused: {e}"))
                }
            }
        }
    };
    let mut file_checks: Vec<(String, String)> = Vec::new();
    for (_, rules) in &notifications.actions {
        for rule in rules {
            if let Some(subject) = &rule.subject {
                inline(format!("{}/template", subject.pointer), &subject.template);
                if let Some(name) = &subject.template_file {
                    file_checks.push((format!("{}/template_file", subject.pointer), name.clone()));
                }
            }
            if let Some(body) = &rule.body {
                inline(format!("{}/template", body.pointer), &body.template);
                if let Some(name) = &body.template_file {
                    file_checks.push((format!("{}/template_file", body.pointer), name.clone()));
                }
                if let Some(name) = &body.base_template {
                    file_checks.push((format!("{}/base_template", body.pointer), name.clone()));
                }
            }
            for list in [
                &rule.recipients.to,
                &rule.recipients.cc,
                &rule.recipients.bcc,
            ] {
                for item in list {
                    if let RecipientItem::Rule { formatted, .. } = item {
                        for f in formatted {
                            inline(format!("{}/template", f.pointer), &f.template);
                        }
                    }
                }
            }
        }
    }
    for (pointer, name) in file_checks {
        // Names were normalised when read; an unusable name was reported then.
        let Ok(name) = template_name(&name) else {
            continue;
        };
        if !templates.exists(&name) {
            error(
                pointer,
                format!(
                    "template file {name} does not exist: add templates/{name} to the archive (in this push or before it), or fix the name"
                ),
            );
        } else {
            match templates.check_file(&name) {
                Ok(()) => {}
                Err(CheckError::Compile(e)) => error(
                    pointer,
                    format!("template file {name} does not compile: {e}"),
                ),
                Err(CheckError::Limit(e)) => {
                    error(pointer, format!("template file {name} is refused: {e}"))
                }
            }
        }
    }
    issues
}

/// Whether any rule names the template `name` (`mail/...`) as a file or layout.
pub fn names_template(notifications: &Notifications, name: &str) -> bool {
    notifications
        .actions
        .iter()
        .flat_map(|(_, rules)| rules)
        .any(|rule| {
            let subject = rule
                .subject
                .as_ref()
                .and_then(|s| s.template_file.as_deref());
            let body = rule.body.as_ref();
            [
                subject,
                body.and_then(|b| b.template_file.as_deref()),
                body.and_then(|b| b.base_template.as_deref()),
            ]
            .contains(&Some(name))
        })
}

struct Reader {
    issues: Vec<Issue>,
}

fn child(pointer: &str, key: &str) -> String {
    format!("{pointer}/{}", escape_token(key))
}

impl Reader {
    fn error(&mut self, pointer: &str, message: impl Into<String>) {
        self.issues.push(Issue {
            pointer: pointer.to_string(),
            message: message.into(),
            severity: Severity::Error,
        });
    }

    fn warning(&mut self, pointer: &str, message: impl Into<String>) {
        self.issues.push(Issue {
            pointer: pointer.to_string(),
            message: message.into(),
            severity: Severity::Warning,
        });
    }

    fn object<'v>(
        &mut self,
        value: &'v Value,
        pointer: &str,
        what: &str,
    ) -> Option<&'v Map<String, Value>> {
        match value {
            Value::Object(map) => Some(map),
            other => {
                self.error(
                    pointer,
                    format!("{what} must be an object, not {}", crate::json::kind(other)),
                );
                None
            }
        }
    }

    fn list<'v>(&mut self, value: &'v Value, pointer: &str, what: &str) -> &'v [Value] {
        match value {
            Value::Array(items) => items,
            other => {
                self.error(
                    pointer,
                    format!("{what} must be a list, not {}", crate::json::kind(other)),
                );
                &[]
            }
        }
    }

    fn known_keys(
        &mut self,
        map: &Map<String, Value>,
        pointer: &str,
        what: &str,
        allowed: &[&str],
    ) {
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                self.error(
                    &child(pointer, key),
                    format!(
                        "unknown key `{key}` in {what}; the keys are {}",
                        allowed
                            .iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        }
    }

    fn string(&mut self, map: &Map<String, Value>, key: &str, pointer: &str) -> Option<String> {
        match map.get(key)? {
            Value::String(s) => Some(s.clone()),
            other => {
                self.error(
                    &child(pointer, key),
                    format!("`{key}` must be a string, not {}", crate::json::kind(other)),
                );
                None
            }
        }
    }

    fn template_file(
        &mut self,
        map: &Map<String, Value>,
        key: &str,
        pointer: &str,
    ) -> Option<String> {
        let name = self.string(map, key, pointer)?;
        match template_name(&name) {
            Ok(normalised) => Some(normalised),
            Err(why) => {
                self.error(&child(pointer, key), why);
                None
            }
        }
    }

    fn method_name(&mut self, name: &str, pointer: &str) {
        if !METHODS.contains(&name) {
            self.warning(
                pointer,
                format!(
                    "`{name}` is not a capsule method, so it yields nothing; the methods are {}",
                    METHODS.join(", ")
                ),
            );
        }
    }

    fn notifications(&mut self, value: &Value, pointer: &str) -> Notifications {
        let mut out = Notifications::default();
        let Some(map) = self.object(value, pointer, "`notifications`") else {
            return out;
        };
        self.known_keys(map, pointer, "`notifications`", &["actions"]);
        let Some(actions) = map.get("actions") else {
            return out;
        };
        let actions_pointer = child(pointer, "actions");
        let Some(actions) = self.object(actions, &actions_pointer, "`actions`") else {
            return out;
        };
        for (name, rules) in actions {
            let action_pointer = child(&actions_pointer, name);
            if !ACTIONS.contains(&name.as_str()) {
                self.error(
                    &action_pointer,
                    format!(
                        "`{name}` is not an action capsule fires; the actions are {}",
                        ACTIONS.join(", ")
                    ),
                );
                continue;
            }
            let items = self.list(rules, &action_pointer, &format!("action `{name}`"));
            let mut parsed = Vec::new();
            for (i, item) in items.iter().enumerate() {
                if let Some(rule) = self.mail_rule(item, &format!("{action_pointer}/{i}")) {
                    parsed.push(rule);
                }
            }
            out.actions.push((name.clone(), parsed));
        }
        out
    }

    fn mail_rule(&mut self, value: &Value, pointer: &str) -> Option<MailRule> {
        let map = self.object(value, pointer, "a mail config")?;
        self.known_keys(
            map,
            pointer,
            "a mail config",
            &["ctx", "subject", "body", "recipients"],
        );
        let mut rule = MailRule {
            pointer: pointer.to_string(),
            ctx: self.ctx(map, pointer),
            ..MailRule::default()
        };
        if let Some(subject) = map.get("subject") {
            let p = child(pointer, "subject");
            if let Some(s) = self.object(subject, &p, "`subject`") {
                self.known_keys(
                    s,
                    &p,
                    "`subject`",
                    &["template", "template_file", "method", "ctx"],
                );
                let method = self.string(s, "method", &p);
                if let Some(m) = &method {
                    self.method_name(m, &child(&p, "method"));
                }
                rule.subject = Some(SubjectRule {
                    template: self.string(s, "template", &p),
                    template_file: self.template_file(s, "template_file", &p),
                    method,
                    ctx: self.ctx(s, &p),
                    pointer: p,
                });
            }
        }
        if let Some(body) = map.get("body") {
            let p = child(pointer, "body");
            if let Some(b) = self.object(body, &p, "`body`") {
                self.known_keys(
                    b,
                    &p,
                    "`body`",
                    &["template", "template_file", "ctx", "plain", "base_template"],
                );
                let plain = match b.get("plain") {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(v)) => *v,
                    Some(other) => {
                        self.error(
                            &child(&p, "plain"),
                            format!(
                                "`plain` must be true or false, not {}",
                                crate::json::kind(other)
                            ),
                        );
                        false
                    }
                };
                rule.body = Some(BodyRule {
                    template: self.string(b, "template", &p),
                    template_file: self.template_file(b, "template_file", &p),
                    ctx: self.ctx(b, &p),
                    plain,
                    base_template: self.template_file(b, "base_template", &p),
                    pointer: p,
                });
            }
        }
        match map.get("recipients") {
            None => {
                rule.no_recipients_key = true;
                self.warning(
                    pointer,
                    "this mail config has no `recipients`: it reaches only the fallback recipients of capsule.toml, or nobody",
                );
            }
            Some(value) => {
                let p = child(pointer, "recipients");
                if let Some(r) = self.object(value, &p, "`recipients`") {
                    self.known_keys(r, &p, "`recipients`", &["recipients", "cc", "bcc"]);
                    rule.recipients = RecipientsRule {
                        to: self.recipient_list(r, "recipients", &p),
                        cc: self.recipient_list(r, "cc", &p),
                        bcc: self.recipient_list(r, "bcc", &p),
                    };
                }
            }
        }
        Some(rule)
    }

    fn ctx(&mut self, map: &Map<String, Value>, pointer: &str) -> Vec<CtxItem> {
        let Some(value) = map.get("ctx") else {
            return Vec::new();
        };
        let p = child(pointer, "ctx");
        let mut out = Vec::new();
        for (i, item) in self.list(value, &p, "`ctx`").iter().enumerate() {
            let ip = format!("{p}/{i}");
            let Some(m) = self.object(item, &ip, "a ctx entry") else {
                continue;
            };
            // Extra keys such as CAP's `"type": "path"` are ignored, as CAP does.
            let name = self.string(m, "name", &ip);
            let path = self.string(m, "path", &ip);
            let method = self.string(m, "method", &ip);
            match (name, path, method) {
                (Some(name), Some(path), _) => out.push(CtxItem::Path { name, path }),
                (_, _, Some(method)) => {
                    self.method_name(&method, &child(&ip, "method"));
                    out.push(CtxItem::Method(method));
                }
                (Some(_), None, None) => {
                    self.error(&ip, "a ctx entry with a `name` needs a `path`")
                }
                (None, Some(_), None) => {
                    self.error(&ip, "a ctx entry with a `path` needs a `name`")
                }
                (None, None, None) => {
                    if !m
                        .keys()
                        .any(|k| ["name", "path", "method"].contains(&k.as_str()))
                    {
                        self.error(&ip, "a ctx entry is `{\"name\": ..., \"path\": ...}` or `{\"method\": ...}`");
                    }
                }
            }
        }
        out
    }

    fn recipient_list(
        &mut self,
        map: &Map<String, Value>,
        key: &str,
        pointer: &str,
    ) -> Vec<RecipientItem> {
        let Some(value) = map.get(key) else {
            return Vec::new();
        };
        let p = child(pointer, key);
        let mut out = Vec::new();
        for (i, item) in self.list(value, &p, &format!("`{key}`")).iter().enumerate() {
            let ip = format!("{p}/{i}");
            match item {
                Value::String(address) => {
                    self.address(address, &ip);
                    out.push(RecipientItem::Address(address.clone()));
                }
                Value::Object(m) => {
                    if let Some(rule) = self.recipient_rule(m, &ip) {
                        out.push(rule);
                    }
                }
                other => self.error(
                    &ip,
                    format!(
                        "a recipient is an address or an object, not {}",
                        crate::json::kind(other)
                    ),
                ),
            }
        }
        out
    }

    fn address(&mut self, address: &str, pointer: &str) {
        if !is_well_formed_address(address) {
            self.warning(
                pointer,
                format!("`{address}` is not a well-formed e-mail address, so it is dropped"),
            );
        }
    }

    fn recipient_rule(&mut self, m: &Map<String, Value>, pointer: &str) -> Option<RecipientItem> {
        self.known_keys(
            m,
            pointer,
            "a recipient entry",
            &["checks", "op", "method", "mails"],
        );
        let checks = match m.get("checks") {
            None => {
                if m.contains_key("op") {
                    self.op(m, pointer);
                }
                None
            }
            Some(_) => Some(self.checks(m, pointer)),
        };
        let mut methods = Vec::new();
        match m.get("method") {
            None => {}
            Some(Value::String(name)) => {
                self.method_name(name, &child(pointer, "method"));
                methods.push(name.clone());
            }
            Some(Value::Array(names)) => {
                for (i, name) in names.iter().enumerate() {
                    let np = format!("{}/{i}", child(pointer, "method"));
                    match name {
                        Value::String(name) => {
                            self.method_name(name, &np);
                            methods.push(name.clone());
                        }
                        other => self.error(
                            &np,
                            format!(
                                "a method name must be a string, not {}",
                                crate::json::kind(other)
                            ),
                        ),
                    }
                }
            }
            Some(other) => self.error(
                &child(pointer, "method"),
                format!(
                    "`method` must be a name or a list of names, not {}",
                    crate::json::kind(other)
                ),
            ),
        }
        let mut default = Vec::new();
        let mut formatted = Vec::new();
        if let Some(mails) = m.get("mails") {
            let mp = child(pointer, "mails");
            if let Some(mails) = self.object(mails, &mp, "`mails`") {
                self.known_keys(mails, &mp, "`mails`", &["default", "formatted"]);
                if let Some(list) = mails.get("default") {
                    let dp = child(&mp, "default");
                    for (i, address) in self.list(list, &dp, "`default`").iter().enumerate() {
                        let ap = format!("{dp}/{i}");
                        match address {
                            Value::String(a) => {
                                self.address(a, &ap);
                                default.push(a.clone());
                            }
                            other => self.error(
                                &ap,
                                format!(
                                    "an address must be a string, not {}",
                                    crate::json::kind(other)
                                ),
                            ),
                        }
                    }
                }
                if let Some(list) = mails.get("formatted") {
                    let fp = child(&mp, "formatted");
                    for (i, item) in self.list(list, &fp, "`formatted`").iter().enumerate() {
                        let ip = format!("{fp}/{i}");
                        let Some(f) = self.object(item, &ip, "a formatted address") else {
                            continue;
                        };
                        self.known_keys(f, &ip, "a formatted address", &["template", "ctx"]);
                        let template = self.string(f, "template", &ip);
                        if template.is_none() && !f.contains_key("template") {
                            self.error(&ip, "a formatted address needs a `template`");
                        }
                        formatted.push(Formatted {
                            template,
                            ctx: self.ctx(f, &ip),
                            pointer: ip,
                        });
                    }
                }
            }
        }
        Some(RecipientItem::Rule {
            pointer: pointer.to_string(),
            checks,
            methods,
            default,
            formatted,
        })
    }

    fn op(&mut self, m: &Map<String, Value>, pointer: &str) -> Op {
        match m.get("op") {
            None | Some(Value::Null) => Op::And,
            Some(Value::String(op)) => match op.to_ascii_lowercase().as_str() {
                "and" => Op::And,
                "or" => Op::Or,
                _ => {
                    self.error(
                        &child(pointer, "op"),
                        format!("`{op}` is not an op: use \"and\" or \"or\""),
                    );
                    Op::Invalid(op.clone())
                }
            },
            Some(other) => {
                self.error(
                    &child(pointer, "op"),
                    format!(
                        "`op` must be \"and\" or \"or\", not {}",
                        crate::json::kind(other)
                    ),
                );
                Op::Invalid(other.to_string())
            }
        }
    }

    /// The `checks` (and `op`) of a recipient entry or of a nested group.
    fn checks(&mut self, m: &Map<String, Value>, pointer: &str) -> Checks {
        let op = self.op(m, pointer);
        let cp = child(pointer, "checks");
        let mut items = Vec::new();
        let list = m.get("checks").cloned().unwrap_or(Value::Array(Vec::new()));
        for (i, check) in self.list(&list, &cp, "`checks`").iter().enumerate() {
            let ip = format!("{cp}/{i}");
            let Some(c) = self.object(check, &ip, "a check") else {
                items.push(Check::Malformed);
                continue;
            };
            if c.contains_key("checks") {
                self.known_keys(c, &ip, "a group of checks", &["checks", "op"]);
                items.push(Check::Group(self.checks(c, &ip)));
                continue;
            }
            self.known_keys(
                c,
                &ip,
                "a check",
                &["path", "condition", "if", "value", "params"],
            );
            let path = self.string(c, "path", &ip);
            let condition = self
                .string(c, "condition", &ip)
                .or_else(|| self.string(c, "if", &ip));
            let Some(condition) = condition else {
                if !c.contains_key("condition") && !c.contains_key("if") {
                    self.error(
                        &ip,
                        format!("a check needs a `condition` ({})", CONDITIONS.join(", ")),
                    );
                }
                items.push(Check::Malformed);
                continue;
            };
            if !CONDITIONS.contains(&condition.as_str()) {
                self.warning(
                    &child(&ip, if c.contains_key("condition") { "condition" } else { "if" }),
                    format!(
                        "`{condition}` is not a condition, so this check is always false; the conditions are {}",
                        CONDITIONS.join(", ")
                    ),
                );
            } else if condition != "is_egroup_member" && path.is_none() {
                self.error(&ip, format!("the condition `{condition}` needs a `path`"));
            }
            items.push(Check::Condition {
                path,
                condition,
                value: c.get("value").cloned().unwrap_or(Value::Bool(true)),
            });
        }
        Checks { op, items }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(config: Value) -> Vec<(String, String)> {
        let (_, issues) = parse(&config, "/config");
        issues
            .into_iter()
            .filter(|i| i.severity == Severity::Error)
            .map(|i| (i.pointer, i.message))
            .collect()
    }

    #[test]
    fn a_correct_config_reads_without_issues() {
        let config = json!({"notifications": {"actions": {"publish": [{
            "ctx": [{"name": "t", "path": "general_title", "type": "path"}, {"method": "revision"}],
            "subject": {"template": "{{ t }}", "ctx": []},
            "body": {"template_file": "mail/publish.html", "plain": false, "base_template": "mail/base.html"},
            "recipients": {
                "recipients": ["aa@example.org", {"method": ["get_owner", "get_submitter"]}],
                "cc": [{"op": "OR", "checks": [
                    {"path": "x", "condition": "exists"},
                    {"op": "and", "checks": [{"path": "y", "if": "equals", "value": 3}]}
                ], "mails": {"default": ["bb@example.org"], "formatted": [{"template": "{{ t }}@example.org", "ctx": []}]}}]
            }
        }]}}});
        let (n, issues) = parse(&config, "/config");
        assert!(issues.is_empty(), "{issues:?}");
        let rule = &n.rules("publish")[0];
        assert_eq!(rule.pointer, "/config/notifications/actions/publish/0");
        assert_eq!(rule.ctx.len(), 2);
        assert_eq!(rule.recipients.to.len(), 2);
        let RecipientItem::Rule {
            checks: Some(checks),
            ..
        } = &rule.recipients.cc[0]
        else {
            panic!("a rule")
        };
        assert_eq!(checks.op, Op::Or);
        assert!(matches!(&checks.items[1], Check::Group(g) if g.op == Op::And));
        assert!(n.rules("review").is_empty());
    }

    #[test]
    fn unknown_keys_and_wrong_types_have_pointers() {
        let found = errors(json!({"notifications": {
            "actions": {
                "publsh": [],
                "publish": [{
                    "subjct": {},
                    "subject": {"template": 3},
                    "body": {"plain": "yes", "template_file": "../x"},
                    "recipients": {"to": [], "bcc": [7, {"method": 1, "mails": {"default": "a@b.org"}}]}
                }],
                "review": {}
            },
            "extra": 1
        }}));
        let pointers: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        for expected in [
            "/config/notifications/extra",
            "/config/notifications/actions/publsh",
            "/config/notifications/actions/publish/0/subjct",
            "/config/notifications/actions/publish/0/subject/template",
            "/config/notifications/actions/publish/0/body/plain",
            "/config/notifications/actions/publish/0/body/template_file",
            "/config/notifications/actions/publish/0/recipients/to",
            "/config/notifications/actions/publish/0/recipients/bcc/0",
            "/config/notifications/actions/publish/0/recipients/bcc/1/method",
            "/config/notifications/actions/publish/0/recipients/bcc/1/mails/default",
            "/config/notifications/actions/review",
        ] {
            assert!(
                pointers.contains(&expected),
                "{expected} missing from {found:#?}"
            );
        }
    }

    #[test]
    fn op_is_case_insensitive_and_anything_else_is_an_error() {
        let config = |op: &str| {
            json!({"notifications": {"actions": {"publish": [{"recipients": {"recipients": [
                {"op": op, "checks": [{"path": "x", "condition": "exists"}], "mails": {"default": ["aa@example.org"]}}
            ]}}]}}})
        };
        for op in ["and", "AND", "Or", "oR"] {
            assert!(errors(config(op)).is_empty(), "{op}");
        }
        let found = errors(config("xor"));
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].0,
            "/config/notifications/actions/publish/0/recipients/recipients/0/op"
        );
    }

    #[test]
    fn unknown_names_are_warnings_not_errors() {
        let config = json!({"notifications": {"actions": {"publish": [{
            "ctx": [{"method": "cms_stats_committee_by_pag"}],
            "recipients": {"bcc": [
                {"method": "get_cms_stat_recipients"},
                {"checks": [{"path": "x", "condition": "is_bigger"}], "mails": {"default": ["x@y"]}}
            ]}
        }]}}});
        let (_, issues) = parse(&config, "/config");
        assert!(
            issues.iter().all(|i| i.severity == Severity::Warning),
            "{issues:#?}"
        );
        assert_eq!(issues.len(), 4, "{issues:#?}");
    }

    #[test]
    fn templates_must_compile_and_files_must_exist() {
        let config = json!({"notifications": {"actions": {"review": [{
            "subject": {"template": "{% if x %}no end"},
            "body": {"template_file": "mail/missing.html", "base_template": "mail/base.html"},
            "recipients": {"recipients": [{"mails": {"formatted": [{"template": "{{ x }"}]}}]}
        }, {
            "body": {"template_file": "body/experiments/cms/questionnaire_message_review.html",
                     "base_template": "analysis_plain_text.html", "plain": true},
            "recipients": {"recipients": ["aa@example.org"]}
        }]}}});
        let (n, issues) = parse(&config, "/config");
        assert!(issues.is_empty(), "{issues:?}");
        let found = check_templates(&n, &Templates::embedded());
        let pointers: Vec<&str> = found.iter().map(|i| i.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/config/notifications/actions/review/0/subject/template",
                "/config/notifications/actions/review/0/recipients/recipients/0/mails/formatted/0/template",
                "/config/notifications/actions/review/0/body/template_file",
            ],
            "{found:#?}"
        );
    }
}
