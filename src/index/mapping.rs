//! OpenSearch index templates built from the archive's schemas, for the indices that
//! [`super::export`] fills (`capsule-<schema>-v<version>`).
//!
//! A CAP wrapper that carries its own mapping (`record_mapping`, else
//! `deposit_mapping`, as CAP's Elasticsearch indices used) keeps it, settings
//! (analyzers) included: it was tuned by the people who wrote the form. Otherwise the
//! mapping is derived from the JSON Schema:
//!
//! | JSON Schema | OpenSearch |
//! | --- | --- |
//! | `string` with `format: date` or `date-time` | `date` |
//! | `string` with `enum`, or a member named `id`, `…_id` or `$schema` | `keyword` |
//! | other `string` | `text`, with a `keyword` subfield (`ignore_above: 256`) for sorting and aggregations |
//! | `integer` | `long` (JSON Schema integers are not limited to 32 bits) |
//! | `number` | `double` |
//! | `boolean` | `boolean` |
//! | `object` | `properties` |
//! | `array` | the mapping of its items (OpenSearch arrays are implicit) |
//!
//! Arrays of objects stay `object`, not `nested`: nested fields need nested queries,
//! which no CAP client sends. A member whose type the schema leaves open gets no
//! mapping and OpenSearch's dynamic mapping decides. Every template also maps
//! `_capsule`, the facts the export adds to each document.

use serde_json::{json, Map, Value};

use crate::archive::GitTree;
use crate::deposit::SchemaRef;
use crate::schema::{list_schemas, SchemaNode, SchemaRegistry};

use super::export::index_name;

/// How deep a schema is followed (recursive schemas end here).
const MAX_DEPTH: usize = 24;

/// Why a template could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error("schema {0}: not in this archive (schemas/<name>/<version>.json at the tip of the default branch)")]
    Missing(String),
    #[error("schema {0}: {1}")]
    Unreadable(String, String),
}

/// The index template of one schema version: `{index_patterns, template: {settings?,
/// mappings}, _meta}`.
pub fn index_template(tree: &GitTree<'_>, sref: &SchemaRef) -> Result<Value, MappingError> {
    let name = sref.to_string();
    let bytes = tree
        .read(&sref.path())?
        .ok_or_else(|| MappingError::Missing(name.clone()))?;
    let file = crate::json::from_bytes(&bytes)
        .map_err(|e| MappingError::Unreadable(name.clone(), e.to_string()))?;
    let (mut mappings, settings, source) = match cap_mapping(&file) {
        Some((mappings, settings, source)) => (mappings, settings, source),
        None => {
            let mut registry = SchemaRegistry::for_display();
            let compiled = registry
                .compile(tree, sref)
                .map_err(|e| MappingError::Unreadable(name.clone(), e.to_string()))?
                .ok_or_else(|| MappingError::Missing(name.clone()))?;
            let properties = object_properties(compiled.node(), 0);
            (json!({ "properties": properties }), None, "json-schema")
        }
    };
    if let Some(Value::Object(properties)) = mappings.get_mut("properties") {
        properties.insert("_capsule".into(), capsule_properties());
    }
    let mut template = Map::new();
    if let Some(settings) = settings {
        template.insert("settings".into(), settings);
    }
    template.insert("mappings".into(), mappings);
    Ok(json!({
        "index_patterns": [index_name(Some(&name))],
        "template": template,
        "_meta": {"schema": name, "mapping_from": source, "generated_by": "capsule"},
    }))
}

/// Templates for every version of every schema at the tip, by template (index) name.
pub fn all_templates(tree: &GitTree<'_>) -> Result<Value, MappingError> {
    let mut out = Map::new();
    let schemas = list_schemas(tree)
        .map_err(|e| MappingError::Unreadable("schemas/".into(), e.to_string()))?;
    for (name, versions) in schemas {
        for version in versions {
            let sref = SchemaRef {
                name: name.clone(),
                version,
            };
            out.insert(
                index_name(Some(&sref.to_string())),
                index_template(tree, &sref)?,
            );
        }
    }
    Ok(Value::Object(out))
}

/// The template of `schema` (`name/version`, or a name for its newest version), or of
/// every schema when `None`, from the tip of the default branch.
pub fn templates(repo: &git2::Repository, schema: Option<&str>) -> Result<Value, MappingError> {
    let tip = super::changes::drafts_tip(repo)?
        .and_then(|t| t.commit)
        .ok_or_else(|| MappingError::Missing(schema.unwrap_or("(any)").to_string()))?;
    let tree = GitTree::at_commit(repo, tip)?;
    let Some(schema) = schema else {
        return all_templates(&tree);
    };
    let sref = match crate::deposit::parse_schema_ref(schema) {
        Some(sref) => sref,
        None => {
            let versions = list_schemas(&tree)
                .map_err(|e| MappingError::Unreadable("schemas/".into(), e.to_string()))?
                .into_iter()
                .find(|(name, _)| name == schema)
                .map(|(_, versions)| versions)
                .unwrap_or_default();
            let version = versions
                .last()
                .cloned()
                .ok_or_else(|| MappingError::Missing(schema.to_string()))?;
            SchemaRef {
                name: schema.to_string(),
                version,
            }
        }
    };
    index_template(&tree, &sref)
}

/// A CAP wrapper's own mapping: `(mappings, settings, which)`, when it has one.
fn cap_mapping(file: &Value) -> Option<(Value, Option<Value>, &'static str)> {
    for (key, which) in [
        ("record_mapping", "cap-record-mapping"),
        ("deposit_mapping", "cap-deposit-mapping"),
    ] {
        let Some(Value::Object(given)) = file.get(key) else {
            continue;
        };
        let Some(Value::Object(mappings)) = given.get("mappings") else {
            continue;
        };
        // Elasticsearch 6 mappings sit under one document type; OpenSearch has none.
        let untyped = if mappings.contains_key("properties") || mappings.len() != 1 {
            Value::Object(mappings.clone())
        } else {
            match mappings.values().next() {
                Some(inner @ Value::Object(m)) if m.contains_key("properties") => inner.clone(),
                _ => Value::Object(mappings.clone()),
            }
        };
        let settings = given.get("settings").filter(|s| s.is_object()).cloned();
        return Some((untyped, settings, which));
    }
    None
}

fn object_properties(node: SchemaNode<'_>, depth: usize) -> Value {
    let mut out = Map::new();
    for (name, child) in node.properties() {
        if let Some(mapping) = field_mapping(name, child, depth + 1) {
            out.insert(name.to_string(), mapping);
        }
    }
    Value::Object(out)
}

/// The JSON types a schema allows, `null` left out.
fn types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect(),
        _ => {
            if schema.get("properties").is_some() {
                vec!["object"]
            } else if schema.get("items").is_some() {
                vec!["array"]
            } else if schema.get("enum").is_some() {
                vec!["string"]
            } else {
                Vec::new()
            }
        }
    }
}

fn field_mapping(name: &str, node: SchemaNode<'_>, depth: usize) -> Option<Value> {
    if depth > MAX_DEPTH {
        return None;
    }
    let schema = node.value();
    let kinds = types(schema);
    // One type, or a string among others (OpenSearch indexes numbers in text too).
    let kind = match kinds.as_slice() {
        [one] => *one,
        many if many.contains(&"string") => "string",
        _ => return None,
    };
    Some(match kind {
        "string" => {
            let format = schema.get("format").and_then(Value::as_str);
            let is_id = name == "id" || name.ends_with("_id") || name == "$schema";
            if matches!(format, Some("date" | "date-time")) {
                json!({"type": "date"})
            } else if schema.get("enum").is_some() || is_id {
                json!({"type": "keyword"})
            } else {
                text_with_keyword()
            }
        }
        "integer" => json!({"type": "long"}),
        "number" => json!({"type": "double"}),
        "boolean" => json!({"type": "boolean"}),
        "object" => {
            let properties = object_properties(node, depth);
            json!({"type": "object", "properties": properties})
        }
        "array" => return field_mapping(name, node.items()?, depth + 1),
        _ => return None,
    })
}

fn text_with_keyword() -> Value {
    json!({"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}})
}

/// The mapping of what the export adds to every document.
fn capsule_properties() -> Value {
    json!({
        "type": "object",
        "properties": {
            "id": {"type": "keyword"},
            "version": {"type": "integer"},
            "status": {"type": "keyword"},
            "schema": {"type": "keyword"},
            "experiment": {"type": "keyword"},
            "title": text_with_keyword(),
            "people": text_with_keyword(),
            "keywords": text_with_keyword(),
            "created": {"type": "date"},
            "updated": {"type": "date"},
            "commit": {"type": "keyword"},
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_mappings_lose_their_document_type() {
        let typed = json!({"deposit_mapping": {
            "settings": {"analysis": {}},
            "mappings": {"cms-v0.0.1": {"properties": {"a": {"type": "keyword"}}}}
        }});
        let (mappings, settings, which) = cap_mapping(&typed).unwrap();
        assert_eq!(mappings, json!({"properties": {"a": {"type": "keyword"}}}));
        assert_eq!(settings, Some(json!({"analysis": {}})));
        assert_eq!(which, "cap-deposit-mapping");
        // An empty record_mapping (as CAP's fixtures have) falls through.
        let both =
            json!({"record_mapping": {}, "deposit_mapping": {"mappings": {"properties": {}}}});
        assert_eq!(cap_mapping(&both).unwrap().2, "cap-deposit-mapping");
        assert!(cap_mapping(&json!({"deposit_mapping": {}})).is_none());
    }
}
