//! Per-tenant limits over real sockets: a tenant over its call rate or its concurrent calls is
//! answered RESOURCE_EXHAUSTED at once with a retry hint, another tenant is served meanwhile, the
//! first recovers once the hint has passed, and `/metrics` shows the limits and the refusals.
//! One test binary of its own: metrics are process-wide.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use medbill_runtime::config::GrpcConfig;
use medbill_runtime::limits::LimitsConfig;
use medbill_runtime::metrics::{self, MetricsConfig};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::Notify;
use tonic::Code;

fn two_tenants() -> medbill_runtime::config::AuthConfig {
    tokens(&[("tok-a", "clinic-a"), ("tok-b", "clinic-b")])
}

fn pushback(status: &tonic::Status) -> Duration {
    let ms: u64 = status
        .metadata()
        .get("grpc-retry-pushback-ms")
        .expect("a retry hint")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    Duration::from_millis(ms)
}

async fn scrape(addr: std::net::SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_over_limit_tenant_is_shed_quickly_without_hurting_another_and_recovers() {
    let metrics = metrics::init(
        &MetricsConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..MetricsConfig::default()
        },
        "medbill-test",
    )
    .await
    .unwrap();

    // Rate: a burst of 5, then 20 calls per second.
    let handle = start_limited(
        Whoami::default(),
        &two_tenants(),
        &GrpcConfig::default(),
        LimitsConfig {
            tenant_calls_per_sec: 20,
            tenant_burst: 5,
            ..LimitsConfig::unlimited()
        },
    )
    .await;
    for _ in 0..5 {
        assert_eq!(
            whoami(channel(&handle), with_token("tok-a")).await.unwrap(),
            "clinic-a"
        );
    }
    let refused = whoami(channel(&handle), with_token("tok-a"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("clinic-a") && refused.message().contains("retry after"),
        "{}",
        refused.message()
    );
    let hint = pushback(&refused);
    assert!(
        hint > Duration::ZERO && hint <= Duration::from_millis(50),
        "{hint:?}"
    );

    // The other tenant is served while the first is shed.
    assert_eq!(
        whoami(channel(&handle), with_token("tok-b")).await.unwrap(),
        "clinic-b"
    );

    // After the hint the first tenant is served again.
    tokio::time::sleep(hint).await;
    assert_eq!(
        whoami(channel(&handle), with_token("tok-a")).await.unwrap(),
        "clinic-a"
    );
    handle.shutdown().await.unwrap();

    // Concurrency: two slow calls of clinic-a are running; a third is refused without waiting.
    let started = Arc::new(Notify::new());
    let slow = Whoami {
        delay: Duration::from_secs(2),
        started: Some(Arc::clone(&started)),
        ..Whoami::default()
    };
    let handle = start_limited(
        slow,
        &two_tenants(),
        &GrpcConfig::default(),
        LimitsConfig {
            tenant_max_concurrent_calls: 2,
            ..LimitsConfig::unlimited()
        },
    )
    .await;
    let mut running = Vec::new();
    for _ in 0..2 {
        // One at a time: a Notify keeps at most one wake-up for a waiter still to come.
        running.push(tokio::spawn(whoami(channel(&handle), with_token("tok-a"))));
        started.notified().await;
    }
    let asked = Instant::now();
    let refused = whoami(channel(&handle), with_token("tok-a"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "refused at once, not after the running calls: {:?}",
        asked.elapsed()
    );
    assert!(
        refused.message().contains("2 calls running"),
        "{}",
        refused.message()
    );
    assert!(pushback(&refused) > Duration::ZERO);
    // clinic-b has slots of its own.
    let b = tokio::spawn(whoami(channel(&handle), with_token("tok-b")));
    started.notified().await;
    for call in running {
        assert_eq!(call.await.unwrap().unwrap(), "clinic-a");
    }
    assert_eq!(b.await.unwrap().unwrap(), "clinic-b");
    // The slots are free again.
    let again = tokio::spawn(whoami(channel(&handle), with_token("tok-a")));
    started.notified().await;
    assert_eq!(again.await.unwrap().unwrap(), "clinic-a");
    handle.shutdown().await.unwrap();

    // `/metrics` reports the refusals by limit and the configured limits.
    let addr = metrics.local_addr().unwrap();
    let mut text = String::new();
    for _ in 0..50 {
        text = scrape(addr).await;
        if text.contains("medbill_rpc_limited_total") && text.contains("medbill_limit") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for wanted in [
        "limit=\"tenant_rate\"",
        "limit=\"tenant_concurrency\"",
        "tenant=\"clinic-a\"",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("medbill_rpc_limited_total") && l.contains(wanted)),
            "no refusal counted with {wanted} in:\n{text}"
        );
    }
    assert!(
        text.lines().any(|l| l.starts_with("medbill_limit{")
            && l.contains("limit=\"tenant_max_concurrent_calls\"")
            && l.ends_with(" 2")),
        "configured limit missing in:\n{text}"
    );
    metrics.shutdown().await;
}
