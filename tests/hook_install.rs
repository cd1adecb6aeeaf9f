//! `capsule hook install` and `capsule hook status` on real bare repositories.

mod common;

use common::*;
use serde_json::Value;
use tempfile::TempDir;

fn bare() -> (TempDir, std::path::PathBuf) {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("plain.git");
    run_ok(
        git(tmp.path())
            .args(["init", "-q", "--bare", "--initial-branch=main"])
            .arg(&dir),
    );
    (tmp, dir)
}

#[test]
fn install_is_idempotent_and_status_reports_it() {
    let (_tmp, dir) = bare();
    let first = run_ok(capsule(&dir).args(["hook", "install", "--json"]).arg(&dir));
    let changes: Vec<Value> = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(
        changes
            .iter()
            .map(|c| c["action"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["created", "created"]
    );
    let second = run_ok(capsule(&dir).args(["hook", "install", "--json"]).arg(&dir));
    let changes: Vec<Value> = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(
        changes
            .iter()
            .map(|c| c["action"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["unchanged", "unchanged"]
    );

    let status = run_ok(capsule(&dir).args(["hook", "status", "--json"]).arg(&dir));
    let states: Vec<Value> = serde_json::from_slice(&status.stdout).unwrap();
    assert!(
        states
            .iter()
            .all(|s| s["state"] == "capsule" && s["binary_exists"] == true),
        "{states:#?}"
    );
    let script = std::fs::read_to_string(dir.join("hooks/pre-receive")).unwrap();
    assert!(script.contains("hook pre-receive"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(dir.join("hooks/pre-receive"))
            .unwrap()
            .permissions()
            .mode()
            & 0o111,
        0o111
    );
}

#[test]
fn a_foreign_hook_is_never_overwritten_without_force() {
    let (_tmp, dir) = bare();
    std::fs::write(dir.join("hooks/pre-receive"), "#!/bin/sh\necho mine\n").unwrap();
    let out = capsule(&dir)
        .args(["hook", "install"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("NOT installed"), "{}", stdout(&out));
    assert!(stderr(&out).contains("--force"));
    assert_eq!(
        std::fs::read_to_string(dir.join("hooks/pre-receive")).unwrap(),
        "#!/bin/sh\necho mine\n"
    );

    let status = capsule(&dir)
        .args(["hook", "status"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(1), "incomplete installation");
    assert!(stdout(&status).contains("foreign"));

    run_ok(capsule(&dir).args(["hook", "install", "--force"]).arg(&dir));
    assert_eq!(
        std::fs::read_to_string(dir.join("hooks/pre-receive.capsule-backup")).unwrap(),
        "#!/bin/sh\necho mine\n"
    );
    assert!(std::fs::read_to_string(dir.join("hooks/pre-receive"))
        .unwrap()
        .contains("capsule-hook"));
}

#[test]
fn gitea_and_gitlab_layouts() {
    let (_tmp, dir) = bare();
    run_ok(
        capsule(&dir)
            .args(["hook", "install", "--layout", "gitea"])
            .arg(&dir),
    );
    assert!(dir.join("hooks/pre-receive.d/capsule").is_file());
    assert!(dir.join("hooks/post-receive.d/capsule").is_file());
    run_ok(
        capsule(&dir)
            .args(["hook", "install", "--layout", "gitlab"])
            .arg(&dir),
    );
    assert!(dir.join("custom_hooks/pre-receive.d/capsule").is_file());
    let out = capsule(&dir)
        .args(["hook", "install"])
        .arg(dir.join("nope"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is not a git repository"));
}

#[test]
fn an_installed_hook_checks_pushes_to_an_existing_repository() {
    let (tmp, dir) = bare();
    run_ok(capsule(&dir).args(["hook", "install"]).arg(&dir));
    let work = tmp.path().join("work");
    run_ok(git(tmp.path()).args(["clone", "-q"]).arg(&dir).arg(&work));
    std::fs::create_dir_all(work.join(dep_dir("x"))).unwrap();
    std::fs::write(
        work.join(dep("x", "deposit.json")),
        "{\"$schema\": \"analysis/1.0.0\"}",
    )
    .unwrap();
    run_ok(git(&work).args(["add", "-A"]));
    run_ok(git(&work).args(["commit", "-q", "-m", "x"]));
    let out = git(&work)
        .args(["push", "origin", "HEAD:main"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out)
            .contains("unknown schema analysis/1.0.0: there is no schemas/analysis/1.0.0.json"),
        "{}",
        stderr(&out)
    );
}
