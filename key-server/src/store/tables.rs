//! The rows of the key server's tables in the domain's terms, and
//! [`Tables`], the trait a backend implements to read and write them in its
//! own SQL (`sqlite.rs`, `postgres.rs`). The operations over them are
//! `txn.rs`'s, written once for every backend.

use irm_core::protocol::{
    AlertAck, ApprovalInfo, AuditRecord, FileInfo, FileState, KeyState, Notice, NoticeKind,
    RequestState, TakeOut,
};
use irm_core::{KeyId, Policy, Rights};

pub(super) use super::contract::{BreakGlassRow, HoldRow};
use super::contract::{CodeIssue, DeviceRecord, KeyRecord, NewUser, UserRecord};
use crate::error::StoreError;
use crate::grant::decision::FileControls;

/// The `policy_json` and `key_id` of a file an administrator named by id
/// before the server saw its header (PROTOCOL.md §7): the row carries the
/// controls only, until the first grant request or registration fills it in.
pub(super) const UNSEEN_POLICY: &str = "null";
pub(super) const UNSEEN_KEY: &str = "";

/// The audit chain's committed or pending head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ChainHead {
    /// The number of records (the last one's seq).
    pub(super) seq: u64,
    /// The last record's hash ([`GENESIS_HASH`] before the first).
    pub(super) hash: [u8; 32],
}

/// A user's enrollment code as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CodeRow {
    /// SHA-256 of the live code, if there is one.
    pub(super) hash: Option<Vec<u8>>,
    /// Its expiry (Unix seconds).
    pub(super) expires_at: Option<u64>,
    /// Wrong tries so far.
    pub(super) failures: i64,
    /// Who issued it (`CodeIssue::origin`); none for codes stored before
    /// the server recorded it.
    pub(super) origin: Option<String>,
}

/// A grant as usage events see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct GrantRow {
    /// The file (hex).
    pub(super) file_id: String,
    /// The device it was issued to (hex).
    pub(super) device_id: String,
    /// The rights it carried (bits).
    pub(super) rights: u32,
}

/// A grant as a watermark id names it (PROTOCOL.md §7.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct GrantDetail {
    pub(super) id: String,
    pub(super) file_id: String,
    pub(super) user: String,
    pub(super) device_id: String,
    pub(super) issued_at: u64,
    pub(super) lease_expires_at: u64,
    pub(super) renew: bool,
}

/// An export that carried canaries (table `canary_exports`, PROTOCOL.md §7.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CanaryExportRow {
    pub(super) id: String,
    pub(super) grant_id: String,
    pub(super) file_id: String,
    pub(super) user: String,
    pub(super) device_id: String,
    /// The approval request whose take-out it spent, if it was found.
    pub(super) request_id: Option<String>,
    /// Who approved it, comma-separated (names never hold a comma).
    pub(super) approvers: String,
    pub(super) rows: u64,
    pub(super) canaries: u32,
    pub(super) exported_at: u64,
}

/// A grant to record.
#[derive(Debug, Clone, Copy)]
pub(super) struct NewGrant<'a> {
    pub(super) id: &'a str,
    pub(super) file_id: &'a str,
    pub(super) user: &'a str,
    pub(super) device: &'a str,
    pub(super) rights: u32,
    pub(super) renew: bool,
    pub(super) issued_at: u64,
    pub(super) lease_expires_at: u64,
}

/// An approval request as stored (PROTOCOL.md §7.2). The action travels as
/// its JSON; `action_hash` is its canonical hash as filed, re-checked before
/// anyone approves it and before it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RequestRow {
    pub(super) id: String,
    pub(super) action_json: String,
    pub(super) action_hash: String,
    pub(super) requester: String,
    pub(super) requester_device: String,
    pub(super) reason: String,
    pub(super) required: u8,
    pub(super) state: RequestState,
    pub(super) created_at: u64,
    pub(super) expires_at: u64,
    pub(super) outcome: String,
    /// For an action that issues a code: the hash of the requester's half.
    pub(super) code_first_hash: Option<[u8; 32]>,
}

/// A file row to insert (no administrative controls yet).
#[derive(Debug, Clone, Copy)]
pub(super) struct NewFile<'a> {
    pub(super) id: &'a str,
    pub(super) key_id: &'a str,
    pub(super) owner: Option<&'a str>,
    pub(super) file_name: Option<&'a str>,
    pub(super) policy_json: &'a str,
    pub(super) first_seen_at: u64,
}

/// A file as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FileRow {
    pub(super) id: String,
    pub(super) owner: Option<String>,
    pub(super) file_name: Option<String>,
    pub(super) policy_json: String,
    pub(super) revoked: bool,
    pub(super) admin_expires_at: Option<u64>,
    pub(super) restricted: u32,
    pub(super) first_seen_at: u64,
}

impl FileRow {
    /// Whether the server has seen the file's header (and so knows its policy).
    pub(super) fn seen(&self) -> bool {
        self.policy_json != UNSEEN_POLICY
    }

    pub(super) fn controls(&self) -> FileControls {
        FileControls {
            revoked: self.revoked,
            admin_expires_at: self.admin_expires_at,
            restricted: Rights::from_bits_retain(self.restricted),
        }
    }

    pub(super) fn info(&self, now: u64) -> FileInfo {
        let state = if self.revoked {
            FileState::Revoked
        } else if self.admin_expires_at.is_some_and(|at| now >= at) {
            FileState::Expired
        } else {
            FileState::Active
        };
        FileInfo {
            file_id: self.id.clone(),
            owner: self.owner.clone(),
            file_name: self.file_name.clone(),
            // Stored by this server from a parsed header; a row that no
            // longer parses, or a file not seen yet, shows no policy rather
            // than failing the listing.
            policy: if self.seen() {
                serde_json::from_str::<Policy>(&self.policy_json).ok()
            } else {
                None
            },
            state,
            restricted_rights: Rights::from_bits_retain(self.restricted),
            first_seen_at: self.first_seen_at,
        }
    }
}

/// A backend's rows in the domain's terms. Every method runs one or two
/// statements on the connection as it is: inside the writer's transaction,
/// or on its own on a read connection. Integers that do not fit a signed
/// 64-bit column are an error, never wrapped.
pub(super) trait Tables {
    /// Starts the group commit's transaction (with the write lock taken at once).
    fn begin(&mut self) -> Result<(), StoreError>;
    /// Whether the connection has ended (the server closed the session). A
    /// backend whose writer reconnects in its `BeforeBatch` says so, and the
    /// writer then runs that check and `begin` once more, so that a session
    /// ended while idle fails no request.
    fn ended(&self) -> bool {
        false
    }
    /// Runs a parameterless statement: `COMMIT`, `ROLLBACK`, savepoints.
    fn run(&mut self, sql: &'static str) -> Result<(), StoreError>;

    /// A `meta` value.
    fn meta(&mut self, key: &str) -> Result<Option<String>, StoreError>;
    /// Inserts a `meta` row (an error if it exists).
    fn insert_meta(&mut self, key: &str, value: &str) -> Result<(), StoreError>;
    /// Inserts or replaces a `meta` row.
    fn upsert_meta(&mut self, key: &str, value: &str) -> Result<(), StoreError>;

    /// A user with their groups (sorted).
    fn user(&mut self, name: &str) -> Result<Option<UserRecord>, StoreError>;
    /// Every user name, sorted.
    fn user_names(&mut self) -> Result<Vec<String>, StoreError>;
    /// Whether the user exists.
    fn user_exists(&mut self, name: &str) -> Result<bool, StoreError>;
    /// A new active user with their first code (no groups).
    fn insert_user(&mut self, user: &NewUser, now: u64) -> Result<(), StoreError>;
    /// Suspends or restores a user.
    fn set_user_active(&mut self, name: &str, active: bool) -> Result<(), StoreError>;
    /// A user's code row.
    fn user_code(&mut self, name: &str) -> Result<Option<CodeRow>, StoreError>;
    /// The user whose live code has this hash.
    fn user_with_code(&mut self, hash: &[u8; 32]) -> Result<Option<String>, StoreError>;
    /// Replaces a user's code (`None`: no live code) and sets the failure count.
    fn set_user_code(
        &mut self,
        name: &str,
        code: Option<&CodeIssue>,
        failures: i64,
    ) -> Result<(), StoreError>;
    /// Sets the failure count of a user's code.
    fn set_code_failures(&mut self, name: &str, failures: i64) -> Result<(), StoreError>;

    /// Whether the group exists.
    fn group_exists(&mut self, name: &str) -> Result<bool, StoreError>;
    /// Every group's name, sorted.
    fn group_names(&mut self) -> Result<Vec<String>, StoreError>;
    /// A new group.
    fn insert_group(&mut self, name: &str, now: u64) -> Result<(), StoreError>;
    /// Adds a member (nothing if they are one already).
    fn add_member(&mut self, group: &str, user: &str) -> Result<(), StoreError>;
    /// Removes a member; whether they were one.
    fn remove_member(&mut self, group: &str, user: &str) -> Result<bool, StoreError>;

    /// A device.
    fn device(&mut self, id: &str) -> Result<Option<DeviceRecord>, StoreError>;
    /// Every device, by user, enrollment time and id.
    fn devices(&mut self) -> Result<Vec<DeviceRecord>, StoreError>;
    /// A new active device.
    fn insert_device(&mut self, device: &DeviceRecord, enrolled_at: u64) -> Result<(), StoreError>;
    /// The ids of a user's active devices.
    fn active_devices_of(&mut self, user: &str) -> Result<Vec<String>, StoreError>;
    /// Revokes a device; whether it exists.
    fn revoke_device(&mut self, id: &str) -> Result<bool, StoreError>;

    /// Every key server key, by creation time and id.
    fn keys(&mut self) -> Result<Vec<KeyRecord>, StoreError>;
    /// A new key in `state`.
    fn insert_key(&mut self, key: &KeyRecord, state: KeyState) -> Result<(), StoreError>;
    /// Makes the current key an active one.
    fn demote_current_key(&mut self) -> Result<(), StoreError>;
    /// A key's stored state text.
    fn key_state(&mut self, id: &str) -> Result<Option<String>, StoreError>;
    /// Sets a key's state.
    fn set_key_state(&mut self, id: &str, state: KeyState) -> Result<(), StoreError>;

    /// A file.
    fn file(&mut self, id: &str) -> Result<Option<FileRow>, StoreError>;
    /// Every file, by first sighting and id.
    fn files(&mut self) -> Result<Vec<FileRow>, StoreError>;
    /// A new file row.
    fn insert_file(&mut self, file: &NewFile<'_>) -> Result<(), StoreError>;
    /// Fills in the key and policy of a row an administrator created before
    /// the header was seen (and only of such a row).
    fn fill_unseen_file(
        &mut self,
        id: &str,
        key_id: &str,
        policy_json: &str,
    ) -> Result<(), StoreError>;
    /// Gives an ownerless file its owner, and its name if one is given.
    fn claim_file(
        &mut self,
        id: &str,
        owner: &str,
        file_name: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Sets a file's administrative controls.
    fn set_file_controls(&mut self, id: &str, controls: &FileControls) -> Result<(), StoreError>;

    /// Records a grant.
    fn insert_grant(&mut self, grant: &NewGrant<'_>) -> Result<(), StoreError>;
    /// A grant.
    fn grant(&mut self, id: &str) -> Result<Option<GrantRow>, StoreError>;
    /// The newest grant or renewal of each device that has one: (user,
    /// device, issued at, Unix seconds). The account review's "last use"
    /// (PROTOCOL.md §7.6), read from the grants the server keeps anyway.
    fn last_grants(&mut self) -> Result<Vec<(String, String, u64)>, StoreError>;
    /// When each user was created (Unix seconds), by name.
    fn user_created(&mut self) -> Result<Vec<(String, u64)>, StoreError>;
    /// The grants whose id starts with `prefix` (lowercase hex), which a
    /// watermark id names (PROTOCOL.md §7.8).
    fn grants_with_prefix(&mut self, prefix: &str) -> Result<Vec<GrantDetail>, StoreError>;

    /// Records an export that carries canaries.
    fn insert_canary_export(&mut self, export: &CanaryExportRow) -> Result<(), StoreError>;
    /// An export that carried canaries.
    fn canary_export(&mut self, id: &str) -> Result<Option<CanaryExportRow>, StoreError>;
    /// Records that `value` (a contact key) is a canary of `export`.
    fn insert_canary(&mut self, value: &str, export: &str) -> Result<(), StoreError>;
    /// Those of `values` that are canaries, with their export: `(value, export id)`.
    fn canaries_among(&mut self, values: &[String]) -> Result<Vec<(String, String)>, StoreError>;

    /// Files an approval request.
    fn insert_request(&mut self, request: &RequestRow) -> Result<(), StoreError>;
    /// An approval request.
    fn request(&mut self, id: &str) -> Result<Option<RequestRow>, StoreError>;
    /// At most `limit` requests: pending ones first (what people act on),
    /// then the newest.
    fn requests(&mut self, limit: u32) -> Result<Vec<RequestRow>, StoreError>;
    /// The ids of pending requests whose time ran out by `now`.
    fn pending_due(&mut self, now: u64) -> Result<Vec<String>, StoreError>;
    /// Ends a request (or keeps it pending) with an outcome text.
    fn set_request_state(
        &mut self,
        id: &str,
        state: RequestState,
        outcome: &str,
    ) -> Result<(), StoreError>;
    /// Records an approval (an error if this approver approved it already).
    fn insert_approval(&mut self, request: &str, approval: &ApprovalInfo)
    -> Result<(), StoreError>;
    /// A request's approvals, in the order they came.
    fn approvals(&mut self, request: &str) -> Result<Vec<ApprovalInfo>, StoreError>;
    /// The approvals an action needs, if an administrator set a rule.
    fn approval_rule(&mut self, action: &str) -> Result<Option<u8>, StoreError>;
    /// Sets the approvals an action needs.
    fn set_approval_rule(&mut self, action: &str, required: u8) -> Result<(), StoreError>;

    /// A detection rule's stored setting, in its canonical text
    /// (PROTOCOL.md §12.2); `None` before it was first set.
    fn detection_rule(&mut self, rule: &str) -> Result<Option<String>, StoreError>;
    /// Stores a detection rule's setting.
    fn set_detection_rule(&mut self, rule: &str, setting: &str) -> Result<(), StoreError>;
    /// Each person's distinct files granted since `since_ms` (the `peers`
    /// rule), from the audit log.
    fn distinct_files_by_user(&mut self, since_ms: u64) -> Result<Vec<(String, u64)>, StoreError>;
    /// Every (person, scope, first time) the `first_access` rule has seen.
    fn first_accesses(&mut self) -> Result<Vec<(String, String, u64)>, StoreError>;
    /// Notes `user`'s first grant under `scope` (once: a second is ignored).
    fn insert_first_access(&mut self, user: &str, scope: &str, at: u64) -> Result<(), StoreError>;
    /// Every stored detection row (rules, and working hours as
    /// `hours/GROUP`), by name.
    fn detection_rows(&mut self) -> Result<Vec<(String, String)>, StoreError>;

    /// The break-glass code, if one was ever issued.
    fn break_glass(&mut self) -> Result<Option<BreakGlassRow>, StoreError>;
    /// The detection hold on `user`'s grants, if any (PROTOCOL.md §12).
    fn hold(&mut self, user: &str) -> Result<Option<HoldRow>, StoreError>;
    /// Puts a hold on `user` (replacing one), or lifts it with `None`.
    fn set_hold(&mut self, user: &str, hold: Option<&HoldRow>) -> Result<(), StoreError>;
    /// The acknowledgement of alert `seq` (PROTOCOL.md §12.1), if any.
    fn alert_ack(&mut self, seq: u64) -> Result<Option<AlertAck>, StoreError>;
    /// Every acknowledgement, by alert.
    fn alert_acks(&mut self) -> Result<Vec<(u64, AlertAck)>, StoreError>;
    /// Records the acknowledgement of alert `seq` (there is none yet).
    fn insert_alert_ack(&mut self, seq: u64, ack: &AlertAck) -> Result<(), StoreError>;
    /// Issues a new break-glass code, replacing the old (used or not).
    fn set_break_glass(&mut self, code: &CodeIssue, issued_at: u64) -> Result<(), StoreError>;
    /// Marks the break-glass code used by `user` for `request`.
    fn spend_break_glass(&mut self, user: &str, request: &str, now: u64) -> Result<(), StoreError>;

    /// Lets `device` of `user` take `file` out once in the way `how`, until
    /// `expires_at` (replacing an earlier approval for the same four).
    fn grant_take_out(
        &mut self,
        how: TakeOut,
        file: &str,
        user: &str,
        device: &str,
        expires_at: u64,
    ) -> Result<(), StoreError>;
    /// When the approved take-out of `file` in the way `how` by `device` of
    /// `user` ends, if there is one (live or not).
    fn take_out(
        &mut self,
        how: TakeOut,
        file: &str,
        user: &str,
        device: &str,
    ) -> Result<Option<u64>, StoreError>;
    /// Spends a live approved take-out of `file` in the way `how` by
    /// `device` of `user`; whether there was one. Expired ones are dropped.
    fn take_take_out(
        &mut self,
        how: TakeOut,
        file: &str,
        user: &str,
        device: &str,
        now: u64,
    ) -> Result<bool, StoreError>;

    /// Leaves `notice` for `recipient_device`'s next grant (replacing one
    /// about the same device).
    fn insert_notice(&mut self, recipient_device: &str, notice: &Notice) -> Result<(), StoreError>;
    /// The notices left for `device`, oldest first, removing them.
    fn take_notices(&mut self, device: &str) -> Result<Vec<Notice>, StoreError>;

    /// Appends an audit record (already chained).
    fn insert_audit(&mut self, record: &AuditRecord) -> Result<(), StoreError>;
    /// The seq and hash (hex) of the last audit record.
    fn last_audit(&mut self) -> Result<Option<(u64, String)>, StoreError>;
    /// At most `limit` audit records after `after`, in seq order.
    fn audit_page(&mut self, after: u64, limit: u32) -> Result<Vec<AuditRecord>, StoreError>;
    /// The records `query` asks for, in `seq` order (PROTOCOL.md §7.5).
    fn audit_query(
        &mut self,
        query: &irm_core::protocol::AuditQuery,
    ) -> Result<Vec<AuditRecord>, StoreError>;
}

/// Parses a stored key id, public key and state into a [`KeyRecord`].
pub(super) fn key_record(
    id: &str,
    public: &str,
    state: &str,
    created_at: u64,
) -> Result<KeyRecord, StoreError> {
    let key_id: KeyId = id
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("key id {id:?}")))?;
    let public_key = irm_core::KasPublicKey::from_text(public)
        .map_err(|_| StoreError::Corrupt(format!("public key of {id}")))?;
    let state = KeyState::parse(state)
        .ok_or_else(|| StoreError::Corrupt(format!("key state {state:?}")))?;
    Ok(KeyRecord {
        key_id,
        public_key,
        state,
        created_at,
    })
}

/// The columns of `requests`, in the order both backends select them.
macro_rules! request_columns {
    () => {
        "id, action_json, action_hash, requester, requester_device, reason, required, state, created_at, expires_at, outcome, code_first_hash"
    };
}
pub(super) use request_columns;

/// A `requests` row from its stored values (`required` and `state` checked).
#[allow(clippy::too_many_arguments)]
pub(super) fn request_row(
    id: String,
    action_json: String,
    action_hash: String,
    requester: String,
    requester_device: String,
    reason: String,
    required: i64,
    state: &str,
    created_at: u64,
    expires_at: u64,
    outcome: String,
    code_first_hash: Option<Vec<u8>>,
) -> Result<RequestRow, StoreError> {
    Ok(RequestRow {
        required: u8::try_from(required)
            .map_err(|_| StoreError::Corrupt(format!("request {id} requires {required}")))?,
        state: RequestState::parse(state)
            .ok_or_else(|| StoreError::Corrupt(format!("request state {state:?}")))?,
        code_first_hash: code_first_hash
            .map(|h| key32(h, "a code half's hash"))
            .transpose()?,
        id,
        action_json,
        action_hash,
        requester,
        requester_device,
        reason,
        created_at,
        expires_at,
        outcome,
    })
}

/// The stored form of a notice's kind.
pub(super) fn notice_kind(kind: NoticeKind) -> &'static str {
    match kind {
        NoticeKind::NewDevice => "new_device",
        NoticeKind::BreakGlass => "break_glass",
        _ => "unknown",
    }
}

/// A `notices` row from its stored values.
pub(super) fn notice(
    kind: &str,
    at: u64,
    device_id: String,
    device_name: String,
    code_origin: String,
) -> Result<Notice, StoreError> {
    let kind = match kind {
        "new_device" => NoticeKind::NewDevice,
        "break_glass" => NoticeKind::BreakGlass,
        other => return Err(StoreError::Corrupt(format!("notice kind {other:?}"))),
    };
    Ok(Notice {
        kind,
        at,
        device_id,
        device_name,
        code_origin,
    })
}

/// A stored 32-byte key.
pub(super) fn key32(bytes: Vec<u8>, what: &str) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("{what} is not 32 bytes")))
}
