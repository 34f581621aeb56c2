//! The roles a person can hold (PROTOCOL.md §7): what each may manage, and
//! that none by itself opens a file.

use serde::{Deserialize, Serialize};

/// A person's role. Admins manage, auditors read the audit log, maintainers
/// run the service, users read files; no role by itself opens any file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages users, groups, devices, files and keys.
    Admin,
    /// Reads and verifies the audit log.
    Auditor,
    /// Opens files they are a recipient of.
    User,
    /// Runs the service: lists, rotates and retires keys, writes and
    /// verifies audit checkpoints. Nothing else: no user, group, device or
    /// file administration, no reading of audit records.
    Maintainer,
}

impl Role {
    /// Every role, in the order they are listed to people.
    pub const ALL: [Self; 4] = [Self::User, Self::Admin, Self::Auditor, Self::Maintainer];
}
