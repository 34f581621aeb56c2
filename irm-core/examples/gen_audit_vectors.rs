//! Writes the audit test vectors of `irm-core/tests/audit-vectors/`: an
//! intact audit export (docs/PROTOCOL.md §9.1) and one export per kind of
//! tampering, each with the outcome a verifier must reach, written to
//! `EXPECTED`. `irm-core/tests/audit_vectors.rs`, the `irm` CLI's tests
//! (`irm audit verify`) and the key server's (`irm-key-server audit
//! verify`) read them, so every front end judges the same bytes alike.
//!
//! Run once:
//!
//! ```text
//! cargo run -p irm-core --example gen_audit_vectors -- irm-core/tests/audit-vectors
//! ```
//!
//! The keys come from fixed seeds and the records from fixed values, so
//! running it again writes the same bytes; it still refuses to overwrite a
//! file unless given `--force`, because the vectors are frozen.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use irm_core::SigningSecretKey;
use irm_core::audit::{AuditPublicKey, GENESIS_HASH, chain_hash, decode_hash, sign_checkpoint};
use irm_core::protocol::{AuditCheckpoint, AuditExportHeader, AuditExportLine, AuditRecord};

/// The key server's audit-signing key (a fixed seed: these are test vectors).
const AUDIT_SEED: [u8; 32] = [0x41; 32];
/// A forger's key, which signs a rebuilt chain.
const FORGER_SEED: [u8; 32] = [0x66; 32];
/// 2026-01-02T00:00:00Z in milliseconds.
const T0_MS: u64 = 1_767_312_000_000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let force = args.iter().any(|a| a == "--force");
    let Some(dir) = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map(PathBuf::from)
    else {
        eprintln!("usage: gen_audit_vectors DIR [--force]");
        return ExitCode::from(2);
    };
    match write_all(&dir, force) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen_audit_vectors: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One record of the log, as the key server would seal it.
fn record(seq: u64, prev: &[u8; 32], user: &str, action: &str, detail: &str) -> AuditRecord {
    let mut record = AuditRecord {
        seq,
        at_ms: T0_MS + seq * 1000,
        actor_user: Some(user.into()),
        actor_device: Some(format!("{seq:032x}")),
        action: action.into(),
        file_id: Some("5f1e0c3a9b7d4e2f8a6c1b3d5e7f9a0b".into()),
        result: "ok".into(),
        reason: None,
        client_addr: Some("192.0.2.10".into()),
        detail: Some(detail.into()),
        prev_hash: hex::encode(prev),
        hash: String::new(),
    };
    record.hash = hex::encode(chain_hash(prev, &record));
    record
}

/// Recomputes every link after an edit, as a forger with database access would.
fn rechain(records: &mut [AuditRecord]) {
    let mut prev = GENESIS_HASH;
    for record in records {
        record.prev_hash = hex::encode(prev);
        prev = chain_hash(&prev, record);
        record.hash = hex::encode(prev);
    }
}

fn the_log() -> Vec<AuditRecord> {
    let actions = [
        ("admin", "admin.user.create", "user=alice"),
        ("alice", "grant", "rights=view"),
        ("alice", "event.print", "printer=floor-2"),
        ("bob", "grant", "rights=view,copy"),
        ("admin", "admin.file.revoke", "revoked"),
        ("alice", "renew", "rights=view"),
        ("bob", "grant", "rights=view"),
        ("alice", "event.close", "closed"),
    ];
    let mut prev = GENESIS_HASH;
    actions
        .iter()
        .enumerate()
        .map(|(i, (user, action, detail))| {
            let r = record(i as u64 + 1, &prev, user, action, detail);
            prev = decode_hash(&r.hash).expect("a hash we wrote");
            r
        })
        .collect()
}

fn checkpoint(key: &SigningSecretKey, records: &[AuditRecord], count: u64) -> AuditCheckpoint {
    let head = decode_hash(&records[count as usize - 1].hash).expect("a hash we wrote");
    sign_checkpoint(key, count, &head, T0_MS + 60_000 + count)
}

/// The lines of an export of `first..=last` holding `checkpoints`.
fn export(
    records: &[AuditRecord],
    first: u64,
    last: u64,
    checkpoints: &[AuditCheckpoint],
) -> Vec<String> {
    let header = AuditExportHeader {
        version: 1,
        server: "https://kas.example.jp:8443".into(),
        first_seq: first,
        last_seq: last,
        exported_at_ms: T0_MS + 120_000,
    };
    let line = |l: AuditExportLine| serde_json::to_string(&l).expect("serialisable");
    let mut lines = vec![line(AuditExportLine::Export(header))];
    lines.extend(
        checkpoints
            .iter()
            .map(|cp| line(AuditExportLine::Checkpoint(cp.clone()))),
    );
    lines.extend(
        records
            .iter()
            .filter(|r| (first..=last).contains(&r.seq))
            .map(|r| line(AuditExportLine::Record(r.clone()))),
    );
    lines
}

struct Case {
    name: &'static str,
    lines: Vec<String>,
    /// Checkpoints kept apart from the export (`--checkpoints`).
    apart: Vec<AuditCheckpoint>,
    /// `ok`, or a phrase the report's problems must contain.
    expected: &'static str,
}

fn cases() -> Vec<Case> {
    let key = SigningSecretKey::from_bytes(&AUDIT_SEED);
    let forger = SigningSecretKey::from_bytes(&FORGER_SEED);
    let log = the_log();
    let full = checkpoint(&key, &log, 8);
    let intact = export(&log, 1, 8, std::slice::from_ref(&full));
    let record_line = |seq: usize| 1 + seq; // header, one checkpoint, records from 1

    let mut edited = intact.clone();
    edited[record_line(5)] = edited[record_line(5)].replace("\"revoked\"", "\"restored\"");

    let mut deleted = intact.clone();
    deleted.remove(record_line(5));

    let mut swapped = intact.clone();
    swapped.swap(record_line(4), record_line(5));

    // The last two records cut off, and the header edited to say so.
    let tail_cut = export(&log, 1, 6, std::slice::from_ref(&full));

    // Record 5 (the revocation) edited and every link after it recomputed,
    // signed with a key of the forger's own.
    let mut rebuilt = log.clone();
    rebuilt[4].detail = Some("restored".into());
    rechain(&mut rebuilt);
    let forged = export(&rebuilt, 1, 8, &[checkpoint(&forger, &rebuilt, 8)]);
    // The same rebuilt chain with no checkpoint of its own, against the
    // real checkpoint kept apart from the server.
    let rewritten = export(&rebuilt, 1, 8, &[]);

    let early = checkpoint(&key, &log, 6);
    let unconfirmed = export(&log, 1, 8, std::slice::from_ref(&early));

    let range = export(&log, 4, 8, std::slice::from_ref(&full));

    vec![
        Case {
            name: "intact",
            lines: intact,
            apart: vec![],
            expected: "ok",
        },
        Case {
            name: "range_after_3",
            lines: range,
            apart: vec![checkpoint(&key, &log, 2)],
            expected: "ok",
        },
        Case {
            name: "record_edited",
            lines: edited,
            apart: vec![],
            expected: "record seq 5: its hash does not match its content",
        },
        Case {
            name: "record_deleted",
            lines: deleted,
            apart: vec![],
            expected: "a record was deleted, inserted or reordered",
        },
        Case {
            name: "records_swapped",
            lines: swapped,
            apart: vec![],
            expected: "a record was deleted, inserted or reordered",
        },
        Case {
            name: "tail_cut",
            lines: tail_cut,
            apart: vec![],
            expected: "covers 8 records but only 6 remain: the log was truncated",
        },
        Case {
            name: "checkpoint_forged",
            lines: forged,
            apart: vec![],
            expected: "the signature does not verify with the server's audit key",
        },
        Case {
            name: "chain_rewritten",
            lines: rewritten,
            apart: vec![full],
            expected: "the chain was rewritten",
        },
        Case {
            name: "tail_unconfirmed",
            lines: unconfirmed,
            apart: vec![],
            expected: "records 7..8 are not confirmed by a signed checkpoint",
        },
    ]
}

fn write_all(dir: &Path, force: bool) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let key = SigningSecretKey::from_bytes(&AUDIT_SEED);
    let write = |name: &str, text: String| -> std::io::Result<()> {
        let path = dir.join(name);
        if path.exists() && !force {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists; the vectors are frozen (--force to overwrite)",
                    path.display()
                ),
            ));
        }
        std::fs::write(&path, text)
    };
    write(
        "audit-signing.pub",
        format!("{}\n", AuditPublicKey(key.public_key()).to_text()),
    )?;
    let mut expected = String::new();
    for case in cases() {
        write(
            &format!("{}.jsonl", case.name),
            case.lines.join("\n") + "\n",
        )?;
        if !case.apart.is_empty() {
            let lines: Vec<String> = case
                .apart
                .iter()
                .map(|cp| serde_json::to_string(cp).expect("serialisable"))
                .collect();
            write(
                &format!("{}.checkpoints.jsonl", case.name),
                lines.join("\n") + "\n",
            )?;
        }
        expected.push_str(&format!("{}: {}\n", case.name, case.expected));
    }
    write("EXPECTED", expected)
}
