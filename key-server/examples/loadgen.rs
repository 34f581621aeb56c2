//! Load generator: starts the key server in-process on loopback with a
//! throw-away data directory, enrolls N devices through the HTTP API, then
//! drives grants over TLS from C concurrent clients (one connection each,
//! opened and used once before the clock starts) for a bounded number of
//! requests and time. Reports grants per second,
//! p50/p99 latency, the server's group-commit figures, and an fsync of a
//! small file measured in the same run on the same disk, for comparison.
//!
//! ```text
//! cargo run --release -p irm-key-server --example loadgen -- [--devices 64] [--clients 64] [--requests 20000] [--seconds 20] [--rate GRANTS_PER_S] [--timeline 1] [--detection 0]
//! ```

mod support;

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use irm_core::{EnvelopeBuilder, KasPublicKey, Policy, PolicyGrant, Recipient, Rights};
use irm_key_server::clock::SystemClock;
use irm_key_server::{AppState, Settings, datadir, serve};
use serde_json::json;
use support::{administrators, approved_person, signed_post};

struct Options {
    devices: usize,
    clients: usize,
    requests: u64,
    seconds: u64,
    /// Grants per second offered in total (0: as fast as the clients go).
    rate: u64,
    /// Print latency by 250 ms window.
    timeline: bool,
    /// The default detection rules on (the server's default), or all off,
    /// to measure what detection costs a grant (PROTOCOL.md §12).
    detection: bool,
}

fn options() -> Options {
    let mut o = Options {
        devices: 64,
        clients: 64,
        requests: 20_000,
        seconds: 20,
        rate: 0,
        timeline: false,
        detection: true,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair
            .get(1)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| {
                eprintln!(
                    "usage: loadgen [--devices N] [--clients N] [--requests N] [--seconds N] [--rate N] [--timeline 1] [--detection 0]"
                );
                std::process::exit(2)
            });
        match pair[0].as_str() {
            "--devices" => o.devices = value.max(1) as usize,
            "--clients" => o.clients = value.max(1) as usize,
            "--requests" => o.requests = value.max(1),
            "--seconds" => o.seconds = value.max(1),
            "--rate" => o.rate = value,
            "--timeline" => o.timeline = value != 0,
            "--detection" => o.detection = value != 0,
            _ => {
                eprintln!("unknown option {}", pair[0]);
                std::process::exit(2)
            }
        }
    }
    o
}

/// fsync latency of a small file next to the database, in microseconds (sorted).
fn measure_fsync(dir: &std::path::Path, rounds: usize) -> Vec<u64> {
    let mut file = std::fs::File::create(dir.join("fsync-probe")).expect("probe");
    let mut samples: Vec<u64> = (0..rounds)
        .map(|i| {
            file.write_all(&[i as u8; 512]).expect("write");
            let started = Instant::now();
            file.sync_data().expect("fsync");
            started.elapsed().as_micros() as u64
        })
        .collect();
    samples.sort_unstable();
    samples
}

/// Requests by the 250 ms window they were due in (or sent in, without
/// `--rate`): how many, and their p50, p99 and max latency in ms, so that
/// slow requests can be placed in time.
fn print_timeline(timed: &mut [(u64, u64)]) {
    timed.sort_unstable();
    println!("window (ms)   requests   p50    p99    max");
    for window in timed.chunk_by(|a, b| a.0 / 250 == b.0 / 250) {
        let mut latencies: Vec<u64> = window.iter().map(|&(_, latency)| latency).collect();
        latencies.sort_unstable();
        println!(
            "{:>6}      {:>8}  {:>5.1}  {:>5.1}  {:>5.1}",
            window[0].0 / 250 * 250,
            latencies.len(),
            percentile(&latencies, 0.5) as f64 / 1e3,
            percentile(&latencies, 0.99) as f64 / 1e3,
            latencies.last().copied().unwrap_or(0) as f64 / 1e3,
        );
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

#[tokio::main]
async fn main() {
    let o = options();
    let dir = tempfile::tempdir().expect("temp dir");
    let report = datadir::init(dir.path(), &[], "admin", &SystemClock).expect("init");
    let mut settings = Settings::new(dir.path());
    if !o.detection {
        settings.detection = irm_key_server::detect::Rules::OFF;
    }
    let state = AppState::open(settings, Arc::new(SystemClock)).expect("open");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("non-blocking");
    let base = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().expect("addr").port()
    );
    // The server gets its own runtime (as `irm-key-server serve` has, two
    // workers), so the clients, like separate processes, compete with it for
    // the cores through the OS scheduler rather than queueing behind its
    // tasks on shared workers.
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server_state = state.clone();
    let server = std::thread::spawn(move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("key-server")
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                serve(listener, server_state, async move {
                    let _ = stop_rx.await;
                })
                .await
            })
    });
    let ca =
        reqwest::Certificate::from_pem(&std::fs::read(dir.path().join("tls/ca.pem")).expect("ca"))
            .expect("ca");
    let client = || {
        // HTTP/1.1 as the client crate's blocking calls and every grant
        // figure before reqwest's `http2` feature was on (PERFORMANCE.md §5).
        reqwest::Client::builder()
            .tls_certs_only([ca.clone()])
            .http1_only()
            .build()
            .expect("client")
    };
    let http = client();

    // Setup through the API: two admins (the second approves the first's
    // requests), a group, N users with one device each.
    let (admin, approver) = administrators(&http, &base, &report.admin_code).await;
    let created = signed_post(
        &http,
        &base,
        &admin,
        "/v1/admin/groups",
        &json!({"name": "agents"}),
    )
    .await;
    assert!(created.status().is_success());
    let mut devices = Vec::with_capacity(o.devices);
    for i in 0..o.devices {
        let name = format!("agent{i}");
        let body = json!({"name": name, "display_name": name, "groups": ["agents"]});
        devices.push(approved_person(&http, &base, (&admin, &approver), &body).await);
    }
    let key = state.current_key().expect("key");
    let headers: Vec<String> = (0..16)
        .map(|_| {
            let policy = Policy::builder()
                .grant(PolicyGrant {
                    recipients: [Recipient::parse("@agents").expect("recipient")].into(),
                    rights: Rights::VIEW | Rights::PRINT,
                })
                .max_lease_secs(600)
                .build()
                .expect("policy");
            let verified = EnvelopeBuilder::new(policy)
                .key_server(
                    base.clone(),
                    KasPublicKey::from_bytes(key.public_key.to_bytes()),
                )
                .build()
                .expect("seal");
            URL_SAFE_NO_PAD.encode(verified.header().to_bytes())
        })
        .collect();
    let fsync_before = measure_fsync(dir.path(), 200);

    println!(
        "driving grants: {} devices, {} clients, at most {} requests or {} s, {}",
        o.devices,
        o.clients,
        o.requests,
        o.seconds,
        if o.rate > 0 {
            format!("offered {} grants/s", o.rate)
        } else {
            "as fast as possible".to_owned()
        }
    );
    // Every client opens its connection (TLS handshake) and makes one untimed
    // grant before the clock starts, as a long-running client would have
    // done long before: 64 handshakes at once are a start-up burst, not the
    // steady load the figures are about.
    let connections: Vec<reqwest::Client> = (0..o.clients).map(|_| client()).collect();
    let warm_ups: Vec<_> = connections
        .iter()
        .enumerate()
        .map(|(c, http)| {
            let (http, base) = (http.clone(), base.clone());
            let device = devices[c % devices.len()].clone();
            let body = json!({"header": headers[c % headers.len()], "renew": false});
            tokio::spawn(async move {
                let response = signed_post(&http, &base, &device, "/v1/grant", &body).await;
                assert!(response.status().is_success(), "warm-up grant");
            })
        })
        .collect();
    for warm_up in warm_ups {
        warm_up.await.expect("warm-up");
    }

    let issued = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(o.seconds);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(o.clients);
    for (c, http) in connections.into_iter().enumerate() {
        let device = devices[c % devices.len()].clone();
        let base = base.clone();
        let headers = headers.clone();
        let (issued, failures) = (issued.clone(), failures.clone());
        let limit = o.requests;
        // With --rate, each client sends on a fixed schedule and latency is
        // counted from the scheduled time, so time spent queueing behind a
        // slow answer counts too (no coordinated omission).
        let interval =
            (o.rate > 0).then(|| Duration::from_secs_f64(o.clients as f64 / o.rate as f64));
        let mut scheduled =
            started + interval.map_or(Duration::ZERO, |i| i.mul_f64(c as f64 / o.clients as f64));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = c;
            while issued.fetch_add(1, Ordering::Relaxed) < limit && Instant::now() < deadline {
                let body = json!({"header": headers[n % headers.len()], "renew": false});
                n += 1;
                let t = match interval {
                    Some(interval) => {
                        tokio::time::sleep_until(scheduled.into()).await;
                        let at = scheduled;
                        scheduled += interval;
                        at
                    }
                    None => Instant::now(),
                };
                let response = signed_post(&http, &base, &device, "/v1/grant", &body).await;
                let ok = response.status().is_success();
                let _ = response.bytes().await;
                latencies.push((
                    t.duration_since(started).as_millis() as u64,
                    t.elapsed().as_micros() as u64,
                ));
                if !ok {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies
        }));
    }
    let mut timed = Vec::new();
    for task in tasks {
        timed.extend(task.await.expect("client task"));
    }
    let elapsed = started.elapsed();
    if o.timeline {
        print_timeline(&mut timed);
    }
    let mut latencies: Vec<u64> = timed.iter().map(|&(_, latency)| latency).collect();
    latencies.sort_unstable();
    let fsync_after = measure_fsync(dir.path(), 200);
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics");

    let done = latencies.len() as f64;
    let commits = metric(&metrics, "irm_fsync_seconds_count ");
    let commit_secs = metric(&metrics, "irm_fsync_seconds_sum ");
    let jobs = metric(&metrics, "irm_audit_commit_jobs_total ");
    let mut fsync: Vec<u64> = fsync_before.into_iter().chain(fsync_after).collect();
    fsync.sort_unstable();
    println!(
        "grants:          {} in {:.2} s = {:.0} grants/s ({} failed)",
        latencies.len(),
        elapsed.as_secs_f64(),
        done / elapsed.as_secs_f64(),
        failures.load(Ordering::Relaxed)
    );
    println!(
        "grant latency:   p50 {} µs, p99 {} µs, max {} µs",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0)
    );
    println!(
        "fsync (512 B):   p50 {} µs, p99 {} µs over {} probes on the data directory's disk",
        percentile(&fsync, 0.5),
        percentile(&fsync, 0.99),
        fsync.len()
    );
    if commits > 0.0 {
        println!(
            "group commit:    {commits:.0} commits, {:.1} jobs per commit, mean commit {:.0} µs",
            jobs / commits,
            commit_secs / commits * 1e6
        );
    }
    if o.timeline {
        // The server's own view: commit and request (TLS excluded) latency.
        for line in metrics.lines().filter(|l| {
            l.starts_with("irm_fsync_seconds_bucket") || l.starts_with("irm_request_seconds_bucket")
        }) {
            println!("{line}");
        }
    }
    let _ = stop_tx.send(());
    let _ = server.join();
}
