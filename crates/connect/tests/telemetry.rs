//! Every CORE HTTP attempt is a client span whose context reaches the payer in `traceparent`,
//! and is counted by payer, payload type and outcome. Spans go to the SDK's in-memory exporter
//! and metrics to its in-memory metric exporter; this binary installs the global subscriber
//! and meter provider.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::Router;
use bytes::Bytes;
use medbill_connect::{
    Connections, CoreHandler, CoreHttpConfig, CoreServer, HandlerError, HandlerReply,
    InboundRequest, PayerConnection, PayloadType, RetryPolicy, TransportConfig,
};
use opentelemetry::Value;
use opentelemetry::trace::{SpanKind, TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, SdkMeterProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tokio::net::TcpListener;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Answers HTTP 503 to the first call, then a 271.
#[derive(Default)]
struct UnavailableOnce {
    calls: AtomicU32,
}

#[async_trait]
impl CoreHandler for UnavailableOnce {
    async fn handle(&self, _request: InboundRequest) -> Result<HandlerReply, HandlerError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(HandlerError::Unavailable);
        }
        Ok(HandlerReply {
            payload_type: PayloadType::X12_271_RESPONSE,
            payload: Bytes::from_static(b"ISA*271~IEA~"),
        })
    }
}

fn attr(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

/// Returns the value of counter `name` for the data point whose `outcome` is `outcome`.
fn counter(metrics: &ResourceMetrics, name: &str, outcome: &str) -> Option<u64> {
    let metric = metrics
        .scope_metrics()
        .flat_map(|scope| scope.metrics())
        .find(|m| m.name() == name)?;
    let AggregatedMetrics::U64(MetricData::Sum(sum)) = metric.data() else {
        panic!("{name} is not a u64 sum");
    };
    sum.data_points()
        .find(|point| {
            point
                .attributes()
                .any(|kv| kv.key.as_str() == "outcome" && kv.value.as_str() == outcome)
                && point
                    .attributes()
                    .any(|kv| kv.key.as_str() == "payer_id" && kv.value.as_str() == "ACME")
                && point.attributes().any(|kv| {
                    kv.key.as_str() == "payload_type"
                        && kv.value.as_str() == PayloadType::X12_270_REQUEST.as_str()
                })
        })
        .map(|point| point.value())
}

fn histogram_count(metrics: &ResourceMetrics, name: &str) -> u64 {
    let metric = metrics
        .scope_metrics()
        .flat_map(|scope| scope.metrics())
        .find(|m| m.name() == name)
        .unwrap_or_else(|| panic!("no {name}"));
    assert_eq!(metric.unit(), "ms");
    let AggregatedMetrics::F64(MetricData::Histogram(histogram)) = metric.data() else {
        panic!("{name} is not an f64 histogram");
    };
    histogram.data_points().map(|p| p.count()).sum()
}

#[tokio::test]
async fn each_attempt_is_a_client_span_with_its_context_sent_and_is_counted() {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let spans = InMemorySpanExporter::default();
    let tracer_provider = SdkTracerProvider::builder()
        .with_simple_exporter(spans.clone())
        .build();
    tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(tracer_provider.tracer("connect-test")))
        .try_init()
        .expect("this test binary installs the only subscriber");
    let metrics = InMemoryMetricExporter::default();
    let meter_provider = SdkMeterProvider::builder()
        .with_periodic_exporter(metrics.clone())
        .build();
    // Before the client is built: it takes its instruments from the global meter.
    opentelemetry::global::set_meter_provider(meter_provider.clone());

    // The payer records the traceparent of every request it gets.
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let recorded = Arc::clone(&seen);
    let router: Router = CoreServer::new(Arc::new(UnavailableOnce::default()))
        .router("/core")
        .layer(axum::middleware::map_request(
            move |request: axum::extract::Request| {
                let recorded = Arc::clone(&recorded);
                async move {
                    let traceparent = request
                        .headers()
                        .get("traceparent")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("none")
                        .to_owned();
                    recorded.lock().unwrap().push(traceparent);
                    request
                }
            },
        ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });

    let mut http = CoreHttpConfig::new(format!("http://{addr}/core"));
    http.request_timeout_ms = 5_000;
    let config = PayerConnection {
        payer_id: "ACME".into(),
        sender_id: "MEDBILL01".into(),
        receiver_id: "ACMEHEALTH".into(),
        transport: TransportConfig::CoreHttp(http),
        batch_transport: None,
        retry: RetryPolicy {
            max_attempts: 3,
            initial_backoff_ms: 10,
            max_backoff_ms: 50,
            multiplier: 2,
            jitter: true,
        },
    };
    let connections = Connections::open([&config]).unwrap();
    let connection = connections.get("ACME").unwrap();

    let caller = tracing::info_span!("eligibility-check");
    let caller_context = caller.context().span().span_context().clone();
    let response = connection
        .exchange(
            PayloadType::X12_270_REQUEST,
            Bytes::from_static(b"ISA*270~IEA~"),
        )
        .instrument(caller)
        .await
        .unwrap();
    assert_eq!(response.attempts, 2, "one 503, then the answer");

    let trace_id = caller_context.trace_id();
    let mut attempts: Vec<SpanData> = spans
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .filter(|s| s.span_context.trace_id() == trace_id && s.span_kind == SpanKind::Client)
        .collect();
    attempts.sort_by_key(|s| s.start_time);
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    let traceparents = seen.lock().unwrap().clone();
    assert_eq!(traceparents.len(), 2);
    for (span, traceparent) in attempts.iter().zip(&traceparents) {
        assert_eq!(span.name, "POST");
        assert_eq!(span.parent_span_id, caller_context.span_id());
        assert_eq!(attr(span, "payer_id"), Some(Value::from("ACME")));
        assert_eq!(attr(span, "server.address"), Some(Value::from("127.0.0.1")));
        assert_eq!(
            attr(span, "server.port"),
            Some(Value::I64(i64::from(addr.port())))
        );
        // The payer received this attempt's own span as the parent.
        assert_eq!(
            traceparent,
            &format!("00-{trace_id}-{}-01", span.span_context.span_id())
        );
    }
    assert_eq!(
        attr(&attempts[0], "http.response.status_code"),
        Some(Value::I64(503))
    );
    assert_eq!(
        attr(&attempts[0], "error.type"),
        Some(Value::from("http_error"))
    );
    assert!(matches!(
        attempts[0].status,
        opentelemetry::trace::Status::Error { .. }
    ));
    assert_eq!(
        attr(&attempts[1], "http.response.status_code"),
        Some(Value::I64(200))
    );
    assert_eq!(attr(&attempts[1], "error.type"), None);

    meter_provider.force_flush().unwrap();
    let exported = metrics.get_finished_metrics().unwrap();
    let last = exported.last().expect("one export");
    assert_eq!(counter(last, "medbill.payer.requests", "ok"), Some(1));
    assert_eq!(
        counter(last, "medbill.payer.requests", "http_error"),
        Some(1)
    );
    assert_eq!(counter(last, "medbill.payer.requests", "timeout"), None);
    assert_eq!(histogram_count(last, "medbill.payer.duration"), 2);
}
