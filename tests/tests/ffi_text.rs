//! libirm tells a C caller which text encoding a document is in and hands it
//! the text in UTF-8 (`irm_document_text_encoding`, `irm_document_text_utf8`),
//! by the viewer's rule (`irm_client::text`). Documents sealed through
//! libirm's offline sealing (CP932 as Japanese Excel writes it, UTF-8,
//! UTF-16LE with a BOM, empty, damaged CP932) are opened and read through the
//! C ABI against a real key server on loopback; bad arguments and a grant
//! without the program right get their status and leave the outputs alone.

#![allow(unsafe_code)] // The point is to call the C ABI as C does.

use std::ffi::c_int;

use irm::{
    IRM_RIGHT_PROGRAM, IRM_RIGHT_VIEW, irm_buffer_free, irm_client, irm_client_free, irm_close,
    irm_document, irm_document_text_encoding, irm_document_text_utf8, irm_read, irm_status,
    irm_text_encoding,
};
use irm_e2e::libirm::{check, client_open, last_error, open, seal_offline};
use irm_e2e::stage::enroll;
use irm_e2e::{ADMIN, Server};

const PASSPHRASE: &str = "a passphrase for the text encoding test";
const CUSTOMERS: &str =
    "顧客番号,氏名,電話\n1001,山田 太郎,03-1234-5678\n1002,髙橋 ①,06-0000-0000\n";

/// Seals `data` offline through libirm for the administrator with `rights`.
fn seal(kas_text: &str, kas_url: &str, rights: u32, data: &[u8]) -> Vec<u8> {
    seal_offline(kas_text, kas_url, ADMIN, rights, "customers.csv", data)
}

fn encoding_of(doc: *mut irm_document) -> irm_text_encoding {
    // Any value libirm would not write, to see that it was written.
    let mut encoding = irm_text_encoding::IRM_TEXT_UTF16BE;
    // SAFETY: a live document, a writable output.
    check(
        unsafe { irm_document_text_encoding(doc, &raw mut encoding) },
        "irm_document_text_encoding",
    );
    encoding
}

/// The text in UTF-8 and whether bytes were replaced, the buffer freed again.
fn text_of(doc: *mut irm_document) -> (String, bool) {
    let (mut text, mut len, mut had_errors): (*mut u8, usize, c_int) =
        (std::ptr::dangling_mut(), usize::MAX, -1);
    // SAFETY: a live document, writable outputs.
    check(
        unsafe { irm_document_text_utf8(doc, &raw mut text, &raw mut len, &raw mut had_errors) },
        "irm_document_text_utf8",
    );
    assert!(had_errors == 0 || had_errors == 1, "{had_errors}");
    if len == 0 {
        assert!(text.is_null(), "an empty text comes back as NULL");
        return (String::new(), had_errors == 1);
    }
    // SAFETY: libirm returned `len` readable bytes at `text`.
    let bytes = unsafe { std::slice::from_raw_parts(text, len) }.to_vec();
    // SAFETY: the buffer libirm returned, freed once with its length.
    unsafe { irm_buffer_free(text, len) };
    (
        String::from_utf8(bytes).expect("irm_document_text_utf8 gives UTF-8"),
        had_errors == 1,
    )
}

/// The first `n` plaintext bytes through `irm_read` from the current position.
fn read_start(doc: *mut irm_document, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    let mut written = 0usize;
    // SAFETY: a live document, `n` writable bytes, a writable count.
    check(
        unsafe { irm_read(doc, buf.as_mut_ptr(), n, &raw mut written) },
        "irm_read",
    );
    buf.truncate(written);
    buf
}

struct Stage {
    _server: Server,
    client: *mut irm_client,
    kas_text: String,
    kas_url: String,
    dir: tempfile::TempDir,
}

impl Stage {
    fn new() -> Self {
        let server = Server::start();
        let home = tempfile::TempDir::new().expect("a home directory");
        let config_dir = home.path().join("irm");
        let session = enroll(&server, &config_dir, ADMIN, &server.admin_code, PASSPHRASE);
        let (info, kas_key) = session.server_key().expect("the server's key");
        let client = client_open(&config_dir, PASSPHRASE);
        Self {
            _server: server,
            client,
            kas_text: kas_key.to_text(),
            kas_url: info.url,
            dir: home,
        }
    }

    /// Seals `data` into a file of its own and opens it through libirm.
    fn document(&self, name: &str, rights: u32, data: &[u8]) -> *mut irm_document {
        let path = self.dir.path().join(name);
        std::fs::write(&path, seal(&self.kas_text, &self.kas_url, rights, data))
            .expect("writing the sealed file");
        // SAFETY: the stage's client lives until the stage is dropped.
        unsafe { open(self.client, &path) }
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        // SAFETY: the client irm_client_open returned, freed once.
        unsafe { irm_client_free(self.client) };
    }
}

#[test]
fn each_encoding_is_named_and_its_text_comes_back_in_utf8() {
    let stage = Stage::new();
    let (cp932, _, unmappable) = encoding_rs::SHIFT_JIS.encode(CUSTOMERS);
    assert!(!unmappable && std::str::from_utf8(&cp932).is_err());
    let mut utf8_bom = b"\xEF\xBB\xBF".to_vec();
    utf8_bom.extend_from_slice(CUSTOMERS.as_bytes());
    let mut utf16le = vec![0xFF, 0xFE];
    for unit in CUSTOMERS.encode_utf16() {
        utf16le.extend_from_slice(&unit.to_le_bytes());
    }
    // A CP932 export cut in the middle of a two-byte character.
    let mut damaged = cp932.to_vec();
    damaged.push(0x82);

    use irm_text_encoding::*;
    let cases: [(&str, &[u8], irm_text_encoding, &str, bool); 6] = [
        ("cp932", &cp932, IRM_TEXT_CP932, CUSTOMERS, false),
        (
            "utf8",
            CUSTOMERS.as_bytes(),
            IRM_TEXT_UTF8,
            CUSTOMERS,
            false,
        ),
        ("utf8-bom", &utf8_bom, IRM_TEXT_UTF8_BOM, CUSTOMERS, false),
        ("utf16le", &utf16le, IRM_TEXT_UTF16LE, CUSTOMERS, false),
        ("empty", b"", IRM_TEXT_UTF8, "", false),
        (
            "damaged-cp932",
            &damaged,
            IRM_TEXT_CP932,
            &format!("{CUSTOMERS}\u{FFFD}"),
            true,
        ),
    ];
    for (name, data, want_encoding, want_text, want_errors) in cases {
        let doc = stage.document(name, IRM_RIGHT_VIEW | IRM_RIGHT_PROGRAM, data);
        assert_eq!(encoding_of(doc), want_encoding, "{name}");
        assert_eq!(text_of(doc), (want_text.to_owned(), want_errors), "{name}");
        // Asked again (answered from the first detection) and in the other order.
        assert_eq!(encoding_of(doc), want_encoding, "{name}, again");
        // Neither call moved the read position: irm_read starts at byte 0.
        let start = read_start(doc, 4);
        assert_eq!(start, &data[..data.len().min(4)], "{name}");
        // SAFETY: the document irm_open returned, closed once.
        unsafe { irm_close(doc) };
    }

    // Converting first, then asking the encoding.
    let doc = stage.document(
        "cp932-text-first",
        IRM_RIGHT_VIEW | IRM_RIGHT_PROGRAM,
        &cp932,
    );
    assert_eq!(text_of(doc), (CUSTOMERS.to_owned(), false));
    assert_eq!(encoding_of(doc), IRM_TEXT_CP932);
    // SAFETY: the document irm_open returned, closed once.
    unsafe { irm_close(doc) };
}

#[test]
fn bad_arguments_and_missing_rights_get_their_status_and_leave_the_outputs_alone() {
    let stage = Stage::new();
    let doc = stage.document(
        "customers",
        IRM_RIGHT_VIEW | IRM_RIGHT_PROGRAM,
        CUSTOMERS.as_bytes(),
    );
    let untouched = irm_text_encoding::IRM_TEXT_UTF16BE;
    let mut encoding = untouched;
    let (mut text, mut len, mut had_errors): (*mut u8, usize, c_int) = (std::ptr::null_mut(), 7, 7);
    let null_document: *const irm_document = std::ptr::null();
    // SAFETY: every pointer is NULL, a live document, a closed one (checked
    // by libirm against its registry) or writable.
    unsafe {
        assert_eq!(
            irm_document_text_encoding(null_document, &raw mut encoding),
            irm_status::IRM_STATUS_NULL_ARGUMENT
        );
        assert_eq!(
            irm_document_text_encoding(doc, std::ptr::null_mut()),
            irm_status::IRM_STATUS_NULL_ARGUMENT
        );
        assert_eq!(
            irm_document_text_utf8(
                null_document,
                &raw mut text,
                &raw mut len,
                &raw mut had_errors
            ),
            irm_status::IRM_STATUS_NULL_ARGUMENT
        );
        assert_eq!(
            irm_document_text_utf8(doc, std::ptr::null_mut(), &raw mut len, &raw mut had_errors),
            irm_status::IRM_STATUS_NULL_ARGUMENT
        );
        assert_eq!(
            irm_document_text_utf8(
                doc,
                &raw mut text,
                std::ptr::null_mut(),
                &raw mut had_errors
            ),
            irm_status::IRM_STATUS_NULL_ARGUMENT
        );
        assert!(last_error().contains("text_len"), "{}", last_error());
        assert_eq!((encoding, len, had_errors), (untouched, 7, 7));
        assert!(text.is_null());

        // `had_errors` is optional.
        assert_eq!(
            irm_document_text_utf8(doc, &raw mut text, &raw mut len, std::ptr::null_mut()),
            irm_status::IRM_OK
        );
        assert_eq!(std::slice::from_raw_parts(text, len), CUSTOMERS.as_bytes());
        irm_buffer_free(text, len);

        // A closed document is no longer a live handle.
        irm_close(doc);
        let (mut text, mut len) = (std::ptr::null_mut(), 7);
        assert_eq!(
            irm_document_text_encoding(doc, &raw mut encoding),
            irm_status::IRM_STATUS_INVALID_HANDLE
        );
        assert_eq!(
            irm_document_text_utf8(doc, &raw mut text, &raw mut len, &raw mut had_errors),
            irm_status::IRM_STATUS_INVALID_HANDLE
        );
        assert_eq!((encoding, len, had_errors), (untouched, 7, 7));
        assert!(text.is_null());
    }

    // View only: neither the text nor the encoding derived from it is
    // handed to a program.
    let view_only = stage.document("view-only", IRM_RIGHT_VIEW, CUSTOMERS.as_bytes());
    let (mut text, mut len) = (std::ptr::null_mut(), 7);
    // SAFETY: a live document, writable outputs.
    unsafe {
        assert_eq!(
            irm_document_text_encoding(view_only, &raw mut encoding),
            irm_status::IRM_STATUS_NO_PROGRAM_RIGHT
        );
        assert_eq!(
            irm_document_text_utf8(view_only, &raw mut text, &raw mut len, &raw mut had_errors),
            irm_status::IRM_STATUS_NO_PROGRAM_RIGHT
        );
        irm_close(view_only);
    }
    assert_eq!((encoding, len, had_errors), (untouched, 7, 7));
    assert!(text.is_null());
}
