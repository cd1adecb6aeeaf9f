//! `capsule demo` runs end to end on a fresh machine and shows what it promises.

mod common;

use common::*;

#[test]
fn the_demo_runs_and_shows_each_step() {
    let tmp = tempfile::TempDir::new().unwrap();
    let dir = tmp.path().join("demo");
    let out = capsule(tmp.path())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .arg("demo")
        .arg(&dir)
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    for expected in [
        "capsule: ok: 1 commit, 3 deposits and 1 schema checked",
        "(Basic Information › Status): \"finished\" is not one of the allowed values",
        "bob may not change deposit higgs-4l on main",
        "Published records/higgs-4l/v1",
        "publishes records/higgs-4l/v2",
        &format!("Committed {}", dep("higgs-4l", "reviews/")),
        "[record v2]",
        "~ Basic Information › Status (/basic_info/status): \"in progress\" → \"published\"",
        "Fetched ttbar-xsec from imports/cadi.json",
        "/general_title: \"Inclusive top quark pair production cross-section in the dilepton channel\" → \"Measurement of the top quark pair production cross section at 13.6 TeV\"",
        "(refs/tags/v1.0) in /analysis_software/repositories",
        &format!("Stored the code in {}", dep("ttbar-xsec", "software/ttbar-code-")),
        "Version v2 of H -> ZZ* -> 4l (Run 2 legacy) published",
        "New review on document | Demo analyses",
    ] {
        assert!(
            text.contains(expected),
            "`{expected}` missing from the demo:\n{text}"
        );
    }
    let server = dir.join("server.git");
    for tag in ["records/higgs-4l/v1", "records/higgs-4l/v2"] {
        run_ok(git(&server).args(["rev-parse", "--verify", "--quiet", tag]));
    }
    // The captured code landed on the server as a bundle that git can read.
    let listing = stdout(&run_ok(git(&server).args([
        "ls-tree",
        "-r",
        "--name-only",
        "main",
        &dep("ttbar-xsec", "software"),
    ])));
    assert!(listing.trim().ends_with(".bundle"), "{listing}");

    // Exploring as the demo says: who you are, then the README's searches find the
    // hand-written keyword that the fetch (step 11) kept beside its own.
    assert!(text.contains("export CAPSULE_USER=alice"), "{text}");
    let work = dir.join("work");
    let keywords = capsule(&work)
        .env("CAPSULE_USER", "alice")
        .args(["search", "basic_info.keywords:ttbar", "--json"])
        .output()
        .unwrap();
    assert!(
        keywords.status.success(),
        "{}{}",
        stdout(&keywords),
        stderr(&keywords)
    );
    assert!(
        stdout(&keywords).contains("ttbar-xsec"),
        "{}",
        stdout(&keywords)
    );
    let deposit: serde_json::Value = serde_json::from_slice(
        &std::fs::read(work.join(dep("ttbar-xsec", "deposit.json"))).unwrap(),
    )
    .unwrap();
    let keywords = deposit["basic_info"]["keywords"].as_array().unwrap();
    for kept in ["ttbar", "dilepton", "Run 3"] {
        assert!(
            keywords.iter().any(|k| k == kept),
            "{kept} missing: {keywords:?}"
        );
    }
}
