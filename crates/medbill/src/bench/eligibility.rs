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

use anyhow::{Context, bail};
use medbill_proto::common::v1 as common;
use medbill_proto::eligibility::v1 as pb;
use medbill_proto::eligibility::v1::eligibility_service_client::EligibilityServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::load::{self, Bearer, Limit, Phase};

/// What the eligibility bench measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Repeated identical checks answered from the cache.
    Warm,
    /// Checks that all reach the payer.
    Cold,
}

/// The catalog member asked about (`medbill bench eligibility` flags).
#[derive(Debug, Clone, clap::Args)]
pub struct Member {
    /// Payer id of the member asked about (a payer-sim catalog payer).
    #[arg(long, default_value = "SIMPPO")]
    pub payer_id: String,
    /// Member id (synthetic payer-sim catalog member).
    #[arg(long, default_value = "SPX100000001")]
    pub member_id: String,
    /// Subscriber last name, as in the catalog.
    #[arg(long, default_value = "TESTPATIENT")]
    pub last_name: String,
    /// Subscriber first name, as in the catalog.
    #[arg(long, default_value = "AVERY")]
    pub first_name: String,
    /// Subscriber birth date, as in the catalog.
    #[arg(long, default_value = "1985-03-14")]
    pub birth_date: String,
    /// First date of service (cold mode cycles over the 300 days from here).
    #[arg(long, default_value = "2026-01-05")]
    pub date_of_service: String,
}

/// One eligibility run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// gRPC URL of the suite.
    pub url: String,
    /// Bearer token.
    pub token: Option<String>,
    /// Calls in flight.
    pub concurrency: usize,
    /// When to stop.
    pub limit: Limit,
    /// Warm or cold.
    pub mode: Mode,
    /// HTTP/2 connections.
    pub connections: usize,
    /// The member asked about.
    pub member: Member,
}

/// The measured outcome of a run.
#[derive(Debug)]
pub struct Report {
    mode: Mode,
    concurrency: usize,
    phase: Phase,
}

impl Report {
    /// Returns successful calls per second.
    pub fn throughput(&self) -> f64 {
        self.phase.throughput()
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.phase;
        writeln!(
            f,
            "eligibility bench ({:?}, concurrency {}): {} ok in {:.2} s = {:.0} checks/s",
            self.mode,
            self.concurrency,
            p.ok,
            p.elapsed.as_secs_f64(),
            p.throughput()
        )?;
        p.write_latency_and_errors(f, "answered from cache")
    }
}

type Client = EligibilityServiceClient<InterceptedService<Channel, Bearer>>;

/// Runs the eligibility bench.
///
/// # Errors
/// The suite cannot be reached or the priming call fails.
pub async fn run(plan: &Plan) -> anyhow::Result<Report> {
    let m = &plan.member;
    let base = chrono::NaiveDate::parse_from_str(&m.date_of_service, "%Y-%m-%d")
        .context("--date-of-service must be YYYY-MM-DD")?;
    let template = pb::CheckEligibilityRequest {
        subject: Some(pb::check_eligibility_request::Subject::Inline(
            pb::InlineSubscriber {
                payer_id: m.payer_id.clone(),
                member_id: m.member_id.clone(),
                subscriber_name: Some(common::PersonName {
                    last_name: m.last_name.clone(),
                    first_name: m.first_name.clone(),
                    ..Default::default()
                }),
                subscriber_birth_date: m.birth_date.clone(),
                patient_ref: "bench".to_owned(),
                ..Default::default()
            },
        )),
        date_of_service: m.date_of_service.clone(),
        ..Default::default()
    };
    let channels = load::connect(&plan.url, plan.connections).await?;
    let clients = channels
        .iter()
        .map(|c| {
            Bearer::new(plan.token.as_deref())
                .map(|i| EligibilityServiceClient::with_interceptor(c.clone(), i))
        })
        .collect::<anyhow::Result<Vec<Client>>>()?;
    let run_id = uuid::Uuid::now_v7().simple().to_string();

    // Prime (warm) or check reachability (cold) with one call that must succeed.
    let mut priming = template.clone();
    priming.idempotency_key = format!("bench-{run_id}-prime");
    let primed = clients[0]
        .clone()
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

    let mode = plan.mode;
    let phase = load::drive(plan.concurrency, plan.limit, move |n| {
        let mut client = clients[n as usize % clients.len()].clone();
        let mut req = template.clone();
        req.idempotency_key = format!("bench-{run_id}-{n}");
        if mode == Mode::Cold {
            let day = base + chrono::Days::new(n % 300);
            req.date_of_service = day.format("%Y-%m-%d").to_string();
            req.force_refresh = true;
        }
        async move {
            let check = client.check_eligibility(req).await?.into_inner().check;
            Ok(check.is_some_and(|c| c.from_cache))
        }
    })
    .await?;
    Ok(Report {
        mode,
        concurrency: plan.concurrency,
        phase,
    })
}
