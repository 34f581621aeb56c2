//! Key derivations (FORMAT.md §4) and the two key wraps: the content key
//! wrapped to a key server when sealing, and rewrapped by the key server to one
//! device when it grants access (FORMAT.md §4.5).
//!
//! Every wrap uses a fresh ephemeral X25519 key, HKDF-SHA256 with both public
//! keys in the salt (as age does), and AES-256-GCM with a zero nonce, which is
//! safe because each derived key encrypts exactly one message.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::error::{SealError, UnwrapError};
use crate::header::{HeaderHash, SealedHeader};
use crate::keys::{
    ContentKey, DevicePublicKey, DeviceSecretKey, FileId, KasPublicKey, KasSecretKey, fill_random,
};

/// The length of a wrapped content key: 32 bytes of key and a 16-byte tag.
pub const WRAPPED_KEY_LEN: usize = 48;

pub(crate) const INFO_KAS_WRAP: &[u8] = b"irm/v1/kas-wrap";
pub(crate) const INFO_DEVICE_WRAP: &[u8] = b"irm/v1/device-wrap";
pub(crate) const INFO_COMMITMENT: &[u8] = b"irm/v1/key-commitment";
pub(crate) const INFO_PAYLOAD: &[u8] = b"irm/v1/payload";
pub(crate) const INFO_METADATA: &[u8] = b"irm/v1/metadata";

/// HKDF-SHA256 with a 32-byte output; `info` parts are concatenated.
pub(crate) fn hkdf32(ikm: &[u8], salt: &[u8], info: &[&[u8]]) -> Zeroizing<[u8; 32]> {
    let mut okm = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand_multi_info(info, okm.as_mut())
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    okm
}

/// One AES-256-GCM message under a single-use key (zero nonce).
pub(crate) fn seal_once(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    Aes256Gcm::new(key.into())
        .encrypt(
            &Nonce::default(),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("AES-GCM encryption of a short message cannot fail")
}

pub(crate) fn open_once(
    key: &[u8; 32],
    aad: &[u8],
    ciphertext: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    Aes256Gcm::new(key.into())
        .decrypt(
            &Nonce::default(),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .ok()
        .map(Zeroizing::new)
}

/// X25519 plus HKDF: the wrap key for a message from `ephemeral_public` to
/// `recipient_public`. FORMAT.md §4.3: a non-contributory (all-zero) shared
/// secret is rejected.
fn wrap_key(
    shared: x25519_dalek::SharedSecret,
    ephemeral_public: &[u8; 32],
    recipient_public: &[u8; 32],
    info: &[u8],
) -> Option<Zeroizing<[u8; 32]>> {
    if !shared.was_contributory() {
        return None;
    }
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(ephemeral_public);
    salt[32..].copy_from_slice(recipient_public);
    Some(hkdf32(shared.as_bytes(), &salt, &[info]))
}

fn fresh_ephemeral() -> Result<(StaticSecret, [u8; 32]), SealError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    fill_random(bytes.as_mut())?;
    let secret = StaticSecret::from(*bytes);
    let public = PublicKey::from(&secret).to_bytes();
    Ok((secret, public))
}

/// The first half of a key-server wrap: the ephemeral key and wrap key exist
/// before the header hash does, because the hash covers the ephemeral public key.
pub(crate) struct PendingKasWrap {
    pub(crate) ephemeral_public: [u8; 32],
    wrap_key: Zeroizing<[u8; 32]>,
}

impl PendingKasWrap {
    pub(crate) fn new(kas: &KasPublicKey) -> Result<Self, SealError> {
        let (ephemeral, ephemeral_public) = fresh_ephemeral()?;
        let kas_bytes = kas.to_bytes();
        let wrap_key = wrap_key(
            ephemeral.diffie_hellman(&kas.0),
            &ephemeral_public,
            &kas_bytes,
            INFO_KAS_WRAP,
        )
        .ok_or(SealError::InvalidKeyServerKey)?;
        Ok(Self {
            ephemeral_public,
            wrap_key,
        })
    }

    /// FORMAT.md §4.4: the associated data is the header hash, which binds the
    /// policy and every key-access entry to the wrapped key.
    pub(crate) fn finish(
        self,
        content_key: &ContentKey,
        header_hash: &HeaderHash,
    ) -> [u8; WRAPPED_KEY_LEN] {
        let ct = seal_once(&self.wrap_key, &header_hash.0, content_key.expose_secret());
        ct.try_into()
            .expect("a 32-byte key wraps to exactly 48 bytes")
    }
}

impl KasSecretKey {
    /// Unwraps a file's content key with this key server key (FORMAT.md §4.4).
    ///
    /// Succeeds only if the header is byte for byte the one that was sealed:
    /// the header hash is the associated data. The content key is then checked
    /// against the header's key commitment by [`SealedHeader::verify`].
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
        let ephemeral = PublicKey::from(entry.ephemeral_public);
        let wrap_key = wrap_key(
            self.0.diffie_hellman(&ephemeral),
            &entry.ephemeral_public,
            &self.public_key().to_bytes(),
            INFO_KAS_WRAP,
        )
        .ok_or(UnwrapError::NonContributory)?;
        let plain =
            open_once(&wrap_key, &header.hash().0, wrapped).ok_or(UnwrapError::BindingFailed)?;
        let bytes: [u8; 32] = plain
            .as_slice()
            .try_into()
            .map_err(|_| UnwrapError::BindingFailed)?;
        Ok(ContentKey::from_bytes(bytes))
    }
}

/// What a device-bound content key is bound to (FORMAT.md §4.5). The device
/// must present the same values to unwrap it, so a rewrapped key cannot be
/// replayed for another file, another device, or a longer lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewrapContext {
    /// The file the grant is for.
    pub file_id: FileId,
    /// The hash of that file's header.
    pub header_hash: HeaderHash,
    /// The device the grant is for (the key server's id for it).
    pub device_id: [u8; 16],
    /// When the lease ends (Unix seconds, key server clock).
    pub lease_expires_at_unix: u64,
}

impl RewrapContext {
    fn associated_data(&self) -> [u8; 72] {
        let mut aad = [0u8; 72];
        aad[..16].copy_from_slice(&self.file_id.0);
        aad[16..48].copy_from_slice(&self.header_hash.0);
        aad[48..64].copy_from_slice(&self.device_id);
        aad[64..].copy_from_slice(&self.lease_expires_at_unix.to_be_bytes());
        aad
    }
}

/// A content key wrapped by the key server to one device.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceWrappedKey {
    /// The key server's fresh ephemeral X25519 public key.
    pub ephemeral_public: [u8; 32],
    /// AES-256-GCM of the content key (32 bytes) and its tag.
    pub ciphertext: [u8; WRAPPED_KEY_LEN],
}

impl std::fmt::Debug for DeviceWrappedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceWrappedKey(..)")
    }
}

/// Rewraps a content key to a device's public key, bound to `context`.
pub fn rewrap(
    content_key: &ContentKey,
    device: &DevicePublicKey,
    context: &RewrapContext,
) -> Result<DeviceWrappedKey, SealError> {
    let (ephemeral, ephemeral_public) = fresh_ephemeral()?;
    let key = wrap_key(
        ephemeral.diffie_hellman(&device.0),
        &ephemeral_public,
        &device.to_bytes(),
        INFO_DEVICE_WRAP,
    )
    .ok_or(SealError::InvalidKeyServerKey)?;
    let ct = seal_once(
        &key,
        &context.associated_data(),
        content_key.expose_secret(),
    );
    Ok(DeviceWrappedKey {
        ephemeral_public,
        ciphertext: ct
            .try_into()
            .expect("a 32-byte key wraps to exactly 48 bytes"),
    })
}

impl DeviceSecretKey {
    /// Unwraps a content key the key server rewrapped to this device. Fails
    /// if any value in `context` differs from the key server's.
    pub fn unwrap_grant(
        &self,
        wrapped: &DeviceWrappedKey,
        context: &RewrapContext,
    ) -> Result<ContentKey, UnwrapError> {
        let key = wrap_key(
            self.0
                .diffie_hellman(&PublicKey::from(wrapped.ephemeral_public)),
            &wrapped.ephemeral_public,
            &self.public_key().to_bytes(),
            INFO_DEVICE_WRAP,
        )
        .ok_or(UnwrapError::NonContributory)?;
        let plain = open_once(&key, &context.associated_data(), &wrapped.ciphertext)
            .ok_or(UnwrapError::BindingFailed)?;
        let bytes: [u8; 32] = plain
            .as_slice()
            .try_into()
            .map_err(|_| UnwrapError::BindingFailed)?;
        Ok(ContentKey::from_bytes(bytes))
    }
}
