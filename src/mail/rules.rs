//! Evaluating a schema's mail rules against one event, exactly as NOTIFICATIONS.md
//! (and CAP before it) defines them: ctx and its precedence, the built-in variables
//! and methods, checks, recipients, subject and body.
//!
//! Nothing here reads a repository or the clock: an [`Event`] carries everything a
//! rule may ask about, so the same event always gives the same mails.

use std::collections::BTreeMap;

use minijinja::value::{Serde, Value as TemplateValue};
use serde::Serialize;
use serde_json::Value;

use super::config::{
    BodyRule, Check, Checks, CtxItem, MailRule, Notifications, Op, RecipientItem, SubjectRule,
};
use super::render::{Markup, TemplateError, Templates, DEFAULT_LAYOUT};
use super::text::html_to_text;
use crate::access::{Access, DepositAccess};

/// The built-in methods, usable in `ctx`, `subject.method` and recipient `method`.
pub const METHODS: [&str; 11] = [
    "published_id",
    "draft_id",
    "revision",
    "draft_revision",
    "draft_url",
    "published_url",
    "working_url",
    "submitter_email",
    "creator_email",
    "get_submitter",
    "get_owner",
];

/// The conditions a check may use.
pub const CONDITIONS: [&str; 6] = [
    "equals",
    "not_equals",
    "exists",
    "is_in",
    "is_not_in",
    "is_egroup_member",
];

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A record version tag landed.
    Publish,
    /// A review, or a comment on one, landed.
    Review,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Publish => "publish",
            Action::Review => "review",
        }
    }

    pub fn parse(text: &str) -> Option<Action> {
        match text {
            "publish" => Some(Action::Publish),
            "review" => Some(Action::Review),
            _ => None,
        }
    }
}

/// A review or comment as mails see it (the `capsule.review` variable).
#[derive(Debug, Clone, Serialize)]
pub struct ReviewView {
    /// `review` or `comment`.
    pub kind: String,
    /// The verdict of a review: approved, request_changes, declined.
    #[serde(rename = "type")]
    pub verdict: Option<String>,
    pub body: String,
    pub author: String,
    pub created: String,
    /// The review file's name without `.json`.
    pub name: String,
    /// The review a comment belongs to.
    pub review: Option<String>,
    /// A link to the review (or, for a comment, to the review it answers).
    pub url: String,
}

/// The `capsule` variable: what the default templates (and any other) may show
/// beyond CAP's built-ins.
#[derive(Debug, Serialize)]
struct CapsuleView<'a> {
    archive: &'a str,
    deposit_id: &'a str,
    title: String,
    version: Option<u32>,
    pusher: Option<&'a str>,
    review: Option<ReviewView>,
}

/// One event, with everything rules may ask about it.
#[derive(Debug, Clone)]
pub struct Event {
    pub action: Action,
    pub deposit_id: String,
    /// The deposit as it is at the event's commit.
    pub deposit: Value,
    /// The record version published (publish), or the latest one (review); `None`
    /// when the deposit was never published.
    pub record_version: Option<u32>,
    /// Who pushed (the submitter).
    pub pusher: Option<String>,
    /// The review, for a review event.
    pub review: Option<ReviewView>,
    /// How many earlier versions of the draft there are (0 for its first commit),
    /// when known.
    pub draft_revision: Option<u64>,
}

/// The archive an event happened in.
#[derive(Debug, Clone, Copy)]
pub struct ArchiveView<'a> {
    pub name: &'a str,
    /// Where links start (no trailing slash needed).
    pub base_url: &'a str,
    pub access: &'a Access,
    /// The sender of every mail.
    pub from: &'a str,
    /// Who gets a mail whose rules name nobody.
    pub fallback: &'a [String],
}

/// One mail, rendered: what the outbox stores and `capsule notify preview` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Mail {
    pub action: String,
    /// The JSON pointer of the mail config that made it.
    pub rule: String,
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub subject: String,
    /// The body of a plain-text mail, or the plain-text part of an HTML mail
    /// (multipart/alternative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The body of an HTML mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// The rules named nobody, so the mail goes to capsule.toml's fallback recipients.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fallback: bool,
}

/// What one mail config came to.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// A mail to send.
    Mail(Mail),
    /// The rules named nobody and there are no fallback recipients: no mail.
    NoRecipients { rule: String },
    /// The subject or body could not be rendered: no mail from this config.
    Failed { rule: String, reason: String },
}

/// Something worth telling about an evaluation that did not stop a mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    pub rule: String,
    pub message: String,
}

/// Every outcome of one action's rules, with notes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Evaluation {
    pub outcomes: Vec<Outcome>,
    pub notes: Vec<Note>,
}

type Vars = BTreeMap<String, Value>;

/// Evaluates every mail config of `event.action`. A failing config never stops the others.
pub fn evaluate(
    notifications: &Notifications,
    archive: ArchiveView<'_>,
    event: &Event,
    templates: &Templates,
) -> Evaluation {
    let engine = Engine {
        archive,
        event,
        templates,
    };
    let mut evaluation = Evaluation::default();
    for rule in notifications.rules(event.action.as_str()) {
        let outcome = engine.mail(rule, &mut evaluation.notes);
        evaluation.outcomes.push(outcome);
    }
    evaluation
}

struct Engine<'a> {
    archive: ArchiveView<'a>,
    event: &'a Event,
    templates: &'a Templates,
}

impl Engine<'_> {
    fn base_url(&self) -> &str {
        self.archive.base_url.trim_end_matches('/')
    }

    fn email_of(&self, user: &str) -> Option<String> {
        if let Some(email) = self.archive.access.email(user) {
            return Some(email.to_string());
        }
        user.contains('@').then(|| user.to_string())
    }

    /// The record's page on the public site, which only has records everyone may read.
    fn published_url(&self) -> Option<String> {
        self.event
            .record_version
            .filter(|_| DepositAccess::of(&self.event.deposit).is_public())
            .map(|_| format!("{}/records/{}/", self.base_url(), self.event.deposit_id))
    }

    fn draft_url(&self) -> String {
        format!("{}/drafts/{}/", self.base_url(), self.event.deposit_id)
    }

    fn submitter_email(&self) -> Option<String> {
        self.event.pusher.as_deref().and_then(|u| self.email_of(u))
    }

    fn creator_email(&self) -> Option<String> {
        DepositAccess::of(&self.event.deposit)
            .owners
            .first()
            .and_then(|owner| self.email_of(owner))
    }

    /// A built-in method's value; `None` for a method capsule does not have.
    fn method(&self, name: &str) -> Option<Value> {
        let text = |s: Option<String>| s.map_or(Value::Null, Value::String);
        let list = |s: Option<String>| Value::Array(s.into_iter().map(Value::String).collect());
        let event = self.event;
        Some(match name {
            "published_id" => match event.record_version {
                Some(_) => Value::String(event.deposit_id.clone()),
                None => Value::Null,
            },
            "draft_id" => Value::String(event.deposit_id.clone()),
            "revision" => event
                .record_version
                .map_or(Value::Null, |v| Value::from(v.saturating_sub(1))),
            "draft_revision" => event.draft_revision.map_or(Value::Null, Value::from),
            "draft_url" => Value::String(self.draft_url()),
            "published_url" => text(self.published_url()),
            "working_url" => {
                Value::String(self.published_url().unwrap_or_else(|| self.draft_url()))
            }
            "submitter_email" => text(self.submitter_email()),
            "creator_email" => text(self.creator_email()),
            "get_submitter" => list(self.submitter_email()),
            "get_owner" => list(self.creator_email()),
            _ => return None,
        })
    }

    /// The variables every template sees (NOTIFICATIONS.md's built-ins, plus the
    /// `capsule` object that the default templates use).
    fn builtins(&self) -> Vars {
        let event = self.event;
        let mut vars = Vars::new();
        vars.insert("action".into(), Value::String(event.action.as_str().into()));
        vars.insert(
            "base_url".into(),
            Value::String(self.archive.base_url.into()),
        );
        for method in ["published_id", "draft_id", "revision", "working_url"] {
            vars.insert(method.into(), self.method(method).unwrap_or(Value::Null));
        }
        vars.insert(
            "submitter_id".into(),
            event.pusher.clone().map_or(Value::Null, Value::String),
        );
        let title = ["general_title", "title"]
            .iter()
            .find_map(|key| event.deposit.get(key).and_then(Value::as_str))
            .filter(|t| !t.trim().is_empty())
            .unwrap_or(&event.deposit_id)
            .to_string();
        let review = event.review.clone().map(|mut review| {
            let anchor = review.review.clone().unwrap_or_else(|| review.name.clone());
            let page = self.published_url().unwrap_or_else(|| self.draft_url());
            review.url = format!("{page}#review-{anchor}");
            review
        });
        let view = CapsuleView {
            archive: self.archive.name,
            deposit_id: &event.deposit_id,
            title,
            version: event.record_version,
            pusher: event.pusher.as_deref(),
            review,
        };
        vars.insert(
            "capsule".into(),
            serde_json::to_value(view).expect("a view serialises"),
        );
        vars
    }

    fn ctx_vars(&self, ctx: &[CtxItem]) -> Vars {
        let mut vars = Vars::new();
        for item in ctx {
            match item {
                CtxItem::Path { name, path } => {
                    vars.insert(
                        name.clone(),
                        lookup(&self.event.deposit, path)
                            .cloned()
                            .unwrap_or(Value::Null),
                    );
                }
                CtxItem::Method(name) => {
                    // An unknown method leaves the variable unset.
                    if let Some(value) = self.method(name) {
                        vars.insert(name.clone(), value);
                    }
                }
            }
        }
        vars
    }

    /// The item's own ctx over the built-ins, the built-ins over the config-level ctx.
    fn merged(&self, config: &Vars, builtins: &Vars, own: &[CtxItem]) -> Vars {
        let mut vars = config.clone();
        vars.extend(builtins.clone());
        vars.extend(self.ctx_vars(own));
        vars
    }

    fn mail(&self, rule: &MailRule, notes: &mut Vec<Note>) -> Outcome {
        let config = self.ctx_vars(&rule.ctx);
        let builtins = self.builtins();
        let mut note = |message: String| {
            notes.push(Note {
                rule: rule.pointer.clone(),
                message,
            })
        };

        let mut to = self.recipients(&rule.recipients.to, &config, &builtins, &mut note);
        let cc = self.recipients(&rule.recipients.cc, &config, &builtins, &mut note);
        let bcc = self.recipients(&rule.recipients.bcc, &config, &builtins, &mut note);
        let mut fallback = false;
        if to.is_empty() && cc.is_empty() && bcc.is_empty() {
            to = clean_addresses(self.archive.fallback.iter().cloned());
            if to.is_empty() {
                return Outcome::NoRecipients {
                    rule: rule.pointer.clone(),
                };
            }
            fallback = true;
        }

        let failed = |what: &str, e: TemplateError| Outcome::Failed {
            rule: rule.pointer.clone(),
            reason: format!("the {what} could not be rendered: {e}"),
        };
        let subject = match self.subject(rule.subject.as_ref(), &config, &builtins) {
            Ok(subject) => subject,
            Err(e) => return failed("subject", e),
        };
        let (text, html) = match self.body(rule.body.as_ref(), &config, &builtins, &subject) {
            Ok(body) => body,
            Err(e) => return failed("body", e),
        };
        Outcome::Mail(Mail {
            action: self.event.action.as_str().into(),
            rule: rule.pointer.clone(),
            from: self.archive.from.into(),
            to,
            cc,
            bcc,
            subject,
            text,
            html,
            fallback,
        })
    }

    fn default_subject(&self) -> String {
        match self.event.action {
            Action::Publish => format!("New published document | {}", self.archive.name),
            Action::Review => format!("New review on document | {}", self.archive.name),
        }
    }

    fn subject(
        &self,
        rule: Option<&SubjectRule>,
        config: &Vars,
        builtins: &Vars,
    ) -> Result<String, TemplateError> {
        let Some(rule) = rule else {
            return Ok(self.default_subject());
        };
        let rendered = if let Some(method) = &rule.method {
            // `method` wins over `template`; an unknown method (or no value) gives the default.
            match self.method(method) {
                Some(Value::String(s)) => s,
                Some(Value::Null) | None => self.default_subject(),
                Some(other) => other.to_string(),
            }
        } else {
            let vars = template_vars(self.merged(config, builtins, &rule.ctx));
            if let Some(source) = &rule.template {
                self.templates.render_str(source, &vars, Markup::Text)?
            } else if let Some(name) = &rule.template_file {
                self.templates.render_file(name, &vars, Markup::Text)?
            } else {
                self.default_subject()
            }
        };
        Ok(one_line(&rendered))
    }

    /// `(text, html)`: a plain mail has only text; an HTML mail has both, its text
    /// being the plain part of a multipart/alternative mail. That part is rendered
    /// from the plain default template when the body is the default one (the
    /// config gives no template, so capsule's own `.txt` twin exists), and derived
    /// from the HTML otherwise: a schema's HTML template has no plain twin, and
    /// guessing one by file name would mail a text the author never wrote.
    fn body(
        &self,
        rule: Option<&BodyRule>,
        config: &Vars,
        builtins: &Vars,
        subject: &str,
    ) -> Result<(Option<String>, Option<String>), TemplateError> {
        let default_rule = BodyRule::default();
        let rule = rule.unwrap_or(&default_rule);
        let markup = if rule.plain {
            Markup::Text
        } else {
            Markup::Html
        };
        let vars = self.merged(config, builtins, &rule.ctx);
        let template_vars_now = template_vars(vars.clone());
        let content = if let Some(source) = &rule.template {
            self.templates
                .render_str(source, &template_vars_now, markup)?
        } else if let Some(name) = &rule.template_file {
            self.templates
                .render_file(name, &template_vars_now, markup)?
        } else {
            let name = match (self.event.action, markup) {
                (Action::Publish, Markup::Html) => "mail/publish.html",
                (Action::Publish, Markup::Text) => "mail/publish.txt",
                (Action::Review, Markup::Html) => "mail/review.html",
                (Action::Review, Markup::Text) => "mail/review.txt",
            };
            self.templates
                .render_file(name, &template_vars_now, markup)?
        };
        let layout = match (markup, &rule.base_template) {
            (_, Some(name)) => Some(name.as_str()),
            (Markup::Html, None) => Some(DEFAULT_LAYOUT),
            (Markup::Text, None) => None,
        };
        let content = match layout {
            None => content,
            Some(name) => {
                let message = match markup {
                    Markup::Html => TemplateValue::from_safe_string(content),
                    Markup::Text => TemplateValue::from(content),
                };
                let pairs = vars
                    .into_iter()
                    .map(|(k, v)| (k, TemplateValue::from(Serde(v))))
                    .chain([
                        ("message".to_string(), message),
                        ("subject".to_string(), TemplateValue::from(subject)),
                    ]);
                self.templates.render_file(
                    name,
                    &TemplateValue::from_pairs(pairs.collect::<Vec<_>>()),
                    markup,
                )?
            }
        };
        Ok(match markup {
            Markup::Html => {
                let default_body = rule.template.is_none() && rule.template_file.is_none();
                let text = if default_body {
                    let name = match self.event.action {
                        Action::Publish => "mail/publish.txt",
                        Action::Review => "mail/review.txt",
                    };
                    tidy_text(&self.templates.render_file(
                        name,
                        &template_vars_now,
                        Markup::Text,
                    )?)
                } else {
                    html_to_text(&content)
                };
                (Some(text), Some(content.trim().to_string() + "\n"))
            }
            Markup::Text => (Some(tidy_text(&content)), None),
        })
    }

    fn recipients(
        &self,
        items: &[RecipientItem],
        config: &Vars,
        builtins: &Vars,
        note: &mut impl FnMut(String),
    ) -> Vec<String> {
        let mut found = Vec::new();
        for item in items {
            match item {
                RecipientItem::Address(address) => found.push(address.clone()),
                RecipientItem::Rule {
                    pointer,
                    checks,
                    methods,
                    default,
                    formatted,
                } => {
                    // Checks that are present and non-empty gate the whole entry.
                    if let Some(checks) = checks {
                        if !checks.items.is_empty() && !self.checks(checks) {
                            continue;
                        }
                    }
                    for name in methods {
                        match self.method(name) {
                            Some(Value::Array(values)) => found.extend(
                                values
                                    .into_iter()
                                    .filter_map(|v| v.as_str().map(str::to_string)),
                            ),
                            Some(Value::String(s)) => found.push(s),
                            _ => {}
                        }
                    }
                    found.extend(default.iter().cloned());
                    for f in formatted {
                        let Some(source) = &f.template else { continue };
                        let vars = template_vars(self.merged(config, builtins, &f.ctx));
                        match self.templates.render_str(source, &vars, Markup::Text) {
                            Ok(address) => {
                                let address = address.trim();
                                if !address.is_empty() {
                                    found.push(address.to_string());
                                }
                            }
                            // A failing template skips only itself.
                            Err(e) => note(format!(
                                "{pointer}: a formatted address could not be rendered: {e}"
                            )),
                        }
                    }
                }
            }
        }
        clean_addresses(found)
    }

    fn checks(&self, group: &Checks) -> bool {
        // An empty list of checks is false (CAP guards `all([])`).
        if group.items.is_empty() {
            return false;
        }
        let results: Vec<bool> = group.items.iter().map(|c| self.check(c)).collect();
        match group.op {
            Op::And => results.iter().all(|r| *r),
            Op::Or => results.iter().any(|r| *r),
            Op::Invalid(_) => false,
        }
    }

    fn check(&self, check: &Check) -> bool {
        match check {
            Check::Group(group) => self.checks(group),
            Check::Malformed => false,
            Check::Condition {
                path,
                condition,
                value,
            } => {
                if condition == "is_egroup_member" {
                    return match (value.as_str(), self.event.pusher.as_deref()) {
                        (Some(group), Some(user)) => self.archive.access.is_member(user, group),
                        _ => false,
                    };
                }
                let data = path.as_deref().and_then(|p| lookup(&self.event.deposit, p));
                condition_holds(condition, data, value)
            }
        }
    }
}

/// The deposit's value at a dot path: object keys only, no indices, no escaping.
/// A missing key, or a step into something that is not an object, gives `None`.
pub fn lookup<'v>(data: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.')
        .try_fold(data, |node, key| node.as_object().and_then(|m| m.get(key)))
}

/// Null, "", 0, false, [] and {}: Python's falsy values, which CAP's checks test.
pub fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Equality as Python compares JSON values (1 == 1.0).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// `value in data`; `None` where Python would raise (a number, a non-string key).
fn contains(data: &Value, value: &Value) -> Option<bool> {
    match data {
        Value::Array(items) => Some(items.iter().any(|item| same(item, value))),
        Value::String(text) => value.as_str().map(|v| text.contains(v)),
        Value::Object(map) => value.as_str().map(|v| map.contains_key(v)),
        _ => None,
    }
}

/// A path condition. Every one is false when the data is missing or empty, the
/// negative ones included; an unknown condition is false.
pub fn condition_holds(condition: &str, data: Option<&Value>, value: &Value) -> bool {
    let Some(data) = data.filter(|d| !is_empty(d)) else {
        return false;
    };
    match condition {
        "equals" => same(data, value),
        "not_equals" => !same(data, value),
        "exists" => true,
        "is_in" => contains(data, value) == Some(true),
        "is_not_in" => contains(data, value) == Some(false),
        _ => false,
    }
}

/// CAP's address rule: no `..`, no leading dot, a local part of two or more
/// characters, one `@`, a host with a dot that does not end in one, no spaces.
pub fn is_well_formed_address(address: &str) -> bool {
    if address.contains("..")
        || address.starts_with('.')
        || address.chars().any(char::is_whitespace)
    {
        return false;
    }
    let Some((local, host)) = address.split_once('@') else {
        return false;
    };
    if local.chars().count() < 2 || host.contains('@') {
        return false;
    }
    // `[^@\s]+\.[^@\s.]+$`: something, a dot, then a last label without dots.
    match host.rsplit_once('.') {
        Some((before, last)) => !before.is_empty() && !last.is_empty(),
        None => false,
    }
}

/// Well-formed addresses only, each once (compared without case), in first-seen order.
pub fn clean_addresses(addresses: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    addresses
        .into_iter()
        .map(|a| a.trim().to_string())
        .filter(|a| is_well_formed_address(a))
        .filter(|a| seen.insert(a.to_lowercase()))
        .collect()
}

/// A subject on one line: every line break, with the indentation around it,
/// becomes one space, and the ends are trimmed. Other spaces stay as the template
/// made them, as CAP keeps them: `for {{ x }} published` with `x` undefined is
/// `for  published`, two spaces.
pub fn one_line(text: &str) -> String {
    let pieces: Vec<&str> = text.split(['\r', '\n']).collect();
    let last = pieces.len() - 1;
    let parts: Vec<&str> = pieces
        .iter()
        .enumerate()
        .map(|(i, piece)| {
            let piece = if i > 0 { piece.trim_start() } else { piece };
            if i < last {
                piece.trim_end()
            } else {
                piece
            }
        })
        .filter(|piece| !piece.is_empty())
        .collect();
    parts.join(" ").trim().to_string()
}

fn template_vars(vars: Vars) -> TemplateValue {
    TemplateValue::from(Serde(vars))
}

/// Plain bodies come from templates written for HTML-ish layouts: drop the common
/// indentation, trailing spaces, runs of blank lines and blank edges.
fn tidy_text(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let indent = lines
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out = String::new();
    let mut blank = true;
    for line in lines {
        if line.is_empty() {
            if !blank {
                out.push('\n');
            }
            blank = true;
            continue;
        }
        out.push_str(&line[indent.min(line.len() - line.trim_start().len())..]);
        out.push('\n');
        blank = false;
    }
    let trimmed = out.trim_end().to_string();
    if trimmed.is_empty() {
        trimmed
    } else {
        trimmed + "\n"
    }
}

#[cfg(test)]
mod tests;
