//! libirm learns of a revocation while a document is open (PROTOCOL.md
//! §13): its push channel tells it within seconds, and `irm_document_check`
//! and the next `irm_read` fail with the reason, while the document's lease
//! still has most of its ten minutes left; that is, the key server told it,
//! the lease did not run out. Against a real key server on loopback,
//! through the C ABI as C calls it.

#![allow(unsafe_code)] // The point is to call the C ABI as C does.

use std::time::{Duration, Instant};

use irm::{
    IRM_RIGHT_PROGRAM, IRM_RIGHT_VIEW, irm_client_free, irm_close, irm_document_check,
    irm_document_lease_expires_in, irm_read, irm_status,
};
use irm_e2e::libirm::{check, client_open, open, seal_offline};
use irm_e2e::stage::enroll;
use irm_e2e::{ADMIN, Server};

const PASSPHRASE: &str = "a passphrase for the push channel test";

#[test]
fn an_open_document_fails_with_the_reason_soon_after_its_file_is_revoked() {
    let server = Server::start();
    let home = tempfile::TempDir::new().expect("a home directory");
    let config_dir = home.path().join("irm");
    let session = enroll(&server, &config_dir, ADMIN, &server.admin_code, PASSPHRASE);
    let (info, kas_key) = session.server_key().expect("the server's key");
    let sealed = seal_offline(
        &kas_key.to_text(),
        &info.url,
        ADMIN,
        IRM_RIGHT_VIEW | IRM_RIGHT_PROGRAM,
        "customers.csv",
        "id,name\n1,Yamada Taro\n".as_bytes(),
    );
    let path = home.path().join("customers.csv.irm");
    std::fs::write(&path, &sealed).expect("writing the sealed file");
    let file_id = irm_core::SealedHeader::read_from(&mut &sealed[..])
        .expect("a header")
        .file_id()
        .to_string();

    let client = client_open(&config_dir, PASSPHRASE);
    // SAFETY: a live client.
    let doc = unsafe { open(client, &path) };
    let mut buf = [0u8; 64];
    let mut n = 0usize;
    // SAFETY: a live document, a writable buffer and count.
    check(
        unsafe { irm_read(doc, buf.as_mut_ptr(), buf.len(), &raw mut n) },
        "irm_read",
    );
    assert!(n > 0, "the plaintext is readable before the revocation");
    // SAFETY: a live document.
    check(unsafe { irm_document_check(doc) }, "irm_document_check");

    let revoked_at = Instant::now();
    session
        .revoke_file(&file_id)
        .expect("the administrator revokes the file");
    // A program polls `irm_document_check` on a timer; a generous bound
    // only turns a channel that never speaks into a failure.
    let status = loop {
        // SAFETY: a live document.
        let status = unsafe { irm_document_check(doc) };
        if status != irm_status::IRM_OK || revoked_at.elapsed() > Duration::from_secs(60) {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = revoked_at.elapsed();
    assert_eq!(status, irm_status::IRM_STATUS_DENIED_FILE_REVOKED);
    // SAFETY: a live document, a writable buffer and count.
    let read = unsafe { irm_read(doc, buf.as_mut_ptr(), buf.len(), &raw mut n) };
    assert_eq!(read, irm_status::IRM_STATUS_DENIED_FILE_REVOKED);
    let mut left = 0u64;
    // SAFETY: a live document, a writable output.
    check(
        unsafe { irm_document_lease_expires_in(doc, &raw mut left) },
        "irm_document_lease_expires_in",
    );
    assert!(
        left > 500,
        "closed by the push channel while the lease had {left} s left"
    );
    println!("libirm: closed {took:?} after the revocation");
    // SAFETY: the document and client libirm returned, each freed once.
    unsafe {
        irm_close(doc);
        irm_client_free(client);
    }
}
