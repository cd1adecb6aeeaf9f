//! cap-client's daily commands, the capsule way: `capsule access` (permissions),
//! `capsule new --from` (analysis create, CAP's clone), `capsule unset` (metadata
//! remove), `capsule attach FOLDER` (files upload of a folder) and `capsule schema show
//! --resolved` (analysis schema) — through real clones and real pushes into a bare
//! repository with the hook installed.

mod common;

use common::*;
use serde_json::{json, Value};

const PEOPLE: &str = r#"[people]
alice = "alice@example.org"
bob = "bob@example.org"
carol = "carol@example.org"

[groups]
cms-members = ["carol"]
"#;

/// A server where alice (archive admin) owns `zee` (the demo's Higgs analysis), and bob and carol are known
/// people without rights on it. Returns alice's clone.
fn archive() -> (Server, Work) {
    let server = Server::new();
    let work = server.clone("alice");
    work.write("access.toml", PEOPLE)
        .write(&dep("zee", "deposit.json"), HIGGS)
        .commit("people and the zee analysis");
    work.push().assert_landed();
    (server, work)
}

fn read_json(work: &Work, path: &str) -> Value {
    serde_json::from_slice(&std::fs::read(work.path.join(path)).unwrap()).unwrap()
}

fn zee(work: &Work) -> Value {
    read_json(work, &dep("zee", "deposit.json"))
}

fn assert_exit(out: &std::process::Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(out),
        stderr(out)
    );
}

#[test]
fn after_access_add_update_bob_may_push_a_change() {
    let (server, alice) = archive();
    let bob = server.clone("bob");
    // Without the right, bob's edit is refused.
    let out = bob.capsule_as("bob", &["set", "zee", "/general_title", "Bob's title"]);
    assert_exit(&out, 0);
    bob.commit("bob edits zee");
    bob.push_as("bob", "HEAD:main")
        .assert_rejected_with("bob may not change deposit zee");
    bob.git(&["reset", "--quiet", "--hard", "origin/main"]);

    // alice grants it; the deposit's _access says so, and her push lands.
    let out = alice.capsule_as(
        "alice",
        &["access", "add", "zee", "--user", "bob", "--update"],
    );
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("+ /_access/deposit-update/users/"),
        "{}",
        stdout(&out)
    );
    let access = &zee(&alice)["_access"];
    assert!(
        access["deposit-update"]["users"]
            .as_array()
            .unwrap()
            .contains(&json!("bob")),
        "{access}"
    );
    assert!(
        !access["deposit-admin"]["users"]
            .as_array()
            .is_some_and(|u| u.contains(&json!("bob"))),
        "only the right asked for is added: {access}"
    );
    alice.commit("bob may update zee");
    alice.push_as("alice", "HEAD:main").assert_landed();

    // Now bob's change lands.
    bob.git(&["pull", "--quiet", "--ff-only"]);
    let out = bob.capsule_as("bob", &["set", "zee", "/general_title", "Bob's title"]);
    assert_exit(&out, 0);
    bob.commit("bob edits zee");
    bob.push_as("bob", "HEAD:main").assert_landed();
    assert_eq!(server.rev("refs/heads/main"), Some(bob.head()));
}

#[test]
fn a_non_admins_access_change_is_refused_at_push_and_an_admins_lands() {
    let (server, alice) = archive();
    alice.capsule_as(
        "alice",
        &["access", "add", "zee", "--user", "bob", "--update"],
    );
    alice.commit("bob may update zee");
    alice.push().assert_landed();

    // bob holds deposit-update: capsule warns, writes the change, and the server refuses it.
    let bob = server.clone("bob");
    let out = bob.capsule_as(
        "bob",
        &["access", "add", "zee", "--user", "carol", "--read"],
    );
    assert_exit(&out, 0);
    assert!(
        stderr(&out).contains("you (bob) hold only deposit-update on zee")
            && stderr(&out).contains("the server will refuse your push"),
        "{}",
        stderr(&out)
    );
    bob.commit("bob lets carol read zee");
    let before = server.rev("refs/heads/main");
    bob.push_as("bob", "HEAD:main")
        .assert_rejected_with("_access");
    assert_eq!(server.rev("refs/heads/main"), before);

    // alice, the owner, makes the same change: it lands, with no warning.
    let out = alice.capsule_as(
        "alice",
        &["access", "add", "zee", "--user", "carol", "--read"],
    );
    assert_exit(&out, 0);
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    alice.commit("carol may read zee");
    alice.push().assert_landed();
    let out = server.capsule(&["access", "get", "zee", "--json"]);
    // The server is bare: `access get` works in clones only, and says so.
    assert_exit(&out, 2);
    let out = alice.capsule(&["access", "get", "zee", "--json"]);
    assert_exit(&out, 0);
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    let readers: Vec<&str> = shown["deposit-read"]["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["user"].as_str())
        .collect();
    assert!(readers.contains(&"carol"), "{shown}");
}

#[test]
fn access_get_shows_people_with_their_emails_and_egroups() {
    let (_server, alice) = archive();
    for args in [
        &[
            "access",
            "add",
            "zee",
            "-u",
            "bob@example.org",
            "-r",
            "read",
            "-r",
            "update",
        ][..],
        &["access", "add", "zee", "--egroup", "cms-members", "--read"],
    ] {
        assert_exit(&alice.capsule_as("alice", args), 0);
    }
    // cap-client's -u takes an e-mail; the deposit names the person as the archive does.
    assert!(zee(&alice)["_access"]["deposit-read"]["users"]
        .as_array()
        .unwrap()
        .contains(&json!("bob")));
    let out = alice.capsule(&["access", "get", "zee"]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    let line = |label: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no {label} line in:\n{text}"))
            .to_string()
    };
    assert!(
        line("owners").contains("alice <alice@example.org>"),
        "{text}"
    );
    assert!(
        line("deposit-update").contains("bob <bob@example.org>"),
        "{text}"
    );
    assert!(
        line("deposit-read").contains("e-group cms-members"),
        "{text}"
    );
    assert!(!line("deposit-admin").contains("bob"), "{text}");

    let out = alice.capsule(&["access", "get", "zee", "--json"]);
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["id"], "zee");
    assert_eq!(shown["owners"][0]["email"], "alice@example.org");
    assert_eq!(shown["deposit-read"]["roles"][0]["entry"], "cms-members");
    assert_eq!(shown["deposit-read"]["roles"][0]["known"], true);
}

#[test]
fn unknown_people_and_groups_are_refused_with_the_line_to_add() {
    let (_server, alice) = archive();
    let path = alice.path.join(dep("zee", "deposit.json"));
    let before = std::fs::read(&path).unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--user", "eve", "--read"], "`eve = \"<e-mail>\"`"),
        (
            &["--user", "eve@cern.ch", "--read"],
            "`eve = \"eve@cern.ch\"`",
        ),
        (&["--user", "4242", "--read"], "cap_id = 4242 }"),
        (
            &["--egroup", "atlas-members", "--update"],
            "`\"atlas-members\" = [\"<user>\", ...]`",
        ),
        (
            &["--egroup", "public", "--update"],
            "grants only deposit-read",
        ),
    ];
    for (args, needle) in cases {
        let mut all = vec!["access", "add", "zee"];
        all.extend_from_slice(args);
        let out = alice.capsule_as("alice", &all);
        assert_exit(&out, 2);
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
        if args[1].starts_with("eve") || args[1] == "4242" {
            assert!(
                stderr(&out).contains("[people] in access.toml"),
                "{}",
                stderr(&out)
            );
        }
        assert_eq!(std::fs::read(&path).unwrap(), before, "{args:?} wrote");
    }
    // Neither a person nor a right: clap says what is missing.
    let out = alice.capsule(&["access", "add", "zee", "--user", "bob"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("--read"), "{}", stderr(&out));
}

#[test]
fn access_remove_takes_out_every_form_that_names_the_person() {
    let (_server, alice) = archive();
    let mut deposit = zee(&alice);
    deposit["_access"] = json!({
        "deposit-read": {"users": ["bob"], "roles": []},
        "deposit-update": {"users": ["BOB@example.org", "alice"], "roles": ["cms-members"]},
        "deposit-admin": {"users": ["alice"], "roles": []}
    });
    alice.write(
        &dep("zee", "deposit.json"),
        serde_json::to_string_pretty(&deposit).unwrap(),
    );
    let out = alice.capsule_as(
        "alice",
        &["access", "remove", "zee", "--user", "bob", "--update"],
    );
    assert_exit(&out, 0);
    let access = &zee(&alice)["_access"];
    assert_eq!(access["deposit-update"]["users"], json!(["alice"]));
    assert_eq!(
        access["deposit-read"]["users"],
        json!(["bob"]),
        "only --update"
    );

    let out = alice.capsule_as(
        "alice",
        &[
            "access",
            "remove",
            "zee",
            "--egroup",
            "cms-members",
            "--update",
        ],
    );
    assert_exit(&out, 0);
    assert_eq!(zee(&alice)["_access"]["deposit-update"]["roles"], json!([]));

    // Nothing to remove: said, and the file is left alone.
    let out = alice.capsule_as(
        "alice",
        &["access", "remove", "zee", "--user", "bob", "--admin"],
    );
    assert_exit(&out, 0);
    assert!(
        stderr(&out).contains("bob is not in deposit-admin.users"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).contains("Nothing changed"), "{}", stdout(&out));

    // carol is in deposit-update through her group: removing her name says so.
    alice.capsule_as(
        "alice",
        &[
            "access",
            "add",
            "zee",
            "--egroup",
            "cms-members",
            "--update",
        ],
    );
    let out = alice.capsule_as(
        "alice",
        &["access", "remove", "zee", "--user", "carol", "--update"],
    );
    assert!(
        stderr(&out).contains("carol still holds deposit-update on zee"),
        "{}",
        stderr(&out)
    );
    alice.commit("access changes");
    alice.push().assert_landed();
}

/// The CMS questionnaire (its schema types users and roles as CAP ids) in an archive
/// whose people have CAP ids; `None` when the CAP fixtures are missing.
fn cap_archive() -> Option<(Server, Work)> {
    let fixtures = cap_fixtures()?;
    let server = Server::new();
    let work = server.clone("work");
    let files: Vec<String> = [
        "cms-questionnaire.json",
        "deposit.json",
        "access.json",
        "buckets.json",
        "file.json",
        "review.json",
    ]
    .iter()
    .map(|f| fixtures.join("schemas").join(f).display().to_string())
    .collect();
    let out = capsule(&work.path)
        .args(["schema", "add"])
        .args(&files)
        .output()
        .unwrap();
    assert_exit(&out, 0);
    work.write(
        "access.toml",
        "[people]\nalice = { email = \"alice@example.org\", cap_id = 1234 }\nbob = { email = \"bob@example.org\", cap_id = 5678 }\ncarol = \"carol@example.org\"\n\n[groups]\n\"77\" = [\"carol\"]\n",
    );
    work.commit("CAP schemas and people with CAP ids");
    work.push().assert_landed();
    Some((server, work))
}

#[test]
fn access_writes_cap_ids_where_the_schema_types_users_as_numbers() {
    let Some((server, alice)) = cap_archive() else {
        return;
    };
    let out = alice.capsule_as("alice", &["new", "cms-stats-questionnaire", "--id", "q1"]);
    assert_exit(&out, 0);
    alice.commit("q1");
    alice.push().assert_landed();

    let out = alice.capsule_as(
        "alice",
        &[
            "access",
            "add",
            "q1",
            "--user",
            "bob@example.org",
            "--update",
        ],
    );
    assert_exit(&out, 0);
    let q1 = read_json(&alice, &dep("q1", "deposit.json"));
    assert_eq!(
        q1["_access"]["deposit-update"]["users"],
        json!([1234, 5678])
    );
    // carol has no CAP id: refused, naming her line.
    let out = alice.capsule_as(
        "alice",
        &["access", "add", "q1", "--user", "carol", "--read"],
    );
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("carol = { email = \"carol@example.org\", cap_id = <CAP user id> }"),
        "{}",
        stderr(&out)
    );
    // Roles are CAP role ids there too: a name is refused, a number written as one.
    let out = alice.capsule_as(
        "alice",
        &["access", "add", "q1", "--egroup", "cms-members", "--read"],
    );
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("CAP role ids"), "{}", stderr(&out));
    let out = alice.capsule_as(
        "alice",
        &["access", "add", "q1", "--egroup", "77", "--read"],
    );
    assert_exit(&out, 0);
    let q1 = read_json(&alice, &dep("q1", "deposit.json"));
    assert_eq!(q1["_access"]["deposit-read"]["roles"], json!([77]));
    let out = alice.capsule(&["access", "get", "q1"]);
    assert!(
        stdout(&out).contains("bob <bob@example.org> (CAP id 5678)"),
        "{}",
        stdout(&out)
    );
    alice.commit("bob may update q1");
    alice.push().assert_landed();

    // bob, written as 5678, may now push a change.
    let bob = server.clone("bob");
    let out = bob.capsule_as("bob", &["set", "q1", "/analysis_context/wg", "HIG"]);
    assert_exit(&out, 0);
    bob.commit("bob fills in the working group");
    bob.push_as("bob", "HEAD:main").assert_landed();
}

#[test]
fn new_from_a_cap_response_keeps_the_metadata_and_makes_you_the_owner() {
    let (server, alice) = archive();
    let mut metadata: Value = serde_json::from_str(HIGGS).unwrap();
    metadata.as_object_mut().unwrap().remove("$schema");
    metadata["_deposit"] = json!({"owners": [42], "id": "6adc80e7", "status": "draft"});
    metadata["_files"] = json!([{"key": "plot.png", "size": 10}]);
    metadata["control_number"] = json!("7");
    // The shape of CAP's GET /api/deposits/<id> (application/json) and cap-client's
    // `analysis get --pid` output.
    let response = json!({
        "id": "6adc80e7c6834d4f9f6bf1e6e4887842",
        "links": {"self": "https://localhost/api/deposits/6adc80e7c6834d4f9f6bf1e6e4887842"},
        "metadata": metadata,
        "schema": {"name": "analysis", "version": "1.0.0", "fullname": "Analysis"},
        "created": "2021-12-07T15:46:13.700108+00:00"
    });
    let file = server.tmp.path().join("response.json");
    std::fs::write(&file, serde_json::to_string_pretty(&response).unwrap()).unwrap();

    let bob = server.clone("bob");
    let out = bob.capsule_as(
        "bob",
        &[
            "new",
            "--from",
            file.to_str().unwrap(),
            "--id",
            "zee-copy",
            "--json",
        ],
    );
    assert_exit(&out, 0);
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["schema"], "analysis/1.0.0");
    assert_eq!(created["owner"], "bob");
    let copy = read_json(&bob, &dep("zee-copy", "deposit.json"));
    let original: Value = serde_json::from_str(HIGGS).unwrap();
    assert_eq!(copy["general_title"], original["general_title"]);
    assert_eq!(copy["basic_info"], original["basic_info"]);
    assert_eq!(copy["_deposit"]["owners"], json!(["bob"]));
    assert_eq!(copy["_access"]["deposit-admin"]["users"], json!(["bob"]));
    for gone in ["_files", "control_number"] {
        assert!(copy.get(gone).is_none(), "{gone} was copied: {copy}");
    }
    // cap-client's `metadata get` output (the metadata alone), piped in.
    let mut child = capsule(&bob.path)
        .env("CAPSULE_USER", "bob")
        .args(["new", "--from", "-", "--id", "zee-piped"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(HIGGS.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 0);
    let piped = read_json(&bob, &dep("zee-piped", "deposit.json"));
    assert_eq!(piped["basic_info"], original["basic_info"]);
    assert_eq!(piped["_deposit"]["owners"], json!(["bob"]));
    bob.commit("bob's copy of a CAP analysis");
    bob.push_as("bob", "HEAD:main").assert_landed();
    drop(alice);
}

#[test]
fn new_from_an_id_copies_another_deposit_without_its_system_fields_or_files() {
    let (server, alice) = archive();
    alice
        .write(&dep("zee", "notes.md"), "# notes\n")
        .commit("notes");
    alice.push().assert_landed();
    let bob = server.clone("bob");
    let out = bob.capsule_as("bob", &["new", "--from", "zee", "--id", "zee-run3"]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("fields from deposit zee"),
        "{}",
        stdout(&out)
    );
    let copy = read_json(&bob, &dep("zee-run3", "deposit.json"));
    let original = zee(&alice);
    assert_eq!(copy["basic_info"], original["basic_info"]);
    assert_eq!(copy["$schema"], original["$schema"]);
    assert_eq!(copy["_deposit"], json!({"owners": ["bob"]}));
    assert!(!bob.path.join(dep("zee-run3", "notes.md")).exists());
    bob.commit("bob's copy of zee");
    bob.push_as("bob", "HEAD:main").assert_landed();
    // The original is untouched.
    assert_eq!(zee(&bob), original);
}

#[test]
fn new_from_refuses_bad_input_and_writes_nothing() {
    let (server, alice) = archive();
    let dir = server.tmp.path();
    let broken = dir.join("broken.json");
    std::fs::write(
        &broken,
        "{\n  \"general_title\": \"x\",\n  \"general_title\": \"y\"\n}\n",
    )
    .unwrap();
    let out = alice.capsule_as(
        "alice",
        &[
            "new",
            "analysis",
            "--from",
            broken.to_str().unwrap(),
            "--id",
            "b1",
        ],
    );
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("broken.json:3:") && stderr(&out).contains("general_title"),
        "{}",
        stderr(&out)
    );

    let mut bad: Value = serde_json::from_str(HIGGS).unwrap();
    bad["basic_info"]["status"] = json!("finished");
    let invalid = dir.join("invalid.json");
    std::fs::write(&invalid, bad.to_string()).unwrap();
    let out = alice.capsule_as(
        "alice",
        &["new", "--from", invalid.to_str().unwrap(), "--id", "b2"],
    );
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("/basic_info/status") && stderr(&out).contains("nothing was written"),
        "{}",
        stderr(&out)
    );

    let unnamed = dir.join("unnamed.json");
    std::fs::write(&unnamed, r#"{"general_title": "x"}"#).unwrap();
    let out = alice.capsule_as(
        "alice",
        &["new", "--from", unnamed.to_str().unwrap(), "--id", "b3"],
    );
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("names no schema"), "{}", stderr(&out));

    let out = alice.capsule_as("alice", &["new", "--from", "no-such-thing", "--id", "b4"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("no such file"), "{}", stderr(&out));

    for id in ["b1", "b2", "b3", "b4"] {
        assert!(!alice.path.join(dep_dir(id)).exists(), "{id} was written");
    }
}

#[test]
fn unset_removes_a_field_reports_what_remains_and_refuses_schema() {
    let (_server, alice) = archive();
    let keywords = zee(&alice)["basic_info"]["keywords"].clone();
    let out = alice.capsule(&["unset", "zee", "/basic_info/keywords/0"]);
    assert_exit(&out, 0);
    // The list moved up: shown as the difference of the two states.
    assert!(
        stdout(&out).contains("Updated ") && stdout(&out).contains("- /basic_info/keywords/4"),
        "{}",
        stdout(&out)
    );
    let mut expected = keywords.as_array().unwrap().clone();
    expected.remove(0);
    assert_eq!(
        zee(&alice)["basic_info"]["keywords"],
        Value::Array(expected)
    );

    let path = alice.path.join(dep("zee", "deposit.json"));
    let before = std::fs::read(&path).unwrap();
    for (pointer, needle) in [
        ("/$schema", "cannot be removed"),
        ("/basic_info/nope", "no field at /basic_info/nope"),
        ("basic_info", "must start with `/`"),
    ] {
        let out = alice.capsule(&["unset", "zee", pointer]);
        assert_exit(&out, 2);
        assert!(stderr(&out).contains(needle), "{pointer}: {}", stderr(&out));
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    // A problem from before stays listed, as `set` lists it.
    let mut broken = zee(&alice);
    broken["basic_info"]["status"] = json!("finished");
    alice.write(
        &dep("zee", "deposit.json"),
        serde_json::to_string_pretty(&broken).unwrap(),
    );
    let out = alice.capsule(&["unset", "zee", "/general_title"]);
    assert_exit(&out, 0);
    assert!(
        stderr(&out).contains("/basic_info/status") && stderr(&out).contains("1 problem remains"),
        "{}",
        stderr(&out)
    );
    assert!(zee(&alice).get("general_title").is_none());
    // Removing the faulty field itself is a repair.
    let out = alice.capsule(&["unset", "zee", "/basic_info/status", "--json"]);
    assert_exit(&out, 0);
    let changes: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(changes[0]["pointer"], "/basic_info/status");
    alice.commit("fewer fields");
    alice.push().assert_landed();
}

#[test]
fn attach_copies_a_folder_with_its_layout_and_refuses_links_and_big_files() {
    let (server, alice) = archive();
    let settings = std::fs::read_to_string(alice.path.join("capsule.toml")).unwrap();
    alice
        .write(
            "capsule.toml",
            settings.replace("max_file_bytes = 20971520", "max_file_bytes = 1000"),
        )
        .commit("small files only");
    alice.push().assert_landed();

    let outside = server.tmp.path().join("code");
    std::fs::create_dir_all(outside.join("src/fits")).unwrap();
    std::fs::write(outside.join("README.md"), "# code\n").unwrap();
    std::fs::write(outside.join("src/main.py"), "print('hi')\n").unwrap();
    std::fs::write(outside.join("src/fits/model.json"), "{}\n").unwrap();
    let pointer = format!(
        "version https://git-lfs.github.com/spec/v1\noid sha256:{}\nsize 5000000\n",
        "cd".repeat(32)
    );
    std::fs::write(outside.join("src/fits/big.root"), pointer).unwrap();

    // A symbolic link and a big file: all refused at once, nothing copied.
    std::os::unix::fs::symlink("README.md", outside.join("link.md")).unwrap();
    std::fs::write(outside.join("src/huge.bin"), vec![0u8; 5000]).unwrap();
    let out = alice.capsule(&["attach", "zee", outside.to_str().unwrap()]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("link.md is a symbolic link"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("huge.bin is 5000 bytes"),
        "{}",
        stderr(&out)
    );
    assert!(
        !alice.path.join(dep("zee", "code")).exists(),
        "half-written"
    );

    std::fs::remove_file(outside.join("link.md")).unwrap();
    std::fs::remove_file(outside.join("src/huge.bin")).unwrap();
    let out = alice.capsule(&[
        "attach",
        "zee",
        outside.to_str().unwrap(),
        "--to",
        "software",
        "--json",
    ]);
    assert_exit(&out, 0);
    let attached: Value = serde_json::from_slice(&out.stdout).unwrap();
    let paths: Vec<&str> = attached
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["path"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = [
        "README.md",
        "src/fits/big.root",
        "src/fits/model.json",
        "src/main.py",
    ]
    .iter()
    .map(|f| dep("zee", &format!("software/code/{f}")))
    .collect();
    assert_eq!(paths, expected);
    assert_eq!(
        std::fs::read_to_string(alice.path.join(dep("zee", "software/code/src/main.py"))).unwrap(),
        "print('hi')\n"
    );
    assert_eq!(attached[1]["lfs"]["size"], 5000000);

    // Attaching again needs --force.
    let out = alice.capsule(&[
        "attach",
        "zee",
        outside.to_str().unwrap(),
        "--to",
        "software",
    ]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("exists already: use --force"),
        "{}",
        stderr(&out)
    );
    alice.commit("the analysis code");
    alice.push().assert_landed();

    // A folder holding a git repository: its .git is refused.
    std::fs::create_dir_all(outside.join(".git")).unwrap();
    std::fs::write(outside.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    let out = alice.capsule(&["attach", "zee", outside.to_str().unwrap(), "--to", "again"]);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("capture-repo"), "{}", stderr(&out));
    assert!(!alice.path.join(dep("zee", "again")).exists());
}

/// An archive made by `capsule init` in a temporary folder, for commands that need no
/// server (the folder goes when the first value is dropped).
fn local_archive() -> (tempfile::TempDir, Work) {
    let tmp = tempfile::TempDir::new().unwrap();
    run_ok(capsule(tmp.path()).args([
        "init",
        "arch",
        "--admin",
        "alice",
        "--admin-email",
        "alice@example.org",
    ]));
    let work = Work {
        path: tmp.path().join("arch"),
    };
    (tmp, work)
}

/// A schema with an in-document reference and one back to itself.
const TREE_SCHEMA: &str = r##"{
  "$schema": "http://json-schema.org/draft-07/schema#",
  "title": "Tree",
  "type": "object",
  "definitions": {"label": {"type": "string", "title": "Label"}},
  "properties": {
    "name": {"$ref": "#/definitions/label", "description": "the node's name"},
    "children": {"type": "array", "items": {"$ref": "#"}}
  }
}"##;

#[test]
fn schema_show_resolves_refs_and_marks_circular_ones() {
    let (_tmp, work) = local_archive();
    work.write("tree.json", TREE_SCHEMA);
    let out = work.capsule(&[
        "schema",
        "add",
        "tree.json",
        "--name",
        "tree",
        "--schema-version",
        "1.0.0",
    ]);
    assert_exit(&out, 0);

    let plain: Value =
        serde_json::from_slice(&work.capsule(&["schema", "show", "tree"]).stdout).unwrap();
    assert_eq!(plain["properties"]["name"]["$ref"], "#/definitions/label");

    let out = work.capsule(&["schema", "show", "tree/1.0.0", "--resolved", "--json"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out).lines().count(), 1, "--json is one line");
    let resolved: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        resolved["properties"]["name"],
        json!({"type": "string", "title": "Label", "description": "the node's name"})
    );
    let child = &resolved["properties"]["children"]["items"];
    assert_eq!(child["$ref"], "tree/1.0.0");
    assert!(
        child["$comment"].as_str().unwrap().contains("not inlined"),
        "{child}"
    );
    assert!(
        stderr(&out).contains("1 circular reference left as $ref")
            && stderr(&out).contains("/properties/children/items"),
        "{}",
        stderr(&out)
    );

    let out = work.capsule(&["schema", "show", "nope"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("there is no schema nope"),
        "{}",
        stderr(&out)
    );
}

/// Every `$ref` in `value`, with whether it carries capsule's circular-reference note.
fn refs(value: &Value, out: &mut Vec<(String, bool)>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push((r.clone(), map.contains_key("$comment")));
            }
            map.values().for_each(|v| refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn schema_show_resolves_caps_schemas_and_their_cycles() {
    let Some(fixtures) = cap_fixtures() else {
        return;
    };
    let (_tmp, work) = local_archive();
    // The workflow schemas refer to most of the others: add them all (the one file
    // that is not valid JSON is reported and left out).
    let out = capsule(&work.path)
        .args(["schema", "add"])
        .args(
            std::fs::read_dir(fixtures.join("schemas"))
                .unwrap()
                .map(|e| e.unwrap().path()),
        )
        .output()
        .unwrap();
    for name in ["cases", "cases_no_circ_refs", "cms-analysis"] {
        assert!(
            stdout(&out).contains(&format!("schemas/{name}/0.0.1.json")),
            "{name} not added: {}",
            stdout(&out)
        );
    }

    // CAP's analysis form: every reference inlined, none left.
    let out = work.capsule(&["schema", "show", "cms-analysis", "--resolved", "--json"]);
    assert_exit(&out, 0);
    let cms: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut found = Vec::new();
    refs(&cms, &mut found);
    assert!(found.is_empty(), "{found:?}");
    assert!(cms["properties"]["_deposit"]["properties"]["owners"].is_object());

    // cases ↔ workflow ↔ stage are circular: those stay $ref with a note, and nothing else.
    let out = work.capsule(&["schema", "show", "cases", "--resolved", "--json"]);
    assert_exit(&out, 0);
    let cases: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut found = Vec::new();
    refs(&cases, &mut found);
    assert!(!found.is_empty(), "cases has circular references");
    assert!(found.iter().all(|(_, noted)| *noted), "{found:?}");
    assert!(
        stderr(&out).contains("circular reference"),
        "{}",
        stderr(&out)
    );
    // The copy CAP made without them inlines completely.
    let out = work.capsule(&[
        "schema",
        "show",
        "cases_no_circ_refs",
        "--resolved",
        "--json",
    ]);
    assert_exit(&out, 0);
    let mut found = Vec::new();
    refs(&serde_json::from_slice(&out.stdout).unwrap(), &mut found);
    assert!(found.is_empty(), "{found:?}");
    assert!(!stderr(&out).contains("circular"), "{}", stderr(&out));
}
