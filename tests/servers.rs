//! Pushes through real git servers, where the pusher's identity comes from the server
//! and nothing the client sends can change it: `git http-backend` behind nginx with
//! basic auth (`REMOTE_USER`), and gitolite over ssh (`GL_USER`).
//!
//! Every push is made by the real `git` client with `CAPSULE_USER=alice` in its own
//! environment (the harness sets it): the server must ignore it and judge the account
//! that authenticated.

mod common;

use std::path::Path;

use common::servers::{Gitolite, HttpGit};
use common::*;
use tempfile::TempDir;

/// Pushes `refspec` from `work` to `url`, with extra environment for git.
fn push_to<K: AsRef<std::ffi::OsStr>, V: AsRef<std::ffi::OsStr>>(
    work: &Work,
    url: &str,
    env: &[(K, V)],
    refspec: &str,
) -> Push {
    let mut cmd = git(&work.path);
    cmd.env("GIT_TERMINAL_PROMPT", "0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.args(["push", url, refspec]).output().unwrap();
    Push {
        landed: out.status.success(),
        output: format!("{}{}", stdout(&out), stderr(&out)),
    }
}

fn clone_from<K: AsRef<std::ffi::OsStr>, V: AsRef<std::ffi::OsStr>>(
    url: &str,
    env: &[(K, V)],
    into: &Path,
) -> Work {
    let mut cmd = git(into.parent().unwrap());
    cmd.env("GIT_TERMINAL_PROMPT", "0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_ok(cmd.args(["clone", "-q", url]).arg(into));
    Work {
        path: into.to_path_buf(),
    }
}

fn rev(git_dir: &Path, name: &str) -> Option<String> {
    let out = git(git_dir)
        .args(["rev-parse", "--verify", "--quiet", name])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| stdout(&out).trim().to_string())
}

/// A server archive made by `capsule init --bare` at `git_dir`, admin alice.
fn init_archive(git_dir: &Path) {
    run_ok(
        capsule(git_dir.parent().unwrap())
            .args([
                "init",
                "--bare",
                "--admin",
                "alice",
                "--admin-email",
                "alice@example.org",
            ])
            .arg(git_dir),
    );
}

/// The story both servers must tell. `url(user)` is how `user` reaches the archive
/// (credentials or key included) and `env(user)` the git environment for it.
fn members_are_judged_as_themselves(
    git_dir: &Path,
    work_dir: &Path,
    url: &dyn Fn(&str) -> String,
    env: &dyn Fn(&str) -> Vec<(&'static str, String)>,
) {
    let alice_env = env("alice");
    let bob_env = env("bob");
    let work = clone_from(&url("alice"), &alice_env, work_dir);

    // alice, the archive's admin, adds bob as a member; then creates her deposit.
    work.write(
        "access.toml",
        "[people]\nalice = \"alice@example.org\"\nbob = \"bob@example.org\"\n",
    )
    .commit("bob joins");
    push_to(&work, &url("alice"), &alice_env, "HEAD:main").assert_landed();
    let out = work.capsule_as("alice", &["new", "analysis", "--id", "alpha"]);
    assert!(out.status.success(), "{}", stderr(&out));
    work.commit("alpha");
    push_to(&work, &url("alice"), &alice_env, "HEAD:main").assert_landed();
    let landed = rev(git_dir, "refs/heads/main").unwrap();
    assert_eq!(landed, work.head(), "the owner's push moved main");

    // bob, a member without rights on alpha, edits it. His client claims to be
    // alice (CAPSULE_USER); the server says bob, and bob is judged.
    let out = work.capsule(&["set", "alpha", "/general_title", "\"Taken over\""]);
    assert!(out.status.success(), "{}", stderr(&out));
    work.commit("bob edits alpha");
    let push = push_to(&work, &url("bob"), &bob_env, "HEAD:main");
    push.assert_rejected_with("remote: error: ")
        .assert_rejected_with("bob may not change deposit alpha on main");
    assert!(
        !push.output.contains("alice may not"),
        "judged as the client's claim:\n{}",
        push.output
    );
    assert_eq!(
        rev(git_dir, "refs/heads/main").as_deref(),
        Some(landed.as_str())
    );

    // The owner's own push of the same change lands.
    push_to(&work, &url("alice"), &alice_env, "HEAD:main").assert_landed();
    assert_eq!(rev(git_dir, "refs/heads/main"), Some(work.head()));
}

#[test]
fn http_backend_behind_nginx_judges_the_authenticated_user() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path().join("repos");
    std::fs::create_dir_all(&root).unwrap();
    init_archive(&root.join("archive.git"));
    let users = [
        ("alice", "a-secret"),
        ("bob", "b-secret"),
        ("carol", "c-secret"),
    ];
    let Some(http) = HttpGit::start(&root, &users) else {
        return;
    };
    let git_dir = root.join("archive.git");
    let before = rev(&git_dir, "refs/heads/main");

    // Without credentials, or with a wrong password, nginx answers 401.
    let refs = "/git/archive.git/info/refs?service=git-receive-pack";
    assert!(
        http.status_of(refs, None).contains(" 401 "),
        "{}",
        http.status_of(refs, None)
    );
    assert!(http.status_of(refs, Some("alice:wrong")).contains(" 401 "));
    assert!(http
        .status_of(refs, Some("alice:a-secret"))
        .contains(" 200 "));
    let work = clone_from(
        &http.url_as("alice", "a-secret", "archive.git"),
        &[] as &[(&str, &str)],
        &tmp.path().join("probe"),
    );
    work.write("README.md", "anonymous\n").commit("anonymous");
    let push = push_to(
        &work,
        &http.url("archive.git"),
        &[("GIT_TRACE_CURL", "1"), ("GIT_TRACE_CURL_NO_DATA", "1")],
        "HEAD:main",
    );
    push.assert_rejected_with("HTTP/1.1 401 Unauthorized");
    assert_eq!(rev(&git_dir, "refs/heads/main"), before);

    // carol has a web account but is not in access.toml: the hook names her.
    push_to(
        &work,
        &http.url_as("carol", "c-secret", "archive.git"),
        &[] as &[(&str, &str)],
        "HEAD:main",
    )
    .assert_rejected_with("remote: error: push: carol may not push to this archive");
    assert_eq!(rev(&git_dir, "refs/heads/main"), before);

    let password = |user: &str| users.iter().find(|(u, _)| *u == user).unwrap().1;
    members_are_judged_as_themselves(
        &git_dir,
        &tmp.path().join("work"),
        &|user| http.url_as(user, password(user), "archive.git"),
        &|_| Vec::new(),
    );
}

#[test]
fn gitolite_over_ssh_judges_the_key_that_pushes() {
    let Some(gitolite) = Gitolite::start(&["alice", "bob"]) else {
        return;
    };
    let git_dir = gitolite.repo_path("archive");
    // capsule's hooks go in first; `gitolite setup` (run by configure) then links its
    // own `update` hook and must leave capsule's pre-receive and post-receive alone.
    init_archive(&git_dir);
    gitolite.configure("\nrepo archive\n    RW+ = alice bob\n");
    let update = std::fs::symlink_metadata(git_dir.join("hooks/update")).unwrap();
    assert!(update.file_type().is_symlink(), "gitolite's update hook");
    let status = run_ok(capsule(&git_dir).args(["hook", "status", "."]));
    assert!(
        stdout(&status).contains("pre-receive   plain   capsule")
            && stdout(&status).contains("post-receive  plain   capsule"),
        "{}",
        stdout(&status)
    );

    // A key gitolite does not know is refused by sshd; nothing moves.
    let before = rev(&git_dir, "refs/heads/main");
    let tmp = TempDir::new().unwrap();
    let alice_ssh = gitolite.ssh_command("alice");
    let work = clone_from(
        &gitolite.url("archive"),
        &[("GIT_SSH_COMMAND", &alice_ssh)],
        &tmp.path().join("probe"),
    );
    work.write("README.md", "stranger\n").commit("stranger");
    let stranger = gitolite.ssh_command("stranger");
    push_to(
        &work,
        &gitolite.url("archive"),
        &[("GIT_SSH_COMMAND", &stranger)],
        "HEAD:main",
    )
    .assert_rejected_with("Permission denied (publickey)");
    assert_eq!(rev(&git_dir, "refs/heads/main"), before);

    members_are_judged_as_themselves(
        &git_dir,
        &tmp.path().join("work"),
        &|_| gitolite.url("archive"),
        &|user| vec![("GIT_SSH_COMMAND", gitolite.ssh_command(user))],
    );
}
