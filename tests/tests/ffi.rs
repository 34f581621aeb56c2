//! libirm (crate `irm-ffi`) end to end: the C example
//! (`examples/c/seal_and_open.c`, compiled with `cc -Wall -Werror`, linked
//! against libirm.so and once against libirm.a), the Python example
//! (ctypes) and the Rust example against the real key server, as people
//! enrolled with the `irm` CLI; and libirm's own C tests that need a
//! server (`ffi/tests/lease.c`, `ffi/tests/explicit.c`), also under
//! valgrind. Every refusal is checked by its `irm_status` number, which
//! the C programs print as `status N`.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use irm_core::Rights;
use irm_e2e::{Admins, Person, Server, cargo_build, now_unix, profile_dir, seal_directly};
use serde_json::Value;

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
        cargo_build(&["-p", "irm-ffi", "--lib"]);
        let dir = profile_dir();
        assert!(
            dir.join("libirm.so").exists(),
            "no libirm.so in {}",
            dir.display()
        );
        dir
    })
}

/// The audit records of alice's program reads of file `id`, as the
/// administrator reads them with `irm admin audit tail`.
fn program_reads(admin: &Person, id: &str) -> Vec<Value> {
    let records = admin.ok(&["admin", "audit", "tail", "--limit", "1000"]);
    records
        .as_array()
        .expect("a list")
        .iter()
        .filter(|r| {
            r["file_id"] == id && r["actor_user"] == "alice" && r["action"] == "event.program_read"
        })
        .cloned()
        .collect()
}

/// Runs the C test program `exe` with `args` as `person`, directly and then
/// under valgrind, and expects every check to pass both times.
fn passes_directly_and_under_valgrind(
    person: &Person,
    exe: &Path,
    args: &[&OsStr],
    no_config_dir: bool,
) {
    let mut under_valgrind = valgrind(person);
    under_valgrind.arg(exe);
    for mut run in [person.run(exe), under_valgrind] {
        if no_config_dir {
            run.env_remove("IRM_CONFIG_DIR");
        }
        let out = run.args(args).output().expect("the program runs");
        all_passed(&out);
    }
}

/// Compiles `source` (relative to the repository) with `-Wall -Wextra
/// -Werror` against `ffi/include/irm.h` into `target/<profile>/exe_name`,
/// linked as `link` says.
fn compile_c(source: &str, exe_name: &str, link: &[&OsStr]) -> PathBuf {
    let exe = lib_dir().join(exe_name);
    let status = Command::new("cc")
        .args(["-std=c11", "-g", "-pthread", "-Wall", "-Wextra", "-Werror"])
        .arg("-I")
        .arg(repo().join("ffi/include"))
        .arg(repo().join(source))
        .arg("-o")
        .arg(&exe)
        .args(link)
        .status()
        .expect("cc runs");
    assert!(status.success(), "{source} does not compile");
    exe
}

/// `-Lirm` from `target/<profile>`, found there at run time too (rpath).
fn link_shared() -> [OsString; 3] {
    let lib = lib_dir();
    [
        format!("-L{}", lib.display()).into(),
        "-lirm".into(),
        format!("-Wl,-rpath,{}", lib.display()).into(),
    ]
}

/// A C program of this repository linked against libirm.so.
fn c_program(source: &str, exe_name: &str) -> PathBuf {
    let link = link_shared();
    let link: Vec<_> = link.iter().map(|a| a.as_os_str()).collect();
    compile_c(source, exe_name, &link)
}

/// The C example, compiled once with `-Wall -Werror` against libirm.
fn c_example() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| c_program("examples/c/seal_and_open.c", "seal_and_open_c"))
}

/// `valgrind --leak-check=full --error-exitcode=1` with libirm's
/// suppressions, run as `person`. Valgrind is required (scripts/test
/// installs it): a missing one fails the test, so a memory check never
/// passes without having run.
fn valgrind(person: &Person) -> Command {
    let installed = Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        installed,
        "valgrind is not installed, so libirm's memory checks cannot run; \
         install it (`apt-get install valgrind`, as scripts/test does)"
    );
    let mut cmd = person.run("valgrind");
    cmd.args(["-q", "--leak-check=full", "--error-exitcode=1"])
        .arg(format!(
            "--suppressions={}",
            repo().join("ffi/tests/valgrind.supp").display()
        ));
    cmd
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
    admins: Admins,
    alice: Person,
    bob: Person,
}

impl Stage {
    fn new() -> Self {
        let server = Server::start();
        let admins = Admins::enroll(&server);
        admins.admin.ok(&["admin", "group", "add", "@support"]);
        let alice = Person::new("alice");
        alice.enroll(&server, &admins.add_user(&["alice", "--group", "support"]));
        let bob = Person::new("bob");
        bob.enroll(&server, &admins.add_user(&["bob"]));
        Self {
            server,
            admins,
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
    assert!(out.contains("encoding: UTF-8\n"), "{out}");
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
    let reads = program_reads(&stage.admins.admin, &id);
    assert!(reads.iter().any(|r| r["result"] == "ok"), "{reads:?}");

    // An administrator revokes: the next irm_open gets 300 + file_revoked (7).
    stage.admins.admin.ok(&["admin", "file", "revoke", &id]);
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
    let stage = Stage::new();
    let alice = &stage.alice;
    alice.write("customers.csv", CUSTOMERS);
    let out = valgrind(alice)
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

/// A call-centre export as Japanese Excel saves "CSV": CP932, with
/// characters only CP932 has (髙, ①).
const CUSTOMERS_JA: &str =
    "顧客,電話,最終通話\n山田 太郎,03-1234-5678,2026-11-02\n髙橋 ①,06-8765-4321,2026-11-03\n";

#[test]
fn the_c_and_python_examples_name_a_cp932_export_and_print_it_in_utf8() {
    let stage = Stage::new();
    let alice = &stage.alice;
    let (cp932, _, unmappable) = encoding_rs::SHIFT_JIS.encode(CUSTOMERS_JA);
    assert!(!unmappable && std::str::from_utf8(&cp932).is_err());
    alice.write("customers-ja.csv", &cp932);

    let out = c_ok(alice, &["customers-ja.csv", "customers-ja.csv.irm"]);
    assert!(out.contains("encoding: CP932\n"), "{out}");
    assert!(out.contains("columns: 顧客,電話,最終通話\n"), "{out}");
    assert!(out.contains("rows: 2"), "{out}");
    assert!(
        out.contains(&format!(
            "text (UTF-8, {} bytes):\n{CUSTOMERS_JA}",
            CUSTOMERS_JA.len()
        )),
        "{out}"
    );
    assert!(!out.contains("warning:"), "{out}");

    let out = alice
        .run("python3")
        .arg(repo().join("examples/python/seal_and_open.py"))
        .args(["customers-ja.csv", "customers-ja-py.csv.irm", "@support"])
        .env("LIBIRM", lib_dir().join("libirm.so"))
        .env("PYTHONIOENCODING", "utf-8")
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8(out.stdout).expect("the Python example prints UTF-8");
    assert!(stdout.contains("encoding: CP932\n"), "{stdout}");
    assert!(stdout.contains("columns: 顧客,電話,最終通話\n"), "{stdout}");
    assert!(stdout.contains(CUSTOMERS_JA), "{stdout}");
}

/// Asserts that a C test program ran to its end with every check passed.
fn all_passed(out: &Output) {
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains(" passed, 0 failed"),
        "{}",
        text(out)
    );
}

#[test]
fn documents_read_only_while_the_lease_holds_and_renew() {
    let stage = Stage::new();
    let exe = c_program("ffi/tests/lease.c", "irm_lease_c");
    let args = [OsStr::new("alice"), OsStr::new("short-lease.irm")];
    passes_directly_and_under_valgrind(&stage.alice, &exe, &args, false);
}

#[test]
fn a_device_enrolled_behind_a_persons_back_is_told_to_their_program_once() {
    let stage = Stage::new();
    // Two administrators give alice a new code; someone enrolls with it.
    let (filed, approved) = stage.admins.approved(&["admin", "user", "code", "alice"]);
    let code = format!(
        "{}-{}",
        filed["code_half"].as_str().expect("the first half"),
        approved["code_half"].as_str().expect("the second half")
    );
    let intruder = Person::new("alice");
    intruder.enroll(&stage.server, &code);
    let config: Value = serde_json::from_str(
        &std::fs::read_to_string(intruder.config_dir().join("device.json"))
            .expect("the new device's configuration"),
    )
    .expect("JSON");
    let new_device = config["device_id"].as_str().expect("its id").to_owned();
    let exe = c_program("ffi/tests/notices.c", "irm_notices_c");
    let args = [
        OsStr::new("alice"),
        OsStr::new("notices.irm"),
        OsStr::new(&new_device),
    ];
    // Once: the notice is spent by the first run, so valgrind runs alone.
    let out = valgrind(&stage.alice)
        .arg(&exe)
        .args(args)
        .output()
        .expect("valgrind runs");
    all_passed(&out);
}

#[test]
fn a_client_from_explicit_paths_opens_files_and_names_a_wrong_server_or_ca() {
    let stage = Stage::new();
    // Another key server, only for a CA certificate that is not ours.
    let other = Server::start();
    let alice = &stage.alice;
    // The credentials under other names in a directory of their own, and no
    // IRM_CONFIG_DIR: only the paths given can be what the client uses.
    let creds = tempfile::tempdir().expect("a directory");
    let json = creds.path().join("alice-device.json");
    let key = creds.path().join("alice-device.key");
    std::fs::copy(alice.config_dir().join("device.json"), &json).expect("copying device.json");
    std::fs::copy(alice.config_dir().join("device.key"), &key).expect("copying device.key");
    let exe = c_program("ffi/tests/explicit.c", "irm_explicit_c");
    let args = [
        OsStr::new(&stage.server.url),
        stage.server.ca_pem.as_os_str(),
        json.as_os_str(),
        key.as_os_str(),
        OsStr::new("alice"),
        other.ca_pem.as_os_str(),
        OsStr::new("explicit.irm"),
    ];
    passes_directly_and_under_valgrind(alice, &exe, &args, true);
}

/// The static libraries libirm.a needs from the system, as `rustc
/// --print native-static-libs` lists them for this target.
const STATIC_SYSTEM_LIBS: &[&str] = &[
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
];

#[test]
fn the_c_example_links_statically_against_libirm_a() {
    let archive = lib_dir().join("libirm.a");
    assert!(archive.exists(), "no libirm.a in {}", lib_dir().display());
    // The archive itself, not -lirm (which would pick libirm.so), and no
    // rpath: a program that still needed libirm.so would not even start.
    let mut link = vec![archive.as_os_str()];
    link.extend(STATIC_SYSTEM_LIBS.iter().map(OsStr::new));
    let exe = compile_c("examples/c/seal_and_open.c", "seal_and_open_static", &link);
    let needed = Command::new("readelf")
        .arg("-d")
        .arg(&exe)
        .output()
        .expect("readelf runs (binutils comes with cc)");
    assert!(
        !String::from_utf8_lossy(&needed.stdout).contains("libirm"),
        "the program depends on libirm.so: {}",
        text(&needed)
    );

    let stage = Stage::new();
    let alice = &stage.alice;
    alice.write("customers.csv", CUSTOMERS);
    let out = alice
        .run(&exe)
        .env_remove("LD_LIBRARY_PATH")
        .args(["customers.csv", "customers.csv.irm"])
        .output()
        .expect("the statically linked example runs");
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("rights: view,program"), "{stdout}");
    assert!(stdout.contains("rows: 3"), "{stdout}");
}

/// `examples/rust/seal_and_open.rs` (an example of the irm-client package),
/// built by cargo like libirm.
fn rust_example() -> PathBuf {
    cargo_build(&["-p", "irm-client", "--example", "seal_and_open"]);
    let exe = lib_dir().join("examples/seal_and_open");
    assert!(exe.exists(), "no {}", exe.display());
    exe
}

#[test]
fn the_rust_example_seals_for_a_group_and_reads_back_through_the_key_server() {
    let stage = Stage::new();
    let exe = rust_example();
    let alice = &stage.alice;
    alice.write("customers.csv", CUSTOMERS);
    let out = alice
        .run(&exe)
        .args(["customers.csv", "customers.csv.irm", "@support"])
        .output()
        .expect("the Rust example runs");
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("sealed customers.csv into customers.csv.irm"),
        "{stdout}"
    );
    assert!(stdout.contains("rights: view,program"), "{stdout}");
    assert!(stdout.contains("rows: 3"), "{stdout}");
    let id = file_id(&stdout);

    // The same bytes open through libirm, and the read was audited.
    let out = c_ok(alice, &["--open", "customers.csv.irm"]);
    assert!(out.contains("rows: 3"), "{out}");
    let reads = program_reads(&stage.admins.admin, &id);
    assert!(!reads.is_empty(), "no program read of {id} by alice");
    // It registered the file: an administrator can revoke it.
    stage.admins.admin.ok(&["admin", "file", "revoke", &id]);
    c_fails(alice, &["--open", "customers.csv.irm"], "irm_open", 307);

    // bob is not in @support: his own export seals, but does not open for him.
    let bob = &stage.bob;
    bob.write("customers.csv", CUSTOMERS);
    let out = bob
        .run(&exe)
        .args(["customers.csv", "customers.csv.irm", "@support"])
        .output()
        .expect("the Rust example runs");
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("NotRecipient"),
        "{}",
        text(&out)
    );
}
