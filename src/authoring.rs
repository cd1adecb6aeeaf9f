//! Writing deposits and reviews in a clone: what `capsule new` and `capsule review`
//! put on disk before the author commits and pushes.
//!
//! Everything here is a pure function of its inputs (schema, user, time, existing
//! ids), so the server's rules and these helpers cannot drift apart: the hook will
//! accept what this module writes for a user with the right to write it.

use serde_json::{json, Map, Value};

use crate::access::Access;
use crate::deposit::{check_id, SchemaRef};
use crate::schema::{CompiledSchema, LoadedSchema};

pub mod grants;
pub mod source;

/// Whether a list the schema describes at `node` holds numbers (CAP's user and role
/// ids), judged from its items' `type` (CAP's one-element-list `items` included).
fn holds_numbers(node: Option<crate::schema::SchemaNode<'_>>) -> bool {
    node.and_then(|n| n.child("0")).is_some_and(|item| {
        let ty = item.value().get("type");
        let is_number = |t: &Value| matches!(t.as_str(), Some("integer" | "number"));
        match ty {
            Some(Value::Array(list)) => {
                list.iter().any(is_number) && !list.iter().any(|t| t == "string")
            }
            Some(t) => is_number(t),
            None => false,
        }
    })
}

/// The schema's description of `_access.<level>.<list>` (`users` or `roles`).
fn access_list<'a>(
    schema: &'a CompiledSchema,
    level: &str,
    list: &str,
) -> Option<crate::schema::SchemaNode<'a>> {
    schema
        .node()
        .child("_access")
        .and_then(|a| a.child(level))
        .and_then(|l| l.child(list))
}

const LEVELS: [&str; 3] = ["deposit-admin", "deposit-update", "deposit-read"];

/// Whether a schema wants people in `_deposit.owners` and `_access.*.users` as CAP user
/// ids (integers, as CAP's `deposit` and `access` schemas type them) rather than names.
pub fn wants_cap_ids(schema: &CompiledSchema) -> bool {
    let owners = schema
        .node()
        .child("_deposit")
        .and_then(|d| d.child("owners"));
    holds_numbers(owners)
        || LEVELS
            .iter()
            .any(|level| holds_numbers(access_list(schema, level, "users")))
}

/// Whether a schema wants groups in `_access.*.roles` as CAP role ids (numbers), as
/// CAP's own `access` schema types them, rather than e-group names.
pub fn wants_cap_role_ids(schema: &CompiledSchema) -> bool {
    LEVELS
        .iter()
        .any(|level| holds_numbers(access_list(schema, level, "roles")))
}

/// How `user` is written into a deposit's owners and `users` lists: the user name, or
/// their CAP id where the schema wants ids (`wants_ids`, from [`wants_cap_ids`]). When
/// the schema wants an id and access.toml gives none, the error names the line to write.
pub fn person_entry(
    access: &Access,
    user: &str,
    wants_ids: bool,
    schema: &SchemaRef,
) -> Result<Value, String> {
    match (wants_ids, access.cap_id(user)) {
        (false, _) => Ok(Value::String(user.to_string())),
        (true, Some(id)) => Ok(Value::from(id)),
        (true, None) => Err(format!(
            "schema {schema} wants CAP user ids (numbers) in _deposit.owners and _access, and access.toml gives {user} none: write their line in [people] as `{user} = {{ email = \"{}\", cap_id = <CAP user id> }}`, then run this again",
            access.email(user).unwrap_or("...")
        )),
    }
}

/// A new deposit for `schema`: `$schema` pinned to its exact version, the author
/// (`person`: a user name, or a CAP id where the schema wants ids) as owner with every
/// right, `readers` (the archive's `default_readers`: groups, or `public`) allowed to
/// read it, and the schema's defaults filled in.
pub fn new_deposit(schema: &LoadedSchema, person: &Value, readers: &[String]) -> Value {
    let user = person;
    let mut deposit = Map::new();
    deposit.insert(
        "$schema".into(),
        Value::String(format!("{}/{}", schema.sref.name, schema.sref.version)),
    );
    if let Value::Object(defaults) = defaults_of(&schema.body) {
        for (key, value) in defaults {
            if !key.starts_with('$') && !key.starts_with('_') {
                deposit.insert(key, value);
            }
        }
    }
    deposit.insert("_deposit".into(), json!({ "owners": [user] }));
    deposit.insert(
        "_access".into(),
        json!({
            "deposit-read": { "users": [user], "roles": readers },
            "deposit-update": { "users": [user], "roles": [] },
            "deposit-admin": { "users": [user], "roles": [] },
        }),
    );
    Value::Object(deposit)
}

/// The value a schema's `default`s describe: a property's own `default`, or for an
/// object the defaults of its properties. `Null` when nothing has a default.
fn defaults_of(schema: &Value) -> Value {
    if let Some(default) = schema.get("default") {
        return default.clone();
    }
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Value::Null;
    };
    let mut out = Map::new();
    for (key, property) in properties {
        let value = defaults_of(property);
        if !value.is_null() {
            out.insert(key.clone(), value);
        }
    }
    if out.is_empty() {
        Value::Null
    } else {
        Value::Object(out)
    }
}

/// Mints an id for a new deposit.
///
/// With CAP's `config.pid.format` (such as `"CMS-{$year}-"`), the placeholders
/// `{$year}`, `{$month}` and `{$day}` are filled in and the next free three-digit
/// number is appended (`CMS-2026-001`). Without it, a CAP-style random id
/// `CAP.<EXPERIMENT>.XXXX.XXXX`. `taken` says whether an id is in use; `seed` feeds the
/// random part (time and process id in practice, fixed in tests).
pub fn mint_id(
    config: &Value,
    experiment: Option<&str>,
    date: (i32, u32, u32),
    seed: u64,
    taken: &dyn Fn(&str) -> bool,
) -> Result<String, String> {
    let (year, month, day) = date;
    if let Some(format) = config.pointer("/pid/format").and_then(Value::as_str) {
        let prefix = format
            .replace("{$year}", &year.to_string())
            .replace("{$month}", &format!("{month:02}"))
            .replace("{$day}", &format!("{day:02}"));
        for n in 1..100_000u32 {
            let id = format!("{prefix}{n:03}");
            check_id(&id).map_err(|e| {
                format!("config.pid.format `{format}` does not make a valid deposit id: {e}")
            })?;
            if !taken(&id) {
                return Ok(id);
            }
        }
        return Err(format!("every id of the form {prefix}NNN is taken"));
    }
    let experiment: String = experiment
        .unwrap_or("CAPSULE")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_uppercase();
    let experiment = if experiment.is_empty() {
        "CAPSULE".to_string()
    } else {
        experiment
    };
    // No 0/O or 1/I: ids get read aloud and typed from paper.
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    let mut state = seed | 1;
    for _ in 0..1000 {
        let mut part = String::new();
        for i in 0..8 {
            // xorshift64: enough to spread ids; uniqueness is checked below.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if i == 4 {
                part.push('.');
            }
            part.push(ALPHABET[(state % ALPHABET.len() as u64) as usize] as char);
        }
        let id = format!("CAP.{experiment}.{part}");
        if !taken(&id) {
            return Ok(id);
        }
    }
    Err("could not find a free id; pass one with --id".into())
}

/// Today's date (UTC) as year, month, day.
pub fn today() -> (i32, u32, u32) {
    let text = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let year = text[0..4].parse().unwrap_or(1970);
    let month = text[5..7].parse().unwrap_or(1);
    let day = text[8..10].parse().unwrap_or(1);
    (year, month, day)
}

/// Now, RFC 3339 in UTC.
pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Sets the value at a JSON pointer, creating missing objects on the way. An array
/// index must exist, or be the array's length or `-` (append).
pub fn set_pointer(root: &mut Value, pointer: &str, new: Value) -> Result<(), String> {
    set_pointer_with(root, pointer, new, &|_| None)
}

/// [`set_pointer`], asking `is_array` (given the tokens of a missing field) whether the
/// schema says it is a list. A missing field the schema does not describe becomes a
/// list when the next token is `-` (append), an object otherwise: `/keywords/-` makes
/// `"keywords": [..]`, never `{"-": ..}`.
pub fn set_pointer_with(
    root: &mut Value,
    pointer: &str,
    new: Value,
    is_array: &dyn Fn(&[String]) -> Option<bool>,
) -> Result<(), String> {
    if pointer.is_empty() {
        if !new.is_object() {
            return Err("the whole deposit must be a JSON object".into());
        }
        *root = new;
        return Ok(());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!(
            "`{pointer}` is not a JSON pointer: it must start with `/`, as in /basic_info/status"
        ));
    };
    let tokens: Vec<String> = rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect();
    let mut node = root;
    for (i, token) in tokens.iter().enumerate() {
        let last = i + 1 == tokens.len();
        let here = format!("/{}", rest.split('/').take(i).collect::<Vec<_>>().join("/"));
        node = match node {
            Value::Object(map) => {
                if last {
                    if token == "-" && !map.contains_key("-") {
                        return Err(format!("`-` appends to a list, but the value at {here} is an object: give a field name"));
                    }
                    map.insert(token.clone(), new);
                    return Ok(());
                }
                let next = &tokens[i + 1];
                map.entry(token.clone()).or_insert_with(|| {
                    let list = is_array(&tokens[..=i]).unwrap_or(next == "-");
                    if list {
                        Value::Array(Vec::new())
                    } else {
                        Value::Object(Map::new())
                    }
                })
            }
            Value::Array(items) => {
                let len = items.len();
                let index = if token == "-" {
                    len
                } else {
                    token
                        .parse::<usize>()
                        .map_err(|_| format!("`{token}` is not an index of the array at {here}"))?
                };
                if index > len {
                    return Err(format!("index {index} is past the end of the array at {here} ({len} items): use {len} or - to append"));
                }
                if index == len {
                    items.push(if last {
                        new.clone()
                    } else if is_array(&tokens[..=i]).unwrap_or(tokens[i + 1] == "-") {
                        Value::Array(Vec::new())
                    } else {
                        Value::Object(Map::new())
                    });
                    if last {
                        return Ok(());
                    }
                } else if last {
                    items[index] = new;
                    return Ok(());
                }
                &mut items[index]
            }
            other => {
                return Err(format!(
                    "cannot set {pointer}: the value at {here} is {}, not an object or array",
                    crate::json::kind(other)
                ))
            }
        };
    }
    Ok(())
}

/// Removes the value at a JSON pointer and returns it: a member of an object, or an
/// element of an array (the elements after it move up, as in JSON Patch's `remove`).
/// The whole deposit and its `$schema` cannot be removed.
pub fn remove_pointer(root: &mut Value, pointer: &str) -> Result<Value, String> {
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(if pointer.is_empty() {
            "the whole deposit cannot be removed: give the pointer of a field, as in /basic_info/status".into()
        } else {
            format!("`{pointer}` is not a JSON pointer: it must start with `/`, as in /basic_info/status")
        });
    };
    if pointer == "/$schema" {
        return Err("$schema names the schema the deposit is checked against and cannot be removed: to move to another schema version, set it (`capsule set ID /$schema NAME/VERSION`)".into());
    }
    let (parent, last) = match rest.rsplit_once('/') {
        Some((parent, last)) => (format!("/{parent}"), last),
        None => (String::new(), rest),
    };
    let token = last.replace("~1", "/").replace("~0", "~");
    let missing = || format!("there is no field at {pointer}: nothing to remove");
    match root.pointer_mut(&parent).ok_or_else(missing)? {
        Value::Object(map) => map.shift_remove(&token).ok_or_else(missing),
        Value::Array(items) => {
            let index = token
                .parse::<usize>()
                .map_err(|_| format!("`{token}` is not an index of the array at {parent}"))?;
            if index >= items.len() {
                return Err(format!(
                    "index {index} is past the end of the array at {parent} ({} items): nothing to remove",
                    items.len()
                ));
            }
            Ok(items.remove(index))
        }
        _ => Err(missing()),
    }
}

/// Writes a deposit atomically: a temporary file beside it, flushed, then renamed, so a
/// crash leaves the old file or the new one, never half of one.
pub fn write_json_atomically(path: &std::path::Path, value: &Value) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    let mut text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    text.push('\n');
    file.write_all(text.as_bytes())?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deposit::SchemaRef;

    #[test]
    fn set_pointer_creates_objects_and_appends() {
        let mut d = json!({"a": {"list": [1]}});
        set_pointer(&mut d, "/a/b/c", json!("x")).unwrap();
        set_pointer(&mut d, "/a/list/-", json!(2)).unwrap();
        set_pointer(&mut d, "/a/list/0", json!(0)).unwrap();
        set_pointer(&mut d, "/a/x~1y", json!(true)).unwrap();
        assert_eq!(
            d,
            json!({"a": {"list": [0, 2], "b": {"c": "x"}, "x/y": true}})
        );
        assert!(set_pointer(&mut d, "/a/list/5", json!(1))
            .unwrap_err()
            .contains("past the end"));
        assert!(set_pointer(&mut d, "/a/b/c/d", json!(1))
            .unwrap_err()
            .contains("is a string"));
        assert!(set_pointer(&mut d, "a", json!(1))
            .unwrap_err()
            .contains("must start with `/`"));
    }

    #[test]
    fn appending_to_a_missing_field_makes_a_list() {
        let mut d = json!({"basic_info": {}});
        set_pointer(&mut d, "/basic_info/keywords/-", json!("Higgs")).unwrap();
        set_pointer(&mut d, "/basic_info/keywords/-", json!("ZZ")).unwrap();
        assert_eq!(d, json!({"basic_info": {"keywords": ["Higgs", "ZZ"]}}));
        // The schema decides when it knows: here `/people/0/...` is a list of objects.
        let schema_says = |tokens: &[String]| Some(tokens.last().unwrap() == "people");
        set_pointer_with(&mut d, "/people/0/name", json!("Ann"), &schema_says).unwrap();
        assert_eq!(d["people"], json!([{"name": "Ann"}]));
        assert!(set_pointer(&mut d, "/basic_info/-", json!(1))
            .unwrap_err()
            .contains("is an object"));
    }

    #[test]
    fn remove_pointer_removes_members_and_elements() {
        let mut d = json!({"$schema": "a/1.0.0", "a": {"list": [1, 2, 3], "x/y": true}, "b": 1});
        assert_eq!(remove_pointer(&mut d, "/a/list/1").unwrap(), json!(2));
        assert_eq!(remove_pointer(&mut d, "/a/x~1y").unwrap(), json!(true));
        assert_eq!(remove_pointer(&mut d, "/b").unwrap(), json!(1));
        assert_eq!(d, json!({"$schema": "a/1.0.0", "a": {"list": [1, 3]}}));
        assert!(remove_pointer(&mut d, "/$schema")
            .unwrap_err()
            .contains("cannot be removed"));
        assert!(remove_pointer(&mut d, "")
            .unwrap_err()
            .contains("whole deposit"));
        assert!(remove_pointer(&mut d, "/a/nope")
            .unwrap_err()
            .contains("no field at /a/nope"));
        assert!(remove_pointer(&mut d, "/a/list/2")
            .unwrap_err()
            .contains("past the end"));
        assert!(remove_pointer(&mut d, "/c/d")
            .unwrap_err()
            .contains("no field"));
    }

    #[test]
    fn pid_format_numbers_ids() {
        let config = json!({"pid": {"format": "CMS-{$year}-"}});
        let taken = |id: &str| id == "CMS-2026-001";
        let id = mint_id(&config, Some("CMS"), (2026, 11, 22), 7, &taken).unwrap();
        assert_eq!(id, "CMS-2026-002");
        let bad = json!({"pid": {"format": "CMS/{$year}/"}});
        assert!(mint_id(&bad, None, (2026, 1, 1), 7, &|_| false).is_err());
    }

    #[test]
    fn random_ids_look_like_caps() {
        let id = mint_id(&Value::Null, Some("cms"), (2026, 1, 1), 42, &|_| false).unwrap();
        assert!(id.starts_with("CAP.CMS."), "{id}");
        assert_eq!(id.len(), "CAP.CMS.XXXX.XXXX".len());
        check_id(&id).unwrap();
        let other = mint_id(&Value::Null, Some("cms"), (2026, 1, 1), 42, &|i| i == id).unwrap();
        assert_ne!(id, other);
    }

    #[test]
    fn new_deposits_carry_owner_access_and_defaults() {
        let sref = SchemaRef {
            name: "a".into(),
            version: "1.0.0".into(),
        };
        let schema = LoadedSchema::parse(
            &sref,
            br#"{"type": "object", "properties": {
                "basic_info": {"type": "object", "properties": {
                    "status": {"type": "string", "default": "0 - planned"},
                    "name": {"type": "string"}}},
                "other": {"type": "string"}}}"#,
        )
        .unwrap();
        let deposit = new_deposit(&schema, &json!("alice"), &[]);
        assert_eq!(deposit["$schema"], "a/1.0.0");
        assert_eq!(deposit["basic_info"], json!({"status": "0 - planned"}));
        assert!(deposit.get("other").is_none());
        assert_eq!(deposit["_deposit"]["owners"], json!(["alice"]));
        assert_eq!(
            deposit["_access"]["deposit-admin"]["users"],
            json!(["alice"])
        );
    }
}
