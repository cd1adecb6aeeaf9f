//! Reading an archive: a repository, one commit's tree, or a working folder.
//!
//! Everything above this module reads files through [`Source`], so that validation runs
//! the same engine on a working tree (`capsule validate`), on any revision
//! (`--rev`) and on the quarantined objects of a push (the hook). This module never
//! writes to a repository.

use std::path::{Path, PathBuf};

use git2::{ObjectType, Odb, Oid, Repository, Tree};

use crate::problem::Problem;
use crate::rawtree::{
    check_canonical_tree, differing_entries, display_name, join_path, read_tree, RawEntry,
};

/// Read access to the files of an archive at one point in time.
pub trait Source {
    /// The bytes of the file at `path` (forward slashes, relative to the archive
    /// root), or `None` when there is no such file.
    fn read(&self, path: &str) -> std::io::Result<Option<Vec<u8>>>;

    /// The names of the entries of the folder at `path` (sorted), empty when there is
    /// no such folder.
    fn list(&self, path: &str) -> std::io::Result<Vec<String>>;

    /// A content identity for caching: two reads with the same id return the same bytes.
    fn content_id(&self, path: &str) -> std::io::Result<Option<Oid>> {
        Ok(self
            .read(path)?
            .map(|bytes| Oid::hash_object(ObjectType::Blob, &bytes).expect("hashing cannot fail")))
    }

    /// How to name this source in messages (`working tree`, `commit 1a2b3c4`).
    fn describe(&self) -> String;
}

/// The files of a working folder.
pub struct WorkTree {
    root: PathBuf,
}

impl WorkTree {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        WorkTree { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Source for WorkTree {
    fn read(&self, path: &str) -> std::io::Result<Option<Vec<u8>>> {
        match std::fs::read(self.root.join(path)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn list(&self, path: &str) -> std::io::Result<Vec<String>> {
        let dir = self.root.join(path);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut names = Vec::new();
        for entry in entries {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    fn describe(&self) -> String {
        "the working tree".to_string()
    }
}

/// The files of one commit.
pub struct GitTree<'r> {
    repo: &'r Repository,
    tree: Tree<'r>,
    commit: Oid,
}

impl<'r> GitTree<'r> {
    pub fn at_commit(repo: &'r Repository, commit: Oid) -> Result<Self, git2::Error> {
        let tree = repo.find_commit(commit)?.tree()?;
        Ok(GitTree { repo, tree, commit })
    }

    pub fn commit(&self) -> Oid {
        self.commit
    }

    pub fn read(&self, path: &str) -> Result<Option<Vec<u8>>, git2::Error> {
        let entry = match self.tree.get_path(Path::new(path)) {
            Ok(entry) => entry,
            Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if entry.kind() != Some(ObjectType::Blob) {
            return Ok(None);
        }
        let blob = self.repo.find_blob(entry.id())?;
        Ok(Some(blob.content().to_vec()))
    }

    pub fn blob_id(&self, path: &str) -> Result<Option<Oid>, git2::Error> {
        match self.tree.get_path(Path::new(path)) {
            Ok(entry) if entry.kind() == Some(ObjectType::Blob) => Ok(Some(entry.id())),
            Ok(_) => Ok(None),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The folder of deposit `id` in this commit (see [`DepositsTree::folder`]: the
    /// flat folder of a commit made before shards counts too).
    pub fn deposit_folder(&self, id: &str) -> Result<Option<Oid>, git2::Error> {
        match DepositsTree::of_root(self.repo, &self.tree)? {
            Some(deposits) => deposits.folder(id),
            None => Ok(None),
        }
    }

    /// The blob id of file `rest` of deposit `id` in this commit (see
    /// [`GitTree::read_deposit_file`]).
    pub fn deposit_file_id(&self, id: &str, rest: &str) -> Result<Option<Oid>, git2::Error> {
        let Some(folder) = self.deposit_folder(id)? else {
            return Ok(None);
        };
        match self.repo.find_tree(folder)?.get_path(Path::new(rest)) {
            Ok(entry) if entry.kind() == Some(ObjectType::Blob) => Ok(Some(entry.id())),
            Ok(_) => Ok(None),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// File `rest` of deposit `id` in this commit, wherever the layout of the commit's
    /// time put the deposit's folder.
    pub fn read_deposit_file(&self, id: &str, rest: &str) -> Result<Option<Vec<u8>>, git2::Error> {
        let Some(folder) = self.deposit_folder(id)? else {
            return Ok(None);
        };
        let folder = self.repo.find_tree(folder)?;
        let entry = match folder.get_path(Path::new(rest)) {
            Ok(entry) => entry,
            Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if entry.kind() != Some(ObjectType::Blob) {
            return Ok(None);
        }
        Ok(Some(self.repo.find_blob(entry.id())?.content().to_vec()))
    }

    /// The id of the folder (tree) at `path`, `None` when there is none.
    pub fn folder_id(&self, path: &str) -> Result<Option<Oid>, git2::Error> {
        match self.tree.get_path(Path::new(path)) {
            Ok(entry) if entry.kind() == Some(ObjectType::Tree) => Ok(Some(entry.id())),
            Ok(_) => Ok(None),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn list(&self, path: &str) -> Result<Vec<String>, git2::Error> {
        let subtree = if path.is_empty() {
            self.tree.clone()
        } else {
            match self.tree.get_path(Path::new(path)) {
                Ok(entry) if entry.kind() == Some(ObjectType::Tree) => {
                    self.repo.find_tree(entry.id())?
                }
                Ok(_) => return Ok(Vec::new()),
                Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(e),
            }
        };
        let mut names: Vec<String> = subtree
            .iter()
            .filter_map(|e| e.name().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }
}

fn io_error(e: git2::Error) -> std::io::Error {
    std::io::Error::other(e)
}

impl Source for GitTree<'_> {
    fn read(&self, path: &str) -> std::io::Result<Option<Vec<u8>>> {
        GitTree::read(self, path).map_err(io_error)
    }

    fn list(&self, path: &str) -> std::io::Result<Vec<String>> {
        GitTree::list(self, path).map_err(io_error)
    }

    fn content_id(&self, path: &str) -> std::io::Result<Option<Oid>> {
        self.blob_id(path).map_err(io_error)
    }

    fn describe(&self) -> String {
        format!("commit {}", short(self.commit))
    }
}

/// A commit's `deposits/` folder, read through the shards: the one place that finds a
/// deposit's folder in a git tree (the path itself comes from [`crate::deposit::folder`]).
pub struct DepositsTree<'r> {
    repo: &'r Repository,
    tree: Tree<'r>,
}

impl<'r> DepositsTree<'r> {
    /// The `deposits/` folder of `commit`, `None` when it has none.
    pub fn of_commit(repo: &'r Repository, commit: Oid) -> Result<Option<Self>, git2::Error> {
        let root = repo.find_commit(commit)?.tree()?;
        Self::of_root(repo, &root)
    }

    /// The `deposits/` folder of a root tree, `None` when it has none.
    pub fn of_root(repo: &'r Repository, root: &Tree<'_>) -> Result<Option<Self>, git2::Error> {
        match root.get_name(crate::deposit::DEPOSITS) {
            Some(e) if e.kind() == Some(ObjectType::Tree) => Ok(Some(DepositsTree {
                repo,
                tree: repo.find_tree(e.id())?,
            })),
            _ => Ok(None),
        }
    }

    /// The id of the `deposits/` tree.
    pub fn id(&self) -> Oid {
        self.tree.id()
    }

    /// The folder of deposit `id`, `None` when it has none. At commits made before
    /// the archive moved to shards, the deposit's flat folder (`deposits/<id>`).
    pub fn folder(&self, id: &str) -> Result<Option<Oid>, git2::Error> {
        if let Some(shard) = subfolder(&self.tree, &crate::deposit::shard(id)) {
            if let Some(found) = subfolder(&self.repo.find_tree(shard)?, id) {
                return Ok(Some(found));
            }
        }
        Ok(legacy_subfolder(self.repo, &self.tree, id))
    }

    /// Every deposit's folder, `(id, folder)`, sorted by id. Folders that break the
    /// layout (a wrong shard, an invalid id) are left out: the hook refuses them.
    pub fn folders(&self) -> Result<Vec<(String, Oid)>, git2::Error> {
        let mut out = Vec::new();
        for shard in self.tree.iter() {
            let Some(name) = shard.name().filter(|n| crate::deposit::is_shard_name(n)) else {
                continue;
            };
            if shard.kind() != Some(ObjectType::Tree) {
                continue;
            }
            for entry in self.repo.find_tree(shard.id())?.iter() {
                if let Some(id) = entry.name().filter(|id| is_deposit_in(id, name)) {
                    if entry.kind() == Some(ObjectType::Tree) {
                        out.push((id.to_string(), entry.id()));
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// Whether `id` is a valid deposit id that belongs in shard `shard`.
pub fn is_deposit_in(id: &str, shard: &str) -> bool {
    crate::deposit::check_id(id).is_ok() && crate::deposit::shard(id) == shard
}

/// A deposit's folder in the flat layout before shards: `deposits/<id>` holding a
/// `deposit.json` (so that a shard folder is never taken for a deposit named like it).
fn legacy_subfolder(repo: &Repository, deposits: &Tree<'_>, id: &str) -> Option<Oid> {
    let folder = subfolder(deposits, id)?;
    let tree = repo.find_tree(folder).ok()?;
    tree.get_name("deposit.json")
        .filter(|e| e.kind() == Some(ObjectType::Blob))
        .map(|_| folder)
}

fn subfolder(tree: &Tree<'_>, name: &str) -> Option<Oid> {
    tree.get_name(name)
        .filter(|e| e.kind() == Some(ObjectType::Tree))
        .map(|e| e.id())
}

/// The ids of the deposits in `source`, sorted: every `deposits/<shard>/<id>/` folder
/// whose id belongs in its shard.
pub fn deposit_ids(source: &dyn Source) -> std::io::Result<Vec<String>> {
    let mut ids = Vec::new();
    for shard in source.list(crate::deposit::DEPOSITS)? {
        if !crate::deposit::is_shard_name(&shard) {
            continue;
        }
        let inside = source.list(&format!("{}/{shard}", crate::deposit::DEPOSITS))?;
        ids.extend(inside.into_iter().filter(|id| is_deposit_in(id, &shard)));
    }
    ids.sort();
    Ok(ids)
}

/// Receives `(id, folder now, folder before)` of a changed deposit folder.
pub type FolderChanged<'a> = dyn FnMut(&str, Option<Oid>, Option<Oid>) + 'a;

/// Calls `changed(id, now, before)` for every deposit folder whose id differs between
/// the `deposits/` trees `new` and `old` (added, removed or changed).
///
/// Both levels are merge-joined from the tree objects' bytes (see `rawtree`):
/// the 256-entry `deposits/` trees first, then only the shards whose ids differ. No
/// name is hashed and no entry is copied unless it differs, so the cost is the two
/// small trees plus the shards the change touched, whatever the archive's size.
pub fn diff_folders(
    odb: &Odb<'_>,
    new: Option<Oid>,
    old: Option<Oid>,
    changed: &mut FolderChanged<'_>,
) -> Result<(), git2::Error> {
    if new == old {
        return Ok(());
    }
    let new = new.map(|id| read_tree(odb, id)).transpose()?;
    let old = old.map(|id| read_tree(odb, id)).transpose()?;
    let folder = |entry: Option<RawEntry<'_>>| entry.filter(RawEntry::is_tree).map(|e| e.id);
    for (shard, was, now) in differing_entries(bytes(&old), bytes(&new))? {
        let Some(shard) = std::str::from_utf8(shard)
            .ok()
            .filter(|s| crate::deposit::is_shard_name(s))
        else {
            continue;
        };
        let (before, after) = (folder(was), folder(now));
        if before == after {
            continue;
        }
        let after = after.map(|id| read_tree(odb, id)).transpose()?;
        let before = before.map(|id| read_tree(odb, id)).transpose()?;
        for (name, was, now) in differing_entries(bytes(&before), bytes(&after))? {
            let Some(id) = std::str::from_utf8(name)
                .ok()
                .filter(|id| is_deposit_in(id, shard))
            else {
                continue;
            };
            let (before, after) = (folder(was), folder(now));
            if before != after {
                changed(id, after, before);
            }
        }
    }
    Ok(())
}

fn bytes<'b>(tree: &'b Option<git2::OdbObject<'_>>) -> &'b [u8] {
    tree.as_ref().map_or(&[], git2::OdbObject::data)
}

/// The trees of `commit` that are not canonical (see `rawtree`: what the hook refuses),
/// one problem each, naming the entry and the reason; nothing below such a tree is
/// read. Reads every tree of the commit once, so it is for whole-archive checks
/// (`capsule validate --rev`), not for the push path.
pub fn non_canonical_trees(repo: &Repository, commit: Oid) -> Result<Vec<Problem>, git2::Error> {
    let odb = repo.odb()?;
    let mut seen = std::collections::HashSet::new();
    let mut pending = vec![(Vec::new(), repo.find_commit(commit)?.tree_id())];
    let mut problems = Vec::new();
    while let Some((folder, id)) = pending.pop() {
        if !seen.insert(id) {
            continue;
        }
        let tree = read_tree(&odb, id)?;
        if let Err(defect) = check_canonical_tree(tree.data()) {
            problems.push(Problem::file(
                display_name(&defect.path(&folder)),
                defect.to_string(),
            ));
            continue;
        }
        let mut data = tree.data();
        while let Some(entry) = RawEntry::parse(&mut data)? {
            if entry.is_tree() {
                pending.push((join_path(&folder, entry.name), entry.id));
            }
        }
    }
    problems.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(problems)
}

/// The first seven hex digits of an object id, as git shows them.
pub fn short(oid: Oid) -> String {
    oid.to_string()[..7].to_string()
}

/// Finds the archive that contains `start`: the nearest folder with a capsule.toml.
pub fn find_root(start: &Path) -> Option<PathBuf> {
    let start = start.canonicalize().ok()?;
    start
        .ancestors()
        .find(|dir| dir.join("capsule.toml").is_file())
        .map(Path::to_path_buf)
}

/// Opens the repository a server-side hook runs in, so that the objects of the push
/// being received are visible.
///
/// During `pre-receive`, git keeps the pushed objects in a quarantine directory and
/// points `GIT_OBJECT_DIRECTORY` at it, listing the real object store in
/// `GIT_ALTERNATE_OBJECT_DIRECTORIES`. libgit2 does not read those variables, and
/// mis-parses the quoted form git uses for paths with `:`; adding
/// `GIT_QUARANTINE_PATH` as an alternate is what works in every case.
pub fn open_for_hook(git_dir: &Path) -> Result<Repository, git2::Error> {
    tune_object_reads_for_bulk()?;
    let repo = Repository::open_bare(git_dir).or_else(|_| Repository::open(git_dir))?;
    if let Some(quarantine) = std::env::var_os("GIT_QUARANTINE_PATH") {
        let quarantine = PathBuf::from(quarantine);
        if quarantine.is_dir() {
            let path = quarantine
                .to_str()
                .ok_or_else(|| git2::Error::from_str("the quarantine path is not UTF-8"))?;
            repo.odb()?.add_disk_alternate(path)?;
        }
    }
    Ok(repo)
}

/// Settings for a process that reads many objects of one repository: the hook,
/// `capsule build` and `capsule serve`. Process-wide: call it first thing, before any
/// object is read and before other threads exist.
///
/// - No re-hashing on read. libgit2 checks every object it reads against its id with
///   collision-detecting SHA-1, which costs more than inflating it (18 ms for the
///   3.7 MB `deposits/` tree of a 100k-deposit archive, read twice per push). Every
///   object in the repository and in the quarantine was hashed by git when it
///   arrived (index-pack, unpack-objects), and `git diff-tree` reads trees without
///   checking them again either.
/// - Large trees stay cached. libgit2 caches no tree over 4 KB by default, so every
///   path lookup below a big `deposits/` folder would inflate it again: a site build
///   looks up several paths per record, which made it quadratic in the archive.
/// - The cache as a whole is kept to 16 MB instead of libgit2's 256 MB. A site build
///   reads every record's trees once and filled the cache with trees it never reads
///   again (256 → 64 MB: 100k build 1,048 → 892 MB, measured with other changes;
///   64 → 16 MB: see BENCHMARKS.md). A push reads a handful of trees plus `deposits/`
///   (~4 MB at 100k), well inside it.
/// - Pack files are mapped in 32 MB windows, at most 64 MB at a time, instead of one
///   window of up to 1 GB per pack with an 8 GB total. A build reads every record once,
///   in order, so a whole pack stayed mapped and resident (161 MB at 100k) long after
///   its part had been read.
pub fn tune_object_reads_for_bulk() -> Result<(), git2::Error> {
    git2::opts::strict_hash_verification(false);
    // SAFETY: callers do this before reading any object and before starting threads;
    // libgit2 requires exactly that of global option changes. The cache size is a
    // `ssize_t`, which is `isize` on every target Rust and libgit2 share.
    unsafe {
        git2::opts::set_cache_object_limit(ObjectType::Tree, 64 << 20)?;
        git2::opts::set_mwindow_size(32 << 20)?;
        git2::opts::set_mwindow_mapped_limit(64 << 20)?;
        let code = libgit2_sys::git_libgit2_opts(
            libgit2_sys::GIT_OPT_SET_CACHE_MAX_SIZE as std::ffi::c_int,
            (16isize) << 20,
        );
        if code < 0 {
            return Err(git2::Error::last_error(code));
        }
    }
    Ok(())
}
