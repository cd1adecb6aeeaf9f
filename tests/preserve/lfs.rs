//! Files kept in Git LFS: a real pointer in the record and its object laid out in the
//! clone's LFS store as git-lfs lays it out (`.git/lfs/objects/<2>/<2>/<oid>`), so
//! the test needs no git-lfs binary.

use super::*;

const CONTENT: &[u8] = b"ROOT histograms, pretend: m4l spectrum 118-129 GeV\n";

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// higgs-4l v2 holds `data/m4l.root` as an LFS pointer; returns the object's path
/// in the clone's LFS store (written there).
fn lfs_archive() -> (Archive, std::path::PathBuf) {
    let a = archive(Fixture::default());
    let oid = sha256(CONTENT);
    let pointer = format!(
        "version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {}\n",
        CONTENT.len()
    );
    a.work
        .write(&dep("higgs-4l", "data/m4l.root"), pointer)
        .commit("histograms (Git LFS)");
    a.work.push().assert_landed();
    ok(a.work
        .capsule_as("alice", &["publish", "higgs-4l", "--push"]));
    let object = a
        .work
        .path
        .join(".git/lfs/objects")
        .join(&oid[..2])
        .join(&oid[2..4])
        .join(&oid);
    std::fs::create_dir_all(object.parent().unwrap()).unwrap();
    std::fs::write(&object, CONTENT).unwrap();
    (a, object)
}

#[test]
fn lfs_files_leave_as_their_content() {
    let (a, object) = lfs_archive();
    let out = a.server.tmp.path().join("exports");
    ok(a.work
        .capsule(&["export", "higgs-4l@v2", "--out", out.to_str().unwrap()]));
    let bag = out.join("higgs-4l-v2");
    assert_eq!(
        std::fs::read(bag.join("data/deposit/data/m4l.root")).unwrap(),
        CONTENT,
        "the bag holds the object, not the pointer"
    );
    let manifest = std::fs::read_to_string(bag.join("manifest-sha256.txt")).unwrap();
    assert!(
        manifest.contains(&format!(
            "{}  data/deposit/data/m4l.root\n",
            sha256(CONTENT)
        )),
        "{manifest}"
    );
    let crate_json = read_json(&bag.join("data/ro-crate-metadata.json"));
    assert_eq!(
        entity(&crate_json, "deposit/data/m4l.root")["contentSize"],
        CONTENT.len().to_string()
    );
    if let Some(bagit) = pip_tool(&["bagit.py"], "bagit") {
        let out = Command::new(&bagit)
            .arg("--validate")
            .arg(&bag)
            .output()
            .unwrap();
        assert!(out.status.success(), "bagit.py: {}", stderr(&out));
    }
    // The audit checks the object it has against its pointer.
    let clean = ok(a.work.capsule(&["audit"]));
    assert!(
        stdout(&clean).contains("ok records/higgs-4l/v2"),
        "{}",
        stdout(&clean)
    );

    // The server has no LFS store: the export fails, naming the file and the fix,
    // and writes nothing; its audit does not count a missing object as damage.
    let server_out = a.server.tmp.path().join("server-exports");
    let failed = a.server.capsule(&[
        "export",
        "higgs-4l@v2",
        "--out",
        server_out.to_str().unwrap(),
    ]);
    assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));
    let said = stderr(&failed);
    assert!(
        said.contains(&format!(
            "{} is a Git LFS pointer",
            dep("higgs-4l", "data/m4l.root")
        )) && said.contains("git lfs fetch"),
        "{said}"
    );
    assert!(files_under(&server_out).is_empty());
    ok(a.server.capsule(&["audit"]));

    // A damaged object: the export refuses it and the audit names it.
    std::fs::write(
        &object,
        b"ROOT histograms, pretend: m4l spectrum 118-130 GeV\n",
    )
    .unwrap();
    let damaged = a.work.capsule(&[
        "export",
        "higgs-4l@v2",
        "--out",
        a.server.tmp.path().join("again").to_str().unwrap(),
    ]);
    assert_eq!(damaged.status.code(), Some(1));
    assert!(
        stderr(&damaged).contains("is damaged"),
        "{}",
        stderr(&damaged)
    );
    let audit = a.work.capsule(&["audit"]);
    let text = stdout(&audit);
    assert_eq!(audit.status.code(), Some(1), "{text}");
    assert!(text.contains("FAILED records/higgs-4l/v2"), "{text}");
    assert!(text.contains("data/m4l.root: its Git LFS object"), "{text}");
}
