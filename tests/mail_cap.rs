//! CAP's real notification config (`cms-stats-questionnaire` 0.0.1, from
//! ../shared/fixtures/cap/schemas/cms-questionnaire.json) on deposits written for it:
//! the expected mails below are written out by reading its rules.
//!
//! Two methods it names are CERN-specific (`get_cms_stat_recipients`,
//! `cms_stats_committee_by_pag`); capsule does not have them, so they yield nothing.

mod common;

use capsule::access::Access;
use capsule::deposit::SchemaRef;
use capsule::mail::config::{self, Severity};
use capsule::mail::render::Templates;
use capsule::mail::rules::{
    evaluate, Action, ArchiveView, Evaluation, Event, Mail, Outcome, ReviewView,
};
use capsule::schema::LoadedSchema;
use serde_json::{json, Value};

const PEOPLE: &str = r#"
[people]
alice = "alice@cern.ch"
bob = "bob@cern.ch"
carol = "carol@cern.ch"

[groups]
comittee-mail = ["carol"]
"#;

fn schema() -> LoadedSchema {
    let sref = SchemaRef {
        name: "cms-stats-questionnaire".into(),
        version: "0.0.1".into(),
    };
    // Every test starts with `common::cap_fixtures()`, which skips it without them.
    let file = common::cap_fixtures()
        .expect("the CAP fixtures")
        .join("schemas/cms-questionnaire.json");
    let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    LoadedSchema::parse(&sref, &bytes).expect("the CAP questionnaire loads")
}

/// A questionnaire with a CADI id, PDFs and an MVA: every optional rule fires.
fn full() -> Value {
    json!({
        "$schema": "cms-stats-questionnaire/0.0.1",
        "_deposit": {"owners": ["alice"]},
        "_access": {"deposit-read": {"users": [], "roles": ["public"]}},
        "general_title": "Search for heavy resonances & friends",
        "analysis_context": {"name": "Alice", "email": "alice@cern.ch", "wg": "EXO", "cadi_id": "EXO-23-001"},
        "multivariate_discriminants": {"read_sc_twiki": "Yes", "mva_use": "Yes"},
        "parton_distribution_functions": {"pdf_uncertainty": {"options": "You use the method of META PDFs (applies only to searches)"}}
    })
}

/// A questionnaire without a CADI id, PDFs or an MVA.
fn bare() -> Value {
    json!({
        "$schema": "cms-stats-questionnaire/0.0.1",
        "_deposit": {"owners": ["alice"]},
        "_access": {"deposit-read": {"users": [], "roles": ["public"]}},
        "general_title": "A smaller analysis",
        "analysis_context": {"wg": "SMP"},
        "multivariate_discriminants": {"mva_use": "No"}
    })
}

fn run(deposit: Value, action: Action, version: Option<u32>, pusher: &str) -> Evaluation {
    let schema = schema();
    let (notifications, issues) = config::parse(&schema.config, "/config");
    assert!(
        issues.iter().all(|i| i.severity == Severity::Warning),
        "{issues:#?}"
    );
    let access = Access::parse(PEOPLE).unwrap();
    let archive = ArchiveView {
        name: "CMS analyses",
        base_url: "https://cap.example.org",
        access: &access,
        from: "CAP <cap@example.org>",
        fallback: &[],
    };
    let review = (action == Action::Review).then(|| ReviewView {
        kind: "review".into(),
        verdict: Some("approved".into()),
        body: "ok".into(),
        author: pusher.into(),
        created: "2026-02-01T10:00:00Z".into(),
        name: format!("20260201T100000Z-{pusher}-review"),
        review: None,
        url: String::new(),
    });
    let event = Event {
        action,
        deposit_id: "q-exo".into(),
        deposit,
        record_version: version,
        pusher: Some(pusher.into()),
        review,
        draft_revision: Some(2),
    };
    evaluate(&notifications, archive, &event, &Templates::embedded())
}

fn mail(outcome: &Outcome) -> &Mail {
    match outcome {
        Outcome::Mail(m) => m,
        other => panic!("expected a mail, got {other:?}"),
    }
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_config_loads_with_warnings_for_cerns_own_methods_only() {
    let Some(_) = common::cap_fixtures() else {
        return;
    };
    let schema = schema();
    let (notifications, issues) = config::parse(&schema.config, "/config");
    assert_eq!(notifications.rules("publish").len(), 3);
    assert_eq!(notifications.rules("review").len(), 2);
    let warned: Vec<&str> = issues.iter().map(|i| i.pointer.as_str()).collect();
    assert_eq!(
        warned,
        [
            "/config/notifications/actions/publish/0/body/ctx/3/method",
            "/config/notifications/actions/publish/0/recipients/bcc/0/method",
            "/config/notifications/actions/publish/1/body/ctx/3/method",
            "/config/notifications/actions/publish/2/body/ctx/3/method",
        ]
    );
    assert!(issues.iter().all(|i| i.severity == Severity::Warning));
    // Its template files and base template exist (embedded), and every template compiles.
    assert!(config::check_templates(&notifications, &Templates::embedded()).is_empty());
}

#[test]
fn a_first_publish_with_everything_mails_four_ways() {
    let Some(_) = common::cap_fixtures() else {
        return;
    };
    let out = run(full(), Action::Publish, Some(1), "bob");
    assert_eq!(out.outcomes.len(), 3);
    let subject =
        "Questionnaire for EXO-23-001 q-exo - New Published Analysis | CERN Analysis Preservation";

    // 1. HTML: the owner, the submitter, the PDF forum (PDFs given), the conveners (MVA used).
    let first = mail(&out.outcomes[0]);
    assert_eq!(first.subject, subject);
    assert_eq!(first.from, "CAP <cap@example.org>");
    assert!(first.to.is_empty() && first.cc.is_empty());
    assert_eq!(
        first.bcc,
        strings(&[
            "alice@cern.ch",
            "bob@cern.ch",
            "pdf-forum-placeholder@cern.ch",
            "cms-conveners-placeholder@cern.ch"
        ])
    );
    let html = first.html.as_deref().unwrap();
    for line in [
        "<strong>Search for heavy resonances &amp; friends</strong> was published for the first time in CMS analyses, as record <code>q-exo</code> by bob.",
        "CADI URL: https://cms.cern.ch/iCMS/analysisadmin/cadi?ancode=EXO-23-001<br>",
        "Title: Search for heavy resonances &amp; friends<br>",
        "Questionnaire URL: https://cap.example.org/records/q-exo/<br>",
        "Submitted by bob@cern.ch.</p>",
    ] {
        assert!(html.contains(line), "{line}\nnot in\n{html}");
    }
    assert!(
        !html.contains("Statistics Committee"),
        "cms_stats_committee_by_pag is CERN's own"
    );
    assert!(
        html.starts_with("<!DOCTYPE html>"),
        "wrapped in the HTML layout"
    );

    // 2. Plain text to the analysis's hypernews list (a CADI id exists).
    let second = mail(&out.outcomes[1]);
    assert_eq!(second.subject, subject);
    assert_eq!(second.bcc, strings(&["hn-cms-EXO-23-001@cern.ch"]));
    assert_eq!(
        second.text.as_deref().unwrap(),
        "CADI URL: https://cms.cern.ch/iCMS/analysisadmin/cadi?ancode=EXO-23-001\n\
         Title: Search for heavy resonances & friends\n\
         Questionnaire URL: https://cap.example.org/records/q-exo/\n\
         \n\
         Submitted by bob@cern.ch.\n"
    );

    // 3. The HTML template sent as plain text (as the config says) to the JIRA list.
    let third = mail(&out.outcomes[2]);
    assert_eq!(
        third.bcc,
        strings(&["cms-conveners-jira-placeholder@cern.ch"])
    );
    let text = third.text.as_deref().unwrap();
    assert!(third.html.is_none());
    assert!(
        text.contains("Title: Search for heavy resonances & friends<br>"),
        "{text}"
    );
    assert!(!text.contains("&amp;"), "plain text is never escaped");
}

#[test]
fn a_new_version_without_cadi_pdfs_or_mva_mails_only_the_people() {
    let Some(_) = common::cap_fixtures() else {
        return;
    };
    let out = run(bare(), Action::Publish, Some(2), "alice");
    let first = mail(&out.outcomes[0]);
    // No CADI id: the subject's inline if gives "", and the spaces around it stay,
    // as CAP sends them (two spaces).
    assert_eq!(
        first.subject,
        "Questionnaire for  q-exo - New Version of Published Analysis | CERN Analysis Preservation"
    );
    // The owner is also the submitter: once.
    assert_eq!(first.bcc, strings(&["alice@cern.ch"]));
    let html = first.html.as_deref().unwrap();
    assert!(
        html.contains("Version 2 of <strong>A smaller analysis</strong> was published"),
        "{html}"
    );
    assert!(!html.contains("CADI URL"), "{html}");
    // No CADI id, no MVA: the other two name nobody, so they send nothing.
    assert!(matches!(out.outcomes[1], Outcome::NoRecipients { .. }));
    assert!(matches!(out.outcomes[2], Outcome::NoRecipients { .. }));
}

#[test]
fn reviews_mail_the_people_and_committee_members_reach_the_hypernews() {
    let Some(_) = common::cap_fixtures() else {
        return;
    };
    // carol is in the (misspelt, as in CAP) `comittee-mail` group.
    let out = run(full(), Action::Review, Some(1), "carol");
    let subject =
        "Questionnaire for EXO-23-001 - New Review on Analysis | CERN Analysis Preservation";
    let first = mail(&out.outcomes[0]);
    assert_eq!(first.subject, subject);
    assert_eq!(first.bcc, strings(&["alice@cern.ch", "carol@cern.ch"]));
    let html = first.html.as_deref().unwrap();
    for line in [
        "<p>CADI URL: https://cms.cern.ch/iCMS/analysisadmin/cadi?ancode=EXO-23-001</p>",
        "<p>Title: Search for heavy resonances &amp; friends</p>",
        "<p>Questionnaire URL: https://cap.example.org/records/q-exo/</p>",
        "<p>Submitted by carol@cern.ch.</p>",
    ] {
        assert!(html.contains(line), "{line}\nnot in\n{html}");
    }
    let second = mail(&out.outcomes[1]);
    assert_eq!(second.subject, subject);
    assert_eq!(second.bcc, strings(&["hn-cms-EXO-23-001@cern.ch"]));
    assert_eq!(
        second.text.as_deref().unwrap(),
        "CADI URL: https://cms.cern.ch/iCMS/analysisadmin/cadi?ancode=EXO-23-001\n\
         Title: Search for heavy resonances & friends\n\
         Questionnaire URL: https://cap.example.org/records/q-exo/\n\
         \n\
         Submitted by carol@cern.ch.\n"
    );

    // bob is not in the group: no hypernews mail. A never-published draft links the draft.
    let out = run(full(), Action::Review, None, "bob");
    assert_eq!(
        mail(&out.outcomes[0]).bcc,
        strings(&["alice@cern.ch", "bob@cern.ch"])
    );
    assert!(mail(&out.outcomes[0])
        .html
        .as_deref()
        .unwrap()
        .contains("Questionnaire URL: https://cap.example.org/drafts/q-exo/"));
    assert!(matches!(out.outcomes[1], Outcome::NoRecipients { .. }));

    // No CADI id: the subject keeps CAP's empty slot, both spaces included.
    let out = run(bare(), Action::Review, None, "carol");
    assert_eq!(
        mail(&out.outcomes[0]).subject,
        "Questionnaire for  - New Review on Analysis | CERN Analysis Preservation"
    );
}
