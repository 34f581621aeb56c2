//! State the database cannot forge (PROTOCOL.md §11.3), against the real
//! server on SQLite and PostgreSQL: someone who writes the database
//! directly inserts a device and a group membership, deletes a file's
//! revocation, writes a revoked device back as it was, lowers an approval
//! rule, inserts an approved take-out, gives a user a role, sets a code it
//! knows, adds an approval and plants a break-glass code. None of it yields
//! a grant, an enrollment, an approval or an administrative call: each is
//! refused with `state_integrity` and audited, also after a restart; an
//! administrator's own change through the server repairs it.

#[macro_use]
mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Backend, Device, TestServer, policy, seal};
use irm_core::protocol::Role;
use irm_core::{DeviceSecretKey, Rights, SigningSecretKey};
use reqwest::{Method, StatusCode};

/// Runs one statement on the server's database behind its back: `sqlite`
/// on the SQLite file, `postgres` on PostgreSQL.
fn behind_its_back(server: &TestServer, sqlite: &str, postgres: &str) {
    match &server.database_url {
        None => {
            let conn = rusqlite::Connection::open(server.dir.path().join("irm-key-server.db"))
                .expect("the database");
            conn.execute_batch(sqlite).expect(sqlite);
        }
        Some(url) => {
            let statement = postgres.to_owned();
            common::pg::with_client(url, move |client| {
                client.batch_execute(&statement).expect("the statement")
            });
        }
    }
}

async fn refused(device: &Device, file: &common::SealedFile) {
    assert_eq!(device.grant_denied(file, false).await, "state_integrity");
}

async fn the_database_cannot_widen_access(backend: Backend) {
    let mut server = TestServer::start_on(backend).await;
    let admin = server.admin().await;
    admin.create_group("support").await;
    let alice = server
        .user(&admin, "alice", &[Role::User], &["support"])
        .await;
    let bob = server.user(&admin, "bob", &[Role::User], &[]).await;
    let key = admin.server_key.public_key.clone();
    let for_support = seal(&key, policy(&["@support"], Rights::VIEW, None, None));
    let for_alice = seal(&key, policy(&["alice"], Rights::VIEW, None, None));
    let for_bob = seal(&key, policy(&["bob"], Rights::VIEW, None, None));
    alice.grant_ok(&for_support, false).await;
    bob.grant_ok(&for_bob, false).await;
    assert_eq!(bob.grant_denied(&for_support, false).await, "not_recipient");

    // 1. A membership inserted: bob reads nothing at all until it is undone.
    behind_its_back(
        &server,
        "INSERT INTO group_members (group_name, user_name) VALUES ('support', 'bob')",
        "INSERT INTO group_members (group_name, user_name) VALUES ('support', 'bob')",
    );
    refused(&bob, &for_support).await;
    refused(&bob, &for_bob).await;
    admin
        .expect(
            Method::DELETE,
            "/v1/admin/groups/support/members/bob",
            None,
            StatusCode::NO_CONTENT,
        )
        .await;
    assert_eq!(bob.grant_denied(&for_support, false).await, "not_recipient");
    bob.grant_ok(&for_bob, false).await;

    // 2. A device inserted for alice, with keys the intruder holds.
    let signing = SigningSecretKey::generate().unwrap();
    let secret = DeviceSecretKey::generate().unwrap();
    let forged_id = "f0".repeat(16);
    let (public, verify) = (
        hex::encode(secret.public_key().to_bytes()),
        hex::encode(
            URL_SAFE_NO_PAD
                .decode(signing.public_key_b64())
                .expect("base64url"),
        ),
    );
    behind_its_back(
        &server,
        &format!(
            "INSERT INTO devices (id, user_name, name, public_key, signing_key, active, enrolled_at)
             VALUES ('{forged_id}', 'alice', 'usb', X'{public}', X'{verify}', 1, 0)"
        ),
        &format!(
            "INSERT INTO devices (id, user_name, name, public_key, signing_key, active, enrolled_at)
             VALUES ('{forged_id}', 'alice', 'usb', decode('{public}', 'hex'), decode('{verify}', 'hex'), true, 0)"
        ),
    );
    let intruder = Device {
        id: forged_id.clone(),
        user: "alice".into(),
        signing,
        secret,
        server_key: alice.server_key.clone(),
        base: alice.base.clone(),
        http: alice.http.clone(),
        clock: alice.clock.clone(),
    };
    refused(&intruder, &for_alice).await;
    alice.grant_ok(&for_alice, false).await;

    // 3. A revocation deleted: the file's row rolled back, then gone.
    let file_id = for_bob.id();
    admin
        .expect(
            Method::POST,
            &format!("/v1/admin/files/{file_id}/revoke"),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(bob.grant_denied(&for_bob, false).await, "file_revoked");
    behind_its_back(
        &server,
        &format!("UPDATE files SET revoked = 0 WHERE id = '{file_id}'"),
        &format!("UPDATE files SET revoked = false WHERE id = '{file_id}'"),
    );
    refused(&bob, &for_bob).await;
    behind_its_back(
        &server,
        &format!(
            "DELETE FROM grants WHERE file_id = '{file_id}'; DELETE FROM files WHERE id = '{file_id}'"
        ),
        &format!(
            "DELETE FROM grants WHERE file_id = '{file_id}'; DELETE FROM files WHERE id = '{file_id}'"
        ),
    );
    refused(&bob, &for_bob).await;

    // 4. A revoked device written back as it was before.
    admin
        .expect(
            Method::POST,
            &format!("/v1/admin/devices/{}/revoke", alice.id),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        alice.grant_denied(&for_alice, false).await,
        "device_revoked"
    );
    behind_its_back(
        &server,
        &format!("UPDATE devices SET active = 1 WHERE id = '{}'", alice.id),
        &format!("UPDATE devices SET active = true WHERE id = '{}'", alice.id),
    );
    refused(&alice, &for_alice).await;

    // 5. Two-person control written instead of asked for: a take-out rule
    // lowered to none, an approved export inserted.
    let for_admin2 = seal(
        &key,
        policy(&["admin2"], Rights::VIEW | Rights::EXPORT, None, None),
    );
    let admin2 = server.approver();
    let grant = admin2.grant_ok(&for_admin2, false).await;
    let export = |grant: String| {
        let body = serde_json::json!({"grant_id": grant, "action": "export"});
        async move { admin2.send(Method::POST, "/v1/events", Some(body)).await }
    };
    let denied: serde_json::Value = export(grant.grant_id.clone()).await.json().await.unwrap();
    assert_eq!(denied["reason"], "export_approval_required");
    behind_its_back(
        &server,
        "INSERT INTO approval_rules (action, required) VALUES ('file.export', 0)",
        "INSERT INTO approval_rules (action, required) VALUES ('file.export', 0)",
    );
    let denied: serde_json::Value = export(grant.grant_id.clone()).await.json().await.unwrap();
    assert_eq!(denied["reason"], "state_integrity", "{denied}");
    behind_its_back(
        &server,
        &format!(
            "DELETE FROM approval_rules; INSERT INTO take_outs (file_id, user_name, device_id, action, expires_at) VALUES ('{}', 'admin2', '{}', 'file.export', 9999999999)",
            for_admin2.id(),
            admin2.id
        ),
        &format!(
            "DELETE FROM approval_rules; INSERT INTO take_outs (file_id, user_name, device_id, action, expires_at) VALUES ('{}', 'admin2', '{}', 'file.export', 9999999999)",
            for_admin2.id(),
            admin2.id
        ),
    );
    let denied: serde_json::Value = export(grant.grant_id.clone()).await.json().await.unwrap();
    assert_eq!(denied["reason"], "state_integrity", "{denied}");
    behind_its_back(&server, "DELETE FROM take_outs", "DELETE FROM take_outs");

    // 6. A role given: no administration.
    behind_its_back(
        &server,
        "UPDATE users SET roles = 'admin' WHERE name = 'bob'",
        "UPDATE users SET roles = 'admin' WHERE name = 'bob'",
    );
    let body = bob
        .expect(Method::GET, "/v1/admin/users", None, StatusCode::FORBIDDEN)
        .await;
    assert_eq!(body["reason"], "state_integrity", "{body}");

    // 7. A code set to one the intruder knows: it enrolls no one.
    let known = "ABCDE-FGHIJ-KLMNO-PQRST";
    let hash = hex::encode(irm_key_server::codes::hash(known));
    behind_its_back(
        &server,
        &format!(
            "UPDATE users SET code_hash = X'{hash}', code_expires_at = 9999999999, code_failures = 0 WHERE name = 'bob'"
        ),
        &format!(
            "UPDATE users SET code_hash = decode('{hash}', 'hex'), code_expires_at = 9999999999, code_failures = 0 WHERE name = 'bob'"
        ),
    );
    let (response, _) = server.try_enroll("bob", known).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["reason"], "state_integrity", "{body}");

    // 8. An approval written in: the request is refused to its real approver.
    let filed = admin
        .expect(
            Method::POST,
            "/v1/admin/groups/support/members",
            Some(serde_json::json!({"user": "admin2"})),
            StatusCode::ACCEPTED,
        )
        .await;
    let id = filed["request"]["id"].as_str().unwrap().to_owned();
    behind_its_back(
        &server,
        &format!(
            "INSERT INTO approvals (request_id, approver, device, at) VALUES ('{id}', 'ghost', '', 0)"
        ),
        &format!(
            "INSERT INTO approvals (request_id, approver, device, at) VALUES ('{id}', 'ghost', '', 0)"
        ),
    );
    let body = server
        .approver()
        .expect(
            Method::POST,
            &format!("/v1/admin/requests/{id}/approve"),
            Some(serde_json::json!({"action_hash": filed["request"]["action_hash"]})),
            StatusCode::FORBIDDEN,
        )
        .await;
    assert_eq!(body["reason"], "state_integrity", "{body}");

    // 9. A break-glass code written in: it approves nothing.
    behind_its_back(
        &server,
        &format!(
            "DELETE FROM approvals WHERE approver = 'ghost'; INSERT INTO break_glass (slot, code_hash, issued_at, expires_at, origin) VALUES ('current', X'{hash}', 0, 9999999999, 'x')"
        ),
        &format!(
            "DELETE FROM approvals WHERE approver = 'ghost'; INSERT INTO break_glass (slot, code_hash, issued_at, expires_at, origin) VALUES ('current', decode('{hash}', 'hex'), 0, 9999999999, 'x')"
        ),
    );
    let body = server
        .approver()
        .expect(
            Method::POST,
            &format!("/v1/admin/requests/{id}/approve"),
            Some(serde_json::json!({"action_hash": filed["request"]["action_hash"], "break_glass": known})),
            StatusCode::FORBIDDEN,
        )
        .await;
    assert_eq!(body["reason"], "state_integrity", "{body}");

    // A restart rebuilds the ledger from the audit log: still refused.
    server.restart(|_| {}).await;
    let body = bob
        .expect(Method::GET, "/v1/admin/users", None, StatusCode::FORBIDDEN)
        .await;
    assert_eq!(body["reason"], "state_integrity", "{body}");
    refused(&intruder, &for_alice).await;
    refused(&alice, &for_alice).await;
    // Untouched people carry on.
    let admin2_file = seal(&key, policy(&["admin2"], Rights::VIEW, None, None));
    server.approver().grant_ok(&admin2_file, false).await;

    // 10. A retired key written back to service.
    let old_key = admin.server_key.key_id.clone();
    let rotated = admin
        .expect(Method::POST, "/v1/admin/keys/rotate", None, StatusCode::OK)
        .await;
    assert_ne!(rotated["key_id"], old_key.as_str());
    admin
        .expect(
            Method::POST,
            &format!("/v1/admin/keys/{old_key}/retire"),
            None,
            StatusCode::NO_CONTENT,
        )
        .await;
    assert_eq!(
        server.approver().grant_denied(&admin2_file, false).await,
        "key_retired"
    );
    behind_its_back(
        &server,
        &format!("UPDATE kas_keys SET state = 'active' WHERE key_id = '{old_key}'"),
        &format!("UPDATE kas_keys SET state = 'active' WHERE key_id = '{old_key}'"),
    );
    refused(server.approver(), &admin2_file).await;

    // `audit verify` names every object that is not as the log set it.
    let report = admin
        .expect(Method::GET, "/v1/audit/verify", None, StatusCode::OK)
        .await;
    assert_eq!(report["ok"], false, "{report}");
    let problems = report["problems"].to_string();
    for object in [
        format!("state: device/{forged_id} "),
        format!("state: file/{file_id} "),
        format!("state: device/{} ", alice.id),
        "state: user/bob ".to_owned(),
        format!("state: key/{old_key} "),
    ] {
        assert!(problems.contains(&object), "{object} in {problems}");
    }
    assert!(
        !problems.contains("member/support/bob"),
        "repaired: {problems}"
    );

    // Every refusal is in the audit log, naming the object.
    let records = admin.audit().await;
    let integrity: Vec<_> = records
        .iter()
        .filter(|r| r.reason.as_deref() == Some("state_integrity"))
        .collect();
    assert_eq!(integrity.len(), 16, "{integrity:#?}");
    for object in [
        "object=member/support/bob",
        &format!("object=device/{forged_id}"),
        &format!("object=file/{file_id}"),
        &format!("object=device/{}", alice.id),
        "object=user/bob",
        &format!("object=take_out/export/{}/admin2/", for_admin2.id()),
        "object=rule/file.export",
        "object=code/bob",
        &format!("object=key/{old_key}"),
    ] {
        assert!(
            integrity
                .iter()
                .any(|r| r.detail.as_deref().unwrap_or("").contains(object)),
            "{object}"
        );
    }
    server.stop().await;
}

on_each_backend!(the_database_cannot_widen_access);
