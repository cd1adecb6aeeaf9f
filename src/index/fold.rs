//! Folding a query's matching versions into analyses, as tantivy collects them.
//!
//! Each match is read from fast-field columns only (the analysis key, version, update
//! time; the title ordinal and facet ordinals when the request sorts by title or counts
//! facets) and folded into its analysis in the segment being searched. Strings are
//! resolved once per segment for the distinct ordinals that need them; ids are not read
//! at all here: the analysis key is a 128-bit digest of the id, and the page's hits read
//! their id from the stored document. A broad query over 100k analyses thus costs a
//! few column reads and one hash-map probe per match.

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

/// The matching versions of one analysis.
pub struct Group {
    pub key: Key,
    pub score: f32,
    /// The newest matching version: (rank, address), the draft ranking highest.
    pub shown: (u64, DocAddress),
    /// Seconds since the epoch, the latest among the matching versions.
    pub updated: i64,
    /// The shown version's sort title; empty unless the request sorts by title.
    pub title_sort: String,
    /// Every facet of the matching versions, as indices into [`Folded::facet_names`];
    /// empty unless the request counts facets.
    pub facets: Vec<u32>,
}

/// What a search found: its analyses, and every matching version.
pub struct Folded {
    pub groups: Vec<Group>,
    /// (analysis, version) of every matching version, for the page's hits to mark
    /// which of their versions matched.
    pub matched: Vec<(Key, u64)>,
    pub facet_names: Vec<FacetName>,
}

impl Folded {
    /// The number of matching versions.
    pub fn versions(&self) -> usize {
        self.matched.len()
    }

    /// The matching versions of one analysis.
    pub fn matched_versions(&self, key: Key) -> std::collections::BTreeSet<u64> {
        self.matched
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .collect()
    }
}

/// Versions rank by number, and the draft (version 0) above them all.
pub fn rank(version: u64) -> u64 {
    if version == 0 {
        u64::MAX
    } else {
        version
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
    slot_of: KeyMap<u32>,
    groups: Vec<Group>,
    matched: Vec<(Key, u64)>,
    /// (group slot, facet ordinal of this segment).
    facet_ords: Vec<(u32, u64)>,
}

impl Collector for Fold {
    type Fruit = Folded;
    type Child = FoldSegment;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<FoldSegment> {
        let fast = reader.fast_fields();
        let cols = Columns {
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
            slot_of: KeyMap::default(),
            groups: Vec::new(),
            matched: Vec::new(),
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
        let cols = &self.cols;
        let key = (Key::from(cols.hi.first(doc).unwrap_or(0)) << 64)
            | Key::from(cols.lo.first(doc).unwrap_or(0));
        let version = cols.version.first(doc).unwrap_or(0);
        let updated = cols
            .updated
            .first(doc)
            .map_or(0, |d| d.into_timestamp_secs());
        let address = DocAddress::new(self.segment, doc);
        let slot = *self.slot_of.entry(key).or_insert_with(|| {
            self.groups.push(Group {
                key,
                score,
                shown: (rank(version), address),
                updated,
                title_sort: String::new(),
                facets: Vec::new(),
            });
            (self.groups.len() - 1) as u32
        });
        let group = &mut self.groups[slot as usize];
        group.score = group.score.max(score);
        group.updated = group.updated.max(updated);
        if rank(version) > group.shown.0 {
            group.shown = (rank(version), address);
        }
        self.matched.push((key, version));
        if let Some(reader) = &cols.facets {
            self.facet_ords
                .extend(reader.facet_ords(doc).map(|ord| (slot, ord)));
        }
    }

    fn harvest(mut self) -> Folded {
        let mut facet_names = Vec::new();
        // Strings are resolved here, once per distinct ordinal; a failure to read a
        // dictionary leaves the value empty (sorting or counting by it degrades, the
        // hits stay right).
        if let Some(column) = &self.cols.title {
            let ords: Vec<Option<u64>> = self
                .groups
                .iter()
                .map(|g| column.term_ords(g.shown.1.doc_id).next())
                .collect();
            let terms = terms_of(
                column.dictionary(),
                &sorted_distinct(ords.iter().flatten().copied().collect()),
            )
            .unwrap_or_default();
            for (group, ord) in self.groups.iter_mut().zip(ords) {
                if let Some(bytes) = ord.and_then(|o| terms.get(&o)) {
                    group.title_sort = String::from_utf8_lossy(bytes).into_owned();
                }
            }
        }
        if let Some(reader) = &self.cols.facets {
            let ords = sorted_distinct(self.facet_ords.iter().map(|(_, o)| *o).collect());
            let terms = terms_of(reader.facet_dict(), &ords).unwrap_or_default();
            let mut index_of: HashMap<u64, u32> = HashMap::new();
            for (ord, bytes) in terms {
                let Ok(facet) = Facet::from_encoded(bytes) else {
                    continue;
                };
                if let [dimension, value] = facet.to_path().as_slice() {
                    index_of.insert(ord, facet_names.len() as u32);
                    facet_names.push((dimension.to_string(), value.to_string()));
                }
            }
            for (slot, ord) in std::mem::take(&mut self.facet_ords) {
                if let Some(index) = index_of.get(&ord) {
                    self.groups[slot as usize].facets.push(*index);
                }
            }
            for group in &mut self.groups {
                group.facets.sort_unstable();
                group.facets.dedup();
            }
        }
        Folded {
            groups: self.groups,
            matched: self.matched,
            facet_names,
        }
    }
}

/// The segments' analyses as one list: an analysis whose versions lie in several
/// segments becomes one group.
fn merge(mut fruits: Vec<Folded>) -> Folded {
    if fruits.len() == 1 {
        return fruits.pop().expect("one fruit");
    }
    let mut out = Folded {
        groups: Vec::with_capacity(fruits.iter().map(|f| f.groups.len()).sum()),
        matched: Vec::with_capacity(fruits.iter().map(|f| f.matched.len()).sum()),
        facet_names: Vec::new(),
    };
    let mut slot_of: KeyMap<usize> = KeyMap::default();
    let mut facet_index: HashMap<FacetName, u32> = HashMap::new();
    for fruit in fruits {
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
        out.matched.extend(fruit.matched);
        for mut group in fruit.groups {
            for facet in &mut group.facets {
                *facet = remap[*facet as usize];
            }
            match slot_of.get(&group.key) {
                None => {
                    slot_of.insert(group.key, out.groups.len());
                    out.groups.push(group);
                }
                Some(&slot) => {
                    let into = &mut out.groups[slot];
                    into.score = into.score.max(group.score);
                    into.updated = into.updated.max(group.updated);
                    if group.shown.0 > into.shown.0 {
                        into.shown = group.shown;
                        into.title_sort = group.title_sort;
                    }
                    into.facets.extend(group.facets);
                    into.facets.sort_unstable();
                    into.facets.dedup();
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

/// Puts the first `n` analyses in order (the rest stay after them, unordered): a page
/// needs only the analyses before its end, and a broad query finds tens of thousands.
/// Ties fall back to the analysis key: an order that does not depend on how the index
/// is split into segments.
pub fn sort_first(groups: &mut [Group], n: usize, sort: super::search::Sort) {
    use super::search::Sort;
    use std::cmp::Ordering;
    let order = |a: &Group, b: &Group| -> Ordering {
        let by_key = || a.key.cmp(&b.key);
        match sort {
            Sort::Relevance => b
                .score
                .total_cmp(&a.score)
                .then(b.updated.cmp(&a.updated))
                .then_with(by_key),
            Sort::Newest => b.updated.cmp(&a.updated).then_with(by_key),
            Sort::Title => a.title_sort.cmp(&b.title_sort).then_with(by_key),
        }
    };
    if n == 0 {
        return;
    }
    if n < groups.len() {
        groups.select_nth_unstable_by(n - 1, order);
    }
    groups[..n].sort_unstable_by(order);
}
