//! Who may change what, publishing, reviews and history — through real pushes with
//! different pushers, each refusal leaving the refs untouched and saying why.

mod common;

use common::*;

const PEOPLE: &str = r#"[people]
alice = "alice@example.org"
bob = "bob@example.org"
carol = "carol@example.org"
dave = "dave@example.org"

[groups]
physics-reviewers = ["carol"]
"#;

/// A server where alice is the archive admin, the deposit `higgs` is owned by alice,
/// bob may update it and dave may only read it; carol reviews through a group.
fn archive() -> (Server, Work) {
    let server = Server::new();
    let work = server.clone("work");
    let settings = std::fs::read_to_string(work.path.join("capsule.toml")).unwrap();
    let settings = settings.replace(
        "protected_branches = [\"main\"]",
        "protected_branches = [\"main\"]\nreviewers = [\"physics-reviewers\"]",
    );
    let mut deposit: serde_json::Value = serde_json::from_str(HIGGS).unwrap();
    deposit["_access"] = serde_json::json!({
        "deposit-read": {"users": ["dave"], "roles": []},
        "deposit-update": {"users": ["bob@example.org"], "roles": []},
        "deposit-admin": {"users": [], "roles": []}
    });
    work.write("capsule.toml", settings)
        .write("access.toml", PEOPLE)
        .write(&dep("higgs", "deposit.json"), pretty(&deposit))
        .commit("people, reviewers and the higgs analysis");
    work.push().assert_landed();
    (server, work)
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap() + "\n"
}

fn higgs(work: &Work) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(work.path.join(dep("higgs", "deposit.json"))).unwrap())
        .unwrap()
}

fn edit_higgs(work: &Work, change: impl FnOnce(&mut serde_json::Value)) {
    let mut value = higgs(work);
    change(&mut value);
    work.write(&dep("higgs", "deposit.json"), pretty(&value));
}

/// Pushes as `user`, asserting the push was refused with `needle` and that `main`
/// did not move; then drops the attempted commit.
fn refused(server: &Server, work: &Work, user: &str, needle: &str) {
    let before = server.rev("refs/heads/main");
    work.push_as(user, "HEAD:main").assert_rejected_with(needle);
    assert_eq!(server.rev("refs/heads/main"), before, "main moved");
    work.git(&["reset", "--quiet", "--hard", "origin/main"]);
}

#[test]
fn the_pusher_comes_from_each_hosting_servers_variable() {
    let (server, work) = archive();
    for (i, var) in [
        "GL_USERNAME",
        "GITEA_PUSHER_NAME",
        "GL_USER",
        "REMOTE_USER",
        "CAPSULE_USER",
    ]
    .iter()
    .enumerate()
    {
        edit_higgs(&work, |d| d["general_title"] = format!("Title {i}").into());
        work.commit(&format!("bob's edit via {var}"));
        work.push_with(Some((var, "bob")), "HEAD:main")
            .assert_landed();
        // dave may only read: the same variable names him and he is refused.
        edit_higgs(&work, |d| d["general_title"] = format!("Dave {i}").into());
        work.commit("dave's edit");
        let before = server.rev("refs/heads/main");
        work.push_with(Some((var, "dave")), "HEAD:main")
            .assert_rejected_with("dave may not change deposit higgs on main");
        assert_eq!(server.rev("refs/heads/main"), before);
        work.git(&["reset", "--quiet", "--hard", "origin/main"]);
    }
}

#[test]
fn unknown_and_anonymous_pushers_are_refused() {
    let (server, work) = archive();
    edit_higgs(&work, |d| d["general_title"] = "x".into());
    work.commit("anonymous");
    let before = server.rev("refs/heads/main");
    work.push_with(None, "HEAD:main")
        .assert_rejected_with("the server did not say who is pushing");
    work.push_as("eve", "HEAD:main").assert_rejected_with(
        "eve may not push to this archive: only people listed in access.toml [people] may push. Ask an archive admin (alice)",
    );
    assert_eq!(server.rev("refs/heads/main"), before);
}

#[test]
fn anonymous_pushes_follow_capsule_toml() {
    let server = Server::new();
    let work = server.clone("work");
    let settings = std::fs::read_to_string(work.path.join("capsule.toml")).unwrap();
    work.write(
        "capsule.toml",
        settings.replace("allow_anonymous = false", "allow_anonymous = true"),
    )
    .commit("allow anonymous pushes");
    work.push().assert_landed();
    let mut deposit: serde_json::Value = serde_json::from_str(HIGGS).unwrap();
    deposit["_deposit"]["owners"] = serde_json::json!([]);
    deposit["_access"]["deposit-admin"]["users"] = serde_json::json!([]);
    // Anonymous pushers are let in, but own nothing: creating needs an owner who pushes.
    work.write(&dep("anon", "deposit.json"), pretty(&deposit))
        .commit("anonymous deposit");
    work.push_with(None, "HEAD:main")
        .assert_rejected_with("an anonymous pusher may not create deposit anon");
}

#[test]
fn creating_updating_and_changing_access_need_their_rights() {
    let (server, work) = archive();

    // Create: the creator must be an owner.
    let mut mine: serde_json::Value = serde_json::from_str(HIGGS).unwrap();
    mine["_deposit"]["owners"] = serde_json::json!(["bob"]);
    mine["_access"]["deposit-admin"]["users"] = serde_json::json!([]);
    work.write(&dep("bobs", "deposit.json"), pretty(&mine))
        .commit("bob's analysis");
    work.push_as("bob", "HEAD:main").assert_landed();
    mine["_deposit"]["owners"] = serde_json::json!(["alice"]);
    work.write(&dep("not-mine", "deposit.json"), pretty(&mine))
        .commit("for alice");
    refused(&server, &work, "bob", "bob may not create deposit not-mine on main: a new deposit must name its creator among its owners");

    // Update: bob holds deposit-update (by e-mail), dave only deposit-read.
    edit_higgs(&work, |d| d["general_title"] = "Better title".into());
    work.commit("bob improves the title");
    work.push_as("bob", "HEAD:main").assert_landed();
    edit_higgs(&work, |d| d["general_title"] = "Dave's title".into());
    work.commit("dave tries");
    refused(&server, &work, "dave", "dave may not change deposit higgs on main: changing a deposit needs deposit-update or deposit-admin in its _access, and dave holds only deposit-read. Ask one of its admins (alice)");
    // A file of the deposit counts as the deposit.
    work.write(&dep("higgs", "notes.txt"), "dave was here")
        .commit("dave adds a file");
    refused(&server, &work, "dave", "dave may not change deposit higgs");

    // Access: only deposit admins (owners) change _access and _deposit.
    edit_higgs(&work, |d| {
        d["_access"]["deposit-admin"]["users"] = serde_json::json!(["bob"])
    });
    work.commit("bob makes himself admin");
    refused(
        &server,
        &work,
        "bob",
        "bob may not change _access or _deposit of higgs on main",
    );
    edit_higgs(&work, |d| {
        d["_deposit"]["owners"] = serde_json::json!(["alice", "bob"])
    });
    work.commit("bob makes himself owner");
    refused(
        &server,
        &work,
        "bob",
        "bob may not change _access or _deposit of higgs",
    );

    // Rights come from before the push: granting and using in one push fails.
    edit_higgs(&work, |d| {
        d["_access"]["deposit-update"]["users"] = serde_json::json!(["bob@example.org", "dave"])
    });
    work.commit("dave grants himself update");
    edit_higgs(&work, |d| d["general_title"] = "Dave again".into());
    work.commit("dave uses it");
    refused(
        &server,
        &work,
        "dave",
        "dave may not change _access or _deposit of higgs",
    );

    // The owner may change access; then dave's edit lands.
    edit_higgs(&work, |d| {
        d["_access"]["deposit-update"]["users"] = serde_json::json!(["bob@example.org", "dave"])
    });
    work.commit("alice lets dave edit");
    work.push_as("alice", "HEAD:main").assert_landed();
    edit_higgs(&work, |d| d["general_title"] = "Dave's title".into());
    work.commit("dave edits");
    work.push_as("dave", "HEAD:main").assert_landed();

    // Deleting a deposit needs deposit-admin.
    work.remove(&dep_dir("higgs")).commit("bob deletes higgs");
    refused(
        &server,
        &work,
        "bob",
        "bob may not delete deposit higgs on main: deleting a deposit needs deposit-admin",
    );
}

#[test]
fn only_archive_admins_change_schemas_and_settings() {
    let (server, work) = archive();
    let settings = std::fs::read_to_string(work.path.join("capsule.toml")).unwrap();
    work.write(
        "capsule.toml",
        settings.replace("max_file_bytes = 20971520", "max_file_bytes = 1"),
    )
    .commit("bob changes the policy");
    refused(&server, &work, "bob", "bob may not change capsule.toml on main: only archive admins (policy.admins in capsule.toml) may change");
    work.write(
        "access.toml",
        PEOPLE.replace("[\"carol\"]", "[\"carol\", \"bob\"]"),
    )
    .commit("bob joins the reviewers");
    refused(
        &server,
        &work,
        "bob",
        "bob may not change access.toml on main",
    );
    work.write("schemas/mine/1.0.0.json", r#"{"type": "object"}"#)
        .commit("bob adds a schema");
    refused(
        &server,
        &work,
        "bob",
        "bob may not change schemas/mine/1.0.0.json on main",
    );
    work.write("schemas/mine/1.0.0.json", r#"{"type": "object"}"#)
        .commit("alice adds a schema");
    work.push_as("alice", "HEAD:main").assert_landed();
}

#[test]
fn protected_branches_are_never_deleted_or_rewritten() {
    let (server, work) = archive();
    let main = server.rev("refs/heads/main");
    edit_higgs(&work, |d| d["general_title"] = "rewritten".into());
    work.git(&[
        "commit",
        "--quiet",
        "-a",
        "--amend",
        "-m",
        "rewrite history",
    ]);
    work.push_as("alice", "+HEAD:main")
        .assert_rejected_with("alice may not force-push branch main: it is protected");
    work.push_as("alice", ":main")
        .assert_rejected_with("alice may not delete branch main: it is protected");
    assert_eq!(server.rev("refs/heads/main"), main);
    // Other branches may be rewritten and deleted.
    work.push_as("alice", "HEAD:topic").assert_landed();
    work.git(&["commit", "--quiet", "--amend", "-m", "again"]);
    work.push_as("alice", "+HEAD:topic").assert_landed();
    work.push_as("alice", ":topic").assert_landed();
    assert_eq!(server.rev("refs/heads/topic"), None);
}

#[test]
fn other_tags_are_for_admins() {
    let (server, work) = archive();
    work.git(&["tag", "-a", "snapshot-2026", "-m", "snapshot"]);
    work.push_as("bob", "refs/tags/snapshot-2026")
        .assert_rejected_with("bob may not create the tag snapshot-2026: tags other than record tags are reserved for archive admins");
    assert_eq!(server.rev("refs/tags/snapshot-2026"), None);
    work.push_as("alice", "refs/tags/snapshot-2026")
        .assert_landed();
}

fn publish(work: &Work, user: &str, id: &str) -> std::process::Output {
    work.capsule_as(user, &["publish", id, "--push", "-m", "publish"])
}

#[test]
fn publishing_makes_immutable_numbered_records() {
    let (server, work) = archive();

    // bob may update but not publish; the local tag is removed again.
    let out = publish(&work, "bob", "higgs");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("bob may not publish higgs: publishing needs deposit-admin"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("it was not published, and the local tag was removed"),
        "{}",
        stderr(&out)
    );
    assert_eq!(server.rev("refs/tags/records/higgs/v1"), None);

    // alice, the owner, publishes v1.
    let out = publish(&work, "alice", "higgs");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Published records/higgs/v1"),
        "{}",
        stdout(&out)
    );
    let v1 = server
        .rev("refs/tags/records/higgs/v1^{commit}")
        .expect("v1 landed");

    // Publishing the same commit again is refused locally.
    let out = publish(&work, "alice", "higgs");
    assert!(
        stderr(&out).contains("v1 of higgs already is commit"),
        "{}",
        stderr(&out)
    );

    // A record tag is never moved, re-pointed or deleted, even by an admin.
    edit_higgs(&work, |d| d["general_title"] = "Second".into());
    work.commit("second version");
    work.push().assert_landed();
    work.git(&["tag", "-f", "-a", "records/higgs/v1", "-m", "moved"]);
    work.push_as("alice", "+refs/tags/records/higgs/v1")
        .assert_rejected_with(
            "alice may not move the record tag records/higgs/v1: published versions are immutable",
        );
    work.push_as("alice", ":refs/tags/records/higgs/v1")
        .assert_rejected_with("alice may not delete the record tag records/higgs/v1");
    assert_eq!(
        server.rev("refs/tags/records/higgs/v1^{commit}").as_deref(),
        Some(v1.as_str())
    );
    work.git(&["tag", "-d", "records/higgs/v1"]);
    work.git(&[
        "fetch",
        "--quiet",
        "origin",
        "refs/tags/records/higgs/v1:refs/tags/records/higgs/v1",
    ]);

    // Versions have no gaps, and record tags are annotated.
    work.git(&["tag", "-a", "records/higgs/v3", "-m", "skip"]);
    work.push_as("alice", "refs/tags/records/higgs/v3").assert_rejected_with(
        "records/higgs/v3 is out of order: the latest version of higgs is v1, so the next record tag is records/higgs/v2",
    );
    work.git(&["tag", "-d", "records/higgs/v3"]);
    work.git(&["tag", "records/higgs/v2"]);
    work.push_as("alice", "refs/tags/records/higgs/v2")
        .assert_rejected_with(
            "records/higgs/v2 is a lightweight tag: record tags must be annotated",
        );
    work.git(&["tag", "-d", "records/higgs/v2"]);
    assert_eq!(server.rev("refs/tags/records/higgs/v2"), None);

    // A record must be complete: the hook enforces `required` on the tagged commit.
    edit_higgs(&work, |d| {
        d["basic_info"]
            .as_object_mut()
            .unwrap()
            .remove("analysis_name");
    });
    work.commit("incomplete draft");
    work.push().assert_landed();
    work.git(&["tag", "-a", "records/higgs/v2", "-m", "incomplete"]);
    work.push_as("alice", "refs/tags/records/higgs/v2")
        .assert_rejected_with("/basic_info/analysis_name (Basic Information › Analysis Name): required field `analysis_name` is missing (needed to publish records/higgs/v2)")
        // The hint names the command that shows the same: publishing rules, not drafts.
        .assert_rejected_with("Fix them (`capsule validate --publish higgs` shows the same) and push again.");
    assert_eq!(server.rev("refs/tags/records/higgs/v2"), None);
    work.git(&["tag", "-d", "records/higgs/v2"]);

    // A tag on a commit without the deposit is refused.
    work.git(&["tag", "-a", "records/other/v1", "-m", "nothing", "HEAD"]);
    work.push_as("alice", "refs/tags/records/other/v1")
        .assert_rejected_with(&format!("which has no {}", dep("other", "deposit.json")));
}

#[test]
fn reviews_are_append_only_and_need_the_review_right() {
    let (server, work) = archive();
    let review_as = |user: &str, args: &[&str]| {
        let mut all = vec!["review", "higgs"];
        all.extend_from_slice(args);
        let out = work.capsule_as(user, &all);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
            .lines()
            .find_map(|l| l.strip_prefix("Committed "))
            .unwrap()
            .to_string()
    };

    // carol reviews through the physics-reviewers group named in policy.reviewers.
    let path = review_as(
        "carol",
        &[
            "--type",
            "request_changes",
            "-m",
            "Add the systematics table",
        ],
    );
    work.push_as("carol", "HEAD:main").assert_landed();
    let review = path
        .rsplit('/')
        .next()
        .unwrap()
        .trim_end_matches(".json")
        .to_string();

    // bob (deposit-update) may comment; dave (read only) may not review or comment.
    review_as("bob", &["--comment", &review, "-m", "Added in v2"]);
    work.push_as("bob", "HEAD:main").assert_landed();
    review_as("dave", &["--type", "approved", "-m", "fine by me"]);
    refused(&server, &work, "dave", "dave may not review deposit higgs: reviewing needs deposit-admin on the deposit, or membership of a group named in policy.reviewers");
    review_as("dave", &["--comment", &review, "-m", "me too"]);
    refused(
        &server,
        &work,
        "dave",
        "dave may not comment on a review of deposit higgs",
    );

    // A review is signed by whoever pushes it.
    review_as("carol", &["--type", "approved", "-m", "forged"]);
    refused(
        &server,
        &work,
        "bob",
        "the review names `carol` as its author, but bob is pushing it",
    );

    // carol resolves her own review.
    review_as("carol", &["--resolve", &review]);
    work.push_as("carol", "HEAD:main").assert_landed();

    // Reviews are never edited or deleted, not even by the archive admin.
    work.write(&path, "{}").commit("edit a review");
    refused(
        &server,
        &work,
        "alice",
        "alice may not edit the review file",
    );
    work.remove(&path).commit("delete a review");
    refused(
        &server,
        &work,
        "alice",
        "alice may not delete the review file",
    );

    // Schemas without config.reviewable accept no reviews.
    work.write(&dep("zee", "deposit.json"), ZEE)
        .write("schemas/cap-docs-example/0.0.1.json", CAP_DOCS_SCHEMA);
    let zee_review = r#"{"kind": "review", "type": "approved", "body": "ok", "author": "alice", "created": "2026-11-22T10:00:00Z"}"#;
    work.write(
        &dep("zee", "reviews/20261122T100000Z-alice-review.json"),
        zee_review,
    )
    .commit("review zee");
    refused(&server, &work, "alice", "deposit zee cannot be reviewed: its schema cap-docs-example/0.0.1 does not set config.reviewable = true");
}

#[test]
fn versions_read_back_with_log_show_and_diff() {
    let (server, work) = archive();
    for (i, title) in ["First", "Second", "Third"].iter().enumerate() {
        edit_higgs(&work, |d| {
            d["general_title"] = (*title).into();
            d["basic_info"]["keywords"] = serde_json::json!(["Higgs", format!("k{i}")]);
        });
        work.commit(&format!("{title} version"));
        work.push().assert_landed();
        let out = publish(&work, "alice", "higgs");
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert!(server.rev("refs/tags/records/higgs/v3").is_some());

    let out = work.capsule(&["log", "higgs", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let log: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let records: Vec<&serde_json::Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| !v["records"].as_array().unwrap().is_empty())
        .collect();
    assert_eq!(records.len(), 3, "{log:#}");
    assert_eq!(records[0]["records"], serde_json::json!([3]));
    assert_eq!(records[0]["message"], "Third version");
    assert_eq!(
        log.as_array().unwrap().len(),
        4,
        "three versions and the first commit: {log:#}"
    );

    let out = work.capsule(&["show", "higgs@v1"]);
    let text = stdout(&out);
    assert!(text.contains("higgs (record v1"), "{text}");
    assert!(text.contains("  Title: First\n"), "{text}");
    assert!(
        text.contains("Basic Information › Keywords: Higgs, k0"),
        "{text}"
    );

    let out = work.capsule(&["diff", "higgs", "v1", "v3", "--json"]);
    let diff: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let changes = diff["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2, "{diff:#}");
    assert_eq!(changes[0]["pointer"], "/general_title");
    assert_eq!(changes[0]["old"], "First");
    assert_eq!(changes[0]["new"], "Third");
    assert_eq!(changes[1]["pointer"], "/basic_info/keywords/1");
    assert_eq!(changes[1]["title_path"], "Basic Information › Keywords #2");
    let out = work.capsule(&["diff", "higgs", "v1", "v3"]);
    assert!(
        stdout(&out).contains(
            "~ Basic Information › Keywords #2 (/basic_info/keywords/1): \"k0\" → \"k2\""
        ),
        "{}",
        stdout(&out)
    );

    let out = work.capsule(&["show", "higgs@v9"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("deposit higgs has no record version v9: the latest is v3"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn new_scaffolds_a_deposit_the_hook_accepts() {
    let (server, work) = archive();
    let out = work.capsule_as("bob", &["new", "analysis", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("CAP.CMS."), "{id}");
    assert_eq!(created["schema"], "analysis/1.0.0");
    let deposit: serde_json::Value = serde_json::from_slice(
        &std::fs::read(work.path.join(created["path"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    assert_eq!(deposit["_deposit"]["owners"], serde_json::json!(["bob"]));
    work.commit("bob starts an analysis");
    work.push_as("bob", "HEAD:main").assert_landed();
    assert!(server.rev("refs/heads/main").is_some());

    let out = work.capsule_as("bob", &["new", "analysis", "--id", "higgs"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("deposit higgs exists already"),
        "{}",
        stderr(&out)
    );
    let out = work.capsule_as("bob", &["new", "nope"]);
    assert!(
        stderr(&out).contains("there is no schema nope in this archive; it has: analysis"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn records_come_from_the_default_branch() {
    let (server, work) = archive();
    // bob crafts a commit where he owns a new deposit and pushes only a record tag.
    let mut mine: serde_json::Value = serde_json::from_str(HIGGS).unwrap();
    mine["_deposit"]["owners"] = serde_json::json!(["bob"]);
    work.write(&dep("carol-x", "deposit.json"), pretty(&mine))
        .commit("crafted");
    work.git(&["tag", "-a", "records/carol-x/v1", "-m", "sneaky"]);
    work.push_as("bob", "refs/tags/records/carol-x/v1")
        .assert_rejected_with("records/carol-x/v1 points at commit");
    let out = work.push_as("bob", "refs/tags/records/carol-x/v1");
    assert!(
        out.output
            .contains("it is not on the default branch (main) as the server holds it"),
        "{}",
        out.output
    );
    assert_eq!(server.rev("refs/tags/records/carol-x/v1"), None);
    // Pushed together with the branch, it is refused too: publishing is its own push,
    // so a tag can never land while its commit's branch update loses a race.
    let main_before = server.rev("refs/heads/main");
    let both = git(&work.path)
        .env("CAPSULE_USER", "bob")
        .args([
            "push",
            "origin",
            "HEAD:main",
            "refs/tags/records/carol-x/v1",
        ])
        .output()
        .unwrap();
    assert!(!both.status.success());
    assert!(
        stderr(&both).contains("publish it in a push of its own"),
        "{}",
        stderr(&both)
    );
    assert_eq!(server.rev("refs/heads/main"), main_before);
    assert_eq!(server.rev("refs/tags/records/carol-x/v1"), None);
    // The branch first, then the tag in a push of its own: published.
    work.push_as("bob", "HEAD:main").assert_landed();
    work.push_as("bob", "refs/tags/records/carol-x/v1")
        .assert_landed();

    // `capsule publish` says so before tagging a commit the server does not have.
    edit_higgs(&work, |d| d["general_title"] = "not pushed".into());
    work.commit("local only");
    let out = publish(&work, "alice", "higgs");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("is not on origin/main yet: push it first"),
        "{}",
        stderr(&out)
    );
    assert!(work
        .git(&["tag", "-l", "records/higgs/*"])
        .stdout
        .is_empty());
}

#[test]
fn work_branches_cannot_be_taken_over() {
    let (server, work) = archive();
    let mut carols: serde_json::Value = serde_json::from_str(HIGGS).unwrap();
    carols["_deposit"]["owners"] = serde_json::json!(["carol"]);
    work.write(&dep("carol-x", "deposit.json"), pretty(&carols))
        .commit("carol's draft");
    work.push_as("carol", "HEAD:carol-work").assert_landed();
    work.push_as("bob", ":carol-work").assert_rejected_with(
        "bob may not delete branch carol-work: it holds changes to deposit carol-x that are not on the default branch, and discarding them needs deposit-admin on carol-x. Ask one of its admins (carol, alice)",
    );
    assert!(server.rev("refs/heads/carol-work").is_some());
    work.push_as("carol", ":carol-work").assert_landed();
    assert_eq!(server.rev("refs/heads/carol-work"), None);
}

#[test]
fn merges_carry_accepted_work_without_re_judging_it() {
    let (server, work) = archive();
    // carol reviews on a branch of her own; alice merges it into main.
    let out = work.capsule_as(
        "carol",
        &["review", "higgs", "--type", "approved", "-m", "ok"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    work.push_as("carol", "HEAD:review-x").assert_landed();
    work.git(&["reset", "--quiet", "--hard", "origin/main"]);
    work.git(&[
        "merge",
        "--quiet",
        "--no-ff",
        "-m",
        "merge carol's review",
        "origin/review-x",
    ]);
    work.push_as("alice", "HEAD:main").assert_landed();

    // dave's work branch takes main's changes (bob's edit of higgs) by a merge.
    work.git(&["checkout", "--quiet", "-b", "dave-work", "origin/main~1"]);
    work.write(&dep("daves", "deposit.json"), {
        let mut d: serde_json::Value = serde_json::from_str(HIGGS).unwrap();
        d["_deposit"]["owners"] = serde_json::json!(["dave"]);
        pretty(&d)
    })
    .commit("dave's analysis");
    work.push_as("dave", "HEAD:dave-work").assert_landed();
    work.git(&["checkout", "--quiet", "main"]);
    work.git(&["reset", "--quiet", "--hard", "origin/main"]);
    edit_higgs(&work, |d| d["general_title"] = "bob's".into());
    work.commit("bob edits");
    work.push_as("bob", "HEAD:main").assert_landed();
    work.git(&["checkout", "--quiet", "dave-work"]);
    work.git(&["merge", "--quiet", "--no-edit", "origin/main"]);
    work.push_as("dave", "HEAD:dave-work").assert_landed();
    assert!(server.rev("refs/heads/dave-work").is_some());

    // The owner deletes a deposit together with its reviews.
    work.git(&["checkout", "--quiet", "main"]);
    work.git(&["reset", "--quiet", "--hard", "origin/main"]);
    work.remove(&dep_dir("higgs")).commit("retire higgs");
    work.push_as("alice", "HEAD:main").assert_landed();
}

#[test]
fn the_rules_never_disappear() {
    let (server, work) = archive();
    work.remove("capsule.toml").commit("drop the rules");
    refused(
        &server,
        &work,
        "alice",
        "capsule.toml cannot be deleted from the default branch main",
    );
    // A HEAD that names no branch: capsule cannot read the rules and refuses everything.
    run_ok(git(&server.git_dir).args(["branch", "-m", "main", "trunk"]));
    run_ok(git(&server.git_dir).args(["symbolic-ref", "HEAD", "refs/heads/nope"]));
    edit_higgs(&work, |d| d["general_title"] = "x".into());
    work.commit("anything");
    let before = server.rev("refs/heads/trunk");
    work.push_as("alice", "HEAD:trunk")
        .assert_rejected_with("the default branch (refs/heads/nope) does not exist");
    assert_eq!(server.rev("refs/heads/trunk"), before);
}

#[test]
fn hooks_installed_into_an_existing_repository_take_the_rules_from_a_server_admin() {
    let tmp = tempfile::TempDir::new().unwrap();
    let git_dir = tmp.path().join("old.git");
    run_ok(
        git(tmp.path())
            .args(["init", "--quiet", "--bare", "--initial-branch=main"])
            .arg(&git_dir),
    );
    let work = Work {
        path: tmp.path().join("w"),
    };
    run_ok(
        git(tmp.path())
            .args(["clone", "--quiet"])
            .arg(&git_dir)
            .arg(&work.path),
    );
    work.write("README.md", "old project\n")
        .commit("before capsule");
    work.push().assert_landed();
    run_ok(capsule(tmp.path()).args(["hook", "install"]).arg(&git_dir));
    // The repository has branches but no capsule.toml: it has no rules, and a push
    // cannot bring them (any member could, and would make themselves the admin).
    let server = Server { tmp, git_dir };
    work.write("capsule.toml", "[policy]\nadmins = [\"alice\"]\n")
        .write("access.toml", "[people]\nalice = \"alice@example.org\"\n")
        .commit("adopt capsule");
    let before = server.rev("refs/heads/main");
    work.push_as("bob", "HEAD:main")
        .assert_rejected_with("has no capsule.toml, so this repository has no rules yet");
    assert_eq!(server.rev("refs/heads/main"), before);
    // A server admin brings them in with a fetch, which runs no hooks.
    run_ok(
        git(&server.git_dir)
            .args(["fetch", "-q"])
            .arg(&work.path)
            .arg("main:main"),
    );
    // From then on they apply: bob is not listed.
    work.write("README.md", "changed\n").commit("bob again");
    work.push_as("bob", "HEAD:main")
        .assert_rejected_with("bob may not push to this archive");
    work.push_as("alice", "HEAD:main").assert_landed();
}

#[test]
fn log_marks_records_tagged_on_unrelated_commits() {
    let (_server, work) = archive();
    edit_higgs(&work, |d| d["general_title"] = "Changed".into());
    work.commit("change higgs");
    work.write("README.md", "unrelated\n")
        .commit("unrelated change");
    work.push().assert_landed();
    let out = publish(&work, "alice", "higgs");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = work.capsule(&["log", "higgs", "--json"]);
    let log: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(log[0]["message"], "change higgs", "{log:#}");
    assert_eq!(log[0]["records"], serde_json::json!([1]), "{log:#}");
}

#[test]
fn copied_reviews_and_reverting_force_pushes_are_judged() {
    let (server, work) = archive();
    // carol's real review lands.
    let out = work.capsule_as(
        "carol",
        &["review", "higgs", "--type", "approved", "-m", "ok"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    work.push_as("carol", "HEAD:main").assert_landed();
    let review = stdout(&out)
        .lines()
        .find_map(|l| l.strip_prefix("Committed "))
        .unwrap()
        .to_string();
    let name = review.rsplit('/').next().unwrap().to_string();
    // bob copies it, byte for byte, onto his own deposit.
    let mut mine: serde_json::Value = serde_json::from_str(HIGGS).unwrap();
    mine["_deposit"]["owners"] = serde_json::json!(["bob"]);
    let copied = std::fs::read(work.path.join(&review)).unwrap();
    work.write(&dep("bobs", "deposit.json"), pretty(&mine))
        .write(&dep("bobs", &format!("reviews/{name}")), copied)
        .commit("bob approves himself with carol's words");
    refused(
        &server,
        &work,
        "bob",
        "the review names `carol` as its author, but bob is pushing it",
    );

    // bob's work branch edits higgs; dave force-pushes it back to main's state.
    edit_higgs(&work, |d| d["general_title"] = "bob's branch".into());
    work.commit("bob's work");
    work.push_as("bob", "HEAD:bob-work").assert_landed();
    let before = server.rev("refs/heads/bob-work");
    work.git(&["reset", "--quiet", "--hard", "origin/main"]);
    work.push_as("dave", "+HEAD:bob-work")
        .assert_rejected_with("dave may not change deposit higgs on bob-work");
    assert_eq!(server.rev("refs/heads/bob-work"), before);

    // Even an unprotected default branch is never deleted.
    let settings = std::fs::read_to_string(work.path.join("capsule.toml")).unwrap();
    work.write(
        "capsule.toml",
        settings.replace("protected_branches = [\"main\"]", "protected_branches = []"),
    )
    .commit("no protection");
    work.push_as("alice", "HEAD:main").assert_landed();
    work.push_as("alice", ":main").assert_rejected_with(
        "alice may not delete branch main: it is the archive's default branch",
    );
    assert!(server.rev("refs/heads/main").is_some());
}
