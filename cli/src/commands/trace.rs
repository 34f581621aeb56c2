//! `irm trace`: names the export a leaked customer list came from, by the
//! canaries it carries, or the grant a watermark id names (PROTOCOL.md
//! §7.8). Finding the contact values in the file is `irm_client::canary`'s
//! (and, for a workbook, the cells read here); the lookup and its audit
//! record are the key server's. Only the contact values leave this computer.

use std::fmt::Write as _;
use std::io::{Cursor, Read};

use anyhow::{Context, Result};
use calamine::{Data, Reader};
use irm_core::protocol::{TraceAnswer, WatermarkTrace};

use crate::cli::TraceArgs;
use crate::exit::Refusal;
use crate::online;
use crate::output::Input;
use crate::report::Out;
use crate::text::{self, printable};

/// The most bytes of a leaked file read (a list of millions of rows fits).
const MAX_INPUT: u64 = 1 << 30;

pub(crate) fn run(args: &TraceArgs) -> Result<()> {
    let Some(reason) = args.reason.as_deref().filter(|r| !r.trim().is_empty()) else {
        return Err(Refusal::usage(
            "a trace is a privileged lookup, recorded with why it was made: --reason is required",
        )
        .hint("irm trace leaked.csv --reason 'INC-77: list posted on a forum'")
        .into());
    };
    let out = Out {
        json: args.json,
        qr: false,
    };
    // Read the file before the passphrase: a wrong path needs no unlock.
    let values = match &args.input {
        Some(path) => Some(contact_values(&Input::from_arg(path))?),
        None => None,
    };
    let mut session = online::unlock(&args.passphrase)?;
    session.set_reason(Some(reason)).context("--reason")?;
    if let Some(id) = &args.watermark {
        let answer = session
            .trace_watermark(id)
            .with_context(|| format!("looking up watermark id {}", printable(id)))?;
        if answer.grants.is_empty() {
            return Err(Refusal::not_found(format!(
                "no grant has the watermark id {}",
                answer.watermark_id
            ))
            .hint("check the id as read off the photo (12 symbols, such as W7K2-9QXM-4HTD)")
            .into());
        }
        return out.show(&answer, || watermark_text(&answer));
    }
    let values: Vec<String> = values.unwrap_or_default().into_iter().collect();
    let answer = session
        .trace_canaries(&values)
        .context("asking the key server about the canaries")?;
    if answer.exports.is_empty() {
        return Err(Refusal::not_found(format!(
            "no canaries found: none of the {} phone numbers and e-mail addresses in the file is a canary of any export",
            values.len()
        ))
        .hint(
            "the list did not leave through an approved export, or its canaries (or contact columns) were removed; \
             look for a watermark id in photos, and in the audit log for who opened the file",
        )
        .into());
    }
    out.show(&answer, || trace_text(&answer))
}

/// The phone numbers and e-mail addresses in the input, as contact keys.
fn contact_values(input: &Input) -> Result<std::collections::BTreeSet<String>> {
    let opened = input.open()?;
    let mut bytes = Vec::new();
    opened
        .reader
        .take(MAX_INPUT + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {input}"))?;
    if bytes.len() as u64 > MAX_INPUT {
        return Err(Refusal::usage(format!("{input} is larger than 1 GiB"))
            .hint("trace a part of it")
            .into());
    }
    // A workbook (XLSX, XLS): the cells of every sheet, as text.
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
        let mut text = String::new();
        let mut book = calamine::open_workbook_auto_from_rs(Cursor::new(&bytes))
            .with_context(|| format!("reading {input} as a workbook"))?;
        for name in book.sheet_names() {
            let Ok(range) = book.worksheet_range(&name) else {
                continue;
            };
            for row in range.rows() {
                for cell in row {
                    match cell {
                        // A phone number typed into a number cell lost its
                        // leading zero: give it back.
                        Data::Float(f) if f.fract() == 0.0 && (1e8..1e10).contains(f) => {
                            let _ = write!(text, "0{}", *f as u64);
                        }
                        Data::Int(i) if (100_000_000..10_000_000_000).contains(i) => {
                            let _ = write!(text, "0{i}");
                        }
                        other => {
                            let _ = write!(text, "{other}");
                        }
                    }
                    text.push('\t');
                }
                text.push('\n');
            }
        }
        return Ok(irm_client::canary::contact_values_in(&text));
    }
    Ok(irm_client::canary::contact_values(&bytes))
}

fn trace_text(answer: &TraceAnswer) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{} phone numbers and e-mail addresses checked; the list carries canaries of {} export{}:",
        answer.checked,
        answer.exports.len(),
        if answer.exports.len() == 1 { "" } else { "s" }
    );
    for e in &answer.exports {
        let _ = writeln!(t, "\nexport {}", e.export_id);
        let _ = writeln!(
            t,
            "  canaries: {} of its {} in this file",
            e.matched, e.canaries
        );
        let _ = writeln!(t, "  person:   {}", printable(&e.user));
        let _ = writeln!(
            t,
            "  device:   {}{}",
            e.device_id,
            e.device_name
                .as_deref()
                .map(|n| format!(" ({})", printable(n)))
                .unwrap_or_default()
        );
        let approvers = if e.approvers.is_empty() {
            "none recorded".to_owned()
        } else {
            e.approvers
                .iter()
                .map(|a| printable(a))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            t,
            "  approved: {approvers}{}",
            e.request_id
                .as_deref()
                .map(|r| format!(" (request {r})"))
                .unwrap_or_default()
        );
        let _ = writeln!(t, "  time:     {}", text::time(e.exported_at));
        let _ = writeln!(t, "  file:     {} ({} rows)", e.file_id, e.rows);
        let _ = writeln!(
            t,
            "  grant:    {} (watermark {})",
            e.grant_id, e.watermark_id
        );
    }
    t
}

fn watermark_text(answer: &WatermarkTrace) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "watermark {}:", answer.watermark_id);
    for g in &answer.grants {
        let _ = writeln!(
            t,
            "\ngrant {}{}",
            g.grant_id,
            if g.renew { " (a renewal)" } else { "" }
        );
        let _ = writeln!(t, "  person: {}", printable(&g.user));
        let _ = writeln!(
            t,
            "  device: {}{}",
            g.device_id,
            g.device_name
                .as_deref()
                .map(|n| format!(" ({})", printable(n)))
                .unwrap_or_default()
        );
        let _ = writeln!(
            t,
            "  time:   {} (lease to {})",
            text::time(g.issued_at),
            text::time(g.lease_expires_at)
        );
        let _ = writeln!(t, "  file:   {}", g.file_id);
    }
    t
}
