//! CreateClaims: many CreateClaim requests in one call (see `medbill_runtime::batch`), the
//! outside checks done once per batch and the claims written together.

use std::collections::HashMap;

use medbill_domain::TenantId;
use medbill_proto::claims::v1 as pb;
use medbill_runtime::ServiceError;
use medbill_runtime::batch::{BatchCall, BatchWork, MAX_BATCH_ITEMS, item_error};
use medbill_runtime::fields::tenant_id;
use medbill_storage::Tx;
use tonic::{Request, Response, Status};

use crate::details::wire::coverage_snapshot;
use crate::model::{Claim, NewClaim};
use crate::service::{ClaimsService, named_npis, providers_on_file, to_proto, validate_input};
use crate::store::ClaimStore;

/// Reads and checks a CreateClaim request's claim (INVALID_ARGUMENT naming the field).
pub(crate) fn new_claim(req: &pb::CreateClaimRequest) -> Result<NewClaim, ServiceError> {
    let input = req
        .claim
        .as_ref()
        .ok_or_else(|| ServiceError::invalid_argument("claim", "is required"))?;
    let new = validate_input(input)?;
    new.validate()
        .map_err(|e| ServiceError::invalid_argument(format!("claim.{}", e.field), e.message))?;
    Ok(new)
}

/// CreateClaim's answer for a created claim.
pub(crate) fn created(claim: &Claim) -> pb::CreateClaimResponse {
    pb::CreateClaimResponse {
        claim: Some(to_proto(claim)),
    }
}

/// Handles CreateClaims: every item checked as CreateClaim checks it (fields, providers on file
/// with one read for the batch's distinct NPIs, each distinct coverage asked of eligibility
/// once), then the good ones written in one transaction, together when they all go.
pub(crate) async fn create_claims(
    svc: &ClaimsService,
    request: Request<pb::CreateClaimsRequest>,
) -> Result<Response<pb::CreateClaimsResponse>, Status> {
    let tenant = tenant_id(&request)?;
    // The request itself is kept: the coverage check forwards its token.
    let items = &request.get_ref().items;
    let mut batch = BatchCall::of(items, "items", MAX_BATCH_ITEMS)?;
    let mut claims: Vec<Option<NewClaim>> = (0..items.len()).map(|_| None).collect();
    // As CreateClaim: a bad request is refused before its key is looked at.
    for i in batch.pending() {
        match new_claim(&items[i]) {
            Ok(new) => claims[i] = Some(new),
            Err(e) => batch.fail(i, e),
        }
    }
    let db = svc.store.database();
    batch.settle_replays(db, &tenant).await?;

    // Providers on file: one read for every NPI the pending claims name.
    let pending = batch.pending();
    let mut npis: Vec<&str> = pending
        .iter()
        .filter_map(|i| claims[*i].as_ref())
        .flat_map(|c| named_npis(c).into_iter().map(|(_, npi)| npi))
        .collect();
    npis.sort_unstable();
    npis.dedup();
    let on_file = svc
        .store
        .providers(&tenant, &npis)
        .await
        .map_err(ServiceError::from)?;
    let on_file: Vec<&str> = on_file.iter().map(|p| p.npi.as_str()).collect();
    let mut failed: Vec<(usize, Status)> = Vec::new();
    let mut to_check: Vec<usize> = Vec::new();
    for i in pending {
        let Some(new) = &claims[i] else { continue };
        match providers_on_file(&named_npis(new), &on_file) {
            Ok(()) => to_check.push(i),
            Err(e) => failed.push((i, e)),
        }
    }

    // Coverages: each distinct one read once.
    let checking: Vec<&NewClaim> = to_check
        .iter()
        .filter_map(|i| claims[*i].as_ref())
        .collect();
    let answers = svc
        .coverage
        .check_claims(&request, &tenant, &checking)
        .await;
    let mut snapshots = HashMap::new();
    for (i, answer) in to_check.into_iter().zip(answers) {
        match answer {
            Ok(coverage) => {
                snapshots.insert(i, coverage_snapshot(&coverage));
            }
            Err(e) => failed.push((i, e.into())),
        }
    }
    for (i, status) in failed {
        batch.fail(i, status);
    }
    for (i, snapshot) in snapshots {
        if let Some(new) = claims[i].as_mut() {
            new.details.coverage = Some(snapshot);
        }
    }

    let work = Creating {
        store: svc.store.as_ref(),
        tenant: &tenant,
        claims,
    };
    let response = batch
        .apply(db, &tenant, &work, |results| pb::CreateClaimsResponse {
            results: results
                .into_iter()
                .map(|r| pb::CreateClaimResult {
                    outcome: Some(match r {
                        Ok(created) => pb::create_claim_result::Outcome::Created(created),
                        Err(status) => pb::create_claim_result::Outcome::Error(item_error(&status)),
                    }),
                })
                .collect(),
        })
        .await?;
    svc.watch.notify();
    tracing::info!(tenant = %tenant, items = items.len(), "claims created");
    Ok(Response::new(response))
}

/// The writes of one CreateClaims call.
struct Creating<'s> {
    store: &'s dyn ClaimStore,
    tenant: &'s TenantId,
    /// Each item's checked claim (`None` for an item answered before the write).
    claims: Vec<Option<NewClaim>>,
}

impl Creating<'_> {
    fn claim(&self, index: usize) -> Result<&NewClaim, ServiceError> {
        self.claims[index]
            .as_ref()
            .ok_or_else(|| ServiceError::internal("batch item written without its claim"))
    }
}

impl BatchWork<pb::CreateClaimResponse> for Creating<'_> {
    type Error = ServiceError;

    async fn apply(
        &self,
        tx: &mut Tx,
        index: usize,
    ) -> Result<pb::CreateClaimResponse, ServiceError> {
        let claim = self
            .store
            .create_claim(tx, self.tenant, self.claim(index)?)
            .await?;
        Ok(created(&claim))
    }

    async fn apply_many(
        &self,
        tx: &mut Tx,
        indices: &[usize],
    ) -> Result<Option<Vec<pb::CreateClaimResponse>>, ServiceError> {
        let news = indices
            .iter()
            .map(|i| self.claim(*i))
            .collect::<Result<Vec<_>, _>>()?;
        let stored = self.store.create_claims(tx, self.tenant, &news).await?;
        Ok(Some(stored.iter().map(created).collect()))
    }
}
