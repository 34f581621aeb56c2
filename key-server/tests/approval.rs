//! Two-person control against the real server (PROTOCOL.md §7.2), on SQLite
//! and PostgreSQL: the ways one administrator used to read files that were
//! not shared with them, each now refused until a second, distinct
//! administrator approves; approvals bound to the exact action; codes in
//! halves that neither administrator holds whole; expiry, denial, rules, the
//! bootstrap exception and its limits; every step in the audit log.

#[macro_use]
mod common;

use common::{Backend, Device, TestServer, policy, seal};
use irm_core::Rights;
use irm_core::protocol::{ApprovalAction, AuditRecord, Role};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn records<'a>(all: &'a [AuditRecord], action: &str, result: &str) -> Vec<&'a AuditRecord> {
    all.iter()
        .filter(|r| r.action == action && r.result == result)
        .collect()
}

async fn approve_as(device: &Device, filed: &Value, hash: &Value, status: StatusCode) -> Value {
    let id = filed["request"]["id"].as_str().expect("an id");
    device
        .expect(
            Method::POST,
            &format!("/v1/admin/requests/{id}/approve"),
            Some(json!({ "action_hash": hash })),
            status,
        )
        .await
}

on_each_backend!(an_admin_joining_a_recipient_group_reads_nothing_until_another_admin_approves);
async fn an_admin_joining_a_recipient_group_reads_nothing_until_another_admin_approves(
    backend: Backend,
) {
    let server = TestServer::start_on(backend).await;
    let admin = server.admin().await;
    let admin2 = server.approver();
    admin.create_group("support").await;
    let alice = server
        .user(&admin, "alice", &[Role::User], &["support"])
        .await;
    let file = seal(
        &alice.server_key.public_key,
        policy(&["@support"], Rights::VIEW, None, None),
    );
    alice.grant_ok(&file, false).await;

    // The attack: the admin adds themselves to the recipient group. Filed,
    // not done, with the reason the admin gave.
    let filed = admin
        .expect(
            Method::POST,
            "/v1/admin/groups/support/members?reason=TICKET-7",
            Some(json!({"user": "admin"})),
            StatusCode::ACCEPTED,
        )
        .await;
    assert_eq!(filed["request"]["state"], "pending", "{filed}");
    assert_eq!(filed["request"]["reason"], "TICKET-7");
    assert_eq!(filed["request"]["required"], 1);
    assert!(filed.get("code_half").is_none(), "{filed}");
    assert_eq!(admin.grant_denied(&file, false).await, "not_recipient");

    // The hash is the canonical one, as a client computes it from what it shows.
    let action: ApprovalAction =
        serde_json::from_value(filed["request"]["action"].clone()).unwrap();
    assert_eq!(
        action,
        ApprovalAction::AddMember {
            group: "support".into(),
            user: "admin".into()
        }
    );
    let hash = json!(action.hash());
    assert_eq!(filed["request"]["action_hash"], hash);

    // The requester cannot approve; an approval of other parameters does
    // not carry over; a user is not an administrator.
    let refused = approve_as(&admin, &filed, &hash, StatusCode::CONFLICT).await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("another administrator"),
        "{refused}"
    );
    let other = ApprovalAction::AddMember {
        group: "support".into(),
        user: "alice".into(),
    }
    .hash();
    approve_as(admin2, &filed, &json!(other), StatusCode::CONFLICT).await;
    let denied = approve_as(&alice, &filed, &hash, StatusCode::FORBIDDEN).await;
    assert_eq!(denied["reason"], "role_required");
    assert_eq!(admin.grant_denied(&file, false).await, "not_recipient");

    // A second, distinct administrator approves: it runs now, once.
    let done = approve_as(admin2, &filed, &hash, StatusCode::OK).await;
    assert_eq!(done["request"]["state"], "done", "{done}");
    assert_eq!(done["request"]["approvals"][0]["approver"], "admin2");
    admin.grant_ok(&file, false).await;
    approve_as(admin2, &filed, &hash, StatusCode::CONFLICT).await;

    // Every step is in the log, naming the person.
    let log = admin2.audit().await;
    let created = records(&log, "admin.request.create", "ok");
    assert_eq!(created.len(), 2, "alice's creation and the membership");
    let request = created.last().unwrap();
    assert_eq!(request.actor_user.as_deref(), Some("admin"));
    assert!(
        request
            .detail
            .as_deref()
            .unwrap()
            .contains("reason=TICKET-7")
    );
    let failed = records(&log, "admin.request.approve", "failed");
    assert_eq!(failed.len(), 3, "self, other parameters, twice");
    assert_eq!(failed[0].actor_user.as_deref(), Some("admin"));
    let effect = records(&log, "admin.group.add_member", "ok");
    let effect = effect.last().unwrap();
    assert_eq!(effect.actor_user.as_deref(), Some("admin"));
    let detail = effect.detail.as_deref().unwrap();
    assert!(detail.contains("group=support user=admin"), "{detail}");
    assert!(detail.contains("approved_by=admin2"), "{detail}");
    assert!(detail.contains("reason=TICKET-7"), "{detail}");
    assert_eq!(
        records(&log, "admin.request.approve", "denied")[0]
            .actor_user
            .as_deref(),
        Some("alice")
    );
}

on_each_backend!(a_new_code_for_someone_else_is_two_halves_that_no_admin_holds_together);
async fn a_new_code_for_someone_else_is_two_halves_that_no_admin_holds_together(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let admin = server.admin().await;
    let admin2 = server.approver();
    let bob = server.user(&admin, "bob", &[], &[]).await;
    let file = seal(
        &bob.server_key.public_key,
        policy(&["bob"], Rights::VIEW, None, None),
    );

    // The attack: revoke bob's device (immediate: it narrows access), then
    // issue bob a code and enroll as him.
    admin
        .expect(
            Method::POST,
            &format!("/v1/admin/devices/{}/revoke", bob.id),
            None,
            StatusCode::OK,
        )
        .await;
    let filed = admin
        .expect(
            Method::POST,
            "/v1/admin/users/bob/code",
            None,
            StatusCode::ACCEPTED,
        )
        .await;
    let first = filed["code_half"].as_str().expect("the requester's half");
    assert_eq!(first.len(), 11, "{first}");
    // The half alone, and the half twice, open nothing (and are counted).
    let (response, _) = server.try_enroll("bob", first).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let (response, _) = server.try_enroll("bob", &format!("{first}-{first}")).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    let done = server.approve(&filed).await;
    let second = done["code_half"].as_str().expect("the approver's half");
    assert_ne!(first, second);
    assert!(done["code_expires_at"].as_u64().is_some(), "{done}");
    let (response, _) = server.try_enroll("bob", second).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // Both halves, the requester's first, make the code.
    let new_bob = server.enroll("bob", &format!("{first}-{second}")).await;
    new_bob.grant_ok(&file, false).await;

    let log = admin2.audit().await;
    let effect = records(&log, "admin.user.code", "ok");
    let detail = effect.last().unwrap().detail.as_deref().unwrap();
    assert!(detail.contains("user=bob"), "{detail}");
    assert!(detail.contains("approved_by=admin2"), "{detail}");
    // No record holds either half.
    for record in &log {
        let text = serde_json::to_string(record).unwrap();
        assert!(!text.contains(first) && !text.contains(second), "{text}");
    }
}

on_each_backend!(expired_and_denied_requests_do_nothing_and_say_so);
async fn expired_and_denied_requests_do_nothing_and_say_so(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let admin = server.admin().await;
    let admin2 = server.approver();
    let alice = server.user(&admin, "alice", &[], &[]).await;
    admin
        .expect(
            Method::POST,
            "/v1/admin/users/alice/suspend",
            None,
            StatusCode::OK,
        )
        .await;
    let file = seal(
        &alice.server_key.public_key,
        policy(&["alice"], Rights::VIEW, None, None),
    );

    // Expired: a day later the approval is refused and nothing ran.
    let filed = admin
        .expect(
            Method::POST,
            "/v1/admin/users/alice/restore",
            None,
            StatusCode::ACCEPTED,
        )
        .await;
    let hash = filed["request"]["action_hash"].clone();
    server.clock.advance_secs(24 * 3600);
    let refused = approve_as(admin2, &filed, &hash, StatusCode::CONFLICT).await;
    assert!(
        refused["message"].as_str().unwrap().contains("expired"),
        "{refused}"
    );
    assert_eq!(alice.grant_denied(&file, false).await, "user_suspended");
    let id = filed["request"]["id"].as_str().unwrap();
    let shown = admin2
        .expect(
            Method::GET,
            &format!("/v1/admin/requests/{id}"),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(shown["state"], "expired", "{shown}");

    // Denied: by the other administrator; then it cannot be approved.
    let filed = admin
        .expect(
            Method::POST,
            "/v1/admin/users/alice/restore",
            None,
            StatusCode::ACCEPTED,
        )
        .await;
    let id = filed["request"]["id"].as_str().unwrap();
    let denied = admin2
        .expect(
            Method::POST,
            &format!("/v1/admin/requests/{id}/deny?reason=not+on+the+rota"),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(denied["state"], "denied");
    assert_eq!(denied["outcome"], "denied by admin2");
    let hash = filed["request"]["action_hash"].clone();
    approve_as(admin2, &filed, &hash, StatusCode::CONFLICT).await;
    assert_eq!(alice.grant_denied(&file, false).await, "user_suspended");

    let log = admin2.audit().await;
    assert_eq!(records(&log, "admin.request.expire", "ok").len(), 1);
    let deny = records(&log, "admin.request.deny", "ok");
    assert_eq!(deny[0].actor_user.as_deref(), Some("admin2"));
    assert!(
        deny[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("reason=not on the rota")
    );
    assert!(records(&log, "admin.user.restore", "ok").is_empty());
}

on_each_backend!(the_bootstrap_lets_a_lone_admin_add_one_admin_and_then_never_again);
async fn the_bootstrap_lets_a_lone_admin_add_one_admin_and_then_never_again(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    // admin() created admin2 alone, with a whole code, audited as such.
    let admin = server.admin().await;
    let admin2 = server.approver();
    let log = admin2.audit().await;
    let bootstrap = records(&log, "admin.user.create", "ok");
    assert!(
        bootstrap[0]
            .detail
            .as_deref()
            .unwrap()
            .contains(" bootstrap=second_admin ledger: state=user/admin2#"),
        "{:?}",
        bootstrap[0].detail
    );

    // Suspending the other administrator does not reopen the door.
    admin
        .expect(
            Method::POST,
            "/v1/admin/users/admin2/suspend",
            None,
            StatusCode::OK,
        )
        .await;
    let body = json!({"name": "sock", "display_name": "Sock", "roles": ["admin"], "groups": []});
    let filed = admin
        .expect(
            Method::POST,
            "/v1/admin/users",
            Some(body),
            StatusCode::ACCEPTED,
        )
        .await;
    assert_eq!(filed["request"]["state"], "pending");
    assert!(filed.get("code").is_none(), "{filed}");
    // And a second admin with groups was never the exception.
    let fresh = TestServer::start_on(backend).await;
    let lone = fresh.enroll("admin", &fresh.admin_code.clone()).await;
    lone.create_group("support").await;
    let body =
        json!({"name": "two", "display_name": "Two", "roles": ["admin"], "groups": ["support"]});
    lone.expect(
        Method::POST,
        "/v1/admin/users",
        Some(body),
        StatusCode::ACCEPTED,
    )
    .await;
}

on_each_backend!(approval_rules_change_only_by_approval_and_then_need_more_people);
async fn approval_rules_change_only_by_approval_and_then_need_more_people(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let admin = server.admin().await;
    let admin2 = server.approver();
    let admin3 = server.user(&admin, "admin3", &[Role::Admin], &[]).await;
    let alice = server.user(&admin, "alice", &[], &[]).await;
    admin.create_group("support").await;

    // No one acts alone: zero is refused when filed.
    let refused = admin
        .expect(
            Method::PUT,
            "/v1/admin/approval-rules/admin.group.add_member",
            Some(json!({"required": 0})),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(refused["message"].as_str().unwrap().contains("1 to 9"));
    server
        .approved(
            &admin,
            Method::PUT,
            "/v1/admin/approval-rules/admin.group.add_member",
            Some(json!({"required": 2})),
        )
        .await;
    let rules = admin2
        .expect(
            Method::GET,
            "/v1/admin/approval-rules",
            None,
            StatusCode::OK,
        )
        .await;
    assert!(
        rules
            .as_array()
            .unwrap()
            .contains(&json!({"action": "admin.group.add_member", "required": 2})),
        "{rules}"
    );

    let filed = admin
        .expect(
            Method::POST,
            "/v1/admin/groups/support/members",
            Some(json!({"user": "alice"})),
            StatusCode::ACCEPTED,
        )
        .await;
    assert_eq!(filed["request"]["required"], 2);
    let hash = filed["request"]["action_hash"].clone();
    let one = approve_as(admin2, &filed, &hash, StatusCode::OK).await;
    assert_eq!(one["request"]["state"], "pending");
    let file = seal(
        &alice.server_key.public_key,
        policy(&["@support"], Rights::VIEW, None, None),
    );
    assert_eq!(alice.grant_denied(&file, false).await, "not_recipient");
    let two = approve_as(&admin3, &filed, &hash, StatusCode::OK).await;
    assert_eq!(two["request"]["state"], "done");
    alice.grant_ok(&file, false).await;

    // Mistyped targets are refused when filed, not after an approval.
    admin
        .expect(
            Method::POST,
            "/v1/admin/groups/suport/members",
            Some(json!({"user": "alice"})),
            StatusCode::NOT_FOUND,
        )
        .await;
    admin
        .expect(
            Method::POST,
            "/v1/admin/groups/support/members?reason=%0Aforged",
            Some(json!({"user": "alice"})),
            StatusCode::BAD_REQUEST,
        )
        .await;
}

on_each_backend!(a_version_1_database_gains_the_approval_tables_when_opened);
/// A database made before approvals existed (schema version 1: no request
/// or notice tables, no code origin) is upgraded when the server opens it,
/// on either backend, and then records who issued a code.
async fn a_version_1_database_gains_the_approval_tables_when_opened(backend: Backend) {
    use std::sync::Arc;

    use irm_key_server::clock::{Clock, ManualClock};
    use irm_key_server::metrics::Metrics;
    use irm_key_server::store::{Actor, AdminOp, AdminOutput, Database};

    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at_secs(common::T0);
    let pg = matches!(backend, Backend::Postgres).then(common::pg::TestDatabase::create);
    let url = pg.as_ref().map(|d| d.url.clone());
    irm_key_server::datadir::init_with(dir.path(), url.as_ref(), &[], "admin", &clock)
        .expect("init");
    let downgrade = "DROP TABLE approvals; DROP TABLE requests; DROP TABLE approval_rules; \
                     DROP TABLE notices; ALTER TABLE users DROP COLUMN code_origin; \
                     UPDATE meta SET value = '1' WHERE key = 'schema';";
    let database = match &url {
        Some(url) => {
            common::pg::with_client(url, move |c| c.batch_execute(downgrade)).unwrap();
            Database::Postgres(url.clone())
        }
        None => {
            let path = dir.path().join("irm-key-server.db");
            rusqlite::Connection::open(&path)
                .unwrap()
                .execute_batch(downgrade)
                .unwrap();
            Database::Sqlite(path)
        }
    };
    let store = tokio::task::spawn_blocking(move || database.open(Arc::new(Metrics::default())))
        .await
        .unwrap()
        .expect("a version 1 database opens");
    let actor = Actor {
        user: "admin".into(),
        device: "00".repeat(16),
        client_addr: None,
        reason: None,
    };
    let now = clock.now_ms();
    let rules = tokio::task::spawn_blocking(move || store.admin(&actor, AdminOp::ListRules, now))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let AdminOutput::Rules(rules) = rules else {
        panic!("rules: {rules:?}")
    };
    assert_eq!(rules.len(), ApprovalAction::KINDS.len());
}

on_each_backend!(a_new_device_is_recorded_with_who_issued_its_code_and_told_to_the_other_devices);
/// PROTOCOL.md §3.2, §4.3: the enroll record names who issued the code and
/// who approved it; the person's other devices hear of the new one at their
/// next grant, once.
async fn a_new_device_is_recorded_with_who_issued_its_code_and_told_to_the_other_devices(
    backend: Backend,
) {
    let server = TestServer::start_on(backend).await;
    let admin = server.admin().await;
    let alice = server.user(&admin, "alice", &[], &[]).await;
    let file = seal(
        &alice.server_key.public_key,
        policy(&["alice"], Rights::VIEW, None, None),
    );
    // Her first device: nobody to tell.
    assert!(alice.grant_ok(&file, false).await.notices.is_empty());

    let code = server.new_code(&admin, "alice").await;
    let second = server.enroll("alice", &code).await;
    let log = server.approver().audit().await;
    let enroll = log
        .iter()
        .rev()
        .find(|r| r.action == "enroll" && r.result == "ok")
        .expect("the enrollment");
    let detail = enroll.detail.as_deref().unwrap();
    assert!(
        detail.contains("requested_by=admin approved_by=admin2"),
        "{detail}"
    );
    assert!(detail.contains("notified_devices=1"), "{detail}");

    // The first device hears of the second at its next grant, once.
    let told = alice.grant_ok(&file, true).await;
    assert_eq!(told.notices.len(), 1, "{:?}", told.notices);
    let notice = &told.notices[0];
    assert_eq!(notice.device_id, second.id);
    assert_eq!(notice.kind, irm_core::protocol::NoticeKind::NewDevice);
    assert!(
        notice
            .code_origin
            .contains("requested_by=admin approved_by=admin2"),
        "{notice:?}"
    );
    assert!(alice.grant_ok(&file, true).await.notices.is_empty());
    // The new device itself has nothing waiting.
    assert!(second.grant_ok(&file, false).await.notices.is_empty());
    // The grant that carried it says so in the log.
    let log = server.approver().audit().await;
    assert!(
        log.iter().any(|r| r.action == "renew"
            && r.actor_device.as_deref() == Some(alice.id.as_str())
            && r.detail
                .as_deref()
                .is_some_and(|d| d.ends_with("notices=1"))),
        "the grant that told her"
    );
}

/// A usage event for `grant` (`POST /v1/events`), answered with `status`.
async fn event(device: &Device, grant: &str, action: &str, status: StatusCode) -> Value {
    device
        .expect(
            Method::POST,
            "/v1/events",
            Some(json!({"grant_id": grant, "action": action})),
            status,
        )
        .await
}

on_each_backend!(taking_a_file_out_needs_two_other_administrators_and_works_once_on_one_device);
/// PROTOCOL.md §7.3 on a new server (the default rule: two approvals).
async fn taking_a_file_out_needs_two_other_administrators_and_works_once_on_one_device(
    backend: Backend,
) {
    let server = TestServer::start_on(backend).await;
    let admin = server.admin().await;
    let admin2 = server.approver();
    let alice = server.user(&admin, "alice", &[], &[]).await;
    let laptop = server
        .enroll("alice", &server.new_code(&admin, "alice").await)
        .await;
    let file = seal(
        &alice.server_key.public_key,
        policy(&["alice"], Rights::VIEW | Rights::EXPORT, None, None),
    );
    let grant = alice.grant_ok(&file, false).await;

    // Without approval: refused with its own reason, and audited.
    let refused = event(&alice, &grant.grant_id, "export", StatusCode::FORBIDDEN).await;
    assert_eq!(refused["reason"], "export_approval_required", "{refused}");
    // Other reports need nothing more.
    event(&alice, &grant.grant_id, "close", StatusCode::NO_CONTENT).await;

    // A mistyped file is refused when asked.
    alice
        .expect(
            Method::POST,
            "/v1/export-requests",
            Some(json!({"file_id": "00".repeat(16)})),
            StatusCode::NOT_FOUND,
        )
        .await;
    let filed = alice
        .expect(
            Method::POST,
            "/v1/export-requests?reason=CASE-9",
            Some(json!({"file_id": file.id()})),
            StatusCode::ACCEPTED,
        )
        .await;
    assert_eq!(filed["request"]["required"], 2, "{filed}");
    assert_eq!(filed["request"]["action"]["kind"], "take_out");
    assert_eq!(filed["request"]["action"]["how"], "export");
    assert_eq!(filed["request"]["action"]["device_id"], alice.id.as_str());
    let hash = filed["request"]["action_hash"].clone();
    // The requester is no approver, even as a user.
    let denied = approve_as(&alice, &filed, &hash, StatusCode::FORBIDDEN).await;
    assert_eq!(denied["reason"], "role_required");

    // One approval is not enough.
    let one = approve_as(admin2, &filed, &hash, StatusCode::OK).await;
    assert_eq!(one["request"]["state"], "pending");
    event(&alice, &grant.grant_id, "export", StatusCode::FORBIDDEN).await;
    // Two: it works once, on the device that asked...
    let two = approve_as(&admin, &filed, &hash, StatusCode::OK).await;
    assert_eq!(two["request"]["state"], "done", "{two}");
    let on_laptop = laptop.grant_ok(&file, false).await;
    let other = event(
        &laptop,
        &on_laptop.grant_id,
        "export",
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(other["reason"], "export_approval_required");
    event(&alice, &grant.grant_id, "export", StatusCode::NO_CONTENT).await;
    // ...and then it is spent.
    event(&alice, &grant.grant_id, "export", StatusCode::FORBIDDEN).await;

    // An approved export not used within the hour lapses.
    let filed = alice
        .expect(
            Method::POST,
            "/v1/export-requests",
            Some(json!({"file_id": file.id()})),
            StatusCode::ACCEPTED,
        )
        .await;
    let hash = filed["request"]["action_hash"].clone();
    approve_as(admin2, &filed, &hash, StatusCode::OK).await;
    approve_as(&admin, &filed, &hash, StatusCode::OK).await;
    server.clock.advance_secs(3600);
    let grant = alice.grant_ok(&file, false).await;
    event(&alice, &grant.grant_id, "export", StatusCode::FORBIDDEN).await;

    let log = admin2.audit().await;
    let exports: Vec<_> = log
        .iter()
        .filter(|r| r.action == "event.export")
        .map(|r| (r.result.as_str(), r.reason.as_deref()))
        .collect();
    assert_eq!(
        exports,
        [
            ("denied", Some("export_approval_required")),
            ("denied", Some("export_approval_required")),
            ("denied", Some("export_approval_required")),
            ("ok", None),
            ("denied", Some("export_approval_required")),
            ("denied", Some("export_approval_required")),
        ]
    );
    // Each refused take-out is also an alert (PROTOCOL.md §12).
    let alerts = records(&log, "detect.take_out_refused", "ok");
    assert_eq!(alerts.len(), 5, "one per refusal");
    assert!(
        alerts
            .iter()
            .all(|r| r.actor_user.as_deref() == Some("alice")
                && r.detail.as_deref() == Some("how=export action=alert"))
    );
    let effect = records(&log, "file.export", "ok");
    let detail = effect[0].detail.as_deref().unwrap();
    assert!(
        detail.contains("approved_by=admin2,admin") && detail.contains("reason=CASE-9"),
        "{detail}"
    );

    // The rule can be lowered to none, by approval: then exports need nothing.
    server
        .approved(
            &admin,
            Method::PUT,
            "/v1/admin/approval-rules/file.export",
            Some(json!({"required": 0})),
        )
        .await;
    event(&alice, &grant.grant_id, "export", StatusCode::NO_CONTENT).await;
    let needless = alice
        .expect(
            Method::POST,
            "/v1/export-requests",
            Some(json!({"file_id": file.id()})),
            StatusCode::CONFLICT,
        )
        .await;
    assert!(
        needless["message"]
            .as_str()
            .unwrap()
            .contains("needs no approval"),
        "{needless}"
    );
}

/// A copy or print report with its row count (`POST /v1/events`).
async fn rows_event(device: &Device, grant: &str, action: &str, rows: Option<u64>) -> StatusCode {
    let mut body = json!({"grant_id": grant, "action": action});
    if let Some(rows) = rows {
        body["rows"] = json!(rows);
    }
    device
        .send(Method::POST, "/v1/events", Some(body))
        .await
        .status()
}

on_each_backend!(copying_or_printing_many_rows_needs_its_own_approved_take_out);
/// PROTOCOL.md §7.3: a copy or print of more rows than the threshold (100
/// by default), or of an untold number, is a take-out approved on its own:
/// an approved print does not copy, and each is spent once.
async fn copying_or_printing_many_rows_needs_its_own_approved_take_out(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let admin = server.admin().await;
    let admin2 = server.approver();
    let alice = server.user(&admin, "alice", &[], &[]).await;
    let file = seal(
        &alice.server_key.public_key,
        policy(
            &["alice"],
            Rights::VIEW | Rights::COPY | Rights::PRINT,
            None,
            None,
        ),
    );
    let grant = alice.grant_ok(&file, false).await;
    let g = grant.grant_id.as_str();

    // Up to the threshold: a copy or print needs nothing.
    assert_eq!(
        rows_event(&alice, g, "copy", Some(100)).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        rows_event(&alice, g, "print", Some(1)).await,
        StatusCode::NO_CONTENT
    );
    // Beyond it, or untold: refused with the take-out reason.
    for (action, rows) in [
        ("copy", Some(101)),
        ("print", Some(5000)),
        ("copy", None),
        ("print", None),
    ] {
        assert_eq!(
            rows_event(&alice, g, action, rows).await,
            StatusCode::FORBIDDEN,
            "{action} {rows:?}"
        );
    }

    // An approved print of this file, on this device.
    let filed = alice
        .expect(
            Method::POST,
            "/v1/export-requests?reason=MAILING-7",
            Some(json!({"file_id": file.id(), "how": "print"})),
            StatusCode::ACCEPTED,
        )
        .await;
    assert_eq!(filed["request"]["action"]["how"], "print", "{filed}");
    assert_eq!(filed["request"]["required"], 2, "{filed}");
    let hash = filed["request"]["action_hash"].clone();
    approve_as(admin2, &filed, &hash, StatusCode::OK).await;
    approve_as(&admin, &filed, &hash, StatusCode::OK).await;
    // It prints, not copies, and not export.
    assert_eq!(
        rows_event(&alice, g, "copy", Some(5000)).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        event(&alice, g, "export", StatusCode::FORBIDDEN).await["reason"],
        "right_not_granted"
    );
    assert_eq!(
        rows_event(&alice, g, "print", Some(5000)).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        rows_event(&alice, g, "print", Some(5000)).await,
        StatusCode::FORBIDDEN,
        "spent"
    );

    let log = admin2.audit().await;
    let prints: Vec<_> = log
        .iter()
        .filter(|r| r.action == "event.print")
        .map(|r| {
            (
                r.result.as_str(),
                r.reason.as_deref(),
                r.detail.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(prints.len(), 5, "{prints:?}");
    assert_eq!(prints[0].0, "ok");
    assert!(prints[0].2.ends_with("rows=1"), "{prints:?}");
    assert_eq!(prints[1].1, Some("export_approval_required"));
    assert!(prints[1].2.contains("rows=5000"), "{prints:?}");
    assert_eq!(prints[3].0, "ok");
    assert!(
        prints[3].2.contains("rows=5000 approved_print_spent"),
        "{prints:?}"
    );
    assert_eq!(records(&log, "file.print", "ok").len(), 1);

    // The copy rule lowered to none: copies of any size need nothing, prints still do.
    server
        .approved(
            &admin,
            Method::PUT,
            "/v1/admin/approval-rules/file.copy",
            Some(json!({"required": 0})),
        )
        .await;
    assert_eq!(
        rows_event(&alice, g, "copy", Some(100_000)).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        rows_event(&alice, g, "print", Some(101)).await,
        StatusCode::FORBIDDEN
    );
}

on_each_backend!(program_reads_are_gated_only_once_administrators_turn_it_on);
/// PROTOCOL.md §7.3: a program's reads through libirm are a take-out whose
/// rule starts at 0 (call-centre applications read their lists that way);
/// two administrators can raise it, and then a program read spends an
/// approved take-out like any other.
async fn program_reads_are_gated_only_once_administrators_turn_it_on(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let admin = server.admin().await;
    let admin2 = server.approver();
    let app = server.user(&admin, "crm-app", &[], &[]).await;
    let file = seal(
        &app.server_key.public_key,
        policy(&["crm-app"], Rights::VIEW | Rights::PROGRAM, None, None),
    );
    let grant = app.grant_ok(&file, false).await;
    let g = grant.grant_id.as_str();
    event(&app, g, "program_read", StatusCode::NO_CONTENT).await;
    let rules = admin
        .expect(
            Method::GET,
            "/v1/admin/approval-rules",
            None,
            StatusCode::OK,
        )
        .await;
    assert!(
        rules
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["action"] == "file.program" && r["required"] == 0),
        "{rules}"
    );

    server
        .approved(
            &admin,
            Method::PUT,
            "/v1/admin/approval-rules/file.program",
            Some(json!({"required": 1})),
        )
        .await;
    let refused = event(&app, g, "program_read", StatusCode::FORBIDDEN).await;
    assert_eq!(refused["reason"], "export_approval_required", "{refused}");
    let filed = app
        .expect(
            Method::POST,
            "/v1/export-requests?reason=NIGHTLY-SYNC",
            Some(json!({"file_id": file.id(), "how": "program"})),
            StatusCode::ACCEPTED,
        )
        .await;
    assert_eq!(filed["request"]["required"], 1, "{filed}");
    let hash = filed["request"]["action_hash"].clone();
    approve_as(admin2, &filed, &hash, StatusCode::OK).await;
    event(&app, g, "program_read", StatusCode::NO_CONTENT).await;
    event(&app, g, "program_read", StatusCode::FORBIDDEN).await;
}

/// `POST /v1/admin/requests/{id}/approve` of the request `filed` names, with `body`.
async fn approve(who: &Device, filed: &Value, body: Value, status: StatusCode) -> Value {
    let id = filed["request"]["id"].as_str().expect("an id");
    who.expect(
        Method::POST,
        &format!("/v1/admin/requests/{id}/approve"),
        Some(body),
        status,
    )
    .await
}

on_each_backend!(the_break_glass_code_stands_in_for_absent_approvers_once_and_loudly);
/// PROTOCOL.md §7.4: when approvers are away, the maintainer on call opens
/// the envelope: the break-glass code completes one request (not a rule,
/// a share reissue or a new code), works once, is refused to the requester,
/// and every administrator hears of it.
async fn the_break_glass_code_stands_in_for_absent_approvers_once_and_loudly(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let admin = server.admin().await;
    let maint = server.user(&admin, "maint", &[Role::Maintainer], &[]).await;
    let alice = server.user(&admin, "alice", &[], &[]).await;

    // Issued like any widening action: filed, approved, in two halves.
    let (filed, approved) = server
        .approved(&admin, Method::POST, "/v1/admin/break-glass", None)
        .await;
    assert_eq!(filed["request"]["action"]["kind"], "issue_break_glass");
    let code = format!(
        "{}-{}",
        filed["code_half"].as_str().expect("the requester's half"),
        approved["code_half"].as_str().expect("the approver's half")
    );
    let with_code = |filed: &Value, code: &str| json!({"action_hash": filed["request"]["action_hash"], "break_glass": code});

    // Alice needs her list out tonight; both other administrators are away.
    let file = seal(
        &alice.server_key.public_key,
        policy(&["alice"], Rights::VIEW | Rights::EXPORT, None, None),
    );
    let grant = alice.grant_ok(&file, false).await;
    let export = alice
        .expect(
            Method::POST,
            "/v1/export-requests?reason=OUTAGE-3",
            Some(json!({"file_id": file.id()})),
            StatusCode::ACCEPTED,
        )
        .await;
    assert_eq!(export["request"]["required"], 2);
    // The maintainer may read what they are about to approve.
    let id = export["request"]["id"].as_str().unwrap();
    maint
        .expect(
            Method::GET,
            &format!("/v1/admin/requests/{id}"),
            None,
            StatusCode::OK,
        )
        .await;
    // A wrong code, the requester's own use, or a plain user: refused.
    approve(
        &maint,
        &export,
        with_code(&export, "AAAAA-AAAAA-AAAAA-AAAAA"),
        StatusCode::CONFLICT,
    )
    .await;
    approve(
        &alice,
        &export,
        with_code(&export, &code),
        StatusCode::FORBIDDEN,
    )
    .await;
    let rule = admin
        .expect(
            Method::PUT,
            "/v1/admin/approval-rules/file.export",
            Some(json!({"required": 0})),
            StatusCode::ACCEPTED,
        )
        .await;
    let refused = approve(&maint, &rule, with_code(&rule, &code), StatusCode::CONFLICT).await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("does not approve admin.rule.set"),
        "{refused}"
    );
    admin.create_group("support").await;
    let own = admin
        .expect(
            Method::POST,
            "/v1/admin/groups/support/members",
            Some(json!({"user": "admin"})),
            StatusCode::ACCEPTED,
        )
        .await;
    approve(&admin, &own, with_code(&own, &code), StatusCode::CONFLICT).await;

    // The maintainer with the envelope: done at once, for one way, once.
    let done = approve(&maint, &export, with_code(&export, &code), StatusCode::OK).await;
    assert_eq!(done["request"]["state"], "done", "{done}");
    event(&alice, &grant.grant_id, "export", StatusCode::NO_CONTENT).await;
    event(&alice, &grant.grant_id, "export", StatusCode::FORBIDDEN).await;
    let again = alice
        .expect(
            Method::POST,
            "/v1/export-requests",
            Some(json!({"file_id": file.id()})),
            StatusCode::ACCEPTED,
        )
        .await;
    approve(
        &maint,
        &again,
        with_code(&again, &code),
        StatusCode::CONFLICT,
    )
    .await;

    // Loudly: every administrator is told at their next grant, /healthz
    // says so for a week, and the audit log names who used it for what.
    let mine = seal(
        &admin.server_key.public_key,
        policy(&["admin", "admin2"], Rights::VIEW, None, None),
    );
    for who in [&admin, server.approver()] {
        let told = who.grant_ok(&mine, false).await;
        assert_eq!(told.notices.len(), 1, "{:?}", told.notices);
        assert_eq!(
            told.notices[0].kind,
            irm_core::protocol::NoticeKind::BreakGlass
        );
        assert!(
            told.notices[0]
                .code_origin
                .contains(&format!("request={id}"))
        );
        assert!(told.notices[0].message().starts_with("BREAK-GLASS"));
    }
    assert!(maint.grant_raw(&mine.header_bytes, false).await.status() == StatusCode::FORBIDDEN);
    let health = server
        .http
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    let health = health.text().await.unwrap();
    assert!(
        health.contains(&format!(
            "warning: break-glass: the emergency code approved request {id} as maint"
        )),
        "{health}"
    );
    let metrics = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert!(
        metrics
            .text()
            .await
            .unwrap()
            .contains("\nirm_break_glass_uses_total 1\n")
    );
    server.clock.advance_secs(8 * 24 * 3600);
    let health = server
        .http
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert!(!health.text().await.unwrap().contains("break-glass"));
    let all = admin.audit().await;
    let used = records(&all, "admin.request.break_glass", "ok");
    assert_eq!(used.len(), 1);
    assert_eq!(used[0].actor_user.as_deref(), Some("maint"));
    assert!(
        used[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("action=file.export")
    );
    assert_eq!(
        records(&all, "admin.request.break_glass", "failed").len(),
        4
    );
    assert_eq!(
        records(&all, "admin.request.break_glass", "denied").len(),
        1
    );
}
