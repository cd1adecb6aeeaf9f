//! `capsule import cap`: CERN Analysis Preservation's deposits, records and schemas
//! moved into an archive clone.
//!
//! ```text
//! source   (saved answers and record lists, or the REST API with a token) -> snapshots
//! map      (each snapshot's shape -> an Item: pid, schema, fields, people, files, dates)
//! schemas  (schema names -> the archive's; missing ones and their $refs from an export)
//! plan     (items -> deposits with their states, judged as the hook judges them,
//!           compared with the archive: what to commit and tag; the report)
//! files    (CAP's file references -> fetched bytes checked against CAP's size and
//!           checksum, or listed as missing)
//! write    (commits dated as in CAP, record tags, then the branch moves once)
//! ```
//!
//! Everything is read and judged before anything is written: a server that stops
//! answering, a bad token or an invalid record leaves the clone as it was. Nothing
//! here prints; the report is a value the command line renders.

pub mod files;
pub mod map;
pub mod plan;
pub mod schemas;
pub mod source;
pub mod write;

use std::path::PathBuf;

use git2::Repository;

use crate::access::Access;
use crate::archive::{GitTree, Source};
use crate::deposit::metadata_path;

pub use plan::{Plan, Report};
pub use source::{Api, ApiError};
pub use write::{Identity, WriteError};

/// What to import and how.
pub struct Input<'a> {
    /// Saved CAP answers, search pages and record lists (files or folders).
    pub files: Vec<PathBuf>,
    /// A CAP server to read everything from.
    pub api: Option<&'a Api>,
    /// CAP schema exports to bring missing schemas in from.
    pub schema_dirs: Vec<PathBuf>,
    /// `FROM=TO` schema (or collection) mappings.
    pub schema_map: Vec<(String, String)>,
    /// The schema of records that name none.
    pub default_schema: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("{0}")]
    Git(#[from] git2::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("access.toml at HEAD cannot be read: {0}")]
    Access(String),
}

/// Reads every snapshot, then plans the import into the clone's HEAD. Writes nothing.
pub fn plan(repo: &Repository, input: &Input<'_>) -> Result<Plan, ImportError> {
    write::check_clone(repo)?;
    let head = repo.head()?.peel_to_commit()?.id();
    let tree = GitTree::at_commit(repo, head)?;

    let (mut snapshots, mut unreadable) = source::read_files(&input.files)?;
    if let Some(api) = input.api {
        let (more, bad) = api.read_all()?;
        snapshots.extend(more);
        unreadable.extend(bad);
    }
    let mut items = Vec::new();
    for snap in &snapshots {
        match map::read_item(&snap.origin, &snap.value, snap.from_records) {
            Ok(item) => items.push(item),
            Err(reason) => unreadable.push(source::Unreadable {
                origin: snap.origin.clone(),
                reason,
            }),
        }
    }

    let access_text = tree.read("access.toml")?.unwrap_or_default();
    let access = Access::parse(&String::from_utf8_lossy(&access_text))
        .map_err(|e| ImportError::Access(e.to_string()))?;
    let schemas = schemas::Schemas {
        export: schemas::Export::read(&input.schema_dirs)?,
        api: input.api,
        map: input.schema_map.clone(),
        default: input.default_schema.clone(),
    };
    let existing = |id: &str| plan::Existing {
        value: tree
            .read(&metadata_path(id))
            .ok()
            .flatten()
            .and_then(|b| crate::json::from_bytes(&b).ok()),
        versions: crate::record::versions_of(repo, id)
            .map(|v| v.len() as u32)
            .unwrap_or(0),
    };
    let fetch = |f: &map::FileRef| -> Result<files::Fetched, ApiError> {
        let Some(api) = input.api else {
            return Ok(files::Fetched::Missing(
                if f.url.is_some() || f.bucket.is_some() {
                    "not fetched: import from the API (--from-api with a token) to fetch it".into()
                } else {
                    "CAP's export gives no address for it".into()
                },
            ));
        };
        let url = match api.file_url(f) {
            Ok(url) => url,
            Err(why) => return Ok(files::Fetched::Missing(why)),
        };
        Ok(match api.get_file(&url, f.size)? {
            Some(bytes) => files::Fetched::Bytes(bytes),
            None => files::Fetched::Missing(format!(
                "CAP answered 404 at {url}: the file is gone from CAP's storage; its reference stays in _files, add the file with `capsule attach` if you have it"
            )),
        })
    };
    Ok(plan::plan(
        &tree as &dyn Source,
        &access,
        &schemas,
        items,
        unreadable,
        &existing,
        &fetch,
    )?)
}

/// Writes a plan into the clone; fills in the report's commits and tags.
pub fn write(repo: &Repository, plan: &mut Plan, who: &Identity) -> Result<(), ImportError> {
    let (commits, tags) = write::apply(repo, plan, who)?;
    plan.report.commits = commits;
    plan.report.tags = tags;
    plan.report.written = true;
    Ok(())
}
