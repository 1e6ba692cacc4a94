//! ApplyAdjudication: an ERA claim payment applied to its claim (see [`crate::adjudication`] for
//! the rules), once per idempotency key.

use std::collections::HashMap;
use std::sync::Mutex;

use medbill_domain::{ClaimId, Money, PatientControlNumber, TenantId, format_iso_date};
use medbill_proto::claims::v1 as pb;
use medbill_proto::common::v1 as common;
use medbill_proto::eligibility::v1 as elig;
use medbill_runtime::ServiceError;
use medbill_runtime::batch::{BatchCall, BatchWork, MAX_BATCH_ITEMS, item_error};
use medbill_runtime::fields::{money, optional_date, required_id, tenant_id, timestamp};
use medbill_runtime::idempotent::{Begun, IdempotentCall};
use medbill_storage::Tx;
use rust_decimal::Decimal;
use tonic::{Request, Response, Status};

use crate::adjudication::{
    Adjudication, Adjustment, AdjustmentGroup, AppliedAdjudication, ClaimPaymentStatus,
    LineAdjudication,
};
use crate::cob::{self, SecondaryPlan};
use crate::model::{Claim, ClaimFilter, ClaimStatus, Coordination, StatusChangeSource};
use crate::scrub::CoverageDates;
use crate::service::ClaimsService;
use crate::store::{AdjudicationInForce, ClaimMove, NewAdjudication, NewStatus};

/// Longest ERA / claim payment id, payer claim control number (REF / CLP07 allow 50).
const MAX_REFERENCE_LEN: usize = 50;
/// Longest CARC or RARC.
const MAX_REASON_LEN: usize = 5;

/// Handles ApplyAdjudication.
pub(crate) async fn apply_adjudication(
    svc: &ClaimsService,
    request: Request<pb::ApplyAdjudicationRequest>,
) -> Result<Response<pb::ApplyAdjudicationResponse>, Status> {
    let tenant = tenant_id(&request)?;
    // The request itself is kept: coordination of benefits forwards its token to eligibility.
    let req = request.get_ref();
    let call = IdempotentCall::of(req)?;
    let adjudication = validate(
        req.adjudication
            .as_ref()
            .ok_or_else(|| ServiceError::invalid_argument("adjudication", "is required"))?,
    )?;
    let db = svc.store.database();
    // A redelivery answers the first result even if the claim has moved on since.
    if let Some(first) = call.replayed(db, &tenant).await? {
        return Ok(Response::new(first));
    }
    let claim = find_claim(svc, &tenant, req.claim_ref.as_ref()).await?;
    // Coordination of benefits reads the patient's coverages now, outside any transaction, when
    // the adjudication could call for a secondary claim (see `crate::cob`).
    let coverages = if needs_coverages(&claim, &adjudication) {
        Some(
            svc.coverage
                .patient_coverages(&request, &tenant, &claim.patient_ref)
                .await
                .map_err(Status::from)?,
        )
    } else {
        None
    };
    let mut op = match call.begin(db, &tenant).await? {
        Begun::Replay(first) => return Ok(Response::new(first)),
        Begun::New(op) => op,
    };
    let (claim, response) = apply_and_answer(
        svc,
        op.tx(),
        &tenant,
        claim,
        &adjudication,
        coverages.as_deref(),
    )
    .await?;
    op.commit(&response).await?;
    svc.watch.notify();
    tracing::info!(claim_id = %claim.id, tenant = %tenant, status = claim.status.as_str(), "adjudication applied");
    Ok(Response::new(response))
}

/// Tells whether coordination of benefits must read the patient's coverages before applying
/// `adjudication` to `claim`.
fn needs_coverages(claim: &Claim, adjudication: &Adjudication) -> bool {
    adjudication.status_code != ClaimPaymentStatus::Reversal
        && cob::decide_without_coverages(claim, adjudication, adjudication.outcome()).is_none()
}

/// Applies `adjudication` to `claim` in `tx` and returns the claim as it now stands with
/// ApplyAdjudication's answer.
async fn apply_and_answer(
    svc: &ClaimsService,
    tx: &mut Tx,
    tenant: &TenantId,
    claim: Claim,
    adjudication: &Adjudication,
    coverages: Option<&[elig::Coverage]>,
) -> Result<(Claim, pb::ApplyAdjudicationResponse), ServiceError> {
    let claim = apply(svc, tx, tenant, claim, adjudication, coverages).await?;
    let response = answer(&claim, adjudication)?;
    Ok((claim, response))
}

/// ApplyAdjudication's answer: the claim as `adjudication` left it, with the patient's share.
fn answer(
    claim: &Claim,
    adjudication: &Adjudication,
) -> Result<pb::ApplyAdjudicationResponse, ServiceError> {
    let pr = adjudication.patient_responsibility_adjustments();
    let pr_total = adjudication.patient_responsibility_total().ok_or_else(|| {
        ServiceError::invalid_argument("adjudication.adjustments", "the PR adjustments overflow")
    })?;
    Ok(pb::ApplyAdjudicationResponse {
        claim: Some(crate::service::to_proto(claim)),
        patient_responsibility: pr_total.to_string(),
        patient_responsibility_adjustments: pr.into_iter().map(adjustment_to_proto).collect(),
    })
}

/// Handles ApplyAdjudications: every item as ApplyAdjudication would apply it, under its scope,
/// in one transaction (see `medbill_runtime::batch`). The claims are read in one look-up per kind
/// of reference, each patient's coverages once, all before the transaction.
pub(crate) async fn apply_adjudications(
    svc: &ClaimsService,
    request: Request<pb::ApplyAdjudicationsRequest>,
) -> Result<Response<pb::ApplyAdjudicationsResponse>, Status> {
    let tenant = tenant_id(&request)?;
    let items = &request.get_ref().items;
    let mut batch = BatchCall::of(items, "items", MAX_BATCH_ITEMS)?;
    let db = svc.store.database();
    batch.settle_replays(db, &tenant).await?;

    // Validate every item still to apply, then read their claims in bulk.
    let mut adjudications: Vec<Option<Adjudication>> = (0..items.len()).map(|_| None).collect();
    let mut ids = Vec::new();
    let mut numbers = Vec::new();
    for i in batch.pending() {
        let item = &items[i];
        let checked = item
            .adjudication
            .as_ref()
            .ok_or_else(|| ServiceError::invalid_argument("adjudication", "is required"))
            .and_then(validate)
            .and_then(|a| claim_key(item.claim_ref.as_ref()).map(|key| (a, key)));
        match checked {
            Ok((adjudication, key)) => {
                adjudications[i] = Some(adjudication);
                match key {
                    ClaimKey::Id(id) => ids.push(id),
                    ClaimKey::Number(pcn) => numbers.push(pcn),
                }
            }
            Err(e) => batch.fail(i, e),
        }
    }
    let mut by_id: HashMap<ClaimId, Claim> = HashMap::new();
    let mut by_number: HashMap<String, ClaimId> = HashMap::new();
    ids.sort_unstable();
    ids.dedup();
    for claim in svc
        .store
        .claims_by_ids(&tenant, &ids)
        .await
        .map_err(ServiceError::from)?
    {
        by_id.insert(claim.id, claim);
    }
    numbers.sort_unstable();
    numbers.dedup();
    // In id order: the first claim of a number is the one ApplyAdjudication finds.
    for claim in svc
        .store
        .claims_by_patient_control_numbers(&tenant, &numbers)
        .await
        .map_err(ServiceError::from)?
    {
        by_number
            .entry(claim.patient_control_number.to_string())
            .or_insert(claim.id);
        by_id.entry(claim.id).or_insert(claim);
    }

    // Each item's claim; a claim met twice in the batch reads the patient's coverages whatever
    // the first sight of it says, as an earlier item may change what the later one needs.
    let mut claim_of: Vec<Option<ClaimId>> = vec![None; items.len()];
    let mut seen: HashMap<ClaimId, usize> = HashMap::new();
    for i in batch.pending() {
        let found = match claim_key(items[i].claim_ref.as_ref()) {
            Ok(ClaimKey::Id(id)) => by_id
                .contains_key(&id)
                .then_some(id)
                .ok_or_else(|| ServiceError::not_found(format!("claim {id}"))),
            Ok(ClaimKey::Number(pcn)) => by_number.get(&pcn).copied().ok_or_else(|| {
                ServiceError::not_found(format!(
                    "claim with patient_control_number {}",
                    medbill_runtime::error::cap_echo(&pcn)
                ))
            }),
            Err(e) => Err(e),
        };
        match found {
            Ok(id) => {
                claim_of[i] = Some(id);
                *seen.entry(id).or_default() += 1;
            }
            Err(e) => batch.fail(i, e),
        }
    }
    let mut patients: Vec<String> = Vec::new();
    for i in batch.pending() {
        let (Some(id), Some(adjudication)) = (claim_of[i], &adjudications[i]) else {
            continue;
        };
        let claim = &by_id[&id];
        let again = seen.get(&id).is_some_and(|n| *n > 1)
            && adjudication.status_code != ClaimPaymentStatus::Reversal;
        if (again || needs_coverages(claim, adjudication)) && !patients.contains(&claim.patient_ref)
        {
            patients.push(claim.patient_ref.clone());
        }
    }
    let read = futures::future::join_all(
        patients
            .iter()
            .map(|patient| svc.coverage.patient_coverages(&request, &tenant, patient)),
    )
    .await;
    let mut coverages: HashMap<String, Vec<elig::Coverage>> = HashMap::new();
    for (patient, answer) in patients.into_iter().zip(read) {
        match answer {
            Ok(list) => {
                coverages.insert(patient, list);
            }
            // Only the items of this patient wait for eligibility (their redelivery retries).
            Err(e) => {
                let status = Status::from(e);
                for i in batch.pending() {
                    if claim_of[i].is_some_and(|id| by_id[&id].patient_ref == patient) {
                        batch.fail(i, status.clone());
                    }
                }
            }
        }
    }

    let work = Applying {
        svc,
        tenant: &tenant,
        adjudications,
        claim_of,
        read: by_id,
        current: Mutex::new(HashMap::new()),
        coverages,
    };
    let response = batch
        .apply(db, &tenant, &work, |results| {
            pb::ApplyAdjudicationsResponse {
                results: results
                    .into_iter()
                    .map(|r| pb::ApplyAdjudicationResult {
                        outcome: Some(match r {
                            Ok(applied) => pb::apply_adjudication_result::Outcome::Applied(applied),
                            Err(status) => {
                                pb::apply_adjudication_result::Outcome::Error(item_error(&status))
                            }
                        }),
                    })
                    .collect(),
            }
        })
        .await?;
    svc.watch.notify();
    tracing::info!(tenant = %tenant, items = items.len(), "adjudications applied");
    Ok(Response::new(response))
}

/// How a request names its claim.
enum ClaimKey {
    Id(ClaimId),
    Number(String),
}

fn claim_key(
    claim_ref: Option<&pb::apply_adjudication_request::ClaimRef>,
) -> Result<ClaimKey, ServiceError> {
    use pb::apply_adjudication_request::ClaimRef;
    match claim_ref {
        Some(ClaimRef::ClaimId(raw)) => required_id::<ClaimId>("claim_id", raw).map(ClaimKey::Id),
        Some(ClaimRef::PatientControlNumber(pcn)) if !pcn.is_empty() => {
            Ok(ClaimKey::Number(pcn.clone()))
        }
        _ => Err(ServiceError::invalid_argument(
            "claim_ref",
            "claim_id or patient_control_number is required",
        )),
    }
}

/// The writes of one ApplyAdjudications call, item by item.
struct Applying<'s> {
    svc: &'s ClaimsService,
    tenant: &'s TenantId,
    adjudications: Vec<Option<Adjudication>>,
    claim_of: Vec<Option<ClaimId>>,
    /// The claims as read before the transaction.
    read: HashMap<ClaimId, Claim>,
    /// The claims as the items applied so far left them (a claim may appear twice).
    current: Mutex<HashMap<ClaimId, Claim>>,
    coverages: HashMap<String, Vec<elig::Coverage>>,
}

impl BatchWork<pb::ApplyAdjudicationResponse> for Applying<'_> {
    type Error = ServiceError;

    async fn apply(
        &self,
        tx: &mut Tx,
        index: usize,
    ) -> Result<pb::ApplyAdjudicationResponse, ServiceError> {
        let (Some(adjudication), Some(id)) = (&self.adjudications[index], self.claim_of[index])
        else {
            return Err(ServiceError::internal(
                "batch item applied without its claim",
            ));
        };
        let claim = self
            .current
            .lock()
            .map_err(|_| ServiceError::internal("batch claims poisoned"))?
            .get(&id)
            .or_else(|| self.read.get(&id))
            .cloned()
            .ok_or_else(|| ServiceError::internal("batch claim not read"))?;
        let coverages = self.coverages.get(&claim.patient_ref).map(Vec::as_slice);
        let (claim, response) =
            apply_and_answer(self.svc, tx, self.tenant, claim, adjudication, coverages).await?;
        self.current
            .lock()
            .map_err(|_| ServiceError::internal("batch claims poisoned"))?
            .insert(id, claim);
        Ok(response)
    }

    /// Items that adjudicate a claim no other item of the batch names, without a reversal or a
    /// secondary claim to make (most of an ERA), are written together: their moves through
    /// `move_claims`, the adjudications in force through `record_adjudications_in_force`. The
    /// others are written first, one by one in item order as `apply` writes them, in the same
    /// transaction. Any failure sends the whole batch down the one-by-one path.
    async fn apply_many(
        &self,
        tx: &mut Tx,
        indices: &[usize],
    ) -> Result<Option<Vec<pb::ApplyAdjudicationResponse>>, ServiceError> {
        let mut named: HashMap<ClaimId, usize> = HashMap::new();
        for id in indices.iter().filter_map(|&i| self.claim_of[i]) {
            *named.entry(id).or_default() += 1;
        }
        let mut responses: Vec<Option<pb::ApplyAdjudicationResponse>> =
            (0..indices.len()).map(|_| None).collect();
        let mut together = Vec::new();
        for (k, &i) in indices.iter().enumerate() {
            match self.written_together(i, &named) {
                Some(item) => together.push((k, item)),
                None => responses[k] = Some(self.apply(tx, i).await?),
            }
        }
        if !together.is_empty() {
            let store = self.svc.store.as_ref();
            let reasons: Vec<String> = together
                .iter()
                .map(|(_, t)| describe(t.adjudication, t.to))
                .collect();
            let moves: Vec<ClaimMove<'_>> = together
                .iter()
                .zip(&reasons)
                .map(|((_, t), reason)| ClaimMove {
                    claim_id: t.claim.id,
                    from: t.claim.status,
                    change: NewStatus {
                        to: t.to,
                        source: StatusChangeSource::Adjudication,
                        source_id: &t.adjudication.era_id,
                        reason,
                    },
                })
                .collect();
            let at = store.move_claims(tx, self.tenant, &moves).await?;
            let at = medbill_storage::time::from_micros(at)
                .ok_or_else(|| ServiceError::internal("status change time out of range"))?;
            let items: Vec<AdjudicationInForce<'_>> = together
                .iter()
                .map(|(_, t)| AdjudicationInForce {
                    claim_id: t.claim.id,
                    new: NewAdjudication {
                        adjudication: t.adjudication,
                        status_before: t.claim.status,
                        status_after: t.to,
                        reverses: None,
                    },
                    secondary_note: t.note,
                })
                .collect();
            let stored = store
                .record_adjudications_in_force(tx, self.tenant, &items)
                .await?;
            let mut current = self
                .current
                .lock()
                .map_err(|_| ServiceError::internal("batch claims poisoned"))?;
            for ((k, t), stored) in together.into_iter().zip(stored) {
                let mut claim = t.claim.clone();
                claim.status = t.to;
                claim.updated_at = at;
                if let Some(pccn) = &t.adjudication.payer_claim_control_number {
                    claim.payer_claim_control_number = Some(pccn.clone());
                }
                if let Some(note) = t.note {
                    claim.coordination.secondary_claim_note = Some(note.to_owned());
                }
                claim.adjudication = Some(stored);
                responses[k] = Some(answer(&claim, t.adjudication)?);
                current.insert(claim.id, claim);
            }
        }
        responses
            .into_iter()
            .map(|r| r.ok_or_else(|| ServiceError::internal("batch item not written")))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    fn restart(&self) {
        if let Ok(mut current) = self.current.lock() {
            current.clear();
        }
    }
}

/// An item [`Applying::apply_many`] writes together with others.
struct Together<'a> {
    claim: &'a Claim,
    adjudication: &'a Adjudication,
    to: ClaimStatus,
    /// Why no secondary claim is made, when coordination of benefits records it.
    note: Option<&'static str>,
}

impl Applying<'_> {
    /// Item `index` as one to write together, or `None` when it goes one by one: its claim is
    /// named by another item too, it is a reversal, it does not adjudicate, or coordination of
    /// benefits makes a secondary claim from it (or lacks the coverages to decide).
    fn written_together(
        &self,
        index: usize,
        named: &HashMap<ClaimId, usize>,
    ) -> Option<Together<'_>> {
        let adjudication = self.adjudications[index].as_ref()?;
        let id = self.claim_of[index]?;
        if named.get(&id) != Some(&1) || adjudication.status_code == ClaimPaymentStatus::Reversal {
            return None;
        }
        let claim = self.read.get(&id)?;
        let to = adjudication.outcome()?;
        let plan = match cob::decide_without_coverages(claim, adjudication, Some(to)) {
            Some(plan) => plan,
            None => cob::decide(claim, self.coverages.get(&claim.patient_ref)?),
        };
        let note = match plan {
            SecondaryPlan::Nothing => None,
            SecondaryPlan::Note(note) => Some(note),
            SecondaryPlan::Create(_) => return None,
        };
        Some(Together {
            claim,
            adjudication,
            to,
            note,
        })
    }
}

/// Finds the claim by id or CLP01, NOT_FOUND for none of the tenant's.
async fn find_claim(
    svc: &ClaimsService,
    tenant: &TenantId,
    claim_ref: Option<&pb::apply_adjudication_request::ClaimRef>,
) -> Result<Claim, ServiceError> {
    use pb::apply_adjudication_request::ClaimRef;
    match claim_ref {
        Some(ClaimRef::ClaimId(raw)) => {
            let id = required_id::<ClaimId>("claim_id", raw)?;
            svc.store
                .get_claim(tenant, id)
                .await?
                .ok_or_else(|| ServiceError::not_found(format!("claim {id}")))
        }
        Some(ClaimRef::PatientControlNumber(pcn)) if !pcn.is_empty() => {
            let filter = ClaimFilter {
                patient_control_number: Some(pcn.clone()),
                ..ClaimFilter::default()
            };
            svc.store
                .list_claims(tenant, &filter, None, 1)
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| {
                    ServiceError::not_found(format!(
                        "claim with patient_control_number {}",
                        medbill_runtime::error::cap_echo(pcn)
                    ))
                })
        }
        _ => Err(ServiceError::invalid_argument(
            "claim_ref",
            "claim_id or patient_control_number is required",
        )),
    }
}

/// Applies `adjudication` to `claim` in `tx` and returns the claim as it now stands.
async fn apply(
    svc: &ClaimsService,
    tx: &mut Tx,
    tenant: &TenantId,
    mut claim: Claim,
    adjudication: &Adjudication,
    coverages: Option<&[elig::Coverage]>,
) -> Result<Claim, ServiceError> {
    let store = svc.store.as_ref();
    let source_id = adjudication.era_id.as_str();
    let pccn = adjudication.payer_claim_control_number.as_deref();
    let (change, in_force) = if adjudication.status_code == ClaimPaymentStatus::Reversal {
        let previous = store
            .adjudication_in_force(tx, tenant, claim.id)
            .await?
            .ok_or_else(|| {
                ServiceError::FailedPrecondition(format!(
                    "claim {} has no adjudication in force for a reversal (CLP02 22) to undo",
                    claim.id
                ))
            })?;
        let before = &previous.adjudication;
        if !adjudication.negates(before) {
            return Err(ServiceError::FailedPrecondition(format!(
                "adjudication.paid: a reversal must negate the adjudication in force (paid {}, \
                 charge {}): expected paid {} and charge {}, got {} and {}",
                before.paid,
                before.charge,
                -before.paid,
                -before.charge,
                adjudication.paid,
                adjudication.charge
            )));
        }
        let reason = format!(
            "835 reversal (CLP02 22) of the adjudication of ERA {}; back to {}",
            before.era_id,
            previous.status_before.as_str()
        );
        let change = store
            .transition(
                tx,
                tenant,
                claim.id,
                NewStatus {
                    to: previous.status_before,
                    source: StatusChangeSource::Adjudication,
                    source_id,
                    reason: &reason,
                },
            )
            .await?;
        let stored = store
            .record_adjudication(
                tx,
                tenant,
                claim.id,
                NewAdjudication {
                    adjudication,
                    status_before: change.from,
                    status_after: change.to,
                    reverses: Some(previous.id),
                },
            )
            .await?;
        store
            .mark_adjudication_reversed(tx, tenant, previous.id, stored.id)
            .await?;
        store
            .set_adjudication_in_force(tx, tenant, claim.id, None, pccn)
            .await?;
        (change, None)
    } else {
        let to = adjudication.outcome().ok_or_else(|| {
            ServiceError::invalid_argument(
                "adjudication.claim_status_code",
                "does not adjudicate the claim",
            )
        })?;
        let reason = describe(adjudication, to);
        let change = store
            .transition(
                tx,
                tenant,
                claim.id,
                NewStatus {
                    to,
                    source: StatusChangeSource::Adjudication,
                    source_id,
                    reason: &reason,
                },
            )
            .await?;
        let stored = store
            .record_adjudication(
                tx,
                tenant,
                claim.id,
                NewAdjudication {
                    adjudication,
                    status_before: change.from,
                    status_after: to,
                    reverses: None,
                },
            )
            .await?;
        store
            .set_adjudication_in_force(tx, tenant, claim.id, Some(stored.id), pccn)
            .await?;
        claim.coordination =
            after_adjudication_stored(svc, tx, tenant, &claim, &stored, coverages).await?;
        (change, Some(stored))
    };
    claim.status = change.to;
    claim.updated_at = change.at;
    if let Some(pccn) = pccn {
        claim.payer_claim_control_number = Some(pccn.to_owned());
    }
    claim.adjudication = in_force;
    Ok(claim)
}

/// Coordination of benefits, called after an adjudication (not a reversal) is stored, in the same
/// transaction: creates, scrubs and links the secondary claim when the primary left a balance and
/// `coverages` (the patient's, read before the transaction) hold a secondary in force, or records
/// on the claim why none was made. Returns the claim's coordination as it now stands.
async fn after_adjudication_stored(
    svc: &ClaimsService,
    tx: &mut Tx,
    tenant: &TenantId,
    claim: &Claim,
    applied: &AppliedAdjudication,
    coverages: Option<&[elig::Coverage]>,
) -> Result<Coordination, ServiceError> {
    let a = &applied.adjudication;
    let plan = match cob::decide_without_coverages(claim, a, Some(applied.status_after)) {
        Some(plan) => plan,
        None => cob::decide(
            claim,
            coverages.ok_or_else(|| ServiceError::internal("coverages were not read"))?,
        ),
    };
    let mut coordination = claim.coordination.clone();
    let coverage = match plan {
        SecondaryPlan::Nothing => return Ok(coordination),
        SecondaryPlan::Note(note) => {
            svc.store
                .note_no_secondary(tx, tenant, claim.id, note)
                .await?;
            coordination.secondary_claim_note = Some(note.to_owned());
            return Ok(coordination);
        }
        SecondaryPlan::Create(coverage) => coverage,
    };
    let mut pcn = None;
    for candidate in cob::derived_patient_control_numbers(&claim.patient_control_number) {
        if !svc
            .store
            .patient_control_number_taken(tx, tenant, &candidate)
            .await?
        {
            pcn = Some(PatientControlNumber::parse(&candidate).map_err(ServiceError::internal)?);
            break;
        }
    }
    let Some(pcn) = pcn else {
        let note = "no secondary claim: every derived patient control number (-S2 .. -S9) is taken";
        svc.store
            .note_no_secondary(tx, tenant, claim.id, note)
            .await?;
        coordination.secondary_claim_note = Some(note.to_owned());
        return Ok(coordination);
    };
    let new = cob::secondary_claim(claim, &coverage, applied, pcn);
    let secondary = svc.store.create_claim(tx, tenant, &new).await?;
    let why = format!(
        "secondary claim (coordination of benefits) of claim {} after the primary payer's \
         adjudication in ERA {}",
        claim.id, a.era_id
    );
    svc.store
        .describe_creation(
            tx,
            tenant,
            secondary.id,
            StatusChangeSource::Adjudication,
            &claim.id.to_string(),
            &why,
        )
        .await?;
    svc.store
        .link_secondary(tx, tenant, claim.id, secondary.id)
        .await?;
    // The coverage was read just now: its dates decide the coverage edit without asking again.
    let dates = crate::coverage::dates_of(&coverage).unwrap_or(CoverageDates::NotFound);
    // The secondary payer's authorizations are not on file: only the numbers' presence is checked.
    let findings = svc.scrub_findings(&secondary, dates, None);
    let change =
        crate::scrub::rpc::store_scrub(svc.store().as_ref(), tx, tenant, secondary.id, &findings)
            .await?;
    tracing::info!(
        claim_id = %claim.id,
        secondary_claim_id = %secondary.id,
        tenant = %tenant,
        status = change.to.as_str(),
        "secondary claim created"
    );
    coordination.secondary_claim_id = Some(secondary.id);
    coordination.secondary_claim_note = None;
    Ok(coordination)
}

/// The history reason of an adjudication, in plain words.
fn describe(a: &Adjudication, to: crate::model::ClaimStatus) -> String {
    let denied = a.denied_amount().unwrap_or(Money::ZERO);
    let code = a.status_code.as_str();
    match to {
        crate::model::ClaimStatus::Denied => {
            format!("835 CLP02 {code}: denied, paid {} of {}", a.paid, a.charge)
        }
        crate::model::ClaimStatus::PartiallyPaid => format!(
            "835 CLP02 {code}: paid {} of {}, {denied} denied",
            a.paid, a.charge
        ),
        _ => format!("835 CLP02 {code}: paid {} of {}", a.paid, a.charge),
    }
}

fn text(
    field: &str,
    value: &str,
    max: usize,
    required: bool,
) -> Result<Option<String>, ServiceError> {
    if value.is_empty() {
        return if required {
            Err(ServiceError::invalid_argument(field, "is required"))
        } else {
            Ok(None)
        };
    }
    if value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(ServiceError::invalid_argument(
            field,
            format!("must be at most {max} printable characters"),
        ));
    }
    Ok(Some(value.to_owned()))
}

fn reason_code(field: &str, value: &str) -> Result<String, ServiceError> {
    if value.is_empty()
        || value.len() > MAX_REASON_LEN
        || !value.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(ServiceError::invalid_argument(
            field,
            format!(
                "{:?} is not a code of 1 to {MAX_REASON_LEN} letters or digits",
                medbill_runtime::error::cap_echo(value)
            ),
        ));
    }
    Ok(value.to_owned())
}

fn optional_money(field: &str, value: &str) -> Result<Option<Money>, ServiceError> {
    if value.is_empty() {
        Ok(None)
    } else {
        money(field, value).map(Some)
    }
}

fn optional_decimal(field: &str, value: &str) -> Result<Option<Decimal>, ServiceError> {
    if value.is_empty() {
        return Ok(None);
    }
    let parsed = Decimal::from_str_exact(value).map_err(|_| {
        ServiceError::invalid_argument(field, "must be a decimal string such as \"1\"")
    })?;
    Ok(Some(parsed))
}

fn adjustments(
    field: &str,
    list: &[common::CasAdjustment],
) -> Result<Vec<Adjustment>, ServiceError> {
    list.iter()
        .enumerate()
        .map(|(i, a)| {
            let at = |f: &str| format!("{field}[{i}].{f}");
            let group = match common::AdjustmentGroup::try_from(a.group) {
                Ok(common::AdjustmentGroup::Co) => AdjustmentGroup::Co,
                Ok(common::AdjustmentGroup::Pr) => AdjustmentGroup::Pr,
                Ok(common::AdjustmentGroup::Oa) => AdjustmentGroup::Oa,
                Ok(common::AdjustmentGroup::Pi) => AdjustmentGroup::Pi,
                Ok(common::AdjustmentGroup::Cr) => AdjustmentGroup::Cr,
                _ => {
                    return Err(ServiceError::invalid_argument(
                        at("group"),
                        "is required (CO, PR, OA, PI or CR)",
                    ));
                }
            };
            Ok(Adjustment {
                group,
                reason: reason_code(&at("reason"), &a.reason)?,
                amount: money(&at("amount"), &a.amount)?,
                quantity: optional_decimal(&at("quantity"), &a.quantity)?,
            })
        })
        .collect()
}

fn remarks(field: &str, list: &[common::RemarkCode]) -> Result<Vec<String>, ServiceError> {
    list.iter()
        .enumerate()
        .map(|(i, r)| reason_code(&format!("{field}[{i}].code"), &r.code))
        .collect()
}

/// Parses and checks an adjudication, naming the first offending field (`adjudication.<field>`).
pub(crate) fn validate(a: &pb::Adjudication) -> Result<Adjudication, ServiceError> {
    let status_code: ClaimPaymentStatus = a.claim_status_code.parse().map_err(|_| {
        ServiceError::invalid_argument(
            "adjudication.claim_status_code",
            format!(
                "{:?} is not a CLP02 claim status code (1, 2, 3, 4, 19, 20, 21, 22, 23 or 25)",
                medbill_runtime::error::cap_echo(&a.claim_status_code)
            ),
        )
    })?;
    if status_code == ClaimPaymentStatus::Predetermination {
        return Err(ServiceError::invalid_argument(
            "adjudication.claim_status_code",
            "25 is a predetermination (pricing only): there is no payment to apply to a claim",
        ));
    }
    let paid = money("adjudication.paid", &a.paid)?;
    let reversal = status_code == ClaimPaymentStatus::Reversal;
    if reversal && paid.is_positive() {
        return Err(ServiceError::invalid_argument(
            "adjudication.paid",
            "must not be positive in a reversal (CLP02 22): it negates the payment it undoes",
        ));
    }
    if !reversal && paid.is_negative() {
        return Err(ServiceError::invalid_argument(
            "adjudication.paid",
            "must not be negative outside a reversal (CLP02 22)",
        ));
    }
    let mut lines = Vec::with_capacity(a.lines.len());
    for (i, l) in a.lines.iter().enumerate() {
        let at = |f: &str| format!("adjudication.lines[{i}].{f}");
        lines.push(LineAdjudication {
            line_control_number: text(
                &at("line_control_number"),
                &l.line_control_number,
                MAX_REFERENCE_LEN,
                false,
            )?,
            procedure_code: text(&at("procedure_code"), &l.procedure_code, 48, true)?
                .unwrap_or_default(),
            charge: money(&at("charge"), &l.charge)?,
            paid: money(&at("paid"), &l.paid)?,
            allowed: optional_money(&at("allowed"), &l.allowed)?,
            units: optional_decimal(&at("units"), &l.units)?,
            adjustments: adjustments(&at("adjustments"), &l.adjustments)?,
            remarks: remarks(&at("remarks"), &l.remarks)?,
        });
    }
    let adjudication = Adjudication {
        era_id: text("adjudication.era_id", &a.era_id, MAX_REFERENCE_LEN, true)?
            .unwrap_or_default(),
        claim_payment_id: text(
            "adjudication.claim_payment_id",
            &a.claim_payment_id,
            MAX_REFERENCE_LEN,
            true,
        )?
        .unwrap_or_default(),
        status_code,
        charge: money("adjudication.charge", &a.charge)?,
        paid,
        patient_responsibility: optional_money(
            "adjudication.patient_responsibility",
            &a.patient_responsibility,
        )?,
        payer_claim_control_number: text(
            "adjudication.payer_claim_control_number",
            &a.payer_claim_control_number,
            MAX_REFERENCE_LEN,
            false,
        )?,
        adjustments: adjustments("adjudication.adjustments", &a.adjustments)?,
        remarks: remarks("adjudication.remarks", &a.remarks)?,
        lines,
        payment_date: optional_date("adjudication.payment_date", &a.payment_date)?,
    };
    if adjudication.denied_amount().is_none()
        || adjudication.patient_responsibility_total().is_none()
    {
        return Err(ServiceError::invalid_argument(
            "adjudication.adjustments",
            "the adjustment amounts overflow",
        ));
    }
    Ok(adjudication)
}

fn group_to_proto(g: AdjustmentGroup) -> common::AdjustmentGroup {
    match g {
        AdjustmentGroup::Co => common::AdjustmentGroup::Co,
        AdjustmentGroup::Pr => common::AdjustmentGroup::Pr,
        AdjustmentGroup::Oa => common::AdjustmentGroup::Oa,
        AdjustmentGroup::Pi => common::AdjustmentGroup::Pi,
        AdjustmentGroup::Cr => common::AdjustmentGroup::Cr,
    }
}

fn adjustment_to_proto(a: &Adjustment) -> common::CasAdjustment {
    common::CasAdjustment {
        group: group_to_proto(a.group).into(),
        reason: a.reason.clone(),
        amount: a.amount.to_string(),
        quantity: a.quantity.map(|q| q.to_string()).unwrap_or_default(),
        // No CARC table is loaded in this service yet.
        reason_description: String::new(),
    }
}

fn remark_to_proto(code: &str) -> common::RemarkCode {
    common::RemarkCode {
        code: code.to_owned(),
        description: String::new(),
    }
}

/// Maps a stored adjudication to its wire form.
pub(crate) fn to_proto(applied: &AppliedAdjudication) -> pb::Adjudication {
    let a = &applied.adjudication;
    pb::Adjudication {
        era_id: a.era_id.clone(),
        claim_payment_id: a.claim_payment_id.clone(),
        claim_status_code: a.status_code.as_str().to_owned(),
        charge: a.charge.to_string(),
        paid: a.paid.to_string(),
        patient_responsibility: a
            .patient_responsibility
            .map(|m| m.to_string())
            .unwrap_or_default(),
        payer_claim_control_number: a.payer_claim_control_number.clone().unwrap_or_default(),
        adjustments: a.adjustments.iter().map(adjustment_to_proto).collect(),
        remarks: a.remarks.iter().map(|r| remark_to_proto(r)).collect(),
        lines: a
            .lines
            .iter()
            .map(|l| pb::LineAdjudication {
                line_control_number: l.line_control_number.clone().unwrap_or_default(),
                procedure_code: l.procedure_code.clone(),
                charge: l.charge.to_string(),
                paid: l.paid.to_string(),
                allowed: l.allowed.map(|m| m.to_string()).unwrap_or_default(),
                units: l.units.map(|u| u.to_string()).unwrap_or_default(),
                adjustments: l.adjustments.iter().map(adjustment_to_proto).collect(),
                remarks: l.remarks.iter().map(|r| remark_to_proto(r)).collect(),
            })
            .collect(),
        payment_date: a.payment_date.map(format_iso_date).unwrap_or_default(),
        applied_at: Some(timestamp(applied.applied_at)),
    }
}
