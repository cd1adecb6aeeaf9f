//! `capsule demo`: a server, a clone, real pushes, and a push the server refuses.
//!
//! The demo drives the real `git` client and the real hook, so what it shows is
//! exactly what a user sees.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use clap::Args;

use capsule::scaffold;

use super::output;
use super::Outcome;

const ZEE: &str = include_str!("../../demo/deposits/zee/deposit.json");
const HIGGS: &str = include_str!("../../demo/deposits/higgs-4l/deposit.json");
const TTBAR: &str = include_str!("../../demo/deposits/ttbar-xsec/deposit.json");
const MISTAKE: &str = include_str!("../../demo/mistake/deposit.json");
const CADI: &str = include_str!("../../demo/imports/cadi.json");

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to build the demo (default: a new folder in the system's temp folder).
    dir: Option<PathBuf>,
}

pub fn run(args: DemoArgs) -> anyhow::Result<Outcome> {
    let dir = match args.dir {
        Some(dir) => dir,
        None => tempfile::Builder::new()
            .prefix("capsule-demo-")
            .tempdir()?
            .keep(),
    };
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!("{} is not empty; give a new folder", dir.display());
    }
    std::fs::create_dir_all(&dir)?;
    let dir = dir.canonicalize()?;
    let server = dir.join("server.git");
    let work = dir.join("work");
    let bin = std::env::current_exe()?;
    let mut out = anstream::stdout();

    step(
        &mut out,
        "1. Create a server archive with the validating hook installed",
    )?;
    scaffold::init_bare(&server, "Demo analyses", "alice", "alice@example.org", &bin)?;
    writeln!(out, "   capsule init --bare {}", server.display())?;

    step(&mut out, "2. Clone it, like any git repository")?;
    git(
        &dir,
        &["clone", "--quiet", server.to_str().unwrap(), "work"],
    )?;
    writeln!(out, "   git clone server.git work")?;

    step(
        &mut out,
        "3. alice (the archive's admin) adds people, a reviewers group, the CAP documentation's schema and three analyses, and pushes",
    )?;
    write(
        &work,
        "schemas/cap-docs-example/0.0.1.json",
        scaffold::CAP_DOCS_SCHEMA,
    )?;
    write(&work, &capsule::deposit::metadata_path("zee"), ZEE)?;
    write(&work, &capsule::deposit::metadata_path("higgs-4l"), HIGGS)?;
    write(&work, &capsule::deposit::metadata_path("ttbar-xsec"), TTBAR)?;
    write(&work, "access.toml", PEOPLE)?;
    let settings = std::fs::read_to_string(work.join("capsule.toml"))?;
    write(
        &work,
        "capsule.toml",
        &settings.replace(
            "protected_branches = [\"main\"]",
            "protected_branches = [\"main\"]\n# Groups that may review any reviewable deposit.\nreviewers = [\"physics-reviewers\"]",
        ),
    )?;
    git(&work, &["add", "-A"])?;
    git(&work, &["commit", "--quiet", "-m", "Add three analyses"])?;
    let (landed, text) = push(&work)?;
    show_remote(&mut out, &text)?;
    if !landed {
        bail!("the demo's valid push was refused; this is a bug in capsule");
    }

    step(
        &mut out,
        "4. Check the clone before pushing, as a user would",
    )?;
    let validate = Command::new(&bin)
        .current_dir(&work)
        .args(["validate"])
        .output()?;
    write!(
        out,
        "   $ capsule validate\n   {}",
        String::from_utf8_lossy(&validate.stdout)
    )?;
    let publish = Command::new(&bin)
        .current_dir(&work)
        .args(["validate", "--publish", "zee"])
        .output()?;
    write!(
        out,
        "   $ capsule validate --publish zee\n   {}",
        String::from_utf8_lossy(&publish.stdout)
    )?;

    step(
        &mut out,
        "5. A mistake: an unknown status and a malformed e-mail address",
    )?;
    write(&work, &capsule::deposit::metadata_path("w-mass"), MISTAKE)?;
    git(&work, &["add", "-A"])?;
    git(
        &work,
        &["commit", "--quiet", "-m", "Add the W mass analysis"],
    )?;
    let (landed, text) = push(&work)?;
    show_remote(&mut out, &text)?;
    if landed {
        bail!("the demo's invalid push was accepted; this is a bug in capsule");
    }
    writeln!(
        out,
        "\n   The server's main branch did not move: nothing invalid landed."
    )?;
    git(&work, &["reset", "--quiet", "--hard", "origin/main"])?;

    records(&mut out, &bin, &work)?;
    bring_in(&mut out, &bin, &dir, &work)?;

    show_mails(&mut out, &server)?;
    site(&mut out, &bin, &work)?;

    step(&mut out, "Explore it yourself")?;
    writeln!(
        out,
        "   cd {}\n   export CAPSULE_USER=alice      # who you are to the demo server (alice is its admin)\n   capsule log higgs-4l\n   capsule show higgs-4l@v1\n   capsule search ttbar\n   capsule validate --json\n   git log --stat",
        work.display()
    )?;
    Ok(Outcome::Ok)
}

/// The last step: the public site of the archive, and how to look at it.
fn site(out: &mut impl Write, bin: &Path, work: &Path) -> anyhow::Result<()> {
    step(
        out,
        "13. The public site: published, publicly readable records only (zee stays restricted)",
    )?;
    git(work, &["pull", "--quiet", "--ff-only", "origin", "main"])?;
    git(work, &["fetch", "--quiet", "--tags", "origin"])?;
    run_capsule(out, bin, work, "alice", &["build"])?;
    writeln!(
        out,
        "   Browse it: cd {} && capsule serve   (then open http://127.0.0.1:8000/)",
        work.display()
    )?;
    Ok(())
}

const PEOPLE: &str = r#"# People (user name = e-mail) and groups of this archive.
[people]
alice = "alice@example.org"
bob = "bob@example.org"
carol = "carol@example.org"

[groups]
physics-reviewers = ["carol"]
"#;

/// Steps 6-10: who may change what, publishing versions, a review, history.
fn records(out: &mut impl Write, bin: &Path, work: &Path) -> anyhow::Result<()> {
    step(
        out,
        "6. bob has no rights on higgs-4l (only alice is in its _access): his edit is refused",
    )?;
    edit(work, &capsule::deposit::metadata_path("higgs-4l"), |d| {
        d["general_title"] = "Bob's better title".into();
    })?;
    git(
        work,
        &["commit", "--quiet", "-am", "Bob edits the Higgs analysis"],
    )?;
    let (landed, text) = push_as(work, "bob")?;
    show_remote(out, &text)?;
    if landed {
        bail!("bob's edit was accepted; this is a bug in capsule");
    }
    git(work, &["reset", "--quiet", "--hard", "origin/main"])?;

    step(out, "7. alice, its owner, publishes higgs-4l as record v1")?;
    run_capsule(
        out,
        bin,
        work,
        "alice",
        &[
            "publish",
            "higgs-4l",
            "--push",
            "-m",
            "First public version",
        ],
    )?;

    step(out, "8. alice updates the analysis and publishes v2")?;
    edit(work, &capsule::deposit::metadata_path("higgs-4l"), |d| {
        d["basic_info"]["status"] = "published".into();
        if let Some(keywords) = d["basic_info"]["keywords"].as_array_mut() {
            keywords.push("legacy".into());
        }
    })?;
    git(
        work,
        &[
            "commit",
            "--quiet",
            "-am",
            "Higgs analysis: published, with a legacy keyword",
        ],
    )?;
    let (landed, text) = push_as(work, "alice")?;
    show_remote(out, &text)?;
    if !landed {
        bail!("alice's update was refused; this is a bug in capsule");
    }
    run_capsule(
        out,
        bin,
        work,
        "alice",
        &["publish", "higgs-4l", "--push", "-m", "Status: published"],
    )?;

    step(out, "9. carol, of the physics-reviewers group, approves it")?;
    run_capsule(
        out,
        bin,
        work,
        "carol",
        &[
            "review",
            "higgs-4l",
            "--type",
            "approved",
            "-m",
            "Complete and reproducible.",
            "--push",
        ],
    )?;

    step(out, "10. The history, straight from git")?;
    run_capsule(out, bin, work, "alice", &["log", "higgs-4l"])?;
    run_capsule(out, bin, work, "alice", &["diff", "higgs-4l", "v1", "v2"])?;
    Ok(())
}

/// Steps 11-12: filling a deposit from an experiment database, capturing its code.
fn bring_in(out: &mut impl Write, bin: &Path, dir: &Path, work: &Path) -> anyhow::Result<()> {
    step(
        out,
        "11. alice fills ttbar-xsec from the experiment's analysis database (a CADI-like file here; a URL in real life)",
    )?;
    write(work, "imports/cadi.json", CADI)?;
    let mut settings = std::fs::read_to_string(work.join("capsule.toml"))?;
    settings.push_str(
        r#"
# A fetcher: where to ask, and which deposit field takes which answer field.
[fetchers.cadi]
file = "imports/cadi.json"   # or url = "https://.../cadi/{key}"
select = "/{key}"
[fetchers.cadi.map]
"/general_title" = "/title"
"/basic_info/keywords" = "/keywords"
"#,
    );
    write(work, "capsule.toml", &settings)?;
    run_capsule(
        out,
        bin,
        work,
        "alice",
        &["fetch", "ttbar-xsec", "cadi", "TOP-21-008"],
    )?;

    step(
        out,
        "12. alice captures the analysis code: the commit, and the code itself as a bundle",
    )?;
    let code = dir.join("ttbar-code");
    git(dir, &["init", "--quiet", "ttbar-code"])?;
    std::fs::write(
        code.join("xsec.py"),
        "# Fit the ttbar cross-section\nprint('sigma = 830 pb')\n",
    )?;
    git(&code, &["add", "-A"])?;
    git(&code, &["commit", "--quiet", "-m", "Cross-section fit"])?;
    git(&code, &["tag", "-a", "v1.0", "-m", "As used for the paper"])?;
    let url = format!("file://{}", code.display());
    run_capsule(
        out,
        bin,
        work,
        "alice",
        &[
            "capture-repo",
            "ttbar-xsec",
            &url,
            "--ref",
            "v1.0",
            "--bundle",
        ],
    )?;
    git(work, &["add", "-A"])?;
    git(
        work,
        &[
            "commit",
            "--quiet",
            "-m",
            "ttbar: fetched from CADI, code captured",
        ],
    )?;
    let (landed, text) = push_as(work, "alice")?;
    show_remote(out, &text)?;
    if !landed {
        bail!("the fetched and captured deposit was refused; this is a bug in capsule");
    }
    Ok(())
}

fn edit(
    root: &Path,
    path: &str,
    change: impl FnOnce(&mut serde_json::Value),
) -> anyhow::Result<()> {
    let file = root.join(path);
    let mut value: serde_json::Value = serde_json::from_slice(&std::fs::read(&file)?)?;
    change(&mut value);
    std::fs::write(&file, serde_json::to_string_pretty(&value)? + "\n")?;
    Ok(())
}

/// Runs capsule in the clone as `user`, showing the command and its output.
fn run_capsule(
    out: &mut impl Write,
    bin: &Path,
    work: &Path,
    user: &str,
    args: &[&str],
) -> anyhow::Result<()> {
    let output = Command::new(bin)
        .current_dir(work)
        .args(args)
        .envs(identity(user))
        .output()?;
    let quoted: Vec<String> = args
        .iter()
        .map(|a| {
            if a.contains(' ') {
                format!("\"{a}\"")
            } else {
                a.to_string()
            }
        })
        .collect();
    writeln!(out, "   $ capsule {}   # as {user}", quoted.join(" "))?;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        writeln!(out, "   {line}")?;
    }
    for line in String::from_utf8_lossy(&output.stderr).lines() {
        writeln!(out, "   {line}")?;
    }
    if !output.status.success() {
        bail!(
            "`capsule {}` failed in the demo; this is a bug in capsule",
            args.join(" ")
        );
    }
    Ok(())
}

/// The git and capsule identity of a demo user.
fn identity(user: &str) -> Vec<(String, String)> {
    let name = match user {
        "alice" => "Alice Analyst",
        "bob" => "Bob Builder",
        _ => "Carol Convener",
    };
    let email = format!("{user}@example.org");
    vec![
        ("GIT_AUTHOR_NAME".into(), name.into()),
        ("GIT_AUTHOR_EMAIL".into(), email.clone()),
        ("GIT_COMMITTER_NAME".into(), name.into()),
        ("GIT_COMMITTER_EMAIL".into(), email),
        ("CAPSULE_USER".into(), user.into()),
    ]
}

/// The notification mails the demo's pushes produced (the file transport writes
/// them under the server's git directory), and where they are.
fn show_mails(out: &mut impl Write, server: &Path) -> anyhow::Result<()> {
    use capsule::mail::outbox::{Outbox, State};
    let outbox = Outbox::at(server);
    let sent = outbox.list(State::Sent)?;
    step(out, "Notification mails")?;
    if sent.is_empty() {
        writeln!(
            out,
            "   None yet: publishing or reviewing a deposit whose schema has notification rules queues them."
        )?;
    }
    let repo = capsule::archive::open_for_hook(server)?;
    let settings = capsule::hook::ArchiveState::before_push(&repo)?.settings;
    let dir = settings
        .mail
        .as_ref()
        .map(|mail| capsule::mail::send::file_dir(mail, server));
    for entry in &sent {
        let mail = &entry.mail;
        let everyone: Vec<&str> = mail
            .to
            .iter()
            .chain(&mail.cc)
            .chain(&mail.bcc)
            .map(String::as_str)
            .collect();
        writeln!(out, "   {}", mail.subject)?;
        writeln!(out, "      to {}", everyone.join(", "))?;
        if let Some(dir) = &dir {
            writeln!(
                out,
                "      {}",
                dir.join(format!("{}.eml", entry.key)).display()
            )?;
        }
    }
    writeln!(
        out,
        "   capsule -C {} outbox list     shows the outbox (queued, sent, failed)",
        server.display()
    )?;
    Ok(())
}

fn step(out: &mut impl Write, title: &str) -> std::io::Result<()> {
    writeln!(out, "\n{}", output::heading(title))
}

fn write(root: &Path, path: &str, text: &str) -> anyhow::Result<()> {
    let target = root.join(path);
    std::fs::create_dir_all(target.parent().unwrap())?;
    std::fs::write(target, text)?;
    Ok(())
}

/// Runs git with a fixed identity, so the demo works on machines without git config.
fn git_command(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Alice Analyst")
        .env("GIT_AUTHOR_EMAIL", "alice@example.org")
        .env("GIT_COMMITTER_NAME", "Alice Analyst")
        .env("GIT_COMMITTER_EMAIL", "alice@example.org")
        .env("CAPSULE_USER", "alice");
    cmd
}

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let status = git_command(dir)
        .args(args)
        .output()
        .context("cannot run git: install git to run the demo")?;
    if !status.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&status.stderr)
        );
    }
    Ok(())
}

/// Pushes as alice and returns whether it landed, with git's output.
fn push(dir: &Path) -> anyhow::Result<(bool, String)> {
    push_as(dir, "alice")
}

fn push_as(dir: &Path, user: &str) -> anyhow::Result<(bool, String)> {
    let output = git_command(dir)
        .envs(identity(user))
        .args(["push", "origin", "HEAD:main"])
        .output()?;
    Ok((
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

fn show_remote(out: &mut impl Write, text: &str) -> std::io::Result<()> {
    writeln!(out, "   $ git push")?;
    for line in text
        .lines()
        .filter(|l| l.starts_with("remote:") || l.contains("rejected"))
    {
        writeln!(out, "   {line}")?;
    }
    Ok(())
}
