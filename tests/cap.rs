//! CAP's schema files judged as CAP judged them, CAP's `x-` validators and CAP user
//! ids, through real pushes. The schemas are read from ../shared/fixtures/cap by path.

mod common;

use common::*;
use serde_json::{json, Value};

/// The questionnaire and the schemas it refers to.
const QUESTIONNAIRE: &[&str] = &[
    "cms-questionnaire.json",
    "deposit.json",
    "access.json",
    "buckets.json",
    "file.json",
    "review.json",
];
/// CMS's analysis form (it carries `x-validate-unique-cadi`) and what it refers to.
const CMS: &[&str] = &[
    "cms.json",
    "deposit.json",
    "access.json",
    "buckets.json",
    "cms-background-estimation.json",
    "cms-cadi-info.json",
    "cms-main-measurements.json",
    "cms-physics-object.json",
    "cms-processing.json",
    "file.json",
    "publication.json",
];

const WORKING_GROUPS: &[&str] = &[
    "BPH", "FTR", "B2G", "EXO", "HIG", "HIN", "SMP", "SUS", "TOP", "PPS", "other",
];

const ACCESS: &str = r#"[people]
alice = { email = "alice@example.org", cap_id = 1234 }
bob = { email = "bob@example.org", cap_id = 5678 }
carol = "carol@example.org"

[groups]
"#;

/// A server whose archive has `schemas` from the fixtures and people with CAP ids;
/// `None` when the fixtures are missing (the test skips).
fn server_with(schemas: &[&str], settings: &str) -> Option<(Server, Work)> {
    let fixtures = cap_fixtures()?;
    let server = Server::new();
    let work = server.clone("work");
    let files: Vec<String> = schemas
        .iter()
        .map(|f| fixtures.join("schemas").join(f).display().to_string())
        .collect();
    let add = capsule(&work.path)
        .args(["schema", "add"])
        .args(&files)
        .output()
        .unwrap();
    assert!(add.status.success(), "{}", stderr(&add));
    work.write("access.toml", ACCESS);
    if !settings.is_empty() {
        let old = std::fs::read_to_string(work.path.join("capsule.toml")).unwrap();
        work.write("capsule.toml", format!("{old}\n{settings}\n"));
    }
    work.commit("CAP schemas and people with CAP ids");
    work.push().assert_landed();
    Some((server, work))
}

fn questionnaire(wg: &str, date: &str) -> String {
    serde_json::to_string_pretty(&json!({
        "$schema": "cms-stats-questionnaire/0.0.1",
        "analysis_context": {"wg": wg, "next_deadline_date": date},
        "_deposit": {"owners": [1234]},
        "_access": {
            "deposit-read": {"users": [], "roles": []},
            "deposit-update": {"users": [5678], "roles": []},
            "deposit-admin": {"users": [1234], "roles": []}
        }
    }))
    .unwrap()
}

#[test]
fn every_working_group_of_the_cms_questionnaire_is_accepted_through_a_push() {
    let Some((server, work)) = server_with(QUESTIONNAIRE, "") else {
        return;
    };
    // `oneOf` of `const` choices in a file that declares draft-04: CAP applied
    // `const` (Draft 7), so exactly one choice matches each value.
    for wg in WORKING_GROUPS {
        let id = format!("q-{}", wg.to_lowercase());
        work.write(&dep(&id, "deposit.json"), questionnaire(wg, "2026-12-01"));
    }
    let out = work.capsule(&["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("ok: 11 deposits valid as drafts"));
    work.commit("one questionnaire per working group");
    work.push().assert_landed();
    assert_eq!(server.rev("main"), Some(work.head()));

    // A value that is none of the choices is still refused.
    work.write(
        &dep("q-bad", "deposit.json"),
        questionnaire("XYZ", "2026-12-01"),
    );
    work.commit("no such working group");
    work.push()
        .assert_rejected_with("/analysis_context/wg")
        .assert_rejected_with("matches none of the forms");
}

#[test]
fn a_free_text_date_is_a_warning_and_a_problem_with_cap_strict() {
    let Some((_server, work)) = server_with(QUESTIONNAIRE, "") else {
        return;
    };
    work.write(
        &dep("q-date", "deposit.json"),
        questionnaire("HIG", "next week, before pre-approval"),
    );
    let out = work.capsule(&["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("warning: ")
            && stderr(&out).contains("/analysis_context/next_deadline_date")
            && stderr(&out).contains("only a warning"),
        "{}",
        stderr(&out)
    );
    work.commit("a date as CAP's users wrote them");
    let push = work.push();
    push.assert_landed();
    assert!(
        push.remote_lines()
            .iter()
            .any(|l| l.contains("warning") && l.contains("next_deadline_date")),
        "{}",
        push.output
    );

    // The archive opts in: the same value is now a problem, locally and at push time.
    let old = std::fs::read_to_string(work.path.join("capsule.toml")).unwrap();
    work.write(
        "capsule.toml",
        format!("{old}\n[validation]\ncap_strict = true\n"),
    );
    work.commit("enforce formats in CAP schemas");
    work.push().assert_landed();
    let out = work.capsule(&["validate"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("is not a valid date"),
        "{}",
        stdout(&out)
    );
    work.write(
        &dep("q-date", "deposit.json"),
        questionnaire("HIG", "the week after"),
    );
    work.commit("another free-text date");
    work.push().assert_rejected_with("is not a valid date");
}

#[test]
fn deposits_owned_by_cap_ids_are_guarded_as_their_people() {
    let Some((_server, work)) = server_with(QUESTIONNAIRE, "") else {
        return;
    };
    // `capsule new` writes what the schema wants: alice's CAP id, not her name.
    let out = work.capsule_as(
        "alice",
        &["new", "cms-stats-questionnaire", "--id", "q-new", "--json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["owner_entry"], 1234);
    let deposit: Value = serde_json::from_str(
        &std::fs::read_to_string(work.path.join(dep("q-new", "deposit.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(deposit["_deposit"]["owners"], json!([1234]));
    assert_eq!(deposit["_access"]["deposit-admin"]["users"], json!([1234]));
    // carol has no CAP id: the message names the access.toml line to write.
    let out = work.capsule_as("carol", &["new", "cms-stats-questionnaire", "--id", "q-c"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("carol = { email = \"carol@example.org\", cap_id = <CAP user id> }"),
        "{}",
        stderr(&out)
    );

    work.write(
        &dep("q-owned", "deposit.json"),
        questionnaire("TOP", "2026-01-01"),
    );
    work.commit("alice creates a deposit owned by her CAP id");
    work.push_as("alice", "HEAD:main").assert_landed();

    // The owner (by id) edits it; bob holds deposit-update by id.
    work.write(
        &dep("q-owned", "deposit.json"),
        questionnaire("TOP", "2026-02-01"),
    );
    work.commit("owner edit");
    work.push_as("alice", "HEAD:main").assert_landed();
    work.write(
        &dep("q-owned", "deposit.json"),
        questionnaire("TOP", "2026-03-01"),
    );
    work.commit("updater edit");
    work.push_as("bob", "HEAD:main").assert_landed();

    // carol, a member without rights, is refused, and told whom to ask by name.
    work.write(
        &dep("q-owned", "deposit.json"),
        questionnaire("TOP", "2026-04-01"),
    );
    work.commit("carol's edit");
    work.push_as("carol", "HEAD:main")
        .assert_rejected_with("carol")
        .assert_rejected_with("alice (CAP id 1234)");
}

fn cms_analysis(cadi: &str, dataset: &str) -> String {
    serde_json::to_string_pretty(&json!({
        "$schema": "cms-analysis/0.0.1",
        "basic_info": {"cadi_id": cadi},
        "input_data": {"mc_bg_datasets": [dataset]},
        "_deposit": {"owners": [1234]}
    }))
    .unwrap()
}

#[test]
fn a_cadi_id_is_unique_and_das_paths_have_their_form() {
    let Some((_server, work)) = server_with(CMS, "") else {
        return;
    };
    let das = "/DoubleMuon/Run2016B-17Jul2018_ver2-v1/MINIAOD";
    work.write(
        &dep("cms-1", "deposit.json"),
        cms_analysis("HIG-19-001", das),
    );
    work.commit("first analysis");
    work.push().assert_landed();

    work.write(
        &dep("cms-2", "deposit.json"),
        cms_analysis("HIG-19-001", das),
    );
    work.commit("second analysis with the same CADI entry");
    let push = work.push();
    push.assert_rejected_with("/basic_info/cadi_id")
        .assert_rejected_with("is already the CADI ID of deposit cms-1");
    // `capsule validate` says the same before the push.
    let out = work.capsule(&["validate", "cms-2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("deposit cms-1"), "{}", stdout(&out));

    work.git(&["reset", "-q", "--hard", "HEAD~1"]);
    work.write(
        &dep("cms-2", "deposit.json"),
        cms_analysis("HIG-19-002", "DoubleMuon MINIAOD 2016"),
    );
    work.commit("a dataset that is not a DAS path");
    work.push()
        .assert_rejected_with("is not a DAS dataset path");
    work.git(&["reset", "-q", "--hard", "HEAD~1"]);
    work.write(
        &dep("cms-2", "deposit.json"),
        cms_analysis("HIG-19-002", das),
    );
    work.commit("fixed");
    work.push().assert_landed();
}
