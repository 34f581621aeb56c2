//! Test support: a real key server in-process on 127.0.0.1:0 over HTTPS with
//! a throw-away data directory and a manual clock, and enrolled devices that
//! sign their requests exactly as clients do (irm_core::RequestSignature).
//! Users and devices are created through the HTTP API only.
//!
//! The store is SQLite, or PostgreSQL: a
//! database of its own per test, created on the server that
//! `IRM_TEST_DATABASE_URL` names (`scripts/test` starts one) and dropped
//! after, so tests run in parallel. `on_each_backend!` runs a test on each.

#![allow(dead_code, unreachable_pub)] // each test binary uses a different part; pub is for them

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use irm_core::protocol::{
    CreateUserRequest, EnrollRequest, EnrollResponse, EnrollmentCode, GrantResponse, Role,
    ServerKeyInfo,
};
use irm_core::{
    DeviceSecretKey, DeviceWrappedKey, EnvelopeBuilder, FileId, HeaderHash, KasPublicKey, Policy,
    PolicyGrant, Recipient, RequestSignature, RewrapContext, Rights, SigningSecretKey,
    VerifiedHeader, enrollment_proof_message,
};
use irm_key_server::clock::{Clock, ManualClock};
use irm_key_server::store::DatabaseUrl;
use irm_key_server::{AppState, Settings, datadir, serve};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// The manual clock's starting time (2027-01-15).
pub const T0: u64 = 1_800_000_000;

/// Which store a test server keeps its state in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite in the data directory.
    Sqlite,
    /// A PostgreSQL database of the test's own.
    Postgres,
}

/// Runs each named `async fn NAME(backend: Backend)` as a test per backend:
/// `NAME::sqlite` and `NAME::postgres`.
#[allow(unused_macros)] // not every test binary has such tests
macro_rules! on_each_backend {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(crate::common::Backend::Sqlite).await
            }

            #[tokio::test]
            async fn postgres() {
                super::$name(crate::common::Backend::Postgres).await
            }
        }
    )+};
}

/// A running server.
pub struct TestServer {
    pub base: String,
    pub http: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub dir: tempfile::TempDir,
    /// `None` only for the moment of a restart (see `state()`).
    state: Option<AppState>,
    pub admin_code: String,
    /// Where the server keeps its state, when not in the data directory.
    pub database_url: Option<DatabaseUrl>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// Last, so that it is dropped after the state that uses it.
    pub database: Option<pg::TestDatabase>,
    /// The second administrator, who approves the first's requests.
    approver: std::sync::OnceLock<Device>,
}

impl TestServer {
    /// Initialises a data directory and serves it (SQLite).
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Like `start`, with the settings adjusted first.
    pub async fn start_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        Self::start_on_with(Backend::Sqlite, adjust).await
    }

    /// Initialises a data directory (and database) and serves it.
    pub async fn start_on(backend: Backend) -> Self {
        Self::start_on_with(backend, |_| {}).await
    }

    /// Like `start_on`, with the settings adjusted first.
    pub async fn start_on_with(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = Arc::new(ManualClock::at_secs(T0));
        let database = match backend {
            Backend::Postgres => Some(pg::TestDatabase::create()),
            Backend::Sqlite => None,
        };
        let database_url = database.as_ref().map(|d| d.url.clone());
        let report = datadir::init_with(
            dir.path(),
            database_url.as_ref(),
            &[],
            "admin",
            clock.as_ref(),
        )
        .expect("init");
        let mut settings = Settings::new(dir.path());
        settings.database_url = database_url;
        adjust(&mut settings);
        let database_url = settings.database_url.clone();
        let state = AppState::open(settings, clock.clone()).expect("open");
        // Bind before spawning, so the server is ready by construction.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, state.clone(), async move {
            let _ = stopped.await;
        }));
        let ca = std::fs::read(dir.path().join("tls/ca.pem")).expect("ca.pem");
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca).expect("ca")])
            .https_only(true)
            .build()
            .expect("client");
        Self {
            base: format!("https://127.0.0.1:{port}"),
            http,
            clock,
            dir,
            state: Some(state),
            admin_code: report.admin_code,
            database_url,
            stop: Some(stop),
            task: Some(task),
            database,
            approver: std::sync::OnceLock::new(),
        }
    }

    /// Stops the server gracefully (final checkpoint written) and waits.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("serve");
        }
    }

    /// Stops the server, lets `meanwhile` do what someone with the server's
    /// disk would do to its data directory, and starts it again as a new
    /// process would (its state opened afresh) on the same port.
    pub async fn restart(&mut self, meanwhile: impl FnOnce(&std::path::Path)) {
        self.restart_with(meanwhile, |_| {}).await;
    }

    /// [`TestServer::restart`] with its settings (the config file) changed
    /// by `adjust`.
    pub async fn restart_with(
        &mut self,
        meanwhile: impl FnOnce(&std::path::Path),
        adjust: impl FnOnce(&mut Settings),
    ) {
        self.stop().await;
        meanwhile(self.dir.path());
        let mut settings = (*self.state().settings).clone();
        adjust(&mut settings);
        // The old state lets go of the database (its writer lock) first.
        self.state = None;
        let state = AppState::open(settings, self.clock.clone()).expect("reopen");
        self.state = Some(state);
        let addr = self
            .base
            .strip_prefix("https://")
            .expect("https")
            .to_owned();
        // tokio binds with SO_REUSEADDR: the port is free again at once.
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("the same port");
        let (stop, stopped) = oneshot::channel::<()>();
        self.task = Some(tokio::spawn(serve(
            listener,
            self.state().clone(),
            async move {
                let _ = stopped.await;
            },
        )));
        self.stop = Some(stop);
    }

    /// The server's shared state, as its handlers see it.
    pub fn state(&self) -> &AppState {
        self.state.as_ref().expect("a server's state")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Enrolls a device for `user` with `code` through `POST /v1/enroll`.
    pub async fn enroll(&self, user: &str, code: &str) -> Device {
        let (response, keys) = self.try_enroll(user, code).await;
        assert_eq!(response.status(), StatusCode::OK, "enroll {user}");
        let enrolled: EnrollResponse = response.json().await.expect("enroll body");
        Device {
            id: enrolled.device_id,
            user: user.to_owned(),
            signing: keys.0,
            secret: keys.1,
            server_key: enrolled.server_key,
            base: self.base.clone(),
            http: self.http.clone(),
            clock: self.clock.clone(),
        }
    }

    /// One enrollment attempt; returns the response and the keys it used.
    pub async fn try_enroll(
        &self,
        user: &str,
        code: &str,
    ) -> (reqwest::Response, (SigningSecretKey, DeviceSecretKey)) {
        let signing = SigningSecretKey::generate().expect("key");
        let secret = DeviceSecretKey::generate().expect("key");
        let device_public_key = URL_SAFE_NO_PAD.encode(secret.public_key().to_bytes());
        let proof = signing.sign(&enrollment_proof_message(user, code, &device_public_key));
        let request = EnrollRequest {
            user: user.to_owned(),
            code: code.to_owned(),
            device_name: format!("{user}-laptop"),
            device_public_key,
            signing_public_key: signing.public_key_b64(),
            proof: URL_SAFE_NO_PAD.encode(proof),
        };
        let response = self
            .http
            .post(self.url("/v1/enroll"))
            .json(&request)
            .send()
            .await
            .expect("send");
        (response, (signing, secret))
    }

    /// The bootstrap administrator's device. The first call also creates
    /// and enrolls the second administrator, `admin2` (the one action a lone
    /// administrator takes alone), who approves `admin`'s requests.
    pub async fn admin(&self) -> Device {
        let admin = self.enroll("admin", &self.admin_code.clone()).await;
        if self.approver.get().is_none() {
            let code = admin.create_user_now("admin2", &[Role::Admin], &[]).await;
            let admin2 = self.enroll("admin2", &code.code).await;
            let _ = self.approver.set(admin2);
        }
        admin
    }

    /// The second administrator (after `admin()`).
    pub fn approver(&self) -> &Device {
        self.approver.get().expect("admin() creates the approver")
    }

    /// Has the second administrator approve the request `filed` names, and
    /// returns the answer (expecting 200).
    pub async fn approve(&self, filed: &Value) -> Value {
        let id = filed["request"]["id"].as_str().expect("a request id");
        let hash = filed["request"]["action_hash"].clone();
        self.approver()
            .expect(
                Method::POST,
                &format!("/v1/admin/requests/{id}/approve"),
                Some(json!({ "action_hash": hash })),
                StatusCode::OK,
            )
            .await
    }

    /// Sends `method path body` as `requester`, which files a request
    /// (202), and has the second administrator approve it until it is done.
    /// Returns what filing and approving answered.
    pub async fn approved(
        &self,
        requester: &Device,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (Value, Value) {
        let filed = requester
            .expect(method, path, body, StatusCode::ACCEPTED)
            .await;
        let answer = self.approve(&filed).await;
        assert_eq!(answer["request"]["state"], "done", "{answer}");
        (filed, answer)
    }

    /// Creates a user through an approved request and returns their whole
    /// code: the requester's half, then the approver's.
    pub async fn create_user(
        &self,
        admin: &Device,
        name: &str,
        roles: &[Role],
        groups: &[&str],
    ) -> String {
        let request = CreateUserRequest {
            name: name.to_owned(),
            display_name: format!("{name} Example"),
            roles: roles.to_vec(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        };
        let (filed, approved) = self
            .approved(
                admin,
                Method::POST,
                "/v1/admin/users",
                Some(serde_json::to_value(request).unwrap()),
            )
            .await;
        format!(
            "{}-{}",
            filed["code_half"].as_str().expect("the requester's half"),
            approved["code_half"].as_str().expect("the approver's half")
        )
    }

    /// Lowers the take-out rules (export, copy, print) to none (approved
    /// by the second administrator), for tests about something other than
    /// approvals.
    pub async fn take_out_without_approval(&self, admin: &Device) {
        use irm_core::protocol::TakeOut;
        for how in [TakeOut::Export, TakeOut::Copy, TakeOut::Print] {
            self.approved(
                admin,
                Method::PUT,
                &format!("/v1/admin/approval-rules/{}", how.kind()),
                Some(json!({"required": 0})),
            )
            .await;
        }
    }

    /// A fresh code for `name` through an approved request: both halves.
    pub async fn new_code(&self, admin: &Device, name: &str) -> String {
        let (filed, approved) = self
            .approved(
                admin,
                Method::POST,
                &format!("/v1/admin/users/{name}/code"),
                None,
            )
            .await;
        format!(
            "{}-{}",
            filed["code_half"].as_str().expect("the requester's half"),
            approved["code_half"].as_str().expect("the approver's half")
        )
    }

    /// Creates a user (approved) and enrolls one device for them.
    pub async fn user(
        &self,
        admin: &Device,
        name: &str,
        roles: &[Role],
        groups: &[&str],
    ) -> Device {
        let code = self.create_user(admin, name, roles, groups).await;
        self.enroll(name, &code).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An enrolled device: its keys and a client that signs every request.
pub struct Device {
    pub id: String,
    pub user: String,
    pub signing: SigningSecretKey,
    pub secret: DeviceSecretKey,
    pub server_key: ServerKeyInfo,
    pub base: String,
    pub http: reqwest::Client,
    pub clock: Arc<ManualClock>,
}

impl Device {
    /// The whole audit log (up to 1,000 records), read as this device's user.
    pub async fn audit(&self) -> Vec<irm_core::protocol::AuditRecord> {
        let body = self
            .expect(
                Method::GET,
                "/v1/audit?after=0&limit=1000",
                None,
                StatusCode::OK,
            )
            .await;
        serde_json::from_value(body).expect("audit records")
    }

    /// The Authorization header for a request signed now.
    pub fn authorization(&self, method: &str, path: &str, body: &[u8]) -> String {
        RequestSignature::sign(
            &self.signing,
            &self.id,
            method,
            path,
            self.clock.now_secs(),
            body,
        )
        .expect("sign")
        .to_header_value()
    }

    /// Sends a signed request with a raw body (JSON content type when non-empty).
    pub async fn send_raw(&self, method: Method, path: &str, body: Vec<u8>) -> reqwest::Response {
        let auth = self.authorization(method.as_str(), path, &body);
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("authorization", auth);
        if !body.is_empty() {
            request = request.header("content-type", "application/json");
        }
        request.body(body).send().await.expect("send")
    }

    /// Sends a signed request with an optional JSON body.
    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> reqwest::Response {
        let bytes = body
            .map(|b| serde_json::to_vec(&b).expect("json"))
            .unwrap_or_default();
        self.send_raw(method, path, bytes).await
    }

    /// Sends and expects `status`; returns the body as JSON (Null when empty).
    pub async fn expect(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        status: StatusCode,
    ) -> Value {
        let response = self.send(method.clone(), path, body).await;
        let got = response.status();
        let text = response.text().await.expect("body");
        assert_eq!(got, status, "{method} {path} as {}: {text}", self.user);
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        }
    }

    /// `POST /v1/admin/users` answered at once (200): only a new server's
    /// second administrator is created so.
    pub async fn create_user_now(
        &self,
        name: &str,
        roles: &[Role],
        groups: &[&str],
    ) -> EnrollmentCode {
        let request = CreateUserRequest {
            name: name.to_owned(),
            display_name: format!("{name} Example"),
            roles: roles.to_vec(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        };
        let body = self
            .expect(
                Method::POST,
                "/v1/admin/users",
                Some(serde_json::to_value(request).unwrap()),
                StatusCode::OK,
            )
            .await;
        serde_json::from_value(body).expect("code")
    }

    pub async fn create_group(&self, name: &str) {
        self.expect(
            Method::POST,
            "/v1/admin/groups",
            Some(json!({"name": name})),
            StatusCode::NO_CONTENT,
        )
        .await;
    }

    /// `POST /v1/grant` with these header bytes.
    pub async fn grant_raw(&self, header: &[u8], renew: bool) -> reqwest::Response {
        let body = json!({"header": URL_SAFE_NO_PAD.encode(header), "renew": renew});
        self.send(Method::POST, "/v1/grant", Some(body)).await
    }

    /// A grant that must succeed; the wrapped key is unwrapped and checked
    /// against the file's content key, as a client would.
    pub async fn grant_ok(&self, file: &SealedFile, renew: bool) -> GrantResponse {
        let response = self.grant_raw(&file.header_bytes, renew).await;
        let status = response.status();
        let text = response.text().await.expect("body");
        assert_eq!(status, StatusCode::OK, "grant for {}: {text}", self.user);
        let grant: GrantResponse = serde_json::from_str(&text).expect("grant body");
        self.verify_grant(file, grant)
    }

    /// Checks a grant as a client would: its wrapped key unwraps with this
    /// device's key to the file's content key. Returns the grant.
    pub fn verify_grant(&self, file: &SealedFile, grant: GrantResponse) -> GrantResponse {
        let wire = URL_SAFE_NO_PAD.decode(&grant.wrapped_key).expect("b64");
        assert_eq!(wire.len(), 80);
        let wrapped = DeviceWrappedKey {
            ephemeral_public: wire[..32].try_into().unwrap(),
            ciphertext: wire[32..].try_into().unwrap(),
        };
        let mut device_id = [0u8; 16];
        hex::decode_to_slice(&self.id, &mut device_id).unwrap();
        let context = RewrapContext {
            file_id: file.file_id,
            header_hash: file.header_hash,
            device_id,
            lease_expires_at_unix: grant.lease_expires_at,
        };
        let key = self
            .secret
            .unwrap_grant(&wrapped, &context)
            .expect("unwrap grant");
        assert_eq!(
            key.expose_secret(),
            &file.content_key,
            "the granted key is the file's key"
        );
        grant
    }

    /// A grant that must be refused with `reason` (HTTP 403).
    pub async fn grant_denied(&self, file: &SealedFile, renew: bool) -> String {
        let response = self.grant_raw(&file.header_bytes, renew).await;
        let status = response.status();
        let body: Value = response.json().await.expect("deny body");
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        body["reason"].as_str().expect("reason").to_owned()
    }
}

/// A sealed file's header, as a client holds it.
pub struct SealedFile {
    pub header_bytes: Vec<u8>,
    pub file_id: FileId,
    pub header_hash: HeaderHash,
    pub content_key: [u8; 32],
}

impl SealedFile {
    pub fn id(&self) -> String {
        self.file_id.to_string()
    }
}

/// A policy giving `rights` to `recipients` (`alice`, `@group`).
pub fn policy(
    recipients: &[&str],
    rights: Rights,
    not_before: Option<u64>,
    not_after: Option<u64>,
) -> Policy {
    Policy::builder()
        .grant(PolicyGrant {
            recipients: recipients
                .iter()
                .map(|r| Recipient::parse(r).unwrap())
                .collect(),
            rights,
        })
        .not_before(not_before)
        .not_after(not_after)
        .max_lease_secs(600)
        .build()
        .expect("policy")
}

/// Seals a header to the server key `key` (as `ServerKeyInfo.public_key`).
pub fn seal(key: &str, policy: Policy) -> SealedFile {
    seal_to(&[KasPublicKey::from_text(key).expect("kas key")], policy)
}

/// Seals a header to several key server keys.
pub fn seal_to(keys: &[KasPublicKey], policy: Policy) -> SealedFile {
    let mut builder = EnvelopeBuilder::new(policy);
    for key in keys {
        builder = builder.key_server("https://127.0.0.1:8443", *key);
    }
    let verified: VerifiedHeader = builder.build().expect("build");
    SealedFile {
        header_bytes: verified.header().to_bytes(),
        file_id: verified.header().file_id(),
        header_hash: *verified.header().hash(),
        content_key: *verified.content_key().expose_secret(),
    }
}

/// Polls `done` until it holds or `limit` passes.
pub async fn eventually(limit: std::time::Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while !done() {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    true
}

/// PostgreSQL databases for tests.
pub mod pg {
    use irm_key_server::store::DatabaseUrl;

    /// The variable naming the server tests create their databases on.
    pub const ADMIN_URL_VAR: &str = "IRM_TEST_DATABASE_URL";

    /// The connection string of a role that may create databases.
    pub fn admin_url() -> String {
        match std::env::var(ADMIN_URL_VAR) {
            Ok(url) if !url.is_empty() => url,
            _ => panic!(
                "{ADMIN_URL_VAR} is not set. Every store test also runs on PostgreSQL: \
                 run scripts/test, which starts a throw-away cluster and sets it, or set it to a \
                 role that may create databases, for example \
                 postgresql://postgres@127.0.0.1:5432/postgres."
            ),
        }
    }

    /// Runs `sql` as the admin role. On a thread of its own: a
    /// `postgres::Client` must neither block nor be dropped on an async
    /// test's thread.
    pub fn admin(sql: &str) -> Result<(), String> {
        let url = admin_url();
        let sql = sql.to_owned();
        std::thread::spawn(move || -> Result<(), String> {
            let mut client = postgres::Client::connect(&url, postgres::NoTls)
                .map_err(|e| format!("connecting to {ADMIN_URL_VAR}: {e}"))?;
            client
                .batch_execute(&sql)
                .map_err(|e| match e.as_db_error() {
                    Some(db) => format!("{sql}: {}", db.message()),
                    None => format!("{sql}: {e}"),
                })
        })
        .join()
        .map_err(|_| "the PostgreSQL admin thread panicked".to_owned())?
    }

    /// Runs `work` with a client on `url`, on a thread of its own.
    pub fn with_client<T: Send + 'static>(
        url: &DatabaseUrl,
        work: impl FnOnce(&mut postgres::Client) -> T + Send + 'static,
    ) -> T {
        let url = url.expose().to_owned();
        std::thread::spawn(move || {
            let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
            work(&mut client)
        })
        .join()
        .expect("the PostgreSQL client thread panicked")
    }

    /// `base` (a URL or `key=value` pairs) pointing at database `dbname`.
    pub fn url_with_dbname(base: &str, dbname: &str) -> String {
        for scheme in ["postgresql://", "postgres://"] {
            if let Some(rest) = base.strip_prefix(scheme) {
                let (path, query) = match rest.split_once('?') {
                    Some((path, query)) => (path, format!("?{query}")),
                    None => (rest, String::new()),
                };
                let authority = path.split('/').next().unwrap_or_default();
                return format!("{scheme}{authority}/{dbname}{query}");
            }
        }
        format!("{base} dbname={dbname}")
    }

    /// The connection string of `url` (the same server and database) for
    /// `role` instead of its user (the test cluster trusts local roles).
    pub fn url_as(url: &DatabaseUrl, role: &str) -> DatabaseUrl {
        let config: postgres::Config = url.expose().parse().expect("a connection string");
        let host = match config.get_hosts().first() {
            Some(postgres::config::Host::Tcp(host)) => host.clone(),
            Some(postgres::config::Host::Unix(path)) => path.display().to_string(),
            None => "localhost".to_owned(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let dbname = config.get_dbname().expect("a database name");
        DatabaseUrl::new(format!(
            "host={host} port={port} user={role} dbname={dbname}"
        ))
    }

    /// A login role created for one test and dropped after it (after the
    /// databases it has privileges in: declare it before them).
    pub struct TestRole {
        pub name: String,
    }

    impl TestRole {
        pub fn create() -> Self {
            let mut suffix = [0u8; 8];
            getrandom::fill(&mut suffix).expect("random");
            let name = format!("irm_role_{}", hex::encode(suffix));
            admin(&format!("CREATE ROLE {name} LOGIN")).expect("creating a test role");
            Self { name }
        }
    }

    impl Drop for TestRole {
        fn drop(&mut self) {
            if let Err(e) = admin(&format!("DROP ROLE IF EXISTS {}", self.name)) {
                eprintln!("could not drop the test role: {e}");
            }
        }
    }

    /// A database created for one test and dropped with it.
    pub struct TestDatabase {
        pub name: String,
        pub url: DatabaseUrl,
    }

    impl TestDatabase {
        /// A new, empty database with a random name.
        pub fn create() -> Self {
            let mut suffix = [0u8; 8];
            getrandom::fill(&mut suffix).expect("random");
            let name = format!("irm_test_{}", hex::encode(suffix));
            admin(&format!("CREATE DATABASE {name}")).expect("creating the test database");
            let url = DatabaseUrl::new(url_with_dbname(&admin_url(), &name));
            Self { name, url }
        }

        /// A copy of this database (every session on it is ended first:
        /// PostgreSQL copies only a database nobody is connected to).
        pub fn copy(&self, tag: &str) -> Self {
            let name = format!("{}_{}", self.name, tag.replace('-', "_"));
            admin(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = '{}' AND pid <> pg_backend_pid()",
                self.name
            ))
            .expect("ending the sessions on the test database");
            // On its own: CREATE DATABASE cannot run inside a transaction
            // block, which several statements in one query would be.
            admin(&format!("CREATE DATABASE {name} TEMPLATE {}", self.name))
                .expect("copying the test database");
            let url = DatabaseUrl::new(url_with_dbname(&admin_url(), &name));
            Self { name, url }
        }
    }

    impl Drop for TestDatabase {
        fn drop(&mut self) {
            // FORCE: the server under test may still hold connections.
            if let Err(e) = admin(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )) {
                eprintln!("could not drop the test database: {e}");
            }
        }
    }
}
