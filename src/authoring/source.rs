//! Where `capsule new --from` takes a new deposit's metadata from: a JSON file (a
//! deposit, CAP's API response or cap-client's `analysis get` output, cap-client's
//! `metadata get` output) or another deposit of the archive.
//!
//! A copy is a new analysis: it keeps the fields people wrote and none of the system
//! fields (`_deposit`, `_access`, `_files`, `_buckets`, `_fetched_from`, CAP's
//! `control_number`, ...), which the new deposit gets afresh with its author as owner.

use serde_json::{Map, Value};

/// Metadata to start a deposit from.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    /// The fields a copy keeps (see [`copied_fields`]).
    pub fields: Map<String, Value>,
    /// The schema the source names (`$schema` of the metadata, or of a CAP response
    /// around it), as written.
    pub schema: Option<String>,
}

/// Keys of a CAP API response (deposit or record, any serializer) that sit beside
/// `metadata`; one of them next to a `metadata` object marks the response shape.
const RESPONSE_KEYS: &[&str] = &[
    "id", "pid", "links", "created", "updated", "revision", "recid", "files", "access",
];

/// Reads the metadata out of a parsed JSON file. `Err` says what the file holds
/// instead, and which shapes are accepted.
pub fn metadata_of(value: &Value) -> Result<Metadata, String> {
    let Value::Object(top) = value else {
        return Err(format!(
            "it holds {}, not a JSON object: give a deposit's metadata (an object with its fields), or CAP's response for a deposit (an object with `metadata`)",
            crate::json::kind(value)
        ));
    };
    let is_response = !top.contains_key("$schema")
        && top.get("metadata").is_some_and(Value::is_object)
        && RESPONSE_KEYS.iter().any(|k| top.contains_key(*k));
    let (metadata, outer) = if is_response {
        (top["metadata"].as_object().expect("checked"), Some(top))
    } else {
        (top, None)
    };
    let schema = metadata
        .get("$schema")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| outer.and_then(response_schema));
    Ok(Metadata {
        fields: copied_fields(metadata),
        schema,
    })
}

/// The schema a CAP response names outside its metadata: `$schema` or `schema` as a
/// URL, or `schema` as `{name, version}` (the `application/json` serializer).
fn response_schema(response: &Map<String, Value>) -> Option<String> {
    for key in ["$schema", "schema"] {
        match response.get(key) {
            Some(Value::String(url)) => return Some(url.clone()),
            Some(Value::Object(s)) => {
                if let (Some(name), Some(version)) = (
                    s.get("name").and_then(Value::as_str),
                    s.get("version").and_then(Value::as_str),
                ) {
                    return Some(format!("{name}/{version}"));
                }
            }
            _ => {}
        }
    }
    None
}

/// The fields of a deposit that a copy keeps: all but the system fields, whose names
/// start with `_` or `$`, and CAP's `control_number` (the published record's id).
pub fn copied_fields(metadata: &Map<String, Value>) -> Map<String, Value> {
    metadata
        .iter()
        .filter(|(key, _)| {
            !key.starts_with('_') && !key.starts_with('$') && key.as_str() != "control_number"
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Lays `fields` over a new deposit (its defaults, owner and access): a copied field
/// replaces the default of the same name.
pub fn overlay(deposit: &mut Value, fields: Map<String, Value>) {
    if let Value::Object(map) = deposit {
        for (key, value) in fields {
            map.insert(key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_deposit_keeps_its_fields_and_drops_system_fields() {
        let m = metadata_of(&json!({
            "$schema": "analysis/1.0.0", "general_title": "Z", "basic_info": {"a": 1},
            "_deposit": {"owners": ["x"]}, "_access": {}, "_files": [], "control_number": "7"
        }))
        .unwrap();
        assert_eq!(m.schema.as_deref(), Some("analysis/1.0.0"));
        assert_eq!(
            Value::Object(m.fields),
            json!({"general_title": "Z", "basic_info": {"a": 1}})
        );
    }

    #[test]
    fn a_cap_response_gives_its_metadata_and_schema() {
        let m = metadata_of(&json!({
            "id": "6adc", "links": {}, "metadata": {"basic_info": {"a": 1}, "_deposit": {}},
            "schema": {"name": "alice-analysis", "version": "0.0.1"}
        }))
        .unwrap();
        assert_eq!(m.schema.as_deref(), Some("alice-analysis/0.0.1"));
        assert_eq!(Value::Object(m.fields), json!({"basic_info": {"a": 1}}));
        let m = metadata_of(&json!({
            "pid": "6adc", "metadata": {"$schema": "https://analysispreservation.cern.ch/schemas/deposits/records/cms-analysis-v0.0.1.json", "x": 1}
        }))
        .unwrap();
        assert!(m.schema.unwrap().ends_with("cms-analysis-v0.0.1.json"));
        // A deposit with a field called `metadata` stays a deposit.
        let m = metadata_of(&json!({"$schema": "a/1.0.0", "metadata": {"x": 1}, "id": 3})).unwrap();
        assert_eq!(
            Value::Object(m.fields),
            json!({"metadata": {"x": 1}, "id": 3})
        );
        assert!(metadata_of(&json!([1])).unwrap_err().contains("a list"));
    }
}
