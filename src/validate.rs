//! Validating deposits: the one engine behind `capsule validate` and the push hook.
//!
//! Work is split so that the expensive parts run in parallel: reading and parsing
//! files needs no shared state, choosing and compiling schemas goes through the
//! (single-threaded) registry, and running compiled validators is again parallel.

use std::sync::Arc;

use jsonschema::error::ValidationErrorKind;
use jsonschema::ValidationError;
use serde_json::Value;

use crate::archive::Source;
use crate::deposit::{parse_schema_ref, SchemaRef};
use crate::locate::escape_token;
use crate::problem::Problem;
use crate::schema::{
    decode_json_text, list_schemas, parse_json, CompiledSchema, LoadError, Mode, SchemaRegistry,
};

/// A deposit file read and parsed, before its schema is known.
pub struct ParsedDeposit {
    pub path: String,
    pub text: String,
    pub value: Value,
}

/// Reads and parses a deposit file; problems for bytes that are not a JSON object.
pub fn parse_deposit(path: &str, bytes: &[u8]) -> Result<ParsedDeposit, Vec<Problem>> {
    let text = decode_json_text(path, bytes)?;
    let value = parse_json(path, &text)?;
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

/// Validates many deposits with all cores. Results come back in input order.
pub fn check_all(prepared: &[Prepared], mode: Mode) -> Vec<Vec<Problem>> {
    parallel_map(prepared, |p| check(p, mode))
}

/// Maps `f` over `items` on every available core, keeping the order.
pub fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len().max(1));
    if threads <= 1 || items.len() < 64 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| {
                let f = &f;
                scope.spawn(move || part.iter().map(f).collect::<Vec<R>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a validation thread panicked"))
            .collect()
    })
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
            json_type(error.instance())
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

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
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
