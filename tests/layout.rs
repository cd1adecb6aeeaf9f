//! The fan-out layout: deposits live in `deposits/<shard>/<id>/`, the hook refuses any
//! other place naming the right one, and `capsule migrate` moves a flat archive (as
//! capsule made them before shards) in one commit that the hook accepts, keeping
//! history and record tags.

mod common;

use common::*;

fn zee() -> String {
    analysis("Z to ee", &["z"], ("Alice Analyst", "alice@example.org"))
}

/// Pushes with the server's hooks set aside: how an archive made before shards came to
/// hold a flat `deposits/<id>/` (today's hook refuses one).
fn push_without_hooks(server: &Server, work: &Work, refspec: &str) {
    let hooks = server.git_dir.join("hooks");
    let aside = server.git_dir.join("hooks-aside");
    std::fs::rename(&hooks, &aside).unwrap();
    let push = work.push_as("alice", refspec);
    std::fs::rename(&aside, &hooks).unwrap();
    push.assert_landed();
}

#[test]
fn a_deposit_outside_its_shard_is_refused_with_its_folder() {
    let server = Server::new();
    let work = server.clone("work");
    let before = server.rev("refs/heads/main");
    work.write("deposits/zee/deposit.json", zee())
        .commit("flat deposit");
    work.push().assert_rejected_with(&format!(
        "this file belongs at {}",
        dep("zee", "deposit.json")
    ));
    assert_eq!(server.rev("refs/heads/main"), before);
    work.git(&["reset", "-q", "--hard", "HEAD~1"]);

    let wrong = if capsule::deposit::shard("zee") == "00" {
        "01"
    } else {
        "00"
    };
    work.write(&format!("deposits/{wrong}/zee/deposit.json"), zee())
        .commit("wrong shard");
    work.push().assert_rejected_with(&format!(
        "deposit `zee` is in the wrong shard: its folder is {}",
        dep_dir("zee")
    ));
    assert_eq!(server.rev("refs/heads/main"), before);
    work.git(&["reset", "-q", "--hard", "HEAD~1"]);

    // The legitimate twin lands.
    work.write(&dep("zee", "deposit.json"), zee()).commit("zee");
    work.push().assert_landed();
}

#[test]
fn new_and_show_name_the_folder_and_ids_are_unique_ignoring_case() {
    let server = Server::new();
    let work = server.clone("work");
    let out = work.capsule_as("alice", &["new", "analysis", "--id", "Zee-2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&dep("Zee-2", "deposit.json")),
        "{}",
        stdout(&out)
    );
    assert!(work.path.join(dep("Zee-2", "deposit.json")).is_file());
    let again = work.capsule_as("alice", &["new", "analysis", "--id", "zee-2"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("deposit Zee-2 exists already"),
        "{}",
        stderr(&again)
    );
    let path = run_ok(capsule(&work.path).args(["show", "--path", "zee"]));
    assert_eq!(stdout(&path).trim(), dep_dir("zee"));
}

#[test]
fn migrate_moves_a_flat_archive_in_one_commit_keeping_history_and_records() {
    let server = Server::new();
    let work = server.clone("work");
    work.write("deposits/higgs/deposit.json", HIGGS)
        .write("deposits/higgs/notes.txt", "first notes\n")
        .commit("higgs v1");
    let mut edited: serde_json::Value = serde_json::from_str(HIGGS).unwrap();
    edited["general_title"] = "H to ZZ to 4l, full Run 2".into();
    work.write(
        "deposits/higgs/deposit.json",
        serde_json::to_string_pretty(&edited).unwrap() + "\n",
    )
    .commit("higgs, new title");
    work.write("deposits/zee/deposit.json", zee()).commit("zee");
    push_without_hooks(&server, &work, "HEAD:main");
    work.git(&[
        "tag",
        "-a",
        "records/higgs/v1",
        "HEAD~1",
        "-m",
        "Publish higgs v1",
    ]);
    push_without_hooks(&server, &work, "refs/tags/records/higgs/v1");

    let log_before = stdout(&run_ok(
        capsule(&work.path).args(["log", "higgs", "--json"]),
    ));

    // A dry run lists and changes nothing.
    let head = work.head();
    let dry = run_ok(capsule(&work.path).args(["migrate", "--dry-run"]));
    assert!(
        stdout(&dry).contains(&format!("deposits/higgs/ -> {}/", dep_dir("higgs"))),
        "{}",
        stdout(&dry)
    );
    assert_eq!(work.head(), head);

    let out = run_ok(capsule(&work.path).args(["migrate", "--json"]));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["moved"], serde_json::json!(["higgs", "zee"]));
    assert!(work.path.join(dep("higgs", "notes.txt")).is_file());
    assert!(!work.path.join("deposits/higgs").exists());
    let status = work.git(&["status", "--porcelain"]);
    assert!(stdout(&status).is_empty(), "{}", stdout(&status));
    // One commit, accepted by the hook for the archive admin.
    assert_eq!(stdout(&work.git(&["rev-parse", "HEAD~1"])).trim(), head);
    work.push().assert_landed();

    // History follows the move: the same versions, and no version for the move itself.
    let log_after = stdout(&run_ok(
        capsule(&work.path).args(["log", "higgs", "--json"]),
    ));
    assert_eq!(log_after, log_before);
    let versions: serde_json::Value = serde_json::from_str(&log_after).unwrap();
    assert_eq!(versions.as_array().unwrap().len(), 2, "{log_after}");
    // The record tag still reads, and diff works across the move.
    let shown = run_ok(capsule(&work.path).args(["show", "higgs@v1", "--json"]));
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["metadata"]["general_title"], edited["general_title"]);
    run_ok(capsule(&work.path).args(["diff", "higgs", "v1", "HEAD"]));

    // The next version is published from the new place.
    let publish = work.capsule_as("alice", &["publish", "higgs", "--push"]);
    assert!(
        publish.status.success(),
        "{}{}",
        stdout(&publish),
        stderr(&publish)
    );
    assert!(server.rev("refs/tags/records/higgs/v2").is_some());

    // A second run has nothing to move.
    let again = run_ok(capsule(&work.path).args(["migrate"]));
    assert!(
        stdout(&again).contains("Nothing to move"),
        "{}",
        stdout(&again)
    );
}
