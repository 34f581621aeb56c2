//! Where a signed audit checkpoint goes once it is written (PROTOCOL.md
//! §9.2): it becomes the one every grant carries, so that each enrolled
//! device witnesses it, and a copy goes to the off-host sink (a directory
//! mounted from another machine, append-only there), whose silence is
//! measured so that the server can warn when nothing leaves the host.
//!
//! Why both: whoever holds the server's host can truncate the chain and the
//! local checkpoint file together and rebuild them; a checkpoint kept
//! elsewhere (by the sink, or by a device that saw it) then shows the
//! rebuilt chain falls short of what the server once signed.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use irm_core::protocol::AuditCheckpoint;

use crate::audit::append_checkpoint;

/// The file the sink appends to, in the sink's directory.
pub const SINK_FILE: &str = "audit-checkpoints.jsonl";

/// The default time a checkpoint may wait for the sink before the server
/// warns (`/healthz`, the log, `irm_audit_sink_unconfirmed_seconds`).
pub const DEFAULT_SINK_ALERT_AFTER: Duration = Duration::from_secs(600);

/// The off-host sink's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkSettings {
    /// The directory, mounted from another machine.
    pub dir: PathBuf,
    /// How long a checkpoint may stay unconfirmed before the server warns.
    pub alert_after: Duration,
}

impl SinkSettings {
    /// The file checkpoints are appended to.
    pub fn file(&self) -> PathBuf {
        self.dir.join(SINK_FILE)
    }

    /// Refuses a sink that is not there at start: a share that is not
    /// mounted would otherwise fill a local directory of the same name.
    pub fn check(&self) -> Result<(), String> {
        if self.dir.is_dir() {
            Ok(())
        } else {
            Err(format!(
                "the checkpoint sink {} is not a directory: mount the share from the other \
                 machine there, or leave --checkpoint-sink out",
                self.dir.display()
            ))
        }
    }
}

/// What the sink has confirmed, for `/healthz` and the metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkHealth {
    /// No sink is configured: checkpoints stay on this host.
    NotConfigured,
    /// Every checkpoint written so far reached the sink.
    Confirmed,
    /// The newest checkpoint has not reached the sink for `secs` seconds.
    Waiting {
        /// The sink's directory.
        dir: PathBuf,
        /// How long the oldest unconfirmed checkpoint has waited.
        secs: u64,
        /// Whether that is past the configured limit.
        overdue: bool,
        /// The sink's last error, if writing failed.
        error: Option<String>,
    },
}

impl SinkHealth {
    /// A line for `/healthz` and the log when something is wrong, saying
    /// what to check.
    pub fn warning(&self) -> Option<String> {
        match self {
            Self::Waiting {
                dir,
                secs,
                overdue: true,
                error,
            } => Some(format!(
                "warning: the off-host checkpoint sink {} has confirmed no checkpoint for {secs} s{}; \
                 check that the share is mounted and writable (the server retries every checkpoint interval)",
                dir.display(),
                error
                    .as_ref()
                    .map_or_else(String::new, |e| format!(" (last error: {e})"))
            )),
            _ => None,
        }
    }

    /// Seconds the sink has left a checkpoint unconfirmed (0 when none waits).
    pub fn unconfirmed_secs(&self) -> u64 {
        match self {
            Self::Waiting { secs, .. } => *secs,
            _ => 0,
        }
    }
}

#[derive(Debug, Default)]
struct SinkState {
    /// The count of the newest checkpoint the sink holds.
    confirmed: u64,
    /// When the oldest checkpoint the sink does not hold yet was written.
    waiting_since_ms: Option<u64>,
    last_error: Option<String>,
}

/// The newest checkpoint and the sink's progress. Shared by every handler.
#[derive(Debug)]
pub struct Published {
    latest: RwLock<Option<AuditCheckpoint>>,
    sink: Option<(SinkSettings, Mutex<SinkState>)>,
}

impl Published {
    /// Nothing published yet; `sink` where copies go.
    pub fn new(sink: Option<SinkSettings>) -> Self {
        Self {
            latest: RwLock::new(None),
            sink: sink.map(|s| (s, Mutex::new(SinkState::default()))),
        }
    }

    /// The newest checkpoint, for grant answers.
    pub fn latest(&self) -> Option<AuditCheckpoint> {
        self.latest.read().map_or(None, |l| l.clone())
    }

    /// The count of the newest checkpoint (0 before the first).
    pub fn latest_count(&self) -> u64 {
        self.latest
            .read()
            .map_or(0, |l| l.as_ref().map_or(0, |c| c.count))
    }

    /// The sink's directory, if one is configured.
    pub fn sink_dir(&self) -> Option<&Path> {
        self.sink.as_ref().map(|(s, _)| s.dir.as_path())
    }

    /// A checkpoint was just appended to the local file: grants carry it
    /// from now on, and it is copied to the sink. A sink that fails is
    /// logged and retried at the next tick ([`Published::retry_sink`]).
    pub fn publish(&self, checkpoint: AuditCheckpoint, now_ms: u64) {
        if let Ok(mut latest) = self.latest.write() {
            *latest = Some(checkpoint.clone());
        }
        self.ship(&checkpoint, now_ms);
    }

    /// Ships the newest checkpoint again if the sink does not hold it yet.
    pub fn retry_sink(&self, now_ms: u64) {
        if let Some(latest) = self.latest() {
            self.ship(&latest, now_ms);
        }
    }

    fn ship(&self, checkpoint: &AuditCheckpoint, now_ms: u64) {
        let Some((settings, state)) = &self.sink else {
            return;
        };
        let Ok(mut state) = state.lock() else {
            return;
        };
        if state.confirmed >= checkpoint.count {
            return;
        }
        state.waiting_since_ms.get_or_insert(now_ms);
        match append_checkpoint(&settings.file(), checkpoint) {
            Ok(()) => {
                state.confirmed = checkpoint.count;
                state.waiting_since_ms = None;
                state.last_error = None;
            }
            Err(e) => {
                tracing::error!(sink = %settings.dir.display(), error = %e, count = checkpoint.count,
                    "the off-host checkpoint sink did not take the checkpoint; retrying at the next tick");
                state.last_error = Some(e.to_string());
            }
        }
    }

    /// What the sink has confirmed, at `now_ms`.
    pub fn sink_health(&self, now_ms: u64) -> SinkHealth {
        let Some((settings, state)) = &self.sink else {
            return SinkHealth::NotConfigured;
        };
        let Ok(state) = state.lock() else {
            return SinkHealth::NotConfigured;
        };
        match state.waiting_since_ms {
            None => SinkHealth::Confirmed,
            Some(since) => {
                let secs = now_ms.saturating_sub(since) / 1000;
                SinkHealth::Waiting {
                    dir: settings.dir.clone(),
                    secs,
                    overdue: secs >= settings.alert_after.as_secs(),
                    error: state.last_error.clone(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(count: u64) -> AuditCheckpoint {
        AuditCheckpoint {
            count,
            head_hash: "00".repeat(32),
            at_ms: count,
            signing_key: String::new(),
            signature: String::new(),
        }
    }

    #[test]
    fn a_sink_that_fails_is_waited_for_then_overdue_then_caught_up() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("share");
        let published = Published::new(Some(SinkSettings {
            dir: dir.clone(),
            alert_after: Duration::from_secs(60),
        }));
        assert_eq!(published.sink_health(0), SinkHealth::Confirmed);

        // The share is not mounted: nothing confirmed, but not overdue yet.
        published.publish(checkpoint(3), 1_000);
        assert_eq!(published.latest_count(), 3);
        let health = published.sink_health(30_000);
        assert!(
            matches!(
                health,
                SinkHealth::Waiting {
                    secs: 29,
                    overdue: false,
                    error: Some(_),
                    ..
                }
            ),
            "{health:?}"
        );
        assert_eq!(health.warning(), None);
        // A newer checkpoint does not restart the clock: the wait is the oldest one's.
        published.publish(checkpoint(5), 40_000);
        let health = published.sink_health(61_000);
        assert!(matches!(
            health,
            SinkHealth::Waiting {
                secs: 60,
                overdue: true,
                ..
            }
        ));
        let warning = health.warning().unwrap();
        assert!(
            warning.contains("for 60 s") && warning.contains("last error"),
            "{warning}"
        );

        // Mounted again: the retry ships the newest, which covers the rest.
        std::fs::create_dir(&dir).unwrap();
        published.retry_sink(62_000);
        assert_eq!(published.sink_health(62_000), SinkHealth::Confirmed);
        let kept = std::fs::read_to_string(dir.join(SINK_FILE)).unwrap();
        assert_eq!(kept.lines().count(), 1);
        assert!(kept.contains("\"count\":5"), "{kept}");
        // Already held: not appended twice.
        published.retry_sink(63_000);
        let again = std::fs::read_to_string(dir.join(SINK_FILE)).unwrap();
        assert_eq!(again, kept);
    }

    #[test]
    fn without_a_sink_nothing_waits() {
        let published = Published::new(None);
        published.publish(checkpoint(1), 0);
        assert_eq!(published.sink_health(u64::MAX), SinkHealth::NotConfigured);
        assert_eq!(published.latest().map(|c| c.count), Some(1));
    }
}
