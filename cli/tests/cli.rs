//! End-to-end tests of the offline `irm` commands (keygen, seal, inspect,
//! recover): each test runs the real binary in a scratch directory and names
//! one behaviour.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;
use tempfile::TempDir;

const KAS_URL: &str = "https://kas.example:8443";
/// Far enough ahead that the tests keep passing for decades.
const EXPIRES: &str = "2099-01-31T00:00:00Z";
const EXPIRES_UNIX: u64 = 4_073_500_800;

fn irm() -> Command {
    let mut cmd = Command::cargo_bin("irm").expect("the irm binary is built");
    cmd.env("USER", "tester");
    cmd
}

/// A scratch directory holding a key pair `key` / `key.pub`.
struct Scratch {
    dir: TempDir,
}

impl Scratch {
    fn new() -> Self {
        let dir = TempDir::new().unwrap();
        irm()
            .current_dir(dir.path())
            .args(["keygen", "-q", "-o", "key"])
            .assert()
            .success();
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let path = self.path(name);
        fs::write(&path, data).unwrap();
        path
    }

    fn cmd(&self) -> Command {
        let mut cmd = irm();
        cmd.current_dir(self.dir.path());
        cmd
    }

    /// `irm seal IN -o OUT` with the scratch key and a one-grant policy, plus `extra`.
    fn seal(&self, input: &str, output: &str, extra: &[&str]) -> Command {
        let mut cmd = self.cmd();
        cmd.args(["seal", input, "-o", output, "--kas-public-key", "key.pub"])
            .args(["--kas-url", KAS_URL, "--to", "alice", "--expires", EXPIRES])
            .args(extra);
        cmd
    }

    fn recover(&self, input: &str, output: &str) -> Command {
        let mut cmd = self.cmd();
        cmd.args(["recover", input, "-o", output, "--kas-private-key", "key"]);
        cmd
    }

    /// Names in the directory, sorted.
    fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn temp_files(&self) -> Vec<String> {
        self.entries()
            .into_iter()
            .filter(|n| n.starts_with(".irm-") || n.ends_with(".tmp"))
            .collect()
    }

    fn inspect_json(&self, file: &str) -> Value {
        let out = self
            .cmd()
            .args(["inspect", "--json", file])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        serde_json::from_slice(&out).expect("inspect --json prints one JSON object")
    }
}

/// Deterministic bytes that are not all alike.
fn sample(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn sealed_sample(s: &Scratch, len: usize) -> Vec<u8> {
    let data = sample(len);
    s.write("in.bin", &data);
    s.seal("in.bin", "in.irm", &["-q"]).assert().success();
    data
}

// ---------------------------------------------------------------- keygen

#[test]
fn keygen_writes_a_0600_secret_and_a_public_key() {
    let s = Scratch::new();
    let secret = fs::read_to_string(s.path("key")).unwrap();
    let public = fs::read_to_string(s.path("key.pub")).unwrap();
    assert_eq!(mode(&s.path("key")), 0o600);
    assert!(
        secret
            .lines()
            .any(|l| l.starts_with("IRM-KAS-SECRET-KEY-V1:"))
    );
    assert!(secret.contains("# created: "));
    assert!(secret.contains("CAN READ EVERY FILE SEALED TO IT"));
    // The header names the public key that the .pub file holds.
    let public_line = public.trim_end();
    assert!(public_line.starts_with("irm-kas-public-key-v1:"));
    assert!(public.ends_with('\n'));
    assert!(secret.contains(&format!("# public key: {public_line}\n")));
    assert_eq!(s.temp_files(), Vec::<String>::new());
}

#[test]
fn keygen_refuses_to_overwrite_an_existing_key_pair() {
    let s = Scratch::new();
    let before = fs::read(s.path("key")).unwrap();
    let out = s
        .cmd()
        .args(["keygen", "-o", "key"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(
        stderr_of(&out).contains("already exists"),
        "{}",
        stderr_of(&out)
    );
    assert!(stderr_of(&out).contains("--force"));
    assert_eq!(fs::read(s.path("key")).unwrap(), before);
}

#[test]
fn keygen_refuses_when_only_the_public_file_exists() {
    let s = Scratch::new();
    fs::remove_file(s.path("key")).unwrap();
    s.cmd().args(["keygen", "-o", "key"]).assert().code(2);
    assert!(!s.path("key").exists(), "no secret without its public key");
}

#[test]
fn keygen_force_replaces_the_key_pair() {
    let s = Scratch::new();
    let before = fs::read(s.path("key")).unwrap();
    s.cmd()
        .args(["keygen", "-q", "--force", "-o", "key"])
        .assert()
        .success();
    assert_ne!(fs::read(s.path("key")).unwrap(), before);
    assert_eq!(mode(&s.path("key")), 0o600);
}

// ------------------------------------------------------- round trips

#[test]
fn seal_then_recover_round_trips_a_multi_chunk_file() {
    let s = Scratch::new();
    // Five 64 KiB chunks and a partial one.
    let data = sample(5 * 65536 + 777);
    s.write("calls.csv", &data);
    s.cmd()
        .args(["seal", "calls.csv", "--kas-public-key", "key.pub"])
        .args(["--kas-url", KAS_URL, "--to", "alice", "-q"])
        .assert()
        .success()
        .stdout("");
    assert!(s.path("calls.csv.irm").exists(), "OUT defaults to IN.irm");
    s.recover("calls.csv.irm", "back.csv")
        .assert()
        .success()
        .stdout("");
    assert_eq!(fs::read(s.path("back.csv")).unwrap(), data);
    assert_eq!(mode(&s.path("back.csv")), 0o600);
    assert_eq!(s.temp_files(), Vec::<String>::new());
}

#[test]
fn seal_then_recover_round_trips_many_small_chunks_on_two_threads() {
    let s = Scratch::new();
    // 1 KiB chunks on two threads: several batches of 16 chunks.
    let data = sample(100 * 1024 + 5);
    s.write("in.bin", &data);
    s.seal(
        "in.bin",
        "in.irm",
        &["-q", "--chunk-size", "1KiB", "--threads", "2"],
    )
    .assert()
    .success();
    assert_eq!(s.inspect_json("in.irm")["chunk_len"], 1024);
    s.recover("in.irm", "out.bin")
        .args(["--threads", "2"])
        .assert()
        .success();
    assert_eq!(fs::read(s.path("out.bin")).unwrap(), data);
}

#[test]
fn seal_then_recover_round_trips_an_empty_file() {
    let s = Scratch::new();
    s.write("empty.txt", b"");
    s.seal("empty.txt", "empty.irm", &["-q"]).assert().success();
    s.recover("empty.irm", "back.txt").assert().success();
    assert_eq!(fs::read(s.path("back.txt")).unwrap(), b"");
}

#[test]
fn seal_and_recover_stream_from_stdin_to_stdout() {
    let s = Scratch::new();
    let data = sample(200_000);
    let sealed = s
        .seal("-", "-", &["-q"])
        .write_stdin(data.clone())
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(sealed.len() > data.len());
    s.recover("-", "-")
        .arg("-q")
        .write_stdin(sealed)
        .assert()
        .success()
        .stdout(data);
    assert_eq!(s.temp_files(), Vec::<String>::new());
}

#[test]
fn sealing_stdin_without_o_writes_to_a_non_terminal_stdout() {
    let s = Scratch::new();
    let sealed = s
        .cmd()
        .args([
            "seal",
            "-",
            "--kas-public-key",
            "key.pub",
            "--kas-url",
            KAS_URL,
        ])
        .args(["--to", "alice", "-q"])
        .write_stdin("a,b\n")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(sealed.starts_with(b"\x89IRM"));
}

#[test]
fn recover_json_reports_the_encrypted_metadata() {
    let s = Scratch::new();
    s.write("calls.csv", b"customer,phone\n");
    s.seal("calls.csv", "calls.irm", &["-q"]).assert().success();
    let out = s
        .recover("calls.irm", "back.csv")
        .arg("--json")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["file_name"], "calls.csv");
    assert_eq!(v["media_type"], "text/csv");
    assert_eq!(v["plaintext_len"], 15);
    assert_eq!(v["output"], "back.csv");
}

#[test]
fn seal_json_reports_the_output_and_sizes() {
    let s = Scratch::new();
    s.write("calls.csv", b"customer,phone\n");
    let out = s
        .seal("calls.csv", "calls.irm", &["--json"])
        .assert()
        .success()
        .get_output()
        .clone();
    assert_eq!(stderr_of(&out), "", "--json prints nothing on stderr");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "file_id",
            "input",
            "ok",
            "output",
            "plaintext_len",
            "sealed_len"
        ]
    );
    assert_eq!(v["plaintext_len"], 15);
    assert_eq!(
        v["sealed_len"].as_u64().unwrap(),
        fs::metadata(s.path("calls.irm")).unwrap().len()
    );
    assert_eq!(v["file_id"], s.inspect_json("calls.irm")["file_id"]);
}

// ------------------------------------------------------------ inspect

#[test]
fn inspect_prints_the_header_and_policy_as_text() {
    let s = Scratch::new();
    s.write("calls.csv", b"secret customer data\n");
    s.seal(
        "calls.csv",
        "calls.irm",
        &[
            "-q",
            "--to",
            "@support",
            "--allow",
            "view,print",
            "--label",
            "confidential",
            "--max-lease",
            "1h",
            "--not-before",
            "2025-01-01T00:00:00Z",
        ],
    )
    .assert()
    .success();
    let out = s
        .cmd()
        .args(["inspect", "calls.irm"])
        .assert()
        .success()
        .get_output()
        .clone();
    let text = String::from_utf8(out.stdout).unwrap();
    for expected in [
        "format version  1",
        "issuer          tester",
        "chunk size      65536 bytes (64 KiB)",
        KAS_URL,
        "@support, alice -> view,print",
        "not before      2025-01-01T00:00:00Z",
        "not after       2099-01-31T00:00:00Z",
        "max lease       1h",
        "watermark       required",
        "classification  confidential",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(!text.contains("secret customer data"));
}

#[test]
fn inspect_json_has_a_stable_shape() {
    let s = Scratch::new();
    s.write("calls.csv", b"x");
    s.seal("calls.csv", "calls.irm", &["-q", "--no-watermark"])
        .assert()
        .success();
    let v = s.inspect_json("calls.irm");
    let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    assert_eq!(
        keys(&v),
        [
            "chunk_len",
            "created",
            "created_unix",
            "file_id",
            "file_len",
            "format_version",
            "header_len",
            "issuer",
            "key_access",
            "ok",
            "path",
            "policy"
        ]
    );
    assert_eq!(
        keys(&v["policy"]),
        [
            "classification",
            "grants",
            "max_lease_secs",
            "not_after",
            "not_after_unix",
            "not_before",
            "not_before_unix",
            "watermark_required"
        ]
    );
    assert_eq!(keys(&v["key_access"][0]), ["kas_url", "key_id"]);
    assert_eq!(v["ok"], true);
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["file_id"].as_str().unwrap().len(), 32);
    assert_eq!(v["issuer"], "tester");
    assert_eq!(v["key_access"][0]["kas_url"], KAS_URL);
    assert_eq!(v["policy"]["not_after"], EXPIRES);
    assert_eq!(v["policy"]["not_after_unix"], EXPIRES_UNIX);
    assert_eq!(v["policy"]["not_before"], Value::Null);
    assert_eq!(v["policy"]["max_lease_secs"], 600);
    assert_eq!(v["policy"]["watermark_required"], false);
    assert_eq!(v["policy"]["classification"], Value::Null);
    assert_eq!(
        v["policy"]["grants"],
        serde_json::json!([{"recipients": ["alice"], "rights": ["view"]}])
    );
    assert_eq!(
        v["file_len"].as_u64().unwrap(),
        fs::metadata(s.path("calls.irm")).unwrap().len()
    );
}

#[test]
fn inspect_needs_no_key() {
    let s = Scratch::new();
    s.write("calls.csv", b"x");
    s.seal("calls.csv", "calls.irm", &["-q"]).assert().success();
    fs::remove_file(s.path("key")).unwrap();
    fs::remove_file(s.path("key.pub")).unwrap();
    s.cmd().args(["inspect", "calls.irm"]).assert().success();
}

#[test]
fn inspect_of_a_file_that_is_not_sealed_exits_4_with_a_hint() {
    let s = Scratch::new();
    s.write("plain.csv", b"customer,phone\n");
    let out = s
        .cmd()
        .args(["inspect", "plain.csv"])
        .assert()
        .code(4)
        .get_output()
        .clone();
    let err = stderr_of(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines[0].contains("plain.csv"), "{err}");
    assert!(lines[0].contains("not a sealed IRM file"), "{err}");
    assert_eq!(lines[1], "hint: is this a sealed .irm file?");
}

// ---------------------------------------------------------- policies

#[test]
fn seal_records_several_grants() {
    let s = Scratch::new();
    s.write("calls.csv", b"x");
    s.cmd()
        .args(["seal", "calls.csv", "-o", "calls.irm", "-q"])
        .args(["--kas-public-key", "key.pub", "--kas-url", KAS_URL])
        .args([
            "--grant",
            "@agents=view",
            "--grant",
            "@supervisors,carol=view,print",
        ])
        .args(["--to", "dave", "--allow", "export"])
        .assert()
        .success();
    let v = s.inspect_json("calls.irm");
    // Grants appear in the format's canonical order, not the command line's.
    let grants = v["policy"]["grants"].as_array().unwrap();
    assert_eq!(grants.len(), 3);
    for expected in [
        serde_json::json!({"recipients": ["@agents"], "rights": ["view"]}),
        serde_json::json!({"recipients": ["@supervisors", "carol"], "rights": ["view", "print"]}),
        serde_json::json!({"recipients": ["dave"], "rights": ["export"]}),
    ] {
        assert!(
            grants.contains(&expected),
            "{expected} missing from {grants:?}"
        );
    }
    assert_eq!(v["policy"]["not_after"], Value::Null);
}

#[test]
fn an_unknown_right_is_a_usage_error_naming_it() {
    let s = Scratch::new();
    s.write("calls.csv", b"x");
    let out = s
        .seal("calls.csv", "calls.irm", &["--allow", "view,fly"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = stderr_of(&out);
    assert!(err.contains("unknown right \"fly\""), "{err}");
    assert!(
        err.contains("view, print, copy, export and program"),
        "{err}"
    );
    assert!(!s.path("calls.irm").exists());
}

#[test]
fn a_malformed_grant_is_a_usage_error() {
    let s = Scratch::new();
    s.write("calls.csv", b"x");
    let out = s
        .seal("calls.csv", "calls.irm", &["--grant", "@agents"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(stderr_of(&out).contains("RECIPIENTS=RIGHTS"));
}

#[test]
fn sealing_without_recipients_is_a_usage_error() {
    let s = Scratch::new();
    s.write("calls.csv", b"x");
    s.cmd()
        .args(["seal", "calls.csv", "--kas-public-key", "key.pub"])
        .args(["--kas-url", KAS_URL])
        .assert()
        .code(2);
    assert!(!s.path("calls.csv.irm").exists());
}

#[test]
fn an_expiry_in_the_past_is_refused() {
    let s = Scratch::new();
    s.write("calls.csv", b"x");
    s.cmd()
        .args(["seal", "calls.csv", "--kas-public-key", "key.pub"])
        .args(["--kas-url", KAS_URL, "--to", "alice"])
        .args(["--expires", "2001-01-01T00:00:00Z"])
        .assert()
        .code(2);
    assert!(!s.path("calls.csv.irm").exists());
}

// ------------------------------------------------- integrity failures

#[test]
fn recovering_a_tampered_payload_exits_4_and_leaves_no_output() {
    let s = Scratch::new();
    sealed_sample(&s, 3 * 65536 + 10);
    let header_len = s.inspect_json("in.irm")["header_len"].as_u64().unwrap() as usize;
    let mut sealed = fs::read(s.path("in.irm")).unwrap();
    // A byte in the second chunk: the first chunk verifies and must still
    // not reach the output.
    sealed[header_len + 65536 + 16 + 100] ^= 0x01;
    fs::write(s.path("in.irm"), &sealed).unwrap();
    let before = s.entries();
    let out = s
        .recover("in.irm", "out.bin")
        .assert()
        .code(4)
        .get_output()
        .clone();
    let err = stderr_of(&out);
    assert!(err.contains("in.irm"), "{err}");
    assert!(
        err.contains("hint: the file was altered or damaged after sealing"),
        "{err}"
    );
    assert_eq!(s.entries(), before, "no output and no temporary file");
}

#[test]
fn recovering_a_tampered_header_exits_4() {
    let s = Scratch::new();
    sealed_sample(&s, 1000);
    let mut sealed = fs::read(s.path("in.irm")).unwrap();
    // Inside the bound header record (past magic, version and length).
    sealed[40] ^= 0x01;
    fs::write(s.path("in.irm"), &sealed).unwrap();
    s.recover("in.irm", "out.bin").assert().code(4);
    assert!(!s.path("out.bin").exists());
}

#[test]
fn recovering_a_truncated_file_exits_4_and_leaves_no_output() {
    let s = Scratch::new();
    sealed_sample(&s, 2 * 65536 + 10);
    let sealed = fs::read(s.path("in.irm")).unwrap();
    // Cut the final chunk off: every remaining chunk still verifies.
    let header_len = s.inspect_json("in.irm")["header_len"].as_u64().unwrap() as usize;
    fs::write(s.path("in.irm"), &sealed[..header_len + 2 * (65536 + 16)]).unwrap();
    let out = s
        .recover("in.irm", "out.bin")
        .assert()
        .code(4)
        .get_output()
        .clone();
    assert!(stderr_of(&out).contains("truncated"), "{}", stderr_of(&out));
    assert!(!s.path("out.bin").exists());
    assert_eq!(s.temp_files(), Vec::<String>::new());
}

#[test]
fn recovering_a_file_cut_inside_its_header_exits_4() {
    let s = Scratch::new();
    sealed_sample(&s, 100);
    let sealed = fs::read(s.path("in.irm")).unwrap();
    fs::write(s.path("in.irm"), &sealed[..30]).unwrap();
    s.recover("in.irm", "out.bin").assert().code(4);
    assert!(!s.path("out.bin").exists());
}

#[test]
fn recovering_with_the_wrong_key_exits_4() {
    let s = Scratch::new();
    sealed_sample(&s, 100);
    s.cmd()
        .args(["keygen", "-q", "-o", "other"])
        .assert()
        .success();
    let out = s
        .cmd()
        .args([
            "recover",
            "in.irm",
            "-o",
            "out.bin",
            "--kas-private-key",
            "other",
        ])
        .assert()
        .code(4)
        .get_output()
        .clone();
    assert!(
        stderr_of(&out).contains("not sealed to key"),
        "{}",
        stderr_of(&out)
    );
    assert!(!s.path("out.bin").exists());
}

#[test]
fn recovering_with_the_public_key_by_mistake_says_so() {
    let s = Scratch::new();
    sealed_sample(&s, 100);
    let out = s
        .cmd()
        .args([
            "recover",
            "in.irm",
            "-o",
            "out.bin",
            "--kas-private-key",
            "key.pub",
        ])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let err = stderr_of(&out);
    assert!(err.contains("not the .pub file"), "{err}");
    assert!(
        !err.contains("warning"),
        "no permission warning for a public key: {err}"
    );
}

#[test]
fn integrity_failures_are_json_objects_with_json() {
    let s = Scratch::new();
    s.write("plain.csv", b"not sealed");
    let out = s
        .recover("plain.csv", "out.bin")
        .arg("--json")
        .assert()
        .code(4)
        .get_output()
        .clone();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["kind"], "integrity");
    assert_eq!(v["exit_code"], 4);
    assert!(v["message"].as_str().unwrap().contains("plain.csv"));
    assert_eq!(v["hint"], "is this a sealed .irm file?");
}

#[test]
fn recover_warns_when_the_secret_key_is_readable_by_others() {
    let s = Scratch::new();
    sealed_sample(&s, 100);
    fs::set_permissions(s.path("key"), fs::Permissions::from_mode(0o644)).unwrap();
    let out = s
        .recover("in.irm", "out.bin")
        .assert()
        .success()
        .get_output()
        .clone();
    let err = stderr_of(&out);
    assert!(
        err.contains("warning: the secret key key is accessible to other users (mode 0644)"),
        "{err}"
    );
    assert!(err.contains("chmod 600"), "{err}");
}

// ------------------------------------------------------ I/O and paths

#[test]
fn a_missing_input_exits_6_naming_it() {
    let s = Scratch::new();
    let out = s
        .seal("nope.csv", "nope.irm", &[])
        .assert()
        .code(6)
        .get_output()
        .clone();
    let err = stderr_of(&out);
    assert!(err.lines().next().unwrap().contains("nope.csv"), "{err}");
    assert!(err.contains("hint: check the path"), "{err}");
    s.recover("nope.irm", "out.bin").assert().code(6);
}

#[test]
fn sealing_a_file_onto_itself_is_refused() {
    let s = Scratch::new();
    s.write("calls.csv", b"customer,phone\n");
    let out = s
        .seal("calls.csv", "./calls.csv", &["--force"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(stderr_of(&out).contains("same file"), "{}", stderr_of(&out));
    assert_eq!(fs::read(s.path("calls.csv")).unwrap(), b"customer,phone\n");
}

#[test]
fn recovering_a_file_onto_itself_is_refused() {
    let s = Scratch::new();
    sealed_sample(&s, 100);
    let before = fs::read(s.path("in.irm")).unwrap();
    s.recover("in.irm", "in.irm")
        .arg("--force")
        .assert()
        .code(2);
    assert_eq!(fs::read(s.path("in.irm")).unwrap(), before);
}

/// Every file below `dir`, as paths relative to it, sorted.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(at) = pending.pop() {
        for entry in fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path.clone());
            }
            found.push(path.strip_prefix(dir).unwrap().to_owned());
        }
    }
    found.sort();
    found
}

/// Seals `data` as `irm seal` would, but with `file_name` as the stored
/// name: a sealer (not `irm seal`, which stores only a path's last
/// component) may record anything there (FORMAT.md §6.3). The policy and
/// key server are taken from a file `irm seal` wrote.
fn seal_with_stored_name(s: &Scratch, file_name: &str, data: &[u8]) -> Vec<u8> {
    s.write("template.csv", b"x");
    s.seal("template.csv", "template.irm", &["-q", "--force"])
        .assert()
        .success();
    let template = fs::read(s.path("template.irm")).unwrap();
    let (header, _) = irm_core::SealedHeader::parse(&template).unwrap();
    let public =
        irm_core::KasPublicKey::from_text(&fs::read_to_string(s.path("key.pub")).unwrap()).unwrap();
    let verified = irm_core::EnvelopeBuilder::new(header.policy().clone())
        .key_server(KAS_URL, public)
        .metadata(irm_core::Metadata {
            file_name: Some(file_name.to_owned()),
            media_type: Some("text/csv".to_owned()),
            plaintext_len: Some(data.len() as u64),
        })
        .build()
        .unwrap();
    irm_core::seal_to_vec(&verified, data, irm_core::StreamOptions::default()).unwrap()
}

/// FORMAT.md §6.3: the stored file name is the sealer's text, never a path.
/// `irm recover` writes the plaintext where -o says and nowhere else, reports
/// the stored name verbatim as data, and leaves no file at the place a
/// hostile name points to: above the working directory, in a subdirectory,
/// or at an absolute path.
#[test]
fn recover_writes_only_to_its_output_whatever_the_stored_file_name() {
    let s = Scratch::new();
    fs::create_dir(s.path("work")).unwrap();
    let absolute = s.path("absolute.csv");
    let hostile = [
        "../escaped.csv".to_owned(),
        "sub/../../escaped.csv".to_owned(),
        "..".to_owned(),
        absolute.display().to_string(),
    ];
    let data = sample(1500);
    for name in &hostile {
        s.write("work/in.irm", &seal_with_stored_name(&s, name, &data));
        let before = tree(s.dir.path());
        let out = irm()
            .current_dir(s.path("work"))
            .args(["recover", "in.irm", "-o", "plain.bin", "--kas-private-key"])
            .arg(s.path("key"))
            .arg("--json")
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let report: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(report["file_name"], name.as_str(), "{name}");
        assert_eq!(fs::read(s.path("work/plain.bin")).unwrap(), data, "{name}");
        let mut expected = before;
        expected.push(PathBuf::from("work/plain.bin"));
        expected.sort();
        assert_eq!(tree(s.dir.path()), expected, "stored name {name:?}");
        assert!(!absolute.exists() && !s.path("escaped.csv").exists());
        fs::remove_file(s.path("work/plain.bin")).unwrap();
    }
}

/// FORMAT.md §6.3: without -o, neither `irm recover` nor `irm open` falls
/// back to the stored file name (or any name): -o is required, so both stop
/// with a usage error before reading the file, and write nothing.
#[test]
fn recover_and_open_without_an_output_write_nothing() {
    let s = Scratch::new();
    fs::create_dir(s.path("work")).unwrap();
    s.write(
        "work/in.irm",
        &seal_with_stored_name(&s, "../escaped.csv", &sample(100)),
    );
    let before = tree(s.dir.path());
    irm()
        .current_dir(s.path("work"))
        .args(["recover", "in.irm", "--kas-private-key"])
        .arg(s.path("key"))
        .assert()
        .code(2);
    irm()
        .current_dir(s.path("work"))
        .env("IRM_CONFIG_DIR", s.path("no-config"))
        .args(["open", "in.irm"])
        .assert()
        .code(2);
    assert_eq!(tree(s.dir.path()), before);
}

#[test]
fn an_existing_output_is_kept_without_force() {
    let s = Scratch::new();
    s.write("calls.csv", b"new data");
    s.write("calls.irm", b"precious");
    let out = s
        .seal("calls.csv", "calls.irm", &[])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = stderr_of(&out);
    assert!(err.contains("calls.irm already exists"), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert_eq!(fs::read(s.path("calls.irm")).unwrap(), b"precious");

    sealed_sample(&s, 10);
    s.recover("in.irm", "calls.irm").assert().code(2);
    assert_eq!(fs::read(s.path("calls.irm")).unwrap(), b"precious");
    assert_eq!(s.temp_files(), Vec::<String>::new());
}

#[test]
fn force_replaces_an_existing_output() {
    let s = Scratch::new();
    s.write("calls.csv", b"new data");
    s.write("calls.irm", b"old");
    s.seal("calls.csv", "calls.irm", &["-q", "--force"])
        .assert()
        .success();
    s.recover("calls.irm", "back.csv").assert().success();
    assert_eq!(fs::read(s.path("back.csv")).unwrap(), b"new data");
}

#[test]
fn sealing_into_a_missing_directory_fails_cleanly() {
    let s = Scratch::new();
    s.write("calls.csv", b"x");
    let before = s.entries();
    let out = s
        .seal("calls.csv", "no/such/dir/calls.irm", &[])
        .assert()
        .code(6)
        .get_output()
        .clone();
    let err = stderr_of(&out);
    assert!(err.contains("no/such/dir/calls.irm"), "{err}");
    assert!(err.contains("does not exist"), "{err}");
    assert_eq!(s.entries(), before);
}

#[test]
fn json_output_with_stdout_data_is_refused() {
    let s = Scratch::new();
    s.write("calls.csv", b"x");
    let out = s
        .seal("calls.csv", "-", &["--json"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "usage");
}

#[test]
fn help_lists_the_exit_codes() {
    let out = irm().arg("--help").assert().success().get_output().clone();
    let help = String::from_utf8(out.stdout).unwrap();
    for line in [
        "Exit status:",
        "  4  integrity failure",
        "  6  input/output error",
    ] {
        assert!(help.contains(line), "missing {line:?} in:\n{help}");
    }
}

// ------------------------------------------- online commands, no server
// (the key server itself is exercised end to end in tests/, crate irm-e2e)

/// The client crate's test CA: a real certificate, so that enrollment gets as
/// far as connecting.
const TEST_CA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../client/testdata/test-ca.pem"
);

/// `irm` with its own empty configuration directory and no passphrase in the environment.
fn online(config: &TempDir) -> Command {
    let mut cmd = irm();
    cmd.env("IRM_CONFIG_DIR", config.path().join("irm"))
        .env_remove("IRM_PASSPHRASE")
        .current_dir(config.path());
    cmd
}

/// A port on 127.0.0.1 where nothing listens (bound, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn online_commands_before_enrolling_say_how_to_enroll() {
    let config = TempDir::new().unwrap();
    fs::write(config.path().join("calls.csv"), b"x").unwrap();
    for args in [
        &["info", "calls.csv.irm"][..],
        &["open", "calls.csv.irm", "-o", "out.csv"],
        &["admin", "user", "list"],
        &["seal", "calls.csv", "--to", "alice"],
    ] {
        let out = online(&config).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = stderr_of(&out);
        assert!(stderr.contains("not enrolled"), "{args:?}: {stderr}");
        assert!(
            stderr.contains("hint: enroll first with the invitation your administrator gave you: irm enroll 'irm-invite:1?"),
            "{stderr}"
        );
    }
    assert!(!config.path().join("calls.csv.irm").exists());
    assert!(!config.path().join("out.csv").exists());
}

#[test]
fn a_kas_url_without_a_public_key_is_a_usage_error() {
    let s = Scratch::new();
    s.write("calls.csv", b"x");
    s.cmd()
        .args(["seal", "calls.csv", "--kas-url", KAS_URL, "--to", "alice"])
        .assert()
        .code(2);
    assert!(!s.path("calls.csv.irm").exists());
}

#[test]
fn enrolling_without_a_terminal_needs_a_passphrase_from_a_file_or_the_environment() {
    let config = TempDir::new().unwrap();
    let out = online(&config)
        .args(["enroll", "--server", "https://127.0.0.1:1", "--ca", TEST_CA])
        .args(["--user", "alice", "--code", "ABCDE-FGHIJ-KLMNO-PQRST"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("IRM_PASSPHRASE"));
}

#[test]
fn enrolling_refuses_a_short_passphrase_before_contacting_the_server() {
    let config = TempDir::new().unwrap();
    fs::write(config.path().join("pass"), "short\n").unwrap();
    let out = online(&config)
        .args(["enroll", "--server", "https://127.0.0.1:1", "--ca", TEST_CA])
        .args(["--user", "alice", "--code", "ABCDE-FGHIJ-KLMNO-PQRST"])
        .args(["--passphrase-file", "pass"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("shorter than 8 characters"));
}

#[test]
fn enrolling_with_an_unreachable_server_exits_5_and_stores_nothing() {
    let config = TempDir::new().unwrap();
    let server = format!("https://127.0.0.1:{}", closed_port());
    let out = online(&config)
        .env("IRM_PASSPHRASE", "a long enough passphrase")
        .args(["enroll", "--server", &server, "--ca", TEST_CA, "--json"])
        .args(["--user", "alice", "--code", "ABCDE-FGHIJ-KLMNO-PQRST"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "unreachable");
    assert_eq!(v["exit_code"], 5);
    assert!(v.get("reason").is_none(), "only denials carry a reason");
    assert!(!config.path().join("irm/device.json").exists());
    assert!(!config.path().join("irm/device.key").exists());
}

#[test]
fn enrolling_needs_an_https_server_and_a_pem_ca() {
    let config = TempDir::new().unwrap();
    fs::write(config.path().join("ca.pem"), "not a certificate").unwrap();
    for (server, ca) in [
        ("http://127.0.0.1:1", TEST_CA),
        ("https://127.0.0.1:1", "ca.pem"),
    ] {
        online(&config)
            .env("IRM_PASSPHRASE", "a long enough passphrase")
            .args(["enroll", "--server", server, "--ca", ca])
            .args(["--user", "alice", "--code", "ABCDE-FGHIJ-KLMNO-PQRST"])
            .assert()
            .code(2);
    }
}

#[test]
fn help_lists_the_denied_and_unreachable_exit_codes() {
    let out = irm().arg("--help").assert().success().get_output().clone();
    let help = String::from_utf8(out.stdout).unwrap();
    for line in [
        "  3  denied by the key server",
        "  5  key server unreachable",
    ] {
        assert!(help.contains(line), "missing {line:?} in:\n{help}");
    }
}

/// The progress bar is drawn on stderr when it is a terminal (here a
/// pseudo-terminal from util-linux `script`), for a large input, and never
/// with `--quiet` or into a pipe, where it would be noise in a log.
#[test]
fn a_large_seal_draws_a_progress_bar_on_a_terminal_only() {
    let s = Scratch::new();
    s.write("big.csv", &sample(16 << 20));
    let on_terminal = |extra: &str, out: &str| {
        let command = format!(
            "{} seal big.csv -o {out} --kas-public-key key.pub --kas-url {KAS_URL} --to alice {extra}",
            env!("CARGO_BIN_EXE_irm")
        );
        let output = std::process::Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .current_dir(s.dir.path())
            .output()
            .expect("util-linux script runs");
        assert!(output.status.success(), "{}", stderr_of(&output));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let transcript = on_terminal("", "a.irm");
    assert!(
        transcript.contains("/16.00 MiB"),
        "no progress bar on the terminal: {transcript:?}"
    );
    let quiet = on_terminal("-q", "b.irm");
    // The bar's "done/total" field; the summary line names the size too.
    assert!(
        !quiet.contains("/16.00 MiB"),
        "a bar despite --quiet: {quiet:?}"
    );
    let piped = s.seal("big.csv", "c.irm", &[]).output().unwrap();
    assert!(piped.status.success());
    assert!(
        !stderr_of(&piped).contains("/16.00 MiB"),
        "a bar into a pipe: {}",
        stderr_of(&piped)
    );
}

/// `irm audit verify` needs no key server, no enrollment and no passphrase:
/// over the audit vectors (irm-core/tests/audit-vectors) it accepts the
/// intact exports and names the problem of every tampered one, exiting 1.
#[test]
fn audit_verify_checks_every_audit_vector_offline() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../irm-core/tests/audit-vectors");
    let expected = fs::read_to_string(dir.join("EXPECTED")).unwrap();
    let home = TempDir::new().unwrap();
    for line in expected.lines() {
        let (name, outcome) = line.split_once(": ").unwrap();
        let mut cmd = irm();
        // No credentials anywhere: the command must not look for them.
        cmd.env("IRM_CONFIG_DIR", home.path().join("none"))
            .env_remove("IRM_PASSPHRASE")
            .args(["audit", "verify", "--json", "--audit-key"])
            .arg(dir.join("audit-signing.pub"))
            .arg("--export")
            .arg(dir.join(format!("{name}.jsonl")));
        let apart = dir.join(format!("{name}.checkpoints.jsonl"));
        if apart.exists() {
            cmd.arg("--checkpoints").arg(&apart);
        }
        let out = cmd.output().unwrap();
        let json: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{name}: {e}: {}", String::from_utf8_lossy(&out.stdout)));
        if outcome == "ok" {
            assert!(out.status.success(), "{name}: {json}");
            assert_eq!(json["ok"], true, "{name}");
            assert!(json["records"].as_u64().unwrap() > 0, "{name}");
        } else {
            assert_eq!(out.status.code(), Some(1), "{name}: {json}");
            assert_eq!(json["ok"], false, "{name}");
            assert!(
                json["message"].as_str().unwrap().contains(outcome),
                "{name}: {json}"
            );
        }
    }
    // The text form names each problem on a line of its own.
    let out = irm()
        .args(["audit", "verify", "--audit-key"])
        .arg(dir.join("audit-signing.pub"))
        .arg("--export")
        .arg(dir.join("record_edited.jsonl"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("BROKEN: "), "{text}");
    assert!(text.contains("problem: record seq 5"), "{text}");
}
