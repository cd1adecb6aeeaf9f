//! Every CAP fixture schema loads, or is refused with file, position and reason.

mod common;

use common::*;
use serde_json::Value;
use tempfile::TempDir;

#[test]
fn the_cap_fixture_schemas_are_added_in_one_run_except_the_two_that_cannot() {
    let Some(fixtures) = cap_fixtures() else {
        return;
    };
    let fixtures = fixtures.display();
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("archive");
    run_ok(capsule(tmp.path()).arg("init").arg(&dir));

    let mut files: Vec<_> = std::fs::read_dir(format!("{fixtures}/schemas"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 67, "the fixture set has 67 files");

    // One run with every file, in reverse order: atlas-workflows.json is not valid
    // JSON and is reported with its position; the 66 others are added all the same,
    // including those whose `$ref`s name files that come later in the run.
    let mut reversed = files.clone();
    reversed.reverse();
    let out = capsule(&dir)
        .args(["schema", "add"])
        .args(&reversed)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("atlas-workflows.json:45:4: invalid JSON"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("failed: 1 of 67 files not added; 66 added"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        stdout(&out)
            .lines()
            .filter(|l| l.starts_with("added "))
            .count(),
        66
    );
    assert!(dir.join("schemas/cms-analysis/0.0.1.json").is_file());
    assert!(!dir.join("schemas/atlas-workflows").exists());

    for legacy in [
        "legacy-cms-analysis-deposit",
        "legacy-cms-analysis-record",
        "legacy-lhcb-LHCbAnalysis",
    ] {
        run_ok(
            capsule(&dir)
                .args([
                    "schema",
                    "add",
                    "--name",
                    legacy,
                    "--schema-version",
                    "0.0.1",
                ])
                .arg(format!("{fixtures}/legacy-schemas/{legacy}-v0.0.1.json")),
        );
    }
    // The legacy "options" file is CAP's form layout (uiSchema), not a schema: it is
    // refused when added, with its position.
    let out = capsule(&dir)
        .args([
            "schema",
            "add",
            "--name",
            "legacy-cms-analysis-options",
            "--schema-version",
            "0.0.1",
        ])
        .arg(format!(
            "{fixtures}/legacy-schemas/legacy-cms-analysis-options-v0.0.1.json"
        ))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("legacy-cms-analysis-options-v0.0.1.json:4:17: /jsonschema: ")
            && stderr(&out).contains("uiSchema"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.join("schemas/legacy-cms-analysis-options").exists());

    let out = capsule(&dir)
        .args(["schema", "check", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "every schema added can be used");
    let results: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        results.len(),
        66 + 3 + 1,
        "66 CAP files, 3 legacy files, capsule's own"
    );
    let failed: Vec<&Value> = results.iter().filter(|r| r["ok"] == false).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    // Every CAP file gets CAP's engine; capsule's own plain schema keeps its draft.
    for r in &results {
        let cap = r["schema"] != "analysis/1.0.0";
        assert_eq!(r["engine"], if cap { "cap" } else { "standard" }, "{r:#?}");
    }

    // Spot checks of what loading had to repair.
    let ok = |name: &str| {
        results
            .iter()
            .any(|r| r["schema"] == name && r["ok"] == true && r["form"] != Value::Null)
    };
    assert!(
        ok("legacy-lhcb-LHCbAnalysis/0.0.1"),
        "draft-03 `required: true` in a draft-04 schema"
    );
    assert!(
        ok("primary-dataset/0.0.1"),
        "`enum: []` and property-level `dependencies`"
    );
    assert!(
        ok("stage-schema/0.0.1"),
        "circular references between schemas"
    );
    assert!(
        ok("cases/0.0.1"),
        "unversioned CAP URLs resolve to the newest version"
    );
    assert!(
        ok("cms-stats-questionnaire/0.0.1"),
        "the questionnaire with notification config"
    );
}

#[test]
fn validating_the_cap_lhcb_record_against_its_legacy_schema() {
    let Some(fixtures) = cap_fixtures() else {
        return;
    };
    let fixtures = fixtures.display();
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("archive");
    run_ok(capsule(tmp.path()).arg("init").arg(&dir));
    run_ok(
        capsule(&dir)
            .args([
                "schema",
                "add",
                "--name",
                "lhcb-legacy",
                "--schema-version",
                "0.0.1",
            ])
            .arg(format!(
                "{fixtures}/legacy-schemas/legacy-lhcb-LHCbAnalysis-v0.0.1.json"
            )),
    );
    let record: Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{fixtures}/records/legacy-lhcb-analysis-ana-2014-060.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut metadata = record["metadata"].clone();
    metadata["$schema"] = "lhcb-legacy/0.0.1".into();
    std::fs::create_dir_all(dir.join(dep_dir("ana-2014-060"))).unwrap();
    std::fs::write(
        dir.join(dep("ana-2014-060", "deposit.json")),
        serde_json::to_string_pretty(&metadata).unwrap(),
    )
    .unwrap();

    // CAP's own demo record drifted from its schema: two type mismatches as a draft,
    // plus the two fields the schema marks `"required": true` when publishing.
    let out = capsule(&dir).args(["validate", "--json"]).output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let pointers: Vec<&str> = report["deposits"][0]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(
        pointers,
        ["/analysis_steps/0/code", "/dst_selection/code/lhcb_code"]
    );
    let out = capsule(&dir)
        .args(["validate", "--json", "--publish"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let messages: Vec<&str> = report["deposits"][0]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["message"].as_str().unwrap())
        .collect();
    assert!(
        messages.contains(&"required field `proponents` is missing"),
        "{messages:?}"
    );
    assert!(
        messages.contains(&"required field `status` is missing"),
        "{messages:?}"
    );
}

#[test]
fn schema_add_brings_in_references_given_in_the_same_run_and_reports_the_rest() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("archive");
    run_ok(capsule(tmp.path()).arg("init").arg(&dir));
    let write = |name: &str, text: &str| {
        let path = tmp.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let wrapper = |name: &str, body: &str| {
        format!(r#"{{"name": "{name}", "version": "1.0.0", "deposit_schema": {body}}}"#)
    };
    let a = write(
        "a.json",
        &wrapper("a", r#"{"properties": {"b": {"$ref": "b/1.0.0"}}}"#),
    );
    let b = write("b.json", &wrapper("b", r#"{"type": "object"}"#));
    let c = write(
        "c.json",
        &wrapper("c", r#"{"properties": {"x": {"$ref": "missing/1.0.0"}}}"#),
    );
    let d = write("d.json", &wrapper("d", r#"{"type": 12}"#));
    // `a` needs `b`, which comes after it; `c` names a schema nobody gives; `d` is no
    // JSON Schema. The good ones are added, the bad ones reported with file and pointer.
    let out = capsule(&dir)
        .args(["schema", "add"])
        .args([&a, &c, &d, &b])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(dir.join("schemas/a/1.0.0.json").is_file(), "{err}");
    assert!(dir.join("schemas/b/1.0.0.json").is_file(), "{err}");
    assert!(!dir.join("schemas/c/1.0.0.json").exists(), "{err}");
    assert!(!dir.join("schemas/d/1.0.0.json").exists(), "{err}");
    assert!(
        err.contains("c.json:1:")
            && err.contains("/deposit_schema/properties/x/$ref: `$ref` names schema missing/1.0.0"),
        "{err}"
    );
    assert!(
        err.contains("d.json:1:") && err.contains("/deposit_schema/type"),
        "{err}"
    );
    assert!(
        err.contains("failed: 2 of 4 files not added; 2 added"),
        "{err}"
    );
    let out = capsule(&dir)
        .args(["schema", "check", "a/1.0.0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("a/1.0.0: CAP's engine"),
        "a CAP wrapper gets CAP's engine: {}",
        stdout(&out)
    );
}
