//! A small chainable harness for real archives: a bare server made by
//! `capsule init --bare`, clones made by the real `git`, real pushes through the
//! installed hook.
#![allow(dead_code)]

pub mod cap;
pub mod servers;
pub mod site_check;
pub mod smtp;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

pub const ZEE: &str = include_str!("../../demo/deposits/zee/deposit.json");
pub const HIGGS: &str = include_str!("../../demo/deposits/higgs-4l/deposit.json");
pub const MISTAKE: &str = include_str!("../../demo/mistake/deposit.json");
pub const CAP_DOCS_SCHEMA: &str = include_str!("../../schemas/cap-docs-example/0.0.1.json");

pub fn capsule_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_capsule"))
}

/// `capsule` with a clean environment for identity variables.
pub fn capsule(dir: &Path) -> Command {
    let mut cmd = Command::new(capsule_bin());
    cmd.current_dir(dir)
        .env_remove("CAPSULE_USER")
        .env("NO_COLOR", "1");
    cmd
}

/// `git` with a fixed identity and no user or system configuration.
pub fn git(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Alice Analyst")
        .env("GIT_AUTHOR_EMAIL", "alice@example.org")
        .env("GIT_COMMITTER_NAME", "Alice Analyst")
        .env("GIT_COMMITTER_EMAIL", "alice@example.org")
        .env("CAPSULE_USER", "alice")
        .env("NO_COLOR", "1");
    cmd
}

pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("cannot start command");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A bare server repository with capsule's hooks.
pub struct Server {
    pub tmp: TempDir,
    pub git_dir: PathBuf,
}

impl Server {
    pub fn new() -> Server {
        Server::named("server.git")
    }

    pub fn named(name: &str) -> Server {
        let tmp = TempDir::new().unwrap();
        let git_dir = tmp.path().join(name);
        run_ok(
            capsule(tmp.path())
                .args([
                    "init",
                    "--bare",
                    "--admin",
                    "alice",
                    "--admin-email",
                    "alice@example.org",
                ])
                .arg(&git_dir),
        );
        Server { tmp, git_dir }
    }

    /// An existing bare repository adopted as an archive: `git init --bare` (HEAD =
    /// main) and `capsule hook install`, then alice's first push of an archive made with
    /// `capsule init` (the repository has no branch yet, so that push sets the rules).
    /// The same archive as [`Server::new`] makes, on a server capsule did not create.
    pub fn adopted() -> Server {
        let tmp = TempDir::new().unwrap();
        let git_dir = tmp.path().join("server.git");
        run_ok(
            git(tmp.path())
                .args(["init", "-q", "--bare", "--initial-branch=main"])
                .arg(&git_dir),
        );
        run_ok(capsule(tmp.path()).args(["hook", "install"]).arg(&git_dir));
        let seed = tmp.path().join("seed");
        run_ok(capsule(tmp.path()).args([
            "init",
            "seed",
            "--admin",
            "alice",
            "--admin-email",
            "alice@example.org",
        ]));
        let work = Work { path: seed };
        work.git(&["remote", "add", "origin", git_dir.to_str().unwrap()]);
        work.push_as("alice", "HEAD:main").assert_landed();
        std::fs::remove_dir_all(&work.path).unwrap();
        Server { tmp, git_dir }
    }

    /// A new clone in the server's temp folder.
    pub fn clone(&self, name: &str) -> Work {
        let path = self.tmp.path().join(name);
        run_ok(
            git(self.tmp.path())
                .arg("clone")
                .arg("--quiet")
                .arg(&self.git_dir)
                .arg(&path),
        );
        Work { path }
    }

    /// The commit a ref points at, or None.
    pub fn rev(&self, name: &str) -> Option<String> {
        let out = git(&self.git_dir)
            .args(["rev-parse", "--verify", "--quiet", name])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| stdout(&out).trim().to_string())
    }
}

/// A working clone.
pub struct Work {
    pub path: PathBuf,
}

/// What a push did.
pub struct Push {
    pub landed: bool,
    pub output: String,
}

impl Push {
    /// The lines the hook printed (git shows them prefixed with `remote:`).
    pub fn remote_lines(&self) -> Vec<String> {
        self.output
            .lines()
            .filter_map(|l| l.strip_prefix("remote: "))
            .map(|l| l.trim_end().to_string())
            .collect()
    }

    pub fn errors(&self) -> Vec<String> {
        self.remote_lines()
            .into_iter()
            .filter(|l| l.starts_with("error: "))
            .collect()
    }

    pub fn assert_rejected_with(&self, needle: &str) -> &Self {
        assert!(
            !self.landed,
            "push should have been rejected:\n{}",
            self.output
        );
        assert!(
            self.output.contains(needle),
            "expected `{needle}` in the push output:\n{}",
            self.output
        );
        self
    }

    pub fn assert_landed(&self) -> &Self {
        assert!(self.landed, "push should have landed:\n{}", self.output);
        self
    }
}

impl Work {
    pub fn write(&self, path: &str, content: impl AsRef<[u8]>) -> &Self {
        let target = self.path.join(path);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, content).unwrap();
        self
    }

    pub fn remove(&self, path: &str) -> &Self {
        run_ok(git(&self.path).args(["rm", "-q", "-r", path]));
        self
    }

    pub fn commit(&self, message: &str) -> &Self {
        run_ok(git(&self.path).args(["add", "-A"]));
        run_ok(git(&self.path).args(["commit", "-q", "--allow-empty", "-m", message]));
        self
    }

    pub fn git(&self, args: &[&str]) -> Output {
        run_ok(git(&self.path).args(args))
    }

    pub fn head(&self) -> String {
        stdout(&self.git(&["rev-parse", "HEAD"])).trim().to_string()
    }

    pub fn push_as(&self, user: &str, refspec: &str) -> Push {
        let out = git(&self.path)
            .env("CAPSULE_USER", user)
            .args(["push", "origin", refspec])
            .output()
            .unwrap();
        Push {
            landed: out.status.success(),
            output: format!("{}{}", stdout(&out), stderr(&out)),
        }
    }

    /// Pushes with the pusher named by one identity variable (`None`: no identity).
    pub fn push_with(&self, identity: Option<(&str, &str)>, refspec: &str) -> Push {
        let mut cmd = git(&self.path);
        cmd.env_remove("CAPSULE_USER");
        for var in ["GL_USERNAME", "GITEA_PUSHER_NAME", "GL_USER", "REMOTE_USER"] {
            cmd.env_remove(var);
        }
        if let Some((var, user)) = identity {
            cmd.env(var, user);
        }
        let out = cmd.args(["push", "origin", refspec]).output().unwrap();
        Push {
            landed: out.status.success(),
            output: format!("{}{}", stdout(&out), stderr(&out)),
        }
    }

    /// `capsule` in this clone acting as `user`.
    pub fn capsule_as(&self, user: &str, args: &[&str]) -> Output {
        let mut cmd = capsule(&self.path);
        cmd.env("CAPSULE_USER", user)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "Alice Analyst")
            .env("GIT_AUTHOR_EMAIL", "alice@example.org")
            .env("GIT_COMMITTER_NAME", "Alice Analyst")
            .env("GIT_COMMITTER_EMAIL", "alice@example.org");
        cmd.args(args).output().unwrap()
    }

    pub fn push(&self) -> Push {
        self.push_as("alice", "HEAD:main")
    }

    pub fn capsule(&self, args: &[&str]) -> Output {
        capsule(&self.path).args(args).output().unwrap()
    }
}

/// `git daemon` serving every repository under `base` on a loopback port; killed on drop.
pub struct Daemon {
    child: std::process::Child,
    pub port: u16,
}

impl Daemon {
    /// Starts a read-only daemon and waits until `probe` (a repository path under
    /// `base`) answers.
    pub fn start(base: &Path, probe: &str) -> Daemon {
        Daemon::start_with(base, probe, &[])
    }

    /// Also accepts pushes (`git push git://...`), through the repositories' hooks.
    pub fn start_writable(base: &Path, probe: &str) -> Daemon {
        Daemon::start_with(base, probe, &["--enable=receive-pack"])
    }

    fn start_with(base: &Path, probe: &str, extra: &[&str]) -> Daemon {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        // Run git-daemon itself: `git daemon` would start it as a child of its own,
        // which killing `git` leaves running.
        let exec_path = stdout(&run_ok(git(base).arg("--exec-path")))
            .trim()
            .to_string();
        let command = git(base);
        let child = Command::new(Path::new(&exec_path).join("git-daemon"))
            .current_dir(base)
            .envs(command.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .args(["--export-all", "--reuseaddr", "--listen=127.0.0.1"])
            .args(extra)
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(base)
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("git daemon");
        let daemon = Daemon { child, port };
        for _ in 0..100 {
            let ok = git(base)
                .args(["ls-remote", &daemon.url(probe)])
                .output()
                .unwrap()
                .status
                .success();
            if ok {
                return daemon;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("git daemon did not come up");
    }

    pub fn url(&self, repo: &str) -> String {
        format!("git://127.0.0.1:{}/{repo}", self.port)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// `capsule` run inside the server repository.
    pub fn capsule(&self, args: &[&str]) -> Output {
        capsule(&self.git_dir).args(args).output().unwrap()
    }
}

impl Work {
    /// Publishes version `version` of `id` at HEAD: an annotated record tag, pushed.
    pub fn publish(&self, id: &str, version: u32) -> Push {
        let tag = format!("records/{id}/v{version}");
        self.git(&["tag", "-a", &tag, "-m", &format!("Publish {id} v{version}")]);
        self.push_as("alice", &format!("refs/tags/{tag}"))
    }
}

/// A small valid deposit of `schemas/analysis/1.0.0.json`.
pub fn analysis(title: &str, keywords: &[&str], (name, email): (&str, &str)) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let keywords: Vec<String> = keywords.iter().map(|k| quote(k)).collect();
    format!(
        r#"{{
  "$schema": "analysis/1.0.0",
  "general_title": {},
  "basic_info": {{
    "analysis_name": {},
    "status": "in progress",
    "people_info": [{{"name": {}, "email": {}}}],
    "keywords": [{}]
  }},
  "_deposit": {{"owners": ["alice"]}}
}}
"#,
        quote(title),
        quote(title),
        quote(name),
        quote(email),
        keywords.join(", ")
    )
}

/// The path of file `rest` of deposit `id` in an archive (`deposits/<shard>/<id>/<rest>`):
/// tests name deposits by id, as users do, and never spell a shard.
pub fn dep(id: &str, rest: &str) -> String {
    capsule::deposit::file_path(id, rest)
}

/// The folder of deposit `id` in an archive (`deposits/<shard>/<id>`).
pub fn dep_dir(id: &str) -> String {
    capsule::deposit::folder(id)
}

/// Whether tests that need something from outside the repository (a tool, the CAP
/// fixtures, a browser) must fail instead of skipping: `CI` is set.
pub fn is_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// Decides what a test does when something it needs is missing: under `CI` it fails
/// with `missing` and `how`; elsewhere it says so in one line and the test returns.
/// The line goes straight to stderr (not through `eprintln!`, which the test harness
/// captures), so `cargo test` shows it.
pub fn skip_or_fail(what: &str, missing: &str, how: &str) -> bool {
    // libtest names each test's thread after the test.
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    let what = format!("{test} ({what})");
    if is_ci() {
        panic!("{what}: {missing}; {how} (CI is set, so this test may not be skipped)");
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr().lock(),
        "skipped: {what}: {missing}; {how}"
    );
    false
}

/// Where an installed program is: on `PATH`, or in the sbin folders that a non-root
/// `PATH` often lacks (nginx, sshd, fcgiwrap live there).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Whether `tool` is installed; if not, skips (one visible line) or, under `CI`,
/// fails. `package` is the Debian package that provides it.
pub fn require_tool(tool: &str, package: &str) -> bool {
    find_tool(tool).is_some()
        || skip_or_fail(
            &format!("needs {tool}"),
            &format!("{tool} is not installed"),
            &format!("install it: apt-get install {package}"),
        )
}

/// The CAP fixtures (schemas and records from CERN Analysis Preservation): the folder
/// in `CAPSULE_CAP_FIXTURES`, else `../shared/fixtures/cap` beside the repository. They
/// are not part of the repository, so without them the test skips (fails under `CI`).
pub fn cap_fixtures() -> Option<PathBuf> {
    let (dir, from) = match std::env::var_os("CAPSULE_CAP_FIXTURES") {
        Some(dir) => (PathBuf::from(dir), "CAPSULE_CAP_FIXTURES"),
        None => (
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/cap"),
            "the default place",
        ),
    };
    if dir.join("MANIFEST.tsv").is_file() || dir.join("schemas").is_dir() {
        return Some(dir);
    }
    skip_or_fail(
        "needs the CAP fixtures",
        &format!("{} ({from}) does not hold them", dir.display()),
        "put them at ../shared/fixtures/cap beside the repository, or set CAPSULE_CAP_FIXTURES=<folder>",
    );
    None
}

/// A file of the CAP fixtures, as text (see [`cap_fixtures`]).
pub fn cap_fixture(path: &str) -> Option<String> {
    let file = cap_fixtures()?.join(path);
    Some(
        std::fs::read_to_string(&file).unwrap_or_else(|e| {
            panic!("{}: {e} (the CAP fixtures are incomplete)", file.display())
        }),
    )
}
