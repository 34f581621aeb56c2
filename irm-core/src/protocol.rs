//! Key-server protocol types (docs/PROTOCOL.md): the JSON bodies of every
//! endpoint and the one [`DenyReason`] enum that names every refusal.
//!
//! Shared by the key server and the client crate so that both sides compile
//! against one contract: every request and response body of the API is
//! defined here and nowhere else. With the `openapi` feature (enabled by the
//! key server only) each type also derives its OpenAPI schema, so the
//! server's `/openapi.json` is generated from the very types it speaks.
//! Transport (HTTP, TLS) is theirs; this module only defines what travels.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::error::FormatError;
use crate::header::SealedHeader;
use crate::policy::{Policy, Rights};

mod alert;
mod approval;
mod audit_query;
mod detection;
mod digest;
mod review;
mod role;
mod trace;
mod unseal;
mod watch;
mod working_hours;

pub use alert::{
    ALERT_ACTION_PREFIX, ALERT_DELIVERY_VERSION, AckAlertRequest, Alert, AlertAck, AlertDelivery,
    AlertResponse,
};
pub use approval::{
    APPROVAL_DOMAIN, ApprovalAction, ApprovalInfo, ApprovalRequestInfo, ApprovalRule,
    ApproveRequest, BREAK_GLASS_LIFETIME_SECS, DEFAULT_TAKE_OUT_ROWS, EXPORT_WINDOW_SECS,
    MAX_REASON_LEN, MAX_REQUIRED_APPROVALS, RequestAnswer, RequestState, SetApprovalRuleRequest,
    TakeOut, valid_reason,
};
pub use audit_query::{AuditQuery, MAX_AUDIT_PAGE};
pub use detection::{
    DETECTION_RULES, DetectionAction, DetectionLimit, DetectionRuleInfo, MAX_DETECTION_WINDOW_SECS,
    SetDetectionRuleRequest, check_detection_setting, detection_loosens, detection_setting_text,
    parse_detection_setting,
};
pub use digest::{
    ContactError, DataOwner, DataOwners, DigestDelivery, DigestSentRequest, MAX_DIGEST_DELIVERIES,
    MAX_OWNER_CONTACT_LEN, OwnerContact, is_bidi_control,
};
pub use review::{
    AccountReview, ClassificationRecipients, DEFAULT_DORMANT_DAYS, DormantDevice, DormantUser,
    GroupMembers, MAX_DORMANT_DAYS, PrivilegedUser, ReviewDone, ReviewDoneRequest,
};
pub use role::Role;
pub use trace::{
    CANARY_CUT_ROWS, CANARY_MISS_PROBABILITY, Canary, ExportReceipt, ExportReport, MAX_CANARIES,
    MAX_EXPORT_ROWS, MAX_TRACE_VALUE_LEN, MAX_TRACE_VALUES, TraceAnswer, TraceRequest,
    TracedExport, TracedGrant, WATERMARK_BITS, WatermarkTrace, canary_count,
    canary_miss_probability, contact_key, fold_width, grant_prefix_of_watermark, watermark_id,
};
pub use unseal::{
    MIN_SHARE_THRESHOLD, ReissueSharesRequest, SealMode, UnsealRequest, UnsealStatus,
    WrappedShareInfo,
};
pub use watch::{MAX_WATCH_CURSOR_LEN, WatchQuery};
pub use working_hours::{
    GroupWorkingHours, MAX_HOLIDAYS, SetWorkingHoursRequest, WEEKDAYS, WorkingHours,
};

/// `POST /v1/recipients`: recipients as a policy writes them (`alice`,
/// `@support`), to check before sealing (PROTOCOL.md §6.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecipientCheckRequest {
    /// The recipients, at most 1,000.
    pub recipients: Vec<String>,
}

/// A recipient the key server does not know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnknownRecipient {
    /// As it was sent.
    pub recipient: String,
    /// What was probably meant (`@support` for `@suport`, or for `support`
    /// when that is a group), if anything is close.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
    /// One line for people: `no group @suport; did you mean @support?`.
    pub message: String,
}

/// The answer: every recipient that names no user or group (empty: all known).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecipientCheck {
    /// The unknown ones, in the order sent.
    pub unknown: Vec<UnknownRecipient>,
}

/// Why the key server refused. Serialises to stable snake_case strings that
/// map one-to-one onto the HTTP body, an FFI status and a CLI exit code. New
/// reasons are additions; an existing string or number never changes meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DenyReason {
    /// The request's device signature is missing, malformed, stale, replayed
    /// or does not verify, or the device is unknown.
    #[error("the request's device credential is not valid")]
    CredentialInvalid,
    /// An administrator suspended this user.
    #[error("this user account is suspended")]
    UserSuspended,
    /// An administrator revoked this device.
    #[error("this device has been revoked")]
    DeviceRevoked,
    /// The file was sealed to a key this server does not know.
    #[error("the file was sealed to a key this key server does not hold")]
    KeyUnknown,
    /// The file was sealed to a key an administrator retired.
    #[error("the key this file was sealed to has been retired")]
    KeyRetired,
    /// The header was altered after sealing: the policy binding does not verify.
    #[error("the file's header was altered after sealing")]
    PolicyBindingFailed,
    /// An administrator revoked this file.
    #[error("an administrator revoked this file")]
    FileRevoked,
    /// Neither the user nor any of their groups is a recipient.
    #[error("you are not a recipient of this file")]
    NotRecipient,
    /// The policy's not-before time has not come yet (server clock).
    #[error("the file cannot be opened yet (its not-before time is in the future)")]
    NotYetValid,
    /// The policy's not-after time has passed (server clock).
    #[error("the file has expired (its not-after time has passed)")]
    PolicyExpired,
    /// An administrator expired this file early.
    #[error("an administrator expired this file")]
    FileExpired,
    /// An administrator's restriction leaves this user no right on the file.
    #[error("an administrator restricted this file; no right is left for you")]
    RightsRestricted,
    /// The action reported or requested is not among the grant's rights.
    #[error("your grant does not include this right")]
    RightNotGranted,
    /// The caller lacks the role the operation needs (admin, auditor or maintainer).
    #[error("this operation needs a role you do not have")]
    RoleRequired,
    /// The enrollment code is wrong, used, burned or expired.
    #[error("the enrollment code is not valid (wrong, used, expired or burned by too many tries)")]
    EnrollmentCodeInvalid,
    /// Taking the file's plaintext out needs approval by administrators
    /// (PROTOCOL.md §7.3), and this device holds no live approved export.
    #[error("taking this file out needs administrators' approval first")]
    ExportApprovalRequired,
    /// The key server restarted and its keys are still sealed: it answers
    /// nothing but unsealing until enough share holders have submitted
    /// their shares (PROTOCOL.md §11.2). HTTP 503.
    #[error("the key server is sealed: its keys are locked until share holders unseal it")]
    ServerSealed,
    /// A record the decision reads (a user, a device, a membership, a
    /// file's controls) is not as the audit log last set it: written into
    /// the database behind the server's back (PROTOCOL.md §11.3).
    #[error("the key server's records failed their integrity check")]
    StateIntegrity,
    /// A detection rule saw unusual activity by this person (for example
    /// far more files than the work needs in a few minutes) and paused
    /// their grants until administrators have reviewed it (PROTOCOL.md §12).
    #[error("your access is paused for review after unusual activity")]
    StepUpRequired,
}

impl DenyReason {
    /// A refusal's message naming whom to call (PROTOCOL.md §12): the
    /// reason's text, then `; call CONTACT`.
    pub fn message_with_contact(self, contact: &str) -> String {
        format!("{self}; call {contact}")
    }

    /// The contact a refusal's message names, if it was made by
    /// [`DenyReason::message_with_contact`] for this reason.
    pub fn contact_in(self, message: &str) -> Option<&str> {
        message
            .strip_prefix(&self.to_string())?
            .strip_prefix("; call ")
            .filter(|contact| !contact.is_empty())
    }

    /// Every reason, in number order.
    pub const ALL: [DenyReason; 19] = [
        Self::CredentialInvalid,
        Self::UserSuspended,
        Self::DeviceRevoked,
        Self::KeyUnknown,
        Self::KeyRetired,
        Self::PolicyBindingFailed,
        Self::FileRevoked,
        Self::NotRecipient,
        Self::NotYetValid,
        Self::PolicyExpired,
        Self::FileExpired,
        Self::RightsRestricted,
        Self::RightNotGranted,
        Self::RoleRequired,
        Self::EnrollmentCodeInvalid,
        Self::ExportApprovalRequired,
        Self::ServerSealed,
        Self::StateIntegrity,
        Self::StepUpRequired,
    ];

    /// The stable wire string (the serde form).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CredentialInvalid => "credential_invalid",
            Self::UserSuspended => "user_suspended",
            Self::DeviceRevoked => "device_revoked",
            Self::KeyUnknown => "key_unknown",
            Self::KeyRetired => "key_retired",
            Self::PolicyBindingFailed => "policy_binding_failed",
            Self::FileRevoked => "file_revoked",
            Self::NotRecipient => "not_recipient",
            Self::NotYetValid => "not_yet_valid",
            Self::PolicyExpired => "policy_expired",
            Self::FileExpired => "file_expired",
            Self::RightsRestricted => "rights_restricted",
            Self::RightNotGranted => "right_not_granted",
            Self::RoleRequired => "role_required",
            Self::EnrollmentCodeInvalid => "enrollment_code_invalid",
            Self::ExportApprovalRequired => "export_approval_required",
            Self::ServerSealed => "server_sealed",
            Self::StateIntegrity => "state_integrity",
            Self::StepUpRequired => "step_up_required",
        }
    }

    /// The stable number (FFI status = 300 + this). Never reused.
    pub fn code(self) -> u16 {
        match self {
            Self::CredentialInvalid => 1,
            Self::UserSuspended => 2,
            Self::DeviceRevoked => 3,
            Self::KeyUnknown => 4,
            Self::KeyRetired => 5,
            Self::PolicyBindingFailed => 6,
            Self::FileRevoked => 7,
            Self::NotRecipient => 8,
            Self::NotYetValid => 9,
            Self::PolicyExpired => 10,
            Self::FileExpired => 11,
            Self::RightsRestricted => 12,
            Self::RightNotGranted => 13,
            Self::RoleRequired => 14,
            Self::EnrollmentCodeInvalid => 15,
            Self::ExportApprovalRequired => 16,
            Self::ServerSealed => 17,
            Self::StateIntegrity => 18,
            Self::StepUpRequired => 19,
        }
    }

    /// What the person can do about it, for user interfaces.
    pub fn advice(self) -> &'static str {
        match self {
            Self::CredentialInvalid => "enroll this device again, or check the computer's clock",
            Self::UserSuspended | Self::DeviceRevoked | Self::RoleRequired => {
                "ask your administrator"
            }
            Self::KeyUnknown => "the file was sealed for another key server",
            Self::KeyRetired | Self::FileRevoked | Self::FileExpired | Self::RightsRestricted => {
                "ask the file's owner or your administrator for a new copy"
            }
            Self::PolicyBindingFailed => {
                "the file was tampered with; ask the sender for a new copy"
            }
            Self::NotRecipient => "ask the file's owner to share it with you or your group",
            Self::NotYetValid => "try again after the file's not-before time",
            Self::PolicyExpired => "ask the file's owner for a new copy",
            Self::RightNotGranted => "ask the file's owner for that right",
            Self::EnrollmentCodeInvalid => "ask your administrator for a new enrollment code",
            Self::ExportApprovalRequired => {
                "ask for approval with `irm export request FILE --reason TICKET`, then open it again once two administrators have approved"
            }
            Self::ServerSealed => {
                "try again in a few minutes; the key server's share holders unseal it with `irm admin unseal` after a restart"
            }
            Self::StateIntegrity => {
                "tell your security team: someone may have changed the key server's database directly"
            }
            Self::StepUpRequired => {
                "call your supervisor or security team: your access is recorded and reviewed, and opens again once two administrators have released it"
            }
        }
    }
}

/// A refusal body: HTTP 403 with `{"reason": "...", "message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DenyBody {
    /// Machine-readable reason.
    pub reason: DenyReason,
    /// Human-readable text.
    pub message: String,
}

/// Any other error body (400, 401, 404, 413, 415, 500): `{"error": "...", "message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// A stable snake_case kind such as `bad_request` or `internal`.
    pub error: String,
    /// Human-readable text.
    pub message: String,
}

/// Whether `name` is a valid user or group name on the API: 1 to 64 of
/// `a-z A-Z 0-9 . _ -` (PROTOCOL.md §7). A group is named without the `@`
/// a policy writes before it. Policies may name more (FORMAT.md §5.1), but
/// the key server creates only these, so a policy naming anything else
/// matches nobody.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The key server's current public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerKeyInfo {
    /// `KeyId` in hex.
    pub key_id: String,
    /// `KasPublicKey::to_text()`.
    pub public_key: String,
    /// The URL sealers put in key-access entries.
    pub url: String,
}

/// The state of a key server key (PROTOCOL.md §7). Stored and sent as its
/// snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// The key new files are sealed to.
    Current,
    /// An older key: still opens the files sealed to it.
    Active,
    /// Retired: every file under it is denied (`key_retired`).
    Retired,
}

/// A key as `GET /v1/admin/keys` lists it: [`ServerKeyInfo`] plus its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyInfo {
    /// The public information.
    #[serde(flatten)]
    pub key: ServerKeyInfo,
    /// Whether new files are sealed to it, old ones still open, or none.
    pub state: KeyState,
}

/// `POST /v1/enroll` (unauthenticated; the one-time code is the credential).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrollRequest {
    /// The user name the code was issued for; empty or absent to let the
    /// server find the user from the code (docs/PROTOCOL.md §3.2).
    #[serde(default)]
    pub user: String,
    /// The one-time enrollment code.
    pub code: String,
    /// A label for the device, such as the host name.
    pub device_name: String,
    /// The device's X25519 public key (base64url), to which grants are rewrapped.
    pub device_public_key: String,
    /// The device's Ed25519 request-signing public key (base64url).
    pub signing_public_key: String,
    /// Proof of possession: an Ed25519 signature (base64url) by the signing key
    /// over `enrollment_proof_message(user, code, device_public_key)`.
    pub proof: String,
}

/// The answer to a successful enrollment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrollResponse {
    /// The new device's id (32 hex digits); requests name it.
    pub device_id: String,
    /// The user the device belongs to.
    pub user: String,
    /// The user's roles.
    pub roles: Vec<Role>,
    /// The user's groups.
    pub groups: Vec<String>,
    /// The key server's current key, for online sealing.
    pub server_key: ServerKeyInfo,
}

/// A sealed file's header as the API carries it: its bytes exactly as
/// stored, in base64url without padding (PROTOCOL.md §4). Both sides go
/// through this type: the client encodes with [`EncodedHeader::new`], the
/// server decodes with [`EncodedHeader::decode`], which accepts exactly one
/// header and nothing after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String, format = Byte))]
pub struct EncodedHeader(String);

/// Why an [`EncodedHeader`] does not decode to one header.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderDecodeError {
    /// Not base64url without padding.
    #[error("header is not base64url without padding")]
    NotBase64,
    /// The bytes are not a valid header (FORMAT.md §3-§5).
    #[error("the header does not parse: {0}")]
    Format(#[source] FormatError),
    /// Bytes follow the header.
    #[error("bytes follow the header; send the header alone (SealedHeader::to_bytes)")]
    TrailingBytes,
}

impl EncodedHeader {
    /// Encodes `header`'s bytes as stored.
    pub fn new(header: &SealedHeader) -> Self {
        Self(URL_SAFE_NO_PAD.encode(header.to_bytes()))
    }

    /// The base64url text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Decodes and parses the header; also returns its bytes (the server
    /// keys its unwrap cache by them).
    pub fn decode(&self) -> Result<(SealedHeader, Vec<u8>), HeaderDecodeError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(&self.0)
            .map_err(|_| HeaderDecodeError::NotBase64)?;
        let (header, used) = SealedHeader::parse(&bytes).map_err(HeaderDecodeError::Format)?;
        if used != bytes.len() {
            return Err(HeaderDecodeError::TrailingBytes);
        }
        Ok((header, bytes))
    }
}

impl From<String> for EncodedHeader {
    /// Wraps text as received; [`EncodedHeader::decode`] checks it.
    fn from(text: String) -> Self {
        Self(text)
    }
}

/// `POST /v1/grant`: ask for the content key of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GrantRequest {
    /// The file's header bytes, exactly as stored.
    pub header: EncodedHeader,
    /// Whether this renews a lease the client already holds (audited as a renewal).
    #[serde(default)]
    pub renew: bool,
}

/// A grant: the content key rewrapped to the requesting device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GrantResponse {
    /// The file's id (hex).
    pub file_id: String,
    /// The grant's id (hex); usage events name it.
    pub grant_id: String,
    /// Who the grant is for.
    pub user: String,
    /// Their full name, for the watermark (empty from servers that predate
    /// it: the viewer then names the login alone).
    #[serde(default)]
    pub display_name: String,
    /// The device it is bound to (hex).
    pub device_id: String,
    /// The effective rights: the policy's rights for this user, minus any
    /// administrator restriction.
    pub rights: Rights,
    /// Whether viewers must draw the watermark.
    pub watermark_required: bool,
    /// The server's clock when it decided (Unix seconds).
    pub server_time: u64,
    /// When the lease ends (Unix seconds, server clock). The client converts
    /// it to a monotonic deadline on receipt and never uses the key past it.
    pub lease_expires_at: u64,
    /// The policy's not-after time, if any, for "time left" displays.
    pub not_after: Option<u64>,
    /// `ephemeral_public (32) || ciphertext (48)`, base64url (FORMAT.md §4.5).
    pub wrapped_key: String,
    /// What the person should know about their account since their last
    /// grant on this device (PROTOCOL.md §4.3), each delivered once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<Notice>,
    /// The newest signed audit checkpoint when the grant was decided
    /// (PROTOCOL.md §9.2), which the device keeps as a witness that the log
    /// is not later cut back. Absent only before the server's first one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<AuditCheckpoint>,
    /// Where the device's push channel for this file starts
    /// (`GET /v1/watch?file=..&after=..`, PROTOCOL.md §13): the server's
    /// change cursor taken before the grant was decided, so that no change
    /// made after the decision can go unseen. Absent from servers without
    /// the push channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_cursor: Option<String>,
    /// The grant's watermark id (PROTOCOL.md §7.8): 60 random bits of the
    /// grant id in Crockford base 32 (`W7K2-9QXM-4HTD`), which viewers show
    /// in the watermark so that a photo of the screen or the paper names
    /// the grant. Absent from older servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark_id: Option<String>,
}

/// How often a watch stream carries a heartbeat (PROTOCOL.md §13).
pub const WATCH_HEARTBEAT_SECS: u64 = 5;
/// Heartbeats a client may miss before it treats the stream as down and
/// asks for a fresh grant (PROTOCOL.md §13).
pub const WATCH_MISSED_HEARTBEATS: u32 = 3;
/// The most watch streams a client keeps on one HTTP/2 connection before
/// it opens another (PROTOCOL.md §13): 100, the least RFC 9113 §6.5.2 lets
/// a server (or a proxy between) advertise as its concurrent-stream limit,
/// so that no stream waits for a slot that a never-ending stream holds.
pub const WATCH_STREAMS_PER_CONNECTION: usize = 100;

/// The first event of a watch stream (`event: ready`, PROTOCOL.md §13).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WatchReady {
    /// The change cursor from which this stream reports.
    pub cursor: String,
    /// Seconds between heartbeats ([`WATCH_HEARTBEAT_SECS`]).
    pub heartbeat_secs: u64,
}

/// A change the watching device must check its grant against
/// (`event: recheck`, PROTOCOL.md §13): it asks for a fresh grant (a
/// renewal), and the grant decision says whether the document stays open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WatchRecheck {
    /// The cursor after this change, to resume from after a reconnection.
    pub cursor: String,
    /// What changed.
    pub subject: WatchSubject,
}

/// What a recheck is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WatchSubject {
    /// The watched file's controls (revoked, expired, restricted, restored).
    File,
    /// The person (suspended, held, roles, group memberships).
    User,
    /// The device (revoked).
    Device,
    /// The server cannot say what changed since the cursor (it restarted,
    /// another instance answers, or the cursor is too old): check anyway.
    Unknown,
}

/// Something about a person's account they should know, told at their next
/// grant on each of their other devices (PROTOCOL.md §4.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Notice {
    /// What happened.
    pub kind: NoticeKind,
    /// When (Unix seconds, server clock).
    pub at: u64,
    /// The device concerned (hex).
    pub device_id: String,
    /// Its name, as given when it enrolled.
    pub device_name: String,
    /// Who issued the code it enrolled with, as the audit log says it
    /// (`request=ID requested_by=A approved_by=B`, or `issued_by=...`).
    pub code_origin: String,
}

/// The kinds of [`Notice`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NoticeKind {
    /// Another device was enrolled for this person's account. If it was not
    /// them, someone else can now act as them: they should tell their
    /// security team at once.
    NewDevice,
    /// Someone approved a request with the break-glass code (PROTOCOL.md
    /// §7.4): told to every administrator. `device_id` and `device_name` are
    /// the device that used it; `code_origin` says what was approved
    /// (`request=ID action=KIND requested_by=A used_by=B`).
    BreakGlass,
}

impl Notice {
    /// One line for people, in English (front ends that speak other
    /// languages build their own from the fields).
    pub fn message(&self) -> String {
        match self.kind {
            NoticeKind::NewDevice => format!(
                "a new device \"{}\" ({}) was enrolled for your account (code {}); if it was not you, tell your security team now",
                self.device_name, self.device_id, self.code_origin
            ),
            NoticeKind::BreakGlass => format!(
                "BREAK-GLASS: the emergency code approved a request ({}) from device \"{}\" ({}); if this was not a known emergency, treat it as an incident now",
                self.code_origin, self.device_name, self.device_id
            ),
        }
    }
}

/// What a client did under a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum UsageAction {
    /// Printed (needs `print`).
    Print,
    /// Copied to the clipboard (needs `copy`).
    Copy,
    /// Saved plaintext (needs `export`).
    Export,
    /// Handed plaintext to a program through the library (needs `program`).
    ProgramRead,
    /// Closed the document (always allowed).
    Close,
}

impl UsageAction {
    /// The right the action needs, if any.
    pub fn required_right(self) -> Option<Rights> {
        match self {
            Self::Print => Some(Rights::PRINT),
            Self::Copy => Some(Rights::COPY),
            Self::Export => Some(Rights::EXPORT),
            Self::ProgramRead => Some(Rights::PROGRAM),
            Self::Close => None,
        }
    }
}

impl TakeOut {
    /// The usage event that spends it (here, with [`UsageAction`], so that
    /// the approval module need not import the module that imports it).
    pub fn event(self) -> UsageAction {
        match self {
            Self::Export => UsageAction::Export,
            Self::Copy => UsageAction::Copy,
            Self::Print => UsageAction::Print,
            Self::Program => UsageAction::ProgramRead,
        }
    }

    /// The take-out a usage event is, if any.
    pub fn of_event(action: UsageAction) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.event() == action)
    }
}

/// `POST /v1/events`: report a usage event under a grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventRequest {
    /// The grant the action was taken under (hex).
    pub grant_id: String,
    /// What was done.
    pub action: UsageAction,
    /// Optional detail (for example a printer name); at most 256 characters.
    #[serde(default)]
    pub detail: Option<String>,
    /// For `copy` and `print`: how many rows it takes out. More than the
    /// server's threshold (or none given) needs an approved take-out
    /// (PROTOCOL.md §7.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
}

/// `POST /v1/files`: register a file sealed online, so admins can list and revoke it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisterFileRequest {
    /// The header bytes, exactly as stored.
    pub header: EncodedHeader,
    /// The original file name, if the owner wants admins to see it.
    #[serde(default)]
    pub file_name: Option<String>,
}

/// A file as the key server knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileInfo {
    /// The file id (hex).
    pub file_id: String,
    /// Who registered it (absent for files first seen through a grant request).
    pub owner: Option<String>,
    /// The registered name.
    pub file_name: Option<String>,
    /// The policy from its header; absent while the server has not seen the
    /// header (an administrator acted on the id first: PROTOCOL.md §7).
    pub policy: Option<Policy>,
    /// Whether an administrator revoked or expired it.
    pub state: FileState,
    /// Rights an administrator took away from everyone.
    pub restricted_rights: Rights,
    /// When the key server first saw it, or an administrator first named it
    /// (Unix seconds).
    pub first_seen_at: u64,
}

/// A file's administrative state (PROTOCOL.md §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FileState {
    /// No administrator revoked or expired it.
    Active,
    /// Revoked: every grant is refused (`file_revoked`).
    Revoked,
    /// Expired by an administrator (`file_expired` from that time on).
    Expired,
}

/// A person's account state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum UserState {
    /// May enroll devices and get grants.
    Active,
    /// Suspended: every request is refused (`user_suspended`).
    Suspended,
}

/// A device's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeviceState {
    /// Its signed requests are served.
    Active,
    /// Revoked: its requests are refused (`device_revoked`).
    Revoked,
}

/// The snake_case names these states travel and are stored as; `Display`
/// prints the same name, so that what people read is what scripts match.
macro_rules! state_names {
    ($($ty:ident { $($variant:ident => $name:literal),* $(,)? })*) => {$(
        impl $ty {
            /// The wire and stored form.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name),* }
            }

            /// Parses the wire and stored form.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($name => Some(Self::$variant),)* _ => None }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }
    )*};
}

state_names! {
    KeyState { Current => "current", Active => "active", Retired => "retired" }
    FileState { Active => "active", Revoked => "revoked", Expired => "expired" }
    UserState { Active => "active", Suspended => "suspended" }
    DeviceState { Active => "active", Revoked => "revoked" }
    Role { Admin => "admin", Auditor => "auditor", User => "user", Maintainer => "maintainer" }
    RequestState { Pending => "pending", Done => "done", Failed => "failed", Denied => "denied", Expired => "expired" }
}

/// A user as admins see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserInfo {
    /// Login name, one per person.
    pub name: String,
    /// Full name for watermarks and audit.
    pub display_name: String,
    /// Roles.
    pub roles: Vec<Role>,
    /// Groups.
    pub groups: Vec<String>,
    /// Whether an administrator suspended them.
    pub state: UserState,
}

/// `POST /v1/admin/users`: create a person and get their one-time code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateUserRequest {
    /// Login name (1 to 64 of `a-z A-Z 0-9 . _ -`).
    pub name: String,
    /// Full name.
    pub display_name: String,
    /// Roles; default `[user]`.
    #[serde(default)]
    pub roles: Vec<Role>,
    /// Groups to join.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// `POST /v1/export-requests`: ask administrators to let this device take
/// one file's plaintext out once (PROTOCOL.md §7.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExportRequest {
    /// The file (32 hex digits).
    pub file_id: String,
    /// How it is to be taken out (default `export`).
    #[serde(default)]
    pub how: TakeOut,
}

/// A fresh one-time enrollment code for a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrollmentCode {
    /// The user it is for.
    pub user: String,
    /// The code, shown once.
    pub code: String,
    /// When it expires (Unix seconds).
    pub expires_at: u64,
}

/// A device as admins see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceInfo {
    /// Device id (hex).
    pub device_id: String,
    /// Owner.
    pub user: String,
    /// Label given at enrollment.
    pub name: String,
    /// Whether an administrator revoked it.
    pub state: DeviceState,
    /// Enrollment time (Unix seconds).
    pub enrolled_at: u64,
}

/// `POST /v1/admin/files/{id}/restrict`: take rights away from every grant of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RestrictRequest {
    /// The rights to remove.
    pub remove: Rights,
}

/// `POST /v1/admin/groups`: create a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateGroupRequest {
    /// The group name, without `@` (1 to 64 of `a-z A-Z 0-9 . _ -`).
    pub name: String,
}

/// `POST /v1/admin/groups/{name}/members`: add a user to a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddMemberRequest {
    /// The user to add.
    pub user: String,
}

/// One audit record (docs/PROTOCOL.md, "Audit log").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// Server time (Unix milliseconds).
    pub at_ms: u64,
    /// The acting user, if known.
    pub actor_user: Option<String>,
    /// The acting device, if known (hex).
    pub actor_device: Option<String>,
    /// What happened, such as `grant`, `renew`, `deny`, `event.print`, `admin.file.revoke`.
    pub action: String,
    /// The file concerned, if any (hex).
    pub file_id: Option<String>,
    /// `ok` or `denied` or `failed`.
    pub result: String,
    /// The denial reason or failure kind, if any.
    pub reason: Option<String>,
    /// The client's address.
    pub client_addr: Option<String>,
    /// Free-form detail (target user, rights, ...).
    pub detail: Option<String>,
    /// Hex SHA-256 of the previous record (64 zeros for the first).
    pub prev_hash: String,
    /// Hex SHA-256 of this record's canonical bytes and `prev_hash`.
    pub hash: String,
}

/// A signed statement of the audit chain's length and head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditCheckpoint {
    /// Number of records covered.
    pub count: u64,
    /// Hash of record `count` (hex).
    pub head_hash: String,
    /// When it was signed (Unix milliseconds).
    pub at_ms: u64,
    /// The server's audit signing public key (base64url Ed25519).
    pub signing_key: String,
    /// Ed25519 signature (base64url) over `checkpoint_message(count, head_hash, at_ms)`.
    pub signature: String,
}

/// One line of an audit export (docs/PROTOCOL.md §9.1): JSON Lines, each
/// line an object with one key that names what it holds
/// (`{"export": {..}}`, `{"checkpoint": {..}}`, `{"record": {..}}`). The
/// first line is the `export` header, then the signed checkpoints, then the
/// records in `seq` order, so a verifier reads the file once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AuditExportLine {
    /// What the file holds.
    Export(AuditExportHeader),
    /// A checkpoint signed by the key server's audit key.
    Checkpoint(AuditCheckpoint),
    /// One audit record, exactly as the server returned it.
    Record(AuditRecord),
}

/// The first line of an audit export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditExportHeader {
    /// The export format version: 1.
    pub version: u32,
    /// The key server the records come from (informational).
    pub server: String,
    /// The `seq` of the first record (1 for the whole chain).
    pub first_seq: u64,
    /// The `seq` of the last record: the `count` of a checkpoint in the file.
    pub last_seq: u64,
    /// When the export was written (the exporter's clock, Unix milliseconds).
    pub exported_at_ms: u64,
}

/// The result of verifying the audit chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditVerifyReport {
    /// Whether the chain and all checkpoints check out.
    pub ok: bool,
    /// Records checked.
    pub records: u64,
    /// Checkpoints checked.
    pub checkpoints: u64,
    /// What is wrong, one line each.
    pub problems: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_whom_to_call_in_a_form_read_back_exactly() {
        let reason = DenyReason::StepUpRequired;
        let message = reason.message_with_contact("Sato, ext. 1234; or the desk");
        assert_eq!(
            reason.contact_in(&message),
            Some("Sato, ext. 1234; or the desk")
        );
        assert_eq!(reason.contact_in(&reason.to_string()), None);
        assert_eq!(DenyReason::UserSuspended.contact_in(&message), None);
        assert_eq!(reason.contact_in(&format!("{reason}; call ")), None);
    }

    #[test]
    fn deny_reason_strings_and_numbers_are_stable_and_unique() {
        let mut codes = std::collections::BTreeSet::new();
        let mut names = std::collections::BTreeSet::new();
        for reason in DenyReason::ALL {
            let json = serde_json::to_string(&reason).unwrap();
            assert_eq!(json, format!("\"{}\"", reason.as_str()));
            let back: DenyReason = serde_json::from_str(&json).unwrap();
            assert_eq!(back, reason);
            assert!(codes.insert(reason.code()), "{reason:?} reuses a number");
            assert!(names.insert(reason.as_str()), "{reason:?} reuses a string");
            assert!(!reason.advice().is_empty());
        }
        // Numbers are dense from 1 so that FFI status codes are predictable.
        assert_eq!(
            codes.iter().copied().collect::<Vec<_>>(),
            (1..=19).collect::<Vec<_>>()
        );
        assert_eq!(DenyReason::StepUpRequired.as_str(), "step_up_required");
        assert_eq!(DenyReason::StepUpRequired.code(), 19);
        // Frozen: changing one of these breaks every client in the field.
        assert_eq!(DenyReason::FileRevoked.as_str(), "file_revoked");
        assert_eq!(DenyReason::FileRevoked.code(), 7);
        assert_eq!(DenyReason::PolicyExpired.code(), 10);
    }

    #[test]
    fn every_usage_action_but_close_needs_its_right() {
        assert_eq!(UsageAction::Print.required_right(), Some(Rights::PRINT));
        assert_eq!(
            UsageAction::ProgramRead.required_right(),
            Some(Rights::PROGRAM)
        );
        assert_eq!(UsageAction::Close.required_right(), None);
        let json = serde_json::to_string(&UsageAction::ProgramRead).unwrap();
        assert_eq!(json, "\"program_read\"");
    }
}
