//! Preservation on the site: a record version's identifiers, citation, schema.org
//! JSON-LD and FAIR Signposting, the machine-readable files written next to its page
//! (`datacite.json`, and `datacite.xml` once the version has a DOI), the record's one
//! RFC 9264 linkset (`records/<id>/linkset.json`, a context for the landing page and
//! one for each version's page), and what stays of a withdrawn record (its tombstone
//! page and a 410 API document).
//!
//! Every file costs a site more than its bytes (on ext4, right after a site was
//! deleted, creating files and folders is most of a full build), so a record version
//! gets a file only where a standard needs a URL: Signposting's `describedby` needs
//! the DataCite metadata at one, `linkset` the linkset. The BibTeX and CSL-JSON are
//! offered by the page itself, as `data:` URLs, and DataCite XML, which its schema
//! makes invalid without a DOI, waits for one.
//!
//! Every fact comes from [`crate::preserve`]'s pure builders, so the site, `capsule
//! cite` and `capsule export` say the same thing about a record. This module must
//! never let a withdrawn record's metadata or files out: its tombstone is built from
//! the title, the people's names and ORCID iDs, and the identifiers only.

use std::time::UNIX_EPOCH;

use git2::Oid;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::preserve::datacite::{datacite_json, datacite_xml, Target};
use crate::preserve::doi::Registered;
use crate::preserve::metadata::{self, Facts, Person, Record};
use crate::preserve::tombstone::Tombstone;
use crate::preserve::{cite, identifiers, Identifier, Snapshot};
use crate::settings::Settings;

use super::model::Citation;
use super::util::{base_with_slash, data_url, script_json};
use super::write::Output;
use super::SiteError;

/// A record version's two identifiers as its pages show them.
#[derive(Debug, Clone, Serialize)]
pub struct IdentifiersView {
    /// Every version; resolves to the newest.
    pub concept: Identifier,
    /// This version.
    pub version: Identifier,
}

/// One FAIR Signposting link of a page's head.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Signpost {
    pub rel: String,
    pub href: String,
    pub media_type: Option<String>,
}

/// A file of a version as a download: absolute URL, size and digest.
#[derive(Debug, Clone)]
pub struct Download {
    pub name: String,
    pub url: String,
    pub size: u64,
    pub sha256: String,
}

/// The version's facts and identifiers, the way `capsule export` builds them, with the
/// site's base URL and title as the archive's.
#[allow(clippy::too_many_arguments)]
pub fn record_of(
    base_url: &str,
    archive: &str,
    id: &str,
    version: u32,
    versions: &[u32],
    date: &str,
    deposit: &Value,
    registered: &Registered,
) -> Record {
    let mut settings = Settings::default();
    settings.archive.base_url = base_url.trim_end_matches('/').to_string();
    settings.archive.name = archive.to_string();
    let published = humantime::parse_rfc3339(date)
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64);
    let snapshot = Snapshot {
        id: id.to_string(),
        version,
        versions: versions.to_vec(),
        commit: Oid::zero(),
        tag: None,
        published,
        folder: Oid::zero(),
        deposit: deposit.clone(),
        files: Vec::new(),
    };
    let ids = identifiers(&settings, &snapshot, registered);
    Record::new(&settings, &snapshot, ids)
}

/// The identifiers shown on a page. Without a base URL an identifier is a path from
/// the site's root (`/records/x/v1`): shown as a link to the page's file, so that it
/// works from any sub-path and from `file://` like every other link (the templates
/// make it relative).
pub fn identifiers_view(record: &Record) -> IdentifiersView {
    let as_link = |identifier: &crate::preserve::Identifier| {
        let mut identifier = identifier.clone();
        identifier.url = page_file(&identifier.url);
        identifier
    };
    IdentifiersView {
        concept: as_link(&record.ids.concept),
        version: as_link(&record.ids.version),
    }
}

/// A root-relative page address (`/records/x/v1`) as the page's file
/// (`/records/x/v1/index.html`); anything else as it is.
fn page_file(url: &str) -> String {
    let last = url.rsplit('/').next().unwrap_or("");
    if url.starts_with('/') && !last.contains('.') {
        format!("{}/index.html", url.trim_end_matches('/'))
    } else {
        url.to_string()
    }
}

/// Where a version's machine-readable files are, from the site's root.
pub fn version_dir(id: &str, version: u32) -> String {
    format!("records/{id}/v{version}")
}

/// The human citation and the BibTeX shown on the page, with both files as `data:`
/// URLs to download (named after the record and version: `<id>-v<N>.bib`).
pub fn citation(record: &Record) -> Citation {
    let name = format!("{}-v{}", record.id, record.version);
    Citation {
        text: cite::text(record),
        bibtex: cite::bibtex(record).trim_end().to_string(),
        bibtex_url: data_url(
            "application/x-bibtex",
            &cite::cite(record, cite::Format::Bibtex),
        ),
        csl_url: data_url(
            "application/vnd.citationstyles.csl+json",
            &cite::cite(record, cite::Format::CslJson),
        ),
        bibtex_name: format!("{name}.bib"),
        csl_name: format!("{name}.json"),
    }
}

/// Whether a version has DataCite XML on the site: DataCite's XML Schema requires the
/// DOI, so a version without one would only have an invalid file there (`capsule
/// export` writes it anyway, for registration, where DataCite fills the DOI in).
pub fn has_datacite_xml(record: &Record) -> bool {
    record.ids.version.is_doi()
}

/// A license as a URL: SPDX ids become their page at spdx.org.
pub fn license_url(license: &str) -> String {
    let license = license.trim();
    if license.starts_with("https://") || license.starts_with("http://") {
        license.to_string()
    } else {
        format!("https://spdx.org/licenses/{license}")
    }
}

fn media_type(name: &str) -> &'static str {
    metadata::encoding_format(name).unwrap_or("application/octet-stream")
}

/// schema.org `Dataset` JSON-LD of a version's page: the preservation builder's, with
/// what only the site knows added (its dates, its downloads, the concept it is part
/// of), ready to sit inside a `<script>` element.
pub fn json_ld(record: &Record, downloads: &[Download], created: &str, updated: &str) -> String {
    let mut v = metadata::schema_org(record);
    v["dateCreated"] = json!(created);
    v["dateModified"] = json!(updated);
    if let Some(license) = &record.facts.license {
        v["license"] = json!(license_url(license));
    }
    v["isPartOf"] = json!({
        "@id": record.ids.concept.url,
        "@type": "Dataset",
        "name": record.facts.title,
        "url": record.ids.concept_page,
    });
    if !downloads.is_empty() {
        v["distribution"] = downloads
            .iter()
            .map(|d| {
                json!({
                    "@id": d.url,
                    "@type": "DataDownload",
                    "name": d.name,
                    "contentUrl": d.url,
                    "contentSize": d.size.to_string(),
                    "encodingFormat": media_type(&d.name),
                    "sha256": d.sha256,
                })
            })
            .collect();
        v["hasPart"] = downloads.iter().map(|d| json!({"@id": d.url})).collect();
    }
    script_json(&v)
}

/// The Signposting links of a version's page (the `linkset` link is the template's:
/// it depends on which page the version is shown at).
pub fn signposts(record: &Record, downloads: &[Download], base_url: &str) -> Vec<Signpost> {
    let base = base_with_slash(base_url);
    let dir = version_dir(&record.id, record.version);
    let link = |rel: &str, href: String, media: Option<&str>| Signpost {
        rel: rel.to_string(),
        href,
        media_type: media.map(str::to_string),
    };
    let mut out = vec![link("cite-as", page_file(&record.ids.version.url), None)];
    out.extend(record.facts.people.iter().filter_map(|p| {
        p.orcid
            .as_ref()
            .map(|o| link("author", format!("https://orcid.org/{o}"), None))
    }));
    out.push(link(
        "describedby",
        format!("{base}{dir}/datacite.json"),
        Some("application/vnd.datacite.datacite+json"),
    ));
    if has_datacite_xml(record) {
        out.push(link(
            "describedby",
            format!("{base}{dir}/datacite.xml"),
            Some("application/vnd.datacite.datacite+xml"),
        ));
    }
    out.extend(
        downloads
            .iter()
            .map(|d| link("item", d.url.clone(), Some(media_type(&d.name)))),
    );
    if let Some(license) = &record.facts.license {
        out.push(link("license", license_url(license), None));
    }
    out.push(link("type", "https://schema.org/Dataset".into(), None));
    out.push(link("type", "https://schema.org/AboutPage".into(), None));
    out
}

/// An RFC 9264 JSON linkset: one link context per `(anchor, signposts)`.
pub fn linkset(contexts: &[(String, &[Signpost])]) -> Vec<u8> {
    let contexts: Vec<Value> = contexts
        .iter()
        .map(|(anchor, signposts)| {
            let mut context = Map::new();
            context.insert("anchor".into(), json!(anchor));
            for s in signposts.iter() {
                let mut target = Map::new();
                target.insert("href".into(), json!(s.href));
                if let Some(t) = &s.media_type {
                    target.insert("type".into(), json!(t));
                }
                let list = context.entry(s.rel.clone()).or_insert_with(|| json!([]));
                if let Value::Array(items) = list {
                    items.push(Value::Object(target));
                }
            }
            Value::Object(context)
        })
        .collect();
    super::api::to_bytes(&json!({ "linkset": contexts }))
}

/// Where a record's linkset is, as its pages link it: absolute from the base URL, else
/// from the site's root (`/records/<id>/linkset.json`, made relative by the templates).
pub fn linkset_href(base_url: &str, id: &str) -> String {
    format!("{}records/{id}/linkset.json", base_with_slash(base_url))
}

/// Writes the files beside a version's page: its DataCite metadata (JSON, and XML once
/// it has a DOI).
pub fn write_version_files(output: &Output, record: &Record) -> Result<(), SiteError> {
    let dir = version_dir(&record.id, record.version);
    output.write(
        &format!("{dir}/datacite.json"),
        &super::api::to_bytes(&datacite_json(record, Target::Version)),
    )?;
    if has_datacite_xml(record) {
        output.write(
            &format!("{dir}/datacite.xml"),
            datacite_xml(record, Target::Version).as_bytes(),
        )?;
    }
    Ok(())
}

/// Writes the record's linkset: the landing page (`records/<id>/`, showing the latest
/// version) and each version's page, with the signposts of the version each shows.
/// `versions` are `(number, signposts)`, ascending.
pub fn write_record_linkset(
    output: &Output,
    id: &str,
    versions: &[(u32, Vec<Signpost>)],
    base_url: &str,
) -> Result<(), SiteError> {
    let Some((_, latest)) = versions.last() else {
        return Ok(());
    };
    let base = base_with_slash(base_url);
    let mut contexts = vec![(format!("{base}records/{id}/"), latest.as_slice())];
    contexts.extend(
        versions
            .iter()
            .map(|(n, s)| (format!("{base}{}/", version_dir(id, *n)), s.as_slice())),
    );
    output.write(&format!("records/{id}/linkset.json"), &linkset(&contexts))
}

/// What a withdrawn record's landing page shows.
#[derive(Debug, Clone, Serialize)]
pub struct WithdrawnView {
    pub id: String,
    pub title: String,
    pub people: Vec<String>,
    pub reason: String,
    /// RFC 3339, as committed.
    pub date: String,
    pub ids: IdentifiersView,
    pub citation: Citation,
    pub signposts: Vec<Signpost>,
    pub linkset: String,
    pub json_ld: String,
    pub api_path: String,
}

/// The record a tombstone still cites: the title and the people (names and ORCID iDs),
/// nothing else of the deposit.
pub fn tombstone_record(mut record: Record) -> Record {
    let facts = std::mem::take(&mut record.facts);
    record.facts = Facts {
        title: facts.title,
        people: facts
            .people
            .into_iter()
            .map(|p| Person {
                name: p.name,
                orcid: p.orcid,
                email: None,
                role: None,
                affiliation: None,
            })
            .collect(),
        ..Facts::default()
    };
    record
}

/// Writes what stays of a withdrawn record: its landing page (with its citation), its
/// linkset and an API document that says it is gone (HTTP 410's meaning, as Zenodo's tombstones
/// do). `record` must come from [`tombstone_record`].
pub fn write_withdrawn(
    renderer: &super::render::Renderer,
    output: &Output,
    record: &Record,
    tombstone: &Tombstone,
    base_url: &str,
) -> Result<(), SiteError> {
    let id = &record.id;
    let base = base_with_slash(base_url);
    let dir = format!("records/{id}");
    let api_path = format!("api/records/{id}/index.json");
    let signposts = vec![
        Signpost {
            rel: "cite-as".into(),
            href: record.ids.version.url.clone(),
            media_type: None,
        },
        Signpost {
            rel: "type".into(),
            href: "https://schema.org/AboutPage".into(),
            media_type: None,
        },
    ];
    let ld = json!({
        "@context": "https://schema.org",
        "@type": "Dataset",
        "@id": record.ids.version.url,
        "identifier": record.ids.version.url,
        "name": record.facts.title,
        "url": record.ids.concept_page,
        "creativeWorkStatus": "Withdrawn",
    });
    let view = WithdrawnView {
        id: id.clone(),
        title: record.facts.title.clone(),
        people: record.facts.people.iter().map(|p| p.name.clone()).collect(),
        reason: tombstone.reason.clone(),
        date: tombstone.date.clone(),
        ids: identifiers_view(record),
        citation: citation(record),
        signposts: signposts.clone(),
        linkset: linkset_href(base_url, id),
        json_ld: script_json(&ld),
        api_path: api_path.clone(),
    };
    let path = format!("{dir}/index.html");
    let html = renderer.render("withdrawn.html", &view.title, &path, &view)?;
    output.write(&path, html.as_bytes())?;
    output.write(
        &format!("{dir}/linkset.json"),
        &linkset(&[(format!("{base}{dir}/"), &signposts)]),
    )?;
    let api = json!({
        "id": id,
        "status": 410,
        "message": format!("{id} was withdrawn; its metadata and files are no longer available"),
        "withdrawn": {"reason": tombstone.reason, "date": tombstone.date},
        "metadata": {"title": record.facts.title},
        "citation": view.citation.text,
        "identifiers": {"concept": record.ids.concept.url, "version": record.ids.version.url},
        "links": {
            "self": format!("{base}{api_path}"),
            "html": format!("{base}{dir}/"),
        },
    });
    output.write(&api_path, &super::api::to_bytes(&api))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        let deposit = json!({
            "general_title": "Zee",
            "license": "CC-BY-4.0",
            "basic_info": {
                "abstract": "secret abstract",
                "people_info": [{"name": "Ada Lovelace", "email": "ada@example.org", "orcid": "0000-0002-1825-0097"}]
            }
        });
        record_of(
            "https://a.org/x/",
            "Archive",
            "zee",
            2,
            &[1, 2],
            "2026-01-02T03:04:05Z",
            &deposit,
            &Registered::default(),
        )
    }

    #[test]
    fn a_version_is_identified_by_its_pages_until_dois_exist() {
        let r = sample();
        assert_eq!(r.ids.concept.url, "https://a.org/x/records/zee");
        assert_eq!(r.ids.version.url, "https://a.org/x/records/zee/v2");
        assert_eq!(r.date, "2026-01-02");
        let s = signposts(&r, &[], "https://a.org/x");
        assert!(s
            .iter()
            .any(|s| s.rel == "author" && s.href == "https://orcid.org/0000-0002-1825-0097"));
        assert!(s
            .iter()
            .any(|s| s.rel == "license" && s.href == "https://spdx.org/licenses/CC-BY-4.0"));
        // DataCite XML is invalid without the DOI: described by JSON alone until then.
        let described = |s: &[Signpost]| {
            s.iter()
                .filter(|s| s.rel == "describedby")
                .map(|s| s.href.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            described(&s),
            ["https://a.org/x/records/zee/v2/datacite.json"]
        );
        let mut with_doi = r.clone();
        with_doi.ids.version = Identifier::doi("10.5072/zee.v2");
        assert_eq!(
            described(&signposts(&with_doi, &[], "https://a.org/x")),
            [
                "https://a.org/x/records/zee/v2/datacite.json",
                "https://a.org/x/records/zee/v2/datacite.xml"
            ]
        );
        let c = citation(&r);
        assert_eq!(
            (c.bibtex_name.as_str(), c.csl_name.as_str()),
            ("zee-v2.bib", "zee-v2.json")
        );
        assert!(c
            .bibtex_url
            .starts_with("data:application/x-bibtex;charset=utf-8,%40"));
    }

    #[test]
    fn a_tombstone_keeps_only_names_and_identifiers() {
        let r = tombstone_record(sample());
        assert_eq!(r.facts.title, "Zee");
        assert!(r.facts.description.is_none() && r.facts.license.is_none());
        assert_eq!(r.facts.people[0].email, None);
        assert!(!cite::cite(&r, cite::Format::CslJson).contains("secret"));
    }

    #[test]
    fn linksets_group_targets_by_relation() {
        let s = vec![
            Signpost {
                rel: "type".into(),
                href: "https://schema.org/Dataset".into(),
                media_type: None,
            },
            Signpost {
                rel: "type".into(),
                href: "https://schema.org/AboutPage".into(),
                media_type: None,
            },
        ];
        let v: Value = serde_json::from_slice(&linkset(&[
            ("https://a.org/r/".into(), &s),
            ("https://a.org/r/v1/".into(), &s[..1]),
        ]))
        .unwrap();
        assert_eq!(v["linkset"][0]["anchor"], "https://a.org/r/");
        assert_eq!(v["linkset"][0]["type"].as_array().unwrap().len(), 2);
        assert_eq!(v["linkset"][1]["anchor"], "https://a.org/r/v1/");
        assert_eq!(v["linkset"][1]["type"].as_array().unwrap().len(), 1);
    }
}
