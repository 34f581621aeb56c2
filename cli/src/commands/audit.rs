//! `irm audit verify --export FILE --audit-key KEY.pub`: a third party's
//! check of an audit export, offline, with the `irm` binary alone (no key
//! server, no database, no enrollment). The verification is irm-core's
//! (`irm_core::audit::verify_export`), the same the key server runs; this
//! module reads the files and shows the report, as `irm admin audit verify`
//! shows the server's.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufReader, Write as _};
use std::path::Path;

use anyhow::{Context, Result};
use irm_core::audit::{AuditPublicKey, read_checkpoints, verify_export};
use irm_core::protocol::AuditVerifyReport;

use crate::cli::{AuditArgs, AuditVerifyArgs, OfflineAuditCommand};
use crate::exit::Refusal;
use crate::report::print_json;
use crate::text::printable;

pub(crate) fn run(args: &AuditArgs) -> Result<()> {
    match &args.command {
        OfflineAuditCommand::Verify(args) => verify(args),
    }
}

fn verify(args: &AuditVerifyArgs) -> Result<()> {
    let key_text = std::fs::read_to_string(&args.audit_key)
        .with_context(|| format!("reading the audit key {}", args.audit_key.display()))?;
    let trusted = AuditPublicKey::from_text(&key_text)
        .with_context(|| format!("reading the audit key {}", args.audit_key.display()))?;
    let (extra, unreadable) = match &args.checkpoints {
        Some(path) => read_checkpoints(BufReader::new(open(path, "the checkpoints")?))
            .with_context(|| format!("reading the checkpoints {}", path.display()))?,
        None => (Vec::new(), Vec::new()),
    };
    let report = if args.export.as_os_str() == "-" {
        verify_export(std::io::stdin().lock(), trusted.0, extra, unreadable)
            .context("reading the export from standard input")?
    } else {
        verify_export(
            BufReader::new(open(&args.export, "the export")?),
            trusted.0,
            extra,
            unreadable,
        )
        .with_context(|| format!("reading the export {}", args.export.display()))?
    };
    show_report(&report, args.json)
}

fn open(path: &Path, what: &str) -> Result<File> {
    File::open(path).with_context(|| format!("opening {what} {}", path.display()))
}

/// Prints a verification report (the server's or one made here) and fails
/// when it found a problem. With `--json`, one object per run: the report
/// when it holds, else the failure object, which carries the problems.
pub(crate) fn show_report(report: &AuditVerifyReport, json: bool) -> Result<()> {
    if report.ok && json {
        print_json(report);
        return Ok(());
    }
    if !json {
        let mut text = format!(
            "{}: {} records, {} checkpoints checked\n",
            if report.ok { "ok" } else { "BROKEN" },
            report.records,
            report.checkpoints
        );
        for problem in &report.problems {
            let _ = writeln!(text, "problem: {}", printable(problem));
        }
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
            .context("writing standard output")?;
    }
    if report.ok {
        Ok(())
    } else {
        Err(Refusal::failure(format!(
            "the audit log does not verify: {}",
            report.problems.join("; ")
        ))
        .hint("the database or the checkpoint file was altered; keep copies and investigate")
        .into())
    }
}
