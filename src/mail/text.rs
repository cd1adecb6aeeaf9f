//! The plain-text part of an HTML mail, derived from its HTML.
//!
//! Mail bodies are small and come from our own templates (or a schema author's), so
//! this is a careful scanner, not an HTML parser: tags are dropped, block elements
//! and `<br>` become line breaks, list items get a `- `, links keep their target
//! (`text <https://...>`), `<head>`, `<style>` and `<script>` vanish with their
//! content, entities are decoded, and runs of spaces collapse as a browser would.
//! It never fails: whatever it does not understand is treated as text.

/// Elements that start and end a line of their own.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "header",
    "footer",
    "main",
    "nav",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "ul",
    "ol",
    "table",
    "tr",
    "blockquote",
    "pre",
    "hr",
    "dl",
    "dt",
    "dd",
    "body",
    "html",
];

/// Elements whose content is not text a reader should see.
const HIDDEN: &[&str] = &["head", "style", "script", "title"];

/// The plain-text rendering of `html`.
pub fn html_to_text(html: &str) -> String {
    let mut out = Lines::default();
    let mut rest = html;
    // The target of the link being read, and where its text starts in the output.
    let mut link: Option<(String, usize)> = None;
    let mut pre = 0usize;
    while !rest.is_empty() {
        let Some(open) = rest.find('<') else {
            out.text(&decode(rest), pre > 0);
            break;
        };
        out.text(&decode(&rest[..open]), pre > 0);
        rest = &rest[open..];
        // A comment, a doctype or a tag; a `<` that starts none of them is text.
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            continue;
        }
        let Some(close) = rest.find('>') else {
            out.text(&decode(rest), pre > 0);
            break;
        };
        let tag = &rest[1..close];
        rest = &rest[close + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if name.is_empty() {
            if !tag.starts_with('!') && !tag.starts_with('?') {
                out.text(&decode(&format!("<{tag}>")), pre > 0);
            }
            continue;
        }
        if HIDDEN.contains(&name.as_str()) && !closing {
            let end = format!("</{name}");
            rest = match find_ignore_case(rest, &end) {
                Some(at) => rest[at..].find('>').map_or("", |gt| &rest[at + gt + 1..]),
                None => "",
            };
            continue;
        }
        match (name.as_str(), closing) {
            ("br", _) => out.newline(),
            ("a", false) => link = attribute(tag, "href").map(|href| (href, out.len())),
            ("a", true) => {
                if let Some((href, start)) = link.take() {
                    let text = out.since(start);
                    let plain_href = href.strip_prefix("mailto:").unwrap_or(&href);
                    if !href.starts_with('#') && text.trim() != plain_href && !href.is_empty() {
                        out.text(&format!(" <{href}>"), false);
                    }
                }
            }
            ("pre", false) => {
                out.block();
                pre += 1;
            }
            ("pre", true) => {
                pre = pre.saturating_sub(1);
                out.block();
            }
            ("li", false) => {
                out.line();
                out.text("- ", false);
            }
            ("td" | "th", false) => out.text(" ", false),
            ("hr", _) => {
                out.block();
                out.text("----", false);
                out.block();
            }
            (name, _) if BLOCKS.contains(&name) => out.block(),
            _ => {}
        }
    }
    out.finish()
}

/// The output being built: lines, with at most one blank line between blocks.
#[derive(Default)]
struct Lines {
    text: String,
}

impl Lines {
    fn len(&self) -> usize {
        self.text.len()
    }

    fn since(&self, start: usize) -> &str {
        &self.text[start.min(self.text.len())..]
    }

    /// Appends text; outside `<pre>` whitespace runs become one space, and no line
    /// starts with a space.
    fn text(&mut self, text: &str, preformatted: bool) {
        if preformatted {
            self.text.push_str(text);
            return;
        }
        for c in text.chars() {
            if c.is_whitespace() && c != '\u{a0}' {
                if !(self.text.is_empty() || self.text.ends_with([' ', '\n'])) {
                    self.text.push(' ');
                }
            } else {
                self.text.push(if c == '\u{a0}' { ' ' } else { c });
            }
        }
    }

    /// Ends the current line, unless it is empty.
    fn line(&mut self) {
        self.trim_line_end();
        if !(self.text.is_empty() || self.text.ends_with('\n')) {
            self.text.push('\n');
        }
    }

    fn newline(&mut self) {
        self.trim_line_end();
        self.text.push('\n');
    }

    /// Ends the current block: a blank line after it, unless there already is one.
    fn block(&mut self) {
        self.trim_line_end();
        if self.text.is_empty() || self.text.ends_with("\n\n") {
            return;
        }
        if self.text.ends_with('\n') {
            self.text.push('\n');
        } else {
            self.text.push_str("\n\n");
        }
    }

    fn trim_line_end(&mut self) {
        while self.text.ends_with(' ') {
            self.text.pop();
        }
    }

    fn finish(mut self) -> String {
        self.trim_line_end();
        let lines: Vec<&str> = self.text.lines().map(str::trim_end).collect();
        let mut out = String::new();
        let mut blank = true;
        for line in lines {
            if line.is_empty() {
                if !blank {
                    out.push('\n');
                }
                blank = true;
            } else {
                out.push_str(line);
                out.push('\n');
                blank = false;
            }
        }
        let trimmed = out.trim_end();
        if trimmed.is_empty() {
            String::new()
        } else {
            format!("{trimmed}\n")
        }
    }
}

fn find_ignore_case(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .to_ascii_lowercase()
        .find(&needle.to_ascii_lowercase())
}

/// The value of attribute `name` in a tag's text (quoted or not), decoded.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find(name) {
        let start = from + at;
        from = start + name.len();
        let before_ok = lower[..start].ends_with(|c: char| c.is_whitespace());
        let after = lower[from..].trim_start();
        if !before_ok || !after.starts_with('=') {
            continue;
        }
        let value_start = tag.len() - after.len() + 1;
        let value = tag[value_start..].trim_start();
        let raw = match value.chars().next() {
            Some(q @ ('"' | '\'')) => value[1..].split(q).next().unwrap_or(""),
            _ => value
                .split(|c: char| c.is_whitespace() || c == '/')
                .next()
                .unwrap_or(""),
        };
        return Some(decode(raw));
    }
    None
}

/// Decodes the entities mails use: the five of XML, `&nbsp;`, and numeric ones.
/// An unknown entity stays as written.
pub fn decode(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest[1..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '#'))
            .map(|i| i + 1);
        let decoded = end.filter(|&e| rest[e..].starts_with(';')).and_then(|e| {
            let name = &rest[1..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                "rarr" => Some('→'),
                "ndash" => Some('–'),
                "mdash" => Some('—'),
                "hellip" => Some('…'),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, e + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_links_lists_and_entities() {
        let html = r#"<!DOCTYPE html><html><head><title>T</title><style>p { color: red }</style></head>
<body><h1>Version v1 of H &rarr; ZZ</h1>
<p>Tom &amp; Jerry &lt;3   published
   it.<br>Second line&#33; &#x263A;</p>
<ul><li>one</li><li><a href="https://x.org/a?b=1&amp;c=2">the record</a></li>
<li><a href="https://x.org/">https://x.org/</a></li></ul>
<script>alert(1)</script><!-- hidden --><p>end</p></body></html>"#;
        assert_eq!(
            html_to_text(html),
            "Version v1 of H → ZZ\n\nTom & Jerry <3 published it.\nSecond line! \u{263a}\n\n- one\n- the record <https://x.org/a?b=1&c=2>\n- https://x.org/\n\nend\n"
        );
    }

    #[test]
    fn odd_input_is_kept_as_text() {
        assert_eq!(html_to_text("a < b and c > d"), "a < b and c > d\n");
        assert_eq!(html_to_text("x &unknown; y &amp"), "x &unknown; y &amp\n");
        assert_eq!(html_to_text("<pre>  a\n   b</pre>"), "  a\n   b\n");
        assert_eq!(html_to_text(""), "");
    }
}
