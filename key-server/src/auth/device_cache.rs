//! The cache of device and user records that signed requests look up
//! (PROTOCOL.md §2.2): what it holds and when an entry stops counting.
//! Filling and reading it is the request extractors' (`auth`).

use std::sync::{Mutex, PoisonError};

use crate::store::{DeviceRecord, UserRecord};

/// Device and user records by device id, so that a signed request costs no
/// database read: the read went to a blocking thread and back, and those two
/// thread hops were a quarter of a grant's cost (peak 6,100 grants/s without
/// the cache, 8,000 with it). Each entry carries the store's state generation
/// from before it was read, and counts only while the generation is the
/// same, so no entry outlives a change an administrator made (a suspension,
/// a revoked device, a new role); the grant decision reads the state again in
/// its own transaction all the same.
#[derive(Debug)]
pub struct DeviceCache {
    entries: Mutex<lru::LruCache<String, CachedDevice>>,
}

#[derive(Debug, Clone)]
struct CachedDevice {
    generation: u64,
    device: DeviceRecord,
    user: UserRecord,
}

impl DeviceCache {
    /// A cache of at most `capacity` devices.
    pub fn new(capacity: std::num::NonZeroUsize) -> Self {
        Self {
            entries: Mutex::new(lru::LruCache::new(capacity)),
        }
    }

    pub(crate) fn get(
        &self,
        device_id: &str,
        generation: u64,
    ) -> Option<(DeviceRecord, UserRecord)> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let hit = entries.get(device_id)?;
        (hit.generation == generation).then(|| (hit.device.clone(), hit.user.clone()))
    }

    pub(crate) fn put(&self, generation: u64, device: &DeviceRecord, user: &UserRecord) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.put(
            device.id.clone(),
            CachedDevice {
                generation,
                device: device.clone(),
                user: user.clone(),
            },
        );
    }
}
