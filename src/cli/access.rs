//! `capsule access get|add|remove`: a deposit's `_access`, as cap-client's
//! `permissions get|add|remove` showed and changed it.
//!
//! These commands edit the working tree only. Whether the change may land is the
//! server's decision at push time (changing `_access` needs deposit-admin, judged from
//! the state before the push); here we only warn when it will not.

use std::io::Write;

use anyhow::bail;
use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use serde::Serialize;
use serde_json::Value;

use capsule::access::{entry_text, DepositAccess, Level};
use capsule::authoring::grants::{self, AccessView, GroupView, List, PersonView};
use capsule::authoring::{person_entry, wants_cap_ids, wants_cap_role_ids};

use super::clone::Clone;
use super::edit::{print_saved, save_change};
use super::output;
use super::Outcome;

#[derive(Debug, Subcommand)]
pub enum AccessCommand {
    /// Show who may read, update and administer a deposit.
    #[command(
        after_help = "Lists the deposit's owners (_deposit.owners, who hold deposit-admin) and the
users and e-groups of each level of its _access, with the names, e-mails and CAP ids
access.toml gives them. This is cap-client's `permissions get`.

Examples:
  capsule access get higgs-4l
  capsule access get higgs-4l --json"
    )]
    Get(GetArgs),
    /// Give a person or an e-group rights on a deposit (in your working tree).
    #[command(after_help = ACCESS_CHANGE_HELP)]
    Add(ChangeArgs),
    /// Take rights on a deposit away from a person or an e-group (in your working tree).
    #[command(after_help = ACCESS_CHANGE_HELP)]
    Remove(ChangeArgs),
}

const ACCESS_CHANGE_HELP: &str =
    "Each right is one list of the deposit's _access: --read is deposit-read, --update
deposit-update, --admin deposit-admin. As with cap-client's `permissions add -r`, each
right named is added (or removed) on its own: give several to change several.
--user takes a user name, e-mail or CAP id of a person in access.toml and writes what
the deposit's schema expects (the user name, or the CAP id where the schema types
users as numbers). --egroup takes a group of access.toml ([groups], or a group its
people list), or `public` for --read. The deposit is validated before it is written.

Only your working tree changes: commit and push, and the server accepts the change
from someone with deposit-admin on the deposit (its owners, its deposit-admin users
and groups, archive admins).

Examples:
  capsule access add higgs-4l --user bob --update
  capsule access add higgs-4l --user carol@example.org --read --update
  capsule access add higgs-4l --egroup cms-members --read
  capsule access remove higgs-4l --user bob --update
  capsule access add higgs-4l -u bob@example.org -r read -r update   (cap-client's spelling)";

#[derive(Debug, Args)]
pub struct GetArgs {
    /// The deposit.
    id: String,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// A right as cap-client's `--rights` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Right {
    Read,
    Update,
    Admin,
}

#[derive(Debug, Args)]
#[command(
    group(ArgGroup::new("who").required(true).args(["user", "egroup"])),
    group(ArgGroup::new("right").required(true).multiple(true).args(["read", "update", "admin", "rights"]))
)]
pub struct ChangeArgs {
    /// The deposit.
    id: String,
    /// A person of access.toml: user name, e-mail or CAP id.
    #[arg(long, short = 'u', value_name = "NAME|EMAIL|CAPID")]
    user: Option<String>,
    /// A group (e-group) of access.toml, or `public` (everyone may read).
    #[arg(long, short = 'e', value_name = "GROUP")]
    egroup: Option<String>,
    /// deposit-read: may read it (the public site shows it when `public` may).
    #[arg(long)]
    read: bool,
    /// deposit-update: may change its metadata and files.
    #[arg(long)]
    update: bool,
    /// deposit-admin: may also change its _access, publish and delete it.
    #[arg(long)]
    admin: bool,
    /// The rights as cap-client names them (repeat, or separate with commas).
    #[arg(
        long,
        short = 'r',
        value_enum,
        value_delimiter = ',',
        value_name = "RIGHT"
    )]
    rights: Vec<Right>,
    /// Act as this user, for the warning about your own rights (default: CAPSULE_USER,
    /// your git e-mail in access.toml, or $USER).
    #[arg(long = "as", value_name = "USER")]
    as_user: Option<String>,
    /// Print the deposit's access afterwards as JSON (as `access get --json`).
    #[arg(long)]
    json: bool,
}

impl ChangeArgs {
    /// The levels named, strongest last, each once.
    fn levels(&self) -> Vec<Level> {
        let named = |flag: bool, right: Right| flag || self.rights.contains(&right);
        [
            (named(self.read, Right::Read), Level::Read),
            (named(self.update, Right::Update), Level::Update),
            (named(self.admin, Right::Admin), Level::Admin),
        ]
        .into_iter()
        .filter_map(|(on, level)| on.then_some(level))
        .collect()
    }
}

pub fn run(cmd: AccessCommand) -> anyhow::Result<Outcome> {
    match cmd {
        AccessCommand::Get(args) => get(args),
        AccessCommand::Add(args) => change(args, true),
        AccessCommand::Remove(args) => change(args, false),
    }
}

#[derive(Serialize)]
struct Shown<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema: Option<&'a str>,
    #[serde(flatten)]
    access: AccessView,
}

fn show(clone: &Clone, id: &str, deposit: &Value, json: bool) -> anyhow::Result<()> {
    let shown = Shown {
        id,
        schema: deposit.get("$schema").and_then(Value::as_str),
        access: grants::describe(deposit, &clone.access),
    };
    if json {
        return output::json(&shown);
    }
    let mut out = anstream::stdout();
    writeln!(
        out,
        "{}{}",
        output::heading(id),
        shown.schema.map(|s| format!(" ({s})")).unwrap_or_default()
    )?;
    let people = |list: &[PersonView]| list.iter().map(person_line).collect::<Vec<_>>();
    let rows = [
        ("owners", people(&shown.access.owners)),
        (
            "deposit-admin",
            grant_line(&shown.access.admin.users, &shown.access.admin.roles),
        ),
        (
            "deposit-update",
            grant_line(&shown.access.update.users, &shown.access.update.roles),
        ),
        (
            "deposit-read",
            grant_line(&shown.access.read.users, &shown.access.read.roles),
        ),
    ];
    for (label, entries) in rows {
        let text = if entries.is_empty() {
            "nobody".to_string()
        } else {
            entries.join(", ")
        };
        writeln!(out, "  {label:<15} {text}")?;
    }
    Ok(())
}

fn grant_line(users: &[PersonView], roles: &[GroupView]) -> Vec<String> {
    users
        .iter()
        .map(person_line)
        .chain(roles.iter().map(|g| {
            let name = entry_text(&g.entry).unwrap_or_else(|| g.entry.to_string());
            if g.public {
                format!("e-group {name} (everyone)")
            } else if g.known {
                format!("e-group {name}")
            } else {
                format!("e-group {name} (not in access.toml)")
            }
        }))
        .collect()
}

fn person_line(p: &PersonView) -> String {
    let written = entry_text(&p.entry).unwrap_or_else(|| p.entry.to_string());
    match &p.user {
        Some(user) => {
            let mut text = user.clone();
            if let Some(email) = &p.email {
                text.push_str(&format!(" <{email}>"));
            }
            if let Some(id) = p.cap_id {
                text.push_str(&format!(" (CAP id {id})"));
            }
            text
        }
        None if p.group => format!("group {written}"),
        None if written.bytes().all(|b| b.is_ascii_digit()) => {
            format!("CAP user {written} (not in access.toml)")
        }
        None => format!("{written} (not in access.toml)"),
    }
}

fn get(args: GetArgs) -> anyhow::Result<Outcome> {
    let clone = Clone::open()?;
    let deposit = clone.read_deposit(&args.id)?;
    show(&clone, &args.id, &deposit, args.json)?;
    Ok(Outcome::Ok)
}

/// Why `given` names nobody in access.toml, with the line that would add them.
fn unknown_person(given: &str) -> String {
    let line = if given.contains('@') {
        let name = given.split('@').next().unwrap_or("NAME");
        format!("`{name} = \"{given}\"` (the user name the git server knows them by, then their e-mail)")
    } else if !given.is_empty() && given.bytes().all(|b| b.is_ascii_digit()) {
        format!("`NAME = {{ email = \"<e-mail>\", cap_id = {given} }}` (NAME: the user name the git server knows them by)")
    } else {
        format!("`{given} = \"<e-mail>\"`")
    };
    format!(
        "access.toml has no person {given} (by user name, e-mail or CAP id): an archive admin adds them to [people] in access.toml as {line}, commits and pushes that; then run this again"
    )
}

fn change(args: ChangeArgs, adding: bool) -> anyhow::Result<Outcome> {
    let clone = Clone::open()?;
    let path = clone.deposit(&args.id)?;
    let old = clone.read_deposit(&args.id)?;
    let levels = args.levels();
    // What the deposit's schema wants written: names, or CAP ids.
    let sref = old
        .get("$schema")
        .and_then(Value::as_str)
        .and_then(capsule::deposit::parse_schema_ref);
    let compiled = sref.as_ref().and_then(|sref| {
        capsule::schema::SchemaRegistry::new()
            .compile(&capsule::archive::WorkTree::new(&clone.root), sref)
            .ok()
            .flatten()
    });
    let access = &clone.access;
    let mut new = old.clone();
    let mut notes: Vec<String> = Vec::new();
    let who: String;
    if let Some(given) = &args.user {
        let person = access.find_person(given);
        if adding && person.is_none() {
            bail!("{}", unknown_person(given));
        }
        // A person access.toml no longer lists can still be removed by how they are written.
        let same = |entry: &Value| match person {
            Some(user) => access.entry_names(user, entry),
            None => entry_text(entry).is_some_and(|t| t.eq_ignore_ascii_case(given)),
        };
        who = person.unwrap_or(given).to_string();
        let entry = match person {
            Some(user) if adding => {
                let wants_ids = compiled.as_deref().is_some_and(wants_cap_ids);
                let schema = sref.clone().unwrap_or_else(|| capsule::deposit::SchemaRef {
                    name: "?".into(),
                    version: "?".into(),
                });
                Some(person_entry(access, user, wants_ids, &schema).map_err(anyhow::Error::msg)?)
            }
            _ => None,
        };
        apply(
            &mut new,
            &levels,
            List::Users,
            entry.as_ref(),
            &same,
            &who,
            &mut notes,
        )?;
        if !adding {
            if let Some(user) = person {
                let now = DepositAccess::of(&new).level(access, user);
                if let Some(&weakest) = levels.first() {
                    if now >= weakest {
                        notes.push(format!(
                            "{user} still holds {} on {} through its owners or a group (`capsule access get {}` shows them)",
                            now.key(),
                            args.id,
                            args.id
                        ));
                    }
                }
            }
        }
    } else {
        let group = args
            .egroup
            .clone()
            .expect("clap requires --user or --egroup");
        let public = group == "public" || group == "*";
        if adding && public && levels.iter().any(|&l| l != Level::Read) {
            bail!("`{group}` stands for everyone and grants only deposit-read (the public site); give people or e-groups --update or --admin");
        }
        let wants_role_ids = compiled.as_deref().is_some_and(wants_cap_role_ids);
        let entry = if wants_role_ids {
            match group.parse::<u64>() {
                Ok(id) => Value::from(id),
                Err(_) if adding => bail!(
                    "schema {} types _access roles as CAP role ids (numbers), so the e-group name {group} cannot be written there: give the e-group's CAP role id (`--egroup 42`), and map that id to its members in access.toml [groups] as `\"42\" = [\"<user>\", ...]`",
                    sref.as_ref().map(ToString::to_string).unwrap_or_default()
                ),
                Err(_) => Value::String(group.clone()),
            }
        } else {
            Value::String(group.clone())
        };
        if adding && !public && !access.knows_group(&group) {
            bail!(
                "access.toml has no group {group}: an archive admin adds it to [groups] in access.toml as `\"{group}\" = [\"<user>\", ...]` (or lists it in a person's `groups`), commits and pushes that; then run this again"
            );
        }
        let same = |e: &Value| entry_text(e).is_some_and(|t| t.eq_ignore_ascii_case(&group));
        who = format!("e-group {group}");
        let entry = adding.then_some(entry);
        apply(
            &mut new,
            &levels,
            List::Roles,
            entry.as_ref(),
            &same,
            &who,
            &mut notes,
        )?;
    }
    for note in &notes {
        writeln!(anstream::stderr(), "{} {note}", output::bad("note:"))?;
    }
    if new == old {
        if args.json {
            show(&clone, &args.id, &old, true)?;
        } else {
            writeln!(
                anstream::stdout(),
                "Nothing changed in {}",
                capsule::deposit::metadata_path(&args.id)
            )?;
        }
        return Ok(Outcome::Ok);
    }
    let what = format!(
        "{} access {} {who}",
        args.id,
        if adding { "add" } else { "remove" }
    );
    let Some(changes) = save_change(&clone, &args.id, &path, &old, &new, &what)? else {
        return Ok(Outcome::Problems);
    };
    warn_about_own_rights(&clone, &args, &old)?;
    if args.json {
        show(&clone, &args.id, &new, true)?;
    } else {
        print_saved(&args.id, &changes, false)?;
        writeln!(
            anstream::stdout(),
            "Commit and push it: git add {path} && git commit -m \"Access to {}\"",
            args.id,
            path = capsule::deposit::metadata_path(&args.id)
        )?;
    }
    Ok(Outcome::Ok)
}

/// Adds `entry` to `list` of each level (or, given none, removes what is `same` from
/// it), noting each level where nothing changed.
fn apply(
    deposit: &mut Value,
    levels: &[Level],
    list: List,
    entry: Option<&Value>,
    same: &dyn Fn(&Value) -> bool,
    who: &str,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    for &level in levels {
        let place = format!("{}.{}", level.key(), list.key());
        let changed = match entry {
            Some(entry) => grants::add(deposit, level, list, entry.clone(), same),
            None => grants::remove(deposit, level, list, same).map(|gone| !gone.is_empty()),
        }
        .map_err(anyhow::Error::msg)?;
        if !changed {
            notes.push(match entry {
                Some(_) => format!("{who} is in {place} already"),
                None => format!("{who} is not in {place}"),
            });
        }
    }
    Ok(())
}

/// Says so when the server will refuse this change from the person working here.
fn warn_about_own_rights(clone: &Clone, args: &ChangeArgs, old: &Value) -> anyhow::Result<()> {
    let Ok(me) = clone.user(args.as_user.as_deref()) else {
        return Ok(());
    };
    let is_archive_admin = clone.access.matches_any(&me, &clone.settings.policy.admins);
    let held = DepositAccess::of(old);
    let level = held.level(&clone.access, &me);
    if is_archive_admin || level == Level::Admin {
        return Ok(());
    }
    let admins = held.holders_in(&clone.access, Level::Admin);
    output::warning(&format!(
        "you ({me}) hold {} on {}, and changing its _access needs deposit-admin: the server will refuse your push. Ask one of its admins ({}) to make this change",
        match level {
            Level::None => "no access".to_string(),
            other => format!("only {}", other.key()),
        },
        args.id,
        if admins.is_empty() {
            "an archive admin".to_string()
        } else {
            admins.join(", ")
        }
    ));
    Ok(())
}
