//! The payload's two AES-GCM backends and any thread count write the same
//! bytes, so a file sealed one way opens every other way.

mod common;

use std::io::Write;

use common::{
    CHUNK, Outcome, header_with_chunk_len, kas, open_seekable, open_streaming, plaintext,
};
use irm_core::{PayloadBackend, Sealer, StreamOptions, VerifiedHeader, seal_to_vec};

/// Seals through the `Write` adaptor, in 10 000-byte writes (not a multiple
/// of any chunk length).
fn seal_streaming(verified: &VerifiedHeader, plain: &[u8], options: StreamOptions) -> Vec<u8> {
    let mut sealer = Sealer::new(verified, Vec::new(), options).expect("writing to a Vec");
    for piece in plain.chunks(10_000) {
        sealer.write_all(piece).expect("writing to a Vec");
    }
    sealer.finish().expect("the declared length was written")
}

/// Seals `plain` with `options` both ways and checks the two agree.
fn seal_both_ways(verified: &VerifiedHeader, plain: &[u8], options: StreamOptions) -> Vec<u8> {
    let streamed = seal_streaming(verified, plain, options);
    let in_memory = seal_to_vec(verified, plain, options).expect("the declared length");
    assert!(
        streamed == in_memory,
        "{} bytes, {options:?}: Sealer and seal_to_vec differ",
        plain.len()
    );
    streamed
}

fn assert_opens(file: &[u8], plain: &[u8], options: StreamOptions, what: &str) {
    let outcome = open_streaming(file, kas(), options);
    assert!(
        matches!(&outcome, Outcome::Opened(got) if got == plain),
        "{what}, streaming with {options:?}: {outcome:?}"
    );
    let outcome = open_seekable(file, kas(), options.backend);
    assert!(
        matches!(&outcome, Outcome::Opened(got) if got == plain),
        "{what}, seekable with {:?}: {outcome:?}",
        options.backend
    );
}

const LENGTHS: [usize; 7] = [0, 1, 1023, 1024, 1025, 5000, 1 << 20];

#[cfg(feature = "aws-lc")]
#[test]
fn fast_and_portable_backends_write_the_same_bytes_and_open_each_other() {
    use irm_core::DEFAULT_CHUNK_LEN;
    for chunk_len in [CHUNK as u32, DEFAULT_CHUNK_LEN] {
        for len in LENGTHS {
            let plain = plaintext(len, len as u64);
            let verified = header_with_chunk_len(kas(), chunk_len, Some(len as u64));
            for threads in [1, 2] {
                let fast = StreamOptions {
                    threads,
                    backend: PayloadBackend::Fast,
                };
                let portable = StreamOptions {
                    threads,
                    backend: PayloadBackend::Portable,
                };
                let by_fast = seal_both_ways(&verified, &plain, fast);
                let by_portable = seal_both_ways(&verified, &plain, portable);
                let what = format!("{len} bytes in {chunk_len}-byte chunks, {threads} thread(s)");
                assert!(by_fast == by_portable, "{what}: the backends differ");
                assert_opens(&by_fast, &plain, portable, &format!("{what}, sealed fast"));
                assert_opens(
                    &by_portable,
                    &plain,
                    fast,
                    &format!("{what}, sealed portable"),
                );
            }
        }
    }
}

#[test]
fn one_and_four_threads_write_the_same_bytes() {
    // 300 KiB in 1 KiB chunks is several batches for four threads.
    for len in LENGTHS.into_iter().chain([300 * CHUNK + 7]) {
        let plain = plaintext(len, !(len as u64));
        for declared in [None, Some(len as u64)] {
            let verified = header_with_chunk_len(kas(), CHUNK as u32, declared);
            let options = |threads| StreamOptions {
                threads,
                backend: PayloadBackend::default(),
            };
            let what = format!("{len} bytes, declared {declared:?}");
            let one = seal_both_ways(&verified, &plain, options(1));
            let four = seal_both_ways(&verified, &plain, options(4));
            assert!(
                one == four,
                "{what}: the output depends on the thread count"
            );
            assert_opens(&one, &plain, options(4), &what);
        }
    }
}

/// The several-thread write path (each write copied in while earlier chunks
/// are sealed, the buffer written out once full) against the one-thread
/// path, with writes of every awkward size: smaller than a chunk, ending
/// on and off chunk boundaries, and larger than the whole buffer.
#[test]
fn two_threads_write_the_same_bytes_for_any_write_sizes() {
    let len = 700 * CHUNK + 333;
    let plain = plaintext(len, 77);
    let verified = header_with_chunk_len(kas(), CHUNK as u32, None);
    let options = |threads| StreamOptions {
        threads,
        backend: PayloadBackend::default(),
    };
    let one = seal_to_vec(&verified, &plain, options(1)).expect("sealing in memory");
    let pieces: [&[usize]; 4] = [
        &[1],
        &[CHUNK, 3 * CHUNK + 1, 17],
        &[300 * CHUNK, 1, CHUNK - 1],
        &[5 * CHUNK - 3, 200 * CHUNK + 5],
    ];
    for sizes in pieces {
        let mut sealer = Sealer::new(&verified, Vec::new(), options(2)).expect("a sealer");
        let mut rest = &plain[..];
        for &size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (now, later) = rest.split_at(size.min(rest.len()));
            sealer.write_all(now).expect("writing");
            rest = later;
        }
        let two = sealer.finish().expect("finishing");
        assert!(
            one == two,
            "writes of {sizes:?}: two threads wrote other bytes"
        );
    }
    assert_opens(&one, &plain, options(2), "700 chunks");
}
