//! The payload (FORMAT.md §6): STREAM-style chunked AES-256-GCM. A [`Sealer`]
//! is a `Write` adaptor, an [`Opener`] a `Read` (and, over `Read + Seek`, a
//! `Seek`) adaptor; both hold a bounded number of chunks in memory whatever
//! the file size.
//!
//! Nonce for chunk `i`: 11-byte big-endian `i`, then `0x01` for the final chunk
//! and `0x00` otherwise. Each chunk is `ciphertext || 16-byte tag`; every chunk
//! but the last carries exactly `chunk_len` plaintext bytes.
//!
//! Its parts, each in its own module:
//!
//! - `options`: the tag length, the nonce of each chunk, [`StreamOptions`];
//! - `cipher`: AES-256-GCM over chunks and batches, with either
//!   [`PayloadBackend`];
//! - `seal`: [`Sealer`], sealing as the payload is written;
//! - `open`: [`Opener`], opening as it is read;
//! - `seekable`: [`SeekableOpener`], random access (FORMAT.md §6.5);
//! - `in_memory`: whole payloads in one call ([`seal_to_vec`], [`open_into`]...);
//! - `read`: reads that retry and fill a buffer.

mod cipher;
mod in_memory;
mod open;
mod options;
mod read;
mod seal;
mod seekable;

pub use in_memory::{
    open_into, open_to_vec, opened_len, seal_in_place, seal_payload_in_place, seal_to_vec,
};
pub use open::Opener;
pub use options::{PayloadBackend, StreamOptions, TAG_LEN};
pub use seal::Sealer;
pub use seekable::SeekableOpener;

#[cfg(test)]
mod tests {
    use crate::{EnvelopeBuilder, KasSecretKey, Metadata, Policy, PolicyGrant, Recipient, Rights};

    /// An envelope for `@support` to view, with `chunk_len`-byte chunks and
    /// `declared` as its plaintext length.
    pub(crate) fn builder(
        kas: &KasSecretKey,
        chunk_len: u32,
        declared: Option<u64>,
    ) -> EnvelopeBuilder {
        let policy = Policy::builder()
            .grant(PolicyGrant {
                recipients: [Recipient::parse("@support").unwrap()].into(),
                rights: Rights::VIEW,
            })
            .max_lease_secs(600)
            .build()
            .unwrap();
        EnvelopeBuilder::new(policy)
            .key_server("https://kas.test", kas.public_key())
            .chunk_len(chunk_len)
            .metadata(Metadata {
                plaintext_len: declared,
                ..Metadata::default()
            })
    }
}
