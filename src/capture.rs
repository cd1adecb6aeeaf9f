//! Capturing analysis software from git repositories, and checking captured bundles.
//!
//! A capture pins a repository URL and ref to a commit; with a bundle, the code itself
//! is kept among the deposit's files (`git bundle`, one file that `git clone` reads),
//! so the analysis survives the repository. The real `git` client does the talking:
//! it knows every transport and credential helper the user has set up.
//!
//! Every git process here runs with the variables of an enclosing hook removed, so a
//! check inside `pre-receive` never touches the repository being pushed to.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// Why a capture or a bundle check failed.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("cannot run git ({0}); is git installed?")]
    NoGit(std::io::Error),
    #[error("git {what} failed: {message}")]
    Git { what: String, message: String },
    #[error("{url} has no branch or tag `{wanted}`{hint}")]
    NoRef {
        url: String,
        wanted: String,
        hint: String,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A `git` command that ignores the environment of an enclosing hook or repository.
pub fn clean_git() -> Command {
    let mut cmd = Command::new("git");
    for var in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_QUARANTINE_PATH",
        "GIT_NAMESPACE",
        "GIT_PREFIX",
        "GIT_PUSH_OPTION_COUNT",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("GIT_TERMINAL_PROMPT", "0");
    cmd
}

fn run(mut cmd: Command, what: &str) -> Result<Output, CaptureError> {
    let output = cmd.output().map_err(CaptureError::NoGit)?;
    if !output.status.success() {
        let message = String::from_utf8_lossy(&output.stderr).trim().to_string();
        return Err(CaptureError::Git {
            what: what.to_string(),
            message: if message.is_empty() {
                format!("exit status {}", output.status)
            } else {
                message
            },
        });
    }
    Ok(output)
}

fn is_commit_id(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Resolves `wanted` (a branch, a tag, `HEAD`, or a full commit id) in the repository
/// at `url`. Returns the full ref name that was matched and the commit.
pub fn resolve_ref(url: &str, wanted: Option<&str>) -> Result<(String, String), CaptureError> {
    let wanted = wanted.unwrap_or("HEAD");
    if is_commit_id(wanted) {
        return Ok((wanted.to_ascii_lowercase(), wanted.to_ascii_lowercase()));
    }
    let mut cmd = clean_git();
    cmd.args(["ls-remote", "--", url]);
    let output = run(cmd, &format!("ls-remote {url}"))?;
    let listing = String::from_utf8_lossy(&output.stdout);
    let refs: Vec<(&str, &str)> = listing
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(id, name)| (name, id))
        .collect();
    let find = |name: &str| {
        refs.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, id)| id.to_string())
    };
    // An annotated tag's commit is its peeled entry (`^{}`).
    let candidates = [
        (wanted.to_string(), wanted.to_string()),
        (
            format!("refs/heads/{wanted}"),
            format!("refs/heads/{wanted}"),
        ),
        (
            format!("refs/tags/{wanted}^{{}}"),
            format!("refs/tags/{wanted}"),
        ),
        (format!("refs/tags/{wanted}"), format!("refs/tags/{wanted}")),
    ];
    for (lookup, name) in candidates {
        if let Some(id) = find(&lookup) {
            return Ok((name, id));
        }
    }
    let branches: Vec<&str> = refs
        .iter()
        .filter_map(|(n, _)| n.strip_prefix("refs/heads/"))
        .take(8)
        .collect();
    Err(CaptureError::NoRef {
        url: url.to_string(),
        wanted: wanted.to_string(),
        hint: if branches.is_empty() {
            String::new()
        } else {
            format!("; its branches include {}", branches.join(", "))
        },
    })
}

/// Writes a bundle of `commit` (fetched through `ref_name`) from `url` to `out`.
/// Returns the bundle's size in bytes. The file appears whole or not at all.
pub fn make_bundle(
    url: &str,
    ref_name: &str,
    commit: &str,
    out: &Path,
) -> Result<u64, CaptureError> {
    let scratch = tempfile::tempdir()?;
    let repo = scratch.path().join("repo.git");
    let mut init = clean_git();
    init.args(["init", "--quiet", "--bare"]).arg(&repo);
    run(init, "init")?;
    let git = || {
        let mut cmd = clean_git();
        cmd.arg("-C").arg(&repo);
        cmd
    };
    let mut fetch = git();
    let source = if ref_name == commit {
        commit.to_string()
    } else {
        ref_name.to_string()
    };
    fetch.args(["fetch", "--quiet", "--no-tags", "--", url, &source]);
    run(fetch, &format!("fetch {source} from {url}"))?;
    let mut pin = git();
    pin.args(["update-ref", "refs/heads/captured", commit]);
    run(pin, &format!("find commit {commit} in {url}"))?;
    // With HEAD in the bundle, `git clone x.bundle` checks the code out.
    let mut head = git();
    head.args(["symbolic-ref", "HEAD", "refs/heads/captured"]);
    run(head, "symbolic-ref")?;
    let dir = out.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let partial = tempfile::Builder::new()
        .suffix(".bundle")
        .tempfile_in(dir)?;
    let mut bundle = git();
    bundle
        .args(["bundle", "create", "--quiet"])
        .arg(partial.path())
        .args(["HEAD", "refs/heads/captured"]);
    run(bundle, "bundle create")?;
    partial.as_file().sync_all()?;
    let (_, path) = partial.keep().map_err(|e| e.error)?;
    std::fs::rename(&path, out)?;
    Ok(std::fs::metadata(out)?.len())
}

/// Checks that `bytes` are a complete git bundle whose objects are all there and
/// intact, and that it contains `commit` when one is recorded.
pub fn verify_bundle(bytes: &[u8], commit: Option<&str>) -> Result<(), String> {
    if !(bytes.starts_with(b"# v2 git bundle\n") || bytes.starts_with(b"# v3 git bundle\n")) {
        return Err("not a git bundle (it does not start with `# v2 git bundle`): create it with `capsule capture-repo --bundle` or `git bundle create`".into());
    }
    let work = || -> Result<(), CaptureError> {
        let scratch = tempfile::tempdir()?;
        let file = scratch.path().join("check.bundle");
        std::fs::write(&file, bytes)?;
        let repo = scratch.path().join("repo.git");
        let mut init = clean_git();
        init.args(["init", "--quiet", "--bare"]).arg(&repo);
        run(init, "init")?;
        let git = || {
            let mut cmd = clean_git();
            cmd.arg("-C").arg(&repo);
            cmd
        };
        let mut verify = git();
        verify.args(["bundle", "verify", "--quiet"]).arg(&file);
        run(verify, "bundle verify")?;
        // Fetching runs index-pack, which checks every object and the pack's checksum.
        let mut fetch = git();
        fetch
            .args(["fetch", "--quiet"])
            .arg(&file)
            .arg("refs/*:refs/bundle/*");
        run(fetch, "fetch from the bundle")?;
        if let Some(commit) = commit {
            let mut has = git();
            has.args(["cat-file", "-e", &format!("{commit}^{{commit}}")]);
            run(has, &format!("find the recorded commit {commit}")).map_err(|_| {
                CaptureError::Git {
                    what: "check".into(),
                    message: format!("the bundle does not contain the recorded commit {commit}"),
                }
            })?;
        }
        Ok(())
    };
    work().map_err(|e| match e {
        CaptureError::Git { what, message } if what == "check" => message,
        other => format!("the bundle is damaged or incomplete: {other}"),
    })
}

/// The commit a deposit records for a bundle file (relative to the deposit's folder):
/// any object in the deposit with `"bundle": <file>` and a `"commit"`.
pub fn recorded_commit(deposit: &Value, file: &str) -> Option<String> {
    match deposit {
        Value::Object(map) => {
            if map.get("bundle").and_then(Value::as_str) == Some(file) {
                if let Some(commit) = map.get("commit").and_then(Value::as_str) {
                    return Some(commit.to_string());
                }
            }
            map.values().find_map(|v| recorded_commit(v, file))
        }
        Value::Array(items) => items.iter().find_map(|v| recorded_commit(v, file)),
        _ => None,
    }
}

/// Every `(bundle, commit)` pair a deposit records.
pub fn bundle_records(deposit: &Value) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    fn walk(value: &Value, out: &mut Vec<(String, Option<String>)>) {
        match value {
            Value::Object(map) => {
                if let Some(bundle) = map.get("bundle").and_then(Value::as_str) {
                    out.push((
                        bundle.to_string(),
                        map.get("commit")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                    ));
                }
                map.values().for_each(|v| walk(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(deposit, &mut out);
    out
}

/// A file name for the bundle of `url` at `commit`: `<repository>-<short commit>.bundle`.
pub fn bundle_name(url: &str, commit: &str) -> String {
    let last = url
        .trim_end_matches('/')
        .rsplit(['/', ':'])
        .next()
        .unwrap_or("repository");
    let name: String = last
        .trim_end_matches(".git")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_matches(|c| c == '.' || c == '-');
    let name = if name.is_empty() { "repository" } else { name };
    format!("{name}-{}.bundle", &commit[..commit.len().min(12)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bundle_names_are_safe() {
        assert_eq!(
            bundle_name("https://gitlab.cern.ch/a/ana-code.git", "0123456789abcdef"),
            "ana-code-0123456789ab.bundle"
        );
        assert_eq!(bundle_name("git@host:x/y z.git/", "abc"), "y-z-abc.bundle");
        assert_eq!(bundle_name("file:///", "abc"), "repository-abc.bundle");
    }

    #[test]
    fn recorded_commits_are_found_anywhere() {
        let d = json!({"analysis_software": {"repositories": [
            {"url": "u", "commit": "aaa", "bundle": "software/a.bundle"}]}});
        assert_eq!(
            recorded_commit(&d, "software/a.bundle").as_deref(),
            Some("aaa")
        );
        assert_eq!(recorded_commit(&d, "software/b.bundle"), None);
    }

    #[test]
    fn garbage_is_not_a_bundle() {
        assert!(verify_bundle(b"hello", None)
            .unwrap_err()
            .contains("not a git bundle"));
        assert!(
            verify_bundle(b"# v2 git bundle\n0000 refs/heads/x\n\nPACKjunk", None)
                .unwrap_err()
                .contains("damaged")
        );
    }
}
