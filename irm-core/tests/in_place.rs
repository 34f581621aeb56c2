//! The in-place and in-memory APIs agree with the streaming sealer and opener.

use std::io::Write;

use irm_core::{
    EnvelopeBuilder, KasSecretKey, Metadata, OpenError, PayloadBackend, Policy, PolicyGrant,
    Recipient, Rights, SealedHeader, Sealer, StreamOptions, VerifiedHeader, open_into, open_to_vec,
    opened_len, seal_in_place,
};

fn policy() -> Policy {
    Policy::builder()
        .grant(PolicyGrant {
            recipients: [Recipient::parse("@support").unwrap()].into(),
            rights: Rights::VIEW,
        })
        .max_lease_secs(600)
        .build()
        .unwrap()
}

/// An envelope for `@support` to view with 1 KiB chunks and `declared` as
/// its plaintext length.
fn header(kas: &KasSecretKey, declared: Option<u64>) -> VerifiedHeader {
    EnvelopeBuilder::new(policy())
        .key_server("https://kas.test", kas.public_key())
        .chunk_len(1024)
        .metadata(Metadata {
            plaintext_len: declared,
            ..Metadata::default()
        })
        .build()
        .unwrap()
}

#[test]
fn seal_in_place_matches_the_streaming_sealer_byte_for_byte() {
    let kas = KasSecretKey::generate().unwrap();
    for len in [0usize, 1, 1023, 1024, 1025, 4096, 10_000] {
        for threads in [1, 2] {
            let plaintext: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let header = header(&kas, Some(len as u64));
            let options = StreamOptions {
                threads,
                ..StreamOptions::default()
            };
            let mut streamed = Sealer::new(&header, Vec::new(), options).unwrap();
            streamed.write_all(&plaintext).unwrap();
            let streamed = streamed.finish().unwrap();

            let mut in_place = plaintext.clone();
            seal_in_place(&header, &mut in_place, options).unwrap();
            assert_eq!(in_place, streamed, "len {len} threads {threads}");
            assert_eq!(Some(in_place.len() as u64), header.sealed_len());

            let (parsed, header_len) = SealedHeader::parse(&in_place).unwrap();
            let verified = parsed.clone().verify(kas.unwrap(&parsed).unwrap()).unwrap();
            let opened = open_to_vec(&verified, &in_place[header_len..], options).unwrap();
            assert_eq!(&opened[..], &plaintext[..], "len {len} threads {threads}");
        }
    }
}

#[test]
fn seal_in_place_refuses_a_length_other_than_declared() {
    let kas = KasSecretKey::generate().unwrap();
    let header = EnvelopeBuilder::new(policy())
        .key_server("https://kas.test", kas.public_key())
        .metadata(Metadata {
            plaintext_len: Some(10),
            ..Metadata::default()
        })
        .build()
        .unwrap();
    let mut buf = vec![1u8; 11];
    assert!(seal_in_place(&header, &mut buf, StreamOptions::default()).is_err());
    assert_eq!(buf, vec![1u8; 11], "the buffer must be left as it was");
}

#[test]
fn open_to_vec_rejects_a_flipped_byte_and_releases_nothing() {
    let kas = KasSecretKey::generate().unwrap();
    let header = header(&kas, None);
    let mut sealed = vec![42u8; 5000];
    seal_in_place(&header, &mut sealed, StreamOptions::default()).unwrap();
    let (parsed, header_len) = SealedHeader::parse(&sealed).unwrap();
    let verified = parsed.clone().verify(kas.unwrap(&parsed).unwrap()).unwrap();
    let mut damaged = sealed[header_len..].to_vec();
    damaged[1040 + 3] ^= 0x10; // chunk 1
    let err = open_to_vec(&verified, &damaged, StreamOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            irm_core::OpenError::ChunkAuthenticationFailed { index: 1 }
        ),
        "{err:?}"
    );
}

/// `open_into` decrypts into a buffer the caller owns: on every thread
/// count and both backends it gives the plaintext, refuses a buffer of the
/// wrong length before decrypting anything, and on a damaged chunk names it
/// and leaves the buffer wiped, with or without a declared length.
#[test]
fn open_into_fills_the_callers_buffer_or_wipes_it() {
    let kas = KasSecretKey::generate().unwrap();
    for declared in [true, false] {
        for len in [0usize, 1, 1023, 1024, 1025, 10_000] {
            let plaintext: Vec<u8> = (0..len).map(|i| (i * 13 % 251) as u8 | 1).collect();
            let header = header(&kas, declared.then_some(len as u64));
            let mut sealed = plaintext.clone();
            seal_in_place(&header, &mut sealed, StreamOptions::default()).unwrap();
            let (parsed, header_len) = SealedHeader::parse(&sealed).unwrap();
            let verified = parsed.clone().verify(kas.unwrap(&parsed).unwrap()).unwrap();
            let payload = &sealed[header_len..];
            assert_eq!(opened_len(&verified, payload).unwrap(), len);
            for backend in [PayloadBackend::Fast, PayloadBackend::Portable] {
                for threads in [1, 2, 4] {
                    let case = format!("len {len} declared {declared} {backend:?} x{threads}");
                    let options = StreamOptions { threads, backend };
                    let mut out = vec![0u8; len];
                    open_into(&verified, payload, &mut out, options).expect(&case);
                    assert_eq!(out, plaintext, "{case}");

                    let mut short = vec![7u8; len + 1];
                    let err = open_into(&verified, payload, &mut short, options).unwrap_err();
                    assert!(
                        matches!(err, OpenError::OutputLength { .. }),
                        "{case}: {err:?}"
                    );
                    assert_eq!(short, vec![7u8; len + 1], "{case}: nothing written");

                    let chunks = payload.len().div_ceil(1040);
                    let mut damaged = payload.to_vec();
                    let last = chunks - 1;
                    damaged[last * 1040] ^= 0x01;
                    let mut out = vec![0u8; len];
                    let err = open_into(&verified, &damaged, &mut out, options).unwrap_err();
                    assert!(
                        matches!(err, OpenError::ChunkAuthenticationFailed { index } if index == last as u64),
                        "{case}: {err:?}"
                    );
                    assert!(out.iter().all(|b| *b == 0), "{case}: the buffer is wiped");
                }
            }
        }
    }
}

/// A reader that hands out at most `step` bytes per call, cycling through
/// sizes so that reads end at every position relative to chunks and batches.
struct Trickle<'a> {
    data: &'a [u8],
    steps: &'a [usize],
    call: usize,
}

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let step = self.steps[self.call % self.steps.len()];
        self.call += 1;
        let n = buf.len().min(step).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn seal_from_and_write_to_match_the_write_and_read_paths() {
    let kas = KasSecretKey::generate().unwrap();
    let batch = 16 * 1024; // 16 chunks of 1 KiB: one single-threaded batch
    for len in [
        0usize,
        1,
        1023,
        1024,
        1025,
        batch - 1,
        batch,
        batch + 1,
        3 * batch + 77,
    ] {
        for declared in [true, false] {
            for threads in [1, 2] {
                let plaintext: Vec<u8> = (0..len).map(|i| (i * 13 % 251) as u8).collect();
                let header = header(&kas, declared.then_some(len as u64));
                let options = StreamOptions {
                    threads,
                    ..StreamOptions::default()
                };
                let case = format!("len {len} declared {declared} threads {threads}");
                let mut by_write = Sealer::new(&header, Vec::new(), options).unwrap();
                by_write.write_all(&plaintext).unwrap();
                let by_write = by_write.finish().unwrap();

                let mut by_read = Sealer::new(&header, Vec::new(), options).unwrap();
                let mut source = Trickle {
                    data: &plaintext,
                    steps: &[1, 1000, 4096, 70_000, 17],
                    call: 0,
                };
                assert_eq!(
                    by_read.seal_from(&mut source).unwrap(),
                    len as u64,
                    "{case}"
                );
                let by_read = by_read.finish().unwrap();
                assert_eq!(by_read, by_write, "{case}");

                let (parsed, header_len) = SealedHeader::parse(&by_read).unwrap();
                let verified = parsed.clone().verify(kas.unwrap(&parsed).unwrap()).unwrap();
                let mut out = Vec::new();
                let mut opener = irm_core::Opener::new(&verified, &by_read[header_len..], options);
                assert_eq!(opener.write_to(&mut out).unwrap(), len as u64, "{case}");
                assert_eq!(out, plaintext, "{case}");
            }
        }
    }
}

#[test]
fn seal_from_refuses_more_than_the_declared_length() {
    let kas = KasSecretKey::generate().unwrap();
    for (declared, actual) in [(10usize, 11usize), (2048, 2049), (20_000, 40_000)] {
        let header = header(&kas, Some(declared as u64));
        let data = vec![5u8; actual];
        let mut sealer = Sealer::new(&header, Vec::new(), StreamOptions::default()).unwrap();
        let err = sealer.seal_from(&mut &data[..]).unwrap_err();
        assert!(
            err.to_string().contains("declared"),
            "{declared}/{actual}: {err}"
        );
    }
}

#[test]
fn write_to_stops_at_the_damaged_chunk_with_only_verified_output() {
    let kas = KasSecretKey::generate().unwrap();
    let plaintext = vec![9u8; 40 * 1024];
    let header = header(&kas, Some(plaintext.len() as u64));
    let mut sealed = plaintext.clone();
    seal_in_place(&header, &mut sealed, StreamOptions::default()).unwrap();
    let (parsed, header_len) = SealedHeader::parse(&sealed).unwrap();
    let verified = parsed.clone().verify(kas.unwrap(&parsed).unwrap()).unwrap();
    let damaged_chunk = 20; // in the second batch of 16
    sealed[header_len + damaged_chunk * 1040 + 5] ^= 1;
    let mut out = Vec::new();
    let mut opener =
        irm_core::Opener::new(&verified, &sealed[header_len..], StreamOptions::default());
    let err = opener.write_to(&mut out).unwrap_err();
    assert!(matches!(
        irm_core::OpenError::from_io(&err),
        Some(irm_core::OpenError::ChunkAuthenticationFailed { index: 20 })
    ));
    assert!(
        out.len() <= damaged_chunk * 1024,
        "{} bytes released",
        out.len()
    );
    assert_eq!(out, plaintext[..out.len()]);
}
