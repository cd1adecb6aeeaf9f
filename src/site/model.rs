//! What templates see: plain, serialisable views of the site's pages.
//!
//! Templates never receive internal types (git objects, compiled schemas, settings):
//! everything a page shows is copied into these structs first, already filtered for
//! the kind of build (public or internal). Every string in them is raw text; tera
//! escapes it when a template prints it, so a `<script>` in a deposit stays text.
//! Paths are relative to the site's root; templates prefix them with `root`.

use serde::Serialize;

/// The parts every page shares.
#[derive(Debug, Clone, Serialize)]
pub struct SiteView {
    pub title: String,
    pub description: String,
    /// An internal build (drafts, restricted deposits, internal reviews) says so on
    /// every page.
    pub internal: bool,
    pub base_url: String,
    pub records: usize,
}

/// One page's own context: where it sits and what it is called.
#[derive(Debug, Clone, Serialize)]
pub struct PageView {
    pub title: String,
    /// The page's path from the site root (`records/zee/index.html`).
    pub path: String,
    /// The relative way back to the site root (`../../`, or empty at the root).
    pub root: String,
    /// Its absolute address under the base URL (canonical link).
    pub url: String,
}

/// A record as it appears in lists (home, listings, search results, the API index).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct RecordSummary {
    pub id: String,
    pub title: String,
    pub schema: String,
    pub schema_title: String,
    pub experiment: String,
    pub version: u32,
    /// First publication (RFC 3339).
    pub created: String,
    /// The latest version's publication (RFC 3339).
    pub updated: String,
    pub year: String,
    pub people: Vec<String>,
    pub keywords: Vec<String>,
    pub path: String,
    pub draft: bool,
}

/// A link to a facet value with how many records it holds.
#[derive(Debug, Clone, Serialize)]
pub struct FacetLink {
    pub label: String,
    pub path: String,
    pub count: usize,
}

/// One group of facet links (Schemas, Experiments, Years, ...).
#[derive(Debug, Clone, Serialize)]
pub struct FacetGroup {
    pub title: String,
    pub links: Vec<FacetLink>,
    /// Where the full list is, when only the largest are shown.
    pub more: Option<String>,
}

/// The home page.
#[derive(Debug, Clone, Serialize)]
pub struct HomeView {
    pub latest: Vec<RecordSummary>,
    pub facets: Vec<FacetGroup>,
    pub drafts: Vec<RecordSummary>,
}

/// A listing: all records, or those of one facet value, one page of them.
#[derive(Debug, Clone, Serialize)]
pub struct ListingView<'a> {
    pub heading: String,
    pub kind: String,
    /// Borrowed: every record is on many listings, and a 100k-record site has
    /// thousands of them.
    pub records: Vec<&'a RecordSummary>,
    /// How many records the listing has: on its newest page only, so that the
    /// numbered pages stay as they are when a record is added.
    pub total: Option<usize>,
    /// The positions of this page's records in order of first publication (from 1).
    pub first: usize,
    pub last: usize,
    pub pages: Vec<PageLink>,
    pub prev: Option<String>,
    pub next: Option<String>,
    /// Other facets of the records on this listing, for narrowing or wandering.
    pub facets: Vec<FacetGroup>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PageLink {
    /// 0 for the newest page.
    pub number: usize,
    pub label: String,
    pub path: String,
    pub current: bool,
}

/// A facet overview (all keywords, all people, ...).
#[derive(Debug, Clone, Serialize)]
pub struct FacetIndexView {
    pub groups: Vec<FacetGroup>,
}

/// A value as shown: text, maybe a link, maybe an allowed value with its label.
#[derive(Debug, Clone, Serialize)]
pub struct Inline {
    pub text: String,
    /// A safe link target (http, https, mailto or doi.org only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
    /// `url`, `email`, `doi`, `enum`, `number`, `boolean` or `text`.
    pub kind: &'static str,
    /// For an allowed value whose label differs from the stored value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
}

/// One block of a rendered deposit.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Block {
    /// One field: a title and its value.
    Value {
        title: String,
        description: String,
        value: Inline,
    },
    /// A list of plain values (keywords).
    List {
        title: String,
        description: String,
        items: Vec<Inline>,
    },
    /// A nested object: its fields, grouped.
    Group {
        title: String,
        description: String,
        blocks: Vec<Block>,
    },
    /// An array of objects: one row per element, one column per field.
    Table {
        title: String,
        description: String,
        columns: Vec<String>,
        rows: Vec<Vec<Vec<Inline>>>,
    },
}

/// A top-level section of a deposit (one property of the schema's root).
#[derive(Debug, Clone)]
pub struct Section {
    pub anchor: String,
    pub title: String,
    pub description: String,
    pub blocks: Vec<Block>,
    /// The blocks as the embedded `macros.html` renders them, when the site uses the
    /// embedded templates: then templates see `html` and no `blocks` (see
    /// `fields::html`).
    pub html: Option<String>,
}

impl Serialize for Section {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Section", 4)?;
        s.serialize_field("anchor", &self.anchor)?;
        s.serialize_field("title", &self.title)?;
        s.serialize_field("description", &self.description)?;
        match &self.html {
            Some(html) => s.serialize_field("html", html)?,
            None => s.serialize_field("blocks", &self.blocks)?,
        }
        s.end()
    }
}

/// One file of a deposit.
#[derive(Debug, Clone, Serialize)]
pub struct FileView {
    pub name: String,
    pub size: u64,
    pub size_text: String,
    pub sha256: String,
    /// Where the copy in the site is; `None` for Git LFS files, whose content is not
    /// in the repository.
    pub path: Option<String>,
    pub lfs: bool,
}

/// A version in a record's version list.
#[derive(Debug, Clone, Serialize)]
pub struct VersionLink {
    pub number: u32,
    pub date: String,
    pub message: String,
    pub path: String,
    pub diff_path: Option<String>,
    pub current: bool,
}

/// A review, comment or resolution, as the site shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewView {
    pub kind: String,
    pub verdict: String,
    pub verdict_label: String,
    pub body: String,
    pub author: String,
    pub created: String,
    pub internal: bool,
    pub comments: Vec<ReviewView>,
    pub resolved: bool,
}

/// How to cite a record.
#[derive(Debug, Clone, Serialize)]
pub struct Citation {
    pub text: String,
    pub bibtex: String,
    /// The BibTeX and CSL-JSON as `data:` URLs the page offers as downloads (no file
    /// of the site holds them), and the names they download as.
    pub bibtex_url: String,
    pub csl_url: String,
    pub bibtex_name: String,
    pub csl_name: String,
}

/// A record's landing page, or one of its version pages.
#[derive(Debug, Clone, Serialize)]
pub struct RecordView {
    pub id: String,
    pub title: String,
    pub version: u32,
    pub latest_version: u32,
    pub is_latest: bool,
    pub draft: bool,
    pub created: String,
    pub updated: String,
    pub message: String,
    pub schema: SchemaLink,
    pub experiment: String,
    pub experiment_path: String,
    pub people: Vec<String>,
    pub keywords: Vec<FacetLink>,
    pub sections: Vec<Section>,
    pub files: Vec<FileView>,
    pub versions: Vec<VersionLink>,
    pub citation: Citation,
    pub reviewable: bool,
    pub reviews: Vec<ReviewView>,
    pub api_path: String,
    pub landing_path: String,
    /// schema.org JSON-LD, already made safe to sit inside a `<script>` element.
    pub json_ld: String,
    /// The concept and version identifiers.
    pub ids: super::preserve::IdentifiersView,
    /// FAIR Signposting links for the page's head.
    pub signposts: Vec<super::preserve::Signpost>,
    /// The record's linkset (one for the landing page and every version's page):
    /// absolute, or from the site's root when the site has no base URL.
    pub linkset: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SchemaLink {
    pub name: String,
    pub version: String,
    pub title: String,
    pub path: String,
}

/// One changed field between two versions.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeView {
    pub kind: String,
    pub title: String,
    pub pointer: String,
    pub old: String,
    pub new: String,
}

/// The differences between two consecutive versions of a record.
#[derive(Debug, Clone, Serialize)]
pub struct DiffView {
    pub id: String,
    pub title: String,
    pub from: u32,
    pub to: u32,
    pub from_path: String,
    pub to_path: String,
    pub landing_path: String,
    pub changes: Vec<ChangeView>,
    pub files_added: Vec<String>,
    pub files_removed: Vec<String>,
    pub files_changed: Vec<String>,
}

/// One documented field of a schema.
#[derive(Debug, Clone, Serialize)]
pub struct SchemaFieldView {
    pub path: String,
    pub depth: usize,
    pub title: String,
    pub kind: String,
    pub description: String,
    pub required: bool,
    pub allowed: Vec<AllowedValue>,
    pub format: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AllowedValue {
    pub value: String,
    pub label: String,
}

/// A schema version's documentation page.
#[derive(Debug, Clone, Serialize)]
pub struct SchemaView {
    pub name: String,
    pub version: String,
    pub title: String,
    pub description: String,
    pub experiment: String,
    pub reviewable: bool,
    pub fields: Vec<SchemaFieldView>,
    pub versions: Vec<SchemaLink>,
    pub api_path: String,
    pub records_path: Option<String>,
    pub records: usize,
}

/// The list of all schemas.
#[derive(Debug, Clone, Serialize)]
pub struct SchemaIndexView {
    pub schemas: Vec<SchemaLink>,
}
