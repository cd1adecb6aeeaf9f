//! The pages stage of a build: the pages made of many records (home, listings, facets,
//! schemas, the API's record list, sitemaps, feed; see `pages`), rendered where their
//! key changed, and, in a full build, the schemas' API documents and the theme's assets.

use std::collections::{BTreeMap, HashMap};

use crate::archive::GitTree;

use super::api;
use super::error::SiteError;
use super::model::{self, RecordSummary};
use super::pages;
use super::paging::Limits;
use super::parallel::render_pages;
use super::render::Renderer;
use super::reuse;
use super::schemas;
use super::state::RecordState;
use super::theme::Theme;
use super::write::{self, Output};

/// What the shared pages take from the build's configuration.
pub struct SiteParts<'a> {
    pub limits: Limits,
    pub base_url: &'a str,
    pub title: &'a str,
    pub theme: &'a Theme,
}

/// Renders the shared pages of `states` (every record on the site, by id) whose key
/// differs from `previous_pages` (all of them in a full build); returns every shared
/// page's key, by path. `dirty`, in an incremental build: the listing folders whose
/// records may have changed (see [`reuse::Reuse`]).
pub fn render(
    renderer: &mut Renderer,
    output: &Output,
    tree: &GitTree<'_>,
    states: &BTreeMap<String, RecordState>,
    site: SiteParts<'_>,
    previous_pages: &BTreeMap<String, String>,
    dirty: Option<&HashMap<String, reuse::Dirty>>,
) -> Result<BTreeMap<String, String>, SiteError> {
    let incremental = output.is_incremental();
    let summaries: Vec<&RecordSummary> =
        states.values().filter_map(|s| s.summary.as_ref()).collect();
    let digests: pages::Digests = states
        .values()
        .filter_map(|s| Some((pages::address(s.summary.as_ref()?), s.digest.as_str())))
        .collect();
    let reuse = match dirty {
        Some(dirty) if incremental => reuse::Reuse {
            previous: previous_pages,
            dirty: Some(dirty),
        },
        _ => reuse::Reuse::nothing(),
    };
    let schema_list = schemas::schema_views(tree);
    let schema_titles: BTreeMap<String, String> = schema_list
        .iter()
        .map(|(v, _)| (v.name.clone(), v.title.clone()))
        .collect();
    // The feed's 50 newest versions, chosen among borrowed ones.
    let mut feed: Vec<(&str, u32, &str, &str)> = Vec::new();
    for (id, state) in states {
        if let Some(summary) = &state.summary {
            if summary.draft && state.versions.is_empty() {
                continue;
            }
            for (v, date) in &state.versions {
                feed.push((id, *v, date, &summary.title));
            }
        }
    }
    // The 50 newest chosen without sorting every version.
    let order = |a: &(&str, u32, &str, &str), b: &(&str, u32, &str, &str)| {
        b.2.cmp(a.2).then(a.0.cmp(b.0)).then(b.1.cmp(&a.1))
    };
    if feed.len() > 50 {
        feed.select_nth_unstable_by(49, order);
        feed.truncate(50);
    }
    feed.sort_unstable_by(order);
    let feed: Vec<(String, u32, String, String)> = feed
        .into_iter()
        .take(50)
        .map(|(id, v, date, title)| (id.to_string(), v, date.to_string(), title.to_string()))
        .collect();
    let views: Vec<model::SchemaView> = schema_list.iter().map(|(v, _)| v.clone()).collect();
    renderer.site.records = summaries.len();
    let mut page_keys = BTreeMap::new();
    render_pages(renderer, output, |queue| {
        pages::plan(
            &summaries,
            &digests,
            reuse,
            &views,
            &schema_titles,
            site.limits,
            site.base_url,
            site.title,
            &feed,
            &mut |page| {
                let unchanged = matches!(page.render, pages::RenderFn::Unchanged);
                if !unchanged && (!incremental || previous_pages.get(&page.path) != Some(&page.key))
                {
                    queue(page.path.clone(), page.render)?;
                }
                page_keys.insert(page.path, page.key);
                Ok(())
            },
        )
    })?;
    if !incremental {
        for (view, compiled) in &schema_list {
            let json = api::schema(site.base_url, compiled);
            output.write(
                &format!("api/schemas/{}/{}/index.json", view.name, view.version),
                &api::to_bytes(&json),
            )?;
        }
        for (name, bytes) in &site.theme.assets {
            if write::is_safe_relative(name) {
                output.write(&format!("assets/{name}"), bytes)?;
            }
        }
    }

    Ok(page_keys)
}
