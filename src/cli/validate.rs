//! `capsule validate`

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;

use capsule::archive::{find_root, GitTree, Source, WorkTree};
use capsule::deposit::{classify, PathKind};
use capsule::problem::Problem;
use capsule::schema::{Mode, SchemaRegistry};
use capsule::validate::{check_all, parallel_map, parse_deposit, prepare};

use super::output::{self, count};
use super::Outcome;

#[derive(Debug, Args)]
#[command(
    after_help = "Drafts may be incomplete: without --publish, `required` is not enforced, but
types, allowed values, patterns and formats are. Exit status: 0 valid, 1 problems
found, 2 could not run.

Examples:
  capsule validate                          every deposit in the working tree
  capsule validate deposits/zee             one deposit
  capsule validate --publish deposits/zee   as it must be to be published
  capsule validate --rev origin/main --json what the server holds, as data"
)]
pub struct ValidateArgs {
    /// Deposit folders or deposit.json files (default: every deposit).
    paths: Vec<PathBuf>,
    /// Check the deposits as they are at this revision instead of the working tree.
    #[arg(long, value_name = "REV")]
    rev: Option<String>,
    /// Enforce `required`, as publishing a record does.
    #[arg(long)]
    publish: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct DepositResult {
    file: String,
    schema: Option<String>,
    valid: bool,
    problems: Vec<Problem>,
}

#[derive(Serialize)]
struct Report {
    valid: bool,
    mode: &'static str,
    source: String,
    deposits: Vec<DepositResult>,
    problems: usize,
}

pub fn run(args: ValidateArgs) -> anyhow::Result<Outcome> {
    let cwd = std::env::current_dir()?;
    let mode = if args.publish {
        Mode::Publish
    } else {
        Mode::Draft
    };
    let report = match &args.rev {
        Some(rev) => {
            let repo = git2::Repository::discover(&cwd).context("not inside a git repository")?;
            let root = repo
                .workdir()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| repo.path().to_path_buf());
            let commit = repo
                .revparse_single(rev)
                .and_then(|o| o.peel_to_commit())
                .with_context(|| format!("`{rev}` is not a revision of this repository"))?;
            let tree = GitTree::at_commit(&repo, commit.id())?;
            let files = deposit_files(&tree, &root, &cwd, &args.paths)?;
            let read: Vec<_> = files
                .iter()
                .map(|f| Ok((f.clone(), Source::read(&tree, f)?.unwrap_or_default())))
                .collect::<std::io::Result<_>>()?;
            validate_files(&tree, read, mode)
        }
        None => {
            let root = find_root(&cwd).context(
                "no capsule.toml here or in any parent folder: run this inside an archive (or create one with `capsule init`)",
            )?;
            let tree = WorkTree::new(&root);
            let files = deposit_files(&tree, &root, &cwd, &args.paths)?;
            let read = parallel_map(&files, |f| (f.clone(), std::fs::read(root.join(f))));
            let read = read
                .into_iter()
                .map(|(f, r)| match r {
                    Ok(bytes) => Ok((f, bytes)),
                    // Reported as a problem of that deposit below.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((f, Vec::new())),
                    Err(e) => Err(anyhow::Error::new(e).context(format!("cannot read {f}"))),
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            validate_files(&tree, read, mode)
        }
    };
    print(&report, args.json)?;
    Ok(if report.valid {
        Outcome::Ok
    } else {
        Outcome::Problems
    })
}

/// The archive paths of the deposits to check.
fn deposit_files(
    source: &dyn Source,
    root: &Path,
    cwd: &Path,
    paths: &[PathBuf],
) -> anyhow::Result<Vec<String>> {
    if paths.is_empty() {
        return Ok(source
            .list("deposits")?
            .into_iter()
            .filter(|id| !id.starts_with('.'))
            .map(|id| format!("deposits/{id}/deposit.json"))
            .collect());
    }
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let mut out = Vec::new();
    for path in paths {
        let absolute = if path.is_absolute() {
            path.clone()
        } else {
            cwd.join(path)
        };
        let absolute = normalise(&absolute);
        let Ok(relative) = absolute.strip_prefix(&root) else {
            bail!(
                "{} is outside the archive at {}",
                path.display(),
                root.display()
            );
        };
        let relative = relative.to_string_lossy().replace('\\', "/");
        let relative = relative.trim_end_matches('/').to_string();
        if relative == "deposits" || relative.is_empty() {
            out.extend(deposit_files(source, &root, cwd, &[])?);
            continue;
        }
        let file = if relative.ends_with(".json") {
            relative.clone()
        } else {
            format!("{relative}/deposit.json")
        };
        match classify(&file) {
            PathKind::DepositJson { .. } => out.push(file),
            _ => bail!(
                "{} is not a deposit: give deposits/<id> or deposits/<id>/deposit.json",
                path.display()
            ),
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Resolves `.` and `..` without touching the file system (the path may only exist at --rev).
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    if let Ok(c) = out.canonicalize() {
        return c;
    }
    // Canonicalise the longest existing ancestor so symlinked temp folders compare.
    let mut existing = out.clone();
    let mut rest = Vec::new();
    while !existing.exists() {
        match existing.file_name() {
            Some(name) => rest.push(name.to_os_string()),
            None => break,
        }
        existing.pop();
    }
    let mut base = existing.canonicalize().unwrap_or(existing);
    for name in rest.into_iter().rev() {
        base.push(name);
    }
    base
}

fn validate_files(source: &dyn Source, files: Vec<(String, Vec<u8>)>, mode: Mode) -> Report {
    let parsed = parallel_map(&files, |(path, bytes)| parse_deposit(path, bytes));
    let mut registry = SchemaRegistry::new();
    let mut results: Vec<DepositResult> = Vec::with_capacity(files.len());
    let mut prepared = Vec::new();
    let mut slots = Vec::new();
    for ((path, bytes), parsed) in files.iter().zip(parsed) {
        let outcome = if bytes.is_empty() && source.read(path).ok().flatten().is_none() {
            Err(vec![Problem::file(
                path,
                "there is no deposit.json here: every folder in deposits/ needs its metadata file",
            )])
        } else {
            parsed.and_then(|d| prepare(&mut registry, source, d))
        };
        match outcome {
            Ok(p) => {
                results.push(DepositResult {
                    file: path.clone(),
                    schema: Some(p.schema.root.sref.to_string()),
                    valid: true,
                    problems: Vec::new(),
                });
                slots.push(results.len() - 1);
                prepared.push(p);
            }
            Err(problems) => results.push(DepositResult {
                file: path.clone(),
                schema: None,
                valid: false,
                problems,
            }),
        }
    }
    for (slot, problems) in slots.into_iter().zip(check_all(&prepared, mode)) {
        results[slot].valid = problems.is_empty();
        results[slot].problems = problems;
    }
    let problems = results.iter().map(|r| r.problems.len()).sum();
    Report {
        valid: problems == 0,
        mode: match mode {
            Mode::Draft => "draft",
            Mode::Publish => "publish",
        },
        source: source.describe(),
        deposits: results,
        problems,
    }
}

fn print(report: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        return output::json(report);
    }
    let mut out = anstream::stdout();
    for result in &report.deposits {
        for problem in &result.problems {
            writeln!(out, "{}", output::problem_line(problem))?;
        }
    }
    let invalid = report.deposits.iter().filter(|d| !d.valid).count();
    let what = if report.mode == "publish" {
        "for publishing"
    } else {
        "as drafts"
    };
    if report.deposits.is_empty() {
        writeln!(out, "no deposits to check in {}", report.source)?;
    } else if report.valid {
        writeln!(
            out,
            "{} {} valid {what} ({})",
            output::ok("ok:"),
            count(report.deposits.len(), "deposit"),
            report.source
        )?;
    } else {
        writeln!(
            out,
            "{} {} of {} invalid {what}: {} ({})",
            output::bad("failed:"),
            invalid,
            count(report.deposits.len(), "deposit"),
            count(report.problems, "problem"),
            report.source
        )?;
    }
    Ok(())
}
