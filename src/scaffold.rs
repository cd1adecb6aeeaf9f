//! What capsule writes: a new archive (`capsule init`) and the hook scripts
//! (`capsule hook install`).
//!
//! Everything is written beside its destination and moved into place at the end, so a
//! failure never leaves half an archive; a hook capsule did not write is never
//! replaced without `--force`, and then only after a backup.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use git2::{Oid, Repository, Signature};
use serde::Serialize;

use crate::settings::Settings;

/// capsule's own example schema (an analysis form with CAP's four sections).
pub const ANALYSIS_SCHEMA: &str = include_str!("../schemas/analysis/1.0.0.json");
/// The CAP documentation's miniature draft-04 schema, used by the demo.
pub const CAP_DOCS_SCHEMA: &str = include_str!("../schemas/cap-docs-example/0.0.1.json");

/// The files of a new archive, by path.
pub fn skeleton(name: &str, admin: &str, admin_email: &str) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let name_toml = toml::Value::String(name.to_string()).to_string();
    let admin_toml = toml::Value::String(admin.to_string()).to_string();
    let email_toml = toml::Value::String(admin_email.to_string()).to_string();
    let from = lettre::message::Mailbox::new(
        Some(name.to_string()),
        "capsule@localhost".parse().expect("a valid address"),
    );
    let from_toml = toml::Value::String(from.to_string()).to_string();
    files.insert(
        "capsule.toml".into(),
        format!(
            r#"# Settings of this capsule archive. Reference: docs/server-setup.md in capsule.

[archive]
name = {name_toml}
description = "Analyses preserved with capsule."
# Where the archive's site is published; links in mails and pages start here.
base_url = "http://localhost:8000"
default_branch = "main"
# Who may read a new deposit besides its creator (`capsule new` writes this into its
# _access.deposit-read): "public" for everyone, or group names from access.toml. Only
# records readable by "public" appear on the public site; [] keeps new deposits private.
default_readers = ["public"]

[identity]
# Environment variables that name the pusher, first match wins (GitLab, Gitea/Forgejo,
# gitolite, git over HTTP, plain setups).
env = ["GL_USERNAME", "GITEA_PUSHER_NAME", "GL_USER", "REMOTE_USER", "CAPSULE_USER"]
allow_anonymous = false

[policy]
# Files larger than this are refused (use Git LFS for big files).
max_file_bytes = 20971520
# Who may change schemas/, capsule.toml and access.toml.
admins = [{admin_toml}]
# Branches that can be neither deleted nor force-pushed.
protected_branches = ["main"]

[mail]
# Notification mails from the schemas' rules (docs/notifications.md). "file" writes
# each mail to capsule/mail/ in the server's git directory; to send them, set
# transport = "smtp" and url (credentials go in the hook's environment, never here).
from = {from_toml}
transport = "file"
# url = "smtp://localhost:25"
"#
        )
        .into_bytes(),
    );
    files.insert(
        "access.toml".into(),
        format!(
            r#"# People (user name = e-mail) and groups (like CERN e-groups) of this archive.

[people]
{admin_toml} = {email_toml}

[groups]
# cms-members = ["alice", "bob"]
"#
        )
        .into_bytes(),
    );
    files.insert(
        "schemas/analysis/1.0.0.json".into(),
        ANALYSIS_SCHEMA.as_bytes().to_vec(),
    );
    files.insert("deposits/.gitkeep".into(), Vec::new());
    files.insert(
        "templates/README.md".into(),
        TEMPLATES_README.as_bytes().to_vec(),
    );
    files.insert("README.md".into(), archive_readme(name).into_bytes());
    // Where `capsule build` and `capsule serve` write by default: output, never content.
    files.insert(
        ".gitignore".into(),
        b"# Sites built by `capsule build` / `capsule serve`\n/_site/\n/_site-internal/\n".to_vec(),
    );
    files
}

const TEMPLATES_README: &str = "\
# Template overrides

Files here replace capsule's built-in templates of the same name:
`templates/mail/...` for notification mails and `templates/site/...` for the static site.
Leave this folder empty to use the defaults.
";

fn archive_readme(name: &str) -> String {
    format!(
        "# {name}

This is a capsule archive: analyses described as JSON and checked against versioned
schemas every time they are pushed.

- `deposits/<id>/deposit.json` — one analysis; other files in its folder belong to it.
- `schemas/<name>/<version>.json` — the forms deposits are written against. A version
  never changes once pushed; a change is a new version file.
- `capsule.toml`, `access.toml` — settings, people and groups.

Check your work before pushing:

    capsule validate            # all deposits, as drafts
    capsule validate --publish  # as they must be to be published

The server runs the same checks on every push and refuses anything invalid.
"
    )
}

/// Creates a working archive in `dir` (a git repository with one commit).
pub fn init_working(
    dir: &Path,
    name: &str,
    admin: &str,
    admin_email: &str,
) -> Result<Oid, ScaffoldError> {
    let files = skeleton(name, admin, admin_email);
    write_beside(dir, |tmp| {
        for (path, bytes) in &files {
            let target = tmp.join(path);
            std::fs::create_dir_all(target.parent().unwrap())?;
            std::fs::write(target, bytes)?;
        }
        let mut options = git2::RepositoryInitOptions::new();
        options.initial_head("main");
        let repo = Repository::init_opts(tmp, &options)?;
        let tree = build_tree(&repo, &files)?;
        let commit = commit_tree(&repo, tree, "Create archive with capsule init")?;
        // Match the index to the commit, or git would show every file as deleted.
        let mut index = repo.index()?;
        index.read_tree(&repo.find_tree(tree)?)?;
        index.write()?;
        Ok(commit)
    })
}

/// Creates a server repository in `dir` with the hooks installed and a first commit
/// holding the skeleton.
pub fn init_bare(
    dir: &Path,
    name: &str,
    admin: &str,
    admin_email: &str,
    capsule_bin: &Path,
) -> Result<Oid, ScaffoldError> {
    let files = skeleton(name, admin, admin_email);
    write_beside(dir, |tmp| {
        let mut options = git2::RepositoryInitOptions::new();
        options.bare(true).initial_head("main");
        let repo = Repository::init_opts(tmp, &options)?;
        let tree = build_tree(&repo, &files)?;
        let commit = commit_tree(&repo, tree, "Create archive with capsule init")?;
        install_hooks(tmp, Layout::Plain, capsule_bin, false)?;
        enable_fsck(tmp)?;
        Ok(commit)
    })
}

/// Runs `fill` on a fresh folder next to `dir`, then moves it to `dir`.
fn write_beside<T>(
    dir: &Path,
    fill: impl FnOnce(&Path) -> Result<T, ScaffoldError>,
) -> Result<T, ScaffoldError> {
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        return Err(ScaffoldError::NotEmpty(dir.to_path_buf()));
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)?;
    let tmp = tempfile::Builder::new()
        .prefix(".capsule-init-")
        .tempdir_in(&parent)?;
    let result = fill(tmp.path())?;
    if dir.exists() {
        std::fs::remove_dir(dir)?;
    }
    std::fs::rename(tmp.keep(), dir)?;
    Ok(result)
}

/// Writes `files` into the object database as one tree.
pub fn build_tree(
    repo: &Repository,
    files: &BTreeMap<String, Vec<u8>>,
) -> Result<Oid, git2::Error> {
    #[derive(Default)]
    struct Dir {
        files: BTreeMap<String, Oid>,
        dirs: BTreeMap<String, Dir>,
    }
    fn write(repo: &Repository, dir: &Dir) -> Result<Oid, git2::Error> {
        let mut builder = repo.treebuilder(None)?;
        for (name, blob) in &dir.files {
            builder.insert(name, *blob, 0o100644)?;
        }
        for (name, sub) in &dir.dirs {
            builder.insert(name, write(repo, sub)?, 0o040000)?;
        }
        builder.write()
    }
    let mut root = Dir::default();
    for (path, bytes) in files {
        let blob = repo.blob(bytes)?;
        let mut parts: Vec<&str> = path.split('/').collect();
        let file = parts.pop().unwrap();
        let mut dir = &mut root;
        for part in parts {
            dir = dir.dirs.entry(part.to_string()).or_default();
        }
        dir.files.insert(file.to_string(), blob);
    }
    write(repo, &root)
}

fn commit_tree(repo: &Repository, tree: Oid, message: &str) -> Result<Oid, ScaffoldError> {
    let signature = repo
        .signature()
        .or_else(|_| Signature::now("capsule", "capsule@localhost"))?;
    let tree = repo.find_tree(tree)?;
    Ok(repo.commit(Some("HEAD"), &signature, &signature, message, &tree, &[])?)
}

/// Where a hosting server looks for hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// `hooks/pre-receive` and `hooks/post-receive` (plain git, gitolite).
    Plain,
    /// `hooks/pre-receive.d/capsule` (Gitea, Forgejo).
    Gitea,
    /// `custom_hooks/pre-receive.d/capsule` (GitLab server hooks).
    Gitlab,
}

pub const HOOKS: [&str; 2] = ["pre-receive", "post-receive"];
const MARKER: &str = "# capsule-hook v1";

impl Layout {
    pub fn hook_path(self, git_dir: &Path, hook: &str) -> PathBuf {
        match self {
            Layout::Plain => git_dir.join("hooks").join(hook),
            Layout::Gitea => git_dir
                .join("hooks")
                .join(format!("{hook}.d"))
                .join("capsule"),
            Layout::Gitlab => git_dir
                .join("custom_hooks")
                .join(format!("{hook}.d"))
                .join("capsule"),
        }
    }
}

/// The script that hands a hook over to capsule.
pub fn hook_script(hook: &str, capsule_bin: &Path) -> String {
    let quoted = shell_quote(&capsule_bin.to_string_lossy());
    format!(
        "#!/bin/sh\n{MARKER}\n# Written by `capsule hook install`; it is rewritten on every install.\n# Settings live in the archive's capsule.toml, not here.\nexec {quoted} hook {hook}\n"
    )
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// What happened to one hook file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum HookAction {
    Created,
    Updated,
    Unchanged,
    /// A hook capsule did not write was moved aside to `backup` (with `--force`).
    Replaced {
        backup: PathBuf,
    },
    /// A hook capsule did not write is in the way; nothing was changed.
    Refused,
}

#[derive(Debug, Clone, Serialize)]
pub struct HookChange {
    pub hook: String,
    pub path: PathBuf,
    #[serde(flatten)]
    pub action: HookAction,
}

/// Installs (or refreshes) capsule's hooks. Idempotent.
pub fn install_hooks(
    git_dir: &Path,
    layout: Layout,
    capsule_bin: &Path,
    force: bool,
) -> Result<Vec<HookChange>, ScaffoldError> {
    if !git_dir.join("objects").is_dir() || !git_dir.join("refs").is_dir() {
        return Err(ScaffoldError::NotARepository(git_dir.to_path_buf()));
    }
    let mut changes = Vec::new();
    for hook in HOOKS {
        let path = layout.hook_path(git_dir, hook);
        let script = hook_script(hook, capsule_bin);
        let action = match std::fs::read_to_string(&path) {
            Ok(existing) if existing == script => HookAction::Unchanged,
            Ok(existing) if existing.contains(MARKER) => {
                write_executable(&path, &script)?;
                HookAction::Updated
            }
            Ok(_) | Err(_) if path.exists() => {
                if force {
                    let backup = path.with_extension("capsule-backup");
                    std::fs::rename(&path, &backup)?;
                    write_executable(&path, &script)?;
                    HookAction::Replaced { backup }
                } else {
                    HookAction::Refused
                }
            }
            _ => {
                std::fs::create_dir_all(path.parent().unwrap())?;
                write_executable(&path, &script)?;
                HookAction::Created
            }
        };
        changes.push(HookChange {
            hook: hook.to_string(),
            path,
            action,
        });
    }
    Ok(changes)
}

fn write_executable(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("capsule-tmp");
    std::fs::write(&tmp, text)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
    }
    std::fs::rename(&tmp, path)
}

/// What is installed for one hook in one layout.
#[derive(Debug, Clone, Serialize)]
pub struct HookState {
    pub hook: String,
    pub layout: Layout,
    pub path: PathBuf,
    /// `capsule`, `foreign` (someone else's hook) or `missing`.
    pub state: &'static str,
    /// The capsule binary the hook runs, and whether it exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binary: Option<PathBuf>,
    pub binary_exists: bool,
}

/// Reports every hook file capsule knows how to install, in every layout.
pub fn hook_status(git_dir: &Path) -> Vec<HookState> {
    let mut out = Vec::new();
    for layout in [Layout::Plain, Layout::Gitea, Layout::Gitlab] {
        for hook in HOOKS {
            let path = layout.hook_path(git_dir, hook);
            let (state, binary) = match std::fs::read_to_string(&path) {
                Ok(text) if text.contains(MARKER) => ("capsule", binary_of(&text)),
                Ok(_) => ("foreign", None),
                Err(_) if path.exists() => ("foreign", None),
                Err(_) => ("missing", None),
            };
            if layout != Layout::Plain && state == "missing" {
                continue;
            }
            let binary_exists = binary.as_ref().is_some_and(|b| b.is_file());
            out.push(HookState {
                hook: hook.to_string(),
                layout,
                path,
                state,
                binary,
                binary_exists,
            });
        }
    }
    out
}

/// Turns on `receive.fsckObjects` in the repository's own config, so that git itself
/// refuses malformed objects (duplicate tree entries, bad names, broken commits) before
/// the hook sees them: what is judged is what git checks out. Returns whether the
/// config changed.
pub fn enable_fsck(git_dir: &Path) -> Result<bool, ScaffoldError> {
    let repo = Repository::open_bare(git_dir)?;
    if fsck_objects(&repo) {
        return Ok(false);
    }
    repo.config()?
        .open_level(git2::ConfigLevel::Local)?
        .set_bool("receive.fsckObjects", true)?;
    Ok(true)
}

/// Whether `git receive-pack` checks pushed objects (`receive.fsckObjects`, which
/// falls back to `transfer.fsckObjects`) at any config level.
fn fsck_objects(repo: &Repository) -> bool {
    let Ok(config) = repo.config() else {
        return false;
    };
    config
        .get_bool("receive.fsckObjects")
        .or_else(|_| config.get_bool("transfer.fsckObjects"))
        .unwrap_or(false)
}

/// Something about a server repository that weakens the hook, and the command that
/// fixes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerWarning {
    pub problem: String,
    pub fix: String,
}

/// Checks the repository settings the hook relies on: HEAD names the default branch
/// that capsule.toml configures, and git checks pushed objects.
pub fn server_warnings(git_dir: &Path) -> Result<Vec<ServerWarning>, ScaffoldError> {
    let repo = Repository::open_bare(git_dir)?;
    let dir = git_dir.display();
    let mut warnings = Vec::new();
    let head = repo
        .find_reference("HEAD")
        .ok()
        .and_then(|r| r.symbolic_target().map(str::to_string));
    let head_branch = head.as_deref().and_then(|h| h.strip_prefix("refs/heads/"));
    // The rules as HEAD's branch holds them (the hook reads them from there first).
    let head_settings = head
        .as_deref()
        .and_then(|h| repo.refname_to_id(h).ok())
        .map(|tip| -> Result<Option<Settings>, ScaffoldError> {
            let tree = repo.find_commit(tip)?.tree()?;
            let entry = tree.get_path(Path::new("capsule.toml")).ok();
            let text = entry
                .and_then(|e| e.to_object(&repo).ok())
                .and_then(|o| o.as_blob().map(|b| b.content().to_vec()))
                .and_then(|b| String::from_utf8(b).ok());
            Ok(text.and_then(|t| Settings::parse(&t).ok()))
        })
        .transpose()?
        .flatten();
    let where_configured = match (&head_settings, head_branch) {
        (Some(_), Some(branch)) => format!("capsule.toml on {branch}"),
        _ => "the default, as HEAD's branch has no capsule.toml".to_string(),
    };
    let configured = head_settings.unwrap_or_default().archive.default_branch;
    if head_branch != Some(configured.as_str()) {
        let shown = head.as_deref().unwrap_or("no branch");
        let exists = |branch: &str| repo.find_branch(branch, git2::BranchType::Local).is_ok();
        let fix = match head_branch {
            Some(branch) if exists(branch) && !exists(&configured) => format!(
                "either make {configured} the default branch: `git --git-dir={dir} branch {configured} {branch}` then `git --git-dir={dir} symbolic-ref HEAD refs/heads/{configured}`, or set archive.default_branch = \"{branch}\" in capsule.toml"
            ),
            _ => format!(
                "run `git symbolic-ref HEAD refs/heads/{configured}` in {dir} (`git --git-dir={dir} symbolic-ref HEAD refs/heads/{configured}`)"
            ),
        };
        warnings.push(ServerWarning {
            problem: format!(
                "HEAD names {shown}, but the archive's default branch is {configured} ({where_configured}): the hook reads the archive's rules from HEAD's branch, so the two must agree"
            ),
            fix,
        });
    }
    if !fsck_objects(&repo) {
        warnings.push(ServerWarning {
            problem: format!("receive.fsckObjects is off in {dir}: git accepts malformed objects (duplicate tree entries, bad names) into the repository, and the hook is the only check left"),
            fix: format!("run `git --git-dir={dir} config receive.fsckObjects true` (or `capsule hook install {dir}` again)"),
        });
    }
    Ok(warnings)
}

fn binary_of(script: &str) -> Option<PathBuf> {
    let line = script.lines().find(|l| l.starts_with("exec '"))?;
    let rest = &line["exec '".len()..];
    let end = rest.rfind("' hook ")?;
    Some(PathBuf::from(rest[..end].replace(r"'\''", "'")))
}

#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("{0} already exists and is not empty; choose a new folder")]
    NotEmpty(PathBuf),
    #[error("{0} is not a git repository (no objects/ and refs/); give the path of a bare repository such as /srv/git/analyses.git")]
    NotARepository(PathBuf),
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_script_round_trips_the_binary_path() {
        let path = Path::new("/opt/it's here/capsule");
        let script = hook_script("pre-receive", path);
        assert!(script.starts_with("#!/bin/sh\n"));
        assert_eq!(binary_of(&script).as_deref(), Some(path));
    }

    #[test]
    fn skeleton_settings_parse() {
        let files = skeleton("Test \"archive\"", "alice", "alice@example.org");
        let settings =
            crate::settings::Settings::parse(std::str::from_utf8(&files["capsule.toml"]).unwrap())
                .unwrap();
        assert_eq!(settings.archive.name, "Test \"archive\"");
        assert_eq!(settings.policy.admins, ["alice"]);
        let access =
            crate::access::Access::parse(std::str::from_utf8(&files["access.toml"]).unwrap())
                .unwrap();
        assert_eq!(access.email("alice"), Some("alice@example.org"));
    }
}
