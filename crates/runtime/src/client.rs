//! Service-to-service gRPC clients: lazy channels with timeouts, a client span per call whose
//! context travels in `traceparent` (and the `rpc.client.*` metrics), an interceptor that sets
//! a default deadline and credentials, and retries for idempotent calls.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use medbill_runtime::{client, config::ClientConfig};
//! let config = ClientConfig::default();
//! let channel = client::connect("http://127.0.0.1:50051", &config)?;
//! // let mut claims = ClaimsServiceClient::new(channel);
//! // let claim = client::retry_idempotent(&config.retry, || {
//! //     let mut claims = claims.clone();
//! //     async move { claims.get_claim(GetClaimRequest { .. }).await }
//! // }).await?;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::hash::{BuildHasher as _, Hasher as _};
use std::time::Duration;

use tonic::Status;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tower::Layer as _;

use crate::config::{ClientConfig, RetryPolicy, Secret};
use crate::propagation::{ClientTraceLayer, ClientTraceService};

/// A channel whose calls go through [`ClientInterceptor`], each in a client span
/// ([`ClientTraceService`]), and whose local timeouts read as DEADLINE_EXCEEDED; generated
/// clients accept it: `ClaimsServiceClient::new(channel)`.
pub type TracedChannel =
    InterceptedService<ClientTraceService<DeadlineAsStatus<Channel>>, ClientInterceptor>;

/// Reports a client that cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL does not parse as a URI.
    #[error("invalid service URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// A `[client.tls]` file cannot be used for an `https://` endpoint.
    #[error("TLS for {url}: {source}")]
    Tls {
        /// The endpoint.
        url: String,
        /// The file at fault.
        source: crate::tls::TlsError,
    },
}

/// The endpoint of `url` with the configured connect and request timeouts and, for an
/// `https://` URL, the `[client.tls]` trust and client certificate.
pub fn endpoint(url: &str, config: &ClientConfig) -> Result<Endpoint, ClientError> {
    let invalid = |reason: String| ClientError::InvalidUrl {
        url: url.to_owned(),
        reason,
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(invalid("must start with http:// or https://".to_owned()));
    }
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|err| invalid(err.to_string()))?
        .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
        .timeout(Duration::from_millis(config.request_timeout_ms))
        .tcp_nodelay(true);
    if !url.starts_with("https://") {
        return Ok(endpoint);
    }
    let host = endpoint.uri().host().unwrap_or_default().to_owned();
    let tls = crate::tls::client_tls(&config.tls, &host).map_err(|source| ClientError::Tls {
        url: url.to_owned(),
        source,
    })?;
    endpoint
        .tls_config(tls)
        .map_err(|err| invalid(err.to_string()))
}

/// Builds a channel to `url` that connects on first use (so services may start in any
/// order), with the configured connect timeout and per-request timeout. Must be called
/// inside a Tokio runtime.
pub fn connect_channel(url: &str, config: &ClientConfig) -> Result<Channel, ClientError> {
    Ok(endpoint(url, config)?.connect_lazy())
}

/// Builds a lazy channel to `url` wrapped in a [`ClientInterceptor`] using `config`'s token,
/// tracing and measuring every call (see [`ClientTraceLayer`]), with local timeouts reported
/// as DEADLINE_EXCEEDED (see [`DeadlineAsStatus`]).
pub fn connect(url: &str, config: &ClientConfig) -> Result<TracedChannel, ClientError> {
    let channel = connect_channel(url, config)?;
    // `connect_channel` accepted the URL, so it has an authority.
    let server = url
        .parse::<http::Uri>()
        .ok()
        .and_then(|uri| uri.authority().map(|a| a.as_str().to_owned()))
        .unwrap_or_default();
    let traced = ClientTraceLayer::new(&server).layer(DeadlineAsStatus::new(channel));
    Ok(InterceptedService::new(
        traced,
        ClientInterceptor::new(config),
    ))
}

/// Wraps a channel so that a call cut off by the client's own timer (tonic reports it as
/// CANCELLED "Timeout expired") answers DEADLINE_EXCEEDED, the code gRPC prescribes and the
/// one [`retry_idempotent`] and callers check for.
#[derive(Clone, Debug)]
pub struct DeadlineAsStatus<S> {
    inner: S,
}

impl<S> DeadlineAsStatus<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

/// Reports whether `err` or one of its sources is tonic's timeout marker.
fn is_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if e.is::<tonic::TimeoutExpired>() {
            return true;
        }
        current = e.source();
    }
    false
}

impl<S> tower::Service<http::Request<tonic::body::Body>> for DeadlineAsStatus<S>
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
        >,
    S::Error: Into<tonic::codegen::StdError>,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = tonic::codegen::StdError;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let future = self.inner.call(req);
        Box::pin(async move {
            match future.await {
                Ok(response) => Ok(response),
                Err(err) => {
                    let err: tonic::codegen::StdError = err.into();
                    if is_timeout(err.as_ref()) {
                        Ok(Status::deadline_exceeded(
                            "deadline exceeded before the server answered",
                        )
                        .into_http())
                    } else {
                        Err(err)
                    }
                }
            }
        })
    }
}

/// Interceptor for outgoing calls: injects the current trace context, sets the default
/// deadline (`grpc-timeout`) when the caller set none, and adds the configured bearer token
/// when the call carries no `authorization` of its own (one set with
/// [`crate::auth::forward_caller_token`] or [`crate::auth::attach_bearer`] wins).
#[derive(Clone, Debug)]
pub struct ClientInterceptor {
    token: Option<Secret>,
    default_timeout: Duration,
}

impl ClientInterceptor {
    /// Builds the interceptor from client config.
    pub fn new(config: &ClientConfig) -> Self {
        Self {
            token: config.token.clone(),
            default_timeout: Duration::from_millis(config.request_timeout_ms),
        }
    }
}

impl Interceptor for ClientInterceptor {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        crate::propagation::inject_context(request.metadata_mut());
        if request.metadata().get("grpc-timeout").is_none() {
            request.set_timeout(self.default_timeout);
        }
        if let Some(token) = &self.token
            && request.metadata().get("authorization").is_none()
        {
            crate::auth::attach_bearer(&mut request, token)?;
        }
        Ok(request)
    }
}

/// Reports whether `status` is worth retrying under `policy`.
pub fn is_retryable(policy: &RetryPolicy, status: &Status) -> bool {
    match status.code() {
        tonic::Code::Unavailable => true,
        tonic::Code::DeadlineExceeded => policy.retry_deadline_exceeded,
        _ => false,
    }
}

/// Returns the pause before retry number `retry` (1-based): a random duration between half
/// and all of `min(max_backoff, initial_backoff * 2^(retry-1))`, so callers that failed
/// together do not retry together.
pub fn backoff(policy: &RetryPolicy, retry: u32) -> Duration {
    let exponent = retry.saturating_sub(1).min(32);
    let cap_ms = policy
        .initial_backoff_ms
        .saturating_mul(1u64 << exponent)
        .min(policy.max_backoff_ms);
    let half = cap_ms / 2;
    let spread = cap_ms - half;
    let jitter = if spread == 0 {
        0
    } else {
        random_u64() % (spread + 1)
    };
    Duration::from_millis(half + jitter)
}

/// Returns a pseudo-random number; `RandomState` is seeded randomly per instance, which is
/// enough for jitter and avoids a dependency.
fn random_u64() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0x6d65_6462_696c_6c00);
    hasher.finish()
}

/// Runs `operation` and retries it on UNAVAILABLE (and, if the policy says so,
/// DEADLINE_EXCEEDED) with exponential backoff and jitter, at most `policy.max_attempts`
/// attempts in total. Any other status is returned at once.
///
/// Use only for idempotent calls: reads, and writes carrying an idempotency key. A retried
/// write without one may be applied twice.
pub async fn retry_idempotent<T, F, Fut>(
    policy: &RetryPolicy,
    mut operation: F,
) -> Result<T, Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let attempts = policy.max_attempts.max(1);
    let mut attempt = 1;
    loop {
        match operation().await {
            Ok(value) => return Ok(value),
            Err(status) if attempt < attempts && is_retryable(policy, &status) => {
                let pause = backoff(policy, attempt);
                tracing::debug!(
                    attempt,
                    code = ?status.code(),
                    pause_ms = pause.as_millis() as u64,
                    "retrying idempotent call"
                );
                tokio::time::sleep(pause).await;
                attempt += 1;
            }
            Err(status) => return Err(status),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn policy(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            initial_backoff_ms: 100,
            max_backoff_ms: 1_000,
            retry_deadline_exceeded: false,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn unavailable_is_retried_until_success() {
        let calls = AtomicU32::new(0);
        let result = retry_idempotent(&policy(4), || {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                if n < 3 {
                    Err(Status::unavailable("claims down"))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(result.unwrap(), 3);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_are_bounded_and_the_last_error_is_returned() {
        let calls = AtomicU32::new(0);
        let result: Result<(), Status> = retry_idempotent(&policy(3), || {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            async move { Err(Status::unavailable(format!("attempt {n}"))) }
        })
        .await;
        let status = result.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert_eq!(status.message(), "attempt 3");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn other_codes_are_not_retried() {
        for status in [
            Status::invalid_argument("bad amount"),
            Status::internal("internal error"),
            Status::deadline_exceeded("slow"),
            Status::already_exists("dup"),
        ] {
            let code = status.code();
            let calls = AtomicU32::new(0);
            let result: Result<(), Status> = retry_idempotent(&policy(5), || {
                calls.fetch_add(1, Ordering::SeqCst);
                let status = status.clone();
                async move { Err(status) }
            })
            .await;
            assert_eq!(result.unwrap_err().code(), code);
            assert_eq!(calls.load(Ordering::SeqCst), 1, "{code:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_exceeded_is_retried_when_the_policy_allows() {
        let calls = AtomicU32::new(0);
        let mut read_policy = policy(2);
        read_policy.retry_deadline_exceeded = true;
        let result: Result<(), Status> = retry_idempotent(&read_policy, || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(Status::deadline_exceeded("slow")) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn backoff_grows_exponentially_within_jitter_bounds_and_is_capped() {
        let p = policy(10);
        for _ in 0..50 {
            let first = backoff(&p, 1).as_millis();
            assert!((50..=100).contains(&first), "{first}");
            let third = backoff(&p, 3).as_millis();
            assert!((200..=400).contains(&third), "{third}");
            let late = backoff(&p, 30).as_millis();
            assert!((500..=1000).contains(&late), "{late}");
        }
        let zero = RetryPolicy {
            initial_backoff_ms: 0,
            ..p
        };
        assert_eq!(backoff(&zero, 1), Duration::ZERO);
    }

    #[test]
    fn bad_urls_are_rejected_with_the_url() {
        let err = connect_channel("claims:50051", &ClientConfig::default()).unwrap_err();
        assert!(err.to_string().contains("claims:50051"), "{err}");
    }

    #[tokio::test]
    async fn interceptor_sets_deadline_and_token_without_overriding_the_caller() {
        let config = ClientConfig {
            token: Some(Secret::new("svc-token")),
            request_timeout_ms: 1500,
            ..ClientConfig::default()
        };
        let mut interceptor = ClientInterceptor::new(&config);
        let request = interceptor.call(tonic::Request::new(())).unwrap();
        assert_eq!(request.metadata().get("grpc-timeout").unwrap(), "1500000u");
        assert_eq!(
            request.metadata().get("authorization").unwrap(),
            "Bearer svc-token"
        );

        let mut own = tonic::Request::new(());
        own.set_timeout(Duration::from_millis(20));
        crate::auth::attach_bearer(&mut own, &Secret::new("caller-token")).unwrap();
        let request = interceptor.call(own).unwrap();
        assert_eq!(request.metadata().get("grpc-timeout").unwrap(), "20000000n");
        assert_eq!(
            request.metadata().get("authorization").unwrap(),
            "Bearer caller-token"
        );
    }

    #[tokio::test]
    async fn lazy_channel_to_a_closed_port_fails_as_unavailable_on_use() {
        // Bind and drop to find a port nobody listens on.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let channel = connect(
            &format!("http://127.0.0.1:{port}"),
            &ClientConfig::default(),
        )
        .expect("lazy connect does not dial");
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
        let status = health
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable);
    }
}
