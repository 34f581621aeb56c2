//! Round trips: whatever is sealed opens to the same bytes, through every
//! reader and writer, for every length near a chunk boundary; headers and
//! policies decode and re-encode to the same bytes.

mod common;

use std::collections::BTreeSet;
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};

use common::{
    CHUNK, Outcome, STRIDE, header, kas, open_seekable, open_streaming, options, plaintext,
};
use irm_core::{
    EnvelopeBuilder, KasSecretKey, Metadata, OpenError, PayloadBackend, Policy, PolicyGrant,
    Recipient, Rights, SealError, SealedHeader, Sealer, SeekableOpener, StreamOptions, TAG_LEN,
    VerifiedHeader, seal_to_vec,
};
use proptest::collection::{btree_set, vec};
use proptest::prelude::*;

/// Plaintext lengths with extra weight on the chunk boundaries: 0, 1,
/// chunk−1, chunk, chunk+1, k·chunk and k·chunk±1. Up to 40 chunks, so that
/// two threads (batches of 32 chunks) go through several batches.
fn length() -> impl Strategy<Value = usize> {
    prop_oneof![
        1 => Just(0),
        1 => Just(1),
        1 => Just(CHUNK - 1),
        1 => Just(CHUNK),
        1 => Just(CHUNK + 1),
        2 => (2..=40usize).prop_map(|k| k * CHUNK),
        2 => (2..=40usize).prop_map(|k| k * CHUNK - 1),
        2 => (2..=40usize).prop_map(|k| k * CHUNK + 1),
        3 => 0..=40 * CHUNK,
    ]
}

/// The sealed length FORMAT.md §6 gives for a plaintext of `len` bytes.
fn payload_len(len: usize) -> usize {
    len + len.div_ceil(CHUNK).max(1) * TAG_LEN
}

/// Seals through the `Write` adaptor, writing `plain` in pieces of the given
/// sizes (cycled; zero-length writes included).
fn seal_in_pieces(
    verified: &VerifiedHeader,
    plain: &[u8],
    pieces: &[usize],
    options: StreamOptions,
) -> io::Result<Vec<u8>> {
    let mut sealer = Sealer::new(verified, Vec::new(), options)?;
    let mut rest = plain;
    for &size in pieces.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        if size == 0 {
            assert_eq!(sealer.write(&[])?, 0);
        }
        // At least one byte per piece, so that all-zero sizes still progress.
        let (mut piece, tail) = rest.split_at(size.clamp(1, rest.len()));
        while !piece.is_empty() {
            let n = sealer.write(piece)?;
            piece = &piece[n..];
        }
        rest = tail;
    }
    sealer.finish()
}

fn expect_opened(outcome: Outcome, plain: &[u8], what: &str) -> Result<(), TestCaseError> {
    match outcome {
        Outcome::Opened(got) => {
            prop_assert!(
                got == plain,
                "{what}: opened {} bytes that differ from the {} sealed",
                got.len(),
                plain.len()
            );
            Ok(())
        }
        other => Err(TestCaseError::fail(format!("{what}: {other:?}"))),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn streaming_open_returns_what_the_sealer_wrote(
        len in length(),
        seed in any::<u64>(),
        declared in any::<bool>(),
        seal_threads in 1usize..=2,
        pieces in vec(0..3 * CHUNK, 1..8),
    ) {
        let plain = plaintext(len, seed);
        let verified = header(declared.then_some(len as u64));
        let sealed = seal_in_pieces(&verified, &plain, &pieces, options(seal_threads))?;
        let header_len = verified.header().encoded_len();
        prop_assert_eq!(sealed.len(), header_len + payload_len(len));
        if declared {
            prop_assert_eq!(verified.sealed_len(), Some(sealed.len() as u64));
        } else {
            prop_assert_eq!(verified.sealed_len(), None);
        }
        for threads in [1, 2] {
            let what = format!("sealed on {seal_threads} thread(s), opened on {threads}");
            expect_opened(open_streaming(&sealed, kas(), options(threads)), &plain, &what)?;
        }
    }

    #[test]
    fn sealer_and_seal_to_vec_write_the_same_envelope(
        len in length(),
        seed in any::<u64>(),
        declared in any::<bool>(),
        pieces in vec(0..3 * CHUNK, 1..8),
    ) {
        let plain = plaintext(len, seed);
        let verified = header(declared.then_some(len as u64));
        let streamed = seal_in_pieces(&verified, &plain, &pieces, options(1))?;
        for threads in [1, 2] {
            let in_memory = seal_to_vec(&verified, &plain, options(threads))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(in_memory.len(), streamed.len());
            // Same header, so same payload key and nonces: byte for byte equal.
            prop_assert!(in_memory == streamed, "seal_to_vec on {} thread(s) differs", threads);
            expect_opened(open_streaming(&in_memory, kas(), options(1)), &plain, "seal_to_vec")?;
        }

        // A separately built header (fresh keys) gives different bytes with the
        // same layout: same header length, same payload length.
        let other = header(declared.then_some(len as u64));
        let other_sealed = seal_to_vec(&other, &plain, options(1))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(other.header().encoded_len(), verified.header().encoded_len());
        prop_assert_eq!(other_sealed.len(), streamed.len());
        let at = verified.header().encoded_len();
        prop_assert!(other_sealed[at..] != streamed[at..], "two files share a payload key");
    }

    #[test]
    fn seekable_opener_reads_whole_file_and_random_ranges(
        len in length(),
        seed in any::<u64>(),
        declared in any::<bool>(),
        reads in vec((any::<u64>(), 0..3 * CHUNK, 0u8..3), 1..12),
    ) {
        let plain = plaintext(len, seed);
        let verified = header(declared.then_some(len as u64));
        let sealed = seal_to_vec(&verified, &plain, options(1))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        for backend in [PayloadBackend::Fast, PayloadBackend::Portable] {
            expect_opened(open_seekable(&sealed, kas(), backend), &plain, "whole file")?;
        }

        let mut input = Cursor::new(&sealed[..]);
        let sealed_header = SealedHeader::read_from(&mut input)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let key = kas().unwrap(&sealed_header).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let opened = sealed_header.verify(key).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut opener = SeekableOpener::new(&opened, input, PayloadBackend::default())?;
        prop_assert_eq!(opener.plaintext_len(), len as u64);

        let mut position = 0u64;
        for (raw, want, how) in reads {
            // Offsets up to two chunks past the end: seeking there is allowed.
            let offset = raw % (len as u64 + 2 * CHUNK as u64 + 1);
            let target = match how {
                0 => SeekFrom::Start(offset),
                1 => SeekFrom::Current(offset as i64 - position as i64),
                _ => SeekFrom::End(offset as i64 - len as i64),
            };
            prop_assert_eq!(opener.seek(target)?, offset);
            let mut got = vec![0u8; want];
            let mut filled = 0;
            while filled < want {
                match opener.read(&mut got[filled..])? {
                    0 => break,
                    n => filled += n,
                }
            }
            got.truncate(filled);
            let start = (offset as usize).min(len);
            let end = (offset as usize).saturating_add(want).min(len);
            prop_assert!(
                got == plain[start..end],
                "read of {} at {} ({:?}) gave the wrong bytes", want, offset, target
            );
            position = offset + filled as u64;
        }
    }
}

/// A printable recipient name, user or group, as `Recipient::parse` accepts.
fn recipient() -> impl Strategy<Value = Recipient> {
    "@?[a-zA-Z0-9._@é中-]{1,16}"
        .prop_filter_map("not a valid recipient", |name| Recipient::parse(&name).ok())
}

fn grant() -> impl Strategy<Value = PolicyGrant> {
    // Rights may carry bits this version does not know: they must survive.
    (btree_set(recipient(), 1..5), 1..=u32::MAX).prop_map(|(recipients, bits)| PolicyGrant {
        recipients,
        rights: Rights::from_bits_retain(bits),
    })
}

fn random_policy() -> impl Strategy<Value = Policy> {
    (
        vec(grant(), 1..6),
        proptest::option::of(any::<u64>()),
        proptest::option::of(any::<u64>()),
        any::<u32>(),
        any::<bool>(),
        proptest::option::of("\\PC{0,40}"),
    )
        .prop_filter_map(
            "not a valid policy",
            |(grants, nb, na, lease, wm, label)| {
                Policy::builder()
                    .grants(grants)
                    .not_before(nb)
                    .not_after(na)
                    .max_lease_secs(lease)
                    .watermark_required(wm)
                    .classification(label)
                    .build()
                    .ok()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn header_encode_decode_encode_is_identity(
        policy in random_policy(),
        issuer in proptest::option::of("\\PC{0,30}"),
        servers in 1usize..=3,
        file_name in proptest::option::of("[^/\\pC]{1,30}"),
        // FORMAT.md §6.2: a declared length is at most 2^48 (above it is
        // refused, tested in header.rs and by declared_length_over_limit).
        declared in proptest::option::of(0..=1u64 << 48),
        created in any::<u64>(),
    ) {
        let keys: Vec<KasSecretKey> = (0..servers)
            .map(|_| KasSecretKey::generate())
            .collect::<Result<_, _>>()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let metadata = Metadata {
            file_name,
            media_type: Some("application/octet-stream".into()),
            plaintext_len: declared,
        };
        let mut builder = EnvelopeBuilder::new(policy.clone())
            .chunk_len(CHUNK as u32)
            .created_at_unix(created)
            .metadata(metadata.clone());
        for (i, key) in keys.iter().enumerate() {
            builder = builder.key_server(format!("https://kas{i}.test"), key.public_key());
        }
        if let Some(issuer) = &issuer {
            builder = builder.issuer(issuer.clone());
        }
        let verified = builder.build().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let original = verified.header();
        let bytes = original.to_bytes();
        prop_assert_eq!(bytes.len(), original.encoded_len());

        let (decoded, used) = SealedHeader::parse(&bytes)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(&decoded, original);
        prop_assert!(decoded.to_bytes() == bytes, "the header re-encodes differently");
        prop_assert_eq!(decoded.policy(), &policy);
        prop_assert_eq!(decoded.issuer(), issuer.as_deref());
        prop_assert_eq!(decoded.created_at_unix(), created);
        prop_assert_eq!(decoded.chunk_len(), CHUNK as u32);
        prop_assert_eq!(decoded.key_access().len(), servers);

        // Every key server can open it, and the metadata comes back.
        for key in &keys {
            let content = key.unwrap(&decoded).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let reopened = decoded.clone().verify(content)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(reopened.metadata(), &metadata);
        }
    }
}

#[test]
fn policy_in_header_is_canonical_whatever_the_grant_order() {
    let grant = |names: &[&str], rights| PolicyGrant {
        recipients: names
            .iter()
            .map(|n| Recipient::parse(n).unwrap())
            .collect::<BTreeSet<_>>(),
        rights,
    };
    let a = grant(&["@agents", "zed"], Rights::VIEW);
    let b = grant(&["@supervisors"], Rights::VIEW | Rights::PRINT);
    let c = grant(&["alice"], Rights::from_bits_retain(1 << 30 | 1));
    let forward = Policy::builder()
        .grants(vec![a.clone(), b.clone(), c.clone()])
        .max_lease_secs(60)
        .build();
    let backward = Policy::builder()
        .grants(vec![c, b, a.clone(), a])
        .max_lease_secs(60)
        .build();
    let (forward, backward) = (forward.unwrap(), backward.unwrap());
    assert_eq!(forward, backward);

    // File ids are fresh, so the two headers differ; each must carry the
    // canonical policy, and the same number of bytes for it.
    let mut bound_lens = Vec::new();
    for policy in [forward.clone(), backward] {
        let verified = EnvelopeBuilder::new(policy)
            .key_server("https://kas.test", kas().public_key())
            .chunk_len(CHUNK as u32)
            .build()
            .unwrap();
        let (decoded, _) = SealedHeader::parse(&verified.header().to_bytes()).unwrap();
        assert_eq!(decoded.policy(), &forward);
        bound_lens.push(decoded.bound_end());
    }
    assert_eq!(bound_lens[0], bound_lens[1]);
}

fn seal_error(err: &io::Error) -> Option<&SealError> {
    err.get_ref().and_then(|inner| inner.downcast_ref())
}

#[test]
fn sealer_refuses_to_finish_when_the_declared_length_differs() {
    for (declared, written) in [(100u64, 99usize), (100, 101), (0, 1), (1, 0), (2048, 1024)] {
        let verified = header(Some(declared));
        let mut sealer = Sealer::new(&verified, Vec::new(), options(1)).unwrap();
        // Writing past the declared length may be refused at once; writing
        // less can only be noticed at `finish()`.
        let err = match sealer.write_all(&plaintext(written, 7)) {
            Err(err) => {
                assert!(
                    written as u64 > declared,
                    "declared {declared}, wrote {written}"
                );
                err
            }
            Ok(()) => sealer.finish().expect_err("a length mismatch must fail"),
        };
        assert!(
            matches!(
                seal_error(&err),
                Some(SealError::LengthMismatch { declared: d, written: w })
                    if *d == declared && *w == written as u64
            ),
            "declared {declared}, wrote {written}: {err:?}"
        );

        let err = seal_to_vec(&verified, &plaintext(written, 7), options(1))
            .expect_err("a length mismatch must fail");
        assert!(
            matches!(err, SealError::LengthMismatch { declared: d, written: w }
                if d == declared && w == written as u64),
            "seal_to_vec, declared {declared}, wrote {written}: {err:?}"
        );
    }
}

#[test]
fn sealer_accepts_the_declared_length_exactly() {
    for len in [0usize, 1, CHUNK, 3 * CHUNK + 5] {
        let verified = header(Some(len as u64));
        let mut sealer = Sealer::new(&verified, Vec::new(), options(1)).unwrap();
        sealer.write_all(&plaintext(len, 1)).unwrap();
        let sealed = sealer.finish().unwrap();
        assert_eq!(
            Some(sealed.len() as u64),
            verified.sealed_len(),
            "length {len}"
        );
    }
}

/// A sealer dropped without `finish()` leaves the final chunk unwritten:
/// every reader must call that truncated, never a short file.
#[test]
fn dropping_the_sealer_without_finish_leaves_a_truncated_file() {
    for len in [0usize, 1, CHUNK, CHUNK + 1, 2 * CHUNK + 500, 40 * CHUNK] {
        for declared in [false, true] {
            for threads in [1, 2] {
                let verified = header(declared.then_some(len as u64));
                let plain = plaintext(len, 3);
                let mut sealed = Vec::new();
                {
                    let mut sealer = Sealer::new(&verified, &mut sealed, options(threads)).unwrap();
                    sealer.write_all(&plain).unwrap();
                    sealer.flush().unwrap();
                    // Dropped here, without `finish()`.
                }
                let case = format!("{len} bytes, declared {declared}, {threads} thread(s)");
                assert!(sealed.len() < verified.header().encoded_len() + payload_len(len));

                for open_threads in [1, 2] {
                    let outcome = open_streaming(&sealed, kas(), options(open_threads));
                    assert!(
                        matches!(outcome.payload_error(), Some(OpenError::Truncated)),
                        "{case}, opened on {open_threads}: {outcome:?}"
                    );
                    assert!(plain.starts_with(outcome.released()), "{case}");
                }

                let outcome = open_seekable(&sealed, kas(), PayloadBackend::default());
                if declared {
                    assert!(
                        matches!(outcome.payload_error(), Some(OpenError::Truncated)),
                        "{case}, seekable: {outcome:?}"
                    );
                } else {
                    // Without a declared length the seekable reader cannot tell
                    // a missing chunk from a damaged one, but it must refuse.
                    assert!(
                        matches!(
                            outcome.payload_error(),
                            Some(
                                OpenError::Truncated | OpenError::ChunkAuthenticationFailed { .. }
                            )
                        ),
                        "{case}, seekable: {outcome:?}"
                    );
                }
                assert!(plain.starts_with(outcome.released()), "{case}");
            }
        }
    }
}

#[test]
fn seeking_before_the_start_is_an_invalid_position() {
    let plain = plaintext(3 * CHUNK, 5);
    let verified = header(Some(plain.len() as u64));
    let sealed = seal_to_vec(&verified, &plain, options(1)).unwrap();
    let mut input = Cursor::new(&sealed[..]);
    let sealed_header = SealedHeader::read_from(&mut input).unwrap();
    let opened = sealed_header
        .clone()
        .verify(kas().unwrap(&sealed_header).unwrap())
        .unwrap();
    let mut opener = SeekableOpener::new(&opened, input, PayloadBackend::default()).unwrap();
    opener.seek(SeekFrom::Start(10)).unwrap();
    for bad in [
        SeekFrom::Current(-11),
        SeekFrom::End(-(3 * CHUNK as i64) - 1),
    ] {
        let err = opener.seek(bad).expect_err("a negative position");
        assert!(
            matches!(OpenError::from_io(&err), Some(OpenError::InvalidPosition)),
            "{bad:?}: {err:?}"
        );
    }
    // A failed seek leaves the position alone.
    let mut byte = [0u8; 1];
    opener.read_exact(&mut byte).unwrap();
    assert_eq!(byte[0], plain[10]);
}

/// Memory use is bounded whatever the file size: the sealer writes sealed
/// chunks out once a batch is full (16 chunks per thread), and never holds
/// back more than a batch.
#[test]
fn sealer_writes_chunks_out_as_it_goes() {
    const CHUNKS: usize = 2000;
    const MAX_BATCH: usize = 16 * 2;
    for threads in [1, 2] {
        let verified = header(None);
        let header_len = verified.header().encoded_len();
        let mut sink = Vec::new();
        let mut sealer = Sealer::new(&verified, &mut sink, options(threads)).unwrap();
        for piece in plaintext(CHUNKS * CHUNK + 1, 9).chunks(10_000) {
            sealer.write_all(piece).unwrap();
        }
        drop(sealer);
        let payload = sink.len() - header_len;
        assert_eq!(
            payload % STRIDE,
            0,
            "{threads} thread(s): a partial chunk was written"
        );
        assert!(
            payload >= (CHUNKS - MAX_BATCH) * STRIDE,
            "{threads} thread(s): only {} of {CHUNKS} chunks were written out",
            payload / STRIDE
        );
    }
}
