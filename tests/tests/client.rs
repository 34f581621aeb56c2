//! The client library (`irm-client`) against the real key server, as the
//! viewer and the FFI use it: enrollment, grants with a monotonic lease,
//! renewal, usage events, administration, and how refusals surface.

use irm_client::{ClientError, Enrollment, Passphrase, Session, WatchSignal};
use irm_core::protocol::{CreateUserRequest, DenyReason, Role, UsageAction, WatchSubject};
use irm_core::{Opener, Rights, SealedHeader, StreamOptions};
use irm_e2e::stage::AdminSessions;
use irm_e2e::{ADMIN, Server, seal_directly};
use tempfile::TempDir;

const DATA: &[u8] = b"customer,phone\nYamada Taro,03-1234-5678\n";

fn enroll(server: &Server, dir: &TempDir, user: &str, code: &str) -> Session {
    let ca_pem = std::fs::read_to_string(&server.ca_pem).expect("the CA certificate");
    Enrollment {
        config_dir: dir.path().join("irm"),
        server_url: server.url.clone(),
        ca_pem,
        user: user.to_owned(),
        code: code.to_owned(),
        device_name: format!("{user}-pc"),
        replace: false,
    }
    .run(&Passphrase::new(format!("{user} passphrase")).expect("a passphrase"))
    .expect("enrollment succeeds")
}

/// The server, the administrators' sessions and alice's session.
fn stage() -> (Server, AdminSessions, TempDir, Session) {
    stage_on(Server::start())
}

/// [`stage`] on `server`.
fn stage_on(server: Server) -> (Server, AdminSessions, TempDir, Session) {
    let admins = AdminSessions::enroll(&server);
    let code = admins.add_user(&CreateUserRequest {
        name: "alice".into(),
        display_name: "Alice Example".into(),
        roles: vec![Role::User],
        groups: vec![],
    });
    let alice_dir = TempDir::new().expect("a directory");
    let alice = enroll(&server, &alice_dir, "alice", &code);
    (server, admins, alice_dir, alice)
}

fn sealed_for_alice(server: &Server, session: &Session, rights: Rights) -> Vec<u8> {
    let (info, _) = session.server_key().expect("the server key");
    seal_directly(server, &info.url, "alice", rights, None, None, DATA)
}

#[test]
fn a_grant_opens_the_file_renews_and_reports_usage() {
    let (server, admins, alice_dir, alice) = stage();
    let admin = &admins.admin;
    let sealed = sealed_for_alice(&server, admin, Rights::VIEW | Rights::PRINT);
    let mut input = &sealed[..];
    let header = SealedHeader::read_from(&mut input).expect("a header");

    let mut grant = alice.grant(&header, false).expect("alice is granted");
    assert!(grant.is_live());
    assert_eq!(grant.rights(), Rights::VIEW | Rights::PRINT);
    assert_eq!(grant.user(), "alice");
    assert!(grant.watermark_required());
    assert!(grant.time_left() <= grant.lease());
    assert!(grant.renew_due() < std::time::Instant::now() + grant.lease());
    let mut plain = Vec::new();
    std::io::Read::read_to_end(
        &mut Opener::new(
            grant.verified_header().expect("the lease holds"),
            input,
            StreamOptions::default(),
        ),
        &mut plain,
    )
    .expect("the file decrypts");
    assert_eq!(plain, DATA);

    alice
        .report_rows(&grant, UsageAction::Print, 1, Some("printer-3F"))
        .expect("printing a row is within the grant");
    // Printing an untold number of rows is a take-out, which on a new
    // server two administrators approve first (PROTOCOL.md §7.3).
    let refused = alice
        .report_event(&grant, UsageAction::Print, Some("printer-3F"))
        .expect_err("a bulk print needs approval");
    assert!(
        matches!(
            refused,
            ClientError::Denied(DenyReason::ExportApprovalRequired, _)
        ),
        "{refused:?}"
    );
    let first = grant.grant_id().to_owned();
    alice.renew(&mut grant).expect("the grant renews");
    assert!(grant.is_live());
    assert_ne!(grant.grant_id(), first, "a renewal is a new, audited grant");
    let err = alice
        .report_event(&grant, UsageAction::Export, None)
        .expect_err("export is not granted");
    assert_eq!(err.deny_reason(), Some(DenyReason::RightNotGranted));
    alice
        .report_event(&grant, UsageAction::Close, None)
        .expect("closing is always allowed");

    // The session unlocks again from disk in a later process.
    let again = Session::unlock(
        &alice_dir.path().join("irm"),
        &Passphrase::new("alice passphrase").expect("a passphrase"),
    )
    .expect("the credentials unlock");
    assert_eq!(again.device_id(), alice.device_id());
}

#[test]
fn a_revocation_stops_the_next_renewal_but_not_the_lease_in_hand() {
    let (server, admins, _b, alice) = stage();
    let admin = &admins.admin;
    let sealed = sealed_for_alice(&server, admin, Rights::VIEW);
    let header = SealedHeader::read_from(&mut &sealed[..]).expect("a header");
    let mut grant = alice.grant(&header, false).expect("alice is granted");

    admin
        .revoke_file(&header.file_id().to_string())
        .expect("the admin revokes the file");
    let err = alice.renew(&mut grant).expect_err("the renewal is refused");
    assert!(
        matches!(err, ClientError::Denied(DenyReason::FileRevoked, _)),
        "{err:?}"
    );
    // PROTOCOL.md §4.2: a lease already handed out runs to its end.
    assert!(grant.is_live());
    assert!(grant.verified_header().is_ok());
    let err = alice
        .grant(&header, false)
        .expect_err("a new grant is refused");
    assert_eq!(err.deny_reason(), Some(DenyReason::FileRevoked));
}

#[test]
fn files_registered_online_are_listed_for_administrators() {
    let (server, admins, _b, alice) = stage();
    let admin = &admins.admin;
    let sealed = sealed_for_alice(&server, admin, Rights::VIEW);
    let header = SealedHeader::read_from(&mut &sealed[..]).expect("a header");
    let info = admin
        .register_file(&header, Some("customers.csv"))
        .expect("the file registers");
    assert_eq!(info.file_id, header.file_id().to_string());
    assert_eq!(info.owner.as_deref(), Some(ADMIN));
    let files = admin.list_files().expect("files list");
    assert!(
        files
            .iter()
            .any(|f| f.file_name.as_deref() == Some("customers.csv"))
    );
    let err = alice.list_files().expect_err("alice is no admin");
    assert_eq!(err.deny_reason(), Some(DenyReason::RoleRequired));
}

/// PROTOCOL.md §9.2: every grant carries the server's newest signed audit
/// checkpoint and the device keeps the newest it saw. Someone with the
/// server's disk restores an older backup (hiding what happened since): the
/// next grant still works, and says the log went back; the device's witness
/// file makes `irm-key-server audit verify` fail on the restored server.
#[test]
fn a_device_notices_when_the_server_is_rolled_back_to_an_older_backup() {
    let (mut server, admins, alice_dir, alice) = stage();
    let sealed = sealed_for_alice(&server, &alice, Rights::VIEW);
    let header = SealedHeader::read_from(&mut sealed.as_slice()).expect("a header");
    let grant = alice.grant(&header, false).expect("a grant");
    assert_eq!(grant.witness_alarm(), None);
    let first = irm_client::witnessed(alice.config_dir())
        .expect("a readable witness")
        .expect("the grant's checkpoint was kept");
    let audit_key = std::fs::read_to_string(server.data_dir().join("audit-signing.pub"))
        .expect("the audit public key");
    let audit_key = irm_core::audit::AuditPublicKey::from_text(audit_key.trim()).expect("a key");
    assert!(irm_core::audit::checkpoint_signature_holds(
        &first,
        &audit_key.0
    ));

    // A backup taken now, while the server is stopped.
    let backup = TempDir::new().expect("a directory");
    server.restart(|data| copy_dir(data, backup.path()));
    // Then life goes on: a checkpoint past the backup, carried by a grant.
    admins.admin.audit_checkpoint().expect("a checkpoint");
    let grant = alice.grant(&header, false).expect("a grant");
    assert_eq!(grant.witness_alarm(), None);
    let newer = irm_client::witnessed(alice.config_dir()).unwrap().unwrap();
    assert!(
        newer.count > first.count,
        "{} > {}",
        newer.count,
        first.count
    );

    // The backup restored over the data directory.
    server.restart(|data| {
        std::fs::remove_dir_all(data).expect("the data directory goes");
        copy_dir(backup.path(), data);
    });
    let grant = alice
        .grant(&header, false)
        .expect("the grant itself is fine");
    let alarm = grant.witness_alarm().expect("the device saw a newer log");
    assert!(
        matches!(alarm, irm_client::WitnessAlarm::WentBack { held, .. } if *held == newer.count),
        "{alarm:?}"
    );
    assert!(alarm.to_string().contains("went back"), "{alarm}");
    // The evidence stays on the device.
    assert_eq!(
        irm_client::witnessed(alice.config_dir()).unwrap(),
        Some(newer.clone())
    );
    // The CLI says so too, in `irm info` (JSON `audit_alarm`).
    let info = irm_info(&alice_dir, &alice, &sealed);
    assert!(info.status.success(), "{info:?}");
    let report: serde_json::Value = serde_json::from_slice(&info.stdout).expect("JSON");
    let alarm = report["audit_alarm"].as_str().unwrap_or_default();
    assert!(
        alarm.contains("went back") && alarm.contains(&newer.count.to_string()),
        "{report}"
    );

    let witness = alice_dir.path().join("irm").join(irm_client::WITNESS_FILE);
    let verify = |witness: Option<&std::path::Path>| {
        let mut command = std::process::Command::new(irm_e2e::key_server_binary());
        command
            .args(["audit", "verify", "--data-dir"])
            .arg(server.data_dir());
        if let Some(witness) = witness {
            command.arg("--witness").arg(witness);
        }
        command.output().expect("audit verify runs")
    };
    let alone = verify(None);
    assert!(alone.status.success(), "{alone:?}");
    let witnessed = verify(Some(&witness));
    assert_eq!(witnessed.status.code(), Some(1), "{witnessed:?}");
    let report = String::from_utf8_lossy(&witnessed.stdout);
    // Cut back, or grown again past the cut with other records: either way
    // it is not the log the device saw signed.
    assert!(
        report.contains("the log was truncated") || report.contains("the chain was rewritten"),
        "{report}"
    );
}

/// `irm info --json` as alice on `sealed`, written into her directory.
fn irm_info(alice_dir: &TempDir, alice: &Session, sealed: &[u8]) -> std::process::Output {
    let sealed_path = alice_dir.path().join("customers.csv.irm");
    std::fs::write(&sealed_path, sealed).expect("the sealed file");
    std::process::Command::new(irm_e2e::irm_binary())
        .args(["info", "--json"])
        .arg(&sealed_path)
        .env("IRM_CONFIG_DIR", alice.config_dir())
        .env("IRM_PASSPHRASE", "alice passphrase")
        .output()
        .expect("irm runs")
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("a directory");
    for entry in std::fs::read_dir(from).expect("a directory") {
        let entry = entry.expect("an entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("a copy");
        }
    }
}

/// PROTOCOL.md §11.2 through the real client and CLI: once the root key is
/// split between the two administrators, a restarted server refuses alice
/// with `server_sealed` in every front end (the client's reason, the CLI's
/// exit code 3) until both holders unseal it from their own devices; alice,
/// who holds no share, is told so.
#[test]
fn a_sealed_server_refuses_with_server_sealed_until_its_holders_unseal_it() {
    let (mut server, admins, alice_dir, alice) = stage();
    let sealed = sealed_for_alice(&server, &alice, Rights::VIEW);
    let header = SealedHeader::read_from(&mut sealed.as_slice()).expect("a header");
    alice.grant(&header, false).expect("a grant before");

    let filed = admins
        .admin
        .reissue_shares(2, &["admin".to_owned(), "admin2".to_owned()])
        .expect("the reissue is filed");
    let (_, done) = admins
        .approver
        .approve_request(&filed.request.id, Some(&filed.request.action_hash), None)
        .expect("the second administrator approves");
    assert_eq!(done.request.state, irm_core::protocol::RequestState::Done);
    let status = admins.admin.unseal_status().expect("a status");
    assert!(!status.sealed && status.share.is_some());
    assert!(matches!(
        admins.admin.unseal().expect("nothing to do"),
        irm_client::Unsealing::NotSealed(_)
    ));

    server.restart(|_| {});
    let refused = alice.grant(&header, false).expect_err("sealed");
    assert_eq!(
        refused.deny_reason(),
        Some(DenyReason::ServerSealed),
        "{refused}"
    );
    let info = irm_info(&alice_dir, &alice, &sealed);
    assert_eq!(info.status.code(), Some(3), "{info:?}");
    let report: serde_json::Value = serde_json::from_slice(&info.stdout).expect("JSON");
    assert_eq!(report["reason"], "server_sealed", "{report}");
    // Alice holds no share: she is told so, and nothing is sent.
    let err = alice.unseal().expect_err("no share");
    assert!(err.to_string().contains("holds no share"), "{err}");

    let first = admins.admin.unseal().expect("the first share");
    let irm_client::Unsealing::Submitted(first) = first else {
        panic!("the server was sealed")
    };
    assert!(first.sealed);
    assert_eq!(first.submitted, ["admin"]);
    assert_eq!(
        alice
            .grant(&header, false)
            .expect_err("still sealed")
            .deny_reason(),
        Some(DenyReason::ServerSealed)
    );
    let second = admins.approver.unseal().expect("the second share");
    assert!(matches!(second, irm_client::Unsealing::Submitted(s) if !s.sealed));
    alice.grant(&header, false).expect("serving again");
}

/// Waits for the next push-channel signal (a generous bound: a failure,
/// not a timing check).
fn signalled(signals: &std::sync::mpsc::Receiver<WatchSignal>) -> WatchSignal {
    signals
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("a push-channel signal")
}

#[test]
fn the_push_channel_tells_an_open_document_of_each_change_its_grant_rests_on() {
    let (server, admins, _b, alice) = stage();
    let admin = &admins.admin;
    let sealed = sealed_for_alice(&server, admin, Rights::VIEW | Rights::COPY);
    let other = sealed_for_alice(&server, admin, Rights::VIEW);
    let header = SealedHeader::read_from(&mut &sealed[..]).expect("a header");
    let other = SealedHeader::read_from(&mut &other[..]).expect("a header");
    let mut grant = alice.grant(&header, false).expect("alice is granted");
    let (tx, signals) = std::sync::mpsc::channel();
    let watch = alice
        .watch(&grant, move |signal| {
            let _ = tx.send(signal);
        })
        .expect("the channel starts");

    // Another file's revocation is not this document's business; the
    // restriction of this one is, and the next signal is about it.
    admin
        .revoke_file(&other.file_id().to_string())
        .expect("the admin revokes the other file");
    // Idle for longer than one read waits: a quiet stream is not a lost
    // one (the heartbeat keeps it alive), so nothing is signalled.
    assert_eq!(
        signals
            .recv_timeout(std::time::Duration::from_millis(2500))
            .ok(),
        None
    );
    let started = std::time::Instant::now();
    admin
        .restrict_file(&header.file_id().to_string(), Rights::COPY)
        .expect("the admin restricts this file");
    assert_eq!(
        signalled(&signals),
        WatchSignal::Recheck(WatchSubject::File)
    );
    let took = started.elapsed();
    // The renewal the signal asks for carries the narrowed rights.
    alice.renew(&mut grant).expect("still granted, narrower");
    assert_eq!(grant.rights(), Rights::VIEW);

    // A suspension is about the person.
    admin.suspend_user("alice").expect("alice is suspended");
    assert_eq!(
        signalled(&signals),
        WatchSignal::Recheck(WatchSubject::User)
    );
    let err = alice.renew(&mut grant).expect_err("the renewal is refused");
    assert_eq!(err.deny_reason(), Some(DenyReason::UserSuspended));
    drop(watch);
    println!("client crate: signalled {took:?} after the change");
}

#[test]
fn without_the_push_channel_the_lease_still_ends_the_document() {
    // 0 streams allowed: the channel is off and the device keeps to its lease.
    let (server, admins, _b, alice) = stage_on(Server::start_with(|s| s.max_watchers = 0));
    let admin = &admins.admin;
    let (info, _) = alice.server_key().expect("the server key");
    let policy = irm_core::Policy::builder()
        .grant(irm_core::PolicyGrant {
            recipients: [irm_core::Recipient::parse("alice").expect("a recipient")].into(),
            rights: Rights::VIEW,
        })
        .max_lease_secs(2)
        .build()
        .expect("a policy");
    let header = irm_core::EnvelopeBuilder::new(policy)
        .key_server(&info.url, server.current_key())
        .build()
        .expect("a header");
    let header = header.header().clone();
    let grant = alice.grant(&header, false).expect("alice is granted");
    let (tx, signals) = std::sync::mpsc::channel();
    let _watch = alice
        .watch(&grant, move |signal| {
            let _ = tx.send(signal);
        })
        .expect("the thread starts");
    admin
        .revoke_file(&header.file_id().to_string())
        .expect("the admin revokes the file");
    // No stream, so no signal; the lease (2 s) ends the grant by itself.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while grant.is_live() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(matches!(
        grant.verified_header(),
        Err(ClientError::LeaseExpired)
    ));
    assert!(
        signals.try_recv().is_err(),
        "a refused stream tells nothing"
    );
}
