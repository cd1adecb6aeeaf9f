//! Crafted objects against the pre-receive hook: trees git never writes, and tags of
//! things that are not commits. Each attack is built with git's plumbing (`hash-object
//! --literally`, `mktree`, `commit-tree`, `update-ref`) in a clone and pushed with the
//! real client. Each must be refused with a `remote:` line that names the commit, the
//! path and the reason, and must move no ref; its legitimate twin must land.
//!
//! The server's own `receive.fsckObjects` is turned off in these tests, so that what
//! refuses is the hook's check; one test shows git refusing on its own with it on.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::*;

/// One tree entry as `git ls-tree` shows it: mode, object id and name (raw bytes).
#[derive(Clone, Debug)]
struct Entry {
    mode: String,
    id: String,
    name: Vec<u8>,
}

fn entry(mode: &str, id: &str, name: impl AsRef<[u8]>) -> Entry {
    Entry {
        mode: mode.to_string(),
        id: id.to_string(),
        name: name.as_ref().to_vec(),
    }
}

/// Git's order: a folder compares as if its name ended in `/`.
fn git_order(entries: &mut [Entry]) {
    entries.sort_by_key(|e| {
        let mut key = e.name.clone();
        if e.mode == "40000" {
            key.push(b'/');
        }
        key
    });
}

/// `git <args>` in the clone with `input` on standard input; its trimmed output.
fn git_with_input(work: &Work, args: &[&str], input: &[u8]) -> String {
    let mut child = git(&work.path)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
    stdout(&out).trim().to_string()
}

fn hex_to_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// Writes a tree object holding exactly `entries`, in the order given, whatever git
/// would think of it.
fn write_raw_tree(work: &Work, entries: &[Entry]) -> String {
    let mut bytes = Vec::new();
    for e in entries {
        bytes.extend_from_slice(e.mode.as_bytes());
        bytes.push(b' ');
        bytes.extend_from_slice(&e.name);
        bytes.push(0);
        bytes.extend_from_slice(&hex_to_bytes(&e.id));
    }
    git_with_input(
        work,
        &["hash-object", "--literally", "-t", "tree", "-w", "--stdin"],
        &bytes,
    )
}

/// The entries of the folder `folder` ("" for the top) at `commit`; empty when absent.
fn ls_tree(work: &Work, commit: &str, folder: &str) -> Vec<Entry> {
    let out = git(&work.path)
        .args(["ls-tree", "-z", &format!("{commit}:{folder}")])
        .output()
        .unwrap();
    if !out.status.success() {
        return Vec::new();
    }
    out.stdout
        .split(|&b| b == 0)
        .filter(|line| !line.is_empty())
        .map(|line| {
            let tab = line.iter().position(|&b| b == b'\t').unwrap();
            let meta = String::from_utf8(line[..tab].to_vec()).unwrap();
            let parts: Vec<&str> = meta.split(' ').collect();
            // ls-tree pads folder modes to 040000; trees store 40000.
            let mode = parts[0].trim_start_matches('0').to_string();
            entry(&mode, parts[2], &line[tab + 1..])
        })
        .collect()
}

/// Makes a commit on top of HEAD whose folder `folder` holds the entries `edit` leaves
/// (in the order it leaves them), every folder above it rebuilt by `git mktree`.
fn commit_with_folder(work: &Work, folder: &str, edit: impl FnOnce(&mut Vec<Entry>)) -> String {
    let head = work.head();
    let mut entries = ls_tree(work, &head, folder);
    edit(&mut entries);
    let mut id = write_raw_tree(work, &entries);
    let mut path: Vec<&str> = folder.split('/').filter(|p| !p.is_empty()).collect();
    while let Some(name) = path.pop() {
        let parent = path.join("/");
        let mut entries = ls_tree(work, &head, &parent);
        entries.retain(|e| e.name != name.as_bytes());
        entries.push(entry("40000", &id, name));
        git_order(&mut entries);
        let listing: Vec<u8> = entries
            .iter()
            .flat_map(|e| {
                let kind = if e.mode == "40000" { "tree" } else { "blob" };
                let mut line = format!("{} {kind} {}\t", e.mode, e.id).into_bytes();
                line.extend_from_slice(&e.name);
                line.push(0);
                line
            })
            .collect();
        id = git_with_input(work, &["mktree", "-z"], &listing);
    }
    git_with_input(
        work,
        &["commit-tree", &id, "-p", &head, "-m", "crafted"],
        b"",
    )
}

fn blob(work: &Work, content: &str) -> String {
    git_with_input(work, &["hash-object", "-w", "--stdin"], content.as_bytes())
}

fn push_commit(work: &Work, user: &str, commit: &str) -> Push {
    work.push_as(user, &format!("{commit}:refs/heads/main"))
}

/// A server without git's own object checks, with alice's deposit `zee` and bob, a
/// member with no rights on it.
fn archive() -> (Server, Work) {
    let server = Server::new();
    run_ok(git(&server.git_dir).args(["config", "receive.fsckObjects", "false"]));
    let work = server.clone("work");
    let access = std::fs::read_to_string(work.path.join("access.toml")).unwrap();
    work.write(
        "access.toml",
        access.replace("[people]\n", "[people]\nbob = \"bob@example.org\"\n"),
    )
    .write(
        &dep("zee", "deposit.json"),
        analysis("Z to ee", &["z"], ("Alice", "alice@example.org")),
    )
    .commit("Add zee");
    work.push().assert_landed();
    (server, work)
}

/// Asserts that `push` was refused with `message` about `path` in `commit`, and that
/// main did not move.
fn assert_refused(
    server: &Server,
    before: &Option<String>,
    push: &Push,
    commit: &str,
    path: &str,
    message: &str,
) {
    let line = format!("error: {} {path}: {message}", &commit[..7]);
    assert!(
        push.errors().iter().any(|e| e.starts_with(&line)),
        "expected a line starting with `{line}`:\n{}",
        push.output
    );
    assert!(!push.landed, "{}", push.output);
    assert_eq!(&server.rev("refs/heads/main"), before, "main must not move");
}

#[test]
fn a_deposit_folder_listed_twice_is_refused() {
    let (server, work) = archive();
    let before = server.rev("refs/heads/main");
    let shard = dep_dir("zee").rsplit_once('/').unwrap().0.to_string();
    // bob's forged copy of zee, with himself as the owner, next to the real one.
    let forged = analysis("Z to ee", &["z"], ("Bob", "bob@example.org"))
        .replace(r#"["alice"]"#, r#"["bob"]"#);
    let forged_folder = write_raw_tree(
        &work,
        &[entry("100644", &blob(&work, &forged), "deposit.json")],
    );
    for forged_first in [false, true] {
        let commit = commit_with_folder(&work, &shard, |entries| {
            let copy = entry("40000", &forged_folder, "zee");
            if forged_first {
                entries.insert(0, copy);
            } else {
                entries.push(copy);
            }
        });
        let push = push_commit(&work, "bob", &commit);
        assert_refused(
            &server,
            &before,
            &push,
            &commit,
            &dep_dir("zee"),
            "the folder lists `zee` twice, and git would check out only one of them",
        );
    }
    // The twin: alice changes her deposit once.
    work.write(
        &dep("zee", "deposit.json"),
        analysis("Z to ee, again", &["z"], ("Alice", "alice@example.org")),
    )
    .commit("Retitle zee");
    work.push().assert_landed();
}

#[test]
fn a_name_with_a_slash_is_refused() {
    let (server, work) = archive();
    let before = server.rev("refs/heads/main");
    let path = dep("zee", "notes.html");
    let notes = blob(&work, "<script>alert(1)</script>");
    let commit = commit_with_folder(&work, "", |entries| {
        entries.push(entry("100644", &notes, &path));
        git_order(entries);
    });
    let push = push_commit(&work, "bob", &commit);
    assert_refused(
        &server,
        &before,
        &push,
        &commit,
        &path,
        "a name cannot contain `/`: git would check it out into another folder",
    );
    // The twin: the owner adds the file where it belongs.
    work.write(&path, "<p>notes</p>").commit("Notes");
    work.push().assert_landed();
}

#[test]
fn names_git_windows_or_macos_take_for_something_else_are_refused() {
    let (server, work) = archive();
    let before = server.rev("refs/heads/main");
    let folder = dep_dir("zee");
    let file = blob(&work, "x");
    let empty = write_raw_tree(&work, &[entry("100644", &file, "inner.txt")]);
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "40000",
            "..",
            "..",
            "`..` cannot be a name (git refuses to check it out, and every later clone fails)",
        ),
        ("40000", ".", ".", "`.` cannot be a name"),
        ("40000", ".git", ".git", "`.git` is git's own folder"),
        ("100644", ".GIT", ".GIT", "`.GIT` is git's own folder"),
        (
            "40000",
            "git~1",
            "git~1",
            "`git~1` is git's own folder (`.git`, or a spelling Windows or macOS take for it)",
        ),
        (
            "100644",
            ".git::$INDEX_ALLOCATION",
            ".git::$INDEX_ALLOCATION",
            "`.git::$INDEX_ALLOCATION` is git's own folder",
        ),
        (
            "100644",
            ".g\u{200c}it",
            ".g\\u{200c}it",
            "`.g\\u{200c}it` is git's own folder",
        ),
        (
            "100644",
            ".gitmodules",
            ".gitmodules",
            "`.gitmodules` is git's list of submodules",
        ),
        (
            "100644",
            "notes\n.txt",
            "notes\\n.txt",
            "the name contains a control character",
        ),
    ];
    for (mode, name, shown, message) in cases {
        let id = if *mode == "40000" { &empty } else { &file };
        let commit = commit_with_folder(&work, &folder, |entries| {
            entries.push(entry(mode, id, name));
            git_order(entries);
        });
        let push = work.push_as("alice", &format!("{commit}:refs/heads/main"));
        assert_refused(
            &server,
            &before,
            &push,
            &commit,
            &format!("{folder}/{shown}"),
            message,
        );
        assert!(push.remote_lines().iter().all(|l| !l.contains(".txt\n")));
    }
    // The twins: ordinary names that look alike.
    for name in ["dotdot", ".gitignore", "git~2x", "notes.txt"] {
        let commit = commit_with_folder(&work, &folder, |entries| {
            entries.push(entry("100644", &file, name));
            git_order(entries);
        });
        push_commit(&work, "alice", &commit).assert_landed();
        run_ok(git(&work.path).args(["reset", "-q", "--hard", &commit]));
    }
}

#[test]
fn symlinks_and_submodules_are_refused_in_every_spelling() {
    let (server, work) = archive();
    let before = server.rev("refs/heads/main");
    let folder = dep_dir("zee");
    let target = blob(&work, "/etc/passwd");
    let cases = [
        (
            "120000",
            "symbolic links are not allowed in an archive (mode 120000)",
        ),
        (
            "120755",
            "symbolic links are not allowed in an archive (mode 120755)",
        ),
        (
            "160000",
            "submodules are not allowed in an archive (mode 160000)",
        ),
        (
            "160755",
            "submodules are not allowed in an archive (mode 160755)",
        ),
        ("100664", "mode 100664 is not one git writes"),
    ];
    for (mode, message) in cases {
        let commit = commit_with_folder(&work, &folder, |entries| {
            entries.push(entry(mode, &target, "data.csv"));
            git_order(entries);
        });
        let push = push_commit(&work, "alice", &commit);
        assert_refused(
            &server,
            &before,
            &push,
            &commit,
            &format!("{folder}/data.csv"),
            message,
        );
    }
    // The twins: a plain and an executable file.
    for mode in ["100644", "100755"] {
        let commit = commit_with_folder(&work, &folder, |entries| {
            entries.push(entry(mode, &target, format!("data-{mode}.csv")));
            git_order(entries);
        });
        push_commit(&work, "alice", &commit).assert_landed();
        run_ok(git(&work.path).args(["reset", "-q", "--hard", &commit]));
    }
}

#[test]
fn an_unsorted_tree_is_refused() {
    let (server, work) = archive();
    let before = server.rev("refs/heads/main");
    let folder = dep_dir("zee");
    let notes = blob(&work, "notes");
    let commit = commit_with_folder(&work, &folder, |entries| {
        entries.push(entry("100644", &notes, "a-notes.txt"));
    });
    let push = push_commit(&work, "alice", &commit);
    assert_refused(
        &server,
        &before,
        &push,
        &commit,
        &format!("{folder}/a-notes.txt"),
        "the folder's entries are not in git's order (`a-notes.txt` comes after `deposit.json`)",
    );
    // The twin: the same entries in git's order.
    let commit = commit_with_folder(&work, &folder, |entries| {
        entries.push(entry("100644", &notes, "a-notes.txt"));
        git_order(entries);
    });
    push_commit(&work, "alice", &commit).assert_landed();
}

#[test]
fn tags_of_blobs_and_trees_are_refused() {
    let (server, work) = archive();
    let settings = std::fs::read_to_string(work.path.join("capsule.toml")).unwrap();
    work.write(
        "capsule.toml",
        settings.replace("[policy]\n", "[policy]\ntags = \"members\"\n"),
    )
    .commit("Members may tag");
    work.push().assert_landed();
    let secret = blob(&work, "never judged");
    let tree = write_raw_tree(&work, &[entry("100644", &secret, "deposit.json")]);
    work.git(&["tag", "-a", "blob-tag", &secret, "-m", "a blob"]);
    work.git(&["tag", "-a", "tree-tag", &tree, "-m", "a tree"]);
    work.git(&["update-ref", "refs/tags/light-blob", &secret]);
    for (tag, kind) in [
        ("blob-tag", "blob"),
        ("tree-tag", "tree"),
        ("light-blob", "blob"),
    ] {
        let push = work.push_as("bob", &format!("refs/tags/{tag}"));
        let line = format!("error: refs/tags/{tag}: refs/tags/{tag} points at a {kind} ");
        assert!(
            push.errors()
                .iter()
                .any(|e| e.starts_with(&line) && e.contains("not a commit")),
            "expected `{line}`:\n{}",
            push.output
        );
        assert!(!push.landed);
        assert_eq!(server.rev(&format!("refs/tags/{tag}")), None);
    }
    // The twin: a tag of a commit.
    work.git(&["tag", "-a", "commit-tag", "-m", "a commit"]);
    work.push_as("bob", "refs/tags/commit-tag").assert_landed();
}

#[test]
fn with_receive_fsck_objects_git_itself_refuses_a_duplicate() {
    let (server, work) = archive();
    run_ok(git(&server.git_dir).args(["config", "receive.fsckObjects", "true"]));
    let before = server.rev("refs/heads/main");
    let shard = dep_dir("zee").rsplit_once('/').unwrap().0.to_string();
    let copy = ls_tree(&work, &work.head(), &shard);
    let commit = commit_with_folder(&work, &shard, |entries| entries.extend(copy));
    let push = push_commit(&work, "alice", &commit);
    push.assert_rejected_with("duplicateEntries");
    assert_eq!(server.rev("refs/heads/main"), before);
}

#[test]
fn validate_rev_reports_a_crafted_tree_as_the_hook_does() {
    let (_server, work) = archive();
    let folder = dep_dir("zee");
    let file = blob(&work, "x");
    let commit = commit_with_folder(&work, &folder, |entries| {
        entries.push(entry("120755", &file, "link"));
        git_order(entries);
    });
    let out = work.capsule(&["validate", "--rev", &commit]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!(
            "{folder}/link: symbolic links are not allowed in an archive (mode 120755)"
        )),
        "{}",
        stdout(&out)
    );
    // The same archive without the crafted commit is valid.
    let out = work.capsule(&["validate", "--rev", "HEAD"]);
    assert!(out.status.success(), "{}", stdout(&out));
}
