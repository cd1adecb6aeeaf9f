//! The push path: what `pre-receive` checks before any ref moves.
//!
//! Cost grows with the push, not with the archive: only commits that no existing ref
//! reaches are walked, and each is checked by its diff against its first parent.
//! Everything is judged against the state before the push (settings, schema
//! immutability), so a push cannot loosen the rules it is judged by.
//!
//! This module never prints: it returns a [`PushReport`] that the CLI renders as the
//! `remote:` lines the pusher sees.

mod notify;
mod rules;

pub use notify::{plan_notifications, NotificationPlan};

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use git2::{Delta, FileMode, Oid, Repository, Sort, Tree};
use serde::Serialize;

use crate::access::Access;
use crate::archive::{short, GitTree};
use crate::deposit::{classify, PathKind, SchemaRef};
use crate::problem::Problem;
use crate::rawtree::{
    check_canonical_tree, check_tree_structure, differing_entries, display_name, join_path,
    read_tree, RawEntry,
};
use crate::schema::{LoadError, Mode, SchemaRegistry};
use crate::settings::Settings;
use crate::validate::{check_deposits, parse_deposit, prepare};

/// One line of a hook's standard input: `<old> <new> <ref>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefUpdate {
    #[serde(serialize_with = "ser_oid")]
    pub old: Oid,
    #[serde(serialize_with = "ser_oid")]
    pub new: Oid,
    pub name: String,
}

fn ser_oid<S: serde::Serializer>(oid: &Oid, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&oid.to_string())
}

impl RefUpdate {
    pub fn is_delete(&self) -> bool {
        self.new.is_zero()
    }
    pub fn is_create(&self) -> bool {
        self.old.is_zero()
    }
}

/// Why the hook could not do its job (as opposed to problems in the push).
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("malformed hook input line {line}: `{text}` (expected `<old> <new> <ref>`)")]
    Input { line: usize, text: String },
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Parses the ref updates git gives a `pre-receive` or `post-receive` hook.
pub fn parse_ref_updates(input: &str) -> Result<Vec<RefUpdate>, HookError> {
    input
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let bad = || HookError::Input {
                line: i + 1,
                text: line.to_string(),
            };
            let mut parts = line.split_whitespace();
            let (Some(old), Some(new), Some(name), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(bad());
            };
            Ok(RefUpdate {
                old: Oid::from_str(old).map_err(|_| bad())?,
                new: Oid::from_str(new).map_err(|_| bad())?,
                name: name.to_string(),
            })
        })
        .collect()
}

/// What a push was found to be.
#[derive(Debug, Default, Serialize)]
pub struct PushReport {
    pub problems: Vec<Problem>,
    pub warnings: Vec<String>,
    pub commits: usize,
    pub bad_commits: usize,
    pub deposits_checked: usize,
    pub schemas_checked: usize,
    /// Record versions this push publishes (`records/<id>/v<N>`), when accepted.
    pub records: Vec<String>,
    pub pusher: Option<String>,
}

impl PushReport {
    pub fn accepted(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The archive's rules as they stood before the push.
pub struct ArchiveState {
    pub settings: Settings,
    pub access: Access,
    /// The tip of the default branch before the push, if there is one.
    pub base: Option<Oid>,
    /// The default branch's full ref name (`refs/heads/main`).
    pub default_ref: String,
    /// Whether the repository has any branch at all.
    pub has_branches: bool,
    /// Whether the default branch holds a capsule.toml (an archive, not a plain
    /// repository that just had the hooks installed).
    pub has_settings: bool,
}

impl ArchiveState {
    /// Reads capsule.toml and access.toml from the default branch: HEAD's target, or
    /// the branch that capsule.toml names as `archive.default_branch` when it exists.
    pub fn before_push(repo: &Repository) -> Result<ArchiveState, HookError> {
        let head_ref = repo
            .find_reference("HEAD")
            .ok()
            .and_then(|r| r.symbolic_target().map(str::to_string))
            .unwrap_or_else(|| "refs/heads/main".to_string());
        let head = repo.refname_to_id(&head_ref).ok();
        let state = Self::at(repo, head, head_ref)?;
        let named = format!("refs/heads/{}", state.settings.archive.default_branch);
        match repo.refname_to_id(&named) {
            Ok(tip) if Some(tip) != head => Self::at(repo, Some(tip), named),
            _ => Ok(state),
        }
    }

    fn at(
        repo: &Repository,
        head: Option<Oid>,
        default_ref: String,
    ) -> Result<ArchiveState, HookError> {
        let has_branches = repo.references_glob("refs/heads/*")?.next().is_some();
        let Some(commit) = head else {
            return Ok(ArchiveState {
                settings: Settings::default(),
                access: Access::default(),
                base: None,
                default_ref,
                has_branches,
                has_settings: false,
            });
        };
        let tree = GitTree::at_commit(repo, commit)?;
        let settings_text = tree.read("capsule.toml")?;
        let has_settings = settings_text.is_some();
        // A broken capsule.toml on the default branch must not lock everyone out:
        // fall back to defaults (the hook refuses pushes that would create one).
        let settings = settings_text
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| Settings::parse(&t).ok())
            .unwrap_or_default();
        let access = tree
            .read("access.toml")?
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| Access::parse(&t).ok())
            .unwrap_or_default();
        Ok(ArchiveState {
            settings,
            access,
            base: Some(commit),
            default_ref,
            has_branches,
            has_settings,
        })
    }
}

/// Checks a whole push. `Err` means the hook could not decide: the caller must reject.
///
/// `pusher` is who the server says is pushing (see [`crate::access::pusher_from_env`]).
pub fn check_push(
    repo: &Repository,
    state: &ArchiveState,
    updates: &[RefUpdate],
    pusher: Option<String>,
) -> Result<PushReport, HookError> {
    let mut report = PushReport {
        pusher: pusher.clone(),
        ..PushReport::default()
    };
    // The repository as it was before the push: objects it already held were checked
    // when they arrived (libgit2 ignores git's quarantine variables, so a plain open
    // sees only them).
    let before = Repository::open_bare(repo.path()).ok();
    let judge = rules::Judge {
        repo,
        state,
        pusher: pusher.as_deref(),
        before: before.as_ref(),
        updates,
        parsed: Default::default(),
        changes: ChangeMemo::default(),
    };
    if let Some(problem) = judge.check_identity(&state.settings.identity.env) {
        report.problems.push(problem);
        return Ok(report);
    }
    let mut registry = SchemaRegistry::with_validation(state.settings.validation);

    let new_commits = commits_new_to_repository(repo, updates)?;
    report.commits = new_commits.len();

    // Trees whose schema files count as published: the default branch and each
    // updated ref's old tip.
    let mut published_trees = Vec::new();
    if let Some(base) = state.base {
        published_trees.push(repo.find_commit(base)?.tree()?);
    }
    for update in updates.iter().filter(|u| !u.is_create()) {
        if let Ok(commit) = repo.find_commit(update.old) {
            published_trees.push(commit.tree()?);
        }
    }
    let schema_is_published = |path: &str, blob: Oid| -> bool {
        published_trees.iter().any(|tree| {
            tree.get_path(std::path::Path::new(path))
                .is_ok_and(|entry| entry.id() == blob)
        })
    };

    let schema_existed = |path: &str, blob: Oid| -> bool {
        published_trees.iter().any(|tree| {
            tree.get_path(std::path::Path::new(path))
                .is_ok_and(|entry| entry.id() != blob)
        })
    };

    // Every file is bounded before anything reads it: a first pass looks only at the
    // sizes in the object headers of every file the push adds, and a push with a file
    // over the limit is refused on that alone (a 50 MB deposit.json used to be parsed,
    // and take gigabytes, before it was refused).
    for &commit_id in &new_commits {
        let oversized = oversized_files(
            repo,
            &judge.changes,
            commit_id,
            state.settings.policy.max_file_bytes,
        )?;
        if !oversized.is_empty() {
            report.bad_commits += 1;
            let label = short(commit_id);
            report
                .problems
                .extend(oversized.into_iter().map(|p| p.in_commit(label.clone())));
        }
    }
    if !report.problems.is_empty() {
        return Ok(report);
    }

    for &commit_id in &new_commits {
        let before = report.problems.len();
        check_commit(
            repo,
            &judge.changes,
            commit_id,
            state,
            &mut registry,
            &PublishedSchemas {
                is_published: &schema_is_published,
                existed_otherwise: &schema_existed,
            },
            &mut report,
        )?;
        if report.problems.len() > before {
            report.bad_commits += 1;
        }
    }
    for update in updates {
        let mut found = judge.check_update(update, updates, &mut registry)?;
        if found.is_empty() && update.is_create() {
            if let Some(Ok(record)) = crate::record::parse_record_ref(&update.name) {
                report
                    .records
                    .push(format!("records/{}/v{}", record.id, record.version));
            }
        }
        report.problems.append(&mut found);
    }
    Ok(report)
}

/// One file that differs between two trees.
struct Change {
    status: Delta,
    path: Vec<u8>,
    /// The new blob, or the old one for a deletion.
    id: Oid,
    old_id: Oid,
    mode: FileMode,
    /// Set when the new tree at `path` is not canonical: what is wrong and how to fix
    /// it. Nothing below such a tree is read.
    refused: Option<String>,
}

/// The changes between pairs of trees, each pair walked once per push: the size check,
/// the commit's own checks and the pusher's rights ask for the same pairs, and at a
/// million deposits each walk checks a shard tree of ~3,900 entries.
#[derive(Default)]
struct ChangeMemo(RefCell<HashMap<TreePair, Rc<[Change]>>>);

/// An old tree (none for a root commit) and a new one.
type TreePair = (Option<Oid>, Oid);

impl ChangeMemo {
    /// [`changes_between_trees`], remembered.
    fn between(
        &self,
        repo: &Repository,
        old: Option<Oid>,
        new: Oid,
    ) -> Result<Rc<[Change]>, git2::Error> {
        if let Some(found) = self.0.borrow().get(&(old, new)) {
            return Ok(found.clone());
        }
        let changes: Rc<[Change]> = changes_between_trees(repo, old, new)?.into();
        self.0.borrow_mut().insert((old, new), changes.clone());
        Ok(changes)
    }

    /// [`changes_between_trees`] of two trees, remembered.
    fn of_trees(
        &self,
        repo: &Repository,
        old: Option<&Tree<'_>>,
        new: &Tree<'_>,
    ) -> Result<Rc<[Change]>, git2::Error> {
        self.between(repo, old.map(Tree::id), new.id())
    }
}

/// The files that differ between `old` and `new`.
///
/// Subtrees with equal ids are skipped without being read, and the two entry lists of
/// a folder on a changed path are merge-joined straight from the tree objects' bytes
/// (ids only: no content is read or hashed, no entry is copied unless it differs). With
/// deposits fanned out into 256 shards, a push that changes one deposit reads the root,
/// `deposits/`, one shard and the deposit's folder on each side, all small, whatever
/// the archive's size (figures in BENCHMARKS.md).
///
/// Changes come out in the order of their names' bytes at each level, a folder's
/// changes before a file of the same name that it replaces.
///
/// By tree ids: a caller must not parse a tree before this has found it canonical.
fn changes_between_trees(
    repo: &Repository,
    old: Option<Oid>,
    new: Oid,
) -> Result<Vec<Change>, git2::Error> {
    let odb = repo.odb()?;
    let mut out = Vec::new();
    walk_tree_changes(&odb, b"", old, Some(new), &mut out)?;
    Ok(out)
}

/// Every new tree on a changed path is checked with [`check_canonical_tree`] before it
/// is read (so are all the trees of an added folder, whose old side is absent); a tree
/// that fails becomes one refused change naming the entry, and nothing below it is
/// read. An old tree comes from the repository, where the hook already judged it, but
/// one that predates the check and is not even well-formed and sorted (a name listed
/// twice) is read as if absent: everything in the new folder is then judged as added,
/// and deletions from it go unseen.
fn walk_tree_changes(
    odb: &git2::Odb<'_>,
    prefix: &[u8],
    old: Option<Oid>,
    new: Option<Oid>,
    out: &mut Vec<Change>,
) -> Result<(), git2::Error> {
    let old = old.map(|id| read_tree(odb, id)).transpose()?;
    let new = new.map(|id| read_tree(odb, id)).transpose()?;
    fn bytes<'b>(tree: &'b Option<git2::OdbObject<'_>>) -> &'b [u8] {
        tree.as_ref().map_or(&[], git2::OdbObject::data)
    }
    if let Err(defect) = check_canonical_tree(bytes(&new)) {
        out.push(Change {
            status: Delta::Added,
            path: defect.path(prefix),
            id: new.as_ref().map_or(Oid::zero(), git2::OdbObject::id),
            old_id: Oid::zero(),
            mode: FileMode::Tree,
            refused: Some(defect.to_string()),
        });
        return Ok(());
    }
    let old_bytes = match check_tree_structure(bytes(&old)) {
        Ok(()) => bytes(&old),
        Err(_) => &[],
    };
    let differing = differing_entries(old_bytes, bytes(&new))?;
    for (name, was, now) in differing {
        let path = join_path(prefix, name);
        let subtree = |entry: Option<RawEntry<'_>>| entry.filter(RawEntry::is_tree).map(|e| e.id);
        let (old_sub, new_sub) = (subtree(was), subtree(now));
        if old_sub.is_some() || new_sub.is_some() {
            walk_tree_changes(odb, &path, old_sub, new_sub, out)?;
        }
        let old_file = was.filter(|e| !e.is_tree());
        let new_file = now.filter(|e| !e.is_tree());
        let (status, id, old_id, mode) = match (old_file, new_file) {
            (None, Some(n)) => (Delta::Added, n.id, Oid::zero(), n.file_mode()),
            (Some(w), None) => (Delta::Deleted, w.id, w.id, w.file_mode()),
            (Some(w), Some(n)) => (Delta::Modified, n.id, w.id, n.file_mode()),
            (None, None) => continue,
        };
        out.push(Change {
            status,
            path,
            id,
            old_id,
            mode,
            refused: None,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tree_change_tests {
    use super::*;
    use git2::TreeBuilder;

    /// A file tree as (path, content, mode) triples, written as git trees.
    fn write_tree(repo: &Repository, files: &[(&str, &str, i32)]) -> Oid {
        fn build(repo: &Repository, files: &[(String, &str, i32)]) -> Oid {
            let mut builder: TreeBuilder<'_> = repo.treebuilder(None).unwrap();
            let mut folders: Vec<String> = Vec::new();
            for (path, content, mode) in files {
                match path.split_once('/') {
                    Some((folder, _)) => {
                        if !folders.iter().any(|f| f == folder) {
                            folders.push(folder.to_string());
                        }
                    }
                    None => {
                        let blob = repo.blob(content.as_bytes()).unwrap();
                        builder.insert(path, blob, *mode).unwrap();
                    }
                }
            }
            for folder in folders {
                let inner: Vec<(String, &str, i32)> = files
                    .iter()
                    .filter_map(|(p, c, m)| {
                        p.strip_prefix(&format!("{folder}/"))
                            .map(|rest| (rest.to_string(), *c, *m))
                    })
                    .collect();
                let id = build(repo, &inner);
                builder.insert(&folder, id, 0o040000).unwrap();
            }
            builder.write().unwrap()
        }
        let owned: Vec<(String, &str, i32)> = files
            .iter()
            .map(|(p, c, m)| (p.to_string(), *c, *m))
            .collect();
        build(repo, &owned)
    }

    fn changes(old: &[(&str, &str, i32)], new: &[(&str, &str, i32)]) -> Vec<(Delta, String, i32)> {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let old = repo.find_tree(write_tree(&repo, old)).unwrap();
        let new = repo.find_tree(write_tree(&repo, new)).unwrap();
        let ours: Vec<(Delta, String, i32)> =
            changes_between_trees(&repo, Some(old.id()), new.id())
                .unwrap()
                .into_iter()
                .map(|c| {
                    (
                        c.status,
                        String::from_utf8(c.path).unwrap(),
                        i32::from(c.mode),
                    )
                })
                .collect();
        // The same set of changes as libgit2's own diff.
        let diff = repo
            .diff_tree_to_tree(Some(&old), Some(&new), None)
            .unwrap();
        let mut theirs: Vec<(Delta, String, i32)> = diff
            .deltas()
            .map(|d| {
                let file = if d.status() == Delta::Deleted {
                    d.old_file()
                } else {
                    d.new_file()
                };
                let path = file.path().unwrap().to_str().unwrap().to_string();
                (d.status(), path, i32::from(file.mode()))
            })
            .collect();
        let mut sorted = ours.clone();
        sorted.sort_by(|a, b| {
            a.1.cmp(&b.1)
                .then(format!("{:?}", a.0).cmp(&format!("{:?}", b.0)))
        });
        theirs.sort_by(|a, b| {
            a.1.cmp(&b.1)
                .then(format!("{:?}", a.0).cmp(&format!("{:?}", b.0)))
        });
        assert_eq!(sorted, theirs);
        ours
    }

    const F: i32 = 0o100644;

    #[test]
    fn only_changed_entries_of_a_large_folder_are_reported() {
        let names: Vec<String> = (0..500)
            .map(|i| format!("deposits/ana-{i:04}/deposit.json"))
            .collect();
        let old: Vec<(&str, &str, i32)> = names.iter().map(|n| (n.as_str(), "{}", F)).collect();
        let mut new = old.clone();
        new[17].1 = "{\"changed\": true}";
        new.remove(300);
        new.push(("deposits/zz-new/deposit.json", "{}", F));
        new.push(("deposits/ana-0042/notes.txt", "notes", F));
        assert_eq!(
            changes(&old, &new),
            [
                (
                    Delta::Modified,
                    "deposits/ana-0017/deposit.json".to_string(),
                    F
                ),
                (Delta::Added, "deposits/ana-0042/notes.txt".to_string(), F),
                (
                    Delta::Deleted,
                    "deposits/ana-0300/deposit.json".to_string(),
                    F
                ),
                (Delta::Added, "deposits/zz-new/deposit.json".to_string(), F),
            ]
        );
        assert!(changes(&old, &old).is_empty());
    }

    #[test]
    fn a_file_replaced_by_a_folder_sorts_by_name_bytes() {
        // Git orders the folder `a` after `a.txt` (as `a/`), the file `a` before it.
        let old = [("a", "file", F), ("a.txt", "x", F), ("b", "b", F)];
        let new = [
            ("a/inner", "file", F),
            ("a.txt", "x", F),
            ("b", "b", 0o100755),
        ];
        assert_eq!(
            changes(&old, &new),
            [
                (Delta::Added, "a/inner".to_string(), F),
                (Delta::Deleted, "a".to_string(), F),
                (Delta::Modified, "b".to_string(), 0o100755),
            ]
        );
        assert_eq!(
            changes(&new, &old),
            [
                (Delta::Deleted, "a/inner".to_string(), F),
                (Delta::Added, "a".to_string(), F),
                (Delta::Modified, "b".to_string(), F),
            ]
        );
    }

    #[test]
    fn malformed_tree_objects_are_errors() {
        for bytes in [
            &b"100644"[..],
            b"10x644 a\0",
            b"100644 \0",
            b"100644 a\0short",
        ] {
            let mut data = bytes;
            assert!(RawEntry::parse(&mut data).is_err(), "{bytes:?}");
        }
    }
}

/// The settings files may exceed `policy.max_file_bytes` (so that a limit set too low
/// can always be raised again), but never this.
const MAX_SETTINGS_BYTES: u64 = 1 << 20;

/// The files `commit` adds or changes that are larger than the archive allows, found
/// from the object headers alone (no file content is read).
fn oversized_files(
    repo: &Repository,
    memo: &ChangeMemo,
    commit: Oid,
    max: u64,
) -> Result<Vec<Problem>, HookError> {
    let commit = repo.find_commit(commit)?;
    let parent_tree = commit.parent(0).ok().map(|parent| parent.tree_id());
    let odb = repo.odb()?;
    let mut problems = Vec::new();
    for change in memo.between(repo, parent_tree, commit.tree_id())?.iter() {
        // A tree that is not canonical is reported by check_commit, on its own.
        if change.refused.is_some()
            || change.status == Delta::Deleted
            || change.mode == FileMode::Commit
        {
            continue;
        }
        let (size, _) = odb.read_header(change.id)?;
        let path = String::from_utf8_lossy(&change.path).into_owned();
        let (limit, setting) = match path.as_str() {
            "capsule.toml" | "access.toml" => {
                (MAX_SETTINGS_BYTES, "capsule's limit for settings files")
            }
            _ => (max, "policy.max_file_bytes"),
        };
        if size as u64 > limit {
            problems.push(Problem::file(
                &path,
                format!(
                    "the file is {size} bytes; the archive's limit is {limit} bytes ({setting}): store large files with Git LFS"
                ),
            ));
        }
    }
    Ok(problems)
}

/// What the state before the push says about schema files.
struct PublishedSchemas<'a> {
    /// The path holds exactly this blob before the push.
    is_published: &'a dyn Fn(&str, Oid) -> bool,
    /// The path holds a different blob before the push.
    existed_otherwise: &'a dyn Fn(&str, Oid) -> bool,
}

/// The commits of the push that no existing ref already reaches, oldest first.
pub fn commits_new_to_repository(
    repo: &Repository,
    updates: &[RefUpdate],
) -> Result<Vec<Oid>, HookError> {
    let mut walk = repo.revwalk()?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::REVERSE)?;
    let mut any = false;
    for update in updates.iter().filter(|u| !u.is_delete()) {
        // Tags may point at tag objects; walk the commit they name.
        let object = repo.find_object(update.new, None)?;
        if let Ok(commit) = object.peel_to_commit() {
            walk.push(commit.id())?;
            any = true;
        }
    }
    if !any {
        return Ok(Vec::new());
    }
    // A new branch is not "all files changed": everything reachable from what the
    // repository already has was checked when it arrived.
    for reference in repo.references()? {
        let reference = reference?;
        if let Ok(commit) = reference.peel_to_commit() {
            walk.hide(commit.id())?;
        }
    }
    walk.map(|r| r.map_err(HookError::from)).collect()
}

fn check_commit(
    repo: &Repository,
    memo: &ChangeMemo,
    commit_id: Oid,
    state: &ArchiveState,
    registry: &mut SchemaRegistry,
    published: &PublishedSchemas<'_>,
    report: &mut PushReport,
) -> Result<(), HookError> {
    let schema_is_published = published.is_published;
    let schema_existed = published.existed_otherwise;
    let commit = repo.find_commit(commit_id)?;
    // Tree ids only: no tree is parsed (by libgit2 or anything else) before
    // `changes_between_trees` has found it canonical.
    let parent_tree = commit.parent(0).ok().map(|parent| parent.tree_id());
    let changes = memo.between(repo, parent_tree, commit.tree_id())?;
    let label = short(commit_id);
    // A commit with a tree that is not canonical is judged on that alone: what the
    // rest of the checks would read there is not what git checks out.
    let refused: Vec<Problem> = changes
        .iter()
        .filter_map(|change| {
            let why = change.refused.as_ref()?;
            Some(Problem::file(display_name(&change.path), why).in_commit(label.clone()))
        })
        .collect();
    if !refused.is_empty() {
        report.problems.extend(refused);
        return Ok(());
    }
    let source = GitTree::at_commit(repo, commit_id)?;

    let mut deposits = Vec::new();
    let mut problems = Vec::new();
    let mut schemas = Vec::new();
    let mut deleted_schemas = Vec::new();
    let mut deleted_templates = Vec::new();
    let mut orphans_checked = HashSet::new();
    let mut bundles = Vec::new();

    for change in changes.iter() {
        let status = change.status;
        let Ok(path) = String::from_utf8(change.path.clone()) else {
            problems.push(Problem::file(
                display_name(&change.path),
                "the file name is not valid UTF-8; rename it",
            ));
            continue;
        };
        let blob = change.id;
        if status != Delta::Deleted {
            // `changes_between_trees` already refused every mode but 100644, 100755 and 40000
            // (symbolic links, submodules); this only guards that promise.
            if !matches!(change.mode, FileMode::Blob | FileMode::BlobExecutable) {
                problems.push(Problem::file(
                    &path,
                    "only files and folders can be in an archive (no symbolic links or submodules); commit the file itself",
                ));
                continue;
            }
        }
        if let PathKind::DepositFile { id, rest } = classify(&path) {
            if status != Delta::Deleted && rest.ends_with(".bundle") {
                bundles.push((path.clone(), blob, id, rest));
            }
        }
        // A deposit that starts recording a bundle, or another commit for one, has
        // that bundle checked again.
        if let PathKind::DepositJson { id } = classify(&path) {
            if status != Delta::Deleted {
                let records = |oid: Oid| {
                    repo.find_blob(oid)
                        .ok()
                        .and_then(|b| crate::json::from_bytes(b.content()).ok())
                        .map(|d| crate::capture::bundle_records(&d))
                        .unwrap_or_default()
                };
                let before = if status == Delta::Added {
                    Vec::new()
                } else {
                    records(change.old_id)
                };
                for (file, _) in records(blob).into_iter().filter(|r| !before.contains(r)) {
                    let bundle_path = crate::deposit::file_path(&id, &file);
                    match source.blob_id(&bundle_path)? {
                        Some(bundle_blob) => bundles.push((bundle_path, bundle_blob, id.clone(), file)),
                        None => problems.push(Problem::file(&path, format!("the deposit records the bundle {file}, but {bundle_path} is not in this commit: add the bundle, or remove `bundle`"))),
                    }
                }
            }
        }
        match classify(&path) {
            PathKind::DepositJson { .. } if status != Delta::Deleted => deposits.push((path, blob)),
            PathKind::DepositFile { id, .. }
                if status != Delta::Deleted && orphans_checked.insert(id.clone()) =>
            {
                let metadata = crate::deposit::metadata_path(&id);
                if source.blob_id(&metadata)?.is_none() {
                    problems.push(Problem::file(
                        &path,
                        format!(
                            "{}/ has files but no deposit.json: add its metadata in {metadata}",
                            crate::deposit::folder(&id)
                        ),
                    ));
                }
            }
            // Deleting the metadata of a deposit that keeps other files orphans them.
            PathKind::DepositJson { id }
                if !source.list(&crate::deposit::folder(&id))?.is_empty() =>
            {
                problems.push(Problem::file(
                    &path,
                    format!("deposit.json was deleted but {}/ still has files: delete the whole folder, or keep its metadata", crate::deposit::folder(&id)),
                ));
            }
            PathKind::Schema(sref) => match status {
                Delta::Added => {
                    if schema_existed(&path, blob) {
                        problems.push(Problem::file(
                            &path,
                            format!("schema {sref} was published with other content and can never change: give the new content a new version number"),
                        ));
                    } else {
                        schemas.push(sref);
                    }
                }
                Delta::Deleted => {
                    if schema_is_published(&path, blob) {
                        deleted_schemas.push(sref);
                    }
                }
                _ => {
                    let old = change.old_id;
                    if schema_is_published(&path, old) {
                        problems.push(Problem::file(
                            &path,
                            format!(
                                "schema {sref} is published and can never change: put the change in a new version file (for example schemas/{}/<next version>.json) and move deposits to it",
                                sref.name
                            ),
                        ));
                    } else {
                        schemas.push(sref);
                    }
                }
            },
            PathKind::Review { .. } if status != Delta::Deleted => {
                let bytes = repo.find_blob(blob)?.content().to_vec();
                if let Err(mut p) = crate::record::Review::parse(&path, &bytes) {
                    problems.append(&mut p);
                }
            }
            PathKind::Settings if status != Delta::Deleted => {
                let bytes = repo.find_blob(blob)?.content().to_vec();
                let text = String::from_utf8_lossy(&bytes);
                if let Err(e) = Settings::parse(&text) {
                    problems.push(e.into_problem());
                }
            }
            PathKind::Access if status != Delta::Deleted => {
                let bytes = repo.find_blob(blob)?.content().to_vec();
                let text = String::from_utf8_lossy(&bytes);
                if let Err(e) = Access::parse(&text) {
                    problems.push(e.into_problem());
                }
            }
            PathKind::Template(name) if name.starts_with("mail/") => {
                if status == Delta::Deleted {
                    deleted_templates.push(path);
                } else {
                    let bytes = repo.find_blob(blob)?.content().to_vec();
                    problems.extend(crate::mail::check_template_file(&path, &bytes));
                }
            }
            PathKind::Misplaced(why) if status != Delta::Deleted => {
                problems.push(Problem::file(&path, why))
            }
            _ => {}
        }
    }

    for sref in &schemas {
        report.schemas_checked += 1;
        match registry.compile(&source, sref) {
            Ok(Some(compiled)) => {
                // Compile both ways now, so a schema that cannot be used is refused
                // when it is pushed, not when the first deposit needs it.
                for mode in [Mode::Draft, Mode::Publish] {
                    if let Err(p) = compiled.validator(mode) {
                        problems.extend(p.iter().cloned());
                        break;
                    }
                }
                // Its notification config too: CAP accepted broken ones and then
                // silently sent nothing.
                let limits = crate::mail::render::Limits::from_policy(&state.settings.policy);
                let mail = crate::mail::check_schema_within(&compiled.root, &source, limits)?;
                problems.extend(mail.problems);
                report
                    .warnings
                    .extend(mail.warnings.iter().map(|w| format!("{label} {w}")));
            }
            Ok(None) => {}
            Err(LoadError::Invalid(mut p)) => problems.append(&mut p),
            Err(LoadError::Io(path, e)) => {
                return Err(HookError::Io(std::io::Error::other(format!("{path}: {e}"))))
            }
        }
    }

    // Captured software must be usable: the bundle opens, its objects are intact, and
    // it holds the commit the deposit records for it.
    bundles.sort();
    bundles.dedup();
    for (path, blob, id, rest) in bundles {
        let deposit = source
            .read(&crate::deposit::metadata_path(&id))?
            .and_then(|b| crate::json::from_bytes(&b).ok());
        let commit = deposit.and_then(|d| crate::capture::recorded_commit(&d, &rest));
        let bytes = repo.find_blob(blob)?.content().to_vec();
        if let Err(why) = crate::capture::verify_bundle(&bytes, commit.as_deref()) {
            problems.push(Problem::file(&path, why));
        }
    }

    problems.extend(crate::mail::check_deleted_templates(
        &source,
        &deleted_templates,
    )?);
    if !deleted_schemas.is_empty() {
        problems.extend(check_schema_deletions(&source, &deleted_schemas)?);
    }

    let mut prepared = Vec::new();
    for (path, blob) in deposits {
        report.deposits_checked += 1;
        let bytes = repo.find_blob(blob)?.content().to_vec();
        match parse_deposit(&path, &bytes).and_then(|d| prepare(registry, &source, d)) {
            Ok(p) => prepared.push(p),
            Err(mut p) => problems.append(&mut p),
        }
    }
    // Schema problems, CAP's uniqueness rule against this commit's whole tree, and
    // the warnings of CAP's engine (formats), all from validate.
    let checked = check_deposits(&prepared, Mode::Draft, &source)?;
    problems.extend(checked.problems);
    report
        .warnings
        .extend(checked.warnings.iter().map(|w| format!("{label} {w}")));

    report
        .problems
        .extend(problems.into_iter().map(|p| p.in_commit(label.clone())));
    Ok(())
}

/// Deleting a published schema version is refused while any deposit still names it.
/// This reads every deposit's `$schema`, but only for the rare push that deletes one.
fn check_schema_deletions(
    source: &GitTree<'_>,
    deleted: &[SchemaRef],
) -> Result<Vec<Problem>, HookError> {
    let wanted: HashSet<&SchemaRef> = deleted.iter().collect();
    let mut users: Vec<(SchemaRef, String)> = Vec::new();
    for id in crate::archive::deposit_ids(source)? {
        let path = crate::deposit::metadata_path(&id);
        let Some(bytes) = GitTree::read(source, &path)? else {
            continue;
        };
        let Ok(value) = crate::json::from_bytes(&bytes) else {
            continue;
        };
        if let Some(sref) = value
            .get("$schema")
            .and_then(|s| s.as_str())
            .and_then(crate::deposit::parse_schema_ref)
        {
            if wanted.contains(&sref) {
                users.push((sref, id));
            }
        }
    }
    Ok(deleted
        .iter()
        .map(|sref| {
            let used: Vec<&str> = users.iter().filter(|(s, _)| s == sref).map(|(_, id)| id.as_str()).collect();
            let message = if used.is_empty() {
                // Records and old versions of deposits still name it, and a deleted
                // version could later come back with other content.
                format!("schema {sref} is published and cannot be deleted: published versions stay so that every version of every deposit keeps its schema")
            } else {
                format!(
                    "schema {sref} cannot be deleted: {} deposit(s) use it ({}{}); move them to another version first",
                    used.len(),
                    used.iter().take(5).copied().collect::<Vec<_>>().join(", "),
                    if used.len() > 5 { ", …" } else { "" }
                )
            };
            Problem::file(sref.path(), message)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hook_input() {
        let zero = "0".repeat(40);
        let one = "1".repeat(40);
        let input = format!("{zero} {one} refs/heads/main\n\n{one} {zero} refs/heads/old\n");
        let updates = parse_ref_updates(&input).unwrap();
        assert_eq!(updates.len(), 2);
        assert!(updates[0].is_create());
        assert!(updates[1].is_delete());
        assert!(parse_ref_updates("garbage\n").is_err());
        assert!(parse_ref_updates(&format!("{zero} {one}\n")).is_err());
    }
}
