//! What a record's listings and facets are made of, read from its deposit: title,
//! people, keywords, and the folder name of a facet value.

use serde_json::Value;

use super::fields;
use super::util::{sha256_hex, slugify};

/// The record's title: `general_title`, else `title`, else the first text field whose
/// name ends in `title` or `name` in the first section.
pub fn deposit_title(deposit: &Value) -> Option<String> {
    let text = |v: &Value| {
        v.as_str()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    for key in ["general_title", "title"] {
        if let Some(t) = deposit.get(key).and_then(text) {
            return Some(t);
        }
    }
    let map = deposit.as_object()?;
    for (key, value) in map {
        if fields::is_system_key(key) {
            continue;
        }
        if let Value::Object(inner) = value {
            for (k, v) in inner {
                if k.ends_with("title") || k.ends_with("analysis_name") {
                    if let Some(t) = text(v) {
                        return Some(t);
                    }
                }
            }
        }
    }
    None
}

/// People named in the deposit: every object with a `name` and an `email`, `orcid`
/// or `affiliation` (CAP's people_info, authors, contacts), in document order.
pub fn people(deposit: &Value) -> Vec<String> {
    fn walk(value: &Value, out: &mut Vec<String>, top: bool) {
        match value {
            Value::Object(map) => {
                if let Some(name) = map.get("name").and_then(Value::as_str) {
                    if ["email", "orcid", "affiliation", "role"]
                        .iter()
                        .any(|k| map.contains_key(*k))
                    {
                        let name = name.trim();
                        if !name.is_empty() && !out.iter().any(|n| n == name) {
                            out.push(name.to_string());
                        }
                    }
                }
                for (k, v) in map {
                    if !(top && fields::is_system_key(k)) {
                        walk(v, out, false);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out, false)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(deposit, &mut out, true);
    out
}

/// Keywords: the strings of every `keywords` list in the deposit.
pub fn keywords(deposit: &Value) -> Vec<String> {
    fn walk(value: &Value, out: &mut Vec<String>, top: bool) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    if top && fields::is_system_key(k) {
                        continue;
                    }
                    if k == "keywords" {
                        if let Value::Array(items) = v {
                            for item in items.iter().filter_map(Value::as_str) {
                                let item = item.trim();
                                if !item.is_empty() && !out.iter().any(|o| o == item) {
                                    out.push(item.to_string());
                                }
                            }
                            continue;
                        }
                    }
                    walk(v, out, false);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out, false)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(deposit, &mut out, true);
    out
}

/// A facet's folder name: texts with the same slug are one facet value. Text without
/// any Latin letter or digit gets a name from its digest.
pub fn facet_slug(text: &str) -> String {
    let slug = slugify(text);
    if slug.is_empty() {
        format!("x-{}", &sha256_hex(text.as_bytes())[..10])
    } else {
        slug
    }
}
