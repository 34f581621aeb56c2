//! libirm's C ABI as the tests that call it need it: C strings, the status
//! check with libirm's own last error, opening a client, offline sealing of
//! a buffer and opening a file, each as C would call them.

use std::ffi::{CString, c_char};
use std::path::Path;

use irm::{
    irm_buffer_free, irm_client, irm_client_open, irm_document, irm_open, irm_policy,
    irm_policy_add_grant, irm_policy_free, irm_policy_new, irm_seal_buffer_offline, irm_status,
};

/// `text` as a C string.
pub fn c(text: &str) -> CString {
    CString::new(text).expect("no NUL inside")
}

/// libirm's message for this thread's last failure.
pub fn last_error() -> String {
    let mut buf = [0u8; 1024];
    let mut written = 0usize;
    // SAFETY: `buf` has `buf.len()` writable bytes; `written` is writable.
    unsafe {
        irm::irm_last_error_message(
            buf.as_mut_ptr().cast::<c_char>(),
            buf.len(),
            &raw mut written,
        )
    };
    String::from_utf8_lossy(&buf[..written.min(buf.len())]).into_owned()
}

/// Asserts that `what` returned `IRM_OK`, with libirm's message otherwise.
pub fn check(status: irm_status, what: &str) {
    assert_eq!(
        status,
        irm_status::IRM_OK,
        "{what} failed: {}",
        last_error()
    );
}

/// Seals `data` offline through libirm to the key server `kas_text` at
/// `kas_url`, for `recipient` with `rights`, recording `file_name` as given.
pub fn seal_offline(
    kas_text: &str,
    kas_url: &str,
    recipient: &str,
    rights: u32,
    file_name: &str,
    data: &[u8],
) -> Vec<u8> {
    let mut policy: *mut irm_policy = std::ptr::null_mut();
    // SAFETY: a writable output.
    check(unsafe { irm_policy_new(&raw mut policy) }, "irm_policy_new");
    let recipients = c(recipient);
    // SAFETY: the live policy, a NUL-terminated list.
    check(
        unsafe { irm_policy_add_grant(policy, recipients.as_ptr(), rights) },
        "irm_policy_add_grant",
    );
    let (kas_text, kas_url, name, media) = (c(kas_text), c(kas_url), c(file_name), c("text/csv"));
    let mut out: *mut u8 = std::ptr::null_mut();
    let mut out_len = 0usize;
    // SAFETY: a live policy, a readable buffer, NUL-terminated strings,
    // writable outputs.
    let status = unsafe {
        irm_seal_buffer_offline(
            kas_text.as_ptr(),
            kas_url.as_ptr(),
            policy,
            data.as_ptr(),
            data.len(),
            name.as_ptr(),
            media.as_ptr(),
            &raw mut out,
            &raw mut out_len,
        )
    };
    check(status, "irm_seal_buffer_offline");
    // SAFETY: libirm returned `out_len` readable bytes at `out`.
    let sealed = unsafe { std::slice::from_raw_parts(out, out_len) }.to_vec();
    // SAFETY: the buffer and policy libirm returned, each freed once.
    unsafe {
        irm_buffer_free(out, out_len);
        irm_policy_free(policy);
    }
    sealed
}

/// The credentials in `config_dir`, unlocked with `passphrase`, as a libirm
/// client (`irm_client_open`); the caller frees it with `irm_client_free`.
pub fn client_open(config_dir: &Path, passphrase: &str) -> *mut irm_client {
    let config = c(config_dir.to_str().expect("a UTF-8 temporary path"));
    let passphrase = c(passphrase);
    let mut client: *mut irm_client = std::ptr::null_mut();
    // SAFETY: NUL-terminated strings, a writable output.
    check(
        unsafe { irm_client_open(config.as_ptr(), passphrase.as_ptr(), &raw mut client) },
        "irm_client_open",
    );
    client
}

/// Opens the sealed file at `path` through `client` (`irm_open`).
///
/// # Safety
///
/// `client` is a live client from `irm_client_open`, not yet freed.
pub unsafe fn open(client: *mut irm_client, path: &Path) -> *mut irm_document {
    let path = c(path.to_str().expect("a UTF-8 temporary path"));
    let mut doc: *mut irm_document = std::ptr::null_mut();
    // SAFETY: a live client (the caller's promise), a NUL-terminated path,
    // a writable output.
    check(
        unsafe { irm_open(client, path.as_ptr(), &raw mut doc) },
        "irm_open",
    );
    doc
}
