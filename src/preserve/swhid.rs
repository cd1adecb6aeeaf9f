//! Software Heritage identifiers (SWHIDs) of captured code.
//!
//! Software Heritage hashes revisions and directories exactly as git hashes commits
//! and trees (SHA-1 over the same object bytes), so for a git repository with SHA-1
//! object ids `swh:1:rev:<id>` is the commit id and `swh:1:dir:<id>` the commit's
//! tree id. Both are read from the bundle itself, never from what a deposit says, so
//! the directory identifier is what `swh-identify` computes on the checked-out code.

use crate::capture::clean_git;

/// The SWHIDs of one captured commit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CodeIds {
    /// `swh:1:rev:<commit>`
    pub revision: String,
    /// `swh:1:dir:<tree of the commit>`
    pub directory: String,
}

fn is_sha1(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Reads `commit` (or the bundle's HEAD when `None`) from a bundle's bytes and
/// returns its SWHIDs.
pub fn of_bundle(bytes: &[u8], commit: Option<&str>) -> Result<CodeIds, String> {
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = scratch.path().join("code.bundle");
    std::fs::write(&file, bytes).map_err(|e| e.to_string())?;
    let repo = scratch.path().join("repo.git");
    let git = |args: &[&str]| -> Result<String, String> {
        let mut cmd = clean_git();
        if repo.exists() {
            cmd.arg("-C").arg(&repo);
        }
        let out = cmd
            .args(args)
            .output()
            .map_err(|e| format!("cannot run git ({e})"))?;
        if !out.status.success() {
            return Err(format!(
                "git {} failed: {}",
                args.first().unwrap_or(&""),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    git(&["init", "--quiet", "--bare", &repo.to_string_lossy()])?;
    git(&[
        "fetch",
        "--quiet",
        &file.to_string_lossy(),
        "+refs/*:refs/bundle/*",
        "+HEAD:refs/bundle-head",
    ])
    .or_else(|_| {
        git(&[
            "fetch",
            "--quiet",
            &file.to_string_lossy(),
            "+refs/*:refs/bundle/*",
        ])
    })?;
    let wanted = commit.unwrap_or("refs/bundle-head");
    let commit = git(&["rev-parse", "--verify", &format!("{wanted}^{{commit}}")])
        .map_err(|_| format!("the bundle does not contain commit {wanted}"))?;
    let tree = git(&["rev-parse", "--verify", &format!("{commit}^{{tree}}")])?;
    if !is_sha1(&commit) || !is_sha1(&tree) {
        return Err(format!(
            "the bundle's repository does not use SHA-1 object ids ({commit}); SWHIDs v1 name SHA-1 objects only"
        ));
    }
    Ok(CodeIds {
        revision: format!("swh:1:rev:{commit}"),
        directory: format!("swh:1:dir:{tree}"),
    })
}
