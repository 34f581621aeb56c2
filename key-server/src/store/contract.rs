//! The store's contract: the [`Store`] trait, and the records and inputs
//! its operations speak in (the domain's terms, never SQL). The backends,
//! the operations over their rows and the group commit implement it; the
//! handlers and the data directory call it through `crate::store`, which
//! re-exports all of this.

use std::fmt;

use irm_core::protocol::{
    Alert, ApprovalAction, ApprovalRequestInfo, ApprovalRule, AuditRecord, DenyReason, DeviceInfo,
    DeviceState, EnrollmentCode, FileInfo, KeyState, Notice, Role, TakeOut, UsageAction, UserInfo,
    UserState,
};
use irm_core::{FileId, KasPublicKey, KeyId, Policy, Rights};

use crate::audit::{AuditDraft, Outcome};
pub use crate::codes::{CodeHalf, CodeIssue};
use crate::error::{Refusal, StoreError};
use crate::grant::decision::{Decision, GrantFacts};

/// How long an approval request waits for its approvals (PROTOCOL.md §7.2).
pub const REQUEST_LIFETIME_SECS: u64 = 24 * 60 * 60;

/// Wrong enrollment attempts that burn a code (PROTOCOL.md §3.1).
pub const MAX_CODE_FAILURES: i64 = 5;
/// Wrong codes sent without a user name that the server accepts per window,
/// across all users (PROTOCOL.md §3.2); then user-less enrollment pauses.
pub const MAX_USERLESS_FAILURES: u64 = 20;
/// The length of that window.
pub const USERLESS_WINDOW_SECS: u64 = 3600;

/// A stored answer: `Ok(Ok(v))` done, `Ok(Err(refusal))` refused (and
/// audited as such), `Err(store)` the store failed.
pub type StoreResult<T> = Result<Result<T, Refusal>, StoreError>;

/// Receives a grant's outcome once its audit record is durable.
pub type GrantDone = Box<dyn FnOnce(Result<GrantOutcome, StoreError>) + Send>;

/// Who is acting: the verified device and its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// User name.
    pub user: String,
    /// Device id (hex).
    pub device: String,
    /// The client's address.
    pub client_addr: Option<String>,
    /// Why, in the person's words (a ticket id): `?reason=` on an
    /// administrative call (PROTOCOL.md §7), recorded in its audit detail.
    pub reason: Option<String>,
}

impl Actor {
    /// An audit draft naming this actor.
    pub fn draft(&self, at_ms: u64, action: impl Into<String>, result: Outcome) -> AuditDraft {
        let mut draft = AuditDraft::new(at_ms, action, result);
        draft.actor_user = Some(self.user.clone());
        draft.actor_device = Some(self.device.clone());
        draft.client_addr = self.client_addr.clone();
        draft
    }
}

/// A person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Login name.
    pub name: String,
    /// Full name.
    pub display_name: String,
    /// Roles.
    pub roles: Vec<Role>,
    /// Groups, sorted.
    pub groups: Vec<String>,
    /// Not suspended.
    pub active: bool,
}

impl UserRecord {
    /// The admin view.
    pub fn info(&self) -> UserInfo {
        UserInfo {
            name: self.name.clone(),
            display_name: self.display_name.clone(),
            roles: self.roles.clone(),
            groups: self.groups.clone(),
            state: if self.active {
                UserState::Active
            } else {
                UserState::Suspended
            },
        }
    }
}

/// An enrolled device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// Device id (hex).
    pub id: String,
    /// Owner.
    pub user: String,
    /// Label.
    pub name: String,
    /// X25519 public key; grants are rewrapped to it.
    pub public_key: [u8; 32],
    /// Ed25519 request-signing public key.
    pub signing_key: [u8; 32],
    /// Not revoked.
    pub active: bool,
    /// Enrollment time (Unix seconds).
    pub enrolled_at: u64,
}

impl DeviceRecord {
    /// The admin view.
    pub fn info(&self) -> DeviceInfo {
        DeviceInfo {
            device_id: self.id.clone(),
            user: self.user.clone(),
            name: self.name.clone(),
            state: if self.active {
                DeviceState::Active
            } else {
                DeviceState::Revoked
            },
            enrolled_at: self.enrolled_at,
        }
    }
}

/// A key server key as stored (the private half lives in a 0600 file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// Its id.
    pub key_id: KeyId,
    /// Its public half.
    pub public_key: KasPublicKey,
    /// Current, active or retired.
    pub state: KeyState,
    /// Creation time (Unix seconds).
    pub created_at: u64,
}

/// A new person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// Login name.
    pub name: String,
    /// Full name.
    pub display_name: String,
    /// Roles.
    pub roles: Vec<Role>,
    /// Groups to join (must exist).
    pub groups: Vec<String>,
    /// Their first enrollment code.
    pub code: CodeIssue,
}

/// `POST /v1/enroll`, after the keys and proof were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollInput {
    /// The user name as sent.
    pub user: String,
    /// SHA-256 of the normalised code as sent.
    pub code_hash: [u8; 32],
    /// Whether the proof of possession verified.
    pub proof_ok: bool,
    /// The new device.
    pub device: DeviceRecord,
    /// The client's address.
    pub client_addr: Option<String>,
}

/// `POST /v1/grant`, after the header was parsed and its wraps opened.
#[derive(Debug, Clone)]
pub struct GrantInput {
    /// Who asks.
    pub actor: Actor,
    /// The id the grant gets if issued.
    pub grant_id: String,
    /// The request facts.
    pub facts: GrantFacts,
    /// A renewal.
    pub renew: bool,
    /// The server's lease limit.
    pub lease_limit_secs: u64,
}

/// The decision, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantOutcome {
    /// Granted and durable, with the notices this device had waiting
    /// (delivered now, PROTOCOL.md §4.3).
    Granted {
        /// The decision.
        decision: Decision,
        /// What the person should know.
        notices: Vec<Notice>,
    },
    /// Refused and audited.
    Denied(DenyReason),
}

/// `POST /v1/events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventInput {
    /// Who reports.
    pub actor: Actor,
    /// The grant (hex).
    pub grant_id: String,
    /// What was done.
    pub action: UsageAction,
    /// Optional detail.
    pub detail: Option<String>,
    /// Rows a copy or print takes out, as the client counted them.
    pub rows: Option<u64>,
    /// The most rows a copy or print takes out without an approved
    /// take-out (the server's setting).
    pub take_out_rows: u64,
    /// For an export of a customer list (`POST /v1/exports`): the canaries
    /// to issue if the export spends an approved take-out (PROTOCOL.md §7.8).
    pub canaries: Option<CanaryOrder>,
}

/// The canaries an export asks for (PROTOCOL.md §7.8), drawn by the handler
/// (randomness and pools are the server's, not the store's); the store keeps
/// the first contact candidates that no earlier export holds, so that each
/// value names one export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanaryOrder {
    /// The export's id (32 hex digits).
    pub export_id: String,
    /// Data rows the client declared.
    pub rows: u64,
    /// The invented customers, [`irm_core::protocol::canary_count`] of
    /// them; their `phone` and `email` are replaced by the candidates kept.
    pub identities: Vec<irm_core::protocol::Canary>,
    /// Phone numbers to take from, in order (the operator's pool first).
    pub phones: Vec<String>,
    /// E-mail addresses to take from, in order.
    pub emails: Vec<String>,
    /// How many of `phones`, and of `emails`, come first from the
    /// operator's monitored pools (`[canaries]`); the rest reach no one,
    /// unless `emails_monitored` (a catch-all domain the operator reads).
    pub pooled: (usize, usize),
    /// Whether every address in `emails` reaches the operator.
    pub emails_monitored: bool,
}

/// `POST /v1/files`, after the header was parsed and its wrap opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterInput {
    /// The owner.
    pub actor: Actor,
    /// The file.
    pub file_id: FileId,
    /// The key ids of the header's key-access entries, in header order.
    pub header_keys: Vec<KeyId>,
    /// For each header key this server holds: whether its wrap opened
    /// (FORMAT.md §4.4), as for a grant.
    pub bindings: Vec<(KeyId, bool)>,
    /// The header's policy.
    pub policy: Policy,
    /// The name the owner gave.
    pub file_name: Option<String>,
}

/// An administrative or audit operation (PROTOCOL.md §7).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdminOp {
    /// New person with a first code.
    CreateUser(NewUser),
    /// Everyone.
    ListUsers,
    /// Suspend (`false`) or restore (`true`).
    SetUserActive {
        /// Who.
        name: String,
        /// The new state.
        active: bool,
    },
    /// Lift a detection rule's hold on a person (PROTOCOL.md §12).
    ReleaseHold {
        /// Who.
        name: String,
    },
    /// A new code replacing the old.
    NewCode {
        /// Who.
        name: String,
        /// The code.
        code: CodeIssue,
    },
    /// New group.
    CreateGroup {
        /// Its name.
        name: String,
    },
    /// Add a member.
    AddMember {
        /// The group.
        group: String,
        /// The user.
        user: String,
    },
    /// Remove a member.
    RemoveMember {
        /// The group.
        group: String,
        /// The user.
        user: String,
    },
    /// Every device.
    ListDevices,
    /// Revoke a device.
    RevokeDevice {
        /// Device id (hex).
        id: String,
    },
    /// Every known file.
    ListFiles,
    /// Revoke, restore, expire or restrict a file.
    File {
        /// File id (hex).
        id: String,
        /// What to do.
        change: FileChange,
    },
    /// Every key.
    ListKeys,
    /// A new current key (its private half is already on disk).
    RotateKey(KeyRecord),
    /// Retire a key.
    RetireKey {
        /// Key id (hex).
        id: String,
    },
    /// Read audit records after `after`.
    ReadAudit(irm_core::protocol::AuditQuery),
    /// Authorise and record an audit verification or checkpoint that the
    /// caller then performs.
    AuditAccess {
        /// `audit.verify` or `audit.checkpoint`.
        action: &'static str,
    },
    /// Approval requests, newest first (expired ones are marked first).
    ListRequests,
    /// One approval request.
    ShowRequest {
        /// Request id (hex).
        id: String,
    },
    /// Approve a request; when the approvals reach its rule, its action runs.
    Approve {
        /// Request id (hex).
        id: String,
        /// The action hash the approver was shown.
        action_hash: String,
        /// The second half of the code, used if this approval completes a
        /// request that issues one.
        second_half: CodeHalf,
        /// The break-glass code (PROTOCOL.md §7.4): this approval then
        /// completes the request, once, loudly.
        break_glass: Option<String>,
    },
    /// Deny (or, for its requester, withdraw) a pending request.
    DenyRequest {
        /// Request id (hex).
        id: String,
    },
    /// Ask that this device may take one file's plaintext out, in one way
    /// (filed for approval, PROTOCOL.md §7.3); any enrolled person may ask.
    RequestTakeOut {
        /// Export, copy or print.
        how: TakeOut,
        /// File id (hex).
        file_id: String,
        /// Who asks.
        user: String,
        /// From which device (hex).
        device: String,
    },
    /// Split the root key anew among holders (itself approved; the
    /// approved operation checks the holders, and the server then splits).
    ReissueShares {
        /// Shares needed to unseal.
        threshold: u8,
        /// The holders, sorted.
        holders: Vec<String>,
    },
    /// Issue the break-glass code (itself approved; it replaces the old).
    IssueBreakGlass {
        /// The code (its hash), completed by the approval.
        code: CodeIssue,
    },
    /// The approval rules.
    ListRules,
    /// The account review (PROTOCOL.md §7.6): read only.
    Review {
        /// No grant in this many days makes a person or device dormant.
        dormant_days: u32,
    },
    /// Record that the account review was done, and why.
    ReviewDone {
        /// What the reviewers say (required).
        reason: String,
    },
    /// What the configured data owners' groups cover now (PROTOCOL.md
    /// §7.7): read only; the contacts themselves are configuration, joined
    /// by the handler.
    DataOwners {
        /// The groups that have a data owner configured.
        groups: Vec<String>,
    },
    /// Record that digests went out (PROTOCOL.md §7.7): the record is the
    /// whole effect.
    DigestSent {
        /// The period's start (Unix milliseconds).
        since_ms: u64,
        /// The period's end (Unix milliseconds).
        until_ms: u64,
        /// The last record the digests were built from.
        head_seq: u64,
        /// `group:contact` of each digest its owner took (contact as
        /// `OwnerContact::shown` gives it).
        sent: Vec<String>,
        /// `group:contact` of each that could not be delivered.
        failed: Vec<String>,
    },
    /// Change an approval rule (itself approved).
    SetRule {
        /// The action (an `ApprovalAction::kind`).
        action: String,
        /// Approvals it will need.
        required: u8,
    },
    /// The detection rules in force (PROTOCOL.md §12.2).
    ListDetection,
    /// Change a detection rule: at once when it only tightens, approved by
    /// other administrators when it loosens (or switches it off).
    SetDetection {
        /// `bulk_files` or `denials`.
        rule: String,
        /// The new setting; `None` switches it off.
        setting: Option<irm_core::protocol::DetectionLimit>,
    },
    /// The groups' working hours (PROTOCOL.md §12.3).
    ListWorkingHours,
    /// Set or remove a group's working hours: at once when it narrows them
    /// (or gives a group its first), approved when it widens or removes them.
    SetWorkingHours {
        /// The group, or `*`.
        group: String,
        /// The schedule; `None` removes it.
        schedule: Option<irm_core::protocol::WorkingHours>,
    },
    /// The alerts (detection firings, PROTOCOL.md §12.1), oldest first.
    ListAlerts {
        /// Only those nobody has acknowledged.
        open: bool,
    },
    /// One alert.
    ShowAlert {
        /// Its id (the firing's audit `seq`).
        id: u64,
    },
    /// The exports whose canaries are among these contact keys
    /// (PROTOCOL.md §7.8); the caller's reason is required.
    TraceCanaries {
        /// Contact keys (`irm_core::protocol::contact_key`), distinct.
        values: Vec<String>,
    },
    /// The grants a watermark id names; the caller's reason is required.
    TraceWatermark {
        /// The id in its canonical form.
        id: String,
        /// The grant-id prefix it stands for (15 hex digits).
        prefix: String,
    },
    /// Acknowledge an alert (once; it lifts no hold).
    AckAlert {
        /// Its id.
        id: u64,
        /// The acknowledging administrator (the actor).
        by: String,
        /// Why, in their words.
        reason: String,
    },
}

/// What an administrator does to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileChange {
    /// Deny every grant.
    Revoke,
    /// Undo revocation, expiry and restrictions.
    Restore,
    /// Administrative expiry now.
    Expire,
    /// Take these rights from every grant.
    Restrict(Rights),
}

impl AdminOp {
    /// Whether the operation can change stored state (and so what caches of
    /// it hold: see `Store::state_generation`). Lists, audit reads and audit
    /// access change nothing but the audit log.
    pub fn changes_state(&self) -> bool {
        !matches!(
            self,
            Self::ListUsers
                | Self::ListDevices
                | Self::ListFiles
                | Self::ListKeys
                | Self::ReadAudit(_)
                | Self::AuditAccess { .. }
                | Self::ListRequests
                | Self::ShowRequest { .. }
                | Self::ListRules
                | Self::ListDetection
                | Self::ListWorkingHours
                | Self::ListAlerts { .. }
                | Self::ShowAlert { .. }
                // An acknowledgement changes no user, group, device or file.
                | Self::AckAlert { .. }
                | Self::Review { .. }
                | Self::ReviewDone { .. }
                | Self::DataOwners { .. }
                | Self::DigestSent { .. }
                | Self::TraceCanaries { .. }
                | Self::TraceWatermark { .. }
        )
    }

    /// The audit action (`admin.<object>.<verb>`).
    pub fn action(&self) -> &'static str {
        match self {
            Self::CreateUser(_) => "admin.user.create",
            Self::ListUsers => "admin.user.list",
            Self::SetUserActive { active: false, .. } => "admin.user.suspend",
            Self::SetUserActive { active: true, .. } => "admin.user.restore",
            Self::ReleaseHold { .. } => "admin.user.release",
            Self::NewCode { .. } => "admin.user.code",
            Self::CreateGroup { .. } => "admin.group.create",
            Self::AddMember { .. } => "admin.group.add_member",
            Self::RemoveMember { .. } => "admin.group.remove_member",
            Self::ListDevices => "admin.device.list",
            Self::RevokeDevice { .. } => "admin.device.revoke",
            Self::ListFiles => "admin.file.list",
            Self::File { change, .. } => match change {
                FileChange::Revoke => "admin.file.revoke",
                FileChange::Restore => "admin.file.restore",
                FileChange::Expire => "admin.file.expire",
                FileChange::Restrict(_) => "admin.file.restrict",
            },
            Self::ListKeys => "admin.key.list",
            Self::RotateKey(_) => "admin.key.rotate",
            Self::RetireKey { .. } => "admin.key.retire",
            Self::ReadAudit(_) => "audit.read",
            Self::AuditAccess { action } => action,
            Self::ListRequests => "admin.request.list",
            Self::ShowRequest { .. } => "admin.request.show",
            Self::Approve {
                break_glass: Some(_),
                ..
            } => "admin.request.break_glass",
            Self::Approve { .. } => "admin.request.approve",
            Self::DenyRequest { .. } => "admin.request.deny",
            Self::ListRules => "admin.rule.list",
            Self::RequestTakeOut { how, .. } => how.kind(),
            Self::SetRule { .. } => "admin.rule.set",
            Self::ListDetection => "admin.detection.list",
            Self::SetDetection { .. } => "admin.detection.set",
            Self::ListWorkingHours => "admin.hours.list",
            Self::SetWorkingHours { .. } => "admin.hours.set",
            Self::Review { .. } => "admin.review.list",
            Self::ReviewDone { .. } => "admin.review.done",
            Self::DataOwners { .. } => "admin.data_owner.list",
            Self::DigestSent { .. } => "admin.digest.sent",
            Self::ReissueShares { .. } => "admin.shares.reissue",
            Self::IssueBreakGlass { .. } => "admin.breakglass.issue",
            Self::ListAlerts { .. } => "admin.alert.list",
            Self::ShowAlert { .. } => "admin.alert.show",
            Self::AckAlert { .. } => "admin.alert.ack",
            Self::TraceCanaries { .. } => "admin.trace.canaries",
            Self::TraceWatermark { .. } => "admin.trace.watermark",
        }
    }

    /// The action this operation asks for if it widens who can read (and so
    /// waits for approval, PROTOCOL.md §7.2); `None` if it takes effect at
    /// once (it narrows access, reads, or changes nothing anyone can read).
    pub fn approval_action(&self) -> Option<ApprovalAction> {
        Some(match self {
            Self::CreateUser(u) => ApprovalAction::CreateUser {
                name: u.name.clone(),
                display_name: u.display_name.clone(),
                roles: u.roles.clone(),
                groups: u.groups.clone(),
            },
            Self::NewCode { name, .. } => ApprovalAction::IssueCode { user: name.clone() },
            Self::AddMember { group, user } => ApprovalAction::AddMember {
                group: group.clone(),
                user: user.clone(),
            },
            Self::SetUserActive { name, active: true } => {
                ApprovalAction::RestoreUser { user: name.clone() }
            }
            Self::ReleaseHold { name } => ApprovalAction::ReleaseHold { user: name.clone() },
            Self::File {
                id,
                change: FileChange::Restore,
            } => ApprovalAction::RestoreFile {
                file_id: id.clone(),
            },
            Self::SetRule { action, required } => ApprovalAction::SetApprovalRule {
                action: action.clone(),
                required: *required,
            },
            Self::ReissueShares { threshold, holders } => ApprovalAction::ReissueShares {
                threshold: *threshold,
                holders: holders.clone(),
            },
            // Only a loosening waits for approval: the store asks
            // `detection_loosens` before filing it (txn.rs).
            Self::SetDetection { rule, setting } => ApprovalAction::SetDetectionRule {
                rule: rule.clone(),
                setting: irm_core::protocol::detection_setting_text(setting.as_ref()),
            },
            Self::SetWorkingHours { group, schedule } => ApprovalAction::SetWorkingHours {
                group: group.clone(),
                schedule: schedule
                    .as_ref()
                    .map_or_else(|| "off".to_owned(), |s| s.text()),
            },
            Self::IssueBreakGlass { .. } => ApprovalAction::IssueBreakGlass,
            Self::RequestTakeOut {
                how,
                file_id,
                user,
                device,
            } => ApprovalAction::TakeOut {
                how: *how,
                file_id: file_id.clone(),
                user: user.clone(),
                device_id: device.clone(),
            },
            _ => return None,
        })
    }

    /// The operation an approved action runs; `code` is the code it issues,
    /// for the actions that issue one.
    pub fn approved(action: &ApprovalAction, code: CodeIssue) -> Self {
        match action {
            ApprovalAction::CreateUser {
                name,
                display_name,
                roles,
                groups,
            } => Self::CreateUser(NewUser {
                name: name.clone(),
                display_name: display_name.clone(),
                roles: roles.clone(),
                groups: groups.clone(),
                code,
            }),
            ApprovalAction::IssueCode { user } => Self::NewCode {
                name: user.clone(),
                code,
            },
            ApprovalAction::AddMember { group, user } => Self::AddMember {
                group: group.clone(),
                user: user.clone(),
            },
            ApprovalAction::RestoreUser { user } => Self::SetUserActive {
                name: user.clone(),
                active: true,
            },
            ApprovalAction::ReleaseHold { user } => Self::ReleaseHold { name: user.clone() },
            ApprovalAction::RestoreFile { file_id } => Self::File {
                id: file_id.clone(),
                change: FileChange::Restore,
            },
            ApprovalAction::SetApprovalRule { action, required } => Self::SetRule {
                action: action.clone(),
                required: *required,
            },
            ApprovalAction::ReissueShares { threshold, holders } => Self::ReissueShares {
                threshold: *threshold,
                holders: holders.clone(),
            },
            ApprovalAction::SetDetectionRule { rule, setting } => Self::SetDetection {
                rule: rule.clone(),
                // The text was checked when the request was filed; one that
                // no longer parses switches nothing off.
                setting: irm_core::protocol::parse_detection_setting(setting)
                    .unwrap_or_else(|| crate::detect::Rules::default().setting(rule)),
            },
            ApprovalAction::SetWorkingHours { group, schedule } => Self::SetWorkingHours {
                group: group.clone(),
                // Checked when filed; `off` (or, tampered, anything else)
                // removes nothing but the schedule it names.
                schedule: irm_core::protocol::WorkingHours::parse(schedule),
            },
            ApprovalAction::IssueBreakGlass => Self::IssueBreakGlass { code },
            ApprovalAction::TakeOut {
                how,
                file_id,
                user,
                device_id,
            } => Self::RequestTakeOut {
                how: *how,
                file_id: file_id.clone(),
                user: user.clone(),
                device: device_id.clone(),
            },
        }
    }

    /// The roles allowed to do it: audit reads also auditors, the rest admins.
    pub fn allowed(&self, roles: &[Role]) -> bool {
        // Anyone enrolled may ask to take a file out; administrators decide.
        if matches!(self, Self::RequestTakeOut { .. }) {
            return true;
        }
        // The break-glass code is for when administrators are away: the
        // maintainer on call may use it (PROTOCOL.md §7.4).
        if matches!(
            self,
            Self::Approve {
                break_glass: Some(_),
                ..
            }
        ) {
            return roles
                .iter()
                .any(|r| matches!(r, Role::Admin | Role::Maintainer));
        }
        // Auditors review requests, rules and alerts too, and the accounts
        // (and say that they did); only administrators act (an alert is an
        // audit record).
        let audit = matches!(
            self,
            Self::Review { .. }
                | Self::ReviewDone { .. }
                | Self::DataOwners { .. }
                | Self::DigestSent { .. }
                | Self::ReadAudit(_)
                | Self::AuditAccess { .. }
                | Self::ListRequests
                | Self::ShowRequest { .. }
                | Self::ListRules
                | Self::ListDetection
                | Self::ListWorkingHours
                | Self::ListAlerts { .. }
                | Self::ShowAlert { .. }
                | Self::TraceCanaries { .. }
                | Self::TraceWatermark { .. }
        );
        // Running the service: its keys and its checkpoints, never people,
        // devices, files or the content of the audit log.
        let service = matches!(
            self,
            Self::ListKeys | Self::RotateKey(_) | Self::RetireKey { .. } | Self::AuditAccess { .. }
        );
        // The maintainer on call reads the request a break-glass approval
        // would run, and nothing else of the requests.
        let break_glass_reading = matches!(self, Self::ShowRequest { .. });
        roles.iter().any(|r| match r {
            Role::Admin => true,
            Role::Auditor => audit,
            Role::Maintainer => service || break_glass_reading,
            Role::User => false,
        })
    }

    /// The target, for the audit record's detail (never a secret).
    pub fn detail(&self) -> Option<String> {
        match self {
            Self::CreateUser(u) => Some(format!(
                "user={} roles={} groups={}",
                u.name,
                roles_text(&u.roles),
                u.groups.join(",")
            )),
            Self::SetUserActive { name, .. }
            | Self::NewCode { name, .. }
            | Self::ReleaseHold { name } => Some(format!("user={name}")),
            Self::CreateGroup { name } => Some(format!("group={name}")),
            Self::AddMember { group, user } | Self::RemoveMember { group, user } => {
                Some(format!("group={group} user={user}"))
            }
            Self::RevokeDevice { id } => Some(format!("device={id}")),
            Self::File {
                change: FileChange::Restrict(rights),
                ..
            } => Some(format!("remove={rights}")),
            Self::RotateKey(k) => Some(format!("key={}", k.key_id)),
            Self::RetireKey { id } => Some(format!("key={id}")),
            // What was asked, as sent: names and ids only (the query checks them).
            Self::ReadAudit(query) => Some(query.to_query().replace('&', " ")),
            Self::ShowRequest { id } | Self::DenyRequest { id } => Some(format!("request={id}")),
            Self::Approve {
                id,
                action_hash,
                break_glass,
                ..
            } => Some(format!(
                "request={id} action_hash={action_hash}{}",
                if break_glass.is_some() {
                    " break_glass"
                } else {
                    ""
                }
            )),
            Self::SetRule { action, required } => {
                Some(format!("rule_action={action} required={required}"))
            }
            Self::SetWorkingHours { group, schedule } => Some(format!(
                "group={group} schedule={}",
                schedule
                    .as_ref()
                    .map_or_else(|| "off".to_owned(), |s| s.text())
            )),
            Self::SetDetection { rule, setting } => Some(format!(
                "rule={rule} setting={}",
                irm_core::protocol::detection_setting_text(setting.as_ref())
            )),
            Self::RequestTakeOut { user, device, .. } => {
                Some(format!("user={user} device={device}"))
            }
            Self::ReissueShares { threshold, holders } => Some(format!(
                "threshold={threshold} holders={}",
                holders.join(",")
            )),
            Self::ListAlerts { open: true } => Some("open=true".into()),
            Self::ShowAlert { id } => Some(format!("alert={id}")),
            // The reason was checked on the way in: one line, printable.
            Self::AckAlert { id, reason, .. } => Some(format!("alert={id} reason={reason}")),
            Self::Review { dormant_days } => Some(format!("dormant_days={dormant_days}")),
            // The reason is the record's point: last, as every reason is.
            Self::ReviewDone { reason } => Some(format!("reason={reason}")),
            Self::DataOwners { groups } => Some(format!("groups={}", groups.join(","))),
            // Groups are names and contacts were checked at start (no
            // white space), so each list stays one word.
            Self::DigestSent {
                since_ms,
                until_ms,
                head_seq,
                sent,
                failed,
            } => Some(format!(
                "since_ms={since_ms} until_ms={until_ms} head={head_seq} sent={} failed={}",
                sent.join(","),
                failed.join(",")
            )),
            // What matched is appended by the lookup (`store/trace.rs`).
            Self::TraceCanaries { values } => Some(format!("values={}", values.len())),
            Self::TraceWatermark { id, .. } => Some(format!("watermark={id}")),
            _ => None,
        }
    }

    /// The file concerned, if any.
    pub fn file_id(&self) -> Option<String> {
        match self {
            Self::File { id, .. } | Self::RequestTakeOut { file_id: id, .. } => Some(id.clone()),
            _ => None,
        }
    }
}

/// The answer to an [`AdminOp`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdminOutput {
    /// Nothing to return.
    Done,
    /// One user.
    User(UserInfo),
    /// Users.
    Users(Vec<UserInfo>),
    /// A code was stored; the caller holds its text.
    CodeStored {
        /// The user.
        user: String,
        /// Expiry.
        expires_at: u64,
    },
    /// Devices.
    Devices(Vec<DeviceInfo>),
    /// One device.
    Device(DeviceInfo),
    /// Files.
    Files(Vec<FileInfo>),
    /// One file.
    File(FileInfo),
    /// Keys.
    Keys(Vec<KeyRecord>),
    /// One key.
    Key(KeyRecord),
    /// Audit records.
    Audit(Vec<AuditRecord>),
    /// The operation waits for approval: the request filed.
    Filed(ApprovalRequestInfo),
    /// Approval requests.
    Requests(Vec<ApprovalRequestInfo>),
    /// One request as it now stands; `code_expires_at` is set when this
    /// call completed a request that issued a code (with the caller's half).
    Request {
        /// The request.
        request: ApprovalRequestInfo,
        /// The issued code's expiry.
        code_expires_at: Option<u64>,
    },
    /// The approval rules.
    Rules(Vec<ApprovalRule>),
    /// The detection rules in force.
    Detection(Vec<irm_core::protocol::DetectionRuleInfo>),
    /// The groups' working hours.
    WorkingHours(Vec<irm_core::protocol::GroupWorkingHours>),
    /// The account review (boxed: it is the largest answer by far).
    Review(Box<irm_core::protocol::AccountReview>),
    /// Alerts.
    Alerts(Vec<Alert>),
    /// For each group asked about, in order, what it covers now.
    GroupFiles(Vec<GroupCover>),
    /// One alert.
    Alert(Alert),
    /// What a trace of canaries found.
    Trace(irm_core::protocol::TraceAnswer),
    /// What a watermark id names.
    Watermark(irm_core::protocol::WatermarkTrace),
}

/// What a group covers now (PROTOCOL.md §7.7): its members and the files
/// whose policy names `@group`, both sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCover {
    /// The group, without `@`.
    pub group: String,
    /// Its members.
    pub members: Vec<String>,
    /// Its files (ids, hex).
    pub files: Vec<String>,
}

/// What became of delivering an alert to the webhook (PROTOCOL.md §12.1).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AlertDeliveryEvent {
    /// The receiver took it, at the `attempts`-th try: the delivery cursor
    /// moves past it (audited as `alert.delivered` after a failure).
    Delivered {
        /// The alert.
        id: u64,
        /// Tries it took.
        attempts: u32,
    },
    /// Its first try failed (audited as `alert.delivery_failed`).
    Failed {
        /// The alert.
        id: u64,
        /// The kind of error (`connect`, `timeout`, `status_500`, ...).
        kind: String,
    },
}

impl AdminOutput {
    /// Builds an [`EnrollmentCode`] from a stored code and its text.
    pub fn code(self, code: String) -> Option<EnrollmentCode> {
        match self {
            Self::CodeStored { user, expires_at } => Some(EnrollmentCode {
                user,
                code,
                expires_at,
            }),
            _ => None,
        }
    }
}

/// The stored form of a role list.
pub fn roles_text(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses the stored form of a role list.
pub fn parse_roles(text: &str) -> Result<Vec<Role>, StoreError> {
    text.split(',')
        .filter(|r| !r.is_empty())
        .map(|r| Role::parse(r).ok_or_else(|| StoreError::Corrupt(format!("unknown role {r:?}"))))
        .collect()
}

/// The key server's storage. Every method that changes state also appends
/// its audit record, in the same transaction, durable before it returns.
pub trait Store: Send + Sync + 'static {
    /// Whether the database was initialised (bootstrap done).
    fn is_initialised(&self) -> Result<bool, StoreError>;

    /// First start: the bootstrap administrator and the first key.
    fn initialise(&self, admin: NewUser, key: KeyRecord, now_ms: u64) -> Result<(), StoreError>;

    /// The device and its user, for request authentication.
    fn device_with_user(
        &self,
        device_id: &str,
    ) -> Result<Option<(DeviceRecord, UserRecord)>, StoreError>;

    /// Appends one audit record on its own (failed authentication, refusals
    /// that happen before any operation).
    fn append_audit(&self, draft: AuditDraft) -> Result<(), StoreError>;

    /// PROTOCOL.md §3.2: check and count the code, create the device, consume the code.
    fn enroll(&self, input: EnrollInput, now_ms: u64) -> StoreResult<UserRecord>;

    /// PROTOCOL.md §4: read the state, decide, record the grant or denial.
    /// Returns at once; `done` is called with the outcome once its audit
    /// record is durable (dropped uncalled only if the store has shut down).
    /// Grants are the hot path: no thread waits for the group commit.
    fn grant(&self, input: GrantInput, now_ms: u64, done: GrantDone);

    /// PROTOCOL.md §5; with canaries asked for, the receipt of §7.8.
    fn usage_event(
        &self,
        input: EventInput,
        now_ms: u64,
    ) -> StoreResult<irm_core::protocol::ExportReceipt>;

    /// PROTOCOL.md §6.
    fn register_file(&self, input: RegisterInput, now_ms: u64) -> StoreResult<FileInfo>;

    /// PROTOCOL.md §7, with the role check (audited when refused).
    fn admin(&self, actor: &Actor, op: AdminOp, now_ms: u64) -> StoreResult<AdminOutput>;

    /// `irm-key-server recover-code`, from a shell on the server: a fresh
    /// enrollment code for administrator `user`, audited with `reason`, and
    /// only while at most one active administrator exists (after that,
    /// another administrator issues it). Answers [`AdminOutput::CodeStored`].
    fn recover_admin_code(
        &self,
        user: String,
        code: CodeIssue,
        reason: String,
        now_ms: u64,
    ) -> StoreResult<AdminOutput>;

    /// A number that moves on whenever an administrator changes users,
    /// groups, devices or files (it moves once the change is durable), so
    /// that a cache of those records can tell whether it is still current.
    fn state_generation(&self) -> u64;

    /// What committed changes open documents depend on, in commit order
    /// (the push channel, PROTOCOL.md §13).
    fn changes(&self) -> std::sync::Arc<super::changes::ChangeLog>;

    /// Every key server key.
    fn keys(&self) -> Result<Vec<KeyRecord>, StoreError>;

    /// Arms the state ledger with its key once the keys are unsealed
    /// (PROTOCOL.md §11.3): from then on every row decided on is checked.
    fn arm_ledger(&self, key: StateKey, now_ms: u64) -> Result<(), StoreError>;

    /// Puts the detection rules in force (PROTOCOL.md §12), with the
    /// counters of their windows rebuilt from the audit log.
    fn arm_detection(
        &self,
        rules: crate::detect::Rules,
        hours: std::collections::BTreeMap<String, irm_core::protocol::WorkingHours>,
        now_ms: u64,
    ) -> Result<(), StoreError>;

    /// Every object whose stored state differs from what the audit log
    /// last set (PROTOCOL.md §11.3), one problem line each.
    fn state_problems(&self) -> Result<Vec<String>, StoreError>;

    /// Every user's and every group's name (to check recipients, PROTOCOL.md §6.1).
    fn directory(&self) -> Result<(Vec<String>, Vec<String>), StoreError>;

    /// The `peers` rule's inputs (PROTOCOL.md §12): every active person
    /// with their groups, and each person's totals since each of `since_ms`.
    fn peer_inputs(&self, since_ms: Vec<u64>) -> Result<crate::detect::PeerInputs, StoreError>;

    /// The detection rules in force now (the writer's).
    fn detection_rules(&self) -> Result<crate::detect::Rules, StoreError>;

    /// Records the `peers` rule's firings (person, detail) at `now_ms`,
    /// each unless that person's last `detect.peers` is younger than
    /// `quiet_ms`; returns how many were recorded.
    fn record_peer_firings(
        &self,
        firings: Vec<(String, String)>,
        action: crate::detect::Action,
        quiet_ms: u64,
        now_ms: u64,
    ) -> Result<usize, StoreError>;

    /// The break-glass code's record (for `/healthz`).
    fn break_glass(&self) -> Result<Option<BreakGlassRow>, StoreError>;

    /// Every device (to wrap root-key shares to their holders' devices).
    fn devices(&self) -> Result<Vec<DeviceRecord>, StoreError>;

    /// The committed chain: its length and head hash.
    fn audit_head(&self) -> Result<(u64, [u8; 32]), StoreError>;

    /// Calls `f` with every audit record in `seq` order.
    fn for_each_audit(&self, f: &mut dyn FnMut(&AuditRecord)) -> Result<(), StoreError>;

    /// The alerts the webhook has not taken yet (after the delivery cursor
    /// kept in the database), oldest first, at most `limit`.
    fn undelivered_alerts(&self, limit: u32) -> Result<Vec<Alert>, StoreError>;

    /// Records a delivery's outcome (PROTOCOL.md §12.1).
    fn alert_delivery(&self, event: AlertDeliveryEvent, now_ms: u64) -> Result<(), StoreError>;

    /// Notified after each commit that appended an alert: the webhook's
    /// task waits on it, so the writer never waits for the webhook.
    fn alert_signal(&self) -> std::sync::Arc<tokio::sync::Notify>;
}

/// The key of the state ledger's MACs (PROTOCOL.md §11.3): 32 bytes from
/// the keystore. Zeroized on drop, never shown by `Debug`.
pub struct StateKey(zeroize::Zeroizing<[u8; 32]>);

impl std::fmt::Debug for StateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateKey(..)")
    }
}

impl StateKey {
    /// The key from its bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(zeroize::Zeroizing::new(bytes))
    }

    /// The bytes, for the HMAC.
    pub(super) fn expose(&self) -> &[u8] {
        self.0.as_ref()
    }
}

/// A person's grants paused by a detection rule until administrators
/// release them (PROTOCOL.md §12): at most one per person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRow {
    /// The rule that fired (`bulk_files`).
    pub rule: String,
    /// When (Unix seconds).
    pub since: u64,
    /// What it saw, for the people who review it.
    pub detail: String,
}

/// The break-glass code (PROTOCOL.md §7.4): there is at most one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlassRow {
    /// SHA-256 of the code, as enrollment codes are kept.
    pub hash: Vec<u8>,
    /// When it was issued (Unix seconds).
    pub issued_at: u64,
    /// When it stops working (Unix seconds).
    pub expires_at: u64,
    /// Who issued it (`request=ID requested_by=A approved_by=B`).
    pub origin: String,
    /// When it was used, if it was.
    pub used_at: Option<u64>,
    /// Who used it.
    pub used_by: Option<String>,
    /// The request it approved.
    pub used_request: Option<String>,
}

/// A PostgreSQL connection string: a URL (`postgresql://irm@db.example/irm`)
/// or `key=value` pairs (`host=/run/postgresql dbname=irm`). It may carry a
/// password, so its `Debug` shows none of it and nothing logs it; read it
/// with [`DatabaseUrl::expose`] only to connect.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Wraps a connection string.
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The connection string itself, password included.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `None` for an empty string: an empty setting (`IRM_KS_DATABASE_URL=`)
    /// means no PostgreSQL, as when it is not set.
    pub fn non_empty(self) -> Option<Self> {
        (!self.0.is_empty()).then_some(self)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DatabaseUrl(..)")
    }
}

impl std::str::FromStr for DatabaseUrl {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(s))
    }
}
