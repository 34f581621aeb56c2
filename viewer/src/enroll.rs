//! First start on a computer without credentials: the enrollment screen
//! (the invitation the administrators gave, pasted into one field; or,
//! without one, the server URL, CA certificate file and one-time code; the
//! device name and the passphrase twice), and the enrollment itself, which
//! the worker thread runs through `irm_client::Enrollment`.
//!
//! Failures are sorted into what the person can fix (a mistyped code or
//! invitation, the wrong CA file, a server that cannot be reached) and said
//! in Japanese or English. The passphrase, the code and the invitation
//! live in zeroizing strings and are wiped once handed over.

use std::io::Read;
use std::path::PathBuf;

use egui::{Color32, RichText, TextEdit, Ui};
use irm_client::{ClientError, Enrollment, Passphrase, Session, normalize_server_url};
use irm_core::invitation::{INVITATION_PREFIX, Invitation};
use irm_core::protocol::DenyReason;
use zeroize::{Zeroize, Zeroizing};

use crate::i18n::{Lang, Msg};

/// A CA certificate is a few kilobytes; anything larger is not one.
const MAX_CA_LEN: u64 = 1024 * 1024;

/// What enrolling needs; the CA is read (from the file) or fetched (for an
/// invitation) by the worker, not the UI.
#[derive(Debug)]
pub struct EnrollRequest {
    /// Where the credentials go (`irm_client::config_dir()`).
    pub config_dir: PathBuf,
    /// From an invitation, or typed by hand.
    pub source: EnrollSource,
    /// A label for this computer.
    pub device_name: String,
}

/// Where the server, its CA and the code come from.
#[derive(Debug)]
pub enum EnrollSource {
    /// One whole-code invitation or the two halves' (PROTOCOL.md §3.4).
    Invitations(Vec<Invitation>),
    /// The fields of an enrollment without an invitation.
    Typed {
        /// `https://host:port`.
        server_url: String,
        /// The key server's CA certificate (PEM file).
        ca_path: PathBuf,
        /// The user the code was issued for, or empty (the code says).
        user: String,
        /// The one-time code.
        code: Zeroizing<String>,
    },
}

/// Why enrolling did not work, in terms the person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollFailure {
    /// A field is empty.
    Missing,
    /// The two passphrases differ.
    PassphraseMismatch,
    /// The server URL is not `https://host[:port]` (detail).
    BadUrl(String),
    /// The CA file cannot be read (detail).
    CaUnreadable(String),
    /// The CA file is not a certificate, or the server's certificate is not
    /// signed by it (detail).
    BadCa(String),
    /// The pasted text is not one whole invitation or two halves (detail).
    BadInvitation(String),
    /// The server's CA is not the one the invitation names (detail).
    CaMismatch(String),
    /// The user name and code do not match, or the code is used up or expired.
    WrongCode,
    /// The key server cannot be reached (detail).
    Unreachable(String),
    /// This computer already has credentials.
    AlreadyEnrolled,
    /// The key server refused for another reason.
    Denied(DenyReason),
    /// Anything else (detail).
    Other(String),
}

impl EnrollFailure {
    /// (what happened and what to do, technical detail).
    pub fn texts(&self, lang: Lang) -> (&'static str, Option<&str>) {
        let msg = match self {
            Self::Missing => Msg::EnrollMissing,
            Self::PassphraseMismatch => Msg::EnrollPassphraseMismatch,
            Self::BadUrl(_) => Msg::EnrollBadUrl,
            Self::CaUnreadable(_) => Msg::EnrollCaUnreadable,
            Self::BadCa(_) => Msg::EnrollBadCa,
            Self::BadInvitation(_) => Msg::EnrollBadInvitation,
            Self::CaMismatch(_) => Msg::EnrollCaMismatch,
            Self::WrongCode => Msg::EnrollWrongCode,
            Self::Unreachable(_) => Msg::EnrollUnreachable,
            Self::AlreadyEnrolled => Msg::EnrollAlready,
            Self::Denied(reason) => return (lang.deny_reason(*reason).0, None),
            Self::Other(_) => Msg::OtherTitle,
        };
        let detail = match self {
            Self::BadUrl(d)
            | Self::CaUnreadable(d)
            | Self::BadCa(d)
            | Self::BadInvitation(d)
            | Self::CaMismatch(d)
            | Self::Unreachable(d)
            | Self::Other(d) => Some(d.as_str()),
            _ => None,
        };
        (lang.t(msg), detail)
    }

    fn from_client(err: ClientError) -> Self {
        match err {
            ClientError::Denied(DenyReason::EnrollmentCodeInvalid, _) => Self::WrongCode,
            ClientError::Denied(reason, _) => Self::Denied(reason),
            ClientError::Unreachable { .. } => Self::Unreachable(err.to_string()),
            ClientError::Tls { .. } => Self::BadCa(err.to_string()),
            ClientError::CaMismatch { .. } => Self::CaMismatch(err.to_string()),
            ClientError::InvalidArgument(detail) => Self::BadInvitation(detail),
            ClientError::AlreadyEnrolled { .. } => Self::AlreadyEnrolled,
            _ => Self::Other(err.to_string()),
        }
    }
}

/// Checks the request, fetches the CA for an invitation or reads the CA
/// file, and enrolls (in the worker thread: this reads a file and talks to
/// the key server).
pub fn run(request: EnrollRequest, passphrase: &Passphrase) -> Result<Session, EnrollFailure> {
    let enrollment = match request.source {
        EnrollSource::Invitations(invitations) => Enrollment::from_invitations(
            &invitations,
            request.config_dir,
            request.device_name,
            false,
        )
        .map_err(EnrollFailure::from_client)?,
        EnrollSource::Typed {
            server_url,
            ca_path,
            user,
            code,
        } => {
            let server_url = normalize_server_url(&server_url)
                .map_err(|e| EnrollFailure::BadUrl(e.to_string()))?;
            let mut ca_pem = String::new();
            std::fs::File::open(&ca_path)
                .and_then(|f| f.take(MAX_CA_LEN).read_to_string(&mut ca_pem))
                .map_err(|e| EnrollFailure::CaUnreadable(format!("{}: {e}", ca_path.display())))?;
            if !ca_pem.contains("-----BEGIN CERTIFICATE-----") {
                return Err(EnrollFailure::BadCa(format!(
                    "{} holds no PEM certificate",
                    ca_path.display()
                )));
            }
            Enrollment {
                config_dir: request.config_dir,
                server_url,
                ca_pem,
                user,
                // The client takes a plain String; the code is single-use and the
                // server burns it once used, so the copy outliving this is harmless.
                code: code.as_str().to_owned(),
                device_name: request.device_name,
                replace: false,
            }
        }
    };
    enrollment
        .run(passphrase)
        .map_err(EnrollFailure::from_client)
}

/// The invitations in pasted text: every word that starts like one (so a
/// line pasted with the words around it in a chat still reads), in order.
pub fn parse_invitations(text: &str) -> Result<Vec<Invitation>, EnrollFailure> {
    let invitations = text
        .split_whitespace()
        .map(|word| word.trim_matches(|c| matches!(c, '\'' | '"' | '<' | '>')))
        .filter(|word| word.starts_with(INVITATION_PREFIX))
        .map(|word| {
            word.parse::<Invitation>()
                .map_err(|e| EnrollFailure::BadInvitation(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Checked here, before the worker, so that a half alone is said at once.
    Invitation::combine(&invitations).map_err(|e| EnrollFailure::BadInvitation(e.to_string()))?;
    Ok(invitations)
}

/// The enrollment screen's fields and state.
#[derive(Default)]
pub struct EnrollForm {
    /// The pasted invitation line or lines (wiped once sent).
    pub invitation: Zeroizing<String>,
    /// Whether the fields for enrolling without an invitation are shown.
    pub manual: bool,
    /// Key server URL.
    pub server_url: String,
    /// CA certificate path.
    pub ca_path: String,
    /// User name.
    pub user: String,
    /// One-time code (wiped once sent).
    pub code: Zeroizing<String>,
    /// Device name.
    pub device_name: String,
    /// Passphrase (wiped once sent).
    pub passphrase: Zeroizing<String>,
    /// Passphrase again (wiped once sent).
    pub passphrase_again: Zeroizing<String>,
    /// The last attempt's failure.
    pub error: Option<EnrollFailure>,
    /// Whether the worker is enrolling now.
    pub busy: bool,
}

impl EnrollForm {
    /// An empty form; the device name defaults to the host name.
    pub fn new() -> Self {
        let device_name = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| {
                std::fs::read_to_string("/etc/hostname")
                    .ok()
                    .map(|h| h.trim().to_owned())
            })
            .unwrap_or_default();
        Self {
            device_name,
            ..Self::default()
        }
    }

    /// Draws the form; on a valid submit returns the request and the
    /// passphrase (the form's secret fields are wiped).
    pub fn show(
        &mut self,
        ui: &mut Ui,
        lang: Lang,
        config_dir: PathBuf,
    ) -> Option<(EnrollRequest, Passphrase)> {
        ui.heading(lang.t(Msg::EnrollTitle));
        ui.label(lang.t(Msg::EnrollIntro));
        ui.add_space(8.0);
        let mut submit = false;
        egui::Grid::new("enroll-form")
            .num_columns(2)
            .spacing([12.0, 6.0])
            .show(ui, |ui| {
                let mut row = |ui: &mut Ui, label: Msg, text: &mut String, secret: bool| {
                    let label = ui.label(lang.t(label));
                    let field = ui
                        .add(
                            TextEdit::singleline(text)
                                .password(secret)
                                .desired_width(360.0),
                        )
                        .labelled_by(label.id);
                    submit |= field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                    ui.end_row();
                };
                if self.manual {
                    row(ui, Msg::ServerUrl, &mut self.server_url, false);
                    row(ui, Msg::CaPath, &mut self.ca_path, false);
                    row(ui, Msg::UserName, &mut self.user, false);
                    row(ui, Msg::EnrollCode, &mut self.code, false);
                } else {
                    let label = ui.label(lang.t(Msg::Invitation));
                    ui.add(
                        TextEdit::multiline(&mut *self.invitation)
                            .hint_text(lang.t(Msg::InvitationHint))
                            .desired_rows(2)
                            .desired_width(360.0),
                    )
                    .labelled_by(label.id);
                    ui.end_row();
                }
                row(ui, Msg::DeviceName, &mut self.device_name, false);
                row(ui, Msg::Passphrase, &mut self.passphrase, true);
                row(ui, Msg::PassphraseAgain, &mut self.passphrase_again, true);
            });
        ui.checkbox(&mut self.manual, lang.t(Msg::EnrollManual));
        ui.add_space(8.0);
        if self.busy {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(lang.t(Msg::Enrolling));
            });
            return None;
        }
        submit |= ui.button(lang.t(Msg::EnrollButton)).clicked();
        if let Some(error) = &self.error {
            let (text, detail) = error.texts(lang);
            ui.add_space(8.0);
            ui.colored_label(Color32::from_rgb(200, 40, 40), text);
            if let Some(detail) = detail {
                ui.label(RichText::new(detail).weak().monospace());
            }
        }
        if submit {
            self.submit(config_dir)
        } else {
            None
        }
    }

    /// Checks the fields; on success wipes the secrets from the form.
    fn submit(&mut self, config_dir: PathBuf) -> Option<(EnrollRequest, Passphrase)> {
        let source_filled = if self.manual {
            [&self.server_url, &self.ca_path, &*self.code]
                .iter()
                .all(|f| !f.trim().is_empty())
        } else {
            !self.invitation.trim().is_empty()
        };
        if !source_filled || self.device_name.trim().is_empty() || self.passphrase.is_empty() {
            self.error = Some(EnrollFailure::Missing);
            return None;
        }
        let invitations = if self.manual {
            Vec::new()
        } else {
            match parse_invitations(&self.invitation) {
                Ok(invitations) => invitations,
                Err(failure) => {
                    self.error = Some(failure);
                    return None;
                }
            }
        };
        if *self.passphrase != *self.passphrase_again {
            self.error = Some(EnrollFailure::PassphraseMismatch);
            self.passphrase.zeroize();
            self.passphrase_again.zeroize();
            return None;
        }
        let passphrase = Passphrase::new(std::mem::take(&mut *self.passphrase)).ok()?;
        self.passphrase_again.zeroize();
        let source = if self.manual {
            EnrollSource::Typed {
                server_url: self.server_url.trim().to_owned(),
                ca_path: PathBuf::from(self.ca_path.trim()),
                user: self.user.trim().to_owned(),
                code: Zeroizing::new(std::mem::take(&mut *self.code)),
            }
        } else {
            self.invitation.zeroize();
            EnrollSource::Invitations(invitations)
        };
        let request = EnrollRequest {
            config_dir,
            source,
            device_name: self.device_name.trim().to_owned(),
        };
        self.error = None;
        self.busy = true;
        Some((request, passphrase))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_says_something_in_both_languages() {
        let all = [
            EnrollFailure::Missing,
            EnrollFailure::PassphraseMismatch,
            EnrollFailure::BadUrl("x".into()),
            EnrollFailure::CaUnreadable("x".into()),
            EnrollFailure::BadCa("x".into()),
            EnrollFailure::BadInvitation("x".into()),
            EnrollFailure::CaMismatch("x".into()),
            EnrollFailure::WrongCode,
            EnrollFailure::Unreachable("x".into()),
            EnrollFailure::AlreadyEnrolled,
            EnrollFailure::Denied(DenyReason::UserSuspended),
            EnrollFailure::Other("x".into()),
        ];
        for failure in all {
            let (en, _) = failure.texts(Lang::En);
            let (ja, _) = failure.texts(Lang::Ja);
            assert!(en.is_ascii() && !en.is_empty(), "{failure:?}");
            assert!(!ja.is_ascii(), "{failure:?} has Japanese");
        }
    }

    #[test]
    fn a_url_that_is_not_https_fails_before_anything_is_read() {
        let request = EnrollRequest {
            config_dir: PathBuf::from("/nonexistent"),
            source: EnrollSource::Typed {
                server_url: "http://kas.example".into(),
                ca_path: PathBuf::from("/nonexistent/ca.pem"),
                user: "alice".into(),
                code: Zeroizing::new("X".into()),
            },
            device_name: "pc".into(),
        };
        let passphrase = Passphrase::new("p").expect("a passphrase");
        assert!(matches!(
            run(request, &passphrase),
            Err(EnrollFailure::BadUrl(_))
        ));
    }

    #[test]
    fn pasted_invitations_are_found_among_the_words_around_them() {
        let ca = "ab".repeat(32);
        let first = format!(
            "irm-invite:1?server=https://kas.example:8443&ca={ca}&code=ABCDE-FGHIJ&part=1/2"
        );
        let second = format!(
            "irm-invite:1?server=https://kas.example:8443&ca={ca}&code=KLMNO-PQRST&part=2/2"
        );
        let chat = format!("From Sato: '{second}'\nFrom Suzuki:\n  {first}\n");
        let found = parse_invitations(&chat).unwrap();
        assert_eq!(found.len(), 2);
        let whole = Invitation::combine(&found).unwrap();
        assert_eq!(*whole.code, "ABCDE-FGHIJ-KLMNO-PQRST");
        // A half alone, a damaged line, or nothing at all: said before any work.
        for text in [
            first.as_str(),
            &first.replace("&ca=ab", "&ca=zz"),
            "ABCDE-FGHIJ",
        ] {
            assert!(
                matches!(
                    parse_invitations(text),
                    Err(EnrollFailure::BadInvitation(_))
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn the_form_wipes_the_invitation_once_sent_and_refuses_a_half_alone() {
        let ca = "ab".repeat(32);
        let mut form = EnrollForm::new();
        form.device_name = "pc".into();
        form.invitation = Zeroizing::new(format!(
            "irm-invite:1?server=https://kas.example:8443&ca={ca}&code=ABCDE-FGHIJ&part=1/2"
        ));
        form.passphrase = Zeroizing::new("a passphrase".into());
        form.passphrase_again = Zeroizing::new("a passphrase".into());
        assert!(form.submit(PathBuf::from("/nonexistent")).is_none());
        assert!(matches!(form.error, Some(EnrollFailure::BadInvitation(_))));
        assert!(!form.invitation.is_empty(), "kept, to be completed");

        form.invitation = Zeroizing::new(format!(
            "irm-invite:1?server=https://kas.example:8443&ca={ca}&code=ABCDE-FGHIJ-KLMNO-PQRST"
        ));
        let (request, _) = form.submit(PathBuf::from("/nonexistent")).unwrap();
        assert!(matches!(request.source, EnrollSource::Invitations(ref v) if v.len() == 1));
        assert!(form.invitation.is_empty() && form.passphrase.is_empty());
    }
}
