//! `irm admin audit report`: feeds audit records to the report's
//! aggregator as they arrive, a page at a time from the key server or a
//! line at a time from an export (`--from-export`, offline: no session,
//! no passphrase), and writes the report as text, JSON or HTML. What the
//! report says is `crate::audit_report`'s; this module only moves records.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write as _};
use std::path::Path;

use anyhow::{Context, Result, bail};
use irm_client::Session;
use irm_core::protocol::{AuditExportLine, AuditQuery, AuditRecord, MAX_AUDIT_PAGE};

use crate::audit_report::aggregate::GroupAccess;
use crate::audit_report::{Aggregator, Report, Window, html, text};
use crate::cli::{ReportArgs, ReportFormat};
use crate::output::Destination;

/// Export lines longer than this are refused (a record is a few hundred bytes).
const MAX_LINE: usize = 4 * 1024 * 1024;

fn window(args: &ReportArgs) -> Result<Window> {
    if let Some(until) = args.until
        && until <= args.since
    {
        bail!("--until must be after --since");
    }
    Ok(Window {
        since_ms: args.since,
        until_ms: args.until,
        user: args.user.clone(),
        files: None,
    })
}

/// The report from an export file, without the key server.
pub(crate) fn offline(args: &ReportArgs, path: &Path, json: bool) -> Result<()> {
    let mut aggregator = Aggregator::new(window(args)?);
    let context = || format!("reading the export {}", path.display());
    let input: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(BufReader::with_capacity(
            1 << 20,
            File::open(path).with_context(context)?,
        ))
    };
    read_export(input, &mut aggregator).with_context(context)?;
    write(args, &aggregator.finish(None), json)
}

/// Feeds every line of an export (PROTOCOL.md §9.1) to `aggregator`, one at a time.
pub(crate) fn read_export(mut input: impl BufRead, aggregator: &mut Aggregator) -> Result<()> {
    let mut line = String::new();
    let mut number = 0u64;
    let mut records = 0u64;
    loop {
        line.clear();
        let read = std::io::Read::take(input.by_ref(), MAX_LINE as u64 + 1)
            .read_line(&mut line)
            .with_context(|| format!("line {}", number + 1))?;
        if read == 0 {
            break;
        }
        number += 1;
        if line.len() > MAX_LINE {
            bail!("line {number} is longer than {MAX_LINE} bytes: not an audit export");
        }
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<AuditExportLine>(&line)
            .with_context(|| format!("line {number} is not an audit export line"))?
        {
            AuditExportLine::Export(header) if header.version != 1 => {
                bail!(
                    "export format version {} is not supported (this reads version 1)",
                    header.version
                )
            }
            AuditExportLine::Export(_) => {}
            AuditExportLine::Checkpoint(checkpoint) => aggregator.checkpoint(checkpoint),
            AuditExportLine::Record(record) => {
                aggregator.push(&record);
                records += 1;
            }
        }
    }
    if number == 0 {
        bail!("the export is empty");
    }
    if records == 0 {
        eprintln!("warning: the export holds no record");
    }
    Ok(())
}

/// The report from the key server: a checkpoint first (as an export
/// does), then the window's records up to it, a page at a time.
pub(crate) fn online(session: &Session, args: &ReportArgs, json: bool) -> Result<()> {
    let mut aggregator = Aggregator::new(window(args)?);
    let checkpoint = session
        .audit_checkpoint()
        .context("having the key server sign a checkpoint")?;
    let last = checkpoint.count;
    aggregator.checkpoint(checkpoint);
    // The last review may be older than the window.
    if let Some(record) = last_review(session)? {
        aggregator.note_review(&record);
    }
    read_pages(session, args.since, last, |record| aggregator.push(record))?;
    // The records start inside the log: who is in which group comes from
    // the admin API (admins only; an auditor's report says it cannot tell).
    let directory = session.list_users().ok().map(|users| {
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for user in users {
            for group in user.groups {
                groups.entry(group).or_default().push(user.name.clone());
            }
        }
        groups
            .into_iter()
            .map(|(group, members)| GroupAccess { group, members })
            .collect()
    });
    write(args, &aggregator.finish(directory), json)
}

/// The newest `admin.review.done` record, however old.
pub(crate) fn last_review(session: &Session) -> Result<Option<AuditRecord>> {
    let mut newest = session
        .audit_query(&AuditQuery {
            limit: 1,
            newest: true,
            action: Some("admin.review.done".into()),
            ..AuditQuery::default()
        })
        .context("reading the last account review")?;
    Ok(newest.pop())
}

/// Hands `each` every record from `since_ms` on up to record `last` (the
/// checkpoint just signed), in `seq` order, a page at a time: the report
/// and the digest read the log the same way.
pub(crate) fn read_pages(
    session: &Session,
    since_ms: u64,
    last: u64,
    mut each: impl FnMut(&AuditRecord),
) -> Result<()> {
    let mut query = AuditQuery {
        after: 0,
        limit: MAX_AUDIT_PAGE,
        since_ms: Some(since_ms),
        ..AuditQuery::default()
    };
    loop {
        let page = session
            .audit_query(&query)
            .context("reading the audit log")?;
        let Some(end) = page.last().map(|r| r.seq) else {
            return Ok(());
        };
        if end <= query.after {
            bail!(
                "the key server answered records up to {end} when asked for those after {}",
                query.after
            );
        }
        for record in &page {
            if record.seq > last {
                return Ok(());
            }
            each(record);
        }
        query.after = end;
    }
}

/// Writes the report; `irm admin --json` asks for the JSON form whatever
/// `--format` says, as every `--json` prints one object.
fn write(args: &ReportArgs, report: &Report, json: bool) -> Result<()> {
    let format = if json {
        ReportFormat::Json
    } else {
        args.format
    };
    let bytes = match format {
        ReportFormat::Text => text::render(report).into_bytes(),
        ReportFormat::Html => html::render(report).into_bytes(),
        ReportFormat::Json => {
            let mut bytes =
                serde_json::to_vec_pretty(report).context("writing the report as JSON")?;
            bytes.push(b'\n');
            bytes
        }
    };
    let destination = match &args.output {
        Some(path) => Destination::from_arg(path),
        None => Destination::from_arg(Path::new("-")),
    };
    // It names people and files: 0600, like every file we write.
    let mut out = destination.create(args.force, 0o600)?;
    out.write_all(&bytes)
        .with_context(|| format!("writing the report to {destination}"))?;
    out.commit()?;
    if let Some(path) = destination.path() {
        eprintln!(
            "wrote the report of {} records ({} in the window) to {}",
            report.records_read,
            report.records_in_window,
            path.display()
        );
    }
    Ok(())
}
