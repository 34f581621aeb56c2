//! The exported functions. Each runs its body in [`guard`] (no panic
//! crosses into C, the last error is cleared on entry and set on failure),
//! checks every argument before doing anything, and writes out-pointers only
//! on success.
//!
//! Safety contract shared by every function (the header repeats it): a
//! non-NULL pointer argument points to what its type says for the duration
//! of the call; strings are NUL-terminated; a `(pointer, length)` pair
//! describes that many bytes. NULL handles, NULL required arguments, freed
//! handles, invalid UTF-8 and `(NULL, n > 0)` pairs are refused with a status.

use std::ffi::{c_char, c_int};
use std::path::Path;

use crate::boundary::{
    Handle, Out, borrow, borrow_mut, c_str, free_buffer, free_string, guard, guard_void,
    last_error, new_buffer, new_string, opt_c_str, slice, slice_mut, take,
};
use crate::core::{
    Client, Document, KeyServer, PolicyDraft, irm_client, irm_document, irm_policy, seal_buffer,
    seal_file, usage_action,
};
use crate::numbers::irm_text_encoding;
use crate::status::irm_status;

// ---------------------------------------------------------------- last error

/// Copies this thread's last error message (empty after a successful call)
/// into `buf` as a NUL-terminated string, truncated at a UTF-8 character
/// boundary to fit `len` bytes including the NUL, and stores the number of
/// bytes written before the NUL in `*written`. Does not change the last error.
///
/// Returns `IRM_OK`, or `IRM_STATUS_BUFFER_TOO_SMALL` when the message was
/// truncated (what fits is still written; with `len == 0` nothing is).
/// `buf` may be NULL only with `len == 0`. Thread-safe: each thread has its
/// own last error.
///
/// # Safety
/// `buf` points to `len` writable bytes; `written` to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn irm_last_error_message(
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> irm_status {
    // Not through `guard`: that would clear the message being asked for.
    let message = last_error();
    std::panic::catch_unwind(|| {
        let Ok(written) = Out::new(written, "written") else {
            return irm_status::IRM_STATUS_NULL_ARGUMENT;
        };
        // SAFETY: the caller promises `len` writable bytes at a non-NULL `buf`.
        let Ok(out) = (unsafe { slice_mut(buf.cast::<u8>(), len, "buf") }) else {
            return irm_status::IRM_STATUS_INVALID_ARGUMENT;
        };
        if out.is_empty() {
            // SAFETY: checked non-NULL; the caller promises it is writable.
            unsafe { written.write(0) };
            return if message.is_empty() {
                irm_status::IRM_OK
            } else {
                irm_status::IRM_STATUS_BUFFER_TOO_SMALL
            };
        }
        let mut n = message.len().min(out.len() - 1);
        while !message.is_char_boundary(n) {
            n -= 1;
        }
        out[..n].copy_from_slice(&message.as_bytes()[..n]);
        out[n] = 0;
        // SAFETY: checked non-NULL; the caller promises it is writable.
        unsafe { written.write(n) };
        if n < message.len() {
            irm_status::IRM_STATUS_BUFFER_TOO_SMALL
        } else {
            irm_status::IRM_OK
        }
    })
    .unwrap_or(irm_status::IRM_STATUS_PANIC)
}

/// Frees a string returned by libirm (file ids, metadata). NULL is
/// ignored, and so is a pointer that is not a live libirm string (a double
/// free is refused, with the last error set).
///
/// # Safety
/// `s` is NULL or a pointer from libirm; it is not used after this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn irm_string_free(s: *mut c_char) {
    // SAFETY: `free_string` dereferences only addresses libirm registered.
    guard_void(|| unsafe { free_string(s) });
}

/// Frees a buffer returned by `irm_seal_buffer`, `irm_seal_buffer_offline`
/// or `irm_document_text_utf8`, given with the length returned with it; its
/// bytes are wiped first (it may hold plaintext). NULL is ignored, and so is
/// a pointer that is not a live libirm buffer of that length (a double free
/// is refused, with the last error set).
///
/// # Safety
/// `buf` is NULL or a pointer from libirm; it is not used after this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn irm_buffer_free(buf: *mut u8, len: usize) {
    // SAFETY: `free_buffer` dereferences only addresses libirm registered.
    guard_void(|| unsafe { free_buffer(buf, len) });
}

// ---------------------------------------------------------------- client

/// Unlocks this device's credentials, as the `irm` CLI does: `config_dir`
/// is the directory `irm enroll` wrote (NULL: `$IRM_CONFIG_DIR`, else
/// `~/.config/irm`), `passphrase` the one given at enrollment. Nothing is
/// sent to the key server.
///
/// On success `*out` receives a new client, owned by the caller until
/// `irm_client_free`. The client is thread-safe: any number of threads may
/// seal and open with it at once. Fails with `IRM_STATUS_NOT_ENROLLED`,
/// `IRM_STATUS_WRONG_PASSPHRASE` or `IRM_STATUS_BAD_CONFIG`. For
/// credentials kept elsewhere, see `irm_client_open_explicit`.
///
/// # Safety
/// String arguments are NUL-terminated; `out` points to a writable `irm_client *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn irm_client_open(
    config_dir: *const c_char,
    passphrase: *const c_char,
    out: *mut *mut irm_client,
) -> irm_status {
    guard(|| {
        let out = Out::new(out, "out")?;
        // SAFETY: NUL-terminated strings by the caller's contract.
        let config_dir = unsafe { opt_c_str(config_dir, "config_dir") }?;
        // SAFETY: as above.
        let passphrase = unsafe { c_str(passphrase, "passphrase") }?;
        let client = Client::open(config_dir, passphrase)?;
        // SAFETY: `out` is non-NULL and writable by the caller's contract.
        unsafe { out.write(client.into_handle()) };
        Ok(())
    })
}

/// Unlocks device credentials given by path rather than by configuration
/// directory, for applications that keep them in their own place:
///
/// - `server_url`: the key server to talk to (`https://host:port`); it must
///   be the server the credentials were enrolled with (the URL given to
///   `irm enroll`, or the one the server gives sealers), else
///   `IRM_STATUS_SERVER_MISMATCH` with both URLs in the last error;
/// - `ca_pem_path`: a PEM file with the key server's CA certificate
///   (`DATA_DIR/tls/ca.pem` of the server), the only certificate trusted
///   for it, in place of the CA stored at enrollment;
/// - `device_json_path` and `device_key_path`: the `device.json` and
///   `device.key` files enrollment wrote (under any names, anywhere);
/// - `passphrase`: the one given at enrollment.
///
/// Nothing is sent to the key server: a CA that does not fit the server
/// shows on the first call that contacts it (`irm_open`, online sealing)
/// as `IRM_STATUS_TLS`. Ownership and thread safety are as for
/// `irm_client_open`: on success `*out` receives a new thread-safe client,
/// owned by the caller until `irm_client_free`; the strings are only read
/// during the call.
///
/// Fails with `IRM_STATUS_NULL_ARGUMENT`, `IRM_STATUS_INVALID_UTF8`,
/// `IRM_STATUS_INVALID_ARGUMENT` (an empty string, a URL that is not
/// `https://host[:port]`, a CA file without a PEM certificate),
/// `IRM_STATUS_SERVER_MISMATCH`, `IRM_STATUS_IO` (a file cannot be read),
/// `IRM_STATUS_BAD_CONFIG` (a credential file is damaged, or the two do
/// not belong together) or `IRM_STATUS_WRONG_PASSPHRASE`.
///
/// # Safety
/// String arguments are NUL-terminated; `out` points to a writable `irm_client *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn irm_client_open_explicit(
    server_url: *const c_char,
    ca_pem_path: *const c_char,
    device_json_path: *const c_char,
    device_key_path: *const c_char,
    passphrase: *const c_char,
    out: *mut *mut irm_client,
) -> irm_status {
    guard(|| {
        let out = Out::new(out, "out")?;
        // SAFETY: NUL-terminated strings by the caller's contract.
        let server_url = unsafe { c_str(server_url, "server_url") }?;
        // SAFETY: as above.
        let ca_pem_path = unsafe { c_str(ca_pem_path, "ca_pem_path") }?;
        // SAFETY: as above.
        let device_json = unsafe { c_str(device_json_path, "device_json_path") }?;
        // SAFETY: as above.
        let device_key = unsafe { c_str(device_key_path, "device_key_path") }?;
        // SAFETY: as above.
        let passphrase = unsafe { c_str(passphrase, "passphrase") }?;
        let client =
            Client::open_explicit(server_url, ca_pem_path, device_json, device_key, passphrase)?;
        // SAFETY: `out` is non-NULL and writable by the caller's contract.
        unsafe { out.write(client.into_handle()) };
        Ok(())
    })
}

/// Frees a client and wipes its keys from memory. Documents opened through
/// it stay usable (they share the session). NULL is ignored; so is a client
/// already freed.
///
/// # Safety
/// `client` is NULL or from `irm_client_open` or `irm_client_open_explicit`,
/// not in use by another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn irm_client_free(client: *mut irm_client) {
    // SAFETY: `take` dereferences only live handles of this type.
    guard_void(|| drop(unsafe { take::<Client>(client) }));
}

// ---------------------------------------------------------------- policy

/// Starts an empty policy (no grants yet; the default lease is 600 s, the
/// watermark is required). `*out` is owned by the caller until
/// `irm_policy_free`. A policy is not thread-safe: build it on one thread;
/// once built it may be used by several sealing calls at once.
///
/// # Safety
/// `out` points to a writable `irm_policy *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn irm_policy_new(out: *mut *mut irm_policy) -> irm_status {
    guard(|| {
        let out = Out::new(out, "out")?;
        // SAFETY: `out` is non-NULL and writable by the caller's contract.
        unsafe { out.write(PolicyDraft::default().into_handle()) };
        Ok(())
    })
}

/// Adds a grant: the comma-separated `recipients` (users such as `alice`,
/// groups such as `@support`) get `rights`, a non-empty combination of
/// `IRM_RIGHT_*` bits. Unknown bits, an empty list or an invalid name give
/// `IRM_STATUS_INVALID_ARGUMENT` and leave the policy unchanged.
///
/// # Safety
/// `policy` is from `irm_policy_new`, used by no other thread during the
/// call; `recipients` is NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn irm_policy_add_grant(
    policy: *mut irm_policy,
    recipients: *const c_char,
    rights: u32,
) -> irm_status {
    guard(|| {
        // SAFETY: a live handle, exclusively ours by the caller's contract.
        let policy = unsafe { borrow_mut::<PolicyDraft>(policy) }?;
        // SAFETY: NUL-terminated by the caller's contract.
        let recipients = unsafe { c_str(recipients, "recipients") }?;
        policy.add_grant(recipients, rights)
    })
}

/// Sets the time `unix_time` (Unix seconds, UTC) from which nobody can open the file.
/// A time already past gives `IRM_STATUS_INVALID_ARGUMENT`.
///
/// # Safety
/// `policy` is from `irm_policy_new`, used by no other thread during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn irm_policy_set_not_after(
    policy: *mut irm_policy,
    unix_time: u64,
) -> irm_status {
    guard(|| {
        // SAFETY: a live handle, exclusively ours by the caller's contract.
        let policy = unsafe { borrow_mut::<PolicyDraft>(policy) }?;
        policy.set_not_after(unix_time)
    })
}

/// Sets the file's classification (such as `confidential`); NULL removes it.
/// The classification is visible in the sealed file's header.
///
/// # Safety
/// `policy` is from `irm_policy_new`, used by no other thread during the
/// call; `classification` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn irm_policy_set_classification(
    policy: *mut irm_policy,
    classification: *const c_char,
) -> irm_status {
    guard(|| {
        // SAFETY: a live handle, exclusively ours by the caller's contract.
        let policy = unsafe { borrow_mut::<PolicyDraft>(policy) }?;
        // SAFETY: NUL-terminated by the caller's contract.
        let classification = unsafe { opt_c_str(classification, "classification") }?;
        policy.set_classification(classification);
        Ok(())
    })
}

/// Sets the longest lease (seconds, at least 1) a reader may hold before
/// asking the key server again (default 600).
///
/// # Safety
/// `policy` is from `irm_policy_new`, used by no other thread during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn irm_policy_set_max_lease(
    policy: *mut irm_policy,
    seconds: u32,
) -> irm_status {
    guard(|| {
        // SAFETY: a live handle, exclusively ours by the caller's contract.
        let policy = unsafe { borrow_mut::<PolicyDraft>(policy) }?;
        policy.set_max_lease(seconds)
    })
}

/// Frees a policy. NULL is ignored; so is a policy already freed.
///
/// # Safety
/// `policy` is NULL or from `irm_policy_new`, not in use by another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn irm_policy_free(policy: *mut irm_policy) {
    // SAFETY: `take` dereferences only live handles of this type.
    guard_void(|| drop(unsafe { take::<PolicyDraft>(policy) }));
}

// ---------------------------------------------------------------- sealing

/// Where to wrap the key: the client's server, or an offline key and URL.
///
/// # Safety
/// As the exports: live handle or NULL, NUL-terminated strings.
unsafe fn key_server<'a>(
    client: *const irm_client,
    key_text: *const c_char,
    url: *const c_char,
) -> Result<KeyServer<'a>, crate::status::Failure> {
    if client.is_null() && key_text.is_null() {
        // `irm_seal_file(NULL, ...)` is spelled `irm_seal_file_offline`.
        return Err(crate::status::Failure::null("client"));
    }
    if !client.is_null() {
        // SAFETY: a live handle by the caller's contract (checked by `borrow`).
        let client = unsafe { borrow::<Client>(client) }?;
        return Ok(KeyServer::Online(&client.session));
    }
    Ok(KeyServer::Offline {
        // SAFETY: NUL-terminated by the caller's contract.
        key_text: unsafe { c_str(key_text, "kas_public_key_text") }?,
        // SAFETY: as above.
        url: unsafe { c_str(url, "kas_url") }?,
    })
}

/// # Safety
/// As [`irm_seal_file`].
unsafe fn seal_file_with(
    target: impl FnOnce() -> Result<KeyServer<'static>, crate::status::Failure>,
    policy: *const irm_policy,
    in_path: *const c_char,
    out_path: *const c_char,
    file_id_out: *mut *mut c_char,
) -> irm_status {
    guard(|| {
        let file_id_out = Out::optional(file_id_out);
        // SAFETY: a live handle by the caller's contract.
        let policy = unsafe { borrow::<PolicyDraft>(policy) }?;
        // SAFETY: NUL-terminated by the caller's contract.
        let input = unsafe { c_str(in_path, "in_path") }?;
        // SAFETY: as above.
        let output = unsafe { c_str(out_path, "out_path") }?;
        let target = target()?;
        let file_id = seal_file(&target, policy, Path::new(input), Path::new(output))?;
        if let Some(out) = file_id_out {
            // SAFETY: non-NULL and writable by the caller's contract.
            unsafe { out.write(new_string(&file_id)) };
        }
        Ok(())
    })
}

/// Seals the file at `in_path` into `out_path` (replaced if it exists;
/// written through a temporary file beside it, so no partial output is
/// left on failure) for `policy`, online: the client's key server's current
/// key is fetched, and the file is registered with it so administrators can
/// list and revoke it. The file name and media type (from the extension)
/// are recorded in the encrypted metadata.
///
/// If `file_id_out` is not NULL it receives the new file's id (32 hex
/// digits), owned by the caller until `irm_string_free`. For sealing
/// without a client, see `irm_seal_file_offline` (a NULL `client` gives
/// `IRM_STATUS_NULL_ARGUMENT`).
///
/// # Safety
/// `client` and `policy` are live handles (the client thread-safe, the
/// policy not being modified meanwhile); paths are NUL-terminated;
/// `file_id_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn irm_seal_file(
    client: *const irm_client,
    policy: *const irm_policy,
    in_path: *const c_char,
    out_path: *const c_char,
    file_id_out: *mut *mut c_char,
) -> irm_status {
    // SAFETY: the caller's contract, passed on.
    let target = || unsafe { key_server(client, std::ptr::null(), std::ptr::null()) };
    // SAFETY: the caller's contract, passed on.
    unsafe { seal_file_with(target, policy, in_path, out_path, file_id_out) }
}

/// As `irm_seal_file`, offline: the content key is wrapped to
/// `kas_public_key_text` (the key server's public key in text form, as
/// `irm-key-server` prints it) and the file names `kas_url` as its key
/// server. Nothing is contacted and the file is not registered.
///
/// # Safety
/// As `irm_seal_file`; the key and URL are NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn irm_seal_file_offline(
    kas_public_key_text: *const c_char,
    kas_url: *const c_char,
    policy: *const irm_policy,
    in_path: *const c_char,
    out_path: *const c_char,
    file_id_out: *mut *mut c_char,
) -> irm_status {
    let target = || {
        if kas_public_key_text.is_null() {
            return Err(crate::status::Failure::null("kas_public_key_text"));
        }
        // SAFETY: the caller's contract, passed on.
        unsafe { key_server(std::ptr::null(), kas_public_key_text, kas_url) }
    };
    // SAFETY: the caller's contract, passed on.
    unsafe { seal_file_with(target, policy, in_path, out_path, file_id_out) }
}

/// # Safety
/// As [`irm_seal_buffer`].
#[allow(clippy::too_many_arguments)]
unsafe fn seal_buffer_with(
    target: impl FnOnce() -> Result<KeyServer<'static>, crate::status::Failure>,
    policy: *const irm_policy,
    data: *const u8,
    data_len: usize,
    file_name: *const c_char,
    media_type: *const c_char,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> irm_status {
    guard(|| {
        let out = Out::new(out, "out")?;
        let out_len = Out::new(out_len, "out_len")?;
        // SAFETY: a live handle by the caller's contract.
        let policy = unsafe { borrow::<PolicyDraft>(policy) }?;
        // SAFETY: `data_len` readable bytes by the caller's contract.
        let data = unsafe { slice(data, data_len, "data") }?;
        // SAFETY: NUL-terminated by the caller's contract.
        let file_name = unsafe { opt_c_str(file_name, "file_name") }?;
        // SAFETY: as above.
        let media_type = unsafe { opt_c_str(media_type, "media_type") }?;
        let target = target()?;
        let sealed = seal_buffer(&target, policy, data, file_name, media_type)?;
        let (ptr, len) = new_buffer(sealed.into_boxed_slice());
        // SAFETY: both non-NULL and writable by the caller's contract.
        unsafe {
            out.write(ptr);
            out_len.write(len);
        }
        Ok(())
    })
}

/// Seals `data_len` bytes at `data` in memory for `policy`, online (the
/// client's server key; the file is registered). `file_name` and
/// `media_type` (each may be NULL) go into the encrypted metadata. The
/// sealed bytes are returned in `*out` / `*out_len`, owned by the caller
/// until `irm_buffer_free(*out, *out_len)`. `data` may be NULL only when
/// `data_len` is 0.
///
/// # Safety
/// `client` and `policy` are live handles; `data` points to `data_len`
/// readable bytes; strings are NULL or NUL-terminated; `out` and `out_len`
/// are writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn irm_seal_buffer(
    client: *const irm_client,
    policy: *const irm_policy,
    data: *const u8,
    data_len: usize,
    file_name: *const c_char,
    media_type: *const c_char,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> irm_status {
    // SAFETY: the caller's contract, passed on.
    let target = || unsafe { key_server(client, std::ptr::null(), std::ptr::null()) };
    // SAFETY: the caller's contract, passed on.
    unsafe {
        seal_buffer_with(
            target, policy, data, data_len, file_name, media_type, out, out_len,
        )
    }
}

/// As `irm_seal_buffer`, offline: wrapped to `kas_public_key_text`, naming
/// `kas_url`; nothing is contacted and nothing registered.
///
/// # Safety
/// As `irm_seal_buffer`; the key and URL are NUL-terminated.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn irm_seal_buffer_offline(
    kas_public_key_text: *const c_char,
    kas_url: *const c_char,
    policy: *const irm_policy,
    data: *const u8,
    data_len: usize,
    file_name: *const c_char,
    media_type: *const c_char,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> irm_status {
    let target = || {
        if kas_public_key_text.is_null() {
            return Err(crate::status::Failure::null("kas_public_key_text"));
        }
        // SAFETY: the caller's contract, passed on.
        unsafe { key_server(std::ptr::null(), kas_public_key_text, kas_url) }
    };
    // SAFETY: the caller's contract, passed on.
    unsafe {
        seal_buffer_with(
            target, policy, data, data_len, file_name, media_type, out, out_len,
        )
    }
}

// ---------------------------------------------------------------- documents

/// Opens the sealed file at `path`: reads its header and asks the client's
/// key server for a grant for this person on this device. On success `*out`
/// receives the document, owned by the caller until `irm_close`; it holds
/// the content key only until its lease ends (`irm_renew` extends it).
///
/// A refusal returns `300 + reason` (`IRM_STATUS_DENIED_FILE_REVOKED`,
/// `..._POLICY_EXPIRED`, `..._NOT_RECIPIENT`, `..._POLICY_BINDING_FAILED`
/// for an altered header...); a file that is not sealed,
/// `IRM_STATUS_FORMAT`; an altered or cut payload, `IRM_STATUS_INTEGRITY`.
///
/// # Safety
/// `client` is a live handle; `path` is NUL-terminated; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn irm_open(
    client: *const irm_client,
    path: *const c_char,
    out: *mut *mut irm_document,
) -> irm_status {
    guard(|| {
        let out = Out::new(out, "out")?;
        // SAFETY: a live handle by the caller's contract.
        let client = unsafe { borrow::<Client>(client) }?;
        // SAFETY: NUL-terminated by the caller's contract.
        let path = unsafe { c_str(path, "path") }?;
        let document = Document::open(client, Path::new(path))?;
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { out.write(document.into_handle()) };
        Ok(())
    })
}

/// Stores the grant's effective rights (`IRM_RIGHT_*` bits: the policy's
/// rights for this person minus any administrator restriction) in `*rights`.
///
/// # Safety
/// `doc` is a live handle; `rights` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn irm_document_rights(
    doc: *const irm_document,
    rights: *mut u32,
) -> irm_status {
    guard(|| {
        let rights = Out::new(rights, "rights")?;
        // SAFETY: a live handle by the caller's contract.
        let doc = unsafe { borrow::<Document>(doc) }?;
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { rights.write(doc.rights()) };
        Ok(())
    })
}

/// Stores in `*seconds` how long the lease still holds (0 once it has
/// ended), on this computer's monotonic clock.
///
/// # Safety
/// `doc` is a live handle; `seconds` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn irm_document_lease_expires_in(
    doc: *const irm_document,
    seconds: *mut u64,
) -> irm_status {
    guard(|| {
        let seconds = Out::new(seconds, "seconds")?;
        // SAFETY: a live handle by the caller's contract.
        let doc = unsafe { borrow::<Document>(doc) }?;
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { seconds.write(doc.lease_expires_in()) };
        Ok(())
    })
}

/// The document's metadata: `*file_name` and `*media_type` receive new
/// strings (NULL when the sealer recorded none), each owned by the caller
/// until `irm_string_free`; `*plaintext_len` the plaintext length in bytes.
/// Available without the `program` right (it is not content).
///
/// `*file_name` is the sealer's text, returned as stored: it may contain `/`,
/// `..` or be an absolute path (docs/FORMAT.md §6.3). Show it; never use it
/// as a path, or part of one, to create or open a file. libirm never does.
///
/// # Safety
/// `doc` is a live handle; the three out-pointers are writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn irm_document_metadata(
    doc: *const irm_document,
    file_name: *mut *mut c_char,
    media_type: *mut *mut c_char,
    plaintext_len: *mut u64,
) -> irm_status {
    guard(|| {
        let file_name = Out::new(file_name, "file_name")?;
        let media_type = Out::new(media_type, "media_type")?;
        let plaintext_len = Out::new(plaintext_len, "plaintext_len")?;
        // SAFETY: a live handle by the caller's contract.
        let doc = unsafe { borrow::<Document>(doc) }?;
        let meta = doc.metadata();
        let text = |s: Option<String>| s.map_or(std::ptr::null_mut(), |s| new_string(&s));
        // SAFETY: all three non-NULL and writable by the caller's contract.
        unsafe {
            file_name.write(text(meta.file_name));
            media_type.write(text(meta.media_type));
            plaintext_len.write(meta.plaintext_len);
        }
        Ok(())
    })
}

/// What the key server told the person with this document's grant or its
/// renewals and that was not taken yet (docs/PROTOCOL.md §4.3): a new
/// device enrolled for their account, which they alone can tell was not
/// them; and a line starting `WARNING: ` when the key server's signed audit
/// log went back behind what this device saw before (§9.2). `*notices` receives one line per notice, joined by `\n`, owned by
/// the caller until `irm_string_free`, or NULL when there is none; taking
/// them empties the list. Show them to the person.
///
/// # Safety
/// `doc` is a live handle; `notices` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn irm_document_notices(
    doc: *const irm_document,
    notices: *mut *mut c_char,
) -> irm_status {
    guard(|| {
        let notices = Out::new(notices, "notices")?;
        // SAFETY: a live handle by the caller's contract.
        let doc = unsafe { borrow::<Document>(doc) }?;
        let lines = doc.take_notices();
        let text = if lines.is_empty() {
            std::ptr::null_mut()
        } else {
            new_string(&lines.join("\n"))
        };
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { notices.write(text) };
        Ok(())
    })
}

/// Copies up to `len` bytes of plaintext from the current position into
/// `buf`, advancing the position; `*written` receives the count (0 at the
/// end). Plaintext is released only while the lease holds
/// (`IRM_STATUS_LEASE_EXPIRED`: call `irm_renew`) and only if the grant
/// carries the program right (`IRM_STATUS_NO_PROGRAM_RIGHT`). The first read
/// of each document is reported to the key server as `program_read` before
/// any byte is released; if that report fails, nothing is released.
///
/// # Safety
/// `doc` is a live handle; `buf` points to `len` writable bytes (NULL only
/// with `len == 0`); `written` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn irm_read(
    doc: *const irm_document,
    buf: *mut u8,
    len: usize,
    written: *mut usize,
) -> irm_status {
    guard(|| {
        let written = Out::new(written, "written")?;
        // SAFETY: a live handle by the caller's contract.
        let doc = unsafe { borrow::<Document>(doc) }?;
        // SAFETY: `len` writable bytes by the caller's contract.
        let buf = unsafe { slice_mut(buf, len, "buf") }?;
        let n = doc.read(buf)?;
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { written.write(n) };
        Ok(())
    })
}

/// As `irm_read`, from plaintext byte `offset`, without moving the current
/// position: fills `buf` as far as the plaintext goes (`*written` is 0 at or
/// past the end).
///
/// # Safety
/// As `irm_read`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn irm_read_at(
    doc: *const irm_document,
    offset: u64,
    buf: *mut u8,
    len: usize,
    written: *mut usize,
) -> irm_status {
    guard(|| {
        let written = Out::new(written, "written")?;
        // SAFETY: a live handle by the caller's contract.
        let doc = unsafe { borrow::<Document>(doc) }?;
        // SAFETY: `len` writable bytes by the caller's contract.
        let buf = unsafe { slice_mut(buf, len, "buf") }?;
        let n = doc.read_at(offset, buf)?;
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { written.write(n) };
        Ok(())
    })
}

/// Stores in `*encoding` the text encoding of the document's plaintext, as
/// the IRM viewer detects it (see `irm_text_encoding`: a byte-order mark
/// decides, else valid UTF-8 is `IRM_TEXT_UTF8`, else `IRM_TEXT_CP932`).
/// For a C caller that reads the bytes itself with `irm_read` and converts
/// them; `irm_document_text_utf8` converts for it.
///
/// The encoding is a property of the content, so it is released on the
/// same terms as the content: while the lease holds
/// (`IRM_STATUS_LEASE_EXPIRED`), with the program right
/// (`IRM_STATUS_NO_PROGRAM_RIGHT`), and after the first read is reported,
/// as for `irm_read`. The first call decrypts the whole plaintext piece by
/// piece (without holding it); later calls on the document answer at once.
/// The current read position is not moved. Thread-safe, like every call on
/// a document.
///
/// # Safety
/// `doc` is a live handle; `encoding` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn irm_document_text_encoding(
    doc: *const irm_document,
    encoding: *mut irm_text_encoding,
) -> irm_status {
    guard(|| {
        let encoding = Out::new(encoding, "encoding")?;
        // SAFETY: a live handle by the caller's contract.
        let doc = unsafe { borrow::<Document>(doc) }?;
        let detected = doc.text_encoding()?;
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { encoding.write(detected.into()) };
        Ok(())
    })
}

/// The document's whole plaintext as UTF-8 text: decoded from the encoding
/// `irm_document_text_encoding` reports, the same way the IRM viewer decodes
/// it, without a byte-order mark. Bytes that are not valid in that encoding
/// become U+FFFD; `*had_errors` (when `had_errors` is not NULL) is set to 1
/// if that happened, else 0. The text is not NUL-terminated (a document may
/// hold NUL bytes): print it with `printf("%.*s", (int)len, (const char *)text)`.
///
/// On success `*text` and `*text_len` receive a new buffer owned by the
/// caller until `irm_buffer_free(*text, *text_len)`, which wipes it before
/// freeing (it is plaintext); an empty document gives `*text == NULL` and
/// `*text_len == 0` (and `irm_buffer_free(NULL, 0)` does nothing). The whole
/// plaintext is held in memory during the call, and the text in the result:
/// for a document that does not fit, `IRM_STATUS_OUT_OF_MEMORY` (read it
/// in pieces with `irm_read` instead).
///
/// Plaintext is released on the same terms as `irm_read`: while the lease
/// holds (`IRM_STATUS_LEASE_EXPIRED`), with the program right
/// (`IRM_STATUS_NO_PROGRAM_RIGHT`), and only after the first read was
/// reported to the key server. The current read position is not moved.
/// Thread-safe, like every call on a document.
///
/// # Safety
/// `doc` is a live handle; `text` and `text_len` are writable; `had_errors`
/// is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn irm_document_text_utf8(
    doc: *const irm_document,
    text: *mut *mut u8,
    text_len: *mut usize,
    had_errors: *mut c_int,
) -> irm_status {
    guard(|| {
        let text = Out::new(text, "text")?;
        let text_len = Out::new(text_len, "text_len")?;
        let had_errors = Out::optional(had_errors);
        // SAFETY: a live handle by the caller's contract.
        let doc = unsafe { borrow::<Document>(doc) }?;
        let utf8 = doc.text_utf8()?;
        let (ptr, len) = if utf8.bytes.is_empty() {
            (std::ptr::null_mut(), 0)
        } else {
            new_buffer(utf8.bytes)
        };
        // SAFETY: non-NULL (or skipped when optional) and writable by the caller's contract.
        unsafe {
            text.write(ptr);
            text_len.write(len);
            if let Some(had_errors) = had_errors {
                had_errors.write(c_int::from(utf8.had_errors));
            }
        }
        Ok(())
    })
}

/// Asks the key server to renew the document's grant (a new lease; rights
/// may have changed). On failure (revoked meanwhile: `300 + reason`;
/// unreachable) the old lease is kept and runs out at its deadline.
/// Renew two thirds into the lease.
///
/// # Safety
/// `doc` is a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn irm_renew(doc: *const irm_document) -> irm_status {
    guard(|| {
        // SAFETY: a live handle by the caller's contract.
        let doc = unsafe { borrow::<Document>(doc) }?;
        doc.renew()
    })
}

/// Whether the document may still be read (docs/PROTOCOL.md §13). While a
/// document is open, libirm keeps a push channel to the key server: when an
/// administrator or a detection rule revokes the file, suspends the person,
/// revokes the device or restricts the file, the key server says so within
/// seconds, and the next call that releases plaintext (or this one) renews
/// the grant at once. Once that renewal is refused, this and every read
/// fail with the reason (`300 + reason`, e.g.
/// `IRM_STATUS_DENIED_FILE_REVOKED`); discard what was read and free the
/// document. Call it from a timer (every few seconds) to learn of a
/// revocation while not reading. `IRM_STATUS_LEASE_EXPIRED`: the lease ran
/// out (the push channel was down); `irm_renew` may get a new one.
///
/// # Safety
/// `doc` is a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn irm_document_check(doc: *const irm_document) -> irm_status {
    guard(|| {
        // SAFETY: a live handle by the caller's contract.
        let doc = unsafe { borrow::<Document>(doc) }?;
        doc.check()
    })
}

/// Reports a usage event (`IRM_ACTION_*`) under the document's grant, for
/// the audit log. The key server refuses an action whose right the grant
/// lacks (`IRM_STATUS_DENIED_RIGHT_NOT_GRANTED`) and audits the attempt.
///
/// # Safety
/// `doc` is a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn irm_report_event(doc: *const irm_document, action: u32) -> irm_status {
    guard(|| {
        // SAFETY: a live handle by the caller's contract.
        let doc = unsafe { borrow::<Document>(doc) }?;
        doc.report_event(usage_action(action)?)
    })
}

/// Reports a copy or print (`IRM_ACTION_COPY`, `IRM_ACTION_PRINT`) of
/// `rows` rows, before they leave. More rows than the key server's
/// threshold (100 by default) spend a take-out administrators approved for
/// this file and device (`irm export request FILE --for copy|print`), or
/// are refused with `IRM_STATUS_DENIED_EXPORT_APPROVAL_REQUIRED`;
/// `irm_report_event` for a copy or print counts as an untold number of
/// rows, which is more than any threshold.
///
/// # Safety
/// `doc` is a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn irm_report_rows(
    doc: *const irm_document,
    action: u32,
    rows: u64,
) -> irm_status {
    guard(|| {
        // SAFETY: a live handle by the caller's contract.
        let doc = unsafe { borrow::<Document>(doc) }?;
        doc.report_rows(usage_action(action)?, rows)
    })
}

/// Takes the whole document out as a file's bytes (PROTOCOL.md §7.3,
/// §7.8), for a program that writes it somewhere. The key server must
/// accept the `export` report first: without the export right
/// `IRM_STATUS_DENIED_RIGHT_NOT_GRANTED`; where the server requires an
/// approved take-out (`irm export request FILE`, then two administrators),
/// `IRM_STATUS_DENIED_EXPORT_APPROVAL_REQUIRED` until one is approved for
/// this file and device (each approval is spent once). A customer list
/// (CSV or TSV by its name or media type) comes back with the canary rows
/// the key server issued for this export among its rows, in the list's own
/// encoding: if the list leaks, `irm trace` names this export. Any other
/// document comes back as it is. `*out` is freed with `irm_buffer_free`
/// (which wipes it); `*canaries` (NULL to skip) is set to the number of
/// canary rows added. Needs the whole plaintext in memory
/// (`IRM_STATUS_OUT_OF_MEMORY` otherwise). Not the program right: this is
/// the export right's.
///
/// # Safety
/// `doc` is a live handle; `out` and `out_len` are writable; `canaries` is
/// NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn irm_export(
    doc: *const irm_document,
    out: *mut *mut u8,
    out_len: *mut usize,
    canaries: *mut usize,
) -> irm_status {
    guard(|| {
        let out = Out::new(out, "out")?;
        let out_len = Out::new(out_len, "out_len")?;
        let canaries = Out::optional(canaries);
        // SAFETY: a live handle by the caller's contract.
        let doc = unsafe { borrow::<Document>(doc) }?;
        let (bytes, added) = doc.export()?;
        let (ptr, len) = if bytes.is_empty() {
            (std::ptr::null_mut(), 0)
        } else {
            new_buffer(bytes)
        };
        // SAFETY: non-NULL (or skipped when optional) and writable by the caller's contract.
        unsafe {
            out.write(ptr);
            out_len.write(len);
            if let Some(canaries) = canaries {
                canaries.write(added);
            }
        }
        Ok(())
    })
}

/// Closes a document: the content key and the decrypted chunk buffer are
/// wiped from memory and the handle is freed. NULL is ignored; so is a
/// document already closed.
///
/// # Safety
/// `doc` is NULL or from `irm_open`, not in use by another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn irm_close(doc: *mut irm_document) {
    // SAFETY: `take` dereferences only live handles of this type.
    guard_void(|| drop(unsafe { take::<Document>(doc) }));
}
