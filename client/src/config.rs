//! The configuration directory and the public half of the credentials at
//! rest (docs/PROTOCOL.md §3.3): where they live, `device.json` (server,
//! CA, user, device id, public keys, roles, groups, server key) and the
//! atomic, owner-only writes that put both credential files in place.
//!
//! The secret half, `device.key`, is `keystore.rs`'s.

use std::fs::{self, File, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use irm_core::protocol::{Role, ServerKeyInfo};
use reqwest::Url;
use serde::{Deserialize, Serialize};

use crate::error::ClientError;

/// The environment variable that names the configuration directory.
pub const CONFIG_DIR_ENV: &str = "IRM_CONFIG_DIR";
/// The public credentials file.
pub const DEVICE_JSON: &str = "device.json";
/// The encrypted secret keys file.
pub const DEVICE_KEY: &str = "device.key";

/// Credential files are small; anything larger is not ours.
const MAX_CONFIG_LEN: u64 = 1024 * 1024;
/// The `device.json` layout this version writes and reads.
const DEVICE_JSON_VERSION: u32 = 1;

/// The configuration directory: `$IRM_CONFIG_DIR`, else the user's config
/// directory plus `irm/` (`~/.config/irm` on Linux).
pub fn config_dir() -> Result<PathBuf, ClientError> {
    if let Some(dir) = std::env::var_os(CONFIG_DIR_ENV).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    dirs::config_dir()
        .map(|dir| dir.join("irm"))
        .ok_or_else(|| {
            ClientError::InvalidArgument(format!(
                "cannot tell where the user's configuration directory is (is HOME set?); \
                 set {CONFIG_DIR_ENV} to a directory"
            ))
        })
}

/// What `device.json` holds: everything about this device's enrollment that
/// is not secret. Readable without the passphrase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceConfig {
    /// The layout version (1).
    pub version: u32,
    /// The key server's URL (`https://host:port`), the only server this device talks to.
    pub server_url: String,
    /// The key server's CA certificate (PEM), the only trust anchor for it.
    pub ca_pem: String,
    /// The user this device belongs to.
    pub user: String,
    /// The device id the server assigned (32 hex digits).
    pub device_id: String,
    /// The label given at enrollment.
    pub device_name: String,
    /// The device's X25519 public key (base64url), to which grants are rewrapped.
    pub device_public_key: String,
    /// The device's Ed25519 request-signing public key (base64url).
    pub signing_public_key: String,
    /// The user's roles at enrollment.
    pub roles: Vec<Role>,
    /// The user's groups at enrollment.
    pub groups: Vec<String>,
    /// The server's key at enrollment (its URL is the one sealers put in files).
    pub server_key: ServerKeyInfo,
    /// When the device enrolled (Unix seconds, this computer's clock).
    pub enrolled_at: u64,
}

impl DeviceConfig {
    /// Reads `device.json` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, ClientError> {
        let path = dir.join(DEVICE_JSON);
        if !path.exists() {
            return Err(ClientError::NotEnrolled {
                dir: dir.to_owned(),
            });
        }
        Self::load_file(&path)
    }

    /// Reads a `device.json` kept at `path` under any name, for programs
    /// that are given credential paths rather than a configuration
    /// directory (see [`Session::unlock_explicit`](crate::Session::unlock_explicit)).
    /// A missing file is an I/O error here, not "not enrolled".
    pub fn load_file(path: &Path) -> Result<Self, ClientError> {
        let path = path.to_owned();
        let bytes = read_small(&path)?;
        let config: Self = serde_json::from_slice(&bytes).map_err(|e| ClientError::BadConfig {
            path: path.clone(),
            problem: format!("it is not a valid device.json ({e})"),
        })?;
        if config.version != DEVICE_JSON_VERSION {
            return Err(ClientError::BadConfig {
                path,
                problem: format!(
                    "it has layout version {}, which this version of irm does not read",
                    config.version
                ),
            });
        }
        normalize_server_url(&config.server_url).map_err(|e| ClientError::BadConfig {
            path: path.clone(),
            problem: e.to_string(),
        })?;
        if config.device_id.len() != 32 || hex::decode(&config.device_id).is_err() {
            return Err(ClientError::BadConfig {
                path,
                problem: "the device id is not 32 hex digits".into(),
            });
        }
        Ok(config)
    }

    pub(crate) fn save(&self, dir: &Path) -> Result<(), ClientError> {
        let mut text = serde_json::to_vec_pretty(self).expect("DeviceConfig always serializes");
        text.push(b'\n');
        write_private(dir, DEVICE_JSON, &text)
    }

    /// The device id as the 16 bytes grants are bound to.
    pub(crate) fn device_id_bytes(&self) -> [u8; 16] {
        let mut id = [0u8; 16];
        // `load` and enrollment both checked the id is 32 hex digits.
        hex::decode_to_slice(&self.device_id, &mut id).expect("device id checked on load");
        id
    }

    /// Whether `url` (from a file's key-access entry) names this device's key
    /// server: the enrolled URL or the URL the server gives sealers, compared
    /// by origin (scheme, host, port). The URL is never contacted.
    pub fn is_own_server(&self, url: &str) -> bool {
        let Ok(candidate) = normalize_server_url(url) else {
            return false;
        };
        [&self.server_url, &self.server_key.url]
            .into_iter()
            .filter_map(|own| normalize_server_url(own).ok())
            .any(|own| own == candidate)
    }
}

/// Checks that `url` is an `https://host[:port]` URL with nothing after the
/// authority (a trailing `/` is allowed) and returns its canonical form
/// (lower-case host, default port dropped, no trailing slash).
pub fn normalize_server_url(url: &str) -> Result<String, ClientError> {
    let bad = |why: &str| {
        ClientError::InvalidArgument(format!(
            "{url:?} is not a key server URL: {why}; expected https://HOST[:PORT], such as https://kas.example:8443"
        ))
    };
    let parsed = Url::parse(url.trim()).map_err(|e| bad(&e.to_string()))?;
    if parsed.scheme() != "https" {
        return Err(bad("the key server is reached over https only"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("it has no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("it carries a user name or password"));
    }
    if parsed.path() != "/" || parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("it has a path, query or fragment"));
    }
    Ok(parsed.origin().ascii_serialization())
}

/// Reads a credential file whole, refusing anything implausibly large.
pub(crate) fn read_small(path: &Path) -> Result<Vec<u8>, ClientError> {
    let file =
        File::open(path).map_err(|e| ClientError::io(format!("opening {}", path.display()), e))?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ClientError::io(format!("reading {}", path.display()), e))?;
    if bytes.len() as u64 > MAX_CONFIG_LEN {
        return Err(ClientError::BadConfig {
            path: path.to_owned(),
            problem: "it is too large to be a credentials file".into(),
        });
    }
    Ok(bytes)
}

/// Creates the configuration directory (mode 0700) if it does not exist.
pub(crate) fn create_dir(dir: &Path) -> Result<(), ClientError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| ClientError::io(format!("creating the directory {}", dir.display()), e))
}

/// Writes `dir/name` atomically: a temporary file created with mode 0600 in
/// the same directory, synced, renamed over the destination, directory
/// synced. A failure leaves the old file (if any) and no temporary file.
pub(crate) fn write_private(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), ClientError> {
    let dest = dir.join(name);
    let context = || format!("writing {}", dest.display());
    let mut tmp = tempfile::Builder::new()
        .prefix(".irm-")
        .suffix(".tmp")
        .permissions(Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(|e| ClientError::io(context(), e))?;
    // The umask can only remove bits; make sure no group or other bit is set.
    tmp.as_file()
        .set_permissions(Permissions::from_mode(0o600))
        .and_then(|()| tmp.write_all(bytes))
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| ClientError::io(context(), e))?;
    tmp.persist(&dest)
        .map_err(|e| ClientError::io(context(), e.error))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ClientError::io(format!("syncing the directory {}", dir.display()), e))
}

/// Removes a credential file if it exists.
pub(crate) fn remove_if_exists(path: &Path) -> Result<(), ClientError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(ClientError::io(format!("removing {}", path.display()), e))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_https_origins() {
        assert_eq!(
            normalize_server_url("https://KAS.example:8443/").unwrap(),
            "https://kas.example:8443"
        );
        assert_eq!(
            normalize_server_url("https://kas.example:443").unwrap(),
            "https://kas.example"
        );
        assert_eq!(
            normalize_server_url("https://127.0.0.1:9000").unwrap(),
            "https://127.0.0.1:9000"
        );
        for bad in [
            "http://kas.example",
            "kas.example",
            "https://kas.example/v1",
            "https://u:p@kas.example",
            "https://kas.example/?x=1",
            "",
        ] {
            assert!(normalize_server_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn own_server_is_compared_by_origin() {
        let config = DeviceConfig {
            version: 1,
            server_url: "https://kas.example:8443".into(),
            ca_pem: String::new(),
            user: "alice".into(),
            device_id: "00".repeat(16),
            device_name: "pc".into(),
            device_public_key: String::new(),
            signing_public_key: String::new(),
            roles: vec![],
            groups: vec![],
            server_key: ServerKeyInfo {
                key_id: "00".repeat(16),
                public_key: String::new(),
                url: "https://irm.internal".into(),
            },
            enrolled_at: 0,
        };
        assert!(config.is_own_server("https://KAS.example:8443/"));
        assert!(config.is_own_server("https://irm.internal:443"));
        assert!(!config.is_own_server("https://kas.example:8444"));
        assert!(!config.is_own_server("https://evil.example"));
        assert!(!config.is_own_server("not a url"));
    }
}
