//! Key and identifier types: the per-file content key, the key server's and
//! devices' X25519 key pairs, key ids, file ids and header hashes, and their
//! text forms.
//!
//! Secrets live in types that zeroize on drop, print redacted in `Debug`, and
//! are reachable only through `expose_secret`, so every use can be found with
//! grep. What is done with the keys (wrapping, deriving) lives in `wrap` and
//! `header`; the rules of their text form (FORMAT.md §11) in `key_text`.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::error::SealError;
use crate::kdf;
use crate::key_text;
// The error of every `from_text` and id parse; defined with the text rules
// it reports on, and exported from here as it always was.
pub use crate::key_text::KeyParseError;

/// Fills `buf` from the operating system's CSPRNG.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), SealError> {
    getrandom::fill(buf).map_err(|_| SealError::Random)
}

/// The 256-bit key that protects one file. Fresh and random for every file,
/// never reused (FORMAT.md §4.1).
pub struct ContentKey(Zeroizing<[u8; 32]>);

impl ContentKey {
    pub(crate) fn generate() -> Result<Self, SealError> {
        let mut key = Zeroizing::new([0u8; 32]);
        fill_random(key.as_mut())?;
        Ok(Self(key))
    }

    /// Wraps raw key bytes, for example after a device unwraps a grant.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The raw key. Every use of the secret goes through here.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ContentKey(..)")
    }
}

/// Identifies one key server key pair: the first 16 bytes of
/// SHA-256("irm/v1/kas-key-id" || public key) (FORMAT.md §4.2).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 16]);

impl KeyId {
    fn of(public: &[u8; 32]) -> Self {
        let digest = Sha256::new()
            .chain_update(kdf::KAS_KEY_ID)
            .chain_update(public)
            .finalize();
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        Self(id)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl FromStr for KeyId {
    type Err = KeyParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut id = [0u8; 16];
        hex::decode_to_slice(s, &mut id).map_err(|_| KeyParseError::Malformed {
            expected: "a key id (32 hex digits)",
        })?;
        Ok(Self(id))
    }
}

/// SHA-256 over the header bytes as stored, from the magic to the end of the
/// bound record (FORMAT.md §4.4). Every derived key and the key wrap depend on it.
///
/// A header's identifier, kept with the other ids so that the key wraps can
/// bind to it without depending on the header (which depends on them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HeaderHash(pub [u8; 32]);

/// The random 128-bit id of one sealed file.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub [u8; 16]);

impl FileId {
    pub(crate) fn generate() -> Result<Self, SealError> {
        let mut id = [0u8; 16];
        fill_random(&mut id)?;
        Ok(Self(id))
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileId({self})")
    }
}

impl FromStr for FileId {
    type Err = KeyParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut id = [0u8; 16];
        hex::decode_to_slice(s, &mut id).map_err(|_| KeyParseError::Malformed {
            expected: "a file id (32 hex digits)",
        })?;
        Ok(Self(id))
    }
}

macro_rules! x25519_pair {
    (
        $(#[$pub_doc:meta])* $public:ident,
        $(#[$sec_doc:meta])* $secret:ident,
        pub_prefix = $pub_prefix:literal,
        sec_prefix = $sec_prefix:literal,
        what = $what:literal
    ) => {
        $(#[$pub_doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $public(pub(crate) PublicKey);

        impl $public {
            /// The text prefix of the public key's file form.
            pub const TEXT_PREFIX: &'static str = $pub_prefix;

            /// From the 32 raw bytes.
            pub fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(PublicKey::from(bytes))
            }

            /// The 32 raw bytes.
            pub fn to_bytes(&self) -> [u8; 32] {
                self.0.to_bytes()
            }

            /// The one-line text form written to `.pub` files.
            pub fn to_text(&self) -> String {
                key_text::encode($pub_prefix, self.0.as_bytes()).to_string()
            }

            /// Parses a key file's text (FORMAT.md §11): one key line, with
            /// `#` comment lines and blank lines around it.
            pub fn from_text(text: &str) -> Result<Self, KeyParseError> {
                let bytes =
                    key_text::decode::<32>(text, $pub_prefix, concat!("a ", $what, " public key"))?;
                Ok(Self::from_bytes(*bytes))
            }
        }

        impl fmt::Debug for $public {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($public), self.to_text())
            }
        }

        $(#[$sec_doc])*
        pub struct $secret(pub(crate) StaticSecret);

        impl $secret {
            /// The text prefix of the secret key's file form.
            pub const TEXT_PREFIX: &'static str = $sec_prefix;

            /// A new random key pair from the operating system's CSPRNG.
            pub fn generate() -> Result<Self, SealError> {
                let mut bytes = Zeroizing::new([0u8; 32]);
                fill_random(bytes.as_mut())?;
                Ok(Self(StaticSecret::from(*bytes)))
            }

            /// From the 32 raw secret bytes.
            pub fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(StaticSecret::from(bytes))
            }

            /// The raw secret. Every use of the secret goes through here.
            pub fn expose_secret(&self) -> &[u8; 32] {
                self.0.as_bytes()
            }

            /// The matching public key.
            pub fn public_key(&self) -> $public {
                $public(PublicKey::from(&self.0))
            }

            /// The one-line text form of the secret, for a 0600 key file.
            pub fn to_text(&self) -> Zeroizing<String> {
                key_text::encode($sec_prefix, self.0.as_bytes())
            }

            /// Parses a key file's text (FORMAT.md §11): one key line, with
            /// `#` comment lines and blank lines around it.
            pub fn from_text(text: &str) -> Result<Self, KeyParseError> {
                let bytes =
                    key_text::decode::<32>(text, $sec_prefix, concat!("a ", $what, " secret key"))?;
                Ok(Self(StaticSecret::from(*bytes)))
            }
        }

        impl fmt::Debug for $secret {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($secret), "(..)"))
            }
        }
    };
}

x25519_pair!(
    /// A key server's X25519 public key: content keys are wrapped to it.
    KasPublicKey,
    /// A key server's X25519 private key. Whoever holds it can unwrap the
    /// content key of every file sealed to it.
    KasSecretKey,
    pub_prefix = "irm-kas-public-key-v1:",
    sec_prefix = "IRM-KAS-SECRET-KEY-V1:",
    what = "key server"
);

x25519_pair!(
    /// A device's X25519 public key: the key server rewraps content keys to it.
    DevicePublicKey,
    /// A device's X25519 private key; it unwraps the grants the key server rewraps to it.
    DeviceSecretKey,
    pub_prefix = "irm-device-public-key-v1:",
    sec_prefix = "IRM-DEVICE-SECRET-KEY-V1:",
    what = "device"
);

impl KasPublicKey {
    /// This key's id, as written in key-access entries.
    pub fn key_id(&self) -> KeyId {
        KeyId::of(self.0.as_bytes())
    }
}

impl KasSecretKey {
    /// The id of this key's public half.
    pub fn key_id(&self) -> KeyId {
        self.public_key().key_id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_contains_secret_bytes() {
        let key = ContentKey::from_bytes([0xAB; 32]);
        let kas = KasSecretKey::from_bytes([0xCD; 32]);
        let dev = DeviceSecretKey::from_bytes([0xEF; 32]);
        for (text, byte) in [
            (format!("{key:?}"), 0xABu8),
            (format!("{kas:?}"), 0xCD),
            (format!("{dev:?}"), 0xEF),
        ] {
            assert!(!text.contains(&hex::encode([byte; 4])), "{text}");
            assert!(!text.contains(&format!("{byte}")), "{text}");
            assert!(text.ends_with("(..)"), "{text}");
        }
    }

    #[test]
    fn key_text_forms_round_trip_and_reject_the_wrong_kind() {
        let secret = KasSecretKey::generate().unwrap();
        let text = secret.to_text();
        let again = KasSecretKey::from_text(&format!("# comment\n{}\n", *text)).unwrap();
        assert_eq!(again.expose_secret(), secret.expose_secret());
        let public = secret.public_key();
        assert_eq!(KasPublicKey::from_text(&public.to_text()).unwrap(), public);
        assert!(matches!(
            KasPublicKey::from_text(&text),
            Err(KeyParseError::WrongPrefix { .. })
        ));
        assert!(matches!(
            DevicePublicKey::from_text(&public.to_text()),
            Err(KeyParseError::WrongPrefix { .. })
        ));
        assert!(matches!(
            KasPublicKey::from_text("irm-kas-public-key-v1:AAAA"),
            Err(KeyParseError::Malformed { .. })
        ));
    }

    /// FORMAT.md §11: the secret key file `irm keygen` writes names its
    /// public key in a comment; reading that file as a public key must fail
    /// as the wrong kind of key, not find the commented one.
    #[test]
    fn a_public_key_in_a_comment_is_never_read() {
        let secret = KasSecretKey::generate().unwrap();
        let public = secret.public_key();
        let file = format!(
            "# IRM key server secret key (X25519), written by `irm keygen`.\n\
             # public key: {}\n\
             # key id: {}\n\
             {}\n",
            public.to_text(),
            public.key_id(),
            *secret.to_text()
        );
        assert!(matches!(
            KasPublicKey::from_text(&file),
            Err(KeyParseError::WrongPrefix { .. })
        ));
        let again = KasSecretKey::from_text(&file).unwrap();
        assert_eq!(again.public_key(), public);
    }

    #[test]
    fn ids_parse_back_from_their_display_form() {
        let id = KasSecretKey::generate().unwrap().key_id();
        assert_eq!(id.to_string().parse::<KeyId>().unwrap(), id);
        let file = FileId([7; 16]);
        assert_eq!(file.to_string().parse::<FileId>().unwrap(), file);
        assert!("xyz".parse::<FileId>().is_err());
    }
}
