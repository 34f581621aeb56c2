//! Turns a parsed header into the facts the grant decision reads: the key ids
//! it names and, for each one this server holds, whether the wrapped content
//! key opens under the header hash and matches the key commitment (FORMAT.md
//! §4.2, §4.4). This is the cryptographic half of a grant; the decision
//! itself stays pure and lives in `decision`.

use std::sync::Arc;

use irm_core::{ContentKey, KasSecretKey, KeyId, SealedHeader};

use crate::decision::GrantFacts;

/// The content keys that opened, by the key that opened them.
pub type OpenedKeys = Vec<(KeyId, ContentKey)>;

/// Opens the header's wraps with every held key it names.
pub fn open_wraps(
    header: &SealedHeader,
    held: impl Fn(&KeyId) -> Option<Arc<KasSecretKey>>,
) -> (Vec<(KeyId, bool)>, OpenedKeys) {
    let mut bindings = Vec::new();
    let mut opened = Vec::new();
    for entry in header.key_access() {
        let Some(kas) = held(&entry.key_id) else {
            continue;
        };
        // One answer whatever failed (FORMAT.md §8.3): the wrap, or the commitment.
        let key = kas
            .unwrap(header)
            .ok()
            .and_then(|key| header.clone().verify(key).ok())
            .map(|verified| ContentKey::from_bytes(*verified.content_key().expose_secret()));
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
) -> (GrantFacts, OpenedKeys) {
    let (bindings, opened) = open_wraps(header, held);
    let facts = GrantFacts {
        user: user.to_owned(),
        file_id: header.file_id(),
        policy: header.policy().clone(),
        header_keys: header.key_access().iter().map(|k| k.key_id).collect(),
        bindings,
    };
    (facts, opened)
}
