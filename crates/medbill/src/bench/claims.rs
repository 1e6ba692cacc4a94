//! `medbill bench claims`: CreateClaim, ScrubClaim and SubmitClaims measured one after the other.
//!
//! ```text
//! medbill bench claims --mode all --concurrency 64 --claims 100000
//! medbill bench claims --url http://127.0.0.1:50051 --mode create --duration 10
//! ```
//!
//! Without `--url` the suite starts in this process as `medbill serve --target all` starts it
//! (SQLite files in a fresh directory, or the database of `--database-url` /
//! `MEDBILL_DATABASE_URL`), with payer-sim as the payer of every claim. The driver then
//! registers what the claims need (the billing provider; a coverage with payer-sim catalog
//! member SIMPPO SPX100000001) and runs the phases the mode asks for, each one on the claims the
//! previous one left:
//!
//! - `create`: CreateClaim of `--claims` professional claims (two lines, two diagnoses, the
//!   patient's demographics) at `--concurrency`;
//! - `scrub`: ScrubClaim of every claim created, at `--concurrency`;
//! - `submit`: SubmitClaims calls of at most 5,000 claims, one after the other, until nothing is
//!   READY; the 837s are written, stored and delivered to payer-sim over CORE HTTP. In process,
//!   the resident memory is sampled before and during the phase, to show it bounded by a batch.
//!
//! With `--batch B` the create and scrub phases call CreateClaims and ScrubClaims instead, `B`
//! claims a call and `--batch-concurrency` calls in flight: the rows give claims per second
//! (items) and the latency of a call.
//!
//! A phase the mode does not measure still runs when a later one needs its claims (`--mode
//! submit` creates and scrubs first); its row is marked "prep". `--duration` caps each timed
//! create and scrub phase. Every call carries its own idempotency key; errors are counted by
//! gRPC code and left out of the latencies.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use medbill_proto::claims::v1 as pb;
use medbill_proto::claims::v1::claims_service_client::ClaimsServiceClient;
use medbill_proto::common::v1 as common;
use medbill_proto::eligibility::v1 as elig;
use medbill_proto::eligibility::v1::eligibility_service_client::EligibilityServiceClient;
use medbill_runtime::config::{ConfigOverrides, LoadedConfig};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::load::{self, Bearer, Limit, Phase, Table, ms};
use crate::serve::{self, Running, Target};

/// Most claims one SubmitClaims call takes.
pub const SUBMIT_BATCH: u32 = 5_000;

/// The billing provider every bench claim names (valid check digit).
const BILLING_NPI: &str = "1234567893";

/// Which phases are measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// CreateClaim.
    Create,
    /// ScrubClaim (the claims are created first, untimed).
    Scrub,
    /// SubmitClaims (the claims are created and scrubbed first, untimed).
    Submit,
    /// All three, each on the claims the previous one made.
    All,
}

impl Mode {
    fn measures(self, phase: Mode) -> bool {
        self == Mode::All || self == phase
    }

    fn runs(self, phase: Mode) -> bool {
        let rank = |m: Mode| match m {
            Mode::Create => 0,
            Mode::Scrub => 1,
            Mode::Submit | Mode::All => 2,
        };
        rank(phase) <= rank(self)
    }
}

/// One claims run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// gRPC URL of a running suite; `None` starts one in this process.
    pub url: Option<String>,
    /// Bearer token (remote suite only).
    pub token: Option<String>,
    /// Calls in flight in the create and scrub phases.
    pub concurrency: usize,
    /// HTTP/2 connections the calls are spread over.
    pub connections: usize,
    /// Claims created (and then scrubbed and submitted).
    pub claims: u64,
    /// Cap on each timed create and scrub phase.
    pub duration: Option<Duration>,
    /// The phases measured.
    pub mode: Mode,
    /// Database of the in-process suite (else `MEDBILL_DATABASE_URL`, else SQLite files).
    pub database_url: Option<String>,
    /// Directory of the in-process suite's SQLite files (default: a fresh temporary directory,
    /// removed afterwards).
    pub data_dir: Option<PathBuf>,
    /// Date of service of every claim (within the shipped ICD-10-CM year and timely filing).
    pub date_of_service: String,
    /// Claims per CreateClaims / ScrubClaims call; 0 calls CreateClaim and ScrubClaim.
    pub batch: u64,
    /// Batch calls in flight.
    pub batch_concurrency: usize,
}

/// The figures of SubmitClaims.
#[derive(Debug, Default, Clone)]
pub struct Submitted {
    /// Per call.
    pub calls: Phase,
    /// Claims in the batches created.
    pub claims: u64,
    /// Batches created.
    pub batches: u64,
    /// Batches whose delivery failed.
    pub failed_batches: u64,
    /// Resident memory of this process before the phase, in bytes (in process only).
    pub rss_before: Option<u64>,
    /// Highest resident memory seen during the phase, in bytes (in process only).
    pub rss_peak: Option<u64>,
}

/// The measured outcome of a claims run.
#[derive(Debug, Clone)]
pub struct Report {
    /// Where the suite ran and on which database.
    pub target: String,
    /// Calls in flight.
    pub concurrency: usize,
    /// The phases measured.
    pub mode: Mode,
    /// Claims per batch call (0: unary) and batch calls in flight.
    pub batch: (u64, usize),
    /// CreateClaim or CreateClaims, and the claims created.
    pub create: Option<(Phase, u64)>,
    /// ScrubClaim or ScrubClaims, the claims scrubbed and how many passed (READY).
    pub scrub: Option<(Phase, u64, u64)>,
    /// SubmitClaims.
    pub submit: Option<Submitted>,
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or_else(
        || "n/a".to_owned(),
        |b| format!("{:.1} MiB", b as f64 / 1_048_576.0),
    )
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.batch {
            (0, _) => writeln!(
                f,
                "claims bench ({:?}, concurrency {}, {})",
                self.mode, self.concurrency, self.target
            )?,
            (size, calls) => writeln!(
                f,
                "claims bench ({:?}, {size} claims a call, {calls} calls in flight, {})",
                self.mode, self.target
            )?,
        }
        let mut table = Table::new(&[
            "phase", "claims", "calls ok", "errors", "seconds", "claims/s", "p50 ms", "p99 ms",
            "max ms",
        ]);
        let mut row = |name: String, claims: u64, p: &Phase| {
            table.row(vec![
                name,
                claims.to_string(),
                p.ok.to_string(),
                p.error_count().to_string(),
                format!("{:.2}", p.elapsed.as_secs_f64()),
                format!("{:.0}", p.rate(claims)),
                ms(p.percentile(50.0)),
                ms(p.percentile(99.0)),
                ms(p.percentile(100.0)),
            ]);
        };
        let label = |phase: Mode, name: &str| {
            if self.mode.measures(phase) {
                name.to_owned()
            } else {
                format!("{name} (prep)")
            }
        };
        let (create, scrub) = match self.batch.0 {
            0 => ("CreateClaim".to_owned(), "ScrubClaim".to_owned()),
            n => (
                format!("CreateClaims ({n} a call)"),
                format!("ScrubClaims ({n} a call)"),
            ),
        };
        if let Some((p, claims)) = &self.create {
            row(label(Mode::Create, &create), *claims, p);
        }
        if let Some((p, claims, _)) = &self.scrub {
            row(label(Mode::Scrub, &scrub), *claims, p);
        }
        if let Some(s) = &self.submit {
            row("SubmitClaims (per call)".to_owned(), s.claims, &s.calls);
        }
        write!(f, "{table}")?;
        let create = self.create.as_ref().map(|(p, _)| p);
        let scrub = self.scrub.as_ref().map(|(p, _, _)| p);
        for (name, p) in [("create", create), ("scrub", scrub)] {
            if let Some(p) = p
                && p.error_count() > 0
            {
                writeln!(f, "{name} errors: {}", p.errors_text())?;
            }
            if let Some(p) = p
                && self.batch.0 > 0
                && p.flagged > 0
            {
                writeln!(f, "{name}: {} calls with a failed item", p.flagged)?;
            }
        }
        if let Some((_, claims, passed)) = &self.scrub {
            writeln!(f, "scrub: {passed} of {claims} claims passed (READY)")?;
        }
        if let Some(s) = &self.submit {
            writeln!(
                f,
                "submit: {} claims in {} batches ({} failed delivery); errors: {}; \
                 resident memory before {}, peak during {}",
                s.claims,
                s.batches,
                s.failed_batches,
                s.calls.errors_text(),
                mib(s.rss_before),
                mib(s.rss_peak)
            )?;
        }
        Ok(())
    }
}

type Client = ClaimsServiceClient<InterceptedService<Channel, Bearer>>;
type Eligibility = EligibilityServiceClient<InterceptedService<Channel, Bearer>>;

/// The suite started in this process, and where its SQLite files are (the other benches and
/// `medbill demo` start it the same way).
pub(crate) struct InProcess {
    running: Running,
    /// The configuration it runs with (the remittance bench reads its database).
    config: medbill_runtime::config::Config,
    /// Removed at the end when the bench made it.
    temp_dir: Option<PathBuf>,
    pub(crate) target: String,
    /// The suite's database URL and pool settings (a driver that fills tables connects there).
    pub(super) database: (String, medbill_storage::PoolSettings),
}

impl InProcess {
    /// Starts `serve --target all` with payer-sim on a free port, on `database_url` or SQLite
    /// files in `data_dir` (a fresh temporary directory, removed at the end, when unset).
    pub(crate) async fn start(
        data_dir: Option<&PathBuf>,
        database_url: Option<&String>,
        run_id: &str,
    ) -> anyhow::Result<Self> {
        Self::start_configured(data_dir, database_url, run_id, |loaded| loaded).await
    }

    /// As [`InProcess::start`], with `configure` setting values first (a value it sets wins
    /// over the bench defaults below).
    pub(crate) async fn start_configured(
        data_dir: Option<&PathBuf>,
        database_url: Option<&String>,
        run_id: &str,
        configure: impl FnOnce(LoadedConfig) -> LoadedConfig,
    ) -> anyhow::Result<Self> {
        let temp_dir = data_dir
            .is_none()
            .then(|| std::env::temp_dir().join(format!("medbill-bench-{run_id}")));
        let overrides = ConfigOverrides {
            data_dir: data_dir.cloned().or_else(|| temp_dir.clone()),
            database_url: database_url.cloned(),
            ..ConfigOverrides::default()
        };
        let mut loaded =
            configure(serve::load_config(None, &overrides).context("loading configuration")?);
        loaded = loaded.with_value("payer_sim.listen", "127.0.0.1:0");
        // The claims bench measures the claims service: payer-sim keeps accepted claims unpaid
        // (paying them is measured by payer-sim's own pay_claims bench) unless asked otherwise.
        if !loaded.contains("payer_sim.adjudication_lag_secs") {
            loaded = loaded.with_value("payer_sim.adjudication_lag_secs", 86_400);
        }
        if !loaded.contains("claims.submission.contact_phone") {
            loaded = loaded
                .with_value("claims.submission.contact_phone", "2175550100")
                .with_value("claims.submission.usage", "test");
        }
        let target = match &loaded.config().database_url {
            Some(url) if url.starts_with("postgres") => "in process, PostgreSQL".to_owned(),
            _ => "in process, SQLite".to_owned(),
        };
        let database = (
            loaded.config().effective_database_url(),
            loaded.config().database_pool.clone(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let running = serve::start(&loaded, Target::All, listener).await?;
        Ok(Self {
            config: loaded.config().clone(),
            running,
            temp_dir,
            target,
            database,
        })
    }

    pub(crate) fn config(&self) -> &medbill_runtime::config::Config {
        &self.config
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.running.handle.local_addr())
    }

    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        self.running.shutdown().await?;
        if let Some(dir) = self.temp_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        Ok(())
    }
}

/// Runs the claims bench.
///
/// # Errors
/// The suite cannot be started or reached, or the setup calls fail.
pub async fn run(plan: &Plan) -> anyhow::Result<Report> {
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let suite = match &plan.url {
        Some(_) => None,
        None => Some(
            InProcess::start(plan.data_dir.as_ref(), plan.database_url.as_ref(), &run_id).await?,
        ),
    };
    let url = match (&plan.url, &suite) {
        (Some(url), _) => url.clone(),
        (None, Some(s)) => s.url(),
        (None, None) => bail!("no suite to drive"),
    };
    let target = suite
        .as_ref()
        .map_or_else(|| format!("suite at {url}"), |s| s.target.clone());
    let result = phases(plan, &url, &run_id, target, suite.is_some()).await;
    if let Some(suite) = suite {
        suite.stop().await?;
    }
    result
}

async fn phases(
    plan: &Plan,
    url: &str,
    run_id: &str,
    target: String,
    in_process: bool,
) -> anyhow::Result<Report> {
    let channels = load::connect(url, plan.connections).await?;
    let clients = channels
        .iter()
        .map(|c| {
            Bearer::new(plan.token.as_deref()).map(|i| {
                // A batch's answer carries up to 1,000 claims: the server's limit, not tonic's 4 MiB.
                ClaimsServiceClient::with_interceptor(c.clone(), i)
                    .max_decoding_message_size(16 * 1024 * 1024)
            })
        })
        .collect::<anyhow::Result<Vec<Client>>>()?;
    let clients = Arc::new(clients);
    let mut eligibility: Eligibility = EligibilityServiceClient::with_interceptor(
        channels[0].clone(),
        Bearer::new(plan.token.as_deref())?,
    );
    let coverage_id = setup(&mut clients[0].clone(), &mut eligibility, plan, run_id).await?;
    let template = claim(&coverage_id, &plan.date_of_service);

    let mut report = Report {
        target,
        concurrency: plan.concurrency,
        mode: plan.mode,
        batch: (plan.batch, plan.batch_concurrency),
        create: None,
        scrub: None,
        submit: None,
    };
    let timed = |phase: Mode| Limit {
        requests: Some(plan.claims),
        duration: plan.duration.filter(|_| plan.mode.measures(phase)),
    };

    // Create: the ids go on to the scrub phase.
    let created = Arc::new(Mutex::new(Vec::new()));
    let prefix = run_id[run_id.len() - 8..].to_owned();
    let request = move |n: u64| {
        let mut input = template.clone();
        // CLM01 is at most 20 characters: "B" + 8 of the run id + 11 digits.
        input.patient_control_number = format!("B{prefix}{n:011}");
        pb::CreateClaimRequest {
            idempotency_key: format!("bench-{prefix}-create-{n}"),
            claim: Some(input),
        }
    };
    let phase = if plan.batch == 0 {
        let (cl, ids) = (Arc::clone(&clients), Arc::clone(&created));
        load::drive(plan.concurrency, timed(Mode::Create), move |n| {
            let mut client = cl[n as usize % cl.len()].clone();
            let req = request(n);
            let ids = Arc::clone(&ids);
            async move {
                if let Some(c) = client.create_claim(req).await?.into_inner().claim {
                    lock(&ids).push(c.id);
                }
                Ok(false)
            }
        })
        .await?
    } else {
        let (size, total) = (plan.batch, plan.claims);
        let (cl, ids) = (Arc::clone(&clients), Arc::clone(&created));
        let limit = load::batch_calls(total, size, timed(Mode::Create).duration);
        load::drive(plan.batch_concurrency, limit, move |n| {
            let mut client = cl[n as usize % cl.len()].clone();
            let items = load::batch_items(n, size, total).map(&request).collect();
            let ids = Arc::clone(&ids);
            async move {
                let results = client
                    .create_claims(pb::CreateClaimsRequest { items })
                    .await?
                    .into_inner()
                    .results;
                let mut failed = false;
                let mut made = Vec::with_capacity(results.len());
                for r in results {
                    match r.outcome {
                        Some(pb::create_claim_result::Outcome::Created(c)) => {
                            made.extend(c.claim.map(|c| c.id));
                        }
                        _ => failed = true,
                    }
                }
                lock(&ids).extend(made);
                // Flagged: a call with an item that failed.
                Ok(failed)
            }
        })
        .await?
    };
    let ids: Arc<Vec<String>> = Arc::new(std::mem::take(&mut *lock(&created)));
    report.create = Some((phase, ids.len() as u64));
    if !plan.mode.runs(Mode::Scrub) {
        return Ok(report);
    }

    let run = run_id.to_owned();
    let request = move |ids: &[String], n: u64| pb::ScrubClaimRequest {
        idempotency_key: format!("bench-{run}-scrub-{n}"),
        claim_id: ids[n as usize].clone(),
    };
    let scrubbed = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let count = Arc::clone(&scrubbed);
    let total = ids.len() as u64;
    let phase = if plan.batch == 0 {
        let cl = Arc::clone(&clients);
        let limit = Limit {
            requests: Some(total),
            ..timed(Mode::Scrub)
        };
        load::drive(plan.concurrency, limit, move |n| {
            let mut client = cl[n as usize % cl.len()].clone();
            let req = request(&ids, n);
            let count = Arc::clone(&count);
            async move {
                let passed = client.scrub_claim(req).await?.into_inner().passed;
                count.0.fetch_add(1, Ordering::Relaxed);
                count.1.fetch_add(u64::from(passed), Ordering::Relaxed);
                Ok(false)
            }
        })
        .await?
    } else {
        let size = plan.batch;
        let cl = Arc::clone(&clients);
        let limit = load::batch_calls(total, size, timed(Mode::Scrub).duration);
        load::drive(plan.batch_concurrency, limit, move |n| {
            let mut client = cl[n as usize % cl.len()].clone();
            let items = load::batch_items(n, size, total)
                .map(|i| request(&ids, i))
                .collect();
            let count = Arc::clone(&count);
            async move {
                let results = client
                    .scrub_claims(pb::ScrubClaimsRequest { items })
                    .await?
                    .into_inner()
                    .results;
                let mut failed = false;
                for r in results {
                    match r.outcome {
                        Some(pb::scrub_claim_result::Outcome::Scrubbed(s)) => {
                            count.0.fetch_add(1, Ordering::Relaxed);
                            count.1.fetch_add(u64::from(s.passed), Ordering::Relaxed);
                        }
                        _ => failed = true,
                    }
                }
                Ok(failed)
            }
        })
        .await?
    };
    report.scrub = Some((
        phase,
        scrubbed.0.load(Ordering::Relaxed),
        scrubbed.1.load(Ordering::Relaxed),
    ));
    if !plan.mode.runs(Mode::Submit) {
        return Ok(report);
    }

    report.submit = Some(submit(&mut clients[0].clone(), run_id, in_process).await?);
    Ok(report)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Calls SubmitClaims (at most [`SUBMIT_BATCH`] claims each) until nothing is READY, sampling
/// this process's resident memory when the suite runs in it.
async fn submit(client: &mut Client, run_id: &str, in_process: bool) -> anyhow::Result<Submitted> {
    let mut out = Submitted::default();
    let sampler = in_process.then(RssSampler::start);
    out.rss_before = sampler.as_ref().and_then(|s| s.before);
    let started = Instant::now();
    for call in 0u64.. {
        let req = pb::SubmitClaimsRequest {
            idempotency_key: format!("bench-{run_id}-submit-{call}"),
            claim_ids: Vec::new(),
            max_claims: SUBMIT_BATCH,
        };
        let t0 = Instant::now();
        let answer = match client.submit_claims(req).await {
            Ok(answer) => answer.into_inner(),
            Err(status) => {
                out.calls.fail(&status);
                break;
            }
        };
        out.calls.record(t0.elapsed());
        if answer.batches.is_empty() {
            break;
        }
        for batch in &answer.batches {
            out.batches += 1;
            out.claims += u64::from(batch.claim_count);
            if batch.status == pb::SubmissionBatchStatus::Failed as i32 {
                out.failed_batches += 1;
            }
        }
        // A failed delivery puts its claims back to READY: calling again would loop.
        if out.failed_batches > 0 {
            break;
        }
    }
    out.calls.finish(started.elapsed());
    if let Some(s) = sampler {
        out.rss_peak = s.stop().await;
    }
    Ok(out)
}

/// Registers the billing provider (once per tenant: a known NPI is fine) and creates the
/// coverage the claims name; returns the coverage id.
pub(super) async fn setup(
    claims: &mut Client,
    eligibility: &mut Eligibility,
    plan: &Plan,
    run_id: &str,
) -> anyhow::Result<String> {
    let provider = pb::Provider {
        npi: BILLING_NPI.to_owned(),
        kind: pb::ProviderKind::Organization.into(),
        organization_name: "MEDBILL BENCH BILLING".to_owned(),
        tax_id_type: pb::TaxIdType::Ein.into(),
        tax_id: "123456789".to_owned(),
        taxonomy_code: "282N00000X".to_owned(),
        address: Some(common::Address {
            line1: "1 MAIN ST".to_owned(),
            city: "SPRINGFIELD".to_owned(),
            state: "IL".to_owned(),
            postal_code: "627010001".to_owned(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let registered = claims
        .create_provider(pb::CreateProviderRequest {
            idempotency_key: format!("bench-provider-{BILLING_NPI}"),
            provider: Some(provider),
        })
        .await;
    match registered {
        Ok(_) => {}
        // Registered before, by an earlier run or by hand.
        Err(s) if s.code() == tonic::Code::AlreadyExists => {}
        Err(s) => return Err(s).context("CreateProvider of the bench billing provider failed"),
    }
    let dos = chrono::NaiveDate::parse_from_str(&plan.date_of_service, "%Y-%m-%d")
        .context("--date-of-service must be YYYY-MM-DD")?;
    let effective = dos - chrono::Days::new(120);
    let coverage = eligibility
        .create_coverage(elig::CreateCoverageRequest {
            idempotency_key: format!("bench-{run_id}-coverage"),
            patient_ref: "bench-patient".to_owned(),
            payer_id: "SIMPPO".to_owned(),
            payer_name: "SIMULATED PPO HEALTH".to_owned(),
            member_id: "SPX100000001".to_owned(),
            group_number: "GRP100".to_owned(),
            subscriber_first_name: "AVERY".to_owned(),
            subscriber_last_name: "TESTPATIENT".to_owned(),
            subscriber_birth_date: "1985-03-14".to_owned(),
            effective_date: effective.format("%Y-%m-%d").to_string(),
            ..Default::default()
        })
        .await
        .context("CreateCoverage of the bench coverage failed")?
        .into_inner()
        .coverage
        .context("CreateCoverage answered no coverage")?;
    Ok(coverage.id)
}

/// A professional claim that scrubs clean and can be written into an 837P: two diagnoses,
/// a preventive visit and an injection on `dos`, the patient (the subscriber) with demographics.
pub(super) fn claim(coverage_id: &str, dos: &str) -> pb::ClaimInput {
    let line = |code: &str, charge: &str, pointers: Vec<u32>| pb::ClaimLine {
        procedure_code: code.to_owned(),
        charge: charge.to_owned(),
        units: "1".to_owned(),
        service_date: dos.to_owned(),
        diagnosis_pointers: pointers,
        ..Default::default()
    };
    pb::ClaimInput {
        claim_type: pb::ClaimType::Professional.into(),
        coverage_id: coverage_id.to_owned(),
        payer_id: "SIMPPO".to_owned(),
        patient_ref: "bench-patient".to_owned(),
        billing_provider_npi: BILLING_NPI.to_owned(),
        place_of_service: "11".to_owned(),
        diagnoses: vec!["E119".to_owned(), "I10".to_owned()],
        lines: vec![
            line("G0439", "125.00", vec![1, 2]),
            line("J1100", "80.55", vec![2]),
        ],
        demographics: Some(pb::ClaimDemographics {
            patient: Some(pb::ClaimPerson {
                name: Some(common::PersonName {
                    last_name: "TESTPATIENT".to_owned(),
                    first_name: "AVERY".to_owned(),
                    ..Default::default()
                }),
                birth_date: "1985-03-14".to_owned(),
                gender: "F".to_owned(),
                address: Some(common::Address {
                    line1: "12 ELM ST".to_owned(),
                    city: "SPRINGFIELD".to_owned(),
                    state: "IL".to_owned(),
                    postal_code: "62702".to_owned(),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
        prior_authorization_number: "AUTH123".to_owned(),
        ..Default::default()
    }
}

/// Reads this process's resident set size (VmRSS) in bytes; `None` off Linux.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Samples the resident set size every 10 ms until stopped, keeping the highest.
struct RssSampler {
    before: Option<u64>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Option<u64>>,
}

impl RssSampler {
    fn start() -> Self {
        let before = rss_bytes();
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut peak = before;
            loop {
                peak = peak.max(rss_bytes());
                tokio::select! {
                    _ = &mut stopped => return peak.max(rss_bytes()),
                    () = tokio::time::sleep(Duration::from_millis(10)) => {}
                }
            }
        });
        Self { before, stop, task }
    }

    async fn stop(self) -> Option<u64> {
        let _ = self.stop.send(());
        self.task.await.ok().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_run_the_phases_before_the_one_measured() {
        assert!(Mode::Submit.runs(Mode::Create) && Mode::Submit.runs(Mode::Scrub));
        assert!(!Mode::Create.runs(Mode::Scrub));
        assert!(Mode::Scrub.runs(Mode::Create) && !Mode::Scrub.runs(Mode::Submit));
        assert!(Mode::All.measures(Mode::Scrub) && !Mode::Submit.measures(Mode::Create));
    }

    #[test]
    fn resident_memory_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(rss_bytes().is_some_and(|b| b > 0));
        }
    }
}
