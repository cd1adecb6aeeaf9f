//! Which rules judge a schema's deposits: the draft the schema declares, or CAP's engine.
//!
//! CAP validated every deposit with one `Draft7Validator` extended with its `x-`
//! keywords, whatever `$schema` a schema declared, dropped `required` for drafts and
//! passed no format checker. Its schema files were written against that behaviour: the
//! CMS statistics questionnaire declares draft-04 but offers its choices as `oneOf` of
//! `const` branches, which only work when `const` (draft-06) is applied. So a schema that
//! comes from CAP gets CAP's engine, and a deposit CAP accepted is accepted here.
//!
//! This module decides the engine and says, as schema-level notes, where the declared
//! draft and the engine that runs disagree. It never validates deposits.

use serde::Serialize;
use serde_json::{Map, Value};

use super::{SchemaForm, LIST_OF_SUBSCHEMAS, MAP_OF_SUBSCHEMAS, ONE_SUBSCHEMA};
use crate::locate::escape_token;

/// Hosts CAP schemas live under: the current one, and the pre-2019 spelling that old
/// schema `id`s carry.
const CAP_HOSTS: &[&str] = &[
    "analysispreservation.cern.ch",
    "analysis-preservation.cern.ch",
];

/// Whether `text` is an address of CAP's.
pub fn is_cap_url(text: &str) -> bool {
    CAP_HOSTS.iter().any(|host| text.contains(host))
}

/// The rules a schema's deposits are judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    /// The draft the schema declares (draft-07 when it declares none), formats enforced.
    Standard,
    /// CAP's: Draft 7 keywords whatever `$schema` says, `required` only when
    /// publishing, `format` a warning unless `[validation] cap_strict`, CAP's `x-`
    /// validators.
    Cap,
}

/// A JSON Schema draft, as far as the keywords it knows differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Draft {
    D3,
    D4,
    D6,
    D7,
    D2019,
    D2020,
}

impl Draft {
    /// The draft a `$schema` value names, if it names one.
    pub fn from_meta(meta: &str) -> Option<Draft> {
        let known = [
            ("draft-03", Draft::D3),
            ("draft-04", Draft::D4),
            ("draft-06", Draft::D6),
            ("draft-07", Draft::D7),
            ("2019-09", Draft::D2019),
            ("2020-12", Draft::D2020),
        ];
        known
            .iter()
            .find(|(tag, _)| meta.contains("json-schema.org") && meta.contains(tag))
            .map(|(_, d)| *d)
    }

    pub fn name(self) -> &'static str {
        match self {
            Draft::D3 => "draft-03",
            Draft::D4 => "draft-04",
            Draft::D6 => "draft-06",
            Draft::D7 => "draft-07",
            Draft::D2019 => "2019-09",
            Draft::D2020 => "2020-12",
        }
    }
}

/// The draft that introduced each validation keyword that some drafts lack, and the
/// draft that retired it (exclusive), if any.
const KEYWORD_DRAFTS: &[(&str, Draft, Option<Draft>)] = &[
    ("const", Draft::D6, None),
    ("contains", Draft::D6, None),
    ("propertyNames", Draft::D6, None),
    ("if", Draft::D7, None),
    ("then", Draft::D7, None),
    ("else", Draft::D7, None),
    ("dependentRequired", Draft::D2019, None),
    ("dependentSchemas", Draft::D2019, None),
    ("unevaluatedProperties", Draft::D2019, None),
    ("unevaluatedItems", Draft::D2019, None),
    ("minContains", Draft::D2019, None),
    ("maxContains", Draft::D2019, None),
    ("prefixItems", Draft::D2020, None),
    ("dependencies", Draft::D3, Some(Draft::D2019)),
];

fn known_in(keyword: &str, draft: Draft) -> Option<bool> {
    KEYWORD_DRAFTS
        .iter()
        .find(|(k, _, _)| *k == keyword)
        .map(|(_, since, until)| draft >= *since && until.is_none_or(|u| draft < u))
}

/// The engine a schema gets, and why (for `capsule schema check`).
pub fn choose(form: SchemaForm, body: &Map<String, Value>, cap_refs: bool) -> (Engine, String) {
    let named = ["$schema", "$id", "id"].iter().find_map(|key| {
        body.get(*key)
            .and_then(Value::as_str)
            .filter(|v| is_cap_url(v))
            .map(|v| format!("its `{key}` is CAP's address {v}"))
    });
    let reason = match form {
        SchemaForm::CapWrapper => Some("it is a CAP schema file (`deposit_schema`)".to_string()),
        SchemaForm::LegacyCapWrapper => {
            Some("it is a pre-2019 CAP schema file (`jsonschema`)".to_string())
        }
        SchemaForm::Plain => named.or_else(|| {
            cap_refs.then(|| "it refers to other schemas by CAP's addresses".to_string())
        }),
    };
    match reason {
        Some(reason) => (Engine::Cap, reason),
        None => (
            Engine::Standard,
            "it is a plain JSON Schema with no CAP address".to_string(),
        ),
    }
}

/// One sentence on what an engine does, for people.
pub fn describe(engine: Engine, declared: Draft, strict: bool) -> String {
    match engine {
        Engine::Standard => format!(
            "capsule's engine: {} as declared, `required` only when publishing, formats enforced",
            declared.name()
        ),
        Engine::Cap => format!(
            "CAP's engine: Draft 7 keywords (the file declares {}), `required` only when publishing, formats {}, CAP's x- validators",
            declared.name(),
            if strict { "enforced ([validation] cap_strict)" } else { "reported as warnings" }
        ),
    }
}

/// Calls `f` on every subschema of `value` (itself included) with its pointer.
pub(super) fn walk(value: &Value, pointer: &str, f: &mut dyn FnMut(&Map<String, Value>, &str)) {
    let Value::Object(schema) = value else { return };
    f(schema, pointer);
    for (key, sub) in schema {
        let at = format!("{pointer}/{}", escape_token(key));
        if ONE_SUBSCHEMA.contains(&key.as_str()) {
            walk(sub, &at, f);
        } else if key == "items" {
            match sub {
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        walk(item, &format!("{at}/{i}"), f);
                    }
                }
                other => walk(other, &at, f),
            }
        } else if MAP_OF_SUBSCHEMAS.contains(&key.as_str()) {
            if let Value::Object(map) = sub {
                for (name, s) in map {
                    walk(s, &format!("{at}/{}", escape_token(name)), f);
                }
            }
        } else if LIST_OF_SUBSCHEMAS.contains(&key.as_str()) {
            if let Value::Array(list) = sub {
                for (i, s) in list.iter().enumerate() {
                    walk(s, &format!("{at}/{i}"), f);
                }
            }
        }
    }
}

/// What a schema-level note says about one place: (pointer, message).
pub type Note = (String, String);

/// Where the declared draft and the engine that runs disagree, and what CAP's `x-`
/// keywords capsule can only partly check. `pointer` is where the body sits in the file.
pub fn notes(engine: Engine, declared: Draft, body: &Value, pointer: &str) -> Vec<Note> {
    let runs = match engine {
        Engine::Cap => Draft::D7,
        Engine::Standard => declared,
    };
    let mut out = Vec::new();
    walk(body, pointer, &mut |schema, at| {
        for key in schema.keys() {
            let here = format!("{at}/{}", escape_token(key));
            if let (Some(in_declared), Some(in_run)) =
                (known_in(key, declared), known_in(key, runs))
            {
                let message = match (engine, in_declared, in_run) {
                    (Engine::Cap, false, true) => format!(
                        "`{key}` is not a keyword of {}, which this schema declares, but CAP applied it (Draft 7) and so does capsule for this schema; declare draft-07 in `$schema` to say what is meant",
                        declared.name()
                    ),
                    (Engine::Cap, true, false) => format!(
                        "`{key}` is a keyword of {}, which this schema declares, but CAP's engine (Draft 7) ignores it, and so does capsule for this schema",
                        declared.name()
                    ),
                    (Engine::Standard, false, _) => format!(
                        "`{key}` is ignored: this schema declares {}, which does not have it; declare a draft that does in `$schema` if it should apply",
                        declared.name()
                    ),
                    _ => continue,
                };
                out.push((here, message));
                continue;
            }
            if let Some(note) = x_keyword_note(key) {
                out.push((here, note.to_string()));
            }
        }
    });
    // One note per kind: the questionnaire has a `const` in each of eleven choices.
    let mut kept: Vec<(Note, usize)> = Vec::new();
    for (pointer, message) in out {
        match kept.iter_mut().find(|((_, m), _)| *m == message) {
            Some((_, n)) => *n += 1,
            None => kept.push(((pointer, message), 1)),
        }
    }
    kept.into_iter()
        .map(|((pointer, message), n)| match n {
            1 => (pointer, message),
            n => (
                pointer,
                format!("{message} (in {n} places; this is the first)"),
            ),
        })
        .collect()
}

/// What capsule does with a CAP `x-` keyword it cannot fully honour.
fn x_keyword_note(key: &str) -> Option<&'static str> {
    Some(match key {
        "x-validate-cadi-id" => "`x-validate-cadi-id`: CAP asked CMS's CADI service whether the entry exists; capsule has no network, so only the field's `pattern` is checked",
        "x-validate-das-path" => "`x-validate-das-path`: capsule checks offline that the value has the form /PRIMARY/PROCESSED/TIER; whether DAS knows the dataset needs CMS's DAS service and is not checked",
        "x-validate-cms-trigger" => "`x-validate-cms-trigger`: capsule checks offline that trigger names have the form of HLT paths; whether the dataset and year have those triggers needs CMS's trigger database and is not checked",
        "x-cap-permission" => "`x-cap-permission`: CAP's per-field permissions are not enforced by capsule; who may change a deposit is decided by `_access` (docs/access.md)",
        _ => return None,
    })
}

/// Whether any subschema uses `keyword`.
pub fn uses(body: &Value, keyword: &str) -> bool {
    let mut found = false;
    walk(body, "", &mut |schema, _| {
        found |= schema.contains_key(keyword)
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cap_files_and_addresses_choose_caps_engine() {
        let plain = json!({"type": "object"});
        let plain = plain.as_object().unwrap();
        assert_eq!(choose(SchemaForm::Plain, plain, false).0, Engine::Standard);
        assert_eq!(choose(SchemaForm::CapWrapper, plain, false).0, Engine::Cap);
        assert_eq!(choose(SchemaForm::Plain, plain, true).0, Engine::Cap);
        let named = json!({"id": "https://analysis-preservation.cern.ch/records/jsonschemas/x/"});
        let (engine, why) = choose(SchemaForm::Plain, named.as_object().unwrap(), false);
        assert_eq!(engine, Engine::Cap);
        assert!(why.contains("`id`"), "{why}");
    }

    #[test]
    fn notes_name_keywords_the_declared_draft_ignores() {
        let body = json!({
            "properties": {"wg": {"oneOf": [{"const": "A"}, {"const": "B"}]},
                           "p": {"x-validate-das-path": {}}}
        });
        let cap = notes(Engine::Cap, Draft::D4, &body, "/deposit_schema");
        assert_eq!(cap.len(), 2, "{cap:?}");
        assert_eq!(cap[0].0, "/deposit_schema/properties/wg/oneOf/0/const");
        assert!(cap[0].1.contains("CAP applied it"));
        assert!(cap[0].1.ends_with("(in 2 places; this is the first)"));
        let plain = notes(Engine::Standard, Draft::D4, &body, "");
        assert!(
            plain
                .iter()
                .any(|(p, m)| p == "/properties/wg/oneOf/0/const" && m.contains("is ignored")),
            "{plain:?}"
        );
        assert!(notes(Engine::Standard, Draft::D7, &body, "")
            .iter()
            .all(|(_, m)| !m.contains("const")));
    }
}
