//! The rules for tags: record tags (publishing) and the archive's other tags.

use git2::Oid;
use serde_json::Value;

use super::{denied, on_first_parent_chain, Judge};
use crate::access::{DepositAccess, Level};
use crate::archive::{short, GitTree};
use crate::problem::Problem;
use crate::record::{parse_record_ref, versions_of, RecordVersion};
use crate::schema::{Mode, SchemaRegistry};
use crate::settings::TagPolicy;
use crate::validate::{check, parse_deposit, prepare};

use super::super::{HookError, RefUpdate};

impl Judge<'_> {
    pub(super) fn check_record(
        &self,
        update: &RefUpdate,
        record: RecordVersion<'_>,
        updates: &[RefUpdate],
        registry: &mut SchemaRegistry,
    ) -> Result<Vec<Problem>, HookError> {
        let name = &update.name;
        let tag = format!("records/{}/v{}", record.id, record.version);
        let who = self.who();
        if !update.is_create() {
            let what = if update.is_delete() { "delete" } else { "move" };
            return Ok(vec![Problem::file(
                name,
                denied(
                    who,
                    &format!("{what} the record tag {tag}"),
                    "published versions are immutable: a record tag is never moved, re-pointed or deleted, by anyone",
                    &format!("Publish a new version instead (`capsule publish {}`)", record.id),
                ),
            )]);
        }
        let mut problems = Vec::new();
        let repo = self.repo;
        if repo.find_tag(update.new).is_err() {
            problems.push(Problem::file(
                name,
                format!("{tag} is a lightweight tag: record tags must be annotated, so that they say who published and why. Use `capsule publish {}` (or `git tag -a`)", record.id),
            ));
        }
        let Ok(commit) = repo.find_object(update.new, None)?.peel_to_commit() else {
            problems.push(Problem::file(name, format!("{tag} must point at a commit")));
            return Ok(problems);
        };

        // Versions count 1, 2, 3, ... without gaps, also when several are pushed at once.
        let existing = versions_of(repo, record.id)?;
        let latest = existing.last().map_or(0, |r| r.version);
        let mut in_push: Vec<u32> = updates
            .iter()
            .filter(|u| u.is_create())
            .filter_map(|u| match parse_record_ref(&u.name) {
                Some(Ok(r)) if r.id == record.id => Some(r.version),
                _ => None,
            })
            .collect();
        in_push.sort_unstable();
        let position = in_push
            .iter()
            .position(|&v| v == record.version)
            .unwrap_or(0);
        let expected = latest + 1 + position as u32;
        if record.version != expected {
            let published = if latest == 0 {
                format!("{} has never been published", record.id)
            } else {
                format!("the latest version of {} is v{latest}", record.id)
            };
            problems.push(Problem::file(
                name,
                format!("{tag} is out of order: {published}, so the next record tag is records/{}/v{expected}. `capsule publish {}` picks the number", record.id, record.id),
            ));
        }

        // A withdrawn record takes no new versions: its tombstone at the tagged commit
        // or on the default branch before the push says so.
        let mut withdrawn = GitTree::at_commit(repo, commit.id())?
            .read_deposit_file(record.id, crate::preserve::tombstone::TOMBSTONE)?;
        if withdrawn.is_none() {
            if let Some(tip) = self.state.base {
                withdrawn = GitTree::at_commit(repo, tip)?
                    .read_deposit_file(record.id, crate::preserve::tombstone::TOMBSTONE)?;
            }
        }
        if let Err(why) = crate::preserve::tombstone::judge_publish(record.id, withdrawn.as_deref())
        {
            problems.push(Problem::file(name, why));
            return Ok(problems);
        }

        // The deposit as published must be complete: validated with `required`.
        let source = GitTree::at_commit(repo, commit.id())?;
        let path = crate::deposit::metadata_path(record.id);
        let label = short(commit.id());
        let Some(bytes) = source.read_deposit_file(record.id, "deposit.json")? else {
            problems.push(Problem::file(
                name,
                format!("{tag} points at commit {label}, which has no {path}: tag a commit that contains the deposit"),
            ));
            return Ok(problems);
        };
        let published =
            match parse_deposit(&path, &bytes).and_then(|d| prepare(registry, &source, d)) {
                Ok(prepared) => {
                    let found = check(&prepared, Mode::Publish);
                    let value = prepared.deposit.value.clone();
                    problems.extend(found.into_iter().map(|p| {
                        Problem {
                            message: format!("{} (needed to publish {tag})", p.message),
                            ..p
                        }
                        .in_commit(label.clone())
                    }));
                    value
                }
                Err(found) => {
                    problems.extend(found.into_iter().map(|p| p.in_commit(label.clone())));
                    return Ok(problems);
                }
            };

        // Records are published from the default branch's first-parent chain as it
        // stood before this push: every state there was judged as its pusher's own
        // change. A commit that arrives in the same push (even one the push puts on the
        // chain) has not landed yet: the branch update may still lose a race or be
        // refused while git creates the tag. So publishing is always its own push.
        let on_chain = match self.state.base {
            Some(tip) => on_first_parent_chain(repo, tip, commit.id())?,
            None => false,
        };
        if !on_chain {
            let branch = self.state.default_ref.trim_start_matches("refs/heads/");
            let why = if self
                .state
                .base
                .is_some_and(|tip| repo.graph_descendant_of(tip, commit.id()).unwrap_or(false))
            {
                format!("it is in the history of {branch} only through a merge's other parent, so it is not a version of the deposit on {branch}")
            } else {
                format!("it is not on the default branch ({branch}) as the server holds it")
            };
            problems.push(Problem::file(
                name,
                format!(
                    "{tag} points at commit {label}: {why}. Records are published from commits already on {branch}: push the commit to {branch} first, then publish it in a push of its own (`capsule publish {} --push` does both)",
                    record.id
                ),
            ));
            return Ok(problems);
        }
        let default_tip = self.default_tip_after();

        // Rights: the deposit as the default branch had it before the push; for a
        // deposit that arrives on the default branch in this very push (it passed the
        // creation rule there), as it arrives; else as last published.
        let read_at = |commit: Oid| -> Result<Option<Value>, HookError> {
            Ok(GitTree::at_commit(repo, commit)?
                .read_deposit_file(record.id, "deposit.json")?
                .and_then(|b| crate::json::from_bytes(&b).ok()))
        };
        let mut rights_deposit = match self.state.base {
            Some(tip) => read_at(tip)?,
            None => None,
        };
        if rights_deposit.is_none() {
            if let Some(tip) = default_tip.filter(|t| Some(*t) != self.state.base) {
                rights_deposit = read_at(tip)?;
            }
        }
        if rights_deposit.is_none() {
            if let Some(last) = existing.last() {
                rights_deposit = read_at(last.commit)?;
            }
        }
        let rights_deposit = rights_deposit.unwrap_or(Value::Null);
        let config = self.schema_config(&published, registry, &source);
        let allowed = self.level_on(Some(&rights_deposit)) >= Level::Admin
            || self.in_list(&self.state.settings.policy.publishers)
            || self.config_grants(&config, "publish");
        if !allowed {
            let holders =
                DepositAccess::of(&rights_deposit).holders_in(self.access(), Level::Admin);
            problems.push(Problem::file(
                name,
                denied(
                    who,
                    &format!("publish {}", record.id),
                    "publishing needs deposit-admin on the deposit (owners hold it), or membership of policy.publishers (capsule.toml) or the schema's config.permissions.publish",
                    &format!(
                        "Ask one of its admins ({}) to publish it, or to add you to _access.deposit-admin",
                        if holders.is_empty() { self.admins_text() } else { holders.join(", ") }
                    ),
                ),
            ));
        }
        Ok(problems)
    }

    pub(super) fn check_other_tag(&self, update: &RefUpdate) -> Option<Problem> {
        let tag = update.name.trim_start_matches("refs/tags/");
        let policy = self.state.settings.policy.tags;
        let allowed = self.is_archive_admin()
            || (update.is_create() && policy == TagPolicy::Members && self.pusher.is_some());
        if allowed {
            return None;
        }
        let what = if update.is_delete() {
            "delete"
        } else if update.is_create() {
            "create"
        } else {
            "move"
        };
        Some(Problem::file(
            &update.name,
            denied(
                self.who(),
                &format!("{what} the tag {tag}"),
                match policy {
                    TagPolicy::Admins => "tags other than record tags are reserved for archive admins (policy.tags = \"admins\")",
                    TagPolicy::Members => "members may create tags, but only archive admins move or delete them (policy.tags = \"members\")",
                },
                &format!("Publish records with `capsule publish`, or ask an archive admin ({})", self.admins_text()),
            ),
        ))
    }
}
