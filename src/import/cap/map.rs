//! What CAP's JSON says, in capsule's terms: one [`Item`] per deposit or record
//! snapshot, whatever shape CAP wrote it in, and CAP's people mapped through
//! access.toml.
//!
//! The shapes (each named by what CAP and its clients really produce):
//! - a full deposit or record (`application/json`): `id`, `metadata`, `schema` as
//!   `{name, version}` or `$schema`, `access` as `{level: {users, roles}}` or as a list
//!   of `{action, identity, type}`, `created_by`, `files`/`_files`, `created`,
//!   `updated`, `status`, `revision`;
//! - a basic hit (`application/basic+json`): `pid`, `metadata`, `created`, `updated`;
//! - a record of CAP's record lists (its fixtures and dumps): `{collection, schema,
//!   metadata}` with no id and a collection name instead of a schema name.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::access::Access;
use crate::deposit::{parse_schema_ref, SchemaRef};

/// How a snapshot names its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaName {
    /// An exact name and version (`{name, version}`, `name-v1.0.0`, a CAP URL).
    Exact(SchemaRef),
    /// A name without a version (an unversioned CAP URL): the newest version.
    Newest(String),
    /// A CAP collection of the 2016-2018 record lists (`CMSAnalysis`).
    Collection(String),
    /// Nothing: a basic search hit, or a record list entry without collection.
    Unknown,
}

/// One file a deposit referred to in CAP.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileRef {
    pub key: String,
    /// As CAP gives it (`md5:...`); `None` when CAP gave none (or `"None"`).
    pub checksum: Option<String>,
    pub size: Option<u64>,
    /// Where CAP serves its bytes (`links.self`), when the snapshot says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// CAP's bucket: the file is also at `/api/files/<bucket>/<key>`.
    #[serde(skip)]
    pub bucket: Option<String>,
}

/// One snapshot of a deposit or record, as read.
#[derive(Debug, Clone)]
pub struct Item {
    /// Where it was read: a file (with a pointer into it) or a URL.
    pub origin: String,
    /// CAP's pid: the archive's id for it.
    pub id: String,
    pub schema: SchemaName,
    /// The schema as the snapshot wrote it, for messages.
    pub schema_text: String,
    /// The deposit's own fields (no `$schema`, `_deposit`, `_access`, `_files`).
    pub fields: Map<String, Value>,
    /// Whether the snapshot carried its fields (a basic hit carries `metadata` too).
    pub has_fields: bool,
    pub owners: Option<Vec<Value>>,
    /// `_access` as `{level: {users: [...], roles: [...]}}`.
    pub access: Option<Map<String, Value>>,
    pub files: Vec<FileRef>,
    pub created: Option<Timestamp>,
    pub updated: Option<Timestamp>,
    /// A published version (a record, or a deposit CAP says is published).
    pub published: bool,
    /// A record snapshot (from `/api/records/`, `type: record`, a record list entry),
    /// not a deposit: its revisions are the record's versions.
    pub record: bool,
    pub revision: Option<u64>,
    /// The full form of this snapshot, when it is only a summary (`links.self`).
    pub self_link: Option<String>,
}

/// Seconds since the epoch and the offset CAP wrote, in minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp {
    pub seconds: i64,
    pub offset_minutes: i32,
}

/// A JSON value that is not a CAP deposit or record, and why.
pub fn not_a_record_reason(value: &Value) -> String {
    match value {
        Value::Array(_) => "a JSON list whose entries are not CAP records (each needs `metadata`, with `id`/`pid` or `collection`): this looks like a service's data (CAP's example files for ATLAS Glance or LHCb's analysis list are of this kind), not a deposit".into(),
        Value::Object(o) if o.contains_key("hits") => "a search answer without `hits.hits`".into(),
        Value::Object(_) => "an object with neither `metadata` and an id (`id`, `pid`, `control_number`) nor a record list's `collection`: this looks like a service's data, not a CAP deposit or record".into(),
        _ => "not a JSON object or list".into(),
    }
}

/// Whether `value` has a shape of one CAP deposit or record.
pub fn is_record(value: &Value) -> bool {
    let Some(o) = value.as_object() else {
        return false;
    };
    let has_meta = o.contains_key("metadata");
    let has_id = ["id", "pid", "control_number", "recid"]
        .iter()
        .any(|k| o.get(*k).is_some_and(|v| v.is_string() || v.is_u64()));
    (has_meta && (has_id || o.contains_key("collection"))) || (o.contains_key("$schema") && has_id)
}

/// Reads one snapshot. `from_records` says it came from `/api/records/`.
pub fn read_item(origin: &str, value: &Value, from_records: bool) -> Result<Item, String> {
    let o = value
        .as_object()
        .ok_or_else(|| not_a_record_reason(value))?;
    let metadata = match o.get("metadata") {
        Some(Value::Object(m)) => Some(m.clone()),
        Some(Value::Null) | None => None,
        Some(_) => return Err("`metadata` is neither an object nor null".into()),
    };
    let has_fields = metadata.is_some();
    let mut fields = metadata.unwrap_or_default();
    let text = |v: Option<&Value>| -> Option<String> {
        match v? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let system = |key: &str| fields.get(key).or_else(|| o.get(key)).cloned();
    let deposit_sys = system("_deposit");
    let status =
        text(o.get("status")).or_else(|| text(deposit_sys.as_ref().and_then(|d| d.get("status"))));
    let is_record_type = o.get("type").and_then(Value::as_str) == Some("record");
    let legacy = o.contains_key("collection") && !o.contains_key("id") && !o.contains_key("pid");
    let record = from_records || is_record_type || legacy;
    let published = record || status.as_deref() == Some("published");

    // The id: the deposit's pid (a record names it in `_deposit.id`).
    let deposit_id = deposit_sys.as_ref().and_then(|d| text(d.get("id")));
    let id = if is_record_type || from_records {
        deposit_id
            .or_else(|| text(o.get("id")))
            .or_else(|| text(o.get("pid")))
    } else {
        text(o.get("id"))
            .or_else(|| text(o.get("pid")))
            .or(deposit_id)
    }
    .or_else(|| text(o.get("control_number")))
    .or_else(|| text(fields.get("control_number")))
    .or_else(|| text(o.get("recid")));
    let id = match id {
        Some(id) => id,
        None if legacy => legacy_id(o.get("collection"), &fields),
        None => return Err(not_a_record_reason(value)),
    };

    // The schema, in the order CAP's serialisers put it.
    let mut schema_text = String::new();
    let mut schema = SchemaName::Unknown;
    let named = fields
        .get("$schema")
        .or_else(|| o.get("$schema"))
        .or_else(|| o.get("schema"));
    match named {
        Some(Value::Object(s)) => {
            if let (Some(n), Some(v)) = (text(s.get("name")), text(s.get("version"))) {
                schema_text = format!("{n}/{v}");
                schema = parse_schema_ref(&schema_text)
                    .map(SchemaName::Exact)
                    .unwrap_or(SchemaName::Unknown);
            }
        }
        Some(Value::String(s)) if !s.is_empty() => {
            schema_text = s.clone();
            schema = schema_name_of(s);
        }
        _ => {}
    }
    if legacy {
        if let Some(c) = text(o.get("collection")) {
            if matches!(schema, SchemaName::Unknown | SchemaName::Newest(_)) {
                if schema_text.is_empty() {
                    schema_text = c.clone();
                }
                schema = SchemaName::Collection(c);
            }
        }
    }

    let owners = deposit_sys
        .as_ref()
        .and_then(|d| d.get("owners"))
        .and_then(Value::as_array)
        .cloned()
        .or_else(|| {
            o.get("created_by")
                .filter(|c| !c.is_null())
                .map(|c| vec![c.clone()])
        });
    let access = read_access(system("_access").as_ref().or(o.get("access")));
    let mut files = Vec::new();
    for list in [o.get("files"), o.get("_files"), fields.get("_files")]
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
    {
        for f in list {
            if let Some(file) = read_file(f) {
                if !files.iter().any(|g: &FileRef| g.key == file.key) {
                    files.push(file);
                }
            }
        }
    }
    for key in [
        "$schema",
        "_deposit",
        "_access",
        "_files",
        "control_number",
        "_bucket",
        "_experiment",
        "_review",
        "_user_edited",
    ] {
        fields.remove(key);
    }
    let revision = o
        .get("revision")
        .or_else(|| o.get("revision_id"))
        .and_then(Value::as_u64);
    Ok(Item {
        origin: origin.to_string(),
        id,
        schema,
        schema_text,
        fields,
        has_fields,
        owners,
        access,
        files,
        created: text(o.get("created")).and_then(|t| parse_timestamp(&t)),
        updated: text(o.get("updated")).and_then(|t| parse_timestamp(&t)),
        published,
        record,
        revision,
        self_link: o
            .get("links")
            .and_then(|l| l.get("self"))
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// A schema URL or name: exact when it has a version, else the newest of its name.
/// `https://localhost:5000/records/jsonschemas/CMSAnalysis/` (CAP's 2016 records) names a
/// collection.
pub fn schema_name_of(text: &str) -> SchemaName {
    if let Some(sref) = parse_schema_ref(text) {
        return SchemaName::Exact(sref);
    }
    let trimmed = text.trim_end_matches('/');
    if trimmed.contains("/jsonschemas/") && !trimmed.ends_with(".json") {
        if let Some(last) = trimmed.rsplit('/').next() {
            return SchemaName::Collection(last.to_string());
        }
    }
    match crate::deposit::parse_latest_schema_ref(text) {
        Some(s) => SchemaName::Newest(s.name),
        None => SchemaName::Unknown,
    }
}

/// CAP's record lists carry no id (CAP minted a random one on loading them). The
/// archive's id is made from the collection and the record's content, so the same
/// record gets the same id on every run.
fn legacy_id(collection: Option<&Value>, fields: &Map<String, Value>) -> String {
    use sha2::{Digest, Sha256};
    let text = serde_json::to_string(fields).unwrap_or_default();
    let digest = Sha256::digest(text.as_bytes());
    let collection: String = collection
        .and_then(Value::as_str)
        .unwrap_or("record")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_lowercase();
    let hex: String = digest[..5].iter().map(|b| format!("{b:02x}")).collect();
    format!("cap-{collection}-{hex}")
}

/// `_access` in any of CAP's forms, as `{level: {users, roles}}`.
fn read_access(value: Option<&Value>) -> Option<Map<String, Value>> {
    match value? {
        Value::Object(levels) => Some(levels.clone()),
        Value::Array(grants) => {
            let mut levels = Map::new();
            for g in grants {
                let (Some(action), Some(identity)) = (
                    g.get("action").and_then(Value::as_str),
                    g.get("identity").filter(|v| !v.is_null()),
                ) else {
                    continue;
                };
                let list = if g.get("type").and_then(Value::as_str) == Some("role") {
                    "roles"
                } else {
                    "users"
                };
                let level = levels
                    .entry(action.to_string())
                    .or_insert_with(|| serde_json::json!({"users": [], "roles": []}));
                if let Some(Value::Array(a)) = level.get_mut(list) {
                    a.push(identity.clone());
                }
            }
            Some(levels)
        }
        _ => None,
    }
}

fn read_file(f: &Value) -> Option<FileRef> {
    let key = f.get("key").and_then(Value::as_str)?.to_string();
    let checksum = f
        .get("checksum")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty() && *c != "None")
        .map(str::to_string);
    let url = f
        .get("links")
        .and_then(|l| l.get("self").or_else(|| l.get("download")))
        .and_then(Value::as_str)
        .map(str::to_string);
    // CAP writes `size: 0` with `checksum: "None"` for a file it never received; with
    // a checksum, 0 is the size of an empty file.
    let size = f
        .get("size")
        .and_then(Value::as_u64)
        .filter(|s| *s > 0 || checksum.is_some());
    Some(FileRef {
        key,
        checksum,
        size,
        url,
        bucket: f
            .get("bucket")
            .and_then(Value::as_str)
            .filter(|b| !b.is_empty())
            .map(str::to_string),
    })
}

/// What happened to one person named in CAP's access lists.
pub enum Mapped {
    /// access.toml knows them: the entry as the schema wants it.
    Known(Value),
    /// Nobody in access.toml: kept as CAP wrote it (e-mail or id), and listed.
    Unknown(Value, String),
}

/// Maps one CAP user entry (a CAP id, an e-mail, `{"email": ...}`, a user name) through
/// access.toml: to the person's CAP id where the schema wants ids, else to their user
/// name. Nobody is dropped: an unknown person keeps CAP's entry.
pub fn map_person(access: &Access, entry: &Value, wants_ids: bool) -> Mapped {
    let entry = match entry {
        Value::Object(o) => match o.get("email").or_else(|| o.get("id")) {
            Some(inner) => inner.clone(),
            None => return Mapped::Unknown(entry.clone(), entry.to_string()),
        },
        other => other.clone(),
    };
    let as_id = match &entry {
        Value::Number(n) => n.as_u64(),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()
        }
        _ => None,
    };
    let user = match (&entry, as_id) {
        (_, Some(id)) => access.user_by_cap_id(id).map(str::to_string),
        (Value::String(s), None) if s.contains('@') => access.user_by_email(s).map(str::to_string),
        (Value::String(s), None) => access.knows(s).then(|| s.clone()),
        _ => None,
    };
    let shown = match &entry {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match user {
        Some(user) if wants_ids => match access.cap_id(&user) {
            Some(id) => Mapped::Known(Value::from(id)),
            // The schema wants a number and access.toml has none: keep CAP's entry.
            None => match as_id {
                Some(id) => Mapped::Known(Value::from(id)),
                None => Mapped::Unknown(
                    entry,
                    format!("{shown} ({user} has no cap_id in access.toml)"),
                ),
            },
        },
        Some(user) => Mapped::Known(Value::String(user)),
        None => match (wants_ids, as_id) {
            (true, Some(id)) => Mapped::Unknown(Value::from(id), shown),
            _ => Mapped::Unknown(entry, shown),
        },
    }
}

/// CAP's timestamps: `2021-12-07T15:46:13.700108+00:00`, `2019-08-29 08:36:37.552000+00:00`,
/// with `Z` or no zone (UTC).
pub fn parse_timestamp(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    let num = |s: &str| -> Option<i64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
    };
    let (date, rest) = text.split_at(text.len().min(10));
    let mut d = date.split('-');
    let (y, m, day) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let rest = rest.strip_prefix(['T', ' ']).unwrap_or(rest);
    let (clock, zone) = match rest.find(['Z', '+', '-']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let mut c = clock.split(':');
    let h = c.next().filter(|s| !s.is_empty()).map_or(Some(0), num)?;
    let min = c.next().map_or(Some(0), num)?;
    let sec = c
        .next()
        .map_or(Some(0), |s| num(s.split('.').next().unwrap_or("0")))?;
    let offset_minutes = match zone {
        "" | "Z" => 0,
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let mut parts = z[1..].split(':');
            let oh = num(parts.next()?)?;
            let om = parts.next().map_or(Some(0), num)?;
            sign * (oh * 60 + om) as i32
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let (yy, mm) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * mm + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + h * 3600 + min * 60 + sec - i64::from(offset_minutes) * 60;
    Some(Timestamp {
        seconds,
        offset_minutes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_in_caps_forms() {
        let t = parse_timestamp("2021-12-07T15:46:13.700108+00:00").unwrap();
        assert_eq!(t.seconds, 1_638_891_973);
        let s = parse_timestamp("2019-08-29 08:36:37.552000+00:00").unwrap();
        assert_eq!(s.seconds, 1_567_067_797);
        let z = parse_timestamp("2019-08-29T10:36:37+02:00").unwrap();
        assert_eq!((z.seconds, z.offset_minutes), (1_567_067_797, 120));
        assert!(parse_timestamp("next week").is_none());
    }

    #[test]
    fn shapes_are_recognised() {
        let full = json!({"id": "abc", "metadata": {"x": 1}, "schema": {"name": "cms-analysis", "version": "0.0.1"},
            "access": {"deposit-admin": {"users": [{"email": "a@b", "profile": {}}], "roles": []}},
            "created_by": {"email": "a@b"}, "status": "draft"});
        let item = read_item("f", &full, false).unwrap();
        assert_eq!(item.id, "abc");
        assert!(!item.published);
        assert_eq!(item.owners.unwrap(), vec![json!({"email": "a@b"})]);
        assert!(matches!(item.schema, SchemaName::Exact(ref s) if s.name == "cms-analysis"));

        let legacy = json!({"collection": "CMSAnalysis", "schema": "https://localhost:5000/records/jsonschemas/CMSAnalysis/", "metadata": {"a": 1}});
        let item = read_item("f", &legacy, false).unwrap();
        assert!(item.published && item.id.starts_with("cap-cmsanalysis-"));
        assert_eq!(item.schema, SchemaName::Collection("CMSAnalysis".into()));
        assert_eq!(
            read_item("g", &legacy, false).unwrap().id,
            item.id,
            "stable ids"
        );

        let listed = json!({"access": [{"action": "deposit-read", "identity": "x@y", "type": "user"}],
            "id": "d", "metadata": null, "$schema": "https://analysispreservation.cern.ch/schemas/deposits/records/test-analysis-v0.0.1.json"});
        let item = read_item("f", &listed, false).unwrap();
        assert_eq!(
            item.access.unwrap()["deposit-read"]["users"],
            json!(["x@y"])
        );
        assert!(!is_record(&json!([{"$id": "1"}])));
        assert!(!is_record(&json!({"Example Analysis1": {}})));
    }

    #[test]
    fn people_map_through_access_toml_and_unknown_ones_stay() {
        let access = Access::parse("[people]\nalice = { email = \"alice@example.org\", cap_id = 7 }\nbob = \"bob@example.org\"\n").unwrap();
        let known = |e: Value, ids: bool| match map_person(&access, &e, ids) {
            Mapped::Known(v) => Some(v),
            Mapped::Unknown(..) => None,
        };
        assert_eq!(known(json!(7), false), Some(json!("alice")));
        assert_eq!(
            known(json!({"email": "ALICE@example.org"}), true),
            Some(json!(7))
        );
        assert_eq!(known(json!("bob@example.org"), false), Some(json!("bob")));
        assert_eq!(known(json!(99), true), None);
        assert!(
            matches!(map_person(&access, &json!("eve@x.org"), false), Mapped::Unknown(v, _) if v == "eve@x.org")
        );
    }
}
