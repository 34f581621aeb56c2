//! The server's keys sealed at rest (PROTOCOL.md §11.2). A root key, which
//! exists on disk only as shares, encrypts the keystore that holds every
//! private key of the server but the TLS server key. This module owns the
//! root key's life: creating it, migrating a data directory from before
//! sealing, opening in the bootstrap mode, collecting submitted shares while
//! sealed, and splitting it anew (with a fresh root key) for new holders.
//! What the keys are used for is the rest of the server's business.

mod error;
pub mod keystore;
pub mod shares;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use irm_core::protocol::{SealMode, WrappedShareInfo};
use irm_core::{DevicePublicKey, ShareContext};
use zeroize::Zeroizing;

pub use error::VaultError;
pub use keystore::{AUDIT_ENTRY, CA_ENTRY, Entries, RootKey, STATE_ENTRY, kas_entry};
use shares::{DeviceShare, Holder, Share, ShareSet};

/// What a submitted share did.
#[derive(Debug)]
pub enum Submitted {
    /// Accepted; more are needed.
    Waiting {
        /// Holders whose shares the server has, sorted.
        submitted: Vec<String>,
        /// Shares needed.
        threshold: u8,
    },
    /// The last one needed: the keystore, opened.
    Unsealed(Entries),
    /// The server was not sealed.
    NotSealed,
    /// The share is not the caller's, or not a share of this root key.
    Wrong(String),
}

enum State {
    Sealed {
        set: ShareSet,
        submitted: BTreeMap<u8, (String, Share)>,
    },
    Unsealed {
        root: RootKey,
        set: Option<ShareSet>,
    },
}

/// The root key's state: sealed (with the shares submitted so far) or
/// unsealed (with the root key, to write new keys and reissue shares).
pub struct Vault {
    dir: PathBuf,
    state: Mutex<State>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("dir", &self.dir)
            .field("sealed", &self.is_sealed())
            .finish_non_exhaustive()
    }
}

/// The legacy (before sealing) plaintext key files of a data directory.
fn legacy_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut files = vec![
        (AUDIT_ENTRY.to_owned(), dir.join("audit-signing.key")),
        (CA_ENTRY.to_owned(), dir.join("tls").join("ca.key")),
    ];
    if let Ok(entries) = std::fs::read_dir(dir.join("kas")) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(".key") {
                files.push((format!("kas/{id}"), entry.path()));
            }
        }
    }
    files.retain(|(_, path)| path.exists());
    files
}

impl Vault {
    /// A new server's vault: a fresh root key seals `entries`, and its one
    /// share goes to the bootstrap file.
    pub fn initialise(dir: &Path, entries: &Entries) -> Result<Self, VaultError> {
        let root = RootKey::generate()?;
        keystore::write(dir, &root, entries)?;
        shares::write_bootstrap(dir, &root)?;
        Ok(Self {
            dir: dir.to_owned(),
            state: Mutex::new(State::Unsealed { root, set: None }),
        })
    }

    /// Opens the vault of an initialised data directory: sealed if its root
    /// key is shared among holders (the keystore then opens only when they
    /// submit their shares), else opened with the bootstrap share. A data
    /// directory from before sealing is migrated first: its plaintext key
    /// files are sealed into a keystore and then deleted.
    pub fn open(dir: &Path) -> Result<(Self, Option<Entries>), VaultError> {
        if let Some(set) = shares::read(dir)? {
            tidy(dir, &set.root_id);
            let vault = Self {
                dir: dir.to_owned(),
                state: Mutex::new(State::Sealed {
                    set,
                    submitted: BTreeMap::new(),
                }),
            };
            return Ok((vault, None));
        }
        let root = match shares::read_bootstrap(dir)? {
            Some(root) => root,
            None => migrate(dir)?,
        };
        let entries = keystore::read(dir, &root)?;
        tidy(dir, &root.id());
        let vault = Self {
            dir: dir.to_owned(),
            state: Mutex::new(State::Unsealed { root, set: None }),
        };
        Ok((vault, Some(entries)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state as it was before
        // the operation (every change is one assignment), so it stays usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the keys are still sealed.
    pub fn is_sealed(&self) -> bool {
        matches!(*self.lock(), State::Sealed { .. })
    }

    /// How the root key is held, the threshold, the holders and (while
    /// sealed) who has submitted.
    pub fn status(&self) -> (bool, SealMode, u8, Vec<String>, Vec<String>) {
        match &*self.lock() {
            State::Sealed { set, submitted } => {
                let mut who: Vec<String> = submitted.values().map(|(u, _)| u.clone()).collect();
                who.sort();
                (
                    true,
                    SealMode::Shares,
                    set.threshold,
                    set.holder_names(),
                    who,
                )
            }
            State::Unsealed { set: Some(set), .. } => (
                false,
                SealMode::Shares,
                set.threshold,
                set.holder_names(),
                Vec::new(),
            ),
            State::Unsealed { set: None, .. } => {
                (false, SealMode::Bootstrap, 1, Vec::new(), Vec::new())
            }
        }
    }

    /// The bootstrap share's file, while the server runs in that mode.
    pub fn bootstrap_file(&self) -> Option<PathBuf> {
        matches!(*self.lock(), State::Unsealed { set: None, .. })
            .then(|| shares::bootstrap_path(&self.dir))
    }

    /// `user`'s share wrapped to `device_id`, if they hold one.
    pub fn share_for(&self, user: &str, device_id: &str) -> Option<WrappedShareInfo> {
        let state = self.lock();
        let set = match &*state {
            State::Sealed { set, .. } | State::Unsealed { set: Some(set), .. } => set,
            State::Unsealed { set: None, .. } => return None,
        };
        let holder = set.holders.iter().find(|h| h.user == user)?;
        let device = holder.devices.iter().find(|d| d.device_id == device_id)?;
        Some(WrappedShareInfo {
            root_id: set.root_id.clone(),
            index: holder.index,
            ephemeral_public: device.ephemeral_public.clone(),
            ciphertext: device.ciphertext.clone(),
        })
    }

    /// `user` submits share `index` of root key `root_id`. The last share
    /// needed opens the keystore.
    pub fn submit(
        &self,
        user: &str,
        root_id: &str,
        index: u8,
        share: Share,
    ) -> Result<Submitted, VaultError> {
        let mut state = self.lock();
        let State::Sealed { set, submitted } = &mut *state else {
            return Ok(Submitted::NotSealed);
        };
        if root_id != set.root_id {
            return Ok(Submitted::Wrong(format!(
                "the share is for root key {root_id}, but this server's is {}; the shares were reissued since: fetch yours again",
                set.root_id
            )));
        }
        match set.check(index, &share) {
            Some(holder) if holder.user == user => {}
            Some(holder) => {
                return Ok(Submitted::Wrong(format!(
                    "share {index} is {}'s: each holder submits their own, from their own device",
                    holder.user
                )));
            }
            None => {
                return Ok(Submitted::Wrong(format!(
                    "that is not share {index} of this server's root key"
                )));
            }
        }
        submitted.insert(index, (user.to_owned(), share));
        if submitted.len() < usize::from(set.threshold) {
            let mut who: Vec<String> = submitted.values().map(|(u, _)| u.clone()).collect();
            who.sort();
            return Ok(Submitted::Waiting {
                submitted: who,
                threshold: set.threshold,
            });
        }
        let chosen: Vec<Share> = submitted.values().map(|(_, s)| s.clone()).collect();
        let Some(root) = shares::combine(&chosen, &set.root_id) else {
            // Each share matched its hash, so this needs a share set whose
            // threshold was altered on disk.
            submitted.clear();
            return Ok(Submitted::Wrong(
                "the submitted shares do not combine to the root key (the share set's threshold was altered?); submit them again"
                    .into(),
            ));
        };
        let entries = keystore::read(&self.dir, &root)?;
        let set = set.clone();
        *state = State::Unsealed {
            root,
            set: Some(set),
        };
        Ok(Submitted::Unsealed(entries))
    }

    /// Adds a secret to the keystore (a new key server key). Needs the root key.
    pub fn add(&self, name: &str, secret: Zeroizing<String>) -> Result<(), VaultError> {
        let state = self.lock();
        let State::Unsealed { root, .. } = &*state else {
            return Err(VaultError::Sealed);
        };
        let mut entries = keystore::read(&self.dir, root)?;
        entries.insert(name, secret);
        keystore::write(&self.dir, root, &entries)
    }

    /// Splits a fresh root key among `holders` (each with their devices'
    /// ids and public keys), `threshold` of whom unseal: the keystore is
    /// sealed anew under it, the share set written (the moment it takes
    /// effect), and the old keystore and the bootstrap share deleted. Old
    /// shares then open nothing.
    pub fn reissue(
        &self,
        threshold: u8,
        holders: &[(String, Vec<(String, DevicePublicKey)>)],
        now: u64,
    ) -> Result<ShareSet, VaultError> {
        let mut state = self.lock();
        let State::Unsealed { root: old, .. } = &*state else {
            return Err(VaultError::Sealed);
        };
        let count = u8::try_from(holders.len())
            .map_err(|_| VaultError::Sharing("at most 255 holders".into()))?;
        let entries = keystore::read(&self.dir, old)?;
        let root = RootKey::generate()?;
        let root_id = root.id();
        let split = shares::split(&root, threshold, count)?;
        let mut issued = Vec::new();
        for ((user, devices), share) in holders.iter().zip(&split) {
            let index = share[0];
            let mut wrapped = Vec::new();
            for (device_id, public) in devices {
                let context = share_context(&root_id, index, device_id)
                    .ok_or_else(|| VaultError::Sharing(format!("device id {device_id}")))?;
                let share = irm_core::wrap_share(share, public, &context)
                    .map_err(|e| VaultError::Sharing(e.to_string()))?;
                wrapped.push(DeviceShare {
                    device_id: device_id.clone(),
                    ephemeral_public: URL_SAFE_NO_PAD.encode(share.ephemeral_public),
                    ciphertext: URL_SAFE_NO_PAD.encode(&share.ciphertext),
                });
            }
            issued.push(Holder {
                user: user.clone(),
                index,
                share_hash: shares::share_hash(&root_id, share),
                devices: wrapped,
            });
        }
        issued.sort_by(|a, b| a.user.cmp(&b.user));
        let set = ShareSet::new(root_id.clone(), threshold, now, issued);
        keystore::write(&self.dir, &root, &entries)?;
        shares::write(&self.dir, &set)?;
        tidy(&self.dir, &root_id);
        *state = State::Unsealed {
            root,
            set: Some(set.clone()),
        };
        Ok(set)
    }
}

/// A fresh state ledger key, as its keystore entry holds it.
pub fn new_state_key() -> Result<Zeroizing<String>, VaultError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(bytes.as_mut()).map_err(|_| VaultError::Random)?;
    Ok(Zeroizing::new(hex::encode(bytes.as_ref())))
}

/// The state ledger key an entry holds.
pub fn state_key(text: &str) -> Result<crate::store::StateKey, VaultError> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut bytes)
        .map_err(|_| VaultError::BadEntry("state ledger key".into()))?;
    let key = crate::store::StateKey::new(bytes);
    zeroize::Zeroize::zeroize(&mut bytes);
    Ok(key)
}

/// The context a share is wrapped in.
pub fn share_context(root_id: &str, index: u8, device_id: &str) -> Option<ShareContext> {
    Some(ShareContext {
        root_id: hex::decode(root_id).ok()?.try_into().ok()?,
        index,
        device_id: hex::decode(device_id).ok()?.try_into().ok()?,
    })
}

/// Deletes what a finished (or interrupted) reissue or migration left
/// behind: keystores of other root keys and, once shares exist, the
/// bootstrap share. Best effort: what cannot be deleted is logged.
fn tidy(dir: &Path, root_id: &str) {
    let keep = keystore::path(dir, root_id);
    let mut stale: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p != &keep
                        && p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with("keystore-") && n.ends_with(".json"))
                })
                .collect()
        })
        .unwrap_or_default();
    if shares::path(dir).exists() {
        stale.push(shares::bootstrap_path(dir));
    }
    for path in stale {
        match std::fs::remove_file(&path) {
            Ok(()) => {
                tracing::info!(file = %path.display(), "deleted a key file of an old root key")
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "could not delete a key file of an old root key; delete it by hand")
            }
        }
    }
}

/// Seals the plaintext key files of a data directory from before sealing
/// into a keystore under a fresh root key (bootstrap mode), then deletes them.
fn migrate(dir: &Path) -> Result<RootKey, VaultError> {
    let files = legacy_files(dir);
    if !files.iter().any(|(name, _)| name == AUDIT_ENTRY) {
        return Err(VaultError::NoRootShare(dir.to_owned()));
    }
    let mut entries = Entries::default();
    for (name, path) in &files {
        let text = std::fs::read_to_string(path).map_err(|source| VaultError::File {
            path: path.clone(),
            source,
        })?;
        entries.insert(name.clone(), Zeroizing::new(text.trim().to_owned()));
    }
    let root = RootKey::generate()?;
    keystore::write(dir, &root, &entries)?;
    shares::write_bootstrap(dir, &root)?;
    for (_, path) in &files {
        std::fs::remove_file(path).map_err(|source| VaultError::File {
            path: path.clone(),
            source,
        })?;
    }
    let _ = std::fs::remove_dir(dir.join("kas"));
    tracing::warn!(
        dir = %dir.display(),
        "sealed the plaintext key files of this data directory into a keystore (bootstrap mode); reissue shares to take the root key off the disk"
    );
    Ok(root)
}
