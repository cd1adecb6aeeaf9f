//! What the search index reads out of a deposit's JSON: its title, people, keywords and
//! experiment, and every string with the place it sits.
//!
//! Pure functions over `serde_json::Value`; nothing here knows about git or tantivy. The
//! rules are deliberately simple, so that a reader of docs/search.md can predict them:
//!
//! - **title**: the first non-empty string among `general_title`, `title`,
//!   `basic_info.title`, `basic_info.analysis_title`, `analysis_title`, `full_title`,
//!   `basic_info.analysis_name`, `analysis_name`, `short_title` (CAP's forms use all of
//!   these; `general_title` is CAP's own system field).
//! - **people**: every object (at any depth) that has an e-mail key (`email`, `e-mail`,
//!   `mail`) contributes its e-mail and its name (`name`, `names`, `full_name`,
//!   `fullname`, `display_name`); objects without an e-mail count when they sit under a
//!   key that names people (`people`, `person`, `author`, `contact`, `member`,
//!   `convener`, `reviewer`, ...). `_deposit.owners` are people too. A bare `name` is
//!   not enough: datasets and workflows have names.
//! - **keywords**: the strings of every array (or the single string) under a key named
//!   `keywords` or `keyword`, at any depth.
//! - **experiment**: `experiment` or `basic_info.experiment` when it is a non-empty
//!   string other than CAP's placeholder `None`. (The schema's own `experiment` wins over
//!   this; see [`schema_experiment`].)

use serde_json::{Map, Value};

use crate::locate::escape_token;

/// The fields of a deposit that the index keeps apart from its text.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DepositFields {
    pub title: String,
    pub people: Vec<String>,
    pub keywords: Vec<String>,
    pub experiment: Option<String>,
}

const TITLE_PATHS: &[&[&str]] = &[
    &["general_title"],
    &["title"],
    &["basic_info", "title"],
    &["basic_info", "analysis_title"],
    &["analysis_title"],
    &["full_title"],
    &["basic_info", "analysis_name"],
    &["analysis_name"],
    &["short_title"],
];

const EMAIL_KEYS: &[&str] = &["email", "e-mail", "e_mail", "mail"];
const NAME_KEYS: &[&str] = &["name", "names", "full_name", "fullname", "display_name"];
/// Keys whose values hold people, even without e-mail addresses.
const PEOPLE_KEYS: &[&str] = &[
    "people",
    "person",
    "author",
    "contact",
    "member",
    "convener",
    "reviewer",
    "analyst",
    "proponent",
];

/// Reads title, people, keywords and experiment out of a deposit.
pub fn extract(deposit: &Value) -> DepositFields {
    let title = TITLE_PATHS
        .iter()
        .find_map(|path| non_empty_str(lookup(deposit, path)))
        .unwrap_or_default()
        .to_string();
    let experiment = [&["experiment"][..], &["basic_info", "experiment"]]
        .iter()
        .find_map(|path| non_empty_str(lookup(deposit, path)))
        .filter(|e| *e != "None")
        .map(str::to_string);

    let mut fields = DepositFields {
        title,
        experiment,
        ..DepositFields::default()
    };
    if let Some(Value::Array(owners)) = lookup(deposit, &["_deposit", "owners"]) {
        for owner in owners {
            if let Some(owner) = non_empty_str(Some(owner)) {
                push_unique(&mut fields.people, owner);
            }
        }
    }
    walk(deposit, false, &mut fields);
    fields
}

/// The experiment a schema file declares: `experiment` of a CAP wrapper, or
/// `config.experiment` of a plain schema (the same places `schema::LoadedSchema` reads).
pub fn schema_experiment(schema: &Value) -> Option<String> {
    non_empty_str(schema.get("experiment"))
        .or_else(|| non_empty_str(lookup(schema, &["config", "experiment"])))
        .filter(|e| *e != "None")
        .map(str::to_string)
}

fn lookup<'v>(value: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

fn non_empty_str(value: Option<&Value>) -> Option<&str> {
    value
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn push_unique(list: &mut Vec<String>, value: &str) {
    if !list.iter().any(|v| v == value) {
        list.push(value.to_string());
    }
}

fn key_is(key: &str, names: &[&str]) -> bool {
    names.iter().any(|n| key.eq_ignore_ascii_case(n))
}

fn names_people(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    PEOPLE_KEYS.iter().any(|k| key.contains(k))
}

fn walk(value: &Value, under_people: bool, out: &mut DepositFields) {
    match value {
        Value::Object(map) => {
            person(map, under_people, out);
            for (key, child) in map {
                if key_is(key, &["keywords", "keyword"]) {
                    keywords(child, out);
                }
                walk(child, under_people || names_people(key), out);
            }
        }
        Value::Array(items) => {
            for item in items {
                walk(item, under_people, out);
            }
        }
        _ => {}
    }
}

fn person(map: &Map<String, Value>, under_people: bool, out: &mut DepositFields) {
    let find = |keys: &[&str]| {
        map.iter()
            .find(|(k, _)| key_is(k, keys))
            .and_then(|(_, v)| non_empty_str(Some(v)))
    };
    let email = find(EMAIL_KEYS);
    if email.is_none() && !under_people {
        return;
    }
    if let Some(name) = find(NAME_KEYS) {
        push_unique(&mut out.people, name);
    }
    if let Some(email) = email {
        push_unique(&mut out.people, email);
    }
}

fn keywords(value: &Value, out: &mut DepositFields) {
    match value {
        Value::Array(items) => {
            for item in items {
                if let Some(k) = non_empty_str(Some(item)) {
                    push_unique(&mut out.keywords, k);
                }
            }
        }
        other => {
            if let Some(k) = non_empty_str(Some(other)) {
                push_unique(&mut out.keywords, k);
            }
        }
    }
}

/// Bookkeeping members, not content: `$schema`, `_access`, `_deposit`, `_files`, and
/// anything else whose name starts with `_` or `$` (the site uses the same rule).
/// Full-text search and snippets leave them out: a hit should be explained by what
/// its authors wrote, not by `_access › deposit-read › roles`. They stay queryable by
/// path (`_deposit.status:draft`), and owners are people.
pub fn is_system_key(key: &str) -> bool {
    key.starts_with('_') || key.starts_with('$')
}

/// Every string of a deposit outside its system members, in document order (what the
/// full-text field holds).
pub fn strings(deposit: &Value) -> Vec<&str> {
    fn go<'v>(value: &'v Value, out: &mut Vec<&'v str>) {
        match value {
            Value::String(s) => out.push(s),
            Value::Array(items) => items.iter().for_each(|v| go(v, out)),
            Value::Object(map) => map
                .iter()
                .filter(|(k, _)| !is_system_key(k))
                .for_each(|(_, v)| go(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    go(deposit, &mut out);
    out
}

/// A string of a deposit and where it sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<'v> {
    /// JSON pointer, e.g. `/basic_info/keywords/0`.
    pub pointer: String,
    /// The member names without array positions, joined with dots, e.g.
    /// `basic_info.keywords`: how `field:value` queries name a field.
    pub path: String,
    pub text: &'v str,
}

/// Every string of a deposit outside its system members, with its pointer and dotted
/// path.
pub fn located_strings(deposit: &Value) -> Vec<Located<'_>> {
    fn go<'v>(
        value: &'v Value,
        pointer: &mut String,
        path: &mut String,
        out: &mut Vec<Located<'v>>,
    ) {
        match value {
            Value::String(s) => out.push(Located {
                pointer: pointer.clone(),
                path: path.clone(),
                text: s,
            }),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let mark = pointer.len();
                    pointer.push('/');
                    pointer.push_str(&i.to_string());
                    go(item, pointer, path, out);
                    pointer.truncate(mark);
                }
            }
            Value::Object(map) => {
                for (key, item) in map.iter().filter(|(k, _)| !is_system_key(k)) {
                    let (mark, path_mark) = (pointer.len(), path.len());
                    pointer.push('/');
                    pointer.push_str(&escape_token(key));
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                    go(item, pointer, path, out);
                    pointer.truncate(mark);
                    path.truncate(path_mark);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    go(deposit, &mut String::new(), &mut String::new(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn demo_analysis_fields() {
        let deposit: Value =
            serde_json::from_str(include_str!("../../demo/deposits/higgs-4l/deposit.json"))
                .unwrap();
        let f = extract(&deposit);
        assert!(f.title.starts_with("Measurement of Higgs boson production"));
        assert_eq!(
            f.people,
            [
                "alice",
                "Marta Kowalczyk",
                "marta.kowalczyk@example.org",
                "Tomás Ferreira",
                "tomas.ferreira@example.org",
                "Ingrid Solberg",
                "ingrid.solberg@example.org"
            ]
        );
        assert_eq!(f.keywords[0], "Higgs boson");
        assert_eq!(f.keywords.len(), 5);
        // Dataset and workflow names are not people.
        assert!(!f.people.iter().any(|p| p.contains("MINIAOD")));
        assert_eq!(f.experiment, None);
    }

    #[test]
    fn title_falls_back_through_cap_fields() {
        let cases = [
            (
                json!({"general_title": "G", "basic_info": {"analysis_name": "A"}}),
                "G",
            ),
            (
                json!({"general_title": "  ", "basic_info": {"analysis_name": "A"}}),
                "A",
            ),
            (
                json!({"basic_info": {"title": "Legacy ATLAS"}}),
                "Legacy ATLAS",
            ),
            (
                json!({"basic_info": {"analysis_title": "T", "analysis_name": "N"}}),
                "T",
            ),
            (json!({"other": 1}), ""),
        ];
        for (deposit, title) in cases {
            assert_eq!(extract(&deposit).title, title, "{deposit}");
        }
    }

    #[test]
    fn cap_people_keywords_and_experiment() {
        // The shape of CAP's legacy CMS record: one object with `names` and `email`.
        let deposit = json!({
            "experiment": "CMS",
            "basic_info": {
                "people_info": {"names": "John Doe", "email": "john.doe@cern.ch"},
                "keywords": "dimuon"
            },
            "authors": [{"name": "Ann Author"}],
            "workflows": [{"name": "RECAST"}],
            "analysis": {"keywords": ["jets", "", "jets", 3, "MET"]},
            "_deposit": {"owners": ["cms_user@cern.ch"]}
        });
        let f = extract(&deposit);
        assert_eq!(
            f.people,
            [
                "cms_user@cern.ch",
                "John Doe",
                "john.doe@cern.ch",
                "Ann Author"
            ]
        );
        assert_eq!(f.keywords, ["dimuon", "jets", "MET"]);
        assert_eq!(f.experiment.as_deref(), Some("CMS"));
        assert_eq!(extract(&json!({"experiment": "None"})).experiment, None);
    }

    #[test]
    fn schema_experiment_from_wrapper_or_config() {
        assert_eq!(
            schema_experiment(&json!({"experiment": "ATLAS", "deposit_schema": {}})).as_deref(),
            Some("ATLAS")
        );
        assert_eq!(
            schema_experiment(&json!({"config": {"experiment": "CMS"}})).as_deref(),
            Some("CMS")
        );
        assert_eq!(schema_experiment(&json!({"type": "object"})), None);
    }

    #[test]
    fn strings_carry_pointer_and_path_and_leave_system_fields_out() {
        let deposit = json!({
            "$schema": "analysis/1.0.0",
            "a/b": {"k": ["x", {"y": "z", "_hidden": "h"}]},
            "n": 1,
            "t": "top",
            "_access": {"deposit-read": {"roles": ["cms-members"]}},
            "_deposit": {"owners": ["alice"]}
        });
        let located = located_strings(&deposit);
        let view: Vec<(&str, &str, &str)> = located
            .iter()
            .map(|l| (l.pointer.as_str(), l.path.as_str(), l.text))
            .collect();
        assert_eq!(
            view,
            [
                ("/a~1b/k/0", "a/b.k", "x"),
                ("/a~1b/k/1/y", "a/b.k.y", "z"),
                ("/t", "t", "top")
            ]
        );
        assert_eq!(strings(&deposit), ["x", "z", "top"]);
    }
}
