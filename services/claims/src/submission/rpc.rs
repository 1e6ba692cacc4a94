//! SubmitClaims and GetSubmissionBatch.
//!
//! One call takes at most [`MAX_CLAIMS_PER_BATCH`] claims, so its memory is bounded by one batch
//! whatever the backlog; a large backlog is submitted by calling again (each call with its own
//! key) until nothing is READY.

use std::collections::{BTreeMap, HashMap};

use medbill_domain::{ClaimId, Money, TenantId};
use medbill_proto::claims::v1 as pb;
use medbill_runtime::ServiceError;
use medbill_runtime::fields::{required_id, tenant_id, timestamp};
use medbill_runtime::idempotent::{Begun, IdempotentCall};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::delivery::new_batch_id;
use super::writer::{ClaimSet, institutional_claim, professional_claim, write_batch};
use super::{BatchStatus, MAX_CLAIMS_PER_BATCH, NewBatch, SubmissionBatch};
use crate::model::{Claim, ClaimFilter, ClaimStatus, ClaimType};
use crate::providers::Provider;
use crate::service::{ClaimsService, claim_type_to_proto};

/// ST02 of the one transaction set in each batch.
const SET_CONTROL_NUMBER: u32 = 1;

impl ClaimsService {
    pub(crate) async fn submit_claims_rpc(
        &self,
        request: Request<pb::SubmitClaimsRequest>,
    ) -> Result<Response<pb::SubmitClaimsResponse>, Status> {
        let tenant = tenant_id(&request)?;
        let req = request.into_inner();
        let call = IdempotentCall::of(&req)?;
        if req.claim_ids.len() > MAX_CLAIMS_PER_BATCH {
            return Err(ServiceError::invalid_argument(
                "claim_ids",
                format!(
                    "at most {MAX_CLAIMS_PER_BATCH} claims per call, got {}",
                    req.claim_ids.len()
                ),
            )
            .into());
        }
        let mut ids = Vec::with_capacity(req.claim_ids.len());
        for (i, raw) in req.claim_ids.iter().enumerate() {
            ids.push(required_id::<ClaimId>(&format!("claim_ids[{i}]"), raw)?);
        }
        let max = match req.max_claims {
            0 => MAX_CLAIMS_PER_BATCH,
            n => usize::try_from(n)
                .unwrap_or(MAX_CLAIMS_PER_BATCH)
                .min(MAX_CLAIMS_PER_BATCH),
        };
        let store = self.store();
        let db = store.database();
        if let Some(first) = call.replayed(db, &tenant).await? {
            return Ok(Response::new(self.refreshed(&tenant, first).await?));
        }
        let submitter = self.submitter();
        let contact = submitter.contact().ok_or_else(|| {
            ServiceError::FailedPrecondition(
                "claims.submission.contact_phone is not configured: the 837 names the submitter's \
                 EDI contact telephone (loop 1000A PER04)"
                    .to_owned(),
            )
        })?;

        let mut skipped = Vec::new();
        let candidates = self.candidates(&tenant, &ids, max, &mut skipped).await?;
        let providers = self.providers_of(&tenant, &candidates).await?;
        // One batch per claim type and payer route, claims in id order within it.
        let mut groups: BTreeMap<(&'static str, String), Vec<&Claim>> = BTreeMap::new();
        for claim in &candidates {
            if submitter.route(&claim.payer_id).is_none() {
                skipped.push(skip(
                    claim,
                    format!(
                        "no payer connection ([[payers]]) is configured for payer {}",
                        claim.payer_id
                    ),
                ));
                continue;
            }
            groups
                .entry((claim.claim_type.as_str(), claim.payer_id.clone()))
                .or_default()
                .push(claim);
        }

        let mut op = match call.begin(db, &tenant).await? {
            Begun::Replay(first) => {
                return Ok(Response::new(self.refreshed(&tenant, first).await?));
            }
            Begun::New(op) => op,
        };
        let mut batches = Vec::new();
        for ((_, payer_id), claims) in groups {
            let route = submitter
                .route(&payer_id)
                .ok_or_else(|| ServiceError::internal("payer route vanished"))?;
            let claim_type = claims[0].claim_type;
            let mut written = Vec::with_capacity(claims.len());
            let mut set = match claim_type {
                ClaimType::Professional => ClaimSet::Professional(Vec::new()),
                ClaimType::Institutional => ClaimSet::Institutional(Vec::new()),
            };
            for claim in claims {
                let model = match &mut set {
                    ClaimSet::Professional(v) => {
                        professional_claim(claim, &providers).map(|m| v.push(m))
                    }
                    ClaimSet::Institutional(v) => {
                        institutional_claim(claim, &providers).map(|m| v.push(m))
                    }
                };
                match model {
                    Ok(()) => written.push(claim),
                    Err(reason) => {
                        skipped.push(skip(claim, format!("cannot be written: {reason}")))
                    }
                }
            }
            if written.is_empty() {
                continue;
            }
            let id = new_batch_id();
            let control = store
                .next_control_number(op.tx(), &payer_id)
                .await
                .map_err(ServiceError::from)?;
            let content = write_batch(
                set,
                route,
                contact,
                control,
                SET_CONTROL_NUMBER,
                &id.to_string(),
            )
            .map_err(|e| {
                ServiceError::internal(format!("837 for batch {id} could not be written: {e}"))
            })?;
            let claim_ids: Vec<ClaimId> = written.iter().map(|c| c.id).collect();
            let total = written
                .iter()
                .fold(Money::ZERO, |sum, c| sum + c.total_charge);
            let batch = store
                .create_batch(
                    op.tx(),
                    &tenant,
                    &NewBatch {
                        id,
                        route: &payer_id,
                        claim_type,
                        payer_id: &payer_id,
                        control_number: control,
                        set_control_number: &format!("{SET_CONTROL_NUMBER:04}"),
                        claim_ids: &claim_ids,
                        total_charge: total,
                        content: content.as_bytes(),
                    },
                )
                .await
                .map_err(ServiceError::from)?;
            batches.push(batch);
        }
        let response = pb::SubmitClaimsResponse {
            batches: batches.iter().map(batch_to_proto).collect(),
            skipped,
        };
        op.commit(&response).await?;

        // Delivery after the commit: the batch and the claims' SUBMITTED status are durable
        // first, so a crash here leaves a CREATED batch for the redelivery task, never a
        // delivered file with nothing on record. Contents are read back one batch at a time.
        for batch in &batches {
            let stored = store
                .get_batch(&tenant, batch.id, true)
                .await
                .map_err(ServiceError::from)?;
            if let Some(stored) = stored {
                let content = stored.content.clone().unwrap_or_default();
                submitter
                    .deliver(store.as_ref(), &tenant, &stored, content)
                    .await
                    .map_err(ServiceError::from)?;
            }
        }
        Ok(Response::new(self.refreshed(&tenant, response).await?))
    }

    pub(crate) async fn get_submission_batch_rpc(
        &self,
        request: Request<pb::GetSubmissionBatchRequest>,
    ) -> Result<Response<pb::GetSubmissionBatchResponse>, Status> {
        let tenant = tenant_id(&request)?;
        let req = request.into_inner();
        let id = batch_id("id", &req.id)?;
        let batch = self
            .store()
            .get_batch(&tenant, id, req.include_content)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found(format!("submission batch {id}")))?;
        Ok(Response::new(pb::GetSubmissionBatchResponse {
            batch: Some(batch_to_proto(&batch)),
        }))
    }

    /// The claims a call takes: the named ones that are READY (others skipped with the reason),
    /// or the tenant's READY claims in id order up to `max`.
    async fn candidates(
        &self,
        tenant: &TenantId,
        ids: &[ClaimId],
        max: usize,
        skipped: &mut Vec<pb::SkippedClaim>,
    ) -> Result<Vec<Claim>, ServiceError> {
        let store = self.store();
        if ids.is_empty() {
            let filter = ClaimFilter {
                statuses: vec![ClaimStatus::Ready],
                ..ClaimFilter::default()
            };
            let limit = u32::try_from(max).unwrap_or(u32::MAX);
            return Ok(store.list_claims(tenant, &filter, None, limit).await?);
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if out.iter().any(|c: &Claim| &c.id == id) {
                continue;
            }
            match store.get_claim(tenant, *id).await? {
                None => skipped.push(pb::SkippedClaim {
                    claim_id: id.to_string(),
                    reason: "claim not found".to_owned(),
                }),
                Some(c) if c.status != ClaimStatus::Ready => {
                    let reason = format!("claim is {}, not READY", c.status.as_str());
                    skipped.push(skip(&c, reason));
                }
                Some(c) => out.push(c),
            }
        }
        Ok(out)
    }

    /// The providers the claims name, by NPI, read in one pass.
    async fn providers_of(
        &self,
        tenant: &TenantId,
        claims: &[Claim],
    ) -> Result<HashMap<String, Provider>, ServiceError> {
        let mut npis: Vec<&str> = Vec::new();
        for c in claims {
            npis.push(c.billing_provider_npi.as_str());
            if let Some(r) = &c.rendering_provider_npi {
                npis.push(r.as_str());
            }
            npis.extend(c.details.named_npis().into_iter().map(|(_, npi)| npi));
        }
        npis.sort_unstable();
        npis.dedup();
        let found = self.store().providers(tenant, &npis).await?;
        Ok(found
            .into_iter()
            .map(|p| (p.npi.as_str().to_owned(), p))
            .collect())
    }

    /// The response with each batch re-read, so a caller (and a replay) sees where delivery got.
    async fn refreshed(
        &self,
        tenant: &TenantId,
        mut response: pb::SubmitClaimsResponse,
    ) -> Result<pb::SubmitClaimsResponse, ServiceError> {
        for batch in &mut response.batches {
            let id = batch_id("batches.id", &batch.id)?;
            if let Some(current) = self.store().get_batch(tenant, id, false).await? {
                *batch = batch_to_proto(&current);
            }
        }
        Ok(response)
    }
}

fn skip(claim: &Claim, reason: String) -> pb::SkippedClaim {
    pb::SkippedClaim {
        claim_id: claim.id.to_string(),
        reason,
    }
}

fn batch_id(field: &str, raw: &str) -> Result<Uuid, ServiceError> {
    if raw.is_empty() {
        return Err(ServiceError::invalid_argument(field, "is required"));
    }
    Uuid::try_parse(raw).map_err(|_| ServiceError::invalid_argument(field, "is not a batch id"))
}

fn status_to_proto(s: BatchStatus) -> pb::SubmissionBatchStatus {
    match s {
        BatchStatus::Created => pb::SubmissionBatchStatus::Created,
        BatchStatus::Sent => pb::SubmissionBatchStatus::Sent,
        BatchStatus::Accepted => pb::SubmissionBatchStatus::Accepted,
        BatchStatus::PartiallyAccepted => pb::SubmissionBatchStatus::PartiallyAccepted,
        BatchStatus::Rejected => pb::SubmissionBatchStatus::Rejected,
        BatchStatus::Failed => pb::SubmissionBatchStatus::Failed,
    }
}

/// Maps a batch to the wire.
pub(crate) fn batch_to_proto(b: &SubmissionBatch) -> pb::SubmissionBatch {
    pb::SubmissionBatch {
        id: b.id.to_string(),
        status: status_to_proto(b.status).into(),
        claim_type: claim_type_to_proto(b.claim_type).into(),
        payer_id: b.payer_id.clone(),
        interchange_control_number: format!("{:09}", b.interchange_control_number),
        group_control_number: b.group_control_number.to_string(),
        claim_ids: b.claim_ids.iter().map(ToString::to_string).collect(),
        claim_count: u32::try_from(b.claim_ids.len()).unwrap_or(u32::MAX),
        total_charge: b.total_charge.to_string(),
        file_name: b.file_name.clone(),
        error_message: b.error_message.clone(),
        created_at: Some(timestamp(b.created_at)),
        sent_at: b.sent_at.map(timestamp),
        acknowledgement_ids: b
            .acknowledgement_ids
            .iter()
            .map(ToString::to_string)
            .collect(),
        content: b.content.clone().unwrap_or_default(),
        route: b.route.clone(),
    }
}
