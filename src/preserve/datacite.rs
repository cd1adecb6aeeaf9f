//! DataCite Metadata Schema 4.5: the JSON that DataCite's REST API takes as a DOI's
//! attributes, and the same metadata as kernel-4 XML.
//!
//! A record has two kinds of DOI (when registered): the concept (every version, resolving
//! to the newest) and one per version. [`Target`] says which one is described; the
//! two point at each other with `HasVersion` / `IsVersionOf`, and versions at their
//! neighbours with `IsNewVersionOf` / `IsPreviousVersionOf`. Without DOIs the landing
//! pages are given as alternate identifiers (type URL), so an export always names both.
//!
//! Pure functions: the site and `capsule doi` build the same metadata.

use serde_json::{json, Value};

use super::metadata::Record;
use super::Identifier;

/// Which of a record's DOIs the metadata describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Concept,
    Version,
}

fn related(identifier: &Identifier, relation: &str) -> Value {
    json!({
        "relatedIdentifier": if identifier.is_doi() { identifier.value.clone() } else { identifier.url.clone() },
        "relatedIdentifierType": identifier.scheme,
        "relationType": relation,
    })
}

/// The DataCite 4.5 JSON of `record` (the version, or its concept).
pub fn datacite_json(record: &Record, target: Target) -> Value {
    let f = &record.facts;
    let ids = &record.ids;
    let (this, page) = match target {
        Target::Concept => (&ids.concept, &ids.concept_page),
        Target::Version => (&ids.version, &ids.version_page),
    };
    let creators: Vec<Value> = if f.people.is_empty() {
        // DataCite needs a creator: the archive stands in, as an organisation.
        vec![json!({"name": record.archive, "nameType": "Organizational"})]
    } else {
        f.people
            .iter()
            .map(|p| {
                let (family, given) = p.split_name();
                let mut c = json!({
                    "name": match &given { Some(g) => format!("{family}, {g}"), None => family.clone() },
                    "nameType": "Personal",
                    "familyName": family,
                });
                if let Some(given) = given {
                    c["givenName"] = given.into();
                }
                if let Some(orcid) = &p.orcid {
                    c["nameIdentifiers"] = json!([{
                        "nameIdentifier": format!("https://orcid.org/{orcid}"),
                        "nameIdentifierScheme": "ORCID",
                        "schemeUri": "https://orcid.org",
                    }]);
                }
                if let Some(a) = &p.affiliation {
                    c["affiliation"] = json!([{"name": a}]);
                }
                c
            })
            .collect()
    };
    let mut v = json!({
        "types": {"resourceTypeGeneral": "Dataset", "resourceType": "Analysis"},
        "creators": creators,
        "titles": [{"title": f.title}],
        "publisher": {"name": record.archive},
        "publicationYear": format!("{:04}", record.year),
        "dates": [{"date": record.date, "dateType": "Issued"}],
        "descriptions": [{"description": record.description(), "descriptionType": "Abstract"}],
        "schemaVersion": "http://datacite.org/schema/kernel-4",
    });
    if this.is_doi() {
        v["doi"] = this.value.clone().into();
    }
    v["url"] = page.clone().into();
    if target == Target::Version {
        v["version"] = record.version.to_string().into();
    }
    let mut alternate = Vec::new();
    if !this.is_doi() {
        alternate.push(json!({"alternateIdentifier": page, "alternateIdentifierType": "URL"}));
    }
    alternate.push(json!({
        "alternateIdentifier": match target {
            Target::Concept => record.id.clone(),
            Target::Version => format!("{}/v{}", record.id, record.version),
        },
        "alternateIdentifierType": "capsule record",
    }));
    v["alternateIdentifiers"] = Value::Array(alternate);
    if !f.keywords.is_empty() {
        v["subjects"] = f.keywords.iter().map(|k| json!({"subject": k})).collect();
    }
    if let Some(license) = &f.license {
        v["rightsList"] = if license.starts_with("http") {
            json!([{"rights": license, "rightsUri": license}])
        } else {
            json!([{
                "rights": license,
                "rightsUri": format!("https://spdx.org/licenses/{license}"),
                "rightsIdentifier": license,
                "rightsIdentifierScheme": "SPDX",
                "schemeUri": "https://spdx.org/licenses/",
            }])
        };
    }
    let mut rel = Vec::new();
    match target {
        Target::Concept => {
            for (_, version) in &ids.versions {
                rel.push(related(version, "HasVersion"));
            }
        }
        Target::Version => {
            rel.push(related(&ids.concept, "IsVersionOf"));
            let index = ids.versions.iter().position(|(n, _)| *n == record.version);
            if let Some(i) = index {
                if i > 0 {
                    rel.push(related(&ids.versions[i - 1].1, "IsNewVersionOf"));
                }
                if let Some((_, next)) = ids.versions.get(i + 1) {
                    rel.push(related(next, "IsPreviousVersionOf"));
                }
            }
        }
    }
    for d in &f.datasets {
        if let Some(doi) = &d.doi {
            rel.push(json!({"relatedIdentifier": doi, "relatedIdentifierType": "DOI", "relationType": "IsDerivedFrom", "resourceTypeGeneral": "Dataset"}));
        }
    }
    for s in &f.software {
        if let Some(url) = &s.url {
            if url.starts_with("http") {
                rel.push(json!({"relatedIdentifier": url, "relatedIdentifierType": "URL", "relationType": "Requires", "resourceTypeGeneral": "Software"}));
            }
        }
        // DataCite 4.5 has no SWHID identifier type: the archive's resolver URL stands in.
        rel.push(json!({"relatedIdentifier": format!("https://archive.softwareheritage.org/{}", s.swhid_rev()), "relatedIdentifierType": "URL", "relationType": "Requires", "resourceTypeGeneral": "Software"}));
    }
    for p in &f.publications {
        if let Some(doi) = &p.doi {
            rel.push(json!({"relatedIdentifier": doi, "relatedIdentifierType": "DOI", "relationType": "IsDocumentedBy", "resourceTypeGeneral": "JournalArticle"}));
        } else if let Some(arxiv) = &p.arxiv {
            rel.push(json!({"relatedIdentifier": format!("arXiv:{arxiv}"), "relatedIdentifierType": "arXiv", "relationType": "IsDocumentedBy", "resourceTypeGeneral": "Preprint"}));
        }
    }
    let mut seen = std::collections::HashSet::new();
    rel.retain(|r| seen.insert(r.to_string()));
    if !rel.is_empty() {
        v["relatedIdentifiers"] = Value::Array(rel);
    }
    v
}

/// Escapes text for XML character data and attribute values: the one XML escaper of
/// capsule (DataCite XML, the site's feed, sitemaps and OAI-PMH repository).
/// Characters XML 1.0 cannot carry at all are dropped.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            '\u{FFFE}' | '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// A small element writer: `<name attrs>text</name>`, indented.
struct Xml {
    out: String,
    depth: usize,
}

impl Xml {
    fn open(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.line(&format!("<{name}{}>", attributes(attrs)));
        self.depth += 1;
    }

    fn close(&mut self, name: &str) {
        self.depth -= 1;
        self.line(&format!("</{name}>"));
    }

    fn leaf(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) {
        self.line(&format!(
            "<{name}{}>{}</{name}>",
            attributes(attrs),
            xml_escape(text)
        ));
    }

    fn line(&mut self, text: &str) {
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
        self.out.push_str(text);
        self.out.push('\n');
    }
}

fn attributes(attrs: &[(&str, &str)]) -> String {
    attrs
        .iter()
        .map(|(k, v)| format!(" {k}=\"{}\"", xml_escape(v)))
        .collect()
}

fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The DataCite 4.5 XML of the same metadata as [`datacite_json`].
pub fn datacite_xml(record: &Record, target: Target) -> String {
    let j = datacite_json(record, target);
    let mut x = Xml {
        out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
        depth: 0,
    };
    x.open(
        "resource",
        &[
            ("xmlns", "http://datacite.org/schema/kernel-4"),
            ("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"),
            ("xsi:schemaLocation", "http://datacite.org/schema/kernel-4 http://schema.datacite.org/meta/kernel-4.5/metadata.xsd"),
        ],
    );
    // Without a DOI the identifier stays empty: DataCite fills it on registration.
    x.leaf(
        "identifier",
        &[("identifierType", "DOI")],
        s(&j, "doi").unwrap_or(""),
    );
    x.open("creators", &[]);
    for c in j["creators"].as_array().into_iter().flatten() {
        x.open("creator", &[]);
        x.leaf(
            "creatorName",
            &[("nameType", s(c, "nameType").unwrap_or("Personal"))],
            s(c, "name").unwrap_or(""),
        );
        if let Some(g) = s(c, "givenName") {
            x.leaf("givenName", &[], g);
        }
        if let Some(f) = s(c, "familyName") {
            x.leaf("familyName", &[], f);
        }
        for n in c["nameIdentifiers"].as_array().into_iter().flatten() {
            x.leaf(
                "nameIdentifier",
                &[
                    (
                        "nameIdentifierScheme",
                        s(n, "nameIdentifierScheme").unwrap_or(""),
                    ),
                    ("schemeURI", s(n, "schemeUri").unwrap_or("")),
                ],
                s(n, "nameIdentifier").unwrap_or(""),
            );
        }
        for a in c["affiliation"].as_array().into_iter().flatten() {
            x.leaf("affiliation", &[], s(a, "name").unwrap_or(""));
        }
        x.close("creator");
    }
    x.close("creators");
    x.open("titles", &[]);
    for t in j["titles"].as_array().into_iter().flatten() {
        x.leaf("title", &[], s(t, "title").unwrap_or(""));
    }
    x.close("titles");
    x.leaf("publisher", &[], s(&j["publisher"], "name").unwrap_or(""));
    x.leaf(
        "publicationYear",
        &[],
        s(&j, "publicationYear").unwrap_or(""),
    );
    x.leaf(
        "resourceType",
        &[("resourceTypeGeneral", "Dataset")],
        s(&j["types"], "resourceType").unwrap_or(""),
    );
    if let Some(subjects) = j["subjects"].as_array() {
        x.open("subjects", &[]);
        for subject in subjects {
            x.leaf("subject", &[], s(subject, "subject").unwrap_or(""));
        }
        x.close("subjects");
    }
    x.open("dates", &[]);
    for d in j["dates"].as_array().into_iter().flatten() {
        x.leaf(
            "date",
            &[("dateType", s(d, "dateType").unwrap_or(""))],
            s(d, "date").unwrap_or(""),
        );
    }
    x.close("dates");
    x.open("alternateIdentifiers", &[]);
    for a in j["alternateIdentifiers"].as_array().into_iter().flatten() {
        x.leaf(
            "alternateIdentifier",
            &[(
                "alternateIdentifierType",
                s(a, "alternateIdentifierType").unwrap_or(""),
            )],
            s(a, "alternateIdentifier").unwrap_or(""),
        );
    }
    x.close("alternateIdentifiers");
    if let Some(rel) = j["relatedIdentifiers"].as_array() {
        x.open("relatedIdentifiers", &[]);
        for r in rel {
            let mut attrs = vec![
                (
                    "relatedIdentifierType",
                    s(r, "relatedIdentifierType").unwrap_or(""),
                ),
                ("relationType", s(r, "relationType").unwrap_or("")),
            ];
            if let Some(t) = s(r, "resourceTypeGeneral") {
                attrs.push(("resourceTypeGeneral", t));
            }
            x.leaf(
                "relatedIdentifier",
                &attrs,
                s(r, "relatedIdentifier").unwrap_or(""),
            );
        }
        x.close("relatedIdentifiers");
    }
    if let Some(version) = s(&j, "version") {
        x.leaf("version", &[], version);
    }
    if let Some(rights) = j["rightsList"].as_array() {
        x.open("rightsList", &[]);
        for r in rights {
            let mut attrs = vec![("rightsURI", s(r, "rightsUri").unwrap_or(""))];
            if let Some(id) = s(r, "rightsIdentifier") {
                attrs.push(("rightsIdentifier", id));
                attrs.push(("rightsIdentifierScheme", "SPDX"));
            }
            x.leaf("rights", &attrs, s(r, "rights").unwrap_or(""));
        }
        x.close("rightsList");
    }
    x.open("descriptions", &[]);
    for d in j["descriptions"].as_array().into_iter().flatten() {
        x.leaf(
            "description",
            &[("descriptionType", "Abstract")],
            s(d, "description").unwrap_or(""),
        );
    }
    x.close("descriptions");
    x.close("resource");
    x.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_text_is_escaped() {
        assert_eq!(xml_escape("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot;");
    }
}
