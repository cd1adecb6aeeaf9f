//! Patching one shard's text for a rebuild: a merge of its terms, as written, with
//! the terms the changed documents have or had. Every other term's entry is copied
//! as it was: at 100k records a record's terms touch ~170 shards (21 MB), and decoding
//! each into a map of its terms was most of a rebuild's search index.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde_json::json;

use super::{decode_postings, encode_postings, json_string};

/// The entries of a shard's text, in the order written: each term (unescaped), its
/// postings as written, and the entry as written (`"term":[...]`). `None` when the
/// text is not a shard capsule wrote.
pub(super) fn entries(text: &str) -> Option<Vec<(Cow<'_, str>, &str, &str)>> {
    let rest = text
        .trim_end()
        .strip_prefix("capsuleSearch.shard(")?
        .strip_suffix(");")?;
    let (_key, rest) = json_string(rest)?;
    let mut rest = rest.strip_prefix(",{")?;
    let mut out = Vec::new();
    if rest == "}" {
        return Some(out);
    }
    loop {
        let start = rest;
        let (term, after) = json_string(rest)?;
        let after = after.strip_prefix(":[")?;
        let end = after.find(']')?;
        let postings = &after[..end];
        rest = &after[end + 1..];
        out.push((term, postings, &start[..start.len() - rest.len()]));
        match rest.strip_prefix(',') {
            Some(next) => rest = next,
            None => return (rest == "}").then_some(out),
        }
    }
}

/// The new text of shard `key` from its previous text `old` (empty or unreadable: no
/// terms): the postings of `terms` (the changed documents' old and new terms) lose
/// `changed` documents and gain `additions` (by term), those of every other term are
/// copied, or, with `decode_all` (the old terms of a changed document are unknown),
/// lose `changed` documents too. Terms left without postings go. The text is the one
/// encoding the resulting terms afresh writes (see `shard_text`).
pub(super) fn patch_shard(
    key: &str,
    old: &str,
    terms: &BTreeSet<String>,
    additions: &BTreeMap<String, Vec<(u32, u8)>>,
    changed: &HashSet<u32>,
    decode_all: bool,
) -> String {
    let old_entries = entries(old).unwrap_or_default();
    let mut text = String::with_capacity(old.len() + 64);
    text.push_str("capsuleSearch.shard(");
    text.push_str(&json!(key).to_string());
    text.push_str(",{");
    let mut first = true;
    let mut push = |text: &mut String, entry: &str| {
        if !first {
            text.push(',');
        }
        first = false;
        text.push_str(entry);
    };
    // The postings of `term` after the change, encoded; `None` when it has none.
    let latest = changed.iter().copied().max();
    let patched = |term: &str, postings: Option<&str>| -> Option<String> {
        let added = additions.get(term).map_or(&[][..], Vec::as_slice);
        if let Some(text) = postings.and_then(|p| splice_postings(p, changed, latest, added)) {
            return (!text.is_empty()).then(|| format!("{}:[{text}]", json!(term)));
        }
        let mut list = postings.and_then(decode_postings).unwrap_or_default();
        list.retain(|(d, _)| !changed.contains(d));
        if let Some(added) = additions.get(term) {
            list.extend_from_slice(added);
        }
        if list.is_empty() {
            return None;
        }
        list.sort();
        Some(format!("{}:[{}]", json!(term), encode_postings(&list)))
    };
    let mut pending = terms.iter().peekable();
    for (term, postings, entry) in &old_entries {
        // The changed documents' terms that come before this one are new to the shard.
        while let Some(new) = pending.next_if(|t| t.as_str() < term.as_ref()) {
            if let Some(entry) = patched(new, None) {
                push(&mut text, &entry);
            }
        }
        if pending.next_if(|t| t.as_str() == term.as_ref()).is_some() || decode_all {
            if let Some(entry) = patched(term, Some(postings)) {
                push(&mut text, &entry);
            }
        } else {
            push(&mut text, entry);
        }
    }
    for new in pending {
        if let Some(entry) = patched(new, None) {
            push(&mut text, &entry);
        }
    }
    text.push_str("});\n");
    text
}

/// `postings` (as written: `doc, weight, doc-delta, weight, ...`, sorted) without the
/// `changed` documents and with `added` ones, written as `encode_postings` would; the
/// numbers are read only up to the last document that changes (`latest`, or the last
/// added), the rest is copied: a common term's list holds most of the archive, and
/// decoding and encoding it whole was most of a rebuild's search index. `None` when the
/// text is not such a list (the caller decodes it).
fn splice_postings(
    postings: &str,
    changed: &HashSet<u32>,
    latest: Option<u32>,
    added: &[(u32, u8)],
) -> Option<String> {
    use std::fmt::Write;
    let mut added = added.to_vec();
    added.sort_unstable();
    let last = latest.into_iter().chain(added.iter().map(|a| a.0)).max();
    let mut adds = added.into_iter().peekable();
    let mut out = String::with_capacity(postings.len() + 16);
    let mut written: Option<u32> = None;
    let push = |out: &mut String, written: &mut Option<u32>, doc: u32, weight: u8| {
        if written.is_some() {
            out.push(',');
        }
        let _ = write!(out, "{},{weight}", doc - written.unwrap_or(0));
        *written = Some(doc);
    };
    let mut rest = postings;
    let mut doc: Option<u32> = None;
    while !rest.is_empty() {
        let (delta, after) = rest.split_once(',')?;
        let (weight, after) = after.split_once(',').unwrap_or((after, ""));
        let delta: u32 = delta.trim().parse().ok()?;
        let weight: u8 = weight.trim().parse().ok()?;
        let this = match doc {
            None => delta,
            Some(d) => d.checked_add(delta)?,
        };
        if doc.is_some_and(|d| this <= d) {
            return None;
        }
        doc = Some(this);
        rest = after;
        while let Some((d, w)) = adds.next_if(|a| a.0 < this) {
            push(&mut out, &mut written, d, w);
        }
        if changed.contains(&this) {
            continue;
        }
        push(&mut out, &mut written, this, weight);
        // Past every change: what follows is relative to this document, as written.
        if last.is_none_or(|l| this > l) && adds.peek().is_none() {
            if !rest.is_empty() {
                out.push(',');
                out.push_str(rest);
            }
            return Some(out);
        }
    }
    for (d, w) in adds {
        push(&mut out, &mut written, d, w);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::super::shard_text;
    use super::*;

    /// Patching a shard writes what encoding its terms afresh would: terms changed,
    /// added before, between and after the others, emptied, and, with `decode_all`,
    /// every term losing the changed documents.
    #[test]
    fn a_patched_shard_is_the_shard_its_terms_encode_to() {
        let mut model: BTreeMap<String, Vec<(u32, u8)>> = BTreeMap::new();
        model.insert("hadron".into(), vec![(0, 1), (3, 2), (9, 1)]);
        model.insert("higgs".into(), vec![(1, 4), (3, 1)]);
        model.insert("hot".into(), vec![(3, 1)]);
        model.insert("hünd".into(), vec![(2, 1), (5, 5)]);
        let encode = |model: &BTreeMap<String, Vec<(u32, u8)>>| {
            let lists: Vec<(String, String)> = model
                .iter()
                .filter(|(_, l)| !l.is_empty())
                .map(|(t, l)| (t.clone(), encode_postings(l)))
                .collect();
            shard_text("h", lists.iter().map(|(t, l)| (t.as_str(), l.as_str())))
        };
        let old = encode(&model);
        // Document 3 changes: it had hadron, higgs and hot; it now has ha, higgs, hz.
        let changed: HashSet<u32> = [3].into_iter().collect();
        let terms: BTreeSet<String> = ["ha", "hadron", "higgs", "hot", "hz"]
            .into_iter()
            .map(String::from)
            .collect();
        let additions: BTreeMap<String, Vec<(u32, u8)>> = [("ha", 2), ("higgs", 7), ("hz", 1)]
            .into_iter()
            .map(|(t, w)| (t.to_string(), vec![(3, w)]))
            .collect();
        let patched = patch_shard("h", &old, &terms, &additions, &changed, false);
        let mut expected = model.clone();
        for list in expected.values_mut() {
            list.retain(|(d, _)| *d != 3);
        }
        for (term, added) in &additions {
            let list = expected.entry(term.clone()).or_default();
            list.extend(added);
            list.sort();
        }
        assert_eq!(patched, encode(&expected));
        assert!(!patched.contains("\"hot\""), "{patched}");
        // Old terms unknown: every term loses the document.
        let none = BTreeSet::new();
        let all = patch_shard("h", &old, &none, &BTreeMap::new(), &changed, true);
        let mut expected = model.clone();
        for list in expected.values_mut() {
            list.retain(|(d, _)| *d != 3);
        }
        assert_eq!(all, encode(&expected));
        // Nothing to change: the same text.
        assert_eq!(
            patch_shard("h", &old, &none, &BTreeMap::new(), &HashSet::new(), false),
            old
        );
        // No previous shard: the additions alone.
        let fresh = patch_shard("h", "", &terms, &additions, &changed, false);
        assert_eq!(fresh, encode(&additions));
    }

    /// Splicing a list writes what decoding, changing and encoding it would, for
    /// changes at its start, middle and end, documents removed and re-added, and lists
    /// emptied; and refuses what is not a list up to its last change.
    #[test]
    fn a_spliced_list_is_the_list_encoded_afresh() {
        let mut seed = 7u32;
        let mut next = move |n: u32| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (seed >> 8) % n
        };
        for round in 0..400 {
            let len = next(12);
            let mut docs: Vec<u32> = (0..len).map(|_| next(40)).collect();
            docs.sort_unstable();
            docs.dedup();
            let list: Vec<(u32, u8)> = docs.iter().map(|&d| (d, 1 + next(5) as u8)).collect();
            let changed: HashSet<u32> = (0..next(3)).map(|_| next(42)).collect();
            let mut added: Vec<(u32, u8)> = Vec::new();
            for &d in &changed {
                if next(2) == 0 {
                    added.push((d, 1 + next(9) as u8));
                }
            }
            let mut expected = list.clone();
            expected.retain(|(d, _)| !changed.contains(d));
            expected.extend(&added);
            expected.sort();
            let latest = changed.iter().copied().max();
            let text = encode_postings(&list);
            let spliced = splice_postings(&text, &changed, latest, &added);
            assert_eq!(
                spliced,
                Some(encode_postings(&expected)),
                "round {round}: {text} - {changed:?} + {added:?}"
            );
        }
        // Numbers are read up to the last change (past it the text is copied, as an
        // unchanged term's is).
        let nine: HashSet<u32> = [9].into_iter().collect();
        assert_eq!(splice_postings("3,1,x,1", &nine, Some(9), &[]), None);
        assert_eq!(splice_postings("3,1,4", &nine, Some(9), &[]), None);
        assert_eq!(splice_postings("3,300", &nine, Some(9), &[]), None);
        assert_eq!(splice_postings("3,1,0,1", &nine, Some(9), &[]), None);
        assert_eq!(
            splice_postings("3,1,20,2,x", &nine, Some(9), &[(9, 4)]),
            Some("3,1,6,4,14,2,x".into())
        );
    }
}
