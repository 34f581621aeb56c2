//! Tracing a leak back to where it left (PROTOCOL.md §7.8): the watermark
//! id a grant carries on screen and paper, the canary rows an approved
//! export of a customer list carries, how many canaries an export needs
//! for its stated detection probability, how contact values are compared,
//! and the wire types of `POST /v1/exports` and the trace lookups. Pure:
//! the server issues and records, the client inserts and extracts, both
//! through these functions, so that they agree on every byte compared.

use serde::{Deserialize, Serialize};

/// Rows of a leaked cut the canary count is chosen for.
pub const CANARY_CUT_ROWS: u64 = 1000;

/// The most a random cut of [`CANARY_CUT_ROWS`] rows may miss every canary
/// with: the stated detection probability is `1 − this`, 99.9%. Issue #14
/// asks for at least 99%; at exactly 99% (0.46% of rows) a check of 100
/// cuts misses two or more in about one run of four, so the count is
/// chosen for ten times fewer misses (0.69% of rows; PROTOCOL.md §7.8).
pub const CANARY_MISS_PROBABILITY: f64 = 0.001;

/// The most canaries one export carries. Up to about 1.45 million rows the
/// count the formula asks for is below it; a larger export is detected
/// with a lower probability (PROTOCOL.md §7.8 says how much).
pub const MAX_CANARIES: u32 = 10_000;

/// The most rows an export may declare (beyond it the request is `400`).
pub const MAX_EXPORT_ROWS: u64 = 1 << 40;

/// The most values one trace request may carry (beyond it `400`); the
/// client sends a larger leak in several requests.
pub const MAX_TRACE_VALUES: usize = 10_000;

/// The longest value a trace request may carry (an e-mail address, RFC 5321).
pub const MAX_TRACE_VALUE_LEN: usize = 254;

/// Crockford's base 32: no I, L, O or U, so that a value read off a photo
/// is not misread (PROTOCOL.md §7.8).
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Bits of a watermark id: the first 60 bits of the grant id, which the
/// server draws from the operating system's random number generator.
pub const WATERMARK_BITS: u32 = 60;

/// The watermark id of a grant: its id's first 60 bits in Crockford base 32,
/// in three groups of four (`W7K2-9QXM-4HTD`). `None` for an id that is not
/// at least 15 hex digits.
pub fn watermark_id(grant_id: &str) -> Option<String> {
    let prefix = grant_id.get(..15)?;
    let bits = u64::from_str_radix(prefix, 16).ok()?;
    let mut out = String::with_capacity(14);
    for i in 0..12 {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        let shift = 55 - 5 * i;
        out.push(char::from(CROCKFORD[((bits >> shift) & 31) as usize]));
    }
    Some(out)
}

/// The first 15 hex digits (lowercase) of the grant ids a watermark id, as a
/// person typed it, names: case, hyphens and spaces do not matter, `O` reads
/// as `0` and `I` or `L` as `1` (Crockford). `None` unless it is 12 symbols.
pub fn grant_prefix_of_watermark(text: &str) -> Option<String> {
    let mut bits: u64 = 0;
    let mut symbols = 0;
    for c in text.chars() {
        let value = match c.to_ascii_uppercase() {
            '-' | ' ' => continue,
            'O' => 0,
            'I' | 'L' => 1,
            c => CROCKFORD.iter().position(|&s| char::from(s) == c)? as u64,
        };
        symbols += 1;
        if symbols > 12 {
            return None;
        }
        bits = (bits << 5) | value;
    }
    (symbols == 12).then(|| format!("{bits:015x}"))
}

/// How many canaries an export of `rows` rows carries: the smallest `k`
/// for which a random cut of [`CANARY_CUT_ROWS`] of the `rows + k` rows
/// written misses every canary with probability at most
/// [`CANARY_MISS_PROBABILITY`], at most [`MAX_CANARIES`]; none for an
/// empty list. With `N = rows` and `n` the cut (hypergeometric):
///
/// `P(miss | k) = C(N, n) / C(N + k, n) = Π_{j=1..k} (N + j − n) / (N + j)`
///
/// (each factor is 0 once `N + j ≤ n`: a cut that takes every row finds them).
pub fn canary_count(rows: u64) -> u32 {
    if rows == 0 {
        return 0;
    }
    let (n, big_n) = (CANARY_CUT_ROWS as f64, rows as f64);
    let mut miss = 1.0;
    for k in 1..=MAX_CANARIES {
        let total = big_n + f64::from(k);
        miss *= ((total - n) / total).max(0.0);
        if miss <= CANARY_MISS_PROBABILITY {
            return k;
        }
    }
    MAX_CANARIES
}

/// The probability that a random cut of `cut` rows of an export of `rows`
/// rows and `k` canaries holds none (the formula of [`canary_count`]).
pub fn canary_miss_probability(rows: u64, k: u32, cut: u64) -> f64 {
    let (n, big_n) = (cut as f64, rows as f64);
    (1..=k).fold(1.0, |miss, j| {
        let total = big_n + f64::from(j);
        miss * ((total - n) / total).max(0.0)
    })
}

/// The form in which a contact value is recorded and compared: an e-mail
/// address (it holds `@`) trimmed and lowercased; a phone number as its
/// digits only, full-width digits read as digits and a leading `+81` (or
/// `81` with 11 or 12 digits) as the domestic `0`. `None` for anything
/// else (a phone number needs 10 or 11 digits starting with 0).
pub fn contact_key(value: &str) -> Option<String> {
    let value = value.trim();
    if value.contains('@') || value.contains('＠') {
        let folded: String = value.chars().map(fold_width).collect();
        let (local, domain) = folded.rsplit_once('@')?;
        if local.is_empty() || !domain.contains('.') || folded.len() > MAX_TRACE_VALUE_LEN {
            return None;
        }
        return Some(folded.to_lowercase());
    }
    let international = value.trim_start().starts_with('+') || value.starts_with('＋');
    let mut digits: String = value
        .chars()
        .map(fold_width)
        .filter(char::is_ascii_digit)
        .collect();
    if (international || digits.len() >= 12) && digits.starts_with("81") {
        digits = format!("0{}", &digits[2..]);
    }
    (digits.starts_with('0') && (10..=11).contains(&digits.len())).then_some(digits)
}

/// A full-width ASCII form (`０`, `＠`, `Ａ`) as its ASCII character.
pub fn fold_width(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFF01 + 0x21).unwrap_or(c),
        _ => c,
    }
}

/// `POST /v1/exports`: an export report (PROTOCOL.md §5) that also asks for
/// the canaries of a customer list the client is about to write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExportReport {
    /// The grant the export is taken under (hex).
    pub grant_id: String,
    /// Data rows in the list (the header row not counted).
    pub rows: u64,
    /// Optional detail, as for a usage event; at most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The answer to [`ExportReport`]: the export is recorded (and an approved
/// take-out spent); `canaries` are the rows to write among the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExportReceipt {
    /// The export's id (32 hex digits), absent when it carries no canaries
    /// (the server issues them only for an export under an approved take-out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_id: Option<String>,
    /// The canary identities, [`canary_count`] of them.
    #[serde(default)]
    pub canaries: Vec<Canary>,
}

/// One invented customer. Never a real person; the contact values are unique
/// to its export (from the operator's monitored pools, or values that reach
/// no one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Canary {
    /// Full name, family name first (`佐藤 美咲`).
    pub name: String,
    /// The name in katakana (`サトウ ミサキ`).
    pub kana: String,
    /// A phone number (`03-0123-4567`).
    pub phone: String,
    /// An e-mail address.
    pub email: String,
    /// A postal code (`123-4567`).
    pub postal_code: String,
    /// An address (`東京都世田谷区桜丘2-14-7`).
    pub address: String,
}

/// `POST /v1/admin/trace`: contact values found in a leaked list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TraceRequest {
    /// Phone numbers and e-mail addresses, at most [`MAX_TRACE_VALUES`],
    /// each at most [`MAX_TRACE_VALUE_LEN`] bytes; compared by [`contact_key`].
    pub values: Vec<String>,
}

/// What a trace found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TraceAnswer {
    /// How many distinct values were compared.
    pub checked: u32,
    /// The exports whose canaries were among them, most matches first.
    pub exports: Vec<TracedExport>,
}

/// An export named by its canaries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TracedExport {
    /// The export's id.
    pub export_id: String,
    /// The grant it was taken under, and that grant's watermark id.
    pub grant_id: String,
    /// The watermark id of that grant.
    pub watermark_id: String,
    /// The file.
    pub file_id: String,
    /// Who exported.
    pub user: String,
    /// From which device.
    pub device_id: String,
    /// The device's name, if the device is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    /// The approval request the export spent, if found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Who approved that request.
    pub approvers: Vec<String>,
    /// When (Unix seconds).
    pub exported_at: u64,
    /// Data rows declared, canaries not counted.
    pub rows: u64,
    /// Canaries the export carried.
    pub canaries: u32,
    /// How many of them the leak holds.
    pub matched: u32,
}

/// `GET /v1/admin/trace/watermark/{id}`: the grants a watermark id names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WatermarkTrace {
    /// The id as the server reads it (canonical form).
    pub watermark_id: String,
    /// The grants it names: one, or none (a collision of 60 random bits is
    /// possible in principle, so a list).
    pub grants: Vec<TracedGrant>,
}

/// A grant named by its watermark id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TracedGrant {
    /// The grant.
    pub grant_id: String,
    /// The file.
    pub file_id: String,
    /// Whose.
    pub user: String,
    /// On which device.
    pub device_id: String,
    /// The device's name, if the device is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    /// When it was issued (Unix seconds).
    pub issued_at: u64,
    /// When its lease ended.
    pub lease_expires_at: u64,
    /// A renewal rather than a first grant.
    pub renew: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watermark_id_reads_back_to_its_grant_prefix() {
        let grant = "f3a9c01b22e47d5a9e0c4b1d2e3f4a5b";
        let id = watermark_id(grant).unwrap();
        assert_eq!(id.len(), 14);
        assert_eq!(id.matches('-').count(), 2);
        assert!(!id.contains(['I', 'L', 'O', 'U']));
        assert_eq!(grant_prefix_of_watermark(&id).unwrap(), &grant[..15]);
        // As a person reads it off a photo: lower case, O for 0, no hyphens.
        let typed = id.to_lowercase().replace('-', " ").replace('0', "o");
        assert_eq!(grant_prefix_of_watermark(&typed).unwrap(), &grant[..15]);
        assert_eq!(grant_prefix_of_watermark("W7K2-9QXM-4HT"), None);
        assert_eq!(grant_prefix_of_watermark("W7K2-9QXM-4HTDD"), None);
        assert_eq!(grant_prefix_of_watermark("W7K2-9QXM-4HTU"), None);
        assert_eq!(watermark_id("abc"), None);
    }

    #[test]
    fn the_canary_count_meets_the_stated_probability_and_no_fewer_would() {
        for rows in [1, 10, 999, 1000, 1500, 5000, 100_000, 1_000_000] {
            let k = canary_count(rows);
            assert!(canary_miss_probability(rows, k, CANARY_CUT_ROWS) <= CANARY_MISS_PROBABILITY);
            assert!(
                canary_miss_probability(rows, k - 1, CANARY_CUT_ROWS) > CANARY_MISS_PROBABILITY,
                "{rows}"
            );
        }
        assert_eq!(canary_count(0), 0);
        let k = canary_count(100_000);
        // About 0.7% of the rows (PROTOCOL.md §7.8's table).
        assert_eq!(k, 690);
        // Even the 99% the issue asks for as a floor is met by far fewer.
        assert!(canary_miss_probability(100_000, 460, CANARY_CUT_ROWS) <= 0.01);
        assert_eq!(canary_count(u64::MAX >> 20), MAX_CANARIES);
    }

    #[test]
    fn contact_values_compare_by_their_key() {
        assert_eq!(contact_key("03-0123-4567").unwrap(), "0301234567");
        assert_eq!(
            contact_key("０３－０１２３－４５６７").unwrap(),
            "0301234567"
        );
        assert_eq!(contact_key("+81 90 1234 5678").unwrap(), "09012345678");
        assert_eq!(
            contact_key(" Misaki.Sato@Mail.Invalid ").unwrap(),
            "misaki.sato@mail.invalid"
        );
        assert_eq!(
            contact_key("ｍｉｓａｋｉ＠ｍａｉｌ．ｉｎｖａｌｉｄ").unwrap(),
            "misaki@mail.invalid"
        );
        assert_eq!(contact_key("12345"), None);
        assert_eq!(contact_key("a@b"), None);
        assert_eq!(contact_key("2024-01-15"), None);
    }
}
