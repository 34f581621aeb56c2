//! Writes the frozen test vectors of `irm-core/tests/vectors/` (STYLE.md §5).
//!
//! Run once:
//!
//! ```text
//! cargo run -p irm-core --example gen_vectors -- irm-core/tests/vectors
//! ```
//!
//! Every vector is sealed through the public API with real randomness, then,
//! for the failure cases, altered as bytes after sealing. Nothing is
//! recomputed except where a case says so (the bound-record length when a
//! field is appended). The file format of a vector is described in
//! `tests/vectors/README.md`; `tests/vectors.rs` reads them.
//!
//! Vectors are frozen: the generator refuses to overwrite an existing file
//! unless given `--force`, because a changed vector means a changed format.

use std::fmt::Write as _;
use std::io::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use irm_core::{
    DEFAULT_MAX_LEASE_SECS, DevicePublicKey, DeviceSecretKey, DeviceWrappedKey, EnvelopeBuilder,
    KasSecretKey, Metadata, Policy, PolicyGrant, Recipient, RewrapContext, Rights, SealedHeader,
    Sealer, StreamOptions, VerifiedHeader, WRAPPED_KEY_LEN, rewrap, seal_to_vec,
};
use sha2::{Digest, Sha256};

/// 2026-01-02T00:00:00Z: the creation time recorded in every vector.
const CREATED_AT: u64 = 1_767_312_000;
/// 2030-01-01T00:00:00Z: the `not_after` of the plain policy.
const NOT_AFTER: u64 = 1_893_456_000;
/// 2026-04-01T00:00:00Z and 2027-04-01T00:00:00Z: the Japanese CSV's window.
const CSV_NOT_BEFORE: u64 = 1_775_001_600;
const CSV_NOT_AFTER: u64 = 1_806_537_600;
/// Ten minutes after `CREATED_AT`: the lease end of the device grants.
const LEASE_EXPIRES_AT: u64 = CREATED_AT + DEFAULT_MAX_LEASE_SECS as u64;

const KAS_URL: &str = "https://kas.example.jp:8443";
const KAS_URL_OSAKA: &str = "https://kas-osaka.example.jp:8443";

/// The bytes of the preamble: magic (8), version (2), bound-record length (4).
const PREAMBLE_LEN: usize = 14;
const BOUND_LEN_AT: Range<usize> = 10..14;
const VERSION_AT: Range<usize> = 8..10;

// Header tags (FORMAT.md §3), needed to find what a case alters.
const TAG_POLICY: u16 = 9;
const TAG_KEY_ACCESS: u16 = 11;
const TAG_POLICY_GRANTS: u16 = 1;
const TAG_GRANT_RIGHTS: u16 = 3;
const TAG_KA_URL: u16 = 1;

const JAPANESE_CSV: &str = "\
顧客番号,氏名,フリガナ,電話番号,住所,契約プラン
C-1001,山田 太郎,ヤマダ タロウ,03-1234-5678,東京都千代田区丸の内1-1-1,光ファイバー1G
C-1002,佐藤 花子,サトウ ハナコ,06-2345-6789,大阪府大阪市北区梅田2-2-2,モバイル無制限
C-1003,鈴木 一郎,スズキ イチロウ,052-345-6789,愛知県名古屋市中区栄3-3-3,光ファイバー10G
C-1004,高橋 美咲,タカハシ ミサキ,092-456-7890,福岡県福岡市博多区博多駅前4-4-4,ケーブルTV＋ネット
";

/// One vector file: its name, its head lines in order, and the sealed bytes.
struct Vector {
    name: &'static str,
    head: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Vector {
    fn to_bytes(&self) -> Vec<u8> {
        let mut text = String::new();
        for (key, value) in &self.head {
            assert!(
                !value.contains('\n') && !value.is_empty(),
                "{}: head value of {key} must be one non-empty line",
                self.name
            );
            writeln!(text, "{key}: {value}").expect("writing to a String cannot fail");
        }
        text.push('\n');
        let mut out = text.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

/// A freshly sealed file.
struct Sealed {
    header: VerifiedHeader,
    bytes: Vec<u8>,
    plaintext: Vec<u8>,
}

fn grant(recipients: &[&str], rights: Rights) -> PolicyGrant {
    PolicyGrant {
        recipients: recipients
            .iter()
            .map(|r| Recipient::parse(r).expect("valid recipient"))
            .collect(),
        rights,
    }
}

/// The policy of most vectors: `@support` may view until 2030.
fn plain_policy() -> Policy {
    Policy::builder()
        .grant(grant(&["@support"], Rights::VIEW))
        .not_after(NOT_AFTER)
        .build()
        .expect("valid policy")
}

fn csv_policy() -> Policy {
    Policy::builder()
        .grants(vec![
            grant(&["@agents"], Rights::VIEW),
            grant(&["@supervisors"], Rights::VIEW | Rights::PRINT),
        ])
        .not_before(CSV_NOT_BEFORE)
        .not_after(CSV_NOT_AFTER)
        .classification(Some("社外秘"))
        .build()
        .expect("valid policy")
}

/// A deterministic, non-repeating-looking plaintext of `len` bytes.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

fn declared(len: usize) -> Metadata {
    Metadata {
        file_name: None,
        media_type: None,
        plaintext_len: Some(len as u64),
    }
}

/// The common envelope: sealed to the vectors' key server with `seal_to_vec`.
fn seal(
    kas: &KasSecretKey,
    policy: Policy,
    metadata: Metadata,
    chunk_len: Option<u32>,
    plaintext: &[u8],
) -> Sealed {
    seal_with(
        EnvelopeBuilder::new(policy).key_server(KAS_URL, kas.public_key()),
        metadata,
        chunk_len,
        plaintext,
        false,
    )
}

fn seal_with(
    builder: EnvelopeBuilder,
    metadata: Metadata,
    chunk_len: Option<u32>,
    plaintext: &[u8],
    streaming: bool,
) -> Sealed {
    let mut builder = builder.metadata(metadata).created_at_unix(CREATED_AT);
    if let Some(len) = chunk_len {
        builder = builder.chunk_len(len);
    }
    let header = builder.build().expect("building the header");
    let bytes = if streaming {
        let mut sealer =
            Sealer::new(&header, Vec::new(), StreamOptions::default()).expect("writing to a Vec");
        // Uneven writes, as a stream would deliver them.
        for piece in plaintext.chunks(700) {
            sealer.write_all(piece).expect("writing to a Vec");
        }
        sealer.finish().expect("finishing the seal")
    } else {
        seal_to_vec(&header, plaintext, StreamOptions::default()).expect("sealing")
    };
    Sealed {
        header,
        bytes,
        plaintext: plaintext.to_vec(),
    }
}

fn kas_text(kas: &KasSecretKey) -> String {
    kas.to_text().to_string()
}

/// The head of a success vector, with the unwrap keys given first.
fn success(
    name: &'static str,
    keys: Vec<(&'static str, String)>,
    sealed: Sealed,
    comment: &str,
) -> Vector {
    let h = sealed.header.header();
    let meta = sealed.header.metadata();
    let mut head = vec![("expect", "success".to_owned())];
    head.extend(keys);
    head.extend([
        (
            "payload-sha256",
            hex::encode(Sha256::digest(&sealed.plaintext)),
        ),
        ("plaintext-len", sealed.plaintext.len().to_string()),
        ("file-id", h.file_id().to_string()),
        ("created-at", h.created_at_unix().to_string()),
        ("chunk-len", h.chunk_len().to_string()),
        ("header-sha256", hex::encode(h.hash().0)),
        (
            "policy-json",
            serde_json::to_string(h.policy()).expect("a policy serialises"),
        ),
    ]);
    if let Some(issuer) = h.issuer() {
        head.push(("issuer", issuer.to_owned()));
    }
    if let Some(name) = &meta.file_name {
        head.push(("file-name", name.clone()));
    }
    if let Some(media) = &meta.media_type {
        head.push(("media-type", media.clone()));
    }
    if let Some(len) = meta.plaintext_len {
        head.push(("metadata-plaintext-len", len.to_string()));
    }
    head.push(("comment", comment.to_owned()));
    Vector {
        name,
        head,
        body: sealed.bytes,
    }
}

/// The head of a failure vector.
fn failure(
    name: &'static str,
    expect: &str,
    kind: &str,
    chunk: Option<u64>,
    keys: Vec<(&'static str, String)>,
    body: Vec<u8>,
    comment: &str,
) -> Vector {
    let mut head = vec![("expect", expect.to_owned()), ("kind", kind.to_owned())];
    if let Some(index) = chunk {
        head.push(("chunk", index.to_string()));
    }
    head.extend(keys);
    head.push(("comment", comment.to_owned()));
    Vector { name, head, body }
}

/// Fields of the `tag | length (u32) | value` record at `bytes[record]`: each
/// tag with the range of its value.
fn fields(bytes: &[u8], record: Range<usize>) -> Vec<(u16, Range<usize>)> {
    let mut out = Vec::new();
    let mut at = record.start;
    while at < record.end {
        let tag = u16::from_be_bytes([bytes[at], bytes[at + 1]]);
        let len = u32::from_be_bytes(bytes[at + 2..at + 6].try_into().expect("4 bytes")) as usize;
        out.push((tag, at + 6..at + 6 + len));
        at += 6 + len;
    }
    assert_eq!(at, record.end, "a record must end on a field boundary");
    out
}

fn field(bytes: &[u8], record: Range<usize>, tag: u16) -> Range<usize> {
    fields(bytes, record)
        .into_iter()
        .find(|(t, _)| *t == tag)
        .map(|(_, range)| range)
        .unwrap_or_else(|| panic!("tag {tag} is missing"))
}

/// Items of a list value: `count (u16) | (length (u32) | item)*`.
fn list_items(bytes: &[u8], list: Range<usize>) -> Vec<Range<usize>> {
    let count = u16::from_be_bytes([bytes[list.start], bytes[list.start + 1]]);
    let mut at = list.start + 2;
    let mut out = Vec::new();
    for _ in 0..count {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        out.push(at + 4..at + 4 + len);
        at += 4 + len;
    }
    assert_eq!(at, list.end, "a list must end after its last item");
    out
}

/// Where the parts of a sealed file are.
struct Layout {
    bound: Range<usize>,
    wrapped_keys: Range<usize>,
    metadata: Range<usize>,
    payload_start: usize,
}

fn layout(bytes: &[u8]) -> Layout {
    let (header, len) = SealedHeader::parse(bytes).expect("a freshly sealed header parses");
    let bound_end = header.bound_end();
    let wrapped_end = bound_end + header.key_access().len() * WRAPPED_KEY_LEN;
    Layout {
        bound: PREAMBLE_LEN..bound_end,
        wrapped_keys: bound_end..wrapped_end,
        metadata: wrapped_end + 4..len,
        payload_start: len,
    }
}

/// Appends a field to the end of the bound record and fixes up its length
/// in the preamble: the only recomputation any case does.
fn append_bound_field(bytes: &[u8], tag: u16, value: &[u8]) -> Vec<u8> {
    let l = layout(bytes);
    let mut field = tag.to_be_bytes().to_vec();
    field.extend_from_slice(&(value.len() as u32).to_be_bytes());
    field.extend_from_slice(value);
    let mut out = bytes[..l.bound.end].to_vec();
    out.extend_from_slice(&field);
    out.extend_from_slice(&bytes[l.bound.end..]);
    let new_len = (l.bound.len() + field.len()) as u32;
    out[BOUND_LEN_AT].copy_from_slice(&new_len.to_be_bytes());
    out
}

fn device_keys(
    device: &DeviceSecretKey,
    device_id: [u8; 16],
    lease: u64,
    wrapped: &DeviceWrappedKey,
) -> Vec<(&'static str, String)> {
    let mut wrapped_hex = hex::encode(wrapped.ephemeral_public);
    wrapped_hex.push_str(&hex::encode(wrapped.ciphertext));
    vec![
        ("device-secret-key", device.to_text().to_string()),
        ("device-id", hex::encode(device_id)),
        ("lease-expires-at", lease.to_string()),
        ("device-wrapped-key", wrapped_hex),
    ]
}

/// The key server's side of a grant: the file's content key rewrapped to a
/// device, bound to this file, header, device and lease.
fn grant_to_device(
    content_of: &VerifiedHeader,
    context_of: &VerifiedHeader,
    device: &DevicePublicKey,
    device_id: [u8; 16],
) -> DeviceWrappedKey {
    let h = context_of.header();
    let context = RewrapContext {
        file_id: h.file_id(),
        header_hash: *h.hash(),
        device_id,
        lease_expires_at_unix: LEASE_EXPIRES_AT,
    };
    rewrap(content_of.content_key(), device, &context).expect("rewrapping")
}

fn random_id() -> [u8; 16] {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).expect("the system RNG");
    id
}

fn all_vectors() -> Vec<Vector> {
    let kas = KasSecretKey::generate().expect("the system RNG");
    let kas_osaka = KasSecretKey::generate().expect("the system RNG");
    let other_kas = KasSecretKey::generate().expect("the system RNG");
    let kas_key = || vec![("kas-secret-key", kas_text(&kas))];
    let csv = JAPANESE_CSV.as_bytes();
    // --- Files that open. ---
    let mut v = vec![
        success(
            "ok_empty",
            kas_key(),
            seal(&kas, plain_policy(), declared(0), None, b""),
            "an empty plaintext: the payload is one empty final chunk (its 16-byte tag only)",
        ),
        success(
            "ok_one_byte",
            kas_key(),
            seal(&kas, plain_policy(), declared(1), None, b"A"),
            "one byte in one final chunk, default chunk length",
        ),
        success(
            "ok_two_chunks",
            kas_key(),
            seal(
                &kas,
                plain_policy(),
                declared(1500),
                Some(1024),
                &pattern(1500),
            ),
            "1500 bytes at chunk length 1024: a full chunk 0 and a final chunk 1 of 476 bytes",
        ),
        success(
            "ok_exact_chunk",
            kas_key(),
            seal(
                &kas,
                plain_policy(),
                declared(1024),
                Some(1024),
                &pattern(1024),
            ),
            "exactly one chunk length of plaintext: one full chunk that is the final chunk, no empty chunk after it",
        ),
        success(
            "ok_japanese_csv",
            kas_key(),
            seal_with(
                EnvelopeBuilder::new(csv_policy())
                    .key_server(KAS_URL, kas.public_key())
                    .issuer("tanaka"),
                Metadata {
                    file_name: Some("顧客一覧_2026年4月.csv".to_owned()),
                    media_type: Some("text/csv; charset=utf-8".to_owned()),
                    plaintext_len: Some(csv.len() as u64),
                },
                None,
                csv,
                true,
            ),
            "a UTF-8 Japanese customer CSV with file name, media type, issuer, two grants, a validity window and a classification",
        ),
        success(
            "ok_no_declared_length",
            kas_key(),
            seal_with(
                EnvelopeBuilder::new(plain_policy()).key_server(KAS_URL, kas.public_key()),
                Metadata::default(),
                Some(1024),
                &pattern(2048),
                true,
            ),
            "streamed without a declared plaintext length; 2048 bytes at chunk length 1024, so the final chunk is full",
        ),
        success(
            "ok_two_key_servers",
            vec![("kas-secret-key", kas_text(&kas_osaka))],
            seal_with(
                EnvelopeBuilder::new(plain_policy())
                    .key_server(KAS_URL, kas.public_key())
                    .key_server(KAS_URL_OSAKA, kas_osaka.public_key()),
                declared(100),
                None,
                &pattern(100),
                false,
            ),
            "the content key is wrapped to two key servers; the key given is the second one's",
        ),
    ];

    // --- Headers that do not parse. ---
    let mut bytes = seal(&kas, plain_policy(), declared(1), None, b"A").bytes;
    bytes[1] = b'i';
    v.push(failure(
        "bad_magic",
        "format_error",
        "bad_magic",
        None,
        kas_key(),
        bytes,
        "the second magic byte changed from 'I' to 'i'",
    ));
    let mut bytes = seal(&kas, plain_policy(), declared(1), None, b"A").bytes;
    bytes[VERSION_AT].copy_from_slice(&2u16.to_be_bytes());
    v.push(failure(
        "unsupported_version",
        "format_error",
        "unsupported_version",
        None,
        kas_key(),
        bytes,
        "the version field changed from 1 to 2; nothing after it is read",
    ));
    let bytes = seal(&kas, plain_policy(), declared(1), None, b"A").bytes;
    let bytes = append_bound_field(&bytes, 0x7fff, b"v2");
    v.push(failure(
        "unknown_critical_field",
        "format_error",
        "unknown_critical_field",
        None,
        kas_key(),
        bytes,
        "a field with the unknown odd (critical) tag 0x7fff appended to the bound record, its length fixed up: a reader must refuse it",
    ));
    let bytes = seal(&kas, plain_policy(), declared(100), None, &pattern(100)).bytes;
    let cut = PREAMBLE_LEN + layout(&bytes).bound.len() / 2;
    v.push(failure(
        "header_truncated",
        "format_error",
        "truncated",
        None,
        kas_key(),
        bytes[..cut].to_vec(),
        "the file ends halfway through the bound record",
    ));

    // --- Headers that parse but were altered: the key server refuses to unwrap. ---
    let mut bytes = seal(&kas, plain_policy(), declared(100), None, &pattern(100)).bytes;
    let l = layout(&bytes);
    let policy = field(&bytes, l.bound.clone(), TAG_POLICY);
    let grants = field(&bytes, policy, TAG_POLICY_GRANTS);
    let first_grant = list_items(&bytes, grants)[0].clone();
    let rights = field(&bytes, first_grant, TAG_GRANT_RIGHTS);
    assert_eq!(bytes[rights.clone()], Rights::VIEW.bits().to_be_bytes());
    bytes[rights.end - 1] |= Rights::PRINT.bits() as u8;
    v.push(failure(
        "policy_byte_changed",
        "unwrap_error",
        "binding_failed",
        None,
        kas_key(),
        bytes,
        "the only grant's rights changed from view to view,print (one byte); the policy still parses but the header hash no longer matches the wrap",
    ));
    let mut bytes = seal(&kas, plain_policy(), declared(100), None, &pattern(100)).bytes;
    let l = layout(&bytes);
    let entries = field(&bytes, l.bound.clone(), TAG_KEY_ACCESS);
    let first_entry = list_items(&bytes, entries)[0].clone();
    let url = field(&bytes, first_entry, TAG_KA_URL);
    assert_eq!(&bytes[url.clone()], KAS_URL.as_bytes());
    bytes[url.start + "https://ka".len()] = b'z';
    v.push(failure(
        "key_access_url_changed",
        "unwrap_error",
        "binding_failed",
        None,
        kas_key(),
        bytes,
        "the key server URL changed by one byte (https://kas.example.jp:8443 to https://kaz.example.jp:8443)",
    ));
    let bytes = seal(&kas, plain_policy(), declared(1), None, b"A").bytes;
    let bytes = append_bound_field(&bytes, 0x7ffe, b"v2");
    v.push(failure(
        "unknown_ignorable_field",
        "unwrap_error",
        "binding_failed",
        None,
        kas_key(),
        bytes,
        "a field with the unknown even (ignorable) tag 0x7ffe appended to the bound record, length fixed up: it parses, but the header hash changes, so an added field cannot be smuggled in",
    ));
    let mut bytes = seal(&kas, plain_policy(), declared(100), None, &pattern(100)).bytes;
    let at = layout(&bytes).wrapped_keys.start;
    bytes[at] ^= 0x80;
    v.push(failure(
        "wrapped_key_flipped",
        "unwrap_error",
        "binding_failed",
        None,
        kas_key(),
        bytes,
        "the top bit of the wrapped key's first byte flipped",
    ));
    v.push(failure(
        "wrong_kas_key",
        "unwrap_error",
        "no_matching_key",
        None,
        vec![("kas-secret-key", kas_text(&other_kas))],
        seal(&kas, plain_policy(), declared(100), None, &pattern(100)).bytes,
        "an intact file, but the key server key given is not one it was sealed to",
    ));

    // --- The content key unwraps, but the header or payload was altered. ---
    let mut bytes = seal(
        &kas,
        plain_policy(),
        Metadata {
            file_name: Some("customers.csv".to_owned()),
            media_type: Some("text/csv".to_owned()),
            plaintext_len: Some(100),
        },
        None,
        &pattern(100),
    )
    .bytes;
    let at = layout(&bytes).metadata.start;
    bytes[at] ^= 0x01;
    v.push(failure(
        "metadata_flipped",
        "open_error",
        "metadata_authentication_failed",
        None,
        kas_key(),
        bytes,
        "the first byte of the encrypted metadata flipped (its length field is intact)",
    ));
    // Three chunks at chunk length 1024: 1040, 1040 and 468 sealed bytes.
    let three_chunks = || {
        seal(
            &kas,
            plain_policy(),
            declared(2500),
            Some(1024),
            &pattern(2500),
        )
    };
    const STRIDE: usize = 1024 + 16;
    let mut bytes = three_chunks().bytes;
    let p = layout(&bytes).payload_start;
    bytes[p + 2 * STRIDE - 1] ^= 0x01;
    v.push(failure(
        "chunk1_tag_flipped",
        "open_error",
        "chunk_authentication_failed",
        Some(1),
        kas_key(),
        bytes,
        "2500 bytes at chunk length 1024 (three chunks); the last byte of chunk 1's tag flipped",
    ));
    let mut bytes = three_chunks().bytes;
    let p = layout(&bytes).payload_start;
    let (first, second) = bytes[p..p + 2 * STRIDE].split_at_mut(STRIDE);
    first.swap_with_slice(second);
    v.push(failure(
        "chunks_swapped",
        "open_error",
        "chunk_authentication_failed",
        Some(0),
        kas_key(),
        bytes,
        "2500 bytes at chunk length 1024 (three chunks); the sealed chunks 0 and 1 swapped, so chunk 0 fails first",
    ));
    let mut bytes = three_chunks().bytes;
    let p = layout(&bytes).payload_start;
    bytes.truncate(p + 2 * STRIDE);
    v.push(failure(
        "final_chunk_missing",
        "open_error",
        "truncated",
        None,
        kas_key(),
        bytes,
        "2500 bytes at chunk length 1024 (three chunks); the final chunk 2 removed, so the file ends on a valid non-final chunk",
    ));
    let mut bytes = three_chunks().bytes;
    bytes.extend_from_slice(b"trailing bytes after final chunk");
    v.push(failure(
        "trailing_data",
        "open_error",
        "trailing_data",
        None,
        kas_key(),
        bytes,
        "2500 bytes at chunk length 1024 (three chunks); 32 bytes appended after the final chunk",
    ));

    // --- A key server grant rewrapped to a device. ---
    let device = DeviceSecretKey::generate().expect("the system RNG");
    let device_id = random_id();
    let sealed = seal(
        &kas,
        plain_policy(),
        declared(1500),
        Some(1024),
        &pattern(1500),
    );
    let wrapped = grant_to_device(
        &sealed.header,
        &sealed.header,
        &device.public_key(),
        device_id,
    );
    v.push(success(
        "ok_device_rewrap",
        device_keys(&device, device_id, LEASE_EXPIRES_AT, &wrapped),
        sealed,
        "the content key as the key server rewraps it to a device, bound to file id, header hash, device id and lease end",
    ));

    let sealed = seal(&kas, plain_policy(), declared(100), None, &pattern(100));
    let wrapped = grant_to_device(
        &sealed.header,
        &sealed.header,
        &device.public_key(),
        device_id,
    );
    let other_device = DeviceSecretKey::generate().expect("the system RNG");
    v.push(failure(
        "wrong_device_key",
        "unwrap_error",
        "binding_failed",
        None,
        device_keys(&other_device, device_id, LEASE_EXPIRES_AT, &wrapped),
        sealed.bytes,
        "a grant rewrapped to one device, presented with another device's secret key (same device id and lease)",
    ));

    let sealed = seal(&kas, plain_policy(), declared(100), None, &pattern(100));
    let wrapped = grant_to_device(
        &sealed.header,
        &sealed.header,
        &device.public_key(),
        device_id,
    );
    v.push(failure(
        "device_lease_extended",
        "unwrap_error",
        "binding_failed",
        None,
        device_keys(&device, device_id, LEASE_EXPIRES_AT + 86_400, &wrapped),
        sealed.bytes,
        "a grant to this device, presented with its lease end moved one day later than the key server bound it to",
    ));

    let sealed = seal(&kas, plain_policy(), declared(100), None, &pattern(100));
    let other_file = seal(&kas, plain_policy(), declared(100), None, &pattern(100));
    let wrapped = grant_to_device(
        &other_file.header,
        &sealed.header,
        &device.public_key(),
        device_id,
    );
    v.push(failure(
        "device_grant_wrong_content_key",
        "open_error",
        "key_commitment_mismatch",
        None,
        device_keys(&device, device_id, LEASE_EXPIRES_AT, &wrapped),
        sealed.bytes,
        "a grant bound to this file, header, device and lease but carrying another file's content key (a faulty key server): it unwraps, the key commitment refuses it",
    ));

    v
}

fn run(dir: &Path, force: bool) -> Result<(), String> {
    let vectors = all_vectors();
    let paths: Vec<PathBuf> = vectors.iter().map(|v| dir.join(v.name)).collect();
    if !force {
        let existing: Vec<String> = paths
            .iter()
            .filter(|p| p.exists())
            .map(|p| p.display().to_string())
            .collect();
        if !existing.is_empty() {
            return Err(format!(
                "refusing to overwrite frozen vectors (a changed vector means a changed format; pass --force to regenerate): {}",
                existing.join(", ")
            ));
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    for (vector, path) in vectors.iter().zip(&paths) {
        std::fs::write(path, vector.to_bytes())
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut force = false;
    let mut dir = None;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--force" => force = true,
            _ if dir.is_none() && !arg.starts_with('-') => dir = Some(PathBuf::from(arg)),
            _ => {
                eprintln!("usage: gen_vectors [--force] <directory>");
                return ExitCode::from(2);
            }
        }
    }
    let Some(dir) = dir else {
        eprintln!("usage: gen_vectors [--force] <directory>");
        return ExitCode::from(2);
    };
    match run(&dir, force) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("gen_vectors: {message}");
            ExitCode::FAILURE
        }
    }
}
