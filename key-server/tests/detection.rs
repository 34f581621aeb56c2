//! Detection on the grant path (PROTOCOL.md §12), against the real server
//! on SQLite and PostgreSQL: a person who opens more distinct files than
//! the rule allows in its window is held (`step_up_required`) from that
//! grant on, renewals included, until two administrators release them; the
//! counts survive a restart; `suspend` suspends instead; repeated refusals
//! raise an alert; a slow, ordinary reader raises nothing; and requests
//! that fail their signature count towards no one.

#[macro_use]
mod common;

use common::{Backend, Device, SealedFile, TestServer, policy, seal};
use irm_core::Rights;
use irm_core::protocol::{AuditRecord, Role};
use irm_key_server::detect::{Action, BulkRule, DenialRule, Rules};
use reqwest::{Method, StatusCode};

/// Five files in five minutes at most; three refusals in ten minutes alert.
fn rules(action: Action) -> Rules {
    Rules {
        bulk: Some(BulkRule {
            files: 5,
            window_secs: 300,
            action,
        }),
        denials: Some(DenialRule {
            denials: 3,
            window_secs: 600,
        }),
    }
}

async fn server_with(
    backend: Backend,
    action: Action,
) -> (TestServer, Device, Device, Vec<SealedFile>) {
    let server = TestServer::start_on_with(backend, |s| {
        s.detection = rules(action);
        s.contacts = [("*".to_owned(), "the security desk, ext. 4000".to_owned())].into();
    })
    .await;
    let admin = server.admin().await;
    let alice = server.user(&admin, "alice", &[Role::User], &[]).await;
    let key = admin.server_key.public_key.clone();
    let files = (0..8)
        .map(|_| seal(&key, policy(&["alice"], Rights::VIEW, None, None)))
        .collect();
    (server, admin, alice, files)
}

fn fired<'a>(records: &'a [AuditRecord], action: &str) -> Vec<&'a AuditRecord> {
    records.iter().filter(|r| r.action == action).collect()
}

async fn bulk_access_holds_the_person_until_two_administrators_release_them(backend: Backend) {
    let (mut server, admin, alice, files) = server_with(backend, Action::StepUp).await;
    for file in &files[..5] {
        alice.grant_ok(file, false).await;
    }
    // The same files again are ordinary work, and renewals are not new files.
    alice.grant_ok(&files[0], false).await;
    alice.grant_ok(&files[1], true).await;

    // The counts survive a restart: the sixth file is still the sixth.
    server.restart(|_| {}).await;
    server.clock.advance_secs(10);
    assert_eq!(
        alice.grant_denied(&files[5], false).await,
        "step_up_required"
    );
    let audit = admin.audit().await;
    let detect = fired(&audit, "detect.bulk_files");
    assert_eq!(detect.len(), 1, "one firing");
    assert_eq!(detect[0].actor_user.as_deref(), Some("alice"));
    let detail = detect[0].detail.as_deref().unwrap_or("");
    assert!(
        detail.starts_with("files=6 window_secs=300 limit=5 action=step_up"),
        "{detail}"
    );
    let refused = audit.last().expect("the grant's record");
    assert_eq!(refused.action, "grant");
    assert_eq!(refused.reason.as_deref(), Some("step_up_required"));

    // Held: every grant and renewal, of any file, until released; the
    // refusal says whom to call.
    let response = alice.grant_raw(&files[0].header_bytes, false).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["reason"], "step_up_required", "{body}");
    assert_eq!(
        body["message"],
        "your access is paused for review after unusual activity; call the security desk, ext. 4000"
    );
    assert_eq!(
        alice.grant_denied(&files[0], true).await,
        "step_up_required"
    );
    // Even an hour later: a hold does not time out.
    server.clock.advance_secs(3600);
    assert_eq!(
        alice.grant_denied(&files[6], false).await,
        "step_up_required"
    );

    // One administrator cannot release alone: it is a request.
    let filed = admin
        .expect(
            Method::POST,
            "/v1/admin/users/alice/release",
            None,
            StatusCode::ACCEPTED,
        )
        .await;
    assert_eq!(
        filed["request"]["action"]["kind"], "release_hold",
        "{filed}"
    );
    assert_eq!(
        alice.grant_denied(&files[0], false).await,
        "step_up_required"
    );
    server.approve(&filed).await;
    // Released, and the burst that held her does not hold her again.
    alice.grant_ok(&files[6], false).await;
    alice.grant_ok(&files[7], false).await;
    let audit = admin.audit().await;
    assert!(
        audit
            .iter()
            .any(|r| r.action == "admin.user.release" && r.result == "ok"),
        "the release is audited"
    );
    // Nothing to release any more: no request is filed for nothing.
    let again = admin
        .expect(
            Method::POST,
            "/v1/admin/users/alice/release",
            None,
            StatusCode::CONFLICT,
        )
        .await;
    assert_eq!(again["message"], "no detection rule holds alice", "{again}");
}

async fn the_suspend_action_suspends(backend: Backend) {
    let (_server, admin, alice, files) = server_with(backend, Action::Suspend).await;
    for file in &files[..5] {
        alice.grant_ok(file, false).await;
    }
    let response = alice.grant_raw(&files[5].header_bytes, false).await;
    // A suspended person's requests fail at authentication from now on.
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let users = admin
        .expect(Method::GET, "/v1/admin/users", None, StatusCode::OK)
        .await;
    let alice_row = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "alice")
        .cloned()
        .unwrap();
    assert_eq!(alice_row["state"], "suspended", "{alice_row}");
    let audit = admin.audit().await;
    let detect = fired(&audit, "detect.bulk_files");
    assert_eq!(detect.len(), 1);
    assert!(
        detect[0]
            .detail
            .as_deref()
            .unwrap_or("")
            .contains("action=suspend")
    );
}

async fn ordinary_reading_and_unsigned_requests_raise_nothing_but_probing_does(backend: Backend) {
    let (server, admin, alice, files) = server_with(backend, Action::StepUp).await;
    // A new file every two minutes: never more than three in five minutes.
    for file in &files {
        alice.grant_ok(file, false).await;
        server.clock.advance_secs(120);
    }
    // Requests whose signature fails name alice, but prove nothing: they
    // never reach the rules (an outsider cannot lock her out).
    for _ in 0..5 {
        let response = server
            .http
            .post(server.url("/v1/grant"))
            .header(
                "authorization",
                format!("IRM-Sig device={},ts=1,nonce=AAAA,sig=AAAA", alice.id),
            )
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let audit = admin.audit().await;
    assert!(fired(&audit, "detect.bulk_files").is_empty());
    assert!(fired(&audit, "detect.denials").is_empty());

    // Alice asking for files that are not hers, three times: an alert,
    // and she still reads her own.
    let key = admin.server_key.public_key.clone();
    let not_hers = seal(&key, policy(&["admin"], Rights::VIEW, None, None));
    for _ in 0..3 {
        assert_eq!(alice.grant_denied(&not_hers, false).await, "not_recipient");
    }
    let audit = admin.audit().await;
    let alerts = fired(&audit, "detect.denials");
    assert_eq!(alerts.len(), 1, "one alert for the burst");
    assert!(
        alerts[0]
            .detail
            .as_deref()
            .unwrap_or("")
            .starts_with("denials=3 window_secs=600 limit=3 action=alert")
    );
    assert_eq!(alice.grant_denied(&not_hers, false).await, "not_recipient");
    assert_eq!(fired(&admin.audit().await, "detect.denials").len(), 1);
    alice.grant_ok(&files[0], false).await;
}

on_each_backend!(
    bulk_access_holds_the_person_until_two_administrators_release_them,
    the_suspend_action_suspends,
    ordinary_reading_and_unsigned_requests_raise_nothing_but_probing_does,
);
