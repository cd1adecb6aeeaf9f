//! People, groups and who is pushing.
//!
//! access.toml maps user names to e-mail addresses and defines groups (CERN e-groups):
//!
//! ```toml
//! [people]
//! alice = "alice@example.org"
//! # or, for archives of CAP deposits, with the person's CAP user id and e-groups:
//! bob = { email = "bob@cern.ch", cap_id = 1234, groups = ["cms-members"] }
//!
//! [groups]
//! cms-members = ["alice", "bob"]
//! ```
//!
//! Wherever a deposit names people (`_deposit.owners`, `_access.*.users`), an entry
//! may be a user name, an e-mail or a CAP user id (a JSON number, or a string of
//! digits): CAP's own schemas type them as integers, so CAP's records carry ids.
//!
//! It also says what a person may do with one deposit, from CAP's `_access`
//! (`deposit-read`, `deposit-update`, `deposit-admin`, each `{users, roles}`) and
//! `_deposit.owners`. This module judges; the hook decides which state to judge from
//! (always the state before the push).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::settings::{IdentitySettings, SettingsError};

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Access {
    #[serde(default)]
    pub people: BTreeMap<String, Person>,
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<String>>,
}

/// One person of `[people]`: an e-mail, or a table with more.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Person {
    Email(String),
    Details(PersonDetails),
}

/// `{ email = "...", cap_id = 1234, groups = ["..."] }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PersonDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The person's numeric user id in CAP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap_id: Option<u64>,
    /// Groups (e-groups) the person belongs to, besides those that list them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

impl Person {
    pub fn email(&self) -> Option<&str> {
        match self {
            Person::Email(e) => Some(e),
            Person::Details(d) => d.email.as_deref(),
        }
    }

    pub fn cap_id(&self) -> Option<u64> {
        match self {
            Person::Email(_) => None,
            Person::Details(d) => d.cap_id,
        }
    }

    fn groups(&self) -> &[String] {
        match self {
            Person::Email(_) => &[],
            Person::Details(d) => &d.groups,
        }
    }
}

/// A CAP user id written in an access list: a JSON number, or a string of digits.
fn as_cap_id(entry: &str) -> Option<u64> {
    (!entry.is_empty() && entry.bytes().all(|b| b.is_ascii_digit()))
        .then(|| entry.parse().ok())
        .flatten()
}

impl Access {
    pub fn parse(text: &str) -> Result<Access, SettingsError> {
        toml::from_str(text).map_err(|e| SettingsError::from_toml("access.toml", text, &e))
    }

    pub fn email(&self, user: &str) -> Option<&str> {
        self.people.get(user).and_then(Person::email)
    }

    /// The person's CAP user id, when access.toml gives one.
    pub fn cap_id(&self, user: &str) -> Option<u64> {
        self.people.get(user).and_then(Person::cap_id)
    }

    /// The user name whose CAP id is `id`.
    pub fn user_by_cap_id(&self, id: u64) -> Option<&str> {
        self.people
            .iter()
            .find(|(_, p)| p.cap_id() == Some(id))
            .map(|(user, _)| user.as_str())
    }

    /// Whether `entry` of an access list names `user` by name, e-mail or CAP id.
    fn names(&self, user: &str, entry: &str) -> bool {
        entry == user
            || self
                .email(user)
                .is_some_and(|email| email.eq_ignore_ascii_case(entry))
            || as_cap_id(entry).is_some_and(|id| self.cap_id(user) == Some(id))
    }

    /// An entry of an access list as people read it: a CAP id becomes its user name.
    pub fn display(&self, entry: &str) -> String {
        match as_cap_id(entry).and_then(|id| self.user_by_cap_id(id)) {
            Some(user) => format!("{user} (CAP id {entry})"),
            None if as_cap_id(entry).is_some() => format!("CAP user {entry}"),
            None => entry.to_string(),
        }
    }

    /// Whether `user` belongs to `group` (directly, or through a member that is itself a group).
    pub fn is_member(&self, user: &str, group: &str) -> bool {
        let mut seen = std::collections::BTreeSet::new();
        let mut stack = vec![group];
        while let Some(g) = stack.pop() {
            if !seen.insert(g) {
                continue;
            }
            if self
                .people
                .get(user)
                .is_some_and(|p| p.groups().iter().any(|own| own == g))
            {
                return true;
            }
            for member in self.groups.get(g).into_iter().flatten() {
                if self.names(user, member) {
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

impl Access {
    /// Whether `user` matches an entry of a `users` or `admins` list: the user name,
    /// the user's e-mail (case-insensitively), or a group the user belongs to.
    pub fn matches(&self, user: &str, entry: &str) -> bool {
        self.names(user, entry) || self.is_member(user, entry)
    }

    /// Whether `user` matches any entry of `list`.
    pub fn matches_any(&self, user: &str, list: &[String]) -> bool {
        list.iter().any(|entry| self.matches(user, entry))
    }

    /// The user name whose e-mail is `email`, if one is listed.
    pub fn user_by_email(&self, email: &str) -> Option<&str> {
        self.people
            .iter()
            .find(|(_, p)| p.email().is_some_and(|e| e.eq_ignore_ascii_case(email)))
            .map(|(user, _)| user.as_str())
    }

    /// Whether the archive knows this user (listed in `[people]`).
    pub fn knows(&self, user: &str) -> bool {
        self.people.contains_key(user)
    }

    /// The user of `[people]` that `given` names: their user name, their e-mail (in any
    /// case) or their CAP id. What `capsule access add --user` accepts.
    pub fn find_person(&self, given: &str) -> Option<&str> {
        if let Some((user, _)) = self.people.get_key_value(given) {
            return Some(user.as_str());
        }
        as_cap_id(given)
            .and_then(|id| self.user_by_cap_id(id))
            .or_else(|| self.user_by_email(given))
    }

    /// Whether an entry of an access list, as a deposit writes it (a name, an e-mail,
    /// a CAP id as a number or digits, an object with `email`), names `user` directly:
    /// not through a group.
    pub fn entry_names(&self, user: &str, entry: &Value) -> bool {
        person_entry(entry).is_some_and(|text| self.names(user, &text))
    }

    /// Whether `group` is a group this archive knows: a key of `[groups]`, or a group
    /// some person of `[people]` lists as theirs.
    pub fn knows_group(&self, group: &str) -> bool {
        self.groups.contains_key(group)
            || self
                .people
                .values()
                .any(|p| p.groups().iter().any(|g| g == group))
    }
}

/// An entry of an access list as text (see [`Access::entry_names`]); `None` for values
/// that name nobody (`null`, booleans, lists).
pub fn entry_text(entry: &Value) -> Option<String> {
    person_entry(entry)
}

/// What a person may do with a deposit, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    None,
    Read,
    Update,
    Admin,
}

impl Level {
    /// The `_access` key that grants this level.
    pub fn key(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::Read => "deposit-read",
            Level::Update => "deposit-update",
            Level::Admin => "deposit-admin",
        }
    }
}

/// One `_access` entry: `{ "users": [...], "roles": [...] }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Grant {
    pub users: Vec<String>,
    pub roles: Vec<String>,
}

impl Grant {
    fn from_value(value: Option<&Value>) -> Grant {
        let list = |key: &str| -> Vec<String> {
            value
                .and_then(|v| v.get(key))
                .and_then(Value::as_array)
                .map(|items| items.iter().filter_map(person_entry).collect())
                .unwrap_or_default()
        };
        Grant {
            users: list("users"),
            roles: list("roles"),
        }
    }

    fn allows(&self, access: &Access, user: &str) -> bool {
        access.matches_any(user, &self.users)
            || self.roles.iter().any(|role| access.is_member(user, role))
    }

    /// Whether everybody may use this grant (CAP's public read: a role `*` or `public`).
    pub fn is_public(&self) -> bool {
        self.roles
            .iter()
            .chain(&self.users)
            .any(|r| r == "*" || r == "public")
    }
}

/// One person or group in an access list, in any of the forms CAP writes: a name or
/// e-mail, a numeric user id, or an object with an `email`.
fn person_entry(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(map) => map.get("email").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

/// The access part of one deposit: owners and the three grants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DepositAccess {
    pub owners: Vec<String>,
    pub read: Grant,
    pub update: Grant,
    pub admin: Grant,
}

impl DepositAccess {
    /// Reads `_deposit.owners` and `_access` from a deposit; missing parts grant nothing.
    pub fn of(deposit: &Value) -> DepositAccess {
        let access = deposit.get("_access");
        let owners = deposit
            .pointer("/_deposit/owners")
            .and_then(Value::as_array)
            .map(|items| items.iter().filter_map(person_entry).collect())
            .unwrap_or_default();
        DepositAccess {
            owners,
            read: Grant::from_value(access.and_then(|a| a.get("deposit-read"))),
            update: Grant::from_value(access.and_then(|a| a.get("deposit-update"))),
            admin: Grant::from_value(access.and_then(|a| a.get("deposit-admin"))),
        }
    }

    /// The strongest level `user` holds. Owners hold admin, as in CAP.
    pub fn level(&self, access: &Access, user: &str) -> Level {
        if access.matches_any(user, &self.owners) || self.admin.allows(access, user) {
            Level::Admin
        } else if self.update.allows(access, user) {
            Level::Update
        } else if self.read.allows(access, user) {
            Level::Read
        } else {
            Level::None
        }
    }

    /// Whether anybody at all may read the deposit (public site, public search).
    pub fn is_public(&self) -> bool {
        self.read.is_public()
    }

    /// [`DepositAccess::holders`], with CAP ids shown as the people access.toml names.
    pub fn holders_in(&self, access: &Access, level: Level) -> Vec<String> {
        let mut names: Vec<String> = self
            .holders(level)
            .iter()
            .map(|h| access.display(h))
            .collect();
        let mut seen = std::collections::HashSet::new();
        names.retain(|n| seen.insert(n.clone()));
        names
    }

    /// Who holds `level` or more, for messages that say whom to ask.
    pub fn holders(&self, level: Level) -> Vec<String> {
        let mut names: Vec<String> = self.owners.clone();
        names.extend(self.admin.users.iter().cloned());
        names.extend(self.admin.roles.iter().map(|r| format!("group {r}")));
        if level <= Level::Update {
            names.extend(self.update.users.iter().cloned());
            names.extend(self.update.roles.iter().map(|r| format!("group {r}")));
        }
        let mut seen = std::collections::HashSet::new();
        names.retain(|n| seen.insert(n.clone()));
        names
    }
}

/// Who is working in a clone: `CAPSULE_USER`, else the user whose e-mail is git's
/// `user.email`, else the login name. Local commands use it to fill in owners and
/// review authors; the server judges the pusher, never this.
pub fn local_user(access: &Access, git_email: Option<&str>) -> Option<String> {
    let from_env = |var: &str| std::env::var(var).ok().filter(|v| !v.trim().is_empty());
    from_env("CAPSULE_USER")
        .or_else(|| {
            git_email
                .and_then(|e| access.user_by_email(e))
                .map(str::to_string)
        })
        .or_else(|| from_env("USER"))
        .or_else(|| from_env("USERNAME"))
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
    fn deposit_levels_follow_owners_grants_and_groups() {
        let a = Access::parse(
            "[people]\nalice = \"alice@x.org\"\nbob = \"bob@x.org\"\ncarol = \"carol@x.org\"\ndave = \"dave@x.org\"\n[groups]\nreaders = [\"dave\"]\n",
        )
        .unwrap();
        let d = DepositAccess::of(&serde_json::json!({
            "_deposit": {"owners": ["alice"]},
            "_access": {
                "deposit-read": {"users": [], "roles": ["readers"]},
                "deposit-update": {"users": ["BOB@x.org"], "roles": []},
                "deposit-admin": {"users": ["carol"], "roles": []}
            }
        }));
        assert_eq!(d.level(&a, "alice"), Level::Admin);
        assert_eq!(d.level(&a, "bob"), Level::Update);
        assert_eq!(d.level(&a, "carol"), Level::Admin);
        assert_eq!(d.level(&a, "dave"), Level::Read);
        assert_eq!(d.level(&a, "eve"), Level::None);
        assert!(!d.is_public());
        assert_eq!(d.holders(Level::Admin), ["alice", "carol"]);
        assert_eq!(
            DepositAccess::of(&serde_json::json!({})).level(&a, "alice"),
            Level::None
        );
    }

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

    #[test]
    fn cap_ids_name_people_in_both_forms_of_people() {
        let a = Access::parse(
            "[people]\nalice = { email = \"alice@cern.ch\", cap_id = 1234, groups = [\"cms\"] }\nbob = \"bob@x.org\"\n",
        )
        .unwrap();
        assert_eq!(a.email("alice"), Some("alice@cern.ch"));
        assert_eq!(a.email("bob"), Some("bob@x.org"));
        assert_eq!(a.user_by_cap_id(1234), Some("alice"));
        assert!(a.is_member("alice", "cms"), "groups given with the person");
        let d = DepositAccess::of(&serde_json::json!({
            "_deposit": {"owners": [1234]},
            "_access": {"deposit-update": {"users": ["77", "bob@x.org"], "roles": []}}
        }));
        assert_eq!(d.level(&a, "alice"), Level::Admin);
        assert_eq!(d.level(&a, "bob"), Level::Update);
        assert_eq!(d.holders_in(&a, Level::Admin), ["alice (CAP id 1234)"]);
        assert!(Access::parse("[people]\nx = { mail = \"x@y\" }\n").is_err());
    }
}
