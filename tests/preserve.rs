//! Preservation, end to end: packages checked by the standard validators (bagit.py,
//! rocrate-validator, DataCite's schema45 and kernel-4 XSD, swh-identify,
//! bibtexparser), DOIs through a real HTTP server that speaks DataCite's REST API
//! (preserve/doi.rs), withdrawal, and the fixity audit finding real damage. A validator that is not installed skips its part with one line
//! (fails under CI, where .ci/run installs them from PyPI).

mod common;
#[path = "preserve/doi.rs"]
mod doi;
#[path = "preserve/lfs.rs"]
mod lfs;
#[path = "preserve/support.rs"]
mod support;
#[path = "preserve/xsd.rs"]
mod xsd;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use common::*;
use serde_json::{json, Value};
use support::*;

const PEOPLE: &str = r#"[people]
alice = "alice@example.org"
bob = "bob@example.org"
dave = "dave@example.org"
"#;

const PUBLIC_REVIEW: &str = "The selection is complete and reproducible";
const INTERNAL_REVIEW: &str = "INTERNAL-REVIEW-5c0d: the fit needs work";

struct Archive {
    server: Server,
    work: Work,
    /// The captured code's commit, when a bundle was captured.
    code: Option<String>,
}

#[derive(Default)]
struct Fixture<'a> {
    title: Option<&'a str>,
    file_text: Option<&'a str>,
    bundle: bool,
    reviews: bool,
    /// Publish a second version.
    v2: bool,
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap() + "\n"
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "failed:\nstdout: {}\nstderr: {}",
        stdout(&out),
        stderr(&out)
    );
    out
}

/// A server with the public higgs-4l (bob may update it) published through `capsule
/// publish`, and the restricted zee published by a plain annotated tag.
fn archive(f: Fixture<'_>) -> Archive {
    let server = Server::new();
    let work = server.clone("work");
    let mut higgs: Value = serde_json::from_str(HIGGS).unwrap();
    if let Some(title) = f.title {
        higgs["general_title"] = title.into();
    }
    higgs["_access"]["deposit-update"]["users"] = json!(["alice", "bob"]);
    work.write("access.toml", PEOPLE)
        .write(&dep("higgs-4l", "deposit.json"), pretty(&higgs))
        .write(
            &dep("higgs-4l", "notes/selection.txt"),
            f.file_text.unwrap_or("Four leptons, |eta| < 2.5\n"),
        )
        .write(&dep("higgs-4l", "run.sh"), "#!/bin/sh\necho fit\n")
        .write("schemas/cap-docs-example/0.0.1.json", CAP_DOCS_SCHEMA)
        .write(&dep("zee", "deposit.json"), ZEE);
    set_executable(&work.path.join(dep("higgs-4l", "run.sh")));
    work.commit("analyses");
    work.push().assert_landed();

    let mut code = None;
    if f.bundle {
        let commit = code_repo(server.tmp.path());
        let url = format!("file://{}", server.tmp.path().join("code").display());
        ok(work.capsule_as("alice", &["capture-repo", "higgs-4l", &url, "--bundle"]));
        work.commit("capture the analysis code");
        work.push().assert_landed();
        code = Some(commit);
    }
    if f.reviews {
        ok(work.capsule_as(
            "alice",
            &[
                "review",
                "higgs-4l",
                "--type",
                "approved",
                "-m",
                PUBLIC_REVIEW,
            ],
        ));
        ok(work.capsule_as(
            "alice",
            &[
                "review",
                "higgs-4l",
                "--type",
                "request_changes",
                "-m",
                INTERNAL_REVIEW,
                "--internal",
            ],
        ));
        work.push().assert_landed();
    }
    ok(work.capsule_as("alice", &["publish", "higgs-4l", "--push"]));
    if f.v2 {
        higgs["basic_info"]["keywords"] = json!(["Higgs boson", "legacy"]);
        if let Some(title) = f.title {
            higgs["general_title"] = title.into();
        }
        work.write(&dep("higgs-4l", "deposit.json"), pretty(&higgs))
            .commit("keywords");
        work.push().assert_landed();
        ok(work.capsule_as("alice", &["publish", "higgs-4l", "--push"]));
    }
    work.publish("zee", 1).assert_landed();
    Archive { server, work, code }
}

fn set_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A code repository with a folder and an executable; returns its commit.
fn code_repo(dir: &Path) -> String {
    run_ok(git(dir).args(["init", "--quiet", "--initial-branch=main", "code"]));
    let code = dir.join("code");
    std::fs::create_dir_all(code.join("fit")).unwrap();
    std::fs::write(code.join("fit/model.py"), "print('fit')\n").unwrap();
    std::fs::write(code.join("README.md"), "# The analysis code\n").unwrap();
    std::fs::write(code.join("run.sh"), "#!/bin/sh\npython fit/model.py\n").unwrap();
    set_executable(&code.join("run.sh"));
    run_ok(git(&code).args(["add", "-A"]));
    run_ok(git(&code).args(["commit", "--quiet", "-m", "code"]));
    stdout(&run_ok(git(&code).args(["rev-parse", "HEAD"])))
        .trim()
        .to_string()
}

/// Every file under `dir`, relative path -> bytes.
fn files_under(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn entity<'a>(crate_json: &'a Value, id: &str) -> &'a Value {
    crate_json["@graph"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["@id"] == id)
        .unwrap_or_else(|| panic!("no entity {id} in {crate_json:#}"))
}

#[test]
fn every_published_version_exports_as_a_valid_repeatable_bag() {
    let a = archive(Fixture {
        bundle: true,
        reviews: true,
        v2: true,
        ..Fixture::default()
    });
    let out_a = a.server.tmp.path().join("exports-a");
    let out_b = a.server.tmp.path().join("exports-b");
    // From the clone and from the bare server repository: the same bytes.
    let first = ok(a
        .work
        .capsule(&["export", "--all", "--out", out_a.to_str().unwrap()]));
    assert!(
        stdout(&first).contains("Skipped zee@v1: zee is restricted"),
        "{}",
        stdout(&first)
    );
    ok(a.server
        .capsule(&["export", "--all", "--out", out_b.to_str().unwrap()]));
    let (one, two) = (files_under(&out_a), files_under(&out_b));
    assert_eq!(
        one.keys().collect::<Vec<_>>(),
        two.keys().collect::<Vec<_>>()
    );
    assert!(one == two, "two exports of the same versions differ");
    assert!(one.keys().any(|k| k.starts_with("higgs-4l-v1/")));
    assert!(one.keys().any(|k| k.starts_with("higgs-4l-v2/")));
    assert!(!one.keys().any(|k| k.starts_with("zee")));
    let zip_a = a.server.tmp.path().join("zip-a");
    let zip_b = a.server.tmp.path().join("zip-b");
    for dir in [&zip_a, &zip_b] {
        ok(a.work.capsule(&[
            "export",
            "higgs-4l@v1",
            "--zip",
            "--out",
            dir.to_str().unwrap(),
        ]));
    }
    let zip = std::fs::read(zip_a.join("higgs-4l-v1.zip")).unwrap();
    assert_eq!(zip, std::fs::read(zip_b.join("higgs-4l-v1.zip")).unwrap());

    // What the bag holds: the deposit as tagged, its files, public reviews, schemas.
    let bag = out_a.join("higgs-4l-v1");
    let tagged = stdout(&run_ok(git(&a.work.path).args([
        "show",
        &format!("records/higgs-4l/v1:{}", dep("higgs-4l", "deposit.json")),
    ])));
    assert_eq!(
        std::fs::read_to_string(bag.join("data/deposit/deposit.json")).unwrap(),
        tagged
    );
    assert_eq!(
        std::fs::read(bag.join("data/schemas/analysis/1.0.0.json")).unwrap(),
        std::fs::read(a.work.path.join("schemas/analysis/1.0.0.json")).unwrap()
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(bag.join("data/deposit/run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert!(mode & 0o100 != 0, "run.sh keeps its executable bit");
    }
    let all_text: String = one
        .values()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    assert!(
        all_text.contains(PUBLIC_REVIEW),
        "the public review is kept"
    );
    assert!(
        !all_text.contains("INTERNAL-REVIEW-5c0d"),
        "an internal review left in a public export"
    );
    let info = std::fs::read_to_string(bag.join("bag-info.txt")).unwrap();
    assert!(info.contains("External-Identifier: http://localhost:8000/records/higgs-4l/v1\n"));
    assert!(info.contains("External-Identifier: http://localhost:8000/records/higgs-4l\n"));
    assert!(info.contains("Capsule-Export: public"));

    // The RO-Crate: people with ORCIDs, code with SWHIDs, datasets and papers with DOIs.
    let crate_json = read_json(&bag.join("data/ro-crate-metadata.json"));
    assert_eq!(
        crate_json["@context"],
        "https://w3id.org/ro/crate/1.2/context"
    );
    let root = entity(&crate_json, "./");
    assert_eq!(root["@type"], "Dataset");
    assert!(root["author"]
        .as_array()
        .unwrap()
        .contains(&json!({"@id": "https://orcid.org/0000-0002-4417-9031"})));
    assert_eq!(
        root["identifier"],
        json!([
            "http://localhost:8000/records/higgs-4l/v1",
            "http://localhost:8000/records/higgs-4l"
        ])
    );
    let code = a.code.clone().unwrap();
    let bundle_path = root["hasPart"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["@id"].as_str())
        .find(|p| p.ends_with(".bundle"))
        .expect("the bundle is part of the crate")
        .to_string();
    let software = entity(&crate_json, &bundle_path);
    assert_eq!(software["@type"], json!(["File", "SoftwareSourceCode"]));
    assert_eq!(software["version"], code.as_str());
    let swh: Vec<&str> = software["identifier"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        swh.contains(&format!("swh:1:rev:{code}").as_str()),
        "{swh:?}"
    );
    let dir = swh.iter().find(|s| s.starts_with("swh:1:dir:")).unwrap();
    let tree = stdout(&run_ok(
        git(&a.server.tmp.path().join("code")).args(["rev-parse", "HEAD^{tree}"]),
    ));
    assert_eq!(*dir, format!("swh:1:dir:{}", tree.trim()));
    entity(&crate_json, "https://doi.org/10.99999/demo.ggh4l.2018");
    entity(&crate_json, "https://doi.org/10.99999/demo.hzz4l.2024");

    // DataCite: both DOIs' neighbours named, versions linked.
    let datacite = read_json(&out_a.join("higgs-4l-v2/data/metadata/datacite.json"));
    let related = datacite["relatedIdentifiers"].to_string();
    assert!(related.contains(r#""relatedIdentifier":"http://localhost:8000/records/higgs-4l","relatedIdentifierType":"URL","relationType":"IsVersionOf""#), "{related}");
    assert!(related.contains("IsNewVersionOf"), "{related}");

    // capsule audit re-verifies the written bags (and the archive).
    let audit = ok(a.work.capsule(&[
        "audit",
        "--exports",
        out_a.to_str().unwrap(),
        "--exports",
        zip_a.to_str().unwrap(),
    ]));
    assert!(stdout(&audit).contains("ok bag "), "{}", stdout(&audit));

    // The standard validators.
    let bags = [out_a.join("higgs-4l-v1"), out_a.join("higgs-4l-v2")];
    if let Some(bagit) = pip_tool(&["bagit.py"], "bagit") {
        for bag in &bags {
            let out = Command::new(&bagit)
                .arg("--validate")
                .arg(bag)
                .output()
                .unwrap();
            assert!(out.status.success(), "bagit.py: {}", stderr(&out));
            assert!(stderr(&out).contains("is valid"), "{}", stderr(&out));
        }
    }
    // The zip is a zip any tool reads, and what it holds is the same valid bag.
    if python_has("zipfile", "the Python standard library") {
        let unzipped = a.server.tmp.path().join("unzipped");
        let out = Command::new("python3")
            .args(["-c", "import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nassert z.testzip() is None\nz.extractall(sys.argv[2])"])
            .arg(zip_a.join("higgs-4l-v1.zip"))
            .arg(&unzipped)
            .output()
            .unwrap();
        assert!(out.status.success(), "zipfile: {}", stderr(&out));
        assert!(
            files_under(&unzipped.join("higgs-4l-v1")) == files_under(&out_a.join("higgs-4l-v1"))
        );
    }
    if python_has("rocrate_validator", "roc-validator") && python_has("rocrate", "rocrate") {
        for bag in &bags {
            let report = a.server.tmp.path().join("roc.json");
            let out = Command::new("python3")
                .args(["-c", ROC_OFFLINE])
                .args([
                    "validate",
                    "-p",
                    "ro-crate-1.2",
                    "--no-paging",
                    "-f",
                    "json",
                ])
                .args(["--skip-availability-check", "-l", "required", "-o"])
                .arg(&report)
                .arg(bag.join("data"))
                .output()
                .unwrap();
            let result = std::fs::read_to_string(&report).unwrap_or_default();
            assert!(
                out.status.success(),
                "rocrate-validator found REQUIRED-level failures in {}:\n{result}\n{}",
                bag.display(),
                stderr(&out)
            );
            assert_eq!(
                serde_json::from_str::<Value>(&result).unwrap()["passed"],
                true
            );
        }
    }
    if python_has("datacite", "datacite") {
        for bag in &bags {
            let out = Command::new("python3")
                .args([
                    "-c",
                    "import json, sys\nfrom datacite import schema45\nschema45.validator.validate(json.load(open(sys.argv[1])))\nprint('valid')",
                ])
                .arg(bag.join("data/metadata/datacite.json"))
                .output()
                .unwrap();
            assert!(out.status.success(), "DataCite 4.5: {}", stderr(&out));
        }
    }
}

#[test]
fn captured_code_gets_the_swhids_that_swh_identify_computes() {
    let a = archive(Fixture {
        bundle: true,
        ..Fixture::default()
    });
    let out = a.server.tmp.path().join("exports");
    ok(a.work
        .capsule(&["export", "higgs-4l", "--out", out.to_str().unwrap()]));
    let crate_json = read_json(&out.join("higgs-4l-v1/data/ro-crate-metadata.json"));
    let bundle = crate_json["@graph"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["@id"].as_str().is_some_and(|i| i.ends_with(".bundle")))
        .unwrap();
    let ids: Vec<String> = bundle["identifier"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let code = a.code.unwrap();
    assert_eq!(ids[0], format!("swh:1:rev:{code}"));
    let Some(tool) = pip_tool(&["swh-identify", "swh.identify"], "swh.model") else {
        return;
    };
    // The code checked out of the exported bundle, without git's own folder.
    let checkout = a.server.tmp.path().join("checkout");
    let bundle_file = out
        .join("higgs-4l-v1/data")
        .join(bundle["@id"].as_str().unwrap());
    run_ok(
        git(a.server.tmp.path())
            .args(["clone", "--quiet"])
            .arg(&bundle_file)
            .arg(&checkout),
    );
    std::fs::remove_dir_all(checkout.join(".git")).unwrap();
    let out = Command::new(tool)
        .args(["--type", "directory", "--no-filename"])
        .arg(&checkout)
        .output()
        .unwrap();
    assert!(out.status.success(), "swh-identify: {}", stderr(&out));
    assert_eq!(stdout(&out).trim(), ids[1]);
}

#[test]
fn citations_survive_reference_managers() {
    let title = "H -> ZZ* -> 4l: 50% of {sigma}_fid & $m_H$ #2";
    let a = archive(Fixture {
        title: Some(title),
        ..Fixture::default()
    });
    let bib = stdout(&ok(a
        .work
        .capsule(&["cite", "higgs-4l", "--format", "bibtex"])));
    // LaTeX's special characters are escaped, and the library reads them back.
    assert!(
        bib.contains(r"50\% of \{sigma\}\_fid \& \$m\_H\$ \#2"),
        "{bib}"
    );
    let parsed = biblatex::Bibliography::parse(&bib).unwrap();
    let entry = parsed.get("higgs-4l_v1").unwrap();
    use biblatex::ChunksExt;
    assert_eq!(entry.title().unwrap().format_verbatim(), title);
    assert_eq!(entry.author().unwrap()[0].name, "Kowalczyk");
    assert_eq!(entry.author().unwrap()[0].given_name, "Marta");
    assert_eq!(
        entry.url().unwrap(),
        "http://localhost:8000/records/higgs-4l/v1"
    );
    if python_has("bibtexparser", "bibtexparser") {
        let script = r#"
import json, sys, bibtexparser
from bibtexparser.middlewares import LatexDecodingMiddleware, SeparateCoAuthors, SplitNameParts
lib = bibtexparser.parse_string(sys.stdin.read(), append_middleware=[LatexDecodingMiddleware(), SeparateCoAuthors(), SplitNameParts()])
assert not lib.failed_blocks, lib.failed_blocks
e = lib.entries[0]
print(json.dumps({"key": e.key, "type": e.entry_type, "title": e["title"], "year": e["year"],
  "first_last": e["author"][0].last, "first_first": e["author"][0].first, "authors": len(e["author"])}))
"#;
        let mut child = Command::new("python3")
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(bib.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "bibtexparser: {}", stderr(&out));
        let got: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(got["key"], "higgs-4l_v1");
        assert_eq!(got["type"], "misc");
        assert_eq!(got["title"], title);
        assert_eq!(got["first_last"], json!(["Kowalczyk"]));
        assert_eq!(got["first_first"], json!(["Marta"]));
        assert_eq!(got["authors"], 3);
    }
    let csl: Value = serde_json::from_str(&stdout(&ok(a
        .work
        .capsule(&["cite", "higgs-4l", "--format", "csl-json"]))))
    .unwrap();
    assert_eq!(csl[0]["title"], title);
    assert_eq!(csl[0]["type"], "dataset");
    assert_eq!(
        csl[0]["author"][1],
        json!({"family": "Ferreira", "given": "Tomás"})
    );
    assert_eq!(csl[0]["URL"], "http://localhost:8000/records/higgs-4l/v1");
    let text = stdout(&ok(a.work.capsule(&["cite", "higgs-4l@v1"])));
    assert!(
        text.starts_with("Kowalczyk, M., Ferreira, T. & Solberg, I. ("),
        "{text}"
    );
    assert!(
        text.trim_end().ends_with(
            "(Version 1) [Data set]. Analysis archive. http://localhost:8000/records/higgs-4l/v1"
        ),
        "{text}"
    );
}

#[test]
fn a_withdrawn_record_leaves_nothing_in_exports_and_keeps_its_id() {
    let canaries = ["CANARY-TITLE-5e1f", "CANARY-FILE-7b2c"];
    let a = archive(Fixture {
        title: Some("Higgs to four leptons CANARY-TITLE-5e1f"),
        file_text: Some("selection cuts CANARY-FILE-7b2c\n"),
        ..Fixture::default()
    });
    let reason = "Retracted: a calibration error";
    let tombstone = a.work.path.join(dep("higgs-4l", "TOMBSTONE.json"));

    // bob may update the deposit, but withdrawing needs deposit-admin.
    let out = a
        .work
        .capsule_as("bob", &["withdraw", "higgs-4l", "--reason", reason]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("bob may not withdraw this record"),
        "{}",
        stderr(&out)
    );
    assert!(!tombstone.exists());

    ok(a.work.capsule_as(
        "alice",
        &["withdraw", "higgs-4l", "--reason", reason, "--push"],
    ));
    let stone: Value = read_json(&tombstone);
    assert_eq!(stone["reason"], reason);
    assert_eq!(stone["by"], "alice");
    assert!(a
        .server
        .rev(&format!("main:{}", dep("higgs-4l", "TOMBSTONE.json")))
        .is_some());

    // A fresh export attempt, from the clone and from the server: refused with the
    // reason, and no canary anywhere in what it wrote or said.
    let fresh = a.server.clone("fresh");
    for (who, dir) in [("clone", &fresh.path), ("server", &a.server.git_dir)] {
        let out_dir = a.server.tmp.path().join(format!("exports-{who}"));
        let single = capsule(dir)
            .args(["export", "higgs-4l", "--out", out_dir.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(single.status.code(), Some(1), "{}", stderr(&single));
        assert!(stderr(&single).contains(reason), "{}", stderr(&single));
        let all = ok(capsule(dir)
            .args(["export", "--all", "--out", out_dir.to_str().unwrap()])
            .output()
            .unwrap());
        assert!(
            stdout(&all).contains("Skipped higgs-4l@v1: higgs-4l was withdrawn on"),
            "{}",
            stdout(&all)
        );
        let zip = capsule(dir)
            .args([
                "export",
                "higgs-4l@v1",
                "--zip",
                "--internal",
                "--out",
                out_dir.to_str().unwrap(),
            ])
            .env("CAPSULE_USER", "alice")
            .output()
            .unwrap();
        assert_eq!(zip.status.code(), Some(1));
        let written = files_under(&out_dir);
        assert!(
            !written.keys().any(|k| k.starts_with("higgs-4l")),
            "{:?}",
            written.keys()
        );
        let said = [single, all, zip]
            .iter()
            .map(|o| stdout(o) + &stderr(o))
            .collect::<String>();
        let everything = written
            .values()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect::<String>()
            + &said;
        for canary in canaries {
            assert!(
                !everything.contains(canary),
                "{canary} leaked from a withdrawn record:\n{said}"
            );
        }
    }

    // The id stays reserved: the record tag stays, a second withdrawal and a new
    // deposit with the same id are refused; the citation still says why.
    assert!(a.server.rev("refs/tags/records/higgs-4l/v1").is_some());
    let again = a
        .work
        .capsule_as("alice", &["withdraw", "higgs-4l", "--reason", "again"]);
    assert!(
        stderr(&again).contains("was withdrawn already"),
        "{}",
        stderr(&again)
    );
    let new = fresh.capsule_as("alice", &["new", "analysis", "--id", "higgs-4l"]);
    assert!(!new.status.success());
    assert!(stderr(&new).contains("exists already"), "{}", stderr(&new));
    let cite = stdout(&ok(fresh.capsule(&["cite", "higgs-4l"])));
    assert!(
        cite.contains(&format!(
            "Withdrawn on {}: {reason}",
            &stone["date"].as_str().unwrap()[..10]
        )),
        "{cite}"
    );
}

#[test]
fn restricted_records_leave_only_in_an_admins_internal_export() {
    let a = archive(Fixture {
        reviews: true,
        ..Fixture::default()
    });
    let out_dir = a.server.tmp.path().join("exports");
    let out = a
        .work
        .capsule(&["export", "zee", "--out", out_dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("zee is restricted"),
        "{}",
        stderr(&out)
    );
    let out = a.work.capsule_as(
        "dave",
        &[
            "export",
            "zee",
            "--internal",
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    assert!(
        stderr(&out).contains("an internal export of zee needs an archive admin"),
        "{}",
        stderr(&out)
    );
    assert!(files_under(&out_dir).is_empty());

    ok(a.work.capsule_as(
        "alice",
        &[
            "export",
            "zee",
            "--internal",
            "--out",
            out_dir.to_str().unwrap(),
        ],
    ));
    ok(a.work.capsule_as(
        "alice",
        &[
            "export",
            "higgs-4l",
            "--internal",
            "--out",
            out_dir.to_str().unwrap(),
        ],
    ));
    let info = std::fs::read_to_string(out_dir.join("zee-v1/bag-info.txt")).unwrap();
    assert!(info.contains("Capsule-Export: internal"), "{info}");
    let internal = files_under(&out_dir.join("higgs-4l-v1"))
        .values()
        .any(|b| String::from_utf8_lossy(b).contains("INTERNAL-REVIEW-5c0d"));
    assert!(internal, "an internal export keeps internal reviews");
}

#[test]
fn audit_finds_a_flipped_byte_in_a_stored_object() {
    let a = archive(Fixture::default());
    let clean = ok(a.server.capsule(&["audit"]));
    assert!(
        stdout(&clean).contains("ok records/higgs-4l/v1"),
        "{}",
        stdout(&clean)
    );
    assert!(stdout(&clean).contains("Clean:"), "{}", stdout(&clean));
    // `capsule publish` recorded the files' SHA-256 in the tag.
    let message = stdout(&run_ok(git(&a.server.git_dir).args([
        "cat-file",
        "tag",
        "records/higgs-4l/v1",
    ])));
    assert!(message.contains("Capsule-Payload-SHA256: "), "{message}");

    let copy = a.server.tmp.path().join("copy.git");
    run_ok(
        Command::new("cp")
            .arg("-a")
            .arg(&a.server.git_dir)
            .arg(&copy),
    );
    let blob = stdout(&run_ok(git(&copy).args([
        "rev-parse",
        &format!(
            "records/higgs-4l/v1:{}",
            dep("higgs-4l", "notes/selection.txt")
        ),
    ])));
    let blob = blob.trim();
    let object = copy.join("objects").join(&blob[..2]).join(&blob[2..]);
    assert!(
        object.is_file(),
        "the pushed blob is stored as a loose object"
    );
    let mut bytes = std::fs::read(&object).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    let mut permissions = std::fs::metadata(&object).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    permissions.set_readonly(false);
    std::fs::set_permissions(&object, permissions).unwrap();
    std::fs::write(&object, bytes).unwrap();

    let out = capsule(&copy).arg("audit").output().unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAILED git objects (git fsck --full --strict)"),
        "{text}"
    );
    assert!(text.contains("FAILED records/higgs-4l/v1"), "{text}");
    assert!(text.contains("notes/selection.txt"), "{text}");
    let json: Value = serde_json::from_slice(
        &capsule(&copy)
            .args(["audit", "--json"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(json["clean"], false);
}

#[test]
fn audit_finds_a_damaged_bundle() {
    let a = archive(Fixture {
        bundle: true,
        ..Fixture::default()
    });
    let clean = ok(a.work.capsule(&["audit"]));
    assert!(stdout(&clean).contains("ok bundle "), "{}", stdout(&clean));

    // A second version (committed and tagged in the clone only) whose bundle lost
    // its second half.
    let deposit = read_json(&a.work.path.join(dep("higgs-4l", "deposit.json")));
    let bundle = capsule::capture::bundle_records(&deposit)[0].0.clone();
    let file = a.work.path.join(dep("higgs-4l", &bundle));
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    a.work.commit("a damaged bundle");
    a.work.git(&[
        "tag",
        "-a",
        "records/higgs-4l/v2",
        "-m",
        "Publish higgs-4l v2",
    ]);

    let out = a.work.capsule(&["audit"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "FAILED bundle {} in records/higgs-4l/v2",
            dep("higgs-4l", &bundle)
        )),
        "{text}"
    );
    assert!(text.contains("damaged or incomplete"), "{text}");
    assert!(text.contains("ok records/higgs-4l/v1"), "{text}");
}
