//! Typed errors: [`StoreError`] for the storage layer, [`Refusal`] for a
//! request the domain turned down, and [`ApiError`], the one error every
//! handler returns, which maps onto the status codes and bodies of
//! PROTOCOL.md §1. Internal details go to the log, never to the client.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use irm_core::protocol::{DenyBody, DenyReason, ErrorBody};

/// The store failed. Never caused by the client's input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("database error")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL reported an error (or could not be reached).
    #[error("PostgreSQL error")]
    Postgres(#[from] postgres::Error),
    /// Another key server holds the database's writer lock.
    #[error(
        "another key server is writing to this database (two writers on one database would each extend the audit chain from a different head); stop the other irm-key-server (with PostgreSQL, pg_stat_activity names it by application_name irm-key-server) or give this one a database of its own"
    )]
    InUse,
    /// The SQLite writer lock file could not be opened or locked.
    #[error(
        "cannot take the database's writer lock {}: {source}; check that the data directory is writable by the server's account",
        path.display()
    )]
    Lock {
        /// The lock file.
        path: std::path::PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A number does not fit the database's signed 64-bit integers.
    #[error("{0} is out of the database's range")]
    OutOfRange(&'static str),
    /// A stored value does not have the shape this version writes.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// The writer thread stopped (the server is shutting down or it failed).
    #[error(
        "the database writer is not running (the key server is shutting down or failed; see its log and restart it)"
    )]
    WriterGone,
    /// A blocking task panicked or was cancelled.
    #[error("a storage task did not complete")]
    TaskFailed,
    /// File system error next to the database (key files, checkpoints).
    #[error("file system error")]
    Io(#[from] std::io::Error),
}

/// A request the domain refused; becomes a 4xx.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// A denial with a stable reason (403, or 401 for `credential_invalid`).
    #[error("{0}")]
    Deny(DenyReason),
    /// Unknown user, group, device, file, grant or key (404).
    #[error("{0} not found")]
    NotFound(String),
    /// It exists already, or the state does not allow it (409).
    #[error("{0}")]
    Conflict(String),
    /// Bad input the domain noticed (400).
    #[error("{0}")]
    BadRequest(String),
}

impl Refusal {
    /// The reason or kind, as recorded in the audit log.
    pub fn audit_reason(&self) -> &'static str {
        match self {
            Self::Deny(reason) => reason.as_str(),
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::BadRequest(_) => "bad_request",
        }
    }
}

/// Every way a request can fail, as the client sees it (PROTOCOL.md §1).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401 `credential_invalid` with a message saying what to check.
    #[error("credential invalid: {0}")]
    Credential(&'static str),
    /// A refusal from the domain.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// A refusal with whom the person should call (PROTOCOL.md §12).
    #[error("{reason}; call {contact}")]
    DeniedCall {
        /// Why.
        reason: DenyReason,
        /// The contact configured for the person's group.
        contact: String,
    },
    /// 413.
    #[error("the request body is larger than 1 MiB")]
    PayloadTooLarge,
    /// 415.
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    /// 429 with `Retry-After`: too many wrong enrollments from this address.
    #[error("too many wrong enrollment attempts from this address")]
    TooManyAttempts {
        /// Seconds until the address may try again.
        retry_after_secs: u64,
    },
    /// 503 with `Retry-After`: as many push-channel streams are open as
    /// the server allows (PROTOCOL.md §13); the device keeps to its lease.
    #[error("too many push-channel streams are open")]
    WatchersFull {
        /// Seconds until the device may try again.
        retry_after_secs: u64,
    },
    /// 500: the detail is logged, never sent.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// 400 with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::Refused(Refusal::BadRequest(message.into()))
    }

    /// 404 for `what`.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::Refused(Refusal::NotFound(what.into()))
    }

    /// 403 (or 401) with `reason`.
    pub fn deny(reason: DenyReason) -> Self {
        Self::Refused(Refusal::Deny(reason))
    }

    /// The status code this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Credential(_) | Self::Refused(Refusal::Deny(DenyReason::CredentialInvalid)) => {
                StatusCode::UNAUTHORIZED
            }
            Self::Refused(Refusal::Deny(DenyReason::ServerSealed)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Refused(Refusal::Deny(_)) | Self::DeniedCall { .. } => StatusCode::FORBIDDEN,
            Self::Refused(Refusal::NotFound(_)) => StatusCode::NOT_FOUND,
            Self::Refused(Refusal::Conflict(_)) => StatusCode::CONFLICT,
            Self::Refused(Refusal::BadRequest(_)) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::WatchersFull { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        Self::Internal(Box::new(err))
    }
}

fn error_body(error: &str, message: impl Into<String>) -> Json<ErrorBody> {
    Json(ErrorBody {
        error: error.to_owned(),
        message: message.into(),
    })
}

/// Marks a response as a refusal, so the metrics layer can count it by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeniedWith(pub DenyReason);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let denied = match &self {
            Self::Credential(_) => Some(DenyReason::CredentialInvalid),
            Self::Refused(Refusal::Deny(reason)) | Self::DeniedCall { reason, .. } => Some(*reason),
            _ => None,
        };
        let mut response = self.render();
        if let Some(reason) = denied {
            response.extensions_mut().insert(DeniedWith(reason));
        }
        response
    }
}

impl ApiError {
    fn render(self) -> Response {
        let status = self.status();
        match self {
            Self::Credential(message) => (
                status,
                Json(DenyBody {
                    reason: DenyReason::CredentialInvalid,
                    message: message.to_owned(),
                }),
            )
                .into_response(),
            Self::Refused(Refusal::Deny(reason)) => (
                status,
                Json(DenyBody {
                    reason,
                    // What went wrong only: each client adds
                    // `DenyReason::advice` in its own form (a hint line, a
                    // translated screen), so it is never said twice.
                    message: reason.to_string(),
                }),
            )
                .into_response(),
            Self::DeniedCall { reason, contact } => (
                status,
                Json(DenyBody {
                    reason,
                    message: reason.message_with_contact(&contact),
                }),
            )
                .into_response(),
            Self::Refused(Refusal::NotFound(what)) => {
                (status, error_body("not_found", format!("{what} not found"))).into_response()
            }
            Self::Refused(Refusal::Conflict(message)) => {
                (status, error_body("conflict", message)).into_response()
            }
            Self::Refused(Refusal::BadRequest(message)) => {
                (status, error_body("bad_request", message)).into_response()
            }
            Self::PayloadTooLarge => (
                status,
                error_body("payload_too_large", "the request body is larger than 1 MiB"),
            )
                .into_response(),
            Self::UnsupportedMediaType => (
                status,
                error_body(
                    "unsupported_media_type",
                    "the request body must be sent as Content-Type: application/json",
                ),
            )
                .into_response(),
            Self::TooManyAttempts { retry_after_secs } => (
                status,
                [(
                    axum::http::header::RETRY_AFTER,
                    retry_after_secs.to_string(),
                )],
                error_body(
                    "too_many_attempts",
                    format!(
                        "too many wrong enrollment attempts from this address; try again in {retry_after_secs} s, with the code exactly as given"
                    ),
                ),
            )
                .into_response(),
            Self::WatchersFull { retry_after_secs } => (
                status,
                [(
                    axum::http::header::RETRY_AFTER,
                    retry_after_secs.to_string(),
                )],
                error_body(
                    "watch_capacity",
                    "the key server has as many push-channel streams open as it allows; the document stays open on its lease, and the device tries again later",
                ),
            )
                .into_response(),
            Self::Internal(source) => {
                // STYLE.md §7: the detail reaches the log, never the client.
                tracing::error!(error = %source, source = ?source.source(), "internal error");
                (status, error_body("internal", "internal error")).into_response()
            }
        }
    }
}
