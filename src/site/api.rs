//! The JSON API: static files at CAP's routes, in CAP's shapes.
//!
//! - `api/records/index.json` — CAP's search response: `hits.hits[]`, `hits.total`,
//!   `aggregations` (facets with `buckets` of `key` and `doc_count`), `links` with
//!   `next` to `api/records/index-<k>.json`, the older records, paged like listings
//!   (see `paging`);
//! - `api/records/<id>/index.json` — the latest version, like `GET /api/records/<pid>`:
//!   `id`, `created`, `updated`, `metadata`, `links`, `schema`, `experiment`, `files`,
//!   `status`, `type`, plus capsule's `version` and `versions`;
//! - `api/records/<id>/v<N>/index.json` — one version, same shape;
//! - `api/schemas/<name>/<version>/index.json` — CAP's schema response (`name`,
//!   `version`, `fullname`, `experiment`, `deposit_schema`, `config`, `links`);
//! - `api/deposits/<id>/index.json` — drafts, internal builds only, like CAP's
//!   `GET /api/deposits/<id>`: the record shape with `status: draft`, `type: deposit`
//!   and CAP's top-level `access` (the deposit's `_access` by action). CAP's per-reader
//!   fields (`is_owner`, `can_update`) cannot be in a static file and are left out.
//!
//! A public build drops `_access` from `metadata`: who may read a deposit is not part
//! of the record.

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::deposit::SchemaRef;
use crate::schema::CompiledSchema;

use super::model::{RecordSummary, RecordView};
use super::util::base_with_slash;

/// Pretty JSON with a final newline (stable bytes for stable input).
pub fn to_bytes(value: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("JSON serialises");
    bytes.push(b'\n');
    bytes
}

/// The metadata a build may publish.
pub fn metadata(deposit: &Value, internal: bool) -> Value {
    let mut metadata = deposit.clone();
    if !internal {
        if let Value::Object(map) = &mut metadata {
            map.remove("_access");
        }
    }
    metadata
}

#[allow(clippy::too_many_arguments)]
pub fn record(
    base_url: &str,
    internal: bool,
    id: &str,
    version: u32,
    deposit: &Value,
    view: &RecordView,
    sref: Option<&SchemaRef>,
    schema: Option<&CompiledSchema>,
    files: &[Value],
) -> Value {
    let base = base_with_slash(base_url);
    let draft = view.draft;
    let self_link = if draft {
        format!("{base}api/deposits/{id}/index.json")
    } else {
        format!("{base}api/records/{id}/v{version}/index.json")
    };
    let html = if draft {
        format!("{base}drafts/{id}/")
    } else {
        format!("{base}records/{id}/v{version}/")
    };
    let mut links = Map::new();
    links.insert("self".into(), json!(self_link));
    links.insert("html".into(), json!(html));
    // A draft that was never published has no record to point at.
    if !(draft && view.versions.is_empty()) {
        links.insert(
            "latest".into(),
            json!(format!("{base}api/records/{id}/index.json")),
        );
        links.insert("latest_html".into(), json!(format!("{base}records/{id}/")));
    }
    if let Some(s) = sref {
        links.insert(
            "schema".into(),
            json!(format!(
                "{base}api/schemas/{}/{}/index.json",
                s.name, s.version
            )),
        );
    }
    let versions: Vec<Value> = view
        .versions
        .iter()
        .rev()
        .map(|v| {
            json!({
                "version": v.number,
                "created": v.date,
                "links": {
                    "self": format!("{base}api/records/{id}/v{}/index.json", v.number),
                    "html": format!("{base}records/{id}/v{}/", v.number),
                }
            })
        })
        .collect();
    let schema_value = match sref {
        Some(s) => json!({
            "name": s.name,
            "version": s.version,
            "fullname": schema.and_then(|c| c.root.title.clone()).unwrap_or_else(|| s.name.clone()),
        }),
        None => Value::Null,
    };
    let mut document = json!({
        "id": id,
        "pid": id,
        "version": version,
        "revision": version,
        "created": view.created,
        "updated": view.updated,
        "metadata": metadata(deposit, internal),
        "links": links,
        "schema": schema_value,
        "experiment": if view.experiment.is_empty() { Value::Null } else { json!(view.experiment) },
        "files": files,
        "status": if draft { "draft" } else { "published" },
        "type": if draft { "deposit" } else { "record" },
        "labels": [],
        "versions": versions,
    });
    // CAP's deposit responses carry who may do what at the top level (`access`,
    // keyed by action); drafts exist only in internal builds, which may show it.
    if draft && internal {
        document["access"] = deposit_access(deposit);
    }
    document
}

/// `_access` in the shape of CAP's deposit responses: every action with its `users`
/// and `roles` (empty lists for an action the deposit does not name).
fn deposit_access(deposit: &Value) -> Value {
    let mut access = Map::new();
    for action in ["deposit-read", "deposit-update", "deposit-admin"] {
        let grant = deposit.pointer(&format!("/_access/{action}"));
        let list = |key: &str| {
            grant
                .and_then(|g| g.get(key))
                .filter(|v| v.is_array())
                .cloned()
                .unwrap_or_else(|| json!([]))
        };
        access.insert(
            action.into(),
            json!({"users": list("users"), "roles": list("roles")}),
        );
    }
    Value::Object(access)
}

/// One hit of `api/records/index.json`. Typed and borrowed rather than a `Value`: at
/// 100k records the index as a `Value` tree took several hundred megabytes.
#[derive(Serialize)]
struct Hit<'a> {
    id: &'a str,
    pid: &'a str,
    created: &'a str,
    updated: &'a str,
    version: u32,
    status: &'static str,
    metadata: HitMetadata<'a>,
    schema: HitSchema<'a>,
    experiment: Option<&'a str>,
    links: HitLinks,
}

#[derive(Serialize)]
struct HitMetadata<'a> {
    general_title: &'a str,
    #[serde(rename = "$schema")]
    schema: &'a str,
}

#[derive(Serialize)]
struct HitSchema<'a> {
    name: &'a str,
    fullname: &'a str,
}

#[derive(Serialize)]
struct HitLinks {
    #[serde(rename = "self")]
    this: String,
    html: String,
}

#[derive(Serialize)]
struct Bucket<'a> {
    key: &'a str,
    doc_count: usize,
}

#[derive(Serialize)]
struct Aggregation<'a> {
    buckets: Vec<Bucket<'a>>,
    doc_count_error_upper_bound: u32,
    sum_other_doc_count: u32,
}

/// The links of one page of the record list: paths below the site's root.
pub struct PageLinks {
    pub this: String,
    pub next: Option<String>,
    pub prev: Option<String>,
}

/// Writes one page of the record list (`api/records/index.json` and its numbered
/// pages): its records as search hits, in the order given, `hits.total` (every record
/// on the first page; this page's and the older ones' on the others), the facets (on the first page only: empty elsewhere) and the links to the
/// pages beside it.
pub fn write_index(
    out: &mut dyn std::io::Write,
    base_url: &str,
    summaries: &[&RecordSummary],
    total: usize,
    aggregations: &[(String, Vec<(String, usize)>)],
    links: &PageLinks,
) -> std::io::Result<()> {
    /// Serialises the hits one by one as the index is written.
    struct Hits<'s> {
        base: &'s str,
        summaries: &'s [&'s RecordSummary],
    }
    impl Serialize for Hits<'_> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_seq(self.summaries.iter().map(|s| {
                let (folder, html) = if s.draft {
                    ("deposits", "drafts")
                } else {
                    ("records", "records")
                };
                Hit {
                    id: &s.id,
                    pid: &s.id,
                    created: &s.created,
                    updated: &s.updated,
                    version: s.version,
                    status: if s.draft { "draft" } else { "published" },
                    metadata: HitMetadata {
                        general_title: &s.title,
                        schema: &s.schema,
                    },
                    schema: HitSchema {
                        name: &s.schema,
                        fullname: &s.schema_title,
                    },
                    experiment: (!s.experiment.is_empty()).then_some(s.experiment.as_str()),
                    links: HitLinks {
                        this: format!("{}api/{folder}/{}/index.json", self.base, s.id),
                        html: format!("{}{html}/{}/", self.base, s.id),
                    },
                }
            }))
        }
    }
    #[derive(Serialize)]
    struct HitsPage<'s> {
        hits: Hits<'s>,
        total: usize,
    }
    #[derive(Serialize)]
    struct Links {
        #[serde(rename = "self")]
        this: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        next: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        prev: Option<String>,
    }
    /// The facets in the order given.
    struct Aggregations<'s>(Vec<(&'s str, Aggregation<'s>)>);
    impl Serialize for Aggregations<'_> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
        }
    }
    #[derive(Serialize)]
    struct Index<'s> {
        #[serde(skip_serializing_if = "Aggregations::is_empty")]
        aggregations: Aggregations<'s>,
        hits: HitsPage<'s>,
        links: Links,
    }
    impl Aggregations<'_> {
        fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
    }
    let base = base_with_slash(base_url);
    let index = Index {
        aggregations: Aggregations(
            aggregations
                .iter()
                .map(|(name, buckets)| {
                    (
                        name.as_str(),
                        Aggregation {
                            buckets: buckets
                                .iter()
                                .map(|(key, count)| Bucket {
                                    key,
                                    doc_count: *count,
                                })
                                .collect(),
                            doc_count_error_upper_bound: 0,
                            sum_other_doc_count: 0,
                        },
                    )
                })
                .collect(),
        ),
        hits: HitsPage {
            hits: Hits {
                base: &base,
                summaries,
            },
            total,
        },
        links: Links {
            this: page_link(base_url, &links.this),
            next: links.next.as_ref().map(|p| page_link(base_url, p)),
            prev: links.prev.as_ref().map(|p| page_link(base_url, p)),
        },
    };
    serde_json::to_writer_pretty(&mut *out, &index)?;
    out.write_all(b"\n")
}

/// A link between pages of the record list: absolute from the base URL, as CAP's
/// are; without a base URL, relative to the page (they share a folder), which a client
/// resolves against the address it fetched.
fn page_link(base_url: &str, path: &str) -> String {
    if base_url.trim().is_empty() {
        path.rsplit('/').next().unwrap_or(path).to_string()
    } else {
        format!("{}{path}", base_with_slash(base_url))
    }
}

/// `api/schemas/<name>/<version>/index.json`.
pub fn schema(base_url: &str, compiled: &CompiledSchema) -> Value {
    let base = base_with_slash(base_url);
    let root = &compiled.root;
    json!({
        "name": root.sref.name,
        "version": root.sref.version,
        "fullname": root.title.clone().unwrap_or_else(|| root.sref.name.clone()),
        "experiment": root.experiment,
        "is_indexed": true,
        "use_deposit_as_record": true,
        "deposit_schema": root.body,
        "config": root.config,
        "links": {
            "self": format!("{base}api/schemas/{}/{}/index.json", root.sref.name, root.sref.version),
            "html": format!("{base}schemas/{}/{}/", root.sref.name, root.sref.version),
        },
    })
}
