//! The pages made from all records together: home, listings and facets, schema pages,
//! search, 404, the API index, the sitemap, the Atom feed and `_headers`.
//!
//! Each page comes with a fingerprint of what it shows, so that an incremental build
//! renders only the pages whose fingerprint changed.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use serde::Serialize;

use super::facts::facet_slug;
use super::model::*;
use super::paging::{Limits, PageId, Paging};
use super::reuse::{kept_page, ListingPlan, Reuse};
use super::util::{base_with_slash, xml_escape, Fingerprint};

/// Renders a page into memory.
pub type PageFn<'a> = Box<
    dyn FnOnce(&super::render::Renderer) -> Result<Vec<u8>, super::error::SiteError> + Send + 'a,
>;
/// Writes a page straight to its file.
pub type StreamFn<'a> = Box<dyn FnOnce(&mut dyn std::io::Write) -> std::io::Result<()> + Send + 'a>;

/// How a planned page turns into bytes, called at most once. `Send`: pages are
/// rendered on worker threads while the next ones are planned.
pub enum RenderFn<'a> {
    /// Rendered into memory, then written.
    Page(PageFn<'a>),
    /// Written straight to the file, for files too large to hold in memory
    /// (`api/records/index.json` is 70 MB at 100k records, the sitemap 11 MB).
    Stream(StreamFn<'a>),
    /// Not rendered: the page is the one the previous build left (see [`Reuse`]).
    Unchanged,
}

/// The digest a record's summary enters page keys as (kept in the build's state, so
/// that a rebuild does not encode every summary again).
pub fn summary_digest(r: &RecordSummary) -> String {
    key_of(&[r])
}

/// A page to render: where, with which template, from what, and its fingerprint.
/// Pages are handed out one at a time as they are planned (see [`plan`]), so that only
/// one page's view is alive at once, whatever the number of records.
pub struct PlannedPage<'a> {
    pub path: String,
    pub key: String,
    pub render: RenderFn<'a>,
}

/// Where [`plan`] hands each page: render it (or not) and remember its key. A page
/// borrows at most the records' summaries (`'p`), so it can be handed to another thread
/// that lives as long as they do.
pub type Emit<'e, 'p> = dyn FnMut(PlannedPage<'p>) -> Result<(), super::error::SiteError> + 'e;

fn planned<'a, T: Serialize + Send + 'a>(
    template: &'static str,
    title: String,
    path: String,
    data: T,
    key: String,
) -> PlannedPage<'a> {
    let p = path.clone();
    PlannedPage {
        path,
        key,
        render: RenderFn::Page(Box::new(move |r| {
            Ok(r.render(template, &title, &p, &data)?.into_bytes())
        })),
    }
}

fn raw(path: &str, bytes: Vec<u8>) -> PlannedPage<'static> {
    let mut f = Fingerprint::new();
    f.add(&bytes);
    PlannedPage {
        path: path.to_string(),
        key: f.finish(),
        render: RenderFn::Page(Box::new(move |_| Ok(bytes))),
    }
}

/// A page written as it is produced. Its key is computed by the caller from what the
/// page is made of (record digests), so that it is not produced twice.
fn streamed<'a>(
    path: &str,
    key: String,
    write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()> + Send + 'a,
) -> PlannedPage<'a> {
    PlannedPage {
        path: path.to_string(),
        key,
        render: RenderFn::Stream(Box::new(write)),
    }
}

/// The key of a page made of all `records` (in their order) and `rest`.
fn key_of_all(
    name: &str,
    records: &[&RecordSummary],
    digests: &Digests,
    rest: &[&dyn erased::Keyed],
) -> String {
    let mut f = Fingerprint::new();
    f.add(name);
    for r in records {
        f.add(digests.get(&address(r)).copied().unwrap_or_default());
    }
    for p in rest {
        p.feed(&mut f);
    }
    f.finish()
}

fn key_of(parts: &[&dyn erased::Keyed]) -> String {
    let mut f = Fingerprint::new();
    for p in parts {
        p.feed(&mut f);
    }
    f.finish()
}

mod erased {
    use super::Fingerprint;

    /// Anything serialisable can feed a fingerprint with its JSON.
    pub trait Keyed {
        fn feed(&self, f: &mut Fingerprint);
    }

    impl<T: serde::Serialize> Keyed for T {
        fn feed(&self, f: &mut Fingerprint) {
            // Streamed into the digest: a rebuild computes the key of every listing
            // page, and building each view's JSON first was most of its time.
            serde_json::to_writer(f.writer(), self).expect("serialises");
            f.add([]);
        }
    }
}

/// One facet: its values, each with the records that carry it.
pub struct Facet<'a> {
    pub kind: &'static str,
    pub title: &'static str,
    pub folder: &'static str,
    /// slug -> (label, records)
    pub values: BTreeMap<String, (String, Vec<&'a RecordSummary>)>,
}

/// A facet while records are added: each label is looked up once per record with a
/// fast hash (a rebuild adds every record to about ten facet values); the values are
/// sorted by slug once at the end.
struct FacetBuilder<'a> {
    facet: Facet<'a>,
    /// label -> index in `entries`; two labels with one slug share an entry.
    labels: FxHashMap<String, usize>,
    slugs: FxHashMap<String, usize>,
    entries: Vec<(String, String, Vec<&'a RecordSummary>)>,
}

impl<'a> FacetBuilder<'a> {
    fn new(kind: &'static str, title: &'static str, folder: &'static str) -> Self {
        FacetBuilder {
            facet: Facet {
                kind,
                title,
                folder,
                values: BTreeMap::new(),
            },
            labels: FxHashMap::default(),
            slugs: FxHashMap::default(),
            entries: Vec::new(),
        }
    }

    fn add(&mut self, label: &str, record: &'a RecordSummary) {
        let at = match self.labels.get(label) {
            Some(&at) => at,
            None => {
                if label.trim().is_empty() {
                    return;
                }
                let slug = if self.facet.folder == "schema" {
                    label.to_string()
                } else {
                    facet_slug(label)
                };
                let next = self.entries.len();
                let at = *self.slugs.entry(slug.clone()).or_insert(next);
                if at == next {
                    self.entries.push((slug, label.to_string(), Vec::new()));
                }
                self.labels.insert(label.to_string(), at);
                at
            }
        };
        let records = &mut self.entries[at].2;
        // Records come one at a time, so a repeat (two labels with one slug) can only
        // be the last one added.
        if records.last().is_none_or(|r| r.id != record.id) {
            records.push(record);
        }
    }

    fn finish(mut self) -> Facet<'a> {
        self.facet.values = self
            .entries
            .into_iter()
            .map(|(slug, label, records)| (slug, (label, records)))
            .collect();
        self.facet
    }
}

impl Facet<'_> {
    pub fn path(&self, slug: &str) -> String {
        format!("browse/{}/{slug}/index.html", self.folder)
    }

    /// Links to the values, largest first (then by label), at most `limit`.
    fn links(&self, limit: usize) -> FacetGroup {
        let mut links: Vec<FacetLink> = self
            .values
            .iter()
            .map(|(slug, (label, records))| FacetLink {
                label: label.clone(),
                path: self.path(slug),
                count: records.len(),
            })
            .collect();
        if self.folder == "year" {
            links.sort_by(|a, b| b.label.cmp(&a.label));
        } else {
            links.sort_by(|a, b| b.count.cmp(&a.count).then(a.label.cmp(&b.label)));
        }
        let more = (links.len() > limit)
            .then(|| format!("browse/index.html#{}", self.title.to_lowercase()));
        links.truncate(limit);
        FacetGroup {
            title: self.title.to_string(),
            links,
            more,
        }
    }
}

/// Groups the records by schema, experiment, year, keyword and person.
pub fn facets<'a>(
    records: &[&'a RecordSummary],
    schema_titles: &BTreeMap<String, String>,
) -> Vec<Facet<'a>> {
    let mut schema = FacetBuilder::new("schema", "Schemas", "schema");
    let mut experiment = FacetBuilder::new("experiment", "Experiments", "experiment");
    let mut year = FacetBuilder::new("year", "Years", "year");
    let mut keyword = FacetBuilder::new("keyword", "Keywords", "keyword");
    let mut person = FacetBuilder::new("person", "People", "person");
    for r in records {
        if !r.schema.is_empty() {
            schema.add(&r.schema, r);
        }
        experiment.add(&r.experiment, r);
        year.add(&r.year, r);
        for k in &r.keywords {
            keyword.add(k, r);
        }
        for p in &r.people {
            person.add(p, r);
        }
    }
    let mut schema = schema.finish();
    for (name, (label, _)) in schema.values.iter_mut() {
        if let Some(title) = schema_titles.get(name) {
            label.clone_from(title);
        }
    }
    vec![
        schema,
        experiment.finish(),
        year.finish(),
        keyword.finish(),
        person.finish(),
    ]
}

/// Updated last first, then by id: the home page's order.
fn newer(a: &RecordSummary, b: &RecordSummary) -> std::cmp::Ordering {
    b.updated.cmp(&a.updated).then(a.id.cmp(&b.id))
}

/// The `n` records updated last that `keep` keeps, in the home page's order: chosen
/// without sorting them all (a rebuild sorted 100k records for the home page's 30).
fn newest<'a>(
    records: &[&'a RecordSummary],
    n: usize,
    keep: impl Fn(&RecordSummary) -> bool,
) -> Vec<&'a RecordSummary> {
    let mut kept: Vec<&RecordSummary> = records.iter().copied().filter(|r| keep(r)).collect();
    if kept.len() > n && n > 0 {
        kept.select_nth_unstable_by(n - 1, |a, b| newer(a, b));
    }
    kept.truncate(n);
    kept.sort_unstable_by(|a, b| newer(a, b));
    kept
}

/// First published first, then by id: the order listings are numbered in. A new
/// version leaves a record where it is.
pub fn in_publication_order(records: &mut [&RecordSummary]) {
    records.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
}

/// Plans every page that depends on more than one record, handing each to `emit`.
/// `digests`: each record's [`summary_digest`], by [`address`].
#[allow(clippy::too_many_arguments)]
pub fn plan<'p>(
    records: &[&'p RecordSummary],
    digests: &Digests<'_>,
    reuse: Reuse<'_>,
    schemas: &[SchemaView],
    schema_titles: &BTreeMap<String, String>,
    limits: Limits,
    base_url: &str,
    site_title: &str,
    feed_versions: &[(String, u32, String, String)],
    emit: &mut Emit<'_, 'p>,
) -> Result<(), super::error::SiteError> {
    // Listings, the API's record list and the sitemaps follow publication order, so
    // that what is added goes at the end (see `paging`); the home page shows the
    // records updated last.
    let mut sorted: Vec<&'p RecordSummary> = records.to_vec();
    in_publication_order(&mut sorted);
    let facets = facets(&sorted, schema_titles);

    // Home.
    let published: Vec<RecordSummary> = newest(records, 10, |r| !r.draft)
        .into_iter()
        .cloned()
        .collect();
    let drafts: Vec<RecordSummary> = newest(records, 20, |r| r.draft)
        .into_iter()
        .cloned()
        .collect();
    let home = HomeView {
        latest: published,
        facets: facets.iter().map(|f| f.links(12)).collect(),
        drafts,
    };
    let key = key_of(&[
        &"home",
        &home.latest,
        &home.facets,
        &home.drafts,
        &records.len(),
    ]);
    emit(planned(
        "home.html",
        "Home".into(),
        "index.html".into(),
        home,
        key,
    ))?;

    // The schema pages' titles are the schema facet's labels: when they changed (the
    // index shows every schema's title), no listing is reused.
    let mut links: Vec<SchemaLink> = schemas
        .iter()
        .map(|s| SchemaLink {
            name: s.name.clone(),
            version: s.version.clone(),
            title: s.title.clone(),
            path: format!("schemas/{}/{}/index.html", s.name, s.version),
        })
        .collect();
    links.sort_by(|a, b| a.name.cmp(&b.name));
    let schema_index = SchemaIndexView { schemas: links };
    let schema_index_key = key_of(&[&"schemas", &schema_index.schemas]);
    let reuse = match reuse.previous.get("schemas/index.html") {
        Some(key) if *key == schema_index_key => reuse,
        _ => Reuse::nothing(),
    };

    // All records, then each facet value, paginated.
    listing(
        emit,
        &reuse,
        "All records",
        "all",
        "browse/all",
        &sorted,
        limits.listing,
        &facets,
        digests,
    )?;
    for facet in &facets {
        for (slug, (label, list)) in &facet.values {
            let heading = match facet.kind {
                "schema" => format!("Schema: {label}"),
                "experiment" => format!("Experiment: {label}"),
                "year" => format!("First published in {label}"),
                "keyword" => format!("Keyword: {label}"),
                _ => format!("Person: {label}"),
            };
            let folder = format!("browse/{}/{slug}", facet.folder);
            listing(
                emit,
                &reuse,
                &heading,
                facet.kind,
                &folder,
                list,
                limits.listing,
                &[],
                digests,
            )?;
        }
    }
    let overview = FacetIndexView {
        groups: facets.iter().map(|f| f.links(usize::MAX)).collect(),
    };
    let key = key_of(&[&"browse", &overview.groups]);
    emit(planned(
        "facets.html",
        "Browse".into(),
        "browse/index.html".into(),
        overview,
        key,
    ))?;

    // Schemas.
    emit(planned(
        "schemas.html",
        "Schemas".into(),
        "schemas/index.html".into(),
        schema_index,
        schema_index_key,
    ))?;
    for s in schemas {
        let mut view = s.clone();
        let facet = &facets[0];
        view.records = facet.values.get(&s.name).map_or(0, |(_, l)| l.len());
        view.records_path = (view.records > 0).then(|| facet.path(&s.name));
        let path = format!("schemas/{}/{}/index.html", s.name, s.version);
        let key = key_of(&[&"schema", &view]);
        let title = format!("{} {}", view.title, view.version);
        emit(planned("schema.html", title, path, view, key))?;
    }

    // Search and 404.
    emit(planned(
        "search.html",
        "Search".into(),
        "search/index.html".into(),
        (),
        key_of(&[&"search"]),
    ))?;
    emit(planned(
        "404.html",
        "Not found".into(),
        "404.html".into(),
        (),
        key_of(&[&"404"]),
    ))?;
    // For static hosts that read it: deposit files are downloads (see `downloads`).
    emit(raw(
        "_headers",
        super::downloads::headers_file().into_bytes(),
    ))?;

    // API index.
    let aggregations = facets
        .iter()
        .filter(|f| matches!(f.kind, "schema" | "experiment" | "year"))
        .map(|f| {
            let name = match f.kind {
                "schema" => "facet_collection",
                "experiment" => "facet_experiment",
                _ => "facet_year",
            };
            let mut buckets: Vec<(String, usize)> = f
                .values
                .iter()
                .map(|(slug, (_, l))| (slug.clone(), l.len()))
                .collect();
            buckets.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            (name.to_string(), buckets)
        })
        .collect::<Vec<_>>();
    // The API's record list holds every record, as the listing of all records does:
    // its pages holding none of the records changed in place are as they were.
    let api_only = match reuse.listing_plan("browse/all", &sorted) {
        ListingPlan::Every => None,
        ListingPlan::Some(positions) => Some(positions),
        ListingPlan::Kept(_) => Some(Vec::new()),
    };
    let api_only = api_only.as_ref().map(|p| (p.as_slice(), reuse.previous));
    api_pages(
        emit,
        &sorted,
        limits.api,
        base_url,
        &aggregations,
        digests,
        api_only,
    )?;
    sitemaps(emit, &sorted, schemas, limits.sitemap, base_url, digests)?;
    emit(raw(
        "feed.xml",
        feed(base_url, site_title, feed_versions).into_bytes(),
    ))
}

/// Each record's summary digest, by the summary's address (every listing holds
/// references to the same summaries, and hashing an address is cheaper than an id).
pub type Digests<'d> = FxHashMap<usize, &'d str>;

pub fn address(record: &RecordSummary) -> usize {
    record as *const RecordSummary as usize
}

/// The pages of one listing: those [`Reuse`] cannot tell unchanged are planned, the
/// others keep their previous keys (checked against planning them in debug builds,
/// which the tests run).
#[allow(clippy::too_many_arguments)]
fn listing<'p>(
    emit: &mut Emit<'_, 'p>,
    reuse: &Reuse<'_>,
    heading: &str,
    kind: &str,
    folder: &str,
    records: &[&'p RecordSummary],
    per_page: usize,
    facets: &[Facet<'_>],
    digests: &Digests,
) -> Result<(), super::error::SiteError> {
    let only = match reuse.listing_plan(folder, records) {
        ListingPlan::Every => None,
        ListingPlan::Some(positions) => Some(positions),
        ListingPlan::Kept(kept) => {
            #[cfg(debug_assertions)]
            {
                let mut planned = Vec::new();
                listing_pages(
                    &mut |page| {
                        planned.push((page.path, page.key));
                        Ok(())
                    },
                    heading,
                    kind,
                    folder,
                    records,
                    per_page,
                    facets,
                    digests,
                    None,
                )?;
                planned.sort();
                assert_eq!(planned, kept, "listing {folder} changed unseen");
            }
            for (path, key) in kept {
                emit(PlannedPage {
                    path,
                    key,
                    render: RenderFn::Unchanged,
                })?;
            }
            return Ok(());
        }
    };
    let only = only
        .as_ref()
        .map(|positions| (positions.as_slice(), reuse.previous));
    listing_pages(
        emit, heading, kind, folder, records, per_page, facets, digests, only,
    )
}

#[allow(clippy::too_many_arguments)]
fn listing_pages<'p>(
    emit: &mut Emit<'_, 'p>,
    heading: &str,
    kind: &str,
    folder: &str,
    records: &[&'p RecordSummary],
    per_page: usize,
    facets: &[Facet<'_>],
    digests: &Digests,
    only: Option<(&[usize], &BTreeMap<String, String>)>,
) -> Result<(), super::error::SiteError> {
    // `records` are in publication order: numbered pages are full chunks of it, the
    // newest page is `index.html` (see `paging`).
    let paging = Paging::new(records.len(), per_page);
    let page_path = |id: PageId| match id {
        PageId::Newest => format!("{folder}/index.html"),
        PageId::Numbered(k) => format!("{folder}/{k}.html"),
    };
    let facet_groups: Vec<FacetGroup> = facets.iter().map(|f| f.links(8)).collect();
    for page in paging.pages() {
        let kept = kept_page(&page, &page_path(page.id), only);
        if let (Some(key), false) = (kept, cfg!(debug_assertions)) {
            emit(PlannedPage {
                path: page_path(page.id),
                key: key.clone(),
                render: RenderFn::Unchanged,
            })?;
            continue;
        }
        let chunk: Vec<&'p RecordSummary> =
            records[page.items.clone()].iter().rev().copied().collect();
        let newest = page.id == PageId::Newest;
        // Links to the newest page and to numbered pages near this one; what a
        // numbered page links depends only on the pages beside it.
        let near = match page.id {
            PageId::Newest => paging.near(paging.numbered()),
            PageId::Numbered(k) => paging.near(k),
        };
        let mut pages_links = vec![PageLink {
            number: 0,
            label: "Newest".into(),
            path: page_path(PageId::Newest),
            current: newest,
        }];
        pages_links.extend(near.into_iter().map(|k| PageLink {
            number: k,
            label: k.to_string(),
            path: page_path(PageId::Numbered(k)),
            current: page.id == PageId::Numbered(k),
        }));
        let view = ListingView {
            heading: heading.to_string(),
            kind: kind.to_string(),
            records: chunk,
            total: newest.then_some(records.len()),
            first: page.items.start + 1,
            last: page.items.end,
            pages: if paging.numbered() > 0 {
                pages_links
            } else {
                Vec::new()
            },
            prev: page.prev.map(page_path),
            next: page.next.map(page_path),
            facets: if newest {
                facet_groups.clone()
            } else {
                Vec::new()
            },
        };
        // The records shown enter the key as their digests' bytes (no JSON to escape:
        // this is most of the key of a listing page).
        let mut f = Fingerprint::new();
        for part in [
            &"listing" as &dyn erased::Keyed,
            &view.heading,
            &view.kind,
            &view.total,
            &view.first,
            &view.last,
            &view.pages,
            &view.prev,
            &view.next,
            &view.facets,
        ] {
            part.feed(&mut f);
        }
        for r in &view.records {
            f.add(digests.get(&address(r)).copied().unwrap_or_default());
        }
        let key = f.finish();
        // Only in debug builds is a kept page planned: to check its key.
        if let Some(kept) = kept {
            assert_eq!(*kept, key, "{} changed unseen", page_path(page.id));
            emit(PlannedPage {
                path: page_path(page.id),
                key,
                render: RenderFn::Unchanged,
            })?;
            continue;
        }
        let title = match page.id {
            PageId::Newest => heading.to_string(),
            PageId::Numbered(k) => format!("{heading} (page {k})"),
        };
        emit(planned(
            "listing.html",
            title,
            page_path(page.id),
            view,
            key,
        ))?;
    }
    Ok(())
}

/// The pages of `api/records/`: `records` (in publication order) paged like listings,
/// each page's hits newest first; the facets on the first page only. A new record
/// rewrites the first page and at most two others, like a listing.
fn api_pages<'p>(
    emit: &mut Emit<'_, 'p>,
    records: &[&'p RecordSummary],
    size: usize,
    base_url: &str,
    aggregations: &[(String, Vec<(String, usize)>)],
    digests: &Digests,
    only: Option<(&[usize], &BTreeMap<String, String>)>,
) -> Result<(), super::error::SiteError> {
    let path = |id: PageId| match id {
        PageId::Newest => "api/records/index.json".to_string(),
        PageId::Numbered(k) => format!("api/records/index-{k}.json"),
    };
    for page in Paging::new(records.len(), size).pages() {
        let kept = kept_page(&page, &path(page.id), only);
        if let (Some(key), false) = (kept, cfg!(debug_assertions)) {
            emit(PlannedPage {
                path: path(page.id),
                key: key.clone(),
                render: RenderFn::Unchanged,
            })?;
            continue;
        }
        let hits: Vec<&'p RecordSummary> =
            records[page.items.clone()].iter().rev().copied().collect();
        let links = super::api::PageLinks {
            this: path(page.id),
            next: page.next.map(path),
            prev: page.prev.map(path),
        };
        let aggregations = if page.id == PageId::Newest {
            aggregations.to_vec()
        } else {
            Vec::new()
        };
        // `hits.total` of a numbered page counts it and the older pages, which do not
        // change when records are added: the first page's is every record, as CAP's.
        let total = match page.id {
            PageId::Newest => records.len(),
            PageId::Numbered(_) => page.items.end,
        };
        let key = key_of_all(
            &links.this,
            &hits,
            digests,
            &[&base_url, &total, &aggregations, &links.next, &links.prev],
        );
        if let Some(kept) = kept {
            assert_eq!(*kept, key, "{} changed unseen", links.this);
            emit(PlannedPage {
                path: links.this,
                key,
                render: RenderFn::Unchanged,
            })?;
            continue;
        }
        let base = base_url.to_string();
        emit(streamed(&links.this.clone(), key, move |out| {
            super::api::write_index(out, &base, &hits, total, &aggregations, &links)
        }))?;
    }
    Ok(())
}

/// `sitemap.xml`, a sitemap index, and the sitemaps it names, `sitemap-<k>.xml`, each
/// with at most `size` URLs: every published record's landing page in publication
/// order (so that a new record changes only the last sitemap), then the home page and
/// every schema page.
fn sitemaps<'p>(
    emit: &mut Emit<'_, 'p>,
    records: &[&'p RecordSummary],
    schemas: &[SchemaView],
    size: usize,
    base_url: &str,
    digests: &Digests,
) -> Result<(), super::error::SiteError> {
    let size = size.max(1);
    let base = base_with_slash(base_url);
    let published: Vec<&'p RecordSummary> = records.iter().filter(|r| !r.draft).copied().collect();
    let mut rest: Vec<String> = vec![String::new()];
    rest.extend(
        schemas
            .iter()
            .map(|s| format!("schemas/{}/{}/", s.name, s.version)),
    );
    let count = (published.len() + rest.len()).div_ceil(size);
    let mut index = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<sitemapindex xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n",
    );
    for k in 1..=count {
        let path = format!("sitemap-{k}.xml");
        index.push_str(&format!(
            "  <sitemap><loc>{}</loc></sitemap>\n",
            xml_escape(&format!("{base}{path}"))
        ));
        let start = (k - 1) * size;
        let end = k * size;
        let mine: Vec<&'p RecordSummary> = published
            .get(start.min(published.len())..end.min(published.len()))
            .unwrap_or_default()
            .to_vec();
        let others: Vec<String> = rest
            .iter()
            .enumerate()
            .filter(|(i, _)| (start..end).contains(&(published.len() + i)))
            .map(|(_, p)| p.clone())
            .collect();
        let key = key_of_all(&path, &mine, digests, &[&base_url, &others]);
        let base = base.clone();
        emit(streamed(&path, key, move |out| {
            write_sitemap(out, &base, &mine, &others)
        }))?;
    }
    index.push_str("</sitemapindex>\n");
    emit(raw("sitemap.xml", index.into_bytes()))
}

/// One sitemap: `records`' landing pages, with the date of their latest version, then
/// `others` (paths below the base).
fn write_sitemap(
    out: &mut dyn std::io::Write,
    base: &str,
    records: &[&RecordSummary],
    others: &[String],
) -> std::io::Result<()> {
    out.write_all(
        b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n",
    )?;
    let urls = records
        .iter()
        .map(|r| (r.path.trim_end_matches("index.html"), r.updated.as_str()))
        .chain(others.iter().map(|p| (p.as_str(), "")));
    for (path, lastmod) in urls {
        write!(
            out,
            "  <url><loc>{}</loc>",
            xml_escape(&format!("{base}{path}"))
        )?;
        if !lastmod.is_empty() {
            write!(out, "<lastmod>{}</lastmod>", xml_escape(lastmod))?;
        }
        out.write_all(b"</url>\n")?;
    }
    out.write_all(b"</urlset>\n")
}

/// The Atom feed of the newest record versions: `(id, version, date, title)`.
fn feed(base_url: &str, title: &str, versions: &[(String, u32, String, String)]) -> String {
    let base = base_with_slash(base_url);
    let updated = versions
        .first()
        .map(|v| v.2.clone())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into());
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n  <title>{}</title>\n  <id>{}</id>\n  <link href=\"{}\"/>\n  <link rel=\"self\" href=\"{}feed.xml\"/>\n  <updated>{}</updated>\n",
        xml_escape(title),
        xml_escape(&base),
        xml_escape(&base),
        xml_escape(&base),
        xml_escape(&updated),
    );
    for (id, version, date, record_title) in versions {
        let url = format!("{base}records/{id}/v{version}/");
        out.push_str(&format!(
            "  <entry>\n    <title>{} (v{version})</title>\n    <id>{}</id>\n    <link href=\"{}\"/>\n    <updated>{}</updated>\n    <author><name>{}</name></author>\n    <summary>Version {version} of record {} was published.</summary>\n  </entry>\n",
            xml_escape(record_title),
            xml_escape(&url),
            xml_escape(&url),
            xml_escape(date),
            xml_escape(title),
            xml_escape(id),
        ));
    }
    out.push_str("</feed>\n");
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A record's summary for tests of the listings.
    pub(crate) fn summary(
        id: &str,
        schema: &str,
        experiment: &str,
        keywords: &[&str],
    ) -> RecordSummary {
        RecordSummary {
            id: id.into(),
            title: id.into(),
            schema: schema.into(),
            schema_title: String::new(),
            experiment: experiment.into(),
            version: 1,
            created: "2026-01-01T00:00:00Z".into(),
            updated: "2026-01-01T00:00:00Z".into(),
            year: "2026".into(),
            people: vec!["Zoë Ünal".into(), " ".into()],
            keywords: keywords.iter().map(|k| k.to_string()).collect(),
            path: format!("records/{id}/index.html"),
            draft: false,
        }
    }

    /// The home page's records are the first of all of them sorted newest first.
    #[test]
    fn the_newest_records_are_the_first_of_all_sorted() {
        let mut records: Vec<RecordSummary> = Vec::new();
        for i in 0..40 {
            let mut r = summary(&format!("r{:02}", (i * 7) % 40), "s", "e", &[]);
            r.updated = format!("2026-01-{:02}T00:00:00Z", 1 + (i * 13) % 9);
            r.draft = i % 3 == 0;
            records.push(r);
        }
        let refs: Vec<&RecordSummary> = records.iter().collect();
        for n in [0, 1, 5, 10, 13, 30, 100] {
            for drafts in [false, true] {
                let mut all: Vec<&RecordSummary> =
                    refs.iter().copied().filter(|r| r.draft == drafts).collect();
                all.sort_by(|a, b| newer(a, b));
                all.truncate(n);
                assert_eq!(newest(&refs, n, |r| r.draft == drafts), all, "{n}");
            }
        }
    }
}
