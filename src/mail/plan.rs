//! From one event to the mails its schema's rules call for, ready for the outbox.
//!
//! The same function serves the push path (the archive at the event's commit) and
//! `capsule notify preview` (a working tree), so a preview shows exactly what a
//! push would queue.

use serde::Serialize;
use serde_json::Value;

use super::config::{self, Issue, Severity};
use super::outbox::Entry;
use super::render::{Limits, Templates};
use super::rules::{evaluate, Action, ArchiveView, Evaluation, Event, Outcome, ReviewView};
use crate::access::Access;
use crate::archive::Source;
use crate::deposit::parse_schema_ref;
use crate::record::Review;
use crate::schema::SchemaRegistry;
use crate::settings::{MailSettings, Settings};

/// What rules may know about an event, before the archive is read.
#[derive(Debug, Clone)]
pub struct EventSpec {
    pub action: Action,
    pub deposit_id: String,
    /// The record version published, or the latest one for a review.
    pub record_version: Option<u32>,
    pub pusher: Option<String>,
    /// The review (and its file name without `.json`), for a review event.
    pub review: Option<(Review, String)>,
}

/// The result of evaluating one event's rules.
#[derive(Debug, Default, Serialize)]
pub struct EventMails {
    /// `None` when the event has no rules to evaluate (see `skipped`).
    pub evaluation: Option<Evaluation>,
    /// Why nothing was evaluated (no schema, no notification config, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Problems in the schema's notification config (it still does what it can).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub issues: Vec<Issue>,
}

/// The archive's settings as mail needs them.
#[derive(Debug, Clone, Copy)]
pub struct ArchiveMail<'a> {
    pub settings: &'a Settings,
    pub mail: &'a MailSettings,
    pub access: &'a Access,
}

impl ArchiveMail<'_> {
    pub fn base_url(&self) -> &str {
        self.mail
            .base_url
            .as_deref()
            .unwrap_or(&self.settings.archive.base_url)
    }
}

/// Evaluates the rules of an event against the archive as `source` has it: the
/// deposit, its schema's `config.notifications` and the templates.
/// `draft_revision` is only asked for when a rule uses it (it may walk history).
pub fn evaluate_event(
    source: &dyn Source,
    archive: ArchiveMail<'_>,
    spec: &EventSpec,
    draft_revision: &dyn Fn() -> Option<u64>,
) -> std::io::Result<EventMails> {
    let mut out = EventMails::default();
    let id = &spec.deposit_id;
    let path = crate::deposit::metadata_path(id);
    let Some(deposit) = source
        .read(&path)?
        .and_then(|bytes| crate::json::from_bytes(&bytes).ok())
    else {
        out.skipped = Some(format!("{path} is missing or not JSON"));
        return Ok(out);
    };
    let Some(sref) = deposit
        .get("$schema")
        .and_then(Value::as_str)
        .and_then(parse_schema_ref)
    else {
        out.skipped = Some(format!("{path} names no schema"));
        return Ok(out);
    };
    let schema = match SchemaRegistry::new().load(source, &sref) {
        Ok(Some((_, schema))) => schema,
        Ok(None) => {
            out.skipped = Some(format!("schema {sref} is not in the archive"));
            return Ok(out);
        }
        Err(e) => {
            out.skipped = Some(format!("schema {sref} cannot be read: {e}"));
            return Ok(out);
        }
    };
    if schema.config.get("notifications").is_none() {
        out.skipped = Some(format!("schema {sref} has no config.notifications"));
        return Ok(out);
    }
    let (notifications, issues) = config::parse(&schema.config, "/config");
    out.issues = issues
        .into_iter()
        .filter(|i| i.severity == Severity::Error)
        .collect();
    let templates =
        Templates::from_source(source)?.with_limits(Limits::from_policy(&archive.settings.policy));
    let uses_draft_revision = schema.config["notifications"]
        .to_string()
        .contains("draft_revision");
    let event = Event {
        action: spec.action,
        deposit_id: id.clone(),
        deposit,
        record_version: spec.record_version,
        pusher: spec.pusher.clone(),
        review: spec.review.as_ref().map(|(review, name)| ReviewView {
            kind: review.kind.as_str().to_string(),
            verdict: review.verdict.clone(),
            body: review.body.clone(),
            author: review.author.clone(),
            created: review.created.clone(),
            name: name.clone(),
            review: review.review.clone(),
            url: String::new(),
        }),
        draft_revision: if uses_draft_revision {
            draft_revision()
        } else {
            None
        },
    };
    let view = ArchiveView {
        name: &archive.settings.archive.name,
        base_url: archive.base_url(),
        access: archive.access,
        from: &archive.mail.from.0,
        fallback: &archive.mail.fallback_recipients,
    };
    out.evaluation = Some(evaluate(&notifications, view, &event, &templates));
    Ok(out)
}

/// Something the pusher or the outbox log should hear about an event.
#[derive(Debug, Clone, Serialize)]
pub struct PlanNote {
    pub event: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// `no_recipients`, `not_rendered`, `config` or `note`.
    pub what: String,
    pub message: String,
}

/// Turns an event's mails into outbox entries with deterministic keys, and its
/// problems into notes. `event_key` names what landed (a ref update, a review file);
/// `archive_key` names the archive. The same inputs always give the same keys.
pub fn entries(
    mails: &EventMails,
    event_key: &str,
    archive_key: &str,
    now: u64,
) -> (Vec<Entry>, Vec<PlanNote>) {
    let mut entries = Vec::new();
    let mut notes = Vec::new();
    let note = |rule: Option<&str>, what: &str, message: String| PlanNote {
        event: event_key.to_string(),
        rule: rule.map(str::to_string),
        what: what.to_string(),
        message,
    };
    for issue in &mails.issues {
        notes.push(note(
            Some(&issue.pointer),
            "config",
            format!(
                "the schema's notification config is broken here: {}",
                issue.message
            ),
        ));
    }
    let Some(evaluation) = &mails.evaluation else {
        return (entries, notes);
    };
    for outcome in &evaluation.outcomes {
        match outcome {
            Outcome::Mail(mail) => {
                let key = mail_key(
                    archive_key,
                    event_key,
                    &mail.rule,
                    &mail.to,
                    &mail.cc,
                    &mail.bcc,
                );
                let domain = mail
                    .from
                    .parse::<lettre::message::Mailbox>()
                    .map(|m| m.email.domain().to_string())
                    .unwrap_or_else(|_| "capsule.invalid".into());
                if mail.fallback {
                    notes.push(note(
                        Some(&mail.rule),
                        "no_recipients",
                        "the rules named nobody; sent to the fallback recipients of capsule.toml"
                            .into(),
                    ));
                }
                entries.push(Entry {
                    message_id: format!("<{key}@{domain}>"),
                    key,
                    created: now,
                    event: event_key.to_string(),
                    mail: mail.clone(),
                    attempts: 0,
                    next_attempt: 0,
                    last_error: None,
                    delivered: None,
                    answer: None,
                    accepted: Vec::new(),
                    refused: Vec::new(),
                });
            }
            Outcome::NoRecipients { rule } => notes.push(note(
                Some(rule),
                "no_recipients",
                "the rules named nobody, and capsule.toml has no fallback_recipients: no mail"
                    .into(),
            )),
            Outcome::Failed { rule, reason } => notes.push(note(
                Some(rule),
                "not_rendered",
                format!("no mail: {reason}"),
            )),
        }
    }
    for n in &evaluation.notes {
        notes.push(note(Some(&n.rule), "note", n.message.clone()));
    }
    (entries, notes)
}

/// 32 hex digits from the archive, the event, the rule and the recipients.
pub fn mail_key(
    archive_key: &str,
    event_key: &str,
    rule: &str,
    to: &[String],
    cc: &[String],
    bcc: &[String],
) -> String {
    let text = format!(
        "capsule mail\narchive {archive_key}\nevent {event_key}\nrule {rule}\nto {}\ncc {}\nbcc {}\n",
        to.join(","),
        cc.join(","),
        bcc.join(",")
    );
    let oid = git2::Oid::hash_object(git2::ObjectType::Blob, text.as_bytes())
        .expect("hashing cannot fail");
    oid.to_string()[..32].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_deterministic_and_depend_on_every_input() {
        let to = vec!["a@example.org".to_string()];
        let key = mail_key(
            "/srv/a.git",
            "publish refs/tags/records/x/v1 1",
            "/r/0",
            &to,
            &[],
            &[],
        );
        assert_eq!(key.len(), 32);
        assert_eq!(
            key,
            mail_key(
                "/srv/a.git",
                "publish refs/tags/records/x/v1 1",
                "/r/0",
                &to,
                &[],
                &[]
            )
        );
        for other in [
            mail_key(
                "/srv/b.git",
                "publish refs/tags/records/x/v1 1",
                "/r/0",
                &to,
                &[],
                &[],
            ),
            mail_key(
                "/srv/a.git",
                "publish refs/tags/records/x/v2 1",
                "/r/0",
                &to,
                &[],
                &[],
            ),
            mail_key(
                "/srv/a.git",
                "publish refs/tags/records/x/v1 1",
                "/r/1",
                &to,
                &[],
                &[],
            ),
            mail_key(
                "/srv/a.git",
                "publish refs/tags/records/x/v1 1",
                "/r/0",
                &[],
                &to,
                &[],
            ),
        ] {
            assert_ne!(key, other);
        }
    }
}
