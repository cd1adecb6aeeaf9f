//! The files a CAP deposit refers to: which to fetch, and whether what arrived is what
//! CAP holds. CAP (Invenio) writes a file's checksum as `md5:<hex>`; a file is taken
//! only when its bytes match that checksum and CAP's size, so a damaged download or a
//! file changed since CAP listed it never reaches the archive.
//!
//! Nothing here talks to a server: the caller hands in a fetcher.

use md5::Md5;
use sha2::{Digest, Sha256};

use crate::archive::Source;
use crate::deposit::{check_id, file_path};

use super::map::FileRef;
use super::plan::MissingFile;
use super::source::ApiError;

/// What fetching one file gave.
pub enum Fetched {
    Bytes(Vec<u8>),
    /// Not fetched, and why (no token, no address, 404, another server).
    Missing(String),
}

/// Fetches a file CAP refers to.
pub type FileFetcher<'a> = dyn Fn(&FileRef) -> Result<Fetched, ApiError> + 'a;

/// A checksum CAP gave, as `algorithm:hex`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Md5,
    Sha256,
}

/// Why a file's bytes are not the ones CAP describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    Size {
        expected: u64,
        got: u64,
    },
    Checksum {
        expected: String,
        got: String,
    },
    /// A checksum capsule cannot check (an unknown algorithm, or not hex).
    Unreadable(String),
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks `bytes` against CAP's size and checksum (`md5:<hex>` or `sha256:<hex>`).
pub fn verify(file: &FileRef, bytes: &[u8]) -> Result<(), Mismatch> {
    if let Some(expected) = file.size {
        // More than `size` bytes may have arrived: the fetch reads one byte past it.
        let got = bytes.len() as u64;
        if got != expected {
            return Err(Mismatch::Size { expected, got });
        }
    }
    let Some(text) = &file.checksum else {
        return Ok(());
    };
    let (name, want) = text.split_once(':').ok_or_else(|| {
        Mismatch::Unreadable(format!(
            "`{text}` names no algorithm (CAP writes `md5:<hex>`)"
        ))
    })?;
    let algorithm = match name.to_ascii_lowercase().as_str() {
        "md5" => Algorithm::Md5,
        "sha256" => Algorithm::Sha256,
        other => {
            return Err(Mismatch::Unreadable(format!(
                "`{text}`: capsule checks md5 and sha256 checksums, not {other}"
            )))
        }
    };
    let (got, len) = match algorithm {
        Algorithm::Md5 => (hex(&Md5::digest(bytes)), 32),
        Algorithm::Sha256 => (hex(&Sha256::digest(bytes)), 64),
    };
    if want.len() != len || !want.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Mismatch::Unreadable(format!(
            "`{text}` is not a {name} checksum ({len} hex digits)"
        )));
    }
    if !want.eq_ignore_ascii_case(&got) {
        return Err(Mismatch::Checksum {
            expected: text.clone(),
            got: format!("{name}:{got}"),
        });
    }
    Ok(())
}

/// A file name CAP gave that can live in a deposit's folder: segments of the id
/// alphabet, not the deposit's own `deposit.json` or `reviews/`.
fn safe_file_name(key: &str) -> bool {
    key != "deposit.json"
        && !key.starts_with("reviews/")
        && key.split('/').all(|segment| check_id(segment).is_ok())
}

/// The files of one deposit: those to write (fetched and verified, and not already in
/// the archive with the same bytes), and those that could not be fetched. `Err` is a
/// problem that stops the deposit's import: a name that cannot be a file, or bytes
/// that do not match CAP's size or checksum.
pub struct Files {
    pub write: Vec<(String, Vec<u8>)>,
    pub missing: Vec<MissingFile>,
}

pub fn plan_files(
    archive: &dyn Source,
    id: &str,
    refs: &[FileRef],
    fetch: &FileFetcher<'_>,
) -> Result<Result<Files, String>, ApiError> {
    let mut files = Files {
        write: Vec::new(),
        missing: Vec::new(),
    };
    for f in refs {
        if !safe_file_name(&f.key) {
            return Ok(Err(format!(
                "CAP file `{}` of deposit {id} has a name that cannot be a file of the deposit's folder (letters, digits, `.`, `_`, `-` and `/` between them): rename it in CAP, or import with --skip-invalid and add it with `capsule attach`",
                f.key
            )));
        }
        // Already in the archive with CAP's bytes: nothing to fetch or write.
        let have = archive.read(&file_path(id, &f.key)).ok().flatten();
        if let Some(have) = &have {
            if f.checksum.is_some() && verify(f, have).is_ok() {
                continue;
            }
        }
        let bytes = match fetch(f)? {
            Fetched::Bytes(bytes) => bytes,
            Fetched::Missing(reason) => {
                files.missing.push(MissingFile {
                    id: id.to_string(),
                    key: f.key.clone(),
                    checksum: f.checksum.clone(),
                    reason,
                });
                continue;
            }
        };
        let from = f.url.as_deref().unwrap_or("CAP");
        let how = "fetch it again (run the import again); if CAP's copy itself is damaged, import the rest with --skip-invalid and add the right file with `capsule attach`";
        match verify(f, &bytes) {
            Ok(()) => {}
            Err(Mismatch::Size { expected, got }) => {
                let got = if got > expected {
                    format!("more than {expected}")
                } else {
                    got.to_string()
                };
                return Ok(Err(format!(
                    "CAP file `{}` of deposit {id} from {from}: {got} bytes arrived, CAP says {expected}: {how}",
                    f.key
                )));
            }
            Err(Mismatch::Checksum { expected, got }) => {
                return Ok(Err(format!(
                    "CAP file `{}` of deposit {id} from {from}: checksum mismatch, expected {expected}, got {got}: the download was damaged or the file changed in CAP since it was listed; {how}",
                    f.key
                )));
            }
            Err(Mismatch::Unreadable(why)) => {
                return Ok(Err(format!(
                    "CAP file `{}` of deposit {id}: its checksum cannot be checked: {why}",
                    f.key
                )));
            }
        }
        if have.as_deref() != Some(bytes.as_slice()) {
            files.write.push((f.key.clone(), bytes));
        }
    }
    Ok(Ok(files))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(checksum: Option<&str>, size: Option<u64>) -> FileRef {
        FileRef {
            key: "a.txt".into(),
            checksum: checksum.map(str::to_string),
            size,
            url: None,
            bucket: None,
        }
    }

    #[test]
    fn checksums_in_invenios_form_are_checked() {
        // md5("hello\n") and sha256("hello\n").
        let md5 = "md5:b1946ac92492d2347c6235b4d2611184";
        assert_eq!(verify(&file(Some(md5), Some(6)), b"hello\n"), Ok(()));
        let upper = "MD5:B1946AC92492D2347C6235B4D2611184";
        assert_eq!(verify(&file(Some(upper), None), b"hello\n"), Ok(()));
        let sha = "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
        assert_eq!(verify(&file(Some(sha), None), b"hello\n"), Ok(()));
        assert_eq!(
            verify(&file(Some(md5), None), b"hellO\n"),
            Err(Mismatch::Checksum {
                expected: md5.into(),
                got: "md5:db2480e33cac4bf29fb0803af567ab19".into(),
            })
        );
        assert_eq!(
            verify(&file(Some(md5), Some(7)), b"hello\n"),
            Err(Mismatch::Size {
                expected: 7,
                got: 6
            })
        );
        assert!(matches!(
            verify(&file(Some("sha1:f572d396fae9206628714fb2ce00f72e94f2258f"), None), b"hello\n"),
            Err(Mismatch::Unreadable(m)) if m.contains("not sha1")
        ));
        assert!(matches!(
            verify(&file(Some("md5:xyz"), None), b""),
            Err(Mismatch::Unreadable(_))
        ));
        assert_eq!(verify(&file(None, None), b"anything"), Ok(()));
    }
}
