//! Rendering views through the theme's tera templates.
//!
//! Autoescaping is on for every `.html` and `.xml` template: whatever a deposit holds
//! is printed as text. Templates only ever see the structs of [`super::model`].

use serde::Serialize;
use tera::{Context, Tera};

use super::model::{PageView, SiteView};
use super::theme::Theme;
use super::util::{base_with_slash, root_of};
use super::SiteError;

pub struct Renderer {
    tera: Tera,
    pub site: SiteView,
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
        let mut tera = Tera::default();
        tera.autoescape_on(vec![".html", ".xml"]);
        let templates: Vec<(String, String)> = theme
            .templates
            .iter()
            .map(|(name, text)| (name.clone(), text.clone()))
            .collect();
        tera.add_raw_templates(templates)
            .map_err(|e| SiteError::Template(error_chain(&e)))?;
        Ok(Renderer { tera, site })
    }

    /// A page's own context: its path, the way back to the root and its address.
    pub fn page(&self, title: &str, path: &str) -> PageView {
        let canonical = path.strip_suffix("index.html").unwrap_or(path);
        // The 404 page is served in place of any missing page, at any depth: its links
        // start from the base URL's path instead.
        let root = if path == "404.html" {
            let base = &self.site.base_url;
            let after_scheme = base.split_once("://").map_or(base.as_str(), |(_, r)| r);
            match after_scheme.split_once('/') {
                Some((_, p)) => format!("/{}/", p.trim_matches('/')).replace("//", "/"),
                None => "/".to_string(),
            }
        } else {
            root_of(path)
        };
        PageView {
            title: title.to_string(),
            path: path.to_string(),
            root,
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
    /// a large part of rendering a record.
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
        let page = self.page(title, first);
        let root = page.root.clone();
        let mut context = Context::from_serialize(PageContext {
            site: &self.site,
            page,
            root,
            data,
        })
        .map_err(|e| SiteError::Template(format!("{template}: {}", error_chain(&e))))?;
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
