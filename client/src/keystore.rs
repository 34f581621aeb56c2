//! The secret half of the credentials at rest (docs/PROTOCOL.md §3.3):
//! `device.key` holds the device's X25519 and Ed25519 secret keys encrypted
//! with AES-256-GCM under a key derived by Argon2id (m = 64 MiB, t = 3,
//! p = 1, 16-byte random salt) from the person's passphrase. The KDF
//! parameters are stored beside the ciphertext, so a later version can raise
//! them and still read old files.
//!
//! A copied `device.key` is useless without the passphrase; a wrong
//! passphrase and a damaged file give the same error.

use std::fmt;
use std::path::Path;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use irm_core::{DeviceSecretKey, SigningSecretKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::config::{DEVICE_KEY, read_small, write_private};
use crate::error::ClientError;

/// The `device.key` layout this version writes and reads.
const KEY_FILE_VERSION: u32 = 1;
const KDF_ALGORITHM: &str = "argon2id";
const CIPHER: &str = "aes-256-gcm";
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 12;
/// X25519 secret (32) || Ed25519 seed (32).
const SECRETS_LEN: usize = 64;
/// Bounds on stored KDF parameters, so a crafted file cannot make unlocking
/// take gigabytes or hours.
const MAX_M_KIB: u32 = 1024 * 1024;
const MAX_T: u32 = 64;
const MAX_P: u32 = 16;

/// A passphrase that protects the device's keys. Wiped on drop, redacted in `Debug`.
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps a passphrase. A trailing newline (as left by `echo` into a file)
    /// is removed; an empty passphrase is refused.
    pub fn new(text: impl Into<String>) -> Result<Self, ClientError> {
        let mut text = Zeroizing::new(text.into());
        while text.ends_with('\n') || text.ends_with('\r') {
            text.pop();
        }
        if text.is_empty() {
            return Err(ClientError::InvalidArgument(
                "the passphrase is empty; choose one that protects this device's keys".into(),
            ));
        }
        Ok(Self(text))
    }

    /// The passphrase text. Every use of the secret goes through here.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(..)")
    }
}

/// The device's two secret keys, unlocked. Redacted in `Debug`; the inner
/// key types wipe themselves on drop.
pub(crate) struct DeviceKeys {
    pub(crate) device: DeviceSecretKey,
    pub(crate) signing: SigningSecretKey,
}

impl DeviceKeys {
    pub(crate) fn generate() -> Result<Self, ClientError> {
        let random = |e: irm_core::SealError| {
            ClientError::io("generating the device keys", std::io::Error::other(e))
        };
        Ok(Self {
            device: DeviceSecretKey::generate().map_err(random)?,
            signing: SigningSecretKey::generate().map_err(random)?,
        })
    }

    /// The X25519 public key as sent at enrollment (base64url).
    pub(crate) fn device_public_b64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.device.public_key().to_bytes())
    }
}

impl fmt::Debug for DeviceKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceKeys(..)")
    }
}

/// Argon2id parameters as stored in `device.key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KdfParams {
    algorithm: String,
    /// Argon2 version (0x13 = 19).
    version: u32,
    m_kib: u32,
    t: u32,
    p: u32,
    /// base64url, 16 bytes.
    salt: String,
}

impl KdfParams {
    /// PROTOCOL.md §3.3: m = 64 MiB, t = 3, p = 1, with a fresh salt.
    fn recommended() -> Result<Self, ClientError> {
        Self::with_cost(64 * 1024, 3, 1)
    }

    fn with_cost(m_kib: u32, t: u32, p: u32) -> Result<Self, ClientError> {
        let mut salt = [0u8; SALT_LEN];
        getrandom::fill(&mut salt).map_err(|e| {
            ClientError::io(
                "drawing a salt for the passphrase key",
                std::io::Error::other(e.to_string()),
            )
        })?;
        Ok(Self {
            algorithm: KDF_ALGORITHM.into(),
            version: 0x13,
            m_kib,
            t,
            p,
            salt: URL_SAFE_NO_PAD.encode(salt),
        })
    }
}

/// A key derived from the passphrase, with the parameters that derived it.
pub(crate) struct KeyEncryptionKey {
    key: Zeroizing<[u8; 32]>,
    params: KdfParams,
}

impl KeyEncryptionKey {
    /// Derives a new key-encryption key with the recommended parameters and a
    /// fresh salt (done before enrollment contacts the server, so a failure
    /// here costs nothing there).
    pub(crate) fn new(passphrase: &Passphrase) -> Result<Self, ClientError> {
        Self::derive(passphrase, KdfParams::recommended()?, Path::new(DEVICE_KEY))
    }

    #[cfg(test)]
    pub(crate) fn new_cheap(passphrase: &Passphrase) -> Result<Self, ClientError> {
        Self::derive(
            passphrase,
            KdfParams::with_cost(64, 1, 1)?,
            Path::new(DEVICE_KEY),
        )
    }

    fn derive(
        passphrase: &Passphrase,
        params: KdfParams,
        path: &Path,
    ) -> Result<Self, ClientError> {
        let bad = |problem: String| ClientError::BadConfig {
            path: path.to_owned(),
            problem,
        };
        if params.algorithm != KDF_ALGORITHM || params.version != 0x13 {
            return Err(bad(format!(
                "its key derivation {} version {} is not one this version of irm reads",
                params.algorithm, params.version
            )));
        }
        if params.m_kib > MAX_M_KIB || params.t > MAX_T || params.p > MAX_P {
            return Err(bad("its key derivation parameters are out of range".into()));
        }
        let salt = URL_SAFE_NO_PAD
            .decode(&params.salt)
            .ok()
            .filter(|s| s.len() == SALT_LEN)
            .ok_or_else(|| bad("its salt is not 16 bytes of base64url".into()))?;
        let argon_params = Params::new(params.m_kib, params.t, params.p, Some(32))
            .map_err(|e| bad(format!("its key derivation parameters are invalid ({e})")))?;
        let mut key = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params)
            .hash_password_into(passphrase.expose_secret().as_bytes(), &salt, key.as_mut())
            .map_err(|e| bad(format!("the key derivation failed ({e})")))?;
        Ok(Self { key, params })
    }
}

/// `device.key` on disk.
#[derive(Debug, Serialize, Deserialize)]
struct KeyFile {
    version: u32,
    kdf: KdfParams,
    cipher: String,
    /// base64url, 12 bytes.
    nonce: String,
    /// base64url: the 64 secret bytes and the 16-byte tag.
    ciphertext: String,
}

/// The associated data binds the ciphertext to its device, so the keys of
/// one enrollment cannot be passed off under another's `device.json`.
fn associated_data(device_id: &str) -> Vec<u8> {
    format!("irm/v1/device-key\n{device_id}").into_bytes()
}

/// Encrypts `keys` under `kek` and writes `dir/device.key` (0600, atomic).
pub(crate) fn store(
    dir: &Path,
    keys: &DeviceKeys,
    kek: &KeyEncryptionKey,
    device_id: &str,
) -> Result<(), ClientError> {
    let mut secrets = Zeroizing::new([0u8; SECRETS_LEN]);
    secrets[..32].copy_from_slice(keys.device.expose_secret());
    secrets[32..].copy_from_slice(keys.signing.expose_secret().as_ref());
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce)
        .map_err(|e| ClientError::io("drawing a nonce", std::io::Error::other(e.to_string())))?;
    let ciphertext = Aes256Gcm::new((&*kek.key).into())
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: secrets.as_ref(),
                aad: &associated_data(device_id),
            },
        )
        .expect("AES-GCM encryption of 64 bytes cannot fail");
    let file = KeyFile {
        version: KEY_FILE_VERSION,
        kdf: kek.params.clone(),
        cipher: CIPHER.into(),
        nonce: URL_SAFE_NO_PAD.encode(nonce),
        ciphertext: URL_SAFE_NO_PAD.encode(ciphertext),
    };
    let mut text = serde_json::to_vec_pretty(&file).expect("KeyFile always serializes");
    text.push(b'\n');
    write_private(dir, DEVICE_KEY, &text)
}

/// Reads and decrypts `dir/device.key`.
pub(crate) fn load(
    dir: &Path,
    passphrase: &Passphrase,
    device_id: &str,
) -> Result<DeviceKeys, ClientError> {
    let path = dir.join(DEVICE_KEY);
    if !path.exists() {
        return Err(ClientError::BadConfig {
            path,
            problem: "it is missing, so this device's keys are gone; enroll this device again"
                .into(),
        });
    }
    load_file(&path, passphrase, device_id)
}

/// Reads and decrypts a `device.key` kept at `path` under any name.
pub(crate) fn load_file(
    path: &Path,
    passphrase: &Passphrase,
    device_id: &str,
) -> Result<DeviceKeys, ClientError> {
    let path = path.to_owned();
    let bytes = read_small(&path)?;
    let bad = |problem: &str| ClientError::BadConfig {
        path: path.clone(),
        problem: problem.to_owned(),
    };
    let file: KeyFile =
        serde_json::from_slice(&bytes).map_err(|_| bad("it is not a valid device.key file"))?;
    if file.version != KEY_FILE_VERSION || file.cipher != CIPHER {
        return Err(bad("it is in a layout this version of irm does not read"));
    }
    let nonce: [u8; NONCE_LEN] = URL_SAFE_NO_PAD
        .decode(&file.nonce)
        .ok()
        .and_then(|n| n.try_into().ok())
        .ok_or_else(|| bad("its nonce is not 12 bytes of base64url"))?;
    let ciphertext = URL_SAFE_NO_PAD
        .decode(&file.ciphertext)
        .map_err(|_| bad("its ciphertext is not base64url"))?;
    let kek = KeyEncryptionKey::derive(passphrase, file.kdf, &path)?;
    let secrets = Aes256Gcm::new((&*kek.key).into())
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: &ciphertext,
                aad: &associated_data(device_id),
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| ClientError::WrongPassphrase { path: path.clone() })?;
    let (device, signing) = secrets
        .split_first_chunk::<32>()
        .and_then(|(device, rest)| Some((device, <&[u8; 32]>::try_from(rest).ok()?)))
        .ok_or_else(|| bad("it does not hold two 32-byte keys"))?;
    Ok(DeviceKeys {
        device: DeviceSecretKey::from_bytes(*device),
        signing: SigningSecretKey::from_bytes(signing),
    })
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    const DEVICE: &str = "00112233445566778899aabbccddeeff";

    fn pass(text: &str) -> Passphrase {
        Passphrase::new(text).unwrap()
    }

    #[test]
    fn keys_round_trip_under_the_recommended_parameters() {
        let dir = tempfile::tempdir().unwrap();
        let keys = DeviceKeys::generate().unwrap();
        let kek = KeyEncryptionKey::new(&pass("correct horse battery")).unwrap();
        store(dir.path(), &keys, &kek, DEVICE).unwrap();

        let stored: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.path().join(DEVICE_KEY)).unwrap()).unwrap();
        assert_eq!(stored["kdf"]["algorithm"], "argon2id");
        assert_eq!(stored["kdf"]["m_kib"], 65536);
        assert_eq!(stored["kdf"]["t"], 3);
        assert_eq!(stored["kdf"]["p"], 1);

        let back = load(dir.path(), &pass("correct horse battery"), DEVICE).unwrap();
        assert_eq!(back.device.expose_secret(), keys.device.expose_secret());
        assert_eq!(back.signing.public_key(), keys.signing.public_key());
    }

    #[test]
    fn a_wrong_passphrase_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let keys = DeviceKeys::generate().unwrap();
        let kek = KeyEncryptionKey::new_cheap(&pass("right passphrase")).unwrap();
        store(dir.path(), &keys, &kek, DEVICE).unwrap();
        let err = load(dir.path(), &pass("wrong passphrase"), DEVICE).unwrap_err();
        assert!(
            matches!(err, ClientError::WrongPassphrase { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn a_copied_key_file_is_useless_without_the_passphrase_or_under_another_device() {
        let dir = tempfile::tempdir().unwrap();
        let keys = DeviceKeys::generate().unwrap();
        let kek = KeyEncryptionKey::new_cheap(&pass("right passphrase")).unwrap();
        store(dir.path(), &keys, &kek, DEVICE).unwrap();

        // The copy holds no key bytes in the clear.
        let copy = dir.path().join("copy");
        fs::create_dir(&copy).unwrap();
        let bytes = fs::read(dir.path().join(DEVICE_KEY)).unwrap();
        fs::write(copy.join(DEVICE_KEY), &bytes).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        for secret in [
            URL_SAFE_NO_PAD.encode(keys.device.expose_secret()),
            URL_SAFE_NO_PAD.encode(*keys.signing.expose_secret()),
            hex::encode(keys.device.expose_secret()),
        ] {
            assert!(!text.contains(&secret));
        }
        for guess in ["", "right", "right passphrase ", "Right passphrase"] {
            if let Ok(guess) = Passphrase::new(guess) {
                assert!(load(&copy, &guess, DEVICE).is_err());
            }
        }
        // Under another device's id the ciphertext does not authenticate.
        let other = "ffeeddccbbaa99887766554433221100";
        assert!(matches!(
            load(&copy, &pass("right passphrase"), other),
            Err(ClientError::WrongPassphrase { .. })
        ));
        assert!(load(&copy, &pass("right passphrase"), DEVICE).is_ok());
    }

    #[test]
    fn the_key_file_is_mode_0600_from_creation() {
        let dir = tempfile::tempdir().unwrap();
        let keys = DeviceKeys::generate().unwrap();
        let kek = KeyEncryptionKey::new_cheap(&pass("right passphrase")).unwrap();
        store(dir.path(), &keys, &kek, DEVICE).unwrap();
        let mode = fs::metadata(dir.path().join(DEVICE_KEY))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // No temporary file is left next to it.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [DEVICE_KEY]);
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let keys = DeviceKeys::generate().unwrap();
        let secret_hex = hex::encode(keys.device.expose_secret());
        let debug = format!("{keys:?} {:?}", pass("hunter2-hunter2"));
        assert_eq!(debug, "DeviceKeys(..) Passphrase(..)");
        assert!(!debug.contains(&secret_hex));
        assert!(!debug.contains("hunter2"));
    }

    #[test]
    fn empty_passphrases_are_refused_and_trailing_newlines_dropped() {
        assert!(Passphrase::new("").is_err());
        assert!(Passphrase::new("\n").is_err());
        assert_eq!(pass("secret\n").expose_secret(), "secret");
    }

    #[test]
    fn absurd_stored_parameters_are_refused_before_deriving() {
        let mut params = KdfParams::with_cost(64, 1, 1).unwrap();
        params.m_kib = u32::MAX;
        let err = KeyEncryptionKey::derive(&pass("x"), params, Path::new("device.key"))
            .err()
            .unwrap();
        assert!(matches!(err, ClientError::BadConfig { .. }));
    }
}
