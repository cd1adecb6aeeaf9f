//! The `capsule` command. All behaviour lives in the library and in `cli`.

mod cli;

fn main() -> std::process::ExitCode {
    use clap::Parser;
    let args = cli::Cli::parse();
    cli::run(args)
}
