//! The HTTP surface: the router with every route of PROTOCOL.md, registered
//! together with its OpenAPI description, the layers around it (body limit,
//! request timeout, tracing span, metrics), and the fallbacks that keep every
//! error in the ErrorBody shape. Handlers live in the submodules by
//! audience: clients, administrators, service endpoints; the document's
//! fixed parts (title, security scheme) in `openapi`.

pub(crate) mod admin;
pub(crate) mod alerts;
pub(crate) mod approval;
pub(crate) mod client;
mod openapi;
pub(crate) mod service;
pub(crate) mod trace;
pub(crate) mod unseal;
pub(crate) mod watch;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json, Router};
use irm_core::protocol::ErrorBody;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::DeniedWith;
use crate::state::AppState;

/// PROTOCOL.md §1: request bodies are at most 1 MiB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Every route with its OpenAPI path item. A route exists only by being
/// registered here, through `routes!`, which takes the method, the path and
/// the schemas from the handler's `#[utoipa::path]`: nothing can be served
/// undocumented, and the document cannot name a route that is not served.
/// Handlers sharing a path are registered together (one `routes!` each).
fn documented_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base_document())
        .routes(routes!(service::healthz))
        .routes(routes!(service::metrics))
        .routes(routes!(service::openapi))
        .routes(routes!(service::ca_certificate))
        .routes(routes!(client::server_key))
        .routes(routes!(client::enroll))
        .routes(routes!(client::grant))
        .routes(routes!(client::event))
        .routes(routes!(client::report_export))
        .routes(routes!(client::register_file))
        .routes(routes!(client::check_recipients))
        .routes(routes!(watch::watch))
        .routes(routes!(admin::create_user, admin::list_users))
        .routes(routes!(admin::suspend_user))
        .routes(routes!(admin::restore_user))
        .routes(routes!(admin::release_user))
        .routes(routes!(admin::new_code_for))
        .routes(routes!(admin::create_group))
        .routes(routes!(admin::add_member))
        .routes(routes!(admin::remove_member))
        .routes(routes!(admin::list_devices))
        .routes(routes!(admin::revoke_device))
        .routes(routes!(admin::list_files))
        .routes(routes!(admin::revoke_file))
        .routes(routes!(admin::restore_file))
        .routes(routes!(admin::expire_file))
        .routes(routes!(admin::restrict_file))
        .routes(routes!(admin::list_keys))
        .routes(routes!(admin::rotate_key))
        .routes(routes!(admin::retire_key))
        .routes(routes!(approval::list_requests))
        .routes(routes!(approval::show_request))
        .routes(routes!(approval::approve_request))
        .routes(routes!(approval::deny_request))
        .routes(routes!(approval::request_export))
        .routes(routes!(approval::list_rules))
        .routes(routes!(approval::set_rule))
        .routes(routes!(alerts::list_alerts))
        .routes(routes!(alerts::show_alert))
        .routes(routes!(alerts::ack_alert))
        .routes(routes!(alerts::list_detection))
        .routes(routes!(alerts::set_detection))
        .routes(routes!(alerts::list_working_hours))
        .routes(routes!(alerts::set_working_hours))
        .routes(routes!(admin::read_audit))
        .routes(routes!(admin::verify_audit))
        .routes(routes!(admin::checkpoint))
        .routes(routes!(unseal::unseal_status, unseal::submit_share))
        .routes(routes!(unseal::reissue_shares))
        .routes(routes!(admin::issue_break_glass))
        .routes(routes!(admin::review))
        .routes(routes!(admin::review_done))
        .routes(routes!(admin::data_owners))
        .routes(routes!(admin::digest_sent))
        .routes(routes!(trace::trace_canaries))
        .routes(routes!(trace::trace_watermark))
}

/// The only paths served while the keys are sealed: health, metrics, the
/// API document, the public CA certificate, and unsealing itself.
const SERVED_WHILE_SEALED: [&str; 5] = [
    "/healthz",
    "/metrics",
    "/openapi.json",
    "/v1/ca",
    "/v1/unseal",
];

/// PROTOCOL.md §11.2: while sealed, everything else is refused with
/// `server_sealed` (503) before any handler runs, so no request can meet a
/// half-loaded key ring.
async fn sealed_gate(
    State(serving): State<Arc<std::sync::atomic::AtomicBool>>,
    req: Request,
    next: Next,
) -> Response {
    // The flag alone, not the whole state: one reference count per request.
    if serving.load(Ordering::Acquire) || SERVED_WHILE_SEALED.contains(&req.uri().path()) {
        next.run(req).await
    } else {
        crate::error::ApiError::deny(irm_core::protocol::DenyReason::ServerSealed).into_response()
    }
}

/// The OpenAPI 3.1 document of every route (`GET /openapi.json`), generated
/// from the routes as registered and irm-core's protocol types.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    documented_routes().into_openapi()
}

/// The application: every route with its layers, bound to `state`.
pub fn router(state: AppState) -> Router {
    let timeout = state.settings.request_timeout;
    let (routes, document) = documented_routes().split_for_parts();
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(Extension(Arc::new(document)))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state.serving),
            sealed_gate,
        ))
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
