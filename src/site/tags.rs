//! The record tags a build starts from, read straight from the refs files when the
//! repository keeps its refs in files: `packed-refs` in one pass, then the few loose
//! refs under `refs/tags/records/`, which take precedence, as in git. At 100k records
//! libgit2's iterator made a reference object per tag behind a glob, a sixth of a
//! rebuild's CPU. Anything this reader does not know (a reftable, a `packed-refs`
//! without peeled tags, a symbolic or unreadable loose ref) is left to libgit2
//! ([`list_records`]); the two give the same answer (see the tests).
//!
//! Tag names are judged by the same parser as everywhere ([`parse_record_ref`]).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use git2::{Oid, Repository};

use crate::record::{
    group_by_deposit, list_records, parse_record_ref, RecordTag, RECORD_TAG_PREFIX,
};

/// Every record version, grouped by deposit id and sorted by version.
pub fn record_tags(repo: &Repository) -> Result<BTreeMap<String, Vec<RecordTag>>, git2::Error> {
    match from_files(repo.commondir()) {
        Some(refs) => resolve(repo, refs),
        None => list_records(repo),
    }
}

/// A ref under `refs/tags/records/`: its name, target, and peeled commit when the
/// refs file names it.
type Ref = (String, Oid, Option<Oid>);

/// The refs under `refs/tags/records/`, loose ones over packed ones; `None` when the
/// files are not what this reader knows.
fn from_files(common: &Path) -> Option<Vec<Ref>> {
    if common.join("reftable").exists() {
        return None;
    }
    let mut loose: HashMap<String, Oid> = HashMap::new();
    let folder = common.join(RECORD_TAG_PREFIX.trim_end_matches('/'));
    if folder.is_dir() {
        loose_refs(&folder, RECORD_TAG_PREFIX.trim_end_matches('/'), &mut loose)?;
    }
    let mut refs: Vec<Ref> = Vec::new();
    match std::fs::read(common.join("packed-refs")) {
        Ok(bytes) => packed_refs(&bytes, &loose, &mut refs)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(_) => return None,
    }
    refs.extend(loose.into_iter().map(|(name, oid)| (name, oid, None)));
    Some(refs)
}

/// The record refs of a `packed-refs` file, but those `loose` overrides. Its header
/// must say tags are peeled: a tag without a `^` line then points at no tag object.
fn packed_refs(bytes: &[u8], loose: &HashMap<String, Oid>, out: &mut Vec<Ref>) -> Option<()> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut lines = text.lines();
    let traits = lines.next()?.strip_prefix("# pack-refs with:")?;
    if !traits
        .split_whitespace()
        .any(|t| t == "peeled" || t == "fully-peeled")
    {
        return None;
    }
    // Whether the last ref line was a record tag kept (its `^` line peels it).
    let mut last_kept = false;
    for line in lines {
        if let Some(peeled) = line.strip_prefix('^') {
            let peeled = Oid::from_str(peeled).ok()?;
            if last_kept {
                out.last_mut()?.2 = Some(peeled);
            }
            continue;
        }
        let (oid, name) = line.split_once(' ')?;
        let oid = Oid::from_str(oid).ok()?;
        last_kept = name.starts_with(RECORD_TAG_PREFIX) && !loose.contains_key(name);
        if last_kept {
            out.push((name.to_string(), oid, None));
        }
    }
    Some(())
}

/// The loose refs under `folder` (named `prefix`), recursively.
fn loose_refs(folder: &Path, prefix: &str, out: &mut HashMap<String, Oid>) -> Option<()> {
    for entry in std::fs::read_dir(folder).ok()? {
        let entry = entry.ok()?;
        let name = entry.file_name().into_string().ok()?;
        let full = format!("{prefix}/{name}");
        let kind = entry.file_type().ok()?;
        if kind.is_dir() {
            loose_refs(&entry.path(), &full, out)?;
        } else if name.ends_with(".lock") {
            // A ref being written: git reads the ref itself, not its lock.
            continue;
        } else {
            let text = std::fs::read_to_string(entry.path()).ok()?;
            out.insert(full, Oid::from_str(text.trim_end()).ok()?);
        }
    }
    Some(())
}

/// The record versions the refs name, as [`list_records`] reads them: malformed names
/// are skipped; a tag without a peeled commit is looked up.
fn resolve(
    repo: &Repository,
    refs: Vec<Ref>,
) -> Result<BTreeMap<String, Vec<RecordTag>>, git2::Error> {
    let mut found = Vec::with_capacity(refs.len());
    for (name, target, peeled) in &refs {
        let Some(Ok(parsed)) = parse_record_ref(name) else {
            continue;
        };
        let (tag, commit) = match peeled {
            Some(peeled) => (Some(*target), *peeled),
            None => (
                repo.find_tag(*target).ok().map(|t| t.id()),
                repo.find_object(*target, None)?.peel_to_commit()?.id(),
            ),
        };
        found.push(RecordTag {
            id: parsed.id.to_string(),
            version: parsed.version,
            commit,
            tag,
        });
    }
    Ok(group_by_deposit(found))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let out = std::process::Command::new("git")
            .current_dir(dir)
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.org")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.org")
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}: {out:?}");
    }

    /// The files reader and libgit2 agree on packed and loose tags, annotated and
    /// lightweight, a loose tag over a packed one of the same name, a deleted one,
    /// and malformed names; and a `packed-refs` without peeled tags is left to libgit2.
    #[test]
    fn the_refs_files_name_the_tags_libgit2_does() {
        let dir = std::env::temp_dir().join(format!("capsule-tags-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        git(&dir, &["init", "-q", "-b", "main"]);
        git(&dir, &["commit", "-q", "--allow-empty", "-m", "one"]);
        for tag in [
            "records/a/v1",
            "records/b/v1",
            "records/c/v1",
            "records/d/v1",
        ] {
            git(&dir, &["tag", "-a", tag, "-m", "publish"]);
        }
        git(&dir, &["tag", "records/e/v1"]);
        git(&dir, &["tag", "records/bad", "HEAD"]);
        git(&dir, &["tag", "records/f/v01", "HEAD"]);
        git(&dir, &["tag", "other", "HEAD"]);
        git(&dir, &["pack-refs", "--all"]);
        git(&dir, &["commit", "-q", "--allow-empty", "-m", "two"]);
        git(&dir, &["tag", "-a", "records/a/v2", "-m", "loose"]);
        git(&dir, &["tag", "records/g/v1"]);
        // A packed tag moved by a loose one, and a packed one deleted.
        git(&dir, &["tag", "-f", "-a", "records/b/v1", "-m", "moved"]);
        git(&dir, &["tag", "-d", "records/c/v1"]);
        let repo = Repository::open(&dir).unwrap();
        let refs = from_files(repo.commondir()).expect("files this reader knows");
        assert!(refs
            .iter()
            .any(|(n, _, p)| n == "refs/tags/records/a/v1" && p.is_some()));
        let files = resolve(&repo, refs).unwrap();
        let libgit2 = list_records(&repo).unwrap();
        assert_eq!(files, libgit2);
        assert_eq!(
            files.keys().map(String::as_str).collect::<Vec<_>>(),
            ["a", "b", "d", "e", "g"]
        );
        assert_eq!(record_tags(&repo).unwrap(), libgit2);
        // Without peeled tags, libgit2 reads them.
        let packed = repo.commondir().join("packed-refs");
        let text = std::fs::read_to_string(&packed).unwrap();
        let first = text.lines().next().unwrap().to_string();
        std::fs::write(
            &packed,
            text.replacen(&first, "# pack-refs with: sorted", 1),
        )
        .unwrap();
        assert!(from_files(repo.commondir()).is_none());
        assert_eq!(record_tags(&repo).unwrap(), libgit2);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
