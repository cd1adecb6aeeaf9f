//! Checks of a built site shared by the site tests: every file with its bytes, and
//! every internal link and fragment resolving.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every file of a site with its bytes.
pub fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.insert(path.strip_prefix(dir).unwrap().to_path_buf(), bytes);
            }
        }
    }
    out
}

pub fn read(dir: &Path, path: &str) -> String {
    std::fs::read_to_string(dir.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn unescape(text: &str) -> String {
    text.replace("&amp;", "&")
        .replace("&#x2F;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The values of `attr="..."` in an HTML text.
pub fn attributes(html: &str, attr: &str) -> Vec<String> {
    let needle = format!(" {attr}=\"");
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find(&needle) {
        rest = &rest[i + needle.len()..];
        let end = rest.find('"').unwrap();
        out.push(unescape(&rest[..end]));
        rest = &rest[end..];
    }
    out
}

/// Checks every `href` and `src` of every page: internal targets must exist, and
/// fragments must name an element of the target page. Returns how many were checked.
pub fn check_links(site: &Path) -> usize {
    let all = files(site);
    let mut ids: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    for (path, bytes) in &all {
        if path.extension().is_some_and(|e| e == "html") {
            let text = String::from_utf8_lossy(bytes);
            ids.insert(path.clone(), attributes(&text, "id").into_iter().collect());
        }
    }
    let mut checked = 0;
    let mut broken = Vec::new();
    for (path, bytes) in &all {
        if path.extension().is_none_or(|e| e != "html") || path == Path::new("404.html") {
            continue;
        }
        let text = String::from_utf8_lossy(bytes);
        for link in attributes(&text, "href")
            .into_iter()
            .chain(attributes(&text, "src"))
        {
            if link.starts_with("http://")
                || link.starts_with("https://")
                || link.starts_with("mailto:")
            {
                continue;
            }
            // A citation to download is in the page itself: nothing to resolve.
            if link.starts_with("data:application/x-bibtex;")
                || link.starts_with("data:application/vnd.citationstyles.csl+json;")
            {
                continue;
            }
            assert!(
                !link.contains("://") && !link.starts_with('/') && !link.starts_with("javascript:"),
                "{}: `{link}` is not a relative link",
                path.display()
            );
            checked += 1;
            let (target, fragment) = match link.split_once('#') {
                Some((t, f)) => (t.to_string(), Some(f.to_string())),
                None => (link.clone(), None),
            };
            let target = target.split('?').next().unwrap().to_string();
            let resolved = if target.is_empty() {
                path.clone()
            } else {
                let mut p = path.parent().unwrap().to_path_buf();
                for part in percent_decode(&target).split('/') {
                    match part {
                        ".." => {
                            if !p.pop() {
                                broken.push(format!("{}: {link} leaves the site", path.display()));
                            }
                        }
                        "." | "" => {}
                        other => p.push(other),
                    }
                }
                p
            };
            if !all.contains_key(&resolved) {
                broken.push(format!(
                    "{}: {link} -> {}",
                    path.display(),
                    resolved.display()
                ));
                continue;
            }
            if let Some(f) = fragment.filter(|f| !f.is_empty()) {
                if ids.get(&resolved).is_some_and(|set| !set.contains(&f)) {
                    broken.push(format!("{}: {link}: no element #{f}", path.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    checked
}
