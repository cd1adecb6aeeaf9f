//! What a build is asked to do.

use std::path::PathBuf;

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The revision whose reviews, schemas, theme and settings the site uses (and
    /// whose drafts an internal build shows). Default: the archive's default branch.
    pub rev: Option<String>,
    pub out: PathBuf,
    /// An internal site: drafts, restricted deposits and internal reviews included.
    pub drafts: bool,
    /// Overrides `site.base_url` and `archive.base_url`.
    pub base_url: Option<String>,
    /// Reuse the previous build in `out` where its inputs did not change.
    pub incremental: bool,
}
