//! `capsule new`: a deposit from a schema, from a JSON file, or as a copy of another.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;

use capsule::archive::WorkTree;
use capsule::authoring::source::{metadata_of, overlay, Metadata};
use capsule::authoring::{mint_id, new_deposit, person_entry, today, wants_cap_ids};
use capsule::deposit::check_id;
use capsule::schema::{list_schemas, schema_ref_from_user, SchemaRegistry};

use super::clone::Clone;
use super::output;
use super::Outcome;

#[derive(Debug, Args)]
#[command(
    after_help = "The deposit pins the newest version of the schema (or the one given), names
you as its owner with read, update and admin rights, and starts from the schema's
defaults. Without --id, an id is minted from the schema's config.pid.format (CAP's,
e.g. \"CMS-{$year}-\" gives CMS-2026-001), else a CAP-style CAP.<EXPERIMENT>.XXXX.XXXX.

--from FILE takes the fields from a JSON file: a deposit, CAP's response for a deposit
or record (an object with `metadata`, as cap-client's `analysis get` prints it), or
cap-client's `metadata get` output; `-` reads standard input. --from ID copies another
deposit of the archive (a path that exists is read as a file first).
Either way the copy gets a new id, you as its owner and fresh _access; system fields
(_deposit, _access, _files, ...) and attached files are not copied. The schema is the
one the source names, unless SCHEMA is given. Metadata the schema refuses is reported
and nothing is written.

Examples:
  capsule new analysis                       newest analysis schema, minted id
  capsule new analysis/1.0.0 --id zee        a pinned version and a chosen id
  capsule new --from metadata.json           fields from a file (its $schema)
  cap-client analysis get --pid X | capsule new --from -
  capsule new analysis --from response.json  CAP's API response, with this schema
  capsule new --from higgs-4l --id higgs-4l-run3   a copy of another deposit"
)]
pub struct NewArgs {
    /// The schema: NAME for its newest version, or NAME/VERSION (default with --from:
    /// the schema the source names).
    #[arg(required_unless_present = "from")]
    schema: Option<String>,
    /// Take the fields from a JSON file (`-`: standard input), or copy them from the
    /// deposit with this id.
    #[arg(long, value_name = "FILE|ID")]
    from: Option<String>,
    /// The deposit's id (letters, digits, `.`, `_`, `-`).
    #[arg(long)]
    id: Option<String>,
    /// Act as this user (default: CAPSULE_USER, your git e-mail in access.toml, or $USER).
    #[arg(long = "as", value_name = "USER")]
    as_user: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Created {
    id: String,
    path: String,
    schema: String,
    owner: String,
    /// How the owner is written in the deposit (a name, or a CAP id).
    owner_entry: serde_json::Value,
    /// Where the fields came from (`--from`).
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<String>,
}

/// Reads `--from`: `-` for standard input, an existing file, else a deposit of this
/// clone.
fn read_source(clone: &Clone, from: &str) -> anyhow::Result<(Metadata, String)> {
    let path = Path::new(from);
    if from == "-" || path.is_file() {
        let bytes = if from == "-" {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
                .context("cannot read standard input")?;
            bytes
        } else {
            std::fs::read(path).with_context(|| format!("cannot read {from}"))?
        };
        let (_, value) = capsule::json::parse(from, &bytes).map_err(|problems| {
            anyhow::anyhow!(
                "--from {}; fix the file and run this again",
                problems
                    .iter()
                    .map(output::problem_line)
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })?;
        let metadata = metadata_of(&value).map_err(|e| anyhow::anyhow!("--from {from}: {e}"))?;
        return Ok((metadata, from.to_string()));
    }
    if check_id(from).is_ok()
        && clone
            .root
            .join(capsule::deposit::metadata_path(from))
            .is_file()
    {
        let value = clone.read_deposit(from)?;
        let metadata = metadata_of(&value).map_err(|e| anyhow::anyhow!("--from {from}: {e}"))?;
        return Ok((metadata, format!("deposit {from}")));
    }
    bail!(
        "--from {from}: there is no such file, and no deposit {from} in this clone; give a JSON file or the id of a deposit"
    )
}

pub fn run(args: NewArgs) -> anyhow::Result<Outcome> {
    let clone = Clone::open()?;
    let user = clone.user(args.as_user.as_deref())?;
    let tree = WorkTree::new(&clone.root);
    let source = match &args.from {
        Some(from) => Some(read_source(&clone, from)?),
        None => None,
    };
    let wanted = match (&args.schema, &source) {
        (Some(schema), _) => schema.clone(),
        (None, Some((Metadata { schema: Some(named), .. }, _))) => named.clone(),
        (None, Some((_, from))) => bail!(
            "{from} names no schema (no $schema): say which one, as in `capsule new NAME --from {}`",
            args.from.as_deref().unwrap_or_default()
        ),
        (None, None) => unreachable!("clap requires SCHEMA without --from"),
    };
    let sref = schema_ref_from_user(&tree, &wanted)?.with_context(|| {
        format!("`{wanted}` does not name a schema: write NAME or NAME/VERSION")
    })?;
    let mut registry = SchemaRegistry::new();
    let Some((_, schema)) = registry
        .load(&tree, &sref)
        .map_err(|e| anyhow::anyhow!("{e}"))?
    else {
        let names: Vec<String> = list_schemas(&tree)?.into_iter().map(|(n, _)| n).collect();
        bail!(
            "there is no schema {wanted} in this archive; it has: {}",
            if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            }
        );
    };
    // Ids are unique ignoring case: `Zee` and `zee` would be two folders in two shards,
    // but one URL on a case-insensitive web server and one name to a person.
    let existing = capsule::archive::deposit_ids(&tree)?;
    let taken = |id: &str| existing.iter().any(|e| e.eq_ignore_ascii_case(id));
    let id = match &args.id {
        Some(id) => {
            check_id(id).map_err(|e| anyhow::anyhow!("{e}"))?;
            if taken(id) {
                let other = existing
                    .iter()
                    .find(|e| e.eq_ignore_ascii_case(id))
                    .map_or(id.as_str(), String::as_str);
                bail!("deposit {other} exists already ({}): ids are unique ignoring case; pick another id, or edit that deposit", capsule::deposit::folder(other));
            }
            id.clone()
        }
        None => {
            let seed = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
                ^ u64::from(std::process::id()) << 32;
            mint_id(
                &schema.config,
                schema.experiment.as_deref(),
                today(),
                seed,
                &taken,
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?
        }
    };
    // CAP's schemas type owners and users as CAP user ids: write what the schema wants.
    let wants_ids = registry
        .compile(&tree, &schema.sref)
        .ok()
        .flatten()
        .is_some_and(|compiled| wants_cap_ids(&compiled));
    let person =
        person_entry(&clone.access, &user, wants_ids, &schema.sref).map_err(anyhow::Error::msg)?;
    // CAP's own access schema types roles as CAP ids too: names such as `public` would
    // make the new deposit invalid there, so such deposits start with no default readers.
    let readers: &[String] = if wants_ids {
        if !clone.settings.archive.default_readers.is_empty() {
            output::warning(&format!(
                "schema {} types _access roles as CAP ids, so archive.default_readers ({}) is not written into the new deposit; grant readers in its _access",
                schema.sref,
                clone.settings.archive.default_readers.join(", ")
            ));
        }
        &[]
    } else {
        &clone.settings.archive.default_readers
    };
    let mut deposit = new_deposit(&schema, &person, readers);
    if let Some((metadata, from)) = &source {
        overlay(&mut deposit, metadata.fields.clone());
        // Copied metadata is judged before anything is written, as the server would.
        let problems = clone.problems_of(&id, &deposit)?;
        if !problems.is_empty() {
            output::problems(
                &problems,
                "refused:",
                &format!(
                    "the metadata from {from} does not fit schema {}: {}; nothing was written. Fix the source (the pointers are the same there), or name another schema version",
                    schema.sref,
                    output::count(problems.len(), "problem")
                ),
            )?;
            return Ok(Outcome::Problems);
        }
    }
    let folder = clone.root.join(capsule::deposit::folder(&id));
    std::fs::create_dir_all(&folder)?;
    let path = folder.join("deposit.json");
    let mut text = serde_json::to_string_pretty(&deposit)?;
    text.push('\n');
    // create_new: never overwrite a deposit that appeared meanwhile.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;

    let created = Created {
        path: capsule::deposit::metadata_path(&id),
        schema: deposit["$schema"].as_str().unwrap_or_default().to_string(),
        id,
        owner: user,
        owner_entry: person,
        from: source.map(|(_, from)| from),
    };
    if args.json {
        output::json(&created)?;
    } else {
        let mut out = anstream::stdout();
        writeln!(
            out,
            "Created {} ({}, owner {}{}).\nFill it in, check it with `capsule validate {}`, then commit and push.",
            created.path,
            created.schema,
            created.owner,
            created
                .from
                .as_ref()
                .map(|f| format!(", fields from {f}; attached files are not copied"))
                .unwrap_or_default(),
            created.id
        )?;
    }
    Ok(Outcome::Ok)
}
