//! The trace lookups (PROTOCOL.md §7.8): which export a leaked list's
//! canaries name, and which grant a watermark id names. Both are privileged
//! reads (admin or auditor) that need the caller's reason and are audited
//! with what matched; the lookups and their records are the store's
//! (`store/trace.rs`). This module only speaks HTTP.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, State};
use irm_core::protocol::{
    DenyBody, ErrorBody, MAX_TRACE_VALUE_LEN, MAX_TRACE_VALUES, TraceAnswer, TraceRequest,
    WatermarkTrace, contact_key, grant_prefix_of_watermark, watermark_id,
};

use super::admin::{run, unexpected};
use crate::auth::Authed;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{AdminOp, AdminOutput};

/// `POST /v1/admin/trace?reason=TEXT`: the exports whose canaries are among
/// the values (phone numbers, e-mail addresses) found in a leaked list.
#[utoipa::path(post, path = "/v1/admin/trace", tag = "admin",
    request_body = TraceRequest,
    params(("reason" = String, Query, description = "why (a ticket id); required")),
    responses((status = 200, body = TraceAnswer), (status = 400, body = ErrorBody),
        (status = 403, body = DenyBody), (status = 413, body = ErrorBody)),
    security(("device_signature" = [])))]
pub(crate) async fn trace_canaries(
    State(state): State<AppState>,
    Authed(signed): Authed,
) -> Result<Json<TraceAnswer>, ApiError> {
    let request: TraceRequest = signed.json()?;
    if request.values.len() > MAX_TRACE_VALUES {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_TRACE_VALUES} values at once: send a larger list in parts"
        )));
    }
    if request
        .values
        .iter()
        .any(|v| v.len() > MAX_TRACE_VALUE_LEN || v.chars().any(char::is_control))
    {
        return Err(ApiError::bad_request(format!(
            "each value must be at most {MAX_TRACE_VALUE_LEN} bytes without control characters"
        )));
    }
    // Compared as recorded; what is no phone number or address cannot match.
    let values: BTreeSet<String> = request
        .values
        .iter()
        .filter_map(|v| contact_key(v))
        .collect();
    let op = AdminOp::TraceCanaries {
        values: values.into_iter().collect(),
    };
    match run(&state, &signed, op).await? {
        AdminOutput::Trace(answer) => Ok(Json(answer)),
        _ => Err(unexpected()),
    }
}

/// `GET /v1/admin/trace/watermark/{id}?reason=TEXT`: the grant a watermark
/// id (as read off a photo: any case, hyphens optional) names.
#[utoipa::path(get, path = "/v1/admin/trace/watermark/{id}", tag = "admin",
    params(("id" = String, Path, description = "the watermark id, e.g. W7K2-9QXM-4HTD"),
        ("reason" = String, Query, description = "why (a ticket id); required")),
    responses((status = 200, body = WatermarkTrace), (status = 400, body = ErrorBody),
        (status = 403, body = DenyBody)),
    security(("device_signature" = [])))]
pub(crate) async fn trace_watermark(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Authed(signed): Authed,
) -> Result<Json<WatermarkTrace>, ApiError> {
    let prefix = grant_prefix_of_watermark(&id).ok_or_else(|| {
        ApiError::bad_request(
            "a watermark id is 12 symbols of Crockford base 32 (0-9, A-Z without I, L, O, U), such as W7K2-9QXM-4HTD",
        )
    })?;
    let id = watermark_id(&prefix).ok_or_else(unexpected)?;
    match run(&state, &signed, AdminOp::TraceWatermark { id, prefix }).await? {
        AdminOutput::Watermark(answer) => Ok(Json(answer)),
        _ => Err(unexpected()),
    }
}
