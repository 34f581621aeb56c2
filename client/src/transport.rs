//! HTTPS to the one key server this device enrolled with: a blocking
//! reqwest client that trusts only that server's CA (no built-in or system
//! roots, no proxies, no redirects), request signing (docs/PROTOCOL.md §2)
//! over the exact bytes sent, and the mapping of every server answer
//! (§1's error table) onto [`ClientError`].
//!
//! What the requests mean is `session.rs`'s and `admin.rs`'s.

use std::io::Read;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use irm_core::protocol::{DenyBody, ErrorBody};
use irm_core::{RequestSignature, SigningSecretKey};
use reqwest::blocking::Client;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::normalize_server_url;
use crate::error::ClientError;

/// How long to wait for a TCP and TLS connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a whole request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer read (an audit tail of a few thousand records fits).
const MAX_RESPONSE_LEN: u64 = 32 * 1024 * 1024;

/// Who signs a request: the device id and its signing key.
pub(crate) struct Signer<'a> {
    pub(crate) device_id: &'a str,
    pub(crate) signing: &'a SigningSecretKey,
}

/// What every client of ours sets, blocking or async (their builders are
/// different types with the same methods): HTTPS only, no proxies, no
/// redirects (one would change the signed path or leave the server), the
/// connect timeout and our user agent.
macro_rules! restricted {
    ($builder:expr) => {
        $builder
            .https_only(true)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("irm-client/", env!("CARGO_PKG_VERSION")))
    };
}

/// A client that could not be built (a CA reqwest refused).
fn setup_failed(err: &reqwest::Error) -> ClientError {
    ClientError::InvalidArgument(format!(
        "cannot set up HTTPS with the key server's CA: {}",
        error_chain(err)
    ))
}

/// The HTTP client for one key server (cheap to clone: the connection
/// pool is shared).
#[derive(Clone)]
pub(crate) struct Transport {
    client: Client,
    base: Url,
    origin: String,
    /// The certificates trusted, kept for the push channel's own client.
    trust: Trust,
}

/// Which server certificates a transport accepts.
#[derive(Clone)]
enum Trust {
    /// Only those issued by these CA certificates (PROTOCOL.md §1).
    Pinned(Vec<reqwest::Certificate>),
    /// Any: only for fetching the CA before enrolling (§3.4).
    Unverified,
}

impl Trust {
    fn blocking(
        &self,
        builder: reqwest::blocking::ClientBuilder,
    ) -> reqwest::blocking::ClientBuilder {
        match self {
            Self::Pinned(certs) => builder.tls_certs_only(certs.clone()),
            Self::Unverified => builder.tls_danger_accept_invalid_certs(true),
        }
    }
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("server", &self.origin)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// A client for `server_url` that trusts only the CA certificates in `ca_pem`.
    pub(crate) fn new(server_url: &str, ca_pem: &str) -> Result<Self, ClientError> {
        let certs = reqwest::Certificate::from_pem_bundle(ca_pem.as_bytes())
            .ok()
            .filter(|certs| !certs.is_empty())
            .ok_or_else(|| {
                ClientError::InvalidArgument(
                    "the key server's CA is not a PEM certificate; give the ca.pem file the \
                     key server created (DATA_DIR/tls/ca.pem)"
                        .into(),
                )
            })?;
        // PROTOCOL.md §1: trust only this server's CA, never system roots.
        Self::build(server_url, Trust::Pinned(certs))
    }

    /// A client for fetching the CA certificate before enrolling, which
    /// cannot check the server's certificate yet: whatever it fetches must
    /// be checked against a fingerprint from elsewhere (an invitation)
    /// before anything is trusted or sent (PROTOCOL.md §3.4).
    pub(crate) fn unverified(server_url: &str) -> Result<Self, ClientError> {
        Self::build(server_url, Trust::Unverified)
    }

    /// The client both share: HTTPS only, no proxies, no redirects, the
    /// timeouts; `trust` says which certificates it accepts.
    fn build(server_url: &str, trust: Trust) -> Result<Self, ClientError> {
        let origin = normalize_server_url(server_url)?;
        let base = Url::parse(&origin).expect("a normalized server URL parses");
        // HTTP/1.1: a session's calls are one at a time, so HTTP/2's
        // multiplexing buys them nothing, and every grant figure
        // (PERFORMANCE.md §5) is HTTP/1.1's. Only the push channel's
        // streams share a connection (`stream_client`).
        let client = restricted!(trust.blocking(Client::builder()))
            .http1_only()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| setup_failed(&e))?;
        Ok(Self {
            client,
            base,
            origin,
            trust,
        })
    }

    /// An async client with this transport's trust, for the push channel
    /// (`watch.rs`), whose stream must end the moment its document closes.
    /// No request timeout: the stream's silence is timed by its reader.
    /// It offers HTTP/2 by ALPN, so that the streams sent through it share
    /// one connection (PROTOCOL.md §13); a server that picks HTTP/1.1 gets
    /// a connection per stream.
    pub(crate) fn stream_client(&self) -> Result<reqwest::Client, ClientError> {
        let Trust::Pinned(certs) = &self.trust else {
            return Err(ClientError::InvalidArgument(
                "the push channel needs the key server's CA".into(),
            ));
        };
        restricted!(reqwest::Client::builder().tls_certs_only(certs.clone()))
            .build()
            .map_err(|e| setup_failed(&e))
    }

    /// A signed `GET path` on `client` (from [`Transport::stream_client`])
    /// whose answer is read as it arrives: the response once its status is
    /// a success, within the request timeout.
    pub(crate) async fn open_stream(
        &self,
        client: &reqwest::Client,
        path: &str,
        signer: &Signer<'_>,
    ) -> Result<reqwest::Response, ClientError> {
        let (url, target) = self.url(path)?;
        let authorization = sign(signer, &Method::GET, &target, b"")?;
        let send = client.get(url).header(AUTHORIZATION, authorization).send();
        let response = match tokio::time::timeout(REQUEST_TIMEOUT, send).await {
            Ok(sent) => sent.map_err(|e| self.transport_error(e))?,
            Err(_) => {
                return Err(ClientError::Unreachable {
                    url: self.origin.clone(),
                    detail: format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()),
                });
            }
        };
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let context = context(&Method::GET, path);
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, response.bytes())
            .await
            .ok()
            .and_then(Result::ok)
            .filter(|bytes| bytes.len() as u64 <= MAX_RESPONSE_LEN)
            .ok_or_else(|| {
                ClientError::bad_response(&context, "the error answer did not arrive whole")
            })?;
        Err(error_answer(status, &answer, &context))
    }

    /// The URL of `path` and the target its signature covers (PROTOCOL.md
    /// §2.1: the path and query exactly as sent).
    fn url(&self, path: &str) -> Result<(Url, String), ClientError> {
        let url = self.base.join(path).map_err(|e| {
            ClientError::InvalidArgument(format!("cannot build a request URL for {path}: {e}"))
        })?;
        let target = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        Ok((url, target))
    }

    /// `GET path` answered as text of at most `max_len` bytes.
    pub(crate) fn get_text(&self, path: &str, max_len: u64) -> Result<String, ClientError> {
        let (status, bytes) = self.send(Method::GET, path, None::<&()>, None)?;
        check_status(status, &bytes, &context(&Method::GET, path))?;
        if bytes.len() as u64 > max_len {
            return Err(ClientError::bad_response(
                context(&Method::GET, path),
                format!("the answer is larger than {max_len} bytes"),
            ));
        }
        String::from_utf8(bytes).map_err(|_| {
            ClientError::bad_response(context(&Method::GET, path), "the answer is not UTF-8 text")
        })
    }

    /// The canonical server URL.
    pub(crate) fn origin(&self) -> &str {
        &self.origin
    }

    /// Sends one request and decodes a JSON answer. `path` is the path and
    /// query (`/v1/audit?after=10`); `signer` is `None` only for the
    /// unauthenticated endpoints.
    pub(crate) fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
        signer: Option<&Signer<'_>>,
    ) -> Result<T, ClientError> {
        let (status, bytes) = self.send(method.clone(), path, body, signer)?;
        decode_json(status, &bytes, &context(&method, path))
    }

    /// Like [`Transport::call`] for endpoints that answer `204 No Content`.
    pub(crate) fn call_no_content(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
        signer: Option<&Signer<'_>>,
    ) -> Result<(), ClientError> {
        let (status, bytes) = self.send(method.clone(), path, body, signer)?;
        check_status(status, &bytes, &context(&method, path))
    }

    fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
        signer: Option<&Signer<'_>>,
    ) -> Result<(StatusCode, Vec<u8>), ClientError> {
        let response = self.request(method.clone(), path, body, signer)?;
        let status = response.status();
        Ok((status, read_answer(response, &method, path)?))
    }

    /// Sends one request (signed if `signer`) and returns the answer's head.
    fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
        signer: Option<&Signer<'_>>,
    ) -> Result<reqwest::blocking::Response, ClientError> {
        let (url, target) = self.url(path)?;
        let bytes = body
            .map(|b| serde_json::to_vec(b).expect("protocol bodies always serialize"))
            .unwrap_or_default();
        let mut request = self.client.request(method.clone(), url);
        if body.is_some() {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(bytes.clone());
        }
        if let Some(signer) = signer {
            request = request.header(AUTHORIZATION, sign(signer, &method, &target, &bytes)?);
        }
        request.send().map_err(|e| self.transport_error(e))
    }

    /// Classifies a failure to get an answer at all.
    fn transport_error(&self, err: reqwest::Error) -> ClientError {
        let detail = error_chain(&err);
        if is_tls_failure(&err) {
            ClientError::Tls {
                url: self.origin.clone(),
                detail,
            }
        } else if err.is_connect() || err.is_timeout() || err.is_request() {
            ClientError::Unreachable {
                url: self.origin.clone(),
                detail,
            }
        } else {
            ClientError::BadResponse {
                context: self.origin.clone(),
                problem: detail,
            }
        }
    }
}

/// The `Authorization` value of a request signed now (PROTOCOL.md §2).
fn sign(
    signer: &Signer<'_>,
    method: &Method,
    target: &str,
    body: &[u8],
) -> Result<String, ClientError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    RequestSignature::sign(
        signer.signing,
        signer.device_id,
        method.as_str(),
        target,
        now,
        body,
    )
    .map(|signature| signature.to_header_value())
    .map_err(|e| ClientError::io("signing the request", std::io::Error::other(e)))
}

/// Reads a whole answer of at most [`MAX_RESPONSE_LEN`] bytes.
fn read_answer(
    response: reqwest::blocking::Response,
    method: &Method,
    path: &str,
) -> Result<Vec<u8>, ClientError> {
    let mut answer = Vec::new();
    response
        .take(MAX_RESPONSE_LEN + 1)
        .read_to_end(&mut answer)
        .map_err(|e| {
            ClientError::bad_response(
                context(method, path),
                format!("reading the answer failed ({})", error_chain(&e)),
            )
        })?;
    if answer.len() as u64 > MAX_RESPONSE_LEN {
        return Err(ClientError::bad_response(
            context(method, path),
            "the answer is larger than 32 MiB",
        ));
    }
    Ok(answer)
}

fn context(method: &Method, path: &str) -> String {
    // Query strings carry nothing secret, but keep the text short.
    let path = path.split('?').next().unwrap_or(path);
    format!("{method} {path}")
}

/// Every error in the chain, looking inside `io::Error`s (whose `source`
/// skips the error they wrap).
fn causes<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    let mut next = Some(err);
    std::iter::from_fn(move || {
        let current = next?;
        next = match current.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static))
                .or_else(|| current.source()),
            None => current.source(),
        };
        Some(current)
    })
}

fn is_tls_failure(err: &reqwest::Error) -> bool {
    causes(err).any(|cause| cause.is::<rustls::Error>())
}

/// `a: b: c` for an error and its causes, without repeats.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in causes(err) {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

/// PROTOCOL.md §1: a refusal (401/403 with a `DenyBody`), an `ErrorBody`,
/// or something that is neither.
fn error_answer(status: StatusCode, bytes: &[u8], context: &str) -> ClientError {
    // 503 carries `server_sealed` (PROTOCOL.md §11.2).
    if matches!(
        status,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::SERVICE_UNAVAILABLE
    ) {
        if let Ok(deny) = serde_json::from_slice::<DenyBody>(bytes) {
            return ClientError::Denied(deny.reason, deny.message);
        }
    }
    if let Ok(body) = serde_json::from_slice::<ErrorBody>(bytes) {
        return ClientError::Http {
            status: status.as_u16(),
            error: body.error,
            message: body.message,
        };
    }
    // A refusal whose reason this version does not know is still a refusal,
    // but without a reason we cannot name it; say what came back.
    let text = String::from_utf8_lossy(bytes);
    let excerpt: String = text.chars().take(200).collect();
    ClientError::bad_response(
        context,
        format!(
            "HTTP {status} with an unrecognised body: {}",
            if excerpt.is_empty() {
                "(empty)".into()
            } else {
                excerpt.escape_debug().to_string()
            }
        ),
    )
}

pub(crate) fn decode_json<T: DeserializeOwned>(
    status: StatusCode,
    bytes: &[u8],
    context: &str,
) -> Result<T, ClientError> {
    if !status.is_success() {
        return Err(error_answer(status, bytes, context));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        ClientError::bad_response(
            context,
            format!("HTTP {status} but the body does not parse: {e}"),
        )
    })
}

pub(crate) fn check_status(
    status: StatusCode,
    bytes: &[u8],
    context: &str,
) -> Result<(), ClientError> {
    if status.is_success() {
        Ok(())
    } else {
        Err(error_answer(status, bytes, context))
    }
}

/// Percent-encodes one path segment (RFC 3986 unreserved characters pass).
pub(crate) fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use irm_core::protocol::{DenyReason, ServerKeyInfo};

    use super::*;

    #[test]
    fn refusals_become_denials_with_their_reason() {
        for status in [StatusCode::FORBIDDEN, StatusCode::UNAUTHORIZED] {
            let body = br#"{"reason":"file_revoked","message":"revoked by admin"}"#;
            let err = check_status(status, body, "POST /v1/grant").unwrap_err();
            assert!(
                matches!(&err, ClientError::Denied(DenyReason::FileRevoked, m) if m == "revoked by admin"),
                "{err:?}"
            );
        }
    }

    #[test]
    fn error_bodies_keep_status_kind_and_message() {
        let body = br#"{"error":"not_found","message":"no such user"}"#;
        let err = check_status(StatusCode::NOT_FOUND, body, "GET /x").unwrap_err();
        assert!(matches!(
            err,
            ClientError::Http { status: 404, ref error, ref message } if error == "not_found" && message == "no such user"
        ));
        let body = br#"{"error":"conflict","message":"exists"}"#;
        let err = check_status(StatusCode::CONFLICT, body, "POST /x").unwrap_err();
        assert!(matches!(err, ClientError::Http { status: 409, .. }));
    }

    #[test]
    fn unknown_answers_are_bad_responses_not_panics() {
        for (status, body) in [
            (
                StatusCode::FORBIDDEN,
                &br#"{"reason":"a_new_reason","message":"x"}"#[..],
            ),
            (StatusCode::BAD_GATEWAY, b"<html>proxy error</html>"),
            (StatusCode::INTERNAL_SERVER_ERROR, b""),
        ] {
            let err = check_status(status, body, "POST /v1/grant").unwrap_err();
            assert!(matches!(err, ClientError::BadResponse { .. }), "{err:?}");
        }
        let err =
            decode_json::<ServerKeyInfo>(StatusCode::OK, b"{}", "GET /v1/server-key").unwrap_err();
        assert!(matches!(err, ClientError::BadResponse { .. }));
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(segment("alice.b_c-1"), "alice.b_c-1");
        assert_eq!(segment("a b/c?"), "a%20b%2Fc%3F");
        assert_eq!(segment("é"), "%C3%A9");
    }

    #[test]
    fn a_ca_that_is_not_pem_is_refused() {
        let err = Transport::new("https://kas.example", "not a certificate").unwrap_err();
        assert!(matches!(err, ClientError::InvalidArgument(_)));
        let err = Transport::new("http://kas.example", "x").unwrap_err();
        assert!(matches!(err, ClientError::InvalidArgument(_)));
    }
}
