//! HTTPS for the key server (PROTOCOL.md §1): the private CA and server
//! certificate created at initialisation, the rustls configuration (aws-lc-rs
//! provider) and a listener that completes TLS handshakes off the accept
//! loop, so that a slow handshake never holds up the next client
//! (`connections` serves what it yields).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::secret_file::write_secret_file;

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at most; beyond it, accepting waits (back-pressure).
const MAX_PENDING_HANDSHAKES: usize = 1024;

/// TLS set-up failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// Generating a key or certificate failed.
    #[error("generating the TLS certificates failed")]
    Generate(#[from] rcgen::Error),
    /// Reading or writing a PEM file failed.
    #[error("TLS file {path}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// A PEM file does not hold what it should.
    #[error("TLS file {path} does not hold a valid {what}")]
    Pem {
        /// The file.
        path: String,
        /// What was expected.
        what: &'static str,
    },
    /// rustls refused the configuration.
    #[error("the TLS configuration is invalid")]
    Config(#[from] rustls::Error),
}

/// The year of a Unix time, near enough for certificate validity.
fn year_of(unix_secs: u64) -> i32 {
    let years = unix_secs / 31_556_952; // mean Gregorian year
    1970 + i32::try_from(years).unwrap_or(0)
}

/// Creates `tls/ca.pem`, `tls/server.pem` and `tls/server.key` (0600 from
/// the start) under `data_dir`, and returns the CA's private key (PEM) for
/// the keystore: it only issues certificates, so it is never written in
/// the clear. The server certificate names localhost, 127.0.0.1, ::1 and
/// `hostnames`.
pub fn generate(
    data_dir: &Path,
    hostnames: &[String],
    now_unix: u64,
) -> Result<zeroize::Zeroizing<String>, TlsError> {
    let dir = data_dir.join("tls");
    std::fs::create_dir_all(&dir).map_err(|source| TlsError::File {
        path: dir.display().to_string(),
        source,
    })?;
    let year = year_of(now_unix);

    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    let mut ca_name = DistinguishedName::new();
    ca_name.push(DnType::CommonName, "IRM key server private CA");
    ca_params.distinguished_name = ca_name;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    ca_params.not_after = rcgen::date_time_ymd(year + 20, 1, 1);
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, &ca_key);

    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    for name in hostnames {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    let server_key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names)?;
    let mut server_name = DistinguishedName::new();
    server_name.push(DnType::CommonName, "IRM key server");
    params.distinguished_name = server_name;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + 10, 1, 1);
    let server_cert = params.signed_by(&server_key, &issuer)?;

    let write = |name: &str, text: &str, secret: bool| -> Result<(), TlsError> {
        let path = dir.join(name);
        let result = if secret {
            write_secret_file(&path, text.as_bytes())
        } else {
            std::fs::write(&path, text)
        };
        result.map_err(|source| TlsError::File {
            path: path.display().to_string(),
            source,
        })
    };
    write("server.key", &server_key.serialize_pem(), true)?;
    write("ca.pem", &ca_cert.pem(), false)?;
    write(
        "server.pem",
        &format!("{}{}", server_cert.pem(), ca_cert.pem()),
        false,
    )?;
    Ok(zeroize::Zeroizing::new(ca_key.serialize_pem()))
}

/// The rustls server configuration from `tls/server.pem` and `tls/server.key`,
/// with the aws-lc-rs provider and HTTP/2 and HTTP/1.1 offered by ALPN.
pub fn server_config(data_dir: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let cert_path = data_dir.join("tls").join("server.pem");
    let key_path = data_dir.join("tls").join("server.key");
    let pem_err = |path: &Path, what| TlsError::Pem {
        path: path.display().to_string(),
        what,
    };
    let chain = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|_| pem_err(&cert_path, "certificate chain"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| pem_err(&cert_path, "certificate chain"))?;
    if chain.is_empty() {
        return Err(pem_err(&cert_path, "certificate chain"));
    }
    let key =
        PrivateKeyDer::from_pem_file(&key_path).map_err(|_| pem_err(&key_path, "private key"))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The client's address, as handlers see it through `ConnectInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// A listener yielding TLS streams whose handshake has completed. Handshakes
/// run in their own tasks with a deadline, so a slow client cannot stall
/// the accept loop.
pub struct TlsListener {
    local_addr: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    acceptor_task: JoinHandle<()>,
}

impl TlsListener {
    /// Starts accepting TLS on `listener`.
    pub fn new(listener: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let (tx, ready) = mpsc::channel(256);
        let pending = Arc::new(tokio::sync::Semaphore::new(MAX_PENDING_HANDSHAKES));
        let acceptor_task = tokio::spawn(async move {
            loop {
                let Ok(permit) = Arc::clone(&pending).acquire_owned().await else {
                    return;
                };
                let (tcp, peer) = match listener.accept().await {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and the like: back off briefly.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let handshake =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
                    drop(permit);
                    match handshake {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self {
            local_addr,
            ready,
            acceptor_task,
        })
    }
}

impl TlsListener {
    /// The next stream whose handshake completed, with its peer; `None`
    /// once the acceptor has stopped.
    pub async fn accept(&mut self) -> Option<(TlsStream<TcpStream>, SocketAddr)> {
        self.ready.recv().await
    }

    /// The address listened on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor_task.abort();
    }
}
