//! Which text encoding a decrypted document is in, and its text decoded to
//! UTF-8: one rule for every front end (the viewer shows the text, libirm
//! hands it to C callers). Deciding whether a document is text at all (its
//! media type, a workbook, a picture) is left to each front end.
//!
//! Japanese Excel saves "CSV" as CP932 (Shift_JIS with Microsoft's
//! extensions) unless told otherwise, "CSV UTF-8" with a byte-order mark, and
//! "Unicode text" as UTF-16LE TSV with a BOM. The decoded text goes straight
//! into a zeroizing buffer sized up front, so no reallocation leaves a copy
//! of the plaintext behind in freed memory.

use encoding_rs::{Encoding as RsEncoding, SHIFT_JIS, UTF_16BE, UTF_16LE};
use zeroize::Zeroizing;

/// The encoding a file was found to be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    /// UTF-8 without a byte-order mark.
    Utf8,
    /// UTF-8 with a byte-order mark (Excel's "CSV UTF-8").
    Utf8Bom,
    /// UTF-16 little-endian with a BOM (Excel's "Unicode text").
    Utf16Le,
    /// UTF-16 big-endian with a BOM.
    Utf16Be,
    /// Shift_JIS as Windows writes it (CP932; encoding_rs's `Shift_JIS` is the
    /// WHATWG decoder, which includes the CP932 extensions).
    ShiftJis,
}

impl TextEncoding {
    /// The name shown in the status bar.
    pub fn label(self) -> &'static str {
        match self {
            Self::Utf8 => "UTF-8",
            Self::Utf8Bom => "UTF-8 (BOM)",
            Self::Utf16Le => "UTF-16LE",
            Self::Utf16Be => "UTF-16BE",
            Self::ShiftJis => "Shift_JIS (CP932)",
        }
    }
}

/// Which encoding `bytes` are in: a byte-order mark decides; otherwise valid
/// UTF-8 is UTF-8 and anything else is taken for CP932.
pub fn detect(bytes: &[u8]) -> TextEncoding {
    let mut detector = Detector::default();
    detector.update(bytes);
    detector.finish()
}

/// [`detect`] over bytes that arrive in pieces (a document read chunk by
/// chunk), without holding them: [`Detector::finish`] gives what [`detect`]
/// gives for all the pieces joined, however they were split.
#[derive(Debug, Default)]
pub struct Detector {
    /// The first bytes seen (up to three), where a byte-order mark would be.
    head: [u8; 3],
    head_len: usize,
    /// A UTF-8 sequence cut at the end of the last piece, waiting for the rest.
    carry: [u8; 3],
    carry_len: usize,
    /// Whether some bytes already failed to be UTF-8.
    not_utf8: bool,
}

impl Detector {
    /// Takes the next piece of the document.
    pub fn update(&mut self, mut piece: &[u8]) {
        let take = piece.len().min(self.head.len() - self.head_len);
        self.head[self.head_len..self.head_len + take].copy_from_slice(&piece[..take]);
        self.head_len += take;
        if self.not_utf8 {
            return;
        }
        if self.carry_len > 0 {
            // Finish the sequence the last piece cut, as one small buffer.
            let width = match self.carry[0] {
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                _ => 4,
            };
            let take = piece.len().min(width - self.carry_len);
            let mut seq = [0u8; 4];
            seq[..self.carry_len].copy_from_slice(&self.carry[..self.carry_len]);
            seq[self.carry_len..self.carry_len + take].copy_from_slice(&piece[..take]);
            let seq = &seq[..self.carry_len + take];
            match std::str::from_utf8(seq) {
                Ok(_) => self.carry_len = 0,
                Err(e) if e.error_len().is_none() => {
                    // Still cut short: this piece was too small to finish it.
                    self.carry[..seq.len()].copy_from_slice(seq);
                    self.carry_len = seq.len();
                    return;
                }
                Err(_) => {
                    self.not_utf8 = true;
                    return;
                }
            }
            piece = &piece[take..];
        }
        if let Err(e) = std::str::from_utf8(piece) {
            match e.error_len() {
                // Cut at the end of the piece: valid so far.
                None => {
                    let cut = &piece[e.valid_up_to()..];
                    self.carry[..cut.len()].copy_from_slice(cut);
                    self.carry_len = cut.len();
                }
                Some(_) => self.not_utf8 = true,
            }
        }
    }

    /// The encoding of everything given to [`Detector::update`].
    pub fn finish(&self) -> TextEncoding {
        match &self.head[..self.head_len] {
            [0xEF, 0xBB, 0xBF, ..] => TextEncoding::Utf8Bom,
            [0xFF, 0xFE, ..] => TextEncoding::Utf16Le,
            [0xFE, 0xFF, ..] => TextEncoding::Utf16Be,
            // A sequence still cut at the very end is not UTF-8 either.
            _ if !self.not_utf8 && self.carry_len == 0 => TextEncoding::Utf8,
            _ => TextEncoding::ShiftJis,
        }
    }
}

/// Decoded text and what it was decoded from.
pub struct Decoded {
    /// The text, without any byte-order mark.
    pub text: Zeroizing<String>,
    /// The detected encoding.
    pub encoding: TextEncoding,
    /// Whether some bytes were not valid in that encoding (shown as U+FFFD).
    pub had_errors: bool,
}

/// Detects the encoding of `bytes` and decodes them into a zeroizing buffer.
pub fn decode(bytes: &[u8]) -> Decoded {
    let encoding = detect(bytes);
    let (rs, body): (&'static RsEncoding, &[u8]) = match encoding {
        TextEncoding::Utf8 => (encoding_rs::UTF_8, bytes),
        TextEncoding::Utf8Bom => (encoding_rs::UTF_8, &bytes[3..]),
        TextEncoding::Utf16Le => (UTF_16LE, &bytes[2..]),
        TextEncoding::Utf16Be => (UTF_16BE, &bytes[2..]),
        TextEncoding::ShiftJis => (SHIFT_JIS, bytes),
    };
    let mut decoder = rs.new_decoder_without_bom_handling();
    let capacity = decoder
        .max_utf8_buffer_length(body.len())
        .expect("a buffer the size of the file plus its expansion fits in memory");
    // Sized once: decode_to_string writes into spare capacity and never grows the string.
    let mut text = Zeroizing::new(String::with_capacity(capacity));
    let (result, read, had_errors) = decoder.decode_to_string(body, &mut text, true);
    debug_assert_eq!(result, encoding_rs::CoderResult::InputEmpty);
    debug_assert_eq!(read, body.len());
    Decoded {
        text,
        encoding,
        had_errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JA: &str = "顧客番号,氏名,電話\n1001,山田 太郎,03-1234-5678\n";

    #[test]
    fn plain_utf8() {
        let d = decode(JA.as_bytes());
        assert_eq!(d.encoding, TextEncoding::Utf8);
        assert_eq!(&*d.text, JA);
        assert!(!d.had_errors);
    }

    #[test]
    fn utf8_with_bom_drops_the_bom() {
        let mut bytes = vec![0xEF, 0xBB, 0xBF];
        bytes.extend_from_slice(JA.as_bytes());
        let d = decode(&bytes);
        assert_eq!(d.encoding, TextEncoding::Utf8Bom);
        assert_eq!(&*d.text, JA);
    }

    #[test]
    fn cp932_from_japanese_excel() {
        let (bytes, _, unmappable) = SHIFT_JIS.encode(JA);
        assert!(!unmappable);
        assert!(
            std::str::from_utf8(&bytes).is_err(),
            "CP932 bytes are not UTF-8"
        );
        let d = decode(&bytes);
        assert_eq!(d.encoding, TextEncoding::ShiftJis);
        assert_eq!(&*d.text, JA);
        assert!(!d.had_errors);
    }

    #[test]
    fn cp932_extensions_decode() {
        // NEC special characters and IBM extensions that only CP932 has: ①, ㈱, 髙.
        let text = "①,㈱山田商事,髙橋\n";
        let (bytes, _, unmappable) = SHIFT_JIS.encode(text);
        assert!(!unmappable);
        assert_eq!(&*decode(&bytes).text, text);
    }

    #[test]
    fn utf16le_with_bom() {
        let mut bytes = vec![0xFF, 0xFE];
        for unit in "顧客\t氏名\n".encode_utf16() {
            bytes.extend_from_slice(&unit.to_le_bytes());
        }
        let d = decode(&bytes);
        assert_eq!(d.encoding, TextEncoding::Utf16Le);
        assert_eq!(&*d.text, "顧客\t氏名\n");
    }

    #[test]
    fn ascii_is_utf8_and_empty_is_fine() {
        assert_eq!(detect(b"a,b\n"), TextEncoding::Utf8);
        assert_eq!(detect(b""), TextEncoding::Utf8);
        assert_eq!(&*decode(b"").text, "");
    }

    /// The old one-piece rule, which [`Detector`] must agree with.
    fn detect_whole(bytes: &[u8]) -> TextEncoding {
        match bytes {
            [0xEF, 0xBB, 0xBF, ..] => TextEncoding::Utf8Bom,
            [0xFF, 0xFE, ..] => TextEncoding::Utf16Le,
            [0xFE, 0xFF, ..] => TextEncoding::Utf16Be,
            _ if std::str::from_utf8(bytes).is_ok() => TextEncoding::Utf8,
            _ => TextEncoding::ShiftJis,
        }
    }

    #[test]
    fn pieces_split_anywhere_give_what_the_whole_gives() {
        let (sjis, _, _) = SHIFT_JIS.encode(JA);
        let mut bom = vec![0xEF, 0xBB, 0xBF];
        bom.extend_from_slice(JA.as_bytes());
        let mut cut_at_end = JA.as_bytes().to_vec();
        cut_at_end.extend_from_slice(&"顧".as_bytes()[..2]);
        let mut bad_in_middle = JA.as_bytes().to_vec();
        bad_in_middle.insert(4, 0xE9);
        let samples: [&[u8]; 10] = [
            b"",
            b"a,b\n",
            JA.as_bytes(),
            "😀,①\n".as_bytes(),
            &sjis,
            &bom,
            &cut_at_end,
            &bad_in_middle,
            &[0xFF, 0xFE, b'a', 0],
            &[0xFE],
        ];
        for bytes in samples {
            let want = detect_whole(bytes);
            assert_eq!(detect(bytes), want, "{bytes:?}");
            for first in 0..=bytes.len() {
                for second in first..=bytes.len() {
                    let mut d = Detector::default();
                    d.update(&bytes[..first]);
                    d.update(&bytes[first..second]);
                    d.update(&bytes[second..]);
                    assert_eq!(d.finish(), want, "{bytes:?} cut at {first} and {second}");
                }
            }
            let mut d = Detector::default();
            for byte in bytes {
                d.update(std::slice::from_ref(byte));
            }
            assert_eq!(d.finish(), want, "{bytes:?} byte by byte");
        }
    }

    #[test]
    fn the_buffer_never_grew() {
        let long = JA.repeat(1000);
        let (bytes, _, _) = SHIFT_JIS.encode(&long);
        let d = decode(&bytes);
        let capacity = SHIFT_JIS
            .new_decoder_without_bom_handling()
            .max_utf8_buffer_length(bytes.len())
            .unwrap();
        assert_eq!(d.text.capacity(), capacity);
    }
}
