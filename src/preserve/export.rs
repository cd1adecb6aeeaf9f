//! One record version as a package: a BagIt bag whose payload is an RO-Crate.
//!
//! ```text
//! <id>-v<N>/
//!   bagit.txt  bag-info.txt  manifest-sha256.txt  manifest-sha512.txt
//!   tagmanifest-sha256.txt  tagmanifest-sha512.txt
//!   data/ro-crate-metadata.json        the crate's root is data/ (RO-Crate's BagIt rule)
//!   data/deposit/deposit.json          the deposit as tagged
//!   data/deposit/<files>               its files, bundles included
//!   data/deposit/reviews/<review>.json public reviews only (internal ones with --internal)
//!   data/schemas/<name>/<version>.json every schema the deposit needs ($refs resolved)
//!   data/metadata/datacite.json|.xml   DataCite 4.5 of the version
//!   data/metadata/citation.bib|.json   BibTeX and CSL-JSON
//! ```
//!
//! What goes in is read from the record tag's commit only, so drafts never leave.
//! Files kept in Git LFS go in as their content from the local LFS store (checked
//! against the pointer's SHA-256 and size); without it the export fails, naming the
//! file and `git lfs fetch`.
//! Withdrawn records never leave at all; restricted ones only in an internal export.
//! Every date is the version's publication date, so two exports are byte-identical.

use git2::Repository;

use super::bag::{sha256_hex, Bag, BagFiles};
use super::datacite::{datacite_json, datacite_xml, Target};
use super::metadata::{ro_crate, CrateFile, FileRole, Record};
use super::tombstone::{Tombstone, TOMBSTONE};
use super::{identifiers, PreserveError, Snapshot};
use crate::archive::GitTree;
use crate::record::Review;
use crate::schema::SchemaRegistry;
use crate::settings::Settings;

/// What kind of export to make.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// An admin's full export: restricted records and internal reviews included.
    pub internal: bool,
}

/// A package ready to write.
pub struct Package {
    /// The bag's folder name, `<id>-v<N>`.
    pub name: String,
    pub files: BagFiles,
    pub record: Record,
}

/// Files of the deposit's folder that are the archive's bookkeeping, not the analysis.
const BOOKKEEPING: [&str; 2] = [TOMBSTONE, super::doi::IDENTIFIERS];

fn pretty(value: &serde_json::Value) -> Vec<u8> {
    let mut text = serde_json::to_string_pretty(value).expect("JSON");
    text.push('\n');
    text.into_bytes()
}

/// Builds the package of `snapshot`. `tombstone` is the record's withdrawal, if any:
/// it is checked before anything of the record is read into the package.
pub fn package(
    repo: &Repository,
    settings: &Settings,
    snapshot: &Snapshot,
    registered: &super::doi::Registered,
    tombstone: Option<&Tombstone>,
    options: ExportOptions,
) -> Result<Package, PreserveError> {
    if let Some(t) = tombstone {
        return Err(PreserveError::Withdrawn {
            id: snapshot.id.clone(),
            date: t.day().to_string(),
            reason: t.reason.clone(),
        });
    }
    if !snapshot.is_public() && !options.internal {
        return Err(PreserveError::Restricted {
            id: snapshot.id.clone(),
        });
    }
    let ids = identifiers(settings, snapshot, registered);
    let mut record = Record::new(settings, snapshot, ids);
    let mut bag = Bag::new();
    let mut roles = Vec::new();
    let bundle_index = |path: &str, record: &Record| {
        record
            .facts
            .software
            .iter()
            .position(|s| s.bundle.as_deref() == Some(path))
    };

    for file in &snapshot.files {
        if BOOKKEEPING.contains(&file.path.as_str()) {
            continue;
        }
        let bytes = repo.find_blob(file.blob)?.content().to_vec();
        let role = if file.path == "deposit.json" {
            FileRole::Deposit
        } else if let Some(name) = file.path.strip_prefix("reviews/") {
            // Only reviews that parse and are public leave (internal ones with --internal).
            match Review::parse(name, &bytes) {
                Ok(review) if !review.internal || options.internal => FileRole::Review,
                _ => continue,
            }
        } else if let Some(i) = bundle_index(&file.path, &record) {
            let commit = record.facts.software[i].commit.clone();
            let ids = super::swhid::of_bundle(&bytes, Some(&commit)).map_err(|e| {
                PreserveError::Invalid(format!(
                    "{}: {e} (`capsule audit` checks every bundle)",
                    crate::deposit::file_path(&snapshot.id, &file.path)
                ))
            })?;
            record.facts.software[i].swhid_dir = Some(ids.directory);
            FileRole::Bundle(i)
        } else {
            FileRole::AnalysisFile
        };
        // A Git LFS pointer leaves as the content it names, or not at all: a bag
        // holding a pointer would look complete and preserve nothing.
        let bytes = match super::lfs::parse_pointer(&bytes) {
            Some(pointer) if role == FileRole::AnalysisFile => {
                super::lfs::read_object(repo, &pointer).map_err(|e| {
                    PreserveError::Invalid(format!(
                        "{} is a Git LFS pointer and {e}",
                        crate::deposit::file_path(&snapshot.id, &file.path)
                    ))
                })?
            }
            _ => bytes,
        };
        let path = format!("deposit/{}", file.path);
        roles.push((path.clone(), role));
        bag.add(&path, bytes, file.executable);
    }

    // The schemas, exactly as the tagged commit holds them, $refs followed.
    let tree = GitTree::at_commit(repo, snapshot.commit)?;
    if let Some(sref) = record
        .facts
        .schema
        .as_deref()
        .and_then(crate::deposit::parse_schema_ref)
    {
        let compiled = SchemaRegistry::for_display()
            .compile(&tree, &sref)
            .map_err(|e| PreserveError::Invalid(format!("schema {sref}: {e}")))?;
        if let Some(compiled) = compiled {
            let mut paths: Vec<String> = compiled
                .documents
                .values()
                .map(|d| d.path.clone())
                .collect();
            paths.sort();
            paths.dedup();
            for path in paths {
                if let Some(bytes) = tree.read(&path)? {
                    roles.push((path.clone(), FileRole::Schema));
                    bag.add(&path, bytes, false);
                }
            }
        }
    }

    let metadata: [(&str, Vec<u8>); 4] = [
        (
            "metadata/datacite.json",
            pretty(&datacite_json(&record, Target::Version)),
        ),
        (
            "metadata/datacite.xml",
            datacite_xml(&record, Target::Version).into_bytes(),
        ),
        (
            "metadata/citation.bib",
            super::cite::bibtex(&record).into_bytes(),
        ),
        (
            "metadata/citation.json",
            pretty(&super::cite::csl_json(&record)),
        ),
    ];
    for (path, bytes) in metadata {
        roles.push((path.to_string(), FileRole::Metadata));
        bag.add(path, bytes, false);
    }

    let payload: std::collections::HashMap<&String, &Vec<u8>> = bag.payload().collect();
    let mut crate_files: Vec<CrateFile> = roles
        .iter()
        .map(|(path, role)| CrateFile {
            path: path.clone(),
            size: payload[path].len() as u64,
            sha256: sha256_hex(payload[path]),
            role: *role,
        })
        .collect();
    crate_files.sort_by(|a, b| a.path.cmp(&b.path));
    let crate_json = pretty(&ro_crate(&record, &crate_files));
    bag.add("ro-crate-metadata.json", crate_json, false);

    bag.info("Source-Organization", &settings.archive.name);
    bag.info("Organization-Address", &settings.archive.base_url);
    bag.info("External-Description", &record.facts.title);
    bag.info("External-Identifier", &record.ids.version.value);
    bag.info("External-Identifier", &record.ids.concept.value);
    bag.info("Bagging-Date", &snapshot.date());
    bag.info(
        "Bag-Software-Agent",
        &format!("capsule {}", env!("CARGO_PKG_VERSION")),
    );
    bag.info(
        "Capsule-Record",
        &format!("records/{}/v{}", snapshot.id, snapshot.version),
    );
    bag.info("Capsule-Commit", &snapshot.commit.to_string());
    bag.info(
        "Capsule-Export",
        if options.internal {
            "internal (restricted content and internal reviews included: not for publication)"
        } else {
            "public"
        },
    );
    Ok(Package {
        name: format!("{}-v{}", snapshot.id, snapshot.version),
        files: bag.finish(),
        record,
    })
}
