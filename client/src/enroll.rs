//! [`Enrollment`]: makes this computer a device of one person
//! (docs/PROTOCOL.md §3). It generates the device's X25519 and Ed25519
//! keys, proves possession of the signing key with the one-time code
//! (`POST /v1/enroll`), and stores the credentials under the person's
//! passphrase.
//!
//! Everything that can fail locally (the directory, the CA file, the
//! passphrase key derivation) is done before the server is contacted, so a
//! used-up code is not wasted on a local mistake.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use irm_core::enrollment_proof_message;
use irm_core::invitation::{Invitation, ca_fingerprint};
use irm_core::protocol::{EnrollRequest, EnrollResponse};
use reqwest::Method;

use crate::config::{self, DEVICE_JSON, DEVICE_KEY, DeviceConfig, normalize_server_url};
use crate::error::ClientError;
use crate::keystore::{self, DeviceKeys, KeyEncryptionKey, Passphrase};
use crate::session::{Session, checked_server_key};
use crate::transport::Transport;

/// What enrolling needs.
#[derive(Debug)]
pub struct Enrollment {
    /// Where to keep the credentials (see [`config::config_dir`]).
    pub config_dir: PathBuf,
    /// The key server, `https://host:port`.
    pub server_url: String,
    /// The key server's CA certificate (PEM), from `DATA_DIR/tls/ca.pem`.
    pub ca_pem: String,
    /// The user the code was issued for, or empty to let the server find the
    /// user from the code (docs/PROTOCOL.md §3.2); the credentials record the
    /// user the server answers with.
    pub user: String,
    /// The one-time code (`ABCDE-FGHIJ-KLMNO-PQRST`).
    pub code: String,
    /// A label for this device, such as the host name.
    pub device_name: String,
    /// Replace credentials that already exist in `config_dir`.
    pub replace: bool,
}

impl Enrollment {
    /// Enrolls and stores the credentials; returns an unlocked session.
    pub fn run(self, passphrase: &Passphrase) -> Result<Session, ClientError> {
        let server_url = normalize_server_url(&self.server_url)?;
        let dir = self.config_dir;
        if !self.replace && dir.join(DEVICE_JSON).exists() {
            return Err(ClientError::AlreadyEnrolled { dir });
        }
        let user = self.user.trim().to_owned();
        let code = self.code.trim().to_ascii_uppercase();
        if code.is_empty() {
            return Err(ClientError::InvalidArgument(
                "enrolling needs the enrollment code from your administrator".into(),
            ));
        }
        let device_name = self.device_name.trim().to_owned();
        let transport = Transport::new(&server_url, &self.ca_pem)?;
        config::create_dir(&dir)?;
        // The slow part first: if the passphrase key cannot be derived,
        // nothing has been sent.
        let kek = KeyEncryptionKey::new(passphrase)?;
        let keys = DeviceKeys::generate()?;

        let device_public_key = keys.device_public_b64();
        let proof = keys
            .signing
            .sign(&enrollment_proof_message(&user, &code, &device_public_key));
        let request = EnrollRequest {
            user: user.clone(),
            code,
            device_name: device_name.clone(),
            device_public_key: device_public_key.clone(),
            signing_public_key: keys.signing.public_key_b64(),
            proof: URL_SAFE_NO_PAD.encode(proof),
        };
        let answer: EnrollResponse =
            transport.call(Method::POST, "/v1/enroll", Some(&request), None)?;
        if answer.device_id.len() != 32 || hex::decode(&answer.device_id).is_err() {
            return Err(ClientError::bad_response(
                "POST /v1/enroll",
                format!("the device id {:?} is not 32 hex digits", answer.device_id),
            ));
        }
        checked_server_key(&answer.server_key)?;
        // The server enrolls the user the code belongs to; a name we sent
        // must be that one (the server refuses otherwise, so this only
        // guards against a server that does not follow the protocol).
        if answer.user.is_empty() || (!user.is_empty() && answer.user != user) {
            return Err(ClientError::bad_response(
                "POST /v1/enroll",
                format!(
                    "enrolled as {:?}, not as the user {user:?} that was asked for",
                    answer.user
                ),
            ));
        }

        let config = DeviceConfig {
            version: 1,
            server_url,
            ca_pem: self.ca_pem,
            user: answer.user,
            device_id: answer.device_id.to_ascii_lowercase(),
            device_name,
            device_public_key,
            signing_public_key: keys.signing.public_key_b64(),
            roles: answer.roles,
            groups: answer.groups,
            server_key: answer.server_key,
            enrolled_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        // device.json is what says "enrolled", so it goes in last: a failure
        // in between leaves no half enrollment that looks complete.
        config::remove_if_exists(&dir.join(DEVICE_JSON))?;
        let stored =
            keystore::store(&dir, &keys, &kek, &config.device_id).and_then(|()| config.save(&dir));
        if let Err(err) = stored {
            let _ = config::remove_if_exists(&dir.join(DEVICE_KEY));
            return Err(err);
        }
        Ok(Session::from_parts(dir, config, keys, transport))
    }
}

/// The largest CA answer read: a certificate or two.
const MAX_CA_LEN: u64 = 256 * 1024;

/// Fetches the key server's CA certificate for an invitation and returns
/// it only if its fingerprint is the invitation's (PROTOCOL.md §3.4). The
/// connection cannot be checked before the CA is known, so nothing is sent
/// but `GET /v1/ca`, and the answer is trusted only by the fingerprint;
/// the enrollment that follows then checks the server's certificate
/// against this CA as every later request does.
pub fn fetch_pinned_ca(invitation: &Invitation) -> Result<String, ClientError> {
    let transport = Transport::unverified(&invitation.server_url)?;
    let pem = transport.get_text("/v1/ca", MAX_CA_LEN)?;
    let expected = hex::encode(invitation.ca_sha256);
    match ca_fingerprint(&pem) {
        Some(found) if found == invitation.ca_sha256 => Ok(pem),
        found => Err(ClientError::CaMismatch {
            url: transport.origin().to_owned(),
            expected,
            found: found.map_or_else(|| "(no certificate at all)".to_owned(), hex::encode),
        }),
    }
}

impl Enrollment {
    /// An enrollment from one whole-code invitation or the two halves'
    /// invitations: the CA is fetched and pinned by the fingerprint they
    /// carry, so no file is handed around.
    pub fn from_invitations(
        invitations: &[Invitation],
        config_dir: PathBuf,
        device_name: String,
        replace: bool,
    ) -> Result<Self, ClientError> {
        let whole = Invitation::combine(invitations)
            .map_err(|e| ClientError::InvalidArgument(e.to_string()))?;
        let ca_pem = fetch_pinned_ca(&whole)?;
        Ok(Self {
            config_dir,
            server_url: whole.server_url.clone(),
            ca_pem,
            user: String::new(),
            code: whole.code.to_string(),
            device_name,
            replace,
        })
    }
}
