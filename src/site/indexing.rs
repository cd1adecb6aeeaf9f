//! The search index stage of a build: numbers the records' search documents and writes
//! the index (see `search`), whole in a full build, patched in an incremental one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use git2::{Oid, Repository};

use crate::archive::GitTree;

use super::error::SiteError;
use super::records::RecordInput;
use super::search::{self, SearchDoc, SearchStats};
use super::state::{RecordState, State};
use super::util::Fingerprint;
use super::write::Output;

/// What changed since the previous build.
pub struct Changes<'a> {
    /// Every record's key, by id.
    pub keys: &'a BTreeMap<String, String>,
    pub changed: &'a [&'a RecordInput],
    pub removed: &'a [String],
}

/// Writes the search index of `states` (every record on the site, by id; their `doc`
/// numbers are set here in an incremental build). `fresh`: the search documents of
/// the records rendered in an incremental build; `postings`: their terms in a full
/// one. Returns the index's figures, its shard keys and the number of documents.
#[allow(clippy::too_many_arguments)]
pub fn index_records(
    repo: &Repository,
    output: &Output,
    out: &Path,
    previous: &State,
    changes: Changes<'_>,
    states: &mut BTreeMap<String, RecordState>,
    fresh: BTreeMap<String, SearchDoc>,
    postings: search::Postings,
) -> Result<(Option<SearchStats>, Vec<String>, usize), SiteError> {
    let Changes {
        keys,
        changed,
        removed,
    } = changes;
    let incremental = output.is_incremental();
    // Search documents get numbers: by id in a full build; kept, and new ones
    // appended, in an incremental one.
    let search_version = {
        let mut f = Fingerprint::new();
        for (id, key) in keys {
            f.add(id).add(key);
        }
        f.finish()
    };
    let search_stats;
    let shards;
    let doc_count;
    if !incremental {
        // Records were merged in id order, so documents are numbered by id.
        let rows = states
            .values()
            .filter(|s| s.doc.is_some())
            .filter_map(|s| s.summary.as_ref().map(search::row_of));
        let (stats, keys) = search::write_index(output, postings, rows, &search_version)?;
        shards = keys;
        doc_count = stats.documents;
        search_stats = Some(stats);
    } else {
        let mut next = previous.search_docs as u32;
        let mut changes: Vec<search::DocChange> = Vec::new();
        let touched: BTreeSet<&String> = fresh
            .keys()
            .chain(changed.iter().map(|i| &i.id))
            .chain(removed.iter())
            .collect();
        for id in touched {
            let old = previous.records.get(id);
            let old_doc = old.and_then(|o| o.doc);
            let old_search = match old {
                Some(o) if o.summary.is_some() && !o.commit.is_empty() => {
                    old_search_doc(repo, id, o)?
                }
                _ => None,
            };
            let new_search = fresh.get(id).cloned();
            let doc = match (old_doc, &new_search) {
                (Some(d), _) => Some(d),
                (None, Some(_)) => {
                    next += 1;
                    Some(next - 1)
                }
                (None, None) => None,
            };
            if let Some(state) = states.get_mut(id) {
                state.doc = if new_search.is_some() { doc } else { None };
            }
            if let Some(doc) = doc {
                changes.push(search::DocChange {
                    doc,
                    reused: old_doc.is_some(),
                    old: old_search,
                    new: new_search,
                });
            }
        }
        // Rows only for the result chunks this build rewrites.
        let chunks: BTreeSet<u32> = changes
            .iter()
            .map(|c| c.doc / search::CHUNK as u32)
            .collect();
        let all_docs: BTreeMap<u32, SearchDoc> = states
            .values()
            .filter(|s| {
                s.doc
                    .is_some_and(|d| chunks.contains(&(d / search::CHUNK as u32)))
            })
            .filter_map(|s| Some((s.doc?, search::row_of(s.summary.as_ref()?))))
            .collect();
        let (stats, keys) = search::patch_index(
            output,
            out,
            &previous.search_shards,
            next as usize,
            &changes,
            &all_docs,
            states
                .values()
                .filter(|s| s.doc.is_some() && s.summary.is_some())
                .count(),
            &search_version,
        )?;
        shards = keys;
        doc_count = next as usize;
        search_stats = stats;
    }

    Ok((search_stats, shards, doc_count))
}

/// The search document a record had in the previous build, from its old commit.
fn old_search_doc(
    repo: &Repository,
    id: &str,
    state: &RecordState,
) -> Result<Option<SearchDoc>, SiteError> {
    let Some(summary) = &state.summary else {
        return Ok(None);
    };
    let Ok(commit) = Oid::from_str(&state.commit) else {
        return Ok(None);
    };
    let tree = GitTree::at_commit(repo, commit)?;
    let Some(bytes) = tree.read_deposit_file(id, "deposit.json")? else {
        return Ok(None);
    };
    let deposit: serde_json::Value = crate::json::from_bytes(&bytes).unwrap_or_default();
    Ok(Some(SearchDoc::from_deposit(summary, &deposit)))
}
