//! The audit log against tampering (PROTOCOL.md §9): a server runs, grants
//! and refuses, and stops (writing its final signed checkpoint); then copies
//! of its stored state are altered directly in the database, and the offline
//! `irm-key-server audit verify` must catch each alteration: an edited,
//! deleted, inserted or reordered record, a truncated tail, and a chain
//! recomputed from scratch after an edit. Before the intruder drops them,
//! the database's own triggers refuse changes to the audit table.
//!
//! Each test runs on SQLite (a copy of the data directory, edited through
//! rusqlite) and on PostgreSQL (a copy of
//! the test's database, edited with its own SQL).

#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Backend, TestServer, eventually, policy, seal};
use irm_core::Rights;
use irm_core::protocol::{AuditCheckpoint, AuditRecord, Role};
use irm_key_server::audit::{AuditDraft, Outcome, chain_hash};
use irm_key_server::checkpoints::{SINK_FILE, SinkSettings};
use irm_key_server::store::DatabaseUrl;
use rusqlite::Connection;

/// An audit table as someone with write access to the database sees it.
trait AuditTable {
    /// Runs statements without parameters; returns the database's error.
    fn try_batch(&mut self, sql: &str) -> Result<(), String>;
    /// Every record in seq order.
    fn records(&mut self) -> Vec<AuditRecord>;
    /// Inserts a forged record (seq, time, action, result, detail, links).
    fn insert(&mut self, record: &AuditRecord);
    /// Rewrites a record's links.
    fn relink(&mut self, seq: u64, prev_hash: &str, hash: &str);
    /// Drops the append-only triggers, as an intruder would.
    fn drop_guards(&mut self);
    /// The statements the triggers must refuse.
    fn guarded(&self) -> &'static [&'static str];

    fn batch(&mut self, sql: &str) {
        self.try_batch(sql).unwrap();
    }
}

const AUDIT_COLUMNS: &str = "seq, at_ms, actor_user, actor_device, action, file_id, result, reason, client_addr, detail, prev_hash, hash";

impl AuditTable for Connection {
    fn try_batch(&mut self, sql: &str) -> Result<(), String> {
        self.execute_batch(sql).map_err(|e| e.to_string())
    }

    fn records(&mut self) -> Vec<AuditRecord> {
        let mut stmt = self
            .prepare(&format!("SELECT {AUDIT_COLUMNS} FROM audit ORDER BY seq"))
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

    fn insert(&mut self, r: &AuditRecord) {
        self.execute(
            "INSERT INTO audit (seq, at_ms, action, result, detail, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            rusqlite::params![r.seq, r.at_ms, r.action, r.result, r.detail, r.prev_hash, r.hash],
        )
        .unwrap();
    }

    fn relink(&mut self, seq: u64, prev_hash: &str, hash: &str) {
        self.execute(
            "UPDATE audit SET prev_hash = ?2, hash = ?3 WHERE seq = ?1",
            rusqlite::params![seq, prev_hash, hash],
        )
        .unwrap();
    }

    fn drop_guards(&mut self) {
        self.batch("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;");
    }

    fn guarded(&self) -> &'static [&'static str] {
        &[
            "UPDATE audit SET actor_user = 'mallory' WHERE seq = 1",
            "DELETE FROM audit WHERE seq = 1",
        ]
    }
}

impl AuditTable for postgres::Client {
    fn try_batch(&mut self, sql: &str) -> Result<(), String> {
        self.batch_execute(sql).map_err(|e| match e.as_db_error() {
            Some(db) => db.message().to_owned(),
            None => e.to_string(),
        })
    }

    fn records(&mut self) -> Vec<AuditRecord> {
        self.query(
            &format!("SELECT {AUDIT_COLUMNS} FROM audit ORDER BY seq"),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| AuditRecord {
            seq: r.get::<_, i64>(0) as u64,
            at_ms: r.get::<_, i64>(1) as u64,
            actor_user: r.get(2),
            actor_device: r.get(3),
            action: r.get(4),
            file_id: r.get(5),
            result: r.get(6),
            reason: r.get(7),
            client_addr: r.get(8),
            detail: r.get(9),
            prev_hash: r.get(10),
            hash: r.get(11),
        })
        .collect()
    }

    fn insert(&mut self, r: &AuditRecord) {
        self.execute(
            "INSERT INTO audit (seq, at_ms, action, result, detail, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[&(r.seq as i64), &(r.at_ms as i64), &r.action, &r.result, &r.detail, &r.prev_hash, &r.hash],
        )
        .unwrap();
    }

    fn relink(&mut self, seq: u64, prev_hash: &str, hash: &str) {
        self.execute(
            "UPDATE audit SET prev_hash = $2, hash = $3 WHERE seq = $1",
            &[&(seq as i64), &prev_hash, &hash],
        )
        .unwrap();
    }

    fn drop_guards(&mut self) {
        self.batch("DROP TRIGGER audit_no_update ON audit; DROP TRIGGER audit_no_delete ON audit;");
    }

    fn guarded(&self) -> &'static [&'static str] {
        &[
            "UPDATE audit SET actor_user = 'mallory' WHERE seq = 1",
            "DELETE FROM audit WHERE seq = 1",
            "TRUNCATE audit",
        ]
    }
}

/// A copy of a stopped server's stored state: its data directory (keys,
/// checkpoints and, for SQLite, the database), and its PostgreSQL database
/// if it has one.
struct Copy {
    dir: PathBuf,
    database_url: Option<DatabaseUrl>,
    _database: Option<common::pg::TestDatabase>,
}

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

fn copy(server: &TestServer, work: &Path, name: &str) -> Copy {
    let dir = work.join(name);
    copy_dir(server.dir.path(), &dir);
    let database = server.database.as_ref().map(|db| db.copy(name));
    Copy {
        dir,
        database_url: database.as_ref().map(|db| db.url.clone()),
        _database: database,
    }
}

impl Copy {
    /// Runs `work` on the copy's audit table (blocking).
    fn table<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut dyn AuditTable) -> T + Send + 'static,
    ) -> T {
        match &self.database_url {
            None => {
                let mut conn = Connection::open(self.dir.join("irm-key-server.db")).unwrap();
                let out = work(&mut conn);
                drop(conn); // the last connection folds the WAL into the file
                out
            }
            Some(url) => common::pg::with_client(url, move |client| work(client)),
        }
    }

    /// Runs `irm-key-server audit verify`; returns (exit code, stdout).
    fn verify(&self) -> (i32, String) {
        verify(&self.dir, self.database_url.as_ref())
    }
}

/// Runs `irm-key-server audit verify` on `dir` (and the database at `url`);
/// returns (exit code, stdout).
fn verify(dir: &Path, url: Option<&DatabaseUrl>) -> (i32, String) {
    verify_with(dir, url, &[])
}

/// [`verify`] with checkpoints kept elsewhere (`--witness FILE` each).
fn verify_with(dir: &Path, url: Option<&DatabaseUrl>, witnesses: &[&Path]) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_irm-key-server"));
    command.args(["audit", "verify", "--data-dir"]).arg(dir);
    for witness in witnesses {
        command.arg("--witness").arg(witness);
    }
    // Through the environment, as an operator should pass a password.
    command.env_remove("IRM_KS_DATABASE_URL");
    if let Some(url) = url {
        command.env("IRM_KS_DATABASE_URL", url.expose());
    }
    let out = command.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn hash_bytes(hex_text: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut out).unwrap();
    out
}

/// One tampering: a name, what it does to the audit table, what the report must say.
type Tampering = (
    &'static str,
    Box<dyn FnOnce(&mut dyn AuditTable) + Send>,
    &'static str,
);

/// Every tampering, on a chain of `total` records. The same SQL runs on both
/// backends.
fn tamperings(total: u64) -> Vec<Tampering> {
    vec![
        (
            "edit",
            Box::new(|t: &mut dyn AuditTable| {
                t.batch("UPDATE audit SET actor_user = 'mallory' WHERE seq = 5");
            }),
            "was edited",
        ),
        (
            "delete",
            Box::new(|t: &mut dyn AuditTable| t.batch("DELETE FROM audit WHERE seq = 4")),
            "deleted, inserted or reordered",
        ),
        (
            "insert",
            Box::new(|t: &mut dyn AuditTable| {
                // Make room after record 3 and insert a record correctly
                // linked to it: the break shows at the record after.
                t.batch(
                    "UPDATE audit SET seq = seq + 1000000 WHERE seq >= 4;
                     UPDATE audit SET seq = seq - 999999 WHERE seq >= 1000000;",
                );
                let prev = t.records().into_iter().find(|r| r.seq == 3).unwrap();
                let forged = AuditDraft::new(prev.at_ms, "admin.user.restore", Outcome::Ok)
                    .detail("user=mallory")
                    .into_record(4, &hash_bytes(&prev.hash));
                t.insert(&forged);
            }),
            "prev_hash does not match",
        ),
        (
            "reorder",
            Box::new(|t: &mut dyn AuditTable| {
                t.batch(
                    "UPDATE audit SET seq = -1 WHERE seq = 6;
                     UPDATE audit SET seq = 6 WHERE seq = 7;
                     UPDATE audit SET seq = 7 WHERE seq = -1;",
                );
            }),
            "record seq",
        ),
        (
            "truncate-tail",
            Box::new(move |t: &mut dyn AuditTable| {
                t.batch(&format!("DELETE FROM audit WHERE seq > {}", total - 2));
            }),
            "truncated",
        ),
        (
            "recomputed-chain",
            Box::new(|t: &mut dyn AuditTable| {
                // Edit a record, then recompute every hash from there on so
                // the chain is consistent again: only the signed checkpoints
                // can tell.
                t.batch(
                    "UPDATE audit SET result = 'ok', reason = NULL WHERE reason = 'not_recipient'",
                );
                let mut prev = [0u8; 32];
                for mut record in t.records() {
                    record.prev_hash = hex::encode(prev);
                    let hash = chain_hash(&prev, &record);
                    t.relink(record.seq, &record.prev_hash, &hex::encode(hash));
                    prev = hash;
                }
            }),
            "the chain was rewritten",
        ),
    ]
}

on_each_backend!(offline_verification_catches_every_kind_of_tampering);
async fn offline_verification_catches_every_kind_of_tampering(backend: Backend) {
    let mut server = TestServer::start_on(backend).await;
    let admin = server.admin().await;
    let alice = server.user(&admin, "alice", &[Role::User], &[]).await;
    let bob = server.user(&admin, "bob", &[Role::User], &[]).await;
    let file = seal(
        &alice.server_key.public_key,
        policy(&["alice"], Rights::VIEW, None, None),
    );
    alice.grant_ok(&file, false).await;
    // Ten minutes on, so that a tail without checkpoints is older than the
    // verifier's grace (two minutes by default).
    server.clock.advance_secs(600);
    alice.grant_ok(&file, true).await;
    bob.grant_denied(&file, false).await;
    server.stop().await;

    // What follows blocks (processes, database clients): off the runtime.
    tokio::task::spawn_blocking(move || check_tampering(&server))
        .await
        .unwrap();
}

fn check_tampering(server: &TestServer) {
    let checkpoints =
        std::fs::read_to_string(server.dir.path().join("audit-checkpoints.jsonl")).unwrap();
    let last: AuditCheckpoint = serde_json::from_str(checkpoints.lines().last().unwrap()).unwrap();
    let work = tempfile::tempdir().unwrap();

    let clean = copy(server, work.path(), "clean");
    let (code, out) = clean.verify();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("OK"), "{out}");
    let total = clean.table(|t| t.records().len()) as u64;
    assert!(total >= 10, "{total} records");
    assert_eq!(
        last.count, total,
        "the shutdown checkpoint covers the whole chain"
    );
    // The database itself refuses to change or remove a record; the
    // intruder has to drop its triggers first.
    let refusals = clean.table(|t| {
        let guarded = t.guarded();
        guarded
            .iter()
            .map(|sql| (*sql, t.try_batch(sql)))
            .collect::<Vec<_>>()
    });
    for (sql, result) in refusals {
        let error = result.expect_err(sql);
        assert!(error.contains("append-only"), "{sql}: {error}");
    }
    let (code, out) = clean.verify();
    assert_eq!(code, 0, "the refused statements changed nothing: {out}");

    for (name, tamper, expected) in tamperings(total) {
        let tampered = copy(server, work.path(), name);
        tampered.table(move |t| {
            t.drop_guards();
            tamper(t);
        });
        let (code, out) = tampered.verify();
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

    // The checkpoint file deleted or emptied, and the chain recomputed after
    // an edit: a consistent chain that nothing vouches for.
    for (name, emptied) in [
        ("deleted-checkpoints", false),
        ("emptied-checkpoints", true),
    ] {
        let tampered = copy(server, work.path(), name);
        let recompute = tamperings(total)
            .into_iter()
            .find(|(name, ..)| *name == "recomputed-chain")
            .unwrap()
            .1;
        tampered.table(move |t| {
            t.drop_guards();
            recompute(t);
        });
        let path = tampered.dir.join("audit-checkpoints.jsonl");
        if emptied {
            std::fs::write(&path, "").unwrap();
        } else {
            std::fs::remove_file(&path).unwrap();
        }
        let (code, out) = tampered.verify();
        assert_eq!(code, 1, "{name} was not caught:\n{out}");
        assert!(out.contains("there is no checkpoint"), "{name}: {out}");
    }

    // Cut to its first line (init's checkpoint): the records since are
    // confirmed by no checkpoint, the first of them ten minutes older than
    // the newest.
    let cut = copy(server, work.path(), "cut-checkpoints");
    let path = cut.dir.join("audit-checkpoints.jsonl");
    let first = checkpoints.lines().next().unwrap();
    std::fs::write(&path, format!("{first}\n")).unwrap();
    let (code, out) = cut.verify();
    assert_eq!(code, 1, "a cut checkpoint file was not caught:\n{out}");
    assert!(out.contains("are confirmed by no checkpoint"), "{out}");

    // A checkpoint file with a forged line (signed by another key) is a problem too.
    let forged_copy = copy(server, work.path(), "forged_checkpoint");
    let other = irm_core::SigningSecretKey::generate().unwrap();
    let forged =
        irm_key_server::audit::sign_checkpoint(&other, last.count, &hash_bytes(&last.head_hash), 1);
    irm_key_server::audit::append_checkpoint(
        &forged_copy.dir.join("audit-checkpoints.jsonl"),
        &forged,
    )
    .unwrap();
    let (code, out) = forged_copy.verify();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("signature does not verify"), "{out}");
}

on_each_backend!(checkpoints_are_written_while_the_chain_grows_and_the_server_verifies_itself);
async fn checkpoints_are_written_while_the_chain_grows_and_the_server_verifies_itself(
    backend: Backend,
) {
    let mut server = TestServer::start_on_with(backend, |s| {
        s.checkpoint_interval = Duration::from_millis(50)
    })
    .await;
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
    let (code, out) = verify(server.dir.path(), server.database_url.as_ref());
    assert_eq!(code, 0, "{out}");
}

/// THREAT-MODEL.md: the schema is created by `init` under the owner's role,
/// and the server can then run as a role that owns nothing and may only
/// read and append audit records: it serves every operation, and cannot
/// change, remove, or unprotect a record even with the triggers in mind.
#[tokio::test]
async fn on_postgres_a_server_role_that_owns_nothing_serves_and_cannot_rewrite_the_audit_log() {
    let role = common::pg::TestRole::create();
    let role_name = role.name.clone();
    let mut server = TestServer::start_on_with(Backend::Postgres, move |settings| {
        // `init` ran as the owner; the server runs as the role from here on.
        let owner = settings.database_url.clone().expect("a database");
        let grants = format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON meta, users, groups, group_members, devices, kas_keys, files, grants, requests, approvals, approval_rules, notices, take_outs, break_glass, holds, alert_acks, detection_rules, first_access, canary_exports, canaries TO {role_name}; \
             GRANT SELECT, INSERT ON audit TO {role_name};"
        );
        common::pg::with_client(&owner, move |client| client.batch_execute(&grants))
            .expect("granting");
        settings.database_url = Some(common::pg::url_as(&owner, &role_name));
    })
    .await;
    let admin = server.admin().await;
    let alice = server.user(&admin, "alice", &[Role::User], &[]).await;
    admin.create_group("support").await;
    server
        .approved(
            &admin,
            reqwest::Method::POST,
            "/v1/admin/groups/support/members",
            Some(serde_json::json!({"user": "alice"})),
        )
        .await;
    admin
        .expect(
            reqwest::Method::DELETE,
            "/v1/admin/groups/support/members/alice",
            None,
            reqwest::StatusCode::NO_CONTENT,
        )
        .await;
    let file = seal(
        &alice.server_key.public_key,
        policy(&["alice"], Rights::VIEW, None, None),
    );
    alice.grant_ok(&file, false).await;
    admin
        .expect(
            reqwest::Method::POST,
            &format!("/v1/admin/files/{}/revoke", file.id()),
            None,
            reqwest::StatusCode::OK,
        )
        .await;
    assert_eq!(alice.grant_denied(&file, true).await, "file_revoked");
    server.stop().await;

    let url = server.database_url.clone().expect("the role's URL");
    let refusals = common::pg::with_client(&url, |client| {
        [
            "UPDATE audit SET actor_user = 'mallory' WHERE seq = 1",
            "DELETE FROM audit WHERE seq = 1",
            "TRUNCATE audit",
            "DROP TRIGGER audit_no_update ON audit",
            "ALTER TABLE audit DISABLE TRIGGER USER",
        ]
        .iter()
        .map(|sql| (*sql, client.try_batch(sql)))
        .collect::<Vec<_>>()
    });
    for (sql, result) in refusals {
        let error = result.expect_err(sql);
        assert!(
            error.contains("permission denied") || error.contains("must be owner"),
            "{sql}: {error}"
        );
    }
    let dir = server.dir.path().to_owned();
    let (code, out) = tokio::task::spawn_blocking(move || verify(&dir, Some(&url)))
        .await
        .unwrap();
    assert_eq!(code, 0, "{out}");
}

// PROTOCOL.md §9.2. Whoever holds the server's host cuts the chain back and
// trims the local checkpoint file to match: the result verifies on its own.
// The off-host sink kept every checkpoint, and a device kept the one its
// last grant carried; either, given as a witness, shows the cut.
on_each_backend!(a_log_cut_back_with_its_checkpoints_is_caught_by_the_sink_and_by_a_device);
async fn a_log_cut_back_with_its_checkpoints_is_caught_by_the_sink_and_by_a_device(
    backend: Backend,
) {
    let sink = tempfile::tempdir().unwrap();
    let sink_dir = sink.path().to_owned();
    let mut server = TestServer::start_on_with(backend, move |s| {
        s.checkpoint_sink = Some(SinkSettings {
            dir: sink_dir,
            alert_after: Duration::from_secs(600),
        });
    })
    .await;
    let admin = server.admin().await;
    let alice = server.user(&admin, "alice", &[Role::User], &[]).await;
    let file = seal(
        &alice.server_key.public_key,
        policy(&["alice"], Rights::VIEW, None, None),
    );
    // A checkpoint at this point of the chain, carried by alice's next grant.
    admin
        .expect(
            reqwest::Method::POST,
            "/v1/audit/checkpoint",
            None,
            reqwest::StatusCode::OK,
        )
        .await;
    let carried = alice
        .grant_ok(&file, false)
        .await
        .checkpoint
        .expect("every grant carries the newest checkpoint");
    let audit_key = server.state().audit_public;
    assert!(irm_core::audit::checkpoint_signature_holds(
        &carried, &audit_key
    ));
    let records_then = admin.audit().await.len() as u64;
    assert!(
        carried.count >= 5 && carried.count < records_then,
        "{} of {records_then}",
        carried.count
    );
    // The device's witness file: the checkpoint as one JSON line.
    let device = tempfile::tempdir().unwrap();
    let witness = device.path().join("audit-witness.jsonl");
    std::fs::write(
        &witness,
        format!("{}\n", serde_json::to_string(&carried).unwrap()),
    )
    .unwrap();
    alice.grant_ok(&file, true).await;
    server.stop().await;

    tokio::task::spawn_blocking(move || {
        let local =
            std::fs::read_to_string(server.dir.path().join("audit-checkpoints.jsonl")).unwrap();
        let shipped = std::fs::read_to_string(sink.path().join(SINK_FILE)).unwrap();
        // init's checkpoint predates the server; every one it wrote went out.
        assert_eq!(
            local.lines().skip(1).collect::<Vec<_>>(),
            shipped.lines().collect::<Vec<_>>()
        );
        let first: AuditCheckpoint = serde_json::from_str(local.lines().next().unwrap()).unwrap();

        let work = tempfile::tempdir().unwrap();
        let cut = copy(&server, work.path(), "cut-back");
        // Back to init's chain, with init's checkpoint alone.
        cut.table(move |t| {
            t.drop_guards();
            t.batch(&format!("DELETE FROM audit WHERE seq > {}", first.count));
        });
        std::fs::write(
            cut.dir.join("audit-checkpoints.jsonl"),
            format!("{}\n", local.lines().next().unwrap()),
        )
        .unwrap();
        let (code, out) = cut.verify();
        assert_eq!(code, 0, "alone, the cut copy is consistent: {out}");

        for (name, witness) in [
            ("the sink", sink.path().join(SINK_FILE)),
            ("alice's device", witness),
        ] {
            let (code, out) = verify_with(&cut.dir, cut.database_url.as_ref(), &[&witness]);
            assert_eq!(code, 1, "{name} did not show the cut:\n{out}");
            assert!(out.contains("the log was truncated"), "{name}: {out}");
        }

        // The untouched server meets both witnesses.
        let whole = copy(&server, work.path(), "whole");
        let (code, out) = verify_with(
            &whole.dir,
            whole.database_url.as_ref(),
            &[
                &sink.path().join(SINK_FILE),
                &device.path().join("audit-witness.jsonl"),
            ],
        );
        assert_eq!(code, 0, "{out}");

        // The local file deleted, the sink given: still a problem.
        std::fs::remove_file(whole.dir.join("audit-checkpoints.jsonl")).unwrap();
        let (code, out) = verify_with(
            &whole.dir,
            whole.database_url.as_ref(),
            &[&sink.path().join(SINK_FILE)],
        );
        assert_eq!(code, 1, "{out}");
        assert!(
            out.contains("holds no checkpoint (only witnesses do)"),
            "{out}"
        );
    })
    .await
    .unwrap();
}

/// A sink that stops confirming (its share unmounted) is waited for, then
/// reported in `/healthz` and the metrics past the alert time; once back,
/// the next checkpoint catches it up and the warning goes.
#[tokio::test]
async fn a_silent_checkpoint_sink_is_reported_until_it_confirms_again() {
    let sink = tempfile::tempdir().unwrap();
    let sink_dir = sink.path().join("share");
    std::fs::create_dir(&sink_dir).unwrap();
    let dir = sink_dir.clone();
    let mut server = TestServer::start_with(move |s| {
        s.checkpoint_sink = Some(SinkSettings {
            dir,
            alert_after: Duration::from_secs(300),
        });
    })
    .await;
    let admin = server.admin().await;
    let health = |server: &TestServer| {
        let url = server.url("/healthz");
        let http = server.http.clone();
        async move {
            let text = http.get(url).send().await.unwrap().text().await.unwrap();
            // Every test server warns of its bootstrap mode; the sink's
            // lines are the ones under test.
            text.lines()
                .filter(|l| !l.starts_with("warning: bootstrap mode"))
                .collect::<Vec<_>>()
                .join("\n")
        }
    };
    let checkpoint = || {
        admin.expect(
            reqwest::Method::POST,
            "/v1/audit/checkpoint",
            None,
            reqwest::StatusCode::OK,
        )
    };
    assert_eq!(health(&server).await, "ok");

    std::fs::rename(&sink_dir, sink.path().join("unmounted")).unwrap();
    checkpoint().await;
    server.clock.advance_secs(200);
    assert_eq!(health(&server).await, "ok", "within the alert time");
    server.clock.advance_secs(200);
    let warned = health(&server).await;
    assert!(
        warned.starts_with("ok\nwarning: the off-host checkpoint sink")
            && warned.contains("for 400 s")
            && warned.contains("last error"),
        "{warned}"
    );

    std::fs::rename(sink.path().join("unmounted"), &sink_dir).unwrap();
    let latest: AuditCheckpoint = serde_json::from_value(checkpoint().await).unwrap();
    assert_eq!(health(&server).await, "ok");
    let shipped = std::fs::read_to_string(sink_dir.join(SINK_FILE)).unwrap();
    let last: AuditCheckpoint = serde_json::from_str(shipped.lines().last().unwrap()).unwrap();
    assert_eq!(last, latest);
    server.stop().await;
}

#[tokio::test]
async fn a_server_refuses_to_start_with_a_sink_that_is_not_there() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = Command::new(env!("CARGO_BIN_EXE_irm-key-server"))
        .args(["init", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = Command::new(env!("CARGO_BIN_EXE_irm-key-server"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .arg("--checkpoint-sink")
        .arg(tmp.path().join("not-mounted"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not a directory") && err.contains("mount the share"),
        "{err}"
    );
}
