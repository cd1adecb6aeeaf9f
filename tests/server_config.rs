//! The server repository's own settings that the hook relies on: HEAD naming the
//! configured default branch (and the default-branch hijack that a disagreement used
//! to allow), and `receive.fsckObjects`.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use tempfile::TempDir;

/// A repository made the way many servers are: `git init --bare` (HEAD = master)
/// and `capsule hook install`, then alice's first push of an archive to master.
/// capsule.toml says `default_branch = "main"`; access.toml lists alice and bob.
struct MasterArchive {
    tmp: TempDir,
    git_dir: PathBuf,
    work: Work,
}

fn master_archive() -> MasterArchive {
    let tmp = TempDir::new().unwrap();
    let git_dir = tmp.path().join("server.git");
    run_ok(git(tmp.path()).args(["init", "-q", "--bare"]).arg(&git_dir));
    let install = run_ok(capsule(tmp.path()).args(["hook", "install"]).arg(&git_dir));
    assert!(
        stderr(&install)
            .contains("HEAD names refs/heads/master, but the archive's default branch is main")
            && stderr(&install).contains("git symbolic-ref HEAD refs/heads/main"),
        "install must say how to fix HEAD:\n{}",
        stderr(&install)
    );
    let work = Work {
        path: tmp.path().join("work"),
    };
    run_ok(capsule(tmp.path()).args([
        "init",
        "work",
        "--admin",
        "alice",
        "--admin-email",
        "alice@example.org",
    ]));
    work.write(
        "access.toml",
        "[people]\nalice = \"alice@example.org\"\nbob = \"bob@example.org\"\n",
    )
    .commit("bob joins");
    work.git(&["remote", "add", "origin", git_dir.to_str().unwrap()]);
    // The repository has no branch at all: the first push sets the rules.
    work.push_as("alice", "main:master").assert_landed();
    MasterArchive { tmp, git_dir, work }
}

fn rev(git_dir: &Path, name: &str) -> Option<String> {
    let out = git(git_dir)
        .args(["rev-parse", "--verify", "--quiet", name])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| stdout(&out).trim().to_string())
}

#[test]
fn a_member_cannot_hijack_the_configured_default_branch() {
    let MasterArchive { tmp, git_dir, work } = master_archive();
    let master = rev(&git_dir, "refs/heads/master").unwrap();

    // The attack: bob, a member, creates `main` as an empty orphan commit...
    work.git(&["checkout", "-q", "--orphan", "empty"]);
    work.git(&["rm", "-q", "-r", "--cached", "."]);
    work.git(&["commit", "-q", "--allow-empty", "-m", "empty"]);
    work.push_as("bob", "empty:main").assert_rejected_with(
        "bob may not create branch main: capsule.toml names main as the default branch (archive.default_branch), so whoever creates it sets the archive's rules; that needs archive admin rights (policy.admins, read from master)",
    );
    assert_eq!(
        rev(&git_dir, "refs/heads/main"),
        None,
        "main must not exist"
    );

    // ... and then force-pushes master: the archive is not bootstrapping, so bob is
    // judged by master's rules.
    work.push_as("bob", "+empty:master")
        .assert_rejected_with("bob may not change capsule.toml on master");
    assert_eq!(
        rev(&git_dir, "refs/heads/master").as_deref(),
        Some(master.as_str())
    );

    // An admin may not move the rules to an empty branch either.
    work.push_as("alice", "empty:main")
        .assert_rejected_with("branch main would become the archive's default branch (archive.default_branch in capsule.toml) but has no capsule.toml");
    assert_eq!(rev(&git_dir, "refs/heads/main"), None);

    // `hook status` keeps failing, with the fix, until HEAD agrees.
    let status = capsule(tmp.path())
        .args(["hook", "status"])
        .arg(&git_dir)
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(1));
    assert!(
        stderr(&status).contains(&format!(
            "either make main the default branch: `git --git-dir={dir} branch main master` then `git --git-dir={dir} symbolic-ref HEAD refs/heads/main`",
            dir = git_dir.display()
        )),
        "{}",
        stderr(&status)
    );

    // The legitimate way: alice, an admin, creates main from master; HEAD follows.
    work.push_as("alice", &format!("{master}:refs/heads/main"))
        .assert_landed();
    assert_eq!(
        rev(&git_dir, "refs/heads/main").as_deref(),
        Some(master.as_str())
    );
    let status = capsule(tmp.path())
        .args(["hook", "status"])
        .arg(&git_dir)
        .output()
        .unwrap();
    assert!(
        stderr(&status).contains(&format!(
            "run `git symbolic-ref HEAD refs/heads/main` in {}",
            git_dir.display()
        )),
        "{}",
        stderr(&status)
    );
    run_ok(git(&git_dir).args(["symbolic-ref", "HEAD", "refs/heads/main"]));
    run_ok(capsule(tmp.path()).args(["hook", "status"]).arg(&git_dir));
}

#[test]
fn a_default_branch_without_rules_refuses_every_push_instead_of_bootstrapping() {
    // Created outside the hook (as an older capsule let a member do): main has no
    // capsule.toml. Nobody becomes an admin; every push is refused with the fix.
    let MasterArchive {
        tmp: _tmp,
        git_dir,
        work,
    } = master_archive();
    work.git(&["checkout", "-q", "--orphan", "empty"]);
    work.git(&["rm", "-q", "-r", "--cached", "."]);
    work.git(&["commit", "-q", "--allow-empty", "-m", "empty"]);
    run_ok(
        git(&git_dir)
            .args(["fetch", "-q"])
            .arg(&work.path)
            .arg("empty:refs/heads/main"),
    );
    let master = rev(&git_dir, "refs/heads/master").unwrap();
    work.push_as("eve", "+empty:master").assert_rejected_with(
        "the default branch (refs/heads/main) has no capsule.toml, so this repository has no rules yet and capsule refuses every push",
    );
    assert_eq!(rev(&git_dir, "refs/heads/master"), Some(master));
    work.push_as("alice", "HEAD:refs/heads/feature")
        .assert_rejected_with("git --git-dir=<this repository> fetch <clone> main:main");
    assert_eq!(rev(&git_dir, "refs/heads/feature"), None);
}

#[test]
fn a_new_archive_bootstraps_and_agrees_with_its_head() {
    // `capsule init --bare`: HEAD is main, fsck is on, status is clean.
    let server = Server::new();
    let status = run_ok(capsule(&server.git_dir).args(["hook", "status", "."]));
    assert!(!stderr(&status).contains("warning"), "{}", stderr(&status));
    let work = server.clone("work");
    work.write("README.md", "first change\n").commit("change");
    work.push().assert_landed();

    // An empty repository with HEAD = main: the first push, by anyone with a name,
    // sets the rules; from then on they apply.
    let tmp = TempDir::new().unwrap();
    let git_dir = tmp.path().join("empty.git");
    run_ok(
        git(tmp.path())
            .args(["init", "-q", "--bare", "--initial-branch=main"])
            .arg(&git_dir),
    );
    let install = run_ok(capsule(tmp.path()).args(["hook", "install"]).arg(&git_dir));
    assert!(
        !stderr(&install).contains("HEAD names"),
        "{}",
        stderr(&install)
    );
    let work = Work {
        path: tmp.path().join("work"),
    };
    run_ok(capsule(tmp.path()).args([
        "init",
        "work",
        "--admin",
        "bob",
        "--admin-email",
        "bob@example.org",
    ]));
    work.git(&["remote", "add", "origin", git_dir.to_str().unwrap()]);
    work.push_as("bob", "main:main").assert_landed();
    work.write("README.md", "eve was here\n").commit("eve");
    work.push_as("eve", "main:main")
        .assert_rejected_with("eve may not push to this archive");
}

/// A commit whose tree names `a.txt` twice: git's fsck calls it `duplicateEntries`.
fn commit_with_duplicate_entries(work: &Work) -> String {
    work.write("a.txt", "twice\n");
    let blob = stdout(&work.git(&["hash-object", "-w", "a.txt"]))
        .trim()
        .to_string();
    std::fs::remove_file(work.path.join("a.txt")).unwrap();
    let raw: Vec<u8> = (0..blob.len() / 2)
        .map(|i| u8::from_str_radix(&blob[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let mut tree = Vec::new();
    for _ in 0..2 {
        tree.extend_from_slice(b"100644 a.txt\0");
        tree.extend_from_slice(&raw);
    }
    let file = work.path.join("dup-tree");
    std::fs::write(&file, &tree).unwrap();
    let tree = stdout(&work.git(&["hash-object", "--literally", "-t", "tree", "-w", "dup-tree"]))
        .trim()
        .to_string();
    std::fs::remove_file(file).unwrap();
    let parent = work.head();
    stdout(&work.git(&[
        "commit-tree",
        &tree,
        "-p",
        &parent,
        "-m",
        "duplicate entries",
    ]))
    .trim()
    .to_string()
}

#[test]
fn git_fsck_refuses_a_malformed_tree_before_the_hook_runs() {
    let server = Server::new();
    let config = std::fs::read_to_string(server.git_dir.join("config")).unwrap();
    assert!(config.contains("fsckObjects = true"), "{config}");
    let work = server.clone("work");
    let before = server.rev("refs/heads/main");
    let bad = commit_with_duplicate_entries(&work);
    let push = work.push_as("alice", &format!("{bad}:refs/heads/main"));
    push.assert_rejected_with("duplicateEntries");
    assert!(
        !push.output.contains("capsule:"),
        "git's fsck, not the hook, refused it:\n{}",
        push.output
    );
    assert_eq!(server.rev("refs/heads/main"), before);
}

#[test]
fn hook_status_warns_when_fsck_is_off() {
    let server = Server::new();
    run_ok(git(&server.git_dir).args(["config", "receive.fsckObjects", "false"]));
    let out = server.capsule(&["hook", "status", "."]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("receive.fsckObjects is off in .: git accepts malformed objects")
            && stderr(&out).contains("run `git --git-dir=. config receive.fsckObjects true`"),
        "{}",
        stderr(&out)
    );
    // `hook install` turns it back on.
    let out = run_ok(capsule(&server.git_dir).args(["hook", "install", "."]));
    assert!(
        stdout(&out).contains("receive.fsckObjects turned on"),
        "{}",
        stdout(&out)
    );
    run_ok(capsule(&server.git_dir).args(["hook", "status", "."]));
}
