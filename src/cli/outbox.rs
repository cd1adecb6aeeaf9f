//! `capsule outbox list|flush|retry`: see and drive mail delivery on the server.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use serde::Serialize;

use capsule::mail::outbox::{now, Entry, Outbox, State};
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
    sent: usize,
    recent: Vec<Entry>,
}

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
    if json {
        let mut recent = outbox.list(State::Sent)?;
        recent.sort_by_key(|e| std::cmp::Reverse(e.delivered));
        recent.truncate(20);
        output::json(&Listing {
            outbox: outbox.root().to_path_buf(),
            queued,
            failed,
            sent,
            recent,
        })?;
        return Ok(Outcome::Ok);
    }
    let mut out = anstream::stdout();
    let time = now();
    writeln!(
        out,
        "{}",
        output::heading(&format!("Queued: {}", queued.len()))
    )?;
    for e in &queued {
        let when = if e.next_attempt <= time {
            "due now".to_string()
        } else {
            format!("next attempt in {}s", e.next_attempt - time)
        };
        let last = e
            .last_error
            .as_deref()
            .map(|r| format!("; last: {r}"))
            .unwrap_or_default();
        entry(
            &mut out,
            e,
            &format!("{} attempt(s), {when}{last}", e.attempts),
        )?;
    }
    writeln!(
        out,
        "{}",
        output::heading(&format!("Failed: {}", failed.len()))
    )?;
    for e in &failed {
        entry(
            &mut out,
            e,
            &output::bad(e.answer.as_deref().unwrap_or("no answer")),
        )?;
    }
    writeln!(out, "{}", output::heading(&format!("Sent: {sent}")))?;
    writeln!(out, "Outbox: {}", outbox.root().display())?;
    if !failed.is_empty() {
        writeln!(
            out,
            "`capsule outbox retry` puts failed mails back in the queue."
        )?;
    }
    Ok(Outcome::Ok)
}

/// One outbox entry: its key, subject and recipients, then `detail` indented below.
fn entry(out: &mut impl Write, e: &Entry, detail: &str) -> std::io::Result<()> {
    writeln!(
        out,
        "  {}  {}  {}",
        &e.key[..12],
        e.mail.subject,
        recipients(e)
    )?;
    writeln!(out, "      {detail}")
}

fn recipients(e: &Entry) -> String {
    let all: Vec<&str> = e
        .mail
        .to
        .iter()
        .chain(&e.mail.cc)
        .chain(&e.mail.bcc)
        .map(String::as_str)
        .collect();
    format!("→ {}", all.join(", "))
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
        let what = match &a.outcome {
            AttemptOutcome::Sent { answer } => format!("{} {answer}", output::ok("sent")),
            AttemptOutcome::Deferred { reason, .. } => format!("waits: {reason}"),
            AttemptOutcome::Failed { answer } => format!("{} {answer}", output::bad("failed:")),
        };
        writeln!(out, "{}  {}  {what}", &a.key[..12], a.subject)?;
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
