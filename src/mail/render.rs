//! Mail templates: the embedded defaults, the archive's overrides, and rendering.
//!
//! Templates are Jinja2, rendered with minijinja, because that is the language CAP's
//! schemas were written in (inline `a if b else c`, `{% extends %}`, `super()`).
//! Names are relative to the archive's `templates/` folder and always start with
//! `mail/`: `template_file: "mail/publish.html"` reads `templates/mail/publish.html`
//! from the archive when it has one, else the copy embedded in capsule.
//!
//! Escaping follows what is being made, not the file name: HTML bodies escape every
//! value they print; subjects, addresses and plain bodies never do (CAP turned `&`
//! into `&amp;` in plain text). Undefined and null values print as nothing.
//!
//! Every rendering is bounded ([`Limits`], from `[policy]` in capsule.toml): minijinja
//! fuel caps the work (instructions, and the data a template makes: `"x" * n` is
//! refused before it is allocated), and an output cap stops a rendering that writes
//! too much. Templates arrive in pushes and the hook renders them before anything
//! lands, so a template must never be able to keep a hook busy or fill its memory.
//! (`range()` itself is safe: minijinja refuses ranges over 100,000 items and
//! iterates them lazily; two nested ones are what the fuel is for.)
//!
//! This module never reads a repository itself: callers hand it the files.

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};

use crate::archive::Source;
use crate::settings::Policy;

/// Templates shipped inside capsule: defaults and the ones CAP's own schemas name.
const EMBEDDED: &[(&str, &str)] = &[
    (
        "mail/base.html",
        include_str!("../../templates/mail/base.html"),
    ),
    (
        "mail/publish.html",
        include_str!("../../templates/mail/publish.html"),
    ),
    (
        "mail/publish.txt",
        include_str!("../../templates/mail/publish.txt"),
    ),
    (
        "mail/review.html",
        include_str!("../../templates/mail/review.html"),
    ),
    (
        "mail/review.txt",
        include_str!("../../templates/mail/review.txt"),
    ),
    (
        "mail/base_plain.html",
        include_str!("../../templates/mail/base_plain.html"),
    ),
    (
        "mail/analysis_plain_text.html",
        include_str!("../../templates/mail/analysis_plain_text.html"),
    ),
    (
        "mail/body/experiments/cms/questionnaire_message_published.html",
        include_str!(
            "../../templates/mail/body/experiments/cms/questionnaire_message_published.html"
        ),
    ),
    (
        "mail/body/experiments/cms/questionnaire_message_published_plain.html",
        include_str!(
            "../../templates/mail/body/experiments/cms/questionnaire_message_published_plain.html"
        ),
    ),
    (
        "mail/body/experiments/cms/questionnaire_message_review.html",
        include_str!("../../templates/mail/body/experiments/cms/questionnaire_message_review.html"),
    ),
    (
        "mail/body/experiments/cms/questionnaire_message_review_plain.html",
        include_str!(
            "../../templates/mail/body/experiments/cms/questionnaire_message_review_plain.html"
        ),
    ),
];

/// The default HTML layout every HTML body is wrapped in.
pub const DEFAULT_LAYOUT: &str = "mail/base.html";

/// Where the archive keeps its mail templates.
pub const ARCHIVE_FOLDER: &str = "templates/mail";

/// Whether a rendering makes HTML (values escaped) or text (values as they are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markup {
    Html,
    Text,
}

/// The bounds of one rendering (`[policy] template_fuel` and `max_mail_bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub fuel: u64,
    pub max_bytes: u64,
}

impl Limits {
    pub fn from_policy(policy: &Policy) -> Limits {
        Limits {
            fuel: policy.template_fuel,
            max_bytes: policy.max_mail_bytes,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::from_policy(&Policy::default())
    }
}

/// Why a template could not be rendered or compiled, in one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

impl TemplateError {
    fn from_minijinja(e: &minijinja::Error) -> Self {
        let mut text = e
            .detail()
            .map_or_else(|| e.kind().to_string(), str::to_string);
        if let (Some(name), Some(line)) = (e.name(), e.line()) {
            if name != "<string>" {
                text = format!("{name} line {line}: {text}");
            } else {
                text = format!("line {line}: {text}");
            }
        }
        if e.kind() == ErrorKind::TemplateNotFound && e.detail().is_none() {
            text = "a template it names does not exist".into();
        }
        TemplateError(text)
    }
}

/// The set of mail templates one archive sees: its own `templates/mail/` over the
/// embedded ones.
#[derive(Clone)]
pub struct Templates {
    files: Arc<BTreeMap<String, String>>,
    html: Arc<Environment<'static>>,
    text: Arc<Environment<'static>>,
    limits: Limits,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("files", &self.files.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Templates {
    /// Only the templates embedded in capsule.
    pub fn embedded() -> Templates {
        Templates::with_overrides(BTreeMap::new())
    }

    /// The embedded templates with `overrides` (names like `mail/publish.html`) on top.
    pub fn with_overrides(overrides: BTreeMap<String, String>) -> Templates {
        let mut files: BTreeMap<String, String> = EMBEDDED
            .iter()
            .map(|(name, text)| (name.to_string(), text.to_string()))
            .collect();
        files.extend(overrides);
        let files = Arc::new(files);
        let limits = Limits::default();
        Templates {
            html: Arc::new(environment(files.clone(), Markup::Html, limits)),
            text: Arc::new(environment(files.clone(), Markup::Text, limits)),
            files,
            limits,
        }
    }

    /// The same templates, rendered within `limits`.
    pub fn with_limits(self, limits: Limits) -> Templates {
        if limits == self.limits {
            return self;
        }
        Templates {
            html: Arc::new(environment(self.files.clone(), Markup::Html, limits)),
            text: Arc::new(environment(self.files.clone(), Markup::Text, limits)),
            files: self.files,
            limits,
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The embedded templates under the archive's `templates/mail/` files.
    ///
    /// Files that are not UTF-8 are left out; the hook refuses them when pushed.
    pub fn from_source(source: &dyn Source) -> std::io::Result<Templates> {
        let mut overrides = BTreeMap::new();
        let mut folders = vec![ARCHIVE_FOLDER.to_string()];
        while let Some(folder) = folders.pop() {
            for entry in source.list(&folder)? {
                let path = format!("{folder}/{entry}");
                match source.read(&path)? {
                    Some(bytes) => {
                        if let Ok(text) = String::from_utf8(bytes) {
                            overrides.insert(path["templates/".len()..].to_string(), text);
                        }
                    }
                    None => folders.push(path),
                }
            }
        }
        Ok(Templates::with_overrides(overrides))
    }

    /// Whether a template of that name exists (archive or embedded).
    pub fn exists(&self, name: &str) -> bool {
        self.files.contains_key(name)
    }

    fn env(&self, markup: Markup) -> &Environment<'static> {
        match markup {
            Markup::Html => &self.html,
            Markup::Text => &self.text,
        }
    }

    /// Renders an inline template (a schema's `template` string).
    pub fn render_str(
        &self,
        source: &str,
        ctx: &Value,
        markup: Markup,
    ) -> Result<String, TemplateError> {
        let template = self
            .env(markup)
            .template_from_str(source)
            .map_err(|e| TemplateError::from_minijinja(&e))?;
        self.run(&template, ctx).map_err(|f| f.error)
    }

    /// Renders a template file by name (`mail/...`).
    pub fn render_file(
        &self,
        name: &str,
        ctx: &Value,
        markup: Markup,
    ) -> Result<String, TemplateError> {
        if !self.exists(name) {
            return Err(TemplateError(format!(
                "template {name} does not exist (looked in {ARCHIVE_FOLDER}/ of the archive and in capsule's own templates)"
            )));
        }
        let template = self
            .env(markup)
            .get_template(name)
            .map_err(|e| TemplateError::from_minijinja(&e))?;
        self.run(&template, ctx).map_err(|f| f.error)
    }

    /// Checks that an inline template compiles, that every template it extends or
    /// includes exists, and that it stays within the limits when rendered without
    /// data. Other runtime problems depend on the data and are not errors here.
    pub fn check_str(&self, source: &str) -> Result<(), CheckError> {
        let env = self.env(Markup::Text);
        let template = env
            .template_from_str(source)
            .map_err(|e| CheckError::Compile(TemplateError::from_minijinja(&e)))?;
        dry_run(self.run(&template, &Value::UNDEFINED))
    }

    /// Like [`Templates::check_str`] for a template file by name.
    pub fn check_file(&self, name: &str) -> Result<(), CheckError> {
        if !self.exists(name) {
            return Err(CheckError::Compile(TemplateError(format!(
                "template {name} does not exist"
            ))));
        }
        let env = self.env(Markup::Text);
        let template = env
            .get_template(name)
            .map_err(|e| CheckError::Compile(TemplateError::from_minijinja(&e)))?;
        dry_run(self.run(&template, &Value::UNDEFINED))
    }

    /// One bounded rendering: fuel is set on the environments, the output cap here.
    fn run(&self, template: &minijinja::Template<'_, '_>, ctx: &Value) -> Result<String, Failure> {
        let mut out = CappedOutput {
            text: Vec::new(),
            max: self.limits.max_bytes,
            over: false,
        };
        let rendered = template.render_captured_to(ctx, &mut out);
        match rendered {
            Ok(_) => String::from_utf8(out.text).map_err(|_| Failure {
                kind: ErrorKind::BadSerialization,
                error: TemplateError("the template made text that is not UTF-8".into()),
            }),
            Err(e) => Failure::new(&e, out.over, self.limits),
        }
    }
}

/// A rendering that failed, with what kind of failure it was.
struct Failure {
    kind: ErrorKind,
    error: TemplateError,
}

impl Failure {
    fn new<T>(e: &minijinja::Error, over: bool, limits: Limits) -> Result<T, Failure> {
        let at = |text: String| match e.line() {
            Some(line) => format!("line {line}: {text}"),
            None => text,
        };
        let error = if over {
            TemplateError(at(format!(
                "the template makes more than {} bytes of text, the limit that [policy] max_mail_bytes in capsule.toml sets; make it shorter (a loop that repeats text?) or raise the setting",
                limits.max_bytes
            )))
        } else if e.kind() == ErrorKind::OutOfFuel {
            TemplateError(at(format!(
                "the template needs more work than [policy] template_fuel allows ({}); a loop runs too often (nested range()?) or builds too much text: simplify it, or raise the setting in capsule.toml",
                limits.fuel
            )))
        } else {
            TemplateError::from_minijinja(e)
        };
        Err(Failure {
            kind: if over {
                ErrorKind::WriteFailure
            } else {
                e.kind()
            },
            error,
        })
    }

    /// Whether a limit stopped it (rather than the data).
    fn is_limit(&self) -> bool {
        matches!(self.kind, ErrorKind::OutOfFuel | ErrorKind::WriteFailure)
    }
}

/// Collects the output and refuses to grow past `max` bytes.
struct CappedOutput {
    text: Vec<u8>,
    max: u64,
    over: bool,
}

impl std::io::Write for CappedOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if (self.text.len() + buf.len()) as u64 > self.max {
            self.over = true;
            return Err(std::io::Error::other("output limit"));
        }
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A render with no data only proves that the templates it reaches compile and
/// exist, and that it stays within the limits.
fn dry_run(result: Result<String, Failure>) -> Result<(), CheckError> {
    match result {
        Ok(_) => Ok(()),
        Err(f) if f.is_limit() => Err(CheckError::Limit(f.error)),
        Err(f) if matches!(f.kind, ErrorKind::SyntaxError | ErrorKind::TemplateNotFound) => {
            Err(CheckError::Compile(f.error))
        }
        Err(_) => Ok(()),
    }
}

/// Why a template was found unusable before any mail is made from it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// A syntax error, or a template it names that does not exist.
    #[error("{0}")]
    Compile(TemplateError),
    /// Even without data it exceeds `[policy] template_fuel` or `max_mail_bytes`.
    #[error("{0}")]
    Limit(TemplateError),
}

/// Normalises a `template_file` or `base_template` name: relative to `templates/`,
/// starting with `mail/` (added when missing). `Err` says why the name is unusable.
pub fn template_name(name: &str) -> Result<String, String> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err("the template name is empty".into());
    }
    if trimmed.starts_with('/')
        || trimmed.contains('\\')
        || trimmed
            .split('/')
            .any(|part| part == ".." || part == "." || part.is_empty())
    {
        return Err(format!(
            "`{name}` is not a template name: use a path relative to templates/, such as mail/publish.html"
        ));
    }
    Ok(if trimmed.starts_with("mail/") {
        trimmed.to_string()
    } else {
        format!("mail/{trimmed}")
    })
}

fn environment(
    files: Arc<BTreeMap<String, String>>,
    markup: Markup,
    limits: Limits,
) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(limits.fuel));
    env.set_loader(move |name| Ok(files.get(name).cloned()));
    env.set_auto_escape_callback(move |_| match markup {
        Markup::Html => AutoEscape::Html,
        Markup::Text => AutoEscape::None,
    });
    // `a.b.c` on a missing `a` prints nothing, as Jinja2 does for CAP.
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    // Null prints as nothing (Jinja2 prints `None`, minijinja `none`), and HTML is
    // escaped as Jinja2's markupsafe does: minijinja also escapes `/`, which would
    // turn every URL in a mail into `https:&#x2f;&#x2f;...`.
    env.set_formatter(|out, state, value| {
        if value.is_none() || value.is_undefined() {
            return Ok(());
        }
        if *state.auto_escape() == AutoEscape::Html && !value.is_safe() {
            return out
                .write_str(&escape_html(&value.to_string()))
                .map_err(minijinja::Error::from);
        }
        minijinja::escape_formatter(out, state, value)
    });
    // `dict.get('k', '-')`, `str.upper()` and friends, which CAP-era templates call.
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env
}

/// `&`, `<`, `>`, `"` and `'` as entities, like Jinja2's markupsafe.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    #[test]
    fn html_escapes_and_text_does_not() {
        let t = Templates::embedded();
        let ctx = context! { name => "Tom & Jerry <3" };
        assert_eq!(
            t.render_str(
                "{{ name }} {{ url }}",
                &context! { name => "Tom & Jerry <3", url => "https://x.org/a?b=1&c='2'" },
                Markup::Html
            )
            .unwrap(),
            "Tom &amp; Jerry &lt;3 https://x.org/a?b=1&amp;c=&#39;2&#39;"
        );
        assert_eq!(
            t.render_str("{{ name }}", &ctx, Markup::Text).unwrap(),
            "Tom & Jerry <3"
        );
    }

    #[test]
    fn undefined_and_null_print_nothing() {
        let t = Templates::embedded();
        let ctx = Value::from(minijinja::value::Serde(serde_json::json!({"n": null})));
        for source in [
            "[{{ missing }}]",
            "[{{ n }}]",
            "[{{ missing.deeper.still }}]",
            "[{{ n.x }}]",
        ] {
            assert_eq!(
                t.render_str(source, &ctx, Markup::Text).unwrap(),
                "[]",
                "{source}"
            );
        }
    }

    #[test]
    fn jinja2_forms_cap_uses_work() {
        let t = Templates::embedded();
        let ctx = Value::from(minijinja::value::Serde(
            serde_json::json!({"cadi_id": "ABC-12-001", "revision": 1, "p": {"primary": "Ann"}}),
        ));
        let out = t
            .render_str(
                r#"{{ cadi_id if cadi_id else "" }} {{ "New Version" if revision > 0 else "New" }} {{ p.get('primary', '-') }} {{ p.get('secondary', '-') }}"#,
                &ctx,
                Markup::Text,
            )
            .unwrap();
        assert_eq!(out, "ABC-12-001 New Version Ann -");
    }

    #[test]
    fn checks_find_syntax_errors_and_missing_templates() {
        let t = Templates::embedded();
        assert!(t.check_str("{{ a if b else c }}").is_ok());
        assert!(t.check_str("{{ x | upper }} {{ y.z }}").is_ok());
        let e = t.check_str("{% if x %}unclosed").unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        let e = t.check_str("{% include \"mail/nope.html\" %}").unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
        assert!(t.check_file("mail/publish.html").is_ok());
        assert!(t.check_file("mail/nope.html").is_err());
    }

    const NESTED: &str =
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";

    #[test]
    fn fuel_stops_nested_loops_and_names_the_setting() {
        let t = Templates::embedded();
        let e = t.check_str(NESTED).unwrap_err();
        assert!(matches!(e, CheckError::Limit(_)), "{e:?}");
        assert!(e.to_string().contains("[policy] template_fuel"), "{e}");
        let e = t
            .render_str(NESTED, &Value::UNDEFINED, Markup::Html)
            .unwrap_err();
        assert!(e.0.contains("template_fuel"), "{e}");
        // A big repetition is refused before it is allocated.
        let e = t.check_str("{{ 'x' * 100000000 }}").unwrap_err();
        assert!(e.to_string().contains("template_fuel"), "{e}");
    }

    #[test]
    fn ranges_are_capped_by_minijinja_itself() {
        let t = Templates::embedded();
        let e = t
            .render_str(
                "{% for i in range(1000000000) %}{% endfor %}",
                &Value::UNDEFINED,
                Markup::Text,
            )
            .unwrap_err();
        assert!(e.0.contains("range has too many elements"), "{e}");
    }

    #[test]
    fn output_is_capped_at_max_mail_bytes() {
        let t = Templates::embedded().with_limits(Limits {
            fuel: 1_000_000,
            max_bytes: 100,
        });
        let ctx = Value::UNDEFINED;
        assert_eq!(
            t.render_str("{{ 'x' * 100 }}", &ctx, Markup::Text)
                .unwrap()
                .len(),
            100
        );
        let e = t
            .render_str("{{ 'x' * 101 }}", &ctx, Markup::Text)
            .unwrap_err();
        assert!(e.0.contains("[policy] max_mail_bytes"), "{e}");
        assert!(matches!(
            t.check_str("{{ 'x' * 101 }}"),
            Err(CheckError::Limit(_))
        ));
        assert!(t.check_str("{{ 'x' * 100 }}").is_ok());
    }

    #[test]
    fn archive_files_override_the_embedded_ones() {
        let mut overrides = BTreeMap::new();
        overrides.insert("mail/publish.txt".to_string(), "ours: {{ x }}".to_string());
        let t = Templates::with_overrides(overrides);
        let ctx = context! { x => 1 };
        assert_eq!(
            t.render_file("mail/publish.txt", &ctx, Markup::Text)
                .unwrap(),
            "ours: 1"
        );
    }

    #[test]
    fn template_names_stay_inside_templates() {
        assert_eq!(template_name("mail/a.html").unwrap(), "mail/a.html");
        assert_eq!(template_name("a.html").unwrap(), "mail/a.html");
        for bad in ["", "/etc/passwd", "mail/../capsule.toml", "mail//a", "a\\b"] {
            assert!(template_name(bad).is_err(), "{bad}");
        }
    }
}
