//! The copy gate: nothing reaches the clipboard before the key server has
//! recorded it, and when a copy does not happen the person is told why.
//!
//! - [`ClipboardGate`], an egui plugin, takes every clipboard write out of
//!   the frame's output and holds it; the app reports it
//!   ([`crate::worker::Command::ReportCopy`], with [`copied_rows`] rows) and
//!   hands the gate back only text the key server recorded.
//! - [`CopyRefusal`] is why a copy did not happen (no copy right, a
//!   take-out that needs approval first, another refusal), worded here in
//!   both languages, as `PrintError::message` is in `print.rs`.
//!
//! Which actions exist is `rights.rs`'s; which rows a table copies is the
//! table's; sending the report is the app's.

use irm_core::protocol::DenyReason;
use zeroize::{Zeroize, Zeroizing};

use crate::i18n::{Lang, Msg};
use crate::model::Failure;

/// The last word on the clipboard: an egui plugin that sees the frame's
/// final output, after egui's own label-selection copy (which runs at the
/// end of the pass, after the app has drawn). It removes every clipboard
/// write and holds copied text for the app, which has the copy recorded
/// first; only text the app releases after the key server recorded it goes
/// out. Primary-selection text and images are always dropped.
#[derive(Default)]
pub struct ClipboardGate {
    /// Text copied last frame, waiting for the app.
    pub(crate) held: Option<Zeroizing<String>>,
    /// Recorded text to put on the clipboard this frame.
    pub(crate) release: Option<String>,
}

impl egui::Plugin for ClipboardGate {
    fn debug_name(&self) -> &'static str {
        "irm-clipboard-gate"
    }

    fn output_hook(&mut self, ctx: &egui::Context, output: &mut egui::FullOutput) {
        let mut held = None;
        output
            .platform_output
            .commands
            .retain_mut(|command| match command {
                egui::OutputCommand::CopyText(text) => {
                    held = Some(Zeroizing::new(std::mem::take(text)));
                    false
                }
                egui::OutputCommand::TextSelectionSettled(text) => {
                    text.zeroize();
                    false
                }
                egui::OutputCommand::CopyImage(_) => false,
                _ => true,
            });
        if held.is_some() {
            self.held = held;
            ctx.request_repaint(); // the app reports it next frame
        }
        if let Some(text) = self.release.take() {
            output
                .platform_output
                .commands
                .push(egui::OutputCommand::CopyText(text));
        }
    }
}

/// The rows a copy of `text` is reported as (PROTOCOL.md §7.3: the viewer
/// counts one a line). A cell's own line breaks count extra, which errs on
/// the side of asking for approval.
pub fn copied_rows(text: &str) -> usize {
    text.lines().count().max(1)
}

/// Whether this frame's input asks for a copy: the Copy or Cut event
/// (what Ctrl+C and Ctrl+X become in the window) or the keys themselves.
pub fn copy_requested(input: &egui::InputState) -> bool {
    input.events.iter().any(|event| match event {
        egui::Event::Copy | egui::Event::Cut => true,
        egui::Event::Key {
            key: egui::Key::C | egui::Key::X,
            pressed: true,
            modifiers,
            ..
        } => modifiers.command,
        _ => false,
    })
}

/// Why a copy did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyRefusal {
    /// The viewer did not offer it: `rights::decide` said no, for this
    /// reason (no copy right, the lease ended).
    NotPermitted(Msg),
    /// The key server refused `rows` rows without an approved take-out
    /// (`export_approval_required`, PROTOCOL.md §7.3).
    NeedsTakeOut {
        /// The rows reported.
        rows: usize,
    },
    /// The key server refused for another reason.
    Denied(DenyReason),
    /// The copy could not be recorded (the key server unreachable, the
    /// lease over): it did not happen.
    NotRecorded,
}

impl CopyRefusal {
    /// Why the key server's answer to a copy of `rows` rows was not a yes.
    pub fn from_failure(failure: &Failure, rows: usize) -> Self {
        match failure {
            Failure::Denied(DenyReason::ExportApprovalRequired) => Self::NeedsTakeOut { rows },
            // The grant the viewer holds has the right, but the server's
            // (after an administrator's restriction) does not.
            Failure::Denied(DenyReason::RightNotGranted) => Self::NotPermitted(Msg::NoCopyRight),
            Failure::Denied(reason) | Failure::DeniedCall { reason, .. } => Self::Denied(*reason),
            _ => Self::NotRecorded,
        }
    }

    /// (what happened, what to do next) in `lang`. `file` is the sealed
    /// file's name, for the command that asks for approval.
    pub fn texts(&self, lang: Lang, file: &str) -> (String, Option<String>) {
        let not_copied = |why: &str| match lang {
            Lang::En => format!("Not copied: {}", lowercase_first(why)),
            Lang::Ja => format!("コピーしませんでした: {why}"),
        };
        match self {
            Self::NotPermitted(why) => {
                let next = (*why == Msg::NoCopyRight).then(|| lang.t(Msg::AskForCopyRight).into());
                (not_copied(lang.t(*why)), next)
            }
            Self::NeedsTakeOut { rows } => {
                let file = shell_word(file);
                match lang {
                    Lang::En => (
                        format!(
                            "Not copied: copying {rows} {} at once needs an approved take-out first.",
                            if *rows == 1 { "row" } else { "rows" }
                        ),
                        Some(format!(
                            "Ask for one with `irm export request {file} --for copy --reason TICKET`; \
                             once administrators approve it, copy again from this computer within an hour."
                        )),
                    ),
                    Lang::Ja => (
                        format!(
                            "コピーしませんでした: {rows}行を一度にコピーするには、先に持ち出しの承認が必要です。"
                        ),
                        Some(format!(
                            "`irm export request {file} --for copy --reason チケット番号` で申請し、\
                             管理者の承認後1時間以内にこのパソコンからもう一度コピーしてください。"
                        )),
                    ),
                }
            }
            Self::Denied(reason) => {
                let (title, next) = lang.deny_reason(*reason);
                (not_copied(title), Some(next.into()))
            }
            Self::NotRecorded => (
                lang.t(Msg::CopyNotRecorded).into(),
                Some(lang.t(Msg::CopyNotRecordedNext).into()),
            ),
        }
    }
}

/// "The key server ..." as it reads after "Not copied: ".
fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `name` as one word a POSIX shell reads back unchanged: as it is when it
/// holds nothing the shell treats specially, else in single quotes.
fn shell_word(name: &str) -> String {
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || "._-+/@%:,=".contains(c));
    if plain {
        name.to_owned()
    } else {
        format!("'{}'", name.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_line_is_a_row() {
        assert_eq!(copied_rows("1001\t山田"), 1);
        assert_eq!(copied_rows("1001\t山田\n1002\t鈴木"), 2);
        assert_eq!(
            copied_rows("1001\t\"line\nbreak\""),
            2,
            "errs towards approval"
        );
        assert_eq!(copied_rows(""), 1);
    }

    #[test]
    fn refusals_say_why_and_what_next_in_both_languages() {
        let cases = [
            (
                Failure::Denied(DenyReason::ExportApprovalRequired),
                CopyRefusal::NeedsTakeOut { rows: 150 },
            ),
            (
                Failure::Denied(DenyReason::RightNotGranted),
                CopyRefusal::NotPermitted(Msg::NoCopyRight),
            ),
            (
                Failure::Denied(DenyReason::FileRevoked),
                CopyRefusal::Denied(DenyReason::FileRevoked),
            ),
            (
                Failure::Unreachable("connection refused".into()),
                CopyRefusal::NotRecorded,
            ),
            (Failure::LeaseExpired, CopyRefusal::NotRecorded),
        ];
        for (failure, want) in cases {
            let refusal = CopyRefusal::from_failure(&failure, 150);
            assert_eq!(refusal, want, "{failure:?}");
            let (en, en_next) = refusal.texts(Lang::En, "calls.csv.irm");
            let (ja, ja_next) = refusal.texts(Lang::Ja, "calls.csv.irm");
            assert!(
                en.starts_with("Not copied") || en.contains("not allowed"),
                "{en}"
            );
            assert!(
                !ja.is_ascii() && ja_next.is_some_and(|n| !n.is_ascii()),
                "{ja}"
            );
            assert!(en_next.is_some(), "{en}");
        }
        let (en, next) = CopyRefusal::NeedsTakeOut { rows: 150 }.texts(Lang::En, "calls.csv.irm");
        assert!(en.contains("150 rows"), "{en}");
        assert!(
            next.unwrap()
                .contains("`irm export request calls.csv.irm --for copy --reason TICKET`")
        );
        let (en, _) = CopyRefusal::NeedsTakeOut { rows: 1 }.texts(Lang::En, "x");
        assert!(en.contains("copying 1 row at once"), "{en}");
        let (en, _) = CopyRefusal::Denied(DenyReason::FileRevoked).texts(Lang::En, "x");
        assert_eq!(en, "Not copied: an administrator has revoked this file.");
    }

    #[test]
    fn the_file_in_the_command_is_one_shell_word() {
        assert_eq!(shell_word("calls.csv.irm"), "calls.csv.irm");
        assert_eq!(shell_word("顧客リスト.csv.irm"), "顧客リスト.csv.irm");
        assert_eq!(shell_word("call list.csv.irm"), "'call list.csv.irm'");
        assert_eq!(shell_word("it's $HOME.irm"), r"'it'\''s $HOME.irm'");
        assert_eq!(shell_word(""), "''");
    }
}
