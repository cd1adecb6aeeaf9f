//! `capsule index --export ndjson` and `--mapping`, checked against golden files and
//! against the official OpenSearch Python client.

use std::path::Path;

use serde_json::Value;

use super::*;

/// A small archive whose every id and time is fixed: `h4l` (draft and record v1) and
/// `zee`, then `gone` added; at the returned revision, `gone` is removed, `zee`
/// changed and published.
fn export_archive() -> (Archive, String) {
    let a = Archive::new();
    let ana = |title: &str, kw: &str| analysis(title, &[kw], ("Ann Lee", "ann@example.org"));
    a.write(
        &dep("h4l", "deposit.json"),
        ana("Higgs to four leptons", "Higgs boson"),
    )
    .write(&dep("zee", "deposit.json"), ana("Z to ee", "Drell-Yan"))
    .commit_at(T0, "Two analyses")
    .publish_at(T0 + 3600, "h4l", 1);
    a.write(
        &dep("h4l", "deposit.json"),
        ana("Higgs to four leptons, Run 2", "Higgs boson"),
    )
    .write(&dep("gone", "deposit.json"), ana("Withdrawn", "none"))
    .commit_at(T0 + DAY, "More");
    let since = a.head();
    a.remove(&dep_dir("gone"))
        .write(
            &dep("zee", "deposit.json"),
            ana("Z to ee, final", "Drell-Yan"),
        )
        .commit_at(T0 + 2 * DAY, "Withdraw gone, finish zee")
        .publish_at(T0 + 2 * DAY + 60, "zee", 1);
    (a, since)
}

/// Compares `actual` with the checked-in file `tests/search/golden/<name>`, exactly.
/// `CAPSULE_BLESS=1 cargo test --test search` rewrites the files (review the diff).
fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/search/golden")
        .join(name);
    if std::env::var_os("CAPSULE_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (CAPSULE_BLESS=1 writes it)", path.display()));
    assert!(
        expected == actual,
        "{name} differs from {}:\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

fn export(a: &Archive, args: &[&str]) -> String {
    stdout(&run_ok(
        capsule(&a.path)
            .args(["index", "--export", "ndjson"])
            .args(args),
    ))
}

/// `(action, _index, _id)` of every action line, and the documents after them.
fn bulk_pairs(ndjson: &str) -> Vec<(String, String, String, Option<Value>)> {
    let mut out = Vec::new();
    let mut lines = ndjson.lines();
    while let Some(line) = lines.next() {
        let action: Value = serde_json::from_str(line).unwrap();
        let (op, meta) = action.as_object().unwrap().iter().next().unwrap();
        let doc = (op != "delete").then(|| serde_json::from_str(lines.next().unwrap()).unwrap());
        out.push((
            op.clone(),
            meta["_index"].as_str().unwrap().to_string(),
            meta["_id"].as_str().unwrap().to_string(),
            doc,
        ));
    }
    out
}

#[test]
fn export_writes_bulk_ndjson_of_everything_or_what_changed() {
    let (a, since) = export_archive();
    let all = export(&a, &[]);
    golden("export-all.ndjson", &all);
    let ids: Vec<(String, String, String)> = bulk_pairs(&all)
        .into_iter()
        .map(|(op, index, id, _)| (op, index, id))
        .collect();
    let index = |id: &str| {
        (
            "index".to_string(),
            "capsule-analysis-v1-0-0".to_string(),
            id.to_string(),
        )
    };
    assert_eq!(
        ids,
        [index("h4l"), index("h4l/v1"), index("zee"), index("zee/v1")]
    );
    let pairs = bulk_pairs(&all);
    let record = pairs[1].3.as_ref().unwrap();
    assert_eq!(
        record["general_title"], "Higgs to four leptons",
        "v1 as tagged"
    );
    assert_eq!(record["_capsule"]["version"], 1);
    assert_eq!(record["_capsule"]["created"], "2024-01-01T00:00:00Z");
    assert_eq!(pairs[0].3.as_ref().unwrap()["_capsule"]["status"], "draft");

    // Since the second commit: gone is deleted, zee's draft and new record sent; h4l
    // did not change and its record is older.
    let changed = export(&a, &["--since", &since]);
    golden("export-since.ndjson", &changed);
    let ops: Vec<(String, String)> = bulk_pairs(&changed)
        .into_iter()
        .map(|(op, _, id, _)| (op, id))
        .collect();
    let op = |o: &str, id: &str| (o.to_string(), id.to_string());
    assert_eq!(
        ops,
        [
            op("delete", "gone"),
            op("index", "zee"),
            op("index", "zee/v1")
        ]
    );
    // What docs/scale.md's post-receive does for a record tag pushed on its own:
    // everything since the parent of the tagged commit (the tag is peeled).
    assert_eq!(export(&a, &["--since", "records/zee/v1^1"]), changed);
    // Nothing since the tip; an unknown revision is an error that says so.
    assert_eq!(export(&a, &["--since", "HEAD"]), "");
    let out = capsule(&a.path)
        .args(["index", "--export", "ndjson", "--since", "no-such-rev"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--since no-such-rev: no such commit"),
        "{}",
        stderr(&out)
    );

    // --output writes the same bytes to a file.
    let file = a.path.join("../bulk.ndjson");
    run_ok(
        capsule(&a.path)
            .args(["index", "--export", "ndjson", "--output"])
            .arg(&file),
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), all);
}

#[test]
fn mapping_is_built_from_the_schema_or_taken_from_a_cap_wrapper() {
    let (a, _) = export_archive();
    let template = stdout(&run_ok(capsule(&a.path).args([
        "index",
        "--mapping",
        "analysis/1.0.0",
    ])));
    golden("mapping-analysis.json", &template);
    let t: Value = serde_json::from_str(&template).unwrap();
    assert_eq!(
        t["index_patterns"],
        serde_json::json!(["capsule-analysis-v1-0-0"])
    );
    let props = &t["template"]["mappings"]["properties"];
    assert_eq!(props["general_title"]["type"], "text");
    assert_eq!(
        props["general_title"]["fields"]["keyword"]["type"],
        "keyword"
    );
    assert_eq!(props["_capsule"]["properties"]["updated"]["type"], "date");
    // A name alone means its newest version.
    let newest = stdout(&run_ok(capsule(&a.path).args([
        "index",
        "--mapping",
        "analysis",
    ])));
    assert_eq!(newest, template);

    // A CAP wrapper's own mapping (Elasticsearch 6, under a document type) is used,
    // with its settings; capsule's fields are added.
    a.write(
        "schemas/cap-mini/0.0.1.json",
        r#"{"name": "cap-mini", "version": "0.0.1", "experiment": "CMS",
  "deposit_schema": {"type": "object", "properties": {"cadi_id": {"type": "string"}}},
  "record_mapping": {},
  "deposit_mapping": {
    "settings": {"analysis": {"analyzer": {"lower_ws": {"type": "custom", "tokenizer": "whitespace", "filter": ["lowercase"]}}}},
    "mappings": {"cap-mini-v0.0.1": {"properties": {"cadi_id": {"type": "text", "analyzer": "lower_ws"}}}}
  }
}"#,
    )
    .commit_at(T0 + 3 * DAY, "CAP schema");
    let cap: Value = serde_json::from_slice(
        &run_ok(capsule(&a.path).args(["index", "--mapping", "cap-mini"])).stdout,
    )
    .unwrap();
    assert_eq!(
        cap["index_patterns"],
        serde_json::json!(["capsule-cap-mini-v0-0-1"])
    );
    assert_eq!(cap["_meta"]["mapping_from"], "cap-deposit-mapping");
    assert_eq!(
        cap["template"]["mappings"]["properties"]["cadi_id"],
        serde_json::json!({"type": "text", "analyzer": "lower_ws"})
    );
    assert_eq!(
        cap["template"]["settings"]["analysis"]["analyzer"]["lower_ws"]["tokenizer"],
        "whitespace"
    );
    assert!(cap["template"]["mappings"]["properties"]["_capsule"].is_object());
    // Without a schema: every template, by index name.
    let all: Value =
        serde_json::from_slice(&run_ok(capsule(&a.path).args(["index", "--mapping"])).stdout)
            .unwrap();
    let mut names: Vec<&String> = all.as_object().unwrap().keys().collect();
    names.sort();
    assert_eq!(
        names,
        ["capsule-analysis-v1-0-0", "capsule-cap-mini-v0-0-1"]
    );
}

/// Feeds the export to the official OpenSearch Python client (`opensearch-py`): its
/// serializer reads every line, `helpers.bulk` turns the pairs back into a `_bulk`
/// request and posts it to a small server on 127.0.0.1 that answers as OpenSearch
/// does and records the body. The client must accept every action, and the body it
/// sends must say what the export said.
const OPENSEARCH_PY_CHECK: &str = r#"
import json, sys, threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from opensearchpy import OpenSearch, helpers
from opensearchpy.serializer import JSONSerializer

serializer = JSONSerializer()
lines = [l for l in open(sys.argv[1], encoding="utf-8").read().split("\n") if l]
actions, i = [], 0
while i < len(lines):
    action = serializer.loads(lines[i]); i += 1
    (op, meta), = action.items()
    item = {"_op_type": op, "_index": meta["_index"], "_id": meta["_id"]}
    if op != "delete":
        item["_source"] = serializer.loads(lines[i]); i += 1
    actions.append(item)

bodies = []
class OpenSearchLike(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass
    def reply(self, payload):
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        self.reply({"version": {"distribution": "opensearch", "number": "2.11.0"}})
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"])).decode()
        bodies.append((self.path, body))
        items, rows = [], [json.loads(l) for l in body.split("\n") if l]
        j = 0
        while j < len(rows):
            (op, meta), = rows[j].items(); j += 1
            if op != "delete":
                j += 1
            items.append({op: {"_index": meta["_index"], "_id": meta["_id"], "status": 200, "result": "updated"}})
        self.reply({"took": 1, "errors": False, "items": items})

server = HTTPServer(("127.0.0.1", 0), OpenSearchLike)
threading.Thread(target=server.serve_forever, daemon=True).start()
client = OpenSearch(hosts=[{"host": "127.0.0.1", "port": server.server_port}])
ok, errors = helpers.bulk(client, actions)
server.shutdown()
sent = [json.loads(l) for _, body in bodies for l in body.split("\n") if l]
print(json.dumps({
    "ok": ok,
    "errors": errors,
    "paths": sorted({p for p, _ in bodies}),
    "same": sent == [json.loads(l) for l in lines],
}))
"#;

#[test]
fn the_export_goes_through_the_opensearch_python_client() {
    let has_client = std::process::Command::new("python3")
        .args(["-c", "import opensearchpy.helpers"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_client
        && !skip_or_fail(
            "needs opensearch-py",
            "python3 cannot import opensearchpy",
            "install it: pip install opensearch-py",
        )
    {
        return;
    }
    let (a, since) = export_archive();
    for args in [vec![], vec!["--since", since.as_str()]] {
        let ndjson = export(&a, &args);
        let file = a.path.join("../bulk.ndjson");
        std::fs::write(&file, &ndjson).unwrap();
        let script = a.path.join("../check_bulk.py");
        std::fs::write(&script, OPENSEARCH_PY_CHECK).unwrap();
        let out = run_ok(
            std::process::Command::new("python3")
                .arg(&script)
                .arg(&file),
        );
        let report: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&out), stderr(&out)));
        let actions = bulk_pairs(&ndjson).len() as u64;
        assert!(actions > 0);
        assert_eq!(report["ok"], actions, "{report}");
        assert_eq!(report["errors"], serde_json::json!([]), "{report}");
        assert_eq!(report["paths"], serde_json::json!(["/_bulk"]), "{report}");
        assert_eq!(
            report["same"], true,
            "the client sent something else: {report}"
        );
    }
}

#[test]
fn cap_schemas_keep_their_own_mapping() {
    let Some(cms) = cap_fixture("schemas/cms.json") else {
        return;
    };
    let a = Archive::new();
    a.write("schemas/cms-analysis/0.0.1.json", &cms)
        .commit_at(T0, "CAP's CMS schema");
    let template: Value = serde_json::from_slice(
        &run_ok(capsule(&a.path).args(["index", "--mapping", "cms-analysis/0.0.1"])).stdout,
    )
    .unwrap();
    let given: Value = serde_json::from_str(&cms).unwrap();
    assert_eq!(template["_meta"]["mapping_from"], "cap-deposit-mapping");
    assert_eq!(
        template["index_patterns"],
        serde_json::json!(["capsule-cms-analysis-v0-0-1"])
    );
    // CAP's analyzers and field mappings, as CAP wrote them.
    assert_eq!(
        template["template"]["settings"],
        given["deposit_mapping"]["settings"]
    );
    let props = &template["template"]["mappings"]["properties"];
    assert_eq!(
        props["basic_info"],
        given["deposit_mapping"]["mappings"]["properties"]["basic_info"]
    );
    assert!(props["_capsule"].is_object());
}
