//! The device's end of the push channel (PROTOCOL.md §13): for each open
//! document a stream `GET /v1/watch` kept open on a signed connection
//! trusting only the server's CA, telling the document's holder when to ask
//! for a fresh grant: when the server reports a change the grant rests on,
//! and when the stream breaks or goes silent for
//! [`WATCH_MISSED_HEARTBEATS`] heartbeats (the server may then have had
//! something to say). Whether the document stays open is never decided
//! here but by that renewal's answer; the lease stays the fallback
//! whenever the channel is down.
//!
//! A session's documents share one thread, one small async runtime and one
//! HTTP/2 connection per [`WATCH_STREAMS_PER_CONNECTION`] streams (the
//! [`Hub`]): a stream over a shared connection costs the server a few
//! kilobytes where a connection of its own costs over twenty
//! (PERFORMANCE.md §5). The hub starts with the session's first [`Watch`]
//! and ends with its last. Each stream is a task of the hub's runtime, so
//! that dropping its [`Watch`] ends it at once (a blocking read could not
//! be interrupted) and nothing of it outlives the document. Until a
//! connection is known to be up, its streams open one at a time, so that
//! documents opening (or reconnecting after a break) together do not each
//! start a connection before ALPN has picked HTTP/2. A server or proxy
//! that does not speak HTTP/2 gets a connection per stream, as before.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak, mpsc};
use std::thread::{JoinHandle, ThreadId};
use std::time::Duration;

use irm_core::SigningSecretKey;
use irm_core::protocol::{
    WATCH_HEARTBEAT_SECS, WATCH_MISSED_HEARTBEATS, WATCH_STREAMS_PER_CONNECTION, WatchQuery,
    WatchReady, WatchRecheck, WatchSubject,
};
use tokio::sync::{Notify, oneshot};

use crate::error::ClientError;
use crate::transport::{Signer, Transport};

/// How long a silent stream is trusted: three heartbeats.
const SILENCE: Duration =
    Duration::from_secs(WATCH_HEARTBEAT_SECS * WATCH_MISSED_HEARTBEATS as u64);
/// The first wait before reconnecting, doubled up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(30);
/// How long to keep away from a server whose streams are all taken.
const FULL_RETRY: Duration = Duration::from_secs(60);
/// The longest line read from the stream; a longer one breaks it.
const MAX_LINE: usize = 64 * 1024;

/// What the push channel tells the holder of an open document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WatchSignal {
    /// Something the grant rests on changed: renew now
    /// ([`Session::renew`](crate::Session::renew)); a refusal closes the document.
    Recheck(WatchSubject),
    /// The stream broke or went silent for three heartbeats: renew now,
    /// since a change may have gone untold. The channel reconnects by itself.
    Lost,
}

/// Tells a stream's task to stop, whatever it is waiting for.
#[derive(Default)]
struct Stop {
    stopped: AtomicBool,
    wake: Notify,
}

impl Stop {
    fn is_set(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Resolves once the holder stops the channel.
    async fn wait(&self) {
        while !self.is_set() {
            self.wake.notified().await;
        }
    }
}

/// Where a session keeps its hub while any of its documents is watched:
/// a weak reference, so that the hub ends with the last [`Watch`] and the
/// next one starts a new one.
#[derive(Default)]
pub(crate) struct HubSlot(Mutex<Weak<Hub>>);

impl HubSlot {
    /// The running hub, or a new one.
    fn get(&self) -> Result<Arc<Hub>, ClientError> {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(hub) = slot.upgrade() {
            return Ok(hub);
        }
        let hub = Arc::new(Hub::start()?);
        *slot = Arc::downgrade(&hub);
        Ok(hub)
    }
}

/// What a session's open documents share for their streams: one thread
/// running a current-thread runtime, and the connections (async clients).
pub(crate) struct Hub {
    runtime: tokio::runtime::Handle,
    /// Dropped to end the runtime's thread.
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    thread_id: ThreadId,
    /// The connections, each an async client whose pool holds one HTTP/2
    /// connection, with how many streams each carries.
    lanes: Mutex<Lanes>,
}

#[derive(Default)]
struct Lanes {
    open: Vec<Lane>,
    /// The id of the next lane opened.
    next_id: u64,
}

/// One connection of the hub and the streams on it.
struct Lane {
    id: u64,
    connection: Arc<Connection>,
    streams: usize,
}

/// An async client meant to hold one HTTP/2 connection, and whether it
/// holds one now.
struct Connection {
    /// Built by its first stream, on the hub's thread: building one (the
    /// TLS configuration) is slow enough, under valgrind, to eat a short
    /// lease if the document's opener waited for it.
    client: OnceLock<Option<reqwest::Client>>,
    /// [`COLD`], [`SHARED`] or [`SEPARATE`].
    state: AtomicU8,
    /// Held by the one stream opening while the state is [`COLD`].
    opening: tokio::sync::Mutex<()>,
}

/// No stream has come through lately: the next one may open a connection.
const COLD: u8 = 0;
/// The server chose HTTP/2: streams share the connection.
const SHARED: u8 = 1;
/// The server (or a proxy) chose HTTP/1.1: each stream opens its own.
const SEPARATE: u8 = 2;

impl Connection {
    /// A signed `GET path` on this connection. While it is cold, one
    /// stream opens at a time: requests sent together before ALPN has
    /// picked HTTP/2 would each open a connection (all but one closed at
    /// once or left idle in the pool), as when all of a session's streams
    /// reconnect after a break.
    async fn open(
        &self,
        transport: &Transport,
        path: &str,
        signer: &Signer<'_>,
    ) -> Result<reqwest::Response, ClientError> {
        let _alone = match self.state.load(Ordering::Acquire) {
            COLD => {
                let alone = self.opening.lock().await;
                // The stream before this one may have warmed it meanwhile.
                (self.state.load(Ordering::Acquire) == COLD).then_some(alone)
            }
            _ => None,
        };
        let Some(client) = self.client.get_or_init(|| transport.stream_client().ok()) else {
            // No client with the server's CA: no channel, the lease alone.
            return Err(ClientError::InvalidArgument(
                "the push channel cannot set up HTTPS with the key server's CA".into(),
            ));
        };
        let opened = transport.open_stream(client, path, signer).await;
        let state = match &opened {
            Ok(response) if response.version() == reqwest::Version::HTTP_2 => SHARED,
            Ok(_) => SEPARATE,
            Err(_) => COLD,
        };
        self.state.store(state, Ordering::Release);
        opened
    }

    /// A stream on it broke: the connection may be gone.
    fn lost(&self) {
        self.state.store(COLD, Ordering::Release);
    }
}

impl Hub {
    fn start() -> Result<Self, ClientError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ClientError::io("starting the push channel's runtime", e))?;
        let handle = runtime.handle().clone();
        let (shutdown, ended) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("irm-watch".into())
            .spawn(move || {
                // Runs the streams' tasks until the last `Watch` is gone;
                // dropping the runtime then drops the connections.
                let _ = runtime.block_on(ended);
            })
            .map_err(|e| ClientError::io("starting the push channel's thread", e))?;
        Ok(Self {
            runtime: handle,
            shutdown: Some(shutdown),
            thread_id: thread.thread().id(),
            thread: Some(thread),
            lanes: Mutex::default(),
        })
    }

    /// A connection with room for one more stream (PROTOCOL.md §13: at
    /// most [`WATCH_STREAMS_PER_CONNECTION`] on one), counted as taken
    /// until the returned [`Seat`] is dropped.
    fn seat(self: &Arc<Self>) -> Seat {
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        let index = match lanes
            .open
            .iter()
            .position(|lane| lane.streams < WATCH_STREAMS_PER_CONNECTION)
        {
            Some(index) => index,
            None => {
                let id = lanes.next_id;
                lanes.next_id += 1;
                lanes.open.push(Lane {
                    id,
                    connection: Arc::new(Connection {
                        client: OnceLock::new(),
                        state: AtomicU8::new(COLD),
                        opening: tokio::sync::Mutex::new(()),
                    }),
                    streams: 0,
                });
                lanes.open.len() - 1
            }
        };
        let lane = &mut lanes.open[index];
        lane.streams += 1;
        Seat {
            hub: Arc::clone(self),
            lane: lane.id,
            connection: Arc::clone(&lane.connection),
        }
    }

    fn on_own_thread(&self) -> bool {
        std::thread::current().id() == self.thread_id
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        drop(self.shutdown.take());
        if let Some(thread) = self.thread.take() {
            // The last `Watch` dropped by a signal handler, on the thread
            // itself, cannot wait for it; it ends once the handler returns.
            if !self.on_own_thread() {
                // A panic on the channel's thread only ends the channel.
                let _ = thread.join();
            }
        }
    }
}

/// A stream's place on one of the hub's connections.
struct Seat {
    hub: Arc<Hub>,
    lane: u64,
    connection: Arc<Connection>,
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut lanes = self
            .hub
            .lanes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(index) = lanes.open.iter().position(|lane| lane.id == self.lane) {
            lanes.open[index].streams -= 1;
            // An empty connection closes rather than idling at the server.
            if lanes.open[index].streams == 0 {
                lanes.open.swap_remove(index);
            }
        }
    }
}

/// The push channel of one open document; dropping it stops the stream
/// and waits for its task, which ends at once: nothing of it outlives the
/// document.
pub struct Watch {
    stop: Arc<Stop>,
    /// Disconnected once the stream's task has ended (in a mutex only so
    /// that a `Watch` can be shared between threads).
    ended: Mutex<mpsc::Receiver<()>>,
    hub: Arc<Hub>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("stopped", &self.stop.is_set())
            .finish()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.stopped.store(true, Ordering::Release);
        // A permit is kept if the task is not waiting at this moment.
        self.stop.wake.notify_one();
        // Dropped by a signal handler, on the hub's thread: the task ends
        // as soon as the handler returns, and waiting would never end.
        if !self.hub.on_own_thread() {
            // Returns once the task's end drops its sender.
            let ended = self.ended.lock().unwrap_or_else(PoisonError::into_inner);
            let _ = ended.recv();
        }
    }
}

/// What a stream's task owns: its own handle on the server's transport and
/// a copy of the signing key (wiped on drop), so it outlives no borrow.
pub(crate) struct Watcher {
    pub(crate) transport: Transport,
    pub(crate) device_id: String,
    pub(crate) signing: SigningSecretKey,
    pub(crate) file: String,
    pub(crate) cursor: Option<String>,
}

/// How a stream ended.
enum Ended {
    /// The holder dropped the [`Watch`].
    Stopped,
    /// It broke, ended, went silent or sent a line too long.
    Lost,
}

impl Watcher {
    /// Starts the document's stream on the session's hub (started by the
    /// first of its documents); `on_signal` is called on the hub's thread,
    /// which all the session's open documents share, so it must return
    /// quickly (send a message, set a flag) and must not block on a call.
    pub(crate) fn start(
        self,
        hubs: &HubSlot,
        on_signal: impl Fn(WatchSignal) + Send + 'static,
    ) -> Result<Watch, ClientError> {
        let hub = hubs.get()?;
        let seat = hub.seat();
        let stop = Arc::new(Stop::default());
        let task_stop = Arc::clone(&stop);
        let (finished, ended) = mpsc::channel::<()>();
        // The task may run on any thread of the runtime, so what it
        // borrows must be `Sync`; the holder's handler need only be `Send`.
        let on_signal = Mutex::new(on_signal);
        let on_signal =
            move |what| (on_signal.lock().unwrap_or_else(PoisonError::into_inner))(what);
        hub.runtime.spawn(async move {
            // Dropped when the task ends or the runtime drops it, after
            // everything below (locals drop in reverse order), so that the
            // holder's handler is gone once `Watch::drop` returns.
            let _finished = finished;
            let (on_signal, seat) = (on_signal, seat);
            self.run(&seat.connection, &task_stop, &on_signal).await;
        });
        Ok(Watch {
            stop,
            ended: Mutex::new(ended),
            hub,
        })
    }

    async fn run(
        mut self,
        connection: &Connection,
        stop: &Stop,
        on_signal: &(dyn Fn(WatchSignal) + Sync),
    ) {
        let signal = |what| {
            if !stop.is_set() {
                on_signal(what);
            }
        };
        let mut retry = FIRST_RETRY;
        while !stop.is_set() {
            let query = WatchQuery {
                file: Some(self.file.clone()),
                after: self.cursor.clone(),
            };
            let signer = Signer {
                device_id: &self.device_id,
                signing: &self.signing,
            };
            let path = format!("/v1/watch?{}", query.to_query());
            let opened = tokio::select! {
                () = stop.wait() => return,
                opened = connection.open(&self.transport, &path, &signer) => opened,
            };
            match opened {
                Ok(response) => {
                    retry = FIRST_RETRY;
                    match follow(response, &mut self.cursor, stop, &signal).await {
                        Ended::Stopped => return,
                        Ended::Lost => {
                            connection.lost();
                            signal(WatchSignal::Lost);
                        }
                    }
                }
                // A server without the channel, or no client for it: the
                // lease alone, as before.
                Err(ClientError::Http { status: 404, .. } | ClientError::InvalidArgument(_)) => {
                    return;
                }
                Err(ClientError::Http { status: 503, .. }) => retry = retry.max(FULL_RETRY),
                // The person or device is refused: the renewal this asks
                // for will say so and close the document.
                Err(ClientError::Denied(..)) => {
                    signal(WatchSignal::Lost);
                    return;
                }
                Err(_) => {}
            }
            tokio::select! {
                () = stop.wait() => return,
                () = tokio::time::sleep(retry) => {}
            }
            retry = (retry * 2).min(MAX_RETRY);
        }
    }
}

/// Reads events until the stream ends, breaks or is silent for
/// [`SILENCE`], or the holder stops the channel.
async fn follow(
    mut response: reqwest::Response,
    cursor: &mut Option<String>,
    stop: &Stop,
    signal: &(dyn Fn(WatchSignal) + Sync),
) -> Ended {
    let mut events = Events::default();
    loop {
        let chunk = tokio::select! {
            () = stop.wait() => return Ended::Stopped,
            chunk = tokio::time::timeout(SILENCE, response.chunk()) => chunk,
        };
        match chunk {
            Ok(Ok(Some(bytes))) => {
                if events.feed(&bytes, cursor, signal).is_err() {
                    return Ended::Lost;
                }
            }
            // Silent too long, broken, or ended.
            Err(_) | Ok(Err(_) | Ok(None)) => return Ended::Lost,
        }
    }
}

/// A line longer than [`MAX_LINE`].
#[derive(Debug)]
struct TooLong;

/// The server-sent events parser: lines in, events out.
#[derive(Default)]
struct Events {
    line: Vec<u8>,
    event: String,
    data: String,
}

impl Events {
    /// Takes the next bytes of the stream; each complete event moves the
    /// cursor or raises a signal.
    fn feed(
        &mut self,
        bytes: &[u8],
        cursor: &mut Option<String>,
        signal: &dyn Fn(WatchSignal),
    ) -> Result<(), TooLong> {
        for piece in bytes.split_inclusive(|&b| b == b'\n') {
            self.line.extend_from_slice(piece);
            if self.line.len() > MAX_LINE {
                return Err(TooLong);
            }
            if self.line.ends_with(b"\n") {
                let line = std::mem::take(&mut self.line);
                self.line_done(&line, cursor, signal);
            }
        }
        Ok(())
    }

    fn line_done(
        &mut self,
        line: &[u8],
        cursor: &mut Option<String>,
        signal: &dyn Fn(WatchSignal),
    ) {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches(['\n', '\r']);
        if text.is_empty() {
            dispatch(&self.event, &self.data, cursor, signal);
            self.event.clear();
            self.data.clear();
        } else if let Some(value) = field(text, "event") {
            value.clone_into(&mut self.event);
        } else if let Some(value) = field(text, "data") {
            if !self.data.is_empty() {
                self.data.push('\n');
            }
            self.data.push_str(value);
        }
        // Comments (`:heartbeat`) and unknown fields only prove the stream
        // is alive.
    }
}

fn dispatch(event: &str, data: &str, cursor: &mut Option<String>, signal: &dyn Fn(WatchSignal)) {
    match event {
        "ready" => {
            if let Ok(ready) = serde_json::from_str::<WatchReady>(data) {
                *cursor = Some(ready.cursor);
            }
        }
        "recheck" => {
            // A recheck that does not parse is still a reason to check.
            let subject = match serde_json::from_str::<WatchRecheck>(data) {
                Ok(recheck) => {
                    *cursor = Some(recheck.cursor);
                    recheck.subject
                }
                Err(_) => WatchSubject::Unknown,
            };
            signal(WatchSignal::Recheck(subject));
        }
        // Events of a later version are not ours to act on.
        _ => {}
    }
}

/// The value of `name: value` (one optional space after the colon).
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let value = line.strip_prefix(name)?.strip_prefix(':')?;
    Some(value.strip_prefix(' ').unwrap_or(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Feeds `pieces` as the stream's chunks; the signals, the cursor, and
    /// whether a line was too long.
    fn read(pieces: &[&[u8]]) -> (Vec<WatchSignal>, Option<String>, bool) {
        let seen = Mutex::new(Vec::new());
        let mut cursor = None;
        let mut events = Events::default();
        let mut too_long = false;
        for piece in pieces {
            if events
                .feed(piece, &mut cursor, &|s| seen.lock().unwrap().push(s))
                .is_err()
            {
                too_long = true;
                break;
            }
        }
        (seen.into_inner().unwrap(), cursor, too_long)
    }

    #[test]
    fn events_become_signals_and_move_the_cursor() {
        let (signals, cursor, too_long) = read(&[
            b"event: ready\ndata: {\"cursor\":\"e.1\",\"heartbeat_secs\":5}\n\n\
             :heartbeat\n\n\
             event: recheck\ndata: {\"cursor\":\"e.2\",\"subject\":\"file\"}\n\n\
             event: later-version\ndata: {}\n\n\
             event: recheck\ndata: not json\n\n",
        ]);
        assert_eq!(
            signals,
            [
                WatchSignal::Recheck(WatchSubject::File),
                WatchSignal::Recheck(WatchSubject::Unknown)
            ]
        );
        assert_eq!(cursor.as_deref(), Some("e.2"));
        assert!(!too_long);
    }

    #[test]
    fn an_event_split_across_chunks_anywhere_is_read_whole() {
        let (signals, cursor, _) = read(&[
            b"event: rech",
            b"eck\r\ndata: {\"cursor\":\"e.5\",",
            b"\"subject\":\"user\"}\r\n",
            b"\r\n",
        ]);
        assert_eq!(signals, [WatchSignal::Recheck(WatchSubject::User)]);
        assert_eq!(cursor.as_deref(), Some("e.5"));
        // Cut before its blank line: nothing yet.
        let (signals, cursor, _) = read(&[b"event: recheck\ndata: {}\n"]);
        assert!(signals.is_empty() && cursor.is_none());
    }

    #[test]
    fn an_over_long_line_breaks_the_stream_without_a_signal() {
        let long = vec![b'x'; MAX_LINE + 1];
        let (signals, _, too_long) = read(&[b"data: ", &long]);
        assert!(signals.is_empty() && too_long);
    }
}
