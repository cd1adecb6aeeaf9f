//! Records: published, immutable versions of a deposit, kept as annotated git tags.
//!
//! Publishing version N of deposit `ID` is the tag `refs/tags/records/ID/vN`, pointing
//! (through an annotated tag object that carries who published and why) at the commit
//! that holds the deposit as published. Versions count from 1 without gaps, and a record
//! tag is never moved or deleted: the hook enforces both. This module only reads and
//! names records; it never writes refs itself except through [`create_record_tag`].

use std::collections::BTreeMap;

use git2::{Oid, Repository};

use crate::deposit::check_id;

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
    let mut records: BTreeMap<String, Vec<RecordTag>> = BTreeMap::new();
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
        let tag = repo.find_tag(target).ok().map(|t| t.id());
        let commit = reference.peel_to_commit()?.id();
        records
            .entry(parsed.id.to_string())
            .or_default()
            .push(RecordTag {
                id: parsed.id.to_string(),
                version: parsed.version,
                commit,
                tag,
            });
    }
    for versions in records.values_mut() {
        versions.sort_by_key(|r| r.version);
    }
    Ok(records)
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
