//! A running `capsule serve` for the tests (tests/serve.rs and the browser run in
//! tests/site.rs include this file): started on a free port of 127.0.0.1, spoken to
//! with plain HTTP/1.1 requests, killed and reaped on drop.

// Each test file that includes this uses a part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{capsule, Work};

/// How long to wait for the server to come up or to rebuild before the test fails.
/// Only a bound for failure: the test passes as soon as the change shows.
pub const PATIENCE: Duration = Duration::from_secs(90);

/// A deposit's `.html` and `.svg` whose scripts, if they ran in the site's origin, would
/// leave a mark there: `localStorage.pwned`, a `pwned` cookie, the page title.
pub const EVIL_HTML: &str = "<!DOCTYPE html><title>evil</title><script>localStorage.setItem('pwned','html');document.cookie='pwned=html; path=/';document.title='PWNED'</script>\n";
pub const EVIL_SVG: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\"><script>localStorage.setItem('pwned','svg');document.cookie='pwned=svg; path=/'</script></svg>\n";

/// An HTTP response: status, headers (names in lower case) and body.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// The value of header `name` (any case), if the response has it.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A running `capsule serve` with everything it printed.
pub struct Serving {
    child: Child,
    pub port: u16,
    pub printed: Arc<Mutex<String>>,
}

impl Serving {
    pub fn start(work: &Work, out: &Path) -> Serving {
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

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Everything the server printed so far.
    pub fn log(&self) -> String {
        self.printed.lock().unwrap().clone()
    }

    /// `GET path` with a raw request line (so `..` reaches the server as written).
    pub fn request(&self, path: &str) -> Response {
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
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status for {path}: {head}"));
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Response {
            status,
            headers,
            body: body.to_string(),
        }
    }

    /// `GET path`: the status code and the body.
    pub fn get(&self, path: &str) -> (u16, String) {
        let r = self.request(path);
        (r.status, r.body)
    }

    pub fn generation(&self) -> u64 {
        let (status, body) = self.get("/__capsule/generation");
        assert_eq!(status, 200, "{body}");
        body.trim().parse().unwrap()
    }

    /// Waits until the rebuild counter open pages poll is above `than` (so they
    /// reload), and returns it.
    pub fn generation_above(&self, than: u64) -> u64 {
        let body = self.wait_for(
            "open pages to be told to reload",
            "/__capsule/generation",
            |status, body| status == 200 && body.trim().parse::<u64>().is_ok_and(|g| g > than),
        );
        body.trim().parse().unwrap()
    }

    /// Polls `path` until `accept` holds for its response, or fails after PATIENCE.
    pub fn wait_for(&self, what: &str, path: &str, accept: impl Fn(u16, &str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let (status, body) = self.get(path);
            if accept(status, &body) {
                return body;
            }
            if started.elapsed() > PATIENCE {
                panic!(
                    "{what}: {path} still answers {status} after {PATIENCE:?}:\n{body}\n\nthe server printed:\n{}",
                    self.log()
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
