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
//! A case added later is written with `--missing`, which writes only the
//! vectors that are not in the directory yet and leaves every existing file
//! as it is (every run draws new keys, so a rewritten file would differ in
//! every byte):
//!
//! ```text
//! cargo run -p irm-core --example gen_vectors -- --missing irm-core/tests/vectors
//! ```

use std::fmt::Write as _;
use std::io::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use irm_core::{
    DEFAULT_MAX_LEASE_SECS, DevicePublicKey, DeviceSecretKey, DeviceWrappedKey, EnvelopeBuilder,
    KasSecretKey, Metadata, Policy, PolicyGrant, Recipient, RewrapContext, Rights, SealedHeader,
    Sealer, StreamOptions, VerifiedHeader, WRAPPED_KEY_LEN, rewrap, seal_payload_in_place,
    seal_to_vec,
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
const TAG_GRANT_RECIPIENTS: u16 = 1;
const TAG_POLICY_NOT_BEFORE: u16 = 3;
const TAG_POLICY_NOT_AFTER: u16 = 5;
const TAG_KA_EPHEMERAL: u16 = 5;
const TAG_META_FILE_NAME: u16 = 2;
const TAG_META_MEDIA_TYPE: u16 = 4;
const TAG_META_PLAINTEXT_LEN: u16 = 6;

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
    success_head(
        name,
        keys,
        h,
        h.hash().0,
        sealed.header.metadata(),
        &sealed.plaintext,
        sealed.bytes.clone(),
        comment,
    )
}

/// The head of a success vector for a file whose header parses as `header`
/// except for its hash (a re-sealed file keeps the file id, policy and chunk
/// length of the file it came from), whose metadata is `meta`, and whose
/// plaintext is `plaintext`.
#[allow(clippy::too_many_arguments)] // every argument is a head line
fn success_head(
    name: &'static str,
    keys: Vec<(&'static str, String)>,
    h: &SealedHeader,
    hash: [u8; 32],
    meta: &Metadata,
    plaintext: &[u8],
    body: Vec<u8>,
    comment: &str,
) -> Vector {
    let mut head = vec![("expect", "success".to_owned())];
    head.extend(keys);
    head.extend([
        ("payload-sha256", hex::encode(Sha256::digest(plaintext))),
        ("plaintext-len", plaintext.len().to_string()),
        ("file-id", h.file_id().to_string()),
        ("created-at", h.created_at_unix().to_string()),
        ("chunk-len", h.chunk_len().to_string()),
        ("header-sha256", hex::encode(hash)),
        (
            "policy-json",
            serde_json::to_string(h.policy()).expect("a policy serialises"),
        ),
    ]);
    // A head value is never empty: a string field present but empty is
    // listed in `empty-strings` instead.
    let mut empty = Vec::new();
    if h.key_access().iter().all(|e| e.kas_url.is_empty()) {
        empty.push("kas-url");
    }
    for (key, value) in [
        ("issuer", h.issuer()),
        ("file-name", meta.file_name.as_deref()),
        ("media-type", meta.media_type.as_deref()),
    ] {
        match value {
            Some("") => empty.push(key),
            Some(value) => head.push((key, value.to_owned())),
            None => {}
        }
    }
    if let Some(len) = meta.plaintext_len {
        head.push(("metadata-plaintext-len", len.to_string()));
    }
    if !empty.is_empty() {
        head.push(("empty-strings", empty.join(",")));
    }
    head.push(("comment", comment.to_owned()));
    Vector { name, head, body }
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

/// A record as a list of `(tag, value)`, for cases that change a field's
/// length or add a field: encoding it again recomputes every length.
#[derive(Clone, Debug, Default)]
struct Record(Vec<(u16, Vec<u8>)>);

impl Record {
    fn parse(bytes: &[u8]) -> Self {
        Self(
            fields(bytes, 0..bytes.len())
                .into_iter()
                .map(|(tag, range)| (tag, bytes[range].to_vec()))
                .collect(),
        )
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (tag, value) in &self.0 {
            out.extend_from_slice(&tag.to_be_bytes());
            out.extend_from_slice(&(value.len() as u32).to_be_bytes());
            out.extend_from_slice(value);
        }
        out
    }

    fn get(&self, tag: u16) -> &[u8] {
        self.0
            .iter()
            .find(|(t, _)| *t == tag)
            .map(|(_, v)| v.as_slice())
            .unwrap_or_else(|| panic!("tag {tag} is missing"))
    }

    fn set(&mut self, tag: u16, value: Vec<u8>) {
        let slot = self
            .0
            .iter_mut()
            .find(|(t, _)| *t == tag)
            .unwrap_or_else(|| panic!("tag {tag} is missing"));
        slot.1 = value;
    }

    /// Adds a field where ascending tag order puts it.
    fn insert(&mut self, tag: u16, value: Vec<u8>) {
        let at = self.0.partition_point(|(t, _)| *t < tag);
        assert!(
            self.0.get(at).is_none_or(|(t, _)| *t != tag),
            "tag {tag} exists"
        );
        self.0.insert(at, (tag, value));
    }

    /// Edits the nested record in field `tag`.
    fn edit(&mut self, tag: u16, edit: impl FnOnce(&mut Record)) {
        let mut inner = Record::parse(self.get(tag));
        edit(&mut inner);
        self.set(tag, inner.encode());
    }

    /// Edits the items of the list in field `tag`.
    fn edit_list(&mut self, tag: u16, edit: impl FnOnce(&mut Vec<Vec<u8>>)) {
        let value = self.get(tag);
        let mut items: Vec<Vec<u8>> = list_items(value, 0..value.len())
            .into_iter()
            .map(|range| value[range].to_vec())
            .collect();
        edit(&mut items);
        self.set(tag, encode_list(&items));
    }

    /// Edits the record that is item `index` of the list in field `tag`.
    fn edit_item(&mut self, tag: u16, index: usize, edit: impl FnOnce(&mut Record)) {
        self.edit_list(tag, |items| {
            let mut item = Record::parse(&items[index]);
            edit(&mut item);
            items[index] = item.encode();
        });
    }
}

fn encode_list(items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = (items.len() as u16).to_be_bytes().to_vec();
    for item in items {
        out.extend_from_slice(&(item.len() as u32).to_be_bytes());
        out.extend_from_slice(item);
    }
    out
}

/// Replaces the bound record with `edit`'s version and fixes up its length
/// in the preamble; the wrapped keys, metadata and payload stay as sealed.
/// For header cases that a reader must refuse while parsing, before any key
/// is used: the header hash changes, but no reader gets that far.
fn edit_bound(bytes: &[u8], edit: impl FnOnce(&mut Record)) -> Vec<u8> {
    let l = layout(bytes);
    let mut bound = Record::parse(&bytes[l.bound.clone()]);
    edit(&mut bound);
    let bound = bound.encode();
    let mut out = bytes[..PREAMBLE_LEN].to_vec();
    out[BOUND_LEN_AT].copy_from_slice(&(bound.len() as u32).to_be_bytes());
    out.extend_from_slice(&bound);
    out.extend_from_slice(&bytes[l.bound.end..]);
    out
}

/// [`edit_bound`] on the policy record.
fn edit_policy(bytes: &[u8], edit: impl FnOnce(&mut Record)) -> Vec<u8> {
    edit_bound(bytes, |bound| bound.edit(TAG_POLICY, edit))
}

/// [`edit_bound`] on the recipients of grant `index`.
fn edit_recipients(bytes: &[u8], index: usize, edit: impl FnOnce(&mut Vec<Vec<u8>>)) -> Vec<u8> {
    edit_policy(bytes, |policy| {
        policy.edit_item(TAG_POLICY_GRANTS, index, |grant| {
            grant.edit_list(TAG_GRANT_RECIPIENTS, edit)
        })
    })
}

/// HKDF-SHA256 with a 32-byte output (FORMAT.md §1), written here from the
/// document rather than taken from irm-core.
fn hkdf(ikm: &[u8], salt: &[u8], info: &[&[u8]]) -> [u8; 32] {
    let mut okm = [0u8; 32];
    hkdf::Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(&info.concat(), &mut okm)
        .expect("32 bytes is a valid HKDF-SHA256 output");
    okm
}

fn aes_gcm(key: &[u8; 32], nonce: [u8; 12], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    aes_gcm::Aes256Gcm::new(key.into())
        .encrypt(
            &nonce.into(),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("AES-GCM encryption of a short message")
}

/// What a case re-seals besides the header: the metadata record to encrypt,
/// and the payload as `(plaintext, last flag)` chunks.
struct Reseal {
    metadata: Vec<u8>,
    chunks: Vec<(Vec<u8>, bool)>,
}

/// The chunks a sealer writes for `plaintext` (FORMAT.md §6.1).
fn standard_chunks(plaintext: &[u8], chunk_len: usize) -> Vec<(Vec<u8>, bool)> {
    let mut chunks: Vec<(Vec<u8>, bool)> = plaintext
        .chunks(chunk_len)
        .map(|c| (c.to_vec(), false))
        .collect();
    if chunks.is_empty() {
        chunks.push((Vec::new(), false));
    }
    if let Some(last) = chunks.last_mut() {
        last.1 = true;
    }
    chunks
}

/// The metadata record a sealer writes for `metadata` (FORMAT.md §6.3).
fn metadata_record(metadata: &Metadata) -> Record {
    let mut record = Record::default();
    if let Some(name) = &metadata.file_name {
        record.insert(TAG_META_FILE_NAME, name.as_bytes().to_vec());
    }
    if let Some(media) = &metadata.media_type {
        record.insert(TAG_META_MEDIA_TYPE, media.as_bytes().to_vec());
    }
    if let Some(len) = metadata.plaintext_len {
        record.insert(TAG_META_PLAINTEXT_LEN, len.to_be_bytes().to_vec());
    }
    record
}

/// Seals `sealed` again after `edit` changed its bound record, following
/// FORMAT.md §4 and §6 with the same content key and file id but fresh
/// ephemeral keys (one per key-access entry, for the key servers `kas` in
/// entry order), so that the edited header is bound as a sealer would have
/// bound it. This is how a case gets a file the public API cannot write (an
/// unknown field, a metadata record of its own choosing, an odd payload)
/// that still unwraps and authenticates. Returns the file and its header hash.
fn reseal(
    sealed: &Sealed,
    kas: &[&KasSecretKey],
    edit: impl FnOnce(&mut Record),
    content: Reseal,
) -> (Vec<u8>, [u8; 32]) {
    use x25519_dalek::{PublicKey, StaticSecret};
    let original = &sealed.bytes;
    let l = layout(original);
    let key = *sealed.header.content_key().expose_secret();
    let file_id = sealed.header.header().file_id().0;
    let mut bound = Record::parse(&original[l.bound.clone()]);
    edit(&mut bound);
    let ephemerals: Vec<StaticSecret> = kas
        .iter()
        .map(|_| {
            let mut secret = [0u8; 32];
            getrandom::fill(&mut secret).expect("the system RNG");
            StaticSecret::from(secret)
        })
        .collect();
    bound.edit_list(TAG_KEY_ACCESS, |entries| {
        assert_eq!(entries.len(), kas.len(), "one key server per entry");
        for (entry, secret) in entries.iter_mut().zip(&ephemerals) {
            let mut record = Record::parse(entry);
            record.set(
                TAG_KA_EPHEMERAL,
                PublicKey::from(secret).to_bytes().to_vec(),
            );
            *entry = record.encode();
        }
    });
    let bound = bound.encode();
    let mut out = original[..PREAMBLE_LEN].to_vec();
    out[BOUND_LEN_AT].copy_from_slice(&(bound.len() as u32).to_be_bytes());
    out.extend_from_slice(&bound);
    let hash: [u8; 32] = Sha256::digest(&out).into();
    for (secret, kas) in ephemerals.iter().zip(kas) {
        let recipient = kas.public_key().to_bytes();
        let shared = secret.diffie_hellman(&PublicKey::from(recipient));
        let salt = [PublicKey::from(secret).to_bytes(), recipient].concat();
        let wrap_key = hkdf(shared.as_bytes(), &salt, &[b"irm/v1/kas-wrap"]);
        out.extend_from_slice(&aes_gcm(&wrap_key, [0; 12], &hash, &key));
    }
    let metadata_key = hkdf(&key, &file_id, &[b"irm/v1/metadata", &hash]);
    let metadata = aes_gcm(&metadata_key, [0; 12], &[], &content.metadata);
    out.extend_from_slice(&(metadata.len() as u32).to_be_bytes());
    out.extend_from_slice(&metadata);
    let payload_key = hkdf(&key, &file_id, &[b"irm/v1/payload", &hash]);
    for (index, (plaintext, last)) in content.chunks.iter().enumerate() {
        let mut nonce = [0u8; 12];
        nonce[3..11].copy_from_slice(&(index as u64).to_be_bytes());
        nonce[11] = u8::from(*last);
        out.extend_from_slice(&aes_gcm(&payload_key, nonce, &[], plaintext));
    }
    (out, hash)
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

    v.extend(payload_length_vectors(&kas));
    v.extend(low_order_vectors(&kas));
    v.extend(unknown_field_vectors(&kas));
    v.extend(string_vectors(&kas));
    v.extend(policy_rule_vectors(&kas));
    v.extend(key_access_vectors(&kas));
    v.extend(payload_end_vectors(&kas));
    v.push(success(
        "ok_file_name_with_path",
        vec![("kas-secret-key", kas_text(&kas))],
        seal(
            &kas,
            plain_policy(),
            Metadata {
                file_name: Some("/tmp/../etc/cron.d/customers.csv".to_owned()),
                media_type: Some("text/csv".to_owned()),
                plaintext_len: Some(100),
            },
            None,
            &pattern(100),
        ),
        "the stored file name is /tmp/../etc/cron.d/customers.csv (absolute, with ..): a reader accepts it as text and must never use it as a path (FORMAT.md §6.3)",
    ));
    v
}

/// The one place the cases added after the first freeze build a policy:
/// `@support` may view until 2030, unless the case says otherwise.
fn policy_of(
    grants: Vec<PolicyGrant>,
    not_before: Option<u64>,
    classification: Option<&str>,
) -> Policy {
    Policy::builder()
        .grants(grants)
        .not_before(not_before)
        .not_after(NOT_AFTER)
        .classification(classification.map(str::to_owned))
        .build()
        .expect("valid policy")
}

/// FORMAT.md §6.2 and §6.5: the plaintext cap, and how a payload may end.
fn payload_end_vectors(kas: &KasSecretKey) -> Vec<Vector> {
    let key = || vec![("kas-secret-key", kas_text(kas))];
    const STRIDE: usize = 1024 + 16;
    let mut v = Vec::new();

    let sealed = seal(kas, plain_policy(), declared(100), None, &pattern(100));
    let over = Metadata {
        plaintext_len: Some((1 << 48) + 1),
        ..Metadata::default()
    };
    let (bytes, _) = reseal(
        &sealed,
        &[kas],
        |_| {},
        Reseal {
            metadata: metadata_record(&over).encode(),
            chunks: standard_chunks(&sealed.plaintext, 65536),
        },
    );
    v.push(failure(
        "declared_length_over_limit",
        "open_error",
        "limit_exceeded",
        None,
        key(),
        bytes,
        "sealed with a metadata record declaring 2^48 + 1 plaintext bytes, one above the cap (the payload holds 100): refused when the metadata is read, before the payload",
    ));

    let three_chunks =
        |metadata: Metadata| seal(kas, plain_policy(), metadata, Some(1024), &pattern(2500));
    let mut bytes = three_chunks(declared(2500)).bytes;
    let p = layout(&bytes).payload_start;
    bytes.truncate(p + 2 * STRIDE + 10);
    v.push(failure(
        "last_piece_shorter_than_a_tag",
        "open_error",
        "truncated",
        None,
        key(),
        bytes,
        "2500 bytes at chunk length 1024 (three chunks), declared; cut 10 bytes into the final chunk: a last piece of 1 to 15 bytes is no chunk, and with a declared length the length says truncated",
    ));
    let mut bytes = three_chunks(declared(2500)).bytes;
    bytes.extend_from_slice(b"extra");
    v.push(failure(
        "short_piece_after_final_chunk",
        "open_error",
        "trailing_data",
        None,
        key(),
        bytes,
        "2500 bytes at chunk length 1024 (three chunks), declared; 5 bytes appended: with a declared length the length says trailing data",
    ));
    let mut bytes = three_chunks(Metadata::default()).bytes;
    let p = layout(&bytes).payload_start;
    bytes.truncate(p + 2 * STRIDE + 10);
    v.push(failure(
        "no_length_last_piece_shorter_than_a_tag",
        "open_error",
        "truncated",
        None,
        key(),
        bytes,
        "2500 bytes at chunk length 1024 (three chunks), no declared length; cut 10 bytes into the final chunk: the chunk before the 10-byte piece does not verify as final, so truncated",
    ));

    let sealed = seal(
        kas,
        plain_policy(),
        Metadata::default(),
        Some(1024),
        &pattern(1024),
    );
    let (bytes, _) = reseal(
        &sealed,
        &[kas],
        |_| {},
        Reseal {
            metadata: metadata_record(&Metadata::default()).encode(),
            chunks: vec![(pattern(1024), false), (Vec::new(), true)],
        },
    );
    v.push(failure(
        "empty_final_chunk_not_first",
        "open_error",
        "chunk_authentication_failed",
        Some(1),
        key(),
        bytes,
        "no declared length; 1024 bytes sealed as a full non-final chunk 0 and an authentic empty final chunk 1: an empty final chunk is allowed only as chunk 0",
    ));
    v
}

/// FORMAT.md §4.4: how many key-access entries, and which one a reader uses
/// when several carry its key id.
fn key_access_vectors(kas: &KasSecretKey) -> Vec<Vector> {
    let key = || vec![("kas-secret-key", kas_text(kas))];
    let twice = || {
        seal_with(
            EnvelopeBuilder::new(plain_policy())
                .key_server(KAS_URL, kas.public_key())
                .key_server(KAS_URL, kas.public_key()),
            declared(100),
            None,
            &pattern(100),
            false,
        )
    };
    let mut v = Vec::new();
    let mut sealed = twice();
    let wrapped = layout(&sealed.bytes).wrapped_keys;
    sealed.bytes[wrapped.start + WRAPPED_KEY_LEN] ^= 0x80;
    v.push(success(
        "ok_duplicate_key_id_first_used",
        key(),
        sealed,
        "sealed to the same key server twice (two entries with one key id, each with its own ephemeral key), then the second wrapped key damaged: a reader uses the first matching entry, which unwraps",
    ));
    let mut bytes = twice().bytes;
    let wrapped = layout(&bytes).wrapped_keys;
    bytes[wrapped.start] ^= 0x80;
    v.push(failure(
        "duplicate_key_id_first_damaged",
        "unwrap_error",
        "binding_failed",
        None,
        key(),
        bytes,
        "sealed to the same key server twice, then the first wrapped key damaged: a reader uses the first matching entry and does not fall back to the second",
    ));

    let bytes = seal(kas, plain_policy(), declared(100), None, &pattern(100)).bytes;
    let mut none = edit_bound(&bytes, |bound| bound.edit_list(TAG_KEY_ACCESS, Vec::clear));
    // With no entry there is no wrapped key either (FORMAT.md §2: n = 0).
    let at = layout_end_of_bound(&none);
    none.drain(at..at + WRAPPED_KEY_LEN);
    v.push(failure(
        "no_key_access_entry",
        "format_error",
        "corrupt_header",
        None,
        key(),
        none,
        "the key-access list is empty (count 0) and the wrapped key removed: nobody could unwrap the content key",
    ));
    let too_many = edit_bound(&bytes, |bound| {
        bound.edit_list(TAG_KEY_ACCESS, |entries| {
            let entry = entries[0].clone();
            entries.resize(17, entry);
        })
    });
    v.push(failure(
        "too_many_key_access_entries",
        "format_error",
        "limit_exceeded",
        None,
        key(),
        too_many,
        "the key-access list holds 17 copies of its entry (the limit is 16); a reader refuses it from the list's count, before the entries or the wrapped keys",
    ));
    v
}

/// Where the bound record ends, from the preamble's length field alone (for
/// files whose header no longer parses).
fn layout_end_of_bound(bytes: &[u8]) -> usize {
    let len = u32::from_be_bytes(bytes[BOUND_LEN_AT].try_into().expect("4 bytes"));
    PREAMBLE_LEN + len as usize
}

/// A failure vector for a policy the reader must refuse as `invalid_policy`,
/// with the `PolicyError` kind it refuses it as.
fn invalid_policy(
    name: &'static str,
    policy_kind: &str,
    kas: &KasSecretKey,
    body: Vec<u8>,
    comment: &str,
) -> Vector {
    let mut vector = failure(
        name,
        "format_error",
        "invalid_policy",
        None,
        vec![("kas-secret-key", kas_text(kas))],
        body,
        comment,
    );
    vector
        .head
        .insert(2, ("policy-kind", policy_kind.to_owned()));
    vector
}

/// Replaces the only recipient of the only grant with `name`, fixing up
/// every length.
fn with_recipient(bytes: &[u8], name: &[u8]) -> Vec<u8> {
    edit_recipients(bytes, 0, |items| {
        assert_eq!(items.len(), 1);
        items[0] = name.to_vec();
    })
}

/// FORMAT.md §5.1: which names, orders and windows a reader accepts, and the
/// kind of each refusal.
fn policy_rule_vectors(kas: &KasSecretKey) -> Vec<Vector> {
    let key = || vec![("kas-secret-key", kas_text(kas))];
    let sealed_with = |policy: Policy| seal(kas, policy, declared(100), None, &pattern(100));
    let policy =
        |grants: Vec<PolicyGrant>, not_before: Option<u64>| policy_of(grants, not_before, None);
    let mut v = Vec::new();

    // The worked example of FORMAT.md §5.1: grants sort by their encoded
    // record, whose first difference is the recipients list's length.
    let example = policy(
        vec![
            grant(&["@agents"], Rights::VIEW | Rights::PRINT),
            grant(&["bob"], Rights::VIEW),
        ],
        None,
    );
    assert_eq!(
        example.grants[0]
            .recipients
            .iter()
            .next()
            .map(Recipient::encoded),
        Some("bob".to_owned()),
        "the encoder puts bob's grant first"
    );
    v.push(success(
        "ok_grant_order",
        key(),
        sealed_with(example),
        "grants bob=view and @agents=view,print, stored bob's grant first: grants sort by their encoded record, in which the recipients list's length (9 bytes against 13) comes before any name",
    ));
    v.push(success(
        "ok_at_inside_names",
        key(),
        sealed_with(policy(
            vec![grant(&["@a@b", "carol@example.jp"], Rights::VIEW)],
            None,
        )),
        "the group @a@b (named a@b: only a second @ right after the first is refused) and the user carol@example.jp (an @ after the first character makes no group)",
    ));

    let two = || {
        sealed_with(policy(
            vec![grant(&["@agents", "@supervisors"], Rights::VIEW)],
            None,
        ))
        .bytes
    };
    let one = || sealed_with(plain_policy()).bytes;
    let two_grants = || {
        sealed_with(policy(
            vec![
                grant(&["@agents"], Rights::VIEW | Rights::PRINT),
                grant(&["bob"], Rights::VIEW),
            ],
            None,
        ))
        .bytes
    };
    v.push(failure(
        "recipients_out_of_order",
        "format_error",
        "corrupt_header",
        None,
        key(),
        edit_recipients(&two(), 0, |items| items.swap(0, 1)),
        "the grant's recipients @agents and @supervisors stored in descending order",
    ));
    v.push(failure(
        "recipient_duplicate",
        "format_error",
        "corrupt_header",
        None,
        key(),
        edit_recipients(&one(), 0, |items| items.push(items[0].clone())),
        "the grant names @support twice: recipients must be strictly ascending",
    ));
    v.push(failure(
        "grants_out_of_order",
        "format_error",
        "corrupt_header",
        None,
        key(),
        edit_policy(&two_grants(), |p| {
            p.edit_list(TAG_POLICY_GRANTS, |items| items.swap(0, 1))
        }),
        "the two grants of ok_grant_order's policy stored @agents's first: by their encoding, bob's comes first",
    ));
    v.push(failure(
        "grant_duplicate",
        "format_error",
        "corrupt_header",
        None,
        key(),
        edit_policy(&one(), |p| {
            p.edit_list(TAG_POLICY_GRANTS, |items| items.push(items[0].clone()))
        }),
        "the only grant stored twice: grants must be strictly ascending",
    ));
    v.push(invalid_policy(
        "recipient_with_space",
        "invalid_recipient",
        kas,
        with_recipient(&one(), b"@sup ort"),
        "the recipient @support changed to '@sup ort' (U+0020 SPACE inside)",
    ));
    v.push(invalid_policy(
        "recipient_ideographic_space",
        "invalid_recipient",
        kas,
        with_recipient(&one(), "@sup\u{3000}t".as_bytes()),
        "the recipient @support changed to @sup, U+3000 IDEOGRAPHIC SPACE, t (White_Space, though not ASCII)",
    ));
    v.push(failure(
        "recipient_control_character",
        "format_error",
        "corrupt_header",
        None,
        key(),
        with_recipient(&one(), b"@sup\tort"),
        "the recipient @support changed to @sup, TAB, ort: a control character breaks the string rule (FORMAT.md §1), which is checked before the name rule",
    ));
    v.push(invalid_policy(
        "group_name_double_at",
        "invalid_recipient",
        kas,
        with_recipient(&one(), b"@@upport"),
        "the recipient @support changed to @@upport: a group name may not itself start with @",
    ));
    v.push(invalid_policy(
        "recipient_empty",
        "invalid_recipient",
        kas,
        with_recipient(&one(), b""),
        "the only recipient is the empty string",
    ));
    v.push(failure(
        "recipient_too_long",
        "format_error",
        "limit_exceeded",
        None,
        key(),
        with_recipient(&one(), &[b'a'; 257]),
        "the only recipient is 257 bytes long (the limit is 256)",
    ));
    v.push(invalid_policy(
        "grant_no_recipients",
        "no_recipients",
        kas,
        edit_recipients(&one(), 0, Vec::clear),
        "the only grant's recipient list is empty",
    ));
    v.push(invalid_policy(
        "grant_no_rights",
        "no_rights",
        kas,
        edit_policy(&one(), |p| {
            p.edit_item(TAG_POLICY_GRANTS, 0, |g| {
                g.set(TAG_GRANT_RIGHTS, 0u32.to_be_bytes().to_vec())
            })
        }),
        "the only grant's rights are 0",
    ));
    v.push(invalid_policy(
        "policy_no_grants",
        "no_grants",
        kas,
        edit_policy(&one(), |p| p.edit_list(TAG_POLICY_GRANTS, Vec::clear)),
        "the policy's grant list is empty",
    ));
    v.push(invalid_policy(
        "policy_empty_window",
        "empty_window",
        kas,
        edit_policy(&sealed_with(csv_policy()).bytes, |p| {
            let not_after = p.get(TAG_POLICY_NOT_AFTER).to_vec();
            p.set(TAG_POLICY_NOT_BEFORE, not_after);
        }),
        "not_before set equal to not_after: the window must not be empty",
    ));
    v
}

/// FORMAT.md §1 and §3.3: strings a reader accepts although no front end
/// writes them. Both files are written by the public API, which takes what
/// it is given.
fn string_vectors(kas: &KasSecretKey) -> Vec<Vector> {
    let key = || vec![("kas-secret-key", kas_text(kas))];
    let empty_policy = policy_of(vec![grant(&["@support"], Rights::VIEW)], None, Some(""));
    let sealed = seal_with(
        EnvelopeBuilder::new(empty_policy)
            .key_server("", kas.public_key())
            .issuer(""),
        Metadata {
            file_name: Some(String::new()),
            media_type: Some(String::new()),
            plaintext_len: Some(100),
        },
        None,
        &pattern(100),
        false,
    );
    let empty = success(
        "ok_empty_strings",
        key(),
        sealed,
        "every optional string present but empty (issuer, classification, file name, media type) and an empty key server URL: a reader accepts them and keeps them distinct from absent fields",
    );

    let bom_policy = policy_of(
        vec![grant(&["\u{feff}alice", "@support"], Rights::VIEW)],
        None,
        Some("\u{feff}社外秘"),
    );
    let bom = success(
        "ok_leading_bom",
        key(),
        seal_with(
            EnvelopeBuilder::new(bom_policy)
                .key_server(KAS_URL, kas.public_key())
                .issuer("\u{feff}tanaka"),
            Metadata {
                file_name: Some("\u{feff}顧客一覧.csv".to_owned()),
                media_type: Some("text/csv".to_owned()),
                plaintext_len: Some(100),
            },
            None,
            &pattern(100),
            false,
        ),
        "the issuer, the classification, the file name and a recipient (U+FEFF then alice) begin with U+FEFF: not a byte order mark to strip but a character like any other, kept and compared as its bytes (so that recipient is not alice)",
    );
    vec![empty, bom]
}

/// The head of a success vector for a file `reseal` wrote from `sealed`.
fn resealed_success(
    name: &'static str,
    kas: &KasSecretKey,
    sealed: &Sealed,
    (bytes, hash): (Vec<u8>, [u8; 32]),
    metadata: &Metadata,
    comment: &str,
) -> Vector {
    success_head(
        name,
        vec![("kas-secret-key", kas_text(kas))],
        sealed.header.header(),
        hash,
        metadata,
        &sealed.plaintext,
        bytes,
        comment,
    )
}

/// An ignorable (even) and a critical (odd) tag no version defines.
const UNKNOWN_EVEN_TAG: u16 = 0x7ffe;
const UNKNOWN_ODD_TAG: u16 = 0x7fff;

/// FORMAT.md §3.2 in every record: an unknown even field is parsed past and
/// its bytes kept (these files were sealed with it, so they open, and their
/// header re-encodes to the stored bytes); an unknown odd field is refused.
fn unknown_field_vectors(kas: &KasSecretKey) -> Vec<Vector> {
    let key = || vec![("kas-secret-key", kas_text(kas))];
    let metadata = Metadata {
        file_name: Some("customers.csv".to_owned()),
        media_type: Some("text/csv".to_owned()),
        plaintext_len: Some(1500),
    };
    let seal_one = || {
        seal(
            kas,
            plain_policy(),
            metadata.clone(),
            Some(1024),
            &pattern(1500),
        )
    };
    let value = b"a later version's display hint".to_vec();
    let mut v = Vec::new();

    // Valid files that carry an unknown even field: they open.
    type Edit = fn(&mut Record, Vec<u8>);
    let edits: [(&'static str, &str, Edit); 4] = [
        (
            "ok_unknown_even_field_in_header",
            "the bound record",
            |bound, value| bound.insert(UNKNOWN_EVEN_TAG, value),
        ),
        (
            "ok_unknown_even_field_in_policy",
            "the policy",
            |bound, value| bound.edit(TAG_POLICY, |policy| policy.insert(UNKNOWN_EVEN_TAG, value)),
        ),
        (
            "ok_unknown_even_field_in_grant",
            "the policy's only grant",
            |bound, value| {
                bound.edit(TAG_POLICY, |policy| {
                    policy.edit_item(TAG_POLICY_GRANTS, 0, |grant| {
                        grant.insert(UNKNOWN_EVEN_TAG, value)
                    })
                })
            },
        ),
        (
            "ok_unknown_even_field_in_key_access",
            "the key-access entry",
            |bound, value| {
                bound.edit_item(TAG_KEY_ACCESS, 0, |entry| {
                    entry.insert(UNKNOWN_EVEN_TAG, value)
                })
            },
        ),
    ];
    for (name, record, edit) in edits {
        let sealed = seal_one();
        let value = value.clone();
        let file = reseal(
            &sealed,
            &[kas],
            |bound| edit(bound, value),
            Reseal {
                metadata: metadata_record(&metadata).encode(),
                chunks: standard_chunks(&sealed.plaintext, 1024),
            },
        );
        v.push(resealed_success(
            name,
            kas,
            &sealed,
            file,
            &metadata,
            &format!(
                "sealed with a field of the unknown even (ignorable) tag 0x7ffe in {record}, covered by the header hash: a reader parses past it, keeps its bytes (the header re-encodes to the stored bytes) and opens the file"
            ),
        ));
    }
    let sealed = seal_one();
    let mut record = metadata_record(&metadata);
    record.insert(UNKNOWN_EVEN_TAG, value.clone());
    let file = reseal(
        &sealed,
        &[kas],
        |_| {},
        Reseal {
            metadata: record.encode(),
            chunks: standard_chunks(&sealed.plaintext, 1024),
        },
    );
    v.push(resealed_success(
        "ok_unknown_even_field_in_metadata",
        kas,
        &sealed,
        file,
        &metadata,
        "sealed with a field of the unknown even (ignorable) tag 0x7ffe in the encrypted metadata record: a reader ignores it and opens the file",
    ));

    // An unknown odd field: refused where it is found.
    let cases: [(&'static str, &str, Edit); 3] = [
        (
            "policy_unknown_critical_field",
            "the policy",
            |bound, value| bound.edit(TAG_POLICY, |policy| policy.insert(UNKNOWN_ODD_TAG, value)),
        ),
        (
            "grant_unknown_critical_field",
            "the policy's only grant",
            |bound, value| {
                bound.edit(TAG_POLICY, |policy| {
                    policy.edit_item(TAG_POLICY_GRANTS, 0, |grant| {
                        grant.insert(UNKNOWN_ODD_TAG, value)
                    })
                })
            },
        ),
        (
            "key_access_unknown_critical_field",
            "the key-access entry",
            |bound, value| {
                bound.edit_item(TAG_KEY_ACCESS, 0, |entry| {
                    entry.insert(UNKNOWN_ODD_TAG, value)
                })
            },
        ),
    ];
    for (name, record, edit) in cases {
        let value = value.clone();
        v.push(failure(
            name,
            "format_error",
            "unknown_critical_field",
            None,
            key(),
            edit_bound(&seal_one().bytes, |bound| edit(bound, value)),
            &format!(
                "a field of the unknown odd (critical) tag 0x7fff added to {record}, lengths fixed up: a reader refuses it while parsing"
            ),
        ));
    }
    let sealed = seal_one();
    let mut record = metadata_record(&metadata);
    record.insert(7, value);
    let (bytes, _) = reseal(
        &sealed,
        &[kas],
        |_| {},
        Reseal {
            metadata: record.encode(),
            chunks: standard_chunks(&sealed.plaintext, 1024),
        },
    );
    v.push(failure(
        "metadata_unknown_critical_field",
        "open_error",
        "unknown_critical_field",
        None,
        key(),
        bytes,
        "sealed with a field of the unknown odd (critical) tag 7 in the encrypted metadata record: it authenticates, and a reader refuses it as a critical field it does not know, not as altered",
    ));
    v
}

/// A point of order 8 on Curve25519: X25519 of any scalar with it is all
/// zeros (RFC 7748 §6.1; the scalar's clamping makes it a multiple of 8).
const LOW_ORDER_POINT: [u8; 32] = [
    0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
    0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00,
];

/// FORMAT.md §4.3: a low-order ephemeral key is `non_contributory`, on the
/// key server's path and on a device's.
fn low_order_vectors(kas: &KasSecretKey) -> Vec<Vector> {
    let key = || vec![("kas-secret-key", kas_text(kas))];
    let bytes = seal(kas, plain_policy(), declared(100), None, &pattern(100)).bytes;
    let bytes = edit_bound(&bytes, |bound| {
        bound.edit_item(TAG_KEY_ACCESS, 0, |entry| {
            entry.set(TAG_KA_EPHEMERAL, LOW_ORDER_POINT.to_vec())
        })
    });
    let kas_case = failure(
        "kas_ephemeral_low_order",
        "unwrap_error",
        "non_contributory",
        None,
        key(),
        bytes,
        "the key-access entry's ephemeral key replaced by a point of order 8 (e0eb7a7c...b800): the shared secret is all zeros whatever the key server's key",
    );

    let device = DeviceSecretKey::generate().expect("the system RNG");
    let device_id = random_id();
    let sealed = seal(kas, plain_policy(), declared(100), None, &pattern(100));
    let mut wrapped = grant_to_device(
        &sealed.header,
        &sealed.header,
        &device.public_key(),
        device_id,
    );
    wrapped.ephemeral_public = LOW_ORDER_POINT;
    let device_case = failure(
        "device_ephemeral_low_order",
        "unwrap_error",
        "non_contributory",
        None,
        device_keys(&device, device_id, LEASE_EXPIRES_AT, &wrapped),
        sealed.bytes,
        "device path: the grant's ephemeral key replaced by a point of order 8 (e0eb7a7c...b800), its ciphertext intact: the shared secret is all zeros",
    );
    vec![kas_case, device_case]
}

/// The header of a file that declares `declared` plaintext bytes at chunk
/// length 1024, followed by `actual` bytes sealed as a sealer seals them:
/// the metadata and the chunks each authenticate, and disagree.
fn declared_but_sealed(kas: &KasSecretKey, declared_len: usize, actual: usize) -> Vec<u8> {
    let header = EnvelopeBuilder::new(plain_policy())
        .key_server(KAS_URL, kas.public_key())
        .metadata(declared(declared_len))
        .chunk_len(1024)
        .created_at_unix(CREATED_AT)
        .build()
        .expect("building the header");
    let mut out = header.header().to_bytes();
    let start = out.len();
    for chunk in pattern(actual).chunks(1024) {
        out.extend_from_slice(chunk);
        out.extend_from_slice(&[0; 16]);
    }
    // `seal_payload_in_place` takes the chunk layout from the payload's
    // length, not from the declared one.
    seal_payload_in_place(&header, &mut out[start..], StreamOptions::default());
    out
}

/// FORMAT.md §6.4: with a declared length, the payload's length is checked
/// first, whatever its chunks hold.
fn payload_length_vectors(kas: &KasSecretKey) -> Vec<Vector> {
    let key = || vec![("kas-secret-key", kas_text(kas))];
    vec![
        failure(
            "payload_longer_than_declared",
            "open_error",
            "trailing_data",
            None,
            key(),
            declared_but_sealed(kas, 2000, 2500),
            "the metadata declares 2000 plaintext bytes, the payload is 2500 bytes sealed at chunk length 1024 (three chunks, the last one final): longer than declared, every chunk authentic",
        ),
        failure(
            "payload_shorter_than_declared",
            "open_error",
            "truncated",
            None,
            key(),
            declared_but_sealed(kas, 2500, 2000),
            "the metadata declares 2500 plaintext bytes, the payload is 2000 bytes sealed at chunk length 1024 (two chunks, the second one final): shorter than declared, every chunk authentic",
        ),
    ]
}

/// What to do with vectors that already exist in the directory.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Existing {
    /// Refuse to run: a changed vector means a changed format.
    Refuse,
    /// Write only the vectors that are not there yet, leaving every existing
    /// file untouched: how a case added to a frozen set is generated once.
    Keep,
    /// Overwrite them all (`--force`): only with a new format version.
    Overwrite,
}

fn run(dir: &Path, existing_files: Existing) -> Result<(), String> {
    let mut vectors = all_vectors();
    let mut names: Vec<&str> = vectors.iter().map(|v| v.name).collect();
    names.sort_unstable();
    if let Some(twice) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("two cases are named {}", twice[0]));
    }
    if existing_files == Existing::Keep {
        vectors.retain(|v| !dir.join(v.name).exists());
    }
    let paths: Vec<PathBuf> = vectors.iter().map(|v| dir.join(v.name)).collect();
    if existing_files == Existing::Refuse {
        let existing: Vec<String> = paths
            .iter()
            .filter(|p| p.exists())
            .map(|p| p.display().to_string())
            .collect();
        if !existing.is_empty() {
            return Err(format!(
                "refusing to overwrite frozen vectors (a changed vector means a changed format; pass --missing to add new cases only, --force to regenerate): {}",
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

const USAGE: &str = "usage: gen_vectors [--missing | --force] <directory>";

fn main() -> ExitCode {
    let mut existing = Existing::Refuse;
    let mut dir = None;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--force" if existing == Existing::Refuse => existing = Existing::Overwrite,
            "--missing" if existing == Existing::Refuse => existing = Existing::Keep,
            _ if dir.is_none() && !arg.starts_with('-') => dir = Some(PathBuf::from(arg)),
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(dir) = dir else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    match run(&dir, existing) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("gen_vectors: {message}");
            ExitCode::FAILURE
        }
    }
}
