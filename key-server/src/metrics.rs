//! Counters and histograms for `GET /metrics` (PROTOCOL.md §10), rendered
//! by hand in the Prometheus text exposition format. Lock-free atomics, so
//! recording costs nothing on the grant path. What to count is decided by
//! the callers; this module only keeps and prints the numbers.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use irm_core::protocol::DenyReason;

/// Bucket upper bounds in seconds, from 50 µs (a cached fsync) to 2.5 s.
const BOUNDS_SECS: [f64; 14] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5,
];

/// A fixed-bucket latency histogram.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BOUNDS_SECS.len()],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        if let Some(i) = BOUNDS_SECS.iter().position(|&b| secs <= b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, bucket) in BOUNDS_SECS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count();
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// Everything `/metrics` reports.
#[derive(Debug, Default)]
pub struct Metrics {
    grants: AtomicU64,
    renewals: AtomicU64,
    denials: [AtomicU64; DenyReason::ALL.len()],
    audit_records: AtomicU64,
    /// Commit (fsync) latency of the audit writer's group commits.
    pub fsync: Histogram,
    /// Records per group commit.
    batch_records: AtomicU64,
    /// Request latency, every route.
    pub requests: Histogram,
}

impl Metrics {
    /// A grant (or renewal) was issued.
    pub fn grant(&self, renew: bool) {
        if renew {
            self.renewals.fetch_add(1, Ordering::Relaxed);
        } else {
            self.grants.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A request was refused with `reason`.
    pub fn denial(&self, reason: DenyReason) {
        if let Some(i) = DenyReason::ALL.iter().position(|r| *r == reason) {
            self.denials[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The audit chain now holds `len` records.
    pub fn audit_len(&self, len: u64) {
        self.audit_records.store(len, Ordering::Relaxed);
    }

    /// A group commit wrote `records` jobs.
    pub fn batch(&self, jobs: u64) {
        self.batch_records.fetch_add(jobs, Ordering::Relaxed);
    }

    /// Grants issued so far (renewals not included).
    pub fn grants(&self) -> u64 {
        self.grants.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP irm_grants_total Grants issued, by kind.");
        let _ = writeln!(out, "# TYPE irm_grants_total counter");
        let _ = writeln!(out, "irm_grants_total{{kind=\"grant\"}} {}", self.grants());
        let _ = writeln!(
            out,
            "irm_grants_total{{kind=\"renew\"}} {}",
            self.renewals.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# HELP irm_denials_total Refusals, by reason.");
        let _ = writeln!(out, "# TYPE irm_denials_total counter");
        for (reason, count) in DenyReason::ALL.iter().zip(&self.denials) {
            let _ = writeln!(
                out,
                "irm_denials_total{{reason=\"{}\"}} {}",
                reason.as_str(),
                count.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(out, "# HELP irm_audit_records Length of the audit chain.");
        let _ = writeln!(out, "# TYPE irm_audit_records gauge");
        let _ = writeln!(
            out,
            "irm_audit_records {}",
            self.audit_records.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP irm_audit_commit_jobs_total Jobs written by the audit writer's group commits."
        );
        let _ = writeln!(out, "# TYPE irm_audit_commit_jobs_total counter");
        let _ = writeln!(
            out,
            "irm_audit_commit_jobs_total {}",
            self.batch_records.load(Ordering::Relaxed)
        );
        self.fsync.render(
            &mut out,
            "irm_fsync_seconds",
            "Latency of each group commit (SQLite COMMIT with synchronous=FULL, one fsync).",
        );
        self.requests.render(
            &mut out,
            "irm_request_seconds",
            "Latency of each HTTP request, TLS excluded.",
        );
        out
    }
}
