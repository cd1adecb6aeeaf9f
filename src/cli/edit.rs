//! `capsule set`, `capsule unset`, `capsule edit` and `capsule attach`: changing a
//! deposit in a clone.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;
use serde_json::Value;

use capsule::authoring::{remove_pointer, set_pointer_with, write_json_atomically};
use capsule::deposit::{lfs_pointer, LfsPointer};
use capsule::history::{diff_values, FieldChange};
use capsule::problem::Problem;

use super::clone::Clone;
use super::output::{self, count};
use super::Outcome;

/// Prints problems and the verdict that nothing was written.
fn report_problems(problems: &[Problem], what: &str) -> anyhow::Result<Outcome> {
    output::problems(
        problems,
        "refused:",
        &format!(
            "{what}: {}; nothing was written",
            count(problems.len(), "problem")
        ),
    )?;
    Ok(Outcome::Problems)
}

/// The problems of `after` that `before` did not have: a change that adds none leaves
/// the deposit no worse, and is accepted (a deposit that is already broken can be
/// repaired one step at a time).
fn new_problems(before: &[Problem], after: &[Problem]) -> Vec<Problem> {
    after
        .iter()
        .filter(|p| {
            !before
                .iter()
                .any(|b| b.pointer == p.pointer && b.message == p.message && b.file == p.file)
        })
        .cloned()
        .collect()
}

/// Says which problems are still there after a change that was written.
fn report_remaining(problems: &[Problem]) -> anyhow::Result<()> {
    if problems.is_empty() {
        return Ok(());
    }
    let mut err = anstream::stderr();
    for problem in problems {
        writeln!(err, "{}", output::problem_line(problem))?;
    }
    writeln!(
        err,
        "{} {} remain{} from before this change; fix them before you push",
        output::bad("note:"),
        count(problems.len(), "problem"),
        if problems.len() == 1 { "s" } else { "" }
    )?;
    Ok(())
}

/// Whether the schema of `deposit` says the field at `tokens` is a list.
fn schema_says_list(clone: &Clone, deposit: &Value) -> impl Fn(&[String]) -> Option<bool> {
    let schema = deposit
        .get("$schema")
        .and_then(Value::as_str)
        .and_then(capsule::deposit::parse_schema_ref)
        .and_then(|sref| {
            capsule::schema::SchemaRegistry::new()
                .compile(&capsule::archive::WorkTree::new(&clone.root), &sref)
                .ok()
                .flatten()
        });
    move |tokens: &[String]| {
        let schema = schema.as_ref()?;
        let mut node = schema.node();
        for token in tokens {
            node = node.child(if token == "-" { "0" } else { token })?;
        }
        let ty = node.value().get("type")?;
        Some(
            ty == "array"
                || ty
                    .as_array()
                    .is_some_and(|l| l.iter().any(|t| t == "array")),
        )
    }
}

fn print_changes(changes: &[FieldChange]) -> anyhow::Result<()> {
    let mut out = anstream::stdout();
    for change in changes {
        let show = |v: &Option<Value>| v.as_ref().map(Value::to_string).unwrap_or_default();
        match change.kind {
            capsule::history::FieldChangeKind::Added => writeln!(
                out,
                "  {}",
                output::ok(&format!("+ {}: {}", change.pointer, show(&change.new)))
            )?,
            capsule::history::FieldChangeKind::Removed => writeln!(
                out,
                "  {}",
                output::bad(&format!("- {}: {}", change.pointer, show(&change.old)))
            )?,
            capsule::history::FieldChangeKind::Changed => writeln!(
                out,
                "  ~ {}: {} → {}",
                change.pointer,
                show(&change.old),
                show(&change.new)
            )?,
        }
    }
    Ok(())
}

#[derive(Debug, Args)]
#[command(
    after_help = "VALUE is read as JSON when it is JSON (numbers, true, [..], {..}, \"quoted\"),
otherwise as a string. Missing objects on the way are created; `-` as the last array
index appends (a missing field becomes a list). The result is validated as a draft:
a change that adds a problem is refused; one that leaves the deposit no worse is
written, and the problems that remain are listed.

Examples:
  capsule set zee /basic_info/status \"in progress\"
  capsule set zee /basic_info/keywords/- Higgs
  capsule set zee /basic_info/measurements/0/sqrt_s_tev 13"
)]
pub struct SetArgs {
    /// The deposit.
    id: String,
    /// Where, as a JSON pointer (e.g. /basic_info/analysis_name).
    pointer: String,
    /// The new value.
    value: String,
    /// Take VALUE as a string even if it looks like JSON.
    #[arg(long)]
    string: bool,
    /// Print the change as JSON.
    #[arg(long)]
    json: bool,
}

pub fn set(args: SetArgs) -> anyhow::Result<Outcome> {
    let clone = Clone::open()?;
    let path = clone.deposit(&args.id)?;
    let old = clone.read_deposit(&args.id)?;
    let value = if args.string {
        Value::String(args.value.clone())
    } else {
        serde_json::from_str(&args.value).unwrap_or_else(|_| Value::String(args.value.clone()))
    };
    let mut new = old.clone();
    set_pointer_with(
        &mut new,
        &args.pointer,
        value,
        &schema_says_list(&clone, &old),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    save_and_print(
        &clone,
        &args.id,
        &path,
        &old,
        &new,
        &format!("{} {}", args.id, args.pointer),
        args.json,
    )
}

/// Writes `new` over `old` unless it adds problems (then they are reported, nothing is
/// written, and `None` is returned), and lists the problems that remain. What `set`,
/// `unset` and `capsule access` share.
pub(super) fn save_change(
    clone: &Clone,
    id: &str,
    path: &std::path::Path,
    old: &Value,
    new: &Value,
    what: &str,
) -> anyhow::Result<Option<Vec<FieldChange>>> {
    let before = clone.problems_of(id, old)?;
    let after = clone.problems_of(id, new)?;
    let added = new_problems(&before, &after);
    if !added.is_empty() {
        report_problems(&added, what)?;
        return Ok(None);
    }
    let changes = diff_values(old, new);
    write_json_atomically(path, new)?;
    report_remaining(&after)?;
    Ok(Some(changes))
}

/// Prints a saved change: `Updated <file>` and each field, or the changes as JSON.
pub(super) fn print_saved(id: &str, changes: &[FieldChange], json: bool) -> anyhow::Result<()> {
    if json {
        return output::json(&changes);
    }
    writeln!(
        anstream::stdout(),
        "Updated {}",
        capsule::deposit::metadata_path(id)
    )?;
    print_changes(changes)
}

/// [`save_change`], then [`print_saved`].
fn save_and_print(
    clone: &Clone,
    id: &str,
    path: &std::path::Path,
    old: &Value,
    new: &Value,
    what: &str,
    json: bool,
) -> anyhow::Result<Outcome> {
    match save_change(clone, id, path, old, new, what)? {
        Some(changes) => {
            print_saved(id, &changes, json)?;
            Ok(Outcome::Ok)
        }
        None => Ok(Outcome::Problems),
    }
}

#[derive(Debug, Args)]
#[command(
    after_help = "Removes a member of an object, or an element of a list (the elements after it
move up). The result is validated as a draft, as `capsule set` does: a removal that
adds a problem is refused and nothing is written; otherwise the problems that remain
are listed. `$schema` cannot be removed (set it to another version instead). This is
cap-client's `metadata remove --field a.b.0`, with a JSON pointer: /a/b/0.

Examples:
  capsule unset zee /basic_info/keywords/2
  capsule unset zee /analysis_software"
)]
pub struct UnsetArgs {
    /// The deposit.
    id: String,
    /// What to remove, as a JSON pointer (e.g. /basic_info/keywords/0).
    pointer: String,
    /// Print the change as JSON.
    #[arg(long)]
    json: bool,
}

pub fn unset(args: UnsetArgs) -> anyhow::Result<Outcome> {
    let clone = Clone::open()?;
    let path = clone.deposit(&args.id)?;
    let old = clone.read_deposit(&args.id)?;
    let mut new = old.clone();
    remove_pointer(&mut new, &args.pointer)
        .map_err(|e| anyhow::anyhow!("{}: {e}", capsule::deposit::metadata_path(&args.id)))?;
    save_and_print(
        &clone,
        &args.id,
        &path,
        &old,
        &new,
        &format!("{} {}", args.id, args.pointer),
        args.json,
    )
}

#[derive(Debug, Args)]
#[command(
    after_help = "Opens the deposit in $VISUAL or $EDITOR (else vi). When you close the editor,
the result is checked as a draft. An edit that adds no problem is saved (problems it
leaves from before are listed). With new problems, on a terminal you are asked whether
to reopen it; otherwise your edit is kept in .git/capsule/edits/ and the deposit is
left as it was. An edit is never lost."
)]
pub struct EditArgs {
    /// The deposit.
    id: String,
}

pub fn edit(args: EditArgs) -> anyhow::Result<Outcome> {
    let clone = Clone::open()?;
    let path = clone.deposit(&args.id)?;
    let original = std::fs::read_to_string(&path)?;
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".into());
    let mut draft = tempfile::Builder::new()
        .prefix(&format!("{}-", args.id))
        .suffix(".json")
        .tempfile()?;
    draft.write_all(original.as_bytes())?;
    draft.flush()?;
    let interactive = std::io::stdin().is_terminal();
    loop {
        // The editor may carry arguments (`code --wait`): let the shell split them.
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{editor} \"$1\""))
            .arg("sh")
            .arg(draft.path())
            .status()
            .with_context(|| format!("cannot start the editor `{editor}`"))?;
        if !status.success() {
            let kept = keep_edit(&clone, &args.id, &std::fs::read(draft.path())?)?;
            bail!(
                "the editor `{editor}` failed ({status}); your text is kept in {}",
                kept.display()
            );
        }
        let text = std::fs::read(draft.path())?;
        if text == original.as_bytes() {
            writeln!(anstream::stdout(), "No changes.")?;
            return Ok(Outcome::Ok);
        }
        let file = capsule::deposit::metadata_path(&args.id);
        let after = match capsule::validate::parse_deposit(&file, &text) {
            Ok(parsed) => clone.problems_of(&args.id, &parsed.value)?,
            Err(problems) => problems,
        };
        let before = match capsule::json::from_bytes(original.as_bytes()) {
            Ok(value) => clone.problems_of(&args.id, &value)?,
            Err(_) => Vec::new(),
        };
        let problems = new_problems(&before, &after);
        if problems.is_empty() {
            let value: Value = capsule::json::from_bytes(&text).map_err(anyhow::Error::msg)?;
            let changes = diff_values(
                &capsule::json::from_bytes(original.as_bytes()).unwrap_or(Value::Null),
                &value,
            );
            // Keep the author's own formatting: write the text as edited.
            let mut out = tempfile::NamedTempFile::new_in(path.parent().unwrap())?;
            out.write_all(&text)?;
            out.as_file().sync_all()?;
            out.persist(&path).map_err(|e| e.error)?;
            writeln!(anstream::stdout(), "Updated {file}")?;
            print_changes(&changes)?;
            report_remaining(&after)?;
            return Ok(Outcome::Ok);
        }
        let mut err = anstream::stderr();
        for problem in &problems {
            writeln!(err, "{}", output::problem_line(problem))?;
        }
        if interactive {
            write!(
                err,
                "Reopen the editor to fix {}? [Y/n] ",
                count(problems.len(), "problem")
            )?;
            err.flush()?;
            let mut answer = String::new();
            std::io::stdin().read_line(&mut answer)?;
            if !answer.trim().eq_ignore_ascii_case("n") {
                continue;
            }
        }
        let kept = keep_edit(&clone, &args.id, &text)?;
        writeln!(
            err,
            "{} {} is unchanged; your edit is kept in {}",
            output::bad("not saved:"),
            capsule::deposit::metadata_path(&args.id),
            kept.display()
        )?;
        return Ok(Outcome::Problems);
    }
}

/// Keeps an edit that could not be saved, inside the git directory (never committed).
fn keep_edit(clone: &Clone, id: &str, text: &[u8]) -> anyhow::Result<PathBuf> {
    let dir = clone.repo.path().join("capsule").join("edits");
    std::fs::create_dir_all(&dir)?;
    let stamp: String = capsule::authoring::now()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let path = dir.join(format!("{id}-{stamp}.json"));
    std::fs::write(&path, text)?;
    Ok(path)
}

#[derive(Debug, Args)]
#[command(
    after_help = "Files are copied into the deposit's folder, deposits/<shard>/<ID>/ (or a folder
inside it with --to). A folder is copied with everything in it, keeping its name and
layout (cap-client uploaded a folder as one tarball; in git each file stays visible
and versioned on its own). Files larger than the archive's policy.max_file_bytes are
refused: track them with Git LFS (`git lfs track`) and attach the pointer git-lfs
writes, which capsule recognises. Symbolic links, a .git folder and names git cannot
hold are refused. Nothing is copied unless every file can be.

Examples:
  capsule attach zee plots/mass.pdf notes.md
  capsule attach zee ntuple.root --to data
  capsule attach zee analysis-code/          the folder, as analysis-code/..."
)]
pub struct AttachArgs {
    /// The deposit.
    id: String,
    /// The files and folders to attach.
    #[arg(required = true, value_name = "FILE|FOLDER")]
    files: Vec<PathBuf>,
    /// A folder inside the deposit to put them in.
    #[arg(long, value_name = "FOLDER")]
    to: Option<String>,
    /// Replace files that are already attached.
    #[arg(long)]
    force: bool,
    /// Print what was attached as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Attached {
    path: String,
    bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    lfs: Option<LfsPointer>,
}

/// Why a name found in a folder cannot be attached, if it cannot.
fn bad_name(name: &std::ffi::OsStr) -> Option<String> {
    let Some(text) = name.to_str() else {
        return Some("its name is not valid UTF-8; rename it".into());
    };
    if text.eq_ignore_ascii_case(".git") {
        return Some("it is a git repository's .git: record code with `capsule capture-repo ID URL --bundle` instead, or leave .git out".into());
    }
    if text.chars().any(|c| c.is_control() || c == '\\') {
        return Some("its name holds a control character or a backslash, which the server refuses; rename it".into());
    }
    None
}

/// Every file under `dir` as (path on disk, path relative to `dir`'s parent, with `/`),
/// sorted; what cannot be attached goes to `refused`.
fn files_in(
    dir: &std::path::Path,
    prefix: &str,
    out: &mut Vec<(PathBuf, String)>,
    refused: &mut Vec<String>,
) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the folder {}", dir.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("cannot read the folder {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if let Some(why) = bad_name(&entry.file_name()) {
            refused.push(format!("{}: {why}", path.display()));
            continue;
        }
        let rel = format!("{prefix}/{}", entry.file_name().to_string_lossy());
        let kind = entry
            .file_type()
            .with_context(|| format!("cannot read {}", path.display()))?;
        if kind.is_symlink() {
            refused.push(format!("{} is a symbolic link: an archive holds only files and folders (the server refuses links); copy what it points to instead", path.display()));
        } else if kind.is_dir() {
            files_in(&path, &rel, out, refused)?;
        } else if kind.is_file() {
            out.push((path, rel));
        } else {
            refused.push(format!(
                "{} is neither a file nor a folder; leave it out",
                path.display()
            ));
        }
    }
    Ok(())
}

pub fn attach(args: AttachArgs) -> anyhow::Result<Outcome> {
    let clone = Clone::open()?;
    clone.deposit(&args.id)?;
    let max = clone.settings.policy.max_file_bytes;
    let folder = match &args.to {
        Some(to) => {
            let clean = to.trim_matches('/');
            if clean
                .split('/')
                .any(|part| part.is_empty() || part == "." || part == ".." || part == "reviews")
                || clean == "reviews"
            {
                bail!(
                    "--to {to}: give a plain folder name inside the deposit (not .., not reviews)"
                );
            }
            capsule::deposit::file_path(&args.id, clean)
        }
        None => capsule::deposit::folder(&args.id),
    };
    // What to copy: (source, path inside `folder`).
    let mut sources: Vec<(PathBuf, String)> = Vec::new();
    let mut refused = Vec::new();
    for given in &args.files {
        let meta =
            std::fs::metadata(given).with_context(|| format!("cannot read {}", given.display()))?;
        // `capsule attach zee .` names the folder by its real name.
        let named = if meta.is_dir() {
            std::fs::canonicalize(given)?
        } else {
            given.clone()
        };
        let name = named
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{} has no usable file name", given.display()))?;
        if let Some(why) = bad_name(std::ffi::OsStr::new(name)) {
            refused.push(format!("{}: {why}", given.display()));
        } else if meta.is_dir() {
            if name == "reviews" && args.to.is_none() {
                bail!("a folder named reviews would land in the deposit's reviews/, which holds only review files: use --to, or rename it");
            }
            files_in(given, name, &mut sources, &mut refused)?;
        } else if meta.is_file() {
            if name == "deposit.json" && args.to.is_none() {
                bail!("a file named deposit.json would replace the deposit's metadata: rename it, or use --to");
            }
            sources.push((given.clone(), name.to_string()));
        } else {
            bail!("{} is neither a file nor a folder", given.display());
        }
    }
    let mut plan = Vec::new();
    for (file, rel) in sources {
        let target = format!("{folder}/{rel}");
        if clone.root.join(&target).exists() && !args.force {
            bail!("{target} exists already: use --force to replace it");
        }
        let meta =
            std::fs::metadata(&file).with_context(|| format!("cannot read {}", file.display()))?;
        let head = read_head(&file)?;
        let lfs = lfs_pointer(&head);
        if lfs.is_none() && meta.len() > max {
            refused.push(format!(
                "{} is {} bytes; the archive's limit is {max} bytes (policy.max_file_bytes). Track it with Git LFS: `git lfs track '{target}'`, copy it there, `git add` it, and commit the pointer",
                file.display(),
                meta.len()
            ));
            continue;
        }
        plan.push((file, target, meta.len(), lfs));
    }
    if !refused.is_empty() {
        for why in &refused {
            output::error(why);
        }
        writeln!(
            anstream::stderr(),
            "{} nothing was attached",
            output::bad("refused:")
        )?;
        return Ok(Outcome::Problems);
    }
    let attached = copy_all(&clone.root, plan)?;
    if args.json {
        output::json(&attached)?;
    } else {
        let mut out = anstream::stdout();
        for a in &attached {
            match &a.lfs {
                Some(lfs) => writeln!(
                    out,
                    "Attached {} (Git LFS pointer: {} bytes, {})",
                    a.path, lfs.size, lfs.oid
                )?,
                None => writeln!(out, "Attached {} ({} bytes)", a.path, a.bytes)?,
            }
        }
        writeln!(
            out,
            "Commit and push them: git add {} && git commit",
            capsule::deposit::folder(&args.id)
        )?;
    }
    Ok(Outcome::Ok)
}

/// Copies every planned file in two steps, so that an error leaves nothing behind:
/// first each file into a temporary file beside its target (a failure drops them all,
/// and the folders this run made), then every temporary file renamed into place.
fn copy_all(
    root: &std::path::Path,
    plan: Vec<(PathBuf, String, u64, Option<LfsPointer>)>,
) -> anyhow::Result<Vec<Attached>> {
    let mut made: Vec<PathBuf> = Vec::new();
    let mut staged = Vec::new();
    let mut stage = || -> anyhow::Result<()> {
        for (source, target, bytes, lfs) in &plan {
            let destination = root.join(target);
            let parent = destination.parent().expect("inside the deposit");
            // Remember the first folder on the way that does not exist yet.
            let mut missing = None;
            for dir in parent.ancestors() {
                if dir.exists() {
                    break;
                }
                missing = Some(dir.to_path_buf());
            }
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
            made.extend(missing);
            let mut partial = tempfile::NamedTempFile::new_in(parent)?;
            std::io::copy(
                &mut std::fs::File::open(source)
                    .with_context(|| format!("cannot read {}", source.display()))?,
                &mut partial,
            )
            .with_context(|| format!("cannot copy {}", source.display()))?;
            partial.as_file().sync_all()?;
            staged.push((partial, destination, target.clone(), *bytes, lfs.clone()));
        }
        Ok(())
    };
    if let Err(e) = stage() {
        drop(staged);
        for dir in made.iter().rev() {
            let _ = std::fs::remove_dir_all(dir);
        }
        return Err(e.context("nothing was attached"));
    }
    let mut attached = Vec::new();
    for (partial, destination, path, bytes, lfs) in staged {
        partial.persist(&destination).map_err(|e| e.error)?;
        attached.push(Attached { path, bytes, lfs });
    }
    Ok(attached)
}

fn read_head(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(path)?
        .take(1025)
        .read_to_end(&mut head)?;
    Ok(head)
}
