//! The static archive site: `capsule build` turns the published records of an archive
//! into a folder of static pages, a JSON API and a search index.
//!
//! ```text
//! plan     record tags + the build revision's deposits/ tree -> one input per record,
//!          each with a fingerprint (its tags and its folder's tree id)
//! records  (parallel) read the versions, drop what a public build may not show,
//!          render landing, version and diff pages, per-version API files, file copies
//!          (under `files/`, served as downloads: see [`downloads`])
//! pages    home, listings, facets, schemas, search, 404, API index, sitemap, feed
//! search   a chunked index the browser loads on demand (`search`)
//! write    stage beside the target, then swap in (full) or move changed files (incremental)
//! ```
//!
//! What a public build leaves out, everywhere (pages, API, search, sitemap, feed):
//! drafts, deposits whose `_access.deposit-read` does not grant `*` or `public` (as
//! published, and as they stand on the branch now), `_access` lists, and reviews marked
//! internal with their comments. An internal build (`--drafts`) shows all of it and
//! says so on every page.
//!
//! This module never prints: progress goes through [`Progress`], the outcome through
//! [`BuildReport`].

mod api;
pub mod downloads;
mod fields;
pub mod model;
mod pages;
mod paging;
mod records;
mod render;
mod schemas;
pub mod search;
mod state;
mod theme;
mod util;
mod write;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use git2::{Oid, Repository};
use serde::Serialize;

use crate::archive::GitTree;
use crate::record::list_records;
use crate::settings::Settings;

use model::{RecordSummary, SiteView};
use records::{RecordInput, RecordOut, Shared, Worker};
use render::Renderer;
use search::{SearchDoc, SearchStats};
use state::{hidden_key, RecordState, State, Totals};
use util::Fingerprint;
use write::Output;

pub use write::MANIFEST as MANIFEST_FILE;

/// Why a build failed. Nothing of the previous site was changed.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("template error in {0}")]
    Template(String),
    #[error("{0}")]
    Output(String),
    #[error("{0}")]
    Input(String),
}

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The revision whose reviews, schemas, theme and settings the site uses (and
    /// whose drafts an internal build shows). Default: the archive's default branch.
    pub rev: Option<String>,
    pub out: PathBuf,
    /// An internal site: drafts, restricted deposits and internal reviews included.
    pub drafts: bool,
    /// Overrides `site.base_url` and `archive.base_url`.
    pub base_url: Option<String>,
    /// Reuse the previous build in `out` where its inputs did not change.
    pub incremental: bool,
}

/// Where a long build reports how far it got (the CLI draws a bar; tests ignore it).
pub trait Progress: Sync {
    fn begin(&self, _total: u64) {}
    fn advance(&self, _n: u64) {}
    fn end(&self) {}
}

/// Progress that goes nowhere.
pub struct Quiet;
impl Progress for Quiet {}

/// What a build did.
#[derive(Debug, Clone, Serialize)]
pub struct BuildReport {
    pub out: PathBuf,
    pub rev: String,
    pub internal: bool,
    pub incremental: bool,
    /// Records (and drafts) on the site.
    pub records: usize,
    pub drafts: usize,
    /// Records rendered in this build (the rest were unchanged).
    pub rendered_records: usize,
    /// Deposits with record tags that this build may not show.
    pub excluded_records: usize,
    /// Files written by this build, and their size.
    pub files_written: usize,
    pub bytes_written: u64,
    /// Pages (HTML) and files in the whole site, and its size.
    pub pages: usize,
    pub files: usize,
    pub bytes: u64,
    pub search: Option<SearchStats>,
    pub theme_overrides: Vec<String>,
    pub warnings: Vec<String>,
    #[serde(skip)]
    pub elapsed: Duration,
    /// The whole build and each of its steps, for `--json` and the benchmarks.
    pub seconds: f64,
    pub phases: Phases,
}

/// How long each step of a build took, in order; serialised as a map from the step's
/// name to milliseconds.
#[derive(Debug, Clone)]
pub struct Phases {
    last: Instant,
    steps: Vec<(&'static str, Duration)>,
}

impl Phases {
    fn start() -> Phases {
        Phases {
            last: Instant::now(),
            steps: Vec::new(),
        }
    }

    /// Ends the step called `name`, which began where the previous one ended.
    fn end(&mut self, name: &'static str) {
        let now = Instant::now();
        self.steps.push((name, now - self.last));
        self.last = now;
    }
}

impl Serialize for Phases {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(
            self.steps
                .iter()
                .map(|(name, d)| (name, (d.as_secs_f64() * 10_000.0).round() / 10.0)),
        )
    }
}

/// Whether a deposit id is the name of a file the site writes beside the records'
/// folders (`api/records/index-2.json`, a page of the record list).
fn is_reserved_id(id: &str) -> bool {
    matches!(id, "index.html" | "index.json")
        || id
            .strip_prefix("index-")
            .and_then(|rest| rest.strip_suffix(".json"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Builds the site of the repository at `repo_path` (a clone or a bare repository).
pub fn build(
    repo_path: &Path,
    options: &BuildOptions,
    progress: &dyn Progress,
) -> Result<BuildReport, SiteError> {
    let started = Instant::now();
    let mut phases = Phases::start();
    // The previous build's manifest is parsed while the archive is read: at 10k
    // records it is several megabytes of JSON, a good part of a rebuild.
    let pending_manifest = options.incremental.then(|| {
        let out = options.out.clone();
        std::thread::spawn(move || State::read(&out))
    });
    let repo = Repository::open(repo_path)?;
    let repo_path = repo.path().to_path_buf();
    let (rev, rev_name) = resolve_rev(&repo, options.rev.as_deref())?;
    let tree = GitTree::at_commit(&repo, rev)?;
    let settings = match tree.read("capsule.toml")? {
        Some(bytes) => Settings::parse(&String::from_utf8_lossy(&bytes))
            .map_err(|e| SiteError::Input(format!("capsule.toml at {rev_name}: {e}")))?,
        None => Settings::default(),
    };
    let internal = options.drafts;
    let base_url = options
        .base_url
        .clone()
        .or_else(|| settings.site.base_url.clone())
        .unwrap_or_else(|| settings.archive.base_url.clone());
    let limits = paging::Limits::new(settings.site.per_page.unwrap_or(50));
    let mut overrides = Vec::new();
    for folder in ["templates/site", "site"] {
        collect_files(&tree, folder, &mut overrides)?;
    }
    let theme = theme::Theme::with_overrides(overrides).map_err(SiteError::Input)?;
    let site_title = settings
        .site
        .title
        .clone()
        .unwrap_or_else(|| settings.archive.name.clone());

    // Plan: one input per record (and, internally, per deposit on the branch).
    let mut warnings = Vec::new();
    let tags = list_records(&repo)?;
    let folders = deposit_folders(&repo, &tree)?;
    let mut inputs: BTreeMap<String, RecordInput> = BTreeMap::new();
    for (id, versions) in &tags {
        if is_reserved_id(id) {
            warnings.push(format!(
                "record {id} is left out: its id is a file name the site itself uses"
            ));
            continue;
        }
        inputs.insert(
            id.clone(),
            RecordInput {
                id: id.clone(),
                tags: versions
                    .iter()
                    .map(|t| (t.version, t.tag.unwrap_or(t.commit), t.commit))
                    .collect(),
                folder: folders.get(id).copied(),
                draft: internal,
            },
        );
    }
    if internal {
        for (id, folder) in &folders {
            if is_reserved_id(id) {
                continue;
            }
            inputs.entry(id.clone()).or_insert_with(|| RecordInput {
                id: id.clone(),
                tags: Vec::new(),
                folder: Some(*folder),
                draft: true,
            });
        }
    }
    // Every record's state is held until the end: what only planning needed goes now.
    drop((tags, folders));
    let global = {
        let mut f = Fingerprint::new();
        f.add(env!("CARGO_PKG_VERSION"))
            .add(theme.fingerprint())
            .add(&base_url)
            .add(&site_title)
            .add(&settings.archive.description)
            .add(serde_json::to_vec(&limits).expect("serialises"))
            .add([internal as u8]);
        f.finish()
    };
    let key_of = |input: &RecordInput| {
        let mut f = Fingerprint::new();
        f.add(&global).add(&input.id);
        for (v, tag, commit) in &input.tags {
            f.add(v.to_le_bytes())
                .add(tag.as_bytes())
                .add(commit.as_bytes());
        }
        f.add(input.folder.map(|o| o.to_string()).unwrap_or_default());
        f.finish()
    };
    phases.end("read archive");
    let previous = pending_manifest
        .and_then(|pending| pending.join().ok().flatten())
        .filter(|m| m.global == global);
    let incremental = previous.is_some();
    let previous = previous.unwrap_or_default();
    let keys: BTreeMap<String, String> =
        inputs.values().map(|i| (i.id.clone(), key_of(i))).collect();
    let previous_state = |id: &str| {
        previous
            .records
            .get(id)
            .or_else(|| previous.records.get(&hidden_key(id)))
    };
    let changed: Vec<&RecordInput> = inputs
        .values()
        .filter(|i| !incremental || previous_state(&i.id).is_none_or(|s| s.key != keys[&i.id]))
        .collect();
    let removed: Vec<String> = {
        let known: BTreeSet<String> = inputs
            .keys()
            .flat_map(|id| [id.clone(), hidden_key(id)])
            .collect();
        previous
            .records
            .keys()
            .filter(|id| !known.contains(*id) && !id.starts_with('~'))
            .cloned()
            .collect()
    };

    phases.end("previous build");
    let output = Output::prepare(&options.out, incremental)?;
    let mut renderer = Renderer::new(
        &theme,
        SiteView {
            title: site_title.clone(),
            description: settings.archive.description.clone(),
            internal,
            base_url: base_url.clone(),
            records: 0,
        },
    )?;
    let shared = Shared {
        renderer: &renderer,
        output: &output,
        internal,
        base_url: base_url.clone(),
        archive_name: site_title.clone(),
    };

    // Records, in parallel.
    progress.begin(changed.len() as u64);
    let rendered_records = changed.len();
    let mut states: BTreeMap<String, RecordState> = BTreeMap::new();
    // The search documents of the records rendered. A full build numbers documents
    // by id (the order results are merged in) and hands each record's terms straight
    // to the index's postings; an incremental one keeps them to patch the previous
    // index.
    let mut fresh: BTreeMap<String, SearchDoc> = BTreeMap::new();
    let mut postings = search::Postings::default();
    render_records(
        &repo_path,
        &shared,
        &changed,
        rev,
        progress,
        &mut |id, result| {
            let key = keys[&id].clone();
            let state = match result {
                Some(out) => {
                    let doc = if incremental {
                        fresh.insert(id.clone(), out.search);
                        None
                    } else {
                        Some(postings.add(out.search.terms))
                    };
                    RecordState {
                        key,
                        doc,
                        commit: out.commit,
                        summary: Some(out.summary),
                        versions: out.versions,
                    }
                }
                None => RecordState {
                    key,
                    doc: None,
                    commit: String::new(),
                    summary: None,
                    versions: Vec::new(),
                },
            };
            states.insert(id, state);
        },
    )?;
    progress.end();
    phases.end("records");

    // Unchanged records keep their state: moved out of the previous manifest, which
    // still holds those of the records that changed or went away.
    let mut previous = previous;
    for id in inputs.keys() {
        if !states.contains_key(id) {
            let old = match previous.records.remove(id) {
                Some(old) => Some(old),
                None => previous.records.remove(&hidden_key(id)),
            };
            if let Some(old) = old {
                states.insert(id.clone(), old);
            }
        }
    }

    // Search documents get numbers: by id in a full build; kept, and new ones
    // appended, in an incremental one.
    let search_version = {
        let mut f = Fingerprint::new();
        for (id, key) in &keys {
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
        let (stats, keys) = search::write_index(&output, postings, rows, &search_version)?;
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
                    old_search_doc(&repo, id, o)?
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
            &output,
            &options.out,
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

    phases.end("search index");
    // Pages made of many records.
    let summaries: Vec<&RecordSummary> =
        states.values().filter_map(|s| s.summary.as_ref()).collect();
    let schema_list = schemas::schema_views(&tree);
    let schema_titles: BTreeMap<String, String> = schema_list
        .iter()
        .map(|(v, _)| (v.name.clone(), v.title.clone()))
        .collect();
    // The feed's 50 newest versions, chosen among borrowed ones.
    let mut feed: Vec<(&str, u32, &str, &str)> = Vec::new();
    for (id, state) in &states {
        if let Some(summary) = &state.summary {
            if summary.draft && state.versions.is_empty() {
                continue;
            }
            for (v, date) in &state.versions {
                feed.push((id, *v, date, &summary.title));
            }
        }
    }
    feed.sort_unstable_by(|a, b| b.2.cmp(a.2).then(a.0.cmp(b.0)).then(b.1.cmp(&a.1)));
    let feed: Vec<(String, u32, String, String)> = feed
        .into_iter()
        .take(50)
        .map(|(id, v, date, title)| (id.to_string(), v, date.to_string(), title.to_string()))
        .collect();
    let views: Vec<model::SchemaView> = schema_list.iter().map(|(v, _)| v.clone()).collect();
    renderer.site.records = summaries.len();
    let mut page_keys = BTreeMap::new();
    render_pages(&renderer, &output, |queue| {
        pages::plan(
            &summaries,
            &views,
            &schema_titles,
            limits,
            &base_url,
            &site_title,
            &feed,
            &mut |page| {
                if !incremental || previous.pages.get(&page.path) != Some(&page.key) {
                    queue(page.path.clone(), page.render)?;
                }
                page_keys.insert(page.path, page.key);
                Ok(())
            },
        )
    })?;
    if !incremental {
        for (view, compiled) in &schema_list {
            let json = api::schema(&base_url, compiled);
            output.write(
                &format!("api/schemas/{}/{}/index.json", view.name, view.version),
                &api::to_bytes(&json),
            )?;
        }
        for (name, bytes) in &theme.assets {
            if write::is_safe_relative(name) {
                output.write(&format!("assets/{name}"), bytes)?;
            }
        }
    }

    phases.end("pages");
    // What to delete in an incremental build: records that changed or went away, and
    // pages that no longer exist.
    let mut removals = Vec::new();
    if incremental {
        for id in changed.iter().map(|i| &i.id).chain(removed.iter()) {
            for folder in [
                "records",
                "api/records",
                "drafts",
                "api/deposits",
                downloads::FOLDER,
            ] {
                removals.push(format!("{folder}/{id}"));
            }
        }
        for path in previous.pages.keys() {
            if !page_keys.contains_key(path) {
                removals.push(path.clone());
            }
        }
    }
    let records_on_site = summaries.len();
    let drafts = summaries.iter().filter(|s| s.draft).count();
    let excluded = states.values().filter(|s| s.summary.is_none()).count();
    let pages_count = page_keys.len()
        + states
            .values()
            .filter_map(|s| s.summary.as_ref())
            .map(|s| 1 + s.version as usize)
            .sum::<usize>();
    let files_written = output.files();
    let bytes_written = output.bytes();
    let totals = if incremental {
        Totals {
            pages: pages_count,
            files: (previous.totals.files as i64 + files_written as i64) as usize,
            bytes: previous.totals.bytes,
        }
    } else {
        Totals {
            pages: pages_count,
            files: files_written + 1,
            bytes: bytes_written,
        }
    };
    let states: BTreeMap<String, RecordState> = states
        .into_iter()
        .map(|(id, state)| match state.summary {
            Some(_) => (id, state),
            None => (hidden_key(&id), state),
        })
        .collect();
    let previous_parts = previous.take_parts();
    let manifest = State {
        global,
        rev: rev.to_string(),
        records: states,
        pages: page_keys,
        search_shards: shards,
        search_docs: doc_count,
        totals: totals.clone(),
        ..State::default()
    };
    removals.extend(manifest.write(&output, &previous_parts)?);
    // Freeing every record's state takes a while; nothing waits for it.
    std::thread::spawn(move || drop((manifest, previous)));
    phases.end("manifest");
    output.commit(&removals)?;
    phases.end("commit");
    Ok(BuildReport {
        out: options.out.clone(),
        rev: rev_name,
        internal,
        incremental,
        records: records_on_site,
        drafts,
        rendered_records,
        excluded_records: excluded,
        files_written,
        bytes_written,
        pages: totals.pages,
        files: totals.files,
        bytes: totals.bytes,
        search: search_stats,
        theme_overrides: theme.overridden.clone(),
        warnings,
        elapsed: started.elapsed(),
        seconds: (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        phases,
    })
}

/// The revision to build: `--rev`, else the default branch named in capsule.toml at
/// HEAD, else HEAD.
fn resolve_rev(repo: &Repository, rev: Option<&str>) -> Result<(Oid, String), SiteError> {
    if let Some(spec) = rev {
        let commit = repo
            .revparse_single(spec)
            .and_then(|o| o.peel_to_commit())
            .map_err(|e| {
                SiteError::Input(format!(
                    "`{spec}` is not a revision of this repository ({})",
                    e.message()
                ))
            })?;
        return Ok((commit.id(), spec.to_string()));
    }
    let head = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let default = head
        .as_ref()
        .and_then(|c| GitTree::at_commit(repo, c.id()).ok())
        .and_then(|t| t.read("capsule.toml").ok().flatten())
        .and_then(|b| Settings::parse(&String::from_utf8_lossy(&b)).ok())
        .map(|s| s.archive.default_branch)
        .unwrap_or_else(|| "main".into());
    for name in [
        format!("refs/heads/{default}"),
        format!("refs/remotes/origin/{default}"),
    ] {
        if let Ok(reference) = repo.find_reference(&name) {
            if let Ok(commit) = reference.peel_to_commit() {
                return Ok((commit.id(), default));
            }
        }
    }
    match head {
        Some(c) => Ok((c.id(), "HEAD".into())),
        None => Err(SiteError::Input(
            "the repository has no commits to build a site from".into(),
        )),
    }
}

/// Every file under `folder` at the build revision (recursively), by path.
fn collect_files(
    tree: &GitTree<'_>,
    folder: &str,
    out: &mut Vec<(String, Vec<u8>)>,
) -> Result<(), SiteError> {
    for name in tree.list(folder)? {
        let path = format!("{folder}/{name}");
        match tree.read(&path)? {
            Some(bytes) => out.push((path, bytes)),
            None => collect_files(tree, &path, out)?,
        }
    }
    Ok(())
}

/// The deposit folders at the build revision: one read of `deposits/` and its shards.
fn deposit_folders(
    repo: &Repository,
    tree: &GitTree<'_>,
) -> Result<BTreeMap<String, Oid>, SiteError> {
    let Some(deposits) = crate::archive::DepositsTree::of_commit(repo, tree.commit())? else {
        return Ok(BTreeMap::new());
    };
    Ok(deposits.folders()?.into_iter().collect())
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

/// Threads for rendering: one per core, at most 8, and no more than `work` items.
fn worker_threads(work: usize) -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8)
        .min(work.max(1))
}

/// A page queued for rendering: where it goes and how it is made.
type QueuePage<'q, 'p> = dyn FnMut(String, pages::RenderFn<'p>) -> Result<(), SiteError> + 'q;

/// Runs `plan` on the calling thread, which plans pages (and computes their keys) and
/// queues those to write; worker threads render and write them meanwhile. A full build
/// has a listing page for every 50 records of every facet value, a quarter of its time
/// when rendered one by one. If pages fail, the error is that of the first one in plan
/// order, whichever worker met it first: the same error on every run.
fn render_pages<'p>(
    renderer: &Renderer,
    output: &Output,
    plan: impl FnOnce(&mut QueuePage<'_, 'p>) -> Result<(), SiteError>,
) -> Result<(), SiteError> {
    // The earliest failed page so far: its place in the queue and its error.
    let failed: Mutex<Option<(usize, SiteError)>> = Mutex::new(None);
    let failed_before = |n: usize| {
        failed
            .lock()
            .expect("page error")
            .as_ref()
            .is_some_and(|(k, _)| *k < n)
    };
    let (send, receive) = std::sync::mpsc::sync_channel::<(usize, String, pages::RenderFn<'p>)>(32);
    let receive = Mutex::new(receive);
    std::thread::scope(|scope| {
        for _ in 0..worker_threads(usize::MAX) {
            scope.spawn(|| loop {
                let next = receive.lock().expect("page queue").recv();
                let Ok((n, path, render)) = next else { break };
                // Pages after a failed one are only drained.
                if failed_before(n) {
                    continue;
                }
                let written = match render {
                    pages::RenderFn::Page(render) => {
                        render(renderer).and_then(|bytes| output.write(&path, &bytes))
                    }
                    pages::RenderFn::Stream(write) => output.write_streamed(&path, write),
                };
                if let Err(e) = written {
                    let mut failed = failed.lock().expect("page error");
                    if failed.as_ref().is_none_or(|(k, _)| n < *k) {
                        *failed = Some((n, e));
                    }
                }
            });
        }
        let send = send;
        let mut queued = 0;
        plan(&mut |path, render| {
            if failed_before(usize::MAX) {
                return Ok(());
            }
            queued += 1;
            send.send((queued, path, render))
                .map_err(|_| SiteError::Input("the page renderers stopped unexpectedly".into()))
        })
        // `send` is dropped here, which ends the workers' loops; the scope joins them.
    })?;
    match failed.into_inner().expect("page error") {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}

/// Renders `inputs` on as many threads as the machine has cores (at most 8) and hands
/// each result to `merge` on the calling thread, in the order of `inputs`: a record's
/// output (its summary and search terms) is merged and dropped while the others
/// render, instead of all of them being held until the end.
fn render_records(
    repo_path: &Path,
    shared: &Shared<'_>,
    inputs: &[&RecordInput],
    rev: Oid,
    progress: &dyn Progress,
    merge: &mut dyn FnMut(String, Option<RecordOut>),
) -> Result<(), SiteError> {
    let threads = worker_threads(inputs.len());
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<SiteError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        // Bounded: when the merging thread falls behind (the workers use both cores),
        // the workers wait instead of queueing thousands of rendered records.
        let (send, receive) =
            std::sync::mpsc::sync_channel::<(usize, Option<RecordOut>)>(4 * threads);
        for _ in 0..threads {
            let send = send.clone();
            let (next, failed, first_error) = (&next, &failed, &first_error);
            scope.spawn(move || {
                let repo = match Repository::open(repo_path) {
                    Ok(repo) => repo,
                    Err(e) => {
                        failed.store(true, Ordering::Relaxed);
                        first_error.lock().unwrap().get_or_insert(e.into());
                        return;
                    }
                };
                let mut worker = Worker::new(&repo);
                loop {
                    if failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(input) = inputs.get(i) else { break };
                    match worker.record(shared, input, rev) {
                        Ok(out) => {
                            if send.send((i, out)).is_err() {
                                break;
                            }
                        }
                        Err(e) => {
                            failed.store(true, Ordering::Relaxed);
                            first_error
                                .lock()
                                .unwrap()
                                .get_or_insert(SiteError::Input(format!(
                                    "record {}: {e}",
                                    input.id
                                )));
                            break;
                        }
                    }
                    progress.advance(1);
                }
            });
        }
        drop(send);
        // Workers take inputs in order, so only a few results wait for an earlier one.
        let mut waiting: BTreeMap<usize, Option<RecordOut>> = BTreeMap::new();
        let mut due = 0;
        for (i, out) in receive {
            waiting.insert(i, out);
            while let Some(out) = waiting.remove(&due) {
                merge(inputs[due].id.clone(), out);
                due += 1;
            }
        }
    });
    match first_error.into_inner().unwrap() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
