//! The review rules: who may review a deposit, comment on a review or resolve one.

use git2::{Delta, Oid};
use serde_json::Value;

use super::super::HookError;
use super::{denied, Judge};
use crate::access::Level;
use crate::archive::GitTree;
use crate::problem::Problem;
use crate::record::{Review, ReviewKind};
use crate::schema::SchemaRegistry;

impl Judge<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn judge_review(
        &self,
        id: &str,
        file: &str,
        status: Delta,
        blob: Oid,
        rights_deposit: Option<&Value>,
        deposit: Option<&Value>,
        registry: &mut SchemaRegistry,
        new_source: &GitTree<'_>,
    ) -> Result<Vec<Problem>, HookError> {
        let path = crate::deposit::file_path(id, &format!("reviews/{file}"));
        let who = self.who();
        if status != Delta::Added {
            let what = if status == Delta::Deleted {
                "delete"
            } else {
                "edit"
            };
            return Ok(vec![Problem::file(
                &path,
                denied(
                    who,
                    &format!("{what} the review file {file}"),
                    "reviews are append-only: a review, comment or resolution is never edited or deleted once it landed",
                    "Add a comment (`capsule review ID --comment REVIEW -m TEXT`) or resolve it (`capsule review ID --resolve REVIEW`) instead",
                ),
            )]);
        }
        let Some(deposit) = deposit else {
            return Ok(vec![Problem::file(
                &path,
                format!("a review of deposit {id}, which has no deposit.json: reviews belong to an existing deposit"),
            )]);
        };
        let bytes = self.repo.find_blob(blob)?.content().to_vec();
        let Ok(review) = Review::parse(&path, &bytes) else {
            // The commit that added it reports what is wrong with it.
            return Ok(Vec::new());
        };
        let config = self.schema_config(deposit, registry, new_source);
        if config.get("reviewable").and_then(Value::as_bool) != Some(true) {
            let schema = deposit
                .get("$schema")
                .and_then(Value::as_str)
                .unwrap_or("?");
            return Ok(vec![Problem::file(
                &path,
                format!("deposit {id} cannot be reviewed: its schema {schema} does not set config.reviewable = true"),
            )]);
        }
        let mut problems = Vec::new();
        if self.pusher != Some(review.author.as_str()) {
            problems.push(Problem::file(
                &path,
                format!(
                    "the review names `{}` as its author, but {who} is pushing it: a review is signed by the person who pushes it (capsule review fills this in)",
                    review.author
                ),
            ));
        }
        let level = self.level_on(rights_deposit);
        let may_review = level >= Level::Admin
            || self.in_list(&self.state.settings.policy.reviewers)
            || self.config_grants(&config, "review");
        let target = match review.kind {
            ReviewKind::Review => None,
            _ => {
                let name = review.review.clone().unwrap_or_default();
                let target_path = crate::deposit::file_path(id, &format!("reviews/{name}.json"));
                match new_source.read(&target_path)? {
                    Some(bytes) => Review::parse(&target_path, &bytes).ok(),
                    None => None,
                }
                .filter(|r| r.kind == ReviewKind::Review)
                .or_else(|| {
                    problems.push(Problem::file(
                        &path,
                        format!("`review` names `{name}`, which is not a review of deposit {id}: use the file name of a review without .json"),
                    ));
                    None
                })
            }
        };
        let allowed = match review.kind {
            ReviewKind::Review => may_review,
            ReviewKind::Comment => may_review || level >= Level::Update,
            ReviewKind::Resolution => {
                level >= Level::Update
                    || target
                        .as_ref()
                        .is_some_and(|t| Some(t.author.as_str()) == self.pusher)
            }
        };
        if !allowed {
            let (what, rule) = match review.kind {
                ReviewKind::Review => ("review", "reviewing needs deposit-admin on the deposit, or membership of a group named in policy.reviewers (capsule.toml) or the schema's config.permissions.review"),
                ReviewKind::Comment => ("comment on a review of", "commenting needs the review right or deposit-update on the deposit"),
                ReviewKind::Resolution => ("resolve a review of", "a review is resolved by its author or by someone with deposit-update on the deposit"),
            };
            problems.push(Problem::file(
                &path,
                denied(
                    who,
                    &format!("{what} deposit {id}"),
                    rule,
                    &format!("Ask an archive admin ({}) to add you to policy.reviewers, or the deposit's admins to grant you access", self.admins_text()),
                ),
            ));
        }
        Ok(problems)
    }
}
