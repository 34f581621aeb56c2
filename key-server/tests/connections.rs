//! How the key server holds connections (`key-server/src/connections.rs`),
//! against the real server over TLS: a client that sends its headers too
//! slowly, or leaves a keep-alive connection idle, is cut off once the
//! header-read timeout passes, while one that sends a whole request is
//! answered on the same kind of connection.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::TestServer;
use irm_key_server::connections::HEADER_READ_TIMEOUT;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A TLS connection to the server, trusting its CA, without ALPN (HTTP/1.1).
async fn connect(server: &TestServer) -> TlsStream<tokio::net::TcpStream> {
    let ca = CertificateDer::pem_file_iter(server.dir.path().join("tls/ca.pem"))
        .expect("ca.pem")
        .collect::<Result<Vec<_>, _>>()
        .expect("a certificate");
    let mut roots = rustls::RootCertStore::empty();
    for cert in ca {
        roots.add(cert).expect("the CA");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let addr = server.base.strip_prefix("https://").expect("https");
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").expect("a name"), tcp)
        .await
        .expect("TLS")
}

/// Reads until the server closes the connection (or `limit` passes);
/// what it sent, and how long that took.
async fn read_to_close(
    stream: &mut TlsStream<tokio::net::TcpStream>,
    limit: Duration,
) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(
            limit.saturating_sub(started.elapsed()),
            stream.read(&mut buf),
        )
        .await
        {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the server kept the connection open for {limit:?}"),
        }
    }
    (got, started.elapsed())
}

/// Connections are the same on either database: SQLite only.
#[tokio::test]
async fn slow_headers_and_idle_connections_are_cut_off() {
    let server = TestServer::start().await;
    let limit = HEADER_READ_TIMEOUT * 3;

    // Half a request, then nothing: closed unanswered after the timeout.
    let mut slow = connect(&server).await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .expect("write");
    let (got, after) = read_to_close(&mut slow, limit).await;
    assert!(
        got.is_empty() || got.starts_with(b"HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    assert!(
        after >= HEADER_READ_TIMEOUT - Duration::from_millis(500),
        "closed after {after:?}"
    );

    // A whole request on a keep-alive connection is answered; left idle
    // after it, the connection is closed too.
    let mut idle = connect(&server).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    let (got, after) = read_to_close(&mut idle, limit).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        after >= HEADER_READ_TIMEOUT - Duration::from_millis(500),
        "closed after {after:?}"
    );
}
