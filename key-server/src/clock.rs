//! Server time behind a trait, so that every decision takes "now" from one
//! place and tests can move time (validity windows, lease ends, code expiry,
//! the replay window) without sleeping. Which instant a check uses is the
//! caller's business; this module only tells the time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of wall-clock time (Unix time).
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;

    /// Whole seconds since the Unix epoch.
    fn now_secs(&self) -> u64 {
        self.now_ms() / 1000
    }
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        // A clock before 1970 is a broken machine; treat it as the epoch
        // rather than panicking on a request path.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to (tests, simulations).
#[derive(Debug, Default)]
pub struct ManualClock {
    now_ms: AtomicU64,
}

impl ManualClock {
    /// A clock showing `secs` seconds after the epoch.
    pub fn at_secs(secs: u64) -> Self {
        Self {
            now_ms: AtomicU64::new(secs.saturating_mul(1000)),
        }
    }

    /// Sets the time to `secs` seconds after the epoch.
    pub fn set_secs(&self, secs: u64) {
        self.now_ms
            .store(secs.saturating_mul(1000), Ordering::SeqCst);
    }

    /// Moves the clock forward by `secs` seconds.
    pub fn advance_secs(&self, secs: u64) {
        self.now_ms
            .fetch_add(secs.saturating_mul(1000), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::at_secs(100);
        assert_eq!(clock.now_secs(), 100);
        clock.advance_secs(5);
        assert_eq!(clock.now_ms(), 105_000);
        clock.set_secs(7);
        assert_eq!(clock.now_secs(), 7);
    }
}
