//! Where CAP's data comes from: saved files (API answers, search pages, record lists)
//! or a CAP server's REST API with an access token. Everything is read before anything
//! is written, so a server that stops answering half-way leaves the archive untouched.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::map::{is_record, not_a_record_reason, FileRef};

/// One JSON value that should be a CAP deposit or record, and where it came from.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub origin: String,
    pub value: Value,
    /// Read from `/api/records/` (a published record).
    pub from_records: bool,
}

/// A file that holds no CAP record, or cannot be read as one.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Unreadable {
    pub origin: String,
    pub reason: String,
}

/// Why reading from a CAP server stopped. Nothing has been written when this is returned.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the CAP server refused the token at {url} ({status}): check the token in ${env} (a personal access token of your CAP account, made under Settings > Applications), or that it may read what you import")]
    Unauthorised {
        url: String,
        status: u16,
        env: String,
    },
    #[error("{url}: {message}; nothing was imported (run the same command again when the server answers)")]
    Http { url: String, message: String },
    #[error("{url}: the answer is not JSON ({message}); is this the address of a CAP server (e.g. https://analysispreservation.cern.ch)?")]
    NotJson { url: String, message: String },
    #[error("{page}: `links.next` leads to {next}, another server than {base}: refusing to send the token there; nothing was imported (is --from-api the address CAP itself uses, as in its links?)")]
    ForeignLink {
        /// The page whose `links.next` it is.
        page: String,
        next: String,
        base: String,
    },
    #[error("refusing to send the token to {url}: it is not on {base}")]
    ForeignAddress { url: String, base: String },
    #[error("{url}: more than {limit} pages: stopping (does `links.next` loop?)")]
    TooManyPages { url: String, limit: usize },
}

/// Every `.json` file under `paths` (files, or folders read recursively, in name order).
pub fn json_files(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()?;
            entries.sort();
            let (dirs, files): (Vec<_>, Vec<_>) = entries.into_iter().partition(|p| p.is_dir());
            out.extend(
                files
                    .into_iter()
                    .filter(|p| p.extension().is_some_and(|e| e == "json")),
            );
            out.extend(json_files(&dirs)?);
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

/// Reads saved CAP answers and record lists. Files that hold no CAP record are
/// returned as [`Unreadable`], with the reason.
pub fn read_files(paths: &[PathBuf]) -> std::io::Result<(Vec<Snapshot>, Vec<Unreadable>)> {
    let mut snapshots = Vec::new();
    let mut bad = Vec::new();
    for file in json_files(paths)? {
        let shown = file.display().to_string();
        let bytes = std::fs::read(&file)
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot read {shown}: {e}")))?;
        match crate::json::parse(&shown, &bytes) {
            Ok((_, value)) => split(&shown, value, false, &mut snapshots, &mut bad),
            Err(problems) => bad.push(Unreadable {
                origin: shown,
                reason: problems
                    .first()
                    .map(|p| format!("{}:{}: {}", p.line, p.column, p.message))
                    .unwrap_or_else(|| "not JSON".into()),
            }),
        }
    }
    Ok((snapshots, bad))
}

/// One answer into its records: a search page (`hits.hits`), a record list, one record.
fn split(
    origin: &str,
    value: Value,
    from_records: bool,
    out: &mut Vec<Snapshot>,
    bad: &mut Vec<Unreadable>,
) {
    let hits = value
        .get("hits")
        .and_then(|h| h.get("hits"))
        .and_then(Value::as_array)
        .cloned();
    let list = match (&value, hits) {
        (_, Some(hits)) => Some((hits, "/hits/hits")),
        (Value::Array(a), None) => Some((a.clone(), "")),
        _ => None,
    };
    match list {
        Some((entries, at)) => {
            if at.is_empty() && !entries.iter().all(is_record) {
                bad.push(Unreadable {
                    origin: origin.to_string(),
                    reason: not_a_record_reason(&value),
                });
                return;
            }
            for (i, entry) in entries.into_iter().enumerate() {
                let here = format!("{origin}#{at}/{i}");
                if is_record(&entry) {
                    out.push(Snapshot {
                        origin: here,
                        value: entry,
                        from_records,
                    });
                } else {
                    bad.push(Unreadable {
                        reason: not_a_record_reason(&entry),
                        origin: here,
                    });
                }
            }
        }
        None if is_record(&value) => out.push(Snapshot {
            origin: origin.to_string(),
            value,
            from_records,
        }),
        None => bad.push(Unreadable {
            origin: origin.to_string(),
            reason: not_a_record_reason(&value),
        }),
    }
}

/// A CAP server and the token to read it with.
pub struct Api {
    base: String,
    token: String,
    token_env: String,
    agent: ureq::Agent,
}

/// Pages of one listing at most: a loop in `links.next` must end.
const PAGE_LIMIT: usize = 100_000;

impl Api {
    /// `base` is the server's address (`https://analysispreservation.cern.ch`);
    /// `token_env` names the variable the token came from, for messages.
    pub fn new(base: &str, token: String, token_env: &str, timeout_secs: u64) -> Api {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(timeout_secs.max(1))))
            .http_status_as_error(false)
            // A redirect (a file served from storage) is followed without the token:
            // it goes to CAP's server only. Said here, not left to ureq's default.
            .redirect_auth_headers(ureq::config::RedirectAuthHeaders::Never)
            .build()
            .into();
        Api {
            base: base.trim_end_matches('/').to_string(),
            token,
            token_env: token_env.to_string(),
            agent,
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Whether `url` is on the server the token is for (scheme, host and port, as
    /// the `url` crate reads them: default ports, case, user info).
    pub fn is_on_server(&self, url: &str) -> bool {
        match (url::Url::parse(url), url::Url::parse(&self.base)) {
            (Ok(a), Ok(b)) => a.origin().is_tuple() && a.origin() == b.origin(),
            _ => false,
        }
    }

    /// Where to fetch a file CAP refers to: its `links.self` when that is on the
    /// server, else `/api/files/<bucket>/<key>` on the server (CAP's links name the
    /// host CAP was configured with, which may not be the address given). `Err` says
    /// why there is no address to send the token to.
    pub fn file_url(&self, file: &FileRef) -> Result<String, String> {
        if let Some(url) = file.url.as_deref().filter(|u| self.is_on_server(u)) {
            return Ok(url.to_string());
        }
        if let Some(bucket) = &file.bucket {
            let mut url = url::Url::parse(&self.base).map_err(|e| format!("{}: {e}", self.base))?;
            url.path_segments_mut()
                .map_err(|()| format!("{} cannot have a path", self.base))?
                .pop_if_empty()
                .extend(["api", "files", bucket])
                .extend(file.key.split('/'));
            return Ok(url.to_string());
        }
        Err(match &file.url {
            Some(url) => format!("its address {url} is not on {} and CAP gives no bucket: the token is not sent there; download it yourself and add it with `capsule attach`", self.base),
            None => "CAP gives no address for it".into(),
        })
    }

    /// The bytes of a file at `url`, reading at most `size + 1` bytes when CAP gave a
    /// size (more than that is a mismatch already). `Ok(None)` for 404.
    pub fn get_file(&self, url: &str, size: Option<u64>) -> Result<Option<Vec<u8>>, ApiError> {
        self.get(
            url,
            "application/octet-stream",
            size.map(|s| s.saturating_add(1)),
        )
    }

    /// The bytes at `url`, with the token. `Ok(None)` for 404.
    pub fn get_bytes(&self, url: &str, accept: &str) -> Result<Option<Vec<u8>>, ApiError> {
        self.get(url, accept, None)
    }

    fn get(&self, url: &str, accept: &str, cap: Option<u64>) -> Result<Option<Vec<u8>>, ApiError> {
        if !self.is_on_server(url) {
            return Err(ApiError::ForeignAddress {
                url: url.to_string(),
                base: self.base.clone(),
            });
        }
        let http = |message: String| ApiError::Http {
            url: url.to_string(),
            message,
        };
        let mut response = self
            .agent
            .get(url)
            .header("Accept", accept)
            .header("Authorization", &format!("Bearer {}", self.token))
            .call()
            .map_err(|e| match e {
                ureq::Error::Timeout(_) => http("no answer in time".into()),
                other => http(format!("cannot reach the server: {other}")),
            })?;
        let status = response.status().as_u16();
        if status == 401 || status == 403 {
            return Err(ApiError::Unauthorised {
                url: url.to_string(),
                status,
                env: self.token_env.clone(),
            });
        }
        if status == 404 {
            return Ok(None);
        }
        let body = match cap {
            // Bounded before reading: an answer longer than CAP's size stops one byte
            // past it, which the size check then refuses.
            Some(cap) => {
                let mut body = Vec::new();
                std::io::Read::take(response.body_mut().as_reader(), cap)
                    .read_to_end(&mut body)
                    .map(|_| body)
            }
            None => response
                .body_mut()
                .with_config()
                .limit(1024 * 1024 * 1024)
                .read_to_vec()
                .map_err(std::io::Error::other),
        }
        .map_err(|e| http(format!("the answer broke off: {e}")))?;
        if !(200..300).contains(&status) {
            let text: String = String::from_utf8_lossy(&body).chars().take(200).collect();
            return Err(http(format!(
                "the server answered {status} {}",
                text.trim()
            )));
        }
        Ok(Some(body))
    }

    /// The JSON at `url`.
    pub fn get_json(&self, url: &str) -> Result<Option<Value>, ApiError> {
        let Some(body) = self.get_bytes(url, "application/json")? else {
            return Ok(None);
        };
        crate::json::from_bytes(&body)
            .map(Some)
            .map_err(|message| ApiError::NotJson {
                url: url.to_string(),
                message,
            })
    }

    /// Every deposit (`/api/deposits/`) and record (`/api/records/`) the token may read,
    /// page by page along `links.next`. A hit without its schema (CAP's basic form) is
    /// read again whole from its own address.
    pub fn read_all(&self) -> Result<(Vec<Snapshot>, Vec<Unreadable>), ApiError> {
        let mut out = Vec::new();
        let mut bad = Vec::new();
        for (route, from_records) in [("deposits", false), ("records", true)] {
            let mut url = format!("{}/api/{route}/?page=1&size=100", self.base);
            let mut pages = 0;
            loop {
                pages += 1;
                if pages > PAGE_LIMIT {
                    return Err(ApiError::TooManyPages {
                        url,
                        limit: PAGE_LIMIT,
                    });
                }
                let Some(page) = self.get_json(&url)? else {
                    return Err(ApiError::Http {
                        url: url.clone(),
                        message: "the server answered 404: is this a CAP server?".into(),
                    });
                };
                let mut found = Vec::new();
                split(&url, page.clone(), from_records, &mut found, &mut bad);
                for mut snap in found {
                    if !names_schema(&snap.value) {
                        let id = snap
                            .value
                            .get("id")
                            .or_else(|| snap.value.get("pid"))
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string();
                        let whole = snap
                            .value
                            .get("links")
                            .and_then(|l| l.get("self"))
                            .and_then(Value::as_str)
                            .filter(|link| self.is_on_server(link))
                            .map(str::to_string)
                            .unwrap_or_else(|| format!("{}/api/{route}/{id}", self.base));
                        if let Some(value) = self.get_json(&whole)? {
                            snap = Snapshot {
                                origin: whole,
                                value,
                                from_records,
                            };
                        }
                    }
                    out.push(snap);
                }
                match page
                    .get("links")
                    .and_then(|l| l.get("next"))
                    .and_then(Value::as_str)
                {
                    Some(next) if !next.is_empty() && next != url => {
                        if !self.is_on_server(next) {
                            return Err(ApiError::ForeignLink {
                                page: url,
                                next: next.to_string(),
                                base: self.base.clone(),
                            });
                        }
                        url = next.to_string();
                    }
                    _ => break,
                }
            }
        }
        Ok((out, bad))
    }
}

/// Whether a snapshot says which schema it follows.
fn names_schema(value: &Value) -> bool {
    value.get("schema").is_some()
        || value.get("$schema").is_some()
        || value
            .get("metadata")
            .and_then(|m| m.get("$schema"))
            .is_some()
}

/// The file name of a path, for messages.
pub fn shown(path: &Path) -> String {
    path.display().to_string()
}
