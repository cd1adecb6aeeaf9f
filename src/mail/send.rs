//! Delivery: the outbox's queue to an SMTP server (lettre) or to files.
//!
//! One flush at a time (the outbox lock). Each due mail is tried once per flush:
//! delivered mails move to sent/; a temporary failure (no connection, a timeout, a
//! 4xx answer, a TLS or authentication problem) stays queued with a growing delay; a
//! permanent one (a 5xx answer, an address lettre refuses) moves to failed/ with the
//! server's answer. When the server cannot be reached at all, the rest of the queue
//! waits for the next flush instead of each trying again. Every attempt is logged.
//!
//! Credentials come from the environment (`CAPSULE_SMTP_USERNAME`,
//! `CAPSULE_SMTP_PASSWORD`), never from the repository; `CAPSULE_SMTP_CA_FILE`
//! overrides `[mail] ca_file`.

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};
use serde::Serialize;

use super::outbox::{now, Entry, Outbox, State};
use crate::settings::{MailSettings, MailTransport, SmtpSecurity};

/// The environment variables delivery reads.
pub const ENV_USERNAME: &str = "CAPSULE_SMTP_USERNAME";
pub const ENV_PASSWORD: &str = "CAPSULE_SMTP_PASSWORD";
pub const ENV_CA_FILE: &str = "CAPSULE_SMTP_CA_FILE";

/// Where the file transport writes when `[mail] dir` is not set (relative to the git dir).
pub const DEFAULT_FILE_DIR: &str = "capsule/mail";

/// What became of one attempt.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AttemptOutcome {
    Sent { answer: String },
    Deferred { reason: String, next_attempt: u64 },
    Failed { answer: String },
}

/// One delivery attempt.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub key: String,
    pub message_id: String,
    pub subject: String,
    pub attempt: u32,
    #[serde(flatten)]
    pub outcome: AttemptOutcome,
}

/// What one flush did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FlushReport {
    pub attempts: Vec<Attempt>,
    /// Mails still queued afterwards (waiting for their next attempt).
    pub waiting: usize,
    /// Another flush held the lock for the whole wait: nothing was tried.
    pub busy: bool,
}

impl FlushReport {
    pub fn sent(&self) -> usize {
        self.count(|o| matches!(o, AttemptOutcome::Sent { .. }))
    }
    pub fn deferred(&self) -> usize {
        self.count(|o| matches!(o, AttemptOutcome::Deferred { .. }))
    }
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, AttemptOutcome::Failed { .. }))
    }
    fn count(&self, f: impl Fn(&AttemptOutcome) -> bool) -> usize {
        self.attempts.iter().filter(|a| f(&a.outcome)).count()
    }
}

/// The result of handing one mail to the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Delivery {
    Sent(String),
    /// Try again later; `unreachable`: the server could not be talked to at all.
    Temporary {
        reason: String,
        unreachable: bool,
    },
    Permanent(String),
}

/// The delay before attempt `attempts + 1`: one minute, doubling, at most an hour.
pub fn backoff(attempts: u32) -> u64 {
    (60u64 << attempts.saturating_sub(1).min(6)).min(3600)
}

/// Resolves a path from capsule.toml against the git directory.
fn resolve(git_dir: &Path, path: &str) -> PathBuf {
    let path = Path::new(path);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        git_dir.join(path)
    }
}

/// The folder the file transport writes to.
pub fn file_dir(settings: &MailSettings, git_dir: &Path) -> PathBuf {
    resolve(git_dir, settings.dir.as_deref().unwrap_or(DEFAULT_FILE_DIR))
}

enum Deliverer {
    Smtp(Box<SmtpTransport>),
    Files(PathBuf),
    /// The transport cannot be set up (a missing CA file, ...): everything waits.
    Broken(String),
}

impl Deliverer {
    fn new(settings: &MailSettings, git_dir: &Path) -> Deliverer {
        match settings.transport {
            MailTransport::File => Deliverer::Files(file_dir(settings, git_dir)),
            MailTransport::Smtp => match smtp_transport(settings, git_dir) {
                Ok(transport) => Deliverer::Smtp(Box::new(transport)),
                Err(reason) => Deliverer::Broken(reason),
            },
        }
    }

    fn deliver(&self, entry: &Entry) -> Delivery {
        let message = match build_message(entry) {
            Ok(message) => message,
            Err(reason) => return Delivery::Permanent(reason),
        };
        match self {
            Deliverer::Broken(reason) => Delivery::Temporary {
                reason: reason.clone(),
                unreachable: true,
            },
            Deliverer::Files(dir) => match write_file(dir, &entry.key, &message.formatted()) {
                Ok(path) => Delivery::Sent(format!("written to {}", path.display())),
                Err(e) => Delivery::Temporary {
                    reason: format!("cannot write to {}: {e}", dir.display()),
                    unreachable: true,
                },
            },
            Deliverer::Smtp(transport) => match transport.send(&message) {
                Ok(response) => Delivery::Sent(format!(
                    "{} {}",
                    response.code(),
                    response.message().collect::<Vec<_>>().join(" ")
                )),
                Err(e) if e.is_permanent() => Delivery::Permanent(smtp_reason(&e)),
                Err(e) => Delivery::Temporary {
                    reason: smtp_reason(&e),
                    unreachable: !e.is_transient(),
                },
            },
        }
    }
}

/// lettre's error with its causes, on one line.
fn smtp_reason(e: &lettre::transport::smtp::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    // A read timeout surfaces as EAGAIN on Linux; say what it means.
    let mut timed_out = e.is_timeout();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            timed_out |= matches!(
                io.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            );
        }
        source = cause.source();
    }
    if timed_out {
        text.push_str(" (the server timed out: no answer within [mail] timeout_secs)");
    }
    text
}

fn smtp_transport(settings: &MailSettings, git_dir: &Path) -> Result<SmtpTransport, String> {
    let endpoint = settings.url.endpoint()?;
    let ca_file = std::env::var(ENV_CA_FILE)
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| settings.ca_file.clone());
    let params = || -> Result<TlsParameters, String> {
        let mut builder = TlsParameters::builder(endpoint.host.clone());
        if let Some(path) = &ca_file {
            let path = resolve(git_dir, path);
            let pem = std::fs::read(&path)
                .map_err(|e| format!("cannot read the CA file {}: {e}", path.display()))?;
            let cert = Certificate::from_pem(&pem).map_err(|e| {
                format!(
                    "the CA file {} is not PEM certificates: {e}",
                    path.display()
                )
            })?;
            builder = builder.add_root_certificate(cert);
        }
        builder
            .build()
            .map_err(|e| format!("cannot set up TLS for {}: {e}", endpoint.host))
    };
    let tls = match endpoint.security {
        SmtpSecurity::Plain => Tls::None,
        SmtpSecurity::StartTls => Tls::Required(params()?),
        SmtpSecurity::Opportunistic => Tls::Opportunistic(params()?),
        SmtpSecurity::Implicit => Tls::Wrapper(params()?),
    };
    let mut builder = SmtpTransport::builder_dangerous(endpoint.host.clone())
        .port(endpoint.port)
        .tls(tls)
        .timeout(Some(Duration::from_secs(settings.timeout_secs.max(1))));
    let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
    if let Some(user) = var(ENV_USERNAME) {
        builder = builder.credentials(Credentials::new(
            user,
            var(ENV_PASSWORD).unwrap_or_default(),
        ));
    }
    Ok(builder.build())
}

/// The RFC 5322 message of an entry: its stored Message-ID and planning time, so
/// that every attempt sends the very same message.
fn build_message(entry: &Entry) -> Result<Message, String> {
    let mail = &entry.mail;
    let mailbox = |text: &str| {
        text.parse::<Mailbox>()
            .map_err(|e| format!("`{text}` is not an address lettre accepts: {e}"))
    };
    let mut builder = Message::builder()
        .message_id(Some(entry.message_id.clone()))
        .date(UNIX_EPOCH + Duration::from_secs(entry.created))
        .user_agent(format!("capsule {}", env!("CARGO_PKG_VERSION")))
        .from(mailbox(&mail.from)?)
        .subject(mail.subject.clone());
    for to in &mail.to {
        builder = builder.to(mailbox(to)?);
    }
    for cc in &mail.cc {
        builder = builder.cc(mailbox(cc)?);
    }
    for bcc in &mail.bcc {
        builder = builder.bcc(mailbox(bcc)?);
    }
    let built = match (&mail.html, &mail.text) {
        (Some(html), _) => builder.header(ContentType::TEXT_HTML).body(html.clone()),
        (None, text) => builder
            .header(ContentType::TEXT_PLAIN)
            .body(text.clone().unwrap_or_default()),
    };
    built.map_err(|e| format!("the mail cannot be built: {e}"))
}

/// Writes `<dir>/<key>.eml` atomically; the same key always lands in the same file.
fn write_file(dir: &Path, key: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let target = dir.join(format!("{key}.eml"));
    let tmp = dir.join(format!(".{key}.{}.tmp", std::process::id()));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, &target)?;
    Ok(target)
}

/// Delivers every queued mail that is due. Holds the outbox lock while it works,
/// waiting up to `wait` for another flush to finish first.
pub fn flush(
    outbox: &Outbox,
    settings: &MailSettings,
    git_dir: &Path,
    wait: Duration,
) -> std::io::Result<FlushReport> {
    let mut report = FlushReport::default();
    let Some(_lock) = outbox.lock(wait)? else {
        report.busy = true;
        report.waiting = outbox.count(State::Queued)?;
        return Ok(report);
    };
    let deliverer = Deliverer::new(settings, git_dir);
    let mut tried = std::collections::HashSet::new();
    let mut unreachable: Option<String> = None;
    // Scan again after each pass: mails queued meanwhile go out in the same flush.
    loop {
        let time = now();
        let due: Vec<Entry> = outbox
            .list(State::Queued)?
            .into_iter()
            .filter(|e| e.next_attempt <= time && !tried.contains(&e.key))
            .collect();
        if due.is_empty() {
            break;
        }
        for mut entry in due {
            tried.insert(entry.key.clone());
            if outbox.contains(State::Sent, &entry.key) {
                outbox.drop_delivered(&entry.key)?;
                continue;
            }
            let delivery = match &unreachable {
                Some(reason) => Delivery::Temporary {
                    reason: format!("not tried: {reason}"),
                    unreachable: true,
                },
                None => deliverer.deliver(&entry),
            };
            entry.attempts += 1;
            let time = now();
            let outcome = match delivery {
                Delivery::Sent(answer) => {
                    entry.delivered = Some(time);
                    entry.answer = Some(answer.clone());
                    entry.last_error = None;
                    outbox.mark_sent(&entry)?;
                    outbox.log("sent", Some(&entry.key), Some(&entry.event), &answer)?;
                    AttemptOutcome::Sent { answer }
                }
                Delivery::Permanent(answer) => {
                    entry.answer = Some(answer.clone());
                    outbox.mark_failed(&entry)?;
                    outbox.log("failed", Some(&entry.key), Some(&entry.event), &answer)?;
                    AttemptOutcome::Failed { answer }
                }
                Delivery::Temporary {
                    reason,
                    unreachable: cannot_connect,
                } => {
                    if cannot_connect && unreachable.is_none() {
                        unreachable = Some(reason.clone());
                    }
                    let give_up_at = entry.created + settings.retry_hours * 3600;
                    if time >= give_up_at {
                        let answer = format!(
                            "gave up after {} attempts over {} hours; last: {reason}",
                            entry.attempts, settings.retry_hours
                        );
                        entry.answer = Some(answer.clone());
                        outbox.mark_failed(&entry)?;
                        outbox.log("failed", Some(&entry.key), Some(&entry.event), &answer)?;
                        AttemptOutcome::Failed { answer }
                    } else {
                        entry.next_attempt = time + backoff(entry.attempts);
                        entry.last_error = Some(reason.clone());
                        outbox.update_queued(&entry)?;
                        outbox.log(
                            "deferred",
                            Some(&entry.key),
                            Some(&entry.event),
                            &format!("attempt {}: {reason}", entry.attempts),
                        )?;
                        AttemptOutcome::Deferred {
                            reason,
                            next_attempt: entry.next_attempt,
                        }
                    }
                }
            };
            report.attempts.push(Attempt {
                key: entry.key.clone(),
                message_id: entry.message_id.clone(),
                subject: entry.mail.subject.clone(),
                attempt: entry.attempts,
                outcome,
            });
        }
    }
    report.waiting = outbox.count(State::Queued)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::rules::Mail;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let delays: Vec<u64> = (1..=9).map(backoff).collect();
        assert_eq!(delays, [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
    }

    #[test]
    fn messages_keep_their_id_and_hide_bcc() {
        let entry = Entry {
            key: "k".into(),
            message_id: "<abc@example.org>".into(),
            created: 1_700_000_000,
            event: "e".into(),
            mail: Mail {
                action: "publish".into(),
                rule: "r".into(),
                from: "Archive <capsule@example.org>".into(),
                to: vec![],
                cc: vec!["cc@example.org".into()],
                bcc: vec!["hidden@example.org".into()],
                subject: "Tom & Jerry".into(),
                text: Some("a & b".into()),
                html: None,
                fallback: false,
            },
            attempts: 0,
            next_attempt: 0,
            last_error: None,
            delivered: None,
            answer: None,
        };
        let message = build_message(&entry).unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(text.contains("Message-ID: <abc@example.org>"), "{text}");
        assert!(text.contains("Subject: Tom & Jerry"), "{text}");
        assert!(!text.contains("hidden@example.org"), "{text}");
        assert!(text.contains("a & b"), "{text}");
        let envelope: Vec<String> = message
            .envelope()
            .to()
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(envelope, ["cc@example.org", "hidden@example.org"]);
        assert_eq!(
            text,
            String::from_utf8(build_message(&entry).unwrap().formatted()).unwrap()
        );
    }
}
