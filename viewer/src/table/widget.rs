//! Drawing a table ([`TableView`]) and the keys it answers to: the header
//! with sort arrows and resize handles (drag one to resize its column,
//! double-click it to fit the column to its content), a row-number column,
//! and only the rows on screen (`ScrollArea::show_rows`), with the cursor,
//! the selection and search matches highlighted.
//!
//! A click anywhere on a row puts the cursor there; the arrow keys, Page
//! Up/Down and Home/End (Ctrl+Home/End too) move it, and Shift with any of
//! these extends the selection (the rules are `cursor.rs`'s). Cells are not
//! selectable text: the row is the unit that is selected and copied, so a
//! click on a cell lands on its row. What is shown comes from `state.rs`; a
//! header click and a copy request are handed back to the caller, which
//! sorts, and copies if the rights allow.

use std::ops::Range;

use egui::{Color32, FontId, Label, Rect, RichText, ScrollArea, Sense, Shape, Ui};

use super::cursor::Move;
use super::data::{Direction, Table};
use super::state::TableState;

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
    /// Sort, rows shown, search, widths and the cursor.
    pub state: &'a mut TableState,
    /// Header tooltips.
    pub texts: HeaderTexts,
}

/// What happened in the table this frame, for the caller to act on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TableOutput {
    /// The column whose header was clicked (to sort by).
    pub sort_by: Option<usize>,
    /// Whether Ctrl+C asked to copy the selected rows.
    pub copy: bool,
    /// Where the cells are on screen: under the header, right of the row
    /// numbers, within the window. The watermark goes there.
    pub body: Rect,
}

/// Width of the drag handle after each column header.
const HANDLE_WIDTH: f32 = 6.0;

/// Rows measured to fit a column to its content, besides those on screen:
/// enough to be representative, few enough for a million-row table.
const MEASURED_ROWS: usize = 200;

impl TableView<'_> {
    /// Handles the table's keys, then draws the header and the rows on
    /// screen, with a row-number column.
    pub fn show(self, ui: &mut Ui) -> TableOutput {
        let Self {
            table,
            state,
            texts,
        } = self;
        let row_height = ui.text_style_height(&egui::TextStyle::Body);
        let font = egui::TextStyle::Body.resolve(ui.style());
        let char_width = row_height * 0.55;
        // Room for two wide characters and the ellipsis.
        let min_width = 3.0 * row_height;
        if state.widths.len() != table.columns() {
            state.widths = column_widths(table, char_width);
        }
        let spacing = ui.spacing().item_spacing;
        let row_step = row_height + spacing.y;
        let copy = keys(ui, state, row_step, row_height);
        let number_width = char_width * (state.visible.len().max(1).ilog10() as f32 + 3.0);
        if std::mem::take(&mut state.fit_requested) {
            // Each column costs its handle and the spacing on both sides;
            // so does the row-number column, and the scroll bar its width.
            let columns = table.columns() as f32;
            let fixed = number_width
                + (columns + 1.0) * (HANDLE_WIDTH + 2.0 * spacing.x)
                + ui.spacing().scroll.allocated_width();
            let natural: Vec<f32> = (0..table.columns())
                .map(|c| content_width(ui, table, state, c, &font))
                .collect();
            state.widths = fit_widths(&natural, ui.available_width() - fixed, min_width);
        }
        let mut sort_by = None;
        let mut body = ui.available_rect_before_wrap();
        ScrollArea::horizontal()
            .id_salt("table-h")
            .auto_shrink(false)
            .show(ui, |ui| {
                let mut body_left = ui.max_rect().left();
                if table.row_count() > 0 {
                    let header = header(ui, table, state, &texts, number_width, row_height);
                    sort_by = header.sort_by;
                    body_left = header.body_left;
                    if let Some(c) = header.fit {
                        let width = content_width(ui, table, state, c, &font);
                        state.widths[c] = width.max(min_width);
                    }
                    ui.separator();
                }
                let (rows, clicked) = rows(ui, table, state, number_width, row_height);
                if let Some(pos) = clicked {
                    let extend = ui.input(|i| i.modifiers.shift);
                    state.move_cursor(Move::To(pos), extend, row_step, row_height);
                    ui.ctx().request_repaint(); // scrolls a half-shown row into view
                }
                let view = rows.inner_rect;
                body = Rect::from_min_max(egui::pos2(body_left, view.top()), view.max)
                    .intersect(ui.clip_rect());
            });
        TableOutput {
            sort_by,
            copy,
            body,
        }
    }
}

/// Reads the table's keys: moves the cursor, and returns whether Ctrl+C
/// asked for a copy of the selected rows. Only while no widget holds the
/// keyboard, so the filter and search boxes keep their arrows and Ctrl+C.
/// The keys are taken out of the input, so nothing else acts on them too:
/// with rows selected, egui's own label selection would copy on the same
/// Ctrl+C; without, Ctrl+C is left to it (text selected in the status bar).
fn keys(ui: &mut Ui, state: &mut TableState, row_step: f32, row_height: f32) -> bool {
    if ui.ctx().egui_wants_keyboard_input() {
        return false;
    }
    let rows_selected = !state.selected_rows().is_empty();
    let mut copy = false;
    let mut moves = Vec::new();
    ui.input_mut(|input| {
        input.events.retain(|event| match event {
            egui::Event::Key {
                key,
                pressed: true,
                modifiers,
                ..
            } if !modifiers.alt => {
                if let Some(step) = Move::for_key(*key) {
                    moves.push((step, modifiers.shift));
                    false
                } else if *key == egui::Key::C && modifiers.command && rows_selected {
                    copy = true;
                    false
                } else {
                    true
                }
            }
            // What Ctrl+C becomes in the window (egui-winit).
            egui::Event::Copy if rows_selected => {
                copy = true;
                false
            }
            _ => true,
        });
    });
    for (step, extend) in moves {
        state.move_cursor(step, extend, row_step, row_height);
    }
    copy
}

/// What the header row reported.
struct Header {
    sort_by: Option<usize>,
    /// A column whose resize handle was double-clicked.
    fit: Option<usize>,
    /// Where the first column starts, after the row numbers.
    body_left: f32,
}

fn header(
    ui: &mut Ui,
    table: &Table,
    state: &mut TableState,
    texts: &HeaderTexts,
    number_width: f32,
    row_height: f32,
) -> Header {
    let char_width = row_height * 0.55;
    let mut out = Header {
        sort_by: None,
        fit: None,
        body_left: ui.max_rect().left(),
    };
    ui.horizontal(|ui| {
        ui.add_sized(
            [number_width, row_height],
            Label::new(RichText::new("#").strong()),
        );
        ui.add_space(HANDLE_WIDTH);
        out.body_left = ui.cursor().left();
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
                out.sort_by = Some(c);
            }
            let (rect, handle) = ui.allocate_exact_size(
                egui::vec2(HANDLE_WIDTH, row_height),
                Sense::click_and_drag(),
            );
            let handle = handle
                .on_hover_cursor(egui::CursorIcon::ResizeColumn)
                .on_hover_text(texts.resize_help);
            if handle.dragged() {
                state.widths[c] = (state.widths[c] + handle.drag_delta().x).max(2.0 * char_width);
            }
            if handle.double_clicked() {
                out.fit = Some(c);
            }
            ui.painter().vline(
                rect.center().x,
                rect.y_range(),
                ui.visuals().widgets.noninteractive.bg_stroke,
            );
        }
    });
    out
}

/// Draws the rows on screen with their highlights; returns the scroll
/// area's output and the position of a row clicked.
fn rows(
    ui: &mut Ui,
    table: &Table,
    state: &mut TableState,
    number_width: f32,
    row_height: f32,
) -> (egui::scroll_area::ScrollAreaOutput<()>, Option<usize>) {
    let spacing = ui.spacing().item_spacing;
    let row_step = row_height + spacing.y;
    // The header allocates each handle as a widget, with spacing after it;
    // the cells leave the same gap, so each sits under its header.
    let gap = HANDLE_WIDTH + spacing.x;
    let mut scroll = ScrollArea::vertical().id_salt("table-v").auto_shrink(false);
    if let Some(offset) = state.scroll_offset.take() {
        scroll = scroll.vertical_scroll_offset(offset);
        state.scroll_to = None;
    } else if let Some(target) = state.scroll_to.take() {
        let shown = state
            .on_screen
            .is_some_and(|(first, last)| first < target && target < last);
        if !shown {
            // Centre the row: offset of its top minus half the view.
            let view = ui.available_height();
            let top = target as f32 * row_step;
            scroll = scroll.vertical_scroll_offset((top - (view - row_height) / 2.0).max(0.0));
        }
    }
    let visuals = ui.visuals();
    let highlight = visuals.selection.bg_fill;
    let faint = highlight.gamma_multiply(0.35);
    let selected_fill = highlight.gamma_multiply(0.6);
    let cursor_stroke = visuals.selection.stroke;
    let current = state.current_match();
    let widths = &state.widths;
    let visible = &state.visible;
    let matches = &state.matches;
    let cursor = state.cursor;
    let mut drawn = None;
    let mut clicked = None;
    let output = scroll.show_rows(ui, row_height, visible.len(), |ui, range: Range<usize>| {
        drawn = Some((range.start, range.end.saturating_sub(1)));
        for (pos, &row) in range.clone().zip(&visible[range]) {
            // Painted under the row once its size is known.
            let background = ui.painter().add(Shape::Noop);
            let line = ui.horizontal(|ui| {
                ui.add_sized(
                    [number_width, row_height],
                    Label::new(RichText::new(row.to_string()).weak()).selectable(false),
                );
                ui.add_space(HANDLE_WIDTH);
                for (c, text) in table.row(row).enumerate() {
                    ui.add_sized(
                        [widths[c], row_height],
                        Label::new(text).selectable(false).truncate(),
                    );
                    ui.add_space(gap);
                }
            });
            let rect = line.response.rect;
            // Registered after the cells, which only sense hover: a click
            // anywhere on the row is the row's. Not focusable: a row holding
            // the keyboard would take the arrow keys from the table.
            if ui
                .interact(
                    rect,
                    ui.make_persistent_id(("irm-table-row", row)),
                    Sense::CLICK,
                )
                .clicked()
            {
                clicked = Some(pos);
            }
            let fill = if cursor.is_selected(pos) {
                selected_fill
            } else if current == Some(pos) {
                highlight
            } else if matches.binary_search(&pos).is_ok() {
                faint
            } else {
                Color32::TRANSPARENT
            };
            let mut shapes = vec![Shape::rect_filled(rect, 2.0, fill)];
            if cursor.at() == Some(pos) {
                shapes.push(Shape::rect_stroke(
                    rect,
                    2.0,
                    cursor_stroke,
                    egui::StrokeKind::Inside,
                ));
            }
            ui.painter().set(background, Shape::Vec(shapes));
        }
    });
    state.on_screen = drawn;
    state.viewport = (output.state.clamped_offset().y, output.inner_rect.height());
    (output, clicked)
}

/// The width column `c`'s text needs: its header (with room for a sort
/// arrow) and its cells in the rows on screen and the first rows of the
/// view, as laid out in the body font.
fn content_width(ui: &Ui, table: &Table, state: &TableState, c: usize, font: &FontId) -> f32 {
    let on_screen = state
        .on_screen
        .map_or(0..0, |(first, last)| first..last + 1);
    let rows = state
        .visible
        .iter()
        .take(MEASURED_ROWS)
        .chain(state.visible.get(on_screen).unwrap_or_default());
    ui.ctx().fonts_mut(|fonts| {
        let mut width = |text: &str| {
            fonts
                .layout_no_wrap(text.to_owned(), font.clone(), Color32::PLACEHOLDER)
                .size()
                .x
        };
        let header = table
            .cell(0, c)
            .map_or(0.0, |text| width(&format!("{text} ▼")));
        rows.filter_map(|&r| table.cell(r, c))
            .map(width)
            .fold(header, f32::max)
            .ceil()
            + 2.0 // so rounding never elides the longest text
    })
}

/// Widths for columns that need `natural`, fitting `available` points:
/// unchanged if they fit already; otherwise the narrow ones keep their
/// width and the wide ones share what is left equally, none narrower than
/// `min` (so that with very many columns they may still not fit).
fn fit_widths(natural: &[f32], available: f32, min: f32) -> Vec<f32> {
    if natural.iter().sum::<f32>() <= available {
        return natural.iter().map(|w| w.max(min)).collect();
    }
    let mut sorted = natural.to_vec();
    sorted.sort_by(f32::total_cmp);
    let mut left = available;
    let mut cap = f32::INFINITY;
    for (i, &w) in sorted.iter().enumerate() {
        let share = left / (sorted.len() - i) as f32;
        if w > share {
            cap = share;
            break;
        }
        left -= w;
    }
    natural.iter().map(|w| w.min(cap).max(min)).collect()
}

/// A display width for each column of `table`, from the header and the
/// first rows.
fn column_widths(table: &Table, char_width: f32) -> Vec<f32> {
    let mut widths = vec![4.0_f32; table.columns()];
    for r in 0..table.row_count().min(200) {
        for (c, cell) in table.row(r).enumerate() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitting_keeps_narrow_columns_and_shares_the_rest() {
        let cases: [(&str, &[f32], f32, &[f32]); 4] = [
            ("they fit already", &[50.0, 80.0], 200.0, &[50.0, 80.0]),
            (
                "the narrow keep theirs, two wide ones share",
                &[40.0, 300.0, 500.0],
                340.0,
                &[40.0, 150.0, 150.0],
            ),
            (
                "all wide: equal shares",
                &[300.0, 400.0],
                200.0,
                &[100.0, 100.0],
            ),
            (
                "never under the minimum",
                &[10.0, 500.0, 500.0],
                90.0,
                &[30.0, 40.0, 40.0],
            ),
        ];
        for (name, natural, available, want) in cases {
            assert_eq!(fit_widths(natural, available, 30.0), want, "{name}");
        }
    }
}
