//! `capsule fetch` and `capsule capture-repo`: bringing analyses in.

use std::io::Write;

use anyhow::bail;
use clap::Args;
use serde::Serialize;
use serde_json::{json, Value};

use capsule::authoring::{now, set_pointer, write_json_atomically};
use capsule::capture::{bundle_name, make_bundle, resolve_ref};
use capsule::fetch::{apply, read_answer, select, FetchError};
use capsule::history::{diff_values, FieldChange};

use super::clone::Clone;
use super::output::{self, count};
use super::Outcome;

#[derive(Debug, Args)]
#[command(
    after_help = "FETCHER is a [fetchers.<name>] table of capsule.toml: where to ask (url or file),
headers (secrets as ${VAR} from the environment) and a map from deposit fields to
the answer's fields. Fields you changed since the last fetch are kept unless --force.
The result is validated as a draft before anything is written.

Examples:
  capsule fetch zee cadi EXO-21-004 --dry-run
  capsule fetch zee cadi EXO-21-004
  capsule fetch lhcb-1 lhcb \"Example Analysis1\" --force"
)]
pub struct FetchArgs {
    /// The deposit to fill.
    id: String,
    /// The fetcher, as named in capsule.toml.
    fetcher: String,
    /// What to ask the source for (an analysis code, a name).
    key: String,
    /// Show what would change, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Overwrite fields you edited since the last fetch.
    #[arg(long)]
    force: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct FetchReport {
    id: String,
    source: String,
    written: bool,
    changes: Vec<FieldChange>,
    kept: Vec<String>,
}

pub fn fetch(args: FetchArgs) -> anyhow::Result<Outcome> {
    let clone = Clone::open()?;
    let path = clone.deposit(&args.id)?;
    let deposit = clone.read_deposit(&args.id)?;
    let fetcher = clone
        .settings
        .fetchers
        .get(&args.fetcher)
        .ok_or_else(|| FetchError::Unknown(args.fetcher.clone()))?;
    let (source, answer) = read_answer(&args.fetcher, fetcher, &args.key, &clone.root)?;
    let record = select(fetcher, &answer, &args.key)?;
    let fetched = apply(
        &args.fetcher,
        fetcher,
        &deposit,
        record,
        &args.key,
        &source,
        &now(),
        args.force,
    )?;
    let changes: Vec<FieldChange> = diff_values(&deposit, &fetched.deposit)
        .into_iter()
        .filter(|c| !c.pointer.starts_with("/_fetched_from"))
        .collect();
    let problems = clone.problems_of(&args.id, &fetched.deposit)?;
    if !problems.is_empty() {
        output::problems(
            &problems,
            "refused:",
            &format!(
                "what {} answered does not fit the schema ({}); nothing was written. Fix fetchers.{}.map, or fetch and then edit by hand",
                source,
                count(problems.len(), "problem"),
                args.fetcher
            ),
        )?;
        return Ok(Outcome::Problems);
    }
    let written = !args.dry_run;
    if written {
        write_json_atomically(&path, &fetched.deposit)?;
    }
    let report = FetchReport {
        id: args.id.clone(),
        source,
        written,
        changes,
        kept: fetched.kept,
    };
    if args.json {
        output::json(&report)?;
        return Ok(Outcome::Ok);
    }
    let mut out = anstream::stdout();
    writeln!(
        out,
        "{} {} from {}: {}",
        if written {
            "Fetched"
        } else {
            "Would fetch (dry run)"
        },
        args.id,
        report.source,
        count(report.changes.len(), "changed field")
    )?;
    for change in &report.changes {
        let show = |v: &Option<Value>| {
            v.as_ref()
                .map(Value::to_string)
                .unwrap_or_else(|| "(none)".into())
        };
        writeln!(
            out,
            "  {}: {} → {}",
            change.pointer,
            show(&change.old),
            show(&change.new)
        )?;
    }
    for pointer in &report.kept {
        writeln!(
            out,
            "  {pointer}: kept your edit (use --force to take the source's value)"
        )?;
    }
    Ok(Outcome::Ok)
}

#[derive(Debug, Args)]
#[command(
    after_help = "The ref (a branch, a tag, HEAD by default, or a full commit id) is resolved to a
commit with `git ls-remote`, so any URL git understands works (https, ssh, git://,
file://). The capture is recorded in /analysis_software/repositories (or --field):
url, ref, commit and capture time; an entry with the same URL is updated. With
--bundle the repository at that commit is stored as a git bundle under
the deposit's folder (software/), so the code itself is preserved; `git clone FILE.bundle`
restores it. The server checks pushed bundles.

Examples:
  capsule capture-repo zee https://gitlab.cern.ch/cms/zee-analysis.git --ref v1.2 --bundle
  capsule capture-repo zee ../code --field /analysis_software/repositories"
)]
pub struct CaptureArgs {
    /// The deposit.
    id: String,
    /// The repository's URL (or path).
    url: String,
    /// Branch, tag or commit (default: the repository's HEAD).
    #[arg(long = "ref", value_name = "REF")]
    git_ref: Option<String>,
    /// Also store the code as a git bundle among the deposit's files.
    #[arg(long)]
    bundle: bool,
    /// The array (JSON pointer) to record the capture in.
    #[arg(long, value_name = "POINTER")]
    field: Option<String>,
    /// Print the capture as JSON.
    #[arg(long)]
    json: bool,
}

pub fn capture(args: CaptureArgs) -> anyhow::Result<Outcome> {
    let clone = Clone::open()?;
    let path = clone.deposit(&args.id)?;
    let deposit = clone.read_deposit(&args.id)?;
    let field = match &args.field {
        Some(field) => field.clone(),
        None => {
            let default = "/analysis_software/repositories";
            let schema_has_it = schema_has_repositories(&clone, &deposit);
            if !schema_has_it && deposit.pointer(default).is_none() {
                bail!("this deposit's schema has no /analysis_software/repositories: name the array to record the capture in with --field");
            }
            default.to_string()
        }
    };
    // A local path is a URL too; make it absolute so the record means something.
    let url = match std::path::Path::new(&args.url) {
        p if !args.url.contains("://") && !args.url.contains('@') && p.exists() => {
            format!("file://{}", p.canonicalize()?.display())
        }
        _ => args.url.clone(),
    };
    let (ref_name, commit) = resolve_ref(&url, args.git_ref.as_deref())?;
    let mut entry = json!({
        "url": url,
        "commit": commit,
        "captured": now(),
    });
    if ref_name != commit {
        entry["ref"] = Value::String(
            ref_name
                .trim_start_matches("refs/heads/")
                .trim_start_matches("refs/tags/")
                .to_string(),
        );
    }
    let mut bundle_path = None;
    if args.bundle {
        let name = bundle_name(&url, &commit);
        let relative = format!("software/{name}");
        let file = clone
            .root
            .join(capsule::deposit::file_path(&args.id, &relative));
        let bytes = make_bundle(&url, &ref_name, &commit, &file)?;
        let max = clone.settings.policy.max_file_bytes;
        if bytes > max {
            std::fs::remove_file(&file)?;
            bail!("the bundle is {bytes} bytes, over the archive's limit of {max} (policy.max_file_bytes): record the capture without --bundle, or keep the bundle in Git LFS");
        }
        entry["bundle"] = Value::String(relative.clone());
        bundle_path = Some((file, capsule::deposit::file_path(&args.id, &relative)));
    }

    let mut new = deposit.clone();
    let list = new
        .pointer(&field)
        .cloned()
        .unwrap_or(Value::Array(Vec::new()));
    let Value::Array(mut items) = list else {
        bail!(
            "{field} is not an array in {}",
            capsule::deposit::metadata_path(&args.id)
        );
    };
    match items
        .iter_mut()
        .find(|i| i.get("url").and_then(Value::as_str) == Some(url.as_str()))
    {
        Some(existing) => {
            // Keep what the author wrote (a description), refresh the capture.
            for (k, v) in entry.as_object().unwrap() {
                existing[k] = v.clone();
            }
            if entry.get("bundle").is_none() {
                if let Some(map) = existing.as_object_mut() {
                    map.remove("bundle");
                }
            }
        }
        None => items.push(entry.clone()),
    }
    set_pointer(&mut new, &field, Value::Array(items)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let problems = clone.problems_of(&args.id, &new)?;
    if !problems.is_empty() {
        if let Some((file, _)) = &bundle_path {
            let _ = std::fs::remove_file(file);
        }
        output::problems(
            &problems,
            "refused:",
            &format!("the capture does not fit the schema at {field}; nothing was written"),
        )?;
        return Ok(Outcome::Problems);
    }
    write_json_atomically(&path, &new)?;
    if args.json {
        output::json(&entry)?;
    } else {
        let mut out = anstream::stdout();
        writeln!(
            out,
            "Captured {url} at {} ({}) in {field}",
            &commit[..12.min(commit.len())],
            ref_name
        )?;
        if let Some((_, shown)) = &bundle_path {
            writeln!(
                out,
                "Stored the code in {shown} (restore it with `git clone {shown}`)"
            )?;
        }
        writeln!(
            out,
            "Commit and push: git add {} && git commit",
            capsule::deposit::folder(&args.id)
        )?;
    }
    Ok(Outcome::Ok)
}

fn schema_has_repositories(clone: &Clone, deposit: &Value) -> bool {
    let tree = capsule::archive::WorkTree::new(&clone.root);
    deposit
        .get("$schema")
        .and_then(Value::as_str)
        .and_then(capsule::deposit::parse_schema_ref)
        .and_then(|sref| {
            capsule::schema::SchemaRegistry::new()
                .load(&tree, &sref)
                .ok()
                .flatten()
        })
        .is_some_and(|(_, schema)| {
            schema
                .body
                .pointer("/properties/analysis_software/properties/repositories")
                .is_some()
        })
}
