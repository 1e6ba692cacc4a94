//! The CORE HTTP transport over real loopback sockets: client and server halves together.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use medbill_connect::envelope::{CoreRequest, CoreResponse, Envelope, EnvelopeField};
use medbill_connect::{
    AcceptedCredential, ConnectError, Connection, Connections, CoreHandler, CoreHttpConfig,
    CoreServer, Credentials, CredentialsConfig, ErrorCode, ErrorKind, HandlerError, HandlerReply,
    InboundRequest, OutboundFile, PayerConnection, PayloadType, ProcessingMode, RetryPolicy,
    Secret, SecretSource, TransportConfig,
};
use tokio::net::TcpListener;

const REQUEST_270: &str = "ISA*00*          *00*          *ZZ*MEDBILL01      *ZZ*ACMEHEALTH     *261127*1020*^*00501*000000001*0*T*:~\
GS*HS*MEDBILL01*ACMEHEALTH*20261127*1020*1*X*005010X279A1~ST*270*0001*005010X279A1~SE*2*0001~GE*1*1~IEA*1*000000001~";
const RESPONSE_271: &str = "ISA*00*          *00*          *ZZ*ACMEHEALTH     *ZZ*MEDBILL01      *261127*1020*^*00501*000000002*0*T*:~\
GS*HB*ACMEHEALTH*MEDBILL01*20261127*1020*2*X*005010X279A1~ST*271*0001*005010X279A1~EB*1**30~SE*3*0001~GE*1*2~IEA*1*000000002~";

/// Answers every 270 with the same 271 and records what it was sent.
#[derive(Default)]
struct FixedResponder {
    calls: AtomicU32,
    last: Mutex<Option<InboundRequest>>,
}

#[async_trait]
impl CoreHandler for FixedResponder {
    async fn handle(&self, request: InboundRequest) -> Result<HandlerReply, HandlerError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let supported = request.payload_type == PayloadType::X12_270_REQUEST;
        *self.last.lock().unwrap() = Some(request);
        if !supported {
            return Err(HandlerError::PayloadTypeNotSupported);
        }
        Ok(HandlerReply {
            payload_type: PayloadType::X12_271_RESPONSE,
            payload: Bytes::from_static(RESPONSE_271.as_bytes()),
        })
    }
}

/// Answers HTTP 503 for its first `failures` calls, then like a [`FixedResponder`].
struct UnavailableFirst {
    failures: AtomicU32,
    calls: AtomicU32,
    inner: FixedResponder,
}

#[async_trait]
impl CoreHandler for UnavailableFirst {
    async fn handle(&self, request: InboundRequest) -> Result<HandlerReply, HandlerError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(HandlerError::Unavailable);
        }
        self.inner.handle(request).await
    }
}

/// Always answers CORE `Receiver Down`.
#[derive(Default)]
struct ReceiverDownResponder {
    calls: AtomicU32,
}

#[async_trait]
impl CoreHandler for ReceiverDownResponder {
    async fn handle(&self, _request: InboundRequest) -> Result<HandlerReply, HandlerError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(HandlerError::ReceiverDown("payer system offline".into()))
    }
}

/// Answers after a fixed delay, longer than the client waits.
struct SlowResponder {
    delay: Duration,
    calls: AtomicU32,
}

#[async_trait]
impl CoreHandler for SlowResponder {
    async fn handle(&self, _request: InboundRequest) -> Result<HandlerReply, HandlerError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        Ok(HandlerReply {
            payload_type: PayloadType::X12_271_RESPONSE,
            payload: Bytes::from_static(RESPONSE_271.as_bytes()),
        })
    }
}

/// Answers each request with its own payload behind a fixed prefix, so crossed answers would show.
struct EchoResponder;

#[async_trait]
impl CoreHandler for EchoResponder {
    async fn handle(&self, request: InboundRequest) -> Result<HandlerReply, HandlerError> {
        let mut payload = b"ECHO:".to_vec();
        payload.extend_from_slice(&request.payload);
        Ok(HandlerReply {
            payload_type: PayloadType::X12_271_RESPONSE,
            payload: Bytes::from(payload),
        })
    }
}

/// Keeps batch submissions and offers queued result files until they are acknowledged by checksum.
#[derive(Default)]
struct BatchQueue {
    submitted: Mutex<Vec<Bytes>>,
    results: Mutex<Vec<Bytes>>,
}

#[async_trait]
impl CoreHandler for BatchQueue {
    async fn handle(&self, request: InboundRequest) -> Result<HandlerReply, HandlerError> {
        if request.processing_mode != ProcessingMode::Batch {
            return Err(HandlerError::ProcessingModeNotSupported);
        }
        let reply = |payload_type, payload| {
            Ok(HandlerReply {
                payload_type,
                payload,
            })
        };
        if request.payload_type.is_batch_submission() {
            self.submitted.lock().unwrap().push(request.payload);
            reply(PayloadType::BATCH_SUBMISSION_RESPONSE, Bytes::new())
        } else if request.payload_type == PayloadType::BATCH_RESULTS_RETRIEVAL {
            let next = self
                .results
                .lock()
                .unwrap()
                .first()
                .cloned()
                .unwrap_or_default();
            reply(PayloadType::BATCH_RESULTS_RESPONSE, next)
        } else if request.payload_type == PayloadType::BATCH_RESULTS_ACK {
            let id = String::from_utf8_lossy(&request.payload).into_owned();
            self.results
                .lock()
                .unwrap()
                .retain(|f| medbill_connect::envelope::checksum(f) != id);
            reply(PayloadType::BATCH_RESULTS_RESPONSE, Bytes::new())
        } else {
            Err(HandlerError::PayloadTypeNotSupported)
        }
    }
}

async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

fn fast_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_backoff_ms: 10,
        max_backoff_ms: 50,
        multiplier: 2,
        jitter: true,
    }
}

fn payer(endpoint: String, credentials: Option<CredentialsConfig>) -> PayerConnection {
    let mut http = CoreHttpConfig::new(endpoint);
    http.credentials = credentials;
    http.request_timeout_ms = 5_000;
    PayerConnection {
        payer_id: "ACME".into(),
        sender_id: "MEDBILL01".into(),
        receiver_id: "ACMEHEALTH".into(),
        transport: TransportConfig::CoreHttp(http),
        batch_transport: None,
        retry: fast_retry(3),
    }
}

/// Writes `password` to a secret file and returns Basic credentials referring to it.
fn basic_credentials(dir: &tempfile::TempDir, password: &str) -> CredentialsConfig {
    let path = dir.path().join("acme-password");
    std::fs::write(&path, format!("{password}\n")).unwrap();
    CredentialsConfig::Basic {
        username: "medbill".into(),
        password: SecretSource::File(path),
    }
}

fn accepted(password: &str, sender_ids: &[&str]) -> AcceptedCredential {
    AcceptedCredential {
        credentials: Credentials::Basic {
            username: "medbill".into(),
            password: Secret::new(password),
        },
        sender_ids: sender_ids.iter().map(|s| (*s).to_owned()).collect(),
    }
}

#[tokio::test]
async fn real_time_round_trip_through_client_and_server() {
    let responder = Arc::new(FixedResponder::default());
    let router = CoreServer::new(responder.clone())
        .with_credentials([accepted("s3cret", &["MEDBILL01"])])
        .with_receiver_ids(["ACMEHEALTH".to_owned()])
        .router("/core");
    let addr = serve(router).await;
    let secrets = tempfile::tempdir().unwrap();
    let config = payer(
        format!("http://{addr}/core"),
        Some(basic_credentials(&secrets, "s3cret")),
    );
    let connections = Connections::open([&config]).unwrap();
    let connection = connections.get("ACME").unwrap();

    let response = connection
        .exchange(
            PayloadType::X12_270_REQUEST,
            Bytes::from_static(REQUEST_270.as_bytes()),
        )
        .await
        .unwrap();

    assert_eq!(response.payload_type, PayloadType::X12_271_RESPONSE);
    assert_eq!(&response.payload[..], RESPONSE_271.as_bytes());
    assert_eq!(response.attempts, 1);
    let seen = responder.last.lock().unwrap().clone().unwrap();
    assert_eq!(&seen.payload[..], REQUEST_270.as_bytes());
    assert_eq!(seen.sender_id, "MEDBILL01");
    assert_eq!(seen.receiver_id, "ACMEHEALTH");
    assert_eq!(seen.payload_id, response.payload_id);
    assert_eq!(seen.processing_mode, ProcessingMode::RealTime);

    // Keep-alive reuse: a second exchange on the same client works too.
    let again = connection
        .exchange(
            PayloadType::X12_270_REQUEST,
            Bytes::from_static(REQUEST_270.as_bytes()),
        )
        .await
        .unwrap();
    assert_ne!(again.payload_id, response.payload_id);
    assert_eq!(responder.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn unsupported_payload_type_is_refused_without_retry() {
    let responder = Arc::new(FixedResponder::default());
    let addr = serve(CoreServer::new(responder.clone()).router("/core")).await;
    let connection = Connection::open(&payer(format!("http://{addr}/core"), None)).unwrap();

    let err = connection
        .exchange(
            PayloadType::X12_276_REQUEST,
            Bytes::from_static(b"ISA*276~"),
        )
        .await
        .unwrap_err();

    assert!(
        matches!(
            &err,
            ConnectError::Refused {
                code: ErrorCode::PayloadTypeNotSupported,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::Rejected);
    assert_eq!(responder.calls.load(Ordering::SeqCst), 1);
    assert!(
        err.to_string().contains("X12_276_Request_005010X212"),
        "{err}"
    );
}

#[tokio::test]
async fn wrong_password_is_auth_rejected_and_not_retried() {
    let responder = Arc::new(FixedResponder::default());
    let router = CoreServer::new(responder.clone())
        .with_credentials([accepted("s3cret", &[])])
        .router("/core");
    let addr = serve(router).await;
    let secrets = tempfile::tempdir().unwrap();
    let config = payer(
        format!("http://{addr}/core"),
        Some(basic_credentials(&secrets, "wrong-password")),
    );
    let connection = Connection::open(&config).unwrap();

    let err = connection
        .exchange(
            PayloadType::X12_270_REQUEST,
            Bytes::from_static(REQUEST_270.as_bytes()),
        )
        .await
        .unwrap_err();

    assert!(
        matches!(err, ConnectError::AuthRejected { status: 401, .. }),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert_eq!(err.attempts(), 1);
    assert_eq!(responder.calls.load(Ordering::SeqCst), 0);
    // The secret never shows in the error or in the connection's Debug output.
    assert!(!err.to_string().contains("wrong-password"));
    assert!(!format!("{connection:?}").contains("wrong-password"));
}

#[tokio::test]
async fn credentials_bound_to_another_sender_are_refused() {
    let responder = Arc::new(FixedResponder::default());
    let router = CoreServer::new(responder.clone())
        .with_credentials([accepted("s3cret", &["SOMEONEELSE"])])
        .router("/core");
    let addr = serve(router).await;
    let secrets = tempfile::tempdir().unwrap();
    let config = payer(
        format!("http://{addr}/core"),
        Some(basic_credentials(&secrets, "s3cret")),
    );

    let err = Connection::open(&config)
        .unwrap()
        .exchange(
            PayloadType::X12_270_REQUEST,
            Bytes::from_static(REQUEST_270.as_bytes()),
        )
        .await
        .unwrap_err();

    assert_eq!(
        err.core_error_code(),
        Some(&ErrorCode::SenderIdNotAuthorized)
    );
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert_eq!(responder.calls.load(Ordering::SeqCst), 0);
}

/// Posts a hand-built body and returns the status and decoded CORE response.
async fn post_raw(addr: SocketAddr, content_type: &str, body: Bytes) -> (u16, CoreResponse) {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let request = http::Request::post(format!("http://{addr}/core"))
        .header(http::header::CONTENT_TYPE, content_type)
        .body(Full::new(body))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response.headers()[http::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        CoreResponse::decode(&content_type, &body).await.unwrap(),
    )
}

#[tokio::test]
async fn server_names_the_bad_envelope_field() {
    let responder = Arc::new(FixedResponder::default());
    let addr = serve(CoreServer::new(responder.clone()).router("/core")).await;

    // A missing PayloadID.
    let boundary = "XyZ";
    let fields: Vec<(&str, &[u8])> = vec![
        ("PayloadType", b"X12_270_Request_005010X279A1"),
        ("ProcessingMode", b"RealTime"),
        ("TimeStamp", b"2026-11-27T10:20:34Z"),
        ("SenderID", b"MEDBILL01"),
        ("ReceiverID", b"ACMEHEALTH"),
        ("CORERuleVersion", b"2.2.0"),
        ("Payload", REQUEST_270.as_bytes()),
    ];
    let body = medbill_connect::multipart::encode(boundary, &fields);
    let (status, response) = post_raw(
        addr,
        &medbill_connect::multipart::content_type(boundary),
        body,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        response.error_code,
        ErrorCode::Required(EnvelopeField::PayloadId)
    );
    assert_eq!(response.error_code.to_string(), "PayloadIDRequired");

    // An old rule version.
    let mut envelope = Envelope::new(
        ProcessingMode::RealTime,
        PayloadType::X12_270_REQUEST,
        "MEDBILL01",
        "ACMEHEALTH",
        Bytes::from_static(REQUEST_270.as_bytes()),
    );
    envelope.core_rule_version = "2.1.0".into();
    let encoded = CoreRequest { envelope }.encode();
    let (status, response) = post_raw(addr, &encoded.content_type, encoded.body).await;
    assert_eq!(status, 400);
    assert_eq!(response.error_code, ErrorCode::VersionMismatch);

    // Not multipart at all.
    let (status, response) = post_raw(addr, "application/json", Bytes::from_static(b"{}")).await;
    assert_eq!(status, 400);
    assert_ne!(response.error_code, ErrorCode::Success);

    assert_eq!(responder.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn service_unavailable_twice_then_success_is_retried() {
    let handler = Arc::new(UnavailableFirst {
        failures: AtomicU32::new(2),
        calls: AtomicU32::new(0),
        inner: FixedResponder::default(),
    });
    let addr = serve(CoreServer::new(handler.clone()).router("/core")).await;
    let connection = Connection::open(&payer(format!("http://{addr}/core"), None)).unwrap();

    let response = connection
        .exchange(
            PayloadType::X12_270_REQUEST,
            Bytes::from_static(REQUEST_270.as_bytes()),
        )
        .await
        .unwrap();

    assert_eq!(response.attempts, 3);
    assert_eq!(&response.payload[..], RESPONSE_271.as_bytes());
    assert_eq!(handler.calls.load(Ordering::SeqCst), 3);
    // Every attempt carried the same payload id, so the payer can deduplicate.
    let seen = handler.inner.last.lock().unwrap().clone().unwrap();
    assert_eq!(seen.payload_id, response.payload_id);
}

#[tokio::test]
async fn receiver_down_is_retried_then_reported() {
    let handler = Arc::new(ReceiverDownResponder::default());
    let addr = serve(CoreServer::new(handler.clone()).router("/core")).await;
    let connection = Connection::open(&payer(format!("http://{addr}/core"), None)).unwrap();

    let err = connection
        .exchange(
            PayloadType::X12_270_REQUEST,
            Bytes::from_static(REQUEST_270.as_bytes()),
        )
        .await
        .unwrap_err();

    assert_eq!(err.attempts(), 3);
    assert_eq!(handler.calls.load(Ordering::SeqCst), 3);
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(err.core_error_code(), Some(&ErrorCode::ReceiverDown));
    assert!(err.to_string().contains("payer system offline"), "{err}");
}

#[tokio::test]
async fn bad_request_status_is_not_retried() {
    let hits = Arc::new(AtomicU32::new(0));
    let counter = hits.clone();
    let router = Router::new().route(
        "/core",
        axum::routing::post(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                (http::StatusCode::BAD_REQUEST, "unsupported media layout")
            }
        }),
    );
    let addr = serve(router).await;
    let connection = Connection::open(&payer(format!("http://{addr}/core"), None)).unwrap();

    let err = connection
        .exchange(
            PayloadType::X12_270_REQUEST,
            Bytes::from_static(REQUEST_270.as_bytes()),
        )
        .await
        .unwrap_err();

    assert!(
        matches!(&err, ConnectError::HttpStatus { status: 400, .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("unsupported media layout"),
        "{err}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert_eq!(err.kind(), ErrorKind::Rejected);
}

#[tokio::test]
async fn request_timeout_is_retried_then_reported_as_timeout() {
    let handler = Arc::new(SlowResponder {
        delay: Duration::from_secs(5),
        calls: AtomicU32::new(0),
    });
    let addr = serve(CoreServer::new(handler.clone()).router("/core")).await;
    let mut config = payer(format!("http://{addr}/core"), None);
    if let TransportConfig::CoreHttp(http) = &mut config.transport {
        http.request_timeout_ms = 150;
    }
    config.retry = fast_retry(2);
    let connection = Connection::open(&config).unwrap();

    let err = connection
        .exchange(
            PayloadType::X12_270_REQUEST,
            Bytes::from_static(REQUEST_270.as_bytes()),
        )
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(err.attempts(), 2);
    assert_eq!(
        err.to_string(),
        "gave up after 2 attempts: payer ACME: no response within 150 ms"
    );
    // Under heavy load an attempt may time out before the server even sees it.
    assert!(handler.calls.load(Ordering::SeqCst) <= 2);
}

#[tokio::test]
async fn refused_connection_is_retried_then_unavailable() {
    // Bind then drop a listener: the port is free and nothing answers on it.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let connection = Connection::open(&payer(format!("http://{addr}/core"), None)).unwrap();

    let err = connection
        .exchange(
            PayloadType::X12_270_REQUEST,
            Bytes::from_static(REQUEST_270.as_bytes()),
        )
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(err.attempts(), 3);
    match err {
        ConnectError::Exhausted { last, .. } => {
            assert!(matches!(*last, ConnectError::Connect { .. }), "{last}")
        }
        other => panic!("expected exhausted retries, got {other}"),
    }
}

#[tokio::test]
async fn unknown_payer_is_a_typed_error() {
    let connections = Connections::open([]).unwrap();
    let err = connections.get("NOPE").unwrap_err();
    assert!(matches!(err, ConnectError::UnknownPayer(ref p) if p == "NOPE"));
}

#[tokio::test]
async fn missing_secret_fails_at_open_naming_the_variable() {
    let config = payer(
        "http://127.0.0.1:9/core".into(),
        Some(CredentialsConfig::Bearer {
            token: SecretSource::Env("MEDBILL_CONNECT_TEST_NO_SUCH_TOKEN".into()),
        }),
    );
    let err = Connection::open(&config).unwrap_err();
    assert!(
        err.to_string()
            .contains("MEDBILL_CONNECT_TEST_NO_SUCH_TOKEN"),
        "{err}"
    );
}

#[tokio::test]
async fn https_with_a_private_ca_round_trips() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let tls = medbill_connect::http::tls::server_tls_config(
        &fixtures.join("server.pem"),
        &fixtures.join("server.key"),
    )
    .unwrap();
    let responder = Arc::new(FixedResponder::default());
    let router = CoreServer::new(responder.clone()).router("/core");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(medbill_connect::http::tls::serve_tls(
        listener,
        router,
        tls,
        async move {
            let _ = stopped.await;
        },
    ));

    let mut config = payer(format!("https://localhost:{port}/core"), None);
    if let TransportConfig::CoreHttp(http) = &mut config.transport {
        http.ca_file = Some(fixtures.join("ca.pem"));
    }
    let response = Connection::open(&config)
        .unwrap()
        .exchange(
            PayloadType::X12_270_REQUEST,
            Bytes::from_static(REQUEST_270.as_bytes()),
        )
        .await
        .unwrap();
    assert_eq!(&response.payload[..], RESPONSE_271.as_bytes());

    // Without the private CA the server's certificate is not trusted.
    let mut untrusted = payer(format!("https://localhost:{port}/core"), None);
    // Retrying cannot fix trust: even with retries allowed it fails after one attempt.
    untrusted.retry = fast_retry(3);
    let err = Connection::open(&untrusted)
        .unwrap()
        .exchange(
            PayloadType::X12_270_REQUEST,
            Bytes::from_static(REQUEST_270.as_bytes()),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    assert_eq!(responder.calls.load(Ordering::SeqCst), 1);

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn batch_submission_retrieval_and_acknowledgement_over_http() {
    let queue = Arc::new(BatchQueue::default());
    let result_999 = Bytes::from_static(b"ISA*00*...*999~IEA*1*000000003~");
    queue.results.lock().unwrap().push(result_999.clone());
    let addr = serve(CoreServer::new(queue.clone()).router("/core")).await;
    let connection = Connection::open(&payer(format!("http://{addr}/core"), None)).unwrap();

    let receipt = connection
        .submit_batch(OutboundFile {
            label: "837P".into(),
            contents: Bytes::from_static(b"ISA*00*...*837~"),
        })
        .await
        .unwrap();
    assert_eq!(receipt.size, 15);
    assert_eq!(
        queue.submitted.lock().unwrap().as_slice(),
        [Bytes::from_static(b"ISA*00*...*837~")]
    );

    let file = connection.next_inbound().await.unwrap().unwrap();
    assert_eq!(file.contents, result_999);
    // Not acknowledged yet: offered again.
    let again = connection.next_inbound().await.unwrap().unwrap();
    assert_eq!(again.file_id, file.file_id);
    connection.acknowledge(&file.file_id).await.unwrap();
    assert!(connection.next_inbound().await.unwrap().is_none());
}

#[tokio::test]
async fn concurrent_exchanges_each_get_their_own_answer() {
    let addr = serve(CoreServer::new(EchoResponder).router("/core")).await;
    let connection =
        Arc::new(Connection::open(&payer(format!("http://{addr}/core"), None)).unwrap());
    let mut tasks = Vec::new();
    for i in 0..64 {
        let connection = connection.clone();
        tasks.push(tokio::spawn(async move {
            let payload = format!("ISA*request {i}~");
            let response = connection
                .exchange(PayloadType::X12_270_REQUEST, Bytes::from(payload.clone()))
                .await
                .unwrap();
            assert_eq!(response.payload, format!("ECHO:{payload}").into_bytes());
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}
