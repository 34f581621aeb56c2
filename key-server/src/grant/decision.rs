//! The grant decision (PROTOCOL.md §4.1) as one pure function of the request
//! facts, a snapshot of the stored state and the server time. It owns the
//! order of the checks and the lease arithmetic, and nothing else: the
//! request signature (check 1) is verified before it runs, the header's key
//! wrap is opened before it runs (its outcome arrives as a fact), and the
//! store records whatever it returns in the same transaction as the audit
//! record.

use irm_core::protocol::{DenyReason, KeyState};
use irm_core::{FileId, KeyId, Policy, Rights};

/// The server's lease limit when the configuration does not set one (PROTOCOL.md §4.1).
pub const DEFAULT_LEASE_LIMIT_SECS: u64 = 600;

/// What the request says: who asks (authenticated) and what the header holds.
#[derive(Debug, Clone)]
pub struct GrantFacts {
    /// The requesting user, from the verified device signature.
    pub user: String,
    /// The file id from the header.
    pub file_id: FileId,
    /// The policy from the header.
    pub policy: Policy,
    /// The key ids of the header's key-access entries, in header order.
    pub header_keys: Vec<KeyId>,
    /// For each header key this server holds: whether the wrapped key opened
    /// with the header hash as associated data and matched the key commitment
    /// (FORMAT.md §4.2, §4.4).
    pub bindings: Vec<(KeyId, bool)>,
}

/// What an administrator did to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileControls {
    /// Revoked by an administrator.
    pub revoked: bool,
    /// Expired by an administrator from this time on (Unix seconds).
    pub admin_expires_at: Option<u64>,
    /// Rights taken from every grant.
    pub restricted: Rights,
}

impl Default for FileControls {
    fn default() -> Self {
        Self {
            revoked: false,
            admin_expires_at: None,
            restricted: Rights::empty(),
        }
    }
}

/// The stored state the decision reads, as one consistent snapshot.
#[derive(Debug, Clone)]
pub struct StoredState {
    /// Every row read is as the audit log last set it (PROTOCOL.md §11.3);
    /// false when one was written into the database behind the server.
    pub rows_hold: bool,
    /// The user is active (not suspended).
    pub user_active: bool,
    /// A detection rule holds the user's grants until administrators
    /// release them (PROTOCOL.md §12).
    pub held: bool,
    /// The user's groups.
    pub groups: Vec<String>,
    /// The requesting device is active (not revoked).
    pub device_active: bool,
    /// Every key this server holds and its state.
    pub keys: Vec<(KeyId, KeyState)>,
    /// The file's administrative state; `None` when the server has not seen
    /// the file yet (sealed offline), which is the same as no action taken.
    pub file: Option<FileControls>,
    /// The server's lease limit in seconds.
    pub lease_limit_secs: u64,
}

/// A positive decision: what the grant carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The key server key whose wrap opened.
    pub key_id: KeyId,
    /// The effective rights: the policy's rights for the user minus restrictions.
    pub rights: Rights,
    /// From the policy.
    pub watermark_required: bool,
    /// When the lease ends (Unix seconds, server clock).
    pub lease_expires_at: u64,
    /// The policy's not-after time.
    pub not_after: Option<u64>,
}

/// PROTOCOL.md §4.1: checks 2 to 12, in the table's order, after the rows'
/// own integrity. The first failing check names the denial. Holding the
/// admin role is not an input: admins manage, recipients read.
pub fn decide(facts: &GrantFacts, state: &StoredState, now: u64) -> Result<Decision, DenyReason> {
    // 1b: rows forged, deleted or rolled back mean nothing below holds.
    if !state.rows_hold {
        return Err(DenyReason::StateIntegrity);
    }
    // 2, 3: the person and the device.
    if !state.user_active {
        return Err(DenyReason::UserSuspended);
    }
    // 2b: held for review by a detection rule.
    if state.held {
        return Err(DenyReason::StepUpRequired);
    }
    if !state.device_active {
        return Err(DenyReason::DeviceRevoked);
    }
    // 4-6: the key this server opens the header with.
    let key_id = key_for(&facts.header_keys, &facts.bindings, &state.keys)?;
    let controls = state.file.unwrap_or_default();
    // 7: administrator revocation.
    if controls.revoked {
        return Err(DenyReason::FileRevoked);
    }
    // 8: the user or one of their groups is a recipient.
    let groups: Vec<&str> = state.groups.iter().map(String::as_str).collect();
    let policy_rights = facts.policy.rights_for(&facts.user, &groups);
    if policy_rights.is_empty() {
        return Err(DenyReason::NotRecipient);
    }
    // 9, 10: the policy's window, server clock; not_after is exclusive.
    if facts.policy.not_before_unix.is_some_and(|nb| now < nb) {
        return Err(DenyReason::NotYetValid);
    }
    if facts.policy.not_after_unix.is_some_and(|na| now >= na) {
        return Err(DenyReason::PolicyExpired);
    }
    // 11: administrator expiry, exclusive like not_after.
    if controls.admin_expires_at.is_some_and(|at| now >= at) {
        return Err(DenyReason::FileExpired);
    }
    // 12: rights this version knows, minus the administrator's restriction.
    let rights = (policy_rights & Rights::all()).difference(controls.restricted);
    if rights.is_empty() {
        return Err(DenyReason::RightsRestricted);
    }
    Ok(Decision {
        key_id,
        rights,
        watermark_required: facts.policy.watermark_required,
        lease_expires_at: lease_end(facts, controls, state.lease_limit_secs, now),
        not_after: facts.policy.not_after_unix,
    })
}

/// PROTOCOL.md §4.1 checks 4 to 6, the one rule for which server key opens a
/// header, shared by the grant decision and file registration (§6):
/// 4. some key-access entry names a key this server holds (`key_unknown`);
/// 5. one of those keys is still in service (`key_retired`); a file wrapped
///    to several of our keys opens through the first one in header order;
/// 6. that key's wrap opened under the header hash and matched the key
///    commitment (`policy_binding_failed`).
pub fn key_for(
    header_keys: &[KeyId],
    bindings: &[(KeyId, bool)],
    held: &[(KeyId, KeyState)],
) -> Result<KeyId, DenyReason> {
    let named: Vec<(KeyId, KeyState)> = header_keys
        .iter()
        .filter_map(|id| {
            held.iter()
                .find(|(held, _)| held == id)
                .map(|&(_, state)| (*id, state))
        })
        .collect();
    if named.is_empty() {
        return Err(DenyReason::KeyUnknown);
    }
    let key_id = named
        .iter()
        .find(|(_, state)| *state != KeyState::Retired)
        .map(|(id, _)| *id)
        .ok_or(DenyReason::KeyRetired)?;
    if !bindings.iter().any(|(id, ok)| *id == key_id && *ok) {
        return Err(DenyReason::PolicyBindingFailed);
    }
    Ok(key_id)
}

/// PROTOCOL.md §4.1: `now + min(policy max lease, server limit)`, capped at
/// the policy's not-after time and the administrator's expiry.
fn lease_end(facts: &GrantFacts, controls: FileControls, limit_secs: u64, now: u64) -> u64 {
    let length = u64::from(facts.policy.max_lease_secs).min(limit_secs);
    let mut end = now.saturating_add(length);
    if let Some(na) = facts.policy.not_after_unix {
        end = end.min(na);
    }
    if let Some(at) = controls.admin_expires_at {
        end = end.min(at);
    }
    end
}
