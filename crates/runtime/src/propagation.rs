//! W3C trace-context propagation across gRPC.
//!
//! Server side, [`GrpcTraceLayer`] opens one span per call, named after the gRPC method, and
//! gives it the remote parent from the inbound `traceparent`/`tracestate` headers while the
//! span is still unbuilt: tracing-opentelemetry >= 0.32 refuses to change the parent once the
//! span has started, so the parent is set right after creation and before the span is first
//! entered. The span is created as an explicit root (`parent: None`) so that whatever span
//! happens to be current in the accepting task cannot become its parent.
//!
//! Client side, [`TraceContextInterceptor`] (or [`inject_context`]) writes the current span's
//! context into the outgoing metadata.
//!
//! Spans carry only the method and gRPC status (and, after auth, the tenant id): no request
//! data, so no PHI.

use std::task::{Context, Poll};

use futures::future::BoxFuture;
use opentelemetry::propagation::{Extractor, Injector};
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::service::Interceptor;
use tower::{Layer, Service};
use tracing::Instrument as _;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Name of the health service, whose spans are DEBUG so probes do not flood traces.
const HEALTH_SERVICE: &str = "grpc.health.v1.Health";
/// Longest service or method name copied into a span (paths are caller-controlled).
const MAX_NAME_LEN: usize = 128;

/// Reads propagation headers from an HTTP header map.
struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Writes propagation headers into gRPC metadata.
struct MetadataInjector<'a>(&'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// Splits `/pkg.Service/Method` into service and method; anything else is `("unknown", "unknown")`.
fn split_path(path: &str) -> (&str, &str) {
    let valid = |s: &str| {
        !s.is_empty()
            && s.len() <= MAX_NAME_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
    };
    match path.strip_prefix('/').and_then(|p| p.split_once('/')) {
        Some((service, method)) if valid(service) && valid(method) => (service, method),
        _ => ("unknown", "unknown"),
    }
}

/// Creates the server span for a call to `path`, parented on the context in `headers`.
pub fn server_span(path: &str, headers: &http::HeaderMap) -> Span {
    let (service, method) = split_path(path);
    let name = format!("{service}/{method}");
    let span = if service == HEALTH_SERVICE {
        tracing::debug_span!(
            parent: None,
            "grpc.server",
            otel.name = %name,
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            tenant = tracing::field::Empty,
        )
    } else {
        tracing::info_span!(
            parent: None,
            "grpc.server",
            otel.name = %name,
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            tenant = tracing::field::Empty,
        )
    };
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        // Extract onto an empty context: plain `extract` starts from the current context and
        // would make whatever span is active in this task the parent of a header-less call.
        propagator.extract_with_context(&opentelemetry::Context::new(), &HeaderExtractor(headers))
    });
    // Fails only when the span is disabled or no OpenTelemetry layer is installed; then there
    // is nothing to parent.
    let _ = span.set_parent(parent);
    span
}

/// Records the gRPC status of a trailers-only response (how tonic answers handler errors) on
/// the span. Statuses sent in trailers after a streamed body are not seen here.
fn record_status(span: &Span, headers: &http::HeaderMap) {
    let Some(code) = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
    else {
        return;
    };
    span.record("rpc.grpc.status_code", code);
    // Server-side error codes per the OpenTelemetry RPC conventions.
    let server_error = matches!(
        tonic::Code::from_i32(code),
        tonic::Code::Unknown
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Unimplemented
            | tonic::Code::Internal
            | tonic::Code::Unavailable
            | tonic::Code::DataLoss
    );
    if server_error {
        span.record("otel.status_code", "error");
    }
}

/// Tower layer that traces every inbound gRPC call (see the module docs).
#[derive(Clone, Copy, Debug, Default)]
pub struct GrpcTraceLayer;

impl<S> Layer<S> for GrpcTraceLayer {
    type Service = GrpcTraceService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcTraceService { inner }
    }
}

/// Service produced by [`GrpcTraceLayer`].
#[derive(Clone, Debug)]
pub struct GrpcTraceService<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for GrpcTraceService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let span = server_span(req.uri().path(), req.headers());
        // Inner layers (auth) run their synchronous part inside the span too.
        let future = span.in_scope(|| self.inner.call(req));
        let status_span = span.clone();
        Box::pin(
            async move {
                let result = future.await;
                if let Ok(response) = &result {
                    record_status(&status_span, response.headers());
                }
                result
            }
            .instrument(span),
        )
    }
}

/// Writes the current span's trace context into `metadata` (`traceparent`, `tracestate`).
pub fn inject_context(metadata: &mut MetadataMap) {
    let context = Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut MetadataInjector(metadata));
    });
}

/// Client interceptor that propagates the current trace context on every outgoing call.
#[derive(Clone, Copy, Debug, Default)]
pub struct TraceContextInterceptor;

impl Interceptor for TraceContextInterceptor {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        inject_context(request.metadata_mut());
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::testing;
    use opentelemetry::trace::{SpanId, SpanKind, TraceContextExt as _, TraceId};
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicU64, Ordering};
    use tower::ServiceExt as _;

    /// Returns a trace id no other test uses (tests share one exporter).
    fn fresh_ids() -> (TraceId, SpanId) {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        (
            TraceId::from_bytes(((0x5eed_0000_u128 << 64) | u128::from(n)).to_be_bytes()),
            SpanId::from_bytes((0xabcd_0000_0000_0000_u64 | n).to_be_bytes()),
        )
    }

    fn attr(span: &opentelemetry_sdk::trace::SpanData, key: &str) -> Option<String> {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.as_str().into_owned())
    }

    #[tokio::test]
    async fn inbound_traceparent_becomes_the_parent_of_the_server_span() {
        let _ = testing::span_exporter();
        let (trace_id, remote_parent) = fresh_ids();
        let traceparent = format!("00-{trace_id}-{remote_parent}-01");

        let inner = tower::service_fn(|_req: http::Request<()>| async {
            // The handler runs inside the request span.
            let seen = Span::current().context().span().span_context().trace_id();
            let mut response = http::Response::new(());
            response.extensions_mut().insert(seen);
            response
                .headers_mut()
                .insert("grpc-status", http::HeaderValue::from_static("5"));
            Ok::<_, Infallible>(response)
        });
        let request = http::Request::builder()
            .uri("/medbill.claims.v1.ClaimsService/GetClaim")
            .header("traceparent", traceparent)
            .body(())
            .unwrap();
        let response = GrpcTraceLayer.layer(inner).oneshot(request).await.unwrap();
        assert_eq!(response.extensions().get::<TraceId>(), Some(&trace_id));

        let spans = testing::spans_of_trace(trace_id);
        assert_eq!(spans.len(), 1, "{spans:?}");
        let span = &spans[0];
        assert_eq!(span.name, "medbill.claims.v1.ClaimsService/GetClaim");
        assert_eq!(span.parent_span_id, remote_parent);
        assert_eq!(span.span_kind, SpanKind::Server);
        assert_eq!(attr(span, "rpc.system").as_deref(), Some("grpc"));
        assert_eq!(
            attr(span, "rpc.service").as_deref(),
            Some("medbill.claims.v1.ClaimsService")
        );
        assert_eq!(attr(span, "rpc.method").as_deref(), Some("GetClaim"));
        assert_eq!(attr(span, "rpc.grpc.status_code").as_deref(), Some("5"));
    }

    #[tokio::test]
    async fn server_span_ignores_the_current_span_and_starts_a_new_trace_without_headers() {
        let _ = testing::span_exporter();
        let outer = tracing::info_span!("unrelated-outer");
        let outer_trace = outer.context().span().span_context().trace_id();
        let inner = tower::service_fn(|_req: http::Request<()>| async {
            let mut response = http::Response::new(());
            let id = Span::current().context().span().span_context().trace_id();
            response.extensions_mut().insert(id);
            Ok::<_, Infallible>(response)
        });
        let request = http::Request::builder().uri("/x.Y/Z").body(()).unwrap();
        let response = GrpcTraceLayer
            .layer(inner)
            .oneshot(request)
            .instrument(outer)
            .await
            .unwrap();
        let seen = *response.extensions().get::<TraceId>().unwrap();
        assert_ne!(seen, TraceId::INVALID);
        assert_ne!(
            seen, outer_trace,
            "the accepting task's span must not be the parent"
        );
    }

    #[test]
    fn client_interceptor_injects_the_current_span() {
        let _ = testing::span_exporter();
        let span = tracing::info_span!("caller");
        let _entered = span.enter();
        let context = span.context();
        let span_context = context.span().span_context().clone();
        let request = TraceContextInterceptor
            .call(tonic::Request::new(()))
            .unwrap();
        let traceparent = request
            .metadata()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .unwrap()
            .to_owned();
        assert_eq!(
            traceparent,
            format!(
                "00-{}-{}-01",
                span_context.trace_id(),
                span_context.span_id()
            )
        );
    }

    #[test]
    fn no_current_span_injects_nothing() {
        let _ = testing::span_exporter();
        let request = TraceContextInterceptor
            .call(tonic::Request::new(()))
            .unwrap();
        assert!(request.metadata().get("traceparent").is_none());
    }

    #[test]
    fn paths_are_split_and_garbage_is_unknown() {
        assert_eq!(split_path("/a.b.C/Do"), ("a.b.C", "Do"));
        assert_eq!(split_path("/nope"), ("unknown", "unknown"));
        assert_eq!(split_path("/a b/c"), ("unknown", "unknown"));
        let long = format!("/{}/M", "x".repeat(500));
        assert_eq!(split_path(&long), ("unknown", "unknown"));
    }
}
