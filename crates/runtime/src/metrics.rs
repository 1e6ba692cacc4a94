//! Metrics: OpenTelemetry instruments, scraped in Prometheus text format from their own
//! listener (`metrics.listen`, path `/metrics`) and pushed over OTLP/gRPC as well when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//!
//! [`init`] installs the global meter provider once per process; everything that records
//! (the gRPC server and clients of this crate, the clearinghouse client in `medbill-connect`)
//! takes its instruments from the global meter when it is built, so `init` must run before the
//! servers and clients are created (instruments taken earlier stay no-ops).
//!
//! What is recorded (names as Prometheus shows them; docs/observability.md has the full list):
//!
//! - `rpc_server_requests_total`, `rpc_server_duration_milliseconds` and
//!   `rpc_server_active_requests` per gRPC method, labelled with the OpenTelemetry RPC
//!   attributes (`rpc_system`, `rpc_service`, `rpc_method`, `rpc_grpc_status_code`); the
//!   `rpc_client_*` twins for service-to-service calls. Health and reflection calls are not
//!   counted.
//! - `db_client_connection_count` (state `used` / `idle`) and `db_client_connection_max`
//!   per service database pool ([`observe_database`]). sqlx does not expose how many callers
//!   wait for a connection, so there is no `pending_requests` gauge.
//! - `medbill_outbox_pending` and `medbill_outbox_oldest_pending_age_seconds` per service and
//!   destination, from a query every `metrics.outbox_poll_secs`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{
    Counter, Histogram, Meter, MeterProvider as _, ObservableGauge, UpDownCounter,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use medbill_storage::{Database, stats};

/// Instrumentation scope (meter) name of medbill's instruments.
pub const METER_NAME: &str = "medbill";
/// Path the Prometheus text format is served on.
pub const METRICS_PATH: &str = "/metrics";
/// Content type of the Prometheus text exposition format.
const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Bucket bounds (milliseconds) of the call-duration histograms: loopback calls take well
/// under a millisecond, payer calls up to the request timeout.
pub const DURATION_BUCKETS_MS: [f64; 16] = [
    0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1_000.0, 2_500.0, 5_000.0, 10_000.0,
    30_000.0, 60_000.0,
];

/// Holds the `[metrics]` settings.
///
/// ```toml
/// [metrics]
/// enabled = true
/// listen = "127.0.0.1:9464"   # Prometheus scrapes http://ADDR/metrics
/// outbox_poll_secs = 15       # how often the outbox backlog is counted
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serves `/metrics` when true; when false no listener is opened (OTLP push, if
    /// configured, still runs).
    pub enabled: bool,
    /// Address of the metrics listener (`0.0.0.0:9464` to be scraped from elsewhere; port 0
    /// picks a free port).
    pub listen: SocketAddr,
    /// Seconds between two counts of each service's outbox backlog (at least 1).
    pub outbox_poll_secs: u64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9464),
            outbox_poll_secs: 15,
        }
    }
}

impl MetricsConfig {
    fn outbox_poll(&self) -> Duration {
        Duration::from_secs(self.outbox_poll_secs.max(1))
    }
}

/// Reports why metrics could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The Prometheus exporter could not be built.
    #[error("cannot build the Prometheus exporter: {0}")]
    Prometheus(String),
    /// The OTLP metric exporter could not be built.
    #[error("cannot build the OTLP metric exporter: {0}")]
    Exporter(String),
    /// OTLP over gRPC needs a Tokio runtime.
    #[error("OTLP metric export needs a Tokio runtime: call metrics::init inside #[tokio::main]")]
    NoRuntime,
    /// The metrics listener could not be opened (the cause follows in the error chain).
    #[error("cannot open the metrics listener on {addr}")]
    Bind {
        /// The address that was tried.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The process's metrics: the meter provider, the Prometheus registry it feeds and the
/// databases being observed. Dropping it stops the listener and the outbox polls and shuts
/// the provider down (flushing a final OTLP push).
#[must_use = "dropping the handle stops metrics"]
pub struct Metrics {
    provider: SdkMeterProvider,
    registry: prometheus::Registry,
    observed: Arc<Observed>,
    _gauges: DatabaseGauges,
    otlp: bool,
    server: Option<MetricsServer>,
}

/// The observable gauges, kept for as long as metrics run.
struct DatabaseGauges {
    _connections: ObservableGauge<i64>,
    _max_connections: ObservableGauge<i64>,
    _outbox_pending: ObservableGauge<i64>,
    _outbox_age: ObservableGauge<f64>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("otlp", &self.otlp)
            .field("listening", &self.local_addr())
            .finish_non_exhaustive()
    }
}

/// The running `/metrics` listener.
#[derive(Debug)]
struct MetricsServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The databases whose pools and outbox backlog are reported. Shared with the gauge
/// callbacks; emptied when the [`Metrics`] handle is dropped so no pool outlives it.
struct Observed {
    databases: Mutex<Vec<ObservedDb>>,
    poll: Duration,
}

struct ObservedDb {
    name: String,
    db: Database,
    backlog: Arc<Mutex<Backlog>>,
    poller: Option<JoinHandle<()>>,
}

/// The last counted outbox backlog of one database, by destination. Destinations seen once
/// stay (at zero) so an emptied backlog reads 0 rather than disappearing.
#[derive(Default)]
struct Backlog {
    by_destination: BTreeMap<String, (i64, Option<i64>)>,
}

/// The handle [`observe_database`] registers with; set by [`init`], cleared on drop.
static ACTIVE: Mutex<Option<Arc<Observed>>> = Mutex::new(None);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind: keep going.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Installs the global meter provider (Prometheus registry, plus OTLP push when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set), registers the database gauges and, when
/// `config.enabled`, opens the `/metrics` listener on `config.listen`.
///
/// Call once, early, inside the Tokio runtime, before servers and clients are built.
pub async fn init(config: &MetricsConfig, service_name: &str) -> Result<Metrics, MetricsError> {
    let mut metrics = Metrics::install(config, service_name)?;
    if config.enabled {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| MetricsError::Bind {
                    addr: config.listen,
                    source,
                })?;
        metrics.serve(listener)?;
    }
    Ok(metrics)
}

impl Metrics {
    /// Builds the provider and makes it the global one, without opening a listener.
    pub fn install(config: &MetricsConfig, service_name: &str) -> Result<Self, MetricsError> {
        let registry = prometheus::Registry::new();
        let prometheus = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .scope_info_enabled(false)
            .build()
            .map_err(|err| MetricsError::Prometheus(err.to_string()))?;
        let resource = Resource::builder()
            .with_service_name(service_name.to_owned())
            .build();
        let mut builder = SdkMeterProvider::builder()
            .with_resource(resource)
            .with_reader(prometheus);
        let otlp = crate::telemetry::otlp_configured();
        if otlp {
            if tokio::runtime::Handle::try_current().is_err() {
                return Err(MetricsError::NoRuntime);
            }
            // The exporter reads the endpoint and the other OTEL_EXPORTER_OTLP_* settings itself.
            let exporter = opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .build()
                .map_err(|err| MetricsError::Exporter(err.to_string()))?;
            builder = builder.with_periodic_exporter(exporter);
        }
        let provider = builder.build();
        opentelemetry::global::set_meter_provider(provider.clone());

        let observed = Arc::new(Observed {
            databases: Mutex::new(Vec::new()),
            poll: config.outbox_poll(),
        });
        let gauges = register_database_gauges(&provider.meter(METER_NAME), &observed);
        *lock(&ACTIVE) = Some(Arc::clone(&observed));
        Ok(Self {
            provider,
            registry,
            observed,
            _gauges: gauges,
            otlp,
            server: None,
        })
    }

    /// Serves `/metrics` on `listener` in a background task.
    pub fn serve(&mut self, listener: TcpListener) -> Result<(), MetricsError> {
        let local_addr = listener.local_addr().map_err(|source| MetricsError::Bind {
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            source,
        })?;
        let registry = self.registry.clone();
        let app = axum::Router::new().route(
            METRICS_PATH,
            axum::routing::get(move || {
                let registry = registry.clone();
                async move {
                    (
                        [(http::header::CONTENT_TYPE, TEXT_CONTENT_TYPE)],
                        render(&registry),
                    )
                }
            }),
        );
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            if let Err(err) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %err, "metrics listener failed");
            }
        });
        self.server = Some(MetricsServer {
            local_addr,
            stop,
            task,
        });
        Ok(())
    }

    /// Returns the address `/metrics` is served on, if the listener runs.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(|s| s.local_addr)
    }

    /// Returns `http://ADDR/metrics` when the listener runs (dialable even when bound to
    /// 0.0.0.0).
    pub fn url(&self) -> Option<String> {
        self.local_addr()
            .map(|addr| format!("{}{METRICS_PATH}", crate::config::local_url(addr)))
    }

    /// Reports whether metrics are also pushed over OTLP.
    pub fn exports_otlp(&self) -> bool {
        self.otlp
    }

    /// Returns the current metrics in Prometheus text format (what `/metrics` answers).
    pub fn render(&self) -> String {
        render(&self.registry)
    }

    /// Returns a meter of this provider (the same instruments as the global meter).
    pub fn meter(&self) -> Meter {
        self.provider.meter(METER_NAME)
    }

    /// Stops the listener, waiting for it to close.
    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.stop.send_replace(true);
            let _ = server.task.await;
        }
    }
}

impl Drop for Metrics {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop.send_replace(true);
        }
        {
            let mut active = lock(&ACTIVE);
            if active
                .as_ref()
                .is_some_and(|a| Arc::ptr_eq(a, &self.observed))
            {
                *active = None;
            }
        }
        for observed in lock(&self.observed.databases).drain(..) {
            if let Some(poller) = observed.poller {
                poller.abort();
            }
        }
        // Errors can only be reported to stderr: the subscriber may be gone.
        if let Err(err) = self.provider.shutdown() {
            eprintln!("medbill: shutting down the meter provider failed: {err}");
        }
    }
}

fn render(registry: &prometheus::Registry) -> String {
    let families = registry.gather();
    let mut text = String::new();
    if let Err(err) = prometheus::TextEncoder::new().encode_utf8(&families, &mut text) {
        tracing::error!(error = %err, "cannot encode metrics");
    }
    text
}

/// Reports the pool and the outbox backlog of `db` under `name` (the service name) while
/// metrics run: the pool gauges read the pool when scraped, the outbox backlog is counted
/// every `metrics.outbox_poll_secs` by a background task. Returns false (and does nothing)
/// when [`init`] has not run, so code paths shared with tests need no metrics set-up.
pub fn observe_database(name: &str, db: &Database) -> bool {
    let Some(observed) = lock(&ACTIVE).clone() else {
        return false;
    };
    let backlog = Arc::new(Mutex::new(Backlog::default()));
    let poll = observed.poll;
    let poller = tokio::runtime::Handle::try_current().ok().map(|runtime| {
        runtime.spawn(poll_outbox(
            name.to_owned(),
            db.clone(),
            Arc::clone(&backlog),
            poll,
        ))
    });
    lock(&observed.databases).push(ObservedDb {
        name: name.to_owned(),
        db: db.clone(),
        backlog,
        poller,
    });
    true
}

/// Counts `db`'s outbox backlog every `every`, keeping the last good count.
async fn poll_outbox(name: String, db: Database, backlog: Arc<Mutex<Backlog>>, every: Duration) {
    let mut failing = false;
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match stats::outbox_backlog(&db).await {
            Ok(rows) => {
                if failing {
                    tracing::info!(service = %name, "outbox backlog query works again");
                    failing = false;
                }
                let mut backlog = lock(&backlog);
                for entry in backlog.by_destination.values_mut() {
                    *entry = (0, None);
                }
                for row in rows {
                    backlog
                        .by_destination
                        .insert(row.destination, (row.pending, Some(row.oldest_created_at)));
                }
            }
            Err(err) => {
                // Said once per outage, not every poll.
                if !failing {
                    tracing::warn!(service = %name, error = %err, "cannot count the outbox backlog");
                    failing = true;
                }
            }
        }
    }
}

/// Registers the observable gauges that read the observed databases at collection time.
fn register_database_gauges(meter: &Meter, observed: &Arc<Observed>) -> DatabaseGauges {
    let pools = Arc::clone(observed);
    let connections = meter
        .i64_observable_gauge("db.client.connection.count")
        .with_description("Connections of the service's database pool, by state (used or idle).")
        .with_unit("{connection}")
        .with_callback(move |gauge| {
            for db in lock(&pools.databases).iter() {
                let pool = stats::pool_stats(&db.db);
                let used = i64::from(pool.size.saturating_sub(pool.idle));
                for (state, value) in [("used", used), ("idle", i64::from(pool.idle))] {
                    gauge.observe(
                        value,
                        &[
                            KeyValue::new("db.client.connection.pool.name", db.name.clone()),
                            KeyValue::new("db.client.connection.state", state),
                        ],
                    );
                }
            }
        })
        .build();
    let pools = Arc::clone(observed);
    let max_connections = meter
        .i64_observable_gauge("db.client.connection.max")
        .with_description("Most connections the service's database pool may open.")
        .with_unit("{connection}")
        .with_callback(move |gauge| {
            for db in lock(&pools.databases).iter() {
                gauge.observe(
                    i64::from(stats::pool_stats(&db.db).max),
                    &[KeyValue::new(
                        "db.client.connection.pool.name",
                        db.name.clone(),
                    )],
                );
            }
        })
        .build();
    let outboxes = Arc::clone(observed);
    let outbox_pending = meter
        .i64_observable_gauge("medbill.outbox.pending")
        .with_description("Outbox messages waiting for delivery, by service and destination.")
        .with_unit("{message}")
        .with_callback(move |gauge| {
            for db in lock(&outboxes.databases).iter() {
                for (destination, (pending, _)) in &lock(&db.backlog).by_destination {
                    gauge.observe(*pending, &outbox_labels(&db.name, destination));
                }
            }
        })
        .build();
    let outboxes = Arc::clone(observed);
    let outbox_age = meter
        .f64_observable_gauge("medbill.outbox.oldest_pending_age")
        .with_description(
            "Age of the oldest outbox message waiting for delivery (0 when none waits).",
        )
        .with_unit("s")
        .with_callback(move |gauge| {
            let now = medbill_storage::time::now_micros();
            for db in lock(&outboxes.databases).iter() {
                for (destination, (_, oldest)) in &lock(&db.backlog).by_destination {
                    let age = oldest.map_or(0.0, |created| {
                        // Micros to seconds; a backlog is never old enough to lose precision.
                        now.saturating_sub(created).max(0) as f64 / 1_000_000.0
                    });
                    gauge.observe(age, &outbox_labels(&db.name, destination));
                }
            }
        })
        .build();
    DatabaseGauges {
        _connections: connections,
        _max_connections: max_connections,
        _outbox_pending: outbox_pending,
        _outbox_age: outbox_age,
    }
}

fn outbox_labels(service: &str, destination: &str) -> [KeyValue; 2] {
    [
        KeyValue::new("service", service.to_owned()),
        KeyValue::new("destination", destination.to_owned()),
    ]
}

/// Which end of a gRPC call is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RpcSide {
    /// Calls this process serves (`rpc.server.*`).
    Server,
    /// Calls this process makes (`rpc.client.*`).
    Client,
}

/// The instruments of one side of gRPC calls, following the OpenTelemetry RPC semantic
/// conventions (v1.37: `rpc.{server,client}.duration` in milliseconds, attributes
/// `rpc.system`, `rpc.service`, `rpc.method`, `rpc.grpc.status_code`), plus a call counter and
/// an in-flight gauge.
#[derive(Clone, Debug)]
pub struct RpcInstruments {
    requests: Counter<u64>,
    duration: Histogram<f64>,
    active: UpDownCounter<i64>,
}

impl RpcInstruments {
    /// Builds the instruments of `side` from `meter`.
    pub fn new(meter: &Meter, side: RpcSide) -> Self {
        let (requests, duration, active, what) = match side {
            RpcSide::Server => (
                "rpc.server.requests",
                "rpc.server.duration",
                "rpc.server.active_requests",
                "inbound",
            ),
            RpcSide::Client => (
                "rpc.client.requests",
                "rpc.client.duration",
                "rpc.client.active_requests",
                "outbound",
            ),
        };
        Self {
            requests: meter
                .u64_counter(requests)
                .with_description(format!(
                    "Completed {what} gRPC calls, by method and status code."
                ))
                .with_unit("{call}")
                .build(),
            duration: meter
                .f64_histogram(duration)
                .with_description(format!("Duration of {what} gRPC calls."))
                .with_unit("ms")
                .with_boundaries(DURATION_BUCKETS_MS.to_vec())
                .build(),
            active: meter
                .i64_up_down_counter(active)
                .with_description(format!("{what} gRPC calls in progress."))
                .with_unit("{call}")
                .build(),
        }
    }

    /// Builds the instruments of `side` from the global meter.
    pub fn global(side: RpcSide) -> Self {
        Self::new(&opentelemetry::global::meter(METER_NAME), side)
    }

    /// Counts a call to `service`/`method` as started.
    pub(crate) fn started(&self, service: &str, method: &str) {
        self.active.add(1, &method_labels(service, method));
    }

    /// Records a finished call: its status code and how long it took.
    pub(crate) fn finished(&self, service: &str, method: &str, code: i32, elapsed: Duration) {
        self.active.add(-1, &method_labels(service, method));
        let labels = [
            KeyValue::new("rpc.system", "grpc"),
            KeyValue::new("rpc.service", service.to_owned()),
            KeyValue::new("rpc.method", method.to_owned()),
            KeyValue::new("rpc.grpc.status_code", i64::from(code)),
        ];
        self.requests.add(1, &labels);
        self.duration
            .record(elapsed.as_secs_f64() * 1_000.0, &labels);
    }
}

fn method_labels(service: &str, method: &str) -> [KeyValue; 3] {
    [
        KeyValue::new("rpc.system", "grpc"),
        KeyValue::new("rpc.service", service.to_owned()),
        KeyValue::new("rpc.method", method.to_owned()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_listen_on_loopback_9464() {
        let config = MetricsConfig::default();
        assert_eq!(config.listen.to_string(), "127.0.0.1:9464");
        assert!(config.enabled);
        let zero = MetricsConfig {
            outbox_poll_secs: 0,
            ..config
        };
        assert_eq!(zero.outbox_poll(), Duration::from_secs(1));
    }

    #[test]
    fn rpc_instruments_render_with_semantic_convention_labels() {
        let registry = prometheus::Registry::new();
        let exporter = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .scope_info_enabled(false)
            .without_target_info()
            .build()
            .unwrap();
        let provider = SdkMeterProvider::builder().with_reader(exporter).build();
        let server = RpcInstruments::new(&provider.meter(METER_NAME), RpcSide::Server);
        server.started("medbill.claims.v1.ClaimsService", "GetClaim");
        server.finished(
            "medbill.claims.v1.ClaimsService",
            "GetClaim",
            5,
            Duration::from_micros(1_500),
        );
        let text = render(&registry);
        let labels = "rpc_grpc_status_code=\"5\",rpc_method=\"GetClaim\",\
                      rpc_service=\"medbill.claims.v1.ClaimsService\",rpc_system=\"grpc\"";
        assert!(
            text.contains(&format!("rpc_server_requests_total{{{labels}}} 1")),
            "{text}"
        );
        // 1.5 ms falls in the 2.5 ms bucket, not the 1 ms one.
        assert!(
            text.contains(&format!(
                "rpc_server_duration_milliseconds_bucket{{{labels},le=\"1\"}} 0"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "rpc_server_duration_milliseconds_bucket{{{labels},le=\"2.5\"}} 1"
            )),
            "{text}"
        );
        assert!(
            text.contains(
                "rpc_server_active_requests{rpc_method=\"GetClaim\",\
                 rpc_service=\"medbill.claims.v1.ClaimsService\",rpc_system=\"grpc\"} 0"
            ),
            "{text}"
        );
    }
}
