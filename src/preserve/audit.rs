//! Fixity: is everything the archive promised to keep still exactly what it was?
//!
//! 1. git's own check of every object (`git fsck --full --strict`): each object's
//!    content against its id, every link between objects, the packs' checksums.
//! 2. Every record version: the tag, its commit and the deposit's folder are read
//!    again and every file's content is hashed again against the id its tree
//!    records. A git id is a (collision-detecting) SHA-1 of the content, and the
//!    record tag names the commit, which names the tree: so a changed byte anywhere
//!    below a record tag changes an id that is checked here. Versions published with
//!    `capsule publish` also carry a SHA-256 of their files in the tag message
//!    (`Capsule-Payload-SHA256:`), which is checked too, so fixity does not rest on
//!    SHA-1 alone. A file kept in Git LFS is checked too: its object in the local LFS
//!    store against the SHA-256 and size its pointer records.
//! 3. Every captured bundle a record version holds, against its recorded commit.
//! 4. Bags already written (`--exports`), against their manifests.
//!
//! The audit reads; it never repairs. docs/preservation.md says what to do instead.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use git2::{ObjectType, Oid, Repository};
use serde::Serialize;

use super::bag::sha256_hex;
use crate::capture::{bundle_records, clean_git, verify_bundle};

/// The trailer `capsule publish` adds to a record tag's message.
pub const PAYLOAD_TRAILER: &str = "Capsule-Payload-SHA256:";

/// One thing the audit checked.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked: `git objects`, `records/<id>/v<N>`, a bundle, a bag.
    pub subject: String,
    pub problems: Vec<String>,
}

impl Check {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The audit's result.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.checks.iter().all(Check::is_ok)
    }

    pub fn failures(&self) -> usize {
        self.checks.iter().filter(|c| !c.is_ok()).count()
    }
}

/// SHA-256 over a deposit folder's files: the SHA-256 of the lines
/// `<sha256 of the file>  <path>\n`, sorted by path (a manifest's digest).
pub fn payload_digest(repo: &Repository, folder: Oid) -> Result<String, git2::Error> {
    let mut manifest = String::new();
    for file in super::list_files(repo, folder)? {
        let blob = repo.find_blob(file.blob)?;
        manifest.push_str(&format!("{}  {}\n", sha256_hex(blob.content()), file.path));
    }
    Ok(sha256_hex(manifest.as_bytes()))
}

/// The payload digest a record tag's message carries, if any.
pub fn recorded_digest(message: &str) -> Option<String> {
    message
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix(PAYLOAD_TRAILER))
        .map(|d| d.trim().to_ascii_lowercase())
}

/// A record tag's message as people wrote it: without the digest trailer (what the
/// site shows as the version's note).
pub fn message_without_trailer(message: &str) -> &str {
    match message.rfind(PAYLOAD_TRAILER) {
        Some(at) => message[..at].trim_end(),
        None => message.trim_end(),
    }
}

/// Runs every check. `exports` are bags (folders or zips) or folders holding them.
pub fn audit(repo: &Repository, exports: &[PathBuf]) -> Report {
    let mut checks = vec![fsck(repo.path())];
    match crate::record::list_records(repo) {
        Ok(records) => {
            let mut bundles_seen = HashSet::new();
            for tags in records.values() {
                for tag in tags {
                    let (check, bundles) = check_record(repo, tag);
                    checks.push(check);
                    for (subject, blob, commit) in bundles {
                        if bundles_seen.insert((blob, commit.clone())) {
                            checks.push(check_bundle(repo, subject, blob, commit.as_deref()));
                        }
                    }
                }
            }
        }
        Err(e) => checks.push(Check {
            subject: "record tags".into(),
            problems: vec![format!("cannot list the record tags: {e}")],
        }),
    }
    for dir in exports {
        match super::bag::find_bags(dir) {
            Ok(bags) if bags.is_empty() => checks.push(Check {
                subject: dir.display().to_string(),
                problems: vec!["no bag here (no folder with bagit.txt, no .zip)".into()],
            }),
            Ok(bags) => checks.extend(bags.iter().map(|b| Check {
                subject: format!("bag {}", b.display()),
                problems: super::bag::verify(b),
            })),
            Err(e) => checks.push(Check {
                subject: dir.display().to_string(),
                problems: vec![format!("cannot read it: {e}")],
            }),
        }
    }
    Report { checks }
}

/// `git fsck --full --strict` on the repository at `git_dir`.
fn fsck(git_dir: &Path) -> Check {
    let mut cmd = clean_git();
    cmd.arg("--git-dir").arg(git_dir).args([
        "fsck",
        "--full",
        "--strict",
        "--no-dangling",
        "--no-progress",
    ]);
    let problems = match cmd.output() {
        Err(e) => vec![format!("cannot run git ({e}); is git installed?")],
        Ok(out) if out.status.success() => Vec::new(),
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stderr).into_owned()
                + &String::from_utf8_lossy(&out.stdout);
            let mut lines: Vec<String> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .take(20)
                .map(str::to_string)
                .collect();
            if lines.is_empty() {
                lines.push(format!("git fsck failed ({})", out.status));
            }
            lines
        }
    };
    Check {
        subject: "git objects (git fsck --full --strict)".into(),
        problems,
    }
}

type BundleRef = (String, Oid, Option<String>);

/// Re-reads one record version; returns the check and the bundles it holds.
fn check_record(repo: &Repository, tag: &crate::record::RecordTag) -> (Check, Vec<BundleRef>) {
    let subject = format!("records/{}/v{}", tag.id, tag.version);
    let mut problems = Vec::new();
    let mut bundles = Vec::new();
    let mut work = || -> Result<(), git2::Error> {
        let message = match tag.tag {
            Some(t) => repo.find_tag(t)?.message().unwrap_or("").to_string(),
            None => String::new(),
        };
        let commit = repo.find_commit(tag.commit)?;
        let tree = crate::archive::GitTree::at_commit(repo, commit.id())?;
        let Some(folder) = tree.deposit_folder(&tag.id)? else {
            problems.push(format!(
                "the tagged commit {} holds no folder for deposit {}",
                crate::archive::short(tag.commit),
                tag.id
            ));
            return Ok(());
        };
        let files = super::list_files(repo, folder)?;
        for file in &files {
            let blob = match repo.find_blob(file.blob) {
                Ok(blob) => blob,
                Err(e) => {
                    problems.push(format!("{}: cannot be read: {}", file.path, e.message()));
                    continue;
                }
            };
            let actual = Oid::hash_object(ObjectType::Blob, blob.content())?;
            if actual != file.blob {
                problems.push(format!(
                    "{}: its content hashes to {actual}, not to {} as the record's tree says: the stored object is damaged",
                    file.path, file.blob
                ));
            } else if let Some(pointer) = super::lfs::parse_pointer(blob.content()) {
                // The LFS objects this repository has are checked against their
                // pointers; one it does not have is not damage (`git lfs fetch`).
                match super::lfs::read_object(repo, &pointer) {
                    Ok(_) | Err(super::lfs::LfsError::Missing { .. }) => {}
                    Err(e) => problems.push(format!("{}: {e}", file.path)),
                }
            }
        }
        if let Some(expected) = recorded_digest(&message) {
            if problems.is_empty() {
                let actual = payload_digest(repo, folder)?;
                if actual != expected {
                    problems.push(format!(
                        "the files' SHA-256 manifest digest is {actual}, but the tag recorded {expected} when it was published"
                    ));
                }
            }
        }
        if let Some(deposit) = files
            .iter()
            .find(|f| f.path == "deposit.json")
            .and_then(|f| repo.find_blob(f.blob).ok())
            .and_then(|b| crate::json::from_bytes(b.content()).ok())
        {
            for (path, commit) in bundle_records(&deposit) {
                match files.iter().find(|f| f.path == path) {
                    Some(f) => bundles.push((
                        format!(
                            "bundle {} in {subject}",
                            crate::deposit::file_path(&tag.id, &path)
                        ),
                        f.blob,
                        commit,
                    )),
                    None => problems.push(format!(
                        "the deposit records bundle {path}, which the record does not hold"
                    )),
                }
            }
        }
        Ok(())
    };
    if let Err(e) = work() {
        problems.push(format!("cannot be read: {}", e.message()));
    }
    (Check { subject, problems }, bundles)
}

fn check_bundle(repo: &Repository, subject: String, blob: Oid, commit: Option<&str>) -> Check {
    let problems = match repo.find_blob(blob) {
        Ok(b) => verify_bundle(b.content(), commit)
            .err()
            .into_iter()
            .collect(),
        Err(e) => vec![format!("cannot be read: {}", e.message())],
    };
    Check { subject, problems }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailers_are_found() {
        let m = "Publish zee v1\n\nCapsule-Payload-SHA256: ABC\n";
        assert_eq!(recorded_digest(m).as_deref(), Some("abc"));
        assert_eq!(recorded_digest("Publish zee v1"), None);
        assert_eq!(message_without_trailer(m), "Publish zee v1");
        assert_eq!(message_without_trailer("Why\n"), "Why");
    }
}
