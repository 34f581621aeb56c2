//! Administration and audit calls (docs/PROTOCOL.md §7), as methods on
//! [`Session`]: users, groups, devices, files, keys and the audit log. Each
//! is signed by the caller's own device; the server checks the role
//! (`role_required` otherwise) and audits the call.
//!
//! This module only names the endpoints and their bodies; signing and error
//! mapping are the transport's.

use irm_core::Rights;
use irm_core::protocol::{
    AuditCheckpoint, AuditRecord, AuditVerifyReport, CreateUserRequest, DeviceInfo, EnrollmentCode,
    FileInfo, RestrictRequest, ServerKeyInfo, UserInfo,
};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::error::ClientError;
use crate::session::Session;
use crate::transport::segment;

/// A key server key as `GET /v1/admin/keys` lists it: the public
/// [`ServerKeyInfo`] plus its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// The key's public information.
    #[serde(flatten)]
    pub key: ServerKeyInfo,
    /// `current`, `active` or `retired` (as the server words it).
    pub state: String,
}

#[derive(Serialize)]
struct NameBody<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct MemberBody<'a> {
    user: &'a str,
}

/// A group name without the `@` a policy writes before it.
fn group_name(name: &str) -> &str {
    name.strip_prefix('@').unwrap_or(name)
}

impl Session {
    /// `POST /v1/admin/users`: a new person and their one-time enrollment code.
    pub fn add_user(&self, request: &CreateUserRequest) -> Result<EnrollmentCode, ClientError> {
        self.signed(Method::POST, "/v1/admin/users", Some(request))
    }

    /// `GET /v1/admin/users`.
    pub fn list_users(&self) -> Result<Vec<UserInfo>, ClientError> {
        self.signed(Method::GET, "/v1/admin/users", None::<&()>)
    }

    /// `POST /v1/admin/users/{name}/suspend`: the user gets nothing from now on.
    pub fn suspend_user(&self, name: &str) -> Result<UserInfo, ClientError> {
        let path = format!("/v1/admin/users/{}/suspend", segment(name));
        self.signed(Method::POST, &path, None::<&()>)
    }

    /// `POST /v1/admin/users/{name}/restore`.
    pub fn restore_user(&self, name: &str) -> Result<UserInfo, ClientError> {
        let path = format!("/v1/admin/users/{}/restore", segment(name));
        self.signed(Method::POST, &path, None::<&()>)
    }

    /// `POST /v1/admin/users/{name}/code`: a new code; the old one dies.
    pub fn new_enrollment_code(&self, name: &str) -> Result<EnrollmentCode, ClientError> {
        let path = format!("/v1/admin/users/{}/code", segment(name));
        self.signed(Method::POST, &path, None::<&()>)
    }

    /// `POST /v1/admin/groups` (a leading `@` is dropped).
    pub fn add_group(&self, name: &str) -> Result<(), ClientError> {
        let body = NameBody {
            name: group_name(name),
        };
        self.signed_no_content(Method::POST, "/v1/admin/groups", Some(&body))
    }

    /// `POST /v1/admin/groups/{name}/members`.
    pub fn add_group_member(&self, group: &str, user: &str) -> Result<(), ClientError> {
        let path = format!("/v1/admin/groups/{}/members", segment(group_name(group)));
        self.signed_no_content(Method::POST, &path, Some(&MemberBody { user }))
    }

    /// `DELETE /v1/admin/groups/{name}/members/{user}`.
    pub fn remove_group_member(&self, group: &str, user: &str) -> Result<(), ClientError> {
        let path = format!(
            "/v1/admin/groups/{}/members/{}",
            segment(group_name(group)),
            segment(user)
        );
        self.signed_no_content(Method::DELETE, &path, None::<&()>)
    }

    /// `GET /v1/admin/devices`.
    pub fn list_devices(&self) -> Result<Vec<DeviceInfo>, ClientError> {
        self.signed(Method::GET, "/v1/admin/devices", None::<&()>)
    }

    /// `POST /v1/admin/devices/{id}/revoke`.
    pub fn revoke_device(&self, device_id: &str) -> Result<DeviceInfo, ClientError> {
        let path = format!("/v1/admin/devices/{}/revoke", segment(device_id));
        self.signed(Method::POST, &path, None::<&()>)
    }

    /// `GET /v1/admin/files`.
    pub fn list_files(&self) -> Result<Vec<FileInfo>, ClientError> {
        self.signed(Method::GET, "/v1/admin/files", None::<&()>)
    }

    /// `POST /v1/admin/files/{id}/revoke`: every later grant is refused (`file_revoked`).
    pub fn revoke_file(&self, file_id: &str) -> Result<FileInfo, ClientError> {
        self.file_action(file_id, "revoke")
    }

    /// `POST /v1/admin/files/{id}/restore`: undoes a revocation or an expiry.
    pub fn restore_file(&self, file_id: &str) -> Result<FileInfo, ClientError> {
        self.file_action(file_id, "restore")
    }

    /// `POST /v1/admin/files/{id}/expire`: the file expires now (`file_expired`).
    pub fn expire_file(&self, file_id: &str) -> Result<FileInfo, ClientError> {
        self.file_action(file_id, "expire")
    }

    /// `POST /v1/admin/files/{id}/restrict`: takes `remove` from every grant of the file.
    pub fn restrict_file(&self, file_id: &str, remove: Rights) -> Result<FileInfo, ClientError> {
        let path = format!("/v1/admin/files/{}/restrict", segment(file_id));
        self.signed(Method::POST, &path, Some(&RestrictRequest { remove }))
    }

    fn file_action(&self, file_id: &str, verb: &str) -> Result<FileInfo, ClientError> {
        let path = format!("/v1/admin/files/{}/{verb}", segment(file_id));
        self.signed(Method::POST, &path, None::<&()>)
    }

    /// `GET /v1/admin/keys`.
    pub fn list_keys(&self) -> Result<Vec<KeyInfo>, ClientError> {
        self.signed(Method::GET, "/v1/admin/keys", None::<&()>)
    }

    /// `POST /v1/admin/keys/rotate`: a new current key; old keys still open old files.
    pub fn rotate_key(&self) -> Result<ServerKeyInfo, ClientError> {
        self.signed(Method::POST, "/v1/admin/keys/rotate", None::<&()>)
    }

    /// `POST /v1/admin/keys/{key_id}/retire`: every file under that key is denied.
    pub fn retire_key(&self, key_id: &str) -> Result<(), ClientError> {
        let path = format!("/v1/admin/keys/{}/retire", segment(key_id));
        self.signed_no_content(Method::POST, &path, None::<&()>)
    }

    /// `GET /v1/audit?after=N&limit=M`: records after sequence number `after`.
    pub fn audit_records(
        &self,
        after: Option<u64>,
        limit: Option<u32>,
    ) -> Result<Vec<AuditRecord>, ClientError> {
        let mut query = Vec::new();
        if let Some(after) = after {
            query.push(format!("after={after}"));
        }
        if let Some(limit) = limit {
            query.push(format!("limit={limit}"));
        }
        let path = if query.is_empty() {
            "/v1/audit".to_owned()
        } else {
            format!("/v1/audit?{}", query.join("&"))
        };
        self.signed(Method::GET, &path, None::<&()>)
    }

    /// `GET /v1/audit/verify`: the server recomputes the chain and checks the checkpoints.
    pub fn verify_audit(&self) -> Result<AuditVerifyReport, ClientError> {
        self.signed(Method::GET, "/v1/audit/verify", None::<&()>)
    }

    /// `POST /v1/audit/checkpoint`: signs and writes a checkpoint now.
    pub fn audit_checkpoint(&self) -> Result<AuditCheckpoint, ClientError> {
        self.signed(Method::POST, "/v1/audit/checkpoint", None::<&()>)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_listings_flatten_the_public_key_info() {
        let json = r#"{"key_id":"00","public_key":"K","url":"https://k","state":"retired","created_at":5}"#;
        let key: KeyInfo = serde_json::from_str(json).unwrap();
        assert_eq!(key.state, "retired");
        assert_eq!(key.key.url, "https://k");
    }

    #[test]
    fn group_names_lose_their_at_sign() {
        assert_eq!(group_name("@support"), "support");
        assert_eq!(group_name("support"), "support");
    }
}
