//! A small HTTP(S) client for talking to the identity provider: fetching its JWKS and asking
//! its token endpoint for client-credentials tokens. rustls with the ring provider (the one the
//! gRPC listener uses), the public web roots or a configured CA file, bounded bodies.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Largest response body read from the identity provider.
const MAX_BODY: usize = 1024 * 1024;

/// A pooled HTTP/1.1 client for `http://` and `https://` URLs.
#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl HttpClient {
    /// Builds a client trusting the public web roots, or only the CAs in `ca_file` (PEM).
    pub fn new(ca_file: Option<&Path>) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let mut roots = rustls::RootCertStore::empty();
        match ca_file {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                if certs.is_empty() {
                    return Err(format!("{}: no PEM certificate in it", path.display()));
                }
                for cert in certs {
                    roots
                        .add(cert)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let tls = builder.with_root_certificates(roots).with_no_client_auth();
        let mut connector = HttpConnector::new();
        connector.enforce_http(false);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(https),
        })
    }

    /// GETs `url` and returns the body of a 2xx answer.
    pub async fn get(&self, url: &str, timeout: Duration) -> Result<Vec<u8>, String> {
        let request = http::Request::get(url)
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|e| format!("{url}: {e}"))?;
        let (status, body) = self.send(url, request, timeout).await?;
        if !status.is_success() {
            return Err(format!("{url} answered {status}"));
        }
        Ok(body)
    }

    /// POSTs `fields` form-encoded to `url` and returns the status and body, whatever the status
    /// (an OAuth error answer is a JSON body with a 4xx status).
    pub async fn post_form(
        &self,
        url: &str,
        fields: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<(http::StatusCode, Vec<u8>), String> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let request = http::Request::post(url)
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("{url}: {e}"))?;
        self.send(url, request, timeout).await
    }

    async fn send(
        &self,
        url: &str,
        request: http::Request<Full<Bytes>>,
        timeout: Duration,
    ) -> Result<(http::StatusCode, Vec<u8>), String> {
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| format!("{url}: reading the answer: {e}"))?
                .to_bytes();
            Ok((status, body.to_vec()))
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| format!("{url}: no answer within {} ms", timeout.as_millis()))?
    }
}
