//! The gRPC face of the eligibility service: request validation, proto <-> model mapping (here
//! for coverages, in [`crate::mapping`] for checks and estimates), tenant from the caller's
//! token, paging, and errors as precise gRPC statuses.

use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use medbill_connect::Connections;
use medbill_domain::{CoverageId, format_iso_date};
use medbill_domain::{EligibilityCheckId, EstimateId};
use medbill_proto::eligibility::v1 as pb;
use medbill_proto::eligibility::v1::eligibility_service_server::EligibilityServiceServer;
use medbill_runtime::ServiceError;
use medbill_runtime::fields::{
    date, identifier, phi_date, required_id, required_text, tenant_id, text, timestamp,
};
use medbill_runtime::idempotent::{Begun, IdempotentCall};
use medbill_runtime::paging::{PageSize, QueryFingerprint, decode_page_token, split_page};
use tonic::{Request, Response, Status};

use crate::checks::Checks;
use crate::mapping::{check_to_proto, estimate_to_proto, status_from_proto};
use crate::model::CheckFilter;
use crate::prior_auth::PriorAuths;
use crate::prior_auth::store::PriorAuthStore;
use crate::settings::EligibilitySettings;

use crate::model::{
    Coverage, CoverageFilter, CoverageOrder, MAX_TEXT_LEN, NewCoverage, RELATIONSHIP_CODES,
    RELATIONSHIP_SELF, is_relationship_code,
};
use crate::store::EligibilityStore;

/// The eligibility gRPC service over an [`EligibilityStore`], the payer connections and the
/// eligibility settings (cache, providers, fee schedules).
#[derive(Clone)]
pub struct EligibilityService {
    pub(crate) store: Arc<dyn EligibilityStore>,
    pub(crate) checks: Arc<Checks>,
    pub(crate) prior_auths: Arc<PriorAuths>,
}

impl std::fmt::Debug for EligibilityService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EligibilityService").finish_non_exhaustive()
    }
}

impl EligibilityService {
    /// Builds the service over a store (see [`crate::store::open_store`]) with no payer
    /// connections and default settings: coverages work, eligibility checks answer that no
    /// connection is configured for the payer.
    pub fn new(store: Arc<dyn EligibilityStore>) -> Self {
        Self::with_payers(
            store,
            Connections::default(),
            EligibilitySettings::default(),
        )
    }

    /// Builds the service over a store, open payer connections and checked settings.
    pub fn with_payers(
        store: Arc<dyn EligibilityStore>,
        connections: Connections,
        settings: EligibilitySettings,
    ) -> Self {
        let checks = Arc::new(Checks::new(connections, settings));
        let prior_auths = Arc::new(PriorAuths::new(
            checks.clone(),
            store.clone(),
            PriorAuthStore::new(store.database().clone()),
        ));
        Self {
            store,
            checks,
            prior_auths,
        }
    }

    /// Returns the prior authorization engine (the poller runs over it).
    pub fn prior_auths(&self) -> &Arc<PriorAuths> {
        &self.prior_auths
    }

    /// Wraps the service in its generated tonic server (apply message limits with
    /// `medbill_runtime::with_grpc_limits!`).
    pub fn into_server(self) -> EligibilityServiceServer<Self> {
        EligibilityServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl pb::eligibility_service_server::EligibilityService for EligibilityService {
    async fn create_coverage(
        &self,
        request: Request<pb::CreateCoverageRequest>,
    ) -> Result<Response<pb::CreateCoverageResponse>, Status> {
        let tenant = tenant_id(&request)?;
        let req = request.into_inner();
        let call = IdempotentCall::of(&req)?;
        let new = validate_create(&req)?;
        let mut op = match call.begin(self.store.database(), &tenant).await? {
            Begun::Replay(first) => return Ok(Response::new(first)),
            Begun::New(op) => op,
        };
        let coverage = self
            .store
            .create_coverage(op.tx(), &tenant, &new)
            .await
            .map_err(ServiceError::from)?;
        let response = pb::CreateCoverageResponse {
            coverage: Some(to_proto(&coverage)),
        };
        op.commit(&response).await?;
        tracing::info!(coverage_id = %coverage.id, tenant = %tenant, "coverage created");
        Ok(Response::new(response))
    }

    async fn get_coverage(
        &self,
        request: Request<pb::GetCoverageRequest>,
    ) -> Result<Response<pb::GetCoverageResponse>, Status> {
        let tenant = tenant_id(&request)?;
        let req = request.into_inner();
        let id = required_id::<CoverageId>("id", &req.id)?;
        let coverage = self
            .store
            .get_coverage(&tenant, &id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found(format!("coverage {id}")))?;
        Ok(Response::new(pb::GetCoverageResponse {
            coverage: Some(to_proto(&coverage)),
        }))
    }

    async fn list_coverages(
        &self,
        request: Request<pb::ListCoveragesRequest>,
    ) -> Result<Response<pb::ListCoveragesResponse>, Status> {
        let tenant = tenant_id(&request)?;
        let req = request.into_inner();
        let size = PageSize::from_i32(req.page_size)?;
        let filter = CoverageFilter {
            patient_ref: identifier("patient_ref", &req.patient_ref, false)?,
            payer_id: identifier("payer_id", &req.payer_id, false)?,
        };
        let fingerprint = QueryFingerprint::builder("eligibility.ListCoverages")
            .field("tenant", tenant.as_str())
            .optional("patient_ref", filter.patient_ref.as_deref())
            .optional("payer_id", filter.payer_id.as_deref())
            .finish();
        let after = decode_page_token(&req.page_token, &fingerprint)?
            .map(|cursor| {
                CoverageId::parse(&cursor).map_err(|_| {
                    ServiceError::invalid_argument("page_token", "malformed page token")
                })
            })
            .transpose()?;
        let rows = self
            .store
            .list_coverages(&tenant, &filter, after.as_ref(), size.fetch_limit())
            .await
            .map_err(ServiceError::from)?;
        let (page, next_page_token) = split_page(rows, size, &fingerprint, |c| c.id.to_string());
        Ok(Response::new(pb::ListCoveragesResponse {
            coverages: page.iter().map(to_proto).collect(),
            next_page_token,
        }))
    }

    async fn check_eligibility(
        &self,
        request: Request<pb::CheckEligibilityRequest>,
    ) -> Result<Response<pb::CheckEligibilityResponse>, Status> {
        let tenant = tenant_id(&request)?;
        let req = request.into_inner();
        let response = self.checks.check(&self.store, &tenant, &req).await?;
        Ok(Response::new(response))
    }

    async fn get_eligibility_check(
        &self,
        request: Request<pb::GetEligibilityCheckRequest>,
    ) -> Result<Response<pb::GetEligibilityCheckResponse>, Status> {
        let tenant = tenant_id(&request)?;
        let req = request.into_inner();
        let id = required_id::<EligibilityCheckId>("id", &req.id)?;
        let check = self
            .store
            .get_check(&tenant, &id, req.include_raw)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found(format!("eligibility check {id}")))?;
        Ok(Response::new(pb::GetEligibilityCheckResponse {
            check: Some(check_to_proto(&check)),
        }))
    }

    async fn list_eligibility_checks(
        &self,
        request: Request<pb::ListEligibilityChecksRequest>,
    ) -> Result<Response<pb::ListEligibilityChecksResponse>, Status> {
        let tenant = tenant_id(&request)?;
        let req = request.into_inner();
        let size = PageSize::from_i32(req.page_size)?;
        let filter = check_filter(&req)?;
        let fingerprint = QueryFingerprint::builder("eligibility.ListEligibilityChecks")
            .field("tenant", tenant.as_str())
            .optional("coverage_id", filter.coverage_id.map(|c| c.to_string()))
            .optional("patient_ref", filter.patient_ref.as_deref())
            .optional("payer_id", filter.payer_id.as_deref())
            .optional("status", filter.status.map(|s| s.as_str()))
            .optional("dos_from", filter.date_of_service_from.map(format_iso_date))
            .optional("dos_to", filter.date_of_service_to.map(format_iso_date))
            .optional(
                "created_from",
                filter.created_from_micros.map(|m| m.to_string()),
            )
            .optional(
                "created_before",
                filter.created_before_micros.map(|m| m.to_string()),
            )
            .finish();
        let after = decode_page_token(&req.page_token, &fingerprint)?
            .map(|cursor| {
                EligibilityCheckId::parse(&cursor).map_err(|_| {
                    ServiceError::invalid_argument("page_token", "malformed page token")
                })
            })
            .transpose()?;
        let rows = self
            .store
            .list_checks(&tenant, &filter, after.as_ref(), size.fetch_limit())
            .await
            .map_err(ServiceError::from)?;
        let (checks, next_page_token) = split_page(rows, size, &fingerprint, |c| c.id.to_string());
        Ok(Response::new(pb::ListEligibilityChecksResponse {
            checks: checks.iter().map(check_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn estimate_patient_cost(
        &self,
        request: Request<pb::EstimatePatientCostRequest>,
    ) -> Result<Response<pb::EstimatePatientCostResponse>, Status> {
        let tenant = tenant_id(&request)?;
        let req = request.into_inner();
        let response = self.estimate(&tenant, &req).await?;
        Ok(Response::new(response))
    }

    async fn get_cost_estimate(
        &self,
        request: Request<pb::GetCostEstimateRequest>,
    ) -> Result<Response<pb::GetCostEstimateResponse>, Status> {
        let tenant = tenant_id(&request)?;
        let req = request.into_inner();
        if req.id.is_empty() {
            return Err(ServiceError::invalid_argument("id", "is required").into());
        }
        let id = EstimateId::parse(&req.id)
            .map_err(|e| ServiceError::invalid_argument("id", e.to_string()))?;
        let estimate = self
            .store
            .get_estimate(&tenant, &id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found(format!("cost estimate {id}")))?;
        Ok(Response::new(pb::GetCostEstimateResponse {
            estimate: Some(estimate_to_proto(&estimate)),
        }))
    }

    async fn request_prior_authorization(
        &self,
        request: Request<pb::RequestPriorAuthorizationRequest>,
    ) -> Result<Response<pb::RequestPriorAuthorizationResponse>, Status> {
        let tenant = tenant_id(&request)?;
        let req = request.into_inner();
        Ok(Response::new(
            self.prior_auths.request(&tenant, &req).await?,
        ))
    }

    async fn get_prior_authorization(
        &self,
        request: Request<pb::GetPriorAuthorizationRequest>,
    ) -> Result<Response<pb::GetPriorAuthorizationResponse>, Status> {
        let tenant = tenant_id(&request)?;
        let req = request.into_inner();
        Ok(Response::new(self.prior_auths.get(&tenant, &req).await?))
    }

    async fn list_prior_authorizations(
        &self,
        request: Request<pb::ListPriorAuthorizationsRequest>,
    ) -> Result<Response<pb::ListPriorAuthorizationsResponse>, Status> {
        let tenant = tenant_id(&request)?;
        let req = request.into_inner();
        Ok(Response::new(self.prior_auths.list(&tenant, &req).await?))
    }

    async fn refresh_prior_authorization(
        &self,
        request: Request<pb::RefreshPriorAuthorizationRequest>,
    ) -> Result<Response<pb::RefreshPriorAuthorizationResponse>, Status> {
        let tenant = tenant_id(&request)?;
        let req = request.into_inner();
        Ok(Response::new(
            self.prior_auths.refresh(&tenant, &req).await?,
        ))
    }
}

fn micros_of(field: &str, t: Option<&prost_types::Timestamp>) -> Result<Option<i64>, ServiceError> {
    t.map(|t| {
        if !(0..1_000_000_000).contains(&t.nanos) {
            return Err(ServiceError::invalid_argument(field, "nanos out of range"));
        }
        t.seconds
            .checked_mul(1_000_000)
            .and_then(|s| s.checked_add(i64::from(t.nanos / 1_000)))
            .ok_or_else(|| ServiceError::invalid_argument(field, "out of range"))
    })
    .transpose()
}

/// Maps a ListEligibilityChecks request to the store filter, naming bad fields.
fn check_filter(req: &pb::ListEligibilityChecksRequest) -> Result<CheckFilter, ServiceError> {
    let coverage_id = match req.coverage_id.as_str() {
        "" => None,
        raw => Some(
            CoverageId::parse(raw)
                .map_err(|e| ServiceError::invalid_argument("coverage_id", e.to_string()))?,
        ),
    };
    let status = status_from_proto(req.status);
    if status.is_none() && req.status != pb::EligibilityCheckStatus::Unspecified as i32 {
        return Err(ServiceError::invalid_argument(
            "status",
            format!("unknown value {}", req.status),
        ));
    }
    let range = req.date_of_service.clone().unwrap_or_default();
    let optional_date = |field: &str, v: &str| match v {
        "" => Ok(None),
        raw => date(field, raw).map(Some),
    };
    let created = req.created.unwrap_or_default();
    Ok(CheckFilter {
        coverage_id,
        patient_ref: identifier("patient_ref", &req.patient_ref, false)?,
        payer_id: identifier("payer_id", &req.payer_id, false)?,
        status,
        date_of_service_from: optional_date("date_of_service.start_date", &range.start_date)?,
        date_of_service_to: optional_date("date_of_service.end_date", &range.end_date)?,
        created_from_micros: micros_of("created.start_time", created.start_time.as_ref())?,
        created_before_micros: micros_of("created.end_time", created.end_time.as_ref())?,
    })
}

/// Parses an optional birth date (empty = unset): a real date, not in the future. The value
/// identifies a patient, so no error repeats it (`medbill_runtime::fields::phi_date`).
pub(crate) fn birth_date(field: &str, raw: &str) -> Result<Option<NaiveDate>, ServiceError> {
    let parsed = phi_date(field, raw)?;
    if parsed.is_some_and(|d| d > Utc::now().date_naive()) {
        return Err(ServiceError::invalid_argument(field, "is in the future"));
    }
    Ok(parsed)
}

/// Checks an identifier (the one rule of `medbill_runtime::fields::identifier`) that also goes
/// into an X12 element of at most `x12_max` characters.
pub(crate) fn x12_identifier(
    field: &str,
    value: &str,
    required: bool,
    x12_max: usize,
) -> Result<Option<String>, ServiceError> {
    let checked = identifier(field, value, required)?;
    if checked
        .as_ref()
        .is_some_and(|v| v.chars().count() > x12_max)
    {
        return Err(ServiceError::invalid_argument(
            field,
            format!("is longer than {x12_max} characters, the X12 maximum"),
        ));
    }
    Ok(checked)
}

/// Validates a CreateCoverage request into the model, naming the first offending field.
/// Identifiers follow the identifier rule; lengths follow the X12 5010 element maxima the fields
/// end up in (NM103 60, NM104 35, NM109 80, REF02 50).
fn validate_create(req: &pb::CreateCoverageRequest) -> Result<NewCoverage, ServiceError> {
    let required = |v: Option<String>| v.unwrap_or_default();
    let patient_ref = required(identifier("patient_ref", &req.patient_ref, true)?);
    let payer_id = required(x12_identifier("payer_id", &req.payer_id, true, 80)?);
    let payer_name = required_text("payer_name", &req.payer_name, 60)?;
    let member_id = required(x12_identifier("member_id", &req.member_id, true, 80)?);
    let group_number = x12_identifier("group_number", &req.group_number, false, 50)?;
    let plan_name = text("plan_name", &req.plan_name, MAX_TEXT_LEN, false)?;
    let subscriber_first_name =
        required_text("subscriber_first_name", &req.subscriber_first_name, 35)?;
    let subscriber_last_name =
        required_text("subscriber_last_name", &req.subscriber_last_name, 60)?;
    let subscriber_birth_date = birth_date("subscriber_birth_date", &req.subscriber_birth_date)?
        .ok_or_else(|| ServiceError::invalid_argument("subscriber_birth_date", "is required"))?;
    let relationship_to_subscriber = match req.relationship_to_subscriber.as_str() {
        "" => RELATIONSHIP_SELF.to_owned(),
        code if is_relationship_code(code) => code.to_owned(),
        _ => {
            return Err(ServiceError::invalid_argument(
                "relationship_to_subscriber",
                format!(
                    "is not an X12 individual relationship code; expected one of {}",
                    RELATIONSHIP_CODES.join(", ")
                ),
            ));
        }
    };
    let coverage_order = match pb::CoverageOrder::try_from(req.coverage_order) {
        Ok(pb::CoverageOrder::Unspecified | pb::CoverageOrder::Primary) => CoverageOrder::Primary,
        Ok(pb::CoverageOrder::Secondary) => CoverageOrder::Secondary,
        Ok(pb::CoverageOrder::Tertiary) => CoverageOrder::Tertiary,
        Err(_) => {
            return Err(ServiceError::invalid_argument(
                "coverage_order",
                format!("unknown value {}", req.coverage_order),
            ));
        }
    };
    let effective_date = date("effective_date", &req.effective_date)?;
    let termination_date = match req.termination_date.as_str() {
        "" => None,
        raw => Some(date("termination_date", raw)?),
    };
    if let Some(end) = termination_date
        && end < effective_date
    {
        return Err(ServiceError::invalid_argument(
            "termination_date",
            format!("{end} is before effective_date {effective_date}"),
        ));
    }
    Ok(NewCoverage {
        patient_ref,
        payer_id,
        payer_name,
        member_id,
        group_number,
        plan_name,
        subscriber_first_name,
        subscriber_last_name,
        subscriber_birth_date,
        relationship_to_subscriber,
        coverage_order,
        effective_date,
        termination_date,
    })
}

/// Maps a stored coverage to its wire form (absent optionals as empty strings).
pub fn to_proto(c: &Coverage) -> pb::Coverage {
    let f = &c.fields;
    pb::Coverage {
        id: c.id.to_string(),
        patient_ref: f.patient_ref.clone(),
        payer_id: f.payer_id.clone(),
        payer_name: f.payer_name.clone(),
        member_id: f.member_id.clone(),
        group_number: f.group_number.clone().unwrap_or_default(),
        plan_name: f.plan_name.clone().unwrap_or_default(),
        subscriber_first_name: f.subscriber_first_name.clone(),
        subscriber_last_name: f.subscriber_last_name.clone(),
        subscriber_birth_date: format_iso_date(f.subscriber_birth_date),
        relationship_to_subscriber: f.relationship_to_subscriber.clone(),
        coverage_order: match f.coverage_order {
            CoverageOrder::Primary => pb::CoverageOrder::Primary,
            CoverageOrder::Secondary => pb::CoverageOrder::Secondary,
            CoverageOrder::Tertiary => pb::CoverageOrder::Tertiary,
        } as i32,
        effective_date: format_iso_date(f.effective_date),
        termination_date: f.termination_date.map(format_iso_date).unwrap_or_default(),
        created_at: Some(timestamp(c.created_at)),
        updated_at: Some(timestamp(c.updated_at)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> pb::CreateCoverageRequest {
        pb::CreateCoverageRequest {
            idempotency_key: "k".into(),
            patient_ref: "pat-1".into(),
            payer_id: "60054".into(),
            payer_name: "AETNA".into(),
            member_id: "W1".into(),
            group_number: String::new(),
            plan_name: String::new(),
            subscriber_first_name: "ANN".into(),
            subscriber_last_name: "LEE".into(),
            subscriber_birth_date: "1980-02-29".into(),
            relationship_to_subscriber: String::new(),
            coverage_order: 0,
            effective_date: "2026-01-01".into(),
            termination_date: String::new(),
        }
    }

    fn field_of(err: ServiceError) -> String {
        match err {
            ServiceError::InvalidArgument { field, .. } => field,
            other => format!("not invalid argument: {other}"),
        }
    }

    #[test]
    fn defaults_apply_to_optional_fields() {
        let new = validate_create(&valid()).expect("valid");
        assert_eq!(new.relationship_to_subscriber, "18");
        assert_eq!(new.coverage_order, CoverageOrder::Primary);
        assert_eq!(new.group_number, None);
        assert_eq!(new.termination_date, None);
    }

    #[test]
    fn each_bad_field_is_named() {
        type Breaker = fn(&mut pb::CreateCoverageRequest);
        let cases: [(&str, Breaker); 11] = [
            ("patient_ref", |r| r.patient_ref.clear()),
            ("payer_id", |r| r.payer_id = " ".into()),
            ("payer_name", |r| r.payer_name = "x".repeat(61)),
            ("member_id", |r| r.member_id.clear()),
            ("group_number", |r| r.group_number = "  ".into()),
            ("subscriber_first_name", |r| {
                r.subscriber_first_name = "A\u{7}".into()
            }),
            ("subscriber_birth_date", |r| {
                r.subscriber_birth_date = "1980-02-30".into()
            }),
            ("relationship_to_subscriber", |r| {
                r.relationship_to_subscriber = "99".into()
            }),
            ("coverage_order", |r| r.coverage_order = 42),
            ("effective_date", |r| r.effective_date = "01/01/2026".into()),
            ("termination_date", |r| {
                r.termination_date = "2025-12-31".into()
            }),
        ];
        for (field, breaker) in cases {
            let mut req = valid();
            breaker(&mut req);
            let err = validate_create(&req).expect_err(field);
            assert_eq!(field_of(err), field);
        }
    }

    #[test]
    fn an_invalid_birth_date_is_named_and_not_echoed() {
        for value in ["1980-02-30", "02/28/1980", "1980-2-28"] {
            let mut req = valid();
            req.subscriber_birth_date = value.into();
            let status = Status::from(validate_create(&req).expect_err(value));
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
            assert!(
                status
                    .message()
                    .starts_with("invalid subscriber_birth_date: "),
                "{}",
                status.message()
            );
            assert!(!status.message().contains(value), "{}", status.message());
            assert!(!status.message().contains("1980"), "{}", status.message());
        }
        let mut missing = valid();
        missing.subscriber_birth_date.clear();
        assert_eq!(
            field_of(validate_create(&missing).expect_err("required")),
            "subscriber_birth_date"
        );
        assert_eq!(birth_date("d", "").ok(), Some(None));
        assert_eq!(
            birth_date("d", "1980-02-29").ok().flatten(),
            NaiveDate::from_ymd_opt(1980, 2, 29)
        );
    }

    #[test]
    fn a_birth_date_in_the_future_is_rejected() {
        let mut req = valid();
        req.subscriber_birth_date = format_iso_date(Utc::now().date_naive() + chrono::Days::new(2));
        assert_eq!(
            field_of(validate_create(&req).expect_err("future")),
            "subscriber_birth_date"
        );
    }
}
