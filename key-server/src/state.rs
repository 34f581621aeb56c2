//! The shared state every handler gets (`AppState`), the runtime settings,
//! and the operations on the audit log that need more than the store: signing
//! and writing checkpoints, and verifying the chain against them.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use irm_core::SigningSecretKey;
use irm_core::protocol::{AuditCheckpoint, AuditVerifyReport, ServerKeyInfo};

use crate::audit::{append_checkpoint, read_checkpoints, sign_checkpoint};
use crate::auth::replay::NonceCache;
use crate::checkpoints::{Published, SinkSettings};
use crate::clock::Clock;
use crate::datadir::{self, DataDirError, KeyRing, Layout};
use crate::error::{ApiError, StoreError};
use crate::grant::decision::DEFAULT_LEASE_LIMIT_SECS;
use crate::metrics::Metrics;
use crate::store::{Database, DatabaseUrl, KeyRecord, Store};
use crate::tls;
use crate::vault::{Entries, Vault, VaultError};
use irm_core::audit::ChainVerifier;
use irm_core::protocol::KeyState;

/// Runtime settings (from flags, environment and the config file).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The data directory.
    pub data_dir: PathBuf,
    /// The PostgreSQL database that holds the state instead of the SQLite
    /// file in the data directory (which still holds keys, TLS material and
    /// checkpoints).
    pub database_url: Option<DatabaseUrl>,
    /// The URL put in `ServerKeyInfo` and invitations; without it,
    /// `https://<public_host>:<bound port>`.
    pub public_url: Option<String>,
    /// The host of the default public URL: the listen address unless that
    /// is unspecified (`0.0.0.0`), then the first `--hostname`, else
    /// `localhost` (see [`default_public_host`]).
    pub public_host: String,
    /// The server's lease limit (PROTOCOL.md §4.1).
    pub lease_limit_secs: u64,
    /// Where signed checkpoints are appended.
    pub checkpoint_path: PathBuf,
    /// How often a checkpoint is written while the chain grows.
    pub checkpoint_interval: Duration,
    /// The off-host copy of the checkpoints, if configured.
    pub checkpoint_sink: Option<SinkSettings>,
    /// The most rows a copy or print takes out without an approved
    /// take-out (PROTOCOL.md §7.3).
    pub take_out_rows: u64,
    /// The detection rules (PROTOCOL.md §12).
    pub detection: crate::detect::Rules,
    /// Each group's working hours (`[working_hours.GROUP]`, PROTOCOL.md
    /// §12.3), a new server's first setting: checked at start.
    pub working_hours: std::collections::BTreeMap<String, irm_core::protocol::WorkingHours>,
    /// Whom a held or suspended person should call, by group (`*`: anyone
    /// else), said in the refusal (PROTOCOL.md §12).
    pub contacts: std::collections::BTreeMap<String, String>,
    /// Where alerts are delivered (`[alerts]`, PROTOCOL.md §12.1), if anywhere.
    pub alerts: Option<crate::alerts::AlertSettings>,
    /// Each group's data owner, who receives its weekly digest
    /// (`[data_owners]`, PROTOCOL.md §7.7), checked at start.
    pub data_owners: std::collections::BTreeMap<String, irm_core::protocol::OwnerContact>,
    /// Where canaries' contact values come from (`[canaries]`, PROTOCOL.md §7.8).
    pub canaries: std::sync::Arc<crate::canary::CanaryPools>,
    /// The longest a request may take (also bounds graceful shutdown).
    pub request_timeout: Duration,
    /// How long shutdown waits for open connections.
    pub shutdown_timeout: Duration,
    /// The most push-channel streams open at once (PROTOCOL.md §13); a
    /// device beyond it falls back to its lease.
    pub max_watchers: usize,
}

impl Settings {
    /// Whom a person in `groups` should call about a hold or suspension:
    /// their first group's contact that is configured, else `*`'s.
    pub fn contact_for(&self, groups: &[String]) -> Option<&str> {
        groups
            .iter()
            .find_map(|group| self.contacts.get(group))
            .or_else(|| self.contacts.get("*"))
            .map(String::as_str)
    }

    /// The public URL, or the default one for a server bound to `port`.
    pub fn public_url_at(&self, port: u16) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("https://{}:{port}", self.public_host))
    }

    /// Defaults for `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Self {
            checkpoint_path: Layout::new(&data_dir).checkpoints(),
            data_dir,
            database_url: None,
            public_url: None,
            public_host: "127.0.0.1".to_owned(),
            lease_limit_secs: DEFAULT_LEASE_LIMIT_SECS,
            checkpoint_interval: Duration::from_secs(60),
            checkpoint_sink: None,
            take_out_rows: irm_core::protocol::DEFAULT_TAKE_OUT_ROWS,
            detection: crate::detect::Rules::default(),
            contacts: std::collections::BTreeMap::new(),
            working_hours: std::collections::BTreeMap::new(),
            alerts: None,
            data_owners: std::collections::BTreeMap::new(),
            canaries: std::sync::Arc::default(),
            request_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(10),
            max_watchers: DEFAULT_MAX_WATCHERS,
        }
    }

    /// Where the state lives.
    pub fn database(&self) -> Database {
        Layout::new(&self.data_dir).database(self.database_url.as_ref())
    }
}

/// Push-channel streams open at once by default: every open document of a
/// call centre of a few thousand seats, several each (PERFORMANCE.md §5
/// measures 10,000).
pub const DEFAULT_MAX_WATCHERS: usize = 20_000;

/// Content keys kept for repeat grants: about 100 bytes each, so a few
/// hundred kilobytes for the files a call centre has open in a day.
const UNWRAP_CACHE_ENTRIES: usize = 4096;

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Storage.
    pub store: Arc<dyn Store>,
    /// Server time.
    pub clock: Arc<dyn Clock>,
    /// The key server's X25519 keys (none while sealed).
    pub keys: Arc<KeyRing>,
    /// The root key's state: sealed, or unsealed with it.
    pub vault: Arc<Vault>,
    /// Signs audit checkpoints; installed last when the keys are unsealed,
    /// so its presence says the server serves.
    audit_key: Arc<RwLock<Option<Arc<SigningSecretKey>>>>,
    /// Its public half, for verifying while sealed too.
    pub audit_public: [u8; 32],
    /// Set once the unsealed keys are installed: what every request checks
    /// (one atomic load, not the lock).
    pub(crate) serving: Arc<AtomicBool>,
    /// The replay cache.
    pub nonces: Arc<NonceCache>,
    /// Wrong enrollments by source address.
    pub enroll_throttle: Arc<crate::auth::enroll_throttle::EnrollThrottle>,
    /// Device and user records of recent requests.
    pub devices: Arc<crate::auth::device_cache::DeviceCache>,
    /// Content keys already unwrapped, for repeat grants of a file.
    pub unwraps: Arc<crate::grant::facts::UnwrapCache>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Settings.
    pub settings: Arc<Settings>,
    /// TLS configuration.
    pub tls: Arc<rustls::ServerConfig>,
    /// The CA certificate clients pin (PEM), served by `GET /v1/ca`.
    pub ca_pem: Arc<str>,
    /// The bound port, for the default public URL.
    pub(crate) port: Arc<AtomicU16>,
    /// The newest checkpoint, for grants, and the sink's progress.
    pub published: Arc<Published>,
    /// The push channel's open streams (PROTOCOL.md §13).
    pub watchers: Arc<crate::push::Watchers>,
    checkpoint_lock: Arc<Mutex<()>>,
}

impl AppState {
    /// Opens an initialised data directory.
    pub fn open(settings: Settings, clock: Arc<dyn Clock>) -> Result<Self, DataDirError> {
        let layout = Layout::new(&settings.data_dir);
        let database = layout.existing_database(settings.database_url.as_ref())?;
        let metrics = Arc::new(Metrics::default());
        let store = database.open(Arc::clone(&metrics))?;
        if !store.is_initialised()? {
            return Err(DataDirError::NotInitialised(settings.data_dir.clone()));
        }
        let (vault, entries) = Vault::open(&settings.data_dir)?;
        let audit_public = datadir::load_audit_public(&layout)?;
        let tls = tls::server_config(&settings.data_dir)?;
        let ca_path = layout.ca_pem();
        let ca_pem: Arc<str> = std::fs::read_to_string(&ca_path)
            .map_err(|source| DataDirError::File {
                path: ca_path.clone(),
                source,
            })?
            .into();
        if let Some(sink) = &settings.checkpoint_sink {
            sink.check().map_err(DataDirError::Sink)?;
        }
        let published = Arc::new(Published::new(settings.checkpoint_sink.clone()));
        let state = Self {
            published,
            watchers: Arc::new(crate::push::Watchers::new(settings.max_watchers)),
            store,
            clock,
            keys: Arc::default(),
            vault: Arc::new(vault),
            audit_key: Arc::default(),
            audit_public,
            serving: Arc::default(),
            nonces: Arc::new(NonceCache::default()),
            enroll_throttle: Arc::default(),
            devices: Arc::new(crate::auth::device_cache::DeviceCache::new(
                std::num::NonZeroUsize::new(4096).expect("non-zero"),
            )),
            metrics,
            settings: Arc::new(settings),
            tls,
            ca_pem,
            port: Arc::new(AtomicU16::new(0)),
            unwraps: Arc::new(crate::grant::facts::UnwrapCache::new(
                std::num::NonZeroUsize::new(UNWRAP_CACHE_ENTRIES).expect("a non-zero constant"),
            )),
            checkpoint_lock: Arc::new(Mutex::new(())),
        };
        state.metrics.sealed(true);
        if let Some(entries) = entries {
            state.install(&entries)?;
        }
        Ok(state)
    }

    /// Puts the unsealed keys to work: the key ring and the audit key, and
    /// then opens the server (`is_serving`).
    pub fn install(&self, entries: &Entries) -> Result<(), DataDirError> {
        self.keys.load(entries, &self.store.keys()?)?;
        let audit_key = datadir::audit_key(entries)?;
        if audit_key.public_key() != self.audit_public {
            return Err(VaultError::BadEntry(
                "audit-signing key (it is not the key audit-signing.pub names)".into(),
            )
            .into());
        }
        // The state ledger's key (PROTOCOL.md §11.3); a keystore from
        // before the ledger gets one now.
        let state_key = match entries.get(crate::vault::STATE_ENTRY) {
            Some(text) => crate::vault::state_key(text)?,
            None => {
                let text = crate::vault::new_state_key()?;
                self.vault.add(crate::vault::STATE_ENTRY, text.clone())?;
                crate::vault::state_key(&text)?
            }
        };
        self.store.arm_ledger(state_key, self.clock.now_ms())?;
        self.store.arm_detection(
            self.settings.detection,
            self.settings.working_hours.clone(),
            self.clock.now_ms(),
        )?;
        *self.audit_key.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(audit_key));
        self.serving.store(true, Ordering::Release);
        self.metrics.sealed(false);
        Ok(())
    }

    /// The audit-signing key, once unsealed.
    pub fn audit_key(&self) -> Option<Arc<SigningSecretKey>> {
        self.audit_key
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// What an operator must hear about the root key, at every start and in
    /// `/healthz`: that the server is sealed and waits for shares, or that
    /// it runs in the bootstrap mode with the root key's only share on disk.
    pub fn seal_warning(&self) -> Option<String> {
        let (sealed, _, threshold, holders, submitted) = self.vault.status();
        if sealed || !self.is_serving() {
            return Some(format!(
                "warning: sealed: the keys are locked and every request but unsealing is refused (server_sealed); {} of {threshold} shares submitted; share holders ({}) each run `irm admin unseal` from their own device",
                submitted.len(),
                holders.join(", ")
            ));
        }
        self.vault.bootstrap_file().map(|file| {
            format!(
                "warning: bootstrap mode: the root key's only share is the file {}, so a copy of the data directory or a backup unwraps every file ever sealed; once two administrators are enrolled, split it among holders: irm admin shares reissue --threshold K --holders NAME,NAME,...",
                file.display()
            )
        })
    }

    /// Whether the keys are unsealed and installed, so requests are served.
    pub fn is_serving(&self) -> bool {
        self.serving.load(Ordering::Acquire)
    }

    /// Runs blocking store work off the async threads.
    pub async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&dyn Store) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || work(store.as_ref()))
            .await
            .map_err(|_| ApiError::from(StoreError::TaskFailed))
    }

    /// The URL sealers write into key-access entries and invitations name.
    pub fn public_url(&self) -> String {
        self.settings
            .public_url_at(self.port.load(Ordering::Relaxed))
    }

    /// The wire form of a key.
    pub fn key_info(&self, key: &KeyRecord) -> ServerKeyInfo {
        ServerKeyInfo {
            key_id: key.key_id.to_string(),
            public_key: key.public_key.to_text(),
            url: self.public_url(),
        }
    }

    /// The current key (blocking).
    pub fn current_key(&self) -> Result<KeyRecord, StoreError> {
        self.store
            .keys()?
            .into_iter()
            .find(|k| k.state == KeyState::Current)
            .ok_or_else(|| StoreError::Corrupt("no current key".into()))
    }

    /// Signs and appends a checkpoint of the committed chain (blocking).
    /// With `only_if_grown`, does nothing unless the chain grew since the last one.
    pub fn write_checkpoint(
        &self,
        only_if_grown: bool,
    ) -> Result<Option<AuditCheckpoint>, StoreError> {
        let _guard = self
            .checkpoint_lock
            .lock()
            .map_err(|_| StoreError::Corrupt("checkpoint lock poisoned".into()))?;
        // Sealed: nothing can sign; the records wait for the first
        // checkpoint after unsealing.
        let Some(audit_key) = self.audit_key() else {
            return Ok(None);
        };
        let (count, head) = self.store.audit_head()?;
        let now_ms = self.clock.now_ms();
        if count == 0 || (only_if_grown && count <= self.published.latest_count()) {
            self.published.retry_sink(now_ms);
            return Ok(None);
        }
        let checkpoint = sign_checkpoint(&audit_key, count, &head, now_ms);
        append_checkpoint(&self.settings.checkpoint_path, &checkpoint)?;
        self.published.publish(checkpoint.clone(), now_ms);
        tracing::info!(count, "audit checkpoint written");
        Ok(Some(checkpoint))
    }

    /// Verifies the stored chain against the checkpoint file (blocking).
    pub fn verify_audit(&self) -> Result<AuditVerifyReport, StoreError> {
        let (checkpoints, unreadable) = read_checkpoints(&self.settings.checkpoint_path)?;
        let grace = unvouched_grace(self.settings.checkpoint_interval);
        let mut verifier = whole_chain_verifier(self.audit_public, checkpoints, unreadable, grace);
        self.store
            .for_each_audit(&mut |record| verifier.push(record))?;
        let mut report = verifier.finish();
        // The rows the decision reads against the log (PROTOCOL.md §11.3).
        let problems = self.store.state_problems()?;
        if !problems.is_empty() {
            report.ok = false;
            report.problems.extend(problems);
        }
        Ok(report)
    }
}

/// How long records may go unconfirmed by a checkpoint behind the newest
/// one while a server checkpoints every `interval`: two intervals (a slow
/// tick), and at least a minute.
pub fn unvouched_grace(interval: Duration) -> Duration {
    (interval * 2).max(Duration::from_secs(60))
}

/// A verifier of a server's whole chain: every checkpoint line that did not
/// parse is a problem, and records must be confirmed by a checkpoint except
/// for a tail younger than `grace` (PROTOCOL.md §9).
fn whole_chain_verifier(
    trusted: [u8; 32],
    checkpoints: Vec<AuditCheckpoint>,
    unreadable: Vec<String>,
    grace: Duration,
) -> ChainVerifier {
    let grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
    let mut verifier = ChainVerifier::new(trusted, checkpoints).require_vouched(grace_ms);
    for problem in unreadable {
        verifier.problem(problem);
    }
    verifier
}

/// Offline verification (`irm-key-server audit verify`): the database (the
/// SQLite file in the data directory, or PostgreSQL at `database_url`) and
/// the checkpoint file of a data directory, read only, plus `witnessed`
/// checkpoints kept elsewhere (the off-host sink's, a device's) with the
/// problem lines of theirs that did not parse. Records behind the newest by
/// more than `grace` must be confirmed by a checkpoint.
pub fn verify_offline(
    data_dir: &std::path::Path,
    database_url: Option<&DatabaseUrl>,
    checkpoints: Option<&std::path::Path>,
    witnessed: (Vec<AuditCheckpoint>, Vec<String>),
    grace: Duration,
) -> Result<AuditVerifyReport, DataDirError> {
    let layout = Layout::new(data_dir);
    let database = layout.existing_database(database_url)?;
    let trusted = datadir::load_audit_public(&layout)?;
    let path = checkpoints.map_or_else(|| layout.checkpoints(), ToOwned::to_owned);
    let (mut checkpoints, mut unreadable) =
        read_checkpoints(&path).map_err(|source| DataDirError::File {
            path: path.clone(),
            source,
        })?;
    // A chain with no checkpoint of its own is a problem even when a
    // witness holds some: the local file was deleted.
    let local = checkpoints.len();
    checkpoints.extend(witnessed.0);
    unreadable.extend(witnessed.1);
    let mut verifier = whole_chain_verifier(trusted, checkpoints, unreadable, grace);
    database.for_each_audit_read_only(&mut |record| verifier.push(record))?;
    let mut report = verifier.finish();
    if local == 0 && report.records > 0 && report.checkpoints > 0 {
        report.ok = false;
        report.problems.push(format!(
            "the chain holds {} records and {} holds no checkpoint (only witnesses do): the checkpoint file was deleted or emptied",
            report.records,
            path.display()
        ));
    }
    Ok(report)
}

/// The host clients are told to reach when no public URL is configured:
/// the address the server listens on, unless that is every address, then
/// the first extra certificate name, else `localhost` (which only works on
/// the server's own host: `serve` warns then).
pub fn default_public_host(listen: std::net::SocketAddr, hostnames: &[String]) -> String {
    match listen.ip() {
        ip if ip.is_unspecified() => hostnames
            .first()
            .cloned()
            .unwrap_or_else(|| "localhost".to_owned()),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    }
}
