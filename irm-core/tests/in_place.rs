//! The in-place and in-memory APIs agree with the streaming sealer and opener.

use std::io::Write;

use irm_core::{
    EnvelopeBuilder, KasSecretKey, Metadata, Policy, PolicyGrant, Recipient, Rights, Sealer,
    SealedHeader, StreamOptions, open_to_vec, seal_in_place,
};

fn policy() -> Policy {
    Policy::new(
        vec![PolicyGrant {
            recipients: [Recipient::parse("@support").unwrap()].into(),
            rights: Rights::VIEW,
        }],
        None,
        None,
        600,
        true,
        None,
    )
    .unwrap()
}

#[test]
fn seal_in_place_matches_the_streaming_sealer_byte_for_byte() {
    let kas = KasSecretKey::generate().unwrap();
    for len in [0usize, 1, 1023, 1024, 1025, 4096, 10_000] {
        for threads in [1, 2] {
            let plaintext: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let header = EnvelopeBuilder::new(policy())
                .key_server("https://kas.test", kas.public_key())
                .chunk_len(1024)
                .metadata(Metadata {
                    plaintext_len: Some(len as u64),
                    ..Metadata::default()
                })
                .build()
                .unwrap();
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
    let header = EnvelopeBuilder::new(policy())
        .key_server("https://kas.test", kas.public_key())
        .chunk_len(1024)
        .build()
        .unwrap();
    let mut sealed = vec![42u8; 5000];
    seal_in_place(&header, &mut sealed, StreamOptions::default()).unwrap();
    let (parsed, header_len) = SealedHeader::parse(&sealed).unwrap();
    let verified = parsed.clone().verify(kas.unwrap(&parsed).unwrap()).unwrap();
    let mut damaged = sealed[header_len..].to_vec();
    damaged[1040 + 3] ^= 0x10; // chunk 1
    let err = open_to_vec(&verified, &damaged, StreamOptions::default()).unwrap_err();
    assert!(
        matches!(err, irm_core::OpenError::ChunkAuthenticationFailed { index: 1 }),
        "{err:?}"
    );
}
