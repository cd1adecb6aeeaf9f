//! The history of a deposit, read straight from git: its versions, the deposit at any
//! version, and semantic differences between two versions.
//!
//! A version is a commit that changed the deposit's folder; record versions are the
//! record tags. Nothing here is stored besides git itself.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use git2::{Oid, Repository};
use serde::Serialize;
use serde_json::Value;

use crate::archive::{short, GitTree};
use crate::locate::escape_token;
use crate::record::versions_of;

/// One commit that changed a deposit.
#[derive(Debug, Clone, Serialize)]
pub struct DepositVersion {
    pub commit: String,
    pub short: String,
    pub author: String,
    pub email: String,
    /// Commit time, RFC 3339 in UTC.
    pub date: String,
    pub message: String,
    /// Record versions (N of `records/<id>/vN`) that point at this commit.
    pub records: Vec<u32>,
    /// Whether the deposit's folder was deleted by this commit.
    pub deleted: bool,
}

/// RFC 3339 (UTC, seconds) of a unix time.
pub fn rfc3339(seconds: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_secs(seconds.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

/// The deposit's folder at `commit`, wherever that commit's layout kept it: a commit
/// made before the archive moved to shards has it flat, and the move itself changes no
/// folder's id, so `capsule migrate` never shows as a version (git's rename following,
/// without the guessing).
fn folder_id(repo: &Repository, commit: &git2::Commit<'_>, id: &str) -> Option<Oid> {
    let root = commit.tree().ok()?;
    crate::archive::DepositsTree::of_root(repo, &root)
        .ok()??
        .folder(id)
        .ok()?
}

/// Every version of deposit `id` reachable from `start`, newest first, with the
/// record versions marked. Record versions whose commits are not reachable from
/// `start` (published from another branch) are listed too, so none is hidden.
pub fn log(repo: &Repository, start: Oid, id: &str) -> Result<Vec<DepositVersion>, git2::Error> {
    let mut records: BTreeMap<Oid, Vec<u32>> = BTreeMap::new();
    for record in versions_of(repo, id)? {
        records
            .entry(record.commit)
            .or_default()
            .push(record.version);
    }
    // A deposit's versions are the states along the first-parent chain: what the
    // branch held, one accepted push after another. A commit that only a merge's
    // second parent brings in is not a version anyone wrote on this branch (the hook
    // judges the chain commit by commit, and nothing else).
    // Walked by hand: libgit2's first-parent simplification still lists other parents
    // under topological sorting.
    let mut next = Some(repo.find_commit(start)?);
    let chain = std::iter::from_fn(move || {
        let commit = next.take()?;
        next = commit.parent(0).ok();
        Some(commit)
    });
    let mut versions = Vec::new();
    let mut seen_records = std::collections::HashSet::new();
    // A record tagged on a commit that did not touch the deposit (publishing tags
    // HEAD) belongs to the version that commit carries: the next older change with
    // the same folder.
    let mut pending: Vec<(Option<Oid>, Oid)> = Vec::new();
    for commit in chain {
        let now = folder_id(repo, &commit, id);
        let changed = match commit.parent(0) {
            Ok(parent) => folder_id(repo, &parent, id) != now,
            Err(_) => now.is_some(),
        };
        if !changed {
            if records.contains_key(&commit.id()) && now.is_some() {
                pending.push((now, commit.id()));
            }
            continue;
        }
        let mut marks = records.get(&commit.id()).cloned().unwrap_or_default();
        if !marks.is_empty() {
            seen_records.insert(commit.id());
        }
        pending.retain(|(folder_at, tagged)| {
            if *folder_at == now {
                marks.extend(records[tagged].iter().copied());
                seen_records.insert(*tagged);
                false
            } else {
                true
            }
        });
        marks.sort_unstable();
        versions.push(version_of(&commit, marks, now.is_none()));
    }
    // Records published from commits this branch does not reach go last, newest first.
    let mut elsewhere = Vec::new();
    for (commit, marks) in &records {
        if !seen_records.contains(commit) {
            let commit = repo.find_commit(*commit)?;
            elsewhere.push(version_of(&commit, marks.clone(), false));
        }
    }
    elsewhere.sort_by(|a, b| b.records.cmp(&a.records));
    versions.extend(elsewhere);
    Ok(versions)
}

fn version_of(commit: &git2::Commit<'_>, records: Vec<u32>, deleted: bool) -> DepositVersion {
    let author = commit.author();
    DepositVersion {
        commit: commit.id().to_string(),
        short: short(commit.id()),
        author: author.name().unwrap_or("").to_string(),
        email: author.email().unwrap_or("").to_string(),
        date: rfc3339(commit.time().seconds()),
        message: commit.summary().unwrap_or("").to_string(),
        records,
        deleted,
    }
}

/// Where a version spec points: `vN` (a record version) or any git revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resolved {
    pub commit: String,
    /// The record version, when the spec named one (or the commit carries one).
    pub record: Option<u32>,
    pub spec: String,
}

/// Why a version could not be found.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("deposit {id} has no record version v{version}{}", latest_hint(*.latest))]
    NoSuchRecord {
        id: String,
        version: u32,
        latest: u32,
    },
    #[error("`{spec}` is not a revision of this repository ({reason}); use vN for a record version, or a commit, branch or tag")]
    BadRevision { spec: String, reason: String },
    #[error("deposit {id} does not exist at {spec}: there is no {}", crate::deposit::metadata_path(.id))]
    Missing { id: String, spec: String },
    #[error("{} at {spec} is not valid JSON: {reason}", crate::deposit::metadata_path(.id))]
    Invalid {
        id: String,
        spec: String,
        reason: String,
    },
    #[error("git: {0}")]
    Git(#[from] git2::Error),
}

fn latest_hint(latest: u32) -> String {
    if latest == 0 {
        ": it was never published (`capsule publish` makes v1)".into()
    } else {
        format!(": the latest is v{latest}")
    }
}

/// Resolves `vN`, `latest`-style record specs and git revisions for deposit `id`.
pub fn resolve(repo: &Repository, id: &str, spec: &str) -> Result<Resolved, HistoryError> {
    let records = versions_of(repo, id)?;
    if let Some(number) = spec
        .strip_prefix('v')
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse::<u32>().ok())
    {
        return records
            .iter()
            .find(|r| r.version == number)
            .map(|r| Resolved {
                commit: r.commit.to_string(),
                record: Some(number),
                spec: spec.to_string(),
            })
            .ok_or(HistoryError::NoSuchRecord {
                id: id.to_string(),
                version: number,
                latest: records.last().map_or(0, |r| r.version),
            });
    }
    let commit = repo
        .revparse_single(spec)
        .and_then(|o| o.peel_to_commit())
        .map_err(|e| HistoryError::BadRevision {
            spec: spec.to_string(),
            reason: e.message().to_string(),
        })?;
    Ok(Resolved {
        commit: commit.id().to_string(),
        record: records
            .iter()
            .rev()
            .find(|r| r.commit == commit.id())
            .map(|r| r.version),
        spec: spec.to_string(),
    })
}

/// The deposit's JSON (text and value) at a resolved version.
pub fn deposit_at(
    repo: &Repository,
    id: &str,
    at: &Resolved,
) -> Result<(String, Value), HistoryError> {
    let oid = Oid::from_str(&at.commit)?;
    let tree = GitTree::at_commit(repo, oid)?;
    let bytes =
        tree.read_deposit_file(id, "deposit.json")?
            .ok_or_else(|| HistoryError::Missing {
                id: id.to_string(),
                spec: at.spec.clone(),
            })?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let value = crate::json::from_bytes(&bytes).map_err(|reason| HistoryError::Invalid {
        id: id.to_string(),
        spec: at.spec.clone(),
        reason,
    })?;
    Ok((text, value))
}

/// What happened to one field between two versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldChangeKind {
    Added,
    Removed,
    Changed,
}

/// One field that differs, by pointer (and, filled in by the caller, title path).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub kind: FieldChangeKind,
    pub pointer: String,
    pub title_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
}

/// The fields that differ between `old` and `new`, in document order.
///
/// Objects are compared key by key and arrays position by position, down to the
/// scalars; a field whose type changed (object to string, ...) is one change.
pub fn diff_values(old: &Value, new: &Value) -> Vec<FieldChange> {
    let mut out = Vec::new();
    diff_into(old, new, &mut String::new(), &mut out);
    out
}

fn diff_into(old: &Value, new: &Value, pointer: &mut String, out: &mut Vec<FieldChange>) {
    let change = |kind, pointer: &str, old: Option<&Value>, new: Option<&Value>| FieldChange {
        kind,
        pointer: pointer.to_string(),
        title_path: String::new(),
        old: old.cloned(),
        new: new.cloned(),
    };
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&escape_token(key));
                match b.get(key) {
                    Some(other) => diff_into(value, other, pointer, out),
                    None => out.push(change(FieldChangeKind::Removed, pointer, Some(value), None)),
                }
                pointer.truncate(len);
            }
            for (key, value) in b.iter().filter(|(k, _)| !a.contains_key(*k)) {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&escape_token(key));
                out.push(change(FieldChangeKind::Added, pointer, None, Some(value)));
                pointer.truncate(len);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let len = pointer.len();
                pointer.push_str(&format!("/{i}"));
                match (a.get(i), b.get(i)) {
                    (Some(x), Some(y)) => diff_into(x, y, pointer, out),
                    (Some(x), None) => {
                        out.push(change(FieldChangeKind::Removed, pointer, Some(x), None))
                    }
                    (None, Some(y)) => {
                        out.push(change(FieldChangeKind::Added, pointer, None, Some(y)))
                    }
                    (None, None) => {}
                }
                pointer.truncate(len);
            }
        }
        (a, b) if a != b => out.push(change(FieldChangeKind::Changed, pointer, Some(a), Some(b))),
        _ => {}
    }
}

/// One field of a deposit for reading: where it is and its value (a scalar, or a list
/// of scalars shown on one line).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Field {
    pub pointer: String,
    pub title_path: String,
    pub value: Value,
}

/// The leaves of a deposit in document order; arrays of scalars stay whole.
pub fn fields(value: &Value) -> Vec<Field> {
    fn walk(value: &Value, pointer: &mut String, out: &mut Vec<Field>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    let len = pointer.len();
                    pointer.push('/');
                    pointer.push_str(&escape_token(key));
                    walk(v, pointer, out);
                    pointer.truncate(len);
                }
            }
            Value::Array(items) if items.iter().any(|i| i.is_object() || i.is_array()) => {
                for (i, item) in items.iter().enumerate() {
                    let len = pointer.len();
                    pointer.push_str(&format!("/{i}"));
                    walk(item, pointer, out);
                    pointer.truncate(len);
                }
            }
            other => out.push(Field {
                pointer: pointer.clone(),
                title_path: String::new(),
                value: other.clone(),
            }),
        }
    }
    let mut out = Vec::new();
    walk(value, &mut String::new(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn semantic_diff_names_fields_not_lines() {
        let old = json!({"a": 1, "b": {"c": "x", "d": [1, 2]}, "gone": true});
        let new = json!({"a": 1, "b": {"c": "y", "d": [1, 2, 3]}, "new": {"k": 1}});
        let changes = diff_values(&old, &new);
        let summary: Vec<(FieldChangeKind, &str)> = changes
            .iter()
            .map(|c| (c.kind, c.pointer.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                (FieldChangeKind::Changed, "/b/c"),
                (FieldChangeKind::Added, "/b/d/2"),
                (FieldChangeKind::Removed, "/gone"),
                (FieldChangeKind::Added, "/new"),
            ]
        );
        assert_eq!(changes[0].old, Some(json!("x")));
        assert_eq!(changes[0].new, Some(json!("y")));
        assert!(diff_values(&old, &old).is_empty());
    }

    #[test]
    fn fields_keep_scalar_lists_whole() {
        let value = json!({"k": ["a", "b"], "people": [{"name": "A"}], "x/y": 1});
        let pointers: Vec<String> = fields(&value).into_iter().map(|f| f.pointer).collect();
        assert_eq!(pointers, ["/k", "/people/0/name", "/x~1y"]);
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
    }
}
