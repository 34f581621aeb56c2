//! `irm-key-server`: the key server of the IRM system (docs/PROTOCOL.md).
//!
//! Sealed files stay useless without a live, per-person, audited grant from
//! this server, which administrators can revoke. The library holds the whole
//! service so that tests and the load generator run it in-process:
//! [`router`] builds the HTTP application, [`serve`] runs it over TLS until a
//! shutdown signal, and [`AppState`] ties storage, keys and clock together.
//!
//! Module map: `grant` (the header's facts and the pure grant decision),
//! `store` (SQLite, or PostgreSQL chosen by `--database-url`, behind the
//! `Store` trait; the operations, the rows and the group commit written
//! once), `audit` (drafting records, signing checkpoints; verification is
//! irm-core's), `checkpoints` (the newest one for grants, the off-host
//! sink), `auth` (request signatures, the replay and device caches),
//! `api` (routes with their OpenAPI description, handlers), `datadir`
//! (layout, initialisation), `secret_file`, `tls`, `connections` (hyper's settings per connection), `config`, `clock`,
//! `codes` (enrollment codes), `metrics`, `alerts` (the webhook), `peers`
//! (the hourly peer-group check). docs/ARCHITECTURE.md draws the
//! whole.
#![forbid(unsafe_code)]

pub mod alerts;
pub mod api;
pub mod audit;
pub mod auth;
pub mod canary;
pub mod checkpoints;
pub mod clock;
pub mod codes;
pub mod config;
pub mod connections;
pub mod datadir;
pub mod detect;
pub mod error;
pub mod grant;
pub mod metrics;
pub mod peers;
pub mod push;
pub mod recipients;
pub mod secret_file;
pub mod state;
pub mod store;
pub mod tls;
pub mod vault;

use std::future::Future;
use std::sync::atomic::Ordering;

pub use api::router;
pub use state::{AppState, Settings};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Runs the key server on `listener` (TLS with `state.tls`) until `shutdown`
/// completes; then stops accepting, lets open requests finish for at most
/// the shutdown timeout, writes a final audit checkpoint and stops the
/// database writer. Periodic checkpoints run meanwhile.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    state.port.store(local.port(), Ordering::Relaxed);
    let tls_listener = tls::TlsListener::new(listener, state.tls.clone())?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let watchers = std::sync::Arc::clone(&state.watchers);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
        // Push-channel streams never end by themselves (PROTOCOL.md §13).
        watchers.close();
    });

    // A checkpoint of the chain as found, before the first request: the
    // chain is never without one while the server runs (PROTOCOL.md §9).
    checkpoint_if_grown(&state, "at start").await;
    if let Some(warning) = state.seal_warning() {
        tracing::warn!("{warning}");
    }
    if state.published.sink_dir().is_none() {
        tracing::warn!(
            "audit checkpoints are kept on this host only (no --checkpoint-sink): whoever holds \
             the host can cut back the log and its checkpoints together, caught then only by a \
             device that saw a newer checkpoint"
        );
    }
    let checkpoints = tokio::spawn(checkpoint_loop(state.clone(), stop_rx.clone()));
    // The `peers` rule looks at weeks of history: hourly, off the grant path.
    let peer_checks = tokio::spawn(peers::peer_loop(state.clone(), stop_rx.clone()));
    // Alerts to the webhook, if one is configured (PROTOCOL.md §12.1): woken
    // by the writer after a commit, never in a grant's way.
    let alerts = state.settings.alerts.clone().map(|settings| {
        let deliverer = alerts::Deliverer {
            store: std::sync::Arc::clone(&state.store),
            clock: std::sync::Arc::clone(&state.clock),
            server: state.public_url(),
        };
        tokio::spawn(alerts::delivery_loop(deliverer, settings, stop_rx.clone()))
    });

    tracing::info!(%local, "irm-key-server listening (HTTPS)");
    let server =
        connections::serve_connections(tls_listener, router(state.clone()), stop_rx.clone());
    let grace = state.settings.shutdown_timeout;
    let mut stop = stop_rx.clone();
    let deadline = async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        () = server => {}
        () = deadline => tracing::warn!("shutdown timeout: closing connections still open"),
    }
    let _ = checkpoints.await;
    let _ = peer_checks.await;
    if let Some(alerts) = alerts {
        let _ = alerts.await;
    }

    checkpoint_if_grown(&state, "at shutdown").await;
    tracing::info!("irm-key-server stopped");
    Ok(())
}

/// Writes a checkpoint every interval while the chain grows, until stopped.
async fn checkpoint_loop(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(state.settings.checkpoint_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        checkpoint_if_grown(&state, "periodic").await;
        watch_sink(&state);
    }
}

/// Reports a sink that has left checkpoints unconfirmed for too long: in
/// the log at every tick, and in the metrics for alerting.
fn watch_sink(state: &AppState) {
    let health = state.published.sink_health(state.clock.now_ms());
    state.metrics.sink_unconfirmed(health.unconfirmed_secs());
    if let Some(warning) = health.warning() {
        tracing::warn!("{warning}");
    }
}

/// Writes a checkpoint if the chain grew since the last one, off the async
/// threads; a failure is logged (`when` says which) and serving goes on.
async fn checkpoint_if_grown(state: &AppState, when: &'static str) {
    let app = state.clone();
    match tokio::task::spawn_blocking(move || app.write_checkpoint(true)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(error = %e, when, "audit checkpoint failed"),
        Err(e) => tracing::error!(error = %e, when, "audit checkpoint task failed"),
    }
}
