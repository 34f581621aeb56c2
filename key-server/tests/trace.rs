//! Canaries and watermark ids (PROTOCOL.md §7.8) against the real server on
//! SQLite and PostgreSQL: an approved export of a list gets its canaries,
//! unique to it and recorded with its audit record; an export without an
//! approval, or refused, gets none; the trace lookups name the export and
//! the grant, need the admin or auditor role and a reason, are audited
//! with what matched, and answer bad input with 400 or 413, never 500;
//! the operator's pools are used once each; a version 3 database gains
//! the canary tables when opened.

#[macro_use]
mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::{Backend, Device, TestServer, policy, seal};
use irm_core::Rights;
use irm_core::protocol::{
    ExportReceipt, GrantResponse, MAX_TRACE_VALUES, Role, TraceAnswer, WatermarkTrace,
    canary_count, contact_key,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// `device` asks to export `file_id`; both administrators approve.
async fn approved_export(server: &TestServer, admin: &Device, device: &Device, file_id: &str) {
    let filed = device
        .expect(
            Method::POST,
            "/v1/export-requests?reason=CASE-6",
            Some(json!({"file_id": file_id})),
            StatusCode::ACCEPTED,
        )
        .await;
    let id = filed["request"]["id"].as_str().expect("an id");
    let hash = filed["request"]["action_hash"].clone();
    for approver in [server.approver(), admin] {
        approver
            .expect(
                Method::POST,
                &format!("/v1/admin/requests/{id}/approve"),
                Some(json!({ "action_hash": hash })),
                StatusCode::OK,
            )
            .await;
    }
}

async fn export(device: &Device, grant: &GrantResponse, rows: u64) -> ExportReceipt {
    serde_json::from_value(
        device
            .expect(
                Method::POST,
                "/v1/exports",
                Some(json!({"grant_id": grant.grant_id, "rows": rows})),
                StatusCode::OK,
            )
            .await,
    )
    .expect("an export receipt")
}

fn keys(receipt: &ExportReceipt) -> BTreeSet<String> {
    receipt
        .canaries
        .iter()
        .flat_map(|c| [contact_key(&c.phone), contact_key(&c.email)])
        .map(|k| k.expect("a contact value"))
        .collect()
}

on_each_backend!(an_approved_export_carries_canaries_that_name_it_to_an_auditor);
async fn an_approved_export_carries_canaries_that_name_it_to_an_auditor(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let admin = server.admin().await;
    let alice = server.user(&admin, "alice", &[Role::User], &[]).await;
    let carol = server.user(&admin, "carol", &[Role::Auditor], &[]).await;
    let file = seal(
        &admin.server_key.public_key,
        policy(&["alice"], Rights::VIEW | Rights::EXPORT, None, None),
    );
    let grant = alice.grant_ok(&file, false).await;

    // Without an approved take-out the export is refused, and nothing issued.
    let body = json!({"grant_id": grant.grant_id, "rows": 100_000});
    let refused = alice
        .expect(
            Method::POST,
            "/v1/exports",
            Some(body.clone()),
            StatusCode::FORBIDDEN,
        )
        .await;
    assert_eq!(refused["reason"], "export_approval_required");

    approved_export(&server, &admin, &alice, &file.id()).await;
    let receipt = export(&alice, &grant, 100_000).await;
    let export_id = receipt.export_id.clone().expect("an export id");
    assert_eq!(receipt.canaries.len(), canary_count(100_000) as usize);
    let canary_keys = keys(&receipt);
    assert_eq!(
        canary_keys.len(),
        2 * receipt.canaries.len(),
        "every phone and address differs"
    );
    for c in &receipt.canaries {
        assert!(c.email.ends_with("@mail.invalid"), "{c:?}");
        assert!(!c.name.is_empty() && !c.kana.is_empty() && !c.address.is_empty());
    }
    // Spent: the next report is refused.
    alice
        .expect(
            Method::POST,
            "/v1/exports",
            Some(body),
            StatusCode::FORBIDDEN,
        )
        .await;

    // A few canaries among a leaked list's other values name the export.
    let mut values: Vec<String> = receipt
        .canaries
        .iter()
        .take(3)
        .flat_map(|c| [c.phone.to_uppercase(), c.email.to_uppercase()])
        .collect();
    values.extend([
        "03-1234-5678".into(),
        "someone@example.jp".into(),
        "n/a".into(),
    ]);
    let answer: TraceAnswer = serde_json::from_value(
        carol
            .expect(
                Method::POST,
                "/v1/admin/trace?reason=INC-6",
                Some(json!({ "values": values })),
                StatusCode::OK,
            )
            .await,
    )
    .expect("a trace answer");
    assert_eq!(answer.checked, 8, "the non-value is not compared");
    assert_eq!(answer.exports.len(), 1);
    let found = &answer.exports[0];
    assert_eq!(found.export_id, export_id);
    assert_eq!(found.user, "alice");
    assert_eq!(found.device_id, alice.id);
    assert_eq!(found.grant_id, grant.grant_id);
    assert_eq!(found.file_id, file.id());
    assert_eq!(found.matched, 6);
    assert_eq!(found.canaries as usize, receipt.canaries.len());
    let mut approvers = found.approvers.clone();
    approvers.sort();
    let mut expected = vec![admin.user.clone(), server.approver().user.clone()];
    expected.sort();
    assert_eq!(approvers, expected);
    assert!(found.request_id.is_some());
    assert_eq!(
        Some(found.watermark_id.as_str()),
        grant.watermark_id.as_deref()
    );

    // The watermark id, as read off a photo, names the grant.
    let id = grant.watermark_id.clone().expect("a watermark id");
    let typed = id.to_lowercase().replace('-', "");
    let named: WatermarkTrace = serde_json::from_value(
        carol
            .expect(
                Method::GET,
                &format!("/v1/admin/trace/watermark/{typed}?reason=INC-7"),
                None,
                StatusCode::OK,
            )
            .await,
    )
    .expect("a watermark trace");
    assert_eq!(named.watermark_id, id);
    assert_eq!(named.grants.len(), 1);
    assert_eq!(named.grants[0].grant_id, grant.grant_id);
    assert_eq!(named.grants[0].user, "alice");

    // Both lookups are on record, with the reason and what matched; so is
    // the export, with its canaries.
    let log = admin.audit().await;
    let canaries_record = log
        .iter()
        .find(|r| r.action == "admin.trace.canaries")
        .expect("the trace is audited");
    assert_eq!(canaries_record.actor_user.as_deref(), Some("carol"));
    assert_eq!(
        canaries_record.detail.as_deref(),
        Some(format!("values=8 matched={export_id}(6) reason=INC-6").as_str())
    );
    let watermark_record = log
        .iter()
        .find(|r| r.action == "admin.trace.watermark")
        .expect("the watermark lookup is audited");
    assert_eq!(
        watermark_record.detail.as_deref(),
        Some(format!("watermark={id} matched={} reason=INC-7", grant.grant_id).as_str())
    );
    assert!(log.iter().any(|r| {
        r.action == "event.export"
            && r.result == "ok"
            && r.detail.as_deref().is_some_and(|d| {
                d.contains("approved_export_spent")
                    && d.contains(&format!(
                        "export={export_id} canaries={}",
                        receipt.canaries.len()
                    ))
            })
    }));
}

on_each_backend!(trace_lookups_need_the_role_a_reason_and_sane_input);
async fn trace_lookups_need_the_role_a_reason_and_sane_input(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let admin = server.admin().await;
    let alice = server.user(&admin, "alice", &[Role::User], &[]).await;
    let one = json!({"values": ["03-0123-4567"]});

    let refused = alice
        .expect(
            Method::POST,
            "/v1/admin/trace?reason=curious",
            Some(one.clone()),
            StatusCode::FORBIDDEN,
        )
        .await;
    assert_eq!(refused["reason"], "role_required");
    let bad = admin
        .expect(
            Method::POST,
            "/v1/admin/trace",
            Some(one.clone()),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert_eq!(bad["error"], "bad_request", "{bad}");
    admin
        .expect(
            Method::GET,
            "/v1/admin/trace/watermark/W7K2-9QXM-4HTD",
            None,
            StatusCode::BAD_REQUEST,
        )
        .await;
    // Refusals are on record too.
    let log = admin.audit().await;
    let refusals: Vec<(&str, &str)> = log
        .iter()
        .filter(|r| r.action.starts_with("admin.trace."))
        .map(|r| (r.action.as_str(), r.result.as_str()))
        .collect();
    assert_eq!(
        refusals,
        [
            ("admin.trace.canaries", "denied"),
            ("admin.trace.canaries", "failed"),
            ("admin.trace.watermark", "failed")
        ]
    );

    // Too many values, an overlong one, a body past 1 MiB, a malformed
    // watermark id, a bad export report: 4xx with a JSON body, never 500.
    let many: Vec<String> = (0..=MAX_TRACE_VALUES).map(|i| format!("0{i:09}")).collect();
    let cases: Vec<(Method, String, Option<Value>, StatusCode)> = vec![
        (
            Method::POST,
            "/v1/admin/trace?reason=x".into(),
            Some(json!({ "values": many })),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/v1/admin/trace?reason=x".into(),
            Some(json!({ "values": ["a".repeat(300)] })),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/v1/admin/trace?reason=x".into(),
            Some(json!({ "values": vec!["0".repeat(200); 6000] })),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            Method::POST,
            "/v1/admin/trace?reason=x".into(),
            Some(json!({ "values": "03-0123-4567" })),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/v1/admin/trace/watermark/UUUU-UUUU-UUUU?reason=x".into(),
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/v1/admin/trace/watermark/W7K2-9QXM-4HTD0?reason=x".into(),
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/v1/exports".into(),
            Some(json!({"grant_id": "xyz", "rows": 1})),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/v1/exports".into(),
            Some(json!({"grant_id": "ab".repeat(16), "rows": u64::MAX})),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/v1/exports".into(),
            Some(json!({"grant_id": "ab".repeat(16), "rows": -1})),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/v1/exports".into(),
            Some(json!({"grant_id": "ab".repeat(16), "rows": 10})),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (method, path, body, status) in cases {
        let answer = admin.expect(method.clone(), &path, body, status).await;
        assert!(
            answer.get("error").is_some() || answer.get("reason").is_some(),
            "{method} {path}: {answer}"
        );
    }

    // An unknown but well-formed id names no grant.
    let none: WatermarkTrace = serde_json::from_value(
        admin
            .expect(
                Method::GET,
                "/v1/admin/trace/watermark/0000-0000-0000?reason=x",
                None,
                StatusCode::OK,
            )
            .await,
    )
    .unwrap();
    assert!(none.grants.is_empty());
}

on_each_backend!(the_operators_pools_are_used_once_and_an_unapproved_export_carries_none);
async fn the_operators_pools_are_used_once_and_an_unapproved_export_carries_none(backend: Backend) {
    let pool: Vec<String> = (0..5).map(|i| format!("050-5555-{i:04}")).collect();
    let pools = irm_key_server::canary::CanaryPools {
        phones: pool.clone(),
        emails: vec!["trap@watch.example".into()],
        email_domain: Some("watch.example".into()),
    };
    let server = TestServer::start_on_with(backend, |s| s.canaries = Arc::new(pools)).await;
    let admin = server.admin().await;
    let alice = server.user(&admin, "alice", &[Role::User], &[]).await;
    let file = seal(
        &admin.server_key.public_key,
        policy(&["alice"], Rights::VIEW | Rights::EXPORT, None, None),
    );
    let grant = alice.grant_ok(&file, false).await;
    let rows = 2_000; // 11 canaries: the pool's 5 numbers and 6 invented.
    approved_export(&server, &admin, &alice, &file.id()).await;
    let first = export(&alice, &grant, rows).await;
    approved_export(&server, &admin, &alice, &file.id()).await;
    let second = export(&alice, &grant, rows).await;
    assert_eq!(first.canaries.len(), canary_count(rows) as usize);
    let first_phones: BTreeSet<&str> = first.canaries.iter().map(|c| c.phone.as_str()).collect();
    for number in &pool {
        assert!(first_phones.contains(number.as_str()), "{number}");
    }
    assert!(
        second.canaries.iter().all(|c| !pool.contains(&c.phone)),
        "a pool number names one export"
    );
    assert!(keys(&first).is_disjoint(&keys(&second)));
    assert_eq!(
        first
            .canaries
            .iter()
            .filter(|c| c.email == "trap@watch.example")
            .count(),
        1
    );
    assert!(
        first
            .canaries
            .iter()
            .chain(&second.canaries)
            .all(|c| c.email.ends_with("@watch.example"))
    );
    // The pool ran short both times (6 invented numbers, then 11): the
    // export records say so, so that the operator refills it. The catch-all
    // domain reaches the operator, so the addresses are never short.
    let audit = admin.audit().await;
    let exports: Vec<&str> = audit
        .iter()
        .filter(|r| r.action == "event.export" && r.result == "ok")
        .filter_map(|r| r.detail.as_deref())
        .collect();
    assert_eq!(exports.len(), 2, "{exports:?}");
    assert!(exports[0].contains(" phone_pool_short=6"), "{}", exports[0]);
    assert!(
        exports[1].contains(" phone_pool_short=11"),
        "{}",
        exports[1]
    );
    assert!(exports.iter().all(|d| !d.contains("email_pool_short")));

    // With the rule at 0 an export needs no approval and carries nothing.
    server.take_out_without_approval(&admin).await;
    let plain = export(&alice, &grant, rows).await;
    assert_eq!(plain.export_id, None);
    assert!(plain.canaries.is_empty());
}

on_each_backend!(a_version_3_database_gains_the_canary_tables_when_opened);
/// A database from before canaries (schema version 3) is upgraded when the
/// server opens it, on either backend.
async fn a_version_3_database_gains_the_canary_tables_when_opened(backend: Backend) {
    use irm_key_server::clock::{Clock, ManualClock};
    use irm_key_server::metrics::Metrics;
    use irm_key_server::store::{Actor, AdminOp, AdminOutput, Database};

    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at_secs(common::T0);
    let pg = matches!(backend, Backend::Postgres).then(common::pg::TestDatabase::create);
    let url = pg.as_ref().map(|d| d.url.clone());
    irm_key_server::datadir::init_with(dir.path(), url.as_ref(), &[], "admin", &clock)
        .expect("init");
    let downgrade = "DROP TABLE canaries; DROP TABLE canary_exports; \
                     UPDATE meta SET value = '3' WHERE key = 'schema';";
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
        .expect("a version 3 database opens");
    let actor = Actor {
        user: "admin".into(),
        device: "00".repeat(16),
        client_addr: None,
        reason: Some("upgrade check".into()),
    };
    let now = clock.now_ms();
    let op = AdminOp::TraceCanaries {
        values: vec!["0301234567".into()],
    };
    let answer = tokio::task::spawn_blocking(move || store.admin(&actor, op, now))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let AdminOutput::Trace(answer) = answer else {
        panic!("a trace answer: {answer:?}")
    };
    assert!(answer.exports.is_empty());
}
