//! What an acknowledgement changes, in two steps: [`plan`] reads the batches and claims it names
//! (committed data, before any transaction) and decides each move; [`execute`] makes the moves in
//! the caller's transaction. A move the claim's life cycle no longer allows (an ERA arrived first,
//! say) becomes a warning, never a failed file.

use std::collections::HashMap;

use medbill_codesets::{CodeList, describe};
use medbill_domain::{ClaimId, TenantId};
use medbill_proto::claims::v1 as pb;
use medbill_runtime::fields::timestamp;
use medbill_storage::Tx;
use medbill_x12::model::ack::{
    FunctionalAck, InterchangeAck, ack_code_text, element_error_text, interchange_note_text,
    segment_error_text,
};
use medbill_x12::model::claim_status::{ClaimStatus as X12ClaimStatus, ClaimStatusResponse};
use uuid::Uuid;

use super::read::{AckBody, AckKind, ReadAck};
use crate::lifecycle;
use crate::model::{Claim, ClaimStatus, StatusChangeSource};
use crate::store::{ClaimMove, ClaimStore, ClaimStoreError, MAX_LOOKUP_NUMBERS, NewStatus};
use crate::submission::BatchStatus;

/// One claim status change an acknowledgement asks for.
#[derive(Debug, Clone)]
pub struct Move {
    /// The claim.
    pub claim_id: ClaimId,
    /// Its CLM01 (for warnings).
    pub patient_control_number: String,
    /// The status it had when the plan read it.
    pub from: ClaimStatus,
    /// The status to move to.
    pub to: ClaimStatus,
    /// 999/TA1 or 277CA.
    pub source: StatusChangeSource,
    /// Plain-language reason.
    pub reason: String,
    /// REF*1K to record on the claim.
    pub payer_claim_control_number: Option<String>,
}

/// What applying an acknowledgement will do.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The answer, without `id`, `claims_updated` and `received_at` (set by [`execute`]).
    pub result: pb::AcknowledgementResult,
    /// The batch it acknowledges, when one matched.
    pub batch_id: Option<Uuid>,
    /// Batch status changes.
    pub batch_statuses: Vec<(Uuid, BatchStatus)>,
    /// Claim moves, in file order.
    pub moves: Vec<Move>,
}

fn kind_to_proto(k: AckKind) -> pb::AcknowledgementKind {
    match k {
        AckKind::Ta1 => pb::AcknowledgementKind::Ta1,
        AckKind::Implementation999 => pb::AcknowledgementKind::AcknowledgementKind999,
        AckKind::Claim277Ca => pb::AcknowledgementKind::AcknowledgementKind277ca,
    }
}

/// Reads what `ack` names and decides what it changes for `tenant`. `route`, for a file picked
/// up from a payer route, narrows the batch lookup to that route.
pub async fn plan(
    store: &dyn ClaimStore,
    tenant: &TenantId,
    ack: &ReadAck,
    route: Option<&str>,
) -> Result<Plan, ClaimStoreError> {
    let mut plan = Plan {
        result: pb::AcknowledgementResult {
            kind: kind_to_proto(ack.kind).into(),
            interchange_control_number: ack.interchange_control_number.clone(),
            ..Default::default()
        },
        batch_id: None,
        batch_statuses: Vec::new(),
        moves: Vec::new(),
    };
    match &ack.body {
        AckBody::Ta1(ta1s) => {
            for ta1 in ta1s {
                plan_ta1(store, tenant, ta1, route, &mut plan).await?;
            }
        }
        AckBody::Implementation(acks) => {
            for fa in acks {
                plan_999(store, tenant, fa, route, &mut plan).await?;
            }
        }
        AckBody::ClaimAck(acks) => {
            for ca in acks {
                plan_277ca(store, tenant, ca, &mut plan).await?;
            }
            plan.result.accepted = plan.result.claims.iter().any(|c| c.accepted);
        }
    }
    Ok(plan)
}

/// The claims of a batch still waiting for the payer, with their CLM01, read
/// [`MAX_LOOKUP_NUMBERS`] at a time (a batch holds up to 5,000).
async fn batch_claims(
    store: &dyn ClaimStore,
    tenant: &TenantId,
    batch_id: Uuid,
) -> Result<Vec<(ClaimId, String, ClaimStatus)>, ClaimStoreError> {
    let Some(batch) = store.get_batch(tenant, batch_id, false).await? else {
        return Ok(Vec::new());
    };
    let mut found = HashMap::with_capacity(batch.claim_ids.len());
    for chunk in batch.claim_ids.chunks(MAX_LOOKUP_NUMBERS) {
        for c in store.claims_by_ids(tenant, chunk).await? {
            found.insert(c.id, c);
        }
    }
    // In the batch's order; only claims still in this batch's hands: a claim sent again since
    // is the new batch's.
    Ok(batch
        .claim_ids
        .iter()
        .filter_map(|id| found.remove(id))
        .filter(|c| c.submission_batch_id == Some(batch_id))
        .map(|c| (c.id, c.patient_control_number.to_string(), c.status))
        .collect())
}

async fn plan_ta1(
    store: &dyn ClaimStore,
    tenant: &TenantId,
    ta1: &InterchangeAck,
    route: Option<&str>,
    plan: &mut Plan,
) -> Result<(), ClaimStoreError> {
    plan.result.ack_code = ta1.status.clone();
    plan.result.accepted = ta1.status != "R";
    let note = interchange_note_text(&ta1.note_code).unwrap_or("unknown note code");
    let Some(batch_id) = store
        .batch_with_control_number(tenant, ta1.control_number, route)
        .await?
    else {
        plan.result.warnings.push(format!(
            "TA1 for interchange {:09}: no batch was sent with that control number",
            ta1.control_number
        ));
        return Ok(());
    };
    plan.batch_id = Some(batch_id);
    plan.result.batch_id = batch_id.to_string();
    if ta1.status == "R" {
        plan.batch_statuses.push((batch_id, BatchStatus::Rejected));
        let reason = format!(
            "TA1 rejected interchange {:09}: note {} ({note})",
            ta1.control_number, ta1.note_code
        );
        for (claim_id, pcn, from) in batch_claims(store, tenant, batch_id).await? {
            plan.moves.push(Move {
                claim_id,
                patient_control_number: pcn,
                from,
                to: ClaimStatus::Rejected,
                source: StatusChangeSource::SyntaxAcknowledgement,
                reason: reason.clone(),
                payer_claim_control_number: None,
            });
        }
    }
    Ok(())
}

fn describe_segment_errors(set: &medbill_x12::model::ack::SetAck) -> Vec<pb::SyntaxError> {
    let mut out = Vec::new();
    for seg in &set.errors {
        let seg_code = seg.code.clone().unwrap_or_default();
        let seg_text = segment_error_text(&seg_code).unwrap_or("segment error");
        if seg.elements.is_empty() {
            out.push(pb::SyntaxError {
                segment_id: seg.segment_id.clone(),
                segment_position: seg.position,
                loop_id: seg.loop_id.clone().unwrap_or_default(),
                segment_error_code: seg_code.clone(),
                description: format!(
                    "{} segment at position {}{}: {seg_text}",
                    seg.segment_id,
                    seg.position,
                    seg.loop_id
                        .as_deref()
                        .map(|l| format!(" (loop {l})"))
                        .unwrap_or_default()
                ),
                ..Default::default()
            });
        }
        for el in &seg.elements {
            let text = element_error_text(&el.code).unwrap_or("element error");
            out.push(pb::SyntaxError {
                segment_id: seg.segment_id.clone(),
                segment_position: seg.position,
                loop_id: seg.loop_id.clone().unwrap_or_default(),
                segment_error_code: seg_code.clone(),
                element_position: el.position.element,
                element_error_code: el.code.clone(),
                bad_value: el.bad_value.clone().unwrap_or_default(),
                description: format!(
                    "{}{:02} (segment position {}): {text}",
                    seg.segment_id, el.position.element, seg.position
                ),
            });
        }
    }
    out
}

async fn plan_999(
    store: &dyn ClaimStore,
    tenant: &TenantId,
    fa: &FunctionalAck,
    route: Option<&str>,
    plan: &mut Plan,
) -> Result<(), ClaimStoreError> {
    plan.result.ack_code = fa.status.clone();
    plan.result.accepted = matches!(fa.status.as_str(), "A" | "E" | "P");
    let batch_id = match fa.group_control_number.trim().parse::<u32>() {
        Ok(n) => store.batch_with_control_number(tenant, n, route).await?,
        Err(_) => None,
    };
    let Some(batch_id) = batch_id else {
        plan.result.warnings.push(format!(
            "999 for group {}: no batch was sent with that control number",
            fa.group_control_number
        ));
        return Ok(());
    };
    plan.batch_id = Some(batch_id);
    plan.result.batch_id = batch_id.to_string();
    plan.batch_statuses.push((
        batch_id,
        match fa.status.as_str() {
            "A" | "E" => BatchStatus::Accepted,
            "P" => BatchStatus::PartiallyAccepted,
            _ => BatchStatus::Rejected,
        },
    ));
    // medbill writes one transaction set per batch, so a set's verdict is the batch's claims'.
    // They are read only when a set is rejected: an accepted 999 moves no claim.
    let claims = if fa.sets.iter().any(|set| !set.is_accepted()) {
        batch_claims(store, tenant, batch_id).await?
    } else {
        Vec::new()
    };
    for set in &fa.sets {
        let accepted = set.is_accepted();
        let errors = describe_segment_errors(set);
        let mut claim_ids = Vec::new();
        if !accepted {
            let verdict = ack_code_text(&set.status).unwrap_or("rejected");
            let first = errors
                .first()
                .map(|e| format!(": {}", e.description))
                .unwrap_or_default();
            let reason = format!(
                "999 {verdict} transaction set {}{first}",
                set.control_number
            );
            for (claim_id, pcn, from) in &claims {
                claim_ids.push(claim_id.to_string());
                plan.moves.push(Move {
                    claim_id: *claim_id,
                    patient_control_number: pcn.clone(),
                    from: *from,
                    to: ClaimStatus::Rejected,
                    source: StatusChangeSource::SyntaxAcknowledgement,
                    reason: reason.clone(),
                    payer_claim_control_number: None,
                });
            }
        }
        plan.result.transaction_sets.push(pb::TransactionSetAck {
            transaction_set_id: set.set_id.clone(),
            control_number: set.control_number.clone(),
            ack_code: set.status.clone(),
            accepted,
            errors,
            claim_ids,
        });
    }
    Ok(())
}

/// The plain meaning of a 277CA STC01: category and status code texts.
fn status_description(category: &str, status: &str) -> String {
    let cat = describe(CodeList::ClaimStatusCategory, category)
        .map(|d| d.split(':').next().unwrap_or(d).trim().to_owned())
        .unwrap_or_else(|| format!("category {category}"));
    let code = describe(CodeList::ClaimStatusCode, status)
        .map(|d| d.trim_end_matches('.').to_owned())
        .unwrap_or_else(|| format!("status code {status}"));
    format!("{cat}: {code}")
}

async fn plan_277ca(
    store: &dyn ClaimStore,
    tenant: &TenantId,
    ca: &ClaimStatusResponse,
    plan: &mut Plan,
) -> Result<(), ClaimStoreError> {
    // The 277CA echoes the 837's BHT03 (the batch id) in 2200B TRN02.
    if let Some(id) = ca
        .receiver_trace
        .as_deref()
        .and_then(|t| Uuid::try_parse(t).ok())
        && store.get_batch(tenant, id, false).await?.is_some()
    {
        plan.batch_id = Some(id);
        plan.result.batch_id = id.to_string();
    }
    // The claims the file names, read a thousand numbers at a time, not one query per claim.
    let numbers: Vec<String> = ca.claims.iter().map(named_number).collect();
    let mut distinct = numbers.clone();
    distinct.sort();
    distinct.dedup();
    let mut claims: HashMap<String, Claim> = HashMap::with_capacity(distinct.len());
    for chunk in distinct.chunks(MAX_LOOKUP_NUMBERS) {
        // In id order: the first claim with a number is the one it names.
        for claim in store
            .claims_by_patient_control_numbers(tenant, chunk)
            .await?
        {
            claims
                .entry(claim.patient_control_number.to_string())
                .or_insert(claim);
        }
    }
    for (c, pcn) in ca.claims.iter().zip(numbers) {
        let claim = claims.get(&pcn);
        let ack = claim_ack(c, pcn, claim, plan);
        plan.result.claims.push(ack);
    }
    Ok(())
}

/// The patient control number a 277CA claim names (TRN02 when CLM01 is not echoed).
fn named_number(c: &X12ClaimStatus) -> String {
    c.patient_control_number
        .clone()
        .or_else(|| c.trace_number.clone())
        .unwrap_or_default()
}

fn claim_ack(
    c: &X12ClaimStatus,
    pcn: String,
    claim: Option<&Claim>,
    plan: &mut Plan,
) -> pb::ClaimAck {
    let info = c.statuses.first();
    let code = info.and_then(|i| i.codes.first());
    let category = code.map(|s| s.category.clone()).unwrap_or_default();
    let status = code.map(|s| s.status.clone()).unwrap_or_default();
    let accepted = code.is_some_and(|s| s.is_accepted());
    let rejected = code.is_some_and(|s| s.is_rejected());
    let description = status_description(&category, &status);
    let mut ack = pb::ClaimAck {
        patient_control_number: pcn.clone(),
        category_code: category.clone(),
        status_code: status.clone(),
        entity_code: code.and_then(|s| s.entity.clone()).unwrap_or_default(),
        description: description.clone(),
        accepted,
        payer_claim_control_number: c.payer_claim_number.clone().unwrap_or_default(),
        total_charge: info
            .and_then(|i| i.charge)
            .map(|d| d.to_string())
            .unwrap_or_default(),
        message: info.and_then(|i| i.message.clone()).unwrap_or_default(),
        ..Default::default()
    };
    let Some(claim) = claim else {
        plan.result.warnings.push(format!(
            "277CA for patient control number {pcn}: no such claim"
        ));
        return ack;
    };
    ack.claim_id = claim.id.to_string();
    let to = if accepted {
        ClaimStatus::Accepted
    } else if rejected {
        ClaimStatus::Rejected
    } else {
        plan.result.warnings.push(format!(
            "277CA for {pcn}: category {category} neither accepts nor rejects; status unchanged"
        ));
        return ack;
    };
    if claim.status == to {
        return ack;
    }
    // The payer may adjudicate and pay before its 277CA is picked up: an acknowledgement
    // arriving after the 835 is kept, but it never takes a claim back from its adjudication.
    if matches!(
        claim.status,
        ClaimStatus::Paid | ClaimStatus::PartiallyPaid | ClaimStatus::Denied
    ) {
        plan.result.warnings.push(format!(
            "277CA for {pcn} arrived after the claim was adjudicated ({}); status unchanged",
            claim.status.as_str()
        ));
        return ack;
    }
    if lifecycle::check(claim.status, to).is_err() {
        plan.result.warnings.push(format!(
            "277CA for {pcn}: the claim is {} and cannot become {}; status unchanged",
            claim.status.as_str(),
            to.as_str()
        ));
        return ack;
    }
    plan.moves.push(Move {
        claim_id: claim.id,
        patient_control_number: pcn,
        from: claim.status,
        to,
        source: StatusChangeSource::ClaimAcknowledgement,
        reason: format!("277CA {category}:{status}: {description}"),
        payer_claim_control_number: accepted.then(|| c.payer_claim_number.clone()).flatten(),
    });
    ack
}

/// Makes the plan's changes in `tx` and returns the final answer (claims updated counted,
/// moves the life cycle refused turned into warnings).
///
/// A 277CA names thousands of claims: the claims it names once move together through
/// [`ClaimStore::move_claims`] (a few statements per 500 claims), in a savepoint. If some claim
/// no longer has the status the plan read (an ERA posted meanwhile, say), that is undone and
/// every move goes one claim at a time in file order instead, so each refused move becomes its
/// own warning; a claim the file names twice always moves that way.
pub async fn execute(
    store: &dyn ClaimStore,
    tx: &mut Tx,
    tenant: &TenantId,
    mut plan: Plan,
    ack_id: Uuid,
) -> Result<pb::AcknowledgementResult, ClaimStoreError> {
    let source_id = ack_id.to_string();
    for (batch_id, status) in &plan.batch_statuses {
        store
            .set_batch_status(tx, tenant, *batch_id, *status)
            .await?;
    }
    let mut named = HashMap::<ClaimId, usize>::with_capacity(plan.moves.len());
    for m in &plan.moves {
        *named.entry(m.claim_id).or_default() += 1;
    }
    let (together, mut one_by_one): (Vec<usize>, Vec<usize>) =
        (0..plan.moves.len()).partition(|&i| named[&plan.moves[i].claim_id] == 1);
    let moves: Vec<ClaimMove<'_>> = together
        .iter()
        .map(|&i| {
            let m = &plan.moves[i];
            ClaimMove {
                claim_id: m.claim_id,
                from: m.from,
                change: NewStatus {
                    to: m.to,
                    source: m.source,
                    source_id: &source_id,
                    reason: &m.reason,
                },
            }
        })
        .collect();
    let mut updated = 0u32;
    if !moves.is_empty() {
        let savepoint = tx.savepoint().await?;
        match store.move_claims(tx, tenant, &moves).await {
            Ok(_) => {
                tx.release(savepoint).await?;
                updated = u32::try_from(moves.len()).unwrap_or(u32::MAX);
            }
            Err(
                ClaimStoreError::IllegalTransition(_) | ClaimStoreError::ChangedConcurrently { .. },
            ) => {
                tx.rollback_to(savepoint).await?;
                one_by_one.extend(together);
            }
            Err(e) => return Err(e),
        }
    }
    one_by_one.sort_unstable();
    let mut warnings = Vec::new();
    for i in one_by_one {
        let m = &plan.moves[i];
        let moved = store
            .transition(
                tx,
                tenant,
                m.claim_id,
                NewStatus {
                    to: m.to,
                    source: m.source,
                    source_id: &source_id,
                    reason: &m.reason,
                },
            )
            .await;
        match moved {
            Ok(_) => updated += 1,
            Err(ClaimStoreError::IllegalTransition(e)) => warnings.push(format!(
                "claim {}: {e}; status unchanged",
                m.patient_control_number
            )),
            Err(e) => return Err(e),
        }
    }
    plan.result.warnings.extend(warnings);
    let numbers: Vec<(ClaimId, &str)> = plan
        .moves
        .iter()
        .filter_map(|m| Some((m.claim_id, m.payer_claim_control_number.as_deref()?)))
        .collect();
    store
        .set_payer_claim_control_numbers(tx, tenant, &numbers)
        .await?;
    plan.result.id = source_id;
    plan.result.claims_updated = updated;
    plan.result.received_at = Some(timestamp(chrono::Utc::now()));
    Ok(plan.result)
}
