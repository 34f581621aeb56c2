//! Getting a digest to its data owner (PROTOCOL.md §7.7): a mail through
//! an SMTP server (`lettre`, rustls on the workspace's aws-lc-rs provider)
//! or a signed POST to an `https://` webhook, each tried a few times with a
//! doubling wait. What a digest says is `audit_report::digest`'s; which
//! groups get one and what is recorded afterwards is `commands/digest.rs`'s.
//!
//! Headers carry only what this module checks: the sender as the operator
//! gave it (parsed by lettre, so a line break there is refused), the owner's
//! address (checked by `OwnerContact::parse` on the server at start and
//! again here) and a subject made by [`header_text`], which drops control
//! and bidirectional characters. People's strings (names, reasons, file
//! names) are only ever in the body, which lettre encodes whole, so none
//! can start a header of its own.

use std::fs::File;
use std::io::Read as _;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{SmtpTransport, Transport as _};
use zeroize::Zeroizing;

use crate::exit::Refusal;

/// How long one SMTP conversation or one POST may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The first retry waits this long, each next one twice as long.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// A password file larger than this is not one.
const MAX_SECRET_FILE_LEN: u64 = 4096;
/// The header naming the group of a webhook digest.
pub(crate) const GROUP_HEADER: &str = "X-IRM-Digest-Group";

/// The SMTP password: zeroized on drop, never printed.
pub(crate) struct SmtpPassword(Zeroizing<String>);

impl std::fmt::Debug for SmtpPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SmtpPassword(..)")
    }
}

impl SmtpPassword {
    /// From `$IRM_SMTP_PASSWORD`, or the first line of `file` when given.
    pub(crate) fn load(file: Option<&Path>) -> Result<Option<Self>> {
        if let Some(path) = file {
            let bytes = read_secret_file(path, "the SMTP password file")?;
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| Refusal::usage(format!("{} is not UTF-8 text", path.display())))?;
            let line = text.lines().next().unwrap_or("");
            return Ok(Some(Self(Zeroizing::new(line.to_owned()))));
        }
        Ok(std::env::var("IRM_SMTP_PASSWORD")
            .ok()
            .map(|p| Self(Zeroizing::new(p))))
    }
}

/// A small secret file: private to its owner (no group or other bits), at
/// most a few KiB, read into zeroizing memory.
pub(crate) fn read_secret_file(path: &Path, what: &str) -> Result<Zeroizing<Vec<u8>>> {
    let file = File::open(path).with_context(|| format!("opening {what} {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = file
            .metadata()
            .with_context(|| format!("reading {what} {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(Refusal::usage(format!(
                "{what} {} can be read by others (mode {:o})",
                path.display(),
                mode & 0o777
            ))
            .hint(format!("chmod 600 {}", path.display()))
            .into());
        }
    }
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_SECRET_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {what} {}", path.display()))?;
    if bytes.len() as u64 > MAX_SECRET_FILE_LEN {
        bail!("{what} {} is too large", path.display());
    }
    Ok(bytes)
}

/// `s` fit for a header: control characters (CR and LF above all) and
/// bidirectional controls dropped, white space runs made one space, at
/// most `max` characters.
pub(crate) fn header_text(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_control() || irm_core::protocol::is_bidi_control(c) || c.is_whitespace() {
            if !out.ends_with(' ') && !out.is_empty() {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
    out.trim_end().chars().take(max).collect()
}

/// Sends mail through one SMTP server.
pub(crate) struct Mailer {
    transport: SmtpTransport,
    from: Mailbox,
}

impl Mailer {
    /// The transport for `url` (see `irm admin audit digest --help`): TLS
    /// from the start, STARTTLS required, or plain SMTP to this host only,
    /// where nothing crosses a network.
    pub(crate) fn new(
        url: &str,
        user: Option<&str>,
        password: Option<SmtpPassword>,
        from: &str,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self> {
        // Not echoed: a mistyped URL may still hold a password.
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| Refusal::usage(format!("--smtp is not a URL: {e}")))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(Refusal::usage(
                "--smtp must not carry credentials: the command line is visible to other users",
            )
            .hint(
                "--smtp-user NAME, and the password in $IRM_SMTP_PASSWORD or --smtp-password-file",
            )
            .into());
        }
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| Refusal::usage("--smtp needs a host: smtps://mail.example.com"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let mut tls_required = false;
        for (key, value) in parsed.query_pairs() {
            match (key.as_ref(), value.as_ref()) {
                ("tls", "required") => tls_required = true,
                _ => {
                    return Err(Refusal::usage(format!(
                        "--smtp: unknown parameter {key:?} (only ?tls=required)"
                    ))
                    .into());
                }
            }
        }
        let tls = || -> Result<TlsParameters> {
            let mut builder = TlsParameters::builder(host.clone());
            if let Some(pem) = ca_pem {
                builder = builder.add_root_certificate(
                    Certificate::from_pem(pem).context("reading --ca as PEM")?,
                );
            }
            builder.build_rustls().context("setting up TLS for SMTP")
        };
        let (mode, default_port) = match parsed.scheme() {
            "smtps" => (Tls::Wrapper(tls()?), 465),
            "smtp" if tls_required => (Tls::Required(tls()?), 587),
            "smtp" if is_loopback(&host) => (Tls::None, 25),
            "smtp" => {
                return Err(Refusal::usage(format!(
                    "--smtp {url}: plain SMTP is only for a relay on this host; a digest names \
                     people and files"
                ))
                .hint("smtps://HOST or smtp://HOST?tls=required")
                .into());
            }
            other => {
                return Err(Refusal::usage(format!(
                    "--smtp: {other}:// is not SMTP (smtps:// or smtp://)"
                ))
                .into());
            }
        };
        if matches!(mode, Tls::None) && password.is_some() && user.is_some() {
            // Harmless on loopback, but say so: credentials are not needed there.
            eprintln!("note: sending SMTP credentials without TLS to {host} (this host)");
        }
        let mut builder = SmtpTransport::builder_dangerous(host.as_str())
            .port(parsed.port().unwrap_or(default_port))
            .tls(mode)
            .timeout(Some(TIMEOUT));
        match (user, password) {
            (Some(user), Some(password)) => {
                // lettre keeps its own copy in a plain String for the
                // transport's life (one run); ours is wiped on drop.
                builder = builder.credentials(Credentials::new(
                    user.to_owned(),
                    password.0.as_str().to_owned(),
                ));
            }
            (Some(_), None) => {
                return Err(Refusal::usage(
                    "--smtp-user needs a password: $IRM_SMTP_PASSWORD or --smtp-password-file",
                )
                .into());
            }
            _ => {}
        }
        let from: Mailbox = from.parse().map_err(|e| {
            Refusal::usage(format!(
                "--from is not a mail address (an address, or 'Name <address>'): {e}"
            ))
        })?;
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }

    /// One mail of plain text to `address`; `Err` holds the kind of failure
    /// in a few words (never the server's whole answer).
    pub(crate) fn send(
        &self,
        address: &str,
        subject: &str,
        body: &str,
    ) -> std::result::Result<(), String> {
        let to: Mailbox = address
            .parse()
            .map_err(|_| "the address does not parse".to_owned())?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(header_text(subject, 200))
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_owned())
            .map_err(|e| format!("the message cannot be built: {e}"))?;
        self.transport.send(&message).map(|_| ()).map_err(|e| {
            if e.is_permanent() {
                "the mail server refused it".to_owned()
            } else if e.is_transient() {
                "the mail server deferred it".to_owned()
            } else {
                "no conversation with the mail server".to_owned()
            }
        })
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// POSTs digests to `https://` receivers.
pub(crate) struct Webhooks {
    client: reqwest::blocking::Client,
    secret: Option<Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Webhooks(..)")
    }
}

impl Webhooks {
    /// A client that speaks only https, follows no redirect and trusts
    /// `ca_pem` besides the system's roots.
    pub(crate) fn new(secret: Option<Zeroizing<Vec<u8>>>, ca_pem: Option<&[u8]>) -> Result<Self> {
        let mut builder = reqwest::blocking::Client::builder()
            .https_only(true)
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = ca_pem {
            builder = builder.tls_certs_merge(
                reqwest::Certificate::from_pem_bundle(pem).context("reading --ca as PEM")?,
            );
        }
        Ok(Self {
            client: builder.build().context("setting up HTTPS for webhooks")?,
            secret,
        })
    }

    /// One POST of `body`; any 2xx takes it.
    pub(crate) fn post(
        &self,
        url: &str,
        group: &str,
        body: &[u8],
    ) -> std::result::Result<(), String> {
        let mut request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(GROUP_HEADER, group)
            .body(body.to_vec());
        if let Some(secret) = &self.secret {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            request = request.header(
                irm_core::webhook::SIGNATURE_HEADER,
                irm_core::webhook::sign(secret, now, body),
            );
        }
        match request.send() {
            Ok(response) if response.status().is_success() => Ok(()),
            // The receiver's answer is not repeated: it is not ours to print.
            Ok(response) => Err(format!("status {}", response.status().as_u16())),
            Err(e) if e.is_timeout() => Err("timeout".to_owned()),
            Err(e) if e.is_connect() => Err("no connection".to_owned()),
            Err(e) if e.is_redirect() => Err("redirect (not followed)".to_owned()),
            Err(_) => Err("the request failed".to_owned()),
        }
    }
}

/// What trying one delivery came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attempts {
    /// Tries made.
    pub(crate) made: u32,
    /// The last failure's kind; `None` when delivered.
    pub(crate) error: Option<String>,
}

/// Runs `send` up to `attempts` times, waiting [`FIRST_RETRY`] and then
/// twice as long before each next try; `wait` is `std::thread::sleep` but
/// for tests.
pub(crate) fn with_retries(
    attempts: u32,
    mut wait: impl FnMut(Duration),
    mut send: impl FnMut() -> std::result::Result<(), String>,
) -> Attempts {
    let mut delay = FIRST_RETRY;
    let mut made = 0;
    loop {
        made += 1;
        match send() {
            Ok(()) => return Attempts { made, error: None },
            Err(e) if made >= attempts.max(1) => {
                return Attempts {
                    made,
                    error: Some(e),
                };
            }
            Err(_) => {
                wait(delay);
                delay = delay.saturating_mul(2);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_text_has_no_line_break_and_no_bidi_control() {
        let subject = header_text("IRM digest\r\nBcc: spy@evil.example\u{202E}gpj.exe", 200);
        assert!(!subject.contains(['\r', '\n', '\u{202E}']), "{subject:?}");
        assert_eq!(subject, "IRM digest Bcc: spy@evil.example gpj.exe");
        assert_eq!(header_text("a\u{1b}[31mb", 200), "a [31mb");
        assert_eq!(header_text(&"x".repeat(500), 10).len(), 10);
    }

    #[test]
    fn retries_wait_longer_each_time_and_stop_at_the_limit() {
        let mut waits = Vec::new();
        let mut tries = 0;
        let got = with_retries(
            3,
            |d| waits.push(d),
            || {
                tries += 1;
                Err("down".into())
            },
        );
        assert_eq!(
            got,
            Attempts {
                made: 3,
                error: Some("down".into())
            }
        );
        assert_eq!(waits, [Duration::from_secs(1), Duration::from_secs(2)]);
        let mut tries = 0;
        let got = with_retries(
            3,
            |_| {},
            || {
                tries += 1;
                if tries < 2 {
                    Err("once".into())
                } else {
                    Ok(())
                }
            },
        );
        assert_eq!(
            got,
            Attempts {
                made: 2,
                error: None
            }
        );
    }

    #[test]
    fn smtp_urls_keep_credentials_off_the_command_line_and_tls_off_the_network_only_locally() {
        let mailer = |url: &str| Mailer::new(url, None, None, "IRM <irm@example.com>", None);
        assert!(mailer("smtp://127.0.0.1:2525").is_ok());
        assert!(mailer("smtp://localhost").is_ok());
        assert!(mailer("smtps://mail.example.com").is_ok());
        assert!(mailer("smtp://mail.example.com?tls=required").is_ok());
        for bad in [
            "smtp://mail.example.com",
            "smtp://user:secret@127.0.0.1",
            "http://127.0.0.1",
            "smtp://127.0.0.1?tls=none",
            "not a url",
        ] {
            let err = mailer(bad)
                .err()
                .unwrap_or_else(|| panic!("{bad} was accepted"));
            assert!(!format!("{err:#}").contains("secret"), "{err:#}");
        }
        for from in ["irm@example.com\r\nBcc: spy@evil.example", "not an address"] {
            assert!(
                Mailer::new("smtp://127.0.0.1", None, None, from, None).is_err(),
                "{from:?}"
            );
        }
    }

    #[test]
    fn the_password_never_prints() {
        let p = SmtpPassword(Zeroizing::new("hunter2-smtp".into()));
        assert_eq!(format!("{p:?}"), "SmtpPassword(..)");
    }
}
