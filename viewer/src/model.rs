//! What the viewer shows: the opened document (plaintext only in zeroizing
//! buffers), the granted rights, the watermark identity, and the screen
//! (enroll, pick a file, passphrase, opening, open, cannot open, closed).

use std::sync::Arc;
use std::time::Instant;

use irm_client::ClientError;
use irm_core::Rights;
use irm_core::protocol::DenyReason;

use crate::i18n::{Lang, Msg};
use crate::table::{Table, sniff_delimiter};
use crate::text::{self, TextEncoding};

/// A decrypted document. Its only copy of the plaintext is the table's
/// zeroizing cell buffer: dropping the last `Arc` wipes it.
pub struct Document {
    /// The sealed file's name (without `.irm`), for the title bar.
    pub name: String,
    /// The encoding it was decoded from.
    pub encoding: TextEncoding,
    /// Whether some bytes were invalid in that encoding.
    pub had_errors: bool,
    /// The parsed rows.
    pub table: Table,
}

impl std::fmt::Debug for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Document")
            .field("name", &self.name)
            .field("encoding", &self.encoding)
            .field("table", &self.table)
            .finish()
    }
}

impl Document {
    /// Decodes and parses decrypted bytes. The intermediate decoded text is
    /// zeroized when this returns; the caller wipes `plaintext`.
    pub fn from_plaintext(name: impl Into<String>, plaintext: &[u8]) -> Self {
        let decoded = text::decode(plaintext);
        let table = Table::parse(&decoded.text, sniff_delimiter(&decoded.text));
        Self {
            name: name.into(),
            encoding: decoded.encoding,
            had_errors: decoded.had_errors,
            table,
        }
    }
}

/// Who is looking: drawn as the watermark over everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatermarkIdentity {
    /// The user the grant is for.
    pub user: String,
    /// The device the grant is bound to (hex).
    pub device: String,
    /// When the file was opened ("2026-11-23 06:40 UTC").
    pub opened_at: String,
    /// The file's id.
    pub file_id: String,
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
}

/// Why a file cannot be shown (or was closed), in terms a person acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The key server refused, for this reason.
    Denied(DenyReason),
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
    /// Anything else, with its message.
    Other(String),
}

impl Failure {
    /// Sorts a client error into what the person can do about it.
    pub fn from_client(err: &ClientError) -> Self {
        match err {
            ClientError::Denied(reason, _) => Self::Denied(*reason),
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

    /// (what happened, what to do next, technical detail).
    pub fn texts(&self, lang: Lang) -> (&'static str, &'static str, Option<&str>) {
        let (title, next) = match self {
            Self::Denied(reason) => {
                return {
                    let (t, n) = lang.deny_reason(*reason);
                    (t, n, None)
                };
            }
            Self::LeaseExpired => (Msg::ExpiredTitle, Msg::ExpiredNext),
            Self::Unreachable(_) => (Msg::UnreachableTitle, Msg::UnreachableNext),
            Self::NotEnrolled => (Msg::NotEnrolledTitle, Msg::NotEnrolledNext),
            Self::WrongPassphrase => (Msg::WrongPassphraseTitle, Msg::WrongPassphraseNext),
            Self::Corrupt(_) => (Msg::CorruptTitle, Msg::CorruptNext),
            Self::Other(_) => (Msg::OtherTitle, Msg::OtherNext),
        };
        let detail = match self {
            Self::Unreachable(d) | Self::Corrupt(d) | Self::Other(d) => Some(d.as_str()),
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
