//! Who may change what: the push rules, judged from the state before the push.
//!
//! On the default branch every commit the push adds to the first-parent chain is judged
//! on its own change against its first parent (the chain's states are the archive's
//! versions); on other branches a rule looks at the *net* change a ref update makes
//! (its old tip, or for a new branch the point where it left the default branch,
//! against its new tip). Either way the cost follows what changed. Rights always come
//! from the state before the push: the
//! deposit as the updated branch (or the default branch) had it, and capsule.toml and
//! access.toml of the default branch. Nobody can grant themselves a right in the push
//! that uses it.
//!
//! Every refusal says who, what, which rule, and how to get the right. Reviews are
//! judged in `reviews`, record tags and other tags in `tags`.

mod reviews;
mod tags;

use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use git2::{Delta, Oid, Repository};
use serde_json::Value;

use super::{ArchiveState, ChangeMemo, HookError, RefUpdate};
use crate::access::{DepositAccess, Level};
use crate::archive::{short, GitTree};
use crate::deposit::{classify, parse_schema_ref, PathKind};
use crate::problem::Problem;
use crate::record::{parse_record_ref, versions_of};
use crate::schema::SchemaRegistry;

/// A deposit.json before and after a push (`None`: absent on that side).
type BeforeAfter = (Option<Value>, Option<Value>);

/// The judge of one push.
pub struct Judge<'a> {
    pub repo: &'a Repository,
    pub state: &'a ArchiveState,
    /// The pusher's user name; `None` for an anonymous push.
    pub pusher: Option<&'a str>,
    /// The repository without the pushed objects (see [`Judge::on_a_branch_before`]).
    pub before: Option<&'a Repository>,
    /// The whole push.
    pub updates: &'a [RefUpdate],
    /// Deposits parsed so far, by blob: a deposit is parsed once per push, however
    /// many commits of the chain read it (commit k's "after" is commit k+1's "before").
    pub parsed: std::cell::RefCell<HashMap<Oid, Rc<Value>>>,
    /// Changes between trees, each pair walked once per push.
    pub changes: ChangeMemo,
}

/// The refusal text every rule uses: who, what, which rule, how to get the right.
fn denied(who: &str, what: &str, rule: &str, how: &str) -> String {
    if who == ANONYMOUS {
        return format!("{who} may not {what}: {rule}. Anonymous pushers hold no rights on deposits: push as a user the server knows");
    }
    format!("{who} may not {what}: {rule}. {how}")
}

const ANONYMOUS: &str = "an anonymous pusher";

impl Judge<'_> {
    fn who(&self) -> &str {
        self.pusher.unwrap_or(ANONYMOUS)
    }

    fn access(&self) -> &crate::access::Access {
        &self.state.access
    }

    /// The repository has no accepted state yet: its first push sets the rules. Only a
    /// repository without any branch is in that state. Anything weaker can be reached
    /// by a member (an empty orphan branch under the configured default branch's name
    /// made everyone an admin), so a repository with branches but no capsule.toml on
    /// its default branch has no rules, and every push is refused until a server admin
    /// adds them (see [`Judge::check_identity`]).
    fn bootstrapping(&self) -> bool {
        !self.state.has_branches
    }

    /// Whether a branch already holds exactly this file in this deposit's folder: then
    /// it was checked when it arrived, by the rules of the push that brought it. Content
    /// alone is not enough (a review copied to another deposit is a forgery). The folder
    /// is found as each branch lays it out, so `capsule migrate` moving a review into its
    /// shard is not a new review.
    fn on_a_branch_before(&self, id: &str, rest: &str, blob: Oid) -> bool {
        let Some(repo) = self.before else {
            return false;
        };
        let Ok(branches) = repo.references_glob("refs/heads/*") else {
            return false;
        };
        branches.flatten().any(|reference| {
            let Ok(tree) = reference.peel_to_tree() else {
                return false;
            };
            let folder = crate::archive::DepositsTree::of_root(repo, &tree)
                .ok()
                .flatten()
                .and_then(|d| d.folder(id).ok().flatten());
            folder
                .and_then(|f| repo.find_tree(f).ok())
                .and_then(|f| f.get_path(std::path::Path::new(rest)).ok())
                .is_some_and(|entry| entry.id() == blob)
        })
    }

    /// The default branch's tip once this push has landed.
    fn default_tip_after(&self) -> Option<Oid> {
        match self
            .updates
            .iter()
            .find(|u| u.name == self.state.default_ref)
        {
            Some(u) if u.is_delete() => None,
            Some(u) => self
                .repo
                .find_object(u.new, None)
                .and_then(|o| o.peel_to_commit())
                .ok()
                .map(|c| c.id()),
            None => self.state.base,
        }
    }

    fn is_archive_admin(&self) -> bool {
        self.bootstrapping()
            || self.pusher.is_some_and(|u| {
                self.access()
                    .matches_any(u, &self.state.settings.policy.admins)
            })
    }

    fn in_list(&self, list: &[String]) -> bool {
        self.pusher
            .is_some_and(|u| self.access().matches_any(u, list))
    }

    fn admins_text(&self) -> String {
        let admins = &self.state.settings.policy.admins;
        if admins.is_empty() {
            "nobody is listed in policy.admins".to_string()
        } else {
            admins.join(", ")
        }
    }

    /// Who is pushing, and whether the archive knows them. `Some` refuses the push.
    pub fn check_identity(&self, variables: &[String]) -> Option<Problem> {
        let identity = &self.state.settings.identity;
        if self.state.base.is_none() && self.state.has_branches {
            // Guessing the rules from some other branch would let anyone loosen them.
            return Some(Problem::file(
                "push",
                format!(
                    "the default branch ({}) does not exist, so capsule cannot read this archive's rules and refuses every push. A server admin must point HEAD at the default branch: git symbolic-ref HEAD refs/heads/<branch>",
                    self.state.default_ref
                ),
            ));
        }
        if self.state.base.is_some() && !self.state.has_settings {
            return Some(Problem::file(
                "push",
                format!(
                    "the default branch ({}) has no capsule.toml, so this repository has no rules yet and capsule refuses every push (only a repository without any branch takes its rules from its first push). A server admin adds capsule.toml and access.toml on the server: commit them in a clone, then `git --git-dir=<this repository> fetch <clone> {branch}:{branch}` (a fetch runs no hooks)",
                    self.state.default_ref,
                    branch = self.state.default_ref.trim_start_matches("refs/heads/"),
                ),
            ));
        }
        match self.pusher {
            None if identity.allow_anonymous => None,
            None => Some(Problem::file(
                "push",
                format!(
                    "the server did not say who is pushing (none of {} is set), and this archive refuses anonymous pushes (identity.allow_anonymous = false in capsule.toml). Push through an account of the hosting server, or see docs/access.md for wiring identity",
                    variables.join(", ")
                ),
            )),
            Some(_) if self.bootstrapping() || identity.allow_anonymous => None,
            Some(user) => {
                let known = self.access().knows(user)
                    || self.state.settings.policy.admins.iter().any(|a| a == user);
                (!known).then(|| {
                    Problem::file(
                        "push",
                        denied(
                            user,
                            "push to this archive",
                            "only people listed in access.toml [people] may push",
                            &format!(
                                "Ask an archive admin ({}) to add `{user} = \"<e-mail>\"` to access.toml",
                                self.admins_text()
                            ),
                        ),
                    )
                })
            }
        }
    }

    /// Checks one ref update. `updates` is the whole push (record versions pushed
    /// together must follow each other).
    pub fn check_update(
        &self,
        update: &RefUpdate,
        updates: &[RefUpdate],
        registry: &mut SchemaRegistry,
    ) -> Result<Vec<Problem>, HookError> {
        if let Some(problem) = self.check_names_a_commit(update)? {
            return Ok(vec![problem]);
        }
        if let Some(branch) = update.name.strip_prefix("refs/heads/") {
            return self.check_branch(update, branch, registry);
        }
        if let Some(parsed) = parse_record_ref(&update.name) {
            return match parsed {
                Ok(record) => self.check_record(update, record, updates, registry),
                Err(why) => Ok(vec![Problem::file(&update.name, why)]),
            };
        }
        if update.name.starts_with("refs/tags/") {
            return Ok(self.check_other_tag(update).into_iter().collect());
        }
        if self.is_archive_admin() {
            return Ok(Vec::new());
        }
        Ok(vec![Problem::file(
            &update.name,
            denied(
                self.who(),
                &format!("update {}", update.name),
                "refs other than branches and tags are reserved for archive admins",
                &format!(
                    "Push a branch instead, or ask an archive admin ({})",
                    self.admins_text()
                ),
            ),
        )])
    }

    /// Every ref names a commit, directly or through tag objects: the hook judges
    /// commits, and a tag of a blob or of a tree would carry content nobody judged.
    fn check_names_a_commit(&self, update: &RefUpdate) -> Result<Option<Problem>, HookError> {
        if update.is_delete() {
            return Ok(None);
        }
        let mut object = self.repo.find_object(update.new, None)?;
        let mut tags = Vec::new();
        while let Some(tag) = object.as_tag() {
            tags.push(short(tag.id()));
            object = tag.target()?;
        }
        if object.kind() == Some(git2::ObjectType::Commit) {
            return Ok(None);
        }
        let kind = object.kind().map_or("object of unknown type", |k| k.str());
        let through = match tags.as_slice() {
            [] => String::new(),
            [tag] => format!(" (through tag object {tag})"),
            tags => format!(" (through tag objects {})", tags.join(", ")),
        };
        Ok(Some(Problem::file(
            &update.name,
            format!(
                "{} points at a {kind} {}{through}, not a commit: every ref in an archive names a commit, whose content the hook judges. Point it at a commit instead (`git tag -f <name> <commit>` for a tag) and push again",
                update.name,
                short(object.id()),
            ),
        )))
    }

    fn check_branch(
        &self,
        update: &RefUpdate,
        branch: &str,
        registry: &mut SchemaRegistry,
    ) -> Result<Vec<Problem>, HookError> {
        let repo = self.repo;
        let policy = &self.state.settings.policy;
        let protected = policy.is_protected(branch);
        if update.is_delete() {
            if protected {
                return Ok(vec![Problem::file(
                    &update.name,
                    denied(
                        self.who(),
                        &format!("delete branch {branch}"),
                        "it is protected (policy.protected_branches in capsule.toml), and a protected branch is never deleted",
                        "An archive admin can first remove it from policy.protected_branches",
                    ),
                )]);
            }
            if update.name == self.state.default_ref && !self.bootstrapping() {
                return Ok(vec![Problem::file(
                    &update.name,
                    denied(
                        self.who(),
                        &format!("delete branch {branch}"),
                        "it is the archive's default branch, which holds its rules and its accepted state",
                        "A server admin can make another branch the default (HEAD) first",
                    ),
                )]);
            }
            return self.check_branch_deletion(update, branch);
        }
        if let Some(problem) = self.check_default_branch_creation(update, branch) {
            return Ok(vec![problem]);
        }
        let new_commit = repo.find_object(update.new, None)?.peel_to_commit()?;
        let mut problems = Vec::new();
        if !update.is_create()
            && update.old != new_commit.id()
            && !repo.graph_descendant_of(new_commit.id(), update.old)?
            && protected
        {
            problems.push(Problem::file(
                &update.name,
                denied(
                    self.who(),
                    &format!("force-push branch {branch}"),
                    &format!("it is protected (policy.protected_branches), so its history is never rewritten ({} is not an ancestor of {})", short(update.old), short(new_commit.id())),
                    "Fetch, rebase or merge your work on top of it (`git pull --rebase`), and push again",
                ),
            ));
            return Ok(problems);
        }

        let fast_forward = update.is_create()
            || update.old == new_commit.id()
            || repo.graph_descendant_of(new_commit.id(), update.old)?;

        if update.name == self.state.default_ref {
            // The default branch's first-parent chain is the archive's history: every
            // state on it is a version someone wrote, and records are tagged on it. So
            // each commit this push adds to the chain is judged on its own change,
            // for the pusher. Judging only the net change let a forged commit in
            // through a merge whose tree equals the old tip, or a forge-then-revert pair.
            let chain = self.commits_added_to_default_chain(update, &new_commit)?;
            for (commit, parent) in chain {
                let commit = repo.find_commit(commit)?;
                let found = self.judge_change(
                    update,
                    branch,
                    parent,
                    self.state.base.or(parent),
                    &commit,
                    true,
                    registry,
                )?;
                let label = short(commit.id());
                problems.extend(found.into_iter().map(|p| p.in_commit(label.clone())));
            }
            // A rewrite (where the branch is not protected) also throws away what the
            // old tip held: that is judged as one change from the old tip.
            if !fast_forward {
                problems.extend(self.judge_change(
                    update,
                    branch,
                    Some(update.old),
                    Some(update.old),
                    &new_commit,
                    false,
                    registry,
                )?);
            }
            return Ok(problems);
        }

        // A work branch is judged on its net change: what its tip holds is what a merge
        // can later bring to the default branch, and every deposit there that differs
        // from the state before was judged for this pusher.
        let (base, rights) = if update.is_create() {
            let base = match self.state.base {
                Some(tip) => repo.merge_base(tip, new_commit.id()).ok(),
                None => None,
            };
            (base, self.state.base.or(base))
        } else {
            (Some(update.old), Some(update.old))
        };
        problems.extend(self.judge_change(
            update,
            branch,
            base,
            rights,
            &new_commit,
            fast_forward,
            registry,
        )?);
        Ok(problems)
    }

    /// The commits a push adds to the default branch's first-parent chain, oldest
    /// first, each with its first parent: the first-parent walk from the new tip down
    /// to where it meets the chain as it stood before the push (the old tip, or for a
    /// merge whose first parent is a branch that left the chain earlier, the commit
    /// where that branch left it). Cost: the commits walked, never the archive.
    fn commits_added_to_default_chain(
        &self,
        update: &RefUpdate,
        new: &git2::Commit<'_>,
    ) -> Result<Vec<(Oid, Option<Oid>)>, HookError> {
        let repo = self.repo;
        let old = (!update.is_create()).then_some(update.old);
        let mut chain = Vec::new();
        let mut at = Some(new.clone());
        while let Some(commit) = at {
            if Some(commit.id()) == old {
                break;
            }
            if let Some(old) = old {
                // Only a commit that existed before the push can be on the old chain.
                let existed = self
                    .before
                    .is_some_and(|b| b.find_commit(commit.id()).is_ok());
                if existed
                    && repo.graph_descendant_of(old, commit.id())?
                    && on_first_parent_chain(repo, old, commit.id())?
                {
                    break;
                }
            }
            let parent = commit.parent(0).ok();
            chain.push((commit.id(), parent.as_ref().map(git2::Commit::id)));
            at = parent;
        }
        chain.reverse();
        Ok(chain)
    }

    /// Whether `commit` was on a branch before the push: its content was judged when it
    /// arrived, by the rules of the push that brought it (a branch tip holds only
    /// deposits judged for their pushers; see `check_branch`). Tags do not count:
    /// members may tag any commit they like.
    fn on_a_branch_before_push(&self, commit: Oid) -> Result<bool, HookError> {
        let Some(before) = self.before else {
            return Ok(false);
        };
        if before.find_commit(commit).is_err() {
            return Ok(false);
        }
        for reference in before.references_glob("refs/heads/*")?.flatten() {
            let Some(tip) = reference.target() else {
                continue;
            };
            if tip == commit || before.graph_descendant_of(tip, commit)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Judges what `new_commit` changes against `base` for the pusher, with rights from
    /// `rights` (the state before the push) and, for a deposit absent there, `base`.
    #[allow(clippy::too_many_arguments)]
    fn judge_change(
        &self,
        update: &RefUpdate,
        branch: &str,
        base: Option<Oid>,
        rights: Option<Oid>,
        new_commit: &git2::Commit<'_>,
        fast_forward: bool,
        registry: &mut SchemaRegistry,
    ) -> Result<Vec<Problem>, HookError> {
        let repo = self.repo;
        let mut problems = Vec::new();
        let base_tree = base.map(|c| repo.find_commit(c)?.tree()).transpose()?;
        let changes = self
            .changes
            .of_trees(repo, base_tree.as_ref(), &new_commit.tree()?)?;
        // A merge's other parents that were on a branch before the push: a deposit the
        // merge takes exactly as one of them holds it was judged when it arrived there.
        let mut merged = Vec::new();
        for parent in new_commit.parent_ids().skip(1) {
            if self.on_a_branch_before_push(parent)? {
                merged.push(GitTree::at_commit(repo, parent)?);
            }
        }

        let new_source = GitTree::at_commit(repo, new_commit.id())?;
        let rights_source = rights.map(|c| GitTree::at_commit(repo, c)).transpose()?;
        let base_source = base.map(|c| GitTree::at_commit(repo, c)).transpose()?;

        let mut deposits: BTreeSet<String> = BTreeSet::new();
        let mut reviews: Vec<(String, String, Delta, Oid)> = Vec::new();
        let mut archive_files: Vec<String> = Vec::new();
        for change in changes.iter() {
            let path = String::from_utf8_lossy(&change.path).into_owned();
            match classify(&path) {
                PathKind::DepositJson { id } | PathKind::DepositFile { id, .. } => {
                    deposits.insert(id);
                }
                PathKind::Review { id, file } => {
                    reviews.push((id, file, change.status, change.id));
                }
                // Layout problems are reported by validation.
                PathKind::Misplaced(_) => {}
                _ => archive_files.push(path),
            }
        }

        // The rules themselves never disappear from the default branch: without
        // capsule.toml the archive would be open to everyone again.
        if update.name == self.state.default_ref && !self.bootstrapping() {
            for change in changes.iter().filter(|c| c.status == Delta::Deleted) {
                let path = String::from_utf8_lossy(&change.path);
                if path == "capsule.toml" || path == "access.toml" {
                    problems.push(Problem::file(
                        path.as_ref(),
                        format!("{path} cannot be deleted from the default branch {branch}: it holds the archive's rules. Change it instead"),
                    ));
                }
            }
        }

        if !archive_files.is_empty() && !self.is_archive_admin() {
            for path in archive_files {
                problems.push(Problem::file(
                    &path,
                    denied(
                        self.who(),
                        &format!("change {path} on {branch}"),
                        "only archive admins (policy.admins in capsule.toml) may change schemas, templates, capsule.toml, access.toml and other files outside deposits/",
                        &format!("Ask an archive admin ({}) to make the change, or to add you to policy.admins", self.admins_text()),
                    ),
                ));
            }
        }

        let before = |id: &str| -> Result<Option<Value>, HookError> {
            // Through the deposit's folder of that commit's layout: a flat archive's
            // deposits keep their rights across `capsule migrate`.
            for source in rights_source.iter().chain(base_source.iter()) {
                if let Some(value) = self.deposit_at(source, id)? {
                    return Ok(Some(value));
                }
            }
            Ok(None)
        };
        let after =
            |id: &str| -> Result<Option<Value>, HookError> { self.deposit_at(&new_source, id) };

        // A deposit brought to exactly its state on the default branch (merging the
        // default branch into a work branch) takes nothing that was not accepted there.
        let default_source = self
            .state
            .base
            .map(|c| GitTree::at_commit(repo, c))
            .transpose()?;
        let folder_id = |source: &GitTree<'_>, id: &str| -> Option<Oid> {
            source.folder_id(&crate::deposit::folder(id)).ok().flatten()
        };
        let as_on_default = |id: &str| -> bool {
            let now = folder_id(&new_source, id);
            default_source.iter().chain(merged.iter()).any(|d| {
                let there = folder_id(d, id);
                there.is_some() && there == now
            })
        };

        // A deposit and its reviews may both change in one push: parse each side once.
        let mut parsed: HashMap<String, Rc<BeforeAfter>> = HashMap::new();
        let mut states = |id: &str| -> Result<Rc<BeforeAfter>, HookError> {
            if let Some(found) = parsed.get(id) {
                return Ok(found.clone());
            }
            let both = Rc::new((before(id)?, after(id)?));
            parsed.insert(id.to_string(), both.clone());
            Ok(both)
        };

        // Every id in the new tree and every published id, by lower case: built once,
        // and only when the push creates a deposit.
        let mut ids_by_case: Option<HashMap<String, BTreeSet<String>>> = None;
        for id in &deposits {
            // Only when the branch moves forward: a force-push back to the default
            // branch's state throws away someone's work and is judged like any change.
            if fast_forward && as_on_default(id) {
                continue;
            }
            let both = states(id)?;
            let (old, new) = &*both;
            if old.is_none() && new.is_some() {
                let known = match &mut ids_by_case {
                    Some(known) => known,
                    None => ids_by_case.insert(self.ids_by_case(&new_source)?),
                };
                let twins: Vec<&String> = known
                    .get(&id.to_lowercase())
                    .into_iter()
                    .flatten()
                    .filter(|other| *other != id)
                    .collect();
                if let Some(other) = twins.first() {
                    problems.push(Problem::file(
                        crate::deposit::metadata_path(id),
                        format!("the deposit id `{id}` differs from the existing id `{other}` only in case: ids are unique ignoring case (they name folders, URLs and records that case-insensitive systems would mix up). Choose another id"),
                    ));
                    continue;
                }
                if let Some(problem) = self.judge_recreation(id, branch)? {
                    problems.push(problem);
                    continue;
                }
            }
            if let Some(problem) = self.judge_deposit(
                id,
                branch,
                old.as_ref(),
                new.as_ref(),
                registry,
                &new_source,
            )? {
                problems.push(problem);
            }
        }

        // A withdrawal (TOMBSTONE.json) is written by the deposit's admins and never
        // changed or removed afterwards: the id stays reserved.
        use crate::preserve::tombstone::{self, TOMBSTONE};
        for id in &deposits {
            let old = match &base_source {
                Some(source) => source.read_deposit_file(id, TOMBSTONE)?,
                None => None,
            };
            let new = new_source.read_deposit_file(id, TOMBSTONE)?;
            if old.is_none() && new.is_none() {
                continue;
            }
            let level = self.level_on(before(id)?.as_ref());
            if let Err(why) =
                tombstone::judge_change(old.as_deref(), new.as_deref(), level, self.who())
            {
                problems.push(Problem::file(crate::deposit::file_path(id, TOMBSTONE), why));
            }
        }

        for (id, file, status, blob) in reviews {
            // Reviews that are already in the repository were checked when they arrived
            // (merging someone's review into the default branch is not forging it).
            if status == Delta::Added
                && (self.on_a_branch_before(&id, &format!("reviews/{file}"), blob)
                    || (fast_forward && as_on_default(&id)))
            {
                continue;
            }
            let both = states(&id)?;
            let (old, new) = &*both;
            // Deleting a whole deposit deletes its reviews with it; that needs
            // deposit-admin, which judge_deposit checks.
            if status == Delta::Deleted && new.is_none() && old.is_some() && deposits.contains(&id)
            {
                continue;
            }
            problems.extend(self.judge_review(
                &id,
                &file,
                status,
                blob,
                old.as_ref().or(new.as_ref()),
                new.as_ref(),
                registry,
                &new_source,
            )?);
        }
        Ok(problems)
    }

    /// Deleting an unprotected branch throws away its changes to deposits: that needs
    /// the right to delete them (otherwise anyone could remove someone's work branch
    /// and push it again with themselves as the owner).
    fn check_branch_deletion(
        &self,
        update: &RefUpdate,
        branch: &str,
    ) -> Result<Vec<Problem>, HookError> {
        if self.is_archive_admin() {
            return Ok(Vec::new());
        }
        let repo = self.repo;
        let Ok(old) = repo
            .find_object(update.old, None)
            .and_then(|o| o.peel_to_commit())
        else {
            return Ok(Vec::new());
        };
        let base = self
            .state
            .base
            .and_then(|tip| repo.merge_base(tip, old.id()).ok());
        let base_tree = base.map(|c| repo.find_commit(c)?.tree()).transpose()?;
        let changes = self
            .changes
            .of_trees(repo, base_tree.as_ref(), &old.tree()?)?;
        let old_source = GitTree::at_commit(repo, old.id())?;
        let mut ids = BTreeSet::new();
        for change in changes.iter() {
            if let PathKind::DepositJson { id }
            | PathKind::DepositFile { id, .. }
            | PathKind::Review { id, .. } = classify(&String::from_utf8_lossy(&change.path))
            {
                ids.insert(id);
            }
        }
        let mut problems = Vec::new();
        for id in ids {
            let deposit = old_source
                .read(&crate::deposit::metadata_path(&id))?
                .map(|b| crate::json::from_bytes(&b).unwrap_or(Value::Null));
            if let Some(deposit) = deposit
                .as_ref()
                .filter(|d| self.level_on(Some(d)) < Level::Admin)
            {
                let holders = DepositAccess::of(deposit).holders_in(self.access(), Level::Admin);
                problems.push(Problem::file(
                    &update.name,
                    denied(
                        self.who(),
                        &format!("delete branch {branch}"),
                        &format!("it holds changes to deposit {id} that are not on the default branch, and discarding them needs deposit-admin on {id}"),
                        &format!(
                            "Ask one of its admins ({}) to delete the branch, or merge its work first",
                            if holders.is_empty() { self.admins_text() } else { holders.join(", ") }
                        ),
                    ),
                ));
            }
        }
        Ok(problems)
    }

    /// The schema config (`config` of the schema a deposit names), Null if unknown.
    fn schema_config(
        &self,
        deposit: &Value,
        registry: &mut SchemaRegistry,
        source: &GitTree<'_>,
    ) -> Value {
        let Some(sref) = deposit
            .get("$schema")
            .and_then(Value::as_str)
            .and_then(parse_schema_ref)
        else {
            return Value::Null;
        };
        match registry.load(source, &sref) {
            Ok(Some((_, schema))) => schema.config.clone(),
            _ => Value::Null,
        }
    }

    fn config_grants(&self, config: &Value, right: &str) -> bool {
        let list: Vec<String> = config
            .pointer(&format!("/permissions/{right}"))
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        self.in_list(&list)
    }

    fn level_on(&self, deposit: Option<&Value>) -> Level {
        if self.is_archive_admin() {
            return Level::Admin;
        }
        match (self.pusher, deposit) {
            (Some(user), Some(d)) => DepositAccess::of(d).level(self.access(), user),
            _ => Level::None,
        }
    }

    /// Deposit `id` as `source` holds it, parsed once per push (by blob). An unreadable
    /// deposit grants nothing (it reads as null); validation reports why.
    fn deposit_at(&self, source: &GitTree<'_>, id: &str) -> Result<Option<Value>, HookError> {
        let Some(blob) = source.deposit_file_id(id, "deposit.json")? else {
            return Ok(None);
        };
        if let Some(found) = self.parsed.borrow().get(&blob) {
            return Ok(Some(Value::clone(found)));
        }
        let value =
            crate::json::from_bytes(self.repo.find_blob(blob)?.content()).unwrap_or(Value::Null);
        self.parsed
            .borrow_mut()
            .insert(blob, Rc::new(value.clone()));
        Ok(Some(value))
    }

    /// Every deposit id of `source` and every id that has a record, keyed by lower
    /// case. Ids that differ only in case land in different shards, so this reads every
    /// shard's tree: a cost paid only by pushes that create a deposit.
    fn ids_by_case(
        &self,
        source: &GitTree<'_>,
    ) -> Result<HashMap<String, BTreeSet<String>>, HookError> {
        let mut known: HashMap<String, BTreeSet<String>> = HashMap::new();
        for id in crate::archive::deposit_ids(source)? {
            known.entry(id.to_lowercase()).or_default().insert(id);
        }
        for reference in self
            .repo
            .references_glob(&format!("{}*", crate::record::RECORD_TAG_PREFIX))?
            .flatten()
        {
            if let Some(Ok(record)) = reference.name().and_then(parse_record_ref) {
                known
                    .entry(record.id.to_lowercase())
                    .or_default()
                    .insert(record.id.to_string());
            }
        }
        Ok(known)
    }

    /// An id that was ever published stays bound to its record: creating a deposit
    /// under it again (after the first was deleted) needs deposit-admin on the deposit
    /// as its last published version had it. Otherwise anyone could delete-and-recreate
    /// their way into publishing the next version of someone else's record.
    fn judge_recreation(&self, id: &str, branch: &str) -> Result<Option<Problem>, HookError> {
        let Some(last) = versions_of(self.repo, id)?.pop() else {
            return Ok(None);
        };
        let published = GitTree::at_commit(self.repo, last.commit)?
            .read_deposit_file(id, "deposit.json")?
            .map(|b| crate::json::from_bytes(&b).unwrap_or(Value::Null));
        if self.level_on(published.as_ref()) >= Level::Admin {
            return Ok(None);
        }
        let holders = published
            .as_ref()
            .map(|d| DepositAccess::of(d).holders_in(self.access(), Level::Admin))
            .unwrap_or_default();
        Ok(Some(Problem::file(
            crate::deposit::metadata_path(id),
            denied(
                self.who(),
                &format!("create deposit {id} on {branch}"),
                &format!("the id {id} was published (records/{id}/v{}), and a published id stays bound to its record: re-creating it needs deposit-admin as of that version", last.version),
                &format!(
                    "Choose another id, or ask one of the record's admins ({}) to re-create it",
                    if holders.is_empty() { self.admins_text() } else { holders.join(", ") }
                ),
            ),
        )))
    }

    fn judge_deposit(
        &self,
        id: &str,
        branch: &str,
        old: Option<&Value>,
        new: Option<&Value>,
        registry: &mut SchemaRegistry,
        new_source: &GitTree<'_>,
    ) -> Result<Option<Problem>, HookError> {
        let file = crate::deposit::metadata_path(id);
        let who = self.who();
        let Some(old) = old else {
            // Creating a deposit.
            let Some(new) = new else { return Ok(None) };
            if self.level_on(Some(new)) == Level::Admin
                || self.in_list(&self.state.settings.policy.creators)
                || self.config_grants(&self.schema_config(new, registry, new_source), "create")
            {
                return Ok(None);
            }
            return Ok(Some(Problem::file(
                file,
                denied(
                    who,
                    &format!("create deposit {id} on {branch}"),
                    "a new deposit must name its creator among its owners (_deposit.owners) or in _access.deposit-admin, unless policy.creators or the schema's config.permissions.create lets the creator's group create deposits for others",
                    &format!("Add \"{who}\" to _deposit.owners (capsule new does this), or ask an archive admin ({}) to add you to policy.creators", self.admins_text()),
                ),
            )));
        };
        let level = self.level_on(Some(old));
        let holders = || {
            let h = DepositAccess::of(old).holders_in(self.access(), Level::Admin);
            if h.is_empty() {
                format!("an archive admin ({})", self.admins_text())
            } else {
                h.join(", ")
            }
        };
        let Some(new) = new else {
            if level >= Level::Admin {
                return Ok(None);
            }
            return Ok(Some(Problem::file(
                file,
                denied(
                    who,
                    &format!("delete deposit {id} on {branch}"),
                    "deleting a deposit needs deposit-admin in its _access (owners hold it)",
                    &format!("Ask one of its admins ({}) to delete it or to add you to _access.deposit-admin", holders()),
                ),
            )));
        };
        let system_changed = ["_access", "_deposit"]
            .iter()
            .any(|key| old.get(key) != new.get(key));
        if system_changed && level < Level::Admin {
            return Ok(Some(Problem::file(
                file,
                denied(
                    who,
                    &format!("change _access or _deposit of {id} on {branch}"),
                    &format!("who may read, change and own a deposit is decided by its admins: this needs deposit-admin, and {who} holds {}", describe(level)),
                    &format!("Ask one of its admins ({}) to make the change", holders()),
                ),
            )));
        }
        if level >= Level::Update {
            return Ok(None);
        }
        Ok(Some(Problem::file(
            file,
            denied(
                who,
                &format!("change deposit {id} on {branch}"),
                &format!("changing a deposit needs deposit-update or deposit-admin in its _access, and {who} holds {}", describe(level)),
                &format!(
                    "Ask one of its admins ({}) to add \"{who}\" to _access.deposit-update.users",
                    holders()
                ),
            ),
        )))
    }

    /// Creating the branch capsule.toml names as `archive.default_branch`, while HEAD
    /// still names another one, moves the archive's rules to it: that needs the rights
    /// it will carry (archive admin, as configured now), and the branch must hold the
    /// rules it takes over.
    fn check_default_branch_creation(&self, update: &RefUpdate, branch: &str) -> Option<Problem> {
        let configured = &self.state.settings.archive.default_branch;
        if !update.is_create() || branch != configured || self.bootstrapping() {
            return None;
        }
        let head = self.state.default_ref.trim_start_matches("refs/heads/");
        if !self.is_archive_admin() {
            return Some(Problem::file(
                &update.name,
                denied(
                    self.who(),
                    &format!("create branch {branch}"),
                    &format!("capsule.toml names {branch} as the default branch (archive.default_branch), so whoever creates it sets the archive's rules; that needs archive admin rights (policy.admins, read from {head})"),
                    &format!("Ask an archive admin ({}) to create it from {head} (`git push origin {head}:{branch}`), and a server admin to point HEAD at it (`git symbolic-ref HEAD refs/heads/{branch}`)", self.admins_text()),
                ),
            ));
        }
        let holds_rules = self
            .repo
            .find_object(update.new, None)
            .and_then(|o| o.peel_to_tree())
            .is_ok_and(|tree| tree.get_path(std::path::Path::new("capsule.toml")).is_ok());
        (!holds_rules).then(|| {
            Problem::file(
                &update.name,
                format!("branch {branch} would become the archive's default branch (archive.default_branch in capsule.toml) but has no capsule.toml: it would leave the archive without rules. Create it from {head} (`git push origin {head}:{branch}`)"),
            )
        })
    }
}

/// Whether `commit` is on the first-parent chain of `tip`. Walks down from `tip` and
/// stops as soon as `commit` is no longer an ancestor, so the cost is the chain's
/// commits newer than `commit`, not the history.
pub(crate) fn on_first_parent_chain(
    repo: &Repository,
    tip: Oid,
    commit: Oid,
) -> Result<bool, git2::Error> {
    let mut at = Some(repo.find_commit(tip)?);
    while let Some(c) = at {
        if c.id() == commit {
            return Ok(true);
        }
        if !repo.graph_descendant_of(c.id(), commit)? {
            return Ok(false);
        }
        at = c.parent(0).ok();
    }
    Ok(false)
}

fn describe(level: Level) -> &'static str {
    match level {
        Level::None => "no access",
        Level::Read => "only deposit-read",
        Level::Update => "deposit-update",
        Level::Admin => "deposit-admin",
    }
}
