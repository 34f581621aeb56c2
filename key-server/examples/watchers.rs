//! The push channel at scale (docs/PERFORMANCE.md §5): the key server's
//! memory with N idle open documents (push-channel streams), and how long
//! one suspension takes to reach all of them.
//!
//! The server runs in a child process (this program, `--serve DIR`, the
//! server as `irm-key-server serve` runs it: its own runtime, two workers),
//! so that its memory is its own; the N clients are tasks of this process.
//! The documents are spread over devices as the client crate holds them
//! (client/src/watch.rs): `--per-device K` gives each device K documents
//! and one HTTP/2 connection (its own async reqwest client, ALPN picking
//! `h2`) carrying their K streams, opening another connection past
//! `WATCH_STREAMS_PER_CONNECTION`; `--connection-per-document` is the client
//! before that, one HTTP/1.1 connection per open document, for comparison.
//! Figures: the server's resident memory before and with the N streams open
//! (`VmRSS`, and the peak `VmHWM`), per stream, and the server's open
//! sockets; then an administrator suspends the person whose documents they
//! are, and the time from the suspension's answer until every stream has
//! carried its `recheck`.
//!
//! ```text
//! cargo run --release -p irm-key-server --example watchers -- [--streams 10000] [--per-device 4 | --connection-per-document]
//! WRAP="valgrind --tool=massif --massif-out-file=/tmp/massif.out" target/release/examples/watchers --streams 500
//! ```
//!
//! `WRAP` runs the server child under a program (a heap profiler).

mod support;

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use irm_core::protocol::WATCH_STREAMS_PER_CONNECTION;
use irm_key_server::clock::SystemClock;
use irm_key_server::{AppState, Settings, datadir, serve};
use serde_json::json;
use support::{administrators, approved_person, signed_post};

/// `VmRSS` and `VmHWM` of process `pid`, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// How many of process `pid`'s open files are sockets: its connections,
/// and the listener.
fn sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|entry| {
                    std::fs::read_link(entry.path())
                        .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"))
                })
                .count()
        })
        .unwrap_or(0)
}

/// How the bench's documents reach the server.
#[derive(Clone, Copy)]
enum Model {
    /// Each device holds this many open documents on HTTP/2 connections
    /// of its own, at most `WATCH_STREAMS_PER_CONNECTION` streams each.
    PerDevice(usize),
    /// One HTTP/1.1 connection per open document (the client crate before
    /// documents shared a connection).
    ConnectionPerDocument,
}

/// Parses `[--streams N] [--per-device K | --connection-per-document]`.
fn arguments() -> (usize, Model) {
    let usage = || -> ! {
        eprintln!("usage: watchers [--streams N] [--per-device K | --connection-per-document]");
        std::process::exit(2)
    };
    let mut streams = 10_000;
    let mut model = Model::PerDevice(4);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = || -> usize {
            args.next()
                .and_then(|n| n.parse().ok())
                .filter(|&n| n > 0)
                .unwrap_or_else(|| usage())
        };
        match arg.as_str() {
            "--streams" => streams = number(),
            "--per-device" => model = Model::PerDevice(number()),
            "--connection-per-document" => model = Model::ConnectionPerDocument,
            _ => usage(),
        }
    }
    (streams, model)
}

/// The soft limit on open files, from `/proc/self/limits`.
fn open_files_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|line| line.starts_with("Max open files"))
                .and_then(|line| line.split_whitespace().nth(3)?.parse().ok())
        })
        .unwrap_or(1024)
}

/// The child: the key server on DIR, its port on standard output, until
/// standard input closes.
fn serve_child(dir: &str) {
    let state = AppState::open(Settings::new(dir), Arc::new(SystemClock)).expect("open");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("non-blocking");
    println!("{}", listener.local_addr().expect("addr").port());
    std::io::stdout().flush().expect("stdout");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let stop = tokio::task::spawn_blocking(|| {
                let mut line = String::new();
                let _ = std::io::stdin().read_line(&mut line);
            });
            serve(listener, state, async move {
                let _ = stop.await;
            })
            .await
            .expect("the server runs");
        });
}

/// Reads a stream until `needle` has arrived.
async fn read_until(response: &mut reqwest::Response, needle: &str) {
    let mut seen = String::new();
    while !seen.contains(needle) {
        let chunk = response
            .chunk()
            .await
            .expect("the stream reads")
            .expect("the stream is open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, dir] = args.as_slice()
        && flag == "--serve"
    {
        return serve_child(dir);
    }
    drop(args);
    let (streams, model) = arguments();
    let limit = open_files_limit();
    if limit < streams as u64 + 1024 {
        eprintln!(
            "the open-files limit is {limit}; {streams} streams need more (ulimit -n {})",
            streams + 1024
        );
        std::process::exit(2);
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let report = datadir::init(dir.path(), &[], "admin", &SystemClock).expect("init");
    let exe = std::env::current_exe().expect("this program");
    let mut child = match std::env::var("WRAP") {
        Ok(wrap) => {
            let mut words = wrap.split_whitespace();
            let mut command = Command::new(words.next().expect("WRAP names a program"));
            command.args(words).arg(&exe);
            command
        }
        Err(_) => Command::new(&exe),
    };
    let mut child = child
        .args(["--serve", dir.path().to_str().expect("a UTF-8 path")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let mut port = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut port)
        .expect("the port");
    let base = format!("https://127.0.0.1:{}", port.trim());
    let pid = child.id();

    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(async {
            let ca = reqwest::Certificate::from_pem(
                &std::fs::read(dir.path().join("tls/ca.pem")).expect("ca"),
            )
            .expect("ca");
            let http = reqwest::Client::builder()
                .tls_certs_only([ca])
                .build()
                .expect("client");
            // Two administrators (the second approves), and the agent whose
            // open documents the streams are.
            let (admin, approver) = administrators(&http, &base, &report.admin_code).await;
            let body = json!({"name": "agent", "display_name": "agent"});
            let agent = Arc::new(approved_person(&http, &base, (&admin, &approver), &body).await);

            let (before, _) = memory_kib(pid);
            let sockets_before = sockets(pid);
            // The connections the documents' streams go over: one HTTP/1.1
            // client whose pool opens a connection per stream, or one
            // client per device and per `WATCH_STREAMS_PER_CONNECTION` of
            // its documents, each holding one HTTP/2 connection.
            let ca = reqwest::Certificate::from_pem(
                &std::fs::read(dir.path().join("tls/ca.pem")).expect("ca"),
            )
            .expect("ca");
            // Which client carries document `i`'s stream.
            let connection_of = |i: usize| match model {
                Model::ConnectionPerDocument => 0,
                Model::PerDevice(per_device) => {
                    let (device, nth) = (i / per_device, i % per_device);
                    device * per_device.div_ceil(WATCH_STREAMS_PER_CONNECTION)
                        + nth / WATCH_STREAMS_PER_CONNECTION
                }
            };
            let connections: Vec<reqwest::Client> = match model {
                Model::ConnectionPerDocument => vec![
                    reqwest::Client::builder()
                        .tls_certs_only([ca.clone()])
                        .http1_only()
                        .build()
                        .expect("client"),
                ],
                Model::PerDevice(per_device) => {
                    let devices = streams.div_ceil(per_device);
                    let per_device_connections = per_device.div_ceil(WATCH_STREAMS_PER_CONNECTION);
                    (0..devices * per_device_connections)
                        .map(|_| {
                            reqwest::Client::builder()
                                .tls_certs_only([ca.clone()])
                                .build()
                                .expect("client")
                        })
                        .collect()
                }
            };
            let started = Instant::now();
            // At most 256 streams opening at a time, as documents open over
            // a morning rather than in one instant.
            let mut open = Vec::with_capacity(streams);
            for batch in (0..streams).collect::<Vec<_>>().chunks(256) {
                let mut tasks = tokio::task::JoinSet::new();
                for &document in batch {
                    let http = connections[connection_of(document)].clone();
                    let (base, agent) = (base.clone(), Arc::clone(&agent));
                    tasks.spawn(async move {
                        let mut response = http
                            .get(format!("{base}/v1/watch"))
                            .header("authorization", agent.authorization("GET", "/v1/watch", b""))
                            .send()
                            .await
                            .expect("a stream");
                        assert!(response.status().is_success(), "{}", response.status());
                        let version = response.version();
                        read_until(&mut response, "event: ready").await;
                        (response, version)
                    });
                }
                while let Some(opened) = tasks.join_next().await {
                    open.push(opened.expect("a stream task"));
                }
            }
            let opened = started.elapsed();
            // Idle for two heartbeats, as open documents are.
            tokio::time::sleep(Duration::from_secs(11)).await;
            let (with, peak) = memory_kib(pid);
            let h2 = open.iter().filter(|(_, v)| *v == reqwest::Version::HTTP_2).count();
            let connected = sockets(pid).saturating_sub(sockets_before);
            let model_text = match model {
                Model::ConnectionPerDocument => "one HTTP/1.1 connection per document".to_owned(),
                Model::PerDevice(k) => format!("{k} documents per device, one HTTP/2 client each"),
            };
            println!(
                "streams: {streams} open in {:.1} s ({model_text}; {h2} over HTTP/2; {connected} more server sockets)",
                opened.as_secs_f64()
            );
            println!(
                "server memory: {:.1} MiB before, {:.1} MiB with the streams open (peak {:.1} MiB): {:.1} KiB per stream",
                before as f64 / 1024.0,
                with as f64 / 1024.0,
                peak as f64 / 1024.0,
                (with.saturating_sub(before)) as f64 / streams as f64
            );

            // One suspension; every stream must carry its recheck.
            let waiting: Vec<_> = open
                .into_iter()
                .map(|(mut response, _)| {
                    tokio::spawn(async move {
                        read_until(&mut response, "event: recheck").await;
                        Instant::now()
                    })
                })
                .collect();
            // Timed from the request: the streams hear of the suspension as
            // its commit returns, before its own answer is read.
            let sent = Instant::now();
            let suspended = signed_post(&http, &base, &admin, "/v1/admin/users/agent/suspend", &json!(null)).await;
            let answered = sent.elapsed();
            assert!(suspended.status().is_success(), "{}", suspended.status());
            let mut last = sent;
            for task in waiting {
                last = last.max(task.await.expect("a recheck"));
            }
            println!(
                "fan-out: the suspension was answered in {:.1} ms and reached all {streams} streams {:.0} ms after it was sent",
                answered.as_secs_f64() * 1000.0,
                last.duration_since(sent).as_secs_f64() * 1000.0
            );
        });
    drop(child.stdin.take());
    let _ = child.wait();
}
