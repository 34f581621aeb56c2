//! One-time enrollment codes (PROTOCOL.md §3.1): 100 random bits written as
//! 20 characters of RFC 4648 base32 in four groups, stored only as the
//! SHA-256 of their normalised form. Checking and counting tries is the
//! store's job (it must be atomic with the enrollment).

use sha2::{Digest, Sha256};

use crate::store::CodeIssue;

/// How long a code lives.
pub const CODE_LIFETIME_SECS: u64 = 24 * 60 * 60;

/// A fresh code to hand out once, and what the store keeps of it: its hash
/// and its expiry, [`CODE_LIFETIME_SECS`] after `now_secs`.
pub fn issue(now_secs: u64) -> Result<(String, CodeIssue), getrandom::Error> {
    let code = generate()?;
    let stored = CodeIssue {
        hash: hash(&code),
        expires_at: now_secs + CODE_LIFETIME_SECS,
    };
    Ok((code, stored))
}

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A fresh code such as `ABCDE-FGHIJ-KLMNO-PQRST`.
pub fn generate() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 13]; // 104 bits, of which 100 are used
    getrandom::fill(&mut bytes)?;
    let mut bits: u128 = 0;
    for b in bytes {
        bits = (bits << 8) | u128::from(b);
    }
    let mut out = String::with_capacity(23);
    for i in 0..20 {
        if i > 0 && i % 5 == 0 {
            out.push('-');
        }
        let index = ((bits >> (5 * i)) & 31) as usize;
        out.push(char::from(ALPHABET[index]));
    }
    Ok(out)
}

/// The form that is hashed: upper case, without dashes or spaces, so that a
/// code typed in lower case or without groups still matches.
pub fn normalise(code: &str) -> String {
    code.chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// SHA-256 of the normalised code.
pub fn hash(code: &str) -> [u8; 32] {
    Sha256::digest(normalise(code).as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_four_groups_of_five_base32_characters() {
        let code = generate().unwrap();
        assert_eq!(code.len(), 23);
        let groups: Vec<&str> = code.split('-').collect();
        assert_eq!(groups.len(), 4);
        assert!(
            groups
                .iter()
                .all(|g| g.len() == 5 && g.bytes().all(|b| ALPHABET.contains(&b)))
        );
        assert_ne!(generate().unwrap(), code);
    }

    #[test]
    fn typing_variations_hash_alike() {
        assert_eq!(
            hash("abcde-fghij-klmno-pqrst"),
            hash("ABCDEFGHIJKLMNOPQRST")
        );
        assert_ne!(hash("ABCDEFGHIJKLMNOPQRST"), hash("ABCDEFGHIJKLMNOPQRSA"));
    }
}
