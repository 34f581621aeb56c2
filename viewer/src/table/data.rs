//! The table itself: every cell's text in one zeroizing buffer with rows
//! and cells as offsets into it ([`Table`]), the one builder every reader
//! fills ([`TableBuilder`]: CSV/TSV in `csv.rs`, workbook sheets in
//! `workbook.rs`), and what is computed over the cells: sorting, searching
//! and writing them out as CSV.
//!
//! A million-row file costs one string plus two offset vectors. Reading
//! CSV is `csv.rs`'s business, how a table stands on screen `state.rs`'s,
//! and drawing it `widget.rs`'s.

use zeroize::{Zeroize, Zeroizing};

/// The cell text of a table, back to back: only ever appended to, and
/// wiped up to its length as it drops.
///
/// Not `Zeroizing<String>`, which wipes the whole capacity: a buffer is
/// never cleared and refilled, so the bytes past its length never held
/// plaintext, and wiping them would touch every page of a capacity that a
/// CP932 list reserves generously (up to three times its bytes, see
/// `stream.rs`) but does not use, making them resident just as the
/// document closes.
struct CellText(String);

impl CellText {
    fn with_capacity(capacity: usize) -> Self {
        Self(String::with_capacity(capacity))
    }

    #[inline]
    fn push_str(&mut self, s: &str) {
        self.0.push_str(s);
    }

    fn capacity(&self) -> usize {
        self.0.capacity()
    }
}

impl std::ops::Deref for CellText {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl Drop for CellText {
    fn drop(&mut self) {
        self.0.as_mut_str().zeroize();
    }
}

/// A parsed table. The first row is the header.
pub struct Table {
    /// Every cell's text, unescaped, back to back.
    cells: CellText,
    /// End offset of each cell in `cells` (its start is the previous end).
    /// `u32` halves the biggest index of a long list (7 million cells for a
    /// million rows): tables hold at most [`MAX_TABLE_TEXT`] bytes.
    cell_ends: Vec<u32>,
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

/// The most text a table holds (4 GiB less one byte), so that every
/// offset fits a `u32`. `Document::open` refuses bigger files first.
pub const MAX_TABLE_TEXT: usize = u32::MAX as usize - 1;

/// `len` as a cell offset; callers keep `len <= MAX_TABLE_TEXT`.
fn offset(len: usize) -> u32 {
    u32::try_from(len).expect("table text is capped at MAX_TABLE_TEXT")
}

/// Builds a [`Table`] cell by cell, for the CSV readers (`csv.rs`) and for
/// workbook sheets: the one place where a cell or a row ends (offsets,
/// column count). The cell buffer grows only by moving into a larger
/// zeroizing buffer, so no reallocation leaves plaintext behind in freed
/// memory.
pub struct TableBuilder {
    cells: CellText,
    cell_ends: Vec<u32>,
    row_starts: Vec<usize>,
    columns: usize,
    /// Whether text was left out for going past [`MAX_TABLE_TEXT`].
    overflowed: bool,
}

impl TableBuilder {
    /// A builder whose cell buffer starts with room for `text_len` bytes.
    pub fn with_capacity(text_len: usize) -> Self {
        Self {
            cells: CellText::with_capacity(text_len),
            cell_ends: Vec::new(),
            row_starts: vec![0],
            columns: 0,
            overflowed: false,
        }
    }

    /// A builder holding nothing and allocating nothing, put in the place
    /// of one taken out by value for a while (`CsvReader::feed`); never
    /// finished.
    pub(super) fn placeholder() -> Self {
        Self {
            cells: CellText::with_capacity(0),
            cell_ends: Vec::new(),
            row_starts: Vec::new(),
            columns: 0,
            overflowed: false,
        }
    }

    /// Whether some text did not fit (the table would be incomplete).
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// Appends `s` to the current cell; past [`MAX_TABLE_TEXT`] it is left
    /// out and [`TableBuilder::overflowed`] says so.
    // Inlined, with growth kept out of line: a CSV reader calls this for
    // every run of text, and the call alone made a million rows parse a
    // sixth slower (docs/PERFORMANCE.md §7).
    #[inline]
    pub fn push_str(&mut self, s: &str) {
        if s.len() > self.cells.capacity() - self.cells.len() && !self.grow(s.len()) {
            return;
        }
        self.cells.push_str(s);
    }

    /// Makes room for `additional` more bytes by moving into a bigger
    /// buffer (String's own growth would free the old allocation without
    /// wiping it); `false`, and [`TableBuilder::overflowed`], past
    /// [`MAX_TABLE_TEXT`].
    #[cold]
    fn grow(&mut self, additional: usize) -> bool {
        let needed = self.cells.len().saturating_add(additional);
        if needed > MAX_TABLE_TEXT {
            self.overflowed = true;
            return false;
        }
        self.move_to(
            needed
                .max(self.cells.capacity() * 2)
                .clamp(64, MAX_TABLE_TEXT),
        );
        true
    }

    /// Moves the cells into a buffer of `capacity` bytes; the old one is
    /// wiped as it drops.
    fn move_to(&mut self, capacity: usize) {
        let mut bigger = CellText::with_capacity(capacity);
        bigger.push_str(&self.cells);
        self.cells = bigger;
    }

    /// Makes room for `total` bytes of cells in all, at once (cheap while
    /// few are written: `stream.rs` calls it when it learns the encoding).
    pub(super) fn reserve_total(&mut self, total: usize) {
        if total > self.cells.capacity() {
            self.move_to(total.min(MAX_TABLE_TEXT));
        }
    }

    /// Ends the current cell.
    pub fn end_cell(&mut self) {
        self.cell_ends.push(offset(self.cells.len()));
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
    /// Appends to the current cell; fails once text went past [`MAX_TABLE_TEXT`].
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.push_str(s);
        if self.overflowed {
            Err(std::fmt::Error)
        } else {
            Ok(())
        }
    }
}

impl Table {
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
            let start = if i == 0 {
                0
            } else {
                self.cell_ends[i - 1] as usize
            };
            &self.cells[start..self.cell_ends[i] as usize]
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

    /// `rows` as tab-separated lines, one a row in the order given (what
    /// Copy puts on the clipboard), in a zeroizing buffer sized up front so
    /// that growing it leaves no copy behind.
    pub fn rows_as_tsv(&self, rows: &[usize]) -> Zeroizing<String> {
        // Each cell with a tab, and a line break a row: a little more than
        // needed, never less.
        let len: usize = rows
            .iter()
            .map(|&r| self.row(r).map(|cell| cell.len() + 1).sum::<usize>() + 1)
            .sum();
        let mut text = Zeroizing::new(String::with_capacity(len));
        for (i, &r) in rows.iter().enumerate() {
            if i > 0 {
                text.push('\n');
            }
            for (c, cell) in self.row(r).enumerate() {
                if c > 0 {
                    text.push('\t');
                }
                text.push_str(cell);
            }
        }
        text
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

    /// How many bytes the cell buffer has room for (to show it never grew).
    #[cfg(test)]
    pub(super) fn text_capacity(&self) -> usize {
        self.cells.capacity()
    }
}

/// Whether `needle` occurs in `haystack`, ASCII letters compared without case.
fn contains_ignore_ascii_case(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    // Matching bytes of valid UTF-8 against valid UTF-8 only ever matches
    // whole characters, so a byte-wise window is a character-wise match.
    n.is_empty() || n.len() <= h.len() && h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// Which way a column is sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Smallest first.
    Ascending,
    /// Largest first.
    Descending,
}

/// A column and a direction to sort by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    /// The column (0-based).
    pub column: usize,
    /// The direction.
    pub direction: Direction,
}

/// A cell as a number, if it reads as one: "1234", "-5.5", "1,234,567".
fn parse_number(cell: &str) -> Option<f64> {
    let t = cell.trim();
    // Not "inf" or "NaN": those are words here, not numbers.
    if !t.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '-' | '+' | '.')) {
        return None;
    }
    if t.contains(',') {
        let plain: String = t.chars().filter(|&c| c != ',').collect();
        plain.parse().ok()
    } else {
        t.parse().ok()
    }
}

impl Table {
    /// The cell at `row`, `column`; `None` past the end of a short row.
    pub fn cell(&self, row: usize, column: usize) -> Option<&str> {
        let first = *self.row_starts.get(row)?;
        let end = *self.row_starts.get(row + 1)?;
        let i = first + column;
        if i >= end {
            return None;
        }
        let start = if i == 0 {
            0
        } else {
            self.cell_ends[i - 1] as usize
        };
        Some(&self.cells[start..self.cell_ends[i] as usize])
    }

    /// Whether any cell of `row` contains `needle` (ASCII case ignored).
    pub fn row_matches(&self, row: usize, needle: &str) -> bool {
        self.row(row)
            .any(|cell| contains_ignore_ascii_case(cell, needle))
    }

    /// The data rows (1-based table rows) ordered by `key`: a permutation of
    /// row numbers; the cells are not moved or copied. Numeric when every
    /// non-empty cell of the column reads as a number, else by text (code
    /// point order); empty cells last either way; stable, so equal cells
    /// keep their order in the file.
    ///
    /// Memory counts here (a million rows, while the whole table is held):
    /// the keys are 16 bytes a row for numbers and 24 for text, sorted in
    /// place (`sort_unstable_by` with the row number as the last key orders
    /// exactly as a stable sort, and needs no scratch buffer as big again),
    /// and empty cells are kept apart.
    pub fn sort_order(&self, key: SortKey) -> Vec<usize> {
        let rows = 1..self.row_count();
        // The index of the column's cell in `cell_ends`, if not empty.
        let cell = |r: usize| {
            let i = self.row_starts[r] + key.column;
            (i < self.row_starts[r + 1] && !self.cell_text(i).trim().is_empty()).then_some(i)
        };
        let mut empty: Vec<u32> = Vec::new();
        // The row numbers are written over the sorted keys, in the same
        // allocation (16-byte keys, 8-byte rows), which then gives its
        // unused half back: no second buffer while a million keys are held.
        let finish = |order: Vec<usize>, empty: Vec<u32>| {
            let mut order = order;
            order.extend(empty.into_iter().map(|r| r as usize));
            order.shrink_to_fit();
            order
        };
        let ordered = |a: std::cmp::Ordering, row_a: u32, row_b: u32| match key.direction {
            Direction::Ascending => a.then(row_a.cmp(&row_b)),
            Direction::Descending => a.reverse().then(row_a.cmp(&row_b)),
        };
        let numbers: Option<Vec<(f64, u32)>> = rows
            .clone()
            .filter_map(|r| match cell(r) {
                None => {
                    empty.push(r as u32);
                    None
                }
                Some(i) => Some(parse_number(self.cell_text(i)).map(|n| (n, r as u32))),
            })
            .collect();
        if let Some(mut keyed) = numbers {
            keyed.sort_unstable_by(|a, b| ordered(a.0.total_cmp(&b.0), a.1, b.1));
            return finish(keyed.into_iter().map(|(_, r)| r as usize).collect(), empty);
        }
        // The first eight bytes, big-endian, decide most comparisons without
        // reading the cell buffer (which is far bigger than the cache); where
        // they are equal the cell is read where it lies (its start and
        // length are in the key: looking them up in `cell_ends` made a
        // list of repeated names sort twice as slowly).
        empty.clear();
        let prefix = |s: &str| {
            let mut p = [0u8; 8];
            let n = s.len().min(8);
            p[..n].copy_from_slice(&s.as_bytes()[..n]);
            u64::from_be_bytes(p)
        };
        let mut keyed: Vec<(u64, u32, u32, u32)> = rows
            .filter_map(|r| match cell(r) {
                None => {
                    empty.push(r as u32);
                    None
                }
                Some(i) => {
                    let (start, end) = self.cell_span(i);
                    let text = &self.cells[start..end];
                    // Offsets fit: the text is at most MAX_TABLE_TEXT.
                    Some((prefix(text), start as u32, (end - start) as u32, r as u32))
                }
            })
            .collect();
        let text = |start: u32, len: u32| {
            let start = start as usize;
            &self.cells[start..start + len as usize]
        };
        keyed.sort_unstable_by(|a, b| {
            let order =
                a.0.cmp(&b.0)
                    .then_with(|| text(a.1, a.2).cmp(text(b.1, b.2)));
            ordered(order, a.3, b.3)
        });
        finish(
            keyed.into_iter().map(|(_, _, _, r)| r as usize).collect(),
            empty,
        )
    }

    /// Where the cell at `i` in `cell_ends` lies in `cells`.
    fn cell_span(&self, i: usize) -> (usize, usize) {
        let start = if i == 0 {
            0
        } else {
            self.cell_ends[i - 1] as usize
        };
        (start, self.cell_ends[i] as usize)
    }

    /// The text of the cell at `i` in `cell_ends`.
    fn cell_text(&self, i: usize) -> &str {
        let (start, end) = self.cell_span(i);
        &self.cells[start..end]
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn rows(t: &Table) -> Vec<Vec<&str>> {
        (0..t.row_count()).map(|r| t.row(r).collect()).collect()
    }

    #[test]
    fn filter_matches_any_cell() {
        let t = Table::parse("id,name\n1,Yamada\n2,鈴木\n3,yamamoto\n", ',');
        assert_eq!(t.filter(""), vec![1, 2, 3]);
        assert_eq!(t.filter("YAMA"), vec![1, 3]);
        assert_eq!(t.filter("鈴"), vec![2]);
        assert_eq!(t.rows_as_tsv(&[2]).as_str(), "2\t鈴木");
        let copied = t.rows_as_tsv(&[3, 1]);
        assert_eq!(
            copied.as_str(),
            "3\tyamamoto\n1\tYamada",
            "in the order given"
        );
        assert_eq!(t.rows_as_tsv(&[]).as_str(), "");
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

    fn column(t: &Table, order: &[usize], c: usize) -> Vec<String> {
        order
            .iter()
            .map(|&r| t.cell(r, c).unwrap_or("").to_owned())
            .collect()
    }

    pub(in crate::table) const AMOUNTS: &str = "id,amount,name\n\
        a,10,山田\n\
        b,9,鈴木\n\
        c,,佐藤\n\
        d,100,\n\
        e,9,高橋\n\
        f,\"1,000\",伊藤\n";

    #[test]
    fn sorting_is_numeric_when_every_cell_is_a_number() {
        let t = Table::parse(AMOUNTS, ',');
        let asc = t.sort_order(SortKey {
            column: 1,
            direction: Direction::Ascending,
        });
        // Text order would put "10" and "100" before "9"; empty cells last.
        assert_eq!(column(&t, &asc, 1), ["9", "9", "10", "100", "1,000", ""]);
        // Equal numbers keep file order (b before e) in both directions.
        assert_eq!(column(&t, &asc, 0), ["b", "e", "a", "d", "f", "c"]);
        let desc = t.sort_order(SortKey {
            column: 1,
            direction: Direction::Descending,
        });
        assert_eq!(column(&t, &desc, 0), ["f", "d", "a", "b", "e", "c"]);
    }

    #[test]
    fn sorting_text_by_code_point_with_empty_cells_last() {
        let t = Table::parse(AMOUNTS, ',');
        let asc = t.sort_order(SortKey {
            column: 2,
            direction: Direction::Ascending,
        });
        assert_eq!(
            column(&t, &asc, 2),
            ["伊藤", "佐藤", "山田", "鈴木", "高橋", ""]
        );
        let desc = t.sort_order(SortKey {
            column: 2,
            direction: Direction::Descending,
        });
        assert_eq!(
            column(&t, &desc, 2),
            ["高橋", "鈴木", "山田", "佐藤", "伊藤", ""]
        );
        // One non-number makes the whole column text; a shared 8-byte
        // prefix is decided by the rest of the cell.
        let t = Table::parse("k\n9\nx\n10\nprefix-long-b\nprefix-long-a\n", ',');
        let asc = t.sort_order(SortKey {
            column: 0,
            direction: Direction::Ascending,
        });
        assert_eq!(
            column(&t, &asc, 0),
            ["10", "9", "prefix-long-a", "prefix-long-b", "x"]
        );
    }

    #[test]
    fn sorting_is_a_permutation_and_short_rows_sort_as_empty() {
        let t = Table::parse("a,b\n1,z\n2\n3,y\n", ',');
        let mut order = t.sort_order(SortKey {
            column: 1,
            direction: Direction::Ascending,
        });
        assert_eq!(order, [3, 1, 2]);
        order.sort_unstable();
        assert_eq!(order, [1, 2, 3]);
        assert!(
            Table::parse("", ',')
                .sort_order(SortKey {
                    column: 0,
                    direction: Direction::Ascending
                })
                .is_empty()
        );
    }
}
