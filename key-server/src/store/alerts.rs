//! Alerts over the store (PROTOCOL.md §12.1): the `detect.RULE` audit
//! records read as [`Alert`]s, their acknowledgements (table `alert_acks`,
//! so every instance and every restart sees the same), and the webhook's
//! delivery cursor (`meta` row `alert_delivery_cursor`) with the records
//! of its failures and late successes. Firing is `txn.rs`'s
//! (`apply_firing`); delivering is `crate::alerts`'.

use std::collections::HashMap;

use irm_core::protocol::{
    ALERT_ACTION_PREFIX, Alert, AlertAck, AlertResponse, AuditQuery, AuditRecord, MAX_AUDIT_PAGE,
};

use super::contract::AlertDeliveryEvent;
use super::tables::Tables;
use super::write_ctx::WriteCtx;
use crate::audit::{AuditDraft, Outcome};
use crate::error::{Refusal, StoreError};

/// The `meta` row holding the `seq` of the last alert the webhook took.
const CURSOR_KEY: &str = "alert_delivery_cursor";

/// The alert of a `detect.RULE` record, with its acknowledgement and
/// whether what it did to the person is still in force.
fn alert_of(
    conn: &mut impl Tables,
    record: &AuditRecord,
    ack: Option<AlertAck>,
) -> Result<Alert, StoreError> {
    let response = AlertResponse::from_detail(record.detail.as_deref());
    let in_force = match (&record.actor_user, response) {
        (Some(user), AlertResponse::StepUp) => conn.hold(user)?.is_some(),
        (Some(user), AlertResponse::Suspend) => conn.user(user)?.is_some_and(|u| !u.active),
        _ => false,
    };
    let lift_with = record
        .actor_user
        .as_deref()
        .filter(|_| in_force)
        .and_then(|user| response.lift_command(user));
    Ok(Alert {
        id: record.seq,
        at_ms: record.at_ms,
        rule: record
            .action
            .strip_prefix(ALERT_ACTION_PREFIX)
            .unwrap_or(&record.action)
            .to_owned(),
        user: record.actor_user.clone(),
        file_id: record.file_id.clone(),
        // The ledger's sealed section is the server's, not the reviewer's.
        detail: record
            .detail
            .as_deref()
            .map(|d| d.split(" ledger: ").next().unwrap_or(d).to_owned()),
        response,
        in_force,
        lift_with,
        ack,
    })
}

/// Up to `limit` firings after `after`, oldest first.
fn firings(conn: &mut impl Tables, after: u64, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
    conn.audit_query(&AuditQuery {
        after,
        limit,
        action: Some(ALERT_ACTION_PREFIX.trim_end_matches('.').to_owned()),
        ..Default::default()
    })
}

/// Every alert, oldest first; only the unacknowledged ones if `open`.
pub(super) fn list(conn: &mut impl Tables, open: bool) -> Result<Vec<Alert>, StoreError> {
    let acks: HashMap<u64, AlertAck> = conn.alert_acks()?.into_iter().collect();
    let mut alerts = Vec::new();
    let mut after = 0;
    loop {
        let page = firings(conn, after, MAX_AUDIT_PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for record in &page {
            let ack = acks.get(&record.seq).cloned();
            if open && ack.is_some() {
                continue;
            }
            alerts.push(alert_of(conn, record, ack)?);
        }
    }
    Ok(alerts)
}

/// Alert `id`, or 404 when no firing has that `seq`.
pub(super) fn one(conn: &mut impl Tables, id: u64) -> Result<Result<Alert, Refusal>, StoreError> {
    let record = match id.checked_sub(1) {
        Some(after) => conn.audit_page(after, 1)?.into_iter().next(),
        None => None,
    };
    let Some(record) = record.filter(|r| r.seq == id && r.action.starts_with(ALERT_ACTION_PREFIX))
    else {
        return Ok(Err(Refusal::NotFound(format!("alert {id}"))));
    };
    let ack = conn.alert_ack(id)?;
    Ok(Ok(alert_of(conn, &record, ack)?))
}

/// Acknowledges alert `id` as `by`; 409 when it already is. The hold or
/// suspension it set stays: lifting it is an approved operation of its own.
pub(super) fn ack(
    conn: &mut impl Tables,
    id: u64,
    by: &str,
    reason: &str,
    now: u64,
) -> Result<Result<Alert, Refusal>, StoreError> {
    let alert = match one(conn, id)? {
        Ok(alert) => alert,
        Err(refusal) => return Ok(Err(refusal)),
    };
    if let Some(ack) = &alert.ack {
        return Ok(Err(Refusal::Conflict(format!(
            "alert {id} was already acknowledged by {} (reason: {})",
            ack.by, ack.reason
        ))));
    }
    let ack = AlertAck {
        by: by.to_owned(),
        at: now,
        reason: reason.to_owned(),
    };
    conn.insert_alert_ack(id, &ack)?;
    Ok(Ok(Alert {
        ack: Some(ack),
        ..alert
    }))
}

/// The alerts after the delivery cursor, oldest first, at most `limit`.
pub(super) fn undelivered(conn: &mut impl Tables, limit: u32) -> Result<Vec<Alert>, StoreError> {
    let cursor = match conn.meta(CURSOR_KEY)? {
        Some(text) => text
            .parse::<u64>()
            .map_err(|_| StoreError::Corrupt(format!("{CURSOR_KEY} is not a number")))?,
        None => 0,
    };
    let acks: HashMap<u64, AlertAck> = conn.alert_acks()?.into_iter().collect();
    firings(conn, cursor, limit)?
        .iter()
        .map(|record| alert_of(conn, record, acks.get(&record.seq).cloned()))
        .collect()
}

/// Records what became of a delivery: a success moves the cursor past the
/// alert (and is audited when it follows a failure); a first failure is
/// audited with its kind.
pub(super) fn delivery<C: Tables>(
    ctx: &mut WriteCtx<'_, C>,
    event: &AlertDeliveryEvent,
    now_ms: u64,
) -> Result<(), StoreError> {
    match event {
        AlertDeliveryEvent::Delivered { id, attempts } => {
            let cursor = ctx
                .conn
                .meta(CURSOR_KEY)?
                .and_then(|t| t.parse::<u64>().ok())
                .unwrap_or(0);
            if *id > cursor {
                ctx.conn.upsert_meta(CURSOR_KEY, &id.to_string())?;
            }
            if *attempts > 1 {
                ctx.audit(
                    AuditDraft::new(now_ms, "alert.delivered", Outcome::Ok)
                        .detail(format!("alert={id} attempts={attempts}")),
                )?;
            }
        }
        AlertDeliveryEvent::Failed { id, kind } => {
            let mut draft = AuditDraft::new(now_ms, "alert.delivery_failed", Outcome::Failed)
                .detail(format!("alert={id} error={kind}"));
            draft.reason = Some(kind.clone());
            ctx.audit(draft)?;
        }
    }
    Ok(())
}
