//! gRPC server bootstrap: health, reflection, tracing, auth, per-tenant limits, deadlines and graceful
//! shutdown around a set of service routes.
//!
//! ```no_run
//! # async fn run(routes: tonic::service::Routes, fds: &'static [u8]) -> Result<(), Box<dyn std::error::Error>> {
//! use medbill_runtime::{auth::Authenticator, config::Config, server::{Server, shutdown_signal}};
//! let config = Config::default();
//! let listener = tokio::net::TcpListener::bind(config.listen).await?;
//! let handle = Server::new(routes)
//!     .descriptor_set(fds)
//!     .serving("medbill.claims.v1.ClaimsService")
//!     .grpc_config(&config.grpc)
//!     .authenticator(Authenticator::from_config(&config.auth)?)
//!     .start(listener).await?;
//! println!("listening on {}", handle.local_addr());
//! handle.run_until(shutdown_signal()).await?;
//! # Ok(()) }
//! ```
//!
//! Message-size limits are a property of each generated service type in tonic, so service
//! routes must apply them when they are built, with [`crate::with_grpc_limits!`]; the server
//! applies them to health and reflection itself; an oversized message is answered
//! OUT_OF_RANGE (tonic's code for it). The default deadline (`grpc.request_timeout_ms`)
//! applies to every call; a shorter `grpc-timeout` sent by the client wins. When it passes,
//! the handler future is dropped and the call answers DEADLINE_EXCEEDED (see
//! [`DeadlineLayer`]).
//!
//! A request message that does not decode (garbage, truncated, invalid UTF-8 in a string
//! field) answers INVALID_ARGUMENT naming what prost could not read, for every service: tonic
//! itself answers INTERNAL, which [`DecodeErrorLayer`] corrects.
//!
//! Every call but health and reflection gets a server span and the `rpc.server.*` metrics
//! ([`GrpcTraceLayer`]), and, with an [`AuditTrail`], an audit record ([`AuditLayer`]); the
//! audit service (`ListAuditEvents`) is then served beside health.
//!
//! Shutdown: health turns NOT_SERVING for every service, the server waits
//! `grpc.shutdown_grace_ms`, stops accepting, and lets in-flight calls finish (HTTP/2 GOAWAY)
//! for at most `grpc.drain_timeout_ms`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use tower::{Layer, Service};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::audit::{AuditApi, AuditLayer, AuditTrail};
use crate::auth::{AuthLayer, Authenticator};
use crate::config::{DEFAULT_TENANT, GrpcConfig};
use crate::limits::{LimitLayer, LimitsConfig};
use crate::propagation::GrpcTraceLayer;
use crate::scopes::{ScopeLayer, ScopeTable};
use crate::tls::ReloadingAcceptor;

/// Health service name, always registered.
pub const HEALTH_SERVICE_NAME: &str = "grpc.health.v1.Health";

/// Applies `GrpcConfig`'s message-size limits to a generated tonic server or client:
/// `with_grpc_limits!(ClaimsServiceServer::new(svc), &config.grpc)`.
#[macro_export]
macro_rules! with_grpc_limits {
    ($service:expr, $limits:expr) => {{
        let limits: &$crate::config::GrpcConfig = $limits;
        $service
            .max_decoding_message_size(limits.max_decoding_message_size)
            .max_encoding_message_size(limits.max_encoding_message_size)
    }};
}

/// Reports why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A descriptor set given for reflection does not decode.
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The listener has no local address.
    #[error("cannot read the listener's address: {0}")]
    Listener(#[from] std::io::Error),
    /// The transport failed.
    #[error("gRPC transport failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The server task panicked or was cancelled.
    #[error("server task ended abnormally: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Builds and starts a gRPC server for a set of routes.
#[derive(Debug)]
pub struct Server {
    routes: Routes,
    descriptor_sets: Vec<Vec<u8>>,
    serving: Vec<String>,
    grpc: GrpcConfig,
    authenticator: Authenticator,
    limits: LimitsConfig,
    scopes: ScopeTable,
    tls: Option<Arc<ReloadingAcceptor>>,
    audit: Option<AuditTrail>,
}

impl Server {
    /// Starts a builder for `routes` (the medbill services; health and reflection are added),
    /// with default limits and dev-mode auth.
    pub fn new(routes: Routes) -> Self {
        Self {
            routes,
            descriptor_sets: Vec::new(),
            serving: Vec::new(),
            grpc: GrpcConfig::default(),
            authenticator: Authenticator::dev(),
            limits: LimitsConfig::unlimited(),
            scopes: ScopeTable::medbill(),
            tls: None,
            audit: None,
        }
    }

    /// Adds an encoded `FileDescriptorSet` served by reflection (v1 and v1alpha).
    pub fn descriptor_set(mut self, bytes: impl AsRef<[u8]>) -> Self {
        self.descriptor_sets.push(bytes.as_ref().to_vec());
        self
    }

    /// Names a fully qualified service this server serves (e.g.
    /// `medbill.claims.v1.ClaimsService`): reported SERVING by health and listed by
    /// reflection. Without any, reflection lists every service in the descriptor sets.
    pub fn serving(mut self, service_name: impl Into<String>) -> Self {
        self.serving.push(service_name.into());
        self
    }

    /// Sets limits, the default deadline and shutdown timing.
    pub fn grpc_config(mut self, grpc: &GrpcConfig) -> Self {
        self.grpc = grpc.clone();
        self
    }

    /// Sets the token authenticator (default: dev mode).
    pub fn authenticator(mut self, authenticator: Authenticator) -> Self {
        self.authenticator = authenticator;
        self
    }

    /// Sets the per-tenant call limits (default: none; `medbill serve` passes `[limits]`).
    pub fn limits(mut self, limits: LimitsConfig) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the scope table enforced after authentication (default: the medbill table,
    /// [`crate::scopes::RPC_SCOPES`]); servers of other services extend it.
    pub fn scopes(mut self, scopes: ScopeTable) -> Self {
        self.scopes = scopes;
        self
    }

    /// Serves TLS (mutual TLS when the acceptor has a client CA) with certificates reloaded
    /// as they rotate; see [`crate::tls`].
    pub fn tls(mut self, acceptor: Arc<ReloadingAcceptor>) -> Self {
        self.tls = Some(acceptor);
        self
    }

    /// Records every call to the trail's services and serves `ListAuditEvents` over them (see
    /// [`crate::audit`]). Without it nothing is recorded.
    pub fn audit(mut self, trail: AuditTrail) -> Self {
        self.audit = Some(trail);
        self
    }

    /// Starts serving on `listener` in a background task and returns its handle.
    pub async fn start(self, listener: TcpListener) -> Result<ServerHandle, ServerError> {
        let local_addr = listener.local_addr()?;
        if self.authenticator.is_dev_mode() {
            tracing::warn!(
                tenant = DEFAULT_TENANT,
                "auth dev mode: no tokens configured, every call without a token is tenant \"default\""
            );
        }
        if self.authenticator.all_scope_token_count() > 0 {
            tracing::warn!(
                tokens = self.authenticator.all_scope_token_count(),
                "auth.tokens entries carry every scope, privileged ones included; \
                 give each caller only its scopes with [[auth.static_tokens]]"
            );
        }

        let (health, health_service) = tonic_health::server::health_reporter();
        let health_service = with_grpc_limits!(health_service, &self.grpc);

        // Both reflection versions describe every advertised service, themselves included,
        // so clients that list and then describe everything (grpcurl, buf curl) never miss one.
        let builtin = [
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ];
        let mut reflection_v1 = tonic_reflection::server::Builder::configure();
        let mut reflection_v1alpha = tonic_reflection::server::Builder::configure();
        for set in builtin
            .into_iter()
            .chain(self.descriptor_sets.iter().map(Vec::as_slice))
        {
            reflection_v1 = reflection_v1.register_encoded_file_descriptor_set(set);
            reflection_v1alpha = reflection_v1alpha.register_encoded_file_descriptor_set(set);
        }
        if !self.serving.is_empty() {
            let always = [
                HEALTH_SERVICE_NAME,
                "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection",
            ];
            for name in self.serving.iter().map(String::as_str).chain(always) {
                reflection_v1 = reflection_v1.with_service_name(name);
                reflection_v1alpha = reflection_v1alpha.with_service_name(name);
            }
        }
        let reflection_v1 = with_grpc_limits!(reflection_v1.build_v1()?, &self.grpc);
        let reflection_v1alpha = with_grpc_limits!(reflection_v1alpha.build_v1alpha()?, &self.grpc);

        // No `Server::timeout`: tonic answers an expired deadline with CANCELLED, so
        // `DeadlineLayer` enforces it and answers DEADLINE_EXCEEDED instead.
        // HTTP/2 limits a slow or hostile client cannot talk its way around (see `GrpcConfig`).
        let grpc = &self.grpc;
        let every = |ms: u64| (ms > 0).then(|| Duration::from_millis(ms));
        // Dev mode (nothing configured) grants every scope; see `ScopeLayer`.
        let enforce_scopes = !self.authenticator.is_dev_mode();
        let mut builder = tonic::transport::Server::builder()
            .max_concurrent_streams(grpc.max_concurrent_streams)
            .http2_max_header_list_size(grpc.max_header_list_size)
            .http2_max_pending_accept_reset_streams(Some(grpc.max_pending_reset_streams))
            .http2_keepalive_interval(every(grpc.keepalive_interval_ms))
            .http2_keepalive_timeout(every(grpc.keepalive_timeout_ms));
        if grpc.max_connection_age_secs > 0 {
            builder = builder.max_connection_age(Duration::from_secs(grpc.max_connection_age_secs));
        }
        let mut router = builder
            .layer(GrpcTraceLayer::default())
            .layer(DecodeErrorLayer)
            .layer(DeadlineLayer::new(self.grpc.request_timeout()))
            .layer(AuthLayer::new(self.authenticator))
            .layer(LimitLayer::new(self.limits))
            // Inside the limits: a refused flood does not become a flood of audit rows.
            .layer(AuditLayer::new(self.audit.clone().unwrap_or_default()))
            // Inside the audit layer: a call refused for a missing scope is on the record.
            .layer(ScopeLayer::new(self.scopes, enforce_scopes))
            .add_routes(self.routes)
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha);
        if let Some(trail) = &self.audit {
            router = router.add_service(AuditApi::new(trail.clone()).into_server(&self.grpc));
        }

        let (trigger, triggered) = watch::channel(false);
        let serving = self.serving.clone();
        let grace = Duration::from_millis(self.grpc.shutdown_grace_ms);
        let drain = Duration::from_millis(self.grpc.drain_timeout_ms);
        let task_health = health.clone();
        let tls = self.tls.clone();

        // SERVING before returning, so a probe right after `start` sees it.
        set_all(&health, &serving, ServingStatus::Serving).await;
        let task = tokio::spawn(async move {
            let stop_accepting = {
                let mut triggered = triggered.clone();
                let health = task_health.clone();
                let serving = serving.clone();
                async move {
                    wait_triggered(&mut triggered).await;
                    tracing::info!("shutting down: health NOT_SERVING, draining in-flight calls");
                    set_all(&health, &serving, ServingStatus::NotServing).await;
                    tokio::time::sleep(grace).await;
                }
            };
            let serve = match &tls {
                Some(acceptor) => {
                    let reloader = acceptor.spawn_reloader();
                    let incoming = acceptor.incoming(listener);
                    async move {
                        let served = router
                            .serve_with_incoming_shutdown(incoming, stop_accepting)
                            .await;
                        reloader.abort();
                        served
                    }
                    .boxed()
                }
                None => router
                    .serve_with_incoming_shutdown(
                        // Small unary replies must not wait for Nagle's algorithm.
                        TcpIncoming::from(listener)
                            .with_nodelay(Some(true))
                            .with_keepalive(Some(Duration::from_secs(60))),
                        stop_accepting,
                    )
                    .boxed(),
            };
            let mut triggered = triggered;
            let deadline = async move {
                wait_triggered(&mut triggered).await;
                tokio::time::sleep(grace + drain).await;
            };
            tokio::select! {
                result = serve => {
                    tracing::info!("server stopped");
                    result.map_err(ServerError::from)
                }
                () = deadline => {
                    tracing::warn!(
                        drain_timeout_ms = drain.as_millis() as u64,
                        "drain timeout reached; abandoning calls still in flight"
                    );
                    Ok(())
                }
            }
        });

        Ok(ServerHandle {
            local_addr,
            trigger,
            task,
            health,
        })
    }
}

async fn wait_triggered(triggered: &mut watch::Receiver<bool>) {
    // A dropped sender (handle dropped without shutdown) also stops the server.
    let _ = triggered.wait_for(|stop| *stop).await;
}

async fn set_all(health: &HealthReporter, names: &[String], status: ServingStatus) {
    for name in names.iter().map(String::as_str).chain([""]) {
        health.set_service_status(name, status).await;
    }
}

/// A running server: its address, health reporter and shutdown controls.
///
/// Dropping the handle without calling [`ServerHandle::shutdown`] also shuts the server down
/// (gracefully, in the background).
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    trigger: watch::Sender<bool>,
    task: JoinHandle<Result<(), ServerError>>,
    health: HealthReporter,
}

impl ServerHandle {
    /// Returns the address the server listens on (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Returns `http://<local_addr>`, dialable even when bound to 0.0.0.0.
    pub fn url(&self) -> String {
        crate::config::local_url(self.local_addr)
    }

    /// Returns the health reporter, to mark services NOT_SERVING (e.g. when a dependency is
    /// lost) or SERVING again.
    pub fn health(&self) -> &HealthReporter {
        &self.health
    }

    /// Starts graceful shutdown without waiting for it.
    pub fn trigger_shutdown(&self) {
        // send_replace works even when no receiver is left (server already stopped).
        self.trigger.send_replace(true);
    }

    /// Shuts down gracefully and waits until the server has stopped.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        self.trigger_shutdown();
        self.wait().await
    }

    /// Waits until the server stops (after a shutdown was triggered or the transport failed).
    pub async fn wait(self) -> Result<(), ServerError> {
        // The trigger must outlive the wait: dropping it would itself start shutdown.
        let ServerHandle { trigger, task, .. } = self;
        let result = task.await?;
        drop(trigger);
        result
    }

    /// Serves until `signal` completes (e.g. [`shutdown_signal`]), then shuts down gracefully.
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> Result<(), ServerError> {
        let ServerHandle {
            trigger, mut task, ..
        } = self;
        tokio::select! {
            result = &mut task => return result?,
            () = signal => {}
        }
        trigger.send_replace(true);
        task.await?
    }
}

/// Completes on SIGTERM or SIGINT (Ctrl-C); on non-Unix platforms, on Ctrl-C only.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!(signal = "SIGINT", "shutdown signal received"),
        () = terminate => tracing::info!(signal = "SIGTERM", "shutdown signal received"),
    }
}

/// Margin by which the server gives up before the deadline, so its DEADLINE_EXCEEDED reaches
/// the client (and beats tonic's own timer, which would answer CANCELLED).
const DEADLINE_MARGIN: Duration = Duration::from_millis(5);

/// Parses a `grpc-timeout` header value (1-8 digits and a unit: H M S m u n).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let split = value.len().checked_sub(1)?;
    if !value.is_char_boundary(split) {
        return None;
    }
    let (digits, unit) = value.split_at(split);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Tower layer that bounds every call by the shorter of the client's `grpc-timeout` and a
/// server default, answering DEADLINE_EXCEEDED (and dropping the handler) when it passes.
#[derive(Clone, Copy, Debug)]
pub struct DeadlineLayer {
    default: Duration,
}

impl DeadlineLayer {
    /// Builds the layer with the deadline used when the client sends none.
    pub fn new(default: Duration) -> Self {
        Self { default }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = DeadlineService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DeadlineService {
            inner,
            default: self.default,
        }
    }
}

/// Service produced by [`DeadlineLayer`].
#[derive(Clone, Debug)]
pub struct DeadlineService<S> {
    inner: S,
    default: Duration,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for DeadlineService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let client = req
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout);
        let deadline = client.map_or(self.default, |c| c.min(self.default));
        let future = self.inner.call(req);
        Box::pin(async move {
            match tokio::time::timeout(deadline.saturating_sub(DEADLINE_MARGIN), future).await {
                Ok(result) => result,
                Err(_) => {
                    let millis = deadline.as_millis() as u64;
                    tracing::info!(deadline_ms = millis, "call exceeded its deadline");
                    Ok(tonic::Status::deadline_exceeded(format!(
                        "deadline of {millis} ms exceeded"
                    ))
                    .into_http())
                }
            }
        })
    }
}

/// The start of the messages tonic gives a request it cannot decode, and what the client is
/// told instead (tonic 0.14 and prost 0.14 wording, pinned by the tests/grpc.rs decode tests).
const DECODE_FAILURES: [(&str, &str); 3] = [
    // prost: "failed to decode Protobuf message: Type.field: what went wrong"
    ("failed to decode Protobuf message: ", ""),
    // The body ended inside a length-prefixed message.
    (
        "Unexpected EOF decoding stream.",
        "the request ends inside a message",
    ),
    // A unary call whose body holds no message at all.
    ("Missing request message.", "the request holds no message"),
];

/// Returns the INVALID_ARGUMENT message for a decode failure reported as `message`, or None
/// when `message` is no decode failure.
fn decode_failure(message: &str) -> Option<String> {
    DECODE_FAILURES.iter().find_map(|(prefix, replacement)| {
        message.strip_prefix(prefix).map(|detail| {
            let detail = if replacement.is_empty() {
                detail
            } else {
                replacement
            };
            format!("invalid request message: {detail}")
        })
    })
}

/// Tower layer that answers INVALID_ARGUMENT instead of INTERNAL when the request message
/// does not decode.
///
/// tonic decodes the request before the handler runs and answers a failure at once, with the
/// status in the response headers (a trailers-only response), as INTERNAL following gRPC's
/// status code guide; the caller sent bad bytes, so medbill answers INVALID_ARGUMENT, keeping
/// prost's description (type and field, never the value). A client-streaming handler that
/// passes the decoder's status on unchanged is corrected the same way. Other INTERNAL answers
/// are left alone (handlers send a bare "internal error", see [`crate::error`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct DecodeErrorLayer;

impl<S> Layer<S> for DecodeErrorLayer {
    type Service = DecodeErrorService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DecodeErrorService { inner }
    }
}

/// Service produced by [`DecodeErrorLayer`].
#[derive(Clone, Debug)]
pub struct DecodeErrorService<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for DecodeErrorService<S>
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
        let future = self.inner.call(req);
        Box::pin(async move {
            let mut response = future.await?;
            correct_decode_failure(response.headers_mut());
            Ok(response)
        })
    }
}

/// Rewrites a trailers-only INTERNAL decode failure in `headers` to INVALID_ARGUMENT.
fn correct_decode_failure(headers: &mut http::HeaderMap) {
    let Some(status) = tonic::Status::from_header_map(headers) else {
        return;
    };
    if status.code() != tonic::Code::Internal {
        return;
    }
    let Some(message) = decode_failure(status.message()) else {
        return;
    };
    headers.remove("grpc-message");
    headers.remove("grpc-status-details-bin");
    // Only fails for a message that cannot be a header value; ours is percent-encoded.
    if tonic::Status::invalid_argument(message)
        .add_header(headers)
        .is_err()
    {
        headers.insert(
            "grpc-status",
            http::HeaderValue::from(tonic::Code::InvalidArgument as i32),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_failures_become_invalid_argument_with_prosts_description() {
        let mut headers = http::HeaderMap::new();
        tonic::Status::internal(
            "failed to decode Protobuf message: StringValue.value: invalid string value: \
             data is not UTF-8 encoded",
        )
        .add_header(&mut headers)
        .unwrap();
        correct_decode_failure(&mut headers);
        let status = tonic::Status::from_header_map(&headers).unwrap();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "invalid request message: StringValue.value: invalid string value: \
             data is not UTF-8 encoded"
        );

        let mut headers = http::HeaderMap::new();
        tonic::Status::internal("Unexpected EOF decoding stream.")
            .add_header(&mut headers)
            .unwrap();
        correct_decode_failure(&mut headers);
        let status = tonic::Status::from_header_map(&headers).unwrap();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "invalid request message: the request ends inside a message"
        );
    }

    #[test]
    fn other_statuses_are_left_alone() {
        for status in [
            tonic::Status::internal("internal error"),
            tonic::Status::not_found("claim 1 not found"),
            tonic::Status::unavailable("failed to decode Protobuf message: upstream said so"),
        ] {
            let mut headers = http::HeaderMap::new();
            status.add_header(&mut headers).unwrap();
            let before = headers.clone();
            correct_decode_failure(&mut headers);
            assert_eq!(headers, before, "{status:?}");
        }
        let mut empty = http::HeaderMap::new();
        correct_decode_failure(&mut empty);
        assert!(empty.is_empty());
    }

    #[test]
    fn grpc_timeout_values_parse() {
        assert_eq!(parse_grpc_timeout("100m"), Some(Duration::from_millis(100)));
        assert_eq!(
            parse_grpc_timeout("1500000u"),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_grpc_timeout("20000000n"),
            Some(Duration::from_millis(20))
        );
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        for bad in ["", "m", "123456789m", "10x", "-1S", "1.5S", "1é"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad}");
        }
    }
}
