//! `capsule validate` and `capsule init` on working archives.

mod common;

use common::*;
use serde_json::Value;
use tempfile::TempDir;

fn archive() -> (TempDir, std::path::PathBuf) {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("archive");
    run_ok(
        capsule(tmp.path())
            .args(["init", "--admin", "alice"])
            .arg(&dir),
    );
    (tmp, dir)
}

fn write(dir: &std::path::Path, path: &str, text: &str) {
    let target = dir.join(path);
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::write(target, text).unwrap();
}

#[test]
fn init_makes_a_clean_committed_archive() {
    let (_tmp, dir) = archive();
    for file in [
        "capsule.toml",
        "access.toml",
        "README.md",
        "schemas/analysis/1.0.0.json",
        "templates/README.md",
    ] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }
    let status = run_ok(git(&dir).args(["status", "--porcelain"]));
    assert_eq!(stdout(&status), "", "a new archive has nothing to commit");
    // A site built into the archive's default folder is not something to commit.
    std::fs::create_dir_all(dir.join("_site")).unwrap();
    std::fs::write(dir.join("_site/index.html"), "<html></html>").unwrap();
    let status = run_ok(git(&dir).args(["status", "--porcelain"]));
    assert_eq!(stdout(&status), "", "_site/ is ignored");
    let out = capsule(&dir).args(["validate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("no deposits to check"));
    // init refuses to overwrite.
    let again = capsule(dir.parent().unwrap())
        .args(["init"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("already exists and is not empty"));
}

#[test]
fn the_cap_documentation_example_is_a_draft_until_it_has_a_name() {
    let (_tmp, dir) = archive();
    write(&dir, "schemas/cap-docs-example/0.0.1.json", CAP_DOCS_SCHEMA);
    write(&dir, &dep("zee", "deposit.json"), ZEE);
    for args in [vec!["validate"], vec!["validate", "--publish"]] {
        let out = capsule(&dir).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stdout(&out));
    }
    let mut zee: Value = serde_json::from_str(ZEE).unwrap();
    zee["basic_info"]
        .as_object_mut()
        .unwrap()
        .remove("analysis_name");
    write(
        &dir,
        &dep("zee", "deposit.json"),
        &serde_json::to_string_pretty(&zee).unwrap(),
    );
    let draft = capsule(&dir)
        .args(["validate", &dep_dir("zee")])
        .output()
        .unwrap();
    assert_eq!(draft.status.code(), Some(0), "{}", stdout(&draft));
    let publish = capsule(&dir)
        .args(["validate", "--publish", &dep_dir("zee")])
        .output()
        .unwrap();
    assert_eq!(publish.status.code(), Some(1));
    let text = stdout(&publish);
    assert!(
        text.contains(&format!("{}:4:17: /basic_info/analysis_name (Basic Information › Analysis Name): required field `analysis_name` is missing", dep("zee", "deposit.json"))),
        "{text}"
    );
    assert!(
        text.contains("1 of 1 deposit invalid for publishing: 1 problem (the working tree)"),
        "{text}"
    );
}

#[test]
fn json_output_carries_every_problem_as_data() {
    let (_tmp, dir) = archive();
    write(&dir, &dep("w", "deposit.json"), MISTAKE);
    write(&dir, &dep("h", "deposit.json"), HIGGS);
    let out = capsule(&dir).args(["validate", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], false);
    assert_eq!(report["mode"], "draft");
    assert_eq!(report["problems"], 2);
    let deposits = report["deposits"].as_array().unwrap();
    assert_eq!(deposits.len(), 2);
    assert_eq!(deposits[0]["file"], dep("h", "deposit.json").as_str());
    assert_eq!(deposits[0]["valid"], true);
    let problems = deposits[1]["problems"].as_array().unwrap();
    assert_eq!(problems[0]["pointer"], "/basic_info/status");
    assert_eq!(problems[0]["line"], 6);
    assert_eq!(problems[0]["column"], 15);
    assert_eq!(problems[0]["title_path"], "Basic Information › Status");
    assert_eq!(problems[1]["pointer"], "/basic_info/people_info/1/email");
}

#[test]
fn validate_at_a_revision_and_exit_codes() {
    let (_tmp, dir) = archive();
    write(&dir, &dep("w", "deposit.json"), MISTAKE);
    run_ok(git(&dir).args(["add", "-A"]));
    run_ok(git(&dir).args(["commit", "-q", "-m", "bad"]));
    // Fix it in the working tree only: the working tree is valid, HEAD is not.
    write(&dir, &dep("w", "deposit.json"), HIGGS);
    assert_eq!(
        capsule(&dir)
            .args(["validate"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(0)
    );
    let at_head = capsule(&dir)
        .args(["validate", "--rev", "HEAD"])
        .output()
        .unwrap();
    assert_eq!(at_head.status.code(), Some(1));
    assert!(
        stdout(&at_head).contains("(commit "),
        "{}",
        stdout(&at_head)
    );
    // Could not run: not an archive, not a revision, not a deposit.
    let nowhere = TempDir::new().unwrap();
    assert_eq!(
        capsule(nowhere.path())
            .args(["validate"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        capsule(&dir)
            .args(["validate", "--rev", "no-such-rev"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        capsule(&dir)
            .args(["validate", "README.md"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn a_deposit_folder_without_metadata_is_a_problem_not_a_crash() {
    let (_tmp, dir) = archive();
    write(&dir, &dep("empty", "notes.txt"), "just notes");
    let out = capsule(&dir).args(["validate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains(&format!(
        "{}: there is no deposit.json here",
        dep("empty", "deposit.json")
    )));
}

#[test]
fn set_and_edit_repair_a_broken_deposit_one_step_at_a_time() {
    let (_tmp, dir) = archive();
    let path = dep("w-mass", "deposit.json");
    write(
        &dir,
        &path,
        r#"{
  "$schema": "analysis/1.0.0",
  "general_title": "W mass",
  "basic_info": {"analysis_name": "W mass", "status": "finished"},
  "_deposit": {"owners": ["alice"]}
}
"#,
    );
    let read = || -> Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(&path)).unwrap()).unwrap()
    };
    let set = |args: &[&str]| {
        capsule(&dir)
            .env("CAPSULE_USER", "alice")
            .arg("set")
            .arg("w-mass")
            .args(args)
            .output()
            .unwrap()
    };

    // Appending to a field that does not exist yet makes the list the schema describes,
    // and a change that adds no problem is written although one remains from before.
    let out = set(&["/basic_info/keywords/-", "W boson"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        read()["basic_info"]["keywords"],
        serde_json::json!(["W boson"])
    );
    assert!(
        stderr(&out).contains("/basic_info/status") && stderr(&out).contains("1 problem remains"),
        "{}",
        stderr(&out)
    );
    let out = set(&["/basic_info/keywords/-", "mass"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        read()["basic_info"]["keywords"],
        serde_json::json!(["W boson", "mass"])
    );

    // A change that adds a problem is refused, naming only the new one.
    let before = std::fs::read(dir.join(&path)).unwrap();
    let out = set(&[
        "/basic_info/people_info/-",
        "{\"name\": \"Ann\", \"email\": \"ann(at)cern.ch\"}",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("/basic_info/people_info/0/email"),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("/basic_info/status"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(dir.join(&path)).unwrap(), before);

    // An edit that changes something else is saved too, and says what remains.
    let script = dir.parent().unwrap().join("editor.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nsed -i 's/\"W mass\",/\"The W mass\",/' \"$1\"\n",
    )
    .unwrap();
    let out = capsule(&dir)
        .env("EDITOR", format!("sh {}", script.display()))
        .args(["edit", "w-mass"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(read()["general_title"], "The W mass");
    assert!(
        stderr(&out).contains("1 problem remains"),
        "{}",
        stderr(&out)
    );

    // The last repair leaves nothing to report.
    let out = set(&["/basic_info/status", "in progress"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("remain"), "{}", stderr(&out));
    let out = capsule(&dir).args(["validate", "w-mass"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}
