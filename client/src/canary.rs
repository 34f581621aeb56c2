//! Canary rows in an exported customer list, and the contact values in a
//! leaked one (PROTOCOL.md §7.8): shared by every front end that exports a
//! list (`irm open`; the viewer and libirm may call it too) and by
//! `irm trace`.
//!
//! Inserting works on the file's own bytes: the CSV's separators, quotes
//! and line ends are ASCII, and neither a CP932 trail byte (0x40 and up)
//! nor a UTF-8 continuation byte is ever one, so the real rows are copied
//! byte for byte and only the canaries are encoded, in the file's encoding,
//! into the file's columns by what each column holds. Where they go is
//! random, from the caller's [`RandomSource`] (the operating system's in
//! every front end; a seeded one in tests, so a test's cuts are reproducible).

use std::collections::BTreeSet;
use std::ops::Range;

use irm_core::protocol::{Canary, contact_key, fold_width};
use zeroize::Zeroizing;

use crate::text::{self, TextEncoding};

/// Whether the file is a customer list that carries canaries: CSV or TSV
/// by its media type or its name.
pub fn is_list(metadata: &irm_core::Metadata) -> bool {
    let media = metadata
        .media_type
        .as_deref()
        .unwrap_or("")
        .to_ascii_lowercase();
    let name = metadata
        .file_name
        .as_deref()
        .unwrap_or("")
        .to_ascii_lowercase();
    media.starts_with("text/csv")
        || media.starts_with("text/tab-separated-values")
        || name.ends_with(".csv")
        || name.ends_with(".tsv")
}

/// Where canary positions come from.
pub trait RandomSource {
    /// 64 random bits.
    fn next_u64(&mut self) -> u64;

    /// Uniform below `n` (`n` > 0; the bias of 2^64 mod n is negligible).
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The operating system's random number generator.
#[derive(Debug, Default)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    fn next_u64(&mut self) -> u64 {
        let mut bytes = [0u8; 8];
        // getrandom fails only where the OS has no generator at all, where
        // nothing of this client works; a fixed value would make positions
        // predictable, so stop instead.
        getrandom::fill(&mut bytes).expect("the operating system's random number generator");
        u64::from_le_bytes(bytes)
    }
}

/// A byte buffer that wipes each allocation it outgrows, so that growing
/// leaves no copy of the plaintext behind in freed memory (a `Vec` that
/// reallocates frees the old block as it was).
pub struct WipingBuffer(Zeroizing<Vec<u8>>);

impl WipingBuffer {
    /// An empty buffer with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Self(Zeroizing::new(Vec::with_capacity(capacity)))
    }

    fn reserve(&mut self, more: usize) {
        let needed = self.0.len() + more;
        if needed > self.0.capacity() {
            let mut bigger = Zeroizing::new(Vec::with_capacity(needed.max(self.0.capacity() * 2)));
            bigger.extend_from_slice(&self.0);
            // The old block is wiped as it is dropped here.
            self.0 = bigger;
        }
    }

    /// Appends bytes.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.reserve(bytes.len());
        self.0.extend_from_slice(bytes);
    }

    /// Appends one byte.
    pub fn push(&mut self, byte: u8) {
        self.reserve(1);
        self.0.push(byte);
    }

    /// The bytes so far.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// The buffer, still zeroizing.
    pub fn into_inner(self) -> Zeroizing<Vec<u8>> {
        self.0
    }
}

impl std::io::Write for WipingBuffer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Why a list cannot carry canaries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanaryError {
    /// UTF-16 lists are not handled (Excel writes them as "Unicode text").
    #[error("the list is in {0}, which canaries are not inserted into")]
    Encoding(&'static str),
    /// No header row.
    #[error("the list has no header row")]
    Empty,
}

/// What a column holds, as far as canaries care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// Full name.
    Name,
    /// Family name alone (姓).
    FamilyName,
    /// Given name alone (名).
    GivenName,
    /// Name in kana.
    Kana,
    /// Family name in kana (セイ).
    FamilyKana,
    /// Given name in kana (メイ).
    GivenKana,
    /// Phone number.
    Phone,
    /// E-mail address.
    Email,
    /// Postal code.
    Postal,
    /// Address.
    Address,
    /// An id (`1001`, `C-000123`): a real row's with its digits drawn
    /// afresh, so that the format holds and no real customer's is repeated.
    Id,
    /// Anything else: copied from a real row.
    Other,
}

/// A CSV (or TSV) customer list as exported: its bytes and where each
/// record lies.
pub struct CsvList<'a> {
    bytes: &'a [u8],
    encoding: TextEncoding,
    separator: u8,
    crlf: bool,
    /// Header first, then the data rows, each without its line end.
    records: Vec<Range<usize>>,
    kinds: Vec<ColumnKind>,
}

impl<'a> CsvList<'a> {
    /// Reads the list's structure (nothing is copied).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, CanaryError> {
        let encoding = text::detect(bytes);
        let start = match encoding {
            TextEncoding::Utf8 | TextEncoding::ShiftJis => 0,
            TextEncoding::Utf8Bom => 3,
            other => return Err(CanaryError::Encoding(other.label())),
        };
        let records = split_records(bytes, start);
        let Some(header) = records.first().cloned() else {
            return Err(CanaryError::Empty);
        };
        let crlf = bytes.get(header.end) == Some(&b'\r');
        let head = &bytes[header.clone()];
        let separator = if !head.contains(&b',') && head.contains(&b'\t') {
            b'\t'
        } else {
            b','
        };
        let mut list = Self {
            bytes,
            encoding,
            separator,
            crlf,
            records,
            kinds: Vec::new(),
        };
        list.kinds = list.column_kinds();
        Ok(list)
    }

    /// Whether the bytes look like a customer list when nothing else says
    /// so (no file name, no media type): at least two columns, one of them
    /// phone numbers or e-mail addresses, and the first rows as wide as the
    /// header. A letter with commas in it is not one.
    pub fn looks_like_list(&self) -> bool {
        let width = self.kinds.len();
        let sample: Vec<usize> = self
            .records
            .iter()
            .skip(1)
            .take(50)
            .map(|r| self.fields(r).len())
            .collect();
        width >= 2
            && self
                .kinds
                .iter()
                .any(|k| matches!(k, ColumnKind::Phone | ColumnKind::Email))
            && !sample.is_empty()
            && sample.iter().filter(|w| **w == width).count() * 10 >= sample.len() * 9
    }

    /// Data rows (the header not counted).
    pub fn data_rows(&self) -> u64 {
        self.records.len().saturating_sub(1) as u64
    }

    /// What each column holds, by its header (and its values when the
    /// header says nothing).
    pub fn kinds(&self) -> &[ColumnKind] {
        &self.kinds
    }

    fn decode(&self, raw: &[u8]) -> String {
        match self.encoding {
            TextEncoding::ShiftJis => encoding_rs::SHIFT_JIS.decode_without_bom_handling(raw).0,
            _ => String::from_utf8_lossy(raw),
        }
        .into_owned()
    }

    fn encode(&self, value: &str) -> Vec<u8> {
        match self.encoding {
            TextEncoding::ShiftJis => encoding_rs::SHIFT_JIS.encode(value).0.into_owned(),
            _ => value.as_bytes().to_vec(),
        }
    }

    fn fields(&self, record: &Range<usize>) -> Vec<Range<usize>> {
        split_fields(self.bytes, record.clone(), self.separator)
    }

    fn column_kinds(&self) -> Vec<ColumnKind> {
        let header = &self.records[0];
        let sample: Vec<Vec<Range<usize>>> = self
            .records
            .iter()
            .skip(1)
            .take(50)
            .map(|r| self.fields(r))
            .collect();
        self.fields(header)
            .iter()
            .enumerate()
            .map(|(column, field)| {
                let name = self.decode(unquote(&self.bytes[field.clone()]));
                kind_by_header(&name).unwrap_or_else(|| {
                    let values: Vec<String> = sample
                        .iter()
                        .filter_map(|f| f.get(column))
                        .map(|f| self.decode(unquote(&self.bytes[f.clone()])))
                        .collect();
                    kind_by_values(&values)
                })
            })
            .collect()
    }

    /// The list with `canaries` at random places among its data rows (each
    /// place equally likely), in its own encoding, separator and line ends.
    pub fn with_canaries(
        &self,
        canaries: &[Canary],
        rng: &mut impl RandomSource,
    ) -> Zeroizing<Vec<u8>> {
        let data = self.data_rows();
        let mut places: Vec<u64> = canaries.iter().map(|_| rng.below(data + 1)).collect();
        places.sort_unstable();
        let line_end: &[u8] = if self.crlf { b"\r\n" } else { b"\n" };
        let extra: usize = canaries.len() * 256;
        let mut out = WipingBuffer::with_capacity(self.bytes.len() + extra);
        let body_start = self.records[0].start;
        out.extend_from_slice(&self.bytes[..body_start]);
        let mut next = places.iter().peekable();
        let mut canary = canaries.iter();
        for (index, record) in self.records.iter().enumerate() {
            if index > 0 {
                let row = index as u64 - 1;
                while next.next_if(|p| **p == row).is_some() {
                    if let Some(c) = canary.next() {
                        self.write_canary(&mut out, c, rng);
                        out.extend_from_slice(line_end);
                    }
                }
            }
            out.extend_from_slice(&self.bytes[record.clone()]);
            out.extend_from_slice(line_end);
        }
        for c in canary {
            self.write_canary(&mut out, c, rng);
            out.extend_from_slice(line_end);
        }
        // A list that did not end with a line end still does not.
        let mut out = out.into_inner();
        if !self.bytes.ends_with(b"\n") && canaries.is_empty() {
            let len = out.len() - line_end.len();
            out.truncate(len);
        }
        out
    }

    fn write_canary(&self, out: &mut WipingBuffer, canary: &Canary, rng: &mut impl RandomSource) {
        let data = self.data_rows();
        // The donor: a real row whose other columns the canary copies.
        let donor = (data > 0).then(|| self.fields(&self.records[1 + rng.below(data) as usize]));
        let (family, given) = canary.name.split_once(' ').unwrap_or((&canary.name, ""));
        let (family_kana, given_kana) = canary.kana.split_once(' ').unwrap_or((&canary.kana, ""));
        for (column, kind) in self.kinds.iter().enumerate() {
            if column > 0 {
                out.push(self.separator);
            }
            let donor_field = donor.as_ref().and_then(|d| d.get(column)).cloned();
            let donor_raw = donor_field.map_or(&b""[..], |f| &self.bytes[f]);
            let quoted = donor_raw.first() == Some(&b'"');
            let donor_text = self.decode(unquote(donor_raw));
            // Written as the real rows write it: a full-width space between
            // family and given name, a postal code without its hyphen or
            // with its 〒.
            let spaced = |name: &str| {
                if donor_text.contains('\u{3000}') && !donor_text.contains(' ') {
                    name.replace(' ', "\u{3000}")
                } else {
                    name.to_owned()
                }
            };
            let value = match kind {
                ColumnKind::Name => spaced(&canary.name),
                ColumnKind::FamilyName => family.to_owned(),
                ColumnKind::GivenName => given.to_owned(),
                ColumnKind::Kana => spaced(&self.kana_like(&canary.kana, donor_raw)),
                ColumnKind::FamilyKana => self.kana_like(family_kana, donor_raw),
                ColumnKind::GivenKana => self.kana_like(given_kana, donor_raw),
                ColumnKind::Phone => self.phone_like(&canary.phone, donor_raw),
                ColumnKind::Email => canary.email.clone(),
                ColumnKind::Postal => {
                    let mut code = canary.postal_code.clone();
                    if !donor_text.is_empty() && !donor_text.contains('-') {
                        code.retain(|c| c != '-');
                    }
                    if donor_text.starts_with('〒') {
                        code.insert(0, '〒');
                    }
                    code
                }
                ColumnKind::Address => canary.address.clone(),
                ColumnKind::Id => self
                    .decode(unquote(donor_raw))
                    .chars()
                    .map(|c| {
                        if c.is_ascii_digit() {
                            char::from(b'0' + rng.below(10) as u8)
                        } else {
                            c
                        }
                    })
                    .collect(),
                ColumnKind::Other => {
                    out.extend_from_slice(donor_raw);
                    continue;
                }
            };
            let encoded = self.encode(&value);
            if quoted
                || encoded
                    .iter()
                    .any(|b| matches!(b, b'"' | b'\n' | b'\r') || *b == self.separator)
            {
                out.push(b'"');
                for b in encoded {
                    if b == b'"' {
                        out.push(b'"');
                    }
                    out.push(b);
                }
                out.push(b'"');
            } else {
                out.extend_from_slice(&encoded);
            }
        }
    }

    /// Kana as the column writes it: half-width when the real rows are.
    fn kana_like(&self, kana: &str, donor: &[u8]) -> String {
        let donor = self.decode(donor);
        if donor
            .chars()
            .any(|c| ('\u{FF66}'..='\u{FF9F}').contains(&c))
        {
            kana.chars().map(half_width_kana).collect()
        } else {
            kana.to_owned()
        }
    }

    /// A phone number written as the column writes them: without hyphens
    /// when the real rows have none.
    fn phone_like(&self, phone: &str, donor: &[u8]) -> String {
        let donor = self.decode(donor);
        if !donor.is_empty() && !donor.contains('-') {
            phone.chars().filter(char::is_ascii_digit).collect()
        } else {
            phone.to_owned()
        }
    }
}

/// The records of a CSV from byte `start`, each without its line end
/// (quotes may hold line ends); a trailing empty line is none.
fn split_records(bytes: &[u8], start: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let (mut quoted, mut begin) = (false, start);
    for (i, &b) in bytes.iter().enumerate().skip(start) {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => {
                let end = if i > begin && bytes[i - 1] == b'\r' {
                    i - 1
                } else {
                    i
                };
                out.push(begin..end);
                begin = i + 1;
            }
            _ => {}
        }
    }
    if begin < bytes.len() {
        out.push(begin..bytes.len());
    }
    out
}

/// The fields of one record, raw (quotes kept).
fn split_fields(bytes: &[u8], record: Range<usize>, separator: u8) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let (mut quoted, mut begin) = (false, record.start);
    for i in record.clone() {
        match bytes[i] {
            b'"' => quoted = !quoted,
            b if b == separator && !quoted => {
                out.push(begin..i);
                begin = i + 1;
            }
            _ => {}
        }
    }
    out.push(begin..record.end);
    out
}

/// A field without its surrounding quotes (doubled quotes inside are left:
/// the callers only classify).
fn unquote(raw: &[u8]) -> &[u8] {
    if raw.len() >= 2 && raw[0] == b'"' && raw[raw.len() - 1] == b'"' {
        &raw[1..raw.len() - 1]
    } else {
        raw
    }
}

/// What a header names, in Japanese or English; `None` if it says nothing
/// canaries care about.
pub fn kind_by_header(header: &str) -> Option<ColumnKind> {
    let h: String = header
        .trim()
        .chars()
        .map(fold_width)
        .collect::<String>()
        .to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| h.contains(w));
    Some(if has(&["mail", "メール", "ﾒｰﾙ"]) {
        ColumnKind::Email
    } else if has(&["電話", "tel", "phone", "携帯", "mobile", "fax", "連絡先"]) {
        ColumnKind::Phone
    } else if h == "セイ" || h == "ｾｲ" || has(&["姓カナ", "姓(カナ)", "姓（カナ）"])
    {
        ColumnKind::FamilyKana
    } else if h == "メイ" || h == "ﾒｲ" || has(&["名カナ", "名(カナ)", "名（カナ）"])
    {
        ColumnKind::GivenKana
    } else if has(&[
        "カナ",
        "かな",
        "ｶﾅ",
        "フリガナ",
        "ふりがな",
        "ﾌﾘｶﾞﾅ",
        "kana",
        "furigana",
    ]) {
        ColumnKind::Kana
    } else if has(&["郵便", "〒", "zip", "postal", "postcode"]) {
        ColumnKind::Postal
    } else if has(&["住所", "所在地", "address"]) {
        ColumnKind::Address
    } else if h == "姓" || has(&["last name", "family name", "lastname", "surname"]) {
        ColumnKind::FamilyName
    } else if h == "名" || has(&["first name", "given name", "firstname"]) {
        ColumnKind::GivenName
    } else if has(&["氏名", "名前", "顧客名", "お客様名", "name"]) && !has(&["file"]) {
        ColumnKind::Name
    } else {
        return None;
    })
}

/// What each column holds, by its header text or, when that says nothing,
/// by its values in the first rows (`rows`, cell texts by column): the rule
/// [`CsvList`] applies, for lists read some other way (a workbook's sheet).
pub fn column_kinds(header: &[String], rows: &[Vec<String>]) -> Vec<ColumnKind> {
    header
        .iter()
        .enumerate()
        .map(|(column, name)| {
            kind_by_header(name).unwrap_or_else(|| {
                let values: Vec<String> = rows
                    .iter()
                    .take(50)
                    .filter_map(|r| r.get(column).cloned())
                    .collect();
                kind_by_values(&values)
            })
        })
        .collect()
}

/// What a column holds by its values: contact values, ids of digits, or
/// anything else.
fn kind_by_values(values: &[String]) -> ColumnKind {
    let filled: Vec<&String> = values.iter().filter(|v| !v.trim().is_empty()).collect();
    if filled.is_empty() {
        return ColumnKind::Other;
    }
    let most = |test: &dyn Fn(&str) -> bool| {
        filled.iter().filter(|v| test(v)).count() * 5 >= filled.len() * 4
    };
    if most(&|v| v.contains('@') && contact_key(v).is_some()) {
        ColumnKind::Email
    } else if most(&|v| contact_key(v).is_some() && v.chars().any(|c| c == '-' || c == '－')) {
        ColumnKind::Phone
    } else if most(&|v| {
        let v = v.trim();
        v.len() <= 24
            && v.bytes().any(|b| b.is_ascii_digit())
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }) {
        // Distinct in the sample: an id, which a copy would repeat.
        let distinct: BTreeSet<&&String> = filled.iter().collect();
        if distinct.len() == filled.len() {
            ColumnKind::Id
        } else {
            ColumnKind::Other
        }
    } else {
        ColumnKind::Other
    }
}

/// A full-width katakana as its half-width form (ｻﾄｳ), voiced marks split.
fn half_width_kana(c: char) -> String {
    const FULL: &str = "ァアィイゥウェエォオカガキギクグケゲコゴサザシジスズセゼソゾタダチヂッツヅテデトドナニヌネノハバパヒビピフブプヘベペホボポマミムメモャヤュユョヨラリルレロヮワヰヱヲンヴー　";
    const HALF: &[&str] = &[
        "ｧ", "ｱ", "ｨ", "ｲ", "ｩ", "ｳ", "ｪ", "ｴ", "ｫ", "ｵ", "ｶ", "ｶﾞ", "ｷ", "ｷﾞ", "ｸ", "ｸﾞ", "ｹ", "ｹﾞ",
        "ｺ", "ｺﾞ", "ｻ", "ｻﾞ", "ｼ", "ｼﾞ", "ｽ", "ｽﾞ", "ｾ", "ｾﾞ", "ｿ", "ｿﾞ", "ﾀ", "ﾀﾞ", "ﾁ", "ﾁﾞ", "ｯ", "ﾂ",
        "ﾂﾞ", "ﾃ", "ﾃﾞ", "ﾄ", "ﾄﾞ", "ﾅ", "ﾆ", "ﾇ", "ﾈ", "ﾉ", "ﾊ", "ﾊﾞ", "ﾊﾟ", "ﾋ", "ﾋﾞ", "ﾋﾟ", "ﾌ", "ﾌﾞ",
        "ﾌﾟ", "ﾍ", "ﾍﾞ", "ﾍﾟ", "ﾎ", "ﾎﾞ", "ﾎﾟ", "ﾏ", "ﾐ", "ﾑ", "ﾒ", "ﾓ", "ｬ", "ﾔ", "ｭ", "ﾕ", "ｮ", "ﾖ",
        "ﾗ", "ﾘ", "ﾙ", "ﾚ", "ﾛ", "ﾜ", "ﾜ", "ｲ", "ｴ", "ｦ", "ﾝ", "ｳﾞ", "ｰ", " ",
    ];
    FULL.chars()
        .position(|f| f == c)
        .and_then(|i| HALF.get(i))
        .map_or_else(|| c.to_string(), |h| (*h).to_owned())
}

/// Every phone number and e-mail address in a leaked list (CSV, TSV or
/// text pasted from one, in UTF-8, CP932 or UTF-16, cut, reordered or
/// re-encoded), as contact keys ([`contact_key`]).
pub fn contact_values(bytes: &[u8]) -> BTreeSet<String> {
    let decoded = text::decode(bytes);
    contact_values_in(&decoded.text)
}

/// [`contact_values`] over text.
pub fn contact_values_in(text: &str) -> BTreeSet<String> {
    let folded: Vec<char> = text
        .chars()
        .map(fold_width)
        .map(|c| match c {
            // Hyphen-like marks people and IMEs put in phone numbers.
            '‐' | '‑' | '‒' | '–' | '—' | '―' | '−' | 'ー' | 'ｰ' => '-',
            c => c,
        })
        .collect();
    let mut out = BTreeSet::new();
    // E-mail addresses: around each @.
    let local = |c: char| c.is_ascii_alphanumeric() || "._%+-'".contains(c);
    let domain = |c: char| c.is_ascii_alphanumeric() || ".-".contains(c);
    for (at, _) in folded.iter().enumerate().filter(|(_, c)| **c == '@') {
        let mut start = at;
        while start > 0 && local(folded[start - 1]) {
            start -= 1;
        }
        let mut end = at + 1;
        while end < folded.len() && domain(folded[end]) {
            end += 1;
        }
        let candidate: String = folded[start..end].iter().collect();
        if let Some(key) = contact_key(candidate.trim_end_matches('.')) {
            out.insert(key);
        }
    }
    // Phone numbers: runs of digits, hyphens, spaces, brackets and '+'.
    let phone = |c: char| c.is_ascii_digit() || " -()+".contains(c);
    let mut i = 0;
    while i < folded.len() {
        if !phone(folded[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < folded.len() && phone(folded[i]) {
            i += 1;
        }
        let run: String = folded[start..i].iter().collect();
        if let Some(key) = contact_key(&run) {
            out.insert(key);
        }
        for token in run.split([' ', '(', ')']).filter(|t| !t.is_empty()) {
            if let Some(key) = contact_key(token) {
                out.insert(key);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SplitMix64: reproducible positions for tests.
    struct Seeded(u64);

    impl RandomSource for Seeded {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
    }

    fn canary(n: u32) -> Canary {
        Canary {
            name: "佐藤 美咲".into(),
            kana: "サトウ ミサキ".into(),
            phone: format!("03-0{n:03}-0000"),
            email: format!("misaki.sato{n}@mail.invalid"),
            postal_code: "123-4567".into(),
            address: "東京都世田谷区桜丘2-14-7".into(),
        }
    }

    const LIST: &str = "顧客番号,氏名,フリガナ,電話番号,メールアドレス,郵便番号,住所,会員区分\r\n\
        1001,山田 太郎,ヤマダ タロウ,03-1234-5678,taro@example.jp,100-0001,東京都千代田区1-1,\"ゴールド, 年間\"\r\n\
        1002,鈴木 花子,スズキ ハナコ,06-2345-6789,hanako@example.jp,530-0001,大阪府大阪市北区2-2,一般\r\n";

    #[test]
    fn canaries_go_into_the_lists_own_columns_and_encoding() {
        let cp932 = encoding_rs::SHIFT_JIS.encode(LIST).0.into_owned();
        let list = CsvList::parse(&cp932).unwrap();
        assert_eq!(list.data_rows(), 2);
        assert_eq!(
            list.kinds(),
            [
                ColumnKind::Id,
                ColumnKind::Name,
                ColumnKind::Kana,
                ColumnKind::Phone,
                ColumnKind::Email,
                ColumnKind::Postal,
                ColumnKind::Address,
                ColumnKind::Other
            ]
        );
        let out = list.with_canaries(&[canary(1), canary(2)], &mut Seeded(14));
        // Still CP932, with every real row as it was and two more.
        let (text, _, errors) = encoding_rs::SHIFT_JIS.decode(&out);
        assert!(!errors);
        let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 5);
        for real in LIST.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(lines.contains(&real), "{real}");
        }
        let canaries: Vec<&&str> = lines
            .iter()
            .filter(|l| l.contains("mail.invalid"))
            .collect();
        assert_eq!(canaries.len(), 2);
        for line in canaries {
            assert!(line.contains(",佐藤 美咲,サトウ ミサキ,03-0"), "{line}");
            assert!(
                line.contains(",123-4567,東京都世田谷区桜丘2-14-7,"),
                "{line}"
            );
        }
        assert_eq!(
            contact_values(&out).len(),
            8,
            "two phones and two addresses of each kind"
        );
    }

    #[test]
    fn names_and_postal_codes_are_written_as_the_real_rows_write_them() {
        let list =
            "氏名,フリガナ,郵便番号,電話\n山田　太郎,ヤマダ　タロウ,〒1000001,03-1234-5678\n";
        let parsed = CsvList::parse(list.as_bytes()).unwrap();
        let out = parsed.with_canaries(&[canary(5)], &mut Seeded(2));
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(
            text.contains("佐藤　美咲,サトウ　ミサキ,〒1234567,03-0005-0000"),
            "{text}"
        );
    }

    #[test]
    fn an_id_keeps_its_format_with_fresh_digits() {
        let list = "customer_id,name,phone\nC-000001,x,03-1234-5678\nC-000002,y,06-2345-6789\n";
        let parsed = CsvList::parse(list.as_bytes()).unwrap();
        assert_eq!(parsed.kinds()[0], ColumnKind::Id);
        let out = parsed.with_canaries(&[canary(4)], &mut Seeded(3));
        let text = String::from_utf8(out.to_vec()).unwrap();
        let row = text
            .lines()
            .find(|l| l.contains("mail.invalid") || l.contains("03-0004"))
            .unwrap();
        assert!(
            row.starts_with("C-") && row.as_bytes()[2..8].iter().all(u8::is_ascii_digit),
            "{row}"
        );
    }

    #[test]
    fn a_list_is_told_from_other_text_by_its_columns() {
        assert!(CsvList::parse(LIST.as_bytes()).unwrap().looks_like_list());
        let letter = "Dear Sato, thank you for your call, 03-1234-5678.\nBest, Tanaka\n";
        assert!(!CsvList::parse(letter.as_bytes()).unwrap().looks_like_list());
        let no_contacts = "id,amount\n1,200\n2,300\n";
        assert!(
            !CsvList::parse(no_contacts.as_bytes())
                .unwrap()
                .looks_like_list()
        );
    }

    #[test]
    fn positions_are_spread_over_the_whole_list() {
        let mut list = String::from("id,name,phone\n");
        for i in 0..1000 {
            list.push_str(&format!("{i},x,090-0000-{i:04}\n"));
        }
        let parsed = CsvList::parse(list.as_bytes()).unwrap();
        let canaries: Vec<Canary> = (0..100).map(canary).collect();
        let out = parsed.with_canaries(&canaries, &mut Seeded(7));
        let text = String::from_utf8(out.to_vec()).unwrap();
        let at: Vec<usize> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| {
                l.contains("-0000")
                    && l.starts_with(|c: char| c.is_ascii_digit())
                    && l.contains(",佐藤")
            })
            .map(|(i, _)| i)
            .collect();
        assert_eq!(at.len(), 100);
        assert!(
            at.iter().any(|&i| i < 300) && at.iter().any(|&i| i > 800),
            "{at:?}"
        );
    }

    #[test]
    fn contact_values_are_found_in_pasted_and_reencoded_text() {
        let pasted = "山田 太郎\t０３－０１２３－４５６７\tＴＡＲＯ＠Ｍａｉｌ．ｉｎｖａｌｉｄ\n\
            電話: +81 6 1234 5678、メール <hanako@example.jp>。";
        let found = contact_values_in(pasted);
        for key in [
            "0301234567",
            "taro@mail.invalid",
            "0612345678",
            "hanako@example.jp",
        ] {
            assert!(found.contains(key), "{key} in {found:?}");
        }
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(pasted.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(contact_values(&utf16), found);
        assert!(contact_values(b"id,amount\n1,2024-01-15\n").is_empty());
    }

    #[test]
    fn half_width_kana_columns_get_half_width_canaries() {
        let list = "ﾌﾘｶﾞﾅ,TEL\nﾔﾏﾀﾞ ﾀﾛｳ,0312345678\n";
        let parsed = CsvList::parse(list.as_bytes()).unwrap();
        let out = parsed.with_canaries(&[canary(3)], &mut Seeded(1));
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(text.contains("ｻﾄｳ ﾐｻｷ,0300030000"), "{text}");
    }
}
