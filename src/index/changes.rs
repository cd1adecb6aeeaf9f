//! What the index must reflect, read from git: the drafts branch, what its new commits
//! changed in `deposits/`, and the record tags.
//!
//! Everything here costs what changed, not what exists: a commit's changes are found
//! by a merge of the two sorted `deposits/` trees that compares folder ids only (a
//! deposit folder whose id did not change is never opened), and record tags are
//! compared by a digest of their names and ids before any of them is read.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use git2::{Commit, ObjectType, Odb, Oid, Repository, Tree};

use crate::archive::GitTree;
use crate::rawtree::{differing_entries, read_tree, DepositFolders, FolderChange, RawEntry};
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
    let hints = hints_dir(repo);
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
        diff_folders(&hints, &odb, tree, parent_tree, &mut |name, now, before| {
            let Ok(name) = std::str::from_utf8(name) else {
                return;
            };
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
) -> Result<Option<Tree<'r>>, git2::Error> {
    let root = commit.tree()?;
    let folder = root
        .get_name("deposits")
        .filter(|entry| entry.kind() == Some(ObjectType::Tree))
        .map(|entry| entry.id());
    match folder {
        Some(id) => Ok(Some(repo.find_tree(id)?)),
        None => Ok(None),
    }
}

/// The deposit folders of a `deposits/` tree: `(id, folder tree id)`, files skipped.
pub fn folders(tree: &Tree<'_>) -> Vec<(String, Oid)> {
    tree.iter()
        .filter(|e| e.kind() == Some(ObjectType::Tree))
        .filter_map(|e| Some((e.name()?.to_string(), e.id())))
        .collect()
}

/// Receives `(name, id now, id before)` of a changed deposit folder.
pub type FolderChanged<'a> = dyn FnMut(&[u8], Option<Oid>, Option<Oid>) + 'a;

/// Calls `changed(name, now, before)` for every folder of `deposits/` whose id differs
/// between `new` and `old` (added, removed or changed).
///
/// The two tree objects are merge-joined from their bytes (see [`crate::rawtree`]):
/// no name is hashed and no entry is copied unless it differs, so after the two
/// objects are inflated the cost is one comparison per entry.
///
/// When the hook that accepted the commit left a note of these changes (see
/// [`remember_folder_changes`]), the note is used and neither tree is read.
pub fn diff_folders(
    hints: &Path,
    odb: &Odb<'_>,
    new: Option<Oid>,
    old: Option<Oid>,
    changed: &mut FolderChanged<'_>,
) -> Result<(), git2::Error> {
    if new == old {
        return Ok(());
    }
    if let Some(noted) = new.and_then(|new| recall(hints, new, old)) {
        for (name, now, before) in noted {
            changed(&name, now, before);
        }
        return Ok(());
    }
    let new = new.map(|id| read_tree(odb, id)).transpose()?;
    let old = old.map(|id| read_tree(odb, id)).transpose()?;
    let folder = |entry: Option<RawEntry<'_>>| entry.filter(RawEntry::is_tree).map(|e| e.id);
    for (name, was, now) in differing_entries(bytes(&old), bytes(&new))? {
        let (before, after) = (folder(was), folder(now));
        if before != after {
            changed(name, after, before);
        }
    }
    Ok(())
}

fn bytes<'b>(tree: &'b Option<git2::OdbObject<'_>>) -> &'b [u8] {
    tree.as_ref().map_or(&[], git2::OdbObject::data)
}

/// Where the hook leaves its notes of how pushed commits changed `deposits/`.
fn hints_dir(repo: &Repository) -> PathBuf {
    repo.path().join("capsule").join("deposit-changes")
}

const HINT_HEADER: &str = "capsule deposit-changes 1";

/// Notes how a commit changed the folders of `deposits/`, for the index update that
/// follows the push.
///
/// The pre-receive hook has just merge-joined the two `deposits/` trees to check the
/// push; with 100k deposits those are ~4 MB objects, and inflating them again is most
/// of what the update would cost. A note is named by the two tree ids, so it can only
/// ever describe those two trees: it cannot go stale, and a note left by a refused push
/// is merely unused. Notes older than a day are removed when a new one is written.
/// Failing to write one costs speed, never correctness, so errors are ignored.
pub(crate) fn remember_folder_changes(repo: &Repository, folders: &DepositFolders) {
    let Some(new) = folders.new else {
        return;
    };
    let mut text = format!("{HINT_HEADER}\n");
    for (name, now, before) in &folders.changed {
        let Some(name) = std::str::from_utf8(name)
            .ok()
            .filter(|n| !n.contains(['\t', '\n']))
        else {
            return;
        };
        text.push_str(&format!("{name}\t{}\t{}\n", hex(*now), hex(*before)));
    }
    let dir = hints_dir(repo);
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        // Once per process: a push of many commits writes a note for each.
        static PRUNED: std::sync::Once = std::sync::Once::new();
        PRUNED.call_once(|| prune_hints(&dir));
        let mut file = tempfile::NamedTempFile::new_in(&dir)?;
        file.write_all(text.as_bytes())?;
        file.persist(dir.join(hint_name(new, folders.old)))
            .map_err(|e| e.error)?;
        Ok(())
    };
    let _ = write();
}

/// The note for `old` → `new`, if the hook left one and it reads back whole.
fn recall(dir: &Path, new: Oid, old: Option<Oid>) -> Option<Vec<FolderChange>> {
    let text = std::fs::read_to_string(dir.join(hint_name(new, old))).ok()?;
    let mut lines = text.lines();
    if lines.next()? != HINT_HEADER {
        return None;
    }
    let parse = |id: &str| -> Option<Option<Oid>> {
        match id {
            "-" => Some(None),
            hex => Oid::from_str(hex).ok().map(Some),
        }
    };
    lines
        .map(|line| {
            let mut parts = line.split('\t');
            let name = parts.next().filter(|n| !n.is_empty())?;
            let now = parse(parts.next()?)?;
            let before = parse(parts.next()?)?;
            parts
                .next()
                .is_none()
                .then(|| (name.as_bytes().to_vec(), now, before))
        })
        .collect()
}

fn hint_name(new: Oid, old: Option<Oid>) -> String {
    format!("{new}-{}", hex(old))
}

fn hex(id: Option<Oid>) -> String {
    id.map_or_else(|| "-".to_string(), |id| id.to_string())
}

fn prune_hints(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let day_ago = SystemTime::now() - Duration::from_secs(24 * 3600);
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|modified| modified < day_ago);
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_noted_change_reads_back_and_only_for_its_two_trees() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let id = |n: u8| Oid::from_bytes(&[n; 20]).unwrap();
        let folders = DepositFolders {
            old: Some(id(1)),
            new: Some(id(2)),
            changed: vec![
                (b"ana-1".to_vec(), Some(id(3)), Some(id(4))),
                (b"gone".to_vec(), None, Some(id(5))),
                (b"new".to_vec(), Some(id(6)), None),
            ],
        };
        remember_folder_changes(&repo, &folders);
        let hints = hints_dir(&repo);
        assert_eq!(
            recall(&hints, id(2), Some(id(1))),
            Some(folders.changed.clone())
        );
        assert_eq!(recall(&hints, id(2), None), None);
        assert_eq!(recall(&hints, id(2), Some(id(9))), None);
        // A damaged note is ignored, not trusted.
        std::fs::write(
            hints.join(hint_name(id(2), Some(id(1)))),
            "capsule deposit-changes 1\nana-1\tnot-an-id\t-\n",
        )
        .unwrap();
        assert_eq!(recall(&hints, id(2), Some(id(1))), None);
        // Names git allows but a line cannot hold leave no note at all.
        let odd = DepositFolders {
            old: None,
            new: Some(id(7)),
            changed: vec![(b"a\tb".to_vec(), Some(id(3)), None)],
        };
        remember_folder_changes(&repo, &odd);
        assert_eq!(recall(&hints, id(7), None), None);
    }

    /// A commit whose root holds `deposits/` with one folder per name.
    fn commit_with(repo: &Repository, names: &[(&str, &str)], parent: Option<Oid>) -> (Oid, Oid) {
        let mut deposits = repo.treebuilder(None).unwrap();
        for (name, content) in names {
            let blob = repo.blob(content.as_bytes()).unwrap();
            let mut folder = repo.treebuilder(None).unwrap();
            folder.insert("deposit.json", blob, 0o100644).unwrap();
            deposits
                .insert(name, folder.write().unwrap(), 0o040000)
                .unwrap();
        }
        let deposits = deposits.write().unwrap();
        let mut root = repo.treebuilder(None).unwrap();
        root.insert("deposits", deposits, 0o040000).unwrap();
        let root = repo.find_tree(root.write().unwrap()).unwrap();
        let who =
            git2::Signature::new("t", "t@example.org", &git2::Time::new(1_700_000_000, 0)).unwrap();
        let parents: Vec<Commit<'_>> = parent
            .map(|p| repo.find_commit(p).unwrap())
            .into_iter()
            .collect();
        let parents: Vec<&Commit<'_>> = parents.iter().collect();
        let commit = repo.commit(None, &who, &who, "c", &root, &parents).unwrap();
        (commit, deposits)
    }

    #[test]
    fn history_takes_a_pushed_commits_changes_from_the_note_without_reading_the_trees() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let (first, old_tree) = commit_with(&repo, &[("a", "1"), ("b", "1")], None);
        let (second, new_tree) = commit_with(&repo, &[("a", "2"), ("b", "1")], Some(first));
        let folder =
            |tree: Oid, name: &str| repo.find_tree(tree).unwrap().get_name(name).unwrap().id();
        let expected = Touch {
            updated: 1_700_000_000,
            added: None,
            folder: Some(folder(new_tree, "a")),
        };
        let noted = DepositFolders {
            old: Some(old_tree),
            new: Some(new_tree),
            changed: vec![(
                b"a".to_vec(),
                Some(folder(new_tree, "a")),
                Some(folder(old_tree, "a")),
            )],
        };
        remember_folder_changes(&repo, &noted);
        // Take both deposits/ trees away: only the note can answer now.
        for tree in [old_tree, new_tree] {
            let hex = tree.to_string();
            std::fs::remove_file(dir.path().join("objects").join(&hex[..2]).join(&hex[2..]))
                .unwrap();
        }
        let repo = Repository::open_bare(dir.path()).unwrap();
        let touches = history(&repo, second, Some(first)).unwrap().unwrap();
        assert_eq!(touches.len(), 1);
        assert_eq!(touches["a"], expected);
        // Without the note the trees are needed, and their absence is an error.
        std::fs::remove_dir_all(hints_dir(&repo)).unwrap();
        assert!(history(&repo, second, Some(first)).is_err());
    }
}
