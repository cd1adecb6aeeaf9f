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
        "3. alice adds the CAP documentation's schema and three analyses, and pushes",
    )?;
    write(
        &work,
        "schemas/cap-docs-example/0.0.1.json",
        scaffold::CAP_DOCS_SCHEMA,
    )?;
    write(&work, "deposits/zee/deposit.json", ZEE)?;
    write(&work, "deposits/higgs-4l/deposit.json", HIGGS)?;
    write(&work, "deposits/ttbar-xsec/deposit.json", TTBAR)?;
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
        .args(["validate", "--publish", "deposits/zee"])
        .output()?;
    write!(
        out,
        "   $ capsule validate --publish deposits/zee\n   {}",
        String::from_utf8_lossy(&publish.stdout)
    )?;

    step(
        &mut out,
        "5. A mistake: an unknown status and a malformed e-mail address",
    )?;
    write(&work, "deposits/w-mass/deposit.json", MISTAKE)?;
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

    step(&mut out, "Explore it yourself")?;
    writeln!(
        out,
        "   cd {}\n   capsule validate --json\n   git log --stat",
        work.display()
    )?;
    show_mails(&mut out, &server)?;
    Ok(Outcome::Ok)
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

/// Pushes and returns whether it landed, with git's output.
fn push(dir: &Path) -> anyhow::Result<(bool, String)> {
    let output = git_command(dir)
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
