//! [`ClientError`]: every way a call to the key server, or to the
//! credentials at rest, can fail, one variant per thing a caller reacts to
//! differently (show a denial, retry later, re-enroll, ask for the
//! passphrase again).
//!
//! Which server answer becomes which variant is decided in `transport.rs`;
//! how a front-end presents a variant (exit code, FFI status, dialog) is the
//! front-end's business.

use std::io;
use std::path::PathBuf;

use irm_core::protocol::DenyReason;

/// A failed client operation. Every message says what went wrong; the
/// variant tells the caller what kind of remedy applies.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The key server refused (HTTP 401 or 403 with a `DenyBody`). The
    /// reason is machine-readable; `DenyReason::advice` says what to do.
    #[error("the key server refused: {1} ({reason})", reason = .0.as_str())]
    Denied(DenyReason, String),

    /// The key server could not be reached: connection refused, name not
    /// resolved, or no answer in time.
    #[error("cannot reach the key server at {url}: {detail}")]
    Unreachable {
        /// The server URL.
        url: String,
        /// What failed (connect, timeout), as reported by the transport
        /// with its causes.
        detail: String,
    },

    /// The TLS handshake failed: the server's certificate is not signed by
    /// the CA given at enrollment, has expired, or names another host.
    #[error(
        "the secure connection to {url} failed: the server's certificate is not signed by the CA \
         this device enrolled with, has expired or names another host ({detail})"
    )]
    Tls {
        /// The server URL.
        url: String,
        /// The TLS failure, with its causes.
        detail: String,
    },

    /// The CA certificate a server sent does not have the fingerprint the
    /// enrollment invitation carries: it is not the key server the
    /// administrator meant, or someone is in between.
    #[error(
        "the key server at {url} sent a CA certificate with SHA-256 fingerprint {found}, not the \
         {expected} the invitation names"
    )]
    CaMismatch {
        /// The server URL.
        url: String,
        /// The fingerprint in the invitation (hex).
        expected: String,
        /// The fingerprint of what the server sent (hex), or a description.
        found: String,
    },

    /// The server answered something that does not follow docs/PROTOCOL.md.
    #[error("the key server's answer is not valid ({context}): {problem}")]
    BadResponse {
        /// Which call.
        context: String,
        /// What is wrong with the answer.
        problem: String,
    },

    /// This device has no credentials (no `device.json` in the config directory).
    #[error("this device is not enrolled: {} does not exist", .dir.join("device.json").display())]
    NotEnrolled {
        /// The configuration directory that was searched.
        dir: PathBuf,
    },

    /// Credentials exist already where an enrollment would write them.
    #[error("this device is already enrolled: {} exists", .dir.join("device.json").display())]
    AlreadyEnrolled {
        /// The configuration directory.
        dir: PathBuf,
    },

    /// The passphrase does not decrypt `device.key` (or the file was damaged:
    /// the two are indistinguishable on purpose).
    #[error("wrong passphrase: it does not unlock {}", .path.display())]
    WrongPassphrase {
        /// The key file.
        path: PathBuf,
    },

    /// The file names another key server than the one this device enrolled
    /// with. Its URL is compared, never contacted.
    #[error(
        "the file is for another key server ({}), but this device is enrolled with {enrolled}",
        .file_servers.join(", ")
    )]
    ServerMismatch {
        /// The key-access URLs in the file's header.
        file_servers: Vec<String>,
        /// The server this device is enrolled with.
        enrolled: String,
    },

    /// A grant's content key did not unwrap with this device's key, or did
    /// not match the file's key commitment: the grant or the file was
    /// altered, or the grant was for another device, file or lease.
    #[error("the grant does not fit the file ({context})")]
    Integrity {
        /// What was being checked.
        context: &'static str,
        /// The cryptographic failure.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The grant's lease has run out (on this computer's monotonic clock): the
    /// content key is no longer handed out. Renew the grant.
    #[error("the grant's lease has ended; renew it to keep the file open")]
    LeaseExpired,

    /// The credentials at rest are damaged or not in a form this version reads.
    #[error("{} is not usable: {problem}", .path.display())]
    BadConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },

    /// A header could not be built for the policy, metadata and key given
    /// (an invalid policy, chunk length or key server key).
    #[error(transparent)]
    Seal(irm_core::SealError),

    /// An argument cannot be used as given (an empty passphrase, a server URL
    /// that is not https, a CA file that holds no certificate).
    #[error("{0}")]
    InvalidArgument(String),

    /// Reading or writing a local file failed.
    #[error("{context}")]
    Io {
        /// What was being done, naming the file.
        context: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },

    /// Any other error answer (400, 404, 409, 413, 415, 500) with its
    /// `ErrorBody`.
    #[error("the key server answered {status} {error}: {message}")]
    Http {
        /// The HTTP status.
        status: u16,
        /// The stable error kind, such as `not_found` or `conflict`.
        error: String,
        /// The server's explanation.
        message: String,
    },
}

impl ClientError {
    /// The denial reason, if the key server refused.
    pub fn deny_reason(&self) -> Option<DenyReason> {
        match self {
            Self::Denied(reason, _) => Some(*reason),
            _ => None,
        }
    }

    /// Whether retrying later may help (the server could not be reached).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Unreachable { .. })
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn bad_response(context: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::BadResponse {
            context: context.into(),
            problem: problem.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denial_names_its_reason_string_and_the_server_message() {
        let err = ClientError::Denied(DenyReason::FileRevoked, "file abc is revoked".into());
        assert_eq!(
            err.to_string(),
            "the key server refused: file abc is revoked (file_revoked)"
        );
        assert_eq!(err.deny_reason(), Some(DenyReason::FileRevoked));
        assert!(!err.is_unreachable());
    }
}
