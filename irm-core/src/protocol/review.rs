//! The account review (PROTOCOL.md §7.6): who has not used their access
//! for a while, who holds a role beyond `user`, who receives each group's
//! and each classification's files, and when the last review was done.
//! The server computes it from its tables; `POST /v1/admin/review/done`
//! records that people went through it.

use serde::{Deserialize, Serialize};

use super::role::Role;

/// Days without a grant after which a person or a device counts as dormant,
/// when the caller names none.
pub const DEFAULT_DORMANT_DAYS: u32 = 30;

/// The most days a review may look back.
pub const MAX_DORMANT_DAYS: u32 = 3650;

/// `GET /v1/admin/review?dormant_days=N`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountReview {
    /// When the server computed it (Unix seconds).
    pub at: u64,
    /// No grant in this many days makes a person or a device dormant.
    pub dormant_days: u32,
    /// Active people with no grant on any device in `dormant_days` (and
    /// created before then), oldest use first.
    pub dormant_users: Vec<DormantUser>,
    /// Active devices with no grant in `dormant_days` (and enrolled before then).
    pub dormant_devices: Vec<DormantDevice>,
    /// Everyone with the admin, auditor or maintainer role, suspended or not.
    pub privileged: Vec<PrivilegedUser>,
    /// Every group and its members now: who receives files sealed to `@group`.
    pub groups: Vec<GroupMembers>,
    /// Every classification the server's files carry (`unclassified` for
    /// none), with the recipients their policies name.
    pub classifications: Vec<ClassificationRecipients>,
    /// The newest review recorded (`admin.review.done`), if any.
    pub last_review: Option<ReviewDone>,
}

/// A person who has not opened anything for a while.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DormantUser {
    /// Login name.
    pub name: String,
    /// Full name.
    pub display_name: String,
    /// Roles.
    pub roles: Vec<Role>,
    /// When the account was created (Unix seconds).
    pub created_at: u64,
    /// Their newest grant or renewal on any device (Unix seconds); absent: never.
    pub last_used_at: Option<u64>,
}

/// A device that has not been used for a while.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DormantDevice {
    /// Device id (hex).
    pub device_id: String,
    /// Owner.
    pub user: String,
    /// Label given at enrollment.
    pub name: String,
    /// Enrollment time (Unix seconds).
    pub enrolled_at: u64,
    /// Its newest grant or renewal (Unix seconds); absent: never.
    pub last_used_at: Option<u64>,
}

/// A person with a role beyond `user`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PrivilegedUser {
    /// Login name.
    pub name: String,
    /// Full name.
    pub display_name: String,
    /// All their roles.
    pub roles: Vec<Role>,
    /// Whether an administrator suspended them (they keep the role).
    pub suspended: bool,
}

/// A group and its members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupMembers {
    /// The group, without `@`.
    pub group: String,
    /// Its members, sorted.
    pub members: Vec<String>,
}

/// The recipients of the files of one classification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClassificationRecipients {
    /// The policy's classification, or `unclassified`.
    pub classification: String,
    /// How many files the server knows with it.
    pub files: u64,
    /// Every recipient their policies name (`alice`, `@support`), sorted.
    pub recipients: Vec<String>,
}

/// A review recorded as done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReviewDone {
    /// The audit record's `seq`.
    pub seq: u64,
    /// When (Unix milliseconds).
    pub at_ms: u64,
    /// Who recorded it.
    pub by: String,
    /// What they said (a ticket, a sentence).
    pub reason: String,
}

/// `POST /v1/admin/review/done`: the review happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReviewDoneRequest {
    /// Why and how (a ticket id, what was changed): required, one line,
    /// at most `MAX_REASON_LEN` bytes.
    pub reason: String,
}
