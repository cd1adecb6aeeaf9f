//! Why a hit matched: the strings of a deposit version that hold the query's words,
//! each with the place it sits, named for people (`Basic Information › Keywords #1`).
//!
//! Places count list items from 1, as every other list a person reads does; the JSON
//! pointer beside them stays 0-based, as RFC 6901 defines it. System members (`_access`,
//! `_deposit`, `$schema`, ...) are never shown: [`located_strings`] leaves them out.

use std::sync::Arc;

use git2::{Oid, Repository};
use serde_json::Value;

use crate::archive::GitTree;
use crate::deposit::parse_schema_ref;
use crate::locate::pointer_tokens;
use crate::schema::{CompiledSchema, SchemaNode, SchemaRegistry};

use super::extract::located_strings;
use super::query::{highlight, snippet, Needle};
use super::search::FieldMatch;

/// How much of a long string a snippet shows, in bytes.
const SNIPPET_WIDTH: usize = 160;
/// How many matching strings a hit reports.
const MATCHES_PER_HIT: usize = 3;

/// The schema a version names, compiled from the tree of its commit (for titles).
pub fn load_schema(
    repo: &Repository,
    registry: &mut SchemaRegistry,
    commit: &str,
    schema: &str,
) -> Option<Arc<CompiledSchema>> {
    let sref = parse_schema_ref(schema)?;
    let tree = GitTree::at_commit(repo, Oid::from_str(commit).ok()?).ok()?;
    registry.compile(&tree, &sref).ok().flatten()
}

/// The strings of a deposit version that match the query's words, best first.
pub fn matches_in(
    repo: &Repository,
    blob: Oid,
    needles: &[Needle],
    schema: Option<&CompiledSchema>,
    analyzer: &mut tantivy::tokenizer::TextAnalyzer,
) -> Vec<FieldMatch> {
    let Ok(blob) = repo.find_blob(blob) else {
        return Vec::new();
    };
    let Ok(deposit) = crate::json::from_bytes(blob.content()) else {
        return Vec::new();
    };
    let mut found: Vec<(usize, usize, FieldMatch)> = Vec::new();
    for (order, located) in located_strings(&deposit).into_iter().enumerate() {
        let (ranges, distinct) = highlight(analyzer, located.text, &located.path, needles);
        if distinct == 0 {
            continue;
        }
        let (text, highlights) = snippet(located.text, &ranges, SNIPPET_WIDTH);
        found.push((
            distinct,
            order,
            FieldMatch {
                title_path: place(&deposit, &located.pointer, schema),
                pointer: located.pointer,
                snippet: text,
                highlights,
            },
        ));
    }
    found.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    found
        .into_iter()
        .take(MATCHES_PER_HIT)
        .map(|(_, _, m)| m)
        .collect()
}

/// Where `pointer` sits in `deposit`, for people: each member by its schema title (its
/// key where the schema gives none), and list items as `#1`, `#2`, ... attached to the
/// list's name. Whether a step is a list item is read from the deposit itself, so a
/// field the schema does not describe is numbered like any other.
pub fn place(deposit: &Value, pointer: &str, schema: Option<&CompiledSchema>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut value = Some(deposit);
    let mut node: Option<SchemaNode<'_>> = schema.map(CompiledSchema::node);
    for token in pointer_tokens(pointer) {
        match value {
            Some(Value::Array(items)) => {
                let index: usize = token.parse().unwrap_or(0);
                let position = format!("#{}", index + 1);
                match parts.last_mut() {
                    Some(last) => {
                        last.push(' ');
                        last.push_str(&position);
                    }
                    None => parts.push(position),
                }
                value = items.get(index);
                node = node.and_then(|n| n.items().or_else(|| n.child(&token)));
            }
            _ => {
                node = node.and_then(|n| n.child(&token));
                let title = node
                    .and_then(|n| n.value().get("title"))
                    .and_then(Value::as_str)
                    .map(str::trim)
                    .filter(|t| !t.is_empty());
                parts.push(title.map_or_else(|| token.clone(), str::to_string));
                value = value.and_then(|v| v.get(&token));
            }
        }
    }
    parts.join(" › ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn places_count_list_items_from_one() {
        let deposit = json!({"basic_info": {"keywords": ["a", "b"]}, "runs": [["x", "y"]]});
        assert_eq!(
            place(&deposit, "/basic_info/keywords/1", None),
            "basic_info › keywords #2"
        );
        assert_eq!(place(&deposit, "/runs/0/1", None), "runs #1 #2");
        assert_eq!(place(&deposit, "", None), "");
    }
}
