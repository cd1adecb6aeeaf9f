//! `capsule import cap`: CAP's real data from ../shared/fixtures/cap and a real CAP-like
//! REST server on loopback, imported into archives made by `capsule init --bare` and
//! pushed through the real hook.

mod common;

use std::path::Path;

use common::cap::Cap;
use common::*;
use serde_json::{json, Value};

const ACCESS: &str = r#"[people]
alice = { email = "alice@example.org", cap_id = 1234 }
bob = { email = "bob@example.org", cap_id = 5678 }
carol = "carol@example.org"

[groups]
"#;

/// A permissive CAP wrapper: stand-ins for the schemas CAP's fixtures name but do not
/// hold (alice-analysis, test-analysis). Written by the test, not CAP's.
fn stand_in(name: &str) -> String {
    json!({"name": name, "version": "0.0.1", "experiment": "TEST", "fullname": name,
           "deposit_schema": {"type": "object", "properties": {"title": {"type": "string"}}}})
    .to_string()
}

/// An archive (`capsule init --bare`) whose access.toml lists people with CAP ids, and
/// a clone of it where alice (an archive admin) imports.
fn archive() -> (Server, Work) {
    let server = Server::new();
    let work = server.clone("work");
    work.write("access.toml", ACCESS);
    work.commit("people with CAP ids");
    work.push().assert_landed();
    work.git(&["config", "user.name", "Alice Analyst"]);
    work.git(&["config", "user.email", "alice@example.org"]);
    (server, work)
}

fn import(work: &Work, args: &[&str]) -> std::process::Output {
    capsule(&work.path)
        .env("CAPSULE_USER", "alice")
        .args(["import", "cap"])
        .args(args)
        .output()
        .unwrap()
}

fn report(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(out), stderr(out)))
}

fn ids(list: &Value) -> Vec<String> {
    let mut v: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            i.as_str()
                .map_or_else(|| i["id"].as_str().unwrap().to_string(), str::to_string)
        })
        .collect();
    v.sort();
    v
}

fn status(work: &Work) -> String {
    stdout(&work.git(&["status", "--porcelain"]))
}

#[test]
fn every_fixture_record_is_imported_or_reported_and_a_second_run_changes_nothing() {
    let Some(fixtures) = cap_fixtures() else {
        return;
    };
    let (server, work) = archive();
    let extra = server.tmp.path().join("stand-ins");
    std::fs::create_dir_all(&extra).unwrap();
    for name in ["alice-analysis", "test-analysis"] {
        std::fs::write(extra.join(format!("{name}.json")), stand_in(name)).unwrap();
    }
    let f = |p: &str| fixtures.join(p).display().to_string();
    let (records, schemas, legacy, extra) = (
        f("records"),
        f("schemas"),
        f("legacy-schemas"),
        extra.display().to_string(),
    );
    let args = [
        "--from",
        &records,
        "--schemas",
        &schemas,
        "--schemas",
        &legacy,
        "--schemas",
        &extra,
        // CAP's 2016 record lists name collections; their schemas of the same era.
        "--schema-map",
        "CMSAnalysis=legacy-cms-analysis-deposit/0.0.1",
        "--schema-map",
        "LHCbAnalysis=legacy-lhcb-LHCbAnalysis/0.0.1",
        // The search page's hits are CAP's basic form, which names no schema.
        "--default-schema",
        "deposit/0.0.1",
        "--json",
    ];

    // A dry run writes nothing and lists every problem.
    let head = work.head();
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let out = import(&work, &dry);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(work.head(), head);
    assert_eq!(status(&work), "");
    assert!(!work.path.join("schemas/deposit").exists());
    assert_eq!(r["written"], false);

    // Exactly the records CAP itself would reject are reported, each with its reason:
    // - the LHCb record of CAP's record list drifted from its own schema (two type
    //   mismatches: CAP's validator refuses it as well);
    // - the four ATLAS workflow records follow `atlas-workflows`, whose file in CAP's
    //   own fixtures is not valid JSON (CAP cannot load it either).
    let invalid = r["invalid"].as_array().unwrap();
    let kinds: Vec<(&str, &str)> = invalid
        .iter()
        .map(|i| (i["id"].as_str().unwrap(), i["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(invalid.len(), 5, "{kinds:?}");
    let lhcb = invalid.iter().find(|i| i["kind"] == "draft").unwrap();
    assert!(lhcb["origins"][0]
        .as_str()
        .unwrap()
        .ends_with("legacy-lhcb-analysis-ana-2014-060.json"));
    let pointers: Vec<&str> = lhcb["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(
        pointers,
        ["/analysis_steps/0/code", "/dst_selection/code/lhcb_code"]
    );
    let atlas: Vec<&Value> = invalid.iter().filter(|i| i["kind"] == "schema").collect();
    assert_eq!(atlas.len(), 4);
    for a in &atlas {
        assert!(
            a["origins"][0]
                .as_str()
                .unwrap()
                .contains("legacy-atlas-workflows-"),
            "{a}"
        );
        assert!(
            a["message"]
                .as_str()
                .unwrap()
                .contains("atlas-workflows.json:45:4"),
            "{a}"
        );
    }
    // The two files that are a service's data, not deposits, are named as such.
    let not: Vec<&str> = r["not_records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["origin"].as_str().unwrap())
        .collect();
    assert_eq!(not.len(), 2, "{not:?}");
    assert!(
        not[0].ends_with("atlas-glance-examples.json") && not[1].ends_with("lhcb-ana-details.json")
    );
    // Every other record is planned: 10 deposits of the search page (one also given
    // whole, created and updated), the documented deposit, the CMS record list entry.
    assert_eq!(
        r["imported"].as_array().unwrap().len(),
        12,
        "{:#}",
        r["imported"]
    );
    // Without --skip-invalid, nothing is imported.
    let out = import(&work, &args);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(work.head(), head);

    // Import the rest, and push through the hook: branch, then record tags.
    let mut go = args.to_vec();
    go.extend(["--skip-invalid", "--push"]);
    let out = import(&work, &go);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(server.rev("main"), Some(work.head()), "{}", stderr(&out));
    let tags: Vec<&str> = r["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(
        tags.len(),
        2,
        "the documented published deposit and the CMS record: {tags:?}"
    );
    for t in &tags {
        assert!(server.rev(t).is_some(), "{t} is on the server");
    }
    assert!(tags.contains(&"refs/tags/records/055c24bad4ee4d6fa44a9432b49fe77e/v1"));
    // People CAP named who are not in access.toml are kept and listed; files without
    // an address are listed as missing with CAP's checksum.
    let unknown: Vec<&str> = r["unknown_users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["entry"].as_str().unwrap())
        .collect();
    assert!(
        unknown.contains(&"info@inveniosoftware.org") && unknown.contains(&"cms_user@cern.ch"),
        "{unknown:?}"
    );
    assert_eq!(
        r["missing_files"][0]["key"],
        "test-user_test-repo_test-branch.tar.gz"
    );
    // CAP's dates are the commit dates; CAP's pid is the id.
    let id = "6adc80e7c6834d4f9f6bf1e6e4887842";
    let log = stdout(&work.git(&["log", "-1", "--format=%at %ct", "--", &dep_dir(id)]));
    assert_eq!(
        log.trim(),
        "1638891973 1638891974",
        "2021-12-07T15:46:13 and 15:46:14 UTC"
    );
    let deposit: Value = serde_json::from_str(
        &std::fs::read_to_string(work.path.join(dep(id, "deposit.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(deposit["$schema"], "alice-analysis/0.0.1");
    assert_eq!(
        deposit["_access"]["deposit-admin"]["users"],
        json!(["info@inveniosoftware.org"])
    );

    // A second run changes nothing.
    let head = work.head();
    let out = import(&work, &go);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(work.head(), head);
    assert!(
        r["imported"].as_array().unwrap().is_empty(),
        "{:#}",
        r["imported"]
    );
    assert_eq!(ids(&r["unchanged"]).len(), 12);
    assert!(
        r["commits"].as_array().unwrap().is_empty() && r["tags"].as_array().unwrap().is_empty()
    );
}

#[test]
fn a_deposit_with_cap_ids_is_owned_and_guarded_as_their_people() {
    let (server, work) = archive();
    let dir = server.tmp.path().join("export");
    std::fs::create_dir_all(dir.join("schemas")).unwrap();
    std::fs::write(
        dir.join("schemas/test-analysis.json"),
        stand_in("test-analysis"),
    )
    .unwrap();
    let deposit = json!({
        "id": "cap-ids-1", "created": "2020-03-01T10:00:00+00:00", "updated": "2020-03-02T10:00:00+00:00",
        "status": "draft", "schema": {"name": "test-analysis", "version": "0.0.1"},
        "metadata": {"title": "Owned by numbers", "_deposit": {"owners": [1234]}},
        "access": {"deposit-admin": {"users": [1234], "roles": []},
                   "deposit-update": {"users": [5678, 4242], "roles": []},
                   "deposit-read": {"users": [], "roles": ["cms-members@cern.ch"]}}
    });
    std::fs::write(dir.join("deposit.json"), deposit.to_string()).unwrap();
    let from = dir.join("deposit.json").display().to_string();
    let schemas = dir.join("schemas").display().to_string();
    let out = import(
        &work,
        &["--from", &from, "--schemas", &schemas, "--push", "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(r["unknown_users"][0]["entry"], "4242");
    assert_eq!(server.rev("main"), Some(work.head()));
    let written: Value = serde_json::from_str(
        &std::fs::read_to_string(work.path.join(dep("cap-ids-1", "deposit.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(written["_deposit"]["owners"], json!(["alice"]));
    assert_eq!(
        written["_access"]["deposit-update"]["users"],
        json!(["bob", 4242])
    );

    // bob (CAP id 5678) may change it; carol may not.
    let mut changed = written.clone();
    changed["title"] = "Changed by bob".into();
    work.write(
        &dep("cap-ids-1", "deposit.json"),
        serde_json::to_string_pretty(&changed).unwrap(),
    );
    work.commit("bob's change");
    work.push_as("bob", "HEAD:main").assert_landed();
    changed["title"] = "Changed by carol".into();
    work.write(
        &dep("cap-ids-1", "deposit.json"),
        serde_json::to_string_pretty(&changed).unwrap(),
    );
    work.commit("carol's change");
    work.push_as("carol", "HEAD:main")
        .assert_rejected_with("carol may not change deposit cap-ids-1");
}

/// CAP's routes answered from the fixtures: the recorded search page as page 1 (its
/// `links.next` pointing at page 2), page 2 with the recorded created deposit, every
/// hit's full form, an empty record listing and the schemas the deposits name.
fn serve_fixtures(cap: &Cap, fixtures: &Path) -> Vec<String> {
    let read = |p: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("records").join(p)).unwrap())
            .unwrap()
    };
    let base = cap.url();
    let mut page1 = read("api-deposit-search-response.json");
    page1["links"]["next"] = format!("{base}/api/deposits/?page=2&size=100").into();
    let created = read("api-deposit-create-response.json");
    let page2 = json!({"hits": {"hits": [created.clone()], "total": 11}, "links": {"self": format!("{base}/api/deposits/?page=2&size=100")}});
    cap.route("/api/deposits/?page=1&size=100", page1.clone());
    cap.route("/api/deposits/?page=2&size=100", page2);
    cap.route(
        "/api/records/?page=1&size=100",
        json!({"hits": {"hits": [], "total": 0}, "links": {}}),
    );
    let mut pids = Vec::new();
    for hit in page1["hits"]["hits"].as_array().unwrap() {
        let pid = hit["pid"].as_str().unwrap().to_string();
        // The full form of a basic hit: CAP's create answer for that pid.
        let mut full = created.clone();
        full["id"] = pid.clone().into();
        full["created"] = hit["created"].clone();
        full["updated"] = hit["updated"].clone();
        cap.route(&format!("/api/deposits/{pid}"), full);
        pids.push(pid);
    }
    cap.route(
        "/api/jsonschemas/alice-analysis/0.0.1",
        serde_json::from_str(&stand_in("alice-analysis")).unwrap(),
    );
    pids
}

fn import_api(work: &Work, url: &str, token: &str) -> std::process::Output {
    capsule(&work.path)
        .env("CAPSULE_USER", "alice")
        .env("CAP_TEST_TOKEN", token)
        .args([
            "import",
            "cap",
            "--from-api",
            url,
            "--token-env",
            "CAP_TEST_TOKEN",
            "--json",
        ])
        .output()
        .unwrap()
}

#[test]
fn importing_from_a_cap_server_follows_pages_and_brings_schemas() {
    let Some(fixtures) = cap_fixtures() else {
        return;
    };
    let cap = Cap::start(None);
    let pids = serve_fixtures(&cap, &fixtures);
    let (server, work) = archive();
    let out = import_api(&work, &cap.url(), "t0ken");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = report(&out);
    // Ten deposits of page 1 (each read whole from its own address) and the one of page 2.
    assert_eq!(ids(&r["imported"]).len(), 10, "{:#}", r);
    for pid in &pids {
        assert!(work.path.join(dep(pid, "deposit.json")).is_file(), "{pid}");
    }
    assert_eq!(r["schemas_added"][0]["schema"], "alice-analysis/0.0.1");
    assert!(r["schemas_added"][0]["from"]
        .as_str()
        .unwrap()
        .ends_with("/api/jsonschemas/alice-analysis/0.0.1"));
    work.push().assert_landed();
    assert_eq!(server.rev("main"), Some(work.head()));
    // Again: nothing changes.
    let head = work.head();
    let out = import_api(&work, &cap.url(), "t0ken");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(ids(&report(&out)["unchanged"]).len(), 10);
    assert_eq!(work.head(), head);
}

#[test]
fn a_bad_token_or_a_server_that_stops_midway_writes_nothing() {
    let Some(fixtures) = cap_fixtures() else {
        return;
    };
    let cap = Cap::start(None);
    serve_fixtures(&cap, &fixtures);
    let (_server, work) = archive();
    let head = work.head();
    let out = import_api(&work, &cap.url(), "wrong");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("refused the token")
            && stderr(&out).contains("401")
            && stderr(&out).contains("$CAP_TEST_TOKEN"),
        "{}",
        stderr(&out)
    );
    assert_eq!(work.head(), head);
    assert_eq!(status(&work), "");

    // No token at all: told where to put it.
    let out = capsule(&work.path)
        .env_remove("CAPSULE_CAP_TOKEN")
        .args(["import", "cap", "--from-api", &cap.url()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("$CAPSULE_CAP_TOKEN"),
        "{}",
        stderr(&out)
    );

    // The server answers page 1 and three deposits, then goes away.
    let dying = Cap::start(Some(4));
    serve_fixtures(&dying, &fixtures);
    let out = import_api(&work, &dying.url(), "t0ken");
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("nothing was imported"),
        "{}",
        stderr(&out)
    );
    assert_eq!(work.head(), head);
    assert_eq!(status(&work), "");
    assert!(!work.path.join("schemas/alice-analysis").exists());
}

fn md5_hex(bytes: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A file reference as CAP's deposit answers give it (`files` of the deposit).
fn cap_file(key: &str, bytes: &[u8], link: &str, bucket: Option<&str>) -> Value {
    json!({"key": key, "checksum": format!("md5:{}", md5_hex(bytes)), "size": bytes.len(),
           "bucket": bucket, "version_id": "v1", "links": {"self": link}})
}

/// A CAP deposit of the stand-in schema `test-analysis`, owned by alice (CAP id 1234).
fn cap_deposit(id: &str, files: Vec<Value>) -> Value {
    json!({"id": id, "created": "2022-05-01T09:00:00+00:00", "updated": "2022-05-02T09:00:00+00:00",
           "status": "draft", "schema": {"name": "test-analysis", "version": "0.0.1"},
           "metadata": {"title": "An analysis with files", "_deposit": {"owners": [1234]}},
           "files": files})
}

/// CAP's listings: `deposits` on /api/deposits/, `records` on /api/records/ (one page
/// each), and the schema they follow.
fn serve(cap: &Cap, deposits: &[Value], records: &[Value]) {
    cap.route(
        "/api/deposits/?page=1&size=100",
        json!({"hits": {"hits": deposits, "total": deposits.len()}, "links": {}}),
    );
    cap.route(
        "/api/records/?page=1&size=100",
        json!({"hits": {"hits": records, "total": records.len()}, "links": {}}),
    );
    cap.route(
        "/api/jsonschemas/test-analysis/0.0.1",
        serde_json::from_str(&stand_in("test-analysis")).unwrap(),
    );
}

/// `git show REF:PATH` in the server's repository.
fn server_file(server: &Server, at: &str, path: &str) -> Option<Vec<u8>> {
    let out = git(&server.git_dir)
        .args(["show", &format!("{at}:{path}")])
        .output()
        .unwrap();
    out.status.success().then_some(out.stdout)
}

#[test]
fn files_are_fetched_with_the_token_checked_and_pushed_through_the_hook() {
    let cap = Cap::start(None);
    // Another origin (another port): file storage a redirect leads to, and a host a
    // link names that must never see the token.
    let storage = Cap::start_open();
    let (base, other) = (cap.url(), storage.url());
    let id = "files-1";
    let data: &[u8] = b"events,weight\n1,0.5\n2,0.25\n";
    let fit: &[u8] = b"{\"mu\": 1.02}\n";
    let ntuple: &[u8] = &[0, 159, 146, 150, 1, 2, 3, 255];
    let files = vec![
        // CAP's own link, on the server (with CAP's query).
        cap_file(
            "data.txt",
            data,
            &format!("{base}/api/files/b1/data.txt?versionId=v1"),
            Some("b1"),
        ),
        // CAP's link names the host CAP was configured with: fetched from the server's
        // /api/files/<bucket>/<key> instead.
        cap_file(
            "plots/fit.json",
            fit,
            "https://localhost/api/files/b1/plots/fit.json",
            Some("b1"),
        ),
        // The server redirects to its storage: followed without the token.
        cap_file(
            "ntuple.root",
            ntuple,
            &format!("{base}/api/files/b1/ntuple.root"),
            Some("b1"),
        ),
        // Gone from CAP's storage: 404.
        cap_file(
            "gone.txt",
            b"lost",
            &format!("{base}/api/files/b1/gone.txt"),
            Some("b1"),
        ),
        // On another server, and no bucket to ask the server for: not fetched.
        cap_file(
            "mirror.txt",
            b"m",
            &format!("{other}/api/files/x/mirror.txt"),
            None,
        ),
    ];
    serve(&cap, &[cap_deposit(id, files)], &[]);
    cap.answer("/api/files/b1/data.txt?versionId=v1", 200, data, None);
    cap.answer("/api/files/b1/plots/fit.json", 200, fit, None);
    cap.answer(
        "/api/files/b1/ntuple.root",
        302,
        b"",
        Some(format!("{other}/storage/ntuple.root")),
    );
    storage.answer("/storage/ntuple.root", 200, ntuple, None);
    storage.answer("/api/files/x/mirror.txt", 200, b"m", None);

    let (server, work) = archive();
    let out = capsule(&work.path)
        .env("CAPSULE_USER", "alice")
        .env("CAP_TEST_TOKEN", "t0ken")
        .args([
            "import",
            "cap",
            "--from-api",
            &base,
            "--token-env",
            "CAP_TEST_TOKEN",
        ])
        .args(["--push", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(ids(&r["imported"]), [id]);

    // In the deposit's folder, with CAP's bytes, and on the server through the hook.
    assert_eq!(server.rev("main"), Some(work.head()), "{}", stderr(&out));
    for (key, bytes) in [
        ("data.txt", data),
        ("plots/fit.json", fit),
        ("ntuple.root", ntuple),
    ] {
        assert_eq!(
            std::fs::read(work.path.join(dep(id, key))).unwrap(),
            bytes,
            "{key}"
        );
        assert_eq!(
            server_file(&server, "main", &dep(id, key)).as_deref(),
            Some(bytes),
            "{key}"
        );
    }
    // The reference of every file stays in _files with CAP's checksum.
    let deposit: Value =
        serde_json::from_slice(&std::fs::read(work.path.join(dep(id, "deposit.json"))).unwrap())
            .unwrap();
    assert_eq!(
        deposit["_files"][0]["checksum"],
        format!("md5:{}", md5_hex(data))
    );
    assert_eq!(deposit["_files"].as_array().unwrap().len(), 5);

    // What could not be fetched is listed, with why: a warning, the rest imports.
    let missing: Vec<(&str, &str)> = r["missing_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["key"].as_str().unwrap(), m["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(missing.len(), 2, "{missing:?}");
    assert_eq!(missing[0].0, "gone.txt");
    assert!(
        missing[0].1.contains("404") && missing[0].1.contains("/api/files/b1/gone.txt"),
        "{missing:?}"
    );
    assert_eq!(missing[1].0, "mirror.txt");
    assert!(
        missing[1].1.contains("is not on") && missing[1].1.contains("token is not sent"),
        "{missing:?}"
    );
    assert!(!work.path.join(dep(id, "gone.txt")).exists());

    // The token went to the server only, in the header, never in an address; the
    // other origin saw one request (the redirect), without it.
    let asked = cap.requests();
    assert!(
        asked
            .iter()
            .all(|(_, auth)| auth.as_deref() == Some("Bearer t0ken")),
        "{asked:?}"
    );
    let seen = storage.requests();
    assert_eq!(seen, [("/storage/ntuple.root".to_string(), None)]);
    assert!(
        asked
            .iter()
            .chain(&seen)
            .all(|(url, _)| !url.contains("t0ken")),
        "{asked:?}"
    );

    // Again: nothing changes, and files the archive holds with CAP's bytes are not
    // fetched again (only the missing one is asked for).
    let head = work.head();
    let before = cap.requests().len();
    let out = import_api(&work, &base, "t0ken");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(ids(&report(&out)["unchanged"]), [id]);
    assert_eq!(work.head(), head);
    let fetched: Vec<String> = cap.requests()[before..]
        .iter()
        .map(|(url, _)| url.clone())
        .filter(|url| url.starts_with("/api/files/"))
        .collect();
    assert_eq!(fetched, ["/api/files/b1/gone.txt"]);
    assert_eq!(storage.requests().len(), 1);
}

#[test]
fn a_file_whose_bytes_do_not_match_cap_stops_the_import_with_nothing_written() {
    let cap = Cap::start(None);
    let base = cap.url();
    let good: &[u8] = b"the selection, as CAP holds it\n";
    let damaged: &[u8] = b"the selection, as CAP holds iT\n";
    let link = format!("{base}/api/files/b2/selection.txt");
    serve(
        &cap,
        &[
            cap_deposit("ok-1", vec![]),
            cap_deposit(
                "damaged-1",
                vec![cap_file("selection.txt", good, &link, Some("b2"))],
            ),
        ],
        &[],
    );
    cap.answer("/api/files/b2/selection.txt", 200, damaged, None);
    let (_server, work) = archive();
    let head = work.head();

    let out = import_api(&work, &base, "t0ken");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(r["written"], false);
    let invalid = r["invalid"].as_array().unwrap();
    assert_eq!(invalid.len(), 1, "{invalid:?}");
    assert_eq!(
        (invalid[0]["id"].as_str(), invalid[0]["kind"].as_str()),
        (Some("damaged-1"), Some("file"))
    );
    let message = invalid[0]["message"].as_str().unwrap();
    // md5 of the damaged bytes, computed apart: `printf '...iT\n' | md5sum`.
    assert_eq!(md5_hex(damaged), "9c3966a6377a5659824594f796c618cb");
    for needle in [
        "`selection.txt`",
        "deposit damaged-1",
        &link,
        &format!("expected md5:{}", md5_hex(good)),
        &format!("got md5:{}", md5_hex(damaged)),
        "run the import again",
    ] {
        assert!(message.contains(needle), "`{needle}` in {message}");
    }
    // Nothing written: not the valid deposit, not the schema, not the file.
    assert_eq!(work.head(), head);
    assert_eq!(status(&work), "");
    assert!(!work.path.join(dep("ok-1", "deposit.json")).exists());
    assert!(!work.path.join("schemas/test-analysis").exists());

    // The right bytes, but more of them than CAP's size: refused as well, and the
    // read stops one byte past the size.
    let mut longer = good.to_vec();
    longer.extend_from_slice(b"and a tail the server should not have sent\n");
    cap.answer("/api/files/b2/selection.txt", 200, &longer, None);
    let out = import_api(&work, &base, "t0ken");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let message = report(&out)["invalid"][0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains(&format!(
            "more than {} bytes arrived, CAP says {}",
            good.len(),
            good.len()
        )),
        "{message}"
    );
    assert_eq!(work.head(), head);

    // With the right bytes it imports.
    cap.answer("/api/files/b2/selection.txt", 200, good, None);
    let out = import_api(&work, &base, "t0ken");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(work.path.join(dep("damaged-1", "selection.txt"))).unwrap(),
        good
    );
}

/// One published revision of CAP's record `CAP.TEST.R1`, whose deposit is `rec-1`.
fn cap_record(revision: u64, title: &str, updated: &str) -> Value {
    json!({"id": "CAP.TEST.R1", "type": "record", "revision": revision,
           "created": "2023-01-10T08:00:00+00:00", "updated": updated,
           "metadata": {
               "$schema": "https://analysispreservation.cern.ch/schemas/deposits/records/test-analysis-v0.0.1.json",
               "title": title,
               "_deposit": {"id": "rec-1", "owners": [1234], "status": "published"}}})
}

/// `refs/tags/records/rec-1/vN` on the server: the commit's title and committer date,
/// and the tag's object type and tagger date.
fn server_version(server: &Server, n: u32) -> (String, String, String, String) {
    let tag = format!("refs/tags/records/rec-1/v{n}");
    let show = |args: &[&str]| {
        stdout(&run_ok(git(&server.git_dir).args(args)))
            .trim()
            .to_string()
    };
    let deposit: Value =
        serde_json::from_slice(&server_file(server, &tag, &dep("rec-1", "deposit.json")).unwrap())
            .unwrap();
    (
        deposit["title"].as_str().unwrap().to_string(),
        show(&["log", "-1", "--format=%ct", &tag]),
        show(&["cat-file", "-t", &tag]),
        show(&["for-each-ref", "--format=%(taggerdate:unix)", &tag]),
    )
}

#[test]
fn published_revisions_become_record_versions_in_order_and_a_later_one_adds_exactly_the_next() {
    let (first, second, third) = (
        cap_record(2, "First publication", "2023-02-01T10:00:00+00:00"),
        cap_record(5, "Second publication", "2023-03-15T12:30:00+01:00"),
        cap_record(9, "Third publication", "2024-01-20T16:45:00+00:00"),
    );
    let (server, work) = archive();
    let saved = server.tmp.path().join("saved");
    std::fs::create_dir_all(saved.join("schemas")).unwrap();
    std::fs::write(
        saved.join("schemas/test-analysis.json"),
        stand_in("test-analysis"),
    )
    .unwrap();
    // Saved answers of /api/records/, in names that do not sort as the revisions do.
    std::fs::write(saved.join("a-latest.json"), second.to_string()).unwrap();
    std::fs::write(saved.join("b-earlier.json"), first.to_string()).unwrap();
    let (a, b, schemas) = (
        saved.join("a-latest.json").display().to_string(),
        saved.join("b-earlier.json").display().to_string(),
        saved.join("schemas").display().to_string(),
    );
    let out = import(
        &work,
        &["--from", &a, &b, "--schemas", &schemas, "--push", "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(
        r["tags"],
        json!(["refs/tags/records/rec-1/v1", "refs/tags/records/rec-1/v2"])
    );
    assert_eq!(r["imported"][0]["commits"], 2);
    // On the server through the hook: each version an annotated tag on its own commit,
    // with CAP's contents and dates, in revision order.
    assert_eq!(server.rev("main"), Some(work.head()));
    assert_eq!(
        server_version(&server, 1),
        (
            "First publication".into(),
            "1675245600".into(),
            "tag".into(),
            "1675245600".into()
        )
    );
    assert_eq!(
        server_version(&server, 2),
        (
            "Second publication".into(),
            "1678879800".into(),
            "tag".into(),
            "1678879800".into()
        )
    );
    assert_eq!(
        stdout(&work.git(&["rev-parse", "records/rec-1/v2^{commit}^"])).trim(),
        stdout(&work.git(&["rev-parse", "records/rec-1/v1^{commit}"])).trim(),
        "v2's commit follows v1's"
    );

    // The same two revisions from the server: nothing changes.
    let cap = Cap::start(None);
    serve(&cap, &[], &[second.clone(), first.clone()]);
    let head = work.head();
    let out = import_api(&work, &cap.url(), "t0ken");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(ids(&r["unchanged"]), ["rec-1"]);
    assert_eq!(
        (r["commits"].clone(), r["tags"].clone()),
        (json!([]), json!([]))
    );
    assert_eq!(work.head(), head);

    // A third revision in CAP: exactly v3, one commit, and the hook takes it.
    let (v1, v2) = (
        server.rev("refs/tags/records/rec-1/v1"),
        server.rev("refs/tags/records/rec-1/v2"),
    );
    serve(&cap, &[], &[third, second, first]);
    let out = capsule(&work.path)
        .env("CAPSULE_USER", "alice")
        .env("CAP_TEST_TOKEN", "t0ken")
        .args([
            "import",
            "cap",
            "--from-api",
            &cap.url(),
            "--token-env",
            "CAP_TEST_TOKEN",
        ])
        .args(["--push", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(r["tags"], json!(["refs/tags/records/rec-1/v3"]));
    assert_eq!(r["commits"].as_array().unwrap().len(), 1);
    assert_eq!(stdout(&work.git(&["rev-parse", "HEAD^"])).trim(), head);
    assert_eq!(server.rev("main"), Some(work.head()));
    assert_eq!(
        server_version(&server, 3),
        (
            "Third publication".into(),
            "1705769100".into(),
            "tag".into(),
            "1705769100".into()
        )
    );
    assert_eq!(
        (
            server.rev("refs/tags/records/rec-1/v1"),
            server.rev("refs/tags/records/rec-1/v2")
        ),
        (v1, v2)
    );
    assert_eq!(server.rev("refs/tags/records/rec-1/v4"), None);
}

#[test]
fn a_next_link_to_another_server_is_refused_naming_the_page_it_came_from() {
    let cap = Cap::start(None);
    let elsewhere = Cap::start_open();
    let (base, other) = (cap.url(), elsewhere.url());
    serve(&cap, &[], &[]);
    let next = format!("{other}/api/deposits/?page=2&size=100");
    cap.route(
        "/api/deposits/?page=1&size=100",
        json!({"hits": {"hits": [cap_deposit("n-1", vec![])], "total": 2}, "links": {"next": next}}),
    );
    let (_server, work) = archive();
    let head = work.head();
    let out = import_api(&work, &base, "t0ken");
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let page = format!("{base}/api/deposits/?page=1&size=100");
    let expected = format!(
        "{page}: `links.next` leads to {next}, another server than {base}: refusing to send the token there"
    );
    assert!(stderr(&out).contains(&expected), "{}", stderr(&out));
    assert!(elsewhere.requests().is_empty());
    assert_eq!(work.head(), head);
    assert_eq!(status(&work), "");
}
