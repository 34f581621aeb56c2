//! How one table stands in the UI ([`TableState`]): its sort (computed
//! here, or on another thread for a big table), the rows the filter lets
//! through, the search and its matches, column widths, the scroll position
//! and the row cursor with its selection (whose rules are `cursor.rs`'s).
//! The cells are `data.rs`'s; drawing them and reading keys is
//! `widget.rs`'s.

use zeroize::{Zeroize, Zeroizing};

use super::cursor::{Move, RowCursor};
use super::data::{Direction, SortKey, Table};

/// Rows above which a sort runs on its own thread, so the window keeps
/// drawing (a million rows take about a second).
pub const BACKGROUND_SORT_ROWS: usize = 50_000;

/// How one table stands in the UI: its sort, the rows shown, the search
/// and its matches, column widths, the scroll position and the row cursor.
/// Reset when another document or sheet is shown.
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
    pub(super) visible: Vec<usize>,
    /// The search box.
    pub search: String,
    /// The search `matches` were computed for.
    searched: Option<Zeroizing<String>>,
    /// Positions in `visible` of rows that contain the search text.
    pub(super) matches: Vec<usize>,
    /// The current match (an index into `matches`).
    current: Option<usize>,
    /// A position in `visible` to bring into view next frame.
    pub(super) scroll_to: Option<usize>,
    /// An exact scroll offset to show next frame (the cursor moved).
    pub(super) scroll_offset: Option<f32>,
    /// Column widths in points, once laid out (dragging changes them).
    pub(super) widths: Vec<f32>,
    /// Whether "fit columns" was asked for: the widget, which knows the
    /// fonts and the width there is, does it next frame.
    pub(super) fit_requested: bool,
    /// The first and last positions in `visible` drawn last frame.
    pub(super) on_screen: Option<(usize, usize)>,
    /// The vertical scroll offset and the height of the rows' viewport
    /// last frame, in points: where the cursor is on screen, and a page.
    pub(super) viewport: (f32, f32),
    /// The cursor and the selection, as positions in `visible`.
    pub(super) cursor: RowCursor,
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

    /// Sizes the columns to fit the width there is, next time the table is
    /// drawn (the toolbar's "fit columns").
    pub fn request_fit_columns(&mut self) {
        self.fit_requested = true;
    }

    /// The cursor's position in [`TableState::visible`].
    pub fn cursor(&self) -> Option<usize> {
        self.cursor.at()
    }

    /// The data rows Ctrl+C copies, in view order: the selection, or the
    /// cursor row alone; empty without a cursor.
    pub fn selected_rows(&self) -> &[usize] {
        self.cursor
            .selection()
            .and_then(|range| self.visible.get(range))
            .unwrap_or_default()
    }

    /// Moves the cursor (keys, clicks) and scrolls so that it stays in
    /// view. Page Up and Page Down scroll by the page too, so the cursor
    /// keeps its place on screen, as in a spreadsheet. `row_step` is a
    /// row's height with the spacing under it, `row_height` without.
    pub(super) fn move_cursor(&mut self, step: Move, extend: bool, row_step: f32, row_height: f32) {
        let (offset, view) = self.viewport;
        // A page is the rows wholly in view; the top one is the first whose
        // top edge is not scrolled past.
        let page = (view / row_step).floor() as usize;
        let top = (offset / row_step).ceil() as usize;
        let from = self.cursor.at().unwrap_or(top);
        let Some(at) = self
            .cursor
            .apply(step, extend, self.visible.len(), page, top)
        else {
            return;
        };
        let mut offset = offset;
        if matches!(step, Move::PageUp | Move::PageDown) {
            offset += (at as f32 - from as f32) * row_step;
        }
        let row_top = at as f32 * row_step;
        if row_top < offset {
            offset = row_top;
        } else if row_top + row_height > offset + view {
            offset = row_top + row_height - view;
        }
        self.scroll_offset = Some(offset.max(0.0));
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
            let shown = match &self.order {
                None => table.filter(filter),
                Some((_, order)) if filter.is_empty() => order.clone(),
                Some((_, order)) => order
                    .iter()
                    .copied()
                    .filter(|&r| table.row_matches(r, filter))
                    .collect(),
            };
            let before = std::mem::replace(&mut self.visible, shown);
            self.cursor.follow(&before, &self.visible);
            self.applied = Some((Zeroizing::new(filter.to_owned()), sorted));
            self.searched = None;
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

#[cfg(test)]
mod tests {
    use super::super::cursor::Move;
    use super::super::data::tests::AMOUNTS;
    use super::*;

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
    fn the_selection_is_rows_of_the_view_and_the_cursor_follows_its_row() {
        let t = Table::parse(AMOUNTS, ',');
        let mut state = TableState::default();
        state.refresh(&t, "");
        assert_eq!(state.selected_rows(), [] as [usize; 0], "no cursor yet");
        state.move_cursor(Move::To(1), false, 20.0, 18.0);
        state.move_cursor(Move::Down, true, 20.0, 18.0);
        assert_eq!(state.selected_rows(), [2, 3]);
        // Sorted: the cursor stays on data row 3, the range goes.
        state.sort_by(&t, 1, |_, _| unreachable!("small"));
        state.refresh(&t, "");
        assert_eq!(state.visible(), [2, 5, 1, 4, 6, 3]);
        assert_eq!((state.cursor(), state.selected_rows()), (Some(5), &[3][..]));
        // Filtered: Home goes to the first row shown.
        state.refresh(&t, "藤");
        assert_eq!(state.selected_rows(), [3]);
        state.move_cursor(Move::First, false, 20.0, 18.0);
        assert_eq!(state.selected_rows(), [6]);
    }

    #[test]
    fn the_cursor_scrolls_into_view_and_pages_scroll_by_a_page() {
        let t = Table::parse(&format!("n\n{}", "x\n".repeat(1000)), ',');
        let mut state = TableState::default();
        state.refresh(&t, "");
        // 100 points of view, 20 a row: five rows to a page.
        state.viewport = (0.0, 100.0);
        let go = |state: &mut TableState, step, extend| {
            state.move_cursor(step, extend, 20.0, 18.0);
            let offset = state.scroll_offset.take().expect("scrolls");
            state.viewport.0 = offset;
            (state.cursor().unwrap(), offset)
        };
        assert_eq!(
            go(&mut state, Move::Down, false),
            (0, 0.0),
            "in view: no scroll"
        );
        assert_eq!(go(&mut state, Move::PageDown, false), (5, 100.0));
        assert_eq!(go(&mut state, Move::PageDown, true), (10, 200.0));
        assert_eq!(state.selected_rows().len(), 6, "rows 5 to 10");
        assert_eq!(go(&mut state, Move::PageUp, false), (5, 100.0));
        // Down to the row under the view: just enough to show it whole.
        for _ in 0..4 {
            go(&mut state, Move::Down, false);
        }
        assert_eq!(go(&mut state, Move::Down, false), (10, 118.0));
        assert_eq!(
            go(&mut state, Move::Last, false),
            (999, 19_980.0 + 18.0 - 100.0)
        );
        assert_eq!(go(&mut state, Move::First, false), (0, 0.0));
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
}
