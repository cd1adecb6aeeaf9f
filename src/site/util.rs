//! Small text helpers for the site: slugs, escaping, digests, sizes, relative roots.

use sha2::{Digest, Sha256};

/// Lowercase ASCII letters and digits joined by single dashes; other characters are
/// dropped (accents are folded for the common Latin letters first).
pub fn slugify(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        let folded = fold(c);
        for c in folded.chars() {
            if c.is_ascii_alphanumeric() {
                out.push(c.to_ascii_lowercase());
            } else if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out.truncate(80);
    while out.ends_with('-') {
        out.pop();
    }
    out
}

fn fold(c: char) -> String {
    let s = match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' => "a",
        'æ' | 'Æ' => "ae",
        'ç' | 'Ç' | 'č' | 'Č' | 'ć' | 'Ć' => "c",
        'è' | 'é' | 'ê' | 'ë' | 'È' | 'É' | 'Ê' | 'Ë' | 'ě' | 'ę' => "e",
        'ì' | 'í' | 'î' | 'ï' | 'Ì' | 'Í' | 'Î' | 'Ï' | 'ı' => "i",
        'ñ' | 'Ñ' | 'ń' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' => "o",
        'ù' | 'ú' | 'û' | 'ü' | 'Ù' | 'Ú' | 'Û' | 'Ü' | 'ů' => "u",
        'ý' | 'ÿ' | 'Ý' => "y",
        'ß' => "ss",
        'š' | 'Š' | 'ś' | 'ş' => "s",
        'ž' | 'Ž' | 'ź' | 'ż' => "z",
        'ł' | 'Ł' => "l",
        'ř' => "r",
        other => return other.to_string(),
    };
    s.to_string()
}

/// Percent-encodes a path (keeping `/`) so that any file name is a valid link.
pub fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `text` as a `data:` URL of `media_type`, percent-encoded (every byte but the
/// unreserved ones), so that a page can offer it as a download without a file of its
/// own: a record's citation files were two of the ten files it cost the site.
pub fn data_url(media_type: &str, text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = format!("data:{media_type};charset=utf-8,");
    out.reserve(text.len() * 2);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
    out
}

pub use crate::preserve::datacite::xml_escape;

/// JSON made safe to sit inside an HTML `<script>` element: `<`, `>` and `&` are
/// written as `\u` escapes, so no value can close the element.
pub fn script_json(value: &serde_json::Value) -> String {
    let text = serde_json::to_string(value).expect("JSON serialises");
    // One pass (this runs for every page of a record): most pages have none of these.
    let mut out = String::with_capacity(text.len() + 64);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Lowercase hex of the SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// A running fingerprint of a page's inputs.
#[derive(Clone, Default)]
pub struct Fingerprint(Sha256);

impl Fingerprint {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, part: impl AsRef<[u8]>) -> &mut Self {
        let bytes = part.as_ref();
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
        self
    }

    /// Feeds everything written to it, unframed: for self-delimiting text such as JSON
    /// (follow it with an `add` to end it).
    pub fn writer(&mut self) -> impl std::io::Write + '_ {
        struct Feed<'f>(&'f mut Sha256);
        impl std::io::Write for Feed<'_> {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.update(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        Feed(&mut self.0)
    }

    pub fn finish(&self) -> String {
        hex(&self.0.clone().finalize()[..16])
    }
}

/// `1.2 MB`, `340 bytes`.
pub fn human_size(bytes: u64) -> String {
    if bytes < 1000 {
        return format!("{bytes} bytes");
    }
    let units = ["kB", "MB", "GB", "TB"];
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit < units.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", units[unit])
}

/// The relative way from a page at `path` back to the site root: `records/x/index.html`
/// gives `../../`.
pub fn root_of(path: &str) -> String {
    "../".repeat(path.matches('/').count())
}

/// The base URL with exactly one trailing slash.
pub fn base_with_slash(base: &str) -> String {
    format!("{}/", base.trim_end_matches('/'))
}

/// A date as people read it: `2026-12-03T10:00:00Z` is "3 December 2026" (the day in
/// UTC, as git times are written). Text that does not start with a date stays as it is.
pub fn human_date(text: &str) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let date = || {
        let (year, rest) = text.get(..10)?.split_once('-')?;
        let (month, day) = rest.split_once('-')?;
        let month: usize = month.parse().ok()?;
        let day: u32 = day.parse().ok()?;
        let name = MONTHS.get(month.checked_sub(1)?)?;
        (year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit()) && (1..=31).contains(&day))
            .then(|| format!("{day} {name} {year}"))
    };
    date().unwrap_or_else(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls_keep_text_readable_and_encode_the_rest() {
        assert_eq!(
            data_url("application/x-bibtex", "@misc{a, title = {Zé \"x\"}}\n"),
            "data:application/x-bibtex;charset=utf-8,%40misc%7Ba%2C%20title%20%3D%20%7BZ%C3%A9%20%22x%22%7D%7D%0A"
        );
    }

    #[test]
    fn dates_read_as_people_write_them() {
        assert_eq!(human_date("2026-12-03T10:00:00Z"), "3 December 2026");
        assert_eq!(human_date("2018-01-31"), "31 January 2018");
        assert_eq!(human_date("not a date"), "not a date");
        assert_eq!(human_date("2018-13-01"), "2018-13-01");
        assert_eq!(human_date(""), "");
    }

    #[test]
    fn slugs() {
        assert_eq!(slugify("Tomás Ferreira"), "tomas-ferreira");
        assert_eq!(slugify("  H -> ZZ* -> 4l "), "h-zz-4l");
        assert_eq!(slugify("<script>"), "script");
        assert_eq!(slugify("日本"), "");
    }

    #[test]
    fn escapes() {
        assert_eq!(encode_path("a b/c#d.txt"), "a%20b/c%23d.txt");
        assert_eq!(xml_escape("<a & 'b'>"), "&lt;a &amp; &apos;b&apos;&gt;");
        let json = script_json(&serde_json::json!({"x": "</script><b>&"}));
        assert!(!json.contains('<') && !json.contains('>') && !json.contains('&'));
        assert_eq!(
            script_json(&serde_json::json!({"x": "a<b>&c\u{2028}\u{2029}é"})),
            r#"{"x":"a\u003cb\u003e\u0026c\u2028\u2029é"}"#
        );
        assert_eq!(root_of("index.html"), "");
        assert_eq!(root_of("records/x/index.html"), "../../");
        assert_eq!(human_size(1_234_567), "1.2 MB");
    }
}
