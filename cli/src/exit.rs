//! The `irm` exit codes, in one table, and the mapping from an error to its
//! exit code, its JSON `kind` and a line of advice.
//!
//! This module decides *which* class a failure belongs to; printing the error
//! (as text on stderr or as JSON on stdout) is `report.rs`'s job. Numbers
//! never change meaning: a retired code stays reserved in a comment here.
//!
//! The table itself is [`Exit::ALL`] with [`Exit::meaning`]: `irm --help`
//! prints it ([`exit_codes_help`]) and a test checks the README's copy
//! against it. The rule it states once: a refusal *by the key server*
//! exits 3 whatever its reason (`policy_binding_failed` included, which the
//! server finds); a check that fails *on this computer* (the file's bytes,
//! a grant that does not fit the file, a key that does not open it) exits 4.

use std::fmt;
use std::io;

use irm_client::ClientError;
use irm_core::protocol::DenyReason;
use irm_core::{FormatError, KeyParseError, OpenError, PolicyError, SealError, UnwrapError};

/// One row of the exit-code table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// 1: anything not covered below.
    Failure,
    /// 2: the command line cannot be carried out as given (also clap's code).
    Usage,
    /// 3: the key server refused access.
    Denied,
    /// 4: the file is not an intact sealed file for this key.
    Integrity,
    /// 5: the key server could not be reached.
    Unreachable,
    /// 6: reading or writing a file failed.
    Io,
    /// 7: `irm admin audit digest` could not deliver every digest.
    Undelivered,
    /// 8: a lookup found nothing (`irm trace`: no canary, no grant).
    NotFound,
}

impl Exit {
    /// Every row, in number order.
    pub(crate) const ALL: [Exit; 8] = [
        Exit::Failure,
        Exit::Usage,
        Exit::Denied,
        Exit::Integrity,
        Exit::Unreachable,
        Exit::Io,
        Exit::Undelivered,
        Exit::NotFound,
    ];

    /// What the code means: the one wording of the table, shown by
    /// `irm --help` and copied into the README.
    pub(crate) fn meaning(self) -> &'static str {
        match self {
            Exit::Failure => {
                "other failure (not enrolled, wrong passphrase, unsupported format version, \
                 malformed key file, an audit log that does not verify, ...)"
            }
            Exit::Usage => {
                "usage: the command line cannot be carried out as given (bad arguments, output \
                 exists without --force, input and output are the same file)"
            }
            Exit::Denied => {
                "denied by the key server, whatever its reason (policy_binding_failed \
                 included); the reason, such as file_revoked, is printed"
            }
            Exit::Integrity => {
                "integrity failure found on this computer: not a sealed file, tampered, \
                 truncated, a header whose binding does not verify under the key given, or a \
                 grant that does not fit the file"
            }
            Exit::Unreachable => {
                "key server unreachable, or its TLS certificate is not from the enrolled CA"
            }
            Exit::Io => "input/output error: file not found, permission denied, disk full",
            Exit::Undelivered => {
                "irm admin audit digest: some digests were not delivered after retries (each is \
                 named on stderr); the others were sent, and all are recorded with the key server"
            }
            Exit::NotFound => {
                "nothing found: irm trace found no canary of any export in the file, or no \
                 grant with the watermark id"
            }
        }
    }

    /// The process exit status.
    pub(crate) fn code(self) -> u8 {
        match self {
            Exit::Failure => 1,
            Exit::Usage => 2,
            Exit::Denied => 3,
            Exit::Integrity => 4,
            Exit::Unreachable => 5,
            Exit::Io => 6,
            Exit::Undelivered => 7,
            Exit::NotFound => 8,
        }
    }

    /// The stable `kind` string of the JSON error object.
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Exit::Failure => "failure",
            Exit::Usage => "usage",
            Exit::Denied => "denied",
            Exit::Integrity => "integrity",
            Exit::Unreachable => "unreachable",
            Exit::Io => "io",
            Exit::Undelivered => "undelivered",
            Exit::NotFound => "not_found",
        }
    }
}

/// The exit-code table as shown at the end of `irm --help`.
pub(crate) fn exit_codes_help() -> String {
    let mut text = String::from(
        "Exit status:\n  0  success: the whole input was processed and the output is in place\n",
    );
    for exit in Exit::ALL {
        text.push_str(&format!("  {}  {}\n", exit.code(), exit.meaning()));
    }
    text.push_str(
        "\nWith --json, a failure prints one object on stdout:\n  \
         {\"ok\": false, \"kind\": \"integrity\", \"exit_code\": 4, \"message\": \"...\", \"hint\": \"...\" | null}\n\
         where kind is one of failure, usage, denied, integrity, unreachable, io, undelivered,\n\
         not_found. A denial adds\n\
         \"reason\": the key server's machine-readable reason, such as \"file_revoked\".",
    );
    text
}

/// An error the CLI raises itself, carrying its class and advice, such as a
/// refusal to overwrite a file.
#[derive(Debug)]
pub(crate) struct Refusal {
    exit: Exit,
    message: String,
    hint: Option<String>,
}

impl Refusal {
    /// A usage error (exit 2).
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            exit: Exit::Usage,
            message: message.into(),
            hint: None,
        }
    }

    /// A lookup that found nothing (exit 7).
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self {
            exit: Exit::NotFound,
            message: message.into(),
            hint: None,
        }
    }

    /// Any other failure (exit 1).
    pub(crate) fn failure(message: impl Into<String>) -> Self {
        Self {
            exit: Exit::Failure,
            message: message.into(),
            hint: None,
        }
    }

    /// Some digests were not delivered (exit 7).
    pub(crate) fn undelivered(message: impl Into<String>) -> Self {
        Self {
            exit: Exit::Undelivered,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds the "what to do" line.
    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Refusal {}

/// How a failure is reported: its exit code, the key server's reason for a
/// denial, and, when we have one, advice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Diagnosis {
    pub(crate) exit: Exit,
    pub(crate) reason: Option<DenyReason>,
    pub(crate) hint: Option<String>,
}

impl Diagnosis {
    fn new(exit: Exit, hint: Option<&str>) -> Self {
        Self {
            exit,
            reason: None,
            hint: hint.map(str::to_owned),
        }
    }
}

const HINT_ALTERED: &str =
    "the file was altered or damaged after sealing; ask the sender for a new copy";
const HINT_TRUNCATED: &str = "the file is incomplete (cut short while copying?); copy it again or ask the sender for a new copy";
const HINT_NOT_SEALED: &str = "is this a sealed .irm file?";
const HINT_UPGRADE: &str = "the file needs a newer version of irm; upgrade irm";

/// Classifies an error by the first cause in its chain that we recognise,
/// outermost first, so a wrapper (a `FormatError::Io`) decides before the
/// `io::Error` inside it.
pub(crate) fn diagnose(err: &anyhow::Error) -> Diagnosis {
    for cause in err.chain() {
        if let Some(found) = diagnose_one(cause) {
            return found;
        }
    }
    Diagnosis::new(Exit::Failure, None)
}

fn diagnose_one(cause: &(dyn std::error::Error + 'static)) -> Option<Diagnosis> {
    if let Some(refusal) = cause.downcast_ref::<Refusal>() {
        return Some(Diagnosis {
            exit: refusal.exit,
            reason: None,
            hint: refusal.hint.clone(),
        });
    }
    if let Some(err) = cause.downcast_ref::<ClientError>() {
        return Some(client_error(err));
    }
    if let Some(err) = cause.downcast_ref::<FormatError>() {
        return Some(format_error(err));
    }
    if let Some(err) = cause.downcast_ref::<UnwrapError>() {
        return Some(unwrap_error(err));
    }
    if let Some(err) = cause.downcast_ref::<OpenError>() {
        return Some(open_error(err));
    }
    if let Some(err) = cause.downcast_ref::<SealError>() {
        return Some(seal_error(err));
    }
    if cause.is::<PolicyError>() {
        // Only sealing builds policies from our arguments; a policy inside a
        // header arrives wrapped in a FormatError and is classified above.
        return Some(Diagnosis::new(Exit::Usage, None));
    }
    if let Some(err) = cause.downcast_ref::<KeyParseError>() {
        return Some(key_parse_error(err));
    }
    if let Some(err) = cause.downcast_ref::<io::Error>() {
        return Some(io_error(err));
    }
    None
}

fn client_error(err: &ClientError) -> Diagnosis {
    match err {
        ClientError::Denied(reason, _) => Diagnosis {
            exit: Exit::Denied,
            reason: Some(*reason),
            hint: Some(reason.advice().to_owned()),
        },
        ClientError::Unreachable { .. } => Diagnosis::new(
            Exit::Unreachable,
            Some("check that the key server is running and reachable from here, then try again"),
        ),
        ClientError::Tls { .. } => Diagnosis::new(
            Exit::Unreachable,
            Some(
                "this may not be your key server; ask your administrator, and enroll again with \
                 the server's current ca.pem if it was replaced",
            ),
        ),
        ClientError::CaMismatch { .. } => Diagnosis::new(
            Exit::Unreachable,
            Some(
                "nothing was sent and the code is not used up: this is not the key server the \
                 invitation names, or someone is in between; check the invitation with the \
                 administrator who gave it (a copy error changes the fingerprint too)",
            ),
        ),
        ClientError::NotEnrolled { .. } => Diagnosis::new(
            Exit::Failure,
            Some(
                "enroll first with the invitation your administrator gave you: irm enroll 'irm-invite:1?...' \
                 (IRM_CONFIG_DIR selects another configuration directory)",
            ),
        ),
        ClientError::AlreadyEnrolled { .. } => Diagnosis::new(
            Exit::Usage,
            Some(
                "use --force to replace this enrollment, or set IRM_CONFIG_DIR to another directory",
            ),
        ),
        ClientError::WrongPassphrase { .. } => Diagnosis::new(
            Exit::Failure,
            Some(
                "give the passphrase chosen at enrollment; if it is lost, ask your administrator \
                 for a new code and enroll again with --force",
            ),
        ),
        ClientError::ServerMismatch { .. } => Diagnosis::new(
            Exit::Failure,
            Some(
                "open it on a device enrolled with that key server, or ask the sender to seal it for yours",
            ),
        ),
        ClientError::Integrity { .. } => Diagnosis::new(
            Exit::Integrity,
            Some("the file or the grant was altered; ask the sender for a new copy"),
        ),
        ClientError::LeaseExpired => Diagnosis::new(
            Exit::Failure,
            Some("open the file again to get a new lease"),
        ),
        ClientError::BadConfig { .. } => Diagnosis::new(
            Exit::Failure,
            Some("ask your administrator for a new code and enroll this device again with --force"),
        ),
        ClientError::InvalidArgument(_) => Diagnosis::new(Exit::Usage, None),
        ClientError::Seal(seal) => seal_error(seal),
        ClientError::Io { source, .. } => io_error(source),
        ClientError::BadResponse { .. } => Diagnosis::new(
            Exit::Failure,
            Some("the key server and this irm may be different versions; tell your administrator"),
        ),
        ClientError::Http { status: 404, .. } => Diagnosis::new(
            Exit::Failure,
            Some("check the name or id (the `list` commands show them)"),
        ),
        ClientError::Http { status: 409, .. } => {
            Diagnosis::new(Exit::Failure, Some("it exists already"))
        }
        _ => Diagnosis::new(Exit::Failure, None),
    }
}

fn format_error(err: &FormatError) -> Diagnosis {
    match err {
        FormatError::BadMagic => Diagnosis::new(Exit::Integrity, Some(HINT_NOT_SEALED)),
        FormatError::Truncated { .. } => Diagnosis::new(Exit::Integrity, Some(HINT_TRUNCATED)),
        FormatError::UnsupportedVersion { .. } | FormatError::UnknownCriticalField { .. } => {
            Diagnosis::new(Exit::Failure, Some(HINT_UPGRADE))
        }
        FormatError::Io(io) => io_error(io),
        // CorruptHeader, LimitExceeded, Policy and variants added later.
        _ => Diagnosis::new(Exit::Integrity, Some(HINT_ALTERED)),
    }
}

fn unwrap_error(err: &UnwrapError) -> Diagnosis {
    match err {
        UnwrapError::NoMatchingKey { .. } => Diagnosis::new(
            Exit::Integrity,
            Some(
                "the file was sealed to a different key server key; \
                 `irm inspect FILE` shows the key id it needs",
            ),
        ),
        _ => Diagnosis::new(
            Exit::Integrity,
            Some(
                "the header was altered after sealing (or the key does not belong to this file); \
                 ask the sender for a new copy",
            ),
        ),
    }
}

fn open_error(err: &OpenError) -> Diagnosis {
    match err {
        OpenError::Truncated => Diagnosis::new(Exit::Integrity, Some(HINT_TRUNCATED)),
        OpenError::InvalidPosition => Diagnosis::new(Exit::Failure, None),
        // Authentic metadata this version cannot read: classified as the same
        // problem in the header would be (a later version's field: upgrade).
        OpenError::InvalidMetadata(inner) => format_error(inner),
        _ => Diagnosis::new(Exit::Integrity, Some(HINT_ALTERED)),
    }
}

fn seal_error(err: &SealError) -> Diagnosis {
    match err {
        SealError::Policy(_) | SealError::InvalidChunkLen { .. } | SealError::TooLarge { .. } => {
            Diagnosis::new(Exit::Usage, None)
        }
        SealError::LengthMismatch { .. } => Diagnosis::new(
            Exit::Failure,
            Some("do not modify the input while it is being sealed, then try again"),
        ),
        SealError::InvalidKeyServerKey => Diagnosis::new(
            Exit::Failure,
            Some("the key server public key is unusable; fetch a fresh copy of the .pub file"),
        ),
        _ => Diagnosis::new(Exit::Failure, None),
    }
}

fn key_parse_error(err: &KeyParseError) -> Diagnosis {
    let hint = match err {
        KeyParseError::WrongPrefix { prefix, .. } if prefix.starts_with("IRM-KAS-SECRET") => {
            "give the secret key file written by `irm keygen` (not the .pub file)"
        }
        KeyParseError::WrongPrefix { .. } => {
            "give the .pub file written by `irm keygen` (never the secret key)"
        }
        _ => "the key file is damaged; use the file written by `irm keygen`",
    };
    Diagnosis::new(Exit::Failure, Some(hint))
}

fn io_error(err: &io::Error) -> Diagnosis {
    // The Opener and Sealer can only return io::Error; the typed error is inside.
    if let Some(open) = OpenError::from_io(err) {
        return open_error(open);
    }
    if let Some(seal) = err.get_ref().and_then(|e| e.downcast_ref::<SealError>()) {
        return seal_error(seal);
    }
    let hint = match err.kind() {
        io::ErrorKind::NotFound => Some("check the path"),
        io::ErrorKind::PermissionDenied => Some("check the file's and directory's permissions"),
        io::ErrorKind::AlreadyExists => {
            return Diagnosis::new(Exit::Usage, Some("use --force to overwrite it"));
        }
        io::ErrorKind::StorageFull => Some("free some disk space and try again"),
        _ => None,
    };
    Diagnosis::new(Exit::Io, hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_exit_code_is_distinct_and_listed_in_the_help() {
        let codes: Vec<u8> = Exit::ALL.iter().map(|e| e.code()).collect();
        assert_eq!(codes, [1, 2, 3, 4, 5, 6, 7, 8]);
        let help = exit_codes_help();
        for exit in Exit::ALL {
            let line = format!("\n  {}  {}\n", exit.code(), exit.meaning());
            assert!(help.contains(&line), "{exit:?} missing");
            assert!(help.contains(exit.kind()), "{exit:?} kind missing");
        }
    }

    /// The README's table is a copy of this one, row for row.
    #[test]
    fn the_readme_lists_the_same_exit_codes() {
        let readme = include_str!("../../README.md");
        for exit in Exit::ALL {
            let row = format!("| {} | {} |", exit.code(), exit.meaning());
            assert!(readme.contains(&row), "README.md lacks the row {row:?}");
        }
    }

    /// One rule: the server's `policy_binding_failed` is a denial (3), the
    /// same failure found locally an integrity failure (4).
    #[test]
    fn a_binding_refused_by_the_server_exits_3_and_one_found_here_exits_4() {
        let server = anyhow::Error::new(ClientError::Denied(
            DenyReason::PolicyBindingFailed,
            "altered".into(),
        ));
        assert_eq!(diagnose(&server).exit, Exit::Denied);
        let local = anyhow::Error::new(UnwrapError::BindingFailed);
        assert_eq!(diagnose(&local).exit, Exit::Integrity);
    }

    #[test]
    fn an_open_error_inside_an_io_error_is_an_integrity_failure() {
        let io: io::Error = OpenError::ChunkAuthenticationFailed { index: 2 }.into();
        let err = anyhow::Error::new(io).context("reading x.irm");
        assert_eq!(diagnose(&err).exit, Exit::Integrity);
    }

    #[test]
    fn a_denial_exits_3_with_its_reason_and_advice() {
        let err = anyhow::Error::new(ClientError::Denied(
            DenyReason::FileRevoked,
            "revoked".into(),
        ))
        .context("opening a.irm");
        let diagnosis = diagnose(&err);
        assert_eq!(diagnosis.exit, Exit::Denied);
        assert_eq!(diagnosis.reason, Some(DenyReason::FileRevoked));
        assert_eq!(
            diagnosis.hint.as_deref(),
            Some(DenyReason::FileRevoked.advice())
        );
    }

    #[test]
    fn a_later_versions_critical_metadata_field_says_upgrade_not_altered() {
        let err = anyhow::Error::new(OpenError::InvalidMetadata(
            FormatError::UnknownCriticalField {
                context: "metadata",
                tag: 7,
            },
        ))
        .context("verifying the header of x.irm");
        let diagnosis = diagnose(&err);
        assert_eq!(diagnosis.exit, Exit::Failure);
        assert_eq!(diagnosis.hint.as_deref(), Some(HINT_UPGRADE));
    }

    #[test]
    fn a_format_io_error_is_an_io_failure() {
        let err = anyhow::Error::new(FormatError::Io(io::Error::from(
            io::ErrorKind::PermissionDenied,
        )));
        assert_eq!(diagnose(&err).exit, Exit::Io);
    }
}
