//! Tampering: every single-bit flip, every truncation, reordered, repeated,
//! dropped, spliced and appended chunks, and forged key-access entries must
//! all fail, with the error class of the damaged region, and release no
//! plaintext from the damaged chunk onward.

mod common;

use std::ops::Range;

use common::{
    CHUNK, Outcome, STRIDE, Source, header_for, kas, open_header, open_seekable, open_streaming,
    open_streaming_from, options, plaintext, read_payload, read_released,
};
use irm_core::{
    FormatError, KasSecretKey, OpenError, PayloadBackend, SeekableOpener, UnwrapError,
    VerifiedHeader, WRAPPED_KEY_LEN, seal_to_vec,
};

/// 2.5 KiB: two full chunks and a half one.
const PLAIN_LEN: usize = 2 * CHUNK + CHUNK / 2;

/// A small sealed file and where its parts lie.
struct Fixture {
    plain: Vec<u8>,
    sealed: Vec<u8>,
    header_len: usize,
    bound_end: usize,
    wrapped_end: usize,
    key_id: Range<usize>,
    ephemeral: Range<usize>,
}

fn find(haystack: &[u8], needle: &[u8]) -> Range<usize> {
    let at = haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the value is in the header");
    assert!(
        haystack[at + 1..]
            .windows(needle.len())
            .all(|w| w != needle),
        "the value occurs once"
    );
    at..at + needle.len()
}

impl Fixture {
    fn new(len: usize, declared: bool) -> Self {
        Self::sealed_to(kas(), len, declared, 0x5EED)
    }

    fn sealed_to(kas: &KasSecretKey, len: usize, declared: bool, seed: u64) -> Self {
        let plain = plaintext(len, seed);
        let verified = header_for(kas, declared.then_some(len as u64));
        let sealed = seal_to_vec(&verified, &plain, options(1)).expect("sealing works");
        let header = verified.header();
        assert_eq!(header.key_access().len(), 1);
        let bound_end = header.bound_end();
        let header_len = header.encoded_len();
        Self {
            key_id: find(&sealed[..bound_end], &kas.key_id().0),
            ephemeral: find(
                &sealed[..bound_end],
                &header.key_access()[0].ephemeral_public,
            ),
            wrapped_end: bound_end + WRAPPED_KEY_LEN,
            plain,
            sealed,
            header_len,
            bound_end,
        }
    }

    fn chunk_count(&self) -> usize {
        (self.sealed.len() - self.header_len).div_ceil(STRIDE)
    }

    /// The sealed bytes of chunk `i`.
    fn chunk(&self, i: usize) -> &[u8] {
        let start = self.header_len + i * STRIDE;
        &self.sealed[start..(start + STRIDE).min(self.sealed.len())]
    }

    fn header_bytes(&self) -> &[u8] {
        &self.sealed[..self.header_len]
    }

    /// The header followed by the given chunks, in that order.
    fn with_chunks(&self, order: &[usize]) -> Vec<u8> {
        let mut out = self.header_bytes().to_vec();
        for &i in order {
            out.extend_from_slice(self.chunk(i));
        }
        out
    }

    fn region(&self, offset: usize) -> Region {
        match offset {
            0..8 => Region::Magic,
            8..10 => Region::Version,
            10..14 => Region::BoundLen,
            o if self.key_id.contains(&o) => Region::KeyId,
            o if self.ephemeral.contains(&o) => Region::Ephemeral,
            o if o < self.bound_end => Region::Bound,
            o if o < self.wrapped_end => Region::WrappedKey,
            o if o < self.wrapped_end + 4 => Region::MetadataLen,
            o if o < self.header_len => Region::Metadata,
            o => Region::Chunk((o - self.header_len) / STRIDE),
        }
    }
}

/// The parts of a sealed file, by what damage to them must cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Region {
    Magic,
    Version,
    BoundLen,
    /// The key server key id inside the bound record.
    KeyId,
    /// The ephemeral public key inside the bound record.
    Ephemeral,
    /// The rest of the bound record.
    Bound,
    WrappedKey,
    MetadataLen,
    Metadata,
    Chunk(usize),
}

impl Region {
    /// The plaintext that may be released before the damage is detected.
    fn releasable(self) -> usize {
        match self {
            Region::Chunk(i) => i * CHUNK,
            _ => 0,
        }
    }
}

/// Whether `outcome` is the error class damage to `region` must cause.
fn expected_failure(region: Region, outcome: &Outcome) -> bool {
    use FormatError as F;
    use UnwrapError as U;
    let header_format_error = |e: &FormatError| {
        matches!(
            e,
            F::CorruptHeader { .. }
                | F::Truncated { .. }
                | F::LimitExceeded { .. }
                | F::UnknownCriticalField { .. }
                | F::Policy(_)
        )
    };
    match (region, outcome) {
        (Region::Magic, Outcome::Format(F::BadMagic)) => true,
        (Region::Version, Outcome::Format(F::UnsupportedVersion { version })) => *version != 1,
        (Region::BoundLen | Region::Bound, Outcome::Format(e)) => header_format_error(e),
        // The hash covers the bound record, so a change that still parses
        // makes the key wrap fail to authenticate.
        (Region::BoundLen | Region::Bound, Outcome::Unwrap(U::BindingFailed)) => true,
        (Region::KeyId, Outcome::Unwrap(U::NoMatchingKey { .. })) => true,
        (Region::Ephemeral | Region::WrappedKey, Outcome::Unwrap(U::BindingFailed)) => true,
        (
            Region::MetadataLen,
            Outcome::Format(
                F::Truncated { .. } | F::LimitExceeded { .. } | F::CorruptHeader { .. },
            ),
        ) => true,
        (
            Region::MetadataLen | Region::Metadata,
            Outcome::Verify(OpenError::MetadataAuthenticationFailed),
        ) => true,
        (Region::Chunk(i), outcome) => matches!(
            outcome.payload_error(),
            Some(OpenError::ChunkAuthenticationFailed { index }) if *index == i as u64
        ),
        _ => false,
    }
}

/// Checks one damaged copy: it failed, and released at most a prefix of the
/// plaintext that ends before the damage.
fn check(
    fx: &Fixture,
    what: &str,
    outcome: &Outcome,
    expected: bool,
    releasable: usize,
) -> Vec<String> {
    let mut problems = Vec::new();
    if !expected {
        problems.push(format!("{what}: unexpected outcome {outcome:?}"));
    }
    let released = outcome.released();
    if !fx.plain.starts_with(released) || released.len() > releasable {
        problems.push(format!(
            "{what}: released {} bytes, at most {releasable} of the plaintext allowed",
            released.len()
        ));
    }
    problems
}

fn assert_no_problems(problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{} problems, the first ones:\n{}",
        problems.len(),
        problems[..problems.len().min(20)].join("\n")
    );
}

/// Runs `check` on every item of `items`, spread over the available cores,
/// and collects the problems it reports.
fn in_parallel(items: Range<usize>, check: impl Fn(usize) -> Vec<String> + Sync) -> Vec<String> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let per_thread = items.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = items
            .clone()
            .step_by(per_thread)
            .map(|first| {
                let range = first..(first + per_thread).min(items.end);
                let check = &check;
                scope.spawn(move || range.flat_map(check).collect::<Vec<_>>())
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a checking thread panicked"))
            .collect()
    })
}

/// Flips every bit of the given bytes of `fx.sealed` in turn and runs `open`
/// on each copy.
fn every_bit_flip(
    fx: &Fixture,
    bytes: Range<usize>,
    open: impl Fn(&[u8]) -> Outcome + Sync,
) -> Vec<String> {
    in_parallel(bytes, |byte| {
        let region = fx.region(byte);
        let mut problems = Vec::new();
        for bit in 0..8 {
            let mut copy = fx.sealed.clone();
            copy[byte] ^= 1 << bit;
            let outcome = open(&copy);
            let what = format!("bit {bit} of byte {byte} ({region:?})");
            let expected = expected_failure(region, &outcome);
            problems.extend(check(fx, &what, &outcome, expected, region.releasable()));
        }
        problems
    })
}

#[test]
fn every_single_bit_flip_fails_with_the_error_of_its_region() {
    let fx = Fixture::new(PLAIN_LEN, true);
    assert_eq!(fx.chunk_count(), 3);
    // Every region is present, so every arm above is exercised.
    let regions: std::collections::BTreeSet<String> = (0..fx.sealed.len())
        .map(|o| format!("{:?}", fx.region(o)))
        .collect();
    assert_eq!(regions.len(), 12, "{regions:?}");

    let problems = every_bit_flip(&fx, 0..fx.sealed.len(), |copy| {
        open_streaming(copy, kas(), options(1))
    });
    assert_no_problems(&problems);
}

/// The streaming reader over a payload whose header is already verified.
fn read_streaming(verified: &VerifiedHeader, payload: &[u8], threads: usize) -> Outcome {
    read_streaming_from(verified, payload, threads, Source::Read)
}

fn read_streaming_from(
    verified: &VerifiedHeader,
    payload: &[u8],
    threads: usize,
    source: Source,
) -> Outcome {
    match read_payload(verified, payload, options(threads), source) {
        Ok(plain) => Outcome::Opened(plain),
        Err((error, released)) => Outcome::Payload { error, released },
    }
}

/// The seekable reader over the payload of `file`, whose header is already
/// verified and `header_len` bytes long.
fn read_seekable(verified: &VerifiedHeader, file: &[u8], header_len: usize) -> Outcome {
    let mut input = std::io::Cursor::new(file);
    input.set_position(header_len as u64);
    let result = SeekableOpener::new(verified, input, PayloadBackend::default())
        .map_err(|error| (error, Vec::new()))
        .and_then(read_released);
    match result {
        Ok(plain) => Outcome::Opened(plain),
        Err((error, released)) => Outcome::Payload { error, released },
    }
}

#[test]
fn every_payload_bit_flip_fails_with_two_threads_and_when_seeking() {
    let fx = Fixture::new(PLAIN_LEN, true);
    let (verified, _) = open_header(&fx.sealed, kas()).expect("the fixture opens");
    let payload = fx.header_len..fx.sealed.len();
    let problems = every_bit_flip(&fx, payload.clone(), |copy| {
        read_streaming(&verified, &copy[fx.header_len..], 2)
    });
    assert_no_problems(&problems);
    for (threads, source) in [(1, Source::InMemory), (2, Source::SmallBufReader)] {
        let problems = every_bit_flip(&fx, payload.clone(), |copy| {
            read_streaming_from(&verified, &copy[fx.header_len..], threads, source)
        });
        assert_no_problems(&problems);
    }
    let problems = every_bit_flip(&fx, payload, |copy| {
        read_seekable(&verified, copy, fx.header_len)
    });
    assert_no_problems(&problems);
}

const READERS: [&str; 5] = [
    "streaming, 1 thread",
    "streaming, 2 threads",
    "seekable",
    "streaming from memory, 1 thread",
    "streaming through a small BufReader, 2 threads",
];

/// The whole open path through all the readers: the streaming one on one
/// and two threads, from a plain `Read` and from a `BufRead`, and the
/// seekable one.
fn open_all_ways(file: &[u8], kas: &KasSecretKey) -> [(&'static str, Outcome); 5] {
    [
        (
            READERS[0],
            open_streaming_from(file, kas, options(1), Source::Read),
        ),
        (
            READERS[1],
            open_streaming_from(file, kas, options(2), Source::Read),
        ),
        (
            READERS[2],
            open_seekable(file, kas, PayloadBackend::default()),
        ),
        (
            READERS[3],
            open_streaming_from(file, kas, options(1), Source::InMemory),
        ),
        (
            READERS[4],
            open_streaming_from(file, kas, options(2), Source::SmallBufReader),
        ),
    ]
}

/// Cuts `fx.sealed` at every length and checks each prefix with all three
/// readers. Prefixes that keep the whole header reuse one verified header
/// (the key server unwrap is what makes an open expensive).
fn every_truncation(fx: &Fixture, payload_failure: fn(&OpenError) -> bool) -> Vec<String> {
    let (verified, _) = open_header(&fx.sealed, kas()).expect("the fixture opens");
    let declared = verified.metadata().plaintext_len;
    in_parallel(0..fx.sealed.len(), |cut| {
        let file = &fx.sealed[..cut];
        let outcomes = if cut < fx.header_len {
            open_all_ways(file, kas()).into()
        } else {
            let payload = &file[fx.header_len..];
            let mut outcomes = vec![
                (READERS[0], read_streaming(&verified, payload, 1)),
                (READERS[2], read_seekable(&verified, file, fx.header_len)),
                (
                    READERS[3],
                    read_streaming_from(&verified, payload, 1, Source::InMemory),
                ),
                (
                    READERS[4],
                    read_streaming_from(&verified, payload, 2, Source::SmallBufReader),
                ),
            ];
            // Without a declared length a two-thread opener allocates and
            // wipes a 128-chunk buffer, about 1 ms per open in a debug build;
            // it runs the same code as one thread on a payload this small.
            if declared.is_some() {
                outcomes.push((READERS[1], read_streaming(&verified, payload, 2)));
            }
            outcomes
        };
        let mut problems = Vec::new();
        for (reader, outcome) in outcomes {
            let expected = match cut {
                0 => matches!(outcome, Outcome::Format(FormatError::BadMagic)),
                c if c < fx.header_len => {
                    matches!(outcome, Outcome::Format(FormatError::Truncated { .. }))
                }
                _ => outcome.payload_error().is_some_and(payload_failure),
            };
            // Nothing from the chunk that was cut may be released.
            let releasable = cut.saturating_sub(fx.header_len) / STRIDE * CHUNK;
            let what = format!(
                "{}-byte plaintext cut to {cut} bytes, {reader}",
                fx.plain.len()
            );
            problems.extend(check(fx, &what, &outcome, expected, releasable));
        }
        problems
    })
}

#[test]
fn every_truncation_fails_as_truncated() {
    for len in [0, PLAIN_LEN, 3 * CHUNK] {
        let fx = Fixture::new(len, true);
        assert_no_problems(&every_truncation(&fx, truncated));
    }
}

/// Without a declared length, a reader cannot always say "truncated", but it
/// must never present a cut file as a shorter valid one.
#[test]
fn every_truncation_fails_without_a_declared_length() {
    for len in [0, 1, CHUNK, PLAIN_LEN, 3 * CHUNK] {
        let fx = Fixture::new(len, false);
        let problems = every_truncation(&fx, |e| {
            matches!(
                e,
                OpenError::Truncated | OpenError::ChunkAuthenticationFailed { .. }
            )
        });
        assert_no_problems(&problems);
    }
}

/// Runs the three readers on `file` and expects `want(reader)` from each.
fn expect_payload_error(
    fx: &Fixture,
    case: &str,
    file: &[u8],
    releasable: usize,
    want: impl Fn(&str, &OpenError) -> bool,
) {
    let mut problems = Vec::new();
    for (reader, outcome) in open_all_ways(file, kas()) {
        let expected = outcome.payload_error().is_some_and(|e| want(reader, e));
        problems.extend(check(
            fx,
            &format!("{case}, {reader}"),
            &outcome,
            expected,
            releasable,
        ));
    }
    assert_no_problems(&problems);
}

fn auth_failed(index: u64) -> impl Fn(&str, &OpenError) -> bool {
    move |_, e| matches!(e, OpenError::ChunkAuthenticationFailed { index: i } if *i == index)
}

#[test]
fn swapped_chunks_fail_at_the_first_swapped_position() {
    let fx = Fixture::new(PLAIN_LEN, true);
    expect_payload_error(
        &fx,
        "chunks 1 0 2",
        &fx.with_chunks(&[1, 0, 2]),
        0,
        auth_failed(0),
    );
    expect_payload_error(
        &fx,
        "chunks 0 2 1",
        &fx.with_chunks(&[0, 2, 1]),
        CHUNK,
        auth_failed(1),
    );
    expect_payload_error(
        &fx,
        "chunks 2 1 0",
        &fx.with_chunks(&[2, 1, 0]),
        0,
        auth_failed(0),
    );
}

fn trailing(e: &OpenError) -> bool {
    matches!(e, OpenError::TrailingData)
}

fn truncated(e: &OpenError) -> bool {
    matches!(e, OpenError::Truncated)
}

/// With a declared length, every reader names a length problem rather than
/// an altered chunk: the seekable reader compares lengths before reading, and
/// the streaming reader's buffer holds this whole three-chunk payload, so it
/// sees the length before it authenticates anything.
fn all_readers(kind: fn(&OpenError) -> bool) -> impl Fn(&str, &OpenError) -> bool {
    move |_, e| kind(e)
}

#[test]
fn a_repeated_chunk_is_trailing_data() {
    let fx = Fixture::new(PLAIN_LEN, true);
    for order in [[0, 0, 1, 2], [0, 1, 1, 2], [0, 1, 2, 2]] {
        let case = format!("chunks {order:?}");
        let file = fx.with_chunks(&order);
        expect_payload_error(&fx, &case, &file, 2 * CHUNK, all_readers(trailing));
    }
}

#[test]
fn a_dropped_chunk_is_truncation() {
    let fx = Fixture::new(PLAIN_LEN, true);
    // Dropping the final chunk leaves chunk 1, which authenticates, but not
    // as the last one.
    for order in [[1, 2], [0, 2], [0, 1]] {
        let case = format!("chunks {order:?}");
        let file = fx.with_chunks(&order);
        expect_payload_error(&fx, &case, &file, CHUNK, all_readers(truncated));
    }
}

#[test]
fn appended_bytes_are_trailing_data() {
    // A half-full and a full final chunk: the readers take different paths.
    for len in [PLAIN_LEN, 3 * CHUNK] {
        let fx = Fixture::new(len, true);
        let extra = [
            vec![0u8; 1],
            vec![0xA5; 15],
            vec![0; 16],
            vec![0x5A; 17],
            fx.chunk(0).to_vec(),
        ];
        for tail in extra {
            let mut file = fx.sealed.clone();
            file.extend_from_slice(&tail);
            let case = format!("{len}-byte plaintext and {} appended bytes", tail.len());
            let releasable = (fx.chunk_count() - 1) * CHUNK;
            expect_payload_error(&fx, &case, &file, releasable, |_, e| {
                matches!(e, OpenError::TrailingData)
            });
        }
    }
}

#[test]
fn a_chunk_from_a_file_sealed_under_another_key_is_refused() {
    let fx = Fixture::new(PLAIN_LEN, true);
    // Same plaintext, same length: only the keys differ.
    let other = Fixture::sealed_to(kas(), PLAIN_LEN, true, 0x5EED);
    assert_eq!(other.plain, fx.plain);
    for i in 0..fx.chunk_count() {
        let mut file = fx.sealed.clone();
        let start = fx.header_len + i * STRIDE;
        let end = (start + STRIDE).min(file.len());
        file[start..end].copy_from_slice(other.chunk(i));
        let case = format!("chunk {i} from another file");
        expect_payload_error(&fx, &case, &file, i * CHUNK, auth_failed(i as u64));
    }
}

#[test]
fn a_different_key_server_key_finds_no_entry() {
    let fx = Fixture::new(PLAIN_LEN, true);
    let stranger = KasSecretKey::generate().unwrap();
    let outcome = open_streaming(&fx.sealed, &stranger, options(1));
    assert!(
        matches!(&outcome, Outcome::Unwrap(UnwrapError::NoMatchingKey { key_id })
            if *key_id == stranger.key_id().to_string()),
        "{outcome:?}"
    );
}

#[test]
fn a_key_id_rewritten_to_another_server_does_not_unwrap() {
    let fx = Fixture::new(PLAIN_LEN, true);
    let other = KasSecretKey::generate().unwrap();
    let mut file = fx.sealed.clone();
    file[fx.key_id.clone()].copy_from_slice(&other.key_id().0);
    // The other server now finds an entry, but the wrap was not made for it
    // and the header hash has changed.
    let outcome = open_streaming(&file, &other, options(1));
    assert!(
        matches!(outcome, Outcome::Unwrap(UnwrapError::BindingFailed)),
        "{outcome:?}"
    );
    let outcome = open_streaming(&file, kas(), options(1));
    assert!(
        matches!(outcome, Outcome::Unwrap(UnwrapError::NoMatchingKey { .. })),
        "{outcome:?}"
    );
}

#[test]
fn a_low_order_ephemeral_key_is_refused() {
    let fx = Fixture::new(PLAIN_LEN, true);
    let mut order_eight = [0u8; 32];
    hex_into(
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        &mut order_eight,
    );
    let mut one = [0u8; 32];
    one[0] = 1;
    for point in [[0u8; 32], one, order_eight] {
        let mut file = fx.sealed.clone();
        file[fx.ephemeral.clone()].copy_from_slice(&point);
        let outcome = open_streaming(&file, kas(), options(1));
        assert!(
            matches!(outcome, Outcome::Unwrap(UnwrapError::NonContributory)),
            "{point:02x?}: {outcome:?}"
        );
    }
}

fn hex_into(text: &str, out: &mut [u8]) {
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex digits");
    }
}

/// The fixture itself opens, so every failure above is the tampering's doing.
#[test]
fn the_untouched_fixtures_open() {
    for (len, declared) in [(PLAIN_LEN, true), (3 * CHUNK, true), (PLAIN_LEN, false)] {
        let fx = Fixture::new(len, declared);
        for (reader, outcome) in open_all_ways(&fx.sealed, kas()) {
            assert!(
                matches!(&outcome, Outcome::Opened(plain) if *plain == fx.plain),
                "{len} bytes, {reader}: {outcome:?}"
            );
        }
    }
}

/// FORMAT.md §7: declared lengths above the limits are refused before any
/// allocation, as a limit and not as a truncated file.
#[test]
fn oversized_header_lengths_are_refused_as_over_the_limit() {
    let fx = Fixture::new(PLAIN_LEN, true);
    let meta_len_at = fx.wrapped_end;
    for (field, at, len) in [
        ("bound record", 10, 1024 * 1024 + 1),
        ("bound record", 10, u32::MAX),
        ("metadata", meta_len_at, 64 * 1024 + 17),
        ("metadata", meta_len_at, u32::MAX),
    ] {
        let mut file = fx.sealed.clone();
        file[at..at + 4].copy_from_slice(&len.to_be_bytes());
        let outcome = open_streaming(&file, kas(), options(1));
        assert!(
            matches!(outcome, Outcome::Format(FormatError::LimitExceeded { .. })),
            "{field} length {len}: {outcome:?}"
        );
    }
}

/// Two threads read batches of 32 chunks, each read overlapping the
/// decryption of the batch before: damage past the first batch, and cuts on
/// and between batch boundaries, are still named exactly, and nothing past
/// the damage is released.
#[test]
fn damage_past_the_first_batch_is_named_with_two_threads() {
    const CHUNKS: usize = 100;
    for declared in [true, false] {
        let fx = Fixture::new(CHUNKS * CHUNK + 300, declared);
        let at = |chunk: usize| fx.header_len + chunk * STRIDE;
        for chunk in [31, 32, 40, 64, 99, 100] {
            let mut file = fx.sealed.clone();
            file[at(chunk) + 5] ^= 0x10;
            let case = format!("declared {declared}: a bit of chunk {chunk} flipped");
            expect_payload_error(&fx, &case, &file, chunk * CHUNK, auth_failed(chunk as u64));
        }
        let mut order: Vec<usize> = (0..=CHUNKS).collect();
        order.swap(40, 41);
        let case = format!("declared {declared}: chunks 40 and 41 swapped");
        expect_payload_error(
            &fx,
            &case,
            &fx.with_chunks(&order),
            40 * CHUNK,
            auth_failed(40),
        );
        if declared {
            for cut in [at(64), at(70) + 100, at(96)] {
                let case = format!("declared: cut at byte {cut}");
                let releasable = (cut - fx.header_len) / STRIDE * CHUNK;
                expect_payload_error(
                    &fx,
                    &case,
                    &fx.sealed[..cut],
                    releasable,
                    all_readers(truncated),
                );
            }
            let mut order: Vec<usize> = (0..=CHUNKS).collect();
            order.push(50);
            let case = "declared: a copy of chunk 50 appended";
            expect_payload_error(
                &fx,
                case,
                &fx.with_chunks(&order),
                CHUNKS * CHUNK,
                all_readers(trailing),
            );
        }
    }
}
