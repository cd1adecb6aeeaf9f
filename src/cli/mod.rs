//! The command line: parse arguments, call the library, render the result.
//!
//! Exit codes mean the same for every command: 0 success, 1 the input was checked and
//! found wanting (problems, a rejected push), 2 the command could not run.

mod access;
mod author;
mod clone;
mod demo;
mod edit;
mod fetch;
mod history;
mod hook;
mod import;
mod init;
mod migrate;
mod notify;
mod outbox;
mod output;
mod preserve;
mod record;
mod schema;
mod search;
mod site;
mod token;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Preserve research analyses in git.
///
/// An archive is a git repository of JSON deposits checked against versioned schemas.
/// Start with `capsule demo` to see one, or `capsule init` to make your own.
#[derive(Debug, Parser)]
#[command(
    name = "capsule",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Run as if capsule was started in this folder.
    #[arg(short = 'C', global = true, value_name = "DIR")]
    directory: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create an archive: a working folder, or a server repository with `--bare`.
    Init(init::InitArgs),
    /// Check deposits against their schemas, exactly as the server's hook does.
    Validate(validate::ValidateArgs),
    /// Inspect and import schemas.
    #[command(subcommand)]
    Schema(schema::SchemaCommand),
    /// Install, inspect and run the server-side git hooks.
    #[command(subcommand)]
    Hook(hook::HookCommand),
    /// Move a flat archive's deposits (deposits/<id>/) into shard folders, in one commit.
    Migrate(migrate::MigrateArgs),
    /// Import another system's archive (CERN Analysis Preservation: `capsule import cap`).
    #[command(subcommand)]
    Import(import::ImportCommand),
    /// Start a new deposit from a schema, with you as its owner.
    New(author::NewArgs),
    /// Publish the committed deposit as the next immutable record version.
    Publish(record::PublishArgs),
    /// Review a deposit, comment on a review, or resolve one.
    Review(record::ReviewArgs),
    /// Set one field of a deposit (validated before it is written).
    Set(edit::SetArgs),
    /// Remove one field of a deposit (validated before it is written).
    Unset(edit::UnsetArgs),
    /// Edit a deposit in your editor; it is validated before it is saved.
    Edit(edit::EditArgs),
    /// Add analysis files and folders to a deposit (large files go to Git LFS).
    Attach(edit::AttachArgs),
    /// Show or change who may read, update and administer a deposit (its _access).
    #[command(subcommand)]
    Access(access::AccessCommand),
    /// Fill a deposit's fields from an experiment database declared in capsule.toml.
    Fetch(fetch::FetchArgs),
    /// Record a git repository's commit in a deposit, optionally with its code as a bundle.
    CaptureRepo(fetch::CaptureArgs),
    /// List every version of a deposit, with the record versions marked.
    Log(history::LogArgs),
    /// Show a deposit at a version, field by field.
    Show(history::ShowArgs),
    /// Compare two versions of a deposit field by field.
    Diff(history::DiffArgs),
    /// Preview the mails a deposit's notification rules produce.
    #[command(subcommand)]
    Notify(notify::NotifyCommand),
    /// See and drive the delivery of notification mails (on the server).
    #[command(subcommand)]
    Outbox(outbox::OutboxCommand),
    /// Render the published records into a static website with a JSON API and search.
    Build(site::BuildArgs),
    /// Build the site, serve it on 127.0.0.1 and rebuild it when the archive changes.
    Serve(site::ServeArgs),
    /// Issue, list and revoke access tokens for an internal site, and check them for
    /// the web server.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Build a demo server and clone, push example analyses and show a rejected push.
    Demo(demo::DemoArgs),
    /// Bring the search index up to date (or rebuild it with --rebuild).
    Index(search::IndexArgs),
    /// Search drafts and published records: words, phrases, field:value, prefix*.
    Search(search::SearchArgs),
    /// Package a record version as a BagIt bag with RO-Crate and DataCite metadata.
    Export(preserve::ExportArgs),
    /// Cite a record version (BibTeX, CSL-JSON or text).
    Cite(preserve::CiteArgs),
    /// Register a record's DOIs with DataCite (concept and versions).
    Doi(preserve::DoiArgs),
    /// Withdraw a record: commit its tombstone; its id stays reserved.
    Withdraw(preserve::WithdrawArgs),
    /// Check fixity: git objects, record versions, bundles and written bags.
    Audit(preserve::AuditArgs),
}

/// The outcome of a command, mapped to an exit code.
pub enum Outcome {
    Ok,
    Problems,
}

pub fn run(cli: Cli) -> ExitCode {
    if let Some(dir) = &cli.directory {
        if let Err(e) = std::env::set_current_dir(dir) {
            output::error(&format!("cannot enter {}: {e}", dir.display()));
            return ExitCode::from(2);
        }
    }
    let result = match cli.command {
        Command::Init(args) => init::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Schema(cmd) => schema::run(cmd),
        Command::Hook(cmd) => hook::run(cmd),
        Command::Migrate(args) => migrate::run(args),
        Command::Import(cmd) => import::run(cmd),
        Command::New(args) => author::run(args),
        Command::Publish(args) => record::publish(args),
        Command::Review(args) => record::review(args),
        Command::Set(args) => edit::set(args),
        Command::Unset(args) => edit::unset(args),
        Command::Edit(args) => edit::edit(args),
        Command::Attach(args) => edit::attach(args),
        Command::Access(cmd) => access::run(cmd),
        Command::Fetch(args) => fetch::fetch(args),
        Command::CaptureRepo(args) => fetch::capture(args),
        Command::Log(args) => history::run_log(args),
        Command::Show(args) => history::run_show(args),
        Command::Diff(args) => history::run_diff(args),
        Command::Notify(cmd) => notify::run(cmd),
        Command::Outbox(cmd) => outbox::run(cmd),
        Command::Build(args) => site::run_build(args),
        Command::Serve(args) => site::run_serve(args),
        Command::Token(cmd) => token::run(cmd),
        Command::Demo(args) => demo::run(args),
        Command::Index(args) => search::run_index(args),
        Command::Search(args) => search::run_search(args),
        Command::Export(args) => preserve::export(args),
        Command::Cite(args) => preserve::cite_record(args),
        Command::Doi(args) => preserve::register_dois(args),
        Command::Withdraw(args) => preserve::withdraw(args),
        Command::Audit(args) => preserve::audit(args),
    };
    exit_code(result)
}

/// git runs `capsule hook pre-receive` on every push, with exactly these two
/// arguments. Parsing them needs none of the other commands, and building clap's whole
/// command tree is a measurable part of a hook that takes a few milliseconds
/// (BENCHMARKS.md), so this path goes straight to the hook. Any other spelling (a
/// global option, `--help`) goes through clap as usual.
pub fn run_pre_receive_directly() -> Option<ExitCode> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    is_exactly_pre_receive(args.iter().map(|a| a.as_encoded_bytes()))
        .then(|| exit_code(hook::run(hook::HookCommand::PreReceive)))
}

/// Whether the arguments (after the program's name) are exactly `hook pre-receive`.
fn is_exactly_pre_receive<'a>(mut args: impl Iterator<Item = &'a [u8]>) -> bool {
    args.next() == Some(b"hook") && args.next() == Some(b"pre-receive") && args.next().is_none()
}

fn exit_code(result: anyhow::Result<Outcome>) -> ExitCode {
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Problems) => ExitCode::from(1),
        // `capsule log | head`: the reader left, which is not an error of ours.
        Err(e)
            if e.chain().any(|c| {
                let pipe = Some(std::io::ErrorKind::BrokenPipe);
                c.downcast_ref::<std::io::Error>().map(|io| io.kind()) == pipe
                    || c.downcast_ref::<serde_json::Error>()
                        .and_then(|e| e.io_error_kind())
                        == pipe
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            output::error(&format!("{e:#}"));
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn only_the_bare_hook_command_skips_clap() {
        let args = |list: &[&'static str]| list.iter().map(|a| a.as_bytes()).collect::<Vec<_>>();
        assert!(is_exactly_pre_receive(
            args(&["hook", "pre-receive"]).into_iter()
        ));
        for other in [
            &["hook"][..],
            &["hook", "post-receive"],
            &["hook", "pre-receive", "--help"],
            &["--json", "hook", "pre-receive"],
            &["-C", "x", "hook", "pre-receive"],
            &["pre-receive", "hook"],
            &[],
        ] {
            assert!(
                !is_exactly_pre_receive(args(other).into_iter()),
                "{other:?}"
            );
        }
        // What the shortcut runs is what clap would have chosen for the same words.
        let parsed = Cli::try_parse_from(["capsule", "hook", "pre-receive"]).unwrap();
        assert!(matches!(
            parsed.command,
            Command::Hook(hook::HookCommand::PreReceive)
        ));
    }
}
