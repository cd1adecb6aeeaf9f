//! Files kept in Git LFS: the tree holds a small pointer, the content lives in the
//! LFS store (`<git dir>/lfs/objects/<oid[0:2]>/<oid[2:4]>/<oid>`, as git-lfs lays it
//! out). Exports carry the content, never the pointer; the audit checks the objects
//! it has against their pointers.
//!
//! Pointers are read as the LFS specification writes them (spec v1): a UTF-8 text
//! under 1024 bytes, `version` first, then `oid sha256:<64 hex>` and `size <bytes>`.
//! Anything else is an ordinary file. Objects are read from the local store only:
//! nothing here fetches (the CLI tells people to run `git lfs fetch`).

use std::path::PathBuf;

use git2::Repository;

use super::bag::sha256_hex;

/// What an LFS pointer file names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer {
    /// SHA-256 of the content, lower-case hex.
    pub oid: String,
    pub size: u64,
}

/// Why an LFS object cannot stand in for its pointer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LfsError {
    #[error("its Git LFS object (sha256 {oid}, {size} bytes) is not in this repository's LFS store: run `git lfs fetch` (`git lfs fetch --all` for every version) and try again")]
    Missing { oid: String, size: u64 },
    #[error("its Git LFS object {oid} is damaged: the pointer says {size} bytes with that SHA-256, the stored object has {actual_size} bytes with SHA-256 {actual}")]
    Damaged {
        oid: String,
        size: u64,
        actual: String,
        actual_size: u64,
    },
    #[error("its Git LFS object {oid} cannot be read: {error}")]
    Unreadable { oid: String, error: String },
}

const VERSION: &str = "version https://git-lfs.github.com/spec/v1";

/// The pointer `bytes` are, if they are one.
pub fn parse_pointer(bytes: &[u8]) -> Option<Pointer> {
    if bytes.len() >= 1024 {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let mut lines = text.strip_suffix('\n')?.split('\n');
    if lines.next()? != VERSION {
        return None;
    }
    let (mut oid, mut size) = (None, None);
    for line in lines {
        let (key, value) = line.split_once(' ')?;
        match key {
            "oid" => {
                let hex = value.strip_prefix("sha256:")?;
                let valid = hex.len() == 64
                    && hex
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
                oid = valid.then(|| hex.to_string());
                oid.as_ref()?;
            }
            "size" => size = Some(value.parse::<u64>().ok()?),
            // Extension keys (`ext-...`) and others may follow; they do not change
            // what the content is.
            _ => {}
        }
    }
    Some(Pointer {
        oid: oid?,
        size: size?,
    })
}

/// Where git-lfs keeps the object of `pointer` for `repo` (the common git directory,
/// so linked worktrees and bare repositories find it too).
pub fn object_path(repo: &Repository, pointer: &Pointer) -> PathBuf {
    let oid = &pointer.oid;
    repo.commondir()
        .join("lfs/objects")
        .join(&oid[0..2])
        .join(&oid[2..4])
        .join(oid)
}

/// The content `pointer` names, checked against its size and SHA-256.
pub fn read_object(repo: &Repository, pointer: &Pointer) -> Result<Vec<u8>, LfsError> {
    let path = object_path(repo, pointer);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(LfsError::Missing {
                oid: pointer.oid.clone(),
                size: pointer.size,
            })
        }
        Err(e) => {
            return Err(LfsError::Unreadable {
                oid: pointer.oid.clone(),
                error: e.to_string(),
            })
        }
    };
    let actual = sha256_hex(&bytes);
    if actual != pointer.oid || bytes.len() as u64 != pointer.size {
        return Err(LfsError::Damaged {
            oid: pointer.oid.clone(),
            size: pointer.size,
            actual,
            actual_size: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pointer_text(oid: &str, size: u64) -> String {
        format!("{VERSION}\noid sha256:{oid}\nsize {size}\n")
    }

    #[test]
    fn pointers_parse_and_other_files_do_not() {
        let oid = sha256_hex(b"content");
        let p = parse_pointer(pointer_text(&oid, 7).as_bytes()).unwrap();
        assert_eq!(
            p,
            Pointer {
                oid: oid.clone(),
                size: 7
            }
        );
        assert_eq!(parse_pointer(b"just a file\n"), None);
        assert_eq!(
            parse_pointer(pointer_text(&oid, 7).trim_end().as_bytes()),
            None,
            "a pointer ends with a newline"
        );
        assert_eq!(parse_pointer(pointer_text("abc", 7).as_bytes()), None);
        assert_eq!(
            parse_pointer(pointer_text(&oid.to_uppercase(), 7).as_bytes()),
            None
        );
        assert_eq!(
            parse_pointer(format!("{VERSION}\nsize 7\n").as_bytes()),
            None
        );
    }
}
