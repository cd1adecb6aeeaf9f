//! Why a build fails.

/// Why a build failed. Nothing of the previous site was changed.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("template error in {0}")]
    Template(String),
    #[error("{0}")]
    Output(String),
    #[error("{0}")]
    Input(String),
}
