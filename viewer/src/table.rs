//! CSV/TSV parsing into rows, and the virtualised table view.
//!
//! All cell text lives in ONE zeroizing buffer (sized up front, never
//! grown); rows and cells are offsets into it. A million-row file costs one
//! string plus two offset vectors, and the view lays out only the rows on
//! screen (`ScrollArea::show_rows`).

use std::ops::Range;

use egui::{Label, RichText, ScrollArea, Sense, Ui};
use zeroize::{Zeroize, Zeroizing};

/// A parsed table. The first row is the header.
pub struct Table {
    /// Every cell's text, unescaped, back to back.
    cells: Zeroizing<String>,
    /// End offset of each cell in `cells` (its start is the previous end).
    cell_ends: Vec<usize>,
    /// Index of each row's first cell in `cell_ends`, plus one past the last.
    row_starts: Vec<usize>,
    /// The widest row's cell count.
    columns: usize,
    /// The field separator that was used.
    delimiter: char,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the contents.
        f.debug_struct("Table")
            .field("rows", &self.row_count())
            .field("columns", &self.columns)
            .finish_non_exhaustive()
    }
}

/// The separator: a tab if the first line has more tabs than commas.
pub fn sniff_delimiter(text: &str) -> char {
    let first = text.lines().next().unwrap_or("");
    let tabs = first.matches('\t').count();
    let commas = first.matches(',').count();
    if tabs > commas { '\t' } else { ',' }
}

/// Builds a [`Table`] cell by cell (a workbook sheet): the cell buffer
/// grows only by moving into a larger zeroizing buffer, so no reallocation
/// leaves plaintext behind in freed memory.
pub struct TableBuilder {
    cells: Zeroizing<String>,
    cell_ends: Vec<usize>,
    row_starts: Vec<usize>,
    columns: usize,
}

impl TableBuilder {
    /// A builder whose cell buffer starts with room for `text_len` bytes.
    pub fn with_capacity(text_len: usize) -> Self {
        Self {
            cells: Zeroizing::new(String::with_capacity(text_len)),
            cell_ends: Vec::new(),
            row_starts: vec![0],
            columns: 0,
        }
    }

    /// Ends the current cell.
    pub fn end_cell(&mut self) {
        self.cell_ends.push(self.cells.len());
    }

    /// Ends the current row (after its cells).
    pub fn end_row(&mut self) {
        let start = *self.row_starts.last().expect("never empty");
        self.columns = self.columns.max(self.cell_ends.len() - start);
        self.row_starts.push(self.cell_ends.len());
    }

    /// The table, as if parsed with `delimiter` (used when exporting).
    pub fn finish(self, delimiter: char) -> Table {
        Table {
            cells: self.cells,
            cell_ends: self.cell_ends,
            row_starts: self.row_starts,
            columns: self.columns,
            delimiter,
        }
    }
}

impl std::fmt::Write for TableBuilder {
    /// Appends to the current cell.
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let needed = self.cells.len() + s.len();
        if needed > self.cells.capacity() {
            // Move into a bigger buffer ourselves: String's own growth would
            // free the old allocation without wiping it.
            let mut bigger = Zeroizing::new(String::with_capacity(
                needed.max(self.cells.capacity() * 2).max(64),
            ));
            bigger.push_str(&self.cells);
            self.cells = bigger; // the old buffer is wiped as it drops
        }
        self.cells.push_str(s);
        Ok(())
    }
}

impl Table {
    /// Parses RFC 4180 CSV (or TSV with `delimiter = '\t'`): quoted fields
    /// may hold separators, line breaks and doubled quotes; CRLF and LF both
    /// end a record; a final line break does not start an empty row.
    pub fn parse(text: &str, delimiter: char) -> Self {
        // Unescaped cells are never longer than the input.
        let mut cells = Zeroizing::new(String::with_capacity(text.len()));
        let mut cell_ends = Vec::new();
        let mut row_starts = vec![0];
        let mut columns = 0;
        let mut chars = text.chars().peekable();
        let mut in_quotes = false;
        let mut row_has_content = false;
        while let Some(c) = chars.next() {
            if in_quotes {
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        cells.push('"');
                    } else {
                        in_quotes = false;
                    }
                } else {
                    cells.push(c);
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
                    cell_ends.push(cells.len());
                    let start = *row_starts.last().expect("never empty");
                    columns = columns.max(cell_ends.len() - start);
                    row_starts.push(cell_ends.len());
                    row_has_content = false;
                }
                c if c == delimiter => {
                    cell_ends.push(cells.len());
                    row_has_content = true;
                }
                c => {
                    cells.push(c);
                    row_has_content = true;
                }
            }
        }
        if row_has_content {
            cell_ends.push(cells.len());
            let start = *row_starts.last().expect("never empty");
            columns = columns.max(cell_ends.len() - start);
            row_starts.push(cell_ends.len());
        }
        Self {
            cells,
            cell_ends,
            row_starts,
            columns,
            delimiter,
        }
    }

    /// Rows including the header.
    pub fn row_count(&self) -> usize {
        self.row_starts.len() - 1
    }

    /// Rows after the header.
    pub fn data_rows(&self) -> usize {
        self.row_count().saturating_sub(1)
    }

    /// The widest row's cell count.
    pub fn columns(&self) -> usize {
        self.columns
    }

    /// The separator the file was parsed with.
    pub fn delimiter(&self) -> char {
        self.delimiter
    }

    /// The cells of row `row` (0 is the header).
    pub fn row(&self, row: usize) -> impl Iterator<Item = &str> + '_ {
        let cells = self.row_starts[row]..self.row_starts[row + 1];
        cells.map(move |i| {
            let start = if i == 0 { 0 } else { self.cell_ends[i - 1] };
            &self.cells[start..self.cell_ends[i]]
        })
    }

    /// Data rows (1-based table rows) containing `needle` in any cell,
    /// case-insensitively for ASCII; all of them when `needle` is empty.
    pub fn filter(&self, needle: &str) -> Vec<usize> {
        let rows = 1..self.row_count();
        if needle.is_empty() {
            return rows.collect();
        }
        // No allocation per cell: a million rows filter in well under a second.
        rows.filter(|&r| {
            self.row(r)
                .any(|cell| contains_ignore_ascii_case(cell, needle))
        })
        .collect()
    }

    /// Row `row` as one tab-separated line (what Copy puts on the clipboard).
    pub fn row_as_tsv(&self, row: usize) -> String {
        self.row(row).collect::<Vec<_>>().join("\t")
    }

    /// Writes the table as UTF-8 CSV (with a BOM, so Excel reads it as
    /// UTF-8), quoting cells as RFC 4180 requires. The plaintext passes
    /// through one zeroizing chunk buffer; no other copy is made.
    pub fn write_csv(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        const CHUNK: usize = 64 * 1024;
        let mut buf = Zeroizing::new(Vec::with_capacity(CHUNK * 2));
        buf.extend_from_slice(b"\xEF\xBB\xBF");
        for r in 0..self.row_count() {
            for (c, cell) in self.row(r).enumerate() {
                if c > 0 {
                    buf.push(b',');
                }
                if cell.contains([',', '"', '\n', '\r']) {
                    buf.push(b'"');
                    for part in cell.split_inclusive('"') {
                        buf.extend_from_slice(part.as_bytes());
                        if part.ends_with('"') {
                            buf.push(b'"');
                        }
                    }
                    buf.push(b'"');
                } else {
                    buf.extend_from_slice(cell.as_bytes());
                }
            }
            buf.extend_from_slice(b"\r\n");
            if buf.len() >= CHUNK {
                out.write_all(&buf)?;
                buf.zeroize();
            }
        }
        out.write_all(&buf)?;
        out.flush()
    }

    /// A display width for each column, from the header and the first rows.
    fn column_widths(&self, char_width: f32) -> Vec<f32> {
        let mut widths = vec![4.0_f32; self.columns];
        for r in 0..self.row_count().min(200) {
            for (c, cell) in self.row(r).enumerate() {
                let w: f32 = cell
                    .chars()
                    .map(|ch| if ch.is_ascii() { 1.0 } else { 2.0 })
                    .sum();
                widths[c] = widths[c].max(w);
            }
        }
        widths
            .into_iter()
            .map(|w| (w.min(40.0) + 2.0) * char_width)
            .collect()
    }
}

/// Whether `needle` occurs in `haystack`, ASCII letters compared without case.
fn contains_ignore_ascii_case(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    // Matching bytes of valid UTF-8 against valid UTF-8 only ever matches
    // whole characters, so a byte-wise window is a character-wise match.
    n.is_empty() || n.len() <= h.len() && h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// What the table view needs besides the table.
pub struct TableView<'a> {
    /// The table.
    pub table: &'a Table,
    /// The data rows to show (the filter's result).
    pub visible: &'a [usize],
    /// Whether cells may be selected (the copy right).
    pub selectable: bool,
    /// The clicked row, if selection is allowed.
    pub selected: &'a mut Option<usize>,
}

impl TableView<'_> {
    /// Draws the header and the rows on screen, with a row-number column.
    pub fn show(self, ui: &mut Ui) {
        let Self {
            table,
            visible,
            selectable,
            selected,
        } = self;
        let row_height = ui.text_style_height(&egui::TextStyle::Body);
        let char_width = row_height * 0.55;
        let widths = table.column_widths(char_width);
        let number_width = char_width * (visible.len().max(1).ilog10() as f32 + 3.0);
        ScrollArea::horizontal()
            .id_salt("table-h")
            .auto_shrink(false)
            .show(ui, |ui| {
                let cell = |ui: &mut Ui, width: f32, text: RichText| {
                    ui.add_sized(
                        [width, row_height],
                        Label::new(text).selectable(selectable).truncate(),
                    );
                };
                if table.row_count() > 0 {
                    ui.horizontal(|ui| {
                        cell(ui, number_width, RichText::new("#").strong());
                        for (c, text) in table.row(0).enumerate() {
                            cell(ui, widths[c], RichText::new(text).strong());
                        }
                    });
                    ui.separator();
                }
                ScrollArea::vertical()
                    .id_salt("table-v")
                    .auto_shrink(false)
                    .show_rows(ui, row_height, visible.len(), |ui, range: Range<usize>| {
                        for &row in &visible[range] {
                            ui.horizontal(|ui| {
                                let marker = RichText::new(row.to_string()).weak();
                                let is_selected = *selected == Some(row);
                                let number = ui.add_sized(
                                    [number_width, row_height],
                                    Label::new(if is_selected {
                                        marker.strong().underline()
                                    } else {
                                        marker
                                    })
                                    .selectable(false)
                                    .sense(if selectable {
                                        Sense::click()
                                    } else {
                                        Sense::hover()
                                    }),
                                );
                                if selectable && number.clicked() {
                                    *selected = Some(row);
                                }
                                for (c, text) in table.row(row).enumerate() {
                                    cell(ui, widths[c], RichText::new(text));
                                }
                            });
                        }
                    });
            });
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
    fn filter_matches_any_cell() {
        let t = Table::parse("id,name\n1,Yamada\n2,鈴木\n3,yamamoto\n", ',');
        assert_eq!(t.filter(""), vec![1, 2, 3]);
        assert_eq!(t.filter("YAMA"), vec![1, 3]);
        assert_eq!(t.filter("鈴"), vec![2]);
        assert_eq!(t.row_as_tsv(2), "2\t鈴木");
    }

    #[test]
    fn csv_export_round_trips() {
        let t = Table::parse(
            "id\tmemo\n1\t\"はい\", she said, \"ok\"\n2\tline\nbreak\n",
            '\t',
        );
        let mut out = Vec::new();
        t.write_csv(&mut out).unwrap();
        assert!(out.starts_with(b"\xEF\xBB\xBF"));
        let text = std::str::from_utf8(&out[3..]).unwrap();
        let back = Table::parse(text, ',');
        assert_eq!(rows(&back), rows(&t));
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
        assert_eq!(t.cells.capacity(), text.len(), "the cell buffer never grew");
    }
}
