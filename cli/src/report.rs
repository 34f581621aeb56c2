//! Printing a command's outcome: errors as two lines of text on stderr (what
//! went wrong, then what to do), or as one JSON object on stdout with
//! `--json`; and successful results, as JSON or as text ([`Out`]). Which exit code and advice an
//! error gets is decided in `exit.rs`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::exit;

/// The JSON object printed for a failure. Its shape is stable: see
/// `exit::EXIT_CODES_HELP`.
#[derive(Serialize)]
struct JsonFailure<'a> {
    ok: bool,
    kind: &'static str,
    exit_code: u8,
    /// Only for denials: the key server's `DenyReason` string.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    message: String,
    hint: Option<&'a str>,
}

/// Reports `err` and returns the exit code for it.
pub(crate) fn failure(err: &anyhow::Error, json: bool) -> ExitCode {
    let diagnosis = exit::diagnose(err);
    // `{:#}` joins the chain: "reading a.irm: chunk 2 failed authentication: ...".
    let message = format!("{err:#}");
    if json {
        print_json(&JsonFailure {
            ok: false,
            kind: diagnosis.exit.kind(),
            exit_code: diagnosis.exit.code(),
            reason: diagnosis.reason.map(|r| r.as_str()),
            message,
            hint: diagnosis.hint.as_deref(),
        });
    } else {
        eprintln!("error: {message}");
        if let Some(hint) = &diagnosis.hint {
            eprintln!("hint: {hint}");
        }
    }
    ExitCode::from(diagnosis.exit.code())
}

/// Prints one JSON object and a newline on stdout.
pub(crate) fn print_json(value: &impl Serialize) {
    let text = serde_json::to_string(value).expect("our JSON types always serialize");
    let mut out = std::io::stdout().lock();
    // A closed stdout leaves nobody to tell; the exit code still says it.
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}

/// `{"ok": true}` for calls that return nothing.
#[derive(Serialize)]
struct Done {
    ok: bool,
}

/// Where results go: JSON, or text built by the caller.
pub(crate) struct Out {
    pub(crate) json: bool,
    /// Also draw invitations as QR codes (`irm admin --qr`).
    pub(crate) qr: bool,
}

impl Out {
    /// Prints `value` as JSON, or `text()` as text.
    pub(crate) fn show(&self, value: &impl Serialize, text: impl FnOnce() -> String) -> Result<()> {
        if self.json {
            print_json(value);
            return Ok(());
        }
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(text().as_bytes())
            .and_then(|()| stdout.flush())
            .context("writing standard output")
    }

    /// Reports a call that returns nothing.
    pub(crate) fn done(&self, message: String) -> Result<()> {
        if self.json {
            print_json(&Done { ok: true });
        } else {
            eprintln!("{message}");
        }
        Ok(())
    }
}
