//! Two-person control (PROTOCOL.md §7.2), written once for every backend: an
//! operation that widens who can read is filed as a request instead of run;
//! administrators other than the requester approve it by the hash of its
//! action; the approval that reaches the rule runs it, in the same
//! transaction; every step is an audit record naming the person. The one
//! exception is a new server's second administrator (the bootstrap).

use irm_core::protocol::{
    ApprovalAction, ApprovalInfo, ApprovalRequestInfo, ApprovalRule, DenyReason,
    MAX_REQUIRED_APPROVALS, Notice, NoticeKind, RequestState, Role, TakeOut,
};

use super::contract::{Actor, AdminOp, AdminOutput, REQUEST_LIFETIME_SECS, StoreResult};
use super::ledger::{self, Object};
use super::tables::{RequestRow, Tables};
use super::write_ctx::WriteCtx;
use crate::audit::{AuditDraft, Outcome};
use crate::codes::{self, CodeHalf};
use crate::error::{Refusal, StoreError};

/// Approvals an action needs until an approved rule says otherwise: one
/// person besides the requester, so that two people always act; for taking
/// a file out, two (the operator's "several administrators").
pub(super) fn default_required(kind: &str) -> u8 {
    if kind == TakeOut::Program.kind() {
        // Off until administrators turn it on: programs read by design.
        0
    } else if is_take_out(kind) {
        2
    } else {
        1
    }
}

/// Whether `kind` is a take-out's rule (`file.export`, `file.copy`,
/// `file.print`): the only rules that may be 0 (no approval, as on a server
/// upgraded from before approvals).
fn is_take_out(kind: &str) -> bool {
    TakeOut::ALL.iter().any(|t| t.kind() == kind)
}

/// The newest requests a listing shows.
const LIST_LIMIT: u32 = 200;

/// The approvals `kind` needs now.
pub(super) fn required_for(conn: &mut impl Tables, kind: &str) -> Result<u8, StoreError> {
    Ok(conn
        .approval_rule(kind)?
        .unwrap_or_else(|| default_required(kind)))
}

/// The approvals `kind` needs now, once its rule's row is checked against
/// the audit log (PROTOCOL.md §11.3): a rule lowered in the database is
/// refused with `state_integrity`, never obeyed.
pub(super) fn required_checked<C: Tables>(
    ctx: &mut WriteCtx<'_, C>,
    kind: &str,
) -> Result<Result<u8, Refusal>, StoreError> {
    let stored = ctx.conn.approval_rule(kind)?;
    let object = Object::Rule(kind.to_owned());
    if let Some(name) = ctx.forged(&[(object, ledger::rule_state(stored))]) {
        tracing::error!(
            object = name,
            "state integrity: an approval rule differs from the audit log"
        );
        return Ok(Err(Refusal::Deny(DenyReason::StateIntegrity)));
    }
    Ok(Ok(stored.unwrap_or_else(|| default_required(kind))))
}

/// Every rule, defaults included, in [`ApprovalAction::KINDS`] order.
pub(super) fn rules(conn: &mut impl Tables) -> Result<Vec<ApprovalRule>, StoreError> {
    ApprovalAction::KINDS
        .iter()
        .map(|kind| {
            Ok(ApprovalRule {
                action: (*kind).to_owned(),
                required: required_for(conn, kind)?,
            })
        })
        .collect()
}

/// Whether a rule change is one the server accepts.
pub(super) fn check_rule(action: &str, required: u8) -> Result<(), Refusal> {
    if !ApprovalAction::KINDS.contains(&action) {
        return Err(Refusal::BadRequest(format!(
            "no approval rule for {action:?}; the rules are {}",
            ApprovalAction::KINDS.join(", ")
        )));
    }
    let least = u8::from(!is_take_out(action));
    if !(least..=MAX_REQUIRED_APPROVALS).contains(&required) {
        return Err(Refusal::BadRequest(format!(
            "an action that widens who can read needs 1 to {MAX_REQUIRED_APPROVALS} approvals (no one acts alone)"
        )));
    }
    Ok(())
}

/// Whether `op` is the one action a lone administrator may take at once: on
/// a server that has only ever had one administrator, creating the second
/// (with no groups). Suspended administrators count, so suspending the
/// other administrator does not reopen the bootstrap.
pub(super) fn is_bootstrap_second_admin(
    conn: &mut impl Tables,
    op: &AdminOp,
) -> Result<bool, StoreError> {
    let AdminOp::CreateUser(user) = op else {
        return Ok(false);
    };
    if !user.roles.contains(&Role::Admin) || !user.groups.is_empty() {
        return Ok(false);
    }
    Ok(administrators(conn)? == 1)
}

/// Users with the admin role, suspended ones included.
pub(super) fn administrators(conn: &mut impl Tables) -> Result<usize, StoreError> {
    let mut count = 0;
    for name in conn.user_names()? {
        if conn
            .user(&name)?
            .is_some_and(|u| u.roles.contains(&Role::Admin))
        {
            count += 1;
        }
    }
    Ok(count)
}

/// The effect of an operation without its audit record (`txn::admin_effect`).
pub(super) type Effect<C> = fn(&mut C, &AdminOp, u64) -> StoreResult<AdminOutput>;

/// An operation's effect with its audit record (`txn::apply`).
pub(super) type Apply<C> =
    fn(&mut WriteCtx<'_, C>, &AdminOp, AuditDraft, u64) -> StoreResult<AdminOutput>;

/// Files `op` as a request: checked now (a mistyped user or group is
/// refused at once, not after someone approved it) by running its `effect`
/// and undoing it, then stored with the hash of its action.
pub(super) fn file<C: Tables>(
    ctx: &mut WriteCtx<'_, C>,
    actor: &Actor,
    op: &AdminOp,
    action: ApprovalAction,
    effect: Effect<C>,
    now_ms: u64,
) -> StoreResult<AdminOutput> {
    let now = now_ms / 1000;
    let mut draft = actor.draft(now_ms, "admin.request.create", Outcome::Ok);
    draft.file_id = op.file_id();
    draft.detail = Some(with_reason(
        format!("action={} {}", action.kind(), action.summary()),
        actor,
    ));
    let refusal = match op {
        AdminOp::SetRule { action, required } => check_rule(action, *required).err(),
        _ => {
            ctx.conn.run("SAVEPOINT dry_run")?;
            let tried = effect(ctx.conn, op, now_ms);
            ctx.conn.run("ROLLBACK TO dry_run")?;
            ctx.conn.run("RELEASE dry_run")?;
            tried?.err()
        }
    };
    if let Some(refusal) = refusal {
        return ctx.refuse(draft, refusal);
    }
    let required = match required_checked(ctx, action.kind())? {
        Ok(required) => required,
        Err(refusal) => {
            let detail = draft.detail.take().unwrap_or_default();
            let draft = draft.detail(format!("{detail} object=rule/{}", action.kind()));
            return ctx.refuse(draft, refusal);
        }
    };
    if required == 0 {
        return ctx.refuse(
            draft,
            Refusal::Conflict(format!(
                "{} needs no approval on this server: go ahead",
                action.kind()
            )),
        );
    }
    let row = RequestRow {
        id: new_id()?,
        action_json: serde_json::to_string(&action)
            .map_err(|e| StoreError::Corrupt(format!("an action does not serialise: {e}")))?,
        action_hash: action.hash(),
        requester: actor.user.clone(),
        requester_device: actor.device.clone(),
        reason: actor.reason.clone().unwrap_or_default(),
        required,
        state: RequestState::Pending,
        created_at: now,
        expires_at: now + REQUEST_LIFETIME_SECS,
        outcome: String::new(),
        code_first_hash: match op {
            AdminOp::CreateUser(user) => Some(user.code.first_half_hash),
            AdminOp::NewCode { code, .. } | AdminOp::IssueBreakGlass { code } => {
                Some(code.first_half_hash)
            }
            _ => None,
        },
    };
    ctx.conn.insert_request(&row)?;
    draft.detail = Some(format!(
        "request={} required={required} {}",
        row.id,
        draft.detail.unwrap_or_default()
    ));
    ctx.audit_setting(draft, &[Object::Request(row.id.clone())])?;
    Ok(Ok(AdminOutput::Filed(info(ctx.conn, row)?)))
}

/// Marks every pending request whose time ran out as expired, each with an
/// audit record (no actor: time did it).
pub(super) fn expire_due<C: Tables>(
    ctx: &mut WriteCtx<'_, C>,
    now_ms: u64,
) -> Result<(), StoreError> {
    for id in ctx.conn.pending_due(now_ms / 1000)? {
        ctx.conn
            .set_request_state(&id, RequestState::Expired, "no quorum before it expired")?;
        ctx.audit_setting(
            AuditDraft::new(now_ms, "admin.request.expire", Outcome::Ok)
                .detail(format!("request={id}")),
            &[Object::Request(id.clone())],
        )?;
    }
    Ok(())
}

/// The listing, newest first.
pub(super) fn list(conn: &mut impl Tables) -> Result<AdminOutput, StoreError> {
    let rows = conn.requests(LIST_LIMIT)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(info(conn, row)?);
    }
    Ok(AdminOutput::Requests(out))
}

/// One request.
pub(super) fn show(conn: &mut impl Tables, id: &str) -> StoreResult<AdminOutput> {
    Ok(match conn.request(id)? {
        None => Err(Refusal::NotFound(format!("request {id}"))),
        Some(row) => Ok(AdminOutput::Request {
            request: info(conn, row)?,
            code_expires_at: None,
        }),
    })
}

/// An approval by `actor`, and the action (run by `apply`) if it completes
/// the quorum.
pub(super) fn approve<C: Tables>(
    ctx: &mut WriteCtx<'_, C>,
    actor: &Actor,
    (id, action_hash, second_half, break_glass): (&str, &str, &CodeHalf, Option<&str>),
    apply: Apply<C>,
    now_ms: u64,
) -> StoreResult<AdminOutput> {
    let now = now_ms / 1000;
    let verb = if break_glass.is_some() {
        "admin.request.break_glass"
    } else {
        "admin.request.approve"
    };
    let mut draft = actor.draft(now_ms, verb, Outcome::Ok);
    draft.detail = Some(with_reason(format!("request={id}"), actor));
    let row = match pending(ctx, id)? {
        Ok(row) => row,
        Err(refusal) => return ctx.refuse(draft, refusal),
    };
    let action = stored_action(&row)?;
    draft.file_id = match &action {
        ApprovalAction::RestoreFile { file_id } => Some(file_id.clone()),
        _ => None,
    };
    let approvals = ctx.conn.approvals(id)?;
    let refusal = if row.requester == actor.user {
        Some(Refusal::Conflict(
            "you filed this request: another administrator must approve it".into(),
        ))
    } else if approvals.iter().any(|a| a.approver == actor.user) {
        Some(Refusal::Conflict(format!(
            "you approved request {id} already; it needs approvals from {} different administrators",
            row.required
        )))
    } else if action_hash != row.action_hash {
        Some(Refusal::Conflict(format!(
            "request {id} is not the action you approved (its hash is {}, yours {action_hash}); show it again and approve what it says",
            row.action_hash
        )))
    } else if let Some(code) = break_glass {
        let stored = ctx.conn.break_glass()?;
        let state = ledger::break_glass_state(stored.as_ref());
        if let Some(object) = ctx.forged(&[(Object::BreakGlass, state)]) {
            tracing::error!(
                object,
                "state integrity: the break-glass code differs from the audit log"
            );
            Some(Refusal::Deny(DenyReason::StateIntegrity))
        } else {
            break_glass_refusal(ctx.conn, &action, code, now)?
        }
    } else {
        None
    };
    if let Some(refusal) = refusal {
        return ctx.refuse(draft, refusal);
    }
    let mut set = vec![Object::Request(id.to_owned())];
    if break_glass.is_some() {
        ctx.conn.spend_break_glass(&actor.user, id, now)?;
        tell_administrators_of_break_glass(ctx.conn, actor, &row, &action, now)?;
        set.push(Object::BreakGlass);
    }
    ctx.conn.insert_approval(
        id,
        &ApprovalInfo {
            approver: actor.user.clone(),
            device: actor.device.clone(),
            at: now,
        },
    )?;
    // The break-glass code stands for every approval still missing.
    let count = if break_glass.is_some() {
        usize::from(row.required).max(approvals.len() + 1)
    } else {
        approvals.len() + 1
    };
    draft.detail = Some(with_reason(
        format!(
            "request={id} action={} action_hash={} approvals={count}/{}",
            action.kind(),
            row.action_hash,
            row.required
        ),
        actor,
    ));
    if count < usize::from(row.required) {
        ctx.audit_setting(draft, &set)?;
        return Ok(Ok(AdminOutput::Request {
            request: info(ctx.conn, row)?,
            code_expires_at: None,
        }));
    }

    // The quorum: the action runs now, recorded as the requester's, with
    // who approved it.
    let mut approvers: Vec<String> = approvals.into_iter().map(|a| a.approver).collect();
    approvers.push(actor.user.clone());
    let origin = format!(
        "request={id} requested_by={} approved_by={}",
        row.requester,
        approvers.join(",")
    );
    let code = match row.code_first_hash {
        Some(first) => codes::complete(&first, second_half, now, origin),
        None if action.issues_code() => {
            return Err(StoreError::Corrupt(format!(
                "request {id} issues a code but keeps no first half"
            )));
        }
        None => codes::complete(&[0; 32], second_half, now, origin),
    };
    let op = AdminOp::approved(&action, code);
    let mut effect = AuditDraft::new(now_ms, action.kind(), Outcome::Ok);
    effect.actor_user = Some(row.requester.clone());
    effect.actor_device = Some(row.requester_device.clone());
    effect.file_id = op.file_id();
    let mut detail = op.detail().map(|d| format!("{d} ")).unwrap_or_default();
    detail.push_str(&format!("request={id} approved_by={}", approvers.join(",")));
    if !row.reason.is_empty() {
        detail.push_str(&format!(" reason={}", row.reason));
    }
    effect.detail = Some(detail);
    let (state, outcome, code_expires_at) = match apply(ctx, &op, effect, now_ms)? {
        Ok(AdminOutput::CodeStored { expires_at, .. }) => {
            (RequestState::Done, String::new(), Some(expires_at))
        }
        Ok(_) => (RequestState::Done, String::new(), None),
        Err(refusal) => (RequestState::Failed, refusal.to_string(), None),
    };
    ctx.conn.set_request_state(id, state, &outcome)?;
    // The approval's record comes after the action's, so that it vouches
    // for the request as it ends (PROTOCOL.md §11.3).
    ctx.audit_setting(draft, &set)?;
    let row = ctx
        .conn
        .request(id)?
        .ok_or_else(|| StoreError::Corrupt(format!("request {id} vanished")))?;
    Ok(Ok(AdminOutput::Request {
        request: info(ctx.conn, row)?,
        code_expires_at,
    }))
}

/// Why the break-glass `code` cannot approve `action` now, if it cannot: it
/// must be the live code (issued, not used, not expired), and it never
/// approves what would extend itself or loosen the rules (a new
/// break-glass code, an approval rule, the root key's shares).
fn break_glass_refusal(
    conn: &mut impl Tables,
    action: &ApprovalAction,
    code: &str,
    now: u64,
) -> Result<Option<Refusal>, StoreError> {
    use subtle::ConstantTimeEq;
    if matches!(
        action,
        ApprovalAction::IssueBreakGlass
            | ApprovalAction::SetApprovalRule { .. }
            | ApprovalAction::SetDetectionRule { .. }
            | ApprovalAction::SetWorkingHours { .. }
            | ApprovalAction::ReissueShares { .. }
    ) {
        return Ok(Some(Refusal::Conflict(format!(
            "the break-glass code does not approve {}: that waits for administrators",
            action.kind()
        ))));
    }
    let live = conn.break_glass()?.filter(|row| {
        row.used_at.is_none()
            && row.expires_at > now
            && bool::from(row.hash.as_slice().ct_eq(&codes::hash(code)))
    });
    Ok(live.is_none().then(|| {
        Refusal::Conflict(
            "the break-glass code is not valid: wrong, already used, expired or replaced (two administrators issue a new one: irm admin break-glass issue)"
                .into(),
        )
    }))
}

/// Leaves a break-glass notice for every device of every active
/// administrator: the next grant on each tells its person (PROTOCOL.md §4.3).
fn tell_administrators_of_break_glass(
    conn: &mut impl Tables,
    actor: &Actor,
    row: &RequestRow,
    action: &ApprovalAction,
    now: u64,
) -> Result<(), StoreError> {
    let device_name = conn
        .device(&actor.device)?
        .map(|d| d.name)
        .unwrap_or_default();
    let notice = Notice {
        kind: NoticeKind::BreakGlass,
        at: now,
        device_id: actor.device.clone(),
        device_name,
        code_origin: format!(
            "request={} action={} requested_by={} used_by={}",
            row.id,
            action.kind(),
            row.requester,
            actor.user
        ),
    };
    for name in conn.user_names()? {
        if !conn
            .user(&name)?
            .is_some_and(|u| u.active && u.roles.contains(&Role::Admin))
        {
            continue;
        }
        for device in conn.active_devices_of(&name)? {
            conn.insert_notice(&device, &notice)?;
        }
    }
    Ok(())
}

/// A denial (by its requester: a withdrawal).
pub(super) fn deny<C: Tables>(
    ctx: &mut WriteCtx<'_, C>,
    actor: &Actor,
    id: &str,
    now_ms: u64,
) -> StoreResult<AdminOutput> {
    let mut draft = actor.draft(now_ms, "admin.request.deny", Outcome::Ok);
    draft.detail = Some(with_reason(format!("request={id}"), actor));
    let row = match pending(ctx, id)? {
        Ok(row) => row,
        Err(refusal) => return ctx.refuse(draft, refusal),
    };
    let outcome = if row.requester == actor.user {
        format!("withdrawn by {}", actor.user)
    } else {
        format!("denied by {}", actor.user)
    };
    ctx.conn
        .set_request_state(id, RequestState::Denied, &outcome)?;
    ctx.audit_setting(draft, &[Object::Request(id.to_owned())])?;
    let row = RequestRow {
        state: RequestState::Denied,
        outcome,
        ..row
    };
    Ok(Ok(AdminOutput::Request {
        request: info(ctx.conn, row)?,
        code_expires_at: None,
    }))
}

/// `detail`, with the person's reason when they gave one.
pub(super) fn with_reason(detail: String, actor: &Actor) -> String {
    match actor.reason.as_deref() {
        // An acknowledgement carries its reason in its body too: once is enough.
        Some(reason) if !reason.is_empty() && !detail.ends_with(&format!(" reason={reason}")) => {
            format!("{detail} reason={reason}")
        }
        _ => detail,
    }
}

/// A request that can still be approved or denied.
fn pending<C: Tables>(
    ctx: &mut WriteCtx<'_, C>,
    id: &str,
) -> Result<Result<RequestRow, Refusal>, StoreError> {
    // PROTOCOL.md §11.3: a request or approval written into the database
    // (or a finished request set pending again) is no request.
    let row = ctx.conn.request(id)?;
    let approvals = match &row {
        Some(_) => ctx.conn.approvals(id)?,
        None => Vec::new(),
    };
    let state = ledger::request_state(row.as_ref(), &approvals);
    if let Some(object) = ctx.forged(&[(Object::Request(id.to_owned()), state)]) {
        tracing::error!(
            object,
            "state integrity: a request differs from the audit log"
        );
        return Ok(Err(Refusal::Deny(DenyReason::StateIntegrity)));
    }
    let Some(row) = row else {
        return Ok(Err(Refusal::NotFound(format!("request {id}"))));
    };
    if row.state != RequestState::Pending {
        return Ok(Err(Refusal::Conflict(format!(
            "request {id} is {}{}; file a new one",
            row.state,
            if row.outcome.is_empty() {
                String::new()
            } else {
                format!(" ({})", row.outcome)
            }
        ))));
    }
    Ok(Ok(row))
}

/// The stored action, checked against the hash it was filed with: a row
/// changed in the database runs nothing.
fn stored_action(row: &RequestRow) -> Result<ApprovalAction, StoreError> {
    let action: ApprovalAction = serde_json::from_str(&row.action_json)
        .map_err(|e| StoreError::Corrupt(format!("request {}: {e}", row.id)))?;
    if action.hash() != row.action_hash {
        return Err(StoreError::Corrupt(format!(
            "request {}: the stored action does not match its hash",
            row.id
        )));
    }
    Ok(action)
}

fn info(conn: &mut impl Tables, row: RequestRow) -> Result<ApprovalRequestInfo, StoreError> {
    Ok(ApprovalRequestInfo {
        approvals: conn.approvals(&row.id)?,
        action: stored_action(&row)?,
        id: row.id,
        action_hash: row.action_hash,
        requester: row.requester,
        reason: row.reason,
        required: row.required,
        state: row.state,
        created_at: row.created_at,
        expires_at: row.expires_at,
        outcome: row.outcome,
    })
}

fn new_id() -> Result<String, StoreError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Io(std::io::Error::other(e.to_string())))?;
    Ok(hex::encode(bytes))
}
