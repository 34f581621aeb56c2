//! `irm_status`: every result a libirm function returns, with explicit
//! numbers that never change meaning, and the mapping from the Rust errors of
//! irm-client and irm-core onto them.
//!
//! Ranges: 0 success; 1xx the caller's arguments; 2xx local files, the
//! network, credentials and integrity; 300 + `DenyReason::code()` for each
//! refusal by the key server; 9xx the library itself.

use std::io;

use irm_client::ClientError;
use irm_core::protocol::DenyReason;
use irm_core::{FormatError, OpenError, SealError};

/// The result of every libirm call. Numbers are stable: new values may be
/// added, existing ones never change. On failure,
/// `irm_last_error_message` gives the detail on the same thread.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum irm_status {
    /// Success.
    IRM_OK = 0,

    /// A required pointer argument was NULL.
    IRM_STATUS_NULL_ARGUMENT = 100,
    /// A string argument is not valid UTF-8.
    IRM_STATUS_INVALID_UTF8 = 101,
    /// An argument has a value that cannot be used (an unknown right, an
    /// empty recipient list, a `(NULL, n > 0)` buffer, a malformed key...).
    IRM_STATUS_INVALID_ARGUMENT = 102,
    /// The caller's buffer was too small; what fits was written (see the function).
    IRM_STATUS_BUFFER_TOO_SMALL = 103,
    /// A handle argument is not a live handle of the expected type (already
    /// freed, or never returned by this library).
    IRM_STATUS_INVALID_HANDLE = 104,

    /// Reading or writing a local file failed.
    IRM_STATUS_IO = 200,
    /// The key server could not be reached (connection refused, no answer in time).
    IRM_STATUS_UNREACHABLE = 201,
    /// The TLS handshake with the key server failed (certificate not from the enrolled CA).
    IRM_STATUS_TLS = 202,
    /// This device is not enrolled in the configuration directory.
    IRM_STATUS_NOT_ENROLLED = 203,
    /// The passphrase does not unlock the device's keys.
    IRM_STATUS_WRONG_PASSPHRASE = 204,
    /// The file or a grant failed an integrity check (tampered payload,
    /// truncated file, key commitment mismatch).
    IRM_STATUS_INTEGRITY = 205,
    /// The document's lease has ended; call `irm_renew`.
    IRM_STATUS_LEASE_EXPIRED = 206,
    /// The grant does not carry the `program` right: no plaintext for programs.
    IRM_STATUS_NO_PROGRAM_RIGHT = 207,
    /// The input is not a sealed file this version reads.
    IRM_STATUS_FORMAT = 208,
    /// The file, or the server URL given to `irm_client_open_explicit`, is
    /// for another key server than the one this device enrolled with.
    IRM_STATUS_SERVER_MISMATCH = 209,
    /// The credentials at rest are damaged or in an unknown layout.
    IRM_STATUS_BAD_CONFIG = 210,
    /// The key server answered outside the protocol, or with an error that is not a refusal.
    IRM_STATUS_SERVER_ERROR = 211,
    /// A buffer the call needs could not be allocated (a document too large
    /// to convert in memory: read it in pieces with `irm_read` instead).
    IRM_STATUS_OUT_OF_MEMORY = 212,

    /// The key server refused for a reason this version does not know.
    IRM_STATUS_DENIED = 300,
    /// Refused: the device credential is not valid (`credential_invalid`).
    IRM_STATUS_DENIED_CREDENTIAL_INVALID = 301,
    /// Refused: the user is suspended (`user_suspended`).
    IRM_STATUS_DENIED_USER_SUSPENDED = 302,
    /// Refused: this device has been revoked (`device_revoked`).
    IRM_STATUS_DENIED_DEVICE_REVOKED = 303,
    /// Refused: the file was sealed to an unknown key (`key_unknown`).
    IRM_STATUS_DENIED_KEY_UNKNOWN = 304,
    /// Refused: the file's key has been retired (`key_retired`).
    IRM_STATUS_DENIED_KEY_RETIRED = 305,
    /// Refused: the header was altered after sealing (`policy_binding_failed`).
    IRM_STATUS_DENIED_POLICY_BINDING_FAILED = 306,
    /// Refused: an administrator revoked the file (`file_revoked`).
    IRM_STATUS_DENIED_FILE_REVOKED = 307,
    /// Refused: the user is not a recipient (`not_recipient`).
    IRM_STATUS_DENIED_NOT_RECIPIENT = 308,
    /// Refused: the file's not-before time has not come (`not_yet_valid`).
    IRM_STATUS_DENIED_NOT_YET_VALID = 309,
    /// Refused: the policy's not-after time has passed (`policy_expired`).
    IRM_STATUS_DENIED_POLICY_EXPIRED = 310,
    /// Refused: an administrator expired the file (`file_expired`).
    IRM_STATUS_DENIED_FILE_EXPIRED = 311,
    /// Refused: an administrator's restriction leaves no right (`rights_restricted`).
    IRM_STATUS_DENIED_RIGHTS_RESTRICTED = 312,
    /// Refused: the action's right is not in the grant (`right_not_granted`).
    IRM_STATUS_DENIED_RIGHT_NOT_GRANTED = 313,
    /// Refused: the operation needs a role the user lacks (`role_required`).
    IRM_STATUS_DENIED_ROLE_REQUIRED = 314,
    /// Refused: the enrollment code is not valid (`enrollment_code_invalid`).
    IRM_STATUS_DENIED_ENROLLMENT_CODE_INVALID = 315,
    /// Refused: taking the plaintext out needs administrators' approval
    /// first (`export_approval_required`; `irm export request`).
    IRM_STATUS_DENIED_EXPORT_APPROVAL_REQUIRED = 316,
    /// Refused: the key server restarted and its keys are still sealed
    /// (`server_sealed`); try again once its share holders have unsealed it.
    IRM_STATUS_DENIED_SERVER_SEALED = 317,
    /// Refused: a record the key server decides on failed its integrity
    /// check (`state_integrity`); someone may have changed its database.
    IRM_STATUS_DENIED_STATE_INTEGRITY = 318,
    /// A detection rule paused this person's access for review
    /// (`step_up_required`); administrators release it.
    IRM_STATUS_DENIED_STEP_UP_REQUIRED = 319,

    /// A bug in libirm: a Rust panic was caught at the boundary. The handles
    /// passed to the call are still valid but their state is unspecified.
    IRM_STATUS_PANIC = 900,
}

impl irm_status {
    /// The status for a refusal: 300 + `DenyReason::code()`.
    pub fn denied(reason: DenyReason) -> Self {
        use irm_status::*;
        match reason {
            DenyReason::CredentialInvalid => IRM_STATUS_DENIED_CREDENTIAL_INVALID,
            DenyReason::UserSuspended => IRM_STATUS_DENIED_USER_SUSPENDED,
            DenyReason::DeviceRevoked => IRM_STATUS_DENIED_DEVICE_REVOKED,
            DenyReason::KeyUnknown => IRM_STATUS_DENIED_KEY_UNKNOWN,
            DenyReason::KeyRetired => IRM_STATUS_DENIED_KEY_RETIRED,
            DenyReason::PolicyBindingFailed => IRM_STATUS_DENIED_POLICY_BINDING_FAILED,
            DenyReason::FileRevoked => IRM_STATUS_DENIED_FILE_REVOKED,
            DenyReason::NotRecipient => IRM_STATUS_DENIED_NOT_RECIPIENT,
            DenyReason::NotYetValid => IRM_STATUS_DENIED_NOT_YET_VALID,
            DenyReason::PolicyExpired => IRM_STATUS_DENIED_POLICY_EXPIRED,
            DenyReason::FileExpired => IRM_STATUS_DENIED_FILE_EXPIRED,
            DenyReason::RightsRestricted => IRM_STATUS_DENIED_RIGHTS_RESTRICTED,
            DenyReason::RightNotGranted => IRM_STATUS_DENIED_RIGHT_NOT_GRANTED,
            DenyReason::RoleRequired => IRM_STATUS_DENIED_ROLE_REQUIRED,
            DenyReason::EnrollmentCodeInvalid => IRM_STATUS_DENIED_ENROLLMENT_CODE_INVALID,
            DenyReason::ExportApprovalRequired => IRM_STATUS_DENIED_EXPORT_APPROVAL_REQUIRED,
            DenyReason::ServerSealed => IRM_STATUS_DENIED_SERVER_SEALED,
            DenyReason::StateIntegrity => IRM_STATUS_DENIED_STATE_INTEGRITY,
            DenyReason::StepUpRequired => IRM_STATUS_DENIED_STEP_UP_REQUIRED,
            _ => IRM_STATUS_DENIED,
        }
    }
}

/// A failed call: the status to return and the detail for
/// `irm_last_error_message`.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: irm_status,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(status: irm_status, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn null(what: &str) -> Self {
        Self::new(
            irm_status::IRM_STATUS_NULL_ARGUMENT,
            format!("{what} is NULL"),
        )
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(irm_status::IRM_STATUS_INVALID_ARGUMENT, message)
    }
}

/// `error: cause: cause...`, as the CLI prints errors.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

impl From<ClientError> for Failure {
    fn from(err: ClientError) -> Self {
        use irm_status::*;
        // Sealing failures keep the status they have when irm-core reports
        // them directly.
        let err = match err {
            ClientError::Seal(seal) => return Failure::from(seal),
            ClientError::Io { context, source } => return io_failure(&context, &source),
            other => other,
        };
        let status = match &err {
            ClientError::Denied(reason, _) => irm_status::denied(*reason),
            ClientError::Unreachable { .. } => IRM_STATUS_UNREACHABLE,
            // Both say: this is not the key server the person was sent to.
            ClientError::Tls { .. } | ClientError::CaMismatch { .. } => IRM_STATUS_TLS,
            ClientError::NotEnrolled { .. } => IRM_STATUS_NOT_ENROLLED,
            ClientError::WrongPassphrase { .. } => IRM_STATUS_WRONG_PASSPHRASE,
            ClientError::ServerMismatch { .. } => IRM_STATUS_SERVER_MISMATCH,
            ClientError::Integrity { .. } => IRM_STATUS_INTEGRITY,
            ClientError::LeaseExpired => IRM_STATUS_LEASE_EXPIRED,
            ClientError::BadConfig { .. } | ClientError::AlreadyEnrolled { .. } => {
                IRM_STATUS_BAD_CONFIG
            }
            ClientError::InvalidArgument(_) => IRM_STATUS_INVALID_ARGUMENT,
            ClientError::BadResponse { .. } | ClientError::Http { .. } => IRM_STATUS_SERVER_ERROR,
            _ => IRM_STATUS_SERVER_ERROR,
        };
        let mut message = chain(&err);
        if let Some(reason) = err.deny_reason() {
            message.push_str(&format!(" ({})", reason.advice()));
        }
        Self::new(status, message)
    }
}

impl From<SealError> for Failure {
    fn from(err: SealError) -> Self {
        let status = match err {
            SealError::Random => irm_status::IRM_STATUS_IO,
            _ => irm_status::IRM_STATUS_INVALID_ARGUMENT,
        };
        Self::new(status, chain(&err))
    }
}

impl From<FormatError> for Failure {
    fn from(err: FormatError) -> Self {
        let status = match err {
            FormatError::Io(_) => irm_status::IRM_STATUS_IO,
            _ => irm_status::IRM_STATUS_FORMAT,
        };
        Self::new(
            status,
            format!("not a readable sealed file: {}", chain(&err)),
        )
    }
}

/// An I/O error from the payload opener or sealer: integrity failures travel
/// inside it as an [`OpenError`].
pub(crate) fn io_failure(context: &str, err: &io::Error) -> Failure {
    let status = match OpenError::from_io(err) {
        Some(OpenError::InvalidPosition) => irm_status::IRM_STATUS_INVALID_ARGUMENT,
        Some(_) => irm_status::IRM_STATUS_INTEGRITY,
        None => irm_status::IRM_STATUS_IO,
    };
    Failure::new(status, format!("{context}: {}", chain(err)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_denial_is_300_plus_its_stable_code() {
        for reason in DenyReason::ALL {
            assert_eq!(
                irm_status::denied(reason) as u32,
                300 + u32::from(reason.code()),
                "{reason:?}"
            );
        }
    }

    #[test]
    fn a_denied_client_error_keeps_its_reason_and_advice() {
        let failure = Failure::from(ClientError::Denied(
            DenyReason::FileRevoked,
            "file abc is revoked".into(),
        ));
        assert_eq!(failure.status, irm_status::IRM_STATUS_DENIED_FILE_REVOKED);
        assert!(
            failure.message.contains("file_revoked"),
            "{}",
            failure.message
        );
        assert!(failure.message.contains(DenyReason::FileRevoked.advice()));
    }

    #[test]
    fn a_ca_that_is_not_the_invitations_is_a_tls_status() {
        let failure = Failure::from(ClientError::CaMismatch {
            url: "https://kas.example:8443".into(),
            expected: "ab".repeat(32),
            found: "cd".repeat(32),
        });
        assert_eq!(failure.status, irm_status::IRM_STATUS_TLS);
        assert!(
            failure.message.contains("fingerprint"),
            "{}",
            failure.message
        );
    }

    #[test]
    fn an_integrity_failure_inside_an_io_error_is_an_integrity_status() {
        let err: io::Error = OpenError::ChunkAuthenticationFailed { index: 3 }.into();
        assert_eq!(
            io_failure("reading", &err).status,
            irm_status::IRM_STATUS_INTEGRITY
        );
        let err = io::Error::other("disk on fire");
        assert_eq!(
            io_failure("reading", &err).status,
            irm_status::IRM_STATUS_IO
        );
    }
}
