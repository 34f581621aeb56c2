//! What `GET /metrics` reports (PROTOCOL.md §10): the counters, gauge and
//! histograms, kept in a `prometheus-client` registry and rendered in its
//! Prometheus text format. Every handle is created once, at start, so
//! recording a grant or a denial is one atomic add and never a label lookup.
//! What to count is decided by the callers; this module only keeps the
//! numbers.

use std::fmt;
use std::time::Duration;

use irm_core::protocol::DenyReason;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram;
use prometheus_client::registry::Registry;

/// Bucket upper bounds in seconds, from 50 µs (a cached fsync) to 2.5 s.
const BOUNDS_SECS: [f64; 14] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5,
];

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// One label, such as `kind="grant"` or `reason="file_revoked"`.
type Label = [(&'static str, &'static str); 1];

/// A latency histogram in seconds.
#[derive(Debug, Clone)]
pub struct Histogram(histogram::Histogram);

impl Histogram {
    fn new() -> Self {
        Self(histogram::Histogram::new(BOUNDS_SECS))
    }

    /// Records one observation.
    pub fn observe(&self, elapsed: Duration) {
        self.0.observe(elapsed.as_secs_f64());
    }
}

/// Everything `/metrics` reports.
pub struct Metrics {
    registry: Registry,
    grants: Counter,
    renewals: Counter,
    /// One counter per reason, in [`DenyReason::ALL`]'s order.
    denials: Vec<Counter>,
    audit_records: Gauge,
    sink_unconfirmed: Gauge,
    sealed: Gauge,
    break_glass_uses: Counter,
    commit_jobs: Counter,
    /// Commit (fsync) latency of the audit writer's group commits.
    pub fsync: Histogram,
    /// Request latency, every route.
    pub requests: Histogram,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("grants", &self.grants.get())
            .finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let grants = Family::<Label, Counter>::default();
        registry.register("irm_grants", "Grants issued, by kind.", grants.clone());
        let denials = Family::<Label, Counter>::default();
        registry.register("irm_denials", "Refusals, by reason.", denials.clone());
        let audit_records = Gauge::default();
        registry.register(
            "irm_audit_records",
            "Length of the audit chain.",
            audit_records.clone(),
        );
        let sink_unconfirmed = Gauge::default();
        registry.register(
            "irm_audit_sink_unconfirmed_seconds",
            "How long the newest audit checkpoint has waited for the off-host sink (0: confirmed).",
            sink_unconfirmed.clone(),
        );
        let sealed = Gauge::default();
        registry.register(
            "irm_sealed",
            "1 while the server's keys are sealed (every request but unsealing refused), else 0.",
            sealed.clone(),
        );
        let break_glass_uses = Counter::default();
        registry.register(
            "irm_break_glass_uses",
            "Requests approved with the break-glass code (alert on any increase).",
            break_glass_uses.clone(),
        );
        let commit_jobs = Counter::default();
        registry.register(
            "irm_audit_commit_jobs",
            "Jobs written by the audit writer's group commits.",
            commit_jobs.clone(),
        );
        let fsync = Histogram::new();
        registry.register(
            "irm_fsync_seconds",
            "Latency of each group commit (one durable flush of the database).",
            fsync.0.clone(),
        );
        let requests = Histogram::new();
        registry.register(
            "irm_request_seconds",
            "Latency of each HTTP request, TLS excluded.",
            requests.0.clone(),
        );
        // Handles share the family's counters, so every label is listed
        // (at 0) from the start and recording needs no lookup.
        let counter =
            |family: &Family<Label, Counter>, label: Label| family.get_or_create(&label).clone();
        Self {
            grants: counter(&grants, [("kind", "grant")]),
            renewals: counter(&grants, [("kind", "renew")]),
            denials: DenyReason::ALL
                .iter()
                .map(|reason| counter(&denials, [("reason", reason.as_str())]))
                .collect(),
            registry,
            audit_records,
            sink_unconfirmed,
            sealed,
            break_glass_uses,
            commit_jobs,
            fsync,
            requests,
        }
    }
}

impl Metrics {
    /// A grant (or renewal) was issued.
    pub fn grant(&self, renew: bool) {
        if renew {
            self.renewals.inc();
        } else {
            self.grants.inc();
        }
    }

    /// Whether the keys are sealed.
    pub fn sealed(&self, sealed: bool) {
        self.sealed.set(i64::from(sealed));
    }

    /// The break-glass code approved a request.
    pub fn break_glass_used(&self) {
        self.break_glass_uses.inc();
    }

    /// A request was refused with `reason`.
    pub fn denial(&self, reason: DenyReason) {
        if let Some(i) = DenyReason::ALL.iter().position(|r| *r == reason) {
            self.denials[i].inc();
        }
    }

    /// The audit chain now holds `len` records.
    pub fn audit_len(&self, len: u64) {
        self.audit_records
            .set(i64::try_from(len).unwrap_or(i64::MAX));
    }

    /// The newest checkpoint has waited `secs` for the off-host sink.
    pub fn sink_unconfirmed(&self, secs: u64) {
        self.sink_unconfirmed
            .set(i64::try_from(secs).unwrap_or(i64::MAX));
    }

    /// A group commit wrote `jobs` jobs.
    pub fn batch(&self, jobs: u64) {
        self.commit_jobs.inc_by(jobs);
    }

    /// Grants issued so far (renewals not included).
    pub fn grants(&self) -> u64 {
        self.grants.get()
    }

    /// The Prometheus text exposition ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_every_counter_with_its_labels() {
        let metrics = Metrics::default();
        metrics.grant(false);
        metrics.grant(true);
        metrics.grant(true);
        metrics.denial(DenyReason::FileRevoked);
        metrics.audit_len(7);
        metrics.batch(3);
        metrics.fsync.observe(Duration::from_micros(300));
        let text = metrics.render();
        for line in [
            "irm_grants_total{kind=\"grant\"} 1",
            "irm_grants_total{kind=\"renew\"} 2",
            "irm_denials_total{reason=\"file_revoked\"} 1",
            "irm_denials_total{reason=\"key_unknown\"} 0",
            "irm_audit_records 7",
            "irm_audit_commit_jobs_total 3",
            "irm_fsync_seconds_count 1",
            "irm_request_seconds_count 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        // The 300 µs commit falls in the 500 µs bucket and above, not below.
        let bucket = |le: &str| {
            text.lines()
                .find(|l| l.starts_with(&format!("irm_fsync_seconds_bucket{{le=\"{le}")))
                .and_then(|l| l.rsplit(' ').next())
                .map(str::to_owned)
        };
        assert_eq!(bucket("0.00025").as_deref(), Some("0"), "{text}");
        assert_eq!(bucket("0.0005").as_deref(), Some("1"), "{text}");
        assert_eq!(metrics.grants(), 1);
    }
}
