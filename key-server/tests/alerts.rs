//! Alerts delivered (PROTOCOL.md §12.1), against the real server on SQLite
//! and PostgreSQL and a webhook receiver of the test's own (HTTPS, its own
//! throw-away CA): a person opening 200 files in a few minutes is suspended,
//! the alert reaches the receiver signed with the shared key, administrators
//! list and acknowledge it (audited, once, without lifting the suspension),
//! auditors read it, ordinary use raises nothing, the acknowledgement and
//! the delivery cursor outlive a restart; a receiver that fails at first is
//! retried until it takes the alert, the failure and the late success
//! audited.

#[macro_use]
mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use common::{Backend, Device, TestServer, eventually, policy, seal};
use hmac::{Hmac, KeyInit, Mac};
use irm_core::Rights;
use irm_core::protocol::{AuditRecord, Role};
use irm_key_server::alerts::{AlertSettings, WebhookSecret};
use irm_key_server::clock::Clock;
use irm_key_server::config::DetectionConfig;
use irm_key_server::detect::Action;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const KEY: &[u8] = b"the-webhook-key-shared-with-the-siem";

/// What the receiver was sent, in order.
#[derive(Default)]
struct Received {
    posts: Mutex<Vec<(HeaderMap, Bytes)>>,
    /// Answer 500 this many times first.
    failures_left: AtomicU32,
}

impl Received {
    fn count(&self) -> usize {
        self.posts.lock().unwrap().len()
    }

    fn all(&self) -> Vec<(HeaderMap, Bytes)> {
        self.posts.lock().unwrap().clone()
    }
}

/// A webhook receiver on 127.0.0.1 over HTTPS with a CA of its own; its
/// URL and the CA's PEM.
async fn receiver(received: Arc<Received>) -> (String, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    irm_key_server::tls::generate(dir.path(), &[], common::T0).expect("a throw-away CA");
    let tls = irm_key_server::tls::server_config(dir.path()).unwrap();
    let ca = std::fs::read_to_string(dir.path().join("tls/ca.pem")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let listener = irm_key_server::tls::TlsListener::new(listener, tls).unwrap();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let received = Arc::clone(&received);
            async move {
                received.posts.lock().unwrap().push((headers, body));
                let failing = received
                    .failures_left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if failing {
                    AxumStatus::INTERNAL_SERVER_ERROR
                } else {
                    AxumStatus::NO_CONTENT
                }
            }
        }),
    );
    // Never stopped: the receiver lives as long as the test's runtime.
    let (keep, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        irm_key_server::connections::serve_connections(listener, app, stop).await;
        drop(keep);
    });
    (format!("https://127.0.0.1:{port}/hook"), ca, dir)
}

/// What a receiver checks: the signature over `"{t}.{body}"` with the shared
/// key, compared in constant time, and a recent `t`. Written here from the
/// specification, not with the server's code.
fn signature_ok(header: &str, body: &[u8], now: u64) -> bool {
    let mut t = None;
    let mut tag = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<u64>().ok(),
            Some(("v1", v)) => tag = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(tag)) = (t, tag) else {
        return false;
    };
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(KEY).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    now.abs_diff(t) <= 300 && mac.verify_slice(&tag).is_ok()
}

async fn server(
    backend: Backend,
    url: &str,
    ca: &str,
    detection: DetectionConfig,
) -> (TestServer, Device) {
    let mut alerts = AlertSettings::new(
        url,
        WebhookSecret::new(KEY.to_vec()).unwrap(),
        Some(ca.to_owned()),
    )
    .unwrap();
    // Retries in the test wait milliseconds, not seconds.
    alerts.first_retry = Duration::from_millis(20);
    let server = TestServer::start_on_with(backend, |s| {
        s.detection = detection.rules().unwrap();
        s.alerts = Some(alerts);
    })
    .await;
    let admin = server.admin().await;
    (server, admin)
}

fn actions<'a>(audit: &'a [AuditRecord], action: &str) -> Vec<&'a AuditRecord> {
    audit.iter().filter(|r| r.action == action).collect()
}

const LIMIT: Duration = Duration::from_secs(30);

on_each_backend!(exfiltration_is_stopped_alerted_delivered_and_acknowledged);
async fn exfiltration_is_stopped_alerted_delivered_and_acknowledged(backend: Backend) {
    let received = Arc::new(Received::default());
    let (url, ca, _ca_dir) = receiver(Arc::clone(&received)).await;
    // The config file's knobs: `bulk_action = "suspend"`, the defaults else
    // (more than 30 files in 300 s).
    let detection = DetectionConfig {
        bulk_action: Some(Action::Suspend),
        ..Default::default()
    };
    let (mut server, admin) = server(backend, &url, &ca, detection).await;
    let mallory = server.user(&admin, "mallory", &[Role::User], &[]).await;
    let bob = server.user(&admin, "bob", &[Role::User], &[]).await;
    let auditor = server.user(&admin, "audrey", &[Role::Auditor], &[]).await;
    let key = admin.server_key.public_key.clone();

    // Ordinary use: a few files, opened again and again, raises nothing.
    let ordinary: Vec<_> = (0..3)
        .map(|_| seal(&key, policy(&["bob"], Rights::VIEW, None, None)))
        .collect();
    for _ in 0..3 {
        for file in &ordinary {
            bob.grant_ok(file, false).await;
        }
        server.clock.advance_secs(20);
    }
    let none = admin
        .expect(Method::GET, "/v1/admin/alerts", None, StatusCode::OK)
        .await;
    assert_eq!(none, json!([]), "ordinary use is no alert");

    // Exfiltration: 200 different files, one a second.
    let mut granted = 0;
    let mut refusals = Vec::new();
    for _ in 0..200 {
        let file = seal(&key, policy(&["mallory"], Rights::VIEW, None, None));
        let response = mallory.grant_raw(&file.header_bytes, false).await;
        if response.status() == StatusCode::OK {
            granted += 1;
        } else {
            let body: Value = response.json().await.unwrap();
            refusals.push(body["reason"].as_str().unwrap_or("").to_owned());
        }
        server.clock.advance_secs(1);
    }
    assert_eq!(granted, 30, "the 31st file is refused, and all after it");
    assert!(
        refusals.iter().all(|r| r == "user_suspended"),
        "{refusals:?}"
    );
    let users = admin
        .expect(Method::GET, "/v1/admin/users", None, StatusCode::OK)
        .await;
    let state = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "mallory")
        .map(|u| u["state"].clone());
    assert_eq!(state, Some(json!("suspended")), "{users}");

    // The receiver gets the alert, signed.
    assert!(
        eventually(LIMIT, || received.count() >= 1).await,
        "the alert reaches the webhook"
    );
    let (headers, body) = received.all().remove(0);
    let delivery: Value = serde_json::from_slice(&body).unwrap();
    let alert = &delivery["alert"];
    let id = alert["id"].as_u64().expect("an id");
    assert_eq!(delivery["version"], 1);
    assert_eq!(delivery["server"], server.base);
    assert_eq!(alert["rule"], "bulk_files");
    assert_eq!(alert["user"], "mallory");
    assert_eq!(alert["response"], "suspend");
    assert_eq!(headers["x-irm-alert-id"].to_str().unwrap(), id.to_string());
    let signature = headers["x-irm-signature"].to_str().unwrap();
    assert!(
        signature_ok(signature, &body, server.clock.now_secs()),
        "{signature}"
    );
    assert!(
        !signature_ok(
            signature,
            b"{\"alert\":\"forged\"}",
            server.clock.now_secs()
        ),
        "the signature covers the body"
    );

    // Administrators (and auditors) list it as open.
    let open = admin
        .expect(
            Method::GET,
            "/v1/admin/alerts?open=true",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(open.as_array().unwrap().len(), 1, "{open}");
    assert_eq!(open[0]["id"], id);
    assert_eq!(open[0]["in_force"], true);
    assert_eq!(open[0]["lift_with"], "irm admin user restore mallory");
    assert!(open[0]["ack"].is_null());
    let seen = auditor
        .expect(
            Method::GET,
            &format!("/v1/admin/alerts/{id}"),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(seen["id"], id);
    let refused = auditor
        .expect(
            Method::POST,
            &format!("/v1/admin/alerts/{id}/ack"),
            Some(json!({"reason": "not mine to ack"})),
            StatusCode::FORBIDDEN,
        )
        .await;
    assert_eq!(refused["reason"], "role_required");

    // Acknowledged once, audited with who and why; the suspension stays.
    let acked = admin
        .expect(
            Method::POST,
            &format!("/v1/admin/alerts/{id}/ack"),
            Some(json!({"reason": "INC-42 reviewed"})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(acked["ack"]["by"], "admin");
    assert_eq!(acked["ack"]["reason"], "INC-42 reviewed");
    assert_eq!(acked["in_force"], true, "acknowledging lifts nothing");
    assert_eq!(acked["lift_with"], "irm admin user restore mallory");
    let file = seal(&key, policy(&["mallory"], Rights::VIEW, None, None));
    assert_eq!(mallory.grant_denied(&file, false).await, "user_suspended");
    let again = admin
        .expect(
            Method::POST,
            &format!("/v1/admin/alerts/{id}/ack"),
            Some(json!({"reason": "again"})),
            StatusCode::CONFLICT,
        )
        .await;
    assert!(
        again["message"]
            .as_str()
            .unwrap()
            .contains("already acknowledged by admin"),
        "{again}"
    );
    let audit = admin.audit().await;
    let acks = actions(&audit, "admin.alert.ack");
    let outcome: Vec<_> = acks
        .iter()
        .map(|r| (r.actor_user.as_deref().unwrap(), r.result.as_str()))
        .collect();
    assert_eq!(
        outcome,
        [("audrey", "denied"), ("admin", "ok"), ("admin", "failed")],
        "the auditor's refusal, the acknowledgement and the refused repeat"
    );
    assert_eq!(acks[0].reason.as_deref(), Some("role_required"));
    assert_eq!(
        acks[1].detail.as_deref(),
        Some(format!("alert={id} reason=INC-42 reviewed").as_str())
    );

    // Bad ids are 404 with the JSON error body, never a 500.
    for path in [
        "/v1/admin/alerts/abc".to_owned(),
        "/v1/admin/alerts/0".to_owned(),
        "/v1/admin/alerts/99999999999999999999999".to_owned(),
        "/v1/admin/alerts/1".to_owned(), // a record, but no alert
    ] {
        let body = admin
            .expect(Method::GET, &path, None, StatusCode::NOT_FOUND)
            .await;
        assert_eq!(body["error"], "not_found", "{path}: {body}");
    }
    admin
        .expect(
            Method::POST,
            "/v1/admin/alerts/999999/ack",
            Some(json!({"reason": "x"})),
            StatusCode::NOT_FOUND,
        )
        .await;

    // A restart keeps the acknowledgement and repeats no delivery.
    server.restart(|_| {}).await;
    let open = admin
        .expect(
            Method::GET,
            "/v1/admin/alerts?open=true",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(open, json!([]));
    let all = admin
        .expect(Method::GET, "/v1/admin/alerts", None, StatusCode::OK)
        .await;
    assert_eq!(all[0]["ack"]["reason"], "INC-42 reviewed");
    let store = Arc::clone(&server.state().store);
    let undelivered = tokio::task::spawn_blocking(move || store.undelivered_alerts(10))
        .await
        .unwrap()
        .unwrap();
    assert!(undelivered.is_empty(), "{undelivered:?}");
    assert_eq!(received.count(), 1, "delivered once");
}

on_each_backend!(a_failing_receiver_is_retried_until_it_takes_the_alert);
async fn a_failing_receiver_is_retried_until_it_takes_the_alert(backend: Backend) {
    let received = Arc::new(Received::default());
    received.failures_left.store(2, Ordering::SeqCst);
    let (url, ca, _ca_dir) = receiver(Arc::clone(&received)).await;
    let detection = DetectionConfig {
        bulk_files: Some(3),
        bulk_action: Some(Action::Alert),
        ..Default::default()
    };
    let (server, admin) = server(backend, &url, &ca, detection).await;
    let alice = server.user(&admin, "alice", &[Role::User], &[]).await;
    let key = admin.server_key.public_key.clone();
    for _ in 0..4 {
        let file = seal(&key, policy(&["alice"], Rights::VIEW, None, None));
        alice.grant_ok(&file, false).await; // an alert alone refuses nothing
    }
    assert!(
        eventually(LIMIT, || received.count() >= 3).await,
        "two failures, then the delivery"
    );
    let posts = received.all();
    let ids: Vec<_> = posts
        .iter()
        .map(|(h, _)| h["x-irm-alert-id"].to_str().unwrap().to_owned())
        .collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "the same alert: {ids:?}");

    // The first failure and the late success are audited once each.
    let mut audit = Vec::new();
    let deadline = std::time::Instant::now() + LIMIT;
    while std::time::Instant::now() < deadline {
        audit = admin.audit().await;
        if !actions(&audit, "alert.delivered").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let failed = actions(&audit, "alert.delivery_failed");
    assert_eq!(failed.len(), 1, "only the first failure");
    assert_eq!(failed[0].reason.as_deref(), Some("status_500"));
    assert_eq!(
        failed[0].detail.as_deref(),
        Some(format!("alert={} error=status_500", ids[0]).as_str())
    );
    let delivered = actions(&audit, "alert.delivered");
    assert_eq!(delivered.len(), 1);
    assert_eq!(
        delivered[0].detail.as_deref(),
        Some(format!("alert={} attempts=3", ids[0]).as_str())
    );
    let store = Arc::clone(&server.state().store);
    let undelivered = tokio::task::spawn_blocking(move || store.undelivered_alerts(10))
        .await
        .unwrap()
        .unwrap();
    assert!(
        undelivered.is_empty(),
        "the receiver took it: {undelivered:?}"
    );
    assert_eq!(received.count(), 3, "nothing delivered twice once taken");
}

on_each_backend!(a_version_2_database_gains_the_acknowledgements_table_when_opened);
/// A database from before alerts (schema version 2: no `alert_acks`) is
/// upgraded when the server opens it, on either backend.
async fn a_version_2_database_gains_the_acknowledgements_table_when_opened(backend: Backend) {
    use irm_key_server::clock::ManualClock;
    use irm_key_server::metrics::Metrics;
    use irm_key_server::store::{Actor, AdminOp, AdminOutput, Database};

    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at_secs(common::T0);
    let pg = matches!(backend, Backend::Postgres).then(common::pg::TestDatabase::create);
    let url = pg.as_ref().map(|d| d.url.clone());
    irm_key_server::datadir::init_with(dir.path(), url.as_ref(), &[], "admin", &clock)
        .expect("init");
    let downgrade = "DROP TABLE alert_acks; UPDATE meta SET value = '2' WHERE key = 'schema';";
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
        .expect("a version 2 database opens");
    let actor = Actor {
        user: "admin".into(),
        device: "00".repeat(16),
        client_addr: None,
        reason: None,
    };
    let now = clock.now_ms();
    let op = AdminOp::ListAlerts { open: true };
    let alerts = tokio::task::spawn_blocking(move || store.admin(&actor, op, now))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(alerts, AdminOutput::Alerts(Vec::new()));
}
