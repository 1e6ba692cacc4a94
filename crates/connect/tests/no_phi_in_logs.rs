//! Payloads are PHI: no log line of either half may contain them, whatever happens.

use std::io::Write;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use medbill_connect::{
    Connection, CoreHandler, CoreHttpConfig, CoreServer, HandlerError, HandlerReply,
    InboundRequest, PayerConnection, PayloadType, RetryPolicy, TransportConfig,
};

const MEMBER: &str = "NM1*IL*1*DOE*JANE****MI*W9988776655";
const ANSWER: &str = "EB*1*IND*30**SECRET GOLD PLAN";

/// Answers the first request with a 271 and the second with `Receiver Down`, logging nothing itself.
struct AlternatingResponder {
    calls: Mutex<u32>,
}

#[async_trait]
impl CoreHandler for AlternatingResponder {
    async fn handle(&self, _request: InboundRequest) -> Result<HandlerReply, HandlerError> {
        let mut calls = self.calls.lock().unwrap();
        *calls += 1;
        if *calls == 1 {
            Ok(HandlerReply {
                payload_type: PayloadType::X12_271_RESPONSE,
                payload: Bytes::from(format!("ISA*271~{ANSWER}~IEA~")),
            })
        } else {
            Err(HandlerError::ReceiverDown("offline".into()))
        }
    }
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn payloads_never_reach_the_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // The test runtime is single-threaded, so the server tasks log through this subscriber too.
    let _guard = tracing::subscriber::set_default(subscriber);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = CoreServer::new(AlternatingResponder {
        calls: Mutex::new(0),
    })
    .router("/core");
    tokio::spawn(async move { axum::serve(listener, router).await });
    let connection = Connection::open(&PayerConnection {
        payer_id: "ACME".into(),
        sender_id: "MEDBILL01".into(),
        receiver_id: "ACMEHEALTH".into(),
        transport: TransportConfig::CoreHttp(CoreHttpConfig::new(format!("http://{addr}/core"))),
        batch_transport: None,
        retry: RetryPolicy {
            max_attempts: 2,
            initial_backoff_ms: 1,
            max_backoff_ms: 1,
            multiplier: 1,
            jitter: false,
        },
    })
    .unwrap();
    let request = Bytes::from(format!("ISA*270~{MEMBER}~IEA~"));

    let ok = connection
        .exchange(PayloadType::X12_270_REQUEST, request.clone())
        .await
        .unwrap();
    let err = connection
        .exchange(PayloadType::X12_270_REQUEST, request)
        .await
        .unwrap_err();

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    // The logs are there (ids, sizes, retries) ...
    assert!(logs.contains(&ok.payload_id.to_string()), "{logs}");
    assert!(logs.contains("retrying"), "{logs}");
    // ... but neither payload, nor does the error carry one.
    for phi in ["DOE*JANE", "W9988776655", "SECRET GOLD PLAN"] {
        assert!(!logs.contains(phi), "{phi} leaked into the logs");
        assert!(
            !err.to_string().contains(phi),
            "{phi} leaked into the error"
        );
    }
}
