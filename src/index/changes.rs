//! What the index must reflect, read from git: the drafts branch, what its new commits
//! changed in `deposits/`, and the record tags.
//!
//! Everything here costs what changed, not what exists: a commit's changes are found
//! by a merge of the two sorted `deposits/` trees, then of the shards whose ids differ,
//! comparing folder ids only (a shard or deposit folder whose id did not change is
//! never opened), and record tags are compared by a digest of their names and ids
//! before any of them is read.

use std::collections::HashMap;

use git2::{Commit, ObjectType, Oid, Repository};

use crate::archive::{diff_folders, DepositsTree, GitTree};
use crate::record::{parse_record_ref, RECORD_TAG_PREFIX};
use crate::settings::Settings;

/// The branch whose tip holds the drafts, and that tip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftsTip {
    pub branch: String,
    pub commit: Option<Oid>,
}

/// Finds the drafts branch: `archive.default_branch` from the capsule.toml of HEAD's
/// commit, looked up as a local branch, then as `origin`'s (a clone that never checked
/// it out); HEAD's own branch when neither exists.
pub fn drafts_tip(repo: &Repository) -> Result<Option<DraftsTip>, git2::Error> {
    let head_branch = repo
        .find_reference("HEAD")
        .ok()
        .and_then(|r| r.symbolic_target().map(str::to_string));
    let head_commit = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let configured = match &head_commit {
        Some(commit) => GitTree::at_commit(repo, commit.id())?
            .read("capsule.toml")?
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|text| Settings::parse(&text).ok())
            .map(|s| s.archive.default_branch),
        None => None,
    };
    if let Some(branch) = configured {
        for name in [
            format!("refs/heads/{branch}"),
            format!("refs/remotes/origin/{branch}"),
        ] {
            if let Ok(reference) = repo.find_reference(&name) {
                let commit = reference.peel_to_commit()?.id();
                return Ok(Some(DraftsTip {
                    branch,
                    commit: Some(commit),
                }));
            }
        }
    }
    Ok(head_branch.map(|name| DraftsTip {
        branch: name
            .strip_prefix("refs/heads/")
            .unwrap_or(&name)
            .to_string(),
        commit: head_commit.map(|c| c.id()),
    }))
}

/// A digest of every record tag's name and target, to tell cheaply whether records
/// changed since the index was written (tags are not peeled: that would read every tag
/// object on every search).
pub fn records_digest(repo: &Repository) -> Result<(usize, String), git2::Error> {
    let mut lines = Vec::new();
    for reference in repo.references_glob(&format!("{RECORD_TAG_PREFIX}*"))? {
        let reference = reference?;
        let (Some(name), Some(target)) = (reference.name(), reference.target()) else {
            continue;
        };
        if matches!(parse_record_ref(name), Some(Ok(_))) {
            lines.push(format!("{name} {target}\n"));
        }
    }
    lines.sort();
    let count = lines.len();
    let digest = Oid::hash_object(ObjectType::Blob, lines.concat().as_bytes())?;
    Ok((count, digest.to_string()))
}

/// When a deposit changed within the commits walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Touch {
    /// The commit time of the newest commit that changed the deposit's folder.
    pub updated: i64,
    /// The commit time of the oldest commit that added it (absent in the parent).
    pub added: Option<i64>,
    /// The deposit's folder at `tip`, `None` when it is gone.
    pub folder: Option<Oid>,
}

/// Walks the first-parent history from `tip` back to `stop` (exclusive; `None` means to
/// the root) and records, per deposit id, when its folder changed.
///
/// Returns `None` when `stop` is not on the first-parent chain of `tip` (history was
/// rewritten): the caller must then reindex the drafts in full.
pub fn history(
    repo: &Repository,
    tip: Oid,
    stop: Option<Oid>,
) -> Result<Option<HashMap<String, Touch>>, git2::Error> {
    let odb = repo.odb()?;
    let mut touches: HashMap<String, Touch> = HashMap::new();
    let mut commit = repo.find_commit(tip)?;
    let mut tree = deposits_folder(&commit)?;
    loop {
        if Some(commit.id()) == stop {
            return Ok(Some(touches));
        }
        // A missing parent (a shallow clone's boundary) is treated as the root.
        let parent = commit.parent(0).ok();
        let parent_tree = match &parent {
            Some(p) => deposits_folder(p)?,
            None => None,
        };
        let time = commit.time().seconds();
        diff_folders(&odb, tree, parent_tree, &mut |name, now, before| {
            // The first sighting is the newest change: its folder is the tip's.
            let touch = touches.entry(name.to_string()).or_insert(Touch {
                updated: time,
                added: None,
                folder: now,
            });
            if now.is_some() && before.is_none() {
                // Walking backwards: the last assignment is the oldest addition.
                touch.added = Some(time);
            }
        })?;
        match parent {
            Some(p) => {
                commit = p;
                tree = parent_tree;
            }
            None => return Ok(stop.is_none().then_some(touches)),
        }
    }
}

/// The id of a commit's `deposits/` folder, if it has one (the root tree is small;
/// the deposits folder itself is not read).
fn deposits_folder(commit: &Commit<'_>) -> Result<Option<Oid>, git2::Error> {
    Ok(commit
        .tree()?
        .get_name("deposits")
        .filter(|entry| entry.kind() == Some(ObjectType::Tree))
        .map(|entry| entry.id()))
}

/// The `deposits/` folder of a commit, if it has one.
pub fn deposits_tree<'r>(
    repo: &'r Repository,
    commit: &Commit<'_>,
) -> Result<Option<DepositsTree<'r>>, git2::Error> {
    DepositsTree::of_root(repo, &commit.tree()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A commit whose root holds `deposits/<shard>/<id>/deposit.json` for each pair.
    fn commit_with(repo: &Repository, deposits: &[(&str, &str)], parent: Option<Oid>) -> Oid {
        let mut shards: std::collections::BTreeMap<String, git2::TreeBuilder<'_>> =
            Default::default();
        for (id, content) in deposits {
            let blob = repo.blob(content.as_bytes()).unwrap();
            let mut folder = repo.treebuilder(None).unwrap();
            folder.insert("deposit.json", blob, 0o100644).unwrap();
            let shard = shards
                .entry(crate::deposit::shard(id))
                .or_insert_with(|| repo.treebuilder(None).unwrap());
            shard.insert(id, folder.write().unwrap(), 0o040000).unwrap();
        }
        let mut root_deposits = repo.treebuilder(None).unwrap();
        for (name, shard) in shards {
            root_deposits
                .insert(name, shard.write().unwrap(), 0o040000)
                .unwrap();
        }
        let mut root = repo.treebuilder(None).unwrap();
        root.insert("deposits", root_deposits.write().unwrap(), 0o040000)
            .unwrap();
        let root = repo.find_tree(root.write().unwrap()).unwrap();
        let who =
            git2::Signature::new("t", "t@example.org", &git2::Time::new(1_700_000_000, 0)).unwrap();
        let parents: Vec<Commit<'_>> = parent
            .map(|p| repo.find_commit(p).unwrap())
            .into_iter()
            .collect();
        let parents: Vec<&Commit<'_>> = parents.iter().collect();
        repo.commit(None, &who, &who, "c", &root, &parents).unwrap()
    }

    #[test]
    fn history_names_the_deposits_each_commit_changed_across_shards() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let first = commit_with(&repo, &[("a", "1"), ("b", "1"), ("zee", "1")], None);
        let second = commit_with(&repo, &[("a", "2"), ("b", "1"), ("new", "1")], Some(first));
        let touches = history(&repo, second, Some(first)).unwrap().unwrap();
        let mut ids: Vec<&str> = touches.keys().map(String::as_str).collect();
        ids.sort();
        assert_eq!(ids, ["a", "new", "zee"]);
        assert_eq!(touches["new"].added, Some(1_700_000_000));
        assert_eq!(touches["zee"].folder, None);
        let tree = DepositsTree::of_commit(&repo, second).unwrap().unwrap();
        assert_eq!(touches["a"].folder, tree.folder("a").unwrap());
        let all: Vec<String> = tree
            .folders()
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(all, ["a", "b", "new"]);
        // From the root, every deposit ever added is there.
        assert_eq!(history(&repo, second, None).unwrap().unwrap().len(), 4);
    }
}
