//! The claims service's questions to the eligibility service: does the coverage a claim names
//! exist for the caller's tenant, and is it the claim's payer and patient (CreateClaim)? On which
//! dates is it in force (ScrubClaim)?
//!
//! The call goes through the generated eligibility client on a
//! [`TracedChannel`] (trace context and a default
//! deadline), carries the inbound caller's bearer token (so the eligibility service resolves the
//! same tenant; this client has no token of its own) and is retried on UNAVAILABLE under the
//! configured [`RetryPolicy`], since a read is idempotent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use medbill_domain::TenantId;
use medbill_proto::eligibility::v1 as pb;
use medbill_proto::eligibility::v1::eligibility_service_client::EligibilityServiceClient;
use medbill_runtime::ServiceError;
use medbill_runtime::auth::forward_caller_token;
use medbill_runtime::client::{TracedChannel, retry_idempotent};
use medbill_runtime::config::RetryPolicy;
use tonic::{Code, Request, Status};

use crate::model::NewClaim;
use crate::scrub::CoverageDates;

/// Explains why a claim's coverage was refused or could not be checked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CoverageError {
    /// The eligibility service does not know the coverage for the caller's tenant.
    #[error("claim.coverage_id: coverage {coverage_id} does not exist for this tenant")]
    NotFound {
        /// The coverage id the claim named.
        coverage_id: String,
    },
    /// The coverage is with another payer than the claim's.
    #[error(
        "invalid claim.payer_id: the claim is for payer {claim_payer}, but coverage {coverage_id} \
         is with payer {coverage_payer}"
    )]
    PayerMismatch {
        /// The coverage id the claim named.
        coverage_id: String,
        /// The claim's payer id.
        claim_payer: String,
        /// The coverage's payer id.
        coverage_payer: String,
    },
    /// The coverage belongs to another patient; neither patient reference is repeated (they
    /// may identify a patient).
    #[error("invalid claim.patient_ref: coverage {coverage_id} belongs to another patient")]
    PatientMismatch {
        /// The coverage id the claim named.
        coverage_id: String,
    },
    /// The eligibility service stayed unavailable (or too slow) through the retries.
    #[error("eligibility service unavailable; retry")]
    Unavailable {
        /// The last status code seen.
        code: Code,
    },
    /// The eligibility service refused the caller's forwarded token a scope it lacks: the
    /// caller's own problem, passed on as PERMISSION_DENIED. (A token refused there as
    /// UNAUTHENTICATED after this service accepted it is a deployment error: Unexpected.)
    #[error("the eligibility service refused this call's token: {message}")]
    Refused {
        /// PERMISSION_DENIED.
        code: Code,
        /// The eligibility service's reason (names the scope; never the token).
        message: String,
    },
    /// Any other answer: a bug or a deployment error, reported to the caller as internal.
    #[error("eligibility GetCoverage for coverage {coverage_id} failed with {code:?}: {message}")]
    Unexpected {
        /// The coverage id asked for.
        coverage_id: String,
        /// The status code answered.
        code: Code,
        /// The status message answered (the eligibility service's own text, no PHI).
        message: String,
    },
}

impl From<CoverageError> for Status {
    fn from(err: CoverageError) -> Self {
        match err {
            CoverageError::NotFound { .. } => {
                ServiceError::FailedPrecondition(err.to_string()).into()
            }
            CoverageError::PayerMismatch {
                ref coverage_id,
                ref claim_payer,
                ref coverage_payer,
            } => ServiceError::invalid_argument(
                "claim.payer_id",
                format!(
                    "the claim is for payer {claim_payer}, but coverage {coverage_id} is with \
                     payer {coverage_payer}"
                ),
            )
            .into(),
            CoverageError::PatientMismatch { ref coverage_id } => ServiceError::invalid_argument(
                "claim.patient_ref",
                format!("coverage {coverage_id} belongs to another patient"),
            )
            .into(),
            CoverageError::Unavailable { .. } => ServiceError::Unavailable(err.to_string()).into(),
            CoverageError::Refused { code, .. } => Status::new(code, err.to_string()),
            // Logged with its detail where it happens (with tenant and coverage id); the caller
            // sees a bare internal error.
            CoverageError::Unexpected { .. } => Status::internal("internal error"),
        }
    }
}

/// How long a coverage read from the eligibility service is reused by CreateClaim and
/// ScrubClaim. Coverages are written once there (no RPC changes one), so this bounds staleness
/// should that change.
const COVERAGE_TTL: Duration = Duration::from_secs(300);
/// Most coverages kept; the cache is emptied when it is full.
const COVERAGE_MAX_ENTRIES: usize = 50_000;

/// Coverages recently read, by tenant and coverage id, so a burst of claims on one coverage asks
/// eligibility once per [`COVERAGE_TTL`] instead of once per CreateClaim and ScrubClaim (a gRPC
/// call and a database read each). Only found coverages are kept; the key carries the tenant, so
/// one tenant never sees another's.
#[derive(Debug, Default)]
struct CoverageCache {
    entries: Mutex<HashMap<CacheKey, (Instant, Arc<pb::Coverage>)>>,
}

/// (tenant, coverage id).
type CacheKey = (String, String);

impl CoverageCache {
    fn get(&self, tenant: &TenantId, coverage_id: &str) -> Option<Arc<pb::Coverage>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(&(tenant.as_str().to_owned(), coverage_id.to_owned()))
            .filter(|(at, _)| at.elapsed() < COVERAGE_TTL)
            .map(|(_, coverage)| Arc::clone(coverage))
    }

    fn put(&self, tenant: &TenantId, coverage_id: &str, coverage: Arc<pb::Coverage>) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= COVERAGE_MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            (tenant.as_str().to_owned(), coverage_id.to_owned()),
            (Instant::now(), coverage),
        );
    }
}

/// The generated eligibility client with the retry policy for its reads.
#[derive(Clone, Debug)]
pub struct CoverageClient {
    client: EligibilityServiceClient<TracedChannel>,
    retry: RetryPolicy,
    cache: Arc<CoverageCache>,
}

impl CoverageClient {
    /// Wraps the eligibility client (built with `medbill_runtime::client::connect` and no token:
    /// each call forwards the caller's) and the retry policy for its reads.
    pub fn new(client: EligibilityServiceClient<TracedChannel>, retry: RetryPolicy) -> Self {
        Self {
            client,
            retry,
            cache: Arc::default(),
        }
    }

    /// Fetches the claim's coverage on behalf of the caller of `inbound` (unless read for this
    /// tenant in the last five minutes), checks that it is the claim's payer and patient, and
    /// returns it (the claim keeps its subscriber data).
    ///
    /// # Errors
    /// See [`CoverageError`]; UNAVAILABLE and DEADLINE_EXCEEDED are retried first as the policy
    /// allows.
    pub async fn check_claim<T: Sync>(
        &self,
        inbound: &Request<T>,
        tenant: &TenantId,
        claim: &NewClaim,
    ) -> Result<pb::Coverage, CoverageError> {
        self.check_claims(inbound, tenant, &[claim])
            .await
            .pop()
            .unwrap_or_else(|| {
                Err(CoverageError::Unexpected {
                    coverage_id: claim.coverage_id.clone(),
                    code: Code::Ok,
                    message: "no answer for the claim".to_owned(),
                })
            })
    }

    /// [`Self::check_claim`] for many claims (CreateClaims): each distinct coverage is read
    /// once, those not cached concurrently, and each claim checked against its coverage; one
    /// answer per claim, in order.
    pub async fn check_claims<T: Sync>(
        &self,
        inbound: &Request<T>,
        tenant: &TenantId,
        claims: &[&NewClaim],
    ) -> Vec<Result<pb::Coverage, CoverageError>> {
        let mut ids: Vec<&str> = claims.iter().map(|c| c.coverage_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let read = futures::future::join_all(ids.iter().map(|id| async move {
            let result = match self.cache.get(tenant, id) {
                Some(cached) => Ok(cached),
                None => self.fetch(inbound, id).await.map(|c| {
                    let c = Arc::new(c);
                    // The claim's first scrub will ask for it again.
                    self.cache.put(tenant, id, Arc::clone(&c));
                    c
                }),
            };
            // Once per coverage, not per claim.
            log_failure(&result, id, tenant, "claim not created");
            result
        }))
        .await;
        let found: HashMap<&str, Result<Arc<pb::Coverage>, CoverageError>> =
            ids.into_iter().zip(read).collect();
        claims
            .iter()
            .map(|claim| match &found[claim.coverage_id.as_str()] {
                Ok(c) => matches_claim(c, claim).map(|()| (**c).clone()),
                Err(e) => Err(e.clone()),
            })
            .collect()
    }

    /// Returns the dates the claim's coverage is in force (ScrubClaim's coverage edit), asked
    /// on behalf of the caller of `inbound` unless read for this tenant in the last five
    /// minutes; a coverage the eligibility service no longer has is
    /// [`CoverageDates::NotFound`], a finding rather than a failure.
    ///
    /// # Errors
    /// [`CoverageError::Unavailable`] after the retries, [`CoverageError::Unexpected`] for any
    /// other failure or unreadable dates.
    pub async fn coverage_dates<T: Sync>(
        &self,
        inbound: &Request<T>,
        tenant: &TenantId,
        coverage_id: &str,
    ) -> Result<CoverageDates, CoverageError> {
        let cached = self.cache.get(tenant, coverage_id);
        let result = match cached {
            Some(coverage) => dates_of(&coverage),
            None => match self.fetch(inbound, coverage_id).await {
                Ok(c) => {
                    let dates = dates_of(&c);
                    self.cache.put(tenant, coverage_id, Arc::new(c));
                    dates
                }
                Err(CoverageError::NotFound { .. }) => Ok(CoverageDates::NotFound),
                Err(e) => Err(e),
            },
        };
        log_failure(&result, coverage_id, tenant, "claim not scrubbed");
        result
    }

    /// Lists the approved (in total, partially or modified) prior authorizations of a coverage on
    /// behalf of the caller of `inbound` (all pages), retrying reads: the scrub checks the
    /// claim's authorization numbers against them.
    ///
    /// # Errors
    /// [`CoverageError::Unavailable`] after the retries, [`CoverageError::Unexpected`] for any
    /// other failure.
    pub async fn approved_authorizations<T: Sync>(
        &self,
        inbound: &Request<T>,
        coverage_id: &str,
    ) -> Result<Vec<pb::PriorAuthorization>, CoverageError> {
        use pb::PriorAuthorizationStatus as S;
        let mut all = Vec::new();
        let mut page_token = String::new();
        // A coverage has a handful of authorizations; the bound only stops a runaway loop.
        for _ in 0..20 {
            let answer = retry_idempotent(&self.retry, || {
                let mut client = self.client.clone();
                let mut outbound = Request::new(pb::ListPriorAuthorizationsRequest {
                    page_size: 500,
                    page_token: page_token.clone(),
                    coverage_id: coverage_id.to_owned(),
                    statuses: vec![
                        S::Approved as i32,
                        S::PartiallyApproved as i32,
                        S::Modified as i32,
                    ],
                    ..Default::default()
                });
                let forwarded = forward_caller_token(inbound, &mut outbound);
                async move {
                    forwarded?;
                    client.list_prior_authorizations(outbound).await
                }
            })
            .await;
            let page = answer
                .map_err(|status| classify(coverage_id, &status))?
                .into_inner();
            all.extend(page.prior_authorizations);
            if page.next_page_token.is_empty() {
                return Ok(all);
            }
            page_token = page.next_page_token;
        }
        Ok(all)
    }

    /// Lists every coverage of a patient on behalf of the caller of `inbound` (all pages),
    /// retrying reads; coordination of benefits looks for the secondary one among them.
    ///
    /// # Errors
    /// [`CoverageError::Unavailable`] after the retries, [`CoverageError::Unexpected`] for any
    /// other failure.
    pub async fn patient_coverages<T: Sync>(
        &self,
        inbound: &Request<T>,
        tenant: &TenantId,
        patient_ref: &str,
    ) -> Result<Vec<pb::Coverage>, CoverageError> {
        let mut all = Vec::new();
        let mut page_token = String::new();
        // A patient has a handful of coverages; the bound only stops a runaway paging loop.
        for _ in 0..20 {
            let answer = retry_idempotent(&self.retry, || {
                let mut client = self.client.clone();
                let mut outbound = Request::new(pb::ListCoveragesRequest {
                    page_size: 500,
                    page_token: page_token.clone(),
                    patient_ref: patient_ref.to_owned(),
                    payer_id: String::new(),
                });
                let forwarded = forward_caller_token(inbound, &mut outbound);
                async move {
                    forwarded?;
                    client.list_coverages(outbound).await
                }
            })
            .await;
            let page = match answer {
                Ok(response) => response.into_inner(),
                Err(status) => {
                    // A listing has no "not found": every failure is unavailable or unexpected.
                    let err = match status.code() {
                        code @ (Code::Unavailable | Code::DeadlineExceeded) => {
                            CoverageError::Unavailable { code }
                        }
                        code @ Code::PermissionDenied => CoverageError::Refused {
                            code,
                            message: status.message().to_owned(),
                        },
                        code => CoverageError::Unexpected {
                            coverage_id: "(coverages of the patient)".to_owned(),
                            code,
                            message: status.message().to_owned(),
                        },
                    };
                    let result = Err(err);
                    log_failure(&result, "", tenant, "no secondary claim decided");
                    return result;
                }
            };
            all.extend(page.coverages);
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        Ok(all)
    }

    /// Fetches a coverage on behalf of the caller of `inbound`, retrying reads.
    async fn fetch<T: Sync>(
        &self,
        inbound: &Request<T>,
        coverage_id: &str,
    ) -> Result<pb::Coverage, CoverageError> {
        let answer = retry_idempotent(&self.retry, || {
            let mut client = self.client.clone();
            let mut outbound = Request::new(pb::GetCoverageRequest {
                id: coverage_id.to_owned(),
            });
            let forwarded = forward_caller_token(inbound, &mut outbound);
            async move {
                forwarded?;
                client.get_coverage(outbound).await
            }
        })
        .await;
        match answer {
            Ok(response) => {
                response
                    .into_inner()
                    .coverage
                    .ok_or_else(|| CoverageError::Unexpected {
                        coverage_id: coverage_id.to_owned(),
                        code: Code::Ok,
                        message: "response without coverage".to_owned(),
                    })
            }
            Err(status) => Err(classify(coverage_id, &status)),
        }
    }
}

/// Logs the failures that end a call without naming a field (`outcome` says what did not
/// happen); the coverage id only, no PHI.
fn log_failure<T>(
    result: &Result<T, CoverageError>,
    coverage_id: &str,
    tenant: &TenantId,
    outcome: &str,
) {
    match result {
        Err(CoverageError::Unavailable { code }) => {
            tracing::warn!(
                coverage_id,
                tenant = %tenant,
                code = ?code,
                "eligibility service unavailable after retries; {outcome}"
            );
        }
        Err(err @ CoverageError::Unexpected { .. }) => {
            tracing::error!(coverage_id, tenant = %tenant, error = %err, "coverage check failed");
        }
        _ => {}
    }
}

/// Reads the coverage's effective and termination dates.
pub(crate) fn dates_of(coverage: &pb::Coverage) -> Result<CoverageDates, CoverageError> {
    let unreadable = |what: &str, value: &str| CoverageError::Unexpected {
        coverage_id: coverage.id.clone(),
        code: Code::Ok,
        message: format!("coverage {what} {value:?} is not YYYY-MM-DD"),
    };
    let parse = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d");
    let effective = parse(&coverage.effective_date)
        .map_err(|_| unreadable("effective_date", &coverage.effective_date))?;
    let termination = match coverage.termination_date.as_str() {
        "" => None,
        raw => Some(parse(raw).map_err(|_| unreadable("termination_date", raw))?),
    };
    Ok(CoverageDates::Known {
        effective,
        termination,
    })
}

/// Maps the eligibility service's failure to a [`CoverageError`].
fn classify(coverage_id: &str, status: &Status) -> CoverageError {
    match status.code() {
        Code::NotFound => CoverageError::NotFound {
            coverage_id: coverage_id.to_owned(),
        },
        code @ (Code::Unavailable | Code::DeadlineExceeded) => CoverageError::Unavailable { code },
        code @ Code::PermissionDenied => CoverageError::Refused {
            code,
            message: status.message().to_owned(),
        },
        code => CoverageError::Unexpected {
            coverage_id: coverage_id.to_owned(),
            code,
            message: status.message().to_owned(),
        },
    }
}

/// Checks that `coverage` is with the claim's payer and for the claim's patient.
fn matches_claim(coverage: &pb::Coverage, claim: &NewClaim) -> Result<(), CoverageError> {
    if coverage.payer_id != claim.payer_id {
        return Err(CoverageError::PayerMismatch {
            coverage_id: claim.coverage_id.clone(),
            claim_payer: claim.payer_id.clone(),
            coverage_payer: coverage.payer_id.clone(),
        });
    }
    if coverage.patient_ref != claim.patient_ref {
        return Err(CoverageError::PatientMismatch {
            coverage_id: claim.coverage_id.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eligibility_answers_map_to_claim_errors() {
        let id = "0192f0c4-0000-7000-8000-000000000001";
        let s: Status = classify(id, &Status::not_found("coverage x not found")).into();
        assert_eq!(s.code(), Code::FailedPrecondition);
        assert_eq!(
            s.message(),
            format!("claim.coverage_id: coverage {id} does not exist for this tenant")
        );
        for down in [
            Status::unavailable("down"),
            Status::deadline_exceeded("slow"),
        ] {
            let s: Status = classify(id, &down).into();
            assert_eq!(s.code(), Code::Unavailable, "{down:?}");
            assert_eq!(s.message(), "eligibility service unavailable; retry");
        }
        for other in [
            Status::unauthenticated("unknown token"),
            Status::invalid_argument("invalid id"),
            Status::internal("internal error"),
        ] {
            let err = classify(id, &other);
            assert!(
                err.to_string().contains(other.message()),
                "the log line keeps the detail: {err}"
            );
            let s: Status = err.into();
            assert_eq!(s.code(), Code::Internal, "{other:?}");
            assert_eq!(s.message(), "internal error", "detail is not leaked");
        }
        // A scope the caller's forwarded token lacks is the caller's to hear about.
        let lacking = Status::permission_denied(
            "permission denied: medbill.eligibility.v1.EligibilityService/GetCoverage needs the scope `eligibility.read`, which this token does not carry",
        );
        let s: Status = classify(id, &lacking).into();
        assert_eq!(s.code(), Code::PermissionDenied);
        assert!(
            s.message().contains("`eligibility.read`"),
            "{}",
            s.message()
        );
    }

    #[test]
    fn mismatches_name_the_field() {
        let claim_payer = Status::from(CoverageError::PayerMismatch {
            coverage_id: "c-1".to_owned(),
            claim_payer: "87726".to_owned(),
            coverage_payer: "60054".to_owned(),
        });
        assert_eq!(claim_payer.code(), Code::InvalidArgument);
        assert_eq!(
            claim_payer.message(),
            "invalid claim.payer_id: the claim is for payer 87726, but coverage c-1 is with payer 60054"
        );
        let patient = Status::from(CoverageError::PatientMismatch {
            coverage_id: "c-1".to_owned(),
        });
        assert_eq!(patient.code(), Code::InvalidArgument);
        assert_eq!(
            patient.message(),
            "invalid claim.patient_ref: coverage c-1 belongs to another patient"
        );
    }
}
