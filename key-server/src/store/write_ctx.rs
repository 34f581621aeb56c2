//! What a job of the group-commit writer sees: the writer's transaction and
//! the chain head, and the one way to append an audit record to the chain.

use super::contract::StoreResult;
use super::tables::{ChainHead, Tables};
use crate::audit::AuditDraft;
use crate::error::{Refusal, StoreError};

/// What a job sees: the writer's transaction and the chain head.
pub(super) struct WriteCtx<'a, C> {
    pub(super) conn: &'a mut C,
    pub(super) head: &'a mut ChainHead,
}

impl<C: Tables> WriteCtx<'_, C> {
    /// Appends `draft` to the chain (PROTOCOL.md §9).
    pub(super) fn audit(&mut self, draft: AuditDraft) -> Result<(), StoreError> {
        let seq = self.head.seq + 1;
        let record = draft.into_record(seq, &self.head.hash);
        self.conn.insert_audit(&record)?;
        let mut hash = [0u8; 32];
        hex::decode_to_slice(&record.hash, &mut hash)
            .map_err(|_| StoreError::Corrupt("hex encoding failed".into()))?;
        *self.head = ChainHead { seq, hash };
        Ok(())
    }

    /// Records `draft` as refused by `refusal` (denied for a denial, failed
    /// otherwise, with its reason) and answers the refusal.
    pub(super) fn refuse<T>(&mut self, draft: AuditDraft, refusal: Refusal) -> StoreResult<T> {
        self.audit(draft.refused(&refusal))?;
        Ok(Err(refusal))
    }
}
