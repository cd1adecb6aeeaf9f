//! A deposit rendered through its schema: sections, grouped fields, tables, labelled
//! allowed values and safe links. Pure functions from JSON to views.
//!
//! Links are only ever made to `http:`, `https:`, `mailto:` and `https://doi.org/`
//! targets, so a `javascript:` URL in a deposit stays plain text.

use serde_json::Value;

use crate::schema::{CompiledSchema, SchemaNode};

use super::model::{AllowedValue, Block, Inline, Section};

pub mod html;

/// Whether a value shows nothing (null, empty text, empty list or object, or an
/// object or list of such).
pub fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(items) => items.iter().all(is_empty),
        Value::Object(map) => map.values().all(is_empty),
        _ => false,
    }
}

/// Fields that are bookkeeping, not content: `$schema`, `_access`, `_deposit`, ...
pub fn is_system_key(key: &str) -> bool {
    key.starts_with('_') || key.starts_with('$')
}

fn title_of(node: Option<SchemaNode<'_>>, key: &str) -> String {
    node.and_then(|n| n.value().get("title").and_then(Value::as_str))
        .map(str::to_string)
        .unwrap_or_else(|| humanise(key))
}

fn description_of(node: Option<SchemaNode<'_>>) -> String {
    node.and_then(|n| n.value().get("description").and_then(Value::as_str))
        .unwrap_or("")
        .to_string()
}

/// `people_info` → `People info`: a readable stand-in for a field without a title.
pub fn humanise(key: &str) -> String {
    let text = key.replace(['_', '-'], " ");
    let mut chars = text.trim().chars();
    match chars.next() {
        Some(first) => first.to_uppercase().collect::<String>() + chars.as_str(),
        None => key.to_string(),
    }
}

/// The top-level sections of a deposit: one per non-empty property, in the schema's
/// order, then any properties the schema does not declare.
pub fn sections(deposit: &Value, schema: Option<&CompiledSchema>) -> Vec<Section> {
    let Value::Object(map) = deposit else {
        return Vec::new();
    };
    let root = schema.map(CompiledSchema::node);
    let mut order: Vec<&str> = root
        .map(|r| r.properties().into_iter().map(|(k, _)| k).collect())
        .unwrap_or_default();
    for key in map.keys() {
        if !order.contains(&key.as_str()) {
            order.push(key);
        }
    }
    let mut loose = Vec::new();
    let mut out = Vec::new();
    for key in order {
        let Some(value) = map.get(key) else { continue };
        if is_system_key(key) || is_empty(value) {
            continue;
        }
        let node = root.and_then(|r| r.child(key));
        if value.is_object() {
            out.push(Section {
                anchor: anchor(key),
                title: title_of(node, key),
                description: description_of(node),
                blocks: object_blocks(value, node),
                html: None,
            });
        } else {
            loose.push(block(key, value, node));
        }
    }
    if !loose.is_empty() {
        out.insert(
            0,
            Section {
                anchor: "general".into(),
                title: "General".into(),
                description: String::new(),
                blocks: loose,
                html: None,
            },
        );
    }
    out
}

fn anchor(key: &str) -> String {
    let slug = super::util::slugify(key);
    if slug.is_empty() {
        "section".into()
    } else {
        format!("s-{slug}")
    }
}

fn object_blocks(value: &Value, node: Option<SchemaNode<'_>>) -> Vec<Block> {
    let Value::Object(map) = value else {
        return Vec::new();
    };
    let mut order: Vec<&str> = node
        .map(|n| n.properties().into_iter().map(|(k, _)| k).collect())
        .unwrap_or_default();
    for key in map.keys() {
        if !order.contains(&key.as_str()) {
            order.push(key);
        }
    }
    order
        .into_iter()
        .filter_map(|key| {
            let value = map.get(key)?;
            if is_empty(value) || is_system_key(key) {
                return None;
            }
            Some(block(key, value, node.and_then(|n| n.child(key))))
        })
        .collect()
}

fn block(key: &str, value: &Value, node: Option<SchemaNode<'_>>) -> Block {
    let title = title_of(node, key);
    let description = description_of(node);
    match value {
        Value::Object(_) => Block::Group {
            title,
            description,
            blocks: object_blocks(value, node),
        },
        Value::Array(items) if items.iter().any(Value::is_object) => {
            let item_node = node.and_then(|n| n.child("0"));
            let mut columns: Vec<&str> = item_node
                .map(|n| n.properties().into_iter().map(|(k, _)| k).collect())
                .unwrap_or_default();
            for item in items {
                if let Value::Object(map) = item {
                    for k in map.keys() {
                        if !columns.contains(&k.as_str()) {
                            columns.push(k);
                        }
                    }
                }
            }
            // Columns that are empty in every row are left out, like empty fields.
            columns.retain(|c| {
                !is_system_key(c)
                    && items
                        .iter()
                        .any(|i| i.get(*c).is_some_and(|v| !is_empty(v)))
            });
            let rows = items
                .iter()
                .filter(|i| !is_empty(i))
                .map(|item| match item {
                    Value::Object(map) => columns
                        .iter()
                        .map(|c| {
                            let cell_node = item_node.and_then(|n| n.child(c));
                            map.get(*c)
                                .map(|v| cell(c, v, cell_node))
                                .unwrap_or_default()
                        })
                        .collect(),
                    other => vec![cell(key, other, item_node)],
                })
                .collect();
            Block::Table {
                title,
                description,
                columns: columns
                    .iter()
                    .map(|c| title_of(item_node.and_then(|n| n.child(c)), c))
                    .collect(),
                rows,
            }
        }
        Value::Array(items) => {
            let item_node = node.and_then(|n| n.child("0"));
            Block::List {
                title,
                description,
                items: items
                    .iter()
                    .filter(|i| !is_empty(i))
                    .flat_map(|i| cell(key, i, item_node))
                    .collect(),
            }
        }
        scalar => Block::Value {
            title,
            description,
            value: inline(key, scalar, node),
        },
    }
}

/// A table cell: one inline value, or several for lists and nested objects.
fn cell(key: &str, value: &Value, node: Option<SchemaNode<'_>>) -> Vec<Inline> {
    match value {
        Value::Array(items) => {
            let item_node = node.and_then(|n| n.child("0"));
            items
                .iter()
                .filter(|i| !is_empty(i))
                .flat_map(|i| cell(key, i, item_node))
                .collect()
        }
        Value::Object(map) => map
            .iter()
            .filter(|(k, v)| !is_empty(v) && !is_system_key(k))
            .flat_map(|(k, v)| {
                let child = node.and_then(|n| n.child(k));
                let label = title_of(child, k);
                cell(k, v, child).into_iter().map(move |mut i| {
                    i.text = format!("{label}: {}", i.text);
                    i
                })
            })
            .collect(),
        Value::Null => Vec::new(),
        scalar => vec![inline(key, scalar, node)],
    }
}

/// One scalar: labelled if it is an allowed value, linked if it is an address.
pub fn inline(key: &str, value: &Value, node: Option<SchemaNode<'_>>) -> Inline {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "yes".into(),
        Value::Bool(false) => "no".into(),
        other => other.to_string(),
    };
    let schema = node.map(|n| n.value());
    if let Some(label) = schema.and_then(|s| enum_label(s, value)) {
        let raw = (label != text).then(|| text.clone());
        return Inline {
            text: label,
            href: None,
            kind: "enum",
            raw,
        };
    }
    let plain = |kind| Inline {
        text: text.clone(),
        href: None,
        kind,
        raw: None,
    };
    let Value::String(s) = value else {
        return plain(if value.is_boolean() {
            "boolean"
        } else {
            "number"
        });
    };
    let format = schema
        .and_then(|s| s.get("format"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let key_lower = key.to_ascii_lowercase();
    let trimmed = s.trim();
    if let Some(href) = safe_url(trimmed) {
        return Inline {
            text,
            href: Some(href),
            kind: "url",
            raw: None,
        };
    }
    if (format == "email" || key_lower.contains("email") || key_lower == "mail")
        && looks_like_email(trimmed)
    {
        return Inline {
            href: Some(format!("mailto:{}", percent_encode_mail(trimmed))),
            text,
            kind: "email",
            raw: None,
        };
    }
    if let Some(doi) = doi(trimmed) {
        if key_lower.contains("doi") || trimmed.to_ascii_lowercase().starts_with("doi:") {
            return Inline {
                href: Some(format!(
                    "https://doi.org/{}",
                    super::util::encode_path(&doi)
                )),
                text,
                kind: "doi",
                raw: None,
            };
        }
    }
    plain("text")
}

/// The label of an allowed value: `enumNames` (CAP's forms), `x-enum-labels`, or a
/// `oneOf`/`anyOf` of `const` + `title`.
pub fn enum_label(schema: &Value, value: &Value) -> Option<String> {
    if let Some(Value::Array(options)) = schema.get("enum") {
        let i = options.iter().position(|o| o == value)?;
        for key in ["enumNames", "x-enum-labels", "x-enumNames"] {
            if let Some(label) = schema
                .get(key)
                .and_then(|l| l.get(i))
                .and_then(Value::as_str)
            {
                return Some(label.to_string());
            }
        }
        return Some(match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(options)) = schema.get(key) {
            for option in options {
                if option.get("const") == Some(value) {
                    let label = option.get("title").and_then(Value::as_str);
                    return Some(label.map(str::to_string).unwrap_or_else(|| match value {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    }));
                }
            }
        }
    }
    None
}

/// The allowed values of a schema node, with labels.
pub fn allowed_values(schema: &Value) -> Vec<AllowedValue> {
    let show = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if let Some(Value::Array(options)) = schema.get("enum") {
        return options
            .iter()
            .map(|o| AllowedValue {
                value: show(o),
                label: enum_label(schema, o).unwrap_or_else(|| show(o)),
            })
            .collect();
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(options)) = schema.get(key) {
            let consts: Vec<AllowedValue> = options
                .iter()
                .filter_map(|o| {
                    let value = o.get("const")?;
                    Some(AllowedValue {
                        value: show(value),
                        label: o
                            .get("title")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                            .unwrap_or_else(|| show(value)),
                    })
                })
                .collect();
            if !consts.is_empty() {
                return consts;
            }
        }
    }
    Vec::new()
}

/// An `http(s)` URL with a host and no characters that could break out of an
/// attribute; anything else is not linked.
pub fn safe_url(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))?;
    if rest.is_empty()
        || rest.starts_with('/')
        || text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '<' | '>' | '`'))
    {
        return None;
    }
    Some(text.to_string())
}

fn looks_like_email(text: &str) -> bool {
    let Some((user, host)) = text.split_once('@') else {
        return false;
    };
    !user.is_empty()
        && host.contains('.')
        && !host.starts_with('.')
        && !host.ends_with('.')
        && text
            .chars()
            .all(|c| c.is_alphanumeric() || "@._+-'".contains(c))
}

fn percent_encode_mail(text: &str) -> String {
    text.replace('\'', "%27").replace('+', "%2B")
}

/// `10.1234/abc` (or `doi:10.1234/abc`, or a doi.org URL's path): the DOI itself.
pub fn doi(text: &str) -> Option<String> {
    let text = text
        .strip_prefix("doi:")
        .or_else(|| text.strip_prefix("DOI:"))
        .unwrap_or(text)
        .trim();
    let (prefix, suffix) = text.split_once('/')?;
    let registrant = prefix.strip_prefix("10.")?;
    if registrant.is_empty()
        || !registrant.chars().all(|c| c.is_ascii_digit() || c == '.')
        || suffix.is_empty()
        || suffix.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return None;
    }
    Some(text.to_string())
}

/// A value shown on one line (diffs): scalars as text, structures as compact JSON.
pub fn one_line(value: Option<&Value>) -> String {
    match value {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_web_addresses_become_links() {
        assert!(safe_url("https://example.org/x").is_some());
        assert!(safe_url("javascript:alert(1)").is_none());
        assert!(safe_url("https://").is_none());
        assert!(safe_url("https://x.org/\"onmouseover=").is_none());
        assert!(safe_url("data:text/html,<script>").is_none());
    }

    #[test]
    fn dois_and_emails() {
        assert_eq!(doi("10.1234/abc.def").as_deref(), Some("10.1234/abc.def"));
        assert_eq!(doi("doi:10.5/x").as_deref(), Some("10.5/x"));
        assert!(doi("11.1234/x").is_none());
        assert!(doi("10.abc/x").is_none());
        let link = inline("email", &json!("a.b@example.org"), None);
        assert_eq!(link.href.as_deref(), Some("mailto:a.b@example.org"));
        let not = inline("email", &json!("a<b>@x.org"), None);
        assert!(not.href.is_none());
        let d = inline("doi", &json!("10.1000/xyz"), None);
        assert_eq!(d.href.as_deref(), Some("https://doi.org/10.1000/xyz"));
    }

    #[test]
    fn enums_show_their_labels() {
        let schema = json!({"enum": ["a", "b"], "enumNames": ["Alpha", "Beta"]});
        assert_eq!(enum_label(&schema, &json!("b")).as_deref(), Some("Beta"));
        let one_of = json!({"oneOf": [{"const": 1, "title": "One"}]});
        assert_eq!(enum_label(&one_of, &json!(1)).as_deref(), Some("One"));
        assert_eq!(allowed_values(&schema)[1].label, "Beta");
    }

    #[test]
    fn empty_fields_are_left_out_and_arrays_of_objects_are_tables() {
        let deposit = json!({
            "$schema": "x/1",
            "_access": {"deposit-read": {}},
            "general_title": "T",
            "info": {"empty": "", "none": null, "people": [{"name": "A", "x": ""}, {"name": "B"}], "tags": ["k"]}
        });
        let sections = sections(&deposit, None);
        assert_eq!(sections[0].title, "General");
        let info = &sections[1];
        assert_eq!(info.title, "Info");
        assert_eq!(info.blocks.len(), 2);
        match &info.blocks[0] {
            Block::Table { columns, rows, .. } => {
                assert_eq!(columns, &["Name"]);
                assert_eq!(rows.len(), 2);
            }
            other => panic!("{other:?}"),
        }
    }
}
