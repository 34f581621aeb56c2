//! The audit log's verification (PROTOCOL.md §9), pure and over `BufRead`,
//! so that a third party checks an export with nothing but the `irm` binary
//! and the server's audit public key: the one function that hashes a record
//! into the chain ([`chain_hash`], which the key server's writer calls too),
//! what a signed checkpoint is ([`sign_checkpoint`], with whatever key signs
//! it) and how to check one, the chain verifier, and the verifier of an
//! export (§9.1).
//!
//! Drafting and storing records, holding the audit key and keeping the
//! checkpoint file are the key server's; this module only defines what the
//! bytes must be and how to check them.

use std::collections::BTreeMap;
use std::io::{BufRead, Read as _};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::protocol::{AuditCheckpoint, AuditExportLine, AuditRecord, AuditVerifyReport};
use crate::request_auth::{SigningSecretKey, checkpoint_message, verify_signature};

/// The previous hash of the first record.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// At most this many problems are listed in a report; the rest are counted.
const MAX_PROBLEMS: usize = 200;

/// The key server's audit-signing public key (Ed25519), which alone vouches
/// for checkpoints. Its text form, `DATA_DIR/audit-signing.pub`, is the key
/// in base64url without padding, surrounded by any white space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditPublicKey(pub [u8; 32]);

/// An audit public key file that does not hold a key.
#[derive(Debug, thiserror::Error)]
#[error(
    "not an audit public key: expected 32 bytes in base64url without padding (DATA_DIR/audit-signing.pub)"
)]
pub struct AuditKeyParseError;

impl AuditPublicKey {
    /// Parses the text form.
    pub fn from_text(text: &str) -> Result<Self, AuditKeyParseError> {
        URL_SAFE_NO_PAD
            .decode(text.trim())
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
            .map(Self)
            .ok_or(AuditKeyParseError)
    }

    /// The text form.
    pub fn to_text(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }
}

/// PROTOCOL.md §9: `field(x) = u32(len(x)) || x`, absent = `u32(0xFFFFFFFF)`.
fn put_field(hasher: &mut Sha256, value: Option<&str>) {
    match value {
        Some(text) => {
            // A field longer than 4 GiB cannot reach here (bodies are at most 1 MiB).
            let len = u32::try_from(text.len()).unwrap_or(u32::MAX - 1);
            hasher.update(len.to_be_bytes());
            hasher.update(text.as_bytes());
        }
        None => hasher.update(u32::MAX.to_be_bytes()),
    }
}

/// PROTOCOL.md §9: the hash of `record` chained after `prev_hash`. The one
/// definition: the writer and the verifier both call it. The record's own
/// `prev_hash` and `hash` fields are not read.
pub fn chain_hash(prev_hash: &[u8; 32], record: &AuditRecord) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"irm/v1/audit");
    hasher.update(prev_hash);
    hasher.update(record.seq.to_be_bytes());
    hasher.update(record.at_ms.to_be_bytes());
    for value in [
        record.actor_user.as_deref(),
        record.actor_device.as_deref(),
        Some(record.action.as_str()),
        record.file_id.as_deref(),
        Some(record.result.as_str()),
        record.reason.as_deref(),
        record.client_addr.as_deref(),
        record.detail.as_deref(),
    ] {
        put_field(&mut hasher, value);
    }
    hasher.finalize().into()
}

/// A checkpoint for a chain of `count` records ending in `head_hash`,
/// signed with `key` (PROTOCOL.md §9): what the key server writes to its
/// checkpoint file, and what [`checkpoint_signature_holds`] checks.
pub fn sign_checkpoint(
    key: &SigningSecretKey,
    count: u64,
    head_hash: &[u8; 32],
    at_ms: u64,
) -> AuditCheckpoint {
    let head_hash = hex::encode(head_hash);
    let signature = key.sign(&checkpoint_message(count, &head_hash, at_ms));
    AuditCheckpoint {
        count,
        head_hash,
        at_ms,
        signing_key: key.public_key_b64(),
        signature: URL_SAFE_NO_PAD.encode(signature),
    }
}

/// Whether `checkpoint` is signed by `trusted_key` (the server's audit key).
pub fn checkpoint_signature_holds(checkpoint: &AuditCheckpoint, trusted_key: &[u8; 32]) -> bool {
    let Ok(signature) = URL_SAFE_NO_PAD.decode(&checkpoint.signature) else {
        return false;
    };
    let Ok(signature) = <[u8; 64]>::try_from(signature.as_slice()) else {
        return false;
    };
    // The key named in the line is informational: only the trusted key counts,
    // or a forger could sign a recomputed chain with a key of their own.
    let named_ok = URL_SAFE_NO_PAD
        .decode(&checkpoint.signing_key)
        .is_ok_and(|k| k.as_slice() == trusted_key.as_slice());
    named_ok
        && verify_signature(
            trusted_key,
            &checkpoint_message(checkpoint.count, &checkpoint.head_hash, checkpoint.at_ms),
            &signature,
        )
}

/// Verifies a chain fed one record at a time, in `seq` order, against signed
/// checkpoints. Memory stays proportional to the number of checkpoints.
pub struct ChainVerifier {
    trusted_key: [u8; 32],
    /// Checkpoints whose signature holds, by count.
    expected: BTreeMap<u64, Vec<AuditCheckpoint>>,
    checkpoints: u64,
    /// The position before the first record (0, or the record a range follows).
    start: u64,
    position: u64,
    prev_stored: [u8; 32],
    /// The highest position whose head hash a signed checkpoint confirmed.
    covered: u64,
    /// `Some(grace)`: the whole chain of a server is checked, so records
    /// that no checkpoint confirms are allowed only within `grace` ms of the
    /// newest record (the tail written since the last checkpoint).
    unvouched_grace_ms: Option<u64>,
    /// The first record after the last confirmed one: (seq, at_ms).
    first_unvouched: Option<(u64, u64)>,
    /// The newest `at_ms` seen.
    newest_ms: u64,
    problems: Vec<String>,
    extra_problems: u64,
}

impl ChainVerifier {
    /// Starts a verification; `checkpoints` are checked for their signature now.
    pub fn new(trusted_key: [u8; 32], checkpoints: Vec<AuditCheckpoint>) -> Self {
        Self::resume(trusted_key, checkpoints, 0, GENESIS_HASH)
    }

    /// Starts a verification of the chain after record `after_seq`, whose
    /// hash is taken to be `prev_hash` (an export of a range, §9.1: only a
    /// checkpoint inside the range vouches for it).
    pub fn resume(
        trusted_key: [u8; 32],
        checkpoints: Vec<AuditCheckpoint>,
        after_seq: u64,
        prev_hash: [u8; 32],
    ) -> Self {
        let mut verifier = Self {
            trusted_key,
            expected: BTreeMap::new(),
            checkpoints: 0,
            start: after_seq,
            position: after_seq,
            prev_stored: prev_hash,
            covered: 0,
            unvouched_grace_ms: None,
            first_unvouched: None,
            newest_ms: 0,
            problems: Vec::new(),
            extra_problems: 0,
        };
        for cp in checkpoints {
            verifier.checkpoints += 1;
            if checkpoint_signature_holds(&cp, &verifier.trusted_key) {
                verifier.expected.entry(cp.count).or_default().push(cp);
            } else {
                verifier.problem(format!(
                    "checkpoint of {} records at {} ms: the signature does not verify with the server's audit key",
                    cp.count, cp.at_ms
                ));
            }
        }
        verifier
    }

    /// Checks a server's whole chain (PROTOCOL.md §9): at least one signed
    /// checkpoint once the chain holds records, and no record unconfirmed
    /// by a checkpoint more than `grace_ms` older than the newest record.
    /// Without it, whoever deletes or empties the checkpoint file and
    /// recomputes the chain would be told that all is well.
    #[must_use]
    pub fn require_vouched(mut self, grace_ms: u64) -> Self {
        self.unvouched_grace_ms = Some(grace_ms);
        self
    }

    /// Adds problems found elsewhere (for example unreadable checkpoint lines).
    pub fn problem(&mut self, text: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(text);
        } else {
            self.extra_problems += 1;
        }
    }

    /// Checks the next record of the chain.
    pub fn push(&mut self, record: &AuditRecord) {
        self.position += 1;
        let position = self.position;
        if record.seq != position {
            self.problem(format!(
                "record at position {position} has seq {}: a record was deleted, inserted or reordered",
                record.seq
            ));
        }
        let stored_prev = decode_hash(&record.prev_hash);
        if !stored_prev.is_some_and(|p| bool::from(p.ct_eq(&self.prev_stored))) {
            self.problem(format!(
                "record seq {}: prev_hash does not match the hash of the record before it",
                record.seq
            ));
        }
        let stored = decode_hash(&record.hash);
        let recomputed = chain_hash(&stored_prev.unwrap_or(self.prev_stored), record);
        if !stored.is_some_and(|h| bool::from(h.ct_eq(&recomputed))) {
            self.problem(format!(
                "record seq {}: its hash does not match its content (the record was edited)",
                record.seq
            ));
        }
        let head = stored.unwrap_or(recomputed);
        self.newest_ms = self.newest_ms.max(record.at_ms);
        if self.first_unvouched.is_none() {
            self.first_unvouched = Some((record.seq, record.at_ms));
        }
        if let Some(cps) = self.expected.remove(&position) {
            for cp in cps {
                let matches =
                    decode_hash(&cp.head_hash).is_some_and(|h| bool::from(h.ct_eq(&head)));
                if matches {
                    self.covered = position;
                    self.first_unvouched = None;
                } else {
                    self.problems.push(format!(
                        "record {position} does not have the head hash signed in the checkpoint of {} ms: the chain was rewritten",
                        cp.at_ms
                    ));
                }
            }
        }
        self.prev_stored = head;
    }

    /// The `seq` the last record checked should have had (its position).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The last position a signed checkpoint confirmed (0 if none did).
    pub fn covered(&self) -> u64 {
        self.covered
    }

    /// Ends the verification: checkpoints beyond the end mean a truncated tail.
    pub fn finish(mut self) -> AuditVerifyReport {
        let expected = std::mem::take(&mut self.expected);
        for (count, cps) in expected {
            if count == 0 {
                continue;
            }
            for cp in cps {
                self.problem(format!(
                    "a checkpoint signed at {} ms covers {count} records but only {} remain: the log was truncated",
                    cp.at_ms, self.position
                ));
            }
        }
        if let Some(grace) = self.unvouched_grace_ms {
            self.check_vouched(grace);
        }
        if self.extra_problems > 0 {
            self.problems
                .push(format!("... and {} more problems", self.extra_problems));
        }
        AuditVerifyReport {
            ok: self.problems.is_empty(),
            records: self.position - self.start,
            checkpoints: self.checkpoints,
            problems: self.problems,
        }
    }
}

impl ChainVerifier {
    fn check_vouched(&mut self, grace_ms: u64) {
        let records = self.position - self.start;
        if records > 0 && self.checkpoints == 0 {
            self.problem(format!(
                "the chain holds {records} records and there is no checkpoint: the checkpoint file was deleted or emptied (a server writes one at init and at every start)"
            ));
            return;
        }
        if let Some((seq, at_ms)) = self.first_unvouched {
            let age_ms = self.newest_ms.saturating_sub(at_ms);
            if age_ms > grace_ms {
                self.problem(format!(
                    "records {seq} to {} are confirmed by no checkpoint, the first of them {} s older than the newest record (grace {} s): checkpoints were removed or the server stopped writing them",
                    self.position,
                    age_ms / 1000,
                    grace_ms / 1000
                ));
            }
        }
    }
}

/// Reads checkpoints kept as JSON lines (the key server's checkpoint file,
/// or a copy shipped off the machine): the checkpoints that parse, and a
/// problem line for each that does not. Blank lines are skipped.
pub fn read_checkpoints(
    input: impl BufRead,
) -> std::io::Result<(Vec<AuditCheckpoint>, Vec<String>)> {
    let (mut checkpoints, mut problems) = (Vec::new(), Vec::new());
    let mut lines = BoundedLines::new(input);
    while let Some((number, line)) = lines.next_line()? {
        match line.and_then(|text| {
            serde_json::from_str::<AuditCheckpoint>(&text)
                .map_err(|e| format!("does not parse ({e})"))
        }) {
            Ok(cp) => checkpoints.push(cp),
            Err(problem) => problems.push(format!("checkpoint file line {number}: {problem}")),
        }
    }
    Ok((checkpoints, problems))
}

/// Export lines longer than this are refused unread (a record is a few
/// hundred bytes; its fields are bounded by the 1 MiB request limit).
const MAX_EXPORT_LINE: u64 = 4 * 1024 * 1024;

/// PROTOCOL.md §9.1: verifies an audit export read from `input` against the
/// server's audit public key `trusted_key`, and against `extra` checkpoints
/// kept elsewhere (for example the server's checkpoint file, shipped off the
/// machine). Of those, the ones outside the export's range are not
/// applicable and are skipped; a checkpoint in the file itself that counts
/// more records than the file holds means a cut tail. Every record must chain from the one before, and the last
/// must be confirmed by a checkpoint signed with `trusted_key` (the key named
/// inside the file counts for nothing). What is wrong goes in the report;
/// only a failure to read `input` is an error.
pub fn verify_export(
    input: impl BufRead,
    trusted_key: [u8; 32],
    extra: Vec<AuditCheckpoint>,
    unreadable: Vec<String>,
) -> std::io::Result<AuditVerifyReport> {
    let mut lines = BoundedLines::new(input);
    // Problems found apart from the chain: the checkpoint file's unreadable
    // lines (from `read_checkpoints`), then lines out of place here. They
    // go through the verifier like every other problem (and its cap).
    let mut late = unreadable;
    let broken = |problem: String, mut late: Vec<String>| {
        late.insert(0, problem);
        late.truncate(MAX_PROBLEMS);
        AuditVerifyReport {
            ok: false,
            records: 0,
            checkpoints: 0,
            problems: late,
        }
    };
    let header = match lines.next_line()? {
        None => return Ok(broken("the export is empty".into(), late)),
        Some((_, Err(problem))) => return Ok(broken(format!("line 1: {problem}"), late)),
        Some((_, Ok(text))) => match serde_json::from_str::<AuditExportLine>(&text) {
            Ok(AuditExportLine::Export(header)) if header.version == 1 => header,
            Ok(AuditExportLine::Export(header)) => {
                return Ok(broken(
                    format!(
                        "export format version {} is not supported (this verifier reads version 1)",
                        header.version
                    ),
                    late,
                ));
            }
            _ => {
                return Ok(broken(
                    r#"line 1 is not an audit export header ({"export": {...}})"#.into(),
                    late,
                ));
            }
        },
    };
    if header.first_seq == 0 || header.last_seq < header.first_seq {
        return Ok(broken(
            format!(
                "the header's range {}..{} is empty or starts before record 1",
                header.first_seq, header.last_seq
            ),
            late,
        ));
    }
    let in_range = |cp: &AuditCheckpoint| (header.first_seq..=header.last_seq).contains(&cp.count);
    let mut checkpoints: Vec<AuditCheckpoint> = extra.into_iter().filter(in_range).collect();
    let mut verifier: Option<ChainVerifier> = None;
    let mut first_record = None;
    while let Some((number, line)) = lines.next_line()? {
        let parsed = line.and_then(|text| {
            serde_json::from_str::<AuditExportLine>(&text)
                .map_err(|e| format!("does not parse ({e})"))
        });
        match parsed {
            Err(problem) => late.push(format!("line {number}: {problem}")),
            Ok(AuditExportLine::Export(_)) => {
                late.push(format!("line {number}: a second export header"));
            }
            // The file's own checkpoints may not claim more records than it
            // holds (that is a cut tail); those of the chain before the
            // range cannot be checked here.
            Ok(AuditExportLine::Checkpoint(cp)) if verifier.is_none() => {
                if cp.count >= header.first_seq {
                    checkpoints.push(cp);
                }
            }
            Ok(AuditExportLine::Checkpoint(cp)) => late.push(format!(
                "line {number}: the checkpoint of {} records comes after the first record and is not checked (checkpoints come first)",
                cp.count
            )),
            Ok(AuditExportLine::Record(record)) => {
                let verifier = verifier.get_or_insert_with(|| {
                    first_record = Some(record.seq);
                    // Record 1 follows the genesis hash; a range starts from
                    // the hash its first record names, which only a
                    // checkpoint inside the range can vouch for.
                    let prev = if header.first_seq == 1 {
                        GENESIS_HASH
                    } else {
                        decode_hash(&record.prev_hash).unwrap_or(GENESIS_HASH)
                    };
                    ChainVerifier::resume(
                        trusted_key,
                        std::mem::take(&mut checkpoints),
                        header.first_seq - 1,
                        prev,
                    )
                });
                verifier.push(&record);
            }
        }
    }
    let Some(mut verifier) = verifier else {
        return Ok(broken("the export holds no record".into(), late));
    };
    for problem in late {
        verifier.problem(problem);
    }
    if first_record != Some(header.first_seq) {
        verifier.problem(format!(
            "the header says the export starts at record {} but its first record is {}",
            header.first_seq,
            first_record.unwrap_or(0)
        ));
    }
    let last = verifier.position();
    if last != header.last_seq {
        verifier.problem(format!(
            "the header says the export ends at record {} but it holds records up to {last}: records are missing or were added",
            header.last_seq
        ));
    }
    let covered = verifier.covered();
    if covered == 0 {
        verifier.problem(
            "no checkpoint signed with the trusted audit key confirms any record of the export"
                .into(),
        );
    } else if covered < last {
        verifier.problem(format!(
            "records {}..{last} are not confirmed by a signed checkpoint",
            covered + 1
        ));
    }
    Ok(verifier.finish())
}

/// Lines of at most [`MAX_EXPORT_LINE`] bytes, numbered from 1; a longer or
/// non-UTF-8 line is reported, not returned.
struct BoundedLines<R> {
    input: R,
    number: u64,
}

impl<R: BufRead> BoundedLines<R> {
    fn new(input: R) -> Self {
        Self { input, number: 0 }
    }

    /// The next non-empty line, or `None` at the end.
    fn next_line(&mut self) -> std::io::Result<Option<(u64, Result<String, String>)>> {
        loop {
            let mut bytes = Vec::new();
            let read = (&mut self.input)
                .take(MAX_EXPORT_LINE + 1)
                .read_until(b'\n', &mut bytes)?;
            if read == 0 {
                return Ok(None);
            }
            self.number += 1;
            if bytes.len() as u64 > MAX_EXPORT_LINE {
                // Skip the rest of the oversized line.
                let mut rest = bytes;
                while !rest.ends_with(b"\n") {
                    rest.clear();
                    if (&mut self.input)
                        .take(1 << 16)
                        .read_until(b'\n', &mut rest)?
                        == 0
                    {
                        break;
                    }
                }
                return Ok(Some((self.number, Err("is too long".into()))));
            }
            let text = match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(_) => return Ok(Some((self.number, Err("is not UTF-8".into())))),
            };
            if !text.trim().is_empty() {
                return Ok(Some((self.number, Ok(text))));
            }
        }
    }
}

/// A hex SHA-256 as stored in records and checkpoints.
pub fn decode_hash(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::protocol::AuditExportHeader;

    /// A record as the key server seals one (its writer calls `chain_hash`).
    fn record(seq: u64, prev: &[u8; 32], detail: &str) -> AuditRecord {
        let mut record = AuditRecord {
            seq,
            at_ms: seq * 10,
            actor_user: None,
            actor_device: None,
            action: "grant".into(),
            file_id: None,
            result: "ok".into(),
            reason: None,
            client_addr: None,
            detail: Some(detail.into()),
            prev_hash: hex::encode(prev),
            hash: String::new(),
        };
        record.hash = hex::encode(chain_hash(prev, &record));
        record
    }

    fn chain(n: u64) -> Vec<AuditRecord> {
        let mut prev = GENESIS_HASH;
        (1..=n)
            .map(|seq| {
                let rec = record(seq, &prev, &format!("r{seq}"));
                prev = decode_hash(&rec.hash).unwrap();
                rec
            })
            .collect()
    }

    fn verify(
        records: &[AuditRecord],
        cps: Vec<AuditCheckpoint>,
        key: &SigningSecretKey,
    ) -> AuditVerifyReport {
        let mut v = ChainVerifier::new(key.public_key(), cps);
        for r in records {
            v.push(r);
        }
        v.finish()
    }

    #[test]
    fn absent_and_empty_fields_hash_differently() {
        let mut a = record(1, &GENESIS_HASH, "x");
        let mut b = a.clone();
        a.detail = None;
        b.detail = Some(String::new());
        assert_ne!(chain_hash(&GENESIS_HASH, &a), chain_hash(&GENESIS_HASH, &b));
    }

    /// A server's whole chain (`require_vouched`): `chain(5)` writes record
    /// `seq` at `seq * 10` ms.
    fn verify_whole(
        records: &[AuditRecord],
        cps: Vec<AuditCheckpoint>,
        grace_ms: u64,
    ) -> AuditVerifyReport {
        let key = SigningSecretKey::generate().unwrap();
        let cps = cps
            .into_iter()
            .map(|cp| {
                sign_checkpoint(
                    &key,
                    cp.count,
                    &decode_hash(&cp.head_hash).unwrap(),
                    cp.at_ms,
                )
            })
            .collect();
        let mut v = ChainVerifier::new(key.public_key(), cps).require_vouched(grace_ms);
        for r in records {
            v.push(r);
        }
        v.finish()
    }

    fn unsigned(records: &[AuditRecord], count: u64) -> AuditCheckpoint {
        AuditCheckpoint {
            count,
            head_hash: records[count as usize - 1].hash.clone(),
            at_ms: 1,
            signing_key: String::new(),
            signature: String::new(),
        }
    }

    #[test]
    fn a_whole_chain_without_any_checkpoint_fails() {
        let records = chain(5);
        let report = verify_whole(&records, Vec::new(), u64::MAX);
        assert!(!report.ok);
        assert!(
            report.problems[0].contains("there is no checkpoint"),
            "{:?}",
            report.problems
        );
        // An export of a range, or a chain checked without the rule, is
        // judged as before; and an empty chain needs no checkpoint.
        assert!(verify_whole(&[], Vec::new(), 0).ok);
    }

    #[test]
    fn records_past_the_last_checkpoint_are_allowed_only_within_the_grace() {
        let records = chain(5);
        // Records 4 and 5 (at 40 and 50 ms) follow the checkpoint of 3.
        let cps = || vec![unsigned(&records, 3)];
        let within = verify_whole(&records, cps(), 10);
        assert!(within.ok, "{:?}", within.problems);
        let beyond = verify_whole(&records, cps(), 9);
        assert!(!beyond.ok);
        assert!(
            beyond.problems[0].contains("records 4 to 5 are confirmed by no checkpoint"),
            "{:?}",
            beyond.problems
        );
        // A checkpoint of the whole chain leaves nothing unconfirmed.
        assert!(verify_whole(&records, vec![unsigned(&records, 5)], 0).ok);
    }

    #[test]
    fn an_intact_chain_with_checkpoints_verifies() {
        let key = SigningSecretKey::generate().unwrap();
        let records = chain(5);
        let head = decode_hash(&records[2].hash).unwrap();
        let cp = sign_checkpoint(&key, 3, &head, 99);
        let report = verify(&records, vec![cp], &key);
        assert!(report.ok, "{:?}", report.problems);
        assert_eq!((report.records, report.checkpoints), (5, 1));
    }

    /// An export of records `first..=last` of `records` with `checkpoints`.
    fn export(
        records: &[AuditRecord],
        first: u64,
        last: u64,
        cps: &[AuditCheckpoint],
    ) -> Vec<String> {
        let header = AuditExportHeader {
            version: 1,
            server: "https://kas.test".into(),
            first_seq: first,
            last_seq: last,
            exported_at_ms: 5,
        };
        let mut lines = vec![serde_json::to_string(&AuditExportLine::Export(header)).unwrap()];
        for cp in cps {
            lines.push(serde_json::to_string(&AuditExportLine::Checkpoint(cp.clone())).unwrap());
        }
        for r in records.iter().filter(|r| (first..=last).contains(&r.seq)) {
            lines.push(serde_json::to_string(&AuditExportLine::Record(r.clone())).unwrap());
        }
        lines
    }

    fn check(
        lines: &[String],
        key: &SigningSecretKey,
        extra: Vec<AuditCheckpoint>,
    ) -> AuditVerifyReport {
        verify_export(
            lines.join("\n").as_bytes(),
            key.public_key(),
            extra,
            Vec::new(),
        )
        .unwrap()
    }

    fn head(records: &[AuditRecord], count: u64) -> [u8; 32] {
        decode_hash(&records[count as usize - 1].hash).unwrap()
    }

    #[test]
    fn an_export_verifies_only_as_it_was_written() {
        let key = SigningSecretKey::generate().unwrap();
        let records = chain(6);
        let cp = sign_checkpoint(&key, 6, &head(&records, 6), 99);
        let good = export(&records, 1, 6, std::slice::from_ref(&cp));
        let report = check(&good, &key, vec![]);
        assert!(report.ok, "{:?}", report.problems);
        assert_eq!((report.records, report.checkpoints), (6, 1));

        let problems = |lines: &[String]| check(lines, &key, vec![]).problems.join("\n");
        // An edited line: one field of record 3.
        let mut edited = good.clone();
        edited[4] = edited[4].replace("\"r3\"", "\"r9\"");
        assert_ne!(edited, good);
        assert!(
            problems(&edited).contains("record seq 3: its hash does not match"),
            "{}",
            problems(&edited)
        );
        // A deleted line.
        let mut deleted = good.clone();
        deleted.remove(4);
        assert!(problems(&deleted).contains("deleted, inserted or reordered"));
        // Two lines swapped.
        let mut swapped = good.clone();
        swapped.swap(3, 4);
        assert!(!check(&swapped, &key, vec![]).ok);
        // The tail cut off (with the header edited to match).
        let mut cut = export(&records, 1, 5, std::slice::from_ref(&cp));
        assert!(
            problems(&cut).contains("only 5 remain"),
            "{}",
            problems(&cut)
        );
        cut.remove(1); // and the checkpoint dropped too: nothing vouches for it
        assert!(problems(&cut).contains("no checkpoint"));
        // A chain rebuilt from scratch after an edit, with a checkpoint
        // signed by a key of the forger's own.
        let forger = SigningSecretKey::generate().unwrap();
        let mut rebuilt = chain(6);
        rebuilt[2].detail = Some("r9".into());
        let mut prev = GENESIS_HASH;
        for r in &mut rebuilt {
            r.prev_hash = hex::encode(prev);
            prev = chain_hash(&prev, r);
            r.hash = hex::encode(prev);
        }
        let forged = sign_checkpoint(&forger, 6, &head(&rebuilt, 6), 99);
        let report = check(&export(&rebuilt, 1, 6, &[forged]), &key, vec![]);
        assert!(!report.ok);
        assert!(
            report
                .problems
                .join("\n")
                .contains("does not verify with the server's audit key")
        );
        // The same rebuilt chain against a real checkpoint kept elsewhere.
        let report = check(&export(&rebuilt, 1, 6, &[]), &key, vec![cp.clone()]);
        assert!(
            report
                .problems
                .join("\n")
                .contains("the chain was rewritten"),
            "{:?}",
            report.problems
        );
        // Records past the last checkpoint are not vouched for.
        let early = sign_checkpoint(&key, 4, &head(&records, 4), 50);
        let report = check(&export(&records, 1, 6, &[early]), &key, vec![]);
        assert!(
            report
                .problems
                .join("\n")
                .contains("records 5..6 are not confirmed")
        );
        // Garbage and a missing header.
        assert!(!check(&["{}".to_owned()], &key, vec![]).ok);
        assert!(!check(&good[1..], &key, vec![]).ok);
        assert!(!check(&[], &key, vec![]).ok);
    }

    #[test]
    fn a_range_export_is_anchored_by_a_checkpoint_inside_it() {
        let key = SigningSecretKey::generate().unwrap();
        let records = chain(8);
        let cp = sign_checkpoint(&key, 8, &head(&records, 8), 99);
        // Checkpoints from the server's file: one before the range (not
        // applicable, skipped) and one at its end.
        let before = sign_checkpoint(&key, 2, &head(&records, 2), 10);
        let report = check(&export(&records, 4, 8, &[]), &key, vec![before, cp.clone()]);
        assert!(report.ok, "{:?}", report.problems);
        assert_eq!((report.records, report.checkpoints), (5, 1));
        // The first record's prev_hash is taken on trust only until a
        // checkpoint confirms the head it leads to.
        let mut lines = export(&records, 4, 8, &[cp]);
        lines[2] = lines[2].replace(&records[2].hash, &"00".repeat(32));
        assert!(!check(&lines, &key, vec![]).ok);
    }

    #[test]
    fn a_checkpoint_signed_by_another_key_is_a_problem() {
        let key = SigningSecretKey::generate().unwrap();
        let other = SigningSecretKey::generate().unwrap();
        let records = chain(2);
        let head = decode_hash(&records[1].hash).unwrap();
        let report = verify(&records, vec![sign_checkpoint(&other, 2, &head, 1)], &key);
        assert!(!report.ok);
    }
}
