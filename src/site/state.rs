//! What a build leaves for the next one: the incremental state.
//!
//! It is split so that a rebuild after one change rewrites a few small files, not one
//! that grows with the archive (it was 71 MB at 100k records):
//!
//! ```text
//! .capsule-site.json          the top: format, options fingerprint, revision, search
//!                             index keys, totals, and the digest of every part
//! .capsule-site/r-<xx>.json   the records whose key hashes to <xx> (256 parts)
//! .capsule-site/p-<xx>.json   the keys of the shared pages whose folder hashes to <xx>
//!                             (a listing's pages are together: a change touches few)
//! ```
//!
//! A part is written only when its bytes change. The top is moved into place last
//! (see `write`) and names each part's digest: a state whose parts do not match their
//! digests (a build interrupted while moving files) is not used, and the next build
//! is a full one.
//!
//! The state is written into the public site: a deposit this build may not show is
//! kept under a digest of its id ([`hidden_key`]), never its id.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::SiteError;
use super::model::RecordSummary;
use super::util::sha256_hex;
use super::write::{Output, MANIFEST};

/// Bumped when the state's shape changes: a state of another format is not used.
const FORMAT: u32 = 3;
/// The folder of the parts, beside the top file.
pub const FOLDER: &str = ".capsule-site";
/// Parts per kind: the first two hex digits of a digest.
const PARTS: usize = 256;

/// The whole state, in memory.
#[derive(Debug, Default)]
pub struct State {
    pub global: String,
    pub rev: String,
    /// By id, or by [`hidden_key`] for a deposit the build did not show.
    pub records: BTreeMap<String, RecordState>,
    /// Each shared page's key, by path.
    pub pages: BTreeMap<String, String>,
    pub search_shards: Vec<String>,
    pub search_docs: usize,
    pub totals: Totals,
    /// Digest of each part file as read (name -> sha256), to write only what changed;
    /// empty in a state about to be written.
    pub parts: BTreeMap<String, String>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Totals {
    pub pages: usize,
    pub files: usize,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordState {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<u32>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub commit: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<RecordSummary>,
    /// The summary's digest, as pages are keyed by it (see `pages::summary_digest`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digest: String,
    /// (version, date) of every shown version, for the feed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<(u32, String)>,
}

#[cfg(test)]
impl RecordState {
    /// A record's state with only its key, for tests of what a rebuild keeps.
    pub(crate) fn keyed(key: &str) -> RecordState {
        RecordState {
            key: key.into(),
            doc: None,
            commit: String::new(),
            summary: None,
            digest: String::new(),
            versions: Vec::new(),
        }
    }
}

/// A JSON object's entries in the order written: a part is parsed straight into the
/// list its records are merged from, not into a map of its own first.
struct Entries<V>(Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<V> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Visit<V> {
            type Value = Entries<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(entry) = map.next_entry()? {
                    out.push(entry);
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
    }
}

/// Records and page keys of some of the parts.
type Parsed = (BTreeMap<String, RecordState>, BTreeMap<String, String>);

/// The top file.
#[derive(Serialize, Deserialize)]
struct Top {
    format: u32,
    generator: String,
    global: String,
    rev: String,
    search_shards: Vec<String>,
    search_docs: usize,
    totals: Totals,
    parts: BTreeMap<String, String>,
}

/// Where the state keeps a record: by id, or, for a deposit this build may not show,
/// by a digest of its id, so that not even the id of a restricted deposit is written
/// into a public site.
pub fn hidden_key(id: &str) -> String {
    format!("~{}", &sha256_hex(id.as_bytes())[..20])
}

/// The part a key goes to: `r-<xx>.json` or `p-<xx>.json`.
fn part_of(kind: char, key: &str) -> String {
    format!("{kind}-{}.json", &sha256_hex(key.as_bytes())[..2])
}

/// The parts of the state a build may have changed since the previous one: those of
/// the records rendered again (under their id and their [`hidden_key`]: a record that
/// became hidden moves), those of the previous records not carried over (rendered
/// again or gone), and those of the folders of shared pages whose key changed,
/// appeared or went. Records the build did not render keep the state the previous
/// build left (moved over as read), so their parts are as read.
#[derive(Debug)]
pub enum Touched {
    /// A full build: every part.
    All,
    Parts(BTreeSet<String>),
}

impl Touched {
    /// The parts of the records `rendered` (by id), of the state's records `left`
    /// (as kept: by id or hidden key) and of the pages whose key differs between
    /// `previous` and `pages` (path -> key).
    pub fn of<'a>(
        rendered: impl IntoIterator<Item = &'a str>,
        left: impl IntoIterator<Item = &'a str>,
        previous: &BTreeMap<String, String>,
        pages: &BTreeMap<String, String>,
    ) -> Touched {
        let mut parts = BTreeSet::new();
        for id in rendered {
            parts.insert(part_of('r', id));
            parts.insert(part_of('r', &hidden_key(id)));
        }
        for key in left {
            parts.insert(part_of('r', key));
        }
        let changed_pages = previous
            .iter()
            .filter(|(path, key)| pages.get(*path) != Some(*key))
            .chain(
                pages
                    .iter()
                    .filter(|(path, key)| previous.get(*path) != Some(*key)),
            )
            .map(|(path, _)| path);
        for path in changed_pages {
            parts.insert(part_of('p', folder_of(path)));
        }
        Touched::Parts(parts)
    }

    fn may_change(&self, part: &str) -> bool {
        match self {
            Touched::All => true,
            Touched::Parts(parts) => parts.contains(part),
        }
    }
}

/// The folder a shared page's key is kept under: a listing's pages are together.
fn folder_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(folder, _)| folder)
}

impl State {
    /// The state the previous build in `out` left, if it is whole and of this format.
    pub fn read(out: &Path) -> Option<State> {
        let top: Top = serde_json::from_slice(&std::fs::read(out.join(MANIFEST)).ok()?).ok()?;
        if top.format != FORMAT {
            return None;
        }
        let mut state = State {
            global: top.global,
            rev: top.rev,
            search_shards: top.search_shards,
            search_docs: top.search_docs,
            totals: top.totals,
            ..State::default()
        };
        // The parts are read, checked and parsed on as many threads as there are
        // cores (at 100k records they are 70 MB of JSON, most of a rebuild's CPU);
        // each thread's records come out sorted, and sorted maps merge in one pass.
        let names: Vec<(&String, &String)> = top.parts.iter().collect();
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 4);
        let read_parts = |share: usize| -> Option<Parsed> {
            let mut records: Vec<(String, RecordState)> = Vec::new();
            let mut pages: Vec<(String, String)> = Vec::new();
            for (name, digest) in names.iter().skip(share).step_by(threads) {
                let bytes = std::fs::read(out.join(FOLDER).join(name)).ok()?;
                if sha256_hex(&bytes) != **digest {
                    return None;
                }
                if name.starts_with("r-") {
                    let part: Entries<RecordState> = serde_json::from_slice(&bytes).ok()?;
                    records.extend(part.0);
                } else {
                    let part: Entries<String> = serde_json::from_slice(&bytes).ok()?;
                    pages.extend(part.0);
                }
            }
            // Each part is sorted: the sort merges their runs. (A key written twice,
            // which no build does, keeps one of its values, as a map would.)
            records.sort_by(|a, b| a.0.cmp(&b.0));
            pages.sort_by(|a, b| a.0.cmp(&b.0));
            Some((records.into_iter().collect(), pages.into_iter().collect()))
        };
        let shares: Vec<Option<Parsed>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (1..threads)
                .map(|share| scope.spawn(move || read_parts(share)))
                .collect();
            let mut shares = vec![read_parts(0)];
            shares.extend(handles.into_iter().map(|h| h.join().ok().flatten()));
            shares
        });
        for share in shares {
            let (mut records, mut pages) = share?;
            state.records.append(&mut records);
            state.pages.append(&mut pages);
        }
        state.parts = top.parts;
        Some(state)
    }

    /// The digests of the parts as read; left empty in the state.
    pub fn take_parts(&mut self) -> BTreeMap<String, String> {
        std::mem::take(&mut self.parts)
    }

    /// Writes the parts that differ from `previous` (name -> digest, as read) and the
    /// top; returns the parts of `previous` that no longer exist, to delete. The
    /// files of the state itself are added to `totals.files`.
    ///
    /// `touched`: the parts that may differ from `previous` (see [`Touched`]); any
    /// other part of `previous` keeps its digest without being encoded again: at 100k
    /// records encoding and hashing all of them (70 MB) was a sixth of a rebuild.
    pub fn write(
        &mut self,
        output: &Output,
        previous: &BTreeMap<String, String>,
        touched: &Touched,
    ) -> Result<Vec<String>, SiteError> {
        let mut records: BTreeMap<String, BTreeMap<&str, &RecordState>> = BTreeMap::new();
        for (id, state) in &self.records {
            records
                .entry(part_of('r', id))
                .or_default()
                .insert(id, state);
        }
        let mut pages: BTreeMap<String, BTreeMap<&str, &str>> = BTreeMap::new();
        for (path, key) in &self.pages {
            pages
                .entry(part_of('p', folder_of(path)))
                .or_default()
                .insert(path, key);
        }
        debug_assert!(records.len() <= PARTS && pages.len() <= PARTS);
        let mut parts = BTreeMap::new();
        // Unchanged parts (known to be so) first: their digest is the previous one.
        let unchanged = |name: &String| !touched.may_change(name) && previous.contains_key(name);
        let mut encode = Vec::new();
        for name in records.keys().chain(pages.keys()) {
            if unchanged(name) {
                parts.insert(name.clone(), previous[name].clone());
            } else {
                encode.push(name);
            }
        }
        // In debug builds (the tests) the parts kept are checked against their bytes.
        #[cfg(debug_assertions)]
        for name in records.keys().filter(|n| unchanged(n)) {
            let bytes = serde_json::to_vec(&records[name]).expect("serialises");
            assert_eq!(sha256_hex(&bytes), previous[name], "{name} changed unseen");
        }
        #[cfg(debug_assertions)]
        for name in pages.keys().filter(|n| unchanged(n)) {
            let bytes = serde_json::to_vec(&pages[name]).expect("serialises");
            assert_eq!(sha256_hex(&bytes), previous[name], "{name} changed unseen");
        }
        for name in encode {
            let bytes = match records.get(name) {
                Some(part) => serde_json::to_vec(part),
                None => serde_json::to_vec(&pages[name]),
            };
            let bytes = bytes.map_err(|e| SiteError::Output(format!("{name}: {e}")))?;
            let digest = sha256_hex(&bytes);
            if previous.get(name) != Some(&digest) {
                output.write(&format!("{FOLDER}/{name}"), &bytes)?;
            }
            parts.insert(name.clone(), digest);
        }
        // The top and the parts, less those of the previous state (a full build has
        // none: its previous state is not part of the new site).
        let had_top = usize::from(!previous.is_empty());
        self.totals.files =
            (self.totals.files + parts.len() + 1).saturating_sub(previous.len() + had_top);
        let top = Top {
            format: FORMAT,
            generator: format!("capsule {}", env!("CARGO_PKG_VERSION")),
            global: self.global.clone(),
            rev: self.rev.clone(),
            search_shards: self.search_shards.clone(),
            search_docs: self.search_docs,
            totals: self.totals.clone(),
            parts,
        };
        let bytes = serde_json::to_vec(&top).expect("the state serialises");
        output.write(MANIFEST, &bytes)?;
        Ok(previous
            .keys()
            .filter(|name| !top.parts.contains_key(*name))
            .map(|name| format!("{FOLDER}/{name}"))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pages(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(p, k)| (p.to_string(), k.to_string()))
            .collect()
    }

    #[test]
    fn the_parts_touched_are_those_of_the_records_rendered_or_left_and_of_pages_that_differ() {
        let before = pages(&[
            ("index.html", "a"),
            ("list/index.html", "b"),
            ("gone/index.html", "c"),
            ("same/index.html", "d"),
        ]);
        let after = pages(&[
            ("index.html", "a"),
            ("list/index.html", "B"),
            ("new/index.html", "e"),
            ("same/index.html", "d"),
        ]);
        let Touched::Parts(parts) = Touched::of(["higgs"], ["~0123"], &before, &after) else {
            panic!("an incremental build touches some parts");
        };
        let expected: BTreeSet<String> = [
            part_of('r', "higgs"),
            part_of('r', &hidden_key("higgs")),
            part_of('r', "~0123"),
            part_of('p', "list"),
            part_of('p', "gone"),
            part_of('p', "new"),
        ]
        .into_iter()
        .collect();
        assert_eq!(parts, expected);
        // The root's and `same/`'s pages are as they were (unless they share a part).
        let touched = Touched::Parts(parts);
        for folder in ["", "same"] {
            let part = part_of('p', folder);
            assert_eq!(touched.may_change(&part), expected.contains(&part));
        }
        assert!(Touched::All.may_change(&part_of('p', "")));
    }

    #[test]
    fn a_part_kept_unencoded_keeps_its_digest_and_is_not_written_again() {
        let dir = std::env::temp_dir().join(format!("capsule-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let record = RecordState::keyed;
        let mut state = State {
            records: [
                ("~a".to_string(), record("1")),
                ("~b".to_string(), record("2")),
            ]
            .into_iter()
            .collect(),
            pages: pages(&[("index.html", "x")]),
            ..State::default()
        };
        let full = Output::prepare(&dir.join("site"), false).unwrap();
        state.write(&full, &BTreeMap::new(), &Touched::All).unwrap();
        full.commit(&[]).unwrap();
        let previous = State::read(&dir.join("site")).expect("the state reads back");
        assert_eq!(previous.records.len(), 2);
        // `~b` changes: only its part (and the top) is written.
        state.records.insert("~b".into(), record("3"));
        let output = Output::prepare(&dir.join("site"), true).unwrap();
        let touched = Touched::of([], ["~b"], &previous.pages, &state.pages);
        let files = output.files();
        state.write(&output, &previous.parts, &touched).unwrap();
        assert_eq!(output.files() - files, 2, "one part and the top");
        output.commit(&[]).unwrap();
        let again = State::read(&dir.join("site")).expect("the new state reads back");
        assert_eq!(again.records["~b"].key, "3");
        assert_eq!(again.records["~a"].key, "1");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A state is read whole, from every part on every thread, or not at all: a part
    /// damaged or missing, or a top of another format, and the next build is a full
    /// one.
    #[test]
    fn a_state_reads_back_whole_or_not_at_all() {
        let dir = std::env::temp_dir().join(format!("capsule-state-whole-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let record = RecordState::keyed;
        let mut state = State {
            records: (0..300)
                .map(|i| (format!("rec-{i:03}"), record(&i.to_string())))
                .collect(),
            pages: pages(&[("index.html", "x"), ("browse/all/index.html", "y")]),
            ..State::default()
        };
        let site = dir.join("site");
        let output = Output::prepare(&site, false).unwrap();
        state
            .write(&output, &BTreeMap::new(), &Touched::All)
            .unwrap();
        output.commit(&[]).unwrap();
        let read = State::read(&site).expect("the state reads back");
        assert_eq!(read.records.len(), 300);
        assert!(read
            .records
            .iter()
            .all(|(id, r)| state.records[id].key == r.key));
        assert_eq!(read.pages, state.pages);
        assert!(read.parts.len() > 2, "parts for several threads");

        let part = read.parts.keys().nth(1).unwrap();
        let path = site.join(FOLDER).join(part);
        let bytes = std::fs::read(&path).unwrap();
        let mut damaged = bytes.clone();
        damaged[1] ^= 0x20;
        std::fs::write(&path, damaged).unwrap();
        assert!(State::read(&site).is_none(), "a damaged part");
        std::fs::remove_file(&path).unwrap();
        assert!(State::read(&site).is_none(), "a missing part");
        std::fs::write(&path, &bytes).unwrap();
        assert!(State::read(&site).is_some());
        let top = std::fs::read_to_string(site.join(MANIFEST)).unwrap();
        let other = top.replace(&format!("\"format\":{FORMAT}"), "\"format\":2");
        assert_ne!(other, top);
        std::fs::write(site.join(MANIFEST), other).unwrap();
        assert!(State::read(&site).is_none(), "another format");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
