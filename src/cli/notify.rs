//! `capsule notify preview`: the mails a deposit's rules would produce now.

use std::io::Write;

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;

use capsule::archive::WorkTree;
use capsule::authoring::now;
use capsule::deposit::parse_schema_ref;
use capsule::mail::plan::{evaluate_event, ArchiveMail, EventMails, EventSpec};
use capsule::mail::rules::{Action, Mail, Outcome as MailOutcome};
use capsule::problem::Problem;
use capsule::record::{versions_of, Review, ReviewKind};
use capsule::schema::SchemaRegistry;
use capsule::settings::{MailFrom, MailSettings, MailTransport, Settings, SmtpUrl};

use super::clone::Clone;
use super::output;
use super::Outcome;

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Print the mails the schema's rules would send for a deposit now; sends nothing.
    Preview(PreviewArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ActionArg {
    Publish,
    Review,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Reads the working tree, so edits to the schema, the deposit and
templates/mail/ show before they are committed. `--action publish` previews
publishing the next version; `--action review` previews the newest review or comment
of the deposit (or a sample review when it has none).

Examples:
  capsule notify preview zee --action publish
  capsule notify preview zee --action review --as carol --json"
)]
pub struct PreviewArgs {
    /// The deposit.
    id: String,
    /// Which action to preview.
    #[arg(long, value_enum)]
    action: ActionArg,
    /// Who pushes (the submitter); default: you.
    #[arg(long = "as", value_name = "USER")]
    as_user: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Preview<'a> {
    action: &'static str,
    deposit: &'a str,
    submitter: &'a str,
    record_version: Option<u32>,
    /// Problems in the schema's notification config (a push of it would be refused).
    problems: Vec<String>,
    warnings: Vec<String>,
    mails: Vec<&'a Mail>,
    #[serde(flatten)]
    result: &'a EventMails,
}

pub fn run(cmd: NotifyCommand) -> anyhow::Result<Outcome> {
    match cmd {
        NotifyCommand::Preview(args) => preview(args),
    }
}

fn preview(args: PreviewArgs) -> anyhow::Result<Outcome> {
    let clone = Clone::open()?;
    clone.deposit(&args.id)?;
    let id = &args.id;
    let user = clone.user(args.as_user.as_deref())?;
    let tree = WorkTree::new(&clone.root);
    let settings = Settings::parse(
        &std::fs::read_to_string(clone.root.join("capsule.toml")).unwrap_or_default(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mail_off = settings.mail.is_none();
    let mail = settings.mail.clone().unwrap_or(MailSettings {
        from: MailFrom(format!(
            "{} <capsule@localhost>",
            settings.archive.name.replace(['<', '>', '"'], "")
        )),
        transport: MailTransport::File,
        url: SmtpUrl::default(),
        fallback_recipients: Vec::new(),
        base_url: None,
        dir: None,
        ca_file: None,
        timeout_secs: 10,
        retry_hours: 48,
    });

    let latest = versions_of(&clone.repo, id)?.last().map(|r| r.version);
    let action = match args.action {
        ActionArg::Publish => Action::Publish,
        ActionArg::Review => Action::Review,
    };
    let (record_version, review) = match action {
        Action::Publish => (Some(latest.map_or(1, |v| v + 1)), None),
        Action::Review => (latest, Some(newest_review(&clone, id, &user)?)),
    };
    let spec = EventSpec {
        action,
        deposit_id: id.clone(),
        record_version,
        pusher: Some(user.clone()),
        review,
    };
    let head = clone.repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let draft_revision = || {
        head.as_ref()
            .and_then(|c| capsule::history::log(&clone.repo, c.id(), id).ok())
            .map(|versions| versions.len().saturating_sub(1) as u64)
    };

    // The config as the hook would judge it, warnings included.
    let (mut problems, mut warnings): (Vec<Problem>, Vec<Problem>) = (Vec::new(), Vec::new());
    let deposit: serde_json::Value = capsule::json::from_bytes(&std::fs::read(
        clone.root.join(capsule::deposit::metadata_path(id)),
    )?)
    .map_err(anyhow::Error::msg)
    .with_context(|| format!("{} is not valid JSON", capsule::deposit::metadata_path(id)))?;
    if let Some(sref) = deposit
        .get("$schema")
        .and_then(|s| s.as_str())
        .and_then(parse_schema_ref)
    {
        if let Ok(Some((_, schema))) = SchemaRegistry::new().load(&tree, &sref) {
            let limits = capsule::mail::render::Limits::from_policy(&settings.policy);
            let check = capsule::mail::check_schema_within(&schema, &tree, limits)?;
            problems = check.problems;
            warnings = check.warnings;
        }
    }

    let access = &clone.access;
    let archive = ArchiveMail {
        settings: &settings,
        mail: &mail,
        access,
    };
    let result = evaluate_event(&tree, archive, &spec, &draft_revision)?;
    let outcomes: &[MailOutcome] = result
        .evaluation
        .as_ref()
        .map_or(&[], |e| e.outcomes.as_slice());
    let mails: Vec<&Mail> = outcomes
        .iter()
        .filter_map(|o| match o {
            MailOutcome::Mail(m) => Some(m),
            _ => None,
        })
        .collect();
    let failed = outcomes
        .iter()
        .any(|o| matches!(o, MailOutcome::Failed { .. }));
    let broken = !problems.is_empty() || failed;

    if args.json {
        output::json(&Preview {
            action: action.as_str(),
            deposit: id,
            submitter: &user,
            record_version,
            problems: problems.iter().map(ToString::to_string).collect(),
            warnings: warnings.iter().map(ToString::to_string).collect(),
            mails: mails.clone(),
            result: &result,
        })?;
        return Ok(if broken {
            Outcome::Problems
        } else {
            Outcome::Ok
        });
    }

    let mut out = anstream::stdout();
    let mut err = anstream::stderr();
    for p in &problems {
        writeln!(err, "{}", output::problem_line(p))?;
    }
    for w in &warnings {
        output::warning(&w.to_string());
    }
    if mail_off {
        output::warning("capsule.toml has no [mail] section: the server sends nothing; this is what the rules make");
    }
    let what = match action {
        Action::Publish => format!("publishing v{} of {id}", record_version.unwrap_or(1)),
        Action::Review => format!("a review of {id}"),
    };
    if let Some(why) = &result.skipped {
        writeln!(out, "No mail for {what}: {why}.")?;
        return Ok(if broken {
            Outcome::Problems
        } else {
            Outcome::Ok
        });
    }
    writeln!(
        out,
        "{} for {what}, pushed by {user}:",
        output::count(mails.len(), "mail")
    )?;
    // Mails are numbered among mails, so the count above and "n of total" agree;
    // configs that make no mail are listed without a number.
    let total = mails.len();
    let mut number = 0;
    for outcome in outcomes {
        writeln!(out)?;
        match outcome {
            MailOutcome::Mail(m) => {
                number += 1;
                writeln!(
                    out,
                    "{}",
                    output::heading(&format!("── {number} of {total}: {}", m.rule))
                )?;
                writeln!(out, "From: {}", m.from)?;
                for (label, list) in [("To", &m.to), ("Cc", &m.cc), ("Bcc", &m.bcc)] {
                    if !list.is_empty() {
                        writeln!(out, "{label}: {}", list.join(", "))?;
                    }
                }
                writeln!(out, "Subject: {}", m.subject)?;
                let fallback = if m.fallback {
                    " (fallback recipients)"
                } else {
                    ""
                };
                match (&m.html, &m.text) {
                    (Some(html), text) => {
                        writeln!(
                            out,
                            "Content-Type: multipart/alternative (text/plain, text/html){fallback}"
                        )?;
                        writeln!(out)?;
                        write_body(&mut out, html)?;
                        if let Some(text) = text {
                            writeln!(out, "{}", output::heading("── its text/plain part:"))?;
                            write_body(&mut out, text)?;
                        }
                    }
                    (None, text) => {
                        writeln!(out, "Content-Type: text/plain{fallback}")?;
                        writeln!(out)?;
                        write_body(&mut out, text.as_deref().unwrap_or(""))?;
                    }
                }
            }
            MailOutcome::NoRecipients { rule } => writeln!(
                out,
                "{}",
                output::heading(&format!(
                    "── {rule}: no mail (the rules name nobody, and there are no fallback recipients)"
                ))
            )?,
            MailOutcome::Failed { rule, reason } => writeln!(
                out,
                "{} {reason}",
                output::bad(&format!("── {rule}: no mail:"))
            )?,
        }
    }
    if let Some(evaluation) = &result.evaluation {
        for note in &evaluation.notes {
            output::warning(&format!("{}: {}", note.rule, note.message));
        }
    }
    Ok(if broken {
        Outcome::Problems
    } else {
        Outcome::Ok
    })
}

fn write_body(out: &mut impl Write, body: &str) -> std::io::Result<()> {
    write!(out, "{body}")?;
    if !body.ends_with('\n') {
        writeln!(out)?;
    }
    Ok(())
}

/// The newest review or comment of the deposit in the working tree, or a sample.
fn newest_review(clone: &Clone, id: &str, user: &str) -> anyhow::Result<(Review, String)> {
    let dir = clone.root.join(capsule::deposit::file_path(id, "reviews"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|read| {
            read.filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.ends_with(".json"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    for name in names.iter().rev() {
        let path = dir.join(name);
        let bytes = std::fs::read(&path)?;
        match Review::parse(
            &capsule::deposit::file_path(id, &format!("reviews/{name}")),
            &bytes,
        ) {
            Ok(review) if review.kind != ReviewKind::Resolution => {
                return Ok((review, name.trim_end_matches(".json").to_string()))
            }
            Ok(_) => continue,
            Err(problems) => bail!(
                "{}",
                problems
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            ),
        }
    }
    let review = Review {
        kind: ReviewKind::Review,
        verdict: Some("approved".into()),
        body: "(a sample review: this deposit has none yet)".into(),
        author: user.to_string(),
        created: now(),
        review: None,
        internal: false,
    };
    let name = review.file_name().trim_end_matches(".json").to_string();
    Ok((review, name))
}
