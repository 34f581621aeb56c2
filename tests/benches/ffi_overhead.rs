//! What libirm's C boundary costs, measured against the Rust API in the
//! same run (issue 5's targets; figures go to docs/PERFORMANCE.md):
//!
//! - sealing a 256 MiB buffer through `irm_seal_buffer_offline` versus the
//!   same work through irm-core (copy the caller's bytes into a buffer of the
//!   sealed size, `seal_in_place`), medians of alternating runs;
//! - `irm_open` + `irm_close` of a small file against a key server on
//!   loopback (TLS, signed request, grant and its audit record durable before
//!   the answer), next to the latency of one `fsync` on the same disk.
//!
//! ```sh
//! cargo bench -p irm-e2e --bench ffi_overhead            # full run
//! cargo bench -p irm-e2e --bench ffi_overhead -- --quick # a smoke run
//! ```
//! Prints a markdown table. No assertion on time: the machine is shared,
//! so only ratios from one run mean anything.

#![allow(unsafe_code)] // The point is to call the C ABI as C does.

use std::io::Write;
use std::time::{Duration, Instant};

use irm::{
    irm_buffer_free, irm_client, irm_client_free, irm_close, irm_document, irm_open, irm_policy,
    irm_policy_add_grant, irm_policy_free, irm_policy_new, irm_seal_buffer_offline,
};
use irm_core::{
    EnvelopeBuilder, Metadata, Policy, PolicyGrant, Recipient, Rights, StreamOptions, seal_in_place,
};
use irm_e2e::libirm::{c, check, client_open};
use irm_e2e::stage::enroll;
use irm_e2e::{ADMIN, Server};

const MIB: usize = 1 << 20;
const PASSPHRASE: &str = "bench passphrase for the administrator";

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (seal_mib, seal_runs, opens) = if quick { (16, 3, 30) } else { (256, 7, 400) };

    let server = Server::start();
    let home = tempfile::TempDir::new().expect("a home directory");
    let config_dir = home.path().join("irm");
    let session = enroll(&server, &config_dir, ADMIN, &server.admin_code, PASSPHRASE);
    let (info, kas_key) = session.server_key().expect("the server's key");

    // ---- sealing a buffer: FFI versus irm-core
    let data = customer_rows(seal_mib * MIB);
    let kas_text = c(&kas_key.to_text());
    let kas_url = c(&info.url);
    let policy = FfiPolicy::new(ADMIN, 1 | 16);
    let rust_policy = Policy::builder()
        .grant(PolicyGrant {
            recipients: [Recipient::parse(ADMIN).expect("a user")].into(),
            rights: Rights::VIEW | Rights::PROGRAM,
        })
        .build()
        .expect("a policy");
    let name = c("customers.csv");
    let media = c("text/csv");

    let seal_ffi = || {
        let mut out: *mut u8 = std::ptr::null_mut();
        let mut out_len = 0usize;
        let start = Instant::now();
        // SAFETY: live handles, a readable buffer, NUL-terminated strings,
        // writable outputs.
        let status = unsafe {
            irm_seal_buffer_offline(
                kas_text.as_ptr(),
                kas_url.as_ptr(),
                policy.0,
                data.as_ptr(),
                data.len(),
                name.as_ptr(),
                media.as_ptr(),
                &raw mut out,
                &raw mut out_len,
            )
        };
        let took = start.elapsed();
        check(status, "irm_seal_buffer_offline");
        // SAFETY: the buffer libirm just returned, freed once.
        unsafe { irm_buffer_free(out, out_len) };
        took
    };
    let seal_rust = || {
        let start = Instant::now();
        let header = EnvelopeBuilder::new(rust_policy.clone())
            .key_server(info.url.as_str(), kas_key)
            .metadata(Metadata {
                file_name: Some("customers.csv".into()),
                media_type: Some("text/csv".into()),
                plaintext_len: Some(data.len() as u64),
            })
            .build()
            .expect("a header");
        let sealed_len =
            usize::try_from(header.sealed_len().expect("a known length")).expect("fits in memory");
        let mut buf = Vec::with_capacity(sealed_len);
        buf.extend_from_slice(&data);
        seal_in_place(&header, &mut buf, StreamOptions::default()).expect("sealing");
        let took = start.elapsed();
        assert_eq!(buf.len(), sealed_len, "the sealed size is as announced");
        took
    };
    // Warm both paths (page faults of the first big allocation), then alternate.
    seal_ffi();
    seal_rust();
    let mut ffi_times = Vec::new();
    let mut rust_times = Vec::new();
    for _ in 0..seal_runs {
        ffi_times.push(seal_ffi());
        rust_times.push(seal_rust());
    }
    let ffi_seal = median(&mut ffi_times);
    let rust_seal = median(&mut rust_times);
    drop(data);

    // ---- irm_open of a small file on loopback, beside one fsync
    let small = customer_rows(4096);
    let sealed_path = home.path().join("small.csv.irm");
    {
        let header = EnvelopeBuilder::new(rust_policy.clone())
            .key_server(info.url.as_str(), kas_key)
            .build()
            .expect("a header");
        session
            .register_file(header.header(), Some("small.csv"))
            .expect("the file registers");
        let sealed = irm_core::seal_to_vec(&header, &small, StreamOptions::default())
            .expect("sealing a small file");
        std::fs::write(&sealed_path, sealed).expect("writing the sealed file");
    }
    let client = FfiClient::open(&config_dir);
    let path = c(sealed_path.to_str().expect("a UTF-8 temporary path"));
    let mut open_times = Vec::with_capacity(opens);
    let mut fsync_times = Vec::with_capacity(opens);
    let mut probe = std::fs::File::create(home.path().join("fsync-probe")).expect("a probe file");
    for i in 0..opens + 10 {
        let mut doc: *mut irm_document = std::ptr::null_mut();
        let start = Instant::now();
        // SAFETY: a live client, a NUL-terminated path, a writable output.
        let status = unsafe { irm_open(client.0, path.as_ptr(), &raw mut doc) };
        let took = start.elapsed();
        check(status, "irm_open");
        // SAFETY: the document irm_open just returned, closed once.
        unsafe { irm_close(doc) };

        let start = Instant::now();
        probe.write_all(&[0x5a; 512]).expect("writing the probe");
        probe.sync_all().expect("fsync");
        let synced = start.elapsed();
        if i >= 10 {
            open_times.push(took);
            fsync_times.push(synced);
        }
    }
    let open_p50 = median(&mut open_times);
    let open_p99 = percentile(&open_times, 0.99);
    let fsync_p50 = median(&mut fsync_times);

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let gbs = |d: Duration| (seal_mib * MIB) as f64 / d.as_secs_f64() / 1e9;
    println!("| measurement | figure |");
    println!("| --- | --- |");
    println!(
        "| seal {seal_mib} MiB buffer, Rust API (copy + seal_in_place), median of {seal_runs} | {:.1} ms ({:.2} GB/s) |",
        ms(rust_seal),
        gbs(rust_seal)
    );
    println!(
        "| seal {seal_mib} MiB buffer, irm_seal_buffer_offline, median of {seal_runs} | {:.1} ms ({:.2} GB/s) |",
        ms(ffi_seal),
        gbs(ffi_seal)
    );
    println!(
        "| FFI overhead (FFI / Rust - 1; target ≤ 5%) | {:+.1}% |",
        (ffi_seal.as_secs_f64() / rust_seal.as_secs_f64() - 1.0) * 100.0
    );
    println!(
        "| irm_open + irm_close, 4 KiB file, loopback TLS, {opens} runs | p50 {:.2} ms, p99 {:.2} ms |",
        ms(open_p50),
        ms(open_p99)
    );
    println!(
        "| fsync of 512 B on the same disk, same run | p50 {:.2} ms |",
        ms(fsync_p50)
    );
    println!(
        "| irm_open p50 - fsync p50 (target ≤ 2 ms) | {:+.2} ms |",
        ms(open_p50) - ms(fsync_p50)
    );
}

/// `len` bytes of CSV customer rows (realistic, compressible like real exports).
fn customer_rows(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 128);
    out.extend_from_slice("顧客番号,氏名,電話番号,住所\n".as_bytes());
    let mut i = 0u64;
    while out.len() < len {
        writeln!(
            out,
            "{:08},山田 太郎{},03-{:04}-{:04},東京都足立区千住{}丁目",
            i,
            i % 97,
            i % 10_000,
            (i * 7) % 10_000,
            i % 9 + 1
        )
        .expect("writing to memory");
        i += 1;
    }
    out.truncate(len);
    out
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

fn percentile(times: &[Duration], p: f64) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

/// An `irm_policy` freed on drop.
struct FfiPolicy(*mut irm_policy);

impl FfiPolicy {
    fn new(recipients: &str, rights: u32) -> Self {
        let mut policy: *mut irm_policy = std::ptr::null_mut();
        // SAFETY: a writable output.
        check(unsafe { irm_policy_new(&raw mut policy) }, "irm_policy_new");
        let recipients = c(recipients);
        // SAFETY: the live policy, a NUL-terminated list.
        check(
            unsafe { irm_policy_add_grant(policy, recipients.as_ptr(), rights) },
            "irm_policy_add_grant",
        );
        Self(policy)
    }
}

impl Drop for FfiPolicy {
    fn drop(&mut self) {
        // SAFETY: ours, freed once.
        unsafe { irm_policy_free(self.0) };
    }
}

/// An `irm_client` freed on drop.
struct FfiClient(*mut irm_client);

impl FfiClient {
    fn open(config_dir: &std::path::Path) -> Self {
        let client = client_open(config_dir, PASSPHRASE);
        Self(client)
    }
}

impl Drop for FfiClient {
    fn drop(&mut self) {
        // SAFETY: ours, freed once.
        unsafe { irm_client_free(self.0) };
    }
}
