//! Records: published, immutable versions of a deposit, kept as annotated git tags.
//!
//! Publishing version N of deposit `ID` is the tag `refs/tags/records/ID/vN`, pointing
//! (through an annotated tag object that carries who published and why) at the commit
//! that holds the deposit as published. Versions count from 1 without gaps, and a record
//! tag is never moved or deleted: the hook enforces both. This module only reads and
//! names records; it never writes refs itself except through [`create_record_tag`].
//!
//! Reviews live here too: append-only JSON files under `deposits/<id>/reviews/`, one
//! per review, comment or resolution, so that history is the review thread.

use std::collections::BTreeMap;

use git2::{Oid, Repository};
use serde::Serialize;
use serde_json::Value;

use crate::deposit::check_id;
use crate::problem::Problem;

/// The namespace every record tag lives in.
pub const RECORD_TAG_PREFIX: &str = "refs/tags/records/";

/// One record version: which deposit, which version number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordVersion<'a> {
    pub id: &'a str,
    pub version: u32,
}

/// Parses a full ref name `refs/tags/records/<id>/v<N>`.
///
/// Returns `None` for refs outside the namespace; `Some(Err)` for refs inside it that do
/// not follow the shape, with the reason (the hook refuses those).
pub fn parse_record_ref(refname: &str) -> Option<Result<RecordVersion<'_>, String>> {
    let rest = refname.strip_prefix(RECORD_TAG_PREFIX)?;
    Some(parse_record_name(rest))
}

/// Parses `<id>/v<N>` (the part after `refs/tags/records/`).
pub fn parse_record_name(rest: &str) -> Result<RecordVersion<'_>, String> {
    let Some((id, version)) = rest.split_once('/') else {
        return Err(format!(
            "record tags are named records/<id>/v<N>; `records/{rest}` has no version"
        ));
    };
    check_id(id).map_err(|e| format!("record tag records/{rest}: {e}"))?;
    let number = version
        .strip_prefix('v')
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && !n.starts_with('0'))
        .and_then(|n| n.parse::<u32>().ok())
        .ok_or_else(|| {
            format!("record tag records/{rest}: `{version}` is not a version; use v1, v2, v3, ...")
        })?;
    Ok(RecordVersion {
        id,
        version: number,
    })
}

/// The full ref name of a record version.
pub fn record_ref(id: &str, version: u32) -> String {
    format!("{RECORD_TAG_PREFIX}{id}/v{version}")
}

/// A record version as found in a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordTag {
    pub id: String,
    pub version: u32,
    /// The commit the tag points at (peeled).
    pub commit: Oid,
    /// The tag object itself, when the tag is annotated.
    pub tag: Option<Oid>,
}

/// Every record version in the repository, grouped by deposit id and sorted by version.
///
/// Malformed refs inside the namespace are skipped: the hook never lets them in, and a
/// reader must not fail because someone created one by hand on the server.
pub fn list_records(repo: &Repository) -> Result<BTreeMap<String, Vec<RecordTag>>, git2::Error> {
    let mut found = Vec::new();
    for reference in repo.references_glob("refs/tags/records/*")? {
        let reference = reference?;
        let Some(name) = reference.name() else {
            continue;
        };
        let Some(Ok(parsed)) = parse_record_ref(name) else {
            continue;
        };
        let target = match reference.target() {
            Some(target) => target,
            None => continue,
        };
        // A packed annotated tag carries its peeled commit (packed-refs' `^` line):
        // reading 10k tag objects was a tenth of a site rebuild.
        let (tag, commit) = match reference.target_peel() {
            Some(peeled) => (Some(target), peeled),
            None => (
                repo.find_tag(target).ok().map(|t| t.id()),
                reference.peel_to_commit()?.id(),
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

/// Record versions grouped by deposit id, each deposit's sorted by version.
pub(crate) fn group_by_deposit(
    tags: impl IntoIterator<Item = RecordTag>,
) -> BTreeMap<String, Vec<RecordTag>> {
    let mut records: BTreeMap<String, Vec<RecordTag>> = BTreeMap::new();
    for tag in tags {
        records.entry(tag.id.clone()).or_default().push(tag);
    }
    for versions in records.values_mut() {
        versions.sort_by_key(|r| r.version);
    }
    records
}

/// The record versions of one deposit, sorted (empty if never published).
pub fn versions_of(repo: &Repository, id: &str) -> Result<Vec<RecordTag>, git2::Error> {
    let mut versions = Vec::new();
    for reference in repo.references_glob(&format!("{RECORD_TAG_PREFIX}{id}/v*"))? {
        let reference = reference?;
        let Some(Some(Ok(parsed))) = reference.name().map(parse_record_ref) else {
            continue;
        };
        if parsed.id != id {
            continue;
        }
        let tag = reference
            .target()
            .and_then(|t| repo.find_tag(t).ok())
            .map(|t| t.id());
        versions.push(RecordTag {
            id: id.to_string(),
            version: parsed.version,
            commit: reference.peel_to_commit()?.id(),
            tag,
        });
    }
    versions.sort_by_key(|r| r.version);
    Ok(versions)
}

/// Creates the annotated tag of record version `version` of `id` on `commit`.
///
/// Fails if the tag exists: records are never moved.
pub fn create_record_tag(
    repo: &Repository,
    id: &str,
    version: u32,
    commit: Oid,
    tagger: &git2::Signature<'_>,
    message: &str,
) -> Result<Oid, git2::Error> {
    let object = repo.find_object(commit, Some(git2::ObjectType::Commit))?;
    let name = format!("records/{id}/v{version}");
    repo.tag(&name, &object, tagger, message, false)
}

/// What a review file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewKind {
    /// A review with a verdict.
    Review,
    /// A comment on a review.
    Comment,
    /// Marks a review as resolved.
    Resolution,
}

impl ReviewKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewKind::Review => "review",
            ReviewKind::Comment => "comment",
            ReviewKind::Resolution => "resolution",
        }
    }
}

/// The verdicts a review can carry (CAP's review types).
pub const REVIEW_TYPES: [&str; 3] = ["approved", "request_changes", "declined"];

/// One review file, as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Review {
    pub kind: ReviewKind,
    /// The verdict, for a review.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    pub body: String,
    pub author: String,
    pub created: String,
    /// The review a comment or resolution belongs to (its file name without `.json`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review: Option<String>,
    /// Internal reviews never appear on a public site.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub internal: bool,
}

impl Review {
    /// Parses and checks a review file; every problem has its pointer.
    pub fn parse(path: &str, bytes: &[u8]) -> Result<Review, Vec<Problem>> {
        let (text, value) = crate::json::parse(path, bytes)?;
        let at = |pointer: &str, message: String| Problem::at(path, &text, pointer, message);
        let Value::Object(map) = &value else {
            return Err(vec![at("", "a review must be a JSON object".into())]);
        };
        let mut problems = Vec::new();
        let string = |key: &str, problems: &mut Vec<Problem>, required: bool| -> Option<String> {
            match map.get(key) {
                Some(Value::String(s)) => Some(s.clone()),
                None if !required => None,
                None => {
                    problems.push(at("", format!("the review has no `{key}`")));
                    None
                }
                Some(_) => {
                    problems.push(at(&format!("/{key}"), format!("`{key}` must be a string")));
                    None
                }
            }
        };
        let kind = match string("kind", &mut problems, true).as_deref() {
            Some("review") => Some(ReviewKind::Review),
            Some("comment") => Some(ReviewKind::Comment),
            Some("resolution") => Some(ReviewKind::Resolution),
            Some(other) => {
                problems.push(at(
                    "/kind",
                    format!(
                        "`{other}` is not a kind of review file: use review, comment or resolution"
                    ),
                ));
                None
            }
            None => None,
        };
        let verdict = string("type", &mut problems, kind == Some(ReviewKind::Review));
        if let Some(v) = &verdict {
            if !REVIEW_TYPES.contains(&v.as_str()) {
                problems.push(at(
                    "/type",
                    format!(
                        "`{v}` is not a review type: use approved, request_changes or declined"
                    ),
                ));
            }
        }
        let body =
            string("body", &mut problems, kind != Some(ReviewKind::Resolution)).unwrap_or_default();
        let author = string("author", &mut problems, true).unwrap_or_default();
        let created = string("created", &mut problems, true).unwrap_or_default();
        let review = string(
            "review",
            &mut problems,
            matches!(kind, Some(ReviewKind::Comment | ReviewKind::Resolution)),
        );
        let internal = match map.get("internal") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                problems.push(at("/internal", "`internal` must be true or false".into()));
                false
            }
        };
        for key in map.keys() {
            if ![
                "kind", "type", "body", "author", "created", "review", "internal",
            ]
            .contains(&key.as_str())
            {
                problems.push(at(
                    &format!("/{}", crate::locate::escape_token(key)),
                    format!("unknown key `{key}` in a review file"),
                ));
            }
        }
        match (kind, problems.is_empty()) {
            (Some(kind), true) => Ok(Review {
                kind,
                verdict,
                body,
                author,
                created,
                review,
                internal,
            }),
            _ => Err(problems),
        }
    }

    /// The JSON text stored for this review.
    pub fn to_json(&self) -> String {
        let mut value = serde_json::to_value(self).expect("a review serialises");
        if let Value::Object(map) = &mut value {
            map.insert("kind".into(), Value::String(self.kind.as_str().into()));
        }
        let mut text = serde_json::to_string_pretty(&value).expect("a review serialises");
        text.push('\n');
        text
    }

    /// The file name for this review: sortable by time, unique per author and kind.
    pub fn file_name(&self) -> String {
        let stamp: String = self
            .created
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        format!("{stamp}-{}-{}.json", self.author, self.kind.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reviews_parse_and_round_trip() {
        let review = Review {
            kind: ReviewKind::Review,
            verdict: Some("approved".into()),
            body: "Looks complete.".into(),
            author: "carol".into(),
            created: "2026-11-22T20:00:00Z".into(),
            review: None,
            internal: false,
        };
        let text = review.to_json();
        assert_eq!(Review::parse("r.json", text.as_bytes()).unwrap(), review);
        assert_eq!(review.file_name(), "20261122T200000Z-carol-review.json");

        let bad =
            br#"{"kind": "review", "type": "maybe", "author": "x", "created": "t", "extra": 1}"#;
        let problems = Review::parse("r.json", bad).unwrap_err();
        let messages: Vec<_> = problems
            .iter()
            .map(|p| (p.pointer.as_str(), p.message.as_str()))
            .collect();
        assert!(
            messages
                .iter()
                .any(|(p, m)| *p == "/type" && m.contains("not a review type")),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|(_, m)| m.contains("no `body`")),
            "{messages:?}"
        );
        assert!(messages.iter().any(|(p, _)| *p == "/extra"), "{messages:?}");

        let comment = br#"{"kind": "comment", "body": "why?", "author": "x", "created": "t"}"#;
        let problems = Review::parse("c.json", comment).unwrap_err();
        assert!(problems[0].message.contains("no `review`"), "{problems:?}");
    }

    #[test]
    fn record_refs_parse_and_print() {
        let parsed = parse_record_ref("refs/tags/records/zee/v12")
            .unwrap()
            .unwrap();
        assert_eq!(
            parsed,
            RecordVersion {
                id: "zee",
                version: 12
            }
        );
        assert_eq!(record_ref("zee", 12), "refs/tags/records/zee/v12");
        assert!(parse_record_ref("refs/tags/v1").is_none());
        assert!(parse_record_ref("refs/heads/records/zee/v1").is_none());
    }

    #[test]
    fn malformed_record_refs_say_why() {
        for bad in [
            "refs/tags/records/zee",
            "refs/tags/records/zee/1",
            "refs/tags/records/zee/v0",
            "refs/tags/records/zee/v01",
            "refs/tags/records/zee/vx",
            "refs/tags/records/zee/v1/extra",
            "refs/tags/records/-bad/v1",
        ] {
            let result = parse_record_ref(bad).expect("inside the namespace");
            assert!(result.is_err(), "{bad} should be refused");
        }
    }

    /// Packed annotated tags are read from packed-refs' peeled lines, loose ones by
    /// reading the tag object: both give the same tag and commit.
    #[test]
    fn record_tags_read_the_same_packed_and_loose() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let sig = git2::Signature::now("t", "t@example.org").unwrap();
        let tree = repo.treebuilder(None).unwrap().write().unwrap();
        let tree = repo.find_tree(tree).unwrap();
        let first = repo.commit(None, &sig, &sig, "one", &tree, &[]).unwrap();
        let parent = repo.find_commit(first).unwrap();
        let second = repo
            .commit(None, &sig, &sig, "two", &tree, &[&parent])
            .unwrap();
        for (name, commit) in [("records/a/v1", first), ("records/a/v2", second)] {
            let object = repo.find_object(commit, None).unwrap();
            repo.tag(name, &object, &sig, "publish", false).unwrap();
        }
        // A lightweight tag has no tag object, packed or not.
        let object = repo.find_object(first, None).unwrap();
        repo.tag_lightweight("records/b/v1", &object, false)
            .unwrap();

        let loose = list_records(&repo).unwrap();
        let status = std::process::Command::new("git")
            .args(["pack-refs", "--all"])
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
        assert!(!dir.path().join(".git/refs/tags/records/a/v1").exists());
        let repo = Repository::open(dir.path()).unwrap();
        let packed = list_records(&repo).unwrap();

        let summary = |records: &BTreeMap<String, Vec<RecordTag>>| {
            records
                .values()
                .flatten()
                .map(|r| (r.id.clone(), r.version, r.commit, r.tag))
                .collect::<Vec<_>>()
        };
        assert_eq!(summary(&loose), summary(&packed));
        let a = &packed["a"];
        assert_eq!((a[0].commit, a[1].commit), (first, second));
        assert!(a.iter().all(|r| r.tag.is_some_and(|t| t != r.commit)));
        assert_eq!(packed["b"][0].tag, None);
        assert_eq!(packed["b"][0].commit, first);
    }
}
