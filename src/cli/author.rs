//! `capsule new`

use std::io::Write;

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;

use capsule::archive::WorkTree;
use capsule::authoring::{mint_id, new_deposit, today, wants_cap_ids};
use capsule::deposit::{check_id, parse_latest_schema_ref, parse_schema_ref};
use capsule::schema::{list_schemas, SchemaRegistry};

use super::clone::Clone;
use super::output;
use super::Outcome;

#[derive(Debug, Args)]
#[command(
    after_help = "The deposit pins the newest version of the schema (or the one given), names
you as its owner with read, update and admin rights, and starts from the schema's
defaults. Without --id, an id is minted from the schema's config.pid.format (CAP's,
e.g. \"CMS-{$year}-\" gives CMS-2026-001), else a CAP-style CAP.<EXPERIMENT>.XXXX.XXXX.

Examples:
  capsule new analysis                 newest analysis schema, minted id
  capsule new analysis/1.0.0 --id zee  a pinned version and a chosen id"
)]
pub struct NewArgs {
    /// The schema: NAME for its newest version, or NAME/VERSION.
    schema: String,
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
}

pub fn run(args: NewArgs) -> anyhow::Result<Outcome> {
    let clone = Clone::open()?;
    let user = clone.user(args.as_user.as_deref())?;
    let tree = WorkTree::new(&clone.root);
    // A bare name means its newest version, even when the name contains `-v`
    // (atlas-variables); otherwise NAME/VERSION or NAME-vVERSION.
    let known = list_schemas(&tree)?
        .into_iter()
        .any(|(name, _)| name == args.schema);
    let sref = if known {
        parse_latest_schema_ref(&format!("{}/latest", args.schema))
    } else if args.schema.contains('/') || args.schema.contains("-v") {
        parse_schema_ref(&args.schema)
    } else {
        parse_latest_schema_ref(&format!("{}/latest", args.schema))
    }
    .with_context(|| {
        format!(
            "`{}` does not name a schema: write NAME or NAME/VERSION",
            args.schema
        )
    })?;
    let mut registry = SchemaRegistry::new();
    let Some((_, schema)) = registry
        .load(&tree, &sref)
        .map_err(|e| anyhow::anyhow!("{e}"))?
    else {
        let names: Vec<String> = list_schemas(&tree)?.into_iter().map(|(n, _)| n).collect();
        bail!(
            "there is no schema {} in this archive; it has: {}",
            args.schema,
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
    let person = match (wants_ids, clone.access.cap_id(&user)) {
        (false, _) => serde_json::Value::String(user.clone()),
        (true, Some(id)) => serde_json::Value::from(id),
        (true, None) => bail!(
            "schema {} wants CAP user ids (numbers) in _deposit.owners and _access, and access.toml gives {user} none: write their line in [people] as `{user} = {{ email = \"{}\", cap_id = <CAP user id> }}`, then run this again",
            schema.sref,
            clone.access.email(&user).unwrap_or("...")
        ),
    };
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
    let deposit = new_deposit(&schema, &person, readers);
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
    };
    if args.json {
        output::json(&created)?;
    } else {
        let mut out = anstream::stdout();
        writeln!(
            out,
            "Created {} ({}, owner {}).\nFill it in, check it with `capsule validate {}`, then commit and push.",
            created.path,
            created.schema,
            created.owner,
            created.id
        )?;
    }
    Ok(Outcome::Ok)
}
