//! Notification mail end to end: real pushes, the real hook, a real SMTP server on
//! loopback (and Python's aiosmtpd with STARTTLS and implicit TLS when installed),
//! the outbox on disk.
//!
//! Over 1,000 lines on purpose: every test here builds on the same archive, outbox and
//! SMTP helpers below, and reads as one story of a mail from push to delivery; split,
//! those helpers would move to tests/common for this file alone.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::smtp::{Behaviour, SmtpServer};
use common::*;
use serde_json::{json, Value};

const PEOPLE: &str = r#"[people]
alice = "alice@example.org"
bob = "bob@example.org"
carol = "carol@example.org"

[groups]
physics-reviewers = ["carol"]
"#;

/// Replaces the `[mail]` section (the last one `capsule init` writes).
fn with_mail(settings: &str, mail: &str) -> String {
    let before = settings.split("[mail]").next().unwrap();
    let settings = before.replace(
        "protected_branches = [\"main\"]",
        "protected_branches = [\"main\"]\nreviewers = [\"physics-reviewers\"]",
    );
    format!("{settings}[mail]\nfrom = \"Test archive <capsule@example.org>\"\n{mail}\n")
}

/// An archive whose mail goes out as `mail` says, with people and the higgs
/// deposit (owned by alice); `n` more copies of it as `d1`..`dn`.
fn archive(mail: &str, n: usize) -> (Server, Work) {
    let server = Server::new();
    let work = server.clone("work");
    let settings = std::fs::read_to_string(work.path.join("capsule.toml")).unwrap();
    work.write("capsule.toml", with_mail(&settings, mail))
        .write("access.toml", PEOPLE)
        .write(&dep("higgs", "deposit.json"), HIGGS);
    for i in 1..=n {
        work.write(&dep(&format!("d{i}"), "deposit.json"), HIGGS);
    }
    work.commit("mail settings, people and deposits");
    work.push().assert_landed();
    (server, work)
}

fn smtp_mail(url: &str) -> String {
    format!("transport = \"smtp\"\nurl = \"{url}\"\ntimeout_secs = 2")
}

/// `capsule` run against the server's git directory.
fn server_capsule(server: &Server, args: &[&str]) -> Output {
    capsule(&server.git_dir).args(args).output().unwrap()
}

fn outbox(server: &Server) -> Value {
    let out = server_capsule(server, &["outbox", "list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Polls the outbox until `done` holds (or panics after `timeout`).
fn wait_outbox(server: &Server, timeout: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let listing = outbox(server);
        if done(&listing) {
            return listing;
        }
        assert!(
            Instant::now() < deadline,
            "the outbox never got there: {listing:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The (content type, decoded-enough body) of each part of a multipart mail: the
/// boundary from the Content-Type header, parts split on it, quoted-printable
/// soft breaks undone.
fn mime_parts(mail: &common::smtp::Received) -> Vec<(String, String)> {
    let content_type = mail.header("Content-Type").expect("a Content-Type");
    assert!(
        content_type.starts_with("multipart/alternative"),
        "{content_type}"
    );
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .expect("a boundary")
        .trim_matches('"')
        .to_string();
    let body = mail.data.split_once("\r\n\r\n").unwrap().1;
    body.split(&format!("--{boundary}"))
        .skip(1)
        .filter(|part| !part.starts_with("--"))
        .map(|part| {
            let (head, text) = part.split_once("\r\n\r\n").unwrap_or((part, ""));
            let kind = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Type: "))
                .unwrap_or("")
                .split(';')
                .next()
                .unwrap()
                .trim()
                .to_string();
            let text = if head.contains("quoted-printable") {
                text.replace("=\r\n", "").replace("=3D", "=")
            } else {
                text.to_string()
            };
            (kind, text)
        })
        .collect()
}

fn publish(work: &Work, user: &str, id: &str) -> Output {
    let out = work.capsule_as(user, &["publish", id, "--push", "-m", "publish"]);
    assert!(out.status.success(), "publish {id}: {}", stderr(&out));
    out
}

fn edit(work: &Work, id: &str, change: impl FnOnce(&mut Value)) {
    let path = work.path.join(dep(id, "deposit.json"));
    let mut value: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    change(&mut value);
    std::fs::write(path, serde_json::to_string_pretty(&value).unwrap() + "\n").unwrap();
}

#[test]
fn publish_and_review_mails_reach_a_real_smtp_server() {
    let smtp = SmtpServer::start(Behaviour::Accept);
    let (server, work) = archive(&smtp_mail(&smtp.url()), 0);
    edit(&work, "higgs", |d| {
        d["basic_info"]["status"] = "published".into()
    });
    work.commit("higgs is published").push().assert_landed();

    let out = publish(&work, "alice", "higgs");
    assert!(
        stderr(&out).contains("capsule: 1 mail queued for delivery"),
        "{}",
        stderr(&out)
    );
    let received = smtp.wait_for(1, Duration::from_secs(20));
    let mail = &received[0];
    assert_eq!(mail.from, "capsule@example.org");
    // The analysis schema: the owner, and the conveners in bcc for a published status.
    assert_eq!(
        mail.rcpt,
        ["alice@example.org", "physics-conveners@example.org"]
    );
    assert_eq!(
        mail.header("Subject").unwrap(),
        "Version v1 of H -> ZZ* -> 4l (Run 2 legacy) published"
    );
    assert_eq!(mail.header("To").unwrap(), "alice@example.org");
    assert!(mail.header("Bcc").is_none(), "bcc stays off the message");
    // HTML mails are multipart/alternative: a text/plain part, then the HTML.
    let parts = mime_parts(mail);
    assert_eq!(
        parts.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(),
        ["text/plain", "text/html"],
        "{}",
        mail.data
    );
    assert!(!parts[0].1.contains('<'), "plain text: {}", parts[0].1);
    assert!(parts[0].1.contains("H -> ZZ* -> 4l"), "{}", parts[0].1);
    assert!(
        parts[1].1.contains("<html") || parts[1].1.contains("<!DOCTYPE"),
        "{}",
        parts[1].1
    );
    let id = mail.message_id();
    assert!(id.starts_with('<') && id.ends_with("@example.org>"), "{id}");

    // A review by carol: the owner and the submitter (carol). Resolving sends nothing.
    let out = work.capsule_as(
        "carol",
        &[
            "review",
            "higgs",
            "--type",
            "approved",
            "-m",
            "Fine & complete",
            "--push",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let received = smtp.wait_for(2, Duration::from_secs(20));
    let review = &received[1];
    assert_eq!(review.rcpt, ["alice@example.org", "carol@example.org"]);
    assert_eq!(
        review.header("Subject").unwrap(),
        "New review on document | Analysis archive"
    );
    assert!(
        review.data.contains("Fine &amp; complete"),
        "{}",
        review.data
    );
    let name = std::fs::read_dir(work.path.join(dep("higgs", "reviews")))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .into_string()
        .unwrap();
    let out = work.capsule_as(
        "alice",
        &[
            "review",
            "higgs",
            "--resolve",
            name.trim_end_matches(".json"),
            "--push",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = work.capsule_as(
        "carol",
        &[
            "review",
            "higgs",
            "--comment",
            name.trim_end_matches(".json"),
            "-m",
            "thanks",
            "--push",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let received = smtp.wait_for(3, Duration::from_secs(20));
    assert_eq!(
        received.len(),
        3,
        "the resolution sent nothing, the comment one mail"
    );
    assert!(
        received[2].data.contains("carol commented on a review of"),
        "{}",
        received[2].data
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(smtp.received().len(), 3);

    let listing = outbox(&server);
    assert_eq!(listing["sent"], 3);
    assert_eq!(listing["queued"], json!([]));
    let log = std::fs::read_to_string(server.git_dir.join("capsule/outbox/log.jsonl")).unwrap();
    assert_eq!(log.matches("\"what\":\"sent\"").count(), 3, "{log}");
}

#[test]
fn smtp_down_during_20_publishes_loses_nothing_and_sends_each_once() {
    let mut smtp = SmtpServer::start(Behaviour::Accept);
    let port = smtp.port;
    smtp.stop();
    let (server, work) = archive(&smtp_mail(&format!("smtp://127.0.0.1:{port}")), 20);
    for i in 1..=20 {
        publish(&work, "alice", &format!("d{i}"));
    }
    // Every publish queued its mail, and the deliveries after each push failed.
    let listing = wait_outbox(&server, Duration::from_secs(30), |l| {
        l["queued"].as_array().unwrap().len() == 20
            && l["queued"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["attempts"].as_u64() >= Some(1))
    });
    assert_eq!(listing["sent"], 0);
    let reason = listing["queued"][0]["last_error"].as_str().unwrap();
    assert!(
        reason.to_lowercase().contains("connect") || reason.contains("refused"),
        "{reason}"
    );

    // The server comes back on the same port; two flushes race to deliver.
    let smtp = SmtpServer::start_on(port, Behaviour::Accept);
    let start = |args: &[&str]| {
        Command::new(capsule_bin())
            .current_dir(&server.git_dir)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (retry, flush) = (start(&["outbox", "retry"]), start(&["outbox", "flush"]));
    let (retry, flush) = (
        retry.wait_with_output().unwrap(),
        flush.wait_with_output().unwrap(),
    );
    assert!(retry.status.success(), "{}", stderr(&retry));
    assert!(flush.status.success(), "{}", stderr(&flush));
    let received = smtp.wait_for(20, Duration::from_secs(30));
    // Nothing more arrives, from any flush.
    let again = server_capsule(&server, &["outbox", "flush"]);
    assert!(again.status.success());
    std::thread::sleep(Duration::from_millis(500));
    let received_after = smtp.received();
    assert_eq!(received_after.len(), 20, "{} mails", received_after.len());
    let mut ids: Vec<String> = received.iter().map(|m| m.message_id()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20, "20 distinct Message-IDs, each once");
    let listing = outbox(&server);
    assert_eq!(listing["sent"], 20);
    assert_eq!(listing["queued"], json!([]));
    assert_eq!(listing["failed"], json!([]));
}

#[test]
fn a_hanging_server_never_holds_the_push() {
    let smtp = SmtpServer::start(Behaviour::Hang);
    let (server, work) = archive(&smtp_mail(&smtp.url()), 0);
    let started = Instant::now();
    publish(&work, "alice", "higgs");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the push waited {:?}",
        started.elapsed()
    );
    // The background delivery gives up after timeout_secs and the mail waits.
    let listing = wait_outbox(&server, Duration::from_secs(30), |l| {
        l["queued"][0]["attempts"].as_u64() == Some(1)
    });
    let reason = listing["queued"][0]["last_error"].as_str().unwrap();
    assert!(
        reason.contains("timed out") || reason.contains("timeout"),
        "{reason}"
    );
    assert!(smtp.connections() >= 1);
    assert!(smtp.received().is_empty());
}

#[test]
fn temporary_refusals_wait_and_permanent_ones_move_aside() {
    let smtp = SmtpServer::start(Behaviour::RejectMail("451 4.3.0 try again later".into()));
    let (server, work) = archive(&smtp_mail(&smtp.url()), 0);
    publish(&work, "alice", "higgs");
    let listing = wait_outbox(&server, Duration::from_secs(30), |l| {
        l["queued"][0]["attempts"].as_u64() == Some(1)
    });
    assert!(
        listing["queued"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("451"),
        "{listing:#}"
    );
    assert!(listing["queued"][0]["next_attempt"].as_u64().unwrap() > 0);

    // A flush before the delay is over does not try it again.
    let out = server_capsule(&server, &["outbox", "flush", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["attempts"], json!([]), "{report:#}");
    assert_eq!(report["waiting"], 1);

    smtp.set_behaviour(Behaviour::RejectRcpt("550 5.1.1 no such user here".into()));
    let out = server_capsule(&server, &["outbox", "retry"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a permanent failure: {}",
        stdout(&out)
    );
    let listing = outbox(&server);
    assert_eq!(listing["queued"], json!([]));
    let answer = listing["failed"][0]["answer"].as_str().unwrap();
    assert!(
        answer.contains("550") && answer.contains("no such user"),
        "{answer}"
    );
    let text = stdout(&server_capsule(&server, &["outbox", "list"]));
    assert!(text.contains("Failed: 1") && text.contains("550"), "{text}");

    // Fixed on the server side: retry delivers it, once.
    smtp.set_behaviour(Behaviour::Accept);
    let key = listing["failed"][0]["key"].as_str().unwrap();
    let out = server_capsule(&server, &["outbox", "retry", &key[..8]]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(smtp.wait_for(1, Duration::from_secs(10)).len(), 1);
    let listing = outbox(&server);
    assert_eq!(
        (
            listing["sent"].as_u64(),
            listing["failed"].as_array().unwrap().len()
        ),
        (Some(1), 0)
    );
}

/// A pre-receive hook that checks, then waits, so two pushes overlap in it.
fn slow_pre_receive(server: &Server) {
    let hook = server.git_dir.join("hooks/pre-receive");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\n\"{}\" hook pre-receive\nrc=$?\nsleep 2\nexit $rc\n",
            capsule_bin().display()
        ),
    )
    .unwrap();
}

#[test]
fn only_the_push_that_won_the_race_for_a_ref_sends_mail() {
    let (server, first) = archive("transport = \"file\"", 0);
    let second = server.clone("second");
    // Both publish v1 of higgs, on different commits, at the same time.
    edit(&second, "higgs", |d| {
        d["general_title"] = "Another title".into()
    });
    second
        .commit("a different version")
        .push_as("alice", "HEAD:main")
        .assert_landed();
    for work in [&first, &second] {
        let out = work.capsule_as("alice", &["publish", "higgs", "-m", "mine"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    slow_pre_receive(&server);
    let pushes: Vec<Push> = std::thread::scope(|s| {
        let handles: Vec<_> = [&first, &second]
            .map(|w| s.spawn(move || w.push_as("alice", "refs/tags/records/higgs/v1")))
            .into_iter()
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let landed: Vec<&Push> = pushes.iter().filter(|p| p.landed).collect();
    assert_eq!(
        landed.len(),
        1,
        "exactly one wins: {:?}",
        pushes.iter().map(|p| &p.output).collect::<Vec<_>>()
    );
    let tag = server.rev("refs/tags/records/higgs/v1").unwrap();

    let listing = outbox(&server);
    let sent = listing["sent"].as_u64().unwrap();
    assert_eq!(sent, 1, "{listing:#}");
    let recent = &listing["recent"][0];
    assert_eq!(
        recent["event"],
        format!("publish refs/tags/records/higgs/v1 {tag}"),
        "the mail is the winner's"
    );
    let loser = pushes.iter().find(|p| !p.landed).unwrap();
    assert!(!loser.output.contains("mail queued"), "{}", loser.output);
}

#[test]
fn broken_notification_configs_are_refused_at_push_with_pointers() {
    let (server, work) = archive("transport = \"file\"", 0);
    let schema = json!({
        "type": "object",
        "properties": {"title": {"type": "string"}},
        "config": {"notifications": {"actions": {
            "publish": [{
                "subject": {"template": "{% if title %}unclosed", "colour": "red"},
                "body": {"template_file": "mail/ours.html", "base_template": "mail/missing-layout.html", "plain": "no"},
                "recipients": {"recipients": [{"op": "xor", "checks": [{"path": "title", "condition": "exists"}]}]}
            }],
            "create": []
        }}}
    });
    let text = serde_json::to_string_pretty(&schema).unwrap();
    work.write("schemas/mailer/1.0.0.json", &text)
        .commit("a schema with a broken mail config");
    let before = server.rev("refs/heads/main");
    let push = work.push();
    push.assert_rejected_with("schemas/mailer/1.0.0.json");
    assert_eq!(server.rev("refs/heads/main"), before);
    let errors = push.errors().join("\n");
    for (pointer, why) in [
        (
            "/config/notifications/actions/publish/0/subject/template",
            "does not compile",
        ),
        (
            "/config/notifications/actions/publish/0/subject/colour",
            "unknown key `colour`",
        ),
        (
            "/config/notifications/actions/publish/0/body/plain",
            "must be true or false",
        ),
        (
            "/config/notifications/actions/publish/0/body/template_file",
            "mail/ours.html does not exist",
        ),
        (
            "/config/notifications/actions/publish/0/body/base_template",
            "mail/missing-layout.html does not exist",
        ),
        (
            "/config/notifications/actions/publish/0/recipients/recipients/0/op",
            "`xor` is not an op",
        ),
        ("/config/notifications/actions/create", "not an action"),
    ] {
        assert!(
            errors
                .lines()
                .any(|l| l.contains(pointer) && l.contains(why)),
            "{pointer}: {why} missing from\n{errors}"
        );
    }
    // Each problem carries its line and column.
    for line in errors.lines() {
        let position = line.split("schemas/mailer/1.0.0.json:").nth(1).unwrap();
        let mut numbers = position
            .split(':')
            .take(2)
            .map(|n| n.parse::<usize>().unwrap());
        assert!(numbers.all(|n| n > 0), "{line}");
    }

    // A template under templates/mail/ in the same push counts; a broken one is refused.
    work.git(&["reset", "--quiet", "--hard", "origin/main"]);
    let fixed = json!({
        "type": "object",
        "config": {"notifications": {"actions": {"publish": [{
            "body": {"template_file": "mail/ours.html"},
            "recipients": {"recipients": ["xy@example.org"]}
        }]}}}
    });
    work.write(
        "schemas/mailer/1.0.0.json",
        serde_json::to_string_pretty(&fixed).unwrap(),
    )
    .write("templates/mail/ours.html", "<p>{{ published_id }</p>")
    .commit("a schema and its template");
    work.push()
        .assert_rejected_with("templates/mail/ours.html:1:1: the mail template does not compile");
    // Every commit of a push is checked: the fix goes into the same commit.
    work.write("templates/mail/ours.html", "<p>{{ published_id }}</p>");
    work.git(&[
        "commit",
        "--quiet",
        "-a",
        "--amend",
        "-m",
        "a schema and its template",
    ]);
    let push = work.push();
    push.assert_landed();
    assert!(!push.output.contains("warning"), "{}", push.output);

    // A template a schema names cannot be deleted (schema versions never change).
    work.remove("templates/mail/ours.html")
        .commit("delete the template");
    work.push().assert_rejected_with(
        "templates/mail/ours.html: this mail template cannot be deleted: schema mailer/1.0.0 names it",
    );
}

#[test]
fn the_file_transport_writes_what_the_preview_shows() {
    let (server, work) = archive("transport = \"file\"", 0);
    edit(&work, "higgs", |d| {
        d["basic_info"]["status"] = "published".into()
    });
    work.commit("published status").push().assert_landed();

    let preview = work.capsule_as(
        "bob",
        &[
            "notify", "preview", "higgs", "--action", "publish", "--json",
        ],
    );
    assert!(preview.status.success(), "{}", stderr(&preview));
    let preview: Value = serde_json::from_slice(&preview.stdout).unwrap();
    assert_eq!(preview["record_version"], 1);
    let previewed = &preview["mails"][0];
    assert_eq!(previewed["bcc"], json!(["physics-conveners@example.org"]));

    let human = work.capsule_as(
        "bob",
        &["notify", "preview", "higgs", "--action", "publish"],
    );
    let human = stdout(&human);
    assert!(
        human.contains("1 mail for publishing v1 of higgs, pushed by bob:"),
        "{human}"
    );
    assert!(
        human.contains("Subject: Version v1 of H -> ZZ* -> 4l (Run 2 legacy) published"),
        "{human}"
    );
    assert!(
        human.contains("Bcc: physics-conveners@example.org"),
        "{human}"
    );

    // alice publishes; the mail on disk is the one the preview showed (for alice).
    let preview = work.capsule_as(
        "alice",
        &[
            "notify", "preview", "higgs", "--action", "publish", "--json",
        ],
    );
    let preview: Value = serde_json::from_slice(&preview.stdout).unwrap();
    publish(&work, "alice", "higgs");
    let listing = outbox(&server);
    assert_eq!(listing["sent"], 1, "written before the push returned");
    let entry = &listing["recent"][0];
    for field in ["from", "to", "cc", "bcc", "subject", "html"] {
        assert_eq!(entry["mail"][field], preview["mails"][0][field], "{field}");
    }
    let key = entry["key"].as_str().unwrap();
    let eml =
        std::fs::read_to_string(server.git_dir.join(format!("capsule/mail/{key}.eml"))).unwrap();
    assert!(eml.contains(entry["message_id"].as_str().unwrap()), "{eml}");
    assert!(eml.contains("Subject: Version v1 of"), "{eml}");
    // The file copy shows the admin who was Bcc'd; a real delivery never does.
    assert!(
        eml.starts_with("X-Capsule-Bcc: physics-conveners@example.org\r\n"),
        "{eml}"
    );

    // Pushing the same tag again (a re-run of the hook) plans the same key: no second mail.
    let out = capsule(&server.git_dir)
        .env("CAPSULE_USER", "alice")
        .env("GIT_DIR", &server.git_dir)
        .args(["hook", "post-receive"])
        .stdin_bytes(format!(
            "{} {} refs/tags/records/higgs/v1\n",
            "0".repeat(40),
            server.rev("refs/tags/records/higgs/v1").unwrap()
        ))
        .unwrap();
    assert!(out.status.success());
    assert!(!stderr(&out).contains("queued"), "{}", stderr(&out));
    assert_eq!(outbox(&server)["sent"], 1);
}

#[test]
fn a_rule_that_names_nobody_warns_and_falls_back() {
    let (server, work) = archive("transport = \"file\"", 0);
    // The analysis schema mails the owner; a deposit without owners names nobody.
    edit(&work, "higgs", |d| {
        d["_deposit"]["owners"] = json!([]);
        d["_access"]["deposit-admin"]["users"] = json!(["alice"]);
    });
    work.commit("no owners").push().assert_landed();
    let out = work.capsule_as("alice", &["publish", "higgs", "--push"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("/config/notifications/actions/publish/0: the rules named nobody"),
        "{}",
        stderr(&out)
    );
    let log = std::fs::read_to_string(server.git_dir.join("capsule/outbox/log.jsonl")).unwrap();
    assert!(log.contains("no_recipients"), "{log}");
    assert_eq!(outbox(&server)["sent"], 0);

    // With fallback recipients, the same publish reaches them.
    let settings = std::fs::read_to_string(work.path.join("capsule.toml")).unwrap();
    work.write(
        "capsule.toml",
        settings.replace(
            "transport = \"file\"",
            "transport = \"file\"\nfallback_recipients = [\"archive-admins@example.org\"]",
        ),
    );
    edit(&work, "higgs", |d| d["general_title"] = "v2".into());
    work.commit("fallback recipients").push().assert_landed();
    let out = work.capsule_as("alice", &["publish", "higgs", "--push"]);
    assert!(
        stderr(&out).contains("sent to the fallback recipients"),
        "{}",
        stderr(&out)
    );
    let listing = outbox(&server);
    assert_eq!(
        listing["recent"][0]["mail"]["to"],
        json!(["archive-admins@example.org"])
    );
}

// ---- Python's aiosmtpd with TLS (CI installs it; skipped locally without it) ----

/// A Python that can import aiosmtpd, or `None` (then the test says so and skips,
/// except under CI, where it fails).
fn python_with_aiosmtpd() -> Option<String> {
    let mut candidates: Vec<String> = std::env::var("CAPSULE_TEST_PYTHON").into_iter().collect();
    candidates.extend(["python3".to_string(), "/usr/bin/python3".to_string()]);
    let found = candidates.into_iter().find(|python| {
        Command::new(python)
            .args(["-c", "import aiosmtpd"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if found.is_none() {
        skip_or_fail(
            "needs aiosmtpd",
            "no python3 here can import aiosmtpd",
            "install it: apt-get install python3-aiosmtpd (or set CAPSULE_TEST_PYTHON=<python>)",
        );
    }
    found
}

/// A throwaway CA and a server certificate for 127.0.0.1, made with openssl.
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", stderr(&out));
    };
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=capsule test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat(),
    );
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// Runs tests/support/smtp_sink.py; it prints its port and stops when stdin closes.
struct Sink {
    child: std::process::Child,
    port: u16,
    dir: PathBuf,
}

impl Sink {
    fn start(python: &str, mode: &str, cert: &Path, key: &Path, dir: &Path) -> Sink {
        use std::io::BufRead;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");
        let mut child = Command::new(python)
            .args([script, mode])
            .arg(cert)
            .arg(key)
            .arg(dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            // Its TLS complaints (the test without the CA) go to a file, not the test output.
            .stderr(std::fs::File::create(dir.join("sink.log")).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the sink said `{line}`"));
        Sink {
            child,
            port,
            dir: dir.to_path_buf(),
        }
    }

    fn wait_for(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut mails: Vec<String> = std::fs::read_dir(&self.dir)
                .unwrap()
                .filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .map(|e| std::fs::read_to_string(e.path()).unwrap())
                .collect();
            if mails.len() >= n {
                mails.sort();
                return mails;
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd got {} of {n} mails",
                mails.len()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

#[test]
fn aiosmtpd_receives_mail_over_starttls_and_implicit_tls() {
    let Some(python) = python_with_aiosmtpd() else {
        return;
    };
    let tmp = tempfile::TempDir::new().unwrap();
    let (ca, cert, key) = certificates(tmp.path());
    for (mode, scheme) in [
        ("starttls", "smtp://127.0.0.1:{port}?tls=required"),
        ("implicit", "smtps://127.0.0.1:{port}"),
    ] {
        let dir = tmp.path().join(mode);
        std::fs::create_dir_all(&dir).unwrap();
        let sink = Sink::start(&python, mode, &cert, &key, &dir);
        let url = scheme.replace("{port}", &sink.port.to_string());
        let (server, work) = archive(
            &format!("{}\nca_file = \"{}\"", smtp_mail(&url), ca.display()),
            0,
        );
        publish(&work, "alice", "higgs");
        let mails = sink.wait_for(1);
        assert!(mails[0].contains("Subject: Version v1 of"), "{}", mails[0]);
        let listing = wait_outbox(&server, Duration::from_secs(20), |l| l["sent"] == 1);
        assert!(
            mails[0].contains(listing["recent"][0]["message_id"].as_str().unwrap()),
            "{mode}: {}",
            mails[0]
        );
    }
}

#[test]
fn without_the_ca_tls_is_refused_and_the_mail_waits() {
    let Some(python) = python_with_aiosmtpd() else {
        return;
    };
    let tmp = tempfile::TempDir::new().unwrap();
    let (_, cert, key) = certificates(tmp.path());
    let sink = Sink::start(&python, "starttls", &cert, &key, tmp.path());
    let (server, work) = archive(
        &smtp_mail(&format!("smtp://127.0.0.1:{}?tls=required", sink.port)),
        0,
    );
    publish(&work, "alice", "higgs");
    let listing = wait_outbox(&server, Duration::from_secs(20), |l| {
        l["queued"][0]["attempts"].as_u64() == Some(1)
    });
    let reason = listing["queued"][0]["last_error"]
        .as_str()
        .unwrap()
        .to_lowercase();
    assert!(
        reason.contains("certificate") || reason.contains("tls"),
        "{reason}"
    );
}

/// `Command::output` with bytes on stdin.
trait StdinBytes {
    fn stdin_bytes(&mut self, input: String) -> std::io::Result<Output>;
}

impl StdinBytes for Command {
    fn stdin_bytes(&mut self, input: String) -> std::io::Result<Output> {
        use std::io::Write;
        let mut child = self
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        child.stdin.take().unwrap().write_all(input.as_bytes())?;
        child.wait_with_output()
    }
}

// ---- per-recipient delivery, slow servers, template limits, preview ----

#[test]
fn one_refused_recipient_does_not_keep_the_mail_from_the_others() {
    let smtp = SmtpServer::start(Behaviour::RefuseSome(vec![(
        "alice@example.org".into(),
        "550 5.1.1 alice: no such user here".into(),
    )]));
    let (server, work) = archive(&smtp_mail(&smtp.url()), 1);
    for id in ["higgs", "d1"] {
        edit(&work, id, |d| {
            d["basic_info"]["status"] = "published".into()
        });
    }
    work.commit("published status").push().assert_landed();

    // alice (To) is refused for good: the Bcc'd conveners still get the mail.
    publish(&work, "alice", "higgs");
    let listing = wait_outbox(&server, Duration::from_secs(60), |l| {
        l["sent"] == 1 || !l["failed"].as_array().unwrap().is_empty()
    });
    assert_eq!(listing["sent"], 1, "{listing:#}");
    let received = smtp.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].rcpt, ["physics-conveners@example.org"]);
    let entry = &listing["recent"][0];
    assert_eq!(entry["refused"][0]["address"], "alice@example.org");
    let answer = entry["refused"][0]["answer"].as_str().unwrap();
    assert!(
        answer.contains("550") && answer.contains("no such user"),
        "{answer}"
    );
    let row = &listing["entries"][0];
    assert_eq!(row["state"], "sent");
    assert_eq!(row["tries"], 1);
    assert_eq!(
        row["to"],
        json!(["alice@example.org", "physics-conveners@example.org"])
    );
    assert_eq!(row["refused"][0]["address"], "alice@example.org");
    let text = stdout(&server_capsule(&server, &["outbox", "list"]));
    assert!(text.contains("Sent: 1"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains("sent  1 try  Version v1 of")
                && l.contains("→ alice@example.org, physics-conveners@example.org")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.contains("refused:")
            && l.contains("alice@example.org (")
            && l.contains("550")),
        "{text}"
    );

    // A temporary refusal (4xx) waits, for that recipient only.
    smtp.set_behaviour(Behaviour::RefuseSome(vec![(
        "alice@example.org".into(),
        "451 4.2.1 mailbox busy, try later".into(),
    )]));
    publish(&work, "alice", "d1");
    let listing = wait_outbox(&server, Duration::from_secs(60), |l| {
        l["queued"][0]["attempts"].as_u64() == Some(1)
    });
    let queued = &listing["queued"][0];
    assert_eq!(queued["accepted"], json!(["physics-conveners@example.org"]));
    assert!(queued.get("refused").is_none(), "{queued:#}");
    let row = listing["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["state"] == "queued")
        .unwrap();
    assert_eq!(row["pending"], json!(["alice@example.org"]));
    assert!(
        row["last_error"].as_str().unwrap().contains("451"),
        "{row:#}"
    );
    assert_eq!(smtp.received().len(), 2);
    assert_eq!(smtp.received()[1].rcpt, ["physics-conveners@example.org"]);

    smtp.set_behaviour(Behaviour::Accept);
    let out = server_capsule(&server, &["outbox", "retry"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let received = smtp.wait_for(3, Duration::from_secs(30));
    assert_eq!(received[2].rcpt, ["alice@example.org"], "only alice, again");
    assert_eq!(received[2].message_id(), received[1].message_id());
    let listing = outbox(&server);
    assert_eq!(listing["sent"], 2);
    assert_eq!(listing["queued"], json!([]));
    assert_eq!(smtp.received().len(), 3);
}

#[test]
fn a_slow_answer_to_the_end_of_data_is_waited_for_not_sent_twice() {
    // The server queues the mail, then answers the final dot 3 s later: past
    // timeout_secs (1 s), well within RFC 5321's 10 minutes.
    let smtp = SmtpServer::start(Behaviour::SlowDataEnd(Duration::from_secs(3)));
    let mail = format!(
        "transport = \"smtp\"\nurl = \"{}\"\ntimeout_secs = 1",
        smtp.url()
    );
    let (server, work) = archive(&mail, 0);
    publish(&work, "alice", "higgs");
    let listing = wait_outbox(&server, Duration::from_secs(120), |l| {
        l["sent"] == 1 || l["queued"][0]["attempts"].as_u64() >= Some(1)
    });
    assert_eq!(listing["sent"], 1, "{listing:#}");
    assert_eq!(listing["queued"], json!([]));
    assert!(
        listing["recent"][0]["answer"]
            .as_str()
            .unwrap()
            .contains("250"),
        "{listing:#}"
    );
    // Nothing is left to send again, whatever flushes later.
    let out = server_capsule(&server, &["outbox", "retry"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(smtp.received().len(), 1, "exactly one delivery");
}

/// A schema whose only publish mail has the subject `template`.
fn schema_with_subject(template: &str) -> String {
    serde_json::to_string_pretty(&json!({
        "type": "object",
        "config": {"notifications": {"actions": {"publish": [{
            "subject": {"template": template},
            "recipients": {"recipients": ["xy@example.org"]}
        }]}}}
    }))
    .unwrap()
}

#[test]
fn templates_beyond_the_fuel_or_the_output_cap_are_refused_at_push() {
    let (server, work) = archive("transport = \"file\"", 0);
    let settings = std::fs::read_to_string(work.path.join("capsule.toml")).unwrap();
    assert!(settings.contains("max_file_bytes = 20971520\n"));
    work.write(
        "capsule.toml",
        settings.replace(
            "max_file_bytes = 20971520\n",
            "max_file_bytes = 20971520\nmax_mail_bytes = 2048\n",
        ),
    )
    .commit("a smaller mail cap");
    work.push().assert_landed();

    // Two nested loops over range(100000), pushed to a new branch: refused, promptly
    // enough for the push to come back at all, with the setting named.
    let pointer = "/config/notifications/actions/publish/0/subject/template";
    work.git(&["checkout", "--quiet", "-b", "looper"]);
    work.write(
        "schemas/looper/1.0.0.json",
        schema_with_subject(
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        ),
    )
    .commit("a schema with a runaway template");
    let push = work.push_as("alice", "HEAD:refs/heads/looper");
    push.assert_rejected_with("schemas/looper/1.0.0.json");
    let errors = push.errors().join(
        "
",
    );
    assert!(
        errors
            .lines()
            .any(|l| l.contains(pointer) && l.contains("[policy] template_fuel")),
        "{errors}"
    );
    assert_eq!(server.rev("refs/heads/looper"), None);

    // One byte over max_mail_bytes is refused; the twin at the cap lands.
    work.write(
        "schemas/looper/1.0.0.json",
        schema_with_subject("{{ 'x' * 2049 }}"),
    );
    work.git(&["commit", "--quiet", "-a", "--amend", "-m", "a long subject"]);
    let push = work.push_as("alice", "HEAD:refs/heads/looper");
    push.assert_rejected_with("[policy] max_mail_bytes");
    assert!(
        push.errors()
            .iter()
            .any(|l| l.contains(pointer) && l.contains("more than 2048 bytes")),
        "{}",
        push.output
    );
    work.write(
        "schemas/looper/1.0.0.json",
        schema_with_subject("{{ 'x' * 2048 }}"),
    );
    work.git(&[
        "commit",
        "--quiet",
        "-a",
        "--amend",
        "-m",
        "a subject at the cap",
    ]);
    work.push_as("alice", "HEAD:refs/heads/looper")
        .assert_landed();
}

#[test]
fn the_preview_numbers_mails_as_it_counts_them() {
    let (_server, work) = archive("transport = \"file\"", 0);
    work.write(
        "schemas/twice/1.0.0.json",
        serde_json::to_string_pretty(&json!({
            "type": "object",
            "config": {"notifications": {"actions": {"publish": [
                {"recipients": {"recipients": []}},
                {"subject": {"template": "hello"},
                 "recipients": {"recipients": ["xy@example.org"]}}
            ]}}}
        }))
        .unwrap(),
    );
    // The preview reads the working tree: higgs now names the new schema.
    edit(&work, "higgs", |d| d["$schema"] = "twice/1.0.0".into());
    let out = work.capsule_as(
        "alice",
        &["notify", "preview", "higgs", "--action", "publish"],
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains("1 mail for publishing v1 of higgs"), "{text}");
    assert!(
        text.contains("── 1 of 1: /config/notifications/actions/publish/1"),
        "{text}"
    );
    assert!(!text.contains(" of 2"), "{text}");
    assert!(
        text.contains("── /config/notifications/actions/publish/0: no mail"),
        "{text}"
    );
}
