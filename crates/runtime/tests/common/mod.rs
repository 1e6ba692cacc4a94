//! The gRPC test harness shared by the runtime's integration tests.
//!
//! The test service `medbill.test.Whoami/Get` is written by hand (no proto crate): it takes a
//! `google.protobuf.StringValue`-shaped message and answers the caller's tenant, optionally
//! after calling another Whoami server (to cross a service boundary) or after a delay. It logs
//! one INFO line per answer ("whoami answered").

// Each test binary uses a different part of the harness.
#![allow(dead_code)]

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::uri::PathAndQuery;
use http_body_util::BodyExt as _;
use medbill_runtime::auth::{self, Authenticator};
use medbill_runtime::client::{self, TracedChannel};
use medbill_runtime::config::{AuthConfig, ClientConfig, GrpcConfig, Secret};
use medbill_runtime::limits::LimitsConfig;
use medbill_runtime::scopes::{self, ScopeTable};
use medbill_runtime::server::{Server, ServerHandle};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic::{Code, Request, Response, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tonic_prost::ProstCodec;

pub const WHOAMI: &str = "medbill.test.Whoami";
pub const WHOAMI_GET: &str = "/medbill.test.Whoami/Get";
/// The test method as the scope table names it; it needs `claims.read`.
pub const WHOAMI_METHOD: &str = "medbill.test.Whoami/Get";

#[derive(Clone, Default)]
pub struct Whoami {
    pub downstream: Option<TracedChannel>,
    pub delay: Duration,
    pub started: Option<Arc<Notify>>,
    pub limits: GrpcConfig,
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
                None => {
                    tracing::info!(%tenant, "whoami answered");
                    Ok(Response::new(tenant.to_string()))
                }
            }
        })
    }
}

pub async fn whoami(channel: TracedChannel, request: Request<String>) -> Result<String, Status> {
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

/// Calls `path` (which need not exist) with `token`, as Whoami's request shape.
pub async fn call_path(
    channel: TracedChannel,
    path: &'static str,
    token: &str,
) -> Result<String, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("not ready: {e}")))?;
    grpc.unary(
        with_token(token),
        PathAndQuery::from_static(path),
        ProstCodec::<String, String>::default(),
    )
    .await
    .map(Response::into_inner)
}

pub fn tokens(pairs: &[(&str, &str)]) -> AuthConfig {
    AuthConfig {
        tokens: pairs
            .iter()
            .map(|(token, tenant)| (Secret::new(*token), (*tenant).to_owned()))
            .collect(),
        ..AuthConfig::default()
    }
}

pub async fn start(service: Whoami, auth: &AuthConfig, grpc: &GrpcConfig) -> ServerHandle {
    start_limited(service, auth, grpc, LimitsConfig::unlimited()).await
}

pub async fn start_limited(
    service: Whoami,
    auth: &AuthConfig,
    grpc: &GrpcConfig,
    limits: LimitsConfig,
) -> ServerHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    Server::new(Routes::new(service))
        .serving(WHOAMI)
        .grpc_config(grpc)
        .authenticator(Authenticator::from_config(auth).unwrap())
        .scopes(ScopeTable::medbill().with(&[(WHOAMI_METHOD, scopes::CLAIMS_READ)]))
        .limits(limits)
        .start(listener)
        .await
        .unwrap()
}

pub fn channel(handle: &ServerHandle) -> TracedChannel {
    client::connect(&handle.url(), &ClientConfig::default()).unwrap()
}

pub fn with_token(token: &str) -> Request<String> {
    let mut request = Request::new(String::new());
    auth::attach_bearer(&mut request, &Secret::new(token)).unwrap();
    request
}

pub async fn health_status(handle: &ServerHandle, service: &str) -> Result<i32, Status> {
    let mut health = HealthClient::new(channel(handle));
    health
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .map(|r| r.into_inner().status)
}

pub async fn list_services(handle: &ServerHandle, version: &str) -> Vec<String> {
    // The two reflection versions have the same shape in different modules.
    macro_rules! list_with {
        ($pb:path) => {{
            use tokio_stream_shim::once;
            use $pb as pb;
            let mut client =
                pb::server_reflection_client::ServerReflectionClient::new(channel(handle));
            let request = pb::ServerReflectionRequest {
                host: String::new(),
                message_request: Some(pb::server_reflection_request::MessageRequest::ListServices(
                    String::new(),
                )),
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
                Some(pb::server_reflection_response::MessageResponse::ListServicesResponse(
                    list,
                )) => list.service.into_iter().map(|s| s.name).collect(),
                other => panic!("unexpected reflection answer: {other:?}"),
            }
        }};
    }
    match version {
        "v1" => list_with!(tonic_reflection::pb::v1),
        _ => list_with!(tonic_reflection::pb::v1alpha),
    }
}

/// A one-item request stream without pulling in tokio-stream.
pub mod tokio_stream_shim {
    pub fn once<T: Send + 'static>(item: T) -> impl futures::Stream<Item = T> + Send + 'static {
        futures::stream::iter([item])
    }
}

/// Sends `message` (the raw protobuf bytes, framed as one gRPC message unless `frame` is
/// false) to `path` and returns the gRPC status code and message of the answer.
pub async fn raw_call(url: &str, path: &str, message: &[u8], frame: bool) -> (Code, String) {
    use tower::ServiceExt as _;
    let body = if frame {
        let mut framed = Vec::with_capacity(5 + message.len());
        framed.push(0);
        framed.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
        framed.extend_from_slice(message);
        framed
    } else {
        message.to_vec()
    };
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("{url}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Body::new(http_body_util::Full::new(Bytes::from(body))))
        .unwrap();
    let response = channel.oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    // A trailers-only answer carries the status in the headers; otherwise it is in the trailers.
    let status = match Status::from_header_map(&parts.headers) {
        Some(status) => status,
        None => {
            let collected = body.collect().await.unwrap();
            let trailers = collected.trailers().cloned().unwrap_or_default();
            Status::from_header_map(&trailers).unwrap_or_else(|| Status::ok(""))
        }
    };
    (status.code(), status.message().to_owned())
}
