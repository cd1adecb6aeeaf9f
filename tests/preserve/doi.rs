//! DOIs through a real HTTP server on loopback that speaks DataCite's REST API
//! (support.rs): registration, retries, and the DOIs following the record's life.

use super::*;

fn doi_run(work: &Work, password: Option<&str>) -> Output {
    let mut cmd = capsule(&work.path);
    cmd.env("CAPSULE_USER", "alice")
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
    assert_eq!(
        recorded["concept"],
        json!({"doi": concept, "state": "findable", "version": 2})
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
