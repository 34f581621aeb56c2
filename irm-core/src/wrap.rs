//! The key wraps: the content key wrapped to a key server when sealing
//! (FORMAT.md §4.4), and rewrapped by the key server to one device when it
//! grants access (§4.5); a share of the key server's root key wrapped to its
//! holder's device (PROTOCOL.md §11.2); and AES-256-GCM under a single-use
//! key, which the wraps and the header's metadata share.
//!
//! Every wrap uses a fresh ephemeral X25519 key, HKDF-SHA256 with both public
//! keys in the salt (as age does), and AES-256-GCM with a zero nonce, which is
//! safe because each derived key encrypts exactly one message. The HKDF labels
//! are `kdf`'s; finding a header's key-access entry is `header`'s.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::error::{SealError, UnwrapError};
use crate::kdf::{INFO_DEVICE_WRAP, INFO_KAS_WRAP, INFO_SHARE_WRAP, hkdf32};
use crate::keys::{
    ContentKey, DevicePublicKey, DeviceSecretKey, FileId, HeaderHash, KasPublicKey, KasSecretKey,
    fill_random,
};

/// The length of a wrapped content key: 32 bytes of key and a 16-byte tag.
pub const WRAPPED_KEY_LEN: usize = 48;

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
    shared: &[u8; 32],
    ephemeral_public: &[u8; 32],
    recipient_public: &[u8; 32],
    info: &[u8],
) -> Option<Zeroizing<[u8; 32]>> {
    if bool::from(subtle::ConstantTimeEq::ct_eq(&shared[..], &[0u8; 32][..])) {
        return None;
    }
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(ephemeral_public);
    salt[32..].copy_from_slice(recipient_public);
    Some(hkdf32(shared, &salt, &[info]))
}

/// A fresh ephemeral X25519 key agreed with `recipient`: the ephemeral
/// public key and the shared secret (all zero for a non-contributory
/// recipient key, which [`wrap_key`] rejects).
///
/// With the `aws-lc` feature this is aws-lc-rs's X25519, whose assembly runs
/// the key server's one agreement per grant in about a third of the time of
/// curve25519-dalek's ladder; the bytes are the same (RFC 7748), as
/// `tests::both_agreements_give_the_same_secret` checks.
fn ephemeral_agreement(recipient: &[u8; 32]) -> Result<([u8; 32], Zeroizing<[u8; 32]>), SealError> {
    #[cfg(feature = "aws-lc")]
    {
        fast_ephemeral_agreement(recipient)
    }
    #[cfg(not(feature = "aws-lc"))]
    {
        portable_ephemeral_agreement(recipient)
    }
}

#[cfg_attr(feature = "aws-lc", allow(dead_code))]
fn portable_ephemeral_agreement(
    recipient: &[u8; 32],
) -> Result<([u8; 32], Zeroizing<[u8; 32]>), SealError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    fill_random(bytes.as_mut())?;
    let secret = StaticSecret::from(*bytes);
    let public = PublicKey::from(&secret).to_bytes();
    let shared = secret.diffie_hellman(&PublicKey::from(*recipient));
    Ok((public, Zeroizing::new(*shared.as_bytes())))
}

#[cfg(feature = "aws-lc")]
fn fast_ephemeral_agreement(
    recipient: &[u8; 32],
) -> Result<([u8; 32], Zeroizing<[u8; 32]>), SealError> {
    use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey, X25519};
    let secret = PrivateKey::generate(&X25519).map_err(|_| SealError::Random)?;
    let public: [u8; 32] = secret
        .compute_public_key()
        .map_err(|_| SealError::Random)?
        .as_ref()
        .try_into()
        .map_err(|_| SealError::Random)?;
    let mut shared = Zeroizing::new([0u8; 32]);
    // aws-lc refuses a non-contributory result outright; leaving the secret
    // all zero lets `wrap_key` refuse it exactly as the portable path does.
    let _ = agreement::agree(
        &secret,
        UnparsedPublicKey::new(&X25519, recipient),
        (),
        |bytes| {
            if bytes.len() == 32 {
                shared.copy_from_slice(bytes);
            }
            Ok(())
        },
    );
    Ok((public, shared))
}

/// The first half of a key-server wrap: the ephemeral key and wrap key exist
/// before the header hash does, because the hash covers the ephemeral public key.
pub(crate) struct PendingKasWrap {
    pub(crate) ephemeral_public: [u8; 32],
    wrap_key: Zeroizing<[u8; 32]>,
}

impl PendingKasWrap {
    pub(crate) fn new(kas: &KasPublicKey) -> Result<Self, SealError> {
        let kas_bytes = kas.to_bytes();
        let (ephemeral_public, shared) = ephemeral_agreement(&kas_bytes)?;
        let wrap_key = wrap_key(&shared, &ephemeral_public, &kas_bytes, INFO_KAS_WRAP)
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
    /// Unwraps the content key of one key-access entry (FORMAT.md §4.4, steps
    /// 2 and 3): `ephemeral_public` is the entry's `E`, `wrapped` its wrapped
    /// key, `header_hash` the hash of the header as received. Finding the
    /// entry is [`KasSecretKey::unwrap`]'s, in `header`.
    pub(crate) fn unwrap_entry(
        &self,
        ephemeral_public: &[u8; 32],
        wrapped: &[u8; WRAPPED_KEY_LEN],
        header_hash: &HeaderHash,
    ) -> Result<ContentKey, UnwrapError> {
        let ephemeral = PublicKey::from(*ephemeral_public);
        let shared = Zeroizing::new(*self.0.diffie_hellman(&ephemeral).as_bytes());
        let wrap_key = wrap_key(
            &shared,
            ephemeral_public,
            &self.public_key().to_bytes(),
            INFO_KAS_WRAP,
        )
        .ok_or(UnwrapError::NonContributory)?;
        let plain =
            open_once(&wrap_key, &header_hash.0, wrapped).ok_or(UnwrapError::BindingFailed)?;
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

/// One message from the key server to a device: a fresh ephemeral X25519
/// key, the wrap key under `info` (FORMAT.md §4.5's construction), and
/// AES-256-GCM of `plaintext` with `aad`. The ephemeral public key and the
/// ciphertext.
fn seal_to_device(
    plaintext: &[u8],
    device: &DevicePublicKey,
    info: &[u8],
    aad: &[u8],
) -> Result<([u8; 32], Vec<u8>), SealError> {
    let (ephemeral_public, shared) = ephemeral_agreement(&device.to_bytes())?;
    let key = wrap_key(&shared, &ephemeral_public, &device.to_bytes(), info)
        .ok_or(SealError::InvalidKeyServerKey)?;
    Ok((ephemeral_public, seal_once(&key, aad, plaintext)))
}

/// Rewraps a content key to a device's public key, bound to `context`.
pub fn rewrap(
    content_key: &ContentKey,
    device: &DevicePublicKey,
    context: &RewrapContext,
) -> Result<DeviceWrappedKey, SealError> {
    let (ephemeral_public, ct) = seal_to_device(
        content_key.expose_secret(),
        device,
        INFO_DEVICE_WRAP,
        &context.associated_data(),
    )?;
    Ok(DeviceWrappedKey {
        ephemeral_public,
        ciphertext: ct
            .try_into()
            .expect("a 32-byte key wraps to exactly 48 bytes"),
    })
}

impl DeviceSecretKey {
    /// Opens a message [`seal_to_device`] sealed to this device.
    fn open_from_server(
        &self,
        ephemeral_public: &[u8; 32],
        ciphertext: &[u8],
        info: &[u8],
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, UnwrapError> {
        let shared = self.0.diffie_hellman(&PublicKey::from(*ephemeral_public));
        let key = wrap_key(
            &Zeroizing::new(*shared.as_bytes()),
            ephemeral_public,
            &self.public_key().to_bytes(),
            info,
        )
        .ok_or(UnwrapError::NonContributory)?;
        open_once(&key, aad, ciphertext).ok_or(UnwrapError::BindingFailed)
    }

    /// Unwraps a content key the key server rewrapped to this device. Fails
    /// if any value in `context` differs from the key server's.
    pub fn unwrap_grant(
        &self,
        wrapped: &DeviceWrappedKey,
        context: &RewrapContext,
    ) -> Result<ContentKey, UnwrapError> {
        let plain = self.open_from_server(
            &wrapped.ephemeral_public,
            &wrapped.ciphertext,
            INFO_DEVICE_WRAP,
            &context.associated_data(),
        )?;
        let bytes: [u8; 32] = plain
            .as_slice()
            .try_into()
            .map_err(|_| UnwrapError::BindingFailed)?;
        Ok(ContentKey::from_bytes(bytes))
    }
}

/// What a wrapped root-key share is bound to (PROTOCOL.md §11.2): the root
/// key it is a share of, its index, and the device it was wrapped to, so a
/// share cannot be passed off as another holder's or another root's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareContext {
    /// The root key's id.
    pub root_id: [u8; 16],
    /// The share's index (its x coordinate, 1 to 255).
    pub index: u8,
    /// The holder's device (the key server's id for it).
    pub device_id: [u8; 16],
}

impl ShareContext {
    fn associated_data(&self) -> [u8; 45] {
        let mut aad = [0u8; 45];
        aad[..12].copy_from_slice(b"irm/v1/share");
        aad[12..28].copy_from_slice(&self.root_id);
        aad[28] = self.index;
        aad[29..].copy_from_slice(&self.device_id);
        aad
    }
}

/// A root-key share wrapped to one device.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedShare {
    /// The key server's fresh ephemeral X25519 public key.
    pub ephemeral_public: [u8; 32],
    /// AES-256-GCM of the share and its tag.
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for WrappedShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WrappedShare(..)")
    }
}

/// Wraps a root-key share to a holder's device, bound to `context`.
pub fn wrap_share(
    share: &[u8],
    device: &DevicePublicKey,
    context: &ShareContext,
) -> Result<WrappedShare, SealError> {
    let (ephemeral_public, ciphertext) =
        seal_to_device(share, device, INFO_SHARE_WRAP, &context.associated_data())?;
    Ok(WrappedShare {
        ephemeral_public,
        ciphertext,
    })
}

impl DeviceSecretKey {
    /// Unwraps a root-key share the key server wrapped to this device. Fails
    /// if any value in `context` differs from the key server's.
    pub fn unwrap_share(
        &self,
        wrapped: &WrappedShare,
        context: &ShareContext,
    ) -> Result<Zeroizing<Vec<u8>>, UnwrapError> {
        self.open_from_server(
            &wrapped.ephemeral_public,
            &wrapped.ciphertext,
            INFO_SHARE_WRAP,
            &context.associated_data(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points of small order on Curve25519 (and their non-canonical forms):
    /// X25519 with any of them gives the all-zero secret.
    const LOW_ORDER: [[u8; 32]; 3] = [
        [0; 32],
        {
            let mut p = [0u8; 32];
            p[0] = 1;
            p
        },
        [
            0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f,
            0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16,
            0x5f, 0x49, 0xb8, 0x00,
        ],
    ];

    #[test]
    fn a_share_unwraps_only_on_its_device_and_in_its_context() {
        let device = DeviceSecretKey::generate().unwrap();
        let other = DeviceSecretKey::generate().unwrap();
        let context = ShareContext {
            root_id: [7; 16],
            index: 2,
            device_id: [9; 16],
        };
        let share = [0x5a_u8; 33];
        let wrapped = wrap_share(&share, &device.public_key(), &context).unwrap();
        assert_eq!(
            &device.unwrap_share(&wrapped, &context).unwrap()[..],
            &share[..]
        );
        assert!(other.unwrap_share(&wrapped, &context).is_err());
        for changed in [
            ShareContext {
                index: 3,
                ..context
            },
            ShareContext {
                root_id: [8; 16],
                ..context
            },
            ShareContext {
                device_id: [1; 16],
                ..context
            },
        ] {
            assert!(
                device.unwrap_share(&wrapped, &changed).is_err(),
                "{changed:?}"
            );
        }
    }

    fn both() -> Vec<(&'static str, Agreement)> {
        vec![
            ("portable", portable_ephemeral_agreement as Agreement),
            #[cfg(feature = "aws-lc")]
            ("aws-lc", fast_ephemeral_agreement),
        ]
    }

    type AgreementResult = Result<([u8; 32], Zeroizing<[u8; 32]>), SealError>;
    type Agreement = fn(&[u8; 32]) -> AgreementResult;

    #[test]
    fn both_agreements_give_the_same_secret() {
        for (name, agree) in both() {
            for _ in 0..20 {
                let mut bytes = [0u8; 32];
                fill_random(&mut bytes).unwrap();
                let recipient = StaticSecret::from(bytes);
                let recipient_public = PublicKey::from(&recipient).to_bytes();
                let (ephemeral_public, shared) = agree(&recipient_public).unwrap();
                let theirs = recipient.diffie_hellman(&PublicKey::from(ephemeral_public));
                assert_eq!(&*shared, theirs.as_bytes(), "{name}");
                assert_ne!(*shared, [0u8; 32], "{name}");
            }
        }
    }

    #[test]
    fn a_low_order_recipient_key_is_refused_by_both() {
        for (name, agree) in both() {
            for point in LOW_ORDER {
                let (ephemeral_public, shared) = agree(&point).unwrap();
                assert!(
                    wrap_key(&shared, &ephemeral_public, &point, INFO_DEVICE_WRAP).is_none(),
                    "{name} accepted a low-order key {point:02x?}"
                );
            }
        }
        let device = DevicePublicKey::from_bytes(LOW_ORDER[0]);
        let context = RewrapContext {
            file_id: FileId([1; 16]),
            header_hash: HeaderHash([2; 32]),
            device_id: [3; 16],
            lease_expires_at_unix: 4,
        };
        assert!(matches!(
            rewrap(&ContentKey::from_bytes([5; 32]), &device, &context),
            Err(SealError::InvalidKeyServerKey)
        ));
    }
}
