//! `irm info`: asks the key server for a grant on a sealed file, as opening
//! it would (the server audits the request), and shows the effective rights,
//! the lease and the time left. Nothing is decrypted beyond the file's
//! encrypted metadata (its name and media type), which the grant unlocks.
//!
//! `irm inspect` is the offline view of the header alone.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufReader, Write as _};

use anyhow::{Context, Result};
use irm_client::Grant;
use irm_core::SealedHeader;
use irm_core::protocol::Notice;
use serde::Serialize;

use crate::cli::InfoArgs;
use crate::online;
use crate::report::print_json;
use crate::text::{self, printable};

/// The `--json` object; its shape is documented in `irm info --help`.
#[derive(Serialize)]
struct InfoReport {
    ok: bool,
    path: String,
    file_id: String,
    user: String,
    device_id: String,
    grant_id: String,
    rights: Vec<&'static str>,
    watermark_required: bool,
    lease_secs: u64,
    time_left_secs: u64,
    lease_expires: Option<String>,
    lease_expires_unix: u64,
    not_after: Option<String>,
    not_after_unix: Option<u64>,
    file_name: Option<String>,
    media_type: Option<String>,
    server: String,
    /// What the key server told the person with this grant (each once).
    notices: Vec<Notice>,
    /// Set when the server's audit checkpoint did not continue the one this
    /// device witnessed (PROTOCOL.md §9.2).
    audit_alarm: Option<String>,
}

pub(crate) fn run(args: &InfoArgs) -> Result<()> {
    let session = online::unlock(&args.passphrase)?;
    let path = &args.input;
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let header = SealedHeader::read_from(&mut BufReader::new(file))
        .with_context(|| format!("reading the header of {}", path.display()))?;
    let grant = session
        .grant(&header, false)
        .with_context(|| format!("asking the key server about {}", path.display()))?;
    let report = report(&grant, path.display().to_string(), session.server_url())?;
    if args.json {
        print_json(&report);
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    out.write_all(text_report(&report).as_bytes())
        .and_then(|()| out.flush())
        .context("writing standard output")
}

fn report(grant: &Grant, path: String, server: &str) -> Result<InfoReport> {
    let metadata = grant.verified_header()?.metadata().clone();
    Ok(InfoReport {
        ok: true,
        path,
        file_id: grant.file_id().to_string(),
        user: grant.user().to_owned(),
        device_id: grant.device_id().to_owned(),
        grant_id: grant.grant_id().to_owned(),
        rights: grant.rights().names(),
        watermark_required: grant.watermark_required(),
        lease_secs: grant.lease().as_secs(),
        time_left_secs: grant.time_left().as_secs(),
        lease_expires: text::rfc3339(grant.lease_expires_at()),
        lease_expires_unix: grant.lease_expires_at(),
        not_after: grant.not_after().and_then(text::rfc3339),
        not_after_unix: grant.not_after(),
        file_name: metadata.file_name,
        media_type: metadata.media_type,
        server: server.to_owned(),
        notices: grant.notices().to_vec(),
        audit_alarm: grant.witness_alarm().map(ToString::to_string),
    })
}

fn text_report(report: &InfoReport) -> String {
    const W: usize = 16;
    let mut out = String::new();
    let mut row = |name: &str, value: &str| {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{name:<W$}{value}");
    };
    row("file", &printable(&report.path));
    row("file id", &report.file_id);
    if let Some(name) = &report.file_name {
        row("sealed as", &printable(name));
    }
    row(
        "user",
        &format!("{} (device {})", report.user, report.device_id),
    );
    row(
        "rights",
        &if report.rights.is_empty() {
            "(none)".to_owned()
        } else {
            report.rights.join(",")
        },
    );
    row(
        "watermark",
        if report.watermark_required {
            "required"
        } else {
            "not required"
        },
    );
    row(
        "lease",
        &format!(
            "{} (ends {} by the key server's clock)",
            text::duration(u32::try_from(report.lease_secs).unwrap_or(u32::MAX)),
            text::time(report.lease_expires_unix)
        ),
    );
    // Two clocks people mix up: how long this grant lets the file stay
    // open before it is asked again, and when the file stops opening.
    row(
        "lease left",
        &format!(
            "{} (this grant; renewed while the file is open)",
            text::duration(u32::try_from(report.time_left_secs).unwrap_or(u32::MAX))
        ),
    );
    row(
        "file expires",
        &report
            .not_after_unix
            .map_or("never (no not-after in its policy)".to_owned(), |t| {
                format!(
                    "{} (its policy's not-after: no one opens it after)",
                    text::time(t)
                )
            }),
    );
    row("grant id", &report.grant_id);
    row("key server", &report.server);
    for notice in &report.notices {
        row(
            "NOTICE",
            &format!(
                "{}: {}",
                text::time(notice.at),
                printable(&notice.message())
            ),
        );
    }
    if let Some(alarm) = &report.audit_alarm {
        row("AUDIT LOG", &printable(alarm));
    }
    out
}
