//! From CAP's snapshots to a plan: one deposit per CAP pid, its published revisions
//! in order and its latest draft, each judged as the push hook will judge it, and
//! compared with what the archive holds already (so a second run plans nothing).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::access::Access;
use crate::archive::Source;
use crate::authoring::wants_cap_ids;
use crate::deposit::{check_id, metadata_path, SchemaRef};
use crate::problem::Problem;
use crate::schema::{CompiledSchema, Mode, SchemaRegistry};
use crate::validate::{check, parse_deposit, prepare};

use super::files::{plan_files, FileFetcher};
use super::map::{map_person, Item, Mapped, SchemaName, Timestamp};
use super::schemas::{AddedSchema, Overlay, Schemas};
use super::source::Unreadable;

/// One state of a deposit to commit, and the record version it becomes.
#[derive(Debug, Clone)]
pub struct Step {
    pub value: Value,
    pub author: Option<Timestamp>,
    pub committer: Option<Timestamp>,
    /// `Some(n)`: this state is published as `records/<id>/v<n>`.
    pub version: Option<u32>,
    /// Whether the content differs from the archive's (else no commit, maybe a tag).
    pub changes: bool,
    pub origin: String,
}

/// One deposit to write.
#[derive(Debug, Clone)]
pub struct DepositPlan {
    pub id: String,
    pub schema: String,
    pub steps: Vec<Step>,
    /// Files fetched from CAP: name in the deposit's folder and bytes.
    pub files: Vec<(String, Vec<u8>)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UnknownUser {
    pub id: String,
    pub entry: String,
    pub at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct MissingFile {
    pub id: String,
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    pub reason: String,
}

/// A deposit that cannot be imported as it is, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Invalid {
    pub id: String,
    pub origins: Vec<String>,
    /// `schema` (no usable schema), `draft` (the hook refuses it as a deposit),
    /// `record` (a published revision the hook refuses as a record: CAP's publish
    /// check fails), `id` (CAP's pid is no capsule id), `file`.
    pub kind: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
}

/// What an import will do (or did), for people and for `--json`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub dry_run: bool,
    pub written: bool,
    pub imported: Vec<Imported>,
    pub unchanged: Vec<String>,
    pub schemas_added: Vec<AddedSchema>,
    pub unknown_users: Vec<UnknownUser>,
    pub missing_files: Vec<MissingFile>,
    pub invalid: Vec<Invalid>,
    pub not_records: Vec<Unreadable>,
    /// Commits and record tags made (empty on a dry run).
    pub commits: Vec<String>,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Imported {
    pub id: String,
    pub schema: String,
    pub commits: usize,
    pub versions: Vec<String>,
    pub origins: Vec<String>,
}

impl Report {
    /// Whether anything stands in the way of importing everything.
    pub fn has_problems(&self) -> bool {
        !self.invalid.is_empty() || !self.not_records.is_empty()
    }
}

/// The whole plan: schemas to add, deposits to write, and the report.
pub struct Plan {
    pub schema_files: BTreeMap<String, Vec<u8>>,
    pub deposits: Vec<DepositPlan>,
    pub report: Report,
}

/// What the archive holds of one deposit now.
pub struct Existing {
    pub value: Option<Value>,
    pub versions: u32,
}

/// Plans the import of `items` into the archive at `archive`.
#[allow(clippy::too_many_arguments)]
pub fn plan(
    archive: &dyn Source,
    access: &Access,
    schemas: &Schemas<'_>,
    items: Vec<Item>,
    not_records: Vec<Unreadable>,
    existing: &dyn Fn(&str) -> Existing,
    fetch: &FileFetcher<'_>,
) -> Result<Plan, super::source::ApiError> {
    let mut report = Report {
        not_records,
        ..Report::default()
    };
    let mut groups: BTreeMap<String, Vec<Item>> = BTreeMap::new();
    for item in items {
        groups.entry(item.id.clone()).or_default().push(item);
    }

    // Choose each deposit's schema; gather the missing ones in one step.
    let mut chosen: BTreeMap<String, SchemaRef> = BTreeMap::new();
    for (id, group) in &groups {
        let origins = origins_of(group);
        if let Err(e) = check_id(id) {
            report.invalid.push(Invalid {
                id: id.clone(),
                origins,
                kind: "id",
                message: format!("CAP's pid `{id}` cannot be a capsule id: {e}"),
                problems: vec![],
            });
            continue;
        }
        let named = group
            .iter()
            .rev()
            .find(|i| i.schema != SchemaName::Unknown)
            .unwrap_or(group.last().expect("groups are not empty"));
        match schemas.choose(archive, &named.schema, &named.schema_text) {
            Ok(sref) => {
                chosen.insert(id.clone(), sref);
            }
            Err(message) => report.invalid.push(Invalid {
                id: id.clone(),
                origins,
                kind: "schema",
                message,
                problems: vec![],
            }),
        }
    }
    let mut overlay = Overlay {
        base: archive,
        added: BTreeMap::new(),
    };
    let mut wanted: Vec<SchemaRef> = chosen.values().cloned().collect();
    wanted.sort();
    wanted.dedup();
    let (added, failed) = schemas.gather(&mut overlay, &wanted)?;
    report.schemas_added = added;

    let mut registry =
        SchemaRegistry::with_validation(crate::validate::validation_settings(archive));
    let mut deposits = Vec::new();
    for (id, group) in groups {
        let Some(sref) = chosen.get(&id).cloned() else {
            continue;
        };
        let origins = origins_of(&group);
        let invalid = |kind, message: String, problems| Invalid {
            id: id.clone(),
            origins: origins.clone(),
            kind,
            message,
            problems,
        };
        if let Some(why) = failed.get(&sref) {
            report.invalid.push(invalid("schema", why.clone(), vec![]));
            continue;
        }
        let compiled: Arc<CompiledSchema> = match registry.compile(&overlay, &sref) {
            Ok(Some(c)) => c,
            Ok(None) => {
                report.invalid.push(invalid(
                    "schema",
                    format!("schema {sref} is not in the archive"),
                    vec![],
                ));
                continue;
            }
            Err(crate::schema::LoadError::Invalid(problems)) => {
                report.invalid.push(invalid(
                    "schema",
                    format!("schema {sref} cannot be used"),
                    problems,
                ));
                continue;
            }
            Err(e) => {
                report
                    .invalid
                    .push(invalid("schema", e.to_string(), vec![]));
                continue;
            }
        };
        let wants_ids = wants_cap_ids(&compiled);
        let mut unknown = Vec::new();
        let states = states_of(&group);
        let mut steps = Vec::new();
        let mut problems = Vec::new();
        let mut kind = "draft";
        for state in &states {
            let value = deposit_value(&id, &sref, state, &group, access, wants_ids, &mut unknown);
            let text = serde_json::to_string_pretty(&value).expect("JSON values serialise");
            let parsed = match parse_deposit(&metadata_path(&id), text.as_bytes()) {
                Ok(p) => p,
                Err(p) => {
                    problems.extend(p);
                    continue;
                }
            };
            match prepare(&mut registry, &overlay, parsed) {
                Ok(prepared) => {
                    let draft = check(&prepared, Mode::Draft);
                    if !draft.is_empty() {
                        problems.extend(draft);
                    } else if state.published {
                        let publish = check(&prepared, Mode::Publish);
                        if !publish.is_empty() {
                            kind = "record";
                            problems.extend(publish);
                        }
                    }
                }
                Err(p) => problems.extend(p),
            }
            steps.push(Step {
                value,
                author: group.iter().filter_map(|i| i.created).min(),
                committer: state.updated.or(state.created),
                version: None,
                changes: true,
                origin: state.origin.clone(),
            });
        }
        unknown.sort_by(|a: &UnknownUser, b| (&a.at, &a.entry).cmp(&(&b.at, &b.entry)));
        unknown.dedup_by(|a, b| a.entry == b.entry && a.at == b.at);
        if !problems.is_empty() {
            let message = if kind == "record" {
                format!("CAP holds {id} as published, but it is incomplete for schema {sref}: the server would refuse its record tag (CAP's publish check fails the same way)")
            } else {
                format!("{id} is not valid for schema {sref}: the server would refuse it")
            };
            report.invalid.push(invalid(kind, message, problems));
            continue;
        }
        report.unknown_users.extend(unknown);

        // Files: fetched where CAP says where and a token is given, checked against
        // CAP's size and checksum; else listed as missing.
        let latest_files = group
            .iter()
            .rev()
            .find(|i| !i.files.is_empty())
            .map(|i| i.files.clone())
            .unwrap_or_default();
        let files = match plan_files(archive, &id, &latest_files, fetch)? {
            Ok(files) => files,
            Err(message) => {
                report.invalid.push(invalid("file", message, vec![]));
                continue;
            }
        };
        report.missing_files.extend(files.missing);
        let files = files.write;

        // Compare with the archive: the revisions it holds as record versions already
        // (v1..vN, in the same order) are skipped whole; of the rest, a state equal to
        // the archive's deposit makes no commit (only its tag).
        let now = existing(&id);
        let mut current = now.value;
        let mut version = 0u32;
        let mut new_versions = Vec::new();
        for (step, state) in steps.iter_mut().zip(&states) {
            if state.published {
                version += 1;
                if version <= now.versions {
                    step.changes = false;
                    continue;
                }
                step.version = Some(version);
                new_versions.push(crate::record::record_ref(&id, version));
            }
            step.changes = current.as_ref() != Some(&step.value);
            if step.changes {
                current = Some(step.value.clone());
            }
        }
        steps.retain(|s| s.changes || s.version.is_some());
        let has_new_files = !files.is_empty();
        if steps.is_empty() && !has_new_files {
            report.unchanged.push(id.clone());
            continue;
        }
        report.imported.push(Imported {
            id: id.clone(),
            schema: sref.to_string(),
            commits: steps.iter().filter(|s| s.changes).count(),
            versions: new_versions,
            origins: origins.clone(),
        });
        deposits.push(DepositPlan {
            id,
            schema: sref.to_string(),
            steps,
            files,
        });
    }
    Ok(Plan {
        schema_files: overlay.added,
        deposits,
        report,
    })
}

fn origins_of(group: &[Item]) -> Vec<String> {
    let mut o: Vec<String> = group.iter().map(|i| i.origin.clone()).collect();
    o.dedup();
    o
}

/// One state of a deposit: its fields, whether it was published, its date.
struct State {
    fields: Map<String, Value>,
    published: bool,
    created: Option<Timestamp>,
    updated: Option<Timestamp>,
    origin: String,
}

/// The published revisions in order, then the newest draft if it came after them.
///
/// The published revisions are the record's when CAP gave any record snapshot (its
/// revisions are the versions; a deposit's own revision numbers count something
/// else), else the deposits CAP calls published. One revision read twice (a saved
/// file and the API) is one version, and so is a revision that changed nothing.
fn states_of(group: &[Item]) -> Vec<State> {
    let fields_of = |item: &Item| -> Map<String, Value> {
        if item.has_fields {
            item.fields.clone()
        } else {
            group
                .iter()
                .rev()
                .find(|i| i.has_fields)
                .map(|i| i.fields.clone())
                .unwrap_or_default()
        }
    };
    let has_records = group.iter().any(|i| i.record);
    let mut published: Vec<&Item> = group
        .iter()
        .filter(|i| i.published && (i.record || !has_records))
        .collect();
    published.sort_by_key(|i| (i.revision, i.updated));
    let mut states: Vec<State> = Vec::new();
    let mut last_revision = None;
    for item in &published {
        let fields = fields_of(item);
        let same_revision = item.revision.is_some() && item.revision == last_revision;
        last_revision = item.revision;
        if same_revision || states.last().is_some_and(|s| s.fields == fields) {
            continue;
        }
        states.push(State {
            fields,
            published: true,
            created: item.created,
            updated: item.updated,
            origin: item.origin.clone(),
        });
    }
    let mut drafts: Vec<&Item> = group.iter().filter(|i| !i.published).collect();
    drafts.sort_by_key(|i| i.updated);
    if let Some(draft) = drafts.last() {
        let newest_published = published.iter().filter_map(|i| i.updated).max();
        if states.is_empty() || draft.updated > newest_published {
            let fields = fields_of(draft);
            if !states.last().is_some_and(|s| s.fields == fields) {
                states.push(State {
                    fields,
                    published: false,
                    created: draft.created,
                    updated: draft.updated,
                    origin: draft.origin.clone(),
                });
            }
        }
    }
    states
}

/// The deposit.json of one state: `$schema`, CAP's fields, owners and `_access`
/// mapped through access.toml, and CAP's file references with their checksums.
fn deposit_value(
    id: &str,
    sref: &SchemaRef,
    state: &State,
    group: &[Item],
    access: &Access,
    wants_ids: bool,
    unknown: &mut Vec<UnknownUser>,
) -> Value {
    let mut out = Map::new();
    out.insert("$schema".into(), Value::String(sref.to_string()));
    for (k, v) in &state.fields {
        out.insert(k.clone(), v.clone());
    }
    let mut map = |entry: &Value, at: &str| -> Value {
        match map_person(access, entry, wants_ids) {
            Mapped::Known(v) => v,
            Mapped::Unknown(v, shown) => {
                unknown.push(UnknownUser {
                    id: id.to_string(),
                    entry: shown,
                    at: at.to_string(),
                });
                v
            }
        }
    };
    let owners: Vec<Value> = group
        .iter()
        .rev()
        .find_map(|i| i.owners.clone())
        .unwrap_or_default()
        .iter()
        .map(|o| map(o, "/_deposit/owners"))
        .collect();
    out.insert("_deposit".into(), json!({"id": id, "owners": owners}));
    if let Some(levels) = group.iter().rev().find_map(|i| i.access.clone()) {
        let mut mapped = Map::new();
        for level in ["deposit-read", "deposit-update", "deposit-admin"] {
            let Some(grant) = levels.get(level) else {
                continue;
            };
            let users: Vec<Value> = grant
                .get("users")
                .and_then(Value::as_array)
                .map(|u| {
                    u.iter()
                        .map(|e| map(e, &format!("/_access/{level}/users")))
                        .collect()
                })
                .unwrap_or_default();
            let roles = grant.get("roles").cloned().unwrap_or_else(|| json!([]));
            mapped.insert(level.into(), json!({"users": users, "roles": roles}));
        }
        out.insert("_access".into(), Value::Object(mapped));
    }
    if let Some(files) = group
        .iter()
        .rev()
        .find(|i| !i.files.is_empty())
        .map(|i| &i.files)
    {
        let list: Vec<Value> = files
            .iter()
            .map(|f| {
                let mut o = Map::new();
                o.insert("key".into(), f.key.clone().into());
                if let Some(c) = &f.checksum {
                    o.insert("checksum".into(), c.clone().into());
                }
                if let Some(s) = f.size {
                    o.insert("size".into(), s.into());
                }
                Value::Object(o)
            })
            .collect();
        out.insert("_files".into(), Value::Array(list));
    }
    Value::Object(out)
}
