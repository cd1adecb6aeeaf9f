//! Bringing analyses in: fetchers over real HTTP on loopback and from files, software
//! captured from real repositories (file:// and git daemon), attachments and edits.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::*;

/// A CADI-like answer, as CMS's analysis database gives it.
fn cadi(title: &str) -> String {
    serde_json::json!({
        "data": [{
            "code": "EXO-21-004",
            "name": title,
            "description": "Search for new resonances decaying to two muons",
            "contact": "marta.kowalczyk@example.org",
            "status": "in progress"
        }]
    })
    .to_string()
}

/// A real HTTP server on loopback answering from a table the test can change.
struct Http {
    port: u16,
    routes: Arc<Mutex<HashMap<String, (u16, String)>>>,
}

impl Http {
    fn start() -> Http {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let port = server.server_addr().to_ip().unwrap().port();
        let routes: Arc<Mutex<HashMap<String, (u16, String)>>> = Arc::default();
        let table = routes.clone();
        std::thread::spawn(move || {
            for request in server.incoming_requests() {
                let url = request.url().to_string();
                if url == "/slow" {
                    std::thread::sleep(std::time::Duration::from_secs(3));
                }
                let authorised = request
                    .headers()
                    .iter()
                    .any(|h| h.field.equiv("Authorization") && h.value.as_str() == "Bearer s3cret");
                let (status, body) = if url.starts_with("/cadi/") && !authorised {
                    (401, "unauthorised".to_string())
                } else {
                    table
                        .lock()
                        .unwrap()
                        .get(&url)
                        .cloned()
                        .unwrap_or((404, "not found".into()))
                };
                let _ = request
                    .respond(tiny_http::Response::from_string(body).with_status_code(status));
            }
        });
        Http { port, routes }
    }

    fn route(&self, path: &str, status: u16, body: &str) {
        self.routes
            .lock()
            .unwrap()
            .insert(path.into(), (status, body.into()));
    }
}

/// `lhcb` is CAP's lhcb-ana-details.json, read by the `file` fetcher.
fn archive_with_fetchers(http: &Http, lhcb: &str) -> (Server, Work) {
    let server = Server::new();
    let work = server.clone("work");
    let settings = std::fs::read_to_string(work.path.join("capsule.toml")).unwrap();
    let port = http.port;
    let fetchers = format!(
        r#"
[fetchers.cadi]
url = "http://127.0.0.1:{port}/cadi/{{key}}"
headers = {{ Authorization = "Bearer ${{CADI_TOKEN}}" }}
timeout_secs = 1
select = "/data"
match = "/code"
[fetchers.cadi.map]
"/general_title" = "/description"
"/basic_info/analysis_name" = "/name"

[fetchers.glance]
url = "http://127.0.0.1:{port}/glance"
match = "/ref_code"
[fetchers.glance.map]
"/basic_info/analysis_name" = "/short_title"
"/general_title" = "/full_title"

[fetchers.lhcb]
file = "imports/lhcb-ana-details.json"
select = "/{{key}}"
[fetchers.lhcb.map]
"/basic_info/analysis_name" = "/name"
"/basic_info/status" = "/status"

[fetchers.slow]
url = "http://127.0.0.1:{port}/slow"
timeout_secs = 1
[fetchers.slow.map]
"/general_title" = "/x"

[fetchers.html]
url = "http://127.0.0.1:{port}/html"
[fetchers.html.map]
"/general_title" = "/x"

[fetchers.down]
url = "http://127.0.0.1:1/nothing-listens-here"
[fetchers.down.map]
"/general_title" = "/x"
"#
    );
    work.write("capsule.toml", settings + &fetchers)
        .write("imports/lhcb-ana-details.json", lhcb)
        .write(&dep("dimuon", "deposit.json"), HIGGS)
        .commit("fetchers and a deposit");
    work.push().assert_landed();
    (server, work)
}

fn deposit(work: &Work, id: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(work.path.join(dep(id, "deposit.json"))).unwrap())
        .unwrap()
}

fn fetch(work: &Work, args: &[&str]) -> std::process::Output {
    capsule(&work.path)
        .env("CADI_TOKEN", "s3cret")
        .arg("fetch")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn fetching_from_a_cadi_like_service_fills_and_refreshes_fields() {
    let Some(lhcb) = cap_fixture("records/lhcb-ana-details.json") else {
        return;
    };
    let http = Http::start();
    http.route("/cadi/EXO-21-004", 200, &cadi("Dimuon resonances"));
    let (_server, work) = archive_with_fetchers(&http, &lhcb);
    let before = std::fs::read(work.path.join(dep("dimuon", "deposit.json"))).unwrap();

    // A dry run shows the change and writes nothing.
    let out = fetch(&work, &["dimuon", "cadi", "EXO-21-004", "--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Would fetch (dry run) dimuon"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains(
            "/basic_info/analysis_name: \"H -> ZZ* -> 4l (Run 2 legacy)\" → \"Dimuon resonances\""
        ),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        std::fs::read(work.path.join(dep("dimuon", "deposit.json"))).unwrap(),
        before
    );

    let out = fetch(&work, &["dimuon", "cadi", "EXO-21-004"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let d = deposit(&work, "dimuon");
    assert_eq!(d["basic_info"]["analysis_name"], "Dimuon resonances");
    assert_eq!(
        d["general_title"],
        "Search for new resonances decaying to two muons"
    );
    let from = &d["_fetched_from"]["cadi"];
    assert_eq!(from["key"], "EXO-21-004");
    assert_eq!(
        from["source"],
        format!("http://127.0.0.1:{}/cadi/EXO-21-004", http.port)
    );
    assert!(from["fetched"].as_str().unwrap().ends_with('Z'));

    // The user edits the name; the database changes the description.
    let mut edited = d.clone();
    edited["basic_info"]["analysis_name"] = "My own name".into();
    work.write(
        &dep("dimuon", "deposit.json"),
        serde_json::to_string_pretty(&edited).unwrap(),
    );
    let mut newer: serde_json::Value = serde_json::from_str(&cadi("Dimuon resonances")).unwrap();
    newer["data"][0]["description"] = "Search for dimuon resonances, full Run 2".into();
    http.route("/cadi/EXO-21-004", 200, &newer.to_string());
    let out = fetch(&work, &["dimuon", "cadi", "EXO-21-004"]);
    assert!(
        stdout(&out).contains("/basic_info/analysis_name: kept your edit"),
        "{}",
        stdout(&out)
    );
    let d = deposit(&work, "dimuon");
    assert_eq!(d["basic_info"]["analysis_name"], "My own name");
    assert_eq!(
        d["general_title"],
        "Search for dimuon resonances, full Run 2"
    );
    let out = fetch(&work, &["dimuon", "cadi", "EXO-21-004", "--force"]);
    assert!(out.status.success());
    assert_eq!(
        deposit(&work, "dimuon")["basic_info"]["analysis_name"],
        "Dimuon resonances"
    );

    // The result lands through the hook.
    work.commit("fetched from CADI");
    work.push().assert_landed();
}

#[test]
fn fetch_failures_are_clear_and_write_nothing() {
    let Some(lhcb) = cap_fixture("records/lhcb-ana-details.json") else {
        return;
    };
    let Some(glance) = cap_fixture("records/atlas-glance-examples.json") else {
        return;
    };
    let http = Http::start();
    http.route("/html", 200, "<html>maintenance</html>");
    http.route("/glance", 200, &glance);
    let (_server, work) = archive_with_fetchers(&http, &lhcb);
    let file = work.path.join(dep("dimuon", "deposit.json"));
    let before = std::fs::read(&file).unwrap();
    let cases: [(&[&str], bool, &str); 8] = [
        (&["dimuon", "cadi", "EXO-99-999"], true, "the server answered 404 Not Found"),
        (&["dimuon", "down", "x"], true, "http://127.0.0.1:1/nothing-listens-here: cannot reach it"),
        (&["dimuon", "html", "x"], true, "did not answer with JSON"),
        (&["dimuon", "slow", "x"], true, "no answer within 1 s (fetchers.slow.timeout_secs)"),
        (&["dimuon", "nope", "x"], true, "fetcher `nope` is not defined: add [fetchers.nope] to capsule.toml"),
        (&["dimuon", "glance", "ANA-EXOT-2099-1"], true, "no entry of the answer has /ref_code = \"ANA-EXOT-2099-1\""),
        (&["dimuon", "cadi", "EXO-21-004"], false, "the server answered 401"),
        // LHCb's status list is not the analysis schema's: the fetched value is refused.
        (&["dimuon", "lhcb", "Example Analysis1"], true, "/basic_info/status (Basic Information › Status): \"1 - in preparation\" is not one of the allowed values"),
    ];
    for (args, with_token, needle) in cases {
        let mut cmd = capsule(&work.path);
        if with_token {
            cmd.env("CADI_TOKEN", "s3cret");
        } else {
            cmd.env("CADI_TOKEN", "wrong");
        }
        let out = cmd.arg("fetch").args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(
            stderr(&out).contains(needle),
            "{args:?}: expected `{needle}` in:\n{}",
            stderr(&out)
        );
        assert_eq!(
            std::fs::read(&file).unwrap(),
            before,
            "{args:?} wrote to the deposit"
        );
    }
    let out = capsule(&work.path)
        .env_remove("CADI_TOKEN")
        .args(["fetch", "dimuon", "cadi", "EXO-21-004"])
        .output()
        .unwrap();
    assert!(
        stderr(&out).contains("the environment variable CADI_TOKEN (used in a header) is not set"),
        "{}",
        stderr(&out)
    );

    // The ATLAS Glance example answers by ref_code.
    let out = fetch(&work, &["dimuon", "glance", "ANA-EXOT-2017-12345"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        deposit(&work, "dimuon")["basic_info"]["analysis_name"],
        "JDM - Dark Matter and Energy Summary"
    );
}

/// A source repository with two commits, the first tagged v1.
fn source_repo(dir: &std::path::Path) -> (String, String) {
    run_ok(git(dir).args(["init", "--quiet", "--initial-branch=main", "code"]));
    let code = dir.join("code");
    std::fs::write(code.join("fit.py"), "print('fit v1')\n").unwrap();
    run_ok(git(&code).args(["add", "-A"]));
    run_ok(git(&code).args(["commit", "--quiet", "-m", "v1"]));
    run_ok(git(&code).args(["tag", "-a", "v1", "-m", "release 1"]));
    let v1 = stdout(&run_ok(git(&code).args(["rev-parse", "HEAD"])))
        .trim()
        .to_string();
    std::fs::write(code.join("fit.py"), "print('fit v2')\n").unwrap();
    run_ok(git(&code).args(["commit", "--quiet", "-am", "v2"]));
    let v2 = stdout(&run_ok(git(&code).args(["rev-parse", "HEAD"])))
        .trim()
        .to_string();
    (v1, v2)
}

#[test]
fn capturing_software_records_the_commit_and_bundles_the_code() {
    let server = Server::new();
    let work = server.clone("work");
    work.write(&dep("dimuon", "deposit.json"), HIGGS)
        .commit("deposit");
    work.push().assert_landed();
    let (v1, v2) = source_repo(server.tmp.path());
    let url = format!("file://{}", server.tmp.path().join("code").display());

    let out = work.capsule(&["capture-repo", "dimuon", &url, "--ref", "v1", "--bundle"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let repos = deposit(&work, "dimuon")["analysis_software"]["repositories"].clone();
    let entry = repos
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["url"] == url.as_str())
        .unwrap()
        .clone();
    assert_eq!(entry["commit"], v1.as_str());
    assert_eq!(entry["ref"], "v1");
    let bundle = entry["bundle"].as_str().unwrap().to_string();
    assert_eq!(bundle, format!("software/code-{}.bundle", &v1[..12]));

    // The bundle restores the code at that commit.
    let restored = server.tmp.path().join("restored");
    run_ok(
        git(server.tmp.path())
            .arg("clone")
            .arg("--quiet")
            .arg(work.path.join(dep_dir("dimuon")).join(&bundle))
            .arg(&restored),
    );
    assert_eq!(
        std::fs::read_to_string(restored.join("fit.py")).unwrap(),
        "print('fit v1')\n"
    );
    work.commit("capture the fit code");
    work.push().assert_landed();

    // Recapturing the same URL updates its entry (HEAD is now v2).
    let out = work.capsule(&["capture-repo", "dimuon", &url, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let repos = deposit(&work, "dimuon")["analysis_software"]["repositories"].clone();
    let same: Vec<_> = repos
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["url"] == url.as_str())
        .collect();
    assert_eq!(same.len(), 1);
    assert_eq!(same[0]["commit"], v2.as_str());
    assert!(same[0].get("bundle").is_none());

    // The hook refuses a damaged bundle and a bundle without the recorded commit.
    let bundle_file = work.path.join(dep_dir("dimuon")).join(&bundle);
    let bytes = std::fs::read(&bundle_file).unwrap();
    work.git(&["checkout", "--quiet", "--", "."]);
    work.write(&dep("dimuon", &bundle), &bytes[..bytes.len() - 30])
        .commit("truncate the bundle");
    let before = server.rev("refs/heads/main");
    work.push().assert_rejected_with(&format!(
        "{}: the bundle is damaged or incomplete",
        dep("dimuon", &bundle)
    ));
    work.git(&["reset", "--quiet", "--hard", "origin/main"]);
    let mut wrong = deposit(&work, "dimuon");
    for repo in wrong["analysis_software"]["repositories"]
        .as_array_mut()
        .unwrap()
    {
        if repo["url"] == url.as_str() {
            repo["commit"] = v2.as_str().into();
        }
    }
    work.write(
        &dep("dimuon", "deposit.json"),
        serde_json::to_string_pretty(&wrong).unwrap(),
    )
    .commit("point at another commit");
    work.push().assert_rejected_with(&format!(
        "the bundle does not contain the recorded commit {v2}"
    ));
    assert_eq!(server.rev("refs/heads/main"), before);
    work.git(&["reset", "--quiet", "--hard", "origin/main"]);
    work.write(&dep("dimuon", "software/fake.bundle"), "not a bundle")
        .commit("fake");
    work.push().assert_rejected_with("not a git bundle");
}

#[test]
fn capturing_over_git_daemon_and_bad_refs() {
    let server = Server::new();
    let work = server.clone("work");
    work.write(&dep("dimuon", "deposit.json"), HIGGS)
        .commit("deposit");
    work.push().assert_landed();
    let (v1, _) = source_repo(server.tmp.path());
    let daemon = Daemon::start(server.tmp.path(), "code");
    let url = daemon.url("code");
    let out = work.capsule(&["capture-repo", "dimuon", &url, "--ref", "v1", "--bundle"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let d = deposit(&work, "dimuon");
    let entry = d["analysis_software"]["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["url"] == url.as_str())
        .unwrap()
        .clone();
    assert_eq!(entry["commit"], v1.as_str());
    work.commit("captured over git://");
    work.push().assert_landed();

    let before = std::fs::read(work.path.join(dep("dimuon", "deposit.json"))).unwrap();
    let out = work.capsule(&["capture-repo", "dimuon", &url, "--ref", "no-such-branch"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("has no branch or tag `no-such-branch`; its branches include main"),
        "{}",
        stderr(&out)
    );
    let out = work.capsule(&[
        "capture-repo",
        "dimuon",
        "git://127.0.0.1:1/none",
        "--ref",
        "main",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("git ls-remote git://127.0.0.1:1/none failed"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read(work.path.join(dep("dimuon", "deposit.json"))).unwrap(),
        before
    );
}

#[test]
fn attach_set_and_edit_change_deposits_safely() {
    let server = Server::new();
    let work = server.clone("work");
    let settings = std::fs::read_to_string(work.path.join("capsule.toml")).unwrap();
    work.write(
        "capsule.toml",
        settings.replace("max_file_bytes = 20971520", "max_file_bytes = 1000"),
    )
    .write(&dep("dimuon", "deposit.json"), HIGGS)
    .commit("small limit");
    work.push().assert_landed();

    // Attach: small files are copied, big ones refused with LFS advice, pointers accepted.
    let outside = server.tmp.path();
    std::fs::write(outside.join("notes.md"), "# notes\n").unwrap();
    std::fs::write(outside.join("big.root"), vec![0u8; 5000]).unwrap();
    let pointer = format!(
        "version https://git-lfs.github.com/spec/v1\noid sha256:{}\nsize 5000000000\n",
        "ab".repeat(32)
    );
    std::fs::write(outside.join("ntuple.root"), &pointer).unwrap();
    let out = work.capsule(&[
        "attach",
        "dimuon",
        outside.join("notes.md").to_str().unwrap(),
        outside.join("big.root").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("big.root is 5000 bytes; the archive's limit is 1000 bytes (policy.max_file_bytes). Track it with Git LFS"), "{}", stderr(&out));
    assert!(
        !work.path.join(dep("dimuon", "notes.md")).exists(),
        "nothing is copied unless everything can be"
    );
    let out = work.capsule(&[
        "attach",
        "dimuon",
        outside.join("notes.md").to_str().unwrap(),
        outside.join("ntuple.root").to_str().unwrap(),
        "--to",
        "data",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!(
            "Attached {} (Git LFS pointer: 5000000000 bytes, sha256:abab",
            dep("dimuon", "data/ntuple.root")
        )),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        std::fs::read_to_string(work.path.join(dep("dimuon", "data/notes.md"))).unwrap(),
        "# notes\n"
    );
    let out = work.capsule(&[
        "attach",
        "dimuon",
        outside.join("notes.md").to_str().unwrap(),
        "--to",
        "data",
    ]);
    assert!(
        stderr(&out).contains("exists already: use --force"),
        "{}",
        stderr(&out)
    );
    work.commit("attachments");
    work.push().assert_landed();

    // Set: JSON or string values, validated before writing.
    let out = work.capsule(&["set", "dimuon", "/basic_info/keywords/-", "dimuon"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        deposit(&work, "dimuon")["basic_info"]["keywords"]
            .as_array()
            .unwrap()
            .last()
            .unwrap(),
        "dimuon"
    );
    let out = work.capsule(&[
        "set",
        "dimuon",
        "/basic_info/measurements/0/sqrt_s_tev",
        "13.6",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        deposit(&work, "dimuon")["basic_info"]["measurements"][0]["sqrt_s_tev"],
        13.6
    );
    let before = std::fs::read(work.path.join(dep("dimuon", "deposit.json"))).unwrap();
    let out = work.capsule(&["set", "dimuon", "/basic_info/status", "finished"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("/basic_info/status (Basic Information › Status): \"finished\" is not one of the allowed values"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(work.path.join(dep("dimuon", "deposit.json"))).unwrap(),
        before
    );

    // Edit: the editor's result is validated; a bad edit is kept, the deposit is not touched.
    let script = server.tmp.path().join("editor.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nsed -i 's/\"in progress\"/\"under review\"/' \"$1\"\n",
    )
    .unwrap();
    let out = capsule(&work.path)
        .env("EDITOR", format!("sh {}", script.display()))
        .args(["edit", "dimuon"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("~ /basic_info/status: \"in progress\" → \"under review\""),
        "{}",
        stdout(&out)
    );
    let before = std::fs::read(work.path.join(dep("dimuon", "deposit.json"))).unwrap();
    std::fs::write(
        &script,
        "#!/bin/sh\nsed -i 's/\"under review\"/\"finished\"/' \"$1\"\n",
    )
    .unwrap();
    let out = capsule(&work.path)
        .env("EDITOR", format!("sh {}", script.display()))
        .args(["edit", "dimuon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("your edit is kept in"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read(work.path.join(dep("dimuon", "deposit.json"))).unwrap(),
        before
    );
    let kept = stderr(&out)
        .rsplit("kept in ")
        .next()
        .unwrap()
        .trim()
        .to_string();
    assert!(
        std::fs::read_to_string(&kept)
            .unwrap()
            .contains("\"finished\""),
        "the edit must not be lost"
    );
}
