//! The theme: tera templates and static assets, embedded in the binary, each of which an
//! archive may override by committing a file of the same name under `templates/site/`
//! or `site/`. Files an archive adds beside them are used too (a template it includes,
//! an image its stylesheet names).

use std::collections::BTreeMap;

use super::util::Fingerprint;

/// The templates every build has, as shipped.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/site/base.html")),
    (
        "macros.html",
        include_str!("../../templates/site/macros.html"),
    ),
    ("home.html", include_str!("../../templates/site/home.html")),
    (
        "listing.html",
        include_str!("../../templates/site/listing.html"),
    ),
    (
        "facets.html",
        include_str!("../../templates/site/facets.html"),
    ),
    (
        "record.html",
        include_str!("../../templates/site/record.html"),
    ),
    (
        "withdrawn.html",
        include_str!("../../templates/site/withdrawn.html"),
    ),
    ("diff.html", include_str!("../../templates/site/diff.html")),
    (
        "schema.html",
        include_str!("../../templates/site/schema.html"),
    ),
    (
        "schemas.html",
        include_str!("../../templates/site/schemas.html"),
    ),
    (
        "search.html",
        include_str!("../../templates/site/search.html"),
    ),
    ("404.html", include_str!("../../templates/site/404.html")),
];

/// The assets every build copies to `assets/`, as shipped.
pub const ASSETS: &[(&str, &[u8])] = &[
    ("style.css", include_bytes!("../../site/style.css")),
    ("search.js", include_bytes!("../../site/search.js")),
    ("favicon.svg", include_bytes!("../../site/favicon.svg")),
];

/// The templates and assets of one build: the embedded ones with the archive's
/// overrides applied.
#[derive(Debug, Clone, Default)]
pub struct Theme {
    pub templates: BTreeMap<String, String>,
    pub assets: BTreeMap<String, Vec<u8>>,
    /// The names the archive overrides or adds, for the build summary.
    pub overridden: Vec<String>,
}

impl Theme {
    /// The embedded theme, then `overrides` (`templates/site/<name>` and
    /// `site/<name>` files of the archive, by path).
    pub fn with_overrides(overrides: Vec<(String, Vec<u8>)>) -> Result<Theme, String> {
        let mut theme = Theme::default();
        for (name, text) in TEMPLATES {
            theme.templates.insert(name.to_string(), text.to_string());
        }
        for (name, bytes) in ASSETS {
            theme.assets.insert(name.to_string(), bytes.to_vec());
        }
        for (path, bytes) in overrides {
            if let Some(name) = path.strip_prefix("templates/site/") {
                let text = String::from_utf8(bytes)
                    .map_err(|_| format!("{path} is not UTF-8 text; save it as UTF-8"))?;
                theme.templates.insert(name.to_string(), text);
            } else if let Some(name) = path.strip_prefix("site/") {
                theme.assets.insert(name.to_string(), bytes);
            } else {
                continue;
            }
            theme.overridden.push(path);
        }
        Ok(theme)
    }

    /// A digest of everything in the theme: when it changes, every page is rebuilt.
    pub fn fingerprint(&self) -> String {
        let mut f = Fingerprint::new();
        for (name, text) in &self.templates {
            f.add(name).add(text);
        }
        for (name, bytes) in &self.assets {
            f.add(name).add(bytes);
        }
        f.finish()
    }
}
