//! Who may read, update and administer one deposit, as `capsule access` shows and
//! edits it: the deposit's `_access` lists (`deposit-read`, `deposit-update`,
//! `deposit-admin`, each `{users, roles}`) and its `_deposit.owners`.
//!
//! This module only changes values; what a person's rights *are* is judged by
//! [`crate::access`], and whether a change may land by the hook (from the state before
//! the push). Entries are matched in every form CAP writes (a name, an e-mail, a CAP id
//! as a number or digits, an object with `email`), so removing `bob` also removes the
//! `"bob@example.org"` or `5678` that names him.

use serde::Serialize;
use serde_json::{json, Value};

use crate::access::{entry_text, Access, Level};

/// One list of an `_access` level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    /// People (user names, e-mails, CAP user ids).
    Users,
    /// Groups (e-groups; CAP role ids where the schema wants numbers).
    Roles,
}

impl List {
    pub fn key(self) -> &'static str {
        match self {
            List::Users => "users",
            List::Roles => "roles",
        }
    }
}

/// The list `_access.<level>.<list>` of a deposit, created (as CAP writes a level,
/// `{"users": [], "roles": []}`) when `create` and missing. `Ok(None)` when missing and
/// not created; an error when something on the way is not what `_access` must be.
fn list_mut(
    deposit: &mut Value,
    level: Level,
    list: List,
    create: bool,
) -> Result<Option<&mut Vec<Value>>, String> {
    let place = format!("/_access/{}/{}", level.key(), list.key());
    let not = |what: &str| {
        format!("{place}: {what}; fix the deposit's _access first (`capsule edit`), then run this again")
    };
    let Value::Object(root) = deposit else {
        return Err(not("the deposit is not a JSON object"));
    };
    if !root.contains_key("_access") {
        if !create {
            return Ok(None);
        }
        root.insert("_access".into(), json!({}));
    }
    let Value::Object(access) = &mut root["_access"] else {
        return Err(not("_access is not an object"));
    };
    if !access.contains_key(level.key()) {
        if !create {
            return Ok(None);
        }
        access.insert(level.key().into(), json!({"users": [], "roles": []}));
    }
    let Value::Object(grant) = &mut access[level.key()] else {
        return Err(not(&format!("_access/{} is not an object", level.key())));
    };
    if !grant.contains_key(list.key()) {
        if !create {
            return Ok(None);
        }
        grant.insert(list.key().into(), json!([]));
    }
    match &mut grant[list.key()] {
        Value::Array(items) => Ok(Some(items)),
        _ => Err(not("it is not a list")),
    }
}

/// Adds `entry` to `_access.<level>.<list>` unless an entry there is `same` already.
/// `Ok(false)` when nothing changed.
pub fn add(
    deposit: &mut Value,
    level: Level,
    list: List,
    entry: Value,
    same: &dyn Fn(&Value) -> bool,
) -> Result<bool, String> {
    let items = list_mut(deposit, level, list, true)?.expect("created");
    if items.iter().any(same) {
        return Ok(false);
    }
    items.push(entry);
    Ok(true)
}

/// Removes every entry of `_access.<level>.<list>` that is `same`; returns them.
pub fn remove(
    deposit: &mut Value,
    level: Level,
    list: List,
    same: &dyn Fn(&Value) -> bool,
) -> Result<Vec<Value>, String> {
    let Some(items) = list_mut(deposit, level, list, false)? else {
        return Ok(Vec::new());
    };
    let mut removed = Vec::new();
    items.retain(|item| {
        let hit = same(item);
        if hit {
            removed.push(item.clone());
        }
        !hit
    });
    Ok(removed)
}

/// A person in an access list, as written and as access.toml knows them.
#[derive(Debug, Clone, Serialize)]
pub struct PersonView {
    /// The entry as the deposit writes it.
    pub entry: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cap_id: Option<u64>,
    /// The entry names a group (a `users` entry may), not a person.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub group: bool,
}

/// A group in a `roles` list.
#[derive(Debug, Clone, Serialize)]
pub struct GroupView {
    pub entry: Value,
    /// access.toml defines it (or a person lists it as theirs).
    pub known: bool,
    /// `public` or `*`: everybody may read (the public site).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub public: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct GrantView {
    pub users: Vec<PersonView>,
    pub roles: Vec<GroupView>,
}

/// Who may do what with a deposit.
#[derive(Debug, Clone, Serialize)]
pub struct AccessView {
    /// `_deposit.owners`: they hold deposit-admin, as in CAP.
    pub owners: Vec<PersonView>,
    #[serde(rename = "deposit-admin")]
    pub admin: GrantView,
    #[serde(rename = "deposit-update")]
    pub update: GrantView,
    #[serde(rename = "deposit-read")]
    pub read: GrantView,
}

impl AccessView {
    pub fn level(&self, level: Level) -> Option<&GrantView> {
        match level {
            Level::Admin => Some(&self.admin),
            Level::Update => Some(&self.update),
            Level::Read => Some(&self.read),
            Level::None => None,
        }
    }
}

/// Describes a deposit's owners and `_access` with the people access.toml names.
pub fn describe(deposit: &Value, access: &Access) -> AccessView {
    let person = |entry: &Value| {
        let text = entry_text(entry);
        let user = text.as_deref().and_then(|t| access.find_person(t));
        PersonView {
            entry: entry.clone(),
            user: user.map(str::to_string),
            email: user.and_then(|u| access.email(u)).map(str::to_string),
            cap_id: user.and_then(|u| access.cap_id(u)),
            group: user.is_none() && text.as_deref().is_some_and(|t| access.knows_group(t)),
        }
    };
    let items = |pointer: &str| -> Vec<Value> {
        deposit
            .pointer(pointer)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let grant = |level: Level| GrantView {
        users: items(&format!("/_access/{}/users", level.key()))
            .iter()
            .map(person)
            .collect(),
        roles: items(&format!("/_access/{}/roles", level.key()))
            .iter()
            .map(|entry| {
                let text = entry_text(entry).unwrap_or_default();
                GroupView {
                    entry: entry.clone(),
                    known: access.knows_group(&text),
                    public: text == "public" || text == "*",
                }
            })
            .collect(),
    };
    AccessView {
        owners: items("/_deposit/owners").iter().map(person).collect(),
        admin: grant(Level::Admin),
        update: grant(Level::Update),
        read: grant(Level::Read),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_creates_levels_and_skips_entries_already_there() {
        let mut d = json!({"_access": {"deposit-read": {"users": ["alice"], "roles": []}}});
        let bob = |v: &Value| v == "bob";
        assert!(add(&mut d, Level::Update, List::Users, json!("bob"), &bob).unwrap());
        assert!(!add(&mut d, Level::Update, List::Users, json!("bob"), &bob).unwrap());
        assert_eq!(
            d["_access"]["deposit-update"],
            json!({"users": ["bob"], "roles": []})
        );
        let removed = remove(&mut d, Level::Update, List::Users, &bob).unwrap();
        assert_eq!(removed, vec![json!("bob")]);
        assert!(remove(&mut d, Level::Admin, List::Users, &bob)
            .unwrap()
            .is_empty());
        assert!(
            d["_access"].get("deposit-admin").is_none(),
            "remove creates nothing"
        );
        let mut broken = json!({"_access": {"deposit-read": {"users": "alice"}}});
        let err = add(&mut broken, Level::Read, List::Users, json!("bob"), &bob).unwrap_err();
        assert!(
            err.contains("/_access/deposit-read/users: it is not a list"),
            "{err}"
        );
    }

    #[test]
    fn describe_names_people_by_any_form() {
        let access = Access::parse(
            "[people]\nalice = { email = \"alice@x.org\", cap_id = 7 }\nbob = \"bob@x.org\"\n[groups]\ncms = [\"bob\"]\n",
        )
        .unwrap();
        let d = json!({
            "_deposit": {"owners": [7]},
            "_access": {"deposit-update": {"users": ["BOB@x.org", "cms", "eve"], "roles": ["cms", "nobody"]},
                        "deposit-read": {"users": [], "roles": ["public"]}}
        });
        let view = describe(&d, &access);
        assert_eq!(view.owners[0].user.as_deref(), Some("alice"));
        assert_eq!(view.owners[0].email.as_deref(), Some("alice@x.org"));
        assert_eq!(view.update.users[0].user.as_deref(), Some("bob"));
        assert!(view.update.users[1].group);
        assert!(view.update.users[2].user.is_none() && !view.update.users[2].group);
        assert!(view.update.roles[0].known && !view.update.roles[1].known);
        assert!(view.read.roles[0].public);
        assert!(view.admin.users.is_empty());
    }
}
