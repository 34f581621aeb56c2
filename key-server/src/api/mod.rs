//! The HTTP surface: the router with every route of PROTOCOL.md, the layers
//! around it (body limit, request timeout, tracing span, metrics), and the
//! fallbacks that keep every error in the ErrorBody shape. Handlers live in
//! the submodules by audience: clients, administrators, service endpoints.

pub(crate) mod admin;
pub(crate) mod client;
pub(crate) mod service;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use irm_core::protocol::ErrorBody;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::DeniedWith;
use crate::state::AppState;

pub use service::openapi_document;

/// PROTOCOL.md §1: request bodies are at most 1 MiB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Every route the server serves, as `(METHOD, path)` with `{param}` segments.
/// Tests compare it with PROTOCOL.md and the OpenAPI document.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/v1/server-key"),
    ("POST", "/v1/enroll"),
    ("POST", "/v1/grant"),
    ("POST", "/v1/events"),
    ("POST", "/v1/files"),
    ("POST", "/v1/admin/users"),
    ("GET", "/v1/admin/users"),
    ("POST", "/v1/admin/users/{name}/suspend"),
    ("POST", "/v1/admin/users/{name}/restore"),
    ("POST", "/v1/admin/users/{name}/code"),
    ("POST", "/v1/admin/groups"),
    ("POST", "/v1/admin/groups/{name}/members"),
    ("DELETE", "/v1/admin/groups/{name}/members/{user}"),
    ("GET", "/v1/admin/devices"),
    ("POST", "/v1/admin/devices/{id}/revoke"),
    ("GET", "/v1/admin/files"),
    ("POST", "/v1/admin/files/{id}/revoke"),
    ("POST", "/v1/admin/files/{id}/restore"),
    ("POST", "/v1/admin/files/{id}/expire"),
    ("POST", "/v1/admin/files/{id}/restrict"),
    ("GET", "/v1/admin/keys"),
    ("POST", "/v1/admin/keys/rotate"),
    ("POST", "/v1/admin/keys/{key_id}/retire"),
    ("GET", "/v1/audit"),
    ("GET", "/v1/audit/verify"),
    ("POST", "/v1/audit/checkpoint"),
];

/// The application: every route with its layers, bound to `state`.
pub fn router(state: AppState) -> Router {
    let timeout = state.settings.request_timeout;
    Router::new()
        .route("/healthz", get(service::healthz))
        .route("/metrics", get(service::metrics))
        .route("/openapi.json", get(service::openapi))
        .route("/v1/server-key", get(client::server_key))
        .route("/v1/enroll", post(client::enroll))
        .route("/v1/grant", post(client::grant))
        .route("/v1/events", post(client::event))
        .route("/v1/files", post(client::register_file))
        .route(
            "/v1/admin/users",
            post(admin::create_user).get(admin::list_users),
        )
        .route("/v1/admin/users/{name}/suspend", post(admin::suspend_user))
        .route("/v1/admin/users/{name}/restore", post(admin::restore_user))
        .route("/v1/admin/users/{name}/code", post(admin::new_code_for))
        .route("/v1/admin/groups", post(admin::create_group))
        .route("/v1/admin/groups/{name}/members", post(admin::add_member))
        .route(
            "/v1/admin/groups/{name}/members/{user}",
            delete(admin::remove_member),
        )
        .route("/v1/admin/devices", get(admin::list_devices))
        .route("/v1/admin/devices/{id}/revoke", post(admin::revoke_device))
        .route("/v1/admin/files", get(admin::list_files))
        .route("/v1/admin/files/{id}/revoke", post(admin::revoke_file))
        .route("/v1/admin/files/{id}/restore", post(admin::restore_file))
        .route("/v1/admin/files/{id}/expire", post(admin::expire_file))
        .route("/v1/admin/files/{id}/restrict", post(admin::restrict_file))
        .route("/v1/admin/keys", get(admin::list_keys))
        .route("/v1/admin/keys/rotate", post(admin::rotate_key))
        .route("/v1/admin/keys/{key_id}/retire", post(admin::retire_key))
        .route("/v1/audit", get(admin::read_audit))
        .route("/v1/audit/verify", get(admin::verify_audit))
        .route("/v1/audit/checkpoint", post(admin::checkpoint))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let route = req
                .extensions()
                .get::<axum::extract::MatchedPath>()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| req.uri().path().to_owned());
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", id = %id, method = %req.method(), route = %route)
        }))
        .layer(SetRequestIdLayer::x_request_id(NextRequestId::default()))
        .with_state(state)
}

/// Numbers requests in hex, per server (`x-request-id`, unless the client sent one).
#[derive(Debug, Clone, Default)]
struct NextRequestId(Arc<AtomicU64>);

impl MakeRequestId for NextRequestId {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{n:x}"))
            .ok()
            .map(RequestId::new)
    }
}

/// Times every request and counts refusals by reason.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let response = next.run(req).await;
    state.metrics.requests.observe(started.elapsed());
    if let Some(DeniedWith(reason)) = response.extensions().get::<DeniedWith>() {
        state.metrics.denial(*reason);
    }
    response
}

async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        Json(ErrorBody {
            error: "not_found".into(),
            message: "no such endpoint; see /openapi.json".into(),
        }),
    )
}

async fn method_not_allowed() -> impl IntoResponse {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(ErrorBody {
            error: "method_not_allowed".into(),
            message: "this endpoint does not take that method; see /openapi.json".into(),
        }),
    )
}

pub use admin::{AddMemberRequest, CreateGroupRequest, KeyInfo};
pub use client::valid_name;
