//! Posting: each claim payment of a balanced (or operator-released) ERA matched to its claim
//! through the claims service and posted **once**.
//!
//! The posting worker ([`Poster`], run by [`posting_task`]) leases RECEIVED ERAs (so two replicas
//! never post the same ERA at once), matches every PENDING payment **outside** any transaction
//! (the claims service is asked over gRPC), then writes in **one transaction**: each payment's
//! outcome (POSTED with its claim and line matches, or UNMATCHED with the reason), the posting
//! records, the outbox messages to claims (`ApplyAdjudication`) and collections
//! (`PostPatientResponsibility`, when the payment moves an amount to the patient), and the ERA's
//! move to POSTED. Each message is keyed per claim payment (`remit-cp-<id>`, `…-pr`), so a
//! redelivery, or a second worker losing the race, applies nothing twice: the payment moves out
//! of PENDING only if it is still PENDING, and the ERA out of RECEIVED only if still RECEIVED.
//!
//! An ERA is POSTED once every payment is settled: posted, or on the unmatched worklist (matched
//! later by MatchClaimPayment, [`Poster::post_matched`]). A reversal (CLP02 22) is paired with the
//! posted payment it undoes (same CLP01 and CLP07, the opposite amount) and is applied to the
//! claim like any adjudication; the claims service moves the claim back.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use medbill_domain::{EraId, Money, TenantId, format_iso_date};
use medbill_proto::claims::v1 as claims_pb;
use medbill_proto::collections::v1 as collections_pb;
use medbill_proto::common::v1 as common;
use medbill_runtime::service::{BackgroundTask, Shutdown};
use medbill_storage::{StorageError, Tx};
use thiserror::Error;
use tokio::sync::Notify;

use crate::delivery::enqueue_many;
use crate::denials::{NewDenial, denials_of};
use crate::directory::{ClaimDirectory, ClaimView, DirectoryError};
use crate::matching::{match_claim, match_lines};
use crate::model::{Adjustment, ClaimPayment, ClaimPaymentId, EraStatus, LineMatch, PostingStatus};
use crate::store::{EraStore, EraStoreError, PostingMethod, PostingOutcome};
use medbill_runtime::service::Destination;
use prost::Message as _;

/// Payments read per page while posting an ERA.
const PAGE: u32 = 1_000;
/// How long a worker holds an ERA it is posting.
const LEASE: Duration = Duration::from_secs(120);

/// How much posting has done in this process since it started: the posting worker adds each
/// ERA it posts (the log line "ERA posted" carries the same figures per ERA); load drivers print
/// them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PostingTotals {
    /// ERAs posted.
    pub eras: u64,
    /// Claim payments settled (posted or put on the unmatched worklist).
    pub payments: u64,
    /// Time spent finding the payments' claims (the claims service's look-ups) and matching.
    pub matching: Duration,
    /// Time spent in the store: reading the payments and the posting transactions.
    pub store: Duration,
}

static ERAS: AtomicU64 = AtomicU64::new(0);
static PAYMENTS: AtomicU64 = AtomicU64::new(0);
static MATCHING_MICROS: AtomicU64 = AtomicU64::new(0);
static STORE_MICROS: AtomicU64 = AtomicU64::new(0);

/// Returns what posting has done in this process so far (see [`PostingTotals`]).
pub fn totals() -> PostingTotals {
    PostingTotals {
        eras: ERAS.load(Ordering::Relaxed),
        payments: PAYMENTS.load(Ordering::Relaxed),
        matching: Duration::from_micros(MATCHING_MICROS.load(Ordering::Relaxed)),
        store: Duration::from_micros(STORE_MICROS.load(Ordering::Relaxed)),
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Why posting failed (the ERA stays RECEIVED and is tried again when its lease runs out).
#[derive(Debug, Error)]
pub enum PostingError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] EraStoreError),
    /// The claims service could not be asked.
    #[error(transparent)]
    Directory(#[from] DirectoryError),
}

impl From<StorageError> for PostingError {
    fn from(e: StorageError) -> Self {
        Self::Store(EraStoreError::Storage(e))
    }
}

/// The outbox messages one posted payment owes.
#[derive(Debug, Clone, PartialEq)]
pub struct Messages {
    /// To claims.
    pub adjudication: claims_pb::ApplyAdjudicationRequest,
    /// To collections, when the payment moves an amount to (or back from) the patient.
    pub responsibility: Option<collections_pb::PostPatientResponsibilityRequest>,
}

/// What posting adds to the denial worklist (see [`crate::denials`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worklist {
    /// The day the ERA arrived (a denial's age counts from it when the 835 has no payment date).
    pub received_on: NaiveDate,
    /// The items the posted payments make.
    pub denials: Vec<NewDenial>,
    /// (claim id, claim payment id) of each posted payment that pays its claim: it resolves the
    /// claim's earlier open items.
    pub paid: Vec<(String, ClaimPaymentId)>,
}

impl Worklist {
    /// An empty worklist for an ERA received on `received_on`.
    pub fn new(received_on: NaiveDate) -> Self {
        Self {
            received_on,
            denials: Vec::new(),
            paid: Vec::new(),
        }
    }

    /// Adds what one posted payment makes.
    pub fn add(&mut self, payment: &ClaimPayment, claim_id: &str) {
        self.denials.extend(denials_of(payment, claim_id));
        let p = &payment.payment;
        let pays = matches!(p.status_code.as_str(), "1" | "2" | "3" | "19" | "20" | "21");
        if pays && p.paid > Money::default() {
            self.paid.push((claim_id.to_owned(), payment.id));
        }
    }
}

/// Matches and posts claim payments.
#[derive(Clone)]
pub struct Poster {
    store: Arc<dyn EraStore>,
    directory: Arc<dyn ClaimDirectory>,
    owner: String,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for Poster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poster")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

impl Poster {
    /// A poster over `store`, asking `directory` for claims; `owner` names its leases.
    pub fn new(
        store: Arc<dyn EraStore>,
        directory: Arc<dyn ClaimDirectory>,
        owner: impl Into<String>,
    ) -> Self {
        Self {
            store,
            directory,
            owner: owner.into(),
            wake: Arc::new(Notify::new()),
        }
    }

    /// Asks the posting task to run now (after an ingest or an operator's release).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Leases and posts up to 16 RECEIVED ERAs; returns how many were posted. An ERA that fails
    /// is logged and left for its lease to run out.
    pub async fn run_once(&self) -> Result<usize, PostingError> {
        let lease = i64::try_from(LEASE.as_micros()).unwrap_or(i64::MAX);
        let leased = self.store.lease_postable(&self.owner, lease, 16).await?;
        let mut posted = 0;
        for (tenant, era) in leased {
            match self.post_era(&tenant, era).await {
                Ok(()) => posted += 1,
                Err(e) => {
                    tracing::warn!(era_id = %era, error = %e, "posting an ERA failed; it is tried again later")
                }
            }
        }
        Ok(posted)
    }

    /// Matches every PENDING payment of a RECEIVED ERA and posts them with the ERA, in one
    /// transaction. An ERA in another status is left alone.
    pub async fn post_era(&self, tenant: &TenantId, era_id: EraId) -> Result<(), PostingError> {
        let Some(era) = self.store.get_era(tenant, era_id).await? else {
            return Ok(());
        };
        if era.status != EraStatus::Received {
            return Ok(());
        }
        let reason = self.store.review_reason(tenant, era_id).await?;
        let method = if reason.is_empty() {
            PostingMethod::Auto
        } else {
            PostingMethod::Operator
        };
        let payer_id = era.summary.payer_id.clone().unwrap_or_default();
        let mut outcomes = Vec::new();
        let mut messages = Vec::new();
        let mut worklist = Worklist::new(era.received_at.date_naive());
        let mut claims: HashMap<String, Vec<ClaimView>> = HashMap::new();
        let mut after = None;
        let mut store_time = Duration::ZERO;
        let mut matching_time = Duration::ZERO;
        loop {
            let read = Instant::now();
            let page = self
                .store
                .pending_payments(tenant, era_id, after, PAGE)
                .await?;
            store_time += read.elapsed();
            let matching = Instant::now();
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            // One look-up for the page's claims, not one per payment.
            let mut wanted: Vec<String> = page
                .iter()
                .map(|p| p.payment.patient_control_number.clone())
                .filter(|pcn| !claims.contains_key(pcn))
                .collect();
            wanted.sort();
            wanted.dedup();
            if !wanted.is_empty() {
                let mut found = self
                    .directory
                    .by_patient_control_numbers(tenant, &wanted)
                    .await?;
                for pcn in wanted {
                    let views = found.remove(&pcn).unwrap_or_default();
                    claims.insert(pcn, views);
                }
            }
            for payment in &page {
                let pcn = &payment.payment.patient_control_number;
                let candidates = claims.get(pcn).map(Vec::as_slice).unwrap_or_default();
                let reverses = if payment.payment.is_reversal() {
                    self.store.find_reversed(tenant, payment).await?
                } else {
                    None
                };
                match match_claim(&payment.payment, &payer_id, candidates) {
                    Ok(claim) => {
                        let (outcome, message) =
                            posted(payment, claim, method, &reason, reverses, &reason);
                        worklist.add(payment, &claim.id);
                        outcomes.push(outcome);
                        messages.push(message);
                    }
                    Err(why) => outcomes.push(unmatched(payment, why)),
                }
            }
            matching_time += matching.elapsed();
            if u32::try_from(page.len()).unwrap_or(u32::MAX) < PAGE {
                break;
            }
        }
        let written = Instant::now();
        let mut tx = self.store.database().begin().await?;
        write(
            self.store.as_ref(),
            &mut tx,
            tenant,
            era_id,
            PostingStatus::Pending,
            &outcomes,
            &messages,
            &worklist,
        )
        .await?;
        self.store.mark_posted(&mut tx, tenant, era_id).await?;
        tx.commit().await?;
        store_time += written.elapsed();
        let unmatched = outcomes
            .iter()
            .filter(|o| o.status == PostingStatus::Unmatched)
            .count();
        ERAS.fetch_add(1, Ordering::Relaxed);
        PAYMENTS.fetch_add(outcomes.len() as u64, Ordering::Relaxed);
        MATCHING_MICROS.fetch_add(micros(matching_time), Ordering::Relaxed);
        STORE_MICROS.fetch_add(micros(store_time), Ordering::Relaxed);
        tracing::info!(
            era_id = %era_id,
            tenant = %tenant,
            posted = messages.len(),
            unmatched,
            matching_ms = matching_time.as_millis(),
            store_ms = store_time.as_millis(),
            "ERA posted"
        );
        Ok(())
    }

    /// Decides the posting of an UNMATCHED payment to `claim` chosen by an operator with `note`:
    /// the outcome and messages to write with [`write`] (the caller's transaction holds its
    /// idempotency key).
    pub async fn post_matched(
        &self,
        tenant: &TenantId,
        payment: &ClaimPayment,
        claim: &ClaimView,
        note: &str,
    ) -> Result<(PostingOutcome, Messages), PostingError> {
        let reverses = if payment.payment.is_reversal() {
            self.store.find_reversed(tenant, payment).await?
        } else {
            None
        };
        Ok(posted(
            payment,
            claim,
            PostingMethod::ManualMatch,
            note,
            reverses,
            note,
        ))
    }

    /// The claim directory (for a manual match's claim look-up).
    pub fn directory(&self) -> &dyn ClaimDirectory {
        self.directory.as_ref()
    }

    async fn wait(&self, interval: Duration, shutdown: &Shutdown) -> bool {
        tokio::select! {
            () = shutdown.requested() => false,
            () = tokio::time::sleep(interval) => true,
            () = self.wake.notified() => true,
        }
    }
}

/// Writes posting outcomes, their outbox messages and their denial worklist items in `tx` (see
/// the module docs).
#[allow(clippy::too_many_arguments)]
pub async fn write(
    store: &dyn EraStore,
    tx: &mut Tx,
    tenant: &TenantId,
    era_id: EraId,
    from: PostingStatus,
    outcomes: &[PostingOutcome],
    messages: &[Messages],
    worklist: &Worklist,
) -> Result<(), PostingError> {
    store
        .record_postings(tx, tenant, era_id, from, outcomes)
        .await?;
    store
        .add_denials(
            tx,
            tenant,
            worklist.received_on,
            &worklist.denials,
            &worklist.paid,
        )
        .await?;
    // Multi-row INSERTs: one statement per few hundred messages, not one per message.
    let adjudications: Vec<(String, Vec<u8>)> = messages
        .iter()
        .map(|m| {
            (
                m.adjudication.idempotency_key.clone(),
                m.adjudication.encode_to_vec(),
            )
        })
        .collect();
    let responsibilities: Vec<(String, Vec<u8>)> = messages
        .iter()
        .filter_map(|m| m.responsibility.as_ref())
        .map(|r| (r.idempotency_key.clone(), r.encode_to_vec()))
        .collect();
    enqueue_many(
        tx,
        tenant.as_str(),
        Destination::ClaimsApplyAdjudication,
        &adjudications,
    )
    .await?;
    enqueue_many(
        tx,
        tenant.as_str(),
        Destination::CollectionsPostPatientResponsibility,
        &responsibilities,
    )
    .await?;
    Ok(())
}

/// The background task that posts RECEIVED ERAs every `interval` (and at once when woken).
pub fn posting_task(poster: Poster, interval: Duration) -> BackgroundTask {
    BackgroundTask::new("remittance posting", move |shutdown: Shutdown| async move {
        loop {
            if !poster.wait(interval, &shutdown).await {
                return Ok(());
            }
            // Post until nothing is left, then wait again.
            loop {
                match poster.run_once().await {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "posting pass failed; trying again later");
                        break;
                    }
                }
            }
        }
    })
}

fn unmatched(payment: &ClaimPayment, why: String) -> PostingOutcome {
    PostingOutcome {
        id: payment.id,
        status: PostingStatus::Unmatched,
        claim_id: String::new(),
        match_note: why,
        reverses: None,
        lines: Vec::new(),
        method: PostingMethod::Auto,
        reason: String::new(),
    }
}

fn posted(
    payment: &ClaimPayment,
    claim: &ClaimView,
    method: PostingMethod,
    reason: &str,
    reverses: Option<crate::model::ClaimPaymentId>,
    note: &str,
) -> (PostingOutcome, Messages) {
    let lines = match_lines(&payment.payment.lines, claim);
    let outcome = PostingOutcome {
        id: payment.id,
        status: PostingStatus::Posted,
        claim_id: claim.id.clone(),
        match_note: note.to_owned(),
        reverses,
        lines: lines.clone(),
        method,
        reason: reason.to_owned(),
    };
    (outcome, messages(payment, claim, &lines))
}

/// Returns the message key of a claim payment's call to `receiver`.
pub fn message_key(payment: &ClaimPayment, receiver: &str) -> String {
    format!("remit-cp-{}-{receiver}", payment.id)
}

fn cas(a: &Adjustment) -> common::CasAdjustment {
    let group = match a.group.as_str() {
        "CO" => common::AdjustmentGroup::Co,
        "PR" => common::AdjustmentGroup::Pr,
        "OA" => common::AdjustmentGroup::Oa,
        "PI" => common::AdjustmentGroup::Pi,
        "CR" => common::AdjustmentGroup::Cr,
        _ => common::AdjustmentGroup::Unspecified,
    };
    common::CasAdjustment {
        group: group.into(),
        reason: a.reason.clone(),
        amount: a.amount.to_string(),
        quantity: a.quantity.map(|q| q.to_string()).unwrap_or_default(),
        reason_description: String::new(),
    }
}

fn remark(code: &str) -> common::RemarkCode {
    common::RemarkCode {
        code: code.to_owned(),
        description: String::new(),
    }
}

/// The ApplyAdjudication call and the patient responsibility (the PR adjustments at claim and
/// line level; CLP05 when the payer sent no PR adjustment) of one posted payment.
fn messages(
    payment: &ClaimPayment,
    claim: &ClaimView,
    lines: &[crate::matching::LineOutcome],
) -> Messages {
    let p = &payment.payment;
    let adjudication = claims_pb::ApplyAdjudicationRequest {
        idempotency_key: message_key(payment, "claims"),
        claim_ref: Some(claims_pb::apply_adjudication_request::ClaimRef::ClaimId(
            claim.id.clone(),
        )),
        adjudication: Some(claims_pb::Adjudication {
            era_id: payment.era_id.to_string(),
            claim_payment_id: payment.id.to_string(),
            claim_status_code: p.status_code.clone(),
            charge: p.charge.to_string(),
            paid: p.paid.to_string(),
            patient_responsibility: p
                .patient_responsibility
                .map(|m| m.to_string())
                .unwrap_or_default(),
            payer_claim_control_number: p.payer_claim_control_number.clone(),
            adjustments: p.adjustments.iter().map(cas).collect(),
            remarks: p.remarks.iter().map(|r| remark(r)).collect(),
            lines: p
                .lines
                .iter()
                .zip(lines)
                .map(|(l, (_, how, _, control))| claims_pb::LineAdjudication {
                    // An unmatched line carries no control number: claims applies it at claim level.
                    line_control_number: if *how == LineMatch::Unmatched {
                        String::new()
                    } else {
                        control.clone()
                    },
                    procedure_code: l.procedure.code.clone(),
                    charge: l.charge.to_string(),
                    paid: l.paid.to_string(),
                    allowed: l.allowed.map(|a| a.to_string()).unwrap_or_default(),
                    units: l.units.map(|u| u.to_string()).unwrap_or_default(),
                    adjustments: l.adjustments.iter().map(cas).collect(),
                    remarks: l.remarks.iter().map(|r| remark(r)).collect(),
                })
                .collect(),
            payment_date: payment
                .payment_date
                .map(format_iso_date)
                .unwrap_or_default(),
            applied_at: None,
        }),
    };
    let pr: Vec<&Adjustment> = p
        .adjustments
        .iter()
        .chain(p.lines.iter().flat_map(|l| l.adjustments.iter()))
        .filter(|a| a.group == "PR")
        .collect();
    let amount: Money = if pr.is_empty() {
        p.patient_responsibility.unwrap_or_default()
    } else {
        pr.iter().map(|a| a.amount).sum()
    };
    let responsibility =
        (!amount.is_zero()).then(|| collections_pb::PostPatientResponsibilityRequest {
            idempotency_key: message_key(payment, "collections"),
            account_id: String::new(),
            patient_ref: claim.patient_ref.clone(),
            claim_id: claim.id.clone(),
            patient_control_number: p.patient_control_number.clone(),
            era_id: payment.era_id.to_string(),
            amount: amount.to_string(),
            adjustments: pr.iter().map(|a| cas(a)).collect(),
            service_date: claim
                .service_date_from
                .map(format_iso_date)
                .unwrap_or_default(),
            memo: format!("payer adjudication {}", p.payer_claim_control_number),
            // CLP03 and CLP04: the patient's statement shows them beside the patient's share.
            total_charge: p.charge.to_string(),
            payer_paid: p.paid.to_string(),
            // A payer's correction comes as a reversal (negative PR) then a new payment, each
            // posted as it is; the ledger ends where the corrected adjudication says.
            corrected: false,
        });
    Messages {
        adjudication,
        responsibility,
    }
}
