//! ScrubClaim: validate, read the claim and its coverage dates (outside any transaction), run
//! the edits, then store the findings and move the claim to READY or HELD in one transaction
//! with the idempotency record.

use medbill_domain::{ClaimId, TenantId};
use medbill_proto::claims::v1 as pb;
use medbill_runtime::ServiceError;
use medbill_runtime::fields::{required_id, tenant_id};
use medbill_runtime::idempotent::{IdempotentCall, Reserved};
use medbill_storage::{Tx, time};
use tonic::{Request, Response, Status};

use super::{ApprovedAuthorization, CoverageDates, ScrubContext, ScrubInput, error_count, scrub};
use crate::model::{
    Claim, ClaimStatus, ScrubFinding, ScrubSeverity, StatusChange, StatusChangeSource,
};
use crate::service::{ClaimsService, finding_to_proto, to_proto};
use crate::store::{ClaimStore, NewStatus};

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
}

/// Stores a scrub's findings and moves the claim to READY (no error) or HELD, in `tx`.
pub(crate) async fn store_scrub(
    store: &dyn ClaimStore,
    tx: &mut Tx,
    tenant: &TenantId,
    claim_id: ClaimId,
    findings: &[ScrubFinding],
) -> Result<StatusChange, ServiceError> {
    let to = if error_count(findings) == 0 {
        ClaimStatus::Ready
    } else {
        ClaimStatus::Held
    };
    let why = reason(findings);
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
        let mut claim = self
            .store
            .get_claim(&tenant, claim_id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found(format!("claim {claim_id}")))?;
        if !matches!(
            claim.status,
            ClaimStatus::Draft | ClaimStatus::Held | ClaimStatus::Ready
        ) {
            return Err(ServiceError::FailedPrecondition(format!(
                "claim {claim_id} is {}; only DRAFT, HELD or READY claims can be scrubbed",
                claim.status.as_str()
            ))
            .into());
        }
        let coverage = self
            .coverage
            .coverage_dates(&request, &tenant, &claim.coverage_id)
            .await?;
        // The coverage's approved authorizations are read only when a line needs one.
        let needed = &self
            .scrub_rules
            .payer(&claim.payer_id)
            .procedures_requiring_authorization;
        let approved = if claim
            .lines
            .iter()
            .any(|l| needed.contains(&l.procedure_code))
        {
            let found = self
                .coverage
                .approved_authorizations(&request, &claim.coverage_id)
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
                .authorization_units_used(&tenant, &numbers, claim.id)
                .await
                .map_err(ServiceError::from)?;
            ApprovedAuthorization::add_used_elsewhere(&mut approved, &used);
            Some(approved)
        } else {
            None
        };
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
                    claim.status = change.to;
                    claim.updated_at = change.at;
                    claim.scrub_findings = findings;
                    let response = pb::ScrubClaimResponse {
                        passed: errors == 0,
                        findings: claim.scrub_findings.iter().map(finding_to_proto).collect(),
                        claim: Some(to_proto(&claim)),
                    };
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
