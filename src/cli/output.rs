//! Human output: colours only on a terminal (anstream strips them otherwise).

use std::io::Write;

use anstyle::{AnsiColor, Style};
use capsule::problem::Problem;

const ERROR: Style = AnsiColor::Red.on_default().bold();
const WARN: Style = AnsiColor::Yellow.on_default().bold();
const OK: Style = AnsiColor::Green.on_default().bold();
const DIM: Style = Style::new().dimmed();
const BOLD: Style = Style::new().bold();

pub fn error(message: &str) {
    let _ = writeln!(anstream::stderr(), "{ERROR}error{ERROR:#}: {message}");
}

pub fn warning(message: &str) {
    let _ = writeln!(anstream::stderr(), "{WARN}warning{WARN:#}: {message}");
}

/// One problem in the form editors and CI logs understand:
/// `file:line:column: pointer (Title › Path): reason`.
pub fn problem_line(p: &Problem) -> String {
    let mut out = String::new();
    out.push_str(&format!("{ERROR}error{ERROR:#}: "));
    if let Some(commit) = &p.commit {
        out.push_str(&format!("{DIM}{commit}{DIM:#} "));
    }
    out.push_str(&format!("{BOLD}{}", p.file));
    if p.line > 0 {
        out.push_str(&format!(":{}:{}", p.line, p.column));
    }
    out.push_str(&format!("{BOLD:#}: "));
    if !p.pointer.is_empty() {
        out.push_str(&p.pointer);
        if !p.title_path.is_empty() {
            out.push_str(&format!(" {DIM}({}){DIM:#}", p.title_path));
        }
        out.push_str(": ");
    }
    out.push_str(&p.message);
    out
}

/// Prints every problem, one line each, then the verdict in red: `label rest`.
pub fn problems(problems: &[Problem], label: &str, rest: &str) -> std::io::Result<()> {
    let mut err = anstream::stderr();
    for problem in problems {
        writeln!(err, "{}", problem_line(problem))?;
    }
    writeln!(err, "{} {rest}", bad(label))
}

pub fn ok(message: &str) -> String {
    format!("{OK}{message}{OK:#}")
}

pub fn bad(message: &str) -> String {
    format!("{ERROR}{message}{ERROR:#}")
}

pub fn heading(message: &str) -> String {
    format!("{BOLD}{message}{BOLD:#}")
}

/// Prints a value as pretty JSON on stdout.
pub fn json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    // Buffered: stdout flushes at every newline, and pretty JSON has one per field.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// Plural helper: `1 deposit`, `2 deposits`.
pub fn count(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}
