//! `medbill bench prior-auth --concurrency 8 --requests 500` drives RequestPriorAuthorization
//! for one payer-sim catalog member: every call is a new request (its own idempotency key), so
//! every call writes a 278, waits for payer-sim's 278 response over CORE HTTP and stores the
//! authorization with its raw exchange. It is a payer-bound path: the figures are latency
//! (p50/p90/p99) rather than a throughput target.
//!
//! Without `--url` the suite starts in this process (`serve --target all`, payer-sim as the
//! payer, SQLite files in a temporary directory or `--database-url`). The driver first creates
//! the member's coverage, then asks for `--procedure` (default 27447, which the built-in catalog
//! approves). Errors are counted by gRPC code and excluded from the latency figures.

use std::path::PathBuf;

use anyhow::{Context, bail};
use medbill_proto::common::v1 as common;
use medbill_proto::eligibility::v1 as pb;
use medbill_proto::eligibility::v1::eligibility_service_client::EligibilityServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::claims::InProcess;
use super::eligibility::Member;
use super::load::{self, Bearer, Limit, Phase};

/// One prior authorization run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// gRPC URL of a running suite; `None` starts one in this process.
    pub url: Option<String>,
    /// Bearer token.
    pub token: Option<String>,
    /// Calls in flight.
    pub concurrency: usize,
    /// When to stop.
    pub limit: Limit,
    /// HTTP/2 connections.
    pub connections: usize,
    /// The member asked about.
    pub member: Member,
    /// Procedure code asked for.
    pub procedure: String,
    /// Database of the in-process suite.
    pub database_url: Option<String>,
    /// Directory of the in-process suite's SQLite files.
    pub data_dir: Option<PathBuf>,
}

/// The measured outcome of a run.
#[derive(Debug)]
pub struct Report {
    target: String,
    concurrency: usize,
    phase: Phase,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.phase;
        writeln!(
            f,
            "prior-auth bench ({}, concurrency {}): {} ok in {:.2} s = {:.0} requests/s",
            self.target,
            self.concurrency,
            p.ok,
            p.elapsed.as_secs_f64(),
            p.throughput()
        )?;
        p.write_latency_and_errors(f, "pended")
    }
}

type Client = EligibilityServiceClient<InterceptedService<Channel, Bearer>>;

/// Runs the prior authorization bench.
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
    let (url, target) = match (&plan.url, &suite) {
        (Some(url), _) => (url.clone(), format!("suite at {url}")),
        (None, Some(s)) => (s.url(), s.target.clone()),
        (None, None) => bail!("no suite to drive"),
    };
    let result = drive(plan, &url, &run_id, target).await;
    if let Some(suite) = suite {
        suite.stop().await?;
    }
    result
}

async fn drive(plan: &Plan, url: &str, run_id: &str, target: String) -> anyhow::Result<Report> {
    let channels = load::connect(url, plan.connections).await?;
    let clients = channels
        .iter()
        .map(|c| {
            Bearer::new(plan.token.as_deref())
                .map(|i| EligibilityServiceClient::with_interceptor(c.clone(), i))
        })
        .collect::<anyhow::Result<Vec<Client>>>()?;
    let m = &plan.member;
    let coverage = clients[0]
        .clone()
        .create_coverage(pb::CreateCoverageRequest {
            idempotency_key: format!("bench-{run_id}-coverage"),
            patient_ref: "bench".to_owned(),
            payer_id: m.payer_id.clone(),
            payer_name: m.payer_id.clone(),
            member_id: m.member_id.clone(),
            subscriber_first_name: m.first_name.clone(),
            subscriber_last_name: m.last_name.clone(),
            subscriber_birth_date: m.birth_date.clone(),
            effective_date: "2026-01-01".to_owned(),
            ..Default::default()
        })
        .await
        .context("CreateCoverage of the bench member failed")?
        .into_inner()
        .coverage
        .unwrap_or_default()
        .id;
    let template = pb::RequestPriorAuthorizationRequest {
        coverage_id: coverage,
        requesting_provider: Some(common::ProviderRef {
            npi: "1234567893".to_owned(),
            organization_name: "MEDBILL BENCH CLINIC".to_owned(),
            ..Default::default()
        }),
        service_type_code: "2".to_owned(),
        place_of_service: "22".to_owned(),
        diagnoses: vec!["M1711".to_owned()],
        services: vec![pb::AuthorizedService {
            procedure: Some(common::Procedure {
                code: plan.procedure.clone(),
                ..Default::default()
            }),
            requested_units: "1".to_owned(),
            ..Default::default()
        }],
        requested_dates: Some(common::ServiceDateRange {
            from_date: m.date_of_service.clone(),
            to_date: m.date_of_service.clone(),
        }),
        ..Default::default()
    };
    // One call that must succeed before the clock starts.
    let mut first = template.clone();
    first.idempotency_key = format!("bench-{run_id}-prime");
    let primed = clients[0]
        .clone()
        .request_prior_authorization(first)
        .await
        .context("the first RequestPriorAuthorization call failed")?
        .into_inner()
        .prior_authorization
        .unwrap_or_default();
    if primed.status() == pb::PriorAuthorizationStatus::Failed {
        bail!(
            "the first request failed: {} (is the member in the payer's catalog?)",
            primed.error_message
        );
    }
    let run_id = run_id.to_owned();
    let phase = load::drive(plan.concurrency, plan.limit, move |n| {
        let mut client = clients[n as usize % clients.len()].clone();
        let mut req = template.clone();
        req.idempotency_key = format!("bench-{run_id}-{n}");
        async move {
            let a = client
                .request_prior_authorization(req)
                .await?
                .into_inner()
                .prior_authorization;
            Ok(a.is_some_and(|a| a.status() == pb::PriorAuthorizationStatus::Pended))
        }
    })
    .await?;
    Ok(Report {
        target,
        concurrency: plan.concurrency,
        phase,
    })
}
