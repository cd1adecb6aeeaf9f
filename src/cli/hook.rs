//! `capsule hook install|status|pre-receive|post-receive`

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Subcommand, ValueEnum};

use capsule::access::pusher_from_env;
use capsule::hook::{check_push, parse_ref_updates, ArchiveState};
use capsule::scaffold::{
    enable_fsck, hook_status, install_hooks, server_warnings, HookAction, Layout,
};

use super::output::{self, count};
use super::Outcome;

#[derive(Debug, Subcommand)]
pub enum HookCommand {
    /// Install capsule's pre-receive and post-receive hooks into a bare repository.
    ///
    /// Safe to run again (it refreshes its own hooks). A hook that capsule did not
    /// write is left alone unless --force, which keeps it as `<hook>.capsule-backup`.
    Install {
        /// The server repository (the `.git` folder of a bare repository).
        git_dir: PathBuf,
        /// Where the hosting server looks for hooks.
        #[arg(long, value_enum, default_value = "plain")]
        layout: LayoutArg,
        /// Replace hooks that capsule did not write (a backup is kept).
        #[arg(long)]
        force: bool,
        /// The capsule binary the hooks run (default: this one).
        #[arg(long, value_name = "PATH")]
        capsule: Option<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show which hooks are installed and which capsule binary they run.
    Status {
        /// The server repository (the `.git` folder of a bare repository).
        git_dir: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check a push (git runs this; it reads `<old> <new> <ref>` lines on stdin).
    PreReceive,
    /// Act on a push that landed (git runs this).
    PostReceive,
}

/// Hook layouts of hosting servers.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LayoutArg {
    /// hooks/pre-receive (plain git over SSH or HTTP, gitolite)
    Plain,
    /// hooks/pre-receive.d/capsule (Gitea, Forgejo)
    Gitea,
    /// custom_hooks/pre-receive.d/capsule (GitLab server hooks)
    Gitlab,
}

impl From<LayoutArg> for Layout {
    fn from(arg: LayoutArg) -> Layout {
        match arg {
            LayoutArg::Plain => Layout::Plain,
            LayoutArg::Gitea => Layout::Gitea,
            LayoutArg::Gitlab => Layout::Gitlab,
        }
    }
}

pub fn run(cmd: HookCommand) -> anyhow::Result<Outcome> {
    match cmd {
        HookCommand::Install {
            git_dir,
            layout,
            force,
            capsule,
            json,
        } => {
            let bin = match capsule {
                Some(path) => path,
                None => {
                    std::env::current_exe().context("cannot tell where the capsule binary is")?
                }
            };
            let bin = bin
                .canonicalize()
                .with_context(|| format!("{} does not exist", bin.display()))?;
            let changes = install_hooks(&git_dir, layout.into(), &bin, force)?;
            let refused = changes.iter().any(|c| c.action == HookAction::Refused);
            let fsck_turned_on = enable_fsck(&git_dir)?;
            if json {
                output::json(&changes)?;
            } else {
                let mut out = anstream::stdout();
                if fsck_turned_on {
                    writeln!(
                        out,
                        "{}: receive.fsckObjects turned on (git checks every pushed object)",
                        git_dir.join("config").display()
                    )?;
                }
                for change in &changes {
                    let what = match &change.action {
                        HookAction::Created => "installed".to_string(),
                        HookAction::Updated => "updated".to_string(),
                        HookAction::Unchanged => "already up to date".to_string(),
                        HookAction::Replaced { backup } => format!(
                            "installed; the previous hook is kept as {}",
                            backup.display()
                        ),
                        HookAction::Refused => {
                            output::bad("NOT installed: a hook capsule did not write is in the way")
                        }
                    };
                    writeln!(out, "{}: {what}", change.path.display())?;
                }
                if refused {
                    output::warning("re-run with --force to move the existing hook aside (it is kept as a backup), or call `capsule hook pre-receive` from it yourself");
                }
            }
            // A HEAD that disagrees with capsule.toml is reported, not fatal: the hooks
            // are installed, and `hook status` keeps failing until it is fixed.
            report_server_warnings(&git_dir)?;
            Ok(if refused {
                Outcome::Problems
            } else {
                Outcome::Ok
            })
        }
        HookCommand::Status { git_dir, json } => {
            let git_dir = if git_dir.join("objects").is_dir() {
                git_dir
            } else {
                // A clone: its hooks are in its .git folder, but the ones that judge
                // pushes run on the server.
                match git2::Repository::discover(&git_dir) {
                    Ok(repo) if !repo.is_bare() => {
                        output::warning(&format!(
                            "{} is a clone, not a server repository: pushes are judged by the hooks of the repository you push to. Showing this clone's own hooks in {}; to check the server, run `capsule hook status /path/to/archive.git` there",
                            git_dir.display(),
                            repo.path().display()
                        ));
                        repo.path().to_path_buf()
                    }
                    _ => anyhow::bail!(
                        "{} is not a git repository: give the server's bare repository (the folder with objects/ and refs/)",
                        git_dir.display()
                    ),
                }
            };
            let states = hook_status(&git_dir);
            if json {
                output::json(&states)?;
            } else {
                let mut out = anstream::stdout();
                for s in &states {
                    let binary = match (&s.binary, s.binary_exists) {
                        (Some(b), true) => format!(" -> {}", b.display()),
                        (Some(b), false) => output::bad(&format!(
                            " -> {} (missing: reinstall the hooks)",
                            b.display()
                        )),
                        (None, _) => String::new(),
                    };
                    writeln!(
                        out,
                        "{:<13} {:<7} {:<8} {}{binary}",
                        s.hook,
                        format!("{:?}", s.layout).to_lowercase(),
                        s.state,
                        s.path.display()
                    )?;
                }
            }
            let complete = ["pre-receive", "post-receive"].iter().all(|h| {
                states
                    .iter()
                    .any(|s| s.hook == *h && s.state == "capsule" && s.binary_exists)
            });
            let warned = report_server_warnings(&git_dir)?;
            Ok(if complete && !warned {
                Outcome::Ok
            } else {
                Outcome::Problems
            })
        }
        HookCommand::PreReceive => pre_receive(),
        HookCommand::PostReceive => {
            // Consume the input so git never sees a broken pipe; the actions that
            // follow a landed push (mail, site) hang off this point.
            let mut input = String::new();
            std::io::stdin().read_to_string(&mut input)?;
            let updates = parse_ref_updates(&input)?;
            post_receive_mail(&git_dir(), &updates);
            post_receive_index(&git_dir());
            super::site::rebuild_after_push(&git_dir());
            Ok(Outcome::Ok)
        }
    }
}

/// Prints what weakens the hook in this repository's settings, with the fix, on
/// stderr (also with `--json`, whose output stays the hook list). Returns whether
/// anything was found.
fn report_server_warnings(git_dir: &Path) -> anyhow::Result<bool> {
    let warnings = server_warnings(git_dir)
        .with_context(|| format!("checking the settings of {}", git_dir.display()))?;
    for w in &warnings {
        output::warning(&format!("{}. Fix: {}", w.problem, w.fix));
    }
    Ok(!warnings.is_empty())
}

/// Catches the search index up with the push. The push has landed whatever happens
/// here, so a failure is a warning, never an error.
fn post_receive_index(git_dir: &Path) {
    super::search::skip_hash_verification();
    let result = capsule::archive::open_for_hook(git_dir)
        .map_err(capsule::index::IndexError::from)
        .and_then(|repo| capsule::index::refresh(&repo));
    match result {
        Ok(report) => {
            for skipped in report.iter().flat_map(|r| &r.skipped) {
                output::warning(&format!("not in the search index: {}", skipped.reason));
            }
        }
        Err(e) => output::warning(&format!(
            "the push landed, but the search index could not be updated: {e}. Run `capsule index` in the server repository to catch up."
        )),
    }
}

fn git_dir() -> PathBuf {
    std::env::var_os("GIT_DIR").map_or_else(|| PathBuf::from("."), PathBuf::from)
}

/// Fails closed: any error rejects the push.
fn pre_receive() -> anyhow::Result<Outcome> {
    match pre_receive_inner(&git_dir()) {
        Ok(outcome) => Ok(outcome),
        Err(e) => {
            output::error(&format!("capsule could not check this push: {e:#}"));
            output::error(
                "push rejected (capsule fails closed). Tell the archive's administrators.",
            );
            Ok(Outcome::Problems)
        }
    }
}

fn pre_receive_inner(git_dir: &Path) -> anyhow::Result<Outcome> {
    let mut input = String::new();
    // git sends one short line per ref; a megabyte is tens of thousands of refs.
    std::io::stdin()
        .take(1 << 20)
        .read_to_string(&mut input)
        .context("reading the ref updates")?;
    let updates = parse_ref_updates(&input)?;
    let repo = capsule::archive::open_for_hook(git_dir).context("opening the repository")?;
    let state = ArchiveState::before_push(&repo)?;
    // Every input is bounded before it is read: the time for the whole push here, each
    // file by its object header in check_push, templates by their fuel.
    let budget = state.settings.policy.hook_timeout_secs;
    let started = std::time::Instant::now();
    start_watchdog(budget);
    let pusher = pusher_from_env(&state.settings.identity).map(|(user, _)| user);
    let report = check_push(&repo, &state, &updates, pusher)?;
    // The watchdog ends a hook that hangs; a verdict reached after the budget (or
    // exactly at it, for a budget of 0) is refused the same way, so the limit holds
    // whichever thread gets there first.
    if started.elapsed() >= std::time::Duration::from_secs(budget) {
        output::error(&out_of_time(budget));
        return Ok(Outcome::Problems);
    }

    let mut err = anstream::stderr();
    for problem in &report.problems {
        writeln!(err, "{}", output::problem_line(problem))?;
    }
    for warning in &report.warnings {
        output::warning(warning);
    }
    let checked = format!(
        "{}, {} and {} checked",
        count(report.commits, "commit"),
        count(report.deposits_checked, "deposit"),
        count(report.schemas_checked, "schema"),
    );
    if report.accepted() {
        let published = if report.records.is_empty() {
            String::new()
        } else {
            format!("; publishes {}", report.records.join(", "))
        };
        writeln!(err, "capsule: {} {checked}{published}", output::ok("ok:"))?;
        Ok(Outcome::Ok)
    } else {
        let problems = count(report.problems.len(), "problem");
        let place = if report.bad_commits > 0 {
            format!(
                " in {} of {}",
                count(report.bad_commits, "commit"),
                count(report.commits, "commit")
            )
        } else {
            String::new()
        };
        writeln!(
            err,
            "capsule: {} {problems}{place}; nothing was changed. {}",
            output::bad("push rejected:"),
            fix_hint(&report.problems),
        )?;
        Ok(Outcome::Problems)
    }
}

/// What to run locally to see the same problems again: the command depends on what was
/// refused (a record needs `validate --publish`, a schema `schema check`).
fn fix_hint(problems: &[capsule::problem::Problem]) -> String {
    let mut commands: Vec<String> = Vec::new();
    let mut add = |command: String| {
        if !commands.contains(&command) {
            commands.push(command);
        }
    };
    for problem in problems {
        if let Some(tag) = problem
            .message
            .rsplit_once("(needed to publish records/")
            .map(|(_, rest)| rest)
        {
            let id = tag.split('/').next().unwrap_or("ID");
            add(format!("`capsule validate --publish {id}`"));
        } else if problem.file.starts_with("schemas/") || problem.file.starts_with("templates/") {
            add("`capsule schema check`".to_string());
        } else if problem.commit.is_some() {
            add("`capsule validate`".to_string());
        }
    }
    match commands.len() {
        0 => "Fix them and push again.".to_string(),
        1 => format!("Fix them ({} shows the same) and push again.", commands[0]),
        _ => format!(
            "Fix them ({} show the same) and push again.",
            commands.join(" and ")
        ),
    }
}

/// Refuses the push when the hook runs past its time budget. The pre-receive hook writes
/// nothing before its verdict, so leaving at any moment leaves nothing behind, and git
/// refuses every ref of a push whose hook exits non-zero.
fn start_watchdog(seconds: u64) {
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(seconds));
        output::error(&out_of_time(seconds));
        std::process::exit(1);
    });
}

fn out_of_time(seconds: u64) -> String {
    format!("capsule: push rejected: checking it took longer than the archive's limit of {seconds} s (policy.hook_timeout_secs in capsule.toml); nothing was changed. Push fewer commits at a time, or ask an archive admin to raise the limit")
}

/// Plans and queues the mails of a landed push, then starts their delivery without
/// waiting for it. Never fails the push: every problem becomes a `remote:` warning.
fn post_receive_mail(git_dir: &Path, updates: &[capsule::hook::RefUpdate]) {
    if let Err(e) = queue_mail(git_dir, updates) {
        output::warning(&format!(
            "capsule could not plan the mails of this push: {e:#} (the push itself landed)"
        ));
    }
}

fn queue_mail(git_dir: &Path, updates: &[capsule::hook::RefUpdate]) -> anyhow::Result<()> {
    use capsule::mail::outbox::{now, Outbox};
    use capsule::settings::MailTransport;

    // Absolute, so that log lines and file paths make sense outside the hook.
    let git_dir = &git_dir
        .canonicalize()
        .unwrap_or_else(|_| git_dir.to_path_buf());
    let repo = capsule::archive::open_for_hook(git_dir).context("opening the repository")?;
    let identity = ArchiveState::before_push(&repo)?.settings.identity;
    let pusher = pusher_from_env(&identity).map(|(user, _)| user);
    let archive_key = git_dir.to_string_lossy().into_owned();
    let plan =
        capsule::hook::plan_notifications(&repo, &archive_key, updates, pusher.as_deref(), now())?;
    let Some(mail) = plan.mail else {
        return Ok(());
    };
    let outbox = Outbox::at(git_dir);
    let mut queued = 0;
    for entry in &plan.entries {
        if outbox.enqueue(entry)? {
            queued += 1;
            outbox.log(
                "queued",
                Some(&entry.key),
                Some(&entry.event),
                &entry.mail.subject,
            )?;
        }
    }
    for note in &plan.notes {
        let rule = note.rule.as_deref().unwrap_or("");
        outbox.log(
            &note.what,
            None,
            Some(&note.event),
            &format!("{rule}: {}", note.message),
        )?;
        if note.what != "note" {
            output::warning(&format!("mail {rule}: {}", note.message));
        }
    }
    if queued > 0 {
        let mut err = anstream::stderr();
        writeln!(
            err,
            "capsule: {} queued for delivery (`capsule outbox list` on the server shows them)",
            count(queued, "mail")
        )?;
        match mail.transport {
            // Writing files is quick and local: done before the push returns.
            MailTransport::File => {
                capsule::mail::send::flush(
                    &outbox,
                    &mail,
                    git_dir,
                    std::time::Duration::from_secs(2),
                )?;
            }
            MailTransport::Smtp => spawn_flush(git_dir)?,
        }
    }
    Ok(())
}

/// Starts `capsule outbox flush` detached from the push: its own process group and
/// no inherited pipes, so git returns to the pusher at once and a slow SMTP server
/// never holds the push.
fn spawn_flush(git_dir: &Path) -> anyhow::Result<()> {
    use std::process::{Command, Stdio};
    let bin = std::env::current_exe().context("cannot tell where the capsule binary is")?;
    let git_dir = git_dir.canonicalize()?;
    let mut cmd = Command::new(bin);
    cmd.args(["outbox", "flush", "--quiet"])
        .env("GIT_DIR", &git_dir)
        .current_dir(&git_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    cmd.spawn().context("cannot start the mail delivery")?;
    Ok(())
}
