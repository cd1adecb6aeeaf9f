//! CAP's `x-validate-*` keywords that can be checked offline, as validator keywords.
//!
//! CAP ran these against CMS services (DAS, the trigger database). capsule never goes
//! to the network, so it checks what can be known from the value alone: the form of a
//! DAS dataset path and of trigger names. A value CAP accepted exists in DAS, so it has
//! that form: these checks never refuse what CAP accepted. What needs the service is
//! said once per schema by `capsule schema check` (see `engine::notes`).
//!
//! `x-validate-unique-cadi` needs the whole archive and lives in `validate`.

use jsonschema::paths::Location;
use jsonschema::{Keyword, ValidationError, ValidationOptions};
use serde_json::{Map, Value};

/// Registers the offline `x-` keywords with a validator's options.
pub fn register(options: ValidationOptions) -> ValidationOptions {
    options
        .with_keyword(
            "x-validate-das-path",
            |_: &Map<String, Value>, _: &Value, _: Location| {
                Ok(Box::new(DasPath) as Box<dyn for<'i> Keyword<'i>>)
            },
        )
        .with_keyword(
            "x-validate-cms-trigger",
            |_: &Map<String, Value>, _: &Value, _: Location| {
                Ok(Box::new(CmsTriggers) as Box<dyn for<'i> Keyword<'i>>)
            },
        )
}

/// `/PRIMARY_DATASET/PROCESSED_DATASET/DATA_TIER`, DAS's dataset names.
pub fn is_das_path(text: &str) -> bool {
    let Some(rest) = text.strip_prefix('/') else {
        return false;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.*#".contains(c))
        })
}

/// An HLT path name such as `HLT_IsoMu24_v4` (a trailing `*` stands for all versions).
pub fn is_trigger_name(text: &str) -> bool {
    let body = text.strip_suffix('*').unwrap_or(text);
    !body.is_empty() && body.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

struct DasPath;

impl<'i> Keyword<'i> for DasPath {
    fn validate(&self, instance: &'i Value) -> Result<(), ValidationError<'i>> {
        if Keyword::is_valid(self, instance) {
            return Ok(());
        }
        Err(ValidationError::custom(format!(
            "{instance} is not a DAS dataset path: write /PRIMARY_DATASET/PROCESSED_DATASET/DATA_TIER, such as /DoubleMuon/Run2016B-17Jul2018_ver2-v1/MINIAOD"
        )))
    }

    fn is_valid(&self, instance: &'i Value) -> bool {
        match instance.as_str() {
            Some(text) if !text.is_empty() => is_das_path(text),
            _ => true,
        }
    }
}

/// On a dataset object: once it has a `path` and a `year`, every `triggers[].trigger`
/// must be a trigger name (CAP looked them up for that dataset and year).
struct CmsTriggers;

impl CmsTriggers {
    fn bad(instance: &Value) -> Option<(usize, &str)> {
        let has = |key: &str| instance.get(key).is_some_and(|v| !v.is_null());
        if !(has("path") && has("year")) {
            return None;
        }
        instance
            .get("triggers")?
            .as_array()?
            .iter()
            .enumerate()
            .find_map(|(i, t)| {
                let name = t.get("trigger")?.as_str()?;
                (!name.is_empty() && !is_trigger_name(name)).then_some((i, name))
            })
    }
}

impl<'i> Keyword<'i> for CmsTriggers {
    fn validate(&self, instance: &'i Value) -> Result<(), ValidationError<'i>> {
        match CmsTriggers::bad(instance) {
            None => Ok(()),
            Some((i, name)) => Err(ValidationError::custom(format!(
                "trigger #{} {name:?} is not a trigger name: write the HLT path, such as HLT_IsoMu24_v4",
                i + 1
            ))),
        }
    }

    fn is_valid(&self, instance: &'i Value) -> bool {
        CmsTriggers::bad(instance).is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn das_paths_and_trigger_names_have_their_forms() {
        assert!(is_das_path(
            "/DoubleMuon/Run2016B-17Jul2018_ver2-v1/MINIAOD"
        ));
        assert!(!is_das_path("DoubleMuon/Run2016B/MINIAOD"));
        assert!(!is_das_path("/DoubleMuon/MINIAOD"));
        assert!(!is_das_path("/a b/c/d"));
        assert!(is_trigger_name("HLT_IsoMu24_v4"));
        assert!(is_trigger_name("HLT_Mu17_*"));
        assert!(!is_trigger_name("HLT Mu17"));
    }
}
