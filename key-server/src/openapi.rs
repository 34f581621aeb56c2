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
    /// The user the code was issued for; omit it (or send "") to let the server find the user from the code.
    #[schema(required = false)]
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
    /// Null while the server has not seen the header (an administrator acted on the id first).
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use irm_core::protocol as p;
    use irm_core::{Policy, PolicyGrant, Recipient, Rights};
    use serde::Serialize;
    use serde_json::Value;

    use super::ApiDoc;
    use utoipa::OpenApi as _;

    fn keys<T: Serialize>(value: &T) -> BTreeSet<String> {
        match serde_json::to_value(value).unwrap() {
            Value::Object(map) => map.keys().cloned().collect(),
            other => panic!("not an object: {other}"),
        }
    }

    fn strings<T: Serialize>(values: impl IntoIterator<Item = T>) -> BTreeSet<String> {
        values
            .into_iter()
            .map(|v| {
                serde_json::to_value(v)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    fn schema(doc: &Value, name: &str) -> Value {
        doc["components"]["schemas"][name].clone()
    }

    fn properties(doc: &Value, name: &str) -> BTreeSet<String> {
        schema(doc, name)["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{name} has no properties"))
            .keys()
            .cloned()
            .collect()
    }

    fn enum_values(doc: &Value, name: &str) -> BTreeSet<String> {
        schema(doc, name)["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} is not an enum"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    }

    fn key_info() -> p::ServerKeyInfo {
        p::ServerKeyInfo {
            key_id: "k".into(),
            public_key: "p".into(),
            url: "u".into(),
        }
    }

    fn policy() -> Policy {
        Policy::new(
            vec![PolicyGrant {
                recipients: [Recipient::parse("alice").unwrap()].into(),
                rights: Rights::VIEW,
            }],
            Some(1),
            Some(2),
            600,
            true,
            Some("c".into()),
        )
        .unwrap()
    }

    #[test]
    fn schemas_match_the_protocol_types() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let s = || "x".to_owned();
        let samples: Vec<(&str, BTreeSet<String>)> = vec![
            (
                "DenyBody",
                keys(&p::DenyBody {
                    reason: p::DenyReason::FileRevoked,
                    message: s(),
                }),
            ),
            (
                "ErrorBody",
                keys(&p::ErrorBody {
                    error: s(),
                    message: s(),
                }),
            ),
            ("ServerKeyInfo", keys(&key_info())),
            (
                "KeyInfo",
                keys(&crate::api::KeyInfo {
                    key: key_info(),
                    state: s(),
                }),
            ),
            (
                "EnrollRequest",
                keys(&p::EnrollRequest {
                    user: s(),
                    code: s(),
                    device_name: s(),
                    device_public_key: s(),
                    signing_public_key: s(),
                    proof: s(),
                }),
            ),
            (
                "EnrollResponse",
                keys(&p::EnrollResponse {
                    device_id: s(),
                    user: s(),
                    roles: vec![],
                    groups: vec![],
                    server_key: key_info(),
                }),
            ),
            (
                "GrantRequest",
                keys(&p::GrantRequest {
                    header: s(),
                    renew: false,
                }),
            ),
            (
                "GrantResponse",
                keys(&p::GrantResponse {
                    file_id: s(),
                    grant_id: s(),
                    user: s(),
                    device_id: s(),
                    rights: Rights::VIEW,
                    watermark_required: true,
                    server_time: 1,
                    lease_expires_at: 2,
                    not_after: Some(3),
                    wrapped_key: s(),
                }),
            ),
            (
                "EventRequest",
                keys(&p::EventRequest {
                    grant_id: s(),
                    action: p::UsageAction::Print,
                    detail: Some(s()),
                }),
            ),
            (
                "RegisterFileRequest",
                keys(&p::RegisterFileRequest {
                    header: s(),
                    file_name: Some(s()),
                }),
            ),
            ("Policy", keys(&policy())),
            ("PolicyGrant", keys(&policy().grants[0])),
            (
                "FileInfo",
                keys(&p::FileInfo {
                    file_id: s(),
                    owner: Some(s()),
                    file_name: Some(s()),
                    policy: Some(policy()),
                    state: s(),
                    restricted_rights: Rights::empty(),
                    first_seen_at: 1,
                }),
            ),
            (
                "UserInfo",
                keys(&p::UserInfo {
                    name: s(),
                    display_name: s(),
                    roles: vec![],
                    groups: vec![],
                    state: s(),
                }),
            ),
            (
                "CreateUserRequest",
                keys(&p::CreateUserRequest {
                    name: s(),
                    display_name: s(),
                    roles: vec![],
                    groups: vec![],
                }),
            ),
            (
                "EnrollmentCode",
                keys(&p::EnrollmentCode {
                    user: s(),
                    code: s(),
                    expires_at: 1,
                }),
            ),
            (
                "DeviceInfo",
                keys(&p::DeviceInfo {
                    device_id: s(),
                    user: s(),
                    name: s(),
                    state: s(),
                    enrolled_at: 1,
                }),
            ),
            (
                "RestrictRequest",
                keys(&p::RestrictRequest {
                    remove: Rights::PRINT,
                }),
            ),
            (
                "CreateGroupRequest",
                keys(&crate::api::CreateGroupRequest { name: s() }),
            ),
            (
                "AddMemberRequest",
                keys(&crate::api::AddMemberRequest { user: s() }),
            ),
            (
                "AuditRecord",
                keys(&p::AuditRecord {
                    seq: 1,
                    at_ms: 1,
                    actor_user: None,
                    actor_device: None,
                    action: s(),
                    file_id: None,
                    result: s(),
                    reason: None,
                    client_addr: None,
                    detail: None,
                    prev_hash: s(),
                    hash: s(),
                }),
            ),
            (
                "AuditCheckpoint",
                keys(&p::AuditCheckpoint {
                    count: 1,
                    head_hash: s(),
                    at_ms: 1,
                    signing_key: s(),
                    signature: s(),
                }),
            ),
            (
                "AuditVerifyReport",
                keys(&p::AuditVerifyReport {
                    ok: true,
                    records: 1,
                    checkpoints: 1,
                    problems: vec![],
                }),
            ),
        ];
        for (name, fields) in samples {
            assert_eq!(
                properties(&doc, name),
                fields,
                "schema {name} drifted from the protocol type"
            );
        }
        assert_eq!(enum_values(&doc, "DenyReason"), strings(p::DenyReason::ALL));
        assert_eq!(
            enum_values(&doc, "Role"),
            strings([p::Role::Admin, p::Role::Auditor, p::Role::User])
        );
        assert_eq!(
            enum_values(&doc, "UsageAction"),
            strings([
                p::UsageAction::Print,
                p::UsageAction::Copy,
                p::UsageAction::Export,
                p::UsageAction::ProgramRead,
                p::UsageAction::Close
            ])
        );
        assert_eq!(
            enum_values(&doc, "Right"),
            Rights::NAMES.iter().map(|(n, _)| (*n).to_owned()).collect()
        );
    }
}
