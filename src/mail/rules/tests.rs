//! One test per rule of NOTIFICATIONS.md.

use super::*;
use crate::mail::config::parse;
use serde_json::json;

const PEOPLE: &str = r#"
[people]
alice = "alice@example.org"
bob = "bob@example.org"
carol = "carol@example.org"

[groups]
conveners = ["carol", "physics"]
physics = ["bob"]
"#;

fn access() -> Access {
    Access::parse(PEOPLE).unwrap()
}

fn deposit() -> Value {
    json!({
        "$schema": "analysis/1.0.0",
        "general_title": "Z → ee & friends",
        "_deposit": {"owners": ["alice", "bob"]},
        "basic_info": {"status": "published", "analysis_name": "Zee", "count": 3, "zero": 0,
                       "keywords": ["ee", "Z"], "empty": "", "none": null, "list": [], "obj": {},
                       "flag": true, "off": false},
        "analysis_context": {"cadi_id": "EXO-23-001"},
        "_access": {"deposit-read": {"users": ["alice"], "roles": ["public"]}}
    })
}

fn event(action: Action, version: Option<u32>) -> Event {
    Event {
        action,
        deposit_id: "zee".into(),
        deposit: deposit(),
        record_version: version,
        pusher: Some("bob".into()),
        review: None,
        draft_revision: Some(4),
    }
}

fn run_with(config: Value, event: &Event, fallback: &[String]) -> Evaluation {
    let (notifications, issues) = parse(&json!({ "notifications": config }), "/config");
    assert!(
        issues
            .iter()
            .all(|i| i.severity != crate::mail::config::Severity::Error),
        "{issues:#?}"
    );
    let access = access();
    let archive = ArchiveView {
        name: "Test archive",
        base_url: "https://analyses.example.org/",
        access: &access,
        from: "Test archive <capsule@example.org>",
        fallback,
    };
    evaluate(&notifications, archive, event, &Templates::embedded())
}

fn run(config: Value, event: &Event) -> Evaluation {
    run_with(config, event, &[])
}

fn mails(evaluation: &Evaluation) -> Vec<&Mail> {
    evaluation
        .outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Mail(m) => Some(m),
            _ => None,
        })
        .collect()
}

/// One publish rule with these `to` items and this subject template.
fn to_rule(items: Value, subject: &str) -> Value {
    json!({"actions": {"publish": [{"subject": {"template": subject}, "recipients": {"recipients": items}}]}})
}

fn subject_of(config: Value, event: &Event) -> String {
    mails(&run(config, event))[0].subject.clone()
}

fn to_of(items: Value) -> Vec<String> {
    let evaluation = run(to_rule(items, "s"), &event(Action::Publish, Some(1)));
    match &evaluation.outcomes[0] {
        Outcome::Mail(m) => m.to.clone(),
        Outcome::NoRecipients { .. } => Vec::new(),
        other => panic!("{other:?}"),
    }
}

fn check(path: &str, condition: &str, value: Option<Value>) -> bool {
    let mut c = json!({"path": path, "condition": condition});
    if let Some(v) = value {
        c["value"] = v;
    }
    !to_of(json!([{"checks": [c], "mails": {"default": ["yes@example.org"]}}])).is_empty()
}

#[test]
fn paths_walk_object_keys_only() {
    let d = deposit();
    assert_eq!(lookup(&d, "basic_info.status"), Some(&json!("published")));
    assert_eq!(lookup(&d, "basic_info.missing"), None);
    assert_eq!(lookup(&d, "basic_info.status.deeper"), None);
    assert_eq!(
        lookup(&d, "basic_info.keywords.0"),
        None,
        "no array indices"
    );
    assert_eq!(lookup(&d, ""), None);
}

#[test]
fn empty_means_python_falsy() {
    for v in [
        json!(null),
        json!(""),
        json!(0),
        json!(0.0),
        json!(false),
        json!([]),
        json!({}),
    ] {
        assert!(is_empty(&v), "{v}");
    }
    for v in [
        json!(" "),
        json!(1),
        json!(true),
        json!([0]),
        json!({"a": null}),
    ] {
        assert!(!is_empty(&v), "{v}");
    }
}

#[test]
fn equals_and_not_equals() {
    assert!(check(
        "basic_info.status",
        "equals",
        Some(json!("published"))
    ));
    assert!(!check("basic_info.status", "equals", Some(json!("draft"))));
    assert!(
        check("basic_info.count", "equals", Some(json!(3.0))),
        "3 == 3.0 as in Python"
    );
    assert!(
        check("basic_info.flag", "equals", None),
        "value defaults to true"
    );
    assert!(check(
        "basic_info.status",
        "not_equals",
        Some(json!("draft"))
    ));
    assert!(!check(
        "basic_info.status",
        "not_equals",
        Some(json!("published"))
    ));
}

#[test]
fn exists_ignores_value() {
    assert!(check("basic_info.status", "exists", Some(json!(false))));
    assert!(check("analysis_context", "exists", None));
    assert!(!check("basic_info.missing", "exists", None));
}

#[test]
fn is_in_reads_lists_strings_and_objects() {
    assert!(check("basic_info.keywords", "is_in", Some(json!("ee"))));
    assert!(!check("basic_info.keywords", "is_in", Some(json!("mumu"))));
    assert!(
        check("basic_info.status", "is_in", Some(json!("publ"))),
        "substring"
    );
    assert!(check("basic_info", "is_in", Some(json!("status"))), "key");
    assert!(
        !check("basic_info.count", "is_in", Some(json!(3))),
        "a number holds nothing"
    );
    assert!(check(
        "basic_info.keywords",
        "is_not_in",
        Some(json!("mumu"))
    ));
    assert!(!check(
        "basic_info.keywords",
        "is_not_in",
        Some(json!("ee"))
    ));
    assert!(
        !check("basic_info.count", "is_not_in", Some(json!(3))),
        "an error is false"
    );
}

#[test]
fn every_path_condition_is_false_on_missing_or_empty_data() {
    for path in [
        "basic_info.missing",
        "basic_info.empty",
        "basic_info.none",
        "basic_info.list",
        "basic_info.obj",
        "basic_info.zero",
        "basic_info.off",
        "basic_info.status.below_a_string",
    ] {
        for (condition, value) in [
            ("equals", json!("")),
            ("equals", json!(0)),
            ("not_equals", json!("anything")),
            ("exists", json!(true)),
            ("is_in", json!("x")),
            ("is_not_in", json!("x")),
        ] {
            assert!(
                !check(path, condition, Some(value.clone())),
                "{condition} {path} {value}"
            );
        }
    }
}

#[test]
fn unknown_conditions_are_false() {
    assert!(!check("basic_info.status", "is_bigger", Some(json!("a"))));
}

#[test]
fn egroup_membership_comes_from_access_groups() {
    // bob is in physics, which is in conveners; the path is ignored.
    assert!(check(
        "ignored.path",
        "is_egroup_member",
        Some(json!("conveners"))
    ));
    assert!(check(
        "basic_info.missing",
        "is_egroup_member",
        Some(json!("physics"))
    ));
    assert!(!check(
        "basic_info.status",
        "is_egroup_member",
        Some(json!("nobody-group"))
    ));
    let mut anonymous = event(Action::Publish, Some(1));
    anonymous.pusher = None;
    let rule = to_rule(
        json!([{"checks": [{"condition": "is_egroup_member", "value": "conveners"}], "mails": {"default": ["xy@example.org"]}}]),
        "s",
    );
    assert!(matches!(
        run(rule, &anonymous).outcomes[0],
        Outcome::NoRecipients { .. }
    ));
}

#[test]
fn checks_nest_with_op_and_empty_lists_are_false() {
    let yes = json!({"path": "basic_info.status", "condition": "exists"});
    let no = json!({"path": "basic_info.missing", "condition": "exists"});
    let gated = |checks: Value, op: Option<&str>| {
        let mut item = json!({"checks": checks, "mails": {"default": ["xy@example.org"]}});
        if let Some(op) = op {
            item["op"] = json!(op);
        }
        !to_of(json!([item])).is_empty()
    };
    assert!(gated(json!([yes, yes]), None), "and by default");
    assert!(!gated(json!([yes, no]), None));
    assert!(gated(json!([yes, no]), Some("or")));
    assert!(
        gated(json!([yes, no]), Some("OR")),
        "op is case-insensitive"
    );
    assert!(!gated(json!([no, no]), Some("or")));
    assert!(
        gated(json!([no, {"op": "and", "checks": [yes, yes]}]), Some("or")),
        "nested group"
    );
    assert!(!gated(json!([yes, {"op": "or", "checks": [no, no]}]), None));
    assert!(
        !gated(json!([yes, {"checks": []}]), None),
        "an empty nested group is false"
    );
    // At the item level, absent or empty checks mean the item always applies.
    assert!(gated(json!([]), None));
    assert_eq!(
        to_of(json!([{"mails": {"default": ["xy@example.org"]}}])),
        ["xy@example.org"]
    );
}

#[test]
fn an_invalid_op_is_false_at_run_time() {
    let (notifications, issues) = parse(
        &json!({"notifications": to_rule(json!([{"op": "xor", "checks": [{"path": "basic_info.status", "condition": "exists"}],
                                                 "mails": {"default": ["xy@example.org"]}}]), "s")}),
        "/config",
    );
    assert_eq!(issues.len(), 1);
    let access = access();
    let archive = ArchiveView {
        name: "a",
        base_url: "http://x",
        access: &access,
        from: "aa@example.org",
        fallback: &[],
    };
    let e = evaluate(
        &notifications,
        archive,
        &event(Action::Publish, Some(1)),
        &Templates::embedded(),
    );
    assert!(matches!(e.outcomes[0], Outcome::NoRecipients { .. }));
}

#[test]
fn a_malformed_check_is_false() {
    let (notifications, issues) = parse(
        &json!({"notifications": to_rule(json!([{"checks": [{"path": "basic_info.status"}],
                                                 "mails": {"default": ["xy@example.org"]}}]), "s")}),
        "/config",
    );
    assert_eq!(issues.len(), 1, "a config error at push time");
    let access = access();
    let archive = ArchiveView {
        name: "a",
        base_url: "http://x",
        access: &access,
        from: "aa@example.org",
        fallback: &[],
    };
    let e = evaluate(
        &notifications,
        archive,
        &event(Action::Publish, Some(1)),
        &Templates::embedded(),
    );
    assert!(matches!(e.outcomes[0], Outcome::NoRecipients { .. }));
}

#[test]
fn builtins_and_methods() {
    let vars = "{{ action }}|{{ base_url }}|{{ published_id }}|{{ draft_id }}|{{ revision }}|{{ working_url }}|{{ submitter_id }}";
    let published = subject_of(
        to_rule(json!(["xy@example.org"]), vars),
        &event(Action::Publish, Some(1)),
    );
    assert_eq!(
        published,
        "publish|https://analyses.example.org/|zee|zee|0|https://analyses.example.org/records/zee/|bob"
    );
    let never = subject_of(
        json!({"actions": {"review": [{"subject": {"template": vars}, "recipients": {"recipients": ["xy@example.org"]}}]}}),
        &event(Action::Review, None),
    );
    assert_eq!(
        never,
        "review|https://analyses.example.org/||zee||https://analyses.example.org/drafts/zee/|bob"
    );

    let methods = json!({"actions": {"publish": [{
        "ctx": [{"method": "draft_revision"}, {"method": "draft_url"}, {"method": "published_url"},
                {"method": "submitter_email"}, {"method": "creator_email"},
                {"method": "get_owner"}, {"method": "get_submitter"}],
        "subject": {"template": "{{ draft_revision }}|{{ draft_url }}|{{ published_url }}|{{ submitter_email }}|{{ creator_email }}|{{ get_owner | join(',') }}|{{ get_submitter | join(',') }}"},
        "recipients": {"recipients": ["xy@example.org"]}}]}});
    assert_eq!(
        subject_of(methods, &event(Action::Publish, Some(3))),
        "4|https://analyses.example.org/drafts/zee/|https://analyses.example.org/records/zee/|bob@example.org|alice@example.org|alice@example.org|bob@example.org"
    );
    let revision = json!({"actions": {"publish": [{"ctx": [{"method": "revision"}],
        "subject": {"template": "{{ revision }}"}, "recipients": {"recipients": ["xy@example.org"]}}]}});
    assert_eq!(
        subject_of(revision, &event(Action::Publish, Some(3))),
        "2",
        "v3 is revision 2"
    );
}

#[test]
fn a_record_not_everyone_may_read_links_its_draft_page() {
    // The public site leaves such a record out: its records/ page would not exist.
    let mut e = event(Action::Publish, Some(1));
    e.deposit["_access"]["deposit-read"]["roles"] = json!([]);
    let rule = json!({"actions": {"publish": [{"ctx": [{"method": "published_url"}],
        "subject": {"template": "{{ working_url }}|{{ published_url }}"},
        "recipients": {"recipients": ["xy@example.org"]}}]}});
    assert_eq!(
        subject_of(rule, &e),
        "https://analyses.example.org/drafts/zee/|"
    );
}

#[test]
fn owners_given_as_emails_or_objects_resolve() {
    let mut e = event(Action::Publish, Some(1));
    e.deposit["_deposit"]["owners"] = json!([{"email": "owner@example.org"}]);
    let rule = to_rule(json!([{"method": "get_owner"}]), "s");
    assert_eq!(mails(&run(rule.clone(), &e))[0].to, ["owner@example.org"]);
    e.deposit["_deposit"]["owners"] = json!([]);
    assert!(matches!(
        run(rule.clone(), &e).outcomes[0],
        Outcome::NoRecipients { .. }
    ));
    e.deposit["_deposit"]["owners"] = json!(["unknown-user"]);
    assert!(
        matches!(run(rule, &e).outcomes[0], Outcome::NoRecipients { .. }),
        "no e-mail known"
    );
}

#[test]
fn ctx_precedence_item_over_builtins_over_config() {
    let config = json!({"actions": {"publish": [{
        "ctx": [
            {"name": "title", "path": "basic_info.analysis_name"},
            {"name": "revision", "path": "basic_info.status"},
            {"name": "who", "path": "basic_info.status"}
        ],
        "subject": {"template": "{{ title }}|{{ revision }}|{{ who }}|{{ action }}",
                    "ctx": [{"name": "who", "path": "analysis_context.cadi_id"},
                            {"name": "action", "path": "basic_info.analysis_name"}]},
        "recipients": {"recipients": ["xy@example.org"]}
    }]}});
    // title: config only; revision: the built-in beats config; who, action: the item's own ctx wins.
    assert_eq!(
        subject_of(config, &event(Action::Publish, Some(2))),
        "Zee|1|EXO-23-001|Zee"
    );
}

#[test]
fn missing_data_and_unknown_methods_render_empty() {
    let config = json!({"actions": {"publish": [{
        "ctx": [{"name": "nothing", "path": "no.such.path"}, {"method": "cms_stats_committee_by_pag"}],
        "subject": {"template": "[{{ nothing }}][{{ cms_stats_committee_by_pag }}][{{ cms_stats_committee_by_pag is defined }}][{{ undefined_name.deep }}]"},
        "recipients": {"recipients": ["xy@example.org"]}
    }]}});
    assert_eq!(
        subject_of(config, &event(Action::Publish, Some(1))),
        "[][][False][]"
    );
}

#[test]
fn subjects_default_method_template_and_file() {
    let with = |subject: Value| json!({"actions": {"publish": [{"subject": subject, "recipients": {"recipients": ["xy@example.org"]}}]}});
    let e = event(Action::Publish, Some(1));
    let no_subject = json!({"actions": {"publish": [{"recipients": {"recipients": ["xy@example.org"]}}],
                                        "review": [{"recipients": {"recipients": ["xy@example.org"]}}]}});
    assert_eq!(
        subject_of(no_subject.clone(), &e),
        "New published document | Test archive"
    );
    assert_eq!(
        subject_of(no_subject, &event(Action::Review, Some(1))),
        "New review on document | Test archive"
    );
    assert_eq!(
        subject_of(
            with(json!({"method": "working_url", "template": "ignored"})),
            &e
        ),
        "https://analyses.example.org/records/zee/",
        "method wins over template"
    );
    assert_eq!(
        subject_of(with(json!({"method": "no_such_method"})), &e),
        "New published document | Test archive"
    );
    assert_eq!(
        subject_of(with(json!({"template": "Line one\n  line two  "})), &e),
        "Line one line two"
    );
    assert_eq!(
        subject_of(with(json!({"ctx": []})), &e),
        "New published document | Test archive"
    );
    let mut overrides = std::collections::BTreeMap::new();
    overrides.insert(
        "mail/subject.txt".to_string(),
        "From a file: {{ published_id }}".to_string(),
    );
    let (n, _) = parse(
        &json!({"notifications": with(json!({"template_file": "subject.txt"}))}),
        "/config",
    );
    let access = access();
    let archive = ArchiveView {
        name: "a",
        base_url: "http://x",
        access: &access,
        from: "aa@example.org",
        fallback: &[],
    };
    let out = evaluate(&n, archive, &e, &Templates::with_overrides(overrides));
    assert_eq!(mails(&out)[0].subject, "From a file: zee");
}

#[test]
fn only_html_bodies_are_escaped() {
    let config = json!({"actions": {"publish": [
        {"ctx": [{"name": "t", "path": "general_title"}],
         "subject": {"template": "{{ t }}"},
         "body": {"template": "<p>{{ t }}</p>"},
         "recipients": {"recipients": ["xy@example.org"]}},
        {"ctx": [{"name": "t", "path": "general_title"}],
         "subject": {"template": "{{ t }}"},
         "body": {"template": "{{ t }}", "plain": true},
         "recipients": {"recipients": ["xy@example.org"]}}
    ]}});
    let out = run(config, &event(Action::Publish, Some(1)));
    let m = mails(&out);
    assert_eq!(m[0].subject, "Z → ee & friends");
    let html = m[0].html.as_deref().unwrap();
    assert!(html.contains("<p>Z → ee &amp; friends</p>"), "{html}");
    assert!(
        html.starts_with("<!DOCTYPE html>"),
        "wrapped in the base layout: {html}"
    );
    // The plain part of the HTML mail: derived from its HTML, entities decoded.
    let text = m[0].text.as_deref().unwrap();
    assert!(text.contains("Z → ee & friends\n"), "{text}");
    assert!(!text.contains("<p>") && !text.contains("&amp;"), "{text}");
    assert_eq!(m[1].text.as_deref(), Some("Z → ee & friends\n"));
    assert!(m[1].html.is_none());
}

#[test]
fn bodies_template_wins_and_base_template_replaces_the_layout() {
    let mut overrides = std::collections::BTreeMap::new();
    overrides.insert(
        "mail/layout.html".to_string(),
        "<main>{{ message }}</main>".to_string(),
    );
    overrides.insert(
        "mail/plain-layout.txt".to_string(),
        "Dear all,\n{{ message }}\n-- capsule".to_string(),
    );
    overrides.insert(
        "mail/body.html".to_string(),
        "<b>from the file</b>".to_string(),
    );
    let config = json!({"actions": {"publish": [
        {"body": {"template": "<i>inline</i>", "template_file": "mail/body.html", "base_template": "mail/layout.html"},
         "recipients": {"recipients": ["xy@example.org"]}},
        {"body": {"template_file": "mail/body.html", "base_template": "layout.html"},
         "recipients": {"recipients": ["xy@example.org"]}},
        {"body": {"template": "    indented & <raw>\n\n\n\n    text", "plain": true, "base_template": "mail/plain-layout.txt"},
         "recipients": {"recipients": ["xy@example.org"]}}
    ]}});
    let (n, issues) = parse(&json!({"notifications": config}), "/config");
    assert!(issues.is_empty(), "{issues:?}");
    let access = access();
    let archive = ArchiveView {
        name: "a",
        base_url: "http://x",
        access: &access,
        from: "aa@example.org",
        fallback: &[],
    };
    let out = evaluate(
        &n,
        archive,
        &event(Action::Publish, Some(1)),
        &Templates::with_overrides(overrides),
    );
    let m = mails(&out);
    assert_eq!(m[0].html.as_deref(), Some("<main><i>inline</i></main>\n"));
    assert_eq!(
        m[1].html.as_deref(),
        Some("<main><b>from the file</b></main>\n")
    );
    assert_eq!(
        m[2].text.as_deref(),
        Some("Dear all,\n    indented & <raw>\n\n    text\n-- capsule\n")
    );
}

#[test]
fn default_bodies_say_what_happened() {
    let config = json!({"actions": {
        "publish": [{"recipients": {"recipients": ["xy@example.org"]}},
                    {"body": {"plain": true}, "recipients": {"recipients": ["xy@example.org"]}}],
        "review": [{"body": {"plain": true}, "recipients": {"recipients": ["xy@example.org"]}}]
    }});
    let out = run(config.clone(), &event(Action::Publish, Some(2)));
    let m = mails(&out);
    let html = m[0].html.as_deref().unwrap();
    assert!(
        html.contains("Version 2 of <strong>Z → ee &amp; friends</strong> was published"),
        "{html}"
    );
    assert!(
        html.contains("href=\"https://analyses.example.org/records/zee/\""),
        "{html}"
    );
    assert_eq!(
        m[1].text.as_deref().unwrap(),
        "Version 2 of \"Z → ee & friends\" was published in Test archive, as record zee by bob.\n\nhttps://analyses.example.org/records/zee/\n"
    );
    let mut review = event(Action::Review, None);
    review.review = Some(ReviewView {
        kind: "review".into(),
        verdict: Some("request_changes".into()),
        body: "Please add the systematics.".into(),
        author: "carol".into(),
        created: "2026-01-01T00:00:00Z".into(),
        name: "20260101T000000Z-carol-review".into(),
        review: None,
        url: String::new(),
    });
    let out = run(config, &review);
    assert_eq!(
        mails(&out)[0].text.as_deref().unwrap(),
        "carol reviewed \"Z → ee & friends\" in Test archive: request changes.\n\nPlease add the systematics.\n\nhttps://analyses.example.org/drafts/zee/#review-20260101T000000Z-carol-review\n"
    );
}

#[test]
fn recipient_lists_are_separate_filtered_and_deduplicated_in_order() {
    let config = json!({"actions": {"publish": [{"recipients": {
        "recipients": ["bb@example.org", "aa@example.org", "BB@example.org", "x", "aa@example.org"],
        "cc": ["bb@example.org", {"method": ["get_submitter", "get_owner", "no_such_method"]}],
        "bcc": [{"mails": {"default": ["cc@example.org", "cc@example.org"]}}]
    }}]}});
    let out = run(config, &event(Action::Publish, Some(1)));
    let m = mails(&out)[0];
    assert_eq!(
        m.to,
        ["bb@example.org", "aa@example.org"],
        "first-seen order, no case duplicates"
    );
    assert_eq!(
        m.cc,
        ["bb@example.org", "bob@example.org", "alice@example.org"],
        "lists dedupe separately"
    );
    assert_eq!(m.bcc, ["cc@example.org"]);
}

#[test]
fn caps_address_rule() {
    for good in [
        "ab@example.org",
        "a.b@cern.ch",
        "hn-cms-EXO-23-001@cern.ch",
        "x_y+z@sub.example.co",
    ] {
        assert!(is_well_formed_address(good), "{good}");
    }
    for bad in [
        "a@example.org",
        "ab@localhost",
        "ab@example..org",
        "a..b@example.org",
        ".ab@example.org",
        "ab@example.org.",
        "ab@",
        "@example.org",
        "ab example@example.org",
        "ab@ex@ample.org",
        "",
        "Name <ab@example.org>",
    ] {
        assert!(!is_well_formed_address(bad), "{bad}");
    }
}

#[test]
fn formatted_addresses_render_skip_empty_and_survive_failures() {
    let items = json!([{"mails": {"formatted": [
        {"template": "{% if cadi %}hn-cms-{{ cadi }}@cern.ch{% endif %}", "ctx": [{"name": "cadi", "path": "analysis_context.cadi_id"}]},
        {"template": "{% if nothing %}never@cern.ch{% endif %}", "ctx": [{"name": "nothing", "path": "no.where"}]},
        {"template": "{{ 1 / 0 }}@cern.ch"},
        {"template": "  {{ draft_id }}-owners@example.org  "}
    ]}}]);
    let out = run(to_rule(items, "s"), &event(Action::Publish, Some(1)));
    assert_eq!(
        mails(&out)[0].to,
        ["hn-cms-EXO-23-001@cern.ch", "zee-owners@example.org"]
    );
    assert_eq!(out.notes.len(), 1, "{:?}", out.notes);
}

#[test]
fn no_recipients_means_no_mail_or_the_fallback() {
    let config = json!({"actions": {"publish": [
        {"recipients": {"recipients": [{"checks": [{"path": "no.where", "condition": "exists"}], "mails": {"default": ["xy@example.org"]}}]}},
        {"recipients": {"bcc": ["still@example.org"]}}
    ]}});
    let e = event(Action::Publish, Some(1));
    let out = run(config.clone(), &e);
    assert!(
        matches!(&out.outcomes[0], Outcome::NoRecipients { rule } if rule == "/config/notifications/actions/publish/0")
    );
    assert!(
        matches!(&out.outcomes[1], Outcome::Mail(_)),
        "a failing config never stops the others"
    );
    let out = run_with(
        config,
        &e,
        &["admins@example.org".to_string(), "bad".to_string()],
    );
    let m = mails(&out)[0];
    assert!(m.fallback);
    assert_eq!(m.to, ["admins@example.org"]);
}

#[test]
fn a_template_that_fails_stops_only_its_own_mail() {
    let config = json!({"actions": {"publish": [
        {"subject": {"template": "{{ 1 / 0 }}"}, "recipients": {"recipients": ["xy@example.org"]}},
        {"body": {"template_file": "mail/absent.html"}, "recipients": {"recipients": ["xy@example.org"]}},
        {"recipients": {"recipients": ["xy@example.org"]}}
    ]}});
    let out = run(config, &event(Action::Publish, Some(1)));
    assert!(
        matches!(&out.outcomes[0], Outcome::Failed { reason, .. } if reason.contains("subject"))
    );
    assert!(
        matches!(&out.outcomes[1], Outcome::Failed { reason, .. } if reason.contains("absent"))
    );
    assert!(matches!(&out.outcomes[2], Outcome::Mail(_)));
}

#[test]
fn actions_only_run_their_own_rules() {
    let config =
        json!({"actions": {"review": [{"recipients": {"recipients": ["xy@example.org"]}}]}});
    assert!(run(config, &event(Action::Publish, Some(1)))
        .outcomes
        .is_empty());
}

#[test]
fn subjects_join_lines_but_keep_the_spaces_cap_keeps() {
    let config = json!({"actions": {"publish": [
        {"subject": {"template": "for {{ x }} published"},
         "recipients": {"recipients": ["xy@example.org"]}},
        {"subject": {"template": "  {% if true %}\n    New  version\r\n    of {{ x }}\n{% endif %}  "},
         "recipients": {"recipients": ["xy@example.org"]}}
    ]}});
    let out = run(config, &event(Action::Publish, Some(1)));
    let m = mails(&out);
    assert_eq!(m[0].subject, "for  published", "CAP keeps both spaces");
    assert_eq!(m[1].subject, "New  version of");
}

#[test]
fn default_html_bodies_take_their_plain_part_from_the_txt_template() {
    let config = json!({"actions": {"publish": [
        {"recipients": {"recipients": ["xy@example.org"]}}
    ]}});
    let out = run(config, &event(Action::Publish, Some(1)));
    let m = mails(&out);
    assert!(m[0].html.is_some());
    let text = m[0].text.as_deref().unwrap();
    // publish.txt's words, not a conversion of publish.html.
    assert!(text.contains("was published for the first time"), "{text}");
    assert!(!text.contains('<'), "{text}");
}
