//! TLS for the gRPC listener (`[tls]`) and for service-to-service clients (`[client.tls]`).
//!
//! Listener: `tls.cert` and `tls.key` turn TLS on; `tls.client_ca` also requires every client
//! to present a certificate issued by that CA (mutual TLS): a client without one is refused in
//! the handshake, before any gRPC is spoken. The files are read again every
//! `tls.reload_interval_ms`; when they changed (cert-manager and service meshes rotate them), new
//! connections get the new certificate while connections already open, and the calls on them,
//! go on untouched. A half-written rotation (a certificate without its new key) is refused and
//! the previous certificate kept until the files agree.
//!
//! Handshakes run one task per connection with a deadline, so a slow or silent client never
//! holds up the next one. Only HTTP/2 is offered (ALPN `h2`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::Stream;
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

/// The `[tls]` section: TLS (and mutual TLS) on the gRPC listener.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain of this server (leaf first).
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    pub key: Option<PathBuf>,
    /// PEM CA certificates whose client certificates are accepted; set: mutual TLS.
    pub client_ca: Option<PathBuf>,
    /// How often the three files are checked for a rotation.
    pub reload_interval_ms: u64,
    /// Longest a client may take to finish its handshake.
    pub handshake_timeout_ms: u64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert: None,
            key: None,
            client_ca: None,
            reload_interval_ms: 10_000,
            handshake_timeout_ms: 10_000,
        }
    }
}

impl TlsConfig {
    /// Whether the listener speaks TLS.
    pub fn enabled(&self) -> bool {
        self.cert.is_some()
    }

    /// The key problem when the section is inconsistent (both halves of the pair, a CA only
    /// with a certificate, non-zero intervals).
    pub fn problem(&self) -> Option<(&'static str, &'static str)> {
        match (&self.cert, &self.key, &self.client_ca) {
            (Some(_), None, _) => Some(("tls.key", "is required with tls.cert")),
            (None, Some(_), _) => Some(("tls.cert", "is required with tls.key")),
            (None, None, Some(_)) => Some(("tls.client_ca", "needs tls.cert and tls.key")),
            _ if self.reload_interval_ms == 0 => {
                Some(("tls.reload_interval_ms", "must be at least 1"))
            }
            _ if self.handshake_timeout_ms == 0 => {
                Some(("tls.handshake_timeout_ms", "must be at least 1"))
            }
            _ => None,
        }
    }
}

/// The `[client.tls]` section: what service-to-service clients trust and present on `https://`
/// endpoints.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ClientTlsFiles {
    /// PEM CA certificates to trust instead of the public web roots.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate, for listeners that require mutual TLS.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
}

/// A TLS file that cannot be used; names the file, never its contents.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct TlsError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

fn certificates(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |reason: String| TlsError {
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("holds no PEM certificate".into()));
    }
    Ok(certs)
}

/// The contents of the listener's files, as last read.
#[derive(PartialEq, Eq)]
struct FileSet {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

/// The listener's TLS: the acceptor for new connections, rebuilt when the files change.
pub struct ReloadingAcceptor {
    config: TlsConfig,
    current: RwLock<(Arc<FileSet>, TlsAcceptor)>,
}

impl std::fmt::Debug for ReloadingAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingAcceptor")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ReloadingAcceptor {
    /// Reads the files of an enabled `[tls]` section; an error names the file at fault.
    pub fn load(config: &TlsConfig) -> Result<Self, TlsError> {
        let files = Self::read_files(config)?;
        let acceptor = Self::build(config, &files)?;
        Ok(Self {
            config: config.clone(),
            current: RwLock::new((Arc::new(files), acceptor)),
        })
    }

    fn read_files(config: &TlsConfig) -> Result<FileSet, TlsError> {
        let missing = |what: &str| TlsError {
            path: PathBuf::from(what),
            reason: "not configured".into(),
        };
        Ok(FileSet {
            cert: read(config.cert.as_deref().ok_or_else(|| missing("tls.cert"))?)?,
            key: read(config.key.as_deref().ok_or_else(|| missing("tls.key"))?)?,
            client_ca: config.client_ca.as_deref().map(read).transpose()?,
        })
    }

    fn build(config: &TlsConfig, files: &FileSet) -> Result<TlsAcceptor, TlsError> {
        let cert_path = config.cert.clone().unwrap_or_default();
        let key_path = config.key.clone().unwrap_or_default();
        let certs = certificates(&cert_path, &files.cert)?;
        let key = PrivateKeyDer::from_pem_slice(&files.key).map_err(|e| TlsError {
            path: key_path.clone(),
            reason: e.to_string(),
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError {
                path: cert_path.clone(),
                reason: e.to_string(),
            })?;
        let builder = match (&config.client_ca, &files.client_ca) {
            (Some(ca_path), Some(ca)) => {
                let mut roots = RootCertStore::empty();
                for cert in certificates(ca_path, ca)? {
                    roots.add(cert).map_err(|e| TlsError {
                        path: ca_path.clone(),
                        reason: e.to_string(),
                    })?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|e| TlsError {
                            path: ca_path.clone(),
                            reason: e.to_string(),
                        })?;
                builder.with_client_cert_verifier(verifier)
            }
            _ => builder.with_no_client_auth(),
        };
        let mut server = builder.with_single_cert(certs, key).map_err(|e| TlsError {
            path: key_path,
            reason: format!("does not go with the certificate: {e}"),
        })?;
        server.alpn_protocols = vec![b"h2".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(server)))
    }

    /// The acceptor for a new connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        match self.current.read() {
            Ok(current) => current.1.clone(),
            Err(poisoned) => poisoned.into_inner().1.clone(),
        }
    }

    /// Reads the files again; when they changed and make a usable configuration, new
    /// connections use it. Returns whether the certificate changed.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let files = Self::read_files(&self.config)?;
        let unchanged = match self.current.read() {
            Ok(current) => *current.0 == files,
            Err(poisoned) => *poisoned.into_inner().0 == files,
        };
        if unchanged {
            return Ok(false);
        }
        let acceptor = Self::build(&self.config, &files)?;
        let mut current = match self.current.write() {
            Ok(current) => current,
            Err(poisoned) => poisoned.into_inner(),
        };
        *current = (Arc::new(files), acceptor);
        Ok(true)
    }

    /// Checks the files every `reload_interval_ms` until the returned task is aborted.
    pub fn spawn_reloader(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        let every = Duration::from_millis(self.config.reload_interval_ms.max(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                match this.reload_if_changed() {
                    Ok(true) => {
                        tracing::info!("tls: certificate files changed; new connections use them")
                    }
                    Ok(false) => {}
                    Err(error) => {
                        tracing::warn!(%error, "tls: rotated files not usable yet; keeping the previous certificate")
                    }
                }
            }
        })
    }

    /// Accepts TCP connections on `listener` and hands over each one whose handshake
    /// succeeds. Ends when the consumer drops the stream.
    pub fn incoming(
        self: &Arc<Self>,
        listener: TcpListener,
    ) -> impl Stream<Item = Result<TlsStream<TcpStream>, std::io::Error>> + Send + 'static {
        let (tx, rx) = mpsc::channel(64);
        let this = Arc::clone(self);
        let timeout = Duration::from_millis(self.config.handshake_timeout_ms.max(1));
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = tx.closed() => return,
                    accepted = listener.accept() => accepted,
                };
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        // Out of file descriptors is transient: pause rather than spin.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Small unary replies must not wait for Nagle's algorithm.
                let _ = stream.set_nodelay(true);
                let acceptor = this.acceptor();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send(Ok(tls)).await;
                        }
                        Ok(Err(error)) => tracing::debug!(%peer, %error, "tls handshake refused"),
                        Err(_) => tracing::debug!(%peer, "tls handshake timed out"),
                    }
                });
            }
        });
        tokio_stream::wrappers::ReceiverStream::new(rx)
    }
}

/// The client TLS for an `https://` endpoint: the configured CA (else the public web roots)
/// and, when configured, this service's client certificate.
pub fn client_tls(files: &ClientTlsFiles, domain: &str) -> Result<ClientTlsConfig, TlsError> {
    let mut tls = ClientTlsConfig::new().domain_name(domain);
    tls = match &files.ca_file {
        Some(ca) => tls.ca_certificate(Certificate::from_pem(read(ca)?)),
        None => tls.with_webpki_roots(),
    };
    match (&files.cert_file, &files.key_file) {
        (Some(cert), Some(key)) => Ok(tls.identity(Identity::from_pem(read(cert)?, read(key)?))),
        (None, None) => Ok(tls),
        (Some(_), None) | (None, Some(_)) => Err(TlsError {
            path: files
                .cert_file
                .clone()
                .or_else(|| files.key_file.clone())
                .unwrap_or_default(),
            reason: "client.tls.cert_file and client.tls.key_file go together".into(),
        }),
    }
}
