//! A schema with its `$ref`s resolved inline: what `capsule schema show --resolved`
//! prints, and what CAP's `/api/jsonschemas/<name>/<version>?resolve=1` (cap-client's
//! `analysis schema`) answered.
//!
//! A reference that leads back into a schema it is already inside (`stage-schema` →
//! `multistep-stage-schema` → `stage-schema`, `cases` ↔ `workflow-schema`) cannot be
//! inlined: the result would be infinite. CAP kept `*_no_circ_refs` copies of those
//! schemas for its forms for that reason. Here such a reference stays a `$ref`, named
//! `name/version#fragment`, with a `$comment` saying why, and is reported in
//! [`Inlined::cycles`].

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use super::{canonical_uri, CompiledSchema, LoadedSchema};
use crate::locate::escape_token;

/// Keywords whose values are data, not schemas: a `$ref` key inside them is a value.
const DATA_KEYWORDS: &[&str] = &["enum", "const", "default", "examples", "example"];

/// A reference left as `$ref` because inlining it would never end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cycle {
    /// Where the `$ref` stays, as a JSON pointer into the inlined schema.
    pub pointer: String,
    /// What it names: `name/version` and a fragment.
    pub target: String,
}

/// The schema body with its references resolved.
#[derive(Debug, Clone)]
pub struct Inlined {
    pub value: Value,
    pub cycles: Vec<Cycle>,
}

struct Inliner<'a> {
    documents: HashMap<String, &'a Arc<LoadedSchema>>,
    /// References being expanded, outermost first: `uri#fragment`.
    stack: Vec<String>,
    cycles: Vec<Cycle>,
}

impl CompiledSchema {
    /// The root schema's body (normalised as capsule reads it) with every `$ref`
    /// replaced by the schema it names. Keys written beside a `$ref` that the named
    /// schema lacks (a `title`, a `description`) are kept.
    pub fn inlined(&self) -> Inlined {
        // Documents by the URI of their exact version as well as by the URI they were
        // reached through (`name/latest` names the newest version).
        let mut documents: HashMap<String, &Arc<LoadedSchema>> = HashMap::new();
        for (uri, doc) in &self.documents {
            documents.insert(uri.clone(), doc);
            documents.insert(canonical_uri(&doc.sref), doc);
        }
        let mut inliner = Inliner {
            documents,
            stack: vec![format!("{}#", canonical_uri(&self.root.sref))],
            cycles: Vec::new(),
        };
        let value = inliner.expand(&self.root.body, &self.root, String::new());
        Inlined {
            value,
            cycles: inliner.cycles,
        }
    }
}

impl<'a> Inliner<'a> {
    fn expand(&mut self, value: &Value, doc: &'a Arc<LoadedSchema>, pointer: String) -> Value {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(reference)) = map.get("$ref") {
                    if let Some(found) = self.follow(reference, map, doc, &pointer) {
                        return found;
                    }
                }
                let mut out = Map::new();
                for (key, sub) in map {
                    let here = format!("{pointer}/{}", escape_token(key));
                    let sub = if DATA_KEYWORDS.contains(&key.as_str()) || key.starts_with("x-") {
                        sub.clone()
                    } else {
                        self.expand(sub, doc, here)
                    };
                    out.insert(key.clone(), sub);
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.expand(item, doc, format!("{pointer}/{i}")))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// The inlined target of `reference`, or `None` to leave the object as it is (a
    /// reference to nothing the compiled schema holds).
    fn follow(
        &mut self,
        reference: &str,
        map: &Map<String, Value>,
        doc: &'a Arc<LoadedSchema>,
        pointer: &str,
    ) -> Option<Value> {
        let (uri, fragment) = reference.split_once('#').unwrap_or((reference, ""));
        let target_doc: &'a Arc<LoadedSchema> = if uri.is_empty() {
            doc
        } else {
            self.documents.get(uri).copied()?
        };
        let target = if fragment.is_empty() {
            &target_doc.body
        } else {
            target_doc.body.pointer(fragment)?
        };
        let key = format!("{}#{fragment}", canonical_uri(&target_doc.sref));
        let named = if fragment.is_empty() {
            target_doc.sref.to_string()
        } else {
            format!("{}#{fragment}", target_doc.sref)
        };
        if self.stack.contains(&key) {
            self.cycles.push(Cycle {
                pointer: pointer.to_string(),
                target: named.clone(),
            });
            let mut kept = map.clone();
            kept.insert("$ref".into(), Value::String(named.clone()));
            kept.insert(
                "$comment".into(),
                Value::String(format!(
                    "capsule: not inlined: {named} contains this place, so inlining it would never end"
                )),
            );
            return Some(Value::Object(kept));
        }
        self.stack.push(key);
        let mut found = self.expand(target, target_doc, pointer.to_string());
        self.stack.pop();
        if let Value::Object(out) = &mut found {
            for (k, v) in map {
                if k != "$ref" && !out.contains_key(k) {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
        Some(found)
    }
}
