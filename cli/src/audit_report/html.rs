//! The report as one self-contained HTML page: no script, no network
//! (the Content-Security-Policy says `default-src 'none'`, so even a
//! string that escaped its escaping could fetch nothing and run nothing),
//! inline CSS and inline SVG charts: opens per person per day, a weekday by
//! hour heat map of opens, and the people who took the most records out.
//!
//! Every string that comes from a record goes through [`escape::html`]
//! (through [`escape::bdi`] in element text); numbers and the report's own
//! words are the only other things written.

use std::fmt::Write as _;

use super::aggregate::{MAX_ROWS, Report};
use super::escape::{bdi, html};
use crate::text::time;

/// At most this many bars in the opens chart (the table below has them all).
const MAX_BARS: usize = 200;

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#1d2733;max-width:1200px}\
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ccd}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccd;padding:.2em .5em;text-align:left;vertical-align:top}\
th{background:#eef1f6}td.n{text-align:right;font-variant-numeric:tabular-nums}\
.mono{font-family:ui-monospace,monospace;font-size:.85em;word-break:break-all}\
.warn{color:#a40000;font-weight:bold}.note{color:#556}\
.totals td{min-width:4em}svg text{font-size:11px;unicode-bidi:isolate}";

fn at(ms: u64) -> String {
    html(&time(ms / 1000))
}

fn opt(s: Option<&str>) -> String {
    s.map_or_else(|| "-".to_owned(), bdi)
}

fn people(list: &[String]) -> String {
    if list.is_empty() {
        "-".to_owned()
    } else {
        list.iter().map(|p| bdi(p)).collect::<Vec<_>>().join(", ")
    }
}

/// A table: headers, then rows of cells already escaped.
fn table(out: &mut String, id: &str, headers: &[&str], rows: impl Iterator<Item = Vec<String>>) {
    let _ = write!(out, "<table id=\"{id}\"><thead><tr>");
    for h in headers {
        let _ = write!(out, "<th>{h}</th>");
    }
    out.push_str("</tr></thead><tbody>");
    let mut empty = true;
    for row in rows {
        empty = false;
        out.push_str("<tr>");
        for cell in row {
            if let Some(number) = cell.strip_prefix("<n>") {
                let _ = write!(out, "<td class=\"n\">{number}</td>");
            } else {
                let _ = write!(out, "<td>{cell}</td>");
            }
        }
        out.push_str("</tr>");
    }
    if empty {
        let _ = write!(
            out,
            "<tr><td colspan=\"{}\" class=\"note\">none</td></tr>",
            headers.len()
        );
    }
    out.push_str("</tbody></table>");
}

/// A number cell.
fn n(value: u64) -> String {
    format!("<n>{value}")
}

/// Horizontal bars: (label, value, value's words), longest first or as given.
fn bars(out: &mut String, id: &str, title: &str, rows: &[(String, u64, String)]) {
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1);
    let (label_w, bar_w, row_h) = (260, 520, 18);
    let height = rows.len() * row_h + 10;
    let _ = write!(
        out,
        "<svg id=\"{id}\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"{}\" width=\"{}\" height=\"{height}\" viewBox=\"0 0 {} {height}\">",
        html(title),
        label_w + bar_w + 140,
        label_w + bar_w + 140
    );
    for (i, (label, value, words)) in rows.iter().enumerate() {
        let y = i * row_h + 5;
        let w = (*value as f64 / max as f64 * bar_w as f64).round().max(1.0);
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><rect x=\"{label_w}\" y=\"{y}\" width=\"{w}\" height=\"{}\" fill=\"#3b6fb6\"><title>{}: {}</title></rect><text x=\"{}\" y=\"{}\">{}</text>",
            label_w - 6,
            y + 12,
            html(label),
            row_h - 4,
            html(label),
            html(words),
            label_w as f64 + w + 6.0,
            y + 12,
            html(words)
        );
    }
    out.push_str("</svg>");
}

/// Opens by weekday and hour (UTC): a 7 by 24 grid, darker for more.
fn heat_map(out: &mut String, heat: &[Vec<u64>]) {
    let max = heat.iter().flatten().copied().max().unwrap_or(0).max(1);
    let (left, top, cell) = (40, 20, 24);
    let (width, height) = (left + 24 * cell + 10, top + 7 * cell + 10);
    let _ = write!(
        out,
        "<svg id=\"chart-heat\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"opens by weekday and hour, UTC\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">"
    );
    for hour in (0..24).step_by(3) {
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"14\">{hour:02}</text>",
            left + hour * cell + 4
        );
    }
    for (day, row) in heat.iter().enumerate().take(7) {
        let y = top + day * cell;
        let _ = write!(
            out,
            "<text x=\"4\" y=\"{}\">{}</text>",
            y + 16,
            WEEKDAYS[day]
        );
        for (hour, &count) in row.iter().enumerate().take(24) {
            let strength = count as f64 / max as f64;
            // From a pale grey to a deep blue.
            let shade = |from: f64, to: f64| (from + (to - from) * strength).round() as u8;
            let _ = write!(
                out,
                "<rect x=\"{}\" y=\"{y}\" width=\"{}\" height=\"{}\" fill=\"rgb({},{},{})\"><title>{} {hour:02}:00 UTC: {count} opens</title></rect>",
                left + hour * cell,
                cell - 2,
                cell - 2,
                shade(240.0, 20.0),
                shade(242.0, 60.0),
                shade(246.0, 140.0),
                WEEKDAYS[day]
            );
        }
    }
    out.push_str("</svg>");
}

/// The whole page.
pub(crate) fn render(report: &Report) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let w = &report.window;
    let title = format!(
        "Audit report {} to {}",
        time(w.since_ms / 1000),
        w.until_ms
            .map_or_else(|| "the last record".to_owned(), |u| time(u / 1000))
    );
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
<meta name=\"referrer\" content=\"no-referrer\">\
<title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>",
        html(&title),
        html(&title)
    );
    if let Some(user) = &w.user {
        let _ = write!(out, "<p>Only the records of {}.</p>", bdi(user));
    }
    let _ = write!(
        out,
        "<p>{} records read (from record {}), <span id=\"records-in-window\">{}</span> in the window. Times are UTC.</p>",
        report.records_read,
        report.first_seq.unwrap_or(0),
        report.records_in_window
    );

    out.push_str("<h2>The chain</h2><table id=\"chain\">");
    match &report.head {
        Some(head) => {
            let _ = write!(
                out,
                "<tr><th>last record</th><td id=\"head-seq\">{}</td><td>{}</td></tr><tr><th>its hash</th><td colspan=\"2\" id=\"head-hash\" class=\"mono\">{}</td></tr>",
                head.seq,
                at(head.at_ms),
                html(&head.hash)
            );
        }
        None => out.push_str("<tr><th>last record</th><td colspan=\"2\">none read</td></tr>"),
    }
    match &report.checkpoint {
        Some(cp) => {
            let _ = write!(
                out,
                "<tr><th>newest checkpoint</th><td id=\"checkpoint-count\">{} records</td><td>signed {}</td></tr>\
<tr><th>checkpoint head</th><td colspan=\"2\" class=\"mono\" id=\"checkpoint-head\">{}</td></tr>\
<tr><th>signing key</th><td colspan=\"2\" class=\"mono\">{}</td></tr>\
<tr><th>signature</th><td colspan=\"2\" class=\"mono\">{}</td></tr>",
                cp.count,
                at(cp.at_ms),
                html(&cp.head_hash),
                html(&cp.signing_key),
                html(&cp.signature)
            );
        }
        None => out.push_str(
            "<tr><th>newest checkpoint</th><td colspan=\"2\" class=\"warn\">none read</td></tr>",
        ),
    }
    out.push_str(
        "</table><p class=\"note\">This page does not check the chain. Check the export it was made from with \
<code>irm audit verify --export FILE --audit-key audit-signing.pub</code>: it must pass, and its checkpoint must be the one above.</p>",
    );
    match &report.last_review {
        Some(r) => {
            let _ = write!(
                out,
                "<p id=\"last-review\">Last account review: {} by {}: {}</p>",
                at(r.at_ms),
                opt(r.by.as_deref()),
                opt(r.reason.as_deref())
            );
        }
        None => out.push_str(
            "<p id=\"last-review\" class=\"warn\">Last account review: none recorded.</p>",
        ),
    }

    let t = &report.totals;
    out.push_str("<h2>Totals</h2><table class=\"totals\"><tbody>");
    for (id, label, value) in [
        ("total-grants", "opens (grants)", t.grants),
        ("total-renewals", "renewals", t.renewals),
        ("total-people", "people who opened files", t.people),
        ("total-files", "files opened", t.files),
        ("total-denials", "denials", t.denials),
        ("total-prints", "prints", t.prints),
        ("total-copies", "copies", t.copies),
        ("total-exports", "exports", t.exports),
        ("total-program-reads", "program reads", t.program_reads),
        ("total-rows", "rows taken out", t.rows_taken),
        (
            "total-take-outs-refused",
            "take-outs refused",
            t.take_outs_refused,
        ),
        ("total-approvals", "take-outs approved", t.approvals),
        ("total-alerts", "alerts", t.alerts),
        (
            "total-acknowledgements",
            "acknowledgements",
            t.acknowledgements,
        ),
        (
            "total-admin-actions",
            "administrators' actions",
            t.admin_actions,
        ),
        ("total-devices", "devices enrolled", t.devices_enrolled),
    ] {
        let _ = write!(
            out,
            "<tr><th>{label}</th><td class=\"n\" id=\"{id}\">{value}</td></tr>"
        );
    }
    out.push_str("</tbody></table>");

    out.push_str("<h2>Opens per person per day</h2>");
    let rows: Vec<(String, u64, String)> = report
        .opens
        .iter()
        .take(MAX_BARS)
        .map(|o| {
            (
                format!("{} {}", o.day, o.user),
                o.grants,
                format!("{} opens, {} renewals", o.grants, o.renewals),
            )
        })
        .collect();
    bars(&mut out, "chart-opens", "opens per person per day", &rows);
    if report.opens.len() > MAX_BARS {
        let _ = write!(
            out,
            "<p class=\"note\">The first {MAX_BARS} of {} rows are drawn; the table has them all.</p>",
            report.opens.len()
        );
    }
    table(
        &mut out,
        "opens",
        &["day", "person", "opens", "renewals", "files"],
        report.opens.iter().map(|o| {
            vec![
                html(&o.day),
                bdi(&o.user),
                n(o.grants),
                n(o.renewals),
                n(o.files),
            ]
        }),
    );
    out.push_str("<h3>Which files</h3>");
    table(
        &mut out,
        "files-opened",
        &["person", "file", "opens", "renewals"],
        report.files_opened.iter().map(|f| {
            vec![
                bdi(&f.user),
                format!("<span class=\"mono\">{}</span>", html(&f.file_id)),
                n(f.grants),
                n(f.renewals),
            ]
        }),
    );

    out.push_str("<h2>When files are opened (weekday by hour, UTC)</h2>");
    heat_map(&mut out, &report.heat);

    out.push_str("<h2>Prints, copies and exports</h2><h3>Top people by records taken</h3>");
    let rows: Vec<(String, u64, String)> = report
        .top_takers
        .iter()
        .take(10)
        .map(|t| {
            (
                t.user.clone(),
                t.events(),
                format!("{} take-outs, {} rows", t.events(), t.rows),
            )
        })
        .collect();
    bars(
        &mut out,
        "chart-takers",
        "top people by records taken",
        &rows,
    );
    table(
        &mut out,
        "take-outs",
        &[
            "time",
            "person",
            "how",
            "result",
            "file",
            "rows",
            "approved by",
            "detail",
        ],
        report.take_outs.iter().map(|r| {
            vec![
                at(r.at_ms),
                bdi(&r.user),
                html(&r.how),
                match &r.reason {
                    Some(reason) => format!("{} ({})", html(&r.result), html(reason)),
                    None => html(&r.result),
                },
                r.file_id.as_deref().map_or_else(
                    || "-".to_owned(),
                    |f| format!("<span class=\"mono\">{}</span>", html(f)),
                ),
                r.rows.map_or_else(|| "-".to_owned(), n),
                if r.approved {
                    people(&r.approved_by)
                } else {
                    "-".to_owned()
                },
                opt(r.detail.as_deref()),
            ]
        }),
    );
    out.push_str("<h3>Approvals</h3>");
    table(
        &mut out,
        "approvals",
        &[
            "time",
            "what",
            "for",
            "file",
            "approved by",
            "reason",
            "result",
        ],
        report.approvals.iter().map(|a| {
            vec![
                at(a.at_ms),
                html(&a.action),
                opt(a.requester.as_deref()),
                opt(a.file_id.as_deref()),
                people(&a.approved_by),
                opt(a.reason.as_deref()),
                html(&a.result),
            ]
        }),
    );

    out.push_str("<h2>Denials by reason</h2>");
    table(
        &mut out,
        "denials",
        &["reason", "count"],
        report
            .denials
            .iter()
            .map(|d| vec![html(&d.reason), n(d.count)]),
    );
    table(
        &mut out,
        "denials-by-person",
        &["person", "reason", "count"],
        report
            .denials_by_user
            .iter()
            .map(|d| vec![bdi(&d.user), html(&d.reason), n(d.count)]),
    );

    out.push_str("<h2>Alerts and acknowledgements</h2>");
    table(
        &mut out,
        "alerts",
        &[
            "#",
            "time",
            "rule",
            "person",
            "file",
            "detail",
            "acknowledged",
        ],
        report.alerts.iter().map(|a| {
            vec![
                n(a.seq),
                at(a.at_ms),
                html(&a.rule),
                opt(a.user.as_deref()),
                opt(a.file_id.as_deref()),
                opt(a.detail.as_deref()),
                match &a.acknowledged {
                    Some(ack) => format!(
                        "by {} at {}: {}",
                        opt(ack.by.as_deref()),
                        at(ack.at_ms),
                        opt(ack.reason.as_deref())
                    ),
                    None => "<span class=\"warn\">not acknowledged</span>".to_owned(),
                },
            ]
        }),
    );
    if !report.other_acks.is_empty() {
        out.push_str("<h3>Acknowledgements of alerts outside this report</h3>");
        table(
            &mut out,
            "other-acks",
            &["#", "time", "by", "alert", "result", "reason"],
            report.other_acks.iter().map(|a| {
                vec![
                    n(a.seq),
                    at(a.at_ms),
                    opt(a.by.as_deref()),
                    a.alert.map_or_else(|| "-".to_owned(), n),
                    html(&a.result),
                    opt(a.reason.as_deref()),
                ]
            }),
        );
    }

    out.push_str("<h2>Administrators' actions</h2>");
    table(
        &mut out,
        "admin-actions",
        &[
            "time",
            "who",
            "action",
            "result",
            "about",
            "reason",
            "approved by",
        ],
        report.admin_actions.iter().map(|a| {
            vec![
                at(a.at_ms),
                opt(a.actor.as_deref()),
                html(&a.action),
                match &a.refusal {
                    Some(r) => format!("{} ({})", html(&a.result), html(r)),
                    None => html(&a.result),
                },
                opt(a.target.as_deref()),
                opt(a.reason.as_deref()),
                people(&a.approved_by),
            ]
        }),
    );

    out.push_str("<h2>Devices enrolled</h2>");
    table(
        &mut out,
        "devices",
        &["time", "person", "device", "name"],
        report.devices_enrolled.iter().map(|d| {
            vec![
                at(d.at_ms),
                opt(d.user.as_deref()),
                d.device_id.as_deref().map_or_else(
                    || "-".to_owned(),
                    |x| format!("<span class=\"mono\">{}</span>", html(x)),
                ),
                opt(d.name.as_deref()),
            ]
        }),
    );

    let _ = write!(
        out,
        "<h2>Who could read each group's files</h2><p class=\"note\">From {}.</p>",
        html(&report.groups_source)
    );
    if let Some(groups) = &report.groups {
        table(
            &mut out,
            "groups",
            &["group", "members"],
            groups
                .iter()
                .map(|g| vec![format!("@{}", bdi(&g.group)), people(&g.members)]),
        );
    }
    if report.omitted_rows > 0 {
        let _ = write!(
            out,
            "<p class=\"warn\">{} rows were left out of the lists above (at most {MAX_ROWS} each); the totals count them. The JSON form (--format json) has the same limits.</p>",
            report.omitted_rows
        );
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::super::aggregate::tests::{MONDAY_9, a_day, rec, with};
    use super::super::aggregate::{Window, aggregate};
    use super::*;

    #[test]
    fn hostile_strings_arrive_as_text_and_the_page_has_no_script() {
        let mut day = a_day();
        let hostile = "<script>alert(1)</script>\"'&\r\n\u{202E}gnp.exe";
        day.push(with(
            rec(21, MONDAY_9 + 5 * 3_600_000, hostile, "grant"),
            Some("cc"),
            "ok",
            None,
            None,
        ));
        day.push(with(
            rec(22, MONDAY_9 + 5 * 3_600_000, "bob", "admin.file.revoke"),
            Some("cc"),
            "ok",
            None,
            Some(&format!("reason={hostile}")),
        ));
        let page = render(&aggregate(
            Window {
                since_ms: MONDAY_9,
                until_ms: None,
                user: None,
                files: None,
            },
            &day,
        ));
        assert!(!page.to_ascii_lowercase().contains("<script"), "{page}");
        assert!(!page.contains('\u{202E}'));
        assert!(!page.contains('\r'));
        assert!(page.contains(
            "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;\\r\\n[U+202E]gnp.exe"
        ));
        assert!(page.contains("content=\"default-src 'none'; style-src 'unsafe-inline'\""));
        assert!(page.contains("<td class=\"n\" id=\"total-grants\">5</td>"));
        assert!(page.contains("<svg id=\"chart-heat\""));
        assert!(
            !page.contains("http://")
                || page.matches("http://").count()
                    == page.matches("xmlns=\"http://www.w3.org/2000/svg\"").count(),
            "no link but the SVG namespace"
        );
    }
}
