//! Answering a query from the index: compiling it, folding the matching versions of
//! each analysis into one hit, ranking, paging, counting facets and cutting snippets.
//! Returns data; `cli/search.rs` renders it.
//!
//! **One hit per analysis.** The index holds a document per version (the draft and
//! each record version), because each version has its own text. A search collects
//! every matching version, reading only fast fields (the analysis key, version,
//! updated, title, facets), and folds them into analyses as it goes (`fold.rs`): the
//! group's score is its best version's,
//! the hit shows its newest matching version (the draft, else the highest record
//! version), and facets count analyses, not versions. Only the hits of the page asked
//! for are read from the store.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use git2::{Oid, Repository};
use serde::Serialize;
use tantivy::collector::TopDocs;
use tantivy::query::{
    BooleanQuery, BoostQuery, ConstScoreQuery, Occur, Query, QueryParser, TermQuery,
};
use tantivy::query::{EnableScoring, Scorer};
use tantivy::schema::{IndexRecordOption, Term, Value as _};
use tantivy::{DocAddress, DocSet, Searcher, TantivyDocument, TantivyError};

use crate::schema::{CompiledSchema, SchemaRegistry};

use super::fields::{
    normalise_title, stored_date, stored_text, stored_texts, text_analyzer, Fields,
};
use super::fold::{rank, Fold, Folded};
use super::query::{Compiler, ID_BOOST, KEYWORDS_BOOST, PEOPLE_BOOST, TITLE_BOOST};
use super::snippets::{load_schema, matches_in};
use super::store::Store;
use super::{catch_up, index_dir, IndexError, UpdateReport};

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

/// The order of hits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sort {
    /// Best score first (then the most recently updated, then the id).
    #[default]
    Relevance,
    /// The analysis updated most recently first (any of its matching versions).
    Newest,
    /// By title, ignoring case; untitled analyses last.
    Title,
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
    pub sort: Sort,
    /// 1-based.
    pub page: usize,
    pub per_page: usize,
    /// Only deposits where one of these names (a user, their e-mail, their groups;
    /// see [`identities`]) is an owner or in an `_access` list.
    pub mine: Option<Vec<String>>,
    pub facets: bool,
}

/// What was found.
#[derive(Debug, Clone, Serialize)]
pub struct SearchResults {
    pub query: String,
    /// Matching analyses (deposits with at least one matching version).
    pub total: usize,
    /// Matching versions (drafts and record versions) across those analyses.
    pub versions: usize,
    pub sort: Sort,
    pub page: usize,
    pub per_page: usize,
    pub pages: usize,
    /// The analyses on this page, in order.
    pub hits: Vec<Hit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facets: Option<Facets>,
    /// The catch-up update that ran before searching, if the refs had moved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refreshed: Option<UpdateReport>,
}

/// One analysis, shown through its newest matching version.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub id: String,
    /// The version shown: a record version, or `None` for the draft.
    pub version: Option<u32>,
    pub status: Status,
    pub title: String,
    pub schema: Option<String>,
    pub experiment: Option<String>,
    /// The best score among the analysis' matching versions.
    pub score: f32,
    pub commit: String,
    /// RFC 3339, UTC.
    pub created: String,
    pub updated: String,
    pub people: Vec<String>,
    pub keywords: Vec<String>,
    /// The shown version's strings that matched, best first (at most three).
    pub matches: Vec<FieldMatch>,
    /// Every version of the analysis in the index, newest first: the draft, then the
    /// record versions from the highest down.
    pub versions: Vec<VersionHit>,
}

/// One version of a hit's analysis.
#[derive(Debug, Clone, Serialize)]
pub struct VersionHit {
    /// `None` for the draft.
    pub version: Option<u32>,
    pub status: Status,
    pub updated: String,
    pub commit: String,
    /// Whether this version matched the query and the filters.
    pub matched: bool,
    /// Where the version is in the index (not part of the output).
    #[serde(skip)]
    pub address: DocAddress,
}

/// One string of a deposit that matched the query.
#[derive(Debug, Clone, Serialize)]
pub struct FieldMatch {
    /// JSON pointer in the deposit (RFC 6901: array positions from 0).
    pub pointer: String,
    /// Where the string sits, for people: schema titles, else keys, and list items
    /// from 1 (`Basic Information › Keywords #1`).
    pub title_path: String,
    /// The string, or the part of it around the first match.
    pub snippet: String,
    /// Byte ranges of `snippet` (UTF-8) that matched, `[start, end)`.
    pub highlights: Vec<(usize, usize)>,
}

/// Counts of matching analyses per value. An analysis counts once per value that any
/// of its matching versions has (its draft and a record may differ in schema).
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

/// How much an exact title match adds to a hit's score.
const EXACT_TITLE_BOOST: f32 = 10.0;
const FACET_DIMENSIONS: [&str; 5] = ["schema", "experiment", "status", "year", "keyword"];

/// The names under which `user` may appear in owners and `_access` lists: the user
/// name, their e-mail, their CAP id, and every group they belong to (listed with them
/// in `[people]`, or in `[groups]`, directly or through another group), lower-cased as
/// the index stores them.
pub fn identities(access: &crate::access::Access, user: &str) -> Vec<String> {
    use crate::access::Person;
    let mut names = BTreeSet::new();
    names.insert(user.to_lowercase());
    if let Some(email) = access.email(user) {
        names.insert(email.to_lowercase());
    }
    // CAP's records name people by their numeric CAP id.
    if let Some(id) = access.cap_id(user) {
        names.insert(id.to_string());
    }
    if let Some(Person::Details(details)) = access.people.get(user) {
        names.extend(details.groups.iter().map(|g| g.to_lowercase()));
    }
    for group in access.groups.keys() {
        if access.is_member(user, group) {
            names.insert(group.to_lowercase());
        }
    }
    names.into_iter().collect()
}

/// Facet counts over analyses.
fn count_facets(folded: &Folded) -> Facets {
    // Counted by facet index first: one increment per facet of each analysis, and the
    // names are looked at once each.
    let by_index = folded.facet_counts();
    let mut counts: BTreeMap<&str, BTreeMap<String, u64>> = BTreeMap::new();
    for ((dimension, value), count) in folded.facet_names.iter().zip(by_index) {
        if count == 0 {
            continue;
        }
        if let Some(dim) = FACET_DIMENSIONS.iter().find(|d| **d == dimension) {
            *counts
                .entry(dim)
                .or_default()
                .entry(value.clone())
                .or_default() += count;
        }
    }
    let mut dim = |name: &str| -> Vec<FacetCount> {
        let mut values: Vec<FacetCount> = counts
            .remove(name)
            .unwrap_or_default()
            .into_iter()
            .map(|(value, count)| FacetCount { value, count })
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
}

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
    let compiled = compile(&store, &searcher, request)?;

    // Every matching version, scored and folded into its analysis as it is collected
    // (grouping needs them all; only fast fields are read for them); the store is read
    // for the page's hits alone.
    let fold = Fold {
        facets: request.facets,
        titles: request.sort == Sort::Title,
    };
    let mut folded = store.at(searcher.search(&compiled.query, &fold))?;
    let versions = folded.versions;
    let facets = request.facets.then(|| count_facets(&folded));

    let per_page = request.per_page.max(1);
    let page = request.page.max(1);
    let total = folded.groups.len();
    // Only the analyses up to the end of the page asked for are put in order.
    folded.sort_first(page.saturating_mul(per_page), request.sort);
    let mut registry = SchemaRegistry::for_display();
    let mut schemas: HashMap<(String, String), Option<Arc<CompiledSchema>>> = HashMap::new();
    let mut analyzer = text_analyzer();
    let mut hits = Vec::new();
    for group in folded
        .groups
        .iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
    {
        let doc: TantivyDocument = store.at(searcher.doc(group.shown))?;
        let text = |field| stored_text(&doc, field);
        let id = text(f.id).unwrap_or_default();
        let all = |field| stored_texts(&doc, field);
        let date = |field| stored_date(&doc, field).unwrap_or_default();
        let version = version_of(&doc, &f);
        let commit = text(f.commit).unwrap_or_default();
        let schema = text(f.schema);
        let matches = match text(f.blob).and_then(|b| Oid::from_str(&b).ok()) {
            Some(blob) if !compiled.needles.is_empty() => {
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
            versions: versions_of(&store, &searcher, &id)?,
            id,
            version,
            status: status_of(version),
            title: text(f.title).unwrap_or_default(),
            schema,
            experiment: text(f.experiment),
            score: group.score,
            commit,
            created: date(f.created),
            updated: date(f.updated),
            people: all(f.people),
            keywords: all(f.keywords),
            matches,
        });
    }

    mark_matched(&store, &searcher, compiled.query.as_ref(), &mut hits)?;

    Ok(SearchResults {
        query: request.query.clone(),
        total,
        versions,
        sort: request.sort,
        page,
        per_page,
        pages: total.div_ceil(per_page),
        hits,
        facets,
        refreshed,
    })
}

fn version_of(doc: &TantivyDocument, f: &Fields) -> Option<u32> {
    doc.get_first(f.version)
        .and_then(|v| v.as_u64())
        .filter(|v| *v > 0)
        .map(|v| v as u32)
}

fn status_of(version: Option<u32>) -> Status {
    match version {
        Some(_) => Status::Published,
        None => Status::Draft,
    }
}

/// Every version of `id` in the index, newest first (`matched` is set afterwards, by
/// [`mark_matched`]).
fn versions_of(
    store: &Store,
    searcher: &Searcher,
    id: &str,
) -> Result<Vec<VersionHit>, IndexError> {
    let f = store.fields;
    let of_id = TermQuery::new(Term::from_field_text(f.id, id), IndexRecordOption::Basic);
    // A deposit has one draft and a handful of records; the cap only bounds the work.
    let found = store.at(searcher.search(&of_id, &TopDocs::with_limit(10_000)))?;
    let mut out = Vec::with_capacity(found.len());
    for (_, address) in found {
        let doc: TantivyDocument = store.at(searcher.doc(address))?;
        let version = version_of(&doc, &f);
        let text = |field| {
            doc.get_first(field)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        out.push(VersionHit {
            version,
            status: status_of(version),
            updated: stored_date(&doc, f.updated).unwrap_or_default(),
            commit: text(f.commit),
            matched: false,
            address,
        });
    }
    out.sort_by_key(|v| std::cmp::Reverse(rank(u64::from(v.version.unwrap_or(0)))));
    Ok(out)
}

/// Marks the versions of the page's hits that the query matches: one scorer per
/// segment, moved forward through the versions in document order (running the query
/// again per hit restarted a phrase query's scan each time).
fn mark_matched(
    store: &Store,
    searcher: &Searcher,
    query: &dyn Query,
    hits: &mut [Hit],
) -> Result<(), IndexError> {
    let mut versions: Vec<&mut VersionHit> = hits
        .iter_mut()
        .flat_map(|h| h.versions.iter_mut())
        .collect();
    versions.sort_by_key(|v| (v.address.segment_ord, v.address.doc_id));
    let weight = store.at(query.weight(EnableScoring::disabled_from_searcher(searcher)))?;
    let mut scorer: Option<(u32, Box<dyn Scorer>)> = None;
    for version in versions {
        let DocAddress {
            segment_ord,
            doc_id,
        } = version.address;
        if scorer.as_ref().is_none_or(|(s, _)| *s != segment_ord) {
            let reader = searcher.segment_reader(segment_ord);
            scorer = Some((segment_ord, store.at(weight.scorer(reader, 1.0))?));
        }
        if let Some((_, scorer)) = scorer.as_mut() {
            let at = if scorer.doc() < doc_id {
                scorer.seek(doc_id)
            } else {
                scorer.doc()
            };
            version.matched = at == doc_id;
        }
    }
    Ok(())
}

/// The request as one tantivy query (words, filters, `--mine`), and the words to mark.
fn compile(
    store: &Store,
    searcher: &Searcher,
    request: &SearchRequest,
) -> Result<super::query::Compiled, IndexError> {
    let f = store.fields;
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
        Some(root) => Some(store.at(json_paths_under(searcher, f.data, root))?),
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
    let term = |field, value: &str| -> Box<dyn Query> {
        Box::new(TermQuery::new(
            Term::from_field_text(field, &value.to_lowercase()),
            IndexRecordOption::Basic,
        ))
    };
    // Filters do not change scores.
    let filter = |query: Box<dyn Query>| -> (Occur, Box<dyn Query>) {
        (Occur::Must, Box::new(ConstScoreQuery::new(query, 0.0)))
    };
    if let Some(status) = request.status {
        clauses.push(filter(term(f.status, status.as_str())));
    }
    if let Some(experiment) = &request.experiment {
        clauses.push(filter(term(f.experiment, experiment)));
    }
    if let Some(schema) = &request.schema {
        match crate::deposit::parse_schema_ref(schema) {
            Some(sref) => clauses.push(filter(term(f.schema, &sref.to_string()))),
            None => clauses.push(filter(term(f.schema_name, schema))),
        }
    }
    if let Some(names) = &request.mine {
        let any: Vec<(Occur, Box<dyn Query>)> = names
            .iter()
            .map(|name| (Occur::Should, term(f.access, name)))
            .collect();
        clauses.push(filter(Box::new(BooleanQuery::new(any))));
    }
    Ok(super::query::Compiled {
        query: Box::new(BooleanQuery::new(clauses)),
        needles: compiled.needles,
    })
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
