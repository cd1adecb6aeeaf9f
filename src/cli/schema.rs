//! `capsule schema list|check|show|add`

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Subcommand;
use serde::Serialize;
use serde_json::Value;

use capsule::archive::{find_root, WorkTree};
use capsule::deposit::{parse_schema_ref, SchemaRef};
use capsule::problem::Problem;
use capsule::schema::{list_schemas, LoadError, Mode, SchemaRegistry};
use capsule::version::Version;

use super::output::{self, count};
use super::Outcome;

#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// List the archive's schemas and their versions (oldest first).
    List {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Load and compile schemas, as the hook does when they are pushed.
    Check {
        /// `name/version` of the schemas to check (default: all).
        schemas: Vec<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a schema, optionally with every $ref resolved inline.
    #[command(
        after_help = "Prints the JSON Schema that deposits are checked against: for a CAP schema file,
its deposit_schema, as capsule reads it (draft-03 `required: true` turned into lists,
references named by capsule's canonical URIs). With --resolved, every $ref is
replaced by the schema it names, as CAP's /api/jsonschemas/NAME/VERSION?resolve=1
and cap-client's `analysis schema` gave it. A reference that leads back into a schema
it is already inside cannot be inlined (it would never end: this is why CAP kept
*_no_circ_refs copies of some schemas); it stays a $ref, named NAME/VERSION#FRAGMENT,
with a $comment, and a note on standard error says where.

Examples:
  capsule schema show analysis                 the newest version
  capsule schema show cms-analysis/0.0.1 --resolved
  capsule schema show analysis --resolved --json | jq .properties"
    )]
    Show {
        /// The schema: NAME for its newest version, or NAME/VERSION.
        schema: String,
        /// Replace every $ref with the schema it names.
        #[arg(long)]
        resolved: bool,
        /// Print compact JSON on one line (default: indented).
        #[arg(long)]
        json: bool,
    },
    /// Copy schema files into the archive at schemas/<name>/<version>.json.
    ///
    /// CAP fixture files carry their own name and version; for plain JSON Schema
    /// files give them with --name and --schema-version.
    Add {
        /// Schema files to copy (CAP wrappers, legacy CAP files or plain JSON Schema).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The schema's name, for files that do not carry one.
        #[arg(long)]
        name: Option<String>,
        /// The schema's version, for files that do not carry one.
        #[arg(long, value_name = "VERSION")]
        schema_version: Option<String>,
        /// Replace an existing file (only before it has been pushed!).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Serialize)]
struct CheckResult {
    schema: String,
    title: Option<String>,
    form: Option<capsule::schema::SchemaForm>,
    /// The rules its deposits are judged by (`standard` or `cap`), and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    engine: Option<capsule::schema::Engine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    engine_reason: Option<String>,
    ok: bool,
    problems: Vec<Problem>,
    /// Things that work but probably not as meant (notification rules naming
    /// methods capsule does not have, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<Problem>,
}

fn archive_root() -> anyhow::Result<PathBuf> {
    find_root(&std::env::current_dir()?)
        .context("no capsule.toml here or in any parent folder: run this inside an archive")
}

pub fn run(cmd: SchemaCommand) -> anyhow::Result<Outcome> {
    match cmd {
        SchemaCommand::List { json } => {
            let root = archive_root()?;
            let schemas = list_schemas(&WorkTree::new(&root))?;
            if json {
                output::json(
                    &schemas
                        .iter()
                        .map(|(n, v)| serde_json::json!({"name": n, "versions": v}))
                        .collect::<Vec<_>>(),
                )?;
            } else {
                let mut out = anstream::stdout();
                for (name, versions) in schemas {
                    writeln!(out, "{name}: {}", versions.join(", "))?;
                }
            }
            Ok(Outcome::Ok)
        }
        SchemaCommand::Check { schemas, json } => {
            let root = archive_root()?;
            let tree = WorkTree::new(&root);
            let wanted: Vec<SchemaRef> = if schemas.is_empty() {
                list_schemas(&tree)?
                    .into_iter()
                    .flat_map(|(name, versions)| {
                        versions.into_iter().map(move |version| SchemaRef {
                            name: name.clone(),
                            version,
                        })
                    })
                    .collect()
            } else {
                schemas
                    .iter()
                    .map(|s| {
                        parse_schema_ref(s).with_context(|| format!("`{s}` is not `name/version`"))
                    })
                    .collect::<anyhow::Result<_>>()?
            };
            let validation = capsule::validate::validation_settings(&tree);
            let mut registry = SchemaRegistry::with_validation(validation);
            let mut results = Vec::new();
            for sref in wanted {
                let mut warnings = Vec::new();
                let mut engine = None;
                let (title, form, problems) = match registry.compile(&tree, &sref) {
                    Ok(Some(compiled)) => {
                        let mut problems = [Mode::Draft, Mode::Publish]
                            .into_iter()
                            .find_map(|m| compiled.validator(m).err().map(<[Problem]>::to_vec))
                            .unwrap_or_default();
                        // The notification config, as the hook checks it.
                        let mail = capsule::mail::check_schema(&compiled.root, &tree)?;
                        problems.extend(mail.problems);
                        warnings = mail.warnings;
                        warnings.extend(compiled.root.notes.iter().cloned());
                        let root = &compiled.root;
                        engine = Some((
                            root.engine,
                            format!(
                                "{}, because {}",
                                capsule::schema::engine::describe(
                                    root.engine,
                                    root.declared,
                                    validation.cap_strict
                                ),
                                root.engine_reason
                            ),
                        ));
                        (
                            compiled.root.title.clone(),
                            Some(compiled.root.form),
                            problems,
                        )
                    }
                    Ok(None) => (
                        None,
                        None,
                        vec![Problem::file(sref.path(), "there is no such schema file")],
                    ),
                    Err(LoadError::Invalid(p)) => (None, None, p),
                    Err(e) => return Err(e.into()),
                };
                results.push(CheckResult {
                    schema: sref.to_string(),
                    title,
                    form,
                    engine: engine.as_ref().map(|e| e.0),
                    engine_reason: engine.map(|e| e.1),
                    ok: problems.is_empty(),
                    problems,
                    warnings,
                });
            }
            // A broken schema shows up again under every schema that refers to it;
            // list each problem once, under the first schema that met it.
            let mut seen = std::collections::HashSet::new();
            for r in &mut results {
                r.problems.retain(|p| {
                    seen.insert((p.file.clone(), p.pointer.clone(), p.message.clone()))
                });
            }
            let bad = results.iter().filter(|r| !r.ok).count();
            if json {
                output::json(&results)?;
            } else {
                let mut out = anstream::stdout();
                for r in &results {
                    if let Some(reason) = &r.engine_reason {
                        writeln!(out, "{}: {reason}", r.schema)?;
                    }
                    for p in &r.problems {
                        writeln!(out, "{}", output::problem_line(p))?;
                    }
                    for w in &r.warnings {
                        output::warning(&w.to_string());
                    }
                }
                if bad == 0 {
                    writeln!(
                        out,
                        "{} {} {}",
                        output::ok("ok:"),
                        count(results.len(), "schema"),
                        if results.len() == 1 {
                            "compiles"
                        } else {
                            "compile"
                        }
                    )?;
                } else {
                    writeln!(
                        out,
                        "{} {bad} of {} cannot be used",
                        output::bad("failed:"),
                        count(results.len(), "schema")
                    )?;
                }
            }
            Ok(if bad == 0 {
                Outcome::Ok
            } else {
                Outcome::Problems
            })
        }
        SchemaCommand::Show {
            schema,
            resolved,
            json,
        } => show_schema(&schema, resolved, json),
        SchemaCommand::Add {
            files,
            name,
            schema_version: version,
            force,
        } => {
            let root = archive_root()?;
            if files.len() > 1 && (name.is_some() || version.is_some()) {
                bail!("--name and --schema-version apply to one file at a time");
            }
            add_schemas(&root, &files, name.as_deref(), version.as_deref(), force)
        }
    }
}

/// `schema show`: the schema's body, optionally with its references inlined.
fn show_schema(wanted: &str, resolved: bool, json: bool) -> anyhow::Result<Outcome> {
    let root = archive_root()?;
    let tree = WorkTree::new(&root);
    let sref = capsule::schema::schema_ref_from_user(&tree, wanted)?.with_context(|| {
        format!("`{wanted}` does not name a schema: write NAME or NAME/VERSION")
    })?;
    let mut registry =
        SchemaRegistry::with_validation(capsule::validate::validation_settings(&tree));
    // The exact version first, so that the schema's references to itself resolve.
    let Some((_, loaded)) = registry
        .load(&tree, &sref)
        .map_err(|e| load_failure(wanted, e))?
    else {
        let names: Vec<String> = list_schemas(&tree)?.into_iter().map(|(n, _)| n).collect();
        bail!(
            "there is no schema {wanted} in this archive; it has: {} (`capsule schema list` shows their versions)",
            if names.is_empty() { "none".into() } else { names.join(", ") }
        );
    };
    let sref = loaded.sref.clone();
    let value = if resolved {
        let compiled = registry
            .compile(&tree, &sref)
            .map_err(|e| load_failure(wanted, e))?
            .with_context(|| format!("schema {sref} disappeared while it was read"))?;
        let inlined = compiled.inlined();
        if let Some(first) = inlined.cycles.first() {
            output::warning(&format!(
                "{}: {} left as $ref because inlining would never end (the first at {}, naming {}); each carries a $comment",
                sref,
                count(inlined.cycles.len(), "circular reference"),
                if first.pointer.is_empty() { "/" } else { &first.pointer },
                first.target
            ));
        }
        inlined.value
    } else {
        loaded.body.clone()
    };
    let mut out = anstream::stdout();
    if json {
        writeln!(out, "{}", serde_json::to_string(&value)?)?;
    } else {
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
    }
    Ok(Outcome::Ok)
}

/// A schema that cannot be loaded, with every problem (file, line:column, pointer).
fn load_failure(wanted: &str, e: LoadError) -> anyhow::Error {
    match e {
        LoadError::Invalid(problems) => anyhow::anyhow!(
            "schema {wanted} cannot be used ({}); `capsule schema check` shows the same:\n{}",
            count(problems.len(), "problem"),
            problems
                .iter()
                .map(output::problem_line)
                .collect::<Vec<_>>()
                .join("\n")
        ),
        other => other.into(),
    }
}

/// A schema file given to `schema add`, and where it goes.
struct Candidate<'a> {
    file: &'a Path,
    sref: SchemaRef,
    bytes: Vec<u8>,
    /// What `--force` replaced, put back if the new file cannot be used.
    previous: Option<Vec<u8>>,
}

/// `schema add`: every good file is added, every bad one reported with its file,
/// pointer and reason. Files are written first and compiled after, so a schema that
/// refers to another one of the same run is added whatever the order; a file whose
/// references cannot be resolved (or that does not compile) is taken out again, and so
/// are, in turn, the files that needed it.
fn add_schemas(
    root: &Path,
    files: &[PathBuf],
    name: Option<&str>,
    version: Option<&str>,
    force: bool,
) -> anyhow::Result<Outcome> {
    let mut bad: Vec<Problem> = Vec::new();
    let mut bad_files = 0;
    let mut candidates: Vec<Candidate<'_>> = Vec::new();
    for file in files {
        let shown = file.display().to_string();
        let bytes = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => {
                bad.push(Problem::file(&shown, format!("cannot read it: {e}")));
                bad_files += 1;
                continue;
            }
        };
        let checked = target_of(file, &bytes, name, version).and_then(|sref| {
            if root.join(sref.path()).exists() && !force {
                return Err(vec![Problem::file(&shown, format!("{} already exists: a schema version never changes; add a new version instead", sref.path()))]);
            }
            if let Some(other) = candidates.iter().find(|c| c.sref == sref) {
                return Err(vec![Problem::file(&shown, format!("{} is also given as {}: give each schema version once", sref.path(), other.file.display()))]);
            }
            capsule::schema::LoadedSchema::parse(&sref, &bytes).map(|_| sref)
        });
        match checked {
            Ok(sref) => {
                let previous = std::fs::read(root.join(sref.path())).ok();
                candidates.push(Candidate {
                    file,
                    sref,
                    bytes,
                    previous,
                })
            }
            Err(problems) => {
                bad_files += 1;
                bad.extend(problems.into_iter().map(|mut p| {
                    p.file = shown.clone();
                    p
                }));
            }
        }
    }
    // Write, then compile with everything of this run in place.
    for c in &candidates {
        let target = root.join(c.sref.path());
        std::fs::create_dir_all(target.parent().unwrap())?;
        std::fs::write(&target, &c.bytes).with_context(|| format!("writing {}", c.sref.path()))?;
    }
    let shown_as = |path: &str, candidates: &[Candidate<'_>]| {
        candidates
            .iter()
            .find(|c| c.sref.path() == path)
            .map_or(path.to_string(), |c| c.file.display().to_string())
    };
    loop {
        let tree = WorkTree::new(root);
        let mut registry = SchemaRegistry::new();
        // A file whose own text is at fault goes first: the files that need it are then
        // told about their `$ref` to it, not about its problems once more.
        let mut failed: Option<(usize, Vec<Problem>)> = None;
        for (i, c) in candidates.iter().enumerate() {
            let problems = match registry.compile(&tree, &c.sref) {
                Ok(Some(compiled)) => [Mode::Draft, Mode::Publish]
                    .into_iter()
                    .find_map(|m| compiled.validator(m).err().map(<[Problem]>::to_vec))
                    .unwrap_or_default(),
                Ok(None) => vec![Problem::file(
                    c.sref.path(),
                    "the file vanished while it was added",
                )],
                Err(LoadError::Invalid(p)) => p,
                Err(e) => return Err(e.into()),
            };
            if problems.is_empty() {
                continue;
            }
            let own = problems.iter().any(|p| p.file == c.sref.path());
            if own {
                failed = Some((i, problems));
                break;
            }
            failed.get_or_insert((i, problems));
        }
        let Some((i, problems)) = failed else { break };
        let c = candidates.remove(i);
        match &c.previous {
            Some(previous) => std::fs::write(root.join(c.sref.path()), previous)?,
            None => std::fs::remove_file(root.join(c.sref.path()))?,
        }
        bad_files += 1;
        let mine = c.sref.path();
        bad.extend(problems.into_iter().map(|mut p| {
            if p.file == mine {
                p.file = c.file.display().to_string();
            } else {
                let other = shown_as(&p.file, &candidates);
                p.message = format!(
                    "{} needs {}, which cannot be used: {}",
                    c.file.display(),
                    other,
                    p.message
                );
                p.file = other;
            }
            p
        }));
    }
    let mut out = anstream::stdout();
    for c in &candidates {
        writeln!(out, "added {} as {}", c.file.display(), c.sref.path())?;
    }
    if bad.is_empty() {
        return Ok(Outcome::Ok);
    }
    let mut err = anstream::stderr();
    for p in &bad {
        writeln!(err, "{}", output::problem_line(p))?;
    }
    writeln!(
        err,
        "{} {} of {} not added; {} added",
        output::bad("failed:"),
        bad_files,
        count(files.len(), "file"),
        candidates.len()
    )?;
    Ok(Outcome::Problems)
}

/// Where a schema file goes: from the flags, else from a CAP wrapper's own fields.
fn target_of(
    file: &Path,
    bytes: &[u8],
    name: Option<&str>,
    version: Option<&str>,
) -> Result<SchemaRef, Vec<Problem>> {
    let shown = file.display().to_string();
    let (_, value) = capsule::json::parse(&shown, bytes)?;
    let fail = |message: String| vec![Problem::file(&shown, message)];
    let name = name
        .map(str::to_string)
        .or_else(|| {
            value
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .ok_or_else(|| {
            fail("the file carries no `name`: give the schema's name with --name".into())
        })?;
    let version = version
        .map(str::to_string)
        .or_else(|| {
            value
                .get("version")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .ok_or_else(|| {
            fail(
                "the file carries no `version`: give the schema's version with --schema-version"
                    .into(),
            )
        })?;
    version
        .parse::<Version>()
        .map_err(|e| fail(format!("`{version}` is not a version: {e}")))?;
    parse_schema_ref(&format!("{name}/{version}"))
        .ok_or_else(|| fail(format!("`{name}` is not a valid schema name")))
}
