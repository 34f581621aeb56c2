//! The `peers` rule (PROTOCOL.md §12), checked off the grant path: every
//! hour, each active person's distinct files and rows taken over the
//! rule's window and three times it, against the other members of their
//! groups ([`crate::detect::peer_outliers`]); a person who stands out is an
//! alert (or the rule's action), at most once per window.

use std::time::Duration;

use tokio::sync::watch;

use crate::error::StoreError;
use crate::state::AppState;

/// How often the check runs while the server serves.
pub const PEER_CHECK_INTERVAL: Duration = Duration::from_secs(3600);

/// Runs the check once (when the server serves and the rule is on); how
/// many firings it recorded.
pub async fn check_peers(state: &AppState) -> Result<usize, StoreError> {
    let app = state.clone();
    tokio::task::spawn_blocking(move || check_now(&app))
        .await
        .map_err(|e| StoreError::Corrupt(format!("the peer check stopped: {e}")))?
}

fn check_now(state: &AppState) -> Result<usize, StoreError> {
    if !state.is_serving() {
        return Ok(0);
    }
    let Some(rule) = state.store.detection_rules()?.peers else {
        return Ok(0);
    };
    let now_ms = state.clock.now_ms();
    // The rule's window, then three times it: the shorter speaks first.
    let windows_secs = [rule.window_secs, rule.window_secs.saturating_mul(3)];
    let since_ms = windows_secs
        .iter()
        .map(|w| now_ms.saturating_sub(w.saturating_mul(1000)))
        .collect();
    let inputs = state.store.peer_inputs(since_ms)?;
    let mut firings = Vec::new();
    for (window_secs, totals) in windows_secs.iter().zip(&inputs.totals) {
        let days = window_secs / 86_400;
        for (user, detail) in crate::detect::peer_outliers(&inputs.people, totals, rule.limit, days)
        {
            // One firing per person a run.
            if !firings.iter().any(|(u, _)| *u == user) {
                firings.push((user, detail));
            }
        }
    }
    let quiet_ms = rule.window_secs.saturating_mul(1000);
    state
        .store
        .record_peer_firings(firings, rule.action, quiet_ms, now_ms)
}

/// The hourly check, until `stop`.
pub(crate) async fn peer_loop(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(PEER_CHECK_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate: the server just started
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        match check_peers(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(firings = n, "peer check: people who stand out"),
            Err(e) => tracing::error!(error = %e, "peer check failed"),
        }
    }
}
