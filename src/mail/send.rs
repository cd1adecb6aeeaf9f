//! Delivery: the outbox's queue to an SMTP server (lettre) or to files.
//!
//! One flush at a time (the outbox lock). Each due mail is tried once per flush,
//! over its own connection, one RCPT per recipient (lettre's `SmtpConnection`:
//! its high-level `send` gives up on the first refused recipient):
//! - recipients the server takes get the mail and are recorded in the entry, so a
//!   later attempt never sends it to them again;
//! - a recipient refused with 5xx is recorded as refused, with the answer, and the
//!   mail still goes to everyone else;
//! - a recipient refused with 4xx is tried again on a later flush;
//! - only when nobody took the mail does the whole mail fail (failed/).
//!
//! A temporary failure of the whole mail (no connection, a timeout, a 4xx answer
//! to MAIL or DATA, a TLS or authentication problem) stays queued with a growing
//! delay; a permanent one (a 5xx answer, an address lettre refuses) moves to
//! failed/ with the server's answer. When the server cannot be reached at all, the
//! rest of the queue waits for the next flush instead of each trying again. Every
//! attempt is logged.
//!
//! Timeouts: `[mail] timeout_secs` bounds connecting and every command, but after
//! the end of DATA we wait 10 minutes for the final reply, as RFC 5321 §4.5.3.2
//! asks: a server may take that long to queue a mail, and giving up earlier made
//! a slow server get the mail twice (it had queued it; we tried again). One window
//! remains: if the connection breaks after the server took the mail but before its
//! reply reached us, we cannot know, and the retry sends it again (with the same
//! Message-ID, so receivers can tell). docs/notifications.md says so too.
//!
//! Credentials come from the environment (`CAPSULE_SMTP_USERNAME`,
//! `CAPSULE_SMTP_PASSWORD`), never from the repository; `CAPSULE_SMTP_CA_FILE`
//! overrides `[mail] ca_file`.

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{Certificate, SmtpConnection, Tls, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail as MailCommand, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::{Address, Message};
use serde::Serialize;

use super::outbox::{now, Entry, Outbox, Refusal, State};
use super::text::html_to_text;
use crate::settings::{MailSettings, MailTransport, SmtpSecurity};

/// The environment variables delivery reads.
pub const ENV_USERNAME: &str = "CAPSULE_SMTP_USERNAME";
pub const ENV_PASSWORD: &str = "CAPSULE_SMTP_PASSWORD";
pub const ENV_CA_FILE: &str = "CAPSULE_SMTP_CA_FILE";

/// Where the file transport writes when `[mail] dir` is not set (relative to the git dir).
pub const DEFAULT_FILE_DIR: &str = "capsule/mail";

/// How long to wait for the reply to the end of DATA (RFC 5321 §4.5.3.2: 10 minutes).
pub const DATA_END_TIMEOUT: Duration = Duration::from_secs(600);

/// The header the file transport adds so the admin sees who was Bcc'd (a real
/// delivery never carries it: lettre leaves Bcc out of the message).
pub const FILE_BCC_HEADER: &str = "X-Capsule-Bcc";

/// What became of one attempt.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AttemptOutcome {
    Sent {
        answer: String,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        refused: Vec<Refusal>,
    },
    Deferred {
        reason: String,
        next_attempt: u64,
    },
    Failed {
        answer: String,
    },
}

/// One delivery attempt.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub key: String,
    pub message_id: String,
    pub subject: String,
    /// Every recipient of the mail (to, cc, bcc).
    pub recipients: Vec<String>,
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
    /// One transaction ran: the server took the mail for `accepted` (possibly
    /// nobody), refused `refused` for good and `deferred` for now.
    Done {
        answer: String,
        accepted: Vec<String>,
        refused: Vec<Refusal>,
        deferred: Vec<Refusal>,
    },
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

/// How to reach the SMTP server.
struct SmtpSetup {
    host: String,
    port: u16,
    tls: Tls,
    timeout: Duration,
    credentials: Option<Credentials>,
    hello: ClientId,
}

enum Deliverer {
    Smtp(Box<SmtpSetup>),
    Files(PathBuf),
    /// The transport cannot be set up (a missing CA file, ...): everything waits.
    Broken(String),
}

impl Deliverer {
    fn new(settings: &MailSettings, git_dir: &Path) -> Deliverer {
        match settings.transport {
            MailTransport::File => Deliverer::Files(file_dir(settings, git_dir)),
            MailTransport::Smtp => match smtp_setup(settings, git_dir) {
                Ok(setup) => Deliverer::Smtp(Box::new(setup)),
                Err(reason) => Deliverer::Broken(reason),
            },
        }
    }

    /// Delivers `entry` to `recipients` (those still pending).
    fn deliver(&self, entry: &Entry, recipients: &[String]) -> Delivery {
        let message = match build_message(entry) {
            Ok(message) => message,
            Err(reason) => return Delivery::Permanent(reason),
        };
        match self {
            Deliverer::Broken(reason) => Delivery::Temporary {
                reason: reason.clone(),
                unreachable: true,
            },
            Deliverer::Files(dir) => {
                let bytes = file_copy(entry, &message.formatted());
                match write_file(dir, &entry.key, &bytes) {
                    Ok(path) => Delivery::Done {
                        answer: format!("written to {}", path.display()),
                        accepted: recipients.to_vec(),
                        refused: Vec::new(),
                        deferred: Vec::new(),
                    },
                    Err(e) => Delivery::Temporary {
                        reason: format!("cannot write to {}: {e}", dir.display()),
                        unreachable: true,
                    },
                }
            }
            Deliverer::Smtp(setup) => {
                let from = message.envelope().from().cloned();
                smtp_transaction(setup, from, recipients, &message.formatted())
            }
        }
    }
}

/// The file transport's copy: the message as it would be sent, with the Bcc
/// recipients in an `X-Capsule-Bcc` header on top. A header rather than a file
/// beside it: the .eml stays one self-contained file that any mail program opens
/// and grep finds, and the `X-` name says it is not part of the sent message.
fn file_copy(entry: &Entry, formatted: &[u8]) -> Vec<u8> {
    if entry.mail.bcc.is_empty() {
        return formatted.to_vec();
    }
    let mut bytes = format!("{FILE_BCC_HEADER}: {}\r\n", entry.mail.bcc.join(", ")).into_bytes();
    bytes.extend_from_slice(formatted);
    bytes
}

/// A whole-mail failure from lettre's error: permanent (5xx) or temporary.
fn failure(e: &lettre::transport::smtp::Error) -> Delivery {
    if e.is_permanent() {
        Delivery::Permanent(smtp_reason(e))
    } else {
        Delivery::Temporary {
            reason: smtp_reason(e),
            unreachable: !e.is_transient(),
        }
    }
}

/// One SMTP transaction for `recipients`: connect, MAIL, one RCPT each, DATA.
fn smtp_transaction(
    setup: &SmtpSetup,
    from: Option<Address>,
    recipients: &[String],
    message: &[u8],
) -> Delivery {
    let wrapper = match &setup.tls {
        Tls::Wrapper(params) => Some(params),
        _ => None,
    };
    let mut conn = match SmtpConnection::connect(
        (setup.host.as_str(), setup.port),
        Some(setup.timeout),
        &setup.hello,
        wrapper,
        None,
    ) {
        Ok(conn) => conn,
        Err(e) => return failure(&e),
    };
    let started = match &setup.tls {
        Tls::Required(params) => conn.starttls(params, &setup.hello),
        Tls::Opportunistic(params) if conn.can_starttls() => conn.starttls(params, &setup.hello),
        _ => Ok(()),
    };
    if let Err(e) = started {
        conn.abort();
        return failure(&e);
    }
    if let Some(credentials) = &setup.credentials {
        if let Err(e) = conn.auth(DEFAULT_MECHANISMS, credentials) {
            conn.abort();
            return failure(&e);
        }
    }
    let delivery = transaction(&mut conn, from, recipients, message);
    // A failed command may leave the connection anywhere: then just close it.
    if conn.has_broken() || matches!(delivery, Delivery::Temporary { .. }) {
        conn.abort();
    } else {
        let _ = conn.quit();
    }
    delivery
}

fn transaction(
    conn: &mut SmtpConnection,
    from: Option<Address>,
    recipients: &[String],
    message: &[u8],
) -> Delivery {
    let mut options = Vec::new();
    let mut addresses = Vec::new();
    let mut refused = Vec::new();
    for text in recipients {
        match text.parse::<Mailbox>() {
            Ok(mailbox) => addresses.push((text.clone(), mailbox.email)),
            Err(e) => refused.push(Refusal {
                address: text.clone(),
                answer: format!("not an address lettre accepts: {e}"),
            }),
        }
    }
    let non_ascii = from
        .iter()
        .chain(addresses.iter().map(|(_, a)| a))
        .any(|a: &Address| !AsRef::<str>::as_ref(a).is_ascii());
    if non_ascii {
        if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
            return Delivery::Permanent(
                "an address is not ASCII and the server does not support SMTPUTF8".into(),
            );
        }
        options.push(MailParameter::SmtpUtfEight);
    }
    if !message.is_ascii() {
        if !conn.server_info().supports_feature(Extension::EightBitMime) {
            return Delivery::Permanent(
                "the mail is not ASCII and the server does not support 8BITMIME".into(),
            );
        }
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    if let Err(e) = conn.command(MailCommand::new(from, options)) {
        return failure(&e);
    }
    let mut accepted = Vec::new();
    let mut deferred = Vec::new();
    for (text, address) in addresses {
        match conn.command(Rcpt::new(address, Vec::new())) {
            Ok(_) => accepted.push(text),
            Err(e) if e.is_permanent() => refused.push(Refusal {
                address: text,
                answer: smtp_reason(&e),
            }),
            Err(e) if e.is_transient() => deferred.push(Refusal {
                address: text,
                answer: smtp_reason(&e),
            }),
            // No answer at all: nothing was sent yet, the whole mail waits.
            Err(e) => return failure(&e),
        }
    }
    if accepted.is_empty() {
        return Delivery::Done {
            answer: String::new(),
            accepted,
            refused,
            deferred,
        };
    }
    if let Err(e) = conn.command(Data) {
        return failure(&e);
    }
    // RFC 5321 §4.5.3.2: 10 minutes for the reply to the end of DATA.
    if let Err(e) = conn.set_timeout(Some(DATA_END_TIMEOUT)) {
        return Delivery::Temporary {
            reason: format!("cannot set the socket's timeout: {e}"),
            unreachable: true,
        };
    }
    match conn.message(message) {
        Ok(response) => Delivery::Done {
            answer: format!(
                "{} {}",
                response.code(),
                response.message().collect::<Vec<_>>().join(" ")
            ),
            accepted,
            refused,
            deferred,
        },
        Err(e) => failure(&e),
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
        text.push_str(" (the server timed out: no answer within [mail] timeout_secs, or 10 minutes after the end of the mail)");
    }
    text
}

fn smtp_setup(settings: &MailSettings, git_dir: &Path) -> Result<SmtpSetup, String> {
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
    let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
    let credentials =
        var(ENV_USERNAME).map(|user| Credentials::new(user, var(ENV_PASSWORD).unwrap_or_default()));
    Ok(SmtpSetup {
        host: endpoint.host.clone(),
        port: endpoint.port,
        tls,
        timeout: Duration::from_secs(settings.timeout_secs.max(1)),
        credentials,
        hello: ClientId::default(),
    })
}

/// The RFC 5322 message of an entry: its stored Message-ID and planning time, so
/// that every attempt sends the very same message. HTML mails go out as
/// multipart/alternative with their plain-text part (entries queued before mails
/// carried one get it derived from the HTML here); the boundary comes from the key,
/// not from chance, for the same reason.
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
        (Some(html), text) => {
            let text = text.clone().unwrap_or_else(|| html_to_text(html));
            builder.multipart(
                MultiPart::alternative()
                    .boundary(format!("capsule-{}", entry.key))
                    .singlepart(SinglePart::plain(text))
                    .singlepart(SinglePart::html(html.clone())),
            )
        }
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
            let pending = entry.pending();
            let delivery = match &unreachable {
                Some(reason) => Delivery::Temporary {
                    reason: format!("not tried: {reason}"),
                    unreachable: true,
                },
                None => deliverer.deliver(&entry, &pending),
            };
            entry.attempts += 1;
            let time = now();
            let give_up = time >= entry.created + settings.retry_hours * 3600;
            let gave_up = |reason: &str| {
                format!(
                    "gave up after {} attempts over {} hours; last: {reason}",
                    entry.attempts, settings.retry_hours
                )
            };
            let outcome = match delivery {
                Delivery::Done {
                    answer,
                    accepted,
                    refused,
                    mut deferred,
                } => {
                    entry.accepted.extend(accepted.iter().cloned());
                    entry.refused.extend(refused.iter().cloned());
                    if give_up {
                        for d in &mut deferred {
                            d.answer = gave_up(&d.answer);
                        }
                        entry.refused.append(&mut deferred);
                    }
                    let mut detail = Vec::new();
                    if !accepted.is_empty() {
                        detail.push(format!("{answer} for {}", accepted.join(", ")));
                    }
                    if !refused.is_empty() {
                        detail.push(format!("refused: {}", refusals(&refused)));
                    }
                    if !deferred.is_empty() {
                        detail.push(format!("waiting for: {}", refusals(&deferred)));
                    }
                    let detail = detail.join("; ");
                    if !deferred.is_empty() {
                        entry.next_attempt = time + backoff(entry.attempts);
                        entry.last_error = Some(detail.clone());
                        outbox.update_queued(&entry)?;
                        outbox.log(
                            "deferred",
                            Some(&entry.key),
                            Some(&entry.event),
                            &format!("attempt {}: {detail}", entry.attempts),
                        )?;
                        AttemptOutcome::Deferred {
                            reason: detail,
                            next_attempt: entry.next_attempt,
                        }
                    } else if entry.accepted.is_empty() {
                        let answer =
                            format!("every recipient was refused: {}", refusals(&entry.refused));
                        entry.answer = Some(answer.clone());
                        outbox.mark_failed(&entry)?;
                        outbox.log("failed", Some(&entry.key), Some(&entry.event), &answer)?;
                        AttemptOutcome::Failed { answer }
                    } else {
                        entry.delivered = Some(time);
                        entry.answer = Some(detail.clone());
                        entry.last_error = None;
                        outbox.mark_sent(&entry)?;
                        outbox.log("sent", Some(&entry.key), Some(&entry.event), &detail)?;
                        AttemptOutcome::Sent {
                            answer: detail,
                            refused: entry.refused.clone(),
                        }
                    }
                }
                Delivery::Permanent(answer) => {
                    entry.answer = Some(answer.clone());
                    if entry.accepted.is_empty() {
                        outbox.mark_failed(&entry)?;
                        outbox.log("failed", Some(&entry.key), Some(&entry.event), &answer)?;
                        AttemptOutcome::Failed { answer }
                    } else {
                        // Some got it on an earlier attempt: the mail went out, and
                        // the rest are refused.
                        for address in pending {
                            entry.refused.push(Refusal {
                                address,
                                answer: answer.clone(),
                            });
                        }
                        entry.delivered = Some(time);
                        outbox.mark_sent(&entry)?;
                        outbox.log("sent", Some(&entry.key), Some(&entry.event), &answer)?;
                        AttemptOutcome::Sent {
                            answer,
                            refused: entry.refused.clone(),
                        }
                    }
                }
                Delivery::Temporary {
                    reason,
                    unreachable: cannot_connect,
                } => {
                    if cannot_connect && unreachable.is_none() {
                        unreachable = Some(reason.clone());
                    }
                    if give_up && entry.accepted.is_empty() {
                        let answer = gave_up(&reason);
                        entry.answer = Some(answer.clone());
                        outbox.mark_failed(&entry)?;
                        outbox.log("failed", Some(&entry.key), Some(&entry.event), &answer)?;
                        AttemptOutcome::Failed { answer }
                    } else if give_up {
                        let answer = gave_up(&reason);
                        for address in pending {
                            entry.refused.push(Refusal {
                                address,
                                answer: answer.clone(),
                            });
                        }
                        entry.delivered = Some(time);
                        entry.answer = Some(answer.clone());
                        outbox.mark_sent(&entry)?;
                        outbox.log("sent", Some(&entry.key), Some(&entry.event), &answer)?;
                        AttemptOutcome::Sent {
                            answer,
                            refused: entry.refused.clone(),
                        }
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
                recipients: entry.recipients().cloned().collect(),
                attempt: entry.attempts,
                outcome,
            });
        }
    }
    report.waiting = outbox.count(State::Queued)?;
    Ok(report)
}

/// `address (answer), ...` on one line.
fn refusals(list: &[Refusal]) -> String {
    list.iter()
        .map(|r| format!("{} ({})", r.address, r.answer))
        .collect::<Vec<_>>()
        .join(", ")
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
            accepted: vec![],
            refused: vec![],
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
