//! TLS on the gRPC listener: service-to-service clients over `https://` with `[client.tls]`,
//! mutual TLS refusing a plaintext client, a client without a certificate and a certificate
//! from another CA, and a certificate rotation under load with no failed call. The test makes
//! its own CAs and certificates.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::Whoami;
use medbill_runtime::client;
use medbill_runtime::config::{ClientConfig, GrpcConfig};
use medbill_runtime::server::{Server, ServerHandle};
use medbill_runtime::tls::{ClientTlsFiles, ReloadingAcceptor, TlsConfig};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use tokio::net::TcpListener;
use tonic::Request;

/// A certificate authority of the test.
struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().expect("key");
    let pem = params.clone().self_signed(&key).expect("self-signed").pem();
    Ca { params, key, pem }
}

/// A leaf certificate for `name` (also its DNS name) issued by `ca`: (certificate, key) PEM.
fn leaf(ca: &Ca, name: &str) -> (String, String) {
    let issuer = ca.params.clone().self_signed(&ca.key).expect("issuer");
    let mut params = CertificateParams::new(vec![name.to_owned()]).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &issuer, &ca.key).expect("signed");
    (cert.pem(), key.serialize_pem())
}

fn write(dir: &Path, name: &str, pem: &str) -> PathBuf {
    let path = dir.join(name);
    // Written beside and renamed into place, as Kubernetes swaps mounted Secret files.
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, pem).expect("write");
    std::fs::rename(&tmp, &path).expect("rename");
    path
}

async fn serve_tls(config: &TlsConfig) -> ServerHandle {
    let acceptor = ReloadingAcceptor::load(config).expect("usable TLS files");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    Server::new(tonic::service::Routes::new(Whoami::default()))
        .grpc_config(&GrpcConfig::default())
        .tls(Arc::new(acceptor))
        .start(listener)
        .await
        .expect("server starts")
}

/// Calls Whoami over `https://localhost:<port>` as a service-to-service client would.
async fn call(handle: &ServerHandle, files: &ClientTlsFiles) -> Result<String, String> {
    let url = format!("https://localhost:{}", handle.local_addr().port());
    let config = ClientConfig {
        tls: files.clone(),
        ..ClientConfig::default()
    };
    let channel = client::connect(&url, &config).map_err(|e| e.to_string())?;
    common::whoami(channel, Request::new(String::new()))
        .await
        .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
}

struct Pki {
    dir: tempfile::TempDir,
    ca: Ca,
    server_config: TlsConfig,
}

/// A server certificate for `localhost` from one CA; with `mtls`, client certificates from the
/// same CA are required.
fn pki(mtls: bool) -> Pki {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = ca("medbill test CA");
    let (cert, key) = leaf(&ca, "localhost");
    let server_config = TlsConfig {
        cert: Some(write(dir.path(), "tls.crt", &cert)),
        key: Some(write(dir.path(), "tls.key", &key)),
        client_ca: mtls.then(|| write(dir.path(), "client-ca.crt", &ca.pem)),
        reload_interval_ms: 50,
        ..TlsConfig::default()
    };
    Pki {
        dir,
        ca,
        server_config,
    }
}

/// Client files trusting `ca_pem`, with a client certificate from `issuer` when given.
fn client_files(dir: &Path, tag: &str, ca_pem: &str, issuer: Option<&Ca>) -> ClientTlsFiles {
    let mut files = ClientTlsFiles {
        ca_file: Some(write(dir, &format!("{tag}-trust.crt"), ca_pem)),
        ..ClientTlsFiles::default()
    };
    if let Some(issuer) = issuer {
        let (cert, key) = leaf(issuer, "claims.medbill.svc");
        files.cert_file = Some(write(dir, &format!("{tag}-client.crt"), &cert));
        files.key_file = Some(write(dir, &format!("{tag}-client.key"), &key));
    }
    files
}

#[tokio::test]
async fn a_client_trusting_the_ca_calls_over_tls_and_one_that_does_not_is_refused() {
    let pki = pki(false);
    let handle = serve_tls(&pki.server_config).await;
    let trusting = client_files(pki.dir.path(), "good", &pki.ca.pem, None);
    assert_eq!(call(&handle, &trusting).await, Ok("default".to_owned()));

    let stranger = ca("another CA");
    let distrusting = client_files(pki.dir.path(), "bad", &stranger.pem, None);
    assert!(call(&handle, &distrusting).await.is_err());
    handle.shutdown().await.expect("stops");
}

#[tokio::test]
async fn mutual_tls_refuses_plaintext_no_certificate_and_another_cas_certificate() {
    let pki = pki(true);
    let handle = serve_tls(&pki.server_config).await;
    let dir = pki.dir.path();

    let with_cert = client_files(dir, "ok", &pki.ca.pem, Some(&pki.ca));
    assert_eq!(call(&handle, &with_cert).await, Ok("default".to_owned()));

    let without_cert = client_files(dir, "nocert", &pki.ca.pem, None);
    assert!(call(&handle, &without_cert).await.is_err());

    let other = ca("another CA");
    let foreign_cert = client_files(dir, "foreign", &pki.ca.pem, Some(&other));
    assert!(call(&handle, &foreign_cert).await.is_err());

    // Plaintext HTTP/2 against the TLS listener: no gRPC answer at all.
    let plain = client::connect(
        &format!("http://127.0.0.1:{}", handle.local_addr().port()),
        &ClientConfig::default(),
    )
    .expect("channel");
    let refused = common::whoami(plain, Request::new(String::new())).await;
    assert!(refused.is_err(), "{refused:?}");
    handle.shutdown().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_is_served_to_new_connections_without_failing_a_call() {
    let pki = pki(true);
    let handle = Arc::new(serve_tls(&pki.server_config).await);
    let dir = pki.dir.path();
    let next_ca = ca("next CA");
    // Clients trust both CAs and hold certificates the server accepts throughout.
    let both = format!("{}{}", pki.ca.pem, next_ca.pem);
    let files = client_files(dir, "load", &both, Some(&pki.ca));

    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for worker in 0..4 {
        let (handle, files, stop, calls) =
            (handle.clone(), files.clone(), stop.clone(), calls.clone());
        load.push(tokio::spawn(async move {
            // Half the workers keep one connection, half connect anew for every call.
            let url = format!("https://localhost:{}", handle.local_addr().port());
            let config = ClientConfig {
                tls: files.clone(),
                ..ClientConfig::default()
            };
            let kept = client::connect(&url, &config).expect("channel");
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let channel = if worker % 2 == 0 {
                    kept.clone()
                } else {
                    client::connect(&url, &config).expect("channel")
                };
                match common::whoami(channel, Request::new(String::new())).await {
                    Ok(_) => {
                        calls.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(status) => failures.push(status.to_string()),
                }
            }
            failures
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Rotate: a new certificate from the next CA (key first, then certificate, as a
    // non-atomic rotation would leave them for a moment).
    let (cert, key) = leaf(&next_ca, "localhost");
    write(dir, "tls.key", &key);
    tokio::time::sleep(Duration::from_millis(120)).await;
    write(dir, "tls.crt", &cert);

    // New connections trusting only the next CA get through once the reload has happened.
    let only_next = client_files(dir, "next", &next_ca.pem, Some(&pki.ca));
    let mut served = Err(String::new());
    for _ in 0..100 {
        served = call(&handle, &only_next).await;
        if served.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        served,
        Ok("default".to_owned()),
        "the rotated certificate is served"
    );
    let only_old = client_files(dir, "old", &pki.ca.pem, Some(&pki.ca));
    assert!(
        call(&handle, &only_old).await.is_err(),
        "the old certificate is gone"
    );

    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for worker in load {
        failures.extend(worker.await.expect("worker"));
    }
    assert!(calls.load(Ordering::Relaxed) > 20, "calls ran throughout");
    assert!(
        failures.is_empty(),
        "failed calls during rotation: {failures:?}"
    );
}
