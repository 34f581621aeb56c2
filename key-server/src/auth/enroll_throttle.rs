//! The per-address slow-down of enrollment guesses (PROTOCOL.md §3.1).
//!
//! A code is burned by the fifth wrong try for its user, so anyone on the
//! network could burn codes at will, one request after another. An address
//! that has sent [`FREE_FAILURES`] wrong enrollments within
//! [`WINDOW_SECS`] is refused (`429 too_many_attempts`, unchecked, so no
//! code is charged) until that window ends. Guessing a 100-bit code was
//! hopeless already; this bounds how fast one address can burn codes and
//! fill the audit log with failures.
//!
//! The table is in memory (a restart forgets it) and bounded: when it is
//! full, windows that have ended are dropped first, and if none has, the
//! new address is not tracked (its failures still count against the codes
//! it names, as before).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Wrong enrollments an address may send in one window.
pub const FREE_FAILURES: u32 = 30;
/// The window, in seconds, from an address's first failure.
pub const WINDOW_SECS: u64 = 600;
/// Addresses tracked at most (about 40 bytes each).
const MAX_ADDRESSES: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Window {
    started_ms: u64,
    failures: u32,
}

impl Window {
    fn ends_ms(self) -> u64 {
        self.started_ms.saturating_add(WINDOW_SECS * 1000)
    }
}

/// Failed enrollments by source address.
#[derive(Debug, Default)]
pub struct EnrollThrottle {
    windows: Mutex<HashMap<IpAddr, Window>>,
}

impl EnrollThrottle {
    /// How many seconds `addr` must wait before its next enrollment is
    /// checked, or `None` if it may try now.
    pub fn wait_secs(&self, addr: IpAddr, now_ms: u64) -> Option<u64> {
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let window = windows.get(&addr)?;
        (window.failures >= FREE_FAILURES && now_ms < window.ends_ms())
            .then(|| (window.ends_ms() - now_ms).div_ceil(1000))
    }

    /// Counts a wrong enrollment from `addr`; `true` when this one used up
    /// the address's free tries (say so once, not at every refusal after).
    pub fn failed(&self, addr: IpAddr, now_ms: u64) -> bool {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(window) = windows.get_mut(&addr) {
            if now_ms < window.ends_ms() {
                window.failures = window.failures.saturating_add(1);
            } else {
                *window = Window {
                    started_ms: now_ms,
                    failures: 1,
                };
            }
            return window.failures == FREE_FAILURES;
        }
        if windows.len() >= MAX_ADDRESSES {
            windows.retain(|_, window| now_ms < window.ends_ms());
            if windows.len() >= MAX_ADDRESSES {
                return false;
            }
        }
        windows.insert(
            addr,
            Window {
                started_ms: now_ms,
                failures: 1,
            },
        );
        FREE_FAILURES == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn an_address_waits_out_its_window_after_the_free_failures() {
        let throttle = EnrollThrottle::default();
        let t0 = 1_000_000;
        for i in 1..=FREE_FAILURES {
            assert_eq!(throttle.wait_secs(A, t0), None, "failure {i}");
            assert_eq!(throttle.failed(A, t0), i == FREE_FAILURES, "failure {i}");
        }
        assert_eq!(throttle.wait_secs(A, t0), Some(WINDOW_SECS));
        assert_eq!(throttle.wait_secs(A, t0 + 1), Some(WINDOW_SECS));
        assert_eq!(
            throttle.wait_secs(A, t0 + WINDOW_SECS * 1000 - 1000),
            Some(1)
        );
        // Another address is not held back by it.
        assert_eq!(throttle.wait_secs(B, t0), None);
        // After the window, a new one starts with the next failure.
        let later = t0 + WINDOW_SECS * 1000;
        assert_eq!(throttle.wait_secs(A, later), None);
        throttle.failed(A, later);
        assert_eq!(throttle.wait_secs(A, later), None);
    }

    #[test]
    fn a_full_table_drops_ended_windows_first() {
        let throttle = EnrollThrottle::default();
        for n in 0..MAX_ADDRESSES as u32 {
            throttle.failed(IpAddr::V4(n.into()), 0);
        }
        // All windows are live: a new address is not tracked.
        throttle.failed(A, 1);
        assert!(!throttle.windows.lock().unwrap().contains_key(&A));
        // Once they have ended, it is.
        throttle.failed(A, WINDOW_SECS * 1000);
        assert_eq!(throttle.windows.lock().unwrap().len(), 1);
    }
}
