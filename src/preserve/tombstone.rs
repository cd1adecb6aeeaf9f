//! Withdrawal: a record taken out of public view by a committed tombstone.
//!
//! `deposits/<shard>/<id>/TOMBSTONE.json` holds the reason, the date and who withdrew
//! the record. A separate file rather than a block in deposit.json: the deposit's own
//! history and its record versions stay exactly as published (record tags are never
//! moved), the hook judges one small file, and every public output asks one question,
//! [`withdrawal`], before it shows anything of a record. The tombstone is permanent:
//! once committed it is never changed or removed, so the id stays reserved and the
//! landing page, citation and reason stay answerable.
//!
//! Who may withdraw: the deposit's admins (owners included) and the archive's admins,
//! judged by [`judge_change`] from the rights before the push.

use git2::Repository;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::PreserveError;
use crate::access::Level;
use crate::archive::GitTree;

/// The tombstone's file name inside the deposit's folder.
pub const TOMBSTONE: &str = "TOMBSTONE.json";

/// A withdrawn record's tombstone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    /// Why the record was withdrawn, shown on its landing page.
    pub reason: String,
    /// When, RFC 3339 in UTC.
    pub date: String,
    /// Who withdrew it (a user name of access.toml).
    pub by: String,
}

impl Tombstone {
    /// Parses and checks a tombstone file (through the archive's one JSON reader).
    pub fn parse(bytes: &[u8]) -> Result<Tombstone, String> {
        let value = crate::json::from_bytes(bytes)?;
        let Value::Object(map) = &value else {
            return Err(format!("{TOMBSTONE} must be a JSON object"));
        };
        for key in map.keys() {
            if !["reason", "date", "by"].contains(&key.as_str()) {
                return Err(format!(
                    "unknown key `{key}` in {TOMBSTONE}: it holds reason, date and by"
                ));
            }
        }
        let text = |key: &str| -> Result<String, String> {
            map.get(key)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or_else(|| format!("{TOMBSTONE} needs a non-empty `{key}` (a string)"))
        };
        let tombstone = Tombstone {
            reason: text("reason")?,
            date: text("date")?,
            by: text("by")?,
        };
        humantime::parse_rfc3339(&tombstone.date).map_err(|_| {
            format!("`date` in {TOMBSTONE} must be an RFC 3339 time such as 2026-11-22T10:00:00Z")
        })?;
        Ok(tombstone)
    }

    /// The file's text.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a tombstone serialises");
        text.push('\n');
        text
    }

    /// The day of withdrawal, `YYYY-MM-DD`.
    pub fn day(&self) -> &str {
        self.date.get(..10).unwrap_or(&self.date)
    }
}

/// The tombstone of `id` on the archive's default branch, if the record was withdrawn.
/// What every public output (exports, citations, DOIs, the site) asks first.
pub fn withdrawal(repo: &Repository, id: &str) -> Result<Option<Tombstone>, PreserveError> {
    let head = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let settings = match head {
        Some(commit) => super::settings_at(repo, commit.id())?,
        None => Default::default(),
    };
    let Ok(commit) = super::current_commit(repo, &settings) else {
        return Ok(None);
    };
    let tree = GitTree::at_commit(repo, commit)?;
    match tree.read_deposit_file(id, TOMBSTONE)? {
        Some(bytes) => Tombstone::parse(&bytes).map(Some).map_err(|e| {
            PreserveError::Invalid(format!("{}: {e}", crate::deposit::file_path(id, TOMBSTONE)))
        }),
        None => Ok(None),
    }
}

/// The push rule for a deposit's tombstone, given its bytes before and after a
/// change and the pusher's level on the deposit *before* the push (archive admins
/// count as [`Level::Admin`]). The hook calls it for every deposit folder whose
/// `TOMBSTONE.json` differs.
///
/// A tombstone may be added by a deposit admin or an archive admin, must parse, and
/// is never changed or removed afterwards.
pub fn judge_change(
    old: Option<&[u8]>,
    new: Option<&[u8]>,
    level: Level,
    who: &str,
) -> Result<(), String> {
    match (old, new) {
        (None, None) => Ok(()),
        (Some(a), Some(b)) if a == b => Ok(()),
        (Some(_), None) => Err(format!(
            "{who} may not remove {TOMBSTONE}: a withdrawal is permanent, so that the id stays reserved and its landing page keeps the reason"
        )),
        (Some(_), Some(_)) => Err(format!(
            "{who} may not change {TOMBSTONE}: a withdrawal is permanent (its reason and date are what readers were shown)"
        )),
        (None, Some(bytes)) => {
            if level < Level::Admin {
                return Err(format!(
                    "{who} may not withdraw this record: withdrawing needs deposit-admin on the deposit (owners hold it) or archive admin (policy.admins)"
                ));
            }
            Tombstone::parse(bytes).map(|_| ())
        }
    }
}

/// The push rule for a new record tag: a withdrawn deposit takes no new version.
/// `tombstone` is the deposit's TOMBSTONE.json at the tagged commit or on the default
/// branch before the push (either counts).
pub fn judge_publish(id: &str, tombstone: Option<&[u8]>) -> Result<(), String> {
    match tombstone {
        None => Ok(()),
        Some(bytes) => {
            let reason = Tombstone::parse(bytes)
                .map(|t| format!(" on {} ({})", t.day(), t.reason))
                .unwrap_or_default();
            Err(format!(
                "{id} was withdrawn{reason}: a withdrawn record takes no new versions, and its id stays reserved"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stone() -> Vec<u8> {
        Tombstone {
            reason: "Data retracted by the collaboration".into(),
            date: "2026-11-22T10:00:00Z".into(),
            by: "alice".into(),
        }
        .to_json()
        .into_bytes()
    }

    #[test]
    fn tombstones_round_trip_and_refuse_junk() {
        let t = Tombstone::parse(&stone()).unwrap();
        assert_eq!(t.day(), "2026-11-22");
        assert!(
            Tombstone::parse(br#"{"reason": "", "date": "2026-11-22T10:00:00Z", "by": "a"}"#)
                .unwrap_err()
                .contains("`reason`")
        );
        assert!(
            Tombstone::parse(br#"{"reason": "r", "date": "yesterday", "by": "a"}"#)
                .unwrap_err()
                .contains("RFC 3339")
        );
        assert!(Tombstone::parse(
            br#"{"reason": "r", "date": "2026-11-22T10:00:00Z", "by": "a", "x": 1}"#
        )
        .unwrap_err()
        .contains("unknown key"));
    }

    #[test]
    fn only_admins_withdraw_and_nobody_undoes_it() {
        let s = stone();
        assert!(judge_change(None, Some(&s), Level::Admin, "alice").is_ok());
        let e = judge_change(None, Some(&s), Level::Update, "bob").unwrap_err();
        assert!(e.contains("bob may not withdraw"), "{e}");
        let e = judge_change(Some(&s), None, Level::Admin, "alice").unwrap_err();
        assert!(e.contains("may not remove"), "{e}");
        let e = judge_change(Some(&s), Some(b"{}"), Level::Admin, "alice").unwrap_err();
        assert!(e.contains("may not change"), "{e}");
        assert!(judge_change(Some(&s), Some(&s), Level::None, "eve").is_ok());
        assert!(judge_change(None, Some(b"{}"), Level::Admin, "alice").is_err());
        let e = judge_publish("zee", Some(&s)).unwrap_err();
        assert!(e.contains("2026-11-22") && e.contains("retracted"), "{e}");
        assert!(judge_publish("zee", None).is_ok());
    }
}
