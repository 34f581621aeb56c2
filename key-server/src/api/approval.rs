//! Approval requests and rules (PROTOCOL.md §7.2, §7.3): listing and
//! showing them, approving and denying, the rules, and a person's request to
//! take a file out. The decisions are the store's
//! (`store/approval.rs`); this module only speaks HTTP, and makes the second
//! half of a code that an approval may complete.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use irm_core::protocol::{
    ApprovalAction, ApprovalRequestInfo, ApprovalRule, ApproveRequest, DenyBody, ErrorBody,
    ExportRequest, RequestAnswer, RequestState, SetApprovalRuleRequest,
};

use super::admin::{filed, run, unexpected};
use crate::auth::Authed;
use crate::codes::CodeHalf;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{AdminOp, AdminOutput};

/// A request id as the store keys it: 32 hex digits, lower case.
fn request_id(id: &str) -> Result<String, ApiError> {
    if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(id.to_ascii_lowercase())
    } else {
        Err(ApiError::bad_request("a request id is 32 hex digits"))
    }
}

/// The request as the store answered it, with the caller's half of a code
/// if this call completed one.
fn answer(out: AdminOutput, half: Option<&CodeHalf>) -> Result<Json<RequestAnswer>, ApiError> {
    match out {
        AdminOutput::Request {
            request,
            code_expires_at,
        } => Ok(Json(RequestAnswer {
            request,
            code_half: code_expires_at.and(half).map(|h| h.expose().to_owned()),
            code_expires_at,
        })),
        _ => Err(unexpected()),
    }
}

#[utoipa::path(get, path = "/v1/admin/requests", tag = "admin",
    responses((status = 200, body = Vec<ApprovalRequestInfo>), (status = 403, body = DenyBody)),
    security(("device_signature" = [])))]
pub(crate) async fn list_requests(
    State(state): State<AppState>,
    Authed(signed): Authed,
) -> Result<Json<Vec<ApprovalRequestInfo>>, ApiError> {
    match run(&state, &signed, AdminOp::ListRequests).await? {
        AdminOutput::Requests(requests) => Ok(Json(requests)),
        _ => Err(unexpected()),
    }
}

#[utoipa::path(get, path = "/v1/admin/requests/{id}", tag = "admin",
    params(("id" = String, Path)),
    responses((status = 200, body = ApprovalRequestInfo), (status = 404, body = ErrorBody)),
    security(("device_signature" = [])))]
pub(crate) async fn show_request(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Authed(signed): Authed,
) -> Result<Json<ApprovalRequestInfo>, ApiError> {
    let id = request_id(&id)?;
    answer(
        run(&state, &signed, AdminOp::ShowRequest { id }).await?,
        None,
    )
    .map(|Json(a)| Json(a.request))
}

#[utoipa::path(post, path = "/v1/admin/requests/{id}/approve", tag = "admin",
    params(("id" = String, Path)), request_body = ApproveRequest,
    responses((status = 200, body = RequestAnswer), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("device_signature" = [])))]
pub(crate) async fn approve_request(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Authed(signed): Authed,
) -> Result<Json<RequestAnswer>, ApiError> {
    let body: ApproveRequest = signed.json()?;
    let id = request_id(&id)?;
    let half = CodeHalf::generate().map_err(|e| ApiError::Internal(e.to_string().into()))?;
    let op = AdminOp::Approve {
        id,
        action_hash: body.action_hash.to_ascii_lowercase(),
        second_half: half.clone(),
        break_glass: body.break_glass.clone(),
    };
    let out = run(&state, &signed, op).await?;
    if body.break_glass.is_some() {
        state.metrics.break_glass_used();
        tracing::warn!(user = %signed.actor.user, "the break-glass code approved a request");
    }
    // A reissue of the shares needs the root key, which the store never
    // holds: the server splits it once the approval is recorded.
    if let AdminOutput::Request { request, .. } = &out
        && request.state == RequestState::Done
        && let ApprovalAction::ReissueShares { threshold, holders } = &request.action
    {
        super::unseal::reissue_approved(&state, &signed, &request.id, *threshold, holders).await?;
    }
    answer(out, Some(&half))
}

#[utoipa::path(post, path = "/v1/admin/requests/{id}/deny", tag = "admin",
    params(("id" = String, Path)),
    responses((status = 200, body = ApprovalRequestInfo), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("device_signature" = [])))]
pub(crate) async fn deny_request(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Authed(signed): Authed,
) -> Result<Json<ApprovalRequestInfo>, ApiError> {
    let id = request_id(&id)?;
    answer(
        run(&state, &signed, AdminOp::DenyRequest { id }).await?,
        None,
    )
    .map(|Json(a)| Json(a.request))
}

#[utoipa::path(post, path = "/v1/export-requests", tag = "grants",
    request_body = ExportRequest,
    responses((status = 202, body = RequestAnswer), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("device_signature" = [])))]
pub(crate) async fn request_export(
    State(state): State<AppState>,
    Authed(signed): Authed,
) -> Result<Response, ApiError> {
    let body: ExportRequest = signed.json()?;
    let file_id = body
        .file_id
        .parse::<irm_core::FileId>()
        .map_err(|_| ApiError::bad_request("a file id is 32 hex digits"))?
        .to_string();
    let op = AdminOp::RequestTakeOut {
        how: body.how,
        file_id,
        user: signed.actor.user.clone(),
        device: signed.actor.device.clone(),
    };
    filed(run(&state, &signed, op).await?, None)
}

#[utoipa::path(get, path = "/v1/admin/approval-rules", tag = "admin",
    responses((status = 200, body = Vec<ApprovalRule>)),
    security(("device_signature" = [])))]
pub(crate) async fn list_rules(
    State(state): State<AppState>,
    Authed(signed): Authed,
) -> Result<Json<Vec<ApprovalRule>>, ApiError> {
    match run(&state, &signed, AdminOp::ListRules).await? {
        AdminOutput::Rules(rules) => Ok(Json(rules)),
        _ => Err(unexpected()),
    }
}

#[utoipa::path(put, path = "/v1/admin/approval-rules/{action}", tag = "admin",
    params(("action" = String, Path)), request_body = SetApprovalRuleRequest,
    responses((status = 202, body = RequestAnswer), (status = 400, body = ErrorBody)),
    security(("device_signature" = [])))]
pub(crate) async fn set_rule(
    State(state): State<AppState>,
    Path(action): Path<String>,
    Authed(signed): Authed,
) -> Result<Response, ApiError> {
    let body: SetApprovalRuleRequest = signed.json()?;
    let op = AdminOp::SetRule {
        action,
        required: body.required,
    };
    filed(run(&state, &signed, op).await?, None)
}
