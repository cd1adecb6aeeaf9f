//! BagIt 1.0 (RFC 8493) bags: built in memory, written as a folder or a zip, and
//! verified again later.
//!
//! A bag is `bagit.txt`, `bag-info.txt`, the payload under `data/`, and for each of
//! SHA-256 and SHA-512 a payload manifest (`manifest-<alg>.txt`) and a tag manifest
//! (`tagmanifest-<alg>.txt`). Lines are sorted by path and end in LF, and the bag
//! carries no time but the ones it is given, so the same content makes the same bytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256, Sha512};

const BAGIT_TXT: &str = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n";
const ALGORITHMS: [&str; 2] = ["sha256", "sha512"];

fn digest(algorithm: &str, bytes: &[u8]) -> String {
    let hex = |d: &[u8]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
    match algorithm {
        "sha256" => hex(&Sha256::digest(bytes)),
        _ => hex(&Sha512::digest(bytes)),
    }
}

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    digest("sha256", bytes)
}

/// A manifest path: RFC 8493 §2.1.3 percent-encodes CR, LF and `%`.
fn encode_path(path: &str) -> String {
    path.replace('%', "%25")
        .replace('\n', "%0A")
        .replace('\r', "%0D")
}

fn decode_path(path: &str) -> String {
    path.replace("%0A", "\n")
        .replace("%0a", "\n")
        .replace("%0D", "\r")
        .replace("%0d", "\r")
        .replace("%25", "%")
}

/// A bag being assembled.
#[derive(Debug, Default)]
pub struct Bag {
    /// Payload files by path under `data/` (without the `data/` prefix), with whether
    /// they are executable.
    payload: BTreeMap<String, (Vec<u8>, bool)>,
    info: Vec<(String, String)>,
}

/// Every file of a finished bag: path relative to the bag, bytes, executable.
pub type BagFiles = Vec<(String, Vec<u8>, bool)>;

impl Bag {
    pub fn new() -> Bag {
        Bag::default()
    }

    /// Adds a payload file at `data/<path>`.
    pub fn add(&mut self, path: &str, bytes: Vec<u8>, executable: bool) {
        self.payload.insert(path.to_string(), (bytes, executable));
    }

    /// Adds a `bag-info.txt` line (kept in the order added).
    pub fn info(&mut self, label: &str, value: &str) {
        // A value may not break the line: newlines become spaces.
        let value = value.replace(['\r', '\n'], " ");
        self.info.push((label.to_string(), value));
    }

    /// The payload files so far, `data/`-relative.
    pub fn payload(&self) -> impl Iterator<Item = (&String, &Vec<u8>)> {
        self.payload.iter().map(|(p, (b, _))| (p, b))
    }

    /// Every file of the bag, sorted by path.
    pub fn finish(mut self) -> BagFiles {
        let octets: usize = self.payload.values().map(|(b, _)| b.len()).sum();
        self.info.push((
            "Payload-Oxum".into(),
            format!("{octets}.{}", self.payload.len()),
        ));
        let mut files: BTreeMap<String, (Vec<u8>, bool)> = BTreeMap::new();
        files.insert("bagit.txt".into(), (BAGIT_TXT.as_bytes().to_vec(), false));
        let info: String = self
            .info
            .iter()
            .map(|(k, v)| format!("{k}: {v}\n"))
            .collect();
        files.insert("bag-info.txt".into(), (info.into_bytes(), false));
        for algorithm in ALGORITHMS {
            let manifest: String = self
                .payload
                .iter()
                .map(|(path, (bytes, _))| {
                    format!("{}  data/{}\n", digest(algorithm, bytes), encode_path(path))
                })
                .collect();
            files.insert(
                format!("manifest-{algorithm}.txt"),
                (manifest.into_bytes(), false),
            );
        }
        // Tag manifests list every tag file except tag manifests themselves.
        let tag_files: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|(p, (b, _))| (p.clone(), b.clone()))
            .collect();
        for algorithm in ALGORITHMS {
            let manifest: String = tag_files
                .iter()
                .map(|(path, bytes)| format!("{}  {}\n", digest(algorithm, bytes), path))
                .collect();
            files.insert(
                format!("tagmanifest-{algorithm}.txt"),
                (manifest.into_bytes(), false),
            );
        }
        for (path, (bytes, executable)) in self.payload {
            files.insert(format!("data/{path}"), (bytes, executable));
        }
        files.into_iter().map(|(p, (b, x))| (p, b, x)).collect()
    }
}

/// Writes a bag as folder `dir` (which must not exist): into a temporary folder
/// beside it first, then renamed, so a bag is whole or absent.
pub fn write_folder(files: &BagFiles, dir: &Path) -> std::io::Result<()> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let scratch = tempfile::Builder::new()
        .prefix(".bag-")
        .tempdir_in(parent)?;
    for (path, bytes, executable) in files {
        let target = scratch.path().join(path);
        if let Some(folder) = target.parent() {
            std::fs::create_dir_all(folder)?;
        }
        std::fs::write(&target, bytes)?;
        #[cfg(unix)]
        if *executable {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    let kept = scratch.keep();
    std::fs::rename(&kept, dir).inspect_err(|_| {
        let _ = std::fs::remove_dir_all(&kept);
    })
}

/// Writes a bag as one zip file whose entries sit under `name/` (the bag's folder
/// name), atomically.
pub fn write_zip(files: &BagFiles, name: &str, file: &Path) -> std::io::Result<()> {
    let entries: Vec<(String, &[u8], bool)> = files
        .iter()
        .map(|(p, b, x)| (format!("{name}/{p}"), b.as_slice(), *x))
        .collect();
    let bytes = super::zip::write(&entries).map_err(std::io::Error::other)?;
    let parent = file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let mut partial = tempfile::NamedTempFile::new_in(parent)?;
    std::io::Write::write_all(&mut partial, &bytes)?;
    partial.as_file().sync_all()?;
    partial.persist(file).map_err(|e| e.error)?;
    Ok(())
}

/// Reads a bag's files: a folder, or a zip written by [`write_zip`] (its single top
/// folder stripped).
fn read_bag(path: &Path) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut files = BTreeMap::new();
    if path.is_dir() {
        fn walk(
            root: &Path,
            dir: &Path,
            files: &mut BTreeMap<String, Vec<u8>>,
        ) -> std::io::Result<()> {
            for entry in std::fs::read_dir(dir)? {
                let entry = entry?;
                let path = entry.path();
                if entry.file_type()?.is_dir() {
                    walk(root, &path, files)?;
                } else {
                    let rel = path.strip_prefix(root).unwrap_or(&path);
                    let rel = rel
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join("/");
                    files.insert(rel, std::fs::read(&path)?);
                }
            }
            Ok(())
        }
        walk(path, path, &mut files).map_err(|e| format!("cannot read the bag: {e}"))?;
    } else {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read the bag: {e}"))?;
        for (name, data) in super::zip::read(&bytes)? {
            let Some((_, rest)) = name.split_once('/') else {
                return Err(format!("zip entry {name} is not inside the bag's folder"));
            };
            files.insert(rest.to_string(), data);
        }
    }
    Ok(files)
}

/// Checks a bag against its manifests: every listed file present with its digests
/// (SHA-256 and SHA-512, payload and tag manifests), every payload file listed, the
/// Payload-Oxum right. Returns every problem found (empty: the bag is complete and
/// valid).
pub fn verify(path: &Path) -> Vec<String> {
    let files = match read_bag(path) {
        Ok(files) => files,
        Err(e) => return vec![e],
    };
    let mut problems = Vec::new();
    match files.get("bagit.txt") {
        Some(b) if b == BAGIT_TXT.as_bytes() => {}
        Some(_) => problems.push("bagit.txt is not a BagIt 1.0 declaration".into()),
        None => problems.push("bagit.txt is missing: this is not a bag".into()),
    }
    let mut manifests = 0;
    for (name, bytes) in &files {
        let (kind, algorithm) = match name.strip_suffix(".txt") {
            Some(n) if n.starts_with("manifest-") => ("payload", &n["manifest-".len()..]),
            Some(n) if n.starts_with("tagmanifest-") => ("tag", &n["tagmanifest-".len()..]),
            _ => continue,
        };
        if !ALGORITHMS.contains(&algorithm) {
            problems.push(format!("{name}: capsule checks sha256 and sha512 only"));
            continue;
        }
        manifests += usize::from(kind == "payload");
        let text = String::from_utf8_lossy(bytes);
        let mut listed = std::collections::BTreeSet::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let Some((sum, file)) = line.split_once(char::is_whitespace) else {
                problems.push(format!("{name}: malformed line `{line}`"));
                continue;
            };
            let file = decode_path(file.trim_start());
            listed.insert(file.clone());
            match files.get(&file) {
                None => problems.push(format!("{file} is listed in {name} but missing")),
                Some(content) if digest(algorithm, content) != sum.to_ascii_lowercase() => {
                    problems.push(format!(
                        "{file} does not match its {algorithm} digest in {name}: it changed since the bag was written"
                    ))
                }
                Some(_) => {}
            }
        }
        if kind == "payload" {
            for file in files.keys().filter(|f| f.starts_with("data/")) {
                if !listed.contains(file) {
                    problems.push(format!("{file} is in the payload but not in {name}"));
                }
            }
        }
    }
    if manifests == 0 {
        problems.push("the bag has no payload manifest".into());
    }
    if let Some(info) = files.get("bag-info.txt") {
        let info = String::from_utf8_lossy(info);
        if let Some(oxum) = info.lines().find_map(|l| l.strip_prefix("Payload-Oxum: ")) {
            let payload: Vec<&Vec<u8>> = files
                .iter()
                .filter(|(p, _)| p.starts_with("data/"))
                .map(|(_, b)| b)
                .collect();
            let octets: usize = payload.iter().map(|b| b.len()).sum();
            if oxum.trim() != format!("{octets}.{}", payload.len()) {
                problems.push(format!(
                    "Payload-Oxum says {oxum}, but the payload holds {octets} bytes in {} files",
                    payload.len()
                ));
            }
        }
    }
    problems
}

/// Every bag under `dir`: folders holding `bagit.txt`, and `.zip` files.
pub fn find_bags(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    if dir.join("bagit.txt").is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    if dir.is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let is_bag = (path.is_dir() && path.join("bagit.txt").is_file())
            || path.extension().is_some_and(|e| e == "zip");
        if is_bag {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bags_verify_and_find_damage() {
        let mut bag = Bag::new();
        bag.add("a.txt", b"hello".to_vec(), false);
        bag.add("odd%name\n.txt", b"x".to_vec(), false);
        bag.info("Source-Organization", "Test");
        let files = bag.finish();
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("bag");
        write_folder(&files, &folder).unwrap();
        assert_eq!(verify(&folder), Vec::<String>::new());
        let zip = dir.path().join("bag.zip");
        write_zip(&files, "bag", &zip).unwrap();
        assert_eq!(verify(&zip), Vec::<String>::new());

        std::fs::write(folder.join("data/a.txt"), b"hellO").unwrap();
        std::fs::write(folder.join("data/extra"), b"").unwrap();
        let problems = verify(&folder).join("\n");
        assert!(problems.contains("data/a.txt does not match"), "{problems}");
        assert!(
            problems.contains("data/extra is in the payload but not"),
            "{problems}"
        );
        assert!(problems.contains("Payload-Oxum"), "{problems}");
    }
}
