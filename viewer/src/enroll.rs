//! First start on a computer without credentials: the enrollment screen
//! (server URL, CA certificate file, user name, one-time code, device name,
//! passphrase twice), and the enrollment itself, which the worker thread
//! runs through `irm_client::Enrollment`.
//!
//! Failures are sorted into what the person can fix (a mistyped code, the
//! wrong CA file, a server that cannot be reached) and said in Japanese or
//! English. The passphrase and the code live in zeroizing strings and are
//! wiped once handed over.

use std::io::Read;
use std::path::PathBuf;

use egui::{Color32, RichText, TextEdit, Ui};
use irm_client::{ClientError, Enrollment, Passphrase, Session, normalize_server_url};
use irm_core::protocol::DenyReason;
use zeroize::{Zeroize, Zeroizing};

use crate::i18n::{Lang, Msg};

/// A CA certificate is a few kilobytes; anything larger is not one.
const MAX_CA_LEN: u64 = 1024 * 1024;

/// What enrolling needs; the CA file is read by the worker, not the UI.
#[derive(Debug)]
pub struct EnrollRequest {
    /// Where the credentials go (`irm_client::config_dir()`).
    pub config_dir: PathBuf,
    /// `https://host:port`.
    pub server_url: String,
    /// The key server's CA certificate (PEM file).
    pub ca_path: PathBuf,
    /// The user the code was issued for.
    pub user: String,
    /// The one-time code.
    pub code: Zeroizing<String>,
    /// A label for this computer.
    pub device_name: String,
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
            ClientError::AlreadyEnrolled { .. } => Self::AlreadyEnrolled,
            _ => Self::Other(err.to_string()),
        }
    }
}

/// Checks the request, reads the CA file and enrolls (in the worker
/// thread: this reads a file and talks to the key server).
pub fn run(request: EnrollRequest, passphrase: &Passphrase) -> Result<Session, EnrollFailure> {
    let server_url = normalize_server_url(&request.server_url)
        .map_err(|e| EnrollFailure::BadUrl(e.to_string()))?;
    let path = &request.ca_path;
    let mut ca_pem = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CA_LEN).read_to_string(&mut ca_pem))
        .map_err(|e| EnrollFailure::CaUnreadable(format!("{}: {e}", path.display())))?;
    if !ca_pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(EnrollFailure::BadCa(format!(
            "{} holds no PEM certificate",
            path.display()
        )));
    }
    Enrollment {
        config_dir: request.config_dir,
        server_url,
        ca_pem,
        user: request.user,
        // The client takes a plain String; the code is single-use and the
        // server burns it once used, so the copy outliving this is harmless.
        code: request.code.as_str().to_owned(),
        device_name: request.device_name,
        replace: false,
    }
    .run(passphrase)
    .map_err(EnrollFailure::from_client)
}

/// The enrollment screen's fields and state.
#[derive(Default)]
pub struct EnrollForm {
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
                row(ui, Msg::ServerUrl, &mut self.server_url, false);
                row(ui, Msg::CaPath, &mut self.ca_path, false);
                row(ui, Msg::UserName, &mut self.user, false);
                row(ui, Msg::EnrollCode, &mut self.code, false);
                row(ui, Msg::DeviceName, &mut self.device_name, false);
                row(ui, Msg::Passphrase, &mut self.passphrase, true);
                row(ui, Msg::PassphraseAgain, &mut self.passphrase_again, true);
            });
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
        let filled = [
            &self.server_url,
            &self.ca_path,
            &self.user,
            &*self.code,
            &self.device_name,
            &*self.passphrase,
        ]
        .iter()
        .all(|f| !f.trim().is_empty());
        if !filled {
            self.error = Some(EnrollFailure::Missing);
            return None;
        }
        if *self.passphrase != *self.passphrase_again {
            self.error = Some(EnrollFailure::PassphraseMismatch);
            self.passphrase.zeroize();
            self.passphrase_again.zeroize();
            return None;
        }
        let passphrase = Passphrase::new(std::mem::take(&mut *self.passphrase)).ok()?;
        self.passphrase_again.zeroize();
        let request = EnrollRequest {
            config_dir,
            server_url: self.server_url.trim().to_owned(),
            ca_path: PathBuf::from(self.ca_path.trim()),
            user: self.user.trim().to_owned(),
            code: Zeroizing::new(std::mem::take(&mut *self.code)),
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
            server_url: "http://kas.example".into(),
            ca_path: PathBuf::from("/nonexistent/ca.pem"),
            user: "alice".into(),
            code: Zeroizing::new("X".into()),
            device_name: "pc".into(),
        };
        let passphrase = Passphrase::new("p").expect("a passphrase");
        assert!(matches!(
            run(request, &passphrase),
            Err(EnrollFailure::BadUrl(_))
        ));
    }
}
