//! What enrolled people and their devices call: enrollment, the server key,
//! grants and renewals, usage events and online file registration
//! (PROTOCOL.md §3–§6). Parsing and cryptography happen here; the decision
//! and the records are the decision module's and the store's.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use irm_core::protocol::{
    DenyBody, DenyReason, EncodedHeader, EnrollRequest, EnrollResponse, ErrorBody, EventRequest,
    ExportReceipt, ExportReport, FileInfo, GrantRequest, GrantResponse, MAX_EXPORT_ROWS,
    RecipientCheck, RecipientCheckRequest, RegisterFileRequest, ServerKeyInfo, UsageAction,
    canary_count,
};
use irm_core::{
    ContentKey, DevicePublicKey, KeyId, RewrapContext, SealedHeader, enrollment_proof_message,
    rewrap, verify_signature,
};

use crate::auth::{
    Authed, SignedRequest, client_addr, client_ip, enroll_throttle, parse_json, read_body,
};
use crate::codes;
use crate::error::StoreError;
use crate::error::{ApiError, Refusal};
use crate::grant::facts::{OpenedKeys, grant_facts, header_digest};
use crate::state::AppState;
use crate::store::{
    DeviceRecord, EnrollInput, EventInput, GrantInput, GrantOutcome, RegisterInput,
};

/// Longest device label, file name and event detail accepted.
const MAX_LABEL: usize = 256;
const MAX_FILE_NAME: usize = 1024;

fn decode_fixed<const N: usize>(text: &str, what: &str) -> Result<[u8; N], ApiError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| ApiError::bad_request(format!("{what} is not base64url without padding")))?;
    <[u8; N]>::try_from(bytes.as_slice())
        .map_err(|_| ApiError::bad_request(format!("{what} must be {N} bytes")))
}

/// Random 16 bytes as 32 hex digits (device and grant ids).
fn random_id() -> Result<String, ApiError> {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|e| ApiError::Internal(e.to_string().into()))?;
    Ok(hex::encode(id))
}

/// Decodes and parses the header of a request (400 on any problem);
/// returns the header and the digest of its bytes for the unwrap cache.
fn parse_header(encoded: &EncodedHeader) -> Result<(SealedHeader, [u8; 32]), ApiError> {
    let (header, bytes) = encoded
        .decode()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok((header, header_digest(&bytes)))
}

fn open_wraps(
    state: &AppState,
    header: &SealedHeader,
    digest: &[u8; 32],
) -> (Vec<(KeyId, bool)>, OpenedKeys) {
    crate::grant::facts::open_wraps(
        header,
        |id| state.keys.get(id),
        Some((&state.unwraps, digest)),
    )
}

/// `GET /v1/server-key`: the current key, for online sealing.
#[utoipa::path(get, path = "/v1/server-key", tag = "files",
    responses((status = 200, body = ServerKeyInfo)))]
pub(crate) async fn server_key(
    State(state): State<AppState>,
) -> Result<Json<ServerKeyInfo>, ApiError> {
    let app = state.clone();
    let key = state.blocking(move |_| app.current_key()).await??;
    Ok(Json(state.key_info(&key)))
}

/// `POST /v1/enroll` (PROTOCOL.md §3.2).
#[utoipa::path(post, path = "/v1/enroll", tag = "enrollment",
    request_body = EnrollRequest,
    responses((status = 200, body = EnrollResponse),
        (status = 400, body = ErrorBody),
        (status = 403, body = DenyBody),
        (status = 429, body = ErrorBody, description = "too many wrong enrollments from this address; see Retry-After")))]
pub(crate) async fn enroll(
    State(state): State<AppState>,
    req: Request,
) -> Result<Json<EnrollResponse>, ApiError> {
    let (parts, body) = read_body(req, &state).await?;
    // PROTOCOL.md §3.1: an address past its wrong tries waits, unchecked, so
    // that no code is charged meanwhile.
    let address = client_ip(&parts);
    if let Some(address) = address
        && let Some(retry_after_secs) = state
            .enroll_throttle
            .wait_secs(address, state.clock.now_ms())
    {
        // Not logged here: an address that keeps sending would fill the log.
        return Err(ApiError::TooManyAttempts { retry_after_secs });
    }
    let request: EnrollRequest = parse_json(&body)?;
    if request.device_name.is_empty()
        || request.device_name.len() > MAX_LABEL
        || request.device_name.chars().any(char::is_control)
    {
        return Err(ApiError::bad_request(
            "device_name must be 1 to 256 printable characters",
        ));
    }
    let public_key = decode_fixed::<32>(&request.device_public_key, "device_public_key")?;
    let signing_key = decode_fixed::<32>(&request.signing_public_key, "signing_public_key")?;
    let proof = decode_fixed::<64>(&request.proof, "proof")?;
    // FORMAT.md §4.3: a low-order device key would make every rewrap fail; refuse it now.
    let probe = RewrapContext {
        file_id: irm_core::FileId([0; 16]),
        header_hash: irm_core::HeaderHash([0; 32]),
        device_id: [0; 16],
        lease_expires_at_unix: 0,
    };
    if rewrap(
        &ContentKey::from_bytes([0; 32]),
        &DevicePublicKey::from_bytes(public_key),
        &probe,
    )
    .is_err()
    {
        return Err(ApiError::bad_request(
            "device_public_key is not a usable X25519 key",
        ));
    }
    let proof_ok = verify_signature(
        &signing_key,
        &enrollment_proof_message(&request.user, &request.code, &request.device_public_key),
        &proof,
    );
    let device_id = random_id()?;
    let now_ms = state.clock.now_ms();
    let input = EnrollInput {
        user: request.user.clone(),
        code_hash: codes::hash(&request.code),
        proof_ok,
        device: DeviceRecord {
            id: device_id.clone(),
            user: request.user.clone(),
            name: request.device_name.clone(),
            public_key,
            signing_key,
            active: true,
            enrolled_at: now_ms / 1000,
        },
        client_addr: client_addr(&parts),
    };
    let outcome = state
        .blocking(move |store| store.enroll(input, now_ms))
        .await??;
    if let (Err(Refusal::Deny(DenyReason::EnrollmentCodeInvalid)), Some(address)) =
        (&outcome, address)
        && state.enroll_throttle.failed(address, now_ms)
    {
        tracing::warn!(
            %address,
            minutes = enroll_throttle::WINDOW_SECS / 60,
            "too many wrong enrollment codes from this address: its enrollments are refused unchecked until its window ends"
        );
    }
    let user = outcome?;
    tracing::info!(user = %user.name, device = %device_id, "device enrolled");
    let app = state.clone();
    let key = state.blocking(move |_| app.current_key()).await??;
    Ok(Json(EnrollResponse {
        device_id,
        user: user.name,
        roles: user.roles,
        groups: user.groups,
        server_key: state.key_info(&key),
    }))
}

/// `POST /v1/grant` (PROTOCOL.md §4): also renewals.
#[utoipa::path(post, path = "/v1/grant", tag = "grants",
    request_body = GrantRequest,
    responses((status = 200, body = GrantResponse),
        (status = 400, body = ErrorBody),
        (status = 401, body = DenyBody),
        (status = 403, body = DenyBody)),
    security(("device_signature" = [])))]
pub(crate) async fn grant(
    State(state): State<AppState>,
    signed: SignedRequest,
) -> Result<Json<GrantResponse>, ApiError> {
    let request: GrantRequest = signed.json()?;
    let (header, digest) = parse_header(&request.header)?;
    let grant_id = random_id()?;
    // The facts (key-server unwraps, from the cache after a file's first
    // grant) and the rewrap below are CPU work of tens of microseconds; the
    // decision and its audit record go to the store's writer, whose group
    // commit is awaited without holding a thread.
    let (facts, content_keys) = grant_facts(
        &signed.actor.user,
        &header,
        |id| state.keys.get(id),
        Some((&state.unwraps, &digest)),
    );
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let now_ms = state.clock.now_ms();
    // Before the decision: a change committed after this point may not have
    // been seen by it, so the device's push channel reports it (§13).
    let watch_cursor = state.store.changes().cursor();
    state.store.grant(
        GrantInput {
            actor: signed.actor.clone(),
            grant_id: grant_id.clone(),
            facts,
            renew: request.renew,
            lease_limit_secs: state.settings.lease_limit_secs,
        },
        now_ms,
        Box::new(move |outcome| {
            let _ = done_tx.send(outcome);
        }),
    );
    let outcome = done_rx
        .await
        .map_err(|_| ApiError::from(StoreError::WriterGone))??;
    let response = match outcome {
        GrantOutcome::Denied(reason) => Err(reason),
        GrantOutcome::Granted { decision, notices } => {
            let content_key = content_keys
                .iter()
                .find(|(id, _)| *id == decision.key_id)
                .map(|(_, key)| key)
                .ok_or_else(|| ApiError::Internal("granted without a content key".into()))?;
            let mut device_id = [0u8; 16];
            hex::decode_to_slice(&signed.device.id, &mut device_id)
                .map_err(|_| ApiError::Internal("stored device id is not hex".into()))?;
            // FORMAT.md §4.5: bound to file, header hash, device and lease end.
            let context = RewrapContext {
                file_id: header.file_id(),
                header_hash: *header.hash(),
                device_id,
                lease_expires_at_unix: decision.lease_expires_at,
            };
            let wrapped = rewrap(
                content_key,
                &DevicePublicKey::from_bytes(signed.device.public_key),
                &context,
            )
            .map_err(|e| ApiError::Internal(Box::new(e)))?;
            let mut wire = Vec::with_capacity(80);
            wire.extend_from_slice(&wrapped.ephemeral_public);
            wire.extend_from_slice(&wrapped.ciphertext);
            Ok(GrantResponse {
                file_id: header.file_id().to_string(),
                user: signed.actor.user.clone(),
                display_name: signed.user.display_name.clone(),
                device_id: signed.device.id.clone(),
                rights: decision.rights,
                watermark_required: decision.watermark_required,
                server_time: now_ms / 1000,
                lease_expires_at: decision.lease_expires_at,
                not_after: decision.not_after,
                wrapped_key: URL_SAFE_NO_PAD.encode(wire),
                notices,
                checkpoint: state.published.latest(),
                watch_cursor: Some(watch_cursor),
                // PROTOCOL.md §7.8: 60 of the grant id's random bits.
                watermark_id: irm_core::protocol::watermark_id(&grant_id),
                grant_id,
            })
        }
    };
    match response {
        Ok(grant) => {
            state.metrics.grant(request.renew);
            tracing::info!(user = %grant.user, device = %grant.device_id, file = %grant.file_id, grant = %grant.grant_id, renew = request.renew, "granted");
            Ok(Json(grant))
        }
        Err(reason) => {
            tracing::info!(
                reason = reason.as_str(),
                renew = request.renew,
                "grant denied"
            );
            // PROTOCOL.md §12: a held or suspended person is told whom to call.
            let contact = matches!(
                reason,
                DenyReason::StepUpRequired | DenyReason::UserSuspended
            )
            .then(|| state.settings.contact_for(&signed.user.groups))
            .flatten();
            Err(match contact {
                Some(contact) => ApiError::DeniedCall {
                    reason,
                    contact: contact.to_owned(),
                },
                None => ApiError::deny(reason),
            })
        }
    }
}

/// The checks every usage report's fields pass before the store (`400`).
fn check_report(grant_id: &str, detail: Option<&String>) -> Result<(), ApiError> {
    if grant_id.len() != 32 || !grant_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request("grant_id must be 32 hex digits"));
    }
    if detail.is_some_and(|d| d.chars().count() > MAX_LABEL || d.chars().any(char::is_control)) {
        return Err(ApiError::bad_request(
            "detail must be at most 256 printable characters",
        ));
    }
    Ok(())
}

/// `POST /v1/events` (PROTOCOL.md §5).
#[utoipa::path(post, path = "/v1/events", tag = "grants",
    request_body = EventRequest,
    responses((status = 204), (status = 403, body = DenyBody), (status = 404, body = ErrorBody)),
    security(("device_signature" = [])))]
pub(crate) async fn event(
    State(state): State<AppState>,
    Authed(signed): Authed,
) -> Result<StatusCode, ApiError> {
    let request: EventRequest = signed.json()?;
    check_report(&request.grant_id, request.detail.as_ref())?;
    let input = EventInput {
        actor: signed.actor,
        grant_id: request.grant_id.to_ascii_lowercase(),
        action: request.action,
        detail: request.detail,
        rows: request.rows,
        take_out_rows: state.settings.take_out_rows,
        canaries: None,
    };
    let now_ms = state.clock.now_ms();
    state
        .blocking(move |store| store.usage_event(input, now_ms))
        .await???;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/exports` (PROTOCOL.md §7.8): the `export` usage report of a
/// customer list, which under an approved take-out also issues the list's
/// canaries, recorded with the report in one transaction.
#[utoipa::path(post, path = "/v1/exports", tag = "grants",
    request_body = ExportReport,
    responses((status = 200, body = ExportReceipt), (status = 400, body = ErrorBody),
        (status = 403, body = DenyBody), (status = 404, body = ErrorBody)),
    security(("device_signature" = [])))]
pub(crate) async fn report_export(
    State(state): State<AppState>,
    Authed(signed): Authed,
) -> Result<Json<ExportReceipt>, ApiError> {
    let request: ExportReport = signed.json()?;
    check_report(&request.grant_id, request.detail.as_ref())?;
    if request.rows > MAX_EXPORT_ROWS {
        return Err(ApiError::bad_request(format!(
            "rows must be at most {MAX_EXPORT_ROWS}"
        )));
    }
    // Drawn before the transaction (randomness and the pools are the
    // server's); the store keeps them only if the export spends an
    // approved take-out.
    let order = crate::canary::draw(
        random_id()?,
        request.rows,
        canary_count(request.rows),
        &state.settings.canaries,
    )
    .map_err(|e| ApiError::Internal(e.to_string().into()))?;
    let input = EventInput {
        actor: signed.actor,
        grant_id: request.grant_id.to_ascii_lowercase(),
        action: UsageAction::Export,
        detail: request.detail,
        rows: None,
        take_out_rows: state.settings.take_out_rows,
        canaries: Some(order),
    };
    let now_ms = state.clock.now_ms();
    let receipt = state
        .blocking(move |store| store.usage_event(input, now_ms))
        .await???;
    Ok(Json(receipt))
}

/// `POST /v1/recipients` (PROTOCOL.md §6.1): which of a policy's
/// recipients name no user or group, with what was probably meant. Any
/// enrolled person may ask (they seal files for these names).
#[utoipa::path(post, path = "/v1/recipients", tag = "files",
    request_body = RecipientCheckRequest,
    responses((status = 200, body = RecipientCheck), (status = 400, body = ErrorBody), (status = 401, body = DenyBody)),
    security(("device_signature" = [])))]
pub(crate) async fn check_recipients(
    State(state): State<AppState>,
    Authed(signed): Authed,
) -> Result<Json<RecipientCheck>, ApiError> {
    let request: RecipientCheckRequest = signed.json()?;
    if request.recipients.len() > 1000 {
        return Err(ApiError::bad_request("at most 1,000 recipients at once"));
    }
    let (users, groups) = state.blocking(|store| store.directory()).await??;
    Ok(Json(RecipientCheck {
        unknown: crate::recipients::unknown(&request.recipients, &users, &groups),
    }))
}

/// `POST /v1/files` (PROTOCOL.md §6).
#[utoipa::path(post, path = "/v1/files", tag = "files",
    request_body = RegisterFileRequest,
    responses((status = 200, body = FileInfo), (status = 403, body = DenyBody), (status = 409, body = ErrorBody)),
    security(("device_signature" = [])))]
pub(crate) async fn register_file(
    State(state): State<AppState>,
    Authed(signed): Authed,
) -> Result<Json<FileInfo>, ApiError> {
    let request: RegisterFileRequest = signed.json()?;
    if request
        .file_name
        .as_ref()
        .is_some_and(|n| n.len() > MAX_FILE_NAME || n.chars().any(char::is_control))
    {
        return Err(ApiError::bad_request(
            "file_name must be at most 1024 bytes without control characters",
        ));
    }
    let (header, digest) = parse_header(&request.header)?;
    // The unwraps are CPU work outside the transaction; which key they make
    // the file's, if any, is decided inside it (`decision::key_for`).
    let (bindings, _) = open_wraps(&state, &header, &digest);
    let input = RegisterInput {
        actor: signed.actor,
        file_id: header.file_id(),
        header_keys: header.key_access().iter().map(|e| e.key_id).collect(),
        bindings,
        policy: header.policy().clone(),
        file_name: request.file_name,
    };
    let now_ms = state.clock.now_ms();
    let info = state
        .blocking(move |store| store.register_file(input, now_ms))
        .await???;
    Ok(Json(info))
}
