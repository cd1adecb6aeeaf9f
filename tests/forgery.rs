//! Records forged through commits that were never judged: merges whose tree equals the
//! default branch, swapped merge parents, forge-then-revert pairs, and a record tag
//! pushed beside its branch while another push races for the branch. Each attack is
//! refused with its `remote:` line and no ref moves; its legitimate twin lands.

mod common;

use common::*;

const PEOPLE: &str = r#"[people]
alice = "alice@example.org"
pat = "pat@example.org"

[groups]
"#;

/// A server where alice owns `higgs` and pat is a publisher (policy.publishers) with no
/// right to change it.
fn archives() -> Vec<(Server, Work)> {
    vec![archive_on(Server::new()), archive_on(Server::adopted())]
}

fn archive_on(server: Server) -> (Server, Work) {
    let work = server.clone("work");
    let settings = std::fs::read_to_string(work.path.join("capsule.toml")).unwrap();
    let settings = settings.replace(
        "protected_branches = [\"main\"]",
        "protected_branches = [\"main\"]\npublishers = [\"pat\"]",
    );
    assert!(settings.contains("publishers = [\"pat\"]"), "{settings}");
    work.write("capsule.toml", settings)
        .write("access.toml", PEOPLE)
        .write(&dep("higgs", "deposit.json"), HIGGS)
        .commit("higgs");
    work.push().assert_landed();
    (server, work)
}

/// Pat's own text of higgs, committed on top of `parent` (not on any branch).
fn forged_commit(work: &Work, parent: &str) -> String {
    let mut forged: serde_json::Value = serde_json::from_str(HIGGS).unwrap();
    forged["general_title"] = "Pat's own words".into();
    let blob = hash_object(
        work,
        &(serde_json::to_string_pretty(&forged).unwrap() + "\n"),
    );
    work.git(&["read-tree", parent]);
    work.git(&[
        "update-index",
        "--cacheinfo",
        &format!("100644,{blob},{}", dep("higgs", "deposit.json")),
    ]);
    let tree = stdout(&work.git(&["write-tree"])).trim().to_string();
    let commit = commit_tree(work, &tree, &[parent], "pat's version");
    work.git(&["read-tree", "HEAD"]);
    commit
}

fn hash_object(work: &Work, text: &str) -> String {
    let path = work.path.join(".git/forged-blob");
    std::fs::write(&path, text).unwrap();
    let out = work.git(&["hash-object", "-w", path.to_str().unwrap()]);
    stdout(&out).trim().to_string()
}

fn commit_tree(work: &Work, tree: &str, parents: &[&str], message: &str) -> String {
    let mut args = vec!["commit-tree", tree, "-m", message];
    for parent in parents {
        args.push("-p");
        args.push(parent);
    }
    stdout(&work.git(&args)).trim().to_string()
}

fn tree_of(work: &Work, commit: &str) -> String {
    stdout(&work.git(&["rev-parse", &format!("{commit}^{{tree}}")]))
        .trim()
        .to_string()
}

fn push(work: &Work, user: &str, refspecs: &[&str]) -> Push {
    let out = git(&work.path)
        .env("CAPSULE_USER", user)
        .arg("push")
        .arg("origin")
        .args(refspecs)
        .output()
        .unwrap();
    Push {
        landed: out.status.success(),
        output: format!("{}{}", stdout(&out), stderr(&out)),
    }
}

fn versions(work: &Work) -> Vec<String> {
    work.git(&["fetch", "-q", "origin"]);
    let out = run_ok(capsule(&work.path).args(["log", "higgs", "--rev", "origin/main", "--json"]));
    let log: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    log.as_array()
        .unwrap()
        .iter()
        .map(|v| v["commit"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_merge_whose_tree_is_main_cannot_make_its_other_parent_a_record() {
    for (server, work) in archives() {
        let main = work.head();
        let forged = forged_commit(&work, &main);
        // Parents (main, forged), tree = main: the net change is empty.
        let merge = commit_tree(&work, &tree_of(&work, &main), &[&main, &forged], "merge");
        work.git(&["update-ref", "refs/heads/main", &merge]);
        work.git(&["tag", "-a", "records/higgs/v1", &forged, "-m", "publish"]);

        // Together: the tag is refused, so nothing lands.
        push(&work, "pat", &["HEAD:main", "refs/tags/records/higgs/v1"])
            .assert_rejected_with("publish it in a push of its own");
        assert_eq!(
            server.rev("refs/heads/main").as_deref(),
            Some(main.as_str())
        );
        assert_eq!(server.rev("refs/tags/records/higgs/v1"), None);

        // The merge alone changes nothing, so it may land; the forged commit is still no
        // version of higgs and can never be tagged.
        push(&work, "pat", &["HEAD:main"]).assert_landed();
        push(&work, "pat", &["refs/tags/records/higgs/v1"]).assert_rejected_with(
            "only through a merge's other parent, so it is not a version of the deposit on main",
        );
        assert_eq!(server.rev("refs/tags/records/higgs/v1"), None);
        work.git(&["tag", "-d", "records/higgs/v1"]);
        assert!(!versions(&work).contains(&forged));

        // The legitimate twin: pat publishes what alice wrote, in a push of its own.
        work.git(&["tag", "-a", "records/higgs/v1", &merge, "-m", "publish"]);
        push(&work, "pat", &["refs/tags/records/higgs/v1"]).assert_landed();
    }
}

#[test]
fn a_merge_with_swapped_parents_is_judged_commit_by_commit() {
    for (server, work) in archives() {
        let main = work.head();
        let forged = forged_commit(&work, &main);
        // Parents (forged, main): the forged commit lands on main's first-parent chain.
        let merge = commit_tree(&work, &tree_of(&work, &main), &[&forged, &main], "merge");
        work.git(&["update-ref", "refs/heads/main", &merge]);
        push(&work, "pat", &["HEAD:main"]).assert_rejected_with(&format!(
            "error: {} {}: pat may not change deposit higgs on main",
            &forged[..7],
            dep("higgs", "deposit.json")
        ));
        assert_eq!(
            server.rev("refs/heads/main").as_deref(),
            Some(main.as_str())
        );

        // alice may push the same shape: the forged commit is then hers to answer for.
        push(&work, "alice", &["HEAD:main"]).assert_landed();
        assert!(versions(&work).contains(&forged));
    }
}

#[test]
fn a_forge_then_revert_pair_is_judged_commit_by_commit() {
    for (server, work) in archives() {
        let main = work.head();
        let forged = forged_commit(&work, &main);
        let revert = commit_tree(&work, &tree_of(&work, &main), &[&forged], "revert");
        work.git(&["update-ref", "refs/heads/main", &revert]);
        push(&work, "pat", &["HEAD:main"])
            .assert_rejected_with("pat may not change deposit higgs on main");
        assert_eq!(
            server.rev("refs/heads/main").as_deref(),
            Some(main.as_str())
        );

        // The same pair from a work branch, fast-forwarded onto main later, is judged
        // there too: a work branch is judged on its net change (empty here), but every
        // commit it adds to main's chain is judged on its own.
        push(&work, "pat", &[&format!("{revert}:refs/heads/pat-work")]).assert_landed();
        push(&work, "pat", &[&format!("{revert}:refs/heads/main")])
            .assert_rejected_with("pat may not change deposit higgs on main");
        assert_eq!(
            server.rev("refs/heads/main").as_deref(),
            Some(main.as_str())
        );
    }
}

#[test]
fn a_foxtrot_merge_keeps_what_main_already_judged() {
    // The everyday `git pull` (merge) then push: the merge's first parent is the
    // pusher's own commit, its second the old main. Only the pusher's change is judged.
    for (server, work) in archives() {
        let other = server.clone("other");
        let mut edited: serde_json::Value = serde_json::from_str(HIGGS).unwrap();
        edited["general_title"] = "alice, from another clone".into();
        other
            .write(
                &dep("higgs", "deposit.json"),
                serde_json::to_string_pretty(&edited).unwrap() + "\n",
            )
            .commit("alice edits higgs");
        other.push().assert_landed();

        work.write(&dep("pats", "deposit.json"), {
            let mut own: serde_json::Value = serde_json::from_str(HIGGS).unwrap();
            own["_deposit"]["owners"] = serde_json::json!(["pat"]);
            serde_json::to_string_pretty(&own).unwrap() + "\n"
        })
        .commit("pat's own deposit");
        work.git(&["pull", "-q", "--no-rebase", "--no-edit", "origin", "main"]);
        push(&work, "pat", &["HEAD:main"]).assert_landed();
    }
}

/// The race of a record tag pushed beside its branch: the push that moves main to X and
/// tags X holds its verdict while another push moves main. Widened: the first push's
/// hook waits, after capsule's verdict, until the second push has landed.
#[test]
fn a_record_tag_never_lands_without_its_branch_in_a_race() {
    for (server, work) in archives() {
        let hook = server.git_dir.join("hooks/pre-receive");
        let original = std::fs::read_to_string(&hook).unwrap();
        let gate = server.tmp.path().join("gate");
        let waiting = server.tmp.path().join("waiting");
        // Run capsule's hook, then hold the verdict until the gate opens.
        let wrapped = format!(
            "#!/bin/sh\ninput=$(cat)\nprintf '%s\\n' \"$input\" | {{\n{}\n}}\nstatus=$?\ncase \"$input\" in *records/*) touch '{}'; while [ ! -e '{}' ]; do sleep 0.05; done;; esac\nexit $status\n",
            original.lines().filter(|l| !l.starts_with("#!")).collect::<Vec<_>>().join("\n"),
            waiting.display(),
            gate.display()
        );
        std::fs::write(&hook, wrapped).unwrap();

        let mut edited: serde_json::Value = serde_json::from_str(HIGGS).unwrap();
        edited["general_title"] = "for the record".into();
        work.write(
            &dep("higgs", "deposit.json"),
            serde_json::to_string_pretty(&edited).unwrap() + "\n",
        )
        .commit("to publish");
        work.git(&["tag", "-a", "records/higgs/v1", "-m", "publish"]);
        let racing = work.path.clone();
        let first = std::thread::spawn(move || {
            git(&racing)
                .args(["push", "origin", "HEAD:main", "refs/tags/records/higgs/v1"])
                .output()
                .unwrap()
        });
        while !waiting.exists() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let other = server.clone("other");
        other
            .write("README.md", "moved meanwhile\n")
            .commit("concurrent");
        other.push().assert_landed();
        let moved = server.rev("refs/heads/main");
        std::fs::write(&gate, "").unwrap();
        let first = first.join().unwrap();
        assert!(!first.status.success());
        assert!(
            stderr(&first).contains("publish it in a push of its own"),
            "{}",
            stderr(&first)
        );
        assert_eq!(server.rev("refs/tags/records/higgs/v1"), None);
        assert_eq!(server.rev("refs/heads/main"), moved);
    }
}
