//! `irm admin audit digest` (PROTOCOL.md §7.7): for each group with a data
//! owner, the past week's audit report over that group's files, mailed or
//! POSTed to the owner, then one record with the key server saying which
//! digests went out. Meant for cron or a systemd timer (docs/DIGEST.md).
//!
//! This module moves things: who the owners are and which files are their
//! groups' (the server's answer), the records (read as `irm admin audit
//! report` reads them, once for every group), the deliveries and the
//! record. What a digest says is `audit_report::digest`'s; how a mail or a
//! POST is made is `crate::delivery`'s.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use irm_client::Session;
use irm_core::protocol::{DataOwner, DigestDelivery, DigestSentRequest, OwnerContact, valid_name};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::audit_report::aggregate::GroupAccess;
use crate::audit_report::{Aggregator, digest};
use crate::cli::DigestArgs;
use crate::delivery::{self, Mailer, SmtpPassword, Webhooks};
use crate::exit::Refusal;
use crate::report::Out;

/// One group's digest, built.
struct Built {
    group: String,
    contact: OwnerContact,
    subject: String,
    text: String,
    json: Vec<u8>,
}

/// What became of one group's digest (the `--json` answer's rows).
#[derive(Serialize)]
struct Outcome {
    group: String,
    /// The contact as the audit log names it (a webhook by its host).
    contact: String,
    delivered: bool,
    attempts: u32,
    error: Option<String>,
}

#[derive(Serialize)]
struct Summary {
    ok: bool,
    since_ms: u64,
    until_ms: u64,
    head_seq: u64,
    deliveries: Vec<Outcome>,
}

pub(crate) fn run(session: &Session, args: &DigestArgs, out: &Out) -> Result<()> {
    let until_ms = match args.until {
        Some(until) => until,
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    };
    if until_ms <= args.since {
        return Err(Refusal::usage("--until must be after --since").into());
    }
    let owners = chosen_owners(session, args)?;
    if owners.is_empty() {
        eprintln!(
            "no group has a data owner: nothing to send (the key server's [data_owners] names them)"
        );
        return Ok(());
    }
    let contacts: Vec<OwnerContact> = owners
        .iter()
        .map(|o| {
            OwnerContact::parse(&o.contact)
                .with_context(|| format!("the key server's data owner of @{}", o.group))
        })
        .collect::<Result<_>>()?;

    // Senders first: a missing --smtp should fail before the log is read.
    let ca = match &args.ca {
        Some(path) => {
            Some(std::fs::read(path).with_context(|| format!("reading --ca {}", path.display()))?)
        }
        None => None,
    };
    let wants_mail = contacts
        .iter()
        .any(|c| matches!(c, OwnerContact::Mailbox(_)));
    let wants_hooks = contacts
        .iter()
        .any(|c| matches!(c, OwnerContact::Webhook(_)));
    let mailer = if wants_mail && !args.dry_run {
        let (Some(url), Some(from)) = (&args.smtp, &args.from) else {
            return Err(Refusal::usage(
                "a data owner is a mailbox: --smtp URL and --from ADDR are needed",
            )
            .hint("irm admin audit digest --smtp smtps://mail.example.com --from irm@example.com")
            .into());
        };
        let password = SmtpPassword::load(args.smtp_password_file.as_deref())?;
        Some(Mailer::new(
            url,
            args.smtp_user.as_deref(),
            password,
            from,
            ca.as_deref(),
        )?)
    } else {
        None
    };
    let hooks = if wants_hooks && !args.dry_run {
        let secret = match &args.webhook_secret_file {
            Some(path) => {
                let key = trimmed(delivery::read_secret_file(path, "the webhook secret file")?);
                // As the key server asks of its alert key (PROTOCOL.md §12.1).
                if key.len() < 16 {
                    return Err(Refusal::usage(
                        "the webhook secret must be at least 16 bytes (e.g. `openssl rand -hex 32`)",
                    )
                    .into());
                }
                Some(key)
            }
            None => None,
        };
        Some(Webhooks::new(secret, ca.as_deref())?)
    } else {
        None
    };

    // The records, read once for every group, up to a checkpoint signed
    // now: each digest ends with the head that checkpoint vouches for.
    let checkpoint = session
        .audit_checkpoint()
        .context("having the key server sign a checkpoint")?;
    let head_seq = checkpoint.count;
    let review = super::report::last_review(session)?;
    let mut aggregators: Vec<Aggregator> = owners
        .iter()
        .map(|o| {
            let files: BTreeSet<String> = o.files.iter().cloned().collect();
            let mut aggregator = Aggregator::new(digest::window(args.since, until_ms, files));
            aggregator.checkpoint(checkpoint.clone());
            if let Some(record) = &review {
                aggregator.note_review(record);
            }
            aggregator
        })
        .collect();
    super::report::read_pages(session, args.since, head_seq, |record| {
        for aggregator in &mut aggregators {
            aggregator.push(record);
        }
    })?;
    let server = session.server_url().to_owned();
    let mut built = Vec::with_capacity(owners.len());
    for ((owner, contact), aggregator) in owners.iter().zip(contacts).zip(aggregators) {
        // Members now, from the server, unless the records (read from
        // record 1) say who was a member during the period.
        let mut report = aggregator.finish(Some(vec![GroupAccess {
            group: owner.group.clone(),
            members: owner.members.clone(),
        }]));
        digest::scope(&mut report, &owner.group);
        built.push(Built {
            subject: digest::subject(&owner.group, &report),
            text: digest::text(&owner.group, &contact.shown(), owner.files.len(), &report),
            json: digest::json_body(&server, &owner.group, owner.files.len(), &report)
                .context("writing a digest as JSON")?,
            group: owner.group.clone(),
            contact,
        });
    }

    if args.dry_run {
        return dry_run(&built, out);
    }

    let mut outcomes = Vec::with_capacity(built.len());
    for digest in &built {
        let tried = delivery::with_retries(args.attempts, std::thread::sleep, || {
            match &digest.contact {
                OwnerContact::Mailbox(address) => match &mailer {
                    Some(m) => m.send(address, &digest.subject, &digest.text),
                    None => Err("no mail server".to_owned()),
                },
                OwnerContact::Webhook(url) => match &hooks {
                    Some(h) => h.post(url, &digest.group, &digest.json),
                    None => Err("no webhook client".to_owned()),
                },
                _ => Err("a kind of contact this irm cannot send to".to_owned()),
            }
        });
        let shown = digest.contact.shown();
        match &tried.error {
            None => eprintln!("sent the digest of @{} to {shown}", digest.group),
            Some(e) => eprintln!(
                "error: the digest of @{} was not delivered to {shown} after {} tries: {e}",
                digest.group, tried.made
            ),
        }
        outcomes.push(Outcome {
            group: digest.group.clone(),
            contact: shown,
            delivered: tried.error.is_none(),
            attempts: tried.made,
            error: tried.error,
        });
    }

    // The record, failures included: a reviewer sees what went out and
    // what did not.
    session
        .digest_sent(&DigestSentRequest {
            since_ms: args.since,
            until_ms,
            head_seq,
            deliveries: outcomes
                .iter()
                .map(|o| DigestDelivery {
                    group: o.group.clone(),
                    delivered: o.delivered,
                    attempts: o.attempts,
                })
                .collect(),
        })
        .context("recording the digests with the key server (admin.digest.sent)")?;

    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.delivered)
        .map(|o| format!("@{} ({})", o.group, o.contact))
        .collect();
    // With --json a partial failure is the one error object (which names
    // the groups), as every failure is: stdout holds one object.
    let summary = Summary {
        ok: failed.is_empty(),
        since_ms: args.since,
        until_ms,
        head_seq,
        deliveries: outcomes,
    };
    if out.json && failed.is_empty() {
        crate::report::print_json(&summary);
    } else if !out.json {
        eprintln!(
            "recorded {} digest(s) with the key server (admin.digest.sent)",
            summary.deliveries.len()
        );
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Refusal::undelivered(format!(
            "{} of {} digests were not delivered: {}",
            failed.len(),
            summary.deliveries.len(),
            failed.join(", ")
        ))
        .hint("check the mail server or the receiver, then run the digest again for those groups (--group)")
        .into())
    }
}

/// The data owners the run is for: every one, or those of `--group`; a
/// group named there without an owner is a usage error.
fn chosen_owners(session: &Session, args: &DigestArgs) -> Result<Vec<DataOwner>> {
    let answer = session
        .data_owners()
        .context("reading the data owners (GET /v1/admin/data-owners)")?;
    // Names go into the subject line: only names the server could have.
    let owners: Vec<DataOwner> = answer
        .owners
        .into_iter()
        .filter(|o| valid_name(&o.group))
        .collect();
    if args.groups.is_empty() {
        return Ok(owners);
    }
    let wanted: BTreeSet<&str> = args
        .groups
        .iter()
        .map(|g| g.strip_prefix('@').unwrap_or(g))
        .collect();
    if let Some(missing) = wanted
        .iter()
        .find(|g| !owners.iter().any(|o| o.group == **g))
    {
        return Err(Refusal::usage(format!(
            "@{} has no data owner on the key server",
            crate::text::printable(missing)
        ))
        .hint("the server's config names them: [data_owners] GROUP = \"mailto:...\"")
        .into());
    }
    Ok(owners
        .into_iter()
        .filter(|o| wanted.contains(o.group.as_str()))
        .collect())
}

/// `--dry-run`: each digest as it would go, on stdout.
fn dry_run(built: &[Built], out: &Out) -> Result<()> {
    if out.json {
        let values: Vec<serde_json::Value> = built
            .iter()
            .map(|d| {
                serde_json::json!({
                    "group": d.group,
                    "contact": d.contact.shown(),
                    "subject": d.subject,
                    "body": serde_json::from_slice::<serde_json::Value>(&d.json).unwrap_or_default(),
                })
            })
            .collect();
        crate::report::print_json(&values);
        return Ok(());
    }
    let mut text = String::new();
    for d in built {
        let _ = writeln!(
            text,
            "=== @{} to {} (not sent: --dry-run)",
            d.group,
            d.contact.shown()
        );
        match d.contact {
            OwnerContact::Mailbox(_) => {
                let _ = writeln!(text, "Subject: {}\n\n{}", d.subject, d.text);
            }
            _ => {
                let _ = writeln!(text, "{}\n", String::from_utf8_lossy(&d.json));
            }
        }
    }
    out.show(&(), || text)
}

/// A key file's bytes without trailing white space (an editor's newline),
/// as the key server reads its alert key.
fn trimmed(bytes: Zeroizing<Vec<u8>>) -> Zeroizing<Vec<u8>> {
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    Zeroizing::new(bytes[..end].to_vec())
}
