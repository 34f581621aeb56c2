//! FORMAT.md §6.3: libirm hands a document's stored file name to its caller
//! as text, through `irm_document_metadata`, and never uses it as a path.
//! A file sealed (through libirm's own offline sealing) with names that point
//! above the working directory and at an absolute path is opened and read
//! through the C ABI against a real key server on loopback: the names come
//! back verbatim, the plaintext is right, and no file appears anywhere they
//! point.

#![allow(unsafe_code)] // The point is to call the C ABI as C does.

use std::ffi::{CStr, c_char};
use std::path::{Path, PathBuf};

use irm::{
    irm_client, irm_client_free, irm_close, irm_document_metadata, irm_read, irm_string_free,
};
use irm_e2e::libirm::{check, client_open, open, seal_offline};
use irm_e2e::stage::enroll;
use irm_e2e::{ADMIN, Server};

const PASSPHRASE: &str = "a passphrase for the stored-name test";
/// `view` and `program` (irm_read needs the latter).
const RIGHTS: u32 = 1 | 16;

/// Every path below `dir`, relative to it, sorted.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(at) = pending.pop() {
        for entry in std::fs::read_dir(&at).expect("reading a directory") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path.clone());
            }
            found.push(path.strip_prefix(dir).expect("below dir").to_owned());
        }
    }
    found.sort();
    found
}

/// Seals `data` offline through libirm, recording `file_name` as given.
fn seal(kas_text: &str, kas_url: &str, file_name: &str, data: &[u8]) -> Vec<u8> {
    seal_offline(kas_text, kas_url, ADMIN, RIGHTS, file_name, data)
}

/// Opens `path` through libirm; returns the stored file name and the
/// plaintext read with `irm_read`.
fn open_and_read(client: *mut irm_client, path: &Path) -> (Option<String>, Vec<u8>) {
    // SAFETY: the caller's live client (the test frees it only at its end).
    let doc = unsafe { open(client, path) };
    let (mut name, mut media, mut len): (*mut c_char, *mut c_char, u64) =
        (std::ptr::null_mut(), std::ptr::null_mut(), 0);
    // SAFETY: a live document, three writable outputs.
    check(
        unsafe { irm_document_metadata(doc, &raw mut name, &raw mut media, &raw mut len) },
        "irm_document_metadata",
    );
    let stored = (!name.is_null()).then(|| {
        // SAFETY: a NUL-terminated string libirm just returned.
        unsafe { CStr::from_ptr(name) }
            .to_str()
            .expect("UTF-8")
            .to_owned()
    });
    // SAFETY: the strings libirm returned, each freed once (NULL is allowed).
    unsafe {
        irm_string_free(name);
        irm_string_free(media);
    }
    let mut plain = vec![0u8; usize::try_from(len).expect("a small file")];
    let mut filled = 0;
    while filled < plain.len() {
        let mut written = 0usize;
        // SAFETY: a live document, `plain.len() - filled` writable bytes, a
        // writable count.
        check(
            unsafe {
                irm_read(
                    doc,
                    plain[filled..].as_mut_ptr(),
                    plain.len() - filled,
                    &raw mut written,
                )
            },
            "irm_read",
        );
        assert!(written > 0, "irm_read stopped before the end");
        filled += written;
    }
    // SAFETY: the document irm_open returned, closed once.
    unsafe { irm_close(doc) };
    (stored, plain)
}

#[test]
fn a_stored_file_name_is_returned_as_text_and_nothing_is_written_where_it_points() {
    let server = Server::start();
    let home = tempfile::TempDir::new().expect("a home directory");
    let config_dir = home.path().join("irm");
    let session = enroll(&server, &config_dir, ADMIN, &server.admin_code, PASSPHRASE);
    let (info, kas_key) = session.server_key().expect("the server's key");

    let scratch = tempfile::TempDir::new().expect("a scratch directory");
    let work = scratch.path().join("work");
    std::fs::create_dir(&work).expect("a work directory");
    let absolute = scratch.path().join("absolute.csv");
    // Relative names resolve against the process's working directory, which
    // libirm would use if it ever wrote by name.
    let escaped = format!("../irm-stored-name-{}.csv", std::process::id());
    assert!(!Path::new(&escaped).exists());
    let data = b"customer,phone\nYamada,03-1234-5678\n".repeat(50);

    let client = client_open(&config_dir, PASSPHRASE);
    for name in [
        escaped,
        absolute.display().to_string(),
        "sub/../../escaped.csv".to_owned(),
    ] {
        let sealed_path = work.join("in.irm");
        std::fs::write(
            &sealed_path,
            seal(&kas_key.to_text(), &info.url, &name, &data),
        )
        .expect("writing the sealed file");
        let before = tree(scratch.path());
        let (stored, plain) = open_and_read(client, &sealed_path);
        assert_eq!(stored.as_deref(), Some(name.as_str()), "returned verbatim");
        assert_eq!(plain, data, "{name}");
        assert_eq!(tree(scratch.path()), before, "stored name {name:?}");
        assert!(!Path::new(&name).exists(), "a file appeared at {name}");
    }
    // SAFETY: the client irm_client_open returned, freed once.
    unsafe { irm_client_free(client) };
}
