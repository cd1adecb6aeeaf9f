//! `capsule init`

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::Outcome;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  capsule init my-analyses                  a working archive (a git repository)
  capsule init --bare /srv/git/analyses.git a server repository with the hooks installed
  git clone /srv/git/analyses.git           then work in the clone and push")]
pub struct InitArgs {
    /// The folder to create (must not exist, or be empty).
    dir: PathBuf,
    /// Create a server (bare) repository with the hooks installed and a first commit.
    #[arg(long)]
    bare: bool,
    /// The archive's name, shown on its site and in mails.
    #[arg(long, default_value = "Analysis archive")]
    name: String,
    /// The user name that administers the archive (may change schemas and settings).
    #[arg(long, env = "USER", default_value = "admin")]
    admin: String,
    /// The administrator's e-mail address.
    #[arg(long)]
    admin_email: Option<String>,
}

pub fn run(args: InitArgs) -> anyhow::Result<Outcome> {
    let email = args
        .admin_email
        .clone()
        .unwrap_or_else(|| format!("{}@localhost", args.admin));
    let mut out = anstream::stdout();
    if args.bare {
        let bin = std::env::current_exe().context("cannot tell where the capsule binary is")?;
        let commit =
            capsule::scaffold::init_bare(&args.dir, &args.name, &args.admin, &email, &bin)?;
        writeln!(
            out,
            "Created server repository {} (first commit {}) with capsule's hooks.\nClone it with: git clone {}",
            args.dir.display(),
            &commit.to_string()[..7],
            args.dir.display()
        )?;
    } else {
        capsule::scaffold::init_working(&args.dir, &args.name, &args.admin, &email)?;
        writeln!(
            out,
            "Created archive {}.\nAdd a deposit with `capsule new SCHEMA` (it goes in deposits/<shard>/<id>/) and check it with: capsule -C {} validate",
            args.dir.display(),
            args.dir.display()
        )?;
    }
    Ok(Outcome::Ok)
}
