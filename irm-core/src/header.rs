//! The envelope header (FORMAT.md §2 and §6): reading and writing it byte for
//! byte, the header hash that binds the policy, building a new one when
//! sealing, and verifying one against a content key before any payload is
//! decrypted.
//!
//! Only a [`VerifiedHeader`] can derive the payload key: the type records that
//! the key commitment matched and the encrypted metadata authenticated.
//!
//! A key server key unwraps a header's content key here too (finding its
//! key-access entry is reading the header); the wraps themselves are
//! `wrap`'s, the derivations `kdf`'s, and the payload `stream`'s, which
//! asks a `VerifiedHeader` for the payload key.

use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::codec::{RecordReader, RecordWriter, value};
use crate::error::{FormatError, OpenError, SealError, UnwrapError};
use crate::kdf;
use crate::keys::{ContentKey, FileId, KasPublicKey, KasSecretKey, KeyId};
use crate::policy::Policy;
use crate::wrap::{PendingKasWrap, WRAPPED_KEY_LEN, open_once, seal_once};

// The header hash is a value of `keys` (the key wraps need it too and must
// not depend on the header); it is the header's, and exported from here.
pub use crate::keys::HeaderHash;

/// FORMAT.md §2: the eight bytes every sealed file starts with.
pub const MAGIC: [u8; 8] = [0x89, b'I', b'R', b'M', 0x0D, 0x0A, 0x1A, 0x0A];
/// The format version this build reads and writes.
pub const VERSION: u16 = 1;
/// The default plaintext bytes per chunk (FORMAT.md §6.1).
pub const DEFAULT_CHUNK_LEN: u32 = 64 * 1024;
/// The smallest and largest allowed chunk lengths.
pub const MIN_CHUNK_LEN: u32 = 1024;
/// See [`MIN_CHUNK_LEN`].
pub const MAX_CHUNK_LEN: u32 = 16 * 1024 * 1024;

const PREAMBLE_LEN: usize = 8 + 2 + 4;
// FORMAT.md §7 limits.
const MAX_BOUND_LEN: usize = 1024 * 1024;
const MAX_KEY_ACCESS: usize = 16;
const MAX_METADATA_LEN: usize = 64 * 1024;
const MAX_URL_LEN: usize = 2048;
const MAX_ISSUER_LEN: usize = 256;
const MAX_FILE_NAME_LEN: usize = 1024;
const MAX_MEDIA_TYPE_LEN: usize = 256;
const TAG_LEN: usize = 16;

/// FORMAT.md §6.2: the most plaintext one file may hold, 2^48 bytes (256 TiB),
/// whatever its chunk length: at most 2^44 AES blocks under one payload key.
pub(crate) const MAX_PLAINTEXT_LEN: u64 = 1 << 48;

/// [`MAX_PLAINTEXT_LEN`] for the errors that state limits as `usize`.
pub(crate) fn max_plaintext_len_usize() -> usize {
    usize::try_from(MAX_PLAINTEXT_LEN).unwrap_or(usize::MAX)
}

/// The payload length of a sealed file whose plaintext is `plaintext_len`
/// bytes (FORMAT.md §6.1), or `None` on overflow.
pub(crate) fn payload_len(plaintext_len: u64, chunk_len: u64) -> Option<u64> {
    let chunks = plaintext_len.div_ceil(chunk_len).max(1);
    plaintext_len.checked_add(chunks.checked_mul(TAG_LEN as u64)?)
}

mod tag {
    pub(super) const FILE_ID: u16 = 1;
    pub(super) const CREATED_AT: u16 = 3;
    pub(super) const CHUNK_LEN: u16 = 5;
    pub(super) const KEY_COMMITMENT: u16 = 7;
    pub(super) const POLICY: u16 = 9;
    pub(super) const KEY_ACCESS: u16 = 11;
    pub(super) const ISSUER: u16 = 12;

    pub(super) const KA_URL: u16 = 1;
    pub(super) const KA_KEY_ID: u16 = 3;
    pub(super) const KA_EPHEMERAL: u16 = 5;

    pub(super) const META_FILE_NAME: u16 = 2;
    pub(super) const META_MEDIA_TYPE: u16 = 4;
    pub(super) const META_PLAINTEXT_LEN: u16 = 6;
}

/// Where one key server can unwrap the content key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAccess {
    /// The key server's URL. Informational for clients: they talk only to the
    /// server they enrolled with.
    pub kas_url: String,
    /// Which key server key the content key is wrapped to.
    pub key_id: KeyId,
    /// The sealer's ephemeral X25519 public key for this wrap.
    pub ephemeral_public: [u8; 32],
}

/// What the file is, encrypted under the content key (FORMAT.md §6.3) so that
/// a copy on a USB stick does not say what it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// The original file name, without directories.
    pub file_name: Option<String>,
    /// The media type, such as `text/csv`.
    pub media_type: Option<String>,
    /// The plaintext length, when known before sealing (absent for streams).
    pub plaintext_len: Option<u64>,
}

impl Metadata {
    /// The media type to record for a file, from its extension (case
    /// insensitive); `application/octet-stream` when unknown. One table for
    /// every front-end, so that the CLI and libirm record the same thing.
    pub fn media_type_for(path: &std::path::Path) -> &'static str {
        let ext = path
            .extension()
            .and_then(std::ffi::OsStr::to_str)
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("csv") => "text/csv",
            Some("tsv") => "text/tab-separated-values",
            Some("txt") => "text/plain",
            Some("json") => "application/json",
            Some("xlsx") => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Some("xls") => "application/vnd.ms-excel",
            Some("png") => "image/png",
            Some("jpg" | "jpeg") => "image/jpeg",
            Some("pdf") => "application/pdf",
            _ => "application/octet-stream",
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut w = RecordWriter::new();
        if let Some(name) = &self.file_name {
            w.field(tag::META_FILE_NAME, name.as_bytes());
        }
        if let Some(media) = &self.media_type {
            w.field(tag::META_MEDIA_TYPE, media.as_bytes());
        }
        if let Some(len) = self.plaintext_len {
            w.u64(tag::META_PLAINTEXT_LEN, len);
        }
        w.into_bytes()
    }

    fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        const CX: &str = "metadata";
        let mut r = RecordReader::new(bytes, CX);
        let mut meta = Self::default();
        while let Some(f) = r.next_field()? {
            match f.tag {
                tag::META_FILE_NAME => {
                    meta.file_name = Some(value::string(f.value, MAX_FILE_NAME_LEN, "file name")?)
                }
                tag::META_MEDIA_TYPE => {
                    meta.media_type =
                        Some(value::string(f.value, MAX_MEDIA_TYPE_LEN, "media type")?)
                }
                tag::META_PLAINTEXT_LEN => {
                    let len = value::u64(f.value, CX)?;
                    // FORMAT.md §6.2: a declared length above the cap is refused
                    // before any payload is read.
                    if len > MAX_PLAINTEXT_LEN {
                        return Err(FormatError::LimitExceeded {
                            context: "the declared plaintext length",
                            limit: max_plaintext_len_usize(),
                        });
                    }
                    meta.plaintext_len = Some(len);
                }
                _ => r.unknown(&f)?,
            }
        }
        Ok(meta)
    }

    fn check_limits(&self) -> Result<(), SealError> {
        if let Some(name) = &self.file_name {
            check_text(name, "the file name", MAX_FILE_NAME_LEN)?;
        }
        if let Some(media) = &self.media_type {
            check_text(media, "the media type", MAX_MEDIA_TYPE_LEN)?;
        }
        if self
            .plaintext_len
            .is_some_and(|len| len > MAX_PLAINTEXT_LEN)
        {
            return Err(SealError::TooLarge {
                what: "the declared plaintext length",
                limit: max_plaintext_len_usize(),
            });
        }
        Ok(())
    }
}

/// A parsed header, not yet verified: its policy can be read (as `irm
/// inspect` does) but nothing can be decrypted until [`SealedHeader::verify`]
/// accepts a content key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedHeader {
    /// The bound record exactly as stored; the hash covers it.
    bound: Vec<u8>,
    hash: HeaderHash,
    file_id: FileId,
    created_at_unix: u64,
    chunk_len: u32,
    key_commitment: [u8; 32],
    policy: Policy,
    key_access: Vec<KeyAccess>,
    issuer: Option<String>,
    wrapped_keys: Vec<[u8; WRAPPED_KEY_LEN]>,
    encrypted_metadata: Vec<u8>,
}

fn read_exact(r: &mut impl Read, buf: &mut [u8], context: &'static str) -> Result<(), FormatError> {
    r.read_exact(buf)
        .map_err(|e| FormatError::from_read(e, context))
}

fn hash_of(bound: &[u8]) -> HeaderHash {
    let len = u32::try_from(bound.len()).expect("the bound record is at most 1 MiB");
    let digest = Sha256::new()
        .chain_update(MAGIC)
        .chain_update(VERSION.to_be_bytes())
        .chain_update(len.to_be_bytes())
        .chain_update(bound)
        .finalize();
    HeaderHash(digest.into())
}

impl SealedHeader {
    /// Reads a header from the start of a sealed file, leaving `reader` at the
    /// first byte of the payload.
    pub fn read_from(reader: &mut impl Read) -> Result<Self, FormatError> {
        let mut preamble = [0u8; PREAMBLE_LEN];
        // FORMAT.md §2: check the magic before anything else, so that a short
        // file that is not an envelope says so instead of "truncated".
        let mut magic = [0u8; 8];
        let got = read_up_to(reader, &mut magic)?;
        if got < magic.len() || magic != MAGIC {
            return Err(
                if got < magic.len() && MAGIC.starts_with(&magic[..got]) && got > 0 {
                    FormatError::Truncated { context: "magic" }
                } else {
                    FormatError::BadMagic
                },
            );
        }
        preamble[..8].copy_from_slice(&magic);
        read_exact(reader, &mut preamble[8..], "preamble")?;
        let version = u16::from_be_bytes([preamble[8], preamble[9]]);
        if version != VERSION {
            return Err(FormatError::UnsupportedVersion { version });
        }
        let bound_len =
            u32::from_be_bytes([preamble[10], preamble[11], preamble[12], preamble[13]]) as usize;
        // FORMAT.md §7: compare the declared length with the limit before allocating.
        if bound_len > MAX_BOUND_LEN {
            return Err(FormatError::LimitExceeded {
                context: "the header length",
                limit: MAX_BOUND_LEN,
            });
        }
        let mut bound = vec![0u8; bound_len];
        read_exact(reader, &mut bound, "header record")?;
        let mut header = Self::parse_bound(bound)?;

        let mut wrapped = [0u8; WRAPPED_KEY_LEN];
        for _ in 0..header.key_access.len() {
            read_exact(reader, &mut wrapped, "wrapped keys")?;
            header.wrapped_keys.push(wrapped);
        }
        let mut len = [0u8; 4];
        read_exact(reader, &mut len, "metadata length")?;
        let meta_len = u32::from_be_bytes(len) as usize;
        if meta_len > MAX_METADATA_LEN + TAG_LEN {
            return Err(FormatError::LimitExceeded {
                context: "the metadata length",
                limit: MAX_METADATA_LEN,
            });
        }
        if meta_len < TAG_LEN {
            return Err(FormatError::CorruptHeader {
                context: "metadata",
                problem: "the encrypted metadata is shorter than its tag",
            });
        }
        header.encrypted_metadata = vec![0u8; meta_len];
        read_exact(reader, &mut header.encrypted_metadata, "metadata")?;
        Ok(header)
    }

    /// Parses a header from the start of `bytes`; returns it and its length.
    pub fn parse(bytes: &[u8]) -> Result<(Self, usize), FormatError> {
        let mut reader = bytes;
        let header = Self::read_from(&mut reader)?;
        Ok((header, bytes.len() - reader.len()))
    }

    fn parse_bound(bound: Vec<u8>) -> Result<Self, FormatError> {
        const CX: &str = "header record";
        let mut r = RecordReader::new(&bound, CX);
        let (mut file_id, mut created, mut chunk_len, mut commitment) = (None, None, None, None);
        let (mut policy, mut key_access, mut issuer) = (None, None, None);
        while let Some(f) = r.next_field()? {
            match f.tag {
                tag::FILE_ID => file_id = Some(FileId(value::array(f.value, CX)?)),
                tag::CREATED_AT => created = Some(value::u64(f.value, CX)?),
                tag::CHUNK_LEN => {
                    let len = value::u32(f.value, CX)?;
                    if !valid_chunk_len(len) {
                        return Err(FormatError::CorruptHeader {
                            context: CX,
                            problem: "the chunk length is not a power of two between 1 KiB and 16 MiB",
                        });
                    }
                    chunk_len = Some(len);
                }
                tag::KEY_COMMITMENT => commitment = Some(value::array(f.value, CX)?),
                tag::POLICY => policy = Some(Policy::decode(f.value)?),
                tag::KEY_ACCESS => {
                    let items = value::list(f.value, MAX_KEY_ACCESS, "key-access entries")?;
                    if items.is_empty() {
                        return Err(FormatError::CorruptHeader {
                            context: CX,
                            problem: "there is no key-access entry",
                        });
                    }
                    key_access = Some(
                        items
                            .into_iter()
                            .map(decode_key_access)
                            .collect::<Result<Vec<_>, _>>()?,
                    );
                }
                tag::ISSUER => issuer = Some(value::string(f.value, MAX_ISSUER_LEN, "issuer")?),
                _ => r.unknown(&f)?,
            }
        }
        let missing = |problem| FormatError::CorruptHeader {
            context: CX,
            problem,
        };
        Ok(Self {
            hash: hash_of(&bound),
            file_id: file_id.ok_or_else(|| missing("the file id is missing"))?,
            created_at_unix: created.ok_or_else(|| missing("the creation time is missing"))?,
            chunk_len: chunk_len.ok_or_else(|| missing("the chunk length is missing"))?,
            key_commitment: commitment.ok_or_else(|| missing("the key commitment is missing"))?,
            policy: policy.ok_or_else(|| missing("the policy is missing"))?,
            key_access: key_access.ok_or_else(|| missing("the key-access list is missing"))?,
            issuer,
            bound,
            wrapped_keys: Vec::new(),
            encrypted_metadata: Vec::new(),
        })
    }

    /// The header bytes exactly as stored (FORMAT.md §2).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_be_bytes());
        let bound_len = u32::try_from(self.bound.len()).expect("the bound record is at most 1 MiB");
        out.extend_from_slice(&bound_len.to_be_bytes());
        out.extend_from_slice(&self.bound);
        for wrapped in &self.wrapped_keys {
            out.extend_from_slice(wrapped);
        }
        let meta_len =
            u32::try_from(self.encrypted_metadata.len()).expect("the metadata is at most 64 KiB");
        out.extend_from_slice(&meta_len.to_be_bytes());
        out.extend_from_slice(&self.encrypted_metadata);
        out
    }

    /// The header's length in bytes: the payload starts at this offset.
    pub fn encoded_len(&self) -> usize {
        PREAMBLE_LEN
            + self.bound.len()
            + self.wrapped_keys.len() * WRAPPED_KEY_LEN
            + 4
            + self.encrypted_metadata.len()
    }

    /// The length of the whole sealed file for `plaintext_len` bytes of
    /// plaintext: this header, the payload and one tag per chunk (FORMAT.md
    /// §6); `None` if it would not fit in a `u64`.
    pub fn sealed_len_for(&self, plaintext_len: u64) -> Option<u64> {
        payload_len(plaintext_len, u64::from(self.chunk_len))?
            .checked_add(self.encoded_len() as u64)
    }

    /// The length of the preamble and bound record, the part the header hash covers.
    pub fn bound_end(&self) -> usize {
        PREAMBLE_LEN + self.bound.len()
    }

    /// The header hash (FORMAT.md §4.4).
    pub fn hash(&self) -> &HeaderHash {
        &self.hash
    }
    /// The file's random id.
    pub fn file_id(&self) -> FileId {
        self.file_id
    }
    /// When the file was sealed (Unix seconds, the sealer's clock).
    pub fn created_at_unix(&self) -> u64 {
        self.created_at_unix
    }
    /// Plaintext bytes per payload chunk.
    pub fn chunk_len(&self) -> u32 {
        self.chunk_len
    }
    /// The policy, readable without any key.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
    /// Who may unwrap the content key.
    pub fn key_access(&self) -> &[KeyAccess] {
        &self.key_access
    }
    /// Who sealed the file, as the sealer stated it (not authenticated to a person).
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }
    pub(crate) fn wrapped_keys(&self) -> &[[u8; WRAPPED_KEY_LEN]] {
        &self.wrapped_keys
    }

    /// Accepts `key` as this file's content key if it matches the key
    /// commitment (FORMAT.md §4.2), then decrypts the metadata (§6.3).
    pub fn verify(self, key: ContentKey) -> Result<VerifiedHeader, OpenError> {
        let expected = commitment(&key, &self.file_id);
        if !bool::from(expected.ct_eq(&self.key_commitment)) {
            return Err(OpenError::KeyCommitmentMismatch);
        }
        let meta_key = kdf::metadata_key(key.expose_secret(), &self.file_id.0, &self.hash.0);
        let plain = open_once(&meta_key, &[], &self.encrypted_metadata)
            .ok_or(OpenError::MetadataAuthenticationFailed)?;
        // The metadata authenticated, so the sealer wrote what fails to
        // parse: say what it is (a critical field from a later version reads
        // "upgrade", not "altered"; FORMAT.md §3.2).
        let metadata = Metadata::decode(&plain).map_err(OpenError::InvalidMetadata)?;
        Ok(VerifiedHeader::new(self, key, metadata))
    }
}

fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> Result<usize, FormatError> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FormatError::Io(e)),
        }
    }
    Ok(got)
}

fn decode_key_access(bytes: &[u8]) -> Result<KeyAccess, FormatError> {
    const CX: &str = "key-access entry";
    let mut r = RecordReader::new(bytes, CX);
    let (mut url, mut key_id, mut ephemeral) = (None, None, None);
    while let Some(f) = r.next_field()? {
        match f.tag {
            tag::KA_URL => url = Some(value::string(f.value, MAX_URL_LEN, "key server URL")?),
            tag::KA_KEY_ID => key_id = Some(KeyId(value::array(f.value, CX)?)),
            tag::KA_EPHEMERAL => ephemeral = Some(value::array(f.value, CX)?),
            _ => r.unknown(&f)?,
        }
    }
    let missing = |problem| FormatError::CorruptHeader {
        context: CX,
        problem,
    };
    Ok(KeyAccess {
        kas_url: url.ok_or_else(|| missing("the URL is missing"))?,
        key_id: key_id.ok_or_else(|| missing("the key id is missing"))?,
        ephemeral_public: ephemeral.ok_or_else(|| missing("the ephemeral key is missing"))?,
    })
}

fn encode_key_access(entry: &KeyAccess) -> Vec<u8> {
    let mut w = RecordWriter::new();
    w.field(tag::KA_URL, entry.kas_url.as_bytes())
        .field(tag::KA_KEY_ID, &entry.key_id.0)
        .field(tag::KA_EPHEMERAL, &entry.ephemeral_public);
    w.into_bytes()
}

/// FORMAT.md §1 and §7: strings have a length limit and no control characters.
fn check_text(text: &str, what: &'static str, limit: usize) -> Result<(), SealError> {
    if text.len() > limit {
        return Err(SealError::TooLarge { what, limit });
    }
    if text.chars().any(char::is_control) {
        return Err(SealError::ControlCharacter { what });
    }
    Ok(())
}

pub(crate) fn valid_chunk_len(len: u32) -> bool {
    len.is_power_of_two() && (MIN_CHUNK_LEN..=MAX_CHUNK_LEN).contains(&len)
}

/// FORMAT.md §4.2: the key commitment of `key` for this file.
fn commitment(key: &ContentKey, file_id: &FileId) -> [u8; 32] {
    kdf::key_commitment(key.expose_secret(), &file_id.0)
}

impl KasSecretKey {
    /// Unwraps a file's content key with this key server key (FORMAT.md §4.4).
    ///
    /// Succeeds only if the header is byte for byte the one that was sealed:
    /// the header hash is the associated data. The content key is then checked
    /// against the header's key commitment by [`SealedHeader::verify`]. The
    /// first key-access entry with this key's id is used, and only that one.
    pub fn unwrap(&self, header: &SealedHeader) -> Result<ContentKey, UnwrapError> {
        let key_id = self.key_id();
        let (entry, wrapped) = header
            .key_access()
            .iter()
            .zip(header.wrapped_keys())
            .find(|(entry, _)| entry.key_id == key_id)
            .ok_or_else(|| UnwrapError::NoMatchingKey {
                key_id: key_id.to_string(),
            })?;
        self.unwrap_entry(&entry.ephemeral_public, wrapped, header.hash())
    }
}

/// A header whose content key is known and checked. Only this type can
/// derive the payload key.
pub struct VerifiedHeader {
    header: SealedHeader,
    content_key: ContentKey,
    metadata: Metadata,
    payload_key: zeroize::Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for VerifiedHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedHeader")
            .field("header", &self.header)
            .field("metadata", &self.metadata)
            .finish_non_exhaustive()
    }
}

impl VerifiedHeader {
    fn new(header: SealedHeader, content_key: ContentKey, metadata: Metadata) -> Self {
        let payload_key = kdf::payload_key(
            content_key.expose_secret(),
            &header.file_id.0,
            &header.hash.0,
        );
        Self {
            header,
            content_key,
            metadata,
            payload_key,
        }
    }

    /// The header.
    pub fn header(&self) -> &SealedHeader {
        &self.header
    }
    /// The decrypted metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }
    /// The content key (the key server rewraps it to devices).
    pub fn content_key(&self) -> &ContentKey {
        &self.content_key
    }

    /// The payload key (FORMAT.md §4.2), for the payload cipher of `stream`.
    pub(crate) fn payload_key(&self) -> &[u8; 32] {
        &self.payload_key
    }

    /// The total sealed length for the declared plaintext length, if known.
    pub fn sealed_len(&self) -> Option<u64> {
        self.header.sealed_len_for(self.metadata.plaintext_len?)
    }
}

/// Builds the header of a new envelope: a fresh file id and content key, the
/// policy, and the content key wrapped to each key server.
pub struct EnvelopeBuilder {
    policy: Policy,
    key_servers: Vec<(String, KasPublicKey)>,
    issuer: Option<String>,
    metadata: Metadata,
    chunk_len: u32,
    created_at_unix: Option<u64>,
    #[cfg(test)]
    content_key: Option<ContentKey>,
}

impl EnvelopeBuilder {
    /// Starts a header for `policy`, with the default chunk length.
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            key_servers: Vec::new(),
            issuer: None,
            metadata: Metadata::default(),
            chunk_len: DEFAULT_CHUNK_LEN,
            created_at_unix: None,
            #[cfg(test)]
            content_key: None,
        }
    }

    /// Wraps the content key to this key server key.
    pub fn key_server(mut self, url: impl Into<String>, key: KasPublicKey) -> Self {
        self.key_servers.push((url.into(), key));
        self
    }

    /// Who is sealing (informational).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The encrypted metadata.
    pub fn metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// Plaintext bytes per chunk: a power of two from 1 KiB to 16 MiB.
    pub fn chunk_len(mut self, chunk_len: u32) -> Self {
        self.chunk_len = chunk_len;
        self
    }

    /// The creation time to record (default: now).
    pub fn created_at_unix(mut self, at: u64) -> Self {
        self.created_at_unix = Some(at);
        self
    }

    /// Test only: seal under a chosen content key, to show that the payload
    /// key still differs between files (FORMAT.md §8.4).
    #[cfg(test)]
    pub(crate) fn content_key_for_test(mut self, key: ContentKey) -> Self {
        self.content_key = Some(key);
        self
    }

    /// Generates the keys and writes the header.
    pub fn build(mut self) -> Result<VerifiedHeader, SealError> {
        // A policy built field by field may not be in canonical order; a
        // header that readers reject must never be written.
        self.policy.canonicalize();
        self.policy.validate()?;
        self.metadata.check_limits()?;
        if !valid_chunk_len(self.chunk_len) {
            return Err(SealError::InvalidChunkLen {
                chunk_len: self.chunk_len,
            });
        }
        if self.key_servers.is_empty() {
            return Err(SealError::NoKeyServer);
        }
        if self.key_servers.len() > MAX_KEY_ACCESS {
            return Err(SealError::TooLarge {
                what: "the number of key servers",
                limit: MAX_KEY_ACCESS,
            });
        }
        for (url, _) in &self.key_servers {
            check_text(url, "a key server URL", MAX_URL_LEN)?;
        }
        if let Some(issuer) = &self.issuer {
            check_text(issuer, "the issuer", MAX_ISSUER_LEN)?;
        }

        let file_id = FileId::generate()?;
        #[cfg(test)]
        let key = match self.content_key {
            Some(key) => key,
            None => ContentKey::generate()?,
        };
        #[cfg(not(test))]
        let key = ContentKey::generate()?;
        let created_at_unix = match self.created_at_unix {
            Some(at) => at,
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        };

        let pending = self
            .key_servers
            .iter()
            .map(|(_, kas)| PendingKasWrap::new(kas))
            .collect::<Result<Vec<_>, _>>()?;
        let key_access: Vec<KeyAccess> = self
            .key_servers
            .iter()
            .zip(&pending)
            .map(|((url, kas), wrap)| KeyAccess {
                kas_url: url.clone(),
                key_id: kas.key_id(),
                ephemeral_public: wrap.ephemeral_public,
            })
            .collect();
        let key_commitment = commitment(&key, &file_id);
        let entries: Vec<Vec<u8>> = key_access.iter().map(encode_key_access).collect();

        let mut w = RecordWriter::new();
        w.field(tag::FILE_ID, &file_id.0)
            .u64(tag::CREATED_AT, created_at_unix)
            .u32(tag::CHUNK_LEN, self.chunk_len)
            .field(tag::KEY_COMMITMENT, &key_commitment)
            .field(tag::POLICY, &self.policy.encode())
            .list(tag::KEY_ACCESS, entries.iter());
        if let Some(issuer) = &self.issuer {
            w.field(tag::ISSUER, issuer.as_bytes());
        }
        let bound = w.into_bytes();
        if bound.len() > MAX_BOUND_LEN {
            return Err(SealError::TooLarge {
                what: "the header",
                limit: MAX_BOUND_LEN,
            });
        }
        let hash = hash_of(&bound);
        let wrapped_keys = pending
            .into_iter()
            .map(|wrap| wrap.finish(&key, &hash))
            .collect();
        let meta_key = kdf::metadata_key(key.expose_secret(), &file_id.0, &hash.0);
        let encrypted_metadata = seal_once(&meta_key, &[], &self.metadata.encode());

        let header = SealedHeader {
            bound,
            hash,
            file_id,
            created_at_unix,
            chunk_len: self.chunk_len,
            key_commitment,
            policy: self.policy,
            key_access,
            issuer: self.issuer,
            wrapped_keys,
            encrypted_metadata,
        };
        Ok(VerifiedHeader::new(header, key, self.metadata))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// FORMAT.md §6.2: a declared plaintext length above the cap is refused
    /// by the sealer and, in a metadata record, by the reader; the cap
    /// itself is allowed.
    #[test]
    fn a_declared_length_above_the_cap_is_refused_both_ways() {
        let record = |len: u64| {
            let mut w = RecordWriter::new();
            w.u64(tag::META_PLAINTEXT_LEN, len);
            w.into_bytes()
        };
        let at_cap = Metadata::decode(&record(MAX_PLAINTEXT_LEN)).unwrap();
        assert_eq!(at_cap.plaintext_len, Some(MAX_PLAINTEXT_LEN));
        assert!(matches!(
            Metadata::decode(&record(MAX_PLAINTEXT_LEN + 1)),
            Err(FormatError::LimitExceeded { .. })
        ));
        let declared = |len| Metadata {
            plaintext_len: Some(len),
            ..Metadata::default()
        };
        declared(MAX_PLAINTEXT_LEN).check_limits().unwrap();
        assert!(matches!(
            declared(MAX_PLAINTEXT_LEN + 1).check_limits(),
            Err(SealError::TooLarge { .. })
        ));
    }

    #[test]
    fn media_types_follow_the_extension_case_insensitively() {
        let cases = [
            ("a/calls.CSV", "text/csv"),
            ("x.tsv", "text/tab-separated-values"),
            (
                "book.XLSX",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ),
            ("x.jpeg", "image/jpeg"),
            ("x.JPG", "image/jpeg"),
            ("noext", "application/octet-stream"),
            ("archive.tar.gz", "application/octet-stream"),
        ];
        for (path, want) in cases {
            assert_eq!(Metadata::media_type_for(Path::new(path)), want, "{path}");
        }
    }
}
