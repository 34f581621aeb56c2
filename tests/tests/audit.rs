//! The audit log through the real `irm` binary against the real key server:
//! `irm admin audit verify` (online) reports tampering made directly in the
//! server's SQLite database, and `irm admin audit export` writes an export
//! that `irm-key-server audit verify --export` checks offline, with only the
//! server's audit public key, and that fails once a line is edited.
//!
//! The tampering plays a maintenance engineer with write access to the
//! database file while the server runs: the append-only triggers are dropped
//! first, as such a person would.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use irm_core::audit::{GENESIS_HASH, chain_hash};
use irm_core::protocol::AuditRecord;
use irm_e2e::{Admins, Person, Server, key_server_binary};
use irm_key_server::datadir::Layout;
use irm_key_server::store::Database;
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
        let admins = Admins::enroll(&server);
        let alice = Person::new("alice");
        alice.enroll(&server, &admins.add_user(&["alice"]));
        let admin = admins.admin;
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
        let conn = Connection::open(layout(&self.server).db()).expect("the database opens");
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .expect("a busy timeout");
        conn.execute_batch("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;")
            .expect("the triggers drop");
        conn
    }
}

/// Every audit record, read from the server's database as the store reads it.
fn records(server: &Server) -> Vec<AuditRecord> {
    let mut records = Vec::new();
    Database::Sqlite(layout(server).db())
        .for_each_audit_read_only(&mut |r| records.push(r.clone()))
        .expect("the audit table reads");
    records
}

fn layout(server: &Server) -> Layout {
    Layout::new(server.data_dir())
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
    for mut record in records(&stage.server) {
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

/// `irm-key-server audit verify ARGS`: (exit code, stdout).
fn verify_offline(args: &[&str], export: &Path) -> (i32, String) {
    let out = Command::new(key_server_binary())
        .args(["audit", "verify", "--export"])
        .arg(export)
        .args(args)
        .output()
        .expect("irm-key-server runs");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn an_export_verifies_offline_with_the_audit_key_and_fails_once_edited() {
    let stage = Stage::new();
    stage.alice.ok(&["info", &stage.file]);
    let export = stage.admin.path("audit.jsonl");
    let export_arg = export.to_str().expect("UTF-8");
    let summary = stage
        .admin
        .ok(&["admin", "audit", "export", "-o", export_arg]);
    assert_eq!(summary["first_seq"], 1);
    let last = summary["last_seq"].as_u64().expect("a last seq");
    assert_eq!(summary["records"], last, "{summary}");
    assert_eq!(summary["checkpoint"]["count"], last);
    let mode = std::fs::metadata(&export)
        .expect("the export")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "audit records stay private: {mode:o}");

    let text = std::fs::read_to_string(&export).expect("the export");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len() as u64, 2 + last, "header, checkpoint, records");
    assert!(lines[0].starts_with(r#"{"export":"#), "{}", lines[0]);
    assert!(lines[1].starts_with(r#"{"checkpoint":"#), "{}", lines[1]);
    assert!(lines[2..].iter().all(|l| l.starts_with(r#"{"record":"#)));

    // A third party with the export and the server's audit public key only.
    let public = layout(&stage.server).audit_pub();
    let key_arg = public.to_str().expect("UTF-8");
    let (code, out) = verify_offline(&["--audit-key", key_arg], &export);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("{last} records, 1 checkpoints: OK")),
        "{out}"
    );

    // One field of one line edited: alice's grant given to someone else.
    let grant = lines
        .iter()
        .position(|l| l.contains(r#""action":"grant""#) && l.contains(r#""actor_user":"alice""#))
        .expect("alice's grant is exported");
    let seq = grant as u64 - 1; // header and checkpoint come first
    let mut edited: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    edited[grant] = edited[grant].replace(r#""actor_user":"alice""#, r#""actor_user":"bob""#);
    let edited_path = stage
        .admin
        .write("edited.jsonl", edited.join("\n").as_bytes());
    let (code, out) = verify_offline(&["--audit-key", key_arg], &edited_path);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("PROBLEMS FOUND"), "{out}");
    assert!(
        out.contains(&format!(
            "record seq {seq}: its hash does not match its content (the record was edited)"
        )),
        "{out}"
    );

    // A line deleted.
    let mut deleted: Vec<&str> = lines.clone();
    deleted.remove(grant);
    let deleted_path = stage
        .admin
        .write("deleted.jsonl", deleted.join("\n").as_bytes());
    let (code, out) = verify_offline(&["--audit-key", key_arg], &deleted_path);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("a record was deleted, inserted or reordered"),
        "{out}"
    );

    // Another key than the server's vouches for nothing.
    let other = irm_core::SigningSecretKey::generate().expect("a key");
    let other_pub = stage
        .admin
        .write("other.pub", other.public_key_b64().as_bytes());
    let (code, out) = verify_offline(
        &["--audit-key", other_pub.to_str().expect("UTF-8")],
        &export,
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("does not verify with the server's audit key"),
        "{out}"
    );

    // A range, checked with the server's checkpoint file as well.
    let range = stage.admin.path("range.jsonl");
    let summary = stage.admin.ok(&[
        "admin",
        "audit",
        "export",
        "--after",
        "5",
        "-o",
        range.to_str().expect("UTF-8"),
    ]);
    assert_eq!(summary["first_seq"], 6);
    let checkpoints = layout(&stage.server).checkpoints();
    let (code, out) = verify_offline(
        &[
            "--data-dir",
            stage.server.data_dir().to_str().expect("UTF-8"),
            "--checkpoints",
            checkpoints.to_str().expect("UTF-8"),
            "--json",
        ],
        &range,
    );
    assert_eq!(code, 0, "{out}");
    let report: Value = serde_json::from_str(&out).expect("a JSON report");
    assert_eq!(report["ok"], true);
    assert!(
        report["checkpoints"].as_u64().expect("a count") >= 2,
        "{report}"
    );

    // An existing file is kept unless --force; `-o -` writes to stdout.
    let (code, value) = stage
        .admin
        .json(&["admin", "audit", "export", "-o", export_arg]);
    assert_eq!(code, 2, "{value}");
    assert_eq!(std::fs::read_to_string(&export).expect("the export"), text);
    let out = stage
        .admin
        .irm(&["admin", "audit", "export", "-o", "-"])
        .output()
        .expect("irm runs");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with(r#"{"export":"#));
}

/// Issue #13: `irm admin audit tail` shows what just happened: the newest
/// records (oldest of them first), filtered by person, file (by id or by
/// the sealed file itself) and action, and with `--follow` the records
/// written after it started. `irm admin file revoke` takes the sealed file.
#[test]
fn the_tail_shows_what_just_happened_and_follows_it() {
    let stage = Stage::new();
    // Past the old default page: the newest records must still show.
    for _ in 0..50 {
        stage.alice.ok(&["info", &stage.file]);
    }
    let id = stage.admin.ok(&["inspect", &stage.file])["file_id"]
        .as_str()
        .expect("the file's id")
        .to_owned();
    // By the sealed file itself, not its id.
    let revoked = stage
        .admin
        .ok(&["admin", "file", "revoke", &stage.file, "--reason", "LEAK-1"]);
    assert!(revoked.to_string().contains(&id), "{revoked}");
    let (code, _) = stage.alice.json(&["info", &stage.file]);
    assert_eq!(code, 3, "revoked");

    let tail = stage.admin.ok(&["admin", "audit", "tail"]);
    let tail = tail.as_array().expect("records");
    assert_eq!(tail.len(), 50);
    let last = &tail[49];
    assert_eq!(last["action"], "grant");
    assert_eq!(last["reason"], "file_revoked", "{last}");
    assert!(tail[48]["action"] == "admin.file.revoke", "{}", tail[48]);
    let seqs: Vec<u64> = tail.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "oldest first");

    // Filters: the file by its sealed path, a person, an action and below.
    let about = stage
        .admin
        .ok(&["admin", "audit", "tail", "--file", &stage.file, "-n", "5"]);
    let about = about.as_array().unwrap();
    assert_eq!(about.len(), 5);
    assert!(about.iter().all(|r| r["file_id"] == id.as_str()));
    let admin_only = stage.admin.ok(&[
        "admin",
        "audit",
        "tail",
        "--action",
        "admin.file",
        "--since",
        "1h",
    ]);
    let admin_only = admin_only.as_array().unwrap();
    assert_eq!(admin_only.len(), 1, "{admin_only:?}");
    assert_eq!(admin_only[0]["action"], "admin.file.revoke");
    let alices = stage
        .admin
        .ok(&["admin", "audit", "tail", "--user", "alice", "-n", "1000"]);
    assert!(
        alices
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["actor_user"] == "alice")
    );
    let out = stage
        .admin
        .irm(&["admin", "audit", "tail", "--file", "no-such-file"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6), "{out:?}");

    // For people: the reason in words.
    let out = stage
        .admin
        .irm(&["admin", "audit", "tail", "-n", "1", "--action", "grant"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("reason=file_revoked (an administrator revoked this file)"),
        "{text}"
    );

    // --follow prints what happens after it started, and not its own reads.
    let mut follow = stage
        .admin
        .run(irm_e2e::irm_binary())
        .args([
            "admin", "audit", "tail", "-n", "1", "--user", "alice", "--follow",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let first = rx.recv_timeout(std::time::Duration::from_secs(30)).unwrap();
    assert!(first.contains(" grant "), "{first}");
    std::thread::sleep(std::time::Duration::from_secs(1));
    let (code, _) = stage.alice.json(&["info", &stage.file]);
    assert_eq!(code, 3);
    let next = rx.recv_timeout(std::time::Duration::from_secs(30)).unwrap();
    let _ = follow.kill();
    let _ = follow.wait();
    assert!(
        next.contains(" alice ") && next.contains("file_revoked") && !next.contains("audit.read"),
        "{next}"
    );
}
