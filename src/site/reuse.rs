//! What an incremental build can keep of the listings and the API's record list: which
//! listing folders the records rendered again (or gone) were and are on, and for each
//! listing whether its pages are all as they were, only those holding records that
//! changed in place need planning, or all of them do. `pages` plans what this says
//! must be; every other page keeps the key the previous build's state has.
//!
//! This module only decides; it never renders, and in debug builds `pages` checks
//! every kept key against planning the page.

use std::collections::{BTreeMap, HashMap};

use super::facts::facet_slug;
use super::model::RecordSummary;
use super::paging::{Page, PageId};

/// What an incremental build knows of the listings before planning them: the previous
/// build's page keys, and the listing folders whose records may have changed (those
/// of every record rendered again or gone, as it was and as it is). The pages of any
/// other listing show the same records, in the same order, with the same summaries,
/// so their keys are the previous ones: a rebuild after one new version plans a dozen
/// listings, not every one of the archive's (a key per 50 records of every facet).
pub struct Reuse<'a> {
    pub previous: &'a BTreeMap<String, String>,
    /// `None`: plan every listing (a full build).
    pub dirty: Option<&'a HashMap<String, Dirty>>,
}

/// How the records of a listing may have changed.
#[derive(Debug, Default, PartialEq)]
pub struct Dirty {
    /// A record came, went, moved in publication order or changed the label the
    /// listing is named by: every page is planned.
    pub moved: bool,
    /// Records that changed where they were, `(created, id)`: only the pages that
    /// hold them (and the newest page) are planned, as the listing's length and
    /// order, and so every other page, are as they were.
    pub in_place: Vec<(String, String)>,
}

/// What to plan of one listing.
pub(super) enum ListingPlan {
    Every,
    /// Only the newest page and those holding these positions (in publication order).
    Some(Vec<usize>),
    /// Nothing: the previous build's pages and keys, sorted by path.
    Kept(Vec<(String, String)>),
}

impl Reuse<'_> {
    /// A full build's: nothing is reused.
    pub fn nothing() -> Reuse<'static> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        Reuse {
            previous: &EMPTY,
            dirty: None,
        }
    }

    /// What to plan of listing `folder`, whose records are `records` (in publication
    /// order).
    pub(super) fn listing_plan(&self, folder: &str, records: &[&RecordSummary]) -> ListingPlan {
        let Some(dirty) = self.dirty else {
            return ListingPlan::Every;
        };
        match dirty.get(folder) {
            None => match self.kept(folder) {
                Some(kept) => ListingPlan::Kept(kept),
                None => ListingPlan::Every,
            },
            Some(d) if d.moved => ListingPlan::Every,
            Some(d) => {
                let mut positions = Vec::new();
                for (created, id) in &d.in_place {
                    let at = records.partition_point(|r| {
                        (r.created.as_str(), r.id.as_str()) < (created.as_str(), id.as_str())
                    });
                    match records.get(at) {
                        Some(r) if r.id == *id => positions.push(at),
                        _ => return ListingPlan::Every,
                    }
                }
                ListingPlan::Some(positions)
            }
        }
    }

    /// The previous keys of the pages of listing `folder`, when it is known to be as
    /// it was.
    fn kept(&self, folder: &str) -> Option<Vec<(String, String)>> {
        let prefix = format!("{folder}/");
        let pages: Vec<(String, String)> = self
            .previous
            .range(prefix.clone()..)
            .take_while(|(path, _)| path.starts_with(&prefix))
            .filter(|(path, _)| !path[prefix.len()..].contains('/'))
            .map(|(path, key)| (path.clone(), key.clone()))
            .collect();
        // A listing always has its newest page: without it the previous build did
        // not have this listing, and it is planned.
        pages
            .iter()
            .any(|(path, _)| path[prefix.len()..] == *"index.html")
            .then_some(pages)
    }
}

/// The listing folders a record is on, each with the label that names it:
/// `browse/all` and one per facet value it carries (as [`facets`] groups them).
pub fn listing_folders(r: &RecordSummary) -> Vec<(String, String)> {
    let mut folders = vec![("browse/all".to_string(), String::new())];
    let mut add = |folder: &str, label: &str| {
        if label.trim().is_empty() {
            return;
        }
        let slug = if folder == "schema" {
            label.to_string()
        } else {
            facet_slug(label)
        };
        folders.push((format!("browse/{folder}/{slug}"), label.to_string()));
    };
    add("schema", &r.schema);
    add("experiment", &r.experiment);
    add("year", &r.year);
    for k in &r.keywords {
        add("keyword", k);
    }
    for p in &r.people {
        add("person", p);
    }
    folders
}

/// What a record rendered again or gone (`old`: its summary before, `new`: now) may
/// have changed in the listings, added to `dirty`.
pub fn mark_dirty(
    dirty: &mut HashMap<String, Dirty>,
    old: Option<&RecordSummary>,
    new: Option<&RecordSummary>,
) {
    let before = old.map(listing_folders).unwrap_or_default();
    let after = new.map(listing_folders).unwrap_or_default();
    for (folder, label) in before.iter().chain(&after) {
        let entry = dirty.entry(folder.clone()).or_default();
        // In place: on the listing before and after, under the same label, first
        // published at the same time.
        let same_place = match (old, new) {
            (Some(o), Some(n)) if o.created == n.created && o.id == n.id => {
                before.contains(&(folder.clone(), label.clone()))
                    && after.contains(&(folder.clone(), label.clone()))
            }
            _ => false,
        };
        match (same_place, new) {
            (true, Some(n)) => {
                let place = (n.created.clone(), n.id.clone());
                if !entry.in_place.contains(&place) {
                    entry.in_place.push(place);
                }
            }
            _ => entry.moved = true,
        }
    }
}

/// Whether `page` (not the newest) holds none of `positions`, and so is as the
/// previous build left it, with the key it had then; `None` when it must be planned.
pub(super) fn kept_page<'k>(
    page: &Page,
    path: &str,
    only: Option<(&[usize], &'k BTreeMap<String, String>)>,
) -> Option<&'k String> {
    let (positions, previous) = only?;
    if page.id == PageId::Newest || positions.iter().any(|p| page.items.contains(p)) {
        return None;
    }
    previous.get(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::site::pages::facets;
    use crate::site::pages::tests::summary;

    /// A rebuild reuses the pages of every listing not named by `listing_folders` for
    /// the records that changed: it must name every listing `facets` puts a record on.
    #[test]
    fn listing_folders_are_the_listings_facets_put_a_record_on() {
        let records = [
            summary(
                "a",
                "analysis",
                "CMS",
                &["Higgs", "higgs", "", "Ünïque", "!!"],
            ),
            summary("b", "", "  ", &["b-quark"]),
            summary("c", "note", "ATLAS", &[]),
        ];
        let refs: Vec<&RecordSummary> = records.iter().collect();
        let facets = facets(&refs, &BTreeMap::new());
        for r in &records {
            let mut on: Vec<String> = vec!["browse/all".into()];
            for facet in &facets {
                for (slug, (_, list)) in &facet.values {
                    if list.iter().any(|x| x.id == r.id) {
                        on.push(format!("browse/{}/{slug}", facet.folder));
                    }
                }
            }
            on.sort();
            let mut named: Vec<String> = listing_folders(r).into_iter().map(|(f, _)| f).collect();
            named.sort();
            named.dedup();
            assert_eq!(named, on, "{}", r.id);
        }
    }

    /// A new version first published when it was stays in place on the listings it
    /// stays on under the same label; any other change moves it: those listings are
    /// planned whole.
    #[test]
    fn a_record_changed_in_place_marks_only_its_pages() {
        let old = summary("a", "analysis", "CMS", &["Higgs", "top"]);
        let mut new = old.clone();
        new.title = "Retitled".into();
        new.keywords = vec!["higgs".into(), "bottom".into()];
        let mut dirty = HashMap::new();
        mark_dirty(&mut dirty, Some(&old), Some(&new));
        let place = vec![("2026-01-01T00:00:00Z".to_string(), "a".to_string())];
        for folder in [
            "browse/all",
            "browse/schema/analysis",
            "browse/experiment/cms",
        ] {
            assert_eq!(dirty[folder].in_place, place, "{folder}");
            assert!(!dirty[folder].moved, "{folder}");
        }
        // Same slug, another label: the listing's name may change.
        assert!(dirty["browse/keyword/higgs"].moved);
        assert!(dirty["browse/keyword/top"].moved);
        assert!(dirty["browse/keyword/bottom"].moved);
        // Another first publication, or a record gone or new, moves it everywhere.
        let mut later = new.clone();
        later.created = "2027-01-01T00:00:00Z".into();
        for (old, new) in [
            (Some(&old), Some(&later)),
            (Some(&old), None),
            (None, Some(&new)),
        ] {
            let mut dirty = HashMap::new();
            mark_dirty(&mut dirty, old, new);
            assert!(dirty.values().all(|d| d.moved), "{dirty:?}");
        }
    }
}
