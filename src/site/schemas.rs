//! Schema documentation pages: every field of a schema version with its title, type,
//! description, whether it is required and its allowed values.

use serde_json::Value;

use crate::archive::GitTree;
use crate::deposit::SchemaRef;
use crate::schema::{list_schemas, CompiledSchema, SchemaNode, SchemaRegistry};

use super::fields::allowed_values;
use super::model::{SchemaFieldView, SchemaLink, SchemaView};

/// Every schema version at the build revision that compiles, documented.
pub fn schema_views(tree: &GitTree<'_>) -> Vec<(SchemaView, std::sync::Arc<CompiledSchema>)> {
    let mut registry = SchemaRegistry::new();
    let mut out = Vec::new();
    let Ok(list) = list_schemas(tree) else {
        return out;
    };
    for (name, versions) in list {
        let links: Vec<SchemaLink> = versions
            .iter()
            .map(|v| SchemaLink {
                name: name.clone(),
                version: v.clone(),
                title: String::new(),
                path: format!("schemas/{name}/{v}/index.html"),
            })
            .collect();
        for version in &versions {
            let sref = SchemaRef {
                name: name.clone(),
                version: version.clone(),
            };
            let Ok(Some(compiled)) = registry.compile(tree, &sref) else {
                continue;
            };
            let root = &compiled.root;
            let mut fields = Vec::new();
            walk(compiled.node(), "", 0, &mut fields, &mut 0);
            let view = SchemaView {
                name: name.clone(),
                version: version.clone(),
                title: root.title.clone().unwrap_or_else(|| name.clone()),
                description: root
                    .body
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                experiment: root.experiment.clone().unwrap_or_default(),
                reviewable: root.reviewable(),
                fields,
                versions: links.clone(),
                api_path: format!("api/schemas/{name}/{version}/index.json"),
                records_path: None,
                records: 0,
            };
            out.push((view, compiled));
        }
    }
    out
}

fn type_of(schema: &Value) -> String {
    match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" or "),
        _ if schema.get("properties").is_some() => "object".into(),
        _ if schema.get("items").is_some() => "array".into(),
        _ if schema.get("enum").is_some() => "value".into(),
        _ => String::new(),
    }
}

/// Depth-first over properties and array items, with a bound on size for recursive
/// schemas.
fn walk(
    node: SchemaNode<'_>,
    path: &str,
    depth: usize,
    out: &mut Vec<SchemaFieldView>,
    budget: &mut usize,
) {
    if depth > 12 {
        return;
    }
    let required = node.required();
    for (name, child) in node.properties() {
        *budget += 1;
        if *budget > 2000 {
            return;
        }
        let schema = child.value();
        let field_path = if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}.{name}")
        };
        let mut kind = type_of(schema);
        let mut allowed = allowed_values(schema);
        let items = child.items();
        if kind == "array" {
            if let Some(items) = items {
                let inner = type_of(items.value());
                if !inner.is_empty() {
                    kind = format!("array of {inner}");
                }
                if allowed.is_empty() {
                    allowed = allowed_values(items.value());
                }
            }
        }
        out.push(SchemaFieldView {
            path: field_path.clone(),
            depth,
            title: schema
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            kind,
            description: schema
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            required: required.contains(&name),
            allowed,
            format: schema
                .get("format")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        });
        walk(child, &field_path, depth + 1, out, budget);
        if let Some(items) = items {
            walk(items, &format!("{field_path}[]"), depth + 1, out, budget);
        }
    }
}
