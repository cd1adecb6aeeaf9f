//! The token check as an HTTP service for a web server's `auth_request`
//! (nginx), `forward_auth` (Caddy) or `ForwardAuth` (Traefik).
//!
//! It speaks just enough HTTP/1.x for that and no more, strictly: one `GET` or `HEAD`
//! per connection, no body, headers bounded in size (`max_header_bytes`) and in time
//! (`header_timeout` for the whole header, whatever the pace of the bytes), a bounded
//! number of connections at once, and `Connection: close`. Anything else is answered
//! with 400 (or 503 when busy), never guessed at. tiny_http, which `capsule serve` uses,
//! reads header lines without a size limit and has no read timeout, which a listener
//! that any local account can reach should not allow.
//!
//! The request names what to judge in headers:
//!
//! - `X-Original-URI`: the path the web server will serve (nginx: `$uri`, already
//!   decoded and normalised). If it carries a query, its `access_token` is read.
//! - `X-Access-Token`: the token from the client's query (nginx: `$arg_access_token`).
//! - `Authorization: Bearer <token>`, as the client sent it.
//!
//! Two different tokens in one request are refused (401).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::check::{Decision, Verdict};

/// Bounds of the listener.
#[derive(Debug, Clone)]
pub struct ServeLimits {
    pub max_header_bytes: usize,
    pub header_timeout: Duration,
    pub max_connections: usize,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            max_header_bytes: 16 * 1024,
            header_timeout: Duration::from_secs(5),
            max_connections: 64,
        }
    }
}

/// What the backend was asked: the path to judge and the token presented, if any.
pub struct AuthRequest {
    pub uri: String,
    pub token: Option<String>,
    /// Two different tokens were presented: which person asks is unclear, and the
    /// request is refused without judging either.
    pub conflicting: bool,
}

/// Serves until the listener fails. `judge` decides each request (it is called on
/// the connection's own thread), `report` hears every decision (for a log line; a
/// decision never holds the token).
pub fn serve(
    listener: TcpListener,
    limits: ServeLimits,
    judge: Arc<dyn Fn(&AuthRequest) -> Decision + Send + Sync>,
    report: Arc<dyn Fn(&Decision) + Send + Sync>,
) -> std::io::Result<()> {
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        if active.fetch_add(1, Ordering::SeqCst) >= limits.max_connections {
            active.fetch_sub(1, Ordering::SeqCst);
            let _ = stream.set_write_timeout(Some(limits.header_timeout));
            let busy = Decision {
                verdict: Verdict::Failed,
                path: String::new(),
                token_id: None,
                user: None,
                reason: "busy".into(),
            };
            let _ = respond_with(&mut stream, 503, &busy);
            continue;
        }
        let (active, limits, judge, report) = (
            active.clone(),
            limits.clone(),
            judge.clone(),
            report.clone(),
        );
        std::thread::spawn(move || {
            let decision = match read_request(&mut stream, &limits) {
                Ok(request) if request.conflicting => Decision {
                    verdict: Verdict::Unauthenticated,
                    path: request.uri,
                    token_id: None,
                    user: None,
                    reason: "two different tokens".into(),
                },
                Ok(request) => judge(&request),
                Err(reason) => Decision {
                    verdict: Verdict::BadRequest,
                    path: String::new(),
                    token_id: None,
                    user: None,
                    reason,
                },
            };
            let _ = stream.set_write_timeout(Some(limits.header_timeout));
            let _ = respond(&mut stream, &decision);
            report(&decision);
            active.fetch_sub(1, Ordering::SeqCst);
        });
    }
    Ok(())
}

fn respond(stream: &mut TcpStream, decision: &Decision) -> std::io::Result<()> {
    respond_with(stream, decision.verdict.status(), decision)
}

/// The answer: the status, and who the token belongs to (`X-Capsule-User`,
/// `X-Capsule-Token-Id`) so that the web server can log the person and the token's
/// id in place of the token (nginx: `auth_request_set`).
fn respond_with(stream: &mut TcpStream, status: u16, decision: &Decision) -> std::io::Result<()> {
    let reason = match status {
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    };
    let challenge = if status == 401 {
        "WWW-Authenticate: Bearer realm=\"capsule\"\r\n"
    } else {
        ""
    };
    let mut who = String::new();
    for (name, value) in [
        ("X-Capsule-User", &decision.user),
        ("X-Capsule-Token-Id", &decision.token_id),
    ] {
        // Only plain visible ASCII goes into a header (a user name is a TOML key).
        if let Some(v) = value
            .as_deref()
            .filter(|v| v.bytes().all(|b| b.is_ascii_graphic()))
        {
            who.push_str(&format!("{name}: {v}\r\n"));
        }
    }
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\n{challenge}{who}Content-Length: 0\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(response.as_bytes())?;
    stream.flush()
}

/// Reads one request's header, within the limits, and takes what the check needs.
fn read_request(stream: &mut TcpStream, limits: &ServeLimits) -> Result<AuthRequest, String> {
    let started = Instant::now();
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let end = loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            break end;
        }
        if buf.len() > limits.max_header_bytes {
            return Err(format!(
                "the header is longer than {} bytes",
                limits.max_header_bytes
            ));
        }
        let left = limits
            .header_timeout
            .checked_sub(started.elapsed())
            .filter(|d| !d.is_zero())
            .ok_or("the header did not arrive in time")?;
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        let n = stream.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the connection closed before the header ended".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    if end > limits.max_header_bytes {
        return Err(format!(
            "the header is longer than {} bytes",
            limits.max_header_bytes
        ));
    }
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| "the header is not UTF-8")?;
    parse_head(head)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Parses the request line and headers (without the blank line that ends them).
fn parse_head(head: &str) -> Result<AuthRequest, String> {
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (method, target, version) = (parts.next(), parts.next(), parts.next());
    if parts.next().is_some()
        || !matches!(method, Some("GET" | "HEAD"))
        || !target.is_some_and(|t| t.starts_with('/'))
        || !matches!(version, Some("HTTP/1.0" | "HTTP/1.1"))
    {
        return Err("the request line is not `GET /... HTTP/1.x`".into());
    }
    let mut original_uri = None;
    let mut tokens: Vec<String> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err("a header line without `:`".into());
        };
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        {
            // Also refuses obsolete line folding (a line starting with a space).
            return Err("a malformed header name".into());
        }
        if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
            return Err("a control character in a header".into());
        }
        let name = name.to_ascii_lowercase();
        let value = value.trim_matches([' ', '\t']);
        let once = matches!(
            name.as_str(),
            "x-original-uri" | "x-access-token" | "authorization" | "content-length"
        );
        if once && !seen.insert(name.clone()) {
            return Err(format!("{name} is given twice"));
        }
        match name.as_str() {
            "x-original-uri" => original_uri = Some(value.to_string()),
            "x-access-token" if !value.is_empty() => tokens.push(value.to_string()),
            "authorization" => {
                if let Some((scheme, credentials)) = value.split_once(' ') {
                    if scheme.eq_ignore_ascii_case("bearer") {
                        tokens.push(credentials.trim().to_string());
                    }
                }
            }
            "content-length" if value != "0" => return Err("a request with a body".into()),
            "transfer-encoding" => return Err("a request with a body".into()),
            _ => {}
        }
    }
    let original_uri = original_uri.ok_or("no X-Original-URI header: which path to judge?")?;
    let (path, query) = match original_uri.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (original_uri.as_str(), None),
    };
    for pair in query.into_iter().flat_map(|q| q.split('&')) {
        if let Some(value) = pair.strip_prefix("access_token=") {
            if !value.is_empty() {
                tokens.push(value.to_string());
            }
        }
    }
    tokens.sort();
    tokens.dedup();
    Ok(AuthRequest {
        uri: path.to_string(),
        conflicting: tokens.len() > 1,
        token: tokens.pop(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_names_the_path_and_the_token() {
        let r = parse_head("GET /check HTTP/1.0\r\nHost: x\r\nX-Original-URI: /api/deposits/a\r\nX-Access-Token: capsule_t").unwrap();
        assert_eq!(r.uri, "/api/deposits/a");
        assert_eq!(r.token.as_deref(), Some("capsule_t"));
        let r = parse_head("GET / HTTP/1.1\r\nx-original-uri: /a?b=1&access_token=capsule_q\r\nAuthorization: Bearer capsule_q").unwrap();
        assert_eq!(
            (r.uri.as_str(), r.token.as_deref()),
            ("/a", Some("capsule_q"))
        );
        let r = parse_head("GET / HTTP/1.1\r\nX-Original-URI: /a\r\nAuthorization: Basic YTpi")
            .unwrap();
        assert_eq!(r.token, None);
        // Two different tokens conflict; the same one twice does not.
        let r = parse_head(
            "GET / HTTP/1.1\r\nX-Original-URI: /a?access_token=one\r\nAuthorization: Bearer two",
        )
        .unwrap();
        assert!(r.conflicting);
        let r = parse_head("GET / HTTP/1.1\r\nX-Original-URI: /a?access_token=one\r\nX-Access-Token: one\r\nAuthorization: Bearer one").unwrap();
        assert!(!r.conflicting);
        assert_eq!(r.token.as_deref(), Some("one"));
    }

    #[test]
    fn malformed_requests_are_refused() {
        for head in [
            "POST / HTTP/1.1\r\nX-Original-URI: /a",
            "GET / HTTP/2\r\nX-Original-URI: /a",
            "GET  / HTTP/1.1\r\nX-Original-URI: /a",
            "GET / HTTP/1.1\r\nX-Original-URI: /a\r\n folded",
            "GET / HTTP/1.1\r\nX-Original-URI: /a\r\nX-Original-URI: /b",
            "GET / HTTP/1.1\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\nX-Original-URI: /a",
            "GET / HTTP/1.1\r\nX-Original-URI: /a\r\nContent-Length: 5",
            "GET / HTTP/1.1\r\nHost: x",
        ] {
            assert!(parse_head(head).is_err(), "{head:?}");
        }
    }
}
