//! `medbill bench remittance`: a large 835 through IngestEraStream, matched, posted and delivered
//! to claims and collections, each stage timed, and the resident memory it took.
//!
//! ```text
//! medbill bench remittance --mb 50
//! medbill bench remittance --mb 50 --database-url postgres://postgres@127.0.0.1:5432/bench
//! medbill bench remittance --mb 50 --concurrent-uploads 4
//! ```
//!
//! The suite starts in this process as `medbill serve --target all` starts it (SQLite files in a
//! fresh directory, or the database of `--database-url` / `MEDBILL_DATABASE_URL`). Setup, untimed:
//! the billing provider and a coverage (as `medbill bench claims` makes them), then one claim per
//! claim payment the 835 will carry, created, scrubbed and submitted (so claims takes the
//! adjudication). The 835 is written at run time with the project's own 835 writer
//! (`medbill_x12::write`) into a temporary file, a few sets per interchange so the writer never
//! holds the file: sets of [`CLAIMS_PER_SET`] claim payments, each paying its claim (contractual
//! CO-45, a patient share PR-2 on every third claim, a denial now and then). Measured:
//!
//! - ingest and balance: IngestEraStream of the file in 1 MiB chunks, until it answers;
//! - matching and posting: the posting worker's own totals (claims looked up a page at a time
//!   through GetClaimsByPatientControlNumbers; the store's time for the posting transactions);
//! - delivery: the outbox relay's drain of ApplyAdjudication to claims and
//!   PostPatientResponsibility to collections, from the end of the ingest until none is pending,
//!   read from remittance's database;
//! - peak resident memory of the whole process (VmHWM: the suite, payer-sim and this driver).
//!
//! With `--concurrent-uploads K` (K > 1) K different files of `--mb` are uploaded at once (the
//! extra files pay claims that do not exist, so they end on the unmatched worklist) to show the
//! memory of concurrent ingests.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::NaiveDate;
use medbill_proto::claims::v1 as pb;
use medbill_proto::claims::v1::claims_service_client::ClaimsServiceClient;
use medbill_proto::eligibility::v1::eligibility_service_client::EligibilityServiceClient;
use medbill_proto::remittance::v1 as rpb;
use medbill_proto::remittance::v1::remittance_service_client::RemittanceServiceClient;
use medbill_storage::{Database, with_db};
use medbill_x12::transactions::era835 as m;
use medbill_x12::write::{
    self, EftAccounts, GroupHeader, InterchangeHeader, RemittanceAdvice, Separators, Usage,
    X12Writer,
};
use rust_decimal::Decimal;
use std::borrow::Cow;
use tokio::io::AsyncReadExt;

use super::claims::{self as claims_bench, InProcess};
use super::load::{self, Bearer, Limit, Table};

/// Claim payments per 835 set (one BPR/TRN each).
pub const CLAIMS_PER_SET: usize = 250;
/// Sets per interchange written at once.
const SETS_PER_INTERCHANGE: usize = 8;
/// Bytes per IngestEraStream chunk.
const CHUNK: usize = 1024 * 1024;

/// One remittance run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Size of the 835 in MB (10^6 bytes).
    pub mb: f64,
    /// Files uploaded at once.
    pub concurrent_uploads: usize,
    /// Calls in flight while creating, scrubbing the claims (setup).
    pub concurrency: usize,
    /// Database of the in-process suite.
    pub database_url: Option<String>,
    /// Directory of the in-process suite's SQLite files.
    pub data_dir: Option<PathBuf>,
    /// Date of service of every claim.
    pub date_of_service: String,
    /// Create no claims: every payment goes to the unmatched worklist and nothing is delivered
    /// (measures ingest, posting and memory without the claims setup).
    pub skip_claims: bool,
}

type Claims = ClaimsServiceClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Bearer>,
>;

/// The claim every payment pays: its CLM01 and the billed lines (code, charge).
struct Billed {
    pcn: String,
    lines: Vec<(String, Decimal)>,
}

/// Runs the remittance bench and returns its figures as text.
///
/// # Errors
/// The suite cannot be started, a setup call fails, or the ERAs are not posted.
pub async fn run(plan: &Plan) -> anyhow::Result<String> {
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let suite =
        InProcess::start(plan.data_dir.as_ref(), plan.database_url.as_ref(), &run_id).await?;
    let result = phases(plan, &suite, &run_id).await;
    suite.stop().await?;
    result
}

/// How many claim payments make an 835 of about `mb` MB: one set written in memory tells the
/// bytes a payment takes.
fn payments_for(
    mb: f64,
    payer_id: &str,
    date: NaiveDate,
    billed: &[(String, Decimal)],
) -> anyhow::Result<usize> {
    let payments = (0..CLAIMS_PER_SET)
        .map(|i| {
            let claim = Billed {
                pcn: format!("R00000000{i:011}"),
                lines: billed.to_vec(),
            };
            pay(&claim, i, date)
        })
        .collect();
    let now = chrono::Utc::now().naive_utc();
    let mut w = X12Writer::new(Separators::default())?;
    w.begin_interchange(&interchange(1, now))?;
    w.begin_group(
        "HP",
        &GroupHeader::new("SIMPAYER", "MEDBILL", now.date(), now.time(), 1),
        "005010X221A1",
    )?;
    write::write_835(&mut w, &advice(payments, payer_id, date, "1".into()), 1)?;
    w.end_group()?;
    w.end_interchange()?;
    let per_payment = (w.finish()?.len() / CLAIMS_PER_SET).max(1);
    let bytes = (mb.max(0.01) * 1_000_000.0) as usize;
    Ok((bytes / per_payment).max(1))
}

fn interchange(control_number: u32, now: chrono::NaiveDateTime) -> InterchangeHeader {
    InterchangeHeader {
        sender_qualifier: "ZZ".into(),
        sender_id: "SIMPAYER".into(),
        receiver_qualifier: "ZZ".into(),
        receiver_id: "MEDBILL".into(),
        date: now.date(),
        time: now.time(),
        control_number,
        ack_requested: false,
        usage: Usage::Test,
    }
}

async fn phases(plan: &Plan, suite: &InProcess, run_id: &str) -> anyhow::Result<String> {
    let url = suite.url();
    let channels = load::connect(&url, 4).await?;
    let bearer = Bearer::new(None)?;
    let claims: Vec<Claims> = channels
        .iter()
        .map(|c| ClaimsServiceClient::with_interceptor(c.clone(), bearer.clone()))
        .collect();
    let mut eligibility =
        EligibilityServiceClient::with_interceptor(channels[0].clone(), bearer.clone());
    let claims_plan = claims_bench::Plan {
        url: None,
        token: None,
        concurrency: plan.concurrency,
        connections: 4,
        claims: 0,
        duration: None,
        mode: claims_bench::Mode::All,
        database_url: None,
        data_dir: None,
        date_of_service: plan.date_of_service.clone(),
        batch: 0,
        batch_concurrency: 1,
    };
    let setup_started = Instant::now();
    let coverage = claims_bench::setup(
        &mut claims[0].clone(),
        &mut eligibility,
        &claims_plan,
        run_id,
    )
    .await?;
    let template = claims_bench::claim(&coverage, &plan.date_of_service);
    let payer_id = template.payer_id.clone();
    let dos = NaiveDate::parse_from_str(&plan.date_of_service, "%Y-%m-%d")
        .context("--date-of-service must be YYYY-MM-DD")?;
    let billed: Vec<(String, Decimal)> = template
        .lines
        .iter()
        .map(|l| Ok((l.procedure_code.clone(), l.charge.parse::<Decimal>()?)))
        .collect::<anyhow::Result<_>>()?;
    let n = payments_for(plan.mb, &payer_id, dos, &billed)?;

    // Setup, untimed: one claim per payment, created, scrubbed, submitted.
    let prefix = run_id[run_id.len() - 8..].to_owned();
    if !plan.skip_claims {
        create_claims(plan, &claims, &template, &prefix, run_id, n).await?;
    }
    let setup_secs = setup_started.elapsed().as_secs_f64();

    // The 835s, written at run time into temporary files (never kept).
    let dir = std::env::temp_dir().join(format!("medbill-bench-835-{run_id}"));
    std::fs::create_dir_all(&dir)?;
    let mut files = Vec::new();
    for upload in 0..plan.concurrent_uploads.max(1) {
        // The first file pays the claims made above; the others pay CLM01s no claim has.
        let letter = if upload == 0 && !plan.skip_claims {
            'R'
        } else {
            'X'
        };
        let path = dir.join(format!("bench-{upload}.835"));
        let (prefix, billed) = (prefix.clone(), billed.clone());
        let claims_of = move |i: usize| Billed {
            pcn: format!("{letter}{prefix}{i:011}"),
            lines: billed.clone(),
        };
        let payer = payer_id.clone();
        let written = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || {
                write_file(&path, n, &payer, dos, upload, claims_of)
            })
            .await??
        };
        files.push((path, written));
    }
    let (first_path, first_size) = files[0].clone();

    let db = remittance_db(suite).await?;
    let hwm_before = vm_hwm();
    let ingest_started = Instant::now();
    // Uploads get their own connections without the load driver's 60 s call timeout: a debug
    // build ingests 50 MB more slowly than that.
    let upload_channel = tonic::transport::Endpoint::from_shared(url.clone())?
        .tcp_nodelay(true)
        .connect()
        .await?;
    let mut uploads = Vec::new();
    for (path, size) in &files {
        let i = uploads.len();
        let client =
            RemittanceServiceClient::with_interceptor(upload_channel.clone(), bearer.clone())
                .max_decoding_message_size(64 * 1024 * 1024);
        uploads.push(tokio::spawn(upload(
            client,
            path.clone(),
            *size,
            format!("bench-{run_id}-ingest-{i}"),
        )));
    }
    let mut answers = Vec::new();
    for u in uploads {
        answers.push(u.await??);
    }
    let ingest_secs = ingest_started.elapsed().as_secs_f64();
    let hwm_after_ingest = vm_hwm();
    let eras = &answers[0].eras;
    let sets = eras.len();
    let balanced = eras
        .iter()
        .filter(|e| e.status == rpb::EraStatus::Received as i32)
        .count();
    if balanced != sets {
        bail!(
            "{} of {sets} sets of the bench 835 were not RECEIVED",
            sets - balanced
        );
    }

    // Posting: wait until no ERA is RECEIVED.
    let posting_started = Instant::now();
    loop {
        let waiting = count(&db, "SELECT COUNT(*) FROM eras WHERE status = 'RECEIVED'").await?;
        if waiting == 0 {
            break;
        }
        if posting_started.elapsed() > Duration::from_secs(3_600) {
            bail!("{waiting} ERAs still RECEIVED after an hour");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let posted_wall = posting_started.elapsed().as_secs_f64();
    let totals = medbill_remittance::posting::totals();

    // Delivery: until nothing is pending for either receiver.
    let mut drained = [None, None];
    let destinations = [
        "claims.ApplyAdjudication",
        "collections.PostPatientResponsibility",
    ];
    loop {
        for (i, d) in destinations.iter().enumerate() {
            if drained[i].is_none() && pending(&db, d).await? == 0 {
                drained[i] = Some(ingest_started.elapsed().as_secs_f64() - ingest_secs);
            }
        }
        if drained.iter().all(Option::is_some) {
            break;
        }
        if ingest_started.elapsed() > Duration::from_secs(3_600) {
            bail!("the outbox did not drain in an hour");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut delivered = [0i64; 2];
    for (i, d) in destinations.iter().enumerate() {
        delivered[i] = status_count(&db, d, "DELIVERED").await?;
    }
    let dead = count(
        &db,
        "SELECT COUNT(*) FROM platform_outbox WHERE status = 'DEAD'",
    )
    .await?;
    let hwm_end = vm_hwm();
    let _ = std::fs::remove_dir_all(&dir);

    let mib = |b: Option<u64>| {
        b.map_or_else(
            || "n/a".to_owned(),
            |b| format!("{:.0} MiB", b as f64 / 1_048_576.0),
        )
    };
    let mut table = Table::new(&["stage", "items", "seconds", "rate"]);
    table.row(vec![
        format!(
            "ingest + balance (IngestEraStream, {} upload(s) of {:.1} MB)",
            files.len(),
            first_size as f64 / 1e6
        ),
        format!("{sets} sets, {n} claim payments"),
        format!("{ingest_secs:.2}"),
        format!(
            "{:.0} claim payments/s",
            (n * files.len()) as f64 / ingest_secs
        ),
    ]);
    table.row(vec![
        "matching (claim look-ups)".to_owned(),
        totals.payments.to_string(),
        format!("{:.2}", totals.matching.as_secs_f64()),
        format!(
            "{:.0} claim payments/s",
            totals.payments as f64 / totals.matching.as_secs_f64().max(1e-9)
        ),
    ]);
    table.row(vec![
        "posting (store time)".to_owned(),
        totals.payments.to_string(),
        format!("{:.2}", totals.store.as_secs_f64()),
        format!(
            "{:.0} claim payments/s",
            totals.payments as f64 / totals.store.as_secs_f64().max(1e-9)
        ),
    ]);
    table.row(vec![
        "matching + posting (wall, after the ingest)".to_owned(),
        format!("{} ERAs", totals.eras),
        format!("{posted_wall:.2}"),
        format!(
            "{:.0} claim payments/s",
            totals.payments as f64 / posted_wall.max(1e-9)
        ),
    ]);
    for (i, d) in destinations.iter().enumerate() {
        let secs = drained[i].unwrap_or_default();
        table.row(vec![
            format!("delivery drained: {d}"),
            delivered[i].to_string(),
            format!("{secs:.2}"),
            format!("{:.0} messages/s", delivered[i] as f64 / secs.max(1e-9)),
        ]);
    }
    Ok(format!(
        "remittance bench ({}, {} claims set up in {setup_secs:.0} s, untimed; outbox.batch_size {}; {} first file)\n{table}\n\
         delivery seconds count from the end of the ingest (posting and delivery overlap); dead messages: {dead}\n\
         peak resident memory (VmHWM, whole process): before the ingest {}, after the ingest {}, at the end {}\n",
        suite.target,
        if plan.skip_claims { 0 } else { n },
        suite.config().outbox.batch_size,
        first_path.display(),
        mib(hwm_before),
        mib(hwm_after_ingest),
        mib(hwm_end),
    ))
}

/// Creates, scrubs and submits one claim per payment (`R<prefix><n>`), so that claims takes the
/// adjudications the 835 carries.
async fn create_claims(
    plan: &Plan,
    claims: &[Claims],
    template: &pb::ClaimInput,
    prefix: &str,
    run_id: &str,
    n: usize,
) -> anyhow::Result<()> {
    let created: Arc<Mutex<Vec<(u64, String)>>> = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let (cl, ids, t, p, r) = (
        Arc::new(claims.to_vec()),
        Arc::clone(&created),
        template.clone(),
        prefix.to_owned(),
        run_id.to_owned(),
    );
    let limit = Limit {
        requests: Some(n as u64),
        duration: None,
    };
    let create = load::drive(plan.concurrency, limit, move |i| {
        let mut client = cl[i as usize % cl.len()].clone();
        let mut input = t.clone();
        input.patient_control_number = format!("R{p}{i:011}");
        let req = pb::CreateClaimRequest {
            idempotency_key: format!("bench-{r}-create-{i}"),
            claim: Some(input),
        };
        let ids = Arc::clone(&ids);
        async move {
            let claim = client.create_claim(req).await?.into_inner().claim;
            if let Some(c) = claim {
                ids.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((i, c.id));
            }
            Ok(false)
        }
    })
    .await?;
    let mut created = std::mem::take(&mut *created.lock().unwrap_or_else(PoisonError::into_inner));
    if created.len() != n {
        bail!(
            "setup: {} of {n} claims were created ({})",
            created.len(),
            create.errors_text()
        );
    }
    created.sort();
    let claim_ids = Arc::new(created.into_iter().map(|(_, id)| id).collect::<Vec<_>>());
    let (cl, ids, r) = (
        Arc::new(claims.to_vec()),
        Arc::clone(&claim_ids),
        run_id.to_owned(),
    );
    let scrub = load::drive(plan.concurrency, limit, move |i| {
        let mut client = cl[i as usize % cl.len()].clone();
        let req = pb::ScrubClaimRequest {
            idempotency_key: format!("bench-{r}-scrub-{i}"),
            claim_id: ids[i as usize].clone(),
        };
        async move { Ok(client.scrub_claim(req).await?.into_inner().passed) }
    })
    .await?;
    if scrub.flagged != n as u64 {
        bail!("setup: {} of {n} claims passed scrubbing", scrub.flagged);
    }
    let mut submitter = claims[0].clone();
    let mut submitted = 0u64;
    for call in 0u64.. {
        let answer = submitter
            .submit_claims(pb::SubmitClaimsRequest {
                idempotency_key: format!("bench-{run_id}-submit-{call}"),
                claim_ids: Vec::new(),
                max_claims: claims_bench::SUBMIT_BATCH,
            })
            .await?
            .into_inner();
        if answer.batches.is_empty() {
            break;
        }
        submitted += answer
            .batches
            .iter()
            .map(|b| u64::from(b.claim_count))
            .sum::<u64>();
    }
    if submitted < n as u64 {
        bail!("setup: {submitted} of {n} claims were submitted");
    }
    Ok(())
}

/// Writes an 835 paying `n` claims (`claim(i)` for i in 0..n) into `path`, a few sets per
/// interchange; returns its size in bytes.
fn write_file(
    path: &Path,
    n: usize,
    payer_id: &str,
    date: NaiveDate,
    upload: usize,
    claim: impl Fn(usize) -> Billed,
) -> anyhow::Result<u64> {
    use std::io::Write as _;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut size = 0u64;
    let sets = n.div_ceil(CLAIMS_PER_SET);
    let mut set = 0usize;
    let mut interchange = 0u32;
    while set < sets {
        interchange += 1;
        let now = chrono::Utc::now().naive_utc();
        let header = self::interchange(interchange, now);
        let group = GroupHeader::new("SIMPAYER", "MEDBILL", now.date(), now.time(), interchange);
        let mut w = X12Writer::new(Separators::default())?;
        w.begin_interchange(&header)?;
        w.begin_group("HP", &group, "005010X221A1")?;
        for s in 0..SETS_PER_INTERCHANGE {
            if set >= sets {
                break;
            }
            let from = set * CLAIMS_PER_SET;
            let to = (from + CLAIMS_PER_SET).min(n);
            let payments: Vec<m::ClaimPayment<'static>> =
                (from..to).map(|i| pay(&claim(i), i, date)).collect();
            let advice = advice(
                payments,
                payer_id,
                date,
                format!("{upload}{interchange:05}{s:02}"),
            );
            write::write_835(&mut w, &advice, u32::try_from(s + 1)?)?;
            set += 1;
        }
        w.end_group()?;
        w.end_interchange()?;
        let text = w.finish()?;
        size += text.len() as u64;
        out.write_all(text.as_bytes())?;
    }
    out.flush()?;
    Ok(size)
}

fn text(s: impl Into<String>) -> Cow<'static, str> {
    Cow::Owned(s.into())
}

/// The CLP loop paying `claim`: 80 % of each line, CO-45 for the rest; every third claim moves
/// 10 % of each line to the patient (PR-2), every 25th is denied (CO-50).
fn pay(claim: &Billed, i: usize, date: NaiveDate) -> m::ClaimPayment<'static> {
    let denied = i % 25 == 24;
    let patient_share = i.is_multiple_of(3) && !denied;
    let cents = |d: Decimal| d.round_dp(2);
    let mut charge = Decimal::ZERO;
    let mut paid = Decimal::ZERO;
    let mut pr_total = Decimal::ZERO;
    let d8 = text(date.format("%Y%m%d").to_string());
    let services: Vec<m::ServicePayment<'static>> = claim
        .lines
        .iter()
        .map(|(code, line_charge)| {
            let (line_paid, pr) = if denied {
                (Decimal::ZERO, Decimal::ZERO)
            } else if patient_share {
                let pr = cents(*line_charge / Decimal::from(10));
                (cents(*line_charge * Decimal::new(7, 1)), pr)
            } else {
                (cents(*line_charge * Decimal::new(8, 1)), Decimal::ZERO)
            };
            let co = *line_charge - line_paid - pr;
            charge += *line_charge;
            paid += line_paid;
            pr_total += pr;
            let mut adjustments = vec![m::Adjustment {
                group: Cow::Borrowed("CO"),
                reason: Cow::Borrowed(if denied { "50" } else { "45" }),
                amount: co,
                quantity: None,
            }];
            if !pr.is_zero() {
                adjustments.push(m::Adjustment {
                    group: Cow::Borrowed("PR"),
                    reason: Cow::Borrowed("2"),
                    amount: pr,
                    quantity: None,
                });
            }
            m::ServicePayment {
                procedure: m::Procedure {
                    qualifier: Cow::Borrowed("HC"),
                    code: text(code.clone()),
                    modifiers: Default::default(),
                    description: None,
                },
                charge: *line_charge,
                paid: line_paid,
                units: Some(Decimal::ONE),
                dates: vec![m::DateRef {
                    qualifier: Cow::Borrowed("472"),
                    date: d8.clone(),
                }]
                .into(),
                adjustments: adjustments.into(),
                amounts: vec![m::AmountRef {
                    qualifier: Cow::Borrowed("B6"),
                    amount: *line_charge - co,
                }]
                .into(),
                ..m::ServicePayment::default()
            }
        })
        .collect();
    m::ClaimPayment {
        patient_control_number: text(claim.pcn.clone()),
        status_code: Cow::Borrowed(if denied { "4" } else { "1" }),
        charge,
        paid,
        patient_responsibility: Some(pr_total),
        filing_indicator: Some(Cow::Borrowed("12")),
        payer_claim_control_number: Some(text(format!("PCC{i:012}"))),
        header_number: Some(Cow::Borrowed("1")),
        names: vec![m::Name {
            entity: Cow::Borrowed("QC"),
            entity_type: Cow::Borrowed("1"),
            last: Some(Cow::Borrowed("TESTPATIENT")),
            first: Some(Cow::Borrowed("AVERY")),
            id_qualifier: Some(Cow::Borrowed("MI")),
            id: Some(Cow::Borrowed("SPX100000001")),
            ..m::Name::default()
        }],
        dates: vec![
            m::DateRef {
                qualifier: Cow::Borrowed("232"),
                date: d8.clone(),
            },
            m::DateRef {
                qualifier: Cow::Borrowed("233"),
                date: d8,
            },
        ]
        .into(),
        services,
        ..m::ClaimPayment::default()
    }
}

/// The set around `claims`: an EFT of their total with trace `trace`.
fn advice(
    claims: Vec<m::ClaimPayment<'static>>,
    payer_id: &str,
    date: NaiveDate,
    trace: String,
) -> RemittanceAdvice<'static> {
    let total: Decimal = claims.iter().map(|c| c.paid).sum();
    let d8 = text(date.format("%Y%m%d").to_string());
    RemittanceAdvice {
        remittance: m::Remittance {
            payment: m::Payment {
                handling: Cow::Borrowed("I"),
                amount: total,
                credit_debit: Cow::Borrowed("C"),
                method: Cow::Borrowed("ACH"),
                format: Some(Cow::Borrowed("CCP")),
                originating_company_id: Some(Cow::Borrowed("1999999999")),
                date: Some(d8.clone()),
                ..m::Payment::default()
            },
            trace: Some(m::Trace {
                type_code: Cow::Borrowed("1"),
                number: text(trace),
                originator: Some(Cow::Borrowed("1999999999")),
                supplemental: None,
            }),
            dates: vec![m::DateRef {
                qualifier: Cow::Borrowed("405"),
                date: d8,
            }],
            payer: m::Party {
                entity: Cow::Borrowed("PR"),
                name: Cow::Borrowed("SIMULATED PPO HEALTH"),
                id_qualifier: Some(Cow::Borrowed("XV")),
                id: Some(text(payer_id)),
                ..m::Party::default()
            },
            payee: m::Party {
                entity: Cow::Borrowed("PE"),
                name: Cow::Borrowed("MEDBILL BENCH BILLING"),
                id_qualifier: Some(Cow::Borrowed("XX")),
                id: Some(Cow::Borrowed("1234567893")),
                ..m::Party::default()
            },
            header_numbers: vec![m::HeaderNumber {
                number: Cow::Borrowed("1"),
                ..m::HeaderNumber::default()
            }],
            claims,
            ..m::Remittance::default()
        },
        accounts: Some(EftAccounts {
            payer_routing: "011000015".to_owned(),
            payer_account: "91999999999".to_owned(),
            payee_routing: "071000013".to_owned(),
            payee_account: "1234567893".to_owned(),
        }),
    }
}

/// Streams the file at `path` through IngestEraStream in [`CHUNK`] pieces.
async fn upload(
    mut client: RemittanceServiceClient<
        tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Bearer>,
    >,
    path: PathBuf,
    size: u64,
    key: String,
) -> anyhow::Result<rpb::IngestEraStreamResponse> {
    let (sender, receiver) = tokio::sync::mpsc::channel::<rpb::IngestEraStreamRequest>(2);
    let header = rpb::IngestEraStreamRequest {
        part: Some(rpb::ingest_era_stream_request::Part::Header(
            rpb::IngestEraStreamHeader {
                idempotency_key: key,
                file_name: path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                total_size: size,
                content_sha256: String::new(),
            },
        )),
    };
    sender.send(header).await?;
    let reader = tokio::spawn(async move {
        let mut file = tokio::fs::File::open(&path).await?;
        loop {
            let mut chunk = vec![0u8; CHUNK];
            let mut filled = 0;
            while filled < CHUNK {
                let read = file.read(&mut chunk[filled..]).await?;
                if read == 0 {
                    break;
                }
                filled += read;
            }
            if filled == 0 {
                return anyhow::Ok(());
            }
            chunk.truncate(filled);
            let message = rpb::IngestEraStreamRequest {
                part: Some(rpb::ingest_era_stream_request::Part::Chunk(chunk)),
            };
            if sender.send(message).await.is_err() {
                return Ok(());
            }
        }
    });
    let answer = client
        .ingest_era_stream(tokio_stream::wrappers::ReceiverStream::new(receiver))
        .await
        .context("IngestEraStream")?
        .into_inner();
    reader.await??;
    Ok(answer)
}

async fn remittance_db(suite: &InProcess) -> anyhow::Result<Database> {
    let config = suite.config();
    Ok(Database::connect(
        &config.effective_database_url(),
        &config.database_pool,
        "remittance",
    )
    .await?)
}

async fn count(db: &Database, sql: &'static str) -> anyhow::Result<i64> {
    Ok(with_db!(db, |pool| sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(pool)
        .await?))
}

async fn pending(db: &Database, destination: &str) -> anyhow::Result<i64> {
    status_count(db, destination, "PENDING").await
}

async fn status_count(db: &Database, destination: &str, status: &str) -> anyhow::Result<i64> {
    Ok(with_db!(db, |pool| sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM platform_outbox WHERE destination = $1 AND status = $2"
    )
    .bind(destination)
    .bind(status)
    .fetch_one(pool)
    .await?))
}

/// This process's peak resident set size (VmHWM) in bytes; `None` off Linux.
fn vm_hwm() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
