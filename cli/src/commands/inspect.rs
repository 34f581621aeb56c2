//! `irm inspect`: shows what a sealed file's header says (policy, key
//! servers, sizes) as text or as one JSON object. It needs no key, reads only
//! the header, and prints nothing of the content; the encrypted metadata
//! (file name, media type) stays encrypted.
//!
//! Nothing shown here is authenticated: only the key server's unwrap proves
//! the header unaltered. Strings from the header are escaped before they
//! reach a terminal.

use std::fmt::Write as _;
use std::io::{BufReader, Write as _};

use anyhow::{Context, Result};
use irm_core::{Policy, Rights, SealedHeader, VERSION};
use serde::Serialize;

use crate::cli::InspectArgs;
use crate::output::Input;
use crate::report::print_json;
use crate::text::{self, printable};

/// The `--json` object; its shape is documented in `irm inspect --help`.
#[derive(Serialize)]
struct InspectReport {
    ok: bool,
    path: Option<String>,
    format_version: u16,
    file_id: String,
    created: Option<String>,
    created_unix: u64,
    issuer: Option<String>,
    chunk_len: u32,
    header_len: u64,
    file_len: Option<u64>,
    key_access: Vec<KeyAccessReport>,
    policy: PolicyReport,
}

#[derive(Serialize)]
struct KeyAccessReport {
    kas_url: String,
    key_id: String,
}

#[derive(Serialize)]
struct PolicyReport {
    grants: Vec<GrantReport>,
    not_before: Option<String>,
    not_before_unix: Option<u64>,
    not_after: Option<String>,
    not_after_unix: Option<u64>,
    max_lease_secs: u32,
    watermark_required: bool,
    classification: Option<String>,
}

#[derive(Serialize)]
struct GrantReport {
    recipients: Vec<String>,
    rights: Vec<&'static str>,
}

pub(crate) fn run(args: &InspectArgs) -> Result<()> {
    let input = Input::from_arg(&args.input);
    let opened = input.open()?;
    let mut reader = BufReader::new(opened.reader);
    let header = SealedHeader::read_from(&mut reader)
        .with_context(|| format!("reading the header of {input}"))?;
    let report = report(
        &header,
        input.path().map(|p| p.display().to_string()),
        opened.regular_len,
    );
    if args.json {
        print_json(&report);
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    out.write_all(text_report(&report, header.policy()).as_bytes())
        .and_then(|()| out.flush())
        .context("writing standard output")
}

fn report(header: &SealedHeader, path: Option<String>, file_len: Option<u64>) -> InspectReport {
    let policy = header.policy();
    InspectReport {
        ok: true,
        path,
        format_version: VERSION,
        file_id: header.file_id().to_string(),
        created: text::rfc3339(header.created_at_unix()),
        created_unix: header.created_at_unix(),
        issuer: header.issuer().map(str::to_owned),
        chunk_len: header.chunk_len(),
        header_len: header.encoded_len() as u64,
        file_len,
        key_access: header
            .key_access()
            .iter()
            .map(|entry| KeyAccessReport {
                kas_url: entry.kas_url.clone(),
                key_id: entry.key_id.to_string(),
            })
            .collect(),
        policy: PolicyReport {
            grants: policy
                .grants
                .iter()
                .map(|grant| GrantReport {
                    recipients: grant.recipients.iter().map(|r| r.encoded()).collect(),
                    rights: grant.rights.names(),
                })
                .collect(),
            not_before: policy.not_before_unix.and_then(text::rfc3339),
            not_before_unix: policy.not_before_unix,
            not_after: policy.not_after_unix.and_then(text::rfc3339),
            not_after_unix: policy.not_after_unix,
            max_lease_secs: policy.max_lease_secs,
            watermark_required: policy.watermark_required,
            classification: policy.classification.clone(),
        },
    }
}

/// Rights as `view,print`, with bits from a newer version shown as hex.
fn rights_text(rights: Rights) -> String {
    let unknown = rights.bits() & !Rights::all().bits();
    let known = rights & Rights::all();
    match (known.is_empty(), unknown) {
        (_, 0) => known.to_string(),
        (true, bits) => format!("(unknown rights {bits:#x})"),
        (false, bits) => format!("{known} (and unknown rights {bits:#x})"),
    }
}

fn text_report(report: &InspectReport, policy: &Policy) -> String {
    const W: usize = 16;
    let mut out = String::new();
    // Writing to a String cannot fail.
    let mut row = |name: &str, value: &str| {
        let _ = writeln!(out, "{name:<W$}{value}");
    };
    if let Some(path) = &report.path {
        row("file", &printable(path));
    }
    row("format version", &report.format_version.to_string());
    row("file id", &report.file_id);
    row("created", &text::time(report.created_unix));
    row(
        "issuer",
        &report
            .issuer
            .as_deref()
            .map_or("(not stated)".into(), |i| printable(i).into_owned()),
    );
    row("chunk size", &text::bytes(u64::from(report.chunk_len)));
    row("header size", &text::bytes(report.header_len));
    if let Some(len) = report.file_len {
        row("file size", &text::bytes(len));
    }
    for (i, entry) in report.key_access.iter().enumerate() {
        let name = if i == 0 { "key server" } else { "" };
        row(
            name,
            &format!("{} (key id {})", printable(&entry.kas_url), entry.key_id),
        );
    }
    for (i, grant) in policy.grants.iter().enumerate() {
        let name = if i == 0 { "grants" } else { "" };
        let recipients: Vec<String> = grant
            .recipients
            .iter()
            .map(|r| printable(&r.encoded()).into_owned())
            .collect();
        row(
            name,
            &format!("{} -> {}", recipients.join(", "), rights_text(grant.rights)),
        );
    }
    let when = |t: Option<u64>| t.map_or("(none)".to_owned(), text::time);
    row("not before", &when(policy.not_before_unix));
    row("not after", &when(policy.not_after_unix));
    row("max lease", &text::duration(policy.max_lease_secs));
    row(
        "watermark",
        if policy.watermark_required {
            "required"
        } else {
            "not required"
        },
    );
    row(
        "classification",
        &policy
            .classification
            .as_deref()
            .map_or("(none)".into(), |l| printable(l).into_owned()),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_right_bits_are_shown_not_dropped() {
        assert_eq!(rights_text(Rights::VIEW | Rights::PRINT), "view,print");
        let future = Rights::from_bits_retain(Rights::VIEW.bits() | 1 << 20);
        assert_eq!(rights_text(future), "view (and unknown rights 0x100000)");
        assert_eq!(
            rights_text(Rights::from_bits_retain(1 << 20)),
            "(unknown rights 0x100000)"
        );
    }
}
