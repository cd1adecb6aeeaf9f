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
//! This module returns data and never prints; `cli/search.rs` renders it.

mod changes;
pub mod extract;
mod fields;
mod query;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use git2::{Oid, Repository};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tantivy::collector::{Count, DocSetCollector, FacetCollector, TopDocs};
use tantivy::directory::error::LockError;
use tantivy::query::{
    BooleanQuery, BoostQuery, ConstScoreQuery, Occur, Query, QueryParser, TermQuery,
};
use tantivy::schema::{IndexRecordOption, Term, Value as _};
use tantivy::{
    Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, TantivyError,
};

use crate::archive::GitTree;
use crate::deposit::{parse_schema_ref, SchemaRef};
use crate::record::list_records;
use crate::schema::{CompiledSchema, SchemaRegistry};
use crate::validate::parse_deposit;

use changes::{deposits_tree, drafts_tip, history, records_digest, DraftsTip};
use extract::{located_strings, schema_experiment};
use fields::{
    build_schema, document_key, make_document, normalise_title, register_tokenizers, rfc3339,
    text_analyzer, Fields, VersionInfo, FORMAT,
};
pub use query::QueryError;
use query::{highlight, snippet, Compiler, ID_BOOST, KEYWORDS_BOOST, PEOPLE_BOOST, TITLE_BOOST};

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

/// Memory and threads for a writer: tantivy's own threads tokenize and build segments
/// while ours read git and parse JSON. A generous budget means few segments, so a
/// full build needs few merges.
fn full_writer_options() -> tantivy::indexer::IndexWriterOptions {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    tantivy::indexer::IndexWriterOptions::builder()
        .num_worker_threads(threads)
        .memory_budget_per_thread(256 << 20)
        .num_merge_threads(1)
        .build()
}

/// One thread and a small budget (tantivy sizes its term table from it): enough for
/// the documents of a push.
fn update_writer_options() -> tantivy::indexer::IndexWriterOptions {
    tantivy::indexer::IndexWriterOptions::builder()
        .num_worker_threads(1)
        .memory_budget_per_thread(20 << 20)
        .num_merge_threads(1)
        .build()
}

/// An opened index and its fields.
struct Store {
    dir: PathBuf,
    index: Index,
    fields: Fields,
}

impl Store {
    /// Opens the index if it exists in this format.
    fn open(dir: &Path) -> Result<Option<Store>, IndexError> {
        if !dir.join("meta.json").is_file() {
            return Ok(None);
        }
        let Ok(index) = Index::open_in_dir(dir) else {
            return Ok(None);
        };
        let Some(fields) = Fields::of(&index.schema()) else {
            return Ok(None);
        };
        register_tokenizers(&index);
        let store = Store {
            dir: dir.to_path_buf(),
            index,
            fields,
        };
        Ok(Some(store))
    }

    /// Opens the index, or creates it afresh when it is missing, unreadable or of
    /// another format.
    fn open_or_create(dir: &Path) -> Result<Store, IndexError> {
        if let Some(store) = Store::open(dir)? {
            if store.payload()?.is_none_or(|p| p.format == FORMAT) {
                return Ok(store);
            }
        }
        let io = |source| IndexError::Io {
            path: dir.to_path_buf(),
            source,
        };
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(io)?;
        }
        std::fs::create_dir_all(dir).map_err(io)?;
        let index =
            Index::create_in_dir(dir, build_schema()).map_err(|source| IndexError::Tantivy {
                path: dir.to_path_buf(),
                source,
            })?;
        register_tokenizers(&index);
        let fields = Fields::of(&index.schema()).expect("our own schema");
        Ok(Store {
            dir: dir.to_path_buf(),
            index,
            fields,
        })
    }

    fn at<T>(&self, result: Result<T, TantivyError>) -> Result<T, IndexError> {
        result.map_err(|source| IndexError::Tantivy {
            path: self.dir.clone(),
            source,
        })
    }

    fn payload(&self) -> Result<Option<Payload>, IndexError> {
        let metas = self.at(self.index.load_metas())?;
        Ok(metas
            .payload
            .and_then(|text| serde_json::from_str(&text).ok()))
    }

    /// Takes the writer lock, waiting for another process that holds it.
    fn writer(
        &self,
        options: tantivy::indexer::IndexWriterOptions,
    ) -> Result<IndexWriter, IndexError> {
        let started = Instant::now();
        loop {
            match self.index.writer_with_options(options.clone()) {
                Ok(writer) => return Ok(writer),
                Err(TantivyError::LockFailure(LockError::LockBusy, _))
                    if started.elapsed() < LOCK_WAIT =>
                {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(TantivyError::LockFailure(LockError::LockBusy, _)) => {
                    return Err(IndexError::Busy {
                        path: self.dir.clone(),
                    })
                }
                Err(e) => return self.at(Err(e)),
            }
        }
    }

    fn reader(&self) -> Result<IndexReader, IndexError> {
        self.at(self
            .index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into())
    }

    fn searcher(&self) -> Result<Searcher, IndexError> {
        Ok(self.reader()?.searcher())
    }

    fn documents(&self) -> Result<u64, IndexError> {
        Ok(self.searcher()?.num_docs())
    }

    /// The `created` time stored for a document key.
    fn stored_created(&self, searcher: &Searcher, key: &str) -> Result<Option<i64>, IndexError> {
        let query = TermQuery::new(
            Term::from_field_text(self.fields.key, key),
            IndexRecordOption::Basic,
        );
        let top = self.at(searcher.search(&query, &TopDocs::with_limit(1)))?;
        let Some((_, address)) = top.first() else {
            return Ok(None);
        };
        let doc: TantivyDocument = self.at(searcher.doc(*address))?;
        Ok(doc
            .get_first(self.fields.created)
            .and_then(|v| v.as_datetime())
            .map(|d| d.into_timestamp_secs()))
    }

    /// The keys of every record version in the index.
    fn record_keys(&self, searcher: &Searcher) -> Result<HashSet<String>, IndexError> {
        let query = TermQuery::new(
            Term::from_field_text(self.fields.status, "published"),
            IndexRecordOption::Basic,
        );
        let addresses = self.at(searcher.search(&query, &DocSetCollector))?;
        let mut keys = HashSet::new();
        for address in addresses {
            let doc: TantivyDocument = self.at(searcher.doc(address))?;
            if let Some(key) = doc.get_first(self.fields.key).and_then(|v| v.as_str()) {
                keys.insert(key.to_string());
            }
        }
        Ok(keys)
    }
}

// ---------------------------------------------------------------------------------------
// Searching

/// Draft or published record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Draft,
    Published,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Published => "published",
        }
    }
}

/// What to look for.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub query: String,
    /// A schema name (`analysis`) or name and version (`analysis/1.0.0`).
    pub schema: Option<String>,
    pub experiment: Option<String>,
    pub status: Option<Status>,
    /// Restrict unqualified words to this deposit path (dotted or a JSON pointer) and
    /// the fields below it.
    pub field: Option<String>,
    pub limit: usize,
    pub facets: bool,
}

/// What was found.
#[derive(Debug, Clone, Serialize)]
pub struct SearchResults {
    pub query: String,
    /// All matching documents (the hits are the best `limit` of them).
    pub total: usize,
    pub hits: Vec<Hit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facets: Option<Facets>,
    /// The catch-up update that ran before searching, if the refs had moved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refreshed: Option<UpdateReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub id: String,
    /// The record version; `None` for a draft.
    pub version: Option<u32>,
    pub status: Status,
    pub title: String,
    pub schema: Option<String>,
    pub experiment: Option<String>,
    pub score: f32,
    pub commit: String,
    /// RFC 3339, UTC.
    pub created: String,
    pub updated: String,
    pub people: Vec<String>,
    pub keywords: Vec<String>,
    /// The deposit's strings that matched, best first (at most three).
    pub matches: Vec<FieldMatch>,
}

/// One string of a deposit that matched the query.
#[derive(Debug, Clone, Serialize)]
pub struct FieldMatch {
    /// JSON pointer in the deposit.
    pub pointer: String,
    /// The field's titles from its schema (`Basic Information › Keywords #1`), empty
    /// when the schema gives none.
    pub title_path: String,
    /// The string, or the part of it around the first match.
    pub snippet: String,
    /// Byte ranges of `snippet` (UTF-8) that matched, `[start, end)`.
    pub highlights: Vec<(usize, usize)>,
}

/// Counts of matching documents per value.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Facets {
    pub schema: Vec<FacetCount>,
    pub experiment: Vec<FacetCount>,
    pub status: Vec<FacetCount>,
    pub year: Vec<FacetCount>,
    pub keyword: Vec<FacetCount>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FacetCount {
    pub value: String,
    pub count: u64,
}

/// How much of a long string a snippet shows, in bytes.
const SNIPPET_WIDTH: usize = 160;
/// How many matching strings a hit reports.
const MATCHES_PER_HIT: usize = 3;
/// How much an exact title match adds to a hit's score.
const EXACT_TITLE_BOOST: f32 = 10.0;

/// Catches up with the refs, then searches.
pub fn search(repo: &Repository, request: &SearchRequest) -> Result<SearchResults, IndexError> {
    let (refreshed, current) = catch_up(repo)?;
    let store = match current {
        Some(store) => store,
        None => {
            let dir = index_dir(repo);
            Store::open(&dir)?.ok_or_else(|| IndexError::Io {
                path: dir.clone(),
                source: std::io::Error::other("the index could not be opened after updating it"),
            })?
        }
    };
    let f = store.fields;
    let searcher = store.searcher()?;

    let mut parser = QueryParser::new(
        store.index.schema(),
        vec![f.id, f.title, f.keywords, f.people, f.text],
        store.index.tokenizers().clone(),
    );
    parser.set_field_boost(f.id, ID_BOOST);
    parser.set_field_boost(f.title, TITLE_BOOST);
    parser.set_field_boost(f.keywords, KEYWORDS_BOOST);
    parser.set_field_boost(f.people, PEOPLE_BOOST);

    let scope_root = request.field.as_deref().map(|p| {
        p.trim_start_matches('/')
            .replace('/', ".")
            .trim_start_matches("data.")
            .to_string()
    });
    let scope = match &scope_root {
        Some(root) => Some(store.at(json_paths_under(&searcher, f.data, root))?),
        None => None,
    };
    let compiler = Compiler {
        parser: &parser,
        fields: &f,
        scope,
        scope_root: scope_root.clone(),
    };
    let compiled = compiler.compile(&request.query)?;

    let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, compiled.query)];
    let plain = normalise_title(&request.query.replace('"', ""));
    if !plain.is_empty() {
        let exact = TermQuery::new(
            Term::from_field_text(f.title_exact, &plain),
            IndexRecordOption::Basic,
        );
        clauses.push((
            Occur::Should,
            Box::new(BoostQuery::new(Box::new(exact), EXACT_TITLE_BOOST)),
        ));
    }
    let filter = |field, value: &str| -> (Occur, Box<dyn Query>) {
        let term = TermQuery::new(
            Term::from_field_text(field, &value.to_lowercase()),
            IndexRecordOption::Basic,
        );
        (
            Occur::Must,
            Box::new(ConstScoreQuery::new(Box::new(term), 0.0)),
        )
    };
    if let Some(status) = request.status {
        clauses.push(filter(f.status, status.as_str()));
    }
    if let Some(experiment) = &request.experiment {
        clauses.push(filter(f.experiment, experiment));
    }
    if let Some(schema) = &request.schema {
        match parse_schema_ref(schema) {
            Some(sref) => clauses.push(filter(f.schema, &sref.to_string())),
            None => clauses.push(filter(f.schema_name, schema)),
        }
    }
    let query = BooleanQuery::new(clauses);

    let limit = request.limit.max(1);
    let (top, total, facet_counts) = if request.facets {
        let mut facets = FacetCollector::for_field("facets");
        for dim in ["schema", "experiment", "status", "year", "keyword"] {
            facets.add_facet(format!("/{dim}").as_str());
        }
        let (top, total, counts) =
            store.at(searcher.search(&query, &(TopDocs::with_limit(limit), Count, facets)))?;
        (top, total, Some(counts))
    } else {
        let (top, total) =
            store.at(searcher.search(&query, &(TopDocs::with_limit(limit), Count)))?;
        (top, total, None)
    };

    let mut registry = SchemaRegistry::for_display();
    let mut schemas: HashMap<(String, String), Option<Arc<CompiledSchema>>> = HashMap::new();
    let mut analyzer = text_analyzer();
    let mut hits = Vec::with_capacity(top.len());
    for (score, address) in top {
        let doc: TantivyDocument = store.at(searcher.doc(address))?;
        let text = |field| {
            doc.get_first(field)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let all = |field| -> Vec<String> {
            doc.get_all(field)
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        };
        let date = |field| {
            doc.get_first(field)
                .and_then(|v| v.as_datetime())
                .map(|d| rfc3339(d.into_timestamp_secs()))
                .unwrap_or_default()
        };
        let version = doc
            .get_first(f.version)
            .and_then(|v| v.as_u64())
            .filter(|v| *v > 0)
            .map(|v| v as u32);
        let commit = text(f.commit).unwrap_or_default();
        let schema = text(f.schema);
        let matches = match (
            text(f.blob).and_then(|b| Oid::from_str(&b).ok()),
            compiled.needles.is_empty(),
        ) {
            (Some(blob), false) => {
                let compiled_schema = schema.as_ref().and_then(|s| {
                    schemas
                        .entry((commit.clone(), s.clone()))
                        .or_insert_with(|| load_schema(repo, &mut registry, &commit, s))
                        .clone()
                });
                matches_in(
                    repo,
                    blob,
                    &compiled.needles,
                    compiled_schema.as_deref(),
                    &mut analyzer,
                )
            }
            _ => Vec::new(),
        };
        hits.push(Hit {
            id: text(f.id).unwrap_or_default(),
            version,
            status: if version.is_some() {
                Status::Published
            } else {
                Status::Draft
            },
            title: text(f.title).unwrap_or_default(),
            schema,
            experiment: text(f.experiment),
            score,
            commit,
            created: date(f.created),
            updated: date(f.updated),
            people: all(f.people),
            keywords: all(f.keywords),
            matches,
        });
    }

    let facets = facet_counts.map(|counts| {
        let dim = |name: &str| -> Vec<FacetCount> {
            let mut values: Vec<FacetCount> = counts
                .get(format!("/{name}").as_str())
                .map(|(facet, count)| FacetCount {
                    value: facet
                        .to_path()
                        .last()
                        .copied()
                        .unwrap_or_default()
                        .to_string(),
                    count,
                })
                .collect();
            values.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
            values
        };
        Facets {
            schema: dim("schema"),
            experiment: dim("experiment"),
            status: dim("status"),
            year: dim("year"),
            keyword: dim("keyword"),
        }
    });

    Ok(SearchResults {
        query: request.query.clone(),
        total,
        hits,
        facets,
        refreshed,
    })
}

fn load_schema(
    repo: &Repository,
    registry: &mut SchemaRegistry,
    commit: &str,
    schema: &str,
) -> Option<Arc<CompiledSchema>> {
    let sref = parse_schema_ref(schema)?;
    let tree = GitTree::at_commit(repo, Oid::from_str(commit).ok()?).ok()?;
    registry.compile(&tree, &sref).ok().flatten()
}

/// The strings of a deposit version that match the query's words, best first.
fn matches_in(
    repo: &Repository,
    blob: Oid,
    needles: &[query::Needle],
    schema: Option<&CompiledSchema>,
    analyzer: &mut tantivy::tokenizer::TextAnalyzer,
) -> Vec<FieldMatch> {
    let Ok(blob) = repo.find_blob(blob) else {
        return Vec::new();
    };
    let Ok(deposit) = crate::json::from_bytes(blob.content()) else {
        return Vec::new();
    };
    let mut found: Vec<(usize, usize, FieldMatch)> = Vec::new();
    for (order, located) in located_strings(&deposit).into_iter().enumerate() {
        let (ranges, distinct) = highlight(analyzer, located.text, &located.path, needles);
        if distinct == 0 {
            continue;
        }
        let (text, highlights) = snippet(located.text, &ranges, SNIPPET_WIDTH);
        found.push((
            distinct,
            order,
            FieldMatch {
                title_path: schema
                    .map(|s| s.title_path(&located.pointer))
                    .unwrap_or_default(),
                pointer: located.pointer,
                snippet: text,
                highlights,
            },
        ));
    }
    found.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    found
        .into_iter()
        .take(MATCHES_PER_HIT)
        .map(|(_, _, m)| m)
        .collect()
}

/// The deposit paths in the index at `root` or below it (`basic_info` finds
/// `basic_info.keywords`, `basic_info.people_info.name`, ...), read from the term
/// dictionary of the JSON field: one seek per distinct path, not one per term.
fn json_paths_under(
    searcher: &Searcher,
    data: tantivy::schema::Field,
    root: &str,
) -> Result<Vec<String>, TantivyError> {
    const SEP: u8 = 1; // between path segments
    const END: u8 = 0; // after the path
    let root_bytes: Vec<u8> = root
        .split('.')
        .collect::<Vec<_>>()
        .join("\u{1}")
        .into_bytes();
    let mut paths = std::collections::BTreeSet::new();
    for segment in searcher.segment_readers() {
        let inverted = segment.inverted_index(data)?;
        let terms = inverted.terms();
        let mut from = root_bytes.clone();
        loop {
            let mut stream = terms.range().ge(&from).into_stream()?;
            if !stream.advance() {
                break;
            }
            let key = stream.key();
            let Some(end) = key.iter().position(|b| *b == END) else {
                break;
            };
            let path = &key[..end];
            let inside = path == root_bytes.as_slice()
                || (path.starts_with(&root_bytes) && path.get(root_bytes.len()) == Some(&SEP));
            if !inside {
                break;
            }
            let dotted: String = String::from_utf8_lossy(path).replace('\u{1}', ".");
            paths.insert(dotted);
            // Skip every term of this path: the next key is at least `path \0 \xff`.
            from = path.to_vec();
            from.extend_from_slice(&[END, 0xff]);
        }
    }
    if paths.is_empty() {
        paths.insert(root.to_string());
    }
    Ok(paths.into_iter().collect())
}
