//! `capsule schema list|check|add`

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
            let mut registry = SchemaRegistry::new();
            let mut results = Vec::new();
            for sref in wanted {
                let mut warnings = Vec::new();
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
            let mut out = anstream::stdout();
            for file in &files {
                let sref = target_of(file, name.as_deref(), version.as_deref())?;
                let target = root.join(sref.path());
                if target.exists() && !force {
                    bail!("{} already exists: a schema version never changes; add a new version instead", sref.path());
                }
                std::fs::create_dir_all(target.parent().unwrap())?;
                std::fs::copy(file, &target)
                    .with_context(|| format!("copying {}", file.display()))?;
                writeln!(out, "added {} as {}", file.display(), sref.path())?;
            }
            Ok(Outcome::Ok)
        }
    }
}

/// Where a schema file goes: from the flags, else from a CAP wrapper's own fields.
fn target_of(file: &Path, name: Option<&str>, version: Option<&str>) -> anyhow::Result<SchemaRef> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let (_, value) =
        capsule::json::parse(&file.display().to_string(), &bytes).map_err(|problems| {
            anyhow::anyhow!(
                "{}",
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })?;
    let name = name
        .map(str::to_string)
        .or_else(|| {
            value
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .with_context(|| format!("{}: give the schema's name with --name", file.display()))?;
    let version = version
        .map(str::to_string)
        .or_else(|| {
            value
                .get("version")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .with_context(|| {
            format!(
                "{}: give the schema's version with --schema-version",
                file.display()
            )
        })?;
    version.parse::<Version>()?;
    let sref = parse_schema_ref(&format!("{name}/{version}"))
        .with_context(|| format!("`{name}` is not a valid schema name"))?;
    Ok(sref)
}
