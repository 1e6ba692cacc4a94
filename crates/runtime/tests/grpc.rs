//! End-to-end tests of the runtime over real gRPC on loopback: health, reflection, auth,
//! trace propagation across two servers, deadlines, message limits and graceful shutdown.
//!
//! The test service `medbill.test.Whoami/Get` is written by hand (no proto crate): it takes a
//! `google.protobuf.StringValue`-shaped message and answers the caller's tenant, optionally
//! after calling another Whoami server (to cross a service boundary) or after a delay.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use http::uri::PathAndQuery;
use medbill_runtime::auth::{self, Authenticator};
use medbill_runtime::client::{self, TracedChannel};
use medbill_runtime::config::{AuthConfig, ClientConfig, GrpcConfig, Secret};
use medbill_runtime::server::{Server, ServerHandle};
use medbill_runtime::telemetry::testing;
use opentelemetry::trace::{SpanKind, TraceContextExt as _};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic::{Code, Request, Response, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_prost::ProstCodec;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

const WHOAMI: &str = "medbill.test.Whoami";
const WHOAMI_GET: &str = "/medbill.test.Whoami/Get";

#[derive(Clone, Default)]
struct Whoami {
    downstream: Option<TracedChannel>,
    delay: Duration,
    started: Option<Arc<Notify>>,
    limits: GrpcConfig,
}

impl NamedService for Whoami {
    const NAME: &'static str = WHOAMI;
}

impl tower::Service<http::Request<Body>> for Whoami {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            if req.uri().path() != WHOAMI_GET {
                return Ok(Status::unimplemented("no such method").into_http());
            }
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<String, String>::default())
                .apply_max_message_size_config(
                    Some(this.limits.max_decoding_message_size),
                    Some(this.limits.max_encoding_message_size),
                );
            Ok(grpc.unary(GetHandler(this), req).await)
        })
    }
}

struct GetHandler(Whoami);

impl tonic::server::UnaryService<String> for GetHandler {
    type Response = String;
    type Future = BoxFuture<'static, Result<Response<String>, Status>>;

    fn call(&mut self, request: Request<String>) -> Self::Future {
        let this = self.0.clone();
        Box::pin(async move {
            let tenant = auth::tenant(&request)?;
            if let Some(started) = &this.started {
                started.notify_one();
            }
            if !this.delay.is_zero() {
                tokio::time::sleep(this.delay).await;
            }
            match this.downstream {
                Some(channel) => {
                    let mut outbound = Request::new(String::new());
                    auth::forward_caller_token(&request, &mut outbound)?;
                    let answer = whoami(channel, outbound).await?;
                    Ok(Response::new(format!("{tenant}->{answer}")))
                }
                None => Ok(Response::new(tenant.to_string())),
            }
        })
    }
}

async fn whoami(channel: TracedChannel, request: Request<String>) -> Result<String, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("not ready: {e}")))?;
    grpc.unary(
        request,
        PathAndQuery::from_static(WHOAMI_GET),
        ProstCodec::<String, String>::default(),
    )
    .await
    .map(Response::into_inner)
}

fn tokens(pairs: &[(&str, &str)]) -> AuthConfig {
    AuthConfig {
        tokens: pairs
            .iter()
            .map(|(token, tenant)| (Secret::new(*token), (*tenant).to_owned()))
            .collect(),
    }
}

async fn start(service: Whoami, auth: &AuthConfig, grpc: &GrpcConfig) -> ServerHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    Server::new(Routes::new(service))
        .serving(WHOAMI)
        .grpc_config(grpc)
        .authenticator(Authenticator::from_config(auth))
        .start(listener)
        .await
        .unwrap()
}

fn channel(handle: &ServerHandle) -> TracedChannel {
    client::connect(&handle.url(), &ClientConfig::default()).unwrap()
}

fn with_token(token: &str) -> Request<String> {
    let mut request = Request::new(String::new());
    auth::attach_bearer(&mut request, &Secret::new(token)).unwrap();
    request
}

async fn health_status(handle: &ServerHandle, service: &str) -> Result<i32, Status> {
    let mut health = HealthClient::new(channel(handle));
    health
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .map(|r| r.into_inner().status)
}

#[tokio::test]
async fn health_and_reflection_work_without_a_token_and_auth_guards_the_rest() {
    let _ = testing::span_exporter();
    let auth = tokens(&[("tok-a", "clinic-a"), ("tok-b", "clinic-b")]);
    let handle = start(Whoami::default(), &auth, &GrpcConfig::default()).await;

    assert_eq!(
        health_status(&handle, "").await.unwrap(),
        ServingStatus::Serving as i32
    );
    assert_eq!(
        health_status(&handle, WHOAMI).await.unwrap(),
        ServingStatus::Serving as i32
    );
    assert_eq!(
        health_status(&handle, "medbill.test.Nope")
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );

    // Reflection (v1 and v1alpha) lists the served service, health and reflection itself.
    for version in ["v1", "v1alpha"] {
        let names = list_services(&handle, version).await;
        assert!(names.contains(&WHOAMI.to_owned()), "{version}: {names:?}");
        assert!(
            names.contains(&"grpc.health.v1.Health".to_owned()),
            "{version}: {names:?}"
        );
    }

    let missing = whoami(channel(&handle), Request::new(String::new()))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated);
    assert!(
        missing.message().contains("missing bearer token"),
        "{}",
        missing.message()
    );

    let unknown = whoami(channel(&handle), with_token("tok-zzz"))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::Unauthenticated);
    assert_eq!(unknown.message(), "unknown bearer token");

    assert_eq!(
        whoami(channel(&handle), with_token("tok-a")).await.unwrap(),
        "clinic-a"
    );
    assert_eq!(
        whoami(channel(&handle), with_token("tok-b")).await.unwrap(),
        "clinic-b"
    );

    // A configured client token is used when the call brings none.
    let config = ClientConfig {
        token: Some(Secret::new("tok-b")),
        ..ClientConfig::default()
    };
    let svc_channel = client::connect(&handle.url(), &config).unwrap();
    assert_eq!(
        whoami(svc_channel, Request::new(String::new()))
            .await
            .unwrap(),
        "clinic-b"
    );

    handle.shutdown().await.unwrap();
}

async fn list_services(handle: &ServerHandle, version: &str) -> Vec<String> {
    use tokio_stream_shim::once;
    match version {
        "v1" => {
            use tonic_reflection::pb::v1::{
                ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
                server_reflection_request::MessageRequest,
                server_reflection_response::MessageResponse,
            };
            let mut client = ServerReflectionClient::new(channel(handle));
            let request = ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            };
            let mut stream = client
                .server_reflection_info(once(request))
                .await
                .unwrap()
                .into_inner();
            match stream
                .message()
                .await
                .unwrap()
                .and_then(|r| r.message_response)
            {
                Some(MessageResponse::ListServicesResponse(list)) => {
                    list.service.into_iter().map(|s| s.name).collect()
                }
                other => panic!("unexpected reflection answer: {other:?}"),
            }
        }
        _ => {
            use tonic_reflection::pb::v1alpha::{
                ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
                server_reflection_request::MessageRequest,
                server_reflection_response::MessageResponse,
            };
            let mut client = ServerReflectionClient::new(channel(handle));
            let request = ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            };
            let mut stream = client
                .server_reflection_info(once(request))
                .await
                .unwrap()
                .into_inner();
            match stream
                .message()
                .await
                .unwrap()
                .and_then(|r| r.message_response)
            {
                Some(MessageResponse::ListServicesResponse(list)) => {
                    list.service.into_iter().map(|s| s.name).collect()
                }
                other => panic!("unexpected reflection answer: {other:?}"),
            }
        }
    }
}

/// A one-item request stream without pulling in tokio-stream.
mod tokio_stream_shim {
    pub fn once<T: Send + 'static>(item: T) -> impl futures::Stream<Item = T> + Send + 'static {
        futures::stream::iter([item])
    }
}

#[tokio::test]
async fn dev_mode_serves_the_default_tenant_and_rejects_tokens() {
    let _ = testing::span_exporter();
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
    let status = whoami(channel(&handle), with_token("tok-a"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        status.message().contains("dev mode"),
        "{}",
        status.message()
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_call_across_two_services_is_one_trace_and_keeps_the_tenant() {
    let exporter = testing::span_exporter();
    let auth = tokens(&[("tok-a", "clinic-a")]);
    let downstream = start(Whoami::default(), &auth, &GrpcConfig::default()).await;
    let upstream = start(
        Whoami {
            downstream: Some(channel(&downstream)),
            ..Whoami::default()
        },
        &auth,
        &GrpcConfig::default(),
    )
    .await;

    let caller = tracing::info_span!("test-caller");
    let caller_context = caller.context().span().span_context().clone();
    let answer = whoami(channel(&upstream), with_token("tok-a"))
        .instrument(caller)
        .await
        .unwrap();
    assert_eq!(answer, "clinic-a->clinic-a");

    let trace_id = caller_context.trace_id();
    // Server spans end just after the response is written; wait for both (bounded).
    let mut server_spans = Vec::new();
    for _ in 0..200 {
        server_spans = testing::spans_of_trace(trace_id)
            .into_iter()
            .filter(|s| s.span_kind == SpanKind::Server)
            .collect();
        if server_spans.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server_spans.len(), 2, "{server_spans:?}");
    let upstream_span = server_spans
        .iter()
        .find(|s| s.parent_span_id == caller_context.span_id())
        .expect("upstream server span is a child of the caller's span");
    let downstream_span = server_spans
        .iter()
        .find(|s| s.parent_span_id == upstream_span.span_context.span_id())
        .expect("downstream server span is a child of the upstream server span");
    assert_eq!(downstream_span.name, "medbill.test.Whoami/Get");
    let tenant = downstream_span
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == "tenant")
        .map(|kv| kv.value.as_str().into_owned());
    assert_eq!(tenant.as_deref(), Some("clinic-a"));
    // No bearer token anywhere in the exported attributes.
    for span in exporter.get_finished_spans().unwrap() {
        for kv in &span.attributes {
            assert!(!kv.value.as_str().contains("tok-a"), "{kv:?}");
        }
    }

    upstream.shutdown().await.unwrap();
    downstream.shutdown().await.unwrap();
}

#[tokio::test]
async fn deadlines_are_enforced_by_server_default_and_by_client_timeout() {
    let _ = testing::span_exporter();
    let slow = Whoami {
        delay: Duration::from_secs(5),
        ..Whoami::default()
    };
    let grpc = GrpcConfig {
        request_timeout_ms: 100,
        ..GrpcConfig::default()
    };
    let handle = start(slow.clone(), &AuthConfig::default(), &grpc).await;
    // The client sends a long grpc-timeout; the server's shorter default applies.
    let mut request = Request::new(String::new());
    request.set_timeout(Duration::from_secs(30));
    let status = whoami(channel(&handle), request).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    handle.shutdown().await.unwrap();

    // Server default is long; the client's grpc-timeout is short and wins (whichever side's
    // timer fires first, the caller sees DEADLINE_EXCEEDED).
    let handle = start(slow, &AuthConfig::default(), &GrpcConfig::default()).await;
    let mut request = Request::new(String::new());
    request.set_timeout(Duration::from_millis(100));
    let status = whoami(channel(&handle), request).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");

    // Only the client's own per-request timeout is short: tonic reports that as CANCELLED,
    // the client wrapper turns it into DEADLINE_EXCEEDED.
    let short = ClientConfig {
        request_timeout_ms: 100,
        ..ClientConfig::default()
    };
    let mut request = Request::new(String::new());
    request.set_timeout(Duration::from_secs(30));
    let status = whoami(client::connect(&handle.url(), &short).unwrap(), request)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        status.message().contains("before the server answered"),
        "{status:?}"
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn oversized_messages_are_rejected_as_out_of_range() {
    let _ = testing::span_exporter();
    let grpc = GrpcConfig {
        max_decoding_message_size: 1024,
        ..GrpcConfig::default()
    };
    let service = Whoami {
        limits: grpc.clone(),
        ..Whoami::default()
    };
    let handle = start(service, &AuthConfig::default(), &grpc).await;
    let status = whoami(channel(&handle), Request::new("x".repeat(4096)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert_eq!(
        whoami(channel(&handle), Request::new("x".repeat(100)))
            .await
            .unwrap(),
        "default"
    );

    // The server applied the same limit to health on its own.
    let status = health_status(&handle, &"y".repeat(4096)).await.unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_reports_not_serving_then_drains_in_flight_calls() {
    let _ = testing::span_exporter();
    let started = Arc::new(Notify::new());
    let service = Whoami {
        delay: Duration::from_millis(400),
        started: Some(Arc::clone(&started)),
        ..Whoami::default()
    };
    let grpc = GrpcConfig {
        shutdown_grace_ms: 300,
        ..GrpcConfig::default()
    };
    let handle = start(service, &AuthConfig::default(), &grpc).await;
    let url = handle.url();

    let in_flight = tokio::spawn(whoami(channel(&handle), Request::new(String::new())));
    started.notified().await;
    handle.trigger_shutdown();

    // During the grace period health answers NOT_SERVING, overall and per service.
    let mut seen_not_serving = false;
    for _ in 0..100 {
        match health_status(&handle, WHOAMI).await {
            Ok(status) if status == ServingStatus::NotServing as i32 => {
                seen_not_serving = true;
                break;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            Err(status) => panic!("health failed during grace: {status:?}"),
        }
    }
    assert!(
        seen_not_serving,
        "health never reported NOT_SERVING while draining"
    );

    // The call that was in flight completes normally.
    assert_eq!(in_flight.await.unwrap().unwrap(), "default");
    handle.shutdown().await.unwrap();

    // Nothing listens any more.
    let status = whoami(
        client::connect(&url, &ClientConfig::default()).unwrap(),
        Request::new(String::new()),
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
}

#[tokio::test]
async fn retry_idempotent_recovers_when_the_server_comes_up() {
    let _ = testing::span_exporter();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let channel = client::connect(&format!("http://{addr}"), &ClientConfig::default()).unwrap();

    let policy = medbill_runtime::config::RetryPolicy {
        max_attempts: 50,
        initial_backoff_ms: 20,
        max_backoff_ms: 50,
        retry_deadline_exceeded: false,
    };
    let attempts = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let server_up = Arc::new(Notify::new());
    let retried = {
        let attempts = Arc::clone(&attempts);
        let server_up = Arc::clone(&server_up);
        tokio::spawn(async move {
            client::retry_idempotent(&policy, || {
                let n = attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if n == 1 {
                    // The first attempt failed (nothing listens): bring the server up.
                    server_up.notify_one();
                }
                whoami(channel.clone(), Request::new(String::new()))
            })
            .await
        })
    };
    server_up.notified().await;
    let listener = TcpListener::bind(addr).await.unwrap();
    let handle = Server::new(Routes::new(Whoami::default()))
        .start(listener)
        .await
        .unwrap();
    assert_eq!(retried.await.unwrap().unwrap(), "default");
    assert!(attempts.load(std::sync::atomic::Ordering::SeqCst) >= 2);
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_stream_that_never_ends_cannot_block_shutdown_past_the_drain_timeout() {
    let _ = testing::span_exporter();
    let grpc = GrpcConfig {
        drain_timeout_ms: 200,
        ..GrpcConfig::default()
    };
    let handle = start(Whoami::default(), &AuthConfig::default(), &grpc).await;
    let mut health = HealthClient::new(channel(&handle));
    let mut watch = health
        .watch(HealthCheckRequest {
            service: WHOAMI.to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.status, ServingStatus::Serving as i32);

    handle.trigger_shutdown();
    // The open Watch sees the service go NOT_SERVING...
    let next = watch.message().await.unwrap().unwrap();
    assert_eq!(next.status, ServingStatus::NotServing as i32);
    // ...and although it stays open, shutdown completes (the guard only keeps a broken
    // drain from hanging the test run).
    tokio::time::timeout(Duration::from_secs(30), handle.shutdown())
        .await
        .expect("shutdown finished after the drain timeout")
        .unwrap();
    drop(watch);
}
