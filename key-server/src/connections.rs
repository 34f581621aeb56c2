//! Serving HTTP on accepted TLS streams: one hyper connection per stream,
//! with the buffer limits and timers the key server needs, the client's
//! address handed to handlers, and graceful shutdown.
//!
//! This is `axum::serve` written out, because `axum::serve` fixes hyper's
//! settings: its HTTP/1 read buffer grows to 16 KiB per connection (most of
//! an idle push-channel stream's cost, docs/PERFORMANCE.md §5) and it sets
//! no timer, so hyper's header-read timeout is silently off.

use std::future::Future;
use std::pin::{Pin, pin};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::sync::watch;
use tower_service::Service as _;

use crate::tls::{PeerAddr, TlsListener};

/// How long a client may take to send a request's headers, counted from
/// when the server starts waiting for them: also how long an idle HTTP/1.1
/// keep-alive connection stays open.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// hyper's smallest HTTP/1 buffer: a request line and headers larger than
/// this are refused (431), which no client of ours comes near; the bodies
/// stream through it.
const HTTP1_MAX_BUF: usize = 8192;

/// The most streams one HTTP/2 connection may have open at once
/// (`SETTINGS_MAX_CONCURRENT_STREAMS`), set here rather than left to
/// hyper's default (200), which could change under us. A device's open
/// documents share one connection for their push-channel streams
/// (PROTOCOL.md §13), so this is how many documents one connection can
/// watch; a client keeps to [`WATCH_STREAMS_PER_CONNECTION`] (100, the
/// least RFC 9113 §6.5.2 lets any server advertise) and opens another
/// connection beyond it, so this only bounds what one connection can make
/// the server hold, well above what our clients ask. Every stream still
/// counts against `--max-watchers`.
///
/// [`WATCH_STREAMS_PER_CONNECTION`]: irm_core::protocol::WATCH_STREAMS_PER_CONNECTION
pub const HTTP2_MAX_CONCURRENT_STREAMS: u32 = 1000;

/// Serves `app` on every stream `listener` yields until `stop` turns true;
/// then stops accepting, asks each connection to finish its request in
/// flight and close, and returns once all have.
pub async fn serve_connections(
    mut listener: TlsListener,
    app: Router,
    mut stop: watch::Receiver<bool>,
) {
    let (http1, http2) = builders();
    // Each connection task holds a receiver; `closed` resolves once all are gone.
    let (closing_tx, closing_rx) = watch::channel(false);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Some(pair) => pair,
                None => break,
            },
            _ = stop.wait_for(|stopped| *stopped) => break,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(PeerAddr(peer)));
            // The router is always ready and never fails (its error is `Infallible`).
            app.clone().call(request.map(Body::new))
        });
        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
        let io = TokioIo::new(stream);
        let closing = closing_rx.clone();
        if h2 {
            let connection = http2.serve_connection(io, service);
            tokio::spawn(drive(connection, closing, peer, |c| c.graceful_shutdown()));
        } else {
            let connection = http1.serve_connection(io, service);
            tokio::spawn(drive(connection, closing, peer, |c| c.graceful_shutdown()));
        }
    }
    drop(listener);
    drop(closing_rx);
    let _ = closing_tx.send(true);
    closing_tx.closed().await;
}

/// Runs one connection to its end; once the server is closing, asks it
/// (once) to finish the request in flight and close.
async fn drive<C>(
    connection: C,
    mut closing: watch::Receiver<bool>,
    peer: std::net::SocketAddr,
    graceful_shutdown: impl FnOnce(Pin<&mut C>),
) where
    C: Future<Output = Result<(), hyper::Error>>,
{
    let mut connection = pin!(connection);
    let mut graceful_shutdown = Some(graceful_shutdown);
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = closing.wait_for(|closing| *closing), if graceful_shutdown.is_some() => {
                if let Some(shut) = graceful_shutdown.take() {
                    shut(connection.as_mut());
                }
            }
        }
    }
}

/// The builders: HTTP/2 when the client chose it by ALPN, HTTP/1.1
/// otherwise (RFC 9113 §3.2: over TLS, HTTP/2 is only ever negotiated),
/// each with the limits above. One protocol per connection keeps its task
/// small: hyper's auto-detecting connection holds both.
fn builders() -> (http1::Builder, http2::Builder<TokioExecutor>) {
    let mut http1 = http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(HTTP1_MAX_BUF);
    let mut http2 = http2::Builder::new(TokioExecutor::new());
    http2
        .timer(TokioTimer::new())
        .max_concurrent_streams(HTTP2_MAX_CONCURRENT_STREAMS);
    (http1, http2)
}
