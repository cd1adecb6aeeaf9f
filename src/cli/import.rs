//! `capsule import cap`: CAP's deposits, records and schemas into this clone.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

use capsule::import::cap::{self, Api, Identity, Input, Report};

use super::output::{self, count};
use super::Outcome;

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    Cap(CapArgs),
}

#[derive(Debug, Args)]
#[command(
    about = "Import CERN Analysis Preservation's deposits, records and schemas",
    long_about = "Import CERN Analysis Preservation's deposits, records and schemas into this clone.

Reads CAP's data from a CAP server (--from-api, with a token from the environment) or
from saved exports (--from: API answers, search pages, record lists as CAP's fixtures and
dumps hold them), brings in the schemas the archive lacks (and every schema they $ref)
from a CAP schema export (--schemas), and writes one commit per deposit state: CAP's pid
is the id, `created`/`updated` are the commit dates, owners and _access are mapped through
access.toml (people it does not know are kept as CAP wrote them, and listed), and every
published revision becomes the record tag records/<id>/v<N>, in order.

Everything is read and judged first, as the server's hook will judge it. Any problem (a
record CAP itself would reject, a missing schema, a file that is not a CAP record, a
fetched file whose size or md5 differs from CAP's) stops the import before anything is
written, unless --skip-invalid. Files CAP cannot serve (404) are listed and skipped. Running it again changes
nothing. It commits in this clone and does not push unless --push: push the branch first,
then the record tags (the server accepts a record tag only on a commit it already has).
Run it as an archive admin, on the default branch, in a clean clone.",
    after_help = "Examples:
  # What would happen, from saved answers and CAP's schema fixtures
  capsule import cap --from exports/ --schemas ../cap/cap/modules/fixtures/schemas --dry-run

  # From the server; the token comes from $CAPSULE_CAP_TOKEN, never from the command line
  export CAPSULE_CAP_TOKEN=...   # CAP: Settings > Applications > New token
  capsule import cap --from-api https://analysispreservation.cern.ch --push

  # CAP's 2016 record lists name collections; say which schema they follow
  capsule import cap --from records.json --schemas jsonschemas/ \\
      --schema-map CMSAnalysis=cms-analysis/0.0.1 --json

Exit codes: 0 imported (or nothing to do), 1 problems found (nothing written unless
--skip-invalid), 2 the import could not run (bad token, server gone, dirty clone)."
)]
pub struct CapArgs {
    /// Saved CAP answers or record lists: files, or folders of .json files.
    #[arg(long, value_name = "PATH", num_args = 1.., required_unless_present = "from_api")]
    from: Vec<PathBuf>,
    /// A CAP server's address: reads /api/deposits/ and /api/records/ page by page.
    #[arg(long, value_name = "URL")]
    from_api: Option<String>,
    /// The environment variable that holds CAP's access token.
    #[arg(long, value_name = "NAME", default_value = "CAPSULE_CAP_TOKEN")]
    token_env: String,
    /// Seconds to wait for each answer of the server.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    timeout: u64,
    /// A CAP schema export (CAP's fixtures/schemas, or its jsonschemas/ tree) to bring
    /// missing schemas in from.
    #[arg(long, value_name = "DIR")]
    schemas: Vec<PathBuf>,
    /// Records naming FROM (a collection, a schema name or URL) follow schema TO
    /// (`name/version`, or `name` for its newest version).
    #[arg(long, value_name = "FROM=TO", value_parser = parse_mapping)]
    schema_map: Vec<(String, String)>,
    /// The schema of records that name none (CAP's basic listings).
    #[arg(long, value_name = "SCHEMA")]
    default_schema: Option<String>,
    /// Import what is valid and list what is not, instead of importing nothing.
    #[arg(long)]
    skip_invalid: bool,
    /// List what would be written and every problem; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Push the branch, then the record tags.
    #[arg(long)]
    push: bool,
    #[arg(long, default_value = "origin")]
    remote: String,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn parse_mapping(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((from, to)) if !from.is_empty() && !to.is_empty() => {
            Ok((from.to_string(), to.to_string()))
        }
        _ => Err(format!(
            "`{text}` is not FROM=TO (for example CMSAnalysis=cms-analysis/0.0.1)"
        )),
    }
}

pub fn run(cmd: ImportCommand) -> anyhow::Result<Outcome> {
    match cmd {
        ImportCommand::Cap(args) => import_cap(args),
    }
}

fn import_cap(args: CapArgs) -> anyhow::Result<Outcome> {
    let repo = git2::Repository::open_from_env()
        .context("not inside a clone of an archive: run `capsule import cap` in a clone (git clone <server>/archive.git)")?;
    repo.workdir()
        .context("capsule import needs a clone with a working tree, not a bare repository")?;
    let api = match &args.from_api {
        Some(url) => {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                bail!("--from-api `{url}` is not an http(s) address: give the server's address, e.g. https://analysispreservation.cern.ch");
            }
            let token = std::env::var(&args.token_env).ok().filter(|t| !t.trim().is_empty()).with_context(|| {
                format!("--from-api needs CAP's access token in ${} (never on the command line): export {}=<token>, or name another variable with --token-env", args.token_env, args.token_env)
            })?;
            Some(Api::new(
                url,
                token.trim().to_string(),
                &args.token_env,
                args.timeout,
            ))
        }
        None => None,
    };
    for path in &args.from {
        if !path.exists() {
            bail!("--from {}: no such file or folder", path.display());
        }
    }
    for dir in &args.schemas {
        if !dir.is_dir() {
            bail!(
                "--schemas {}: not a folder (give CAP's schema export folder)",
                dir.display()
            );
        }
    }
    let input = Input {
        files: args.from.clone(),
        api: api.as_ref(),
        schema_dirs: args.schemas.clone(),
        schema_map: args.schema_map.clone(),
        default_schema: args.default_schema.clone(),
    };
    let mut plan = cap::plan(&repo, &input)?;
    plan.report.dry_run = args.dry_run;
    let blocked = plan.report.has_problems() && !args.skip_invalid;
    if !args.dry_run && !blocked && (!plan.deposits.is_empty() || !plan.schema_files.is_empty()) {
        let who = identity(&repo)?;
        cap::write(&repo, &mut plan, &who)?;
    }
    let mut pushed = true;
    if args.push && plan.report.written {
        pushed = push(&repo, &args.remote, &plan.report)?;
    }
    render(&plan.report, args.json, blocked, args.push, &args.remote)?;
    Ok(
        if (plan.report.has_problems() && !args.skip_invalid) || !pushed {
            Outcome::Problems
        } else {
            Outcome::Ok
        },
    )
}

/// The committer: git's environment first, then the repository's config.
fn identity(repo: &git2::Repository) -> anyhow::Result<Identity> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let (Some(name), Some(email)) = (
        var("GIT_COMMITTER_NAME").or_else(|| var("GIT_AUTHOR_NAME")),
        var("GIT_COMMITTER_EMAIL").or_else(|| var("GIT_AUTHOR_EMAIL")),
    ) {
        return Ok(Identity { name, email });
    }
    let sig = repo.signature().context(
        "git does not know who you are: set `git config user.name` and `git config user.email`",
    )?;
    Ok(Identity {
        name: sig.name().unwrap_or("capsule").to_string(),
        email: sig.email().unwrap_or("capsule@localhost").to_string(),
    })
}

/// Pushes the branch, then the tags (a record tag must name a commit the server has).
fn push(repo: &git2::Repository, remote: &str, report: &Report) -> anyhow::Result<bool> {
    let dir = repo.workdir().expect("checked before");
    let branch = repo.head()?.shorthand().unwrap_or("main").to_string();
    let run = |refs: &[String]| -> anyhow::Result<bool> {
        let status = Command::new("git")
            .current_dir(dir)
            .arg("push")
            .arg(remote)
            .args(refs)
            .status()
            .context("cannot run git")?;
        Ok(status.success())
    };
    if !report.commits.is_empty() && !run(&[format!("HEAD:refs/heads/{branch}")])? {
        output::error(&format!("the server refused the import (its reasons are above); the commits stay in this clone: fix the problems, or reset with `git reset --hard {remote}/{branch}`"));
        return Ok(false);
    }
    if !report.tags.is_empty() && !run(&report.tags)? {
        output::error("the server refused the record tags (its reasons are above); the tags stay in this clone");
        return Ok(false);
    }
    Ok(true)
}

fn render(
    report: &Report,
    json: bool,
    blocked: bool,
    pushing: bool,
    remote: &str,
) -> anyhow::Result<()> {
    if json {
        return output::json(report);
    }
    let mut out = anstream::stdout();
    let verb = if report.written {
        "imported"
    } else {
        "would import"
    };
    for s in &report.schemas_added {
        writeln!(
            out,
            "schema {}: {} (from {})",
            s.schema,
            if report.written {
                "added"
            } else {
                "would be added"
            },
            s.from
        )?;
    }
    for d in &report.imported {
        let versions = if d.versions.is_empty() {
            String::new()
        } else {
            format!(
                ", {}",
                d.versions
                    .iter()
                    .map(|t| t.trim_start_matches("refs/tags/"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        writeln!(
            out,
            "{verb} {} ({}, {}{versions})",
            d.id,
            d.schema,
            count(d.commits, "commit")
        )?;
    }
    for id in &report.unchanged {
        writeln!(out, "unchanged {id}")?;
    }
    for u in &report.unknown_users {
        output::warning(&format!("{}: {} in {} is not in access.toml: kept as CAP wrote it (add them to [people], with cap_id if CAP knew them by number)", u.id, u.entry, u.at));
    }
    for f in &report.missing_files {
        output::warning(&format!(
            "{}: file {}{} is missing: {}",
            f.id,
            f.key,
            f.checksum
                .as_ref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default(),
            f.reason
        ));
    }
    for n in &report.not_records {
        output::error(&format!("{}: not a CAP record: {}", n.origin, n.reason));
    }
    for i in &report.invalid {
        output::error(&format!(
            "{} ({}): {}",
            i.id,
            i.origins.join(", "),
            i.message
        ));
        for p in &i.problems {
            anstream::eprintln!("  {}", output::problem_line(p));
        }
    }
    let problems = report.invalid.len() + report.not_records.len();
    if report.written {
        writeln!(
            out,
            "{} {} and {} made",
            output::ok("ok:"),
            count(report.commits.len(), "commit"),
            count(report.tags.len(), "record tag")
        )?;
        if !pushing && (!report.commits.is_empty() || !report.tags.is_empty()) {
            let tags: Vec<&str> = report.tags.iter().map(String::as_str).collect();
            writeln!(
                out,
                "Push the commits first, then the record tags:\n  git push {remote} HEAD\n{}",
                if tags.is_empty() {
                    String::new()
                } else {
                    format!("  git push {remote} {}\n", tags.join(" "))
                }
            )?;
        }
    } else if report.dry_run {
        writeln!(
            out,
            "dry run: nothing written ({} to import, {} unchanged, {})",
            count(report.imported.len(), "deposit"),
            report.unchanged.len(),
            count(problems, "problem")
        )?;
    } else if blocked {
        writeln!(out, "{} {}: nothing was imported. Fix them (or import the rest with --skip-invalid) and run the import again", output::bad("failed:"), count(problems, "problem"))?;
    } else {
        writeln!(
            out,
            "{} nothing to import: the archive holds all of it",
            output::ok("ok:")
        )?;
    }
    Ok(())
}
