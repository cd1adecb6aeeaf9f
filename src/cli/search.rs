//! `capsule index` and `capsule search`

use std::io::Write;

use anstyle::Style;
use anyhow::Context;
use clap::{Args, ValueEnum};
use git2::Repository;

use capsule::access::{local_user, Access};
use capsule::archive::GitTree;
use capsule::index::{
    export_ndjson, identities, search, templates, update, Facets, Hit, SearchRequest,
    SearchResults, Sort, Status, UpdateMode, UpdateReport,
};

use super::output::{self, count};
use super::Outcome;

const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();
const MARK: Style = Style::new().bold().underline();

#[derive(Debug, Args)]
pub struct IndexArgs {
    /// Index everything afresh instead of catching up with what changed.
    #[arg(long)]
    rebuild: bool,
    /// Print what the update did as JSON.
    #[arg(long)]
    json: bool,
    /// Write the drafts and record versions as OpenSearch `_bulk` NDJSON (all of them,
    /// or what changed since --since), instead of reporting the update.
    #[arg(long, value_enum, value_name = "FORMAT", conflicts_with = "mapping")]
    export: Option<ExportFormat>,
    /// With --export: only what changed since the default branch was at REV (a commit
    /// or any git revision), with deletions for deposits removed since.
    #[arg(long, value_name = "REV", requires = "export")]
    since: Option<String>,
    /// Write the OpenSearch index template of SCHEMA (name/version, or a name for its
    /// newest version), or of every schema, built from the schema.
    #[arg(long, value_name = "SCHEMA", num_args = 0..=1, default_missing_value = "")]
    mapping: Option<String>,
    /// Where --export or --mapping writes (default: standard output).
    #[arg(long, short, value_name = "FILE")]
    output: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    /// OpenSearch / Elasticsearch `_bulk` NDJSON.
    Ndjson,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Words, "phrases", field:value, AND / OR / NOT, -word, prefix* (see docs/search.md).
    /// Several arguments are joined with spaces; put `--` before a query that starts
    /// with `-`.
    #[arg(required = true, value_name = "QUERY")]
    query: Vec<String>,
    /// Only deposits of this schema: a name (`analysis`) or name/version.
    #[arg(long, value_name = "SCHEMA")]
    schema: Option<String>,
    /// Only deposits of this experiment (any case).
    #[arg(long, value_name = "EXPERIMENT")]
    experiment: Option<String>,
    /// Only drafts, or only published record versions.
    #[arg(long, value_enum)]
    status: Option<StatusArg>,
    /// Look for the words only in this deposit field and the fields below it
    /// (`basic_info.keywords`, or a JSON pointer such as `/basic_info`).
    #[arg(long, value_name = "PATH")]
    field: Option<String>,
    /// The order of hits.
    #[arg(long, value_enum, default_value_t = SortArg::Relevance)]
    sort: SortArg,
    /// Which page of hits to show (from 1).
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    page: u64,
    /// How many hits (analyses) a page holds.
    #[arg(long, visible_alias = "limit", default_value_t = 10, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    per_page: u64,
    /// Only deposits you own or hold access to (you: CAPSULE_USER, else the user
    /// whose e-mail is git's user.email in access.toml).
    #[arg(long)]
    mine: bool,
    /// Also count the matches per schema, experiment, status, year and keyword.
    #[arg(long)]
    facets: bool,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SortArg {
    Relevance,
    Newest,
    Title,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StatusArg {
    Draft,
    Published,
}

fn open_repository() -> anyhow::Result<Repository> {
    skip_hash_verification();
    Repository::open_from_env().context(
        "not inside a git repository: run capsule in an archive (a clone or the server's repository), or give -C DIR",
    )
}

/// Reading for the index need not re-hash every object: git verified each one when it
/// arrived, and re-hashing the large `deposits/` trees (SHA-1 with collision detection)
/// was a quarter of an update's time on a 100k archive. Process-wide, so only the index
/// commands (and post-receive, after the push was checked) turn it off.
pub fn skip_hash_verification() {
    git2::opts::strict_hash_verification(false);
}

pub fn run_index(args: IndexArgs) -> anyhow::Result<Outcome> {
    let repo = open_repository()?;
    if args.export.is_some() || args.mapping.is_some() {
        return run_export(&repo, &args);
    }
    let report = update(&repo, args.rebuild)?;
    warn_skipped(&report);
    if args.json {
        output::json(&report)?;
    } else {
        let mut out = anstream::stdout();
        writeln!(out, "{}", describe_update(&report))?;
        writeln!(out, "{DIM}{}{DIM:#}", report.path.display())?;
    }
    Ok(Outcome::Ok)
}

/// `--export` and `--mapping`: data on standard output (or --output), a summary on
/// standard error.
fn run_export(repo: &Repository, args: &IndexArgs) -> anyhow::Result<Outcome> {
    let mut sink: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    if let Some(schema) = &args.mapping {
        let schema = Some(schema.as_str()).filter(|s| !s.is_empty());
        let template = templates(repo, schema)?;
        serde_json::to_writer_pretty(&mut sink, &template)?;
        writeln!(sink)?;
        sink.flush()?;
        return Ok(Outcome::Ok);
    }
    let report = export_ndjson(repo, args.since.as_deref(), &mut sink)?;
    drop(sink);
    if args.json {
        let mut err = std::io::stderr().lock();
        serde_json::to_writer(&mut err, &report)?;
        writeln!(err)?;
    } else {
        eprintln!(
            "exported {}, {} and {}",
            count(report.drafts, "draft"),
            count(report.records, "record version"),
            count(report.deletions, "deletion")
        );
    }
    Ok(Outcome::Ok)
}

pub fn run_search(args: SearchArgs) -> anyhow::Result<Outcome> {
    let repo = open_repository()?;
    let request = SearchRequest {
        query: args.query.join(" "),
        schema: args.schema,
        experiment: args.experiment,
        status: args.status.map(|s| match s {
            StatusArg::Draft => Status::Draft,
            StatusArg::Published => Status::Published,
        }),
        field: args.field,
        sort: match args.sort {
            SortArg::Relevance => Sort::Relevance,
            SortArg::Newest => Sort::Newest,
            SortArg::Title => Sort::Title,
        },
        page: usize::try_from(args.page).unwrap_or(usize::MAX),
        per_page: usize::try_from(args.per_page).unwrap_or(usize::MAX),
        mine: if args.mine {
            Some(my_names(&repo)?)
        } else {
            None
        },
        facets: args.facets,
    };
    let results = search(&repo, &request)?;
    if let Some(report) = &results.refreshed {
        warn_skipped(report);
    }
    if args.json {
        output::json(&results)?;
    } else {
        render(&results)?;
    }
    // Like grep: 0 when something was found, 1 when nothing was.
    Ok(if results.hits.is_empty() {
        Outcome::Problems
    } else {
        Outcome::Ok
    })
}

/// The names `--mine` looks for: the current user (as `capsule edit` and the other
/// authoring commands find them), their e-mail and their groups, from the access.toml
/// of the checked-out commit (HEAD's tree in a bare repository).
fn my_names(repo: &Repository) -> anyhow::Result<Vec<String>> {
    let text = match repo.workdir() {
        Some(root) => std::fs::read_to_string(root.join("access.toml")).unwrap_or_default(),
        None => repo
            .head()
            .ok()
            .and_then(|h| h.peel_to_commit().ok())
            .and_then(|c| GitTree::at_commit(repo, c.id()).ok())
            .and_then(|tree| tree.read("access.toml").ok().flatten())
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .unwrap_or_default(),
    };
    let access = Access::parse(&text).map_err(|e| anyhow::anyhow!("{e}"))?;
    let email = repo
        .config()
        .ok()
        .and_then(|c| c.get_string("user.email").ok())
        .or_else(|| std::env::var("GIT_AUTHOR_EMAIL").ok());
    let user = local_user(&access, email.as_deref()).context(
        "--mine: cannot tell who you are: set CAPSULE_USER to your user name in access.toml, or git's user.email to your e-mail there",
    )?;
    Ok(identities(&access, &user))
}

fn warn_skipped(report: &UpdateReport) {
    for skipped in &report.skipped {
        output::warning(&format!("not indexed: {}", skipped.reason));
    }
}

fn describe_update(report: &UpdateReport) -> String {
    let what = match report.mode {
        UpdateMode::UpToDate => "search index is up to date".to_string(),
        UpdateMode::Incremental | UpdateMode::Full => {
            let mode = if report.mode == UpdateMode::Full {
                "rebuilt"
            } else {
                "updated"
            };
            let mut parts = vec![
                format!("{} indexed", count(report.drafts_indexed, "draft")),
                format!(
                    "{} indexed",
                    count(report.records_indexed, "record version")
                ),
            ];
            if report.drafts_removed > 0 {
                parts.push(format!("{} removed", count(report.drafts_removed, "draft")));
            }
            if report.records_removed > 0 {
                parts.push(format!(
                    "{} removed",
                    count(report.records_removed, "record version")
                ));
            }
            format!(
                "search index {mode} in {:.2} s: {}",
                report.seconds,
                parts.join(", ")
            )
        }
    };
    let at = match (&report.branch, &report.commit) {
        (Some(branch), Some(commit)) => {
            format!(" ({branch} at {})", &commit[..7.min(commit.len())])
        }
        _ => String::new(),
    };
    format!(
        "{what}{at}; {} in the index",
        count(report.documents as usize, "document")
    )
}

fn render(results: &SearchResults) -> anyhow::Result<()> {
    // One write for the whole answer rather than one per line.
    let mut out = std::io::BufWriter::new(anstream::stdout());
    for hit in &results.hits {
        render_hit(&mut out, hit)?;
    }
    if let Some(facets) = &results.facets {
        render_facets(&mut out, facets)?;
    }
    let analyses = match results.total {
        1 => "1 analysis".to_string(),
        n => format!("{n} analyses"),
    };
    let matches = format!(
        "{analyses} ({} matching)",
        count(results.versions, "version")
    );
    let summary = if results.total == 0 {
        format!("no matches for `{}`", results.query)
    } else if results.pages > 1 {
        let next = if results.page < results.pages {
            format!("; --page {} shows more", results.page + 1)
        } else {
            String::new()
        };
        format!(
            "{matches}; page {} of {}{next}",
            results.page, results.pages
        )
    } else {
        matches
    };
    writeln!(out, "{DIM}{summary}{DIM:#}")?;
    out.flush()?;
    Ok(())
}

fn render_hit(out: &mut impl Write, hit: &Hit) -> anyhow::Result<()> {
    // The versions, newest first; those that did not match in parentheses.
    let versions: Vec<String> = hit
        .versions
        .iter()
        .map(|v| {
            let name = match v.version {
                Some(n) => format!("v{n}"),
                None => "draft".to_string(),
            };
            if v.matched {
                name
            } else {
                format!("({name})")
            }
        })
        .collect();
    let mut details = vec![versions.join(" ")];
    if let Some(schema) = &hit.schema {
        details.push(schema.clone());
    }
    if let Some(experiment) = &hit.experiment {
        details.push(experiment.clone());
    }
    details.push(format!("score {:.2}", hit.score));
    writeln!(
        out,
        "{BOLD}{}{BOLD:#}  {DIM}{}{DIM:#}",
        hit.id,
        details.join(" · ")
    )?;
    // A match in the title is marked in the title line rather than repeated.
    let in_title = hit.matches.iter().find(|m| m.snippet == hit.title);
    match in_title {
        Some(m) => writeln!(out, "  {}", marked(&m.snippet, &m.highlights))?,
        None if !hit.title.is_empty() => writeln!(out, "  {}", hit.title)?,
        None => {}
    }
    let others = hit.matches.iter().filter(|m| m.snippet != hit.title);
    for m in others.take(2) {
        let place = if m.title_path.is_empty() {
            &m.pointer
        } else {
            &m.title_path
        };
        writeln!(
            out,
            "  {DIM}{place}:{DIM:#} {}",
            marked(&m.snippet, &m.highlights)
        )?;
    }
    writeln!(out)?;
    Ok(())
}

/// The snippet with its matches in bold (plain text when not on a terminal).
fn marked(text: &str, ranges: &[(usize, usize)]) -> String {
    let mut out = String::new();
    let mut at = 0;
    for &(start, end) in ranges {
        if start < at || end > text.len() {
            continue;
        }
        out.push_str(&text[at..start]);
        out.push_str(&format!("{MARK}{}{MARK:#}", &text[start..end]));
        at = end;
    }
    out.push_str(&text[at..]);
    // Snippets are one line on screen.
    out.replace('\n', " ")
}

fn render_facets(out: &mut impl Write, facets: &Facets) -> anyhow::Result<()> {
    writeln!(out, "{BOLD}Facets{BOLD:#}")?;
    for (name, values, limit) in [
        ("schema", &facets.schema, usize::MAX),
        ("experiment", &facets.experiment, usize::MAX),
        ("status", &facets.status, usize::MAX),
        ("year", &facets.year, usize::MAX),
        ("keyword", &facets.keyword, 10),
    ] {
        let mut shown: Vec<String> = values
            .iter()
            .take(limit)
            .map(|v| format!("{} ({})", v.value, v.count))
            .collect();
        if values.len() > limit {
            shown.push(format!("… {} more", values.len() - limit));
        }
        if shown.is_empty() {
            shown.push("—".into());
        }
        writeln!(out, "  {name:<11} {}", shown.join(", "))?;
    }
    writeln!(out)?;
    Ok(())
}
