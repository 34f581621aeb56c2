//! What the viewer shows: the opened document (a table, workbook, text or
//! picture; plaintext only in zeroizing buffers), the granted rights, the
//! watermark identity, and the screen (enroll, pick a file, passphrase,
//! opening, open, cannot open, closed).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use irm_client::ClientError;
use irm_core::Rights;
use irm_core::protocol::{DenyReason, Notice};

use image::ImageFormat;
use zeroize::Zeroizing;

use crate::i18n::{Lang, Msg};
use crate::kind::{self, Kind};
use crate::picture::{Picture, PictureError};
use crate::print::PrintError;
use crate::table::{
    MAX_TABLE_TEXT, StreamError, StreamedTable, Table, TableStream, sniff_delimiter,
};
use crate::text::{self, TextEncoding};
use crate::textdoc::TextDoc;
use crate::watermark::WatermarkIdentity;
use crate::workbook::{Workbook, WorkbookError};

/// What a document holds, by kind.
pub enum Content {
    /// A CSV/TSV file.
    Table {
        /// The parsed rows.
        table: Table,
        /// The encoding it was decoded from.
        encoding: TextEncoding,
        /// Whether some bytes were invalid in that encoding.
        had_errors: bool,
    },
    /// An XLSX or XLS workbook, one table per sheet.
    Workbook(Workbook),
    /// Plain text or JSON.
    Text(TextDoc),
    /// A PNG or JPEG picture.
    Picture(Picture),
}

/// Why decrypted bytes cannot be shown.
#[derive(Debug)]
pub enum ContentError {
    /// The workbook is damaged.
    Workbook(WorkbookError),
    /// The picture is damaged.
    Picture(PictureError),
    /// A CSV/TSV file past what a table holds (`table::MAX_TABLE_TEXT`).
    TooLarge,
    /// A kind of file the viewer does not show.
    Unsupported,
}

impl std::fmt::Display for ContentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Workbook(e) => e.fmt(f),
            Self::Picture(e) => e.fmt(f),
            Self::TooLarge => f.write_str("the table is larger than 4 GiB"),
            Self::Unsupported => f.write_str("the viewer does not show this kind of file"),
        }
    }
}

impl std::error::Error for ContentError {}

/// A decrypted document. Its plaintext lives only in zeroizing buffers (the
/// table's cell buffer, the text, the picture's pixels, the original bytes
/// kept for export): dropping the last `Arc` wipes them.
pub struct Document {
    /// The sealed file's name (without `.irm`), for the title bar.
    pub name: String,
    /// What it holds.
    pub content: Content,
    /// The decrypted bytes as sealed, kept for exporting kinds that are not
    /// exported as CSV (workbooks, text, pictures); `None` for CSV/TSV.
    original: Option<Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.content {
            Content::Table { .. } => "table",
            Content::Workbook(_) => "workbook",
            Content::Text(_) => "text",
            Content::Picture(_) => "picture",
        };
        f.debug_struct("Document")
            .field("name", &self.name)
            .field("kind", &kind)
            .finish_non_exhaustive()
    }
}

impl Document {
    /// What was opened, without any of its content: "2 rows", "3 sheets",
    /// "text", "picture" (for the log line tests and tools wait for).
    pub fn summary(&self) -> String {
        match &self.content {
            Content::Table { table, .. } => format!("{} rows", table.data_rows()),
            Content::Workbook(book) => format!("{} sheets", book.sheets.len()),
            Content::Text(_) => "text".into(),
            Content::Picture(_) => "picture".into(),
        }
    }

    /// Decodes and parses decrypted CSV/TSV bytes. The intermediate decoded
    /// text is zeroized when this returns; the caller wipes `plaintext`.
    pub fn from_plaintext(name: impl Into<String>, plaintext: &[u8]) -> Self {
        Self {
            name: name.into(),
            content: parse_table(plaintext),
            original: None,
        }
    }

    /// A CSV/TSV document read as it was decrypted (`TableStream`).
    pub fn from_streamed(name: impl Into<String>, streamed: StreamedTable) -> Self {
        Self {
            name: name.into(),
            content: Content::Table {
                table: streamed.table,
                encoding: streamed.encoding,
                had_errors: streamed.had_errors,
            },
            original: None,
        }
    }

    /// Parses decrypted bytes as the kind the sealed metadata's media type,
    /// the original file name or the bytes themselves say (see [`kind`]).
    /// `plaintext` is kept (for export) unless the document is a table.
    pub fn open(
        name: impl Into<String>,
        media_type: Option<&str>,
        original_name: Option<&str>,
        plaintext: Zeroizing<Vec<u8>>,
    ) -> Result<Self, ContentError> {
        let kind = kind::detect(media_type, original_name, &plaintext);
        let content = match kind {
            // Decoding CP932 or UTF-16 into UTF-8 grows it by at most
            // half (two bytes become three): compare the worst case.
            Kind::Table if plaintext.len().saturating_mul(3) / 2 > MAX_TABLE_TEXT => {
                return Err(ContentError::TooLarge);
            }
            Kind::Table => parse_table(&plaintext),
            Kind::Workbook => {
                Content::Workbook(Workbook::parse(&plaintext).map_err(ContentError::Workbook)?)
            }
            Kind::Text => Content::Text(TextDoc::plain(&plaintext)),
            Kind::Json => Content::Text(TextDoc::json(&plaintext)),
            Kind::Unsupported => return Err(ContentError::Unsupported),
            Kind::Png | Kind::Jpeg => {
                let format = if kind == Kind::Png {
                    ImageFormat::Png
                } else {
                    ImageFormat::Jpeg
                };
                Content::Picture(
                    Picture::decode(&plaintext, format).map_err(ContentError::Picture)?,
                )
            }
        };
        let original = match content {
            // Exported as CSV from the cells: no second copy is kept.
            Content::Table { .. } => None,
            _ => Some(plaintext),
        };
        Ok(Self {
            name: name.into(),
            content,
            original,
        })
    }

    /// The table of a CSV/TSV file, or sheet `sheet` of a workbook.
    pub fn table(&self, sheet: usize) -> Option<&Table> {
        match &self.content {
            Content::Table { table, .. } => Some(table),
            Content::Workbook(book) => book.sheets.get(sheet).map(|s| &s.table),
            _ => None,
        }
    }

    /// The text encoding, for kinds decoded from text.
    pub fn encoding(&self) -> Option<TextEncoding> {
        match &self.content {
            Content::Table { encoding, .. } => Some(*encoding),
            Content::Text(text) => Some(text.encoding),
            _ => None,
        }
    }

    /// What Export writes and the extension it suggests: CSV for a CSV/TSV
    /// file, the original bytes for every other kind.
    pub fn export_extension(&self) -> String {
        match (&self.content, &self.original) {
            (Content::Table { .. }, _) | (_, None) => "csv".into(),
            _ => std::path::Path::new(&self.name)
                .extension()
                .map_or_else(|| "bin".into(), |e| e.to_string_lossy().into_owned()),
        }
    }

    /// What an export writes, for the audit record ("120 rows as CSV").
    pub fn export_summary(&self) -> String {
        match (&self.content, &self.original) {
            (Content::Table { table, .. }, _) => format!("{} rows as CSV", table.data_rows()),
            (_, Some(bytes)) => format!("the original file ({} bytes)", bytes.len()),
            (_, None) => "nothing".into(),
        }
    }

    /// Whether Export writes a CSV customer list, which then carries the
    /// canaries of an approved export (PROTOCOL.md §7.8).
    pub fn exports_csv(&self) -> bool {
        matches!(self.content, Content::Table { .. })
    }

    /// The original bytes of an XLSX workbook (a zip archive), which an
    /// approved export rewrites with its canaries (PROTOCOL.md §7.8).
    pub fn xlsx_original(&self) -> Option<&[u8]> {
        match (&self.content, &self.original) {
            (Content::Workbook(_), Some(bytes)) if bytes.starts_with(b"PK\x03\x04") => Some(bytes),
            _ => None,
        }
    }

    /// Writes the export (see [`Document::export_extension`]).
    pub fn write_export(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        match (&self.content, &self.original) {
            (Content::Table { table, .. }, _) => table.write_csv(out),
            (_, Some(bytes)) => {
                out.write_all(bytes)?;
                out.flush()
            }
            (_, None) => Err(std::io::Error::other("nothing to export")),
        }
    }
}

fn parse_table(plaintext: &[u8]) -> Content {
    // Valid UTF-8 without a BOM, the common case, is parsed where it lies:
    // a decoded copy would add the file's size again to the peak memory.
    if !plaintext.starts_with(b"\xEF\xBB\xBF")
        && let Ok(text) = std::str::from_utf8(plaintext)
    {
        return Content::Table {
            table: Table::parse(text, sniff_delimiter(text)),
            encoding: TextEncoding::Utf8,
            had_errors: false,
        };
    }
    // Decoded piece by piece straight into the table: a decoded copy of
    // the whole text would be reserved at its largest possible size (three
    // times a CP932 file) and all of it touched when wiped.
    let mut stream = if text::detect(plaintext) == TextEncoding::ShiftJis {
        TableStream::cp932(plaintext.len())
    } else {
        TableStream::new(plaintext.len())
    };
    stream.push(plaintext);
    match stream.finish() {
        Ok(streamed) => Content::Table {
            table: streamed.table,
            encoding: streamed.encoding,
            had_errors: streamed.had_errors,
        },
        // Neither can happen: the encoding was detected on the whole
        // bytes, and `Document::open` refuses text too long for a table.
        Err(StreamError::Restart | StreamError::TooLarge) => Content::Table {
            table: Table::parse("", ','),
            encoding: TextEncoding::Utf8,
            had_errors: true,
        },
    }
}

/// An open document under a live grant.
#[derive(Debug)]
pub struct OpenDocument {
    /// The plaintext (shared only with a pending export, never with the worker's state).
    pub doc: Arc<Document>,
    /// The grant's effective rights.
    pub rights: Rights,
    /// The watermark text's parts.
    pub watermark: WatermarkIdentity,
    /// Whether the grant requires the watermark (it can be hidden only if not).
    pub watermark_required: bool,
    /// When the lease ends on this computer's monotonic clock.
    pub lease_deadline: Instant,
    /// The policy's not-after time (Unix seconds, the key server's clock):
    /// from then on nobody can open the file; `None` when it never expires.
    pub not_after_unix: Option<u64>,
    /// What the key server told the person with a grant or renewal (a new
    /// device on their account), kept in view while the document is open.
    pub notices: Vec<Notice>,
    /// Set when the server's signed audit checkpoint did not continue the
    /// one this device witnessed (PROTOCOL.md §9.2): its log went back.
    pub audit_alarm: Option<String>,
}

/// Why a file cannot be shown (or was closed), in terms a person acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The key server refused, for this reason.
    Denied(DenyReason),
    /// The key server refused and named whom to call (a hold or a
    /// suspension, with a contact configured for the person's group,
    /// PROTOCOL.md §12).
    DeniedCall {
        /// Why.
        reason: DenyReason,
        /// Whom to call, as the server's operators wrote it.
        contact: String,
    },
    /// The lease ran out and could not be renewed in time.
    LeaseExpired,
    /// The key server cannot be reached (network, TLS).
    Unreachable(String),
    /// No credentials on this computer.
    NotEnrolled,
    /// The passphrase does not unlock the credentials.
    WrongPassphrase,
    /// The file is damaged, altered or not a sealed file.
    Corrupt(String),
    /// The file opened, but it is a kind the viewer does not show.
    Unsupported(String),
    /// A print did not happen here (after the key server allowed it).
    Print(PrintError),
    /// Anything else, with its message.
    Other(String),
}

impl Failure {
    /// Sorts a client error into what the person can do about it.
    pub fn from_client(err: &ClientError) -> Self {
        match err {
            ClientError::Denied(reason, message) => match reason.contact_in(message) {
                Some(contact) => Self::DeniedCall {
                    reason: *reason,
                    contact: contact.to_owned(),
                },
                None => Self::Denied(*reason),
            },
            ClientError::LeaseExpired => Self::LeaseExpired,
            ClientError::Unreachable { .. } | ClientError::Tls { .. } => {
                Self::Unreachable(err.to_string())
            }
            ClientError::NotEnrolled { .. } => Self::NotEnrolled,
            ClientError::WrongPassphrase { .. } => Self::WrongPassphrase,
            ClientError::Integrity { .. } => Self::Corrupt(err.to_string()),
            _ => Self::Other(err.to_string()),
        }
    }

    /// (what happened, what to do next, technical detail), in `lang`.
    pub fn texts(&self, lang: Lang) -> (&'static str, &'static str, Option<Cow<'_, str>>) {
        let (title, next) = match self {
            Self::Denied(reason) => {
                return {
                    let (t, n) = lang.deny_reason(*reason);
                    (t, n, None)
                };
            }
            Self::DeniedCall { reason, contact } => {
                let (t, n) = lang.deny_reason(*reason);
                let call = format!("{}: {contact}", lang.t(Msg::CallContact));
                return (t, n, Some(Cow::Owned(call)));
            }
            Self::LeaseExpired => (Msg::ExpiredTitle, Msg::ExpiredNext),
            Self::Unreachable(_) => (Msg::UnreachableTitle, Msg::UnreachableNext),
            Self::NotEnrolled => (Msg::NotEnrolledTitle, Msg::NotEnrolledNext),
            Self::WrongPassphrase => (Msg::WrongPassphraseTitle, Msg::WrongPassphraseNext),
            Self::Corrupt(_) => (Msg::CorruptTitle, Msg::CorruptNext),
            Self::Unsupported(_) => (Msg::UnsupportedTitle, Msg::UnsupportedNext),
            Self::Print(_) => (Msg::PrintFailed, Msg::PrintFailedNext),
            Self::Other(_) => (Msg::OtherTitle, Msg::OtherNext),
        };
        let detail = match self {
            Self::Unreachable(d) | Self::Corrupt(d) | Self::Unsupported(d) | Self::Other(d) => {
                Some(Cow::Borrowed(d.as_str()))
            }
            Self::Print(e) => Some(Cow::Owned(e.message(lang))),
            _ => None,
        };
        (lang.t(title), lang.t(next), detail)
    }

    /// Whether trying again could help without anyone else acting.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Self::Unreachable(_) | Self::LeaseExpired | Self::Other(_)
        )
    }
}

/// Which screen the window shows.
#[derive(Debug)]
pub enum Screen {
    /// No credentials on this computer: the enrollment form.
    Enroll,
    /// No file yet: the "open a sealed file" chooser.
    PickFile,
    /// Asking for the passphrase (again, after `error`).
    NeedPassphrase {
        /// The previous attempt's failure.
        error: Option<Failure>,
    },
    /// Waiting for the worker (unlock, grant, decrypt).
    Opening,
    /// The document is open.
    Open(OpenDocument),
    /// The file could not be opened.
    CannotOpen(Failure),
    /// The document was open and has been closed (revoked, expired); its
    /// plaintext is gone.
    Closed(Failure),
}

/// Everything drawing reads.
#[derive(Debug)]
pub struct Model {
    /// The file being viewed (display name).
    pub file_name: String,
    /// The current screen.
    pub screen: Screen,
    /// The UI language.
    pub lang: Lang,
}

impl Model {
    /// The open document, if any.
    pub fn open(&self) -> Option<&OpenDocument> {
        match &self.screen {
            Screen::Open(open) => Some(open),
            _ => None,
        }
    }

    /// Closes the document (dropping the model's reference to the
    /// plaintext, which wipes it) and shows why.
    pub fn close(&mut self, why: Failure) {
        self.screen = if matches!(self.screen, Screen::Open(_)) {
            Screen::Closed(why)
        } else {
            Screen::CannotOpen(why)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(table: &Table) -> Vec<Vec<&str>> {
        (0..table.row_count())
            .map(|r| table.row(r).collect())
            .collect()
    }

    #[test]
    fn a_refusal_that_names_whom_to_call_says_it_in_both_languages() {
        let reason = DenyReason::StepUpRequired;
        let err = ClientError::Denied(reason, reason.message_with_contact("Sato, ext. 1234"));
        let failure = Failure::from_client(&err);
        assert_eq!(
            failure,
            Failure::DeniedCall {
                reason,
                contact: "Sato, ext. 1234".into()
            }
        );
        for (lang, call) in [
            (Lang::En, "Please call: Sato, ext. 1234"),
            (Lang::Ja, "連絡先: Sato, ext. 1234"),
        ] {
            let (title, _, detail) = failure.texts(lang);
            assert_eq!(title, lang.deny_reason(reason).0);
            assert_eq!(detail.as_deref(), Some(call));
        }
        // Without a contact, the reason alone, as before.
        let plain = Failure::from_client(&ClientError::Denied(reason, reason.to_string()));
        assert_eq!(plain, Failure::Denied(reason));
        assert!(!failure.retryable());
    }

    #[test]
    fn cp932_reads_as_its_utf8_would_quotes_and_line_breaks_included() {
        let csv = "顧客番号,氏名,備考\r\n\
            1001,\"山田, 太郎\",\"①番地\r\n㈱髙橋商事 \"\"本社\"\"\"\r\n\
            1002,鈴木 花子,\r\n";
        let (cp932, _, unmappable) = encoding_rs::SHIFT_JIS.encode(csv);
        assert!(!unmappable);
        let utf8 = Document::from_plaintext("customers.csv", csv.as_bytes());
        let sjis = Document::from_plaintext("customers.csv", &cp932);
        assert_eq!(utf8.encoding(), Some(TextEncoding::Utf8));
        assert_eq!(sjis.encoding(), Some(TextEncoding::ShiftJis));
        let (utf8, sjis) = (
            utf8.table(0).expect("a table"),
            sjis.table(0).expect("a table"),
        );
        assert_eq!(rows(sjis), rows(utf8));
        assert_eq!(
            rows(sjis)[1],
            ["1001", "山田, 太郎", "①番地\r\n㈱髙橋商事 \"本社\""]
        );
        assert_eq!(sjis.data_rows(), 2);
    }
}
