//! One request's verdict: may the holder of this token read this path of the internal
//! site?
//!
//! - no token, an unknown one, a revoked or an expired one: 401;
//! - the token's person is no longer in access.toml's `[people]`: 403;
//! - a path of one deposit (`records/<id>/`, `drafts/<id>/`, `files/<id>/`,
//!   `api/records/<id>/`, `api/deposits/<id>/`): the person must hold deposit-read
//!   or more on it (owners, `_access`, archive admins, or a public deposit), as it
//!   stands on the build revision (or, when it is no longer there, as last
//!   published); otherwise 403;
//! - any other path of the site (home, listings, search, schemas, assets): granted.
//!
//! The path judged is the one the web server will serve: nginx's `$uri`, which it has
//! already percent-decoded and normalised. A path that is not in that form (`..`,
//! `//`, `%`, a backslash, control characters) is refused rather than interpreted,
//! so that the backend can never judge one file while nginx serves another.
//!
//! Rules (capsule.toml, access.toml) are read from the default branch, as the hook
//! reads them, anew for every request: a change to access.toml or to a deposit's
//! `_access` applies at once.

use std::path::Path;
use std::time::SystemTime;

use git2::{Oid, Repository};
use serde::Serialize;
use serde_json::Value;

use crate::access::{DepositAccess, Level};
use crate::archive::GitTree;
use crate::hook::ArchiveState;

use super::{TokenState, TokenStore};

/// What the web server is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// 204: serve the request.
    Granted,
    /// 401: no usable token (none, unknown, revoked, expired).
    Unauthenticated,
    /// 403: a valid token whose person may not read this.
    Forbidden,
    /// 400: the request to the backend itself is malformed.
    BadRequest,
    /// 500: the backend could not decide (unreadable store or archive); refused.
    Failed,
}

impl Verdict {
    pub fn status(self) -> u16 {
        match self {
            Verdict::Granted => 204,
            Verdict::Unauthenticated => 401,
            Verdict::Forbidden => 403,
            Verdict::BadRequest => 400,
            Verdict::Failed => 500,
        }
    }
}

/// A verdict with what it was about. It names the token by its id, never the token.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub verdict: Verdict,
    pub path: String,
    pub token_id: Option<String>,
    pub user: Option<String>,
    pub reason: String,
}

impl Decision {
    fn new(verdict: Verdict, path: &str, reason: impl Into<String>) -> Decision {
        Decision {
            verdict,
            path: path.to_string(),
            token_id: None,
            user: None,
            reason: reason.into(),
        }
    }
}

/// What `path` (below the site's root, without a leading `/`) is about.
#[derive(Debug, PartialEq, Eq)]
pub enum PathKind<'a> {
    /// A page or file of one deposit.
    Deposit(&'a str),
    /// A page or file about no single deposit.
    Shared,
}

/// Sorts a site path into one deposit's or a shared one; `Err` for a path that is not
/// in the normalised form nginx's `$uri` has.
pub fn deposit_of_path(path: &str) -> Result<PathKind<'_>, String> {
    if path.contains("//")
        || path
            .chars()
            .any(|c| c.is_control() || matches!(c, '%' | '\\' | '?' | '#'))
    {
        return Err(format!("`{path}` is not a normalised path"));
    }
    let segments: Vec<&str> = path.split('/').collect();
    if segments.iter().any(|s| *s == "." || *s == "..") {
        return Err(format!("`{path}` is not a normalised path"));
    }
    let id = match segments.as_slice() {
        ["records" | "drafts" | "files", id, ..] => *id,
        ["api", "records", id] if is_list_page(id) => return Ok(PathKind::Shared),
        ["api", "records" | "deposits", id, ..] => *id,
        _ => return Ok(PathKind::Shared),
    };
    if id.is_empty() {
        return Ok(PathKind::Shared);
    }
    crate::deposit::check_id(id).map_err(|e| format!("`{path}`: {e}"))?;
    Ok(PathKind::Deposit(id))
}

/// `index.json` and `index-<k>.json` of `api/records/`: the pages of the record list.
fn is_list_page(name: &str) -> bool {
    name == "index.json"
        || name
            .strip_prefix("index-")
            .and_then(|r| r.strip_suffix(".json"))
            .is_some_and(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()))
}

/// Decides one request: `uri` is the path the web server will serve (with the site's
/// `site_path` prefix, e.g. `/` or `/internal/`), `token` what the client presented.
/// `rev` names the revision the site was built from (None: the default branch).
pub fn check_request(
    store: &TokenStore,
    archive: &Path,
    rev: Option<&str>,
    site_path: &str,
    uri: &str,
    token: Option<&str>,
    now: SystemTime,
) -> Decision {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Decision::new(Verdict::Unauthenticated, uri, "no token");
    };
    let record = match store.find(token) {
        Ok(Some(record)) => record,
        Ok(None) => return Decision::new(Verdict::Unauthenticated, uri, "unknown token"),
        Err(e) => return Decision::new(Verdict::Failed, uri, e.to_string()),
    };
    let mut decision = Decision::new(Verdict::Granted, uri, "");
    decision.token_id = Some(record.id.clone());
    decision.user = Some(record.user.clone());
    let refuse = |mut d: Decision, verdict: Verdict, reason: String| {
        d.verdict = verdict;
        d.reason = reason;
        d
    };
    match record.state(now) {
        TokenState::Active => {}
        state => {
            return refuse(
                decision,
                Verdict::Unauthenticated,
                format!("token {}", state.as_str()),
            )
        }
    }
    let Some(path) = uri.strip_prefix(site_path).or_else(|| {
        // `/internal` for the site at `/internal/`.
        (format!("{uri}/") == site_path).then_some("")
    }) else {
        return refuse(
            decision,
            Verdict::Forbidden,
            format!("`{uri}` is not under the site's path {site_path}"),
        );
    };
    let kind = match deposit_of_path(path) {
        Ok(kind) => kind,
        Err(reason) => return refuse(decision, Verdict::Forbidden, reason),
    };
    match judge(archive, rev, &record.user, &kind) {
        Ok(Ok(reason)) => {
            decision.reason = reason;
            decision
        }
        Ok(Err(reason)) => refuse(decision, Verdict::Forbidden, reason),
        Err(e) => refuse(
            decision,
            Verdict::Failed,
            format!("reading the archive: {e}"),
        ),
    }
}

/// `Ok(Ok(why))` grants, `Ok(Err(why))` refuses.
fn judge(
    archive: &Path,
    rev: Option<&str>,
    user: &str,
    kind: &PathKind<'_>,
) -> Result<Result<String, String>, String> {
    let repo = Repository::open(archive).map_err(|e| e.message().to_string())?;
    let state = ArchiveState::before_push(&repo).map_err(|e| e.to_string())?;
    if !state.access.knows(user) {
        return Ok(Err(format!(
            "{user} is no longer in access.toml's [people]"
        )));
    }
    let PathKind::Deposit(id) = kind else {
        return Ok(Ok(format!("{user} is a member")));
    };
    if state
        .access
        .matches_any(user, &state.settings.policy.admins)
    {
        return Ok(Ok(format!("{user} is an archive admin")));
    }
    let at = match rev {
        Some(spec) => Some(
            repo.revparse_single(spec)
                .and_then(|o| o.peel_to_commit())
                .map_err(|e| format!("`{spec}`: {}", e.message()))?
                .id(),
        ),
        None => state.base,
    };
    let Some(deposit) = deposit_now(&repo, at, id)? else {
        return Ok(Err(format!("no deposit {id} on the build revision")));
    };
    let rights = DepositAccess::of(&deposit);
    if rights.is_public() {
        return Ok(Ok(format!("{id} is public")));
    }
    let level = rights.level(&state.access, user);
    if level >= Level::Read {
        Ok(Ok(format!("{user} holds {} on {id}", level.key())))
    } else {
        Ok(Err(format!("{user} may not read {id}")))
    }
}

/// The deposit as the site shows it: at the build revision, else as last published.
fn deposit_now(repo: &Repository, at: Option<Oid>, id: &str) -> Result<Option<Value>, String> {
    let read = |commit: Oid| -> Result<Option<Value>, String> {
        let tree = GitTree::at_commit(repo, commit).map_err(|e| e.message().to_string())?;
        match tree
            .read_deposit_file(id, "deposit.json")
            .map_err(|e| e.message().to_string())?
        {
            // A deposit that cannot be read grants nothing.
            Some(bytes) => Ok(Some(crate::json::from_bytes(&bytes).unwrap_or(Value::Null))),
            None => Ok(None),
        }
    };
    if let Some(commit) = at {
        if let Some(deposit) = read(commit)? {
            return Ok(Some(deposit));
        }
    }
    let versions = crate::record::versions_of(repo, id).map_err(|e| e.message().to_string())?;
    match versions.last() {
        Some(latest) => read(latest.commit),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_sorted_into_deposits_and_shared_pages() {
        use PathKind::*;
        for (path, kind) in [
            ("api/deposits/higgs", Deposit("higgs")),
            ("api/deposits/higgs/index.json", Deposit("higgs")),
            ("api/records/higgs/v2/index.json", Deposit("higgs")),
            ("records/higgs/", Deposit("higgs")),
            ("drafts/higgs/index.html", Deposit("higgs")),
            ("files/higgs/v1/plots/a.txt", Deposit("higgs")),
            ("api/records/index.json", Shared),
            ("api/records/index-3.json", Shared),
            ("api/records/", Shared),
            ("index.html", Shared),
            ("", Shared),
            ("browse/all/", Shared),
            ("search/d/3.js", Shared),
        ] {
            assert_eq!(deposit_of_path(path), Ok(kind), "{path}");
        }
        for path in [
            "api/deposits/../records/x",
            "records//x",
            "records/x%2f",
            "drafts/./x",
            "drafts/a b/",
            "records/x\\y",
        ] {
            assert!(deposit_of_path(path).is_err(), "{path}");
        }
    }
}
