//! The root key's shares (PROTOCOL.md §11.2): Shamir's k-of-n sharing over
//! GF(256) (vsss-rs), the share set as it is kept in the data directory
//! (each holder's share wrapped to each of their devices, with a hash that
//! lets the server refuse a wrong share at once), and the bootstrap mode's
//! single share file.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::error::VaultError;
use super::keystore::RootKey;
use crate::secret_file::write_secret_file;

/// The share set's file name.
pub const SHARES_FILE: &str = "unseal-shares.json";
/// The bootstrap mode's share file name (0600).
pub const BOOTSTRAP_FILE: &str = "bootstrap-share.key";
const FORMAT: &str = "irm-shares-1";
const SHARE_HASH_LABEL: &[u8] = b"irm/v1/share-hash";

/// One share: its index (the x coordinate) first, then 32 bytes.
pub type Share = Zeroizing<Vec<u8>>;

/// Splits `root` into `holders` shares, `threshold` of which combine to it.
pub fn split(root: &RootKey, threshold: u8, holders: u8) -> Result<Vec<Share>, VaultError> {
    let rng = rand_core::UnwrapErr(getrandom::SysRng);
    let shares = vsss_rs::Gf256::split_bytes(
        usize::from(threshold),
        usize::from(holders),
        root.expose(),
        rng,
    )
    .map_err(|e| VaultError::Sharing(format!("{e:?}")))?;
    Ok(shares.into_iter().map(Zeroizing::new).collect())
}

/// Combines shares into the root key they are shares of, if they are; `id`
/// is the root key's id, which tells a right result from a wrong one.
pub fn combine(shares: &[Share], id: &str) -> Option<RootKey> {
    let plain: Vec<Vec<u8>> = shares.iter().map(|s| s.to_vec()).collect();
    let combined = Zeroizing::new(vsss_rs::Gf256::combine_bytes(&plain).ok()?);
    for mut share in plain {
        zeroize::Zeroize::zeroize(&mut share);
    }
    RootKey::from_bytes(&combined).filter(|root| root.id() == id)
}

/// The hash a share is checked against when submitted (hex).
pub fn share_hash(root_id: &str, share: &[u8]) -> String {
    hex::encode(
        Sha256::new()
            .chain_update(SHARE_HASH_LABEL)
            .chain_update(root_id.as_bytes())
            .chain_update(share)
            .finalize(),
    )
}

/// One holder's share wrapped to one of their devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceShare {
    /// The device (hex).
    pub device_id: String,
    /// The ephemeral X25519 public key (base64url).
    pub ephemeral_public: String,
    /// The wrapped share (base64url).
    pub ciphertext: String,
}

/// One holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Their user name.
    pub user: String,
    /// Their share's index.
    pub index: u8,
    /// [`share_hash`] of their share.
    pub share_hash: String,
    /// Their share, wrapped to each of their devices.
    pub devices: Vec<DeviceShare>,
}

/// The share set of one root key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareSet {
    format: String,
    /// The root key's id.
    pub root_id: String,
    /// Shares needed.
    pub threshold: u8,
    /// When it was issued (Unix seconds).
    pub issued_at: u64,
    /// The holders, sorted by name.
    pub holders: Vec<Holder>,
}

impl ShareSet {
    /// A share set for `root_id`.
    pub fn new(root_id: String, threshold: u8, issued_at: u64, holders: Vec<Holder>) -> Self {
        Self {
            format: FORMAT.to_owned(),
            root_id,
            threshold,
            issued_at,
            holders,
        }
    }

    /// The holder of share `index`, if `share` is that share.
    pub fn check(&self, index: u8, share: &[u8]) -> Option<&Holder> {
        let holder = self.holders.iter().find(|h| h.index == index)?;
        let hash = share_hash(&self.root_id, share);
        bool::from(hash.as_bytes().ct_eq(holder.share_hash.as_bytes())).then_some(holder)
    }

    /// The holders' names.
    pub fn holder_names(&self) -> Vec<String> {
        self.holders.iter().map(|h| h.user.clone()).collect()
    }
}

/// The share set file in `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(SHARES_FILE)
}

/// Reads the share set of `dir`, if there is one.
pub fn read(dir: &Path) -> Result<Option<ShareSet>, VaultError> {
    let path = path(dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let set: ShareSet = serde_json::from_str(&text).map_err(|_| VaultError::Keystore {
                path: path.clone(),
                problem: "it does not parse".into(),
            })?;
            if set.format != FORMAT {
                return Err(VaultError::Keystore {
                    path,
                    problem: format!("its format is not {FORMAT}"),
                });
            }
            Ok(Some(set))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(VaultError::File { path, source }),
    }
}

/// Writes the share set (atomically: this rename is the moment a reissue
/// takes effect).
pub fn write(dir: &Path, set: &ShareSet) -> Result<(), VaultError> {
    let path = path(dir);
    let mut text = serde_json::to_string_pretty(set).expect("a share set serialises");
    text.push('\n');
    write_secret_file(&path, text.as_bytes()).map_err(|source| VaultError::File { path, source })
}

/// The bootstrap share file of `dir`.
pub fn bootstrap_path(dir: &Path) -> PathBuf {
    dir.join(BOOTSTRAP_FILE)
}

/// Writes the bootstrap mode's share: the root key itself, 0600.
pub fn write_bootstrap(dir: &Path, root: &RootKey) -> Result<(), VaultError> {
    let path = bootstrap_path(dir);
    let text = Zeroizing::new(format!(
        "{}\n",
        URL_SAFE_NO_PAD.encode(root.expose().as_slice())
    ));
    write_secret_file(&path, text.as_bytes()).map_err(|source| VaultError::File { path, source })
}

/// Reads the bootstrap share, if the file is there.
pub fn read_bootstrap(dir: &Path) -> Result<Option<RootKey>, VaultError> {
    let path = bootstrap_path(dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            let bytes = Zeroizing::new(URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| {
                VaultError::Keystore {
                    path: path.clone(),
                    problem: "it does not hold a root key".into(),
                }
            })?);
            RootKey::from_bytes(&bytes)
                .map(Some)
                .ok_or_else(|| VaultError::Keystore {
                    path,
                    problem: "it does not hold a root key".into(),
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(VaultError::File { path, source }),
    }
}

/// Encodes a share for the wire.
pub fn encode(share: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(share)
}

/// Decodes a share from the wire.
pub fn decode(text: &str) -> Option<Share> {
    URL_SAFE_NO_PAD.decode(text).ok().map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_threshold_of_shares_gives_the_root_key_and_fewer_or_wrong_ones_do_not() {
        let root = RootKey::generate().unwrap();
        let id = root.id();
        let shares = split(&root, 2, 3).unwrap();
        assert_eq!(shares.len(), 3);
        for pair in [[0, 1], [0, 2], [1, 2]] {
            let chosen: Vec<Share> = pair.iter().map(|&i| shares[i].clone()).collect();
            let combined = combine(&chosen, &id).expect("two of three");
            assert_eq!(combined.expose(), root.expose());
        }
        assert!(combine(&shares[..1], &id).is_none(), "one share alone");
        let mut wrong = shares[1].clone();
        wrong[5] ^= 1;
        assert!(combine(&[shares[0].clone(), wrong], &id).is_none());
        // Two of a three-of-three split give a wrong key, which the id catches.
        let three = split(&root, 3, 3).unwrap();
        assert!(combine(&three[..2], &id).is_none());
        assert!(combine(&three, &id).is_some());
        // One person never unseals alone.
        assert!(split(&root, 1, 3).is_err());
    }

    #[test]
    fn a_submitted_share_is_checked_against_its_holders_hash() {
        let root = RootKey::generate().unwrap();
        let shares = split(&root, 2, 2).unwrap();
        let holders = ["alice", "carol"]
            .iter()
            .zip(&shares)
            .map(|(user, share)| Holder {
                user: (*user).to_owned(),
                index: share[0],
                share_hash: share_hash(&root.id(), share),
                devices: Vec::new(),
            })
            .collect();
        let set = ShareSet::new(root.id(), 2, 0, holders);
        assert_eq!(set.check(shares[1][0], &shares[1]).unwrap().user, "carol");
        assert!(set.check(shares[0][0], &shares[1]).is_none());
        let mut wrong = shares[0].clone();
        wrong[3] ^= 0x80;
        assert!(set.check(shares[0][0], &wrong).is_none());
    }
}
