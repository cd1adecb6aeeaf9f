//! Git tree objects read straight from their bytes: one folder's entries, and the
//! entries that differ between two versions of a folder.
//!
//! libgit2 parses a tree into an array of entries (for a folder of 100k deposits, ~4 MB
//! of fresh memory and a re-hash of the object). The hook and the search index only need
//! to know which entries differ, so they merge-join the two objects' bytes instead.

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
