//! `capsule.toml`: the archive's name, links, identity sources and push policy.
//!
//! Unknown keys are errors, not silently ignored: a misspelt policy setting must not
//! quietly leave an archive unprotected.

use serde::{Deserialize, Serialize};

/// The whole of capsule.toml.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub archive: ArchiveSettings,
    #[serde(default)]
    pub identity: IdentitySettings,
    #[serde(default)]
    pub policy: Policy,
    /// Mail settings are read by the notification engine; kept whole here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail: Option<toml::Table>,
    /// The static site (`capsule build`, post-receive rebuilds).
    #[serde(default)]
    pub site: SiteSettings,
    /// Experiment databases that `capsule fetch` fills deposits from.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub fetchers: std::collections::BTreeMap<String, crate::fetch::FetcherSettings>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveSettings {
    #[serde(default = "default_name")]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Where the archive's site lives; links in mails and pages are built from it.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The branch that holds the archive's accepted state.
    #[serde(default = "default_branch")]
    pub default_branch: String,
}

impl Default for ArchiveSettings {
    fn default() -> Self {
        ArchiveSettings {
            name: default_name(),
            description: String::new(),
            base_url: default_base_url(),
            default_branch: default_branch(),
        }
    }
}

fn default_name() -> String {
    "capsule archive".into()
}
fn default_base_url() -> String {
    "http://localhost:8000".into()
}
fn default_branch() -> String {
    "main".into()
}

/// `[site]`: how `capsule build` renders the archive, and where post-receive puts it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SiteSettings {
    /// The folder the post-receive hook rebuilds the site into (absolute, or relative
    /// to the repository's git folder). Unset: the hook builds no site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out: Option<String>,
    /// The site's title (default: the archive's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The public address of the site (default: `archive.base_url`); absolute links in
    /// the sitemap, the feed and the API are built from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Whether post-receive builds an internal site with the drafts of the default
    /// branch (and restricted deposits). Never set this for a site the world can read.
    #[serde(default)]
    pub drafts: bool,
    /// Records per listing page (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_page: Option<usize>,
}

/// Where the pusher's user name comes from.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySettings {
    /// Environment variables to read, first match wins.
    #[serde(default = "default_identity_env")]
    pub env: Vec<String>,
    /// Whether a push without any identity is accepted.
    #[serde(default)]
    pub allow_anonymous: bool,
}

impl Default for IdentitySettings {
    fn default() -> Self {
        IdentitySettings {
            env: default_identity_env(),
            allow_anonymous: false,
        }
    }
}

/// The variables hosting servers set for hooks, in the order we trust them.
pub fn default_identity_env() -> Vec<String> {
    [
        "GL_USERNAME",
        "GITEA_PUSHER_NAME",
        "GL_USER",
        "REMOTE_USER",
        "CAPSULE_USER",
    ]
    .map(String::from)
    .to_vec()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The largest file a push may add, in bytes. Larger files belong in Git LFS.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    /// User names allowed to change schemas, capsule.toml and access.toml.
    #[serde(default)]
    pub admins: Vec<String>,
    /// Branches that cannot be deleted or force-pushed (`*` at the end matches a prefix).
    #[serde(default = "default_protected")]
    pub protected_branches: Vec<String>,
    /// Users or groups who may create deposits that they do not own themselves.
    #[serde(default)]
    pub creators: Vec<String>,
    /// Users or groups who may publish any deposit (besides each deposit's admins).
    #[serde(default)]
    pub publishers: Vec<String>,
    /// Users or groups who may review any reviewable deposit (besides its admins).
    #[serde(default)]
    pub reviewers: Vec<String>,
    /// Who may create, move or delete tags other than record tags.
    #[serde(default)]
    pub tags: TagPolicy,
}

/// Who may push tags outside `records/`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TagPolicy {
    /// Archive admins only.
    #[default]
    Admins,
    /// Anyone listed in access.toml may create them; only admins move or delete them.
    Members,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_file_bytes: default_max_file_bytes(),
            admins: Vec::new(),
            protected_branches: default_protected(),
            creators: Vec::new(),
            publishers: Vec::new(),
            reviewers: Vec::new(),
            tags: TagPolicy::default(),
        }
    }
}

fn default_max_file_bytes() -> u64 {
    20 * 1024 * 1024
}
fn default_protected() -> Vec<String> {
    vec!["main".into()]
}

impl Policy {
    /// Whether `branch` (without `refs/heads/`) is protected.
    pub fn is_protected(&self, branch: &str) -> bool {
        self.protected_branches
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => branch.starts_with(prefix),
                None => pattern == branch,
            })
    }
}

impl Settings {
    /// Parses capsule.toml text; the error says where and what.
    pub fn parse(text: &str) -> Result<Settings, SettingsError> {
        toml::from_str(text).map_err(|e| SettingsError::from_toml("capsule.toml", text, &e))
    }
}

/// A TOML file that could not be read, with its position.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct SettingsError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl SettingsError {
    pub fn from_toml(file: &str, text: &str, e: &toml::de::Error) -> Self {
        let (line, column) = e
            .span()
            .map_or((0, 0), |span| crate::locate::line_column(text, span.start));
        SettingsError {
            file: file.to_string(),
            line,
            column,
            message: e
                .message()
                .lines()
                .next()
                .unwrap_or("invalid TOML")
                .trim()
                .to_string(),
        }
    }

    pub fn into_problem(self) -> crate::problem::Problem {
        crate::problem::Problem {
            line: self.line,
            column: self.column,
            ..crate::problem::Problem::file(self.file, self.message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_an_empty_file() {
        let s = Settings::parse("").unwrap();
        assert_eq!(s.archive.default_branch, "main");
        assert_eq!(s.identity.env[0], "GL_USERNAME");
        assert_eq!(s.policy.protected_branches, ["main"]);
    }

    #[test]
    fn site_settings_are_typed() {
        let s = Settings::parse("[site]\nout = \"/srv/www\"\ntitle = \"Ours\"\n").unwrap();
        assert_eq!(s.site.out.as_deref(), Some("/srv/www"));
        assert_eq!(s.site.title.as_deref(), Some("Ours"));
        assert!(!s.site.drafts);
        let e = Settings::parse("[site]\noutput = \"x\"\n").unwrap_err();
        assert!(e.message.contains("output"), "{}", e.message);
    }

    #[test]
    fn unknown_keys_are_located() {
        let e = Settings::parse("[policy]\nmax_file_byte = 3\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 1));
        assert!(e.message.contains("max_file_byte"), "{}", e.message);
    }
}
