//! The frozen test vectors of `tests/vectors/` (STYLE.md §5), read back
//! through the whole open path: header parse, key-server or device unwrap,
//! header verification, then the payload through `Opener` (several thread
//! counts and both AES-GCM backends, from a `Read` and a `BufRead`),
//! `SeekableOpener` and `open_to_vec`.
//!
//! Each vector states one expected outcome; this test checks that exact
//! outcome, error kind and chunk index included. The file format is in
//! `tests/vectors/README.md`; `examples/gen_vectors.rs` wrote the files once.
//! A failing vector means this build reads the format differently from the
//! build that froze it.
//!
//! `IRM_VECTORS_DIR` points the test at another directory, to check freshly
//! generated vectors before they replace the frozen ones.

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use irm_core::{
    DeviceSecretKey, DeviceWrappedKey, FormatError, KasSecretKey, Metadata, OpenError,
    PayloadBackend, Policy, PolicyError, RewrapContext, SealedHeader, SeekableOpener,
    StreamOptions, UnwrapError, VerifiedHeader, WRAPPED_KEY_LEN,
};
use sha2::{Digest, Sha256};

/// Fewer files than this means vectors were lost.
const MIN_VECTORS: usize = 66;

/// Every key a vector head may have.
const KNOWN_KEYS: &[&str] = &[
    "expect",
    "kind",
    "policy-kind",
    "chunk",
    "comment",
    "kas-secret-key",
    "device-secret-key",
    "device-id",
    "lease-expires-at",
    "device-wrapped-key",
    "payload-sha256",
    "plaintext-len",
    "file-id",
    "created-at",
    "chunk-len",
    "header-sha256",
    "policy-json",
    "issuer",
    "file-name",
    "media-type",
    "metadata-plaintext-len",
    "empty-strings",
];
const SUCCESS_KEYS: &[&str] = &[
    "payload-sha256",
    "plaintext-len",
    "file-id",
    "created-at",
    "chunk-len",
    "header-sha256",
    "policy-json",
];
const DEVICE_KEYS: &[&str] = &[
    "device-secret-key",
    "device-id",
    "lease-expires-at",
    "device-wrapped-key",
];

/// The ways of reading a payload; all must agree on every vector.
const STREAM_OPTIONS: &[StreamOptions] = &[
    StreamOptions {
        threads: 1,
        backend: PayloadBackend::Fast,
    },
    StreamOptions {
        threads: 1,
        backend: PayloadBackend::Portable,
    },
    StreamOptions {
        threads: 4,
        backend: PayloadBackend::Fast,
    },
];

struct Vector {
    name: String,
    head: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Vector {
    fn parse(name: String, file: &[u8]) -> Self {
        let split = file
            .windows(2)
            .position(|w| w == b"\n\n")
            .unwrap_or_else(|| panic!("{name}: no blank line ends the head"));
        let text = std::str::from_utf8(&file[..split])
            .unwrap_or_else(|_| panic!("{name}: the head is not UTF-8"));
        let mut head = BTreeMap::new();
        for line in text.lines() {
            let (key, value) = line
                .split_once(": ")
                .unwrap_or_else(|| panic!("{name}: head line {line:?} is not `key: value`"));
            assert!(
                KNOWN_KEYS.contains(&key),
                "{name}: unknown head key {key:?}"
            );
            assert!(
                head.insert(key.to_owned(), value.to_owned()).is_none(),
                "{name}: head key {key:?} appears twice"
            );
        }
        Self {
            name,
            head,
            body: file[split + 2..].to_vec(),
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.head.get(key).map(String::as_str)
    }

    fn req(&self, key: &str) -> &str {
        self.get(key)
            .unwrap_or_else(|| panic!("{}: head key {key:?} is missing", self.name))
    }

    fn num<T: std::str::FromStr>(&self, key: &str) -> T {
        self.req(key)
            .parse()
            .unwrap_or_else(|_| panic!("{}: head key {key:?} is not a number", self.name))
    }

    fn hex<const N: usize>(&self, key: &str) -> [u8; N] {
        let mut out = [0u8; N];
        hex::decode_to_slice(self.req(key), &mut out).unwrap_or_else(|e| {
            panic!("{}: head key {key:?} is not {N} hex bytes: {e}", self.name)
        });
        out
    }

    fn is_device(&self) -> bool {
        self.get("device-secret-key").is_some()
    }
}

/// The outcome a vector states, or the one this build produced.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Success,
    Failure {
        class: &'static str,
        kind: String,
        /// For `invalid_policy`: the `PolicyError` kind.
        policy_kind: Option<String>,
        chunk: Option<u64>,
    },
}

fn expected(v: &Vector) -> Outcome {
    let expect = v.req("expect");
    let class = match expect {
        "success" => {
            assert!(
                v.get("kind").is_none()
                    && v.get("chunk").is_none()
                    && v.get("policy-kind").is_none(),
                "{}: a success vector has no kind, policy kind or chunk",
                v.name
            );
            for key in SUCCESS_KEYS {
                v.req(key);
            }
            return Outcome::Success;
        }
        "format_error" => "format_error",
        "unwrap_error" => "unwrap_error",
        "open_error" => "open_error",
        other => panic!("{}: unknown expect value {other:?}", v.name),
    };
    for key in SUCCESS_KEYS {
        assert!(
            v.get(key).is_none(),
            "{}: {key} is only for success vectors",
            v.name
        );
    }
    let kind = v.req("kind").to_owned();
    let chunk = v.get("chunk").map(|_| v.num("chunk"));
    let policy_kind = v.get("policy-kind").map(str::to_owned);
    assert_eq!(
        policy_kind.is_some(),
        kind == "invalid_policy",
        "{}: policy-kind goes with kind invalid_policy, and only there",
        v.name
    );
    Outcome::Failure {
        class,
        kind,
        policy_kind,
        chunk,
    }
}

fn format_failure(err: &FormatError) -> Outcome {
    let policy_kind = match err {
        FormatError::Policy(policy) => Some(
            match policy {
                PolicyError::NoGrants => "no_grants",
                PolicyError::NoRecipients => "no_recipients",
                PolicyError::NoRights => "no_rights",
                PolicyError::InvalidRecipient { .. } => "invalid_recipient",
                PolicyError::UnknownRight { .. } => "unknown_right",
                PolicyError::EmptyWindow => "empty_window",
                PolicyError::TooLarge { .. } => "too_large",
                _ => "unknown_policy_error",
            }
            .to_owned(),
        ),
        _ => None,
    };
    Outcome::Failure {
        class: "format_error",
        kind: format_kind(err).to_owned(),
        policy_kind,
        chunk: None,
    }
}

/// The stable kind of a `FormatError`: of the header, or of the decrypted
/// metadata record inside an `OpenError::InvalidMetadata`.
fn format_kind(err: &FormatError) -> &'static str {
    match err {
        FormatError::BadMagic => "bad_magic",
        FormatError::UnsupportedVersion { .. } => "unsupported_version",
        FormatError::Truncated { .. } => "truncated",
        FormatError::CorruptHeader { .. } => "corrupt_header",
        FormatError::UnknownCriticalField { .. } => "unknown_critical_field",
        FormatError::LimitExceeded { .. } => "limit_exceeded",
        FormatError::Policy(_) => "invalid_policy",
        FormatError::Io(_) => "io",
        _ => "unknown_format_error",
    }
}

fn unwrap_failure(err: &UnwrapError) -> Outcome {
    let kind = match err {
        UnwrapError::NoMatchingKey { .. } => "no_matching_key",
        UnwrapError::BindingFailed => "binding_failed",
        UnwrapError::NonContributory => "non_contributory",
        _ => "unknown_unwrap_error",
    };
    Outcome::Failure {
        class: "unwrap_error",
        kind: kind.to_owned(),
        policy_kind: None,
        chunk: None,
    }
}

fn open_failure(err: &OpenError) -> Outcome {
    let (kind, chunk) = match err {
        OpenError::KeyCommitmentMismatch => ("key_commitment_mismatch", None),
        OpenError::MetadataAuthenticationFailed => ("metadata_authentication_failed", None),
        OpenError::InvalidMetadata(inner) => (format_kind(inner), None),
        OpenError::ChunkAuthenticationFailed { index } => {
            ("chunk_authentication_failed", Some(*index))
        }
        OpenError::Truncated => ("truncated", None),
        OpenError::TrailingData => ("trailing_data", None),
        OpenError::LimitExceeded { .. } => ("limit_exceeded", None),
        OpenError::InvalidPosition => ("invalid_position", None),
        _ => ("unknown_open_error", None),
    };
    Outcome::Failure {
        class: "open_error",
        kind: kind.to_owned(),
        policy_kind: None,
        chunk,
    }
}

/// An `io::Error` from an opener must carry an `OpenError`.
fn io_failure(v: &Vector, how: &str, err: &std::io::Error) -> Outcome {
    let open = OpenError::from_io(err)
        .unwrap_or_else(|| panic!("{}: {how} failed with a bare I/O error: {err}", v.name));
    open_failure(open)
}

/// Unwraps the content key the way the vector says: with the key server key,
/// or with the device key and the grant's context.
fn unwrap(v: &Vector, header: &SealedHeader) -> Result<irm_core::ContentKey, UnwrapError> {
    if v.is_device() {
        assert!(
            v.get("kas-secret-key").is_none(),
            "{}: a device vector gives no key server key",
            v.name
        );
        let device = DeviceSecretKey::from_text(v.req("device-secret-key"))
            .unwrap_or_else(|e| panic!("{}: device-secret-key: {e}", v.name));
        let raw: [u8; 32 + WRAPPED_KEY_LEN] = v.hex("device-wrapped-key");
        let mut wrapped = DeviceWrappedKey {
            ephemeral_public: [0; 32],
            ciphertext: [0; WRAPPED_KEY_LEN],
        };
        wrapped.ephemeral_public.copy_from_slice(&raw[..32]);
        wrapped.ciphertext.copy_from_slice(&raw[32..]);
        let context = RewrapContext {
            file_id: header.file_id(),
            header_hash: *header.hash(),
            device_id: v.hex("device-id"),
            lease_expires_at_unix: v.num("lease-expires-at"),
        };
        device.unwrap_grant(&wrapped, &context)
    } else {
        for key in DEVICE_KEYS {
            assert!(
                v.get(key).is_none(),
                "{}: {key} without device-secret-key",
                v.name
            );
        }
        let kas = KasSecretKey::from_text(v.req("kas-secret-key"))
            .unwrap_or_else(|e| panic!("{}: kas-secret-key: {e}", v.name));
        kas.unwrap(header)
    }
}

/// Reads the payload to its end through a streaming `Opener`.
fn read_streaming(
    v: &Vector,
    verified: &VerifiedHeader,
    payload: &[u8],
    options: StreamOptions,
) -> Result<Vec<u8>, Outcome> {
    let read_all = |mut opener: Box<dyn Read + '_>, how: String| {
        let mut plain = Vec::new();
        opener
            .read_to_end(&mut plain)
            .map(|_| plain)
            .map_err(|e| io_failure(v, &how, &e))
    };
    let plain = read_all(
        Box::new(irm_core::Opener::new(verified, payload, options)),
        format!("Opener with {options:?}"),
    );
    // Decrypting from the source's own buffer must agree, failures included.
    let from_buffer = read_all(
        Box::new(irm_core::Opener::from_buf_read(verified, payload, options)),
        format!("Opener::from_buf_read with {options:?}"),
    );
    assert_eq!(
        from_buffer, plain,
        "{}: Opener::from_buf_read with {options:?} disagrees with Opener::new",
        v.name
    );
    plain
}

/// Reads the payload to its end through a `SeekableOpener`; for a
/// success vector, also reads the second half after a seek.
fn read_seekable(
    v: &Vector,
    verified: &VerifiedHeader,
    header_len: usize,
    backend: PayloadBackend,
) -> Result<Vec<u8>, Outcome> {
    let how = format!("SeekableOpener with {backend:?}");
    let mut file = Cursor::new(&v.body[..]);
    file.set_position(header_len as u64);
    let mut opener =
        SeekableOpener::new(verified, file, backend).map_err(|e| io_failure(v, &how, &e))?;
    let mut plain = Vec::new();
    opener
        .read_to_end(&mut plain)
        .map_err(|e| io_failure(v, &how, &e))?;
    assert_eq!(
        opener.plaintext_len(),
        plain.len() as u64,
        "{}: {how}: plaintext_len() disagrees with what it read",
        v.name
    );
    let middle = plain.len() / 2;
    opener
        .seek(SeekFrom::Start(middle as u64))
        .map_err(|e| io_failure(v, &how, &e))?;
    let mut tail = Vec::new();
    opener
        .read_to_end(&mut tail)
        .map_err(|e| io_failure(v, &how, &e))?;
    assert_eq!(
        tail,
        plain[middle..],
        "{}: {how}: reading after a seek to {middle} differs",
        v.name
    );
    Ok(plain)
}

/// Runs the whole open path and returns the outcome and, on success, the
/// verified header and plaintext.
fn open(v: &Vector) -> (Outcome, Option<(VerifiedHeader, Vec<u8>)>) {
    let mut input = &v.body[..];
    let header = match SealedHeader::read_from(&mut input) {
        Ok(header) => header,
        Err(e) => return (format_failure(&e), None),
    };
    let header_len = v.body.len() - input.len();
    assert_eq!(
        header.encoded_len(),
        header_len,
        "{}: encoded_len() is not where the payload starts",
        v.name
    );
    assert!(
        header.to_bytes() == v.body[..header_len],
        "{}: SealedHeader::to_bytes() does not reproduce the stored header",
        v.name
    );
    assert_eq!(
        header.hash().0,
        <[u8; 32]>::from(Sha256::digest(&v.body[..header.bound_end()])),
        "{}: the header hash is not SHA-256 of the stored bytes up to the end of the bound record",
        v.name
    );

    let key = match unwrap(v, &header) {
        Ok(key) => key,
        Err(e) => return (unwrap_failure(&e), None),
    };
    let verified = match header.verify(key) {
        Ok(verified) => verified,
        Err(e) => return (open_failure(&e), None),
    };

    let payload = &v.body[header_len..];
    let first = read_streaming(v, &verified, payload, STREAM_OPTIONS[0]);
    for &options in &STREAM_OPTIONS[1..] {
        assert_eq!(
            read_streaming(v, &verified, payload, options),
            first,
            "{}: Opener with {options:?} disagrees with {:?}",
            v.name,
            STREAM_OPTIONS[0]
        );
    }
    for backend in [PayloadBackend::Fast, PayloadBackend::Portable] {
        assert_eq!(
            read_seekable(v, &verified, header_len, backend),
            first,
            "{}: SeekableOpener with {backend:?} disagrees with the streaming Opener",
            v.name
        );
    }
    for &options in STREAM_OPTIONS {
        let in_memory = irm_core::open_to_vec(&verified, payload, options)
            .map(|plain| plain.to_vec())
            .map_err(|e| open_failure(&e));
        assert_eq!(
            in_memory, first,
            "{}: open_to_vec with {options:?} disagrees with the streaming Opener",
            v.name
        );
    }
    match first {
        Ok(plain) => (Outcome::Success, Some((verified, plain))),
        Err(failure) => (failure, None),
    }
}

fn check_success(v: &Vector, verified: &VerifiedHeader, plain: &[u8]) {
    let name = &v.name;
    let header = verified.header();
    assert_eq!(
        hex::encode(Sha256::digest(plain)),
        v.req("payload-sha256"),
        "{name}: payload-sha256"
    );
    assert_eq!(
        plain.len(),
        v.num::<usize>("plaintext-len"),
        "{name}: plaintext-len"
    );
    assert_eq!(
        header.file_id().to_string(),
        v.req("file-id"),
        "{name}: file-id"
    );
    assert_eq!(
        header.created_at_unix(),
        v.num::<u64>("created-at"),
        "{name}: created-at"
    );
    assert_eq!(
        header.chunk_len(),
        v.num::<u32>("chunk-len"),
        "{name}: chunk-len"
    );
    assert_eq!(
        hex::encode(header.hash().0),
        v.req("header-sha256"),
        "{name}: header-sha256"
    );

    let json = v.req("policy-json");
    let stated: serde_json::Value = serde_json::from_str(json)
        .unwrap_or_else(|e| panic!("{name}: policy-json is not JSON: {e}"));
    let actual = serde_json::to_value(header.policy()).expect("a policy serialises");
    assert_eq!(actual, stated, "{name}: policy-json");
    let policy: Policy = serde_json::from_str(json)
        .unwrap_or_else(|e| panic!("{name}: policy-json is not a policy: {e}"));
    assert_eq!(&policy, header.policy(), "{name}: policy-json as a Policy");
    // Head values are never empty, so a field present with an empty value
    // is listed in `empty-strings` instead (FORMAT.md §3.3).
    let empty: Vec<&str> = v
        .get("empty-strings")
        .map(|list| list.split(',').collect())
        .unwrap_or_default();
    for listed in &empty {
        assert!(
            ["kas-url", "issuer", "file-name", "media-type"].contains(listed)
                && v.get(listed).is_none(),
            "{name}: empty-strings lists {listed:?}, which is not an empty string field here"
        );
    }
    let text = |key: &str| {
        if empty.contains(&key) {
            Some(String::new())
        } else {
            v.get(key).map(str::to_owned)
        }
    };
    assert_eq!(
        header.issuer().map(str::to_owned),
        text("issuer"),
        "{name}: issuer"
    );
    assert_eq!(
        header.key_access().iter().all(|e| e.kas_url.is_empty()),
        empty.contains(&"kas-url"),
        "{name}: an empty kas_url in every key-access entry, or in none"
    );

    let metadata = Metadata {
        file_name: text("file-name"),
        media_type: text("media-type"),
        plaintext_len: v
            .get("metadata-plaintext-len")
            .map(|_| v.num("metadata-plaintext-len")),
    };
    assert_eq!(verified.metadata(), &metadata, "{name}: metadata");
    assert_eq!(
        verified.sealed_len(),
        metadata.plaintext_len.map(|_| v.body.len() as u64),
        "{name}: sealed_len() against the file's length"
    );
}

fn vectors_dir() -> PathBuf {
    match std::env::var_os("IRM_VECTORS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors"),
    }
}

fn load_vectors(dir: &Path) -> Vec<Vector> {
    let mut vectors: Vec<Vector> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("reading a directory entry").path())
        // This README and dotfiles (.gitattributes) are not vectors.
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n != "README.md" && !n.starts_with('.'))
        })
        .map(|path| {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("vector names are UTF-8")
                .to_owned();
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{name}: vector names are lowercase letters, digits and underscores"
            );
            let bytes =
                std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            Vector::parse(name, &bytes)
        })
        .collect();
    vectors.sort_by(|a, b| a.name.cmp(&b.name));
    vectors
}

#[test]
fn every_frozen_vector_has_its_stated_outcome() {
    let dir = vectors_dir();
    let vectors = load_vectors(&dir);
    assert!(
        vectors.len() >= MIN_VECTORS,
        "only {} vectors in {}; expected at least {MIN_VECTORS}",
        vectors.len(),
        dir.display()
    );
    for v in &vectors {
        let expect = expected(v);
        let (outcome, opened) = open(v);
        assert_eq!(outcome, expect, "{}: {}", v.name, v.req("comment"));
        if let Some((verified, plain)) = opened {
            check_success(v, &verified, &plain);
        }
    }
}
