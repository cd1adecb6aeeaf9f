//! Preservation: what leaves the archive for the long term, and the checks that what
//! stays in it is intact.
//!
//! - [`snapshot`] reads one record version exactly as its tag names it (never a
//!   branch: drafts never leave through here).
//! - [`metadata`] maps a deposit to the facts every format shares (title, people,
//!   datasets, software, publications), and builds schema.org JSON-LD and RO-Crate
//!   from them; [`datacite`] builds DataCite 4.5 JSON and XML; [`cite`] BibTeX,
//!   CSL-JSON and a human citation. These builders are pure: the site calls them too.
//! - [`bag`] writes and verifies BagIt 1.0 bags (folders or zips); [`lfs`] puts the
//!   content of Git LFS files in place of their pointers.
//! - [`swhid`] computes Software Heritage identifiers of captured code.
//! - [`doi`] registers DataCite DOIs and keeps what was registered in
//!   `identifiers.json` beside the deposit.
//! - [`tombstone`] is withdrawal: the committed `TOMBSTONE.json` and its rules.
//! - [`audit`] checks fixity: git's objects, record versions, bundles, written bags.
//!
//! Nothing here prints or exits; nothing here writes to the repository except
//! through files the CLI commits.

pub mod audit;
pub mod bag;
pub mod cite;
pub mod datacite;
pub mod doi;
pub mod export;
pub mod lfs;
pub mod metadata;
pub mod swhid;
pub mod tombstone;
mod zip;

use git2::{ObjectType, Oid, Repository};
use serde::Serialize;
use serde_json::Value;

use crate::access::DepositAccess;
use crate::archive::GitTree;
use crate::record::{versions_of, RecordTag};
use crate::settings::Settings;

/// Why a record version cannot be read or leave the archive.
#[derive(Debug, thiserror::Error)]
pub enum PreserveError {
    #[error("deposit {0} has no published version: publish it first (`capsule publish {0}`)")]
    Unpublished(String),
    #[error("deposit {id} has no record version v{version}; its versions are {known}")]
    NoSuchVersion {
        id: String,
        version: u32,
        known: String,
    },
    #[error("records/{id}/v{version} has no {path}: the tagged commit does not hold the deposit")]
    NoDeposit {
        id: String,
        version: u32,
        path: String,
    },
    #[error("{id} was withdrawn on {date} ({reason}); its metadata and files no longer leave the archive, and its id stays reserved")]
    Withdrawn {
        id: String,
        date: String,
        reason: String,
    },
    #[error("{id} is restricted (its _access.deposit-read is not public), so it is not exported publicly; an archive admin may export it with --internal, which keeps internal reviews too")]
    Restricted { id: String },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Git(#[from] git2::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// One file of a deposit's folder at a record version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepositFile {
    /// Relative to the deposit's folder, forward slashes.
    pub path: String,
    pub blob: Oid,
    pub executable: bool,
}

/// One record version, read from its tag.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub id: String,
    pub version: u32,
    /// Every published version of the deposit, ascending.
    pub versions: Vec<u32>,
    pub commit: Oid,
    /// The annotated tag object, when there is one.
    pub tag: Option<Oid>,
    /// When the version was published: the tagger's time, else the commit's (unix
    /// seconds). Every date in an export comes from here, so exports are repeatable.
    pub published: i64,
    /// The deposit's folder (tree) at the tagged commit.
    pub folder: Oid,
    pub deposit: Value,
    /// Every file of the folder, sorted by path (deposit.json and reviews included).
    pub files: Vec<DepositFile>,
}

impl Snapshot {
    /// The publication date, `YYYY-MM-DD`.
    pub fn date(&self) -> String {
        crate::history::rfc3339(self.published)[..10].to_string()
    }

    /// The publication year.
    pub fn year(&self) -> i32 {
        self.date()[..4].parse().unwrap_or(1970)
    }

    /// Whether anybody may read the deposit (`_access.deposit-read` public).
    pub fn is_public(&self) -> bool {
        DepositAccess::of(&self.deposit).is_public()
    }
}

/// Parses `ID` or `ID@vN`.
pub fn parse_spec(spec: &str) -> Result<(String, Option<u32>), String> {
    let (id, version) = match spec.split_once('@') {
        Some((id, v)) => {
            let n = v
                .strip_prefix('v')
                .and_then(|n| n.parse::<u32>().ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("`{v}` is not a record version: write ID@v1, ID@v2, ..."))?;
            (id, Some(n))
        }
        None => (spec, None),
    };
    crate::deposit::check_id(id)?;
    Ok((id.to_string(), version))
}

/// Reads record version `version` of `id` (the newest when `None`).
pub fn snapshot(
    repo: &Repository,
    id: &str,
    version: Option<u32>,
) -> Result<Snapshot, PreserveError> {
    let tags = versions_of(repo, id)?;
    let Some(last) = tags.last() else {
        return Err(PreserveError::Unpublished(id.to_string()));
    };
    let wanted = version.unwrap_or(last.version);
    let Some(tag) = tags.iter().find(|t| t.version == wanted) else {
        return Err(PreserveError::NoSuchVersion {
            id: id.to_string(),
            version: wanted,
            known: tags
                .iter()
                .map(|t| format!("v{}", t.version))
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    read_snapshot(repo, tag, tags.iter().map(|t| t.version).collect())
}

fn read_snapshot(
    repo: &Repository,
    tag: &RecordTag,
    versions: Vec<u32>,
) -> Result<Snapshot, PreserveError> {
    let id = tag.id.as_str();
    let missing = || PreserveError::NoDeposit {
        id: id.to_string(),
        version: tag.version,
        path: crate::deposit::metadata_path(id),
    };
    let tree = GitTree::at_commit(repo, tag.commit)?;
    let folder = tree.deposit_folder(id)?.ok_or_else(missing)?;
    let bytes = tree
        .read_deposit_file(id, "deposit.json")?
        .ok_or_else(missing)?;
    let deposit = crate::json::from_bytes(&bytes).map_err(|e| {
        PreserveError::Invalid(format!(
            "records/{id}/v{}: {} is not valid JSON: {e}",
            tag.version,
            crate::deposit::metadata_path(id)
        ))
    })?;
    let published = match tag.tag.map(|t| repo.find_tag(t)) {
        Some(Ok(t)) => t.tagger().map(|s| s.when().seconds()),
        _ => None,
    }
    .unwrap_or(repo.find_commit(tag.commit)?.time().seconds());
    Ok(Snapshot {
        id: id.to_string(),
        version: tag.version,
        versions,
        commit: tag.commit,
        tag: tag.tag,
        published,
        folder,
        deposit,
        files: list_files(repo, folder)?,
    })
}

/// Every blob under `folder`, sorted by path. Submodule links and symbolic links
/// are not files of a deposit (the hook refuses them); they are skipped.
pub fn list_files(repo: &Repository, folder: Oid) -> Result<Vec<DepositFile>, git2::Error> {
    let mut files = Vec::new();
    repo.find_tree(folder)?
        .walk(git2::TreeWalkMode::PreOrder, |root, entry| {
            if entry.kind() == Some(ObjectType::Blob) && entry.filemode() != 0o120000 {
                if let Some(name) = entry.name() {
                    files.push(DepositFile {
                        path: format!("{root}{name}"),
                        blob: entry.id(),
                        executable: entry.filemode() == 0o100755,
                    });
                }
            }
            git2::TreeWalkResult::Ok
        })?;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// How an identifier is spelt and where it resolves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identifier {
    /// `DOI` or `URL`.
    pub scheme: &'static str,
    /// The DOI name (`10.1234/abc`) or the URL.
    pub value: String,
    /// Where it resolves (`https://doi.org/...` for a DOI).
    pub url: String,
}

impl Identifier {
    pub fn doi(name: &str) -> Identifier {
        Identifier {
            scheme: "DOI",
            value: name.to_string(),
            url: format!("https://doi.org/{name}"),
        }
    }

    pub fn url(url: String) -> Identifier {
        Identifier {
            scheme: "URL",
            value: url.clone(),
            url,
        }
    }

    pub fn is_doi(&self) -> bool {
        self.scheme == "DOI"
    }
}

/// A record's identifiers: the concept (always the newest version) and the versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identifiers {
    pub concept: Identifier,
    /// The version being described.
    pub version: Identifier,
    /// Every published version, ascending.
    pub versions: Vec<(u32, Identifier)>,
    /// The landing pages, whatever the identifiers are.
    pub concept_page: String,
    pub version_page: String,
}

/// The landing page of a record (`<base>/records/<id>`) or a version (`.../v<N>`).
pub fn landing_page(base_url: &str, id: &str, version: Option<u32>) -> String {
    let base = base_url.trim_end_matches('/');
    match version {
        Some(n) => format!("{base}/records/{id}/v{n}"),
        None => format!("{base}/records/{id}"),
    }
}

/// The identifiers of `snapshot`: registered, findable DOIs where `registered` has
/// them, the landing pages otherwise.
pub fn identifiers(
    settings: &Settings,
    snapshot: &Snapshot,
    registered: &doi::Registered,
) -> Identifiers {
    let base = &settings.archive.base_url;
    let id = &snapshot.id;
    let version_id = |n: u32| match registered.version_doi(n) {
        Some(name) => Identifier::doi(name),
        None => Identifier::url(landing_page(base, id, Some(n))),
    };
    Identifiers {
        concept: match registered.concept_doi() {
            Some(name) => Identifier::doi(name),
            None => Identifier::url(landing_page(base, id, None)),
        },
        version: version_id(snapshot.version),
        versions: snapshot
            .versions
            .iter()
            .map(|n| (*n, version_id(*n)))
            .collect(),
        concept_page: landing_page(base, id, None),
        version_page: landing_page(base, id, Some(snapshot.version)),
    }
}

/// The commit the archive's accepted state is read from: the default branch, else
/// HEAD. Identifiers and tombstones are read there, since both are added after a
/// version is published.
pub fn current_commit(repo: &Repository, settings: &Settings) -> Result<Oid, git2::Error> {
    let branch = &settings.archive.default_branch;
    for name in [
        format!("refs/heads/{branch}"),
        format!("refs/remotes/origin/{branch}"),
    ] {
        if let Ok(id) = repo.refname_to_id(&name) {
            return Ok(id);
        }
    }
    repo.head()?.peel_to_commit().map(|c| c.id())
}

/// capsule.toml as committed at `commit` (defaults when there is none).
pub fn settings_at(repo: &Repository, commit: Oid) -> Result<Settings, PreserveError> {
    let tree = GitTree::at_commit(repo, commit)?;
    let text = tree
        .read("capsule.toml")?
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    Settings::parse(&text).map_err(|e| PreserveError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        assert_eq!(parse_spec("zee").unwrap(), ("zee".into(), None));
        assert_eq!(parse_spec("zee@v3").unwrap(), ("zee".into(), Some(3)));
        assert!(parse_spec("zee@3").is_err());
        assert!(parse_spec("zee@v0").is_err());
        assert!(parse_spec("-x").is_err());
    }

    #[test]
    fn landing_pages_ignore_a_trailing_slash() {
        assert_eq!(
            landing_page("https://a.org/x/", "zee", Some(2)),
            "https://a.org/x/records/zee/v2"
        );
        assert_eq!(
            landing_page("https://a.org", "zee", None),
            "https://a.org/records/zee"
        );
    }
}
