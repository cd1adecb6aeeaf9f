//! The first stage of a build: what to build from what.
//!
//! [`Config`] is everything the whole site depends on (the revision, its settings and
//! theme, the options); [`Plan`] is one input per record with its key (a fingerprint
//! of its tags and folder), and [`Plan::against`] compares the keys with the previous
//! build's state to find what changed. Nothing here renders or writes.

use std::collections::BTreeMap;

use git2::{Oid, Repository};

use crate::archive::GitTree;
use crate::settings::Settings;

use super::error::SiteError;
use super::options::BuildOptions;
use super::paging::Limits;
use super::records::RecordInput;
use super::state::{hidden_key, State};
use super::theme::Theme;
use super::util::Fingerprint;

/// What every page depends on.
pub struct Config<'r> {
    pub rev: Oid,
    /// How the revision was named (`main`, `--rev`'s text, `HEAD`).
    pub rev_name: String,
    pub tree: GitTree<'r>,
    pub settings: Settings,
    pub internal: bool,
    pub base_url: String,
    pub limits: Limits,
    pub theme: Theme,
    pub title: String,
    /// A fingerprint of all of the above that pages depend on: when it changes, a
    /// build is a full one.
    pub global: String,
}

impl<'r> Config<'r> {
    /// Reads the revision to build, its capsule.toml and theme, and the options.
    pub fn read(repo: &'r Repository, options: &BuildOptions) -> Result<Config<'r>, SiteError> {
        let (rev, rev_name) = resolve_rev(repo, options.rev.as_deref())?;
        let tree = GitTree::at_commit(repo, rev)?;
        let settings = match tree.read("capsule.toml")? {
            Some(bytes) => Settings::parse(&String::from_utf8_lossy(&bytes))
                .map_err(|e| SiteError::Input(format!("capsule.toml at {rev_name}: {e}")))?,
            None => Settings::default(),
        };
        let internal = options.drafts;
        let base_url = options
            .base_url
            .clone()
            .or_else(|| settings.site.base_url.clone())
            .unwrap_or_else(|| settings.archive.base_url.clone());
        let limits = Limits::new(settings.site.per_page.unwrap_or(50));
        let mut overrides = Vec::new();
        for folder in ["templates/site", "site"] {
            collect_files(&tree, folder, &mut overrides)?;
        }
        let theme = Theme::with_overrides(overrides).map_err(SiteError::Input)?;
        let title = settings
            .site
            .title
            .clone()
            .unwrap_or_else(|| settings.archive.name.clone());
        // Record pages show their schema's titles and descriptions, and capsule.toml
        // says more than the fields above (DOIs, OAI-PMH, ...): when either changes,
        // every page may, and the build is a full one.
        let schemas = tree.folder_id("schemas")?.map(|o| o.to_string());
        let settings_blob = tree.blob_id("capsule.toml")?.map(|o| o.to_string());
        let global = {
            let mut f = Fingerprint::new();
            f.add(env!("CARGO_PKG_VERSION"))
                .add(schemas.unwrap_or_default())
                .add(settings_blob.unwrap_or_default())
                .add(theme.fingerprint())
                .add(&base_url)
                .add(&title)
                .add(&settings.archive.description)
                .add(serde_json::to_vec(&limits).expect("serialises"))
                .add([internal as u8]);
            f.finish()
        };
        Ok(Config {
            rev,
            rev_name,
            tree,
            settings,
            internal,
            base_url,
            limits,
            theme,
            title,
            global,
        })
    }
}

/// One input per record (and, in an internal build, per deposit on the branch).
pub struct Plan {
    pub inputs: BTreeMap<String, RecordInput>,
    /// Each input's key, by id.
    pub keys: BTreeMap<String, String>,
    pub warnings: Vec<String>,
}

impl Plan {
    pub fn make(repo: &Repository, config: &Config<'_>) -> Result<Plan, SiteError> {
        let mut warnings = Vec::new();
        let tags = super::tags::record_tags(repo)?;
        let folders = deposit_folders(repo, &config.tree)?;
        let mut inputs: BTreeMap<String, RecordInput> = BTreeMap::new();
        for (id, versions) in &tags {
            if is_reserved_id(id) {
                warnings.push(format!(
                    "record {id} is left out: its id is a file name the site itself uses"
                ));
                continue;
            }
            inputs.insert(
                id.clone(),
                RecordInput {
                    id: id.clone(),
                    tags: versions
                        .iter()
                        .map(|t| (t.version, t.tag.unwrap_or(t.commit), t.commit))
                        .collect(),
                    folder: folders.get(id).copied(),
                    draft: config.internal,
                },
            );
        }
        if config.internal {
            for (id, folder) in &folders {
                if is_reserved_id(id) {
                    continue;
                }
                inputs.entry(id.clone()).or_insert_with(|| RecordInput {
                    id: id.clone(),
                    tags: Vec::new(),
                    folder: Some(*folder),
                    draft: true,
                });
            }
        }
        let key_of = |input: &RecordInput| {
            let mut f = Fingerprint::new();
            f.add(&config.global).add(&input.id);
            for (v, tag, commit) in &input.tags {
                f.add(v.to_le_bytes())
                    .add(tag.as_bytes())
                    .add(commit.as_bytes());
            }
            f.add(input.folder.map(|o| o.to_string()).unwrap_or_default());
            f.finish()
        };
        let keys = inputs.values().map(|i| (i.id.clone(), key_of(i))).collect();
        Ok(Plan {
            inputs,
            keys,
            warnings,
        })
    }

    /// The records to render (all of them unless `incremental`), and the ids of the
    /// previous build's records that are gone.
    pub fn against(&self, previous: &State, incremental: bool) -> (Vec<&RecordInput>, Vec<String>) {
        let previous_state = |id: &str| {
            previous
                .records
                .get(id)
                .or_else(|| previous.records.get(&hidden_key(id)))
        };
        let changed = self
            .inputs
            .values()
            .filter(|i| {
                !incremental || previous_state(&i.id).is_none_or(|s| s.key != self.keys[&i.id])
            })
            .collect();
        // A record kept under its hidden key (`~...`) never names itself; one kept by
        // id is gone when no input has that id (digesting every id to compare hidden
        // keys too was a tenth of a rebuild at 100k records).
        let removed = previous
            .records
            .keys()
            .filter(|id| !id.starts_with('~') && !self.inputs.contains_key(*id))
            .cloned()
            .collect();
        (changed, removed)
    }
}

/// Whether a deposit id is the name of a file the site writes beside the records'
/// folders (`api/records/index-2.json`, a page of the record list).
fn is_reserved_id(id: &str) -> bool {
    matches!(id, "index.html" | "index.json")
        || id
            .strip_prefix("index-")
            .and_then(|rest| rest.strip_suffix(".json"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The revision to build: `--rev`, else the default branch named in capsule.toml at
/// HEAD, else HEAD.
fn resolve_rev(repo: &Repository, rev: Option<&str>) -> Result<(Oid, String), SiteError> {
    if let Some(spec) = rev {
        let commit = repo
            .revparse_single(spec)
            .and_then(|o| o.peel_to_commit())
            .map_err(|e| {
                SiteError::Input(format!(
                    "`{spec}` is not a revision of this repository ({})",
                    e.message()
                ))
            })?;
        return Ok((commit.id(), spec.to_string()));
    }
    let head = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let default = head
        .as_ref()
        .and_then(|c| GitTree::at_commit(repo, c.id()).ok())
        .and_then(|t| t.read("capsule.toml").ok().flatten())
        .and_then(|b| Settings::parse(&String::from_utf8_lossy(&b)).ok())
        .map(|s| s.archive.default_branch)
        .unwrap_or_else(|| "main".into());
    for name in [
        format!("refs/heads/{default}"),
        format!("refs/remotes/origin/{default}"),
    ] {
        if let Ok(reference) = repo.find_reference(&name) {
            if let Ok(commit) = reference.peel_to_commit() {
                return Ok((commit.id(), default));
            }
        }
    }
    match head {
        Some(c) => Ok((c.id(), "HEAD".into())),
        None => Err(SiteError::Input(
            "the repository has no commits to build a site from".into(),
        )),
    }
}

/// Every file under `folder` at the build revision (recursively), by path.
fn collect_files(
    tree: &GitTree<'_>,
    folder: &str,
    out: &mut Vec<(String, Vec<u8>)>,
) -> Result<(), SiteError> {
    for name in tree.list(folder)? {
        let path = format!("{folder}/{name}");
        match tree.read(&path)? {
            Some(bytes) => out.push((path, bytes)),
            None => collect_files(tree, &path, out)?,
        }
    }
    Ok(())
}

/// The deposit folders at the build revision: one read of `deposits/` and its shards.
fn deposit_folders(
    repo: &Repository,
    tree: &GitTree<'_>,
) -> Result<BTreeMap<String, Oid>, SiteError> {
    let Some(deposits) = crate::archive::DepositsTree::of_commit(repo, tree.commit())? else {
        return Ok(BTreeMap::new());
    };
    Ok(deposits.folders()?.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::site::state::RecordState;

    fn input(id: &str) -> RecordInput {
        RecordInput {
            id: id.into(),
            tags: Vec::new(),
            folder: None,
            draft: false,
        }
    }

    fn state(key: &str) -> RecordState {
        RecordState::keyed(key)
    }

    #[test]
    fn changed_records_differ_in_key_and_removed_ones_are_named_records_without_input() {
        let plan = Plan {
            inputs: ["same", "new", "other", "hidden"]
                .into_iter()
                .map(|id| (id.to_string(), input(id)))
                .collect(),
            keys: [
                ("same", "k1"),
                ("new", "k2"),
                ("other", "k3"),
                ("hidden", "k4"),
            ]
            .into_iter()
            .map(|(id, k)| (id.to_string(), k.to_string()))
            .collect(),
            warnings: Vec::new(),
        };
        let previous = State {
            records: [
                ("same".to_string(), state("k1")),
                ("other".to_string(), state("old")),
                ("gone".to_string(), state("k9")),
                (hidden_key("hidden"), state("k4")),
                (hidden_key("vanished"), state("k5")),
            ]
            .into_iter()
            .collect(),
            ..State::default()
        };
        let (changed, removed) = plan.against(&previous, true);
        let changed: Vec<&str> = changed.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(changed, ["new", "other"]);
        assert_eq!(removed, ["gone"]);
        let (all, _) = plan.against(&previous, false);
        assert_eq!(all.len(), 4);
    }
}
