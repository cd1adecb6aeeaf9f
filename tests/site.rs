//! `capsule build` on real archives: what the site holds, that every internal link
//! resolves, what a public build must never contain, byte-identical rebuilds, failed
//! builds that leave the previous site alone, and incremental rebuilds.

mod common;
#[path = "browser/serving.rs"]
mod serving;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::site_check::*;
use common::*;

const PEOPLE: &str = r#"[people]
alice = "alice@example.org"
carol = "carol@example.org"

[groups]
physics-reviewers = ["carol"]
"#;

/// A schema without constraints, so that a deposit can carry hostile text anywhere.
const FREE_SCHEMA: &str = r#"{
  "$schema": "http://json-schema.org/draft-07/schema#",
  "title": "Free form",
  "type": "object",
  "config": {"reviewable": true, "experiment": "TEST"},
  "properties": {
    "general_title": {"type": "string", "title": "Title"},
    "basic_info": {"type": "object", "title": "Basic", "properties": {
      "keywords": {"type": "array", "items": {"type": "string"}},
      "people_info": {"type": "array", "items": {"type": "object"}},
      "note": {"type": "string", "title": "Note"},
      "link": {"type": "string", "title": "Link"}
    }}
  }
}"#;

pub const SCRIPT: &str = "<script>window.__pwned=1</script><img src=x onerror=window.__pwned=2>";

fn public(mut deposit: serde_json::Value) -> serde_json::Value {
    deposit["_access"]["deposit-read"] = serde_json::json!({"users": [], "roles": ["public"]});
    deposit
}

fn restricted(mut deposit: serde_json::Value) -> serde_json::Value {
    deposit["_access"]["deposit-read"] = serde_json::json!({"users": ["alice"], "roles": []});
    deposit
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap() + "\n"
}

/// The canary deposit: `SCRIPT` in every string field a page shows.
pub fn canary_deposit() -> serde_json::Value {
    public(serde_json::json!({
        "$schema": "free/1.0.0",
        "general_title": format!("Canary {SCRIPT}"),
        "basic_info": {
            "keywords": [format!("kw {SCRIPT}")],
            "people_info": [{"name": format!("Eve {SCRIPT}"), "email": "eve@example.org"}],
            "note": SCRIPT,
            "link": "javascript:window.__pwned=3",
            SCRIPT: SCRIPT
        },
        SCRIPT: {"x": SCRIPT},
        "_deposit": {"owners": ["alice"]},
        "_access": {"deposit-update": {"users": ["alice"], "roles": []}, "deposit-admin": {"users": ["alice"], "roles": []}}
    }))
}

/// An archive with: higgs (public, v1 and v2, a public and an internal review, then a
/// draft change), secret (published but restricted), unpublished (a draft only) and
/// canary (public, `<script>` everywhere).
pub fn archive() -> (Server, Work) {
    let server = Server::new();
    let work = server.clone("work");
    let settings = std::fs::read_to_string(work.path.join("capsule.toml")).unwrap();
    let settings = settings.replace(
        "protected_branches = [\"main\"]",
        "protected_branches = [\"main\"]\nreviewers = [\"physics-reviewers\"]",
    );
    let higgs = public(serde_json::from_str(HIGGS).unwrap());
    let mut secret = restricted(serde_json::from_str(HIGGS).unwrap());
    secret["general_title"] = "CANARY-RESTRICTED secret analysis".into();
    let mut unpublished = public(serde_json::from_str(HIGGS).unwrap());
    unpublished["general_title"] = "CANARY-DRAFT never published".into();
    work.write("capsule.toml", settings)
        .write("access.toml", PEOPLE)
        .write("schemas/free/1.0.0.json", FREE_SCHEMA)
        .write(&dep("higgs", "deposit.json"), pretty(&higgs))
        .write(&dep("higgs", "plots/mass fit.txt"), "m = 125.1 GeV\n")
        .write(&dep("secret", "deposit.json"), pretty(&secret))
        .write(&dep("unpublished", "deposit.json"), pretty(&unpublished))
        .write(&dep("canary", "deposit.json"), pretty(&canary_deposit()))
        .commit("four deposits");
    work.push().assert_landed();
    for id in ["higgs", "secret", "canary"] {
        let out = work.capsule_as("alice", &["publish", id, "--push", "-m", "First version"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let mut higgs2 = higgs.clone();
    higgs2["basic_info"]["status"] = "published".into();
    work.write(&dep("higgs", "deposit.json"), pretty(&higgs2))
        .commit("higgs: published");
    work.push().assert_landed();
    let out = work.capsule_as(
        "alice",
        &["publish", "higgs", "--push", "-m", "Status: published"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    for (body, internal) in [
        ("Complete and reproducible.", false),
        ("CANARY-INTERNAL the fit is fragile", true),
    ] {
        let mut args = vec![
            "review", "higgs", "--type", "approved", "-m", body, "--push",
        ];
        if internal {
            args.push("--internal");
        }
        let out = work.capsule_as("carol", &args);
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    work.git(&["pull", "--quiet", "--ff-only", "origin", "main"]);
    let mut draft = higgs2.clone();
    draft["basic_info"]["analysis_name"] = "CANARY-DRAFTCHANGE not yet published".into();
    work.write(&dep("higgs", "deposit.json"), pretty(&draft))
        .commit("higgs: a draft change");
    work.push().assert_landed();
    (server, work)
}

pub fn build(work: &Work, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["build", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    work.capsule_as("alice", &args)
}

pub fn build_ok(work: &Work, out: &Path, extra: &[&str]) -> String {
    let output = build(work, out, extra);
    assert!(
        output.status.success(),
        "build failed:\n{}{}",
        stdout(&output),
        stderr(&output)
    );
    stdout(&output)
}

#[test]
fn a_public_site_has_every_page_and_every_link_resolves() {
    let (_server, work) = archive();
    let site = work.path.join("out/site");
    let text = build_ok(&work, &site, &[]);
    assert!(text.contains("Built public site of 2 records"), "{text}");
    for path in [
        "index.html",
        "404.html",
        "browse/index.html",
        "browse/all/index.html",
        "browse/schema/analysis/index.html",
        "browse/experiment/cms/index.html",
        "browse/keyword/higgs-boson/index.html",
        "browse/person/marta-kowalczyk/index.html",
        "records/higgs/index.html",
        "records/higgs/v1/index.html",
        "records/higgs/v2/index.html",
        "records/higgs/v2/diff/index.html",
        "files/higgs/v2/plots/mass fit.txt",
        "_headers",
        "schemas/index.html",
        "schemas/analysis/1.0.0/index.html",
        "search/index.html",
        "search/manifest.js",
        "api/records/index.json",
        "api/records/higgs/index.json",
        "api/records/higgs/v1/index.json",
        "api/schemas/analysis/1.0.0/index.json",
        "sitemap.xml",
        "feed.xml",
        "assets/style.css",
        "assets/search.js",
    ] {
        assert!(site.join(path).is_file(), "{path} is missing");
    }
    let landing = unescape(&read(&site, "records/higgs/index.html"));
    for expected in [
        "<h2 id=\"s-basic-info-h\">Basic Information</h2>",
        "Where the analysis stands today.",
        "<th scope=\"col\">E-mail</th>",
        "href=\"mailto:marta.kowalczyk@example.org\"",
        "href=\"https://doi.org/10.99999/demo.ggh4l.2018\"",
        "href=\"../../files/higgs/v2/plots/mass%20fit.txt\" download",
        "Complete and reproducible.",
        "\"@type\":\"Dataset\"",
        "@misc{higgs",
        "Version 2</strong>",
        "href=\"../../records/higgs/v2/diff/index.html\"",
        "href=\"../../records/higgs/v1/index.html\"",
    ] {
        assert!(
            landing.contains(expected),
            "`{expected}` missing from the landing page"
        );
    }
    // The latest version's own page is no second copy of the landing page: it sends
    // readers there; older versions have their pages.
    let latest = read(&site, "records/higgs/v2/index.html");
    assert!(latest.contains("url=../index.html") && latest.contains("href=\"../index.html\""));
    assert!(latest.len() * 10 < landing.len(), "{latest}");
    assert!(read(&site, "records/higgs/v1/index.html").contains("You are looking at version 1"));
    // The file digest is the SHA-256 of its content.
    assert!(landing.contains("<code class=\"digest\">b925359c5fa02e6484e667a0c81188f971f1e59c915a3ce7d16fc6616892f702</code>"));
    let diff = unescape(&read(&site, "records/higgs/v2/diff/index.html"));
    assert!(diff.contains("Basic Information › Status"), "{diff}");
    assert!(diff.contains("<del>in progress</del>") && diff.contains("<ins>published</ins>"));
    let schema = unescape(&read(&site, "schemas/analysis/1.0.0/index.html"));
    assert!(
        schema.contains("<code>basic_info.status</code>")
            && schema.contains("<code>under review</code>")
    );
    // CAP's shapes.
    let api: serde_json::Value =
        serde_json::from_str(&read(&site, "api/records/higgs/index.json")).unwrap();
    assert_eq!(api["id"], "higgs");
    assert_eq!(api["version"], 2);
    assert!(api["created"].as_str().unwrap().ends_with('Z'));
    assert_eq!(api["metadata"]["basic_info"]["status"], "published");
    assert!(
        api["metadata"].get("_access").is_none(),
        "access lists are not published"
    );
    assert!(api["links"]["self"]
        .as_str()
        .unwrap()
        .ends_with("/api/records/higgs/v2/index.json"));
    assert_eq!(api["files"][0]["key"], "plots/mass fit.txt");
    let index: serde_json::Value =
        serde_json::from_str(&read(&site, "api/records/index.json")).unwrap();
    assert_eq!(index["hits"]["total"], 2);
    assert!(index["aggregations"]["facet_collection"]["buckets"].is_array());
    let checked = check_links(&site);
    assert!(checked > 100, "only {checked} links checked");
}

#[test]
fn a_public_build_never_shows_drafts_restricted_deposits_or_internal_reviews() {
    let (_server, work) = archive();
    let site = work.path.join("out/public");
    build_ok(&work, &site, &[]);
    for (path, bytes) in files(&site) {
        let text = String::from_utf8_lossy(&bytes);
        for canary in [
            "CANARY-RESTRICTED",
            "CANARY-DRAFT",
            "CANARY-INTERNAL",
            "unpublished",
            "secret",
        ] {
            assert!(
                !text.contains(canary),
                "{canary} leaked into {}",
                path.display()
            );
        }
        if path
            .extension()
            .is_some_and(|e| e == "html" || e == "xml" || e == "js")
        {
            assert!(
                !text.contains("<script>window") && !text.contains("<img src=x"),
                "unescaped markup from a deposit in {}",
                path.display()
            );
            assert!(!text.contains("href=\"javascript:"), "{}", path.display());
        }
    }
    let canary = read(&site, "records/canary/index.html");
    assert!(
        canary.contains("&lt;script&gt;window.__pwned=1&lt;&#x2F;script&gt;"),
        "{canary}"
    );

    // The internal site shows all of it, and says so.
    let internal = work.path.join("out/internal");
    build_ok(&work, &internal, &["--drafts"]);
    let all: String = files(&internal)
        .values()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    for canary in [
        "CANARY-RESTRICTED",
        "CANARY-DRAFT never",
        "CANARY-DRAFTCHANGE",
        "CANARY-INTERNAL",
    ] {
        assert!(
            all.contains(canary),
            "{canary} missing from the internal site"
        );
    }
    assert!(read(&internal, "index.html").contains("Internal site."));
    assert!(internal.join("drafts/unpublished/index.html").is_file());
    check_links(&internal);
}

#[test]
fn builds_are_byte_identical_and_a_failed_build_changes_nothing() {
    let (_server, work) = archive();
    let one = work.path.join("out/one");
    let two = work.path.join("out/two");
    build_ok(&work, &one, &[]);
    build_ok(&work, &two, &["--full"]);
    let (a, b) = (files(&one), files(&two));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (path, bytes) in &a {
        assert!(
            b[path] == *bytes,
            "{} differs between two builds",
            path.display()
        );
    }

    // A broken template override: the build fails, says where, and the site stays.
    work.write(
        "templates/site/home.html",
        "{% extends \"base.html\" %}{% block content %}{{ oops(}{% endblock content %}",
    )
    .commit("a broken theme");
    let out = build(&work, &one, &["--full"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("template error"), "{}", stderr(&out));
    assert_eq!(files(&one), a, "the failed build changed the site");
    let leftovers: Vec<_> = std::fs::read_dir(one.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("capsule-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A template that fails only when a listing page is rendered (pages made of many
    // records are rendered on worker threads): the same, naming the page.
    work.write(
        "templates/site/home.html",
        "{% extends \"base.html\" %}{% block content %}home{% endblock content %}",
    )
    .write(
        "templates/site/listing.html",
        "{% extends \"base.html\" %}{% block content %}{{ no_such_value }}{% endblock content %}",
    )
    .commit("a listing template that cannot render");
    let out = build(&work, &one, &["--full"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("browse/all/index.html"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("no_such_value"), "{}", stderr(&out));
    assert_eq!(files(&one), a, "the failed build changed the site");

    // A folder capsule did not write is never replaced.
    let foreign = work.path.join("out/foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("precious.txt"), "keep me").unwrap();
    let out = build(&work, &foreign, &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("was not built by capsule"),
        "{}",
        stderr(&out)
    );
    assert!(foreign.join("precious.txt").is_file());
}

#[test]
fn an_override_replaces_one_theme_file() {
    let (_server, work) = archive();
    work.write("site/style.css", "body { color: rebeccapurple; }\n")
        .write("templates/site/404.html", "{% extends \"base.html\" %}{% block content %}<h1>Lost in the archive</h1>{% endblock content %}")
        .commit("our theme");
    let site = work.path.join("out/themed");
    let text = build_ok(&work, &site, &[]);
    assert!(
        text.contains("theme overrides: templates/site/404.html, site/style.css"),
        "{text}"
    );
    assert_eq!(
        read(&site, "assets/style.css"),
        "body { color: rebeccapurple; }\n"
    );
    assert!(read(&site, "404.html").contains("Lost in the archive"));
    assert!(read(&site, "assets/search.js").contains("capsuleSearch"));
}

#[test]
fn record_pages_are_the_same_with_the_fields_rendered_in_rust_or_by_the_macros() {
    // With the embedded templates a record's fields are rendered in Rust; any
    // override of a template sends them through `macros.html` again. An override that
    // is the embedded file itself must give the same record pages, byte for byte.
    let (_server, work) = archive();
    let embedded = work.path.join("out/embedded");
    build_ok(&work, &embedded, &["--drafts"]);
    work.write(
        "templates/site/macros.html",
        include_str!("../templates/site/macros.html"),
    )
    .commit("the embedded macros as an override");
    let macros = work.path.join("out/macros");
    let text = build_ok(&work, &macros, &["--drafts"]);
    assert!(text.contains("templates/site/macros.html"), "{text}");
    let pages = |site: &Path| -> BTreeMap<PathBuf, Vec<u8>> {
        files(site)
            .into_iter()
            .filter(|(path, _)| {
                (path.starts_with("records") || path.starts_with("drafts"))
                    && path.extension().is_some_and(|e| e == "html")
            })
            .collect()
    };
    let (ours, theirs) = (pages(&embedded), pages(&macros));
    assert!(ours.len() >= 4, "{:?}", ours.keys());
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>()
    );
    let mut fields = 0;
    for (path, page) in &ours {
        let page = String::from_utf8_lossy(page);
        fields += page.matches("<div class=\"field").count();
        assert_eq!(
            page,
            String::from_utf8_lossy(&theirs[path]),
            "{}",
            path.display()
        );
    }
    assert!(fields > 10, "the pages show fields");
}

#[test]
fn a_rebuild_renders_only_the_record_that_changed() {
    let (_server, work) = archive();
    let site = work.path.join("out/inc");
    build_ok(&work, &site, &[]);
    let before = files(&site);
    // Nothing changed: nothing is rendered again.
    let report: serde_json::Value =
        serde_json::from_str(&build_ok(&work, &site, &["--json"])).unwrap();
    assert_eq!(report["incremental"], true);
    assert_eq!(report["rendered_records"], 0);
    assert_eq!(files(&site), before);
    // The report times the build and each of its steps, in order.
    let phases = report["phases"].as_object().expect("phases in the report");
    assert_eq!(
        phases.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "read archive",
            "previous build",
            "records",
            "search index",
            "pages",
            "manifest",
            "commit"
        ]
    );
    let sum: f64 = phases.values().map(|v| v.as_f64().unwrap()).sum();
    let seconds = report["seconds"].as_f64().unwrap();
    assert!(
        sum <= seconds * 1000.0 + 1.0,
        "{sum} ms of steps in {seconds} s"
    );
    // One new version of one record.
    let out = work.capsule_as(
        "alice",
        &["publish", "higgs", "--push", "-m", "Third version"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value =
        serde_json::from_str(&build_ok(&work, &site, &["--json"])).unwrap();
    assert_eq!(report["rendered_records"], 1, "{report}");
    assert!(site.join("records/higgs/v3/index.html").is_file());
    // The result is the site a full build makes.
    let full = work.path.join("out/full");
    build_ok(&work, &full, &["--full"]);
    let (inc, all) = (files(&site), files(&full));
    // The incremental state (`.capsule-site.json` and `.capsule-site/`) is not the
    // site: search documents are numbered differently when added one by one.
    let site_file = |k: &PathBuf| !k.to_string_lossy().starts_with(".capsule-site");
    assert_eq!(
        inc.keys().filter(|k| site_file(k)).collect::<Vec<_>>(),
        all.keys().filter(|k| site_file(k)).collect::<Vec<_>>()
    );
    for (path, bytes) in &all {
        if site_file(path) {
            assert!(
                inc[path] == *bytes,
                "{} differs from a full build",
                path.display()
            );
        }
    }
    check_links(&site);
}

/// Real headless Chromium (Debian's), driven through playwright-core from
/// tests/browser/drive.js: home, a listing to a record, another version, a diff, a
/// search and its result, the citation downloads, and the canary deposit whose
/// `<script>`s must not run.
/// Screenshots are kept in target/site-screenshots/.
#[test]
fn a_reader_in_chromium_browses_searches_and_no_deposit_script_runs() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if !Path::new(&chromium).is_file() {
        skip_or_fail(
            "needs Chromium",
            &format!("{chromium} is not installed"),
            "install it: apt-get install chromium (or set CHROMIUM=<path>)",
        );
        return;
    }
    if !driver.join("node_modules/playwright-core").is_dir() {
        skip_or_fail(
            "needs playwright-core",
            "tests/browser/node_modules is missing",
            "run `npm ci` in tests/browser",
        );
        return;
    }
    if !require_tool("node", "nodejs") {
        return;
    }
    let (server, work) = archive();
    // A record whose files carry scripts.
    let mut evil = public(serde_json::from_str(HIGGS).unwrap());
    evil["general_title"] = "Files with scripts".into();
    work.write(&dep("evil", "deposit.json"), pretty(&evil))
        .write(&dep("evil", "evil.html"), serving::EVIL_HTML)
        .write(&dep("evil", "evil.svg"), serving::EVIL_SVG)
        .commit("a deposit with active files");
    work.push().assert_landed();
    work.publish("evil", 1).assert_landed();
    let site = work.path.join("out/browse");
    build_ok(&work, &site, &[]);
    let served = serving::Serving::start(&work, &server.tmp.path().join("www/served"));
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("site-screenshots");
    // Screenshots of an earlier run must not stand in for this one's.
    let _ = std::fs::remove_dir_all(&shots);
    let out = std::process::Command::new("node")
        .current_dir(&driver)
        .arg("drive.js")
        .arg(&site)
        .arg(&shots)
        .arg(served.url())
        .env("CHROMIUM", &chromium)
        .output()
        .expect("cannot run node");
    drop(served);
    let report = stdout(&out);
    assert!(
        out.status.success(),
        "the browser run failed:\n{report}\n{}",
        stderr(&out)
    );
    let parsed: serde_json::Value = serde_json::from_str(&report).unwrap();
    let steps = parsed["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 12, "{report}");
    assert_eq!(
        parsed["citation"],
        serde_json::json!({
            "BibTeX": {"file": "higgs-v2.bib", "start": "@misc{"},
            "CSL-JSON": {"file": "higgs-v2.json", "start": "[\n  {\n"}
        }),
        "{report}"
    );
    // Tables read well on a phone and on a desktop: the page never scrolls sideways
    // (wide tables scroll in their own box), no cell is a sliver, no word is cut, and
    // only long tokens may break anywhere.
    for width in ["390", "1280"] {
        let layout = &parsed["layout"][width];
        assert_eq!(layout["bodyOverflow"], 0, "{width} px: {layout}");
        assert!(layout["cells"].as_u64().unwrap() > 20, "{layout}");
        assert!(
            layout["narrowestCell"].as_u64().unwrap() >= 40,
            "{width} px: a table cell is narrower than 40 px: {layout}"
        );
        assert_eq!(layout["brokenWords"], serde_json::json!([]), "{width} px");
        assert_eq!(layout["anywhereCells"], serde_json::json!([]), "{width} px");
        // "3 December 2026", and the publish message on its own.
        assert_eq!(layout["message"], "Status: published", "{layout}");
    }
    println!("layout: {}", parsed["layout"]);
    println!("sandbox: {}", parsed["sandbox"]);
    for shot in parsed["shots"].as_array().unwrap() {
        println!("screenshot: {}", shot.as_str().unwrap());
    }
    // The not-found page under a sub-path links back into that sub-path.
    assert!(
        parsed["notFoundHome"]
            .as_str()
            .is_some_and(|h| h.ends_with("/sub/index.html")),
        "{report}"
    );
    // A deposit's script never ran in the site's origin, though the files were fetched.
    let sandbox = &parsed["sandbox"];
    assert_eq!(
        sandbox["localStorage"],
        serde_json::Value::Null,
        "{sandbox}"
    );
    assert!(
        !sandbox["cookie"].as_str().unwrap().contains("pwned"),
        "{sandbox}"
    );
    assert!(
        !sandbox["title"].as_str().unwrap().contains("PWNED"),
        "{sandbox}"
    );
    assert!(sandbox["downloads"].as_u64().unwrap() >= 1, "{sandbox}");
    // One screenshot per step, kept for a person to look at.
    for (i, step) in steps.iter().enumerate() {
        let shot = shots.join(format!("{}-{}.png", i + 1, step["name"].as_str().unwrap()));
        let bytes = std::fs::read(&shot).unwrap_or_else(|e| panic!("{}: {e}", shot.display()));
        assert!(
            bytes.starts_with(b"\x89PNG"),
            "{} is not a PNG",
            shot.display()
        );
    }
}

/// `[site] out` in capsule.toml: the post-receive hook rebuilds the site into that
/// folder after every push (incrementally), and a failed rebuild never fails a push.
#[test]
fn post_receive_rebuilds_the_site_named_in_capsule_toml() {
    let server = Server::new();
    let work = server.clone("work");
    let settings = std::fs::read_to_string(work.path.join("capsule.toml")).unwrap();
    let with_site =
        |out: &str| format!("{settings}\n[site]\nout = \"{out}\"\ntitle = \"Built by the hook\"\n");
    let higgs = public(serde_json::from_str(HIGGS).unwrap());
    work.write("capsule.toml", with_site("published-site"))
        .write(&dep("higgs", "deposit.json"), pretty(&higgs))
        .commit("a site folder, and a deposit");
    let push = work.push();
    push.assert_landed();
    assert!(
        push.output.contains("capsule: site rebuilt"),
        "{}",
        push.output
    );
    // Relative to the git folder; nothing is published yet.
    let site = server.git_dir.join("published-site");
    assert!(read(&site, "index.html").contains("Built by the hook"));
    assert!(!site.join("records/higgs").exists());

    // Publishing is a push of a record tag: the record appears, and only it is rendered.
    let push = work.publish("higgs", 1);
    push.assert_landed();
    assert!(push.output.contains("1 re-rendered"), "{}", push.output);
    assert!(read(&site, "records/higgs/v1/index.html").contains("Built by the hook"));
    assert!(read(&site, "api/records/higgs/index.json").contains("\"version\": 1"));
    check_links(&site);

    // A folder the hook cannot write: a warning, and the push lands all the same.
    std::fs::write(server.git_dir.join("blocked"), "a file, not a folder").unwrap();
    work.write("capsule.toml", with_site("blocked/site"))
        .commit("a site folder that cannot be made");
    let push = work.push();
    push.assert_landed();
    assert!(
        push.output.contains("the site was not rebuilt"),
        "{}",
        push.output
    );
    assert!(site.join("records/higgs/v1/index.html").is_file());
}

/// `capsule new` followed by `capsule publish`, filled in with a valid analysis: the
/// stdout and stderr of publish.
fn create_and_publish(work: &Work, id: &str, title: &str) -> (serde_json::Value, String) {
    let out = work.capsule_as("alice", &["new", "analysis", "--id", id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let created: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(work.path.join(dep(id, "deposit.json"))).unwrap(),
    )
    .unwrap();
    let mut filled: serde_json::Value = serde_json::from_str(&analysis(
        title,
        &["open data"],
        ("Alice Analyst", "alice@example.org"),
    ))
    .unwrap();
    filled["_access"] = created["_access"].clone();
    filled["_deposit"] = created["_deposit"].clone();
    work.write(&dep(id, "deposit.json"), pretty(&filled))
        .commit(&format!("{id}: filled in"));
    work.push().assert_landed();
    let out = work.capsule_as("alice", &["publish", id, "--push"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    (created, format!("{}{}", stdout(&out), stderr(&out)))
}

/// The archive decides who reads new deposits (`[archive] default_readers`, public in
/// what `capsule init` writes): a record published there is on the public site; in an
/// archive that keeps new deposits private, `capsule publish` says the record will not
/// be public and how to change that, and the way it names works.
#[test]
fn a_published_record_reaches_the_public_site_or_publish_says_why_not() {
    let server = Server::new();
    let work = server.clone("work");
    let settings = std::fs::read_to_string(work.path.join("capsule.toml")).unwrap();
    assert!(
        settings.contains("\ndefault_readers = [\"public\"]\n"),
        "capsule init makes new deposits public:\n{settings}"
    );
    let site = work.path.join("out/site");

    let (created, said) = create_and_publish(&work, "open", "An open analysis");
    assert_eq!(
        created["_access"]["deposit-read"],
        serde_json::json!({"users": ["alice"], "roles": ["public"]}),
        "capsule new writes the archive's default readers"
    );
    assert!(!said.contains("will not be on the public site"), "{said}");
    build_ok(&work, &site, &[]);
    assert!(read(&site, "records/open/index.html").contains("An open analysis"));

    // An archive that keeps new deposits to their creators.
    work.write(
        "capsule.toml",
        settings.replace(
            "\ndefault_readers = [\"public\"]\n",
            "\ndefault_readers = []\n",
        ),
    )
    .commit("new deposits are private");
    work.push().assert_landed();
    let (created, said) = create_and_publish(&work, "closed", "A closed analysis");
    assert_eq!(
        created["_access"]["deposit-read"],
        serde_json::json!({"users": ["alice"], "roles": []})
    );
    for needed in [
        "records/closed/v1 will not be on the public site",
        "_access.deposit-read",
        "capsule set closed /_access/deposit-read/roles/- public",
        "default_readers",
    ] {
        assert!(said.contains(needed), "`{needed}` missing:\n{said}");
    }
    assert!(!said.contains("make it public: git push"), "{said}");
    build_ok(&work, &site, &[]);
    assert!(!site.join("records/closed").exists());

    // What publish told to do.
    let out = work.capsule_as(
        "alice",
        &["set", "closed", "/_access/deposit-read/roles/-", "public"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    work.commit("closed: readable by everyone");
    work.push().assert_landed();
    let out = work.capsule_as("alice", &["publish", "closed", "--push"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("will not be on the public site"));
    build_ok(&work, &site, &[]);
    assert!(read(&site, "records/closed/index.html").contains("A closed analysis"));
}
