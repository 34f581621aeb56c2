//! The OpenAPI description (`GET /openapi.json`). Paths come from the
//! `#[utoipa::path]` annotations on the handlers. The JSON bodies are
//! `irm_core::protocol` types, which do not depend on utoipa, so their
//! schemas are declared here as documentation twins; the test
//! `schemas_match_the_protocol_types` serialises each real type and checks
//! that its fields are exactly the twin's properties, so the two cannot drift.

#![allow(dead_code, missing_docs, unreachable_pub)] // twins exist only for their schemas

use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::api;

/// Denial reasons (PROTOCOL.md §8).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum DenyReason {
    CredentialInvalid,
    UserSuspended,
    DeviceRevoked,
    KeyUnknown,
    KeyRetired,
    PolicyBindingFailed,
    FileRevoked,
    NotRecipient,
    NotYetValid,
    PolicyExpired,
    FileExpired,
    RightsRestricted,
    RightNotGranted,
    RoleRequired,
    EnrollmentCodeInvalid,
}

/// One right.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Right {
    View,
    Print,
    Copy,
    Export,
    Program,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Auditor,
    User,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum UsageAction {
    Print,
    Copy,
    Export,
    ProgramRead,
    Close,
}

#[derive(ToSchema)]
pub struct DenyBody {
    reason: DenyReason,
    message: String,
}

#[derive(ToSchema)]
pub struct ErrorBody {
    error: String,
    message: String,
}

#[derive(ToSchema)]
pub struct ServerKeyInfo {
    key_id: String,
    public_key: String,
    url: String,
}

#[derive(ToSchema)]
pub struct KeyInfo {
    key_id: String,
    public_key: String,
    url: String,
    /// `current`, `active` or `retired`.
    state: String,
}

#[derive(ToSchema)]
pub struct EnrollRequest {
    user: String,
    code: String,
    device_name: String,
    device_public_key: String,
    signing_public_key: String,
    proof: String,
}

#[derive(ToSchema)]
pub struct EnrollResponse {
    device_id: String,
    user: String,
    roles: Vec<Role>,
    groups: Vec<String>,
    server_key: ServerKeyInfo,
}

#[derive(ToSchema)]
pub struct GrantRequest {
    /// The header bytes, base64url.
    header: String,
    #[schema(default = false)]
    renew: Option<bool>,
}

#[derive(ToSchema)]
pub struct GrantResponse {
    file_id: String,
    grant_id: String,
    user: String,
    device_id: String,
    rights: Vec<Right>,
    watermark_required: bool,
    server_time: u64,
    lease_expires_at: u64,
    not_after: Option<u64>,
    wrapped_key: String,
}

#[derive(ToSchema)]
pub struct EventRequest {
    grant_id: String,
    action: UsageAction,
    detail: Option<String>,
}

#[derive(ToSchema)]
pub struct RegisterFileRequest {
    header: String,
    file_name: Option<String>,
}

#[derive(ToSchema)]
pub struct PolicyGrant {
    /// `alice` or `@group`.
    recipients: Vec<String>,
    rights: Vec<Right>,
}

#[derive(ToSchema)]
pub struct Policy {
    grants: Vec<PolicyGrant>,
    not_before_unix: Option<u64>,
    not_after_unix: Option<u64>,
    max_lease_secs: u32,
    watermark_required: bool,
    classification: Option<String>,
}

#[derive(ToSchema)]
pub struct FileInfo {
    file_id: String,
    owner: Option<String>,
    file_name: Option<String>,
    policy: Option<Policy>,
    /// `active`, `revoked` or `expired`.
    state: String,
    restricted_rights: Vec<Right>,
    first_seen_at: u64,
}

#[derive(ToSchema)]
pub struct UserInfo {
    name: String,
    display_name: String,
    roles: Vec<Role>,
    groups: Vec<String>,
    /// `active` or `suspended`.
    state: String,
}

#[derive(ToSchema)]
pub struct CreateUserRequest {
    name: String,
    display_name: String,
    roles: Option<Vec<Role>>,
    groups: Option<Vec<String>>,
}

#[derive(ToSchema)]
pub struct EnrollmentCode {
    user: String,
    code: String,
    expires_at: u64,
}

#[derive(ToSchema)]
pub struct DeviceInfo {
    device_id: String,
    user: String,
    name: String,
    /// `active` or `revoked`.
    state: String,
    enrolled_at: u64,
}

#[derive(ToSchema)]
pub struct RestrictRequest {
    remove: Vec<Right>,
}

#[derive(ToSchema)]
pub struct CreateGroupRequest {
    name: String,
}

#[derive(ToSchema)]
pub struct AddMemberRequest {
    user: String,
}

#[derive(ToSchema)]
pub struct AuditRecord {
    seq: u64,
    at_ms: u64,
    actor_user: Option<String>,
    actor_device: Option<String>,
    action: String,
    file_id: Option<String>,
    result: String,
    reason: Option<String>,
    client_addr: Option<String>,
    detail: Option<String>,
    prev_hash: String,
    hash: String,
}

#[derive(ToSchema)]
pub struct AuditCheckpoint {
    count: u64,
    head_hash: String,
    at_ms: u64,
    signing_key: String,
    signature: String,
}

#[derive(ToSchema)]
pub struct AuditVerifyReport {
    ok: bool,
    records: u64,
    checkpoints: u64,
    problems: Vec<String>,
}

/// Declares the `IRM-Device-Sig` authorization scheme (PROTOCOL.md §2).
struct DeviceSignature;

impl Modify for DeviceSignature {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "device_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "IRM-Device-Sig device=<hex>,ts=<unix>,nonce=<hex>,sig=<base64url> (PROTOCOL.md §2)",
            ))),
        );
    }
}

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "IRM key server", description = "Key-server protocol version 1 (docs/PROTOCOL.md)"),
    modifiers(&DeviceSignature),
    paths(
        api::service::healthz,
        api::service::metrics,
        api::service::openapi,
        api::client::server_key,
        api::client::enroll,
        api::client::grant,
        api::client::event,
        api::client::register_file,
        api::admin::create_user,
        api::admin::list_users,
        api::admin::suspend_user,
        api::admin::restore_user,
        api::admin::new_code_for,
        api::admin::create_group,
        api::admin::add_member,
        api::admin::remove_member,
        api::admin::list_devices,
        api::admin::revoke_device,
        api::admin::list_files,
        api::admin::revoke_file,
        api::admin::restore_file,
        api::admin::expire_file,
        api::admin::restrict_file,
        api::admin::list_keys,
        api::admin::rotate_key,
        api::admin::retire_key,
        api::admin::read_audit,
        api::admin::verify_audit,
        api::admin::checkpoint,
    ),
    components(schemas(DenyReason, Right, Role, UsageAction, DenyBody, ErrorBody, ServerKeyInfo,
        KeyInfo, EnrollRequest, EnrollResponse, GrantRequest, GrantResponse, EventRequest,
        RegisterFileRequest, Policy, PolicyGrant, FileInfo, UserInfo, CreateUserRequest,
        EnrollmentCode, DeviceInfo, RestrictRequest, CreateGroupRequest, AddMemberRequest,
        AuditRecord, AuditCheckpoint, AuditVerifyReport))
)]
pub struct ApiDoc;
