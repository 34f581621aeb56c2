//! The objects behind the handles, in safe Rust on top of irm-client and
//! irm-core: no second implementation of enrollment, grants or leases.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use ::irm_client::text::{self, Detector, TextEncoding};
use ::irm_client::{
    DeviceConfig, Grant, HeaderOptions, Passphrase, SealTarget, Session, Watch,
    normalize_server_url,
};
use irm_core::protocol::{Notice, UsageAction};
use zeroize::Zeroizing;

use irm_core::{
    DEFAULT_MAX_LEASE_SECS, KasPublicKey, Metadata, PayloadBackend, Policy, PolicyGrant, Recipient,
    Rights, SealedHeader, SeekableOpener, StreamOptions,
};

use crate::boundary::{Handle, Kind};
use crate::status::{Failure, io_failure, irm_status};

/// Opaque handle: an unlocked device (its credentials and a connection to
/// its key server). Thread-safe.
#[allow(non_camel_case_types)] // the C name
pub struct irm_client {
    _private: [u8; 0],
}

/// Opaque handle: a policy under construction. Not thread-safe.
#[allow(non_camel_case_types)] // the C name
pub struct irm_policy {
    _private: [u8; 0],
}

/// Opaque handle: an opened sealed file with its live grant. Thread-safe
/// (calls on one document are serialised).
#[allow(non_camel_case_types)] // the C name
pub struct irm_document {
    _private: [u8; 0],
}

/// An unlocked session, shared with the documents opened through it (so a
/// document stays usable after its client is freed).
pub(crate) struct Client {
    pub(crate) session: Arc<Session>,
}

impl Handle for Client {
    type C = irm_client;
    const KIND: Kind = Kind::Client;
    const NAME: &'static str = "the irm_client";
}

impl Client {
    pub(crate) fn open(config_dir: Option<&str>, passphrase: &str) -> Result<Self, Failure> {
        let dir = match config_dir {
            Some("") => {
                return Err(Failure::invalid(
                    "config_dir is empty (give NULL for the default)",
                ));
            }
            Some(dir) => PathBuf::from(dir),
            None => ::irm_client::config_dir()?,
        };
        let passphrase = Passphrase::new(passphrase)?;
        let session = Session::unlock(&dir, &passphrase)?;
        Ok(Self {
            session: Arc::new(session),
        })
    }

    /// Credentials given by path (`irm_client_open_explicit`): the checks
    /// that need no key derivation come first, so a wrong URL or CA file
    /// is reported at once and by name.
    pub(crate) fn open_explicit(
        server_url: &str,
        ca_pem_path: &str,
        device_json: &str,
        device_key: &str,
        passphrase: &str,
    ) -> Result<Self, Failure> {
        for (what, value) in [
            ("server_url", server_url),
            ("ca_pem_path", ca_pem_path),
            ("device_json_path", device_json),
            ("device_key_path", device_key),
        ] {
            if value.is_empty() {
                return Err(Failure::invalid(format!("{what} is empty")));
            }
        }
        normalize_server_url(server_url)?;
        let config = DeviceConfig::load_file(Path::new(device_json))?;
        if !config.is_own_server(server_url) {
            return Err(Failure::new(
                irm_status::IRM_STATUS_SERVER_MISMATCH,
                format!(
                    "server_url {server_url} is not the key server the device credential {device_json} \
                     was enrolled with ({}): give that server's URL, or the credential enrolled with \
                     {server_url}",
                    config.server_url
                ),
            ));
        }
        let ca_pem = std::fs::read_to_string(ca_pem_path)
            .map_err(|e| io_failure(&format!("reading the CA certificate {ca_pem_path}"), &e))?;
        let passphrase = Passphrase::new(passphrase)?;
        let session = Session::unlock_explicit(
            server_url,
            &ca_pem,
            Path::new(device_json),
            Path::new(device_key),
            &passphrase,
        )?;
        Ok(Self {
            session: Arc::new(session),
        })
    }
}

/// A policy being built by the setters.
#[derive(Debug, Clone)]
pub(crate) struct PolicyDraft {
    grants: Vec<PolicyGrant>,
    not_after: Option<u64>,
    classification: Option<String>,
    max_lease_secs: u32,
}

impl Handle for PolicyDraft {
    type C = irm_policy;
    const KIND: Kind = Kind::Policy;
    const NAME: &'static str = "the irm_policy";
}

impl Default for PolicyDraft {
    fn default() -> Self {
        Self {
            grants: Vec::new(),
            not_after: None,
            classification: None,
            max_lease_secs: DEFAULT_MAX_LEASE_SECS,
        }
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl PolicyDraft {
    /// `alice,@support` get `rights` (an `IRM_RIGHT_*` bitmask).
    pub(crate) fn add_grant(&mut self, recipients: &str, rights: u32) -> Result<(), Failure> {
        let rights = Rights::from_bits(rights)
            .filter(|r| !r.is_empty())
            .ok_or_else(|| {
                Failure::invalid(format!(
                    "rights 0x{rights:x} is not a non-empty combination of IRM_RIGHT_* bits"
                ))
            })?;
        let recipients = Recipient::parse_list(recipients).map_err(|e| {
            Failure::invalid(format!(
                "recipients {recipients:?}: {e}; give names like \"alice,@support\""
            ))
        })?;
        self.grants.push(PolicyGrant { recipients, rights });
        Ok(())
    }

    pub(crate) fn set_not_after(&mut self, unix: u64) -> Result<(), Failure> {
        if unix <= now_unix() {
            return Err(Failure::invalid(format!(
                "not_after {unix} is already past, so nobody could open the file"
            )));
        }
        self.not_after = Some(unix);
        Ok(())
    }

    pub(crate) fn set_classification(&mut self, classification: Option<&str>) {
        self.classification = classification.map(str::to_owned);
    }

    pub(crate) fn set_max_lease(&mut self, secs: u32) -> Result<(), Failure> {
        if secs == 0 {
            return Err(Failure::invalid(
                "the maximum lease must be at least 1 second",
            ));
        }
        self.max_lease_secs = secs;
        Ok(())
    }

    fn build(&self) -> Result<Policy, Failure> {
        if let Some(not_after) = self.not_after.filter(|na| *na <= now_unix()) {
            return Err(Failure::invalid(format!(
                "the policy's not_after {not_after} has passed, so nobody could open the file"
            )));
        }
        Policy::builder()
            .grants(self.grants.clone())
            .not_after(self.not_after)
            .max_lease_secs(self.max_lease_secs)
            .classification(self.classification.clone())
            .build()
            .map_err(|e| Failure::invalid(format!("the policy is not valid: {e}")))
    }
}

/// Where the content key is wrapped to.
pub(crate) enum KeyServer<'a> {
    /// The client's key server: its current key is fetched and the file is registered.
    Online(&'a Session),
    /// A key server public key (text form) and its URL; nothing is contacted.
    Offline { key_text: &'a str, url: &'a str },
}

impl KeyServer<'_> {
    /// The client crate's seal target for this choice; the offline key and
    /// URL are checked here, where a caller's mistake is an invalid argument.
    fn seal_target(&self) -> Result<SealTarget<'_>, Failure> {
        match self {
            KeyServer::Online(session) => Ok(SealTarget::Online(session)),
            KeyServer::Offline { key_text, url } => {
                let key = KasPublicKey::from_text(key_text.trim()).map_err(|e| {
                    Failure::invalid(format!("the key server public key is not valid: {e}"))
                })?;
                if url.is_empty() {
                    return Err(Failure::invalid("the key server URL is empty"));
                }
                Ok(SealTarget::Offline {
                    key,
                    url: (*url).to_owned(),
                })
            }
        }
    }
}

/// Seals `input` into `output` (replaced if it exists, written through a
/// temporary file beside it so no partial file is ever left). Returns the file id.
pub(crate) fn seal_file(
    target: &KeyServer<'_>,
    policy: &PolicyDraft,
    input: &Path,
    output: &Path,
) -> Result<String, Failure> {
    let io = |what: &str, path: &Path, e: &std::io::Error| {
        io_failure(&format!("{what} {}", path.display()), e)
    };
    let mut source = File::open(input).map_err(|e| io("opening", input, &e))?;
    let len = source
        .metadata()
        .map_err(|e| io("reading", input, &e))?
        .len();
    let metadata = Metadata {
        file_name: input.file_name().and_then(OsStr::to_str).map(str::to_owned),
        media_type: Some(Metadata::media_type_for(input).to_owned()),
        plaintext_len: Some(len),
    };
    let target = target.seal_target()?;
    let pending = target.prepare(policy.build()?, metadata, HeaderOptions::default())?;
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let temp =
        tempfile::NamedTempFile::new_in(&dir).map_err(|e| io("creating a file in", &dir, &e))?;
    // Online, the file is registered before the output takes its name.
    let sealed = pending.seal(&mut source, temp, StreamOptions::default())?;
    sealed
        .output
        .persist(output)
        .map_err(|e| io("writing", output, &e.error))?;
    Ok(sealed.file_id.to_string())
}

/// Seals `data` in memory, in place: one buffer of the sealed size, no
/// second plaintext copy. Returns the sealed bytes.
pub(crate) fn seal_buffer(
    target: &KeyServer<'_>,
    policy: &PolicyDraft,
    data: &[u8],
    file_name: Option<&str>,
    media_type: Option<&str>,
) -> Result<Vec<u8>, Failure> {
    let metadata = Metadata {
        file_name: file_name.map(str::to_owned),
        media_type: media_type.map(str::to_owned),
        plaintext_len: Some(data.len() as u64),
    };
    let target = target.seal_target()?;
    let pending = target.prepare(policy.build()?, metadata, HeaderOptions::default())?;
    let sealed_len = pending
        .header()
        .sealed_len()
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| Failure::invalid("the data is too large to seal in memory"))?;
    // Allocated at the sealed size up front, so growing it in place never
    // moves (and leaves behind) a plaintext copy.
    let mut buf = Vec::with_capacity(sealed_len);
    buf.extend_from_slice(data);
    pending.seal_in_place(&mut buf, StreamOptions::default())?;
    Ok(buf)
}

/// An opened document: the grant and a random-access opener over the file.
pub(crate) struct Document {
    session: Arc<Session>,
    state: Mutex<DocState>,
    /// Set by the push channel (PROTOCOL.md §13) when the grant must be
    /// renewed at once; taken by the next call that releases plaintext, and
    /// by `irm_document_check`.
    recheck: Arc<AtomicBool>,
    /// The push channel; dropped (and stopped) with the document.
    _watch: Option<Watch>,
}

struct DocState {
    grant: Grant,
    opener: SeekableOpener<File>,
    metadata: Metadata,
    position: u64,
    /// Whether the first read was reported (`program_read`).
    reported: bool,
    /// Notices from the grant and its renewals not yet taken by
    /// `irm_document_notices` (PROTOCOL.md §4.3), one line of English each,
    /// with the audit witness's alarm if one was raised (§9.2).
    notices: Vec<String>,
    /// The plaintext's text encoding once something has read it all
    /// (`irm_document_text_encoding`, `irm_document_text_utf8`): the
    /// plaintext cannot change, so it is detected once.
    text_encoding: Option<TextEncoding>,
    /// Why the document was closed by the key server, once a renewal the
    /// push channel asked for was refused: every later read fails with it.
    ended: Option<(irm_status, String)>,
}

/// What a grant tells the person: its notices, then the audit witness's
/// alarm if the server's log went back.
fn told(grant: &Grant) -> Vec<String> {
    grant
        .notices()
        .iter()
        .map(Notice::message)
        .chain(
            grant
                .witness_alarm()
                .map(|alarm| format!("WARNING: {alarm}")),
        )
        .collect()
}

impl Handle for Document {
    type C = irm_document;
    const KIND: Kind = Kind::Document;
    const NAME: &'static str = "the irm_document";
}

/// What `irm_document_metadata` returns.
pub(crate) struct DocumentMetadata {
    pub(crate) file_name: Option<String>,
    pub(crate) media_type: Option<String>,
    pub(crate) plaintext_len: u64,
}

impl Document {
    /// Reads the header of `path` and asks the key server for a grant.
    pub(crate) fn open(client: &Client, path: &Path) -> Result<Self, Failure> {
        let mut file =
            File::open(path).map_err(|e| io_failure(&format!("opening {}", path.display()), &e))?;
        let header = SealedHeader::read_from(&mut file)?;
        let grant = client.session.grant(&header, false)?;
        let notices = told(&grant);
        let verified = grant.verified_header()?;
        let metadata = verified.metadata().clone();
        let opener = SeekableOpener::new(verified, file, PayloadBackend::Fast)
            .map_err(|e| io_failure(&format!("reading {}", path.display()), &e))?;
        let recheck = Arc::new(AtomicBool::new(false));
        let raised = Arc::clone(&recheck);
        // Without a push channel (a thread that cannot start), the lease
        // alone ends the document, as before.
        let watch = client
            .session
            .watch(&grant, move |_| raised.store(true, Ordering::Release))
            .ok();
        Ok(Self {
            recheck,
            _watch: watch,
            session: Arc::clone(&client.session),
            state: Mutex::new(DocState {
                grant,
                opener,
                metadata,
                position: 0,
                reported: false,
                notices,
                text_encoding: None,
                ended: None,
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, DocState> {
        // A panic mid-call leaves at worst a stale position; the grant and
        // opener check themselves on every use.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn rights(&self) -> u32 {
        self.state().grant.rights().bits()
    }

    pub(crate) fn lease_expires_in(&self) -> u64 {
        self.state().grant.time_left().as_secs()
    }

    pub(crate) fn metadata(&self) -> DocumentMetadata {
        let state = self.state();
        DocumentMetadata {
            file_name: state.metadata.file_name.clone(),
            media_type: state.metadata.media_type.clone(),
            plaintext_len: state.opener.plaintext_len(),
        }
    }

    /// Renews at once if the push channel asked for it; fails, now and on
    /// every later read, once the key server refused that renewal. A
    /// renewal that could not reach the server leaves the document open on
    /// its lease and is tried again at the next call.
    fn check_live(&self, state: &mut DocState) -> Result<(), Failure> {
        if state.ended.is_none() && self.recheck.swap(false, Ordering::AcqRel) {
            match self.session.renew(&mut state.grant) {
                Ok(()) => {
                    let renewed = told(&state.grant);
                    state.notices.extend(renewed);
                }
                Err(e @ ::irm_client::ClientError::Denied(..)) => {
                    let failure = Failure::from(e);
                    state.ended = Some((failure.status, failure.message));
                }
                Err(_) => self.recheck.store(true, Ordering::Release),
            }
        }
        match &state.ended {
            Some((status, message)) => Err(Failure::new(
                *status,
                format!("the key server closed this document: {message}"),
            )),
            None => Ok(()),
        }
    }

    /// `irm_document_check`: whether the document may still be read, after
    /// any renewal the push channel asked for.
    pub(crate) fn check(&self) -> Result<(), Failure> {
        let mut state = self.state();
        self.check_live(&mut state)?;
        state.grant.verified_header()?;
        Ok(())
    }

    pub(crate) fn renew(&self) -> Result<(), Failure> {
        let mut state = self.state();
        self.session.renew(&mut state.grant)?;
        // The key server said yes again (a file restored, say).
        state.ended = None;
        self.recheck.store(false, Ordering::Release);
        let renewed = told(&state.grant);
        state.notices.extend(renewed);
        Ok(())
    }

    /// The notices not taken yet, one line of English each; taking them
    /// empties the list.
    pub(crate) fn take_notices(&self) -> Vec<String> {
        std::mem::take(&mut self.state().notices)
    }

    pub(crate) fn report_event(&self, action: UsageAction) -> Result<(), Failure> {
        let state = self.state();
        self.session.report_event(&state.grant, action, None)?;
        Ok(())
    }

    pub(crate) fn report_rows(&self, action: UsageAction, rows: u64) -> Result<(), Failure> {
        let state = self.state();
        self.session.report_rows(&state.grant, action, rows, None)?;
        Ok(())
    }

    /// Plaintext is handed to programs only while the lease holds and the
    /// grant carries `program`; the first read is reported before any byte
    /// is released, so an unaudited read never happens.
    fn check_readable(&self, state: &mut DocState) -> Result<(), Failure> {
        self.check_live(state)?;
        state.grant.verified_header()?;
        if !state.grant.rights().contains(Rights::PROGRAM) {
            return Err(Failure::new(
                irm_status::IRM_STATUS_NO_PROGRAM_RIGHT,
                format!(
                    "the grant's rights ({}) do not include `program`: plaintext is not handed \
                     to programs",
                    state.grant.rights()
                ),
            ));
        }
        if !state.reported {
            self.session
                .report_event(&state.grant, UsageAction::ProgramRead, None)?;
            state.reported = true;
        }
        Ok(())
    }

    /// Sequential read from the current position.
    pub(crate) fn read(&self, buf: &mut [u8]) -> Result<usize, Failure> {
        let mut state = self.state();
        self.check_readable(&mut state)?;
        let at = state.position;
        let n = read_at(&mut state.opener, at, buf)?;
        state.position = at + n as u64;
        Ok(n)
    }

    /// Read at `offset`, leaving the sequential position alone.
    pub(crate) fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Failure> {
        let mut state = self.state();
        self.check_readable(&mut state)?;
        read_at(&mut state.opener, offset, buf)
    }
}

/// How much plaintext the encoding detection decrypts at a time.
const DETECT_PIECE_LEN: usize = 64 * 1024;

/// What `irm_document_text_utf8` hands over: the whole text in UTF-8,
/// without a byte-order mark.
pub(crate) struct Utf8Text {
    /// Exactly the text's length, so handing it to C never reallocates (and
    /// leaves a copy behind); wiped by `irm_buffer_free`.
    pub(crate) bytes: Box<[u8]>,
    /// Whether some bytes were not valid in the detected encoding and were
    /// replaced by U+FFFD.
    pub(crate) had_errors: bool,
}

impl Document {
    /// The plaintext's text encoding, by irm-client's rule (the viewer's),
    /// read through chunk by chunk: the plaintext is never held whole. The
    /// encoding is derived from the content, so it is released on the same
    /// terms as the content (lease, program right, reported first read).
    pub(crate) fn text_encoding(&self) -> Result<TextEncoding, Failure> {
        let mut state = self.state();
        self.check_readable(&mut state)?;
        if let Some(encoding) = state.text_encoding {
            return Ok(encoding);
        }
        let mut detector = Detector::default();
        let mut piece = Zeroizing::new(vec![0u8; DETECT_PIECE_LEN]);
        let mut offset = 0u64;
        loop {
            let n = read_at(&mut state.opener, offset, &mut piece)?;
            if n == 0 {
                break;
            }
            detector.update(&piece[..n]);
            offset += n as u64;
        }
        let encoding = detector.finish();
        state.text_encoding = Some(encoding);
        Ok(encoding)
    }

    /// The whole plaintext decoded to UTF-8 (irm-client's `text::decode`,
    /// the viewer's decoding), on the same terms as `irm_read`. Every
    /// intermediate copy is wiped when this returns.
    /// The whole document taken out (PROTOCOL.md §7.3, §7.8): the key
    /// server accepts the `export` report first (the export right, and an
    /// approved take-out where the server requires one); a customer list
    /// comes back with the canaries the server issued for this export among
    /// its rows. Returns the bytes (exactly their length, wiped when freed)
    /// and how many canary rows they carry.
    pub(crate) fn export(&self) -> Result<(Box<[u8]>, usize), Failure> {
        let mut state = self.state();
        self.check_live(&mut state)?;
        let plain = read_all(&mut state.opener)?;
        let (out, receipt) = self.session.export_document(
            &state.grant,
            &plain,
            &mut ::irm_client::canary::OsRandom,
        )?;
        drop(plain);
        // Allocated (zeroed) at its final size before any byte is copied in.
        let mut bytes = vec![0u8; out.len()].into_boxed_slice();
        bytes.copy_from_slice(&out);
        Ok((bytes, receipt.canaries.len()))
    }

    pub(crate) fn text_utf8(&self) -> Result<Utf8Text, Failure> {
        let mut state = self.state();
        self.check_readable(&mut state)?;
        let plain = read_all(&mut state.opener)?;
        let decoded = text::decode(&plain);
        state.text_encoding = Some(decoded.encoding);
        // Allocated (zeroed) at its final size before any text is copied in.
        let mut bytes = vec![0u8; decoded.text.len()].into_boxed_slice();
        bytes.copy_from_slice(decoded.text.as_bytes());
        Ok(Utf8Text {
            bytes,
            had_errors: decoded.had_errors,
        })
    }
}

/// The whole plaintext, in zeroizing memory reserved once at its length.
fn read_all(opener: &mut SeekableOpener<File>) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let plaintext_len = opener.plaintext_len();
    let too_large = || {
        Failure::new(
            irm_status::IRM_STATUS_OUT_OF_MEMORY,
            format!(
                "the document's {plaintext_len} bytes do not fit in memory at once; \
                 read it in pieces with irm_read"
            ),
        )
    };
    let len = usize::try_from(plaintext_len).map_err(|_| too_large())?;
    let mut plain = Zeroizing::new(Vec::new());
    plain.try_reserve_exact(len).map_err(|_| too_large())?;
    plain.resize(len, 0);
    let n = read_at(opener, 0, &mut plain)?;
    plain.truncate(n);
    Ok(plain)
}

/// Fills `buf` from `offset` up to the end of the plaintext. On failure
/// whatever was copied is wiped again.
fn read_at(
    opener: &mut SeekableOpener<File>,
    offset: u64,
    buf: &mut [u8],
) -> Result<usize, Failure> {
    if offset >= opener.plaintext_len() || buf.is_empty() {
        return Ok(0);
    }
    let mut filled = 0;
    let result = opener.seek(SeekFrom::Start(offset)).and_then(|_| {
        while filled < buf.len() {
            match opener.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    match result {
        Ok(()) => Ok(filled),
        Err(e) => {
            zeroize::Zeroize::zeroize(&mut buf[..filled]);
            Err(io_failure("reading the sealed payload", &e))
        }
    }
}

/// `IRM_ACTION_*` numbers.
pub(crate) fn usage_action(action: u32) -> Result<UsageAction, Failure> {
    Ok(match action {
        crate::numbers::IRM_ACTION_PRINT => UsageAction::Print,
        crate::numbers::IRM_ACTION_COPY => UsageAction::Copy,
        crate::numbers::IRM_ACTION_EXPORT => UsageAction::Export,
        crate::numbers::IRM_ACTION_PROGRAM_READ => UsageAction::ProgramRead,
        crate::numbers::IRM_ACTION_CLOSE => UsageAction::Close,
        other => {
            return Err(Failure::invalid(format!(
                "unknown action {other} (give an IRM_ACTION_* value)"
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_take_comma_separated_recipients_and_known_rights_only() {
        let mut draft = PolicyDraft::default();
        draft
            .add_grant(
                " alice, @support ,",
                crate::numbers::IRM_RIGHT_VIEW | crate::numbers::IRM_RIGHT_PROGRAM,
            )
            .unwrap();
        let policy = draft.build().unwrap();
        assert_eq!(policy.grants.len(), 1);
        assert_eq!(policy.grants[0].recipients.len(), 2);
        assert_eq!(policy.grants[0].rights, Rights::VIEW | Rights::PROGRAM);

        for (recipients, rights) in [
            ("alice", 0),
            ("alice", 1 << 20),
            (" , ", 1),
            ("@", 1),
            ("a b", 1),
        ] {
            let err = PolicyDraft::default()
                .add_grant(recipients, rights)
                .unwrap_err();
            assert_eq!(
                err.status,
                irm_status::IRM_STATUS_INVALID_ARGUMENT,
                "{recipients:?} {rights}"
            );
        }
    }

    #[test]
    fn a_policy_without_grants_or_with_a_past_expiry_is_refused() {
        assert!(PolicyDraft::default().build().is_err());
        let mut draft = PolicyDraft::default();
        assert!(draft.set_not_after(1).is_err());
        assert!(draft.set_max_lease(0).is_err());
    }

    #[test]
    fn the_rights_constants_are_irm_cores_bits() {
        assert_eq!(crate::numbers::IRM_RIGHT_VIEW, Rights::VIEW.bits());
        assert_eq!(crate::numbers::IRM_RIGHT_PRINT, Rights::PRINT.bits());
        assert_eq!(crate::numbers::IRM_RIGHT_COPY, Rights::COPY.bits());
        assert_eq!(crate::numbers::IRM_RIGHT_EXPORT, Rights::EXPORT.bits());
        assert_eq!(crate::numbers::IRM_RIGHT_PROGRAM, Rights::PROGRAM.bits());
    }

    #[test]
    fn offline_buffer_sealing_opens_with_the_key_servers_key() {
        let kas = irm_core::KasSecretKey::generate().unwrap();
        let text = kas.public_key().to_text();
        let mut draft = PolicyDraft::default();
        draft
            .add_grant("@support", crate::numbers::IRM_RIGHT_VIEW)
            .unwrap();
        let target = KeyServer::Offline {
            key_text: &text,
            url: "https://kas.example",
        };
        let data = b"customer,phone\nYamada,03\n".repeat(5000);
        let sealed =
            seal_buffer(&target, &draft, &data, Some("calls.csv"), Some("text/csv")).unwrap();
        let mut input = &sealed[..];
        let header = SealedHeader::read_from(&mut input).unwrap();
        let verified = header.clone().verify(kas.unwrap(&header).unwrap()).unwrap();
        assert_eq!(verified.metadata().file_name.as_deref(), Some("calls.csv"));
        let plain = irm_core::open_to_vec(&verified, input, StreamOptions::default()).unwrap();
        assert_eq!(&plain[..], &data[..]);

        let bad = KeyServer::Offline {
            key_text: "not a key",
            url: "https://kas.example",
        };
        let err = seal_buffer(&bad, &draft, b"x", None, None).unwrap_err();
        assert_eq!(err.status, irm_status::IRM_STATUS_INVALID_ARGUMENT);
    }
}
