//! JSON log lines join their traces: a line logged inside an RPC carries the trace id and span
//! id of the RPC's server span. Logs go to a buffer through the production JSON layer, spans to
//! the SDK's in-memory exporter; this binary installs its own global subscriber.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use medbill_runtime::config::{AuthConfig, GrpcConfig};
use medbill_runtime::telemetry;
use opentelemetry::trace::{SpanKind, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tonic::Request;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

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

impl Captured {
    fn lines(&self) -> Vec<serde_json::Value> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect()
    }
}

#[tokio::test]
async fn a_json_log_line_inside_an_rpc_carries_the_trace_id_of_its_span() {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("logs-test")))
        .with(telemetry::json_log_layer(move || writer.clone()).with_filter(LevelFilter::INFO))
        .try_init()
        .expect("this test binary installs the only subscriber");

    tracing::info!("outside any span");
    let handle = start(
        Whoami::default(),
        &AuthConfig::default(),
        &GrpcConfig::default(),
    )
    .await;
    assert_eq!(
        whoami(channel(&handle), Request::new(String::new()))
            .await
            .unwrap(),
        "default"
    );
    handle.shutdown().await.unwrap();

    let lines = logs.lines();
    let outside = lines
        .iter()
        .find(|l| l["fields"]["message"] == "outside any span")
        .expect("the line outside any span");
    assert!(outside.get("trace_id").is_none(), "{outside}");
    assert!(outside.get("span_id").is_none(), "{outside}");

    let answered = lines
        .iter()
        .find(|l| l["fields"]["message"] == "whoami answered")
        .unwrap_or_else(|| panic!("no log line of the handler in {lines:#?}"));
    // The usual JSON fields are all still there.
    assert_eq!(answered["level"], "INFO");
    assert_eq!(answered["fields"]["tenant"], "default");
    assert_eq!(answered["span"]["name"], "grpc.server");
    assert!(answered["timestamp"].is_string(), "{answered}");
    let trace_id = answered["trace_id"].as_str().expect("trace_id").to_owned();
    let span_id = answered["span_id"].as_str().expect("span_id").to_owned();
    assert_eq!(trace_id.len(), 32, "{trace_id}");
    assert_eq!(span_id.len(), 16, "{span_id}");

    // Spans end when their response body is finished; wait for both (bounded).
    let mut spans = Vec::new();
    for _ in 0..200 {
        spans = exporter.get_finished_spans().unwrap();
        if spans.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let server = spans
        .iter()
        .find(|s| s.span_kind == SpanKind::Server && s.name == "medbill.test.Whoami/Get")
        .unwrap_or_else(|| panic!("no server span in {spans:#?}"));
    assert_eq!(server.span_context.trace_id().to_string(), trace_id);
    assert_eq!(server.span_context.span_id().to_string(), span_id);
    // The client span of the call is in the same trace.
    let client = spans
        .iter()
        .find(|s| s.span_kind == SpanKind::Client)
        .expect("client span");
    assert_eq!(client.span_context.trace_id().to_string(), trace_id);
    assert_eq!(server.parent_span_id, client.span_context.span_id());
}
