//! The hospital's day through the suite, stage by stage, over the public gRPC APIs only: what a
//! billing office and its EHR would call, in the order they would call it.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use medbill_proto::claims::v1 as claims;
use medbill_proto::claims::v1::claims_service_client::ClaimsServiceClient;
use medbill_proto::collections::v1 as coll;
use medbill_proto::collections::v1::collections_service_client::CollectionsServiceClient;
use medbill_proto::common::v1 as common;
use medbill_proto::eligibility::v1 as elig;
use medbill_proto::eligibility::v1::eligibility_service_client::EligibilityServiceClient;
use medbill_proto::remittance::v1::remittance_service_client::RemittanceServiceClient;
use medbill_runtime::client::TracedChannel;
use rust_decimal::Decimal;

use super::hospital::{BILLING_NPI, Encounter, Hospital, PHYSICIAN_NPI, PatientChoice};
use super::progress::Progress;

/// The four services' clients (one suite, or one process per service).
#[derive(Clone)]
pub struct Clients {
    /// Eligibility and prior authorization.
    pub eligibility: EligibilityServiceClient<TracedChannel>,
    /// Claims.
    pub claims: ClaimsServiceClient<TracedChannel>,
    /// Remittance.
    pub remittance: RemittanceServiceClient<TracedChannel>,
    /// Collections.
    pub collections: CollectionsServiceClient<TracedChannel>,
}

/// How the day is run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Calls in flight at once in each stage.
    pub concurrency: usize,
    /// Items per call for the stages with batch RPCs (1: unary calls).
    pub batch: usize,
    /// Batch calls in flight at once.
    pub batch_concurrency: usize,
    /// Longest wait for the payer's acknowledgements, its payments and the patients' ledgers.
    pub wait: Duration,
    /// Today's date: statements and payments are dated with it.
    pub today: chrono::NaiveDate,
    /// Prefix of every idempotency key of the run.
    pub run: String,
}

/// How long a stage took and how much it did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StageTiming {
    /// The stage.
    pub stage: &'static str,
    /// Items it handled (calls, claims or accounts).
    pub items: u64,
    /// Wall time.
    pub seconds: f64,
}

/// What the run did, for the summary: the ids it made and the answers it got.
#[derive(Debug, Default)]
pub struct Record {
    /// When the run started (denials are counted from here).
    pub started_at: Option<prost_types::Timestamp>,
    /// The run's date (statements, payments, aging).
    pub today: chrono::NaiveDate,
    /// Stage timings, in order.
    pub stages: Vec<StageTiming>,
    /// Eligibility answers by coverage status name.
    pub eligibility: BTreeMap<String, u64>,
    /// Prior authorizations by status name.
    pub prior_authorizations: BTreeMap<String, u64>,
    /// Claims refused by CreateClaim, by gRPC code.
    pub refused_at_intake: BTreeMap<String, u64>,
    /// Patient control numbers of the claims created.
    pub control_numbers: Vec<String>,
    /// Claims created, by encounter index.
    pub claim_ids: BTreeMap<usize, String>,
    /// The patients' accounts, by patient reference.
    pub accounts: BTreeMap<String, String>,
    /// What each patient with a balance did after the statement.
    pub patient_choices: BTreeMap<String, u64>,
}

/// Runs the day: every stage in order, each waiting for the one before.
///
/// # Errors
/// A setup call fails, or the payer's answers do not arrive within `options.wait`.
pub async fn run(
    hospital: &Hospital,
    clients: &Clients,
    options: &Options,
    progress: &Progress,
) -> anyhow::Result<Record> {
    let mut record = Record {
        started_at: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
        today: options.today,
        ..Record::default()
    };
    let coverages = stage(&mut record, progress, "on file", || {
        register(hospital, clients, options, progress)
    })
    .await?;
    let checks = stage(&mut record, progress, "eligibility", || {
        check_eligibility(hospital, clients, options, progress, &coverages)
    })
    .await?;
    record.eligibility = checks;
    let (authorizations, statuses) = stage(&mut record, progress, "prior authorization", || {
        authorize(hospital, clients, options, progress, &coverages)
    })
    .await?;
    record.prior_authorizations = statuses;
    let created = stage(&mut record, progress, "claims", || {
        create_claims(
            hospital,
            clients,
            options,
            progress,
            &coverages,
            &authorizations,
        )
    })
    .await?;
    record.refused_at_intake = created.refused;
    record.claim_ids = created.ids;
    record.control_numbers = created.control_numbers;
    let ids: Vec<String> = record.claim_ids.values().cloned().collect();
    let ready = stage(&mut record, progress, "scrub", || {
        scrub(clients, options, progress, &ids)
    })
    .await?;
    stage(&mut record, progress, "submit", || {
        submit(clients, options, progress, &ready)
    })
    .await?;
    let pcns = record.control_numbers.clone();
    stage(&mut record, progress, "payer acknowledgements", || {
        wait_for_claims(clients, options, progress, &pcns, "acknowledged", |s| {
            s != claims::ClaimStatus::Submitted
        })
    })
    .await?;
    stage(&mut record, progress, "payment", || {
        wait_for_claims(clients, options, progress, &pcns, "paid or denied", |s| {
            s != claims::ClaimStatus::Submitted && s != claims::ClaimStatus::Accepted
        })
    })
    .await?;
    stage(&mut record, progress, "self-pay", || {
        bill_self_pay(hospital, clients, options, progress)
    })
    .await?;
    let accounts = stage(&mut record, progress, "patient ledgers", || {
        wait_for_ledgers(hospital, clients, options, progress, &pcns)
    })
    .await?;
    record.accounts = accounts;
    let account_ids: Vec<String> = record.accounts.values().cloned().collect();
    stage(&mut record, progress, "statements", || {
        statements(clients, options, progress, &account_ids)
    })
    .await?;
    let accounts = record.accounts.clone();
    let choices = stage(&mut record, progress, "patient payments", || {
        patient_payments(hospital, clients, options, progress, &accounts)
    })
    .await?;
    record.patient_choices = choices;
    Ok(record)
}

/// Runs one stage, timing it; `T: Counted` says how many items it handled.
async fn stage<T: Counted, F, Fut>(
    record: &mut Record,
    progress: &Progress,
    name: &'static str,
    body: F,
) -> anyhow::Result<T>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let started = Instant::now();
    let out = body().await.with_context(|| format!("stage {name}"))?;
    let timing = StageTiming {
        stage: name,
        items: out.count(),
        seconds: started.elapsed().as_secs_f64(),
    };
    progress.finished(name, timing.items, timing.seconds);
    record.stages.push(timing);
    Ok(out)
}

/// How many items a stage's result stands for.
trait Counted {
    fn count(&self) -> u64;
}

impl<K, V> Counted for HashMap<K, V> {
    fn count(&self) -> u64 {
        self.len() as u64
    }
}

/// Answers counted by kind: the items are the counts' sum.
impl Counted for BTreeMap<String, u64> {
    fn count(&self) -> u64 {
        self.values().sum()
    }
}

/// Accounts by patient.
impl Counted for BTreeMap<String, String> {
    fn count(&self) -> u64 {
        self.len() as u64
    }
}

impl<T> Counted for Vec<T> {
    fn count(&self) -> u64 {
        self.len() as u64
    }
}

impl Counted for u64 {
    fn count(&self) -> u64 {
        *self
    }
}

impl<A, B: Counted> Counted for (A, B) {
    fn count(&self) -> u64 {
        self.1.count()
    }
}

/// Runs `call` for every item at `concurrency`, advancing `bar`; answers in item order.
async fn each<I, T, F, Fut>(
    items: Vec<I>,
    concurrency: usize,
    bar: &indicatif::ProgressBar,
    call: F,
) -> Vec<T>
where
    F: Fn(I) -> Fut,
    Fut: Future<Output = T>,
{
    let mut out: Vec<(usize, T)> = futures::stream::iter(items.into_iter().enumerate())
        .map(|(i, item)| {
            let fut = call(item);
            async move {
                let answer = fut.await;
                bar.inc(1);
                (i, answer)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, t)| t).collect()
}

/// Runs `call` on `items` in chunks of `options.batch`, `options.batch_concurrency` chunks at
/// once, advancing `bar` per item; `call` answers one result per item of its chunk, and the
/// answers come back in item order.
async fn each_batch<I, T, F, Fut>(
    items: Vec<I>,
    options: &Options,
    bar: &indicatif::ProgressBar,
    call: F,
) -> anyhow::Result<Vec<T>>
where
    F: Fn(Vec<I>) -> Fut,
    Fut: Future<Output = anyhow::Result<Vec<T>>>,
{
    let mut chunks: Vec<Vec<I>> = Vec::new();
    for item in items {
        match chunks.last_mut() {
            Some(chunk) if chunk.len() < options.batch => chunk.push(item),
            _ => chunks.push(vec![item]),
        }
    }
    let answers = each(chunks, options.batch_concurrency, bar, |chunk| {
        let n = chunk.len();
        let fut = call(chunk);
        async move {
            let answers = fut.await?;
            anyhow::ensure!(
                answers.len() == n,
                "a batch of {n} items was answered with {} results",
                answers.len()
            );
            bar.inc(n.saturating_sub(1) as u64);
            Ok(answers)
        }
    })
    .await;
    let mut out = Vec::new();
    for chunk in answers {
        out.extend(chunk?);
    }
    Ok(out)
}

/// The status a single call would have answered for a batch item that failed.
fn item_status(error: common::ItemError) -> tonic::Status {
    tonic::Status::new(tonic::Code::from_i32(error.code), error.message)
}

/// Coverage ids of each insured patient: (primary, secondary).
type Coverages = HashMap<String, (String, Option<String>)>;

/// The billing organisation and the physician on file, and every insured patient's coverage.
async fn register(
    hospital: &Hospital,
    clients: &Clients,
    options: &Options,
    progress: &Progress,
) -> anyhow::Result<Coverages> {
    let mut c = clients.claims.clone();
    for provider in [billing_provider(), physician()] {
        match c
            .create_provider(claims::CreateProviderRequest {
                idempotency_key: format!("demo-provider-{}", provider.npi),
                provider: Some(provider),
            })
            .await
        {
            // On file from an earlier run against the same suite.
            Ok(_) => {}
            Err(s) if s.code() == tonic::Code::AlreadyExists => {}
            Err(s) => return Err(s).context("CreateProvider"),
        }
    }
    let mut patients: Vec<&Encounter> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for e in hospital.encounters.iter().filter(|e| e.insured()) {
        if seen.insert(e.patient.patient_ref.clone()) {
            patients.push(e);
        }
    }
    let bar = progress.bar("on file", patients.len() as u64);
    let answers = each(patients, options.concurrency, &bar, |e| {
        let mut client = clients.eligibility.clone();
        let run = options.run.clone();
        async move {
            let p = &e.patient;
            let mut ids = Vec::new();
            for (order, insurance) in [
                (elig::CoverageOrder::Primary, &p.primary),
                (elig::CoverageOrder::Secondary, &p.secondary),
            ] {
                let Some(insurance) = insurance else { continue };
                let answer = client
                    .create_coverage(elig::CreateCoverageRequest {
                        idempotency_key: format!(
                            "demo-{run}-coverage-{}-{}",
                            e.index,
                            order.as_str_name()
                        ),
                        patient_ref: p.patient_ref.clone(),
                        payer_id: insurance.plan.payer_id().to_owned(),
                        payer_name: insurance.plan.payer_name().to_owned(),
                        member_id: insurance.member_id.clone(),
                        group_number: insurance.plan.group_number().to_owned(),
                        subscriber_first_name: p.first_name.clone(),
                        subscriber_last_name: p.last_name.clone(),
                        subscriber_birth_date: p.birth_date.clone(),
                        relationship_to_subscriber: "18".to_owned(),
                        coverage_order: order.into(),
                        effective_date: "2024-01-01".to_owned(),
                        ..Default::default()
                    })
                    .await
                    .context("CreateCoverage")?
                    .into_inner()
                    .coverage
                    .context("CreateCoverage answered no coverage")?;
                ids.push(answer.id);
            }
            let mut ids = ids.into_iter();
            let primary = ids.next().context("a primary coverage")?;
            anyhow::Ok((p.patient_ref.clone(), (primary, ids.next())))
        }
    })
    .await;
    bar.finish();
    answers.into_iter().collect()
}

/// CheckEligibility for every insured encounter on its date of service; answers counted by
/// the coverage status the payer's 271 gave.
async fn check_eligibility(
    hospital: &Hospital,
    clients: &Clients,
    options: &Options,
    progress: &Progress,
    coverages: &Coverages,
) -> anyhow::Result<BTreeMap<String, u64>> {
    let insured: Vec<&Encounter> = hospital.encounters.iter().filter(|e| e.insured()).collect();
    let bar = progress.bar("eligibility", insured.len() as u64);
    let answers = each(insured, options.concurrency, &bar, |e| {
        let mut client = clients.eligibility.clone();
        let coverage = coverages[&e.patient.patient_ref].0.clone();
        let key = format!("demo-{}-eligibility-{}", options.run, e.index);
        async move {
            let check = client
                .check_eligibility(elig::CheckEligibilityRequest {
                    idempotency_key: key,
                    subject: Some(elig::check_eligibility_request::Subject::CoverageId(
                        coverage,
                    )),
                    provider: Some(hospital_provider()),
                    date_of_service: e.service_date.clone(),
                    ..Default::default()
                })
                .await
                .context("CheckEligibility")?
                .into_inner()
                .check
                .context("CheckEligibility answered no check")?;
            let status = match check.summary {
                Some(s) => s.coverage_status().as_str_name().to_owned(),
                None => check.status().as_str_name().to_owned(),
            };
            anyhow::Ok(status)
        }
    })
    .await;
    bar.finish();
    let mut out = BTreeMap::new();
    for status in answers {
        *out.entry(status?).or_insert(0) += 1;
    }
    Ok(out)
}

/// RequestPriorAuthorization for the encounters that need one; the approved numbers go on the
/// claims.
async fn authorize(
    hospital: &Hospital,
    clients: &Clients,
    options: &Options,
    progress: &Progress,
    coverages: &Coverages,
) -> anyhow::Result<(HashMap<usize, String>, BTreeMap<String, u64>)> {
    let needing: Vec<&Encounter> = hospital
        .encounters
        .iter()
        .filter(|e| e.needs_prior_authorization)
        .collect();
    let bar = progress.bar("prior authorization", needing.len() as u64);
    let answers = each(needing, options.concurrency, &bar, |e| {
        let mut client = clients.eligibility.clone();
        let coverage = coverages[&e.patient.patient_ref].0.clone();
        let key = format!("demo-{}-auth-{}", options.run, e.index);
        async move {
            let dates = common::ServiceDateRange {
                from_date: e.service_date.clone(),
                to_date: e.service_date.clone(),
            };
            let auth = client
                .request_prior_authorization(elig::RequestPriorAuthorizationRequest {
                    idempotency_key: key,
                    coverage_id: coverage,
                    requesting_provider: Some(hospital_provider()),
                    service_type_code: "2".to_owned(),
                    place_of_service: e.place_of_service.to_owned(),
                    diagnoses: e.diagnoses.iter().map(|d| (*d).to_owned()).collect(),
                    services: e
                        .services
                        .iter()
                        .map(|s| elig::AuthorizedService {
                            procedure: Some(common::Procedure {
                                code: s.procedure.to_owned(),
                                ..Default::default()
                            }),
                            requested_units: s.units.to_string(),
                            ..Default::default()
                        })
                        .collect(),
                    requested_dates: Some(dates),
                    ..Default::default()
                })
                .await
                .context("RequestPriorAuthorization")?
                .into_inner()
                .prior_authorization
                .context("RequestPriorAuthorization answered nothing")?;
            anyhow::Ok((e.index, auth))
        }
    })
    .await;
    bar.finish();
    let mut numbers = HashMap::new();
    let mut statuses = BTreeMap::new();
    for answer in answers {
        let (index, auth) = answer?;
        *statuses
            .entry(auth.status().as_str_name().to_owned())
            .or_insert(0) += 1;
        if auth.status() == elig::PriorAuthorizationStatus::Approved {
            numbers.insert(index, auth.authorization_number);
        }
    }
    Ok((numbers, statuses))
}

/// What CreateClaim made of the insured encounters.
struct Created {
    ids: BTreeMap<usize, String>,
    control_numbers: Vec<String>,
    refused: BTreeMap<String, u64>,
}

impl Counted for Created {
    fn count(&self) -> u64 {
        self.ids.len() as u64
    }
}

async fn create_claims(
    hospital: &Hospital,
    clients: &Clients,
    options: &Options,
    progress: &Progress,
    coverages: &Coverages,
    authorizations: &HashMap<usize, String>,
) -> anyhow::Result<Created> {
    let insured: Vec<&Encounter> = hospital.encounters.iter().filter(|e| e.insured()).collect();
    let bar = progress.bar("claims", insured.len() as u64);
    let request = |e: &Encounter| claims::CreateClaimRequest {
        idempotency_key: format!("demo-{}-claim-{}", options.run, e.index),
        claim: Some(claim_input(
            e,
            &coverages[&e.patient.patient_ref].0,
            authorizations.get(&e.index).map(String::as_str),
        )),
    };
    let answers: Vec<(
        &Encounter,
        Result<claims::CreateClaimResponse, tonic::Status>,
    )> = if options.batch > 1 {
        each_batch(insured, options, &bar, |chunk| {
            let mut client = clients.claims.clone();
            let items = chunk.iter().map(|e| request(e)).collect();
            async move {
                let results = client
                    .create_claims(claims::CreateClaimsRequest { items })
                    .await
                    .context("CreateClaims")?
                    .into_inner()
                    .results;
                let answers = results.into_iter().map(|r| match r.outcome {
                    Some(claims::create_claim_result::Outcome::Created(c)) => Ok(c),
                    Some(claims::create_claim_result::Outcome::Error(e)) => Err(item_status(e)),
                    None => Err(tonic::Status::internal("CreateClaims answered no outcome")),
                });
                anyhow::Ok(chunk.into_iter().zip(answers).collect())
            }
        })
        .await?
    } else {
        each(insured, options.concurrency, &bar, |e| {
            let mut client = clients.claims.clone();
            let request = request(e);
            async move {
                let answer = client.create_claim(request).await.map(|a| a.into_inner());
                (e, answer)
            }
        })
        .await
    };
    bar.finish();
    let mut out = Created {
        ids: BTreeMap::new(),
        control_numbers: Vec::new(),
        refused: BTreeMap::new(),
    };
    for (e, answer) in answers {
        match answer {
            Ok(a) => {
                let claim = a.claim.context("CreateClaim answered no claim")?;
                out.control_numbers.push(claim.patient_control_number);
                out.ids.insert(e.index, claim.id);
            }
            // A claim the service refuses is the demo's finding, not its failure.
            Err(s)
                if matches!(
                    s.code(),
                    tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition
                ) =>
            {
                *out.refused.entry(format!("{:?}", s.code())).or_insert(0) += 1;
            }
            Err(s) => return Err(s).context("CreateClaim"),
        }
    }
    Ok(out)
}

/// ScrubClaim for every claim; returns the ids that passed (READY).
async fn scrub(
    clients: &Clients,
    options: &Options,
    progress: &Progress,
    ids: &[String],
) -> anyhow::Result<Vec<String>> {
    let bar = progress.bar("scrub", ids.len() as u64);
    let request = |id: &str| claims::ScrubClaimRequest {
        idempotency_key: format!("demo-{}-scrub-{id}", options.run),
        claim_id: id.to_owned(),
    };
    let passed: Vec<bool> = if options.batch > 1 {
        each_batch(ids.to_vec(), options, &bar, |chunk| {
            let mut client = clients.claims.clone();
            let items = chunk.iter().map(|id| request(id)).collect();
            async move {
                let results = client
                    .scrub_claims(claims::ScrubClaimsRequest { items })
                    .await
                    .context("ScrubClaims")?
                    .into_inner()
                    .results;
                results
                    .into_iter()
                    .map(|r| match r.outcome {
                        Some(claims::scrub_claim_result::Outcome::Scrubbed(a)) => Ok(a.passed),
                        Some(claims::scrub_claim_result::Outcome::Error(e)) => {
                            Err(item_status(e)).context("ScrubClaims item")
                        }
                        None => bail!("ScrubClaims answered no outcome"),
                    })
                    .collect()
            }
        })
        .await?
    } else {
        each(ids.to_vec(), options.concurrency, &bar, |id| {
            let mut client = clients.claims.clone();
            let request = request(&id);
            async move {
                let answer = client
                    .scrub_claim(request)
                    .await
                    .context("ScrubClaim")?
                    .into_inner();
                anyhow::Ok(answer.passed)
            }
        })
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?
    };
    bar.finish();
    Ok(ids
        .iter()
        .zip(passed)
        .filter(|(_, passed)| *passed)
        .map(|(id, _)| id.clone())
        .collect())
}

/// SubmitClaims for the READY claims, in calls of at most 5,000.
async fn submit(
    clients: &Clients,
    options: &Options,
    progress: &Progress,
    ready: &[String],
) -> anyhow::Result<u64> {
    let bar = progress.bar("submit", ready.len() as u64);
    let mut client = clients.claims.clone();
    let mut sent = 0u64;
    for (n, chunk) in ready.chunks(5_000).enumerate() {
        let answer = client
            .submit_claims(claims::SubmitClaimsRequest {
                idempotency_key: format!("demo-{}-submit-{n}", options.run),
                claim_ids: chunk.to_vec(),
                max_claims: 0,
            })
            .await
            .context("SubmitClaims")?
            .into_inner();
        for batch in &answer.batches {
            if batch.status == claims::SubmissionBatchStatus::Failed as i32 {
                bail!(
                    "submission batch {} failed: {}",
                    batch.id,
                    batch.error_message
                );
            }
            sent += u64::from(batch.claim_count);
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish();
    Ok(sent)
}

/// Reads the run's claims by patient control number, 1,000 a call.
pub async fn claims_by_control_number(
    clients: &Clients,
    pcns: &[String],
) -> anyhow::Result<Vec<claims::Claim>> {
    let mut client = clients.claims.clone();
    let mut out = Vec::with_capacity(pcns.len());
    for chunk in pcns.chunks(1_000) {
        out.extend(
            client
                .get_claims_by_patient_control_numbers(
                    claims::GetClaimsByPatientControlNumbersRequest {
                        patient_control_numbers: chunk.to_vec(),
                    },
                )
                .await
                .context("GetClaimsByPatientControlNumbers")?
                .into_inner()
                .claims,
        );
    }
    Ok(out)
}

/// Waits until every claim of the run that reached the payer is `what` by `done`.
async fn wait_for_claims(
    clients: &Clients,
    options: &Options,
    progress: &Progress,
    pcns: &[String],
    what: &str,
    done: impl Fn(claims::ClaimStatus) -> bool,
) -> anyhow::Result<u64> {
    let sent = |s: claims::ClaimStatus| {
        !matches!(
            s,
            claims::ClaimStatus::Draft | claims::ClaimStatus::Held | claims::ClaimStatus::Ready
        )
    };
    let deadline = Instant::now() + options.wait;
    let bar = progress.bar(what, 0);
    loop {
        let polled = Instant::now();
        let all = claims_by_control_number(clients, pcns).await?;
        let at_payer: Vec<_> = all.iter().filter(|c| sent(c.status())).collect();
        let finished = at_payer.iter().filter(|c| done(c.status())).count() as u64;
        bar.set_length(at_payer.len() as u64);
        bar.set_position(finished);
        if finished == at_payer.len() as u64 {
            bar.finish();
            return Ok(finished);
        }
        if Instant::now() > deadline {
            bail!(
                "{} of {} claims were not {what} after {} s (the suite picks up the payer's files \
                 on its poll interval: claims.submission.acknowledgement_poll_secs, \
                 remittance.era_pickup.poll_secs)",
                at_payer.len() as u64 - finished,
                at_payer.len(),
                options.wait.as_secs()
            );
        }
        pause_after(polled).await;
    }
}

/// Waits between polls: as long as the poll took (a day of 100,000 claims reads 100 pages a
/// poll; the driver must not crowd out the suite it waits for), from 250 ms to one second: a poll
/// made slow by a busy suite must not add as much again to the stage it measures.
async fn pause_after(polled: Instant) {
    let pause = polled
        .elapsed()
        .clamp(Duration::from_millis(250), Duration::from_secs(1));
    tokio::time::sleep(pause).await;
}

/// For every encounter without insurance: the Good Faith Estimate the patient was given
/// (EstimatePatientCost, self-pay), then BillSelfPay of the charges less the suite's self-pay
/// discount, linked to the estimate.
async fn bill_self_pay(
    hospital: &Hospital,
    clients: &Clients,
    options: &Options,
    progress: &Progress,
) -> anyhow::Result<u64> {
    let uninsured: Vec<&Encounter> = hospital
        .encounters
        .iter()
        .filter(|e| !e.insured())
        .collect();
    let bar = progress.bar("self-pay", uninsured.len() as u64);
    let answers = each(uninsured, options.concurrency, &bar, |e| {
        let mut eligibility = clients.eligibility.clone();
        let mut collections = clients.collections.clone();
        let run = options.run.clone();
        async move {
            let estimate = eligibility
                .estimate_patient_cost(elig::EstimatePatientCostRequest {
                    idempotency_key: format!("demo-{run}-estimate-{}", e.index),
                    self_pay: true,
                    patient_ref: e.patient.patient_ref.clone(),
                    date_of_service: e.service_date.clone(),
                    services: e
                        .services
                        .iter()
                        .map(|s| elig::EstimateServiceInput {
                            procedure: Some(common::Procedure {
                                code: s.procedure.to_owned(),
                                ..Default::default()
                            }),
                            units: s.units.to_string(),
                            charge: s.charge.to_owned(),
                            place_of_service: e.place_of_service.to_owned(),
                            ..Default::default()
                        })
                        .collect(),
                    provider: Some(hospital_provider()),
                    ..Default::default()
                })
                .await
                .context("EstimatePatientCost")?
                .into_inner()
                .estimate
                .context("EstimatePatientCost answered no estimate")?;
            collections
                .bill_self_pay(coll::BillSelfPayRequest {
                    idempotency_key: format!("demo-{run}-selfpay-{}", e.index),
                    patient_ref: e.patient.patient_ref.clone(),
                    // No claim goes to a payer: the EHR's encounter id stands for it.
                    claim_id: uuid::Uuid::now_v7().to_string(),
                    service_date: e.service_date.clone(),
                    charges: e
                        .services
                        .iter()
                        .map(|s| coll::SelfPayCharge {
                            procedure_code: s.procedure.to_owned(),
                            charge: s.charge.to_owned(),
                            units: s.units,
                        })
                        .collect(),
                    estimate_id: estimate.id,
                    ..Default::default()
                })
                .await
                .context("BillSelfPay")
                .map(drop)
        }
    })
    .await;
    bar.finish();
    let n = answers.len() as u64;
    answers.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    Ok(n)
}

/// Waits until every patient's account shows what the payer said the patient owes (CLP05 of
/// the claims in force) plus self-pay bills; returns the accounts by patient reference.
async fn wait_for_ledgers(
    hospital: &Hospital,
    clients: &Clients,
    options: &Options,
    progress: &Progress,
    pcns: &[String],
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut expected_with_pr: BTreeMap<String, Decimal> = BTreeMap::new();
    for claim in claims_by_control_number(clients, pcns).await? {
        if let Some(a) = &claim.adjudication {
            let pr = decimal(&a.patient_responsibility)?;
            if pr > Decimal::ZERO {
                *expected_with_pr
                    .entry(claim.patient_ref.clone())
                    .or_default() += pr;
            }
        }
    }
    let self_pay: Vec<String> = hospital
        .encounters
        .iter()
        .filter(|e| !e.insured())
        .map(|e| e.patient.patient_ref.clone())
        .collect();
    let wanted: Vec<String> = expected_with_pr
        .keys()
        .cloned()
        .chain(self_pay)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let deadline = Instant::now() + options.wait;
    let bar = progress.bar("patient ledgers", wanted.len() as u64);
    loop {
        let polled = Instant::now();
        let found = accounts_of(clients, &wanted).await?;
        let settled = wanted
            .iter()
            .filter(|p| match (found.get(*p), expected_with_pr.get(*p)) {
                (Some(a), Some(pr)) => decimal(&a.balance).is_ok_and(|b| b >= *pr),
                (Some(_), None) => true,
                (None, _) => false,
            })
            .count();
        bar.set_position(settled as u64);
        if settled == wanted.len() {
            bar.finish();
            return Ok(found.into_iter().map(|(p, a)| (p, a.id)).collect());
        }
        if Instant::now() > deadline {
            bail!(
                "{} of {} patients' ledgers did not show what the payer said they owe after {} s",
                wanted.len() - settled,
                wanted.len(),
                options.wait.as_secs()
            );
        }
        pause_after(polled).await;
    }
}

/// The account of each of `patients` that has one: the tenant's accounts read a page (500) at a
/// time, so a day of 100,000 patients costs 200 calls, not one per patient.
pub async fn accounts_of(
    clients: &Clients,
    patients: &[String],
) -> anyhow::Result<BTreeMap<String, coll::Account>> {
    let wanted: std::collections::HashSet<&String> = patients.iter().collect();
    let mut client = clients.collections.clone();
    let mut out = BTreeMap::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_accounts(coll::ListAccountsRequest {
                page_size: 500,
                page_token,
                ..Default::default()
            })
            .await
            .context("ListAccounts")?
            .into_inner();
        for account in page.accounts {
            if wanted.contains(&account.patient_ref) {
                out.insert(account.patient_ref.clone(), account);
            }
        }
        if page.next_page_token.is_empty() {
            return Ok(out);
        }
        page_token = page.next_page_token;
    }
}

/// One statement cycle, dated today, over the run's accounts.
async fn statements(
    clients: &Clients,
    options: &Options,
    progress: &Progress,
    account_ids: &[String],
) -> anyhow::Result<u64> {
    let bar = progress.bar("statements", account_ids.len() as u64);
    let mut client = clients.collections.clone();
    let mut made = 0u64;
    for (n, chunk) in account_ids.chunks(1_000).enumerate() {
        let answer = client
            .generate_statements(coll::GenerateStatementsRequest {
                idempotency_key: format!("demo-{}-statements-{n}", options.run),
                statement_date: options.today.format("%Y-%m-%d").to_string(),
                account_ids: chunk.to_vec(),
                minimum_balance: "5.00".to_owned(),
                due_in_days: 30,
                omit_statements: true,
            })
            .await
            .context("GenerateStatements")?
            .into_inner();
        made += u64::from(answer.statement_count);
        bar.inc(chunk.len() as u64);
    }
    bar.finish();
    Ok(made)
}

/// What each patient with an amount due does after the statement: pays it, takes a payment
/// plan, is granted financial assistance, or has not paid yet (the hospital's seeded choice).
async fn patient_payments(
    hospital: &Hospital,
    clients: &Clients,
    options: &Options,
    progress: &Progress,
    accounts: &BTreeMap<String, String>,
) -> anyhow::Result<BTreeMap<String, u64>> {
    let patients: Vec<String> = accounts.keys().cloned().collect();
    let current = accounts_of(clients, &patients).await?;
    let due: Vec<(String, coll::Account)> = current
        .into_iter()
        .filter(|(_, a)| decimal(&a.amount_due).is_ok_and(|d| d > Decimal::ZERO))
        .collect();
    let bar = progress.bar("patient payments", due.len() as u64);
    let today = options.today.format("%Y-%m-%d").to_string();
    let first_due = (options.today + chrono::Days::new(30))
        .format("%Y-%m-%d")
        .to_string();
    let mut out = BTreeMap::new();
    let mut payments = Vec::new();
    let mut others = Vec::new();
    for (patient_ref, account) in due {
        let choice = match hospital.patient_choice(&patient_ref) {
            PatientChoice::PaymentPlan if decimal(&account.amount_due)? < Decimal::from(100) => {
                PatientChoice::PaysInFull
            }
            c => c,
        };
        *out.entry(choice.name().to_owned()).or_insert(0) += 1;
        let key = format!("demo-{}-patient-{patient_ref}", options.run);
        match choice {
            PatientChoice::PaysInFull => payments.push(coll::RecordPaymentRequest {
                idempotency_key: key,
                account_id: account.id.clone(),
                amount: account.amount_due,
                method: coll::PaymentMethod::Card.into(),
                reference: format!("CARD-{}", account.id.len()),
                received_date: today.clone(),
                payer_type: coll::PayerType::Patient.into(),
                ..Default::default()
            }),
            PatientChoice::NotYet => bar.inc(1),
            c => others.push((c, key, account)),
        }
    }
    if options.batch > 1 {
        each_batch(payments, options, &bar, |items| {
            let mut client = clients.collections.clone();
            async move {
                let results = client
                    .record_payments(coll::RecordPaymentsRequest { items })
                    .await
                    .context("RecordPayments")?
                    .into_inner()
                    .results;
                results
                    .into_iter()
                    .map(|r| match r.outcome {
                        Some(coll::record_payment_result::Outcome::Response(_)) => Ok(()),
                        Some(coll::record_payment_result::Outcome::Error(e)) => {
                            Err(item_status(e)).context("RecordPayments item")
                        }
                        None => bail!("RecordPayments answered no outcome"),
                    })
                    .collect()
            }
        })
        .await?;
    } else {
        each(payments, options.concurrency, &bar, |request| {
            let mut client = clients.collections.clone();
            async move {
                client
                    .record_payment(request)
                    .await
                    .context("RecordPayment")
            }
        })
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?;
    }
    let answers = each(
        others,
        options.concurrency,
        &bar,
        |(choice, key, account)| {
            let mut client = clients.collections.clone();
            let first_due = first_due.clone();
            async move {
                if choice == PatientChoice::PaymentPlan {
                    client
                        .create_payment_plan(coll::CreatePaymentPlanRequest {
                            idempotency_key: key,
                            account_id: account.id,
                            total_amount: account.amount_due,
                            terms: Some(
                                coll::create_payment_plan_request::Terms::InstallmentCount(6),
                            ),
                            frequency: coll::InstallmentFrequency::Monthly.into(),
                            first_due_date: first_due,
                        })
                        .await
                        .context("CreatePaymentPlan")?;
                } else {
                    client
                        .write_off(coll::WriteOffRequest {
                            idempotency_key: key,
                            account_id: account.id,
                            amount: account.amount_due,
                            kind: coll::WriteOffKind::CharityCare.into(),
                            reason: "financial assistance approved".to_owned(),
                        })
                        .await
                        .context("WriteOff")?;
                }
                anyhow::Ok(())
            }
        },
    )
    .await;
    bar.finish();
    for answer in answers {
        answer?;
    }
    Ok(out)
}

/// A decimal string from the wire.
pub fn decimal(text: &str) -> anyhow::Result<Decimal> {
    if text.is_empty() {
        return Ok(Decimal::ZERO);
    }
    text.parse()
        .with_context(|| format!("{text:?} is not a decimal amount"))
}

fn billing_provider() -> claims::Provider {
    claims::Provider {
        npi: BILLING_NPI.to_owned(),
        kind: claims::ProviderKind::Organization.into(),
        organization_name: "GENERAL HOSPITAL BILLING".to_owned(),
        tax_id_type: claims::TaxIdType::Ein.into(),
        tax_id: "123456789".to_owned(),
        taxonomy_code: "282N00000X".to_owned(),
        address: Some(address("1 MAIN ST", "627010001")),
        ..Default::default()
    }
}

/// The hospital as the provider of an inquiry or an estimate.
fn hospital_provider() -> common::ProviderRef {
    common::ProviderRef {
        npi: BILLING_NPI.to_owned(),
        organization_name: "GENERAL HOSPITAL BILLING".to_owned(),
        ..Default::default()
    }
}

fn physician() -> claims::Provider {
    claims::Provider {
        npi: PHYSICIAN_NPI.to_owned(),
        kind: claims::ProviderKind::Individual.into(),
        person_name: Some(common::PersonName {
            last_name: "JONES".to_owned(),
            first_name: "AL".to_owned(),
            ..Default::default()
        }),
        taxonomy_code: "207Q00000X".to_owned(),
        ..Default::default()
    }
}

fn address(line1: &str, zip: &str) -> common::Address {
    common::Address {
        line1: line1.to_owned(),
        city: "SPRINGFIELD".to_owned(),
        state: "IL".to_owned(),
        postal_code: zip.to_owned(),
        ..Default::default()
    }
}

/// The claim an encounter's coder would enter.
fn claim_input(
    e: &Encounter,
    coverage_id: &str,
    authorization: Option<&str>,
) -> claims::ClaimInput {
    let p = &e.patient;
    let payer = p
        .primary
        .as_ref()
        .map(|i| i.plan.payer_id())
        .unwrap_or_default();
    let pointers: Vec<u32> = (1..=u32::try_from(e.diagnoses.len()).unwrap_or(1)).collect();
    let lines = e
        .services
        .iter()
        .map(|s| claims::ClaimLine {
            procedure_code: s.procedure.to_owned(),
            modifiers: s.modifiers.iter().map(|m| (*m).to_owned()).collect(),
            revenue_code: s.revenue_code.to_owned(),
            charge: s.charge.to_owned(),
            units: s.units.to_string(),
            service_date: e.service_date.clone(),
            diagnosis_pointers: if e.institutional {
                Vec::new()
            } else {
                pointers.clone()
            },
            ..Default::default()
        })
        .collect();
    let mut claim = claims::ClaimInput {
        patient_control_number: e.patient_control_number.clone(),
        claim_type: if e.institutional {
            claims::ClaimType::Institutional
        } else {
            claims::ClaimType::Professional
        }
        .into(),
        coverage_id: coverage_id.to_owned(),
        payer_id: payer.to_owned(),
        patient_ref: p.patient_ref.clone(),
        billing_provider_npi: BILLING_NPI.to_owned(),
        rendering_provider_npi: if e.institutional {
            String::new()
        } else {
            PHYSICIAN_NPI.to_owned()
        },
        place_of_service: e.place_of_service.to_owned(),
        diagnoses: e.diagnoses.iter().map(|d| (*d).to_owned()).collect(),
        lines,
        encounter_ref: e.encounter_ref(),
        demographics: Some(claims::ClaimDemographics {
            patient: Some(claims::ClaimPerson {
                name: Some(common::PersonName {
                    last_name: p.last_name.clone(),
                    first_name: p.first_name.clone(),
                    ..Default::default()
                }),
                birth_date: p.birth_date.clone(),
                gender: p.gender.to_owned(),
                address: Some(address("12 ELM ST", "62702")),
            }),
            relationship_to_subscriber: "18".to_owned(),
            ..Default::default()
        }),
        prior_authorization_number: authorization.unwrap_or_default().to_owned(),
        ..Default::default()
    };
    if e.institutional {
        claim.facility_type_code = "13".to_owned();
        claim.institutional = Some(claims::InstitutionalDetails {
            admission_date: e.service_date.clone(),
            admission_hour: "0930".to_owned(),
            admission_type: "1".to_owned(),
            admission_source: "7".to_owned(),
            discharge_status: "01".to_owned(),
            attending_provider_npi: PHYSICIAN_NPI.to_owned(),
            admitting_diagnosis: e.diagnoses[0].to_owned(),
            ..Default::default()
        });
    }
    claim
}
