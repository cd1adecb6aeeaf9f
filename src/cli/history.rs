//! `capsule log`, `capsule show` and `capsule diff`

use std::io::Write;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use serde_json::Value;

use capsule::archive::GitTree;
use capsule::deposit::{check_id, parse_schema_ref};
use capsule::history::{
    deposit_at, diff_values, fields, log, resolve, Field, FieldChange, FieldChangeKind, Resolved,
};
use capsule::schema::{CompiledSchema, SchemaRegistry};

use super::output::{self, heading};
use super::Outcome;

fn open_repo() -> anyhow::Result<git2::Repository> {
    git2::Repository::discover(std::env::current_dir()?)
        .context("not inside a git repository: run this in a clone of an archive")
}

fn checked(id: &str) -> anyhow::Result<&str> {
    check_id(id).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(id)
}

#[derive(Debug, Args)]
#[command(
    after_help = "Every commit that changed the deposit's folder is a version; record versions
(published with `capsule publish`) are marked v1, v2, ...

Examples:
  capsule log zee
  capsule log zee --rev origin/main --json"
)]
pub struct LogArgs {
    /// The deposit.
    id: String,
    /// Start from this revision instead of HEAD.
    #[arg(long, default_value = "HEAD")]
    rev: String,
    /// Print the versions as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run_log(args: LogArgs) -> anyhow::Result<Outcome> {
    let repo = open_repo()?;
    let id = checked(&args.id)?;
    let start = repo
        .revparse_single(&args.rev)
        .and_then(|o| o.peel_to_commit())
        .with_context(|| format!("`{}` is not a revision of this repository", args.rev))?;
    let versions = log(&repo, start.id(), id)?;
    if versions.is_empty() {
        anyhow::bail!(
            "deposit {id} has no history at {}: no commit touched {}",
            args.rev,
            capsule::deposit::folder(id)
        );
    }
    if args.json {
        output::json(&versions)?;
        return Ok(Outcome::Ok);
    }
    let mut out = anstream::stdout();
    for v in &versions {
        let marks: Vec<String> = v.records.iter().map(|n| format!("v{n}")).collect();
        let mark = if marks.is_empty() {
            String::new()
        } else {
            format!(" {}", output::ok(&format!("[record {}]", marks.join(", "))))
        };
        let deleted = if v.deleted { " (deleted)" } else { "" };
        writeln!(
            out,
            "{} {} {} <{}>{mark}{deleted}\n    {}",
            heading(&v.short),
            v.date,
            v.author,
            v.email,
            v.message
        )?;
    }
    Ok(Outcome::Ok)
}

#[derive(Debug, Args)]
#[command(
    after_help = "VERSION is vN for a record version, or any git revision (a commit, branch or
tag); without it, HEAD.

Examples:
  capsule show zee            the current version, fields by their titles
  capsule show zee@v1         the first published version
  capsule show zee@HEAD~2 --json"
)]
pub struct ShowArgs {
    /// ID or ID@VERSION.
    target: String,
    /// Print the deposit's JSON with where it came from.
    #[arg(long)]
    json: bool,
    /// Print only the deposit's folder in the archive (deposits/<shard>/<id>), for
    /// scripts and `cd`; the deposit need not exist yet.
    #[arg(long, conflicts_with = "json")]
    path: bool,
}

#[derive(Serialize)]
struct Shown {
    id: String,
    path: String,
    at: Resolved,
    schema: Option<String>,
    fields: Vec<Field>,
    metadata: Value,
}

/// The compiled schema a deposit names at a commit, for title paths.
fn schema_at(
    repo: &git2::Repository,
    at: &Resolved,
    deposit: &Value,
) -> Option<std::sync::Arc<CompiledSchema>> {
    let sref = deposit
        .get("$schema")?
        .as_str()
        .and_then(parse_schema_ref)?;
    let tree = GitTree::at_commit(repo, git2::Oid::from_str(&at.commit).ok()?).ok()?;
    SchemaRegistry::new().compile(&tree, &sref).ok().flatten()
}

fn split_target(target: &str) -> (&str, &str) {
    target.split_once('@').unwrap_or((target, "HEAD"))
}

pub fn run_show(args: ShowArgs) -> anyhow::Result<Outcome> {
    let repo = open_repo();
    let (id, spec) = split_target(&args.target);
    if args.path {
        let id = checked(id)?;
        writeln!(anstream::stdout(), "{}", capsule::deposit::folder(id))?;
        return Ok(Outcome::Ok);
    }
    let repo = repo?;
    let id = checked(id)?;
    let at = resolve(&repo, id, spec)?;
    let (_, value) = deposit_at(&repo, id, &at)?;
    let schema = schema_at(&repo, &at, &value);
    let mut found = fields(&value);
    if let Some(schema) = &schema {
        for field in &mut found {
            field.title_path = schema.title_path(&field.pointer);
        }
    }
    if args.json {
        output::json(&Shown {
            id: id.to_string(),
            path: capsule::deposit::folder(id),
            schema: value
                .get("$schema")
                .and_then(Value::as_str)
                .map(str::to_string),
            at,
            fields: found,
            metadata: value,
        })?;
        return Ok(Outcome::Ok);
    }
    let mut out = anstream::stdout();
    let version = at
        .record
        .map_or_else(|| "draft".to_string(), |n| format!("record v{n}"));
    writeln!(
        out,
        "{} ({version}, commit {})",
        heading(id),
        &at.commit[..7]
    )?;
    for field in found {
        let label = if field.title_path.is_empty() {
            field.pointer.clone()
        } else {
            field.title_path.clone()
        };
        writeln!(out, "  {}: {}", heading(&label), display(&field.value))?;
    }
    Ok(Outcome::Ok)
}

fn display(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(display).collect::<Vec<_>>().join(", "),
        Value::Null => "(empty)".into(),
        other => other.to_string(),
    }
}

#[derive(Debug, Args)]
#[command(
    after_help = "Versions are vN (record versions) or git revisions. The difference is by field:
added, removed and changed values with their titles and JSON pointers.

Examples:
  capsule diff zee v1 v2
  capsule diff zee v2 HEAD --json"
)]
pub struct DiffArgs {
    /// The deposit.
    id: String,
    /// The older version.
    from: String,
    /// The newer version.
    to: String,
    /// Print the changes as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Diffed {
    id: String,
    from: Resolved,
    to: Resolved,
    changes: Vec<FieldChange>,
}

pub fn run_diff(args: DiffArgs) -> anyhow::Result<Outcome> {
    let repo = open_repo()?;
    let id = checked(&args.id)?;
    let from = resolve(&repo, id, &args.from)?;
    let to = resolve(&repo, id, &args.to)?;
    let (_, old) = deposit_at(&repo, id, &from)?;
    let (_, new) = deposit_at(&repo, id, &to)?;
    let mut changes = diff_values(&old, &new);
    let new_schema = schema_at(&repo, &to, &new);
    let old_schema = schema_at(&repo, &from, &old);
    for change in &mut changes {
        let schema = if change.kind == FieldChangeKind::Removed {
            &old_schema
        } else {
            &new_schema
        };
        if let Some(schema) = schema {
            change.title_path = schema.title_path(&change.pointer);
        }
    }
    if args.json {
        output::json(&Diffed {
            id: id.to_string(),
            from,
            to,
            changes,
        })?;
        return Ok(Outcome::Ok);
    }
    let mut out = anstream::stdout();
    writeln!(
        out,
        "{} {} → {}: {}",
        heading(id),
        args.from,
        args.to,
        output::count(changes.len(), "changed field")
    )?;
    for change in &changes {
        let place = if change.title_path.is_empty() {
            change.pointer.clone()
        } else {
            format!("{} ({})", change.title_path, change.pointer)
        };
        let show = |v: &Option<Value>| v.as_ref().map(|v| v.to_string()).unwrap_or_default();
        let line = match change.kind {
            FieldChangeKind::Added => output::ok(&format!("+ {place}: {}", show(&change.new))),
            FieldChangeKind::Removed => output::bad(&format!("- {place}: {}", show(&change.old))),
            FieldChangeKind::Changed => {
                format!("~ {place}: {} → {}", show(&change.old), show(&change.new))
            }
        };
        writeln!(out, "  {line}")?;
    }
    Ok(Outcome::Ok)
}
