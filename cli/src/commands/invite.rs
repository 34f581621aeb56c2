//! How an administrator is handed an enrollment code to pass on: as a
//! one-line invitation (docs/PROTOCOL.md §3.4) on stdout, with `--qr` also
//! drawn as a QR code on the terminal, so that the person needs neither a
//! CA file nor the server's address from anywhere else. A code already
//! issued is never lost: if no invitation can be made, the bare code is
//! printed with the reason.

use anyhow::Result;
use irm_client::Session;
use irm_core::invitation::CodePart;
use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;
use serde::Serialize;

use crate::report::Out;

/// The JSON shape: the server's answer with the invitation beside it.
#[derive(Serialize)]
struct WithInvitation<'a, T: Serialize> {
    #[serde(flatten)]
    answer: &'a T,
    /// `null` when it could not be made (the code is still in the answer).
    invitation: Option<String>,
}

/// Prints `code` (whole or one half) as an invitation: the line on
/// stdout, the QR code on stderr with `out.qr`; with `--json`, `answer`
/// with an `invitation` field.
pub(super) fn show(
    session: &Session,
    code: &str,
    part: CodePart,
    answer: &impl Serialize,
    out: &Out,
) -> Result<()> {
    let invitation = match session.invitation(code, part) {
        Ok(invitation) => Some(invitation.to_string()),
        Err(e) => {
            eprintln!(
                "warning: no invitation line ({e}); hand over the code itself, the server URL {} and its CA certificate instead",
                session.server_url()
            );
            None
        }
    };
    if out.json {
        return out.show(&WithInvitation { answer, invitation }, String::new);
    }
    let Some(line) = invitation else {
        return out.show(answer, || format!("{code}\n"));
    };
    eprintln!(
        "(the code alone, for a person who types it with --server and --ca: {code})\n\
         the person runs: irm enroll 'INVITATION'{} (or pastes it into the viewer's registration form)",
        if part == CodePart::Whole {
            ""
        } else {
            " 'THE OTHER HALF'S INVITATION'"
        }
    );
    if out.qr {
        eprintln!("{}", qr_text(&line));
    }
    out.show(answer, || format!("{line}\n"))
}

/// `text` as a QR code of half-height blocks, light on dark as terminals
/// show best, with its quiet zone.
fn qr_text(text: &str) -> String {
    match QrCode::new(text.as_bytes()) {
        Ok(code) => code
            .render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .build(),
        // An invitation is a few hundred bytes; a QR code holds ~2.9 KB.
        Err(e) => format!("(no QR code: {e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_code_is_drawn_in_blocks_for_an_invitation_sized_text() {
        let invitation = format!(
            "irm-invite:1?server=https://kas.example:8443&ca={}&code=ABCDE-FGHIJ-KLMNO-PQRST",
            "ab".repeat(32)
        );
        let text = qr_text(&invitation);
        assert!(!text.starts_with("(no QR code"), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        // Square: half-height blocks make half as many lines as columns.
        let width = lines[0].chars().count();
        assert!(width >= 25, "{width}");
        assert_eq!(lines.len(), width.div_ceil(2));
        assert!(text.contains('▀') || text.contains('▄') || text.contains('█'));
    }
}
