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
    let (status, mut answer) = if state.is_serving() {
        (StatusCode::OK, String::from("ok"))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, String::from("sealed"))
    };
    if let Some(warning) = state.seal_warning() {
        answer.push('\n');
        answer.push_str(&warning);
    }
    let sink = state.published.sink_health(state.clock.now_ms());
    if let Some(warning) = sink.warning() {
        answer.push('\n');
        answer.push_str(&warning);
    }
    (status, answer)
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
