//! `capsule publish` and `capsule review`

use std::io::Write;

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;

use capsule::archive::{short, GitTree};
use capsule::authoring::now;
use capsule::record::{create_record_tag, record_ref, versions_of, Review, ReviewKind};
use capsule::schema::{Mode, SchemaRegistry};
use capsule::validate::{check, parse_deposit, prepare};

use super::clone::{run_git, Clone};
use super::output::{self, count};
use super::Outcome;

#[derive(Debug, Args)]
#[command(
    after_help = "Publishing makes the annotated tag records/<ID>/v<N> on the current commit:
N is the next version (v1 first). The deposit as committed must be complete: it is
validated with `required` enforced, exactly as the server will. Record versions never
change once pushed; publish again for a new version.

Examples:
  capsule publish zee -m \"Approved by the conveners\"
  capsule publish zee --push          and push the tag right away"
)]
pub struct PublishArgs {
    /// The deposit to publish.
    id: String,
    /// Why this version is published (the tag's message).
    #[arg(short, long)]
    message: Option<String>,
    /// Push the new tag to the remote.
    #[arg(long)]
    push: bool,
    /// The remote to read existing versions from and push to.
    #[arg(long, default_value = "origin")]
    remote: String,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Published {
    id: String,
    version: u32,
    tag: String,
    commit: String,
    pushed: bool,
    /// Whether everyone may read this version, so that it appears on the public site.
    public: bool,
}

pub fn publish(args: PublishArgs) -> anyhow::Result<Outcome> {
    let clone = Clone::open()?;
    clone.deposit(&args.id)?;
    let id = &args.id;
    let path = capsule::deposit::metadata_path(id);

    // Versions others published meanwhile decide the next number.
    if clone.has_remote(&args.remote) {
        let fetched = clone
            .git()
            .args(["fetch", "--quiet", &args.remote])
            .arg(format!("refs/tags/records/{id}/*:refs/tags/records/{id}/*"))
            .status();
        if !fetched.is_ok_and(|s| s.success()) {
            output::warning(&format!(
                "could not read the published versions of {id} from {}; numbering from the tags in this clone",
                args.remote
            ));
        }
    }

    let head = clone.repo.head()?.peel_to_commit()?;
    // Records are published from the default branch: the server refuses a tag on a
    // commit it does not have there, so say so before making one.
    let default = &clone.settings.archive.default_branch;
    let tracking = format!("refs/remotes/{}/{default}", args.remote);
    if clone.has_remote(&args.remote) {
        let _ = clone
            .git()
            .args(["fetch", "--quiet", &args.remote])
            .arg(format!("+refs/heads/{default}:{tracking}"))
            .status();
        if let Ok(remote_tip) = clone.repo.refname_to_id(&tracking) {
            let on_default =
                remote_tip == head.id() || clone.repo.graph_descendant_of(remote_tip, head.id())?;
            if !on_default {
                bail!(
                    "commit {} is not on {}/{default} yet: push it first (`git push {} HEAD:{default}`); records are published from the default branch",
                    short(head.id()),
                    args.remote,
                    args.remote
                );
            }
        }
    }
    let mut status_options = git2::StatusOptions::new();
    status_options
        .pathspec(capsule::deposit::folder(id))
        .include_untracked(true);
    if !clone.repo.statuses(Some(&mut status_options))?.is_empty() {
        output::warning(&format!(
            "{} has changes that are not committed; publishing the version in commit {} (commit first to publish them)",
            capsule::deposit::folder(id),
            short(head.id())
        ));
    }

    let tree = GitTree::at_commit(&clone.repo, head.id())?;
    let bytes = tree
        .read(&path)?
        .with_context(|| format!("{path} is not committed yet: commit it, then publish"))?;
    let mut registry = SchemaRegistry::new();
    let problems = match parse_deposit(&path, &bytes).and_then(|d| prepare(&mut registry, &tree, d))
    {
        Ok(prepared) => check(&prepared, Mode::Publish),
        Err(problems) => problems,
    };
    if !problems.is_empty() {
        output::problems(
            &problems,
            "not published:",
            &format!(
                "{id} cannot be published: {} (a record must be complete; `capsule validate --publish {path}` shows the same)",
                count(problems.len(), "problem")
            ),
        )?;
        return Ok(Outcome::Problems);
    }

    // The public site shows a record only while `_access.deposit-read` grants
    // `public` (or `*`); say so now rather than let the author wait for a page.
    let public = capsule::json::from_bytes(&bytes)
        .is_ok_and(|deposit| capsule::access::DepositAccess::of(&deposit).is_public());
    let versions = versions_of(&clone.repo, id)?;
    if let Some(last) = versions.last() {
        if last.commit == head.id() {
            bail!(
                "v{} of {id} already is commit {}: change the deposit and commit before publishing a new version",
                last.version,
                short(head.id())
            );
        }
    }
    let version = versions.last().map_or(1, |r| r.version + 1);
    let message = args
        .message
        .clone()
        .unwrap_or_else(|| format!("Publish {id} v{version}"));
    // A SHA-256 of the version's files, which `capsule audit` checks (fixity beyond SHA-1).
    let folder = tree
        .deposit_folder(id)?
        .with_context(|| format!("{path} is not committed yet"))?;
    let digest = capsule::preserve::audit::payload_digest(&clone.repo, folder)?;
    let message = format!(
        "{message}\n\n{} {digest}\n",
        capsule::preserve::audit::PAYLOAD_TRAILER
    );
    let tagger = signature(&clone.repo)?;
    create_record_tag(&clone.repo, id, version, head.id(), &tagger, &message)?;
    let tag = format!("records/{id}/v{version}");

    let mut pushed = false;
    if args.push {
        let result = run_git(
            clone
                .git()
                .args(["push", "--quiet", &args.remote, &record_ref(id, version)]),
            &format!("push {tag}"),
        );
        if result.is_err() {
            // A tag the server refused must not linger and skew the next number.
            clone
                .repo
                .find_reference(&record_ref(id, version))?
                .delete()?;
            output::error(&format!(
                "the server refused {tag} (its reasons are above); it was not published, and the local tag was removed"
            ));
            return Ok(Outcome::Problems);
        }
        pushed = true;
    }

    let result = Published {
        id: id.clone(),
        version,
        tag: tag.clone(),
        commit: head.id().to_string(),
        pushed,
        public,
    };
    if args.json {
        output::json(&result)?;
    } else {
        let mut out = anstream::stdout();
        writeln!(
            out,
            "{} {tag} on commit {}",
            output::ok("Published"),
            short(head.id())
        )?;
        if !pushed {
            writeln!(out, "Push it to publish it: git push {} {tag}", args.remote)?;
        }
        if !public {
            output::warning(&format!(
                "{tag} will not be on the public site: {id}'s _access.deposit-read grants neither \"public\" nor \"*\", so only its readers see it (on an internal site, `capsule build --drafts`), and mails link its draft page. To make it public: `capsule set {id} /_access/deposit-read/roles/- public`, commit, push and publish again. New deposits get their readers from [archive] default_readers in capsule.toml."
            ));
        }
    }
    Ok(Outcome::Ok)
}

/// The tagger: git's own environment variables first, then the repository's config.
fn signature(repo: &git2::Repository) -> anyhow::Result<git2::Signature<'static>> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let (Some(name), Some(email)) = (
        var("GIT_COMMITTER_NAME").or_else(|| var("GIT_AUTHOR_NAME")),
        var("GIT_COMMITTER_EMAIL").or_else(|| var("GIT_AUTHOR_EMAIL")),
    ) {
        return Ok(git2::Signature::now(&name, &email)?);
    }
    repo.signature().map(|s| s.to_owned()).context(
        "git does not know who you are: set `git config user.name` and `git config user.email`",
    )
}

#[derive(Debug, Args)]
#[command(
    after_help = "Reviews are append-only files in the deposit's reviews/ folder, committed for you;
push them to deliver them. Only schemas with config.reviewable accept reviews.

Examples:
  capsule review zee --type approved -m \"Complete and reproducible\"
  capsule review zee --comment 20261122T101500Z-carol-review -m \"Fixed in the new version\"
  capsule review zee --resolve 20261122T101500Z-carol-review --push"
)]
pub struct ReviewArgs {
    /// The deposit to review.
    id: String,
    /// A review with this verdict.
    #[arg(long = "type", value_name = "TYPE", value_parser = ["approved", "request_changes", "declined"],
          required_unless_present_any = ["comment", "resolve"], conflicts_with_all = ["comment", "resolve"])]
    verdict: Option<String>,
    /// Comment on this review (its file name, with or without .json).
    #[arg(long, value_name = "REVIEW", conflicts_with = "resolve")]
    comment: Option<String>,
    /// Mark this review as resolved.
    #[arg(long, value_name = "REVIEW")]
    resolve: Option<String>,
    /// The text of the review or comment.
    #[arg(short, long, required_unless_present = "resolve")]
    message: Option<String>,
    /// Keep it off the public site.
    #[arg(long)]
    internal: bool,
    /// Act as this user (default: CAPSULE_USER, your git e-mail in access.toml, or $USER).
    #[arg(long = "as", value_name = "USER")]
    as_user: Option<String>,
    /// Push the commit to the remote.
    #[arg(long)]
    push: bool,
    #[arg(long, default_value = "origin")]
    remote: String,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Written {
    path: String,
    review: Review,
    pushed: bool,
}

pub fn review(args: ReviewArgs) -> anyhow::Result<Outcome> {
    let clone = Clone::open()?;
    let deposit_path = clone.deposit(&args.id)?;
    let id = &args.id;
    let user = clone.user(args.as_user.as_deref())?;

    // Refuse early what the server would refuse.
    let deposit: serde_json::Value = capsule::json::from_bytes(&std::fs::read(&deposit_path)?)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("{} is not valid JSON", capsule::deposit::metadata_path(id)))?;
    let tree = capsule::archive::WorkTree::new(&clone.root);
    let reviewable = deposit
        .get("$schema")
        .and_then(|s| s.as_str())
        .and_then(capsule::deposit::parse_schema_ref)
        .and_then(|sref| SchemaRegistry::new().load(&tree, &sref).ok().flatten())
        .is_some_and(|(_, schema)| schema.reviewable());
    if !reviewable {
        bail!("deposit {id} cannot be reviewed: its schema does not set config.reviewable = true");
    }

    let reviews_dir = clone.root.join(capsule::deposit::file_path(id, "reviews"));
    let target = args
        .comment
        .as_ref()
        .or(args.resolve.as_ref())
        .map(|name| name.trim_end_matches(".json").to_string());
    if let Some(name) = &target {
        let file = reviews_dir.join(format!("{name}.json"));
        let parsed = std::fs::read(&file)
            .ok()
            .and_then(|b| Review::parse(&file.to_string_lossy(), &b).ok());
        if !parsed.is_some_and(|r| r.kind == ReviewKind::Review) {
            bail!(
                "there is no review {name} of {id}: `ls {}` lists them",
                capsule::deposit::file_path(id, "reviews/")
            );
        }
    }
    let kind = if args.verdict.is_some() {
        ReviewKind::Review
    } else if args.comment.is_some() {
        ReviewKind::Comment
    } else {
        ReviewKind::Resolution
    };
    let review = Review {
        kind,
        verdict: args.verdict.clone(),
        body: args.message.clone().unwrap_or_default(),
        author: user,
        created: now(),
        review: target,
        internal: args.internal,
    };
    std::fs::create_dir_all(&reviews_dir)?;
    let mut name = review.file_name();
    let mut n = 2;
    while reviews_dir.join(&name).exists() {
        name = review.file_name().replace(".json", &format!("-{n}.json"));
        n += 1;
    }
    let path = capsule::deposit::file_path(id, &format!("reviews/{name}"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(clone.root.join(&path))?;
    file.write_all(review.to_json().as_bytes())?;
    file.sync_all()?;

    let summary = match kind {
        ReviewKind::Review => format!(
            "Review of {id}: {}",
            review.verdict.as_deref().unwrap_or("")
        ),
        ReviewKind::Comment => format!("Comment on a review of {id}"),
        ReviewKind::Resolution => format!("Resolve a review of {id}"),
    };
    run_git(clone.git().args(["add", "--", &path]), "stage the review")?;
    run_git(
        clone
            .git()
            .args(["commit", "--quiet", "-m", &summary, "--", &path]),
        "commit the review",
    )?;
    let mut pushed = false;
    if args.push {
        let branch = clone.branch()?;
        let result = run_git(
            clone
                .git()
                .args(["push", "--quiet", &args.remote, &format!("HEAD:{branch}")]),
            "push the review",
        );
        if result.is_err() {
            // Undo the commit but keep the file, so nothing is lost and a retry is simple.
            run_git(
                clone.git().args(["reset", "--quiet", "HEAD~1"]),
                "undo the review commit",
            )?;
            output::error(&format!(
                "the server refused the review (its reasons are above); the commit was undone and {path} kept"
            ));
            return Ok(Outcome::Problems);
        }
        pushed = true;
    }
    if args.json {
        output::json(&Written {
            path,
            review,
            pushed,
        })?;
    } else {
        let mut out = anstream::stdout();
        writeln!(out, "{} {path}", output::ok("Committed"))?;
        if !pushed {
            writeln!(out, "Push it to deliver it: git push")?;
        }
    }
    Ok(Outcome::Ok)
}
