//! Drawing a table ([`TableView`]): the header with sort arrows and
//! resize handles, a row-number column, and only the rows on screen
//! (`ScrollArea::show_rows`), with search matches highlighted and scrolled
//! into view. What is shown comes from `state.rs`; a header click is handed
//! back to the caller, which sorts.

use std::ops::Range;

use egui::{Label, RichText, ScrollArea, Sense, Ui};

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
            state.widths = column_widths(table, char_width);
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
