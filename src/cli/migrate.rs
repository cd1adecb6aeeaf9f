//! `capsule migrate`: move a flat archive's deposits into shard folders.

use std::io::Write;

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;

use capsule::migrate::shard_tree;

use super::clone::{run_git, Clone};
use super::output::{self, count};
use super::Outcome;

#[derive(Debug, Args)]
#[command(
    after_help = "Archives made before shards keep each deposit in deposits/<id>/. This moves every
such folder, whole, to deposits/<shard>/<id>/ in one commit on the current branch
(the working tree must be clean). Nothing else changes: each deposit's folder keeps its
git tree id, so `capsule log` shows no new version, record tags stay valid, and the
hook sees no deposit changed. Push the commit as an archive admin.

Examples:
  capsule migrate --dry-run     list what would move
  capsule migrate && git push   move, then push"
)]
pub struct MigrateArgs {
    /// List the deposits that would move, and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    moved: Vec<String>,
    commit: Option<String>,
    dry_run: bool,
}

pub fn run(args: MigrateArgs) -> anyhow::Result<Outcome> {
    let clone = Clone::open()?;
    let head = clone
        .repo
        .head()
        .context("the repository has no commits yet: there is nothing to move")?
        .peel_to_commit()?;
    let migration = shard_tree(&clone.repo, &head.tree()?)?;
    let mut report = Report {
        moved: migration.moved.clone(),
        commit: None,
        dry_run: args.dry_run,
    };
    if let (Some(tree), false) = (migration.tree, args.dry_run) {
        let dirty = clone
            .git()
            .args(["status", "--porcelain", "--untracked-files=no"])
            .output()
            .context("cannot run git status; is git installed?")?;
        if !dirty.stdout.is_empty() {
            bail!("the working tree has uncommitted changes: commit or stash them first, so that the move is a commit of its own");
        }
        let message = format!(
            "Move {} into shard folders (capsule migrate)\n\nEach deposits/<id>/ is now deposits/<shard>/<id>/, where <shard> is the\nfirst two hex digits of the SHA-256 of the id. No deposit's content changed.",
            count(migration.moved.len(), "deposit")
        );
        let made = clone
            .git()
            .args([
                "commit-tree",
                &tree.to_string(),
                "-p",
                &head.id().to_string(),
                "-m",
                &message,
            ])
            .output()
            .context("cannot run git commit-tree")?;
        if !made.status.success() {
            bail!(
                "git could not make the commit: {}",
                String::from_utf8_lossy(&made.stderr).trim()
            );
        }
        let commit = String::from_utf8_lossy(&made.stdout).trim().to_string();
        // Check the new tree out over the old one (refuses to overwrite local changes),
        // then move the branch, only if it is still where we read it.
        run_git(
            clone
                .git()
                .args(["read-tree", "-m", "-u", &head.id().to_string(), &commit]),
            "check out the moved deposits",
        )?;
        run_git(
            clone.git().args([
                "update-ref",
                "-m",
                "capsule migrate",
                "HEAD",
                &commit,
                &head.id().to_string(),
            ]),
            "move the branch to the new commit",
        )?;
        report.commit = Some(commit);
    }
    if args.json {
        output::json(&report)?;
        return Ok(Outcome::Ok);
    }
    let mut out = anstream::stdout();
    match (&report.commit, report.moved.len()) {
        (_, 0) => writeln!(
            out,
            "Nothing to move: every deposit is in its shard folder."
        )?,
        (None, n) => {
            writeln!(out, "Would move {}:", count(n, "deposit"))?;
            for id in &report.moved {
                writeln!(out, "  deposits/{id}/ -> {}/", capsule::deposit::folder(id))?;
            }
        }
        (Some(commit), n) => writeln!(
            out,
            "Moved {} into shard folders in commit {}.\nPush it as an archive admin: git push",
            count(n, "deposit"),
            &commit[..7]
        )?,
    }
    Ok(Outcome::Ok)
}
