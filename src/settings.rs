//! `capsule.toml`: the archive's name, links, identity sources and push policy.
//!
//! Unknown keys are errors, not silently ignored: a misspelt policy setting must not
//! quietly leave an archive unprotected.

use serde::{Deserialize, Serialize};

/// The whole of capsule.toml.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub archive: ArchiveSettings,
    #[serde(default)]
    pub identity: IdentitySettings,
    #[serde(default)]
    pub policy: Policy,
    /// How notification mails leave the archive. Absent: no mail is planned at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail: Option<MailSettings>,
    /// The static site (`capsule build`, post-receive rebuilds).
    #[serde(default)]
    pub site: SiteSettings,
    /// Experiment databases that `capsule fetch` fills deposits from.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub fetchers: std::collections::BTreeMap<String, crate::fetch::FetcherSettings>,
    /// The DataCite account `capsule doi` registers DOIs with (see `preserve::doi`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacite: Option<crate::preserve::doi::DataciteSettings>,
    /// How strictly deposits of CAP schemas are judged (docs/cap.md).
    #[serde(default)]
    pub validation: ValidationSettings,
}

/// `[validation]`: what capsule checks on top of CAP's own validator.
///
/// Schemas validated with CAP's engine (CAP wrappers, schemas under CAP's addresses)
/// are judged as CAP judged them, so that every deposit CAP accepted is accepted here.
/// Checks capsule could add (formats, which CAP never checked) are warnings unless the
/// archive opts in; then they refuse like any other problem.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationSettings {
    /// Enforce `format` (dates, e-mails, URLs) in deposits of CAP schemas too.
    #[serde(default)]
    pub cap_strict: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveSettings {
    #[serde(default = "default_name")]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Where the archive's site lives; links in mails and pages are built from it.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The branch that holds the archive's accepted state.
    #[serde(default = "default_branch")]
    pub default_branch: String,
    /// Who may read a new deposit besides its creator: group names of access.toml, or
    /// `"public"` for everyone. `capsule new` writes them into
    /// `_access.deposit-read.roles`; only deposits readable by `public` (or `*`) appear
    /// on the public site. Empty (the default): the creator alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub default_readers: Vec<String>,
}

impl Default for ArchiveSettings {
    fn default() -> Self {
        ArchiveSettings {
            name: default_name(),
            description: String::new(),
            base_url: default_base_url(),
            default_branch: default_branch(),
            default_readers: Vec::new(),
        }
    }
}

fn default_name() -> String {
    "capsule archive".into()
}
fn default_base_url() -> String {
    "http://localhost:8000".into()
}
fn default_branch() -> String {
    "main".into()
}

/// `[site]`: how `capsule build` renders the archive, and where post-receive puts it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SiteSettings {
    /// The folder the post-receive hook rebuilds the site into (absolute, or relative
    /// to the repository's git folder). Unset: the hook builds no site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out: Option<String>,
    /// The site's title (default: the archive's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The public address of the site (default: `archive.base_url`); absolute links in
    /// the sitemap, the feed and the API are built from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Whether post-receive builds an internal site with the drafts of the default
    /// branch (and restricted deposits). Never set this for a site the world can read.
    #[serde(default)]
    pub drafts: bool,
    /// Records per listing page (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_page: Option<usize>,
    /// Whether public builds write an OAI-PMH static repository (`oai.xml`) for
    /// harvesters. Off by default: the format is one file of every record, so a build
    /// that changes one record rewrites it whole (20 s for 10k records), which a site
    /// rebuilt on every push cannot afford; turn it on where harvesters need it.
    #[serde(default)]
    pub oai_pmh: bool,
    /// The static repository gateway that serves `oai.xml` to harvesters (for example
    /// `https://gateway.example.org/oai`). The OAI-PMH static repository specification
    /// makes the repository's `baseURL` the gateway's address followed by the file's
    /// address without its scheme; without a gateway it is the file's own address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oai_gateway: Option<String>,
}

/// Where the pusher's user name comes from.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySettings {
    /// Environment variables to read, first match wins.
    #[serde(default = "default_identity_env")]
    pub env: Vec<String>,
    /// Whether a push without any identity is accepted.
    #[serde(default)]
    pub allow_anonymous: bool,
}

impl Default for IdentitySettings {
    fn default() -> Self {
        IdentitySettings {
            env: default_identity_env(),
            allow_anonymous: false,
        }
    }
}

/// The variables hosting servers set for hooks, in the order we trust them.
pub fn default_identity_env() -> Vec<String> {
    [
        "GL_USERNAME",
        "GITEA_PUSHER_NAME",
        "GL_USER",
        "REMOTE_USER",
        "CAPSULE_USER",
    ]
    .map(String::from)
    .to_vec()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The largest file a push may add, in bytes. Larger files belong in Git LFS.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    /// User names allowed to change schemas, capsule.toml and access.toml.
    #[serde(default)]
    pub admins: Vec<String>,
    /// Branches that cannot be deleted or force-pushed (`*` at the end matches a prefix).
    #[serde(default = "default_protected")]
    pub protected_branches: Vec<String>,
    /// Users or groups who may create deposits that they do not own themselves.
    #[serde(default)]
    pub creators: Vec<String>,
    /// Users or groups who may publish any deposit (besides each deposit's admins).
    #[serde(default)]
    pub publishers: Vec<String>,
    /// Users or groups who may review any reviewable deposit (besides its admins).
    #[serde(default)]
    pub reviewers: Vec<String>,
    /// Who may create, move or delete tags other than record tags.
    #[serde(default)]
    pub tags: TagPolicy,
    /// The work one rendering of a mail template may do (minijinja fuel: about one
    /// unit per instruction, or per 64 bytes of data it makes). Templates come from
    /// pushed schemas, and the hook renders them before anything lands, so a loop
    /// must not be able to keep the hook busy.
    #[serde(default = "default_template_fuel")]
    pub template_fuel: u64,
    /// The largest text one rendering of a mail template (subject, body, layout,
    /// formatted address) may produce, in bytes.
    #[serde(default = "default_max_mail_bytes")]
    pub max_mail_bytes: u64,
    /// The wall-clock time the pre-receive hook may take for one push, in seconds.
    /// When it runs out the push is refused (the hook fails closed): a push must never
    /// hold the server, or the repository's ref locks, for long.
    #[serde(default = "default_hook_timeout_secs")]
    pub hook_timeout_secs: u64,
}

/// Who may push tags outside `records/`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TagPolicy {
    /// Archive admins only.
    #[default]
    Admins,
    /// Anyone listed in access.toml may create them; only admins move or delete them.
    Members,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_file_bytes: default_max_file_bytes(),
            admins: Vec::new(),
            protected_branches: default_protected(),
            creators: Vec::new(),
            publishers: Vec::new(),
            reviewers: Vec::new(),
            tags: TagPolicy::default(),
            template_fuel: default_template_fuel(),
            max_mail_bytes: default_max_mail_bytes(),
            hook_timeout_secs: default_hook_timeout_secs(),
        }
    }
}

/// A million units: CAP's longest templates need a few thousand, a body that lists
/// every field of a large deposit some tens of thousands, and a million take well
/// under a second; two nested loops over `range(100000)` run out in that second.
fn default_template_fuel() -> u64 {
    1_000_000
}
/// 1 MiB: far above any notification (CAP's are a few kB), well below what a mail
/// server refuses (often 10-25 MB) or what a hook should hold in memory.
fn default_max_mail_bytes() -> u64 {
    1024 * 1024
}

/// Five minutes: checking a push of thousands of deposits takes seconds; git's own
/// clients wait this long without complaint.
fn default_hook_timeout_secs() -> u64 {
    300
}

fn default_max_file_bytes() -> u64 {
    20 * 1024 * 1024
}
fn default_protected() -> Vec<String> {
    vec!["main".into()]
}

impl Policy {
    /// Whether `branch` (without `refs/heads/`) is protected.
    pub fn is_protected(&self, branch: &str) -> bool {
        self.protected_branches
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => branch.starts_with(prefix),
                None => pattern == branch,
            })
    }
}

/// `[mail]`: how notification mails leave the archive (docs/notifications.md).
///
/// Credentials never live here: capsule.toml is in the repository for everyone to
/// read. They come from `CAPSULE_SMTP_USERNAME` and `CAPSULE_SMTP_PASSWORD` in the
/// hook's environment, and a `url` with a user or password in it is refused.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MailSettings {
    /// The sender, `Name <address>` or a bare address.
    pub from: MailFrom,
    /// `smtp` delivers to `url`; `file` writes each mail to `dir` (dry runs, demos).
    #[serde(default)]
    pub transport: MailTransport,
    /// `smtp://host:port` (plain), `smtp://host:port?tls=required` (STARTTLS) or
    /// `smtps://host:port` (implicit TLS).
    #[serde(default)]
    pub url: SmtpUrl,
    /// Who gets a mail whose rules name nobody (instead of nobody).
    #[serde(default)]
    pub fallback_recipients: Vec<String>,
    /// Where links in mails start; `archive.base_url` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// For `transport = "file"`: the folder mails are written to, relative to the
    /// server's git directory unless absolute (default `capsule/mail`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// A PEM file of CA certificates to trust for the SMTP server, besides the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Seconds to wait for the server to connect and for each of its answers.
    #[serde(default = "default_mail_timeout")]
    pub timeout_secs: u64,
    /// How long temporary failures are retried before a mail is moved aside.
    #[serde(default = "default_retry_hours")]
    pub retry_hours: u64,
}

fn default_mail_timeout() -> u64 {
    10
}
fn default_retry_hours() -> u64 {
    48
}

/// How mail leaves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    #[default]
    Smtp,
    File,
}

/// The sender address, checked when capsule.toml is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct MailFrom(pub String);

impl<'de> Deserialize<'de> for MailFrom {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse::<lettre::message::Mailbox>().map_err(|e| {
            serde::de::Error::custom(format!(
                "`{text}` is not a sender address ({e}); write `Name <address@example.org>` or `address@example.org`"
            ))
        })?;
        Ok(MailFrom(text))
    }
}

/// How the SMTP server is reached, checked when capsule.toml is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct SmtpUrl(pub String);

impl Default for SmtpUrl {
    fn default() -> Self {
        SmtpUrl("smtp://localhost:25".into())
    }
}

/// Transport security of an SMTP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// No TLS at all (a relay on the same host or network).
    Plain,
    /// STARTTLS, and refuse to send without it.
    StartTls,
    /// STARTTLS when the server offers it, plain otherwise.
    Opportunistic,
    /// TLS from the first byte (port 465).
    Implicit,
}

/// A parsed `[mail] url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpEndpoint {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
}

impl SmtpUrl {
    /// The host, port and security the URL names, or why it cannot be used.
    pub fn endpoint(&self) -> Result<SmtpEndpoint, String> {
        let url =
            url::Url::parse(&self.0).map_err(|e| format!("`{}` is not a URL: {e}", self.0))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err("the SMTP URL must not carry a user name or password: capsule.toml is readable by everyone with the repository. Set CAPSULE_SMTP_USERNAME and CAPSULE_SMTP_PASSWORD in the hook's environment instead".into());
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("`{}` names no host", self.0))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let tls = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        if let Some((key, _)) = url.query_pairs().find(|(k, _)| k != "tls") {
            return Err(format!(
                "unknown URL option `{key}`: the only option is tls=required or tls=opportunistic"
            ));
        }
        let (security, default_port) = match (url.scheme(), tls.as_deref()) {
            ("smtp", None | Some("none")) => (SmtpSecurity::Plain, 25),
            ("smtp", Some("required" | "starttls")) => (SmtpSecurity::StartTls, 587),
            ("smtp", Some("opportunistic")) => (SmtpSecurity::Opportunistic, 25),
            ("smtps", None) => (SmtpSecurity::Implicit, 465),
            ("smtp" | "smtps", Some(other)) => {
                return Err(format!(
                    "`tls={other}` is not a TLS mode: use tls=required (STARTTLS) or tls=opportunistic with smtp://, or smtps:// for implicit TLS"
                ))
            }
            (other, _) => {
                return Err(format!(
                    "`{other}://` is not an SMTP URL: use smtp:// or smtps://"
                ))
            }
        };
        Ok(SmtpEndpoint {
            host,
            port: url.port().unwrap_or(default_port),
            security,
        })
    }
}

impl<'de> Deserialize<'de> for SmtpUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let url = SmtpUrl(String::deserialize(d)?);
        url.endpoint().map_err(serde::de::Error::custom)?;
        Ok(url)
    }
}

impl Settings {
    /// Parses capsule.toml text; the error says where and what.
    pub fn parse(text: &str) -> Result<Settings, SettingsError> {
        toml::from_str(text).map_err(|e| SettingsError::from_toml("capsule.toml", text, &e))
    }
}

/// A TOML file that could not be read, with its position.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct SettingsError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl SettingsError {
    pub fn from_toml(file: &str, text: &str, e: &toml::de::Error) -> Self {
        let (line, column) = e
            .span()
            .map_or((0, 0), |span| crate::locate::line_column(text, span.start));
        SettingsError {
            file: file.to_string(),
            line,
            column,
            message: e
                .message()
                .lines()
                .next()
                .unwrap_or("invalid TOML")
                .trim()
                .to_string(),
        }
    }

    pub fn into_problem(self) -> crate::problem::Problem {
        crate::problem::Problem {
            line: self.line,
            column: self.column,
            ..crate::problem::Problem::file(self.file, self.message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_an_empty_file() {
        let s = Settings::parse("").unwrap();
        assert_eq!(s.archive.default_branch, "main");
        assert_eq!(s.identity.env[0], "GL_USERNAME");
        assert_eq!(s.policy.protected_branches, ["main"]);
    }

    #[test]
    fn mail_settings_are_typed_and_checked() {
        let s = Settings::parse(
            "[mail]\nfrom = \"Archive <capsule@example.org>\"\nurl = \"smtp://mail.example.org:587?tls=required\"\n",
        )
        .unwrap();
        let mail = s.mail.unwrap();
        assert_eq!(mail.transport, MailTransport::Smtp);
        assert_eq!(
            mail.url.endpoint().unwrap(),
            SmtpEndpoint {
                host: "mail.example.org".into(),
                port: 587,
                security: SmtpSecurity::StartTls
            }
        );
        let implicit = SmtpUrl("smtps://mail.example.org".into())
            .endpoint()
            .unwrap();
        assert_eq!(
            (implicit.port, implicit.security),
            (465, SmtpSecurity::Implicit)
        );

        for (bad, needle) in [
            (
                "url = \"smtp://bob:secret@mail.example.org\"",
                "CAPSULE_SMTP_PASSWORD",
            ),
            ("url = \"http://mail.example.org\"", "not an SMTP URL"),
            (
                "url = \"smtp://mail.example.org?tls=maybe\"",
                "not a TLS mode",
            ),
            ("transport = \"pigeon\"", "pigeon"),
            ("password = \"x\"", "password"),
        ] {
            let e =
                Settings::parse(&format!("[mail]\nfrom = \"a@example.org\"\n{bad}\n")).unwrap_err();
            assert!(e.message.contains(needle), "{bad}: {}", e.message);
            assert_eq!(e.line, 3, "{bad}");
        }
        let e = Settings::parse("[mail]\nfrom = \"not an address\"\n").unwrap_err();
        assert!(e.message.contains("not a sender address"), "{}", e.message);
    }

    #[test]
    fn site_settings_are_typed() {
        let s = Settings::parse("[site]\nout = \"/srv/www\"\ntitle = \"Ours\"\n").unwrap();
        assert_eq!(s.site.out.as_deref(), Some("/srv/www"));
        assert_eq!(s.site.title.as_deref(), Some("Ours"));
        assert!(!s.site.drafts);
        let e = Settings::parse("[site]\noutput = \"x\"\n").unwrap_err();
        assert!(e.message.contains("output"), "{}", e.message);
    }

    #[test]
    fn unknown_keys_are_located() {
        let e = Settings::parse("[policy]\nmax_file_byte = 3\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 1));
        assert!(e.message.contains("max_file_byte"), "{}", e.message);
    }
}
