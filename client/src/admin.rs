//! Administration and audit calls (docs/PROTOCOL.md §7), as methods on
//! [`Session`]: users, groups, devices, files, keys and the audit log. Each
//! is signed by the caller's own device; the server checks the role
//! (`role_required` otherwise) and audits the call.
//!
//! This module only names the endpoints and their bodies; signing and error
//! mapping are the transport's. The one composite call is the audit export,
//! which pages through the log up to a checkpoint it has the server sign.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use irm_core::Rights;
use irm_core::invitation::{CodePart, Invitation, ca_fingerprint};
use irm_core::protocol::{
    AccountReview, AckAlertRequest, AddMemberRequest, Alert, ApprovalRequestInfo, ApprovalRule,
    ApproveRequest, AuditCheckpoint, AuditExportHeader, AuditExportLine, AuditQuery, AuditRecord,
    AuditVerifyReport, CreateGroupRequest, CreateUserRequest, DataOwners, DetectionLimit,
    DetectionRuleInfo, DeviceInfo, DigestSentRequest, EnrollmentCode, ExportRequest, FileInfo,
    GroupWorkingHours, KeyInfo, RequestAnswer, RestrictRequest, ReviewDoneRequest, ServerKeyInfo,
    SetApprovalRuleRequest, SetDetectionRuleRequest, SetWorkingHoursRequest, TakeOut, TraceAnswer,
    TraceRequest, UserInfo, WatermarkTrace, WorkingHours,
};
use reqwest::Method;
use serde::Serialize;

use crate::error::ClientError;
use crate::session::Session;
use crate::transport::segment;

/// The most records `GET /v1/audit` returns at once (PROTOCOL.md §7).
const AUDIT_PAGE: u32 = 1000;

/// What [`Session::export_audit`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditExportSummary {
    /// The header written first.
    pub header: AuditExportHeader,
    /// Records written.
    pub records: u64,
    /// The checkpoint the server signed for this export; the last record's
    /// hash is its `head_hash`.
    pub checkpoint: AuditCheckpoint,
}

/// What `POST /v1/admin/users` answered: a request waiting for approval
/// (202), or, on a new server's first administrator creating the second,
/// the whole code at once (200) (PROTOCOL.md §7.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum UserAdded {
    /// Filed for approval, with the requester's half of the code.
    Filed(Box<RequestAnswer>),
    /// Created now: the bootstrap's second administrator.
    Created(EnrollmentCode),
}

/// What `PUT /v1/admin/detection/{rule}` answered (PROTOCOL.md §12.2): a
/// tightening in force at once (200, every rule as it now is), or a
/// loosening filed for approval (202).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum DetectionChange {
    /// In force now.
    InForce(Vec<DetectionRuleInfo>),
    /// Filed for another administrator's approval.
    Filed(Box<RequestAnswer>),
}

/// What `PUT /v1/admin/working-hours/{group}` answered (PROTOCOL.md
/// §12.3): narrowed at once (200, every group's hours), or a widening filed
/// for approval (202).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum HoursChange {
    /// In force now.
    InForce(Vec<GroupWorkingHours>),
    /// Filed for another administrator's approval.
    Filed(Box<RequestAnswer>),
}

/// A group name without the `@` a policy writes before it.
fn group_name(name: &str) -> &str {
    name.strip_prefix('@').unwrap_or(name)
}

impl Session {
    /// The one-line invitation (PROTOCOL.md §3.4) for a code or half-code
    /// this administrator was given: the server's public URL (from
    /// `GET /v1/server-key`, as the server is configured to be reached) and
    /// the fingerprint of the CA this device itself pins.
    pub fn invitation(&self, code: &str, part: CodePart) -> Result<Invitation, ClientError> {
        let url = self.server_key()?.0.url;
        let fingerprint =
            ca_fingerprint(&self.config().ca_pem).ok_or_else(|| ClientError::BadConfig {
                path: self.config_dir().join(crate::config::DEVICE_JSON),
                problem: "its CA certificate holds no certificate".into(),
            })?;
        Invitation::new(&url, fingerprint, code, part).map_err(|e| {
            ClientError::bad_response(
                "GET /v1/server-key",
                format!("no invitation can name it: {e}"),
            )
        })
    }

    /// `POST /v1/admin/users`: a new person, filed for approval with this
    /// administrator's half of their code (or, for a new server's second
    /// administrator, created with the whole code).
    pub fn add_user(&self, request: &CreateUserRequest) -> Result<UserAdded, ClientError> {
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

    /// `POST /v1/admin/users/{name}/restore`, filed for approval.
    pub fn restore_user(&self, name: &str) -> Result<RequestAnswer, ClientError> {
        let path = format!("/v1/admin/users/{}/restore", segment(name));
        self.signed(Method::POST, &path, None::<&()>)
    }

    /// `POST /v1/admin/users/{name}/release`: lifting a detection rule's
    /// hold on a person, filed for approval (PROTOCOL.md §12).
    pub fn release_user(&self, name: &str) -> Result<RequestAnswer, ClientError> {
        let path = format!("/v1/admin/users/{}/release", segment(name));
        self.signed(Method::POST, &path, None::<&()>)
    }

    /// `POST /v1/admin/users/{name}/code`: a new code, filed for approval;
    /// the answer holds this administrator's half. The old code dies when
    /// the new one is approved.
    pub fn new_enrollment_code(&self, name: &str) -> Result<RequestAnswer, ClientError> {
        let path = format!("/v1/admin/users/{}/code", segment(name));
        self.signed(Method::POST, &path, None::<&()>)
    }

    /// `POST /v1/admin/groups` (a leading `@` is dropped).
    pub fn add_group(&self, name: &str) -> Result<(), ClientError> {
        let body = CreateGroupRequest {
            name: group_name(name).to_owned(),
        };
        self.signed_no_content(Method::POST, "/v1/admin/groups", Some(&body))
    }

    /// `POST /v1/admin/groups/{name}/members`, filed for approval.
    pub fn add_group_member(&self, group: &str, user: &str) -> Result<RequestAnswer, ClientError> {
        let path = format!("/v1/admin/groups/{}/members", segment(group_name(group)));
        let body = AddMemberRequest {
            user: user.to_owned(),
        };
        self.signed(Method::POST, &path, Some(&body))
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

    /// `POST /v1/admin/files/{id}/restore`: undoes a revocation, an expiry
    /// and restrictions, once approved.
    pub fn restore_file(&self, file_id: &str) -> Result<RequestAnswer, ClientError> {
        let path = format!("/v1/admin/files/{}/restore", segment(file_id));
        self.signed(Method::POST, &path, None::<&()>)
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

    /// `GET /v1/admin/requests`: approval requests, newest first.
    pub fn list_requests(&self) -> Result<Vec<ApprovalRequestInfo>, ClientError> {
        self.signed(Method::GET, "/v1/admin/requests", None::<&()>)
    }

    /// `GET /v1/admin/requests/{id}`.
    pub fn show_request(&self, id: &str) -> Result<ApprovalRequestInfo, ClientError> {
        let path = format!("/v1/admin/requests/{}", segment(id));
        self.signed(Method::GET, &path, None::<&()>)
    }

    /// Approves request `id`: fetches it, checks that its action hashes to
    /// the stored hash, and approves exactly that hash, so that what the
    /// caller was shown is what runs. `expected` is a hash the caller saw
    /// earlier (for example in `request show`): if given, it must match too.
    /// Returns the request as it now stands, with this approver's half of a
    /// code if the approval completed one.
    ///
    /// With `break_glass` (the code from the sealed envelope, PROTOCOL.md
    /// §7.4) the approval completes the request by itself, once, and every
    /// administrator is told.
    pub fn approve_request(
        &self,
        id: &str,
        expected: Option<&str>,
        break_glass: Option<&str>,
    ) -> Result<(ApprovalRequestInfo, RequestAnswer), ClientError> {
        let shown = self.show_request(id)?;
        let computed = shown.action.hash();
        if computed != shown.action_hash {
            return Err(ClientError::bad_response(
                "GET /v1/admin/requests",
                format!(
                    "request {id}'s action hashes to {computed}, not to the {} the server stored; do not approve it, report it",
                    shown.action_hash
                ),
            ));
        }
        if let Some(expected) = expected
            && !expected.eq_ignore_ascii_case(&computed)
        {
            return Err(ClientError::InvalidArgument(format!(
                "request {id} is now the action with hash {computed}, not the {expected} you expected; show it again"
            )));
        }
        let path = format!("/v1/admin/requests/{}/approve", segment(id));
        let answer = self.signed(
            Method::POST,
            &path,
            Some(&ApproveRequest {
                action_hash: computed,
                break_glass: break_glass.map(str::to_owned),
            }),
        )?;
        Ok((shown, answer))
    }

    /// `POST /v1/admin/break-glass`: a new break-glass code, filed for
    /// approval; the answer holds this administrator's half, and the
    /// approver receives the other. Both go into one sealed envelope.
    pub fn issue_break_glass(&self) -> Result<RequestAnswer, ClientError> {
        self.signed(Method::POST, "/v1/admin/break-glass", None::<&()>)
    }

    /// `POST /v1/admin/requests/{id}/deny`: denies a pending request (its
    /// requester withdraws it this way).
    pub fn deny_request(&self, id: &str) -> Result<ApprovalRequestInfo, ClientError> {
        let path = format!("/v1/admin/requests/{}/deny", segment(id));
        self.signed(Method::POST, &path, None::<&()>)
    }

    /// `POST /v1/export-requests`: asks administrators to let this device
    /// take `file_id`'s plaintext out once, in the way `how` (PROTOCOL.md
    /// §7.3). Any enrolled person may ask; the answer is the request filed.
    pub fn request_take_out(
        &self,
        file_id: &str,
        how: TakeOut,
    ) -> Result<RequestAnswer, ClientError> {
        self.signed(
            Method::POST,
            "/v1/export-requests",
            Some(&ExportRequest {
                file_id: file_id.to_owned(),
                how,
            }),
        )
    }

    /// `POST /v1/admin/trace` (PROTOCOL.md §7.8): the exports whose
    /// canaries are among `values` (phone numbers, e-mail addresses), in
    /// requests of at most [`irm_core::protocol::MAX_TRACE_VALUES`], merged.
    /// Needs the admin or auditor role and a reason ([`Session::set_reason`]).
    pub fn trace_canaries(&self, values: &[String]) -> Result<TraceAnswer, ClientError> {
        let mut merged = TraceAnswer {
            checked: 0,
            exports: Vec::new(),
        };
        for part in values.chunks(irm_core::protocol::MAX_TRACE_VALUES).chain(
            // An empty list still asks once, so the lookup is on record.
            values.is_empty().then_some(&values[..0]),
        ) {
            let answer: TraceAnswer = self.signed(
                Method::POST,
                "/v1/admin/trace",
                Some(&TraceRequest {
                    values: part.to_vec(),
                }),
            )?;
            merged.checked += answer.checked;
            for export in answer.exports {
                match merged
                    .exports
                    .iter_mut()
                    .find(|e| e.export_id == export.export_id)
                {
                    Some(known) => known.matched += export.matched,
                    None => merged.exports.push(export),
                }
            }
        }
        merged.exports.sort_by_key(|e| std::cmp::Reverse(e.matched));
        Ok(merged)
    }

    /// `GET /v1/admin/trace/watermark/{id}` (PROTOCOL.md §7.8): the grant a
    /// watermark id names. Needs the admin or auditor role and a reason.
    pub fn trace_watermark(&self, id: &str) -> Result<WatermarkTrace, ClientError> {
        let path = format!("/v1/admin/trace/watermark/{}", segment(id));
        self.signed(Method::GET, &path, None::<&()>)
    }

    /// `GET /v1/admin/approval-rules`.
    pub fn approval_rules(&self) -> Result<Vec<ApprovalRule>, ClientError> {
        self.signed(Method::GET, "/v1/admin/approval-rules", None::<&()>)
    }

    /// `PUT /v1/admin/approval-rules/{action}`, itself filed for approval.
    pub fn set_approval_rule(
        &self,
        action: &str,
        required: u8,
    ) -> Result<RequestAnswer, ClientError> {
        let path = format!("/v1/admin/approval-rules/{}", segment(action));
        self.signed(
            Method::PUT,
            &path,
            Some(&SetApprovalRuleRequest { required }),
        )
    }

    /// `GET /v1/admin/detection`: the detection rules in force.
    pub fn detection_rules(&self) -> Result<Vec<DetectionRuleInfo>, ClientError> {
        self.signed(Method::GET, "/v1/admin/detection", None::<&()>)
    }

    /// `PUT /v1/admin/detection/{rule}`: `None` switches the rule off.
    pub fn set_detection_rule(
        &self,
        rule: &str,
        setting: Option<DetectionLimit>,
    ) -> Result<DetectionChange, ClientError> {
        let path = format!("/v1/admin/detection/{}", segment(rule));
        self.signed(
            Method::PUT,
            &path,
            Some(&SetDetectionRuleRequest { setting }),
        )
    }

    /// `GET /v1/admin/working-hours`: every group's working hours.
    pub fn working_hours(&self) -> Result<Vec<GroupWorkingHours>, ClientError> {
        self.signed(Method::GET, "/v1/admin/working-hours", None::<&()>)
    }

    /// `PUT /v1/admin/working-hours/{group}`: `None` removes the group's hours.
    pub fn set_working_hours(
        &self,
        group: &str,
        schedule: Option<WorkingHours>,
    ) -> Result<HoursChange, ClientError> {
        let path = format!("/v1/admin/working-hours/{}", segment(group_name(group)));
        self.signed(
            Method::PUT,
            &path,
            Some(&SetWorkingHoursRequest { schedule }),
        )
    }

    /// `GET /v1/admin/review?dormant_days=N`: the account review
    /// (PROTOCOL.md §7.6).
    pub fn account_review(&self, dormant_days: u32) -> Result<AccountReview, ClientError> {
        self.signed(
            Method::GET,
            &format!("/v1/admin/review?dormant_days={dormant_days}"),
            None::<&()>,
        )
    }

    /// `POST /v1/admin/review/done`: records that the review was done, and why.
    pub fn review_done(&self, reason: &str) -> Result<(), ClientError> {
        self.signed_no_content(
            Method::POST,
            "/v1/admin/review/done",
            Some(&ReviewDoneRequest {
                reason: reason.to_owned(),
            }),
        )
    }

    /// `GET /v1/admin/data-owners`: each group's data owner and what the
    /// group covers now (PROTOCOL.md §7.7).
    pub fn data_owners(&self) -> Result<DataOwners, ClientError> {
        self.signed(Method::GET, "/v1/admin/data-owners", None::<&()>)
    }

    /// `POST /v1/admin/digests`: records the digests a run sent
    /// (`admin.digest.sent`, PROTOCOL.md §7.7).
    pub fn digest_sent(&self, record: &DigestSentRequest) -> Result<(), ClientError> {
        self.signed_no_content(Method::POST, "/v1/admin/digests", Some(record))
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

    /// `GET /v1/admin/alerts[?open=true]`: the detection alerts, oldest
    /// first; only unacknowledged ones if `open` (PROTOCOL.md §12.1).
    pub fn list_alerts(&self, open: bool) -> Result<Vec<Alert>, ClientError> {
        let path = if open {
            "/v1/admin/alerts?open=true"
        } else {
            "/v1/admin/alerts"
        };
        self.signed(Method::GET, path, None::<&()>)
    }

    /// `GET /v1/admin/alerts/{id}`.
    pub fn show_alert(&self, id: u64) -> Result<Alert, ClientError> {
        self.signed(Method::GET, &format!("/v1/admin/alerts/{id}"), None::<&()>)
    }

    /// `POST /v1/admin/alerts/{id}/ack`: acknowledges alert `id` once. A
    /// hold or suspension it set stays: the answer's `lift_with` names the
    /// (approved) command that lifts it.
    pub fn ack_alert(&self, id: u64, reason: &str) -> Result<Alert, ClientError> {
        self.signed(
            Method::POST,
            &format!("/v1/admin/alerts/{id}/ack"),
            Some(&AckAlertRequest {
                reason: reason.to_owned(),
            }),
        )
    }

    /// Every audit record after `after` and at or after `since_ms` (all of
    /// them without either), page by page, oldest first, each handed to
    /// `each`, which writes it somewhere (for the SIEM exports, which no
    /// checkpoint vouches for). Returns how many.
    pub fn each_audit_record(
        &self,
        after: Option<u64>,
        since_ms: Option<u64>,
        each: &mut dyn FnMut(AuditRecord) -> std::io::Result<()>,
    ) -> Result<u64, ClientError> {
        let mut query = AuditQuery {
            after: after.unwrap_or(0),
            limit: AUDIT_PAGE,
            since_ms,
            ..Default::default()
        };
        let mut count = 0;
        loop {
            let page = self.audit_query(&query)?;
            let Some(end) = page.last().map(|r| r.seq) else {
                return Ok(count);
            };
            if end <= query.after {
                return Err(ClientError::bad_response(
                    "GET /v1/audit",
                    format!("asked for records after {}, got up to {end}", query.after),
                ));
            }
            query.after = end;
            for record in page {
                count += 1;
                each(record).map_err(|e| ClientError::io("writing the audit records", e))?;
            }
        }
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

    /// `GET /v1/audit?QUERY`: the records `query` asks for, oldest first
    /// (PROTOCOL.md §7.5).
    pub fn audit_query(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, ClientError> {
        self.signed(
            Method::GET,
            &format!("/v1/audit?{}", query.to_query()),
            None::<&()>,
        )
    }

    /// `GET /v1/audit/verify`: the server recomputes the chain and checks the checkpoints.
    pub fn verify_audit(&self) -> Result<AuditVerifyReport, ClientError> {
        self.signed(Method::GET, "/v1/audit/verify", None::<&()>)
    }

    /// `POST /v1/audit/checkpoint`: signs and writes a checkpoint now.
    pub fn audit_checkpoint(&self) -> Result<AuditCheckpoint, ClientError> {
        self.signed(Method::POST, "/v1/audit/checkpoint", None::<&()>)
    }

    /// Writes the audit log after record `after` (0: the whole chain) to
    /// `out` as an export (docs/PROTOCOL.md §9.1) that a third party can
    /// verify offline with the server's audit public key.
    ///
    /// The server first signs a checkpoint (`POST /v1/audit/checkpoint`); the
    /// export ends at that checkpoint's count, so its last record is vouched
    /// for by a signature. Records are then read a page at a time (each read
    /// is itself audited, after the checkpoint). They are written exactly as
    /// the server returned them, gaps included: judging them is the
    /// verifier's job. `out` is written as it goes; the caller makes the file
    /// appear only when this returns `Ok`.
    pub fn export_audit(
        &self,
        after: u64,
        out: &mut dyn Write,
    ) -> Result<AuditExportSummary, ClientError> {
        let checkpoint = self.audit_checkpoint()?;
        let last_seq = checkpoint.count;
        if after >= last_seq {
            return Err(ClientError::InvalidArgument(format!(
                "nothing to export after record {after}: the audit log holds {last_seq} records"
            )));
        }
        let header = AuditExportHeader {
            version: 1,
            server: self.config().server_url.clone(),
            first_seq: after + 1,
            last_seq,
            exported_at_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        };
        let write = |out: &mut dyn Write, line: &AuditExportLine| -> Result<(), ClientError> {
            let mut bytes = serde_json::to_vec(line).map_err(|e| {
                ClientError::io("writing the audit export", std::io::Error::other(e))
            })?;
            bytes.push(b'\n');
            out.write_all(&bytes)
                .map_err(|e| ClientError::io("writing the audit export", e))
        };
        write(out, &AuditExportLine::Export(header.clone()))?;
        write(out, &AuditExportLine::Checkpoint(checkpoint.clone()))?;
        let mut next = after;
        let mut records = 0u64;
        'pages: while next < last_seq {
            let page = self.audit_records(Some(next), Some(AUDIT_PAGE))?;
            let Some(end) = page.last().map(|r| r.seq) else {
                // The log ends short of the checkpoint just signed: write
                // what there is and let the verifier say what is missing.
                break;
            };
            if end <= next {
                return Err(ClientError::bad_response(
                    "GET /v1/audit",
                    format!("asked for records after {next}, got up to {end}"),
                ));
            }
            for record in page {
                if record.seq > last_seq {
                    break 'pages;
                }
                next = record.seq;
                write(out, &AuditExportLine::Record(record))?;
                records += 1;
            }
        }
        out.flush()
            .map_err(|e| ClientError::io("writing the audit export", e))?;
        Ok(AuditExportSummary {
            header,
            records,
            checkpoint,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_listings_flatten_the_public_key_info() {
        let json = r#"{"key_id":"00","public_key":"K","url":"https://k","state":"retired","created_at":5}"#;
        let key: KeyInfo = serde_json::from_str(json).unwrap();
        assert_eq!(key.state, irm_core::protocol::KeyState::Retired);
        assert_eq!(key.key.url, "https://k");
    }

    #[test]
    fn group_names_lose_their_at_sign() {
        assert_eq!(group_name("@support"), "support");
        assert_eq!(group_name("support"), "support");
    }
}
