//! Filling deposits from experiment databases (CMS's CADI, ATLAS Glance, LHCb's
//! analysis list): a fetcher declared in capsule.toml turns a key into fields.
//!
//! ```toml
//! [fetchers.cadi]
//! url = "https://cms.example.org/cadi/{key}"         # or: file = "imports/cadi.json"
//! headers = { Authorization = "Bearer ${CADI_TOKEN}" } # secrets come from the environment
//! select = "/data"             # optional: where the record sits in the answer ({key} allowed)
//! match = "/code"              # optional: pick the array element whose /code is the key
//! [fetchers.cadi.map]
//! "/basic_info/analysis_name" = "/title"               # deposit pointer = answer pointer
//! ```
//!
//! What was fetched is recorded in `_fetched_from.<fetcher>` (CAP's field) with the key,
//! the source, the time and every value as fetched, so that a later fetch can tell a
//! field the user edited (kept unless forced) from one that only the source changed.
//! This module never writes files and never prints.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::authoring::set_pointer;
use crate::locate::escape_token;

/// One `[fetchers.<name>]` table.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FetcherSettings {
    /// An HTTP(S) URL template; `{key}` is replaced by the (URL-encoded) key.
    #[serde(default)]
    pub url: Option<String>,
    /// A local JSON file instead, relative to the archive; `{key}` allowed.
    #[serde(default)]
    pub file: Option<String>,
    /// Request headers; `${VAR}` is replaced from the environment.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Seconds before a request is abandoned.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Where the record sits in the answer (a JSON pointer; `{key}` allowed).
    #[serde(default)]
    pub select: Option<String>,
    /// When the selected value is an array: the pointer, inside each element, whose
    /// value must equal the key.
    #[serde(default, rename = "match")]
    pub match_pointer: Option<String>,
    /// Deposit pointer -> answer pointer.
    #[serde(default)]
    pub map: BTreeMap<String, String>,
}

fn default_timeout() -> u64 {
    10
}

/// Why a fetch could not run; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "fetcher `{0}` is not defined: add [fetchers.{0}] to capsule.toml (see docs/fetch.md)"
    )]
    Unknown(String),
    #[error("fetcher `{0}` needs exactly one of `url` or `file`")]
    NoSource(String),
    #[error("fetcher `{name}`: the environment variable {var} (used in a header) is not set")]
    MissingSecret { name: String, var: String },
    #[error("the key `{0}` cannot be used in a file name")]
    BadKey(String),
    #[error("{source_text}: {message}")]
    Source {
        source_text: String,
        message: String,
    },
    #[error("{source_text} did not answer with JSON: {message}")]
    NotJson {
        source_text: String,
        message: String,
    },
    #[error("{0}")]
    Mapping(String),
}

/// What a fetch produced.
#[derive(Debug, Clone, Serialize)]
pub struct Fetched {
    /// Where the answer came from (URL or file).
    pub source: String,
    /// The deposit as it will be written.
    #[serde(skip)]
    pub deposit: Value,
    /// Deposit pointers whose value was set or refreshed.
    pub updated: Vec<String>,
    /// Deposit pointers left alone because the user changed them since the last fetch.
    pub kept: Vec<String>,
}

fn fill_env(name: &str, text: &str) -> Result<String, FetchError> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let var = &after[..end];
        let value = std::env::var(var).map_err(|_| FetchError::MissingSecret {
            name: name.to_string(),
            var: var.to_string(),
        })?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn url_encode(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Reads the answer for `key`: an HTTP GET or a local file under `root`.
pub fn read_answer(
    name: &str,
    fetcher: &FetcherSettings,
    key: &str,
    root: &Path,
) -> Result<(String, Value), FetchError> {
    match (&fetcher.url, &fetcher.file) {
        (Some(url), None) => {
            let url = url.replace("{key}", &url_encode(key));
            let config = ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(fetcher.timeout_secs.max(1))))
                .http_status_as_error(false)
                .build();
            let agent: ureq::Agent = config.into();
            let mut request = agent.get(&url).header("Accept", "application/json");
            for (header, value) in &fetcher.headers {
                request = request.header(header, &fill_env(name, value)?);
            }
            let source = |message: String| FetchError::Source {
                source_text: url.clone(),
                message,
            };
            let mut response = request.call().map_err(|e| match e {
                ureq::Error::Timeout(_) => source(format!(
                    "no answer within {} s (fetchers.{name}.timeout_secs)",
                    fetcher.timeout_secs
                )),
                other => source(format!("cannot reach it: {other}")),
            })?;
            let status = response.status();
            let body = response
                .body_mut()
                .with_config()
                .limit(64 * 1024 * 1024)
                .read_to_vec()
                .map_err(|e| source(format!("the answer could not be read: {e}")))?;
            if !status.is_success() {
                let text = String::from_utf8_lossy(&body);
                let text: String = text.chars().take(200).collect();
                return Err(source(format!(
                    "the server answered {status}{}",
                    if text.trim().is_empty() {
                        String::new()
                    } else {
                        format!(": {}", text.trim())
                    }
                )));
            }
            let value = serde_json::from_slice(&body).map_err(|e| FetchError::NotJson {
                source_text: url.clone(),
                message: e.to_string(),
            })?;
            Ok((url, value))
        }
        (None, Some(file)) => {
            if file.contains("{key}")
                && (key.contains('/') || key.contains("..") || key.contains('\\'))
            {
                return Err(FetchError::BadKey(key.to_string()));
            }
            let relative = file.replace("{key}", key);
            let path = root.join(&relative);
            let bytes = std::fs::read(&path).map_err(|e| FetchError::Source {
                source_text: relative.clone(),
                message: format!("cannot read it: {e}"),
            })?;
            let value = serde_json::from_slice(&bytes).map_err(|e| FetchError::NotJson {
                source_text: relative.clone(),
                message: e.to_string(),
            })?;
            Ok((relative, value))
        }
        _ => Err(FetchError::NoSource(name.to_string())),
    }
}

/// The record for `key` inside an answer, following `select` and `match`.
pub fn select<'a>(
    fetcher: &FetcherSettings,
    answer: &'a Value,
    key: &str,
) -> Result<&'a Value, FetchError> {
    let mut node = answer;
    if let Some(select) = &fetcher.select {
        let pointer = select.replace("{key}", &escape_token(key));
        node = answer.pointer(&pointer).ok_or_else(|| {
            FetchError::Mapping(format!(
                "the answer has nothing at {pointer} (select): is `{key}` a known key?"
            ))
        })?;
    }
    if let Some(matching) = &fetcher.match_pointer {
        let items = node.as_array().ok_or_else(|| {
            FetchError::Mapping("`match` needs the selected value to be an array".into())
        })?;
        node = items
            .iter()
            .find(|item| match item.pointer(matching) {
                Some(Value::String(s)) => s == key,
                Some(Value::Number(n)) => {
                    key.parse::<serde_json::Number>().ok().as_ref() == Some(n)
                }
                Some(_) => false,
                None => false,
            })
            .ok_or_else(|| {
                FetchError::Mapping(format!("no entry of the answer has {matching} = \"{key}\""))
            })?;
    }
    Ok(node)
}

/// Applies the mapping to `deposit`. Every mapped pointer must exist in the record;
/// a field whose current value differs from what the last fetch wrote is kept unless
/// `force`.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    name: &str,
    fetcher: &FetcherSettings,
    deposit: &Value,
    record: &Value,
    key: &str,
    source: &str,
    now: &str,
    force: bool,
) -> Result<Fetched, FetchError> {
    let misses: Vec<String> = fetcher
        .map
        .iter()
        .filter(|(_, from)| record.pointer(from).is_none())
        .map(|(to, from)| format!("{from} (for {to})"))
        .collect();
    if !misses.is_empty() {
        return Err(FetchError::Mapping(format!(
            "the answer from {source} has no {}; fix fetchers.{name}.map or check the key",
            misses.join(", ")
        )));
    }
    let previous = deposit
        .pointer(&format!("/_fetched_from/{}/values", escape_token(name)))
        .cloned()
        .unwrap_or(Value::Null);
    let mut out = deposit.clone();
    let mut updated = Vec::new();
    let mut kept = Vec::new();
    let mut values = serde_json::Map::new();
    for (to, from) in &fetcher.map {
        let fetched = record.pointer(from).cloned().unwrap_or(Value::Null);
        let current = deposit.pointer(to);
        let last = previous.get(to);
        // A list is merged, never replaced: every item already there stays (a fetch
        // cannot tell an item a person wrote from one an earlier fetch brought, so it
        // removes none), and the fetched items that are missing are added after them.
        if let (Some(Value::Array(mine)), Value::Array(theirs)) = (current, &fetched) {
            let mut merged: Vec<Value> = mine.clone();
            for item in theirs {
                if !merged.contains(item) {
                    merged.push(item.clone());
                }
            }
            let merged = Value::Array(merged);
            if current != Some(&merged) {
                set_pointer(&mut out, to, merged)
                    .map_err(|e| FetchError::Mapping(format!("fetchers.{name}.map: {e}")))?;
                updated.push(to.clone());
            }
            values.insert(to.clone(), fetched);
            continue;
        }
        // Only a value that differs from what the last fetch wrote is the user's edit;
        // the first fetch fills every mapped field (that is what was asked for).
        let edited = matches!((current, last), (Some(now), Some(was)) if now != was);
        if edited && !force {
            kept.push(to.clone());
            values.insert(to.clone(), last.cloned().unwrap_or(Value::Null));
            continue;
        }
        if current != Some(&fetched) {
            set_pointer(&mut out, to, fetched.clone())
                .map_err(|e| FetchError::Mapping(format!("fetchers.{name}.map: {e}")))?;
            updated.push(to.clone());
        }
        values.insert(to.clone(), fetched);
    }
    let record_of_fetch = json!({
        "key": key,
        "source": source,
        "fetched": now,
        "values": Value::Object(values),
    });
    set_pointer(
        &mut out,
        &format!("/_fetched_from/{}", escape_token(name)),
        record_of_fetch,
    )
    .map_err(FetchError::Mapping)?;
    Ok(Fetched {
        source: source.to_string(),
        deposit: out,
        updated,
        kept,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetcher() -> FetcherSettings {
        FetcherSettings {
            map: [
                ("/basic_info/analysis_name".to_string(), "/name".to_string()),
                ("/basic_info/status".to_string(), "/status".to_string()),
            ]
            .into_iter()
            .collect(),
            select: Some("/{key}".into()),
            ..FetcherSettings::default()
        }
    }

    #[test]
    fn selects_by_key_and_by_match() {
        let answer = json!({"A/B": {"name": "x"}});
        assert_eq!(select(&fetcher(), &answer, "A/B").unwrap()["name"], "x");
        let list = json!([{"ref_code": "ANA-1", "t": 1}, {"ref_code": "ANA-2", "t": 2}]);
        let by_code = FetcherSettings {
            match_pointer: Some("/ref_code".into()),
            ..FetcherSettings::default()
        };
        assert_eq!(select(&by_code, &list, "ANA-2").unwrap()["t"], 2);
        assert!(select(&by_code, &list, "ANA-3").is_err());
    }

    #[test]
    fn refetching_keeps_user_edits_unless_forced() {
        let record = json!({"name": "Analysis", "status": "1 - in preparation"});
        let first = apply(
            "lhcb",
            &fetcher(),
            &json!({}),
            &record,
            "k",
            "f.json",
            "t1",
            false,
        )
        .unwrap();
        assert_eq!(first.updated.len(), 2);
        assert_eq!(first.deposit["basic_info"]["analysis_name"], "Analysis");
        assert_eq!(first.deposit["_fetched_from"]["lhcb"]["key"], "k");

        // The user edits the name; the source changes the status.
        let mut edited = first.deposit.clone();
        edited["basic_info"]["analysis_name"] = "My name".into();
        let newer = json!({"name": "Analysis", "status": "2 - done"});
        let second = apply(
            "lhcb",
            &fetcher(),
            &edited,
            &newer,
            "k",
            "f.json",
            "t2",
            false,
        )
        .unwrap();
        assert_eq!(second.kept, ["/basic_info/analysis_name"]);
        assert_eq!(second.updated, ["/basic_info/status"]);
        assert_eq!(second.deposit["basic_info"]["analysis_name"], "My name");
        assert_eq!(second.deposit["basic_info"]["status"], "2 - done");

        let forced = apply(
            "lhcb",
            &fetcher(),
            &edited,
            &newer,
            "k",
            "f.json",
            "t2",
            true,
        )
        .unwrap();
        assert_eq!(forced.deposit["basic_info"]["analysis_name"], "Analysis");
    }

    #[test]
    fn a_fetched_list_is_merged_with_what_a_person_wrote() {
        let mut fetcher = fetcher();
        fetcher.map = [("/keywords".to_string(), "/keywords".to_string())]
            .into_iter()
            .collect();
        let mine = json!({"keywords": ["ttbar", "top quark"]});
        let first = apply(
            "cadi",
            &fetcher,
            &mine,
            &json!({"keywords": ["top quark", "Run 3"]}),
            "k",
            "f",
            "t1",
            false,
        )
        .unwrap();
        assert_eq!(
            first.deposit["keywords"],
            json!(["ttbar", "top quark", "Run 3"])
        );
        // The source drops `Run 3` and adds `13.6 TeV`: nothing already there goes.
        let second = apply(
            "cadi",
            &fetcher,
            &first.deposit,
            &json!({"keywords": ["13.6 TeV"]}),
            "k",
            "f",
            "t2",
            false,
        )
        .unwrap();
        assert_eq!(
            second.deposit["keywords"],
            json!(["ttbar", "top quark", "Run 3", "13.6 TeV"])
        );
    }

    #[test]
    fn mapping_misses_are_errors() {
        let e = apply(
            "x",
            &fetcher(),
            &json!({}),
            &json!({"name": "n"}),
            "k",
            "src",
            "t",
            false,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("has no /status (for /basic_info/status)"),
            "{e}"
        );
    }
}
