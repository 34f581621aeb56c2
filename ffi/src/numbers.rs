//! The C API's numbered constants besides the status codes (`status.rs`):
//! the rights bits (irm-core's `Rights`, checked by a test) and the usage
//! actions of `irm_report_event`.

/// Right: read the content on screen.
pub const IRM_RIGHT_VIEW: u32 = 1 << 0;
/// Right: print (watermarked, audited).
pub const IRM_RIGHT_PRINT: u32 = 1 << 1;
/// Right: copy selections to the clipboard.
pub const IRM_RIGHT_COPY: u32 = 1 << 2;
/// Right: save a plaintext copy.
pub const IRM_RIGHT_EXPORT: u32 = 1 << 3;
/// Right: hand plaintext to a program through this library (`irm_read`).
pub const IRM_RIGHT_PROGRAM: u32 = 1 << 4;

/// Usage event: printed (needs the print right).
pub const IRM_ACTION_PRINT: u32 = 1;
/// Usage event: copied to the clipboard (needs the copy right).
pub const IRM_ACTION_COPY: u32 = 2;
/// Usage event: saved plaintext (needs the export right).
pub const IRM_ACTION_EXPORT: u32 = 3;
/// Usage event: handed plaintext to a program (needs the program right;
/// `irm_read` reports it itself on the first read).
pub const IRM_ACTION_PROGRAM_READ: u32 = 4;
/// Usage event: closed the document (always allowed).
pub const IRM_ACTION_CLOSE: u32 = 5;
