//! Service endpoints (PROTOCOL.md §10): health, Prometheus metrics and the
//! OpenAPI document, which the router generates as it registers each route
//! and hands to the handler as an extension.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::{Extension, Json};

use crate::state::AppState;

/// `GET /healthz`: `ok`, then a `warning: ...` line for anything an
/// operator must act on while the server still serves (PROTOCOL.md §10);
/// 503 and `sealed` while the keys are sealed, so that a load balancer
/// sends no one to an instance that can only refuse.
#[utoipa::path(get, path = "/healthz", tag = "service", responses((status = 200, body = String), (status = 503, body = String)))]
pub(crate) async fn healthz(State(state): State<AppState>) -> (StatusCode, String) {
    let break_glass = state.blocking(|store| store.break_glass()).await;
    let (status, mut answer) = if state.is_serving() {
        (StatusCode::OK, String::from("ok"))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, String::from("sealed"))
    };
    if let Some(warning) = state.seal_warning() {
        answer.push('\n');
        answer.push_str(&warning);
    }
    if let Ok(Ok(Some(row))) = break_glass
        && let Some(warning) = break_glass_warning(&row, state.clock.now_secs())
    {
        answer.push('\n');
        answer.push_str(&warning);
    }
    // PROTOCOL.md §9.2: outside the bootstrap mode the checkpoints belong
    // off the host; without a sink whoever holds it can cut the log back.
    if state.published.sink_dir().is_none() && state.vault.bootstrap_file().is_none() {
        answer.push_str(
            "\nwarning: no off-host checkpoint sink: whoever holds this host can cut back the audit log and its checkpoints together; serve with --checkpoint-sink DIR (a directory mounted from another machine)",
        );
    }
    let sink = state.published.sink_health(state.clock.now_ms());
    if let Some(warning) = sink.warning() {
        answer.push('\n');
        answer.push_str(&warning);
    }
    (status, answer)
}

/// How long `/healthz` reports a use of the break-glass code.
const BREAK_GLASS_REPORTED_SECS: u64 = 7 * 24 * 60 * 60;

/// The warning for a break-glass code used in the last week (PROTOCOL.md §7.4).
fn break_glass_warning(row: &crate::store::BreakGlassRow, now: u64) -> Option<String> {
    let used_at = row.used_at?;
    (now.saturating_sub(used_at) < BREAK_GLASS_REPORTED_SECS).then(|| {
        format!(
            "warning: break-glass: the emergency code approved request {} as {} {} s ago; review it (irm admin request show {}) and have two administrators seal a new code (irm admin break-glass issue)",
            row.used_request.as_deref().unwrap_or("-"),
            row.used_by.as_deref().unwrap_or("-"),
            now.saturating_sub(used_at),
            row.used_request.as_deref().unwrap_or("ID"),
        )
    })
}

/// `GET /v1/ca`: the CA certificate clients pin (PROTOCOL.md §3.4). A
/// client fetching it cannot yet check who answers; it trusts the answer
/// only if its SHA-256 is the fingerprint its invitation carries.
#[utoipa::path(get, path = "/v1/ca", tag = "enrollment", responses((status = 200, body = String, content_type = "application/x-pem-file")))]
pub(crate) async fn ca_certificate(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        state.ca_pem.to_string(),
    )
}

/// `GET /metrics`.
#[utoipa::path(get, path = "/metrics", tag = "service", responses((status = 200, body = String, content_type = "text/plain")))]
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        state.metrics.render(),
    )
}

/// `GET /openapi.json`: the document the router was built with.
#[utoipa::path(get, path = "/openapi.json", tag = "service", responses((status = 200, body = Object)))]
pub(crate) async fn openapi(
    Extension(document): Extension<Arc<utoipa::openapi::OpenApi>>,
) -> Json<utoipa::openapi::OpenApi> {
    Json(utoipa::openapi::OpenApi::clone(&document))
}
