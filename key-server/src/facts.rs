//! Turns a parsed header into the facts the grant decision reads: the key ids
//! it names and, for each one this server holds, whether the wrapped content
//! key opens under the header hash and matches the key commitment (FORMAT.md
//! §4.2, §4.4). This is the cryptographic half of a grant; the decision
//! itself stays pure and lives in `decision`.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use irm_core::{ContentKey, KasSecretKey, KeyId, SealedHeader};
use zeroize::Zeroizing;

use crate::decision::GrantFacts;

/// The content keys that opened, by the key that opened them.
pub type OpenedKeys = Vec<(KeyId, ContentKey)>;

/// Content keys this server already unwrapped, by key id and header hash.
///
/// Unwrapping is a pure function of the header bytes and the server key (an
/// X25519 exchange, the largest single cost of a grant), and staff open the
/// same export again and again, so its result is kept for repeat grants. Only
/// successes are kept; every grant still runs the whole decision against the
/// current state, so revocation, expiry and retirement are unaffected. Keys
/// are wiped when evicted. The process already holds the server's private
/// keys, from which every one of these can be derived (THREAT-MODEL.md).
pub struct UnwrapCache {
    entries: Mutex<lru::LruCache<CacheKey, Zeroizing<[u8; 32]>>>,
}

/// A server key id and a header hash.
type CacheKey = (KeyId, [u8; 32]);

impl UnwrapCache {
    /// A cache of at most `capacity` content keys.
    pub fn new(capacity: NonZeroUsize) -> Self {
        Self {
            entries: Mutex::new(lru::LruCache::new(capacity)),
        }
    }

    fn get(&self, key_id: KeyId, header: &SealedHeader) -> Option<ContentKey> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(&(key_id, header.hash().0))
            .map(|key| ContentKey::from_bytes(**key))
    }

    fn put(&self, key_id: KeyId, header: &SealedHeader, key: &ContentKey) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.put(
            (key_id, header.hash().0),
            Zeroizing::new(*key.expose_secret()),
        );
    }
}

impl std::fmt::Debug for UnwrapCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnwrapCache(..)")
    }
}

/// Opens the header's wraps with every held key it names, through `cache`
/// when one is given.
pub fn open_wraps(
    header: &SealedHeader,
    held: impl Fn(&KeyId) -> Option<Arc<KasSecretKey>>,
    cache: Option<&UnwrapCache>,
) -> (Vec<(KeyId, bool)>, OpenedKeys) {
    let mut bindings = Vec::new();
    let mut opened = Vec::new();
    for entry in header.key_access() {
        let Some(kas) = held(&entry.key_id) else {
            continue;
        };
        let cached = cache.and_then(|c| c.get(entry.key_id, header));
        let key = cached.or_else(|| {
            // One answer whatever failed (FORMAT.md §8.3): the wrap, or the commitment.
            let key = kas
                .unwrap(header)
                .ok()
                .and_then(|key| header.clone().verify(key).ok())
                .map(|verified| ContentKey::from_bytes(*verified.content_key().expose_secret()));
            if let (Some(cache), Some(key)) = (cache, &key) {
                cache.put(entry.key_id, header, key);
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
    cache: Option<&UnwrapCache>,
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
        let policy = Policy::new(
            vec![PolicyGrant {
                recipients: [Recipient::parse("alice").expect("valid")].into(),
                rights: Rights::VIEW,
            }],
            None,
            None,
            600,
            true,
            None,
        )
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
        let (first, keys) = open_wraps(&header, held, Some(&cache));
        assert_eq!(first, vec![(kas.key_id(), true)]);
        assert!(
            cache.get(kas.key_id(), &header).is_some(),
            "a success is kept"
        );
        let (again, keys_again) = open_wraps(&header, held, Some(&cache));
        assert_eq!(again, first);
        assert_eq!(keys[0].1.expose_secret(), keys_again[0].1.expose_secret());
        // A header with another hash (here another file) is not answered from the cache.
        let other = sealed(&kas);
        assert!(cache.get(kas.key_id(), &other).is_none());
        // An altered header (a byte of the last field of the hashed part:
        // the ephemeral key) fails to open and is not kept.
        let mut bytes = header.to_bytes();
        bytes[header.bound_end() - 1] ^= 1;
        let (altered, _) = SealedHeader::parse(&bytes).expect("still parses");
        assert_ne!(altered.hash(), header.hash());
        let (bindings, opened) = open_wraps(&altered, held, Some(&cache));
        assert_eq!(bindings, vec![(kas.key_id(), false)]);
        assert!(opened.is_empty());
        assert!(cache.get(kas.key_id(), &altered).is_none());
    }
}
