//! The site's OAI-PMH static repository (`oai.xml`): one XML file with `Identify`,
//! `ListMetadataFormats` and one `ListRecords` per format (`oai_dc`, and
//! `oai_datacite` carrying the DataCite 4.5 XML of `crate::preserve::datacite`), in
//! the format of the OAI "Specification for an OAI Static Repository". A harvester
//! reaches it through a static repository gateway, which answers the protocol's
//! requests from this file. `oai_datacite` lists only versions with a registered DOI
//! (DataCite's XML schema requires one), and appears once one has.
//!
//! Each shown record contributes its newest version; a withdrawn record stays as a
//! header with `status="deleted"` (the repository keeps deletions, as its identifiers
//! stay reserved). Restricted records and drafts never appear: the caller says which
//! records the public site shows, and this module asks the tombstone for the rest.

use crate::preserve::datacite::xml_escape;
use git2::{Oid, Repository};

use crate::archive::GitTree;
use crate::preserve::datacite::{datacite_xml, Target};
use crate::preserve::doi::{Registered, IDENTIFIERS};
use crate::preserve::metadata::Record;
use crate::preserve::tombstone::{Tombstone, TOMBSTONE};
use crate::preserve::{identifiers, snapshot, PreserveError};
use crate::settings::Settings;

use super::util::base_with_slash;
use super::write::Output;
use super::SiteError;

/// Where the repository is written, from the site's root.
pub const OAI_FILE: &str = "oai.xml";

const SR_NS: &str = "http://www.openarchives.org/OAI/2.0/static-repository";
const OAI_NS: &str = "http://www.openarchives.org/OAI/2.0/";
const OAI_DC_NS: &str = "http://www.openarchives.org/OAI/2.0/oai_dc/";
const DC_NS: &str = "http://purl.org/dc/elements/1.1/";
const OAI_DATACITE_NS: &str = "http://schema.datacite.org/oai/oai-1.1/";
const OAI_DC_XSD: &str = "http://www.openarchives.org/OAI/2.0/oai_dc.xsd";
const OAI_DATACITE_XSD: &str = "http://schema.datacite.org/oai/oai-1.1/oai.xsd";

enum Entry {
    Live(Box<Record>),
    Deleted { id: String, day: String },
}

impl Entry {
    fn day(&self) -> &str {
        match self {
            Entry::Live(r) => &r.date,
            Entry::Deleted { day, .. } => day,
        }
    }
}

/// Writes `oai.xml` for the records of a public build: `records` are every record's
/// id with whether the site shows it.
pub fn write_repository<'a>(
    repo: &Repository,
    output: &Output,
    settings: &Settings,
    base_url: &str,
    rev: Oid,
    records: impl IntoIterator<Item = (&'a str, bool)>,
) -> Result<(), SiteError> {
    let mut settings = settings.clone();
    settings.archive.base_url = base_url.trim_end_matches('/').to_string();
    let tree = GitTree::at_commit(repo, rev)?;
    let mut entries = Vec::new();
    for (id, shown) in records {
        let tombstone = tree.read_deposit_file(id, TOMBSTONE)?;
        if !shown && tombstone.is_none() {
            continue;
        }
        let snap = match snapshot(repo, id, None) {
            Ok(s) => s,
            Err(PreserveError::Git(e)) => return Err(e.into()),
            Err(_) => continue,
        };
        if !snap.is_public() {
            continue;
        }
        if let Some(bytes) = tombstone {
            if let Ok(t) = Tombstone::parse(&bytes) {
                entries.push(Entry::Deleted {
                    id: id.to_string(),
                    day: t.day().to_string(),
                });
            }
            continue;
        }
        let registered = tree
            .read_deposit_file(id, IDENTIFIERS)?
            .and_then(|b| Registered::parse(&b).ok())
            .unwrap_or_default();
        let ids = identifiers(&settings, &snap, &registered);
        entries.push(Entry::Live(Box::new(Record::new(&settings, &snap, ids))));
    }
    let xml = repository_xml(&settings, base_url, &entries);
    output.write(OAI_FILE, xml.as_bytes())
}

/// The namespace part of OAI identifiers: the site's host name.
fn namespace(base_url: &str) -> String {
    let rest = base_url.split_once("://").map_or(base_url, |(_, r)| r);
    let host = rest.split(['/', ':', '@']).next().unwrap_or("");
    if host.is_empty() {
        "localhost".into()
    } else {
        host.to_ascii_lowercase()
    }
}

/// The address the repository's Identify names as its administrator's: the archive's
/// mail sender when mail is configured, else one at the site's host.
///
/// OAI-PMH.xsd accepts only `\S+@(\S+\.)+\S+`: a domain without a dot (`localhost`,
/// common in demos and tests) gets the reserved `.invalid` suffix (RFC 2606), which
/// keeps the file valid and says plainly that nobody reads that mailbox.
fn admin_email(settings: &Settings, host: &str) -> String {
    let address = settings
        .mail
        .as_ref()
        .map(|m| m.from.0.clone())
        .map(|from| match (from.find('<'), from.rfind('>')) {
            (Some(a), Some(b)) if a < b => from[a + 1..b].trim().to_string(),
            _ => from.trim().to_string(),
        })
        .filter(|a| a.contains('@') && !a.contains(char::is_whitespace))
        .unwrap_or_else(|| format!("archive@{host}"));
    let (local, domain) = address.rsplit_once('@').unwrap_or(("", host));
    let local = if local.is_empty() { "archive" } else { local };
    let dotted = domain.split('.').count() > 1 && domain.split('.').all(|l| !l.is_empty());
    if dotted {
        format!("{local}@{domain}")
    } else {
        format!("{local}@{domain}.invalid")
    }
}

/// The repository's `baseURL`: the file's address, or behind the gateway that
/// `[site] oai_gateway` names, the gateway's address followed by the file's address
/// without its scheme (`https://gw.example.org/oai/data.example.org/oai.xml`), as the
/// static repository specification builds it.
fn oai_base_url(settings: &Settings, base: &str) -> String {
    let file = format!("{base}{OAI_FILE}");
    match settings.site.oai_gateway.as_deref().map(str::trim) {
        Some(gateway) if !gateway.is_empty() => {
            let without_scheme = file.split_once("://").map_or(file.as_str(), |(_, r)| r);
            format!("{}/{without_scheme}", gateway.trim_end_matches('/'))
        }
        _ => file,
    }
}

fn repository_xml(settings: &Settings, base_url: &str, entries: &[Entry]) -> String {
    let host = namespace(base_url);
    let base = base_with_slash(base_url);
    let earliest = entries
        .iter()
        .map(Entry::day)
        .min()
        .unwrap_or("1970-01-01")
        .to_string();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str(&format!(
        "<Repository xmlns=\"{SR_NS}\" xmlns:oai=\"{OAI_NS}\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:schemaLocation=\"{SR_NS} http://www.openarchives.org/OAI/2.0/static-repository.xsd {OAI_NS} http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd\">\n"
    ));
    x.push_str("  <Identify>\n");
    x.push_str(&format!(
        "    <oai:repositoryName>{}</oai:repositoryName>\n",
        xml_escape(&settings.archive.name)
    ));
    x.push_str(&format!(
        "    <oai:baseURL>{}</oai:baseURL>\n",
        xml_escape(&oai_base_url(settings, &base))
    ));
    x.push_str("    <oai:protocolVersion>2.0</oai:protocolVersion>\n");
    x.push_str(&format!(
        "    <oai:adminEmail>{}</oai:adminEmail>\n",
        xml_escape(&admin_email(settings, &host))
    ));
    x.push_str(&format!(
        "    <oai:earliestDatestamp>{earliest}</oai:earliestDatestamp>\n"
    ));
    x.push_str("    <oai:deletedRecord>persistent</oai:deletedRecord>\n");
    x.push_str("    <oai:granularity>YYYY-MM-DD</oai:granularity>\n");
    x.push_str("  </Identify>\n");
    // DataCite's XML schema requires the DOI: a version without one has no valid
    // oai_datacite record, so oai_datacite lists the versions with DOIs (and the
    // deletions), and is offered only when one has a DOI. OAI-PMH.xsd wants at least
    // one record in a ListRecords, so an empty one is left out.
    let has_doi = |e: &Entry| match e {
        Entry::Live(r) => r.ids.version.is_doi(),
        Entry::Deleted { .. } => false,
    };
    let mut formats = vec![("oai_dc", OAI_DC_XSD, OAI_DC_NS)];
    if entries.iter().any(has_doi) {
        formats.push(("oai_datacite", OAI_DATACITE_XSD, OAI_DATACITE_NS));
    }
    x.push_str("  <ListMetadataFormats>\n");
    for (prefix, schema, ns) in &formats {
        x.push_str(&format!(
            "    <oai:metadataFormat>\n      <oai:metadataPrefix>{prefix}</oai:metadataPrefix>\n      <oai:schema>{schema}</oai:schema>\n      <oai:metadataNamespace>{ns}</oai:metadataNamespace>\n    </oai:metadataFormat>\n"
        ));
    }
    x.push_str("  </ListMetadataFormats>\n");
    for (prefix, _, _) in formats {
        let listed: Vec<&Entry> = entries
            .iter()
            .filter(|e| prefix == "oai_dc" || has_doi(e) || matches!(e, Entry::Deleted { .. }))
            .collect();
        if listed.is_empty() {
            continue;
        }
        x.push_str(&format!("  <ListRecords metadataPrefix=\"{prefix}\">\n"));
        for entry in listed {
            let (id, deleted) = match entry {
                Entry::Live(r) => (r.id.as_str(), false),
                Entry::Deleted { id, .. } => (id.as_str(), true),
            };
            x.push_str(&format!(
                "    <oai:record>\n      <oai:header{}>\n        <oai:identifier>oai:{}:{}</oai:identifier>\n        <oai:datestamp>{}</oai:datestamp>\n      </oai:header>\n",
                if deleted { " status=\"deleted\"" } else { "" },
                xml_escape(&host),
                xml_escape(id),
                xml_escape(entry.day()),
            ));
            if let Entry::Live(record) = entry {
                x.push_str("      <oai:metadata>\n");
                match prefix {
                    "oai_dc" => x.push_str(&oai_dc(record)),
                    _ => x.push_str(&oai_datacite(record, settings)),
                }
                x.push_str("      </oai:metadata>\n");
            }
            x.push_str("    </oai:record>\n");
        }
        x.push_str("  </ListRecords>\n");
    }
    x.push_str("</Repository>\n");
    x
}

/// Simple Dublin Core of a record version.
fn oai_dc(r: &Record) -> String {
    let f = &r.facts;
    let mut x = format!(
        "        <oai_dc:dc xmlns:oai_dc=\"{OAI_DC_NS}\" xmlns:dc=\"{DC_NS}\" xsi:schemaLocation=\"{OAI_DC_NS} {OAI_DC_XSD}\">\n"
    );
    let mut el = |name: &str, value: &str| {
        x.push_str(&format!(
            "          <dc:{name}>{}</dc:{name}>\n",
            xml_escape(value)
        ));
    };
    el("title", &f.title);
    for p in &f.people {
        el("creator", &p.name);
    }
    for k in &f.keywords {
        el("subject", k);
    }
    el("description", &r.description());
    el("publisher", &r.archive);
    el("date", &r.date);
    el("type", "Dataset");
    el("identifier", &r.ids.version.url);
    el("relation", &r.ids.concept.url);
    if let Some(license) = &f.license {
        el("rights", &super::preserve::license_url(license));
    }
    x.push_str("        </oai_dc:dc>\n");
    x
}

/// DataCite's `oai_datacite` envelope around the version's DataCite 4.5 XML.
fn oai_datacite(r: &Record, settings: &Settings) -> String {
    let resource = datacite_xml(r, Target::Version);
    let resource = resource
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
        .unwrap_or(&resource);
    let mut x = format!(
        "        <oai_datacite xmlns=\"{OAI_DATACITE_NS}\" xsi:schemaLocation=\"{OAI_DATACITE_NS} {OAI_DATACITE_XSD}\">\n          <schemaVersion>4.5</schemaVersion>\n"
    );
    if let Some(d) = &settings.datacite {
        x.push_str(&format!(
            "          <datacentreSymbol>{}</datacentreSymbol>\n",
            xml_escape(&d.repository_id)
        ));
    }
    x.push_str("          <payload>\n");
    for line in resource.lines() {
        x.push_str("            ");
        x.push_str(line);
        x.push('\n');
    }
    x.push_str("          </payload>\n        </oai_datacite>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_use_the_site_host_and_text_is_escaped() {
        assert_eq!(
            namespace("https://Data.Example.org:8443/x/"),
            "data.example.org"
        );
        assert_eq!(namespace(""), "localhost");
        let mut settings = Settings::default();
        assert_eq!(
            admin_email(&settings, "localhost"),
            "archive@localhost.invalid"
        );
        assert_eq!(
            admin_email(&settings, "data.example.org"),
            "archive@data.example.org"
        );
        settings.mail = Settings::parse("[mail]\nfrom = \"Archive <capsule@localhost>\"\n")
            .unwrap()
            .mail;
        assert_eq!(admin_email(&settings, "x.org"), "capsule@localhost.invalid");
        assert_eq!(xml_escape("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot;");
    }

    #[test]
    fn behind_a_gateway_the_base_url_is_the_gateways_followed_by_the_file() {
        let mut settings = Settings::default();
        assert_eq!(
            oai_base_url(&settings, "https://data.example.org/"),
            "https://data.example.org/oai.xml"
        );
        settings.site.oai_gateway = Some("https://gw.example.org/oai/".into());
        assert_eq!(
            oai_base_url(&settings, "https://data.example.org/"),
            "https://gw.example.org/oai/data.example.org/oai.xml"
        );
    }
}
