//! The audit log against tampering (PROTOCOL.md §9): a server runs, grants
//! and refuses, and stops (writing its final signed checkpoint); then copies
//! of its data directory are altered directly in SQLite, and the offline
//! `irm-key-server audit verify` must catch each alteration: an edited,
//! deleted, inserted or reordered record, a truncated tail, and a chain
//! recomputed from scratch after an edit.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{TestServer, eventually, policy, seal};
use irm_core::Rights;
use irm_core::protocol::{AuditCheckpoint, AuditRecord, Role};
use irm_key_server::audit::{AuditDraft, Outcome, chain_hash};
use rusqlite::Connection;

/// One tampering: a name, what it does to the database, what the report must say.
type Tampering = (&'static str, Box<dyn FnOnce(&Connection)>, &'static str);

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Runs `irm-key-server audit verify`; returns (exit code, stdout).
fn verify(dir: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_irm-key-server"))
        .args(["audit", "verify", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn records(conn: &Connection) -> Vec<AuditRecord> {
    let mut stmt = conn
        .prepare("SELECT seq, at_ms, actor_user, actor_device, action, file_id, result, reason, client_addr, detail, prev_hash, hash FROM audit ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| {
        Ok(AuditRecord {
            seq: r.get(0)?,
            at_ms: r.get(1)?,
            actor_user: r.get(2)?,
            actor_device: r.get(3)?,
            action: r.get(4)?,
            file_id: r.get(5)?,
            result: r.get(6)?,
            reason: r.get(7)?,
            client_addr: r.get(8)?,
            detail: r.get(9)?,
            prev_hash: r.get(10)?,
            hash: r.get(11)?,
        })
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn hash_bytes(hex_text: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut out).unwrap();
    out
}

/// Copies the data directory and applies `tamper` to the copy's database
/// (with the append-only triggers dropped first, as an intruder would).
fn tampered(original: &Path, work: &Path, name: &str, tamper: impl FnOnce(&Connection)) -> PathBuf {
    let dir = work.join(name);
    copy_dir(original, &dir);
    let conn = Connection::open(dir.join("irm-key-server.db")).unwrap();
    conn.execute_batch("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;")
        .unwrap();
    tamper(&conn);
    drop(conn); // the last connection folds the WAL into the file
    dir
}

#[tokio::test]
async fn offline_verification_catches_every_kind_of_tampering() {
    let mut server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user(&admin, "alice", &[Role::User], &[]).await;
    let bob = server.user(&admin, "bob", &[Role::User], &[]).await;
    let file = seal(
        &alice.server_key.public_key,
        policy(&["alice"], Rights::VIEW, None, None),
    );
    alice.grant_ok(&file, false).await;
    alice.grant_ok(&file, true).await;
    bob.grant_denied(&file, false).await;
    server.stop().await;

    let original = server.dir.path().to_owned();
    let checkpoints = std::fs::read_to_string(original.join("audit-checkpoints.jsonl")).unwrap();
    let last: AuditCheckpoint = serde_json::from_str(checkpoints.lines().last().unwrap()).unwrap();
    let work = tempfile::tempdir().unwrap();

    let clean = tampered(&original, work.path(), "clean", |_| {});
    let (code, out) = verify(&clean);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("OK"), "{out}");
    let total = records(&Connection::open(clean.join("irm-key-server.db")).unwrap()).len() as u64;
    assert!(total >= 10, "{total} records");
    assert_eq!(
        last.count, total,
        "the shutdown checkpoint covers the whole chain"
    );

    let cases: Vec<Tampering> = vec![
        (
            "edit",
            Box::new(|c: &Connection| {
                c.execute("UPDATE audit SET actor_user = 'mallory' WHERE seq = 5", [])
                    .unwrap();
            }),
            "was edited",
        ),
        (
            "delete",
            Box::new(|c: &Connection| {
                c.execute("DELETE FROM audit WHERE seq = 4", []).unwrap();
            }),
            "deleted, inserted or reordered",
        ),
        (
            "insert",
            Box::new(|c: &Connection| {
                // Make room after record 3 and insert a record correctly
                // linked to it: the break shows at the record after.
                c.execute_batch(
                    "UPDATE audit SET seq = seq + 1000000 WHERE seq >= 4;
                     UPDATE audit SET seq = seq - 999999 WHERE seq >= 1000000;",
                )
                .unwrap();
                let prev = records(c).into_iter().find(|r| r.seq == 3).unwrap();
                let forged = AuditDraft::new(prev.at_ms, "admin.user.restore", Outcome::Ok)
                    .detail("user=mallory")
                    .into_record(4, &hash_bytes(&prev.hash));
                c.execute(
                    "INSERT INTO audit (seq, at_ms, action, result, detail, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    rusqlite::params![forged.seq, forged.at_ms, forged.action, forged.result, forged.detail, forged.prev_hash, forged.hash],
                )
                .unwrap();
            }),
            "prev_hash does not match",
        ),
        (
            "reorder",
            Box::new(|c: &Connection| {
                c.execute_batch(
                    "UPDATE audit SET seq = -1 WHERE seq = 6;
                     UPDATE audit SET seq = 6 WHERE seq = 7;
                     UPDATE audit SET seq = 7 WHERE seq = -1;",
                )
                .unwrap();
            }),
            "record seq",
        ),
        (
            "truncate-tail",
            Box::new(move |c: &Connection| {
                c.execute("DELETE FROM audit WHERE seq > ?1", [total - 2])
                    .unwrap();
            }),
            "truncated",
        ),
        (
            "recomputed-chain",
            Box::new(|c: &Connection| {
                // Edit a record, then recompute every hash from there on so
                // the chain is consistent again: only the signed checkpoints
                // can tell.
                c.execute(
                    "UPDATE audit SET result = 'ok', reason = NULL WHERE reason = 'not_recipient'",
                    [],
                )
                .unwrap();
                let mut prev = [0u8; 32];
                for mut record in records(c) {
                    record.prev_hash = hex::encode(prev);
                    let hash = chain_hash(&prev, &record);
                    record.hash = hex::encode(hash);
                    c.execute(
                        "UPDATE audit SET prev_hash = ?2, hash = ?3 WHERE seq = ?1",
                        rusqlite::params![record.seq, record.prev_hash, record.hash],
                    )
                    .unwrap();
                    prev = hash;
                }
            }),
            "the chain was rewritten",
        ),
    ];
    for (name, tamper, expected) in cases {
        let dir = tampered(&original, work.path(), name, tamper);
        let (code, out) = verify(&dir);
        assert_eq!(code, 1, "{name} was not caught:\n{out}");
        assert!(
            out.contains(expected),
            "{name}: expected {expected:?} in\n{out}"
        );
        if name == "recomputed-chain" {
            assert!(
                !out.contains("was edited") && !out.contains("prev_hash"),
                "the chain itself is consistent:\n{out}"
            );
        }
    }

    // A checkpoint file with a forged line (signed by another key) is a problem too.
    let forged_dir = tampered(&original, work.path(), "forged-checkpoint", |_| {});
    let other = irm_core::SigningSecretKey::generate().unwrap();
    let forged =
        irm_key_server::audit::sign_checkpoint(&other, last.count, &hash_bytes(&last.head_hash), 1);
    irm_key_server::audit::append_checkpoint(&forged_dir.join("audit-checkpoints.jsonl"), &forged)
        .unwrap();
    let (code, out) = verify(&forged_dir);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("signature does not verify"), "{out}");
}

#[tokio::test]
async fn checkpoints_are_written_while_the_chain_grows_and_the_server_verifies_itself() {
    let mut server =
        TestServer::start_with(|s| s.checkpoint_interval = Duration::from_millis(50)).await;
    let admin = server.admin().await;
    let path = server.dir.path().join("audit-checkpoints.jsonl");
    let lines = |p: &Path| {
        std::fs::read_to_string(p)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    assert!(
        eventually(Duration::from_secs(10), || lines(&path) >= 1).await,
        "no periodic checkpoint"
    );
    let report: serde_json::Value = admin
        .expect(
            reqwest::Method::GET,
            "/v1/audit/verify",
            None,
            reqwest::StatusCode::OK,
        )
        .await;
    assert_eq!(report["ok"], true, "{report}");
    server.stop().await;
    let (code, out) = verify(server.dir.path());
    assert_eq!(code, 0, "{out}");
}
