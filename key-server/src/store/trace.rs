//! Canaries and watermark ids over the store (PROTOCOL.md §7.8): issuing an
//! approved export's canaries (tables `canary_exports` and `canaries`, in
//! the export record's transaction) and the two audited lookups that name
//! an export or a grant from what a leak carries. Drawing the invented
//! customers is `crate::canary`'s; the wire types are `irm_core`'s.

use std::collections::{BTreeMap, BTreeSet};

use irm_core::protocol::{
    ApprovalAction, Canary, ExportReceipt, RequestState, TakeOut, TraceAnswer, TracedExport,
    TracedGrant, WatermarkTrace, contact_key, watermark_id,
};

use super::contract::{Actor, AdminOp, AdminOutput, CanaryOrder, EventInput, StoreResult};
use super::tables::{CanaryExportRow, Tables};
use super::write_ctx::WriteCtx;
use crate::audit::AuditDraft;
use crate::error::{Refusal, StoreError};

/// How many of the newest approval requests are searched for the one an
/// export spent (the take-out row itself does not name its request).
const REQUESTS_SEARCHED: u32 = 200;

/// Matched exports or grants named in a lookup's audit record, at most.
const MATCHES_RECORDED: usize = 20;

/// Issues `order`'s canaries for an export that has just spent its approved
/// take-out: keeps the first contact candidates no export holds yet, records
/// them and the export, and returns the receipt and the text for the
/// export's audit record (`export=ID canaries=K`, and what fell short).
pub(super) fn issue(
    conn: &mut impl Tables,
    input: &EventInput,
    order: &CanaryOrder,
    file_id: &str,
    now: u64,
) -> Result<(ExportReceipt, String), StoreError> {
    let want = order.identities.len();
    let phones = unused(conn, &order.phones, want)?;
    let emails = unused(conn, &order.emails, want)?;
    let count = want.min(phones.len()).min(emails.len());
    let (pool_phones, pool_emails) = order.pooled;
    let phone_pool_short = (pool_phones > 0)
        .then(|| count - from_pool(&phones[..count], &order.phones[..pool_phones]))
        .filter(|short| *short > 0);
    let email_pool_short = (pool_emails > 0 && !order.emails_monitored)
        .then(|| count - from_pool(&emails[..count], &order.emails[..pool_emails]))
        .filter(|short| *short > 0);
    let (request_id, approvers) = approved_request(conn, input, file_id)?;
    conn.insert_canary_export(&CanaryExportRow {
        id: order.export_id.clone(),
        grant_id: input.grant_id.clone(),
        file_id: file_id.to_owned(),
        user: input.actor.user.clone(),
        device_id: input.actor.device.clone(),
        request_id: request_id.clone(),
        approvers: approvers.join(","),
        rows: order.rows,
        canaries: count as u32,
        exported_at: now,
    })?;
    let mut canaries = Vec::with_capacity(count);
    for ((identity, (phone, phone_key)), (email, email_key)) in
        order.identities.iter().zip(phones).zip(emails).take(count)
    {
        conn.insert_canary(&phone_key, &order.export_id)?;
        conn.insert_canary(&email_key, &order.export_id)?;
        canaries.push(Canary {
            phone,
            email,
            ..identity.clone()
        });
    }
    let mut note = format!("export={} canaries={count}", order.export_id);
    if count < want {
        // Every candidate was taken: the operator's pools ran dry and the
        // invented values too (PROTOCOL.md §7.8); say so in the record.
        note.push_str(&format!(" canaries_short={}", want - count));
    }
    // A configured pool that ran dry: the rest of the canaries name the
    // export when found, but their use reaches no one. Say so, so that the
    // operator refills it.
    if let Some(short) = phone_pool_short {
        note.push_str(&format!(" phone_pool_short={short}"));
    }
    if let Some(short) = email_pool_short {
        note.push_str(&format!(" email_pool_short={short}"));
    }
    if let Some(request) = &request_id {
        note.push_str(&format!(" request={request}"));
    }
    Ok((
        ExportReceipt {
            export_id: Some(order.export_id.clone()),
            canaries,
        },
        note,
    ))
}

/// How many of `kept` (value, key) are values of `pool`.
fn from_pool(kept: &[(String, String)], pool: &[String]) -> usize {
    let pool: BTreeSet<&str> = pool.iter().map(String::as_str).collect();
    kept.iter()
        .filter(|(v, _)| pool.contains(v.as_str()))
        .count()
}

/// Up to `want` of `candidates`, in order, with their contact keys, that no
/// export holds yet (and that are not repeated among themselves).
fn unused(
    conn: &mut impl Tables,
    candidates: &[String],
    want: usize,
) -> Result<Vec<(String, String)>, StoreError> {
    let keyed: Vec<(String, String)> = candidates
        .iter()
        .filter_map(|c| contact_key(c).map(|k| (c.clone(), k)))
        .collect();
    let mut taken: BTreeSet<String> = BTreeSet::new();
    // Ask in slices: a pool may hold many thousands.
    for slice in keyed.chunks(5_000) {
        let keys: Vec<String> = slice.iter().map(|(_, k)| k.clone()).collect();
        taken.extend(conn.canaries_among(&keys)?.into_iter().map(|(v, _)| v));
    }
    let mut out = Vec::with_capacity(want);
    for (value, key) in keyed {
        if out.len() == want {
            break;
        }
        if taken.insert(key.clone()) {
            out.push((value, key));
        }
    }
    Ok(out)
}

/// The newest approved export request of this file, person and device
/// among the newest requests, and who approved it.
fn approved_request(
    conn: &mut impl Tables,
    input: &EventInput,
    file_id: &str,
) -> Result<(Option<String>, Vec<String>), StoreError> {
    for request in conn.requests(REQUESTS_SEARCHED)? {
        if request.state != RequestState::Done {
            continue;
        }
        let Ok(ApprovalAction::TakeOut {
            how: TakeOut::Export,
            file_id: file,
            user,
            device_id,
        }) = serde_json::from_str::<ApprovalAction>(&request.action_json)
        else {
            continue;
        };
        if file == file_id && user == input.actor.user && device_id == input.actor.device {
            let approvers = conn
                .approvals(&request.id)?
                .into_iter()
                .map(|a| a.approver)
                .collect();
            return Ok((Some(request.id), approvers));
        }
    }
    Ok((None, Vec::new()))
}

/// `admin.trace.canaries` and `admin.trace.watermark`: the lookup, refused
/// without a reason, and its record with what matched.
pub(super) fn lookup<C: Tables>(
    ctx: &mut WriteCtx<'_, C>,
    actor: &Actor,
    op: &AdminOp,
    mut draft: AuditDraft,
) -> StoreResult<AdminOutput> {
    let Some(reason) = actor.reason.as_deref().filter(|r| !r.trim().is_empty()) else {
        return ctx.refuse(
            draft,
            Refusal::BadRequest(
                "a trace is a privileged lookup: give the reason (a ticket id) with ?reason="
                    .into(),
            ),
        );
    };
    let (output, what, matched) = match op {
        AdminOp::TraceCanaries { values } => {
            let answer = trace_canaries(ctx.conn, values)?;
            let matched: Vec<String> = answer
                .exports
                .iter()
                .map(|e| format!("{}({})", e.export_id, e.matched))
                .collect();
            (
                AdminOutput::Trace(answer),
                format!("values={}", values.len()),
                matched,
            )
        }
        AdminOp::TraceWatermark { id, prefix } => {
            let answer = trace_watermark(ctx.conn, id, prefix)?;
            let matched = answer.grants.iter().map(|g| g.grant_id.clone()).collect();
            (
                AdminOutput::Watermark(answer),
                format!("watermark={id}"),
                matched,
            )
        }
        _ => {
            return Err(StoreError::Corrupt(format!(
                "{} reached the trace lookup",
                op.action()
            )));
        }
    };
    let shown: Vec<&str> = matched
        .iter()
        .take(MATCHES_RECORDED)
        .map(String::as_str)
        .collect();
    let matched_text = if matched.is_empty() {
        "none".to_owned()
    } else if matched.len() > MATCHES_RECORDED {
        format!("{},+{}", shown.join(","), matched.len() - MATCHES_RECORDED)
    } else {
        shown.join(",")
    };
    // The reason last, as in every record.
    draft.detail = Some(format!("{what} matched={matched_text} reason={reason}"));
    ctx.audit(draft)?;
    Ok(Ok(output))
}

fn trace_canaries(conn: &mut impl Tables, values: &[String]) -> Result<TraceAnswer, StoreError> {
    let mut per_export: BTreeMap<String, u32> = BTreeMap::new();
    for (_, export) in conn.canaries_among(values)? {
        *per_export.entry(export).or_default() += 1;
    }
    let mut exports = Vec::new();
    for (export_id, matched) in per_export {
        let Some(row) = conn.canary_export(&export_id)? else {
            continue;
        };
        let device_name = conn.device(&row.device_id)?.map(|d| d.name);
        exports.push(TracedExport {
            watermark_id: watermark_id(&row.grant_id).unwrap_or_default(),
            export_id: row.id,
            grant_id: row.grant_id,
            file_id: row.file_id,
            user: row.user,
            device_id: row.device_id,
            device_name,
            request_id: row.request_id,
            approvers: row
                .approvers
                .split(',')
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect(),
            exported_at: row.exported_at,
            rows: row.rows,
            canaries: row.canaries,
            matched,
        });
    }
    exports.sort_by(|a, b| {
        b.matched
            .cmp(&a.matched)
            .then(b.exported_at.cmp(&a.exported_at))
    });
    Ok(TraceAnswer {
        checked: values.len() as u32,
        exports,
    })
}

fn trace_watermark(
    conn: &mut impl Tables,
    id: &str,
    prefix: &str,
) -> Result<WatermarkTrace, StoreError> {
    let mut grants = Vec::new();
    for grant in conn.grants_with_prefix(prefix)? {
        let device_name = conn.device(&grant.device_id)?.map(|d| d.name);
        grants.push(TracedGrant {
            grant_id: grant.id,
            file_id: grant.file_id,
            user: grant.user,
            device_id: grant.device_id,
            device_name,
            issued_at: grant.issued_at,
            lease_expires_at: grant.lease_expires_at,
            renew: grant.renew,
        });
    }
    Ok(WatermarkTrace {
        watermark_id: id.to_owned(),
        grants,
    })
}
