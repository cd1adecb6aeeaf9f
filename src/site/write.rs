//! Writing a site: everything goes to a staging folder beside the target first.
//!
//! A full build stages the whole site and then swaps it in (the old folder is renamed
//! away, the new one renamed into place, the old one deleted), so a failed build
//! leaves the previous site as it was. An incremental build stages only the files that
//! changed and, once every page has rendered, moves them into the live site one by one
//! (each rename is atomic) and deletes what no longer exists.
//!
//! A target that exists, is not empty and was not written by capsule is never replaced.

use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::error::SiteError;

/// The file that marks a folder as a capsule site and remembers what the last build
/// rendered from what (for incremental builds).
pub const MANIFEST: &str = ".capsule-site.json";

pub struct Output {
    pub target: PathBuf,
    stage: PathBuf,
    incremental: bool,
    done: bool,
    files: AtomicUsize,
    bytes: AtomicU64,
}

fn io(path: &Path, e: std::io::Error) -> SiteError {
    SiteError::Io(path.display().to_string(), e)
}

impl Output {
    /// Prepares a staging folder beside `target`. Refuses a target that holds files but
    /// no capsule manifest.
    pub fn prepare(target: &Path, incremental: bool) -> Result<Output, SiteError> {
        let name = target
            .file_name()
            .ok_or_else(|| SiteError::Output(format!("{} is not a folder name", target.display())))?
            .to_string_lossy()
            .into_owned();
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(|e| io(&parent, e))?;
        if target.exists() {
            if !target.is_dir() {
                return Err(SiteError::Output(format!(
                    "{} exists and is not a folder; choose another --out",
                    target.display()
                )));
            }
            let empty = std::fs::read_dir(target)
                .map_err(|e| io(target, e))?
                .next()
                .is_none();
            if !empty && !target.join(MANIFEST).is_file() {
                return Err(SiteError::Output(format!(
                    "{} is not empty and was not built by capsule (it has no {MANIFEST}); capsule replaces the whole folder, so give a new or empty folder",
                    target.display()
                )));
            }
        }
        let stage = parent.join(format!(".{name}.{}.capsule-tmp", std::process::id()));
        if stage.exists() {
            std::fs::remove_dir_all(&stage).map_err(|e| io(&stage, e))?;
        }
        std::fs::create_dir_all(&stage).map_err(|e| io(&stage, e))?;
        Ok(Output {
            target: target.to_path_buf(),
            stage,
            incremental,
            done: false,
            files: AtomicUsize::new(0),
            bytes: AtomicU64::new(0),
        })
    }

    pub fn is_incremental(&self) -> bool {
        self.incremental
    }

    /// Writes one file of the site (a path relative to its root).
    pub fn write(&self, path: &str, bytes: &[u8]) -> Result<(), SiteError> {
        let full = self.stage.join(safe_relative(path)?);
        // Most files go into a folder that exists already: try first, make the folder
        // only when it is missing (a mkdir per file is a good part of writing a site).
        match std::fs::write(&full, bytes) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(parent) = full.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
                }
                std::fs::write(&full, bytes).map_err(|e| io(&full, e))?;
            }
            Err(e) => return Err(io(&full, e)),
        }
        self.files.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Makes `path` a second name of the file already written at `existing` (both
    /// relative to the site's root): a hard link, so that two byte-identical files of
    /// the site cost one inode and one set of blocks; a copy where the file system
    /// has no hard links. Files of a site are only ever replaced by renaming a new
    /// file over them, never written in place, so the two names never share a change.
    pub fn write_same(&self, existing: &str, path: &str) -> Result<(), SiteError> {
        let from = self.stage.join(safe_relative(existing)?);
        let full = self.stage.join(safe_relative(path)?);
        if let Some(parent) = full.parent() {
            if !parent.is_dir() {
                std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
            }
        }
        let size = match std::fs::hard_link(&from, &full) {
            Ok(()) => std::fs::metadata(&full).map_err(|e| io(&full, e))?.len(),
            Err(_) => std::fs::copy(&from, &full).map_err(|e| io(&full, e))?,
        };
        self.files.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(size, Ordering::Relaxed);
        Ok(())
    }

    /// Writes one file of the site through a buffered writer, for files too large to
    /// hold in memory first (the manifest is 71 MB at 100k records).
    pub fn write_streamed(
        &self,
        path: &str,
        fill: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
    ) -> Result<(), SiteError> {
        use std::io::Write;
        let full = self.stage.join(safe_relative(path)?);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        let file = std::fs::File::create(&full).map_err(|e| io(&full, e))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
        fill(&mut out)
            .and_then(|()| out.flush())
            .map_err(|e| io(&full, e))?;
        let written = out.get_ref().metadata().map_err(|e| io(&full, e))?.len();
        self.files.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(written, Ordering::Relaxed);
        Ok(())
    }

    pub fn files(&self) -> usize {
        self.files.load(Ordering::Relaxed)
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Makes the staged files the site. `removed` are folders or files (relative) that
    /// an incremental build deletes first (a record that changed or went away).
    pub fn commit(mut self, removed: &[String]) -> Result<(), SiteError> {
        if !self.incremental {
            let old = self.stage.with_extension("old.capsule-tmp");
            let had_target = self.target.exists();
            if had_target {
                std::fs::rename(&self.target, &old).map_err(|e| io(&self.target, e))?;
            }
            if let Err(e) = std::fs::rename(&self.stage, &self.target) {
                if had_target {
                    let _ = std::fs::rename(&old, &self.target);
                }
                return Err(io(&self.target, e));
            }
            self.done = true;
            if had_target {
                let _ = std::fs::remove_dir_all(&old);
            }
            return Ok(());
        }
        for path in removed {
            let full = self.target.join(safe_relative(path)?);
            let result = if full.is_dir() {
                std::fs::remove_dir_all(&full)
            } else {
                std::fs::remove_file(&full)
            };
            match result {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&full, e)),
            }
        }
        // The manifest last: until it lands, the next build sees the old state and
        // redoes this work.
        let mut manifest = None;
        for file in walk(&self.stage).map_err(|e| io(&self.stage, e))? {
            let relative = file.strip_prefix(&self.stage).expect("inside the stage");
            if relative == Path::new(MANIFEST) {
                manifest = Some(file.clone());
                continue;
            }
            let dest = self.target.join(relative);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
            }
            std::fs::rename(&file, &dest).map_err(|e| io(&dest, e))?;
        }
        if let Some(file) = manifest {
            let dest = self.target.join(MANIFEST);
            std::fs::rename(&file, &dest).map_err(|e| io(&dest, e))?;
        }
        self.done = true;
        let _ = std::fs::remove_dir_all(&self.stage);
        Ok(())
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.stage);
        }
    }
}

/// Every file under `dir`, sorted.
pub fn walk(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A relative path with only normal components: nothing a deposit's file name can use
/// to write outside the site.
pub fn safe_relative(path: &str) -> Result<PathBuf, SiteError> {
    let p = Path::new(path);
    if path.is_empty()
        || path.contains('\\')
        || p.components().any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(SiteError::Output(format!(
            "refusing to write `{path}`: not a plain relative path"
        )));
    }
    Ok(p.to_path_buf())
}

/// Whether a path from a deposit can be written under the site as it is.
pub fn is_safe_relative(path: &str) -> bool {
    safe_relative(path).is_ok()
}
