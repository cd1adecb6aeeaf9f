//! CAP's schemas in the archive: which schema each record names, and the schemas the
//! archive lacks, brought in from a CAP schema export (CAP's `fixtures/schemas/`
//! wrappers, or the older `jsonschemas/` tree of `<name>-v<version>.json` files) or
//! from the server's `/api/jsonschemas/`, with every schema they `$ref`, in one step.
//!
//! Nothing is written here: the schemas to add live in an [`Overlay`] over the
//! archive, so deposits are judged against them before anything reaches the disk.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::archive::Source;
use crate::deposit::{parse_schema_ref, SchemaRef, LATEST};
use crate::problem::Problem;
use crate::schema::{list_schemas, LoadedSchema};
use crate::version::Version;

use super::map::SchemaName;
use super::source::{json_files, Api, ApiError};

/// CAP's collections of 2016-2018 (`collection` in its record lists) and the schemas
/// that replaced them. `--schema-map` overrides any of these.
pub const COLLECTIONS: &[(&str, &str)] = &[
    ("CMSAnalysis", "cms-analysis"),
    ("CMSQuestionnaire", "cms-questionnaire"),
    ("LHCbAnalysis", "lhcb"),
    ("ATLASAnalysis", "atlas-analysis"),
    ("ATLASWorkflows", "atlas-workflows"),
    ("ALICEAnalysis", "alice-analysis"),
];

/// A schema file of an export.
struct ExportFile {
    shown: String,
    bytes: Vec<u8>,
}

/// The schema files of a CAP export, by the schema they hold.
#[derive(Default)]
pub struct Export {
    files: BTreeMap<SchemaRef, ExportFile>,
    /// Files that could not be read, by file stem (a broken `atlas-workflows.json` is
    /// what the record naming `atlas-workflows` needs to hear about).
    broken: Vec<(String, Problem)>,
}

impl Export {
    pub fn read(dirs: &[PathBuf]) -> std::io::Result<Export> {
        let mut export = Export::default();
        for file in json_files(dirs)? {
            let shown = file.display().to_string();
            let bytes = std::fs::read(&file)?;
            let stem = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let value = match crate::json::parse(&shown, &bytes) {
                Ok((_, v)) => v,
                Err(mut problems) => {
                    export.broken.push((stem, problems.remove(0)));
                    continue;
                }
            };
            // A CAP wrapper names itself; a file of CAP's `jsonschemas/` tree is named
            // `<name>-v<version>.json`.
            let text = |k: &str| value.get(k).and_then(|v| v.as_str()).map(str::to_string);
            let sref = match (text("name"), text("version")) {
                (Some(n), Some(v)) => parse_schema_ref(&format!("{n}/{v}")),
                _ => parse_schema_ref(&stem),
            };
            match sref {
                Some(sref) => {
                    export.files.entry(sref).or_insert(ExportFile { shown, bytes });
                }
                None => export.broken.push((
                    stem,
                    Problem::file(&shown, "neither a CAP schema wrapper (`name`, `version`) nor named `<name>-v<version>.json`"),
                )),
            }
        }
        Ok(export)
    }

    fn newest(&self, name: &str) -> Option<Version> {
        self.files
            .keys()
            .filter(|s| s.name == name)
            .filter_map(|s| s.version.parse::<Version>().ok())
            .max()
    }
}

/// The archive's files with the schemas being brought in laid over them.
pub struct Overlay<'a> {
    pub base: &'a dyn Source,
    pub added: BTreeMap<String, Vec<u8>>,
}

impl Source for Overlay<'_> {
    fn read(&self, path: &str) -> std::io::Result<Option<Vec<u8>>> {
        match self.added.get(path) {
            Some(bytes) => Ok(Some(bytes.clone())),
            None => self.base.read(path),
        }
    }

    fn list(&self, path: &str) -> std::io::Result<Vec<String>> {
        let mut names = self.base.list(path)?;
        let prefix = format!("{}/", path.trim_end_matches('/'));
        for added in self.added.keys() {
            if let Some(rest) = added.strip_prefix(&prefix) {
                let first = rest.split('/').next().unwrap_or(rest).to_string();
                if !names.contains(&first) {
                    names.push(first);
                }
            }
        }
        names.sort();
        Ok(names)
    }

    fn describe(&self) -> String {
        self.base.describe()
    }
}

/// Chooses schemas for records and gathers the missing ones.
pub struct Schemas<'a> {
    pub export: Export,
    pub api: Option<&'a Api>,
    /// `--schema-map FROM=TO`.
    pub map: Vec<(String, String)>,
    /// `--default-schema`, for records that name none.
    pub default: Option<String>,
}

/// A schema the archive lacks and where it comes from.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AddedSchema {
    pub schema: String,
    pub from: String,
}

impl Schemas<'_> {
    /// The schema a record is written against, or why there is none.
    pub fn choose(
        &self,
        archive: &dyn Source,
        name: &SchemaName,
        text: &str,
    ) -> Result<SchemaRef, String> {
        let keys: Vec<String> = match name {
            SchemaName::Exact(s) => vec![text.to_string(), s.to_string(), s.name.clone()],
            SchemaName::Newest(n) => vec![text.to_string(), n.clone()],
            SchemaName::Collection(c) => vec![text.to_string(), c.clone()],
            SchemaName::Unknown => vec![],
        };
        let mapped = keys.iter().find_map(|k| {
            self.map
                .iter()
                .find(|(from, _)| from == k)
                .map(|(_, to)| to.clone())
        });
        let target = match (mapped, name) {
            (Some(to), _) => to,
            (None, SchemaName::Exact(s)) => return Ok(s.clone()),
            (None, SchemaName::Newest(n)) => n.clone(),
            (None, SchemaName::Collection(c)) => match COLLECTIONS.iter().find(|(k, _)| k == c) {
                Some((_, n)) => n.to_string(),
                None => return Err(format!("CAP collection `{c}` names no schema capsule knows: say which schema its records follow with `--schema-map {c}=<name>/<version>`")),
            },
            (None, SchemaName::Unknown) => match &self.default {
                Some(d) => d.clone(),
                None => return Err("the record names no schema (CAP's basic listings, `application/basic+json`, leave it out): import the full answers, or give `--default-schema <name>/<version>`".into()),
            },
        };
        if let Some(sref) = parse_schema_ref(&target) {
            return Ok(sref);
        }
        if !crate::deposit::valid_schema_name(&target) {
            return Err(format!("`{target}` is not a schema name"));
        }
        let in_archive = list_schemas(archive)
            .ok()
            .and_then(|all| all.into_iter().find(|(n, _)| n == &target))
            .and_then(|(_, v)| v.last().and_then(|v| v.parse::<Version>().ok()));
        let newest = in_archive
            .into_iter()
            .chain(self.export.newest(&target))
            .max();
        match newest {
            Some(v) => Ok(SchemaRef {
                name: target,
                version: v.to_string(),
            }),
            None => Err(self.missing_message(&SchemaRef {
                name: target,
                version: LATEST.into(),
            })),
        }
    }

    fn missing_message(&self, sref: &SchemaRef) -> String {
        let broken: Vec<String> = self
            .export
            .broken
            .iter()
            .filter(|(stem, _)| stem == &sref.name || stem.starts_with(&format!("{}-v", sref.name)))
            .map(|(_, p)| format!("{}:{}:{}: {}", p.file, p.line, p.column, p.message))
            .collect();
        let shown = if sref.version == LATEST {
            sref.name.clone()
        } else {
            sref.to_string()
        };
        if broken.is_empty() {
            format!("schema {shown} is neither in the archive nor in the schema export: give CAP's schema export with --schemas DIR (or add it with `capsule schema add`), or map it to another schema with --schema-map")
        } else {
            format!("schema {shown} is not in the archive, and the export's file for it cannot be used ({}): repair that file, or map the records to another schema with --schema-map", broken.join("; "))
        }
    }

    /// Gathers the schemas `wanted` that the archive lacks, with every schema they
    /// `$ref`, into `overlay`. Returns what was added and, per wanted schema that cannot
    /// be brought in, why.
    pub fn gather(
        &self,
        overlay: &mut Overlay<'_>,
        wanted: &[SchemaRef],
    ) -> Result<(Vec<AddedSchema>, BTreeMap<SchemaRef, String>), ApiError> {
        let mut added = Vec::new();
        let mut failed = BTreeMap::new();
        for root in wanted {
            let mut queue = vec![root.clone()];
            let mut mine: Vec<(String, Vec<u8>, AddedSchema)> = Vec::new();
            let mut problem: Option<String> = None;
            while let Some(sref) = queue.pop() {
                let sref = match self.resolve_latest(overlay, &sref, &mine) {
                    Some(s) => s,
                    None => {
                        problem = Some(self.missing_message(&sref));
                        break;
                    }
                };
                let path = sref.path();
                if overlay.read(&path).ok().flatten().is_some()
                    || mine.iter().any(|(p, ..)| p == &path)
                {
                    continue;
                }
                let (bytes, from) = match self.export.files.get(&sref) {
                    Some(f) => (f.bytes.clone(), f.shown.clone()),
                    None => match self.api {
                        Some(api) => {
                            let url = format!(
                                "{}/api/jsonschemas/{}/{}",
                                api.base(),
                                sref.name,
                                sref.version
                            );
                            match api.get_bytes(&url, "application/json")? {
                                Some(b) => (b, url),
                                None => {
                                    problem = Some(self.missing_message(&sref));
                                    break;
                                }
                            }
                        }
                        None => {
                            problem = Some(self.missing_message(&sref));
                            break;
                        }
                    },
                };
                match LoadedSchema::parse(&sref, &bytes) {
                    Ok(loaded) => queue.extend(loaded.refs.iter().cloned()),
                    Err(problems) => {
                        let p = &problems[0];
                        problem = Some(format!(
                            "schema {sref} from {from} cannot be used: {}: {}",
                            p.pointer, p.message
                        ));
                        break;
                    }
                }
                mine.push((
                    path,
                    bytes,
                    AddedSchema {
                        schema: sref.to_string(),
                        from,
                    },
                ));
            }
            match problem {
                Some(p) if sref_is(root, &mine) || mine.is_empty() => {
                    failed.insert(root.clone(), p);
                }
                Some(p) => {
                    failed.insert(
                        root.clone(),
                        format!("schema {root} needs another that cannot be brought in: {p}"),
                    );
                }
                None => {
                    for (path, bytes, info) in mine {
                        overlay.added.insert(path, bytes);
                        added.push(info);
                    }
                }
            }
        }
        Ok((added, failed))
    }

    /// An unversioned reference resolved to the newest version there is.
    fn resolve_latest(
        &self,
        overlay: &Overlay<'_>,
        sref: &SchemaRef,
        pending: &[(String, Vec<u8>, AddedSchema)],
    ) -> Option<SchemaRef> {
        if sref.version != LATEST {
            return Some(sref.clone());
        }
        let in_archive = list_schemas(overlay)
            .ok()
            .and_then(|all| all.into_iter().find(|(n, _)| n == &sref.name))
            .and_then(|(_, v)| v.last().and_then(|v| v.parse::<Version>().ok()));
        let pending = pending
            .iter()
            .filter_map(|(_, _, a)| parse_schema_ref(&a.schema))
            .filter(|s| s.name == sref.name)
            .filter_map(|s| s.version.parse::<Version>().ok());
        let newest = in_archive
            .into_iter()
            .chain(self.export.newest(&sref.name))
            .chain(pending)
            .max()?;
        Some(SchemaRef {
            name: sref.name.clone(),
            version: newest.to_string(),
        })
    }
}

fn sref_is(root: &SchemaRef, mine: &[(String, Vec<u8>, AddedSchema)]) -> bool {
    !mine.iter().any(|(p, ..)| p == &root.path())
}
