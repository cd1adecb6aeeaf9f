//! Schema versions, compared numerically component by component.
//!
//! CAP versions look like semver (`0.0.1`) but nothing guarantees three parts, so we
//! accept any dot-separated run of numbers (`1`, `0.10`, `2.0.0.1`) and compare them the
//! way people read them: `0.10.0 > 0.9.0`, and `1.0 == 1.0.0`.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// A schema version such as `1.0.0`.
#[derive(Debug, Clone, Eq)]
pub struct Version {
    parts: Vec<u64>,
    text: String,
}

impl Version {
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a version: use dot-separated numbers such as 1.0.0")]
pub struct BadVersion(pub String);

impl FromStr for Version {
    type Err = BadVersion;

    fn from_str(text: &str) -> Result<Self, BadVersion> {
        let bad = || BadVersion(text.to_string());
        if text.is_empty() || text.len() > 64 {
            return Err(bad());
        }
        let parts = text
            .split('.')
            .map(|part| {
                // Digits only: `+` signs and empty parts would parse but are not versions.
                if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                part.parse::<u64>().map_err(|_| bad())
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Version {
            parts,
            text: text.to_string(),
        })
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let len = self.parts.len().max(other.parts.len());
        for i in 0..len {
            let a = self.parts.get(i).copied().unwrap_or(0);
            let b = other.parts.get(i).copied().unwrap_or(0);
            match a.cmp(&b) {
                Ordering::Equal => continue,
                unequal => return unequal,
            }
        }
        Ordering::Equal
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    #[test]
    fn compares_numerically_not_lexically() {
        assert!(v("0.10.0") > v("0.9.0"));
        assert!(v("1.0.0") > v("0.99.99"));
        assert!(v("2") > v("1.9.9"));
        assert_eq!(v("1.0"), v("1.0.0"));
    }

    #[test]
    fn sorts_a_list() {
        let mut list = [v("0.10.0"), v("0.2.0"), v("0.9.1"), v("0.0.1")];
        list.sort();
        let texts: Vec<_> = list.iter().map(|v| v.as_str().to_string()).collect();
        assert_eq!(texts, ["0.0.1", "0.2.0", "0.9.1", "0.10.0"]);
    }

    #[test]
    fn rejects_what_is_not_a_version() {
        for bad in ["", "v1", "1..0", "1.0-beta", "+1", "1.x", ".1"] {
            assert!(bad.parse::<Version>().is_err(), "{bad} should be refused");
        }
    }
}
