//! A CSV/TSV table read from decrypted bytes as they arrive
//! ([`TableStream`]), so that the plaintext is never held whole beside the
//! table: each piece is decoded into a small zeroizing buffer and read into
//! the [`TableBuilder`] at once. A million-row CP932 list then costs its
//! cells and offsets, not also its bytes and a decoded copy.
//!
//! Which encoding the bytes are in is `irm_client::text`'s rule (a
//! byte-order mark decides; otherwise valid UTF-8 is UTF-8 and anything
//! else CP932); this module follows that rule piece by piece, and a test
//! holds the two equal. Without a byte-order mark the text is read as
//! UTF-8 until a byte says otherwise. If only ASCII came before that byte
//! (as in a Japanese Excel file, whose header row is already Japanese),
//! CP932 reads that ASCII alike and reading goes on in CP932. If non-ASCII
//! UTF-8 came before it, the table read so far is wrong, and the caller
//! must read the document again from the start with [`TableStream::cp932`]
//! ([`TableStream::restart_needed`]).
//!
//! Splitting fields and rows is `csv.rs`'s business, the table `data.rs`'s.

use encoding_rs::{CoderResult, Decoder, SHIFT_JIS, UTF_8, UTF_16BE, UTF_16LE};
use zeroize::Zeroizing;

use super::csv::{CsvReader, sniff_delimiter};
use super::data::{MAX_TABLE_TEXT, Table, TableBuilder};
use crate::text::TextEncoding;

/// The decoded text handed to the CSV reader at a time, in bytes.
const SCRATCH_LEN: usize = 256 * 1024;

/// How the bytes are being read.
enum Decoding {
    /// Fewer than three bytes seen: a byte-order mark may still be coming.
    Head { bytes: [u8; 3], len: usize },
    /// No byte-order mark, and valid UTF-8 so far. `carry` holds a
    /// sequence cut at the end of the last piece; `non_ascii` says whether
    /// any text that is not ASCII has been read.
    Utf8 {
        carry: [u8; 4],
        carry_len: usize,
        non_ascii: bool,
    },
    /// Decoding with `encoding_rs` (a byte-order mark, or CP932).
    Decoder(Decoder),
}

/// The decoded text's way into the table: held until the first line is
/// whole (it decides the separator, as [`sniff_delimiter`] does on the whole
/// text), then fed to the CSV reader piece by piece.
struct Sink {
    first_line: Zeroizing<String>,
    reader: Option<(CsvReader, char)>,
    out: TableBuilder,
}

impl Sink {
    fn text(&mut self, text: &str) {
        if let Some((reader, _)) = &mut self.reader {
            reader.feed(text, &mut self.out);
            return;
        }
        if self.first_line.capacity() - self.first_line.len() < text.len() {
            // Grown by moving, so no reallocation leaves a copy behind.
            let mut bigger = Zeroizing::new(String::with_capacity(
                (self.first_line.len() + text.len()).max(self.first_line.capacity() * 2),
            ));
            bigger.push_str(&self.first_line);
            self.first_line = bigger; // the old one is wiped as it drops
        }
        self.first_line.push_str(text);
        if text.contains('\n') {
            self.start();
        }
    }

    /// Decides the separator from the first line and reads it.
    fn start(&mut self) {
        let delimiter = sniff_delimiter(&self.first_line);
        let mut reader = CsvReader::new(delimiter).expect("sniff_delimiter gives a comma or a tab");
        reader.feed(&self.first_line, &mut self.out);
        self.first_line = Zeroizing::new(String::new()); // the old one is wiped as it drops
        self.reader = Some((reader, delimiter));
    }

    fn finish(mut self) -> (TableBuilder, char) {
        if self.reader.is_none() {
            self.start();
        }
        let (reader, delimiter) = self.reader.take().expect("started just above");
        reader.finish(&mut self.out);
        (self.out, delimiter)
    }
}

/// Reads a CSV/TSV table from decrypted bytes given in order
/// ([`TableStream::push`]); see the module documentation.
pub struct TableStream {
    decoding: Decoding,
    /// Reading CP932 from the first byte (after a restart).
    cp932_from_start: bool,
    encoding: TextEncoding,
    had_errors: bool,
    restart: bool,
    /// The bytes the text may take, at most: the cell buffer is sized
    /// from it once the encoding is known.
    len_hint: usize,
    /// Decoded text on its way to the reader.
    scratch: Zeroizing<String>,
    sink: Sink,
}

/// A table read by [`TableStream`], with the encoding it was in.
pub struct StreamedTable {
    /// The table.
    pub table: Table,
    /// The encoding, as `irm_client::text::detect` gives it for the bytes.
    pub encoding: TextEncoding,
    /// Whether some bytes were not valid in that encoding.
    pub had_errors: bool,
}

/// Why [`TableStream::finish`] gave no table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamError {
    /// The bytes are CP932 after all: read them again with [`TableStream::cp932`].
    Restart,
    /// The text is longer than a table holds ([`MAX_TABLE_TEXT`]).
    TooLarge,
}

impl TableStream {
    /// A reader for a document of at most `len_hint` bytes (the sealed
    /// file's length will do), encoding found as it reads.
    pub fn new(len_hint: usize) -> Self {
        Self {
            decoding: Decoding::Head {
                bytes: [0; 3],
                len: 0,
            },
            cp932_from_start: false,
            encoding: TextEncoding::Utf8,
            had_errors: false,
            restart: false,
            len_hint,
            scratch: Zeroizing::new(String::with_capacity(SCRATCH_LEN)),
            sink: Sink {
                first_line: Zeroizing::new(String::new()),
                reader: None,
                // The UTF-8 text is never longer than the bytes.
                out: TableBuilder::with_capacity(len_hint.min(MAX_TABLE_TEXT)),
            },
        }
    }

    /// A reader for a document known to be CP932 (after
    /// [`StreamError::Restart`], or from `irm_client::text::detect`).
    pub fn cp932(len_hint: usize) -> Self {
        let mut stream = Self::new(0);
        stream.len_hint = len_hint;
        stream.cp932_from_start = true;
        stream.start_decoder(
            TextEncoding::ShiftJis,
            SHIFT_JIS.new_decoder_without_bom_handling(),
        );
        stream
    }

    /// Whether reading on is pointless: the document must be read again
    /// with [`TableStream::cp932`], or it is too large for a table.
    pub fn must_stop(&self) -> bool {
        self.restart || self.sink.out.overflowed()
    }

    /// Reads the next piece of the document.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.restart {
            return;
        }
        match &mut self.decoding {
            Decoding::Head { bytes: head, len } => {
                let take = bytes.len().min(head.len() - *len);
                head[*len..*len + take].copy_from_slice(&bytes[..take]);
                *len += take;
                if *len == head.len() {
                    let head = *head;
                    self.decide(&head);
                    self.push(&bytes[take..]);
                }
            }
            Decoding::Utf8 { .. } => self.push_utf8(bytes),
            Decoding::Decoder(_) => self.decode(bytes, false),
        }
    }

    /// The table, once every piece was pushed.
    pub fn finish(mut self) -> Result<StreamedTable, StreamError> {
        if let Decoding::Head { bytes, len } = self.decoding {
            self.decide(&bytes[..len]);
        }
        if let Decoding::Utf8 {
            carry, carry_len, ..
        } = self.decoding
            && carry_len > 0
        {
            // Cut short at the very end: not UTF-8 (text::Detector says so too).
            self.not_utf8(&carry[..carry_len], &[]);
        }
        self.decode(&[], true);
        if self.restart {
            return Err(StreamError::Restart);
        }
        let (out, delimiter) = self.sink.finish();
        if out.overflowed() {
            return Err(StreamError::TooLarge);
        }
        Ok(StreamedTable {
            table: out.finish(delimiter),
            encoding: self.encoding,
            had_errors: self.had_errors,
        })
    }

    /// The first bytes (three, or fewer at the end) decide: a byte-order
    /// mark names the encoding, as in `irm_client::text::Detector::finish`.
    fn decide(&mut self, head: &[u8]) {
        let (encoding, rs, skip) = match head {
            [0xEF, 0xBB, 0xBF, ..] => (TextEncoding::Utf8Bom, UTF_8, 3),
            [0xFF, 0xFE, ..] => (TextEncoding::Utf16Le, UTF_16LE, 2),
            [0xFE, 0xFF, ..] => (TextEncoding::Utf16Be, UTF_16BE, 2),
            _ => {
                self.decoding = Decoding::Utf8 {
                    carry: [0; 4],
                    carry_len: 0,
                    non_ascii: false,
                };
                self.push_utf8(head);
                return;
            }
        };
        self.start_decoder(encoding, rs.new_decoder_without_bom_handling());
        self.decode(&head[skip..], false);
    }

    fn start_decoder(&mut self, encoding: TextEncoding, decoder: Decoder) {
        // Decoded text can be longer than its bytes (CP932's half-width
        // kana take three bytes in UTF-8): room for the most it can take.
        // Only what is written is ever touched (and wiped), so the rest
        // costs address space, not memory.
        let most = decoder
            .max_utf8_buffer_length(self.len_hint)
            .unwrap_or(MAX_TABLE_TEXT)
            .min(MAX_TABLE_TEXT);
        self.sink.out.reserve_total(most);
        self.encoding = encoding;
        self.decoding = Decoding::Decoder(decoder);
    }

    fn push_utf8(&mut self, mut bytes: &[u8]) {
        let Decoding::Utf8 {
            carry,
            carry_len,
            non_ascii,
        } = &mut self.decoding
        else {
            return;
        };
        if *carry_len > 0 {
            // Finish the sequence the last piece cut, as one small buffer.
            let width = match carry[0] {
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                _ => 4,
            };
            let had = *carry_len;
            let take = bytes.len().min(width - had);
            carry[had..had + take].copy_from_slice(&bytes[..take]);
            match std::str::from_utf8(&carry[..had + take]) {
                Ok(text) => {
                    *carry_len = 0;
                    *non_ascii = true;
                    self.sink.text(text);
                    bytes = &bytes[take..];
                }
                Err(e) if e.error_len().is_none() => {
                    *carry_len = had + take; // still cut short: `bytes` was too small
                    return;
                }
                Err(_) => {
                    let carried = *carry;
                    return self.not_utf8(&carried[..had], bytes);
                }
            }
        }
        let (valid, rest, cut) = match std::str::from_utf8(bytes) {
            Ok(text) => (text, &[][..], false),
            Err(e) => {
                let (valid, rest) = bytes.split_at(e.valid_up_to());
                let valid = std::str::from_utf8(valid).expect("valid up to here");
                (valid, rest, e.error_len().is_none())
            }
        };
        if !*non_ascii && !valid.is_ascii() {
            *non_ascii = true;
        }
        self.sink.text(valid);
        if cut {
            // A sequence cut at the end of the piece: valid so far.
            carry[..rest.len()].copy_from_slice(rest);
            *carry_len = rest.len();
        } else if !rest.is_empty() {
            self.not_utf8(&[], rest);
        }
    }

    /// A byte that is not UTF-8 at `carried` + `rest`: the document is CP932.
    fn not_utf8(&mut self, carried: &[u8], rest: &[u8]) {
        let Decoding::Utf8 { non_ascii, .. } = self.decoding else {
            return;
        };
        if non_ascii {
            self.restart = true;
            return;
        }
        // Only ASCII so far, which CP932 reads alike: go on in CP932.
        self.start_decoder(
            TextEncoding::ShiftJis,
            SHIFT_JIS.new_decoder_without_bom_handling(),
        );
        self.decode(carried, false);
        self.decode(rest, false);
    }

    fn decode(&mut self, mut bytes: &[u8], last: bool) {
        let Decoding::Decoder(decoder) = &mut self.decoding else {
            return;
        };
        if bytes.is_empty() && !last {
            // encoding_rs 0.8's Shift_JIS decoder forgets a lead byte left
            // over from the last piece when handed an empty one (the test
            // below cut CP932 after a lead byte and read "顧q" for "顧客").
            return;
        }
        loop {
            let (result, read, replaced) = decoder.decode_to_string(bytes, &mut self.scratch, last);
            self.had_errors |= replaced;
            bytes = &bytes[read..];
            self.sink.text(&self.scratch);
            // The bytes stay until overwritten or wiped as the scratch drops.
            self.scratch.clear();
            if result == CoderResult::InputEmpty {
                return;
            }
        }
    }
}

impl std::fmt::Debug for TableStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TableStream(..)") // never the contents
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text;

    fn rows(t: &Table) -> Vec<Vec<&str>> {
        (0..t.row_count()).map(|r| t.row(r).collect()).collect()
    }

    /// The table as the whole-buffer path reads it: detect, decode, parse.
    fn whole(bytes: &[u8]) -> (Table, TextEncoding, bool) {
        let decoded = text::decode(bytes);
        let table = Table::parse(&decoded.text, sniff_delimiter(&decoded.text));
        (table, decoded.encoding, decoded.had_errors)
    }

    /// Pushes `bytes` cut at `cuts`, reading again in CP932 when told to.
    fn streamed(bytes: &[u8], cuts: &[usize]) -> StreamedTable {
        let run = |mut stream: TableStream| {
            let mut from = 0;
            for &cut in cuts.iter().chain([&bytes.len()]) {
                stream.push(&bytes[from..cut]);
                from = cut;
            }
            stream.finish()
        };
        match run(TableStream::new(bytes.len())) {
            Err(StreamError::Restart) => run(TableStream::cp932(bytes.len())).expect("CP932 reads"),
            other => other.expect("a table"),
        }
    }

    #[test]
    fn pieces_split_anywhere_read_as_the_whole_document_in_every_encoding() {
        let csv =
            "顧客番号,氏名,備考\r\n1001,\"山田, 太郎\",\"①番地\r\n㈱髙橋 ｶﾀｶﾅ\"\r\n1002,鈴木,\r\n";
        let (cp932, _, _) = encoding_rs::SHIFT_JIS.encode(csv);
        let utf16le: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(csv.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let utf16be: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain(csv.encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        let bom = [&[0xEF, 0xBB, 0xBF][..], csv.as_bytes()].concat();
        // ASCII first, then CP932: read on in CP932 without a restart.
        let ascii_first = [b"id,name\r\n1,".as_slice(), &cp932].concat();
        // Non-ASCII UTF-8 first, then a byte that is not: read again as CP932.
        let late = [csv.as_bytes(), b"\x82\xa0\r\n".as_slice()].concat();
        let tsv = "a\tb\n1\t2".as_bytes();
        let documents: [&[u8]; 9] = [
            csv.as_bytes(),
            &cp932,
            &utf16le,
            &utf16be,
            &bom,
            &ascii_first,
            &late,
            tsv,
            b"\xEF\xBB",
        ];
        for bytes in documents {
            let (want, encoding, had_errors) = whole(bytes);
            assert_eq!(encoding, text::detect(bytes));
            let step = (bytes.len() / 23).max(1);
            for a in (0..=bytes.len()).step_by(step).chain([1, 2, 3, 4]) {
                for b in (a..=bytes.len()).step_by(step * 3 + 1) {
                    let got = streamed(bytes, &[a.min(bytes.len()), b]);
                    let why = format!("{encoding:?} cut at {a} and {b}");
                    assert_eq!(rows(&got.table), rows(&want), "{why}");
                    assert_eq!(got.table.delimiter(), want.delimiter(), "{why}");
                    assert_eq!(got.encoding, encoding, "{why}");
                    assert_eq!(got.had_errors, had_errors, "{why}");
                }
            }
        }
    }

    #[test]
    fn a_restart_is_asked_for_only_after_non_ascii_utf8() {
        let (cp932, _, _) = encoding_rs::SHIFT_JIS.encode("氏名\n山田\n");
        let mut stream = TableStream::new(cp932.len());
        stream.push(b"id,name\n1,");
        stream.push(&cp932);
        assert!(!stream.must_stop(), "ASCII then CP932 reads on");
        let mut stream = TableStream::new(100);
        stream.push("名前\n".as_bytes());
        stream.push(&cp932);
        assert!(stream.must_stop());
        assert_eq!(stream.finish().err(), Some(StreamError::Restart));
    }
}
