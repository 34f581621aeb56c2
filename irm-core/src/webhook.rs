//! The signature on a webhook body (PROTOCOL.md §12.1, §7.7):
//! `X-IRM-Signature: t=T,v1=HEX(HMAC-SHA256(key, "{t}.{body}"))` over the
//! exact body bytes. The key server signs its alert deliveries with it and
//! `irm admin audit digest` its digests, so a receiver checks both with the
//! same few lines. Where the key comes from (a 0600 file) and when a
//! delivery is retried are the senders' business.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The header carrying `t=UNIX_SECONDS,v1=HEX`.
pub const SIGNATURE_HEADER: &str = "X-IRM-Signature";

fn mac(key: &[u8], t: u64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// `t=T,v1=HEX(HMAC-SHA256(key, "{t}.{body}"))`.
pub fn sign(key: &[u8], t: u64, body: &[u8]) -> String {
    let tag = mac(key, t, body).finalize().into_bytes();
    format!("t={t},v1={}", hex::encode(tag))
}

/// What a receiver does: the header parses, `t` is within `max_age_secs`
/// of `now` (either way), and the tag matches, compared in constant time.
pub fn verify(key: &[u8], header: &str, body: &[u8], now: u64, max_age_secs: u64) -> bool {
    let mut t = None;
    let mut tag = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<u64>().ok(),
            Some(("v1", v)) => tag = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(tag)) = (t, tag) else {
        return false;
    };
    now.abs_diff(t) <= max_age_secs && mac(key, t, body).verify_slice(&tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_body_its_key_and_a_recent_time() {
        let key = b"0123456789abcdef0123";
        let header = sign(key, 1000, b"{}");
        assert!(verify(key, &header, b"{}", 1100, 300));
        assert!(!verify(key, &header, b"{ }", 1100, 300));
        assert!(!verify(b"another key of 20 b", &header, b"{}", 1100, 300));
        assert!(!verify(key, &header, b"{}", 2000, 300));
        assert!(!verify(key, "t=1000", b"{}", 1000, 300));
    }
}
