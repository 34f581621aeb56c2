//! Proof of possession for key-server requests (docs/PROTOCOL.md §2): a
//! device signs each request with its Ed25519 key, over the method, path,
//! a timestamp, a nonce and the body's hash, so that a copied token is worth
//! nothing and a captured request cannot be replayed or altered.
//!
//! This module defines the signed message and the header's text form; the
//! replay window and nonce memory are the key server's.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer, SigningKey as DalekSigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::SealError;
use crate::key_text::{self, KeyParseError};
use crate::keys::fill_random;

/// The HTTP authentication scheme name.
pub const AUTH_SCHEME: &str = "IRM-Device-Sig";

/// An Ed25519 signing key: a device's request key, or the key server's
/// audit-checkpoint key. Zeroized on drop, redacted in `Debug`.
pub struct SigningSecretKey(DalekSigningKey);

impl SigningSecretKey {
    /// The text prefix of the secret key's file form.
    pub const TEXT_PREFIX: &'static str = "IRM-SIGNING-SECRET-KEY-V1:";

    /// A new random key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, SealError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        fill_random(bytes.as_mut())?;
        Ok(Self(DalekSigningKey::from_bytes(&bytes)))
    }

    /// From the 32-byte seed.
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self(DalekSigningKey::from_bytes(bytes))
    }

    /// The 32-byte seed. Every use of the secret goes through here.
    pub fn expose_secret(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The public half, base64url.
    pub fn public_key_b64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.verifying_key().as_bytes())
    }

    /// The public half as bytes.
    pub fn public_key(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    /// Signs `message`; returns the 64-byte signature.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }

    /// The one-line text form of the secret.
    pub fn to_text(&self) -> Zeroizing<String> {
        key_text::encode(Self::TEXT_PREFIX, &*self.expose_secret())
    }

    /// Parses a key file's text (FORMAT.md §11): one key line, with `#`
    /// comment lines and blank lines around it.
    pub fn from_text(text: &str) -> Result<Self, KeyParseError> {
        let seed = key_text::decode::<32>(text, Self::TEXT_PREFIX, "an Ed25519 signing key")?;
        Ok(Self::from_bytes(&seed))
    }
}

impl fmt::Debug for SigningSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecretKey(..)")
    }
}

/// Verifies an Ed25519 signature strictly (no malleable or small-order keys).
pub fn verify_signature(public_key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(signature))
        .is_ok()
}

/// PROTOCOL.md §2.1: the bytes a device signs for one request.
pub fn request_message(
    method: &str,
    path_and_query: &str,
    timestamp_unix: u64,
    nonce: &[u8; 16],
    body: &[u8],
) -> Vec<u8> {
    let body_hash = hex::encode(Sha256::digest(body));
    format!(
        "irm/v1/request\n{}\n{}\n{}\n{}\n{}",
        method.to_ascii_uppercase(),
        path_and_query,
        timestamp_unix,
        hex::encode(nonce),
        body_hash
    )
    .into_bytes()
}

/// PROTOCOL.md §3: what the enrolling device signs to prove it holds its
/// signing key, binding the code (by hash) and its X25519 key.
pub fn enrollment_proof_message(user: &str, code: &str, device_public_key_b64: &str) -> Vec<u8> {
    format!(
        "irm/v1/enroll\n{}\n{}\n{}",
        user,
        hex::encode(Sha256::digest(code.as_bytes())),
        device_public_key_b64
    )
    .into_bytes()
}

/// PROTOCOL.md §7: what the key server signs for an audit checkpoint.
pub fn checkpoint_message(count: u64, head_hash_hex: &str, at_ms: u64) -> Vec<u8> {
    format!("irm/v1/audit-checkpoint\n{count}\n{head_hash_hex}\n{at_ms}").into_bytes()
}

/// The `Authorization` header of a signed request:
/// `IRM-Device-Sig device=<hex>,ts=<unix>,nonce=<hex>,sig=<base64url>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSignature {
    /// The device id (32 hex digits).
    pub device_id: String,
    /// The signing time (Unix seconds, client clock).
    pub timestamp_unix: u64,
    /// 16 random bytes, never reused.
    pub nonce: [u8; 16],
    /// The Ed25519 signature over [`request_message`].
    pub signature: [u8; 64],
}

/// A malformed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {AUTH_SCHEME} authorization header: {0}")]
pub struct SignatureHeaderError(&'static str);

impl RequestSignature {
    /// Signs a request now, with a fresh nonce.
    pub fn sign(
        key: &SigningSecretKey,
        device_id: &str,
        method: &str,
        path_and_query: &str,
        timestamp_unix: u64,
        body: &[u8],
    ) -> Result<Self, SealError> {
        let mut nonce = [0u8; 16];
        fill_random(&mut nonce)?;
        let message = request_message(method, path_and_query, timestamp_unix, &nonce, body);
        Ok(Self {
            device_id: device_id.to_owned(),
            timestamp_unix,
            nonce,
            signature: key.sign(&message),
        })
    }

    /// Whether the signature verifies under `public_key` for this request.
    pub fn verify(
        &self,
        public_key: &[u8; 32],
        method: &str,
        path_and_query: &str,
        body: &[u8],
    ) -> bool {
        let message = request_message(
            method,
            path_and_query,
            self.timestamp_unix,
            &self.nonce,
            body,
        );
        verify_signature(public_key, &message, &self.signature)
    }

    /// The header value.
    pub fn to_header_value(&self) -> String {
        format!(
            "{AUTH_SCHEME} device={},ts={},nonce={},sig={}",
            self.device_id,
            self.timestamp_unix,
            hex::encode(self.nonce),
            URL_SAFE_NO_PAD.encode(self.signature)
        )
    }

    /// Parses the header value.
    pub fn parse(value: &str) -> Result<Self, SignatureHeaderError> {
        let params = value
            .strip_prefix(AUTH_SCHEME)
            .and_then(|rest| rest.strip_prefix(' '))
            .ok_or(SignatureHeaderError("wrong scheme"))?;
        let (mut device, mut ts, mut nonce, mut sig) = (None, None, None, None);
        for part in params.split(',') {
            let (key, val) = part
                .trim()
                .split_once('=')
                .ok_or(SignatureHeaderError("a parameter has no '='"))?;
            let slot = match key {
                "device" => &mut device,
                "ts" => &mut ts,
                "nonce" => &mut nonce,
                "sig" => &mut sig,
                _ => return Err(SignatureHeaderError("unknown parameter")),
            };
            if slot.replace(val).is_some() {
                return Err(SignatureHeaderError("a parameter is repeated"));
            }
        }
        let device_id = device.ok_or(SignatureHeaderError("device is missing"))?;
        if device_id.len() != 32 || !device_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SignatureHeaderError("device is not 32 hex digits"));
        }
        let ts = ts.ok_or(SignatureHeaderError("ts is missing"))?;
        // Digits only: `u64::from_str` would also take `+5`, a second
        // spelling of the same signed value.
        if ts.is_empty() || ts.len() > 20 || !ts.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SignatureHeaderError("ts is not a number"));
        }
        let timestamp_unix = ts
            .parse()
            .map_err(|_| SignatureHeaderError("ts is not a number"))?;
        let mut nonce_bytes = [0u8; 16];
        hex::decode_to_slice(
            nonce.ok_or(SignatureHeaderError("nonce is missing"))?,
            &mut nonce_bytes,
        )
        .map_err(|_| SignatureHeaderError("nonce is not 32 hex digits"))?;
        let sig_bytes = URL_SAFE_NO_PAD
            .decode(sig.ok_or(SignatureHeaderError("sig is missing"))?)
            .map_err(|_| SignatureHeaderError("sig is not base64url"))?;
        let signature: [u8; 64] = sig_bytes
            .try_into()
            .map_err(|_| SignatureHeaderError("sig is not 64 bytes"))?;
        Ok(Self {
            device_id: device_id.to_ascii_lowercase(),
            timestamp_unix,
            nonce: nonce_bytes,
            signature,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_request_verifies_and_any_change_breaks_it() {
        let key = SigningSecretKey::generate().unwrap();
        let device = "00112233445566778899aabbccddeeff";
        let sig = RequestSignature::sign(&key, device, "post", "/v1/grant", 1_700_000_000, b"{}")
            .unwrap();
        let parsed = RequestSignature::parse(&sig.to_header_value()).unwrap();
        assert_eq!(parsed, sig);
        let public = key.public_key();
        assert!(parsed.verify(&public, "POST", "/v1/grant", b"{}"));
        assert!(!parsed.verify(&public, "POST", "/v1/grant", b"{ }"));
        assert!(!parsed.verify(&public, "POST", "/v1/events", b"{}"));
        assert!(!parsed.verify(&public, "GET", "/v1/grant", b"{}"));
        let other = SigningSecretKey::generate().unwrap().public_key();
        assert!(!parsed.verify(&other, "POST", "/v1/grant", b"{}"));
        let mut later = parsed.clone();
        later.timestamp_unix += 1;
        assert!(!later.verify(&public, "POST", "/v1/grant", b"{}"));
        // One spelling of the time only: the same header with `ts=+...`
        // (which would verify, the number being the same) is refused.
        let header = sig.to_header_value();
        for other in ["ts=+1700000000", "ts= 1700000000", "ts=01700000000x", "ts="] {
            let respelled = header.replace("ts=1700000000", other);
            assert_ne!(respelled, header);
            assert!(RequestSignature::parse(&respelled).is_err(), "{respelled}");
        }
    }

    #[test]
    fn malformed_headers_are_refused_without_panicking() {
        for bad in [
            "",
            "Bearer abc",
            "IRM-Device-Sig ",
            "IRM-Device-Sig device=zz,ts=1,nonce=00,sig=AA",
            "IRM-Device-Sig device=00112233445566778899aabbccddeeff,ts=x,nonce=00112233445566778899aabbccddeeff,sig=AA",
            "IRM-Device-Sig device=00112233445566778899aabbccddeeff,device=00112233445566778899aabbccddeeff",
            "IRM-Device-Sig device=00112233445566778899aabbccddeeff,ts=1,nonce=00112233445566778899aabbccddeeff,sig=AA",
        ] {
            assert!(RequestSignature::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn signing_key_text_round_trips_and_debug_is_redacted() {
        let key = SigningSecretKey::generate().unwrap();
        let again = SigningSecretKey::from_text(&key.to_text()).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        assert_eq!(format!("{key:?}"), "SigningSecretKey(..)");
    }
}
