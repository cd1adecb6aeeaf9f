//! Writing a plan into a clone: the schemas in one commit, then each deposit's states
//! as commits dated with CAP's `created` (author) and `updated` (committer), and each
//! published revision as the annotated record tag `records/<id>/v<N>` on its commit.
//!
//! Every object is made first; the working tree and the branch move once, at the end,
//! so an error before that leaves the clone as it was. Record tags come last: they
//! name commits already on the branch.

use git2::{build::TreeUpdateBuilder, FileMode, Oid, Repository, Signature, Time};

use crate::deposit::{file_path, metadata_path};

use super::map::Timestamp;
use super::plan::Plan;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{0}")]
    Git(#[from] git2::Error),
    #[error("the clone has changes that are not committed ({0}): commit or stash them first, so that the import's commits hold only the import")]
    Dirty(String),
    #[error("HEAD names no branch: check out the archive's default branch (records are published from it) and run the import again")]
    Detached,
}

/// Who makes the commits and tags (the person running the import).
pub struct Identity {
    pub name: String,
    pub email: String,
}

fn signature(who: &Identity, at: Option<Timestamp>) -> Result<Signature<'static>, git2::Error> {
    match at {
        Some(t) => Signature::new(
            &who.name,
            &who.email,
            &Time::new(t.seconds, t.offset_minutes),
        ),
        None => Signature::now(&who.name, &who.email),
    }
}

/// Refuses a clone with uncommitted changes to tracked files, or without a branch.
pub fn check_clone(repo: &Repository) -> Result<(), WriteError> {
    let head = repo.head()?;
    if !head.is_branch() {
        return Err(WriteError::Detached);
    }
    let mut options = git2::StatusOptions::new();
    options.include_untracked(false).include_ignored(false);
    let statuses = repo.statuses(Some(&mut options))?;
    if let Some(first) = statuses.iter().next() {
        let path = first.path().unwrap_or("?").to_string();
        return Err(WriteError::Dirty(if statuses.len() > 1 {
            format!("{path} and {} more", statuses.len() - 1)
        } else {
            path
        }));
    }
    Ok(())
}

/// Writes `plan` as commits and tags. Returns the commits and tags made.
pub fn apply(
    repo: &Repository,
    plan: &Plan,
    who: &Identity,
) -> Result<(Vec<String>, Vec<String>), WriteError> {
    check_clone(repo)?;
    let head = repo.head()?;
    let branch = head.name().expect("a branch has a name").to_string();
    let start = head.peel_to_commit()?;
    let mut parent = start.clone();
    let mut tree = start.tree()?;
    let mut commits = Vec::new();
    let mut tags: Vec<(String, u32, Oid, Option<Timestamp>)> = Vec::new();

    if !plan.schema_files.is_empty() {
        let mut update = TreeUpdateBuilder::new();
        for (path, bytes) in &plan.schema_files {
            update.upsert(path, repo.blob(bytes)?, FileMode::Blob);
        }
        let new_tree = repo.find_tree(update.create_updated(repo, &tree)?)?;
        let sig = signature(who, None)?;
        let message = format!(
            "Import {} schema{} from CAP\n\n{}\n",
            plan.schema_files.len(),
            if plan.schema_files.len() == 1 {
                ""
            } else {
                "s"
            },
            plan.report
                .schemas_added
                .iter()
                .map(|a| format!("{} from {}", a.schema, a.from))
                .collect::<Vec<_>>()
                .join("\n")
        );
        let oid = repo.commit(None, &sig, &sig, &message, &new_tree, &[&parent])?;
        parent = repo.find_commit(oid)?;
        tree = new_tree;
        commits.push(oid.to_string());
    }

    for deposit in &plan.deposits {
        let mut first = true;
        for step in &deposit.steps {
            if step.changes {
                let mut update = TreeUpdateBuilder::new();
                let mut text =
                    serde_json::to_string_pretty(&step.value).expect("JSON values serialise");
                text.push('\n');
                update.upsert(
                    metadata_path(&deposit.id),
                    repo.blob(text.as_bytes())?,
                    FileMode::Blob,
                );
                if first {
                    for (key, bytes) in &deposit.files {
                        update.upsert(
                            file_path(&deposit.id, key),
                            repo.blob(bytes)?,
                            FileMode::Blob,
                        );
                    }
                }
                first = false;
                let new_tree = repo.find_tree(update.create_updated(repo, &tree)?)?;
                let author = signature(who, step.author.or(step.committer))?;
                let committer = signature(who, step.committer.or(step.author))?;
                let what = match step.version {
                    Some(n) => format!("published revision v{n}"),
                    None => "draft".to_string(),
                };
                let message = format!(
                    "Import {} from CAP ({what}, {})\n\nCAP-pid: {}\nImported-from: {}\n",
                    deposit.id, deposit.schema, deposit.id, step.origin
                );
                let oid =
                    repo.commit(None, &author, &committer, &message, &new_tree, &[&parent])?;
                parent = repo.find_commit(oid)?;
                tree = new_tree;
                commits.push(oid.to_string());
            }
            if let Some(n) = step.version {
                tags.push((deposit.id.clone(), n, parent.id(), step.committer));
            }
        }
        if first && !deposit.files.is_empty() {
            // The deposit is as CAP has it, but files arrived that the archive lacks
            // (fetched now, or changed in CAP): one commit of their own.
            let mut update = TreeUpdateBuilder::new();
            for (key, bytes) in &deposit.files {
                update.upsert(
                    file_path(&deposit.id, key),
                    repo.blob(bytes)?,
                    FileMode::Blob,
                );
            }
            let new_tree = repo.find_tree(update.create_updated(repo, &tree)?)?;
            let sig = signature(who, None)?;
            let message = format!(
                "Import files of {} from CAP\n\nCAP-pid: {}\n",
                deposit.id, deposit.id
            );
            let oid = repo.commit(None, &sig, &sig, &message, &new_tree, &[&parent])?;
            parent = repo.find_commit(oid)?;
            tree = new_tree;
            commits.push(oid.to_string());
        }
    }

    if parent.id() != start.id() {
        // The working tree follows (only files that match the old commit are touched:
        // the clone was checked clean), then the branch moves in one step.
        let mut checkout = git2::build::CheckoutBuilder::new();
        checkout.safe();
        repo.checkout_tree(parent.as_object(), Some(&mut checkout))?;
        repo.reference(&branch, parent.id(), true, "capsule import cap")?;
    }
    let mut made = Vec::new();
    for (id, n, commit, at) in tags {
        let sig = signature(who, at)?;
        crate::record::create_record_tag(
            repo,
            &id,
            n,
            commit,
            &sig,
            &format!("Publish {id} v{n} (imported from CAP)"),
        )?;
        made.push(crate::record::record_ref(&id, n));
    }
    Ok((commits, made))
}
