//! Git tree objects read straight from their bytes: the one parser of tree objects in
//! capsule, the check that a tree is canonical, one folder's entries, and the entries
//! that differ between two versions of a folder.
//!
//! libgit2 parses a tree into an array of entries (for a folder of 100k deposits, ~4 MB
//! of fresh memory and a re-hash of the object). The hook and the search index only need
//! to know which entries differ, so they merge-join the two objects' bytes instead.
//!
//! # Canonical trees
//! Git and libgit2 read a tree that git would never write in different ways: with an
//! entry listed twice, libgit2's binary search finds one copy and git's checkout writes
//! the other; a name with a `/` is checked out as a path into another folder; a mode
//! like 120755 is a symbolic link to git and a plain file to a reader that only looks
//! at the executable bit. [`check_canonical_tree`] is what the hook runs on every tree
//! a push brings, before anything reads it, so that every reader agrees on what a
//! tree holds. It refuses (whatever `receive.fsckObjects` says):
//! - a malformed object, entries listed twice (also a file and a folder of one name,
//!   which need not be neighbours) and entries out of git's order;
//! - modes other than 100644, 100755 and 40000, written exactly so (git only warns about
//!   odd modes such as 100664 or 120755 even with `--strict`, and not at all about
//!   symbolic links 120000 and submodules 160000, which an archive never holds);
//! - names that are empty or hold `/`, `.` and `..`, `.git` and `.gitmodules` in any
//!   case and in every spelling NTFS or HFS+ resolve to them (`git~1`, `.git.`,
//!   `.git::$INDEX_ALLOCATION`, `.g\u{200c}it`; the rules are gitoxide's `gix-validate`,
//!   the same as git's `fsck.c`). Git's fsck only refuses `.gitmodules` as a symbolic
//!   link: capsule refuses it as a file too;
//! - names with a control character (a newline would split the `remote:` lines that
//!   report problems, and breaks checkouts on Windows) or a `\` (a path separator on
//!   Windows). Git accepts both. Names Windows alone cannot hold (`aux`, `a:b`, a
//!   trailing dot) are not refused: they do not change what git checks out elsewhere.
//!
//! Capsule is stricter than `git fsck --strict`, never looser (a property test checks
//! it against the real git).
//!
//! Once the hook has refused every non-canonical tree, the rest of capsule may read
//! trees through libgit2 (`Tree::get_path`, `Tree::iter`): on a sorted tree without
//! duplicates, with only the three modes, libgit2, git and this parser see the same
//! entries. Trees older than the check (pushed before capsule judged trees) are read by
//! the hook's diff only for their structure: see [`check_tree_structure`].

use git2::{FileMode, ObjectType, Oid};

/// A tree object's bytes, without parsing it into libgit2's entry array (for a 100k
/// entry folder that array alone is ~4 MB of fresh memory).
pub(crate) fn read_tree<'o>(
    odb: &'o git2::Odb<'_>,
    id: Oid,
) -> Result<git2::OdbObject<'o>, git2::Error> {
    let object = odb.read(id)?;
    if object.kind() != ObjectType::Tree {
        return Err(git2::Error::from_str(&format!(
            "object {id} should be a tree but is a {}",
            object.kind()
        )));
    }
    Ok(object)
}

/// One entry of a tree object: `<octal mode> <name>\0<20-byte id>`.
#[derive(Clone, Copy)]
pub(crate) struct RawEntry<'a> {
    pub(crate) mode: u16,
    pub(crate) name: &'a [u8],
    pub(crate) id: Oid,
}

impl<'a> RawEntry<'a> {
    /// Splits the first entry off `data`, checking the format as libgit2 does.
    pub(crate) fn parse(data: &mut &'a [u8]) -> Result<Option<RawEntry<'a>>, git2::Error> {
        let all: &'a [u8] = data;
        if all.is_empty() {
            return Ok(None);
        }
        let bad = |what: &str| git2::Error::from_str(&format!("malformed tree object: {what}"));
        let space = all
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| bad("no space after a file mode"))?;
        let mut mode: u32 = 0;
        for &digit in &all[..space] {
            if !(b'0'..=b'7').contains(&digit) || mode > 0xFFFF {
                return Err(bad("a file mode is not an octal number"));
            }
            mode = mode * 8 + u32::from(digit - b'0');
        }
        let mode = u16::try_from(mode)
            .ok()
            .filter(|_| space > 0)
            .ok_or_else(|| bad("a file mode is not an octal number"))?;
        let name_start = space + 1;
        let nul = all[name_start..]
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| bad("a name does not end"))?
            + name_start;
        if nul == name_start {
            return Err(bad("an entry has an empty name"));
        }
        let end = nul + 1 + 20;
        let id = all
            .get(nul + 1..end)
            .ok_or_else(|| bad("an object id is cut short"))
            .and_then(Oid::from_bytes)?;
        *data = &all[end..];
        Ok(Some(RawEntry {
            mode,
            name: &all[name_start..nul],
            id,
        }))
    }

    /// A folder (libgit2's `git_tree_entry__is_tree`: `S_ISDIR`).
    pub(crate) fn is_tree(&self) -> bool {
        self.mode & 0o170000 == 0o040000
    }

    /// The mode as libgit2 reports it (`git_tree_entry_filemode` normalises it).
    pub(crate) fn normal_mode(&self) -> u16 {
        match self.mode & 0o170000 {
            0o040000 => 0o040000,
            _ if self.mode & 0o100 != 0 => 0o100755,
            0o160000 => 0o160000,
            0o120000 => 0o120000,
            _ => 0o100644,
        }
    }

    pub(crate) fn file_mode(&self) -> FileMode {
        match self.normal_mode() {
            0o120000 => FileMode::Link,
            0o160000 => FileMode::Commit,
            0o100755 => FileMode::BlobExecutable,
            0o040000 => FileMode::Tree,
            _ => FileMode::Blob,
        }
    }
}

/// A name whose entry differs between two folders: before and after (`None`: absent).
pub(crate) type EntryChange<'a> = (&'a [u8], Option<RawEntry<'a>>, Option<RawEntry<'a>>);

/// Skips the entries that start both lists with the same bytes: the common case, an
/// unchanged entry, costs finding the end of its name and one comparison (its mode
/// and id are not even decoded). The first entry that differs, or is cut short, is
/// left for [`RawEntry::parse`].
fn skip_unchanged_entries(old: &mut &[u8], new: &mut &[u8]) {
    // An entry ends 20 bytes (the id) after the NUL that ends its name.
    while let Some(nul) = old.iter().position(|&b| b == 0) {
        let end = nul + 21;
        if end > old.len() || !new.starts_with(&old[..end]) {
            break;
        }
        *old = &old[end..];
        *new = &new[end..];
    }
}

/// The entries of one folder that differ between `old` and `new` (tree object bytes),
/// sorted by name.
///
/// Both lists are in git's tree order, so one merge pass pairs them up. Git orders a
/// folder as if its name ended in `/`, so a name that is a file on one side and a
/// folder on the other shows up as two unpaired entries; they are joined into one
/// change afterwards. Trees that are not sorted (git never writes them) only cost more
/// unpaired entries, never a wrong answer, because the join is by name.
pub(crate) fn differing_entries<'a>(
    mut old: &'a [u8],
    mut new: &'a [u8],
) -> Result<Vec<EntryChange<'a>>, git2::Error> {
    use std::cmp::Ordering;
    let mut differing: Vec<EntryChange<'a>> = Vec::new();
    // An entry taken off either list and not yet paired; `None` at the end of a list.
    let (mut was, mut now) = (None, None);
    loop {
        if was.is_none() && now.is_none() {
            skip_unchanged_entries(&mut old, &mut new);
        }
        if was.is_none() {
            was = RawEntry::parse(&mut old)?;
        }
        if now.is_none() {
            now = RawEntry::parse(&mut new)?;
        }
        let order = match (&was, &now) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(w), Some(n)) => git_tree_order(w, n),
        };
        match order {
            Ordering::Less => differing.push((was.expect("compared").name, was.take(), None)),
            Ordering::Greater => differing.push((now.expect("compared").name, None, now.take())),
            Ordering::Equal => {
                let (w, n) = (was.take().expect("compared"), now.take().expect("compared"));
                if w.id != n.id || w.normal_mode() != n.normal_mode() {
                    differing.push((n.name, Some(w), Some(n)));
                }
            }
        }
    }
    // Join a file and a folder of the same name (a type change) into one change.
    differing.sort_by(|a, b| a.0.cmp(b.0));
    let mut joined: Vec<EntryChange<'a>> = Vec::with_capacity(differing.len());
    for (name, was, now) in differing {
        match joined.last_mut() {
            Some(last) if last.0 == name => {
                last.1 = last.1.or(was);
                last.2 = last.2.or(now);
            }
            _ => joined.push((name, was, now)),
        }
    }
    Ok(joined)
}

/// Git's order of tree entries: by name bytes, a folder's name compared as if it
/// ended in `/` (libgit2's `git_tree_entry_cmp`).
fn git_tree_order(a: &RawEntry<'_>, b: &RawEntry<'_>) -> std::cmp::Ordering {
    let common = a.name.len().min(b.name.len());
    a.name[..common].cmp(&b.name[..common]).then_with(|| {
        let next = |e: &RawEntry<'_>| match e.name.get(common) {
            Some(&byte) => byte,
            None if e.is_tree() => b'/',
            None => 0,
        };
        next(a).cmp(&next(b))
    })
}

/// Why a tree object is not canonical: the entry (by its name as stored; `None` for
/// the object as a whole) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TreeDefect {
    pub(crate) entry: Option<Vec<u8>>,
    pub(crate) kind: DefectKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DefectKind {
    /// Not a tree object at all: cut short, a mode that is not a number, ...
    Malformed(String),
    /// The same name twice (git fsck: duplicateEntries).
    Duplicate,
    /// Out of git's order; the name of the entry it follows (git fsck: treeNotSorted).
    NotSorted {
        after: Vec<u8>,
    },
    /// A mode git writes only for a symbolic link (120000), or an odd spelling of it.
    Symlink {
        mode: String,
    },
    /// A mode git writes only for a submodule (160000), or an odd spelling of it.
    Submodule {
        mode: String,
    },
    /// Any other mode than 100644, 100755 and 40000 written exactly so.
    OddMode {
        mode: String,
    },
    Name(NameDefect),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameDefect {
    Slash,
    Relative,
    DotGit,
    DotGitmodules,
    Control,
    Backslash,
}

impl DefectKind {
    /// Whether `git fsck --strict` accepts what capsule refuses here (it may warn):
    /// the places where capsule is deliberately stricter than git.
    #[cfg(test)]
    pub(crate) fn is_stricter_than_git(&self) -> bool {
        match self {
            DefectKind::Symlink { mode }
            | DefectKind::Submodule { mode }
            | DefectKind::OddMode { mode } => !mode.starts_with('0'),
            DefectKind::Name(name) => matches!(
                name,
                NameDefect::DotGitmodules | NameDefect::Control | NameDefect::Backslash
            ),
            DefectKind::Malformed(_) | DefectKind::Duplicate | DefectKind::NotSorted { .. } => {
                false
            }
        }
    }
}

/// A stored name made safe to print on one line: control characters, `\`, the code
/// points HFS+ ignores (they could hide a `.git`) and bytes that are not UTF-8 are
/// escaped, Rust style.
pub(crate) fn display_name(name: &[u8]) -> String {
    let mut out = String::new();
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() || c == '\\' || is_invisible(c) {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

/// Zero-width and direction-changing code points (HFS+ ignores most of them in names).
fn is_invisible(c: char) -> bool {
    matches!(c as u32, 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x206f | 0xfeff)
}

/// `prefix/name` (just `name` at the top): the path of an entry of the folder `prefix`.
pub(crate) fn join_path(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    let mut path = prefix.to_vec();
    if !path.is_empty() {
        path.push(b'/');
    }
    path.extend_from_slice(name);
    path
}

impl TreeDefect {
    /// Where the defect is, for a tree at `folder`: its entry's path, or the folder's.
    pub(crate) fn path(&self, folder: &[u8]) -> Vec<u8> {
        match &self.entry {
            Some(name) => join_path(folder, name),
            None if folder.is_empty() => b"(the top folder)".to_vec(),
            None => folder.to_vec(),
        }
    }
}

impl std::fmt::Display for TreeDefect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const REWRITE: &str =
            "git never writes such a tree: make the commit again with `git add` and `git commit`";
        let name = self.entry.as_deref().map(display_name).unwrap_or_default();
        match &self.kind {
            DefectKind::Malformed(what) => write!(f, "the folder's tree object is malformed ({what}); {REWRITE}"),
            DefectKind::Duplicate => write!(f, "the folder lists `{name}` twice, and git would check out only one of them; {REWRITE}"),
            DefectKind::NotSorted { after } => write!(f, "the folder's entries are not in git's order (`{name}` comes after `{}`); {REWRITE}", display_name(after)),
            DefectKind::Symlink { mode } => write!(f, "symbolic links are not allowed in an archive (mode {mode}); commit the file itself"),
            DefectKind::Submodule { mode } => write!(f, "submodules are not allowed in an archive (mode {mode}); capture the repository instead"),
            DefectKind::OddMode { mode } => write!(f, "mode {mode} is not one git writes (files are 100644 or 100755, folders 40000); {REWRITE}"),
            DefectKind::Name(NameDefect::Slash) => write!(f, "a name cannot contain `/`: git would check it out into another folder; {REWRITE}"),
            DefectKind::Name(NameDefect::Relative) => write!(f, "`{name}` cannot be a name (git refuses to check it out, and every later clone fails); rename it"),
            DefectKind::Name(NameDefect::DotGit) => write!(f, "`{name}` is git's own folder (`.git`, or a spelling Windows or macOS take for it) and cannot be in an archive; rename it"),
            DefectKind::Name(NameDefect::DotGitmodules) => write!(f, "`{name}` is git's list of submodules (`.gitmodules`, or a spelling Windows or macOS take for it), and an archive has no submodules; remove it"),
            DefectKind::Name(NameDefect::Control) => write!(f, "the name contains a control character (a newline, a tab, ...), which breaks checkouts and logs; rename it"),
            DefectKind::Name(NameDefect::Backslash) => write!(f, "the name contains `\\`, a path separator on Windows; rename it"),
        }
    }
}

/// Checks that `bytes` is a tree object exactly as git writes it, with only the entries
/// an archive may hold (see the module documentation). The first defect found names
/// its entry.
pub(crate) fn check_canonical_tree(bytes: &[u8]) -> Result<(), TreeDefect> {
    check_tree(bytes, true)
}

/// Checks only what decides how a tree is read: the format, git's order and that no
/// name is listed twice. Used on trees that were in the repository before the push
/// (which may predate the full check and hold, say, a symbolic link).
pub(crate) fn check_tree_structure(bytes: &[u8]) -> Result<(), TreeDefect> {
    check_tree(bytes, false)
}

fn check_tree(mut data: &[u8], full: bool) -> Result<(), TreeDefect> {
    let mut previous: Option<RawEntry<'_>> = None;
    // The files that a folder of the same name could still follow: in git's order a
    // file `a` and a folder `a` (sorted as `a/`) can be apart, with names like `a.txt`
    // between them, and every name between them starts with `a`. So the candidates
    // are a chain of prefixes of the current name, popped as soon as one is not.
    let mut open_files: Vec<&[u8]> = Vec::new();
    loop {
        let mode_text: &[u8] = data.split(|&b| b == b' ').next().unwrap_or_default();
        let entry = match RawEntry::parse(&mut data) {
            Ok(Some(entry)) => entry,
            Ok(None) => return Ok(()),
            Err(e) => {
                return Err(TreeDefect {
                    entry: previous.map(|p| p.name.to_vec()),
                    kind: DefectKind::Malformed(match previous {
                        Some(_) => format!("after this entry: {}", e.message()),
                        None => e.message().to_string(),
                    }),
                })
            }
        };
        let defect = |kind| {
            Err(TreeDefect {
                entry: Some(entry.name.to_vec()),
                kind,
            })
        };
        if full {
            if let Some(kind) = mode_defect(mode_text) {
                return defect(kind);
            }
            if let Some(why) = name_defect(entry.name) {
                return defect(DefectKind::Name(why));
            }
        } else if entry.name.contains(&b'/') {
            // Would break the order argument below; refused whatever the check.
            return defect(DefectKind::Name(NameDefect::Slash));
        }
        if let Some(previous) = previous {
            if previous.name == entry.name {
                return defect(DefectKind::Duplicate);
            }
            if git_tree_order(&previous, &entry) != std::cmp::Ordering::Less {
                return defect(DefectKind::NotSorted {
                    after: previous.name.to_vec(),
                });
            }
        }
        while open_files
            .last()
            .is_some_and(|file| !entry.name.starts_with(file))
        {
            open_files.pop();
        }
        if entry.is_tree() {
            if open_files.last() == Some(&entry.name) {
                return defect(DefectKind::Duplicate);
            }
        } else {
            open_files.push(entry.name);
        }
        previous = Some(entry);
    }
}

/// The defect of a mode as written, `None` for the three an archive holds.
fn mode_defect(text: &[u8]) -> Option<DefectKind> {
    if matches!(text, b"100644" | b"100755" | b"40000") {
        return None;
    }
    // The parser accepted it: an octal number of at most 16 bits.
    let mode = String::from_utf8_lossy(text).into_owned();
    let kind = u32::from_str_radix(&mode, 8).unwrap_or(0) & 0o170000;
    Some(match kind {
        0o120000 => DefectKind::Symlink { mode },
        0o160000 => DefectKind::Submodule { mode },
        _ => DefectKind::OddMode { mode },
    })
}

/// Why `name` cannot be a file or folder name in an archive (see the module doc).
fn name_defect(name: &[u8]) -> Option<NameDefect> {
    use gix_validate::path::component::{Error, Mode, Options};
    // Windows-only rules (device names, `:`, trailing dots) stay off; NTFS and HFS+
    // aliases of `.git` and `.gitmodules` stay on. Checking every name as if it were a
    // symbolic link makes gix-validate refuse `.gitmodules` (and its aliases) too,
    // which it otherwise refuses only as a link.
    let options = Options {
        protect_windows: false,
        protect_hfs: true,
        protect_ntfs: true,
    };
    let refused = match gix_validate::path::component(name.into(), Some(Mode::Symlink), options) {
        Ok(_) => None,
        Err(Error::PathSeparator) => Some(NameDefect::Slash),
        Err(Error::Relative) => Some(NameDefect::Relative),
        Err(Error::SymlinkedGitModules) => Some(NameDefect::DotGitmodules),
        // Empty (the parser refuses it first), `.git`, and whatever a newer
        // gix-validate adds: any doubt refuses.
        Err(_) => Some(NameDefect::DotGit),
    };
    refused.or_else(|| {
        if name.iter().any(|&b| b < 0x20 || b == 0x7f) {
            Some(NameDefect::Control)
        } else if name.contains(&b'\\') {
            Some(NameDefect::Backslash)
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests;
