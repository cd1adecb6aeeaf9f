//! capsule preserves research analyses in git.
//!
//! The data flow, from a push or a command to a verdict:
//!
//! ```text
//! archive  (a repository, a tree at a commit or a working folder; capsule.toml)
//! json     (the one reader of archive JSON: duplicate keys refused, a BOM ignored)
//!    │  reads files through `archive::Source`
//!    ▼
//! schema   (registry of versioned schemas, legacy CAP normalisation, compilation)
//!    │  hands compiled validators to
//!    ▼
//! validate (deposits -> `Problem`s with file, line:column, pointer, title path)
//!    │
//!    ├── deposit  (ids, `$schema` references, the one map from an id to its shard
//!    │             folder `deposits/<shard>/<id>/`, LFS pointers)
//!    ├── access   (people and groups, who is pushing, rights on one deposit)
//!    ├── record   (record tags records/<id>/v<N>, review files)
//!    ├── capture  (git bundles of analysis code, and their checks)
//!    ▼
//! hook     (the push path: ref updates -> new commits -> changed paths -> problems;
//!           hook::rules judges who may change what)
//!    │  after a push lands (post-receive):
//!    ▼
//! mail     (schema rules -> rendered mails -> durable outbox -> SMTP)
//! index    (tantivy search: git diff since the indexed commit -> documents; queries)
//!
//! In a clone, beside the push path:
//! authoring (new deposits, ids, pointer edits, atomic writes)
//! fetch     (experiment databases -> deposit fields, with provenance)
//! import    (another system's archive brought in whole: `import::cap` reads CAP's
//!            API or exports, judges every deposit as the hook will, then commits)
//! history   (versions of a deposit, the deposit at a version, semantic diffs)
//! migrate   (a flat archive's deposits moved into shard folders, in one commit)
//! preserve  (record versions leaving for the long term: BagIt + RO-Crate packages,
//!            DataCite, citations, DOIs, SWHIDs, tombstones; `capsule audit`'s fixity)
//! scaffold  (what `capsule init` and `capsule hook install` write)
//!
//! Beside the site, on the server:
//! tokens    (access tokens for an internal site: a hashed store, and the check a
//!            web server's auth_request asks, judged by `access` on the archive)
//! ```
//!
//! The command line lives in `cli` (inside the binary's crate root, `main.rs`), which
//! is the only place that prints or exits. Nothing in this library knows about clap.

pub mod access;
pub mod archive;
pub mod authoring;
pub mod capture;
pub mod deposit;
pub mod fetch;
pub mod history;
pub mod hook;
pub mod import;
pub mod index;
pub mod json;
pub mod locate;
pub mod mail;
pub mod migrate;
pub mod preserve;
pub mod problem;
mod rawtree;
pub mod record;
pub mod scaffold;
pub mod schema;
pub mod settings;
pub mod site;
pub mod tokens;
pub mod validate;
pub mod version;
