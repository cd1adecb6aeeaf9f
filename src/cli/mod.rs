//! The command line: parse arguments, call the library, render the result.
//!
//! Exit codes mean the same for every command: 0 success, 1 the input was checked and
//! found wanting (problems, a rejected push), 2 the command could not run.

mod demo;
mod hook;
mod init;
mod output;
mod schema;
mod search;
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
    /// Build a demo server and clone, push example analyses and show a rejected push.
    Demo(demo::DemoArgs),
    /// Bring the search index up to date (or rebuild it with --rebuild).
    Index(search::IndexArgs),
    /// Search drafts and published records: words, phrases, field:value, prefix*.
    Search(search::SearchArgs),
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
        Command::Demo(args) => demo::run(args),
        Command::Index(args) => search::run_index(args),
        Command::Search(args) => search::run_search(args),
    };
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Problems) => ExitCode::from(1),
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
}
