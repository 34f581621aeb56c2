//! Request authentication (PROTOCOL.md §2): the axum extractors that buffer
//! the body, check its size and type, verify the device signature over the
//! exact bytes received, and hand the handler the verified actor together
//! with those same bytes to parse. Every 401 is audited as `auth.failed`
//! here. The replay cache (`replay`), the cache of device records
//! (`device_cache`) and the slow-down of enrollment guesses
//! (`enroll_throttle`) live beside it. What a verified actor may do is decided
//! by the handlers, the grant decision and the store.

pub mod device_cache;
pub mod enroll_throttle;
pub mod replay;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, Request};
use axum::http::{HeaderMap, header};
use irm_core::RequestSignature;
use irm_core::protocol::DenyReason;
use serde::de::DeserializeOwned;

use crate::audit::{AuditDraft, Outcome};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{Actor, DeviceRecord, UserRecord};
use crate::tls::PeerAddr;

/// PROTOCOL.md §2.2 step 2: allowed clock difference.
pub const MAX_CLOCK_SKEW_SECS: u64 = 300;
/// A request whose device signature verified (steps 1–4 of PROTOCOL.md §2.2),
/// whatever the state of its user and device. Only `POST /v1/grant` takes
/// this directly, because its decision reports those states itself.
#[derive(Debug)]
pub struct SignedRequest {
    /// The verified actor.
    pub actor: Actor,
    /// The device.
    pub device: DeviceRecord,
    /// Its user.
    pub user: UserRecord,
    /// The body exactly as signed.
    pub body: Bytes,
}

/// A signed request from an active user on an active device (all of §2.2).
#[derive(Debug)]
pub struct Authed(pub SignedRequest);

impl SignedRequest {
    /// Parses the body as JSON (400 with the parser's message otherwise).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        parse_json(&self.body)
    }
}

/// Parses `body` as JSON; 400 with the parser's message otherwise.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("the request needs a JSON body"));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// The client's address from the TLS listener, if known.
pub fn client_addr(req_parts: &axum::http::request::Parts) -> Option<String> {
    req_parts
        .extensions
        .get::<ConnectInfo<PeerAddr>>()
        .map(|ConnectInfo(PeerAddr(addr))| addr.to_string())
}

/// The client's IP address, without the port.
pub fn client_ip(req_parts: &axum::http::request::Parts) -> Option<std::net::IpAddr> {
    req_parts
        .extensions
        .get::<ConnectInfo<PeerAddr>>()
        .map(|ConnectInfo(PeerAddr(addr))| addr.ip())
}

/// Buffers the body (at most 1 MiB, else 413) and checks that a non-empty
/// body is declared as JSON (else 415). Returns the parts and the bytes.
pub async fn read_body(
    req: Request,
    state: &AppState,
) -> Result<(axum::http::request::Parts, Bytes), ApiError> {
    let (parts, body) = req.into_parts();
    let headers = parts.headers.clone();
    let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
        .await
        .map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::bad_request("the request body could not be read")
            }
        })?;
    if !bytes.is_empty() && !is_json(&headers) {
        return Err(ApiError::UnsupportedMediaType);
    }
    Ok((parts, bytes))
}

/// The `reason` query parameter (PROTOCOL.md §7): why an administrator
/// acts, in their words (a ticket id). Part of the signed path and query, so
/// nobody on the way can change it.
fn reason(uri: &axum::http::Uri) -> Result<Option<String>, ApiError> {
    let Some(query) = uri.query() else {
        return Ok(None);
    };
    let Some((_, reason)) = form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "reason")
    else {
        return Ok(None);
    };
    if !irm_core::protocol::valid_reason(&reason) {
        return Err(ApiError::bad_request(format!(
            "reason must be at most {} characters with no control characters",
            irm_core::protocol::MAX_REASON_LEN
        )));
    }
    Ok((!reason.is_empty()).then(|| reason.into_owned()))
}

impl FromRequest<AppState> for SignedRequest {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = read_body(req, state).await?;
        let addr = client_addr(&parts);
        match verify(&parts, &body, state, addr.clone()).await {
            Ok(mut signed) => {
                signed.actor.reason = reason(&parts.uri)?;
                Ok(signed)
            }
            Err(Failure::Internal(e)) => Err(e),
            Err(Failure::Credential { message, claimed }) => {
                // PROTOCOL.md §2.2: every 401 is audited.
                let mut draft =
                    AuditDraft::new(state.clock.now_ms(), "auth.failed", Outcome::Failed)
                        .deny(DenyReason::CredentialInvalid);
                draft.client_addr = addr;
                draft.detail = Some(format!(
                    "{} {} device={} why={message}",
                    parts.method,
                    parts.uri.path(),
                    claimed.as_deref().unwrap_or("-"),
                ));
                tracing::info!(
                    device = claimed.as_deref().unwrap_or("-"),
                    why = message,
                    "request refused: credential invalid"
                );
                state
                    .blocking(move |store| store.append_audit(draft))
                    .await??;
                Err(ApiError::Credential(message))
            }
        }
    }
}

impl FromRequest<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (method, path) = (req.method().clone(), req.uri().path().to_owned());
        let signed = SignedRequest::from_request(req, state).await?;
        // PROTOCOL.md §2.2 step 5: for every request, the user and the device are active.
        let reason = if !signed.user.active {
            Some(DenyReason::UserSuspended)
        } else if !signed.device.active {
            Some(DenyReason::DeviceRevoked)
        } else {
            None
        };
        if let Some(reason) = reason {
            let draft = signed
                .actor
                .draft(state.clock.now_ms(), "auth.refused", Outcome::Denied)
                .deny(reason)
                .detail(format!("{method} {path}"));
            state
                .blocking(move |store| store.append_audit(draft))
                .await??;
            return Err(ApiError::deny(reason));
        }
        Ok(Self(signed))
    }
}

enum Failure {
    Credential {
        message: &'static str,
        claimed: Option<String>,
    },
    Internal(ApiError),
}

async fn verify(
    parts: &axum::http::request::Parts,
    body: &Bytes,
    state: &AppState,
    client_addr: Option<String>,
) -> Result<SignedRequest, Failure> {
    let fail = |message, claimed: Option<&str>| Failure::Credential {
        message,
        claimed: claimed.map(str::to_owned),
    };
    // 1. The header parses and names a known device.
    let header = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| fail("the request is not signed (no Authorization header)", None))?
        .to_str()
        .map_err(|_| fail("the Authorization header is not text", None))?;
    let signature = RequestSignature::parse(header)
        .map_err(|_| fail("the Authorization header is malformed", None))?;
    let device_id = signature.device_id.clone();
    // The generation is read before the records, so a change committed in
    // between leaves the entry already out of date.
    let generation = state.store.state_generation();
    let found = match state.devices.get(&device_id, generation) {
        Some(hit) => Some(hit),
        None => {
            let lookup_id = device_id.clone();
            let found = state
                .blocking(move |store| store.device_with_user(&lookup_id))
                .await
                .map_err(Failure::Internal)?
                .map_err(|e| Failure::Internal(e.into()))?;
            if let Some((device, user)) = &found {
                state.devices.put(generation, device, user);
            }
            found
        }
    };
    let Some((device, user)) = found else {
        return Err(fail(
            "unknown device; enroll this device again",
            Some(&device_id),
        ));
    };
    // 2. The timestamp is within the window.
    let now = state.clock.now_secs();
    if now.abs_diff(signature.timestamp_unix) > MAX_CLOCK_SKEW_SECS {
        return Err(fail(
            "the request time is more than 300 s from the server's clock; check this computer's clock",
            Some(&device_id),
        ));
    }
    // 3. Not a replay.
    if state.nonces.seen(&device_id, &signature.nonce, now) {
        return Err(fail("the request was replayed", Some(&device_id)));
    }
    // 4. The signature verifies over exactly what was received.
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    if !signature.verify(
        &device.signing_key,
        parts.method.as_str(),
        path_and_query,
        body,
    ) {
        return Err(fail(
            "the request signature does not verify",
            Some(&device_id),
        ));
    }
    // Remembered only once verified, so forged requests cannot fill the cache.
    if !state.nonces.remember(&device_id, &signature.nonce, now) {
        return Err(fail("the request was replayed", Some(&device_id)));
    }
    Ok(SignedRequest {
        actor: Actor {
            user: user.name.clone(),
            device: device.id.clone(),
            client_addr,
            reason: None,
        },
        device,
        user,
        body: body.clone(),
    })
}
