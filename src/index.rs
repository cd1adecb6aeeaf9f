//! The search index: a tantivy index per repository, kept in step with git.
//!
//! It lives in `<git-dir>/capsule/index`, on a server (bare repository) and in a clone
//! alike, and holds one document per deposit *draft* (the deposits at the tip of the
//! default branch) and one per published *record* version (`records/<id>/v<N>` tags).
//!
//! **Freshness.** The tantivy commit payload records what the index reflects: the
//! drafts branch and its commit, and a digest of the record tags. An [`update`] reads
//! only what changed since then: the first-parent commits since the recorded one (their
//! `deposits/` folders compared by tree id) and the record tags not yet indexed. Deletes
//! and additions for every changed deposit, and the new payload, go into one tantivy
//! commit, so the index and its bookkeeping change together or not at all: a crash at
//! any point leaves the last committed state, and the next update catches up from it.
//! [`search`] first catches up when the refs moved, so its answers are never stale.
//!
//! **Bad data** never stops indexing: a deposit that cannot be read or parsed is
//! skipped, and reported in [`UpdateReport::skipped`].
//!
//! **Parts.** `changes` reads what moved in git; `fields` and `extract` turn a deposit
//! version into a document; `store` is the index on disk; `query` compiles what a
//! person typed; `search` folds matching versions into one hit per analysis and
//! `snippets` says why each matched; `export` and `mapping` feed OpenSearch (bulk
//! NDJSON and index templates) when search moves past one machine.
//!
//! This module returns data and never prints; `cli/search.rs` renders it.

mod changes;
mod export;
pub mod extract;
mod fields;
mod fold;
mod mapping;
mod query;
mod search;
mod snippets;
mod store;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use git2::{Oid, Repository};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tantivy::schema::Term;
use tantivy::{IndexWriter, Searcher, TantivyDocument, TantivyError};

use crate::archive::GitTree;
use crate::deposit::{parse_schema_ref, SchemaRef};
use crate::record::list_records;
use crate::validate::parse_deposit;

use changes::{deposits_tree, drafts_tip, history, records_digest, DraftsTip};
pub use export::{document_id, export_ndjson, index_name, ExportError, ExportReport};
use extract::schema_experiment;
use fields::{document_key, make_document, Fields, VersionInfo, FORMAT};
pub use mapping::{templates, MappingError};
pub use query::{QueryError, STOP_WORDS};
pub use search::{
    identities, search, FacetCount, Facets, FieldMatch, Hit, SearchRequest, SearchResults, Sort,
    Status, VersionHit,
};
use store::{full_writer_options, update_writer_options, Store};

/// Why the index could not be updated or searched.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The query is malformed; the message says how.
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error("search index {}: {source}", path.display())]
    Tantivy { path: PathBuf, source: TantivyError },
    #[error("search index {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("search index {}: another capsule process has been updating it for {} s; try again when it is done", path.display(), LOCK_WAIT.as_secs())]
    Busy { path: PathBuf },
}

/// How long an update waits for another process that holds the index's writer lock.
const LOCK_WAIT: Duration = Duration::from_secs(60);

/// Where a repository keeps its index: inside its git directory (the common one, for
/// linked worktrees), so it is never committed and every clone has its own.
pub fn index_dir(repo: &Repository) -> PathBuf {
    repo.commondir().join("capsule").join("index")
}

/// What the index reflects, stored in its tantivy commit payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Payload {
    format: u32,
    branch: Option<String>,
    commit: Option<String>,
    records: usize,
    records_digest: String,
}

/// The state of the refs an index must reflect.
struct Target {
    drafts: Option<DraftsTip>,
    records: usize,
    records_digest: String,
}

impl Target {
    fn read(repo: &Repository) -> Result<Target, git2::Error> {
        let (records, records_digest) = records_digest(repo)?;
        Ok(Target {
            drafts: drafts_tip(repo)?,
            records,
            records_digest,
        })
    }

    fn payload(&self) -> Payload {
        Payload {
            format: FORMAT,
            branch: self.drafts.as_ref().map(|d| d.branch.clone()),
            commit: self
                .drafts
                .as_ref()
                .and_then(|d| d.commit)
                .map(|c| c.to_string()),
            records: self.records,
            records_digest: self.records_digest.clone(),
        }
    }
}

/// What an update did.
#[derive(Debug, Clone, Serialize)]
pub struct UpdateReport {
    pub path: PathBuf,
    pub mode: UpdateMode,
    /// The drafts branch and the commit the index now reflects.
    pub branch: Option<String>,
    pub commit: Option<String>,
    pub drafts_indexed: usize,
    pub drafts_removed: usize,
    pub records_indexed: usize,
    pub records_removed: usize,
    /// Documents in the index after the update.
    pub documents: u64,
    /// Deposits that could not be indexed, and why.
    pub skipped: Vec<Skipped>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateMode {
    /// Nothing had changed.
    UpToDate,
    /// Only what changed since the last update was read.
    Incremental,
    /// Everything was (re)indexed.
    Full,
}

/// A deposit version left out of the index.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub id: String,
    /// `None` for the draft.
    pub version: Option<u32>,
    /// The file and the reason, as one line (`deposits/x/deposit.json:3:7: invalid JSON ...`).
    pub reason: String,
}

/// Brings the index up to date with the repository's refs (creating it if needed).
/// With `rebuild`, everything is indexed afresh, in one commit that replaces the old
/// contents (so a crash during a rebuild keeps the old index).
pub fn update(repo: &Repository, rebuild: bool) -> Result<UpdateReport, IndexError> {
    let started = Instant::now();
    let dir = index_dir(repo);
    let store = Store::open_or_create(&dir)?;
    // An update that catches up with a push touches a handful of documents: a small
    // single-threaded writer starts in a fraction of the time the full one takes
    // (that one reserves 256 MB per thread). A full build gets every core.
    let fresh = rebuild || store.payload()?.is_none_or(|p| p.format != FORMAT);
    let mut writer = store.writer(if fresh {
        full_writer_options()
    } else {
        update_writer_options()
    })?;
    // Read the payload only now that we hold the lock: another process may just have
    // caught up.
    let payload = store.payload()?;
    let target = Target::read(repo)?;
    let mut report = UpdateReport {
        path: dir.clone(),
        mode: UpdateMode::UpToDate,
        branch: target.drafts.as_ref().map(|d| d.branch.clone()),
        commit: target
            .drafts
            .as_ref()
            .and_then(|d| d.commit)
            .map(|c| c.to_string()),
        drafts_indexed: 0,
        drafts_removed: 0,
        records_indexed: 0,
        records_removed: 0,
        documents: 0,
        skipped: Vec::new(),
        seconds: 0.0,
    };
    let wanted = target.payload();
    if !rebuild && payload.as_ref() == Some(&wanted) {
        report.documents = store.documents()?;
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    let full = rebuild || payload.as_ref().is_none_or(|p| p.format != FORMAT);
    let mut plan = Plan::default();
    let f = store.fields;
    if full {
        report.mode = UpdateMode::Full;
        store.at(writer.delete_all_documents())?;
        plan_all_drafts(repo, target.drafts.as_ref(), &mut plan)?;
        plan_records(repo, &HashSet::new(), &mut plan, &mut report)?;
    } else {
        report.mode = UpdateMode::Incremental;
        let payload = payload.expect("checked above");
        let searcher = store.searcher()?;
        let old = payload
            .commit
            .as_deref()
            .and_then(|c| Oid::from_str(c).ok());
        let same_branch = payload.branch == wanted.branch;
        let tip = target.drafts.as_ref().and_then(|d| d.commit);
        if same_branch && old == tip {
            // Drafts are current.
        } else {
            let touches = match (same_branch, old, tip) {
                (true, Some(old), Some(tip)) => history(repo, tip, Some(old))?,
                _ => None,
            };
            match touches {
                Some(touches) => plan_changed_drafts(
                    tip.expect("set"),
                    touches,
                    &store,
                    &searcher,
                    &writer,
                    &mut plan,
                    &mut report,
                )?,
                None => {
                    // A new branch, or rewritten history: reindex every draft.
                    writer.delete_term(Term::from_field_text(f.status, "draft"));
                    plan_all_drafts(repo, target.drafts.as_ref(), &mut plan)?;
                }
            }
        }
        if payload.records_digest != wanted.records_digest {
            let indexed = store.record_keys(&searcher)?;
            let current: HashSet<String> = list_records(repo)?
                .values()
                .flatten()
                .map(|r| document_key(&r.id, Some(r.version)))
                .collect();
            for gone in indexed.difference(&current) {
                writer.delete_term(Term::from_field_text(f.key, gone));
                report.records_removed += 1;
            }
            plan_records(repo, &indexed, &mut plan, &mut report)?;
        }
    }
    let skipped = index_jobs(repo, &store, &writer, &plan.jobs)?;
    for job in &plan.jobs {
        let skipped_this = skipped
            .iter()
            .any(|s| s.id == job.info.id && s.version == job.info.version);
        if skipped_this {
            continue;
        }
        match job.info.version {
            None => report.drafts_indexed += 1,
            Some(_) => report.records_indexed += 1,
        }
    }
    report.skipped.extend(skipped);
    report.skipped.extend(plan.skipped);

    let mut prepared = store.at(writer.prepare_commit())?;
    let text = serde_json::to_string(&wanted).expect("a payload serialises");
    prepared.set_payload(&text);
    store.at(prepared.commit())?;
    // One-shot processes must not leave merges half done (or segments piling up).
    store.at(writer.wait_merging_threads())?;
    report.documents = store.documents()?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Updates the index when the refs moved since it was written (or it does not exist).
/// Returns what the update did, or `None` when the index was already current.
pub fn refresh(repo: &Repository) -> Result<Option<UpdateReport>, IndexError> {
    Ok(catch_up(repo)?.0)
}

/// [`refresh`], and the opened index when it was already current (a search then
/// goes on with it instead of opening it again).
fn catch_up(repo: &Repository) -> Result<(Option<UpdateReport>, Option<Store>), IndexError> {
    let dir = index_dir(repo);
    if let Ok(Some(store)) = Store::open(&dir) {
        let target = Target::read(repo)?;
        if store.payload()?.as_ref() == Some(&target.payload()) {
            return Ok((None, Some(store)));
        }
    }
    update(repo, false).map(|report| (Some(report), None))
}

/// A deposit version to read and index.
struct Job {
    info: VersionInfo,
    /// The deposit's folder tree.
    folder: Oid,
}

#[derive(Default)]
struct Plan {
    jobs: Vec<Job>,
    skipped: Vec<Skipped>,
}

fn plan_all_drafts(
    repo: &Repository,
    drafts: Option<&DraftsTip>,
    plan: &mut Plan,
) -> Result<(), IndexError> {
    let Some(tip) = drafts.and_then(|d| d.commit) else {
        return Ok(());
    };
    let commit = repo.find_commit(tip)?;
    let Some(tree) = deposits_tree(repo, &commit)? else {
        return Ok(());
    };
    let touches = history(repo, tip, None)?.unwrap_or_default();
    let tip_time = commit.time().seconds();
    for (id, folder) in tree.folders()? {
        if let Err(reason) = crate::deposit::check_id(&id) {
            plan.skipped.push(Skipped {
                id,
                version: None,
                reason,
            });
            continue;
        }
        let touch = touches.get(&id);
        let updated = touch.map_or(tip_time, |t| t.updated);
        let created = touch.and_then(|t| t.added).unwrap_or(updated);
        plan.jobs.push(Job {
            info: VersionInfo {
                id,
                version: None,
                commit: tip,
                blob: Oid::zero(),
                created,
                updated,
            },
            folder,
        });
    }
    Ok(())
}

fn plan_changed_drafts(
    tip: Oid,
    touches: HashMap<String, changes::Touch>,
    store: &Store,
    searcher: &Searcher,
    writer: &IndexWriter,
    plan: &mut Plan,
    report: &mut UpdateReport,
) -> Result<(), IndexError> {
    let f = store.fields;
    for (id, touch) in touches {
        let key = document_key(&id, None);
        let existing = store.stored_created(searcher, &key)?;
        writer.delete_term(Term::from_field_text(f.key, &key));
        let Some(folder) = touch.folder else {
            if existing.is_some() {
                report.drafts_removed += 1;
            }
            continue;
        };
        if let Err(reason) = crate::deposit::check_id(&id) {
            plan.skipped.push(Skipped {
                id,
                version: None,
                reason,
            });
            continue;
        }
        let created = existing.or(touch.added).unwrap_or(touch.updated);
        plan.jobs.push(Job {
            info: VersionInfo {
                id,
                version: None,
                commit: tip,
                blob: Oid::zero(),
                created,
                updated: touch.updated,
            },
            folder,
        });
    }
    Ok(())
}

/// Plans every record version not in `indexed`.
fn plan_records(
    repo: &Repository,
    indexed: &HashSet<String>,
    plan: &mut Plan,
    report: &mut UpdateReport,
) -> Result<(), IndexError> {
    let records = list_records(repo)?;
    // Group by commit, so each commit's (large) deposits/ tree is read once.
    let mut by_commit: BTreeMap<Oid, Vec<(String, u32, i64)>> = BTreeMap::new();
    for versions in records.values() {
        let Some(first) = versions.first() else {
            continue;
        };
        let created = repo.find_commit(first.commit)?.time().seconds();
        for record in versions {
            if !indexed.contains(&document_key(&record.id, Some(record.version))) {
                by_commit.entry(record.commit).or_default().push((
                    record.id.clone(),
                    record.version,
                    created,
                ));
            }
        }
    }
    let _ = report;
    for (commit_id, wanted) in by_commit {
        let commit = repo.find_commit(commit_id)?;
        let updated = commit.time().seconds();
        let tree = deposits_tree(repo, &commit)?;
        for (id, version, created) in wanted {
            let folder = match &tree {
                Some(tree) => tree.folder(&id)?,
                None => None,
            };
            let Some(folder) = folder else {
                plan.skipped.push(Skipped {
                    reason: format!(
                        "record {id} v{version}: the tagged commit {} has no {}/",
                        crate::archive::short(commit_id),
                        crate::deposit::folder(&id)
                    ),
                    id,
                    version: Some(version),
                });
                continue;
            };
            plan.jobs.push(Job {
                info: VersionInfo {
                    id,
                    version: Some(version),
                    commit: commit_id,
                    blob: Oid::zero(),
                    created,
                    updated,
                },
                folder,
            });
        }
    }
    Ok(())
}

/// Reads, parses and indexes the planned versions, on every core for large plans.
fn index_jobs(
    repo: &Repository,
    store: &Store,
    writer: &IndexWriter,
    jobs: &[Job],
) -> Result<Vec<Skipped>, IndexError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len().div_ceil(256))
        .max(1);
    let next = AtomicUsize::new(0);
    let skipped = Mutex::new(Vec::new());
    let work = |repo: &Repository| -> Result<(), IndexError> {
        let mut experiments: HashMap<(Oid, SchemaRef), Option<String>> = HashMap::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(job) = jobs.get(i) else {
                return Ok(());
            };
            match read_version(repo, job, &mut experiments, &store.fields) {
                Ok(doc) => {
                    store.at(writer.add_document(doc))?;
                }
                Err(reason) => skipped.lock().unwrap().push(Skipped {
                    id: job.info.id.clone(),
                    version: job.info.version,
                    reason,
                }),
            }
        }
    };
    if threads == 1 {
        work(repo)?;
    } else {
        let path = repo.path().to_path_buf();
        std::thread::scope(|scope| -> Result<(), IndexError> {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    let path = &path;
                    let work = &work;
                    scope.spawn(move || -> Result<(), IndexError> {
                        let repo = Repository::open(path)?;
                        work(&repo)
                    })
                })
                .collect();
            for handle in handles {
                handle.join().expect("an indexing thread panicked")?;
            }
            Ok(())
        })?;
    }
    Ok(skipped.into_inner().unwrap())
}

/// One version's document, or why it cannot be indexed.
fn read_version(
    repo: &Repository,
    job: &Job,
    experiments: &mut HashMap<(Oid, SchemaRef), Option<String>>,
    f: &Fields,
) -> Result<TantivyDocument, String> {
    let path = crate::deposit::metadata_path(&job.info.id);
    let what = |e: git2::Error| format!("{path}: cannot read it: {}", e.message());
    let folder = repo.find_tree(job.folder).map_err(what)?;
    let Some(entry) = folder.get_name("deposit.json") else {
        return Err(format!(
            "{}/ has no deposit.json",
            crate::deposit::folder(&job.info.id)
        ));
    };
    let blob = repo.find_blob(entry.id()).map_err(what)?;
    let deposit = parse_deposit(&path, blob.content()).map_err(|problems| {
        problems
            .first()
            .map_or_else(|| format!("{path}: unreadable"), ToString::to_string)
    })?;
    let sref = deposit
        .value
        .get("$schema")
        .and_then(Value::as_str)
        .and_then(parse_schema_ref);
    let experiment = match &sref {
        Some(sref) => experiments
            .entry((job.info.commit, sref.clone()))
            .or_insert_with(|| {
                GitTree::at_commit(repo, job.info.commit)
                    .ok()
                    .and_then(|tree| tree.read(&sref.path()).ok().flatten())
                    .and_then(|bytes| crate::json::from_bytes(&bytes).ok())
                    .and_then(|schema| schema_experiment(&schema))
            })
            .clone(),
        None => None,
    };
    let mut info = job.info.clone();
    info.blob = entry.id();
    Ok(make_document(
        f,
        &info,
        &deposit.value,
        sref.as_ref(),
        experiment.as_deref(),
    ))
}
