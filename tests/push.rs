//! The pre-receive hook, driven by real pushes with the real git client.

mod common;

use common::*;

fn server_with_docs_schema() -> (Server, Work) {
    let server = Server::new();
    let work = server.clone("work");
    work.write("schemas/cap-docs-example/0.0.1.json", CAP_DOCS_SCHEMA)
        .commit("Add the CAP documentation schema");
    work.push().assert_landed();
    (server, work)
}

#[test]
fn a_valid_push_lands_with_one_summary_line() {
    let (server, work) = server_with_docs_schema();
    work.write(&dep("zee", "deposit.json"), ZEE)
        .write(&dep("higgs-4l", "deposit.json"), HIGGS)
        .commit("Add two analyses");
    let push = work.push();
    push.assert_landed();
    assert_eq!(
        push.remote_lines(),
        ["capsule: ok: 1 commit, 2 deposits and 0 schemas checked"]
    );
    assert_eq!(server.rev("refs/heads/main").unwrap(), work.head());
}

#[test]
fn a_deposit_that_breaks_its_schema_is_refused_with_location_and_titles() {
    let (server, work) = server_with_docs_schema();
    let before = server.rev("refs/heads/main");
    work.write(&dep("w-mass", "deposit.json"), MISTAKE)
        .commit("Add W mass");
    let commit = work.head()[..7].to_string();
    let push = work.push();
    push.assert_rejected_with("pre-receive hook declined");
    let errors = push.errors();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_eq!(
        errors[0],
        format!("error: {commit} {}:6:15: /basic_info/status (Basic Information › Status): \"finished\" is not one of the allowed values: \"planned\", \"in progress\", \"under review\", \"published\", \"superseded\"", dep("w-mass", "deposit.json"))
    );
    assert!(
        errors[1].contains(&format!(
            "{}:9:37: /basic_info/people_info/1/email (Basic Information › People #2 › E-mail)",
            dep("w-mass", "deposit.json")
        )),
        "{}",
        errors[1]
    );
    assert!(push
        .remote_lines()
        .last()
        .unwrap()
        .starts_with("capsule: push rejected: 2 problems in 1 commit of 1 commit"));
    assert_eq!(
        server.rev("refs/heads/main"),
        before,
        "the ref must not move"
    );
}

#[test]
fn drafts_may_be_incomplete_but_not_wrong() {
    let (_server, work) = server_with_docs_schema();
    // No analysis_name: fine for a draft (its schema marks it `"required": true`).
    work.write(
        &dep("zee", "deposit.json"),
        r#"{"$schema": "cap-docs-example/0.0.1", "basic_info": {"status": "draft"}}"#,
    )
    .commit("Start Z -> ee");
    work.push().assert_landed();
    // A wrong type is never fine.
    work.write(
        &dep("zee", "deposit.json"),
        r#"{"$schema": "cap-docs-example/0.0.1", "basic_info": {"analysis_name": 42}}"#,
    )
    .commit("Oops");
    work.push()
        .assert_rejected_with("/basic_info/analysis_name (Basic Information › Analysis Name): must be a string, not a number");
}

#[test]
fn broken_json_and_bytes_are_refused_with_positions() {
    let (server, work) = server_with_docs_schema();
    let before = server.rev("refs/heads/main");
    work.write(
        &dep("a", "deposit.json"),
        "{\n  \"$schema\": \"analysis/1.0.0\",\n  \"general_title\": \"x\",,\n}\n",
    )
    .commit("Broken JSON");
    work.push().assert_rejected_with(&format!(
        "{}:3:24: invalid JSON: key must be a string",
        dep("a", "deposit.json")
    ));
    work.git(&["reset", "-q", "--hard", "HEAD~1"]);

    work.write(
        &dep("b", "deposit.json"),
        b"{\"general_title\": \"caf\xe9\"}".as_slice(),
    )
    .commit("Latin-1");
    work.push().assert_rejected_with(&format!(
        "{}:1:23: the file is not valid UTF-8 (byte 0xe9 at offset 22)",
        dep("b", "deposit.json")
    ));
    assert_eq!(server.rev("refs/heads/main"), before);
}

#[test]
fn layout_ids_and_schema_names_are_enforced() {
    let (_server, work) = server_with_docs_schema();
    let cases: &[(&str, &str)] = &[
        (
            "deposits/stray.json",
            "files directly under deposits/ are not allowed",
        ),
        (
            "deposits/-bad/deposit.json",
            "must start with a letter or a digit",
        ),
        (
            &dep("a..b", "deposit.json"),
            "cannot be used in a git ref name",
        ),
        (
            "schemas/analysis/latest.json",
            "`latest` is not a schema version",
        ),
    ];
    for (path, message) in cases {
        work.write(path, ZEE).commit(path);
        work.push().assert_rejected_with(message);
        work.git(&["reset", "-q", "--hard", "HEAD~1"]);
    }
}

#[test]
fn missing_and_unknown_schemas_are_refused() {
    let (_server, work) = server_with_docs_schema();
    work.write(
        &dep("a", "deposit.json"),
        r#"{"general_title": "no schema"}"#,
    )
    .commit("a");
    work.push().assert_rejected_with(&format!(
        "{}:1:1: the deposit has no `$schema`",
        dep("a", "deposit.json")
    ));
    work.git(&["reset", "-q", "--hard", "HEAD~1"]);

    work.write(
        &dep("a", "deposit.json"),
        r#"{"$schema": "analysis/9.9.9"}"#,
    )
    .commit("a");
    work.push().assert_rejected_with(
        "/$schema: unknown schema version analysis/9.9.9: the archive has analysis version(s) 1.0.0",
    );
    work.git(&["reset", "-q", "--hard", "HEAD~1"]);

    work.write(
        &dep("a", "deposit.json"),
        r#"{"$schema": "nothing-v1.0.0"}"#,
    )
    .commit("a");
    work.push().assert_rejected_with(
        "unknown schema nothing/1.0.0: there is no schemas/nothing/1.0.0.json",
    );
}

#[test]
fn schemas_that_do_not_compile_are_refused_with_pointers() {
    let (_server, work) = server_with_docs_schema();
    work.write(
        "schemas/bad/1.0.0.json",
        "{\n  \"type\": \"object\",\n  \"properties\": {\n    \"a\": {\"type\": \"strnig\"}\n  }\n}\n",
    )
    .commit("A schema with a typo");
    work.push().assert_rejected_with(
        "schemas/bad/1.0.0.json:4:19: /properties/a/type: this is not a valid JSON Schema",
    );
    work.git(&["reset", "-q", "--hard", "HEAD~1"]);

    work.write(
        "schemas/bad/1.0.0.json",
        r#"{"properties": {"a": {"$ref": "missing/2.0.0"}}}"#,
    )
    .commit("A schema with a broken reference");
    work.push().assert_rejected_with(
        "/properties/a/$ref: `$ref` names schema missing/2.0.0, which this archive does not have",
    );
}

#[test]
fn published_schema_versions_never_change_and_used_ones_stay() {
    let (server, work) = server_with_docs_schema();
    work.write(&dep("zee", "deposit.json"), ZEE).commit("Z");
    work.push().assert_landed();
    let before = server.rev("refs/heads/main");

    let changed = CAP_DOCS_SCHEMA.replace("Analysis Name", "Name of the analysis");
    work.write("schemas/cap-docs-example/0.0.1.json", changed)
        .commit("Retitle");
    work.push()
        .assert_rejected_with("schema cap-docs-example/0.0.1 is published and can never change");
    work.git(&["reset", "-q", "--hard", "HEAD~1"]);

    work.remove("schemas/cap-docs-example/0.0.1.json")
        .commit("Delete");
    work.push().assert_rejected_with(
        "schema cap-docs-example/0.0.1 cannot be deleted: 1 deposit(s) use it (zee)",
    );
    assert_eq!(server.rev("refs/heads/main"), before);
    work.git(&["reset", "-q", "--hard", "HEAD~1"]);

    // A new version is the way to change a schema, and may be fixed before it lands.
    work.write("schemas/cap-docs-example/0.0.2.json", CAP_DOCS_SCHEMA)
        .commit("New version");
    work.write(
        "schemas/cap-docs-example/0.0.2.json",
        CAP_DOCS_SCHEMA.replace("Status", "State"),
    )
    .commit("Fix it before pushing");
    work.push().assert_landed();
}

#[test]
fn large_files_symlinks_and_broken_settings_are_refused() {
    let (_server, work) = server_with_docs_schema();
    let settings = std::fs::read_to_string(work.path.join("capsule.toml")).unwrap();
    work.write(
        "capsule.toml",
        settings.replace("max_file_bytes = 20971520", "max_file_bytes = 1000"),
    )
    .commit("Small files only");
    work.push().assert_landed();

    work.write(&dep("zee", "big.bin"), vec![b'x'; 1001])
        .commit("Big");
    work.push().assert_rejected_with(&format!(
        "{}: the file is 1001 bytes; the archive's limit is 1000 bytes",
        dep("zee", "big.bin")
    ));
    work.git(&["reset", "-q", "--hard", "HEAD~1"]);

    std::os::unix::fs::symlink("/etc/passwd", work.path.join("link")).unwrap();
    work.commit("Link");
    work.push()
        .assert_rejected_with("link: symbolic links are not allowed");
    work.git(&["reset", "-q", "--hard", "HEAD~1"]);

    work.write("capsule.toml", "[policy]\nmax_file_byte = 3\n")
        .commit("Typo");
    work.push()
        .assert_rejected_with("capsule.toml:2:1: unknown field `max_file_byte`");
}

#[test]
fn only_the_bad_commit_of_several_is_named() {
    let (server, work) = server_with_docs_schema();
    let before = server.rev("refs/heads/main");
    work.write(&dep("a", "deposit.json"), ZEE).commit("good 1");
    work.write(&dep("w", "deposit.json"), MISTAKE).commit("bad");
    let bad = work.head()[..7].to_string();
    work.remove(&dep_dir("w"))
        .commit("good 2 (removes the bad deposit again)");
    let push = work.push();
    push.assert_rejected_with("in 1 commit of 3 commits");
    assert!(
        push.errors()
            .iter()
            .all(|e| e.starts_with(&format!("error: {bad} "))),
        "{:#?}",
        push.errors()
    );
    assert_eq!(server.rev("refs/heads/main"), before);
}

#[test]
fn a_new_branch_from_an_old_commit_costs_only_its_new_commits() {
    let (server, work) = server_with_docs_schema();
    for i in 0..5 {
        work.write(&dep(&format!("d{i}"), "deposit.json"), ZEE)
            .commit(&format!("d{i}"));
    }
    work.push().assert_landed();
    let first = stdout(&work.git(&["rev-list", "--max-parents=0", "HEAD"]))
        .trim()
        .to_string();
    work.git(&["checkout", "-q", "-b", "old", &first]);
    work.write(&dep("x", "deposit.json"), HIGGS)
        .commit("x on an old base");
    let push = work.push_as("alice", "HEAD:refs/heads/old");
    push.assert_landed();
    assert_eq!(
        push.remote_lines(),
        ["capsule: ok: 1 commit, 1 deposit and 0 schemas checked"]
    );
    assert!(server.rev("refs/heads/old").is_some());
}

/// A wrong deposit is refused; once it is taken back, a right one lands.
fn refused_then_landed(work: &Work) {
    work.write(&dep("w", "deposit.json"), MISTAKE).commit("bad");
    work.push()
        .assert_rejected_with("is not one of the allowed values");
    work.git(&["reset", "-q", "--hard", "HEAD~1"]);
    work.write(&dep("h", "deposit.json"), HIGGS).commit("good");
    work.push().assert_landed();
}

#[test]
fn a_repository_path_with_a_colon_works() {
    let server = Server::named("with:colon.git");
    let work = server.clone("work");
    refused_then_landed(&work);
}

/// Builds `count` commits on top of HEAD with `git fast-import`, each adding one deposit.
fn fast_import_commits(work: &Work, count: usize, deposit: impl Fn(usize) -> String) {
    let head = work.head();
    let mut stream = String::new();
    for i in 0..count {
        let message = format!("commit {i}");
        let body = deposit(i);
        stream.push_str(&format!(
            "commit refs/heads/main\ncommitter Alice <alice@example.org> {} +0000\ndata {}\n{}\n",
            1_700_000_000 + i,
            message.len(),
            message
        ));
        if i == 0 {
            stream.push_str(&format!("from {head}\n"));
        }
        stream.push_str(&format!(
            "M 100644 inline {}\ndata {}\n{}\n",
            dep(&format!("d{i:05}"), "deposit.json"),
            body.len(),
            body
        ));
    }
    use std::io::Write;
    let mut child = git(&work.path)
        .args(["fast-import", "--quiet", "--force"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stream.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    work.git(&["reset", "-q", "--hard", "main"]);
}

#[test]
fn a_push_of_a_thousand_commits() {
    let (server, work) = server_with_docs_schema();
    fast_import_commits(&work, 1000, |i| {
        ZEE.replace("Z -> ee", &format!("Z -> ee {i}"))
    });
    let push = work.push();
    push.assert_landed();
    assert_eq!(
        push.remote_lines(),
        ["capsule: ok: 1000 commits, 1000 deposits and 0 schemas checked"]
    );
    assert_eq!(server.rev("refs/heads/main").unwrap(), work.head());
}

#[test]
fn a_push_adding_five_thousand_deposits_in_one_commit() {
    let (_server, work) = server_with_docs_schema();
    for i in 0..5000 {
        work.write(
            &dep(&format!("a{i:05}"), "deposit.json"),
            HIGGS.replace("alice", &format!("user{}", i % 7)),
        );
    }
    // One of them is wrong: the push is refused and names exactly that one.
    work.write(&dep("a04711", "deposit.json"), MISTAKE);
    work.commit("5000 deposits");
    let push = work.push();
    push.assert_rejected_with("2 problems in 1 commit of 1 commit");
    assert!(push
        .errors()
        .iter()
        .all(|e| e.contains(&dep("a04711", "deposit.json"))));
    // Every commit is a version, so the fix replaces the bad commit.
    work.write(&dep("a04711", "deposit.json"), HIGGS);
    work.git(&["add", "-A"]);
    work.git(&["commit", "-q", "--amend", "-m", "5000 deposits"]);
    let push = work.push();
    push.assert_landed();
    assert_eq!(
        push.remote_lines(),
        ["capsule: ok: 1 commit, 5000 deposits and 0 schemas checked"]
    );
}

#[test]
fn pushes_over_git_daemon_on_loopback_are_checked() {
    let server = Server::new();
    let daemon = Daemon::start_writable(server.tmp.path(), "server.git");
    let work_path = server.tmp.path().join("net");
    run_ok(
        git(server.tmp.path())
            .args(["clone", "--quiet", &daemon.url("server.git")])
            .arg(&work_path),
    );
    let work = Work { path: work_path };
    refused_then_landed(&work);
    assert_eq!(server.rev("refs/heads/main").unwrap(), work.head());
}

#[test]
fn the_hook_fails_closed_on_internal_errors() {
    let server = Server::new();
    let work = server.clone("work");
    // The default branch names a commit the repository does not have: the hook cannot
    // read the archive's rules, so it must refuse rather than guess.
    std::fs::write(
        server.git_dir.join("refs/heads/trunk"),
        format!("{}\n", "1".repeat(40)),
    )
    .unwrap();
    run_ok(git(&server.git_dir).args(["symbolic-ref", "HEAD", "refs/heads/trunk"]));
    work.write(&dep("h", "deposit.json"), HIGGS).commit("good");
    let before = server.rev("refs/heads/main");
    let push = work.push();
    push.assert_rejected_with("capsule could not check this push");
    push.assert_rejected_with("push rejected (capsule fails closed)");
    assert_eq!(server.rev("refs/heads/main"), before);
}

#[test]
fn a_deleted_schema_version_cannot_come_back_with_other_content() {
    let (_server, work) = server_with_docs_schema();
    work.remove("schemas/cap-docs-example/0.0.1.json")
        .commit("Delete an unused schema");
    work.push()
        .assert_rejected_with("schema cap-docs-example/0.0.1 is published and cannot be deleted");
    work.git(&["reset", "-q", "--hard", "HEAD~1"]);
    // Re-adding in one commit what another commit removed is still a change.
    work.remove("schemas/cap-docs-example/0.0.1.json")
        .commit("Delete");
    work.write(
        "schemas/cap-docs-example/0.0.1.json",
        CAP_DOCS_SCHEMA.replace("Status", "State"),
    )
    .commit("Re-add");
    work.push()
        .assert_rejected_with("was published with other content and can never change");
}

#[test]
fn deposit_files_need_their_metadata() {
    let (_server, work) = server_with_docs_schema();
    work.write(&dep("x", "plot.txt"), "a plot")
        .commit("Orphan file");
    work.push()
        .assert_rejected_with(&format!("{}/ has files but no deposit.json", dep_dir("x")));
    work.git(&["reset", "-q", "--hard", "HEAD~1"]);
    work.write(&dep("x", "deposit.json"), ZEE)
        .write(&dep("x", "plot.txt"), "a plot")
        .commit("Deposit with a file");
    work.push().assert_landed();
    work.remove(&dep("x", "deposit.json"))
        .commit("Drop metadata only");
    work.push().assert_rejected_with(&format!(
        "deposit.json was deleted but {}/ still has files",
        dep_dir("x")
    ));
}

#[test]
fn a_refused_schema_points_to_schema_check_and_hook_status_knows_a_clone() {
    let (_server, work) = server_with_docs_schema();
    // A schema whose notification config is broken, used by no deposit.
    let broken = r#"{"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
  "config": {"notifications": {"actions": {"publish": [{"recipients": {"recipients": [1]}}]}}}}"#;
    work.write("schemas/broken/1.0.0.json", broken)
        .commit("broken config");
    work.push()
        .assert_rejected_with("Fix them (`capsule schema check` shows the same) and push again.");

    // `hook status` in a clone explains where the hooks that judge pushes live.
    let out = capsule(&work.path)
        .args(["hook", "status", "."])
        .output()
        .unwrap();
    assert!(
        stderr(&out).contains("is a clone, not a server repository"),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("is not a git repository"),
        "{}",
        stderr(&out)
    );
}
