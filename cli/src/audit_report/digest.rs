//! One group's digest for its data owner (PROTOCOL.md §7.7): the audit
//! report over the group's files only ([`window`]), cut down to what is
//! the owner's to see ([`scope`]), as a mail's plain text ([`text`]) or a
//! webhook's JSON ([`json_body`]).
//!
//! The numbers are the report's own ([`super::Aggregator`], fed the same
//! records as `irm admin audit report`), so a digest and a report of the
//! same files and period always agree. Sending is `crate::delivery`'s.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::Serialize;

use super::aggregate::{GroupAccess, Report, Window, day_of};
use super::escape::visible;

/// The version of a webhook digest's body.
pub(crate) const WEBHOOK_VERSION: u32 = 1;

/// The window of a group's digest: the period, and only the records about
/// `files` (with the acknowledgements of their alerts).
pub(crate) fn window(since_ms: u64, until_ms: u64, files: BTreeSet<String>) -> Window {
    Window {
        since_ms,
        until_ms: Some(until_ms),
        user: None,
        files: Some(files),
    }
}

/// Keeps what the owner of `group` may see: who could read *their* files
/// (the other groups' members are not theirs to know), and of the account
/// review only when and by whom (its reason is about everyone's access).
pub(crate) fn scope(report: &mut Report, group: &str) {
    if let Some(groups) = &mut report.groups {
        groups.retain(|g| g.group == group);
        if groups.is_empty() {
            groups.push(GroupAccess {
                group: group.to_owned(),
                members: Vec::new(),
            });
        }
    }
    if let Some(review) = &mut report.last_review {
        review.reason = Some("(not shown in a group's digest)".to_owned());
    }
}

/// The mail's subject: only the group's name (a checked name) and dates.
pub(crate) fn subject(group: &str, report: &Report) -> String {
    let w = &report.window;
    format!(
        "IRM audit digest for @{group}: {} to {}",
        day_of(w.since_ms),
        w.until_ms.map_or_else(|| "now".to_owned(), day_of)
    )
}

/// The mail's body: who it is for, the headline numbers, then the audit
/// report of the group's files in the report's own words.
pub(crate) fn text(group: &str, contact_shown: &str, files: usize, report: &Report) -> String {
    let mut out = String::new();
    let t = &report.totals;
    let _ = writeln!(
        out,
        "IRM audit digest for @{group}, for its data owner ({})",
        visible(contact_shown)
    );
    let _ = writeln!(
        out,
        "@{group}'s files (those whose policy names @{group}): {files}. In this period: {} opens \
         by {} people, {} denials, {} prints, {} copies, {} exports ({} approved take-outs), {} \
         alerts ({} acknowledged).",
        t.grants,
        t.people,
        t.denials,
        t.prints,
        t.copies,
        t.exports,
        t.approvals,
        t.alerts,
        t.acknowledgements
    );
    out.push_str(
        "Only records about the group's files are counted. The chain head and checkpoint at the \
         end let you check this digest against a verifiable export of the whole log.\n\n",
    );
    out.push_str(&super::text::render(report));
    out
}

/// The webhook's body.
#[derive(Serialize)]
struct WebhookBody<'a> {
    version: u32,
    kind: &'static str,
    server: &'a str,
    group: &'a str,
    files: usize,
    report: &'a Report,
}

/// The webhook's JSON: `{"version": 1, "kind": "irm.audit_digest",
/// "server", "group", "files", "report": <the report's JSON>}`.
pub(crate) fn json_body(
    server: &str,
    group: &str,
    files: usize,
    report: &Report,
) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&WebhookBody {
        version: WEBHOOK_VERSION,
        kind: "irm.audit_digest",
        server,
        group,
        files,
        report,
    })
}

#[cfg(test)]
mod tests {
    use super::super::aggregate::Aggregator;
    use super::super::aggregate::tests::{MONDAY_9, a_day};
    use super::*;

    fn digest_of(files: &[&str]) -> Report {
        let files = files.iter().map(|f| f.repeat(16)).collect();
        let mut aggregator = Aggregator::new(window(0, MONDAY_9 + 86_400_000, files));
        for record in a_day() {
            aggregator.push(&record);
        }
        let mut report = aggregator.finish(None);
        scope(&mut report, "support");
        report
    }

    #[test]
    fn a_digest_counts_only_its_files_and_names_only_its_group() {
        let everything = {
            let mut aggregator = Aggregator::new(Window {
                since_ms: 0,
                until_ms: Some(MONDAY_9 + 86_400_000),
                ..Window::default()
            });
            for record in a_day() {
                aggregator.push(&record);
            }
            aggregator.finish(None)
        };
        let aa = digest_of(&["aa"]);
        let bb = digest_of(&["bb"]);
        // Each file's opens are in its own digest only, and together they
        // are the report's.
        assert_eq!(
            aa.totals.grants + bb.totals.grants,
            everything.totals.grants
        );
        assert!(aa.files_opened.iter().all(|f| f.file_id == "aa".repeat(16)));
        assert!(bb.files_opened.iter().all(|f| f.file_id == "bb".repeat(16)));
        // No administrator's action on people, no enrollment, no review's words.
        assert_eq!(aa.totals.devices_enrolled, 0);
        let review = aa.last_review.as_ref().expect("the day's review");
        assert_eq!(
            (review.by.as_deref(), review.reason.as_deref()),
            (Some("bob"), Some("(not shown in a group's digest)"))
        );
        for report in [&aa, &bb] {
            let groups = report.groups.as_ref().expect("from record 1");
            assert_eq!(groups.len(), 1);
            assert_eq!(groups[0].group, "support");
        }
        // The chain head is the log's, whatever the scope.
        assert_eq!(aa.head, everything.head);
    }

    #[test]
    fn people_strings_in_a_digest_cannot_make_lines_or_reorder_them() {
        let mut report = digest_of(&["aa"]);
        if let Some(groups) = &mut report.groups {
            groups[0].members = vec!["eve\r\nBcc: spy@evil.example\u{202E}".into()];
        }
        let body = text("support", "mailto:owner@client.example", 1, &report);
        assert!(!body.contains('\r') && !body.contains('\u{202E}'), "{body}");
        assert!(body.contains("[U+202E]"), "{body}");
        assert!(!body.lines().any(|l| l.starts_with("Bcc:")), "{body}");
        assert_eq!(
            subject("support", &report),
            format!(
                "IRM audit digest for @support: 1970-01-01 to {}",
                day_of(MONDAY_9 + 86_400_000)
            )
        );
    }
}
