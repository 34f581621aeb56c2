//! Which kind of document a decrypted file is: the sealed metadata's media
//! type first, then the original file name's extension (irm-core's one
//! table, `Metadata::media_type_for`), then the first bytes. Parsing each
//! kind is left to `table`, `workbook`, `textdoc` and `picture`.

use irm_core::Metadata;

/// How a document is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// CSV or TSV: one table.
    Table,
    /// XLSX or legacy XLS: one table per sheet.
    Workbook,
    /// Plain text, shown line by line.
    Text,
    /// JSON, pretty-printed (raw text when it does not parse).
    Json,
    /// A PNG picture.
    Png,
    /// A JPEG picture.
    Jpeg,
    /// A kind the viewer does not show (PDF, other binary files).
    Unsupported,
}

const OCTET_STREAM: &str = "application/octet-stream";

/// The kind for a media type, if it names one the viewer shows.
fn from_media_type(media_type: &str) -> Option<Kind> {
    // Parameters such as "; charset=shift_jis" do not change the kind.
    let essence = media_type.split(';').next().unwrap_or("").trim();
    match essence.to_ascii_lowercase().as_str() {
        "text/csv" | "text/tab-separated-values" => Some(Kind::Table),
        "text/plain" => Some(Kind::Text),
        "application/json" => Some(Kind::Json),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        | "application/vnd.ms-excel" => Some(Kind::Workbook),
        "image/png" => Some(Kind::Png),
        "image/jpeg" => Some(Kind::Jpeg),
        "application/pdf" => Some(Kind::Unsupported),
        _ => None,
    }
}

/// What the first bytes say: zip (XLSX), OLE compound file (XLS), PNG,
/// JPEG, PDF, JSON; other binary files (a NUL byte early on, outside UTF-16)
/// are unsupported; anything else is a table when its first line has a
/// comma or a tab, and text otherwise.
pub fn sniff(bytes: &[u8]) -> Kind {
    const OLE: &[u8] = &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(OLE) {
        return Kind::Workbook;
    }
    if bytes.starts_with(PNG) {
        return Kind::Png;
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Kind::Jpeg;
    }
    let utf16 = bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]);
    let head = &bytes[..bytes.len().min(4096)];
    if bytes.starts_with(b"%PDF-") || (!utf16 && head.contains(&0)) {
        return Kind::Unsupported;
    }
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Some(b'{' | b'[') = text.iter().find(|b| !b.is_ascii_whitespace()) {
        return Kind::Json;
    }
    let first_line = text.split(|&b| b == b'\n').next().unwrap_or(&[]);
    // UTF-16 text has a NUL after every ASCII byte; a comma or tab still
    // shows in its first line.
    if first_line.iter().any(|&b| b == b',' || b == b'\t') || text.is_empty() {
        Kind::Table
    } else {
        Kind::Text
    }
}

/// The kind of a decrypted file: `media_type` (from the sealed metadata)
/// when it names a kind, else the extension of `file_name`, else [`sniff`].
pub fn detect(media_type: Option<&str>, file_name: Option<&str>, bytes: &[u8]) -> Kind {
    media_type
        .filter(|m| *m != OCTET_STREAM)
        .and_then(from_media_type)
        .or_else(|| {
            let name = file_name?;
            // A sealed file's own name ends in ".irm"; the kind is in the
            // extension before it ("customers.xlsx.irm").
            let name = name.strip_suffix(".irm").unwrap_or(name);
            from_media_type(Metadata::media_type_for(std::path::Path::new(name)))
        })
        .unwrap_or_else(|| sniff(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_media_type_decides_first() {
        let cases = [
            ("text/csv", Kind::Table),
            ("text/tab-separated-values", Kind::Table),
            ("text/plain; charset=utf-8", Kind::Text),
            ("application/json", Kind::Json),
            (
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                Kind::Workbook,
            ),
            ("application/vnd.ms-excel", Kind::Workbook),
            ("image/png", Kind::Png),
            ("IMAGE/JPEG", Kind::Jpeg),
        ];
        for (media, want) in cases {
            // The name and bytes say something else; the media type wins.
            assert_eq!(detect(Some(media), Some("x.txt"), b"{}"), want, "{media}");
        }
    }

    #[test]
    fn then_the_file_name() {
        let cases = [
            ("customers.xlsx", Kind::Workbook),
            ("customers.XLS.irm", Kind::Workbook),
            ("photo.jpeg", Kind::Jpeg),
            ("scan.png.irm", Kind::Png),
            ("memo.txt", Kind::Text),
            ("order.json", Kind::Json),
            ("list.tsv", Kind::Table),
            ("contract.pdf", Kind::Unsupported),
        ];
        for (name, want) in cases {
            let media = Some(OCTET_STREAM);
            assert_eq!(detect(media, Some(name), b"a,b\n"), want, "{name}");
            assert_eq!(detect(None, Some(name), b"a,b\n"), want, "{name}");
        }
    }

    #[test]
    fn then_the_magic_bytes() {
        let cases: [(&[u8], Kind); 13] = [
            (b"%PDF-1.7\n", Kind::Unsupported),
            (b"MZ\x90\0\x03\0", Kind::Unsupported),
            (b"\xFF\xFEa\0,\0b\0\n\0", Kind::Table),
            (b"PK\x03\x04rest", Kind::Workbook),
            (b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1rest", Kind::Workbook),
            (b"\x89PNG\r\n\x1a\nrest", Kind::Png),
            (b"\xFF\xD8\xFF\xE0rest", Kind::Jpeg),
            (b"  \n{\"a\": 1}", Kind::Json),
            (b"\xEF\xBB\xBF[1, 2]", Kind::Json),
            ("顧客番号,氏名\n1,山田\n".as_bytes(), Kind::Table),
            (b"a\tb\n", Kind::Table),
            ("お問い合わせメモ\n折り返し電話".as_bytes(), Kind::Text),
            (b"", Kind::Table),
        ];
        for (bytes, want) in cases {
            assert_eq!(detect(None, Some("unknown.bin"), bytes), want, "{bytes:?}");
            assert_eq!(detect(None, None, bytes), want, "{bytes:?}");
        }
    }
}
