//! ScrubClaim: validate, read the claim and its coverage dates (outside any transaction), run
//! the edits, then store the findings and move the claim to READY or HELD in one transaction
//! with the idempotency record. ScrubClaims does the same for many claims: read in one look-up,
//! each distinct coverage once, and written through the batch kit (together when all go).

use std::collections::HashMap;

use medbill_domain::{ClaimId, TenantId};
use medbill_proto::claims::v1 as pb;
use medbill_runtime::ServiceError;
use medbill_runtime::batch::{BatchCall, BatchWork, MAX_BATCH_ITEMS, item_error};
use medbill_runtime::fields::{required_id, tenant_id};
use medbill_runtime::idempotent::{IdempotentCall, Reserved};
use medbill_storage::{Tx, time};
use tonic::{Request, Response, Status};

use super::{ApprovedAuthorization, CoverageDates, ScrubContext, ScrubInput, error_count, scrub};
use crate::model::{
    Claim, ClaimStatus, ScrubFinding, ScrubSeverity, StatusChangeSource, StatusMove,
};
use crate::service::{ClaimsService, finding_to_proto, to_proto};
use crate::store::{ClaimMove, ClaimStore, NewStatus};

/// Why a scrub moved the claim: "2 scrub errors", or "scrub passed" with its warnings.
fn reason(findings: &[ScrubFinding]) -> String {
    let count = |s: ScrubSeverity| findings.iter().filter(|f| f.severity == s).count();
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    match error_count(findings) {
        0 => match count(ScrubSeverity::Warning) {
            0 => "scrub passed".to_owned(),
            n => format!("scrub passed with {}", plural(n, "warning")),
        },
        n => plural(n, "scrub error"),
    }
}

impl ClaimsService {
    /// Runs the scrub edits on a claim whose coverage dates are known.
    pub(crate) fn scrub_findings(
        &self,
        claim: &Claim,
        coverage: CoverageDates,
        approved_authorizations: Option<&[ApprovedAuthorization]>,
    ) -> Vec<ScrubFinding> {
        let input = ScrubInput::from_claim(claim);
        let ctx = ScrubContext {
            code_sets: self.scrub_rules.code_sets(),
            payer: self.scrub_rules.payer(&claim.payer_id),
            today: (self.today)(),
            coverage,
            approved_authorizations,
        };
        scrub(&input, &ctx)
    }

    /// The coverage's approved authorizations, with the units other claims used under them,
    /// read only when a line of the claim needs one (`None` otherwise).
    async fn approved_for<T: Sync>(
        &self,
        request: &Request<T>,
        tenant: &TenantId,
        claim: &Claim,
    ) -> Result<Option<Vec<ApprovedAuthorization>>, Status> {
        let needed = &self
            .scrub_rules
            .payer(&claim.payer_id)
            .procedures_requiring_authorization;
        if !claim
            .lines
            .iter()
            .any(|l| needed.contains(&l.procedure_code))
        {
            return Ok(None);
        }
        let found = self
            .coverage
            .approved_authorizations(request, &claim.coverage_id)
            .await?;
        let mut approved: Vec<ApprovedAuthorization> = found
            .iter()
            .map(ApprovedAuthorization::from_proto)
            .collect();
        let mut numbers: Vec<String> = claim
            .lines
            .iter()
            .filter_map(|l| l.prior_authorization_number.clone())
            .collect();
        numbers.sort();
        numbers.dedup();
        let used = self
            .store
            .authorization_units_used(tenant, &numbers, claim.id)
            .await
            .map_err(ServiceError::from)?;
        ApprovedAuthorization::add_used_elsewhere(&mut approved, &used);
        Ok(Some(approved))
    }
}

/// Where a scrub with these findings moves the claim (READY with no error, HELD otherwise) and
/// why.
fn target(findings: &[ScrubFinding]) -> (ClaimStatus, String) {
    let to = if error_count(findings) == 0 {
        ClaimStatus::Ready
    } else {
        ClaimStatus::Held
    };
    (to, reason(findings))
}

/// FAILED_PRECONDITION unless the claim is DRAFT, HELD or READY.
fn scrubbable(claim: &Claim) -> Result<(), ServiceError> {
    if matches!(
        claim.status,
        ClaimStatus::Draft | ClaimStatus::Held | ClaimStatus::Ready
    ) {
        return Ok(());
    }
    Err(ServiceError::FailedPrecondition(format!(
        "claim {} is {}; only DRAFT, HELD or READY claims can be scrubbed",
        claim.id,
        claim.status.as_str()
    )))
}

/// ScrubClaim's answer: the claim as the scrub left it (`to` at `at`) with its findings.
fn scrubbed(
    mut claim: Claim,
    findings: Vec<ScrubFinding>,
    to: ClaimStatus,
    at: chrono::DateTime<chrono::Utc>,
) -> pb::ScrubClaimResponse {
    claim.status = to;
    claim.updated_at = at;
    claim.scrub_findings = findings;
    pb::ScrubClaimResponse {
        passed: error_count(&claim.scrub_findings) == 0,
        findings: claim.scrub_findings.iter().map(finding_to_proto).collect(),
        claim: Some(to_proto(&claim)),
    }
}

/// Stores a scrub's findings and moves the claim to READY (no error) or HELD, in `tx`.
pub(crate) async fn store_scrub(
    store: &dyn ClaimStore,
    tx: &mut Tx,
    tenant: &TenantId,
    claim_id: ClaimId,
    findings: &[ScrubFinding],
) -> Result<StatusMove, ServiceError> {
    let (to, why) = target(findings);
    store
        .replace_scrub_findings(tx, tenant, claim_id, findings, time::now_micros())
        .await?;
    Ok(store
        .transition(
            tx,
            tenant,
            claim_id,
            NewStatus {
                to,
                source: StatusChangeSource::Scrub,
                source_id: "",
                reason: &why,
            },
        )
        .await?)
}

impl ClaimsService {
    /// Runs ScrubClaim (see the proto): DRAFT, HELD or READY claims only; the findings replace
    /// the previous scrub's and the claim becomes READY (no error) or HELD.
    pub(crate) async fn scrub(
        &self,
        request: Request<pb::ScrubClaimRequest>,
    ) -> Result<Response<pb::ScrubClaimResponse>, Status> {
        let tenant = tenant_id(&request)?;
        // The request itself is kept: the coverage read forwards its token.
        let req = request.get_ref();
        let call = IdempotentCall::of(req)?;
        let claim_id = required_id::<ClaimId>("claim_id", &req.claim_id)?;
        let db = self.store.database();
        // A retry replays before the claim and coverage are read again.
        if let Some(first) = call.replayed(db, &tenant).await? {
            return Ok(Response::new(first));
        }
        let claim = self
            .store
            .get_claim(&tenant, claim_id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found(format!("claim {claim_id}")))?;
        scrubbable(&claim)?;
        let coverage = self
            .coverage
            .coverage_dates(&request, &tenant, &claim.coverage_id)
            .await?;
        let approved = self.approved_for(&request, &tenant, &claim).await?;
        let findings = self.scrub_findings(&claim, coverage, approved.as_deref());
        let errors = error_count(&findings);

        // The write goes in a group commit: concurrent calls share one transaction.
        let store = std::sync::Arc::clone(self.store());
        let unit_tenant = tenant.clone();
        let (response, change) = self
            .commits
            .run(move |tx| {
                Box::pin(async move {
                    let pending = match call.reserve(tx, &unit_tenant).await? {
                        Reserved::Replay(first) => return Ok((first, None)),
                        Reserved::New(pending) => pending,
                    };
                    // The status is read again inside the transaction: a claim submitted
                    // meanwhile is refused there (FAILED_PRECONDITION naming both statuses) and
                    // nothing is written.
                    let change =
                        store_scrub(store.as_ref(), tx, &unit_tenant, claim_id, &findings).await?;
                    let response = scrubbed(claim, findings, change.to, change.at);
                    pending.complete(tx, &response).await?;
                    Ok((response, Some(change.to)))
                })
            })
            .await?;
        let Some(status) = change else {
            return Ok(Response::new(response));
        };
        tracing::info!(
            claim_id = %claim_id,
            tenant = %tenant,
            status = status.as_str(),
            errors,
            findings = response.findings.len(),
            "claim scrubbed"
        );
        Ok(Response::new(response))
    }
}

/// Handles ScrubClaims: every item checked as ScrubClaim checks it (the claims read in one
/// look-up, each distinct coverage's dates asked once), the edits run, then the findings and
/// status moves written in one transaction, together when they all go.
pub(crate) async fn scrub_claims(
    svc: &ClaimsService,
    request: Request<pb::ScrubClaimsRequest>,
) -> Result<Response<pb::ScrubClaimsResponse>, Status> {
    let tenant = tenant_id(&request)?;
    // The request itself is kept: the coverage reads forward its token.
    let items = &request.get_ref().items;
    let mut batch = BatchCall::of(items, "items", MAX_BATCH_ITEMS)?;
    let mut ids: Vec<Option<ClaimId>> = vec![None; items.len()];
    // As ScrubClaim: a bad claim id is refused before its key is looked at.
    for i in batch.pending() {
        match required_id::<ClaimId>("claim_id", &items[i].claim_id) {
            Ok(id) => ids[i] = Some(id),
            Err(e) => batch.fail(i, e),
        }
    }
    let db = svc.store.database();
    batch.settle_replays(db, &tenant).await?;

    let mut wanted: Vec<ClaimId> = batch.pending().iter().filter_map(|i| ids[*i]).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let read: HashMap<ClaimId, Claim> = svc
        .store
        .claims_by_ids(&tenant, &wanted)
        .await
        .map_err(ServiceError::from)?
        .into_iter()
        .map(|c| (c.id, c))
        .collect();
    let mut coverage_ids: Vec<&str> = Vec::new();
    for i in batch.pending() {
        let Some(id) = ids[i] else { continue };
        let found = read
            .get(&id)
            .ok_or_else(|| ServiceError::not_found(format!("claim {id}")))
            .and_then(|claim| scrubbable(claim).map(|()| claim));
        match found {
            Ok(claim) => coverage_ids.push(&claim.coverage_id),
            Err(e) => batch.fail(i, e),
        }
    }
    coverage_ids.sort_unstable();
    coverage_ids.dedup();
    let dates = futures::future::join_all(
        coverage_ids
            .iter()
            .map(|id| svc.coverage.coverage_dates(&request, &tenant, id)),
    )
    .await;
    let dates: HashMap<&str, _> = coverage_ids.into_iter().zip(dates).collect();

    let mut scrubs: Vec<Option<(Claim, Vec<ScrubFinding>)>> =
        (0..items.len()).map(|_| None).collect();
    for i in batch.pending() {
        let Some(claim) = ids[i].and_then(|id| read.get(&id)) else {
            continue;
        };
        let coverage = match &dates[claim.coverage_id.as_str()] {
            Ok(dates) => *dates,
            Err(e) => {
                batch.fail(i, e.clone());
                continue;
            }
        };
        // Rare (a payer-required procedure): read per claim.
        let approved = match svc.approved_for(&request, &tenant, claim).await {
            Ok(approved) => approved,
            Err(e) => {
                batch.fail(i, e);
                continue;
            }
        };
        let findings = svc.scrub_findings(claim, coverage, approved.as_deref());
        scrubs[i] = Some((claim.clone(), findings));
    }

    let work = Scrubbing {
        store: svc.store.as_ref(),
        tenant: &tenant,
        scrubs,
    };
    let response = batch
        .apply(db, &tenant, &work, |results| pb::ScrubClaimsResponse {
            results: results
                .into_iter()
                .map(|r| pb::ScrubClaimResult {
                    outcome: Some(match r {
                        Ok(done) => pb::scrub_claim_result::Outcome::Scrubbed(done),
                        Err(status) => pb::scrub_claim_result::Outcome::Error(item_error(&status)),
                    }),
                })
                .collect(),
        })
        .await?;
    svc.watch.notify();
    tracing::info!(tenant = %tenant, items = items.len(), "claims scrubbed");
    Ok(Response::new(response))
}

/// The writes of one ScrubClaims call.
struct Scrubbing<'s> {
    store: &'s dyn ClaimStore,
    tenant: &'s TenantId,
    /// Each item's claim as read and its findings (`None` for an item answered before).
    scrubs: Vec<Option<(Claim, Vec<ScrubFinding>)>>,
}

impl Scrubbing<'_> {
    fn scrub(&self, index: usize) -> Result<&(Claim, Vec<ScrubFinding>), ServiceError> {
        self.scrubs[index]
            .as_ref()
            .ok_or_else(|| ServiceError::internal("batch item written without its claim"))
    }
}

impl BatchWork<pb::ScrubClaimResponse> for Scrubbing<'_> {
    type Error = ServiceError;

    async fn apply(
        &self,
        tx: &mut Tx,
        index: usize,
    ) -> Result<pb::ScrubClaimResponse, ServiceError> {
        let (claim, findings) = self.scrub(index)?;
        // The status is read again in the transaction, as ScrubClaim does.
        let change = store_scrub(self.store, tx, self.tenant, claim.id, findings).await?;
        Ok(scrubbed(
            claim.clone(),
            findings.clone(),
            change.to,
            change.at,
        ))
    }

    async fn apply_many(
        &self,
        tx: &mut Tx,
        indices: &[usize],
    ) -> Result<Option<Vec<pb::ScrubClaimResponse>>, ServiceError> {
        let scrubs = indices
            .iter()
            .map(|i| self.scrub(*i))
            .collect::<Result<Vec<_>, _>>()?;
        // A claim named twice moves twice: written one by one, each from where the other left it.
        let mut seen = std::collections::HashSet::new();
        if !scrubs.iter().all(|(claim, _)| seen.insert(claim.id)) {
            return Ok(None);
        }
        let targets: Vec<(ClaimStatus, String)> = scrubs
            .iter()
            .map(|(_, findings)| target(findings))
            .collect();
        let findings: Vec<(ClaimId, &[ScrubFinding])> = scrubs
            .iter()
            .map(|(claim, findings)| (claim.id, findings.as_slice()))
            .collect();
        self.store
            .replace_scrub_findings_many(tx, self.tenant, &findings, time::now_micros())
            .await?;
        let moves: Vec<ClaimMove<'_>> = scrubs
            .iter()
            .zip(&targets)
            .map(|((claim, _), (to, why))| ClaimMove {
                claim_id: claim.id,
                from: claim.status,
                change: NewStatus {
                    to: *to,
                    source: StatusChangeSource::Scrub,
                    source_id: "",
                    reason: why,
                },
            })
            .collect();
        let at = self.store.move_claims(tx, self.tenant, &moves).await?;
        let at = medbill_storage::rows::timestamp(at, "claim updated_at")
            .map_err(|e| ServiceError::from(crate::store::ClaimStoreError::from(e)))?;
        Ok(Some(
            scrubs
                .into_iter()
                .zip(targets)
                .map(|((claim, findings), (to, _))| {
                    scrubbed(claim.clone(), findings.clone(), to, at)
                })
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EditCode;

    fn finding(severity: ScrubSeverity) -> ScrubFinding {
        ScrubFinding {
            edit_code: EditCode::TimelyFiling,
            severity,
            message: String::new(),
            field: String::new(),
            line_number: 0,
            x12_location: String::new(),
        }
    }

    #[test]
    fn reasons_count_errors_or_warnings() {
        use ScrubSeverity::{Error, Info, Warning};
        assert_eq!(reason(&[]), "scrub passed");
        assert_eq!(reason(&[finding(Info)]), "scrub passed");
        assert_eq!(
            reason(&[finding(Warning), finding(Info)]),
            "scrub passed with 1 warning"
        );
        assert_eq!(reason(&[finding(Error)]), "1 scrub error");
        assert_eq!(
            reason(&[finding(Error), finding(Error), finding(Warning)]),
            "2 scrub errors"
        );
    }
}
