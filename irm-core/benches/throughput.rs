//! Payload throughput, as ratios measured in one run (docs/PERFORMANCE.md).
//!
//! Every figure is compared with a baseline measured in the same process,
//! alternating rounds so that a noisy neighbour on this shared machine slows
//! both sides alike; each reported number is the median of the rounds.
//!
//! Baseline ("copy + seal in place"): copy each chunk into a buffer and seal it
//! in place with aws-lc-rs, the fastest AES-256-GCM on crates.io — the least
//! work any streaming `Write` adaptor must do. "raw" seals the buffer where it
//! lies, with no copy at all.
//!
//! Run: `cargo bench -p irm-core --bench throughput` (add `-- --quick` for a
//! short run, `-- --markdown` for the table in docs/PERFORMANCE.md, and
//! `-- --only single|dual|chunk` for one table).

use std::hint::black_box;
use std::io::{self, BufRead, Read, Write};
use std::time::Instant;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use irm_core::{
    EnvelopeBuilder, KasSecretKey, Metadata, Opener, PayloadBackend, Policy, PolicyGrant,
    Recipient, Rights, SealedHeader, Sealer, StreamOptions, VerifiedHeader, open_into, open_to_vec,
    seal_to_vec,
};

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

fn header(chunk_len: usize, plaintext_len: usize) -> (KasSecretKey, VerifiedHeader) {
    let kas = KasSecretKey::generate().expect("rng");
    let policy = Policy::builder()
        .grant(PolicyGrant {
            recipients: [Recipient::parse("@bench").expect("valid")].into(),
            rights: Rights::VIEW,
        })
        .max_lease_secs(600)
        .build()
        .expect("valid policy");
    let header = EnvelopeBuilder::new(policy)
        .key_server("https://bench.invalid", kas.public_key())
        .chunk_len(chunk_len as u32)
        .metadata(Metadata {
            plaintext_len: Some(plaintext_len as u64),
            ..Metadata::default()
        })
        .build()
        .expect("header");
    (kas, header)
}

/// Seconds for one call of `f`, best of enough repetitions to run ~`min_secs`.
fn time_once(bytes: usize, mut f: impl FnMut()) -> f64 {
    // Small inputs are repeated so that one sample lasts long enough to time.
    let reps = (64 * MIB / bytes.max(1)).clamp(1, 100_000);
    let start = Instant::now();
    for _ in 0..reps {
        f();
    }
    start.elapsed().as_secs_f64() / reps as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    v[v.len() / 2]
}

struct Contest<'a> {
    names: Vec<&'static str>,
    runs: Vec<Box<dyn FnMut() + 'a>>,
}

impl<'a> Contest<'a> {
    fn new() -> Self {
        Self {
            names: Vec::new(),
            runs: Vec::new(),
        }
    }
    fn add(&mut self, name: &'static str, f: impl FnMut() + 'a) {
        self.names.push(name);
        self.runs.push(Box::new(f));
    }
    /// Alternates the contenders for `rounds` rounds; returns median GB/s each.
    fn run(mut self, bytes: usize, rounds: usize) -> Vec<(&'static str, f64)> {
        let mut samples = vec![Vec::new(); self.runs.len()];
        for run in &mut self.runs {
            time_once(bytes, run); // warm up
        }
        for _ in 0..rounds {
            for (i, run) in self.runs.iter_mut().enumerate() {
                // Each sample follows an untimed run of the same contender:
                // the first run after a switch paid for the switch (a
                // single-threaded run right after a two-threaded one measured
                // half speed on these VMs, which inflated every x2/x1 ratio).
                time_once(bytes, &mut *run);
                samples[i].push(bytes as f64 / time_once(bytes, run) / 1e9);
            }
        }
        self.names
            .into_iter()
            .zip(samples.into_iter().map(median))
            .collect()
    }
}

/// The baseline: copy each chunk into a buffer and seal it in place.
fn baseline_seal(key: &LessSafeKey, chunk_len: usize, input: &[u8], buf: &mut [u8]) {
    for (i, chunk) in input.chunks(chunk_len).enumerate() {
        let data = &mut buf[..chunk.len()];
        data.copy_from_slice(chunk);
        let mut n = [0u8; 12];
        n[3..11].copy_from_slice(&(i as u64).to_be_bytes());
        let tag = key
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(n), Aad::empty(), data)
            .expect("seal");
        black_box(tag.as_ref());
        black_box(&buf[..chunk.len()]);
    }
}

/// Raw in-place sealing: no copy at all.
fn raw_seal(key: &LessSafeKey, chunk_len: usize, data: &mut [u8]) {
    for (i, chunk) in data.chunks_mut(chunk_len).enumerate() {
        let mut n = [0u8; 12];
        n[3..11].copy_from_slice(&(i as u64).to_be_bytes());
        let tag = key
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(n), Aad::empty(), chunk)
            .expect("seal");
        black_box(tag.as_ref());
    }
}

/// The baseline for opening: copy each sealed chunk into a buffer and open it in place.
fn baseline_open(key: &LessSafeKey, chunk_len: usize, sealed: &[u8], buf: &mut [u8]) {
    let chunks = sealed.len().div_ceil(chunk_len + 16);
    for (i, chunk) in sealed.chunks(chunk_len + 16).enumerate() {
        let data = &mut buf[..chunk.len()];
        data.copy_from_slice(chunk);
        let mut n = [0u8; 12];
        n[3..11].copy_from_slice(&(i as u64).to_be_bytes());
        n[11] = u8::from(i + 1 == chunks);
        let plain = key
            .open_in_place(Nonce::assume_unique_for_key(n), Aad::empty(), data)
            .expect("open");
        black_box(plain);
    }
}

/// A payload sealed under the baseline's key, for the baseline to open.
fn baseline_payload(key: &LessSafeKey, chunk_len: usize, input: &[u8]) -> Vec<u8> {
    let chunks = input.len().div_ceil(chunk_len).max(1);
    let mut out = Vec::with_capacity(input.len() + 16 * chunks);
    for i in 0..chunks {
        let piece = input
            .get(i * chunk_len..((i + 1) * chunk_len).min(input.len()))
            .unwrap_or(&[]);
        let mut data = piece.to_vec();
        let mut n = [0u8; 12];
        n[3..11].copy_from_slice(&(i as u64).to_be_bytes());
        n[11] = u8::from(i + 1 == chunks);
        let tag = key
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(n), Aad::empty(), &mut data)
            .expect("seal");
        out.extend_from_slice(&data);
        out.extend_from_slice(tag.as_ref());
    }
    out
}

/// The machine's own ceiling for two threads: raw in-place sealing of each
/// half of `data` on its own thread, against one thread doing all of it.
fn raw_seal_threads(key: &LessSafeKey, chunk_len: usize, data: &mut [u8], threads: usize) {
    if threads == 1 {
        raw_seal(key, chunk_len, data);
        return;
    }
    let half = data.len() / 2;
    let (a, b) = data.split_at_mut(half);
    std::thread::scope(|s| {
        s.spawn(|| raw_seal(key, chunk_len, a));
        raw_seal(key, chunk_len, b);
    });
}

/// `repeat` seals of one 64 KiB chunk held in cache, split over `threads`
/// threads that each loop over a buffer of their own.
fn cache_seal(repeat: usize, threads: usize) {
    let work = |n: usize| {
        let key = raw_key();
        let mut buf = vec![0u8; 64 * KIB];
        for i in 0..n {
            let mut nonce = [0u8; 12];
            nonce[3..11].copy_from_slice(&(i as u64).to_be_bytes());
            let tag = key
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::empty(),
                    &mut buf,
                )
                .expect("seal");
            black_box(tag.as_ref());
        }
    };
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(|| work(repeat / threads));
        }
        work(repeat / threads);
    });
}

fn raw_key() -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).expect("key"))
}

fn seal_stream(header: &VerifiedHeader, input: &[u8], options: StreamOptions) {
    let mut sealer = Sealer::new(header, io::sink(), options).expect("sealer");
    // Writes of 1 MiB, as `irm seal` does.
    for piece in input.chunks(MIB) {
        sealer.write_all(piece).expect("write");
    }
    sealer.finish().expect("finish");
}

/// Opens a plain `Read` (`Opener::new`, which copies the ciphertext out of
/// it), reading through the opener's `BufRead`, which hands out each
/// verified chunk in place.
fn open_stream(header: &VerifiedHeader, payload: &[u8], options: StreamOptions) {
    drain(Opener::new(header, payload, options));
}

/// Opens a `BufRead` (`Opener::from_buf_read`, which decrypts each chunk
/// from the source's buffer).
fn open_buffered(header: &VerifiedHeader, payload: &[u8], options: StreamOptions) {
    drain(Opener::from_buf_read(header, payload, options));
}

fn drain(mut opener: impl BufRead) {
    loop {
        let n = {
            let chunk = opener.fill_buf().expect("open");
            black_box(chunk);
            chunk.len()
        };
        if n == 0 {
            break;
        }
        opener.consume(n);
    }
}

/// Only copies the payload out of a `Read`, a chunk at a time, into one
/// reused buffer: the part of the streaming `Opener`'s work that no second
/// thread can share, since a reader is read by one thread in order.
fn copy_out(payload: &[u8], chunk: usize) {
    let mut reader = payload;
    let mut buf = vec![0u8; chunk + 16];
    loop {
        let n = reader.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        black_box(&buf[..n]);
    }
}

fn open_in_memory(header: &VerifiedHeader, payload: &[u8], options: StreamOptions) {
    black_box(open_to_vec(header, payload, options).expect("open"));
}

fn sealed_payload(
    kas: &KasSecretKey,
    header: &VerifiedHeader,
    input: &[u8],
) -> (Vec<u8>, VerifiedHeader) {
    let sealed = seal_to_vec(header, input, StreamOptions::default()).expect("seal");
    let (parsed, len) = SealedHeader::parse(&sealed).expect("parse");
    let verified = parsed
        .clone()
        .verify(kas.unwrap(&parsed).expect("unwrap"))
        .expect("verify");
    (sealed[len..].to_vec(), verified)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let markdown = args.iter().any(|a| a == "--markdown");
    let rounds = if quick { 3 } else { 7 };
    // `--only single|dual|chunk` runs one table (the others take minutes).
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str);
    let wanted = |table: &str| only.is_none_or(|o| o == table);
    let chunk = 64 * KIB;
    let single = StreamOptions::default();
    let portable = StreamOptions {
        backend: PayloadBackend::Portable,
        ..single
    };
    let dual = StreamOptions {
        threads: 2,
        ..single
    };
    let key = raw_key();

    let mut out = String::new();
    let mut line = |s: String| {
        eprintln!("{s}");
        out.push_str(&s);
        out.push('\n');
    };

    if wanted("single") {
        line(
        "### Seal and open, single thread, memory to io::sink (GB/s, median of alternating rounds)"
            .into(),
    );
        line(String::new());
        line("| size | baseline seal | Sealer | ratio | raw in-place | Sealer/raw | portable Sealer | baseline open | Opener | ratio |".into());
        line("|---|---|---|---|---|---|---|---|---|---|".into());
        let sizes: &[usize] = if quick {
            &[64 * KIB, 64 * MIB]
        } else {
            &[KIB, 64 * KIB, MIB, 16 * MIB, 64 * MIB]
        };
        for &size in sizes {
            let input = vec![0x5Au8; size];
            let (kas, hdr) = header(chunk, size);
            let (payload, opened) = sealed_payload(&kas, &hdr, &input);
            let mut buf = vec![0u8; chunk + 16];
            let mut raw = input.clone();
            let mut obuf = vec![0u8; chunk + 16];
            let base_payload = baseline_payload(&key, chunk, &input);
            let mut c = Contest::new();
            c.add("baseline", || baseline_seal(&key, chunk, &input, &mut buf));
            c.add("sealer", || seal_stream(&hdr, &input, single));
            c.add("raw", || raw_seal(&key, chunk, &mut raw));
            c.add("portable", || seal_stream(&hdr, &input, portable));
            c.add("baseline-open", || {
                baseline_open(&key, chunk, &base_payload, &mut obuf)
            });
            c.add("opener", || open_stream(&opened, &payload, single));
            let r = c.run(size, rounds);
            line(format!(
                "| {} | {:.2} | {:.2} | {:.0}% | {:.2} | {:.0}% | {:.2} | {:.2} | {:.2} | {:.0}% |",
                human(size),
                r[0].1,
                r[1].1,
                100.0 * r[1].1 / r[0].1,
                r[2].1,
                100.0 * r[1].1 / r[2].1,
                r[3].1,
                r[4].1,
                r[5].1,
                100.0 * r[5].1 / r[4].1,
            ));
        }
    }

    if wanted("dual") {
        line(String::new());
        line("### Both cores (threads = 2) against one, memory to io::sink (GB/s)".into());
        line(String::new());
        line("| size | Sealer x1 | Sealer x2 | speed-up | open_into x1 | open_into x2 | speed-up | open_to_vec x1 | open_to_vec x2 | speed-up | Opener from BufRead x1 | x2 | speed-up | Opener from Read x1 | x2 | speed-up | its ceiling: copy-out alone | x1 time / copy-out time | machine ceiling: raw in-place x2 / x1 | raw 64 KiB in cache x2 / x1 |".into());
        line(
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
                .into(),
        );
        let big: &[usize] = if quick {
            &[64 * MIB]
        } else {
            &[64 * MIB, 256 * MIB]
        };
        for &size in big {
            let input = vec![0x5Au8; size];
            let (kas, hdr) = header(chunk, size);
            let (payload, opened) = sealed_payload(&kas, &hdr, &input);
            let mut c = Contest::new();
            c.add("seal1", || seal_stream(&hdr, &input, single));
            c.add("seal2", || seal_stream(&hdr, &input, dual));
            // open_into fills a buffer the caller keeps (no allocation per
            // call); open_to_vec allocates and page-faults a new one.
            let mut into1 = vec![0u8; size];
            let mut into2 = vec![0u8; size];
            let (o, p) = (&opened, &payload);
            c.add("into1", move || {
                open_into(o, p, &mut into1, single).expect("open")
            });
            c.add("into2", move || {
                open_into(o, p, &mut into2, dual).expect("open")
            });
            c.add("vec1", || open_in_memory(&opened, &payload, single));
            c.add("vec2", || open_in_memory(&opened, &payload, dual));
            c.add("buffered1", || open_buffered(&opened, &payload, single));
            c.add("buffered2", || open_buffered(&opened, &payload, dual));
            c.add("open1", || open_stream(&opened, &payload, single));
            c.add("open2", || open_stream(&opened, &payload, dual));
            // What `Opener::new` cannot share between threads: copying the
            // ciphertext out of the reader.
            c.add("copy", || copy_out(&payload, chunk));
            let mut raw1 = input.clone();
            let mut raw2 = input.clone();
            c.add("raw1", move || {
                raw_seal_threads(&raw_key(), chunk, &mut raw1, 1)
            });
            c.add("raw2", move || {
                raw_seal_threads(&raw_key(), chunk, &mut raw2, 2)
            });
            // The same amount of work on a 64 KiB buffer per thread that stays
            // in cache: what the cores can do when memory is not the limit.
            let repeat = size / chunk;
            c.add("cache1", move || cache_seal(repeat, 1));
            c.add("cache2", move || cache_seal(repeat, 2));
            let r = c.run(size, if quick { 5 } else { 15 });
            let speed = |a: usize| {
                format!(
                    "{:.2} | {:.2} | {:.2}x",
                    r[a].1,
                    r[a + 1].1,
                    r[a + 1].1 / r[a].1
                )
            };
            line(format!(
                "| {} | {} | {} | {} | {} | {} | {:.2} | {:.2}x | {:.2}x | {:.2}x |",
                human(size),
                speed(0),
                speed(2),
                speed(4),
                speed(6),
                speed(8),
                r[10].1,
                r[10].1 / r[8].1,
                r[12].1 / r[11].1,
                r[14].1 / r[13].1,
            ));
        }
    }

    if wanted("chunk") {
        line(String::new());
        line("### Chunk size (seal and open of 64 MiB, single thread, GB/s)".into());
        line(String::new());
        line("| chunk | seal | open | ciphertext overhead |".into());
        line("|---|---|---|---|".into());
        let size = if quick { 16 * MIB } else { 64 * MIB };
        let input = vec![0x5Au8; size];
        let prepared: Vec<_> = [4 * KIB, 16 * KIB, 64 * KIB, 256 * KIB, MIB]
            .into_iter()
            .map(|chunk| {
                let (kas, hdr) = header(chunk, size);
                let (payload, opened) = sealed_payload(&kas, &hdr, &input);
                (chunk, hdr, payload, opened)
            })
            .collect();
        let mut c = Contest::new();
        const NAMES: [&str; 10] = [
            "s4", "o4", "s16", "o16", "s64", "o64", "s256", "o256", "s1m", "o1m",
        ];
        for (i, (_, hdr, payload, opened)) in prepared.iter().enumerate() {
            let input = &input;
            c.add(NAMES[2 * i], move || seal_stream(hdr, input, single));
            c.add(NAMES[2 * i + 1], move || {
                open_stream(opened, payload, single)
            });
        }
        let r = c.run(size, rounds);
        for (i, (chunk, _, _, _)) in prepared.iter().enumerate() {
            line(format!(
                "| {} | {:.2} | {:.2} | {:.3}% |",
                human(*chunk),
                r[2 * i].1,
                r[2 * i + 1].1,
                100.0 * 16.0 / *chunk as f64
            ));
        }
    }
    if markdown {
        let _ = io::stdout().write_all(out.as_bytes());
    }
}

fn human(bytes: usize) -> String {
    if bytes >= MIB {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{} KiB", bytes / KIB)
    }
}
