//! End-to-end tests of the key server over real HTTPS on 127.0.0.1:0: enrollment,
//! grants and renewals, revocation taking effect on the next request, key
//! rotation and retirement, usage events, request authentication, bad
//! requests, the audit endpoints, and the route list against PROTOCOL.md and
//! the OpenAPI document. Every test that touches the store runs on SQLite,
//! and on PostgreSQL (`on_each_backend!`).

#[macro_use]
mod common;

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Backend, Device, SealedFile, T0, TestServer, policy, seal, seal_to};
use irm_core::protocol::{AuditRecord, Role};
use irm_core::{KasPublicKey, KasSecretKey, RequestSignature, Rights, SigningSecretKey};
use irm_key_server::clock::Clock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn count(records: &[AuditRecord], action: &str, result: &str, reason: Option<&str>) -> usize {
    records
        .iter()
        .filter(|r| r.action == action && r.result == result && r.reason.as_deref() == reason)
        .count()
}

/// Alice (user, in @support), Bob (user) and the admin.
async fn cast(server: &TestServer) -> (Device, Device, Device) {
    let admin = server.admin().await;
    admin.create_group("support").await;
    let alice = server
        .user(&admin, "alice", &[Role::User], &["support"])
        .await;
    let bob = server.user(&admin, "bob", &[], &[]).await;
    (admin, alice, bob)
}

fn file_for(device: &Device, recipients: &[&str], rights: Rights) -> SealedFile {
    seal(
        &device.server_key.public_key,
        policy(recipients, rights, None, None),
    )
}

on_each_backend!(grants_follow_recipients_and_the_admin_role_opens_nothing);
async fn grants_follow_recipients_and_the_admin_role_opens_nothing(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let (admin, alice, bob) = cast(&server).await;
    let to_alice = file_for(&alice, &["alice"], Rights::VIEW | Rights::PRINT);
    let to_group = file_for(&alice, &["@support"], Rights::VIEW);

    let grant = alice.grant_ok(&to_alice, false).await;
    assert_eq!(grant.rights, Rights::VIEW | Rights::PRINT);
    // The full name, for the viewer's watermark.
    assert_eq!(grant.display_name, "alice Example");
    assert_eq!(grant.lease_expires_at, T0 + 600);
    assert_eq!(grant.server_time, T0);
    assert_eq!(grant.file_id, to_alice.id());
    assert!(grant.watermark_required);
    assert_eq!(alice.grant_ok(&to_group, false).await.rights, Rights::VIEW);
    assert_eq!(bob.grant_denied(&to_alice, false).await, "not_recipient");
    assert_eq!(bob.grant_denied(&to_group, false).await, "not_recipient");
    // Having the admin role does not by itself open any file.
    assert_eq!(admin.grant_denied(&to_alice, false).await, "not_recipient");

    // Files sealed offline were registered on first request, without an owner.
    let files = admin
        .expect(Method::GET, "/v1/admin/files", None, StatusCode::OK)
        .await;
    let ids = file_ids(&files);
    assert!(ids.contains(to_alice.id().as_str()) && ids.contains(to_group.id().as_str()));
    assert!(files[0]["owner"].is_null());

    let records = admin.audit().await;
    assert_eq!(count(&records, "grant", "ok", None), 2);
    assert_eq!(count(&records, "grant", "denied", Some("not_recipient")), 3);
    assert!(
        records
            .iter()
            .any(|r| r.action == "enroll" && r.actor_user.as_deref() == Some("bob"))
    );
}

on_each_backend!(the_maintainer_runs_the_service_and_nothing_else);
/// The maintainer role (issue #12): keys and checkpoints, nothing about
/// people, devices or files, no audit records, and no file by itself.
async fn the_maintainer_runs_the_service_and_nothing_else(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let (admin, alice, _bob) = cast(&server).await;
    let maintainer = server.user(&admin, "mia", &[Role::Maintainer], &[]).await;
    let to_alice = file_for(&alice, &["alice"], Rights::VIEW);

    // Running the service.
    maintainer
        .expect(Method::GET, "/v1/admin/keys", None, StatusCode::OK)
        .await;
    let rotated = maintainer
        .expect(Method::POST, "/v1/admin/keys/rotate", None, StatusCode::OK)
        .await;
    assert!(rotated["key_id"].is_string(), "{rotated}");
    maintainer
        .expect(Method::POST, "/v1/audit/checkpoint", None, StatusCode::OK)
        .await;
    let report = maintainer
        .expect(Method::GET, "/v1/audit/verify", None, StatusCode::OK)
        .await;
    assert_eq!(report["ok"], true, "{report}");

    // Nothing else: each refusal is 403 role_required, and audited.
    let refused: [(Method, &str, Option<Value>); 6] = [
        (
            Method::POST,
            "/v1/admin/users",
            Some(json!({"name": "eve", "display_name": "Eve", "roles": ["admin"], "groups": []})),
        ),
        (Method::GET, "/v1/admin/users", None),
        (Method::POST, "/v1/admin/users/alice/code", None),
        (
            Method::POST,
            "/v1/admin/groups",
            Some(json!({"name": "ops"})),
        ),
        (Method::GET, "/v1/admin/devices", None),
        (Method::GET, "/v1/audit?after=0&limit=10", None),
    ];
    for (method, path, body) in refused {
        let answer = maintainer
            .expect(method.clone(), path, body, StatusCode::FORBIDDEN)
            .await;
        assert_eq!(answer["reason"], "role_required", "{method} {path}");
    }
    let file_path = format!("/v1/admin/files/{}/restore", to_alice.id());
    let answer = maintainer
        .expect(Method::POST, &file_path, None, StatusCode::FORBIDDEN)
        .await;
    assert_eq!(answer["reason"], "role_required");
    // And no content unless a recipient, as for every role.
    assert_eq!(
        maintainer.grant_denied(&to_alice, false).await,
        "not_recipient"
    );

    let records = admin.audit().await;
    assert_eq!(
        count(
            &records,
            "admin.user.create",
            "denied",
            Some("role_required")
        ),
        1
    );
    assert_eq!(count(&records, "admin.key.rotate", "ok", None), 1);
}

on_each_backend!(
    revocation_suspension_expiry_and_restriction_apply_to_the_very_next_grant_and_renewal
);
async fn revocation_suspension_expiry_and_restriction_apply_to_the_very_next_grant_and_renewal(
    backend: Backend,
) {
    let server = TestServer::start_on(backend).await;
    let (admin, alice, _bob) = cast(&server).await;
    let file = file_for(&alice, &["alice", "@support"], Rights::VIEW | Rights::PRINT);
    let id = file.id();
    alice.grant_ok(&file, false).await;

    admin
        .expect(
            Method::POST,
            &format!("/v1/admin/files/{id}/revoke"),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(alice.grant_denied(&file, true).await, "file_revoked");
    assert_eq!(alice.grant_denied(&file, false).await, "file_revoked");
    server
        .approved(
            &admin,
            Method::POST,
            &format!("/v1/admin/files/{id}/restore"),
            None,
        )
        .await;
    alice.grant_ok(&file, true).await;

    let info = admin
        .expect(
            Method::POST,
            &format!("/v1/admin/files/{id}/restrict"),
            Some(json!({"remove": ["print"]})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(info["restricted_rights"], json!(["print"]));
    assert_eq!(alice.grant_ok(&file, true).await.rights, Rights::VIEW);
    admin
        .expect(
            Method::POST,
            &format!("/v1/admin/files/{id}/restrict"),
            Some(json!({"remove": ["view"]})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(alice.grant_denied(&file, true).await, "rights_restricted");
    server
        .approved(
            &admin,
            Method::POST,
            &format!("/v1/admin/files/{id}/restore"),
            None,
        )
        .await;

    let info = admin
        .expect(
            Method::POST,
            &format!("/v1/admin/files/{id}/expire"),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(info["state"], "expired");
    assert_eq!(alice.grant_denied(&file, true).await, "file_expired");
    server
        .approved(
            &admin,
            Method::POST,
            &format!("/v1/admin/files/{id}/restore"),
            None,
        )
        .await;

    let user = admin
        .expect(
            Method::POST,
            "/v1/admin/users/alice/suspend",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(user["state"], "suspended");
    assert_eq!(alice.grant_denied(&file, true).await, "user_suspended");
    // Every other request of a suspended user is refused too.
    let refused = alice
        .send(
            Method::POST,
            "/v1/events",
            Some(json!({"grant_id": "00".repeat(16), "action": "close"})),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    server
        .approved(&admin, Method::POST, "/v1/admin/users/alice/restore", None)
        .await;
    alice.grant_ok(&file, true).await;

    // Leaving the group does not matter while the user is named; a group-only file does.
    let group_file = file_for(&alice, &["@support"], Rights::VIEW);
    alice.grant_ok(&group_file, false).await;
    admin
        .expect(
            Method::DELETE,
            "/v1/admin/groups/support/members/alice",
            None,
            StatusCode::NO_CONTENT,
        )
        .await;
    assert_eq!(alice.grant_denied(&group_file, true).await, "not_recipient");
    server
        .approved(
            &admin,
            Method::POST,
            "/v1/admin/groups/support/members",
            Some(json!({"user": "alice"})),
        )
        .await;
    alice.grant_ok(&group_file, true).await;

    let device = admin
        .expect(
            Method::POST,
            &format!("/v1/admin/devices/{}/revoke", alice.id),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(device["state"], "revoked");
    assert_eq!(alice.grant_denied(&file, true).await, "device_revoked");

    let records = admin.audit().await;
    assert_eq!(count(&records, "renew", "denied", Some("file_revoked")), 1);
    assert_eq!(count(&records, "grant", "denied", Some("file_revoked")), 1);
    assert_eq!(count(&records, "admin.file.revoke", "ok", None), 1);
    // The record names the device and vouches for its new state (§11.3).
    assert!(records.iter().any(|r| r.action == "admin.device.revoke"
        && r.detail.as_deref().is_some_and(|d| {
            d.starts_with(&format!(
                "device={} ledger: state=device/{}#",
                alice.id, alice.id
            ))
        })));
}

on_each_backend!(the_policy_window_is_judged_by_the_server_clock);
async fn the_policy_window_is_judged_by_the_server_clock(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let (_admin, alice, _bob) = cast(&server).await;
    let file = seal(
        &alice.server_key.public_key,
        policy(&["alice"], Rights::VIEW, Some(T0 + 100), Some(T0 + 200)),
    );
    assert_eq!(alice.grant_denied(&file, false).await, "not_yet_valid");
    server.clock.set_secs(T0 + 100);
    let grant = alice.grant_ok(&file, false).await;
    assert_eq!(
        grant.lease_expires_at,
        T0 + 200,
        "the lease stops at not_after"
    );
    assert_eq!(grant.not_after, Some(T0 + 200));
    server.clock.set_secs(T0 + 200);
    assert_eq!(alice.grant_denied(&file, true).await, "policy_expired");
}

on_each_backend!(rotated_keys_still_open_old_files_until_retired);
async fn rotated_keys_still_open_old_files_until_retired(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let (admin, alice, _bob) = cast(&server).await;
    let old_file = file_for(&alice, &["alice"], Rights::VIEW);
    let old_key = alice.server_key.key_id.clone();

    let rotated = admin
        .expect(Method::POST, "/v1/admin/keys/rotate", None, StatusCode::OK)
        .await;
    let new_key = rotated["key_id"].as_str().unwrap().to_owned();
    assert_ne!(new_key, old_key);
    let current = server
        .http
        .get(server.url("/v1/server-key"))
        .send()
        .await
        .unwrap();
    let current: Value = current.json().await.unwrap();
    assert_eq!(current["key_id"], new_key.as_str());
    let new_file = seal(
        current["public_key"].as_str().unwrap(),
        policy(&["alice"], Rights::VIEW, None, None),
    );

    alice.grant_ok(&old_file, false).await;
    alice.grant_ok(&new_file, false).await;
    let keys = admin
        .expect(Method::GET, "/v1/admin/keys", None, StatusCode::OK)
        .await;
    let states: BTreeSet<(String, String)> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["key_id"].as_str().unwrap().to_owned(),
                k["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(states.contains(&(old_key.clone(), "active".into())));
    assert!(states.contains(&(new_key.clone(), "current".into())));

    admin
        .expect(
            Method::POST,
            &format!("/v1/admin/keys/{new_key}/retire"),
            None,
            StatusCode::CONFLICT,
        )
        .await;
    admin
        .expect(
            Method::POST,
            &format!("/v1/admin/keys/{old_key}/retire"),
            None,
            StatusCode::NO_CONTENT,
        )
        .await;
    assert_eq!(alice.grant_denied(&old_file, true).await, "key_retired");
    alice.grant_ok(&new_file, true).await;

    let foreign = KasSecretKey::generate().unwrap().public_key();
    let elsewhere = seal_to(&[foreign], policy(&["alice"], Rights::VIEW, None, None));
    assert_eq!(alice.grant_denied(&elsewhere, false).await, "key_unknown");
    // A file wrapped to a foreign key and to ours opens through ours.
    let both = seal_to(
        &[
            foreign,
            KasPublicKey::from_text(current["public_key"].as_str().unwrap()).unwrap(),
        ],
        policy(&["alice"], Rights::VIEW, None, None),
    );
    alice.grant_ok(&both, false).await;
}

// PROTOCOL.md §6: registration picks the file's key by the grant's own
// rule (`decision::key_for`), inside its transaction: a file sealed to a
// retired key is refused `key_retired` as its grant is, and audited; a file
// wrapped to a retired key and a current one registers through the current
// one.
on_each_backend!(registration_decides_the_key_as_a_grant_does);
async fn registration_decides_the_key_as_a_grant_does(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let (admin, alice, _bob) = cast(&server).await;
    let old_key = alice.server_key.key_id.clone();
    let old_public = KasPublicKey::from_text(&alice.server_key.public_key).unwrap();
    let rotated = admin
        .expect(Method::POST, "/v1/admin/keys/rotate", None, StatusCode::OK)
        .await;
    let new_public = KasPublicKey::from_text(rotated["public_key"].as_str().unwrap()).unwrap();
    admin
        .expect(
            Method::POST,
            &format!("/v1/admin/keys/{old_key}/retire"),
            None,
            StatusCode::NO_CONTENT,
        )
        .await;
    let register =
        |file: &SealedFile| json!({"header": URL_SAFE_NO_PAD.encode(&file.header_bytes)});

    let retired = seal_to(&[old_public], policy(&["alice"], Rights::VIEW, None, None));
    let refused = alice
        .expect(
            Method::POST,
            "/v1/files",
            Some(register(&retired)),
            StatusCode::FORBIDDEN,
        )
        .await;
    assert_eq!(refused["reason"], "key_retired");
    assert_eq!(alice.grant_denied(&retired, false).await, "key_retired");
    let records = admin.audit().await;
    assert_eq!(
        count(&records, "file.register", "denied", Some("key_retired")),
        1
    );
    let files = admin
        .expect(Method::GET, "/v1/admin/files", None, StatusCode::OK)
        .await;
    assert!(
        files.as_array().unwrap().is_empty(),
        "a refused registration left a file: {files}"
    );

    let both = seal_to(
        &[old_public, new_public],
        policy(&["alice"], Rights::VIEW, None, None),
    );
    let info = alice
        .expect(
            Method::POST,
            "/v1/files",
            Some(register(&both)),
            StatusCode::OK,
        )
        .await;
    assert_eq!(info["owner"], "alice");
    alice.grant_ok(&both, false).await;
}

on_each_backend!(usage_events_need_the_right_and_every_report_is_audited);
async fn usage_events_need_the_right_and_every_report_is_audited(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let (admin, alice, bob) = cast(&server).await;
    let file = file_for(&alice, &["alice", "bob"], Rights::VIEW | Rights::PRINT);
    let grant = alice.grant_ok(&file, false).await;
    // A print of a few rows: more would be a take-out needing approval
    // (approval.rs).
    let event = |action: &str| json!({"grant_id": grant.grant_id, "action": action, "detail": "printer-3", "rows": 2});

    alice
        .expect(
            Method::POST,
            "/v1/events",
            Some(event("print")),
            StatusCode::NO_CONTENT,
        )
        .await;
    let refused = alice
        .expect(
            Method::POST,
            "/v1/events",
            Some(event("export")),
            StatusCode::FORBIDDEN,
        )
        .await;
    assert_eq!(refused["reason"], "right_not_granted");
    alice
        .expect(
            Method::POST,
            "/v1/events",
            Some(event("close")),
            StatusCode::NO_CONTENT,
        )
        .await;
    // Another device cannot report under this grant.
    bob.expect(
        Method::POST,
        "/v1/events",
        Some(event("print")),
        StatusCode::NOT_FOUND,
    )
    .await;
    // A restriction also applies to grants already issued.
    admin
        .expect(
            Method::POST,
            &format!("/v1/admin/files/{}/restrict", file.id()),
            Some(json!({"remove": ["print"]})),
            StatusCode::OK,
        )
        .await;
    let refused = alice
        .expect(
            Method::POST,
            "/v1/events",
            Some(event("print")),
            StatusCode::FORBIDDEN,
        )
        .await;
    assert_eq!(refused["reason"], "right_not_granted");

    let records = admin.audit().await;
    assert_eq!(count(&records, "event.print", "ok", None), 1);
    assert_eq!(
        count(&records, "event.print", "denied", Some("right_not_granted")),
        1
    );
    assert_eq!(
        count(
            &records,
            "event.export",
            "denied",
            Some("right_not_granted")
        ),
        1
    );
    assert_eq!(count(&records, "event.close", "ok", None), 1);
    assert_eq!(
        count(&records, "event.print", "failed", Some("not_found")),
        1
    );
    let printed = records
        .iter()
        .find(|r| r.action == "event.print" && r.result == "ok")
        .unwrap();
    assert_eq!(printed.file_id.as_deref(), Some(file.id().as_str()));
    assert!(printed.detail.as_deref().unwrap().contains("printer-3"));
}

on_each_backend!(online_registration_records_the_owner);
async fn online_registration_records_the_owner(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let (admin, alice, bob) = cast(&server).await;
    let file = file_for(&alice, &["bob"], Rights::VIEW);
    let body =
        json!({"header": URL_SAFE_NO_PAD.encode(&file.header_bytes), "file_name": "customers.csv"});
    let info = alice
        .expect(
            Method::POST,
            "/v1/files",
            Some(body.clone()),
            StatusCode::OK,
        )
        .await;
    assert_eq!(info["owner"], "alice");
    assert_eq!(info["file_name"], "customers.csv");
    assert_eq!(info["state"], "active");
    bob.expect(Method::POST, "/v1/files", Some(body), StatusCode::CONFLICT)
        .await;
    // Owning a file is not being its recipient.
    assert_eq!(alice.grant_denied(&file, false).await, "not_recipient");
    bob.grant_ok(&file, false).await;

    let foreign = seal_to(
        &[KasSecretKey::generate().unwrap().public_key()],
        policy(&["bob"], Rights::VIEW, None, None),
    );
    let refused = alice
        .expect(
            Method::POST,
            "/v1/files",
            Some(json!({"header": URL_SAFE_NO_PAD.encode(&foreign.header_bytes)})),
            StatusCode::FORBIDDEN,
        )
        .await;
    assert_eq!(refused["reason"], "key_unknown");
    let files = admin
        .expect(Method::GET, "/v1/admin/files", None, StatusCode::OK)
        .await;
    assert_eq!(files.as_array().unwrap().len(), 1);
}

/// Sends `body` with an explicit Authorization header value.
async fn send_with(device: &Device, path: &str, auth: &str, body: &[u8]) -> reqwest::Response {
    device
        .http
        .post(format!("{}{path}", device.base))
        .header("authorization", auth)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

async fn assert_401(response: reqwest::Response, what: &str) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
    assert_eq!(body["reason"], "credential_invalid", "{what}");
}

on_each_backend!(replayed_forged_stale_and_stolen_requests_are_refused_with_401_and_audited);
async fn replayed_forged_stale_and_stolen_requests_are_refused_with_401_and_audited(
    backend: Backend,
) {
    let server = TestServer::start_on(backend).await;
    let (admin, alice, bob) = cast(&server).await;
    let file = file_for(&alice, &["alice"], Rights::VIEW);
    let body =
        serde_json::to_vec(&json!({"header": URL_SAFE_NO_PAD.encode(&file.header_bytes)})).unwrap();
    let now = server.clock.now_secs();

    // A replayed request: the same header and body twice.
    let auth = alice.authorization("POST", "/v1/grant", &body);
    assert_eq!(
        send_with(&alice, "/v1/grant", &auth, &body).await.status(),
        StatusCode::OK
    );
    assert_401(send_with(&alice, "/v1/grant", &auth, &body).await, "replay").await;

    // A forged signature: alice's device id, someone else's key.
    let other = SigningSecretKey::generate().unwrap();
    let forged =
        RequestSignature::sign(&other, &alice.id, "POST", "/v1/grant", now, &body).unwrap();
    assert_401(
        send_with(&alice, "/v1/grant", &forged.to_header_value(), &body).await,
        "forged",
    )
    .await;
    // Bob's own valid key cannot sign as alice's device either.
    let as_bob =
        RequestSignature::sign(&bob.signing, &alice.id, "POST", "/v1/grant", now, &body).unwrap();
    assert_401(
        send_with(&alice, "/v1/grant", &as_bob.to_header_value(), &body).await,
        "other device key",
    )
    .await;

    // A stolen credential without the device key: a valid header captured
    // from one request and sent with another body, or on another path.
    let captured = alice.authorization("POST", "/v1/grant", &body);
    let other_body = serde_json::to_vec(
        &json!({"header": URL_SAFE_NO_PAD.encode(&file.header_bytes), "renew": true}),
    )
    .unwrap();
    assert_401(
        send_with(&alice, "/v1/grant", &captured, &other_body).await,
        "changed body",
    )
    .await;
    let captured = alice.authorization("POST", "/v1/grant", &body);
    assert_401(
        send_with(&alice, "/v1/files", &captured, &body).await,
        "changed path",
    )
    .await;

    // Stale and future timestamps; the window's edge still passes.
    for (skew, ok) in [(-301i64, false), (301, false), (-300, true), (300, true)] {
        let ts = now.checked_add_signed(skew).unwrap();
        let sig = RequestSignature::sign(&alice.signing, &alice.id, "POST", "/v1/grant", ts, &body)
            .unwrap();
        let response = send_with(&alice, "/v1/grant", &sig.to_header_value(), &body).await;
        if ok {
            assert_eq!(response.status(), StatusCode::OK, "skew {skew}");
        } else {
            assert_401(response, &format!("skew {skew}")).await;
        }
    }

    // Unknown device, missing and malformed headers.
    let unknown = RequestSignature::sign(
        &alice.signing,
        &"ab".repeat(16),
        "POST",
        "/v1/grant",
        now,
        &body,
    )
    .unwrap();
    assert_401(
        send_with(&alice, "/v1/grant", &unknown.to_header_value(), &body).await,
        "unknown device",
    )
    .await;
    assert_401(
        send_with(&alice, "/v1/grant", "Bearer x", &body).await,
        "wrong scheme",
    )
    .await;
    let missing = alice
        .http
        .get(format!("{}/v1/admin/users", alice.base))
        .send()
        .await
        .unwrap();
    assert_401(missing, "no header").await;

    let records = admin.audit().await;
    assert_eq!(
        count(
            &records,
            "auth.failed",
            "failed",
            Some("credential_invalid")
        ),
        10
    );
    assert!(records.iter().any(|r| r.action == "auth.failed" && r.detail.as_deref().unwrap().contains("replayed")));
}

on_each_backend!(enrollment_codes_expire_burn_after_five_wrong_tries_and_work_once);
async fn enrollment_codes_expire_burn_after_five_wrong_tries_and_work_once(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let admin = server.admin().await;
    let deny_reason = |response: reqwest::Response| async move {
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        (status, body["reason"].as_str().unwrap_or("").to_owned())
    };
    let invalid = (StatusCode::FORBIDDEN, "enrollment_code_invalid".to_owned());

    // The bootstrap code was used by admin() and cannot be used again.
    assert_eq!(
        deny_reason(server.try_enroll("admin", &server.admin_code).await.0).await,
        invalid
    );

    // Expiry: 24 hours on the server clock.
    let code = server.create_user(&admin, "dave", &[], &[]).await;
    server.clock.set_secs(T0 + 24 * 3600);
    assert_eq!(
        deny_reason(server.try_enroll("dave", &code).await.0).await,
        invalid
    );

    // Four wrong tries leave the code alive; the right one then works (any case, no dashes).
    let code = server.new_code(&admin, "dave").await;
    for _ in 0..4 {
        assert_eq!(
            deny_reason(server.try_enroll("dave", "AAAAA-AAAAA-AAAAA-AAAAA").await.0).await,
            invalid
        );
    }
    let typed = code.replace('-', "").to_ascii_lowercase();
    server.enroll("dave", &typed).await;

    // The fifth wrong try burns it.
    let code = server.create_user(&admin, "erin", &[], &[]).await;
    for _ in 0..5 {
        assert_eq!(
            deny_reason(server.try_enroll("erin", "AAAAA-AAAAA-AAAAA-AAAAA").await.0).await,
            invalid
        );
    }
    assert_eq!(
        deny_reason(server.try_enroll("erin", &code).await.0).await,
        invalid
    );

    // Unknown users get the same answer; a bad proof is a 400 and spends nothing.
    assert_eq!(
        deny_reason(server.try_enroll("nobody", &code).await.0).await,
        invalid
    );
    let code = server.new_code(&admin, "erin").await;
    let signing = SigningSecretKey::generate().unwrap();
    let secret = irm_core::DeviceSecretKey::generate().unwrap();
    let bad_proof = json!({
        "user": "erin", "code": code, "device_name": "x",
        "device_public_key": URL_SAFE_NO_PAD.encode(secret.public_key().to_bytes()),
        "signing_public_key": signing.public_key_b64(),
        "proof": URL_SAFE_NO_PAD.encode([0u8; 64]),
    });
    let response = server
        .http
        .post(server.url("/v1/enroll"))
        .json(&bad_proof)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // A suspended user cannot enroll even with a live code.
    admin
        .expect(
            Method::POST,
            "/v1/admin/users/erin/suspend",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        deny_reason(server.try_enroll("erin", &code).await.0).await,
        (StatusCode::FORBIDDEN, "user_suspended".to_owned())
    );
    server
        .approved(&admin, Method::POST, "/v1/admin/users/erin/restore", None)
        .await;
    server.enroll("erin", &code).await;

    let records = admin.audit().await;
    assert_eq!(
        count(
            &records,
            "enroll",
            "denied",
            Some("enrollment_code_invalid")
        ),
        13
    );
    assert!(records.iter().any(|r| {
        r.detail
            .as_deref()
            .is_some_and(|d| d.starts_with("code burned after 5 wrong tries ledger: state=code/"))
    }));
    // dave, erin and the two administrators.
    assert_eq!(count(&records, "enroll", "ok", None), 4);
}

/// PROTOCOL.md §3.1: an address that has sent too many wrong codes waits
/// out its window, refused unchecked (429 with `Retry-After`), so the codes
/// it names are not charged meanwhile; then it may try again. (The throttle
/// is in memory, the same on either store.)
#[tokio::test]
async fn an_address_with_too_many_wrong_codes_waits_and_charges_no_code() {
    use irm_key_server::auth::enroll_throttle::{FREE_FAILURES, WINDOW_SECS};
    let server = TestServer::start().await;
    let admin = server.admin().await;
    // Wrong codes spread over unknown names, so that they burn no code.
    for i in 0..FREE_FAILURES {
        let (response, _) = server
            .try_enroll(&format!("nobody{i}"), "AAAAA-AAAAA-AAAAA-AAAAA")
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "try {i}");
    }
    let code = server.create_user(&admin, "erin", &[], &[]).await;
    // Now even the right code waits, unchecked...
    let (response, _) = server.try_enroll("erin", &code).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        response.headers()["retry-after"],
        WINDOW_SECS.to_string().as_str()
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "too_many_attempts", "{body}");
    // ...and wrong ones meanwhile charge erin's code nothing (five would burn it).
    for _ in 0..6 {
        let (response, _) = server.try_enroll("erin", "AAAAA-AAAAA-AAAAA-AAAAA").await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    }
    server.clock.advance_secs(WINDOW_SECS - 1);
    let (response, _) = server.try_enroll("erin", &code).await;
    assert_eq!(
        response.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "one second before the window ends"
    );
    server.clock.advance_secs(1);
    server.enroll("erin", &code).await;
}

on_each_backend!(enrollment_without_a_user_name_finds_the_user_and_wrong_codes_pause_it);
async fn enrollment_without_a_user_name_finds_the_user_and_wrong_codes_pause_it(backend: Backend) {
    use irm_key_server::store::{MAX_USERLESS_FAILURES, USERLESS_WINDOW_SECS};
    let server = TestServer::start_on(backend).await;
    let admin = server.admin().await;
    let outcome = |response: reqwest::Response| async move {
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        (status, body)
    };

    // The code alone: the server answers with the user it belongs to, and
    // the new device acts as that user.
    admin.create_group("support").await;
    let code = server.create_user(&admin, "alice", &[], &["support"]).await;
    let (status, body) = outcome(server.try_enroll("", &code).await.0).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"], "alice");
    assert_eq!(body["groups"], json!(["support"]));
    let devices = admin
        .expect(Method::GET, "/v1/admin/devices", None, StatusCode::OK)
        .await;
    assert!(
        devices
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["device_id"] == body["device_id"] && d["user"] == "alice"),
        "{devices}"
    );
    // Used once, it is gone.
    let (status, body) = outcome(server.try_enroll("", &code).await.0).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["reason"], "enrollment_code_invalid");

    // The field may be left out altogether.
    let code = server.create_user(&admin, "carol", &[], &[]).await;
    let (mut request, _) = enroll_request("", &code);
    request.as_object_mut().unwrap().remove("user");
    let response = server
        .http
        .post(server.url("/v1/enroll"))
        .json(&request)
        .send()
        .await
        .unwrap();
    let (status, body) = outcome(response).await;
    assert_eq!(
        (status, &body["user"]),
        (StatusCode::OK, &json!("carol")),
        "{body}"
    );

    // The proof binds the name as sent: signed for "bob", sent without a name.
    let code = server.create_user(&admin, "bob", &[], &[]).await;
    let (mut request, _) = enroll_request("bob", &code);
    request["user"] = json!("");
    let response = server
        .http
        .post(server.url("/v1/enroll"))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // A code sent with someone else's name is a wrong try for that name.
    let (status, body) = outcome(server.try_enroll("carol", &code).await.0).await;
    assert_eq!(
        (status, &body["reason"]),
        (StatusCode::FORBIDDEN, &json!("enrollment_code_invalid"))
    );

    // Wrong codes without a name are counted across the server...
    for _ in 0..MAX_USERLESS_FAILURES {
        let (status, body) =
            outcome(server.try_enroll("", "AAAAA-AAAAA-AAAAA-AAAAA").await.0).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body["reason"], "enrollment_code_invalid");
    }
    // ...and then even a right code without a name is refused, unchecked...
    let (status, _) = outcome(server.try_enroll("", &code).await.0).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // ...without burning it: the same code with its name still works.
    server.enroll("bob", &code).await;
    // The pause ends with its window.
    let code = server.create_user(&admin, "dave", &[], &[]).await;
    server.clock.advance_secs(USERLESS_WINDOW_SECS - 1);
    let (status, _) = outcome(server.try_enroll("", &code).await.0).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "still paused one second before"
    );
    server.clock.advance_secs(1);
    let (status, body) = outcome(server.try_enroll("", &code).await.0).await;
    assert_eq!(
        (status, &body["user"]),
        (StatusCode::OK, &json!("dave")),
        "{body}"
    );

    // Every attempt is audited; those found by code name their user.
    let records = admin.audit().await;
    let userless_denied = records
        .iter()
        .filter(|r| {
            r.action == "enroll"
                && r.actor_user.is_none()
                && r.reason.as_deref() == Some("enrollment_code_invalid")
        })
        .count() as u64;
    // alice's used code (the first wrong code counted), the loop, the right
    // code refused during the pause and the one a second before its end.
    assert_eq!(userless_denied, 1 + MAX_USERLESS_FAILURES + 2);
    for user in ["alice", "carol", "dave"] {
        assert!(
            records.iter().any(|r| r.action == "enroll"
                && r.result == "ok"
                && r.actor_user.as_deref() == Some(user)
                && r.detail
                    .as_deref()
                    .is_some_and(|d| d.contains(" user_found_by_code "))),
            "{user}"
        );
    }
}

/// An enrollment request body for `user` and `code`, signed as a client would.
fn enroll_request(user: &str, code: &str) -> (Value, SigningSecretKey) {
    let signing = SigningSecretKey::generate().unwrap();
    let secret = irm_core::DeviceSecretKey::generate().unwrap();
    let device_public_key = URL_SAFE_NO_PAD.encode(secret.public_key().to_bytes());
    let proof = signing.sign(&irm_core::enrollment_proof_message(
        user,
        code,
        &device_public_key,
    ));
    let request = json!({
        "user": user,
        "code": code,
        "device_name": "laptop",
        "device_public_key": device_public_key,
        "signing_public_key": signing.public_key_b64(),
        "proof": URL_SAFE_NO_PAD.encode(proof),
    });
    (request, signing)
}

on_each_backend!(bad_requests_get_4xx_with_a_clear_body_never_5xx);
async fn bad_requests_get_4xx_with_a_clear_body_never_5xx(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let (_admin, alice, _bob) = cast(&server).await;
    let file = file_for(&alice, &["alice"], Rights::VIEW);
    let other = file_for(&alice, &["alice"], Rights::VIEW);

    let check = |response: reqwest::Response, want: StatusCode, what: &'static str| async move {
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, want, "{what}: {text}");
        let body: Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}: not JSON: {text}"));
        assert!(
            body["error"].is_string() || body["reason"].is_string(),
            "{what}: {body}"
        );
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {body}"
        );
    };
    let grant = |header: &[u8]| json!({"header": URL_SAFE_NO_PAD.encode(header)});

    check(
        alice
            .send_raw(Method::POST, "/v1/grant", b"{not json".to_vec())
            .await,
        StatusCode::BAD_REQUEST,
        "malformed JSON",
    )
    .await;
    check(
        alice
            .send(Method::POST, "/v1/grant", Some(json!({"renew": true})))
            .await,
        StatusCode::BAD_REQUEST,
        "missing field",
    )
    .await;
    check(
        alice
            .send(Method::POST, "/v1/grant", Some(json!({"header": "***"})))
            .await,
        StatusCode::BAD_REQUEST,
        "bad base64",
    )
    .await;
    check(
        alice
            .send(
                Method::POST,
                "/v1/grant",
                Some(grant(&file.header_bytes[..40])),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "truncated header",
    )
    .await;
    check(
        alice
            .send(
                Method::POST,
                "/v1/grant",
                Some(grant(b"hello, not a sealed file")),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "not a header",
    )
    .await;
    let mut with_payload = file.header_bytes.clone();
    with_payload.extend_from_slice(b"payload");
    check(
        alice
            .send(Method::POST, "/v1/grant", Some(grant(&with_payload)))
            .await,
        StatusCode::BAD_REQUEST,
        "header with trailing bytes",
    )
    .await;

    // A header carrying another file's wrapped key: parses, but the binding fails.
    let spliced = splice_wrapped_key(&file, &other);
    let response = alice
        .send(Method::POST, "/v1/grant", Some(grant(&spliced)))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.json::<Value>().await.unwrap()["reason"],
        "policy_binding_failed"
    );

    // Wrong content type, oversized body.
    let body = serde_json::to_vec(&grant(&file.header_bytes)).unwrap();
    let auth = alice.authorization("POST", "/v1/grant", &body);
    let response = alice
        .http
        .post(server.url("/v1/grant"))
        .header("authorization", auth)
        .header("content-type", "text/plain")
        .body(body)
        .send()
        .await
        .unwrap();
    check(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "wrong content type",
    )
    .await;
    let huge = vec![b' '; 1024 * 1024 + 1];
    check(
        alice.send_raw(Method::POST, "/v1/grant", huge).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "oversized",
    )
    .await;
    let response = server
        .http
        .post(server.url("/v1/enroll"))
        .header("content-type", "application/json")
        .body("[]")
        .send()
        .await
        .unwrap();
    check(
        response,
        StatusCode::BAD_REQUEST,
        "enroll with the wrong JSON shape",
    )
    .await;
    let response = server
        .http
        .post(server.url("/v1/enroll"))
        .json(&json!({
        "user": "alice", "code": "x", "device_name": "d", "device_public_key": "AAAA",
        "signing_public_key": "AAAA", "proof": "AAAA"}))
        .send()
        .await
        .unwrap();
    check(response, StatusCode::BAD_REQUEST, "enroll with short keys").await;

    check(
        alice.send(Method::GET, "/v1/audit?limit=ten", None).await,
        StatusCode::BAD_REQUEST,
        "bad query parameter",
    )
    .await;
    check(
        alice.send(Method::GET, "/v1/nothing-here", None).await,
        StatusCode::NOT_FOUND,
        "unknown route",
    )
    .await;
    check(
        alice.send(Method::DELETE, "/v1/grant", None).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "wrong method",
    )
    .await;
    check(
        alice
            .send(
                Method::POST,
                "/v1/events",
                Some(json!({"grant_id": "zz", "action": "print"})),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "bad grant id",
    )
    .await;
    check(
        alice
            .send(
                Method::POST,
                "/v1/events",
                Some(json!({"grant_id": "00".repeat(16), "action": "fly"})),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "unknown action",
    )
    .await;
}

/// `target`'s header with the wrapped key of `source` in place of its own.
fn splice_wrapped_key(target: &SealedFile, source: &SealedFile) -> Vec<u8> {
    let (header, _) = irm_core::SealedHeader::parse(&target.header_bytes).unwrap();
    let at = header.bound_end();
    let (src, _) = irm_core::SealedHeader::parse(&source.header_bytes).unwrap();
    let mut out = target.header_bytes.clone();
    out[at..at + 48].copy_from_slice(&source.header_bytes[src.bound_end()..src.bound_end() + 48]);
    out
}

on_each_backend!(a_wrapped_key_altered_after_a_good_grant_fails_the_binding);
async fn a_wrapped_key_altered_after_a_good_grant_fails_the_binding(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let (_admin, alice, _bob) = cast(&server).await;
    let file = file_for(&alice, &["alice"], Rights::VIEW);
    let other = file_for(&alice, &["alice"], Rights::VIEW);
    // The good header is granted first, so its content key is in the
    // server's unwrap cache; the altered copies share its header hash.
    alice.grant_ok(&file, false).await;
    let (header, _) = irm_core::SealedHeader::parse(&file.header_bytes).unwrap();
    let wrapped_at = header.bound_end();
    for (what, at) in [
        ("first byte of the wrapped key", wrapped_at),
        ("last byte of the wrapped key (its tag)", wrapped_at + 47),
    ] {
        let mut altered = file.header_bytes.clone();
        altered[at] ^= 0x01;
        let response = alice.grant_raw(&altered, false).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{what}");
        assert_eq!(
            response.json::<Value>().await.unwrap()["reason"],
            "policy_binding_failed",
            "{what}"
        );
    }
    // Another file's wrapped key spliced in, after a good grant of both.
    alice.grant_ok(&other, false).await;
    let spliced = splice_wrapped_key(&file, &other);
    let response = alice.grant_raw(&spliced, false).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.json::<Value>().await.unwrap()["reason"],
        "policy_binding_failed"
    );
    // The unaltered header still opens.
    alice.grant_ok(&file, true).await;
}

on_each_backend!(audit_endpoints_need_admin_or_auditor_and_verify_the_chain);
async fn audit_endpoints_need_admin_or_auditor_and_verify_the_chain(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let (admin, alice, _bob) = cast(&server).await;
    let auditor = server.user(&admin, "olive", &[Role::Auditor], &[]).await;

    let refused = alice
        .expect(Method::GET, "/v1/audit", None, StatusCode::FORBIDDEN)
        .await;
    assert_eq!(refused["reason"], "role_required");
    alice
        .expect(
            Method::POST,
            "/v1/admin/users/bob/suspend",
            None,
            StatusCode::FORBIDDEN,
        )
        .await;
    alice
        .expect(
            Method::POST,
            "/v1/admin/keys/rotate",
            None,
            StatusCode::FORBIDDEN,
        )
        .await;
    auditor
        .expect(
            Method::POST,
            "/v1/admin/groups",
            Some(json!({"name": "x"})),
            StatusCode::FORBIDDEN,
        )
        .await;

    let page = auditor
        .expect(
            Method::GET,
            "/v1/audit?after=2&limit=3",
            None,
            StatusCode::OK,
        )
        .await;
    let seqs: Vec<u64> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![3, 4, 5]);

    let checkpoint = auditor
        .expect(Method::POST, "/v1/audit/checkpoint", None, StatusCode::OK)
        .await;
    assert!(checkpoint["count"].as_u64().unwrap() > 5);
    let report = admin
        .expect(Method::GET, "/v1/audit/verify", None, StatusCode::OK)
        .await;
    assert_eq!(report["ok"], true, "{report}");
    // init's, the one at start, and the one just asked for.
    assert_eq!(report["checkpoints"], 3);

    let records = admin.audit().await;
    assert_eq!(
        count(&records, "audit.read", "denied", Some("role_required")),
        1
    );
    assert_eq!(
        count(
            &records,
            "admin.user.suspend",
            "denied",
            Some("role_required")
        ),
        1
    );
    assert_eq!(
        count(
            &records,
            "admin.key.rotate",
            "denied",
            Some("role_required")
        ),
        1
    );
    assert_eq!(
        count(
            &records,
            "admin.group.create",
            "denied",
            Some("role_required")
        ),
        1
    );
    // Exactly one key: the refused rotation left no key behind.
    let keys = admin
        .expect(Method::GET, "/v1/admin/keys", None, StatusCode::OK)
        .await;
    assert_eq!(keys.as_array().unwrap().len(), 1);
    // The user list shows roles, groups and state.
    let users = admin
        .expect(Method::GET, "/v1/admin/users", None, StatusCode::OK)
        .await;
    let alice_info = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "alice")
        .unwrap();
    assert_eq!(alice_info["groups"], json!(["support"]));
    assert_eq!(alice_info["roles"], json!(["user"]));
    // Conflicts and unknown targets.
    admin
        .expect(
            Method::POST,
            "/v1/admin/groups",
            Some(json!({"name": "support"})),
            StatusCode::CONFLICT,
        )
        .await;
    admin
        .expect(
            Method::POST,
            "/v1/admin/users",
            Some(json!({"name": "alice", "display_name": "A"})),
            StatusCode::CONFLICT,
        )
        .await;
    admin
        .expect(
            Method::POST,
            "/v1/admin/users/nobody/suspend",
            None,
            StatusCode::NOT_FOUND,
        )
        .await;
    // A file id that is not 32 hex digits names nothing (unknown but
    // well-formed ids are controls for files not seen yet: see below).
    for bad in ["zz".repeat(16), "00".repeat(15), "00".repeat(17)] {
        admin
            .expect(
                Method::POST,
                &format!("/v1/admin/files/{bad}/revoke"),
                None,
                StatusCode::BAD_REQUEST,
            )
            .await;
    }
}

/// The file ids in a `GET /v1/admin/files` answer.
fn file_ids(files: &Value) -> BTreeSet<&str> {
    files
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file_id"].as_str().unwrap())
        .collect()
}

/// POST /v1/admin/files/{id}/{verb} as `who`, expecting `status`.
async fn file_op(
    who: &Device,
    id: &str,
    verb: &str,
    body: Option<Value>,
    status: StatusCode,
) -> Value {
    who.expect(
        Method::POST,
        &format!("/v1/admin/files/{id}/{verb}"),
        body,
        status,
    )
    .await
}

on_each_backend!(only_state_changes_move_the_generation_that_request_caches_follow);
/// Cached device records are dropped when the state generation moves; reads
/// and refused calls must not move it, or any signed caller could empty
/// every request's cache at will.
async fn only_state_changes_move_the_generation_that_request_caches_follow(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let (admin, alice, _bob) = cast(&server).await;
    let file = file_for(&alice, &["alice"], Rights::VIEW);
    let generation = || server.state().store.state_generation();
    let before = generation();
    admin
        .expect(Method::GET, "/v1/admin/files", None, StatusCode::OK)
        .await;
    admin
        .expect(Method::GET, "/v1/admin/users", None, StatusCode::OK)
        .await;
    file_op(&alice, &file.id(), "revoke", None, StatusCode::FORBIDDEN).await;
    assert_eq!(generation(), before, "reads and refusals change nothing");
    file_op(&admin, &file.id(), "revoke", None, StatusCode::OK).await;
    assert!(generation() > before, "a revocation moves it on");
}

on_each_backend!(files_sealed_offline_are_controlled_by_id_before_the_server_sees_them);
async fn files_sealed_offline_are_controlled_by_id_before_the_server_sees_them(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let (admin, alice, _bob) = cast(&server).await;
    let view_print = Rights::VIEW | Rights::PRINT;
    let revoked = file_for(&alice, &["alice"], view_print);
    let expired = file_for(&alice, &["alice"], view_print);
    let no_print = file_for(&alice, &["alice"], view_print);
    let nothing_left = file_for(&alice, &["alice"], Rights::VIEW);
    let restored = file_for(&alice, &["alice"], view_print);
    let not_by_alice = file_for(&alice, &["alice"], view_print);

    // Nobody has asked for any of them: the server has never seen them.
    let info = file_op(&admin, &revoked.id(), "revoke", None, StatusCode::OK).await;
    assert_eq!(info["state"], "revoked");
    assert_eq!(info["file_id"], revoked.id());
    assert!(
        info["policy"].is_null(),
        "no policy before the header is seen: {info}"
    );
    assert!(info["owner"].is_null());
    let info = file_op(&admin, &expired.id(), "expire", None, StatusCode::OK).await;
    assert_eq!(info["state"], "expired");
    let remove = |r: &str| Some(json!({"remove": [r]}));
    let info = file_op(
        &admin,
        &no_print.id(),
        "restrict",
        remove("print"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(info["restricted_rights"], json!(["print"]));
    file_op(
        &admin,
        &nothing_left.id(),
        "restrict",
        remove("view"),
        StatusCode::OK,
    )
    .await;
    file_op(&admin, &restored.id(), "revoke", None, StatusCode::OK).await;
    server
        .approved(
            &admin,
            Method::POST,
            &format!("/v1/admin/files/{}/restore", restored.id()),
            None,
        )
        .await;
    // Ids are case-insensitive on the way in.
    let upper = not_by_alice.id().to_ascii_uppercase();
    let refused = file_op(&alice, &upper, "revoke", None, StatusCode::FORBIDDEN).await;
    assert_eq!(refused["reason"], "role_required");

    let listed = admin
        .expect(Method::GET, "/v1/admin/files", None, StatusCode::OK)
        .await;
    let ids = file_ids(&listed);
    assert_eq!(ids.len(), 5, "a refused call leaves no row: {listed}");
    assert!(!ids.contains(not_by_alice.id().as_str()));

    // The very first grant request of each obeys what the administrator did.
    assert_eq!(alice.grant_denied(&revoked, false).await, "file_revoked");
    assert_eq!(alice.grant_denied(&expired, false).await, "file_expired");
    assert_eq!(alice.grant_ok(&no_print, false).await.rights, Rights::VIEW);
    assert_eq!(
        alice.grant_denied(&nothing_left, false).await,
        "rights_restricted"
    );
    assert_eq!(alice.grant_ok(&restored, false).await.rights, view_print);
    alice.grant_ok(&not_by_alice, false).await;
    // Still revoked on the second request; restoring it opens it.
    assert_eq!(alice.grant_denied(&revoked, true).await, "file_revoked");
    server
        .approved(
            &admin,
            Method::POST,
            &format!("/v1/admin/files/{}/restore", revoked.id()),
            None,
        )
        .await;
    alice.grant_ok(&revoked, false).await;

    // Seen now: the rows carry the header's policy, and the first sighting
    // was recorded, once per file.
    let listed = admin
        .expect(Method::GET, "/v1/admin/files", None, StatusCode::OK)
        .await;
    let row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file_id"] == revoked.id())
        .unwrap();
    assert_eq!(
        row["policy"]["grants"][0]["recipients"],
        json!(["alice"]),
        "{row}"
    );
    let records = admin.audit().await;
    for file in [&revoked, &expired, &no_print, &nothing_left, &restored] {
        let registered: Vec<_> = records
            .iter()
            .filter(|r| r.action == "file.register" && r.file_id.as_deref() == Some(&file.id()))
            .collect();
        assert_eq!(registered.len(), 1, "{}", file.id());
        assert!(
            registered[0]
                .detail
                .as_deref()
                .unwrap()
                .contains("controlled by an administrator before")
        );
    }
    assert_eq!(count(&records, "admin.file.revoke", "ok", None), 2);
    assert_eq!(
        count(
            &records,
            "admin.file.revoke",
            "denied",
            Some("role_required")
        ),
        1
    );
}

on_each_backend!(registering_a_file_named_before_keeps_its_controls);
async fn registering_a_file_named_before_keeps_its_controls(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let (admin, alice, bob) = cast(&server).await;
    let file = file_for(&alice, &["bob"], Rights::VIEW | Rights::PRINT);
    file_op(
        &admin,
        &file.id(),
        "restrict",
        Some(json!({"remove": ["print"]})),
        StatusCode::OK,
    )
    .await;
    let body =
        json!({"header": URL_SAFE_NO_PAD.encode(&file.header_bytes), "file_name": "calls.csv"});
    let info = alice
        .expect(Method::POST, "/v1/files", Some(body), StatusCode::OK)
        .await;
    assert_eq!(info["owner"], "alice");
    assert_eq!(info["file_name"], "calls.csv");
    assert_eq!(info["restricted_rights"], json!(["print"]));
    assert_eq!(
        info["policy"]["grants"][0]["recipients"],
        json!(["bob"]),
        "{info}"
    );
    assert_eq!(bob.grant_ok(&file, false).await.rights, Rights::VIEW);
}

on_each_backend!(health_metrics_and_openapi_are_served);
async fn health_metrics_and_openapi_are_served(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let (_admin, alice, _bob) = cast(&server).await;
    let file = file_for(&alice, &["alice"], Rights::VIEW);
    alice.grant_ok(&file, false).await;
    alice
        .grant_denied(
            &seal_to(
                &[KasSecretKey::generate().unwrap().public_key()],
                policy(&["alice"], Rights::VIEW, None, None),
            ),
            false,
        )
        .await;

    let health = server
        .http
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert!(
        health.headers().contains_key("x-request-id"),
        "every answer names its request"
    );
    // A test server runs in the bootstrap mode, and says so.
    let text = health.text().await.unwrap();
    assert!(
        text.starts_with("ok\nwarning: bootstrap mode") && text.lines().count() == 2,
        "{text}"
    );
    let metrics = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("irm_grants_total{kind=\"grant\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("irm_denials_total{reason=\"key_unknown\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("irm_fsync_seconds_bucket"), "{metrics}");
    assert!(metrics.contains("irm_audit_records "), "{metrics}");
    let fsyncs: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("irm_fsync_seconds_count "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(fsyncs > 0);
    let doc: Value = server
        .http
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(doc["components"]["schemas"]["GrantResponse"].is_object());
}

/// `(METHOD, path)` pairs named in docs/PROTOCOL.md: every backquoted
/// `METHOD /path`, with `` `/sibling` `` shorthand after one on the same line.
fn routes_in_protocol_doc() -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md"))
        .unwrap();
    let mut routes = BTreeSet::new();
    for line in text.lines() {
        let mut last: Option<(String, String)> = None;
        for (i, span) in line.split('`').enumerate() {
            if i % 2 == 0 {
                continue;
            }
            let span = span.split('?').next().unwrap();
            if let Some((method, path)) = span.split_once(' ') {
                if ["GET", "POST", "DELETE", "PUT", "PATCH"].contains(&method)
                    && path.starts_with('/')
                {
                    let route = (method.to_owned(), path.to_owned());
                    routes.insert(route.clone());
                    last = Some(route);
                }
            } else if let (Some(sibling), Some((method, path))) = (span.strip_prefix('/'), &last)
                && !sibling.contains('/')
                && !sibling.is_empty()
            {
                let parent = path.rsplit_once('/').unwrap().0;
                routes.insert((method.clone(), format!("{parent}/{sibling}")));
            }
        }
    }
    routes
}

/// Routes exist only as registered with their OpenAPI path items
/// (`api::documented_routes`), so the document as served is the route
/// table: it must match PROTOCOL.md, every route it names must reach a
/// handler, and every other method on those paths must be refused.
#[tokio::test]
async fn served_routes_match_protocol_md_and_the_openapi_document() {
    let server = TestServer::start().await;
    let doc: Value = server
        .http
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    assert_eq!(
        routes_in_protocol_doc(),
        documented,
        "PROTOCOL.md and the OpenAPI document disagree"
    );
    assert_eq!(
        doc,
        serde_json::to_value(irm_key_server::api::openapi_document()).unwrap(),
        "the served document is not the one the routes generate"
    );

    let paths: BTreeSet<&String> = documented.iter().map(|(_, path)| path).collect();
    for path in paths {
        let concrete = path
            .replace("{name}", "x")
            .replace("{user}", "x")
            .replace("{id}", &"00".repeat(16))
            .replace("{key_id}", &"00".repeat(16));
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            let status = server
                .http
                .request(
                    Method::from_bytes(method.as_bytes()).unwrap(),
                    server.url(&concrete),
                )
                .send()
                .await
                .unwrap()
                .status();
            if documented.contains(&(method.to_owned(), path.clone())) {
                // Served by its handler: never the 404/405 fallbacks.
                assert!(
                    status != StatusCode::NOT_FOUND
                        && status != StatusCode::METHOD_NOT_ALLOWED
                        && !status.is_server_error(),
                    "{method} {concrete}: {status}"
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {concrete} is served but not documented"
                );
            }
        }
    }
}

/// Every schema the document refers to is in it, and the enumerations carry
/// exactly the strings the protocol types serialise to.
#[test]
fn the_openapi_schemas_come_from_the_protocol_types() {
    let doc = serde_json::to_value(irm_key_server::api::openapi_document()).unwrap();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let text = doc.to_string();
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(
            schemas.contains_key(name),
            "{name} is referred to but missing"
        );
    }
    let values = |name: &str| -> BTreeSet<String> {
        schemas[name]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} is not an enumeration"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    fn wire<T: serde::Serialize>(values: &[T]) -> BTreeSet<String> {
        values
            .iter()
            .map(|v| {
                serde_json::to_value(v)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }
    use irm_core::protocol::{DenyReason, KeyState};
    assert_eq!(values("DenyReason"), wire(&DenyReason::ALL));
    assert_eq!(
        values("KeyState"),
        wire(&[KeyState::Current, KeyState::Active, KeyState::Retired])
    );
    assert_eq!(values("Role"), wire(&Role::ALL));
    assert!(values("UsageAction").contains("program_read"));
    // Rights travel as a list of right names.
    let rights = &schemas["Rights"];
    assert_eq!(rights["type"], "array", "{rights}");
    let names: BTreeSet<String> = rights["items"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        Rights::NAMES.iter().map(|(n, _)| (*n).to_owned()).collect()
    );
}

on_each_backend!(a_second_server_on_the_same_database_is_refused);
/// PROTOCOL.md §11.1: one writer per database, SQLite's or PostgreSQL's.
async fn a_second_server_on_the_same_database_is_refused(backend: Backend) {
    use irm_key_server::datadir::DataDirError;
    use irm_key_server::error::StoreError;
    let server = TestServer::start_on(backend).await;
    let settings = (*server.state().settings).clone();
    let second = irm_key_server::AppState::open(settings, server.clock.clone());
    assert!(
        matches!(second, Err(DataDirError::Store(StoreError::InUse))),
        "{:?}",
        second.err()
    );
    // The first goes on serving.
    server.admin().await;
}

/// PROTOCOL.md §11.1: the store reconnects after losing its connections
/// (here: every session on the database ended by the administrator) before
/// a request fails on them, and the chain goes on from the head as stored.
#[tokio::test]
async fn on_postgres_the_store_reconnects_after_losing_its_connections() {
    let server = TestServer::start_on(Backend::Postgres).await;
    let (admin, alice, _bob) = cast(&server).await;
    let file = file_for(&alice, &["alice"], Rights::VIEW);
    alice.grant_ok(&file, false).await;
    let name = server.database.as_ref().expect("a database").name.clone();
    // Ended, and waited for (up to 10 s), as a restart of the server would.
    common::pg::admin(&format!(
        "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity \
         WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    ))
    .unwrap();
    // No request fails for it: each connection is found ended before use.
    alice.grant_ok(&file, true).await;
    let records = admin.audit().await;
    assert_eq!(count(&records, "renew", "ok", None), 1);
    let report = admin
        .expect(Method::GET, "/v1/audit/verify", None, StatusCode::OK)
        .await;
    assert_eq!(report["ok"], true, "{report}");
}

on_each_backend!(the_audit_query_gives_the_newest_records_and_filters_them);
/// PROTOCOL.md §7.5: `GET /v1/audit` with `newest=true` answers the newest
/// records, oldest of them first; `user`, `file`, `action` (itself and the
/// actions under it) and `since_ms` filter in the database, on both stores;
/// a number past the log's range is a 400, not a 500.
async fn the_audit_query_gives_the_newest_records_and_filters_them(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let admin = server.admin().await;
    let alice = server.user(&admin, "alice", &[Role::User], &[]).await;
    let file = seal(
        &alice.server_key.public_key,
        policy(&["alice"], Rights::VIEW, None, None),
    );
    for _ in 0..30 {
        alice.grant_ok(&file, false).await;
    }
    server.clock.advance_secs(60);
    let later = server.clock.now_ms();
    admin
        .expect(
            Method::POST,
            &format!("/v1/admin/files/{}/revoke", file.id()),
            None,
            StatusCode::OK,
        )
        .await;
    alice.grant_denied(&file, false).await;

    let get = |query: &str| {
        let path = format!("/v1/audit?{query}");
        let admin = &admin;
        async move {
            let body = admin.expect(Method::GET, &path, None, StatusCode::OK).await;
            serde_json::from_value::<Vec<irm_core::protocol::AuditRecord>>(body).unwrap()
        }
    };
    let newest = get("newest=true&limit=5").await;
    assert_eq!(newest.len(), 5);
    assert_eq!(newest[4].action, "grant");
    assert_eq!(newest[4].reason.as_deref(), Some("file_revoked"));
    assert_eq!(newest[3].action, "admin.file.revoke");
    assert!(newest.windows(2).all(|w| w[0].seq < w[1].seq));
    let oldest = get("limit=5").await;
    assert_eq!(oldest[0].seq, 1);

    let by_alice = get("newest=true&limit=1000&user=alice").await;
    assert_eq!(
        by_alice.len(),
        33,
        "enroll, registration, 30 grants, one refusal"
    );
    assert!(
        by_alice
            .iter()
            .all(|r| r.actor_user.as_deref() == Some("alice"))
    );
    let about = get(&format!("limit=1000&file={}", file.id())).await;
    assert!(
        about
            .iter()
            .all(|r| r.file_id.as_deref() == Some(file.id().as_str()))
    );
    assert_eq!(about.len(), 33, "registration, 31 grants, the revocation");
    let admin_file = get("limit=1000&action=admin.file").await;
    assert_eq!(admin_file.len(), 1);
    assert_eq!(admin_file[0].action, "admin.file.revoke");
    let admins = get("limit=1000&action=admin").await;
    assert!(admins.iter().all(|r| r.action.starts_with("admin.")));
    assert!(admins.len() > 3, "{admins:?}");
    assert!(
        get("limit=1000&action=admi").await.is_empty(),
        "whole words only"
    );
    let since = get(&format!("limit=1000&since_ms={later}")).await;
    assert_eq!(
        since.iter().map(|r| r.action.as_str()).collect::<Vec<_>>()[..2],
        ["admin.file.revoke", "grant"]
    );

    for bad in [
        "after=9223372036854775808",
        "limit=0",
        "file=xyz",
        "colour=red",
    ] {
        let body = admin
            .expect(
                Method::GET,
                &format!("/v1/audit?{bad}"),
                None,
                StatusCode::BAD_REQUEST,
            )
            .await;
        assert_eq!(body["error"], "bad_request", "{bad}: {body}");
    }
}
