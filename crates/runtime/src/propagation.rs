//! W3C trace-context propagation across gRPC, and the spans and metrics of every call.
//!
//! Server side, [`GrpcTraceLayer`] opens one span per call, named after the gRPC method, and
//! gives it the remote parent from the inbound `traceparent`/`tracestate` headers while the
//! span is still unbuilt: tracing-opentelemetry >= 0.32 refuses to change the parent once the
//! span has started, so the parent is set right after creation and before the span is first
//! entered. The span is created as an explicit root (`parent: None`) so that whatever span
//! happens to be current in the accepting task cannot become its parent. The same layer feeds
//! the `rpc.server.*` metrics ([`crate::metrics::RpcInstruments`]).
//!
//! Client side, [`crate::client::connect`] wraps the channel in [`ClientTraceLayer`]: one
//! client span per outgoing call (a child of the caller's current span) whose context is sent
//! in the `traceparent` header, and the `rpc.client.*` metrics. [`TraceContextInterceptor`]
//! (or [`inject_context`]) only writes the current span's context into the outgoing metadata.
//!
//! A call lasts until its response body ends: the gRPC status of a successful unary call
//! arrives in the trailers, after the message, so spans and durations are recorded when the
//! body is finished (or dropped, which reads as CANCELLED). Health checks and reflection are
//! neither traced nor counted: they are probe and tooling noise.
//!
//! Spans carry only the method and gRPC status (and, after auth, the tenant id): no request
//! data, so no PHI.

use std::task::{Context, Poll};
use std::time::Instant;

use futures::future::BoxFuture;
use http_body_util::BodyExt as _;
use opentelemetry::propagation::{Extractor, Injector};
use tonic::body::Body;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::service::Interceptor;
use tower::{Layer, Service};
use tracing::Instrument as _;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::metrics::{RpcInstruments, RpcSide};

/// Service name prefixes of calls that get no span and no metrics.
const UNTRACED_PREFIXES: [&str; 2] = ["/grpc.health.v1.Health/", "/grpc.reflection."];
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

/// Writes propagation headers into an HTTP header map.
pub struct HeaderInjector<'a>(pub &'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Writes `span`'s trace context into HTTP headers (replacing any there).
pub fn inject_span_context(span: &Span, headers: &mut http::HeaderMap) {
    let context = span.context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut HeaderInjector(headers));
    });
}

/// Splits `/pkg.Service/Method` into service and method; anything else is `("unknown", "unknown")`,
/// so a caller cannot mint metric labels or limiter keys of its own.
pub(crate) fn split_path(path: &str) -> (&str, &str) {
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

/// Reports whether calls to `path` go without span and metrics (health, reflection).
pub fn is_untraced(path: &str) -> bool {
    UNTRACED_PREFIXES
        .iter()
        .any(|prefix| path.starts_with(prefix))
}

/// Creates the server span for a call to `path`, parented on the context in `headers`.
pub fn server_span(path: &str, headers: &http::HeaderMap) -> Span {
    let (service, method) = split_path(path);
    let name = format!("{service}/{method}");
    let span = tracing::info_span!(
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
    );
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

/// Creates the client span for an outgoing call to `path` on `server` (`host:port`), a child
/// of the current span.
pub fn client_span(path: &str, server: &str) -> Span {
    let (service, method) = split_path(path);
    let name = format!("{service}/{method}");
    tracing::info_span!(
        "grpc.client",
        otel.name = %name,
        otel.kind = "client",
        rpc.system = "grpc",
        rpc.service = %service,
        rpc.method = %method,
        server.address = %server,
        rpc.grpc.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    )
}

/// Reads the numeric `grpc-status` of a header or trailer map.
fn grpc_status(headers: &http::HeaderMap) -> Option<i32> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
}

/// Reports whether `code` makes the span an error: any failure for a client, only the
/// server-side codes for a server (OpenTelemetry RPC conventions).
fn is_error(code: i32, side: RpcSide) -> bool {
    let code = tonic::Code::from_i32(code);
    match side {
        RpcSide::Client => code != tonic::Code::Ok,
        RpcSide::Server => matches!(
            code,
            tonic::Code::Unknown
                | tonic::Code::DeadlineExceeded
                | tonic::Code::Unimplemented
                | tonic::Code::Internal
                | tonic::Code::Unavailable
                | tonic::Code::DataLoss
        ),
    }
}

/// One call in progress: records its status on the span and in the metrics when dropped,
/// which is when the response body is finished or abandoned.
struct CallRecord {
    span: Span,
    instruments: RpcInstruments,
    side: RpcSide,
    service: String,
    method: String,
    started: Instant,
    status: Option<i32>,
}

impl CallRecord {
    fn start(span: Span, instruments: RpcInstruments, side: RpcSide, path: &str) -> Self {
        let (service, method) = split_path(path);
        instruments.started(service, method);
        Self {
            span,
            instruments,
            side,
            service: service.to_owned(),
            method: method.to_owned(),
            started: Instant::now(),
            status: None,
        }
    }

    /// Sets the status of a call that got no response.
    fn set_status(&mut self, code: tonic::Code) {
        self.status = Some(code as i32);
    }

    /// Takes the status from response headers (trailers-only answer) or trailers.
    fn observe(&mut self, headers: &http::HeaderMap) {
        if let Some(code) = grpc_status(headers) {
            self.status = Some(code);
        }
    }
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        // No status seen: the body was dropped before its trailers (the peer went away).
        let code = self.status.unwrap_or(tonic::Code::Cancelled as i32);
        self.span.record("rpc.grpc.status_code", code);
        if is_error(code, self.side) {
            self.span.record("otel.status_code", "error");
        }
        self.instruments
            .finished(&self.service, &self.method, code, self.started.elapsed());
    }
}

/// Wraps `response`'s body so that `record` sees its trailers and is dropped with it.
fn observe_body<B>(response: http::Response<B>, mut record: CallRecord) -> http::Response<Body>
where
    B: tonic::codegen::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError>,
{
    record.observe(response.headers());
    response.map(|body| {
        Body::new(body.map_frame(move |frame| {
            if let Some(trailers) = frame.trailers_ref() {
                record.observe(trailers);
            }
            frame
        }))
    })
}

/// Tower layer that traces and measures every inbound gRPC call (see the module docs).
#[derive(Clone, Debug)]
pub struct GrpcTraceLayer {
    instruments: RpcInstruments,
}

impl GrpcTraceLayer {
    /// Builds the layer recording into `instruments`.
    pub fn new(instruments: RpcInstruments) -> Self {
        Self { instruments }
    }
}

impl Default for GrpcTraceLayer {
    /// Records into the global meter's `rpc.server.*` instruments.
    fn default() -> Self {
        Self::new(RpcInstruments::global(RpcSide::Server))
    }
}

impl<S> Layer<S> for GrpcTraceLayer {
    type Service = GrpcTraceService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcTraceService {
            inner,
            instruments: self.instruments.clone(),
        }
    }
}

/// Service produced by [`GrpcTraceLayer`].
#[derive(Clone, Debug)]
pub struct GrpcTraceService<S> {
    inner: S,
    instruments: RpcInstruments,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for GrpcTraceService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: tonic::codegen::Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<tonic::codegen::StdError>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let path = req.uri().path().to_owned();
        if is_untraced(&path) {
            let future = self.inner.call(req);
            return Box::pin(async move { Ok(future.await?.map(Body::new)) });
        }
        let span = server_span(&path, req.headers());
        let record = CallRecord::start(
            span.clone(),
            self.instruments.clone(),
            RpcSide::Server,
            &path,
        );
        // Inner layers (auth) run their synchronous part inside the span too.
        let future = span.in_scope(|| self.inner.call(req));
        Box::pin(
            async move {
                // A call abandoned before its response drops `record` here: CANCELLED.
                let response = future.await?;
                Ok(observe_body(response, record))
            }
            .instrument(span),
        )
    }
}

/// Tower layer for outgoing calls: a client span per call, its context in `traceparent`, and
/// the `rpc.client.*` metrics (see the module docs).
#[derive(Clone, Debug)]
pub struct ClientTraceLayer {
    server: std::sync::Arc<str>,
    instruments: RpcInstruments,
}

impl ClientTraceLayer {
    /// Builds the layer for calls to `server` (`host:port`, recorded as `server.address`),
    /// recording into the global meter's `rpc.client.*` instruments.
    pub fn new(server: &str) -> Self {
        Self {
            server: server.into(),
            instruments: RpcInstruments::global(RpcSide::Client),
        }
    }
}

impl<S> Layer<S> for ClientTraceLayer {
    type Service = ClientTraceService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientTraceService {
            inner,
            server: self.server.clone(),
            instruments: self.instruments.clone(),
        }
    }
}

/// Service produced by [`ClientTraceLayer`].
#[derive(Clone, Debug)]
pub struct ClientTraceService<S> {
    inner: S,
    server: std::sync::Arc<str>,
    instruments: RpcInstruments,
}

impl<S, ResBody> Service<http::Request<Body>> for ClientTraceService<S>
where
    S: Service<http::Request<Body>, Response = http::Response<ResBody>>,
    S::Error: Into<tonic::codegen::StdError>,
    S::Future: Send + 'static,
    ResBody: tonic::codegen::Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<tonic::codegen::StdError>,
{
    type Response = http::Response<Body>;
    type Error = tonic::codegen::StdError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: http::Request<Body>) -> Self::Future {
        let path = req.uri().path().to_owned();
        if is_untraced(&path) {
            let future = self.inner.call(req);
            return Box::pin(async move {
                match future.await {
                    Ok(response) => Ok(response.map(Body::new)),
                    Err(err) => Err(err.into()),
                }
            });
        }
        let span = client_span(&path, &self.server);
        inject_span_context(&span, req.headers_mut());
        let mut record = CallRecord::start(
            span.clone(),
            self.instruments.clone(),
            RpcSide::Client,
            &path,
        );
        let future = span.in_scope(|| self.inner.call(req));
        Box::pin(
            async move {
                match future.await {
                    Ok(response) => Ok(observe_body(response, record)),
                    Err(err) => {
                        // tonic reports a transport failure as UNAVAILABLE.
                        record.set_status(tonic::Code::Unavailable);
                        Err(err.into())
                    }
                }
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
            let mut response = http::Response::new(Body::empty());
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
        let response = GrpcTraceLayer::default()
            .layer(inner)
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.extensions().get::<TraceId>(), Some(&trace_id));
        // The call ends with its body.
        drop(response);

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
            let mut response = http::Response::new(Body::empty());
            let id = Span::current().context().span().span_context().trace_id();
            response.extensions_mut().insert(id);
            Ok::<_, Infallible>(response)
        });
        let request = http::Request::builder().uri("/x.Y/Z").body(()).unwrap();
        let response = GrpcTraceLayer::default()
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

    #[tokio::test]
    async fn health_and_reflection_calls_get_no_span() {
        let _ = testing::span_exporter();
        for path in [
            "/grpc.health.v1.Health/Check",
            "/grpc.health.v1.Health/Watch",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        ] {
            assert!(is_untraced(path), "{path}");
            let inner = tower::service_fn(|_req: http::Request<()>| async {
                let mut response = http::Response::new(Body::empty());
                response.extensions_mut().insert(Span::current().id());
                Ok::<_, Infallible>(response)
            });
            let request = http::Request::builder().uri(path).body(()).unwrap();
            let response = GrpcTraceLayer::default()
                .layer(inner)
                .oneshot(request)
                .await
                .unwrap();
            assert_eq!(
                response.extensions().get::<Option<tracing::span::Id>>(),
                Some(&None),
                "{path} ran inside a span"
            );
        }
        assert!(!is_untraced("/medbill.claims.v1.ClaimsService/GetClaim"));
        assert!(!is_untraced("/grpc.healthy.Fake/Check"));
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
