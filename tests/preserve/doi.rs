//! DOIs through a real HTTP server on loopback that speaks DataCite's REST API
//! (support.rs): registration, retries, and the DOIs following the record's life.

use super::*;

fn doi_run(work: &Work, password: Option<&str>) -> Output {
    doi_run_as(work, password, "alice")
}

fn doi_run_as(work: &Work, password: Option<&str>, user: &str) -> Output {
    let mut cmd = capsule(&work.path);
    cmd.env("CAPSULE_USER", user)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Alice Analyst")
        .env("GIT_AUTHOR_EMAIL", "alice@example.org")
        .env("GIT_COMMITTER_NAME", "Alice Analyst")
        .env("GIT_COMMITTER_EMAIL", "alice@example.org")
        .env_remove("CAPSULE_DATACITE_PASSWORD");
    if let Some(p) = password {
        cmd.env("CAPSULE_DATACITE_PASSWORD", p);
    }
    cmd.args(["doi", "higgs-4l"]).output().unwrap()
}

#[test]
fn dois_are_registered_once_whatever_datacite_answers() {
    let a = archive(Fixture {
        v2: true,
        ..Fixture::default()
    });
    let (port, datacite, server) = start_datacite("s3cret");
    let settings = std::fs::read_to_string(a.work.path.join("capsule.toml")).unwrap();
    a.work.write(
        "capsule.toml",
        format!("{settings}\n[datacite]\nprefix = \"10.5072\"\nrepository_id = \"TEST.CAPSULE\"\nurl = \"http://127.0.0.1:{port}\"\ntimeout_secs = 1\n"),
    );
    let identifiers = a.work.path.join(dep("higgs-4l", "identifiers.json"));
    let v1 = "10.5072/capsule.higgs-4l.v1";
    let v2 = "10.5072/capsule.higgs-4l.v2";
    let concept = "10.5072/capsule.higgs-4l";

    // No password in the environment: nothing is sent.
    let out = doi_run(&a.work, None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("CAPSULE_DATACITE_PASSWORD"),
        "{}",
        stderr(&out)
    );
    assert!(datacite.lock().unwrap().log.is_empty());

    // A wrong password: 401, nothing recorded.
    let out = doi_run(&a.work, Some("wrong"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("refused the credentials of repository TEST.CAPSULE (401)"),
        "{}",
        stderr(&out)
    );
    assert!(!identifiers.exists());
    assert!(datacite.lock().unwrap().dois.is_empty());

    // DataCite creates the draft but answers too late: capsule records nothing.
    datacite.lock().unwrap().slow_once = true;
    let out = doi_run(&a.work, Some("s3cret"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("did not answer within 1 s"),
        "{}",
        stderr(&out)
    );
    assert!(!identifiers.exists());
    std::thread::sleep(std::time::Duration::from_millis(2000));
    assert_eq!(
        datacite.lock().unwrap().dois.get(v1).map(String::as_str),
        Some("draft")
    );

    // The metadata is refused (422): the draft taken over is recorded and committed.
    datacite.lock().unwrap().reject_put_once = true;
    let out = doi_run(&a.work, Some("s3cret"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!(
            "DataCite refused {v1} (422): creators: can't be blank"
        )),
        "{}",
        stderr(&out)
    );
    let recorded: Value = read_json(&identifiers);
    assert_eq!(
        recorded["versions"]["1"],
        json!({"doi": v1, "state": "draft"})
    );
    let last = stdout(&run_ok(git(&a.work.path).args([
        "log",
        "-1",
        "--name-only",
        "--format=%s",
    ])));
    assert!(
        last.contains("Register DOIs of higgs-4l") && last.contains("identifiers.json"),
        "{last}"
    );

    // Then everything goes through.
    let out = ok(doi_run(&a.work, Some("s3cret")));
    assert!(
        stdout(&out).contains(&format!("{concept}: findable")),
        "{}",
        stdout(&out)
    );
    let recorded: Value = read_json(&identifiers);
    assert_eq!(recorded["concept"]["doi"], concept);
    assert_eq!(recorded["concept"]["state"], "findable");
    assert_eq!(recorded["concept"]["version"], 2);
    assert_eq!(
        recorded["concept"]["metadata_sha256"]
            .as_str()
            .map(str::len),
        Some(64)
    );
    assert_eq!(recorded["versions"]["2"]["state"], "findable");
    let requests = datacite.lock().unwrap().log.len();

    // A second run registers nothing and sends nothing.
    let out = ok(doi_run(&a.work, Some("s3cret")));
    assert!(
        stdout(&out).contains("Nothing to register"),
        "{}",
        stdout(&out)
    );
    let dc = datacite.lock().unwrap();
    assert_eq!(
        dc.log.len(),
        requests,
        "a second run sent requests: {:?}",
        &dc.log[requests..]
    );
    // Three DOIs, each created exactly once (the retries got 422), all findable.
    let created = dc
        .log
        .iter()
        .filter(|(m, _, status)| m == "POST" && *status == 201)
        .count();
    assert_eq!(created, 3, "{:?}", dc.log);
    assert_eq!(dc.dois.len(), 3, "{:?}", dc.dois);
    for doi in [v1, v2, concept] {
        assert_eq!(dc.dois[doi], "findable", "{doi}");
    }
    let meta = &dc.metadata[v2];
    assert_eq!(meta["event"], "publish");
    assert_eq!(meta["url"], "http://localhost:8000/records/higgs-4l/v2");
    let related = meta["relatedIdentifiers"].to_string();
    assert!(related.contains(&format!(r#""relatedIdentifier":"{concept}","relatedIdentifierType":"DOI","relationType":"IsVersionOf""#)), "{related}");
    assert!(related.contains(&format!(r#""relatedIdentifier":"{v1}","relatedIdentifierType":"DOI","relationType":"IsNewVersionOf""#)), "{related}");
    assert_eq!(
        meta["creators"][0]["nameIdentifiers"][0]["nameIdentifier"],
        "https://orcid.org/0000-0002-4417-9031"
    );
    assert!(dc.metadata[concept]["relatedIdentifiers"]
        .to_string()
        .contains("HasVersion"));
    drop(dc);
    server.unblock();

    // Exports and citations now carry the DOIs.
    let text = stdout(&ok(a.work.capsule(&["cite", "higgs-4l"])));
    assert!(
        text.trim_end().ends_with(&format!("https://doi.org/{v2}")),
        "{text}"
    );
    let out_dir = a.server.tmp.path().join("exports");
    ok(a.work
        .capsule(&["export", "higgs-4l", "--out", out_dir.to_str().unwrap()]));
    let info = std::fs::read_to_string(out_dir.join("higgs-4l-v2/bag-info.txt")).unwrap();
    assert!(
        info.contains(&format!("External-Identifier: {v2}\n")),
        "{info}"
    );
    assert!(
        info.contains(&format!("External-Identifier: {concept}\n")),
        "{info}"
    );
    // With its DOI, the version's DataCite XML is valid against DataCite's kernel-4
    // XML Schema (which requires the DOI).
    if let Some(dir) = xsd::xsd_dir() {
        let xml = out_dir.join("higgs-4l-v2/data/metadata/datacite.xml");
        let valid = xsd::validate(&dir, "datacite", &[&xml]);
        assert!(valid.contains("valid: "), "{valid}");
    }
}

/// Points the archive at the DataCite stand-in on `port`.
fn use_datacite(work: &Work, port: u16) {
    let settings = std::fs::read_to_string(work.path.join("capsule.toml")).unwrap();
    work.write(
        "capsule.toml",
        format!("{settings}\n[datacite]\nprefix = \"10.5072\"\nrepository_id = \"TEST.CAPSULE\"\nurl = \"http://127.0.0.1:{port}\"\n"),
    )
    .commit("DataCite");
    work.push().assert_landed();
}

/// The requests of `log` after the first `from`, as `METHOD path`.
fn requests_since(dc: &DataCite, from: usize) -> Vec<String> {
    dc.log[from..]
        .iter()
        .map(|(m, p, _)| format!("{m} {p}"))
        .collect()
}

/// A new version moves the concept DOI to it and updates the earlier version's
/// relations; a withdrawal hides every DOI (`event: hide`, state `registered`) with
/// the tombstone's metadata and the landing page as URL; each second run sends
/// nothing.
#[test]
fn dois_follow_new_versions_and_withdrawal() {
    let a = archive(Fixture::default());
    let (port, datacite, server) = start_datacite("s3cret");
    use_datacite(&a.work, port);
    let v1 = "10.5072/capsule.higgs-4l.v1";
    let v2 = "10.5072/capsule.higgs-4l.v2";
    let concept = "10.5072/capsule.higgs-4l";
    let page = "http://localhost:8000/records/higgs-4l";

    ok(doi_run(&a.work, Some("s3cret")));
    assert_eq!(datacite.lock().unwrap().updates.len(), 2);
    a.work.push().assert_landed();

    // v2 is published: one new DOI; v1 and the concept are updated, without events.
    let mut higgs = read_json(&a.work.path.join(dep("higgs-4l", "deposit.json")));
    higgs["basic_info"]["keywords"] = json!(["Higgs boson", "CANARY-KEYWORD-3d9a"]);
    a.work
        .write(&dep("higgs-4l", "deposit.json"), pretty(&higgs))
        .commit("keywords");
    a.work.push().assert_landed();
    ok(a.work
        .capsule_as("alice", &["publish", "higgs-4l", "--push"]));
    let before = datacite.lock().unwrap().log.len();
    let out = ok(doi_run(&a.work, Some("s3cret")));
    {
        let dc = datacite.lock().unwrap();
        let sent = requests_since(&dc, before);
        assert_eq!(
            sent.iter().filter(|r| r.starts_with("POST")).count(),
            1,
            "{sent:?}"
        );
        assert_eq!(
            sent.iter().filter(|r| r.starts_with("PUT")).count(),
            3,
            "{sent:?}"
        );
        let updates = &dc.updates[2..];
        assert!(
            updates.contains(&(v2.to_string(), Some("publish".to_string()))),
            "{updates:?}"
        );
        assert!(updates.contains(&(v1.to_string(), None)), "{updates:?}");
        assert!(
            updates.contains(&(concept.to_string(), None)),
            "{updates:?}"
        );
        let related = dc.metadata[v1]["relatedIdentifiers"].to_string();
        assert!(related.contains(&format!(r#""relatedIdentifier":"{v2}","relatedIdentifierType":"DOI","relationType":"IsPreviousVersionOf""#)), "{related}");
        assert!(related.contains(&format!(r#""relatedIdentifier":"{concept}","relatedIdentifierType":"DOI","relationType":"IsVersionOf""#)), "{related}");
        let related = dc.metadata[v2]["relatedIdentifiers"].to_string();
        assert!(related.contains(&format!(r#""relatedIdentifier":"{v1}","relatedIdentifierType":"DOI","relationType":"IsNewVersionOf""#)), "{related}");
        // The concept follows the newest version: its metadata (keywords) and URL.
        let c = &dc.metadata[concept];
        assert_eq!(c["url"], page);
        assert!(
            c["subjects"].to_string().contains("CANARY-KEYWORD-3d9a"),
            "{c}"
        );
        assert!(c["relatedIdentifiers"].to_string().contains(&format!(r#""relatedIdentifier":"{v2}","relatedIdentifierType":"DOI","relationType":"HasVersion""#)));
        assert!(dc.dois.values().all(|s| s == "findable"), "{:?}", dc.dois);
    }
    assert!(
        stdout(&out).contains(&format!("{v1}: metadata updated")),
        "{}",
        stdout(&out)
    );
    let recorded = read_json(&a.work.path.join(dep("higgs-4l", "identifiers.json")));
    assert_eq!(recorded["concept"]["version"], 2);

    // Nothing changed: nothing is sent.
    let before = datacite.lock().unwrap().log.len();
    let out = ok(doi_run(&a.work, Some("s3cret")));
    assert!(
        stdout(&out).contains("Nothing to register"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        requests_since(&datacite.lock().unwrap(), before),
        Vec::<String>::new()
    );
    a.work.push().assert_landed();

    // Withdrawn: every DOI is hidden, points at the landing page, says why, and
    // carries none of the record's content.
    let reason = "Retracted: a calibration error";
    let out = ok(a.work.capsule_as(
        "alice",
        &["withdraw", "higgs-4l", "--reason", reason, "--push"],
    ));
    assert!(
        stdout(&out).contains("capsule doi higgs-4l"),
        "{}",
        stdout(&out)
    );
    let before = datacite.lock().unwrap().log.len();
    let out = ok(doi_run(&a.work, Some("s3cret")));
    {
        let dc = datacite.lock().unwrap();
        let sent = requests_since(&dc, before);
        assert_eq!(
            sent,
            [v1, v2, concept].map(|d| format!("PUT /dois/{d}")).to_vec(),
            "one PUT per DOI, no new DOI"
        );
        let hides = &dc.updates[dc.updates.len() - 3..];
        for doi in [v1, v2, concept] {
            assert!(
                hides.contains(&(doi.to_string(), Some("hide".to_string()))),
                "{hides:?}"
            );
            assert_eq!(
                dc.dois[doi], "registered",
                "{doi} is hidden, still resolving"
            );
            let meta = &dc.metadata[doi];
            assert_eq!(meta["url"], page, "{doi} resolves to the tombstone's page");
            assert_eq!(meta["descriptions"][0]["descriptionType"], "Other");
            assert!(meta["descriptions"][0]["description"]
                .as_str()
                .unwrap()
                .contains(reason));
            assert!(
                meta["dates"]
                    .to_string()
                    .contains(r#""dateType":"Withdrawn""#),
                "{meta}"
            );
            assert!(
                !meta.to_string().contains("CANARY-KEYWORD-3d9a"),
                "{doi}: {meta}"
            );
            assert_eq!(meta.get("subjects"), None);
        }
    }
    assert!(
        stdout(&out).contains(&format!("{concept}: hidden (withdrawn)")),
        "{}",
        stdout(&out)
    );
    let recorded = read_json(&a.work.path.join(dep("higgs-4l", "identifiers.json")));
    assert_eq!(recorded["versions"]["1"]["state"], "registered");

    // Hidden DOIs still resolve, so the record is still cited by its DOI.
    let text = stdout(&ok(a.work.capsule(&["cite", "higgs-4l"])));
    assert!(text.contains(&format!("https://doi.org/{v2}")), "{text}");

    // A second run after the withdrawal sends nothing.
    let before = datacite.lock().unwrap().log.len();
    let out = ok(doi_run(&a.work, Some("s3cret")));
    assert!(stdout(&out).contains("Nothing to send"), "{}", stdout(&out));
    assert_eq!(
        requests_since(&datacite.lock().unwrap(), before),
        Vec::<String>::new()
    );
    server.unblock();
}

/// A withdrawn record that never had DOIs gets none.
#[test]
fn a_withdrawn_record_gets_no_dois() {
    let a = archive(Fixture::default());
    let (port, datacite, server) = start_datacite("s3cret");
    use_datacite(&a.work, port);
    ok(a.work.capsule_as(
        "alice",
        &["withdraw", "higgs-4l", "--reason", "Retracted", "--push"],
    ));
    let out = ok(doi_run(&a.work, Some("s3cret")));
    assert!(stdout(&out).contains("Nothing to send"), "{}", stdout(&out));
    assert!(datacite.lock().unwrap().log.is_empty());
    assert!(!a
        .work
        .path
        .join(dep("higgs-4l", "identifiers.json"))
        .exists());
    server.unblock();
}
