//! The audit log's writing side (PROTOCOL.md §9): records drafted by the
//! handlers and the store, sealed into the chain with irm-core's
//! [`chain_hash`], and checkpoints signed with the server's audit key (with
//! irm-core's [`sign_checkpoint`]) and appended to the checkpoint file.
//!
//! Verification (of the chain, of checkpoints, of an export) is irm-core's
//! (`irm_core::audit`), shared with `irm audit verify`, so that a third
//! party needs no server to check an export. Where records are stored and
//! how they are appended is the store's job.

use std::fs::OpenOptions;
use std::io::{BufReader, Write};
use std::path::Path;

pub use irm_core::audit::{GENESIS_HASH, chain_hash, sign_checkpoint};
use irm_core::protocol::{AuditCheckpoint, AuditRecord, DenyReason};

/// How a recorded operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It was done.
    Ok,
    /// It was refused (a `DenyReason`, or a client error).
    Denied,
    /// The request itself failed (bad credential, unknown object).
    Failed,
}

impl Outcome {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Denied => "denied",
            Self::Failed => "failed",
        }
    }
}

/// An audit record before the chain gives it a position and a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditDraft {
    /// Server time (Unix milliseconds).
    pub at_ms: u64,
    /// The acting user, if known.
    pub actor_user: Option<String>,
    /// The acting device (hex), if known.
    pub actor_device: Option<String>,
    /// What happened (`grant`, `renew`, `event.print`, `admin.file.revoke`, ...).
    pub action: String,
    /// The file concerned (hex).
    pub file_id: Option<String>,
    /// `ok`, `denied` or `failed`.
    pub result: Outcome,
    /// The denial reason or failure kind.
    pub reason: Option<String>,
    /// The client's address.
    pub client_addr: Option<String>,
    /// Free-form detail (the target of an admin action, rights, ...).
    pub detail: Option<String>,
}

impl AuditDraft {
    /// A draft for `action` at `at_ms` with every optional field empty.
    pub fn new(at_ms: u64, action: impl Into<String>, result: Outcome) -> Self {
        Self {
            at_ms,
            actor_user: None,
            actor_device: None,
            action: action.into(),
            file_id: None,
            result,
            reason: None,
            client_addr: None,
            detail: None,
        }
    }

    /// Sets the denial reason (and the result to `denied` unless it is `failed`).
    pub fn deny(mut self, reason: DenyReason) -> Self {
        if self.result == Outcome::Ok {
            self.result = Outcome::Denied;
        }
        self.reason = Some(reason.as_str().to_owned());
        self
    }

    /// Records `refusal`: `denied` with its reason for a denial, `failed`
    /// with its kind for anything else.
    pub fn refused(mut self, refusal: &crate::error::Refusal) -> Self {
        self.result = match refusal {
            crate::error::Refusal::Deny(_) => Outcome::Denied,
            _ => Outcome::Failed,
        };
        self.reason = Some(refusal.audit_reason().to_owned());
        self
    }

    /// Sets the detail.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Sets the file id.
    pub fn file(mut self, file_id: impl Into<String>) -> Self {
        self.file_id = Some(file_id.into());
        self
    }

    /// Seals the draft into record `seq` after `prev_hash`.
    pub fn into_record(self, seq: u64, prev_hash: &[u8; 32]) -> AuditRecord {
        let mut record = AuditRecord {
            seq,
            at_ms: self.at_ms,
            actor_user: self.actor_user,
            actor_device: self.actor_device,
            action: self.action,
            file_id: self.file_id,
            result: self.result.as_str().to_owned(),
            reason: self.reason,
            client_addr: self.client_addr,
            detail: self.detail,
            prev_hash: hex::encode(prev_hash),
            hash: String::new(),
        };
        record.hash = hex::encode(chain_hash(prev_hash, &record));
        record
    }
}

/// Appends one checkpoint as a JSON line and flushes it to disk.
pub fn append_checkpoint(path: &Path, checkpoint: &AuditCheckpoint) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(checkpoint).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(&line)?;
    file.sync_data()
}

/// Reads the checkpoint file ([`irm_core::audit::read_checkpoints`]). A
/// missing file holds no checkpoint.
pub fn read_checkpoints(path: &Path) -> std::io::Result<(Vec<AuditCheckpoint>, Vec<String>)> {
    match std::fs::File::open(path) {
        Ok(file) => irm_core::audit::read_checkpoints(BufReader::new(file)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((Vec::new(), Vec::new())),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use irm_core::SigningSecretKey;
    use irm_core::audit::{ChainVerifier, decode_hash};

    use super::*;

    /// What the writer seals and signs, the verifier accepts: the two halves
    /// of the chain live in two crates and must agree.
    #[test]
    fn records_and_checkpoints_written_here_verify_in_irm_core() {
        let key = SigningSecretKey::generate().unwrap();
        let mut prev = GENESIS_HASH;
        let records: Vec<AuditRecord> = (1..=5)
            .map(|seq| {
                let record = AuditDraft::new(seq * 10, "grant", Outcome::Ok)
                    .detail(format!("r{seq}"))
                    .into_record(seq, &prev);
                prev = decode_hash(&record.hash).unwrap();
                record
            })
            .collect();
        let head = decode_hash(&records[2].hash).unwrap();
        let mut verifier =
            ChainVerifier::new(key.public_key(), vec![sign_checkpoint(&key, 3, &head, 99)]);
        for record in &records {
            verifier.push(record);
        }
        assert_eq!(verifier.covered(), 3);
        let report = verifier.finish();
        assert!(report.ok, "{:?}", report.problems);
        assert_eq!((report.records, report.checkpoints), (5, 1));
    }

    #[test]
    fn a_denial_is_recorded_with_its_reason_string() {
        let record = AuditDraft::new(1, "grant", Outcome::Ok)
            .deny(DenyReason::FileRevoked)
            .into_record(1, &GENESIS_HASH);
        assert_eq!(record.result, "denied");
        assert_eq!(record.reason.as_deref(), Some("file_revoked"));
    }
}
