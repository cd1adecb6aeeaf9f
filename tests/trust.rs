//! The push path's other trust rules, through real pushes: published ids stay bound to
//! their records, ids are unique ignoring case, inputs are bounded before they are
//! read, one JSON reader serves every part, and a refused push leaves nothing behind.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;

const PEOPLE: &str = r#"[people]
alice = "alice@example.org"
bob = "bob@example.org"

[groups]
"#;

fn archive(settings_change: impl FnOnce(String) -> String) -> (Server, Work) {
    let server = Server::new();
    let work = server.clone("work");
    let settings = std::fs::read_to_string(work.path.join("capsule.toml")).unwrap();
    work.write("capsule.toml", settings_change(settings))
        .write("access.toml", PEOPLE)
        .commit("people");
    work.push().assert_landed();
    (server, work)
}

fn owned_by(owner: &str, title: &str) -> String {
    let mut deposit: serde_json::Value = serde_json::from_str(HIGGS).unwrap();
    deposit["_deposit"]["owners"] = serde_json::json!([owner]);
    deposit["general_title"] = title.into();
    serde_json::to_string_pretty(&deposit).unwrap() + "\n"
}

#[test]
fn a_published_id_stays_bound_to_its_record_after_deletion() {
    let (server, work) = archive(|s| s);
    work.write(
        &dep("old", "deposit.json"),
        owned_by("alice", "alice's analysis"),
    )
    .commit("old");
    work.push().assert_landed();
    let out = work.capsule_as("alice", &["publish", "old", "--push"]);
    assert!(out.status.success(), "{}", stderr(&out));
    work.remove(&dep_dir("old")).commit("retire old");
    work.push().assert_landed();

    // bob re-creates `old` as his own, to publish v2 of alice's record.
    work.write(&dep("old", "deposit.json"), owned_by("bob", "bob's words"))
        .commit("bob takes the id");
    let before = server.rev("refs/heads/main");
    work.push_as("bob", "HEAD:main").assert_rejected_with(
        "bob may not create deposit old on main: the id old was published (records/old/v1), and a published id stays bound to its record",
    );
    assert_eq!(server.rev("refs/heads/main"), before);

    // The record's admin may bring it back.
    work.write(
        &dep("old", "deposit.json"),
        owned_by("alice", "alice again"),
    )
    .commit("alice restores old");
    work.git(&["reset", "-q", "--soft", "HEAD~2"]);
    work.commit("alice restores old");
    work.push_as("alice", "HEAD:main").assert_landed();
}

#[test]
fn ids_are_unique_ignoring_case() {
    let (server, work) = archive(|s| s);
    work.write(&dep("Higgs", "deposit.json"), owned_by("alice", "one"))
        .commit("Higgs");
    work.push().assert_landed();
    work.write(&dep("higgs", "deposit.json"), owned_by("bob", "two"))
        .commit("higgs");
    let before = server.rev("refs/heads/main");
    work.push_as("bob", "HEAD:main").assert_rejected_with(
        "the deposit id `higgs` differs from the existing id `Higgs` only in case",
    );
    assert_eq!(server.rev("refs/heads/main"), before);
}

#[test]
fn a_file_over_the_limit_is_refused_from_its_header_in_every_reader() {
    let (server, work) = archive(|s| {
        s.lines()
            .map(|l| {
                if l.starts_with("max_file_bytes") {
                    "max_file_bytes = 4096"
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    // A deposit.json one byte over the limit: the rules would read it to judge the owner.
    let base = owned_by("bob", "").len();
    let big = owned_by("bob", &"x".repeat(4097 - base));
    assert_eq!(big.len(), 4097);
    work.write(&dep("big", "deposit.json"), &big).commit("big");
    let before = server.rev("refs/heads/main");
    let push = work.push_as("bob", "HEAD:main");
    push.assert_rejected_with(&format!(
        "{}: the file is 4097 bytes; the archive's limit is 4096 bytes (policy.max_file_bytes)",
        dep("big", "deposit.json"),
    ));
    assert_eq!(server.rev("refs/heads/main"), before);

    // Its twin at the limit lands.
    work.git(&["reset", "-q", "--hard", "HEAD~1"]);
    let fits = owned_by("bob", &"x".repeat(4096 - base));
    assert_eq!(fits.len(), 4096);
    work.write(&dep("fits", "deposit.json"), &fits)
        .commit("fits");
    work.push_as("bob", "HEAD:main").assert_landed();
}

#[test]
fn the_hook_refuses_a_push_that_outlasts_its_time_budget() {
    let (server, work) = archive(|s| s.replace("[policy]", "[policy]\nhook_timeout_secs = 0"));
    work.write(&dep("zee", "deposit.json"), owned_by("alice", "zee"))
        .commit("zee");
    let before = server.rev("refs/heads/main");
    work.push().assert_rejected_with(
        "checking it took longer than the archive's limit of 0 s (policy.hook_timeout_secs in capsule.toml); nothing was changed",
    );
    assert_eq!(server.rev("refs/heads/main"), before);
}

#[test]
fn one_json_reader_duplicate_keys_are_refused_and_a_bom_restricts_like_any_deposit() {
    let (server, work) = archive(|s| s);
    // `_access` twice: which one counts would depend on the reader.
    let public = owned_by("alice", "twice");
    let twice = public.replacen(
        "{\n",
        "{\n  \"_access\": {\"deposit-read\": {\"users\": [], \"roles\": [\"public\"]}},\n",
        1,
    );
    assert!(twice.contains("\"_access\"") && public.contains("\"_access\""));
    work.write(&dep("twice", "deposit.json"), &twice)
        .commit("twice");
    let before = server.rev("refs/heads/main");
    work.push()
        .assert_rejected_with(&format!("{}:", dep("twice", "deposit.json")))
        .assert_rejected_with("the key `_access` appears twice in one object; keep one of them");
    assert_eq!(server.rev("refs/heads/main"), before);
    let validate = work.capsule(&["validate", "twice"]);
    assert_eq!(validate.status.code(), Some(1));
    assert!(
        stdout(&validate).contains("appears twice"),
        "{}",
        stdout(&validate)
    );
    work.git(&["reset", "-q", "--hard", "HEAD~1"]);

    // A byte order mark: accepted by every reader alike, so its _access holds. bob,
    // who is not in it, may not change the deposit.
    let bom = format!("\u{feff}{}", owned_by("alice", "with a BOM"));
    work.write(&dep("bom", "deposit.json"), &bom).commit("bom");
    work.push().assert_landed();
    let mut changed: serde_json::Value = serde_json::from_str(&owned_by("alice", "bob's")).unwrap();
    changed["general_title"] = "bob was here".into();
    work.write(
        &dep("bom", "deposit.json"),
        format!(
            "\u{feff}{}",
            serde_json::to_string_pretty(&changed).unwrap()
        ),
    )
    .commit("bob edits");
    work.push_as("bob", "HEAD:main")
        .assert_rejected_with("bob may not change deposit bom on main");
    work.git(&["reset", "-q", "--hard", "HEAD~1"]);
    // The site and search read it too: alice's draft is found by its title.
    let out = run_ok(capsule(&work.path).args(["search", "BOM", "--json"]));
    assert!(stdout(&out).contains("\"bom\""), "{}", stdout(&out));
}

/// Every file under a git directory except git's object store, with its size.
fn files(dir: &Path) -> BTreeSet<(String, u64)> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let path = entry.path();
            let relative = path
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if relative == "objects" || relative == "logs" {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert((relative, entry.metadata().unwrap().len()));
            }
        }
    }
    out
}

#[test]
fn a_refused_push_of_many_commits_leaves_nothing_behind() {
    let (server, work) = archive(|s| s);
    let before = files(&server.git_dir);
    let objects = stdout(
        &git(&server.git_dir)
            .args(["count-objects", "-v"])
            .output()
            .unwrap(),
    );
    for i in 0..200 {
        work.write(
            &dep(&format!("d{i}"), "deposit.json"),
            owned_by("alice", "ok"),
        )
        .commit(&format!("commit {i}"));
    }
    work.write(&dep("bad", "deposit.json"), "{ not json")
        .commit("bad");
    work.push().assert_rejected_with("invalid JSON");
    assert_eq!(files(&server.git_dir), before);
    assert_eq!(
        stdout(
            &git(&server.git_dir)
                .args(["count-objects", "-v"])
                .output()
                .unwrap()
        ),
        objects,
        "the quarantined objects of a refused push are dropped"
    );
}

#[test]
fn a_tombstone_is_written_by_admins_only_and_never_moves() {
    let (server, work) = archive(|s| s);
    let mut deposit: serde_json::Value =
        serde_json::from_str(&owned_by("alice", "to withdraw")).unwrap();
    deposit["_access"]["deposit-update"] = serde_json::json!({"users": ["bob"], "roles": []});
    work.write(
        &dep("gone", "deposit.json"),
        serde_json::to_string_pretty(&deposit).unwrap() + "\n",
    )
    .commit("gone");
    work.push().assert_landed();
    let out = work.capsule_as("alice", &["publish", "gone", "--push"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let tombstone = r#"{"reason": "retracted", "date": "2026-12-03T00:00:00Z", "by": "bob"}"#;

    // bob may update the deposit, but not withdraw it: the hook says so.
    work.write(&dep("gone", "TOMBSTONE.json"), tombstone)
        .commit("bob withdraws");
    let before = server.rev("refs/heads/main");
    work.push_as("bob", "HEAD:main")
        .assert_rejected_with("bob may not withdraw this record: withdrawing needs deposit-admin");
    assert_eq!(server.rev("refs/heads/main"), before);

    // alice, its owner, may; afterwards nobody removes it or publishes a new version.
    work.push_as("alice", "HEAD:main").assert_landed();
    work.remove(&dep("gone", "TOMBSTONE.json")).commit("undo");
    work.push_as("alice", "HEAD:main")
        .assert_rejected_with("alice may not remove TOMBSTONE.json: a withdrawal is permanent");
    work.git(&["reset", "-q", "--hard", "HEAD~1"]);
    work.git(&["tag", "-a", "records/gone/v2", "-m", "again"]);
    work.push_as("alice", "refs/tags/records/gone/v2")
        .assert_rejected_with("gone was withdrawn");
    assert_eq!(server.rev("refs/tags/records/gone/v2"), None);
}
