//! FollowUpClaim (ask the payer now) and ListClaimFollowUps.

use chrono::Utc;
use medbill_domain::{ClaimId, format_iso_date};
use medbill_proto::claims::v1 as pb;
use medbill_runtime::ServiceError;
use medbill_runtime::fields::{required_id, tenant_id, timestamp};
use medbill_runtime::idempotent::{Begun, IdempotentCall};
use medbill_runtime::paging::{PageSize, QueryFingerprint, decode_page_token, split_page};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{CannotAsk, FollowUp, FollowUpOutcome, FollowUpTrigger};
use crate::model::ClaimStatus;
use crate::service::ClaimsService;

/// Maps a follow-up to its wire form.
pub(crate) fn to_proto(f: &FollowUp) -> pb::ClaimFollowUp {
    pb::ClaimFollowUp {
        id: f.id.to_string(),
        claim_id: f.claim_id.to_string(),
        asked_at: Some(timestamp(f.asked_at)),
        trigger: match f.trigger {
            FollowUpTrigger::Scheduled => pb::FollowUpTrigger::Scheduled,
            FollowUpTrigger::Requested => pb::FollowUpTrigger::Requested,
        }
        .into(),
        outcome: match f.outcome {
            FollowUpOutcome::Answered => pb::FollowUpOutcome::Answered,
            FollowUpOutcome::Failed => pb::FollowUpOutcome::Failed,
        }
        .into(),
        statuses: f
            .statuses
            .iter()
            .map(|s| pb::FollowUpStatusCode {
                category: s.category.clone(),
                category_description: s.category_description.clone().unwrap_or_default(),
                status: s.status.clone(),
                entity: s.entity.clone().unwrap_or_default(),
            })
            .collect(),
        summary: f.summary.clone(),
        payer_claim_control_number: f.payer_claim_control_number.clone().unwrap_or_default(),
        effective_date: f.effective_date.map(format_iso_date).unwrap_or_default(),
        paid: f.paid.map(|m| m.to_string()).unwrap_or_default(),
        error_message: f.error_message.clone(),
    }
}

/// Handles FollowUpClaim: the payer is asked outside any transaction, the follow-up is stored
/// (answered or failed), then the answer is recorded under the key so a retry asks nothing.
pub(crate) async fn follow_up_claim(
    svc: &ClaimsService,
    request: Request<pb::FollowUpClaimRequest>,
) -> Result<Response<pb::FollowUpClaimResponse>, Status> {
    let tenant = tenant_id(&request)?;
    let req = request.into_inner();
    let call = IdempotentCall::of(&req)?;
    let claim_id = required_id::<ClaimId>("claim_id", &req.claim_id)?;
    let db = svc.store.database();
    if let Some(first) = call.replayed(db, &tenant).await? {
        return Ok(Response::new(first));
    }
    let claim = svc
        .store
        .get_claim(&tenant, claim_id)
        .await
        .map_err(ServiceError::from)?
        .ok_or_else(|| ServiceError::not_found(format!("claim {claim_id}")))?;
    if !matches!(
        claim.status,
        ClaimStatus::Submitted
            | ClaimStatus::Accepted
            | ClaimStatus::Rejected
            | ClaimStatus::Paid
            | ClaimStatus::PartiallyPaid
            | ClaimStatus::Denied
    ) {
        return Err(ServiceError::FailedPrecondition(format!(
            "claim {claim_id} is {}: only a claim sent to the payer can be followed up",
            claim.status.as_str()
        ))
        .into());
    }
    let asked = svc
        .follow_ups
        .ask(
            svc.store.as_ref(),
            &tenant,
            &claim,
            FollowUpTrigger::Requested,
            Utc::now(),
        )
        .await
        .map_err(|e| match e {
            CannotAsk::Store(e) => ServiceError::from(e),
            other => ServiceError::FailedPrecondition(other.to_string()),
        })?;
    let response = pb::FollowUpClaimResponse {
        follow_up: Some(to_proto(&asked.follow_up)),
    };
    let op = match call.begin(db, &tenant).await? {
        Begun::Replay(first) => return Ok(Response::new(first)),
        Begun::New(op) => op,
    };
    op.commit(&response).await?;
    Ok(Response::new(response))
}

/// Handles ListClaimFollowUps.
pub(crate) async fn list_claim_follow_ups(
    svc: &ClaimsService,
    request: Request<pb::ListClaimFollowUpsRequest>,
) -> Result<Response<pb::ListClaimFollowUpsResponse>, Status> {
    let tenant = tenant_id(&request)?;
    let req = request.into_inner();
    let claim_id = required_id::<ClaimId>("claim_id", &req.claim_id)?;
    let size = PageSize::from_i32(req.page_size)?;
    let fingerprint = QueryFingerprint::builder("claims.ListClaimFollowUps")
        .field("tenant", tenant.as_str())
        .field("claim_id", claim_id.to_string())
        .finish();
    let after = decode_page_token(&req.page_token, &fingerprint)?
        .map(|cursor| {
            Uuid::try_parse(&cursor)
                .map_err(|_| ServiceError::invalid_argument("page_token", "malformed page token"))
        })
        .transpose()?;
    if svc
        .store
        .get_claim(&tenant, claim_id)
        .await
        .map_err(ServiceError::from)?
        .is_none()
    {
        return Err(ServiceError::not_found(format!("claim {claim_id}")).into());
    }
    let rows = svc
        .store
        .follow_ups(&tenant, claim_id, after, size.fetch_limit())
        .await
        .map_err(ServiceError::from)?;
    let (page, next_page_token) = split_page(rows, size, &fingerprint, |f| f.id.to_string());
    Ok(Response::new(pb::ListClaimFollowUpsResponse {
        follow_ups: page.iter().map(to_proto).collect(),
        next_page_token,
    }))
}
