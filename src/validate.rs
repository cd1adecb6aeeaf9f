//! Validating deposits: the one engine behind `capsule validate` and the push hook.
//!
//! Work is split so that the expensive parts run in parallel: reading and parsing
//! files needs no shared state, choosing and compiling schemas goes through the
//! (single-threaded) registry, and running compiled validators is again parallel.
//! Once a `$schema` text has led to a compiled schema ([`ChosenSchemas`]), deposits
//! that name it are checked without going back to the registry, so a run over many
//! deposits does the registry's work once per schema, not once per deposit.
//!
//! A valid deposit costs a parse and one `is_valid` pass: problems, with their
//! line:column and title paths, are only worked out for deposits that have them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use jsonschema::error::ValidationErrorKind;
use jsonschema::ValidationError;
use serde_json::Value;

use crate::archive::Source;
use crate::deposit::{parse_schema_ref, SchemaRef};
use crate::locate::escape_token;
use crate::problem::Problem;
use crate::schema::{list_schemas, CompiledSchema, LoadError, Mode, SchemaRegistry};

/// A deposit file read and parsed, before its schema is known.
pub struct ParsedDeposit {
    pub path: String,
    pub text: String,
    pub value: Value,
}

/// Reads and parses a deposit file; problems for bytes that are not a JSON object.
pub fn parse_deposit(path: &str, bytes: &[u8]) -> Result<ParsedDeposit, Vec<Problem>> {
    let (text, value) = crate::json::parse(path, bytes)?;
    if !value.is_object() {
        return Err(vec![Problem::at(
            path,
            &text,
            "",
            "a deposit must be a JSON object ({ ... })",
        )]);
    }
    Ok(ParsedDeposit {
        path: path.to_string(),
        text,
        value,
    })
}

/// A deposit paired with the compiled schema it names.
pub struct Prepared {
    pub deposit: ParsedDeposit,
    pub schema: Arc<CompiledSchema>,
}

/// Finds and compiles the schema a deposit names in `$schema`.
pub fn prepare(
    registry: &mut SchemaRegistry,
    source: &dyn Source,
    deposit: ParsedDeposit,
) -> Result<Prepared, Vec<Problem>> {
    let at = |pointer: &str, message: String| {
        Problem::at(&deposit.path, &deposit.text, pointer, message)
    };
    let reference = match deposit.value.get("$schema") {
        None => {
            return Err(vec![at(
                "",
                "the deposit has no `$schema`: add \"$schema\": \"<name>/<version>\" naming one of the archive's schemas".into(),
            )])
        }
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(vec![at("/$schema", "`$schema` must be a string such as \"analysis/1.0.0\"".into())]),
    };
    let Some(sref) = parse_schema_ref(&reference) else {
        return Err(vec![at(
            "/$schema",
            format!("`{reference}` does not name a schema: write \"<name>/<version>\", \"<name>-v<version>\" or a CAP schema URL"),
        )]);
    };
    match registry.compile(source, &sref) {
        Ok(Some(schema)) => Ok(Prepared { deposit, schema }),
        Ok(None) => Err(vec![at("/$schema", unknown_schema_message(source, &sref))]),
        Err(LoadError::Invalid(inner)) => {
            let mut problems = vec![at(
                "/$schema",
                format!(
                    "schema {sref} cannot be used: it has {} problem(s), listed for {}",
                    inner.len(),
                    sref.path()
                ),
            )];
            problems.extend(inner);
            Err(problems)
        }
        Err(e @ LoadError::Io(..)) => Err(vec![at("/$schema", e.to_string())]),
    }
}

/// The compiled schema that each `$schema` text has led to, for one source.
///
/// Finding a schema through the registry reads and hashes its file (that is how the
/// registry knows it has compiled that content before); remembering the answer by the
/// exact text deposits write makes every further deposit a map lookup, which the
/// validating threads can do on their own.
#[derive(Default)]
pub struct ChosenSchemas {
    by_reference: HashMap<String, Arc<CompiledSchema>>,
}

impl ChosenSchemas {
    /// The schema of a deposit whose `$schema` text has been prepared before.
    pub fn lookup(&self, deposit: &ParsedDeposit) -> Option<Arc<CompiledSchema>> {
        let reference = deposit.value.get("$schema")?.as_str()?;
        self.by_reference.get(reference).cloned()
    }

    /// The schema a parsed value names, when that schema was chosen before and the
    /// value passes it: the whole check of a valid deposit, without its text, its
    /// path or a [`ParsedDeposit`]. `None` means: go the long way.
    pub fn passes(&self, value: &Value, mode: Mode) -> Option<&Arc<CompiledSchema>> {
        let reference = value.get("$schema")?.as_str()?;
        let schema = self.by_reference.get(reference)?;
        let validator = schema.validator(mode).ok()?;
        // A deposit that may earn a warning, or whose values must be unique in the
        // archive, goes the long way too.
        let quiet = schema.format_warnings().is_none_or(|f| f.is_valid(value))
            && !schema.has_unique_values();
        (quiet && validator.is_valid(value)).then_some(schema)
    }

    /// [`prepare`], answered from what was chosen before when it can be.
    /// `source` must be the source of every earlier call.
    pub fn prepare(
        &mut self,
        registry: &mut SchemaRegistry,
        source: &dyn Source,
        deposit: ParsedDeposit,
    ) -> Result<Prepared, Vec<Problem>> {
        if let Some(schema) = self.lookup(&deposit) {
            return Ok(Prepared { deposit, schema });
        }
        let reference = deposit
            .value
            .get("$schema")
            .and_then(Value::as_str)
            .map(str::to_string);
        let prepared = prepare(registry, source, deposit)?;
        if let Some(reference) = reference {
            self.by_reference
                .insert(reference, Arc::clone(&prepared.schema));
        }
        Ok(prepared)
    }
}

fn unknown_schema_message(source: &dyn Source, sref: &SchemaRef) -> String {
    let versions = list_schemas(source)
        .unwrap_or_default()
        .into_iter()
        .find(|(name, _)| name == &sref.name)
        .map(|(_, v)| v);
    match versions {
        Some(v) => format!(
            "unknown schema version {sref}: the archive has {} version(s) {}; pick one of them",
            sref.name,
            v.join(", ")
        ),
        None => format!(
            "unknown schema {sref}: there is no {} in this archive; add the schema or fix `$schema`",
            sref.path()
        ),
    }
}

/// Runs the schema's validator over a prepared deposit.
pub fn check(prepared: &Prepared, mode: Mode) -> Vec<Problem> {
    let deposit = &prepared.deposit;
    let validator = match prepared.schema.validator(mode) {
        Ok(v) => v,
        Err(problems) => return problems.to_vec(),
    };
    // Much cheaper than collecting errors, and almost every deposit is valid.
    if validator.is_valid(&deposit.value) {
        return Vec::new();
    }
    let mut problems = Vec::new();
    for error in validator.iter_errors(&deposit.value) {
        for (pointer, message) in describe(&error) {
            let title_path = prepared.schema.title_path(&pointer);
            problems.push(
                Problem::at(&deposit.path, &deposit.text, &pointer, message)
                    .with_title_path(title_path),
            );
        }
    }
    problems.sort_by(|a, b| (a.line, a.column, &a.pointer).cmp(&(b.line, b.column, &b.pointer)));
    problems
}

/// What checking deposits found: problems refuse, warnings only inform.
#[derive(Debug, Default)]
pub struct Checked {
    pub problems: Vec<Problem>,
    pub warnings: Vec<Problem>,
}

/// The checks capsule adds on top of CAP's engine, as warnings: `format`, which CAP
/// never checked (an archive that sets `[validation] cap_strict` gets them as problems
/// from [`check`] instead).
pub fn warnings(prepared: &Prepared) -> Vec<Problem> {
    let deposit = &prepared.deposit;
    let Some(validator) = prepared.schema.format_warnings() else {
        return Vec::new();
    };
    if validator.is_valid(&deposit.value) {
        return Vec::new();
    }
    let mut warnings = Vec::new();
    for error in validator.iter_errors(&deposit.value) {
        let ValidationErrorKind::Format { format } = error.kind() else {
            continue;
        };
        let pointer = error.instance_path().as_str().to_string();
        warnings.push(
            Problem::at(
                &deposit.path,
                &deposit.text,
                &pointer,
                format!(
                    "{} is not a valid {}; CAP never checked formats, so this is only a warning (`[validation] cap_strict = true` in capsule.toml makes it a problem)",
                    short_value(error.instance()),
                    format_words(format)
                ),
            )
            .with_title_path(prepared.schema.title_path(&pointer)),
        );
    }
    warnings
}

/// The keyword CAP's CMS schemas put on `cadi_id`: no two analyses share a CADI entry.
pub const UNIQUE_KEYWORD: &str = "x-validate-unique-cadi";

/// `x-validate-unique-cadi`: each value it marks must not be held, at the same place,
/// by another deposit of the same schema (any version) in `source`.
///
/// `source` is the whole tree the deposits belong to (for the hook: the pushed commit),
/// so two deposits of one push that share a value are both refused. The hook calls this
/// (through [`check_deposits`]) for every commit; the tree is read only when a checked
/// deposit has such a value, once for all of them.
pub fn check_unique(prepared: &[Prepared], source: &dyn Source) -> std::io::Result<Vec<Problem>> {
    let wanted: Vec<(&Prepared, String, &Value)> = prepared
        .iter()
        .filter(|p| p.schema.has_unique_values())
        .flat_map(|p| {
            p.schema
                .marked_values(&p.deposit.value, UNIQUE_KEYWORD)
                .into_iter()
                .filter(|(_, v)| !matches!(v, Value::Null) && *v != &Value::String(String::new()))
                .map(move |(pointer, value)| (p, pointer, value))
        })
        .collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let mut problems = Vec::new();
    for id in crate::archive::deposit_ids(source)? {
        let path = crate::deposit::metadata_path(&id);
        let Some(bytes) = source.read(&path)? else {
            continue;
        };
        let Ok(other) = crate::json::from_bytes(&bytes) else {
            continue;
        };
        let other_schema = other
            .get("$schema")
            .and_then(Value::as_str)
            .and_then(parse_schema_ref);
        for (p, pointer, value) in &wanted {
            let same_schema = other_schema
                .as_ref()
                .is_some_and(|s| s.name == p.schema.root.sref.name);
            if path == p.deposit.path || !same_schema || other.pointer(pointer) != Some(*value) {
                continue;
            }
            let title = p.schema.title_path(pointer);
            problems.push(
                Problem::at(
                    &p.deposit.path,
                    &p.deposit.text,
                    pointer,
                    format!(
                        "{} is already the {} of deposit {id} ({path}); it must be unique (x-validate-unique-cadi): correct it, or work in that deposit",
                        short_value(value),
                        if title.is_empty() { "value here".to_string() } else { title.rsplit(" › ").next().unwrap_or_default().to_string() },
                    ),
                )
                .with_title_path(title),
            );
        }
    }
    Ok(problems)
}

/// Everything the hook and `capsule validate` check for deposits of one tree: the
/// schema ([`check_all`]), CAP's uniqueness rule ([`check_unique`]) and the warnings.
pub fn check_deposits(
    prepared: &[Prepared],
    mode: Mode,
    source: &dyn Source,
) -> std::io::Result<Checked> {
    let mut problems: Vec<Problem> = check_all(prepared, mode).into_iter().flatten().collect();
    problems.extend(check_unique(prepared, source)?);
    let warnings = prepared.iter().flat_map(warnings).collect();
    Ok(Checked { problems, warnings })
}

/// `[validation]` from the archive's capsule.toml in `source` (defaults when there is
/// none; a capsule.toml that does not parse is reported where it is checked).
pub fn validation_settings(source: &dyn Source) -> crate::settings::ValidationSettings {
    source
        .read("capsule.toml")
        .ok()
        .flatten()
        .and_then(|bytes| crate::settings::Settings::parse(&String::from_utf8_lossy(&bytes)).ok())
        .map(|s| s.validation)
        .unwrap_or_default()
}

/// Validates many deposits with all cores. Results come back in input order.
pub fn check_all(prepared: &[Prepared], mode: Mode) -> Vec<Vec<Problem>> {
    parallel_map(prepared, |p| check(p, mode))
}

/// Maps `f` over `items` on every available core, keeping the order.
///
/// Threads take small batches from a shared counter rather than fixed halves, so a
/// thread slowed down by other work on the machine does not leave the others idle.
pub fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    const BATCH: usize = 16;
    // Small inputs stay on this thread, before the core count is asked for: finding
    // it reads three files under /proc and /sys, a measurable part of a push that
    // changes one deposit.
    if items.len() < 64 {
        return items.iter().map(f).collect();
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let mut batches: Vec<(usize, Vec<R>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (f, next) = (&f, &next);
                scope.spawn(move || {
                    let mut done = Vec::new();
                    loop {
                        let start = next.fetch_add(BATCH, Ordering::Relaxed);
                        if start >= items.len() {
                            break done;
                        }
                        let end = (start + BATCH).min(items.len());
                        done.push((start, items[start..end].iter().map(f).collect::<Vec<R>>()));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a validation thread panicked"))
            .collect()
    });
    batches.sort_unstable_by_key(|(start, _)| *start);
    batches
        .into_iter()
        .flat_map(|(_, results)| results)
        .collect()
}

/// Turns one validator error into located, plain-English messages.
fn describe(error: &ValidationError<'_>) -> Vec<(String, String)> {
    let pointer = error.instance_path().as_str().to_string();
    let value = short_value(error.instance());
    let one = |message: String| vec![(pointer.clone(), message)];
    match error.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            vec![(
                format!("{pointer}/{}", escape_token(name)),
                format!("required field `{name}` is missing"),
            )]
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => unexpected
            .iter()
            .map(|name| {
                (
                    format!("{pointer}/{}", escape_token(name)),
                    format!(
                        "`{name}` is not a field of this schema: check the spelling, or remove it"
                    ),
                )
            })
            .collect(),
        ValidationErrorKind::Type { kind } => one(format!(
            "must be {}, not {}",
            type_words(&format!("{kind:?}")),
            crate::json::kind(error.instance())
        )),
        ValidationErrorKind::Enum { options } => one(format!(
            "{value} is not one of the allowed values: {}",
            list_values(options)
        )),
        ValidationErrorKind::Constant { expected_value } => {
            one(format!("must be exactly {}", short_value(expected_value)))
        }
        ValidationErrorKind::Format { format } => {
            one(format!("{value} is not a valid {}", format_words(format)))
        }
        ValidationErrorKind::Pattern { pattern } => one(format!(
            "{value} does not have the expected form (pattern `{pattern}`)"
        )),
        ValidationErrorKind::MinLength { limit } => {
            one(format!("must be at least {limit} character(s) long"))
        }
        ValidationErrorKind::MaxLength { limit } => {
            one(format!("must be at most {limit} character(s) long"))
        }
        ValidationErrorKind::MinItems { limit } => one(format!("needs at least {limit} item(s)")),
        ValidationErrorKind::MaxItems { limit } => one(format!("may have at most {limit} item(s)")),
        ValidationErrorKind::Minimum { limit } => {
            one(format!("must be at least {limit}, not {value}"))
        }
        ValidationErrorKind::Maximum { limit } => {
            one(format!("must be at most {limit}, not {value}"))
        }
        ValidationErrorKind::ExclusiveMinimum { limit } => {
            one(format!("must be greater than {limit}, not {value}"))
        }
        ValidationErrorKind::ExclusiveMaximum { limit } => {
            one(format!("must be less than {limit}, not {value}"))
        }
        ValidationErrorKind::UniqueItems => {
            one("the list has the same item twice; remove the duplicate".into())
        }
        ValidationErrorKind::OneOfNotValid { .. } | ValidationErrorKind::AnyOf { .. } => {
            one("matches none of the forms this field allows".into())
        }
        ValidationErrorKind::OneOfMultipleValid { .. } => one(
            "matches more than one of the forms this field allows; make it match exactly one"
                .into(),
        ),
        ValidationErrorKind::FalseSchema => one("this field is not allowed here".into()),
        ValidationErrorKind::Custom { message, .. } => one(message.clone()),
        ValidationErrorKind::Referencing(e) => {
            one(format!("the schema refers to something missing: {e}"))
        }
        _ => one(error.to_string()),
    }
}

fn type_words(kind: &str) -> String {
    // `Single(String)` / `Multiple(...)` from the Debug form, made readable.
    let lower = kind.to_lowercase();
    let names: Vec<&str> = [
        "string", "number", "integer", "object", "array", "boolean", "null",
    ]
    .into_iter()
    .filter(|n| lower.contains(n))
    .collect();
    let article = |n: &str| match n {
        "object" | "array" | "integer" => format!("an {n}"),
        "null" => "null".to_string(),
        _ => format!("a {n}"),
    };
    match names.as_slice() {
        [] => kind.to_string(),
        [one] => article(one),
        many => many
            .iter()
            .map(|n| article(n))
            .collect::<Vec<_>>()
            .join(" or "),
    }
}

fn format_words(format: &str) -> String {
    match format {
        "email" => "e-mail address".into(),
        "uri" => "URL (such as https://…)".into(),
        "date" => "date (YYYY-MM-DD)".into(),
        "date-time" => "date and time (such as 2024-05-01T12:00:00Z)".into(),
        other => other.to_string(),
    }
}

fn short_value(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 {
        format!("{}…", text.chars().take(57).collect::<String>())
    } else {
        text
    }
}

fn list_values(options: &Value) -> String {
    match options {
        Value::Array(list) if list.len() <= 12 => {
            list.iter().map(short_value).collect::<Vec<_>>().join(", ")
        }
        Value::Array(list) => format!(
            "{}, … ({} in all)",
            list.iter()
                .take(10)
                .map(short_value)
                .collect::<Vec<_>>()
                .join(", "),
            list.len()
        ),
        other => short_value(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::WorkTree;

    #[test]
    fn parallel_map_keeps_the_order() {
        let items: Vec<usize> = (0..1000).collect();
        let doubled = parallel_map(&items, |i| i * 2);
        assert_eq!(doubled, (0..1000).map(|i| i * 2).collect::<Vec<_>>());
        assert!(parallel_map(&[] as &[usize], |i| *i).is_empty());
    }

    #[test]
    fn a_chosen_schema_is_found_again_by_its_reference_text() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("schemas/t")).unwrap();
        std::fs::write(
            dir.path().join("schemas/t/1.0.0.json"),
            r#"{"type": "object", "properties": {"n": {"type": "integer"}}}"#,
        )
        .unwrap();
        let source = WorkTree::new(dir.path());
        let mut registry = SchemaRegistry::new();
        let mut chosen = ChosenSchemas::default();
        let deposit =
            |text: &str| parse_deposit("deposits/x/deposit.json", text.as_bytes()).unwrap();

        let first = deposit(r#"{"$schema": "t/1.0.0", "n": 1}"#);
        assert!(chosen.lookup(&first).is_none());
        let first = chosen.prepare(&mut registry, &source, first).unwrap();
        assert!(check(&first, Mode::Draft).is_empty());

        let second = deposit(r#"{"$schema": "t/1.0.0", "n": "one"}"#);
        let schema = chosen.lookup(&second).expect("same reference text");
        assert!(Arc::ptr_eq(&schema, &first.schema));
        let second = Prepared {
            deposit: second,
            schema,
        };
        let problems = check(&second, Mode::Draft);
        assert!(chosen.passes(&first.deposit.value, Mode::Draft).is_some());
        assert!(chosen.passes(&second.deposit.value, Mode::Draft).is_none());
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].pointer, "/n");
        assert_eq!(problems[0].message, "must be an integer, not a string");

        // Another spelling of the same schema goes through the registry once more.
        assert!(chosen
            .lookup(&deposit(r#"{"$schema": "t-v1.0.0"}"#))
            .is_none());
        let unknown = deposit(r#"{"$schema": "t/2.0.0"}"#);
        assert!(chosen.prepare(&mut registry, &source, unknown).is_err());
    }
}
