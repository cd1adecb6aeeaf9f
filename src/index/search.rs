//! Answering a query from the index: compiling it, collecting and ranking the hits,
//! counting facets and cutting snippets. Returns data; `cli/search.rs` renders it.

use std::collections::HashMap;
use std::sync::Arc;

use git2::{Oid, Repository};
use serde::Serialize;
use tantivy::collector::{Count, FacetCollector, TopDocs};
use tantivy::query::{
    BooleanQuery, BoostQuery, ConstScoreQuery, Occur, Query, QueryParser, TermQuery,
};
use tantivy::schema::{IndexRecordOption, Term, Value as _};
use tantivy::{Searcher, TantivyDocument, TantivyError};

use crate::archive::GitTree;
use crate::deposit::parse_schema_ref;
use crate::schema::{CompiledSchema, SchemaRegistry};

use super::extract::located_strings;
use super::fields::{normalise_title, rfc3339, text_analyzer};
use super::query::{
    self, highlight, snippet, Compiler, ID_BOOST, KEYWORDS_BOOST, PEOPLE_BOOST, TITLE_BOOST,
};
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
