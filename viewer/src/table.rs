//! CSV/TSV parsing into rows, sorting and searching them, and the
//! virtualised table view (sortable, resizable columns, search matches
//! highlighted and scrolled into view).
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

/// The separator: a tab if the first line has more tabs than commas.
pub fn sniff_delimiter(text: &str) -> char {
    let first = text.lines().next().unwrap_or("");
    let tabs = first.matches('\t').count();
    let commas = first.matches(',').count();
    if tabs > commas { '\t' } else { ',' }
}

/// Builds a [`Table`] cell by cell, for the CSV readers below and for
/// workbook sheets: the one place where a cell or a row ends (offsets,
/// column count). The cell buffer grows only by moving into a larger
/// zeroizing buffer, so no reallocation leaves plaintext behind in freed
/// memory.
pub struct TableBuilder {
    cells: Zeroizing<String>,
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
            cells: Zeroizing::new(String::with_capacity(text_len)),
            cell_ends: Vec::new(),
            row_starts: vec![0],
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
    pub fn push_str(&mut self, s: &str) {
        let needed = self.cells.len() + s.len();
        if needed > MAX_TABLE_TEXT {
            self.overflowed = true;
            return;
        }
        if needed > self.cells.capacity() {
            // Move into a bigger buffer ourselves: String's own growth would
            // free the old allocation without wiping it.
            let mut bigger = Zeroizing::new(String::with_capacity(
                needed
                    .max(self.cells.capacity() * 2)
                    .clamp(64, MAX_TABLE_TEXT),
            ));
            bigger.push_str(&self.cells);
            self.cells = bigger; // the old buffer is wiped as it drops
        }
        self.cells.push_str(s);
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
        let mut out = TableBuilder::with_capacity(text.len());
        match u8::try_from(delimiter) {
            Ok(byte) if byte.is_ascii() && byte != b'"' && byte != b'\r' && byte != b'\n' => {
                Self::parse_ascii_delimited(text, byte, &mut out)
            }
            _ => Self::parse_chars(text, delimiter, &mut out),
        }
        out.finish(delimiter)
    }

    /// [`Table::parse`] for an ASCII separator: runs of ordinary bytes are
    /// copied whole (a million rows in well under a second). The special
    /// bytes are ASCII, so every run ends on a character boundary.
    fn parse_ascii_delimited(text: &str, delimiter: u8, out: &mut TableBuilder) {
        let bytes = text.as_bytes();
        let mut in_quotes = false;
        let mut row_has_content = false;
        let mut i = 0;
        let run_end = |from: usize, special: &dyn Fn(u8) -> bool| {
            bytes[from..]
                .iter()
                .position(|&b| special(b))
                .map_or(bytes.len(), |p| from + p)
        };
        while i < bytes.len() {
            if in_quotes {
                let end = run_end(i, &|b| b == b'"');
                out.push_str(&text[i..end]);
                i = end;
                if i < bytes.len() {
                    if bytes.get(i + 1) == Some(&b'"') {
                        out.push_str("\"");
                        i += 2;
                    } else {
                        in_quotes = false;
                        i += 1;
                    }
                }
                continue;
            }
            let end = run_end(i, &|b| {
                b == delimiter || b == b'"' || b == b'\r' || b == b'\n'
            });
            if end > i {
                out.push_str(&text[i..end]);
                row_has_content = true;
                i = end;
                continue;
            }
            match bytes[i] {
                b'"' => {
                    in_quotes = true;
                    row_has_content = true;
                }
                b'\r' if bytes.get(i + 1) == Some(&b'\n') => {}
                b'\n' | b'\r' => {
                    out.end_cell();
                    out.end_row();
                    row_has_content = false;
                }
                _ => {
                    // The separator.
                    out.end_cell();
                    row_has_content = true;
                }
            }
            i += 1;
        }
        if row_has_content {
            out.end_cell();
            out.end_row();
        }
    }

    /// [`Table::parse`] character by character, for any other separator.
    fn parse_chars(text: &str, delimiter: char, out: &mut TableBuilder) {
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

/// Orders two keys with empty cells last in either direction; equal keys
/// compare equal, so a stable sort keeps file order among them.
fn order<T>(
    a: Option<T>,
    b: Option<T>,
    direction: Direction,
    cmp: impl Fn(&T, &T) -> std::cmp::Ordering,
) -> std::cmp::Ordering {
    use std::cmp::Ordering::{Equal, Greater, Less};
    match (a, b) {
        (None, None) => Equal,
        (None, Some(_)) => Greater,
        (Some(_), None) => Less,
        (Some(a), Some(b)) => match direction {
            Direction::Ascending => cmp(&a, &b),
            Direction::Descending => cmp(&b, &a),
        },
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
    pub fn sort_order(&self, key: SortKey) -> Vec<usize> {
        let rows = 1..self.row_count();
        let text = |r: usize| self.cell(r, key.column).filter(|c| !c.trim().is_empty());
        let numbers: Option<Vec<(Option<f64>, u32)>> = rows
            .clone()
            .map(|r| match text(r) {
                None => Some((None, r as u32)),
                Some(cell) => parse_number(cell).map(|n| (Some(n), r as u32)),
            })
            .collect();
        if let Some(mut keyed) = numbers {
            keyed.sort_by(|a, b| order(a.0, b.0, key.direction, f64::total_cmp));
            return keyed.into_iter().map(|(_, r)| r as usize).collect();
        }
        // The first eight bytes, big-endian, decide most comparisons without
        // reading the cell buffer (which is far bigger than the cache).
        let prefix = |s: &str| {
            let mut p = [0u8; 8];
            let n = s.len().min(8);
            p[..n].copy_from_slice(&s.as_bytes()[..n]);
            u64::from_be_bytes(p)
        };
        let mut keyed: Vec<(Option<(u64, &str)>, u32)> = rows
            .map(|r| (text(r).map(|c| (prefix(c), c)), r as u32))
            .collect();
        keyed.sort_by(|a, b| {
            order(a.0, b.0, key.direction, |x, y| {
                x.0.cmp(&y.0).then_with(|| x.1.cmp(y.1))
            })
        });
        keyed.into_iter().map(|(_, r)| r as usize).collect()
    }
}

/// Rows above which a sort runs on its own thread, so the window keeps
/// drawing (a million rows take about a second).
pub const BACKGROUND_SORT_ROWS: usize = 50_000;

/// How one table stands in the UI: its sort, the rows shown, the search
/// and its matches, column widths and the selected row. Reset when another
/// document or sheet is shown.
#[derive(Default)]
pub struct TableState {
    /// The requested sort (shown in the header even while it is computed).
    pub sort: Option<SortKey>,
    /// The computed permutation for a sort.
    order: Option<(SortKey, Vec<usize>)>,
    /// A sort being computed on another thread.
    pending: Option<(SortKey, std::sync::mpsc::Receiver<Vec<usize>>)>,
    /// The filter and sort `visible` was computed for.
    applied: Option<(Zeroizing<String>, Option<SortKey>)>,
    /// The data rows shown, in order.
    visible: Vec<usize>,
    /// The search box.
    pub search: String,
    /// The search `matches` were computed for.
    searched: Option<Zeroizing<String>>,
    /// Positions in `visible` of rows that contain the search text.
    matches: Vec<usize>,
    /// The current match (an index into `matches`).
    current: Option<usize>,
    /// A position in `visible` to bring into view next frame.
    scroll_to: Option<usize>,
    /// Column widths in points, once laid out (dragging changes them).
    widths: Vec<f32>,
    /// The first and last positions in `visible` on screen last frame.
    on_screen: Option<(usize, usize)>,
    /// The clicked row, if selection is allowed.
    pub selected: Option<usize>,
}

impl TableState {
    /// The rows shown, in order.
    pub fn visible(&self) -> &[usize] {
        &self.visible
    }

    /// Whether a sort is being computed.
    pub fn sorting(&self) -> bool {
        self.pending.is_some()
    }

    /// Rows that match the search (positions in [`TableState::visible`]).
    pub fn matches(&self) -> &[usize] {
        &self.matches
    }

    /// The current match's position in [`TableState::visible`].
    pub fn current_match(&self) -> Option<usize> {
        self.current.and_then(|i| self.matches.get(i).copied())
    }

    /// "3 / 120" for the third of 120 matches.
    pub fn match_counter(&self) -> Option<String> {
        let current = self.current?;
        Some(format!("{} / {}", current + 1, self.matches.len()))
    }

    /// Column widths in points (empty until first drawn).
    pub fn column_widths(&self) -> &[f32] {
        &self.widths
    }

    /// The first and last rows (positions in `visible`) drawn last frame.
    pub fn on_screen(&self) -> Option<(usize, usize)> {
        self.on_screen
    }

    /// Sorts by `column`: ascending first, then flipping on each click.
    /// `run` computes the order: here for small tables, or handed a job to
    /// run on another thread for big ones.
    pub fn sort_by(
        &mut self,
        table: &Table,
        column: usize,
        spawn: impl FnOnce(SortKey, std::sync::mpsc::Sender<Vec<usize>>),
    ) {
        let direction = match self.sort {
            Some(k) if k.column == column && k.direction == Direction::Ascending => {
                Direction::Descending
            }
            _ => Direction::Ascending,
        };
        let key = SortKey { column, direction };
        self.sort = Some(key);
        if table.data_rows() < BACKGROUND_SORT_ROWS {
            self.order = Some((key, table.sort_order(key)));
            self.pending = None;
        } else {
            let (tx, rx) = std::sync::mpsc::channel();
            spawn(key, tx);
            self.pending = Some((key, rx));
        }
    }

    /// Brings the rows shown and the search matches up to date with
    /// `filter`, `self.search` and any finished sort.
    pub fn refresh(&mut self, table: &Table, filter: &str) {
        if let Some((key, rx)) = &self.pending {
            match rx.try_recv() {
                Ok(order) => {
                    self.order = Some((*key, order));
                    self.pending = None;
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => {}
                Err(std::sync::mpsc::TryRecvError::Disconnected) => self.pending = None,
            }
        }
        let sorted = self.order.as_ref().map(|(k, _)| *k);
        let stale = self
            .applied
            .as_ref()
            .is_none_or(|(f, k)| f.as_str() != filter || *k != sorted);
        if stale {
            let filter_changed = self
                .applied
                .as_ref()
                .is_none_or(|(f, _)| f.as_str() != filter);
            self.visible = match &self.order {
                None => table.filter(filter),
                Some((_, order)) if filter.is_empty() => order.clone(),
                Some((_, order)) => order
                    .iter()
                    .copied()
                    .filter(|&r| table.row_matches(r, filter))
                    .collect(),
            };
            self.applied = Some((Zeroizing::new(filter.to_owned()), sorted));
            self.searched = None;
            if filter_changed {
                self.selected = None;
            }
        }
        if self
            .searched
            .as_ref()
            .is_none_or(|s| s.as_str() != self.search)
        {
            self.matches = if self.search.is_empty() {
                Vec::new()
            } else {
                (0..self.visible.len())
                    .filter(|&i| table.row_matches(self.visible[i], &self.search))
                    .collect()
            };
            self.current = (!self.matches.is_empty()).then_some(0);
            self.scroll_to = self.current_match();
            self.searched = Some(Zeroizing::new(self.search.clone()));
        }
    }

    /// Moves to the next match (wrapping), or the previous one.
    pub fn step_match(&mut self, forward: bool) {
        let n = self.matches.len();
        if n == 0 {
            return;
        }
        self.current = Some(match (self.current, forward) {
            (None, true) => 0,
            (None, false) => n - 1,
            (Some(i), true) => (i + 1) % n,
            (Some(i), false) => (i + n - 1) % n,
        });
        self.scroll_to = self.current_match();
    }

    /// Forgets everything (the document or sheet changed or closed); the
    /// search text is wiped.
    pub fn reset(&mut self) {
        self.search.zeroize();
        *self = Self::default();
    }
}

/// The header's sort-column tooltip and the like, in the UI language.
pub struct HeaderTexts {
    /// Tooltip on a column header.
    pub sort_help: &'static str,
    /// Tooltip on a column's resize handle.
    pub resize_help: &'static str,
}

/// What the table view needs besides the table.
pub struct TableView<'a> {
    /// The table.
    pub table: &'a Table,
    /// Sort, rows shown, search and widths.
    pub state: &'a mut TableState,
    /// Whether cells may be selected (the copy right).
    pub selectable: bool,
    /// Header tooltips.
    pub texts: HeaderTexts,
}

/// Width of the drag handle after each column header.
const HANDLE_WIDTH: f32 = 6.0;

impl TableView<'_> {
    /// Draws the header and the rows on screen, with a row-number column;
    /// returns the column whose header was clicked (to sort by).
    pub fn show(self, ui: &mut Ui) -> Option<usize> {
        let Self {
            table,
            state,
            selectable,
            texts,
        } = self;
        let row_height = ui.text_style_height(&egui::TextStyle::Body);
        let char_width = row_height * 0.55;
        if state.widths.len() != table.columns() {
            state.widths = table.column_widths(char_width);
        }
        let visible = &state.visible;
        let number_width = char_width * (visible.len().max(1).ilog10() as f32 + 3.0);
        let mut clicked = None;
        let current = state.current_match();
        let highlight = ui.visuals().selection.bg_fill;
        let faint = highlight.gamma_multiply(0.35);
        ScrollArea::horizontal()
            .id_salt("table-h")
            .auto_shrink(false)
            .show(ui, |ui| {
                let cell = |ui: &mut Ui, width: f32, text: RichText| {
                    ui.add_sized(
                        [width, row_height],
                        Label::new(text).selectable(selectable).truncate(),
                    );
                    ui.add_space(HANDLE_WIDTH);
                };
                if table.row_count() > 0 {
                    ui.horizontal(|ui| {
                        ui.add_sized(
                            [number_width, row_height],
                            Label::new(RichText::new("#").strong()),
                        );
                        ui.add_space(HANDLE_WIDTH);
                        for (c, text) in table.row(0).enumerate() {
                            let arrow = match state.sort {
                                Some(k) if k.column == c => match k.direction {
                                    Direction::Ascending => " ▲",
                                    Direction::Descending => " ▼",
                                },
                                _ => "",
                            };
                            let header = ui
                                .add_sized(
                                    [state.widths[c], row_height],
                                    Label::new(RichText::new(format!("{text}{arrow}")).strong())
                                        .selectable(false)
                                        .sense(Sense::click())
                                        .truncate(),
                                )
                                .on_hover_text(texts.sort_help);
                            if header.clicked() {
                                clicked = Some(c);
                            }
                            let (rect, handle) = ui.allocate_exact_size(
                                egui::vec2(HANDLE_WIDTH, row_height),
                                Sense::drag(),
                            );
                            let handle = handle
                                .on_hover_cursor(egui::CursorIcon::ResizeColumn)
                                .on_hover_text(texts.resize_help);
                            if handle.dragged() {
                                state.widths[c] =
                                    (state.widths[c] + handle.drag_delta().x).max(2.0 * char_width);
                            }
                            ui.painter().vline(
                                rect.center().x,
                                rect.y_range(),
                                ui.visuals().widgets.noninteractive.bg_stroke,
                            );
                        }
                    });
                    ui.separator();
                }
                let spacing = ui.spacing().item_spacing.y;
                let mut scroll = ScrollArea::vertical().id_salt("table-v").auto_shrink(false);
                if let Some(target) = state.scroll_to.take() {
                    let shown = state
                        .on_screen
                        .is_some_and(|(first, last)| first < target && target < last);
                    if !shown {
                        // Centre the row: offset of its top minus half the view.
                        let view = ui.available_height();
                        let top = target as f32 * (row_height + spacing);
                        scroll = scroll
                            .vertical_scroll_offset((top - (view - row_height) / 2.0).max(0.0));
                    }
                }
                let widths = &state.widths;
                let selected = &mut state.selected;
                let matches = &state.matches;
                let mut drawn = None;
                scroll.show_rows(ui, row_height, visible.len(), |ui, range: Range<usize>| {
                    drawn = Some((range.start, range.end.saturating_sub(1)));
                    for (pos, &row) in range.clone().zip(&visible[range]) {
                        let is_match = matches.binary_search(&pos).is_ok();
                        if is_match {
                            let rect = egui::Rect::from_min_size(
                                ui.cursor().min,
                                egui::vec2(ui.available_width(), row_height),
                            );
                            let fill = if current == Some(pos) {
                                highlight
                            } else {
                                faint
                            };
                            ui.painter().rect_filled(rect, 2.0, fill);
                        }
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
                            ui.add_space(HANDLE_WIDTH);
                            if selectable && number.clicked() {
                                *selected = Some(row);
                            }
                            for (c, text) in table.row(row).enumerate() {
                                cell(ui, widths[c], RichText::new(text));
                            }
                        });
                    }
                });
                state.on_screen = drawn;
            });
        clicked
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

    fn column(t: &Table, order: &[usize], c: usize) -> Vec<String> {
        order
            .iter()
            .map(|&r| t.cell(r, c).unwrap_or("").to_owned())
            .collect()
    }

    const AMOUNTS: &str = "id,amount,name\n\
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

    #[test]
    fn clicking_a_column_twice_reverses_and_the_filter_keeps_the_order() {
        let t = Table::parse(AMOUNTS, ',');
        let mut state = TableState::default();
        state.refresh(&t, "");
        assert_eq!(state.visible(), [1, 2, 3, 4, 5, 6]);
        let no_thread = |_, _| panic!("a small table sorts in place");
        state.sort_by(&t, 1, no_thread);
        state.refresh(&t, "");
        assert_eq!(state.visible(), [2, 5, 1, 4, 6, 3]);
        state.sort_by(&t, 1, no_thread);
        assert_eq!(
            state.sort,
            Some(SortKey {
                column: 1,
                direction: Direction::Descending
            })
        );
        state.refresh(&t, "");
        assert_eq!(state.visible(), [6, 4, 1, 2, 5, 3]);
        state.refresh(&t, "藤");
        assert_eq!(
            state.visible(),
            [6, 3],
            "filtered rows stay in sorted order"
        );
    }

    #[test]
    fn search_steps_through_matching_rows_and_wraps() {
        let t = Table::parse("id,name\n1,山田\n2,鈴木\n3,山本\n4,田中\n", ',');
        let mut state = TableState::default();
        state.refresh(&t, "");
        assert_eq!(state.match_counter(), None);
        state.search = "山".into();
        state.refresh(&t, "");
        assert_eq!(state.matches(), [0, 2]);
        assert_eq!(state.match_counter().as_deref(), Some("1 / 2"));
        assert_eq!(state.current_match(), Some(0));
        state.step_match(true);
        assert_eq!(
            (state.match_counter().as_deref(), state.current_match()),
            (Some("2 / 2"), Some(2))
        );
        state.step_match(true);
        assert_eq!(state.current_match(), Some(0), "wraps to the first");
        state.step_match(false);
        assert_eq!(state.current_match(), Some(2), "and back to the last");
        // Matches are positions in the rows shown, so they follow a sort.
        state.sort_by(&t, 1, |_, _| unreachable!());
        state.refresh(&t, "");
        assert_eq!(state.visible(), [3, 1, 4, 2]); // 山本 山田 田中 鈴木 (code points)
        assert_eq!(state.matches(), [0, 1]);
        state.search = "nothing".into();
        state.refresh(&t, "");
        assert_eq!((state.matches().len(), state.match_counter()), (0, None));
    }

    #[test]
    fn a_big_sort_is_handed_to_another_thread() {
        let mut text = String::from("n\n");
        for i in (0..BACKGROUND_SORT_ROWS).rev() {
            text.push_str(&format!("{i}\n"));
        }
        let t = Table::parse(&text, ',');
        let mut state = TableState::default();
        let mut job = None;
        state.sort_by(&t, 0, |key, done| job = Some((key, done)));
        let (key, done) = job.expect("the job was handed out");
        assert!(state.sorting());
        done.send(t.sort_order(key)).unwrap();
        state.refresh(&t, "");
        assert!(!state.sorting());
        assert_eq!(state.visible().first(), Some(&BACKGROUND_SORT_ROWS));
        assert_eq!(t.cell(state.visible()[0], 0), Some("0"));
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
            let mut out = TableBuilder::with_capacity(text.len());
            Table::parse_chars(text, ',', &mut out);
            let slow = out.finish(',');
            assert_eq!(rows(&fast), rows(&slow), "{text:?}");
            assert_eq!(fast.columns(), slow.columns(), "{text:?}");
        }
    }
}
