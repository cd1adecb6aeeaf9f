//! A deposit's fields as HTML: the `block` and `inline` macros of the embedded
//! `macros.html`, written in Rust.
//!
//! Rendering a record's fields through tera's macros was the largest part of rendering
//! a record page (a macro call per field, each with its own frame and copies of its
//! arguments). When a site uses the embedded templates, a section's blocks are
//! rendered here instead and the page prints them as they are; the output is the
//! macros' own, byte for byte (the tests render both). A theme that overrides any
//! template gets the blocks, as before, and renders them its own way.
//!
//! Everything from a deposit is escaped as tera escapes it (`tera::escape_html`).

use crate::site::model::{Block, Inline, Section};

/// Renders each section's blocks into its `html`, leaving its `blocks` empty.
pub fn render_sections(sections: &mut [Section]) {
    for section in sections {
        let mut out = String::with_capacity(256 * section.blocks.len());
        for b in &section.blocks {
            block(b, &mut out);
        }
        section.blocks = Vec::new();
        section.html = Some(out);
    }
}

fn text(out: &mut String, s: &str) {
    out.push_str(&tera::escape_html(s));
}

/// The block's `<dt>`: its title and, when it has one, its description.
fn term(out: &mut String, title: &str, description: &str) {
    out.push_str("<dt>");
    text(out, title);
    if !description.is_empty() {
        out.push_str(" <span class=\"hint\">");
        text(out, description);
        out.push_str("</span>");
    }
    out.push_str("</dt>");
}

/// `macros.html`'s `block(b, level)`.
fn block(b: &Block, out: &mut String) {
    // The macro's text around its `if`: a line break after `{% macro %}` and one
    // before each branch's tag, kept by tera.
    out.push_str("\n\n");
    match b {
        Block::Value {
            title,
            description,
            value,
        } => {
            out.push_str("<div class=\"field\">");
            term(out, title, description);
            out.push_str("<dd>");
            inline(value, out);
            out.push_str("</dd></div>");
        }
        Block::List {
            title,
            description,
            items,
        } => {
            out.push_str("<div class=\"field\">");
            term(out, title, description);
            out.push_str("<dd><ul class=\"inline-list\">");
            for i in items {
                out.push_str("<li>");
                inline(i, out);
                out.push_str("</li>");
            }
            out.push_str("</ul></dd></div>");
        }
        Block::Group {
            title,
            description,
            blocks,
        } => {
            out.push_str("<div class=\"field group\">");
            term(out, title, description);
            out.push_str("<dd><dl class=\"fields\">");
            for c in blocks {
                block(c, out);
            }
            out.push_str("</dl></dd></div>");
        }
        Block::Table {
            title,
            description,
            columns,
            rows,
        } => {
            out.push_str("<div class=\"field table\">");
            term(out, title, description);
            out.push_str("<dd>\n<div class=\"scroll\"><table>\n<thead><tr>");
            for c in columns {
                out.push_str("<th scope=\"col\">");
                text(out, c);
                out.push_str("</th>");
            }
            out.push_str("</tr></thead>\n<tbody>");
            for row in rows {
                out.push_str("<tr>");
                for cell in row {
                    out.push_str("<td>");
                    for (n, v) in cell.iter().enumerate() {
                        if n > 0 {
                            out.push_str("<br>");
                        }
                        inline(v, out);
                    }
                    out.push_str("</td>");
                }
                out.push_str("</tr>");
            }
            out.push_str("</tbody>\n</table></div></dd></div>");
        }
    }
    out.push_str("\n\n");
}

/// `macros.html`'s `inline(v)`: a link, an allowed value with its stored value as a
/// tooltip, a long unbroken token, or plain text.
fn inline(v: &Inline, out: &mut String) {
    let present = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
    if present(&v.href) {
        out.push_str("<a href=\"");
        text(out, v.href.as_deref().unwrap_or_default());
        out.push('"');
        if v.kind == "url" || v.kind == "doi" {
            out.push_str(" rel=\"nofollow noopener\"");
        }
        out.push_str(" class=\"token\">");
        text(out, &v.text);
        out.push_str("</a>");
    } else if v.kind == "enum" && present(&v.raw) {
        out.push_str("<span class=\"enum\" title=\"");
        text(out, v.raw.as_deref().unwrap_or_default());
        out.push_str("\">");
        text(out, &v.text);
        out.push_str("</span>");
    } else if v.text.chars().count() > 20 && !v.text.contains(' ') {
        out.push_str("<span class=\"token\">");
        text(out, &v.text);
        out.push_str("</span>");
    } else {
        text(out, &v.text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::site::fields::sections;
    use serde_json::json;

    /// The embedded macros rendering `sections`' blocks, as the record page calls them.
    fn through_tera(sections: &[Section]) -> Vec<String> {
        let theme = crate::site::theme::Theme::with_overrides(Vec::new()).unwrap();
        let mut tera = tera::Tera::default();
        tera.autoescape_on(vec![".html"]);
        let macros = theme
            .templates
            .iter()
            .find(|(name, _)| name.as_str() == "macros.html")
            .map(|(_, text)| text.clone())
            .unwrap();
        tera.add_raw_templates(vec![
            ("macros.html".to_string(), macros),
            (
                "t.html".to_string(),
                r#"{% import "macros.html" as m %}{% for b in s.blocks %}{{ m::block(b=b, level=1) }}{% endfor %}"#
                    .to_string(),
            ),
        ])
        .unwrap();
        sections
            .iter()
            .map(|s| {
                let mut context = tera::Context::new();
                context.insert("s", s);
                tera.render("t.html", &context).unwrap()
            })
            .collect()
    }

    #[test]
    fn blocks_render_as_the_embedded_macros_render_them() {
        let deposit = json!({
            "title": "A <b>title</b> & 'quotes' / \"more\"",
            "count": 3,
            "flag": true,
            "homepage": "https://example.org/a?b=1&c=<2>",
            "javascript": "javascript:alert(1)",
            "contact": "a.b@example.org",
            "doi": "10.1234/abc",
            "dataset": "/store/group/phys_smp/ntuples/2017/v6/skim_d36df84e.root",
            "short token": "twenty-chars-exactly",
            "long text with spaces": "this text is long but it has spaces in it",
            "unicode": "ééééééééééééééééééééé",
            "keywords": ["CMS", "SUSY", "13 TeV", "https://example.org/k"],
            "basic_info": {
                "analysis_title": "Search <x>",
                "people": [
                    {"name": "Ann", "email": "ann@example.org", "orcid": "0000-0001"},
                    {"name": "Bob", "tags": ["x", "y"], "site": "https://b.org"}
                ],
                "nested": {"deeper": {"value": "v", "empty": ""}, "n": 1.5},
                "empty": {},
                "list": ["a", "b"]
            },
            "mixed": [1, "two", {"three": 3}]
        });
        let schema = json!({
            "type": "object",
            "properties": {
                "basic_info": {
                    "title": "Basic information",
                    "description": "What it is <em>about</em>",
                    "type": "object",
                    "properties": {
                        "analysis_title": {"title": "Title", "description": "The \"name\""},
                        "status": {"enum": ["a", "b"], "enumNames": ["Alpha", "Beta"]}
                    }
                },
                "level": {"title": "Level", "enum": ["x", "y"], "enumNames": ["Ex", "Why"]}
            }
        });
        let mut deposit = deposit;
        deposit["basic_info"]["status"] = json!("b");
        deposit["level"] = json!("y");
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("schemas/t")).unwrap();
        std::fs::write(
            dir.path().join("schemas/t/1.0.0.json"),
            serde_json::to_vec(&schema).unwrap(),
        )
        .unwrap();
        let compiled = crate::schema::SchemaRegistry::new()
            .compile(
                &crate::archive::WorkTree::new(dir.path()),
                &crate::deposit::SchemaRef {
                    name: "t".into(),
                    version: "1.0.0".into(),
                },
            )
            .unwrap()
            .expect("the schema compiles");
        for schema in [None, Some(&*compiled)] {
            let mut ours = sections(&deposit, schema);
            assert!(ours.len() > 1);
            let expected = through_tera(&ours);
            render_sections(&mut ours);
            let got: Vec<String> = ours.iter().map(|s| s.html.clone().unwrap()).collect();
            assert_eq!(got, expected);
            assert!(ours.iter().all(|s| s.blocks.is_empty()));
            // Every branch of the macros was taken.
            let all = got.concat();
            for part in [
                "field group",
                "field table",
                "inline-list",
                "<br>",
                "rel=\"nofollow noopener\"",
                "href=\"mailto:",
                "<span class=\"token\">",
                "&lt;b&gt;",
            ] {
                assert!(all.contains(part), "{part} in {all}");
            }
            if schema.is_some() {
                assert!(
                    all.contains("<span class=\"enum\" title=\"b\">Beta</span>"),
                    "{all}"
                );
                assert!(
                    all.contains("<span class=\"hint\">The &quot;name&quot;</span>"),
                    "{all}"
                );
            }
        }
    }

    #[test]
    fn a_rendered_section_gives_templates_html_and_no_blocks() {
        let mut s = sections(&json!({"a": {"b": "c"}}), None);
        let before = serde_json::to_value(&s).unwrap();
        assert!(before[0].get("blocks").is_some() && before[0].get("html").is_none());
        render_sections(&mut s);
        let after = serde_json::to_value(&s).unwrap();
        assert!(after[0].get("blocks").is_none());
        assert!(after[0]["html"].as_str().unwrap().contains("<dd>c</dd>"));
    }
}
