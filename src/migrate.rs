//! Moving a flat archive (`deposits/<id>/`, capsule before shards) into shard folders
//! (`deposits/<shard>/<id>/`) in one commit.
//!
//! The move changes no deposit folder's tree id: each folder is re-hung, whole, under
//! its shard. So history (`capsule log`, which compares folder ids) sees no new version,
//! record tags keep pointing at their old commits (where the deposit is found in the
//! flat place), and the hook, which judges a deposit by its content before and after,
//! sees nothing changed. This module builds the tree and the commit; it never touches a
//! working tree or a ref (the CLI does, through git).

use std::collections::BTreeMap;

use git2::{ObjectType, Oid, Repository, Tree};

use crate::deposit::{check_id, is_shard_name, shard, DEPOSITS};

/// What a migration found and built.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Migration {
    /// Deposits moved from `deposits/<id>/` into their shard.
    pub moved: Vec<String>,
    /// The new root tree, `None` when nothing had to move.
    #[serde(skip)]
    pub tree: Option<Oid>,
}

/// Why a flat archive cannot be moved as it is.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("deposits/{name} is not a deposit folder: {why}; move or remove it first")]
    NotADeposit { name: String, why: String },
    #[error("deposit {id} is in both deposits/{id}/ and {}/: keep one of them first", crate::deposit::folder(.id))]
    Twice { id: String },
    #[error("git: {0}")]
    Git(#[from] git2::Error),
}

/// Builds the root tree of `root` with every flat deposit folder moved into its shard.
/// Files directly under `deposits/` that start with `.` (`.gitkeep`) stay where they are.
pub fn shard_tree(repo: &Repository, root: &Tree<'_>) -> Result<Migration, MigrateError> {
    let none = Migration {
        moved: Vec::new(),
        tree: None,
    };
    let Some(entry) = root.get_name(DEPOSITS) else {
        return Ok(none);
    };
    if entry.kind() != Some(ObjectType::Tree) {
        return Ok(none);
    }
    let deposits = repo.find_tree(entry.id())?;
    // shard name -> (name -> (id, mode)) for the new `deposits/` tree.
    let mut shards: BTreeMap<String, BTreeMap<String, (Oid, i32)>> = BTreeMap::new();
    let mut keep: Vec<(String, Oid, i32)> = Vec::new();
    let mut moved = Vec::new();
    for entry in deposits.iter() {
        let name = entry
            .name()
            .ok_or_else(|| MigrateError::NotADeposit {
                name: String::from_utf8_lossy(entry.name_bytes()).into_owned(),
                why: "the name is not UTF-8".into(),
            })?
            .to_string();
        let is_folder = entry.kind() == Some(ObjectType::Tree);
        if name.starts_with('.') && !is_folder {
            keep.push((name, entry.id(), entry.filemode()));
            continue;
        }
        // An existing shard of a partly migrated archive: its deposits stay.
        if is_folder && is_shard_name(&name) && !is_flat_deposit(repo, entry.id())? {
            let shard = repo.find_tree(entry.id())?;
            let slot = shards.entry(name).or_default();
            for inner in shard.iter() {
                let inner_name = String::from_utf8_lossy(inner.name_bytes()).into_owned();
                slot.insert(inner_name, (inner.id(), inner.filemode()));
            }
            continue;
        }
        if !is_folder {
            return Err(MigrateError::NotADeposit {
                name,
                why: "it is a file, not a folder".into(),
            });
        }
        if let Err(why) = check_id(&name) {
            return Err(MigrateError::NotADeposit { name, why });
        }
        moved.push((name, entry.id(), entry.filemode()));
    }
    if moved.is_empty() {
        return Ok(none);
    }
    for (id, folder, mode) in &moved {
        let slot = shards.entry(shard(id)).or_default();
        if slot.insert(id.clone(), (*folder, *mode)).is_some() {
            return Err(MigrateError::Twice { id: id.clone() });
        }
    }
    let mut new_deposits = repo.treebuilder(None)?;
    for (name, id, mode) in keep {
        new_deposits.insert(name, id, mode)?;
    }
    for (name, entries) in shards {
        let mut shard = repo.treebuilder(None)?;
        for (inner, (id, mode)) in entries {
            shard.insert(inner, id, mode)?;
        }
        new_deposits.insert(name, shard.write()?, 0o040000)?;
    }
    let mut new_root = repo.treebuilder(Some(root))?;
    new_root.insert(DEPOSITS, new_deposits.write()?, 0o040000)?;
    Ok(Migration {
        moved: moved.into_iter().map(|(id, _, _)| id).collect(),
        tree: Some(new_root.write()?),
    })
}

/// A flat deposit folder holds its `deposit.json`; a shard holds folders only. This
/// tells a deposit whose id happens to be two hex digits (`ab`) from a shard.
fn is_flat_deposit(repo: &Repository, folder: Oid) -> Result<bool, git2::Error> {
    Ok(repo
        .find_tree(folder)?
        .get_name("deposit.json")
        .is_some_and(|e| e.kind() == Some(ObjectType::Blob)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::DepositsTree;

    fn flat(repo: &Repository, ids: &[&str]) -> Oid {
        let mut deposits = repo.treebuilder(None).unwrap();
        for id in ids {
            let blob = repo
                .blob(format!("{{\"id\": \"{id}\"}}").as_bytes())
                .unwrap();
            let mut folder = repo.treebuilder(None).unwrap();
            folder.insert("deposit.json", blob, 0o100644).unwrap();
            deposits
                .insert(id, folder.write().unwrap(), 0o040000)
                .unwrap();
        }
        let keep = repo.blob(b"").unwrap();
        deposits.insert(".gitkeep", keep, 0o100644).unwrap();
        let mut root = repo.treebuilder(None).unwrap();
        root.insert("deposits", deposits.write().unwrap(), 0o040000)
            .unwrap();
        root.write().unwrap()
    }

    #[test]
    fn flat_folders_move_whole_into_their_shards() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let old = repo
            .find_tree(flat(&repo, &["zee", "ab", "higgs"]))
            .unwrap();
        let migration = shard_tree(&repo, &old).unwrap();
        assert_eq!(migration.moved, ["ab", "higgs", "zee"]);
        let new = repo.find_tree(migration.tree.unwrap()).unwrap();
        let sharded = DepositsTree::of_root(&repo, &new).unwrap().unwrap();
        let before = DepositsTree::of_root(&repo, &old).unwrap().unwrap();
        for id in ["zee", "ab", "higgs"] {
            // The same folder object: history sees no change.
            assert_eq!(sharded.folder(id).unwrap(), before.folder(id).unwrap());
            assert!(new
                .get_path(std::path::Path::new(&crate::deposit::metadata_path(id)))
                .is_ok());
        }
        assert!(new
            .get_path(std::path::Path::new("deposits/.gitkeep"))
            .is_ok());
        // Done twice, the second run finds nothing to move.
        assert_eq!(shard_tree(&repo, &new).unwrap().tree, None);
    }

    #[test]
    fn a_file_in_the_flat_place_stops_the_move() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let mut deposits = repo.treebuilder(None).unwrap();
        deposits
            .insert("stray.json", repo.blob(b"{}").unwrap(), 0o100644)
            .unwrap();
        let mut root = repo.treebuilder(None).unwrap();
        root.insert("deposits", deposits.write().unwrap(), 0o040000)
            .unwrap();
        let root = repo.find_tree(root.write().unwrap()).unwrap();
        let err = shard_tree(&repo, &root).unwrap_err().to_string();
        assert!(
            err.contains("deposits/stray.json is not a deposit folder"),
            "{err}"
        );
    }
}
