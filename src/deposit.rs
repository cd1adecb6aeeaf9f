//! Deposits: their ids, how they name their schema, and where their files live.
//!
//! Pure functions over strings; nothing here touches git or the file system.

use crate::version::Version;

/// The longest id we accept: ids become folder names, ref names and URLs.
pub const MAX_ID_LEN: usize = 128;

/// Why an id is refused, phrased so that the user knows what to change.
pub fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("the deposit id is empty".into());
    }
    if id.len() > MAX_ID_LEN {
        return Err(format!(
            "the deposit id is {} characters long; the limit is {MAX_ID_LEN}",
            id.len()
        ));
    }
    let first = id.as_bytes()[0];
    if !first.is_ascii_alphanumeric() {
        return Err(format!(
            "the deposit id `{id}` must start with a letter or a digit"
        ));
    }
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "the deposit id `{id}` contains {bad:?}; use only letters, digits, `.`, `_` and `-`"
        ));
    }
    // git refuses these in ref names, and record tags are `records/<id>/v<N>`.
    if id.ends_with(".lock") || id.contains("..") || id.ends_with('.') {
        return Err(format!(
            "the deposit id `{id}` cannot be used in a git ref name (no `..`, no trailing `.` or `.lock`)"
        ));
    }
    Ok(())
}

/// A deposit's reference to its schema: `name` at `version`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SchemaRef {
    pub name: String,
    pub version: String,
}

impl SchemaRef {
    /// The path of the schema file in the archive.
    pub fn path(&self) -> String {
        format!("schemas/{}/{}.json", self.name, self.version)
    }
}

impl std::fmt::Display for SchemaRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.name, self.version)
    }
}

/// Parses the forms a deposit's `$schema` may take:
/// `name/1.0.0`, `name/1.0.0.json`, `name-v1.0.0`, `name-v1.0.0.json`, and CAP URLs
/// such as `https://analysispreservation.cern.ch/schemas/deposits/records/cms-analysis-v0.0.1.json`.
pub fn parse_schema_ref(text: &str) -> Option<SchemaRef> {
    let text = text.trim();
    let text = text.split('#').next().unwrap_or("");
    let without_scheme = match text.find("://") {
        // A URL: only its last path segment names the schema.
        Some(i) => text[i + 3..].rsplit('/').next().unwrap_or(""),
        None => text,
    };
    let mut text = without_scheme;
    while let Some(rest) = text.strip_prefix("../").or_else(|| text.strip_prefix("./")) {
        text = rest;
    }
    let text = text.strip_prefix("schemas/").unwrap_or(text);
    let text = text.strip_suffix(".json").unwrap_or(text);
    let (name, version) = match text.split_once('/') {
        Some((name, version)) if !version.contains('/') => (name, version),
        Some(_) => return None,
        None => {
            let i = text.rfind("-v")?;
            (&text[..i], &text[i + 2..])
        }
    };
    if !valid_schema_name(name) || version.parse::<Version>().is_err() {
        return None;
    }
    Some(SchemaRef {
        name: name.to_string(),
        version: version.to_string(),
    })
}

/// An unversioned reference (`https://.../packtivity-schema.json`, `name/latest`):
/// CAP resolved these to the newest version, so we do too. Pinned versions are
/// preferable, because a new version then cannot change how old deposits validate.
pub fn parse_latest_schema_ref(text: &str) -> Option<SchemaRef> {
    let text = text.split('#').next().unwrap_or("").trim();
    let last = text.rsplit('/').next().unwrap_or("");
    let name = if last == "latest" || last == "latest.json" {
        text.trim_end_matches(last)
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or("")
    } else if text.contains("://") {
        last.strip_suffix(".json").unwrap_or(last)
    } else {
        return None;
    };
    valid_schema_name(name).then(|| SchemaRef {
        name: name.to_string(),
        version: LATEST.to_string(),
    })
}

/// The version placeholder of an unversioned reference.
pub const LATEST: &str = "latest";

/// Schema names share the id alphabet: they become folders and URL segments.
pub fn valid_schema_name(name: &str) -> bool {
    check_id(name).is_ok()
}

/// The folder that holds every deposit, each in its shard: `deposits/<shard>/<id>/`.
pub const DEPOSITS: &str = "deposits";

/// The shard of an id: the first two lowercase hex digits of SHA-256 of its UTF-8
/// bytes. 256 shards keep every git tree small (a flat `deposits/` of 100k entries is a
/// 3.7 MB tree that every push, pull and history walk inflates; hosts advise at most
/// 3,000 entries per folder), up to ~750k deposits.
pub fn shard(id: &str) -> String {
    format!("{:02x}", id_digest(id)[0])
}

/// SHA-256 of an id's UTF-8 bytes: its shard, and the search index's key for folding
/// an analysis's versions into one hit.
pub fn id_digest(id: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(id.as_bytes()).into()
}

/// The one place that maps an id to its folder: `deposits/<shard>/<id>`.
///
/// Every command takes ids; paths are made here and nowhere else.
pub fn folder(id: &str) -> String {
    format!("{DEPOSITS}/{}/{id}", shard(id))
}

/// A file of deposit `id`: `deposits/<shard>/<id>/<rest>`.
pub fn file_path(id: &str, rest: &str) -> String {
    format!("{}/{rest}", folder(id))
}

/// The metadata file of deposit `id`: `deposits/<shard>/<id>/deposit.json`.
pub fn metadata_path(id: &str) -> String {
    file_path(id, "deposit.json")
}

/// Where deposit `id` lived before shards (`deposits/<id>`): only ever read, at commits
/// made before `capsule migrate`, so that old versions and record tags stay readable.
pub fn legacy_folder(id: &str) -> String {
    format!("{DEPOSITS}/{id}")
}

/// Whether `name` has the form of a shard folder (two lowercase hex digits).
pub fn is_shard_name(name: &str) -> bool {
    name.len() == 2 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// What a path in an archive is, by the layout in DESIGN.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathKind {
    /// `deposits/<shard>/<id>/deposit.json`
    DepositJson { id: String },
    /// `deposits/<shard>/<id>/reviews/<file>`
    Review { id: String, file: String },
    /// Any other file of a deposit: `deposits/<shard>/<id>/<rest>`
    DepositFile { id: String, rest: String },
    /// `schemas/<name>/<version>.json`
    Schema(SchemaRef),
    /// `capsule.toml`
    Settings,
    /// `access.toml`
    Access,
    /// `templates/...`
    Template(String),
    /// A path inside `deposits/` or `schemas/` that breaks the layout; the reason says how.
    Misplaced(String),
    /// Anything else (README.md, .gitignore, docs): allowed, only size-checked.
    Other,
}

/// Classifies a repository path (forward slashes).
pub fn classify(path: &str) -> PathKind {
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["capsule.toml"] => PathKind::Settings,
        ["access.toml"] => PathKind::Access,
        ["templates", ..] => PathKind::Template(path["templates/".len()..].to_string()),
        ["deposits", file] if file.starts_with('.') => PathKind::Other,
        ["deposits", _] => PathKind::Misplaced(
            "files directly under deposits/ are not allowed: put each deposit in deposits/<shard>/<id>/deposit.json (`capsule new` makes the folder)".into(),
        ),
        ["deposits", shard_name, id, rest @ ..]
            if !rest.is_empty() && is_shard_name(shard_name) && *shard_name == shard(id) =>
        {
            if let Err(why) = check_id(id) {
                return PathKind::Misplaced(why);
            }
            let id = id.to_string();
            match rest {
                ["deposit.json"] => PathKind::DepositJson { id },
                ["reviews", file] => PathKind::Review {
                    id,
                    file: file.to_string(),
                },
                _ => PathKind::DepositFile {
                    id,
                    rest: rest.join("/"),
                },
            }
        }
        ["deposits", first, rest @ ..] => PathKind::Misplaced(misplaced_deposit(first, rest)),
        ["schemas", "README.md"] => PathKind::Other,
        ["schemas", name, file] => {
            let Some(version) = file.strip_suffix(".json") else {
                return PathKind::Misplaced(format!(
                    "schema files are named schemas/<name>/<version>.json; `{file}` does not end in .json"
                ));
            };
            if !valid_schema_name(name) {
                return PathKind::Misplaced(format!(
                    "`{name}` is not a valid schema name: use letters, digits, `.`, `_` and `-`"
                ));
            }
            if version.parse::<Version>().is_err() {
                return PathKind::Misplaced(format!(
                    "`{version}` is not a schema version: name the file after its version, such as schemas/{name}/1.0.0.json"
                ));
            }
            PathKind::Schema(SchemaRef {
                name: name.to_string(),
                version: version.to_string(),
            })
        }
        ["schemas", ..] => PathKind::Misplaced(
            "schema files are named schemas/<name>/<version>.json".into(),
        ),
        _ => PathKind::Other,
    }
}

/// Why a path under `deposits/` is not in its deposit's shard, naming the right place.
fn misplaced_deposit(first: &str, rest: &[&str]) -> String {
    let moved = |id: &str, rest: &[&str]| {
        let rest = if rest.is_empty() {
            "deposit.json".to_string()
        } else {
            rest.join("/")
        };
        format!("{}/{rest}", folder(id))
    };
    match rest {
        // deposits/<shard>/<id>/...: a shard that is not the id's own.
        [id, inner @ ..] if is_shard_name(first) && !inner.is_empty() && check_id(id).is_ok() => {
            format!(
                "deposit `{id}` is in the wrong shard: its folder is {} (the shard is the first two hex digits of the SHA-256 of the id); move it there with `git mv`",
                folder(id)
            )
        }
        // deposits/<id>/...: the flat layout of capsule before shards.
        _ if check_id(first).is_ok() && !is_shard_name(first) => format!(
            "deposits now live in shard folders: this file belongs at {} (`capsule migrate` moves a whole archive in one commit)",
            moved(first, rest)
        ),
        _ if check_id(first).is_err() => check_id(first).unwrap_err(),
        _ => "a deposit's files live in deposits/<shard>/<id>/; this path is not inside a deposit's folder".into(),
    }
}

/// A Git LFS pointer file: the real content lives in LFS storage.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LfsPointer {
    /// `sha256:<hex>`
    pub oid: String,
    pub size: u64,
}

/// Recognises a Git LFS pointer (the small text file git stores in place of a large
/// file tracked with `git lfs track`).
pub fn lfs_pointer(bytes: &[u8]) -> Option<LfsPointer> {
    if bytes.len() > 1024 {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let mut lines = text.lines();
    if !lines
        .next()?
        .starts_with("version https://git-lfs.github.com/spec/")
    {
        return None;
    }
    let (mut oid, mut size) = (None, None);
    for line in lines {
        if let Some(v) = line.strip_prefix("oid ") {
            let hex = v.strip_prefix("sha256:")?;
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            oid = Some(v.to_string());
        } else if let Some(v) = line.strip_prefix("size ") {
            size = v.parse().ok();
        }
    }
    Some(LfsPointer {
        oid: oid?,
        size: size?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lfs_pointers_are_recognised() {
        let pointer = format!(
            "version https://git-lfs.github.com/spec/v1\noid sha256:{}\nsize 12345\n",
            "a".repeat(64)
        );
        let found = lfs_pointer(pointer.as_bytes()).unwrap();
        assert_eq!(found.size, 12345);
        assert!(found.oid.starts_with("sha256:aaaa"));
        assert!(lfs_pointer(b"version 1\nsize 3\n").is_none());
        assert!(lfs_pointer(pointer.replace("size 12345\n", "").as_bytes()).is_none());
    }

    fn sref(name: &str, version: &str) -> Option<SchemaRef> {
        Some(SchemaRef {
            name: name.into(),
            version: version.into(),
        })
    }

    #[test]
    fn schema_ref_forms() {
        assert_eq!(
            parse_schema_ref("analysis/1.0.0"),
            sref("analysis", "1.0.0")
        );
        assert_eq!(
            parse_schema_ref("analysis/1.0.0.json"),
            sref("analysis", "1.0.0")
        );
        assert_eq!(
            parse_schema_ref("cms-analysis-v0.0.1"),
            sref("cms-analysis", "0.0.1")
        );
        assert_eq!(
            parse_schema_ref(
                "https://analysispreservation.cern.ch/schemas/deposits/records/cms-analysis-v0.0.1.json"
            ),
            sref("cms-analysis", "0.0.1")
        );
        assert_eq!(
            parse_schema_ref("https://analysispreservation.cern.ch/schemas/deposits/records/deposit-v0.0.1.json#/definitions/x"),
            sref("deposit", "0.0.1")
        );
        assert_eq!(
            parse_schema_ref("../analysis/2.0.json"),
            sref("analysis", "2.0")
        );
        assert_eq!(
            parse_schema_ref("http://json-schema.org/draft-04/schema#"),
            None
        );
        assert_eq!(parse_schema_ref("analysis"), None);
        assert_eq!(parse_schema_ref("analysis/latest"), None);
        assert_eq!(parse_schema_ref("../../etc/passwd"), None);
        assert_eq!(
            parse_latest_schema_ref("https://analysispreservation.cern.ch/schemas/deposits/records/packtivity-schema.json#"),
            sref("packtivity-schema", "latest")
        );
        assert_eq!(
            parse_latest_schema_ref("analysis/latest"),
            sref("analysis", "latest")
        );
        assert_eq!(
            parse_latest_schema_ref("https://example.org/a b.json"),
            None
        );
    }

    #[test]
    fn ids() {
        for ok in ["zee", "CAP.CMS.1234.ABCD", "a", "ana-000001", "x_y"] {
            assert!(check_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", ".hidden", "-x", "a b", "a/b", "é", "a..b", "x.lock", "x.", "a:b",
        ] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
        assert!(check_id(&"a".repeat(128)).is_ok());
        assert!(check_id(&"a".repeat(129)).is_err());
    }

    #[test]
    fn classifies_paths() {
        let zee = folder("zee");
        assert_eq!(zee, format!("deposits/{}/zee", shard("zee")));
        assert_eq!(
            classify(&format!("{zee}/deposit.json")),
            PathKind::DepositJson { id: "zee".into() }
        );
        assert_eq!(
            classify(&format!("{zee}/reviews/r1.json")),
            PathKind::Review {
                id: "zee".into(),
                file: "r1.json".into()
            }
        );
        assert_eq!(
            classify(&format!("{zee}/plots/a.png")),
            PathKind::DepositFile {
                id: "zee".into(),
                rest: "plots/a.png".into()
            }
        );
        assert!(matches!(
            classify("deposits/stray.json"),
            PathKind::Misplaced(_)
        ));
        assert!(matches!(
            classify("deposits/bad id/deposit.json"),
            PathKind::Misplaced(_)
        ));
        assert_eq!(
            classify("schemas/analysis/1.0.0.json"),
            PathKind::Schema(SchemaRef {
                name: "analysis".into(),
                version: "1.0.0".into()
            })
        );
        assert!(matches!(
            classify("schemas/analysis/latest.json"),
            PathKind::Misplaced(_)
        ));
        assert!(matches!(
            classify("schemas/analysis.json"),
            PathKind::Misplaced(_)
        ));
        assert_eq!(classify("capsule.toml"), PathKind::Settings);
        assert_eq!(classify("README.md"), PathKind::Other);
        assert_eq!(classify("deposits/.gitkeep"), PathKind::Other);
    }

    #[test]
    fn shards_are_the_first_byte_of_sha256() {
        // sha256("zee") and sha256(""), as `printf %s ID | sha256sum` prints them.
        assert_eq!(shard("zee"), "37");
        assert_eq!(shard(""), "e3");
        assert!(is_shard_name(&shard("CAP.CMS.1")));
        assert!(!is_shard_name("AB") && !is_shard_name("abc") && !is_shard_name("zz"));
        assert_eq!(
            metadata_path("zee"),
            format!("deposits/37/zee/deposit.json")
        );
    }

    #[test]
    fn misplaced_deposits_are_told_their_folder() {
        let PathKind::Misplaced(why) = classify("deposits/zee/deposit.json") else {
            panic!("the flat layout must be refused");
        };
        assert!(why.contains("deposits/37/zee/deposit.json"), "{why}");
        let PathKind::Misplaced(why) = classify("deposits/00/zee/reviews/r.json") else {
            panic!("a wrong shard must be refused");
        };
        assert!(
            why.contains("wrong shard") && why.contains("deposits/37/zee"),
            "{why}"
        );
        assert!(matches!(
            classify("deposits/37/zee"),
            PathKind::Misplaced(_)
        ));
    }
}
