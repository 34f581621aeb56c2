//! Configuration of `irm-key-server serve` and `init`: command-line flags,
//! `IRM_KS_*` environment variables and an optional TOML file, in that order
//! of precedence, resolved into [`ServerConfig`]. The flags themselves are
//! declared here (clap derive) so that the binary only dispatches.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::checkpoints::{DEFAULT_SINK_ALERT_AFTER, SinkSettings};
use crate::state::Settings;
use crate::store::DatabaseUrl;

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";

/// Configuration could not be resolved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("reading the config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML for this server.
    #[error("the config file {path} is invalid")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: toml::de::Error,
    },
    /// No data directory anywhere.
    #[error("no data directory: give --data-dir, IRM_KS_DATA_DIR or data_dir in the config file")]
    NoDataDir,
    /// A value is out of range.
    #[error("{0}")]
    Invalid(String),
}

/// The optional TOML file (`--config`). Every key is optional.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Data directory.
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL connection string (the state goes there instead of SQLite).
    pub database_url: Option<DatabaseUrl>,
    /// Listen address.
    pub listen: Option<SocketAddr>,
    /// Extra certificate names (used at initialisation).
    pub hostnames: Option<Vec<String>>,
    /// Bootstrap administrator (used at initialisation).
    pub bootstrap_admin: Option<String>,
    /// URL put in `ServerKeyInfo`.
    pub public_url: Option<String>,
    /// Server lease limit in seconds.
    pub lease_limit_secs: Option<u64>,
    /// Checkpoint file.
    pub checkpoint_file: Option<PathBuf>,
    /// Checkpoint interval in seconds.
    pub checkpoint_interval_secs: Option<u64>,
    /// Off-host checkpoint sink (a directory mounted from another machine).
    pub checkpoint_sink: Option<PathBuf>,
    /// Seconds a checkpoint may wait for the sink before the server warns.
    pub checkpoint_sink_alert_secs: Option<u64>,
    /// Rows a copy or print may take out without an approved take-out.
    pub take_out_rows: Option<u64>,
    /// Request timeout in seconds.
    pub request_timeout_secs: Option<u64>,
    /// Shutdown grace in seconds.
    pub shutdown_timeout_secs: Option<u64>,
    /// Push-channel streams open at once.
    pub max_watchers: Option<usize>,
    /// Detection rules (PROTOCOL.md §12); absent ones keep their defaults.
    pub detection: Option<DetectionConfig>,
    /// Whom a held or suspended person should call, by group (`"*"`: anyone else).
    pub contacts: Option<std::collections::BTreeMap<String, String>>,
    /// Working hours by group (`"*"`: everyone whose groups have none), PROTOCOL.md §12.3.
    pub working_hours: Option<std::collections::BTreeMap<String, irm_core::protocol::WorkingHours>>,
    /// Where alerts are delivered (PROTOCOL.md §12.1).
    pub alerts: Option<AlertsConfig>,
    /// Each group's data owner (`mailto:` or `https://`), who receives the
    /// group's digest (PROTOCOL.md §7.7).
    pub data_owners: Option<std::collections::BTreeMap<String, String>>,
    /// Where canaries' contact values come from (PROTOCOL.md §7.8).
    pub canaries: Option<CanariesConfig>,
}

/// `[canaries]`: the operator's monitored pools (PROTOCOL.md §7.8). Without
/// them canaries carry values that reach no one.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CanariesConfig {
    /// Phone numbers the operator answers, one a line; each used once ever.
    pub phone_pool_file: Option<PathBuf>,
    /// E-mail addresses the operator reads, one a line; each used once ever.
    pub email_pool_file: Option<PathBuf>,
    /// A domain with a catch-all mailbox the operator reads: canaries get
    /// fresh addresses in it once `email_pool_file` is used up (or without one).
    pub email_domain: Option<String>,
}

/// `[alerts]` in the config file: the webhook every alert is POSTed to.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// The receiver: `https://` only.
    pub webhook_url: Option<String>,
    /// A file (mode 0600) holding the HMAC key that signs each delivery.
    pub webhook_secret_file: Option<PathBuf>,
    /// PEM certificates to trust for the receiver besides the system's roots.
    pub webhook_ca: Option<PathBuf>,
}

impl AlertsConfig {
    /// The checked settings: https only, the key file private, the CA readable.
    pub fn settings(&self) -> Result<crate::alerts::AlertSettings, ConfigError> {
        let url = self.webhook_url.as_deref().ok_or_else(|| {
            ConfigError::Invalid("[alerts] needs webhook_url (https://...)".into())
        })?;
        let secret_file = self.webhook_secret_file.as_deref().ok_or_else(|| {
            ConfigError::Invalid(
                "[alerts] needs webhook_secret_file (a file of mode 0600 holding the HMAC key)"
                    .into(),
            )
        })?;
        let invalid = |e: crate::alerts::SettingsError| ConfigError::Invalid(e.to_string());
        let secret = crate::alerts::WebhookSecret::from_file(secret_file).map_err(invalid)?;
        let ca_pem = match &self.webhook_ca {
            Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                ConfigError::Invalid(format!("alerts.webhook_ca {}: {e}", path.display()))
            })?),
            None => None,
        };
        crate::alerts::AlertSettings::new(url, secret, ca_pem).map_err(invalid)
    }
}

/// `[data_owners]` checked: a group name each (`*` means nobody here: a
/// digest is about one group's files), and a contact the CLI can send to
/// without a line break reaching a mail header (PROTOCOL.md §7.7).
fn data_owners(
    owners: std::collections::BTreeMap<String, String>,
) -> Result<std::collections::BTreeMap<String, irm_core::protocol::OwnerContact>, ConfigError> {
    owners
        .into_iter()
        .map(|(group, contact)| {
            if !irm_core::protocol::valid_name(&group) {
                return Err(ConfigError::Invalid(format!(
                    "[data_owners]: {group:?} is not a group name (1 to 64 of a-z A-Z 0-9 . _ -)"
                )));
            }
            let contact = irm_core::protocol::OwnerContact::parse(&contact).map_err(|e| {
                // The value is not echoed: it may be a webhook URL carrying a token.
                ConfigError::Invalid(format!("[data_owners] {group}: {e}"))
            })?;
            Ok((group, contact))
        })
        .collect()
}

/// `[detection]` in the config file: 0 switches a rule off.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectionConfig {
    /// More distinct files than this per person in the window fires [default: 30].
    pub bulk_files: Option<u32>,
    /// The bulk rule's window in seconds [default: 300].
    pub bulk_window_secs: Option<u64>,
    /// `alert`, `step_up` or `suspend` [default: step_up].
    pub bulk_action: Option<crate::detect::Action>,
    /// This many refused grants per person in the window fires an alert [default: 10].
    pub denials: Option<u32>,
    /// The refusal rule's window in seconds [default: 600].
    pub denial_window_secs: Option<u64>,
    /// More rows taken out (copied, printed, exported) per person in the window fires [default: 10000].
    pub records_taken: Option<u32>,
    /// The records rule's window in seconds [default: 86400].
    pub records_window_secs: Option<u64>,
    /// [default: alert].
    pub records_action: Option<crate::detect::Action>,
    /// More devices in use per person in the window fires [default: 1].
    pub devices: Option<u32>,
    /// The devices rule's window in seconds [default: 600].
    pub devices_window_secs: Option<u64>,
    /// [default: alert].
    pub devices_action: Option<crate::detect::Action>,
    /// More client networks (/24, /48) per person in the window fires [default: 1].
    pub networks: Option<u32>,
    /// The networks rule's window in seconds [default: 3600].
    pub networks_window_secs: Option<u64>,
    /// [default: alert].
    pub networks_action: Option<crate::detect::Action>,
    /// An hour's grants above this many times the person's median hour fires [default: 10].
    pub baseline_factor: Option<u32>,
    /// The history the median is taken over, in seconds [default: 1209600, 14 days].
    pub baseline_window_secs: Option<u64>,
    /// [default: alert].
    pub baseline_action: Option<crate::detect::Action>,
    /// This many new grants outside working hours in the window fire [default: 1].
    pub off_hours: Option<u32>,
    /// The working-hours rule's window in seconds [default: 3600].
    pub off_hours_window_secs: Option<u64>,
    /// [default: alert].
    pub off_hours_action: Option<crate::detect::Action>,
    /// This many scopes opened for the first time in the window fire, once settled [default: 1].
    pub first_access: Option<u32>,
    /// The first-access rule's window (and how long a newcomer settles) in seconds [default: 604800].
    pub first_access_window_secs: Option<u64>,
    /// [default: alert].
    pub first_access_action: Option<crate::detect::Action>,
    /// A total above this many times the peers' median fires [default: 5].
    pub peers_factor: Option<u32>,
    /// The peers rule's shorter window in seconds (the longer is three times it) [default: 2592000].
    pub peers_window_secs: Option<u64>,
    /// [default: alert].
    pub peers_action: Option<crate::detect::Action>,
}

/// A rule of the limit-window-action kind from its three config keys over
/// its default; a limit of 0 switches it off.
fn limit_rule(
    default: Option<irm_core::protocol::DetectionLimit>,
    limit: Option<u32>,
    window_secs: Option<u64>,
    action: Option<crate::detect::Action>,
) -> Option<irm_core::protocol::DetectionLimit> {
    let default = default?;
    match limit.unwrap_or(default.limit) {
        0 => None,
        limit => Some(irm_core::protocol::DetectionLimit {
            limit,
            window_secs: window_secs.unwrap_or(default.window_secs),
            action: action.unwrap_or(default.action),
        }),
    }
}

impl DetectionConfig {
    /// The rules, over the defaults.
    pub fn rules(&self) -> Result<crate::detect::Rules, ConfigError> {
        use crate::detect::Rules;
        let defaults = Rules::default();
        if [
            self.bulk_window_secs,
            self.denial_window_secs,
            self.records_window_secs,
            self.devices_window_secs,
            self.networks_window_secs,
            self.baseline_window_secs,
            self.off_hours_window_secs,
            self.first_access_window_secs,
            self.peers_window_secs,
        ]
        .contains(&Some(0))
        {
            return Err(ConfigError::Invalid(
                "a detection window must be at least 1 second (switch a rule off with 0 files or denials)".into(),
            ));
        }
        let rules = Rules {
            bulk: limit_rule(
                defaults.bulk,
                self.bulk_files,
                self.bulk_window_secs,
                self.bulk_action,
            ),
            // Refusals only ever alert (`check_detection_setting`).
            denials: limit_rule(
                defaults.denials,
                self.denials,
                self.denial_window_secs,
                None,
            ),
            records: limit_rule(
                defaults.records,
                self.records_taken,
                self.records_window_secs,
                self.records_action,
            ),
            devices: limit_rule(
                defaults.devices,
                self.devices,
                self.devices_window_secs,
                self.devices_action,
            ),
            networks: limit_rule(
                defaults.networks,
                self.networks,
                self.networks_window_secs,
                self.networks_action,
            ),
            baseline: limit_rule(
                defaults.baseline,
                self.baseline_factor,
                self.baseline_window_secs,
                self.baseline_action,
            ),
            off_hours: limit_rule(
                defaults.off_hours,
                self.off_hours,
                self.off_hours_window_secs,
                self.off_hours_action,
            ),
            first_access: limit_rule(
                defaults.first_access,
                self.first_access,
                self.first_access_window_secs,
                self.first_access_action,
            ),
            peers: limit_rule(
                defaults.peers,
                self.peers_factor,
                self.peers_window_secs,
                self.peers_action,
            ),
        };
        // The same bounds as a change through the API (PROTOCOL.md §12.2).
        for rule in irm_core::protocol::DETECTION_RULES {
            irm_core::protocol::check_detection_setting(rule, rules.setting(rule).as_ref())
                .map_err(|e| ConfigError::Invalid(format!("[detection] {rule}: {e}")))?;
        }
        Ok(rules)
    }
}

/// Flags shared by `serve` and `init`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServerArgs {
    /// Data directory (database, keys, TLS material); created on first start.
    #[arg(long, env = "IRM_KS_DATA_DIR", value_hint = clap::ValueHint::DirPath)]
    pub data_dir: Option<PathBuf>,
    /// Keep the state in this PostgreSQL database instead of SQLite in the data
    /// directory (postgresql://USER[:PASSWORD]@HOST[:PORT]/DB, or host=... dbname=...);
    /// prefer the environment variable when it holds a password.
    #[arg(
        long,
        env = "IRM_KS_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<DatabaseUrl>,
    /// Address to listen on [default: 127.0.0.1:8443].
    #[arg(long, env = "IRM_KS_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Extra DNS name or IP for the server certificate (repeatable; initialisation only).
    #[arg(long = "hostname", env = "IRM_KS_HOSTNAMES", value_delimiter = ',')]
    pub hostnames: Vec<String>,
    /// The bootstrap administrator's user name (initialisation only) [default: admin].
    #[arg(long, env = "IRM_KS_BOOTSTRAP_ADMIN")]
    pub bootstrap_admin: Option<String>,
    /// URL clients reach this server at, written into server-key answers and invitations
    /// [default: https://LISTEN-ADDRESS:PORT, or https://FIRST-HOSTNAME:PORT when listening on
    /// 0.0.0.0 or ::].
    #[arg(long, env = "IRM_KS_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Longest lease the server hands out, in seconds [default: 600].
    #[arg(long, env = "IRM_KS_LEASE_LIMIT_SECS")]
    pub lease_limit_secs: Option<u64>,
    /// Signed audit checkpoints are appended here [default: DATA_DIR/audit-checkpoints.jsonl].
    #[arg(long, env = "IRM_KS_CHECKPOINT_FILE", value_hint = clap::ValueHint::FilePath)]
    pub checkpoint_file: Option<PathBuf>,
    /// Seconds between checkpoints while the audit log grows [default: 60].
    #[arg(long, env = "IRM_KS_CHECKPOINT_INTERVAL_SECS")]
    pub checkpoint_interval_secs: Option<u64>,
    /// Also append every checkpoint to DIR/audit-checkpoints.jsonl, a directory mounted from
    /// another machine that keeps it append-only, so that whoever holds this host cannot cut
    /// back the log and every copy of its checkpoints together.
    #[arg(long, env = "IRM_KS_CHECKPOINT_SINK", value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    pub checkpoint_sink: Option<PathBuf>,
    /// Warn (log, /healthz, irm_audit_sink_unconfirmed_seconds) when a checkpoint has waited this
    /// many seconds for the sink [default: 600].
    #[arg(long, env = "IRM_KS_CHECKPOINT_SINK_ALERT_SECS")]
    pub checkpoint_sink_alert_secs: Option<u64>,
    /// A copy or print of more rows than this needs a take-out approved under the file.copy or
    /// file.print rule (`irm export request FILE --for copy`) [default: 100].
    #[arg(long, env = "IRM_KS_TAKE_OUT_ROWS", value_name = "ROWS")]
    pub take_out_rows: Option<u64>,
    /// Longest a request may run, in seconds [default: 30].
    #[arg(long, env = "IRM_KS_REQUEST_TIMEOUT_SECS")]
    pub request_timeout_secs: Option<u64>,
    /// How long shutdown waits for open requests, in seconds [default: 10].
    #[arg(long, env = "IRM_KS_SHUTDOWN_TIMEOUT_SECS")]
    pub shutdown_timeout_secs: Option<u64>,
    /// The most push-channel streams (`GET /v1/watch`) open at once; a device beyond it keeps
    /// its document open on its lease alone, 0 turns the channel off [default: 20000].
    #[arg(long, env = "IRM_KS_MAX_WATCHERS", value_name = "N")]
    pub max_watchers: Option<usize>,
    /// Optional TOML file with the same settings (flags and environment win).
    #[arg(long, env = "IRM_KS_CONFIG", value_hint = clap::ValueHint::FilePath)]
    pub config: Option<PathBuf>,
}

/// Everything `serve` and `init` need.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Extra certificate names.
    pub hostnames: Vec<String>,
    /// Bootstrap administrator.
    pub bootstrap_admin: String,
    /// Runtime settings.
    pub settings: Settings,
}

impl ServerArgs {
    /// Merges flags and environment (already in `self`) over the config file
    /// over the defaults.
    pub fn resolve(self) -> Result<ServerConfig, ConfigError> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                toml::from_str::<FileConfig>(&text).map_err(|source| ConfigError::Parse {
                    path: path.clone(),
                    source,
                })?
            }
            None => FileConfig::default(),
        };
        let data_dir = self
            .data_dir
            .or(file.data_dir)
            .ok_or(ConfigError::NoDataDir)?;
        let mut settings = Settings::new(&data_dir);
        settings.database_url = self
            .database_url
            .or(file.database_url)
            .and_then(DatabaseUrl::non_empty);
        settings.public_url = self.public_url.or(file.public_url);
        if let Some(secs) = self.lease_limit_secs.or(file.lease_limit_secs) {
            settings.lease_limit_secs = secs;
        }
        if let Some(path) = self.checkpoint_file.or(file.checkpoint_file) {
            settings.checkpoint_path = path;
        }
        let secs = |v: Option<u64>, name: &str| -> Result<Option<Duration>, ConfigError> {
            match v {
                Some(0) => Err(ConfigError::Invalid(format!(
                    "{name} must be at least 1 second"
                ))),
                other => Ok(other.map(Duration::from_secs)),
            }
        };
        if let Some(d) = secs(
            self.checkpoint_interval_secs
                .or(file.checkpoint_interval_secs),
            "the checkpoint interval",
        )? {
            settings.checkpoint_interval = d;
        }
        let alert_after = secs(
            self.checkpoint_sink_alert_secs
                .or(file.checkpoint_sink_alert_secs),
            "the checkpoint sink's alert time",
        )?;
        settings.checkpoint_sink = self
            .checkpoint_sink
            .or(file.checkpoint_sink)
            .filter(|dir| !dir.as_os_str().is_empty())
            .map(|dir| SinkSettings {
                dir,
                alert_after: alert_after.unwrap_or(DEFAULT_SINK_ALERT_AFTER),
            });
        if let Some(detection) = &file.detection {
            settings.detection = detection.rules()?;
        }
        if let Some(contacts) = file.contacts {
            if let Some((group, _)) = contacts
                .iter()
                .find(|(_, text)| text.len() > 200 || text.chars().any(char::is_control))
            {
                return Err(ConfigError::Invalid(format!(
                    "the contact for {group:?} must be one line of at most 200 bytes"
                )));
            }
            settings.contacts = contacts;
        }
        if let Some(hours) = file.working_hours {
            for (group, schedule) in &hours {
                if group != "*" && !irm_core::protocol::valid_name(group) {
                    return Err(ConfigError::Invalid(format!(
                        "[working_hours]: {group:?} is not a group name"
                    )));
                }
                crate::detect::Schedule::new(schedule)
                    .map_err(|e| ConfigError::Invalid(format!("[working_hours.{group}]: {e}")))?;
            }
            settings.working_hours = hours;
        }
        if let Some(alerts) = &file.alerts {
            settings.alerts = Some(alerts.settings()?);
        }
        if let Some(owners) = file.data_owners {
            settings.data_owners = data_owners(owners)?;
        }
        if let Some(canaries) = &file.canaries {
            let read = |path: &Option<PathBuf>| -> Result<Vec<String>, ConfigError> {
                match path {
                    Some(path) => {
                        crate::canary::CanaryPools::read_pool(path).map_err(ConfigError::Invalid)
                    }
                    None => Ok(Vec::new()),
                }
            };
            let domain = canaries.email_domain.clone().filter(|d| !d.is_empty());
            if let Some(domain) = &domain
                && irm_core::protocol::contact_key(&format!("a@{domain}")).is_none_or(|k| {
                    k.len() > 200
                        || !k
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"@.-".contains(&b))
                })
            {
                return Err(ConfigError::Invalid(format!(
                    "[canaries] email_domain {domain:?} is not a domain name"
                )));
            }
            settings.canaries = std::sync::Arc::new(crate::canary::CanaryPools {
                phones: read(&canaries.phone_pool_file)?,
                emails: read(&canaries.email_pool_file)?,
                email_domain: domain,
            });
        }
        if let Some(rows) = self.take_out_rows.or(file.take_out_rows) {
            settings.take_out_rows = rows;
        }
        if let Some(max) = self.max_watchers.or(file.max_watchers) {
            settings.max_watchers = max;
        }
        if let Some(d) = secs(
            self.request_timeout_secs.or(file.request_timeout_secs),
            "the request timeout",
        )? {
            settings.request_timeout = d;
        }
        if let Some(d) = secs(
            self.shutdown_timeout_secs.or(file.shutdown_timeout_secs),
            "the shutdown timeout",
        )? {
            settings.shutdown_timeout = d;
        }
        let listen = match self.listen.or(file.listen) {
            Some(addr) => addr,
            None => DEFAULT_LISTEN
                .parse()
                .map_err(|_| ConfigError::Invalid("bad default listen address".into()))?,
        };
        let hostnames = if self.hostnames.is_empty() {
            file.hostnames.unwrap_or_default()
        } else {
            self.hostnames
        };
        settings.public_host = crate::state::default_public_host(listen, &hostnames);
        let bootstrap_admin = self
            .bootstrap_admin
            .or(file.bootstrap_admin)
            .unwrap_or_else(|| "admin".to_owned());
        if !irm_core::protocol::valid_name(&bootstrap_admin) {
            return Err(ConfigError::Invalid(
                "the bootstrap admin name must be 1 to 64 of a-z A-Z 0-9 . _ -".into(),
            ));
        }
        Ok(ServerConfig {
            listen,
            hostnames,
            bootstrap_admin,
            settings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ks.toml");
        std::fs::write(
            &path,
            "data_dir = \"/srv/irm\"\nlisten = \"0.0.0.0:9443\"\nlease_limit_secs = 120\nbootstrap_admin = \"root\"\n",
        )
        .unwrap();
        let args = ServerArgs {
            config: Some(path.clone()),
            lease_limit_secs: Some(60),
            ..Default::default()
        };
        let config = args.resolve().unwrap();
        assert_eq!(config.settings.data_dir, PathBuf::from("/srv/irm"));
        assert_eq!(config.listen.to_string(), "0.0.0.0:9443");
        assert_eq!(config.settings.lease_limit_secs, 60);
        assert_eq!(config.bootstrap_admin, "root");
        assert_eq!(
            config.settings.checkpoint_path,
            PathBuf::from("/srv/irm/audit-checkpoints.jsonl")
        );
        std::fs::write(&path, "unknown_key = 1\n").unwrap();
        assert!(matches!(
            ServerArgs {
                config: Some(path),
                data_dir: Some("/x".into()),
                ..Default::default()
            }
            .resolve(),
            Err(ConfigError::Parse { .. })
        ));
    }

    #[test]
    fn detection_rules_and_contacts_come_from_the_file() {
        use crate::detect::Action;
        use irm_core::protocol::DetectionLimit;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ks.toml");
        let resolve = |text: &str| {
            std::fs::write(&path, text).unwrap();
            ServerArgs {
                config: Some(path.clone()),
                data_dir: Some("/srv/irm".into()),
                ..Default::default()
            }
            .resolve()
        };
        let config = resolve(
            "[detection]\nbulk_files = 50\nbulk_action = \"suspend\"\ndenials = 0\n\
             [contacts]\n\"*\" = \"security desk, ext. 4000\"\nsupport = \"Sato, ext. 1234\"\n",
        )
        .unwrap();
        let settings = &config.settings;
        assert_eq!(
            settings.detection.bulk,
            Some(DetectionLimit {
                limit: 50,
                window_secs: 300,
                action: Action::Suspend
            })
        );
        assert_eq!(settings.detection.denials, None, "0 switches it off");
        assert_eq!(
            settings.contact_for(&["support".into()]),
            Some("Sato, ext. 1234")
        );
        assert_eq!(
            settings.contact_for(&["agents".into()]),
            Some("security desk, ext. 4000")
        );
        assert!(resolve("[contacts]\nsupport = \"a\\nb\"\n").is_err());
        assert!(resolve("[detection]\nbulk_window_secs = 0\n").is_err());
        assert!(resolve("[detection]\nbulk_action = \"ignore\"\n").is_err());
    }

    #[test]
    fn data_owners_are_a_mailbox_or_an_https_webhook_per_group() {
        use irm_core::protocol::OwnerContact;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ks.toml");
        let resolve = |text: &str| {
            std::fs::write(&path, text).unwrap();
            ServerArgs {
                config: Some(path.clone()),
                data_dir: Some("/srv/irm".into()),
                ..Default::default()
            }
            .resolve()
        };
        let config = resolve(
            "[data_owners]\nsupport = \"mailto:owner@client.example\"\n\
             sales = \"https://hooks.client.example/irm/T0KEN\"\n",
        )
        .unwrap();
        let owners = &config.settings.data_owners;
        assert_eq!(
            owners.get("support"),
            Some(&OwnerContact::Mailbox("owner@client.example".into()))
        );
        assert!(matches!(
            owners.get("sales"),
            Some(OwnerContact::Webhook(_))
        ));
        for bad in [
            "[data_owners]\nsupport = \"http://hooks.client.example/irm\"\n",
            "[data_owners]\nsupport = \"mailto:a@b.example\\r\\nBcc: spy@evil.example\"\n",
            "[data_owners]\nsupport = \"owner@client.example\"\n",
            "[data_owners]\n\"*\" = \"mailto:a@b.example\"\n",
        ] {
            let err = resolve(bad).unwrap_err().to_string();
            assert!(!err.contains("spy@"), "the value is not echoed: {err}");
        }
        let err = resolve("[data_owners]\nsales = \"https://hooks.example/T0KEN\\n\"\n")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("T0KEN"), "{err}");
    }

    #[test]
    fn the_alert_webhook_must_be_https_with_a_private_key_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ks.toml");
        let key = dir.path().join("webhook.key");
        std::fs::write(&key, "a-webhook-key-of-32-bytes-or-so!\n").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let resolve = |url: &str| {
            std::fs::write(
                &path,
                format!(
                    "[alerts]\nwebhook_url = \"{url}\"\nwebhook_secret_file = \"{}\"\n",
                    key.display()
                ),
            )
            .unwrap();
            ServerArgs {
                config: Some(path.clone()),
                data_dir: Some("/srv/irm".into()),
                ..Default::default()
            }
            .resolve()
        };
        let config = resolve("https://siem.example/irm").unwrap();
        let alerts = config.settings.alerts.expect("configured");
        assert_eq!(alerts.webhook_url.as_str(), "https://siem.example/irm");
        assert!(
            !format!("{alerts:?}").contains("a-webhook-key"),
            "the key never prints"
        );
        let err = resolve("http://siem.example/irm").unwrap_err();
        assert!(err.to_string().contains("must be https://"), "{err}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = resolve("https://siem.example/irm").unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn the_default_public_url_is_where_clients_can_reach_the_server() {
        let url = |listen: &str, hostnames: &[&str]| {
            let config = ServerArgs {
                data_dir: Some("/srv/irm".into()),
                listen: Some(listen.parse().unwrap()),
                hostnames: hostnames.iter().map(|h| (*h).to_owned()).collect(),
                ..Default::default()
            }
            .resolve()
            .unwrap();
            config.settings.public_url_at(config.listen.port())
        };
        // What people enroll with when the README's server listens on loopback.
        assert_eq!(url("127.0.0.1:8443", &[]), "https://127.0.0.1:8443");
        assert_eq!(url("[::1]:8443", &[]), "https://[::1]:8443");
        assert_eq!(
            url("10.0.0.5:8443", &["kas.example"]),
            "https://10.0.0.5:8443"
        );
        // On every address, the certificate's first extra name.
        assert_eq!(
            url("0.0.0.0:9443", &["kas.example"]),
            "https://kas.example:9443"
        );
        assert_eq!(url("0.0.0.0:9443", &[]), "https://localhost:9443");
        let configured = ServerArgs {
            data_dir: Some("/srv/irm".into()),
            public_url: Some("https://kas.example".into()),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(
            configured.settings.public_url_at(8443),
            "https://kas.example"
        );
    }

    #[test]
    fn a_database_url_comes_from_flags_or_the_file_and_never_shows_in_debug() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ks.toml");
        std::fs::write(
            &path,
            "data_dir = \"/srv/irm\"\ndatabase_url = \"postgresql://irm:s3cret@db/irm\"\n",
        )
        .unwrap();
        let from_file = ServerArgs {
            config: Some(path.clone()),
            ..Default::default()
        }
        .resolve();
        let from_flag = ServerArgs {
            config: Some(path),
            database_url: Some(DatabaseUrl::new("host=/run/postgresql dbname=irm")),
            ..Default::default()
        }
        .resolve();
        let empty = ServerArgs {
            data_dir: Some("/srv/irm".into()),
            database_url: Some(DatabaseUrl::new("")),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(empty.settings.database_url, None, "empty means none");
        let from_file = from_file.unwrap();
        assert_eq!(
            from_file
                .settings
                .database_url
                .as_ref()
                .map(DatabaseUrl::expose),
            Some("postgresql://irm:s3cret@db/irm")
        );
        assert!(!format!("{from_file:?}").contains("s3cret"));
        assert_eq!(
            from_flag
                .unwrap()
                .settings
                .database_url
                .as_ref()
                .map(DatabaseUrl::expose),
            Some("host=/run/postgresql dbname=irm"),
            "the flag wins over the file"
        );
    }
}
