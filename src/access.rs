//! People, groups and who is pushing.
//!
//! access.toml maps user names to e-mail addresses and defines groups (CERN e-groups):
//!
//! ```toml
//! [people]
//! alice = "alice@example.org"
//!
//! [groups]
//! cms-members = ["alice", "bob"]
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::settings::{IdentitySettings, SettingsError};

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Access {
    #[serde(default)]
    pub people: BTreeMap<String, String>,
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<String>>,
}

impl Access {
    pub fn parse(text: &str) -> Result<Access, SettingsError> {
        toml::from_str(text).map_err(|e| SettingsError::from_toml("access.toml", text, &e))
    }

    pub fn email(&self, user: &str) -> Option<&str> {
        self.people.get(user).map(String::as_str)
    }

    /// Whether `user` belongs to `group` (directly, or through a member that is itself a group).
    pub fn is_member(&self, user: &str, group: &str) -> bool {
        let mut seen = std::collections::BTreeSet::new();
        let mut stack = vec![group];
        while let Some(g) = stack.pop() {
            if !seen.insert(g) {
                continue;
            }
            for member in self.groups.get(g).into_iter().flatten() {
                if member == user || self.email(user) == Some(member.as_str()) {
                    return true;
                }
                if self.groups.contains_key(member) {
                    stack.push(member);
                }
            }
        }
        false
    }
}

/// The pusher as the hosting server reports it: the first of the configured variables
/// that is set and non-empty, with the variable's name.
pub fn pusher_from_env(identity: &IdentitySettings) -> Option<(String, String)> {
    identity.env.iter().find_map(|var| {
        std::env::var(var)
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .map(|v| (v, var.clone()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_groups_and_emails() {
        let a = Access::parse(
            "[people]\nalice = \"alice@x.org\"\n[groups]\ncms = [\"conveners\", \"bob\"]\nconveners = [\"alice@x.org\"]\nloop = [\"loop\"]\n",
        )
        .unwrap();
        assert!(a.is_member("bob", "cms"));
        assert!(a.is_member("alice", "cms"));
        assert!(!a.is_member("carol", "cms"));
        assert!(!a.is_member("alice", "loop"));
        assert!(!a.is_member("alice", "nonexistent"));
    }
}
