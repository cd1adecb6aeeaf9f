//! Rendering views through the theme's tera templates.
//!
//! Autoescaping is on for every `.html` and `.xml` template: whatever a deposit holds
//! is printed as text. Templates only ever see the structs of [`super::model`].

use serde::Serialize;
use tera::{Context, Tera};

use super::error::SiteError;
use super::model::{PageView, SiteView};
use super::theme::Theme;
use super::util::{base_with_slash, human_date, root_of};

pub struct Renderer {
    tera: Tera,
    pub site: SiteView,
    /// Set when the templates are the embedded ones, which print a page's `root`,
    /// `path` and `url` only as text: then a page wanted at several paths is rendered
    /// once with markers in their place (see [`Renderer::render_at`]).
    markers: Option<Markers>,
}

/// Stand-ins for the values that differ between the paths of one page. They carry a
/// random number drawn once per process, so that no deposit can contain them, and no
/// character that escaping changes.
struct Markers {
    root: String,
    path: String,
    url: String,
}

impl Markers {
    fn new() -> Markers {
        use std::hash::{BuildHasher, Hasher};
        let nonce = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let mark = |what: &str| format!("\u{1}capsule-{what}-{nonce:016x}\u{1}");
        Markers {
            root: mark("root"),
            path: mark("path"),
            url: mark("url"),
        }
    }

    /// The page rendered with markers, as it is at `page`'s path.
    fn resolve(&self, html: &str, page: &PageView) -> String {
        html.replace(&self.root, &tera::escape_html(&page.root))
            .replace(&self.path, &tera::escape_html(&page.path))
            .replace(&self.url, &tera::escape_html(&page.url))
    }
}

#[derive(Serialize)]
struct PageContext<'a, T: Serialize> {
    site: &'a SiteView,
    page: PageView,
    root: String,
    #[serde(flatten)]
    data: &'a T,
}

impl Renderer {
    /// Compiles the theme's templates; a syntax error names the template and the place.
    pub fn new(theme: &Theme, site: SiteView) -> Result<Renderer, SiteError> {
        let embedded_templates = !theme
            .overridden
            .iter()
            .any(|path| path.starts_with("templates/"));
        let mut tera = Tera::default();
        tera.autoescape_on(vec![".html", ".xml"]);
        tera.register_filter(
            "human_date",
            |value: &tera::Value, _: &std::collections::HashMap<String, tera::Value>| {
                Ok(tera::Value::String(human_date(
                    value.as_str().unwrap_or(""),
                )))
            },
        );
        let templates: Vec<(String, String)> = theme
            .templates
            .iter()
            .map(|(name, text)| (name.clone(), text.clone()))
            .collect();
        tera.add_raw_templates(templates)
            .map_err(|e| SiteError::Template(error_chain(&e)))?;
        Ok(Renderer {
            tera,
            site,
            markers: embedded_templates.then(Markers::new),
        })
    }

    /// Whether the site uses the embedded templates only (no template of the theme
    /// is overridden): then views may carry parts rendered in Rust that the
    /// embedded templates print as they are (a record's fields: `fields::html`).
    pub fn embedded_templates(&self) -> bool {
        self.markers.is_some()
    }

    /// A page's own context: its path, the way back to the root and its address.
    pub fn page(&self, title: &str, path: &str) -> PageView {
        let canonical = path.strip_suffix("index.html").unwrap_or(path);
        // The 404 page too has relative links, right where it lies (and from file://);
        // served in place of a missing page at any depth, a script in base.html finds
        // the site's root from the address and sets <base>.
        PageView {
            title: title.to_string(),
            path: path.to_string(),
            root: root_of(path),
            url: format!("{}{canonical}", base_with_slash(&self.site.base_url)),
        }
    }

    /// Renders `template` for the page at `path` with `data`'s fields at the top level.
    pub fn render<T: Serialize>(
        &self,
        template: &str,
        title: &str,
        path: &str,
        data: &T,
    ) -> Result<String, SiteError> {
        let mut pages = self.render_at(template, title, &[path], data)?;
        Ok(pages.pop().expect("one page per path"))
    }

    /// Renders the same `data` as pages at several `paths` (a record's landing page and
    /// its latest version), turning `data` into tera's context only once: that copy is
    /// a large part of rendering a record. With the embedded templates the page is
    /// rendered once, with markers where the paths differ, and each path's page is
    /// that text with the markers replaced.
    pub fn render_at<T: Serialize>(
        &self,
        template: &str,
        title: &str,
        paths: &[&str],
        data: &T,
    ) -> Result<Vec<String>, SiteError> {
        let Some(first) = paths.first() else {
            return Ok(Vec::new());
        };
        let single = paths.len() > 1 && self.markers.is_some();
        let page = match (&self.markers, single) {
            (Some(m), true) => PageView {
                title: title.to_string(),
                path: m.path.clone(),
                root: m.root.clone(),
                url: m.url.clone(),
            },
            _ => self.page(title, first),
        };
        let root = page.root.clone();
        let mut context = Context::from_serialize(PageContext {
            site: &self.site,
            page,
            root,
            data,
        })
        .map_err(|e| SiteError::Template(format!("{template}: {}", error_chain(&e))))?;
        if let (Some(markers), true) = (&self.markers, single) {
            let html = self
                .tera
                .render(template, &context)
                .map_err(|e| SiteError::Template(format!("{first}: {}", error_chain(&e))))?;
            return Ok(paths
                .iter()
                .map(|path| markers.resolve(&html, &self.page(title, path)))
                .collect());
        }
        let mut out = Vec::with_capacity(paths.len());
        for (i, path) in paths.iter().enumerate() {
            if i > 0 {
                let page = self.page(title, path);
                context.insert("root", &page.root);
                context.insert("page", &page);
            }
            let html = self
                .tera
                .render(template, &context)
                .map_err(|e| SiteError::Template(format!("{path}: {}", error_chain(&e))))?;
            out.push(html);
        }
        Ok(out)
    }
}

/// tera's errors say the most useful part in their sources.
fn error_chain(e: &tera::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn renderer(overrides: Vec<(String, Vec<u8>)>) -> Renderer {
        let theme = Theme::with_overrides(overrides).unwrap();
        let site = SiteView {
            title: "Archive".into(),
            description: String::new(),
            internal: false,
            base_url: "https://example.org/analyses/".into(),
            records: 1,
        };
        Renderer::new(&theme, site).unwrap()
    }

    #[derive(Serialize)]
    struct Data {
        title: &'static str,
    }

    #[test]
    fn one_page_at_two_paths_is_what_two_renders_give() {
        let paths = ["records/a/index.html", "records/a/v2/index.html"];
        // A title with characters that escaping changes, and a marker-like text.
        let data = Data {
            title: "<b>\u{1}capsule-root-0000000000000000\u{1}</b> & /",
        };
        // The embedded templates render once with markers; an archive's own
        // templates may use the paths in any way, so they are rendered per path.
        for (r, single) in [
            (renderer(Vec::new()), true),
            (
                renderer(vec![(
                    "templates/site/404.html".into(),
                    b"{{ root | length }}|{{ page.path }}|{{ page.url }}".to_vec(),
                )]),
                false,
            ),
        ] {
            assert_eq!(r.markers.is_some(), single);
            let together = r.render_at("404.html", data.title, &paths, &data).unwrap();
            let apart: Vec<String> = paths
                .iter()
                .map(|p| r.render("404.html", data.title, p, &data).unwrap())
                .collect();
            assert_eq!(together, apart);
            assert_ne!(together[0], together[1], "the paths differ in root and url");
        }
    }
}
