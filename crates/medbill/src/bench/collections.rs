//! `medbill bench collections`: PostPatientResponsibility and RecordPayment at a fixed
//! concurrency, a statement cycle over every account, the statements' PDFs and the aging report
//! over a large ledger.
//!
//! ```text
//! medbill bench collections --accounts 100000 --calls 20000 --concurrency 64 \
//!     --aging-entries 1000000 [--batch 1000] [--database-url postgres://...]
//! ```
//!
//! Without `--url` the suite starts in this process as `medbill serve --target all` starts it
//! (SQLite files in a fresh directory, or the database of `--database-url` /
//! `MEDBILL_DATABASE_URL`). The driver fills the collections database directly (untimed,
//! `INSERT ... SELECT`, see `medbill_collections::seed`): `--accounts` accounts each owing one
//! patient responsibility. It then measures:
//!
//! - `PostPatientResponsibility`: `--calls` postings, each for a new claim, spread over the
//!   accounts;
//! - `RecordPayment`: `--calls` card payments spread over the accounts;
//! - with `--batch B`: `PostPatientResponsibilities` and `RecordPayments`, `--calls` items each
//!   in calls of `B` items (consecutive accounts), `--batch-concurrency` calls in flight (calls
//!   per second and items per second);
//! - `GenerateStatements`: one cycle over every account (statements per second; the answer
//!   carries the count only);
//! - `GetStatement` with its PDF for up to `--pdfs` statements at the concurrency (pages per
//!   second rendered by the service and received);
//! - `AgingReport` (first page and totals) after `--aging-entries` more entries were filled over
//!   the accounts (untimed).
//!
//! With `--url` the driver fills the database of `--database-url` (the suite's), under
//! `--tenant` (the tenant of the bearer token; `default` in dev mode).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use medbill_collections::seed::LedgerSeed;
use medbill_proto::collections::v1 as pb;
use medbill_proto::collections::v1::collections_service_client::CollectionsServiceClient;
use medbill_storage::{Database, PoolSettings};
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
    /// Accounts filled (each owing), the calls are spread over and the cycle states.
    pub accounts: u64,
    /// Ledger entries filled over the accounts before the aging report is timed; 0 skips it.
    pub aging_entries: u64,
    /// The tenant the driver's calls act for (the bearer token's; `default` in dev mode).
    pub tenant: String,
    /// Calls of each measured RPC.
    pub calls: u64,
    /// Statements fetched with their PDF.
    pub pdfs: u64,
    /// Items per batch call; 0 skips the batch phases.
    pub batch: u64,
    /// Batch calls in flight.
    pub batch_concurrency: usize,
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
    let database = match (&suite, &plan.database_url) {
        (Some(s), _) => s.database.clone(),
        (None, Some(url)) => (url.clone(), PoolSettings::default()),
        (None, None) => bail!("--url needs --database-url (the suite's database) to fill"),
    };
    let result = phases(plan, &url, &run_id, &target, &database).await;
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

async fn phases(
    plan: &Plan,
    url: &str,
    run_id: &str,
    target: &str,
    database: &(String, PoolSettings),
) -> anyhow::Result<String> {
    let bearer = Bearer::new(plan.token.as_deref())?;
    let clients: Vec<Client> = load::connect(url, plan.connections)
        .await?
        .into_iter()
        .map(|c| CollectionsServiceClient::with_interceptor(c, bearer.clone()))
        .collect();
    let clients = Arc::new(clients);
    let run = Arc::new(run_id.to_owned());

    // Setup, untimed: the accounts, filled directly.
    let db = Database::connect(
        &database.0,
        &database.1,
        medbill_collections::store::NAMESPACE,
    )
    .await
    .context("connecting to the collections database")?;
    let seed = LedgerSeed::new(
        &plan.tenant,
        u16::from_str_radix(&run[run.len() - 4..], 16)?,
    )?;
    let accounts = i64::try_from(plan.accounts.max(1))?;
    let started = Instant::now();
    seed.accounts(&db, accounts).await?;
    let mut notes = vec![format!(
        "filled {accounts} accounts owing 100.00 each in {:.1} s (untimed)",
        started.elapsed().as_secs_f64()
    )];
    let ids: Vec<String> = (0..accounts).map(|n| seed.account_id(n)).collect();
    let mut c = clients[0].clone();
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
    if plan.batch > 0 {
        batches(plan, &clients, &ids, &run, &mut table, &mut notes).await?;
    }

    let started = Instant::now();
    let answer = c
        .generate_statements(pb::GenerateStatementsRequest {
            idempotency_key: format!("{run}/cycle"),
            omit_statements: true,
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut cycle = Phase::default();
    cycle.record(started.elapsed());
    cycle.finish(started.elapsed());
    // The rate counts statements, not the one call.
    cycle.ok = u64::from(answer.statement_count);
    row(
        &mut table,
        "GenerateStatements (one cycle)",
        &cycle,
        "statements/s",
    );

    let statement_ids = Arc::new(cycle_statement_ids(&mut c, plan.pdfs).await?);
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

    if plan.aging_entries > 0 {
        let entries = i64::try_from(plan.aging_entries)?;
        let started = Instant::now();
        seed.entries(&db, accounts, entries).await?;
        notes.push(format!(
            "filled {entries} more ledger entries in {:.1} s (untimed)",
            started.elapsed().as_secs_f64()
        ));
        for pass in ["AgingReport (first call)", "AgingReport (again)"] {
            let started = Instant::now();
            let report = c
                .aging_report(pb::AgingReportRequest {
                    page_size: 50,
                    ..Default::default()
                })
                .await?
                .into_inner();
            let mut aging = Phase::default();
            aging.record(started.elapsed());
            aging.finish(started.elapsed());
            row(&mut table, pass, &aging, "reports/s");
            notes.push(format!(
                "{pass}: {} accounts owing, total {}",
                report.account_count,
                report.totals.map(|t| t.total).unwrap_or_default()
            ));
        }
    }
    db.close().await;

    Ok(format!(
        "collections bench ({target}, concurrency {}, {} accounts)\n{table}\n{}\n",
        plan.concurrency,
        ids.len(),
        notes.join("\n"),
    ))
}

/// The batch phases: `plan.calls` items of each batch RPC in calls of `plan.batch` items.
async fn batches(
    plan: &Plan,
    clients: &Arc<Vec<Client>>,
    ids: &Arc<Vec<String>>,
    run: &Arc<String>,
    table: &mut Table,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    let size = plan.batch;
    let limit = load::batch_calls(plan.calls, size, None);
    // The accounts of batch `n`, item `i`: consecutive, so a batch names distinct accounts.
    let account = move |ids: &[String], n: u64, i: u64| {
        ids[usize::try_from((n * size + i) % ids.len() as u64).unwrap_or(0)].clone()
    };
    let (cl, ac, r) = (Arc::clone(clients), Arc::clone(ids), Arc::clone(run));
    let post = load::drive(plan.batch_concurrency, limit, move |n| {
        let mut client = cl[usize::try_from(n).unwrap_or(0) % cl.len()].clone();
        let items = (0..size)
            .map(|i| pb::PostPatientResponsibilityRequest {
                idempotency_key: format!("{r}/prb/{n}/{i}"),
                account_id: account(&ac, n, i),
                claim_id: uuid::Uuid::now_v7().to_string(),
                amount: "100.00".into(),
                ..Default::default()
            })
            .collect();
        async move {
            let answer = client
                .post_patient_responsibilities(pb::PostPatientResponsibilitiesRequest { items })
                .await?
                .into_inner();
            // Flagged: a batch with an item that failed.
            Ok(answer.results.iter().any(|r| {
                matches!(
                    r.outcome,
                    Some(pb::post_patient_responsibility_result::Outcome::Error(_)) | None
                )
            }))
        }
    })
    .await?;
    let (cl, ac, r) = (Arc::clone(clients), Arc::clone(ids), Arc::clone(run));
    let pay = load::drive(plan.batch_concurrency, limit, move |n| {
        let mut client = cl[usize::try_from(n).unwrap_or(0) % cl.len()].clone();
        let items = (0..size)
            .map(|i| pb::RecordPaymentRequest {
                idempotency_key: format!("{r}/payb/{n}/{i}"),
                account_id: account(&ac, n, i),
                amount: "10.00".into(),
                method: pb::PaymentMethod::Card as i32,
                ..Default::default()
            })
            .collect();
        async move {
            let answer = client
                .record_payments(pb::RecordPaymentsRequest { items })
                .await?
                .into_inner();
            Ok(answer.results.iter().any(|r| {
                matches!(
                    r.outcome,
                    Some(pb::record_payment_result::Outcome::Error(_)) | None
                )
            }))
        }
    })
    .await?;
    for (name, phase) in [
        (
            format!("PostPatientResponsibilities ({size} a call)"),
            &post,
        ),
        (format!("RecordPayments ({size} a call)"), &pay),
    ] {
        row(table, &name, phase, "calls/s");
        notes.push(format!(
            "{name}: {:.0} items/s, {} calls with a failed item",
            phase.rate(phase.ok * size),
            phase.flagged
        ));
    }
    Ok(())
}

/// Up to `wanted` ids of the statements of today's cycle, read from its print-vendor file.
async fn cycle_statement_ids(c: &mut Client, wanted: u64) -> anyhow::Result<Vec<String>> {
    let date = chrono::Utc::now().date_naive().to_string();
    let wanted = usize::try_from(wanted)?;
    let (mut ids, mut page_token) = (Vec::new(), String::new());
    while ids.len() < wanted {
        let page = c
            .get_statement_print_file(pb::GetStatementPrintFileRequest {
                statement_date: date.clone(),
                page_size: 500,
                page_token,
            })
            .await?
            .into_inner();
        for line in String::from_utf8(page.content)?.lines() {
            let record: serde_json::Value = serde_json::from_str(line)?;
            if let Some(id) = record["statement_id"].as_str() {
                ids.push(id.to_owned());
            }
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    ids.truncate(wanted);
    Ok(ids)
}
