//! Sealed keys over HTTP (PROTOCOL.md §11.2): where unsealing stands and
//! the caller's wrapped share, a holder submitting their share, filing a
//! reissue of the shares, and carrying one out once it is approved. The
//! root key's life is `vault`'s; this module speaks HTTP and audits.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use irm_core::DevicePublicKey;
use irm_core::protocol::{
    DenyBody, ErrorBody, ReissueSharesRequest, RequestAnswer, UnsealRequest, UnsealStatus,
};

use super::admin::{filed, run};
use crate::audit::{AuditDraft, Outcome};
use crate::auth::{Authed, SignedRequest};
use crate::error::{ApiError, Refusal};
use crate::state::AppState;
use crate::store::AdminOp;
use crate::vault::{Submitted, shares};

fn status(state: &AppState, signed: &SignedRequest) -> UnsealStatus {
    let (sealed, mode, threshold, holders, submitted) = state.vault.status();
    UnsealStatus {
        sealed: sealed || !state.is_serving(),
        mode,
        threshold,
        holders,
        submitted,
        share: state
            .vault
            .share_for(&signed.actor.user, &signed.actor.device),
    }
}

async fn record(state: &AppState, draft: AuditDraft) -> Result<(), ApiError> {
    state
        .blocking(move |store| store.append_audit(draft))
        .await??;
    Ok(())
}

#[utoipa::path(get, path = "/v1/unseal", tag = "service",
    responses((status = 200, body = UnsealStatus), (status = 401, body = DenyBody)),
    security(("device_signature" = [])))]
pub(crate) async fn unseal_status(
    State(state): State<AppState>,
    Authed(signed): Authed,
) -> Json<UnsealStatus> {
    Json(status(&state, &signed))
}

#[utoipa::path(post, path = "/v1/unseal", tag = "service", request_body = UnsealRequest,
    responses((status = 200, body = UnsealStatus), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("device_signature" = [])))]
pub(crate) async fn submit_share(
    State(state): State<AppState>,
    Authed(signed): Authed,
) -> Result<Json<UnsealStatus>, ApiError> {
    let body: UnsealRequest = signed.json()?;
    let share = shares::decode(&body.share)
        .ok_or_else(|| ApiError::bad_request("the share is not base64url"))?;
    let vault = state.vault.clone();
    let user = signed.actor.user.clone();
    let (root_id, index) = (body.root_id.clone(), body.index);
    let outcome = state
        .blocking(move |_| vault.submit(&user, &root_id, index, share))
        .await?
        .map_err(|e| ApiError::Internal(Box::new(e)))?;
    let mut draft = signed
        .actor
        .draft(state.clock.now_ms(), "server.unseal", Outcome::Ok)
        .detail(format!("root_id={} index={index}", body.root_id));
    match outcome {
        Submitted::Waiting {
            submitted,
            threshold,
        } => {
            draft = draft.detail(format!(
                "root_id={} index={index} submitted={}/{threshold}",
                body.root_id,
                submitted.len()
            ));
            record(&state, draft).await?;
            tracing::info!(user = %signed.actor.user, submitted = submitted.len(), threshold, "unseal share accepted");
        }
        Submitted::Unsealed(entries) => {
            let installed = state.clone();
            state
                .blocking(move |_| installed.install(&entries))
                .await?
                .map_err(|e| ApiError::Internal(Box::new(e)))?;
            draft = draft.detail(format!("root_id={} index={index} unsealed", body.root_id));
            record(&state, draft).await?;
            tracing::warn!(user = %signed.actor.user, "unsealed: the key server serves");
            // The records written while sealed get their checkpoint now.
            let checkpointing = state.clone();
            state
                .blocking(move |_| checkpointing.write_checkpoint(true))
                .await??;
        }
        Submitted::NotSealed => {
            let refusal = Refusal::Conflict("the key server is not sealed".into());
            record(&state, draft.refused(&refusal)).await?;
            return Err(refusal.into());
        }
        Submitted::Wrong(problem) => {
            let refusal = Refusal::Conflict(problem);
            record(&state, draft.refused(&refusal)).await?;
            return Err(refusal.into());
        }
    }
    Ok(Json(status(&state, &signed)))
}

#[utoipa::path(post, path = "/v1/admin/shares", tag = "admin", request_body = ReissueSharesRequest,
    responses((status = 202, body = RequestAnswer), (status = 400, body = ErrorBody), (status = 403, body = DenyBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("device_signature" = [])))]
pub(crate) async fn reissue_shares(
    State(state): State<AppState>,
    Authed(signed): Authed,
) -> Result<Response, ApiError> {
    let body: ReissueSharesRequest = signed.json()?;
    let mut holders = body.holders;
    for holder in &holders {
        if !irm_core::protocol::valid_name(holder) {
            return Err(ApiError::bad_request(format!(
                "holder {holder:?} is not a user name (1 to 64 of a-z A-Z 0-9 . _ -)"
            )));
        }
    }
    holders.sort();
    let op = AdminOp::ReissueShares {
        threshold: body.threshold,
        holders,
    };
    filed(run(&state, &signed, op).await?, None)
}

/// Carries out an approved reissue (request `request_id`): a fresh root key
/// split among the holders, each share wrapped to each of their active
/// devices. Audited as `server.shares.reissue`, by the approver whose
/// approval completed it.
pub(crate) async fn reissue_approved(
    state: &AppState,
    signed: &SignedRequest,
    request_id: &str,
    threshold: u8,
    holders: &[String],
) -> Result<(), ApiError> {
    let devices = state.blocking(|store| store.devices()).await??;
    let holders: Vec<(String, Vec<(String, DevicePublicKey)>)> = holders
        .iter()
        .map(|user| {
            let mine = devices
                .iter()
                .filter(|d| &d.user == user && d.active)
                .map(|d| (d.id.clone(), DevicePublicKey::from_bytes(d.public_key)))
                .collect();
            (user.clone(), mine)
        })
        .collect();
    let vault = state.vault.clone();
    let now = state.clock.now_secs();
    let names: Vec<String> = holders.iter().map(|(u, _)| u.clone()).collect();
    let done = state
        .blocking(move |_| vault.reissue(threshold, &holders, now))
        .await?;
    let draft = signed
        .actor
        .draft(state.clock.now_ms(), "server.shares.reissue", Outcome::Ok);
    match done {
        Ok(set) => {
            record(
                state,
                draft.detail(format!(
                    "request={request_id} root_id={} threshold={threshold} holders={}",
                    set.root_id,
                    names.join(",")
                )),
            )
            .await?;
            tracing::warn!(threshold, holders = %names.join(","), "root key split anew into shares; the bootstrap share is gone");
            Ok(())
        }
        Err(e) => {
            let mut draft = draft.detail(format!("request={request_id} error={e}"));
            draft.result = Outcome::Failed;
            record(state, draft).await?;
            Err(ApiError::Internal(Box::new(e)))
        }
    }
}
