//! One-time enrollment codes (PROTOCOL.md §3.1): 100 random bits written as
//! 20 characters of RFC 4648 base32 in four groups. A code is two halves of
//! two groups each, so that two administrators can each hand over one half
//! and neither holds a working code (§7.2); the store keeps only a hash
//! that needs both: SHA-256 over a label, the hash of the first half and the
//! second half. Checking and counting tries is the store's job (it must be
//! atomic with the enrollment).

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// A one-time enrollment code as the store keeps it: by hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeIssue {
    /// The stored hash of the whole code.
    pub hash: [u8; 32],
    /// The hash of its first half alone: what an approval request keeps, so
    /// that the approval can complete the code with a second half of its own.
    pub first_half_hash: [u8; 32],
    /// Expiry (Unix seconds).
    pub expires_at: u64,
    /// Who issued it, as the enrollment's audit record will say
    /// (`request=ID requested_by=A approved_by=B`, `issued_by=...`).
    pub origin: String,
}

/// How long a code lives.
pub const CODE_LIFETIME_SECS: u64 = 24 * 60 * 60;

/// Characters in each half, once normalised.
const HALF_LEN: usize = 10;

/// Separates the code hash from every other SHA-256 the server computes.
const CODE_HASH_LABEL: &[u8] = b"irm-enrollment-code-v2\0";

/// A fresh whole code to hand to one person (the bootstrap administrator,
/// `recover-code`, the second administrator of a new server), and what the
/// store keeps of it: its hash and its expiry, [`CODE_LIFETIME_SECS`] after
/// `now_secs`.
pub fn issue(
    now_secs: u64,
    origin: impl Into<String>,
) -> Result<(Zeroizing<String>, CodeIssue), getrandom::Error> {
    let first = half()?;
    let second = half()?;
    let first_half_hash = half_hash(&first);
    let stored = CodeIssue {
        hash: hash_of_halves(&first_half_hash, &second),
        first_half_hash,
        expires_at: now_secs + CODE_LIFETIME_SECS,
        origin: origin.into(),
    };
    Ok((Zeroizing::new(format!("{}-{}", *first, *second)), stored))
}

/// Half an enrollment code, as text (`ABCDE-FGHIJ`). A secret: zeroized on
/// drop, never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeHalf(Zeroizing<String>);

impl CodeHalf {
    /// A fresh half.
    pub fn generate() -> Result<Self, getrandom::Error> {
        half().map(Self)
    }

    /// The text, to hand to one person.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for CodeHalf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeHalf(..)")
    }
}

/// The code an approval completes: the requester's first half (by its hash)
/// and the approver's `second`, expiring [`CODE_LIFETIME_SECS`] after `now_secs`.
pub fn complete(
    first_half_hash: &[u8; 32],
    second: &CodeHalf,
    now_secs: u64,
    origin: String,
) -> CodeIssue {
    CodeIssue {
        hash: hash_of_halves(first_half_hash, second.expose()),
        first_half_hash: *first_half_hash,
        expires_at: now_secs + CODE_LIFETIME_SECS,
        origin,
    }
}

/// The first half of a whole code as [`issue`] writes it (its first two groups).
pub fn first_half(code: &str) -> &str {
    code.get(..11).unwrap_or(code)
}

/// A fresh half code such as `ABCDE-FGHIJ` (50 random bits).
fn half() -> Result<Zeroizing<String>, getrandom::Error> {
    let mut bytes = Zeroizing::new([0u8; 7]); // 56 bits, of which 50 are used
    getrandom::fill(bytes.as_mut())?;
    let mut bits: u64 = 0;
    for b in bytes.iter() {
        bits = (bits << 8) | u64::from(*b);
    }
    let mut out = Zeroizing::new(String::with_capacity(11));
    for i in 0..HALF_LEN {
        if i == 5 {
            out.push('-');
        }
        let index = ((bits >> (5 * i)) & 31) as usize;
        out.push(char::from(ALPHABET[index]));
    }
    Ok(out)
}

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// The form that is hashed: upper case, without dashes or spaces, so that a
/// code typed in lower case or without groups still matches.
pub fn normalise(code: &str) -> String {
    code.chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// SHA-256 of a normalised half: what a request keeps of the requester's
/// half until the approval completes the code.
pub fn half_hash(half: &str) -> [u8; 32] {
    Sha256::digest(normalise(half).as_bytes()).into()
}

/// The stored hash of the code made of a first half (by its hash) and a
/// second half.
pub fn hash_of_halves(first_hash: &[u8; 32], second: &str) -> [u8; 32] {
    Sha256::new()
        .chain_update(CODE_HASH_LABEL)
        .chain_update(first_hash)
        .chain_update(normalise(second).as_bytes())
        .finalize()
        .into()
}

/// The stored hash of a code as typed. A code that is not 20 characters
/// once normalised hashes to what no issued code does.
pub fn hash(code: &str) -> [u8; 32] {
    let code = normalise(code);
    if code.len() != 2 * HALF_LEN || !code.is_ascii() {
        return Sha256::new()
            .chain_update(b"irm-enrollment-code-malformed\0")
            .chain_update(code.as_bytes())
            .finalize()
            .into();
    }
    let (first, second) = code.split_at(HALF_LEN);
    hash_of_halves(&half_hash(first), second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_four_groups_of_five_base32_characters() {
        let (code, issued) = issue(0, "test").unwrap();
        assert_eq!(hash(&code), issued.hash);
        assert_eq!(issued.expires_at, CODE_LIFETIME_SECS);
        assert_eq!(issued.first_half_hash, half_hash(first_half(&code)));
        assert_eq!(code.len(), 23);
        let groups: Vec<&str> = code.split('-').collect();
        assert_eq!(groups.len(), 4);
        assert!(
            groups
                .iter()
                .all(|g| g.len() == 5 && g.bytes().all(|b| ALPHABET.contains(&b)))
        );
        assert_ne!(*issue(0, "test").unwrap().0, *code);
    }

    #[test]
    fn a_code_is_its_two_halves_and_neither_alone() {
        let (first, second) = (half().unwrap(), CodeHalf::generate().unwrap());
        let stored = complete(&half_hash(&first), &second, 0, String::new()).hash;
        let second = Zeroizing::new(second.expose().to_owned());
        assert_eq!(
            format!("{:?}", CodeHalf::generate().unwrap()),
            "CodeHalf(..)"
        );
        assert_eq!(hash(&format!("{}-{}", *first, *second)), stored);
        assert_eq!(
            hash(&format!("{} {}", first.to_lowercase(), *second)),
            stored
        );
        assert_ne!(hash(&format!("{}-{}", *second, *first)), stored);
        assert_ne!(hash(&first), stored);
        assert_ne!(hash(&second), stored);
        assert_ne!(hash(&format!("{}-{}", *first, *first)), stored);
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
