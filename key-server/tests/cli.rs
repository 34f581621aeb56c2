//! The `irm-key-server` binary as an operator runs it: `serve` initialises an
//! empty data directory and prints the bootstrap code once, serves HTTPS,
//! stops cleanly on SIGTERM with a final checkpoint; `init` refuses an
//! initialised directory; secret files are private from the start. The
//! serving test runs with the state in SQLite and in PostgreSQL; a database
//! that cannot be reached is refused with a clear message.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use irm_key_server::store::DatabaseUrl;

const BIN: &str = env!("CARGO_BIN_EXE_irm-key-server");

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

struct Running {
    child: Child,
    addr: String,
    stdout: mpsc::Receiver<String>,
}

/// The binary, with the state in the database at `url` if one is given
/// (through the environment, as a password should be), else in SQLite.
fn bin(url: Option<&DatabaseUrl>) -> Command {
    let mut command = Command::new(BIN);
    command.env_remove("IRM_KS_DATABASE_URL");
    if let Some(url) = url {
        command.env("IRM_KS_DATABASE_URL", url.expose());
    }
    command
}

/// Starts `serve` on port 0 (configured through the environment).
fn start(dir: &Path, url: Option<&DatabaseUrl>) -> Running {
    let mut child = bin(url)
        .args(["serve", "--hostname", "kas.example.internal"])
        .env("IRM_KS_DATA_DIR", dir)
        .env("IRM_KS_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("local=").nth(1) {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_owned());
            }
        }
    });
    let mut out = child.stdout.take().unwrap();
    let (otx, stdout) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = out.read_to_string(&mut text);
        let _ = otx.send(text);
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the server never said where it listens");
    Running {
        child,
        addr,
        stdout,
    }
}

/// Sends SIGTERM and waits (bounded) for a clean exit; returns stdout.
fn stop(mut running: Running) -> String {
    let status = Command::new("kill")
        .args(["-TERM", &running.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = running.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    running
        .stdout
        .recv_timeout(Duration::from_secs(10))
        .unwrap()
}

#[test]
fn serve_initialises_once_serves_https_and_stops_cleanly_on_sigterm() {
    serve_initialises_once_serves_https_and_stops_cleanly(None);
}

#[test]
fn serve_on_postgres_initialises_once_serves_https_and_stops_cleanly_on_sigterm() {
    let database = common::pg::TestDatabase::create();
    serve_initialises_once_serves_https_and_stops_cleanly(Some(&database.url));
}

fn serve_initialises_once_serves_https_and_stops_cleanly(database: Option<&DatabaseUrl>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");

    let running = start(&dir, database);
    // Real HTTPS, trusting only the generated CA.
    let ca = std::fs::read(dir.join("tls/ca.pem")).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let url = format!("https://{}/healthz", running.addr);
    let body = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
            .build()
            .unwrap();
        client.get(url).send().await.unwrap().text().await.unwrap()
    });
    // A new server runs in the bootstrap mode, and says so to whoever
    // checks its health and reads its log (PROTOCOL.md §11.2).
    assert!(
        body.starts_with("ok\nwarning: bootstrap mode: the root key's only share is the file "),
        "{body}"
    );
    let first = stop(running);
    assert_eq!(
        first.matches("one-time enrollment code").count(),
        1,
        "{first}"
    );

    // Secrets are private; the directory too. No private key is on disk in
    // the clear but the TLS server key: the others are in the keystore,
    // sealed under the root key, whose one share is the bootstrap file.
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("tls/server.key")), 0o600);
    assert_eq!(mode(&dir.join("bootstrap-share.key")), 0o600);
    for gone in ["audit-signing.key", "tls/ca.key", "kas"] {
        assert!(!dir.join(gone).exists(), "{gone}");
    }
    let keystores: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("keystore-")
        })
        .collect();
    assert_eq!(keystores.len(), 1);
    assert_eq!(mode(&keystores[0]), 0o600);
    let sealed = std::fs::read_to_string(&keystores[0]).unwrap();
    for secret in ["IRM-KAS-SECRET-KEY", "SECRET", "PRIVATE KEY"] {
        assert!(!sealed.contains(secret), "{sealed}");
    }
    // The chain was checkpointed at init and again at start (PROTOCOL.md §9).
    let checkpoints = std::fs::read_to_string(dir.join("audit-checkpoints.jsonl")).unwrap();
    assert!(checkpoints.lines().count() >= 2, "{checkpoints}");

    // The state is where it was asked to be.
    assert_eq!(dir.join("irm-key-server.db").exists(), database.is_none());

    // A second start does not print a code again.
    let second = stop(start(&dir, database));
    assert!(!second.contains("enrollment code"), "{second}");

    // `init` refuses an initialised directory; `audit verify` is happy.
    let init = bin(database)
        .args(["init", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!init.status.success());
    assert!(String::from_utf8_lossy(&init.stderr).contains("already initialised"));
    let verify = bin(database)
        .args(["audit", "verify", "--json", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let report: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(report["ok"], true);
}

#[test]
fn init_alone_prints_the_code_and_a_config_file_is_honoured() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let config = tmp.path().join("ks.toml");
    std::fs::write(
        &config,
        format!("data_dir = {:?}\nbootstrap_admin = \"root\"\n", dir),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["init", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Bootstrap administrator \"root\""),
        "{stdout}"
    );
    let code = stdout
        .split("one-time enrollment code ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap();
    assert_eq!(code.len(), 23);
    assert!(dir.join("irm-key-server.db").exists());
    // A directory holding other files is refused, and left as it was.
    let busy = tmp.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), "mine").unwrap();
    std::fs::set_permissions(&busy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let refused = Command::new(BIN)
        .args(["init", "--data-dir"])
        .arg(&busy)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not empty"));
    assert_eq!(mode(&busy), 0o755);
    assert_eq!(std::fs::read_dir(&busy).unwrap().count(), 1);
    let bad = Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(&dir)
        .arg("--config")
        .arg(tmp.path().join("missing.toml"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

/// A PostgreSQL database that cannot be reached: `init` and `serve` say so
/// and leave no half-made data directory behind, and the password in the
/// URL is never printed (flag or environment variable).
#[test]
fn an_unreachable_database_fails_cleanly_and_keeps_its_password() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    // Port 1 on loopback: nothing listens there.
    let url = "postgresql://irm:s3cret@127.0.0.1:1/irm";
    for args in [
        &["init", "--database-url", url][..],
        &["serve", "--database-url", url],
    ] {
        let out = Command::new(BIN)
            .args(args)
            .arg("--data-dir")
            .arg(&dir)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("PostgreSQL error: error connecting to server"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("s3cret"), "{args:?}: {stderr}");
        assert!(!dir.exists(), "{args:?} created the data directory");
    }
    let out = Command::new(BIN)
        .args(["init", "--data-dir"])
        .arg(&dir)
        .env("IRM_KS_DATABASE_URL", url)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error connecting to server"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
    assert!(!dir.exists());
}

/// `recover-code` from a shell (PROTOCOL.md §7.1): refused while a server
/// writes to the database; with it stopped, a fresh code for the lone
/// administrator replaces the old one (failures reset) and is audited with
/// the reason; refused with no reason, for a user who is not there, and once
/// a second administrator exists. The binary, with SQLite.
#[test]
fn recover_code_replaces_a_lone_administrators_code_and_is_audited() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let recover = |user: &str, reason: &str| {
        let out = bin(None)
            .args(["recover-code", "--data-dir"])
            .arg(&dir)
            .args(["--user", user, "--reason", reason])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    let running = start(&dir, None);
    let (ok, _, stderr) = recover("admin", "ticket 1");
    assert!(!ok);
    assert!(
        stderr.contains("another key server is writing to this database"),
        "{stderr}"
    );
    stop(running);

    let (ok, stdout, stderr) = recover("admin", "ticket 4711: bootstrap code burnt");
    assert!(ok, "{stderr}");
    let code = stdout
        .split("one-time enrollment code ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no code in {stdout}"))
        .to_owned();
    let db = rusqlite::Connection::open(dir.join("irm-key-server.db")).unwrap();
    let (hash, failures): (Vec<u8>, i64) = db
        .query_row(
            "SELECT code_hash, code_failures FROM users WHERE name = 'admin'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(hash, irm_key_server::codes::hash(&code).to_vec());
    assert_eq!(failures, 0);
    let last = |db: &rusqlite::Connection| -> (String, Option<String>, String, String) {
        db.query_row(
            "SELECT action, actor_user, result, detail FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap()
    };
    let (action, actor, result, detail) = last(&db);
    assert_eq!(
        (action.as_str(), actor, result.as_str()),
        ("admin.user.code", None, "ok")
    );
    // The new code is vouched for in the state ledger (PROTOCOL.md §11.3).
    assert!(
        detail.starts_with(
            "user=admin via=recover-code reason=ticket 4711: bootstrap code burnt ledger: state=code/admin#"
        ),
        "{detail}"
    );

    let (ok, _, stderr) = recover("admin", " ");
    assert!(!ok);
    assert!(stderr.contains("--reason must say why"), "{stderr}");
    let (ok, _, stderr) = recover("nobody", "ticket 2");
    assert!(!ok);
    assert!(stderr.contains("user nobody not found"), "{stderr}");
    assert_eq!(last(&db).2, "failed");

    // A second administrator: from now on, another administrator issues codes.
    db.execute(
        "INSERT INTO users (name, display_name, roles, active, created_at)
         SELECT 'second', 'Second', roles, 1, created_at FROM users WHERE name = 'admin'",
        [],
    )
    .unwrap();
    let (ok, _, stderr) = recover("admin", "ticket 3");
    assert!(!ok);
    assert!(stderr.contains("2 administrators exist"), "{stderr}");
    // Suspending the other one does not reopen the door.
    db.execute("UPDATE users SET active = 0 WHERE name = 'second'", [])
        .unwrap();
    let (ok, _, stderr) = recover("admin", "ticket 3");
    assert!(!ok);
    assert!(stderr.contains("2 administrators exist"), "{stderr}");
    let (action, _, result, detail) = last(&db);
    assert_eq!(
        (action.as_str(), result.as_str()),
        ("admin.user.code", "failed")
    );
    assert!(detail.contains("reason=ticket 3"), "{detail}");
    let unchanged: Vec<u8> = db
        .query_row(
            "SELECT code_hash FROM users WHERE name = 'admin'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(unchanged, hash, "a refusal changes nothing");
    // The chain stays whole through every offline write.
    drop(db);
    let verified = bin(None)
        .args(["audit", "verify", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
}

/// `irm-key-server audit verify --export` reaches the same verdicts as
/// irm-core and `irm audit verify` on the audit vectors: one verifier
/// behind every front end.
#[test]
fn audit_verify_of_an_export_judges_every_audit_vector() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../irm-core/tests/audit-vectors");
    let expected = std::fs::read_to_string(dir.join("EXPECTED")).unwrap();
    for line in expected.lines() {
        let (name, outcome) = line.split_once(": ").unwrap();
        let mut command = bin(None);
        command
            .args(["audit", "verify", "--json", "--audit-key"])
            .arg(dir.join("audit-signing.pub"))
            .arg("--export")
            .arg(dir.join(format!("{name}.jsonl")));
        let apart = dir.join(format!("{name}.checkpoints.jsonl"));
        if apart.exists() {
            command.arg("--checkpoints").arg(&apart);
        }
        let out = command.output().unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if outcome == "ok" {
            assert!(out.status.success(), "{name}: {report}");
            assert_eq!(report["ok"], true, "{name}");
        } else {
            assert_eq!(out.status.code(), Some(1), "{name}: {report}");
            let problems = report["problems"].to_string();
            assert!(problems.contains(outcome), "{name}: {report}");
        }
    }
}
