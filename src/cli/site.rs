//! `capsule build` and `capsule serve`: the static site.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use capsule::site::{build, downloads, BuildOptions, BuildReport, Progress, Quiet};

use super::output::{self, count};
use super::Outcome;

#[derive(Debug, Args)]
#[command(
    after_help = "The site holds the published records (record tags): a landing page per
record with every version and the changes between them, listings by schema,
experiment, year, keyword and person, schema documentation, browser-side search,
a JSON API at CAP's routes, a sitemap and an Atom feed. Links are relative, so the
folder works from any web server, any sub-path and from file://.

A public build leaves out drafts, deposits not readable by everyone under _access,
and reviews marked internal. --drafts builds an internal site with all of them.

Examples:
  capsule build
  capsule build --out /srv/www/analyses --base-url https://analyses.example.org
  capsule build --drafts --out /srv/internal"
)]
pub struct BuildArgs {
    /// Build from this revision (reviews, schemas, theme, drafts); default: the default branch.
    #[arg(long, value_name = "REF")]
    rev: Option<String>,
    /// The folder to write (replaced as a whole; default: _site in the archive).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// An internal site: add the drafts of the branch, restricted deposits and internal reviews.
    #[arg(long)]
    drafts: bool,
    /// The site's public address, for the sitemap, the feed and the API's links.
    #[arg(long, value_name = "URL")]
    base_url: Option<String>,
    /// Render everything, even what did not change since the last build.
    #[arg(long)]
    full: bool,
    /// Print the build report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Builds the site, serves it on 127.0.0.1, and rebuilds it whenever the
repository changes (a commit, a pull, a new record tag); open pages reload by
themselves. Stop it with Ctrl-C."
)]
pub struct ServeArgs {
    /// The port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// Serve the internal site (drafts, restricted deposits, internal reviews).
    #[arg(long)]
    drafts: bool,
    /// Build from this revision instead of the default branch.
    #[arg(long, value_name = "REF")]
    rev: Option<String>,
    /// The folder to build into (default: _site, or _site-internal with --drafts).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// The repository around the current folder, and where its site goes by default.
/// Called first thing, so it also tunes libgit2 for reading every record (see
/// [`capsule::archive::tune_object_reads_for_bulk`]) before any object is read.
fn locate() -> anyhow::Result<(PathBuf, PathBuf)> {
    capsule::archive::tune_object_reads_for_bulk()?;
    let cwd = std::env::current_dir()?;
    let repo = git2::Repository::discover(&cwd).context(
        "not inside a git repository: run this in an archive (a clone or the server's repository)",
    )?;
    let home = repo
        .workdir()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| cwd.clone());
    Ok((repo.path().to_path_buf(), home))
}

struct Bar(indicatif::ProgressBar);

impl Progress for Bar {
    fn begin(&self, total: u64) {
        self.0.set_length(total);
    }
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
    fn end(&self) {
        self.0.finish_and_clear();
    }
}

/// A progress bar on a terminal, for builds with enough records to wait for.
fn progress_bar() -> Option<Bar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("rendering {pos}/{len} records [{bar:30}] {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    Some(Bar(bar))
}

pub fn run_build(args: BuildArgs) -> anyhow::Result<Outcome> {
    let (repo, home) = locate()?;
    let options = BuildOptions {
        rev: args.rev,
        out: args.out.unwrap_or_else(|| home.join("_site")),
        drafts: args.drafts,
        base_url: args.base_url,
        incremental: !args.full,
    };
    let bar = if args.json { None } else { progress_bar() };
    let report = match &bar {
        Some(bar) => build(&repo, &options, bar),
        None => build(&repo, &options, &Quiet),
    }?;
    if args.json {
        output::json(&report)?;
    } else {
        print_report(&report)?;
        let out = report.out.display();
        writeln!(
            anstream::stdout(),
            "Open {out}/index.html in a browser, or run `capsule serve{}` to browse it at http://127.0.0.1:8000/",
            if report.internal { " --drafts" } else { "" }
        )?;
    }
    Ok(Outcome::Ok)
}

fn print_report(report: &BuildReport) -> anyhow::Result<()> {
    let mut out = anstream::stdout();
    for w in &report.warnings {
        output::warning(w);
    }
    let kind = if report.internal {
        "internal site"
    } else {
        "public site"
    };
    let mut records = count(report.records, "record");
    if report.drafts > 0 {
        records.push_str(&format!(" ({} drafts)", report.drafts));
    }
    writeln!(
        out,
        "{} {kind} of {records} from {} into {}",
        output::ok("Built"),
        report.rev,
        report.out.display()
    )?;
    let how = if report.incremental {
        format!(
            "incremental: {} re-rendered, {} and {} written",
            count(report.rendered_records, "record"),
            count(report.files_written, "file"),
            human(report.bytes_written)
        )
    } else {
        format!("{}, {}", count(report.files, "file"), human(report.bytes))
    };
    let secs = report.elapsed.as_secs_f64();
    let rate = if secs > 0.0 && report.rendered_records > 0 {
        format!(", {:.0} records/s", report.rendered_records as f64 / secs)
    } else {
        String::new()
    };
    writeln!(
        out,
        "  {} ({how}) in {secs:.2} s{rate}",
        count(report.pages, "page")
    )?;
    if report.excluded_records > 0 && !report.internal {
        writeln!(
            out,
            "  {} not shown: not readable by everyone under _access",
            count(report.excluded_records, "deposit")
        )?;
    }
    if let Some(s) = &report.search {
        writeln!(
            out,
            "  search: {} documents, {} terms in {} shards ({}, largest shard {})",
            s.documents,
            s.terms,
            s.shards,
            human(s.bytes),
            human(s.largest_shard_bytes)
        )?;
    }
    if !report.theme_overrides.is_empty() {
        writeln!(
            out,
            "  theme overrides: {}",
            report.theme_overrides.join(", ")
        )?;
    }
    Ok(())
}

fn human(bytes: u64) -> String {
    if bytes < 1000 {
        format!("{bytes} bytes")
    } else if bytes < 1_000_000 {
        format!("{:.1} kB", bytes as f64 / 1e3)
    } else {
        format!("{:.1} MB", bytes as f64 / 1e6)
    }
}

/// Builds the site from `capsule.toml`'s `[site] out` for the post-receive hook.
/// Never fails the push: problems are reported as warnings.
pub fn rebuild_after_push(git_dir: &Path) {
    if capsule::archive::tune_object_reads_for_bulk().is_err() {
        return;
    }
    let Ok(repo) = git2::Repository::open(git_dir) else {
        return;
    };
    let Some(settings) = repo
        .revparse_single("HEAD")
        .and_then(|o| o.peel_to_commit())
        .ok()
        .and_then(|c| capsule::archive::GitTree::at_commit(&repo, c.id()).ok())
        .and_then(|t| t.read("capsule.toml").ok().flatten())
        .and_then(|b| capsule::settings::Settings::parse(&String::from_utf8_lossy(&b)).ok())
    else {
        return;
    };
    let Some(out) = settings.site.out.clone() else {
        return;
    };
    let out = if Path::new(&out).is_absolute() {
        PathBuf::from(out)
    } else {
        repo.path().join(out)
    };
    let options = BuildOptions {
        rev: None,
        out,
        drafts: settings.site.drafts,
        base_url: None,
        incremental: true,
    };
    match build(repo.path(), &options, &Quiet) {
        Ok(report) => {
            let _ = writeln!(
                anstream::stderr(),
                "capsule: site rebuilt in {:.2} s ({}, {} re-rendered)",
                report.elapsed.as_secs_f64(),
                count(report.records, "record"),
                report.rendered_records
            );
        }
        Err(e) => output::warning(&format!(
            "the site was not rebuilt ({e}); the push landed and the previous site is unchanged"
        )),
    }
}

pub fn run_serve(args: ServeArgs) -> anyhow::Result<Outcome> {
    let (repo, home) = locate()?;
    let out = args.out.unwrap_or_else(|| {
        home.join(if args.drafts {
            "_site-internal"
        } else {
            "_site"
        })
    });
    let server = tiny_http::Server::http(("127.0.0.1", args.port))
        .map_err(|e| anyhow::anyhow!("cannot listen on 127.0.0.1:{}: {e}", args.port))?;
    let port = server
        .server_addr()
        .to_ip()
        .map(|a| a.port())
        .unwrap_or(args.port);
    let options = BuildOptions {
        rev: args.rev,
        out: out.clone(),
        drafts: args.drafts,
        base_url: Some(format!("http://127.0.0.1:{port}")),
        incremental: true,
    };
    // Read before the build, so that a change during it still leads to a rebuild.
    let state = refs_state(&repo);
    let report = build(&repo, &options, &Quiet)?;
    print_report(&report)?;
    let mut stdout = anstream::stdout();
    writeln!(
        stdout,
        "Serving {} at http://127.0.0.1:{port}/ (Ctrl-C stops); rebuilding when the repository changes",
        out.display()
    )?;
    stdout.flush()?;
    let generation = Arc::new(AtomicU64::new(1));
    {
        let generation = generation.clone();
        let repo = repo.clone();
        std::thread::spawn(move || watch_and_rebuild(&repo, &options, state, &generation));
    }
    for request in server.incoming_requests() {
        let _ = respond(request, &out, &generation);
    }
    Ok(Outcome::Ok)
}

/// Rebuilds whenever what a build reads from git changes: a commit, a pull, a new
/// record tag. Notify wakes us for any write under `refs/`, `packed-refs` or `HEAD`
/// (and on some systems for reads too: a build reads HEAD and every ref, so reacting
/// to the events alone rebuilt in a loop). Events are only a hint: a rebuild happens
/// when the refs' state differs from the one the last build started from.
fn watch_and_rebuild(
    repo: &Path,
    options: &BuildOptions,
    mut built: Option<RefsState>,
    generation: &AtomicU64,
) {
    use notify::{RecursiveMode, Watcher};
    let (tx, rx) = std::sync::mpsc::channel();
    let mut watcher = match notify::recommended_watcher(tx) {
        Ok(w) => w,
        Err(e) => {
            output::warning(&format!("cannot watch the repository ({e}); no rebuilds"));
            return;
        }
    };
    if let Err(e) = watcher.watch(repo, RecursiveMode::Recursive) {
        output::warning(&format!(
            "cannot watch {} ({e}); no rebuilds",
            repo.display()
        ));
        return;
    }
    let relevant = |event: &notify::Event| {
        !matches!(event.kind, notify::EventKind::Access(_))
            && event.paths.iter().any(|p| {
                let rel = p.strip_prefix(repo).unwrap_or(p);
                let first = rel
                    .components()
                    .next()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned());
                matches!(first.as_deref(), Some("refs" | "packed-refs" | "HEAD"))
            })
    };
    loop {
        let Ok(event) = rx.recv() else { return };
        if !event.as_ref().is_ok_and(relevant) {
            continue;
        }
        // Let a burst of ref updates (a fetch, a push of tags) settle.
        while rx.recv_timeout(Duration::from_millis(250)).is_ok() {}
        let now = refs_state(repo);
        if now.is_some() && now == built {
            continue;
        }
        match build(repo, options, &Quiet) {
            Ok(report) => {
                built = now;
                generation.fetch_add(1, Ordering::SeqCst);
                let mut stdout = anstream::stdout();
                let _ = writeln!(
                    stdout,
                    "Rebuilt: {} re-rendered in {:.2} s",
                    count(report.rendered_records, "record"),
                    report.elapsed.as_secs_f64()
                );
                let _ = stdout.flush();
            }
            Err(e) => output::error(&format!(
                "rebuild failed, still serving the previous site: {e}"
            )),
        }
    }
}

/// Where HEAD points and what every ref names, sorted: all of git's state a build reads
/// that can move (objects never change).
type RefsState = Vec<(String, String)>;

/// The repository's [`RefsState`]; `None` when it cannot be read.
fn refs_state(repo: &Path) -> Option<RefsState> {
    let repo = git2::Repository::open(repo).ok()?;
    let target = |r: &git2::Reference<'_>| {
        r.target()
            .map(|o| o.to_string())
            .or_else(|| r.symbolic_target().map(str::to_string))
            .unwrap_or_default()
    };
    let mut state = Vec::new();
    if let Ok(head) = repo.find_reference("HEAD") {
        state.push(("HEAD".to_string(), target(&head)));
    }
    for reference in repo.references().ok()? {
        let reference = reference.ok()?;
        let name = String::from_utf8_lossy(reference.name_bytes()).into_owned();
        state.push((name, target(&reference)));
    }
    state.sort();
    Some(state)
}

/// The script that reloads an open page after a rebuild; only added to served pages,
/// never written into the site.
const RELOAD: &str = r#"<script>(function(){var g=null;setInterval(function(){fetch("/__capsule/generation").then(function(r){return r.text()}).then(function(t){if(g!==null&&t!==g)location.reload();g=t}).catch(function(){})},1000)})();</script>"#;

fn respond(request: tiny_http::Request, out: &Path, generation: &AtomicU64) -> std::io::Result<()> {
    let url = request
        .url()
        .split(['?', '#'])
        .next()
        .unwrap_or("/")
        .to_string();
    if url == "/__capsule/generation" {
        let body = generation.load(Ordering::SeqCst).to_string();
        return request.respond(tiny_http::Response::from_string(body));
    }
    let Some(path) = resolve(out, &url) else {
        return not_found(request, out);
    };
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(_) => return not_found(request, out),
    };
    // A deposit's file is a download in a sandbox, whatever it holds (see
    // `capsule::site::downloads`); everything else is a page or an asset of the site.
    let in_site = path.strip_prefix(out).unwrap_or(&path);
    let download = in_site
        .components()
        .next()
        .is_some_and(|c| c.as_os_str() == downloads::FOLDER);
    let kind = if download {
        "application/octet-stream"
    } else {
        content_type(&path)
    };
    let body = if kind.starts_with("text/html") {
        inject_reload(bytes)
    } else {
        bytes
    };
    let mut response =
        tiny_http::Response::from_data(body).with_header(header("Content-Type", kind));
    if download {
        for (name, value) in downloads::HEADERS {
            response.add_header(header(name, value));
        }
    } else {
        response.add_header(header("X-Content-Type-Options", "nosniff"));
    }
    request.respond(response)
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("valid header")
}

fn not_found(request: tiny_http::Request, out: &Path) -> std::io::Result<()> {
    let body = std::fs::read(out.join("404.html")).unwrap_or_else(|_| b"Not found".to_vec());
    request.respond(
        tiny_http::Response::from_data(inject_reload(body))
            .with_status_code(404)
            .with_header(header("Content-Type", "text/html; charset=utf-8")),
    )
}

fn inject_reload(bytes: Vec<u8>) -> Vec<u8> {
    let text = String::from_utf8_lossy(&bytes);
    match text.rfind("</body>") {
        Some(i) => format!("{}{RELOAD}{}", &text[..i], &text[i..]).into_bytes(),
        None => bytes,
    }
}

/// A URL path to a file of the site: percent-decoded, never outside it; folders give
/// their index.html or index.json.
fn resolve(out: &Path, url: &str) -> Option<PathBuf> {
    let decoded = percent_decode(url)?;
    let mut path = out.to_path_buf();
    for part in decoded.split('/').filter(|p| !p.is_empty()) {
        if part == ".." || part == "." || part.contains('\\') {
            return None;
        }
        path.push(part);
    }
    if path.is_dir() {
        for index in ["index.html", "index.json"] {
            if path.join(index).is_file() {
                return Some(path.join(index));
            }
        }
        return None;
    }
    path.is_file().then_some(path)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_site() {
        let dir = tempfile::TempDir::new().unwrap();
        std::fs::create_dir_all(dir.path().join("a b")).unwrap();
        std::fs::write(dir.path().join("a b/index.html"), "x").unwrap();
        assert!(resolve(dir.path(), "/a%20b/").is_some());
        assert!(resolve(dir.path(), "/../etc/passwd").is_none());
        assert!(resolve(dir.path(), "/a%2F..%2F..%2Fx").is_none());
        assert_eq!(percent_decode("%41b").as_deref(), Some("Ab"));
    }
}
