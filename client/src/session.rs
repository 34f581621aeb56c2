//! [`Session`]: this device's credentials, unlocked with the passphrase for
//! one process, and an HTTPS client for its key server. Everything a reader
//! or sealer asks the server goes through here: the server key, file
//! registration, grants and renewals, usage events. Administration is in
//! `admin.rs`, on the same type.
//!
//! Calls block; a UI calls them from a worker thread and schedules renewal
//! itself ([`Grant::renew_due`]).

use std::path::{Path, PathBuf};
use std::time::Instant;

use irm_core::protocol::{
    EncodedHeader, EventRequest, FileInfo, GrantRequest, GrantResponse, RegisterFileRequest,
    ServerKeyInfo, UsageAction,
};
use irm_core::{KasPublicKey, SealedHeader};
use reqwest::Method;

use crate::config::DeviceConfig;
use crate::error::ClientError;
use crate::grant::Grant;
use crate::keystore::{self, DeviceKeys, Passphrase};
use crate::transport::{Signer, Transport};
use crate::watch::{HubSlot, Watch, WatchSignal, Watcher};
use crate::witness;

/// Longest detail text a usage event may carry (PROTOCOL.md §5).
const MAX_EVENT_DETAIL: usize = 256;

/// An exported list as written (its canaries in place) and the server's
/// receipt for it (PROTOCOL.md §7.8).
pub type ExportedList = (
    zeroize::Zeroizing<Vec<u8>>,
    irm_core::protocol::ExportReceipt,
);

/// Unlocked device credentials and a connection to the device's key server.
pub struct Session {
    dir: PathBuf,
    config: DeviceConfig,
    keys: DeviceKeys,
    transport: Transport,
    /// Why the person acts (`--reason`), sent with every signed call.
    reason: Option<String>,
    /// The push channel's thread and connections, shared by every
    /// document watched through this session while any is.
    watches: HubSlot,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("user", &self.config.user)
            .field("device_id", &self.config.device_id)
            .field("server", &self.transport.origin())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Reads the credentials in `config_dir` and decrypts the device's keys
    /// with `passphrase`. Nothing is sent to the server.
    pub fn unlock(config_dir: &Path, passphrase: &Passphrase) -> Result<Self, ClientError> {
        let config = DeviceConfig::load(config_dir)?;
        let keys = keystore::load(config_dir, passphrase, &config.device_id)?;
        let key_path = config_dir.join(crate::config::DEVICE_KEY);
        check_keys_match(&config, &keys, &key_path)?;
        let transport = Transport::new(&config.server_url, &config.ca_pem)?;
        Ok(Self {
            dir: config_dir.to_owned(),
            config,
            keys,
            transport,
            reason: None,
            watches: HubSlot::default(),
        })
    }

    /// Unlocks credentials given by path instead of a configuration
    /// directory (the C API's `irm_client_open_explicit`): `device_json`
    /// and `device_key` as enrollment wrote them (any names, anywhere),
    /// `server_url` the key server to talk to and `ca_pem` the only CA
    /// certificates trusted for it, in place of the CA stored at
    /// enrollment. Nothing is sent to the server, so a CA that does not
    /// fit the server shows on the first call ([`ClientError::Tls`]).
    ///
    /// `server_url` must name the server the credentials were enrolled
    /// with (PROTOCOL.md §1: a device talks to that server only), compared
    /// by origin as for files; otherwise [`ClientError::InvalidArgument`]
    /// before the passphrase is tried.
    pub fn unlock_explicit(
        server_url: &str,
        ca_pem: &str,
        device_json: &Path,
        device_key: &Path,
        passphrase: &Passphrase,
    ) -> Result<Self, ClientError> {
        let config = DeviceConfig::load_file(device_json)?;
        if !config.is_own_server(server_url) {
            return Err(ClientError::InvalidArgument(format!(
                "the key server {server_url} is not the one the device credential {} was \
                 enrolled with ({}); give that server's URL, or the credential enrolled with \
                 {server_url}",
                device_json.display(),
                config.server_url
            )));
        }
        // Built first: a bad URL or CA costs no key derivation.
        let transport = Transport::new(server_url, ca_pem)?;
        let keys = keystore::load_file(device_key, passphrase, &config.device_id)?;
        check_keys_match(&config, &keys, device_key)?;
        let dir = match device_json.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
            _ => PathBuf::from("."),
        };
        Ok(Self {
            dir,
            config,
            keys,
            transport,
            reason: None,
            watches: HubSlot::default(),
        })
    }

    pub(crate) fn from_parts(
        dir: PathBuf,
        config: DeviceConfig,
        keys: DeviceKeys,
        transport: Transport,
    ) -> Self {
        Self {
            dir,
            config,
            keys,
            transport,
            reason: None,
            watches: HubSlot::default(),
        }
    }

    /// The enrollment this session uses.
    pub fn config(&self) -> &DeviceConfig {
        &self.config
    }

    /// The configuration directory (for [`Session::unlock_explicit`], the
    /// directory holding `device.json`).
    pub fn config_dir(&self) -> &Path {
        &self.dir
    }

    /// The user this device belongs to.
    pub fn user(&self) -> &str {
        &self.config.user
    }

    /// This device's id (hex).
    pub fn device_id(&self) -> &str {
        &self.config.device_id
    }

    /// The canonical URL of the key server (`https://host:port`).
    pub fn server_url(&self) -> &str {
        self.transport.origin()
    }

    /// This device's id as the 16 bytes wraps are bound to.
    pub(crate) fn device_id_bytes(&self) -> [u8; 16] {
        self.config.device_id_bytes()
    }

    /// This device's X25519 key, which grants and shares are wrapped to.
    pub(crate) fn device_key(&self) -> &irm_core::DeviceSecretKey {
        &self.keys.device
    }

    pub(crate) fn signer(&self) -> Signer<'_> {
        Signer {
            device_id: &self.config.device_id,
            signing: &self.keys.signing,
        }
    }

    /// Gives every later signed call this reason (a ticket id), which the
    /// server records in the audit (PROTOCOL.md §7: `?reason=`). `None`
    /// or empty: no reason.
    pub fn set_reason(&mut self, reason: Option<&str>) -> Result<(), ClientError> {
        match reason.filter(|r| !r.is_empty()) {
            Some(r) if !irm_core::protocol::valid_reason(r) => {
                Err(ClientError::InvalidArgument(format!(
                    "a reason is at most {} characters, on one line",
                    irm_core::protocol::MAX_REASON_LEN
                )))
            }
            r => {
                self.reason = r.map(str::to_owned);
                Ok(())
            }
        }
    }

    /// `path` with the reason, if one is set, in its query.
    fn with_reason(&self, path: &str) -> String {
        match &self.reason {
            None => path.to_owned(),
            Some(reason) => {
                let encoded: String = form_urlencoded::byte_serialize(reason.as_bytes()).collect();
                let joiner = if path.contains('?') { '&' } else { '?' };
                format!("{path}{joiner}reason={encoded}")
            }
        }
    }

    /// A signed request with a JSON answer.
    pub(crate) fn signed<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl serde::Serialize>,
    ) -> Result<T, ClientError> {
        self.transport
            .call(method, &self.with_reason(path), body, Some(&self.signer()))
    }

    /// A signed request answered with `204 No Content`.
    pub(crate) fn signed_no_content(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl serde::Serialize>,
    ) -> Result<(), ClientError> {
        self.transport
            .call_no_content(method, &self.with_reason(path), body, Some(&self.signer()))
    }

    /// `GET /v1/server-key`: the server's current key, for online sealing.
    /// The key id is checked against the public key.
    pub fn server_key(&self) -> Result<(ServerKeyInfo, KasPublicKey), ClientError> {
        let info: ServerKeyInfo =
            self.transport
                .call(Method::GET, "/v1/server-key", None::<&()>, None)?;
        let key = checked_server_key(&info)?;
        Ok((info, key))
    }

    /// `POST /v1/files`: registers a file this device sealed, so that
    /// administrators can list and revoke it.
    pub fn register_file(
        &self,
        header: &SealedHeader,
        file_name: Option<&str>,
    ) -> Result<FileInfo, ClientError> {
        self.check_own_server(header)?;
        let body = RegisterFileRequest {
            header: EncodedHeader::new(header),
            file_name: file_name.map(str::to_owned),
        };
        self.signed(Method::POST, "/v1/files", Some(&body))
    }

    /// `POST /v1/grant`: asks for the file's content key. On success the key
    /// is unwrapped with this device's key, checked against the header's key
    /// commitment, and held until the lease deadline on this computer's
    /// monotonic clock. The audit checkpoint it carries is witnessed
    /// ([`Grant::witness_alarm`]).
    pub fn grant(&self, header: &SealedHeader, renew: bool) -> Result<Grant, ClientError> {
        self.check_own_server(header)?;
        let body = GrantRequest {
            header: EncodedHeader::new(header),
            renew,
        };
        let asked_at = Instant::now();
        let mut answer: GrantResponse = self.signed(Method::POST, "/v1/grant", Some(&body))?;
        let checkpoint = answer.checkpoint.take();
        let mut grant = Grant::from_response(&self.config, &self.keys, header, answer, asked_at)?;
        // Only once the answer proved itself (its key unwrapped and matched
        // the file's commitment) does its checkpoint count as the server's.
        if let Some(checkpoint) = checkpoint {
            grant.set_witness_alarm(witness::witness(&self.dir, &checkpoint));
        }
        Ok(grant)
    }

    /// Renews `grant` (`renew: true`). On success the grant holds the new
    /// lease; on failure it is left as it was, to run out at its deadline.
    pub fn renew(&self, grant: &mut Grant) -> Result<(), ClientError> {
        let renewed = self.grant(grant.header(), true)?;
        grant.replace(renewed);
        Ok(())
    }

    /// Opens the push channel for `grant`'s document (`GET /v1/watch`,
    /// PROTOCOL.md §13), which calls `on_signal` whenever the holder should
    /// renew at once: the server reported a change the grant rests on, or
    /// the channel was lost. The documents watched through one session
    /// share a thread and an HTTP/2 connection (another past 100 streams),
    /// so `on_signal` runs on that shared thread and must return quickly:
    /// send a message or set a flag, never call the server. The channel
    /// lives until the [`Watch`] is dropped; the lease stays the fallback.
    pub fn watch(
        &self,
        grant: &Grant,
        on_signal: impl Fn(WatchSignal) + Send + 'static,
    ) -> Result<Watch, ClientError> {
        Watcher {
            transport: self.transport.clone(),
            device_id: self.config.device_id.clone(),
            signing: irm_core::SigningSecretKey::from_bytes(&self.keys.signing.expose_secret()),
            file: grant.file_id().to_string(),
            cursor: grant.watch_cursor().map(str::to_owned),
        }
        .start(&self.watches, on_signal)
    }

    /// `POST /v1/events`: reports what was done under `grant`. The server
    /// audits allowed and refused reports alike and refuses
    /// (`right_not_granted`) an action whose right the grant lacks.
    pub fn report_event(
        &self,
        grant: &Grant,
        action: UsageAction,
        detail: Option<&str>,
    ) -> Result<(), ClientError> {
        self.report(grant, action, None, detail)
    }

    /// [`Session::report_event`] for a copy or print of `rows` rows: more
    /// than the server's threshold spends a take-out administrators
    /// approved, or is refused (`export_approval_required`, PROTOCOL.md
    /// §7.3), so report before the rows leave.
    pub fn report_rows(
        &self,
        grant: &Grant,
        action: UsageAction,
        rows: u64,
        detail: Option<&str>,
    ) -> Result<(), ClientError> {
        self.report(grant, action, Some(rows), detail)
    }

    fn report(
        &self,
        grant: &Grant,
        action: UsageAction,
        rows: Option<u64>,
        detail: Option<&str>,
    ) -> Result<(), ClientError> {
        let detail = detail.map(|d| d.chars().take(MAX_EVENT_DETAIL).collect::<String>());
        let body = EventRequest {
            grant_id: grant.grant_id().to_owned(),
            action,
            detail,
            rows,
        };
        self.signed_no_content(Method::POST, "/v1/events", Some(&body))
    }

    /// `POST /v1/exports` (PROTOCOL.md §7.8): reports the export of a
    /// customer list of `rows` data rows under `grant`, as
    /// [`Session::report_event`] reports an `export`, and receives the
    /// canaries to write into it (none unless the export spends an approved
    /// take-out). Report before anything is written.
    pub fn report_export(
        &self,
        grant: &Grant,
        rows: u64,
        detail: Option<&str>,
    ) -> Result<irm_core::protocol::ExportReceipt, ClientError> {
        let body = irm_core::protocol::ExportReport {
            grant_id: grant.grant_id().to_owned(),
            rows,
            detail: detail.map(|d| d.chars().take(MAX_EVENT_DETAIL).collect::<String>()),
        };
        self.signed(Method::POST, "/v1/exports", Some(&body))
    }

    /// Exports `plaintext` (a CSV or TSV customer list) under `grant`:
    /// reports it with its row count, and returns it with the canaries the
    /// server issued at random places ([`crate::canary::CsvList`]), ready to
    /// write. A list that cannot carry canaries (UTF-16, no header) is
    /// reported as a plain export and returned unchanged.
    pub fn export_list(
        &self,
        grant: &Grant,
        plaintext: &[u8],
        detail: Option<&str>,
        rng: &mut impl crate::canary::RandomSource,
    ) -> Result<ExportedList, ClientError> {
        self.export_text(grant, plaintext, detail, false, rng)
    }

    /// [`Session::export_list`] for a document nothing says is a list (no
    /// file name, no media type): it carries canaries only if its bytes look
    /// like one ([`crate::canary::CsvList::looks_like_list`]); otherwise it
    /// is reported as a plain export and returned unchanged.
    pub fn export_maybe_list(
        &self,
        grant: &Grant,
        plaintext: &[u8],
        detail: Option<&str>,
        rng: &mut impl crate::canary::RandomSource,
    ) -> Result<ExportedList, ClientError> {
        self.export_text(grant, plaintext, detail, true, rng)
    }

    /// Takes a whole document out (PROTOCOL.md §7.3, §7.8), for a caller
    /// that holds its plaintext (libirm's `irm_export`): a customer list
    /// (CSV or TSV by its name or media type; or, with neither, by its
    /// bytes) as [`Session::export_list`] does, with the canaries of an
    /// approved export among its rows; any other document as it is, once
    /// the key server accepted its `export` report.
    pub fn export_document(
        &self,
        grant: &Grant,
        plaintext: &[u8],
        rng: &mut impl crate::canary::RandomSource,
    ) -> Result<ExportedList, ClientError> {
        let metadata = grant.verified_header()?.metadata().clone();
        let unnamed = metadata.file_name.is_none() && metadata.media_type.is_none();
        if crate::canary::is_list(&metadata) || unnamed {
            return self.export_text(grant, plaintext, None, unnamed, rng);
        }
        self.export_as_is(grant, plaintext, None)
    }

    fn export_text(
        &self,
        grant: &Grant,
        plaintext: &[u8],
        detail: Option<&str>,
        sniff: bool,
        rng: &mut impl crate::canary::RandomSource,
    ) -> Result<ExportedList, ClientError> {
        match crate::canary::CsvList::parse(plaintext) {
            Ok(list) if !sniff || list.looks_like_list() => {
                let receipt = self.report_export(grant, list.data_rows(), detail)?;
                // Without canaries the list goes out byte for byte.
                let out = if receipt.canaries.is_empty() {
                    zeroize::Zeroizing::new(plaintext.to_vec())
                } else {
                    list.with_canaries(&receipt.canaries, rng)
                };
                Ok((out, receipt))
            }
            _ => self.export_as_is(grant, plaintext, detail),
        }
    }

    /// A document that is not a list: the `export` report, then its bytes
    /// as they are, with no canaries.
    fn export_as_is(
        &self,
        grant: &Grant,
        plaintext: &[u8],
        detail: Option<&str>,
    ) -> Result<ExportedList, ClientError> {
        self.report_event(grant, irm_core::protocol::UsageAction::Export, detail)?;
        Ok((
            zeroize::Zeroizing::new(plaintext.to_vec()),
            irm_core::protocol::ExportReceipt {
                export_id: None,
                canaries: Vec::new(),
            },
        ))
    }

    /// PROTOCOL.md §1: a client talks only to the server it enrolled with. The
    /// file's key-access URLs are compared with it, never contacted.
    fn check_own_server(&self, header: &SealedHeader) -> Result<(), ClientError> {
        if header
            .key_access()
            .iter()
            .any(|entry| self.config.is_own_server(&entry.kas_url))
        {
            return Ok(());
        }
        Err(ClientError::ServerMismatch {
            file_servers: header
                .key_access()
                .iter()
                .map(|entry| entry.kas_url.clone())
                .collect(),
            enrolled: self.config.server_url.clone(),
        })
    }
}

/// The keys must be the ones `device.json` names, or every request fails
/// with a confusing `credential_invalid`.
fn check_keys_match(
    config: &DeviceConfig,
    keys: &DeviceKeys,
    key_path: &Path,
) -> Result<(), ClientError> {
    if keys.device_public_b64() != config.device_public_key
        || keys.signing.public_key_b64() != config.signing_public_key
    {
        return Err(ClientError::BadConfig {
            path: key_path.to_owned(),
            problem: "its keys do not match the public keys in device.json; enroll this \
                      device again"
                .into(),
        });
    }
    Ok(())
}

/// Parses a `ServerKeyInfo`'s public key and checks that its id matches.
pub(crate) fn checked_server_key(info: &ServerKeyInfo) -> Result<KasPublicKey, ClientError> {
    let key = KasPublicKey::from_text(&info.public_key).map_err(|e| {
        ClientError::bad_response(
            "GET /v1/server-key",
            format!("the public key is not valid: {e}"),
        )
    })?;
    if !key.key_id().to_string().eq_ignore_ascii_case(&info.key_id) {
        return Err(ClientError::bad_response(
            "GET /v1/server-key",
            format!(
                "the key id {} does not belong to the public key (its id is {})",
                info.key_id,
                key.key_id()
            ),
        ));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use irm_core::protocol::Role;

    use super::*;
    use crate::config::{DEVICE_JSON, DEVICE_KEY};
    use crate::keystore::KeyEncryptionKey;

    /// A self-signed certificate that only has to parse: these tests never connect.
    const TEST_CA: &str = include_str!("../testdata/test-ca.pem");
    const DEVICE: &str = "00112233445566778899aabbccddeeff";

    fn enroll_offline(dir: &Path, passphrase: &str) -> DeviceConfig {
        let keys = DeviceKeys::generate().unwrap();
        let config = DeviceConfig {
            version: 1,
            server_url: "https://kas.example:8443".into(),
            ca_pem: TEST_CA.into(),
            user: "alice".into(),
            device_id: DEVICE.into(),
            device_name: "alice-laptop".into(),
            device_public_key: keys.device_public_b64(),
            signing_public_key: keys.signing.public_key_b64(),
            roles: vec![Role::User],
            groups: vec!["support".into()],
            server_key: ServerKeyInfo {
                key_id: "00".repeat(16),
                public_key: String::new(),
                url: "https://kas.example:8443".into(),
            },
            enrolled_at: 1_800_000_000,
        };
        let kek = KeyEncryptionKey::new_cheap(&Passphrase::new(passphrase).unwrap()).unwrap();
        keystore::store(dir, &keys, &kek, DEVICE).unwrap();
        config.save(dir).unwrap();
        config
    }

    #[test]
    fn stored_credentials_unlock_with_the_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let config = enroll_offline(dir.path(), "correct horse");
        let session =
            Session::unlock(dir.path(), &Passphrase::new("correct horse").unwrap()).unwrap();
        assert_eq!(session.config(), &config);
        assert_eq!(session.user(), "alice");
        assert_eq!(session.server_url(), "https://kas.example:8443");
        assert_eq!(DeviceConfig::load(dir.path()).unwrap(), config);
    }

    #[test]
    fn credentials_given_by_path_unlock_for_their_own_server_only() {
        let dir = tempfile::tempdir().unwrap();
        enroll_offline(dir.path(), "correct horse");
        // Kept under other names elsewhere, as an application might.
        let elsewhere = tempfile::tempdir().unwrap();
        let json = elsewhere.path().join("alice.json");
        let key = elsewhere.path().join("alice.key");
        fs::copy(dir.path().join(DEVICE_JSON), &json).unwrap();
        fs::copy(dir.path().join(DEVICE_KEY), &key).unwrap();
        let pass = Passphrase::new("correct horse").unwrap();

        let session =
            Session::unlock_explicit("https://KAS.example:8443/", TEST_CA, &json, &key, &pass)
                .unwrap();
        assert_eq!(session.user(), "alice");
        assert_eq!(session.server_url(), "https://kas.example:8443");
        assert_eq!(session.config_dir(), elsewhere.path());

        // Another server: refused before the passphrase is even tried.
        let wrong = Passphrase::new("not it").unwrap();
        let err =
            Session::unlock_explicit("https://kas.example:9443", TEST_CA, &json, &key, &wrong)
                .unwrap_err();
        assert!(
            matches!(&err, ClientError::InvalidArgument(m)
                if m.contains("https://kas.example:9443") && m.contains("https://kas.example:8443")),
            "{err:?}"
        );
        let err =
            Session::unlock_explicit("https://kas.example:8443", "not a PEM", &json, &key, &pass)
                .unwrap_err();
        assert!(matches!(err, ClientError::InvalidArgument(_)), "{err:?}");
        let err =
            Session::unlock_explicit("https://kas.example:8443", TEST_CA, &json, &key, &wrong)
                .unwrap_err();
        assert!(
            matches!(err, ClientError::WrongPassphrase { .. }),
            "{err:?}"
        );
        // The two files swapped, and a missing file.
        let err = Session::unlock_explicit("https://kas.example:8443", TEST_CA, &key, &json, &pass)
            .unwrap_err();
        assert!(matches!(err, ClientError::BadConfig { .. }), "{err:?}");
        let gone = elsewhere.path().join("gone.json");
        let err = Session::unlock_explicit("https://kas.example:8443", TEST_CA, &gone, &key, &pass)
            .unwrap_err();
        assert!(matches!(err, ClientError::Io { .. }), "{err:?}");
    }

    #[test]
    fn a_wrong_passphrase_does_not_unlock() {
        let dir = tempfile::tempdir().unwrap();
        enroll_offline(dir.path(), "correct horse");
        let err =
            Session::unlock(dir.path(), &Passphrase::new("correct hose").unwrap()).unwrap_err();
        assert!(
            matches!(err, ClientError::WrongPassphrase { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn both_credential_files_are_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        enroll_offline(dir.path(), "correct horse");
        for name in [DEVICE_JSON, DEVICE_KEY] {
            let mode = fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
    }

    #[test]
    fn no_credentials_means_not_enrolled() {
        let dir = tempfile::tempdir().unwrap();
        let err = Session::unlock(dir.path(), &Passphrase::new("x").unwrap()).unwrap_err();
        assert!(matches!(err, ClientError::NotEnrolled { .. }));
    }

    #[test]
    fn keys_from_another_enrollment_are_refused() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        enroll_offline(a.path(), "correct horse");
        enroll_offline(b.path(), "correct horse");
        fs::copy(b.path().join(DEVICE_KEY), a.path().join(DEVICE_KEY)).unwrap();
        let err =
            Session::unlock(a.path(), &Passphrase::new("correct horse").unwrap()).unwrap_err();
        assert!(matches!(err, ClientError::BadConfig { .. }), "{err:?}");
    }

    #[test]
    fn a_session_debug_shows_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        enroll_offline(dir.path(), "correct horse");
        let session =
            Session::unlock(dir.path(), &Passphrase::new("correct horse").unwrap()).unwrap();
        let debug = format!("{session:?}");
        assert!(debug.contains("alice"));
        let secret = URL_SAFE_NO_PAD.encode(session.keys.device.expose_secret());
        let seed = URL_SAFE_NO_PAD.encode(*session.keys.signing.expose_secret());
        assert!(!debug.contains(&secret) && !debug.contains(&seed));
        assert!(!debug.contains("correct horse"));
    }

    #[test]
    fn a_file_for_another_key_server_is_refused_without_contacting_it() {
        use std::collections::BTreeSet;

        use irm_core::{EnvelopeBuilder, KasSecretKey, Policy, PolicyGrant, Recipient, Rights};

        let dir = tempfile::tempdir().unwrap();
        enroll_offline(dir.path(), "correct horse");
        let session =
            Session::unlock(dir.path(), &Passphrase::new("correct horse").unwrap()).unwrap();
        let policy = Policy::builder()
            .grant(PolicyGrant {
                recipients: BTreeSet::from([Recipient::parse("alice").unwrap()]),
                rights: Rights::VIEW,
            })
            .max_lease_secs(600)
            .build()
            .unwrap();
        let header = EnvelopeBuilder::new(policy)
            .key_server(
                "https://kas.attacker.example",
                KasSecretKey::generate().unwrap().public_key(),
            )
            .build()
            .unwrap()
            .header()
            .clone();
        // kas.attacker.example does not resolve: a contact attempt would be
        // Unreachable, not ServerMismatch.
        let err = session.grant(&header, false).unwrap_err();
        assert!(
            matches!(&err, ClientError::ServerMismatch { file_servers, .. }
                if file_servers == &["https://kas.attacker.example".to_owned()]),
            "{err:?}"
        );
    }
}
