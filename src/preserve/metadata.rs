//! The facts every preservation format shares, read from a deposit, and the JSON-LD
//! built from them: schema.org (for landing pages) and RO-Crate 1.2 (for packages).
//!
//! Deposits follow many schemas, so facts are found by shape, not by path: a person
//! is an object with a `name` and an `email` or `orcid`; captured software has a
//! 40-hex `commit` with a `url` or `bundle`; publications and datasets sit in arrays
//! whose key names them (`publications`, `input_datasets`), which is how capsule's
//! analysis schema and CAP's schemas spell them. System fields (`_access`,
//! `_deposit`, ...) are never read: who may read a deposit is not metadata.
//!
//! Every function here is pure: the site builds its JSON-LD with the same code.

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::{Identifier, Identifiers, Snapshot};
use crate::settings::Settings;

/// A person named by a deposit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Person {
    pub name: String,
    /// The bare ORCID iD (`0000-0002-1825-0097`), only when its check digit is right.
    pub orcid: Option<String>,
    pub email: Option<String>,
    pub role: Option<String>,
    pub affiliation: Option<String>,
}

impl Person {
    /// `(family, given)`: the last word is the family name. Names written
    /// `Family, Given` keep their comma's split.
    pub fn split_name(&self) -> (String, Option<String>) {
        if let Some((family, given)) = self.name.split_once(',') {
            return (family.trim().to_string(), Some(given.trim().to_string()));
        }
        match self.name.trim().rsplit_once(' ') {
            Some((given, family)) => (family.to_string(), Some(given.trim().to_string())),
            None => (self.name.trim().to_string(), None),
        }
    }
}

/// A dataset an analysis used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DatasetRef {
    pub name: String,
    pub doi: Option<String>,
    pub url: Option<String>,
}

/// Software an analysis recorded: a repository at a commit, perhaps with a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Software {
    pub url: Option<String>,
    pub commit: String,
    pub git_ref: Option<String>,
    pub description: Option<String>,
    /// The bundle file, relative to the deposit's folder.
    pub bundle: Option<String>,
    /// `swh:1:dir:<tree>` when the code itself is at hand (a bundle).
    pub swhid_dir: Option<String>,
}

impl Software {
    /// `swh:1:rev:<commit>`: a git commit id is the revision's SWHID.
    pub fn swhid_rev(&self) -> String {
        format!("swh:1:rev:{}", self.commit)
    }
}

/// A publication about the analysis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Publication {
    pub title: String,
    pub doi: Option<String>,
    pub arxiv: Option<String>,
    pub journal: Option<String>,
    pub url: Option<String>,
}

/// What a deposit says about itself, in the terms metadata formats share.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Facts {
    pub title: String,
    pub description: Option<String>,
    pub keywords: Vec<String>,
    pub people: Vec<Person>,
    pub datasets: Vec<DatasetRef>,
    pub software: Vec<Software>,
    pub publications: Vec<Publication>,
    /// `license` of the deposit: an SPDX id or a URL.
    pub license: Option<String>,
    /// The deposit's `$schema`.
    pub schema: Option<String>,
}

const SYSTEM_KEYS: [&str; 5] = ["_access", "_deposit", "_files", "_fetched_from", "$schema"];

/// Reads the facts of a deposit (see the module docs for how).
pub fn facts(deposit: &Value, id: &str) -> Facts {
    let text = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let title = text(deposit.get("general_title"))
        .or_else(|| text(deposit.get("title")))
        .or_else(|| text(deposit.pointer("/basic_info/analysis_name")))
        .unwrap_or_else(|| id.to_string());
    let description = ["/abstract", "/description", "/basic_info/abstract"]
        .iter()
        .find_map(|p| text(deposit.pointer(p)))
        .or_else(|| text(deposit.pointer("/basic_info/description")));
    let mut facts = Facts {
        title,
        description,
        license: text(deposit.get("license")),
        schema: text(deposit.get("$schema")),
        ..Facts::default()
    };
    if let Value::Object(map) = deposit {
        for (key, value) in map {
            if !SYSTEM_KEYS.contains(&key.as_str()) {
                walk(value, key, &mut facts);
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    facts.keywords.retain(|k| seen.insert(k.to_lowercase()));
    let mut seen = std::collections::HashSet::new();
    facts.people.retain(|p| {
        seen.insert(
            p.orcid
                .clone()
                .or_else(|| p.email.clone())
                .unwrap_or_else(|| p.name.clone()),
        )
    });
    facts
}

fn walk(value: &Value, key: &str, facts: &mut Facts) {
    match value {
        Value::Array(items) => {
            if key == "keywords" {
                facts.keywords.extend(
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::trim)
                        .filter(|k| !k.is_empty())
                        .map(str::to_string),
                );
                return;
            }
            items.iter().for_each(|item| walk(item, key, facts));
        }
        Value::Object(map) if !classify(map, key, facts) => {
            for (k, v) in map {
                walk(v, k, facts);
            }
        }
        _ => {}
    }
}

/// Takes `map` as a person, software, dataset or publication; false if it is none.
fn classify(map: &Map<String, Value>, key: &str, facts: &mut Facts) -> bool {
    let s = |k: &str| {
        map.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let key = key.to_ascii_lowercase();
    if let Some(commit) = s("commit").filter(|c| is_git_id(c)) {
        if s("url").is_some() || s("bundle").is_some() {
            facts.software.push(Software {
                url: s("url"),
                commit: commit.to_ascii_lowercase(),
                git_ref: s("ref"),
                description: s("description"),
                bundle: s("bundle"),
                swhid_dir: None,
            });
            return true;
        }
    }
    if key.contains("publication") || map.contains_key("arxiv") || map.contains_key("journal") {
        if let Some(title) = s("title").or_else(|| s("name")) {
            facts.publications.push(Publication {
                title,
                doi: s("doi").and_then(|d| normalise_doi(&d)),
                arxiv: s("arxiv"),
                journal: s("journal"),
                url: s("url"),
            });
            return true;
        }
    }
    if key.contains("dataset") {
        if let Some(name) = s("name").or_else(|| s("title")) {
            facts.datasets.push(DatasetRef {
                name,
                doi: s("doi").and_then(|d| normalise_doi(&d)),
                url: s("url"),
            });
            return true;
        }
    }
    if let Some(name) = s("name") {
        if map.contains_key("email") || map.contains_key("orcid") {
            facts.people.push(Person {
                name,
                orcid: s("orcid").and_then(|o| normalise_orcid(&o)),
                email: s("email"),
                role: s("role"),
                affiliation: s("affiliation").or_else(|| s("institute")),
            });
            return true;
        }
    }
    false
}

fn is_git_id(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The bare ORCID iD of `text` (a bare iD or an orcid.org URL), when it is well
/// formed (four groups of four, the last character a digit or X).
///
/// The ISO 7064 11,2 check character is not enforced: an export says what the
/// deposit's authors wrote, and dropping a person's iD over a typo would lose more
/// than it protects ([`orcid_check_digit_ok`] tells; schemas may enforce it).
pub fn normalise_orcid(text: &str) -> Option<String> {
    let bare = text
        .trim()
        .trim_start_matches("https://orcid.org/")
        .trim_start_matches("http://orcid.org/")
        .to_ascii_uppercase();
    let well_formed = bare.len() == 19
        && bare.bytes().enumerate().all(|(i, b)| {
            if i % 5 == 4 {
                b == b'-'
            } else if i == 18 {
                b.is_ascii_digit() || b == b'X'
            } else {
                b.is_ascii_digit()
            }
        });
    well_formed.then_some(bare)
}

/// Whether a well-formed ORCID iD's check character is right.
pub fn orcid_check_digit_ok(orcid: &str) -> bool {
    let digits: Vec<u8> = orcid.bytes().filter(|b| *b != b'-').collect();
    if digits.len() != 16 {
        return false;
    }
    let mut total = 0u32;
    for d in &digits[..15] {
        total = (total + u32::from(d.wrapping_sub(b'0'))) * 2;
    }
    let check = (12 - total % 11) % 11;
    let expected = if check == 10 {
        b'X'
    } else {
        b'0' + check as u8
    };
    digits[15] == expected
}

/// The DOI name of `text` (a bare DOI, `doi:...` or a doi.org URL), lower-case.
pub fn normalise_doi(text: &str) -> Option<String> {
    let t = text.trim();
    let t = [
        "https://doi.org/",
        "http://doi.org/",
        "https://dx.doi.org/",
        "doi:",
    ]
    .iter()
    .fold(t, |t, p| t.strip_prefix(p).unwrap_or(t));
    (t.starts_with("10.") && t.contains('/')).then(|| t.to_ascii_lowercase())
}

/// One record version with everything the builders need: the deposit's facts, its
/// identifiers and the archive it comes from.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub id: String,
    pub version: u32,
    /// The newest published version.
    pub latest: u32,
    /// `YYYY-MM-DD` of publication.
    pub date: String,
    pub year: i32,
    pub archive: String,
    pub base_url: String,
    pub facts: Facts,
    pub ids: Identifiers,
}

impl Record {
    pub fn new(settings: &Settings, snapshot: &Snapshot, ids: Identifiers) -> Record {
        Record {
            id: snapshot.id.clone(),
            version: snapshot.version,
            latest: snapshot
                .versions
                .last()
                .copied()
                .unwrap_or(snapshot.version),
            date: snapshot.date(),
            year: snapshot.year(),
            archive: settings.archive.name.clone(),
            base_url: settings.archive.base_url.clone(),
            facts: facts(&snapshot.deposit, &snapshot.id),
            ids,
        }
    }

    /// A description that always exists (formats require one).
    pub fn description(&self) -> String {
        self.facts.description.clone().unwrap_or_else(|| {
            format!(
                "{} (record {}, version {}), preserved in {}.",
                self.facts.title, self.id, self.version, self.archive
            )
        })
    }
}

fn person_id(person: &Person, index: usize) -> String {
    match &person.orcid {
        Some(orcid) => format!("https://orcid.org/{orcid}"),
        None => format!("#person-{}", index + 1),
    }
}

fn person_ld(person: &Person, index: usize) -> Value {
    let mut p = json!({
        "@id": person_id(person, index),
        "@type": "Person",
        "name": person.name,
    });
    if let Some(email) = &person.email {
        p["email"] = email.clone().into();
    }
    if let Some(affiliation) = &person.affiliation {
        p["affiliation"] = affiliation.clone().into();
    }
    p
}

fn dataset_id(d: &DatasetRef, index: usize) -> String {
    match (&d.doi, &d.url) {
        (Some(doi), _) => Identifier::doi(doi).url,
        (None, Some(url)) => url.clone(),
        _ => format!("#dataset-{}", index + 1),
    }
}

fn publication_id(p: &Publication, index: usize) -> String {
    match (&p.doi, &p.arxiv, &p.url) {
        (Some(doi), _, _) => Identifier::doi(doi).url,
        (None, Some(arxiv), _) => format!("https://arxiv.org/abs/{arxiv}"),
        (None, None, Some(url)) => url.clone(),
        _ => format!("#publication-{}", index + 1),
    }
}

fn software_id(index: usize) -> String {
    format!("#software-{}", index + 1)
}

fn publication_ld(p: &Publication, index: usize) -> Value {
    let mut v = json!({
        "@id": publication_id(p, index),
        "@type": "ScholarlyArticle",
        "name": p.title,
    });
    let mut ids = Vec::new();
    if let Some(doi) = &p.doi {
        ids.push(Value::String(Identifier::doi(doi).url));
    }
    if let Some(arxiv) = &p.arxiv {
        ids.push(Value::String(format!("arXiv:{arxiv}")));
    }
    if !ids.is_empty() {
        v["identifier"] = Value::Array(ids);
    }
    if let Some(journal) = &p.journal {
        v["isPartOf"] = json!({"@id": periodical_id(journal)});
    }
    v
}

fn periodical_id(journal: &str) -> String {
    let slug: String = journal
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("#periodical-{slug}")
}

fn periodical_ld(journal: &str) -> Value {
    json!({"@id": periodical_id(journal), "@type": "Periodical", "name": journal})
}

fn software_ld(s: &Software, index: usize) -> Value {
    software_entity(s, software_id(index), json!("SoftwareSourceCode"))
}

fn software_entity(s: &Software, id: String, types: Value) -> Value {
    let mut ids = vec![Value::String(s.swhid_rev())];
    if let Some(dir) = &s.swhid_dir {
        ids.push(Value::String(dir.clone()));
    }
    let mut v = json!({
        "@id": id,
        "@type": types,
        "name": s.url.clone().or_else(|| s.bundle.clone()).unwrap_or_else(|| s.commit.clone()),
        "version": s.commit,
        "identifier": ids,
    });
    if let Some(url) = &s.url {
        v["codeRepository"] = url.clone().into();
    }
    if let Some(description) = &s.description {
        v["description"] = description.clone().into();
    }
    v
}

fn dataset_ld(d: &DatasetRef, index: usize) -> Value {
    dataset_entity(d, index, "Dataset")
}

fn dataset_entity(d: &DatasetRef, index: usize, kind: &str) -> Value {
    let mut v = json!({"@id": dataset_id(d, index), "@type": kind, "name": d.name});
    if let Some(doi) = &d.doi {
        v["identifier"] = Identifier::doi(doi).url.into();
    }
    v
}

/// schema.org JSON-LD for a record version's landing page.
pub fn schema_org(record: &Record) -> Value {
    let f = &record.facts;
    let mut v = json!({
        "@context": "https://schema.org",
        "@type": "Dataset",
        "@id": record.ids.version.url,
        "identifier": record.ids.version.url,
        "url": record.ids.version_page,
        "name": f.title,
        "description": record.description(),
        "datePublished": record.date,
        "version": record.version.to_string(),
        "exampleOfWork": {"@id": record.ids.concept.url},
        "creator": f.people.iter().enumerate().map(|(i, p)| person_ld(p, i)).collect::<Vec<_>>(),
        "publisher": {"@type": "Organization", "name": record.archive, "url": record.base_url},
        "includedInDataCatalog": {"@type": "DataCatalog", "name": record.archive, "url": record.base_url},
    });
    if !f.keywords.is_empty() {
        v["keywords"] = json!(f.keywords);
    }
    if let Some(license) = &f.license {
        v["license"] = license.clone().into();
    }
    let based_on: Vec<Value> = f
        .datasets
        .iter()
        .enumerate()
        .map(|(i, d)| dataset_ld(d, i))
        .chain(
            f.software
                .iter()
                .enumerate()
                .map(|(i, s)| software_ld(s, i)),
        )
        .collect();
    if !based_on.is_empty() {
        v["isBasedOn"] = Value::Array(based_on);
    }
    if !f.publications.is_empty() {
        v["citation"] = f
            .publications
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut ld = publication_ld(p, i);
                if let Some(journal) = &p.journal {
                    ld["isPartOf"] = periodical_ld(journal);
                }
                ld
            })
            .collect();
    }
    v
}

/// What a file of a package is, for its RO-Crate entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileRole {
    /// The deposit's metadata (deposit.json).
    Deposit,
    /// One of the analysis files.
    AnalysisFile,
    /// A review file.
    Review,
    /// A JSON Schema the deposit is written against.
    Schema,
    /// Metadata written for the package (DataCite, citations).
    Metadata,
    /// The bundle of software number `n` (index into `Facts::software`).
    Bundle(usize),
}

/// One file of a package, as the RO-Crate describes it (paths relative to the crate).
#[derive(Debug, Clone)]
pub struct CrateFile {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub role: FileRole,
}

fn encoding_format(path: &str) -> Option<&'static str> {
    let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase())?;
    Some(match ext.as_str() {
        "json" => "application/json",
        "xml" => "application/xml",
        "bib" => "application/x-bibtex",
        "txt" | "md" => "text/plain",
        "csv" => "text/csv",
        "yaml" | "yml" => "application/yaml",
        "bundle" => "application/x-git-bundle",
        "pdf" => "application/pdf",
        "root" => "application/x-root",
        _ => return None,
    })
}

/// The RO-Crate 1.2 metadata of a package holding `files`: the analysis as the root
/// Dataset; its people, datasets and publications as contextual entities. Captured
/// code kept as a bundle is a data entity of type File + SoftwareSourceCode carrying
/// its commit and SWHIDs; code only recorded (no bundle) is a contextual CreativeWork,
/// as are input datasets (they are not part of the crate; RO-Crate calls anything typed
/// Dataset or File a data entity of the crate).
pub fn ro_crate(record: &Record, files: &[CrateFile]) -> Value {
    let f = &record.facts;
    let bundle_of = |i: usize| {
        files
            .iter()
            .find(|file| file.role == FileRole::Bundle(i))
            .map(|file| file.path.clone())
    };
    let software_ids: Vec<String> = (0..f.software.len())
        .map(|i| bundle_of(i).unwrap_or_else(|| software_id(i)))
        .collect();
    let mut graph = vec![json!({
        "@id": "ro-crate-metadata.json",
        "@type": "CreativeWork",
        "conformsTo": {"@id": "https://w3id.org/ro/crate/1.2"},
        "about": {"@id": "./"},
    })];
    let license_id = match &f.license {
        Some(l) if l.starts_with("http") => l.clone(),
        Some(l) => format!("https://spdx.org/licenses/{l}"),
        None => "#license-unspecified".to_string(),
    };
    let mut root = json!({
        "@id": "./",
        "@type": "Dataset",
        "name": f.title,
        "description": record.description(),
        "datePublished": record.date,
        "version": record.version.to_string(),
        "identifier": [record.ids.version.url, record.ids.concept.url],
        "url": record.ids.version_page,
        "publisher": {"@id": record.base_url},
        "license": {"@id": license_id},
        "hasPart": files.iter().map(|file| json!({"@id": file.path})).collect::<Vec<_>>(),
    });
    if !f.people.is_empty() {
        root["author"] = f
            .people
            .iter()
            .enumerate()
            .map(|(i, p)| json!({"@id": person_id(p, i)}))
            .collect();
    }
    if !f.keywords.is_empty() {
        root["keywords"] = json!(f.keywords);
    }
    let based_on: Vec<Value> = f
        .datasets
        .iter()
        .enumerate()
        .map(|(i, d)| json!({"@id": dataset_id(d, i)}))
        .chain(software_ids.iter().map(|id| json!({"@id": id})))
        .collect();
    if !based_on.is_empty() {
        root["isBasedOn"] = Value::Array(based_on);
    }
    if !f.publications.is_empty() {
        root["citation"] = f
            .publications
            .iter()
            .enumerate()
            .map(|(i, p)| json!({"@id": publication_id(p, i)}))
            .collect();
    }
    graph.push(root);
    for file in files {
        let name = file.path.rsplit('/').next().unwrap_or(&file.path);
        let mut entity = match file.role {
            FileRole::Bundle(i) => {
                let mut e = software_entity(
                    &f.software[i],
                    file.path.clone(),
                    json!(["File", "SoftwareSourceCode"]),
                );
                e["description"] =
                    "The captured code as a git bundle (`git clone` reads it)".into();
                e
            }
            _ => json!({"@id": file.path, "@type": "File", "name": name}),
        };
        entity["contentSize"] = file.size.to_string().into();
        entity["sha256"] = file.sha256.clone().into();
        if let Some(format) = encoding_format(&file.path) {
            entity["encodingFormat"] = format.into();
        }
        let description = match file.role {
            FileRole::Deposit => Some("The deposit's metadata, as published"),
            FileRole::Review => Some("A public review of the analysis"),
            FileRole::Schema => Some("A JSON Schema the deposit is written against"),
            FileRole::Metadata => Some("Metadata of this record version"),
            FileRole::AnalysisFile | FileRole::Bundle(_) => None,
        };
        if let Some(description) = description {
            entity["description"] = description.into();
        }
        graph.push(entity);
    }
    graph.push(json!({
        "@id": record.base_url,
        "@type": "Organization",
        "name": record.archive,
        "url": record.base_url,
    }));
    graph.push(match &f.license {
        None => json!({
            "@id": license_id,
            "@type": "CreativeWork",
            "name": "No license stated",
            "description": "The deposit names no license; ask the archive before reusing it.",
        }),
        Some(l) => json!({"@id": license_id, "@type": "CreativeWork", "name": l}),
    });
    graph.extend(f.people.iter().enumerate().map(|(i, p)| person_ld(p, i)));
    graph.extend(f.datasets.iter().enumerate().map(|(i, d)| {
        let mut e = dataset_entity(d, i, "CreativeWork");
        e["description"] = "An input dataset of the analysis (not part of this package)".into();
        e
    }));
    for (i, s) in f.software.iter().enumerate() {
        if bundle_of(i).is_none() {
            let mut e = software_entity(s, software_id(i), json!("CreativeWork"));
            e["additionalType"] = "SoftwareSourceCode".into();
            graph.push(e);
        }
    }
    graph.extend(
        f.publications
            .iter()
            .enumerate()
            .map(|(i, p)| publication_ld(p, i)),
    );
    graph.extend(
        f.publications
            .iter()
            .filter_map(|p| p.journal.as_deref())
            .map(periodical_ld),
    );
    // Two entities may not share an @id: the same DOI cited twice stays one entity.
    let mut seen = std::collections::HashSet::new();
    graph.retain(|e| seen.insert(e["@id"].as_str().unwrap_or_default().to_string()));
    json!({
        "@context": "https://w3id.org/ro/crate/1.2/context",
        "@graph": graph,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orcids_are_checked() {
        assert_eq!(
            normalise_orcid("0000-0002-1825-0097").as_deref(),
            Some("0000-0002-1825-0097")
        );
        assert_eq!(
            normalise_orcid("https://orcid.org/0000-0002-1694-233x").as_deref(),
            Some("0000-0002-1694-233X")
        );
        assert_eq!(normalise_orcid("12345"), None);
        assert_eq!(normalise_orcid("0000-0002-1825-009"), None);
        assert!(orcid_check_digit_ok("0000-0002-1825-0097"));
        assert!(orcid_check_digit_ok("0000-0002-1694-233X"));
        assert!(!orcid_check_digit_ok("0000-0002-1825-0098"));
    }

    #[test]
    fn facts_are_found_by_shape() {
        let d = json!({
            "$schema": "analysis/1.0.0",
            "general_title": "T",
            "_access": {"deposit-read": {"users": [{"name": "x", "email": "secret@x"}]}},
            "basic_info": {
                "people_info": [{"name": "Ada Lovelace", "orcid": "0000-0002-1825-0097", "email": "a@x"}],
                "keywords": ["a", "A", "b"]
            },
            "data_provenance": {"input_datasets": [{"name": "D", "doi": "https://doi.org/10.1/ABC"}]},
            "analysis_software": {"repositories": [{"url": "u", "commit": "4f9c2e7a1b3d58c6e0f2a9b7d4c1e8f356a2b0d9"}]},
            "additional_resources": {"publications": [{"title": "P", "arxiv": "2405.01234"}]}
        });
        let f = facts(&d, "x");
        assert_eq!(f.title, "T");
        assert_eq!(f.people.len(), 1, "{:?}", f.people);
        assert_eq!(f.people[0].orcid.as_deref(), Some("0000-0002-1825-0097"));
        assert_eq!(f.keywords, ["a", "b"]);
        assert_eq!(f.datasets[0].doi.as_deref(), Some("10.1/abc"));
        assert_eq!(
            f.software[0].swhid_rev(),
            "swh:1:rev:4f9c2e7a1b3d58c6e0f2a9b7d4c1e8f356a2b0d9"
        );
        assert_eq!(f.publications[0].arxiv.as_deref(), Some("2405.01234"));
        let p = &f.people[0];
        assert_eq!(
            p.split_name(),
            ("Lovelace".to_string(), Some("Ada".to_string()))
        );
    }

    #[test]
    fn schema_org_names_the_version_its_concept_and_its_people() {
        use crate::preserve::{Identifier, Identifiers};
        let deposit = json!({
            "general_title": "T",
            "basic_info": {"people_info": [{"name": "Ada Lovelace", "orcid": "0000-0002-1825-0097"}]},
            "additional_resources": {"publications": [{"title": "P", "doi": "10.1/p", "journal": "J"}]}
        });
        let record = Record {
            id: "x".into(),
            version: 2,
            latest: 2,
            date: "2026-11-22".into(),
            year: 2026,
            archive: "A".into(),
            base_url: "https://a.org".into(),
            facts: facts(&deposit, "x"),
            ids: Identifiers {
                concept: Identifier::url("https://a.org/records/x".into()),
                version: Identifier::doi("10.5072/x.v2"),
                versions: vec![],
                concept_page: "https://a.org/records/x".into(),
                version_page: "https://a.org/records/x/v2".into(),
            },
        };
        let ld = schema_org(&record);
        assert_eq!(ld["@type"], "Dataset");
        assert_eq!(ld["@id"], "https://doi.org/10.5072/x.v2");
        assert_eq!(ld["url"], "https://a.org/records/x/v2");
        assert_eq!(ld["exampleOfWork"]["@id"], "https://a.org/records/x");
        assert_eq!(
            ld["creator"][0]["@id"],
            "https://orcid.org/0000-0002-1825-0097"
        );
        assert_eq!(ld["citation"][0]["@id"], "https://doi.org/10.1/p");
        assert_eq!(
            ld["citation"][0]["isPartOf"]["name"], "J",
            "embedded, not a dangling @id"
        );
    }
}
