//! Logging and tracing: `tracing` with an OpenTelemetry bridge and W3C trace-context
//! propagation.
//!
//! [`init`] installs, once per process: an `EnvFilter` (`RUST_LOG` if set, else the configured
//! filter), a fmt layer (pretty or JSON, on stderr so stdout stays free for the binary's own
//! output), and a `tracing-opentelemetry` layer. JSON lines carry the `trace_id` and `span_id`
//! of the OpenTelemetry span they were logged in (see [`json_log_layer`]), so a log line leads
//! to its trace; pretty lines are coloured only when stderr is a terminal and `NO_COLOR` is
//! unset. Spans are exported over OTLP/gRPC only when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set; without it spans still get trace and span ids, so
//! inbound trace context is still passed on to downstream calls. The W3C
//! `TraceContextPropagator` is installed globally.
//!
//! Tests use [`testing::span_exporter`] instead, which installs an in-memory exporter once and
//! hands every test the same exporter.

use std::io::IsTerminal as _;

use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{Format, Json, JsonFields, Writer};
use tracing_subscriber::fmt::time::SystemTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogFormat, TelemetryConfig};

/// Environment variable that switches on OTLP export (standard OpenTelemetry name).
pub const OTLP_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// Instrumentation scope name of medbill's spans.
const TRACER_NAME: &str = "medbill";

/// Reports why telemetry could not be initialised.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The log filter directives do not parse.
    #[error("invalid log filter {filter:?}: {reason}")]
    InvalidFilter {
        /// The directives that were tried.
        filter: String,
        /// The parser's complaint.
        reason: String,
    },
    /// The OTLP exporter could not be built.
    #[error("cannot build the OTLP span exporter: {0}")]
    Exporter(String),
    /// OTLP over gRPC needs a Tokio runtime; call `init` from inside one.
    #[error("OTLP export needs a Tokio runtime: call telemetry::init inside #[tokio::main]")]
    NoRuntime,
    /// A global subscriber is already installed (init called twice).
    #[error("a global tracing subscriber is already installed")]
    AlreadyInitialised,
}

/// Keeps the tracer provider alive; flushes and shuts it down when dropped.
#[must_use = "dropping the guard shuts tracing export down"]
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
    otlp: bool,
}

impl TelemetryGuard {
    /// Reports whether spans are exported over OTLP.
    pub fn exports_otlp(&self) -> bool {
        self.otlp
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            // Errors here can only be reported to stderr: the subscriber may be gone.
            if let Err(err) = provider.force_flush() {
                eprintln!("medbill: flushing spans failed: {err}");
            }
            if let Err(err) = provider.shutdown() {
                eprintln!("medbill: shutting down the tracer provider failed: {err}");
            }
        }
    }
}

/// Reports whether OTLP export is switched on (`OTEL_EXPORTER_OTLP_ENDPOINT` set and not blank).
pub fn otlp_configured() -> bool {
    std::env::var(OTLP_ENDPOINT_ENV).is_ok_and(|v| !v.trim().is_empty())
}

/// Reports whether log lines on stderr may use ANSI colours: only for a terminal, and never
/// when `NO_COLOR` is set (<https://no-color.org>).
pub fn stderr_supports_colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Returns the JSON log layer writing to `make_writer`: tracing-subscriber's JSON lines
/// (timestamp, level, fields, target, current span) plus `trace_id` and `span_id` of the
/// OpenTelemetry span the event belongs to (absent outside any span).
pub fn json_log_layer<S, W>(make_writer: W) -> impl Layer<S> + Send + Sync + 'static
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .fmt_fields(JsonFields::new())
        .event_format(JsonWithTraceIds::default())
        .with_ansi(false)
        .with_writer(make_writer)
}

/// Formats an event as tracing-subscriber's JSON line and adds the OpenTelemetry ids.
struct JsonWithTraceIds {
    inner: Format<Json, SystemTime>,
}

impl Default for JsonWithTraceIds {
    fn default() -> Self {
        Self {
            inner: tracing_subscriber::fmt::format()
                .json()
                .with_current_span(true)
                .with_span_list(false),
        }
    }
}

impl<S, N> FormatEvent<S, N> for JsonWithTraceIds
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        // The inner formatter writes one JSON object and a newline; the ids go in before the
        // closing brace. Anything else is passed on untouched.
        match (event_trace_ids(ctx), line.strip_suffix("}\n")) {
            (Some((trace_id, span_id)), Some(object)) => {
                writer.write_str(object)?;
                write!(
                    writer,
                    ",\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\"}}"
                )?;
                writeln!(writer)
            }
            _ => writer.write_str(&line),
        }
    }
}

/// Returns the trace and span id of the OpenTelemetry span the event is logged in.
fn event_trace_ids<S, N>(ctx: &FmtContext<'_, S, N>) -> Option<(String, String)>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    let span = ctx.event_scope()?.next()?;
    let id = span.id();
    // No extension of the span may be borrowed here: the lookup locks them.
    drop(span);
    let context = tracing::dispatcher::get_default(|dispatch| {
        tracing_opentelemetry::get_otel_context(&id, dispatch)
    })?;
    let otel_span = context.span();
    let span_context = otel_span.span_context();
    span_context.is_valid().then(|| {
        (
            span_context.trace_id().to_string(),
            span_context.span_id().to_string(),
        )
    })
}

/// Returns the filter directives to use: `RUST_LOG` when set, else the configured filter.
fn filter_directives(config: &TelemetryConfig) -> String {
    match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => value,
        _ => config.filter.clone(),
    }
}

fn env_filter(directives: &str) -> Result<EnvFilter, TelemetryError> {
    EnvFilter::try_new(directives).map_err(|err| TelemetryError::InvalidFilter {
        filter: directives.to_owned(),
        reason: err.to_string(),
    })
}

/// Installs logging, tracing and trace-context propagation for the process.
///
/// Call once, early in `main`, inside the Tokio runtime; keep the returned guard until exit.
pub fn init(config: &TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    let filter = env_filter(&filter_directives(config))?;
    let resource = Resource::builder()
        .with_service_name(config.service_name.clone())
        .build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    let otlp = otlp_configured();
    if otlp {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(TelemetryError::NoRuntime);
        }
        // The exporter reads the endpoint and the other OTEL_EXPORTER_OTLP_* settings itself.
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
            .map_err(|err| TelemetryError::Exporter(err.to_string()))?;
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();
    let tracer = provider.tracer(TRACER_NAME);

    let fmt_layer = match config.log_format {
        LogFormat::Json => json_log_layer(std::io::stderr).boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_ansi(stderr_supports_colour())
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let otel_layer = tracing_opentelemetry::layer().with_tracer(tracer);
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInitialised)?;
    // Only after the subscriber is ours, so a failed second init changes nothing global.
    opentelemetry::global::set_tracer_provider(provider.clone());

    Ok(TelemetryGuard {
        provider: Some(provider),
        otlp,
    })
}

/// In-memory span capture for tests, shared by every test in the process.
pub mod testing {
    use std::sync::OnceLock;

    use opentelemetry::trace::{SpanId, TraceId, TracerProvider as _};
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::{EnvFilter, Layer as _};

    struct Installed {
        exporter: InMemorySpanExporter,
        // Kept so the provider (and its processor) lives as long as the process.
        _provider: SdkTracerProvider,
    }

    static INSTALLED: OnceLock<Installed> = OnceLock::new();

    /// Returns the process-wide in-memory span exporter, installing tracing with it on first
    /// call. Safe to call from many tests at once; all share one exporter, so a test should
    /// look only at spans of its own trace ids (see [`spans_of_trace`]) and never `reset` it.
    ///
    /// Spans at INFO and above reach the exporter; log output goes to the test writer,
    /// filtered by `RUST_LOG` (default `warn`). If another global subscriber was installed
    /// first, spans are not captured and tests that rely on them will fail visibly.
    pub fn span_exporter() -> InMemorySpanExporter {
        INSTALLED
            .get_or_init(|| {
                opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
                let exporter = InMemorySpanExporter::default();
                let provider = SdkTracerProvider::builder()
                    .with_simple_exporter(exporter.clone())
                    .build();
                opentelemetry::global::set_tracer_provider(provider.clone());
                let otel_layer = tracing_opentelemetry::layer()
                    .with_tracer(provider.tracer(super::TRACER_NAME))
                    .with_filter(LevelFilter::INFO);
                let log_filter =
                    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
                let fmt_layer = tracing_subscriber::fmt::layer()
                    .with_test_writer()
                    .with_filter(log_filter);
                // Ignored error: another subscriber already installed (documented above).
                let _ = tracing_subscriber::registry()
                    .with(otel_layer)
                    .with(fmt_layer)
                    .try_init();
                Installed {
                    exporter,
                    _provider: provider,
                }
            })
            .exporter
            .clone()
    }

    /// Returns the finished spans that belong to `trace_id`.
    pub fn spans_of_trace(trace_id: TraceId) -> Vec<SpanData> {
        span_exporter()
            .get_finished_spans()
            .unwrap_or_default()
            .into_iter()
            .filter(|span| span.span_context.trace_id() == trace_id)
            .collect()
    }

    /// Returns the finished span with `span_id`, if any.
    pub fn span_by_id(span_id: SpanId) -> Option<SpanData> {
        span_exporter()
            .get_finished_spans()
            .unwrap_or_default()
            .into_iter()
            .find(|span| span.span_context.span_id() == span_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    #[test]
    fn testing_exporter_captures_spans_and_is_shared() {
        let exporter = testing::span_exporter();
        let again = testing::span_exporter();
        let trace_id = {
            let span = tracing::info_span!("telemetry-test-span", answer = 42);
            let _entered = span.enter();
            span.context().span().span_context().trace_id()
        };
        let spans = testing::spans_of_trace(trace_id);
        assert_eq!(spans.len(), 1, "one finished span in this trace");
        assert_eq!(spans[0].name, "telemetry-test-span");
        // Both handles see the same storage.
        let total_a = exporter.get_finished_spans().unwrap().len();
        let total_b = again.get_finished_spans().unwrap().len();
        assert!(total_a >= 1 && total_b >= 1);
    }

    #[test]
    fn bad_filter_is_reported_with_the_directives() {
        let err = env_filter("info,[[[").unwrap_err();
        assert!(err.to_string().contains("[[["), "{err}");
    }

    #[test]
    fn init_after_the_test_subscriber_reports_already_initialised() {
        let _ = testing::span_exporter();
        let config = TelemetryConfig::default();
        // OTLP is not configured in the test environment, so the only failure left is the
        // already installed global subscriber.
        if std::env::var(OTLP_ENDPOINT_ENV).is_err() {
            let err = init(&config).unwrap_err();
            assert!(matches!(err, TelemetryError::AlreadyInitialised), "{err}");
        }
    }
}
