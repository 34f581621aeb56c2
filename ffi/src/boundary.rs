//! The C boundary: the panic boundary every export runs in, the
//! thread-local last error, the registry of live handles, and the argument
//! checks (NULL, UTF-8, `(pointer, length)` pairs, out-pointers).
//!
//! This module and the exported functions are the only places with unsafe
//! code; everything they hand on to the rest of the crate is safe Rust.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{CStr, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::status::{Failure, irm_status};

thread_local! {
    /// The detail of the last failed call on this thread.
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Clears the last error (every export does so on entry).
pub(crate) fn clear_last_error() {
    let _ = LAST_ERROR.try_with(|e| e.borrow_mut().clear());
}

/// Records `message` as this thread's last error.
pub(crate) fn set_last_error(message: &str) {
    let _ = LAST_ERROR.try_with(|e| {
        let mut e = e.borrow_mut();
        e.clear();
        // Interior NULs would cut the C string short; show them instead.
        e.extend(message.chars().map(|c| if c == '\0' { '?' } else { c }));
    });
}

/// This thread's last error (empty after a successful call).
pub(crate) fn last_error() -> String {
    LAST_ERROR
        .try_with(|e| e.borrow().clone())
        .unwrap_or_default()
}

fn panic_text(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Runs an export's body: clears the last error, catches panics, and turns
/// a [`Failure`] into its status with the detail recorded.
pub(crate) fn guard(body: impl FnOnce() -> Result<(), Failure>) -> irm_status {
    clear_last_error();
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => irm_status::IRM_OK,
        Ok(Err(failure)) => {
            set_last_error(&failure.message);
            failure.status
        }
        Err(payload) => {
            set_last_error(&format!(
                "internal error in libirm (a bug): {}",
                panic_text(payload.as_ref())
            ));
            irm_status::IRM_STATUS_PANIC
        }
    }
}

/// Runs a function that returns nothing to C (the free functions): a panic
/// is caught and recorded, never unwound into the caller. The last error is
/// left alone unless this call fails, so that C can free what it holds
/// before it reads the message of an earlier failure.
pub(crate) fn guard_void(body: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(body)) {
        set_last_error(&format!(
            "internal error in libirm (a bug): {}",
            panic_text(payload.as_ref())
        ));
    }
}

/// What kind of object a registered address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Client,
    Policy,
    Document,
    /// A byte buffer of this length.
    Buffer(usize),
    String,
}

/// Every object this library handed out and C has not freed yet, by
/// address. Frees and handle arguments are checked against it, so a double
/// free or a stale or foreign pointer is refused instead of corrupting memory
/// (as long as the address has not been reused by a new object of the same
/// kind, which is then a valid object).
///
/// Addresses are stored disguised ([`key`]) so that a handle C forgot to free
/// still shows as "definitely lost" under valgrind instead of being kept
/// reachable by this map, and the map itself is dropped whenever it empties.
static LIVE: Mutex<Option<HashMap<usize, Kind>>> = Mutex::new(None);

fn live() -> MutexGuard<'static, Option<HashMap<usize, Kind>>> {
    // The map holds plain data, consistent after any panic.
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A registry key that does not look like a pointer to a leak checker.
fn key(addr: usize) -> usize {
    !addr.rotate_left(17)
}

pub(crate) fn register(addr: usize, kind: Kind) {
    live()
        .get_or_insert_with(HashMap::new)
        .insert(key(addr), kind);
}

/// Removes `addr` if it is registered as `kind`; whether it was.
pub(crate) fn unregister(addr: usize, kind: Kind) -> bool {
    let mut live = live();
    let Some(map) = live.as_mut() else {
        return false;
    };
    if map.get(&key(addr)) != Some(&kind) {
        return false;
    }
    map.remove(&key(addr));
    if map.is_empty() {
        *live = None;
    }
    true
}

fn is_live(addr: usize, kind: Kind) -> bool {
    live().as_ref().and_then(|m| m.get(&key(addr))) == Some(&kind)
}

/// A type that crosses the boundary behind an opaque handle `C`, owned by a `Box`.
pub(crate) trait Handle: Sized {
    /// The opaque C type.
    type C;
    const KIND: Kind;
    const NAME: &'static str;

    /// Boxes `self` and registers it: the pointer C gets.
    fn into_handle(self) -> *mut Self::C {
        let ptr = Box::into_raw(Box::new(self));
        register(ptr as usize, Self::KIND);
        ptr.cast()
    }
}

/// Borrows the object behind a handle argument.
///
/// # Safety
/// `ptr` is NULL, or was returned by this library as a `T` handle; a live
/// handle must not be freed by another thread during the borrow (the header
/// says so for every function).
pub(crate) unsafe fn borrow<'a, T: Handle>(ptr: *const T::C) -> Result<&'a T, Failure> {
    if ptr.is_null() {
        return Err(Failure::null(T::NAME));
    }
    if !is_live(ptr as usize, T::KIND) {
        return Err(Failure::new(
            irm_status::IRM_STATUS_INVALID_HANDLE,
            format!("{} is not a live handle (already freed?)", T::NAME),
        ));
    }
    // SAFETY: registered addresses come from `Box::into_raw` of a `T` (the
    // kind matches) and stay valid until their free function unregisters them.
    Ok(unsafe { &*ptr.cast::<T>() })
}

/// Borrows the object behind a handle argument mutably.
///
/// # Safety
/// As [`borrow`], and no other borrow of the same handle may be in use
/// (the functions that take `irm_policy *` are documented as not thread-safe
/// per handle).
pub(crate) unsafe fn borrow_mut<'a, T: Handle>(ptr: *mut T::C) -> Result<&'a mut T, Failure> {
    // SAFETY: the caller's contract is the one `borrow` needs.
    unsafe { borrow::<T>(ptr) }?;
    // SAFETY: `borrow` checked it is a live `T`; exclusivity is the caller's contract.
    Ok(unsafe { &mut *ptr.cast::<T>() })
}

/// Takes back ownership of a handle for its free function: `None` for NULL
/// and for anything that is not a live handle (double free, foreign pointer).
///
/// # Safety
/// `ptr` is NULL or any pointer; only registered addresses are dereferenced.
pub(crate) unsafe fn take<T: Handle>(ptr: *mut T::C) -> Option<Box<T>> {
    if ptr.is_null() {
        return None;
    }
    if !unregister(ptr as usize, T::KIND) {
        set_last_error(&format!(
            "{} is not a live handle: not freed again",
            T::NAME
        ));
        return None;
    }
    // SAFETY: the address was registered by `into_handle` from a `Box<T>` and
    // has just been unregistered, so this is the only owner.
    Some(unsafe { Box::from_raw(ptr.cast::<T>()) })
}

/// A required C string argument, as UTF-8.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that stays valid and
/// unchanged for `'a`.
pub(crate) unsafe fn c_str<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: non-NULL, and NUL-terminated by the caller's contract.
    let c = unsafe { CStr::from_ptr(ptr) };
    c.to_str().map_err(|e| {
        Failure::new(
            irm_status::IRM_STATUS_INVALID_UTF8,
            format!("{what} is not valid UTF-8 (at byte {})", e.valid_up_to()),
        )
    })
}

/// An optional C string argument: NULL means absent.
///
/// # Safety
/// As [`c_str`].
pub(crate) unsafe fn opt_c_str<'a>(
    ptr: *const c_char,
    what: &str,
) -> Result<Option<&'a str>, Failure> {
    if ptr.is_null() {
        Ok(None)
    } else {
        // SAFETY: the caller's contract is the one `c_str` needs.
        unsafe { c_str(ptr, what) }.map(Some)
    }
}

/// The largest slice Rust allows (`slice::from_raw_parts` requires it).
const MAX_SLICE: usize = isize::MAX as usize;

/// A `(pointer, length)` input: NULL only with length 0.
///
/// # Safety
/// A non-NULL `ptr` points to `len` readable bytes that stay unchanged for `'a`.
pub(crate) unsafe fn slice<'a>(
    ptr: *const u8,
    len: usize,
    what: &str,
) -> Result<&'a [u8], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Failure::invalid(format!(
            "{what} is NULL with a length of {len}"
        )));
    }
    if len > MAX_SLICE {
        return Err(Failure::invalid(format!(
            "{what}'s length {len} is too large"
        )));
    }
    // SAFETY: non-NULL, at most isize::MAX, and `len` readable bytes by the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A `(pointer, length)` output buffer: NULL only with length 0.
///
/// # Safety
/// A non-NULL `ptr` points to `len` writable bytes, not otherwise accessed for `'a`.
pub(crate) unsafe fn slice_mut<'a>(
    ptr: *mut u8,
    len: usize,
    what: &str,
) -> Result<&'a mut [u8], Failure> {
    if len == 0 {
        return Ok(&mut []);
    }
    if ptr.is_null() {
        return Err(Failure::invalid(format!(
            "{what} is NULL with a length of {len}"
        )));
    }
    if len > MAX_SLICE {
        return Err(Failure::invalid(format!(
            "{what}'s length {len} is too large"
        )));
    }
    // SAFETY: non-NULL, at most isize::MAX, and `len` writable bytes by the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

/// A required out-pointer, checked before any work is done.
pub(crate) struct Out<T>(*mut T);

impl<T> Out<T> {
    pub(crate) fn new(ptr: *mut T, what: &str) -> Result<Self, Failure> {
        if ptr.is_null() {
            Err(Failure::null(what))
        } else {
            Ok(Self(ptr))
        }
    }

    /// An optional out-pointer: `None` for NULL.
    pub(crate) fn optional(ptr: *mut T) -> Option<Self> {
        (!ptr.is_null()).then_some(Self(ptr))
    }

    /// Writes the result (only on success, as every function promises).
    ///
    /// # Safety
    /// The pointer given to [`Out::new`] points to writable, aligned storage for a `T`.
    pub(crate) unsafe fn write(self, value: T) {
        // SAFETY: non-NULL (checked in `new`), writable and aligned by the caller's contract.
        // `write` does not drop whatever garbage the storage held.
        unsafe { self.0.write(value) }
    }
}

/// A string for C, owned by the caller until `irm_string_free`.
pub(crate) fn new_string(text: &str) -> *mut c_char {
    let text = std::ffi::CString::new(text.replace('\0', "?")).unwrap_or_default();
    let ptr = text.into_raw();
    register(ptr as usize, Kind::String);
    ptr
}

/// Frees a string from [`new_string`]; ignores NULL and unknown pointers.
///
/// # Safety
/// `ptr` is NULL or any pointer; only registered addresses are dereferenced.
pub(crate) unsafe fn free_string(ptr: *mut c_char) {
    if ptr.is_null() {
        return;
    }
    if unregister(ptr as usize, Kind::String) {
        // SAFETY: registered by `new_string` from `CString::into_raw`, and
        // now unregistered: this is its only owner.
        drop(unsafe { std::ffi::CString::from_raw(ptr) });
    } else {
        set_last_error("irm_string_free: not a string from libirm, or already freed");
    }
}

/// A byte buffer for C, owned by the caller until `irm_buffer_free`.
/// `bytes` must not be empty (an empty box has no unique address). A box,
/// not a `Vec`: shrinking a `Vec` to its length could move the bytes and
/// leave a copy of plaintext in freed memory.
pub(crate) fn new_buffer(bytes: Box<[u8]>) -> (*mut u8, usize) {
    let len = bytes.len();
    let ptr = Box::into_raw(bytes).cast::<u8>();
    register(ptr as usize, Kind::Buffer(len));
    (ptr, len)
}

/// Wipes and frees a buffer from [`new_buffer`] given with its length
/// (a buffer may hold plaintext); ignores NULL and anything unknown or given
/// with another length.
///
/// # Safety
/// `ptr` is NULL or any pointer; only registered addresses are dereferenced.
pub(crate) unsafe fn free_buffer(ptr: *mut u8, len: usize) {
    if ptr.is_null() {
        return;
    }
    if unregister(ptr as usize, Kind::Buffer(len)) {
        let raw = std::ptr::slice_from_raw_parts_mut(ptr, len);
        // SAFETY: registered by `new_buffer` from a `Box<[u8]>` of exactly
        // `len` bytes, and now unregistered: this is its only owner.
        let mut bytes = unsafe { Box::from_raw(raw) };
        zeroize::Zeroize::zeroize(&mut *bytes);
    } else {
        set_last_error(
            "irm_buffer_free: not a buffer from libirm, given with another length, or already freed",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_status_with_its_message_and_success_clears_the_error() {
        let status = guard(|| panic!("boom in a body"));
        assert_eq!(status, irm_status::IRM_STATUS_PANIC);
        assert!(last_error().contains("boom in a body"), "{}", last_error());
        guard_void(|| panic!("boom in a free"));
        assert!(last_error().contains("boom in a free"));
        assert_eq!(guard(|| Ok(())), irm_status::IRM_OK);
        assert_eq!(last_error(), "");
    }

    #[test]
    fn a_failure_sets_the_last_error_without_interior_nuls() {
        let status = guard(|| Err(Failure::invalid("bad\0value")));
        assert_eq!(status, irm_status::IRM_STATUS_INVALID_ARGUMENT);
        assert_eq!(last_error(), "bad?value");
    }
}
