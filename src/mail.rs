//! Notification mails: a schema's rules, rendered into mails, kept in a durable
//! outbox, delivered over SMTP.
//!
//! ```text
//! config  (config.notifications -> typed rules + issues with JSON pointers)
//!    ▼
//! rules   (one event -> mails: ctx, methods, checks, recipients, subject, body)
//!    │  renders with
//!    ├── render (Jinja2 templates: embedded defaults under the archive's templates/mail/)
//!    ▼
//! plan    (landed ref updates -> events -> mails with deterministic Message-IDs)
//!    ▼
//! outbox  (<git-dir>/capsule/outbox: queue/, sent/, failed/, log.jsonl; atomic writes)
//!    ▼
//! send    (lettre over SMTP per recipient, or files; retries with backoff; refusals
//!          recorded per recipient; text: the plain part of HTML mails)
//! ```
//!
//! Mail is planned only for refs that really landed (post-receive), never blocks or
//! fails a push, and a queued mail is never lost and never sent twice. This module
//! never prints; the CLI reports what it returns.

pub mod config;
pub mod outbox;
pub mod plan;
pub mod render;
pub mod rules;
pub mod send;
pub mod text;

use crate::archive::Source;
use crate::problem::Problem;
use crate::schema::LoadedSchema;

/// What is wrong with a pushed schema's notification config: problems refuse the
/// push, warnings are shown to the pusher.
#[derive(Debug, Default)]
pub struct SchemaMailCheck {
    pub problems: Vec<Problem>,
    pub warnings: Vec<Problem>,
}

/// Checks the notification config of a schema against the templates of `source`
/// (the archive at the commit that adds the schema), within the default limits.
pub fn check_schema(
    schema: &LoadedSchema,
    source: &dyn Source,
) -> std::io::Result<SchemaMailCheck> {
    check_schema_within(schema, source, render::Limits::default())
}

/// [`check_schema`] within the archive's limits (`[policy] template_fuel` and
/// `max_mail_bytes`, as they were before the push): a template that exceeds them
/// rendered without data is a problem, so the push is refused instead of the hook
/// spinning.
pub fn check_schema_within(
    schema: &LoadedSchema,
    source: &dyn Source,
    limits: render::Limits,
) -> std::io::Result<SchemaMailCheck> {
    let mut out = SchemaMailCheck::default();
    if schema.config.get("notifications").is_none() {
        return Ok(out);
    }
    let (notifications, mut issues) = config::parse(&schema.config, "/config");
    let templates = render::Templates::from_source(source)?.with_limits(limits);
    issues.extend(config::check_templates(&notifications, &templates));
    for issue in issues {
        let problem = Problem::at(&schema.path, &schema.text, &issue.pointer, issue.message);
        match issue.severity {
            config::Severity::Error => out.problems.push(problem),
            config::Severity::Warning => out.warnings.push(problem),
        }
    }
    Ok(out)
}

/// Problems for mail templates a push deletes while a schema of the archive still
/// names them. Schema versions never change, so a template an old version uses must
/// stay; the message names who uses it.
pub fn check_deleted_templates(
    source: &dyn Source,
    deleted: &[String],
) -> std::io::Result<Vec<Problem>> {
    // A deleted override of an embedded template falls back to the embedded one.
    let embedded = render::Templates::embedded();
    let names: Vec<String> = deleted
        .iter()
        .filter_map(|path| path.strip_prefix("templates/"))
        .filter(|name| !embedded.exists(name))
        .map(str::to_string)
        .collect();
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut users: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    let mut registry = crate::schema::SchemaRegistry::new();
    for (schema, versions) in crate::schema::list_schemas(source)? {
        for version in versions {
            let sref = crate::deposit::SchemaRef {
                name: schema.clone(),
                version,
            };
            let Ok(Some((_, loaded))) = registry.load(source, &sref) else {
                continue;
            };
            let (notifications, _) = config::parse(&loaded.config, "/config");
            for name in &names {
                if config::names_template(&notifications, name) {
                    users.entry(name).or_default().push(sref.to_string());
                }
            }
        }
    }
    Ok(users
        .into_iter()
        .map(|(name, schemas)| {
            Problem::file(
                format!("templates/{name}"),
                format!(
                    "this mail template cannot be deleted: schema {} names it, and schema versions never change; keep the file (changing it is fine)",
                    schemas.join(", ")
                ),
            )
        })
        .collect())
}

/// Checks a template file pushed under `templates/mail/`: it must be UTF-8 and compile.
pub fn check_template_file(path: &str, bytes: &[u8]) -> Option<Problem> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Some(Problem::file(path, "a mail template must be UTF-8 text"));
    };
    let env = minijinja::Environment::new();
    env.template_from_str(text).err().map(|e| {
        let reason = render::TemplateError(e.detail().unwrap_or("syntax error").to_string());
        Problem {
            line: e.line().unwrap_or(0),
            column: if e.line().is_some() { 1 } else { 0 },
            ..Problem::file(
                path,
                format!("the mail template does not compile: {reason}"),
            )
        }
    })
}
