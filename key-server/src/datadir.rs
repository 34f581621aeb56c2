//! The data directory: its layout, first-start initialisation (database,
//! key server key, audit-signing key, TLS CA and certificate, bootstrap
//! administrator) and the key ring loaded from the opened keystore. Secret
//! files are created 0600 from their first byte and renamed into place, so
//! they are never readable by others, not even briefly, and never half
//! written. Private keys are never written in the clear: they are sealed in
//! the keystore under the root key (`vault`, PROTOCOL.md §11.2).
//!
//! ```text
//! DIR/                            0700
//! DIR/irm-key-server.db           SQLite (WAL), unless the state is in PostgreSQL
//! DIR/keystore-<root id>.json     0600  key server keys, audit-signing key, TLS CA key,
//!                                       sealed under the root key
//! DIR/bootstrap-share.key         0600  the root key's only share, until shares are reissued
//! DIR/unseal-shares.json          0600  the holders' shares, each wrapped to their devices
//! DIR/audit-signing.pub                 the audit key's public half, for offline verification
//! DIR/tls/ca.pem, server.pem            the private CA and the server certificate
//! DIR/tls/server.key              0600  (in the clear: the server answers TLS while sealed)
//! DIR/audit-checkpoints.jsonl           signed checkpoints (default location)
//! ```

use std::collections::HashMap;
use std::fs::DirBuilder;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use irm_core::audit::AuditPublicKey;
use irm_core::protocol::Role;
use irm_core::{KasSecretKey, KeyId, SigningSecretKey};

use crate::clock::Clock;
use crate::codes;
use crate::error::StoreError;
use crate::metrics::Metrics;
use crate::store::{Database, DatabaseUrl, KeyRecord, NewUser, Store};
use crate::tls::{self, TlsError};
use crate::vault::{self, Entries, Vault, VaultError};
use irm_core::protocol::KeyState;

/// The database file name.
pub const DB_FILE: &str = "irm-key-server.db";
/// Its public half.
pub const AUDIT_PUB_FILE: &str = "audit-signing.pub";
/// The default checkpoint file name.
pub const CHECKPOINT_FILE: &str = "audit-checkpoints.jsonl";

/// Initialising or opening the data directory failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataDirError {
    /// The directory already holds an initialised key server.
    #[error("{0} is already initialised")]
    AlreadyInitialised(PathBuf),
    /// The directory holds other files: refuse rather than scatter keys
    /// among them (or make someone's home directory private).
    #[error("{0} is not empty and holds no key server database; give an empty or new directory")]
    NotEmpty(PathBuf),
    /// The directory holds files, but the PostgreSQL database named for it
    /// holds no key server: most likely the wrong database, and setting up
    /// a new server there would leave this directory's keys behind.
    #[error(
        "the PostgreSQL database given by --database-url (or IRM_KS_DATABASE_URL) holds no key server, but {0} is not empty; check that the URL names this server's database, or give an empty or new directory to set up a new server in that database"
    )]
    DatabaseHoldsNoServer(PathBuf),
    /// The directory holds no initialised key server.
    #[error("{0} is not an initialised key server data directory; run `irm-key-server init`")]
    NotInitialised(PathBuf),
    /// A file could not be read or written.
    #[error("{path}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// A key file does not hold a key.
    #[error("{0} does not hold a valid key")]
    BadKey(PathBuf),
    /// Random number generation failed.
    #[error("the system random number generator failed")]
    Random,
    /// The off-host checkpoint sink is not usable.
    #[error("{0}")]
    Sink(String),
    /// TLS material.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The sealed keys.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The store.
    #[error("the database")]
    Store(#[from] StoreError),
    /// The store refused what was asked, for the reason given.
    #[error("{0}")]
    Refused(String),
}

fn file_err(path: &Path) -> impl FnOnce(std::io::Error) -> DataDirError + '_ {
    move |source| DataDirError::File {
        path: path.to_owned(),
        source,
    }
}

/// Where things live in a data directory.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The directory.
    pub dir: PathBuf,
}

impl Layout {
    /// The layout of `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
    /// The SQLite database.
    pub fn db(&self) -> PathBuf {
        self.dir.join(DB_FILE)
    }
    /// Where the state lives: PostgreSQL at `url` if one is given, else the
    /// SQLite file here.
    pub fn database(&self, url: Option<&DatabaseUrl>) -> Database {
        match url {
            Some(url) => Database::Postgres(url.clone()),
            None => Database::Sqlite(self.db()),
        }
    }
    /// The store of an initialised directory: like [`Layout::database`], but
    /// an SQLite file that is not there is refused rather than opened (which
    /// would create an empty one).
    pub fn existing_database(&self, url: Option<&DatabaseUrl>) -> Result<Database, DataDirError> {
        let database = self.database(url);
        if let Database::Sqlite(path) = &database
            && !path.exists()
        {
            return Err(DataDirError::NotInitialised(self.dir.clone()));
        }
        Ok(database)
    }
    /// Its public half.
    pub fn audit_pub(&self) -> PathBuf {
        self.dir.join(AUDIT_PUB_FILE)
    }
    /// The bootstrap administrator's invitation, written once at
    /// initialisation (mode 0600) for an operator who missed the printed
    /// line; it holds no more than the bootstrap share beside it.
    pub fn bootstrap_invitation(&self) -> PathBuf {
        self.dir.join("bootstrap-invitation.txt")
    }
    /// The CA certificate clients trust.
    pub fn ca_pem(&self) -> PathBuf {
        self.dir.join("tls").join("ca.pem")
    }
    /// The default checkpoint file.
    pub fn checkpoints(&self) -> PathBuf {
        self.dir.join(CHECKPOINT_FILE)
    }
}

/// What initialisation produced.
#[derive(Debug)]
pub struct InitReport {
    /// The bootstrap administrator's name.
    pub admin: String,
    /// Their one-time enrollment code (shown once, stored only as a hash).
    pub admin_code: String,
    /// When the code expires (Unix seconds).
    pub code_expires_at: u64,
    /// The first key server key.
    pub key_id: KeyId,
}

/// A new key server key, sealed into the keystore, and its record.
pub fn create_kas_key(
    vault: &Vault,
    state: KeyState,
    now: u64,
) -> Result<(KasSecretKey, KeyRecord), DataDirError> {
    let key = KasSecretKey::generate().map_err(|_| DataDirError::Random)?;
    let id = key.key_id();
    vault.add(&vault::kas_entry(&id), key.to_text())?;
    let record = KeyRecord {
        key_id: id,
        public_key: key.public_key(),
        state,
        created_at: now,
    };
    Ok((key, record))
}

/// First start: creates everything in `dir` (which may exist and be empty),
/// with the state in SQLite there.
pub fn init(
    dir: &Path,
    hostnames: &[String],
    bootstrap_admin: &str,
    clock: &dyn Clock,
) -> Result<InitReport, DataDirError> {
    init_with(dir, None, hostnames, bootstrap_admin, clock)
}

/// First start: creates everything in `dir` (which may exist and be empty),
/// with the state in PostgreSQL at `database_url` if one is given (the
/// directory still holds the keys, the TLS material and the checkpoints),
/// else in SQLite in `dir`.
pub fn init_with(
    dir: &Path,
    database_url: Option<&DatabaseUrl>,
    hostnames: &[String],
    bootstrap_admin: &str,
    clock: &dyn Clock,
) -> Result<InitReport, DataDirError> {
    let layout = Layout::new(dir);
    let database = layout.database(database_url);
    let has_other_files = std::fs::read_dir(dir)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    let metrics = Arc::new(Metrics::default());
    let mut store: Option<Arc<dyn Store>> = None;
    match &database {
        Database::Sqlite(db) => {
            if has_other_files && !db.exists() {
                return Err(DataDirError::NotEmpty(dir.to_owned()));
            }
        }
        _ => {
            // The database, not the directory, says whether this server
            // was set up: `serve` comes here on every start.
            let opened = database.open(Arc::clone(&metrics))?;
            if opened.is_initialised()? {
                return Err(DataDirError::AlreadyInitialised(dir.to_owned()));
            }
            if has_other_files {
                return Err(DataDirError::DatabaseHoldsNoServer(dir.to_owned()));
            }
            store = Some(opened);
        }
    }
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(file_err(dir))?;
    // An existing directory is made private too: it will hold the keys.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(file_err(dir))?;
    if let Database::Sqlite(db) = &database
        && db.exists()
    {
        let opened = database.open(Arc::clone(&metrics))?;
        if opened.is_initialised()? {
            return Err(DataDirError::AlreadyInitialised(dir.to_owned()));
        }
        store = Some(opened);
    }
    let now_ms = clock.now_ms();
    let now = now_ms / 1000;
    // Every private key but the TLS server key goes into the keystore,
    // sealed under a fresh root key whose one share is the bootstrap file.
    let kas_key = KasSecretKey::generate().map_err(|_| DataDirError::Random)?;
    let key = KeyRecord {
        key_id: kas_key.key_id(),
        public_key: kas_key.public_key(),
        state: KeyState::Current,
        created_at: now,
    };
    let audit_key = SigningSecretKey::generate().map_err(|_| DataDirError::Random)?;
    let ca_key = tls::generate(dir, hostnames, now)?;
    let mut entries = Entries::default();
    entries.insert(vault::kas_entry(&key.key_id), kas_key.to_text());
    entries.insert(vault::AUDIT_ENTRY, audit_key.to_text());
    entries.insert(vault::CA_ENTRY, ca_key);
    entries.insert(vault::STATE_ENTRY, vault::new_state_key()?);
    Vault::initialise(dir, &entries)?;
    let path = layout.audit_pub();
    let text = AuditPublicKey(audit_key.public_key()).to_text();
    std::fs::write(&path, format!("{text}\n")).map_err(file_err(&path))?;

    let (code, code_issue) =
        codes::issue(now, "issued_by=server.init").map_err(|_| DataDirError::Random)?;
    let expires_at = code_issue.expires_at;
    let store = match store {
        Some(store) => store,
        None => database.open(metrics)?,
    };
    store.initialise(
        NewUser {
            name: bootstrap_admin.to_owned(),
            display_name: bootstrap_admin.to_owned(),
            roles: vec![Role::Admin],
            groups: Vec::new(),
            code: code_issue,
        },
        key.clone(),
        now_ms,
    )?;
    // The first checkpoint, so that the chain is never without one: a
    // verifier takes a chain with records and no checkpoint for a deleted
    // checkpoint file (PROTOCOL.md §9).
    let (count, head) = store.audit_head()?;
    let checkpoint = crate::audit::sign_checkpoint(&audit_key, count, &head, now_ms);
    let path = layout.checkpoints();
    crate::audit::append_checkpoint(&path, &checkpoint).map_err(file_err(&path))?;
    // The last reference: dropping it stops the writer once the bootstrap
    // is durable.
    drop(store);
    Ok(InitReport {
        admin: bootstrap_admin.to_owned(),
        admin_code: code.to_string(),
        code_expires_at: expires_at,
        key_id: key.key_id,
    })
}

/// A code issued by [`recover_admin_code`], to be shown once.
#[derive(Debug)]
pub struct RecoveredCode {
    /// The administrator.
    pub user: String,
    /// The one-time code.
    pub code: String,
    /// Unix seconds.
    pub expires_at: u64,
}

/// `irm-key-server recover-code` (PROTOCOL.md §7.1): a fresh enrollment code
/// for administrator `user` of a server with at most one, written through
/// the store's writer (so refused while a server serves this database) and
/// audited with `reason`.
pub fn recover_admin_code(
    data_dir: &Path,
    database_url: Option<&DatabaseUrl>,
    user: &str,
    reason: &str,
    clock: &dyn Clock,
) -> Result<RecoveredCode, DataDirError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.len() > 256 || reason.chars().any(char::is_control) {
        return Err(DataDirError::Refused(
            "--reason must say why in 1 to 256 printable characters (a ticket id, for example)"
                .into(),
        ));
    }
    let database = Layout::new(data_dir).existing_database(database_url)?;
    let store = database.open(Arc::new(Metrics::default()))?;
    if !store.is_initialised()? {
        return Err(DataDirError::NotInitialised(data_dir.to_owned()));
    }
    // The code goes into the state ledger like any other (PROTOCOL.md
    // §11.3), which needs the ledger's key: readable here only while the
    // root key's one share is the bootstrap file.
    let (_, entries) = Vault::open(data_dir)?;
    let Some(entries) = entries else {
        return Err(DataDirError::Refused(
            "the server's keys are sealed under shares, so recover-code cannot vouch for a new code; start the server, have the share holders unseal it (irm admin unseal), and have another administrator file the code (irm admin user code NAME)"
                .into(),
        ));
    };
    let key = entries
        .get(vault::STATE_ENTRY)
        .map(vault::state_key)
        .transpose()?
        .ok_or_else(|| VaultError::MissingEntry("state ledger key".into()))?;
    store.arm_ledger(key, clock.now_ms())?;
    let (code, issue) = codes::issue(clock.now_secs(), "issued_by=recover-code")
        .map_err(|_| DataDirError::Random)?;
    let expires_at = issue.expires_at;
    let outcome =
        store.recover_admin_code(user.to_owned(), issue, reason.to_owned(), clock.now_ms())?;
    // The last reference: dropping it stops the writer once the record is
    // durable, and releases the writer lock.
    drop(store);
    match outcome {
        Ok(_) => Ok(RecoveredCode {
            user: user.to_owned(),
            code: code.to_string(),
            expires_at,
        }),
        Err(refusal) => Err(DataDirError::Refused(refusal.to_string())),
    }
}

/// The audit-signing key from the opened keystore.
pub fn audit_key(entries: &Entries) -> Result<SigningSecretKey, VaultError> {
    let text = entries
        .get(vault::AUDIT_ENTRY)
        .ok_or_else(|| VaultError::MissingEntry("audit-signing key".into()))?;
    SigningSecretKey::from_text(text).map_err(|_| VaultError::BadEntry("audit-signing key".into()))
}

/// Reads the audit-signing public key from `audit-signing.pub`.
pub fn load_audit_public(layout: &Layout) -> Result<[u8; 32], DataDirError> {
    read_audit_public(&layout.audit_pub())
}

/// Reads an audit-signing public key file (`audit-signing.pub`, or a copy a
/// third party was given) for verifying an export offline.
pub fn read_audit_public(path: &Path) -> Result<[u8; 32], DataDirError> {
    let text = std::fs::read_to_string(path).map_err(file_err(path))?;
    parse_audit_public(&text).ok_or_else(|| DataDirError::BadKey(path.to_owned()))
}

fn parse_audit_public(text: &str) -> Option<[u8; 32]> {
    AuditPublicKey::from_text(text).ok().map(|key| key.0)
}

/// The key server's X25519 keys in memory, by id. Retired keys stay loaded
/// (so a retired file is answered `key_retired`, not `key_unknown`).
#[derive(Debug, Default)]
pub struct KeyRing {
    keys: RwLock<HashMap<KeyId, Arc<KasSecretKey>>>,
}

impl KeyRing {
    /// Loads every stored key from the opened keystore into this (empty)
    /// ring. A retired key may be missing; any other missing key is an error.
    pub fn load(&self, entries: &Entries, records: &[KeyRecord]) -> Result<(), VaultError> {
        for record in records {
            let name = vault::kas_entry(&record.key_id);
            let Some(text) = entries.get(&name) else {
                if record.state == KeyState::Retired {
                    continue;
                }
                return Err(VaultError::MissingEntry(format!("key server key {name}")));
            };
            let key =
                KasSecretKey::from_text(text).map_err(|_| VaultError::BadEntry(name.clone()))?;
            if key.key_id() != record.key_id {
                return Err(VaultError::BadEntry(name));
            }
            self.insert(key);
        }
        Ok(())
    }

    /// Adds a key.
    pub fn insert(&self, key: KasSecretKey) {
        if let Ok(mut keys) = self.keys.write() {
            keys.insert(key.key_id(), Arc::new(key));
        }
    }

    /// The key with this id.
    pub fn get(&self, id: &KeyId) -> Option<Arc<KasSecretKey>> {
        self.keys.read().ok().and_then(|keys| keys.get(id).cloned())
    }
}
