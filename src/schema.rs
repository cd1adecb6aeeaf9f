//! Versioned schemas: loading, legacy normalisation, compilation and field titles.
//!
//! A schema file is `schemas/<name>/<version>.json` in one of three forms:
//! - a plain JSON Schema (draft-04, -06, -07, 2019-09 or 2020-12), whose optional
//!   top-level `config` object carries `reviewable` and `notifications`;
//! - a CAP fixture wrapper (`name`, `version`, `deposit_schema`, `config`, ...);
//! - a pre-2019 CAP wrapper (`jsonschema`, `is_deposit`, `experiment`).
//!
//! Real CAP schemas rely on leniencies of the Python validator, so before compiling we
//! rewrite a copy (never the file) into standard JSON Schema:
//! - draft-03 `"required": true` (or `"true"`) inside a property becomes an entry of the
//!   parent's `required` list, `false` is dropped;
//! - `"enum": []` (a form whose options were never filled in) is dropped, since an
//!   empty enum would refuse every value and is invalid in every draft;
//! - an empty `required: []` is dropped (draft-04 forbids it);
//! - `dependencies` given as a list inside a property ("this field needs those") moves
//!   to the parent's `dependencies` map, which is what CAP's forms meant;
//! - `$ref`s to other schemas (CAP URLs, `name/version`, relative file names) are
//!   rewritten to canonical URIs that resolve inside the archive. Nothing is ever
//!   fetched over the network;
//! - CAP's `x-` keywords stay as annotations (validators ignore unknown keywords).
//!
//! Drafts are validated without `required` (incomplete work may be pushed): a second
//! copy drops `required` everywhere except inside `anyOf`, `oneOf`, `not` and `if`,
//! where it decides which alternative applies rather than whether work is complete.
//!
//! Which rules run is the schema's [`Engine`]: CAP's files get CAP's engine (Draft 7
//! whatever they declare, no format checks unless the archive opts in), see [`engine`].

mod cap_keywords;
pub mod engine;
mod inline;
mod node;

pub use engine::{Draft, Engine};
pub use inline::{Cycle, Inlined};
pub use node::SchemaNode;
use node::{child_schema, resolve};

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};

use git2::Oid;
use jsonschema::error::ValidationErrorKind;
use jsonschema::{Retrieve, Uri, ValidationError, Validator};
use serde_json::{Map, Value};

use crate::archive::Source;
use crate::deposit::{parse_latest_schema_ref, parse_schema_ref, SchemaRef, LATEST};
use crate::locate::{escape_token, pointer_tokens};
use crate::problem::Problem;
use crate::settings::ValidationSettings;

/// Canonical URIs of archive schemas. `.invalid` is reserved (RFC 2606): it can never
/// resolve on a network, which makes an accidental fetch impossible by construction.
pub const CANONICAL_BASE: &str = "https://capsule.invalid/schemas/";

pub fn canonical_uri(sref: &SchemaRef) -> String {
    format!("{CANONICAL_BASE}{}/{}.json", sref.name, sref.version)
}

const DRAFT4: &str = "http://json-schema.org/draft-04/schema#";
const DRAFT7: &str = "http://json-schema.org/draft-07/schema#";

/// Which way a schema file was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SchemaForm {
    Plain,
    CapWrapper,
    LegacyCapWrapper,
}

/// A schema file, read and normalised (not yet compiled).
#[derive(Debug)]
pub struct LoadedSchema {
    pub sref: SchemaRef,
    pub path: String,
    pub form: SchemaForm,
    /// The form's display title (`fullname` of a wrapper, else the schema's `title`).
    pub title: Option<String>,
    pub experiment: Option<String>,
    /// The `config` object (reviewable, notifications, pid, ...), `Null` when absent.
    pub config: Value,
    /// The normalised JSON Schema that validators are compiled from.
    pub body: Value,
    /// Where `body` sits in the file: `""`, `/deposit_schema` or `/jsonschema`.
    pub body_pointer: String,
    /// The file's text, for locating problems.
    pub text: String,
    /// Other schemas this one refers to.
    pub refs: BTreeSet<SchemaRef>,
    /// The rules its deposits are judged by, and why.
    pub engine: Engine,
    pub engine_reason: String,
    /// The draft the file declares (draft-04 for a CAP file that declares none).
    pub declared: Draft,
    /// Things that work, but maybe not as the author thinks (keywords the declared
    /// draft ignores, `x-` keywords checked only in part), for `capsule schema check`.
    pub notes: Vec<Problem>,
}

impl LoadedSchema {
    /// Parses and normalises a schema file. Problems name the file and a pointer.
    pub fn parse(sref: &SchemaRef, bytes: &[u8]) -> Result<LoadedSchema, Vec<Problem>> {
        LoadedSchema::parse_with(sref, bytes, true)
    }

    /// `meta_validate: false` skips checking the schema against its meta-schema, the
    /// largest part of loading one (see [`SchemaRegistry::for_display`]).
    fn parse_with(
        sref: &SchemaRef,
        bytes: &[u8],
        meta_validate: bool,
    ) -> Result<LoadedSchema, Vec<Problem>> {
        let path = sref.path();
        let (text, file) = crate::json::parse(&path, bytes)?;
        let Value::Object(mut top) = file else {
            return Err(vec![Problem::at(
                &path,
                &text,
                "",
                "a schema must be a JSON object",
            )]);
        };
        let mut problems = Vec::new();

        let (form, mut body, body_pointer, title, experiment, config) = if top
            .contains_key("deposit_schema")
        {
            for (key, field) in [("name", &sref.name), ("version", &sref.version)] {
                if let Some(v) = top.get(key).and_then(Value::as_str) {
                    if v != field.as_str() {
                        problems.push(Problem::at(
                                &path,
                                &text,
                                &format!("/{key}"),
                                format!(
                                    "the file says {key} `{v}` but lives at {path}; move it to schemas/{}/{}.json or fix the {key}",
                                    top.get("name").and_then(Value::as_str).unwrap_or(&sref.name),
                                    top.get("version").and_then(Value::as_str).unwrap_or(&sref.version),
                                ),
                            ));
                    }
                }
            }
            let body = top.remove("deposit_schema").unwrap_or(Value::Null);
            (
                SchemaForm::CapWrapper,
                body,
                "/deposit_schema".to_string(),
                str_field(&top, "fullname"),
                str_field(&top, "experiment"),
                top.remove("config").unwrap_or(Value::Null),
            )
        } else if top.contains_key("jsonschema") && !top.contains_key("properties") {
            let body = top.remove("jsonschema").unwrap_or(Value::Null);
            if top.get("is_deposit") == Some(&Value::Bool(false)) && looks_like_ui_schema(&body) {
                return Err(vec![Problem::at(
                        &path,
                        &text,
                        "/jsonschema",
                        "this is a CAP form-layout (uiSchema) file, not a JSON Schema: it only says how to draw the form; keep it out of schemas/ or convert it to a schema",
                    )]);
            }
            (
                SchemaForm::LegacyCapWrapper,
                body,
                "/jsonschema".to_string(),
                str_field(&top, "fullname"),
                str_field(&top, "experiment"),
                top.remove("config").unwrap_or(Value::Null),
            )
        } else {
            let config = top.remove("config").unwrap_or(Value::Null);
            let title = str_field(&top, "title");
            let experiment = config
                .get("experiment")
                .and_then(Value::as_str)
                .map(str::to_string);
            (
                SchemaForm::Plain,
                Value::Object(top),
                String::new(),
                title,
                experiment,
                config,
            )
        };

        if !body.is_object() {
            problems.push(Problem::at(
                &path,
                &text,
                &body_pointer,
                "the schema body must be a JSON object",
            ));
            return Err(problems);
        }
        if !(config.is_null() || config.is_object()) {
            let pointer = "/config".to_string();
            problems.push(Problem::at(
                &path,
                &text,
                &pointer,
                "`config` must be an object",
            ));
        }

        let default_meta = if form == SchemaForm::Plain {
            DRAFT7
        } else {
            DRAFT4
        };
        // Which engine is chosen by what the author wrote, before `$schema` is filled in.
        let written = body.as_object().unwrap().clone();
        set_meta_schema(&mut body, default_meta);
        let declared = body
            .get("$schema")
            .and_then(Value::as_str)
            .and_then(Draft::from_meta)
            .unwrap_or(Draft::D4);
        let title = title.or_else(|| str_field(body.as_object().unwrap(), "title"));

        let mut refs = BTreeSet::new();
        let mut cap_refs = false;
        let mut ctx = Normalise {
            problems: &mut problems,
            refs: &mut refs,
            cap_refs: &mut cap_refs,
            path: &path,
            text: &text,
            self_ref: sref,
        };
        ctx.schema(&mut body, &body_pointer);
        let (engine, engine_reason) = engine::choose(form, &written, cap_refs);
        drop(written);
        let notes = engine::notes(engine, declared, &body, &body_pointer)
            .into_iter()
            .map(|(pointer, message)| Problem::at(&path, &text, &pointer, message))
            .collect();

        let checked = match meta_validate {
            true => jsonschema::meta::validate(&body),
            false => Ok(()),
        };
        if let Err(e) = checked {
            let pointer = format!("{body_pointer}{}", e.instance_path());
            problems.push(Problem::at(
                &path,
                &text,
                &pointer,
                format!("this is not a valid JSON Schema: {}", meta_reason(&e)),
            ));
        }

        if problems.is_empty() {
            Ok(LoadedSchema {
                sref: sref.clone(),
                path,
                form,
                title,
                experiment,
                config,
                body,
                body_pointer,
                text,
                refs,
                engine,
                engine_reason,
                declared,
                notes,
            })
        } else {
            Err(problems)
        }
    }

    pub fn reviewable(&self) -> bool {
        self.config.get("reviewable").and_then(Value::as_bool) == Some(true)
    }
}

fn str_field(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get(key).and_then(Value::as_str).map(str::to_string)
}

/// A uiSchema maps field names to `ui:` options and has no schema keywords at its root.
fn looks_like_ui_schema(body: &Value) -> bool {
    let Some(map) = body.as_object() else {
        return false;
    };
    let schema_keywords = [
        "type",
        "properties",
        "$schema",
        "items",
        "allOf",
        "oneOf",
        "anyOf",
        "$ref",
    ];
    if schema_keywords.iter().any(|k| map.contains_key(*k)) {
        return false;
    }
    serde_json::to_string(body).is_ok_and(|s| s.contains("\"ui:"))
}

fn set_meta_schema(body: &mut Value, default: &str) {
    let map = body.as_object_mut().unwrap();
    let known = map
        .get("$schema")
        .and_then(Value::as_str)
        .is_some_and(|s| s.contains("json-schema.org/"));
    if !known {
        // Missing, or a CAP URL in `$schema` (one fixture does this): CAP files are
        // checked against the draft-04 meta-schema, the draft nearly all of them
        // declare (their deposits are judged by CAP's engine, Draft 7, whatever this
        // says: see `engine`); plain capsule schemas default to draft-07.
        map.insert("$schema".into(), Value::String(default.into()));
    }
}

/// The meta-schema's complaint, without the dump of the offending value.
fn meta_reason(e: &ValidationError<'_>) -> String {
    match e.kind() {
        ValidationErrorKind::Type { kind } => {
            format!("the value has the wrong type (expected {kind:?})")
        }
        ValidationErrorKind::Enum { options } => format!("the value must be one of {options}"),
        ValidationErrorKind::MinItems { limit } => {
            format!("the list needs at least {limit} item(s)")
        }
        _ => {
            let text = e.to_string();
            if text.len() > 200 {
                format!("{}…", text.chars().take(200).collect::<String>())
            } else {
                text
            }
        }
    }
}

struct Normalise<'a> {
    problems: &'a mut Vec<Problem>,
    refs: &'a mut BTreeSet<SchemaRef>,
    /// Whether a `$ref` was written as a CAP address.
    cap_refs: &'a mut bool,
    path: &'a str,
    text: &'a str,
    self_ref: &'a SchemaRef,
}

/// Keywords whose value is one subschema.
const ONE_SUBSCHEMA: &[&str] = &[
    "additionalProperties",
    "additionalItems",
    "contains",
    "propertyNames",
    "not",
    "if",
    "then",
    "else",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contentSchema",
];
/// Keywords whose value maps names to subschemas.
const MAP_OF_SUBSCHEMAS: &[&str] = &[
    "properties",
    "patternProperties",
    "definitions",
    "$defs",
    "dependentSchemas",
    "dependencies",
];
/// Keywords whose value is a list of subschemas.
const LIST_OF_SUBSCHEMAS: &[&str] = &["allOf", "anyOf", "oneOf", "prefixItems"];

/// Calls `f` on every direct subschema of `schema` with its pointer and whether it
/// sits under a keyword that chooses between alternatives.
fn for_each_subschema(
    schema: &mut Map<String, Value>,
    pointer: &str,
    f: &mut dyn FnMut(&mut Value, String, bool),
) {
    for (key, value) in schema.iter_mut() {
        let key_pointer = format!("{pointer}/{}", escape_token(key));
        let choosing = matches!(key.as_str(), "anyOf" | "oneOf" | "not" | "if");
        if ONE_SUBSCHEMA.contains(&key.as_str()) {
            if value.is_object() {
                f(value, key_pointer, choosing);
            }
        } else if key == "items" {
            match value {
                Value::Object(_) => f(value, key_pointer, false),
                Value::Array(items) => {
                    for (i, item) in items.iter_mut().enumerate() {
                        f(item, format!("{key_pointer}/{i}"), false);
                    }
                }
                _ => {}
            }
        } else if MAP_OF_SUBSCHEMAS.contains(&key.as_str()) {
            if let Value::Object(map) = value {
                for (name, sub) in map.iter_mut() {
                    if sub.is_object() {
                        f(sub, format!("{key_pointer}/{}", escape_token(name)), false);
                    }
                }
            }
        } else if LIST_OF_SUBSCHEMAS.contains(&key.as_str()) {
            if let Value::Array(list) = value {
                for (i, sub) in list.iter_mut().enumerate() {
                    f(sub, format!("{key_pointer}/{i}"), choosing);
                }
            }
        }
    }
}

fn is_truthy_flag(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

impl Normalise<'_> {
    fn schema(&mut self, value: &mut Value, pointer: &str) {
        let Value::Object(schema) = value else { return };

        // Legacy per-property flags move up to this object.
        let mut lifted_required = Vec::new();
        let mut lifted_dependencies = Vec::new();
        if let Some(Value::Object(props)) = schema.get_mut("properties") {
            for (name, prop) in props.iter_mut() {
                let Value::Object(prop) = prop else { continue };
                if let Some(flag) = prop.get("required").and_then(is_truthy_flag) {
                    prop.remove("required");
                    if flag {
                        lifted_required.push(name.clone());
                    }
                }
                if matches!(prop.get("dependencies"), Some(Value::Array(_))) {
                    let deps = prop.remove("dependencies").unwrap();
                    lifted_dependencies.push((name.clone(), deps));
                }
            }
        }
        if !lifted_required.is_empty() {
            let required = schema
                .entry("required")
                .or_insert_with(|| Value::Array(Vec::new()));
            if !required.is_array() {
                *required = Value::Array(Vec::new());
            }
            let list = required.as_array_mut().unwrap();
            for name in lifted_required {
                if !list.iter().any(|v| v.as_str() == Some(&name)) {
                    list.push(Value::String(name));
                }
            }
        }
        if !lifted_dependencies.is_empty() {
            let deps = schema
                .entry("dependencies")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(deps) = deps {
                for (name, list) in lifted_dependencies {
                    deps.entry(name).or_insert(list);
                }
            }
        }
        // A leftover boolean `required` at the root has no parent to move to.
        if schema.get("required").and_then(is_truthy_flag).is_some() {
            schema.remove("required");
        }
        if matches!(schema.get("required"), Some(Value::Array(list)) if list.is_empty()) {
            schema.remove("required");
        }
        if matches!(schema.get("enum"), Some(Value::Array(list)) if list.is_empty()) {
            schema.remove("enum");
        }
        if let Some(Value::String(reference)) = schema.get_mut("$ref") {
            self.rewrite_ref(reference, &format!("{pointer}/$ref"));
        }

        let mut children = Vec::new();
        for_each_subschema(schema, pointer, &mut |sub, sub_pointer, _| {
            children.push((sub as *mut Value, sub_pointer));
        });
        for (sub, sub_pointer) in children {
            // SAFETY: the pointers come from distinct entries of `schema`, which is not
            // touched while they are used; this avoids cloning large schemas.
            self.schema(unsafe { &mut *sub }, &sub_pointer);
        }
    }

    fn rewrite_ref(&mut self, reference: &mut String, pointer: &str) {
        if reference.starts_with('#') {
            return;
        }
        *self.cap_refs |= engine::is_cap_url(reference);
        let (target, fragment) = match reference.split_once('#') {
            Some((t, f)) => (t.to_string(), format!("#{f}")),
            None => (reference.clone(), String::new()),
        };
        match parse_schema_ref(&target).or_else(|| parse_latest_schema_ref(&target)) {
            Some(sref) => {
                if &sref != self.self_ref {
                    self.refs.insert(sref.clone());
                }
                *reference = format!("{}{fragment}", canonical_uri(&sref));
            }
            None => self.problems.push(Problem::at(
                self.path,
                self.text,
                pointer,
                format!(
                    "cannot resolve `$ref` `{reference}`: it names no schema of this archive; refer to another schema as `name/version` (or its CAP URL ending in `name-vVERSION.json`), or to a part of this one with `#/definitions/...`"
                ),
            )),
        }
    }
}

/// A copy of `body` without completeness requirements, for drafts.
fn without_required(body: &Value) -> Value {
    fn strip(value: &mut Value, choosing: bool) {
        let Value::Object(schema) = value else { return };
        if !choosing && schema.get("required").is_some_and(Value::is_array) {
            schema.remove("required");
        }
        let mut children = Vec::new();
        for_each_subschema(schema, "", &mut |sub, _, sub_choosing| {
            children.push((sub as *mut Value, choosing || sub_choosing));
        });
        for (sub, sub_choosing) in children {
            // SAFETY: as in `Normalise::schema`.
            strip(unsafe { &mut *sub }, sub_choosing);
        }
    }
    let mut copy = body.clone();
    strip(&mut copy, false);
    copy
}

/// How strictly to validate: drafts may be incomplete, records may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Draft,
    Publish,
}

/// A schema with everything it refers to, ready to validate deposits.
pub struct CompiledSchema {
    pub root: Arc<LoadedSchema>,
    /// Every schema reachable through `$ref`, by canonical URI (the root included).
    pub documents: HashMap<String, Arc<LoadedSchema>>,
    draft: OnceLock<Result<Validator, Vec<Problem>>>,
    publish: OnceLock<Result<Validator, Vec<Problem>>>,
    /// For CAP's engine without `cap_strict`: a validator that checks formats, whose
    /// complaints are warnings. `None` when no warning can come from it.
    formats: OnceLock<Option<Validator>>,
    /// Whether some part uses `x-validate-unique-cadi`.
    unique: OnceLock<bool>,
    /// `[validation]` as the registry had it.
    validation: ValidationSettings,
}

/// Answers jsonschema's requests for other schemas from the archive's own documents.
struct ArchiveRetriever {
    documents: HashMap<String, Value>,
}

impl Retrieve for ArchiveRetriever {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let text = uri.as_str();
        let key = text.split('#').next().unwrap_or(text);
        self.documents.get(key).cloned().ok_or_else(|| {
            format!(
                "`{text}` is not a schema of this archive (nothing is fetched over the network)"
            )
            .into()
        })
    }
}

impl CompiledSchema {
    /// The validator for `mode`, compiled on first use.
    pub fn validator(&self, mode: Mode) -> Result<&Validator, &[Problem]> {
        let cell = match mode {
            Mode::Draft => &self.draft,
            Mode::Publish => &self.publish,
        };
        cell.get_or_init(|| self.compile(mode))
            .as_ref()
            .map_err(Vec::as_slice)
    }

    /// The rules this schema's deposits are judged by.
    pub fn engine(&self) -> Engine {
        self.root.engine
    }

    /// Whether `format` refuses a deposit (else, under CAP's engine, it warns).
    pub fn enforces_formats(&self) -> bool {
        self.root.engine == Engine::Standard || self.validation.cap_strict
    }

    /// The validator whose format complaints are warnings (see [`CompiledSchema::formats`]).
    pub fn format_warnings(&self) -> Option<&Validator> {
        self.formats
            .get_or_init(|| {
                let uses_formats = self
                    .documents
                    .values()
                    .any(|doc| engine::uses(&doc.body, "format"));
                if self.enforces_formats() || !uses_formats {
                    return None;
                }
                self.build(Mode::Draft, true).ok()
            })
            .as_ref()
    }

    fn compile(&self, mode: Mode) -> Result<Validator, Vec<Problem>> {
        self.build(mode, self.enforces_formats())
    }

    /// Whether deposits of this schema hold values that must be unique in the archive
    /// (CAP's `x-validate-unique-cadi`).
    pub fn has_unique_values(&self) -> bool {
        *self.unique.get_or_init(|| {
            self.documents
                .values()
                .any(|doc| engine::uses(&doc.body, crate::validate::UNIQUE_KEYWORD))
        })
    }

    /// The values of `deposit` whose schema carries `keyword`, with their pointers.
    pub fn marked_values<'v>(&self, deposit: &'v Value, keyword: &str) -> Vec<(String, &'v Value)> {
        fn walk<'v>(
            node: SchemaNode<'_>,
            value: &'v Value,
            pointer: String,
            keyword: &str,
            depth: usize,
            out: &mut Vec<(String, &'v Value)>,
        ) {
            if node.value().get(keyword).is_some() {
                out.push((pointer.clone(), value));
            }
            if depth > 64 {
                return;
            }
            let children: Vec<(String, &Value)> = match value {
                Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
                Value::Array(list) => list
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (i.to_string(), v))
                    .collect(),
                _ => return,
            };
            for (token, child) in children {
                if let Some(sub) = node.child(&token) {
                    let at = format!("{pointer}/{}", escape_token(&token));
                    walk(sub, child, at, keyword, depth + 1, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(self.node(), deposit, String::new(), keyword, 0, &mut out);
        out
    }

    fn build(&self, mode: Mode, formats: bool) -> Result<Validator, Vec<Problem>> {
        let cap = self.root.engine == Engine::Cap;
        let prepare = |body: &Value| {
            let mut body = match mode {
                Mode::Draft => without_required(body),
                Mode::Publish => body.clone(),
            };
            // CAP's engine is Draft 7 for every document, whatever each declares.
            if let (true, Value::Object(map)) = (cap, &mut body) {
                map.insert("$schema".into(), Value::String(DRAFT7.into()));
            }
            body
        };
        let documents = self
            .documents
            .iter()
            .map(|(uri, doc)| (uri.clone(), prepare(&doc.body)))
            .collect();
        let root = prepare(&self.root.body);
        cap_keywords::register(jsonschema::options())
            .with_base_uri(canonical_uri(&self.root.sref))
            .with_retriever(ArchiveRetriever { documents })
            .should_validate_formats(formats)
            .build(&root)
            .map_err(|e| {
                let pointer = format!("{}{}", self.root.body_pointer, e.instance_path());
                vec![Problem::at(
                    &self.root.path,
                    &self.root.text,
                    &pointer,
                    format!("the schema does not compile: {e}"),
                )]
            })
    }

    /// The titles along `pointer` (an instance pointer), e.g. `Basic Information › Status`.
    /// Array positions attach to the array's title (`People #2 › E-mail`); a field
    /// without a title shows its key.
    pub fn title_path(&self, pointer: &str) -> String {
        let mut titles: Vec<String> = Vec::new();
        let mut any_title = false;
        let mut node = Some(resolve(&self.root.body, &self.documents, &self.root.body));
        for token in pointer_tokens(pointer) {
            let is_index = node
                .is_some_and(|(s, _)| s.get("properties").and_then(|p| p.get(&token)).is_none())
                && token.parse::<usize>().is_ok();
            node =
                node.and_then(|(schema, doc)| child_schema(schema, &token, doc, &self.documents));
            if is_index {
                let position = format!("#{}", token.parse::<usize>().unwrap() + 1);
                match titles.last_mut() {
                    Some(last) => {
                        last.push(' ');
                        last.push_str(&position);
                    }
                    None => titles.push(position),
                }
            } else {
                let title = node.and_then(|(s, _)| s.get("title").and_then(Value::as_str));
                any_title |= title.is_some();
                titles.push(title.map_or(token, str::to_string));
            }
        }
        // Keys alone would only repeat the pointer.
        if any_title {
            titles.join(" › ")
        } else {
            String::new()
        }
    }
}

/// Loads and compiles schemas from archive sources, caching by content so that a push
/// of many commits, or a run over many deposits, compiles each schema once.
#[derive(Default)]
pub struct SchemaRegistry {
    loaded: HashMap<Oid, Arc<LoadedSchema>>,
    compiled: HashMap<Vec<Oid>, Arc<CompiledSchema>>,
    /// Skip the meta-schema check (see [`SchemaRegistry::for_display`]).
    display_only: bool,
    /// `[validation]` of the archive whose deposits are judged.
    validation: ValidationSettings,
}

impl SchemaRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry for an archive with these `[validation]` settings (capsule.toml).
    pub fn with_validation(validation: ValidationSettings) -> Self {
        SchemaRegistry {
            validation,
            ..Self::default()
        }
    }

    /// A registry for showing deposits through their schemas (field titles in search
    /// results), not for judging them: schemas are not checked against their
    /// meta-schema, which is most of the cost of loading one and would be paid by
    /// every `capsule search`. A schema that is not valid JSON Schema still loads; its
    /// titles are shown as they are. Never use this to validate.
    pub fn for_display() -> Self {
        SchemaRegistry {
            display_only: true,
            ..Self::default()
        }
    }

    /// Loads one schema file (without its references).
    pub fn load(
        &mut self,
        source: &dyn Source,
        sref: &SchemaRef,
    ) -> Result<Option<(Oid, Arc<LoadedSchema>)>, LoadError> {
        let resolved;
        let sref = if sref.version == LATEST {
            let newest = list_schemas(source)
                .map_err(|e| LoadError::Io(format!("schemas/{}", sref.name), e))?
                .into_iter()
                .find(|(name, _)| name == &sref.name)
                .and_then(|(_, versions)| versions.last().cloned());
            let Some(version) = newest else {
                return Ok(None);
            };
            resolved = SchemaRef {
                name: sref.name.clone(),
                version,
            };
            &resolved
        } else {
            sref
        };
        let path = sref.path();
        let Some(id) = source
            .content_id(&path)
            .map_err(|e| LoadError::Io(path.clone(), e))?
        else {
            return Ok(None);
        };
        if let Some(found) = self.loaded.get(&id) {
            return Ok(Some((id, found.clone())));
        }
        let bytes = source
            .read(&path)
            .map_err(|e| LoadError::Io(path.clone(), e))?
            .ok_or_else(|| LoadError::Io(path.clone(), std::io::ErrorKind::NotFound.into()))?;
        let loaded = Arc::new(
            LoadedSchema::parse_with(sref, &bytes, !self.display_only)
                .map_err(LoadError::Invalid)?,
        );
        self.loaded.insert(id, loaded.clone());
        Ok(Some((id, loaded)))
    }

    /// Loads a schema and everything it refers to, ready to validate.
    /// `Ok(None)` when the archive has no such schema.
    pub fn compile(
        &mut self,
        source: &dyn Source,
        sref: &SchemaRef,
    ) -> Result<Option<Arc<CompiledSchema>>, LoadError> {
        let Some((root_id, root)) = self.load(source, sref)? else {
            return Ok(None);
        };
        let mut key = vec![root_id];
        let mut documents = HashMap::new();
        documents.insert(canonical_uri(sref), root.clone());
        let mut queue: Vec<Arc<LoadedSchema>> = vec![root.clone()];
        let mut problems = Vec::new();
        while let Some(doc) = queue.pop() {
            for target in &doc.refs {
                let uri = canonical_uri(target);
                if documents.contains_key(&uri) {
                    continue;
                }
                match self.load(source, target) {
                    Ok(Some((id, loaded))) => {
                        key.push(id);
                        documents.insert(uri, loaded.clone());
                        queue.push(loaded);
                    }
                    Ok(None) => {
                        let pointer = find_ref_pointer(&doc, target);
                        problems.push(Problem::at(
                            &doc.path,
                            &doc.text,
                            &pointer,
                            if target.version == LATEST {
                                format!("`$ref` names schema {}, which this archive does not have in any version; add it under schemas/{}/ or fix the reference", target.name, target.name)
                            } else {
                                format!(
                                    "`$ref` names schema {target}, which this archive does not have (expected at {}); add that schema or fix the reference",
                                    target.path()
                                )
                            },
                        ));
                    }
                    Err(LoadError::Invalid(mut inner)) => problems.append(&mut inner),
                    Err(e) => return Err(e),
                }
            }
        }
        if !problems.is_empty() {
            return Err(LoadError::Invalid(problems));
        }
        key[1..].sort();
        if let Some(found) = self.compiled.get(&key) {
            return Ok(Some(found.clone()));
        }
        let compiled = Arc::new(CompiledSchema {
            root,
            documents,
            draft: OnceLock::new(),
            publish: OnceLock::new(),
            formats: OnceLock::new(),
            unique: OnceLock::new(),
            validation: self.validation,
        });
        self.compiled.insert(key, compiled.clone());
        Ok(Some(compiled))
    }
}

/// Finds the pointer (in file terms) of the first `$ref` that names `target`.
fn find_ref_pointer(doc: &LoadedSchema, target: &SchemaRef) -> String {
    fn walk(value: &Value, pointer: String, uri: &str) -> Option<String> {
        match value {
            Value::Object(map) => {
                if map
                    .get("$ref")
                    .and_then(Value::as_str)
                    .is_some_and(|r| r.starts_with(uri))
                {
                    return Some(format!("{pointer}/$ref"));
                }
                map.iter()
                    .find_map(|(k, v)| walk(v, format!("{pointer}/{}", escape_token(k)), uri))
            }
            Value::Array(list) => list
                .iter()
                .enumerate()
                .find_map(|(i, v)| walk(v, format!("{pointer}/{i}"), uri)),
            _ => None,
        }
    }
    walk(&doc.body, doc.body_pointer.clone(), &canonical_uri(target)).unwrap_or_default()
}

/// Why a schema could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {0}: {1}")]
    Io(String, std::io::Error),
    #[error("the schema has {} problem(s)", .0.len())]
    Invalid(Vec<Problem>),
}

/// The schema a person names on the command line: `NAME` for its newest version (even
/// when the name holds `-v`, as `atlas-variables` does, if the archive has a schema of
/// that name), `NAME/VERSION`, `NAME-vVERSION`, or a CAP URL. `None` when the text
/// names no schema at all.
pub fn schema_ref_from_user(source: &dyn Source, text: &str) -> std::io::Result<Option<SchemaRef>> {
    let known = list_schemas(source)?
        .into_iter()
        .any(|(name, _)| name == text);
    Ok(if known {
        parse_latest_schema_ref(&format!("{text}/{LATEST}"))
    } else if text.contains('/') || text.contains("-v") {
        parse_schema_ref(text).or_else(|| parse_latest_schema_ref(text))
    } else {
        parse_latest_schema_ref(&format!("{text}/{LATEST}"))
    })
}

/// Lists the schemas in a source: `(name, versions sorted numerically)`.
pub fn list_schemas(source: &dyn Source) -> std::io::Result<Vec<(String, Vec<String>)>> {
    let mut out = Vec::new();
    for name in source.list("schemas")? {
        let mut versions: Vec<crate::version::Version> = source
            .list(&format!("schemas/{name}"))?
            .iter()
            .filter_map(|f| f.strip_suffix(".json"))
            .filter_map(|v| v.parse().ok())
            .collect();
        if versions.is_empty() {
            continue;
        }
        versions.sort();
        out.push((name, versions.iter().map(|v| v.to_string()).collect()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
