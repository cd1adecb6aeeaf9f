//! Unit tests of loading and normalising schema files.
use super::*;
use serde_json::json;

fn sref(name: &str) -> SchemaRef {
    SchemaRef {
        name: name.into(),
        version: "1.0.0".into(),
    }
}

fn load(value: Value) -> Result<LoadedSchema, Vec<Problem>> {
    LoadedSchema::parse(
        &sref("t"),
        serde_json::to_string_pretty(&value).unwrap().as_bytes(),
    )
}

#[test]
fn legacy_required_moves_to_the_parent() {
    let s = load(json!({
        "$schema": "http://json-schema.org/draft-04/schema#",
        "properties": {
            "a": {"type": "object", "required": true, "properties": {
                "b": {"type": "string", "required": "true"},
                "c": {"type": "string", "required": false}
            }},
            "required": {"type": "string"}
        }
    }))
    .unwrap();
    assert_eq!(s.body["required"], json!(["a"]));
    assert_eq!(s.body["properties"]["a"]["required"], json!(["b"]));
    assert!(s.body["properties"]["a"]["properties"]["c"]
        .get("required")
        .is_none());
    // A property that is *named* `required` is a field, not a keyword.
    assert_eq!(s.body["properties"]["required"], json!({"type": "string"}));
}

#[test]
fn empty_enum_and_property_dependencies_are_repaired() {
    let s = load(json!({
        "$schema": "http://json-schema.org/draft-04/schema#",
        "properties": {
            "a": {"type": "string", "enum": []},
            "b": {"type": "string", "dependencies": ["a"]}
        }
    }))
    .unwrap();
    assert!(s.body["properties"]["a"].get("enum").is_none());
    assert_eq!(s.body["dependencies"], json!({"b": ["a"]}));
}

#[test]
fn refs_to_other_schemas_become_canonical() {
    let s = load(json!({
        "properties": {
            "x": {"$ref": "https://analysispreservation.cern.ch/schemas/deposits/records/deposit-v0.0.1.json"},
            "y": {"$ref": "other/2.0.0#/definitions/z"},
            "z": {"$ref": "#/definitions/local"}
        },
        "definitions": {"local": {"type": "string"}}
    }))
    .unwrap();
    assert_eq!(
        s.body["properties"]["x"]["$ref"],
        json!("https://capsule.invalid/schemas/deposit/0.0.1.json")
    );
    assert_eq!(
        s.body["properties"]["y"]["$ref"],
        json!("https://capsule.invalid/schemas/other/2.0.0.json#/definitions/z")
    );
    assert_eq!(
        s.body["properties"]["z"]["$ref"],
        json!("#/definitions/local")
    );
    assert_eq!(s.refs.len(), 2);
}

#[test]
fn unresolvable_refs_are_problems_with_pointers() {
    let problems =
        load(json!({"properties": {"x": {"$ref": "somewhere/else/entirely"}}})).unwrap_err();
    assert_eq!(problems[0].pointer, "/properties/x/$ref");
    assert!(problems[0].message.contains("cannot resolve"));
}

#[test]
fn drafts_drop_required_except_where_it_chooses() {
    let body = json!({
        "required": ["a"],
        "properties": {"a": {"required": ["b"]}},
        "oneOf": [{"required": ["x"]}, {"required": ["y"]}]
    });
    let stripped = without_required(&body);
    assert!(stripped.get("required").is_none());
    assert!(stripped["properties"]["a"].get("required").is_none());
    assert_eq!(stripped["oneOf"][0]["required"], json!(["x"]));
}

#[test]
fn config_is_separated_from_the_body() {
    let s = load(json!({"type": "object", "config": {"reviewable": true}})).unwrap();
    assert!(s.reviewable());
    assert!(s.body.get("config").is_none());
    assert_eq!(s.body["$schema"], json!(DRAFT7));
}
