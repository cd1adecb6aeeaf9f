//! DOIs through DataCite's REST API, registered once and remembered in git.
//!
//! capsule.toml names the account:
//!
//! ```toml
//! [datacite]
//! prefix = "10.5072"
//! repository_id = "CERN.CAPSULE"
//! url = "https://api.test.datacite.org"
//! # password_env = "CAPSULE_DATACITE_PASSWORD"   (the default)
//! ```
//!
//! The password comes from the environment only, never from a file git tracks.
//! DOI names are fixed by the record: `<prefix>/capsule.<id>` for the concept and
//! `<prefix>/capsule.<id>.v<N>` for versions, so a retry after a crash asks for the
//! same names. Each DOI is created as a draft (`POST /dois`), then made findable with
//! its metadata (`PUT /dois/<doi>`, `event: publish`). After every step that DataCite
//! confirmed, `identifiers.json` beside the deposit is rewritten, and the CLI commits
//! it: a second run finds everything registered and sends nothing. A draft left by an
//! interrupted run (`422` "already been taken") is taken over, not created again.
//!
//! DOIs follow the record's life, as InvenioRDM does with DataCite:
//! - a new version: its DOI is registered, the concept DOI's metadata and URL move to
//!   it, and the earlier versions' metadata is updated (`IsPreviousVersionOf`);
//! - withdrawal: every findable DOI of the record is hidden (`event: hide`, which
//!   moves it to DataCite's `registered` state: it still resolves, but is no longer
//!   listed or searchable), points at the record's landing page, which keeps the
//!   tombstone, and carries only what that page shows, with a `Withdrawn` date and the
//!   reason. A DOI is never deleted: it was promised to resolve.
//!
//! `identifiers.json` keeps, per DOI, its state and the SHA-256 of the metadata last
//! sent; a DOI is updated (`PUT`) only when either would change.

use std::collections::BTreeMap;
use std::time::Duration;

use git2::{Oid, Repository};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::bag::sha256_hex;
use super::datacite::{datacite_json, Target};
use super::metadata::Record;
use super::tombstone::Tombstone;
use crate::archive::GitTree;

/// The file beside deposit.json that records registered identifiers.
pub const IDENTIFIERS: &str = "identifiers.json";

/// `[datacite]` of capsule.toml.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DataciteSettings {
    /// The DOI prefix of the repository account, e.g. `10.5072`.
    pub prefix: String,
    /// The repository account (DataCite's client id), the user name of the API.
    pub repository_id: String,
    /// The API's base URL: `https://api.datacite.org`, or the test system.
    pub url: String,
    /// The environment variable holding the account's password.
    #[serde(default = "default_password_env")]
    pub password_env: String,
    /// Seconds to wait for each answer.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_password_env() -> String {
    "CAPSULE_DATACITE_PASSWORD".into()
}

fn default_timeout() -> u64 {
    30
}

/// One registered DOI.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    pub doi: String,
    /// DataCite's state: `draft` (does not resolve), `findable`, or `registered`
    /// (hidden after a withdrawal: resolves, is not listed).
    pub state: String,
    /// For the concept DOI: the version whose metadata it carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// SHA-256 of the metadata (attributes) DataCite last accepted for this DOI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_sha256: Option<String>,
}

impl Registration {
    /// Whether the DOI resolves: findable, or registered (hidden, still resolving).
    fn resolves(&self) -> bool {
        self.state == "findable" || self.state == "registered"
    }
}

/// What `identifiers.json` holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Registered {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concept: Option<Registration>,
    /// By version number.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub versions: BTreeMap<u32, Registration>,
}

impl Registered {
    /// The concept DOI, once it resolves.
    pub fn concept_doi(&self) -> Option<&str> {
        self.concept
            .as_ref()
            .filter(|r| r.resolves())
            .map(|r| r.doi.as_str())
    }

    /// The DOI of version `n`, once it resolves.
    pub fn version_doi(&self, n: u32) -> Option<&str> {
        self.versions
            .get(&n)
            .filter(|r| r.resolves())
            .map(|r| r.doi.as_str())
    }

    pub fn parse(bytes: &[u8]) -> Result<Registered, String> {
        let value = crate::json::from_bytes(bytes)?;
        serde_json::from_value(value).map_err(|e| format!("{IDENTIFIERS}: {e}"))
    }

    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("serialises");
        text.push('\n');
        text
    }

    /// Every DOI as it will be once registered: what the metadata of each DOI names
    /// (its concept and neighbours), before they exist.
    pub fn planned(settings: &DataciteSettings, id: &str, versions: &[u32]) -> Registered {
        let (concept, version) = doi_names(&settings.prefix, id);
        Registered {
            concept: Some(Registration {
                doi: concept,
                state: "findable".into(),
                version: versions.last().copied(),
                metadata_sha256: None,
            }),
            versions: versions
                .iter()
                .map(|n| {
                    (
                        *n,
                        Registration {
                            doi: version(*n),
                            state: "findable".into(),
                            version: None,
                            metadata_sha256: None,
                        },
                    )
                })
                .collect(),
        }
    }
}

/// The concept DOI of `id` and a function naming its version DOIs. DOI names are
/// case-insensitive; DataCite stores them upper-case, capsule writes them lower-case.
pub fn doi_names(prefix: &str, id: &str) -> (String, impl Fn(u32) -> String) {
    let suffix = format!("capsule.{}", id.to_ascii_lowercase());
    let concept = format!("{prefix}/{suffix}");
    let base = concept.clone();
    (concept, move |n: u32| format!("{base}.v{n}"))
}

/// `identifiers.json` of `id` at `commit` (empty when there is none).
pub fn registered_at(repo: &Repository, commit: Oid, id: &str) -> Result<Registered, String> {
    let tree = GitTree::at_commit(repo, commit).map_err(|e| e.to_string())?;
    match tree
        .read_deposit_file(id, IDENTIFIERS)
        .map_err(|e| e.to_string())?
    {
        Some(bytes) => Registered::parse(&bytes),
        None => Ok(Registered::default()),
    }
}

/// Why DataCite did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum DoiError {
    #[error("the DataCite password is not set: put it in the environment variable {0} (it is never read from a file)")]
    NoPassword(String),
    #[error("DataCite refused the credentials of repository {0} (401): check {1} and [datacite] repository_id")]
    Unauthorized(String, String),
    #[error("DataCite refused {doi} ({status}): {errors}")]
    Rejected {
        doi: String,
        status: u16,
        errors: String,
    },
    #[error("DataCite did not answer within {0} s ([datacite] timeout_secs); nothing more was sent, and what was registered before is recorded: run the command again")]
    Timeout(u64),
    #[error("cannot reach DataCite at {0}: {1}")]
    Transport(String, String),
}

/// A client for one repository account.
pub struct Client {
    settings: DataciteSettings,
    authorization: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client with the password from the environment variable the settings name.
    pub fn from_env(settings: &DataciteSettings) -> Result<Client, DoiError> {
        let password = std::env::var(&settings.password_env)
            .ok()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| DoiError::NoPassword(settings.password_env.clone()))?;
        Ok(Client::new(settings, &password))
    }

    pub fn new(settings: &DataciteSettings, password: &str) -> Client {
        use base64::Engine;
        let credentials = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{password}", settings.repository_id));
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(settings.timeout_secs.max(1))))
            .http_status_as_error(false)
            .build()
            .into();
        Client {
            settings: settings.clone(),
            authorization: format!("Basic {credentials}"),
            agent,
        }
    }

    /// Sends one JSON:API request; returns the status and the body.
    fn send(&self, method: &str, path: &str, body: &Value) -> Result<(u16, String), DoiError> {
        let url = format!("{}{path}", self.settings.url.trim_end_matches('/'));
        let text = body.to_string();
        let request = match method {
            "POST" => self.agent.post(&url),
            _ => self.agent.put(&url),
        }
        .header("Authorization", &self.authorization)
        .header("Content-Type", "application/vnd.api+json")
        .header("Accept", "application/vnd.api+json");
        let mut response = request.send(text.as_bytes()).map_err(|e| match e {
            ureq::Error::Timeout(_) => DoiError::Timeout(self.settings.timeout_secs),
            other => DoiError::Transport(url.clone(), other.to_string()),
        })?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(4 << 20)
            .read_to_string()
            .map_err(|e| match e {
                ureq::Error::Timeout(_) => DoiError::Timeout(self.settings.timeout_secs),
                other => DoiError::Transport(url.clone(), other.to_string()),
            })?;
        if status == 401 || status == 403 {
            return Err(DoiError::Unauthorized(
                self.settings.repository_id.clone(),
                self.settings.password_env.clone(),
            ));
        }
        Ok((status, body))
    }

    /// Creates `doi` as a draft. `Ok(false)` when it already exists (an earlier run).
    fn create_draft(&self, doi: &str, url: &str) -> Result<bool, DoiError> {
        let body = json!({"data": {"type": "dois", "attributes": {"doi": doi, "url": url}}});
        match self.send("POST", "/dois", &body)? {
            (201 | 200, _) => Ok(true),
            (422, text) if text.contains("already been taken") => Ok(false),
            (status, text) => Err(rejected(doi, status, &text)),
        }
    }

    /// Gives `doi` its metadata, with `event` (`publish`, `hide`) when its state
    /// changes.
    fn update(
        &self,
        doi: &str,
        mut attributes: Value,
        event: Option<&str>,
    ) -> Result<(), DoiError> {
        attributes["doi"] = doi.into();
        if let Some(event) = event {
            attributes["event"] = event.into();
        }
        let body = json!({"data": {"id": doi, "type": "dois", "attributes": attributes}});
        match self.send("PUT", &format!("/dois/{doi}"), &body)? {
            (200 | 201, _) => Ok(()),
            (status, text) => Err(rejected(doi, status, &text)),
        }
    }
}

/// The errors of a JSON:API error document, as one line.
fn rejected(doi: &str, status: u16, text: &str) -> DoiError {
    let errors = serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v.get("errors").and_then(Value::as_array).cloned())
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    let title = e.get("title").and_then(Value::as_str).unwrap_or("error");
                    match e.get("source").and_then(Value::as_str) {
                        Some(source) => format!("{source}: {title}"),
                        None => title.to_string(),
                    }
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_else(|| text.chars().take(200).collect());
    DoiError::Rejected {
        doi: doi.to_string(),
        status,
        errors,
    }
}

/// One thing registration did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub doi: String,
    /// `draft created`, `draft taken over`, `findable`, `metadata updated` or
    /// `hidden (withdrawn)`.
    pub action: String,
}

/// What a withdrawn record's DOIs carry: what its landing page still shows (title,
/// people, identifiers, how the versions relate) and why it was withdrawn; keywords,
/// abstract, license and links to its content leave, as they leave the site. The URL
/// is the record's landing page (its version pages are gone).
pub fn withdrawn_metadata(mut attributes: Value, tombstone: &Tombstone, page: &str) -> Value {
    const KEPT_RELATIONS: [&str; 4] = [
        "HasVersion",
        "IsVersionOf",
        "IsNewVersionOf",
        "IsPreviousVersionOf",
    ];
    if let Some(map) = attributes.as_object_mut() {
        for key in ["subjects", "rightsList", "sizes", "formats"] {
            map.remove(key);
        }
    }
    if let Some(rel) = attributes["relatedIdentifiers"].as_array_mut() {
        rel.retain(|r| {
            r["relationType"]
                .as_str()
                .is_some_and(|t| KEPT_RELATIONS.contains(&t))
        });
    }
    attributes["url"] = page.into();
    attributes["descriptions"] = json!([{
        "description": format!("Withdrawn on {}: {}", tombstone.day(), tombstone.reason),
        "descriptionType": "Other",
    }]);
    if let Some(dates) = attributes["dates"].as_array_mut() {
        dates.push(json!({
            "date": tombstone.day(),
            "dateType": "Withdrawn",
            "dateInformation": tombstone.reason,
        }));
    }
    attributes
}

/// Brings the record's DOIs where they belong: a DOI for every version in
/// `versions` (each version's [`Record`], built with [`Registered::planned`]
/// identifiers) and a concept DOI carrying the newest version's metadata, all
/// findable; or, when `withdrawn`, every DOI that resolves hidden with the
/// tombstone's metadata (nothing new is registered for a withdrawn record). A DOI is
/// sent only what changed its state or metadata (see `identifiers.json`). `save` is
/// called after every confirmed step with the new state, so an error (a timeout, a
/// refusal) loses nothing that DataCite did.
pub fn register(
    client: &Client,
    versions: &[Record],
    withdrawn: Option<&Tombstone>,
    registered: &mut Registered,
    save: &mut dyn FnMut(&Registered) -> std::io::Result<()>,
) -> Result<Vec<Step>, DoiError> {
    let mut steps = Vec::new();
    let Some(latest) = versions.iter().max_by_key(|r| r.version) else {
        return Ok(steps);
    };
    let (concept, version_name) = doi_names(&client.settings.prefix, &latest.id);
    let saved = |registered: &Registered,
                 save: &mut dyn FnMut(&Registered) -> std::io::Result<()>| {
        save(registered).map_err(|e| {
            DoiError::Transport(
                IDENTIFIERS.into(),
                format!("registered, but {IDENTIFIERS} could not be written: {e}"),
            )
        })
    };
    let mut targets: Vec<(Option<u32>, String, &Record, Target)> = versions
        .iter()
        .map(|r| (Some(r.version), version_name(r.version), r, Target::Version))
        .collect();
    targets.push((None, concept, latest, Target::Concept));
    let wanted_state = if withdrawn.is_some() {
        "registered"
    } else {
        "findable"
    };
    for (version, doi, record, target) in targets {
        let current = match version {
            Some(n) => registered.versions.get(&n).cloned(),
            None => registered.concept.clone(),
        };
        let page = match target {
            Target::Concept => &record.ids.concept_page,
            Target::Version => &record.ids.version_page,
        };
        let attributes = match withdrawn {
            Some(t) => {
                withdrawn_metadata(datacite_json(record, target), t, &record.ids.concept_page)
            }
            None => datacite_json(record, target),
        };
        let digest = sha256_hex(attributes.to_string().as_bytes());
        let up_to_date = current.as_ref().is_some_and(|r| {
            r.state == wanted_state && r.metadata_sha256.as_deref() == Some(digest.as_str())
        });
        // A withdrawn record gets no new DOIs, and its drafts never resolved.
        let nothing_to_hide =
            withdrawn.is_some() && !current.as_ref().is_some_and(Registration::resolves);
        if up_to_date || nothing_to_hide {
            continue;
        }
        let mut entry = match current {
            Some(r) => r,
            None => {
                let created = client.create_draft(&doi, page)?;
                steps.push(Step {
                    doi: doi.clone(),
                    action: if created {
                        "draft created"
                    } else {
                        "draft taken over"
                    }
                    .into(),
                });
                let entry = Registration {
                    doi: doi.clone(),
                    state: "draft".into(),
                    version: None,
                    metadata_sha256: None,
                };
                set(registered, version, entry.clone());
                saved(registered, save)?;
                entry
            }
        };
        let (event, action) = match (entry.state.as_str(), wanted_state) {
            ("draft", "findable") => (Some("publish"), "findable"),
            ("findable", "registered") => (Some("hide"), "hidden (withdrawn)"),
            _ => (None, "metadata updated"),
        };
        client.update(&doi, attributes, event)?;
        entry.state = wanted_state.into();
        entry.metadata_sha256 = Some(digest);
        if version.is_none() {
            entry.version = Some(latest.version);
        }
        set(registered, version, entry);
        saved(registered, save)?;
        steps.push(Step {
            doi,
            action: action.into(),
        });
    }
    Ok(steps)
}

fn set(registered: &mut Registered, version: Option<u32>, entry: Registration) {
    match version {
        Some(n) => {
            registered.versions.insert(n, entry);
        }
        None => registered.concept = Some(entry),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_the_file_round_trip() {
        let (concept, version) = doi_names("10.5072", "Zee");
        assert_eq!(concept, "10.5072/capsule.zee");
        assert_eq!(version(3), "10.5072/capsule.zee.v3");
        let settings = DataciteSettings {
            prefix: "10.5072".into(),
            repository_id: "X.Y".into(),
            url: "http://127.0.0.1:1".into(),
            password_env: default_password_env(),
            timeout_secs: 1,
        };
        let planned = Registered::planned(&settings, "zee", &[1, 2]);
        assert_eq!(planned.version_doi(2), Some("10.5072/capsule.zee.v2"));
        let text = planned.to_json();
        assert_eq!(Registered::parse(text.as_bytes()).unwrap(), planned);
        let mut draft = planned.clone();
        draft.versions.get_mut(&1).unwrap().state = "draft".into();
        assert_eq!(draft.version_doi(1), None, "drafts do not resolve");
    }
}
