//! The store's operations, written once for every backend: bootstrap,
//! enrollment, the grant decision's inputs and its record, usage events,
//! registration and administration, each with its audit records
//! (PROTOCOL.md §3–§9). A backend supplies [`Tables`] (`tables.rs`): its
//! rows, read and written in the domain's terms and in its own SQL, and
//! nothing else, so that SQLite and PostgreSQL decide and record alike by
//! construction.
//! Transactions, durability and the order of the chain are the group-commit
//! writer's (`group_commit.rs`).

use irm_core::protocol::{
    DenyReason, EXPORT_WINDOW_SECS, FileInfo, Notice, NoticeKind, Role, TakeOut,
};
use irm_core::{KeyId, Policy, Rights};
use subtle::ConstantTimeEq;

use super::approval;
use super::contract::{
    Actor, AdminOp, AdminOutput, CodeIssue, DeviceRecord, EnrollInput, EventInput, FileChange,
    GrantInput, GrantOutcome, KeyRecord, MAX_CODE_FAILURES, MAX_USERLESS_FAILURES, NewUser,
    RegisterInput, StoreResult, USERLESS_WINDOW_SECS, UserRecord,
};
use super::ledger::{self, Object};
use super::tables::{
    ChainHead, CodeRow, FileRow, HoldRow, NewFile, NewGrant, Tables, UNSEEN_KEY, UNSEEN_POLICY,
};
pub(super) use super::write_ctx::WriteCtx;
use crate::audit::{AuditDraft, GENESIS_HASH, Outcome};
use crate::error::{Refusal, StoreError};
use crate::grant::decision::{FileControls, StoredState, decide, key_for};
use irm_core::protocol::KeyState;

/// The `meta` row that counts them: `"<window start> <count>"`.
const USERLESS_FAILURES_KEY: &str = "userless_code_failures";
/// The `meta` row whose presence says the bootstrap is done.
const INITIALISED_KEY: &str = "initialised";
/// The schema version both backends write (`meta` row `schema`). Version 2
/// added the approval tables (`requests`, `approvals`, `approval_rules`);
/// opening a version 1 database adds them. Version 3 added `alert_acks`,
/// version 4 `detection_rules`, version 5 `first_access`, version 6
/// `canary_exports` and `canaries` (PROTOCOL.md §7.8).
pub(super) const SCHEMA_VERSION: &str = "6";

/// The head of the chain as stored.
pub(super) fn load_head(conn: &mut impl Tables) -> Result<ChainHead, StoreError> {
    match conn.last_audit()? {
        None => Ok(ChainHead {
            seq: 0,
            hash: GENESIS_HASH,
        }),
        Some((seq, hash)) => {
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(&hash, &mut bytes)
                .map_err(|_| StoreError::Corrupt("an audit hash is not 64 hex digits".into()))?;
            Ok(ChainHead { seq, hash: bytes })
        }
    }
}

// ---------- reads ----------

/// Whether the bootstrap is done.
pub(super) fn is_initialised(conn: &mut impl Tables) -> Result<bool, StoreError> {
    Ok(conn.meta(INITIALISED_KEY)?.is_some())
}

/// A device and its user, for request authentication.
pub(super) fn device_with_user(
    conn: &mut impl Tables,
    device_id: &str,
) -> Result<Option<(DeviceRecord, UserRecord)>, StoreError> {
    let Some(device) = conn.device(device_id)? else {
        return Ok(None);
    };
    let user = conn
        .user(&device.user)?
        .ok_or_else(|| StoreError::Corrupt(format!("device {device_id} has no user")))?;
    Ok(Some((device, user)))
}

fn list_users(conn: &mut impl Tables) -> Result<Vec<UserRecord>, StoreError> {
    let names = conn.user_names()?;
    let mut users = Vec::with_capacity(names.len());
    for name in names {
        if let Some(user) = conn.user(&name)? {
            users.push(user);
        }
    }
    Ok(users)
}

fn user_or_404(
    conn: &mut impl Tables,
    name: &str,
) -> Result<Result<UserRecord, Refusal>, StoreError> {
    Ok(conn
        .user(name)?
        .ok_or_else(|| Refusal::NotFound(format!("user {name}"))))
}

fn file_or_404(conn: &mut impl Tables, id: &str) -> Result<Result<FileRow, Refusal>, StoreError> {
    Ok(conn
        .file(id)?
        .ok_or_else(|| Refusal::NotFound(format!("file {id}"))))
}

fn policy_json(policy: &Policy) -> Result<String, StoreError> {
    serde_json::to_string(policy)
        .map_err(|e| StoreError::Corrupt(format!("policy does not serialise: {e}")))
}

// ---------- the operations ----------

/// First start: the first key, the bootstrap administrator, the `meta` rows.
pub(super) fn initialise<C: Tables>(
    ctx: &mut WriteCtx<'_, C>,
    admin: &NewUser,
    key: &KeyRecord,
    now_ms: u64,
) -> Result<(), StoreError> {
    let now = now_ms / 1000;
    ctx.conn.insert_key(key, KeyState::Current)?;
    ctx.conn.insert_user(admin, now)?;
    ctx.conn.insert_meta(INITIALISED_KEY, &now.to_string())?;
    ctx.conn.insert_meta("schema", SCHEMA_VERSION)?;
    ctx.audit(
        AuditDraft::new(now_ms, "server.init", Outcome::Ok)
            .detail(format!("key={} bootstrap_admin={}", key.key_id, admin.name)),
    )
}

/// The current window of user-less wrong codes: its start and count.
fn userless_failures(conn: &mut impl Tables, now: u64) -> Result<(u64, u64), StoreError> {
    let value = conn.meta(USERLESS_FAILURES_KEY)?;
    // An unreadable row counts as none: it only ever holds our own numbers.
    let (start, count) = value
        .as_deref()
        .and_then(|v| v.split_once(' '))
        .and_then(|(s, c)| Some((s.parse::<u64>().ok()?, c.parse::<u64>().ok()?)))
        .unwrap_or((0, 0));
    Ok(if now.saturating_sub(start) < USERLESS_WINDOW_SECS {
        (start, count)
    } else {
        (now, 0)
    })
}

/// Counts one more user-less wrong code; returns the new count.
fn count_userless_failure(conn: &mut impl Tables, now: u64) -> Result<u64, StoreError> {
    let (start, before) = userless_failures(conn, now)?;
    let count = before + 1;
    conn.upsert_meta(USERLESS_FAILURES_KEY, &format!("{start} {count}"))?;
    Ok(count)
}

/// PROTOCOL.md §3.2, enrollment without a user name: the server finds the
/// user whose live code this is. Returns the user, or the refusal (already
/// audited).
///
/// A wrong code names no user whose counter could burn it, so such guesses
/// are counted across the server instead: after [`MAX_USERLESS_FAILURES`]
/// in a window, every user-less attempt is refused, unchecked, until the
/// window ends. That bounds the guesses against all live codes together
/// (each 100 bits) the way the per-user count bounds those against one; a
/// person who has a code can still enroll by naming their user.
fn find_user_by_code<C: Tables>(
    ctx: &mut WriteCtx<'_, C>,
    input: &EnrollInput,
    draft: &AuditDraft,
    now: u64,
) -> Result<Result<String, Refusal>, StoreError> {
    let refuse = |ctx: &mut WriteCtx<'_, C>, detail: String| -> Result<Refusal, StoreError> {
        ctx.audit(
            draft
                .clone()
                .detail(detail)
                .deny(DenyReason::EnrollmentCodeInvalid),
        )?;
        Ok(Refusal::Deny(DenyReason::EnrollmentCodeInvalid))
    };
    if userless_failures(ctx.conn, now)?.1 >= MAX_USERLESS_FAILURES {
        return Ok(Err(refuse(
            ctx,
            format!(
                "no user named; enrollment without a user name is paused after {MAX_USERLESS_FAILURES} wrong codes this hour"
            ),
        )?));
    }
    // The hash of a 100-bit code: its lookup by value leaks nothing a
    // guesser can use. Any row found is compared again in constant time
    // below, with the expiry, exactly as for a named user.
    match ctx.conn.user_with_code(&input.code_hash)? {
        Some(name) => Ok(Ok(name)),
        None => {
            let count = count_userless_failure(ctx.conn, now)?;
            Ok(Err(refuse(
                ctx,
                format!(
                    "no user named; the code is no user's ({count} of {MAX_USERLESS_FAILURES} such wrong codes this hour)"
                ),
            )?))
        }
    }
}

/// PROTOCOL.md §3.2: check and count the code, create the device, consume the code.
pub(super) fn enroll<C: Tables>(
    ctx: &mut WriteCtx<'_, C>,
    mut input: EnrollInput,
    now_ms: u64,
) -> StoreResult<UserRecord> {
    let now = now_ms / 1000;
    let mut draft = AuditDraft::new(now_ms, "enroll", Outcome::Ok);
    draft.client_addr = input.client_addr.clone();
    let by_code = input.user.is_empty();
    if by_code {
        match find_user_by_code(ctx, &input, &draft, now)? {
            Ok(name) => {
                input.device.user.clone_from(&name);
                input.user = name;
            }
            Err(refusal) => return Ok(Err(refusal)),
        }
    }
    draft.actor_user = Some(input.user.clone());
    let row = ctx.conn.user_code(&input.user)?;
    // PROTOCOL.md §3.1: compare in constant time; an unknown user, a wrong,
    // expired, used or burned code all give the same answer.
    let code_ok = match &row {
        Some(CodeRow {
            hash: Some(hash),
            expires_at: Some(expires_at),
            ..
        }) => bool::from(hash.as_slice().ct_eq(&input.code_hash)) && now < *expires_at,
        _ => false,
    };
    if !code_ok {
        if let Some(CodeRow {
            hash: Some(_),
            failures,
            ..
        }) = &row
        {
            // A live code for this user: count the wrong try; the fifth burns it.
            let failures = failures + 1;
            if failures >= MAX_CODE_FAILURES {
                ctx.conn.set_user_code(&input.user, None, failures)?;
                draft = draft.detail("code burned after 5 wrong tries");
            } else {
                ctx.conn.set_code_failures(&input.user, failures)?;
            }
        }
        let burned = if row.as_ref().is_some_and(|r| r.hash.is_some()) {
            vec![Object::Code(input.user.clone())]
        } else {
            Vec::new()
        };
        ctx.audit_setting(draft.deny(DenyReason::EnrollmentCodeInvalid), &burned)?;
        return Ok(Err(Refusal::Deny(DenyReason::EnrollmentCodeInvalid)));
    }
    if !input.proof_ok {
        let mut d = draft.detail("the proof of possession does not verify");
        d.result = Outcome::Failed;
        d.reason = Some("bad_request".into());
        ctx.audit(d)?;
        return Ok(Err(Refusal::BadRequest(
            "the proof does not verify with the signing public key".into(),
        )));
    }
    let Some(user) = ctx.conn.user(&input.user)? else {
        return Err(StoreError::Corrupt("a user row vanished".into()));
    };
    // PROTOCOL.md §11.3: a code (or a user) written into the database
    // enrolls no one.
    if let Some(object) = ctx.forged(&[
        (
            Object::Code(input.user.clone()),
            ledger::code_state(row.as_ref()),
        ),
        (
            Object::User(input.user.clone()),
            ledger::user_state(Some(&user)),
        ),
    ]) {
        tracing::error!(object, "state integrity: enrollment refused");
        ctx.audit(
            draft
                .detail(format!("object={object}"))
                .deny(DenyReason::StateIntegrity),
        )?;
        return Ok(Err(Refusal::Deny(DenyReason::StateIntegrity)));
    }
    if !user.active {
        ctx.audit(draft.deny(DenyReason::UserSuspended))?;
        return Ok(Err(Refusal::Deny(DenyReason::UserSuspended)));
    }
    let d = &input.device;
    // PROTOCOL.md §4.3: the person's other devices hear of this one at
    // their next grant, so that a device enrolled behind their back is
    // noticed by the one person who knows it was not them.
    let origin = row
        .and_then(|r| r.origin)
        .unwrap_or_else(|| "issued_by=unknown".into());
    let others = ctx.conn.active_devices_of(&input.user)?;
    for other in &others {
        ctx.conn.insert_notice(
            other,
            &Notice {
                kind: NoticeKind::NewDevice,
                at: now,
                device_id: d.id.clone(),
                device_name: d.name.clone(),
                code_origin: origin.clone(),
            },
        )?;
    }
    ctx.conn.insert_device(d, now)?;
    ctx.conn.set_user_code(&input.user, None, 0)?;
    draft.actor_device = Some(d.id.clone());
    let found = if by_code { " user_found_by_code" } else { "" };
    let told = if others.is_empty() {
        String::new()
    } else {
        format!(" notified_devices={}", others.len())
    };
    let client_addr = draft.client_addr.clone();
    ctx.audit_setting(
        draft.detail(format!(
            "device={} name={}{found} {origin}{told}",
            d.id, d.name
        )),
        &[
            Object::Device(d.id.clone()),
            Object::Code(input.user.clone()),
        ],
    )?;
    // PROTOCOL.md §12: a person's second and later devices are an alert of
    // their own (a maintenance PC enrolled with someone's code is one).
    if !others.is_empty() {
        let actor = Actor {
            user: input.user.clone(),
            device: d.id.clone(),
            client_addr,
            reason: None,
        };
        let firing = crate::detect::Firing {
            rule: "new_device",
            action: crate::detect::Action::Alert,
            detail: format!("devices={} action=alert", others.len() + 1),
        };
        apply_firing(ctx, &actor, None, &firing, now_ms)?;
    }
    Ok(Ok(user))
}

/// PROTOCOL.md §4: read the state, decide, record the grant or denial.
pub(super) fn grant<C: Tables>(
    ctx: &mut WriteCtx<'_, C>,
    input: GrantInput,
    now_ms: u64,
) -> Result<GrantOutcome, StoreError> {
    let now = now_ms / 1000;
    let user = ctx.conn.user(&input.actor.user)?;
    let device = ctx.conn.device(&input.actor.device)?;
    let keys = ctx.conn.keys()?;
    let file_hex = input.facts.file_id.to_string();
    let file = ctx.conn.file(&file_hex)?;
    let hold = ctx.conn.hold(&input.actor.user)?;
    // PROTOCOL.md §11.3: every row decided on is as the audit log set it.
    let mut checked = vec![
        (
            Object::User(input.actor.user.clone()),
            ledger::user_state(user.as_ref()),
        ),
        (
            Object::Hold(input.actor.user.clone()),
            ledger::hold_state(hold.as_ref()),
        ),
        (
            Object::Device(input.actor.device.clone()),
            ledger::device_state(device.as_ref()),
        ),
        (
            Object::File(file_hex.clone()),
            ledger::file_state(file.as_ref()),
        ),
    ];
    for key in &keys {
        checked.push((
            Object::Key(key.key_id.to_string()),
            ledger::key_state(Some(key.state.as_str())),
        ));
    }
    for group in user.iter().flat_map(|u| &u.groups) {
        checked.push((
            Object::Member {
                group: group.clone(),
                user: input.actor.user.clone(),
            },
            ledger::member_state(user.as_ref(), group),
        ));
    }
    let forged = ctx.forged(&checked);
    if let Some(object) = &forged {
        tracing::error!(
            object,
            "state integrity: a row differs from the audit log; grant refused"
        );
    }
    let state = StoredState {
        rows_hold: forged.is_none(),
        user_active: user.as_ref().is_some_and(|u| u.active),
        held: hold.is_some(),
        groups: user.map(|u| u.groups).unwrap_or_default(),
        device_active: device
            .as_ref()
            .is_some_and(|d| d.active && d.user == input.actor.user),
        keys: keys.iter().map(|k| (k.key_id, k.state)).collect(),
        file: file.as_ref().map(FileRow::controls),
        lease_limit_secs: input.lease_limit_secs,
    };
    let mut decision = decide(&input.facts, &state, now);
    // PROTOCOL.md §12: detection counts each new grant (not renewals) and
    // each refusal of a signed request, in this transaction; a rule that
    // holds or suspends the person refuses the grant that set it off.
    let mut fired = Vec::new();
    if !input.renew {
        fired.extend(match &decision {
            Ok(_) => ctx.detector.grant(&input.actor.user, &file_hex, now),
            Err(DenyReason::StepUpRequired | DenyReason::UserSuspended) => None,
            Err(_) => ctx.detector.denial(&input.actor.user, now),
        });
    }
    // Devices and networks in use count every grant and renewal given.
    if decision.is_ok() {
        // Once per grant, for the networks rule and the first-access scopes.
        let network = input
            .actor
            .client_addr
            .as_deref()
            .and_then(crate::detect::network_of);
        if !input.renew {
            fired.extend(ctx.detector.hourly(&input.actor.user, now));
            fired.extend(
                ctx.detector
                    .off_hours(&input.actor.user, &state.groups, now),
            );
            let scopes =
                crate::detect::scopes_of(&input.facts.policy, &state.groups, network.as_deref());
            let (new, firing) = ctx.detector.first_access(&input.actor.user, &scopes, now);
            for scope in &new {
                ctx.conn
                    .insert_first_access(&input.actor.user, scope, now)?;
            }
            fired.extend(firing);
        }
        fired.extend(ctx.detector.in_use(
            &input.actor.user,
            &input.actor.device,
            network.as_deref(),
            now,
        ));
    }

    // PROTOCOL.md §4.1: a file sealed offline is registered the first time
    // anyone asks for it, once its header is known to be authentic. An
    // administrator may have named it before (§7): its controls stay.
    if file.as_ref().is_none_or(|f| !f.seen()) {
        // The key the header opens with, by the rule registration uses (§6).
        if let Ok(key_id) = key_for(&input.facts.header_keys, &input.facts.bindings, &state.keys) {
            let key_text = key_id.to_string();
            let policy = policy_json(&input.facts.policy)?;
            let detail = if file.is_none() {
                ctx.conn.insert_file(&NewFile {
                    id: &file_hex,
                    key_id: &key_text,
                    owner: None,
                    file_name: None,
                    policy_json: &policy,
                    first_seen_at: now,
                })?;
                "first seen through a grant request"
            } else {
                ctx.conn.fill_unseen_file(&file_hex, &key_text, &policy)?;
                "first seen through a grant request; controlled by an administrator before"
            };
            ctx.audit(
                input
                    .actor
                    .draft(now_ms, "file.register", Outcome::Ok)
                    .file(file_hex.clone())
                    .detail(detail),
            )?;
        }
    }

    // The rule that refused this grant, if one did (the first to act).
    let mut refused_by = None;
    for firing in &fired {
        if let Some(reason) = apply_firing(ctx, &input.actor, Some(&file_hex), firing, now_ms)?
            && decision.is_ok()
        {
            decision = Err(reason);
            refused_by = Some(firing.rule);
        }
    }

    let action = if input.renew { "renew" } else { "grant" };
    match decision {
        Ok(decision) => {
            let notices = ctx.conn.take_notices(&input.actor.device)?;
            ctx.conn.insert_grant(&NewGrant {
                id: &input.grant_id,
                file_id: &file_hex,
                user: &input.actor.user,
                device: &input.actor.device,
                rights: decision.rights.bits(),
                renew: input.renew,
                issued_at: now,
                lease_expires_at: decision.lease_expires_at,
            })?;
            ctx.audit(
                input
                    .actor
                    .draft(now_ms, action, Outcome::Ok)
                    .file(file_hex)
                    .detail(format!(
                        "grant={} rights={} lease_expires_at={}{}",
                        input.grant_id,
                        decision.rights,
                        decision.lease_expires_at,
                        if notices.is_empty() {
                            String::new()
                        } else {
                            format!(" notices={}", notices.len())
                        }
                    )),
            )?;
            Ok(GrantOutcome::Granted { decision, notices })
        }
        Err(reason) => {
            let mut draft = input
                .actor
                .draft(now_ms, action, Outcome::Denied)
                .file(file_hex)
                .deny(reason);
            if let Some(object) = forged {
                draft = draft.detail(format!("object={object}"));
            } else if let Some(rule) = refused_by {
                draft = draft.detail(format!("rule={rule}"));
            }
            ctx.audit(draft)?;
            Ok(GrantOutcome::Denied(reason))
        }
    }
}

/// PROTOCOL.md §5.
pub(super) fn usage_event<C: Tables>(
    ctx: &mut WriteCtx<'_, C>,
    input: EventInput,
    now_ms: u64,
) -> StoreResult<irm_core::protocol::ExportReceipt> {
    let action = format!(
        "event.{}",
        serde_json::to_value(input.action)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "unknown".into())
    );
    let mut draft = input.actor.draft(now_ms, action, Outcome::Ok);
    draft.detail = Some(match &input.detail {
        Some(d) => format!("grant={} {d}", input.grant_id),
        None => format!("grant={}", input.grant_id),
    });
    let grant = ctx.conn.grant(&input.grant_id)?;
    // PROTOCOL.md §5: the grant must belong to the signing device.
    let Some(grant) = grant.filter(|g| g.device_id == input.actor.device) else {
        draft.result = Outcome::Failed;
        draft.reason = Some("not_found".into());
        ctx.audit(draft)?;
        return Ok(Err(Refusal::NotFound("grant".into())));
    };
    let restricted = ctx
        .conn
        .file(&grant.file_id)?
        .map(|f| f.controls().restricted)
        .unwrap_or_else(Rights::empty);
    let effective = Rights::from_bits_retain(grant.rights).difference(restricted);
    let draft = draft.file(grant.file_id);
    if let Some(needed) = input.action.required_right()
        && !effective.contains(needed)
    {
        ctx.audit(draft.deny(DenyReason::RightNotGranted))?;
        return Ok(Err(Refusal::Deny(DenyReason::RightNotGranted)));
    }
    // PROTOCOL.md §7.3: taking plaintext out (an export; a copy or print of
    // more rows than the threshold, or of an untold number) spends an
    // approved take-out of this file, in that way, by this device, unless
    // the rule for that way needs none.
    let mut draft = draft;
    if let Some(row_count) = input.rows {
        let detail = draft.detail.take().unwrap_or_default();
        draft.detail = Some(format!("{detail} rows={row_count}"));
    }
    let bulk = |how| match how {
        TakeOut::Export | TakeOut::Program => true,
        TakeOut::Copy | TakeOut::Print => input.rows.is_none_or(|r| r > input.take_out_rows),
    };
    let mut spent = Vec::new();
    if let Some(how) = TakeOut::of_event(input.action).filter(|how| bulk(*how)) {
        let required = match approval::required_checked(ctx, how.kind())? {
            Ok(required) => required,
            Err(refusal) => {
                let detail = draft.detail.take().unwrap_or_default();
                let draft = draft.detail(format!("{detail} object=rule/{}", how.kind()));
                return ctx.refuse(draft, refusal);
            }
        };
        if required > 0 {
            let file = draft.file_id.clone().unwrap_or_default();
            let take_out = Object::TakeOut {
                how,
                file: file.clone(),
                user: input.actor.user.clone(),
                device: input.actor.device.clone(),
            };
            // A take-out row written into the database (or one already
            // spent, written back) is no approval (PROTOCOL.md §11.3).
            let stored = ctx
                .conn
                .take_out(how, &file, &input.actor.user, &input.actor.device)?;
            if stored.is_some()
                && let Some(object) =
                    ctx.forged(&[(take_out.clone(), ledger::take_out_state(stored))])
            {
                tracing::error!(
                    object,
                    "state integrity: a take-out differs from the audit log"
                );
                let draft = draft.detail(format!("object={object}"));
                return ctx.refuse(draft, Refusal::Deny(DenyReason::StateIntegrity));
            }
            if !ctx.conn.take_take_out(
                how,
                &file,
                &input.actor.user,
                &input.actor.device,
                now_ms / 1000,
            )? {
                // PROTOCOL.md §12: any refused attempt at an approval-gated
                // take-out is an alert of its own, whatever the counts.
                let firing = crate::detect::Firing {
                    rule: "take_out_refused",
                    action: crate::detect::Action::Alert,
                    detail: format!("how={} action=alert", how.as_str()),
                };
                apply_firing(ctx, &input.actor, Some(&file), &firing, now_ms)?;
                return ctx.refuse(draft, Refusal::Deny(DenyReason::ExportApprovalRequired));
            }
            let detail = draft.detail.take().unwrap_or_default();
            draft.detail = Some(format!("{detail} approved_{}_spent", how.as_str()));
            spent.push(take_out);
        }
    }
    // PROTOCOL.md §7.8: an approved export of a customer list carries
    // canaries, recorded with the export's own record.
    let mut receipt = irm_core::protocol::ExportReceipt {
        export_id: None,
        canaries: Vec::new(),
    };
    if let Some(order) = &input.canaries
        && !spent.is_empty()
    {
        let file = draft.file_id.clone().unwrap_or_default();
        let (issued, note) = super::trace::issue(ctx.conn, &input, order, &file, now_ms / 1000)?;
        let detail = draft.detail.take().unwrap_or_default();
        draft.detail = Some(format!("{detail} {note}"));
        receipt = issued;
    }
    // PROTOCOL.md §12: records taken, in rows as the client reports them.
    let file = draft.file_id.clone().unwrap_or_default();
    ctx.audit_setting(draft, &spent)?;
    if let Some(rows) = input.rows
        && TakeOut::of_event(input.action).is_some()
        && let Some(firing) = ctx.detector.taken(&input.actor.user, rows, now_ms / 1000)
    {
        // An event reports what already left: the firing acts on what
        // comes next (a hold or suspension refuses the next grant).
        apply_firing(ctx, &input.actor, Some(&file), &firing, now_ms)?;
    }
    Ok(Ok(receipt))
}

/// PROTOCOL.md §6.
pub(super) fn register_file<C: Tables>(
    ctx: &mut WriteCtx<'_, C>,
    input: RegisterInput,
    now_ms: u64,
) -> StoreResult<FileInfo> {
    let now = now_ms / 1000;
    let id = input.file_id.to_string();
    let draft = input
        .actor
        .draft(now_ms, "file.register", Outcome::Ok)
        .file(id.clone());
    // Checks 4-6 of the grant decision, on the keys as this transaction sees
    // them: a file is registered only under a key that would grant it.
    let held: Vec<(KeyId, KeyState)> = ctx
        .conn
        .keys()?
        .iter()
        .map(|k| (k.key_id, k.state))
        .collect();
    let key_id = match key_for(&input.header_keys, &input.bindings, &held) {
        Ok(key_id) => key_id,
        Err(reason) => {
            ctx.audit(draft.deny(reason))?;
            return Ok(Err(Refusal::Deny(reason)));
        }
    };
    let key_text = key_id.to_string();
    match ctx.conn.file(&id)? {
        None => ctx.conn.insert_file(&NewFile {
            id: &id,
            key_id: &key_text,
            owner: Some(&input.actor.user),
            file_name: input.file_name.as_deref(),
            policy_json: &policy_json(&input.policy)?,
            first_seen_at: now,
        })?,
        // Seen before through a grant request, or named by an administrator
        // before anyone saw it: the first to register owns it.
        Some(row) if row.owner.is_none() => {
            ctx.conn
                .claim_file(&id, &input.actor.user, input.file_name.as_deref())?;
            if !row.seen() {
                ctx.conn
                    .fill_unseen_file(&id, &key_text, &policy_json(&input.policy)?)?;
            }
        }
        Some(row) if row.owner.as_deref() == Some(input.actor.user.as_str()) => {}
        Some(_) => {
            let mut d = draft;
            d.result = Outcome::Failed;
            d.reason = Some("conflict".into());
            ctx.audit(d)?;
            return Ok(Err(Refusal::Conflict(
                "the file is already registered by someone else".into(),
            )));
        }
    }
    ctx.audit(draft)?;
    let row = ctx
        .conn
        .file(&id)?
        .ok_or_else(|| StoreError::Corrupt("file row vanished".into()))?;
    Ok(Ok(row.info(now)))
}

/// `irm-key-server recover-code` (PROTOCOL.md §7.1): a burnt or lost
/// bootstrap code replaced from a shell on the server, for an administrator
/// of a server with at most one. Every attempt is audited, with no actor
/// (nobody signed it) and the operator's reason.
pub(super) fn recover_admin_code<C: Tables>(
    ctx: &mut WriteCtx<'_, C>,
    user: &str,
    code: &CodeIssue,
    reason: &str,
    now_ms: u64,
) -> StoreResult<AdminOutput> {
    let draft = AuditDraft::new(now_ms, "admin.user.code", Outcome::Ok)
        .detail(format!("user={user} via=recover-code reason={reason}"));
    let refusal = match ctx.conn.user(user)? {
        None => Some(Refusal::NotFound(format!("user {user}"))),
        Some(found) if !found.roles.contains(&Role::Admin) => Some(Refusal::Conflict(format!(
            "{user} is not an administrator: recover-code restores an administrator's access only; an administrator issues other people's codes (irm admin user code {user})"
        ))),
        Some(_) => {
            // Suspended administrators count: suspending the other one
            // must not reopen this door (PROTOCOL.md §7.2).
            let admins = approval::administrators(ctx.conn)?;
            (admins >= 2).then(|| {
                Refusal::Conflict(format!(
                    "{admins} administrators exist: recover-code is for a server with one; another administrator files the code for approval (irm admin user code {user})"
                ))
            })
        }
    };
    if let Some(refusal) = refusal {
        return ctx.refuse(draft, refusal);
    }
    ctx.conn.set_user_code(user, Some(code), 0)?;
    ctx.audit_setting(draft, &[Object::Code(user.to_owned())])?;
    Ok(Ok(AdminOutput::CodeStored {
        user: user.to_owned(),
        expires_at: code.expires_at,
    }))
}

/// PROTOCOL.md §7, with the role check (audited when refused). An operation
/// that widens who can read is filed for approval instead (`approval.rs`,
/// §7.2); the others run at once.
pub(super) fn admin<C: Tables>(
    ctx: &mut WriteCtx<'_, C>,
    actor: &Actor,
    op: &AdminOp,
    now_ms: u64,
) -> StoreResult<AdminOutput> {
    let mut draft = actor.draft(now_ms, op.action(), Outcome::Ok);
    // PROTOCOL.md §7: the reason goes into every record, also of an
    // operation with no detail of its own (a revocation, a rotation).
    draft.detail = match op.detail() {
        Some(detail) => Some(approval::with_reason(detail, actor)),
        None => actor
            .reason
            .as_deref()
            .filter(|reason| !reason.is_empty())
            .map(|reason| format!("reason={reason}")),
    };
    draft.file_id = op.file_id();
    // Roles are read inside the transaction, so a role removed a moment ago
    // counts.
    let user = ctx.conn.user(&actor.user)?;
    let device = ctx.conn.device(&actor.device)?;
    // PROTOCOL.md §11.3: a role or a device written into the database
    // behind the server's back grants no administration.
    if let Some(object) = ctx.forged(&[
        (
            Object::User(actor.user.clone()),
            ledger::user_state(user.as_ref()),
        ),
        (
            Object::Device(actor.device.clone()),
            ledger::device_state(device.as_ref()),
        ),
    ]) {
        tracing::error!(
            object,
            "state integrity: a row differs from the audit log; administration refused"
        );
        ctx.audit(
            draft
                .detail(format!("object={object}"))
                .deny(DenyReason::StateIntegrity),
        )?;
        return Ok(Err(Refusal::Deny(DenyReason::StateIntegrity)));
    }
    let roles = user.map(|u| u.roles).unwrap_or_default();
    if !op.allowed(&roles) {
        ctx.audit(draft.deny(DenyReason::RoleRequired))?;
        return Ok(Err(Refusal::Deny(DenyReason::RoleRequired)));
    }
    if let Some(action) = op.approval_action()
        && !narrows_detection(ctx, op)
    {
        if !approval::is_bootstrap_second_admin(ctx.conn, op)? {
            return approval::file(ctx, actor, op, action, admin_effect, now_ms);
        }
        // The one action a lone administrator takes alone, said so in the
        // record (THREAT-MODEL.md: the bootstrap trusts that the second
        // administrator is another person).
        draft.detail = Some(format!(
            "{} bootstrap=second_admin",
            draft.detail.unwrap_or_default()
        ));
    }
    match op {
        AdminOp::ListRequests | AdminOp::ShowRequest { .. } => {
            approval::expire_due(ctx, now_ms)?;
        }
        AdminOp::Approve {
            id,
            action_hash,
            second_half,
            break_glass,
        } => {
            approval::expire_due(ctx, now_ms)?;
            return approval::approve(
                ctx,
                actor,
                (id, action_hash, second_half, break_glass.as_deref()),
                apply,
                now_ms,
            );
        }
        AdminOp::DenyRequest { id } => {
            approval::expire_due(ctx, now_ms)?;
            return approval::deny(ctx, actor, id, now_ms);
        }
        AdminOp::TraceCanaries { .. } | AdminOp::TraceWatermark { .. } => {
            // Their record says what matched, which only the lookup knows.
            return super::trace::lookup(ctx, actor, op, draft);
        }
        _ => {}
    }
    apply(ctx, op, draft, now_ms)
}

/// The rows the server recorded for a usage event (the last `rows=` token
/// of its detail: the server writes it after the person's own words).
fn event_rows(detail: &str) -> Option<u64> {
    detail
        .split(' ')
        .filter_map(|w| w.strip_prefix("rows="))
        .next_back()
        .and_then(|n| n.parse().ok())
}

/// The `peers` rule's inputs (PROTOCOL.md §12): active people with their
/// groups, read once; for each window starting at `since_ms`, distinct files
/// from one aggregate over the log, and rows taken from one pass over the
/// usage events of the longest window.
pub(super) fn peer_inputs(
    conn: &mut impl Tables,
    since_ms: &[u64],
) -> Result<crate::detect::PeerInputs, StoreError> {
    let people = list_users(conn)?
        .into_iter()
        .filter(|u| u.active)
        .map(|u| (u.name, u.groups))
        .collect();
    let mut totals = Vec::with_capacity(since_ms.len());
    for since in since_ms {
        let files: std::collections::HashMap<String, crate::detect::Totals> = conn
            .distinct_files_by_user(*since)?
            .into_iter()
            .map(|(user, files)| (user, crate::detect::Totals { files, rows: 0 }))
            .collect();
        totals.push(files);
    }
    let mut query = irm_core::protocol::AuditQuery {
        limit: irm_core::protocol::MAX_AUDIT_PAGE,
        action: Some("event".into()),
        since_ms: Some(since_ms.iter().copied().min().unwrap_or(0)),
        ..Default::default()
    };
    loop {
        let page = conn.audit_query(&query)?;
        let Some(last) = page.last() else { break };
        query.after = last.seq;
        for record in &page {
            if record.result != Outcome::Ok.as_str() {
                continue;
            }
            if let (Some(user), Some(rows)) = (
                &record.actor_user,
                record.detail.as_deref().and_then(event_rows),
            ) {
                for (since, window) in since_ms.iter().zip(&mut totals) {
                    if record.at_ms >= *since {
                        window.entry(user.clone()).or_default().rows += rows;
                    }
                }
            }
        }
    }
    Ok(crate::detect::PeerInputs { people, totals })
}

/// Records the `peers` firings (PROTOCOL.md §12), each at most once per
/// `quiet_ms` per person (read from the log, so a restart repeats none).
pub(super) fn record_peer_firings<C: Tables>(
    ctx: &mut WriteCtx<'_, C>,
    firings: &[(String, String)],
    action: crate::detect::Action,
    quiet_ms: u64,
    now_ms: u64,
) -> Result<usize, StoreError> {
    let mut recorded = 0;
    for (user, detail) in firings {
        let recent = ctx.conn.audit_query(&irm_core::protocol::AuditQuery {
            limit: 1,
            user: Some(user.clone()),
            action: Some("detect.peers".into()),
            since_ms: Some(now_ms.saturating_sub(quiet_ms)),
            ..Default::default()
        })?;
        if !recent.is_empty() {
            continue;
        }
        // Off the grant path: no device, no client address.
        let actor = Actor {
            user: user.clone(),
            device: String::new(),
            client_addr: None,
            reason: None,
        };
        let firing = crate::detect::Firing {
            rule: "peers",
            action,
            detail: format!("{detail} action={}", action.as_str()),
        };
        apply_firing(ctx, &actor, None, &firing, now_ms)?;
        recorded += 1;
    }
    Ok(recorded)
}

/// Whether `op` changes a detection rule without loosening it, or narrows
/// a group's working hours (PROTOCOL.md §12.2, §12.3): that takes effect at
/// once, as any narrowing does; only a loosening waits for other
/// administrators.
fn narrows_detection<C: Tables>(ctx: &WriteCtx<'_, C>, op: &AdminOp) -> bool {
    match op {
        AdminOp::SetDetection { rule, setting } => {
            let now = ctx.detector.rules().setting(rule);
            !irm_core::protocol::detection_loosens(now.as_ref(), setting.as_ref())
        }
        AdminOp::SetWorkingHours { group, schedule } => {
            match (ctx.detector.schedule(group), schedule) {
                // A group's first hours only add alerts; no change is none.
                (None, _) => true,
                (Some(_), None) => false,
                (Some(now), Some(to)) => now.hours().narrowed_by(to),
            }
        }
        _ => false,
    }
}

/// Runs `op` and records `draft` for it. The effect runs in a savepoint of
/// its own, so that a refusal undoes it while its audit record stays.
pub(super) fn apply<C: Tables>(
    ctx: &mut WriteCtx<'_, C>,
    op: &AdminOp,
    draft: AuditDraft,
    now_ms: u64,
) -> StoreResult<AdminOutput> {
    ctx.conn.run("SAVEPOINT admin_op")?;
    match admin_effect(ctx.conn, op, now_ms) {
        Ok(Ok(out)) => {
            ctx.conn.run("RELEASE admin_op")?;
            if let AdminOp::ReleaseHold { name } = op {
                // The burst that held them must not hold them again at
                // their next grant (PROTOCOL.md §12).
                ctx.detector.forget(name);
            }
            if let AdminOp::SetDetection { rule, setting } = op {
                // In force from the next grant in this very batch.
                ctx.detector.set_rule(rule, *setting);
            }
            if let AdminOp::SetWorkingHours { group, schedule } = op {
                // Checked by the effect just run.
                let schedule = schedule
                    .as_ref()
                    .and_then(|s| crate::detect::Schedule::new(s).ok());
                ctx.detector.set_schedule(group, schedule);
            }
            let objects = objects_set_by(ctx.conn, op)?;
            ctx.audit_setting(draft, &objects)?;
            Ok(Ok(out))
        }
        Ok(Err(refusal)) => {
            ctx.conn.run("ROLLBACK TO admin_op")?;
            ctx.conn.run("RELEASE admin_op")?;
            ctx.refuse(draft, refusal)
        }
        Err(e) => Err(e),
    }
}

/// Whether a share set for `holders` with `threshold` can be issued: at
/// least two shares needed (one person never unseals alone), no more than
/// there are holders, and each holder an active administrator or
/// maintainer with an active device to receive their share.
fn check_share_holders(
    conn: &mut impl Tables,
    threshold: u8,
    holders: &[String],
) -> Result<Result<(), Refusal>, StoreError> {
    use irm_core::protocol::MIN_SHARE_THRESHOLD;
    let mut unique = holders.to_vec();
    unique.sort();
    unique.dedup();
    if unique.len() != holders.len() {
        return Ok(Err(Refusal::BadRequest(
            "a holder is named twice: each holds one share".into(),
        )));
    }
    if threshold < MIN_SHARE_THRESHOLD
        || usize::from(threshold) > holders.len()
        || holders.len() > 255
    {
        return Ok(Err(Refusal::BadRequest(format!(
            "--threshold must be at least {MIN_SHARE_THRESHOLD} (one person never unseals alone) and at most the number of holders ({}, at most 255)",
            holders.len()
        ))));
    }
    let devices = conn.devices()?;
    for name in holders {
        let Some(user) = conn.user(name)? else {
            return Ok(Err(Refusal::NotFound(format!("user {name}"))));
        };
        if !user.active {
            return Ok(Err(Refusal::Conflict(format!(
                "{name} is suspended and cannot hold a share"
            ))));
        }
        if !user
            .roles
            .iter()
            .any(|r| matches!(r, Role::Admin | Role::Maintainer))
        {
            return Ok(Err(Refusal::Conflict(format!(
                "{name} is neither an administrator nor a maintainer; shares are held by the people who run the server"
            ))));
        }
        if !devices.iter().any(|d| &d.user == name && d.active) {
            return Ok(Err(Refusal::Conflict(format!(
                "{name} has no enrolled device to receive the share; enroll one first"
            ))));
        }
    }
    Ok(Ok(()))
}

/// Every object whose stored state is not as the audit log last set it
/// (PROTOCOL.md §11.3): each object the log names, and each stored row,
/// checked against the ledger. Empty when the ledger is not armed.
pub(super) fn ledger_problems<C: Tables>(
    ctx: &mut WriteCtx<'_, C>,
) -> Result<Vec<String>, StoreError> {
    let mut objects: Vec<Object> = ctx.ledger.objects().filter_map(Object::parse).collect();
    objects.extend(all_objects(ctx.conn)?);
    objects.sort_by_key(Object::name);
    objects.dedup();
    let mut problems = Vec::new();
    for object in objects {
        let state = object.state(ctx.conn)?;
        if ctx.forged(&[(object.clone(), state)]).is_some() {
            problems.push(format!(
                "state: {} is not as the audit log last set it (inserted, deleted or written back in the database)",
                object.name()
            ));
        }
    }
    Ok(problems)
}

/// Every object the stored rows name: users, their memberships, devices,
/// files with administrative controls, and approval rules that were set.
/// (Approved take-outs are checked when spent.)
fn all_objects(conn: &mut impl Tables) -> Result<Vec<Object>, StoreError> {
    let mut objects = Vec::new();
    for name in conn.user_names()? {
        if let Some(user) = conn.user(&name)? {
            for group in &user.groups {
                objects.push(Object::Member {
                    group: group.clone(),
                    user: name.clone(),
                });
            }
        }
        objects.push(Object::Code(name.clone()));
        objects.push(Object::Hold(name.clone()));
        objects.push(Object::User(name));
    }
    for device in conn.devices()? {
        objects.push(Object::Device(device.id));
    }
    for file in conn.files()? {
        if file.controls() != FileControls::default() {
            objects.push(Object::File(file.id));
        }
    }
    for kind in irm_core::protocol::ApprovalAction::KINDS {
        if conn.approval_rule(kind)?.is_some() {
            objects.push(Object::Rule(kind.to_owned()));
        }
    }
    for (name, _) in conn.detection_rows()? {
        objects.push(Object::Detection(name));
    }
    for request in conn.requests(u32::MAX)? {
        objects.push(Object::Request(request.id));
    }
    objects.push(Object::BreakGlass);
    for key in conn.keys()? {
        objects.push(Object::Key(key.key_id.to_string()));
    }
    Ok(objects)
}

/// The detection rules as stored (PROTOCOL.md §12.2). The config file's
/// rules are a new server's first setting only: a rule not yet stored is
/// stored as configured (an audit record by the server, `source=config`);
/// once stored, only `admin.detection.set` changes it, so that editing the
/// file cannot switch detection off. A stored rule the audit log does not
/// vouch for is not obeyed: the configured one is, and the server says so.
fn rules_in_force<C: Tables>(
    ctx: &mut WriteCtx<'_, C>,
    configured: crate::detect::Rules,
    now_ms: u64,
) -> Result<crate::detect::Rules, StoreError> {
    use irm_core::protocol::{DETECTION_RULES, detection_setting_text, parse_detection_setting};
    let mut rules = configured;
    for rule in DETECTION_RULES {
        let wanted = configured.setting(rule);
        let Some(text) = ctx.conn.detection_rule(rule)? else {
            let text = detection_setting_text(wanted.as_ref());
            let detail = format!("rule={rule} setting={text}");
            seed_from_config(ctx, rule, &text, "admin.detection.set", detail, now_ms)?;
            continue;
        };
        let object = Object::Detection(rule.to_owned());
        if let Some(name) = ctx.forged(&[(object, text.clone())]) {
            tracing::error!(
                object = name,
                "state integrity: a detection rule differs from the audit log; the configured rule is in force"
            );
            continue;
        }
        let stored = parse_detection_setting(&text)
            .ok_or_else(|| StoreError::Corrupt(format!("detection rule {rule}: {text:?}")))?;
        if stored != wanted {
            tracing::warn!(
                rule,
                stored = %text,
                configured = %detection_setting_text(wanted.as_ref()),
                "the config file's detection rule differs from the server's; the server's is in force \
                 (change it with `irm admin detection set`; loosening needs approval)"
            );
        }
        rules.set(rule, stored);
    }
    Ok(rules)
}

/// Stores `text` as the `detection_rules` row `name` the config file seeds
/// (PROTOCOL.md §12.2), with its record (`action`, `detail source=config`,
/// no actor) vouching for it in the state ledger.
fn seed_from_config<C: Tables>(
    ctx: &mut WriteCtx<'_, C>,
    name: &str,
    text: &str,
    action: &'static str,
    detail: String,
    now_ms: u64,
) -> Result<(), StoreError> {
    ctx.conn.set_detection_rule(name, text)?;
    let draft =
        AuditDraft::new(now_ms, action, Outcome::Ok).detail(format!("{detail} source=config"));
    ctx.audit_setting(draft, &[Object::Detection(name.to_owned())])
}

/// The groups' working hours as stored (PROTOCOL.md §12.3), seeded from the
/// config file as the rules are ([`rules_in_force`]): a group the file
/// names with no row is stored as configured; a stored row wins.
fn hours_in_force<C: Tables>(
    ctx: &mut WriteCtx<'_, C>,
    configured: &std::collections::BTreeMap<String, irm_core::protocol::WorkingHours>,
    now_ms: u64,
) -> Result<Vec<(String, crate::detect::Schedule)>, StoreError> {
    let stored: std::collections::BTreeMap<String, String> = ctx
        .conn
        .detection_rows()?
        .into_iter()
        .filter_map(|(name, text)| Some((name.strip_prefix("hours/")?.to_owned(), text)))
        .collect();
    for (group, schedule) in configured {
        let text = schedule.text();
        match stored.get(group) {
            None => {
                let name = format!("hours/{group}");
                let detail = format!("group={group} schedule={text}");
                seed_from_config(ctx, &name, &text, "admin.hours.set", detail, now_ms)?;
            }
            Some(row) if *row != text => tracing::warn!(
                group,
                stored = %row,
                configured = %text,
                "the config file's working hours differ from the server's; the server's are in force \
                 (change them with `irm admin hours set`; widening needs approval)"
            ),
            Some(_) => {}
        }
    }
    let mut schedules = Vec::new();
    for irm_core::protocol::GroupWorkingHours {
        group,
        schedule,
        text,
    } in working_hours(ctx.conn)?
    {
        let name = format!("hours/{group}");
        if let Some(object) = ctx.forged(&[(Object::Detection(name), text)]) {
            tracing::error!(
                object,
                "state integrity: working hours differ from the audit log; not in force"
            );
            continue;
        }
        match crate::detect::Schedule::new(&schedule) {
            Ok(schedule) => schedules.push((group, schedule)),
            // A zone the tz database no longer has: say so, keep serving.
            Err(e) => tracing::error!(group, error = %e, "working hours not in force"),
        }
    }
    Ok(schedules)
}

/// The groups' working hours as `GET /v1/admin/working-hours` shows them.
fn working_hours(
    conn: &mut impl Tables,
) -> Result<Vec<irm_core::protocol::GroupWorkingHours>, StoreError> {
    let mut list = Vec::new();
    for (name, text) in conn.detection_rows()? {
        let Some(group) = name.strip_prefix("hours/") else {
            continue;
        };
        if text == "off" {
            continue;
        }
        let schedule = irm_core::protocol::WorkingHours::parse(&text)
            .ok_or_else(|| StoreError::Corrupt(format!("working hours of {group}: {text:?}")))?;
        list.push(irm_core::protocol::GroupWorkingHours {
            group: group.to_owned(),
            schedule,
            text,
        });
    }
    Ok(list)
}

/// The detection rules as `GET /v1/admin/detection` shows them.
fn detection_rules(
    conn: &mut impl Tables,
) -> Result<Vec<irm_core::protocol::DetectionRuleInfo>, StoreError> {
    use irm_core::protocol::{DETECTION_RULES, DetectionRuleInfo, parse_detection_setting};
    DETECTION_RULES
        .iter()
        .map(|rule| {
            let text = conn
                .detection_rule(rule)?
                .ok_or_else(|| StoreError::Corrupt(format!("detection rule {rule} not stored")))?;
            let setting = parse_detection_setting(&text)
                .ok_or_else(|| StoreError::Corrupt(format!("detection rule {rule}: {text:?}")))?;
            Ok(DetectionRuleInfo {
                rule: (*rule).to_owned(),
                setting,
                text,
            })
        })
        .collect()
}

/// Puts the detection `rules` in force (PROTOCOL.md §12), their counters
/// rebuilt from the grants and refusals the log holds within the longest
/// window, so that a restart forgets nothing the rules still look at.
pub(super) fn arm_detection<C: Tables>(
    ctx: &mut WriteCtx<'_, C>,
    configured: crate::detect::Rules,
    hours: &std::collections::BTreeMap<String, irm_core::protocol::WorkingHours>,
    now_ms: u64,
) -> Result<(), StoreError> {
    let rules = rules_in_force(ctx, configured, now_ms)?;
    let mut detector = crate::detect::Detector::new(rules);
    for (group, schedule) in hours_in_force(ctx, hours, now_ms)? {
        detector.set_schedule(&group, Some(schedule));
    }
    for (user, scope, at) in ctx.conn.first_accesses()? {
        detector.load_first_access(&user, &scope, at);
    }
    let window_ms = detector.window_secs().saturating_mul(1000);
    let mut query = irm_core::protocol::AuditQuery {
        limit: irm_core::protocol::MAX_AUDIT_PAGE,
        action: Some("grant".into()),
        since_ms: Some(now_ms.saturating_sub(window_ms)),
        ..Default::default()
    };
    if window_ms > 0 {
        loop {
            let page = ctx.conn.audit_query(&query)?;
            let Some(last) = page.last() else { break };
            query.after = last.seq;
            for record in &page {
                let Some(user) = &record.actor_user else {
                    continue;
                };
                // Refusals the rules themselves caused are not probing.
                let counted_denial = record.result == Outcome::Denied.as_str()
                    && !matches!(
                        record.reason.as_deref(),
                        Some("step_up_required" | "user_suspended")
                    );
                if record.result == Outcome::Ok.as_str() || counted_denial {
                    detector.replay(
                        user,
                        record.file_id.as_deref(),
                        record.result == Outcome::Ok.as_str(),
                        record.at_ms / 1000,
                    );
                }
                if record.result == Outcome::Ok.as_str()
                    && let Some(device) = &record.actor_device
                {
                    detector.replay_in_use(
                        user,
                        device,
                        record.client_addr.as_deref(),
                        record.at_ms / 1000,
                    );
                }
            }
        }
        // Records taken: the allowed usage events that say how many rows.
        let mut events = irm_core::protocol::AuditQuery {
            action: Some("event".into()),
            ..query.clone()
        };
        events.after = 0;
        loop {
            let page = ctx.conn.audit_query(&events)?;
            let Some(last) = page.last() else { break };
            events.after = last.seq;
            for record in &page {
                if record.result != Outcome::Ok.as_str() {
                    continue;
                }
                let rows = record.detail.as_deref().and_then(event_rows);
                if let (Some(user), Some(rows)) = (&record.actor_user, rows) {
                    detector.replay_taken(user, rows, record.at_ms / 1000);
                }
            }
        }
    }
    *ctx.detector = detector;
    Ok(())
}

/// What a rule that fired does, in the grant's transaction: its audit
/// record, and the hold or suspension it sets (PROTOCOL.md §12). Returns
/// the refusal the grant that set it off gets, if any.
fn apply_firing<C: Tables>(
    ctx: &mut WriteCtx<'_, C>,
    actor: &Actor,
    file: Option<&str>,
    firing: &crate::detect::Firing,
    now_ms: u64,
) -> Result<Option<DenyReason>, StoreError> {
    use crate::detect::Action;
    let now = now_ms / 1000;
    // One structured line per firing on the server's log (journald under
    // a service manager), besides the audit record, for whoever watches it.
    tracing::warn!(
        target: "irm::alert",
        rule = firing.rule,
        user = %actor.user,
        file = file.unwrap_or("-"),
        action = firing.action.as_str(),
        detail = %firing.detail,
        "detection rule fired"
    );
    // The webhook's task is woken once this commits (`group_commit.rs`).
    *ctx.alerted = true;
    let mut draft = actor
        .draft(now_ms, format!("detect.{}", firing.rule), Outcome::Ok)
        .detail(firing.detail.clone());
    draft.file_id = file.map(str::to_owned);
    if actor.device.is_empty() {
        draft.actor_device = None;
    }
    match firing.action {
        Action::Alert => {
            ctx.audit(draft)?;
            Ok(None)
        }
        Action::StepUp => {
            let hold = HoldRow {
                rule: firing.rule.to_owned(),
                since: now,
                detail: firing.detail.clone(),
            };
            ctx.conn.set_hold(&actor.user, Some(&hold))?;
            ctx.audit_setting(draft, &[Object::Hold(actor.user.clone())])?;
            Ok(Some(DenyReason::StepUpRequired))
        }
        Action::Suspend => {
            ctx.conn.set_user_active(&actor.user, false)?;
            ctx.audit_setting(draft, &[Object::User(actor.user.clone())])?;
            Ok(Some(DenyReason::UserSuspended))
        }
    }
}

/// How many objects one `state.baseline` record names at most.
const BASELINE_CHUNK: usize = 200;

/// Arms the state ledger (PROTOCOL.md §11.3) with `key`: the newest token
/// of every object, read from the whole chain; then, the first time (meta
/// `state_ledger`), one or more `state.baseline` records that vouch for
/// every object as stored now, which a server from before the ledger
/// (or a new one) has no record of.
pub(super) fn arm_ledger<C: Tables>(
    ctx: &mut WriteCtx<'_, C>,
    key: super::contract::StateKey,
    now_ms: u64,
) -> Result<(), StoreError> {
    let mut latest = std::collections::HashMap::new();
    let mut after = 0;
    loop {
        let page = ctx.conn.audit_page(after, 1000)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for record in &page {
            let detail = record.detail.as_deref().unwrap_or("");
            // Only a section sealed for this record counts: one written
            // into the log without the key, or copied from another record,
            // sets nothing (and the rows it would vouch for stay refused).
            if let Some(tokens) = ledger::section(&key, detail, record.seq) {
                for (object, mac) in tokens {
                    latest.insert(object, (record.seq, mac));
                }
            } else if detail.contains(" ledger: ") {
                tracing::error!(
                    seq = record.seq,
                    "state integrity: an audit record's ledger section does not verify; ignored"
                );
            }
        }
    }
    ctx.ledger.arm(key, latest);
    if ctx.conn.meta("state_ledger")?.as_deref() == Some("1") {
        return Ok(());
    }
    let objects = all_objects(ctx.conn)?;
    let total = objects.len();
    for chunk in objects.chunks(BASELINE_CHUNK) {
        let draft = AuditDraft::new(now_ms, "state.baseline", Outcome::Ok)
            .detail(format!("objects={}/{total}", chunk.len()));
        ctx.audit_setting(draft, chunk)?;
    }
    ctx.conn.upsert_meta("state_ledger", "1")
}

/// The objects of the state ledger an admin operation sets (PROTOCOL.md
/// §11.3): their new states go into its audit record as tokens.
fn objects_set_by(conn: &mut impl Tables, op: &AdminOp) -> Result<Vec<Object>, StoreError> {
    Ok(match op {
        AdminOp::SetDetection { rule, .. } => vec![Object::Detection(rule.clone())],
        AdminOp::SetWorkingHours { group, .. } => {
            vec![Object::Detection(format!("hours/{group}"))]
        }
        // A rotation demotes the current key and adds one: every key's state.
        AdminOp::RotateKey(_) | AdminOp::RetireKey { .. } => conn
            .keys()?
            .into_iter()
            .map(|k| Object::Key(k.key_id.to_string()))
            .collect(),
        AdminOp::CreateUser(user) => [
            Object::User(user.name.clone()),
            Object::Code(user.name.clone()),
        ]
        .into_iter()
        .chain(user.groups.iter().map(|group| Object::Member {
            group: group.clone(),
            user: user.name.clone(),
        }))
        .collect(),
        AdminOp::NewCode { name, .. } => vec![Object::Code(name.clone())],
        AdminOp::IssueBreakGlass { .. } => vec![Object::BreakGlass],
        AdminOp::SetUserActive { name, .. } => vec![Object::User(name.clone())],
        AdminOp::ReleaseHold { name } => vec![Object::Hold(name.clone())],
        AdminOp::AddMember { group, user } | AdminOp::RemoveMember { group, user } => {
            vec![Object::Member {
                group: group.clone(),
                user: user.clone(),
            }]
        }
        AdminOp::RevokeDevice { id } => vec![Object::Device(id.clone())],
        AdminOp::File { id, .. } => vec![Object::File(id.clone())],
        AdminOp::SetRule { action, .. } => vec![Object::Rule(action.clone())],
        AdminOp::RequestTakeOut {
            how,
            file_id,
            user,
            device,
        } => vec![Object::TakeOut {
            how: *how,
            file: file_id.clone(),
            user: user.clone(),
            device: device.clone(),
        }],
        _ => Vec::new(),
    })
}

/// The effect of one admin operation, without its audit record.
pub(super) fn admin_effect(
    conn: &mut impl Tables,
    op: &AdminOp,
    now_ms: u64,
) -> StoreResult<AdminOutput> {
    let now = now_ms / 1000;
    macro_rules! found {
        ($e:expr) => {
            match $e? {
                Ok(v) => v,
                Err(refusal) => return Ok(Err(refusal)),
            }
        };
    }
    Ok(Ok(match op {
        AdminOp::CreateUser(user) => {
            if conn.user_exists(&user.name)? {
                return Ok(Err(Refusal::Conflict(format!("user {} exists", user.name))));
            }
            for group in &user.groups {
                if !conn.group_exists(group)? {
                    return Ok(Err(Refusal::NotFound(format!("group {group}"))));
                }
            }
            conn.insert_user(user, now)?;
            for group in &user.groups {
                conn.add_member(group, &user.name)?;
            }
            AdminOutput::CodeStored {
                user: user.name.clone(),
                expires_at: user.code.expires_at,
            }
        }
        AdminOp::ListUsers => {
            AdminOutput::Users(list_users(conn)?.iter().map(UserRecord::info).collect())
        }
        AdminOp::SetUserActive { name, active } => {
            found!(user_or_404(conn, name));
            conn.set_user_active(name, *active)?;
            AdminOutput::User(found!(user_or_404(conn, name)).info())
        }
        AdminOp::ReleaseHold { name } => {
            found!(user_or_404(conn, name));
            if conn.hold(name)?.is_none() {
                return Ok(Err(Refusal::Conflict(format!(
                    "no detection rule holds {name}"
                ))));
            }
            conn.set_hold(name, None)?;
            AdminOutput::User(found!(user_or_404(conn, name)).info())
        }
        AdminOp::NewCode { name, code } => {
            found!(user_or_404(conn, name));
            conn.set_user_code(name, Some(code), 0)?;
            AdminOutput::CodeStored {
                user: name.clone(),
                expires_at: code.expires_at,
            }
        }
        AdminOp::CreateGroup { name } => {
            if conn.group_exists(name)? {
                return Ok(Err(Refusal::Conflict(format!("group {name} exists"))));
            }
            conn.insert_group(name, now)?;
            AdminOutput::Done
        }
        AdminOp::AddMember { group, user } => {
            if !conn.group_exists(group)? {
                return Ok(Err(Refusal::NotFound(format!("group {group}"))));
            }
            found!(user_or_404(conn, user));
            conn.add_member(group, user)?;
            AdminOutput::Done
        }
        AdminOp::RemoveMember { group, user } => {
            if !conn.remove_member(group, user)? {
                return Ok(Err(Refusal::NotFound(format!(
                    "member {user} of group {group}"
                ))));
            }
            AdminOutput::Done
        }
        AdminOp::ListDevices => {
            AdminOutput::Devices(conn.devices()?.iter().map(DeviceRecord::info).collect())
        }
        AdminOp::RevokeDevice { id } => {
            if !conn.revoke_device(id)? {
                return Ok(Err(Refusal::NotFound(format!("device {id}"))));
            }
            let device = conn
                .device(id)?
                .ok_or_else(|| StoreError::Corrupt("device row vanished".into()))?;
            AdminOutput::Device(device.info())
        }
        AdminOp::ListFiles => {
            AdminOutput::Files(conn.files()?.iter().map(|r| r.info(now)).collect())
        }
        AdminOp::File { id, change } => {
            // PROTOCOL.md §7: a file sealed offline is revocable by id before
            // anyone has asked for it, so an unknown id gets a control row
            // that its first grant request will find (and fill in).
            if conn.file(id)?.is_none() {
                conn.insert_file(&NewFile {
                    id,
                    key_id: UNSEEN_KEY,
                    owner: None,
                    file_name: None,
                    policy_json: UNSEEN_POLICY,
                    first_seen_at: now,
                })?;
            }
            let row = found!(file_or_404(conn, id));
            let mut controls = row.controls();
            match change {
                FileChange::Revoke => controls.revoked = true,
                FileChange::Restore => controls = FileControls::default(),
                FileChange::Expire => controls.admin_expires_at = Some(now),
                FileChange::Restrict(remove) => {
                    controls.restricted |= *remove & Rights::all();
                }
            }
            conn.set_file_controls(id, &controls)?;
            AdminOutput::File(found!(file_or_404(conn, id)).info(now))
        }
        AdminOp::ListKeys => AdminOutput::Keys(conn.keys()?),
        AdminOp::RotateKey(key) => {
            conn.demote_current_key()?;
            conn.insert_key(key, KeyState::Current)?;
            AdminOutput::Key(key.clone())
        }
        AdminOp::RetireKey { id } => {
            match conn.key_state(id)?.as_deref() {
                None => return Ok(Err(Refusal::NotFound(format!("key {id}")))),
                Some("current") => {
                    return Ok(Err(Refusal::Conflict(
                        "the current key cannot be retired; rotate first".into(),
                    )));
                }
                Some(_) => conn.set_key_state(id, KeyState::Retired)?,
            }
            AdminOutput::Done
        }
        AdminOp::ReadAudit(query) => AdminOutput::Audit(conn.audit_query(query)?),
        AdminOp::AuditAccess { .. } => AdminOutput::Done,
        AdminOp::ListRequests => approval::list(conn)?,
        AdminOp::ShowRequest { id } => found!(approval::show(conn, id)),
        AdminOp::ListRules => AdminOutput::Rules(approval::rules(conn)?),
        AdminOp::RequestTakeOut {
            how,
            file_id,
            user,
            device,
        } => {
            // Only a file the server has seen: a mistyped id is refused
            // when asked, not after two people approved it.
            if !conn.file(file_id)?.is_some_and(|f| f.seen()) {
                return Ok(Err(Refusal::NotFound(format!(
                    "file {file_id} (the key server has not seen it; check the id with irm inspect)"
                ))));
            }
            conn.grant_take_out(*how, file_id, user, device, now + EXPORT_WINDOW_SECS)?;
            AdminOutput::Done
        }
        AdminOp::IssueBreakGlass { code } => {
            // An envelope lasts far longer than an enrollment code.
            let code = CodeIssue {
                expires_at: now + irm_core::protocol::BREAK_GLASS_LIFETIME_SECS,
                ..code.clone()
            };
            conn.set_break_glass(&code, now)?;
            AdminOutput::CodeStored {
                user: "break-glass".into(),
                expires_at: code.expires_at,
            }
        }
        AdminOp::ReissueShares { threshold, holders } => {
            if let Err(refusal) = check_share_holders(conn, *threshold, holders)? {
                return Ok(Err(refusal));
            }
            // The split itself needs the root key, which the store never
            // sees: the server does it once this is approved (vault.rs).
            AdminOutput::Done
        }
        AdminOp::SetRule { action, required } => {
            if let Err(refusal) = approval::check_rule(action, *required) {
                return Ok(Err(refusal));
            }
            conn.set_approval_rule(action, *required)?;
            AdminOutput::Done
        }
        AdminOp::ListDetection => AdminOutput::Detection(detection_rules(conn)?),
        AdminOp::ListWorkingHours => AdminOutput::WorkingHours(working_hours(conn)?),
        AdminOp::SetWorkingHours { group, schedule } => {
            if group != "*" && !irm_core::protocol::valid_name(group) {
                return Ok(Err(Refusal::BadRequest(format!(
                    "{group:?} is not a group name (or *)"
                ))));
            }
            let text = match schedule {
                Some(schedule) => match crate::detect::Schedule::new(schedule) {
                    Ok(_) => schedule.text(),
                    Err(e) => return Ok(Err(Refusal::BadRequest(e))),
                },
                None => "off".to_owned(),
            };
            conn.set_detection_rule(&format!("hours/{group}"), &text)?;
            AdminOutput::WorkingHours(working_hours(conn)?)
        }
        AdminOp::SetDetection { rule, setting } => {
            if let Err(e) = irm_core::protocol::check_detection_setting(rule, setting.as_ref()) {
                return Ok(Err(Refusal::BadRequest(e)));
            }
            let text = irm_core::protocol::detection_setting_text(setting.as_ref());
            conn.set_detection_rule(rule, &text)?;
            AdminOutput::Detection(detection_rules(conn)?)
        }
        AdminOp::ListAlerts { open } => AdminOutput::Alerts(super::alerts::list(conn, *open)?),
        AdminOp::ShowAlert { id } => AdminOutput::Alert(found!(super::alerts::one(conn, *id))),
        AdminOp::AckAlert { id, by, reason } => {
            AdminOutput::Alert(found!(super::alerts::ack(conn, *id, by, reason, now)))
        }
        AdminOp::Review { dormant_days } => AdminOutput::Review(Box::new(super::review::review(
            conn,
            *dormant_days,
            now_ms,
        )?)),
        AdminOp::ReviewDone { reason } => {
            // PROTOCOL.md §7.6: a review without a word of what was done
            // records nothing worth having.
            if reason.trim().is_empty() || !irm_core::protocol::valid_reason(reason) {
                return Ok(Err(Refusal::BadRequest(format!(
                    "a review needs a reason: what was reviewed and changed (a ticket id), one line of at most {} characters",
                    irm_core::protocol::MAX_REASON_LEN
                ))));
            }
            AdminOutput::Done
        }
        AdminOp::DataOwners { groups } => {
            AdminOutput::GroupFiles(super::review::group_files(conn, groups, now)?)
        }
        // The record is the effect (PROTOCOL.md §7.7).
        AdminOp::DigestSent { .. } => AdminOutput::Done,
        AdminOp::Approve { .. }
        | AdminOp::DenyRequest { .. }
        | AdminOp::TraceCanaries { .. }
        | AdminOp::TraceWatermark { .. } => {
            // They change a request and may run its action with records of
            // their own, or record what they found: `admin` hands them to
            // `approval.rs` and `trace.rs` before this.
            return Err(StoreError::Corrupt(format!(
                "{} reached the plain effect path",
                op.action()
            )));
        }
    }))
}
