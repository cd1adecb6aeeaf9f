//! One record (or draft) from git to pages: its versions, what a public build may show
//! of them, files, reviews, the views and the rendered pages.
//!
//! This is the part of a build that runs in parallel, one record at a time, each worker
//! with its own repository handle and schema registry.

use std::collections::BTreeMap;

use git2::{ObjectType, Oid, Repository, Tree};
use serde_json::Value;

use crate::access::DepositAccess;
use crate::archive::DepositsTree;
use crate::deposit::{lfs_pointer, parse_latest_schema_ref, parse_schema_ref, SchemaRef};
use crate::history::{diff_values, rfc3339};
use crate::preserve::doi::{Registered, IDENTIFIERS};
use crate::preserve::metadata::Record;
use crate::preserve::tombstone::{Tombstone, TOMBSTONE};
use crate::record::{Review, ReviewKind};
use crate::schema::{CompiledSchema, SchemaRegistry};

use super::api;
use super::error::SiteError;
use super::facts::{deposit_title, facet_slug, keywords, people};
use super::fields::{self, one_line};
use super::model::*;
use super::preserve::{self, Download};
use super::render::Renderer;
use super::search::SearchDoc;
use super::util::{human_size, sha256_hex};
use super::write::{is_safe_relative, Output};

/// What the planner knows about a record before reading it: its tags and its folder.
#[derive(Debug, Clone)]
pub struct RecordInput {
    pub id: String,
    /// (version, tag object or commit id, commit id), ascending.
    pub tags: Vec<(u32, Oid, Oid)>,
    /// The deposit's folder at the build revision (`None`: deleted there, or never
    /// on that branch).
    pub folder: Option<Oid>,
    /// For an internal build: the deposit's state on the branch is a draft to show.
    pub draft: bool,
}

/// What one record contributes to the rest of the site.
pub struct RecordOut {
    pub summary: RecordSummary,
    pub search: SearchDoc,
    /// Latest shown version's commit (for the next incremental build).
    pub commit: String,
    /// (version, date) of each shown version, for the feed.
    pub versions: Vec<(u32, String)>,
}

/// Shared, read-only inputs of every worker.
pub struct Shared<'a> {
    pub renderer: &'a Renderer,
    pub output: &'a Output,
    pub internal: bool,
    pub base_url: String,
    pub archive_name: String,
}

struct Version {
    number: u32,
    commit: Oid,
    date: String,
    message: String,
    deposit: Value,
    schema: Option<SchemaRef>,
    files: Vec<FileEntry>,
}

#[derive(Clone)]
struct FileEntry {
    path: String,
    blob: Oid,
    size: u64,
    sha256: String,
    lfs: bool,
}

/// A worker's own state: its repository handle, compiled schemas and the `deposits`
/// folders it read last.
pub struct Worker<'r> {
    repo: &'r Repository,
    registry: SchemaRegistry,
    compiled: BTreeMap<(Oid, SchemaRef), Option<std::sync::Arc<CompiledSchema>>>,
    /// `deposits` at the commits read last, most recent first. Every record reads its
    /// folder at the build revision and at each version's commit; at 100k deposits
    /// `deposits` is a 3.7 MB tree, which libgit2's object cache may evict between two
    /// records (and then inflates and parses again).
    deposits: Vec<(Oid, Option<DepositsTree<'r>>)>,
}

/// How many `deposits` folders a worker keeps: the build revision's and those of the
/// commits of the record at hand.
const DEPOSITS_KEPT: usize = 4;

impl<'r> Worker<'r> {
    pub fn new(repo: &'r Repository) -> Worker<'r> {
        Worker {
            repo,
            registry: SchemaRegistry::new(),
            compiled: BTreeMap::new(),
            deposits: Vec::new(),
        }
    }

    /// The deposit's folder at `commit`, `None` when it has none there.
    fn folder(&mut self, commit: Oid, id: &str) -> Result<Option<Tree<'r>>, SiteError> {
        let deposits = match self.deposits.iter().position(|(c, _)| *c == commit) {
            Some(i) => {
                let kept = self.deposits.remove(i);
                self.deposits.insert(0, kept);
                &self.deposits[0].1
            }
            None => {
                let deposits = DepositsTree::of_commit(self.repo, commit)?;
                self.deposits.truncate(DEPOSITS_KEPT - 1);
                self.deposits.insert(0, (commit, deposits));
                &self.deposits[0].1
            }
        };
        match deposits
            .as_ref()
            .map(|d| d.folder(id))
            .transpose()?
            .flatten()
        {
            Some(folder) => Ok(Some(self.repo.find_tree(folder)?)),
            None => Ok(None),
        }
    }

    fn schema(
        &mut self,
        commit: Oid,
        sref: &Option<SchemaRef>,
    ) -> Option<std::sync::Arc<CompiledSchema>> {
        let sref = sref.as_ref()?;
        // Schema versions never change once published, so any commit's copy will do;
        // we use the version's own commit, which is sure to have it.
        let tree_id = self.repo.find_commit(commit).ok()?.tree_id();
        let key = (tree_id, sref.clone());
        if let Some(found) = self.compiled.get(&key) {
            return found.clone();
        }
        let found = crate::archive::GitTree::at_commit(self.repo, commit)
            .ok()
            .and_then(|tree| self.registry.compile(&tree, sref).ok().flatten());
        // The cache is per tree; bounded so that long histories do not pile up.
        if self.compiled.len() > 256 {
            self.compiled.clear();
        }
        self.compiled.insert(key, found.clone());
        found
    }

    /// Reads, filters, renders and writes one record. `Ok(None)`: nothing of it may
    /// appear in this build.
    pub fn record(
        &mut self,
        shared: &Shared<'_>,
        input: &RecordInput,
        rev: Oid,
    ) -> Result<Option<RecordOut>, SiteError> {
        let id = input.id.as_str();
        let folder_now = match input.folder {
            Some(_) => self.folder(rev, id)?,
            None => None,
        };
        let current = match &folder_now {
            Some(folder) => read_json(self.repo, folder)?,
            None => None,
        };
        // The blob of `deposit.json` at the build revision: a version whose deposit is
        // that same blob (the latest, unless the deposit changed since) takes the value
        // already parsed instead of inflating and parsing it again.
        let current_blob = folder_now
            .as_ref()
            .and_then(|f| f.get_name("deposit.json").map(|e| e.id()));
        // A public build shows a record only while the deposit is readable by everyone,
        // both as published and as it stands now: restricting access on the branch
        // takes it off the site without a new version.
        if !shared.internal {
            if let Some(now) = &current {
                if !DepositAccess::of(now).is_public() {
                    return Ok(None);
                }
            }
        }
        let mut versions = Vec::new();
        for (number, tag, commit) in &input.tags {
            let Some(folder) = self.folder(*commit, id)? else {
                continue;
            };
            let same_blob = current_blob.is_some()
                && folder.get_name("deposit.json").map(|e| e.id()) == current_blob;
            let deposit = match &current {
                Some(now) if same_blob => Some(now.clone()),
                _ => read_json(self.repo, &folder)?,
            };
            let Some(deposit) = deposit else {
                continue;
            };
            if !shared.internal && !DepositAccess::of(&deposit).is_public() {
                continue;
            }
            let (date, message) = tag_info(self.repo, *tag, *commit);
            versions.push(Version {
                number: *number,
                commit: *commit,
                date,
                message,
                schema: schema_ref(&deposit),
                files: files_in(self.repo, &folder)?,
                deposit,
            });
        }
        if !shared.internal {
            // The latest record version decides; older public versions of a deposit
            // that is now restricted do not appear either.
            let latest_public = input
                .tags
                .last()
                .is_some_and(|(n, _, _)| versions.last().is_some_and(|v| v.number == *n));
            if !latest_public {
                return Ok(None);
            }
        }
        let registered = match &folder_now {
            Some(folder) => registered_in(self.repo, folder)?,
            None => Registered::default(),
        };
        if let Some(folder) = &folder_now {
            if let Some(bytes) = blob_in(self.repo, folder, TOMBSTONE)? {
                // Withdrawn: only the tombstone stays, and the record leaves every
                // listing, the search index and the API's lists. A tombstone that does
                // not parse cannot have passed the hook; nothing of the record is shown.
                if let (Ok(tombstone), Some(latest)) =
                    (Tombstone::parse(bytes.content()), versions.last())
                {
                    let numbers: Vec<u32> = versions.iter().map(|v| v.number).collect();
                    let record = preserve::tombstone_record(preserve::record_of(
                        &shared.base_url,
                        &shared.archive_name,
                        id,
                        latest.number,
                        &numbers,
                        &latest.date,
                        &latest.deposit,
                        &registered,
                    ));
                    preserve::write_withdrawn(
                        shared.renderer,
                        shared.output,
                        &record,
                        &tombstone,
                        &shared.base_url,
                    )?;
                }
                return Ok(None);
            }
        }
        let draft = if shared.internal && input.draft {
            match (&current, &folder_now) {
                (Some(deposit), Some(folder)) => {
                    let commit = rev;
                    Some(Version {
                        number: versions.last().map_or(0, |v| v.number),
                        commit,
                        date: commit_date(self.repo, commit),
                        message: String::new(),
                        schema: schema_ref(deposit),
                        files: files_in(self.repo, folder)?,
                        deposit: deposit.clone(),
                    })
                }
                _ => None,
            }
        } else {
            None
        };
        if versions.is_empty() && draft.is_none() {
            return Ok(None);
        }
        let reviews = match &folder_now {
            Some(folder) => reviews_in(self.repo, folder, shared.internal)?,
            None => Vec::new(),
        };
        self.render_all(shared, id, &versions, draft, reviews, &registered)
            .map(Some)
    }

    fn render_all(
        &mut self,
        shared: &Shared<'_>,
        id: &str,
        versions: &[Version],
        draft: Option<Version>,
        reviews: Vec<ReviewView>,
        registered: &Registered,
    ) -> Result<RecordOut, SiteError> {
        let landing = format!("records/{id}/index.html");
        let created = versions.first().map(|v| v.date.clone());
        let mut out = None;
        // Version pages, diffs and the per-version API.
        let links: Vec<VersionLink> = versions
            .iter()
            .enumerate()
            .map(|(i, v)| VersionLink {
                number: v.number,
                date: v.date.clone(),
                message: v.message.clone(),
                path: if i + 1 == versions.len() {
                    landing.clone()
                } else {
                    format!("records/{id}/v{}/index.html", v.number)
                },
                diff_path: (i > 0).then(|| format!("records/{id}/v{}/diff/index.html", v.number)),
                current: false,
            })
            .collect();
        let numbers: Vec<u32> = versions.iter().map(|v| v.number).collect();
        // Each version's signposts, for the record's one linkset.
        let mut signposts: Vec<(u32, Vec<preserve::Signpost>)> = Vec::new();
        for (i, v) in versions.iter().enumerate() {
            let schema = self.schema(v.commit, &v.schema);
            let is_latest = i + 1 == versions.len();
            let record = v.record(shared, id, &numbers, registered);
            let downloads = v.downloads(shared, id);
            let view = self.view(
                shared,
                id,
                v,
                (&record, &downloads),
                schema.as_deref(),
                &links,
                created.as_deref().unwrap_or(&v.date),
                versions.last().map_or(0, |l| l.number),
                false,
                if is_latest {
                    reviews.clone()
                } else {
                    Vec::new()
                },
            );
            for file in &v.files {
                if !file.lfs && is_safe_relative(&file.path) {
                    let blob = self.repo.find_blob(file.blob)?;
                    shared.output.write(
                        &super::downloads::file_path(id, v.number, &file.path),
                        blob.content(),
                    )?;
                }
            }
            let version_path = format!("records/{id}/v{}/index.html", v.number);
            // The landing page is the latest version's page: at the version's own path
            // a small page sends readers there, rather than a second copy (every record
            // page twice was a third of a site's bytes). It becomes the version's page
            // when the next version is published, which renders the record again.
            let paths: &[&str] = if is_latest {
                &[&landing]
            } else {
                &[&version_path]
            };
            let html = shared
                .renderer
                .render_at("record.html", &view.title, paths, &view)?;
            if is_latest {
                shared.output.write(
                    &version_path,
                    latest_version_page(shared, &view.title, v.number, id).as_bytes(),
                )?;
            } else {
                shared.output.write(&version_path, html[0].as_bytes())?;
            }
            preserve::write_version_files(shared.output, &record)?;
            signposts.push((v.number, view.signposts.clone()));
            let json = api::record(
                &shared.base_url,
                shared.internal,
                id,
                v.number,
                &v.deposit,
                &view,
                v.schema.as_ref(),
                schema.as_deref(),
                &v.files_api(id, shared),
            );
            let json_bytes = api::to_bytes(&json);
            let version_api = format!("api/records/{id}/v{}/index.json", v.number);
            shared.output.write(&version_api, &json_bytes)?;
            if i > 0 {
                let prev = &versions[i - 1];
                let mut diff = diff_view(id, &view.title, prev, v, schema.as_deref());
                if is_latest {
                    diff.to_path.clone_from(&landing);
                }
                let path = format!("records/{id}/v{}/diff/index.html", v.number);
                let title = format!("{}: v{} → v{}", view.title, prev.number, v.number);
                let html = shared.renderer.render("diff.html", &title, &path, &diff)?;
                shared.output.write(&path, html.as_bytes())?;
            }
            if is_latest {
                shared.output.write(&landing, html[0].as_bytes())?;
                // CAP's route of the record is the latest version's document, byte
                // for byte: the same file under a second name (a hard link), not a
                // second file.
                shared
                    .output
                    .write_same(&version_api, &format!("api/records/{id}/index.json"))?;
                out = Some((view, v, json));
            }
        }
        preserve::write_record_linkset(shared.output, id, &signposts, &shared.base_url)?;
        if let Some(d) = &draft {
            let schema = self.schema(d.commit, &d.schema);
            let path = format!("drafts/{id}/index.html");
            let record = d.record(shared, id, &numbers, registered);
            let mut view = self.view(
                shared,
                id,
                d,
                (&record, &[]),
                schema.as_deref(),
                &links,
                created.as_deref().unwrap_or(&d.date),
                versions.last().map_or(0, |l| l.number),
                true,
                reviews.clone(),
            );
            view.landing_path = path.clone();
            view.api_path = format!("api/deposits/{id}/index.json");
            let html = shared
                .renderer
                .render("record.html", &view.title, &path, &view)?;
            shared.output.write(&path, html.as_bytes())?;
            let json = api::record(
                &shared.base_url,
                shared.internal,
                id,
                d.number,
                &d.deposit,
                &view,
                d.schema.as_ref(),
                schema.as_deref(),
                &[],
            );
            shared
                .output
                .write(&view.api_path.clone(), &api::to_bytes(&json))?;
            if out.is_none() {
                out = Some((view, d, json));
            }
        }
        let (view, latest, _json) = out.expect("a record has a version or a draft");
        let summary = RecordSummary {
            id: id.to_string(),
            title: view.title.clone(),
            schema: view.schema.name.clone(),
            schema_title: view.schema.title.clone(),
            experiment: view.experiment.clone(),
            version: view.version,
            created: view.created.clone(),
            updated: view.updated.clone(),
            year: view.created.get(..4).unwrap_or("").to_string(),
            people: view.people.clone(),
            keywords: view.keywords.iter().map(|k| k.label.clone()).collect(),
            path: view.landing_path.clone(),
            draft: view.draft,
        };
        let search = SearchDoc::from_deposit(&summary, &latest.deposit);
        Ok(RecordOut {
            summary,
            search,
            commit: latest.commit.to_string(),
            versions: versions
                .iter()
                .map(|v| (v.number, v.date.clone()))
                .collect(),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn view(
        &self,
        shared: &Shared<'_>,
        id: &str,
        v: &Version,
        (record, downloads): (&Record, &[Download]),
        schema: Option<&CompiledSchema>,
        links: &[VersionLink],
        created: &str,
        latest: u32,
        draft: bool,
        reviews: Vec<ReviewView>,
    ) -> RecordView {
        let title = deposit_title(&v.deposit).unwrap_or_else(|| id.to_string());
        let people = people(&v.deposit);
        let keywords = keywords(&v.deposit)
            .into_iter()
            .map(|k| FacetLink {
                path: format!("browse/keyword/{}/index.html", facet_slug(&k)),
                label: k,
                count: 0,
            })
            .collect();
        let (schema_link, experiment) = schema_link(v.schema.as_ref(), schema, &v.deposit);
        let landing_path = format!("records/{id}/index.html");
        let citation = preserve::citation(record);
        let json_ld = preserve::json_ld(record, downloads, created, &v.date);
        let signposts = if draft {
            Vec::new()
        } else {
            preserve::signposts(record, downloads, &shared.base_url)
        };
        let reviewable = schema.is_some_and(|s| s.root.reviewable());
        let mut sections = fields::sections(&v.deposit, schema);
        if shared.renderer.embedded_templates() {
            fields::html::render_sections(&mut sections);
        }
        RecordView {
            id: id.to_string(),
            title,
            version: v.number,
            latest_version: latest,
            is_latest: v.number == latest && !draft,
            draft,
            created: created.to_string(),
            updated: v.date.clone(),
            message: v.message.clone(),
            schema: schema_link,
            experiment_path: format!("browse/experiment/{}/index.html", facet_slug(&experiment)),
            experiment,
            people,
            keywords,
            sections,
            files: v
                .files
                .iter()
                .map(|f| FileView {
                    name: f.path.clone(),
                    size: f.size,
                    size_text: human_size(f.size),
                    sha256: f.sha256.clone(),
                    path: (!f.lfs && !draft && is_safe_relative(&f.path))
                        .then(|| super::downloads::file_link(id, v.number, &f.path)),
                    lfs: f.lfs,
                })
                .collect(),
            versions: links
                .iter()
                .map(|l| VersionLink {
                    current: l.number == v.number && !draft,
                    ..l.clone()
                })
                .rev()
                .collect(),
            citation,
            reviewable,
            reviews: if reviewable { reviews } else { Vec::new() },
            api_path: format!("api/records/{id}/v{}/index.json", v.number),
            landing_path,
            json_ld,
            ids: preserve::identifiers_view(record),
            signposts,
            linkset: preserve::linkset_href(&shared.base_url, id),
        }
    }
}

impl Version {
    /// The version's facts and identifiers, as `capsule export` and `capsule cite`
    /// build them.
    fn record(
        &self,
        shared: &Shared<'_>,
        id: &str,
        numbers: &[u32],
        registered: &Registered,
    ) -> Record {
        preserve::record_of(
            &shared.base_url,
            &shared.archive_name,
            id,
            self.number,
            numbers,
            &self.date,
            &self.deposit,
            registered,
        )
    }

    /// The files the site serves, with absolute URLs.
    fn downloads(&self, shared: &Shared<'_>, id: &str) -> Vec<Download> {
        let base = super::util::base_with_slash(&shared.base_url);
        self.files
            .iter()
            .filter(|f| !f.lfs && is_safe_relative(&f.path))
            .map(|f| Download {
                name: f.path.clone(),
                url: format!(
                    "{base}{}",
                    super::downloads::file_link(id, self.number, &f.path)
                ),
                size: f.size,
                sha256: f.sha256.clone(),
            })
            .collect()
    }

    fn files_api(&self, id: &str, shared: &Shared<'_>) -> Vec<Value> {
        let base = super::util::base_with_slash(&shared.base_url);
        self.files
            .iter()
            .map(|f| {
                let mut file = serde_json::json!({
                    "key": f.path,
                    "size": f.size,
                    "checksum": format!("sha256:{}", f.sha256),
                });
                if !f.lfs && is_safe_relative(&f.path) {
                    file["links"] = serde_json::json!({
                        "self": format!("{base}{}", super::downloads::file_link(id, self.number, &f.path)),
                    });
                } else if f.lfs {
                    file["lfs"] = Value::Bool(true);
                }
                file
            })
            .collect()
    }
}

/// The page at `records/<id>/v<N>/` while N is the latest version: it sends readers
/// (and robots, through its canonical link) to the landing page, which shows it.
fn latest_version_page(shared: &Shared<'_>, title: &str, version: u32, id: &str) -> String {
    let base_url = &shared.base_url;
    let canonical = if base_url.trim().is_empty() {
        String::new()
    } else {
        format!(
            "<link rel=\"canonical\" href=\"{}\">\n",
            tera::escape_html(&format!(
                "{}records/{id}/",
                super::util::base_with_slash(base_url)
            ))
        )
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{} (version {version}) · {}</title>\n{canonical}<meta http-equiv=\"refresh\" content=\"0; url=../index.html\">\n</head>\n<body>\n<p>Version {version} is the latest version of this record: <a href=\"../index.html\">read it on the record's page</a>.</p>\n</body>\n</html>\n",
        tera::escape_html(title),
        tera::escape_html(&shared.archive_name),
    )
}

/// The file `name` of `folder`, `None` when it is missing or not a file.
fn blob_in<'r>(
    repo: &'r Repository,
    folder: &Tree<'_>,
    name: &str,
) -> Result<Option<git2::Blob<'r>>, SiteError> {
    match folder.get_name(name) {
        Some(e) if e.kind() == Some(ObjectType::Blob) => Ok(Some(repo.find_blob(e.id())?)),
        _ => Ok(None),
    }
}

/// The DOIs registered for the deposit (`identifiers.json` beside it); none when the
/// file is missing or unreadable (it cannot have passed the hook).
fn registered_in(repo: &Repository, folder: &Tree<'_>) -> Result<Registered, SiteError> {
    Ok(match blob_in(repo, folder, IDENTIFIERS)? {
        Some(blob) => Registered::parse(blob.content()).unwrap_or_default(),
        None => Registered::default(),
    })
}

/// The deposit's `deposit.json` in its folder.
fn read_json(repo: &Repository, folder: &Tree<'_>) -> Result<Option<Value>, SiteError> {
    let Some(blob) = blob_in(repo, folder, "deposit.json")? else {
        return Ok(None);
    };
    // A deposit that is not JSON cannot have passed the hook; skip it rather than
    // failing the whole site.
    Ok(crate::json::from_bytes(blob.content())
        .ok()
        .filter(Value::is_object))
}

fn tag_info(repo: &Repository, tag: Oid, commit: Oid) -> (String, String) {
    match repo.find_tag(tag) {
        Ok(t) => {
            let seconds = t
                .tagger()
                .map(|s| s.when().seconds())
                .unwrap_or_else(|| commit_seconds(repo, commit));
            (
                rfc3339(seconds),
                crate::preserve::audit::message_without_trailer(t.message().unwrap_or(""))
                    .trim()
                    .to_string(),
            )
        }
        Err(_) => (commit_date(repo, commit), String::new()),
    }
}

fn commit_seconds(repo: &Repository, commit: Oid) -> i64 {
    repo.find_commit(commit)
        .map(|c| c.time().seconds())
        .unwrap_or(0)
}

fn commit_date(repo: &Repository, commit: Oid) -> String {
    rfc3339(commit_seconds(repo, commit))
}

fn schema_ref(deposit: &Value) -> Option<SchemaRef> {
    let text = deposit.get("$schema")?.as_str()?;
    parse_schema_ref(text).or_else(|| parse_latest_schema_ref(text))
}

/// The deposit's files (besides deposit.json and reviews), with sizes and digests.
fn files_in(repo: &Repository, folder: &Tree<'_>) -> Result<Vec<FileEntry>, SiteError> {
    let mut out = Vec::new();
    let mut failure = None;
    folder.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
        let Some(name) = entry.name() else {
            return git2::TreeWalkResult::Skip;
        };
        if dir.is_empty() && (name == "reviews" || name == "deposit.json") {
            return git2::TreeWalkResult::Skip;
        }
        if entry.kind() != Some(ObjectType::Blob) {
            return git2::TreeWalkResult::Ok;
        }
        match repo.find_blob(entry.id()) {
            Ok(blob) => {
                let bytes = blob.content();
                let (size, sha256, lfs) = match lfs_pointer(bytes) {
                    Some(p) => (
                        p.size,
                        p.oid.trim_start_matches("sha256:").to_string(),
                        true,
                    ),
                    None => (bytes.len() as u64, sha256_hex(bytes), false),
                };
                out.push(FileEntry {
                    path: format!("{dir}{name}"),
                    blob: entry.id(),
                    size,
                    sha256,
                    lfs,
                });
                git2::TreeWalkResult::Ok
            }
            Err(e) => {
                failure = Some(e);
                git2::TreeWalkResult::Abort
            }
        }
    })?;
    if let Some(e) = failure {
        return Err(e.into());
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The review thread at the build revision. A public build leaves out internal
/// reviews, and every comment and resolution of them, entirely.
fn reviews_in(
    repo: &Repository,
    folder: &Tree<'_>,
    internal: bool,
) -> Result<Vec<ReviewView>, SiteError> {
    let mut parsed: Vec<(String, Review)> = Vec::new();
    let reviews = match folder.get_name("reviews") {
        Some(e) if e.kind() == Some(ObjectType::Tree) => repo.find_tree(e.id())?,
        _ => return Ok(Vec::new()),
    };
    for entry in reviews.iter() {
        let Some(name) = entry.name() else {
            continue;
        };
        if entry.kind() != Some(ObjectType::Blob) {
            continue;
        }
        let blob = repo.find_blob(entry.id())?;
        if let Ok(review) = Review::parse(name, blob.content()) {
            parsed.push((name.trim_end_matches(".json").to_string(), review));
        }
    }
    let visible = |r: &Review| internal || !r.internal;
    let mut threads: Vec<(String, ReviewView)> = Vec::new();
    for (name, review) in &parsed {
        if review.kind == ReviewKind::Review && visible(review) {
            threads.push((name.clone(), review_view(review)));
        }
    }
    for (_, review) in &parsed {
        if review.kind == ReviewKind::Review || !visible(review) {
            continue;
        }
        let Some(parent) = review.review.as_deref() else {
            continue;
        };
        let parent = parent.trim_end_matches(".json");
        if let Some((_, thread)) = threads.iter_mut().find(|(n, _)| n == parent) {
            if review.kind == ReviewKind::Resolution {
                thread.resolved = true;
            }
            thread.comments.push(review_view(review));
        }
    }
    Ok(threads.into_iter().map(|(_, v)| v).collect())
}

fn review_view(r: &Review) -> ReviewView {
    let verdict = r.verdict.clone().unwrap_or_default();
    let label = match verdict.as_str() {
        "approved" => "Approved",
        "request_changes" => "Changes requested",
        "declined" => "Declined",
        _ => "",
    };
    ReviewView {
        kind: r.kind.as_str().to_string(),
        verdict_label: label.to_string(),
        verdict,
        body: r.body.clone(),
        author: r.author.clone(),
        created: r.created.clone(),
        internal: r.internal,
        comments: Vec::new(),
        resolved: false,
    }
}

fn schema_link(
    sref: Option<&SchemaRef>,
    schema: Option<&CompiledSchema>,
    deposit: &Value,
) -> (SchemaLink, String) {
    let (name, version) = match (schema, sref) {
        (Some(s), _) => (s.root.sref.name.clone(), s.root.sref.version.clone()),
        (None, Some(r)) => (r.name.clone(), r.version.clone()),
        (None, None) => (String::new(), String::new()),
    };
    let title = schema
        .and_then(|s| s.root.title.clone())
        .unwrap_or_else(|| name.clone());
    let experiment = schema
        .and_then(|s| s.root.experiment.clone())
        .or_else(|| {
            deposit
                .get("experiment")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_default();
    let path = if schema.is_some() {
        format!("schemas/{name}/{version}/index.html")
    } else {
        String::new()
    };
    (
        SchemaLink {
            name,
            version,
            title,
            path,
        },
        experiment,
    )
}

fn diff_view(
    id: &str,
    title: &str,
    old: &Version,
    new: &Version,
    schema: Option<&CompiledSchema>,
) -> DiffView {
    let changes = diff_values(&old.deposit, &new.deposit)
        .into_iter()
        .filter(|c| {
            let first = c
                .pointer
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap_or("");
            !first.starts_with('_')
        })
        .map(|c| ChangeView {
            kind: format!("{:?}", c.kind).to_lowercase(),
            title: schema
                .map(|s| s.title_path(&c.pointer))
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| c.pointer.clone()),
            old: one_line(c.old.as_ref()),
            new: one_line(c.new.as_ref()),
            pointer: c.pointer,
        })
        .collect();
    let old_files: BTreeMap<&str, &str> = old
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.sha256.as_str()))
        .collect();
    let new_files: BTreeMap<&str, &str> = new
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.sha256.as_str()))
        .collect();
    DiffView {
        id: id.to_string(),
        title: title.to_string(),
        from: old.number,
        to: new.number,
        from_path: format!("records/{id}/v{}/index.html", old.number),
        to_path: format!("records/{id}/v{}/index.html", new.number),
        landing_path: format!("records/{id}/index.html"),
        changes,
        files_added: new_files
            .keys()
            .filter(|k| !old_files.contains_key(*k))
            .map(|k| k.to_string())
            .collect(),
        files_removed: old_files
            .keys()
            .filter(|k| !new_files.contains_key(*k))
            .map(|k| k.to_string())
            .collect(),
        files_changed: new_files
            .iter()
            .filter(|(k, h)| old_files.get(*k).is_some_and(|o| o != *h))
            .map(|(k, _)| k.to_string())
            .collect(),
    }
}
