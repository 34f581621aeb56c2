//! The replay cache (PROTOCOL.md §2.2 step 3): which `(device, nonce)` pairs
//! signed requests already used, for at least [`NONCE_MEMORY_SECS`].
//!
//! It sits on every request's path, so it is built for a steady request
//! rate: keys are 32 bytes with no allocation, and the pairs are spread over
//! [`SHARDS`] independently locked sets. One set of every pair seen in ten
//! minutes, growing by doubling, stopped every request for 12 ms each time it
//! rehashed (at 57,000 entries, under 5,600 grants a second) and longer as
//! it grew; a shard rehashes a sixty-fourth of that, and requests for other
//! shards go on meanwhile. Memory is bounded by the request rate over twice
//! the period (about 64 bytes a request).

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// PROTOCOL.md §2.2 step 3: how long a nonce is remembered (at least).
pub const NONCE_MEMORY_SECS: u64 = 600;

/// Independently locked parts of the cache.
const SHARDS: usize = 64;

/// A device (its 16-byte id) and a nonce.
type NonceKey = [u8; 32];

/// Remembers `(device, nonce)` pairs for at least [`NONCE_MEMORY_SECS`].
#[derive(Debug)]
pub struct NonceCache {
    shards: Box<[Mutex<Generations>]>,
    /// Picks a pair's shard. Keyed at random, so that nobody can aim many
    /// pairs at one shard.
    spread: RandomState,
}

impl Default for NonceCache {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(Generations::default()))
                .collect(),
            spread: RandomState::new(),
        }
    }
}

/// A pair lives in the current generation until it rotates, then in the
/// previous one for a whole further period.
#[derive(Debug, Default)]
struct Generations {
    current: HashSet<NonceKey>,
    previous: HashSet<NonceKey>,
    rotated_at: u64,
}

impl Generations {
    fn rotate(&mut self, now: u64) {
        if now >= self.rotated_at.saturating_add(2 * NONCE_MEMORY_SECS) {
            self.current.clear();
            self.previous.clear();
            self.rotated_at = now;
        } else if now >= self.rotated_at.saturating_add(NONCE_MEMORY_SECS) {
            self.previous = std::mem::take(&mut self.current);
            self.rotated_at = now;
        }
    }

    fn contains(&self, key: &NonceKey) -> bool {
        self.current.contains(key) || self.previous.contains(key)
    }
}

/// The pair as a fixed-size key. Device ids are 32 hex digits (the server
/// makes them); anything else (only a forged header can carry it) is hashed
/// to the same size rather than trusted.
fn nonce_key(device: &str, nonce: &[u8; 16]) -> NonceKey {
    let mut key = [0u8; 32];
    if hex::decode_to_slice(device, &mut key[..16]).is_err() {
        let digest = Sha256::digest(device.as_bytes());
        key[..16].copy_from_slice(&digest[..16]);
    }
    key[16..].copy_from_slice(nonce);
    key
}

impl NonceCache {
    fn shard(&self, key: &NonceKey) -> std::sync::MutexGuard<'_, Generations> {
        let index = (self.spread.hash_one(key) % SHARDS as u64) as usize;
        self.shards[index]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the pair was seen (read only).
    pub fn seen(&self, device: &str, nonce: &[u8; 16], now: u64) -> bool {
        let key = nonce_key(device, nonce);
        let mut shard = self.shard(&key);
        shard.rotate(now);
        shard.contains(&key)
    }

    /// Records the pair; false if it was already there (a concurrent replay).
    pub fn remember(&self, device: &str, nonce: &[u8; 16], now: u64) -> bool {
        let key = nonce_key(device, nonce);
        let mut shard = self.shard(&key);
        shard.rotate(now);
        if shard.contains(&key) {
            return false;
        }
        shard.current.insert(key)
    }

    /// Pairs held, across shards and generations.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                s.current.len() + s.previous.len()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEVICE: &str = "00112233445566778899aabbccddeeff";
    const OTHER: &str = "ffeeddccbbaa99887766554433221100";

    #[test]
    fn a_pair_is_refused_for_at_least_the_memory_period_then_forgotten() {
        let cache = NonceCache::default();
        let t0 = 1_000_000;
        assert!(!cache.seen(DEVICE, &[1; 16], t0));
        assert!(cache.remember(DEVICE, &[1; 16], t0));
        assert!(cache.seen(DEVICE, &[1; 16], t0));
        assert!(
            !cache.remember(DEVICE, &[1; 16], t0 + 1),
            "a concurrent replay"
        );
        // The same nonce from another device, or another nonce, is new.
        assert!(!cache.seen(OTHER, &[1; 16], t0));
        assert!(!cache.seen(DEVICE, &[2; 16], t0));
        // Remembered across one rotation, whichever shard it is in...
        for later in [
            t0 + NONCE_MEMORY_SECS - 1,
            t0 + NONCE_MEMORY_SECS,
            t0 + 2 * NONCE_MEMORY_SECS - 1,
        ] {
            assert!(cache.seen(DEVICE, &[1; 16], later), "at {later}");
        }
        // ...and gone once a whole further period has passed.
        assert!(!cache.seen(DEVICE, &[1; 16], t0 + 3 * NONCE_MEMORY_SECS));
    }

    #[test]
    fn many_pairs_spread_over_shards_and_all_are_remembered() {
        let cache = NonceCache::default();
        let now = 5_000;
        for i in 0u32..10_000 {
            let mut nonce = [0u8; 16];
            nonce[..4].copy_from_slice(&i.to_be_bytes());
            assert!(cache.remember(DEVICE, &nonce, now));
        }
        assert_eq!(cache.len(), 10_000);
        let used = cache
            .shards
            .iter()
            .filter(|s| !s.lock().unwrap().current.is_empty())
            .count();
        assert_eq!(used, SHARDS, "every shard takes a share");
        for i in 0u32..10_000 {
            let mut nonce = [0u8; 16];
            nonce[..4].copy_from_slice(&i.to_be_bytes());
            assert!(cache.seen(DEVICE, &nonce, now + 1));
        }
    }

    #[test]
    fn a_device_name_that_is_not_hex_is_keyed_by_its_hash() {
        let cache = NonceCache::default();
        assert!(cache.remember("not a device id", &[7; 16], 10));
        assert!(cache.seen("not a device id", &[7; 16], 10));
        assert!(!cache.seen("not a device id!", &[7; 16], 10));
        assert!(!cache.seen(DEVICE, &[7; 16], 10));
    }
}
