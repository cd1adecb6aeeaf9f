//! After a push landed (post-receive): which ref updates are events, and the mails
//! their schemas' rules call for.
//!
//! Only refs that really landed count: git hands post-receive only the updates it
//! made, and each is checked again against the ref as it is now, so a push that
//! lost a race for a ref never sends mail. Settings, people and groups come from the
//! default branch as it is after the push; the deposit, its schema and the mail
//! templates from the commit of the event.

use std::collections::BTreeMap;

use git2::{ObjectType, Oid, Repository, Tree};
use serde::Serialize;

use super::{ArchiveState, HookError, RefUpdate};
use crate::archive::{diff_folders, GitTree};
use crate::mail::outbox::Entry;
use crate::mail::plan::{entries, evaluate_event, ArchiveMail, EventSpec, PlanNote};
use crate::mail::rules::Action;
use crate::record::{parse_record_ref, versions_of, Review, ReviewKind};
use crate::settings::MailSettings;

/// The mails a landed push calls for.
#[derive(Debug, Default, Serialize)]
pub struct NotificationPlan {
    /// `[mail]` of capsule.toml; `None`: mail is off and nothing was planned.
    #[serde(skip)]
    pub mail: Option<MailSettings>,
    pub entries: Vec<Entry>,
    pub notes: Vec<PlanNote>,
    /// Events that were looked at (publishes and reviews).
    pub events: usize,
}

/// Plans the mails for the ref updates of a landed push. `archive_key` identifies
/// the archive in Message-IDs (its git directory); `now` stamps the entries.
pub fn plan_notifications(
    repo: &Repository,
    archive_key: &str,
    updates: &[RefUpdate],
    pusher: Option<&str>,
    now: u64,
) -> Result<NotificationPlan, HookError> {
    let state = ArchiveState::before_push(repo)?;
    let mut plan = NotificationPlan {
        mail: state.settings.mail.clone(),
        ..NotificationPlan::default()
    };
    let Some(mail) = &state.settings.mail else {
        return Ok(plan);
    };
    let archive = ArchiveMail {
        settings: &state.settings,
        mail,
        access: &state.access,
    };
    let default_ref = format!("refs/heads/{}", state.settings.archive.default_branch);
    for update in updates {
        for (commit, spec, key) in events_of(repo, update, &default_ref, pusher)? {
            plan.events += 1;
            let source = GitTree::at_commit(repo, commit)?;
            let id = spec.deposit_id.clone();
            let draft_revision = || {
                crate::history::log(repo, commit, &id)
                    .ok()
                    .map(|versions| versions.len().saturating_sub(1) as u64)
            };
            let mails = evaluate_event(&source, archive, &spec, &draft_revision)?;
            let (mut found, mut notes) = entries(&mails, &key, archive_key, now);
            plan.entries.append(&mut found);
            plan.notes.append(&mut notes);
        }
    }
    Ok(plan)
}

/// Whether `update` is how its ref is now (or an ancestor of it, for a branch that
/// moved on since): a ref that lost a race, or was rolled back, is not.
fn landed(repo: &Repository, update: &RefUpdate) -> bool {
    let Ok(now) = repo.refname_to_id(&update.name) else {
        return false;
    };
    if now == update.new {
        return true;
    }
    let peel = |oid: Oid| {
        repo.find_object(oid, None)
            .and_then(|o| o.peel_to_commit())
            .map(|c| c.id())
    };
    match (peel(now), peel(update.new)) {
        (Ok(now), Ok(new)) if update.name.starts_with("refs/heads/") => {
            now == new || repo.graph_descendant_of(now, new).unwrap_or(false)
        }
        _ => false,
    }
}

/// The events one landed update carries: `(commit, what, event key)`.
fn events_of(
    repo: &Repository,
    update: &RefUpdate,
    default_ref: &str,
    pusher: Option<&str>,
) -> Result<Vec<(Oid, EventSpec, String)>, HookError> {
    if update.is_delete() || !landed(repo, update) {
        return Ok(Vec::new());
    }
    let pusher = pusher.map(str::to_string);
    if let Some(parsed) = parse_record_ref(&update.name) {
        // Record tags are created once and never move: only a creation publishes.
        let (Ok(record), true) = (parsed, update.is_create()) else {
            return Ok(Vec::new());
        };
        let commit = repo.find_object(update.new, None)?.peel_to_commit()?.id();
        let spec = EventSpec {
            action: Action::Publish,
            deposit_id: record.id.to_string(),
            record_version: Some(record.version),
            pusher,
            review: None,
        };
        return Ok(vec![(
            commit,
            spec,
            format!("publish {} {}", update.name, update.new),
        )]);
    }
    if !update.name.starts_with("refs/heads/") {
        return Ok(Vec::new());
    }
    let new_commit = repo.find_object(update.new, None)?.peel_to_commit()?;
    // What the branch brings: since its old tip, or for a new branch since where it
    // left the default branch (all of it when it is the first branch).
    let base = if !update.is_create() {
        Some(update.old)
    } else if update.name != default_ref {
        repo.refname_to_id(default_ref)
            .ok()
            .and_then(|tip| repo.merge_base(tip, new_commit.id()).ok())
    } else {
        None
    };
    let base_tree = base.map(|c| repo.find_commit(c)?.tree()).transpose()?;
    let mut events = Vec::new();
    let mut latest: BTreeMap<String, Option<u32>> = BTreeMap::new();
    for (id, file, blob) in added_reviews(repo, base_tree.as_ref(), &new_commit.tree()?)? {
        let Ok(review) = Review::parse(&file, repo.find_blob(blob)?.content()) else {
            continue;
        };
        // Resolving (or deleting) a review sends nothing.
        if review.kind == ReviewKind::Resolution {
            continue;
        }
        let version = match latest.get(&id) {
            Some(v) => *v,
            None => {
                let v = versions_of(repo, &id)?.last().map(|r| r.version);
                latest.insert(id.clone(), v);
                v
            }
        };
        let name = file.trim_end_matches(".json").to_string();
        // Keyed by the review file itself, not the branch: the same review reaching
        // a second branch (a merge) is not a new review.
        let key = format!(
            "review {} {blob}",
            crate::deposit::file_path(&id, &format!("reviews/{file}"))
        );
        events.push((
            new_commit.id(),
            EventSpec {
                action: Action::Review,
                deposit_id: id,
                record_version: version,
                pusher: pusher.clone(),
                review: Some((review, name)),
            },
            key,
        ));
    }
    Ok(events)
}

/// Review files added between two trees: `(deposit id, file name, blob)`.
/// Reads only the shards and deposit folders whose ids differ, so the cost follows the
/// change.
fn added_reviews(
    repo: &Repository,
    old: Option<&Tree<'_>>,
    new: &Tree<'_>,
) -> Result<Vec<(String, String, Oid)>, git2::Error> {
    let deposits = |tree: Option<&Tree<'_>>| -> Option<Oid> {
        tree?
            .get_name(crate::deposit::DEPOSITS)
            .filter(|e| e.kind() == Some(ObjectType::Tree))
            .map(|e| e.id())
    };
    let reviews = |folder: Option<Oid>| -> Result<Option<Tree<'_>>, git2::Error> {
        let Some(folder) = folder else {
            return Ok(None);
        };
        match repo.find_tree(folder)?.get_name("reviews") {
            Some(e) if e.kind() == Some(ObjectType::Tree) => Ok(Some(repo.find_tree(e.id())?)),
            _ => Ok(None),
        }
    };
    let mut changed = Vec::new();
    diff_folders(
        &repo.odb()?,
        deposits(Some(new)),
        deposits(old),
        &mut |id, now, before| changed.push((id.to_string(), now, before)),
    )?;
    let mut found = Vec::new();
    for (id, now, before) in changed {
        let Some(new_reviews) = reviews(now)? else {
            continue;
        };
        let old_reviews = reviews(before)?;
        for file in new_reviews.iter() {
            let Some(name) = file.name() else { continue };
            if file.kind() != Some(ObjectType::Blob) || !name.ends_with(".json") {
                continue;
            }
            let existed = old_reviews
                .as_ref()
                .is_some_and(|o| o.get_name(name).is_some());
            if !existed {
                found.push((id.clone(), name.to_string(), file.id()));
            }
        }
    }
    Ok(found)
}
