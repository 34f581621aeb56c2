//! Administration and audit endpoints (PROTOCOL.md §7). Each handler turns
//! the request into an [`AdminOp`]; the store checks the role inside the
//! same transaction that applies the change and writes the audit record, so
//! a refused call is audited exactly like a done one. Nothing here opens a
//! file: the admin role grants management, never content.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use irm_core::protocol::{
    AccountReview, AddMemberRequest, AuditCheckpoint, AuditRecord, AuditVerifyReport,
    CreateGroupRequest, CreateUserRequest, DEFAULT_DORMANT_DAYS, DataOwner, DataOwners, DenyBody,
    DeviceInfo, DigestSentRequest, EnrollmentCode, ErrorBody, FileInfo, KeyInfo, KeyState,
    MAX_DIGEST_DELIVERIES, MAX_DORMANT_DAYS, RequestAnswer, RestrictRequest, ReviewDoneRequest,
    Role, ServerKeyInfo, UserInfo, valid_name,
};
use zeroize::Zeroizing;

use crate::auth::Authed;
use crate::codes;
use crate::datadir::create_kas_key;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{AdminOp, AdminOutput, CodeIssue, FileChange, KeyRecord, NewUser};

/// Runs `op` for the caller; refusals and store failures become `ApiError`.
pub(super) async fn run(
    state: &AppState,
    signed: &crate::auth::SignedRequest,
    op: AdminOp,
) -> Result<AdminOutput, ApiError> {
    let actor = signed.actor.clone();
    let now_ms = state.clock.now_ms();
    let action = op.action();
    let out = state
        .blocking(move |store| store.admin(&actor, op, now_ms))
        .await???;
    tracing::info!(user = %signed.actor.user, action, "admin operation");
    Ok(out)
}

pub(super) fn unexpected() -> ApiError {
    ApiError::Internal("the store answered with an unexpected shape".into())
}

fn check_name(name: &str, what: &str) -> Result<(), ApiError> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{what} must be 1 to 64 of a-z A-Z 0-9 . _ -"
        )))
    }
}

/// A fresh code issued by `signed`'s user (an approval replaces its origin
/// and second half with the request's).
fn new_code(
    state: &AppState,
    signed: &crate::auth::SignedRequest,
) -> Result<(Zeroizing<String>, CodeIssue), ApiError> {
    let origin = format!("issued_by={}", signed.actor.user);
    codes::issue(state.clock.now_secs(), origin)
        .map_err(|e| ApiError::Internal(e.to_string().into()))
}

/// 202 and the request an operation that waits for approval filed
/// (PROTOCOL.md §7.2), with the requester's half of the code it will issue.
pub(super) fn filed(out: AdminOutput, code: Option<&str>) -> Result<Response, ApiError> {
    match out {
        AdminOutput::Filed(request) => {
            let answer = RequestAnswer {
                code_half: code
                    .filter(|_| request.action.issues_code())
                    .map(|c| codes::first_half(c).to_owned()),
                code_expires_at: None,
                request,
            };
            Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
        }
        _ => Err(unexpected()),
    }
}

#[utoipa::path(post, path = "/v1/admin/users", tag = "admin",
    request_body = CreateUserRequest,
    responses((status = 202, body = RequestAnswer), (status = 200, body = EnrollmentCode), (status = 403, body = DenyBody), (status = 409, body = ErrorBody)),
    security(("device_signature" = [])))]
pub(crate) async fn create_user(
    State(state): State<AppState>,
    Authed(signed): Authed,
) -> Result<Response, ApiError> {
    let request: CreateUserRequest = signed.json()?;
    check_name(&request.name, "name")?;
    if request.display_name.len() > 256 || request.display_name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "display_name must be at most 256 printable characters",
        ));
    }
    let mut groups = Vec::with_capacity(request.groups.len());
    for group in &request.groups {
        let group = group.strip_prefix('@').unwrap_or(group);
        check_name(group, "a group name")?;
        groups.push(group.to_owned());
    }
    let mut roles = if request.roles.is_empty() {
        vec![Role::User]
    } else {
        request.roles
    };
    roles.sort();
    roles.dedup();
    let (code, issue) = new_code(&state, &signed)?;
    let op = AdminOp::CreateUser(NewUser {
        display_name: if request.display_name.is_empty() {
            request.name.clone()
        } else {
            request.display_name
        },
        name: request.name,
        roles,
        groups,
        code: issue,
    });
    match run(&state, &signed, op).await? {
        // A new server's second administrator: the whole code, to one person.
        out @ AdminOutput::CodeStored { .. } => out
            .code(code.to_string())
            .map(|c| Json(c).into_response())
            .ok_or_else(unexpected),
        out => filed(out, Some(&code)),
    }
}

#[utoipa::path(get, path = "/v1/admin/users", tag = "admin",
    responses((status = 200, body = Vec<UserInfo>)), security(("device_signature" = [])))]
pub(crate) async fn list_users(
    State(state): State<AppState>,
    Authed(signed): Authed,
) -> Result<Json<Vec<UserInfo>>, ApiError> {
    match run(&state, &signed, AdminOp::ListUsers).await? {
        AdminOutput::Users(users) => Ok(Json(users)),
        _ => Err(unexpected()),
    }
}

#[utoipa::path(post, path = "/v1/admin/users/{name}/suspend", tag = "admin",
    params(("name" = String, Path)), responses((status = 200, body = UserInfo), (status = 404, body = ErrorBody)),
    security(("device_signature" = [])))]
pub(crate) async fn suspend_user(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Authed(signed): Authed,
) -> Result<Json<UserInfo>, ApiError> {
    match run(
        &state,
        &signed,
        AdminOp::SetUserActive {
            name,
            active: false,
        },
    )
    .await?
    {
        AdminOutput::User(user) => Ok(Json(user)),
        _ => Err(unexpected()),
    }
}

#[utoipa::path(post, path = "/v1/admin/users/{name}/restore", tag = "admin",
    params(("name" = String, Path)), responses((status = 202, body = RequestAnswer), (status = 404, body = ErrorBody)),
    security(("device_signature" = [])))]
pub(crate) async fn restore_user(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Authed(signed): Authed,
) -> Result<Response, ApiError> {
    let op = AdminOp::SetUserActive { name, active: true };
    filed(run(&state, &signed, op).await?, None)
}

/// `POST /v1/admin/users/{name}/release` (PROTOCOL.md §12): filed for
/// approval; when approved, the detection hold on the person is lifted.
#[utoipa::path(post, path = "/v1/admin/users/{name}/release", tag = "admin",
    params(("name" = String, Path)), responses((status = 202, body = RequestAnswer), (status = 404, body = ErrorBody)),
    security(("device_signature" = [])))]
pub(crate) async fn release_user(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Authed(signed): Authed,
) -> Result<Response, ApiError> {
    let op = AdminOp::ReleaseHold { name };
    filed(run(&state, &signed, op).await?, None)
}

#[utoipa::path(post, path = "/v1/admin/users/{name}/code", tag = "admin",
    params(("name" = String, Path)), responses((status = 202, body = RequestAnswer), (status = 404, body = ErrorBody)),
    security(("device_signature" = [])))]
pub(crate) async fn new_code_for(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Authed(signed): Authed,
) -> Result<Response, ApiError> {
    let (code, issue) = new_code(&state, &signed)?;
    let op = AdminOp::NewCode { name, code: issue };
    filed(run(&state, &signed, op).await?, Some(&code))
}

#[utoipa::path(post, path = "/v1/admin/break-glass", tag = "admin",
    responses((status = 202, body = RequestAnswer), (status = 403, body = DenyBody)),
    security(("device_signature" = [])))]
pub(crate) async fn issue_break_glass(
    State(state): State<AppState>,
    Authed(signed): Authed,
) -> Result<Response, ApiError> {
    let (code, issue) = new_code(&state, &signed)?;
    let op = AdminOp::IssueBreakGlass { code: issue };
    filed(run(&state, &signed, op).await?, Some(&code))
}

#[utoipa::path(post, path = "/v1/admin/groups", tag = "admin",
    request_body = CreateGroupRequest, responses((status = 204), (status = 409, body = ErrorBody)),
    security(("device_signature" = [])))]
pub(crate) async fn create_group(
    State(state): State<AppState>,
    Authed(signed): Authed,
) -> Result<StatusCode, ApiError> {
    let request: CreateGroupRequest = signed.json()?;
    let name = request
        .name
        .strip_prefix('@')
        .unwrap_or(&request.name)
        .to_owned();
    check_name(&name, "name")?;
    run(&state, &signed, AdminOp::CreateGroup { name }).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/admin/groups/{name}/members", tag = "admin",
    params(("name" = String, Path)), request_body = AddMemberRequest,
    responses((status = 202, body = RequestAnswer), (status = 404, body = ErrorBody)),
    security(("device_signature" = [])))]
pub(crate) async fn add_member(
    State(state): State<AppState>,
    Path(group): Path<String>,
    Authed(signed): Authed,
) -> Result<Response, ApiError> {
    let request: AddMemberRequest = signed.json()?;
    let op = AdminOp::AddMember {
        group: group.strip_prefix('@').unwrap_or(&group).to_owned(),
        user: request.user,
    };
    filed(run(&state, &signed, op).await?, None)
}

#[utoipa::path(delete, path = "/v1/admin/groups/{name}/members/{user}", tag = "admin",
    params(("name" = String, Path), ("user" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("device_signature" = [])))]
pub(crate) async fn remove_member(
    State(state): State<AppState>,
    Path((group, user)): Path<(String, String)>,
    Authed(signed): Authed,
) -> Result<StatusCode, ApiError> {
    run(&state, &signed, AdminOp::RemoveMember { group, user }).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/admin/devices", tag = "admin",
    responses((status = 200, body = Vec<DeviceInfo>)), security(("device_signature" = [])))]
pub(crate) async fn list_devices(
    State(state): State<AppState>,
    Authed(signed): Authed,
) -> Result<Json<Vec<DeviceInfo>>, ApiError> {
    match run(&state, &signed, AdminOp::ListDevices).await? {
        AdminOutput::Devices(devices) => Ok(Json(devices)),
        _ => Err(unexpected()),
    }
}

#[utoipa::path(post, path = "/v1/admin/devices/{id}/revoke", tag = "admin",
    params(("id" = String, Path)), responses((status = 200, body = DeviceInfo), (status = 404, body = ErrorBody)),
    security(("device_signature" = [])))]
pub(crate) async fn revoke_device(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Authed(signed): Authed,
) -> Result<Json<DeviceInfo>, ApiError> {
    match run(
        &state,
        &signed,
        AdminOp::RevokeDevice {
            id: id.to_ascii_lowercase(),
        },
    )
    .await?
    {
        AdminOutput::Device(device) => Ok(Json(device)),
        _ => Err(unexpected()),
    }
}

#[utoipa::path(get, path = "/v1/admin/files", tag = "admin",
    responses((status = 200, body = Vec<FileInfo>)), security(("device_signature" = [])))]
pub(crate) async fn list_files(
    State(state): State<AppState>,
    Authed(signed): Authed,
) -> Result<Json<Vec<FileInfo>>, ApiError> {
    match run(&state, &signed, AdminOp::ListFiles).await? {
        AdminOutput::Files(files) => Ok(Json(files)),
        _ => Err(unexpected()),
    }
}

/// Unknown ids are accepted (PROTOCOL.md §7: a control row is created), so
/// only a well-formed file id may name one, in its canonical form.
fn file_id(id: &str) -> Result<String, ApiError> {
    Ok(id
        .parse::<irm_core::FileId>()
        .map_err(|_| ApiError::bad_request("a file id is 32 hex digits"))?
        .to_string())
}

async fn change_file(
    state: &AppState,
    signed: &crate::auth::SignedRequest,
    id: String,
    change: FileChange,
) -> Result<Json<FileInfo>, ApiError> {
    let id = file_id(&id)?;
    match run(state, signed, AdminOp::File { id, change }).await? {
        AdminOutput::File(file) => Ok(Json(file)),
        _ => Err(unexpected()),
    }
}

#[utoipa::path(post, path = "/v1/admin/files/{id}/revoke", tag = "admin",
    params(("id" = String, Path)), responses((status = 200, body = FileInfo), (status = 400, body = ErrorBody)),
    security(("device_signature" = [])))]
pub(crate) async fn revoke_file(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Authed(signed): Authed,
) -> Result<Json<FileInfo>, ApiError> {
    change_file(&state, &signed, id, FileChange::Revoke).await
}

#[utoipa::path(post, path = "/v1/admin/files/{id}/restore", tag = "admin",
    params(("id" = String, Path)), responses((status = 202, body = RequestAnswer), (status = 400, body = ErrorBody)),
    security(("device_signature" = [])))]
pub(crate) async fn restore_file(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Authed(signed): Authed,
) -> Result<Response, ApiError> {
    let op = AdminOp::File {
        id: file_id(&id)?,
        change: FileChange::Restore,
    };
    filed(run(&state, &signed, op).await?, None)
}

#[utoipa::path(post, path = "/v1/admin/files/{id}/expire", tag = "admin",
    params(("id" = String, Path)), responses((status = 200, body = FileInfo), (status = 400, body = ErrorBody)),
    security(("device_signature" = [])))]
pub(crate) async fn expire_file(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Authed(signed): Authed,
) -> Result<Json<FileInfo>, ApiError> {
    change_file(&state, &signed, id, FileChange::Expire).await
}

#[utoipa::path(post, path = "/v1/admin/files/{id}/restrict", tag = "admin",
    params(("id" = String, Path)), request_body = RestrictRequest,
    responses((status = 200, body = FileInfo), (status = 400, body = ErrorBody)),
    security(("device_signature" = [])))]
pub(crate) async fn restrict_file(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Authed(signed): Authed,
) -> Result<Json<FileInfo>, ApiError> {
    let request: RestrictRequest = signed.json()?;
    change_file(&state, &signed, id, FileChange::Restrict(request.remove)).await
}

#[utoipa::path(get, path = "/v1/admin/keys", tag = "admin",
    responses((status = 200, body = Vec<KeyInfo>)), security(("device_signature" = [])))]
pub(crate) async fn list_keys(
    State(state): State<AppState>,
    Authed(signed): Authed,
) -> Result<Json<Vec<KeyInfo>>, ApiError> {
    match run(&state, &signed, AdminOp::ListKeys).await? {
        AdminOutput::Keys(keys) => Ok(Json(
            keys.iter()
                .map(|k| KeyInfo {
                    key: state.key_info(k),
                    state: k.state,
                })
                .collect(),
        )),
        _ => Err(unexpected()),
    }
}

#[utoipa::path(post, path = "/v1/admin/keys/rotate", tag = "admin",
    responses((status = 200, body = ServerKeyInfo), (status = 403, body = DenyBody)),
    security(("device_signature" = [])))]
pub(crate) async fn rotate_key(
    State(state): State<AppState>,
    Authed(signed): Authed,
) -> Result<Json<ServerKeyInfo>, ApiError> {
    let now = state.clock.now_secs();
    // The private half is in the keystore before the database names the
    // key, so the current key can always unwrap. A caller without the role
    // gets no keystore entry.
    let record = if AdminOp::ListKeys.allowed(&signed.user.roles) {
        let vault = state.vault.clone();
        let keys = state.keys.clone();
        state
            .blocking(move |_| -> Result<KeyRecord, ApiError> {
                let (secret, record) = create_kas_key(&vault, KeyState::Current, now)
                    .map_err(|e| ApiError::Internal(Box::new(e)))?;
                keys.insert(secret);
                Ok(record)
            })
            .await??
    } else {
        let secret =
            irm_core::KasSecretKey::generate().map_err(|e| ApiError::Internal(Box::new(e)))?;
        KeyRecord {
            key_id: secret.key_id(),
            public_key: secret.public_key(),
            state: KeyState::Current,
            created_at: now,
        }
    };
    match run(&state, &signed, AdminOp::RotateKey(record)).await? {
        AdminOutput::Key(key) => {
            tracing::info!(key = %key.key_id, "key rotated");
            Ok(Json(state.key_info(&key)))
        }
        _ => Err(unexpected()),
    }
}

#[utoipa::path(post, path = "/v1/admin/keys/{key_id}/retire", tag = "admin",
    params(("key_id" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("device_signature" = [])))]
pub(crate) async fn retire_key(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Authed(signed): Authed,
) -> Result<StatusCode, ApiError> {
    run(
        &state,
        &signed,
        AdminOp::RetireKey {
            id: id.to_ascii_lowercase(),
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `after` and `limit` from the query string; 400 on anything else.
#[utoipa::path(get, path = "/v1/audit", tag = "audit",
    params(("after" = Option<u64>, Query), ("limit" = Option<u32>, Query), ("newest" = Option<bool>, Query),
        ("user" = Option<String>, Query), ("file" = Option<String>, Query), ("action" = Option<String>, Query),
        ("since_ms" = Option<u64>, Query)),
    responses((status = 200, body = Vec<AuditRecord>), (status = 400, body = ErrorBody)), security(("device_signature" = [])))]
pub(crate) async fn read_audit(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    Authed(signed): Authed,
) -> Result<Json<Vec<AuditRecord>>, ApiError> {
    let query = irm_core::protocol::AuditQuery::parse(uri.query().unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    match run(&state, &signed, AdminOp::ReadAudit(query)).await? {
        AdminOutput::Audit(records) => Ok(Json(records)),
        _ => Err(unexpected()),
    }
}

#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit",
    responses((status = 200, body = AuditVerifyReport)), security(("device_signature" = [])))]
pub(crate) async fn verify_audit(
    State(state): State<AppState>,
    Authed(signed): Authed,
) -> Result<Json<AuditVerifyReport>, ApiError> {
    run(
        &state,
        &signed,
        AdminOp::AuditAccess {
            action: "audit.verify",
        },
    )
    .await?;
    let app = state.clone();
    let report = state.blocking(move |_| app.verify_audit()).await??;
    Ok(Json(report))
}

#[utoipa::path(post, path = "/v1/audit/checkpoint", tag = "audit",
    responses((status = 200, body = AuditCheckpoint)), security(("device_signature" = [])))]
pub(crate) async fn checkpoint(
    State(state): State<AppState>,
    Authed(signed): Authed,
) -> Result<Json<AuditCheckpoint>, ApiError> {
    run(
        &state,
        &signed,
        AdminOp::AuditAccess {
            action: "audit.checkpoint",
        },
    )
    .await?;
    let app = state.clone();
    state
        .blocking(move |_| app.write_checkpoint(false))
        .await??
        .map(Json)
        .ok_or_else(unexpected)
}

/// `dormant_days` from the query string (and `reason`, which every
/// administrative call may carry); 400 on anything else.
fn dormant_days(query: &str) -> Result<u32, ApiError> {
    let mut days = DEFAULT_DORMANT_DAYS;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*key {
            "reason" => {}
            "dormant_days" => {
                days = value
                    .parse::<u32>()
                    .ok()
                    .filter(|d| (1..=MAX_DORMANT_DAYS).contains(d))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "dormant_days must be a whole number from 1 to {MAX_DORMANT_DAYS}"
                        ))
                    })?;
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {other:?}"
                )));
            }
        }
    }
    Ok(days)
}

/// `GET /v1/admin/review` (PROTOCOL.md §7.6): the account review.
#[utoipa::path(get, path = "/v1/admin/review", tag = "admin",
    params(("dormant_days" = Option<u32>, Query)),
    responses((status = 200, body = AccountReview), (status = 400, body = ErrorBody), (status = 403, body = DenyBody)),
    security(("device_signature" = [])))]
pub(crate) async fn review(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    Authed(signed): Authed,
) -> Result<Json<AccountReview>, ApiError> {
    let dormant_days = dormant_days(uri.query().unwrap_or(""))?;
    match run(&state, &signed, AdminOp::Review { dormant_days }).await? {
        AdminOutput::Review(review) => Ok(Json(*review)),
        _ => Err(unexpected()),
    }
}

/// `POST /v1/admin/review/done` (PROTOCOL.md §7.6): the review happened;
/// audited as `admin.review.done` with the caller and the reason, which
/// must be given (a refusal is audited too).
#[utoipa::path(post, path = "/v1/admin/review/done", tag = "admin",
    request_body = ReviewDoneRequest,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = DenyBody)),
    security(("device_signature" = [])))]
pub(crate) async fn review_done(
    State(state): State<AppState>,
    Authed(signed): Authed,
) -> Result<StatusCode, ApiError> {
    let request: ReviewDoneRequest = signed.json()?;
    // One line, bounded: it goes into a one-line audit detail. An empty
    // one is the store's to refuse, so that the attempt is on record.
    if !irm_core::protocol::valid_reason(&request.reason) {
        return Err(ApiError::bad_request(format!(
            "reason must be one line of at most {} bytes",
            irm_core::protocol::MAX_REASON_LEN
        )));
    }
    run(
        &state,
        &signed,
        AdminOp::ReviewDone {
            reason: request.reason,
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/admin/data-owners` (PROTOCOL.md §7.7): each configured data
/// owner with what its group covers now, for `irm admin audit digest`.
/// Admin or auditor; audited as `admin.data_owner.list`.
#[utoipa::path(get, path = "/v1/admin/data-owners", tag = "admin",
    responses((status = 200, body = DataOwners), (status = 400, body = ErrorBody), (status = 403, body = DenyBody)),
    security(("device_signature" = [])))]
pub(crate) async fn data_owners(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    Authed(signed): Authed,
) -> Result<Json<DataOwners>, ApiError> {
    only_reason(uri.query().unwrap_or(""))?;
    let owners = &state.settings.data_owners;
    let groups: Vec<String> = owners.keys().cloned().collect();
    let AdminOutput::GroupFiles(covered) =
        run(&state, &signed, AdminOp::DataOwners { groups }).await?
    else {
        return Err(unexpected());
    };
    Ok(Json(DataOwners {
        at: state.clock.now_secs(),
        owners: covered
            .into_iter()
            .filter_map(|cover| {
                owners.get(&cover.group).map(|contact| DataOwner {
                    contact: contact.as_config(),
                    group: cover.group,
                    members: cover.members,
                    files: cover.files,
                })
            })
            .collect(),
    }))
}

/// `POST /v1/admin/digests` (PROTOCOL.md §7.7): the digests a run sent,
/// recorded as `admin.digest.sent` with the period, the chain head they
/// were built from and each group's contact (a webhook by its host only).
/// Admin or auditor. A group without a data owner is `400`: the record
/// names only contacts the server itself holds.
#[utoipa::path(post, path = "/v1/admin/digests", tag = "admin",
    request_body = DigestSentRequest,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = DenyBody)),
    security(("device_signature" = [])))]
pub(crate) async fn digest_sent(
    State(state): State<AppState>,
    Authed(signed): Authed,
) -> Result<StatusCode, ApiError> {
    let request: DigestSentRequest = signed.json()?;
    if request.until_ms <= request.since_ms {
        return Err(ApiError::bad_request("until_ms must be after since_ms"));
    }
    if request.deliveries.is_empty() || request.deliveries.len() > MAX_DIGEST_DELIVERIES {
        return Err(ApiError::bad_request(format!(
            "a record names 1 to {MAX_DIGEST_DELIVERIES} deliveries"
        )));
    }
    let (mut sent, mut failed) = (Vec::new(), Vec::new());
    for delivery in &request.deliveries {
        let Some(contact) = state.settings.data_owners.get(&delivery.group) else {
            // Not echoed as given: it is a caller's string.
            return Err(ApiError::bad_request(
                "a delivery names a group without a data owner in [data_owners]",
            ));
        };
        let word = format!("{}:{}", delivery.group, contact.shown());
        if delivery.delivered {
            sent.push(word);
        } else {
            failed.push(word);
        }
    }
    run(
        &state,
        &signed,
        AdminOp::DigestSent {
            since_ms: request.since_ms,
            until_ms: request.until_ms,
            head_seq: request.head_seq,
            sent,
            failed,
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A query that may carry `reason` (PROTOCOL.md §7) and nothing else.
fn only_reason(query: &str) -> Result<(), ApiError> {
    for (key, _) in form_urlencoded::parse(query.as_bytes()) {
        if key != "reason" {
            return Err(ApiError::bad_request(format!(
                "unknown query parameter {key:?}"
            )));
        }
    }
    Ok(())
}
