//! The one JSON reader for everything an archive holds: deposits, reviews, schemas.
//!
//! Two readers of the same bytes are two truths, and an attacker picks the one that was
//! not checked: a deposit with a UTF-8 byte order mark validated while the access rules
//! could not parse it (so a restriction was ignored), and an `_access` written twice
//! was read as the last one by some parts and refused by none. So every part of
//! capsule (validation, the hook's rules, the site, search, mail, history) reads archive
//! JSON through this module, with one policy:
//!
//! - the text must be UTF-8; a byte order mark at the start is accepted and ignored,
//!   everywhere alike (editors on Windows write one, and it carries no meaning);
//! - a key that appears twice in one object is refused, with its line and column: JSON
//!   leaves its meaning open, and readers disagree on which copy wins.
//!
//! JSON that capsule writes and reads back itself (outbox entries, the site's manifest)
//! does not come from a push and may use serde_json directly.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::problem::Problem;

/// What kind of JSON value this is, as messages say it ("a string", "a list").
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// UTF-8 text of a JSON file, without a leading byte order mark; invalid UTF-8 is a
/// problem at the line and column of the first bad byte.
pub fn decode_text(path: &str, bytes: &[u8]) -> Result<String, Vec<Problem>> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.strip_prefix('\u{feff}').unwrap_or(text).to_string()),
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            let good = std::str::from_utf8(good).unwrap_or("");
            let (line, column) = crate::locate::line_column(good, good.len());
            Err(vec![Problem {
                line,
                column,
                ..Problem::file(
                    path,
                    format!(
                        "the file is not valid UTF-8 (byte 0x{:02x} at offset {}); save it as UTF-8",
                        bytes[e.valid_up_to()],
                        e.valid_up_to()
                    ),
                )
            }])
        }
    }
}

/// Parses JSON text (already decoded by [`decode_text`]), reporting syntax errors and
/// duplicate keys at their line and column.
pub fn parse_text(path: &str, text: &str) -> Result<Value, Vec<Problem>> {
    parse_strict(text).map_err(|e| {
        let reason = e.to_string();
        // serde_json appends " at line L column C"; we show the position separately.
        let reason = reason
            .rsplit_once(" at line ")
            .map_or(reason.as_str(), |(r, _)| r)
            .to_string();
        vec![Problem {
            line: e.line(),
            column: e.column(),
            ..Problem::file(path, format!("invalid JSON: {reason}"))
        }]
    })
}

/// Decodes and parses one file: [`decode_text`] then [`parse_text`].
pub fn parse(path: &str, bytes: &[u8]) -> Result<(String, Value), Vec<Problem>> {
    let text = decode_text(path, bytes)?;
    let value = parse_text(path, &text)?;
    Ok((text, value))
}

/// The value of archive JSON, or why it cannot be read (one line, with its position),
/// for readers that only need the value. Same policy as [`parse`].
pub fn from_bytes(bytes: &[u8]) -> Result<Value, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        format!(
            "the file is not valid UTF-8 (at offset {})",
            e.valid_up_to()
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    parse_strict(text).map_err(|e| e.to_string())
}

fn parse_strict(text: &str) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = StrictValue.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// A JSON value whose objects may not repeat a key.
struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictValue)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "the key `{key}` appears twice in one object; keep one of them"
                )));
            }
            let value = map.next_value_seed(StrictValue)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_refused_where_they_are() {
        let text = "{\n  \"_access\": {},\n  \"a\": {\"b\": 1, \"b\": 2}\n}";
        let problems = parse_text("d.json", text).unwrap_err();
        assert_eq!(problems[0].line, 3);
        assert!(
            problems[0].message.contains("the key `b` appears twice"),
            "{}",
            problems[0].message
        );
        assert!(from_bytes(b"{\"x\": 1, \"x\": 1}").is_err());
        // The same key in two objects is fine.
        assert!(from_bytes(b"[{\"x\": 1}, {\"x\": 2}]").is_ok());
    }

    #[test]
    fn a_byte_order_mark_is_ignored_everywhere() {
        let with = "\u{feff}{\"_access\": {\"deposit-read\": {\"users\": [\"a\"]}}}";
        let value = from_bytes(with.as_bytes()).unwrap();
        assert_eq!(value["_access"]["deposit-read"]["users"][0], "a");
        let (text, parsed) = parse("d.json", with.as_bytes()).unwrap();
        assert!(!text.starts_with('\u{feff}'));
        assert_eq!(parsed, value);
    }

    #[test]
    fn values_are_what_serde_json_reads() {
        let text = r#"{"n": -3, "u": 18446744073709551615, "f": 1.5, "s": "é\n", "z": null, "l": [true, {}]}"#;
        assert_eq!(
            from_bytes(text.as_bytes()).unwrap(),
            serde_json::from_str::<Value>(text).unwrap()
        );
        assert!(from_bytes(b"{} trailing").is_err());
        assert!(from_bytes(b"\xff{}").is_err());
    }
}
