//! Reading CSV/TSV text into a [`Table`]: which separator a file uses, and
//! RFC 4180 fields (quotes, separators and line breaks inside quotes,
//! doubled quotes, CRLF or LF) pushed into the one [`TableBuilder`], which
//! decides how a cell or a row ends. Decoding the bytes (UTF-8, CP932,
//! UTF-16) is `text.rs`'s business.

use super::data::{MAX_TABLE_TEXT, Table, TableBuilder};

/// The separator: a tab if the first line has more tabs than commas.
pub fn sniff_delimiter(text: &str) -> char {
    let first = text.lines().next().unwrap_or("");
    let tabs = first.matches('\t').count();
    let commas = first.matches(',').count();
    if tabs > commas { '\t' } else { ',' }
}

impl Table {
    /// Parses RFC 4180 CSV (or TSV with `delimiter = '\t'`): quoted fields
    /// may hold separators, line breaks and doubled quotes; CRLF and LF both
    /// end a record; a final line break does not start an empty row.
    ///
    /// Text longer than [`MAX_TABLE_TEXT`] gives an empty table rather than
    /// wrong offsets (`Document::open` refuses such files before this).
    pub fn parse(text: &str, delimiter: char) -> Self {
        if text.len() > MAX_TABLE_TEXT {
            return TableBuilder::with_capacity(0).finish(delimiter);
        }
        // Unescaped cells are never longer than the input.
        let out = TableBuilder::with_capacity(text.len());
        // The builder goes in and out by value: behind a `&mut` its fields
        // are reloaded around every call, which cost a sixth of the parse.
        match CsvReader::new(delimiter) {
            Some(mut reader) => {
                let mut out = out;
                reader.feed(text, &mut out);
                reader.finish(&mut out);
                out
            }
            None => Self::parse_chars(text, delimiter, out),
        }
        .finish(delimiter)
    }

    /// [`Table::parse`] character by character, for any other separator.
    fn parse_chars(text: &str, delimiter: char, mut out: TableBuilder) -> TableBuilder {
        let mut chars = text.chars().peekable();
        let mut in_quotes = false;
        let mut row_has_content = false;
        let mut utf8 = [0; 4];
        while let Some(c) = chars.next() {
            if in_quotes {
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        out.push_str("\"");
                    } else {
                        in_quotes = false;
                    }
                } else {
                    out.push_str(c.encode_utf8(&mut utf8));
                }
                continue;
            }
            match c {
                '"' => {
                    in_quotes = true;
                    row_has_content = true;
                }
                '\r' if chars.peek() == Some(&'\n') => {}
                '\n' | '\r' => {
                    out.end_cell();
                    out.end_row();
                    row_has_content = false;
                }
                c if c == delimiter => {
                    out.end_cell();
                    row_has_content = true;
                }
                c => {
                    out.push_str(c.encode_utf8(&mut utf8));
                    row_has_content = true;
                }
            }
        }
        if row_has_content {
            out.end_cell();
            out.end_row();
        }
        out
    }
}

/// RFC 4180 CSV with an ASCII separator, read from text that arrives in
/// pieces (a document decoded as it is decrypted): [`CsvReader::feed`] each
/// piece in order, then [`CsvReader::finish`]; the table is the same however
/// the text was split. Runs of ordinary bytes are copied whole into the
/// builder (a million rows in well under a second). The special bytes are
/// ASCII, so every run ends on a character boundary.
pub(super) struct CsvReader {
    delimiter: u8,
    in_quotes: bool,
    row_has_content: bool,
    /// The last piece ended on a quote inside a quoted field: the next byte
    /// says whether it closes the field or is the first of a doubled quote.
    quote_pending: bool,
    /// The last piece ended on a CR outside quotes: a LF next makes the two
    /// one line break.
    cr_pending: bool,
}

impl CsvReader {
    /// A reader for `delimiter`; `None` unless it is an ASCII character
    /// other than a quote or a line break.
    pub(super) fn new(delimiter: char) -> Option<Self> {
        let byte = u8::try_from(delimiter).ok()?;
        (byte.is_ascii() && byte != b'"' && byte != b'\r' && byte != b'\n').then_some(Self {
            delimiter: byte,
            in_quotes: false,
            row_has_content: false,
            quote_pending: false,
            cr_pending: false,
        })
    }

    /// Reads the next piece of the text into `out`.
    pub(super) fn feed(&mut self, text: &str, out: &mut TableBuilder) {
        if text.is_empty() {
            return; // a pending quote or CR waits for the next byte
        }
        // The builder is worked on by value: behind a `&mut` its fields are
        // reloaded around every call, which cost a sixth of the parse.
        let mut b = std::mem::replace(out, TableBuilder::placeholder());
        let bytes = text.as_bytes();
        let delimiter = self.delimiter;
        let mut in_quotes = self.in_quotes;
        let mut row_has_content = self.row_has_content;
        let mut i = 0;
        if std::mem::take(&mut self.quote_pending) {
            if bytes.first() == Some(&b'"') {
                b.push_str("\"");
                i = 1;
            } else {
                in_quotes = false;
            }
        }
        if std::mem::take(&mut self.cr_pending) && bytes.first() != Some(&b'\n') {
            // A CR alone ends the line.
            b.end_cell();
            b.end_row();
            row_has_content = false;
        }
        let run_end = |from: usize, special: &dyn Fn(u8) -> bool| {
            bytes[from..]
                .iter()
                .position(|&b| special(b))
                .map_or(bytes.len(), |p| from + p)
        };
        while i < bytes.len() {
            if in_quotes {
                let end = run_end(i, &|b| b == b'"');
                b.push_str(&text[i..end]);
                i = end;
                if i < bytes.len() {
                    match bytes.get(i + 1) {
                        Some(&b'"') => {
                            b.push_str("\"");
                            i += 2;
                        }
                        Some(_) => {
                            in_quotes = false;
                            i += 1;
                        }
                        None => {
                            self.quote_pending = true;
                            i += 1;
                        }
                    }
                }
                continue;
            }
            let end = run_end(i, &|b| {
                b == delimiter || b == b'"' || b == b'\r' || b == b'\n'
            });
            if end > i {
                b.push_str(&text[i..end]);
                row_has_content = true;
                i = end;
                continue;
            }
            match bytes[i] {
                b'"' => {
                    in_quotes = true;
                    row_has_content = true;
                }
                b'\r' => match bytes.get(i + 1) {
                    Some(&b'\n') => {}
                    Some(_) => {
                        b.end_cell();
                        b.end_row();
                        row_has_content = false;
                    }
                    None => self.cr_pending = true,
                },
                b'\n' => {
                    b.end_cell();
                    b.end_row();
                    row_has_content = false;
                }
                _ => {
                    // The separator.
                    b.end_cell();
                    row_has_content = true;
                }
            }
            i += 1;
        }
        self.in_quotes = in_quotes;
        self.row_has_content = row_has_content;
        *out = b;
    }

    /// Ends the text: a quote still pending closes its field, a CR still
    /// pending ends its line, and a last line without a line break ends.
    pub(super) fn finish(mut self, out: &mut TableBuilder) {
        if self.cr_pending {
            self.cr_pending = false;
            out.end_cell();
            out.end_row();
            self.row_has_content = false;
        }
        if self.row_has_content {
            out.end_cell();
            out.end_row();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(t: &Table) -> Vec<Vec<&str>> {
        (0..t.row_count()).map(|r| t.row(r).collect()).collect()
    }

    #[test]
    fn csv_with_quotes_crlf_and_empty_cells() {
        let t = Table::parse(
            "id,name,memo\r\n1,\"山田, 太郎\",\"言った \"\"はい\"\"\"\r\n2,,\"two\nlines\"\r\n",
            ',',
        );
        assert_eq!(
            rows(&t),
            vec![
                vec!["id", "name", "memo"],
                vec!["1", "山田, 太郎", "言った \"はい\""],
                vec!["2", "", "two\nlines"],
            ]
        );
        assert_eq!(t.columns(), 3);
        assert_eq!(t.data_rows(), 2);
    }

    #[test]
    fn tsv_and_no_final_newline() {
        let text = "a\tb\n1\t2";
        assert_eq!(sniff_delimiter(text), '\t');
        let t = Table::parse(text, '\t');
        assert_eq!(rows(&t), vec![vec!["a", "b"], vec!["1", "2"]]);
    }

    #[test]
    fn empty_input_has_no_rows() {
        let t = Table::parse("", ',');
        assert_eq!(t.row_count(), 0);
        assert_eq!(t.data_rows(), 0);
        assert!(t.filter("").is_empty());
    }

    #[test]
    fn a_million_rows_parse_into_one_buffer() {
        let mut text = String::from("id,name\n");
        for i in 0..1_000_000 {
            text.push_str(&format!("{i},名前{i}\n"));
        }
        let t = Table::parse(&text, ',');
        assert_eq!(t.data_rows(), 1_000_000);
        assert_eq!(t.filter("名前99999").len(), 11);
        assert_eq!(
            t.row(1_000_000).collect::<Vec<_>>(),
            vec!["999999", "名前999999"]
        );
        assert_eq!(t.text_capacity(), text.len(), "the cell buffer never grew");
    }

    #[test]
    fn the_fast_parser_agrees_with_the_character_parser() {
        let inputs = [
            "id,name,memo\r\n1,\"山田, 太郎\",\"言った \"\"はい\"\"\"\r\n2,,\"two\nlines\"\r\n",
            "a,b\n\n,\n\"\"\n\"open",
            "x\ry\r\nz\n\"q\"tail,\"\"\"\"\n",
            "",
            ",",
            "\n",
        ];
        for text in inputs {
            let fast = Table::parse(text, ',');
            let slow =
                Table::parse_chars(text, ',', TableBuilder::with_capacity(text.len())).finish(',');
            assert_eq!(rows(&fast), rows(&slow), "{text:?}");
            assert_eq!(fast.columns(), slow.columns(), "{text:?}");
        }
    }

    #[test]
    fn text_split_anywhere_reads_as_the_whole() {
        let inputs = [
            "id,name,memo\r\n1,\"山田, 太郎\",\"言った \"\"はい\"\"\"\r\n2,,\"two\nlines\"\r\n",
            "a,b\n\n,\n\"\"\n\"open",
            "x\ry\r\nz\n\"q\"tail,\"\"\"\"\n",
            "a\r",
            "\"a\"",
            "\"a\"\"",
            "",
        ];
        for text in inputs {
            let whole = Table::parse(text, ',');
            let cuts: Vec<usize> = (0..=text.len())
                .filter(|&i| text.is_char_boundary(i))
                .collect();
            for &a in &cuts {
                for &b in cuts.iter().filter(|&&b| b >= a) {
                    let mut reader = CsvReader::new(',').expect("a comma");
                    let mut out = TableBuilder::with_capacity(0);
                    for piece in [&text[..a], &text[a..b], &text[b..]] {
                        reader.feed(piece, &mut out);
                    }
                    reader.finish(&mut out);
                    let split = out.finish(',');
                    assert_eq!(rows(&split), rows(&whole), "{text:?} cut at {a} and {b}");
                    assert_eq!(split.columns(), whole.columns(), "{text:?}");
                }
            }
        }
    }
}
