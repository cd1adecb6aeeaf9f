//! The durable outbox, inside the server's git directory.
//!
//! ```text
//! <git-dir>/capsule/outbox/
//!   queue/<key>.json    waiting to be delivered (again, after a temporary failure)
//!   sent/<key>.json     delivered; kept so that the same key is never queued again
//!   failed/<key>.json   refused for good, with the server's answer (`outbox retry`)
//!   tmp/                files being written
//!   log.jsonl           one line per planning note and delivery attempt
//!   flush.lock          held by the one process that delivers
//! ```
//!
//! Every file is written whole to `tmp/`, flushed to disk, then renamed (or linked,
//! to refuse an existing key) into place, so a crash leaves either the old file or
//! the new one. A key lives in exactly one of queue/, sent/ and failed/; moving it
//! writes the new place before removing the old, so it is never in none.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::rules::Mail;

/// Where the outbox of a server repository lives, relative to its git directory.
pub const OUTBOX_DIR: &str = "capsule/outbox";

/// A mail in the outbox, with its delivery history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The file name (without `.json`): 32 hex digits derived from the Message-ID inputs.
    pub key: String,
    /// `<key@domain>`: the same for every attempt, so a receiver can tell a repeat.
    pub message_id: String,
    /// When it was planned (unix seconds).
    pub created: u64,
    /// What made it, e.g. `publish refs/tags/records/zee/v1 <oid>`.
    pub event: String,
    pub mail: Mail,
    #[serde(default)]
    pub attempts: u32,
    /// Not before this time (unix seconds).
    #[serde(default)]
    pub next_attempt: u64,
    /// The last temporary failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When it was delivered (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered: Option<u64>,
    /// The server's answer to the delivery, or to the permanent failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// Recipients the server has taken the mail for, over all attempts: a later
    /// attempt goes only to the others, so nobody gets it twice.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepted: Vec<String>,
    /// Recipients refused for good (a 5xx answer to RCPT, or temporary refusals
    /// until `[mail] retry_hours` ran out), with the server's answer. The mail still
    /// goes to everyone else; only when nobody took it does the whole mail fail.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<Refusal>,
}

/// One recipient the server would not take, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub address: String,
    pub answer: String,
}

impl Entry {
    /// Every envelope recipient: to, cc and bcc.
    pub fn recipients(&self) -> impl Iterator<Item = &String> {
        self.mail
            .to
            .iter()
            .chain(&self.mail.cc)
            .chain(&self.mail.bcc)
    }

    /// The recipients still to deliver to: neither accepted nor refused yet.
    pub fn pending(&self) -> Vec<String> {
        let done = |a: &str| {
            self.accepted.iter().any(|x| x.eq_ignore_ascii_case(a))
                || self
                    .refused
                    .iter()
                    .any(|r| r.address.eq_ignore_ascii_case(a))
        };
        self.recipients().filter(|a| !done(a)).cloned().collect()
    }
}

/// Which folder an entry is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Queued,
    Sent,
    Failed,
}

impl State {
    fn folder(self) -> &'static str {
        match self {
            State::Queued => "queue",
            State::Sent => "sent",
            State::Failed => "failed",
        }
    }
}

/// One line of `log.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogRecord {
    /// RFC 3339, UTC.
    pub time: String,
    /// `queued`, `sent`, `deferred`, `failed`, `requeued`, `no_recipients`, `not_rendered`, `note`.
    pub what: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    pub detail: String,
}

/// The outbox of one server repository.
#[derive(Debug, Clone)]
pub struct Outbox {
    root: PathBuf,
}

/// Held while delivering: at most one process sends at a time.
#[derive(Debug)]
pub struct FlushLock {
    _file: File,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Unix seconds now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    // Makes a rename or link durable. Not every platform can open a folder.
    match File::open(dir) {
        Ok(f) => f.sync_all().or(Ok(())),
        Err(_) => Ok(()),
    }
}

impl Outbox {
    /// The outbox of the repository whose git directory is `git_dir`.
    pub fn at(git_dir: &Path) -> Outbox {
        Outbox {
            root: git_dir.join(OUTBOX_DIR),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, state: State, key: &str) -> PathBuf {
        self.root.join(state.folder()).join(format!("{key}.json"))
    }

    fn ensure_dirs(&self) -> io::Result<()> {
        for dir in ["queue", "sent", "failed", "tmp"] {
            fs::create_dir_all(self.root.join(dir))?;
        }
        Ok(())
    }

    /// A new file in tmp/ holding `bytes`, flushed to disk.
    fn write_tmp(&self, bytes: &[u8]) -> io::Result<PathBuf> {
        self.ensure_dirs()?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let tmp = self.root.join("tmp").join(format!(
            "{}-{nanos}-{}.tmp",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        let written = file.write_all(bytes).and_then(|_| file.sync_all());
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(tmp)
    }

    /// Replaces (or creates) the file of `entry` in `state`, atomically.
    fn write(&self, state: State, entry: &Entry) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(entry).map_err(io::Error::other)?;
        let tmp = self.write_tmp(&bytes)?;
        let target = self.path(state, &entry.key);
        if let Err(e) = fs::rename(&tmp, &target) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        sync_dir(target.parent().expect("a folder"))
    }

    fn remove(&self, state: State, key: &str) -> io::Result<()> {
        match fs::remove_file(self.path(state, key)) {
            Ok(()) => sync_dir(&self.root.join(state.folder())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Whether a key is in `state`.
    pub fn contains(&self, state: State, key: &str) -> bool {
        self.path(state, key).is_file()
    }

    /// Queues a mail unless its key was ever queued before (queued, sent or failed).
    /// Returns whether it was queued now.
    pub fn enqueue(&self, entry: &Entry) -> io::Result<bool> {
        if self.contains(State::Sent, &entry.key) || self.contains(State::Failed, &entry.key) {
            return Ok(false);
        }
        let bytes = serde_json::to_vec_pretty(entry).map_err(io::Error::other)?;
        let tmp = self.write_tmp(&bytes)?;
        let target = self.path(State::Queued, &entry.key);
        // A link never replaces an existing file: the first planner of a key wins.
        let linked = fs::hard_link(&tmp, &target);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(e),
        }
        sync_dir(&self.root.join("queue"))?;
        // A flush may have delivered the same key between the check above and the
        // link (it writes sent/ before it removes queue/): then this copy goes.
        if self.contains(State::Sent, &entry.key) || self.contains(State::Failed, &entry.key) {
            self.remove(State::Queued, &entry.key)?;
            return Ok(false);
        }
        Ok(true)
    }

    /// Every entry in `state`, oldest first. Files that cannot be read are skipped
    /// (a file being replaced is whole before and after the rename).
    pub fn list(&self, state: State) -> io::Result<Vec<Entry>> {
        let dir = self.root.join(state.folder());
        let read = match fs::read_dir(&dir) {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut entries = Vec::new();
        for item in read {
            let path = item?.path();
            if path.extension().is_some_and(|e| e == "json") {
                if let Ok(bytes) = fs::read(&path) {
                    if let Ok(entry) = serde_json::from_slice::<Entry>(&bytes) {
                        entries.push(entry);
                    }
                }
            }
        }
        entries.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.key.cmp(&b.key)));
        Ok(entries)
    }

    /// How many entries are in `state`, without reading them.
    pub fn count(&self, state: State) -> io::Result<usize> {
        match fs::read_dir(self.root.join(state.folder())) {
            Ok(read) => Ok(read
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .count()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Saves a queued entry after an attempt (attempts, next attempt, last error).
    pub fn update_queued(&self, entry: &Entry) -> io::Result<()> {
        self.write(State::Queued, entry)
    }

    /// Records a delivery: written to sent/ first, then removed from queue/.
    pub fn mark_sent(&self, entry: &Entry) -> io::Result<()> {
        self.write(State::Sent, entry)?;
        self.remove(State::Queued, &entry.key)
    }

    /// Moves a mail aside for good (until `retry`), with the server's answer.
    pub fn mark_failed(&self, entry: &Entry) -> io::Result<()> {
        self.write(State::Failed, entry)?;
        self.remove(State::Queued, &entry.key)
    }

    /// Drops a queue file whose key was already delivered (a crash between the two
    /// steps of [`Outbox::mark_sent`]).
    pub fn drop_delivered(&self, key: &str) -> io::Result<()> {
        self.remove(State::Queued, key)
    }

    /// Puts failed mails back in the queue, due now: all of them, or those whose key
    /// starts with one of `keys`. Queued mails named by `keys` (or all) become due now
    /// too. Returns the keys that became due.
    pub fn retry(&self, keys: &[String]) -> io::Result<Vec<String>> {
        let wanted =
            |key: &str| keys.is_empty() || keys.iter().any(|k| key.starts_with(k.as_str()));
        let mut due = Vec::new();
        for mut entry in self.list(State::Failed)? {
            if !wanted(&entry.key) {
                continue;
            }
            entry.next_attempt = 0;
            entry.last_error = entry.answer.take();
            // Whoever refused it gets another chance: that is what a retry is for.
            entry.refused.clear();
            self.write(State::Queued, &entry)?;
            self.remove(State::Failed, &entry.key)?;
            self.log(
                "requeued",
                Some(&entry.key),
                Some(&entry.event),
                "moved back from failed/ by retry",
            )?;
            due.push(entry.key);
        }
        for mut entry in self.list(State::Queued)? {
            if wanted(&entry.key) && entry.next_attempt > 0 {
                entry.next_attempt = 0;
                self.write(State::Queued, &entry)?;
                due.push(entry.key);
            }
        }
        Ok(due)
    }

    /// Appends one line to log.jsonl (one write, so lines of concurrent writers do
    /// not interleave).
    pub fn log(
        &self,
        what: &str,
        key: Option<&str>,
        event: Option<&str>,
        detail: &str,
    ) -> io::Result<()> {
        fs::create_dir_all(&self.root)?;
        let record = LogRecord {
            time: crate::history::rfc3339(now() as i64),
            what: what.to_string(),
            key: key.map(str::to_string),
            event: event.map(str::to_string),
            detail: detail.to_string(),
        };
        let mut line = serde_json::to_vec(&record).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join("log.jsonl"))?;
        file.write_all(&line)
    }

    /// The log, oldest first (lines that do not parse are skipped).
    pub fn read_log(&self) -> io::Result<Vec<LogRecord>> {
        match fs::read_to_string(self.root.join("log.jsonl")) {
            Ok(text) => Ok(text
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Takes the delivery lock, waiting up to `wait` for another flush to finish.
    /// `None` when it stayed busy.
    pub fn lock(&self, wait: Duration) -> io::Result<Option<FlushLock>> {
        fs::create_dir_all(&self.root)?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join("flush.lock"))?;
        let deadline = Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Some(FlushLock { _file: file })),
                Err(std::fs::TryLockError::WouldBlock) => {
                    if Instant::now() >= deadline {
                        return Ok(None);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str) -> Entry {
        Entry {
            key: key.into(),
            message_id: format!("<{key}@example.org>"),
            created: 1,
            event: "publish refs/tags/records/x/v1 0".into(),
            mail: Mail {
                action: "publish".into(),
                rule: "/config/notifications/actions/publish/0".into(),
                from: "capsule@example.org".into(),
                to: vec!["a@example.org".into()],
                cc: vec![],
                bcc: vec![],
                subject: "s".into(),
                text: Some("t".into()),
                html: None,
                fallback: false,
            },
            attempts: 0,
            next_attempt: 0,
            last_error: None,
            delivered: None,
            answer: None,
            accepted: vec![],
            refused: vec![],
        }
    }

    #[test]
    fn a_key_is_queued_once_and_never_again_after_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::at(dir.path());
        let e = entry("k1");
        assert!(outbox.enqueue(&e).unwrap());
        assert!(!outbox.enqueue(&e).unwrap());
        assert_eq!(
            outbox.list(State::Queued).unwrap(),
            std::slice::from_ref(&e)
        );
        outbox.mark_sent(&e).unwrap();
        assert!(
            !outbox.enqueue(&e).unwrap(),
            "a delivered key is never queued again"
        );
        assert_eq!(outbox.count(State::Queued).unwrap(), 0);
        assert_eq!(outbox.count(State::Sent).unwrap(), 1);
        assert!(fs::read_dir(dir.path().join(OUTBOX_DIR).join("tmp"))
            .unwrap()
            .next()
            .is_none());
    }

    #[test]
    fn failed_mails_come_back_with_retry() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::at(dir.path());
        let mut e = entry("k2");
        outbox.enqueue(&e).unwrap();
        e.answer = Some("550 no such user".into());
        outbox.mark_failed(&e).unwrap();
        assert!(!outbox.enqueue(&e).unwrap());
        assert_eq!(outbox.retry(&["k".into()]).unwrap(), ["k2"]);
        let queued = outbox.list(State::Queued).unwrap();
        assert_eq!(queued[0].last_error.as_deref(), Some("550 no such user"));
        assert_eq!(outbox.count(State::Failed).unwrap(), 0);
        assert_eq!(outbox.read_log().unwrap()[0].what, "requeued");
    }

    #[test]
    fn one_flush_lock_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::at(dir.path());
        let held = outbox.lock(Duration::ZERO).unwrap();
        assert!(held.is_some());
        assert!(outbox.lock(Duration::from_millis(100)).unwrap().is_none());
        drop(held);
        assert!(outbox.lock(Duration::ZERO).unwrap().is_some());
    }
}
