//! The report as plain text for a terminal or an email: every section of
//! the [`Report`], in the order the HTML page shows them, every person's
//! string through [`visible`].

use std::fmt::Write as _;

use super::aggregate::Report;
use super::escape::visible;
use crate::text::time;

fn at(ms: u64) -> String {
    time(ms / 1000)
}

fn opt(s: Option<&str>) -> std::borrow::Cow<'_, str> {
    visible(s.unwrap_or("-"))
}

/// The chain's head and the newest checkpoint, in the words of both renderers.
pub(crate) fn chain_lines(report: &Report) -> Vec<String> {
    let mut lines = Vec::new();
    match &report.head {
        Some(head) => lines.push(format!(
            "chain head: record {} ({}), hash {}",
            head.seq,
            at(head.at_ms),
            head.hash
        )),
        None => lines.push("chain head: no record read".to_owned()),
    }
    match &report.checkpoint {
        Some(cp) => lines.push(format!(
            "newest checkpoint: {} records, head {}, signed at {} with key {}, signature {}",
            cp.count,
            cp.head_hash,
            at(cp.at_ms),
            cp.signing_key,
            cp.signature
        )),
        None => lines.push("newest checkpoint: none read".to_owned()),
    }
    lines.push(
        "this report does not check the chain: check the export it was made from with \
         `irm audit verify --export FILE --audit-key audit-signing.pub`, whose checkpoint must be this one"
            .to_owned(),
    );
    lines
}

/// The whole report.
pub(crate) fn render(report: &Report) -> String {
    let mut out = String::new();
    let w = &report.window;
    let _ = writeln!(
        out,
        "audit report: {} to {}{}",
        at(w.since_ms),
        w.until_ms.map_or_else(|| "the last record".to_owned(), at),
        w.user
            .as_deref()
            .map(|u| format!(", person {}", visible(u)))
            .unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "records: {} read (from record {}), {} in the window",
        report.records_read,
        report.first_seq.unwrap_or(0),
        report.records_in_window
    );
    for line in chain_lines(report) {
        let _ = writeln!(out, "{line}");
    }
    match &report.last_review {
        Some(r) => {
            let _ = writeln!(
                out,
                "last account review: {} by {} ({})",
                at(r.at_ms),
                opt(r.by.as_deref()),
                opt(r.reason.as_deref())
            );
        }
        None => out.push_str("last account review: none recorded\n"),
    }

    let t = &report.totals;
    let _ = writeln!(
        out,
        "\nTOTALS\n  opens {} (renewals {}) by {} people of {} files\n  denials {}\n  prints {}, copies {}, exports {}, program reads {} ({} rows); refused take-outs {}; approvals {}\n  alerts {} (acknowledgements {})\n  admin actions {}\n  devices enrolled {}",
        t.grants,
        t.renewals,
        t.people,
        t.files,
        t.denials,
        t.prints,
        t.copies,
        t.exports,
        t.program_reads,
        t.rows_taken,
        t.take_outs_refused,
        t.approvals,
        t.alerts,
        t.acknowledgements,
        t.admin_actions,
        t.devices_enrolled
    );

    out.push_str("\nOPENS PER PERSON PER DAY (UTC)\n");
    let _ = writeln!(
        out,
        "  {:<10} {:<20} {:>7} {:>8} {:>6}",
        "DAY", "PERSON", "OPENS", "RENEWALS", "FILES"
    );
    for o in &report.opens {
        let _ = writeln!(
            out,
            "  {:<10} {:<20} {:>7} {:>8} {:>6}",
            o.day,
            visible(&o.user),
            o.grants,
            o.renewals,
            o.files
        );
    }
    out.push_str("\nFILES OPENED\n");
    for f in &report.files_opened {
        let _ = writeln!(
            out,
            "  {:<20} {} opens {} renewals {}",
            visible(&f.user),
            visible(&f.file_id),
            f.grants,
            f.renewals
        );
    }

    out.push_str("\nTAKE-OUTS (prints, copies, exports)\n");
    for r in &report.take_outs {
        let _ = writeln!(
            out,
            "  {} {:<16} {:<12} {:<7} file={} rows={}{}{}{}",
            at(r.at_ms),
            visible(&r.user),
            r.how,
            r.result,
            opt(r.file_id.as_deref()),
            r.rows.map_or_else(|| "-".to_owned(), |n| n.to_string()),
            r.reason
                .as_deref()
                .map(|x| format!(" reason={}", visible(x)))
                .unwrap_or_default(),
            if r.approved {
                format!(" approved by {}", visible(&r.approved_by.join(",")))
            } else {
                String::new()
            },
            r.detail
                .as_deref()
                .map(|d| format!(" ({})", visible(d)))
                .unwrap_or_default(),
        );
    }
    out.push_str("\nTOP PEOPLE BY RECORDS TAKEN\n");
    for t in report.top_takers.iter().take(10) {
        let _ = writeln!(
            out,
            "  {:<20} prints {} copies {} exports {} program reads {} rows {}",
            visible(&t.user),
            t.prints,
            t.copies,
            t.exports,
            t.program_reads,
            t.rows
        );
    }
    out.push_str("\nTAKE-OUT APPROVALS\n");
    for a in &report.approvals {
        let _ = writeln!(
            out,
            "  {} {:<12} for {} file={} approved by {} reason: {} ({})",
            at(a.at_ms),
            a.action,
            opt(a.requester.as_deref()),
            opt(a.file_id.as_deref()),
            visible(&a.approved_by.join(",")),
            opt(a.reason.as_deref()),
            a.result
        );
    }

    out.push_str("\nDENIALS BY REASON\n");
    for d in &report.denials {
        let _ = writeln!(out, "  {:<28} {}", visible(&d.reason), d.count);
    }
    for d in &report.denials_by_user {
        let _ = writeln!(
            out,
            "    {:<20} {:<28} {}",
            visible(&d.user),
            visible(&d.reason),
            d.count
        );
    }

    out.push_str("\nALERTS\n");
    for a in &report.alerts {
        let _ = writeln!(
            out,
            "  #{} {} {:<18} {:<16} file={} {} -- {}",
            a.seq,
            at(a.at_ms),
            visible(&a.rule),
            opt(a.user.as_deref()),
            opt(a.file_id.as_deref()),
            opt(a.detail.as_deref()),
            match &a.acknowledged {
                Some(ack) => format!(
                    "acknowledged by {} at {}: {}",
                    opt(ack.by.as_deref()),
                    at(ack.at_ms),
                    opt(ack.reason.as_deref())
                ),
                None => "NOT ACKNOWLEDGED".to_owned(),
            }
        );
    }
    for ack in &report.other_acks {
        let _ = writeln!(
            out,
            "  acknowledgement #{} by {} at {} of alert {} ({}): {}",
            ack.seq,
            opt(ack.by.as_deref()),
            at(ack.at_ms),
            ack.alert.map_or_else(|| "-".to_owned(), |s| s.to_string()),
            ack.result,
            opt(ack.reason.as_deref())
        );
    }

    out.push_str("\nADMINISTRATORS' ACTIONS\n");
    for a in &report.admin_actions {
        let _ = writeln!(
            out,
            "  {} {:<16} {:<26} {:<7}{} {} reason: {}{}",
            at(a.at_ms),
            opt(a.actor.as_deref()),
            visible(&a.action),
            a.result,
            a.refusal
                .as_deref()
                .map(|r| format!(" ({})", visible(r)))
                .unwrap_or_default(),
            opt(a.target.as_deref()),
            opt(a.reason.as_deref()),
            if a.approved_by.is_empty() {
                String::new()
            } else {
                format!(" approved by {}", visible(&a.approved_by.join(",")))
            }
        );
    }

    out.push_str("\nDEVICES ENROLLED\n");
    for d in &report.devices_enrolled {
        let _ = writeln!(
            out,
            "  {} {:<16} {} {}",
            at(d.at_ms),
            opt(d.user.as_deref()),
            opt(d.device_id.as_deref()),
            opt(d.name.as_deref())
        );
    }

    let _ = writeln!(out, "\nGROUPS (from {})", report.groups_source);
    for g in report.groups.iter().flatten() {
        let _ = writeln!(
            out,
            "  @{}: {}",
            visible(&g.group),
            visible(&g.members.join(", "))
        );
    }
    if report.omitted_rows > 0 {
        let _ = writeln!(
            out,
            "\n{} rows left out of the lists above (at most {} each); the totals count them",
            report.omitted_rows,
            super::aggregate::MAX_ROWS
        );
    }
    out
}
