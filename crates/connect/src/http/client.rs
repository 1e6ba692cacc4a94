//! The client half of the CORE HTTP transport, used by the services.
//!
//! Every HTTP attempt is a client span (`POST`, a child of the caller's span, its context sent
//! in `traceparent`) and is counted in `medbill_payer_requests_total` and
//! `medbill_payer_duration_milliseconds` by payer, payload type and outcome. The instruments
//! come from the global OpenTelemetry meter when the client is built.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use http::header::{AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{HeaderValue, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram};
use opentelemetry::propagation::Injector;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tracing::{Instrument as _, Span, debug};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use uuid::Uuid;

use crate::config::{CoreHttpConfig, PayerConnection, RetryPolicy};
use crate::envelope::{
    CoreRequest, CoreResponse, EncodedBody, Envelope, ErrorCode, PayloadType, ProcessingMode,
};
use crate::error::{ConfigError, ConnectError, payload_type_mismatch};
use crate::retry::with_retries;
use crate::transport::{
    BatchTransport, InboundFile, InboundKind, OutboundFile, RealTimeRequest, RealTimeResponse,
    RealTimeTransport, SubmissionReceipt,
};

/// Largest response body read; a bigger one is a protocol error rather than an out-of-memory.
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// Longest body excerpt kept in an error.
const EXCERPT_CHARS: usize = 200;

/// A CORE HTTP(S) client for one payer: pooled keep-alive connections, TLS for `https://`, retries.
#[derive(Clone)]
pub struct CoreHttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    payer_id: String,
    sender_id: String,
    receiver_id: String,
    endpoint: Uri,
    authorization: Option<HeaderValue>,
    request_timeout: Duration,
    retry: RetryPolicy,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    metrics: PayerMetrics,
}

/// Meter (instrumentation scope) name, the same as the services'.
const METER_NAME: &str = "medbill";

/// Bucket bounds (milliseconds) of the payer call duration: real-time answers take tens of
/// milliseconds to seconds, a batch upload up to the request timeout.
const DURATION_BUCKETS_MS: [f64; 14] = [
    5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1_000.0, 2_500.0, 5_000.0, 10_000.0, 15_000.0,
    30_000.0, 60_000.0,
];

/// The instruments of payer calls.
#[derive(Clone)]
struct PayerMetrics {
    requests: Counter<u64>,
    duration: Histogram<f64>,
}

impl PayerMetrics {
    fn global() -> Self {
        let meter = opentelemetry::global::meter(METER_NAME);
        Self {
            requests: meter
                .u64_counter("medbill.payer.requests")
                .with_description(
                    "HTTP calls to clearinghouses and payers, by payer, payload type and outcome.",
                )
                .with_unit("{request}")
                .build(),
            duration: meter
                .f64_histogram("medbill.payer.duration")
                .with_description("Duration of HTTP calls to clearinghouses and payers.")
                .with_unit("ms")
                .with_boundaries(DURATION_BUCKETS_MS.to_vec())
                .build(),
        }
    }

    fn record(
        &self,
        payer_id: &str,
        payload_type: &PayloadType,
        outcome: &'static str,
        elapsed: Duration,
    ) {
        let labels = [
            KeyValue::new("payer_id", payer_id.to_owned()),
            KeyValue::new("payload_type", payload_type.as_str().to_owned()),
            KeyValue::new("outcome", outcome),
        ];
        self.requests.add(1, &labels);
        self.duration
            .record(elapsed.as_secs_f64() * 1_000.0, &labels);
    }
}

/// Returns the `outcome` label of a failed attempt (`ok` for success is the caller's).
fn outcome(error: &ConnectError) -> &'static str {
    match error {
        ConnectError::Connect { .. } => "connect_error",
        ConnectError::Tls { .. } => "tls_error",
        ConnectError::Timeout { .. } => "timeout",
        ConnectError::Transport { .. } => "transport_error",
        ConnectError::HttpStatus { .. } => "http_error",
        ConnectError::AuthRejected { .. } => "auth_rejected",
        ConnectError::Refused { .. } => "refused",
        ConnectError::ReceiverDown { .. } => "receiver_down",
        ConnectError::MalformedResponse { .. } => "malformed_response",
        ConnectError::Mismatch { .. } => "mismatch",
        _ => "error",
    }
}

/// Writes trace-context headers into an HTTP request.
struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

impl std::fmt::Debug for CoreHttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreHttpClient")
            .field("payer_id", &self.inner.payer_id)
            .field("endpoint", &self.inner.endpoint)
            .field(
                "authorization",
                &self.inner.authorization.as_ref().map(|_| "***"),
            )
            .finish_non_exhaustive()
    }
}

impl CoreHttpClient {
    /// Builds a client for `connection` using its HTTP settings `http` (its `transport` or `batch_transport`).
    ///
    /// Reads the credentials' secrets and the CA file now, so a bad configuration fails at start-up.
    pub fn new(connection: &PayerConnection, http: &CoreHttpConfig) -> Result<Self, ConfigError> {
        let invalid = |field: &'static str, reason: String| ConfigError::Invalid {
            payer_id: connection.payer_id.clone(),
            field,
            reason,
        };
        let endpoint: Uri = http
            .endpoint
            .parse()
            .map_err(|e| invalid("transport.endpoint", format!("not a URL: {e}")))?;
        let authorization = match &http.credentials {
            None => None,
            Some(credentials) => {
                let value = credentials.resolve()?.authorization_value();
                let mut header = HeaderValue::from_str(value.expose()).map_err(|_| {
                    invalid(
                        "transport.credentials",
                        "contains characters not allowed in a header".into(),
                    )
                })?;
                header.set_sensitive(true);
                Some(header)
            }
        };
        let tls = tls_client_config(http.ca_file.as_deref())?;

        let mut connector = HttpConnector::new();
        connector.enforce_http(false);
        connector.set_connect_timeout(Some(http.connect_timeout()));
        connector.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(http.max_idle_per_host)
            .pool_idle_timeout(Duration::from_secs(60))
            .build(https);
        Ok(Self {
            inner: Arc::new(Inner {
                payer_id: connection.payer_id.clone(),
                sender_id: connection.sender_id.clone(),
                receiver_id: connection.receiver_id.clone(),
                endpoint,
                authorization,
                request_timeout: http.request_timeout(),
                retry: connection.retry.clone(),
                client,
                metrics: PayerMetrics::global(),
            }),
        })
    }

    /// Returns the payer this client talks to.
    pub fn payer_id(&self) -> &str {
        &self.inner.payer_id
    }

    /// Sends one envelope (retrying per policy) and returns the successful CORE response and attempts used.
    ///
    /// The `PayloadID` and encoded body are the same for every attempt, so the receiver can deduplicate.
    pub async fn send(
        &self,
        processing_mode: ProcessingMode,
        payload_type: PayloadType,
        payload: Bytes,
    ) -> Result<(CoreResponse, u32), ConnectError> {
        let inner = &self.inner;
        let envelope = Envelope::new(
            processing_mode,
            payload_type,
            inner.sender_id.clone(),
            inner.receiver_id.clone(),
            payload,
        );
        let payload_id = envelope.payload_id;
        debug!(
            payer_id = %inner.payer_id,
            %payload_id,
            payload_type = %envelope.payload_type,
            mode = %processing_mode,
            bytes = envelope.payload.len(),
            "sending core request"
        );
        let payload_type = envelope.payload_type.clone();
        let encoded = CoreRequest { envelope }.encode();
        let result = with_retries(&inner.retry, &inner.payer_id, payload_id, |_| {
            self.attempt(&encoded, payload_id, &payload_type)
        })
        .await;
        if let Ok((response, attempts)) = &result {
            debug!(
                payer_id = %inner.payer_id,
                %payload_id,
                payload_type = %response.envelope.payload_type,
                bytes = response.envelope.payload.len(),
                attempts,
                "core response received"
            );
        }
        result
    }

    /// Makes one attempt in a client span of its own, and counts it.
    async fn attempt(
        &self,
        encoded: &EncodedBody,
        payload_id: Uuid,
        payload_type: &PayloadType,
    ) -> Result<CoreResponse, ConnectError> {
        let inner = &self.inner;
        let span = tracing::info_span!(
            "core.http",
            otel.name = "POST",
            otel.kind = "client",
            http.request.method = "POST",
            server.address = inner.endpoint.host().unwrap_or_default(),
            server.port = i64::from(inner.endpoint.port_u16().unwrap_or_else(|| {
                if inner.endpoint.scheme_str() == Some("https") { 443 } else { 80 }
            })),
            payer_id = %inner.payer_id,
            core.payload_type = %payload_type,
            core.payload_id = %payload_id,
            http.response.status_code = tracing::field::Empty,
            error.type = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        let started = Instant::now();
        let result = self
            .exchange_once(encoded, payload_id, &span)
            .instrument(span.clone())
            .await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(error) => {
                let outcome = outcome(error);
                span.record("error.type", outcome);
                span.record("otel.status_code", "error");
                outcome
            }
        };
        inner
            .metrics
            .record(&inner.payer_id, payload_type, outcome, started.elapsed());
        result
    }

    /// POSTs once, reads the whole response within the request timeout, checks the envelope.
    async fn exchange_once(
        &self,
        encoded: &EncodedBody,
        payload_id: Uuid,
        span: &Span,
    ) -> Result<CoreResponse, ConnectError> {
        let inner = &self.inner;
        let payer_id = || inner.payer_id.clone();
        let mut builder = Request::post(inner.endpoint.clone())
            .header(CONTENT_TYPE, encoded.content_type.as_str())
            .header(
                USER_AGENT,
                concat!("medbill-connect/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(authorization) = &inner.authorization {
            builder = builder.header(AUTHORIZATION, authorization.clone());
        }
        if let Some(headers) = builder.headers_mut() {
            let context = span.context();
            opentelemetry::global::get_text_map_propagator(|propagator| {
                propagator.inject_context(&context, &mut HeaderInjector(headers));
            });
        }
        let request =
            builder
                .body(Full::new(encoded.body.clone()))
                .map_err(|e| ConnectError::Transport {
                    payer_id: payer_id(),
                    reason: format!("cannot build request: {e}"),
                })?;

        let exchange = async {
            let response = inner.client.request(request).await.map_err(|e| {
                if let Some(tls) = rustls_error(&e) {
                    ConnectError::Tls {
                        payer_id: payer_id(),
                        reason: tls.to_string(),
                    }
                } else if e.is_connect() {
                    ConnectError::Connect {
                        payer_id: payer_id(),
                        reason: error_chain(&e),
                    }
                } else {
                    ConnectError::Transport {
                        payer_id: payer_id(),
                        reason: error_chain(&e),
                    }
                }
            })?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| ConnectError::Transport {
                    payer_id: payer_id(),
                    reason: format!("reading response body: {e}"),
                })?
                .to_bytes();
            Ok::<_, ConnectError>((parts, body))
        };
        let (parts, body) = tokio::time::timeout(inner.request_timeout, exchange)
            .await
            .map_err(|_| ConnectError::Timeout {
                payer_id: payer_id(),
                timeout_ms: u64::try_from(inner.request_timeout.as_millis()).unwrap_or(u64::MAX),
            })??;

        // As i64: tracing-opentelemetry records unsigned integers as text.
        span.record(
            "http.response.status_code",
            i64::from(parts.status.as_u16()),
        );
        let content_type = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        match parts.status {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(ConnectError::AuthRejected {
                    payer_id: payer_id(),
                    status: parts.status.as_u16(),
                });
            }
            status => {
                // A CORE receiver answers envelope errors with the error code in a multipart body.
                if let Ok(response) = CoreResponse::decode(content_type, &body).await
                    && response.error_code != ErrorCode::Success
                {
                    return Err(core_error(&inner.payer_id, payload_id, response));
                }
                return Err(ConnectError::HttpStatus {
                    payer_id: payer_id(),
                    status: status.as_u16(),
                    excerpt: excerpt(&body),
                });
            }
        }
        let response = CoreResponse::decode(content_type, &body)
            .await
            .map_err(|source| ConnectError::MalformedResponse {
                payer_id: payer_id(),
                source,
            })?;
        if response.error_code != ErrorCode::Success {
            return Err(core_error(&inner.payer_id, payload_id, response));
        }
        if response.envelope.payload_id != payload_id {
            return Err(ConnectError::Mismatch {
                payer_id: payer_id(),
                payload_id,
                reason: format!(
                    "response carries payload id {}",
                    response.envelope.payload_id
                ),
            });
        }
        Ok(response)
    }
}

fn core_error(payer_id: &str, payload_id: Uuid, response: CoreResponse) -> ConnectError {
    let message: String = response.error_message.chars().take(EXCERPT_CHARS).collect();
    if response.error_code.is_retryable() {
        ConnectError::ReceiverDown {
            payer_id: payer_id.to_owned(),
            code: response.error_code,
            message,
        }
    } else {
        ConnectError::Refused {
            payer_id: payer_id.to_owned(),
            payload_id,
            code: response.error_code,
            message,
        }
    }
}

#[async_trait]
impl RealTimeTransport for CoreHttpClient {
    async fn exchange(&self, request: RealTimeRequest) -> Result<RealTimeResponse, ConnectError> {
        let expected = request.payload_type.response_type();
        let (response, attempts) = self
            .send(
                ProcessingMode::RealTime,
                request.payload_type,
                request.payload,
            )
            .await?;
        let envelope = response.envelope;
        if let Some(expected) = expected {
            // A 999 or TA1 is the legitimate real-time answer to a request that fails syntax checks.
            let acceptable = envelope.payload_type == expected
                || envelope.payload_type == PayloadType::X12_999_RESPONSE
                || envelope.payload_type == PayloadType::X12_TA1_RESPONSE;
            if !acceptable {
                return Err(ConnectError::Mismatch {
                    payer_id: self.inner.payer_id.clone(),
                    payload_id: envelope.payload_id,
                    reason: payload_type_mismatch(&expected, &envelope.payload_type),
                });
            }
        }
        if envelope.payload.is_empty() {
            return Err(ConnectError::MalformedResponse {
                payer_id: self.inner.payer_id.clone(),
                source: crate::envelope::EnvelopeError::Required(
                    crate::envelope::EnvelopeField::Payload,
                ),
            });
        }
        Ok(RealTimeResponse {
            payload_id: envelope.payload_id,
            payload_type: envelope.payload_type,
            payload: envelope.payload,
            attempts,
        })
    }
}

/// Batch files over CORE HTTP: submission, retrieval of the next result file, and its acknowledgement.
///
/// Submission sends [`PayloadType::X12_837P_REQUEST`] or [`PayloadType::X12_837I_REQUEST`] when the file's GS08
/// names one of those guides, [`PayloadType::BATCH_SUBMISSION`] otherwise. Retrieval sends
/// [`PayloadType::retrieval`] of the kind asked for (any file, acknowledgements, 835s) with an empty payload;
/// the receiver answers with the oldest unacknowledged result file of that kind, typed by what it is (999,
/// TA1, 277CA, 835), or [`PayloadType::NO_BATCH_RESULTS_FILE`]
/// with an empty payload when none waits. The file id is the SHA-1 of the
/// contents; [`PayloadType::BATCH_RESULTS_ACK`] carries it back so the receiver stops offering that file.
#[async_trait]
impl BatchTransport for CoreHttpClient {
    async fn submit(&self, file: OutboundFile) -> Result<SubmissionReceipt, ConnectError> {
        let size = file.contents.len() as u64;
        let payload_type = PayloadType::for_batch(&file.contents);
        let (response, _) = self
            .send(ProcessingMode::Batch, payload_type, file.contents)
            .await?;
        let payload_id = response.envelope.payload_id;
        let reply = Some(response.envelope.payload).filter(|p| !p.is_empty());
        Ok(SubmissionReceipt {
            submission_id: payload_id.to_string(),
            payload_id,
            size,
            reply,
        })
    }

    async fn next_inbound(&self, kind: InboundKind) -> Result<Option<InboundFile>, ConnectError> {
        let (response, _) = self
            .send(
                ProcessingMode::Batch,
                PayloadType::retrieval(kind),
                Bytes::new(),
            )
            .await?;
        let contents = response.envelope.payload;
        if contents.is_empty()
            || response.envelope.payload_type == PayloadType::NO_BATCH_RESULTS_FILE
        {
            return Ok(None);
        }
        let checksum = crate::envelope::checksum(&contents);
        Ok(Some(InboundFile {
            file_id: checksum.clone(),
            contents,
            checksum,
            received_at: Utc::now(),
        }))
    }

    async fn acknowledge(&self, file_id: &str) -> Result<(), ConnectError> {
        self.send(
            ProcessingMode::Batch,
            PayloadType::BATCH_RESULTS_ACK,
            Bytes::copy_from_slice(file_id.as_bytes()),
        )
        .await?;
        Ok(())
    }
}

/// Builds the rustls client configuration: the CA file's certificates, or the public web roots.
fn tls_client_config(
    ca_file: Option<&std::path::Path>,
) -> Result<rustls::ClientConfig, ConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let ca_error = |reason: String| ConfigError::CaFile {
                path: path.to_owned(),
                reason,
            };
            let certs = CertificateDer::pem_file_iter(path).map_err(|e| ca_error(e.to_string()))?;
            for cert in certs {
                let cert = cert.map_err(|e| ca_error(e.to_string()))?;
                roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(ca_error("holds no certificate".into()));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    // The provider is chosen explicitly so the result does not depend on which rustls features others enable.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Invalid {
            payer_id: String::new(),
            field: "tls",
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// Finds a rustls error (bad certificate, handshake failure) in an error's sources.
fn rustls_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(tls) = io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(tls);
        }
        current = e.source();
    }
    None
}

/// Joins an error and its sources into one line.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Returns the start of a response body for an error message, withholding anything that looks like X12.
fn excerpt(body: &[u8]) -> String {
    if memchr::memmem::find(body, b"ISA").is_some() {
        return format!("[{} byte body withheld: it may contain X12]", body.len());
    }
    let head = body
        .get(..EXCERPT_CHARS.min(body.len()))
        .unwrap_or_default();
    String::from_utf8_lossy(head)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_withholds_x12_and_strips_control_characters() {
        assert_eq!(
            excerpt(b"bad request:\r\nno field"),
            "bad request:  no field"
        );
        assert!(excerpt(b"oops ISA*00*          *00*").contains("withheld"));
        assert_eq!(excerpt(&[b'a'; 500]).len(), EXCERPT_CHARS);
    }
}
