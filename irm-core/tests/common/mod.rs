//! Helpers shared by the integration tests: a fixed policy and key server key,
//! headers with a small chunk length, deterministic plaintexts, and the whole
//! open path (parse, unwrap, verify, read) reduced to one [`Outcome`].

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::fmt;
use std::io::{self, Cursor, Read};
use std::sync::OnceLock;

use irm_core::{
    EnvelopeBuilder, FormatError, KasSecretKey, Metadata, OpenError, Opener, PayloadBackend,
    Policy, PolicyGrant, Recipient, Rights, SealedHeader, SeekableOpener, StreamOptions,
    UnwrapError, VerifiedHeader,
};

/// The chunk length of every test envelope: the smallest allowed, so that a
/// few KiB already make several chunks.
pub(crate) const CHUNK: usize = 1024;
/// Sealed bytes per full chunk.
pub(crate) const STRIDE: usize = CHUNK + irm_core::TAG_LEN;

/// One key server key for the whole test binary (X25519 key generation is
/// cheap, but a shared key keeps property-test cases focused on the payload).
pub(crate) fn kas() -> &'static KasSecretKey {
    static KAS: OnceLock<KasSecretKey> = OnceLock::new();
    KAS.get_or_init(|| KasSecretKey::generate().expect("the system RNG works in tests"))
}

pub(crate) fn policy() -> Policy {
    Policy::builder()
        .grant(PolicyGrant {
            recipients: [Recipient::parse("@support").expect("a valid group name")].into(),
            rights: Rights::VIEW,
        })
        .not_after(1_900_000_000)
        .build()
        .expect("a valid policy")
}

/// A header sealed to `kas` with 1 KiB chunks and, if given, a declared
/// plaintext length.
pub(crate) fn header_for(kas: &KasSecretKey, declared: Option<u64>) -> VerifiedHeader {
    header_with_chunk_len(kas, CHUNK as u32, declared)
}

pub(crate) fn header_with_chunk_len(
    kas: &KasSecretKey,
    chunk_len: u32,
    declared: Option<u64>,
) -> VerifiedHeader {
    EnvelopeBuilder::new(policy())
        .key_server("https://kas.test:8443", kas.public_key())
        .chunk_len(chunk_len)
        .metadata(Metadata {
            file_name: Some("customers.csv".into()),
            media_type: Some("text/csv".into()),
            plaintext_len: declared,
        })
        .build()
        .expect("a valid header")
}

/// A header for the shared [`kas`].
pub(crate) fn header(declared: Option<u64>) -> VerifiedHeader {
    header_for(kas(), declared)
}

/// `len` pseudo-random bytes from `seed` (splitmix64), so that chunks differ
/// from each other and a swapped chunk cannot decrypt to the same text.
pub(crate) fn plaintext(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

pub(crate) fn options(threads: usize) -> StreamOptions {
    StreamOptions {
        threads,
        backend: PayloadBackend::default(),
    }
}

/// How one attempt to open a sealed file ended.
pub(crate) enum Outcome {
    /// Everything verified; the whole plaintext.
    Opened(Vec<u8>),
    /// `SealedHeader::read_from` refused the header.
    Format(FormatError),
    /// The key server could not unwrap the content key.
    Unwrap(UnwrapError),
    /// `SealedHeader::verify` refused the content key or the metadata.
    Verify(OpenError),
    /// The payload failed; `released` is the plaintext handed out before the error.
    Payload { error: io::Error, released: Vec<u8> },
}

/// Names the error and counts the plaintext, rather than printing it.
impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Opened(plain) => write!(f, "Opened({} bytes)", plain.len()),
            Outcome::Format(e) => write!(f, "Format({e:?})"),
            Outcome::Unwrap(e) => write!(f, "Unwrap({e:?})"),
            Outcome::Verify(e) => write!(f, "Verify({e:?})"),
            Outcome::Payload { error, released } => match OpenError::from_io(error) {
                Some(e) => write!(f, "Payload({e:?}, {} bytes released)", released.len()),
                None => write!(f, "Payload(io: {error}, {} bytes released)", released.len()),
            },
        }
    }
}

impl Outcome {
    /// The typed payload error, if the payload failed with one.
    pub(crate) fn payload_error(&self) -> Option<&OpenError> {
        match self {
            Outcome::Payload { error, .. } => OpenError::from_io(error),
            _ => None,
        }
    }

    /// The plaintext handed out, whether or not opening failed.
    pub(crate) fn released(&self) -> &[u8] {
        match self {
            Outcome::Opened(plain)
            | Outcome::Payload {
                released: plain, ..
            } => plain,
            _ => &[],
        }
    }
}

/// Reads `reader` to the end in small steps, keeping what was released
/// before any error.
pub(crate) fn read_released(mut reader: impl Read) -> Result<Vec<u8>, (io::Error, Vec<u8>)> {
    let mut out = Vec::new();
    let mut buf = [0u8; 700]; // not a divisor of the chunk length, on purpose
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err((e, out)),
        }
    }
}

fn finish(result: Result<Vec<u8>, (io::Error, Vec<u8>)>) -> Outcome {
    match result {
        Ok(plain) => Outcome::Opened(plain),
        Err((error, released)) => Outcome::Payload { error, released },
    }
}

/// Parses, unwraps with `kas` and verifies the header; the rest of `file`
/// is the payload, returned with the verified header.
pub(crate) fn open_header<'a>(
    file: &'a [u8],
    kas: &KasSecretKey,
) -> Result<(VerifiedHeader, &'a [u8]), Outcome> {
    let mut input = file;
    let header = SealedHeader::read_from(&mut input).map_err(Outcome::Format)?;
    let key = kas.unwrap(&header).map_err(Outcome::Unwrap)?;
    let verified = header.verify(key).map_err(Outcome::Verify)?;
    Ok((verified, input))
}

/// The whole open path through the streaming [`Opener`], fed from each
/// [`Source`] in turn: all of them must open the same plaintext or fail the
/// same way (they may release different verified prefixes before failing,
/// since their batches differ). Returns the plain `Read`'s outcome.
pub(crate) fn open_streaming(file: &[u8], kas: &KasSecretKey, options: StreamOptions) -> Outcome {
    let outcome = open_streaming_from(file, kas, options, Source::Read);
    for source in [Source::InMemory, Source::SmallBufReader] {
        let other = open_streaming_from(file, kas, options, source);
        let same = match (&outcome, &other) {
            (Outcome::Opened(a), Outcome::Opened(b)) => a == b,
            (Outcome::Payload { .. }, Outcome::Payload { .. }) => {
                format!("{:?}", outcome.payload_error()) == format!("{:?}", other.payload_error())
            }
            (a, b) => format!("{a:?}") == format!("{b:?}"),
        };
        assert!(
            same,
            "{} sealed bytes, {options:?}: from {source:?} {other:?}, from Read {outcome:?}",
            file.len()
        );
    }
    outcome
}

/// Where a streaming [`Opener`] reads its payload from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source {
    /// A plain `Read` ([`Opener::new`]): every chunk is copied out of it.
    Read,
    /// The payload in memory as a `BufRead` ([`Opener::from_buf_read`]):
    /// chunks are decrypted where they lie.
    InMemory,
    /// A `BufReader` smaller than three chunks whose size is not a multiple
    /// of one, so that chunks decrypted from its buffer alternate with
    /// chunks copied out of it across the buffer's edge.
    SmallBufReader,
}

/// Reads `payload` to its end through an `Opener` fed from `source`.
pub(crate) fn read_payload(
    verified: &VerifiedHeader,
    payload: &[u8],
    options: StreamOptions,
    source: Source,
) -> Result<Vec<u8>, (io::Error, Vec<u8>)> {
    match source {
        Source::Read => read_released(Opener::new(verified, payload, options)),
        Source::InMemory => read_released(Opener::from_buf_read(verified, payload, options)),
        Source::SmallBufReader => {
            let reader = io::BufReader::with_capacity(2 * STRIDE + 300, payload);
            read_released(Opener::from_buf_read(verified, reader, options))
        }
    }
}

/// The whole open path through a streaming [`Opener`] fed from `source`.
pub(crate) fn open_streaming_from(
    file: &[u8],
    kas: &KasSecretKey,
    options: StreamOptions,
    source: Source,
) -> Outcome {
    match open_header(file, kas) {
        Ok((verified, payload)) => finish(read_payload(&verified, payload, options, source)),
        Err(outcome) => outcome,
    }
}

/// The whole open path through [`SeekableOpener`], reading from the start.
pub(crate) fn open_seekable(file: &[u8], kas: &KasSecretKey, backend: PayloadBackend) -> Outcome {
    let mut input = Cursor::new(file);
    let header = match SealedHeader::read_from(&mut input) {
        Ok(header) => header,
        Err(e) => return Outcome::Format(e),
    };
    let key = match kas.unwrap(&header) {
        Ok(key) => key,
        Err(e) => return Outcome::Unwrap(e),
    };
    let verified = match header.verify(key) {
        Ok(verified) => verified,
        Err(e) => return Outcome::Verify(e),
    };
    match SeekableOpener::new(&verified, input, backend) {
        Ok(opener) => finish(read_released(opener)),
        Err(error) => Outcome::Payload {
            error,
            released: Vec::new(),
        },
    }
}
