//! Follow-up of unpaid claims (the billing office's daily A/R work): a 276 claim status inquiry
//! to the payer over the route's real-time connection, the 277 answer read and stored on the
//! claim as a [`FollowUp`].
//!
//! - [`follow_up_task`]: the background task. Every pass takes, per payer route, the claims
//!   SUBMITTED or ACCEPTED and not adjudicated whose batch is older than the payer's
//!   `claims.payers[].follow_up_days` (default [`DEFAULT_FOLLOW_UP_DAYS`]) and that no answered
//!   follow-up covers within that interval, leases each (so two replicas never ask twice), asks,
//!   and stores the answer. An answered follow-up starts the next interval; a failed one (payer
//!   unreachable, unreadable answer) is stored too and tried again when its lease runs out
//!   ([`FAILED_RETRY_AFTER`]).
//! - `rpc.rs`: FollowUpClaim (ask now, for support staff) and ListClaimFollowUps.
//!
//! The 276 is written from the claim alone (its coverage snapshot, demographics and billing
//! provider on file); its TRN02 is the follow-up's id, so the 277's claim is the one that echoes
//! it.

pub(crate) mod rpc;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use medbill_connect::PayloadType;
use medbill_domain::{ClaimId, Money, TenantId, code_enum};
use medbill_runtime::service::{BackgroundTask, Shutdown};
use medbill_storage::time;
use medbill_x12::Document;
use medbill_x12::model::claim_status::{
    ClaimStatus as X12ClaimStatus, ClaimStatusInquiry, StatusClaimQuery, StatusDependent,
};
use medbill_x12::model::{DateRange, PartyName, TransactionHeader};
use medbill_x12::transactions::claim_status277::read_277;
use medbill_x12::write::{
    Envelope, GroupHeader, InterchangeHeader, Separators, claim_status_interchange,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::{Claim, ClaimType};
use crate::store::{ClaimStore, ClaimStoreError};
use crate::submission::delivery::Submitter;
use crate::submission::writer::{parties, party_name, payer};

/// Days after submission (and between answered follow-ups) of a payer without its own
/// `follow_up_days`.
pub const DEFAULT_FOLLOW_UP_DAYS: u32 = 30;
/// How long a failed scheduled follow-up waits before it is tried again.
pub const FAILED_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// Claims one pass takes per payer route.
const PASS_LIMIT: u32 = 200;

code_enum!(
    /// What started a follow-up.
    FollowUpTrigger, "follow-up trigger", {
        /// The background task.
        Scheduled => "SCHEDULED",
        /// FollowUpClaim.
        Requested => "REQUESTED",
    }
);

code_enum!(
    /// How a follow-up ended.
    FollowUpOutcome, "follow-up outcome", {
        /// The payer answered with a 277.
        Answered => "ANSWERED",
        /// No usable answer.
        Failed => "FAILED",
    }
);

/// One status code triple of a 277 STC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUpStatusCode {
    /// STC01-1 category.
    pub category: String,
    /// What the category means, when the code is in the shipped list.
    pub category_description: Option<String>,
    /// STC01-2 status code.
    pub status: String,
    /// STC01-3 entity.
    pub entity: Option<String>,
}

/// One follow-up of a claim: the 276 asked, the 277 answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUp {
    /// UUID v7; its simple form is the 276 TRN02.
    pub id: Uuid,
    /// The claim asked about.
    pub claim_id: ClaimId,
    /// When the 276 was sent.
    pub asked_at: DateTime<Utc>,
    /// What started it.
    pub trigger: FollowUpTrigger,
    /// How it ended.
    pub outcome: FollowUpOutcome,
    /// The 277's claim-level status codes, in file order.
    pub statuses: Vec<FollowUpStatusCode>,
    /// The answer (or the failure) in plain words.
    pub summary: String,
    /// REF*1K of the 277.
    pub payer_claim_control_number: Option<String>,
    /// STC02 of the first status.
    pub effective_date: Option<NaiveDate>,
    /// STC05 of the first status.
    pub paid: Option<Money>,
    /// Why it failed; empty when answered.
    pub error_message: String,
}

/// A follow-up with the raw 276 and 277, as stored.
#[derive(Debug, Clone)]
pub struct AskedFollowUp {
    /// The follow-up.
    pub follow_up: FollowUp,
    /// The 276 sent (empty when none could be written).
    pub raw_request: Vec<u8>,
    /// The payer's answer as received (empty when none).
    pub raw_response: Vec<u8>,
}

/// Why a claim cannot be asked about at all (the RPC's FAILED_PRECONDITION).
#[derive(Debug, thiserror::Error)]
pub enum CannotAsk {
    /// The claim lacks what a 276 needs.
    #[error("claim {claim_id} cannot be written into a 276: {reason}")]
    Unwritable {
        /// The claim.
        claim_id: ClaimId,
        /// What is missing (no PHI).
        reason: String,
    },
    /// No payer connection for the claim's payer.
    #[error("no payer connection ([[payers]]) is configured for payer {0}")]
    NoRoute(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] ClaimStoreError),
}

/// What a follow-up needs besides the store: the payer routes and each payer's interval.
#[derive(Clone, Debug)]
pub struct FollowUps {
    submitter: Submitter,
    days: HashMap<String, u32>,
}

impl FollowUps {
    /// Builds it from the payer routes and the configured `follow_up_days` by payer id.
    pub fn new(submitter: Submitter, days: HashMap<String, u32>) -> Self {
        Self { submitter, days }
    }

    /// The follow-up interval of a payer, in days.
    pub fn days(&self, payer_id: &str) -> u32 {
        self.days
            .get(payer_id)
            .copied()
            .unwrap_or(DEFAULT_FOLLOW_UP_DAYS)
    }

    /// Asks the payer about `claim` and stores the follow-up (answered or failed) as asked at
    /// `asked_at` (now, but for tests) in a transaction of its own; returns it.
    ///
    /// # Errors
    /// [`CannotAsk`] when no 276 can be written or sent for the claim (nothing is stored), or
    /// the store failed.
    pub async fn ask(
        &self,
        store: &dyn ClaimStore,
        tenant: &TenantId,
        claim: &Claim,
        trigger: FollowUpTrigger,
        asked_at: DateTime<Utc>,
    ) -> Result<AskedFollowUp, CannotAsk> {
        let route = self
            .submitter
            .route(&claim.payer_id)
            .ok_or_else(|| CannotAsk::NoRoute(claim.payer_id.clone()))?
            .clone();
        let connection = self
            .submitter
            .connections()
            .get(&claim.payer_id)
            .map_err(|_| CannotAsk::NoRoute(claim.payer_id.clone()))?;
        let billing = store
            .get_provider(tenant, claim.billing_provider_npi.as_str())
            .await?
            .ok_or_else(|| CannotAsk::Unwritable {
                claim_id: claim.id,
                reason: format!(
                    "billing provider {} is no longer on file",
                    claim.billing_provider_npi
                ),
            })?;
        let id = Uuid::now_v7();
        let trace = id.simple().to_string();
        // Stored in microseconds: the answer says what a read gives back.
        let asked_at =
            DateTime::<Utc>::from_timestamp_micros(asked_at.timestamp_micros()).unwrap_or(asked_at);
        let inquiry = inquiry(
            claim,
            &trace,
            PartyName::organization(self.submitter.submitter_name().to_owned()),
            &route.sender_id,
            party_name(&billing),
            asked_at,
        )
        .map_err(|reason| CannotAsk::Unwritable {
            claim_id: claim.id,
            reason,
        })?;
        let control = {
            // A control number of its own, never handed out again (shared with the 837s).
            let mut tx = store
                .database()
                .begin()
                .await
                .map_err(ClaimStoreError::from)?;
            let n = store.next_control_number(&mut tx, &claim.payer_id).await?;
            tx.commit().await.map_err(ClaimStoreError::from)?;
            n
        };
        let now = asked_at.naive_utc();
        let envelope = Envelope {
            interchange: InterchangeHeader {
                sender_qualifier: "ZZ".to_owned(),
                sender_id: route.sender_id.clone(),
                receiver_qualifier: "ZZ".to_owned(),
                receiver_id: route.receiver_id.clone(),
                date: now.date(),
                time: now.time(),
                control_number: control,
                ack_requested: false,
                usage: route.usage,
            },
            group: GroupHeader::new(
                route.sender_id.clone(),
                route.receiver_id.clone(),
                now.date(),
                now.time(),
                control,
            ),
            set_control_number: 1,
        };
        let raw =
            claim_status_interchange(Separators::default(), &envelope, &inquiry).map_err(|e| {
                CannotAsk::Unwritable {
                    claim_id: claim.id,
                    reason: e.to_string(),
                }
            })?;
        let answer = connection
            .exchange(PayloadType::X12_276_REQUEST, Bytes::from(raw.clone()))
            .await;
        let base = FollowUp {
            id,
            claim_id: claim.id,
            asked_at,
            trigger,
            outcome: FollowUpOutcome::Failed,
            statuses: Vec::new(),
            summary: String::new(),
            payer_claim_control_number: None,
            effective_date: None,
            paid: None,
            error_message: String::new(),
        };
        let (follow_up, raw_response) = match answer {
            Ok(response) => {
                let payload = response.payload.to_vec();
                (read_answer(base, &payload, &trace), payload)
            }
            Err(e) => (
                failed(base, format!("the payer could not be asked: {e}")),
                Vec::new(),
            ),
        };
        let mut tx = store
            .database()
            .begin()
            .await
            .map_err(ClaimStoreError::from)?;
        store
            .record_follow_up(&mut tx, tenant, &follow_up, raw.as_bytes(), &raw_response)
            .await?;
        tx.commit().await.map_err(ClaimStoreError::from)?;
        tracing::info!(
            claim_id = %claim.id,
            tenant = %tenant,
            follow_up_id = %follow_up.id,
            outcome = follow_up.outcome.as_str(),
            summary = %follow_up.summary,
            "claim followed up (276/277)"
        );
        Ok(AskedFollowUp {
            follow_up,
            raw_request: raw.into_bytes(),
            raw_response,
        })
    }
}

fn failed(mut f: FollowUp, reason: String) -> FollowUp {
    f.outcome = FollowUpOutcome::Failed;
    f.summary = format!("no answer: {reason}");
    f.error_message = reason;
    f
}

/// Builds the 276 asking about `claim` with TRN02 `trace`.
fn inquiry(
    claim: &Claim,
    trace: &str,
    receiver_name: PartyName,
    receiver_id: &str,
    provider_name: PartyName,
    at: DateTime<Utc>,
) -> Result<ClaimStatusInquiry, String> {
    let (subscriber, patient) = parties(claim)?;
    let p = payer(claim);
    let bill_type = match claim.claim_type {
        ClaimType::Institutional => claim
            .facility_type_code
            .as_ref()
            .map(|f| format!("{f}{}", claim.frequency_code.as_str())),
        ClaimType::Professional => None,
    };
    Ok(ClaimStatusInquiry {
        header: TransactionHeader {
            reference: trace.chars().take(30).collect(),
            created_date: at.date_naive(),
            created_time: at.time(),
        },
        payer_name: p.name,
        payer_id: p.id,
        receiver_name,
        receiver_id: receiver_id.to_owned(),
        provider_name,
        provider_npi: claim.billing_provider_npi.as_str().to_owned(),
        subscriber_name: subscriber.name,
        member_id: subscriber.member_id,
        subscriber_birth_date: subscriber.birth_date,
        subscriber_gender: subscriber.gender,
        dependent: patient.map(|pt| StatusDependent {
            name: pt.name,
            birth_date: pt.birth_date,
            gender: Some(pt.gender),
        }),
        claims: vec![StatusClaimQuery {
            trace_number: trace.to_owned(),
            payer_claim_number: claim.payer_claim_control_number.clone(),
            bill_type,
            patient_control_number: Some(claim.patient_control_number.as_str().to_owned()),
            total_charge: Some(claim.total_charge.as_decimal()),
            service_date: Some(DateRange {
                from: claim.service_date_from,
                to: (claim.service_date_to != claim.service_date_from)
                    .then_some(claim.service_date_to),
            }),
        }],
    })
}

/// Reads the payer's answer into `base`: the 277 claim that echoes `trace` (or the only one).
fn read_answer(base: FollowUp, payload: &[u8], trace: &str) -> FollowUp {
    let doc = Document::parse(payload);
    if let Some(problem) = doc.problems.iter().find(|p| p.is_error()) {
        return failed(base, format!("the answer is not readable X12: {problem}"));
    }
    let mut found: Option<X12ClaimStatus> = None;
    let mut kinds = Vec::new();
    for (_, _, set) in doc.sets() {
        kinds.push(set.set_id().to_owned());
        if set.set_id() != "277" {
            continue;
        }
        let parsed = read_277(set).value;
        let mut claims = parsed.claims.into_iter();
        let matching = claims
            .clone()
            .find(|c| c.trace_number.as_deref() == Some(trace));
        found = matching.or_else(|| {
            let first = claims.next();
            first.filter(|_| claims.next().is_none())
        });
        if found.is_some() {
            break;
        }
    }
    let Some(claim) = found else {
        let what = if kinds.is_empty() {
            "nothing".to_owned()
        } else {
            kinds.join(", ")
        };
        return failed(
            base,
            format!("the answer holds no 277 status for this claim (it holds {what})"),
        );
    };
    let statuses: Vec<FollowUpStatusCode> = claim
        .statuses
        .iter()
        .flat_map(|s| s.codes.iter())
        .map(|c| FollowUpStatusCode {
            category: c.category.clone(),
            category_description: c.category_description.clone(),
            status: c.status.clone(),
            entity: c.entity.clone(),
        })
        .collect();
    if statuses.is_empty() {
        return failed(base, "the 277 claim carries no STC status".to_owned());
    }
    let first = claim.statuses.first();
    FollowUp {
        outcome: FollowUpOutcome::Answered,
        summary: summarize(&statuses),
        payer_claim_control_number: claim.payer_claim_number.clone(),
        effective_date: first.and_then(|s| s.effective_date),
        paid: first.and_then(|s| s.paid).map(money_of),
        statuses,
        ..base
    }
}

fn money_of(d: Decimal) -> Money {
    Money::from_decimal(d)
}

/// The statuses in plain words, each as its codes and the category's meaning:
/// "P1:20 Pending/In Process: ...", several joined by "; ".
pub fn summarize(statuses: &[FollowUpStatusCode]) -> String {
    statuses
        .iter()
        .map(|s| {
            let mut out = format!("{}:{}", s.category, s.status);
            if let Some(e) = &s.entity {
                out.push(':');
                out.push_str(e);
            }
            if let Some(d) = &s.category_description {
                out.push(' ');
                out.push_str(d);
            }
            out
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The background task that follows up unpaid claims every `every`.
pub fn follow_up_task(
    store: Arc<dyn ClaimStore>,
    follow_ups: FollowUps,
    every: Duration,
) -> BackgroundTask {
    BackgroundTask::new("claims-follow-up", move |shutdown: Shutdown| async move {
        loop {
            tokio::select! {
                () = shutdown.requested() => return Ok(()),
                () = tokio::time::sleep(every) => {}
            }
            if let Err(e) = follow_up_once(store.as_ref(), &follow_ups, time::now_micros()).await {
                tracing::warn!(error = %e, "follow-up pass failed; trying again later");
            }
        }
    })
}

/// One pass at `now` (unix micros): asks about every claim due on every payer route; returns
/// how many were asked.
///
/// # Errors
/// The store failed (a claim that cannot be asked about is logged and skipped).
pub async fn follow_up_once(
    store: &dyn ClaimStore,
    follow_ups: &FollowUps,
    now: i64,
) -> Result<usize, ClaimStoreError> {
    const DAY_MICROS: i64 = 86_400_000_000;
    let lease_until = now + i64::try_from(FAILED_RETRY_AFTER.as_micros()).unwrap_or(i64::MAX);
    let mut asked = 0;
    let payers: Vec<String> = follow_ups
        .submitter
        .connections()
        .payer_ids()
        .map(str::to_owned)
        .collect();
    for payer_id in payers {
        let due_before = now - i64::from(follow_ups.days(&payer_id)) * DAY_MICROS;
        for (tenant, claim_id) in store
            .follow_ups_due(&payer_id, due_before, now, PASS_LIMIT)
            .await?
        {
            let Ok(tenant) = TenantId::parse(&tenant) else {
                continue;
            };
            let mut tx = store.database().begin().await?;
            let leased = store
                .lease_follow_up(&mut tx, &tenant, claim_id, now, lease_until)
                .await?;
            tx.commit().await?;
            if !leased {
                continue; // another replica has it
            }
            let Some(claim) = store.get_claim(&tenant, claim_id).await? else {
                continue;
            };
            let at = DateTime::<Utc>::from_timestamp_micros(now).unwrap_or_else(Utc::now);
            match follow_ups
                .ask(store, &tenant, &claim, FollowUpTrigger::Scheduled, at)
                .await
            {
                Ok(_) => asked += 1,
                Err(CannotAsk::Store(e)) => return Err(e),
                Err(e) => {
                    tracing::warn!(claim_id = %claim_id, tenant = %tenant, error = %e, "claim not followed up");
                }
            }
        }
    }
    Ok(asked)
}
