//! `capsule build` at scale, on many small records: the paged API that `links.next`
//! walks, listings and state files that one change rewrites a bounded number of, and a
//! sitemap index that splits within its limit. Page sizes are lowered through
//! `CAPSULE_SITE_TEST_LIMITS` so that a handful of records exercises them.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::site_check::*;
use common::*;

fn public(mut deposit: serde_json::Value) -> serde_json::Value {
    deposit["_access"]["deposit-read"] = serde_json::json!({"users": [], "roles": ["public"]});
    deposit
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap() + "\n"
}

/// An archive of `count` public records `rec-00`, `rec-01`, ... committed and tagged
/// in the clone itself (no push: the build reads the clone), record `i` first
/// published `i` minutes after the first, so that publication order is the ids' order.
/// Every record has the same schema, experiment, year, keyword and person: the same
/// listings hold all of them. `per_page` records per listing page.
fn many_records(count: usize, per_page: usize) -> (Server, Work) {
    let server = Server::new();
    let work = server.clone("work");
    let settings = std::fs::read_to_string(work.path.join("capsule.toml")).unwrap();
    work.write(
        "capsule.toml",
        format!("{settings}\n[site]\nper_page = {per_page}\n"),
    );
    for i in 0..count {
        add_record(&work, i);
    }
    work.commit("records");
    for i in 0..count {
        tag(&work, &record_id(i), 1, i);
    }
    (server, work)
}

fn record_id(i: usize) -> String {
    format!("rec-{i:02}")
}

fn add_record(work: &Work, i: usize) {
    let id = record_id(i);
    let deposit: serde_json::Value = serde_json::from_str(&analysis(
        &format!("Record {i}"),
        &["paging"],
        ("Alice Analyst", "alice@example.org"),
    ))
    .unwrap();
    work.write(&dep(&id, "deposit.json"), pretty(&public(deposit)));
}

/// Tags version `version` of `id` at HEAD, dated `minute` minutes into 2026.
fn tag(work: &Work, id: &str, version: u32, minute: usize) {
    let date = format!("2026-01-01T{:02}:{:02}:00Z", minute / 60, minute % 60);
    run_ok(git(&work.path).env("GIT_COMMITTER_DATE", &date).args([
        "tag",
        "-a",
        &format!("records/{id}/v{version}"),
        "-m",
        "Publish",
    ]));
}

/// `capsule build` with lowered page sizes for the API and the sitemaps.
fn build_limited(work: &Work, out: &Path, limits: &str, extra: &[&str]) -> String {
    let mut cmd = capsule(&work.path);
    cmd.env("CAPSULE_USER", "alice")
        .env("CAPSULE_SITE_TEST_LIMITS", limits)
        .args(["build", "--out", out.to_str().unwrap()])
        .args(extra);
    stdout(&run_ok(&mut cmd))
}

fn json_file(site: &Path, path: &str) -> serde_json::Value {
    serde_json::from_str(&read(site, path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Follows `links.<rel>` from `start` to the end: the ids of each page's hits, and
/// the pages met. A link is absolute from `base`, or relative to the page.
fn follow(site: &Path, base: &str, start: &str, rel: &str) -> (Vec<Vec<String>>, Vec<String>) {
    let (mut ids, mut pages, mut totals) = (Vec::new(), Vec::new(), Vec::new());
    let mut path = start.to_string();
    loop {
        assert!(!pages.contains(&path), "{path} met twice following {rel}");
        let page = json_file(site, &path);
        assert!(
            page["hits"]["hits"].as_array().unwrap().len() <= 3,
            "{path}: more hits than a page of 2 holds (the first, 3 at most)"
        );
        totals.push(page["hits"]["total"].as_u64().unwrap() as usize);
        ids.push(
            page["hits"]["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|hit| hit["id"].as_str().unwrap().to_string())
                .collect(),
        );
        let this = page["links"]["self"].as_str().unwrap();
        let folder = &path[..path.rfind('/').unwrap() + 1];
        let resolve = |link: &str| match base {
            "" => {
                assert!(!link.contains('/'), "{link} is not relative to the page");
                format!("{folder}{link}")
            }
            _ => link
                .strip_prefix(base)
                .unwrap_or_else(|| panic!("{link} is not under {base}"))
                .to_string(),
        };
        assert_eq!(resolve(this), path, "links.self of {path}");
        pages.push(path.clone());
        match page["links"].get(rel).and_then(|l| l.as_str()) {
            Some(link) => path = resolve(link),
            None => break,
        }
    }
    // `hits.total`: every record on the first page; on an older page, those of it and
    // the pages after it.
    if rel == "next" {
        for (i, total) in totals.iter().enumerate() {
            let from_here: usize = ids[i..].iter().map(Vec::len).sum();
            let expected = if i == 0 { 7 } else { from_here };
            assert_eq!(*total, expected, "hits.total of {}", pages[i]);
        }
    }
    (ids, pages)
}

/// `api/records/` is paged like CAP's search: following `links.next` from the first
/// page meets every record exactly once, newest first, and `links.prev` leads back the
/// same way; links are absolute from the base URL, else relative to the page; the
/// first page's `hits.total` counts every record.
#[test]
fn the_api_record_list_is_paged_and_links_next_meets_every_record_once() {
    let (_server, work) = many_records(7, 2);
    let newest_first: Vec<String> = (0..7).rev().map(record_id).collect();
    for base in ["https://analyses.example.org/cap/", ""] {
        let site = work.path.join(format!("out/api{}", base.len()));
        build_limited(&work, &site, "api=2", &["--base-url", base]);
        let (ids, pages) = follow(&site, base, "api/records/index.json", "next");
        assert_eq!(
            ids.concat(),
            newest_first,
            "following next from the first page"
        );
        assert_eq!(pages.len(), 3, "{pages:?}: 7 records in pages of 2");
        let first = json_file(&site, "api/records/index.json");
        assert!(first["aggregations"]["facet_collection"]["buckets"].is_array());
        assert!(first["links"].get("prev").is_none());
        let last = pages.last().unwrap();
        let (mut back, back_pages) = follow(&site, base, last, "prev");
        back.reverse();
        assert_eq!(
            back.concat(),
            newest_first,
            "following prev from the last page"
        );
        assert_eq!(
            back_pages.iter().rev().collect::<Vec<_>>(),
            pages.iter().collect::<Vec<_>>()
        );
        // The records' own documents are where they were.
        assert_eq!(
            json_file(&site, "api/records/rec-03/index.json")["id"],
            "rec-03"
        );
        check_links(&site);
    }
}

/// Each file of a site with its inode: a file the build wrote anew has a new one
/// (builds stage files and move them in).
fn inodes(site: &Path, under: &str) -> BTreeMap<PathBuf, u64> {
    use std::os::unix::fs::MetadataExt;
    let root = site.join(under);
    if root.is_file() {
        let ino = std::fs::metadata(&root).unwrap().ino();
        return BTreeMap::from([(PathBuf::from(under), ino)]);
    }
    if !root.exists() {
        return BTreeMap::new();
    }
    files(&root)
        .into_keys()
        .map(|p| {
            let ino = std::fs::metadata(root.join(&p)).unwrap().ino();
            (Path::new(under).join(p), ino)
        })
        .collect()
}

fn rewritten(before: &BTreeMap<PathBuf, u64>, after: &BTreeMap<PathBuf, u64>) -> Vec<PathBuf> {
    after
        .iter()
        .filter(|(p, ino)| before.get(*p) != Some(ino))
        .map(|(p, _)| p.clone())
        .collect()
}

/// One archive of `count` records built, then one new version of the oldest record
/// and one new record: the listing files and state files that rebuild wrote, and the
/// state files there were.
fn rebuild_after_one_change(count: usize) -> (Vec<PathBuf>, Vec<PathBuf>, usize) {
    let (_server, work) = many_records(count, 2);
    let site = work.path.join("out/site");
    build_limited(&work, &site, "api=2", &[]);
    let index = read(&site, "browse/all/index.html");
    let newest = index
        .find(&format!("Record {}<", count - 1))
        .expect("newest");
    let older = index.find(&format!("Record {}<", count - 2)).expect("next");
    assert!(
        newest < older,
        "the first page shows the newest record first"
    );
    // Listings, and the pages of the API's record list (not the records' folders).
    let listed = |site: &Path| -> BTreeMap<PathBuf, u64> {
        let mut all = inodes(site, "browse");
        all.extend(
            inodes(site, "api/records")
                .into_iter()
                .filter(|(p, _)| p.parent() == Some(Path::new("api/records"))),
        );
        all
    };
    let listings = listed(&site);
    let state: BTreeMap<PathBuf, u64> = inodes(&site, ".capsule-site")
        .into_iter()
        .chain(inodes(&site, ".capsule-site.json"))
        .collect();
    work.write(
        &dep(&record_id(0), "deposit.json"),
        read(&work.path, &dep(&record_id(0), "deposit.json")).replace("Record 0", "Record 0 again"),
    );
    add_record(&work, count);
    work.commit("a new version and a new record");
    tag(&work, &record_id(0), 2, count + 1);
    tag(&work, &record_id(count), 1, count + 2);
    let report: serde_json::Value =
        serde_json::from_str(&build_limited(&work, &site, "api=2", &["--json"])).unwrap();
    assert_eq!(report["rendered_records"], 2, "{report}");
    assert!(read(&site, "browse/all/index.html").contains(&format!("Record {count}<")));
    let state_after: BTreeMap<PathBuf, u64> = inodes(&site, ".capsule-site")
        .into_iter()
        .chain(inodes(&site, ".capsule-site.json"))
        .collect();
    (
        rewritten(&listings, &listed(&site)),
        rewritten(&state, &state_after),
        state_after.len(),
    )
}

/// Listing pages and the API's record list are numbered oldest first, so a new version
/// and a new record rewrite as many of their files in a small archive as in one twice
/// its size.
#[test]
fn one_new_version_rewrites_a_bounded_number_of_listing_pages() {
    let (small, _, _) = rebuild_after_one_change(11);
    let (large, _, _) = rebuild_after_one_change(21);
    assert_eq!(
        small.len(),
        large.len(),
        "listing files written after one change: {small:?} and {large:?}"
    );
    // Six listings (all, schema, experiment, year, keyword, person), each: its newest
    // page, the page of the oldest record, and, as the new record fills a page, that
    // page and the two below it (their links to the pages near them); and the facet
    // overview; the same five pages of the API's record list.
    assert!(large.len() <= 7 * 5 + 1, "{large:?}");
    for listing in ["all", "schema/analysis", "person/alice-analyst"] {
        let page = |name: &str| PathBuf::from(format!("browse/{listing}/{name}"));
        assert!(large.contains(&page("index.html")), "{large:?}");
        assert!(large.contains(&page("1.html")), "the oldest record's page");
        assert!(!large.contains(&page("2.html")), "{large:?}");
    }
    let api = |name: &str| PathBuf::from(format!("api/records/{name}"));
    assert!(large.contains(&api("index.json")) && large.contains(&api("index-1.json")));
    assert!(!large.contains(&api("index-2.json")), "{large:?}");
}

/// The incremental state is split: one new version and one new record rewrite the
/// top file, the parts of those two records and the parts of the few folders of shared
/// pages that changed (six listings, the facet overview, the API's record list, the
/// schema's page with its count, the root's home, feed and sitemaps): as many in a small archive as in a larger one, and
/// far from all of them.
#[test]
fn one_change_rewrites_a_bounded_number_of_state_files() {
    for count in [11, 21] {
        let (_, rewritten, total) = rebuild_after_one_change(count);
        let parts = |kind: &str| {
            rewritten
                .iter()
                .filter(|p| {
                    p.to_string_lossy()
                        .starts_with(&format!(".capsule-site/{kind}-"))
                })
                .count()
        };
        assert!(parts("r") <= 2, "{rewritten:?}");
        assert!(parts("p") <= 10, "{rewritten:?}");
        assert_eq!(
            rewritten.len(),
            parts("r") + parts("p") + 1,
            "{rewritten:?}"
        );
        assert!(rewritten
            .iter()
            .any(|p| p == Path::new(".capsule-site.json")));
        assert!(
            rewritten.len() < total,
            "{} of {total} state files rewritten",
            rewritten.len()
        );
    }
}

/// `sitemap.xml` is a sitemap index naming sitemaps of at most the limit of URLs;
/// together they hold every record's landing page, the home page and the schema pages
/// once.
#[test]
fn the_sitemap_is_an_index_of_sitemaps_within_the_limit() {
    let (_server, work) = many_records(7, 50);
    let site = work.path.join("out/site");
    let base = "https://analyses.example.org/cap/";
    build_limited(&work, &site, "sitemap=3", &["--base-url", base]);
    const NS: &str = "http://www.sitemaps.org/schemas/sitemap/0.9";
    let text = read(&site, "sitemap.xml");
    let index = roxmltree::Document::parse(&text).expect("sitemap.xml parses");
    let root = index.root_element();
    assert_eq!(root.tag_name().name(), "sitemapindex");
    assert_eq!(root.tag_name().namespace(), Some(NS));
    let mut urls = Vec::new();
    let mut sitemaps = 0;
    for sitemap in root.children().filter(|n| n.is_element()) {
        assert_eq!(sitemap.tag_name().name(), "sitemap");
        let loc = sitemap
            .children()
            .find(|n| n.has_tag_name((NS, "loc")))
            .and_then(|n| n.text())
            .expect("a sitemap has a loc");
        let path = loc.strip_prefix(base).expect("absolute from the base URL");
        assert!(!path.contains('/'), "{path}: sitemaps sit at the root");
        let text = read(&site, path);
        let doc = roxmltree::Document::parse(&text).expect("a sitemap parses");
        let set = doc.root_element();
        assert_eq!(set.tag_name().name(), "urlset");
        assert_eq!(set.tag_name().namespace(), Some(NS));
        let mine: Vec<String> = set
            .children()
            .filter(|n| n.is_element())
            .map(|url| {
                assert!(url.has_tag_name((NS, "url")));
                url.children()
                    .find(|n| n.has_tag_name((NS, "loc")))
                    .and_then(|n| n.text())
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert!(!mine.is_empty() && mine.len() <= 3, "{path}: {mine:?}");
        urls.extend(mine);
        sitemaps += 1;
    }
    assert!(
        sitemaps >= 3,
        "7 records, home and schemas in sitemaps of 3"
    );
    let unique: BTreeSet<&String> = urls.iter().collect();
    assert_eq!(unique.len(), urls.len(), "a URL in two sitemaps: {urls:?}");
    for i in 0..7 {
        assert!(urls.contains(&format!("{base}records/{}/", record_id(i))));
    }
    assert!(urls.contains(&base.to_string()));
    assert!(urls.iter().any(|u| u.contains("/schemas/analysis/")));
    check_links(&site);
}

/// The script call `capsuleSearch.<name>(...)` of a search file, its arguments as JSON.
fn search_call(site: &Path, path: &str, name: &str) -> serde_json::Value {
    let text = read(site, path);
    let inner = text
        .trim_end()
        .strip_prefix(&format!("capsuleSearch.{name}("))
        .and_then(|t| t.strip_suffix(");"))
        .unwrap_or_else(|| panic!("{path}: {text}"));
    serde_json::from_str(&format!("[{inner}]")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// What the browser's search finds in a site: every term, looked up as search.js does
/// (in the shard of the longest key it starts with), with the records and weights its
/// postings name. Document numbers and the shard layout are left out: a rebuild keeps
/// both where a full build renumbers and rebalances.
fn searchable(site: &Path) -> BTreeMap<String, BTreeSet<(String, u64)>> {
    let manifest = search_call(site, "search/manifest.js", "manifest");
    let chunk = manifest[0]["chunk"].as_u64().unwrap();
    let keys: Vec<String> = manifest[0]["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    let mut chunks: BTreeMap<u64, serde_json::Value> = BTreeMap::new();
    let mut out: BTreeMap<String, BTreeSet<(String, u64)>> = BTreeMap::new();
    for key in &keys {
        let hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
        let hex = if hex.is_empty() { "_".into() } else { hex };
        let shard = search_call(site, &format!("search/t/{hex}.js"), "shard");
        for (term, list) in shard[1].as_object().unwrap() {
            let best = keys
                .iter()
                .filter(|k| term.starts_with(k.as_str()))
                .max_by_key(|k| k.len());
            assert_eq!(
                best,
                Some(key),
                "{term} is in a shard search.js never loads"
            );
            let list: Vec<u64> = list
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_u64().unwrap())
                .collect();
            let mut doc = 0;
            for (i, pair) in list.chunks(2).enumerate() {
                doc = if i == 0 { pair[0] } else { doc + pair[0] };
                let rows = chunks.entry(doc / chunk).or_insert_with(|| {
                    search_call(site, &format!("search/d/{}.js", doc / chunk), "docs")[1].clone()
                });
                let id = rows[(doc % chunk) as usize][0]
                    .as_str()
                    .unwrap()
                    .to_string();
                out.entry(term.clone()).or_default().insert((id, pair[1]));
            }
        }
    }
    out
}

/// Builds `site` incrementally and a full site beside it: they are the same site (the
/// incremental state aside), and their search finds the same records for every term.
fn assert_rebuild_is_a_full_build(work: &Work, site: &Path, what: &str) {
    assert_rebuild(work, site, what, true)
}

/// Builds `site` again (`incremental`: expecting an incremental build) and a full
/// site beside it, and compares them.
fn assert_rebuild(work: &Work, site: &Path, what: &str, incremental: bool) {
    let report: serde_json::Value =
        serde_json::from_str(&build_limited(work, site, "api=2,sitemap=3", &["--json"])).unwrap();
    assert_eq!(report["incremental"], incremental, "{what}: {report}");
    let full = work.path.join("out/full");
    let _ = std::fs::remove_dir_all(&full);
    build_limited(work, &full, "api=2,sitemap=3", &["--full"]);
    let site_file = |k: &PathBuf| {
        let k = k.to_string_lossy();
        !k.starts_with(".capsule-site")
            && !k.starts_with("search/t/")
            && !k.starts_with("search/d/")
            && k != "search/manifest.js"
    };
    let (inc, all) = (files(site), files(&full));
    assert_eq!(searchable(site), searchable(&full), "{what}: search");
    assert_eq!(
        inc.keys().filter(|k| site_file(k)).collect::<Vec<_>>(),
        all.keys().filter(|k| site_file(k)).collect::<Vec<_>>(),
        "{what}"
    );
    for (path, bytes) in all.iter().filter(|(k, _)| site_file(k)) {
        assert!(
            inc[path] == *bytes,
            "{what}: {} differs from a full build",
            path.display()
        );
    }
}

/// An incremental build is a full build after each kind of change the state must
/// follow: a new version that moves a record to other listings, a record's tags
/// deleted, a tag moved to another commit, a deposit restricted on the branch (its
/// shard changes, its tags do not), a record withdrawn, and nothing at all; a schema's
/// title changed makes a full build.
#[test]
fn a_rebuild_is_a_full_build_after_each_kind_of_change() {
    let (_server, work) = many_records(9, 2);
    // Keywords that put records on several listings beside the common one.
    for i in 0..9 {
        let path = dep(&record_id(i), "deposit.json");
        work.write(
            &path,
            read(&work.path, &path).replace("\"paging\"", &format!("\"paging\", \"k{}\"", i % 3)),
        );
    }
    work.commit("keywords");
    for i in 0..9 {
        run_ok(git(&work.path).args(["tag", "-d", &format!("records/{}/v1", record_id(i))]));
        tag(&work, &record_id(i), 1, i);
    }
    let site = work.path.join("out/site");
    build_limited(&work, &site, "api=2,sitemap=3", &[]);
    assert_rebuild_is_a_full_build(&work, &site, "nothing changed");

    let path = dep(&record_id(4), "deposit.json");
    work.write(
        &path,
        read(&work.path, &path).replace("\"k1\"", "\"k2\", \"Ünïque\""),
    );
    work.commit("record 4 moves from k1 to k2");
    tag(&work, &record_id(4), 2, 20);
    assert_rebuild_is_a_full_build(&work, &site, "a new version in other listings");

    run_ok(git(&work.path).args(["tag", "-d", &format!("records/{}/v1", record_id(2))]));
    assert_rebuild_is_a_full_build(&work, &site, "a record's tag deleted");

    let path = dep(&record_id(5), "deposit.json");
    work.write(
        &path,
        read(&work.path, &path).replace("Record 5", "Record five"),
    );
    work.commit("record 5 retitled");
    run_ok(git(&work.path).args(["tag", "-d", &format!("records/{}/v1", record_id(5))]));
    tag(&work, &record_id(5), 1, 5);
    assert_rebuild_is_a_full_build(&work, &site, "a tag moved");

    let path = dep(&record_id(6), "deposit.json");
    let mut deposit: serde_json::Value = serde_json::from_str(&read(&work.path, &path)).unwrap();
    deposit["_access"]["deposit-read"] = serde_json::json!({"users": ["alice"], "roles": []});
    work.write(&path, pretty(&deposit));
    work.commit("record 6 restricted");
    assert_rebuild_is_a_full_build(&work, &site, "a deposit restricted on the branch");
    // The state keeps it under a digest of its id, as a full build's does.
    for (path, bytes) in files(&site) {
        if path.to_string_lossy().starts_with(".capsule-site") {
            assert!(
                !String::from_utf8_lossy(&bytes).contains(&record_id(6)),
                "{} names a deposit the site does not show",
                path.display()
            );
        }
    }

    let out = work.capsule_as(
        "alice",
        &["withdraw", &record_id(7), "--reason", "Retracted"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_rebuild_is_a_full_build(&work, &site, "a record withdrawn");

    let schema = "schemas/analysis/1.0.0.json";
    let mut value: serde_json::Value = serde_json::from_str(&read(&work.path, schema)).unwrap();
    value["title"] = "Analysis, renamed".into();
    work.write(schema, pretty(&value));
    work.commit("the schema renamed");
    // Record pages show the schema's titles: every page may change.
    assert_rebuild(&work, &site, "a schema's title changed", false);
    assert!(read(&site, "browse/index.html").contains("Analysis, renamed"));
}
