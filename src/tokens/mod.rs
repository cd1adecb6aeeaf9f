//! Access tokens for an internal site, the way CAP's API takes them
//! (`/api/deposits/<id>?access_token=TOKEN`, or `Authorization: Bearer TOKEN`).
//!
//! ```text
//! store   a server-side JSON file outside any work tree: per token its id, person,
//!         note, SHA-256, creation, expiry and revocation; never the token itself
//! check   (`check`) a request's path and token -> grant, 401 or 403, judged from the
//!         archive's access rules at the build revision
//! serve   (`http`) a strict, bounded HTTP/1.x listener on loopback that answers a web
//!         server's `auth_request` subrequests with `check`'s verdict
//! ```
//!
//! A token is 32 random bytes from the operating system, written as `capsule_` and 43
//! base64url characters: high-entropy, so an unsalted SHA-256 is enough to store it
//! (nothing to brute-force), and the prefix lets secret scanners spot a leaked one.
//! The token is shown once, when it is issued; a lookup hashes what was presented and
//! compares it with every stored hash in constant time.
//!
//! This module never prints and never logs a token: [`Secret`] hides it from `Debug`,
//! and verdicts name a token by its id.

mod check;
mod http;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use check::{check_request, deposit_of_path, Decision, PathKind, Verdict};
pub use http::{serve, AuthRequest, ServeLimits};

/// What every token starts with.
pub const TOKEN_PREFIX: &str = "capsule_";
/// The environment variable that names the token store when `--store` does not.
pub const STORE_ENV: &str = "CAPSULE_TOKENS";
/// Where the store lives by default, inside the repository's git folder (which git
/// never tracks).
pub const DEFAULT_STORE: &str = "capsule/tokens.json";

const RANDOM_BYTES: usize = 32;
/// base64url without padding of [`RANDOM_BYTES`].
const RANDOM_CHARS: usize = 43;
/// A store larger than this is refused rather than read (a token is ~250 bytes).
const MAX_STORE_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a token store: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{0}")]
    Refused(String),
    #[error("the operating system gave no random bytes: {0}")]
    Random(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TokenError + '_ {
    move |source| TokenError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A token in clear: only ever held in memory, between issuing and printing it once.
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// One issued token, as the store keeps it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TokenRecord {
    /// Public name of the token (`tok-` and 8 hex digits): for lists, logs, revoking.
    pub id: String,
    /// The person it reads as: a user name of access.toml's `[people]`.
    pub user: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// SHA-256 of the token, lower-case hex.
    pub sha256: String,
    /// RFC 3339, UTC.
    pub created: String,
    #[serde(default)]
    pub expires: Option<String>,
    #[serde(default)]
    pub revoked: Option<String>,
}

/// Whether a token may be used now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenState {
    Active,
    Expired,
    Revoked,
}

impl TokenState {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenState::Active => "active",
            TokenState::Expired => "expired",
            TokenState::Revoked => "revoked",
        }
    }
}

impl TokenRecord {
    pub fn state(&self, now: SystemTime) -> TokenState {
        if self.revoked.is_some() {
            return TokenState::Revoked;
        }
        match self.expires.as_deref().map(humantime::parse_rfc3339) {
            None => TokenState::Active,
            Some(Ok(at)) if now < at => TokenState::Active,
            // An expiry that cannot be read fails closed.
            Some(_) => TokenState::Expired,
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreFile {
    version: u32,
    tokens: Vec<TokenRecord>,
}

/// Which tokens `revoke` ends.
#[derive(Debug, Clone)]
pub enum RevokeWhich {
    /// One token, by its id.
    Id(String),
    /// Every token of one person.
    User(String),
}

/// The token file of one server.
#[derive(Debug, Clone)]
pub struct TokenStore {
    path: PathBuf,
}

impl TokenStore {
    pub fn at(path: impl Into<PathBuf>) -> TokenStore {
        TokenStore { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Refuses a store inside a git work tree (outside its git folder): a file there
    /// can be committed, and the hashes of live tokens have no place in history.
    pub fn refuse_if_in_work_tree(&self) -> Result<(), TokenError> {
        let absolute = std::path::absolute(&self.path).map_err(io(&self.path))?;
        let mut dir = absolute.parent();
        // The nearest existing folder decides (the store's own may not exist yet).
        while let Some(d) = dir {
            if d.is_dir() {
                break;
            }
            dir = d.parent();
        }
        let Some(dir) = dir else { return Ok(()) };
        let Ok(repo) = git2::Repository::discover(dir) else {
            return Ok(());
        };
        let Some(workdir) = repo.workdir() else {
            return Ok(());
        };
        let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
        let (dir, workdir, git_dir) = (canonical(dir), canonical(workdir), canonical(repo.path()));
        if dir.starts_with(&workdir) && !dir.starts_with(&git_dir) {
            return Err(TokenError::Refused(format!(
                "{} is inside the work tree of {}, where git could track it; keep the token store outside (the default is {DEFAULT_STORE} in the server's git folder, or choose a path with --store or {STORE_ENV})",
                absolute.display(),
                workdir.display()
            )));
        }
        Ok(())
    }

    fn load(&self) -> Result<StoreFile, TokenError> {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(StoreFile {
                    version: 1,
                    tokens: Vec::new(),
                })
            }
            Err(e) => return Err(io(&self.path)(e)),
        };
        let size = file.metadata().map_err(io(&self.path))?.len();
        if size > MAX_STORE_BYTES {
            return Err(TokenError::Corrupt {
                path: self.path.clone(),
                reason: format!("{size} bytes, more than the {MAX_STORE_BYTES} a store may hold"),
            });
        }
        let store: StoreFile =
            serde_json::from_reader(std::io::BufReader::new(file)).map_err(|e| {
                TokenError::Corrupt {
                    path: self.path.clone(),
                    reason: e.to_string(),
                }
            })?;
        if store.version != 1 {
            return Err(TokenError::Corrupt {
                path: self.path.clone(),
                reason: format!("version {} (this capsule reads version 1)", store.version),
            });
        }
        Ok(store)
    }

    /// Writes the whole store: a private temporary file beside it, then a rename, so
    /// a reader sees the old store or the new one, never half of one.
    fn save(&self, store: &StoreFile) -> Result<(), TokenError> {
        let dir = self.dir();
        let mut tmp = tempfile::Builder::new()
            .prefix(".tokens-")
            .tempfile_in(&dir)
            .map_err(io(&dir))?;
        // tempfile creates the file readable by its owner only (0600).
        let mut bytes = serde_json::to_vec_pretty(store).expect("the store serialises");
        bytes.push(b'\n');
        tmp.write_all(&bytes).map_err(io(tmp.path()))?;
        tmp.as_file().sync_all().map_err(io(tmp.path()))?;
        tmp.persist(&self.path)
            .map_err(|e| io(&self.path)(e.error))?;
        Ok(())
    }

    fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// Runs `change` on the store under an exclusive lock (a `.lock` file beside it),
    /// so two admins issuing at once cannot lose each other's token.
    fn update<T>(
        &self,
        change: impl FnOnce(&mut StoreFile) -> Result<T, TokenError>,
    ) -> Result<T, TokenError> {
        let dir = self.dir();
        create_private_dir(&dir)?;
        let lock_path = self.path.with_extension("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        lock.lock().map_err(io(&lock_path))?;
        let mut store = self.load()?;
        let out = change(&mut store)?;
        self.save(&store)?;
        drop(lock);
        Ok(out)
    }

    /// Every token, issued first first.
    pub fn list(&self) -> Result<Vec<TokenRecord>, TokenError> {
        Ok(self.load()?.tokens)
    }

    /// Issues a new token for `user`, valid for `valid_for` (None: until revoked).
    pub fn issue(
        &self,
        user: &str,
        note: &str,
        valid_for: Option<Duration>,
        now: SystemTime,
    ) -> Result<(TokenRecord, Secret), TokenError> {
        if user.is_empty() || user.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(TokenError::Refused(format!(
                "`{user}` is not a user name (an entry of access.toml's [people])"
            )));
        }
        let secret = random_token()?;
        let record = self.update(|store| {
            let id = loop {
                let mut bytes = [0u8; 4];
                getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
                let id = format!("tok-{}", hex(&bytes));
                if !store.tokens.iter().any(|t| t.id == id) {
                    break id;
                }
            };
            let record = TokenRecord {
                id,
                user: user.to_string(),
                note: note.to_string(),
                sha256: hex(&Sha256::digest(secret.0.as_bytes())),
                created: rfc3339(now),
                expires: valid_for.map(|d| rfc3339(now + d)),
                revoked: None,
            };
            store.tokens.push(record.clone());
            Ok(record)
        })?;
        Ok((record, secret))
    }

    /// Revokes tokens; returns those that were active and are revoked now. A token
    /// stays in the store, revoked, so that lists show what was issued.
    pub fn revoke(
        &self,
        which: &RevokeWhich,
        now: SystemTime,
    ) -> Result<Vec<TokenRecord>, TokenError> {
        self.update(|store| {
            let matches = |t: &TokenRecord| match which {
                RevokeWhich::Id(id) => &t.id == id,
                RevokeWhich::User(user) => &t.user == user,
            };
            if !store.tokens.iter().any(matches) {
                return Err(TokenError::Refused(match which {
                    RevokeWhich::Id(id) => {
                        format!("no token has the id {id} (`capsule token list` shows them)")
                    }
                    RevokeWhich::User(user) => format!("{user} holds no token"),
                }));
            }
            let mut revoked = Vec::new();
            for token in store.tokens.iter_mut().filter(|t| matches(t)) {
                if token.revoked.is_none() {
                    token.revoked = Some(rfc3339(now));
                    revoked.push(token.clone());
                }
            }
            Ok(revoked)
        })
    }

    /// The token `presented` stands for, if it is one of the store's (whatever its
    /// state: the caller refuses revoked and expired ones). Reads the store anew, so
    /// a revocation takes effect with the next request.
    pub fn find(&self, presented: &str) -> Result<Option<TokenRecord>, TokenError> {
        if !looks_like_token(presented) {
            return Ok(None);
        }
        let digest = Sha256::digest(presented.as_bytes());
        let mut found = None;
        // Every stored hash is compared, in constant time, whatever matched before.
        for token in self.load()?.tokens {
            let stored = unhex(&token.sha256).unwrap_or_default();
            let same: bool = stored.len() == digest.len() && bool::from(stored.ct_eq(&digest));
            if same && found.is_none() {
                found = Some(token);
            }
        }
        Ok(found)
    }
}

/// Whether `text` has the form of a token; anything else is refused unread.
fn looks_like_token(text: &str) -> bool {
    text.strip_prefix(TOKEN_PREFIX).is_some_and(|rest| {
        rest.len() == RANDOM_CHARS
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

fn random_token() -> Result<Secret, TokenError> {
    use base64::Engine;
    let mut bytes = [0u8; RANDOM_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    Ok(Secret(format!("{TOKEN_PREFIX}{text}")))
}

fn create_private_dir(dir: &Path) -> Result<(), TokenError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io(dir))
}

fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, TokenStore) {
        let dir = tempfile::TempDir::new().unwrap();
        let store = TokenStore::at(dir.path().join("t/tokens.json"));
        (dir, store)
    }

    #[test]
    fn a_token_is_found_by_itself_only_and_stored_only_as_its_hash() {
        let (_dir, store) = store();
        let now = SystemTime::now();
        let (record, secret) = store.issue("alice", "laptop", None, now).unwrap();
        assert!(looks_like_token(secret.expose()), "{}", secret.expose());
        assert_eq!(format!("{secret:?}"), "Secret(…)");
        let text = std::fs::read_to_string(store.path()).unwrap();
        assert!(!text.contains(secret.expose()));
        assert!(text.contains(&record.sha256));
        assert_eq!(store.find(secret.expose()).unwrap(), Some(record.clone()));
        let mut other = secret.expose().to_string();
        let last = other.pop().unwrap();
        other.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(store.find(&other).unwrap(), None);
        assert_eq!(store.find("").unwrap(), None);
        assert_eq!(store.find(&record.sha256).unwrap(), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the store is private: {mode:o}");
        }
    }

    #[test]
    fn revoked_and_expired_tokens_are_not_active() {
        let (_dir, store) = store();
        let now = SystemTime::now();
        let (a, _) = store
            .issue("alice", "", Some(Duration::from_secs(60)), now)
            .unwrap();
        let (b, _) = store.issue("alice", "", None, now).unwrap();
        assert_eq!(a.state(now), TokenState::Active);
        assert_eq!(a.state(now + Duration::from_secs(61)), TokenState::Expired);
        let revoked = store.revoke(&RevokeWhich::Id(b.id.clone()), now).unwrap();
        assert_eq!(revoked.len(), 1);
        let listed = store.list().unwrap();
        assert_eq!(listed[1].state(now), TokenState::Revoked);
        assert_eq!(listed[0].state(now), TokenState::Active);
        // Revoking again changes nothing; an unknown id is an error.
        assert!(store
            .revoke(&RevokeWhich::Id(b.id), now)
            .unwrap()
            .is_empty());
        assert!(store.revoke(&RevokeWhich::Id("tok-0".into()), now).is_err());
        let all = store
            .revoke(&RevokeWhich::User("alice".into()), now)
            .unwrap();
        assert_eq!(all.len(), 1);
    }

    #[test]
    fn a_store_inside_a_work_tree_is_refused() {
        let dir = tempfile::TempDir::new().unwrap();
        git2::Repository::init(dir.path()).unwrap();
        let inside = TokenStore::at(dir.path().join("secrets/tokens.json"));
        assert!(inside.refuse_if_in_work_tree().is_err());
        let git_dir = TokenStore::at(dir.path().join(".git/capsule/tokens.json"));
        git_dir.refuse_if_in_work_tree().unwrap();
    }
}
