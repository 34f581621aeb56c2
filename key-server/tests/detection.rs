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
use irm_core::protocol::{AuditRecord, DetectionLimit, Role};
use irm_key_server::detect::{Action, Rules};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Five files in five minutes at most; three refusals in ten minutes alert.
fn rules(action: Action) -> Rules {
    Rules {
        bulk: Some(DetectionLimit {
            limit: 5,
            window_secs: 300,
            action,
        }),
        denials: Some(DetectionLimit {
            limit: 3,
            window_secs: 600,
            action: Action::Alert,
        }),
        records: Some(DetectionLimit {
            limit: 150,
            window_secs: 3600,
            action: Action::StepUp,
        }),
        devices: Some(DetectionLimit {
            limit: 1,
            window_secs: 600,
            action: Action::Alert,
        }),
        networks: Some(DetectionLimit {
            limit: 1,
            window_secs: 3600,
            action: Action::Alert,
        }),
        baseline: Some(DetectionLimit {
            limit: 10,
            window_secs: 14 * 86_400,
            action: Action::Alert,
        }),
        off_hours: Some(DetectionLimit {
            limit: 1,
            window_secs: 3600,
            action: Action::Alert,
        }),
        first_access: Some(DetectionLimit {
            limit: 1,
            window_secs: 7 * 86_400,
            action: Action::Alert,
        }),
        peers: Some(DetectionLimit {
            limit: 5,
            window_secs: 30 * 86_400,
            action: Action::Alert,
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

/// PROTOCOL.md §12.2: the rules are server state. The config file sets a
/// new server's; tightening takes effect at once; loosening or switching a
/// rule off waits for another administrator; editing the config file later
/// changes nothing; only administrators change them, only with good values.
async fn rules_are_server_state_that_one_person_cannot_loosen(backend: Backend) {
    let (mut server, admin, alice, files) = server_with(backend, Action::StepUp).await;
    let rules = admin
        .expect(Method::GET, "/v1/admin/detection", None, StatusCode::OK)
        .await;
    assert_eq!(rules[0]["rule"], "bulk_files", "{rules}");
    assert_eq!(rules[0]["text"], "limit=5 window_secs=300 action=step_up");
    assert_eq!(rules[1]["text"], "limit=3 window_secs=600 action=alert");
    assert_eq!(
        rules[2]["text"],
        "limit=150 window_secs=3600 action=step_up"
    );
    let seeded = fired(&admin.audit().await, "admin.detection.set").len();
    assert_eq!(seeded, 9, "each configured rule is stored with a record");

    // Tighter: at once, by one administrator, and in force for the next grant.
    let tight = json!({"setting": {"limit": 2, "window_secs": 600, "action": "suspend"}});
    let now = admin
        .expect(
            Method::PUT,
            "/v1/admin/detection/bulk_files",
            Some(tight),
            StatusCode::OK,
        )
        .await;
    assert_eq!(now[0]["text"], "limit=2 window_secs=600 action=suspend");
    alice.grant_ok(&files[0], false).await;
    alice.grant_ok(&files[1], false).await;
    assert_eq!(alice.grant_denied(&files[2], false).await, "user_suspended");
    let restore = admin
        .expect(
            Method::POST,
            "/v1/admin/users/alice/restore",
            None,
            StatusCode::ACCEPTED,
        )
        .await;
    server.approve(&restore).await;

    // Off: a request, and the rule holds meanwhile.
    let filed = admin
        .expect(
            Method::PUT,
            "/v1/admin/detection/bulk_files",
            Some(json!({"setting": null})),
            StatusCode::ACCEPTED,
        )
        .await;
    assert_eq!(
        filed["request"]["action"]["kind"], "set_detection_rule",
        "{filed}"
    );
    assert_eq!(filed["request"]["action"]["setting"], "off");
    // A higher limit is a loosening too, as is a weaker action.
    for looser in [
        json!({"limit": 3, "window_secs": 600, "action": "suspend"}),
        json!({"limit": 2, "window_secs": 600, "action": "alert"}),
        json!({"limit": 2, "window_secs": 60, "action": "suspend"}),
    ] {
        let answer = admin
            .expect(
                Method::PUT,
                "/v1/admin/detection/bulk_files",
                Some(json!({ "setting": looser })),
                StatusCode::ACCEPTED,
            )
            .await;
        assert_eq!(answer["request"]["state"], "pending", "{answer}");
    }
    server.clock.advance_secs(700);
    alice.grant_ok(&files[3], false).await;
    alice.grant_ok(&files[4], false).await;
    assert_eq!(alice.grant_denied(&files[5], false).await, "user_suspended");
    let restore = admin
        .expect(
            Method::POST,
            "/v1/admin/users/alice/restore",
            None,
            StatusCode::ACCEPTED,
        )
        .await;
    server.approve(&restore).await;

    // Approved by a second administrator: off.
    server.approve(&filed).await;
    let rules = admin
        .expect(Method::GET, "/v1/admin/detection", None, StatusCode::OK)
        .await;
    assert_eq!(rules[0]["text"], "off", "{rules}");
    assert_eq!(rules[0]["setting"], serde_json::Value::Null);
    for file in &files {
        alice.grant_ok(file, false).await;
    }

    // The config file cannot change a stored rule, in either direction: the
    // denials rule stays as stored although the file now switches it off.
    server
        .restart_with(|_| {}, |s| s.detection.denials = None)
        .await;
    let rules = admin
        .expect(Method::GET, "/v1/admin/detection", None, StatusCode::OK)
        .await;
    assert_eq!(rules[1]["text"], "limit=3 window_secs=600 action=alert");
    assert_eq!(
        fired(&admin.audit().await, "admin.detection.set").len(),
        seeded + 2
    );

    // Bad values, unknown rules and people who are not administrators.
    for (path, body) in [
        (
            "/v1/admin/detection/bulk_files",
            json!({"setting": {"limit": 0, "window_secs": 60, "action": "alert"}}),
        ),
        (
            "/v1/admin/detection/bulk_files",
            json!({"setting": {"limit": 1, "window_secs": 0, "action": "alert"}}),
        ),
        (
            "/v1/admin/detection/denials",
            json!({"setting": {"limit": 1, "window_secs": 60, "action": "suspend"}}),
        ),
        ("/v1/admin/detection/everything", json!({"setting": null})),
        (
            "/v1/admin/detection/bulk_files",
            json!({"setting": {"limit": 1, "window_secs": 60, "action": "ignore"}}),
        ),
        ("/v1/admin/detection/bulk_files", json!({"limit": 1})),
    ] {
        let refused = admin.send(Method::PUT, path, Some(body.clone())).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{path} {body}");
    }
    let tight = json!({"setting": {"limit": 1, "window_secs": 60, "action": "alert"}});
    let refused = alice
        .send(Method::PUT, "/v1/admin/detection/bulk_files", Some(tight))
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}

/// Records taken (rows copied, printed, exported as clients report them),
/// a second device enrolled, and two devices in use at once (PROTOCOL.md
/// §12): each an alert, `records_taken` here a hold, across a restart.
async fn records_taken_and_devices_in_use_fire(backend: Backend) {
    let (mut server, admin, alice, files) = server_with(backend, Action::StepUp).await;
    let key = admin.server_key.public_key.clone();
    let list = seal(
        &key,
        policy(&["alice"], Rights::VIEW | Rights::PRINT, None, None),
    );
    let grant = alice.grant_ok(&list, false).await;
    let print = |rows: u64| json!({"grant_id": grant.grant_id, "action": "print", "detail": "rows=0", "rows": rows});
    // 100 rows, then 50: 150 is the limit itself; the person's own
    // `rows=0` in the detail changes nothing.
    for rows in [100, 50] {
        alice
            .expect(
                Method::POST,
                "/v1/events",
                Some(print(rows)),
                StatusCode::NO_CONTENT,
            )
            .await;
    }
    assert!(fired(&admin.audit().await, "detect.records_taken").is_empty());
    // Counted across a restart: one more row is the 151st.
    server.restart(|_| {}).await;
    alice
        .expect(
            Method::POST,
            "/v1/events",
            Some(print(1)),
            StatusCode::NO_CONTENT,
        )
        .await;
    let audit = admin.audit().await;
    let taken = fired(&audit, "detect.records_taken");
    assert_eq!(taken.len(), 1, "one firing");
    let detail = taken[0].detail.as_deref().unwrap_or("");
    assert!(
        detail.starts_with("records=151 window_secs=3600 limit=150 action=step_up"),
        "{detail}"
    );
    // The rows already left; the hold stops what comes next.
    assert_eq!(
        alice.grant_denied(&files[1], false).await,
        "step_up_required"
    );

    // A second device for bob is an alert; using both at once is another.
    let bob = server.user(&admin, "bob", &[Role::User], &[]).await;
    assert!(fired(&admin.audit().await, "detect.new_device").is_empty());
    let code = server.new_code(&admin, "bob").await;
    let bob_laptop = server.enroll("bob", &code).await;
    let audit = admin.audit().await;
    let new_device = fired(&audit, "detect.new_device");
    assert_eq!(new_device.len(), 1, "the second device");
    assert_eq!(new_device[0].actor_user.as_deref(), Some("bob"));
    assert_eq!(
        new_device[0].detail.as_deref(),
        Some("devices=2 action=alert")
    );
    let file = seal(&key, policy(&["bob"], Rights::VIEW, None, None));
    bob.grant_ok(&file, false).await;
    assert!(fired(&admin.audit().await, "detect.devices").is_empty());
    bob_laptop.grant_ok(&file, false).await;
    let audit = admin.audit().await;
    let devices = fired(&audit, "detect.devices");
    assert_eq!(devices.len(), 1, "{devices:?}");
    assert!(
        devices[0]
            .detail
            .as_deref()
            .unwrap_or("")
            .starts_with("devices=2 window_secs=600 limit=1 action=alert")
    );
    // An alert only: both devices go on working; one network throughout.
    bob.grant_ok(&file, true).await;
    assert!(
        fired(&audit, "detect.networks").is_empty(),
        "all from 127.0.0.1"
    );
}

/// A person's own baseline (PROTOCOL.md §12): a week of three opens an
/// hour, then an hour of more than ten times that raises an alert; the
/// history is rebuilt from the log after a restart; the hour before it,
/// at ten times, raises nothing.
async fn an_hour_far_above_the_persons_own_baseline_alerts(backend: Backend) {
    let (mut server, admin, alice, files) = server_with(backend, Action::StepUp).await;
    for _day in 0..8 {
        for file in &files[..3] {
            alice.grant_ok(file, false).await;
        }
        server.clock.advance_secs(86_400);
    }
    server.restart(|_| {}).await;
    // From the start of a clock hour (the baseline counts clock hours).
    use irm_key_server::clock::Clock as _;
    let now = server.clock.now_ms() / 1000;
    server.clock.advance_secs(3600 - now % 3600);
    // Thirty opens of one file in an hour, two minutes apart (never more
    // than three files in the bulk rule's five minutes): ten times the
    // median hour, ordinary.
    for _ in 0..30 {
        alice.grant_ok(&files[0], false).await;
        server.clock.advance_secs(110);
    }
    assert!(fired(&admin.audit().await, "detect.baseline").is_empty());
    alice.grant_ok(&files[0], false).await;
    let audit = admin.audit().await;
    let baseline = fired(&audit, "detect.baseline");
    assert_eq!(baseline.len(), 1, "the 31st open in the hour");
    let detail = baseline[0].detail.as_deref().unwrap_or("");
    assert!(
        detail.starts_with("grants_this_hour=31 median_hour=3 factor=10"),
        "{detail}"
    );
    // An alert: the grant went ahead.
    assert_eq!(audit.last().map(|r| r.action.as_str()), Some("grant"));
}

/// Working hours (PROTOCOL.md §12.3): a grant outside the hours of the
/// person's group is an alert; narrowing the hours is at once, widening
/// them a request; the config file seeds them and changes nothing later.
async fn a_grant_outside_the_groups_working_hours_alerts(backend: Backend) {
    let office = irm_core::protocol::WorkingHours {
        time_zone: "Asia/Tokyo".into(),
        days: ["mon", "tue", "wed", "thu", "fri"]
            .map(String::from)
            .to_vec(),
        hours: "08:00-20:00".into(),
        holidays: vec!["2027-01-01".into()],
    };
    let mut server = TestServer::start_on_with(backend, |s| {
        s.working_hours = [("support".to_owned(), office.clone())].into();
    })
    .await;
    let admin = server.admin().await;
    admin.create_group("support").await;
    let alice = server
        .user(&admin, "alice", &[Role::User], &["support"])
        .await;
    let key = admin.server_key.public_key.clone();
    let file = seal(&key, policy(&["@support"], Rights::VIEW, None, None));
    // T0 is Friday 2027-01-15 17:00 in Tokyo: inside.
    alice.grant_ok(&file, false).await;
    assert!(fired(&admin.audit().await, "detect.off_hours").is_empty());
    // 21:00: outside; an alert, and the grant goes ahead.
    server.clock.advance_secs(4 * 3600);
    alice.grant_ok(&file, false).await;
    let audit = admin.audit().await;
    let off = fired(&audit, "detect.off_hours");
    assert_eq!(off.len(), 1);
    assert_eq!(off[0].actor_user.as_deref(), Some("alice"));
    assert!(
        off[0]
            .detail
            .as_deref()
            .unwrap_or("")
            .starts_with("grants_outside=1 window_secs=3600 limit=1 action=alert")
    );
    let seeded = fired(&audit, "admin.hours.set");
    assert_eq!(seeded.len(), 1, "seeded from the config file");

    let list = admin
        .expect(Method::GET, "/v1/admin/working-hours", None, StatusCode::OK)
        .await;
    assert_eq!(list[0]["group"], "support", "{list}");
    assert_eq!(
        list[0]["text"],
        "tz=Asia/Tokyo days=mon,tue,wed,thu,fri hours=08:00-20:00 holidays=2027-01-01"
    );
    // Narrower: at once. Wider, another zone, or none at all: requests.
    let narrower = json!({"schedule": {"time_zone": "Asia/Tokyo", "days": ["mon", "fri"],
        "hours": "09:00-18:00", "holidays": ["2027-01-01", "2027-01-02"]}});
    let now = admin
        .expect(
            Method::PUT,
            "/v1/admin/working-hours/support",
            Some(narrower),
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        now[0]["text"],
        "tz=Asia/Tokyo days=mon,fri hours=09:00-18:00 holidays=2027-01-01,2027-01-02"
    );
    for wider in [
        json!({"schedule": {"time_zone": "Asia/Tokyo", "days": ["mon", "fri"], "hours": "07:00-18:00"}}),
        json!({"schedule": {"time_zone": "UTC", "days": ["mon", "fri"], "hours": "09:00-18:00",
            "holidays": ["2027-01-01", "2027-01-02"]}}),
        json!({"schedule": null}),
    ] {
        let filed = admin
            .expect(
                Method::PUT,
                "/v1/admin/working-hours/support",
                Some(wider),
                StatusCode::ACCEPTED,
            )
            .await;
        assert_eq!(
            filed["request"]["action"]["kind"], "set_working_hours",
            "{filed}"
        );
    }
    // Bad schedules are refused, before anyone approves anything.
    for bad in [
        json!({"schedule": {"time_zone": "Mars/Base", "days": ["mon"], "hours": "09:00-18:00"}}),
        json!({"schedule": {"time_zone": "Asia/Tokyo", "days": ["someday"], "hours": "09:00-18:00"}}),
        json!({"schedule": {"time_zone": "Asia/Tokyo", "days": ["mon"], "hours": "9-18"}}),
    ] {
        let refused = admin
            .send(
                Method::PUT,
                "/v1/admin/working-hours/support",
                Some(bad.clone()),
            )
            .await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    // The config file no longer decides: removing the hours from it
    // leaves the stored ones in force.
    server
        .restart_with(|_| {}, |s| s.working_hours.clear())
        .await;
    let list = admin
        .expect(Method::GET, "/v1/admin/working-hours", None, StatusCode::OK)
        .await;
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    // Saturday: outside the narrowed days.
    server.clock.advance_secs(86_400);
    alice.grant_ok(&file, false).await;
    assert_eq!(fired(&admin.audit().await, "detect.off_hours").len(), 2);
}

/// First access (PROTOCOL.md §12): a settled person opening a group's
/// files (or a classification) for the first time is an alert; what they
/// opened before is remembered in the database across a restart.
async fn a_settled_persons_first_access_to_a_groups_files_alerts(backend: Backend) {
    let mut server = TestServer::start_on(backend).await;
    let admin = server.admin().await;
    admin.create_group("support").await;
    admin.create_group("payroll").await;
    let alice = server
        .user(&admin, "alice", &[Role::User], &["support", "payroll"])
        .await;
    let key = admin.server_key.public_key.clone();
    let support = seal(&key, policy(&["@support"], Rights::VIEW, None, None));
    let payroll = seal(&key, policy(&["@payroll"], Rights::VIEW, None, None));
    alice.grant_ok(&support, false).await;
    server.clock.advance_secs(8 * 86_400);
    server.restart(|_| {}).await;
    alice.grant_ok(&support, false).await;
    assert!(fired(&admin.audit().await, "detect.first_access").is_empty());
    alice.grant_ok(&payroll, false).await;
    let audit = admin.audit().await;
    let first = fired(&audit, "detect.first_access");
    assert_eq!(first.len(), 1, "payroll's files, first time, after a week");
    let detail = first[0].detail.as_deref().unwrap_or("");
    assert!(
        detail.starts_with("first_scopes=1 window_secs=604800 limit=1 action=alert"),
        "{detail}"
    );
    assert!(detail.contains("scope=group:payroll"), "{detail}");
    // Once is enough.
    alice.grant_ok(&payroll, false).await;
    assert_eq!(fired(&admin.audit().await, "detect.first_access").len(), 1);
}

/// Peers (PROTOCOL.md §12): one member of a group who opens far more
/// distinct files than the others over the window stands out, once; the
/// check runs off the grant path (hourly in a server; here, called).
async fn one_who_takes_far_more_than_their_peers_stands_out(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let admin = server.admin().await;
    admin.create_group("support").await;
    let mut people = Vec::new();
    for name in ["alice", "bob", "carol", "dave"] {
        people.push(server.user(&admin, name, &[Role::User], &["support"]).await);
    }
    let key = admin.server_key.public_key.clone();
    let files: Vec<_> = (0..25)
        .map(|_| seal(&key, policy(&["@support"], Rights::VIEW, None, None)))
        .collect();
    for file in &files {
        people[0].grant_ok(file, false).await;
    }
    for person in &people[1..] {
        for file in &files[..2] {
            person.grant_ok(file, false).await;
        }
    }
    assert_eq!(
        irm_key_server::peers::check_peers(server.state())
            .await
            .unwrap(),
        1
    );
    let audit = admin.audit().await;
    let peers = fired(&audit, "detect.peers");
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].actor_user.as_deref(), Some("alice"));
    assert_eq!(peers[0].actor_device, None, "found off the grant path");
    let detail = peers[0].detail.as_deref().unwrap_or("");
    assert!(
        detail.starts_with("files=25 peer_median=2 peers=3 factor=5 window_days=30 action=alert"),
        "{detail}"
    );
    // Once per window: the next hour's check says nothing new.
    assert_eq!(
        irm_key_server::peers::check_peers(server.state())
            .await
            .unwrap(),
        0
    );
}

on_each_backend!(
    one_who_takes_far_more_than_their_peers_stands_out,
    a_settled_persons_first_access_to_a_groups_files_alerts,
    a_grant_outside_the_groups_working_hours_alerts,
    an_hour_far_above_the_persons_own_baseline_alerts,
    records_taken_and_devices_in_use_fire,
    rules_are_server_state_that_one_person_cannot_loosen,
    bulk_access_holds_the_person_until_two_administrators_release_them,
    the_suspend_action_suspends,
    ordinary_reading_and_unsigned_requests_raise_nothing_but_probing_does,
);
