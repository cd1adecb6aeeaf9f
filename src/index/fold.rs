//! Folding a query's matching versions into analyses, as tantivy collects them.
//!
//! Each match is read from fast-field columns only (the analysis key, version, update
//! time; the title ordinal and facet ordinals when the request sorts by title or counts
//! facets) and folded into its analysis in the segment being searched, where the id's
//! ordinal indexes an array. Across segments, analyses meet by a 128-bit digest of the
//! id; no id string is read here (the page's hits read theirs from the stored
//! document), and other strings are resolved once per segment for the distinct
//! ordinals that need them. A broad query over 100k analyses thus costs a few column
//! reads per match.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::fastfield::FacetReader;
use tantivy::schema::Facet;
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader, TantivyError};

/// The analysis a version belongs to: `group_hi` and `group_lo` together.
pub type Key = u128;

/// A facet's dimension and value (`("schema", "analysis/1.0.0")`).
pub type FacetName = (String, String);

/// The matching versions of one analysis. Kept small (40 bytes): a broad query makes
/// tens of thousands, and their allocation was most of a search's time.
pub struct Group {
    pub key: Key,
    pub score: f32,
    /// The rank of the newest matching version ([`rank`]).
    pub rank: u32,
    /// The newest matching version, the draft ranking highest.
    pub shown: DocAddress,
    /// Seconds since the epoch, the latest among the matching versions.
    pub updated: i64,
}

/// What a search found: its analyses, with the side tables of the sort title and the
/// facets (empty unless the request asked for them), indexed alike.
pub struct Folded {
    pub groups: Vec<Group>,
    /// Matching versions, counted.
    pub versions: usize,
    /// The shown version's sort title per group (only when sorting by title).
    titles: Vec<String>,
    /// Every facet of the group's matching versions, as indices into `facet_names`
    /// (only when counting facets).
    facets: FacetLists,
    pub facet_names: Vec<FacetName>,
}

impl Folded {
    fn empty() -> Folded {
        Folded {
            groups: Vec::new(),
            versions: 0,
            titles: Vec::new(),
            facets: FacetLists::default(),
            facet_names: Vec::new(),
        }
    }

    /// How many analyses have each facet, by index into `facet_names`.
    pub fn facet_counts(&self) -> Vec<u64> {
        let mut counts = vec![0u64; self.facet_names.len()];
        let lists = &self.facets;
        for i in 0..lists.len() {
            match lists.extra.get(&i) {
                None => lists.of(i).iter().for_each(|f| counts[*f as usize] += 1),
                Some(more) => {
                    let mut all: Vec<u32> = lists.of(i).iter().chain(more).copied().collect();
                    all.sort_unstable();
                    all.dedup();
                    all.iter().for_each(|f| counts[*f as usize] += 1);
                }
            }
        }
        counts
    }

    /// Puts the first `n` analyses in order (the rest stay after them, unordered): a
    /// page needs only the analyses before its end, and a broad query finds tens of
    /// thousands. Ties fall back to the analysis key: an order that does not depend on
    /// how the index is split into segments.
    pub fn sort_first(&mut self, n: usize, sort: super::search::Sort) {
        use super::search::Sort;
        use std::cmp::Ordering;
        if sort == Sort::Title {
            // Titles travel with their groups.
            let mut pairs: Vec<(Group, String)> = std::mem::take(&mut self.groups)
                .into_iter()
                .zip(std::mem::take(&mut self.titles))
                .collect();
            select_then_sort(&mut pairs, n, |a, b| {
                a.1.cmp(&b.1).then(a.0.key.cmp(&b.0.key))
            });
            self.groups = pairs.into_iter().map(|(g, _)| g).collect();
            return;
        }
        select_then_sort(&mut self.groups, n, |a, b| -> Ordering {
            match sort {
                Sort::Newest => b.updated.cmp(&a.updated),
                _ => b.score.total_cmp(&a.score).then(b.updated.cmp(&a.updated)),
            }
            .then(a.key.cmp(&b.key))
        });
    }
}

fn select_then_sort<T>(items: &mut [T], n: usize, order: impl Fn(&T, &T) -> std::cmp::Ordering) {
    let n = n.min(items.len());
    if n == 0 {
        return;
    }
    if n < items.len() {
        items.select_nth_unstable_by(n - 1, &order);
    }
    items[..n].sort_unstable_by(&order);
}

/// Each group's facets as indices into the facet names: one flat list cut by offsets
/// (tens of thousands of analyses, a handful of facets each: one allocation, not one
/// per analysis), and for the few analyses met again in another segment, what those
/// segments added.
#[derive(Default)]
struct FacetLists {
    /// `starts[i]..starts[i + 1]` is group `i`'s part of `flat`; empty when the request
    /// counts no facets.
    starts: Vec<usize>,
    flat: Vec<u32>,
    extra: HashMap<usize, Vec<u32>>,
}

impl FacetLists {
    fn len(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    fn of(&self, group: usize) -> &[u32] {
        &self.flat[self.starts[group]..self.starts[group + 1]]
    }

    fn push(&mut self, list: impl IntoIterator<Item = u32>) {
        if self.starts.is_empty() {
            self.starts.push(0);
        }
        self.flat.extend(list);
        self.starts.push(self.flat.len());
    }
}

/// Versions rank by number, and the draft (version 0) above them all.
pub fn rank(version: u64) -> u32 {
    if version == 0 {
        u32::MAX
    } else {
        u32::try_from(version).unwrap_or(u32::MAX - 1)
    }
}

/// Keys are SHA-256 digests already: hashing them again is wasted work.
#[derive(Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u128(&mut self, key: u128) {
        self.0 = (key as u64) ^ ((key >> 64) as u64);
    }
}

type KeyMap<V> = HashMap<Key, V, BuildHasherDefault<KeyHasher>>;

/// The collector: one [`Folded`] for the whole index.
pub struct Fold {
    pub facets: bool,
    pub titles: bool,
}

/// The fast-field columns of one segment.
struct Columns {
    id: StrColumn,
    hi: Column<u64>,
    lo: Column<u64>,
    version: Column<u64>,
    updated: Column<tantivy::DateTime>,
    title: Option<StrColumn>,
    facets: Option<FacetReader>,
}

pub struct FoldSegment {
    segment: SegmentOrdinal,
    cols: Columns,
    /// Group slot per id ordinal of this segment ([`NONE`]: none yet). Within a segment
    /// an analysis is its id's ordinal: an array index per match, no hashing.
    slot_of: Vec<u32>,
    groups: Vec<Group>,
    versions: usize,
    /// (group slot, facet ordinal of this segment).
    facet_ords: Vec<(u32, u32)>,
}

const NONE: u32 = u32::MAX;

impl Collector for Fold {
    type Fruit = Folded;
    type Child = FoldSegment;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<FoldSegment> {
        let fast = reader.fast_fields();
        let id = fast.str("id")?.ok_or_else(|| {
            TantivyError::SchemaError("the index has no id column: rebuild it".into())
        })?;
        let terms = id.dictionary().num_terms();
        let cols = Columns {
            id,
            hi: fast.u64("group_hi")?,
            lo: fast.u64("group_lo")?,
            version: fast.u64("version")?,
            updated: fast.date("updated")?,
            title: if self.titles {
                fast.str("title_sort")?
            } else {
                None
            },
            facets: if self.facets {
                Some(reader.facet_reader("facets")?)
            } else {
                None
            },
        };
        Ok(FoldSegment {
            segment,
            cols,
            slot_of: vec![NONE; terms],
            // Reserved, not touched: pages are faulted in only as groups are added,
            // and the vector never moves.
            groups: Vec::with_capacity(terms),
            versions: 0,
            facet_ords: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, fruits: Vec<Folded>) -> tantivy::Result<Folded> {
        Ok(merge(fruits))
    }
}

impl SegmentCollector for FoldSegment {
    type Fruit = Folded;

    fn collect(&mut self, doc: DocId, score: Score) {
        self.versions += 1;
        let cols = &self.cols;
        let Some(ord) = cols.id.term_ords(doc).next() else {
            return;
        };
        let version = rank(cols.version.first(doc).unwrap_or(0));
        let updated = cols
            .updated
            .first(doc)
            .map_or(0, |d| d.into_timestamp_secs());
        let address = DocAddress::new(self.segment, doc);
        let Some(slot) = self.slot_of.get_mut(ord as usize) else {
            return;
        };
        if *slot == NONE {
            *slot = self.groups.len() as u32;
            self.groups.push(Group {
                key: (Key::from(cols.hi.first(doc).unwrap_or(0)) << 64)
                    | Key::from(cols.lo.first(doc).unwrap_or(0)),
                score,
                rank: version,
                shown: address,
                updated,
            });
        } else {
            let group = &mut self.groups[*slot as usize];
            group.score = group.score.max(score);
            group.updated = group.updated.max(updated);
            if version > group.rank {
                group.rank = version;
                group.shown = address;
            }
        }
        if let Some(reader) = &cols.facets {
            let slot = *slot;
            self.facet_ords
                .extend(reader.facet_ords(doc).map(|ord| (slot, ord as u32)));
        }
    }

    fn harvest(mut self) -> Folded {
        let mut folded = Folded::empty();
        // Strings are resolved here, once per distinct ordinal; a failure to read a
        // dictionary leaves the value empty (sorting or counting by it degrades, the
        // hits stay right).
        if let Some(column) = &self.cols.title {
            let ords: Vec<Option<u64>> = self
                .groups
                .iter()
                .map(|g| column.term_ords(g.shown.doc_id).next())
                .collect();
            let terms = terms_of(
                column.dictionary(),
                &sorted_distinct(ords.iter().flatten().copied().collect()),
            )
            .unwrap_or_default();
            folded.titles = ords
                .into_iter()
                .map(|ord| {
                    ord.and_then(|o| terms.get(&o))
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_default()
                })
                .collect();
        }
        if let Some(reader) = &self.cols.facets {
            let pairs = std::mem::take(&mut self.facet_ords);
            // Facet ordinals index arrays: a segment has a few thousand facet values.
            let terms = reader.facet_dict().num_terms();
            let mut seen = vec![false; terms];
            for (_, ord) in &pairs {
                if let Some(s) = seen.get_mut(*ord as usize) {
                    *s = true;
                }
            }
            let ords: Vec<u64> = (0..terms as u64).filter(|o| seen[*o as usize]).collect();
            let mut local = vec![NONE; terms];
            for (ord, bytes) in terms_of(reader.facet_dict(), &ords).unwrap_or_default() {
                let Ok(facet) = Facet::from_encoded(bytes) else {
                    continue;
                };
                if let [dimension, value] = facet.to_path().as_slice() {
                    local[ord as usize] = folded.facet_names.len() as u32;
                    folded
                        .facet_names
                        .push((dimension.to_string(), value.to_string()));
                }
            }
            // Bucketed by group (a counting sort), then each group's few facets
            // sorted and made distinct.
            let groups = self.groups.len();
            let mut starts = vec![0usize; groups + 1];
            for (slot, _) in &pairs {
                starts[*slot as usize + 1] += 1;
            }
            for i in 0..groups {
                starts[i + 1] += starts[i];
            }
            let mut fill = starts.clone();
            let mut bucketed = vec![NONE; pairs.len()];
            for (slot, ord) in pairs {
                let at = &mut fill[slot as usize];
                bucketed[*at] = local.get(ord as usize).copied().unwrap_or(NONE);
                *at += 1;
            }
            let mut lists = FacetLists::default();
            for i in 0..groups {
                let list = &mut bucketed[starts[i]..starts[i + 1]];
                list.sort_unstable();
                let mut last = NONE;
                lists.push(list.iter().copied().filter(|f| {
                    let fresh = *f != NONE && *f != last;
                    last = *f;
                    fresh
                }));
            }
            folded.facets = lists;
        }
        folded.groups = self.groups;
        folded.versions = self.versions;
        folded
    }
}

/// The segments' analyses as one list: an analysis whose versions lie in several
/// segments becomes one group. The largest segment's list is kept as it is and the
/// others are folded into it.
fn merge(mut fruits: Vec<Folded>) -> Folded {
    fruits.sort_by_key(|f| std::cmp::Reverse(f.groups.len()));
    let mut fruits = fruits.into_iter();
    let Some(mut out) = fruits.next() else {
        return Folded::empty();
    };
    let rest: Vec<Folded> = fruits.collect();
    out.versions += rest.iter().map(|f| f.versions).sum::<usize>();
    let rest: Vec<Folded> = rest.into_iter().filter(|f| !f.groups.is_empty()).collect();
    if rest.is_empty() {
        return out;
    }
    let total = out.groups.len() + rest.iter().map(|f| f.groups.len()).sum::<usize>();
    let mut slot_of: KeyMap<usize> = KeyMap::with_capacity_and_hasher(total, Default::default());
    for (slot, group) in out.groups.iter().enumerate() {
        slot_of.insert(group.key, slot);
    }
    let mut facet_index: HashMap<FacetName, u32> = out
        .facet_names
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, name)| (name, i as u32))
        .collect();
    for fruit in rest {
        let remap: Vec<u32> = fruit
            .facet_names
            .into_iter()
            .map(|name| {
                let next = out.facet_names.len() as u32;
                *facet_index.entry(name.clone()).or_insert_with(|| {
                    out.facet_names.push(name);
                    next
                })
            })
            .collect();
        let mut titles = fruit.titles.into_iter();
        let counting = fruit.facets.len() == fruit.groups.len();
        for (i, group) in fruit.groups.into_iter().enumerate() {
            let title = titles.next();
            let list: Option<Vec<u32>> = counting.then(|| {
                fruit
                    .facets
                    .of(i)
                    .iter()
                    .map(|f| remap[*f as usize])
                    .collect()
            });
            match slot_of.get(&group.key) {
                None => {
                    slot_of.insert(group.key, out.groups.len());
                    out.groups.push(group);
                    out.titles.extend(title);
                    if let Some(list) = list {
                        out.facets.push(list);
                    }
                }
                Some(&slot) => {
                    let into = &mut out.groups[slot];
                    into.score = into.score.max(group.score);
                    into.updated = into.updated.max(group.updated);
                    if group.rank > into.rank {
                        into.rank = group.rank;
                        into.shown = group.shown;
                        if let (Some(title), Some(old)) = (title, out.titles.get_mut(slot)) {
                            *old = title;
                        }
                    }
                    if let Some(list) = list {
                        out.facets.extra.entry(slot).or_default().extend(list);
                    }
                }
            }
        }
    }
    out
}

/// The terms of `ords` (sorted, distinct) in a segment's dictionary, in one pass: a
/// lookup per ordinal decodes a dictionary block each time.
fn terms_of(
    dictionary: &tantivy::columnar::Dictionary,
    ords: &[u64],
) -> Result<HashMap<u64, Vec<u8>>, TantivyError> {
    let mut terms = Vec::with_capacity(ords.len());
    dictionary.sorted_ords_to_term_cb(ords.iter().copied(), |bytes| {
        terms.push(bytes.to_vec());
        Ok(())
    })?;
    Ok(ords.iter().copied().zip(terms).collect())
}

fn sorted_distinct(mut ords: Vec<u64>) -> Vec<u64> {
    ords.sort_unstable();
    ords.dedup();
    ords
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(key: Key, score: f32, rank: u32, segment: u32, updated: i64) -> Group {
        Group {
            key,
            score,
            rank,
            shown: DocAddress::new(segment, 0),
            updated,
        }
    }

    fn lists(of: &[&[u32]]) -> FacetLists {
        let mut lists = FacetLists::default();
        for list in of {
            lists.push(list.iter().copied());
        }
        lists
    }

    fn name(dim: &str, value: &str) -> FacetName {
        (dim.to_string(), value.to_string())
    }

    /// An analysis whose versions lie in two segments is one group: best score, latest
    /// update, newest version shown with its title, facets united under one numbering.
    #[test]
    fn segments_merge_by_key() {
        let first = Folded {
            groups: vec![group(1, 2.0, 1, 0, 10), group(2, 1.0, 1, 0, 5)],
            versions: 2,
            titles: vec!["a".into(), "b".into()],
            facets: lists(&[&[0], &[1]]),
            facet_names: vec![name("year", "2020"), name("year", "2021")],
        };
        let second = Folded {
            groups: vec![group(1, 1.5, u32::MAX, 1, 20)],
            versions: 1,
            titles: vec!["a draft".into()],
            // The same analysis, met again: 2020 must count once.
            facets: lists(&[&[0, 1]]),
            facet_names: vec![name("year", "2022"), name("year", "2020")],
        };
        let merged = merge(vec![second, first]);
        assert_eq!(merged.versions, 3);
        assert_eq!(merged.groups.len(), 2);
        let one = &merged.groups[0];
        assert_eq!(
            (one.key, one.score, one.rank, one.updated),
            (1, 2.0, u32::MAX, 20)
        );
        assert_eq!(one.shown, DocAddress::new(1, 0));
        assert_eq!(merged.titles[0], "a draft");
        let counts: Vec<(&FacetName, u64)> = merged
            .facet_names
            .iter()
            .zip(merged.facet_counts())
            .collect();
        assert_eq!(
            counts,
            [
                (&name("year", "2020"), 1),
                (&name("year", "2021"), 1),
                (&name("year", "2022"), 1)
            ]
        );
    }

    /// Only the first `n` are ordered, and they are the `n` best; ties go by key.
    #[test]
    fn the_page_is_the_best_in_order() {
        let mut folded = Folded::empty();
        folded.groups = (0..100u32)
            .map(|i| group(Key::from(100 - i), (i % 10) as f32, 1, 0, 0))
            .collect();
        folded.sort_first(3, super::super::search::Sort::Relevance);
        let top: Vec<(f32, Key)> = folded.groups[..3]
            .iter()
            .map(|g| (g.score, g.key))
            .collect();
        assert_eq!(top, [(9.0, 1), (9.0, 11), (9.0, 21)]);
    }
}
