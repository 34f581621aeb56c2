//! `irm admin ...`: the key server's administration and audit calls, one
//! subcommand per endpoint of docs/PROTOCOL.md §7. Each call is signed by
//! the administrator's own device; the server checks the role and audits.
//!
//! Results go to stdout, as a table for people or as the server's JSON
//! objects with `--json`; enrollment codes print alone on stdout so that
//! scripts can capture them. An audit export goes to its own file (or to
//! stdout with `-o -`), written atomically.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use irm_client::{DetectionChange, HoursChange, Session, UserAdded};
use irm_core::invitation::CodePart;
use irm_core::protocol::{
    Alert, AlertResponse, AuditQuery, AuditRecord, CreateUserRequest, DenyReason, DetectionAction,
    DetectionLimit, DetectionRuleInfo, EnrollmentCode, FileInfo, Role, UserInfo,
};
use serde::Serialize;

use crate::cli::{
    AdminArgs, AdminObject, AlertCommand, AuditCommand, DetectionCommand, DeviceCommand,
    ExportFormat, FileCommand, GroupCommand, HoursCommand, KeyCommand, UserCommand,
};
use crate::online;
use crate::output::{Destination, Input};
use crate::report::{Out, print_json};
use crate::text::{self, printable};

pub(crate) fn run(args: &AdminArgs) -> Result<()> {
    // A report from an export needs no key server, and so no passphrase.
    if let AdminObject::Audit(AuditCommand::Report(report)) = &args.object
        && let Some(export) = &report.from_export
    {
        return super::report::offline(report, export, args.json);
    }
    let mut session = online::unlock(&args.passphrase)?;
    session
        .set_reason(args.reason.as_deref())
        .context("--reason")?;
    let out = Out {
        json: args.json,
        qr: args.qr,
    };
    match &args.object {
        AdminObject::User(cmd) => user(&session, cmd, &out),
        AdminObject::Group(cmd) => group(&session, cmd, &out),
        AdminObject::Device(cmd) => device(&session, cmd, &out),
        AdminObject::File(cmd) => file(&session, cmd, &out),
        AdminObject::Key(cmd) => key(&session, cmd, &out),
        AdminObject::Audit(cmd) => audit(&session, cmd, &out),
        AdminObject::Request(cmd) => super::approval::request(&session, cmd, &out),
        AdminObject::Alert(cmd) => alert(&session, cmd, args.reason.as_deref(), &out),
        AdminObject::Rule(cmd) => super::approval::rule(&session, cmd, &out),
        AdminObject::Detection(cmd) => detection(&session, cmd, &out),
        AdminObject::Hours(cmd) => hours(&session, cmd, &out),
        AdminObject::BreakGlass(cmd) => super::approval::break_glass(&session, cmd, &out),
        AdminObject::Shares(cmd) => super::unseal::shares(&session, cmd, &out),
        AdminObject::Unseal => super::unseal::unseal(&session, &out),
        AdminObject::Review(review) => super::review::run(&mut session, review, args, &out),
    }
}

fn user(session: &Session, cmd: &UserCommand, out: &Out) -> Result<()> {
    match cmd {
        UserCommand::Add {
            name,
            display_name,
            roles,
            groups,
        } => {
            let request = CreateUserRequest {
                name: name.clone(),
                display_name: display_name.clone().unwrap_or_else(|| name.clone()),
                roles: if roles.is_empty() {
                    vec![Role::User]
                } else {
                    roles.clone()
                },
                groups: groups
                    .iter()
                    .map(|g| g.strip_prefix('@').unwrap_or(g).to_owned())
                    .collect(),
            };
            match session
                .add_user(&request)
                .with_context(|| format!("adding user {name}"))?
            {
                UserAdded::Created(code) => show_code(session, &code, out),
                UserAdded::Filed(answer) => super::approval::show_filed(session, &answer, out),
            }
        }
        UserCommand::List => {
            let users = session.list_users().context("listing users")?;
            out.show(&users, || users_table(&users))
        }
        UserCommand::Suspend { name } => {
            let user = session
                .suspend_user(name)
                .with_context(|| format!("suspending user {name}"))?;
            out.show(&user, || users_table(std::slice::from_ref(&user)))
        }
        UserCommand::Restore { name } => {
            let answer = session
                .restore_user(name)
                .with_context(|| format!("restoring user {name}"))?;
            super::approval::show_filed(session, &answer, out)
        }
        UserCommand::Release { name } => {
            let answer = session
                .release_user(name)
                .with_context(|| format!("releasing user {name}"))?;
            super::approval::show_filed(session, &answer, out)
        }
        UserCommand::Code { name } => {
            let answer = session
                .new_enrollment_code(name)
                .with_context(|| format!("issuing an enrollment code for {name}"))?;
            super::approval::show_filed(session, &answer, out)
        }
    }
}

/// The invitation alone on stdout (for scripts), the explanation on stderr.
fn show_code(session: &Session, code: &EnrollmentCode, out: &Out) -> Result<()> {
    if !out.json {
        eprintln!(
            "created user {} as this server's second administrator (the one action a lone administrator takes alone; from now on every change that widens access needs another administrator's approval); give them this one-time invitation (valid until {}) yourself:",
            code.user,
            text::time(code.expires_at)
        );
    }
    super::invite::show(session, &code.code, CodePart::Whole, code, out)
}

fn users_table(users: &[UserInfo]) -> String {
    let mut text = format!(
        "{:<20} {:<10} {:<20} {:<24} {}\n",
        "NAME", "STATE", "ROLES", "GROUPS", "DISPLAY NAME"
    );
    for user in users {
        let roles: Vec<&str> = user.roles.iter().map(|r| r.as_str()).collect();
        let _ = writeln!(
            text,
            "{:<20} {:<10} {:<20} {:<24} {}",
            printable(&user.name),
            user.state.as_str(),
            roles.join(","),
            printable(&user.groups.join(",")),
            printable(&user.display_name)
        );
    }
    text
}

fn group(session: &Session, cmd: &GroupCommand, out: &Out) -> Result<()> {
    match cmd {
        GroupCommand::Add { name } => {
            session
                .add_group(name)
                .with_context(|| format!("adding group {name}"))?;
            out.done(format!("created group {name}"))
        }
        GroupCommand::MemberAdd { group, user } => {
            let answer = session
                .add_group_member(group, user)
                .with_context(|| format!("adding {user} to group {group}"))?;
            super::approval::show_filed(session, &answer, out)
        }
        GroupCommand::MemberRemove { group, user } => {
            session
                .remove_group_member(group, user)
                .with_context(|| format!("removing {user} from group {group}"))?;
            out.done(format!("removed {user} from group {group}"))
        }
    }
}

fn device(session: &Session, cmd: &DeviceCommand, out: &Out) -> Result<()> {
    let devices = match cmd {
        DeviceCommand::List => session.list_devices().context("listing devices")?,
        DeviceCommand::Revoke { device_id } => vec![
            session
                .revoke_device(device_id)
                .with_context(|| format!("revoking device {device_id}"))?,
        ],
    };
    let table = || {
        let mut text = format!(
            "{:<32} {:<16} {:<8} {:<20} {}\n",
            "DEVICE ID", "USER", "STATE", "ENROLLED", "NAME"
        );
        for d in &devices {
            let _ = writeln!(
                text,
                "{:<32} {:<16} {:<8} {:<20} {}",
                printable(&d.device_id),
                printable(&d.user),
                d.state.as_str(),
                text::time(d.enrolled_at),
                printable(&d.name)
            );
        }
        text
    };
    match cmd {
        DeviceCommand::List => out.show(&devices, table),
        DeviceCommand::Revoke { .. } => out.show(&devices[0], table),
    }
}

/// Audit records as lines for people: sequence number, time, person,
/// action, result, and the reason in words.
fn records_text(records: &[AuditRecord]) -> String {
    let mut text = String::new();
    for r in records {
        let at = text::time(r.at_ms / 1000);
        let reason = r.reason.as_deref().map(|reason| {
            let words =
                serde_json::from_value::<DenyReason>(serde_json::Value::String(reason.to_owned()))
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default();
            format!("reason={}{words} ", printable(reason))
        });
        let _ = writeln!(
            text,
            "{:>6} {at} {:<12} {:<22} {:<7} {}{}{}",
            r.seq,
            printable(r.actor_user.as_deref().unwrap_or("-")),
            printable(&r.action),
            printable(&r.result),
            reason.unwrap_or_default(),
            r.file_id
                .as_deref()
                .map(|x| format!("file={} ", printable(x)))
                .unwrap_or_default(),
            r.detail.as_deref().map(printable).unwrap_or_default(),
        );
    }
    text
}

/// A file named on the command line, by id or by the sealed file itself.
fn file_id_arg(text: &str) -> Result<String> {
    super::export::file_id(text).map(|id| id.to_string())
}

/// The file an administrator names: by the sealed file itself (certain),
/// or by an id the key server has seen. An id it has never seen is most
/// likely a typo, which would control a file nobody has while the real one
/// stays open: refused unless `force` (a file sealed offline and not opened
/// yet is controlled that way on purpose).
fn known_file(session: &Session, text: &str, force: bool) -> Result<String> {
    let id = file_id_arg(text)?;
    let by_id = text.eq_ignore_ascii_case(&id);
    if by_id && !force {
        let files = session
            .list_files()
            .context("listing the files the key server knows")?;
        if !files.iter().any(|f| f.file_id == id) {
            return Err(crate::exit::Refusal::usage(format!(
                "the key server has never seen file {id}: if that is a typo, the real file stays open"
            ))
            .hint("give the sealed file itself (irm admin file revoke FILE.irm), or add --force to control a file sealed offline that nobody has opened yet")
            .into());
        }
    }
    Ok(id)
}

fn file(session: &Session, cmd: &FileCommand, out: &Out) -> Result<()> {
    let one = |result: Result<FileInfo, irm_client::ClientError>, verb: &str, id: &str| {
        result.with_context(|| format!("{verb} file {id}"))
    };
    let files = match cmd {
        FileCommand::List => session.list_files().context("listing files")?,
        FileCommand::Revoke { file_id, force } => {
            let file_id = &known_file(session, file_id, *force)?;
            vec![one(session.revoke_file(file_id), "revoking", file_id)?]
        }
        FileCommand::Restore { file_id, force } => {
            let file_id = &known_file(session, file_id, *force)?;
            let answer = session
                .restore_file(file_id)
                .with_context(|| format!("restoring file {file_id}"))?;
            return super::approval::show_filed(session, &answer, out);
        }
        FileCommand::Expire { file_id, force } => {
            let file_id = &known_file(session, file_id, *force)?;
            vec![one(session.expire_file(file_id), "expiring", file_id)?]
        }
        FileCommand::Restrict {
            file_id,
            remove,
            force,
        } => {
            let file_id = &known_file(session, file_id, *force)?;
            vec![one(
                session.restrict_file(file_id, *remove),
                "restricting",
                file_id,
            )?]
        }
    };
    let table = || {
        let mut text = format!(
            "{:<32} {:<8} {:<14} {:<16} {:<20} {}\n",
            "FILE ID", "STATE", "RESTRICTED", "OWNER", "FIRST SEEN", "NAME"
        );
        for f in &files {
            let _ = writeln!(
                text,
                "{:<32} {:<8} {:<14} {:<16} {:<20} {}",
                printable(&f.file_id),
                f.state.as_str(),
                if f.restricted_rights.is_empty() {
                    "-".to_owned()
                } else {
                    f.restricted_rights.to_string()
                },
                printable(f.owner.as_deref().unwrap_or("-")),
                text::time(f.first_seen_at),
                printable(f.file_name.as_deref().unwrap_or("-"))
            );
        }
        text
    };
    match cmd {
        FileCommand::List => out.show(&files, table),
        _ => out.show(&files[0], table),
    }
}

fn key(session: &Session, cmd: &KeyCommand, out: &Out) -> Result<()> {
    match cmd {
        KeyCommand::List => {
            let keys = session.list_keys().context("listing keys")?;
            out.show(&keys, || {
                let mut text = format!("{:<32} {:<10} {}\n", "KEY ID", "STATE", "URL");
                for k in &keys {
                    let _ = writeln!(
                        text,
                        "{:<32} {:<10} {}",
                        printable(&k.key.key_id),
                        k.state.as_str(),
                        printable(&k.key.url)
                    );
                }
                text
            })
        }
        KeyCommand::Rotate => {
            let key = session
                .rotate_key()
                .context("rotating the key server key")?;
            out.show(&key, || {
                format!("new current key {} ({})\n", key.key_id, printable(&key.url))
            })
        }
        KeyCommand::Retire { key_id } => {
            session
                .retire_key(key_id)
                .with_context(|| format!("retiring key {key_id}"))?;
            out.done(format!(
                "retired key {key_id}: files sealed to it are refused from now on"
            ))
        }
    }
}

fn audit(session: &Session, cmd: &AuditCommand, out: &Out) -> Result<()> {
    match cmd {
        AuditCommand::Tail {
            after,
            limit,
            user,
            file,
            action,
            since,
            follow,
        } => {
            let mut query = AuditQuery {
                after: after.unwrap_or(0),
                limit: *limit,
                newest: after.is_none(),
                user: user.clone(),
                file: file.as_deref().map(file_id_arg).transpose()?,
                action: action.clone(),
                since_ms: *since,
            };
            let records = session
                .audit_query(&query)
                .context("reading the audit log")?;
            out.show(&records, || records_text(&records))?;
            if !*follow {
                return Ok(());
            }
            // Each look is an audit.read record of our own: not news.
            let mine = |r: &AuditRecord| {
                r.action == "audit.read" && r.actor_device.as_deref() == Some(session.device_id())
            };
            query.newest = false;
            query.limit = irm_core::protocol::MAX_AUDIT_PAGE;
            query.after = records.last().map_or(query.after, |r| r.seq);
            loop {
                std::thread::sleep(std::time::Duration::from_secs(5));
                let records: Vec<AuditRecord> = session
                    .audit_query(&query)
                    .context("following the audit log")?;
                if let Some(last) = records.last() {
                    query.after = last.seq;
                }
                let news: Vec<AuditRecord> = records.into_iter().filter(|r| !mine(r)).collect();
                if !news.is_empty() {
                    out.show(&news, || records_text(&news))?;
                }
            }
        }
        AuditCommand::Verify => {
            let report = session.verify_audit().context("verifying the audit log")?;
            super::audit::show_report(&report, out.json)
        }
        AuditCommand::Export {
            output,
            format: ExportFormat::Verifiable,
            after,
            since,
            force,
        } => {
            if since.is_some() {
                anyhow::bail!(
                    "--since applies to --format cef and jsonl\nthe verifiable export starts after a sequence number: use --after SEQ"
                );
            }
            export(session, output, *after, *force, out)
        }
        AuditCommand::Export {
            output,
            format,
            after,
            since,
            force,
        } => siem_export(session, output, *format, (*after, *since), *force, out),
        AuditCommand::Report(args) => super::report::online(session, args, out.json),
        AuditCommand::Digest(args) => super::digest::run(session, args, out),
        AuditCommand::Checkpoint => {
            let checkpoint = session
                .audit_checkpoint()
                .context("writing an audit checkpoint")?;
            out.show(&checkpoint, || {
                format!(
                    "checkpoint: {} records, head {}, signed at {}\n",
                    checkpoint.count,
                    checkpoint.head_hash,
                    text::time(checkpoint.at_ms / 1000)
                )
            })
        }
    }
}

/// Alerts as lines for people: id, time, person, rule, what it did, and
/// whether it is acknowledged or still holds the person.
fn alerts_text(alerts: &[Alert]) -> String {
    let mut text = String::new();
    for a in alerts {
        let state = match &a.ack {
            Some(ack) => format!("acknowledged by {}", printable(&ack.by)),
            None => "open".to_owned(),
        };
        let _ = writeln!(
            text,
            "{:>6} {} {:<12} {:<16} {:<8} {}{}{}",
            a.id,
            text::time(a.at_ms / 1000),
            printable(a.user.as_deref().unwrap_or("-")),
            printable(&a.rule),
            a.response.as_str(),
            state,
            if a.in_force { ", still in force" } else { "" },
            a.detail
                .as_deref()
                .map(|d| format!("  {}", printable(d)))
                .unwrap_or_default(),
        );
    }
    text
}

/// What acknowledging does not do, in words (stderr), with the command
/// that does it.
fn still_in_force(alert: &Alert) -> Option<String> {
    let lift = alert.lift_with.as_deref()?;
    let user = printable(alert.user.as_deref().unwrap_or("the person"));
    let what = match alert.response {
        AlertResponse::Suspend => "suspended",
        _ => "held (step_up_required)",
    };
    Some(format!(
        "{user} is still {what}: acknowledging an alert does not lift it\nto lift it: {lift} (filed for a second administrator's approval)"
    ))
}

fn detection_text(rules: &[DetectionRuleInfo]) -> String {
    let mut text = format!("{:<12} {}\n", "RULE", "SETTING");
    for rule in rules {
        let _ = writeln!(
            text,
            "{:<12} {}",
            printable(&rule.rule),
            printable(&rule.text)
        );
    }
    text
}

fn detection(session: &Session, cmd: &DetectionCommand, out: &Out) -> Result<()> {
    match cmd {
        DetectionCommand::List => {
            let rules = session
                .detection_rules()
                .context("listing detection rules")?;
            out.show(&rules, || detection_text(&rules))
        }
        DetectionCommand::Set {
            rule,
            limit,
            window,
            action,
            off,
        } => {
            let setting = match (off, limit, window, action) {
                (true, ..) => None,
                (false, Some(limit), Some(window_secs), Some(action)) => Some(DetectionLimit {
                    limit: *limit,
                    window_secs: *window_secs,
                    action: DetectionAction::parse(action)
                        .context("--action is alert, step_up or suspend")?,
                }),
                _ => anyhow::bail!("give --limit, --window and --action, or --off"),
            };
            let change = session
                .set_detection_rule(rule, setting)
                .with_context(|| format!("changing the detection rule {rule}"))?;
            match change {
                DetectionChange::InForce(rules) => {
                    if !out.json {
                        eprintln!("in force now (a tightening takes effect at once)");
                    }
                    out.show(&rules, || detection_text(&rules))
                }
                DetectionChange::Filed(answer) => {
                    super::approval::show_filed(session, &answer, out)
                }
            }
        }
    }
}

fn hours_text(list: &[irm_core::protocol::GroupWorkingHours]) -> String {
    let mut text = format!("{:<16} {}\n", "GROUP", "HOURS");
    for group in list {
        let _ = writeln!(
            text,
            "{:<16} {}",
            printable(&group.group),
            printable(&group.text)
        );
    }
    text
}

fn hours(session: &Session, cmd: &HoursCommand, out: &Out) -> Result<()> {
    match cmd {
        HoursCommand::List => {
            let list = session.working_hours().context("listing working hours")?;
            out.show(&list, || hours_text(&list))
        }
        HoursCommand::Set {
            group,
            tz,
            days,
            hours,
            holidays,
            off,
        } => {
            let schedule = match (off, tz, hours) {
                (true, ..) => None,
                (false, Some(tz), Some(hours)) => Some(irm_core::protocol::WorkingHours {
                    time_zone: tz.clone(),
                    days: days.clone(),
                    hours: hours.clone(),
                    holidays: holidays.clone(),
                }),
                _ => anyhow::bail!("give --tz, --days and --hours, or --off"),
            };
            let change = session
                .set_working_hours(group, schedule)
                .with_context(|| format!("changing the working hours of {group}"))?;
            match change {
                HoursChange::InForce(list) => {
                    if !out.json {
                        eprintln!("in force now (narrower hours take effect at once)");
                    }
                    out.show(&list, || hours_text(&list))
                }
                HoursChange::Filed(answer) => super::approval::show_filed(session, &answer, out),
            }
        }
    }
}

fn alert(session: &Session, cmd: &AlertCommand, reason: Option<&str>, out: &Out) -> Result<()> {
    match cmd {
        AlertCommand::List { open } => {
            let alerts = session.list_alerts(*open).context("listing alerts")?;
            out.show(&alerts, || alerts_text(&alerts))
        }
        AlertCommand::Show { id } => {
            let alert = session
                .show_alert(*id)
                .with_context(|| format!("reading alert {id}"))?;
            out.show(&alert, || {
                let mut text = alerts_text(std::slice::from_ref(&alert));
                if let Some(ack) = &alert.ack {
                    let _ = writeln!(
                        text,
                        "acknowledged by {} at {}: {}",
                        printable(&ack.by),
                        text::time(ack.at),
                        printable(&ack.reason)
                    );
                }
                if let Some(lift) = &alert.lift_with {
                    let _ = writeln!(text, "still in force; lift with: {lift}");
                }
                text
            })
        }
        AlertCommand::Ack { id } => {
            let Some(reason) = reason.filter(|r| !r.trim().is_empty()) else {
                anyhow::bail!(
                    "acknowledging an alert needs a reason\nadd --reason TEXT (a ticket id, a sentence): it is audited with the acknowledgement"
                );
            };
            let alert = session
                .ack_alert(*id, reason)
                .with_context(|| format!("acknowledging alert {id}"))?;
            if let Some(warning) = still_in_force(&alert) {
                eprintln!("{warning}");
            }
            out.show(&alert, || format!("acknowledged alert {}\n", alert.id))
        }
    }
}

/// `audit export --format cef|jsonl`: every record (after SEQ, since WHEN),
/// one a line, for a SIEM.
fn siem_export(
    session: &Session,
    output: &std::path::Path,
    format: ExportFormat,
    (after, since_ms): (Option<u64>, Option<u64>),
    force: bool,
    out: &Out,
) -> Result<()> {
    let (destination, mut file) = export_file(output, force, out)?;
    let version = env!("CARGO_PKG_VERSION");
    let records = session
        .each_audit_record(after, since_ms, &mut |record| {
            let line = match format {
                ExportFormat::Cef => crate::siem::cef_line(&record, version),
                _ => crate::siem::jsonl_line(&record),
            };
            std::io::Write::write_all(&mut file, line.as_bytes())
                .and_then(|()| std::io::Write::write_all(&mut file, b"\n"))
        })
        .context("exporting the audit log")?;
    file.commit()?;
    if out.json {
        print_json(&serde_json::json!({
            "ok": true,
            "output": destination.path().map(|p| p.display().to_string()),
            "records": records,
        }));
    } else {
        eprintln!("exported {records} records to {destination} (not verifiable: no checkpoint)");
    }
    Ok(())
}

/// Where an audit export goes, checked and opened: not beside `--json` on
/// standard output, and mode 0600 (audit records name people and files,
/// like every file we write).
fn export_file(
    output: &std::path::Path,
    force: bool,
    out: &Out,
) -> Result<(Destination, crate::output::Output)> {
    let destination = Destination::from_arg(output);
    destination.check_beside_json(&Input::Stdin, out.json, force, "the export")?;
    let file = destination.create(force, 0o600)?;
    Ok((destination, file))
}

/// The `--json` report of an export.
#[derive(Serialize)]
struct ExportReport<'a> {
    ok: bool,
    output: Option<String>,
    first_seq: u64,
    last_seq: u64,
    records: u64,
    checkpoint: &'a irm_core::protocol::AuditCheckpoint,
}

fn export(
    session: &Session,
    output: &std::path::Path,
    after: Option<u64>,
    force: bool,
    out: &Out,
) -> Result<()> {
    let (destination, mut file) = export_file(output, force, out)?;
    let summary = session
        .export_audit(after.unwrap_or(0), &mut file)
        .context("exporting the audit log")?;
    file.commit()?;
    let written_to = destination.path().map(|p| p.display().to_string());
    let last_written = summary.header.first_seq + summary.records.saturating_sub(1);
    if summary.records == 0 || last_written != summary.header.last_seq {
        // The server returned fewer records than it had just signed for:
        // the export says so, and so do we.
        eprintln!(
            "warning: the key server returned {} records for {}..{}; `audit verify` on the export will show what is missing",
            summary.records, summary.header.first_seq, summary.header.last_seq
        );
    }
    if out.json {
        print_json(&ExportReport {
            ok: true,
            output: written_to,
            first_seq: summary.header.first_seq,
            last_seq: summary.header.last_seq,
            records: summary.records,
            checkpoint: &summary.checkpoint,
        });
    } else {
        eprintln!(
            "exported records {}..{} ({} records) to {destination}, up to the checkpoint signed at {} (head {})",
            summary.header.first_seq,
            summary.header.last_seq,
            summary.records,
            text::time(summary.checkpoint.at_ms / 1000),
            summary.checkpoint.head_hash
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(response: AlertResponse, in_force: bool) -> Alert {
        Alert {
            id: 7,
            at_ms: 1_800_000_000_000,
            rule: "bulk_files".into(),
            user: Some("mallory".into()),
            file_id: None,
            detail: Some("files=31 action=suspend".into()),
            response,
            in_force,
            lift_with: in_force.then(|| response.lift_command("mallory")).flatten(),
            ack: None,
        }
    }

    #[test]
    fn an_acknowledged_hold_says_it_stays_and_names_the_approved_command() {
        let suspended = still_in_force(&alert(AlertResponse::Suspend, true)).unwrap();
        assert!(
            suspended.starts_with(
                "mallory is still suspended: acknowledging an alert does not lift it\n"
            ),
            "{suspended}"
        );
        assert!(
            suspended.contains("irm admin user restore mallory"),
            "{suspended}"
        );
        let held = still_in_force(&alert(AlertResponse::StepUp, true)).unwrap();
        assert!(held.contains("irm admin user release mallory"), "{held}");
        assert_eq!(still_in_force(&alert(AlertResponse::StepUp, false)), None);
        assert_eq!(still_in_force(&alert(AlertResponse::Alert, false)), None);
    }

    #[test]
    fn an_alert_line_is_one_line_whatever_its_detail() {
        let mut a = alert(AlertResponse::Suspend, true);
        a.detail = Some("x\ny\u{1b}[31m".into());
        let text = alerts_text(&[a]);
        assert_eq!(text.lines().count(), 1, "{text:?}");
        assert!(text.contains("still in force"), "{text}");
    }
}
