//! The root key and the keystore it protects (PROTOCOL.md §11.2): every
//! private key of the server except the TLS server key (the key server
//! keys, the audit-signing key, the TLS CA key), each sealed with
//! AES-256-GCM under a key derived from the root key, in one file named
//! after the root key's id. Nothing here is written in the clear.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::error::VaultError;
use crate::secret_file::write_secret_file;

/// The keystore file's format name, also the first part of every entry's
/// associated data.
const FORMAT: &str = "irm-keystore-1";
/// HKDF `info` of the keystore's encryption key.
const INFO_KEYSTORE: &[u8] = b"irm/v1/keystore";
/// The SHA-256 label of a root key's id.
const ROOT_ID_LABEL: &[u8] = b"irm/v1/root-id";

/// The name of the audit-signing key's entry.
pub const AUDIT_ENTRY: &str = "audit-signing";
/// The name of the TLS CA key's entry (PEM).
pub const CA_ENTRY: &str = "tls-ca";
/// The name of the state ledger key's entry (64 hex digits, PROTOCOL.md §11.3).
pub const STATE_ENTRY: &str = "state-mac";

/// The name of a key server key's entry.
pub fn kas_entry(key_id: &irm_core::KeyId) -> String {
    format!("kas/{key_id}")
}

/// The 32-byte root key. Exists on disk only as shares (or, in the
/// bootstrap mode, as the one share file).
pub struct RootKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RootKey({})", self.id())
    }
}

impl RootKey {
    /// A fresh random root key.
    pub fn generate() -> Result<Self, VaultError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut()).map_err(|_| VaultError::Random)?;
        Ok(Self(bytes))
    }

    /// A root key from its bytes (combined shares, the bootstrap file).
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let bytes: [u8; 32] = bytes.try_into().ok()?;
        Some(Self(Zeroizing::new(bytes)))
    }

    /// The bytes, to split into shares.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// Its public id: the first 16 bytes of SHA-256 over a label and the
    /// key, in hex. Names the keystore file and the shares; reveals nothing
    /// of a 256-bit random key.
    pub fn id(&self) -> String {
        let digest = Sha256::new()
            .chain_update(ROOT_ID_LABEL)
            .chain_update(self.0.as_ref())
            .finalize();
        hex::encode(&digest[..16])
    }

    fn cipher(&self) -> Aes256Gcm {
        let mut key = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(None, self.0.as_ref())
            .expand(INFO_KEYSTORE, key.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 length");
        Aes256Gcm::new((&*key).into())
    }
}

/// The keystore file of root key `root_id` in `dir`.
pub fn path(dir: &Path, root_id: &str) -> PathBuf {
    dir.join(format!("keystore-{root_id}.json"))
}

#[derive(Serialize, Deserialize)]
struct File {
    format: String,
    root_id: String,
    /// Entry name -> base64url of a 12-byte nonce and the ciphertext.
    entries: BTreeMap<String, String>,
}

/// The decrypted keystore: entry name to secret text. Zeroized on drop.
#[derive(Default)]
pub struct Entries(BTreeMap<String, Zeroizing<String>>);

impl std::fmt::Debug for Entries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl Entries {
    /// Adds or replaces an entry.
    pub fn insert(&mut self, name: impl Into<String>, secret: Zeroizing<String>) {
        self.0.insert(name.into(), secret);
    }

    /// An entry's secret text.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|s| s.as_str())
    }

    /// Every entry.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

fn associated_data(root_id: &str, name: &str) -> Vec<u8> {
    format!("{FORMAT}\n{root_id}\n{name}").into_bytes()
}

/// Seals `entries` under `root` and writes them (0600, atomically) to the
/// keystore file of `root` in `dir`.
pub fn write(dir: &Path, root: &RootKey, entries: &Entries) -> Result<(), VaultError> {
    let root_id = root.id();
    let cipher = root.cipher();
    let mut sealed = BTreeMap::new();
    for (name, secret) in entries.iter() {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|_| VaultError::Random)?;
        let mut bytes = nonce.to_vec();
        bytes.extend(
            cipher
                .encrypt(
                    &Nonce::from(nonce),
                    Payload {
                        msg: secret.as_bytes(),
                        aad: &associated_data(&root_id, name),
                    },
                )
                // Only a message past AES-GCM's 64 GiB limit fails: a key
                // is a few hundred bytes. ("The random number generator
                // failed" would have sent people looking in the wrong place.)
                .expect("AES-GCM encryption of a key's text cannot fail"),
        );
        sealed.insert(name.to_owned(), URL_SAFE_NO_PAD.encode(bytes));
    }
    let file = File {
        format: FORMAT.to_owned(),
        root_id: root_id.clone(),
        entries: sealed,
    };
    let path = path(dir, &root_id);
    let mut text = serde_json::to_string_pretty(&file).expect("a keystore serialises");
    text.push('\n');
    write_secret_file(&path, text.as_bytes()).map_err(|source| VaultError::File { path, source })
}

/// Reads and opens the keystore of `root` in `dir`. Fails if any entry was
/// altered, moved between names or sealed under another root key.
pub fn read(dir: &Path, root: &RootKey) -> Result<Entries, VaultError> {
    let root_id = root.id();
    let path = path(dir, &root_id);
    let text = std::fs::read_to_string(&path).map_err(|source| VaultError::File {
        path: path.clone(),
        source,
    })?;
    let bad = |problem: &str| VaultError::Keystore {
        path: path.clone(),
        problem: problem.to_owned(),
    };
    let file: File = serde_json::from_str(&text).map_err(|_| bad("it does not parse"))?;
    if file.format != FORMAT || file.root_id != root_id {
        return Err(bad("it is not this root key's keystore"));
    }
    let cipher = root.cipher();
    let mut entries = Entries::default();
    for (name, sealed) in &file.entries {
        let bytes = URL_SAFE_NO_PAD
            .decode(sealed)
            .map_err(|_| bad("an entry is not base64url"))?;
        if bytes.len() < 12 + 16 {
            return Err(bad("an entry is too short"));
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().expect("split at 12");
        let plain = cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &associated_data(&root_id, name),
                },
            )
            .map_err(|_| bad(&format!("entry {name} does not decrypt (altered)")))?;
        let text = String::from_utf8(plain).map_err(|_| bad("an entry is not text"))?;
        entries.insert(name.clone(), Zeroizing::new(text));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keystore_opens_under_its_root_key_only_and_detects_any_change() {
        let dir = tempfile::tempdir().unwrap();
        let root = RootKey::generate().unwrap();
        let mut entries = Entries::default();
        entries.insert(AUDIT_ENTRY, Zeroizing::new("secret one".into()));
        entries.insert(CA_ENTRY, Zeroizing::new("secret two".into()));
        write(dir.path(), &root, &entries).unwrap();
        let file = path(dir.path(), &root.id());
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains("secret"), "{text}");
        let opened = read(dir.path(), &root).unwrap();
        assert_eq!(opened.get(AUDIT_ENTRY), Some("secret one"));
        assert_eq!(opened.get(CA_ENTRY), Some("secret two"));

        // Another root key finds no keystore of its own.
        let other = RootKey::generate().unwrap();
        assert!(read(dir.path(), &other).is_err());
        // Entries swapped between names do not open.
        let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let entries = json["entries"].as_object_mut().unwrap();
        let a = entries[AUDIT_ENTRY].clone();
        entries.insert(AUDIT_ENTRY.into(), entries[CA_ENTRY].clone());
        entries.insert(CA_ENTRY.into(), a);
        std::fs::write(&file, json.to_string()).unwrap();
        let err = read(dir.path(), &root).unwrap_err().to_string();
        assert!(err.contains("does not decrypt"), "{err}");
    }
}
