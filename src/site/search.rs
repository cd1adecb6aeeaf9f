//! The browser-side search index: many small files that the search page loads on
//! demand, so the first query costs a few tens of kilobytes whatever the archive's size.
//!
//! ```text
//! search/manifest.js      the shard keys, the number of documents, the chunk size
//! search/t/<hex>.js       a shard: the postings of every term that starts with a key
//! search/d/<n>.js         documents n*CHUNK .. (n+1)*CHUNK-1: id, title, path, facts
//! ```
//!
//! Shards are cut by term prefix (a prefix trie, split until each part is small), so a
//! word and the words it begins can be found in one or a few shards. Every file is a
//! script that hands its data to `capsuleSearch` rather than JSON fetched with XHR:
//! scripts load from any static host *and* from `file://`, where browsers refuse fetch.
//!
//! Why not Pagefind: its indexer parses the rendered HTML again (we already hold the
//! data), pulls an async runtime and an HTML rewriter into the binary, and its
//! WebAssembly search cannot load from `file://`.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{json, Value};

use super::error::SiteError;
use super::fields::is_system_key;
use super::model::RecordSummary;
use super::util::hex;
use super::write::Output;

mod patch;

/// Documents per chunk file: a result page of 10 touches at most 10 small files.
pub const CHUNK: usize = 50;
/// A shard is split by one more character once its encoded postings exceed this.
const SHARD_BYTES: usize = 24 * 1024;

const STOP: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "into", "is", "it", "of",
    "on", "or", "that", "the", "this", "to", "with",
];

/// One searchable document: its terms with weights, and what a result shows.
#[derive(Debug, Clone, Default)]
pub struct SearchDoc {
    pub terms: Terms,
    pub id: String,
    pub title: String,
    pub path: String,
    pub facts: String,
    pub draft: bool,
}

/// A document's terms, sorted, each with its weight: the terms in one string, separated
/// by spaces (a term never holds one), and a weight per term. A full build holds the
/// terms of every record until it writes the index; as a `Vec<(String, u8)>` they
/// took about 40 bytes a term, several times the text.
#[derive(Debug, Clone, Default)]
pub struct Terms {
    text: String,
    weights: Vec<u8>,
}

impl Terms {
    fn from_sorted(list: &[(String, u8)]) -> Terms {
        let mut text = String::with_capacity(list.iter().map(|(t, _)| t.len() + 1).sum());
        for (i, (term, _)) in list.iter().enumerate() {
            if i > 0 {
                text.push(' ');
            }
            text.push_str(term);
        }
        Terms {
            text,
            weights: list.iter().map(|(_, w)| *w).collect(),
        }
    }

    /// `(term, weight)`, in term order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u8)> + '_ {
        self.text
            .split(' ')
            .filter(|t| !t.is_empty())
            .zip(self.weights.iter().copied())
    }
}

/// Folds a character the way search.js does: lowercase, common Latin accents removed.
fn fold_char(c: char, out: &mut String) {
    for lower in c.to_lowercase() {
        let folded = match lower {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
            'ç' | 'č' | 'ć' => 'c',
            'è' | 'é' | 'ê' | 'ë' | 'ě' | 'ę' => 'e',
            'ì' | 'í' | 'î' | 'ï' | 'ı' => 'i',
            'ñ' | 'ń' | 'ň' => 'n',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => 'o',
            'ù' | 'ú' | 'û' | 'ü' | 'ů' => 'u',
            'ý' | 'ÿ' => 'y',
            'š' | 'ś' | 'ş' => 's',
            'ž' | 'ź' | 'ż' => 'z',
            'ł' => 'l',
            'ř' => 'r',
            other => other,
        };
        out.push(folded);
    }
}

/// Splits text into search terms: runs of letters and digits, folded, without stop
/// words, single letters and long hexadecimal ids (commit hashes).
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let flush = |current: &mut String, out: &mut Vec<String>| {
        if !current.is_empty() {
            let t = std::mem::take(current);
            let chars = t.chars().count();
            let hexlike = chars >= 16
                && t.chars().all(|c| c.is_ascii_hexdigit())
                && t.chars().any(|c| c.is_ascii_digit());
            if (chars >= 2 || t.chars().all(|c| c.is_ascii_digit()))
                && chars <= 32
                && !hexlike
                && !STOP.contains(&t.as_str())
            {
                out.push(t);
            }
        }
    };
    for c in text.chars() {
        if c.is_alphanumeric() {
            fold_char(c, &mut current);
        } else {
            flush(&mut current, &mut out);
        }
    }
    flush(&mut current, &mut out);
    out
}

impl SearchDoc {
    /// Title, id, people and keywords weigh more than the rest of the text.
    pub fn from_deposit(summary: &RecordSummary, deposit: &Value) -> SearchDoc {
        let mut weights: HashMap<String, u32> = HashMap::new();
        let mut add = |text: &str, weight: u32, cap: u32| {
            for t in tokens(text) {
                let w = weights.entry(t).or_insert(0);
                *w = (*w + weight).min(cap.max(*w));
            }
        };
        add(&summary.title, 8, 255);
        add(&summary.id, 8, 255);
        for p in &summary.people {
            add(p, 5, 255);
        }
        for k in &summary.keywords {
            add(k, 5, 255);
        }
        add(&summary.experiment, 2, 255);
        add(&summary.schema_title, 1, 255);
        fn text(value: &Value, out: &mut Vec<String>, top: bool) {
            match value {
                Value::String(s) => {
                    let lower = s.trim_start().to_ascii_lowercase();
                    if !(lower.starts_with("http://")
                        || lower.starts_with("https://")
                        || s.contains('@'))
                    {
                        out.push(s.clone());
                    }
                }
                Value::Array(items) => items.iter().for_each(|i| text(i, out, false)),
                Value::Object(map) => {
                    for (k, v) in map {
                        if !(top && is_system_key(k)) {
                            text(v, out, false);
                        }
                    }
                }
                _ => {}
            }
        }
        let mut strings = Vec::new();
        text(deposit, &mut strings, true);
        for s in &strings {
            add(s, 1, 3);
        }
        let mut terms: Vec<(String, u8)> = weights
            .into_iter()
            .map(|(t, w)| (t, w.min(255) as u8))
            .collect();
        terms.sort();
        SearchDoc {
            terms: Terms::from_sorted(&terms),
            ..row_of(summary)
        }
    }
}

/// What a result shows of a record (a document without its terms).
pub fn row_of(summary: &RecordSummary) -> SearchDoc {
    {
        let mut facts = vec![summary.schema_title.clone()];
        if !summary.experiment.is_empty() {
            facts.push(summary.experiment.clone());
        }
        facts.push(format!("v{}", summary.version));
        if !summary.year.is_empty() {
            facts.push(summary.year.clone());
        }
        let people: Vec<&str> = summary.people.iter().take(3).map(String::as_str).collect();
        if !people.is_empty() {
            facts.push(people.join(", "));
        }
        SearchDoc {
            terms: Terms::default(),
            id: summary.id.clone(),
            title: summary.title.clone(),
            path: summary.path.clone(),
            facts: facts.join(" · "),
            draft: summary.draft,
        }
    }
}

/// What the index came to, for the build summary and the benchmarks.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SearchStats {
    pub documents: usize,
    pub terms: usize,
    pub shards: usize,
    pub files: usize,
    pub bytes: u64,
    pub manifest_bytes: u64,
    pub largest_shard_bytes: u64,
    pub chunk_bytes: u64,
}

/// The postings of a full build, encoded as documents arrive (in document-number
/// order). A record's terms are dropped as soon as they are added: at 100k records,
/// holding every record's terms and then every posting as numbers took most of a
/// build's memory.
#[derive(Default)]
pub struct Postings {
    terms: HashMap<Box<str>, TermPostings>,
    docs: u32,
}

/// One term's postings as `(document delta, weight)` pairs, each number a LEB128
/// varint: two bytes for most postings, half of their text in the shard files, which
/// is written from this only when the shard is.
#[derive(Default)]
struct TermPostings {
    bytes: Vec<u8>,
    /// The length of the postings as shard text (`doc,weight,delta,weight,...`), for
    /// cutting shards by size without writing the text first.
    text_len: u32,
    last: u32,
}

fn push_varint(out: &mut Vec<u8>, mut n: u32) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn digits(n: u32) -> u32 {
    n.checked_ilog10().unwrap_or(0) + 1
}

impl TermPostings {
    fn push(&mut self, doc: u32, weight: u8) {
        let delta = if self.bytes.is_empty() {
            doc
        } else {
            self.text_len += 1;
            doc - self.last
        };
        push_varint(&mut self.bytes, delta);
        push_varint(&mut self.bytes, u32::from(weight));
        self.text_len += digits(delta) + 1 + digits(u32::from(weight));
        self.last = doc;
    }
}

/// Writes the postings as shard text: the varints as decimal numbers between commas.
impl std::fmt::Display for TermPostings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut n = 0u32;
        let mut shift = 0;
        let mut first = true;
        for &b in &self.bytes {
            n |= u32::from(b & 0x7f) << shift;
            if b & 0x80 != 0 {
                shift += 7;
                continue;
            }
            if !first {
                f.write_str(",")?;
            }
            write!(f, "{n}")?;
            first = false;
            n = 0;
            shift = 0;
        }
        Ok(())
    }
}

impl Postings {
    /// Adds the next document and returns its number.
    pub fn add(&mut self, terms: Terms) -> u32 {
        let doc = self.docs;
        self.docs += 1;
        for (term, weight) in terms.iter() {
            match self.terms.get_mut(term) {
                Some(postings) => postings.push(doc, weight),
                None => {
                    let mut postings = TermPostings::default();
                    postings.push(doc, weight);
                    self.terms.insert(term.into(), postings);
                }
            }
        }
        doc
    }
}

/// Builds and writes the whole index from its postings and, in document-number
/// order, what each result shows.
pub fn write_index(
    output: &Output,
    postings: Postings,
    rows: impl Iterator<Item = SearchDoc>,
    version: &str,
) -> Result<(SearchStats, Vec<String>), SiteError> {
    let docs = postings.docs as usize;
    // Sorted references: at 100k records there are 420k terms.
    let mut terms: Vec<(&str, &TermPostings)> = postings
        .terms
        .iter()
        .map(|(term, postings)| (&**term, postings))
        .collect();
    terms.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut shards: Vec<(String, std::ops::Range<usize>)> = Vec::new();
    split(&terms, 0..terms.len(), String::new(), 1, &mut shards);

    let mut stats = SearchStats {
        documents: docs,
        terms: terms.len(),
        shards: shards.len(),
        ..SearchStats::default()
    };
    let write = |path: String, text: String, stats: &mut SearchStats| {
        stats.files += 1;
        stats.bytes += text.len() as u64;
        output.write(&path, text.as_bytes())
    };
    let mut keys = Vec::new();
    for (key, range) in &shards {
        let text = shard_text(key, terms[range.clone()].iter().copied());
        stats.largest_shard_bytes = stats.largest_shard_bytes.max(text.len() as u64);
        write(format!("search/t/{}.js", shard_file(key)), text, &mut stats)?;
        keys.push(key.clone());
    }
    drop(terms);
    drop(postings);
    let mut rows = rows.peekable();
    let mut n = 0;
    while rows.peek().is_some() {
        let chunk: Vec<SearchDoc> = rows.by_ref().take(CHUNK).collect();
        let text = chunk_text(n, chunk.iter().map(Some));
        stats.chunk_bytes = stats.chunk_bytes.max(text.len() as u64);
        write(format!("search/d/{n}.js"), text, &mut stats)?;
        n += 1;
    }
    let text = manifest_text(docs, &keys, version);
    stats.manifest_bytes = text.len() as u64;
    stats.files += 1;
    stats.bytes += text.len() as u64;
    output.write("search/manifest.js", text.as_bytes())?;
    Ok((stats, keys))
}

/// A shard file: each term with its postings (anything that writes them as text:
/// the shard's previous text, or a full build's encoded postings).
fn shard_text<'t, L: std::fmt::Display>(
    key: &str,
    terms: impl Iterator<Item = (&'t str, L)>,
) -> String {
    use std::fmt::Write;
    let mut text = format!("capsuleSearch.shard({},{{", json!(key));
    for (i, (term, list)) in terms.enumerate() {
        if i > 0 {
            text.push(',');
        }
        let _ = write!(text, "{}:[{list}]", json!(term));
    }
    text.push_str("});\n");
    text
}

fn chunk_text<'d>(n: usize, docs: impl Iterator<Item = Option<&'d SearchDoc>>) -> String {
    let rows: Vec<Value> = docs
        .map(|d| match d {
            Some(d) => json!([d.id, d.title, d.path, d.facts, d.draft]),
            None => Value::Null,
        })
        .collect();
    format!(
        "capsuleSearch.docs({n},{});\n",
        super::util::script_json(&Value::Array(rows))
    )
}

fn manifest_text(docs: usize, keys: &[String], version: &str) -> String {
    let manifest = json!({
        "docs": docs,
        "chunk": CHUNK,
        "shards": keys,
        "version": version,
    });
    format!(
        "capsuleSearch.manifest({});\n",
        super::util::script_json(&manifest)
    )
}

/// One document that changed between two builds: its number, its old and new terms.
/// What one patch does to one shard: the terms whose postings it rewrites, and the
/// postings it adds.
#[derive(Default)]
struct Affected {
    terms: BTreeSet<String>,
    additions: Vec<(String, u32, u8)>,
}

pub struct DocChange {
    pub doc: u32,
    /// The document number was in the previous index (its old terms are in `old`, if
    /// they could be read).
    pub reused: bool,
    pub old: Option<SearchDoc>,
    pub new: Option<SearchDoc>,
}

/// The JSON string at the start of `text`, unescaped, and what follows it.
fn json_string(text: &str) -> Option<(Cow<'_, str>, &str)> {
    let body = text.strip_prefix('"')?;
    let bytes = body.as_bytes();
    let (mut i, mut escaped) = (0, false);
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                escaped = true;
                i += 2;
            }
            b'"' => break,
            _ => i += 1,
        }
    }
    if i >= bytes.len() {
        return None;
    }
    let term = if escaped {
        Cow::Owned(serde_json::from_str(&text[..i + 2]).ok()?)
    } else {
        Cow::Borrowed(&body[..i])
    };
    Some((term, &body[i + 1..]))
}

/// `doc, weight, doc-delta, weight, ...` back into `(doc, weight)` pairs.
fn decode_postings(text: &str) -> Option<Vec<(u32, u8)>> {
    let mut numbers = text.split(',').map(|n| n.trim().parse::<u32>().ok());
    let mut out = Vec::new();
    let mut doc = 0u32;
    while let Some(delta) = numbers.next() {
        let weight = u8::try_from(numbers.next()??).ok()?;
        doc = if out.is_empty() {
            delta?
        } else {
            doc.checked_add(delta?)?
        };
        out.push((doc, weight));
    }
    Some(out)
}

/// Updates the index of the previous build in `live` for `changes`: only the shards
/// holding their old or new terms and the chunks holding their rows are rewritten.
/// The shard layout is kept (a full build rebalances it). `rows` needs to hold only
/// the documents of those chunks; `documents` is how many the index holds.
#[allow(clippy::too_many_arguments)]
pub fn patch_index(
    output: &Output,
    live: &std::path::Path,
    old_keys: &[String],
    docs: usize,
    changes: &[DocChange],
    rows: &BTreeMap<u32, SearchDoc>,
    documents: usize,
    version: &str,
) -> Result<(Option<SearchStats>, Vec<String>), SiteError> {
    if changes.is_empty() {
        return Ok((None, old_keys.to_vec()));
    }
    let mut keys: Vec<String> = old_keys.to_vec();
    // The longest key the term starts with, found among the term's own prefixes: a
    // record's terms against every key (5,568 at 100k records) was a tenth of a rebuild.
    let mut known: std::collections::HashSet<String> = keys.iter().cloned().collect();
    let mut shard_of = |term: &str, keys: &mut Vec<String>| -> String {
        match longest_key(term, &known) {
            Some(key) => key.to_string(),
            None => {
                let key = prefix(term, 1).to_string();
                keys.push(key.clone());
                known.insert(key.clone());
                key
            }
        }
    };
    let changed_docs: std::collections::HashSet<u32> = changes.iter().map(|c| c.doc).collect();
    // A change whose old terms are unknown may have left its document under any term
    // of the shards it touches: those shards are decoded whole.
    let old_unknown = changes.iter().any(|c| c.reused && c.old.is_none());
    let mut affected: BTreeMap<String, Affected> = BTreeMap::new();
    for change in changes {
        for (term, _) in change.old.iter().flat_map(|d| d.terms.iter()) {
            let shard = affected.entry(shard_of(term, &mut keys)).or_default();
            shard.terms.insert(term.to_string());
        }
        for (term, weight) in change.new.iter().flat_map(|d| d.terms.iter()) {
            let shard = affected.entry(shard_of(term, &mut keys)).or_default();
            shard.terms.insert(term.to_string());
            shard.additions.push((term.to_string(), change.doc, weight));
        }
    }
    let mut stats = SearchStats {
        documents,
        shards: keys.len(),
        ..SearchStats::default()
    };
    for (key, shard) in affected {
        let path = format!("search/t/{}.js", shard_file(&key));
        let old = std::fs::read_to_string(live.join(&path)).unwrap_or_default();
        let mut additions: BTreeMap<String, Vec<(u32, u8)>> = BTreeMap::new();
        for (term, doc, weight) in shard.additions {
            additions.entry(term).or_default().push((doc, weight));
        }
        let text = patch::patch_shard(
            &key,
            &old,
            &shard.terms,
            &additions,
            &changed_docs,
            old_unknown,
        );
        stats.files += 1;
        stats.bytes += text.len() as u64;
        output.write(&path, text.as_bytes())?;
    }
    let chunks: std::collections::BTreeSet<usize> =
        changes.iter().map(|c| c.doc as usize / CHUNK).collect();
    for n in chunks {
        let start = (n * CHUNK) as u32;
        let end = (((n + 1) * CHUNK).min(docs.max(1))) as u32;
        let text = chunk_text(n, (start..end.max(start + 1)).map(|d| rows.get(&d)));
        stats.files += 1;
        stats.bytes += text.len() as u64;
        output.write(&format!("search/d/{n}.js"), text.as_bytes())?;
    }
    keys.sort();
    let text = manifest_text(docs, &keys, version);
    stats.manifest_bytes = text.len() as u64;
    stats.files += 1;
    stats.bytes += text.len() as u64;
    output.write("search/manifest.js", text.as_bytes())?;
    Ok((Some(stats), keys))
}

/// The longest of `keys` that `term` starts with.
fn longest_key<'t>(term: &'t str, keys: &std::collections::HashSet<String>) -> Option<&'t str> {
    let ends = term.char_indices().map(|(i, _)| i).chain([term.len()]);
    ends.rev()
        .map(|end| &term[..end])
        .find(|p| keys.contains(*p))
}

/// `[doc, weight, doc-delta, weight, ...]` as JSON numbers.
fn encode_postings(list: &[(u32, u8)]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(list.len() * 6);
    let mut last = 0;
    for (i, (doc, weight)) in list.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{},{weight}", doc - last);
        last = *doc;
    }
    out
}

/// The file name of a shard: its key's bytes in hex (`_` for the empty key).
pub fn shard_file(key: &str) -> String {
    if key.is_empty() {
        "_".into()
    } else {
        hex(key.as_bytes())
    }
}

fn prefix(term: &str, chars: usize) -> &str {
    match term.char_indices().nth(chars) {
        Some((i, _)) => &term[..i],
        None => term,
    }
}

/// How long a term's postings are as shard text.
trait TextLen {
    fn text_len(&self) -> usize;
}

impl TextLen for usize {
    fn text_len(&self) -> usize {
        *self
    }
}

impl TextLen for &TermPostings {
    fn text_len(&self) -> usize {
        self.text_len as usize
    }
}

/// Splits the sorted `terms[range]` (all starting with `key`, each with its postings)
/// into shards: small enough, or by one more character.
fn split(
    terms: &[(&str, impl TextLen)],
    range: std::ops::Range<usize>,
    key: String,
    depth: usize,
    out: &mut Vec<(String, std::ops::Range<usize>)>,
) {
    let size: usize = terms[range.clone()]
        .iter()
        .map(|(t, p)| t.len() + p.text_len() + 4)
        .sum();
    if (size <= SHARD_BYTES && !key.is_empty()) || depth > 8 {
        out.push((key, range));
        return;
    }
    // Terms no longer than the key stay in the key's own shard; the rest go by prefix.
    let mut groups: BTreeMap<&str, std::ops::Range<usize>> = BTreeMap::new();
    let mut own_start = None;
    let mut own_end = range.start;
    for i in range.clone() {
        let term = terms[i].0;
        if term.chars().count() < depth {
            own_start.get_or_insert(i);
            own_end = i + 1;
            continue;
        }
        let p = prefix(term, depth);
        groups
            .entry(p)
            .and_modify(|r| r.end = i + 1)
            .or_insert(i..i + 1);
    }
    if let Some(start) = own_start {
        out.push((key.clone(), start..own_end));
    }
    for (p, r) in groups {
        split(terms, r, p.to_string(), depth + 1, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_term_goes_to_the_longest_key_it_starts_with() {
        let keys: std::collections::HashSet<String> =
            ["", "h", "hi", "hig", "mü", "x"].map(String::from).into();
        // What scanning every key finds.
        let scan = |term: &str| {
            keys.iter()
                .filter(|k| term.starts_with(k.as_str()))
                .max_by_key(|k| k.len())
                .map(String::as_str)
        };
        for term in ["higgs", "hi", "h", "hx", "müller", "mu", "", "zeta", "x"] {
            assert_eq!(longest_key(term, &keys), scan(term), "{term}");
        }
        let without_empty: std::collections::HashSet<String> =
            ["hig", "mü"].map(String::from).into();
        assert_eq!(longest_key("higgs", &without_empty), Some("hig"));
        assert_eq!(longest_key("zeta", &without_empty), None);
        assert_eq!(longest_key("müon", &without_empty), Some("mü"));
    }

    #[test]
    fn tokens_fold_and_filter() {
        assert_eq!(
            tokens("The Higgs-boson at 13 TeV, Tomás Müller! a"),
            ["higgs", "boson", "13", "tev", "tomas", "muller"]
        );
        assert!(tokens("4f9c2e7a1b3d58c6e0f2a9b7d4c1e8f356a2b0d9").is_empty());
        assert_eq!(
            tokens("<script>alert(1)</script>"),
            ["script", "alert", "1", "script"]
        );
    }

    #[test]
    fn terms_keep_their_order_and_weights() {
        let list = vec![("boson".to_string(), 3), ("higgs".to_string(), 8)];
        let terms = Terms::from_sorted(&list);
        assert_eq!(
            terms.iter().collect::<Vec<_>>(),
            [("boson", 3), ("higgs", 8)]
        );
        assert_eq!(Terms::default().iter().count(), 0);
    }

    #[test]
    fn shards_split_by_prefix_until_small() {
        let big = "1,1,".repeat(4000).len();
        let terms = vec![("ab", big), ("abc", big), ("abd", big), ("b", 3)];
        let mut out = Vec::new();
        split(&terms, 0..terms.len(), String::new(), 1, &mut out);
        let keys: Vec<&str> = out.iter().map(|(k, _)| k.as_str()).collect();
        assert!(keys.contains(&"b"), "{keys:?}");
        assert!(keys.iter().any(|k| k.starts_with("ab")), "{keys:?}");
        // Every term lands in exactly one shard.
        let covered: usize = out.iter().map(|(_, r)| r.len()).sum();
        assert_eq!(covered, terms.len());
    }

    /// A shard as written decodes to the same postings: a rebuild patches shards by
    /// decoding and re-encoding them.
    #[test]
    fn shards_decode_to_what_was_encoded() {
        let higgs = vec![(0, 3), (7, 1), (8, 255), (4000, 2)];
        let quote = vec![(5, 1)];
        let encoded = [
            ("higgs", encode_postings(&higgs)),
            ("say \"hi\"", encode_postings(&quote)),
        ];
        assert_eq!(encoded[0].1, "0,3,7,1,1,255,3992,2");
        let text = shard_text("h", encoded.iter().map(|(t, l)| (*t, l.as_str())));
        let terms = patch::entries(&text).expect("decodes");
        let decoded: Vec<(&str, Vec<(u32, u8)>)> = terms
            .iter()
            .map(|(t, l, _)| (t.as_ref(), decode_postings(l).expect("numbers")))
            .collect();
        assert_eq!(decoded, [("higgs", higgs), ("say \"hi\"", quote)]);
        let empty = shard_text("h", std::iter::empty::<(&str, &str)>());
        assert!(patch::entries(&empty).is_some_and(|t| t.is_empty()));
        // A weight that does not fit a byte is not a shard capsule wrote.
        assert!(decode_postings("1,256").is_none());
        assert!(decode_postings("1,2,3").is_none());
        assert!(patch::entries("capsuleSearch.docs(0,[]);").is_none());
        assert!(patch::entries(&text.replace("]}", "}")).is_none());
    }

    /// A full build keeps postings as varints and writes them as text only with their
    /// shard: the text must be what a rebuild decodes, and its length what shards are
    /// cut by, for deltas and weights of every varint length.
    #[test]
    fn compact_postings_write_the_text_a_rebuild_decodes() {
        let list: Vec<(u32, u8)> =
            vec![(0, 1), (127, 255), (128, 3), (16_512, 1), (3_000_000, 128)];
        let mut compact = TermPostings::default();
        for &(doc, weight) in &list {
            compact.push(doc, weight);
        }
        let text = compact.to_string();
        assert_eq!(text, encode_postings(&list));
        assert_eq!(text, "0,1,127,255,1,3,16384,1,2983488,128");
        assert_eq!(compact.text_len as usize, text.len());
        assert_eq!(decode_postings(&text), Some(list));
        // The varints take at most half the bytes of the text.
        assert!(compact.bytes.len() * 2 <= text.len(), "{:?}", compact.bytes);

        let mut postings = Postings::default();
        let doc = |terms: &[(&str, u8)]| {
            Terms::from_sorted(
                &terms
                    .iter()
                    .map(|(t, w)| (t.to_string(), *w))
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(postings.add(doc(&[("higgs", 8), ("mass", 1)])), 0);
        assert_eq!(postings.add(doc(&[("mass", 2)])), 1);
        assert_eq!(postings.add(doc(&[("higgs", 1)])), 2);
        assert_eq!(postings.terms["higgs"].to_string(), "0,8,2,1");
        assert_eq!(postings.terms["mass"].to_string(), "0,1,1,2");
    }
}
