//! `/metrics` over real sockets: a gRPC server on port 0 takes a few calls, and the Prometheus
//! text answered by the metrics listener shows the per-RPC counters and latency buckets of
//! those calls, the database pool and the outbox backlog. One test (metrics are process-wide),
//! run once per database backend.

mod common;

use std::time::Duration;

use common::*;
use medbill_runtime::config::GrpcConfig;
use medbill_runtime::metrics::{self, MetricsConfig};
use medbill_storage::testing::{self, TestEnv};
use medbill_storage::{Backend, outbox};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic::Code;

const WHOAMI_LABELS: &str =
    "rpc_method=\"Get\",rpc_service=\"medbill.test.Whoami\",rpc_system=\"grpc\"";

/// GETs `path` from `addr` over plain HTTP/1.1 and returns the status line, headers and body.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.to_owned(), body.to_owned())
}

/// Scrapes until every `wanted` line is in the text (the server records a call when its
/// response body ends, just after the client has its answer), bounded.
async fn scrape_until(addr: std::net::SocketAddr, wanted: &[String]) -> String {
    let mut text = String::new();
    for _ in 0..100 {
        let (head, body) = http_get(addr, "/metrics").await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: text/plain; version=0.0.4"),
            "{head}"
        );
        text = body;
        if wanted.iter().all(|line| text.lines().any(|l| l == line)) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let missing: Vec<&String> = wanted
        .iter()
        .filter(|line| !text.lines().any(|l| l == line.as_str()))
        .collect();
    panic!("missing {missing:#?} in:\n{text}");
}

async fn scrape_shows_calls_pool_and_outbox(env: TestEnv) {
    let config = MetricsConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        outbox_poll_secs: 1,
        ..MetricsConfig::default()
    };
    let metrics = metrics::init(&config, "medbill-test").await.unwrap();
    let addr = metrics.local_addr().expect("the listener runs");
    assert_eq!(metrics.url().unwrap(), format!("http://{addr}/metrics"));

    // Two messages wait for collections; the relay is not running.
    let db = env.db().clone();
    let mut tx = db.begin().await.unwrap();
    for key in ["k1", "k2"] {
        outbox::enqueue(&mut tx, "t1", "collections.PostPayment", key, b"x")
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    assert!(metrics::observe_database("claims", &db));

    let handle = start(
        Whoami::default(),
        &tokens(&[("tok-a", "clinic-a")]),
        &GrpcConfig::default(),
    )
    .await;
    for _ in 0..3 {
        assert_eq!(
            whoami(channel(&handle), with_token("tok-a")).await.unwrap(),
            "clinic-a"
        );
    }
    let status = whoami(channel(&handle), with_token("tok-zzz"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    // Probes are not counted.
    health_status(&handle, WHOAMI).await.unwrap();

    let ok = format!("rpc_grpc_status_code=\"0\",{WHOAMI_LABELS}");
    let unauthenticated = format!("rpc_grpc_status_code=\"16\",{WHOAMI_LABELS}");
    let wanted = [
        format!("rpc_server_requests_total{{{ok}}} 3"),
        format!("rpc_server_requests_total{{{unauthenticated}}} 1"),
        format!("rpc_server_duration_milliseconds_count{{{ok}}} 3"),
        format!("rpc_server_duration_milliseconds_bucket{{{ok},le=\"+Inf\"}} 3"),
        format!("rpc_server_duration_milliseconds_bucket{{{unauthenticated},le=\"+Inf\"}} 1"),
        format!("rpc_server_active_requests{{{WHOAMI_LABELS}}} 0"),
        format!("rpc_client_requests_total{{{ok}}} 3"),
        format!("rpc_client_requests_total{{{unauthenticated}}} 1"),
        format!("rpc_client_duration_milliseconds_count{{{ok}}} 3"),
        "medbill_outbox_pending{destination=\"collections.PostPayment\",service=\"claims\"} 2"
            .to_owned(),
    ];
    let text = scrape_until(addr, &wanted).await;

    // Latency buckets: cumulative, one per bound, each between 0 and the call count.
    let buckets: Vec<u64> = text
        .lines()
        .filter(|l| {
            l.starts_with(&format!(
                "rpc_server_duration_milliseconds_bucket{{{ok},le="
            ))
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        buckets.len(),
        metrics::DURATION_BUCKETS_MS.len() + 1,
        "{text}"
    );
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    assert!(text.contains("# TYPE rpc_server_duration_milliseconds histogram"));
    assert!(text.contains("# TYPE rpc_server_requests_total counter"));

    assert!(
        !text.contains("grpc.health"),
        "health is not counted:\n{text}"
    );

    // The pool is read at scrape time.
    let pool = "db_client_connection_pool_name=\"claims\"";
    assert!(
        text.contains(&format!(
            "db_client_connection_count{{{pool},db_client_connection_state=\"idle\"}}"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "db_client_connection_count{{{pool},db_client_connection_state=\"used\"}}"
        )),
        "{text}"
    );
    let max_line = format!("db_client_connection_max{{{pool}}} ");
    let max: i64 = text
        .lines()
        .find_map(|l| l.strip_prefix(&max_line))
        .unwrap_or_else(|| panic!("no {max_line} in {text}"))
        .parse()
        .unwrap();
    assert!(max >= 1, "{max}");
    let age_line = "medbill_outbox_oldest_pending_age_seconds{destination=\"collections.PostPayment\",service=\"claims\"} ";
    let age: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix(age_line))
        .unwrap_or_else(|| panic!("no oldest age in {text}"))
        .parse()
        .unwrap();
    assert!((0.0..60.0).contains(&age), "{age}");

    // Delivered messages leave the backlog: the destination reads 0, it does not vanish.
    let mut tx = db.begin().await.unwrap();
    medbill_storage::with_tx!(&mut tx, |conn| {
        medbill_storage::sqlx::query("UPDATE platform_outbox SET status = 'DELIVERED'")
            .execute(&mut *conn)
            .await
            .unwrap();
    });
    tx.commit().await.unwrap();
    let emptied = [
        "medbill_outbox_pending{destination=\"collections.PostPayment\",service=\"claims\"} 0"
            .to_owned(),
        format!("{age_line}0"),
    ];
    scrape_until(addr, &emptied).await;

    // Anything but /metrics is not found.
    let (head, _) = http_get(addr, "/other").await;
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");

    handle.shutdown().await.unwrap();
    metrics.shutdown().await;
    assert!(
        !metrics::observe_database("claims", &db),
        "nothing is observed once metrics stopped"
    );
}

#[test]
fn metrics_show_rpc_counters_latency_pool_and_outbox_backlog() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        testing::run(
            backend,
            "metrics_show_rpc_counters_latency_pool_and_outbox_backlog",
            "claims",
            None,
            scrape_shows_calls_pool_and_outbox,
        );
    }
}
