//! What the authoring commands share: the clone they run in, its settings, the user,
//! and the real `git` for talking to the server.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use git2::Repository;

use capsule::access::{local_user, Access};
use capsule::archive::find_root;
use capsule::deposit::check_id;
use capsule::settings::Settings;

pub struct Clone {
    pub root: PathBuf,
    pub repo: Repository,
    pub settings: Settings,
    pub access: Access,
}

impl Clone {
    /// The archive around the current folder.
    pub fn open() -> anyhow::Result<Clone> {
        let cwd = std::env::current_dir()?;
        let root = find_root(&cwd).context(
            "no capsule.toml here or in any parent folder: run this inside a clone of an archive",
        )?;
        let repo = Repository::open(&root)
            .with_context(|| format!("{} is not a git repository", root.display()))?;
        let read = |name: &str| std::fs::read_to_string(root.join(name)).unwrap_or_default();
        // A broken capsule.toml is reported here rather than half-used.
        let settings =
            Settings::parse(&read("capsule.toml")).map_err(|e| anyhow::anyhow!("{e}"))?;
        let access = Access::parse(&read("access.toml")).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Clone {
            root,
            repo,
            settings,
            access,
        })
    }

    /// Who is working here: `--as`, else `CAPSULE_USER`, git's user.email, the login.
    pub fn user(&self, as_user: Option<&str>) -> anyhow::Result<String> {
        if let Some(user) = as_user {
            return Ok(user.to_string());
        }
        let email = self
            .repo
            .config()
            .ok()
            .and_then(|c| c.get_string("user.email").ok())
            .or_else(|| std::env::var("GIT_AUTHOR_EMAIL").ok());
        local_user(&self.access, email.as_deref()).context(
            "cannot tell who you are: pass --as USER or set CAPSULE_USER to your user name in access.toml",
        )
    }

    /// Checks an id given on the command line and that its deposit exists.
    pub fn deposit(&self, id: &str) -> anyhow::Result<PathBuf> {
        check_id(id).map_err(|e| anyhow::anyhow!("{e}"))?;
        let path = self.root.join(capsule::deposit::metadata_path(id));
        if !path.is_file() {
            bail!(
                "there is no deposit {id} here (no {}); `capsule new SCHEMA` creates one",
                capsule::deposit::metadata_path(id)
            );
        }
        Ok(path)
    }

    /// The real git client in this clone.
    pub fn git(&self) -> Command {
        git_in(&self.root)
    }

    /// The branch HEAD is on.
    pub fn branch(&self) -> anyhow::Result<String> {
        let head = self
            .repo
            .head()
            .context("the repository has no commits yet")?;
        head.shorthand()
            .filter(|_| head.is_branch())
            .map(str::to_string)
            .context("HEAD is detached: check out a branch first")
    }

    /// The problems `value` would have as `deposits/<id>/deposit.json` (draft rules,
    /// exactly as the server checks a push).
    pub fn problems_of(
        &self,
        id: &str,
        value: &serde_json::Value,
    ) -> anyhow::Result<Vec<capsule::problem::Problem>> {
        use capsule::validate::{check, parse_deposit, prepare};
        let path = capsule::deposit::metadata_path(id);
        let mut text = serde_json::to_string_pretty(value)?;
        text.push('\n');
        let tree = capsule::archive::WorkTree::new(&self.root);
        let mut registry =
            capsule::schema::SchemaRegistry::with_validation(self.settings.validation);
        Ok(
            match parse_deposit(&path, text.as_bytes())
                .and_then(|d| prepare(&mut registry, &tree, d))
            {
                Ok(prepared) => check(&prepared, capsule::schema::Mode::Draft),
                Err(problems) => problems,
            },
        )
    }

    /// Reads a deposit's JSON.
    pub fn read_deposit(&self, id: &str) -> anyhow::Result<serde_json::Value> {
        let path = self.deposit(id)?;
        let bytes = std::fs::read(&path)?;
        capsule::json::from_bytes(&bytes)
            .map_err(anyhow::Error::msg)
            .with_context(|| {
                format!(
                    "{} is not valid JSON: fix it first (`capsule validate` shows where)",
                    capsule::deposit::metadata_path(id)
                )
            })
    }

    pub fn has_remote(&self, remote: &str) -> bool {
        self.repo.find_remote(remote).is_ok()
    }
}

pub fn git_in(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir);
    cmd
}

/// Runs git, passing its output through; `Err` with git's words when it fails.
pub fn run_git(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot run git to {what}; is git installed?"))?;
    if !status.success() {
        bail!("git could not {what} (see its message above)");
    }
    Ok(())
}
