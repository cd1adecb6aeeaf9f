//! The search index, driven by real pushes and real clones: the server's post-receive
//! hook keeps it current, clones catch up before searching, and a killed indexer
//! recovers.

mod common;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}):\nstdout: {}\nstderr: {}",
            stdout(out),
            stderr(out)
        )
    })
}

/// `(id, version)` of every hit, in rank order.
fn hits(results: &Value) -> Vec<(String, Option<u64>)> {
    results["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["id"].as_str().unwrap().to_string(), h["version"].as_u64()))
        .collect()
}

/// The versions a hit lists, newest first: `("draft" | "vN", matched)`.
fn versions(hit: &Value) -> Vec<(String, bool)> {
    hit["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let name = match v["version"].as_u64() {
                Some(n) => format!("v{n}"),
                None => "draft".to_string(),
            };
            (name, v["matched"].as_bool().unwrap())
        })
        .collect()
}

fn search_json(dir: &Path, args: &[&str]) -> Value {
    let out = capsule(dir)
        .arg("search")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "search failed:\n{}",
        stderr(&out)
    );
    json(&out)
}

fn draft(id: &str) -> (String, Option<u64>) {
    (id.to_string(), None)
}

fn record(id: &str, version: u64) -> (String, Option<u64>) {
    (id.to_string(), Some(version))
}

#[test]
fn pushed_and_published_deposits_are_found_on_the_server() {
    let server = Server::new();
    let work = server.clone("work");
    work.write("schemas/cap-docs-example/0.0.1.json", CAP_DOCS_SCHEMA)
        .write(&dep("zee", "deposit.json"), ZEE)
        .write(&dep("higgs-4l", "deposit.json"), HIGGS)
        .commit("Add two analyses");
    work.push().assert_landed();
    let push = work.publish("higgs-4l", 1);
    push.assert_landed();

    let results = search_json(&server.git_dir, &["higgs"]);
    // One hit for the analysis, shown through its newest version, the draft.
    assert_eq!(hits(&results), [draft("higgs-4l")]);
    let hit = &results["hits"][0];
    assert_eq!(
        versions(hit),
        [("draft".to_string(), true), ("v1".to_string(), true)]
    );
    assert_eq!(hit["schema"], "analysis/1.0.0");
    assert_eq!(hit["experiment"], "CMS", "from the schema's config");
    let first = &hit["matches"][0];
    assert_eq!(first["pointer"], "/general_title");
    assert_eq!(first["title_path"], "Title");
    assert_eq!(
        first["snippet"].as_str().unwrap()[15..20].to_lowercase(),
        "higgs"
    );

    // People and keywords are fields of their own; phrases match words in order.
    let by_person = search_json(&server.git_dir, &["people:\"jane doe\""]);
    assert_eq!(hits(&by_person), [draft("zee")]);
    let published = search_json(&server.git_dir, &["four leptons", "--status", "published"]);
    assert_eq!(hits(&published), [record("higgs-4l", 1)]);
    assert_eq!(published["hits"][0]["status"], "published");
}

#[test]
fn the_server_index_follows_every_push() {
    let server = Server::new();
    let work = server.clone("work");
    work.write(
        &dep("dimuon", "deposit.json"),
        analysis(
            "Dimuon resonance search",
            &["dimuon"],
            ("Ann Lee", "ann@example.org"),
        ),
    )
    .commit("Add dimuon");
    work.push().assert_landed();
    // post-receive has already caught the index up: nothing is left to do.
    let status = json(&run_ok(server_capsule(&server).args(["index", "--json"])));
    assert_eq!(status["mode"], "up-to-date", "{status}");
    assert_eq!(status["documents"], 1);
    assert_eq!(
        hits(&search_json(&server.git_dir, &["resonance"])),
        [draft("dimuon")]
    );

    work.write(
        &dep("dimuon", "deposit.json"),
        analysis(
            "Dimuon excess study",
            &["dimuon"],
            ("Ann Lee", "ann@example.org"),
        ),
    )
    .commit("Rename");
    work.push().assert_landed();
    // The hook leaves nothing behind for the index: with shards, the update reads the
    // few small trees the push changed itself.
    assert!(!server.git_dir.join("capsule/deposit-changes").exists());
    let status = json(&run_ok(server_capsule(&server).args(["index", "--json"])));
    assert_eq!(status["mode"], "up-to-date");
    assert!(hits(&search_json(&server.git_dir, &["resonance"])).is_empty());
    assert_eq!(
        hits(&search_json(&server.git_dir, &["excess"])),
        [draft("dimuon")]
    );

    work.remove(&dep_dir("dimuon")).commit("Withdraw");
    work.push().assert_landed();
    assert!(hits(&search_json(&server.git_dir, &["dimuon"])).is_empty());
    let status = json(&run_ok(server_capsule(&server).args(["index", "--json"])));
    assert_eq!(
        (status["mode"].as_str(), status["documents"].as_u64()),
        (Some("up-to-date"), Some(0))
    );
}

fn server_capsule(server: &Server) -> std::process::Command {
    capsule(&server.git_dir)
}

#[test]
fn a_clone_catches_up_after_pull() {
    let server = Server::new();
    let alice = server.clone("alice");
    let bob = server.clone("bob");
    alice
        .write(
            &dep("ttbar", "deposit.json"),
            analysis(
                "Top pair cross-section",
                &["ttbar"],
                ("Bob", "bob@example.org"),
            ),
        )
        .commit("Add ttbar");
    alice.push().assert_landed();
    let before = search_json(&bob.path, &["ttbar"]);
    assert!(hits(&before).is_empty(), "bob has not pulled yet");

    bob.git(&["pull", "-q", "origin", "main"]);
    let after = search_json(&bob.path, &["ttbar"]);
    assert_eq!(hits(&after), [draft("ttbar")]);
    assert_eq!(after["refreshed"]["mode"], "incremental", "{after}");
    assert_eq!(after["refreshed"]["drafts_indexed"], 1);
    // Nothing moved since: no update the second time.
    let again = search_json(&bob.path, &["ttbar"]);
    assert!(again.get("refreshed").is_none());
    assert!(bob.path.join(".git/capsule/index/meta.json").is_file());
}

#[test]
fn an_exact_title_ranks_first() {
    let server = Server::new();
    let work = server.clone("work");
    let noisy = analysis(
        "Search for heavy resonances in dimuon events",
        &["dimuon resonance search", "dimuon", "resonance", "search"],
        ("Dimuon Resonance", "search@example.org"),
    );
    work.write(&dep("a-noisy", "deposit.json"), noisy)
        .write(
            &dep("b-exact", "deposit.json"),
            analysis(
                "Dimuon resonance search",
                &["muons"],
                ("Ann", "ann@example.org"),
            ),
        )
        .write(
            &dep("c-other", "deposit.json"),
            analysis(
                "Dielectron resonance search",
                &["electrons"],
                ("Ann", "ann@example.org"),
            ),
        )
        .commit("Three analyses");
    work.push().assert_landed();
    let results = search_json(&work.path, &["Dimuon resonance search"]);
    let found = hits(&results);
    assert_eq!(found[0], draft("b-exact"), "{results}");
    assert!(found.contains(&draft("a-noisy")));
    assert!(
        !found.contains(&draft("c-other")),
        "words are ANDed by default"
    );
}

#[test]
fn filters_and_facets_count_matches() {
    let server = Server::new();
    let work = server.clone("work");
    work.write("schemas/cap-docs-example/0.0.1.json", CAP_DOCS_SCHEMA)
        .write(&dep("zee", "deposit.json"), ZEE)
        .write(
            &dep("h1", "deposit.json"),
            analysis(
                "Higgs to photons",
                &["Higgs boson", "diphoton"],
                ("Ann", "ann@example.org"),
            ),
        )
        .write(
            &dep("h2", "deposit.json"),
            analysis(
                "Higgs to four leptons",
                &["Higgs boson", "ZZ"],
                ("Bo", "bo@example.org"),
            ),
        )
        .commit("Three analyses");
    work.push().assert_landed();
    work.publish("h1", 1).assert_landed();

    let all = search_json(&work.path, &["*", "--facets", "--limit", "100"]);
    // Three analyses (h1 has a draft and a record: one analysis, two versions).
    assert_eq!(all["total"], 3);
    assert_eq!(all["versions"], 4);
    let facet = |results: &Value, name: &str| -> Vec<(String, u64)> {
        results["facets"][name]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["value"].as_str().unwrap().to_string(),
                    c["count"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let pairs = |list: &[(&str, u64)]| -> Vec<(String, u64)> {
        list.iter().map(|(v, c)| (v.to_string(), *c)).collect()
    };
    // Facets count analyses: h1's draft and record count once.
    assert_eq!(
        facet(&all, "schema"),
        pairs(&[("analysis/1.0.0", 2), ("cap-docs-example/0.0.1", 1)])
    );
    assert_eq!(
        facet(&all, "status"),
        pairs(&[("draft", 3), ("published", 1)])
    );
    assert_eq!(facet(&all, "experiment"), pairs(&[("CMS", 2)]));
    assert_eq!(
        facet(&all, "keyword"),
        pairs(&[("Higgs boson", 2), ("ZZ", 1), ("diphoton", 1)])
    );
    assert_eq!(facet(&all, "year").iter().map(|(_, c)| c).sum::<u64>(), 3);

    let higgs = search_json(&work.path, &["higgs", "--facets", "--status", "draft"]);
    assert_eq!(higgs["total"], 2);
    assert_eq!(facet(&higgs, "status"), pairs(&[("draft", 2)]));
    let by_schema = search_json(&work.path, &["*", "--schema", "cap-docs-example"]);
    assert_eq!(hits(&by_schema), [draft("zee")]);
    let by_version = search_json(
        &work.path,
        &["*", "--schema", "analysis/1.0.0", "--status", "published"],
    );
    assert_eq!(hits(&by_version), [record("h1", 1)]);
    let by_experiment = search_json(&work.path, &["*", "--experiment", "cms", "--limit", "10"]);
    assert_eq!(by_experiment["total"], 2);
    assert_eq!(
        search_json(&work.path, &["*", "--experiment", "ATLAS"])["total"],
        0
    );
}

#[test]
fn fields_prefixes_and_operators() {
    let server = Server::new();
    let work = server.clone("work");
    work.write(&dep("higgs-4l", "deposit.json"), HIGGS)
        .write(
            &dep("w-mass", "deposit.json"),
            analysis(
                "W boson mass",
                &["W boson", "mass"],
                ("Marta Kowalczyk", "m@example.org"),
            ),
        )
        .commit("Two analyses");
    work.push().assert_landed();

    let prefix = search_json(&work.path, &["higg*"]);
    assert_eq!(hits(&prefix), [draft("higgs-4l")]);
    let marked = &prefix["hits"][0]["matches"][0];
    let (a, b) = (
        marked["highlights"][0][0].as_u64().unwrap() as usize,
        marked["highlights"][0][1].as_u64().unwrap() as usize,
    );
    assert_eq!(&marked["snippet"].as_str().unwrap()[a..b], "Higgs");

    // A deposit path as a field name, and --field for a whole branch of the deposit.
    assert_eq!(
        hits(&search_json(&work.path, &["basic_info.keywords:mass"])),
        [draft("w-mass")]
    );
    let in_people = search_json(
        &work.path,
        &["kowalczyk", "--field", "basic_info.people_info"],
    );
    let mut people = hits(&in_people);
    people.sort();
    assert_eq!(people, [draft("higgs-4l"), draft("w-mass")]);
    assert!(in_people["hits"][0]["matches"][0]["title_path"]
        .as_str()
        .unwrap()
        .starts_with("Basic Information › People #1"));
    assert!(hits(&search_json(
        &work.path,
        &["kowalczyk", "--field", "/general_title"]
    ))
    .is_empty());

    // Boolean operators.
    assert_eq!(
        hits(&search_json(&work.path, &["mass -higgs"])),
        [draft("w-mass")]
    );
    let either = search_json(&work.path, &["ZZ OR \"W boson\""]);
    assert_eq!(either["total"], 2);
    assert_eq!(
        hits(&search_json(&work.path, &["id:W-MASS"])),
        [draft("w-mass")]
    );
}

#[test]
fn a_malformed_query_exits_2_with_a_message() {
    let server = Server::new();
    let work = server.clone("work");
    for (query, needle) in [
        (
            "title:(higgs",
            "cannot parse the query `title:(higgs` at column 13",
        ),
        ("year:twenty", "take whole numbers"),
        ("hig*gs", "only a `*` at the end of a word"),
    ] {
        let out = work.capsule(&["search", query]);
        assert_eq!(out.status.code(), Some(2), "{query}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(needle), "{query}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("stack backtrace"),
            "{err}"
        );
    }
    let none = work.capsule(&["search", "nothing-like-this"]);
    assert_eq!(none.status.code(), Some(1), "no hits is exit 1, like grep");
}

/// A local archive (no server) with `n` generated deposits committed.
fn generated_archive(dir: &Path, n: usize, word: &str) {
    run_ok(capsule(dir.parent().unwrap()).arg("init").arg(dir));
    write_generated(dir, n, word);
    run_ok(git(dir).args(["add", "-A"]));
    run_ok(git(dir).args(["commit", "-q", "-m", "Generated deposits"]));
}

fn write_generated(dir: &Path, n: usize, word: &str) {
    let topics = ["higgs", "top", "electroweak", "susy", "exotics"];
    for i in 0..n {
        let topic = topics[i % topics.len()];
        let folder = dir.join(dep_dir(&format!("ana-{i:05}")));
        std::fs::create_dir_all(&folder).unwrap();
        let mut text = analysis(
            &format!("Analysis {i} of the {topic} group, {word}"),
            &[topic, word],
            ("Generated Person", "person@example.org"),
        );
        // Some bulk, so that indexing takes a measurable time.
        text = text.replace(
            "\"_deposit\"",
            &format!(
                "\"_fetched_from\": {{\"notes\": \"{}\"}},\n  \"_deposit\"",
                format!("{topic} {word} measurement note {i} ").repeat(40)
            ),
        );
        std::fs::write(folder.join("deposit.json"), text).unwrap();
    }
}

#[test]
fn bad_deposits_are_skipped_with_a_warning() {
    let tmp = tempfile::TempDir::new().unwrap();
    let dir = tmp.path().join("archive");
    generated_archive(&dir, 3, "first");
    std::fs::create_dir_all(dir.join(dep_dir("broken"))).unwrap();
    std::fs::write(
        dir.join(dep("broken", "deposit.json")),
        "{\"general_title\": \"x\",,}",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join(dep_dir("latin1"))).unwrap();
    std::fs::write(
        dir.join(dep("latin1", "deposit.json")),
        b"{\"general_title\": \"caf\xe9\"}",
    )
    .unwrap();
    run_ok(git(&dir).args(["add", "-A"]));
    run_ok(git(&dir).args(["commit", "-q", "-m", "Bad data"]));

    let out = run_ok(capsule(&dir).arg("index"));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}:1:23: invalid JSON",
            dep("broken", "deposit.json")
        )),
        "{err}"
    );
    assert!(err.contains(&dep("latin1", "deposit.json")), "{err}");
    assert!(
        stdout(&out).contains("3 drafts indexed"),
        "{}",
        stdout(&out)
    );
    assert_eq!(search_json(&dir, &["first"])["total"], 3);
}

#[test]
fn a_killed_indexer_recovers_to_what_a_rebuild_gives() {
    let tmp = tempfile::TempDir::new().unwrap();
    let dir = tmp.path().join("archive");
    let n = 3000;
    generated_archive(&dir, n, "alpha");
    run_ok(capsule(&dir).arg("index"));

    // Change every deposit, then kill the indexer in the middle of catching up.
    write_generated(&dir, n, "omega");
    run_ok(git(&dir).args(["commit", "-q", "-am", "Change everything"]));
    let started = Instant::now();
    let mut child = capsule(&dir).arg("index").spawn().unwrap();
    let segment_files = |dir: &Path| {
        std::fs::read_dir(dir.join(".git/capsule/index"))
            .unwrap()
            .count()
    };
    let before = segment_files(&dir);
    // Wait until it has started writing (new files appear), then kill it.
    while segment_files(&dir) == before && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    let still_running = child.try_wait().unwrap().is_none();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        still_running,
        "the indexer finished before it could be killed; make the archive bigger"
    );

    // The index still holds the last committed state, and the next search catches up
    // from it.
    let recovered = search_json(&dir, &["omega", "--limit", "5000", "--facets"]);
    assert_eq!(
        recovered["refreshed"]["mode"], "incremental",
        "{}",
        recovered["refreshed"]
    );
    assert_eq!(recovered["total"], n as u64);
    assert_eq!(search_json(&dir, &["alpha"])["total"], 0);

    run_ok(capsule(&dir).args(["index", "--rebuild"]));
    let rebuilt = search_json(&dir, &["omega", "--limit", "5000", "--facets"]);
    assert_eq!(hits(&recovered).len(), n);
    let mut a = hits(&recovered);
    let mut b = hits(&rebuilt);
    a.sort();
    b.sort();
    assert_eq!(a, b);
    assert_eq!(recovered["facets"], rebuilt["facets"]);
}

// ---------------------------------------------------------------------------------------
// One hit per analysis, snippets, prefixes, sort, paging, --mine

/// A plain git archive (no hooks) whose commits and tags have fixed dates, so that
/// everything derived from it (commit ids, times) is the same on every run.
struct Archive {
    _tmp: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl Archive {
    fn new() -> Archive {
        let tmp = tempfile::TempDir::new().unwrap();
        let path = tmp.path().join("archive");
        std::fs::create_dir_all(&path).unwrap();
        run_ok(git(&path).args(["init", "-q", "-b", "main"]));
        let archive = Archive { _tmp: tmp, path };
        archive.write(
            "schemas/analysis/1.0.0.json",
            include_str!("../schemas/analysis/1.0.0.json"),
        );
        archive
    }

    fn write(&self, path: &str, content: impl AsRef<[u8]>) -> &Self {
        let file = self.path.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, content).unwrap();
        self
    }

    /// `git` with author, committer and tagger dates at `seconds` since the epoch.
    fn git_at(&self, seconds: i64) -> std::process::Command {
        let date = format!("@{seconds} +0000");
        let mut cmd = git(&self.path);
        cmd.env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date);
        cmd
    }

    fn commit_at(&self, seconds: i64, message: &str) -> &Self {
        run_ok(self.git_at(seconds).args(["add", "-A"]));
        run_ok(self.git_at(seconds).args(["commit", "-q", "-m", message]));
        self
    }

    fn remove(&self, path: &str) -> &Self {
        std::fs::remove_dir_all(self.path.join(path)).unwrap();
        self
    }

    fn publish_at(&self, seconds: i64, id: &str, version: u32) -> &Self {
        let tag = format!("records/{id}/v{version}");
        run_ok(self.git_at(seconds).args([
            "tag",
            "-a",
            &tag,
            "-m",
            &format!("Publish {id} v{version}"),
        ]));
        self
    }
}

impl Archive {
    fn head(&self) -> String {
        stdout(&run_ok(git(&self.path).args(["rev-parse", "HEAD"])))
            .trim()
            .to_string()
    }
}

/// 2024-01-01T00:00:00Z, and one day.
const T0: i64 = 1_704_067_200;
const DAY: i64 = 86_400;

#[test]
fn one_hit_per_analysis_lists_its_versions_newest_first() {
    let a = Archive::new();
    let ana = |title: &str| analysis(title, &["Higgs boson"], ("Ann", "ann@example.org"));
    a.write(
        &dep("h4l", "deposit.json"),
        ana("Higgs to four leptons, first look"),
    )
    .commit_at(T0, "v1")
    .publish_at(T0, "h4l", 1);
    a.write(
        &dep("h4l", "deposit.json"),
        ana("Higgs to four leptons, full Run 2"),
    )
    .commit_at(T0 + DAY, "v2")
    .publish_at(T0 + DAY, "h4l", 2);
    a.write(
        &dep("h4l", "deposit.json"),
        ana("Higgs to four leptons, with Run 3"),
    )
    .write(
        &dep("other", "deposit.json"),
        analysis("Top mass", &["top"], ("Bo", "bo@example.org")),
    )
    .commit_at(T0 + 2 * DAY, "draft");

    let all = search_json(&a.path, &["higgs"]);
    assert_eq!(hits(&all), [draft("h4l")], "{all}");
    assert_eq!(
        (all["total"].as_u64(), all["versions"].as_u64()),
        (Some(1), Some(3))
    );
    let every = |names: &[&str]| -> Vec<(String, bool)> {
        names.iter().map(|n| (n.to_string(), true)).collect()
    };
    assert_eq!(versions(&all["hits"][0]), every(&["draft", "v2", "v1"]));
    assert_eq!(all["hits"][0]["title"], "Higgs to four leptons, with Run 3");

    // Words only the first version had: the hit shows v1, and lists the others as
    // versions that did not match.
    let old = search_json(&a.path, &["first look"]);
    assert_eq!(hits(&old), [record("h4l", 1)]);
    assert_eq!(
        versions(&old["hits"][0]),
        [
            ("draft".to_string(), false),
            ("v2".to_string(), false),
            ("v1".to_string(), true)
        ]
    );
    // On a terminal: one block per analysis, its versions named.
    let text = stdout(&run_ok(capsule(&a.path).args(["search", "higgs"])));
    assert_eq!(text.matches("h4l").count(), 1, "{text}");
    assert!(text.contains("draft v2 v1"), "{text}");
    assert!(text.contains("1 analysis (3 versions matching)"), "{text}");
}

#[test]
fn snippets_leave_system_fields_out_and_number_items_from_one() {
    let a = Archive::new();
    let deposit = r#"{
  "$schema": "analysis/1.0.0",
  "general_title": "Dimuon resonances",
  "basic_info": {"keywords": ["resonance", "cms-members study"]},
  "_access": {"deposit-read": {"users": [], "roles": ["cms-members"]}},
  "_deposit": {"owners": ["alice"], "note": "onlyinsystem"},
  "_files": [{"key": "cms-members.txt"}]
}"#;
    a.write(&dep("dimuon", "deposit.json"), deposit)
        .commit_at(T0, "add");

    let found = search_json(&a.path, &["cms-members"]);
    assert_eq!(hits(&found), [draft("dimuon")]);
    let matches = found["hits"][0]["matches"].as_array().unwrap();
    let pointers: Vec<&str> = matches
        .iter()
        .map(|m| m["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(pointers, ["/basic_info/keywords/1"], "{found}");
    assert_eq!(matches[0]["title_path"], "Basic Information › Keywords #2");
    let text = stdout(&run_ok(capsule(&a.path).args(["search", "cms-members"])));
    assert!(text.contains("Keywords #2:"), "{text}");
    for system in [
        "_access", "_deposit", "_files", "$schema", "#0", "› 0", "› 1:",
    ] {
        assert!(!text.contains(system), "{system} in\n{text}");
    }
    // A word that only a system field holds finds nothing.
    assert!(hits(&search_json(&a.path, &["onlyinsystem"])).is_empty());
}

#[test]
fn the_last_word_of_a_plain_query_is_a_prefix_as_on_the_site() {
    let a = Archive::new();
    a.write(&dep("higgs-4l", "deposit.json"), HIGGS)
        .write(
            &dep("lepton-id", "deposit.json"),
            analysis("Lept", &["id"], ("Ann", "ann@example.org")),
        )
        .commit_at(T0, "add");
    let ids = |args: &[&str]| {
        let mut found = hits(&search_json(&a.path, args));
        found.sort();
        found
    };
    assert_eq!(ids(&["lept"]), [draft("higgs-4l"), draft("lepton-id")]);
    assert_eq!(ids(&["four", "lept"]), [draft("higgs-4l")]);
    // The whole word still ranks first.
    assert_eq!(
        hits(&search_json(&a.path, &["lept"]))[0],
        draft("lepton-id")
    );
    // A space after the last word, or any query syntax, makes words whole again.
    assert_eq!(ids(&["lept "]), [draft("lepton-id")]);
    assert_eq!(ids(&["title:lept"]), [draft("lepton-id")]);
    assert!(ids(&["\"four lept\""]).is_empty());
    // Words the site's search ignores are ignored here too ("lepton-id" has no "the").
    assert_eq!(ids(&["the", "lept"]), ids(&["lept"]));
    assert_eq!(ids(&["a", "four", "lept"]), [draft("higgs-4l")]);
    // The site's search.js applies the same rules (the last word is a prefix unless the
    // query ends with a space; the same stop words); this guards them from drifting apart.
    let js = include_str!("../site/search.js");
    let start = js.find("var STOP = [").expect("search.js has a STOP list");
    let list = &js[start..start + js[start..].find("];").unwrap()];
    let js_stop: Vec<&str> = list.split('"').skip(1).step_by(2).collect();
    assert_eq!(
        js_stop,
        capsule::index::STOP_WORDS,
        "site/search.js's STOP list"
    );
    assert!(
        js.contains("var lastIsPrefix = !/\\s$/.test(query);"),
        "search.js changed its prefix rule"
    );
}

#[test]
fn sort_and_pages() {
    let a = Archive::new();
    let ana = |title: &str| analysis(title, &["shared"], ("Ann", "ann@example.org"));
    a.write(&dep("b", "deposit.json"), ana("beta shared"))
        .commit_at(T0, "b");
    a.write(&dep("g", "deposit.json"), ana("Gamma"))
        .commit_at(T0 + DAY, "g");
    a.write(&dep("a", "deposit.json"), ana("Alpha"))
        .commit_at(T0 + 2 * DAY, "a");
    let order = |args: &[&str]| -> Vec<String> {
        hits(&search_json(&a.path, args))
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    };
    assert_eq!(order(&["shared", "--sort", "title"]), ["a", "b", "g"]);
    assert_eq!(order(&["shared", "--sort", "newest"]), ["a", "g", "b"]);
    // Relevance: the title match counts three times.
    assert_eq!(order(&["shared", "--sort", "relevance"])[0], "b");

    let page = search_json(
        &a.path,
        &[
            "shared",
            "--sort",
            "title",
            "--page",
            "2",
            "--per-page",
            "2",
        ],
    );
    assert_eq!(hits(&page), [draft("g")]);
    assert_eq!(
        (
            page["total"].as_u64(),
            page["page"].as_u64(),
            page["per_page"].as_u64(),
            page["pages"].as_u64()
        ),
        (Some(3), Some(2), Some(2), Some(2))
    );
    assert_eq!(page["sort"], "title");
    assert!(hits(&search_json(
        &a.path,
        &["shared", "--page", "3", "--per-page", "2"]
    ))
    .is_empty());
    let text = stdout(&run_ok(capsule(&a.path).args([
        "search",
        "shared",
        "--per-page",
        "2",
    ])));
    assert!(text.contains("page 1 of 2; --page 2 shows more"), "{text}");
}

#[test]
fn mine_finds_what_the_current_user_owns_or_may_access() {
    let a = Archive::new();
    a.write(
        "access.toml",
        "[people]\nalice = \"alice@example.org\"\nbob = \"bob@example.org\"\ncarol = \"carol@example.org\"\ndave = { email = \"dave@example.org\", cap_id = 1234, groups = [\"atlas-members\"] }\n\n[groups]\ncms-members = [\"carol\"]\nphysics = [\"cms-members\"]\n",
    );
    let with_access = |owners: &str, grants: &str| {
        format!(
            r#"{{"$schema": "analysis/1.0.0", "general_title": "Shared study", "_deposit": {{"owners": [{owners}]}}, "_access": {grants}}}"#
        )
    };
    a.write(
        &dep("alices", "deposit.json"),
        with_access("\"alice\"", "{}"),
    )
    .write(
        &dep("by-group", "deposit.json"),
        with_access(
            "\"bob\"",
            r#"{"deposit-read": {"users": [], "roles": ["physics"]}}"#,
        ),
    )
    .write(
        &dep("by-mail", "deposit.json"),
        with_access(
            "\"bob\"",
            r#"{"deposit-update": {"users": ["Carol@Example.org"], "roles": []}}"#,
        ),
    )
    .write(
        &dep("bobs", "deposit.json"),
        with_access("\"bob@example.org\"", "{}"),
    )
    // CAP's records name owners by numeric CAP id; groups may be listed with a person.
    .write(&dep("by-cap-id", "deposit.json"), with_access("1234", "{}"))
    .write(
        &dep("by-own-group", "deposit.json"),
        with_access(
            "\"bob\"",
            r#"{"deposit-admin": {"users": [], "roles": ["atlas-members"]}}"#,
        ),
    )
    .commit_at(T0, "six deposits");
    let mine = |user: Option<&str>, email: Option<&str>| -> Vec<String> {
        let mut cmd = capsule(&a.path);
        cmd.args(["search", "study", "--mine", "--json"]);
        if let Some(user) = user {
            cmd.env("CAPSULE_USER", user);
        }
        if let Some(email) = email {
            cmd.env("GIT_AUTHOR_EMAIL", email)
                .env("GIT_CONFIG_GLOBAL", "/dev/null");
        }
        let out = cmd.output().unwrap();
        let mut ids: Vec<String> = hits(&json(&out)).into_iter().map(|(id, _)| id).collect();
        ids.sort();
        ids
    };
    assert_eq!(mine(Some("alice"), None), ["alices"]);
    // Through a group of a group, and by e-mail in any case.
    assert_eq!(mine(Some("carol"), None), ["by-group", "by-mail"]);
    // Without CAPSULE_USER: the user whose e-mail git gives, mapped through access.toml.
    assert_eq!(
        mine(None, Some("bob@example.org")),
        ["bobs", "by-group", "by-mail", "by-own-group"]
    );
    assert_eq!(mine(Some("dave"), None), ["by-cap-id", "by-own-group"]);
    assert_eq!(search_json(&a.path, &["study"])["total"], 6);
}

// The OpenSearch bridge: `capsule index --export ndjson` and `--mapping`.
#[path = "search/bridge.rs"]
mod bridge;
