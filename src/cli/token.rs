//! `capsule token issue|list|revoke|serve`: CAP-style access tokens for an internal
//! site (`capsule build --drafts`) behind a web server.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde::Serialize;

use capsule::tokens::{
    check_request, serve, AuthRequest, RevokeWhich, ServeLimits, TokenRecord, TokenStore,
    DEFAULT_STORE, STORE_ENV,
};

use super::output::{self, count};
use super::Outcome;

const AFTER_HELP: &str =
    "A token lets a script read an internal site (`capsule build --drafts`) the way
CAP's API is read: GET <site>/api/deposits/<id>?access_token=TOKEN, or with the
header `Authorization: Bearer TOKEN`. The web server asks `capsule token serve`
about every request (nginx: auth_request); docs/cap.md shows the whole setup.

Tokens are issued and revoked by the server's admin, in the server's repository.
Only a token's SHA-256 is stored (default: capsule/tokens.json in the git folder,
which git never tracks); the token itself is printed once, by `issue`.

Examples:
  capsule token issue alice --note \"analysis scripts\"     valid 90 days
  capsule token issue bob --expires 7 --json
  capsule token list
  capsule token revoke tok-1a2b3c4d
  capsule token revoke --user bob                      every token bob holds
  capsule token serve --listen 127.0.0.1:8099";

#[derive(Debug, Subcommand)]
#[command(after_help = AFTER_HELP)]
pub enum TokenCommand {
    /// Issue a token for a person of access.toml; it is printed once, on stdout.
    ///
    /// The token alone goes to stdout (so `TOKEN=$(capsule token issue alice)` works)
    /// and what it is to stderr. It reads the site as USER: pages and API documents of
    /// one deposit need USER to hold deposit-read on it.
    Issue {
        /// The person the token reads as: a user name of access.toml's [people].
        user: String,
        /// What the token is for, shown by `list`.
        #[arg(long, default_value = "")]
        note: String,
        /// Days until the token expires.
        #[arg(
            long,
            value_name = "DAYS",
            default_value_t = 90,
            conflicts_with = "no_expiry"
        )]
        expires: u32,
        /// A token that is valid until it is revoked.
        #[arg(long)]
        no_expiry: bool,
        #[command(flatten)]
        place: Place,
        /// Print the token and its details as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List issued tokens (never the tokens themselves): id, person, state, dates.
    List {
        #[command(flatten)]
        place: Place,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke tokens by id, or every token of a person; the next request with them
    /// is refused (401).
    Revoke {
        /// Ids of the tokens to revoke (`tok-...`, as `list` shows them).
        #[arg(required_unless_present = "user", conflicts_with = "user")]
        ids: Vec<String>,
        /// Revoke every token this person holds.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        #[command(flatten)]
        place: Place,
        /// Print the revoked tokens as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Answer a web server's auth_request subrequests: 204, 401 or 403.
    ///
    /// Listens on a loopback address only. Each request names the path the web
    /// server will serve (`X-Original-URI`, nginx's `$uri`) and the token
    /// (`X-Access-Token`, an `access_token` in the URI's query, or `Authorization:
    /// Bearer`). No token, an unknown, revoked or expired one: 401. A person no longer
    /// in access.toml, or a deposit's page or API document the person may not read:
    /// 403. The store and the archive's rules are read anew for every request, so a
    /// revocation applies at once. One line per request goes to stderr (the token's
    /// id, never the token) unless --quiet.
    Serve {
        /// Where to listen: a loopback address and port.
        #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8099")]
        listen: SocketAddr,
        /// The revision the site was built from (its deposits decide who reads what).
        /// Default: the archive's default branch.
        #[arg(long, value_name = "REF")]
        rev: Option<String>,
        /// The path the site is served under (`/internal/` for
        /// https://host/internal/).
        #[arg(long, value_name = "PATH", default_value = "/")]
        site_path: String,
        #[command(flatten)]
        place: Place,
        /// Print nothing per request.
        #[arg(long)]
        quiet: bool,
    },
}

/// Where the archive and the token store are.
#[derive(Debug, Args)]
pub struct Place {
    /// The archive's repository (the server's bare repository). Default: the
    /// repository here, or $GIT_DIR.
    #[arg(long, value_name = "GIT_DIR")]
    archive: Option<PathBuf>,
    /// The token store. Default: capsule/tokens.json in the archive's git folder.
    #[arg(long, value_name = "FILE", env = STORE_ENV)]
    store: Option<PathBuf>,
}

impl Place {
    fn git_dir(&self) -> anyhow::Result<PathBuf> {
        let start = match (&self.archive, std::env::var_os("GIT_DIR")) {
            (Some(dir), _) => dir.clone(),
            (None, Some(dir)) => PathBuf::from(dir),
            (None, None) => PathBuf::from("."),
        };
        let repo = git2::Repository::discover(&start).with_context(|| {
            format!(
                "{} is not in a git repository: run this in the server's repository, or name it with --archive",
                start.display()
            )
        })?;
        Ok(repo.path().to_path_buf())
    }

    fn store(&self, git_dir: &Path) -> anyhow::Result<TokenStore> {
        let store = TokenStore::at(match &self.store {
            Some(path) => path.clone(),
            None => git_dir.join(DEFAULT_STORE),
        });
        store.refuse_if_in_work_tree()?;
        Ok(store)
    }
}

/// access.toml and capsule.toml from the default branch, as the hook reads them.
fn archive_state(git_dir: &Path) -> anyhow::Result<capsule::hook::ArchiveState> {
    let repo = git2::Repository::open(git_dir).context("opening the repository")?;
    Ok(capsule::hook::ArchiveState::before_push(&repo)?)
}

pub fn run(cmd: TokenCommand) -> anyhow::Result<Outcome> {
    match cmd {
        TokenCommand::Issue {
            user,
            note,
            expires,
            no_expiry,
            place,
            json,
        } => issue(&user, &note, (!no_expiry).then_some(expires), &place, json),
        TokenCommand::List { place, json } => list(&place, json),
        TokenCommand::Revoke {
            ids,
            user,
            place,
            json,
        } => revoke(ids, user, &place, json),
        TokenCommand::Serve {
            listen,
            rev,
            site_path,
            place,
            quiet,
        } => run_serve(listen, rev, site_path, &place, quiet),
    }
}

#[derive(Serialize)]
struct Issued<'a> {
    token: &'a str,
    #[serde(flatten)]
    record: &'a TokenRecord,
    store: &'a Path,
}

fn issue(
    user: &str,
    note: &str,
    days: Option<u32>,
    place: &Place,
    json: bool,
) -> anyhow::Result<Outcome> {
    let git_dir = place.git_dir()?;
    let state = archive_state(&git_dir)?;
    if !state.access.knows(user) {
        bail!(
            "{user} is not in access.toml's [people] on {}: a token reads the site as a person of the archive. Add them there first (an archive admin's push)",
            state.default_ref
        );
    }
    if days == Some(0) {
        bail!("--expires 0 would issue a token that is already expired; give 1 or more days, or --no-expiry");
    }
    let store = place.store(&git_dir)?;
    let valid_for = days.map(|d| Duration::from_secs(u64::from(d) * 86_400));
    let (record, secret) = store.issue(user, note, valid_for, SystemTime::now())?;
    if json {
        output::json(&Issued {
            token: secret.expose(),
            record: &record,
            store: store.path(),
        })?;
    } else {
        let until = match &record.expires {
            Some(at) => format!("valid until {at}"),
            None => "valid until revoked".to_string(),
        };
        let mut err = anstream::stderr();
        writeln!(
            err,
            "{} {} for {user}, {until}. The token follows; it is shown only now (revoke it with `capsule token revoke {}`):",
            output::ok("Issued"),
            record.id,
            record.id
        )?;
        println!("{}", secret.expose());
    }
    Ok(Outcome::Ok)
}

/// One token as `list` shows it: everything but its hash, which is of no use
/// outside the store.
#[derive(Serialize)]
struct Row<'a> {
    id: &'a str,
    user: &'a str,
    note: &'a str,
    state: &'static str,
    created: &'a str,
    expires: Option<&'a str>,
    revoked: Option<&'a str>,
    #[serde(skip)]
    record: &'a TokenRecord,
}

fn list(place: &Place, json: bool) -> anyhow::Result<Outcome> {
    let git_dir = place.git_dir()?;
    let store = place.store(&git_dir)?;
    let tokens = store.list()?;
    let now = SystemTime::now();
    let rows: Vec<Row> = tokens
        .iter()
        .map(|t| Row {
            id: &t.id,
            user: &t.user,
            note: &t.note,
            state: t.state(now).as_str(),
            created: &t.created,
            expires: t.expires.as_deref(),
            revoked: t.revoked.as_deref(),
            record: t,
        })
        .collect();
    if json {
        return output::json(&rows).map(|_| Outcome::Ok);
    }
    if rows.is_empty() {
        println!("No tokens in {}", store.path().display());
        return Ok(Outcome::Ok);
    }
    let mut out = std::io::stdout().lock();
    for row in &rows {
        let t = row.record;
        let until = match (&t.revoked, &t.expires) {
            (Some(at), _) => format!("revoked {at}"),
            (None, Some(at)) => format!("expires {at}"),
            (None, None) => "no expiry".to_string(),
        };
        writeln!(
            out,
            "{}  {:<12} {:<8} issued {}  {until}{}",
            t.id,
            t.user,
            row.state,
            t.created,
            if t.note.is_empty() {
                String::new()
            } else {
                format!("  ({})", t.note)
            }
        )?;
    }
    Ok(Outcome::Ok)
}

fn revoke(
    ids: Vec<String>,
    user: Option<String>,
    place: &Place,
    json: bool,
) -> anyhow::Result<Outcome> {
    let git_dir = place.git_dir()?;
    let store = place.store(&git_dir)?;
    let which: Vec<RevokeWhich> = match user {
        Some(user) => vec![RevokeWhich::User(user)],
        None => ids.into_iter().map(RevokeWhich::Id).collect(),
    };
    let now = SystemTime::now();
    let mut revoked = Vec::new();
    for w in &which {
        revoked.extend(store.revoke(w, now)?);
    }
    if json {
        return output::json(&revoked).map(|_| Outcome::Ok);
    }
    if revoked.is_empty() {
        println!("Nothing to revoke: already revoked");
    } else {
        for t in &revoked {
            println!("{} {} of {}", output::ok("Revoked"), t.id, t.user);
        }
        println!("{} revoked", count(revoked.len(), "token"));
    }
    Ok(Outcome::Ok)
}

fn run_serve(
    listen: SocketAddr,
    rev: Option<String>,
    site_path: String,
    place: &Place,
    quiet: bool,
) -> anyhow::Result<Outcome> {
    if !listen.ip().is_loopback() {
        bail!(
            "{listen} is not a loopback address: the check answers whoever reaches it, so it listens only where the web server on this machine alone can ask (127.0.0.1 or [::1])"
        );
    }
    if !site_path.starts_with('/') || !site_path.ends_with('/') {
        bail!("--site-path `{site_path}` must start and end with `/` (`/` or `/internal/`)");
    }
    let git_dir = place.git_dir()?;
    let store = place.store(&git_dir)?;
    // Fail now, not at the first request, when the store or the archive is unreadable.
    store.list()?;
    archive_state(&git_dir)?;
    let listener =
        TcpListener::bind(listen).with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    let _ = writeln!(
        anstream::stderr(),
        "Checking tokens of {} for {} on http://{address}/ (site path {site_path})",
        store.path().display(),
        git_dir.display()
    );
    let judge = move |request: &AuthRequest| {
        check_request(
            &store,
            &git_dir,
            rev.as_deref(),
            &site_path,
            &request.uri,
            request.token.as_deref(),
            SystemTime::now(),
        )
    };
    let report = move |d: &capsule::tokens::Decision| {
        if quiet {
            return;
        }
        let who = match (&d.user, &d.token_id) {
            (Some(user), Some(id)) => format!("{user} ({id})"),
            _ => "-".to_string(),
        };
        let _ = writeln!(
            std::io::stderr().lock(),
            "{} {who} {}: {}",
            d.verdict.status(),
            if d.path.is_empty() { "-" } else { &d.path },
            d.reason
        );
    };
    serve(
        listener,
        ServeLimits::default(),
        Arc::new(judge),
        Arc::new(report),
    )?;
    Ok(Outcome::Ok)
}
