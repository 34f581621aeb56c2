//! `irm-viewer`: shows a sealed file (CSV/TSV, XLSX/XLS, text, JSON, PNG, JPEG) only while the key server's
//! grant holds, with the grant's rights enforced in the UI and the
//! watermark drawn over the document's content, on top of every window
//! and popup (docs and STYLE.md §9).
//!
//! - [`app::ViewerApp`] is `{ model, ui, worker }`: drawing reads the
//!   [`model::Model`], clicks become [`worker::Command`]s.
//! - [`worker`] owns the session, the grant, file reading and decryption.
//! - [`rights::decide`] is the one function that decides which actions exist.
//! - [`copy`] holds clipboard text back until the key server recorded the
//!   copy, and says why when a copy did not happen.
//! - Plaintext lives only in zeroizing buffers in memory, never on disk.
//! - [`fonts`] ships the Japanese font, so no system font is needed.
#![forbid(unsafe_code)]

pub mod app;
pub mod copy;
pub mod enroll;
pub mod fonts;
pub mod i18n;
pub mod kind;
pub mod model;
pub mod open_file;
pub mod picture;
pub mod print;
pub mod rights;
pub mod table;
pub use irm_client::text;
pub mod textdoc;
pub mod timing;
pub mod watermark;
pub mod workbook;
pub mod workbook_canary;
pub mod worker;
