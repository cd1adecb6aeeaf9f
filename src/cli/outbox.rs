//! `capsule outbox list|flush|retry`: see and drive mail delivery on the server.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use serde::Serialize;

use capsule::mail::outbox::{now, Entry, Outbox, Refusal, State};
use capsule::mail::send::{flush, AttemptOutcome, FlushReport};
use capsule::settings::MailSettings;

use super::output::{self, count};
use super::Outcome;

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Show queued, failed and delivered mails.
    List {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Deliver every queued mail that is due (safe to run from cron at any rate).
    ///
    /// Quiet when there is nothing to do. Exit code 1 when a mail failed for good in
    /// this run.
    Flush {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// Print nothing (for the background flush after a push).
        #[arg(long, hide = true)]
        quiet: bool,
    },
    /// Put failed mails back in the queue and make waiting ones due, then deliver.
    Retry {
        /// Keys (or their beginnings) of the mails to retry; all when none is given.
        keys: Vec<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// The server repository: `$GIT_DIR` (as hooks have it), else the repository here.
fn git_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("GIT_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let repo = git2::Repository::discover(".")
        .context("not in a git repository: run this in the server's repository (or use -C)")?;
    Ok(repo.path().to_path_buf())
}

/// `[mail]` from the default branch, as the hook reads it.
fn mail_settings(git_dir: &std::path::Path) -> anyhow::Result<Option<MailSettings>> {
    let repo = capsule::archive::open_for_hook(git_dir).context("opening the repository")?;
    let state = capsule::hook::ArchiveState::before_push(&repo)?;
    Ok(state.settings.mail)
}

#[derive(Serialize)]
struct Listing {
    outbox: PathBuf,
    queued: Vec<Entry>,
    failed: Vec<Entry>,
    /// How many mails were delivered (all of them, not only `recent`).
    sent: usize,
    recent: Vec<Entry>,
    /// Every entry listed above, as one row each (what the text output shows).
    entries: Vec<Row>,
}

/// One outbox entry as `outbox list` shows it.
#[derive(Serialize)]
struct Row {
    key: String,
    state: State,
    subject: String,
    to: Vec<String>,
    tries: u32,
    refused: Vec<Refusal>,
    /// Recipients still to deliver to (queued mails).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pending: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_attempt: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    answer: Option<String>,
}

impl Row {
    fn of(e: &Entry, state: State) -> Row {
        Row {
            key: e.key.clone(),
            state,
            subject: e.mail.subject.clone(),
            to: e.recipients().cloned().collect(),
            tries: e.attempts,
            refused: e.refused.clone(),
            pending: if state == State::Queued {
                e.pending()
            } else {
                Vec::new()
            },
            next_attempt: (state == State::Queued).then_some(e.next_attempt),
            last_error: e.last_error.clone(),
            answer: e.answer.clone(),
        }
    }
}

/// How many delivered mails `outbox list` shows (the newest).
const RECENT: usize = 20;

pub fn run(cmd: OutboxCommand) -> anyhow::Result<Outcome> {
    let git_dir = git_dir()?;
    let outbox = Outbox::at(&git_dir);
    match cmd {
        OutboxCommand::List { json } => list(&outbox, json),
        OutboxCommand::Flush { json, quiet } => deliver(&git_dir, &outbox, json, quiet),
        OutboxCommand::Retry { keys, json } => {
            let due = outbox.retry(&keys)?;
            if !json {
                writeln!(anstream::stdout(), "{} due now", count(due.len(), "mail"))?;
            }
            deliver(&git_dir, &outbox, json, false)
        }
    }
}

fn list(outbox: &Outbox, json: bool) -> anyhow::Result<Outcome> {
    let queued = outbox.list(State::Queued)?;
    let failed = outbox.list(State::Failed)?;
    let sent = outbox.count(State::Sent)?;
    let mut recent = outbox.list(State::Sent)?;
    recent.sort_by_key(|e| std::cmp::Reverse(e.delivered));
    recent.truncate(RECENT);
    let rows: Vec<Row> = [
        (State::Queued, &queued),
        (State::Failed, &failed),
        (State::Sent, &recent),
    ]
    .into_iter()
    .flat_map(|(state, list)| list.iter().map(move |e| Row::of(e, state)))
    .collect();
    if json {
        output::json(&Listing {
            outbox: outbox.root().to_path_buf(),
            queued,
            failed,
            sent,
            recent,
            entries: rows,
        })?;
        return Ok(Outcome::Ok);
    }
    let mut out = anstream::stdout();
    let time = now();
    for (state, heading) in [
        (State::Queued, format!("Queued: {}", queued.len())),
        (State::Failed, format!("Failed: {}", failed.len())),
        (
            State::Sent,
            if sent > recent.len() {
                format!("Sent: {sent} (the newest {} below)", recent.len())
            } else {
                format!("Sent: {sent}")
            },
        ),
    ] {
        writeln!(out, "{}", output::heading(&heading))?;
        for row in rows.iter().filter(|r| r.state == state) {
            let detail = match state {
                State::Queued => {
                    let when = match row.next_attempt {
                        Some(at) if at > time => format!("next attempt in {}s", at - time),
                        _ => "due now".to_string(),
                    };
                    let waiting = if row.pending.len() < row.to.len() {
                        format!("; still for {}", row.pending.join(", "))
                    } else {
                        String::new()
                    };
                    let last = row
                        .last_error
                        .as_deref()
                        .map(|r| format!("; last: {r}"))
                        .unwrap_or_default();
                    format!("{when}{waiting}{last}")
                }
                State::Failed => output::bad(row.answer.as_deref().unwrap_or("no answer")),
                State::Sent => row.answer.clone().unwrap_or_default(),
            };
            write_entry(
                &mut out,
                &row.key,
                state_name(state),
                row.tries,
                &row.subject,
                &row.to,
                &detail,
            )?;
            if !row.refused.is_empty() {
                writeln!(
                    out,
                    "      {} {}",
                    output::bad("refused:"),
                    refusals(&row.refused)
                )?;
            }
        }
    }
    writeln!(out, "Outbox: {}", outbox.root().display())?;
    if !failed.is_empty() {
        writeln!(
            out,
            "`capsule outbox retry` puts failed mails back in the queue."
        )?;
    }
    Ok(Outcome::Ok)
}

fn state_name(state: State) -> &'static str {
    match state {
        State::Queued => "queued",
        State::Sent => "sent",
        State::Failed => "failed",
    }
}

/// The one way an outbox entry is shown, by `outbox list` and by the reports of
/// `flush` and `retry`: key, state, tries, subject and recipients on one line, then
/// `detail` indented below (when there is one).
fn write_entry(
    out: &mut impl Write,
    key: &str,
    state: &str,
    tries: u32,
    subject: &str,
    recipients: &[String],
    detail: &str,
) -> std::io::Result<()> {
    let tries = match tries {
        1 => "1 try".to_string(),
        n => format!("{n} tries"),
    };
    writeln!(
        out,
        "  {}  {state}  {tries}  {subject}  → {}",
        &key[..key.len().min(12)],
        recipients.join(", ")
    )?;
    if !detail.is_empty() {
        writeln!(out, "      {detail}")?;
    }
    Ok(())
}

/// `address (answer), ...`.
fn refusals(list: &[Refusal]) -> String {
    list.iter()
        .map(|r| format!("{} ({})", r.address, r.answer))
        .collect::<Vec<_>>()
        .join(", ")
}

fn deliver(
    git_dir: &std::path::Path,
    outbox: &Outbox,
    json: bool,
    quiet: bool,
) -> anyhow::Result<Outcome> {
    let Some(settings) = mail_settings(git_dir)? else {
        let waiting = outbox.count(State::Queued)?;
        if !quiet {
            output::warning(&format!(
                "capsule.toml has no [mail] section, so nothing is delivered ({} queued)",
                count(waiting, "mail")
            ));
        }
        return Ok(Outcome::Ok);
    };
    let report = flush(outbox, &settings, git_dir, Duration::from_secs(60))?;
    if json {
        output::json(&report)?;
    } else if !quiet {
        print_report(&report)?;
    }
    Ok(if report.failed() > 0 {
        Outcome::Problems
    } else {
        Outcome::Ok
    })
}

fn print_report(report: &FlushReport) -> anyhow::Result<()> {
    let mut out = anstream::stdout();
    if report.busy {
        writeln!(out, "another flush is still delivering; nothing tried")?;
        return Ok(());
    }
    for a in &report.attempts {
        let (state, detail, refused) = match &a.outcome {
            AttemptOutcome::Sent { answer, refused } => {
                (output::ok("sent"), answer.clone(), refused.as_slice())
            }
            AttemptOutcome::Deferred { reason, .. } => {
                ("waits".to_string(), reason.clone(), &[][..])
            }
            AttemptOutcome::Failed { answer } => (output::bad("failed"), answer.clone(), &[][..]),
        };
        write_entry(
            &mut out,
            &a.key,
            &state,
            a.attempt,
            &a.subject,
            &a.recipients,
            &detail,
        )?;
        if !refused.is_empty() {
            writeln!(
                out,
                "      {} {}",
                output::bad("refused:"),
                refusals(refused)
            )?;
        }
    }
    // Quiet when nothing was tried, so cron mails nobody while mails wait.
    if !report.attempts.is_empty() {
        writeln!(
            out,
            "{} sent, {} waiting, {} failed",
            report.sent(),
            report.waiting,
            report.failed()
        )?;
    }
    Ok(())
}
