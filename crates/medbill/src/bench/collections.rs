//! `medbill bench collections`: PostPatientResponsibility and RecordPayment at a fixed
//! concurrency, then a statement cycle and the statements' PDFs.
//!
//! ```text
//! medbill bench collections --accounts 1000 --calls 20000 --concurrency 64
//! ```
//!
//! Without `--url` the suite starts in this process as `medbill serve --target all` starts it
//! (SQLite files in a fresh directory, or the database of `--database-url` /
//! `MEDBILL_DATABASE_URL`). The driver opens `--accounts` accounts (untimed), then measures:
//!
//! - `PostPatientResponsibility`: `--calls` postings, each for a new claim, spread over the
//!   accounts;
//! - `RecordPayment`: `--calls` card payments spread over the accounts;
//! - `GenerateStatements`: one cycle over every account (statements per second);
//! - `GetStatement` with its PDF for up to `--pdfs` statements at the concurrency (pages per
//!   second rendered by the service and received).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;
use medbill_proto::collections::v1 as pb;
use medbill_proto::collections::v1::collections_service_client::CollectionsServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::claims::InProcess;
use super::load::{self, Bearer, Limit, Phase, Table, ms};

type Client = CollectionsServiceClient<InterceptedService<Channel, Bearer>>;

/// One collections run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// gRPC URL of a running suite; `None` starts one in this process.
    pub url: Option<String>,
    /// Bearer token.
    pub token: Option<String>,
    /// Calls in flight.
    pub concurrency: usize,
    /// HTTP/2 connections.
    pub connections: usize,
    /// Accounts the calls are spread over.
    pub accounts: u64,
    /// Calls of each measured RPC.
    pub calls: u64,
    /// Statements fetched with their PDF.
    pub pdfs: u64,
    /// Database of the in-process suite.
    pub database_url: Option<String>,
    /// Directory of the in-process suite's SQLite files.
    pub data_dir: Option<PathBuf>,
}

/// Runs the collections bench and returns its figures as text.
///
/// # Errors
/// The suite cannot be started or reached, or a setup call fails.
pub async fn run(plan: &Plan) -> anyhow::Result<String> {
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
    let result = phases(plan, &url, &run_id, &target).await;
    if let Some(suite) = suite {
        suite.stop().await?;
    }
    result
}

fn row(table: &mut Table, name: &str, p: &Phase, unit: &str) {
    table.row(vec![
        name.to_owned(),
        p.ok.to_string(),
        format!("{:.2}", p.elapsed.as_secs_f64()),
        format!("{:.0} {unit}", p.throughput()),
        ms(p.percentile(50.0)),
        ms(p.percentile(99.0)),
        p.errors_text(),
    ]);
}

async fn phases(plan: &Plan, url: &str, run_id: &str, target: &str) -> anyhow::Result<String> {
    let bearer = Bearer::new(plan.token.as_deref())?;
    let clients: Vec<Client> = load::connect(url, plan.connections)
        .await?
        .into_iter()
        .map(|c| CollectionsServiceClient::with_interceptor(c, bearer.clone()))
        .collect();
    let clients = Arc::new(clients);
    let run = Arc::new(run_id.to_owned());

    // Setup, untimed: the accounts.
    let mut ids = Vec::new();
    let mut c = clients[0].clone();
    for n in 0..plan.accounts.max(1) {
        let account = c
            .open_account(pb::OpenAccountRequest {
                idempotency_key: format!("{run}/open/{n}"),
                patient_ref: format!("bench-{}-{n}", &run[run.len() - 8..]),
                guarantor_ref: String::new(),
            })
            .await?
            .into_inner()
            .account
            .unwrap_or_default();
        ids.push(account.id);
    }
    let ids = Arc::new(ids);
    let limit = Limit {
        requests: Some(plan.calls),
        duration: None,
    };
    let mut table = Table::new(&[
        "phase", "ok", "seconds", "rate", "p50 ms", "p99 ms", "errors",
    ]);

    let (cl, ac, r) = (Arc::clone(&clients), Arc::clone(&ids), Arc::clone(&run));
    let post = load::drive(plan.concurrency, limit, move |n| {
        let mut client = cl[usize::try_from(n).unwrap_or(0) % cl.len()].clone();
        let account = ac[usize::try_from(n).unwrap_or(0) % ac.len()].clone();
        let key = format!("{r}/pr/{n}");
        async move {
            client
                .post_patient_responsibility(pb::PostPatientResponsibilityRequest {
                    idempotency_key: key,
                    account_id: account,
                    claim_id: uuid::Uuid::now_v7().to_string(),
                    amount: "100.00".into(),
                    ..Default::default()
                })
                .await
                .map(|_| false)
        }
    })
    .await?;
    row(&mut table, "PostPatientResponsibility", &post, "calls/s");

    let (cl, ac, r) = (Arc::clone(&clients), Arc::clone(&ids), Arc::clone(&run));
    let pay = load::drive(plan.concurrency, limit, move |n| {
        let mut client = cl[usize::try_from(n).unwrap_or(0) % cl.len()].clone();
        let account = ac[usize::try_from(n).unwrap_or(0) % ac.len()].clone();
        let key = format!("{r}/pay/{n}");
        async move {
            client
                .record_payment(pb::RecordPaymentRequest {
                    idempotency_key: key,
                    account_id: account,
                    amount: "10.00".into(),
                    method: pb::PaymentMethod::Card as i32,
                    ..Default::default()
                })
                .await
                .map(|_| false)
        }
    })
    .await?;
    row(&mut table, "RecordPayment", &pay, "calls/s");

    let started = Instant::now();
    let statements = c
        .generate_statements(pb::GenerateStatementsRequest {
            idempotency_key: format!("{run}/cycle"),
            ..Default::default()
        })
        .await?
        .into_inner()
        .statements;
    let mut cycle = Phase::default();
    cycle.ok = u64::try_from(statements.len()).unwrap_or(u64::MAX);
    cycle.record(started.elapsed());
    cycle.finish(started.elapsed());
    row(
        &mut table,
        "GenerateStatements (one cycle)",
        &cycle,
        "statements/s",
    );

    let statement_ids: Arc<Vec<String>> =
        Arc::new(statements.iter().map(|s| s.id.clone()).collect());
    if statement_ids.is_empty() {
        bail!("the cycle made no statement");
    }
    let cl = Arc::clone(&clients);
    let sids = Arc::clone(&statement_ids);
    let pdf_limit = Limit {
        requests: Some(plan.pdfs.min(u64::try_from(sids.len()).unwrap_or(0))),
        duration: None,
    };
    let pdfs = load::drive(plan.concurrency, pdf_limit, move |n| {
        let mut client = cl[usize::try_from(n).unwrap_or(0) % cl.len()].clone();
        let id = sids[usize::try_from(n).unwrap_or(0) % sids.len()].clone();
        async move {
            client
                .get_statement(pb::GetStatementRequest {
                    id,
                    include_pdf: true,
                })
                .await
                .map(|r| r.into_inner().pdf.is_empty())
        }
    })
    .await?;
    row(
        &mut table,
        "GetStatement with PDF (1 page each)",
        &pdfs,
        "pages/s",
    );

    Ok(format!(
        "collections bench ({target}, concurrency {}, {} accounts)\n{table}\n",
        plan.concurrency,
        ids.len(),
    ))
}
