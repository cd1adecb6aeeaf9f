//! `capsule validate`

use std::cell::RefCell;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;

use capsule::archive::{find_root, GitTree, Source, WorkTree};
use capsule::deposit::{classify, PathKind};
use capsule::json::decode_text;
use capsule::problem::Problem;
use capsule::schema::{Mode, SchemaRegistry};
use capsule::validate::{
    check, check_all, check_unique, parallel_map, parse_deposit, validation_settings, warnings,
    ChosenSchemas, ParsedDeposit, Prepared,
};

use super::output::{self, count};
use super::Outcome;

#[derive(Debug, Args)]
#[command(
    after_help = "Drafts may be incomplete: without --publish, `required` is not enforced, but
types, allowed values, patterns and formats are. Schemas from CAP are judged by CAP's
engine (docs/cap.md): formats are warnings there unless capsule.toml sets
[validation] cap_strict = true. Exit status: 0 valid, 1 problems found, 2 could not run.

Examples:
  capsule validate                          every deposit in the working tree
  capsule validate zee                      one deposit, by id
  capsule validate --publish zee            as it must be to be published
  capsule validate --rev origin/main --json what the server holds, as data"
)]
pub struct ValidateArgs {
    /// Deposit ids, deposit folders or deposit.json files (default: every deposit).
    #[arg(value_name = "ID|PATH")]
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
    /// What capsule notes on top of CAP's engine (formats); never makes it invalid.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<Problem>,
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
            // As the hook: a commit whose trees git would check out differently from
            // how capsule reads them is judged on that alone.
            let defects = capsule::archive::non_canonical_trees(&repo, commit.id())?;
            if !defects.is_empty() {
                let report = Report {
                    valid: false,
                    mode: if args.publish { "publish" } else { "draft" },
                    source: tree.describe(),
                    problems: defects.len(),
                    deposits: defects
                        .into_iter()
                        .map(|problem| DepositResult {
                            file: problem.file.clone(),
                            schema: None,
                            valid: false,
                            problems: vec![problem],
                            warnings: Vec::new(),
                        })
                        .collect(),
                };
                print(&report, args.json)?;
                return Ok(Outcome::Problems);
            }
            let files = deposit_files(&tree, &root, &cwd, &args.paths)?;
            validate_files(&tree, &files, Files::ThroughSource, mode)?
        }
        None => {
            let root = find_root(&cwd).context(
                "no capsule.toml here or in any parent folder: run this inside an archive (or create one with `capsule init`)",
            )?;
            let tree = WorkTree::new(&root);
            let files = deposit_files(&tree, &root, &cwd, &args.paths)?;
            validate_files(&tree, &files, Files::InFolder(&root), mode)?
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
        return Ok(capsule::archive::deposit_ids(source)?
            .into_iter()
            .map(|id| capsule::deposit::metadata_path(&id))
            .collect());
    }
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let mut out = Vec::new();
    for path in paths {
        // A bare id names a deposit wherever its shard folder is.
        if let Some(id) = path
            .to_str()
            .filter(|p| capsule::deposit::check_id(p).is_ok() && !cwd.join(p).exists())
        {
            out.push(capsule::deposit::metadata_path(id));
            continue;
        }
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
                "{} is not a deposit: give its id, its folder (deposits/<shard>/<id>) or its deposit.json{}",
                path.display(),
                match classify(&file) {
                    PathKind::Misplaced(why) => format!(" ({why})"),
                    _ => String::new(),
                }
            ),
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Why a deposit's metadata could not be read: a deposit that does not exist at all is
/// not the same mistake as a folder without its metadata file.
fn missing_deposit(source: &dyn Source, path: &str) -> anyhow::Result<Problem> {
    let folder = path.trim_end_matches("/deposit.json");
    let id = folder.rsplit('/').next().unwrap_or(folder);
    Ok(if source.list(folder)?.is_empty() {
        Problem::file(
            path,
            format!("there is no deposit `{id}` in {}: no folder {folder}; `capsule new SCHEMA --id {id}` creates one", source.describe()),
        )
    } else {
        Problem::file(
            path,
            "there is no deposit.json here: every deposit folder needs its metadata file",
        )
    })
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

/// Where the bytes of deposit files come from.
#[derive(Clone, Copy)]
enum Files<'a> {
    /// Read by the validating threads themselves, from the archive folder.
    InFolder(&'a Path),
    /// Read one after the other through the source (a git tree is not shared
    /// between threads).
    ThroughSource,
}

/// Deposits go through in chunks, so memory stays bounded however large the archive
/// (a parsed deposit takes several times the size of its file) and every parsed
/// deposit is freed by the thread that parsed it. The first chunk is small: it finds
/// the common schemas, so that later chunks are checked in parallel without waiting
/// for the registry.
const FIRST_CHUNK: usize = 16;
const CHUNK: usize = 1024;

/// One deposit after the parallel pass.
enum Stage {
    /// Checked against a schema found in [`ChosenSchemas`].
    Checked {
        schema: String,
        problems: Vec<Problem>,
        warnings: Vec<Problem>,
    },
    /// Parsed (or not) but its schema still needs the registry.
    Parsed(Result<ParsedDeposit, Vec<Problem>>),
    /// There is no such file.
    Missing,
}

/// A deposit file's bytes, as the validating threads get them.
enum Bytes<'a> {
    /// Still to be read, from this folder.
    InFolder(&'a Path),
    /// Read already; `None` when there is no such file.
    Read(Option<Vec<u8>>),
}

/// Reads and parses one deposit, and checks it when its schema is already chosen.
fn stage_deposit(
    path: &str,
    bytes: &Bytes<'_>,
    chosen: &ChosenSchemas,
    mode: Mode,
) -> anyhow::Result<Stage> {
    let stage = match bytes {
        Bytes::Read(None) => Stage::Missing,
        Bytes::Read(Some(bytes)) => Stage::Parsed(parse_deposit(path, bytes)),
        Bytes::InFolder(root) => match read_and_check(&root.join(path), path, chosen, mode) {
            Ok(stage) => stage,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Stage::Missing,
            Err(e) => return Err(anyhow::Error::new(e).context(format!("cannot read {path}"))),
        },
    };
    Ok(match stage {
        Stage::Parsed(Ok(deposit)) => match chosen.lookup(&deposit) {
            Some(schema) => {
                let prepared = Prepared { deposit, schema };
                Stage::Checked {
                    schema: prepared.schema.root.sref.to_string(),
                    problems: check(&prepared, mode),
                    warnings: warnings(&prepared),
                }
            }
            None => Stage::Parsed(Ok(deposit)),
        },
        other => other,
    })
}

/// Reads a deposit file into a buffer each thread reuses, and settles the common
/// case in one go: a valid deposit whose schema is chosen already needs no text and
/// no copy of its bytes. Anything else keeps its text, for locating problems.
fn read_and_check(
    file: &Path,
    path: &str,
    chosen: &ChosenSchemas,
    mode: Mode,
) -> std::io::Result<Stage> {
    thread_local! {
        static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    BUFFER.with_borrow_mut(|buffer| {
        buffer.clear();
        File::open(file)?.read_to_end(buffer)?;
        // The one JSON reader (duplicate keys refused, a BOM ignored), as the hook
        // reads the file.
        match capsule::json::from_bytes(buffer) {
            Ok(value) if value.is_object() => {
                if let Some(schema) = chosen.passes(&value, mode) {
                    return Ok(Stage::Checked {
                        schema: schema.root.sref.to_string(),
                        problems: Vec::new(),
                        warnings: Vec::new(),
                    });
                }
                // What parse_deposit would make of it, without parsing it again.
                let deposit = decode_text(path, buffer).map(|text| ParsedDeposit {
                    path: path.to_string(),
                    text,
                    value,
                });
                Ok(Stage::Parsed(deposit))
            }
            // Problems need positions and exact messages: the long way.
            _ => Ok(Stage::Parsed(parse_deposit(path, buffer))),
        }
    })
}

fn validate_files(
    source: &dyn Source,
    files: &[String],
    from: Files<'_>,
    mode: Mode,
) -> anyhow::Result<Report> {
    let mut registry = SchemaRegistry::with_validation(validation_settings(source));
    let mut chosen = ChosenSchemas::default();
    let mut results: Vec<DepositResult> = Vec::with_capacity(files.len());
    let mut start = 0;
    while start < files.len() {
        let size = if start == 0 { FIRST_CHUNK } else { CHUNK };
        let chunk = &files[start..files.len().min(start + size)];
        start += chunk.len();

        let read: Vec<(&String, Bytes<'_>)> = match from {
            Files::InFolder(root) => chunk.iter().map(|f| (f, Bytes::InFolder(root))).collect(),
            Files::ThroughSource => chunk
                .iter()
                .map(|f| Ok((f, Bytes::Read(source.read(f)?))))
                .collect::<std::io::Result<_>>()?,
        };
        let chosen_so_far = &chosen;
        let staged = parallel_map(&read, |(path, bytes)| {
            stage_deposit(path, bytes, chosen_so_far, mode)
        });

        let mut prepared = Vec::new();
        let mut slots = Vec::new();
        for (path, stage) in chunk.iter().zip(staged) {
            let outcome = match stage? {
                Stage::Checked {
                    schema,
                    problems,
                    warnings,
                } => {
                    results.push(DepositResult {
                        file: path.clone(),
                        schema: Some(schema),
                        valid: problems.is_empty(),
                        problems,
                        warnings,
                    });
                    continue;
                }
                Stage::Missing => Err(vec![missing_deposit(source, path)?]),
                Stage::Parsed(parsed) => {
                    parsed.and_then(|d| chosen.prepare(&mut registry, source, d))
                }
            };
            match outcome {
                Ok(p) => {
                    results.push(DepositResult {
                        file: path.clone(),
                        schema: Some(p.schema.root.sref.to_string()),
                        valid: true,
                        problems: Vec::new(),
                        warnings: Vec::new(),
                    });
                    slots.push(results.len() - 1);
                    prepared.push(p);
                }
                Err(problems) => results.push(DepositResult {
                    file: path.clone(),
                    schema: None,
                    valid: false,
                    problems,
                    warnings: Vec::new(),
                }),
            }
        }
        for (slot, problems) in slots.iter().zip(check_all(&prepared, mode)) {
            results[*slot].valid = problems.is_empty();
            results[*slot].problems = problems;
        }
        for (slot, p) in slots.iter().zip(&prepared) {
            results[*slot].warnings = warnings(p);
        }
        // CAP's uniqueness rule, against every deposit of the same tree.
        for problem in check_unique(&prepared, source)? {
            if let Some(r) = results.iter_mut().find(|r| r.file == problem.file) {
                r.valid = false;
                r.problems.push(problem);
            }
        }
    }
    let problems = results.iter().map(|r| r.problems.len()).sum();
    Ok(Report {
        valid: problems == 0,
        mode: match mode {
            Mode::Draft => "draft",
            Mode::Publish => "publish",
        },
        source: source.describe(),
        deposits: results,
        problems,
    })
}

fn print(report: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        // Buffered: stdout flushes at every newline, and pretty JSON for 10k deposits
        // has 60k of them.
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        serde_json::to_writer_pretty(&mut out, report)?;
        writeln!(out)?;
        out.flush()?;
        return Ok(());
    }
    let mut out = anstream::stdout();
    for result in &report.deposits {
        for problem in &result.problems {
            writeln!(out, "{}", output::problem_line(problem))?;
        }
        for warning in &result.warnings {
            output::warning(&warning.to_string());
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
