//! Turns a parsed header into the facts the grant decision reads: the key ids
//! it names and, for each one this server holds, whether the wrapped content
//! key opens under the header hash and matches the key commitment (FORMAT.md
//! §4.2, §4.4). This is the cryptographic half of a grant; the decision
//! itself stays pure and lives in `decision`.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use irm_core::{ContentKey, KasSecretKey, KeyId, SealedHeader};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::grant::decision::GrantFacts;

/// The content keys that opened, by the key that opened them.
pub type OpenedKeys = Vec<(KeyId, ContentKey)>;

/// Content keys this server already unwrapped, by key id and a digest of the
/// whole header as sent.
///
/// Unwrapping is a pure function of the header bytes and the server key (an
/// X25519 exchange, the largest single cost of a grant), and staff open the
/// same export again and again, so its result is kept for repeat grants. Only
/// successes are kept; every grant still runs the whole decision against the
/// current state, so revocation, expiry and retirement are unaffected. Keys
/// are wiped when evicted. The process already holds the server's private
/// keys, from which every one of these can be derived (THREAT-MODEL.md).
///
/// The cache is keyed by every byte the unwrap and the commitment check read,
/// not by the header hash: the hash covers the bound record only (FORMAT.md
/// §4.4), while the wrapped keys and the encrypted metadata follow it. Keyed
/// by the hash, a header whose wrapped key was altered or spliced from
/// another file would be answered from the cache after one good grant,
/// skipping check 6 (`policy_binding_failed`) altogether.
pub struct UnwrapCache {
    entries: Mutex<lru::LruCache<CacheKey, Zeroizing<[u8; 32]>>>,
}

/// A server key id and the SHA-256 of the header's bytes as sent (all of them).
type CacheKey = (KeyId, [u8; 32]);

/// What identifies a header for the cache: SHA-256 over its bytes as sent
/// (bound record, wrapped keys and metadata). The API hashes the bytes it
/// parsed; `to_bytes()` of the parsed header gives the same bytes.
pub fn header_digest(header_bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(header_bytes).into()
}

impl UnwrapCache {
    /// A cache of at most `capacity` content keys.
    pub fn new(capacity: NonZeroUsize) -> Self {
        Self {
            entries: Mutex::new(lru::LruCache::new(capacity)),
        }
    }

    fn get(&self, key_id: KeyId, digest: &[u8; 32]) -> Option<ContentKey> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(&(key_id, *digest))
            .map(|key| ContentKey::from_bytes(**key))
    }

    fn put(&self, key_id: KeyId, digest: &[u8; 32], key: &ContentKey) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.put((key_id, *digest), Zeroizing::new(*key.expose_secret()));
    }
}

impl std::fmt::Debug for UnwrapCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnwrapCache(..)")
    }
}

/// Opens the header's wraps with every held key it names, through `cache`
/// when one is given with the header's [`header_digest`].
pub fn open_wraps(
    header: &SealedHeader,
    held: impl Fn(&KeyId) -> Option<Arc<KasSecretKey>>,
    cache: Option<(&UnwrapCache, &[u8; 32])>,
) -> (Vec<(KeyId, bool)>, OpenedKeys) {
    let mut bindings = Vec::new();
    let mut opened = Vec::new();
    let (cache, digest) = cache.unzip();
    for entry in header.key_access() {
        let Some(kas) = held(&entry.key_id) else {
            continue;
        };
        let cached = cache.zip(digest).and_then(|(c, d)| c.get(entry.key_id, d));
        let key = cached.or_else(|| {
            // One answer whatever failed (FORMAT.md §8.3): the wrap, or the commitment.
            let key = kas
                .unwrap(header)
                .ok()
                .and_then(|key| header.clone().verify(key).ok())
                .map(|verified| ContentKey::from_bytes(*verified.content_key().expose_secret()));
            if let (Some(cache), Some(digest), Some(key)) = (cache, digest, &key) {
                cache.put(entry.key_id, digest, key);
            }
            key
        });
        bindings.push((entry.key_id, key.is_some()));
        if let Some(key) = key {
            opened.push((entry.key_id, key));
        }
    }
    (bindings, opened)
}

/// The decision's facts for `user` asking for the file with `header`.
pub fn grant_facts(
    user: &str,
    header: &SealedHeader,
    held: impl Fn(&KeyId) -> Option<Arc<KasSecretKey>>,
    cache: Option<(&UnwrapCache, &[u8; 32])>,
) -> (GrantFacts, OpenedKeys) {
    let (bindings, opened) = open_wraps(header, held, cache);
    let facts = GrantFacts {
        user: user.to_owned(),
        file_id: header.file_id(),
        policy: header.policy().clone(),
        header_keys: header.key_access().iter().map(|k| k.key_id).collect(),
        bindings,
    };
    (facts, opened)
}

#[cfg(test)]
mod tests {
    use super::*;
    use irm_core::{EnvelopeBuilder, Policy, PolicyGrant, Recipient, Rights};

    fn sealed(kas: &KasSecretKey) -> SealedHeader {
        let policy = Policy::builder()
            .grant(PolicyGrant {
                recipients: [Recipient::parse("alice").expect("valid")].into(),
                rights: Rights::VIEW,
            })
            .max_lease_secs(600)
            .build()
            .expect("valid policy");
        let verified = EnvelopeBuilder::new(policy)
            .key_server("https://kas.test", kas.public_key())
            .build()
            .expect("header");
        SealedHeader::parse(&verified.header().to_bytes())
            .expect("parses")
            .0
    }

    #[test]
    fn cache_returns_the_unwrapped_key_for_the_same_header_only() {
        let kas = Arc::new(KasSecretKey::generate().expect("rng"));
        let cache = UnwrapCache::new(NonZeroUsize::new(2).expect("non-zero"));
        let header = sealed(&kas);
        let held = |_: &KeyId| Some(kas.clone());
        let (first, keys) = open_wraps(
            &header,
            held,
            Some((&cache, &header_digest(&header.to_bytes()))),
        );
        assert_eq!(first, vec![(kas.key_id(), true)]);
        assert!(
            cache
                .get(kas.key_id(), &header_digest(&header.to_bytes()))
                .is_some(),
            "a success is kept"
        );
        let (again, keys_again) = open_wraps(
            &header,
            held,
            Some((&cache, &header_digest(&header.to_bytes()))),
        );
        assert_eq!(again, first);
        assert_eq!(keys[0].1.expose_secret(), keys_again[0].1.expose_secret());
        // A header with another hash (here another file) is not answered from the cache.
        let other = sealed(&kas);
        assert!(
            cache
                .get(kas.key_id(), &header_digest(&other.to_bytes()))
                .is_none()
        );
        // An altered header (a byte of the last field of the hashed part:
        // the ephemeral key) fails to open and is not kept.
        let mut bytes = header.to_bytes();
        bytes[header.bound_end() - 1] ^= 1;
        let (altered, _) = SealedHeader::parse(&bytes).expect("still parses");
        assert_ne!(altered.hash(), header.hash());
        let (bindings, opened) = open_wraps(
            &altered,
            held,
            Some((&cache, &header_digest(&altered.to_bytes()))),
        );
        assert_eq!(bindings, vec![(kas.key_id(), false)]);
        assert!(opened.is_empty());
        assert!(
            cache
                .get(kas.key_id(), &header_digest(&altered.to_bytes()))
                .is_none()
        );
    }

    #[test]
    fn after_a_good_grant_every_byte_outside_the_hash_still_decides_the_binding() {
        let kas = Arc::new(KasSecretKey::generate().expect("rng"));
        let cache = UnwrapCache::new(NonZeroUsize::new(8).expect("non-zero"));
        let held = |_: &KeyId| Some(kas.clone());
        let header = sealed(&kas);
        let (first, _) = open_wraps(
            &header,
            held,
            Some((&cache, &header_digest(&header.to_bytes()))),
        );
        assert_eq!(first, vec![(kas.key_id(), true)], "the good header opens");
        let bytes = header.to_bytes();
        // The wrapped key (48 bytes after the bound record), the metadata
        // length and the encrypted metadata: none of it is in the header hash.
        let mut checked = 0;
        for at in header.bound_end()..bytes.len() {
            let mut altered = bytes.clone();
            altered[at] ^= 0x01;
            let Ok((altered, used)) = SealedHeader::parse(&altered) else {
                continue; // a changed length that no longer parses never reaches the cache
            };
            if used != bytes.len() {
                continue; // the server refuses trailing or missing bytes before this
            }
            assert_eq!(
                altered.hash(),
                header.hash(),
                "byte {at} is outside the hash"
            );
            let (bindings, opened) = open_wraps(
                &altered,
                held,
                Some((&cache, &header_digest(&altered.to_bytes()))),
            );
            assert_eq!(
                bindings,
                vec![(kas.key_id(), false)],
                "byte {at} flipped must fail the binding, cache or not"
            );
            assert!(opened.is_empty(), "byte {at}: no key for an altered header");
            checked += 1;
        }
        assert!(
            checked >= 48,
            "the wrapped key was covered ({checked} bytes)"
        );
        // The good header is still answered (from the cache).
        let (again, _) = open_wraps(
            &header,
            held,
            Some((&cache, &header_digest(&header.to_bytes()))),
        );
        assert_eq!(again, first);
    }
}
