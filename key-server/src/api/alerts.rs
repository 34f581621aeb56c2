//! Alerts (PROTOCOL.md §12.1): listing, showing and acknowledging the
//! detection firings; and the detection rules themselves (§12.2). What an alert is, and the acknowledgement with its
//! audit record, are the store's (`store/alerts.rs`); delivering them is
//! `crate::alerts`'. This module only speaks HTTP.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use irm_core::protocol::{
    AckAlertRequest, Alert, DenyBody, DetectionRuleInfo, ErrorBody, GroupWorkingHours,
    RequestAnswer, SetDetectionRuleRequest, SetWorkingHoursRequest, valid_reason,
};

use super::admin::{filed, run, unexpected};
use crate::auth::Authed;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{AdminOp, AdminOutput};

/// An alert id as sent: anything but a sequence number names no alert (404,
/// as an unknown one does).
fn alert_id(id: &str) -> Result<u64, ApiError> {
    id.parse::<u64>()
        .ok()
        .filter(|id| *id > 0 && *id <= i64::MAX as u64)
        .ok_or_else(|| ApiError::not_found(format!("alert {id}")))
}

fn one(out: AdminOutput) -> Result<Json<Alert>, ApiError> {
    match out {
        AdminOutput::Alert(alert) => Ok(Json(alert)),
        _ => Err(unexpected()),
    }
}

/// `?open=true` lists only unacknowledged alerts; `reason` is the caller's
/// (PROTOCOL.md §7); anything else is refused.
fn open_only(query: Option<&str>) -> Result<bool, ApiError> {
    let mut open = false;
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match (key.as_ref(), value.as_ref()) {
            ("open", "true") => open = true,
            ("open", "false") => open = false,
            ("open", _) => return Err(ApiError::bad_request("open must be true or false")),
            ("reason", _) => {}
            (other, _) => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {other:?}"
                )));
            }
        }
    }
    Ok(open)
}

#[utoipa::path(get, path = "/v1/admin/alerts", tag = "admin",
    params(("open" = Option<bool>, Query, description = "only alerts nobody has acknowledged")),
    responses((status = 200, body = Vec<Alert>), (status = 400, body = ErrorBody), (status = 403, body = DenyBody)),
    security(("device_signature" = [])))]
pub(crate) async fn list_alerts(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    Authed(signed): Authed,
) -> Result<Json<Vec<Alert>>, ApiError> {
    let open = open_only(uri.query())?;
    match run(&state, &signed, AdminOp::ListAlerts { open }).await? {
        AdminOutput::Alerts(alerts) => Ok(Json(alerts)),
        _ => Err(unexpected()),
    }
}

#[utoipa::path(get, path = "/v1/admin/alerts/{id}", tag = "admin",
    params(("id" = u64, Path, description = "the firing's audit seq")),
    responses((status = 200, body = Alert), (status = 404, body = ErrorBody), (status = 403, body = DenyBody)),
    security(("device_signature" = [])))]
pub(crate) async fn show_alert(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Authed(signed): Authed,
) -> Result<Json<Alert>, ApiError> {
    let id = alert_id(&id)?;
    one(run(&state, &signed, AdminOp::ShowAlert { id }).await?)
}

/// Acknowledges an alert once (409 the second time). A hold or suspension
/// the alert set stays in force: the answer's `in_force` and `lift_with`
/// say so and name the approved command that lifts it.
#[utoipa::path(post, path = "/v1/admin/alerts/{id}/ack", tag = "admin",
    params(("id" = u64, Path, description = "the firing's audit seq")), request_body = AckAlertRequest,
    responses((status = 200, body = Alert), (status = 400, body = ErrorBody), (status = 403, body = DenyBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("device_signature" = [])))]
pub(crate) async fn ack_alert(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Authed(signed): Authed,
) -> Result<Json<Alert>, ApiError> {
    let id = alert_id(&id)?;
    let request: AckAlertRequest = signed.json()?;
    if request.reason.trim().is_empty() || !valid_reason(&request.reason) {
        return Err(ApiError::bad_request(format!(
            "reason must be 1 to {} characters with no control characters",
            irm_core::protocol::MAX_REASON_LEN
        )));
    }
    let op = AdminOp::AckAlert {
        id,
        by: signed.actor.user.clone(),
        reason: request.reason,
    };
    let Json(alert) = one(run(&state, &signed, op).await?)?;
    if let Some(lift) = &alert.lift_with {
        tracing::info!(
            target: "irm::alert",
            alert = alert.id,
            user = ?alert.user,
            "alert acknowledged; what it set stays in force until `{lift}` is approved"
        );
    }
    Ok(Json(alert))
}

#[utoipa::path(get, path = "/v1/admin/detection", tag = "admin",
    responses((status = 200, body = Vec<DetectionRuleInfo>), (status = 403, body = DenyBody)),
    security(("device_signature" = [])))]
pub(crate) async fn list_detection(
    State(state): State<AppState>,
    Authed(signed): Authed,
) -> Result<Json<Vec<DetectionRuleInfo>>, ApiError> {
    match run(&state, &signed, AdminOp::ListDetection).await? {
        AdminOutput::Detection(rules) => Ok(Json(rules)),
        _ => Err(unexpected()),
    }
}

/// Tightening a rule takes effect at once (200, the rules now in force);
/// loosening or switching it off is filed for approval (202, the request),
/// PROTOCOL.md §12.2.
#[utoipa::path(put, path = "/v1/admin/detection/{rule}", tag = "admin",
    params(("rule" = String, Path, description = "bulk_files or denials")), request_body = SetDetectionRuleRequest,
    responses((status = 200, body = Vec<DetectionRuleInfo>), (status = 202, body = RequestAnswer),
        (status = 400, body = ErrorBody), (status = 403, body = DenyBody)),
    security(("device_signature" = [])))]
pub(crate) async fn set_detection(
    State(state): State<AppState>,
    Path(rule): Path<String>,
    Authed(signed): Authed,
) -> Result<Response, ApiError> {
    let request: SetDetectionRuleRequest = signed.json()?;
    let op = AdminOp::SetDetection {
        rule,
        setting: request.setting,
    };
    match run(&state, &signed, op).await? {
        AdminOutput::Detection(rules) => Ok(Json(rules).into_response()),
        out => filed(out, None),
    }
}

#[utoipa::path(get, path = "/v1/admin/working-hours", tag = "admin",
    responses((status = 200, body = Vec<GroupWorkingHours>), (status = 403, body = DenyBody)),
    security(("device_signature" = [])))]
pub(crate) async fn list_working_hours(
    State(state): State<AppState>,
    Authed(signed): Authed,
) -> Result<Json<Vec<GroupWorkingHours>>, ApiError> {
    match run(&state, &signed, AdminOp::ListWorkingHours).await? {
        AdminOutput::WorkingHours(list) => Ok(Json(list)),
        _ => Err(unexpected()),
    }
}

/// Narrowing a group's hours (or giving it its first) takes effect at once
/// (200, every group's hours); widening or removing them is filed for
/// approval (202), PROTOCOL.md §12.3.
#[utoipa::path(put, path = "/v1/admin/working-hours/{group}", tag = "admin",
    params(("group" = String, Path, description = "a group, or * for everyone whose groups have none")),
    request_body = SetWorkingHoursRequest,
    responses((status = 200, body = Vec<GroupWorkingHours>), (status = 202, body = RequestAnswer),
        (status = 400, body = ErrorBody), (status = 403, body = DenyBody)),
    security(("device_signature" = [])))]
pub(crate) async fn set_working_hours(
    State(state): State<AppState>,
    Path(group): Path<String>,
    Authed(signed): Authed,
) -> Result<Response, ApiError> {
    let request: SetWorkingHoursRequest = signed.json()?;
    let op = AdminOp::SetWorkingHours {
        group,
        schedule: request.schedule,
    };
    match run(&state, &signed, op).await? {
        AdminOutput::WorkingHours(list) => Ok(Json(list).into_response()),
        out => filed(out, None),
    }
}
