//! The tantivy schema of the search index and how one deposit version becomes a document.
//!
//! Bump [`FORMAT`] whenever a field, a tokenizer or the meaning of a value changes: an
//! index written with another format is rebuilt from scratch on its next update.

use git2::Oid;
use serde_json::Value;
use tantivy::schema::{
    DateOptions, DateTimePrecision, Facet, FacetOptions, Field, IndexRecordOption,
    JsonObjectOptions, NumericOptions, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RawTokenizer, RemoveLongFilter, SimpleTokenizer, TextAnalyzer,
};
use tantivy::{DateTime, Index, TantivyDocument};

use crate::access::DepositAccess;
use crate::deposit::SchemaRef;

use super::extract::{extract, strings};

/// The layout version of the index, kept in its commit payload.
pub const FORMAT: u32 = 3;

/// Words: split on anything that is not a letter or a digit, lower-case, and fold
/// accents (`Tomás` is found as `tomas`). No stemming: physics vocabulary (`ttbar`,
/// `4l`, `MINIAODSIM`) gains nothing from an English stemmer, and a prefix query
/// (`measur*`) says explicitly what stemming would guess.
pub const TEXT_ANALYZER: &str = "capsule_text";
/// Whole values, lower-cased: ids, status, schema and experiment match exactly but
/// regardless of case.
pub const KEYWORD_ANALYZER: &str = "capsule_keyword";

/// Tokens longer than this are dropped (long hashes and URLs pieces), as tantivy's own
/// default tokenizer does.
const MAX_TOKEN_LEN: usize = 40;

pub fn text_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_LEN))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

fn keyword_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(RawTokenizer::default())
        .filter(LowerCaser)
        .build()
}

/// Tokenizers are not stored in an index: register them on every open.
pub fn register_tokenizers(index: &Index) {
    index.tokenizers().register(TEXT_ANALYZER, text_analyzer());
    index
        .tokenizers()
        .register(KEYWORD_ANALYZER, keyword_analyzer());
}

/// The fields of the index.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    /// `draft/<id>` or `record/<id>/v<N>`: one document per key.
    pub key: Field,
    pub id: Field,
    /// 0 for a draft, N for record version N.
    pub version: Field,
    pub status: Field,
    /// `name/version`
    pub schema: Field,
    pub schema_name: Field,
    pub experiment: Field,
    pub title: Field,
    /// The whole title, normalised, for ranking an exact title match first.
    pub title_exact: Field,
    pub people: Field,
    pub keywords: Field,
    /// Every string of the deposit.
    pub text: Field,
    /// The deposit as a JSON object, for `path.to.field:value` queries.
    pub data: Field,
    pub created: Field,
    pub updated: Field,
    pub year: Field,
    /// The commit of this version.
    pub commit: Field,
    /// The deposit.json blob of this version, read back for snippets.
    pub blob: Field,
    pub facets: Field,
    /// The normalised title as a fast field, to sort hits by title.
    pub title_sort: Field,
    /// The first and last 64 bits of SHA-256 of the id ([`crate::deposit::id_digest`]):
    /// the analysis a version belongs to, as two numeric columns, so that a search folds
    /// its matches into analyses without reading one id string per match. 128 bits:
    /// two ids that share a key would take a birthday search of 2^64 hashes to make.
    pub group_hi: Field,
    pub group_lo: Field,
    /// Who may work on the deposit: owners and every `_access` user and role,
    /// lower-cased, for `--mine`.
    pub access: Field,
}

/// Field names a query may use as they are; any other `name:` is a path in the deposit.
pub const QUERY_FIELDS: &[&str] = &[
    "id",
    "version",
    "status",
    "schema",
    "experiment",
    "title",
    "people",
    "keywords",
    "text",
    "created",
    "updated",
    "year",
];

pub fn build_schema() -> Schema {
    let mut b = Schema::builder();
    let keyword = |stored: bool| {
        let options = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(KEYWORD_ANALYZER)
                .set_fieldnorms(false)
                .set_index_option(IndexRecordOption::Basic),
        );
        if stored {
            options.set_stored()
        } else {
            options
        }
    };
    let text = |stored: bool| {
        let options = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(TEXT_ANALYZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        if stored {
            options.set_stored()
        } else {
            options
        }
    };
    let raw_key = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("raw")
                .set_fieldnorms(false)
                .set_index_option(IndexRecordOption::Basic),
        )
        .set_stored();
    let date = DateOptions::default()
        .set_indexed()
        .set_stored()
        .set_precision(DateTimePrecision::Seconds);
    let number = NumericOptions::default().set_indexed().set_stored();

    b.add_text_field("key", raw_key);
    // Fast fields are what a search reads for every match (not only the hits shown),
    // to fold versions into one hit per analysis and to sort: column reads, no
    // stored-document decompression. Their values are normalised before indexing, so
    // tantivy's plain `raw` normaliser is enough.
    b.add_text_field("id", keyword(true).set_fast(Some("raw")));
    b.add_u64_field("version", number.clone().set_fast());
    b.add_text_field("status", keyword(true));
    b.add_text_field("schema", keyword(true));
    b.add_text_field("schema_name", keyword(false));
    b.add_text_field("experiment", keyword(true));
    b.add_text_field("title", text(true));
    b.add_text_field("title_exact", keyword(false));
    b.add_text_field("people", text(true));
    b.add_text_field("keywords", text(true));
    b.add_text_field("text", text(false));
    b.add_json_field(
        "data",
        JsonObjectOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(TEXT_ANALYZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        ),
    );
    b.add_date_field("created", date.clone());
    b.add_date_field("updated", date.set_fast());
    b.add_u64_field("year", number);
    b.add_text_field("commit", TextOptions::default().set_stored());
    b.add_text_field("blob", TextOptions::default().set_stored());
    b.add_facet_field("facets", FacetOptions::default());
    b.add_text_field("title_sort", TextOptions::default().set_fast(Some("raw")));
    b.add_u64_field("group_hi", NumericOptions::default().set_fast());
    b.add_u64_field("group_lo", NumericOptions::default().set_fast());
    b.add_text_field("access", keyword(false));
    b.build()
}

impl Fields {
    /// The fields of an index's schema; `None` if it is not this format's schema.
    pub fn of(schema: &Schema) -> Option<Fields> {
        let f = |name: &str| schema.get_field(name).ok();
        Some(Fields {
            key: f("key")?,
            id: f("id")?,
            version: f("version")?,
            status: f("status")?,
            schema: f("schema")?,
            schema_name: f("schema_name")?,
            experiment: f("experiment")?,
            title: f("title")?,
            title_exact: f("title_exact")?,
            people: f("people")?,
            keywords: f("keywords")?,
            text: f("text")?,
            data: f("data")?,
            created: f("created")?,
            updated: f("updated")?,
            year: f("year")?,
            commit: f("commit")?,
            blob: f("blob")?,
            facets: f("facets")?,
            title_sort: f("title_sort")?,
            group_hi: f("group_hi")?,
            group_lo: f("group_lo")?,
            access: f("access")?,
        })
    }
}

/// Which deposit version a document describes, and when it was made.
#[derive(Debug, Clone)]
pub struct VersionInfo {
    pub id: String,
    /// `None` for the draft, `Some(N)` for record version N.
    pub version: Option<u32>,
    pub commit: Oid,
    pub blob: Oid,
    /// Seconds since the epoch (commit times).
    pub created: i64,
    pub updated: i64,
}

impl VersionInfo {
    pub fn key(&self) -> String {
        document_key(&self.id, self.version)
    }
}

/// A stored document's first text value of `field`.
pub fn stored_text(doc: &TantivyDocument, field: Field) -> Option<String> {
    use tantivy::schema::Value as _;
    doc.get_first(field)
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

/// Every stored text value of `field`.
pub fn stored_texts(doc: &TantivyDocument, field: Field) -> Vec<String> {
    use tantivy::schema::Value as _;
    doc.get_all(field)
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// A stored date of `field`, as RFC 3339.
pub fn stored_date(doc: &TantivyDocument, field: Field) -> Option<String> {
    use tantivy::schema::Value as _;
    doc.get_first(field)
        .and_then(|v| v.as_datetime())
        .map(|d| rfc3339(d.into_timestamp_secs()))
}

pub fn document_key(id: &str, version: Option<u32>) -> String {
    match version {
        None => format!("draft/{id}"),
        Some(n) => format!("record/{id}/v{n}"),
    }
}

/// Normalises a title (or a query) for the exact-title field: lower case, single spaces.
pub fn normalise_title(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The year (UTC) of a time in seconds since the epoch.
pub fn year_of(seconds: i64) -> i64 {
    civil_date(seconds).0
}

/// The UTC date `(year, month, day)` of a time in seconds since the epoch (Howard
/// Hinnant's days-to-civil algorithm, to avoid a calendar dependency).
pub fn civil_date(seconds: i64) -> (i64, i64, i64) {
    let days = seconds.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Seconds since the epoch as RFC 3339 in UTC: `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(seconds: i64) -> String {
    let (year, month, day) = civil_date(seconds);
    let rest = seconds.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The analysis key of an id, as the `group_hi` and `group_lo` columns hold it.
pub fn group_key(id: &str) -> (u64, u64) {
    let digest = crate::deposit::id_digest(id);
    let word = |at: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&digest[at..at + 8]);
        u64::from_be_bytes(bytes)
    };
    (word(0), word(24))
}

/// Builds the document of one deposit version.
///
/// `schema_experiment` is the experiment the deposit's schema declares, which wins over
/// one named in the deposit.
pub fn make_document(
    f: &Fields,
    info: &VersionInfo,
    deposit: &Value,
    schema: Option<&SchemaRef>,
    schema_experiment: Option<&str>,
) -> TantivyDocument {
    let extracted = extract(deposit);
    let mut doc = TantivyDocument::new();
    doc.add_text(f.key, info.key());
    doc.add_text(f.id, &info.id);
    let (hi, lo) = group_key(&info.id);
    doc.add_u64(f.group_hi, hi);
    doc.add_u64(f.group_lo, lo);
    doc.add_u64(f.version, info.version.map_or(0, u64::from));
    let status = if info.version.is_some() {
        "published"
    } else {
        "draft"
    };
    doc.add_text(f.status, status);
    doc.add_facet(f.facets, Facet::from_path(["status", status]));
    if let Some(sref) = schema {
        let full = sref.to_string();
        doc.add_text(f.schema, &full);
        doc.add_text(f.schema_name, &sref.name);
        doc.add_facet(f.facets, Facet::from_path(["schema", full.as_str()]));
    }
    let experiment = schema_experiment
        .map(str::to_string)
        .or(extracted.experiment);
    if let Some(experiment) = &experiment {
        doc.add_text(f.experiment, experiment);
        doc.add_facet(
            f.facets,
            Facet::from_path(["experiment", experiment.as_str()]),
        );
    }
    if !extracted.title.is_empty() {
        doc.add_text(f.title, &extracted.title);
        doc.add_text(f.title_exact, normalise_title(&extracted.title));
    }
    // Untitled deposits sort last.
    let sort_key = match normalise_title(&extracted.title) {
        t if t.is_empty() => "\u{10FFFF}".to_string(),
        t => t,
    };
    doc.add_text(f.title_sort, sort_key);
    let access = DepositAccess::of(deposit);
    for grant in [&access.read, &access.update, &access.admin] {
        for entry in grant.users.iter().chain(&grant.roles) {
            doc.add_text(f.access, entry);
        }
    }
    for owner in &access.owners {
        doc.add_text(f.access, owner);
    }
    for person in &extracted.people {
        doc.add_text(f.people, person);
    }
    for keyword in &extracted.keywords {
        doc.add_text(f.keywords, keyword);
        doc.add_facet(f.facets, Facet::from_path(["keyword", keyword.as_str()]));
    }
    for text in strings(deposit) {
        doc.add_text(f.text, text);
    }
    doc.add_field_value(f.data, deposit);
    doc.add_date(f.created, DateTime::from_timestamp_secs(info.created));
    doc.add_date(f.updated, DateTime::from_timestamp_secs(info.updated));
    let year = year_of(info.updated);
    doc.add_u64(f.year, year.max(0) as u64);
    doc.add_facet(
        f.facets,
        Facet::from_path(["year", year.to_string().as_str()]),
    );
    doc.add_text(f.commit, info.commit.to_string());
    doc.add_text(f.blob, info.blob.to_string());
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn years() {
        assert_eq!(year_of(0), 1970);
        assert_eq!(year_of(1_704_067_200), 2024); // 2024-01-01T00:00:00Z
        assert_eq!(year_of(1_704_067_199), 2023);
        assert_eq!(year_of(951_782_400), 2000); // 2000-02-29
        assert_eq!(year_of(-1), 1969);
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_704_067_200 + 3661), "2024-01-01T01:01:01Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn keys_and_titles() {
        assert_eq!(document_key("zee", None), "draft/zee");
        assert_eq!(document_key("zee", Some(2)), "record/zee/v2");
        assert_eq!(
            normalise_title("  Z -> ee\n Cross-Section "),
            "z -> ee cross-section"
        );
    }

    #[test]
    fn the_schema_has_every_field() {
        assert!(Fields::of(&build_schema()).is_some());
    }
}
