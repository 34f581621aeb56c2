//! libirm (crate `irm-ffi`) end to end: the C example
//! (`examples/c/seal_and_open.c`, compiled with `cc -Wall -Werror`) and the
//! Python example (ctypes) against the real key server, as people enrolled
//! with the `irm` CLI. Every refusal is checked by its `irm_status` number,
//! which the C program prints as `status N`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use irm_core::Rights;
use irm_e2e::{ADMIN, Person, Server, now_unix, seal_directly};

const CUSTOMERS: &[u8] = b"customer,phone,last_call\nYamada Taro,03-1234-5678,2026-11-02\nSuzuki Hanako,06-8765-4321,2026-11-03\nSato Jiro,011-222-3333,2026-11-04\n";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the repository")
}

/// `target/<profile>` with a fresh libirm.so in it.
fn lib_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "--quiet", "-p", "irm-ffi", "--lib"]);
        if !cfg!(debug_assertions) {
            build.arg("--release");
        }
        assert!(
            build.status().expect("cargo runs").success(),
            "building libirm failed"
        );
        let exe = std::env::current_exe().expect("the test binary's path");
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test binary is in target/<profile>/deps")
            .to_owned();
        assert!(
            dir.join("libirm.so").exists(),
            "no libirm.so in {}",
            dir.display()
        );
        dir
    })
}

/// The C example, compiled once with `-Wall -Werror` against libirm.
fn c_example() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let lib = lib_dir();
        let exe = lib.join("seal_and_open_c");
        let status = Command::new("cc")
            .args(["-std=c11", "-g", "-Wall", "-Wextra", "-Werror"])
            .arg("-I")
            .arg(repo().join("ffi/include"))
            .arg(repo().join("examples/c/seal_and_open.c"))
            .arg("-o")
            .arg(&exe)
            .arg("-L")
            .arg(lib)
            .arg("-lirm")
            .arg(format!("-Wl,-rpath,{}", lib.display()))
            .status()
            .expect("cc runs");
        assert!(
            status.success(),
            "examples/c/seal_and_open.c does not compile"
        );
        exe
    })
}

fn valgrind_installed() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn text(out: &Output) -> String {
    format!(
        "{}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs the C example as `person`; asserts success and returns stdout.
fn c_ok(person: &Person, args: &[&str]) -> String {
    let out = person
        .run(c_example())
        .args(args)
        .output()
        .expect("the C example runs");
    assert!(
        out.status.success(),
        "seal_and_open {args:?}: {}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the C example as `person`; asserts it failed in `call` with `status`.
fn c_fails(person: &Person, args: &[&str], call: &str, status: u32) {
    let out = person
        .run(c_example())
        .args(args)
        .output()
        .expect("the C example runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "seal_and_open {args:?}: {}",
        text(&out)
    );
    assert!(
        stderr.contains(&format!("error: {call}: status {status}: ")),
        "expected {call} to fail with status {status}: {}",
        text(&out)
    );
}

/// The file id the C example printed after sealing.
fn file_id(stdout: &str) -> String {
    let at = stdout.find("(file id ").expect("a file id") + "(file id ".len();
    stdout[at..at + 32].to_owned()
}

/// A server with the administrator, alice (in `@support`) and bob (not).
struct Stage {
    server: Server,
    admin: Person,
    alice: Person,
    bob: Person,
}

impl Stage {
    fn new() -> Self {
        let server = Server::start();
        let admin = Person::new(ADMIN);
        admin.enroll(&server, &server.admin_code);
        admin.ok(&["admin", "group", "add", "@support"]);
        let alice = Person::new("alice");
        let code = admin.ok(&["admin", "user", "add", "alice", "--group", "support"]);
        alice.enroll(&server, code["code"].as_str().expect("a code"));
        let bob = Person::new("bob");
        let code = admin.ok(&["admin", "user", "add", "bob"]);
        bob.enroll(&server, code["code"].as_str().expect("a code"));
        Self {
            server,
            admin,
            alice,
            bob,
        }
    }
}

#[test]
fn the_c_example_seals_for_a_group_reads_back_and_every_refusal_has_its_status() {
    let stage = Stage::new();
    let alice = &stage.alice;
    alice.write("customers.csv", CUSTOMERS);

    // Seal for @support, open, count: the call-centre flow.
    let out = c_ok(alice, &["customers.csv", "customers.csv.irm"]);
    assert!(out.contains("rights: view,program"), "{out}");
    assert!(out.contains("file: customers.csv (text/csv, "), "{out}");
    assert!(out.contains("columns: customer,phone,last_call"), "{out}");
    assert!(out.contains("rows: 3"), "{out}");
    let id = file_id(&out);
    let sealed = alice.path("customers.csv.irm");
    let bytes = std::fs::read(&sealed).expect("the sealed file");
    assert!(!bytes.windows(11).any(|w| w == b"Yamada Taro"));

    // Someone outside the recipients: 300 + not_recipient (8).
    std::fs::copy(&sealed, stage.bob.path("customers.csv.irm")).expect("bob gets a copy");
    c_fails(
        &stage.bob,
        &["--open", "customers.csv.irm"],
        "irm_open",
        308,
    );

    // The first read was audited as a program read.
    let records = stage
        .admin
        .ok(&["admin", "audit", "tail", "--limit", "1000"]);
    assert!(
        records
            .as_array()
            .expect("a list")
            .iter()
            .any(|r| r["file_id"] == id.as_str()
                && r["actor_user"] == "alice"
                && r["action"] == "event.program_read"
                && r["result"] == "ok"),
        "{records}"
    );

    // An administrator revokes: the next irm_open gets 300 + file_revoked (7).
    stage.admin.ok(&["admin", "file", "revoke", &id]);
    c_fails(alice, &["--open", "customers.csv.irm"], "irm_open", 307);

    // View only: the grant holds, but no plaintext for programs (207).
    let out = alice
        .run(c_example())
        .args(["customers.csv", "view-only.irm", "alice", "view"])
        .output()
        .expect("the C example runs");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("rights: view\n"),
        "{}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("error: irm_read: status 207: "),
        "{}",
        text(&out)
    );

    // A tampered header: the key server's policy binding fails (306).
    c_ok(alice, &["customers.csv", "tampered.irm", "alice"]);
    let path = alice.path("tampered.irm");
    let mut bytes = std::fs::read(&path).expect("the sealed file");
    let at = bytes
        .windows(16)
        .position(|w| w == b"customer-records")
        .expect("the label is in the header");
    bytes[at..at + 16].copy_from_slice(b"customer-RECORDS");
    std::fs::write(&path, &bytes).expect("writing the altered file");
    c_fails(alice, &["--open", "tampered.irm"], "irm_open", 306);

    // Past its not-after time: 300 + policy_expired (10). libirm refuses to
    // seal such a policy, so irm-core seals it directly.
    let url = stage.server.url.clone();
    let expired = seal_directly(
        &stage.server,
        &url,
        "alice",
        Rights::VIEW | Rights::PROGRAM,
        None,
        Some(now_unix() - 60),
        CUSTOMERS,
    );
    std::fs::write(alice.path("expired.irm"), expired).expect("writing the file");
    c_fails(alice, &["--open", "expired.irm"], "irm_open", 310);

    // Not a sealed file at all.
    c_fails(alice, &["--open", "customers.csv"], "irm_open", 208);
}

#[test]
fn the_c_example_runs_clean_under_valgrind() {
    if !valgrind_installed() {
        eprintln!("valgrind is not installed (scripts/test installs it): skipped");
        return;
    }
    let stage = Stage::new();
    let alice = &stage.alice;
    alice.write("customers.csv", CUSTOMERS);
    let out = alice
        .run("valgrind")
        .args(["-q", "--leak-check=full", "--error-exitcode=1"])
        .arg(format!(
            "--suppressions={}",
            repo().join("ffi/tests/valgrind.supp").display()
        ))
        .arg(c_example())
        .args(["customers.csv", "customers.csv.irm"])
        .output()
        .expect("valgrind runs");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("rows: 3"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_python_example_seals_and_reads_through_ctypes() {
    let stage = Stage::new();
    let alice = &stage.alice;
    alice.write("customers.csv", CUSTOMERS);
    let out = alice
        .run("python3")
        .arg(repo().join("examples/python/seal_and_open.py"))
        .args(["customers.csv", "customers.csv.irm", "@support"])
        .env("LIBIRM", lib_dir().join("libirm.so"))
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("rights: view,program"), "{stdout}");
    assert!(stdout.contains("rows: 3"), "{stdout}");
    let _ = &stage.server;
}

/// `ffi/tests/lease.c`, compiled like the example.
fn lease_program() -> PathBuf {
    let lib = lib_dir();
    let exe = lib.join("irm_lease_c");
    let status = Command::new("cc")
        .args(["-std=c11", "-g", "-pthread", "-Wall", "-Wextra", "-Werror"])
        .arg("-I")
        .arg(repo().join("ffi/include"))
        .arg(repo().join("ffi/tests/lease.c"))
        .arg("-o")
        .arg(&exe)
        .arg("-L")
        .arg(lib)
        .arg("-lirm")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .status()
        .expect("cc runs");
    assert!(status.success(), "ffi/tests/lease.c does not compile");
    exe
}

#[test]
fn documents_read_only_while_the_lease_holds_and_renew() {
    let stage = Stage::new();
    let exe = lease_program();
    let mut runs = vec![stage.alice.run(&exe)];
    if valgrind_installed() {
        let mut valgrind = stage.alice.run("valgrind");
        valgrind
            .args(["-q", "--leak-check=full", "--error-exitcode=1"])
            .arg(format!(
                "--suppressions={}",
                repo().join("ffi/tests/valgrind.supp").display()
            ))
            .arg(&exe);
        runs.push(valgrind);
    }
    for mut run in runs {
        let out = run
            .args(["alice", "short-lease.irm"])
            .output()
            .expect("the program runs");
        assert!(
            out.status.success()
                && String::from_utf8_lossy(&out.stdout).contains(" passed, 0 failed"),
            "{}",
            text(&out)
        );
    }
}
