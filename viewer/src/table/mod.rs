//! CSV/TSV and workbook sheets as one kind of table: parsed into one
//! zeroizing buffer, sorted and searched, and drawn virtualised (only the
//! rows on screen are laid out).
//!
//! - `data.rs`: [`Table`] and [`TableBuilder`], sorting, searching, CSV export;
//! - `csv.rs`: reading CSV/TSV text into a table;
//! - `stream.rs`: [`TableStream`], a table read from decrypted bytes as
//!   they arrive (decoding them on the way);
//! - `state.rs`: [`TableState`], how a table stands in the UI;
//! - `cursor.rs`: the row cursor and the selection within it;
//! - `widget.rs`: [`TableView`], drawing it and reading its keys.
//!
//! This file only re-exports; nothing outside `table/` names the files.

mod csv;
mod cursor;
mod data;
mod state;
mod stream;
mod widget;

pub use csv::sniff_delimiter;
pub use data::{Direction, MAX_TABLE_TEXT, SortKey, Table, TableBuilder};
pub use state::{BACKGROUND_SORT_ROWS, TableState};
pub use stream::{StreamError, StreamedTable, TableStream};
pub use widget::{HeaderTexts, TableOutput, TableView};
