//! `irm admin review` and `irm admin review done`: the account review
//! (PROTOCOL.md §7.6), computed by the key server; this module asks for it
//! and shows it, or records that it was done.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use irm_client::Session;
use irm_core::protocol::AccountReview;

use crate::cli::{AdminArgs, ReviewArgs, ReviewCommand};
use crate::exit::Refusal;
use crate::report::Out;
use crate::text::{self, printable};

pub(crate) fn run(
    session: &mut Session,
    review: &ReviewArgs,
    admin: &AdminArgs,
    out: &Out,
) -> Result<()> {
    match review.command {
        None => {
            let answer = session
                .account_review(review.dormant_days)
                .context("reading the account review")?;
            out.show(&answer, || review_text(&answer))
        }
        Some(ReviewCommand::Done) => {
            let Some(reason) = admin.reason.as_deref().filter(|r| !r.trim().is_empty()) else {
                return Err(Refusal::usage(
                    "a review is recorded with what was reviewed and done: --reason is required",
                )
                .hint("irm admin review done --reason 'Q1 access review, ticket SEC-42'")
                .into());
            };
            // The reason travels in the body, where the record takes it
            // from; not a second time in the query.
            session.set_reason(None).context("--reason")?;
            session
                .review_done(reason)
                .context("recording the account review")?;
            out.done(format!(
                "recorded the account review as done by {} (admin.review.done)",
                session.user()
            ))
        }
    }
}

fn when(at: Option<u64>) -> String {
    at.map_or_else(|| "never".to_owned(), text::time)
}

fn review_text(r: &AccountReview) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "account review at {}", text::time(r.at));
    match &r.last_review {
        Some(last) => {
            let _ = writeln!(
                t,
                "last review: {} by {}: {}",
                text::time(last.at_ms / 1000),
                printable(&last.by),
                printable(&last.reason)
            );
        }
        None => t.push_str("last review: none recorded\n"),
    }
    let _ = writeln!(
        t,
        "\nDORMANT PEOPLE (active, no grant in {} days)",
        r.dormant_days
    );
    let _ = writeln!(
        t,
        "{:<20} {:<20} {:<20} ROLES",
        "NAME", "LAST USE", "CREATED"
    );
    for u in &r.dormant_users {
        let roles: Vec<&str> = u.roles.iter().map(|r| r.as_str()).collect();
        let _ = writeln!(
            t,
            "{:<20} {:<20} {:<20} {}",
            printable(&u.name),
            when(u.last_used_at),
            text::time(u.created_at),
            roles.join(",")
        );
    }
    let _ = writeln!(
        t,
        "\nDORMANT DEVICES (active, no grant in {} days)",
        r.dormant_days
    );
    let _ = writeln!(
        t,
        "{:<32} {:<16} {:<20} {:<20} NAME",
        "DEVICE ID", "USER", "LAST USE", "ENROLLED"
    );
    for d in &r.dormant_devices {
        let _ = writeln!(
            t,
            "{:<32} {:<16} {:<20} {:<20} {}",
            printable(&d.device_id),
            printable(&d.user),
            when(d.last_used_at),
            text::time(d.enrolled_at),
            printable(&d.name)
        );
    }
    t.push_str("\nADMIN, AUDITOR AND MAINTAINER ROLES\n");
    for p in &r.privileged {
        let roles: Vec<&str> = p.roles.iter().map(|r| r.as_str()).collect();
        let _ = writeln!(
            t,
            "{:<20} {:<10} {:<28} {}",
            printable(&p.name),
            if p.suspended { "suspended" } else { "active" },
            roles.join(","),
            printable(&p.display_name)
        );
    }
    t.push_str("\nGROUPS (who receives files sealed to @group)\n");
    for g in &r.groups {
        let _ = writeln!(
            t,
            "@{:<19} {}",
            printable(&g.group),
            printable(&g.members.join(", "))
        );
    }
    t.push_str("\nCLASSIFICATIONS (recipients their files' policies name)\n");
    for c in &r.classifications {
        let _ = writeln!(
            t,
            "{:<20} {:>5} files  {}",
            printable(&c.classification),
            c.files,
            printable(&c.recipients.join(", "))
        );
    }
    t
}
