//! The C API's numbered constants besides the status codes (`status.rs`):
//! the rights bits (irm-core's `Rights`, checked by a test), the usage
//! actions of `irm_report_event`, and the text encodings of
//! `irm_document_text_encoding` (irm-client's `TextEncoding`, one to one).

use irm_client::text::TextEncoding;

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

/// The text encoding of a document's plaintext, as the viewer detects it
/// (irm-client's `text::detect`): a byte-order mark decides; otherwise
/// plaintext that is valid UTF-8 is UTF-8, and anything else is taken for
/// CP932, which is what Japanese Excel writes for "CSV". The detection does
/// not tell text from binary: a workbook, a picture or a PDF is reported as
/// CP932 too, so look at the media type (`irm_document_metadata`) first.
///
/// 0 is no encoding, so a variable left at zero is never mistaken for a
/// result. Numbers are stable: new values may be added, existing ones never
/// change meaning.
#[allow(non_camel_case_types)] // the C name
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum irm_text_encoding {
    /// UTF-8 without a byte-order mark (ASCII and empty documents included).
    IRM_TEXT_UTF8 = 1,
    /// UTF-8 after a byte-order mark (EF BB BF; Excel's "CSV UTF-8").
    IRM_TEXT_UTF8_BOM = 2,
    /// UTF-16 little-endian after a byte-order mark (FF FE; Excel's "Unicode text").
    IRM_TEXT_UTF16LE = 3,
    /// UTF-16 big-endian after a byte-order mark (FE FF).
    IRM_TEXT_UTF16BE = 4,
    /// CP932: Shift_JIS with Microsoft's extensions (NEC and IBM characters
    /// such as ①, ㈱, 髙), as Windows and Japanese Excel write it; also
    /// anything else that is not UTF-8.
    IRM_TEXT_CP932 = 5,
}

impl From<TextEncoding> for irm_text_encoding {
    fn from(encoding: TextEncoding) -> Self {
        match encoding {
            TextEncoding::Utf8 => Self::IRM_TEXT_UTF8,
            TextEncoding::Utf8Bom => Self::IRM_TEXT_UTF8_BOM,
            TextEncoding::Utf16Le => Self::IRM_TEXT_UTF16LE,
            TextEncoding::Utf16Be => Self::IRM_TEXT_UTF16BE,
            TextEncoding::ShiftJis => Self::IRM_TEXT_CP932,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_text_encoding_keeps_its_number() {
        let cases = [
            (TextEncoding::Utf8, 1),
            (TextEncoding::Utf8Bom, 2),
            (TextEncoding::Utf16Le, 3),
            (TextEncoding::Utf16Be, 4),
            (TextEncoding::ShiftJis, 5),
        ];
        for (encoding, number) in cases {
            assert_eq!(
                irm_text_encoding::from(encoding) as u32,
                number,
                "{encoding:?}"
            );
        }
    }
}
