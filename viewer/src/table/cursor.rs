//! The row cursor and the selection ([`RowCursor`]): which row of the view
//! the keyboard is on, and which rows Ctrl+C copies. Positions are indices
//! into the rows the table shows (`TableState::visible`, filtered and
//! sorted), so Page Down and Shift+click work on what is on screen. Which
//! key means which [`Move`], and scrolling the cursor into view, are
//! `widget.rs`'s; what a copy does with the rows is the app's.

use std::ops::RangeInclusive;

/// One way to move the cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Move {
    /// One row up (Up arrow).
    Up,
    /// One row down (Down arrow).
    Down,
    /// A page up (Page Up).
    PageUp,
    /// A page down (Page Down).
    PageDown,
    /// The first row (Home, Ctrl+Home).
    First,
    /// The last row (End, Ctrl+End).
    Last,
    /// A row clicked, by its position in the view.
    To(usize),
}

impl Move {
    /// The move a key makes in the table, if any: Home and End with or
    /// without Ctrl go to the first and last row, as in a spreadsheet.
    pub(super) fn for_key(key: egui::Key) -> Option<Self> {
        Some(match key {
            egui::Key::ArrowUp => Self::Up,
            egui::Key::ArrowDown => Self::Down,
            egui::Key::PageUp => Self::PageUp,
            egui::Key::PageDown => Self::PageDown,
            egui::Key::Home => Self::First,
            egui::Key::End => Self::Last,
            _ => return None,
        })
    }
}

/// The cursor row and the anchor a Shift-move extends the selection from.
/// The selection is every row between the two, or the cursor row alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct RowCursor {
    at: Option<usize>,
    anchor: Option<usize>,
}

impl RowCursor {
    /// The cursor's position in the view.
    pub(super) fn at(&self) -> Option<usize> {
        self.at
    }

    /// The selected positions: from the anchor to the cursor, or the cursor
    /// row alone; `None` without a cursor.
    pub(super) fn selection(&self) -> Option<RangeInclusive<usize>> {
        let at = self.at?;
        let anchor = self.anchor.unwrap_or(at);
        Some(at.min(anchor)..=at.max(anchor))
    }

    /// Whether `pos` is selected.
    pub(super) fn is_selected(&self, pos: usize) -> bool {
        self.selection().is_some_and(|range| range.contains(&pos))
    }

    /// Moves the cursor in a view of `len` rows, `page` rows to a page.
    /// Without a cursor, an arrow key lands on `top` (the first row on
    /// screen) rather than stepping past it. `extend` (Shift) keeps the
    /// anchor where the selection started; otherwise the selection is the
    /// cursor row alone. Returns the new position.
    pub(super) fn apply(
        &mut self,
        step: Move,
        extend: bool,
        len: usize,
        page: usize,
        top: usize,
    ) -> Option<usize> {
        if len == 0 {
            *self = Self::default();
            return None;
        }
        let last = len - 1;
        let page = page.max(1);
        let from = self.at.map_or(top.min(last), |at| at.min(last));
        let to = match (step, self.at) {
            (Move::Up | Move::Down, None) => from,
            (Move::Up, Some(_)) => from.saturating_sub(1),
            (Move::Down, Some(_)) => (from + 1).min(last),
            (Move::PageUp, _) => from.saturating_sub(page),
            (Move::PageDown, _) => from.saturating_add(page).min(last),
            (Move::First, _) => 0,
            (Move::Last, _) => last,
            (Move::To(pos), _) => pos.min(last),
        };
        self.anchor = if extend {
            Some(self.anchor.unwrap_or(from))
        } else {
            None
        };
        self.at = Some(to);
        self.at
    }

    /// Follows the cursor's row into a new view (the filter or sort
    /// changed): it stays on the same data row if that row is still shown,
    /// else it goes. A range selected in the old order means nothing in the
    /// new one, so the selection shrinks to the cursor row.
    pub(super) fn follow(&mut self, old_view: &[usize], new_view: &[usize]) {
        let row = self.at.and_then(|at| old_view.get(at));
        self.at = row.and_then(|row| new_view.iter().position(|r| r == row));
        self.anchor = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Applies each move (without Shift unless marked) and collects where
    /// the cursor lands, over 100 rows with 10 to a page.
    fn walk(moves: &[(Move, bool)]) -> (Vec<Option<usize>>, RowCursor) {
        let mut cursor = RowCursor::default();
        let landed = moves
            .iter()
            .map(|&(step, extend)| cursor.apply(step, extend, 100, 10, 40))
            .collect();
        (landed, cursor)
    }

    #[test]
    fn keys_move_the_cursor_within_the_view() {
        let cases: [(&str, Vec<Move>, Vec<usize>); 6] = [
            (
                "the first arrow lands on the top row shown",
                vec![Move::Down, Move::Down, Move::Up],
                vec![40, 41, 40],
            ),
            (
                "pages",
                vec![Move::PageDown, Move::PageDown, Move::PageUp],
                vec![50, 60, 50],
            ),
            (
                "first and last",
                vec![
                    Move::Last,
                    Move::Down,
                    Move::PageDown,
                    Move::First,
                    Move::Up,
                ],
                vec![99, 99, 99, 0, 0],
            ),
            (
                "a page stops at the ends",
                vec![Move::To(95), Move::PageDown, Move::To(3), Move::PageUp],
                vec![95, 99, 3, 0],
            ),
            (
                "a click past the end lands on the last row",
                vec![Move::To(500)],
                vec![99],
            ),
            ("a click", vec![Move::To(7), Move::Down], vec![7, 8]),
        ];
        for (name, moves, want) in cases {
            let moves: Vec<_> = moves.into_iter().map(|m| (m, false)).collect();
            let (landed, cursor) = walk(&moves);
            let want: Vec<_> = want.into_iter().map(Some).collect();
            assert_eq!(landed, want, "{name}");
            let at = cursor.at().unwrap();
            assert_eq!(cursor.selection(), Some(at..=at), "{name}: one row");
        }
    }

    #[test]
    fn shift_extends_from_the_anchor_and_a_plain_move_drops_it() {
        let (_, cursor) = walk(&[
            (Move::To(10), false),
            (Move::Down, true),
            (Move::Down, true),
        ]);
        assert_eq!(cursor.selection(), Some(10..=12));
        // Back past the anchor: the range flips around it.
        let (_, cursor) = walk(&[(Move::To(10), false), (Move::PageUp, true)]);
        assert_eq!(cursor.selection(), Some(0..=10));
        assert!(cursor.is_selected(0) && cursor.is_selected(10) && !cursor.is_selected(11));
        // Shift+click and Shift+End keep the first anchor.
        let (_, cursor) = walk(&[
            (Move::To(10), false),
            (Move::To(20), true),
            (Move::Last, true),
        ]);
        assert_eq!(cursor.selection(), Some(10..=99));
        let (_, cursor) = walk(&[
            (Move::To(10), false),
            (Move::To(20), true),
            (Move::Up, false),
        ]);
        assert_eq!(cursor.selection(), Some(19..=19));
    }

    #[test]
    fn no_rows_no_cursor() {
        let mut cursor = RowCursor::default();
        cursor.apply(Move::To(3), false, 10, 5, 0);
        assert_eq!(cursor.apply(Move::Down, false, 0, 5, 0), None);
        assert_eq!((cursor.at(), cursor.selection()), (None, None));
    }

    #[test]
    fn the_cursor_follows_its_row_into_a_new_order_or_goes() {
        let old = [5, 6, 7, 8];
        let mut cursor = RowCursor::default();
        cursor.apply(Move::To(1), false, 4, 2, 0);
        cursor.apply(Move::To(3), true, 4, 2, 0);
        cursor.follow(&old, &[8, 7, 6, 5]);
        assert_eq!(cursor.at(), Some(0), "row 8 is first now");
        assert_eq!(cursor.selection(), Some(0..=0), "the range is dropped");
        cursor.follow(&[8, 7, 6, 5], &[5, 6]);
        assert_eq!(cursor.at(), None, "row 8 is filtered out");
    }
}
