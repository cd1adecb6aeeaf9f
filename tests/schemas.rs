//! Every CAP fixture schema loads, or is refused with file, position and reason.

mod common;

use common::*;
use serde_json::Value;
use tempfile::TempDir;

#[test]
fn the_cap_fixture_schemas_load_except_the_two_that_cannot() {
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

    // atlas-workflows.json is not valid JSON: `schema add` refuses it with its position.
    let (broken, good): (Vec<_>, Vec<_>) = files
        .iter()
        .partition(|f| f.ends_with("atlas-workflows.json"));
    let out = capsule(&dir)
        .args(["schema", "add"])
        .arg(broken[0])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("atlas-workflows.json:45:4: invalid JSON"),
        "{}",
        stderr(&out)
    );

    run_ok(capsule(&dir).args(["schema", "add"]).args(&good));
    for legacy in [
        "legacy-cms-analysis-deposit",
        "legacy-cms-analysis-record",
        "legacy-cms-analysis-options",
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

    let out = capsule(&dir)
        .args(["schema", "check", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "one schema cannot be used");
    let results: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        results.len(),
        66 + 4 + 1,
        "66 CAP files, 4 legacy files, capsule's own"
    );
    let failed: Vec<&Value> = results.iter().filter(|r| r["ok"] == false).collect();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    // The legacy "options" file is CAP's form layout (uiSchema), not a schema.
    assert_eq!(failed[0]["schema"], "legacy-cms-analysis-options/0.0.1");
    let problem = &failed[0]["problems"][0];
    assert_eq!(problem["pointer"], "/jsonschema");
    assert_eq!(problem["line"], 4);
    assert!(problem["message"].as_str().unwrap().contains("uiSchema"));

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
