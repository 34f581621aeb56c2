//! The end-to-end harness: starts the real key server in-process on
//! `127.0.0.1:0` with a throw-away data directory, and runs the real `irm`
//! binary as different people, each with their own configuration
//! directory and passphrase (`IRM_CONFIG_DIR`, `IRM_PASSPHRASE`).
//!
//! The tests in `tests/` say what should happen; this crate only sets the
//! stage. The listener is bound before the server thread starts, so the
//! server is ready by construction and no test waits for it.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Once};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use assert_cmd::Command;
use irm_core::{
    EnvelopeBuilder, KasPublicKey, KasSecretKey, Policy, PolicyGrant, Recipient, Rights, Sealer,
    StreamOptions,
};
use irm_key_server::clock::SystemClock;
use irm_key_server::datadir::{self, Layout};
use irm_key_server::{AppState, Settings};
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::oneshot;

#[allow(unsafe_code)] // libirm's C ABI, called as C does.
pub mod libirm;
pub mod stage;

/// The bootstrap administrator's name.
pub const ADMIN: &str = "admin";

/// A key server running in this process until dropped.
pub struct Server {
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// `DATA_DIR/tls/ca.pem`.
    pub ca_pem: PathBuf,
    /// The bootstrap administrator's one-time code.
    pub admin_code: String,
    data: TempDir,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Changes to the default settings, kept for restarts.
    adjust: Adjust,
}

/// A change to the server's default settings.
type Adjust = Arc<dyn Fn(&mut Settings) + Send + Sync>;

impl Server {
    /// Initialises a data directory and serves it on a fresh loopback port.
    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    /// [`Server::start`] with `adjust` applied to the default settings (at
    /// every restart too).
    pub fn start_with(adjust: impl Fn(&mut Settings) + Send + Sync + 'static) -> Self {
        let adjust: Adjust = Arc::new(adjust);
        let data = TempDir::new().expect("a temporary data directory");
        let report = datadir::init(data.path(), &[], ADMIN, &SystemClock)
            .expect("the data directory initialises");
        // Bound here, before the server thread exists: connections queue in
        // the backlog until it accepts them.
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().expect("a bound address").port();
        let (stop, thread) = Self::spawn(data.path(), listener, &adjust);
        Self {
            url: format!("https://127.0.0.1:{port}"),
            ca_pem: Layout::new(data.path()).ca_pem(),
            admin_code: report.admin_code,
            data,
            stop: Some(stop),
            thread: Some(thread),
            adjust,
        }
    }

    /// Stops the server (final checkpoint written), lets `meanwhile` do what
    /// someone with the server's disk would do to its data directory (take
    /// a backup, restore one), and serves it again on the same port.
    pub fn restart(&mut self, meanwhile: impl FnOnce(&Path)) {
        self.shut_down();
        meanwhile(self.data.path());
        let addr = self
            .url
            .strip_prefix("https://")
            .expect("an https URL")
            .to_owned();
        let listener = TcpListener::bind(&addr).expect("the same port again");
        let (stop, thread) = Self::spawn(self.data.path(), listener, &self.adjust);
        self.stop = Some(stop);
        self.thread = Some(thread);
    }

    fn spawn(
        data: &Path,
        listener: TcpListener,
        adjust: &Adjust,
    ) -> (oneshot::Sender<()>, JoinHandle<()>) {
        let mut settings = Settings::new(data);
        adjust(&mut settings);
        let state =
            AppState::open(settings, Arc::new(SystemClock)).expect("the data directory opens");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("key-server".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("a tokio runtime");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .expect("the listener moves to tokio");
                    let shutdown = async move {
                        let _ = stopped.await;
                    };
                    irm_key_server::serve(listener, state, shutdown)
                        .await
                        .expect("the key server runs");
                });
            })
            .expect("the server thread starts");
        (stop, thread)
    }

    fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            // A panic in the server thread fails the test that owns it.
            if thread.join().is_err() && !std::thread::panicking() {
                panic!("the key server thread panicked");
            }
        }
    }

    /// The data directory (database, audit key, checkpoint file), for tests
    /// that play someone with access to the server's disk.
    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// The server's current X25519 public key, for sealing files the CLI
    /// would refuse to seal (a policy that has already expired). Read as
    /// whoever holds the disk of a server in the bootstrap mode can.
    pub fn current_key(&self) -> KasPublicKey {
        let (_, entries) = irm_key_server::vault::Vault::open(self.data.path())
            .expect("the data directory's vault");
        let entries = entries.expect("a server in the bootstrap mode opens with its share file");
        let mut keys: Vec<KasPublicKey> = entries
            .iter()
            .filter(|(name, _)| name.starts_with("kas/"))
            .map(|(_, text)| {
                KasSecretKey::from_text(text)
                    .expect("a key server key")
                    .public_key()
            })
            .collect();
        assert_eq!(keys.len(), 1, "call current_key before any rotation");
        keys.remove(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// The `irm` binary under test: built by cargo next to this test binary.
pub fn irm_binary() -> PathBuf {
    static BUILD: Once = Once::new();
    workspace_binary(&BUILD, "irm-cli", "irm")
}

/// The `irm-key-server` binary (for its offline `audit verify`), built like
/// [`irm_binary`].
pub fn key_server_binary() -> PathBuf {
    static BUILD: Once = Once::new();
    workspace_binary(&BUILD, "irm-key-server", "irm-key-server")
}

/// The `irm-viewer` binary under test, built like [`irm_binary`].
pub fn viewer_binary() -> PathBuf {
    static BUILD: Once = Once::new();
    workspace_binary(&BUILD, "irm-viewer", "irm-viewer")
}

/// Binary `bin` of workspace package `package`, built once per test binary
/// (`build`), and its path. `cargo test --workspace` builds it already;
/// `cargo test -p irm-e2e` does not, so this makes sure it exists and is
/// current.
fn workspace_binary(build: &Once, package: &str, bin: &str) -> PathBuf {
    build.call_once(|| cargo_build(&["-p", package, "--bin", bin]));
    profile_dir().join(bin)
}

/// `cargo build --quiet ARGS` in this test binary's profile (`--release`
/// when the tests are optimised); panics if the build fails.
pub fn cargo_build(args: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command.args(["build", "--quiet"]).args(args);
    if !cfg!(debug_assertions) {
        command.arg("--release");
    }
    let status = command.status().expect("cargo runs");
    assert!(status.success(), "cargo build {args:?} failed");
}

/// `target/<profile>`, where cargo puts what it builds for these tests.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test binary>
    exe.parent()
        .and_then(Path::parent)
        .expect("the test binary is in target/<profile>/deps")
        .to_owned()
}

/// One person at one computer: a configuration directory and a passphrase.
pub struct Person {
    /// The user name.
    pub name: String,
    dir: TempDir,
    passphrase: String,
}

impl Person {
    /// Someone with an empty configuration directory.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            dir: TempDir::new().expect("a configuration directory"),
            passphrase: format!("{name} correct horse battery staple"),
        }
    }

    /// Their configuration directory.
    pub fn config_dir(&self) -> PathBuf {
        self.dir.path().join("irm")
    }

    /// Their passphrase.
    pub fn passphrase(&self) -> &str {
        &self.passphrase
    }

    /// `PROGRAM ARGS` as this person: the same environment as [`Person::irm`]
    /// (`IRM_CONFIG_DIR`, `IRM_PASSPHRASE`, `USER`, their home as the
    /// working directory), for programs linked to libirm.
    pub fn run(&self, program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
        let mut cmd = std::process::Command::new(program);
        cmd.env("IRM_CONFIG_DIR", self.config_dir())
            .env("IRM_PASSPHRASE", &self.passphrase)
            .env("USER", &self.name)
            .current_dir(self.dir.path());
        cmd
    }

    /// A scratch path in their home.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `irm ARGS` as this person.
    pub fn irm(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(irm_binary());
        cmd.env("IRM_CONFIG_DIR", self.config_dir())
            .env("IRM_PASSPHRASE", &self.passphrase)
            .env("USER", &self.name)
            .current_dir(self.dir.path())
            .args(args);
        cmd
    }

    /// `irm enroll` with `code`; asserts success.
    pub fn enroll(&self, server: &Server, code: &str) {
        self.enroll_command(server, code)
            .args(["--user", &self.name])
            .assert()
            .success();
    }

    /// `irm enroll` with `code` alone, as the README does: the server finds
    /// whose code it is. Asserts success.
    pub fn enroll_by_code(&self, server: &Server, code: &str) {
        self.enroll_command(server, code).assert().success();
    }

    fn enroll_command(&self, server: &Server, code: &str) -> Command {
        let mut cmd = self.irm(&["enroll", "--server", &server.url, "--code", code]);
        cmd.args(["--device-name", &format!("{}-pc", self.name)])
            .arg("--ca")
            .arg(&server.ca_pem);
        cmd
    }

    /// Runs `irm ARGS --json` and returns the exit code and the one JSON
    /// object it printed.
    pub fn json(&self, args: &[&str]) -> (i32, Value) {
        let out = self.irm(args).arg("--json").output().expect("irm runs");
        (out.status.code().unwrap_or(-1), json_of(&out))
    }

    /// Runs `irm ARGS --json`, asserts success, returns the JSON.
    pub fn ok(&self, args: &[&str]) -> Value {
        let (code, value) = self.json(args);
        assert_eq!(code, 0, "irm {args:?} failed: {value}");
        value
    }

    /// Writes `data` to `name` in this person's home and returns the path.
    pub fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, data).expect("writing a scratch file");
        path
    }
}

/// Two administrators, as every server past its bootstrap has: `admin`,
/// enrolled with the bootstrap code, and `admin2`, whom `admin` creates
/// alone (the one action a lone administrator may take, PROTOCOL.md §7.2)
/// and who approves `admin`'s requests.
pub struct Admins {
    /// The bootstrap administrator.
    pub admin: Person,
    /// The second administrator.
    pub second: Person,
}

impl Admins {
    /// Enrolls both on `server`.
    pub fn enroll(server: &Server) -> Self {
        let admin = Person::new(ADMIN);
        admin.enroll(server, &server.admin_code);
        let created = admin.ok(&["admin", "user", "add", "admin2", "--role", "admin"]);
        let second = Person::new("admin2");
        second.enroll(server, created["code"].as_str().expect("a whole code"));
        Self { admin, second }
    }

    /// `irm ARGS` as `admin`, which files a request, then `irm admin request
    /// approve ID` as `admin2`; asserts both succeed and the request is
    /// done, and returns both JSON answers.
    pub fn approved(&self, args: &[&str]) -> (Value, Value) {
        let filed = self.admin.ok(args);
        let id = filed["request"]["id"].as_str().expect("a request id");
        let approved = self.second.ok(&["admin", "request", "approve", id]);
        assert_eq!(approved["request"]["state"], "done", "{approved}");
        (filed, approved)
    }

    /// Lowers the take-out rules to none (`irm admin rule set file.export 0`, and copy and print,
    /// approved), for tests about something other than approvals.
    pub fn take_out_without_approval(&self) {
        use irm_core::protocol::TakeOut;
        for how in [TakeOut::Export, TakeOut::Copy, TakeOut::Print] {
            self.approved(&["admin", "rule", "set", how.kind(), "0"]);
        }
    }

    /// `irm admin user add ARGS`, approved; returns the person's whole
    /// code: the requester's half, then the approver's.
    pub fn add_user(&self, args: &[&str]) -> String {
        let mut command = vec!["admin", "user", "add"];
        command.extend_from_slice(args);
        let (filed, approved) = self.approved(&command);
        format!(
            "{}-{}",
            filed["code_half"].as_str().expect("the requester's half"),
            approved["code_half"].as_str().expect("the approver's half")
        )
    }
}

/// The single JSON object on stdout.
pub fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}):\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The current Unix time.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

/// Seals `plaintext` with irm-core directly (not through the CLI) to
/// `server`'s key, for policies the CLI refuses to write, such as one whose
/// validity window has already closed or not yet opened.
pub fn seal_directly(
    server: &Server,
    url: &str,
    recipient: &str,
    rights: Rights,
    not_before: Option<u64>,
    not_after: Option<u64>,
    plaintext: &[u8],
) -> Vec<u8> {
    let policy = Policy::builder()
        .grant(PolicyGrant {
            recipients: BTreeSet::from([Recipient::parse(recipient).expect("a recipient")]),
            rights,
        })
        .not_before(not_before)
        .not_after(not_after)
        .max_lease_secs(600)
        .build()
        .expect("a valid policy");
    let header = EnvelopeBuilder::new(policy)
        .key_server(url, server.current_key())
        .build()
        .expect("a header");
    let mut sealer = Sealer::new(&header, Vec::new(), StreamOptions::default()).expect("a sealer");
    std::io::Write::write_all(&mut sealer, plaintext).expect("sealing to memory");
    sealer.finish().expect("sealing finishes")
}
