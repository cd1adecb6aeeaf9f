//! `capsule serve` over real HTTP on loopback: it serves the site it built, answers
//! folders with their index, rebuilds when the archive's refs move (a commit, a new
//! record tag) and tells open pages to reload, and never serves a file outside the site.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// How long to wait for the server to come up or to rebuild before the test fails.
/// Only a bound for failure: the test passes as soon as the change shows.
const PATIENCE: Duration = Duration::from_secs(90);

/// A deposit of `schemas/analysis/1.0.0.json` that everyone may read.
fn public_analysis(title: &str) -> String {
    let mut deposit: serde_json::Value = serde_json::from_str(&analysis(
        title,
        &["dilepton"],
        ("Alice Analyst", "alice@example.org"),
    ))
    .unwrap();
    deposit["_access"] = serde_json::json!({
        "deposit-read": {"users": [], "roles": ["public"]},
        "deposit-update": {"users": ["alice"], "roles": []},
        "deposit-admin": {"users": ["alice"], "roles": []}
    });
    serde_json::to_string_pretty(&deposit).unwrap() + "\n"
}

/// A running `capsule serve`, killed (and reaped) on drop, with everything it printed.
struct Serving {
    child: Child,
    port: u16,
    printed: Arc<Mutex<String>>,
}

impl Serving {
    fn start(work: &Work, out: &Path) -> Serving {
        let mut child = capsule(&work.path)
            .env("CAPSULE_USER", "alice")
            .args(["serve", "--port", "0", "--out"])
            .arg(out)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start capsule serve");
        let printed = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let streams: [Box<dyn Read + Send>; 2] = [
            Box::new(child.stdout.take().unwrap()),
            Box::new(child.stderr.take().unwrap()),
        ];
        for stream in streams {
            // Drain both pipes for the server's whole life, so it never blocks writing.
            let (printed, tx) = (printed.clone(), tx.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if let Some(rest) = line.split("http://127.0.0.1:").nth(1) {
                        if line.starts_with("Serving") {
                            let port: String =
                                rest.chars().take_while(char::is_ascii_digit).collect();
                            let _ = tx.send(port.parse::<u16>().unwrap());
                        }
                    }
                    let mut all = printed.lock().unwrap();
                    all.push_str(&line);
                    all.push('\n');
                }
            });
        }
        let port = match rx.recv_timeout(PATIENCE) {
            Ok(port) => port,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "capsule serve did not say where it serves:\n{}",
                    printed.lock().unwrap()
                );
            }
        };
        Serving {
            child,
            port,
            printed,
        }
    }

    /// `GET path` with a raw request line (so `..` reaches the server as written):
    /// the status code and the body.
    fn get(&self, path: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let response = String::from_utf8_lossy(&response).into_owned();
        let (head, body) = response
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("not an HTTP response to {path}: {response:?}"));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status for {path}: {head}"));
        (status, body.to_string())
    }

    fn generation(&self) -> u64 {
        let (status, body) = self.get("/__capsule/generation");
        assert_eq!(status, 200, "{body}");
        body.trim().parse().unwrap()
    }

    /// Waits until the rebuild counter open pages poll is above `than` (so they
    /// reload), and returns it.
    fn generation_above(&self, than: u64) -> u64 {
        let body = self.wait_for(
            "open pages to be told to reload",
            "/__capsule/generation",
            |status, body| status == 200 && body.trim().parse::<u64>().is_ok_and(|g| g > than),
        );
        body.trim().parse().unwrap()
    }

    /// Polls `path` until `accept` holds for its response, or fails after PATIENCE.
    fn wait_for(&self, what: &str, path: &str, accept: impl Fn(u16, &str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let (status, body) = self.get(path);
            if accept(status, &body) {
                return body;
            }
            if started.elapsed() > PATIENCE {
                panic!(
                    "{what}: {path} still answers {status} after {PATIENCE:?}:\n{body}\n\nthe server printed:\n{}",
                    self.printed.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serve_answers_over_http_rebuilds_on_new_records_and_stays_inside_the_site() {
    let server = Server::new();
    let work = server.clone("work");
    work.write(
        &dep("first", "deposit.json"),
        public_analysis("First dimuon analysis"),
    )
    .commit("first deposit");
    work.push().assert_landed();
    work.publish("first", 1).assert_landed();
    // Beside the site, where a path that climbs out of it would land.
    let out = server.tmp.path().join("www/site");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(out.parent().unwrap().join("secret.txt"), "CANARY-OUTSIDE").unwrap();

    let serving = Serving::start(&work, &out);

    // Pages, folders answered with their index, the API, the reload hook.
    let (status, home) = serving.get("/");
    assert_eq!(status, 200, "{home}");
    assert!(home.contains("First dimuon analysis"), "{home}");
    assert!(
        home.contains("/__capsule/generation"),
        "served pages carry the reload script"
    );
    assert!(
        !std::fs::read_to_string(out.join("index.html"))
            .unwrap()
            .contains("__capsule"),
        "the reload script is never written into the site"
    );
    let (status, page) = serving.get("/records/first/");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("First dimuon analysis"));
    let (status, api) = serving.get("/api/records/first");
    assert_eq!(status, 200, "{api}");
    let api: serde_json::Value = serde_json::from_str(&api).unwrap();
    assert_eq!(api["id"], "first");
    let (status, missing) = serving.get("/records/nope/");
    assert_eq!(status, 404);
    assert!(missing.contains("Page not found"), "{missing}");

    // Nothing outside the site, however the way out is spelled.
    for path in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/records/..%2f..%2fsecret.txt",
        "/..%5csecret.txt",
        "/../../Cargo.toml",
        "/%2e%2e/%2e%2e/Cargo.toml",
    ] {
        let (status, body) = serving.get(path);
        assert!(
            status == 404 || status == 400,
            "{path} answered {status}: {body}"
        );
        assert!(!body.contains("CANARY-OUTSIDE"), "{path} left the site");
        assert!(!body.contains("[package]"), "{path} left the site");
    }

    // A new deposit, committed and published: the served site follows.
    let before = serving.generation();
    work.write(
        &dep("second", "deposit.json"),
        public_analysis("Second ditau analysis"),
    )
    .commit("second deposit");
    work.push().assert_landed();
    work.publish("second", 1).assert_landed();
    let page = serving.wait_for("the new record", "/records/second/", |status, body| {
        status == 200 && body.contains("Second ditau analysis")
    });
    assert!(page.contains("/__capsule/generation"));
    serving.wait_for("the home page", "/", |_, body| {
        body.contains("Second ditau analysis")
    });
    // The site is swapped in before the counter moves: wait for the counter too.
    let after = serving.generation_above(before);

    // A new version of a record: its landing page shows it.
    work.write(
        &dep("first", "deposit.json"),
        public_analysis("First dimuon analysis, revised"),
    )
    .commit("first: revised");
    work.push().assert_landed();
    work.publish("first", 2).assert_landed();
    serving.wait_for("the second version", "/records/first/", |status, body| {
        status == 200 && body.contains("First dimuon analysis, revised")
    });
    let (status, _) = serving.get("/records/first/v2/");
    assert_eq!(status, 200);
    serving.generation_above(after);

    let printed = serving.printed.lock().unwrap().clone();
    assert!(printed.contains("Rebuilt:"), "{printed}");
    drop(serving);
}
