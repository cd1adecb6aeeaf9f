//! `capsule export`, `cite`, `doi`, `withdraw` and `audit`: records leaving the archive
//! for the long term, and the checks that the archive still holds what it promised.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use git2::Repository;
use serde::Serialize;

use capsule::access::{local_user, Access, DepositAccess, Level};
use capsule::preserve::export::{package, ExportOptions};
use capsule::preserve::tombstone::{withdrawal, Tombstone, TOMBSTONE};
use capsule::preserve::{
    cite, current_commit, doi, identifiers, metadata::Record, parse_spec, settings_at, snapshot,
    PreserveError,
};
use capsule::settings::Settings;

use super::clone::{run_git, Clone};
use super::output::{self, count};
use super::Outcome;

/// The repository around the current folder (a clone or a bare server repository)
/// and its settings as committed on HEAD.
fn open_archive() -> anyhow::Result<(Repository, Settings, Access)> {
    let cwd = std::env::current_dir()?;
    let repo = Repository::discover(&cwd)
        .with_context(|| format!("{} is not inside a git repository", cwd.display()))?;
    let head = repo
        .head()
        .ok()
        .and_then(|h| h.peel_to_commit().ok())
        .map(|c| c.id());
    let (settings, access) = match head {
        Some(commit) => {
            let settings = settings_at(&repo, commit)?;
            let tree = capsule::archive::GitTree::at_commit(&repo, commit)?;
            let text = tree
                .read("access.toml")?
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let access = Access::parse(&text).map_err(|e| anyhow::anyhow!("{e}"))?;
            (settings, access)
        }
        None => (Settings::default(), Access::default()),
    };
    Ok((repo, settings, access))
}

fn registered(repo: &Repository, settings: &Settings, id: &str) -> anyhow::Result<doi::Registered> {
    let commit = current_commit(repo, settings)?;
    doi::registered_at(repo, commit, id).map_err(anyhow::Error::msg)
}

#[derive(Debug, Args)]
#[command(
    after_help = "A package is a BagIt 1.0 bag (RFC 8493) holding the deposit as tagged, its files,
its public reviews and the schemas it needs, described by an RO-Crate 1.2
(data/ro-crate-metadata.json), with DataCite 4.5 metadata and citations under
data/metadata/. Two exports of the same version are byte-identical.

Withdrawn records are never exported. Restricted records (whose _access.deposit-read
is not public) are exported only with --internal, by an archive admin or one of the
deposit's admins; such a bag also keeps internal reviews and says so in bag-info.txt.

Examples:
  capsule export higgs-4l                 the newest version, as ./higgs-4l-v<N>/
  capsule export higgs-4l@v1 --zip --out /srv/exports
  capsule export --all --out /srv/exports  every published version"
)]
pub struct ExportArgs {
    /// ID or ID@vN (default: the newest version).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    record: Option<String>,
    /// Every published version of every record.
    #[arg(long)]
    all: bool,
    /// The folder to write the bags into.
    #[arg(long, value_name = "DIR", default_value = ".")]
    out: PathBuf,
    /// Write each bag as one zip file.
    #[arg(long)]
    zip: bool,
    /// An admin's full export: restricted records and internal reviews too.
    #[arg(long)]
    internal: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Exported {
    record: String,
    path: Option<String>,
    skipped: Option<String>,
}

pub fn export(args: ExportArgs) -> anyhow::Result<Outcome> {
    let (repo, settings, access) = open_archive()?;
    let mut targets: Vec<(String, Option<u32>)> = Vec::new();
    if args.all {
        for (id, tags) in capsule::record::list_records(&repo)? {
            targets.extend(tags.iter().map(|t| (id.clone(), Some(t.version))));
        }
    } else if let Some(spec) = &args.record {
        targets.push(parse_spec(spec).map_err(anyhow::Error::msg)?);
    }
    let user = local_user(
        &access,
        repo.config()?.get_string("user.email").ok().as_deref(),
    );
    let mut results = Vec::new();
    let mut failed = false;
    for (id, version) in targets {
        let name = match version {
            Some(n) => format!("{id}@v{n}"),
            None => id.clone(),
        };
        // The tombstone is asked first: nothing of a withdrawn record is read.
        let outcome = withdrawal(&repo, &id).map_err(anyhow::Error::from).and_then(|tombstone| {
            if tombstone.is_some() {
                return package_of(&repo, &settings, &id, version, tombstone.as_ref(), args.internal);
            }
            if args.internal {
                let snap = snapshot(&repo, &id, version)?;
                let admin = user.as_deref().is_some_and(|u| {
                    access.matches_any(u, &settings.policy.admins)
                        || DepositAccess::of(&snap.deposit).level(&access, u) == Level::Admin
                });
                if !admin {
                    bail!("an internal export of {id} needs an archive admin (policy.admins) or one of the deposit's admins; you are {}", user.as_deref().unwrap_or("unknown (set CAPSULE_USER)"));
                }
            }
            package_of(&repo, &settings, &id, version, None, args.internal)
        });
        match outcome {
            Ok(pkg) => {
                let path = if args.zip {
                    args.out.join(format!("{}.zip", pkg.name))
                } else {
                    args.out.join(&pkg.name)
                };
                if path.exists() {
                    output::error(&format!(
                        "{} exists already: remove it, or export into another --out",
                        path.display()
                    ));
                    failed = true;
                    continue;
                }
                if args.zip {
                    capsule::preserve::bag::write_zip(&pkg.files, &pkg.name, &path)?;
                } else {
                    capsule::preserve::bag::write_folder(&pkg.files, &path)?;
                }
                results.push(Exported {
                    record: format!("{}@v{}", pkg.record.id, pkg.record.version),
                    path: Some(path.display().to_string()),
                    skipped: None,
                });
            }
            Err(e) => {
                let skippable = matches!(
                    e.downcast_ref::<PreserveError>(),
                    Some(PreserveError::Withdrawn { .. } | PreserveError::Restricted { .. })
                );
                if args.all && skippable {
                    results.push(Exported {
                        record: name,
                        path: None,
                        skipped: Some(e.to_string()),
                    });
                } else {
                    output::error(&format!("{name} not exported: {e:#}"));
                    failed = true;
                }
            }
        }
    }
    if args.json {
        output::json(&results)?;
    } else {
        let mut out = anstream::stdout();
        for r in &results {
            match (&r.path, &r.skipped) {
                (Some(path), _) => {
                    writeln!(out, "{} {} -> {path}", output::ok("Exported"), r.record)?
                }
                (None, Some(why)) => writeln!(out, "Skipped {}: {why}", r.record)?,
                _ => {}
            }
        }
    }
    Ok(if failed {
        Outcome::Problems
    } else {
        Outcome::Ok
    })
}

fn package_of(
    repo: &Repository,
    settings: &Settings,
    id: &str,
    version: Option<u32>,
    tombstone: Option<&Tombstone>,
    internal: bool,
) -> anyhow::Result<capsule::preserve::export::Package> {
    if let Some(t) = tombstone {
        return Err(PreserveError::Withdrawn {
            id: id.to_string(),
            date: t.day().to_string(),
            reason: t.reason.clone(),
        }
        .into());
    }
    let snap = snapshot(repo, id, version)?;
    let registered = registered(repo, settings, id)?;
    Ok(package(
        repo,
        settings,
        &snap,
        &registered,
        None,
        ExportOptions { internal },
    )?)
}

#[derive(Debug, Args)]
#[command(
    after_help = "The citation names the version's identifier: its DOI once registered
(`capsule doi`), else its landing page under capsule.toml's base_url.

Examples:
  capsule cite higgs-4l
  capsule cite higgs-4l@v1 --format bibtex >> refs.bib
  capsule cite higgs-4l --format csl-json"
)]
pub struct CiteArgs {
    /// ID or ID@vN (default: the newest version).
    record: String,
    /// bibtex, csl-json or text.
    #[arg(long, default_value = "text", value_parser = ["bibtex", "csl-json", "text"])]
    format: String,
}

pub fn cite_record(args: CiteArgs) -> anyhow::Result<Outcome> {
    let (repo, settings, _) = open_archive()?;
    let (id, version) = parse_spec(&args.record).map_err(anyhow::Error::msg)?;
    let format: cite::Format = args.format.parse().map_err(anyhow::Error::msg)?;
    let snap = snapshot(&repo, &id, version)?;
    let tombstone = withdrawal(&repo, &id)?;
    if tombstone.is_none() && !snap.is_public() {
        bail!("{id} is restricted (its _access.deposit-read is not public): it has no public citation");
    }
    let registered = registered(&repo, &settings, &id)?;
    let record = Record::new(&settings, &snap, identifiers(&settings, &snap, &registered));
    let mut text = cite::cite(&record, format);
    // A withdrawn record stays citable (the citation and reason stay); say so.
    if let (Some(t), cite::Format::Text) = (&tombstone, format) {
        text = format!(
            "{} Withdrawn on {}: {}\n",
            text.trim_end(),
            t.day(),
            t.reason
        );
    } else if let Some(t) = &tombstone {
        output::warning(&format!("{id} was withdrawn on {}: {}", t.day(), t.reason));
    }
    anstream::stdout().write_all(text.as_bytes())?;
    Ok(Outcome::Ok)
}

#[derive(Debug, Args)]
#[command(
    after_help = "Registers a concept DOI (every version; resolves to the newest) and one DOI per
published version with DataCite's REST API, as [datacite] in capsule.toml names
(prefix, repository_id, url). The password comes from the environment variable
[datacite] password_env (default CAPSULE_DATACITE_PASSWORD), never from a file.
What was registered is recorded in the deposit's identifiers.json and committed, so
running it again sends only what changed. Run it after each new version (the
concept DOI moves to it, earlier versions name it) and after a withdrawal (the
DOIs are hidden and keep resolving to the landing page with the tombstone).

Examples:
  CAPSULE_DATACITE_PASSWORD=... capsule doi higgs-4l --push"
)]
pub struct DoiArgs {
    /// The record.
    id: String,
    /// Push the commit that records the DOIs.
    #[arg(long)]
    push: bool,
    /// The remote to push to.
    #[arg(long, default_value = "origin")]
    remote: String,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn register_dois(args: DoiArgs) -> anyhow::Result<Outcome> {
    let clone = Clone::open()?;
    clone.deposit(&args.id)?;
    let id = &args.id;
    let Some(datacite) = clone.settings.datacite.clone() else {
        bail!("capsule.toml has no [datacite] section: add prefix, repository_id and url (see docs/preservation.md)");
    };
    // A withdrawn record gets no new DOIs; the ones it has are hidden (they keep
    // resolving to the landing page with the tombstone).
    let tombstone = withdrawal(&clone.repo, id)?;
    let latest = snapshot(&clone.repo, id, None)?;
    if tombstone.is_none() && !latest.is_public() {
        bail!("{id} is restricted (its _access.deposit-read is not public): DOI metadata is public, so none is registered");
    }
    let file = capsule::deposit::file_path(id, doi::IDENTIFIERS);
    let mut current = match std::fs::read(clone.root.join(&file)) {
        Ok(bytes) => doi::Registered::parse(&bytes).map_err(anyhow::Error::msg)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => doi::Registered::default(),
        Err(e) => return Err(e.into()),
    };
    // The metadata names the DOIs as they will be: all of them for a live record,
    // only those that resolve for a withdrawn one.
    let named = match tombstone {
        Some(_) => current.clone(),
        None => doi::Registered::planned(&datacite, id, &latest.versions),
    };
    let mut records = Vec::new();
    for n in &latest.versions {
        let snap = snapshot(&clone.repo, id, Some(*n))?;
        records.push(Record::new(
            &clone.settings,
            &snap,
            identifiers(&clone.settings, &snap, &named),
        ));
    }
    let client = doi::Client::from_env(&datacite)?;
    let target = clone.root.join(&file);
    let mut save = |r: &doi::Registered| -> std::io::Result<()> {
        let dir = target.parent().expect("a deposit folder");
        let mut partial = tempfile::NamedTempFile::new_in(dir)?;
        partial.write_all(r.to_json().as_bytes())?;
        partial.as_file().sync_all()?;
        partial.persist(&target).map(|_| ()).map_err(|e| e.error)
    };
    let result = doi::register(
        &client,
        &records,
        tombstone.as_ref(),
        &mut current,
        &mut save,
    );
    let changed = run_git(
        clone.git().args(["add", "--", &file]),
        "stage identifiers.json",
    )
    .is_ok()
        && !clone
            .git()
            .args(["diff", "--cached", "--quiet", "--", &file])
            .status()?
            .success();
    if changed {
        run_git(
            clone.git().args([
                "commit",
                "--quiet",
                "-m",
                &format!("Register DOIs of {id}"),
                "--",
                &file,
            ]),
            "commit identifiers.json",
        )?;
        if args.push {
            let branch = clone.branch()?;
            run_git(
                clone
                    .git()
                    .args(["push", "--quiet", &args.remote, &format!("HEAD:{branch}")]),
                "push identifiers.json",
            )?;
        }
    }
    let steps = result?;
    if args.json {
        output::json(&serde_json::json!({"steps": steps, "registered": current}))?;
    } else {
        let mut out = anstream::stdout();
        if steps.is_empty() {
            match &tombstone {
                Some(_) => writeln!(
                    out,
                    "Nothing to send: {id} is withdrawn and its DOIs are hidden already ({file})"
                )?,
                None => writeln!(
                    out,
                    "Nothing to register: every version of {id} has its DOI, up to date ({file})"
                )?,
            }
        }
        for step in &steps {
            writeln!(
                out,
                "{} {}: {}",
                output::ok("DataCite"),
                step.doi,
                step.action
            )?;
        }
    }
    Ok(Outcome::Ok)
}

#[derive(Debug, Args)]
#[command(
    after_help = "Withdrawing commits deposits/<shard>/<ID>/TOMBSTONE.json with the reason, the date
and you. From then on the record's metadata and files leave every public output
(exports, citations keep only what the landing page shows), its record tags stay,
and its id stays reserved. Only the deposit's admins and archive admins may withdraw;
a withdrawal is never undone.

Examples:
  capsule withdraw higgs-4l --reason \"Superseded by higgs-4l-legacy; data retracted\" --push"
)]
pub struct WithdrawArgs {
    /// The record to withdraw.
    id: String,
    /// Why (shown on the landing page).
    #[arg(long)]
    reason: String,
    /// Act as this user (default: CAPSULE_USER, your git e-mail in access.toml, or $USER).
    #[arg(long = "as", value_name = "USER")]
    as_user: Option<String>,
    /// Push the commit with the tombstone to the remote's default branch.
    #[arg(long)]
    push: bool,
    /// The remote to push to.
    #[arg(long, default_value = "origin")]
    remote: String,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn withdraw(args: WithdrawArgs) -> anyhow::Result<Outcome> {
    let clone = Clone::open()?;
    let id = &args.id;
    let deposit = clone.read_deposit(id)?;
    let user = clone.user(args.as_user.as_deref())?;
    let reason = args.reason.trim();
    if reason.is_empty() {
        bail!("--reason must say why the record is withdrawn: readers are shown it");
    }
    let path = capsule::deposit::file_path(id, TOMBSTONE);
    if let Ok(bytes) = std::fs::read(clone.root.join(&path)) {
        let t = Tombstone::parse(&bytes).map_err(anyhow::Error::msg)?;
        bail!(
            "{id} was withdrawn already, on {} by {} ({})",
            t.day(),
            t.by,
            t.reason
        );
    }
    let level = if clone
        .access
        .matches_any(&user, &clone.settings.policy.admins)
    {
        Level::Admin
    } else {
        DepositAccess::of(&deposit).level(&clone.access, &user)
    };
    let tombstone = Tombstone {
        reason: reason.to_string(),
        date: capsule::authoring::now(),
        by: user.clone(),
    };
    let text = tombstone.to_json();
    capsule::preserve::tombstone::judge_change(None, Some(text.as_bytes()), level, &user)
        .map_err(anyhow::Error::msg)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(clone.root.join(&path))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    run_git(
        clone.git().args(["add", "--", &path]),
        "stage the tombstone",
    )?;
    run_git(
        clone.git().args([
            "commit",
            "--quiet",
            "-m",
            &format!("Withdraw {id}: {reason}"),
            "--",
            &path,
        ]),
        "commit the tombstone",
    )?;
    let mut pushed = false;
    if args.push {
        let branch = clone.branch()?;
        run_git(
            clone
                .git()
                .args(["push", "--quiet", &args.remote, &format!("HEAD:{branch}")]),
            "push the tombstone",
        )?;
        pushed = true;
    }
    if args.json {
        output::json(&serde_json::json!({"path": path, "tombstone": tombstone, "pushed": pushed}))?;
    } else {
        let mut out = anstream::stdout();
        writeln!(out, "{} {path}", output::ok("Withdrawn"))?;
        if !pushed {
            writeln!(out, "Push it to withdraw the record everywhere: git push")?;
        }
        let identifiers = clone
            .root
            .join(capsule::deposit::file_path(id, doi::IDENTIFIERS));
        if identifiers.is_file() {
            writeln!(
                out,
                "Its DOIs still show it: run `capsule doi {id}` to hide them (they keep resolving to the landing page)"
            )?;
        }
    }
    Ok(Outcome::Ok)
}

#[derive(Debug, Args)]
#[command(
    after_help = "Checks git's objects (git fsck --full --strict), every record version's files
against their ids (and the SHA-256 digest `capsule publish` records in the tag),
every captured bundle against its commit, and bags written earlier (--exports).
Exit status: 0 clean, 1 damage found. Run it on the server on a schedule: see
docs/preservation.md.

Examples:
  capsule -C /srv/git/archive.git audit
  capsule audit --exports /srv/exports --json"
)]
pub struct AuditArgs {
    /// A bag, or a folder of bags, to verify too (repeatable).
    #[arg(long = "exports", value_name = "PATH")]
    exports: Vec<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub fn audit(args: AuditArgs) -> anyhow::Result<Outcome> {
    let cwd = std::env::current_dir()?;
    let repo = Repository::discover(&cwd)
        .with_context(|| format!("{} is not inside a git repository", cwd.display()))?;
    let report = capsule::preserve::audit::audit(&repo, &args.exports);
    if args.json {
        output::json(&serde_json::json!({"clean": report.is_clean(), "checks": report.checks}))?;
    } else {
        let mut out = anstream::stdout();
        for check in &report.checks {
            if check.is_ok() {
                writeln!(out, "{} {}", output::ok("ok"), check.subject)?;
            } else {
                writeln!(out, "{} {}", output::bad("FAILED"), check.subject)?;
                for problem in &check.problems {
                    writeln!(out, "  {problem}")?;
                }
            }
        }
        if report.is_clean() {
            writeln!(out, "Clean: {} checked", count(report.checks.len(), "item"))?;
        } else {
            writeln!(
                out,
                "{} of {} failed: see docs/preservation.md, \"When the audit fails\"",
                count(report.failures(), "check"),
                report.checks.len()
            )?;
        }
    }
    Ok(if report.is_clean() {
        Outcome::Ok
    } else {
        Outcome::Problems
    })
}
