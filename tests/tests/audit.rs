//! The audit log through the real `irm` binary against the real key server:
//! `irm admin audit verify` (online) reports tampering made directly in the
//! server's SQLite database.
//!
//! The tampering plays a maintenance engineer with write access to the
//! database file while the server runs: the append-only triggers are dropped
//! first, as such a person would.

use irm_core::protocol::AuditRecord;
use irm_e2e::{ADMIN, Person, Server};
use irm_key_server::audit::{GENESIS_HASH, chain_hash};
use rusqlite::Connection;
use serde_json::Value;

/// A server, its administrator and alice, and one file alice has opened.
struct Stage {
    server: Server,
    admin: Person,
    alice: Person,
    file: String,
}

impl Stage {
    fn new() -> Self {
        let server = Server::start();
        let admin = Person::new(ADMIN);
        admin.enroll(&server, &server.admin_code);
        let code = admin.ok(&["admin", "user", "add", "alice"]);
        let alice = Person::new("alice");
        alice.enroll(&server, code["code"].as_str().expect("a code"));
        let input = admin.write("calls.csv", b"customer,phone\nYamada,03-1234-5678\n");
        let file = alice.path("calls.irm");
        let file = file.to_str().expect("UTF-8").to_owned();
        admin.ok(&[
            "seal",
            input.to_str().expect("UTF-8"),
            "-o",
            &file,
            "--to",
            "alice",
            "--allow",
            "view",
        ]);
        alice.ok(&["info", &file]);
        Self {
            server,
            admin,
            alice,
            file,
        }
    }

    /// A write connection to the running server's database, triggers dropped.
    fn tamper(&self) -> Connection {
        let conn = Connection::open(self.server.data_dir().join("irm-key-server.db"))
            .expect("the database opens");
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .expect("a busy timeout");
        conn.execute_batch("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;")
            .expect("the triggers drop");
        conn
    }
}

fn records(conn: &Connection) -> Vec<AuditRecord> {
    let mut stmt = conn
        .prepare(
            "SELECT seq, at_ms, actor_user, actor_device, action, file_id, result, reason, \
             client_addr, detail, prev_hash, hash FROM audit ORDER BY seq",
        )
        .expect("a query");
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
    .expect("rows")
    .map(|r| r.expect("a row"))
    .collect()
}

/// `irm admin audit verify --json` as `who`: (exit code, the JSON object).
fn verify_online(who: &Person) -> (i32, Value) {
    who.json(&["admin", "audit", "verify"])
}

#[test]
fn online_verify_reports_a_record_edited_in_the_database_and_a_rebuilt_chain() {
    let stage = Stage::new();
    stage.admin.ok(&["admin", "audit", "checkpoint"]);
    // The chain goes on past the checkpoint, as it does on a live server.
    stage.alice.ok(&["info", &stage.file]);
    let (code, report) = verify_online(&stage.admin);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["ok"], true);

    // Someone with the database file rewrites who got alice's grant.
    let conn = stage.tamper();
    let seq: u64 = conn
        .query_row(
            "SELECT seq FROM audit WHERE action = 'grant' AND actor_user = 'alice'",
            [],
            |r| r.get(0),
        )
        .expect("alice's grant is recorded");
    conn.execute(
        "UPDATE audit SET actor_user = 'mallory' WHERE seq = ?1",
        [seq],
    )
    .expect("the edit");

    let (code, report) = verify_online(&stage.admin);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["ok"], false);
    let message = report["message"].as_str().expect("a message");
    assert!(
        message.contains(&format!(
            "record seq {seq}: its hash does not match its content"
        )),
        "{message}"
    );
    // The text form says the same, for a person reading it.
    let out = stage
        .admin
        .irm(&["admin", "audit", "verify"])
        .output()
        .expect("irm runs");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("BROKEN"), "{stdout}");
    assert!(
        stdout.contains(&format!("problem: record seq {seq}")),
        "{stdout}"
    );

    // Then every hash recomputed so the chain is consistent again: only the
    // signed checkpoint, kept outside the database, still tells.
    let mut prev = GENESIS_HASH;
    for mut record in records(&conn) {
        record.prev_hash = hex::encode(prev);
        prev = chain_hash(&prev, &record);
        conn.execute(
            "UPDATE audit SET prev_hash = ?2, hash = ?3 WHERE seq = ?1",
            rusqlite::params![record.seq, record.prev_hash, hex::encode(prev)],
        )
        .expect("the rewrite");
    }
    drop(conn);
    let (code, report) = verify_online(&stage.admin);
    assert_eq!(code, 1, "{report}");
    let message = report["message"].as_str().expect("a message");
    assert!(message.contains("the chain was rewritten"), "{message}");
    assert!(
        !message.contains("its hash does not match its content"),
        "the rebuilt chain is self-consistent: {message}"
    );
}
