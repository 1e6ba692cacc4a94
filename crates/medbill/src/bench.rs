//! `medbill bench`: load drivers against a running suite, printing throughput and latency.
//!
//! `medbill bench eligibility --url http://127.0.0.1:50051 --mode warm --concurrency 64 --duration 10`
//! drives CheckEligibility for one payer-sim catalog member:
//!
//! - `warm`: the same question every time (after one priming call), so the service answers from
//!   its cache: what the front desk sees on a repeat check;
//! - `cold`: every call asks a question not in flight and skips the cache (`force_refresh`, the
//!   date of service cycling over 300 days), so every call reaches the payer (payer-sim) and writes
//!   an audit row.
//!
//! Every call carries its own idempotency key. Errors are counted by gRPC code and excluded
//! from the latency figures.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use medbill_proto::common::v1 as common;
use medbill_proto::eligibility::v1 as pb;
use medbill_proto::eligibility::v1::eligibility_service_client::EligibilityServiceClient;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

/// Load drivers.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Drive CheckEligibility (warm: cache hits; cold: every call reaches the payer).
    Eligibility {
        /// gRPC URL of the suite (or of the eligibility service).
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        url: String,
        /// Bearer token (omit in dev mode, where no tokens are configured).
        #[arg(long, env = "MEDBILL_BENCH_TOKEN")]
        token: Option<String>,
        /// Calls in flight at once.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Seconds to run (ignored when --requests is given).
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Stop after this many calls instead of after --duration.
        #[arg(long)]
        requests: Option<u64>,
        /// warm (cache hits) or cold (every call reaches the payer).
        #[arg(long, value_enum, default_value_t = Mode::Warm)]
        mode: Mode,
        /// HTTP/2 connections the calls are spread over.
        #[arg(long, default_value_t = 4)]
        connections: usize,
        /// Payer id of the member asked about (a payer-sim catalog payer).
        #[arg(long, default_value = "SIMPPO")]
        payer_id: String,
        /// Member id (synthetic payer-sim catalog member).
        #[arg(long, default_value = "SPX100000001")]
        member_id: String,
        /// Subscriber last name, as in the catalog.
        #[arg(long, default_value = "TESTPATIENT")]
        last_name: String,
        /// Subscriber first name, as in the catalog.
        #[arg(long, default_value = "AVERY")]
        first_name: String,
        /// Subscriber birth date, as in the catalog.
        #[arg(long, default_value = "1985-03-14")]
        birth_date: String,
        /// First date of service (cold mode cycles over the 300 days from here).
        #[arg(long, default_value = "2026-01-05")]
        date_of_service: String,
    },
}

/// What the eligibility bench measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Repeated identical checks answered from the cache.
    Warm,
    /// Checks that all reach the payer.
    Cold,
}

/// Runs a bench command and prints its figures.
pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Eligibility {
            url,
            token,
            concurrency,
            duration,
            requests,
            mode,
            connections,
            payer_id,
            member_id,
            last_name,
            first_name,
            birth_date,
            date_of_service,
        } => {
            let base = chrono::NaiveDate::parse_from_str(&date_of_service, "%Y-%m-%d")
                .context("--date-of-service must be YYYY-MM-DD")?;
            let template = pb::CheckEligibilityRequest {
                subject: Some(pb::check_eligibility_request::Subject::Inline(
                    pb::InlineSubscriber {
                        payer_id,
                        member_id,
                        subscriber_name: Some(common::PersonName {
                            last_name,
                            first_name,
                            ..Default::default()
                        }),
                        subscriber_birth_date: birth_date,
                        patient_ref: "bench".to_owned(),
                        ..Default::default()
                    },
                )),
                date_of_service: date_of_service.clone(),
                ..Default::default()
            };
            let plan = Plan {
                url,
                token,
                concurrency: concurrency.max(1),
                limit: match requests {
                    Some(n) => Limit::Requests(n),
                    None => Limit::Duration(Duration::from_secs(duration.max(1))),
                },
                mode,
                connections: connections.max(1),
                template,
                base,
            };
            let report = eligibility(&plan).await?;
            println!("{report}");
            Ok(())
        }
    }
}

/// When a run stops.
#[derive(Debug, Clone, Copy)]
enum Limit {
    Duration(Duration),
    Requests(u64),
}

struct Plan {
    url: String,
    token: Option<String>,
    concurrency: usize,
    limit: Limit,
    mode: Mode,
    connections: usize,
    template: pb::CheckEligibilityRequest,
    base: chrono::NaiveDate,
}

/// Adds the bearer token to every call.
type Intercept =
    Box<dyn FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Send>;

type Client = EligibilityServiceClient<InterceptedService<Channel, Intercept>>;

fn client(channel: Channel, token: Option<&str>) -> anyhow::Result<Client> {
    let header: Option<MetadataValue<_>> = token
        .map(|t| format!("Bearer {t}").parse())
        .transpose()
        .context("--token is not a valid header value")?;
    let intercept: Intercept = Box::new(move |mut req: tonic::Request<()>| {
        if let Some(h) = &header {
            req.metadata_mut().insert("authorization", h.clone());
        }
        Ok(req)
    });
    Ok(EligibilityServiceClient::with_interceptor(
        channel, intercept,
    ))
}

/// The measured outcome of a run.
#[derive(Debug)]
pub struct Report {
    mode: Mode,
    concurrency: usize,
    elapsed: Duration,
    ok: u64,
    from_cache: u64,
    errors: BTreeMap<String, u64>,
    latencies_us: Vec<u64>,
}

impl Report {
    fn percentile(&self, p: f64) -> Duration {
        if self.latencies_us.is_empty() {
            return Duration::ZERO;
        }
        // Nearest-rank percentile over sorted latencies; the float only picks an index.
        let rank = (p / 100.0 * self.latencies_us.len() as f64).ceil() as usize;
        let index = rank.clamp(1, self.latencies_us.len()) - 1;
        Duration::from_micros(self.latencies_us.get(index).copied().unwrap_or(0))
    }

    /// Returns successful calls per second.
    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        writeln!(
            f,
            "eligibility bench ({:?}, concurrency {}): {} ok in {:.2} s = {:.0} checks/s",
            self.mode,
            self.concurrency,
            self.ok,
            self.elapsed.as_secs_f64(),
            self.throughput()
        )?;
        writeln!(
            f,
            "latency p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms; answered from cache: {}",
            ms(self.percentile(50.0)),
            ms(self.percentile(90.0)),
            ms(self.percentile(99.0)),
            ms(self.percentile(100.0)),
            self.from_cache
        )?;
        if self.errors.is_empty() {
            write!(f, "errors: none")
        } else {
            write!(f, "errors: {:?}", self.errors)
        }
    }
}

async fn eligibility(plan: &Plan) -> anyhow::Result<Report> {
    let endpoint = Endpoint::from_shared(plan.url.clone())
        .context("--url is not a valid URL")?
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30));
    let mut channels = Vec::with_capacity(plan.connections);
    for _ in 0..plan.connections {
        channels.push(
            endpoint
                .connect()
                .await
                .with_context(|| format!("cannot connect to {}", plan.url))?,
        );
    }
    let run_id = uuid::Uuid::now_v7().simple().to_string();

    // Prime (warm) or check reachability (cold) with one call that must succeed.
    let mut first = client(channels[0].clone(), plan.token.as_deref())?;
    let mut priming = plan.template.clone();
    priming.idempotency_key = format!("bench-{run_id}-prime");
    let primed = first
        .check_eligibility(priming)
        .await
        .context("the priming CheckEligibility call failed")?
        .into_inner()
        .check
        .unwrap_or_default();
    if primed.status != pb::EligibilityCheckStatus::Completed as i32 {
        bail!(
            "the priming check did not complete (status {}): is the member in the payer's catalog?",
            primed.status
        );
    }

    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = match plan.limit {
        Limit::Duration(d) => Some(started + d),
        Limit::Requests(_) => None,
    };
    let max = match plan.limit {
        Limit::Requests(n) => n,
        Limit::Duration(_) => u64::MAX,
    };
    let mut workers = Vec::with_capacity(plan.concurrency);
    for w in 0..plan.concurrency {
        let channel = channels[w % channels.len()].clone();
        let mut c = client(channel, plan.token.as_deref())?;
        let counter = Arc::clone(&counter);
        let template = plan.template.clone();
        let mode = plan.mode;
        let base = plan.base;
        let run_id = run_id.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut ok = 0u64;
            let mut from_cache = 0u64;
            let mut errors: BTreeMap<String, u64> = BTreeMap::new();
            loop {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                if n >= max || deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let mut req = template.clone();
                req.idempotency_key = format!("bench-{run_id}-{n}");
                if mode == Mode::Cold {
                    let day = base + chrono::Days::new(n % 300);
                    req.date_of_service = day.format("%Y-%m-%d").to_string();
                    req.force_refresh = true;
                }
                let t0 = Instant::now();
                match c.check_eligibility(req).await {
                    Ok(resp) => {
                        latencies.push(u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX));
                        ok += 1;
                        if resp.into_inner().check.is_some_and(|c| c.from_cache) {
                            from_cache += 1;
                        }
                    }
                    Err(status) => {
                        *errors.entry(format!("{:?}", status.code())).or_default() += 1;
                    }
                }
            }
            (latencies, ok, from_cache, errors)
        }));
    }
    let mut report = Report {
        mode: plan.mode,
        concurrency: plan.concurrency,
        elapsed: Duration::ZERO,
        ok: 0,
        from_cache: 0,
        errors: BTreeMap::new(),
        latencies_us: Vec::new(),
    };
    for w in workers {
        let (latencies, ok, from_cache, errors) = w.await.context("a bench worker panicked")?;
        report.latencies_us.extend(latencies);
        report.ok += ok;
        report.from_cache += from_cache;
        for (code, n) in errors {
            *report.errors.entry(code).or_default() += n;
        }
    }
    report.elapsed = started.elapsed();
    report.latencies_us.sort_unstable();
    Ok(report)
}
