//! From the index to a search cluster: OpenSearch `_bulk` NDJSON for what changed.
//!
//! Past one machine, search runs on OpenSearch (CAP's own engine) and this index feeds
//! it: `capsule index --export ndjson [--since REV]` writes an action line and a
//! document line per changed draft or record version, and a `delete` line per deposit
//! removed since `REV` (docs/scale.md shows the post-receive hook that posts it).
//!
//! The export reads the tantivy index (caught up first), not the history: the index
//! already knows every version's times, people and keywords, so an incremental export
//! costs what changed. The document is the deposit itself, as `deposit.json` holds it
//! (so a schema's mapping applies to its fields), with capsule's own facts under
//! `_capsule`.
//!
//! - **Index names** are `capsule-<schema>-v<version>`, lower-cased, with every
//!   character other than `a-z`, `0-9` and `-` turned into `-` (`analysis/1.0.0` →
//!   `capsule-analysis-v1-0-0`). One index per schema *version*, because an
//!   OpenSearch index has one mapping and a field's type cannot change in it, while a
//!   new schema version may change it; `capsule-analysis-*` searches every version.
//!   Lower case because OpenSearch refuses upper-case index names; no `.`, because a
//!   leading `.` makes an index hidden, `.`/`..` are refused, and a name of letters,
//!   digits and dashes is safe in URLs, index patterns and shells alike. Deposits
//!   without a readable `$schema` go to `capsule-no-schema`.
//! - **Ids** are the deposit id for a draft and `<id>/v<N>` for a record version: a
//!   deposit id may contain `.` (so `<id>.v<N>` could be another deposit's id) but
//!   never `/`, and `<id>/v<N>` is the record tag's own name.
//! - **Order** is deterministic: deletions, then documents, each sorted by `_id`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use git2::{Oid, Repository};
use serde::Serialize;
use serde_json::{json, Map, Value};
use tantivy::collector::{DocSetCollector, TopDocs};
use tantivy::query::{AllQuery, TermQuery};
use tantivy::schema::{IndexRecordOption, Term, Value as _};
use tantivy::{Searcher, TantivyDocument};

use crate::deposit::parse_schema_ref;
use crate::record::list_records;

use super::changes::{deposits_tree, drafts_tip, history};
use super::fields::{document_key, stored_date, stored_text, stored_texts, Fields};
use super::store::Store;
use super::{catch_up, index_dir, IndexError};

/// What an export wrote.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExportReport {
    /// `None` for a full export.
    pub since: Option<String>,
    /// The drafts commit the export reflects.
    pub commit: Option<String>,
    pub drafts: usize,
    pub records: usize,
    pub deletions: usize,
}

/// Why an export cannot run, beyond the index's own errors.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("--since {0}: no such commit in this repository")]
    UnknownRevision(String),
    #[error("--since {rev}: {commit} is not on the first-parent history of {branch} (was it rewritten?); export everything instead (without --since)")]
    NotAnAncestor {
        rev: String,
        commit: String,
        branch: String,
    },
    #[error("writing the export: {0}")]
    Write(#[from] std::io::Error),
}

impl From<git2::Error> for ExportError {
    fn from(e: git2::Error) -> Self {
        ExportError::Index(IndexError::Git(e))
    }
}

/// The OpenSearch index of a schema (`name/version`), or of deposits without one.
pub fn index_name(schema: Option<&str>) -> String {
    let Some(sref) = schema.and_then(parse_schema_ref) else {
        return "capsule-no-schema".to_string();
    };
    let raw = format!("capsule-{}-v{}", sref.name, sref.version).to_lowercase();
    raw.chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The `_id` of a version: the deposit id for a draft, `<id>/v<N>` for a record.
pub fn document_id(id: &str, version: Option<u32>) -> String {
    match version {
        None => id.to_string(),
        Some(n) => format!("{id}/v{n}"),
    }
}

/// Writes the `_bulk` NDJSON of everything (`since: None`) or of what changed since
/// the drafts branch was at `since`: drafts whose folder changed, record versions
/// whose tagged commit is new since then, and `delete`s for deposits removed.
pub fn export_ndjson(
    repo: &Repository,
    since: Option<&str>,
    out: &mut dyn Write,
) -> Result<ExportReport, ExportError> {
    let (_, current) = catch_up(repo)?;
    let store = match current {
        Some(store) => store,
        None => Store::open(&index_dir(repo))?.ok_or_else(|| IndexError::Io {
            path: index_dir(repo),
            source: std::io::Error::other("the index could not be opened after updating it"),
        })?,
    };
    let searcher = store.searcher()?;
    let tip = drafts_tip(repo)?;
    let mut report = ExportReport {
        since: since.map(str::to_string),
        commit: tip.as_ref().and_then(|t| t.commit).map(|c| c.to_string()),
        ..ExportReport::default()
    };

    // (_id, index, key in the tantivy index)
    let mut wanted: BTreeMap<String, String> = BTreeMap::new();
    let mut deletions: BTreeMap<String, String> = BTreeMap::new();
    match since {
        None => {
            for key in all_keys(&store, &searcher)? {
                wanted.insert(key.clone(), key);
            }
        }
        Some(rev) => {
            let old = repo
                .revparse_single(rev)
                .and_then(|o| o.peel_to_commit())
                .map_err(|_| ExportError::UnknownRevision(rev.to_string()))?
                .id();
            let tip_commit = tip.as_ref().and_then(|t| t.commit);
            if let Some(tip_commit) = tip_commit {
                let touches = history(repo, tip_commit, Some(old))?.ok_or_else(|| {
                    ExportError::NotAnAncestor {
                        rev: rev.to_string(),
                        commit: old.to_string(),
                        branch: tip.as_ref().map(|t| t.branch.clone()).unwrap_or_default(),
                    }
                })?;
                for (id, touch) in touches {
                    match touch.folder {
                        Some(_) => {
                            let key = document_key(&id, None);
                            wanted.insert(key.clone(), key);
                        }
                        None => {
                            let schema = schema_at(repo, old, &id);
                            deletions.insert(document_id(&id, None), index_name(schema.as_deref()));
                        }
                    }
                }
                // Record versions whose tagged commit the old state did not have.
                for versions in list_records(repo)?.values() {
                    for record in versions {
                        let known =
                            record.commit == old || repo.graph_descendant_of(old, record.commit)?;
                        if !known {
                            let key = document_key(&record.id, Some(record.version));
                            wanted.insert(key.clone(), key);
                        }
                    }
                }
            }
        }
    }

    for (id, index) in &deletions {
        let action = json!({"delete": {"_index": index, "_id": id}});
        writeln!(out, "{action}")?;
        report.deletions += 1;
    }
    let mut lines: Vec<(String, String, Value)> = Vec::new();
    for key in wanted.keys() {
        let Some(doc) = stored(&store, &searcher, key)? else {
            // Not in the index: it could not be read (the index update warned).
            continue;
        };
        let Some((id, index, body, is_draft)) = document(repo, &store.fields, &doc) else {
            continue;
        };
        if is_draft {
            report.drafts += 1;
        } else {
            report.records += 1;
        }
        lines.push((id, index, body));
    }
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    for (id, index, body) in lines {
        let action = json!({"index": {"_index": index, "_id": id}});
        writeln!(out, "{action}")?;
        writeln!(out, "{body}")?;
    }
    out.flush()?;
    Ok(report)
}

/// The keys of every document in the index.
fn all_keys(store: &Store, searcher: &Searcher) -> Result<BTreeSet<String>, IndexError> {
    let addresses = store.at(searcher.search(&AllQuery, &DocSetCollector))?;
    let mut keys = BTreeSet::new();
    for address in addresses {
        let doc: TantivyDocument = store.at(searcher.doc(address))?;
        if let Some(key) = doc.get_first(store.fields.key).and_then(|v| v.as_str()) {
            keys.insert(key.to_string());
        }
    }
    Ok(keys)
}

fn stored(
    store: &Store,
    searcher: &Searcher,
    key: &str,
) -> Result<Option<TantivyDocument>, IndexError> {
    let query = TermQuery::new(
        Term::from_field_text(store.fields.key, key),
        IndexRecordOption::Basic,
    );
    let top = store.at(searcher.search(&query, &TopDocs::with_limit(1)))?;
    match top.first() {
        Some((_, address)) => Ok(Some(store.at(searcher.doc(*address))?)),
        None => Ok(None),
    }
}

/// `(_id, index, document, is_draft)` of a stored version: its deposit.json with
/// capsule's facts under `_capsule`.
fn document(
    repo: &Repository,
    f: &Fields,
    doc: &TantivyDocument,
) -> Option<(String, String, Value, bool)> {
    let text = |field| stored_text(doc, field);
    let all = |field| stored_texts(doc, field);
    let date = |field| stored_date(doc, field);
    let id = text(f.id)?;
    let version = doc
        .get_first(f.version)
        .and_then(|v| v.as_u64())
        .filter(|v| *v > 0)
        .map(|v| v as u32);
    let blob = repo.find_blob(Oid::from_str(&text(f.blob)?).ok()?).ok()?;
    let mut body = match crate::json::from_bytes(blob.content()).ok()? {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let schema = text(f.schema);
    body.insert(
        "_capsule".into(),
        json!({
            "id": id,
            "version": version,
            "status": if version.is_some() { "published" } else { "draft" },
            "schema": schema,
            "experiment": text(f.experiment),
            "title": text(f.title),
            "people": all(f.people),
            "keywords": all(f.keywords),
            "created": date(f.created),
            "updated": date(f.updated),
            "commit": text(f.commit),
        }),
    );
    Some((
        document_id(&id, version),
        index_name(schema.as_deref()),
        Value::Object(body),
        version.is_none(),
    ))
}

/// The `$schema` a deposit had at a commit (to name the index its deletion goes to).
fn schema_at(repo: &Repository, commit: Oid, id: &str) -> Option<String> {
    let commit = repo.find_commit(commit).ok()?;
    let tree = deposits_tree(repo, &commit).ok()??;
    let folder = repo.find_tree(tree.folder(id).ok()??).ok()?;
    let blob = repo.find_blob(folder.get_name("deposit.json")?.id()).ok()?;
    let deposit = crate::json::from_bytes(blob.content()).ok()?;
    let schema = deposit.get("$schema")?.as_str()?;
    parse_schema_ref(schema).map(|s| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_are_lower_case_letters_digits_and_dashes() {
        assert_eq!(
            index_name(Some("analysis/1.0.0")),
            "capsule-analysis-v1-0-0"
        );
        assert_eq!(
            index_name(Some("CMS-Analysis/0.0.1")),
            "capsule-cms-analysis-v0-0-1"
        );
        assert_eq!(index_name(None), "capsule-no-schema");
        assert_eq!(document_id("zee.2024", Some(3)), "zee.2024/v3");
        assert_eq!(document_id("zee.2024", None), "zee.2024");
    }
}
