//! Every derivation label of the format and the key derivations of FORMAT.md
//! §4.2: the key commitment, payload and metadata keys from a content key,
//! and HKDF-SHA256 itself for the wrap keys of §4.4 and §4.5.
//!
//! The labels live here, and only here, so that each one can be checked
//! against the document in one place. This module knows bytes, not key
//! types: what the derived keys are for belongs to `header` (the payload and
//! metadata keys, the commitment), `wrap` (the wrap keys) and `keys` (key ids).

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

/// FORMAT.md §4.4: `info` of the key-server wrap key.
pub(crate) const INFO_KAS_WRAP: &[u8] = b"irm/v1/kas-wrap";
/// FORMAT.md §4.5: `info` of the device wrap key.
pub(crate) const INFO_DEVICE_WRAP: &[u8] = b"irm/v1/device-wrap";
/// PROTOCOL.md §11.2: `info` of the key that wraps a root-key share to a
/// holder's device.
pub(crate) const INFO_SHARE_WRAP: &[u8] = b"irm/v1/share-wrap";
/// FORMAT.md §4.2: `info` of the key commitment.
pub(crate) const INFO_COMMITMENT: &[u8] = b"irm/v1/key-commitment";
/// FORMAT.md §4.2: `info` of the payload key, followed by the header hash.
pub(crate) const INFO_PAYLOAD: &[u8] = b"irm/v1/payload";
/// FORMAT.md §4.2: `info` of the metadata key, followed by the header hash.
pub(crate) const INFO_METADATA: &[u8] = b"irm/v1/metadata";
/// FORMAT.md §4.2: the prefix hashed with a key server public key into its
/// key id (a SHA-256 domain label, not an HKDF `info`).
pub(crate) const KAS_KEY_ID: &[u8] = b"irm/v1/kas-key-id";

/// HKDF-SHA256 with a 32-byte output; `info` parts are concatenated.
pub(crate) fn hkdf32(ikm: &[u8], salt: &[u8], info: &[&[u8]]) -> Zeroizing<[u8; 32]> {
    let mut okm = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand_multi_info(info, okm.as_mut())
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    okm
}

/// FORMAT.md §4.2: HKDF(content key, salt = file id, info = "irm/v1/key-commitment").
pub(crate) fn key_commitment(content_key: &[u8; 32], file_id: &[u8; 16]) -> [u8; 32] {
    *hkdf32(content_key, file_id, &[INFO_COMMITMENT])
}

/// FORMAT.md §4.2: the payload key, bound to the file id and the header hash.
pub(crate) fn payload_key(
    content_key: &[u8; 32],
    file_id: &[u8; 16],
    header_hash: &[u8; 32],
) -> Zeroizing<[u8; 32]> {
    hkdf32(content_key, file_id, &[INFO_PAYLOAD, header_hash])
}

/// FORMAT.md §4.2: the metadata key, bound to the file id and the header hash.
pub(crate) fn metadata_key(
    content_key: &[u8; 32],
    file_id: &[u8; 16],
    header_hash: &[u8; 32],
) -> Zeroizing<[u8; 32]> {
    hkdf32(content_key, file_id, &[INFO_METADATA, header_hash])
}
