//! From the text a person types to a tantivy query, and back from a hit to the words
//! that matched.
//!
//! tantivy's grammar does the parsing (terms, phrases, `field:value`, `AND`/`OR`/`NOT`,
//! `+`/`-`, ranges, groups); this module walks its syntax tree to add what the grammar
//! lacks: prefix terms (`higg*`), deposit paths as field names
//! (`basic_info.keywords:higgs`), and `--field`. It also remembers which words it asked
//! for, so that snippets can mark them.

use tantivy::query::{
    BooleanQuery, BoostQuery, ConstScoreQuery, Occur, PhrasePrefixQuery, Query, QueryParser,
};
use tantivy::query_grammar::{Delimiter, UserInputAst, UserInputLeaf, UserInputLiteral};
use tantivy::schema::{Field, Term};
use tantivy::tokenizer::TextAnalyzer;

use super::fields::{text_analyzer, Fields, QUERY_FIELDS};

/// A query that cannot be run, with a message for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

/// How many index terms a prefix may stand for. Beyond this the prefix is too short
/// to mean anything; the query still runs, on the first terms in alphabetical order.
pub const MAX_PREFIX_EXPANSIONS: u32 = 1000;

/// A word the query looks for, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needle {
    /// A normalised token (see `fields::TEXT_ANALYZER`).
    pub token: String,
    pub is_prefix: bool,
    /// `None`: anywhere. `Some(path)`: only in strings at that dotted deposit path
    /// or below it.
    pub path: Option<String>,
}

/// A compiled query and the words to highlight.
pub struct Compiled {
    pub query: Box<dyn Query>,
    pub needles: Vec<Needle>,
}

pub struct Compiler<'a> {
    pub parser: &'a QueryParser,
    pub fields: &'a Fields,
    /// `--field`: the deposit paths unqualified words are restricted to (the path given
    /// and the paths found below it in the index).
    pub scope: Option<Vec<String>>,
    /// The path as given, for highlighting.
    pub scope_root: Option<String>,
}

impl Compiler<'_> {
    pub fn compile(&self, text: &str) -> Result<Compiled, QueryError> {
        let plain = is_plain(text);
        let words = if plain {
            plain_words(text)
        } else {
            text.to_string()
        };
        let mut ast = parse(&words)?;
        if plain {
            mark_last_word(&mut ast);
        }
        let mut needles = Vec::new();
        let query = self.node(ast, false, &mut needles)?;
        Ok(Compiled { query, needles })
    }

    fn node(
        &self,
        ast: UserInputAst,
        negated: bool,
        needles: &mut Vec<Needle>,
    ) -> Result<Box<dyn Query>, QueryError> {
        match ast {
            UserInputAst::Clause(children) => {
                if children.is_empty() {
                    return Err(QueryError(
                        "the query is empty: give a word, a \"phrase\" or field:value (`*` matches everything)".into(),
                    ));
                }
                let mut clauses = Vec::new();
                for (occur, child) in children {
                    // Words are required by default: `higgs mass` finds analyses with both.
                    let occur = occur.unwrap_or(Occur::Must);
                    let q = self.node(child, negated ^ (occur == Occur::MustNot), needles)?;
                    clauses.push((occur, q));
                }
                if clauses.iter().all(|(o, _)| *o == Occur::MustNot) {
                    // `-draft` alone means "everything but".
                    clauses.push((Occur::Must, Box::new(tantivy::query::AllQuery)));
                }
                Ok(Box::new(BooleanQuery::new(clauses)))
            }
            UserInputAst::Boost(child, boost) => {
                let q = self.node(*child, negated, needles)?;
                Ok(Box::new(BoostQuery::new(q, boost as f32)))
            }
            UserInputAst::Leaf(leaf) => self.leaf(*leaf, negated, needles),
        }
    }

    fn leaf(
        &self,
        leaf: UserInputLeaf,
        negated: bool,
        needles: &mut Vec<Needle>,
    ) -> Result<Box<dyn Query>, QueryError> {
        match leaf {
            UserInputLeaf::Literal(literal) => self.literal(literal, negated, needles),
            UserInputLeaf::Range { field, lower, upper } => {
                let field = field.map(|f| self.field_name(&f));
                self.delegate(UserInputLeaf::Range { field, lower, upper })
            }
            UserInputLeaf::Set { field, elements } => {
                let field = field.map(|f| self.field_name(&f));
                self.delegate(UserInputLeaf::Set { field, elements })
            }
            UserInputLeaf::Exists { field } => Err(QueryError(format!(
                "`{field}:*` (has a value) is not supported; search for a word in that field instead"
            ))),
            UserInputLeaf::All => Ok(Box::new(tantivy::query::AllQuery)),
        }
    }

    fn literal(
        &self,
        mut literal: UserInputLiteral,
        negated: bool,
        needles: &mut Vec<Needle>,
    ) -> Result<Box<dyn Query>, QueryError> {
        let paths: Vec<Option<String>> = match (&literal.field_name, &self.scope) {
            (Some(name), _) => vec![Some(self.field_name(name))],
            (None, Some(scope)) => scope.iter().map(|p| Some(format!("data.{p}"))).collect(),
            (None, None) => vec![None],
        };
        let highlight_path = match (&literal.field_name, &self.scope_root) {
            (Some(name), _) => {
                let full = self.field_name(name);
                full.strip_prefix("data.").map(str::to_string)
            }
            (None, root) => root.clone(),
        };
        // The last word of a plain query: itself or any word it begins (see
        // [`is_plain`]); `mark_last_word` sets `prefix`, which the grammar only sets on
        // quoted phrases.
        let as_typed_or_prefix = literal.delimiter == Delimiter::None && literal.prefix;
        let is_prefix = literal.delimiter == Delimiter::None && literal.phrase.ends_with('*');
        if literal.delimiter == Delimiter::None
            && literal.phrase.trim_end_matches('*').contains('*')
        {
            return Err(QueryError(format!(
                "`{}`: only a `*` at the end of a word is supported (a prefix, as in higg*)",
                literal.phrase
            )));
        }
        if is_prefix {
            literal.phrase = literal.phrase.trim_end_matches('*').to_string();
        }
        let tokens = tokens(&literal.phrase);
        if !negated {
            let last = tokens.len().saturating_sub(1);
            for (i, token) in tokens.iter().enumerate() {
                needles.push(Needle {
                    token: token.clone(),
                    is_prefix: (is_prefix || literal.prefix) && i == last,
                    path: highlight_path.clone(),
                });
            }
        }
        let mut alternatives: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for path in paths {
            let mut lit = literal.clone();
            lit.field_name = path.clone();
            let q = if is_prefix {
                self.prefix(path.as_deref(), &lit.phrase)?
            } else if as_typed_or_prefix {
                // The whole word keeps its BM25 score; the prefix adds the same
                // constant to every document it matches (the whole word included), so
                // it widens the match without reordering what the whole word finds.
                lit.prefix = false;
                let exact = self.delegate(UserInputLeaf::Literal(lit.clone()))?;
                let prefix: Box<dyn Query> = Box::new(ConstScoreQuery::new(
                    self.prefix(path.as_deref(), &lit.phrase)?,
                    1.0,
                ));
                Box::new(BooleanQuery::new(vec![
                    (Occur::Should, exact),
                    (Occur::Should, prefix),
                ]))
            } else {
                self.delegate(UserInputLeaf::Literal(lit))?
            };
            alternatives.push((Occur::Should, q));
        }
        if alternatives.len() == 1 {
            Ok(alternatives.pop().unwrap().1)
        } else {
            Ok(Box::new(BooleanQuery::new(alternatives)))
        }
    }

    /// `higg*`: the words before the last must match as a phrase, the last as a prefix.
    fn prefix(&self, path: Option<&str>, phrase: &str) -> Result<Box<dyn Query>, QueryError> {
        let words = tokens(phrase);
        if words.is_empty() {
            return Err(QueryError(format!(
                "`{phrase}*`: a prefix needs at least one letter or digit before the `*`"
            )));
        }
        let targets: Vec<(Field, Option<String>, f32)> = match path {
            None => self.default_fields(),
            Some(full) => {
                let (field, json_path) = self.resolve(full)?;
                vec![(field, json_path, 1.0)]
            }
        };
        let mut alternatives: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for (field, json_path, boost) in targets {
            let terms: Vec<(usize, Term)> = words
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    let term = match &json_path {
                        Some(p) => {
                            let mut t = Term::from_field_json_path(field, p, false);
                            t.append_type_and_str(w);
                            t
                        }
                        None => Term::from_field_text(field, w),
                    };
                    (i, term)
                })
                .collect();
            let mut q = PhrasePrefixQuery::new_with_offset(terms);
            q.set_max_expansions(MAX_PREFIX_EXPANSIONS);
            alternatives.push((Occur::Should, Box::new(BoostQuery::new(Box::new(q), boost))));
        }
        Ok(Box::new(BooleanQuery::new(alternatives)))
    }

    /// The text fields an unqualified word is looked for in, with their boosts.
    fn default_fields(&self) -> Vec<(Field, Option<String>, f32)> {
        let f = self.fields;
        vec![
            (f.title, None, TITLE_BOOST),
            (f.keywords, None, KEYWORDS_BOOST),
            (f.people, None, PEOPLE_BOOST),
            (f.text, None, 1.0),
        ]
    }

    fn resolve(&self, full: &str) -> Result<(Field, Option<String>), QueryError> {
        if let Some(path) = full.strip_prefix("data.") {
            return Ok((self.fields.data, Some(path.to_string())));
        }
        let f = self.fields;
        let field = match full {
            "title" => f.title,
            "keywords" => f.keywords,
            "people" => f.people,
            "text" => f.text,
            other => {
                return Err(QueryError(format!(
                    "`{other}:` takes whole values, not prefixes; drop the `*`"
                )))
            }
        };
        Ok((field, None))
    }

    /// A query field name: one of the index's own fields, or a path in the deposit.
    fn field_name(&self, name: &str) -> String {
        let name = name.trim_start_matches('/').replace('/', ".");
        match name.as_str() {
            "keyword" => "keywords".into(),
            "person" => "people".into(),
            n if QUERY_FIELDS.contains(&n) || n.starts_with("data.") => name,
            _ => format!("data.{name}"),
        }
    }

    fn delegate(&self, leaf: UserInputLeaf) -> Result<Box<dyn Query>, QueryError> {
        self.parser
            .build_query_from_user_input_ast(UserInputAst::Leaf(Box::new(leaf)))
            .map_err(|e| QueryError(explain(e)))
    }
}

pub const TITLE_BOOST: f32 = 3.0;
pub const KEYWORDS_BOOST: f32 = 2.0;
pub const PEOPLE_BOOST: f32 = 1.5;
pub const ID_BOOST: f32 = 5.0;

/// Whether a query is plain words, as the site's search box takes them: no quotes,
/// `field:`, operators (`AND`, `OR`, `NOT`, `+`, `-`), groups, ranges, boosts or `*`,
/// and no space after the last word. The last word of a plain query is matched as a
/// prefix too (`lept` finds `leptons`), in the CLI as in the browser (site/search.js),
/// because a person who stops typing mid-word expects that. A trailing space says the
/// word is complete.
pub fn is_plain(text: &str) -> bool {
    const SYNTAX: &[char] = &[
        ':', '"', '(', ')', '[', ']', '{', '}', '^', '~', '*', '\\', '+', '!',
    ];
    !text.trim().is_empty()
        && !text.ends_with(char::is_whitespace)
        && !text.contains(SYNTAX)
        && text
            .split_whitespace()
            .all(|w| !matches!(w, "AND" | "OR" | "NOT" | "IN" | "TO") && !w.starts_with('-'))
}

/// Words the site's search leaves out of its index (src/site/search.rs, site/search.js),
/// and so out of a plain query here too: `the higgs` finds the same analyses in both.
pub const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "into", "is", "it", "of",
    "on", "or", "that", "the", "this", "to", "with",
];

/// A plain query without the words the site's search ignores (stop words and single
/// letters), unless that would leave nothing.
fn plain_words(text: &str) -> String {
    let ignored = |word: &str| {
        let lower = word.to_lowercase();
        let single_letter = {
            let mut chars = lower.chars();
            matches!((chars.next(), chars.next()), (Some(c), None) if !c.is_ascii_digit())
        };
        single_letter || STOP_WORDS.contains(&lower.as_str())
    };
    let kept: Vec<&str> = text.split_whitespace().filter(|w| !ignored(w)).collect();
    if kept.is_empty() {
        text.to_string()
    } else {
        kept.join(" ")
    }
}

/// Marks the last word of a parsed plain query as a prefix, when it has at least two
/// letters or digits (a one-letter prefix stands for too many words to mean anything).
fn mark_last_word(ast: &mut UserInputAst) {
    match ast {
        UserInputAst::Clause(children) => {
            if let Some((None | Some(Occur::Must), last)) = children.last_mut() {
                mark_last_word(last);
            }
        }
        UserInputAst::Leaf(leaf) => {
            if let UserInputLeaf::Literal(literal) = leaf.as_mut() {
                let long_enough = tokens(&literal.phrase)
                    .last()
                    .is_some_and(|t| t.chars().count() >= 2);
                if literal.field_name.is_none()
                    && literal.delimiter == Delimiter::None
                    && long_enough
                {
                    literal.prefix = true;
                }
            }
        }
        UserInputAst::Boost(..) => {}
    }
}

/// Parses with tantivy's grammar; a syntax error says where and what.
fn parse(text: &str) -> Result<UserInputAst, QueryError> {
    if text.trim().is_empty() {
        return Err(QueryError(
            "the query is empty: give a word, a \"phrase\" or field:value (`*` matches everything)"
                .into(),
        ));
    }
    match tantivy::query_grammar::parse_query(text) {
        Ok(ast) => Ok(ast),
        Err(_) => {
            let (_, errors) = tantivy::query_grammar::parse_query_lenient(text);
            let detail = errors
                .first()
                .map(|e| {
                    let column = text[..e.pos.min(text.len())].chars().count() + 1;
                    format!(" at column {column}: {}", e.message)
                })
                .unwrap_or_default();
            Err(QueryError(format!(
                "cannot parse the query `{text}`{detail}. Quote phrases with \"...\", close every ( and [, and escape special characters (+ - ! ( ) : ^ [ ] \" {{ }} ~ *) with \\"
            )))
        }
    }
}

/// tantivy's query errors in words a user can act on.
fn explain(e: tantivy::query::QueryParserError) -> String {
    use tantivy::query::QueryParserError as E;
    match e {
        E::ExpectedInt(_) => "`version:` and `year:` take whole numbers, as in year:2024".into(),
        E::DateFormatError(_) => {
            "`created:` and `updated:` take RFC 3339 times, as in updated:[2024-01-01T00:00:00Z TO *]".into()
        }
        E::FieldDoesNotExist(f) => format!("there is no field `{f}`"),
        E::AllButQueryForbidden => "the query only excludes; add something to look for".into(),
        E::RangeMustNotHavePhrase => "a range takes single words or numbers as bounds".into(),
        other => other.to_string(),
    }
}

/// The tokens of `text` as the index stores them.
pub fn tokens(text: &str) -> Vec<String> {
    let mut analyzer: TextAnalyzer = text_analyzer();
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while let Some(token) = stream.next() {
        out.push(token.text.clone());
    }
    out
}

/// Byte ranges of `text` that match a needle, given the string's dotted path.
pub fn highlight(
    analyzer: &mut TextAnalyzer,
    text: &str,
    path: &str,
    needles: &[Needle],
) -> (Vec<(usize, usize)>, usize) {
    let mut ranges = Vec::new();
    let mut matched = vec![false; needles.len()];
    let mut stream = analyzer.token_stream(text);
    while let Some(token) = stream.next() {
        let mut hit = false;
        for (i, needle) in needles.iter().enumerate() {
            let in_scope = needle.path.as_deref().is_none_or(|p| {
                path == p || (path.starts_with(p) && path.as_bytes().get(p.len()) == Some(&b'.'))
            });
            let same = if needle.is_prefix {
                token.text.starts_with(&needle.token)
            } else {
                token.text == needle.token
            };
            if in_scope && same {
                matched[i] = true;
                hit = true;
            }
        }
        if hit {
            ranges.push((token.offset_from, token.offset_to));
        }
    }
    (ranges, matched.iter().filter(|m| **m).count())
}

/// The part of `text` around its first highlight, at most about `width` bytes, with the
/// highlights moved into the snippet.
pub fn snippet(
    text: &str,
    ranges: &[(usize, usize)],
    width: usize,
) -> (String, Vec<(usize, usize)>) {
    if text.len() <= width {
        return (text.to_string(), ranges.to_vec());
    }
    let first = ranges.first().map_or(0, |r| r.0);
    let mut start = first.saturating_sub(width / 3);
    // Start at a word boundary, on a character boundary.
    while start > 0 && !text.is_char_boundary(start) {
        start -= 1;
    }
    if start > 0 {
        if let Some(space) = text[start..first].find(' ') {
            start += space + 1;
        }
    }
    let mut end = (start + width).min(text.len());
    while end < text.len() && !text.is_char_boundary(end) {
        end += 1;
    }
    if end < text.len() {
        if let Some(space) = text[start..end].rfind(' ') {
            if start + space > first {
                end = start + space;
            }
        }
    }
    let lead = if start > 0 { "…" } else { "" };
    let tail = if end < text.len() { "…" } else { "" };
    let shift = lead.len();
    let moved = ranges
        .iter()
        .filter(|(a, b)| *a >= start && *b <= end)
        .map(|(a, b)| (a - start + shift, b - start + shift))
        .collect();
    (format!("{lead}{}{tail}", &text[start..end]), moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_fold_case_and_accents() {
        assert_eq!(tokens("Tomás H->ZZ* 4l"), ["tomas", "h", "zz", "4l"]);
    }

    #[test]
    fn highlights_respect_prefix_and_path() {
        let needles = vec![
            Needle {
                token: "higg".into(),
                is_prefix: true,
                path: None,
            },
            Needle {
                token: "mass".into(),
                is_prefix: false,
                path: Some("basic_info".into()),
            },
        ];
        let mut analyzer = text_analyzer();
        let (ranges, n) = highlight(
            &mut analyzer,
            "Higgs boson mass",
            "basic_info.keywords",
            &needles,
        );
        assert_eq!(ranges, [(0, 5), (12, 16)]);
        assert_eq!(n, 2);
        let (ranges, n) = highlight(&mut analyzer, "Higgs boson mass", "general_title", &needles);
        assert_eq!(ranges, [(0, 5)]);
        assert_eq!(n, 1);
        let (_, n) = highlight(&mut analyzer, "mass", "basic_info_x", &needles);
        assert_eq!(n, 0);
    }

    #[test]
    fn snippets_window_around_the_first_hit() {
        let text = format!(
            "{} the Higgs boson {}",
            "word ".repeat(60),
            "tail ".repeat(60)
        );
        let at = text.find("Higgs").unwrap();
        let (snip, ranges) = snippet(&text, &[(at, at + 5)], 100);
        assert!(snip.starts_with('…') && snip.ends_with('…'), "{snip}");
        let (a, b) = ranges[0];
        assert_eq!(&snip[a..b], "Higgs");
        assert!(snip.len() <= 100 + 2 * '…'.len_utf8());
        let (short, same) = snippet("Higgs", &[(0, 5)], 100);
        assert_eq!((short.as_str(), same), ("Higgs", vec![(0, 5)]));
    }

    #[test]
    fn only_plain_queries_end_in_a_prefix() {
        for plain in ["lept", "higgs lept", "Tomás", "h->zz"] {
            assert!(is_plain(plain), "{plain}");
        }
        for not in [
            "lept ",
            "title:lept",
            "\"four lept\"",
            "higgs -draft",
            "higgs OR lept",
            "lept*",
            "(lept)",
            "",
        ] {
            assert!(!is_plain(not), "{not}");
        }
        assert_eq!(plain_words("The Higgs to 4 l"), "Higgs 4");
        assert_eq!(plain_words("the of"), "the of");
        let mut ast = parse("higgs lept").unwrap();
        mark_last_word(&mut ast);
        let UserInputAst::Clause(children) = &ast else {
            panic!("{ast:?}")
        };
        let prefixes: Vec<bool> = children
            .iter()
            .map(|(_, c)| matches!(c, UserInputAst::Leaf(l) if matches!(l.as_ref(), UserInputLeaf::Literal(x) if x.prefix)))
            .collect();
        assert_eq!(prefixes, [false, true]);
    }

    #[test]
    fn syntax_errors_say_where() {
        let e = parse("title:(higgs").unwrap_err();
        assert!(e.0.contains("cannot parse the query"), "{e}");
        assert!(parse("   ").is_err());
    }
}
