//! Formatting for people: times as RFC 3339 UTC, durations, byte counts, and
//! untrusted header strings made safe to print on a terminal.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The first second that RFC 3339 (four-digit years) cannot express.
const YEAR_10000_UNIX: u64 = 253_402_300_800;

/// `2027-01-31T00:00:00Z`, or `None` past the year 9999 (a header may say
/// anything; humantime cannot print those).
pub(crate) fn rfc3339(unix: u64) -> Option<String> {
    (unix < YEAR_10000_UNIX).then(|| {
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix)).to_string()
    })
}

/// [`rfc3339`] with a readable fallback.
pub(crate) fn time(unix: u64) -> String {
    rfc3339(unix).unwrap_or_else(|| format!("{unix} (Unix seconds, after the year 9999)"))
}

/// The current time in Unix seconds.
pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `10m`, `1h 30m`; `0s` for zero.
pub(crate) fn duration(secs: u32) -> String {
    if secs == 0 {
        "0s".to_owned()
    } else {
        humantime::format_duration(Duration::from_secs(u64::from(secs))).to_string()
    }
}

/// `65536 bytes (64 KiB)`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in UNITS {
        if n >= size {
            let value = n as f64 / size as f64;
            return if n % size == 0 {
                format!("{n} bytes ({} {unit})", n / size)
            } else {
                format!("{n} bytes ({value:.1} {unit})")
            };
        }
    }
    format!("{n} bytes")
}

/// A string from a header, with control characters escaped so that a
/// crafted file cannot move the cursor or recolour the terminal.
pub(crate) fn printable(s: &str) -> Cow<'_, str> {
    if s.chars().any(char::is_control) {
        Cow::Owned(
            s.chars()
                .map(|c| {
                    if c.is_control() {
                        c.escape_default().to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect(),
        )
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_past_year_9999_do_not_panic() {
        assert_eq!(rfc3339(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(rfc3339(u64::MAX), None);
        assert!(time(u64::MAX).contains("after the year 9999"));
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("alice"), "alice");
        assert_eq!(printable("a\x1b[31mb"), "a\\u{1b}[31mb");
    }

    #[test]
    fn byte_counts_name_their_unit() {
        assert_eq!(bytes(65536), "65536 bytes (64 KiB)");
        assert_eq!(bytes(100), "100 bytes");
        assert_eq!(bytes(1536), "1536 bytes (1.5 KiB)");
    }
}
