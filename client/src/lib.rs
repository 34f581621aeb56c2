//! `irm-client`: the blocking key-server client that the `irm` CLI, the
//! viewer's worker thread and the C FFI share (docs/PROTOCOL.md).
//!
//! - [`Enrollment`] makes this computer a device of one person and stores
//!   its credentials under a passphrase (`device.json` and `device.key` in
//!   [`config_dir`], both mode 0600, written atomically).
//! - [`Session::unlock`] opens those credentials for one process; its calls
//!   are signed with the device key over the exact bytes sent, and go only
//!   to the enrolled server, trusting only its CA.
//! - [`Session::grant`] asks for a file's content key and returns a
//!   [`Grant`], whose verified header decrypts the file only while its lease
//!   holds on this computer's monotonic clock. Callers renew
//!   ([`Session::renew`]) at [`Grant::renew_due`] and report usage
//!   ([`Session::report_event`]).
//! - [`SealTarget`] seals a file for a key server, online through a
//!   session (which also registers the file) or offline to a public key.
//! - Administration and audit calls are further methods on [`Session`].
//! - [`text`] tells which encoding a decrypted text document is in (UTF-8,
//!   UTF-16 with a byte-order mark, or CP932) and decodes it to UTF-8.
//! - [`Session::watch`] opens a document's push channel: a [`WatchSignal`]
//!   says when to renew at once (a revocation, suspension or restriction
//!   reaches an open document in seconds, not at its lease's end).
//! - [`Session::export_list`] reports the export of a customer list and
//!   puts the canaries of an approved export in among its rows
//!   ([`canary`], PROTOCOL.md §7.8), which also finds the contact values
//!   `irm trace` looks up ([`Session::trace_canaries`]).
//! - Every grant's audit checkpoint is kept as a witness (`audit-witness.jsonl`)
//!   and one that goes back raises a [`WitnessAlarm`] on the grant.
//!
//! Every failure is a [`ClientError`]; a refusal carries its
//! [`DenyReason`](irm_core::protocol::DenyReason).
//!
//! ```no_run
//! # fn main() -> Result<(), irm_client::ClientError> {
//! use irm_client::{Passphrase, Session, config_dir};
//! use irm_core::{Opener, SealedHeader, StreamOptions};
//!
//! let session = Session::unlock(&config_dir()?, &Passphrase::new("correct horse")?)?;
//! let mut file = std::fs::File::open("calls.csv.irm").map_err(|e| irm_client::ClientError::Io {
//!     context: "opening calls.csv.irm".into(),
//!     source: e,
//! })?;
//! let header = SealedHeader::read_from(&mut file).expect("a sealed file");
//! let grant = session.grant(&header, false)?;
//! let mut opener = Opener::new(grant.verified_header()?, file, StreamOptions::default());
//! # let _ = &mut opener;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod admin;
pub mod canary;
mod config;
mod enroll;
mod error;
mod grant;
mod keystore;
mod seal;
mod session;
pub mod text;
mod transport;
mod unseal;
mod watch;
mod witness;

pub use admin::{AuditExportSummary, DetectionChange, HoursChange, UserAdded};
pub use config::{
    CONFIG_DIR_ENV, DEVICE_JSON, DEVICE_KEY, DeviceConfig, config_dir, normalize_server_url,
};
pub use enroll::{Enrollment, fetch_pinned_ca};
pub use error::ClientError;
pub use grant::Grant;
pub use keystore::Passphrase;
pub use seal::{HeaderOptions, PendingSeal, SealTarget, Sealed};
pub use session::{ExportedList, Session};
pub use unseal::Unsealing;
pub use watch::{Watch, WatchSignal};
pub use witness::{WITNESS_FILE, WitnessAlarm, witnessed};

#[cfg(test)]
mod tests {
    /// The viewer runs the client on a worker thread and the FFI hands
    /// sessions and grants across threads: they must be `Send` and `Sync`.
    #[test]
    fn sessions_grants_and_errors_cross_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<super::Session>();
        assert_send_sync::<super::Grant>();
        assert_send_sync::<super::ClientError>();
        assert_send_sync::<super::Passphrase>();
    }
}
