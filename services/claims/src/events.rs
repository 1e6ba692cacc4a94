//! ListClaimEvents (one claim's history, paged by sequence) and WatchClaims (the tenant's changes,
//! replayed then live; see [`crate::watch`]).
//!
//! **Who made a change**: a bearer token maps to a tenant and names no person, so medbill records
//! no user. The `actor` of an event is the operation that made it, from its source: CreateClaim,
//! ScrubClaim, SubmitClaims, IngestAcknowledgement (999/TA1 and 277CA, pushed or retrieved),
//! ApplyAdjudication, CorrectClaim or VoidClaim.

use std::collections::HashSet;

use medbill_domain::ClaimId;
use medbill_proto::claims::v1 as pb;
use medbill_runtime::ServiceError;
use medbill_runtime::fields::{required_id, tenant_id, text, timestamp};
use medbill_runtime::paging::{PageSize, QueryFingerprint, decode_page_token, split_page};
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status};

use crate::model::{StatusChange, StatusChangeSource};
use crate::service::{ClaimsService, status_from_proto, status_to_proto};
use crate::watch::{WatchFilter, follow};

/// Longest payer identifier accepted in a filter.
const MAX_PAYER_ID_LEN: usize = 80;

/// Returns the operation behind a change of `source` (see the module docs).
pub fn actor(source: StatusChangeSource) -> &'static str {
    match source {
        StatusChangeSource::Create => "medbill.claims.v1.ClaimsService/CreateClaim",
        StatusChangeSource::Scrub => "medbill.claims.v1.ClaimsService/ScrubClaim",
        StatusChangeSource::Submission => "medbill.claims.v1.ClaimsService/SubmitClaims",
        StatusChangeSource::SyntaxAcknowledgement | StatusChangeSource::ClaimAcknowledgement => {
            "medbill.claims.v1.ClaimsService/IngestAcknowledgement"
        }
        StatusChangeSource::Adjudication => "medbill.claims.v1.ClaimsService/ApplyAdjudication",
        StatusChangeSource::Correction => "medbill.claims.v1.ClaimsService/CorrectClaim",
        StatusChangeSource::Void => "medbill.claims.v1.ClaimsService/VoidClaim",
    }
}

fn source_to_proto(s: StatusChangeSource) -> pb::StatusChangeSource {
    match s {
        StatusChangeSource::Create => pb::StatusChangeSource::Create,
        StatusChangeSource::Scrub => pb::StatusChangeSource::Scrub,
        StatusChangeSource::Submission => pb::StatusChangeSource::Submission,
        StatusChangeSource::SyntaxAcknowledgement => pb::StatusChangeSource::SyntaxAcknowledgement,
        StatusChangeSource::ClaimAcknowledgement => pb::StatusChangeSource::ClaimAcknowledgement,
        StatusChangeSource::Adjudication => pb::StatusChangeSource::Adjudication,
        StatusChangeSource::Correction => pb::StatusChangeSource::Correction,
        StatusChangeSource::Void => pb::StatusChangeSource::Void,
    }
}

/// Maps a status change to its wire form.
pub(crate) fn change_to_proto(c: &StatusChange) -> pb::ClaimStatusChange {
    pb::ClaimStatusChange {
        sequence: c.sequence,
        claim_id: c.claim_id.to_string(),
        patient_control_number: c.patient_control_number.to_string(),
        previous_status: c
            .from
            .map_or(pb::ClaimStatus::Unspecified, status_to_proto)
            .into(),
        status: status_to_proto(c.to).into(),
        source: source_to_proto(c.source).into(),
        source_id: c.source_id.clone(),
        reason: c.reason.clone(),
        occurred_at: Some(timestamp(c.at)),
        actor: actor(c.source).to_owned(),
    }
}

/// Handles ListClaimEvents.
pub(crate) async fn list_claim_events(
    svc: &ClaimsService,
    request: Request<pb::ListClaimEventsRequest>,
) -> Result<Response<pb::ListClaimEventsResponse>, Status> {
    let tenant = tenant_id(&request)?;
    let req = request.into_inner();
    let claim_id = required_id::<ClaimId>("claim_id", &req.claim_id)?;
    let size = PageSize::from_i32(req.page_size)?;
    let fingerprint = QueryFingerprint::builder("claims.ListClaimEvents")
        .field("tenant", tenant.as_str())
        .field("claim_id", claim_id.to_string())
        .finish();
    let after = decode_page_token(&req.page_token, &fingerprint)?
        .map(|cursor| {
            cursor
                .parse::<u64>()
                .map_err(|_| ServiceError::invalid_argument("page_token", "malformed page token"))
        })
        .transpose()?;
    let rows = svc
        .store
        .claim_events(&tenant, claim_id, after.unwrap_or(0), size.fetch_limit())
        .await
        .map_err(ServiceError::from)?;
    // Every claim has its creating entry, so a first page without one means no such claim.
    if rows.is_empty()
        && (after.is_none()
            || svc
                .store
                .get_claim(&tenant, claim_id)
                .await
                .map_err(ServiceError::from)?
                .is_none())
    {
        return Err(ServiceError::not_found(format!("claim {claim_id}")).into());
    }
    let (page, next_page_token) = split_page(rows, size, &fingerprint, |c| c.sequence.to_string());
    Ok(Response::new(pb::ListClaimEventsResponse {
        events: page.iter().map(change_to_proto).collect(),
        next_page_token,
    }))
}

/// Handles WatchClaims.
pub(crate) async fn watch_claims(
    svc: &ClaimsService,
    request: Request<pb::WatchClaimsRequest>,
) -> Result<Response<tonic::codegen::BoxStream<pb::WatchClaimsResponse>>, Status> {
    let tenant = tenant_id(&request)?;
    let req = request.into_inner();
    let mut claim_ids = HashSet::with_capacity(req.claim_ids.len());
    for (i, raw) in req.claim_ids.iter().enumerate() {
        claim_ids.insert(required_id::<ClaimId>(&format!("claim_ids[{i}]"), raw)?);
    }
    let mut statuses = Vec::with_capacity(req.statuses.len());
    for (i, raw) in req.statuses.iter().enumerate() {
        let status = status_from_proto(*raw).ok_or_else(|| {
            ServiceError::invalid_argument(
                format!("statuses[{i}]"),
                format!("{raw} is not a claim status"),
            )
        })?;
        statuses.push(status);
    }
    let filter = WatchFilter {
        claim_ids,
        statuses,
        payer_id: text("payer_id", &req.payer_id, MAX_PAYER_ID_LEN, false)?,
    };
    let after = (req.after_sequence > 0).then_some(req.after_sequence);
    let stream = follow(svc.store.clone(), &svc.watch, tenant, filter, after)
        .await
        .map_err(ServiceError::from)?
        .map(|item| {
            item.map(|change| pb::WatchClaimsResponse {
                change: Some(change_to_proto(&change)),
            })
            .map_err(|e| Status::from(ServiceError::from(e)))
        });
    Ok(Response::new(Box::pin(stream)))
}
