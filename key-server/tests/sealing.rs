//! Server keys sealed at rest (PROTOCOL.md §11.2), against the real server:
//! a new server's bootstrap mode, shares reissued to holders by an approved
//! request, a restart that leaves the server sealed (every request but
//! unsealing refused with `server_sealed`) until the threshold of holders
//! submit their shares from their own devices, what a copy of the data
//! directory is then worth, and a holder leaving.

#[macro_use]
mod common;

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Backend, Device, TestServer, policy, seal};
use irm_core::protocol::{Role, UnsealStatus};
use irm_core::{KasSecretKey, Rights, ShareContext, WrappedShare};
use irm_key_server::vault::{Vault, keystore, shares};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// `GET /v1/unseal` as `device`.
async fn status(device: &Device) -> UnsealStatus {
    let body = device
        .expect(Method::GET, "/v1/unseal", None, StatusCode::OK)
        .await;
    serde_json::from_value(body).unwrap()
}

/// `device`'s share of the root key, unwrapped as its client would.
async fn my_share(device: &Device) -> (String, u8, Vec<u8>) {
    let status = status(device).await;
    let share = status.share.expect("this device holds a share");
    let wrapped = WrappedShare {
        ephemeral_public: URL_SAFE_NO_PAD
            .decode(&share.ephemeral_public)
            .unwrap()
            .try_into()
            .unwrap(),
        ciphertext: URL_SAFE_NO_PAD.decode(&share.ciphertext).unwrap(),
    };
    let context = ShareContext {
        root_id: hex::decode(&share.root_id).unwrap().try_into().unwrap(),
        index: share.index,
        device_id: hex::decode(&device.id).unwrap().try_into().unwrap(),
    };
    let plain = device.secret.unwrap_share(&wrapped, &context).unwrap();
    (share.root_id, share.index, plain.to_vec())
}

/// `POST /v1/unseal` of a share as `device`.
async fn submit(device: &Device, share: &(String, u8, Vec<u8>), expect: StatusCode) -> Value {
    let body = json!({
        "root_id": share.0,
        "index": share.1,
        "share": URL_SAFE_NO_PAD.encode(&share.2),
    });
    device
        .expect(Method::POST, "/v1/unseal", Some(body), expect)
        .await
}

async fn metrics(server: &TestServer) -> String {
    let response = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    response.text().await.unwrap()
}

async fn health(server: &TestServer) -> (StatusCode, String) {
    let response = server
        .http
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

/// Every key server secret key in a data directory's files, read as a
/// thief with a copy of it would: any file that parses as one.
fn plaintext_kas_keys(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(text) = std::fs::read_to_string(&path)
                && (KasSecretKey::from_text(&text).is_ok() || text.contains("IRM-KAS-SECRET-KEY"))
            {
                found.push(path);
            }
        }
    }
    found
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

async fn shares_seal_a_restarted_server_until_enough_holders_unseal(backend: Backend) {
    let mut server = TestServer::start_on(backend).await;
    let admin = server.admin().await;
    let maint = server.user(&admin, "maint", &[Role::Maintainer], &[]).await;
    let alice = server.user(&admin, "alice", &[Role::User], &[]).await;
    let file = seal(
        &admin.server_key.public_key,
        policy(&["alice"], Rights::VIEW, None, None),
    );
    alice.grant_ok(&file, false).await;

    // A new server: the bootstrap mode, whose one share a backup holds.
    let before = tempfile::tempdir().unwrap();
    copy_dir(server.dir.path(), before.path());
    let (_, entries) = Vault::open(before.path()).unwrap();
    assert!(entries.is_some(), "a bootstrap backup opens by itself");
    let old_root = shares::read_bootstrap(before.path()).unwrap().unwrap();
    assert_eq!(
        status(&admin).await.mode,
        irm_core::protocol::SealMode::Bootstrap
    );

    // Refused before any approval: one person never unseals alone, and
    // holders must be people who run the server, with a device.
    for (body, expect) in [
        (
            json!({"threshold": 1, "holders": ["admin", "admin2"]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"threshold": 2, "holders": ["admin", "alice"]}),
            StatusCode::CONFLICT,
        ),
        (
            json!({"threshold": 2, "holders": ["admin", "nobody"]}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"threshold": 2, "holders": ["admin", "admin"]}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        admin
            .expect(Method::POST, "/v1/admin/shares", Some(body), expect)
            .await;
    }
    // A maintainer runs the service but cannot ask for the keys' shares.
    maint
        .expect(
            Method::POST,
            "/v1/admin/shares",
            Some(json!({"threshold": 2, "holders": ["admin", "maint"]})),
            StatusCode::FORBIDDEN,
        )
        .await;

    // Two of admin, admin2 and maint, approved by a second administrator.
    let (filed, _) = server
        .approved(
            &admin,
            Method::POST,
            "/v1/admin/shares",
            Some(json!({"threshold": 2, "holders": ["maint", "admin", "admin2"]})),
        )
        .await;
    assert_eq!(
        filed["request"]["action"]["holders"],
        json!(["admin", "admin2", "maint"])
    );
    let now = status(&admin).await;
    assert!(!now.sealed);
    assert_eq!(now.threshold, 2);
    assert_eq!(now.holders, ["admin", "admin2", "maint"]);
    assert!(now.share.is_some(), "each holder's device holds its share");
    assert!(status(&alice).await.share.is_none());
    let (h, text) = health(&server).await;
    assert_eq!(h, StatusCode::OK);
    assert!(
        text.starts_with("ok\nwarning: no off-host checkpoint sink") && text.lines().count() == 2,
        "no bootstrap warning any more, but the checkpoints belong off the host: {text}"
    );
    alice.grant_ok(&file, false).await;
    let maint_share = my_share(&maint).await;

    // What a copy of the data directory is worth now: no key in the clear,
    // no bootstrap share, and the old one opens nothing.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(server.dir.path(), copy.path());
    assert_eq!(
        plaintext_kas_keys(copy.path()),
        Vec::<std::path::PathBuf>::new()
    );
    assert!(!shares::bootstrap_path(copy.path()).exists());
    assert!(keystore::read(copy.path(), &old_root).is_err());
    let (vault, entries) = Vault::open(copy.path()).unwrap();
    assert!(vault.is_sealed() && entries.is_none());
    let admin_share = my_share(&admin).await;
    let one = vec![shares::decode(&URL_SAFE_NO_PAD.encode(&admin_share.2)).unwrap()];
    assert!(
        shares::combine(&one, &admin_share.0).is_none(),
        "one share does not make the root key"
    );

    // A restart: sealed. Everything but unsealing and health is refused.
    server.restart(|_| {}).await;
    let (h, text) = health(&server).await;
    assert_eq!(h, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        text.starts_with("sealed\nwarning: sealed: ") && text.contains("0 of 2"),
        "{text}"
    );
    let refused = alice.grant_raw(&file.header_bytes, false).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["reason"], "server_sealed", "{body}");
    admin
        .expect(
            Method::GET,
            "/v1/admin/users",
            None,
            StatusCode::SERVICE_UNAVAILABLE,
        )
        .await;
    assert!(status(&alice).await.sealed);
    // The public CA stays served, so an invitation's fetch fails at
    // enrollment with `server_sealed`, not with a TLS puzzle.
    let ca = server.http.get(server.url("/v1/ca")).send().await.unwrap();
    assert_eq!(ca.status(), StatusCode::OK);
    let pem = std::fs::read_to_string(server.dir.path().join("tls/ca.pem")).unwrap();
    assert_eq!(ca.text().await.unwrap(), pem);

    // Wrong shares are refused at once: another holder's, a changed one.
    submit(server.approver(), &admin_share, StatusCode::CONFLICT).await;
    let mut changed = admin_share.clone();
    changed.2[7] ^= 1;
    submit(&admin, &changed, StatusCode::CONFLICT).await;
    // One share (even submitted twice) of two: still sealed.
    let after: UnsealStatus =
        serde_json::from_value(submit(&admin, &admin_share, StatusCode::OK).await).unwrap();
    assert!(after.sealed);
    assert_eq!(after.submitted, ["admin"]);
    submit(&admin, &admin_share, StatusCode::OK).await;
    assert_eq!(
        alice.grant_raw(&file.header_bytes, false).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    // The second: unsealed, serving.
    let after: UnsealStatus =
        serde_json::from_value(submit(&maint, &maint_share, StatusCode::OK).await).unwrap();
    assert!(!after.sealed);
    alice.grant_ok(&file, false).await;
    let (h, text) = health(&server).await;
    assert!(
        h == StatusCode::OK && text.starts_with("ok\nwarning: no off-host checkpoint sink"),
        "{text}"
    );
    let now = metrics(&server).await;
    assert!(
        now.contains("\nirm_sealed 0\n")
            && now.contains("irm_denials_total{reason=\"server_sealed\"} 3"),
        "{now}"
    );
    submit(&maint, &maint_share, StatusCode::CONFLICT).await; // not sealed

    // A holder leaves: shares reissued to the other two; maint's old share
    // opens nothing after the next restart.
    server
        .approved(
            &admin,
            Method::POST,
            "/v1/admin/shares",
            Some(json!({"threshold": 2, "holders": ["admin", "admin2"]})),
        )
        .await;
    server.restart(|_| {}).await;
    submit(&maint, &maint_share, StatusCode::CONFLICT).await;
    for holder in [&admin, server.approver()] {
        let share = my_share(holder).await;
        submit(holder, &share, StatusCode::OK).await;
    }
    alice.grant_ok(&file, false).await;

    // Every step is in the audit log, under the person who did it.
    let records = admin.audit().await;
    let count = |action: &str, user: &str, result: &str| {
        records
            .iter()
            .filter(|r| {
                r.action == action && r.actor_user.as_deref() == Some(user) && r.result == result
            })
            .count()
    };
    assert_eq!(count("server.shares.reissue", "admin2", "ok"), 2);
    assert_eq!(count("server.unseal", "admin", "ok"), 3);
    assert_eq!(count("server.unseal", "admin", "failed"), 1);
    assert_eq!(count("server.unseal", "admin2", "failed"), 1);
    assert_eq!(count("server.unseal", "maint", "ok"), 1);
    assert_eq!(count("server.unseal", "maint", "failed"), 2);
    assert_eq!(
        count("admin.shares.reissue", "admin", "ok"),
        2,
        "the approved action, recorded as the requester's"
    );
    let report = admin
        .expect(Method::GET, "/v1/audit/verify", None, StatusCode::OK)
        .await;
    assert_eq!(report["ok"], true, "{report}");
    server.stop().await;
}

on_each_backend!(shares_seal_a_restarted_server_until_enough_holders_unseal);

/// A data directory from before sealing (plaintext key files, no state
/// ledger) is sealed into a keystore at its next start, its plaintext keys
/// deleted, and its state vouched for by a baseline record.
#[tokio::test]
async fn a_data_directory_from_before_sealing_is_sealed_at_its_next_start() {
    let server = TestServer::start_with(|settings| {
        // Between init and the first start: the previous version's layout.
        let dir = settings.data_dir.as_path();
        let (_, entries) = Vault::open(dir).unwrap();
        let entries = entries.unwrap();
        std::fs::create_dir_all(dir.join("kas")).unwrap();
        for (name, text) in entries.iter() {
            let path = match name {
                "audit-signing" => dir.join("audit-signing.key"),
                "tls-ca" => dir.join("tls/ca.key"),
                "state-mac" => continue,
                kas => dir.join(format!("{kas}.key")),
            };
            std::fs::write(path, format!("{text}\n")).unwrap();
        }
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("keystore-") || name == shares::BOOTSTRAP_FILE {
                std::fs::remove_file(path).unwrap();
            }
        }
        assert_eq!(plaintext_kas_keys(dir).len(), 1);
    })
    .await;
    let admin = server.admin().await;
    let alice = server.user(&admin, "alice", &[Role::User], &[]).await;
    let file = seal(
        &admin.server_key.public_key,
        policy(&["alice"], Rights::VIEW, None, None),
    );
    alice.grant_ok(&file, false).await;
    let dir = server.dir.path();
    assert_eq!(plaintext_kas_keys(dir), Vec::<std::path::PathBuf>::new());
    for gone in ["audit-signing.key", "tls/ca.key", "kas"] {
        assert!(!dir.join(gone).exists(), "{gone}");
    }
    assert!(shares::bootstrap_path(dir).exists());
    let baseline = admin.audit().await;
    assert!(
        baseline.iter().any(|r| r.action == "state.baseline"
            && r.detail.as_deref().unwrap().contains("state=user/admin#")),
        "the state as found is vouched for once"
    );
}
