//! The push channel (PROTOCOL.md §13) against the real server, on SQLite
//! and PostgreSQL: a stream reports each change an open document's grant
//! rests on (its file, its person, its device) and nothing else, including
//! a change committed between the grant and the stream's start; a detection
//! rule's hold reaches the stream like an administrator's act; a cursor of
//! an earlier process means "check now"; the cap answers 503; bad queries
//! and unsigned requests are refused; and shutdown is not held up by open
//! streams.

#[macro_use]
mod common;

use std::time::Duration;

use common::{Backend, Device, TestServer, policy, seal};
use irm_core::Rights;
use irm_core::protocol::DetectionLimit;
use irm_core::protocol::{Role, WatchQuery};
use irm_key_server::detect::{Action, Rules};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// An open stream, read event by event.
struct Stream {
    response: reqwest::Response,
    buffered: String,
}

impl Stream {
    /// The next event (name and data), skipping heartbeats. A generous bound
    /// only turns a stream that never speaks into a failure.
    async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(end) = self.buffered.find("\n\n") {
                let block: String = self.buffered.drain(..end + 2).collect();
                let mut event = None;
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(name) = line.strip_prefix("event: ") {
                        event = Some(name.to_owned());
                    } else if let Some(value) = line.strip_prefix("data: ") {
                        data.push_str(value);
                    }
                }
                if let Some(event) = event {
                    return (event, serde_json::from_str(&data).expect("JSON data"));
                }
                continue; // a heartbeat comment
            }
            let chunk = tokio::time::timeout(Duration::from_secs(60), self.response.chunk())
                .await
                .expect("the stream speaks within a minute")
                .expect("the stream reads")
                .expect("the stream has not ended");
            self.buffered
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8 events"));
        }
    }

    /// The next event, which must be a recheck; its subject.
    async fn recheck(&mut self) -> String {
        let (event, data) = self.next().await;
        assert_eq!(event, "recheck", "{data}");
        data["subject"].as_str().expect("a subject").to_owned()
    }
}

/// Opens `device`'s stream for `file` from `after`, and reads its `ready`.
async fn watch(device: &Device, file: Option<String>, after: Option<String>) -> (Stream, Value) {
    let path = format!("/v1/watch?{}", WatchQuery { file, after }.to_query());
    let response = device.send(Method::GET, &path, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream",
        "server-sent events"
    );
    let mut stream = Stream {
        response,
        buffered: String::new(),
    };
    let (event, ready) = stream.next().await;
    assert_eq!(event, "ready", "{ready}");
    assert_eq!(ready["heartbeat_secs"], 5);
    (stream, ready)
}

async fn post(admin: &Device, path: &str) {
    admin.expect(Method::POST, path, None, StatusCode::OK).await;
}

async fn each_change_a_grant_rests_on_reaches_its_stream_and_nothing_else(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let admin = server.admin().await;
    let alice = server.user(&admin, "alice", &[Role::User], &[]).await;
    let bob = server.user(&admin, "bob", &[Role::User], &[]).await;
    let key = admin.server_key.public_key.clone();
    let file = seal(
        &key,
        policy(&["alice"], Rights::VIEW | Rights::COPY, None, None),
    );
    let other = seal(&key, policy(&["alice", "bob"], Rights::VIEW, None, None));
    let grant = alice.grant_ok(&file, false).await;
    let cursor = grant
        .watch_cursor
        .clone()
        .expect("a grant names its cursor");
    let (mut stream, ready) = watch(&alice, Some(file.id()), Some(cursor)).await;
    assert!(ready["cursor"].is_string());

    // Others' changes say nothing to alice's document: another file
    // revoked, another person suspended. Then a restriction of hers does,
    // and it is the very next event.
    bob.grant_ok(&other, false).await;
    post(&admin, &format!("/v1/admin/files/{}/revoke", other.id())).await;
    post(&admin, "/v1/admin/users/bob/suspend").await;
    admin
        .expect(
            Method::POST,
            &format!("/v1/admin/files/{}/restrict", file.id()),
            Some(serde_json::json!({"remove": Rights::COPY})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(stream.recheck().await, "file");
    // The renewal it asks for is decided as ever: narrower rights.
    let renewed = alice.grant_ok(&file, true).await;
    assert_eq!(renewed.rights, Rights::VIEW);

    post(&admin, "/v1/admin/users/alice/suspend").await;
    assert_eq!(stream.recheck().await, "user");
    assert_eq!(alice.grant_denied(&file, true).await, "user_suspended");
    // A suspended person's new stream is refused like any of their requests.
    let refused = alice.send(Method::GET, "/v1/watch", None).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}

async fn a_change_between_the_grant_and_the_stream_is_not_lost(backend: Backend) {
    let server = TestServer::start_on(backend).await;
    let admin = server.admin().await;
    let alice = server.user(&admin, "alice", &[Role::User], &[]).await;
    let key = admin.server_key.public_key.clone();
    let file = seal(&key, policy(&["alice"], Rights::VIEW, None, None));
    let grant = alice.grant_ok(&file, false).await;
    // Revoked before the device's stream is open: its cursor, taken
    // before the grant was decided, still covers it.
    post(&admin, &format!("/v1/admin/files/{}/revoke", file.id())).await;
    let (mut stream, _) = watch(&alice, Some(file.id()), grant.watch_cursor.clone()).await;
    assert_eq!(stream.recheck().await, "file");
    assert_eq!(alice.grant_denied(&file, true).await, "file_revoked");

    // A device revoked: the device's subject.
    let other = seal(&key, policy(&["alice"], Rights::VIEW, None, None));
    let grant = alice.grant_ok(&other, false).await;
    let (mut stream, _) = watch(&alice, Some(other.id()), grant.watch_cursor).await;
    post(&admin, &format!("/v1/admin/devices/{}/revoke", alice.id)).await;
    assert_eq!(stream.recheck().await, "device");
}

async fn a_detection_hold_reaches_the_open_documents_of_the_person_it_holds(backend: Backend) {
    let server = TestServer::start_on_with(backend, |s| {
        s.detection = Rules {
            bulk: Some(DetectionLimit {
                limit: 2,
                window_secs: 300,
                action: Action::StepUp,
            }),
            ..Rules::OFF
        };
    })
    .await;
    let admin = server.admin().await;
    let alice = server.user(&admin, "alice", &[Role::User], &[]).await;
    let key = admin.server_key.public_key.clone();
    let files: Vec<_> = (0..3)
        .map(|_| seal(&key, policy(&["alice"], Rights::VIEW, None, None)))
        .collect();
    let first = alice.grant_ok(&files[0], false).await;
    let (mut stream, _) = watch(&alice, Some(files[0].id()), first.watch_cursor).await;
    alice.grant_ok(&files[1], false).await;
    // The third distinct file sets off the rule: the hold commits with the
    // refusal, and the already open first document hears of it.
    assert_eq!(
        alice.grant_denied(&files[2], false).await,
        "step_up_required"
    );
    assert_eq!(stream.recheck().await, "user");
    assert_eq!(
        alice.grant_denied(&files[0], true).await,
        "step_up_required"
    );
}

async fn a_cursor_of_an_earlier_process_means_check_now(backend: Backend) {
    let mut server = TestServer::start_on(backend).await;
    let admin = server.admin().await;
    let alice = server.user(&admin, "alice", &[Role::User], &[]).await;
    let key = admin.server_key.public_key.clone();
    let file = seal(&key, policy(&["alice"], Rights::VIEW, None, None));
    let grant = alice.grant_ok(&file, false).await;
    let (stream, _) = watch(&alice, Some(file.id()), grant.watch_cursor.clone()).await;
    drop(stream);
    // Shutdown ends open streams rather than waiting for them.
    server.restart(|_| {}).await;
    let (mut stream, _) = watch(&alice, Some(file.id()), grant.watch_cursor).await;
    assert_eq!(stream.recheck().await, "unknown");
    // A stream without a cursor starts from now: nothing to check.
    let (mut fresh, _) = watch(&alice, Some(file.id()), None).await;
    post(&admin, &format!("/v1/admin/files/{}/revoke", file.id())).await;
    assert_eq!(fresh.recheck().await, "file");
}

async fn streams_beyond_the_cap_and_bad_requests_are_refused(backend: Backend) {
    let server = TestServer::start_on_with(backend, |s| s.max_watchers = 1).await;
    let admin = server.admin().await;
    let alice = server.user(&admin, "alice", &[Role::User], &[]).await;
    let (stream, _) = watch(&alice, None, None).await;
    let full = alice.send(Method::GET, "/v1/watch", None).await;
    assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(full.headers()["retry-after"], "60");
    let body: Value = full.json().await.expect("a JSON error body");
    assert_eq!(body["error"], "watch_capacity", "{body}");
    // The place is given back when the stream closes.
    drop(stream);
    let mut again = None;
    for _ in 0..300 {
        let response = alice.send(Method::GET, "/v1/watch", None).await;
        if response.status() == StatusCode::OK {
            again = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(again.is_some(), "a closed stream frees its place");
    drop(again);

    for (query, says) in [
        ("file=xyz", "file id"),
        ("after=", "cursor"),
        ("follow=all", "unknown"),
    ] {
        let body = alice
            .expect(
                Method::GET,
                &format!("/v1/watch?{query}"),
                None,
                StatusCode::BAD_REQUEST,
            )
            .await;
        assert_eq!(body["error"], "bad_request", "{body}");
        assert!(
            body["message"].as_str().unwrap_or("").contains(says),
            "{body}"
        );
    }
    // Unsigned: nobody's stream.
    let unsigned = server
        .http
        .get(server.url("/v1/watch"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
}

/// The header-read timeout (10 s, which also closes idle keep-alive
/// connections) never cuts a stream: its request was read long ago.
/// SQLite only: the connection is the same on either database.
#[tokio::test]
async fn a_stream_outlives_the_header_read_timeout() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user(&admin, "alice", &[Role::User], &[]).await;
    let (mut stream, _) = watch(&alice, None, None).await;
    tokio::time::sleep(irm_key_server::connections::HEADER_READ_TIMEOUT + Duration::from_secs(2))
        .await;
    post(&admin, "/v1/admin/users/alice/suspend").await;
    assert_eq!(stream.recheck().await, "user");
}

on_each_backend!(
    each_change_a_grant_rests_on_reaches_its_stream_and_nothing_else,
    a_change_between_the_grant_and_the_stream_is_not_lost,
    a_detection_hold_reaches_the_open_documents_of_the_person_it_holds,
    a_cursor_of_an_earlier_process_means_check_now,
    streams_beyond_the_cap_and_bad_requests_are_refused,
);
