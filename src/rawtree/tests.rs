//! The canonical-tree check, case by case and against the real `git fsck --strict`.

use std::path::Path;
use std::process::{Command, Stdio};

use super::*;

const ID: [u8; 20] = [0x11; 20];

/// Tree object bytes for `(mode, name)` entries, in the order given.
fn tree(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (mode, name) in entries {
        out.extend_from_slice(mode.as_bytes());
        out.push(b' ');
        out.extend_from_slice(name);
        out.push(0);
        out.extend_from_slice(&ID);
    }
    out
}

fn defect(entries: &[(&str, &[u8])]) -> Option<(String, DefectKind)> {
    check_canonical_tree(&tree(entries))
        .err()
        .map(|d| (display_name(&d.entry.unwrap_or_default()), d.kind))
}

#[test]
fn trees_git_writes_are_canonical() {
    assert_eq!(defect(&[]), None);
    let sorted: &[(&str, &[u8])] = &[
        ("100644", b"a"),
        ("100644", b"a.txt"),
        ("40000", b"a0"),
        ("40000", b"b"),
        ("100644", b"b-c"),
        ("100755", b"b.sh"),
        ("40000", b"b0"),
        ("100644", b".gitignore"),
    ];
    let mut entries = sorted.to_vec();
    entries.sort_by(|x, y| {
        let key = |(mode, name): &(&str, &[u8])| {
            let mut k = name.to_vec();
            if *mode == "40000" {
                k.push(b'/');
            }
            k
        };
        key(x).cmp(&key(y))
    });
    assert_eq!(defect(&entries), None);
}

#[test]
fn duplicates_and_disorder_are_refused() {
    let dup = defect(&[("100644", b"a"), ("100644", b"a")]);
    assert_eq!(dup, Some(("a".into(), DefectKind::Duplicate)));
    // A file and a folder of one name, apart: `a` < `a.txt` < `a/`.
    let apart = defect(&[("100644", b"a"), ("100644", b"a.txt"), ("40000", b"a")]);
    assert_eq!(apart, Some(("a".into(), DefectKind::Duplicate)));
    let folders = defect(&[("40000", b"d"), ("40000", b"d")]);
    assert_eq!(folders, Some(("d".into(), DefectKind::Duplicate)));
    let unsorted = defect(&[("100644", b"b"), ("100644", b"a")]);
    assert_eq!(
        unsorted,
        Some((
            "a".into(),
            DefectKind::NotSorted {
                after: b"b".to_vec()
            }
        ))
    );
    // A folder sorts as if its name ended in `/`: `a/` comes after `a.txt`.
    let folder_first = defect(&[("40000", b"a"), ("100644", b"a.txt")]);
    assert!(matches!(
        folder_first,
        Some((_, DefectKind::NotSorted { .. }))
    ));
}

#[test]
fn only_three_modes_written_exactly_so_are_accepted() {
    for (mode, want) in [
        ("120000", "symlink"),
        ("120755", "symlink"),
        ("160000", "submodule"),
        ("160755", "submodule"),
        ("100664", "odd"),
        ("100600", "odd"),
        ("40755", "odd"),
        ("040000", "odd"),
        ("0100644", "odd"),
    ] {
        let found = defect(&[(mode, b"x")]).map(|(_, kind)| kind);
        let kind = match found {
            Some(DefectKind::Symlink { .. }) => "symlink",
            Some(DefectKind::Submodule { .. }) => "submodule",
            Some(DefectKind::OddMode { .. }) => "odd",
            other => panic!("{mode}: {other:?}"),
        };
        assert_eq!(kind, want, "{mode}");
    }
}

#[test]
fn names_git_windows_or_macos_take_for_something_else_are_refused() {
    use NameDefect::*;
    let cases: &[(&[u8], NameDefect)] = &[
        (b"deposits/ab/zee/notes.html", Slash),
        (b".", Relative),
        (b"..", Relative),
        (b".git", DotGit),
        (b".GIT", DotGit),
        (b".Git", DotGit),
        (b"git~1", DotGit),
        (b"GIT~1", DotGit),
        (b".git.", DotGit),
        (b".git ", DotGit),
        (b".git . .", DotGit),
        (b".git::$INDEX_ALLOCATION", DotGit),
        (".g\u{200c}it".as_bytes(), DotGit),
        (".\u{feff}GIT".as_bytes(), DotGit),
        (b".gitmodules", DotGitmodules),
        (b".GitModules", DotGitmodules),
        (b"gitmod~1", DotGitmodules),
        (b"GI7EBA~1", DotGitmodules),
        (b".gitmodules.", DotGitmodules),
        (".gitmodule\u{200d}s".as_bytes(), DotGitmodules),
        (b"a\nb", Control),
        (b"tab\there", Control),
        (b"bell\x07", Control),
        (b"del\x7f", Control),
        (b"a\\b", Backslash),
    ];
    for (name, want) in cases {
        assert_eq!(
            defect(&[("100644", name)]).map(|(_, kind)| kind),
            Some(DefectKind::Name(*want)),
            "{}",
            display_name(name)
        );
    }
    for fine in [
        &b".gitignore"[..],
        b".gitattributes",
        b"git",
        b".github",
        b"...",
        b"a..b",
        b"git~2x",
        b"notes.",
        b"a:b",
        "caf\u{e9}".as_bytes(),
    ] {
        assert_eq!(defect(&[("100644", fine)]), None, "{}", display_name(fine));
    }
}

#[test]
fn malformed_objects_are_refused_after_the_last_good_entry() {
    let mut bytes = tree(&[("100644", b"a")]);
    bytes.extend_from_slice(b"100644 b\0short");
    let found = check_canonical_tree(&bytes).unwrap_err();
    assert_eq!(found.entry.as_deref(), Some(&b"a"[..]));
    assert!(matches!(found.kind, DefectKind::Malformed(_)));
    assert!(check_canonical_tree(b"100644 \0").is_err());
    assert!(check_canonical_tree(b"10x644 a\0").is_err());
}

#[test]
fn structure_alone_allows_what_git_reads_the_same() {
    let symlink = tree(&[("120000", b"link"), ("100664", b"odd"), ("100644", b"x\ny")]);
    assert!(check_tree_structure(&symlink).is_ok());
    assert!(check_canonical_tree(&symlink).is_err());
    assert!(check_tree_structure(&tree(&[("100644", b"a"), ("100644", b"a")])).is_err());
    assert!(check_tree_structure(&tree(&[("100644", b"a/b")])).is_err());
}

#[test]
fn names_print_on_one_line() {
    assert_eq!(display_name(b"a\nb"), "a\\nb");
    assert_eq!(display_name(".g\u{200c}it".as_bytes()), ".g\\u{200c}it");
    assert_eq!(display_name(b"caf\xe9"), "caf\\xe9");
    assert_eq!(display_name("café".as_bytes()), "café");
    let message = TreeDefect {
        entry: Some(b"evil\nremote: ok".to_vec()),
        kind: DefectKind::Duplicate,
    }
    .to_string();
    assert!(!message.contains('\n'), "{message}");
}

/// A scratch repository holding one blob and the empty tree, for `git fsck`.
struct FsckRepo {
    dir: tempfile::TempDir,
    blob: [u8; 20],
    empty_tree: [u8; 20],
}

fn git(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null");
    cmd
}

fn hash_object(dir: &Path, args: &[&str], input: &[u8]) -> String {
    use std::io::Write;
    let mut child = git(dir)
        .args(["hash-object", "-w", "--stdin"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("git");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn raw_id(hex: &str) -> [u8; 20] {
    let mut id = [0; 20];
    id.copy_from_slice(Oid::from_str(hex).unwrap().as_bytes());
    id
}

impl FsckRepo {
    fn new() -> FsckRepo {
        let dir = tempfile::tempdir().unwrap();
        assert!(git(dir.path())
            .args(["init", "-q", "--bare", "."])
            .status()
            .unwrap()
            .success());
        let blob = raw_id(&hash_object(dir.path(), &[], b"hello\n"));
        let empty_tree = raw_id(&hash_object(dir.path(), &["-t", "tree"], b""));
        FsckRepo {
            dir,
            blob,
            empty_tree,
        }
    }

    /// What `git fsck --strict` says about the tree `bytes` (written as is): `None` when
    /// it says nothing, else its complaint. The object is removed again afterwards.
    fn fsck(&self, bytes: &[u8]) -> Option<String> {
        let id = hash_object(self.dir.path(), &["--literally", "-t", "tree"], bytes);
        let out = git(self.dir.path())
            .args(["fsck", "--strict", "--no-dangling", "--no-progress"])
            .output()
            .unwrap();
        std::fs::remove_file(
            self.dir
                .path()
                .join("objects")
                .join(&id[..2])
                .join(&id[2..]),
        )
        .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let complaints: Vec<&str> = text.lines().filter(|l| !l.starts_with("notice:")).collect();
        (!out.status.success() || !complaints.is_empty()).then(|| complaints.join(" / "))
    }
}

/// Modes as written in a tree: the three canonical ones, symbolic links and
/// submodules, the odd ones git only warns about, and zero-padded ones.
const MODES: &[&str] = &[
    "100644", "100755", "40000", "120000", "160000", "100664", "100600", "120755", "160755",
    "40755", "040000", "0100644",
];

/// Plain names that sort near each other and near the special ones (`a` < `a-b` <
/// `a.txt` < `a/` < `a0`), drawn from often enough to collide.
const PLAIN: &[&str] = &["a", "a.txt", "a-b", "a0", "b", "B", "..."];

/// Names that matter to git, Windows or macOS.
const SPECIAL: &[&str] = &[
    ".git",
    ".GIT",
    "git~1",
    ".git.",
    ".git::$DATA",
    ".g\u{200c}it",
    ".gitmodules",
    "gitmod~1",
    ".gitmodules ",
    "..",
    ".",
    "a/b",
    "a\nb",
    "a\\b",
    ".gitignore",
];

/// xorshift64*: a deterministic stream of cases, the same on every run and machine.
struct Cases(u64);

impl Cases {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// A random tree: up to five entries with plain names, names that matter to git or
/// random short ones, canonical modes or (in two trees out of five) odd ones too; most are sorted in git's order (so that names and
/// modes are what is tested), some are left as drawn, a few are cut short.
fn random_tree(cases: &mut Cases) -> (Vec<(&'static str, Vec<u8>)>, Option<usize>) {
    let mut entries = Vec::new();
    // Each kind of oddity in some trees only, so that trees with just one are common.
    let special = cases.chance(40);
    let odd_modes = cases.chance(40);
    for _ in 0..cases.below(6) {
        let mode = if !odd_modes || cases.chance(60) {
            cases.pick(&MODES[..3])
        } else {
            cases.pick(MODES)
        };
        let name = if special && cases.chance(40) {
            cases.pick(SPECIAL).as_bytes().to_vec()
        } else if cases.chance(70) {
            cases.pick(PLAIN).as_bytes().to_vec()
        } else {
            (0..1 + cases.below(3))
                .map(|_| cases.pick(b"ab.-~ "))
                .collect()
        };
        entries.push((mode, name));
    }
    // A file and a folder of one name: in git's order they need not be neighbours.
    if !entries.is_empty() && cases.chance(25) {
        let (mode, name) = entries[cases.below(entries.len())].clone();
        let other = if is_folder_mode(mode) {
            "100644"
        } else {
            "40000"
        };
        if cases.chance(50) {
            // A name that sorts between the two.
            let mut between = name.clone();
            between.extend_from_slice(cases.pick(&[&b"-x"[..], b".x", b" "]));
            entries.push(("100644", between));
        }
        entries.push((other, name));
    }
    if cases.chance(80) {
        entries.sort_by_key(|(mode, name)| {
            let mut key = name.clone();
            if is_folder_mode(mode) {
                key.push(b'/');
            }
            key
        });
    }
    let cut = cases.chance(5).then(|| 1 + cases.below(30));
    (entries, cut)
}

fn is_folder_mode(mode: &str) -> bool {
    mode.trim_start_matches('0').starts_with('4')
}

#[test]
fn the_check_agrees_with_git_fsck_strict() {
    let repo = FsckRepo::new();
    let mut cases = Cases(0x5eed_cafe_f00d_beef);
    for _ in 0..200 {
        let (entries, cut) = random_tree(&mut cases);
        let mut bytes = Vec::new();
        for (mode, name) in &entries {
            bytes.extend_from_slice(mode.as_bytes());
            bytes.push(b' ');
            bytes.extend_from_slice(name);
            bytes.push(0);
            // Every entry names an object of its type (a submodule's commit is never
            // looked up), so git judges the tree and nothing else.
            let id = if is_folder_mode(mode) {
                &repo.empty_tree
            } else {
                &repo.blob
            };
            bytes.extend_from_slice(id);
        }
        if let Some(cut) = cut {
            bytes.truncate(bytes.len().saturating_sub(cut));
        }
        let shown: Vec<String> = entries
            .iter()
            .map(|(mode, name)| format!("{mode} {}", display_name(name)))
            .collect();
        let shown = format!("[{}], cut short by {cut:?}", shown.join(", "));
        match (check_canonical_tree(&bytes), repo.fsck(&bytes)) {
            // Never looser than git: what capsule accepts, git says nothing about.
            (Ok(()), Some(complaint)) => {
                panic!("capsule accepts what git refuses ({complaint}): {shown}")
            }
            // Stricter only where that is deliberate (see the module doc).
            (Err(defect), None) => assert!(
                defect.kind.is_stricter_than_git(),
                "git accepts what capsule refuses ({defect}): {shown}"
            ),
            _ => {}
        }
    }
}
