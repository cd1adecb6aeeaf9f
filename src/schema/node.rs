//! Walking a compiled schema: `$ref`s followed, the subschema of each field found.
//!
//! Readers (field titles in problems, the site, `capsule new`, CAP's `x-` keywords)
//! walk schemas through these; nothing here validates.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::{CompiledSchema, LoadedSchema};

/// Follows `$ref`s from `schema` (inside `doc`) to the schema they point at.
pub(super) fn resolve<'a>(
    schema: &'a Value,
    documents: &'a HashMap<String, Arc<LoadedSchema>>,
    doc: &'a Value,
) -> (&'a Value, &'a Value) {
    let mut schema = schema;
    let mut doc = doc;
    for _ in 0..32 {
        let Some(reference) = schema.get("$ref").and_then(Value::as_str) else {
            break;
        };
        let (target, fragment) = reference.split_once('#').unwrap_or((reference, ""));
        if !target.is_empty() {
            match documents.get(target) {
                Some(d) => doc = &d.body,
                None => break,
            }
        }
        let found = if fragment.is_empty() {
            Some(doc)
        } else {
            doc.pointer(fragment)
        };
        match found {
            Some(s) => schema = s,
            None => break,
        }
    }
    (schema, doc)
}

/// The subschema that governs member or element `token` of values of `schema`.
pub(super) fn child_schema<'a>(
    schema: &'a Value,
    token: &str,
    doc: &'a Value,
    documents: &'a HashMap<String, Arc<LoadedSchema>>,
) -> Option<(&'a Value, &'a Value)> {
    let (schema, doc) = resolve(schema, documents, doc);
    if let Some(sub) = schema.get("properties").and_then(|p| p.get(token)) {
        return Some(resolve(sub, documents, doc));
    }
    if let Ok(i) = token.parse::<usize>() {
        match schema.get("items") {
            Some(Value::Array(list)) => {
                if let Some(sub) = list.get(i) {
                    return Some(resolve(sub, documents, doc));
                }
            }
            Some(sub @ Value::Object(_)) => return Some(resolve(sub, documents, doc)),
            _ => {}
        }
    }
    // Conditional parts of a form (allOf, oneOf, dependencies) also define fields.
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(list)) = schema.get(key) {
            for sub in list {
                if let Some(found) = child_schema(sub, token, doc, documents) {
                    return Some(found);
                }
            }
        }
    }
    if let Some(Value::Object(deps)) = schema.get("dependencies") {
        for sub in deps.values().filter(|v| v.is_object()) {
            if let Some(found) = child_schema(sub, token, doc, documents) {
                return Some(found);
            }
        }
    }
    if let Some(sub @ Value::Object(_)) = schema.get("additionalProperties") {
        return Some(resolve(sub, documents, doc));
    }
    None
}

/// A place in a compiled schema with its `$ref`s followed: what readers (the site, the
/// field documentation) walk to find titles, descriptions and allowed values.
#[derive(Clone, Copy)]
pub struct SchemaNode<'a> {
    schema: &'a Value,
    doc: &'a Value,
    documents: &'a HashMap<String, Arc<LoadedSchema>>,
}

impl<'a> SchemaNode<'a> {
    /// The (resolved) subschema itself.
    pub fn value(&self) -> &'a Value {
        self.schema
    }

    /// The subschema that governs member or element `token` of this node's values.
    pub fn child(&self, token: &str) -> Option<SchemaNode<'a>> {
        child_schema(self.schema, token, self.doc, self.documents).map(|(schema, doc)| SchemaNode {
            schema,
            doc,
            documents: self.documents,
        })
    }

    /// The declared properties in the author's order, including those of `allOf` parts.
    pub fn properties(&self) -> Vec<(&'a str, SchemaNode<'a>)> {
        let mut out: Vec<(&'a str, SchemaNode<'a>)> = Vec::new();
        let mut stack = vec![(self.schema, self.doc)];
        let mut guard = 0;
        while let Some((schema, doc)) = stack.pop() {
            guard += 1;
            if guard > 64 {
                break;
            }
            let (schema, doc) = resolve(schema, self.documents, doc);
            if let Some(Value::Object(props)) = schema.get("properties") {
                for (name, sub) in props {
                    if !out.iter().any(|(n, _)| *n == name.as_str()) {
                        let (schema, doc) = resolve(sub, self.documents, doc);
                        out.push((
                            name.as_str(),
                            SchemaNode {
                                schema,
                                doc,
                                documents: self.documents,
                            },
                        ));
                    }
                }
            }
            if let Some(Value::Array(parts)) = schema.get("allOf") {
                for part in parts.iter().rev() {
                    stack.push((part, doc));
                }
            }
        }
        out
    }

    /// The schema of the elements, for an array with one `items` schema.
    pub fn items(&self) -> Option<SchemaNode<'a>> {
        match self.schema.get("items") {
            Some(sub @ Value::Object(_)) => {
                let (schema, doc) = resolve(sub, self.documents, self.doc);
                Some(SchemaNode {
                    schema,
                    doc,
                    documents: self.documents,
                })
            }
            _ => None,
        }
    }

    /// The names listed in this node's `required`.
    pub fn required(&self) -> Vec<&'a str> {
        self.schema
            .get("required")
            .and_then(Value::as_array)
            .map(|list| list.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }
}

impl CompiledSchema {
    /// The root of the schema, for walking it.
    pub fn node(&self) -> SchemaNode<'_> {
        let (schema, doc) = resolve(&self.root.body, &self.documents, &self.root.body);
        SchemaNode {
            schema,
            doc,
            documents: &self.documents,
        }
    }
}
