//! Typed errors, one enum per boundary: parsing a header ([`FormatError`]),
//! building a policy ([`PolicyError`]), unwrapping a content key
//! ([`UnwrapError`]), sealing ([`SealError`]) and opening ([`OpenError`]).
//!
//! Cryptographic failures are deliberately coarse: a wrong key and an altered
//! tag give the same error, so an error is never an oracle.

use std::io;

/// A header could not be parsed. Nothing was decrypted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The file does not start with the envelope magic: it is not a sealed file.
    #[error("not a sealed IRM file (the magic bytes are missing)")]
    BadMagic,
    /// The envelope was written by a newer or unknown version of the format.
    #[error(
        "sealed with format version {version}, which this build does not support (it reads version 1)"
    )]
    UnsupportedVersion {
        /// The version number found in the file.
        version: u16,
    },
    /// The input ended inside the header.
    #[error("the file ends inside its header ({context}); it was truncated")]
    Truncated {
        /// Which part of the header was being read.
        context: &'static str,
    },
    /// The header is malformed.
    #[error("corrupt header ({context}): {problem}")]
    CorruptHeader {
        /// Which record was being parsed.
        context: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The header carries a critical field this version does not understand
    /// (FORMAT.md §3.2), so it cannot safely be honoured.
    #[error(
        "the header has a critical field (tag {tag}) in {context} that this version does not understand; upgrade irm"
    )]
    UnknownCriticalField {
        /// Which record holds the field.
        context: &'static str,
        /// The unknown tag.
        tag: u16,
    },
    /// A length or count is above the limits of FORMAT.md §7.
    #[error("{context} exceeds the format's limit of {limit}")]
    LimitExceeded {
        /// What is too large.
        context: &'static str,
        /// The limit.
        limit: usize,
    },
    /// The policy inside the header is not valid.
    #[error("invalid policy in header: {0}")]
    Policy(#[source] PolicyError),
    /// Reading the header failed.
    #[error("reading the header failed")]
    Io(#[source] io::Error),
}

impl FormatError {
    pub(crate) fn from_read(err: io::Error, context: &'static str) -> Self {
        if err.kind() == io::ErrorKind::UnexpectedEof {
            Self::Truncated { context }
        } else {
            Self::Io(err)
        }
    }
}

/// A policy is not valid (FORMAT.md §5).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// No grant: nobody could ever open the file.
    #[error("the policy has no grant, so nobody could open the file; add --to or --grant")]
    NoGrants,
    /// A grant with no recipient.
    #[error("a grant names no recipient; give a user such as alice or a group such as @support")]
    NoRecipients,
    /// A written grant is not `RECIPIENTS=RIGHTS`.
    #[error(
        "{text:?} is not a grant: expected RECIPIENTS=RIGHTS, such as @agents=view or alice,@leads=view,print"
    )]
    GrantSyntax {
        /// The text as given.
        text: String,
    },
    /// A grant with no right.
    #[error("a grant gives no right; give at least view")]
    NoRights,
    /// A recipient name is empty, too long, or contains spaces or control characters.
    #[error(
        "invalid recipient {name:?}: names are 1 to 256 bytes without spaces or control characters, groups start with '@'"
    )]
    InvalidRecipient {
        /// The offending name.
        name: String,
    },
    /// An unknown right name.
    #[error("unknown right {name:?}; the rights are view, print, copy, export and program")]
    UnknownRight {
        /// The offending name.
        name: String,
    },
    /// `not_before` is not earlier than `not_after`.
    #[error("the policy's not-before time is not earlier than its not-after time")]
    EmptyWindow,
    /// A string or list is above the limits of FORMAT.md §7.
    #[error("{what} exceeds the format's limit of {limit}")]
    TooLarge {
        /// What is too large.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
}

/// The key server could not unwrap a content key from a header.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnwrapError {
    /// No key-access entry names this key server key.
    #[error("the file was not sealed to key {key_id}")]
    NoMatchingKey {
        /// The id of the key that was tried.
        key_id: String,
    },
    /// The wrapped key did not authenticate: the header (its policy included)
    /// was changed after sealing, or the wrapped key itself was damaged, or the
    /// key is wrong. These are one error on purpose (FORMAT.md §8.3).
    #[error("the header's policy binding does not verify: the header was altered after sealing")]
    BindingFailed,
    /// The X25519 shared secret was all zeros: the ephemeral key (of the
    /// header's key-access entry, or of a device grant) is a low-order point.
    /// Named apart from [`UnwrapError::BindingFailed`] because anyone can
    /// test a public point for this, so it is no oracle (FORMAT.md §4.3).
    #[error("the ephemeral key is a low-order point, so the key agreement is non-contributory")]
    NonContributory,
}

/// Sealing failed. No complete envelope was produced.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The policy is not valid.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// No key server to wrap the content key to.
    #[error("no key server public key given; the content key must be wrapped to at least one")]
    NoKeyServer,
    /// Too many key servers, or a URL or name above the limits of FORMAT.md §7.
    #[error("{what} exceeds the format's limit of {limit}")]
    TooLarge {
        /// What is too large.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// A string such as a file name or URL contains a control character,
    /// which the format does not allow (FORMAT.md §1).
    #[error("{what} contains a control character, which a sealed header cannot hold")]
    ControlCharacter {
        /// Which string.
        what: &'static str,
    },
    /// The chunk length is not a power of two between 1 KiB and 16 MiB.
    #[error("chunk length {chunk_len} is not a power of two between 1 KiB and 16 MiB")]
    InvalidChunkLen {
        /// The requested length.
        chunk_len: u32,
    },
    /// The X25519 shared secret with the key server's public key was all zeros.
    #[error("the key server public key is invalid (a low-order point)")]
    InvalidKeyServerKey,
    /// More or fewer bytes were written than the metadata declared.
    #[error(
        "{written} bytes were sealed but {declared} were declared; did the input change while sealing?"
    )]
    LengthMismatch {
        /// The declared plaintext length.
        declared: u64,
        /// The number of bytes written.
        written: u64,
    },
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed")]
    Random,
}

/// Opening failed: the content key did not fit the header, or the payload was
/// altered, truncated or extended. No plaintext of a failing chunk is released.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The content key does not match the header's key commitment.
    #[error("the content key does not match this file's key commitment")]
    KeyCommitmentMismatch,
    /// The encrypted metadata did not authenticate.
    #[error("the file's encrypted metadata failed authentication: the header was altered")]
    MetadataAuthenticationFailed,
    /// The metadata authenticated, so the sealer wrote it, but its record
    /// breaks a rule of FORMAT.md §3 or §6.3: a critical field this version
    /// does not know, a malformed field, or a length above a limit. The
    /// source says which, with the kind a header record would have.
    #[error("the file's metadata authenticated, but this version cannot accept it")]
    InvalidMetadata(#[source] FormatError),
    /// A payload chunk did not authenticate.
    #[error("chunk {index} failed authentication: the file was altered or damaged")]
    ChunkAuthenticationFailed {
        /// The zero-based chunk index.
        index: u64,
    },
    /// The payload ends before its final chunk.
    #[error("the file is truncated: its final chunk is missing")]
    Truncated,
    /// Bytes follow the final chunk.
    #[error("unexpected data after the end of the sealed payload")]
    TrailingData,
    /// The payload holds more plaintext than one file may (FORMAT.md §6.2).
    #[error("the payload holds more than {limit} bytes of plaintext, the format's limit")]
    LimitExceeded {
        /// The limit, in plaintext bytes.
        limit: u64,
    },
    /// A read or seek past the end, or a position that does not fit in 64 bits.
    #[error("invalid position in the sealed payload")]
    InvalidPosition,
    /// The buffer given to [`open_into`](crate::open_into) is not the
    /// plaintext's length (see [`opened_len`](crate::opened_len)).
    #[error("the output buffer holds {given} bytes, the plaintext is {needed}")]
    OutputLength {
        /// The plaintext length.
        needed: u64,
        /// The buffer's length.
        given: u64,
    },
}

impl OpenError {
    /// Recovers the `OpenError` that an [`Opener`](crate::Opener) wrapped in an
    /// `io::Error` (its `Read` impl can only return `io::Error`).
    pub fn from_io(err: &io::Error) -> Option<&OpenError> {
        err.get_ref().and_then(|inner| inner.downcast_ref())
    }
}

impl From<OpenError> for io::Error {
    fn from(err: OpenError) -> Self {
        let kind = match err {
            OpenError::Truncated => io::ErrorKind::UnexpectedEof,
            OpenError::InvalidPosition | OpenError::OutputLength { .. } => {
                io::ErrorKind::InvalidInput
            }
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, err)
    }
}

impl From<SealError> for io::Error {
    fn from(err: SealError) -> Self {
        io::Error::new(io::ErrorKind::InvalidInput, err)
    }
}
