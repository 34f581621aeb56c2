//! `irm-core`: the sealed-envelope format for customer data files.
//!
//! A sealed file is a header carrying the policy (who may open it, until when,
//! with which rights) and the content key wrapped to the key server, followed
//! by the payload in STREAM-style chunked AES-256-GCM. `docs/FORMAT.md` is
//! the specification; this crate is its reference implementation.
//!
//! This crate does no networking, has no async runtime and no UI: the key
//! server, the client, the CLI, the viewer and the FFI build on it.
//!
//! Sealing:
//! ```
//! # use irm_core::*;
//! # let kas = KasSecretKey::generate().unwrap();
//! let policy = Policy::builder()
//!     .grant(PolicyGrant::parse("@support=view").unwrap())
//!     .not_after(1_900_000_000)
//!     .build().unwrap();
//! let header = EnvelopeBuilder::new(policy)
//!     .key_server("https://kas.example:8443", kas.public_key())
//!     .build().unwrap();
//! let mut sealer = Sealer::new(&header, Vec::new(), StreamOptions::default()).unwrap();
//! std::io::Write::write_all(&mut sealer, b"customer,phone\n").unwrap();
//! let sealed = sealer.finish().unwrap();
//!
//! // Opening (here with the key server's own key, as break-glass recovery does).
//! let mut input = &sealed[..];
//! let header = SealedHeader::read_from(&mut input).unwrap();
//! let verified = header.clone().verify(kas.unwrap(&header).unwrap()).unwrap();
//! let mut plain = Vec::new();
//! std::io::Read::read_to_end(&mut Opener::new(&verified, input, StreamOptions::default()), &mut plain).unwrap();
//! assert_eq!(plain, b"customer,phone\n");
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod audit;
mod buffers;
mod codec;
mod error;
mod header;
pub mod invitation;
mod kdf;
mod key_text;
mod keys;
mod parallel;
mod policy;
pub mod protocol;
mod request_auth;
mod stream;
pub mod webhook;
mod wrap;

pub use error::{FormatError, OpenError, PolicyError, SealError, UnwrapError};
pub use header::{
    DEFAULT_CHUNK_LEN, EnvelopeBuilder, HeaderHash, KeyAccess, MAGIC, MAX_CHUNK_LEN, MIN_CHUNK_LEN,
    Metadata, SealedHeader, VERSION, VerifiedHeader,
};
pub use keys::{
    ContentKey, DevicePublicKey, DeviceSecretKey, FileId, KasPublicKey, KasSecretKey, KeyId,
    KeyParseError,
};
pub use policy::{DEFAULT_MAX_LEASE_SECS, Policy, PolicyBuilder, PolicyGrant, Recipient, Rights};
pub use request_auth::{
    AUTH_SCHEME, RequestSignature, SignatureHeaderError, SigningSecretKey, checkpoint_message,
    enrollment_proof_message, request_message, verify_signature,
};
pub use stream::{
    Opener, PayloadBackend, Sealer, SeekableOpener, StreamOptions, TAG_LEN, open_into, open_to_vec,
    opened_len, seal_in_place, seal_payload_in_place, seal_to_vec,
};
pub use wrap::{
    DeviceWrappedKey, RewrapContext, ShareContext, WRAPPED_KEY_LEN, WrappedShare, rewrap,
    wrap_share,
};
