//! Where a JSON pointer sits in the text it was parsed from.
//!
//! serde_json forgets positions once a document is parsed, and problems must name a
//! line and column. Re-scanning the text for the one pointer we need is cheap (it only
//! walks the path, skipping siblings) and keeps the fast parse path free of spans.

/// 1-based line and column (in characters) of the value at `pointer`, or of the
/// deepest ancestor that exists when the pointer leads nowhere (a missing property is
/// reported at the object that should hold it).
pub fn locate(text: &str, pointer: &str) -> (usize, usize) {
    let offset = find_offset(text.as_bytes(), pointer);
    line_column(text, offset)
}

/// 1-based line and column of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    // Columns count characters, not bytes, so that editors agree with us.
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

/// Splits a JSON pointer into unescaped tokens (`~1` is `/`, `~0` is `~`).
pub fn pointer_tokens(pointer: &str) -> Vec<String> {
    if pointer.is_empty() {
        return Vec::new();
    }
    pointer
        .trim_start_matches('/')
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// Escapes one token for use in a JSON pointer.
pub fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn find_offset(bytes: &[u8], pointer: &str) -> usize {
    let mut scanner = Scanner { bytes, pos: 0 };
    scanner.skip_ws();
    let mut found = scanner.pos;
    for token in pointer_tokens(pointer) {
        scanner.skip_ws();
        match scanner.peek() {
            Some(b'{') => {
                if !scanner.enter_member(&token) {
                    return found;
                }
            }
            Some(b'[') => {
                let Ok(index) = token.parse::<usize>() else {
                    return found;
                };
                if !scanner.enter_element(index) {
                    return found;
                }
            }
            _ => return found,
        }
        scanner.skip_ws();
        found = scanner.pos;
    }
    found
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.pos += 1;
        }
    }

    /// Positions the scanner at the value of member `key`; false if there is none.
    fn enter_member(&mut self, key: &str) -> bool {
        self.pos += 1; // '{'
        loop {
            self.skip_ws();
            match self.peek() {
                Some(b'"') => {}
                _ => return false,
            }
            let name = self.read_string();
            self.skip_ws();
            if self.peek() != Some(b':') {
                return false;
            }
            self.pos += 1;
            self.skip_ws();
            if name.as_deref() == Some(key) {
                return true;
            }
            if !self.skip_value() {
                return false;
            }
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                _ => return false,
            }
        }
    }

    fn enter_element(&mut self, index: usize) -> bool {
        self.pos += 1; // '['
        for _ in 0..index {
            self.skip_ws();
            if self.peek() == Some(b']') || !self.skip_value() {
                return false;
            }
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                _ => return false,
            }
        }
        self.skip_ws();
        !matches!(self.peek(), Some(b']') | None)
    }

    /// Reads a string at the cursor, decoding escapes through serde_json so that keys
    /// compare exactly as the parser saw them.
    fn read_string(&mut self) -> Option<String> {
        let start = self.pos;
        self.pos += 1;
        while let Some(b) = self.peek() {
            match b {
                b'\\' => self.pos += 2,
                b'"' => {
                    self.pos += 1;
                    return serde_json::from_slice(&self.bytes[start..self.pos]).ok();
                }
                _ => self.pos += 1,
            }
        }
        None
    }

    fn skip_value(&mut self) -> bool {
        match self.peek() {
            Some(b'"') => self.read_string().is_some(),
            Some(b'{' | b'[') => {
                let mut depth = 0usize;
                while let Some(b) = self.peek() {
                    match b {
                        b'"' => {
                            self.read_string();
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.pos += 1;
                                return true;
                            }
                        }
                        _ => {}
                    }
                    self.pos += 1;
                }
                false
            }
            Some(_) => {
                while let Some(b) = self.peek() {
                    if matches!(b, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t') {
                        break;
                    }
                    self.pos += 1;
                }
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "{\n  \"a\": {\n    \"b~/c\": [1, {\"d\": \"x\\\"y\"}, 3],\n    \"e\": \"é\"\n  },\n  \"f\": null\n}";

    #[test]
    fn finds_nested_members_and_elements() {
        assert_eq!(locate(DOC, ""), (1, 1));
        assert_eq!(locate(DOC, "/a"), (2, 8));
        assert_eq!(locate(DOC, "/a/b~0~1c"), (3, 13));
        assert_eq!(locate(DOC, "/a/b~0~1c/1/d"), (3, 23));
        assert_eq!(locate(DOC, "/a/b~0~1c/2"), (3, 32));
        assert_eq!(locate(DOC, "/f"), (6, 8));
    }

    #[test]
    fn missing_paths_point_at_the_deepest_existing_value() {
        assert_eq!(locate(DOC, "/a/missing"), (2, 8));
        assert_eq!(locate(DOC, "/a/b~0~1c/9"), (3, 13));
        assert_eq!(locate(DOC, "/nothing/here"), (1, 1));
    }

    #[test]
    fn columns_count_characters() {
        let text = "{\"é\": 1, \"x\": 2}";
        assert_eq!(locate(text, "/x"), (1, 15));
    }

    #[test]
    fn pointer_tokens_unescape() {
        assert_eq!(pointer_tokens("/a~1b/~0c/0"), ["a/b", "~c", "0"]);
        assert!(pointer_tokens("").is_empty());
        assert_eq!(escape_token("a/b~"), "a~1b~0");
    }
}
