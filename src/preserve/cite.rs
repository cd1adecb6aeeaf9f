//! Citations of a record version: BibTeX (through the `biblatex` crate, which escapes
//! LaTeX's special characters and parses its own output back), CSL-JSON (what Zotero,
//! Mendeley and citeproc read) and one line of text for people.
//!
//! A citation names the version's identifier (its DOI when registered), so that a
//! reader finds exactly the version that was cited. Pure functions.

use biblatex::{Chunk, Entry, EntryType, Person as BibPerson, Spanned};
use serde_json::{json, Value};

use super::metadata::Record;

/// The formats `capsule cite` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Bibtex,
    CslJson,
    Text,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "bibtex" => Ok(Format::Bibtex),
            "csl-json" => Ok(Format::CslJson),
            "text" => Ok(Format::Text),
            other => Err(format!(
                "`{other}` is not a citation format: use bibtex, csl-json or text"
            )),
        }
    }
}

/// The citation of `record` in `format`.
pub fn cite(record: &Record, format: Format) -> String {
    match format {
        Format::Bibtex => bibtex(record),
        Format::CslJson => {
            let mut text = serde_json::to_string_pretty(&csl_json(record)).expect("JSON");
            text.push('\n');
            text
        }
        Format::Text => {
            let mut text = text(record);
            text.push('\n');
            text
        }
    }
}

/// The citation key: the record id and version, with what BibTeX keys may not hold
/// replaced.
pub fn citation_key(record: &Record) -> String {
    let id: String = record
        .id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{id}_v{}", record.version)
}

fn normal(text: &str) -> Vec<Spanned<Chunk>> {
    vec![Spanned::zero(Chunk::Normal(text.to_string()))]
}

fn verbatim(text: &str) -> Vec<Spanned<Chunk>> {
    vec![Spanned::zero(Chunk::Verbatim(text.to_string()))]
}

/// The BibTeX entry (`@misc`, BibTeX's type for datasets; biblatex's `@dataset`
/// maps to it).
pub fn bibtex(record: &Record) -> String {
    let f = &record.facts;
    let mut entry = Entry::new(citation_key(record), EntryType::Dataset);
    if f.people.is_empty() {
        // An organisation as author: braced, so BibTeX does not split it into names.
        entry.set("author", verbatim(&record.archive));
    } else {
        let people: Vec<BibPerson> = f
            .people
            .iter()
            .map(|p| {
                let (family, given) = p.split_name();
                BibPerson {
                    name: family,
                    given_name: given.unwrap_or_default(),
                    prefix: String::new(),
                    suffix: String::new(),
                    id: None,
                    prefix_initials: None,
                    given_initials: None,
                    use_prefix: None,
                }
            })
            .collect();
        entry.set_as::<Vec<BibPerson>>("author", &people);
    }
    entry.set("title", normal(&f.title));
    entry.set("year", normal(&record.year.to_string()));
    entry.set("month", normal(&record.date[5..7]));
    entry.set("publisher", normal(&record.archive));
    entry.set("version", normal(&record.version.to_string()));
    if record.ids.version.is_doi() {
        entry.set("doi", verbatim(&record.ids.version.value));
    }
    entry.set("url", verbatim(&record.ids.version.url));
    if !f.keywords.is_empty() {
        entry.set("keywords", normal(&f.keywords.join(", ")));
    }
    // The month is a number, which `to_bibtex_string` cannot fail on; a date is not set.
    let mut text = entry
        .to_bibtex_string()
        .unwrap_or_else(|_| entry.to_biblatex_string());
    text.push('\n');
    text
}

/// The CSL-JSON item (an array of one, as citeproc and reference managers expect).
pub fn csl_json(record: &Record) -> Value {
    let f = &record.facts;
    let authors: Vec<Value> = if f.people.is_empty() {
        vec![json!({"literal": record.archive})]
    } else {
        f.people
            .iter()
            .map(|p| match p.split_name() {
                (family, Some(given)) => json!({"family": family, "given": given}),
                (family, None) => json!({"literal": family}),
            })
            .collect()
    };
    let parts: Vec<u32> = record
        .date
        .split('-')
        .filter_map(|p| p.parse().ok())
        .collect();
    let mut item = json!({
        "id": citation_key(record),
        "type": "dataset",
        "title": f.title,
        "author": authors,
        "issued": {"date-parts": [parts]},
        "publisher": record.archive,
        "version": record.version.to_string(),
        "URL": record.ids.version.url,
    });
    if record.ids.version.is_doi() {
        item["DOI"] = record.ids.version.value.clone().into();
    }
    if !f.keywords.is_empty() {
        item["keyword"] = f.keywords.join(", ").into();
    }
    if let Some(d) = &f.description {
        item["abstract"] = d.clone().into();
    }
    json!([item])
}

/// One line for people: authors (year). Title (Version N) [Data set]. Archive. Identifier.
pub fn text(record: &Record) -> String {
    let f = &record.facts;
    let authors = if f.people.is_empty() {
        record.archive.clone()
    } else {
        let names: Vec<String> = f
            .people
            .iter()
            .map(|p| match p.split_name() {
                (family, Some(given)) => {
                    let initials: Vec<String> = given
                        .split_whitespace()
                        .filter_map(|g| g.chars().next())
                        .map(|c| format!("{c}."))
                        .collect();
                    format!("{family}, {}", initials.join(" "))
                }
                (family, None) => family,
            })
            .collect();
        match names.len() {
            1 => names[0].clone(),
            n => format!("{} & {}", names[..n - 1].join(", "), names[n - 1]),
        }
    };
    format!(
        "{authors} ({}). {} (Version {}) [Data set]. {}. {}",
        record.year, f.title, record.version, record.archive, record.ids.version.url
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preserve::metadata::{Facts, Person};
    use crate::preserve::{Identifier, Identifiers};
    use biblatex::{Bibliography, ChunksExt};

    fn record(title: &str) -> Record {
        let person = |name: &str| Person {
            name: name.into(),
            orcid: None,
            email: None,
            role: None,
            affiliation: None,
        };
        let doi = Identifier::doi("10.5072/zee.v2");
        Record {
            id: "zee".into(),
            version: 2,
            latest: 2,
            date: "2026-11-22".into(),
            year: 2026,
            archive: "CMS & friends 100% archive".into(),
            base_url: "https://a.org".into(),
            facts: Facts {
                title: title.into(),
                people: vec![person("Tomás Ferreira"), person("Ada King Lovelace")],
                keywords: vec!["Z_boson".into(), "e^+e^-".into()],
                ..Facts::default()
            },
            ids: Identifiers {
                concept: Identifier::doi("10.5072/zee"),
                version: doi.clone(),
                versions: vec![(2, doi)],
                concept_page: "https://a.org/records/zee".into(),
                version_page: "https://a.org/records/zee/v2".into(),
            },
        }
    }

    /// What BibTeX makes of special characters parses back to the same text.
    #[test]
    fn bibtex_round_trips_through_the_parser() {
        // `~`, `^` and `\\` are left out: the crate writes them as LaTeX commands
        // (`\~`, `\^`, `\\`), which LaTeX reads as accents and a line break.
        let title = "Z -> ee {cross} section: 50% of $x_1$ & #2";
        let text = bibtex(&record(title));
        assert!(text.contains("\\&"), "{text}");
        assert!(text.contains("\\%"), "{text}");
        let parsed = Bibliography::parse(&text).expect("parses");
        let entry = parsed.get("zee_v2").expect("the key");
        assert_eq!(entry.title().unwrap().format_verbatim(), title);
        assert_eq!(
            entry.doi().unwrap(),
            "10.5072/zee.v2",
            "the DOI survives as written"
        );
        let authors = entry.author().unwrap();
        assert_eq!(authors[0].name, "Ferreira");
        assert_eq!(authors[0].given_name, "Tomás");
        assert_eq!(authors[1].name, "Lovelace");
        assert_eq!(authors[1].given_name, "Ada King");
        assert_eq!(
            entry.get("publisher").unwrap().format_verbatim(),
            "CMS & friends 100% archive"
        );
    }

    #[test]
    fn text_and_csl_name_the_version_identifier() {
        let r = record("T");
        assert_eq!(
            text(&r),
            "Ferreira, T. & Lovelace, A. K. (2026). T (Version 2) [Data set]. CMS & friends 100% archive. https://doi.org/10.5072/zee.v2"
        );
        let csl = csl_json(&r);
        assert_eq!(csl[0]["DOI"], "10.5072/zee.v2");
        assert_eq!(csl[0]["issued"]["date-parts"][0], json!([2026, 11, 22]));
        assert_eq!(csl[0]["author"][0]["given"], "Tomás");
    }
}
