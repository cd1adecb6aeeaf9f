//! CAP's access tokens: an internal build (`capsule build --drafts`) answers
//! `api/deposits/<id>` in CAP's shape, and the nginx configuration of docs/cap.md,
//! with `capsule token serve` behind its `auth_request`, lets a script read a draft
//! with a valid token and refuses it without one, with a revoked or expired one, or
//! with the token of someone who may not read that deposit. Real nginx, real HTTP.

mod common;

use std::path::Path;
use std::process::Stdio;

use common::servers::{free_port, Nginx, Running};
use common::*;

const PEOPLE: &str = r#"[people]
alice = "alice@example.org"
bob = "bob@example.org"
dave = "dave@example.org"
"#;

/// An archive (admin alice) with: `higgs-draft`, alice's unpublished draft that only
/// she and dave (deposit-read) may read; `zee`, a public published record; and
/// `bob-notes`, bob's restricted draft.
fn archive() -> (Server, Work) {
    let server = Server::new();
    let work = server.clone("work");
    work.write("access.toml", PEOPLE)
        .commit("bob and dave join");
    work.push().assert_landed();
    let deposit = |title: &str, owner: &str, read: serde_json::Value| {
        let mut d: serde_json::Value = serde_json::from_str(&analysis(
            title,
            &["tokens"],
            ("Alice Analyst", "alice@example.org"),
        ))
        .unwrap();
        d["_deposit"]["owners"] = serde_json::json!([owner]);
        d["_access"] = serde_json::json!({
            "deposit-read": read,
            "deposit-update": {"users": [owner], "roles": []},
            "deposit-admin": {"users": [owner], "roles": []},
        });
        serde_json::to_string_pretty(&d).unwrap() + "\n"
    };
    work.write(
        &dep("higgs-draft", "deposit.json"),
        deposit(
            "CANARY-DRAFT Higgs to four leptons",
            "alice",
            serde_json::json!({"users": ["dave@example.org"], "roles": []}),
        ),
    )
    .write(
        &dep("zee", "deposit.json"),
        deposit(
            "Z to ee",
            "alice",
            serde_json::json!({"users": [], "roles": ["public"]}),
        ),
    )
    .write(
        &dep("bob-notes", "deposit.json"),
        deposit(
            "Bob's notes",
            "bob",
            serde_json::json!({"users": [], "roles": []}),
        ),
    )
    .commit("three deposits");
    work.push_as("alice", "HEAD:main").assert_landed();
    let out = work.capsule_as("alice", &["publish", "zee", "--push", "-m", "First"]);
    assert!(out.status.success(), "{}", stderr(&out));
    (server, work)
}

fn build_internal(work: &Work, out: &Path) {
    let built = work.capsule_as(
        "alice",
        &["build", "--drafts", "--out", out.to_str().unwrap()],
    );
    assert!(built.status.success(), "{}", stderr(&built));
}

fn json_file(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn an_internal_build_answers_api_deposits_in_caps_shape() {
    let Some(fixture) = cap_fixture("records/api-deposit-create-response.json") else {
        return;
    };
    let cap: serde_json::Value = serde_json::from_str(&fixture).unwrap();
    let (_server, work) = archive();
    let internal = work.path.join("out/internal");
    build_internal(&work, &internal);
    let draft = json_file(&internal.join("api/deposits/higgs-draft/index.json"));
    // Every key of CAP's deposit response, but those that depend on who asks.
    for key in cap.as_object().unwrap().keys() {
        if ["is_owner", "created_by"].contains(&key.as_str()) {
            continue;
        }
        assert!(draft.get(key).is_some(), "`{key}` missing: {draft:#}");
    }
    assert_eq!(draft["id"], "higgs-draft");
    assert_eq!(draft["status"], "draft");
    assert_eq!(draft["type"], "deposit");
    assert_eq!(
        draft["metadata"]["general_title"],
        "CANARY-DRAFT Higgs to four leptons"
    );
    assert_eq!(
        draft["access"]["deposit-read"]["users"],
        serde_json::json!(["dave@example.org"])
    );
    for (key, value) in ["schema", "access"].map(|k| (k, &cap[k])) {
        let ours: Vec<&String> = draft[key].as_object().unwrap().keys().collect();
        for k in value.as_object().unwrap().keys() {
            assert!(ours.contains(&k), "{key}.{k} missing: {:#}", draft[key]);
        }
    }
    // Never published: no link to a record that does not exist.
    assert!(
        draft["links"].get("latest").is_none(),
        "{:#}",
        draft["links"]
    );
    assert!(draft["links"]["self"]
        .as_str()
        .unwrap()
        .ends_with("api/deposits/higgs-draft/index.json"));
    // The published record is where CAP has it, and the list points at both.
    let zee = json_file(&internal.join("api/records/zee/index.json"));
    assert_eq!(
        (zee["status"].as_str(), zee["type"].as_str()),
        (Some("published"), Some("record"))
    );
    let list = std::fs::read_to_string(internal.join("api/records/index.json")).unwrap();
    assert!(
        list.contains("api/deposits/higgs-draft/index.json"),
        "{list}"
    );

    // A public build has no deposits API at all.
    let public = work.path.join("out/public");
    let built = work.capsule_as("alice", &["build", "--out", public.to_str().unwrap()]);
    assert!(built.status.success(), "{}", stderr(&built));
    assert!(!public.join("api/deposits").exists());
    assert!(public.join("api/records/zee/index.json").is_file());
}

/// The nginx configuration of docs/cap.md, with the test's addresses and paths in
/// place of the example's (each of which must be in the documented text).
fn documented_config(port: u16, check_port: u16, site: &Path, dir: &Path) -> String {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/cap.md")).unwrap();
    let section = docs
        .split_once("## CAP's access tokens")
        .expect("docs/cap.md has the section")
        .1;
    let block = section
        .split_once("```nginx\n")
        .expect("the section shows an nginx configuration")
        .1
        .split_once("```")
        .unwrap()
        .0;
    let mut config = block.to_string();
    for (from, to) in [
        ("listen 443 ssl;", format!("listen 127.0.0.1:{port};")),
        (
            "    ssl_certificate     /etc/ssl/certs/analyses-internal.pem;\n",
            String::new(),
        ),
        (
            "    ssl_certificate_key /etc/ssl/private/analyses-internal.key;\n",
            String::new(),
        ),
        ("/srv/www/analyses-internal", site.display().to_string()),
        (
            "/var/log/nginx/analyses-internal.access.log",
            dir.join("access.log").display().to_string(),
        ),
        ("127.0.0.1:8099", format!("127.0.0.1:{check_port}")),
    ] {
        assert!(config.contains(from), "docs/cap.md's config lost `{from}`");
        config = config.replace(from, &to);
    }
    // `include mime.types;` is read beside nginx.conf.
    std::fs::write(
        dir.join("mime.types"),
        "types { text/html html; application/json json; text/css css; application/javascript js; image/svg+xml svg; }\n",
    )
    .unwrap();
    config
}

/// `capsule token issue USER` in the server repository: the token (stdout) and its id.
fn issue(server: &Server, user: &str) -> (String, String) {
    let out = server.capsule(&["token", "issue", user, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let issued: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        issued["token"].as_str().unwrap().to_string(),
        issued["id"].as_str().unwrap().to_string(),
    )
}

#[test]
fn tokens_guard_an_internal_site_behind_nginx() {
    if !require_tool("nginx", "nginx") {
        return;
    }
    let (server, work) = archive();
    let site = server.tmp.path().join("www/internal");
    build_internal(&work, &site);

    // Issuing: only people of access.toml; the token is printed, only its hash stored.
    let out = server.capsule(&["token", "issue", "mallory"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("mallory is not in access.toml's [people]"),
        "{}",
        stderr(&out)
    );
    let out = server.capsule(&["token", "issue", "alice", "--note", "scripts"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let alice = stdout(&out).trim().to_string();
    assert!(
        alice.starts_with("capsule_") && alice.len() == 51,
        "{alice}"
    );
    assert!(!stderr(&out).contains(&alice));
    let (alice_revoked, alice_revoked_id) = issue(&server, "alice");
    let (alice_expired, alice_expired_id) = issue(&server, "alice");
    let (bob, _) = issue(&server, "bob");
    let (dave, _) = issue(&server, "dave");
    let tokens = [&alice, &alice_revoked, &alice_expired, &bob, &dave];
    let store_path = server.git_dir.join("capsule/tokens.json");
    let store = std::fs::read_to_string(&store_path).unwrap();
    for token in tokens {
        assert!(
            !store.contains(token.as_str()),
            "a token in clear in the store"
        );
    }
    // A store inside a work tree is refused.
    let out = work.capsule(&["token", "list", "--store", "tokens.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("inside the work tree"),
        "{}",
        stderr(&out)
    );

    // One token revoked, one expired (its expiry moved into the past).
    let out = server.capsule(&["token", "revoke", &alice_revoked_id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&store_path).unwrap()).unwrap();
    for t in stored["tokens"].as_array_mut().unwrap() {
        if t["id"] == alice_expired_id.as_str() {
            t["expires"] = "2020-01-01T00:00:00Z".into();
        }
    }
    std::fs::write(&store_path, serde_json::to_string_pretty(&stored).unwrap()).unwrap();
    let listed = stdout(&server.capsule(&["token", "list", "--json"]));
    assert!(!listed.contains("sha256"), "list shows no hashes: {listed}");
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let states: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["active", "revoked", "expired", "active", "active"]);

    // The check, behind the documented nginx configuration.
    let check_port = free_port();
    let check_log = server.tmp.path().join("token-serve.log");
    let mut check = Running::spawn(
        "capsule token serve",
        capsule(&server.git_dir)
            .args([
                "token",
                "serve",
                "--listen",
                &format!("127.0.0.1:{check_port}"),
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&check_log).unwrap()),
    );
    check.wait_for_port(check_port, &check_log);
    let Some(nginx) = Nginx::start(|port, dir| documented_config(port, check_port, &site, dir))
    else {
        return;
    };
    let query = |path: &str, token: &str| format!("{path}?access_token={token}");
    let bearer = |token: &str| format!("Bearer {token}");
    let draft = "/api/deposits/higgs-draft";

    // alice's valid token reads her draft, as CAP answers it.
    let r = nginx.get(&query(draft, &alice), &[]);
    let logs = || {
        format!(
            "capsule token serve:\n{}\nnginx:\n{}",
            std::fs::read_to_string(&check_log).unwrap_or_default(),
            std::fs::read_to_string(nginx.dir.path().join("error.log")).unwrap_or_default()
        )
    };
    assert_eq!(r.status, 200, "{r:?}\n{}", logs());
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        (body["id"].as_str(), body["status"].as_str()),
        (Some("higgs-draft"), Some("draft"))
    );
    assert_eq!(
        body["metadata"]["general_title"],
        "CANARY-DRAFT Higgs to four leptons"
    );
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{r:?}"
    );
    // Nobody keeps it.
    assert_eq!(
        r.header("cache-control"),
        Some("private, no-store"),
        "{r:?}"
    );
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{r:?}");
    // The same with the header, and the page and the file forms.
    let r = nginx.get(draft, &[("Authorization", &bearer(&alice))]);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("CANARY-DRAFT"));
    assert_eq!(
        nginx
            .get(&query("/api/deposits/higgs-draft/index.json", &alice), &[])
            .status,
        200
    );
    assert_eq!(
        nginx
            .get(&query("/drafts/higgs-draft/", &alice), &[])
            .status,
        200
    );
    // dave holds deposit-read (by e-mail) and reads it too.
    assert_eq!(nginx.get(&query(draft, &dave), &[]).status, 200);

    // No token, a made-up one, a revoked one, an expired one: 401.
    let r = nginx.get(draft, &[]);
    assert_eq!(r.status, 401, "{r:?}");
    assert!(!r.body.contains("CANARY"));
    assert!(
        r.header("www-authenticate")
            .is_some_and(|h| h.starts_with("Bearer")),
        "{r:?}"
    );
    let made_up = format!("capsule_{}", "A".repeat(43));
    for token in [made_up.as_str(), "x", &alice_revoked, &alice_expired] {
        let r = nginx.get(&query(draft, token), &[]);
        assert_eq!(r.status, 401, "{token}: {r:?}");
        let r = nginx.get(draft, &[("Authorization", &bearer(token))]);
        assert_eq!(r.status, 401, "{token}: {r:?}");
    }
    // Two different tokens at once: refused, whichever is good.
    let r = nginx.get(&query(draft, &alice), &[("Authorization", &bearer(&bob))]);
    assert_eq!(r.status, 401, "{r:?}");

    // bob's valid token: alice's restricted draft is refused, however it is spelt.
    for path in [
        draft.to_string(),
        "/api/deposits/higgs-draft/index.json".into(),
        "/drafts/higgs-draft/index.html".into(),
        "/api/records/../deposits/higgs-draft".into(),
        "/api/deposits/%68iggs-draft".into(),
        "/api//deposits/higgs-draft/".into(),
    ] {
        let r = nginx.get(&query(&path, &bob), &[]);
        assert_eq!(r.status, 403, "{path}: {r:?}");
        assert!(!r.body.contains("CANARY"), "{path}");
        let r = nginx.get(&path, &[("Authorization", &bearer(&bob))]);
        assert_eq!(r.status, 403, "{path}: {r:?}");
    }
    // ... while his own draft, a public record and the shared pages are his to read.
    assert_eq!(
        nginx
            .get(&query("/api/deposits/bob-notes", &bob), &[])
            .status,
        200
    );
    assert_eq!(nginx.get(&query("/api/records/zee", &bob), &[]).status, 200);
    assert_eq!(nginx.get(&query("/index.html", &bob), &[]).status, 200);
    assert_eq!(
        nginx
            .get(&query("/api/records/index.json", &bob), &[])
            .status,
        200
    );
    // dave may read alice's draft but not bob's notes; alice, an archive admin, may.
    assert_eq!(
        nginx
            .get(&query("/api/deposits/bob-notes", &dave), &[])
            .status,
        403
    );
    assert_eq!(
        nginx
            .get(&query("/api/deposits/bob-notes", &alice), &[])
            .status,
        200
    );

    // Revoking applies to the very next request.
    let out = server.capsule(&["token", "revoke", "--user", "bob"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(nginx.get(&query("/api/records/zee", &bob), &[]).status, 401);

    // Logs hold the person and the token's id, never a token.
    let access_log = std::fs::read_to_string(nginx.dir.path().join("access.log")).unwrap();
    // (`$uri` is the file served: try_files found index.json.)
    let line = access_log
        .lines()
        .find(|l| l.contains("\"GET /api/deposits/higgs-draft/index.json HTTP/1.0\" 200"))
        .unwrap_or_else(|| panic!("no line for alice's read:\n{access_log}"));
    assert!(
        line.contains(" - alice [") && line.contains(" tok-"),
        "{line}"
    );
    let error_log = std::fs::read_to_string(nginx.dir.path().join("error.log")).unwrap();
    let check_lines = std::fs::read_to_string(&check_log).unwrap();
    assert!(check_lines.contains("403 bob"), "{check_lines}");
    for token in tokens {
        for (name, log) in [
            ("nginx's access log", &access_log),
            ("nginx's error log", &error_log),
            ("capsule token serve's output", &check_lines),
        ] {
            assert!(!log.contains(token.as_str()), "a token in {name}:\n{log}");
        }
    }
}
