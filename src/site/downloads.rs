//! Where a site keeps copies of deposits' files, and how they must be served.
//!
//! A deposit's file is whatever its authors pushed: an `.html` or `.svg` with a script
//! in it is as welcome as a CSV. Served as a page of the site's origin, such a file
//! would run with the site's cookies and storage. So every copy lives under one folder,
//! [`FOLDER`], that a web server can match with a single prefix, and is served with
//! [`HEADERS`]: as an attachment, in a sandbox without an origin, never sniffed into
//! something active. `capsule serve` sends them; the build writes them into `_headers`
//! for static hosts that read that file (Netlify, Cloudflare Pages); docs/site.md gives
//! the same recipe for nginx and Apache.

use super::util::encode_path;

/// The site's folder of deposit files: `files/<id>/v<N>/<path in the deposit>`.
pub const FOLDER: &str = "files";

/// The headers every file under [`FOLDER`] is served with.
pub const HEADERS: [(&str, &str); 3] = [
    ("Content-Disposition", "attachment"),
    ("Content-Security-Policy", "sandbox"),
    ("X-Content-Type-Options", "nosniff"),
];

/// Where the copy of a deposit's file is written, relative to the site.
pub fn file_path(id: &str, version: u32, path: &str) -> String {
    format!("{FOLDER}/{id}/v{version}/{path}")
}

/// The same place as a URL path (for links and the API).
pub fn file_link(id: &str, version: u32, path: &str) -> String {
    format!("{FOLDER}/{id}/v{version}/{}", encode_path(path))
}

/// Whether a path of the site (relative, `/`-separated, leading `/` allowed) is a
/// deposit's file.
pub fn is_deposit_file(site_path: &str) -> bool {
    site_path
        .trim_start_matches('/')
        .strip_prefix(FOLDER)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// `_headers`, in the format Netlify and Cloudflare Pages read from a site's root.
pub fn headers_file() -> String {
    let mut text = String::from(
        "# Written by capsule build: files from deposits are downloads, never pages of this site.\n",
    );
    text.push_str(&format!("/{FOLDER}/*\n"));
    for (name, value) in HEADERS {
        text.push_str(&format!("  {name}: {value}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_files_folder_holds_deposit_files() {
        assert!(is_deposit_file("/files/a/v1/evil.html"));
        assert!(is_deposit_file("files/a/v1/x"));
        assert!(!is_deposit_file("/files"));
        assert!(!is_deposit_file("/filesystem/a"));
        assert!(!is_deposit_file("/records/files/x"));
        assert_eq!(
            file_link("a", 2, "plots/mass fit.txt"),
            "files/a/v2/plots/mass%20fit.txt"
        );
        assert!(headers_file().contains("/files/*\n  Content-Disposition: attachment\n"));
    }
}
