//! The client library (`irm-client`) against the real key server, as the
//! viewer and the FFI use it: enrollment, grants with a monotonic lease,
//! renewal, usage events, administration, and how refusals surface.

use irm_client::{ClientError, Enrollment, Passphrase, Session};
use irm_core::protocol::{CreateUserRequest, DenyReason, Role, UsageAction};
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
    let server = Server::start();
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
        .report_event(&grant, UsageAction::Print, Some("printer-3F"))
        .expect("printing is within the grant");
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
