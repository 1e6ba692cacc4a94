//! What every load driver shares: connecting, the bearer token, running calls at a fixed
//! concurrency until a count or a deadline, percentiles, and printing figures as a table.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

/// When a timed phase stops: after `requests` calls, after `duration`, or at whichever comes
/// first when both are given.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limit {
    /// Most calls started.
    pub requests: Option<u64>,
    /// Longest run.
    pub duration: Option<Duration>,
}

/// Adds the bearer token (if any) to every call; cheap to clone with the client.
#[derive(Clone, Debug, Default)]
pub struct Bearer(Option<MetadataValue<tonic::metadata::Ascii>>);

impl Bearer {
    /// Sends `token` as `authorization: Bearer …` (nothing without one).
    ///
    /// # Errors
    /// The token is not a valid header value.
    pub fn new(token: Option<&str>) -> anyhow::Result<Self> {
        token
            .map(|t| format!("Bearer {t}").parse())
            .transpose()
            .map(Self)
            .context("--token is not a valid header value")
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(h) = &self.0 {
            req.metadata_mut().insert("authorization", h.clone());
        }
        Ok(req)
    }
}

/// Opens `connections` HTTP/2 connections to `url` (calls are spread over them).
///
/// # Errors
/// The URL is invalid or the server cannot be reached.
pub async fn connect(url: &str, connections: usize) -> anyhow::Result<Vec<Channel>> {
    let endpoint = Endpoint::from_shared(url.to_owned())
        .context("--url is not a valid URL")?
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60));
    let mut channels = Vec::with_capacity(connections.max(1));
    for _ in 0..connections.max(1) {
        channels.push(
            endpoint
                .connect()
                .await
                .with_context(|| format!("cannot connect to {url}"))?,
        );
    }
    Ok(channels)
}

/// The measured outcome of one phase: successful calls, errors by gRPC code, latencies.
#[derive(Debug, Default, Clone)]
pub struct Phase {
    /// Wall time of the phase.
    pub elapsed: Duration,
    /// Calls that succeeded.
    pub ok: u64,
    /// Successful calls the driver flagged (e.g. answered from the cache, scrub passed).
    pub flagged: u64,
    /// Failed calls by gRPC code.
    pub errors: BTreeMap<String, u64>,
    /// Latencies of the successful calls, in microseconds, sorted.
    latencies_us: Vec<u64>,
}

impl Phase {
    /// Records one successful call of `latency`.
    pub fn record(&mut self, latency: Duration) {
        self.ok += 1;
        self.latencies_us
            .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
    }

    /// Counts one failed call by its code.
    pub fn fail(&mut self, status: &tonic::Status) {
        *self
            .errors
            .entry(format!("{:?}", status.code()))
            .or_default() += 1;
    }

    /// Adds another worker's figures to these (call [`Phase::finish`] after the last one).
    pub fn merge(&mut self, other: Phase) {
        self.ok += other.ok;
        self.flagged += other.flagged;
        self.latencies_us.extend(other.latencies_us);
        for (code, n) in other.errors {
            *self.errors.entry(code).or_default() += n;
        }
    }

    /// Sorts the latencies and sets the elapsed time.
    pub fn finish(&mut self, elapsed: Duration) {
        self.elapsed = elapsed;
        self.latencies_us.sort_unstable();
    }

    /// Returns the nearest-rank percentile `p` (0..=100) of the successful calls' latencies.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies_us.is_empty() {
            return Duration::ZERO;
        }
        // The float only picks an index.
        let rank = (p / 100.0 * self.latencies_us.len() as f64).ceil() as usize;
        let index = rank.clamp(1, self.latencies_us.len()) - 1;
        Duration::from_micros(self.latencies_us.get(index).copied().unwrap_or(0))
    }

    /// Returns `count` per second of the phase's wall time.
    pub fn rate(&self, count: u64) -> f64 {
        count as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// Returns successful calls per second.
    pub fn throughput(&self) -> f64 {
        self.rate(self.ok)
    }

    /// Returns the failed calls.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Writes the lines every single-phase bench prints under its headline: the latency
    /// percentiles with the flagged calls (named `flagged`, e.g. "pended"), then the errors.
    pub fn write_latency_and_errors(
        &self,
        f: &mut std::fmt::Formatter<'_>,
        flagged: &str,
    ) -> std::fmt::Result {
        writeln!(
            f,
            "latency p50 {} ms, p90 {} ms, p99 {} ms, max {} ms; {flagged}: {}",
            ms(self.percentile(50.0)),
            ms(self.percentile(90.0)),
            ms(self.percentile(99.0)),
            ms(self.percentile(100.0)),
            self.flagged
        )?;
        write!(f, "errors: {}", self.errors_text())
    }

    /// Describes the errors: "none" or each code with its count.
    pub fn errors_text(&self) -> String {
        if self.errors.is_empty() {
            "none".to_owned()
        } else {
            self.errors
                .iter()
                .map(|(code, n)| format!("{code} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    }
}

/// Formats a duration in milliseconds with three decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

/// The limit of a batch phase: enough calls of `size` items for `items` items (the last call
/// carries the rest), each phase capped by `duration`.
pub fn batch_calls(items: u64, size: u64, duration: Option<Duration>) -> Limit {
    Limit {
        requests: Some(items.div_ceil(size.max(1)).max(1)),
        duration,
    }
}

/// The items of batch call `n` of `size` items over `total` items: `n * size ..` up to `total`.
pub fn batch_items(n: u64, size: u64, total: u64) -> std::ops::Range<u64> {
    let first = n.saturating_mul(size).min(total);
    first..first.saturating_add(size).min(total)
}

/// Runs `call(n)` for n = 0, 1, 2, … with `concurrency` calls in flight until `limit`, and
/// measures each. A call answers whether it is flagged ([`Phase::flagged`]); errors are counted
/// by code and left out of the latencies.
///
/// # Errors
/// A worker panicked.
pub async fn drive<F, Fut>(concurrency: usize, limit: Limit, call: F) -> anyhow::Result<Phase>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<bool, tonic::Status>> + Send,
{
    let call = Arc::new(call);
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = limit.duration.map(|d| started + d);
    let max = limit.requests.unwrap_or(u64::MAX);
    let mut workers = Vec::with_capacity(concurrency.max(1));
    for _ in 0..concurrency.max(1) {
        let call = Arc::clone(&call);
        let counter = Arc::clone(&counter);
        workers.push(tokio::spawn(async move {
            let mut phase = Phase::default();
            loop {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                if n >= max || deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let t0 = Instant::now();
                match call(n).await {
                    Ok(flag) => {
                        phase.record(t0.elapsed());
                        phase.flagged += u64::from(flag);
                    }
                    Err(status) => phase.fail(&status),
                }
            }
            phase
        }));
    }
    let mut phase = Phase::default();
    for w in workers {
        phase.merge(w.await.context("a bench worker panicked")?);
    }
    phase.finish(started.elapsed());
    Ok(phase)
}

/// A table of figures printed with aligned columns.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// Starts a table with its header row.
    pub fn new(header: &[&str]) -> Self {
        Self {
            rows: vec![header.iter().map(|h| (*h).to_owned()).collect()],
        }
    }

    /// Adds a row (as many cells as the header).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for (i, row) in self.rows.iter().enumerate() {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(c, (cell, w))| {
                    // The first column (names) reads left-aligned, figures right-aligned.
                    if c == 0 {
                        format!("{cell:<w$}")
                    } else {
                        format!("{cell:>w$}")
                    }
                })
                .collect();
            writeln!(f, "| {} |", cells.join(" | "))?;
            if i == 0 {
                let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
                writeln!(f, "|-{}-|", rule.join("-|-"))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut phase = Phase::default();
        for ms in (1..=100).rev() {
            phase.record(Duration::from_millis(ms));
        }
        phase.finish(Duration::from_secs(2));
        assert_eq!(phase.percentile(50.0), Duration::from_millis(50));
        assert_eq!(phase.percentile(99.0), Duration::from_millis(99));
        assert_eq!(phase.percentile(100.0), Duration::from_millis(100));
        assert_eq!(phase.throughput(), 50.0);
        assert_eq!(Phase::default().percentile(99.0), Duration::ZERO);
    }

    #[tokio::test]
    async fn drive_stops_at_the_count_and_counts_errors_by_code() -> anyhow::Result<()> {
        let limit = Limit {
            requests: Some(10),
            duration: None,
        };
        let phase = drive(3, limit, |n| async move {
            if n % 5 == 0 {
                Err(tonic::Status::unavailable("busy"))
            } else {
                Ok(n % 2 == 0)
            }
        })
        .await?;
        assert_eq!(phase.ok, 8);
        assert_eq!(phase.flagged, 4, "2, 4, 6, 8");
        assert_eq!(phase.errors_text(), "Unavailable 2");
        Ok(())
    }

    #[test]
    fn tables_align_their_columns() {
        let mut t = Table::new(&["phase", "calls/s"]);
        t.row(vec!["create".into(), "5000".into()]);
        assert_eq!(
            t.to_string(),
            "| phase  | calls/s |\n|--------|---------|\n| create |    5000 |\n"
        );
    }
}
