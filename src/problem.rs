//! A problem in user data: a value, not an error, so that a push reports all of them.

use serde::Serialize;

/// One thing wrong with one file, located precisely enough to fix it without guessing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The abbreviated commit the file was read from, when it came from git.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Path of the file relative to the archive root.
    pub file: String,
    /// 1-based line and column in the file; 0 when the problem is about the file as a whole.
    pub line: usize,
    pub column: usize,
    /// JSON pointer of the value (empty for the whole document).
    pub pointer: String,
    /// The field's titles from the schema, joined with ` › `.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub title_path: String,
    /// What is wrong, in plain words, and where useful how to fix it.
    pub message: String,
}

impl Problem {
    /// A problem about a whole file (no position inside it).
    pub fn file(file: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            commit: None,
            file: file.into(),
            line: 0,
            column: 0,
            pointer: String::new(),
            title_path: String::new(),
            message: message.into(),
        }
    }

    /// A problem at a pointer inside a JSON text.
    pub fn at(
        file: impl Into<String>,
        text: &str,
        pointer: &str,
        message: impl Into<String>,
    ) -> Self {
        let (line, column) = crate::locate::locate(text, pointer);
        Problem {
            commit: None,
            file: file.into(),
            line,
            column,
            pointer: pointer.to_string(),
            title_path: String::new(),
            message: message.into(),
        }
    }

    pub fn in_commit(mut self, commit: impl Into<String>) -> Self {
        self.commit = Some(commit.into());
        self
    }

    pub fn with_title_path(mut self, title_path: impl Into<String>) -> Self {
        self.title_path = title_path.into();
        self
    }
}

impl std::fmt::Display for Problem {
    /// `deposits/x/deposit.json:5:17: /basic_info/status (Basic Information › Status): reason`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(commit) = &self.commit {
            write!(f, "{commit} ")?;
        }
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        f.write_str(": ")?;
        if !self.pointer.is_empty() {
            f.write_str(&self.pointer)?;
            if !self.title_path.is_empty() {
                write!(f, " ({})", self.title_path)?;
            }
            f.write_str(": ")?;
        }
        f.write_str(&self.message)
    }
}
