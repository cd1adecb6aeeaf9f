//! How anything that grows with the archive is cut into pages: listings, the API's
//! record list, sitemaps.
//!
//! Items are numbered in publication order (oldest first) and cut into full chunks of
//! `size`: numbered page `k` (1-based) holds items `(k-1)*size .. k*size` and never
//! changes when an item is added after it. The last full chunk and the items after it
//! (between `size` and `2*size - 1` of them) form the *newest* page, the one readers
//! land on (`index.html`, `api/records/index.json`); that chunk gets its numbered page
//! when the next chunk fills. So one new item changes the newest page and at most two
//! numbered pages (a new one, and the links of the one below it), whatever the number
//! of items; no numbered page goes away while items are only added.
//!
//! Reading order is newest first: the newest page, then the numbered pages from the
//! highest down to 1. `next` leads to older items, `prev` to newer ones, and following
//! `next` from the newest page meets every item exactly once.
//!
//! This module only counts: it never knows what the items are.

use std::ops::Range;

/// Records in a page of the API's record list.
pub const API_PAGE: usize = 100;
/// URLs in one sitemap: the sitemaps.org protocol allows 50,000.
pub const SITEMAP_URLS: usize = 50_000;

/// The page sizes of a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Limits {
    /// Records per listing page (`site.per_page`).
    pub listing: usize,
    /// Records per page of `api/records/`.
    pub api: usize,
    /// URLs per sitemap.
    pub sitemap: usize,
}

impl Limits {
    /// The sizes of a build with `per_page` records per listing page. The API's and
    /// the sitemaps' can be lowered through `CAPSULE_SITE_TEST_LIMITS` (`api=3,sitemap=4`),
    /// a hook for tests, which would otherwise need a hundred records to see a second
    /// page of the API and 50,000 for a second sitemap.
    pub fn new(per_page: usize) -> Limits {
        let mut limits = Limits {
            listing: per_page.max(1),
            api: API_PAGE,
            sitemap: SITEMAP_URLS,
        };
        if let Ok(text) = std::env::var("CAPSULE_SITE_TEST_LIMITS") {
            for part in text.split(',') {
                let Some((name, value)) = part.split_once('=') else {
                    continue;
                };
                let Ok(value) = value.trim().parse::<usize>() else {
                    continue;
                };
                match name.trim() {
                    "api" => limits.api = value.clamp(1, API_PAGE),
                    "sitemap" => limits.sitemap = value.clamp(1, SITEMAP_URLS),
                    _ => {}
                }
            }
        }
        limits
    }
}

/// One page: which, its items (positions in publication order) and its neighbours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub id: PageId,
    pub items: Range<usize>,
    /// Older items.
    pub next: Option<PageId>,
    /// Newer items.
    pub prev: Option<PageId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PageId {
    /// The page readers land on: the newest items.
    Newest,
    /// A full chunk, numbered from 1 (the oldest items).
    Numbered(usize),
}

/// `len` items in pages of `size`.
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    len: usize,
    size: usize,
}

impl Paging {
    pub fn new(len: usize, size: usize) -> Paging {
        Paging {
            len,
            size: size.max(1),
        }
    }

    /// The numbered pages: the full chunks whose items are not on the newest page.
    pub fn numbered(&self) -> usize {
        self.below_newest()
    }

    /// The highest numbered page whose items are not on the newest page: the newest
    /// page holds the last full chunk and what came after it, so that it is never
    /// short (between `size` and `2 * size - 1` items, when there are that many).
    fn below_newest(&self) -> usize {
        (self.len / self.size).saturating_sub(1)
    }

    fn items(&self, id: PageId) -> Range<usize> {
        match id {
            PageId::Newest => self.below_newest() * self.size..self.len,
            PageId::Numbered(k) => (k - 1) * self.size..k * self.size,
        }
    }

    /// Every page: the newest first, then the numbered pages from the highest down.
    pub fn pages(&self) -> Vec<Page> {
        let below = self.below_newest();
        let numbered = |k: usize| (k >= 1).then_some(PageId::Numbered(k));
        let mut pages = vec![Page {
            id: PageId::Newest,
            items: self.items(PageId::Newest),
            next: numbered(below),
            prev: None,
        }];
        for k in (1..=below).rev() {
            pages.push(Page {
                id: PageId::Numbered(k),
                items: self.items(PageId::Numbered(k)),
                next: numbered(k - 1),
                prev: Some(if k == below {
                    PageId::Newest
                } else {
                    PageId::Numbered(k + 1)
                }),
            });
        }
        pages
    }

    /// Numbered pages near `k` (two either side, those that exist), and the first.
    pub fn near(&self, k: usize) -> Vec<usize> {
        let last = self.numbered();
        (1..=last)
            .filter(|&p| p == 1 || p.abs_diff(k) <= 2)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Follows `next` from the newest page, then `prev` back: every item once each way.
    fn walk(len: usize, size: usize) -> (Vec<usize>, Vec<usize>) {
        let pages = Paging::new(len, size).pages();
        let find = |id: PageId| pages.iter().find(|p| p.id == id).unwrap();
        let mut forward = Vec::new();
        let mut page = find(PageId::Newest);
        loop {
            forward.extend(page.items.clone().rev());
            match page.next {
                Some(next) => page = find(next),
                None => break,
            }
        }
        let mut backward = Vec::new();
        loop {
            backward.extend(page.items.clone());
            match page.prev {
                Some(prev) => page = find(prev),
                None => break,
            }
        }
        (forward, backward)
    }

    #[test]
    fn following_next_meets_every_item_once_newest_first_and_prev_mirrors_it() {
        for size in 1..5 {
            for len in 0..20 {
                let (forward, backward) = walk(len, size);
                let expected: Vec<usize> = (0..len).rev().collect();
                assert_eq!(forward, expected, "len {len}, size {size}");
                let mut back = backward.clone();
                back.reverse();
                assert_eq!(back, expected, "len {len}, size {size}: prev");
            }
        }
    }

    #[test]
    fn one_more_item_changes_the_newest_page_and_at_most_two_numbered_ones() {
        for size in 1..5 {
            for len in 0..30 {
                let before = Paging::new(len, size).pages();
                let after = Paging::new(len + 1, size).pages();
                let changed = after
                    .iter()
                    .filter(|p| p.id != PageId::Newest && !before.contains(p))
                    .count();
                assert!(changed <= 2, "len {len}, size {size}: {changed} pages");
            }
        }
    }
}
