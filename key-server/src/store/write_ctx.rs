//! What a job of the group-commit writer sees: the writer's transaction and
//! the chain head, and the one way to append an audit record to the chain.

use super::contract::StoreResult;
use super::ledger::{Entry, Ledger, Object};
use super::tables::{ChainHead, Tables};
use crate::audit::AuditDraft;
use crate::error::{Refusal, StoreError};

/// What a job sees: the writer's transaction, the chain head, and the
/// state ledger with the entries this batch set so far.
pub(super) struct WriteCtx<'a, C> {
    pub(super) conn: &'a mut C,
    pub(super) head: &'a mut ChainHead,
    pub(super) ledger: &'a mut Ledger,
    pub(super) staged: &'a mut Vec<(String, Entry)>,
    pub(super) detector: &'a mut crate::detect::Detector,
    /// What this batch's jobs changed that open documents depend on,
    /// appended to the change log once the batch commits.
    pub(super) changed: &'a mut Vec<super::changes::Changed>,
    /// Set by a job that appended an alert (`detect.RULE`): the writer
    /// then wakes the webhook's task after the commit.
    pub(super) alerted: &'a mut bool,
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

    /// Appends `draft`, which set `objects`, with a ledger token for each
    /// object's state as now stored (PROTOCOL.md §11.3).
    pub(super) fn audit_setting(
        &mut self,
        mut draft: AuditDraft,
        objects: &[Object],
    ) -> Result<(), StoreError> {
        let seq = self.head.seq + 1;
        let mut tokens = Vec::new();
        for object in objects {
            self.changed.extend(object.changed());
            let name = object.name();
            let state = object.state(self.conn)?;
            if let Some((token, entry)) = self.ledger.token(&name, &state, seq) {
                tokens.push(token);
                self.staged.push((name, entry));
            }
        }
        if !tokens.is_empty()
            && let Some(section) = self.ledger.sealed_section(&tokens, seq)
        {
            draft
                .detail
                .get_or_insert_with(String::new)
                .push_str(&section);
        }
        self.audit(draft)
    }

    /// The first of `objects` (each with its state as the caller read it)
    /// that is not as the audit log last set it (forged, deleted or rolled
    /// back), if any.
    pub(super) fn forged(&mut self, objects: &[(Object, String)]) -> Option<String> {
        objects
            .iter()
            .find(|(object, state)| !self.ledger.holds(object, state, self.staged))
            .map(|(object, _)| object.name())
    }

    /// Records `draft` as refused by `refusal` (denied for a denial, failed
    /// otherwise, with its reason) and answers the refusal.
    pub(super) fn refuse<T>(&mut self, draft: AuditDraft, refusal: Refusal) -> StoreResult<T> {
        self.audit(draft.refused(&refusal))?;
        Ok(Err(refusal))
    }
}
