//! The push channel (PROTOCOL.md §13): `GET /v1/watch`, a stream of
//! server-sent events per open document that tells the device, within
//! moments of the commit, that something its grant rests on changed (the
//! file, the person, the device), so that it asks for a fresh grant at once
//! instead of at its lease's end. The stream decides nothing: the grant
//! decision answers that renewal. This module owns the stream, its
//! filter and the cap on open streams; what changed is the store's change
//! log (`store/changes.rs`), the cap and the shutdown signal `push.rs`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream, StreamExt as _};
use irm_core::protocol::{
    DenyBody, ErrorBody, WATCH_HEARTBEAT_SECS, WatchQuery, WatchReady, WatchRecheck, WatchSubject,
};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};

use crate::auth::Authed;
use crate::error::ApiError;
use crate::push::Slot;
use crate::state::AppState;
use crate::store::{Batch, ChangeLog, Changed, Resume};

/// Whose changes a stream reports.
struct Filter {
    user: String,
    device: String,
    file: Option<String>,
}

impl Filter {
    /// What in `changes` concerns this stream's grant, if anything.
    fn subject(&self, changes: &[Changed]) -> Option<WatchSubject> {
        changes.iter().find_map(|change| match change {
            Changed::User(user) if *user == self.user => Some(WatchSubject::User),
            Changed::Device(device) if *device == self.device => Some(WatchSubject::Device),
            Changed::File(file) if Some(file) == self.file.as_ref() => Some(WatchSubject::File),
            _ => None,
        })
    }
}

/// `event: recheck` with what changed and the cursor after it.
fn recheck(cursor: String, subject: WatchSubject) -> Event {
    Event::default()
        .event("recheck")
        .json_data(WatchRecheck { cursor, subject })
        .expect("a recheck always serializes")
}

/// What a stream holds while it waits for the next change.
struct Live {
    filter: Filter,
    changes: Arc<ChangeLog>,
    receiver: broadcast::Receiver<Batch>,
    closing: watch::Receiver<bool>,
    _slot: Slot,
}

impl Live {
    /// The next event for this stream; `None` ends it (shutdown, or the
    /// change log is gone with the store).
    async fn next(&mut self) -> Option<Event> {
        loop {
            tokio::select! {
                _ = self.closing.wait_for(|closing| *closing) => return None,
                received = self.receiver.recv() => match received {
                    Ok((number, changes)) => {
                        if let Some(subject) = self.filter.subject(&changes) {
                            return Some(recheck(self.changes.cursor_at(number), subject));
                        }
                    }
                    // Fell behind the live backlog: what it missed is unknown.
                    Err(RecvError::Lagged(_)) => {
                        return Some(recheck(self.changes.cursor(), WatchSubject::Unknown));
                    }
                    Err(RecvError::Closed) => return None,
                },
            }
        }
    }
}

/// `GET /v1/watch` (PROTOCOL.md §13).
#[utoipa::path(get, path = "/v1/watch", tag = "grants",
    params(("file" = Option<String>, Query, description = "the open file (32 hex digits)"),
        ("after" = Option<String>, Query, description = "the change cursor to resume from")),
    responses((status = 200, content_type = "text/event-stream",
            description = "`ready`, then a `recheck` event per change, with a heartbeat comment every 5 s"),
        (status = 400, body = ErrorBody),
        (status = 401, body = DenyBody),
        (status = 403, body = DenyBody),
        (status = 503, body = ErrorBody, description = "`watch_capacity`: too many streams open; keep to the lease")),
    security(("device_signature" = [])))]
pub(crate) async fn watch(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    Authed(signed): Authed,
) -> Result<Response, ApiError> {
    let query = WatchQuery::parse(query.as_deref().unwrap_or("")).map_err(ApiError::bad_request)?;
    let slot = state.watchers.enter().ok_or(ApiError::WatchersFull {
        retry_after_secs: 60,
    })?;
    let changes = state.store.changes();
    let subscription = changes.subscribe(query.after.as_deref());
    let filter = Filter {
        user: signed.actor.user,
        device: signed.actor.device,
        file: query.file,
    };
    let ready = Event::default()
        .event("ready")
        .json_data(WatchReady {
            cursor: subscription.cursor.clone(),
            heartbeat_secs: WATCH_HEARTBEAT_SECS,
        })
        .expect("ready always serializes");
    // What the device missed since its cursor, as one recheck: one fresh
    // grant answers for every change before it.
    let missed = match subscription.resume {
        Resume::From(batches) => batches
            .iter()
            .find_map(|(_, changes)| filter.subject(changes))
            .map(|subject| recheck(subscription.cursor.clone(), subject)),
        Resume::CheckNow => Some(recheck(subscription.cursor.clone(), WatchSubject::Unknown)),
    };
    let live = Live {
        filter,
        closing: state.watchers.closing(),
        changes,
        receiver: subscription.live,
        _slot: slot,
    };
    let events = stream::iter([Some(ready), missed].into_iter().flatten())
        .chain(stream::unfold(live, |mut live| async move {
            live.next().await.map(|event| (event, live))
        }))
        .map(Ok::<_, Infallible>);
    Ok(sse(events).into_response())
}

/// The stream with its heartbeat: a comment every [`WATCH_HEARTBEAT_SECS`],
/// which also keeps proxies and the client's read timeout from closing it.
fn sse(
    events: impl Stream<Item = Result<Event, Infallible>> + Send + 'static,
) -> impl IntoResponse {
    Sse::new(events).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(WATCH_HEARTBEAT_SECS))
            .text("heartbeat"),
    )
}
