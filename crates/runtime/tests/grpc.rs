//! End-to-end tests of the runtime over real gRPC on loopback: health, reflection, auth,
//! trace propagation across two servers (server and client spans), untraced health and
//! reflection, request messages that do not decode, deadlines, message limits and graceful
//! shutdown. The test service is in `common`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use medbill_runtime::client;
use medbill_runtime::config::{AuthConfig, ClientConfig, GrpcConfig, Secret};
use medbill_runtime::server::Server;
use medbill_runtime::telemetry::testing;
use opentelemetry::trace::{SpanKind, TraceContextExt as _, TraceId};
use opentelemetry_sdk::trace::SpanData;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tonic::service::Routes;
use tonic::{Code, Request};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

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
    // Spans end when their response body is finished, just after the answer; wait for all five
    // (bounded): caller -> client -> upstream server -> client -> downstream server.
    let spans = wait_for_spans(trace_id, 5).await;
    let child_of = |parent: &SpanData, kind: SpanKind| {
        spans
            .iter()
            .find(|s| s.parent_span_id == parent.span_context.span_id() && s.span_kind == kind)
            .cloned()
    };
    let upstream_client = spans
        .iter()
        .find(|s| s.parent_span_id == caller_context.span_id())
        .expect("the first client span is a child of the caller's span");
    assert_eq!(upstream_client.span_kind, SpanKind::Client);
    let upstream_span = child_of(upstream_client, SpanKind::Server)
        .expect("upstream server span is a child of the caller's client span");
    let downstream_client = child_of(&upstream_span, SpanKind::Client)
        .expect("the outgoing call of the upstream handler has a client span");
    let downstream_span = child_of(&downstream_client, SpanKind::Server)
        .expect("downstream server span is a child of the upstream's client span");
    for span in [
        upstream_client,
        &upstream_span,
        &downstream_client,
        &downstream_span,
    ] {
        assert_eq!(span.name, "medbill.test.Whoami/Get", "{span:?}");
        assert_eq!(attr(span, "rpc.grpc.status_code").as_deref(), Some("0"));
        assert_eq!(attr(span, "rpc.system").as_deref(), Some("grpc"));
    }
    assert_eq!(
        attr(&downstream_client, "server.address"),
        Some(downstream.local_addr().to_string())
    );
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

/// Waits (bounded) until `trace_id` has at least `count` finished spans and returns them.
async fn wait_for_spans(trace_id: TraceId, count: usize) -> Vec<SpanData> {
    let mut spans = Vec::new();
    for _ in 0..200 {
        spans = testing::spans_of_trace(trace_id);
        if spans.len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(spans.len(), count, "{spans:#?}");
    spans
}

fn attr(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.as_str().into_owned())
}

#[tokio::test]
async fn a_failed_call_marks_the_client_span_as_an_error() {
    let _ = testing::span_exporter();
    let handle = start(
        Whoami::default(),
        &tokens(&[("tok-a", "clinic-a")]),
        &GrpcConfig::default(),
    )
    .await;
    let caller = tracing::info_span!("test-caller");
    let trace_id = caller.context().span().span_context().trace_id();
    let status = whoami(channel(&handle), with_token("tok-unknown"))
        .instrument(caller)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    // The caller's span, the client span and the server span.
    let spans = wait_for_spans(trace_id, 3).await;
    let client = spans
        .iter()
        .find(|s| s.span_kind == SpanKind::Client)
        .unwrap();
    let server = spans
        .iter()
        .find(|s| s.span_kind == SpanKind::Server)
        .unwrap();
    let unauthenticated = (Code::Unauthenticated as i32).to_string();
    assert_eq!(
        attr(client, "rpc.grpc.status_code"),
        Some(unauthenticated.clone())
    );
    assert_eq!(attr(server, "rpc.grpc.status_code"), Some(unauthenticated));
    // A client error is the caller's failure; for the server it is the caller's mistake.
    assert!(
        matches!(client.status, opentelemetry::trace::Status::Error { .. }),
        "{client:?}"
    );
    assert_eq!(
        server.status,
        opentelemetry::trace::Status::Unset,
        "{server:?}"
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn health_and_reflection_calls_are_not_traced() {
    let _ = testing::span_exporter();
    let handle = start(
        Whoami::default(),
        &AuthConfig::default(),
        &GrpcConfig::default(),
    )
    .await;
    let caller = tracing::info_span!("test-probe");
    let trace_id = caller.context().span().span_context().trace_id();
    async {
        assert_eq!(
            health_status(&handle, WHOAMI).await.unwrap(),
            ServingStatus::Serving as i32
        );
        assert!(
            list_services(&handle, "v1")
                .await
                .contains(&WHOAMI.to_owned())
        );
        // A traced call in the same trace, so the check below has something to wait for.
        whoami(channel(&handle), Request::new(String::new()))
            .await
            .unwrap();
    }
    .instrument(caller)
    .await;
    // The probe's own span and the client and server span of the Whoami call: nothing else.
    let spans = wait_for_spans(trace_id, 3).await;
    let mut names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "medbill.test.Whoami/Get",
            "medbill.test.Whoami/Get",
            "test-probe"
        ]
    );
    // Nothing more arrives late for the health or reflection calls.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(testing::spans_of_trace(trace_id).len(), 3);
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn request_messages_that_do_not_decode_are_invalid_argument() {
    let _ = testing::span_exporter();
    let handle = start(
        Whoami::default(),
        &AuthConfig::default(),
        &GrpcConfig::default(),
    )
    .await;
    let url = handle.url();
    // google.protobuf.StringValue: field 1 (tag 0x0a), length-delimited.
    let cases: [(&str, &[u8], bool, &str); 5] = [
        (
            "invalid UTF-8 in a string field",
            &[0x0a, 0x02, 0xff, 0xfe],
            true,
            "invalid request message: invalid string value: data is not UTF-8 encoded",
        ),
        (
            "a string longer than the message",
            &[0x0a, 0x05, b'a'],
            true,
            "invalid request message: buffer underflow",
        ),
        (
            "garbage",
            &[
                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ],
            true,
            "invalid request message: ",
        ),
        (
            "a frame cut short",
            &[0x00, 0x00, 0x00, 0x00, 0x10, 0x0a, 0x01],
            false,
            "invalid request message: the request ends inside a message",
        ),
        (
            "no message at all",
            &[],
            false,
            "invalid request message: the request holds no message",
        ),
    ];
    for (what, bytes, frame, expected) in cases {
        let (code, message) = raw_call(&url, WHOAMI_GET, bytes, frame).await;
        assert_eq!(code, Code::InvalidArgument, "{what}: {message}");
        assert!(message.starts_with(expected), "{what}: {message}");
    }
    // Generated services (health here) get the same answer.
    let (code, message) = raw_call(
        &url,
        "/grpc.health.v1.Health/Check",
        &[0x0a, 0x01, 0xc3],
        true,
    )
    .await;
    assert_eq!(code, Code::InvalidArgument, "{message}");
    assert!(
        message.contains("HealthCheckRequest.service"),
        "the field is named: {message}"
    );
    // A message that decodes still reaches the handler.
    let (code, message) = raw_call(&url, WHOAMI_GET, &[0x0a, 0x02, b'h', b'i'], true).await;
    assert_eq!(code, Code::Ok, "{message}");
    handle.shutdown().await.unwrap();
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

#[tokio::test]
async fn a_request_whose_metadata_exceeds_the_header_limit_is_refused_and_the_server_goes_on() {
    let grpc = GrpcConfig {
        max_header_list_size: 4 * 1024,
        ..GrpcConfig::default()
    };
    let handle = start(Whoami::default(), &AuthConfig::default(), &grpc).await;
    let request_with = |bytes: usize| {
        let mut request = Request::new(String::new());
        let value = "x".repeat(bytes).parse().expect("ASCII metadata");
        request.metadata_mut().insert("x-padding", value);
        request
    };
    let small = whoami(channel(&handle), request_with(512)).await;
    // Above the configured 4 KiB, below the 16 KiB a default would allow.
    let large = whoami(channel(&handle), request_with(8 * 1024)).await;
    let after = whoami(channel(&handle), request_with(512)).await;
    assert_eq!(small.ok().as_deref(), Some("default"));
    assert!(large.is_err(), "{large:?}");
    assert_eq!(
        after.ok().as_deref(),
        Some("default"),
        "the server still answers"
    );
}
