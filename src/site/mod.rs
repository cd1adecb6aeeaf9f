//! The static archive site: `capsule build` turns the published records of an archive
//! into a folder of static pages, a JSON API and a search index.
//!
//! ```text
//! plan      `plan`: record tags (`tags`) + the build revision's deposits/ tree -> one input
//!           per record with a key (its tags and its folder's tree id), compared with
//!           the previous build's `state` to find what changed
//! records   `parallel` + `records`: read the versions, drop what a public build may
//!           not show, render landing, version and diff pages, per-version API files,
//!           file copies (under `files/`, served as downloads: see [`downloads`])
//! search    `indexing` + `search`: a chunked index the browser loads on demand
//! pages     `shared_pages` + `pages`: home, listings and facets, schemas, search, 404,
//!           the API's record list, sitemaps, feed; paged by `paging`; in a rebuild,
//!           only what `reuse` cannot keep
//! write     `state`: what the next build needs, in small parts
//! swap      `write`: stage beside the target, then swap in (full) or move changed
//!           files (incremental)
//! ```
//!
//! Modules import one way: `mod.rs` runs the stages; no module of `site` imports it.
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
mod error;
mod facts;
mod fields;
mod indexing;
pub mod model;
mod oai;
mod options;
mod pages;
mod paging;
mod parallel;
mod plan;
mod preserve;
mod records;
mod render;
mod report;
mod reuse;
mod schemas;
pub mod search;
mod shared_pages;
mod state;
mod tags;
mod theme;
mod util;
mod write;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

use git2::Repository;

use indexing::Changes;
use model::{RecordSummary, SiteView};
use parallel::render_records;
use plan::{Config, Plan};
use records::Shared;
use render::Renderer;
use search::SearchDoc;
use shared_pages::SiteParts;
use state::{hidden_key, RecordState, State, Totals, Touched};
use write::Output;

pub use error::SiteError;
pub use options::BuildOptions;
pub use report::{BuildReport, Phases, Progress, Quiet};
pub use write::MANIFEST as MANIFEST_FILE;

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
    let config = Config::read(&repo, options)?;
    let plan = Plan::make(&repo, &config)?;
    phases.end("read archive");
    let previous = pending_manifest
        .and_then(|pending| pending.join().ok().flatten())
        .filter(|m| m.global == config.global);
    let incremental = previous.is_some();
    let previous = previous.unwrap_or_default();
    let (changed, removed) = plan.against(&previous, incremental);
    let Config {
        rev,
        rev_name,
        tree,
        settings,
        internal,
        base_url,
        limits,
        theme,
        title: site_title,
        global,
    } = config;
    let (inputs, keys) = (&plan.inputs, &plan.keys);
    let warnings = plan.warnings.clone();
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
                Some((out, digest)) => {
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
                        digest,
                        versions: out.versions,
                    }
                }
                None => RecordState {
                    key,
                    doc: None,
                    commit: String::new(),
                    summary: None,
                    digest: String::new(),
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

    // The OAI-PMH repository changes only with the records: rewritten when one did.
    if settings.site.oai_pmh
        && !internal
        && (!incremental || !changed.is_empty() || !removed.is_empty())
    {
        let shown = |s: &RecordState| s.summary.as_ref().is_some_and(|s| !s.draft);
        let records = states.iter().map(|(id, s)| (id.as_str(), shown(s)));
        oai::write_repository(&repo, &output, &settings, &base_url, rev, records)?;
    }

    let (search_stats, shards, doc_count) = indexing::index_records(
        &repo,
        &output,
        &options.out,
        &previous,
        Changes {
            keys,
            changed: &changed,
            removed: &removed,
        },
        &mut states,
        fresh,
        postings,
    )?;

    phases.end("search index");
    // The listings that may have changed: those of the records rendered again, as they
    // are and as they were (`previous.records` now holds what was not carried over:
    // the records rendered again or gone).
    let dirty: Option<HashMap<String, reuse::Dirty>> = incremental.then(|| {
        let mut dirty = HashMap::new();
        for id in changed.iter().map(|i| &i.id).chain(removed.iter()) {
            let old = previous.records.get(id).and_then(|s| s.summary.as_ref());
            let new = states.get(id).and_then(|s| s.summary.as_ref());
            reuse::mark_dirty(&mut dirty, old, new);
        }
        dirty
    });
    let page_keys = shared_pages::render(
        &mut renderer,
        &output,
        &tree,
        &states,
        SiteParts {
            limits,
            base_url: &base_url,
            title: &site_title,
            theme: &theme,
        },
        &previous.pages,
        dirty.as_ref(),
    )?;
    let summaries: Vec<&RecordSummary> =
        states.values().filter_map(|s| s.summary.as_ref()).collect();

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
            files: files_written,
            bytes: bytes_written,
        }
    };
    // Deposits not shown are kept under their hidden key: moved in place, as
    // collecting the whole map again moved every record's state (40 MB at 100k).
    let not_shown: Vec<String> = states
        .iter()
        .filter(|(_, s)| s.summary.is_none())
        .map(|(id, _)| id.clone())
        .collect();
    for id in not_shown {
        if let Some(state) = states.remove(&id) {
            states.insert(hidden_key(&id), state);
        }
    }
    let touched = if incremental {
        // `previous.records` now holds what was not carried over.
        Touched::of(
            changed.iter().map(|i| i.id.as_str()),
            previous.records.keys().map(String::as_str),
            &previous.pages,
            &page_keys,
        )
    } else {
        Touched::All
    };
    let previous_parts = previous.take_parts();
    let mut manifest = State {
        global,
        rev: rev.to_string(),
        records: states,
        pages: page_keys,
        search_shards: shards,
        search_docs: doc_count,
        totals: totals.clone(),
        ..State::default()
    };
    removals.extend(manifest.write(&output, &previous_parts, &touched)?);
    let totals = manifest.totals.clone();
    // Now with the state's own files.
    let (files_written, bytes_written) = (output.files(), output.bytes());
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
