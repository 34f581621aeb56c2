//! The viewer's stage: a key server with the administrator and alice
//! enrolled through `irm_client` (no CLI), and files sealed for alice with
//! chosen rights. The viewer tests (`viewer_ui.rs`, `viewer_disk.rs`) say
//! what the viewer should do on it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use irm_client::{Enrollment, Passphrase, Session, UserAdded};
use irm_core::protocol::{CreateUserRequest, Role};
use irm_core::{EnvelopeBuilder, Policy, PolicyGrant, Recipient, Rights, Sealer, StreamOptions};
use tempfile::TempDir;

use crate::{ADMIN, Server};

/// alice's passphrase on her computer.
pub const ALICE_PASSPHRASE: &str = "alice passphrase";

/// The two administrators' unlocked sessions: `admin`, enrolled with the
/// bootstrap code, and `admin2`, whom `admin` creates alone (the one
/// action a lone administrator may take, PROTOCOL.md §7.2) and who
/// approves `admin`'s requests.
pub struct AdminSessions {
    /// The bootstrap administrator.
    pub admin: Session,
    /// The second administrator.
    pub approver: Session,
    _dirs: [TempDir; 2],
}

impl AdminSessions {
    /// Enrolls both on `server`.
    pub fn enroll(server: &Server) -> Self {
        let admin_dir = TempDir::new().expect("a directory");
        let admin = enroll(
            server,
            &admin_dir.path().join("irm"),
            ADMIN,
            &server.admin_code,
            "admin passphrase",
        );
        let created = admin
            .add_user(&CreateUserRequest {
                name: "admin2".into(),
                display_name: "admin2".into(),
                roles: vec![Role::Admin],
                groups: vec![],
            })
            .expect("the bootstrap administrator adds the second");
        let UserAdded::Created(code) = created else {
            panic!("the second administrator is created at once: {created:?}")
        };
        let approver_dir = TempDir::new().expect("a directory");
        let approver = enroll(
            server,
            &approver_dir.path().join("irm"),
            "admin2",
            &code.code,
            "admin2 passphrase",
        );
        Self {
            admin,
            approver,
            _dirs: [admin_dir, approver_dir],
        }
    }

    /// Lowers the take-out rules (export, copy, print) to none (filed by `admin`, approved by
    /// `admin2`), for tests about something other than approvals.
    pub fn take_out_without_approval(&self) {
        use irm_core::protocol::TakeOut;
        for how in [TakeOut::Export, TakeOut::Copy, TakeOut::Print] {
            let filed = self
                .admin
                .set_approval_rule(how.kind(), 0)
                .expect("the admin files the rule");
            self.approver
                .approve_request(&filed.request.id, Some(&filed.request.action_hash), None)
                .expect("the second administrator approves");
        }
    }

    /// Adds a person (filed by `admin`, approved by `admin2`) and returns
    /// their whole one-time enrollment code: the requester's half, then the
    /// approver's.
    pub fn add_user(&self, request: &CreateUserRequest) -> String {
        let filed = self.admin.add_user(request).expect("the admin adds a user");
        let UserAdded::Filed(filed) = filed else {
            panic!("adding a user is filed for approval: {filed:?}")
        };
        let (_, approved) = self
            .approver
            .approve_request(&filed.request.id, Some(&filed.request.action_hash), None)
            .expect("the second administrator approves");
        format!(
            "{}-{}",
            filed.code_half.expect("the requester's half"),
            approved.code_half.expect("the approver's half")
        )
    }
}

/// A running key server, its administrators' sessions, and alice enrolled
/// in her own home directory (`alice_home()/irm` holds her credentials).
pub struct Stage {
    /// The key server.
    pub server: Server,
    /// The administrators.
    pub admins: AdminSessions,
    alice_home: TempDir,
}

impl Stage {
    /// Starts the server and enrolls the administrators and alice.
    pub fn new() -> Self {
        let server = Server::start();
        let stage = Self {
            admins: AdminSessions::enroll(&server),
            server,
            alice_home: TempDir::new().expect("a directory"),
        };
        let code = stage.add_user("alice");
        drop(enroll(
            &stage.server,
            &stage.alice_config_dir(),
            "alice",
            &code,
            ALICE_PASSPHRASE,
        ));
        stage
    }

    /// Adds a user and returns their whole one-time enrollment code.
    pub fn add_user(&self, name: &str) -> String {
        self.admins.add_user(&CreateUserRequest {
            name: name.into(),
            display_name: name.into(),
            roles: vec![Role::User],
            groups: vec![],
        })
    }

    /// alice's home directory (scratch space of her computer).
    pub fn alice_home(&self) -> &Path {
        self.alice_home.path()
    }

    /// alice's credentials directory.
    pub fn alice_config_dir(&self) -> PathBuf {
        self.alice_home.path().join("irm")
    }

    /// alice's passphrase.
    pub fn alice_passphrase() -> Passphrase {
        Passphrase::new(ALICE_PASSPHRASE).expect("a passphrase")
    }

    /// Seals `plaintext` for alice with `rights` (10-minute lease) into
    /// `alice_home()/name`; returns the path and the file id (hex).
    pub fn seal_for_alice(
        &self,
        name: &str,
        rights: Rights,
        plaintext: &[u8],
    ) -> (PathBuf, String) {
        self.seal_for("alice", name, rights, plaintext)
    }

    /// Seals `plaintext` for `recipient` with `rights` (10-minute lease)
    /// into `alice_home()/name`; returns the path and the file id (hex).
    pub fn seal_for(
        &self,
        recipient: &str,
        name: &str,
        rights: Rights,
        plaintext: &[u8],
    ) -> (PathBuf, String) {
        self.seal_with(name, policy_for(recipient, rights), plaintext)
    }

    /// Seals `plaintext` under `policy` (see [`policy_for`]) into
    /// `alice_home()/name`; returns the path and the file id (hex).
    pub fn seal_with(&self, name: &str, policy: Policy, plaintext: &[u8]) -> (PathBuf, String) {
        let (info, kas) = self.admins.admin.server_key().expect("the server key");
        let header = EnvelopeBuilder::new(policy)
            .key_server(&info.url, kas)
            .build()
            .expect("a header");
        let file_id = header.header().file_id().to_string();
        let mut sealer =
            Sealer::new(&header, Vec::new(), StreamOptions::default()).expect("a sealer");
        std::io::Write::write_all(&mut sealer, plaintext).expect("sealing");
        let path = self.alice_home.path().join(name);
        std::fs::write(&path, sealer.finish().expect("sealed")).expect("writing the sealed file");
        (path, file_id)
    }

    /// Whether the audit log has an `ok` record of `action` (such as
    /// `event.print`) by `user` on `file_id`.
    pub fn audited(&self, action: &str, user: &str, file_id: &str) -> bool {
        self.admins
            .admin
            .audit_records(None, Some(1000))
            .expect("the admin reads the audit log")
            .iter()
            .any(|r| {
                r.action == action
                    && r.result == "ok"
                    && r.actor_user.as_deref() == Some(user)
                    && r.file_id.as_deref() == Some(file_id)
            })
    }
}

impl Default for Stage {
    fn default() -> Self {
        Self::new()
    }
}

/// A policy giving `recipient` `rights`, with a 10-minute lease, the
/// watermark required and no expiry; a test changes its public fields
/// (`max_lease_secs`, `not_after_unix`, `watermark_required`) before sealing.
pub fn policy_for(recipient: &str, rights: Rights) -> Policy {
    Policy::builder()
        .grant(PolicyGrant {
            recipients: BTreeSet::from([Recipient::parse(recipient).expect("a recipient")]),
            rights,
        })
        .max_lease_secs(600)
        .build()
        .expect("a policy")
}

/// Enrolls `user` into `config_dir` with `code`.
pub fn enroll(
    server: &Server,
    config_dir: &Path,
    user: &str,
    code: &str,
    passphrase: &str,
) -> Session {
    Enrollment {
        config_dir: config_dir.to_owned(),
        server_url: server.url.clone(),
        ca_pem: std::fs::read_to_string(&server.ca_pem).expect("the CA certificate"),
        user: user.to_owned(),
        code: code.to_owned(),
        device_name: format!("{user}-pc"),
        replace: false,
    }
    .run(&Passphrase::new(passphrase).expect("a passphrase"))
    .expect("enrollment succeeds")
}

/// Polls `done` until it holds or `limit` passes; the sleep is back-off
/// between polls, never what makes a test pass (STYLE.md §10).
pub fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}
