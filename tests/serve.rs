//! `capsule serve` over real HTTP on loopback: it serves the site it built, answers
//! folders with their index, rebuilds when the archive's refs move (a commit, a new
//! record tag) and tells open pages to reload, and never serves a file outside the site.

mod common;
#[path = "browser/serving.rs"]
mod serving;

use std::time::Duration;

use common::*;
use serving::{Serving, EVIL_HTML, EVIL_SVG};

/// A deposit of `schemas/analysis/1.0.0.json` that everyone may read.
fn public_analysis(title: &str) -> String {
    let mut deposit: serde_json::Value = serde_json::from_str(&analysis(
        title,
        &["dilepton"],
        ("Alice Analyst", "alice@example.org"),
    ))
    .unwrap();
    deposit["_access"] = serde_json::json!({
        "deposit-read": {"users": [], "roles": ["public"]},
        "deposit-update": {"users": ["alice"], "roles": []},
        "deposit-admin": {"users": ["alice"], "roles": []}
    });
    serde_json::to_string_pretty(&deposit).unwrap() + "\n"
}

#[test]
fn serve_answers_over_http_rebuilds_on_new_records_and_stays_inside_the_site() {
    let server = Server::new();
    let work = server.clone("work");
    work.write(
        &dep("first", "deposit.json"),
        public_analysis("First dimuon analysis"),
    )
    .commit("first deposit");
    work.push().assert_landed();
    work.publish("first", 1).assert_landed();
    // Beside the site, where a path that climbs out of it would land.
    let out = server.tmp.path().join("www/site");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(out.parent().unwrap().join("secret.txt"), "CANARY-OUTSIDE").unwrap();

    let serving = Serving::start(&work, &out);

    // Pages, folders answered with their index, the API, the reload hook.
    let (status, home) = serving.get("/");
    assert_eq!(status, 200, "{home}");
    assert!(home.contains("First dimuon analysis"), "{home}");
    assert!(
        home.contains("/__capsule/generation"),
        "served pages carry the reload script"
    );
    assert!(
        !std::fs::read_to_string(out.join("index.html"))
            .unwrap()
            .contains("__capsule"),
        "the reload script is never written into the site"
    );
    let (status, page) = serving.get("/records/first/");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("First dimuon analysis"));
    let (status, api) = serving.get("/api/records/first");
    assert_eq!(status, 200, "{api}");
    let api: serde_json::Value = serde_json::from_str(&api).unwrap();
    assert_eq!(api["id"], "first");
    let (status, missing) = serving.get("/records/nope/");
    assert_eq!(status, 404);
    assert!(missing.contains("Page not found"), "{missing}");

    // Nothing outside the site, however the way out is spelled.
    for path in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/records/..%2f..%2fsecret.txt",
        "/..%5csecret.txt",
        "/../../Cargo.toml",
        "/%2e%2e/%2e%2e/Cargo.toml",
    ] {
        let (status, body) = serving.get(path);
        assert!(
            status == 404 || status == 400,
            "{path} answered {status}: {body}"
        );
        assert!(!body.contains("CANARY-OUTSIDE"), "{path} left the site");
        assert!(!body.contains("[package]"), "{path} left the site");
    }

    // A new deposit, committed and published: the served site follows.
    let before = serving.generation();
    work.write(
        &dep("second", "deposit.json"),
        public_analysis("Second ditau analysis"),
    )
    .commit("second deposit");
    work.push().assert_landed();
    work.publish("second", 1).assert_landed();
    let page = serving.wait_for("the new record", "/records/second/", |status, body| {
        status == 200 && body.contains("Second ditau analysis")
    });
    assert!(page.contains("/__capsule/generation"));
    serving.wait_for("the home page", "/", |_, body| {
        body.contains("Second ditau analysis")
    });
    // The site is swapped in before the counter moves: wait for the counter too.
    let after = serving.generation_above(before);

    // A new version of a record: its landing page shows it.
    work.write(
        &dep("first", "deposit.json"),
        public_analysis("First dimuon analysis, revised"),
    )
    .commit("first: revised");
    work.push().assert_landed();
    work.publish("first", 2).assert_landed();
    serving.wait_for("the second version", "/records/first/", |status, body| {
        status == 200 && body.contains("First dimuon analysis, revised")
    });
    let (status, _) = serving.get("/records/first/v2/");
    assert_eq!(status, 200);
    serving.generation_above(after);

    let printed = serving.log();
    assert!(printed.contains("Rebuilt:"), "{printed}");
    drop(serving);
}

/// A deposit's `.html` and `.svg` with scripts in them, published.
fn archive_with_evil_files() -> (Server, Work) {
    let server = Server::new();
    let work = server.clone("work");
    work.write(
        &dep("evil", "deposit.json"),
        public_analysis("Files with scripts"),
    )
    .write(&dep("evil", "evil.html"), EVIL_HTML)
    .write(&dep("evil", "evil.svg"), EVIL_SVG)
    .commit("a deposit with active files");
    work.push().assert_landed();
    work.publish("evil", 1).assert_landed();
    (server, work)
}

#[test]
fn deposit_files_are_served_as_sandboxed_downloads_never_as_pages() {
    let (server, work) = archive_with_evil_files();
    let out = server.tmp.path().join("www/site");
    let serving = Serving::start(&work, &out);

    for (file, marker) in [
        ("evil.html", "setItem('pwned','html')"),
        ("evil.svg", "setItem('pwned','svg')"),
    ] {
        let path = format!("/files/evil/v1/{file}");
        let r = serving.request(&path);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert!(
            r.body.contains(marker),
            "{path} is the deposit's file as it is"
        );
        assert_eq!(
            r.header("Content-Disposition"),
            Some("attachment"),
            "{path}"
        );
        assert_eq!(
            r.header("Content-Security-Policy"),
            Some("sandbox"),
            "{path}"
        );
        assert_eq!(
            r.header("X-Content-Type-Options"),
            Some("nosniff"),
            "{path}"
        );
        let kind = r.header("Content-Type").unwrap_or("");
        assert!(
            !kind.contains("html") && !kind.contains("svg"),
            "{path} is sent as {kind}"
        );
        assert!(
            !r.body.contains("__capsule"),
            "{path}: no reload script is added to a deposit's file"
        );
    }
    // The site's own pages are pages, not downloads.
    let page = serving.request("/records/evil/");
    assert_eq!(page.status, 200);
    assert_eq!(page.header("Content-Disposition"), None);
    assert!(page
        .header("Content-Type")
        .unwrap()
        .starts_with("text/html"));
    // Pages link the files as downloads.
    let html = page.body.replace("&#x2F;", "/");
    for file in ["evil.html", "evil.svg"] {
        let link = format!("href=\"../../files/evil/v1/{file}\" download");
        assert!(html.contains(&link), "`{link}` missing:\n{html}");
    }
    // The API links the same place.
    let (_, api) = serving.get("/api/records/evil");
    assert!(api.contains("/files/evil/v1/evil.html\""), "{api}");
    // Static hosts that read `_headers` get the same recipe for the whole folder.
    let headers = std::fs::read_to_string(out.join("_headers")).unwrap();
    assert!(
        headers.contains(
            "/files/*\n  Content-Disposition: attachment\n  Content-Security-Policy: sandbox\n  X-Content-Type-Options: nosniff\n"
        ),
        "{headers}"
    );
    // Nothing else of the site is under files/.
    for entry in std::fs::read_dir(out.join("files")).unwrap() {
        assert_eq!(entry.unwrap().file_name(), "evil");
    }
}

/// The server watches git, and a build reads HEAD and every ref: it must rebuild for
/// a change of the refs and never for its own reads.
#[test]
fn serve_rebuilds_once_per_commit_and_never_while_nothing_changes() {
    let server = Server::new();
    let work = server.clone("work");
    work.write(
        &dep("first", "deposit.json"),
        public_analysis("First analysis"),
    )
    .commit("first deposit");
    work.push().assert_landed();
    work.publish("first", 1).assert_landed();
    let out = server.tmp.path().join("www/site");
    let serving = Serving::start(&work, &out);
    let rebuilds = |log: &str| log.lines().filter(|l| l.starts_with("Rebuilt:")).count();

    // Idle, with a reader polling like an open page does: no rebuild.
    for _ in 0..30 {
        let _ = serving.get("/");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        serving.generation(),
        1,
        "rebuilt while idle:\n{}",
        serving.log()
    );
    assert_eq!(rebuilds(&serving.log()), 0, "{}", serving.log());

    // One commit: one rebuild.
    work.write(
        &dep("second", "deposit.json"),
        public_analysis("Second analysis"),
    )
    .commit("second deposit");
    let generation = serving.generation_above(1);
    assert_eq!(generation, 2, "{}", serving.log());
    // And none after it, however long nothing changes.
    for _ in 0..30 {
        let _ = serving.get("/");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(serving.generation(), 2, "{}", serving.log());
    assert_eq!(rebuilds(&serving.log()), 1, "{}", serving.log());
}
