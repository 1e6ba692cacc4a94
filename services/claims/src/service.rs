//! The gRPC face of the claims service: request validation naming the offending field, proto <-> model
//! mapping, the tenant from the caller's token, idempotency, paging, and errors as precise statuses.

use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use medbill_domain::{
    ClaimId, CoverageId, Npi, PatientControlNumber,
    estimate::{PlaceOfService, ServiceUnits},
    format_iso_date,
};
use medbill_proto::claims::v1 as pb;
use medbill_proto::claims::v1::claims_service_server::ClaimsServiceServer;
use medbill_proto::eligibility::v1::eligibility_service_client::EligibilityServiceClient;
use medbill_runtime::ServiceError;
use medbill_runtime::client::TracedChannel;
use medbill_runtime::config::RetryPolicy;
use medbill_runtime::fields::{
    IDENTIFIER_LEN, identifier, money, non_empty, optional_date, required_id, required_text,
    tenant_id, text, timestamp,
};
use medbill_runtime::group_commit::GroupCommit;
use medbill_runtime::idempotent::{IdempotentCall, Reserved};
use medbill_runtime::paging::{PageSize, QueryFingerprint, decode_page_token, split_page};
use rust_decimal::Decimal;
use tonic::{Request, Response, Status};

use crate::coverage::CoverageClient;
use crate::details::wire::{coverage_snapshot, details_input, fill_claim, reference};
use crate::follow_up::FollowUps;
use crate::model::{
    Claim, ClaimFilter, ClaimLine, ClaimStatus, ClaimType, FrequencyCode, NewClaim, NewClaimLine,
    ScrubFinding, ScrubSeverity,
};
use crate::scrub::ScrubRules;
use crate::store::ClaimStore;
use crate::submission::delivery::Submitter;
use crate::watch::WatchHub;
use medbill_runtime::service::Shutdown;

/// Longest payer identifier (NM109 of the payer is 80 characters).
const MAX_PAYER_ID_LEN: usize = 80;

/// The claims gRPC service over a [`ClaimStore`], checking coverages with the eligibility service.
#[derive(Clone)]
pub struct ClaimsService {
    pub(crate) store: Arc<dyn ClaimStore>,
    pub(crate) coverage: CoverageClient,
    /// Payer routes and the submitter contact of SubmitClaims.
    pub(crate) submitter: Submitter,
    /// Code sets and payer rules of ScrubClaim.
    pub(crate) scrub_rules: Arc<ScrubRules>,
    /// Today's date, for timely filing.
    pub(crate) today: fn() -> NaiveDate,
    pub(crate) watch: WatchHub,
    /// Payer routes and intervals of the 276/277 follow-up.
    pub(crate) follow_ups: FollowUps,
    /// Shared transactions for the high-volume writes (CreateClaim, ScrubClaim).
    pub(crate) commits: GroupCommit,
}

impl std::fmt::Debug for ClaimsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimsService").finish_non_exhaustive()
    }
}

impl ClaimsService {
    /// Builds the service over a store (see [`crate::store::open_store`]) and a client of the
    /// eligibility service (`medbill_runtime::client::connect(url, &config)` with no token of its
    /// own: each call forwards the caller's), whose reads are retried under `retry`.
    pub fn new(
        store: Arc<dyn ClaimStore>,
        eligibility: EligibilityServiceClient<TracedChannel>,
        retry: RetryPolicy,
    ) -> Self {
        Self {
            commits: GroupCommit::start(store.database().clone()),
            store,
            coverage: CoverageClient::new(eligibility, retry),
            submitter: Submitter::none(),
            scrub_rules: ScrubRules::builtin(),
            today: || Utc::now().date_naive(),
            watch: WatchHub::new(None),
            follow_ups: FollowUps::new(Submitter::none(), Default::default()),
        }
    }

    /// Ends every WatchClaims stream when `stopping` fires (the binary passes
    /// `StartContext::stopping`, fired when the server starts to shut down).
    #[must_use]
    pub fn with_stopping(mut self, stopping: Shutdown) -> Self {
        self.watch = WatchHub::new(Some(stopping));
        self
    }

    /// Sets the payer routes and submitter contact SubmitClaims uses (without them every claim
    /// is skipped for want of a payer connection).
    #[must_use]
    pub fn with_submitter(mut self, submitter: Submitter) -> Self {
        self.follow_ups = FollowUps::new(submitter.clone(), Default::default());
        self.submitter = submitter;
        self
    }

    /// Sets the follow-up routes and intervals (FollowUpClaim asks through them); call after
    /// [`Self::with_submitter`], which sets them with the default interval.
    #[must_use]
    pub fn with_follow_ups(mut self, follow_ups: FollowUps) -> Self {
        self.follow_ups = follow_ups;
        self
    }

    /// The payer routes and submitter contact.
    pub(crate) fn submitter(&self) -> &Submitter {
        &self.submitter
    }

    /// The store (for the RPC modules beside this one).
    pub(crate) fn store(&self) -> &Arc<dyn ClaimStore> {
        &self.store
    }

    /// Checks that every NPI the claim names is a provider on file for the tenant
    /// (FAILED_PRECONDITION naming the first field whose NPI is not).
    pub(crate) async fn check_providers_on_file(
        &self,
        tenant: &medbill_domain::TenantId,
        claim: &NewClaim,
    ) -> Result<(), Status> {
        let named = named_npis(claim);
        let npis: Vec<&str> = named.iter().map(|(_, npi)| *npi).collect();
        let on_file = self
            .store
            .providers(tenant, &npis)
            .await
            .map_err(ServiceError::from)?;
        let on_file: Vec<&str> = on_file.iter().map(|p| p.npi.as_str()).collect();
        providers_on_file(&named, &on_file)
    }

    /// Uses these code sets and payer rules for ScrubClaim instead of the shipped code sets
    /// with default rules (see `ClaimsConfig::scrub_rules`).
    pub fn with_scrub_rules(mut self, rules: Arc<ScrubRules>) -> Self {
        self.scrub_rules = rules;
        self
    }

    /// Takes today's date from `today` (tests pin it; the default is the UTC date).
    pub fn with_today(mut self, today: fn() -> NaiveDate) -> Self {
        self.today = today;
        self
    }

    /// Wraps the service in its generated tonic server (apply message limits with
    /// `medbill_runtime::with_grpc_limits!`).
    pub fn into_server(self) -> ClaimsServiceServer<Self> {
        ClaimsServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl pb::claims_service_server::ClaimsService for ClaimsService {
    async fn create_claim(
        &self,
        request: Request<pb::CreateClaimRequest>,
    ) -> Result<Response<pb::CreateClaimResponse>, Status> {
        let tenant = tenant_id(&request)?;
        // The request itself (not only its body) is kept: the coverage check forwards its token.
        let req = request.get_ref();
        let call = IdempotentCall::of(req)?;
        let mut new = crate::creation::new_claim(req)?;
        let db = self.store.database();
        // A retry replays before the coverage check is asked again.
        if let Some(first) = call.replayed(db, &tenant).await? {
            return Ok(Response::new(first));
        }
        self.check_providers_on_file(&tenant, &new).await?;
        let coverage = self.coverage.check_claim(&request, &tenant, &new).await?;
        new.details.coverage = Some(coverage_snapshot(&coverage));
        // The write goes in a group commit: concurrent calls share one transaction.
        let store = Arc::clone(&self.store);
        let unit_tenant = tenant.clone();
        let (response, created) = self
            .commits
            .run(move |tx| {
                Box::pin(async move {
                    let pending = match call.reserve(tx, &unit_tenant).await? {
                        Reserved::Replay(first) => return Ok((first, false)),
                        Reserved::New(pending) => pending,
                    };
                    let claim = store.create_claim(tx, &unit_tenant, &new).await?;
                    let response = crate::creation::created(&claim);
                    pending.complete(tx, &response).await?;
                    Ok((response, true))
                })
            })
            .await?;
        if created && let Some(claim) = &response.claim {
            tracing::info!(claim_id = %claim.id, tenant = %tenant, "claim created");
        }
        Ok(Response::new(response))
    }

    async fn get_claim(
        &self,
        request: Request<pb::GetClaimRequest>,
    ) -> Result<Response<pb::GetClaimResponse>, Status> {
        let tenant = tenant_id(&request)?;
        let req = request.into_inner();
        let id = required_id::<ClaimId>("id", &req.id)?;
        let claim = self
            .store
            .get_claim(&tenant, id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found(format!("claim {id}")))?;
        Ok(Response::new(pb::GetClaimResponse {
            claim: Some(to_proto(&claim)),
        }))
    }

    async fn list_claims(
        &self,
        request: Request<pb::ListClaimsRequest>,
    ) -> Result<Response<pb::ListClaimsResponse>, Status> {
        let tenant = tenant_id(&request)?;
        let req = request.into_inner();
        let size = PageSize::from_i32(req.page_size)?;
        let mut statuses = Vec::with_capacity(req.statuses.len());
        for (i, raw) in req.statuses.iter().enumerate() {
            let status = status_from_proto(*raw).ok_or_else(|| {
                ServiceError::invalid_argument(
                    format!("statuses[{i}]"),
                    format!("{raw} is not a claim status"),
                )
            })?;
            if !statuses.contains(&status) {
                statuses.push(status);
            }
        }
        statuses.sort_by_key(|s| s.as_str());
        let (from, to) = match &req.service_dates {
            Some(range) => (
                optional_date("service_dates.from_date", &range.from_date)?,
                optional_date("service_dates.to_date", &range.to_date)?,
            ),
            None => (None, None),
        };
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            return Err(ServiceError::invalid_argument(
                "service_dates",
                format!("from_date {f} is after to_date {t}"),
            )
            .into());
        }
        let filter = ClaimFilter {
            statuses,
            patient_control_number: non_empty(&req.patient_control_number),
            coverage_id: non_empty(&req.coverage_id),
            patient_ref: identifier("patient_ref", &req.patient_ref, false)?,
            payer_id: text("payer_id", &req.payer_id, MAX_PAYER_ID_LEN, false)?,
            service_date_from: from,
            service_date_to: to,
        };
        let status_list = filter
            .statuses
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let fingerprint = QueryFingerprint::builder("claims.ListClaims")
            .field("tenant", tenant.as_str())
            .field("statuses", status_list)
            .optional(
                "patient_control_number",
                filter.patient_control_number.as_deref(),
            )
            .optional("coverage_id", filter.coverage_id.as_deref())
            .optional("patient_ref", filter.patient_ref.as_deref())
            .optional("payer_id", filter.payer_id.as_deref())
            .optional("from", filter.service_date_from.map(format_iso_date))
            .optional("to", filter.service_date_to.map(format_iso_date))
            .finish();
        let after = decode_page_token(&req.page_token, &fingerprint)?
            .map(|cursor| {
                ClaimId::parse(&cursor).map_err(|_| {
                    ServiceError::invalid_argument("page_token", "malformed page token")
                })
            })
            .transpose()?;
        let rows = self
            .store
            .list_claims(&tenant, &filter, after, size.fetch_limit())
            .await
            .map_err(ServiceError::from)?;
        let (page, next_page_token) = split_page(rows, size, &fingerprint, |c| c.id.to_string());
        Ok(Response::new(pb::ListClaimsResponse {
            claims: page.iter().map(to_proto).collect(),
            next_page_token,
        }))
    }

    async fn get_claims_by_patient_control_numbers(
        &self,
        request: Request<pb::GetClaimsByPatientControlNumbersRequest>,
    ) -> Result<Response<pb::GetClaimsByPatientControlNumbersResponse>, Status> {
        let tenant = tenant_id(&request)?;
        let req = request.into_inner();
        let max = crate::store::MAX_LOOKUP_NUMBERS;
        if req.patient_control_numbers.is_empty() || req.patient_control_numbers.len() > max {
            return Err(ServiceError::invalid_argument(
                "patient_control_numbers",
                format!(
                    "gives {} numbers; 1 to {max} are looked up per call",
                    req.patient_control_numbers.len()
                ),
            )
            .into());
        }
        let mut numbers = Vec::with_capacity(req.patient_control_numbers.len());
        for (i, raw) in req.patient_control_numbers.iter().enumerate() {
            let number = raw.trim();
            if number.is_empty() {
                return Err(ServiceError::invalid_argument(
                    format!("patient_control_numbers[{i}]"),
                    "is empty",
                )
                .into());
            }
            numbers.push(number.to_owned());
        }
        numbers.sort();
        numbers.dedup();
        let claims = self
            .store
            .claims_by_patient_control_numbers(&tenant, &numbers)
            .await
            .map_err(ServiceError::from)?;
        Ok(Response::new(
            pb::GetClaimsByPatientControlNumbersResponse {
                claims: claims.iter().map(to_proto).collect(),
            },
        ))
    }

    async fn scrub_claim(
        &self,
        request: Request<pb::ScrubClaimRequest>,
    ) -> Result<Response<pb::ScrubClaimResponse>, Status> {
        self.scrub(request).await
    }

    async fn create_claims(
        &self,
        request: Request<pb::CreateClaimsRequest>,
    ) -> Result<Response<pb::CreateClaimsResponse>, Status> {
        crate::creation::create_claims(self, request).await
    }

    async fn scrub_claims(
        &self,
        request: Request<pb::ScrubClaimsRequest>,
    ) -> Result<Response<pb::ScrubClaimsResponse>, Status> {
        crate::scrub::rpc::scrub_claims(self, request).await
    }

    async fn submit_claims(
        &self,
        request: Request<pb::SubmitClaimsRequest>,
    ) -> Result<Response<pb::SubmitClaimsResponse>, Status> {
        self.submit_claims_rpc(request).await
    }

    async fn get_submission_batch(
        &self,
        request: Request<pb::GetSubmissionBatchRequest>,
    ) -> Result<Response<pb::GetSubmissionBatchResponse>, Status> {
        self.get_submission_batch_rpc(request).await
    }

    async fn ingest_acknowledgement(
        &self,
        request: Request<pb::IngestAcknowledgementRequest>,
    ) -> Result<Response<pb::IngestAcknowledgementResponse>, Status> {
        self.ingest_acknowledgement_rpc(request).await
    }

    async fn correct_claim(
        &self,
        request: Request<pb::CorrectClaimRequest>,
    ) -> Result<Response<pb::CorrectClaimResponse>, Status> {
        crate::corrections::correct_claim(self, request).await
    }

    async fn void_claim(
        &self,
        request: Request<pb::VoidClaimRequest>,
    ) -> Result<Response<pb::VoidClaimResponse>, Status> {
        crate::corrections::void_claim(self, request).await
    }

    async fn apply_adjudication(
        &self,
        request: Request<pb::ApplyAdjudicationRequest>,
    ) -> Result<Response<pb::ApplyAdjudicationResponse>, Status> {
        crate::adjudication::rpc::apply_adjudication(self, request).await
    }

    async fn apply_adjudications(
        &self,
        request: Request<pb::ApplyAdjudicationsRequest>,
    ) -> Result<Response<pb::ApplyAdjudicationsResponse>, Status> {
        crate::adjudication::rpc::apply_adjudications(self, request).await
    }

    async fn create_provider(
        &self,
        request: Request<pb::CreateProviderRequest>,
    ) -> Result<Response<pb::CreateProviderResponse>, Status> {
        self.create_provider_rpc(request).await
    }

    async fn update_provider(
        &self,
        request: Request<pb::UpdateProviderRequest>,
    ) -> Result<Response<pb::UpdateProviderResponse>, Status> {
        self.update_provider_rpc(request).await
    }

    async fn get_provider(
        &self,
        request: Request<pb::GetProviderRequest>,
    ) -> Result<Response<pb::GetProviderResponse>, Status> {
        self.get_provider_rpc(request).await
    }

    async fn list_providers(
        &self,
        request: Request<pb::ListProvidersRequest>,
    ) -> Result<Response<pb::ListProvidersResponse>, Status> {
        self.list_providers_rpc(request).await
    }

    type WatchClaimsStream = tonic::codegen::BoxStream<pb::WatchClaimsResponse>;

    async fn watch_claims(
        &self,
        request: Request<pb::WatchClaimsRequest>,
    ) -> Result<Response<Self::WatchClaimsStream>, Status> {
        crate::events::watch_claims(self, request).await
    }

    async fn list_claim_events(
        &self,
        request: Request<pb::ListClaimEventsRequest>,
    ) -> Result<Response<pb::ListClaimEventsResponse>, Status> {
        crate::events::list_claim_events(self, request).await
    }

    async fn get_insurance_aging(
        &self,
        request: Request<pb::GetInsuranceAgingRequest>,
    ) -> Result<Response<pb::GetInsuranceAgingResponse>, Status> {
        crate::aging::rpc::get_insurance_aging(self, request).await
    }

    async fn follow_up_claim(
        &self,
        request: Request<pb::FollowUpClaimRequest>,
    ) -> Result<Response<pb::FollowUpClaimResponse>, Status> {
        crate::follow_up::rpc::follow_up_claim(self, request).await
    }

    async fn list_claim_follow_ups(
        &self,
        request: Request<pb::ListClaimFollowUpsRequest>,
    ) -> Result<Response<pb::ListClaimFollowUpsResponse>, Status> {
        crate::follow_up::rpc::list_claim_follow_ups(self, request).await
    }
}

/// Every (field, NPI) a claim names, billing provider first.
pub(crate) fn named_npis(claim: &NewClaim) -> Vec<(&'static str, &str)> {
    let mut named: Vec<(&'static str, &str)> = vec![(
        "claim.billing_provider_npi",
        claim.billing_provider_npi.as_str(),
    )];
    if let Some(npi) = &claim.rendering_provider_npi {
        named.push(("claim.rendering_provider_npi", npi.as_str()));
    }
    named.extend(claim.details.named_npis());
    named
}

/// FAILED_PRECONDITION naming the first field of `named` whose NPI is not among `on_file`.
pub(crate) fn providers_on_file(named: &[(&str, &str)], on_file: &[&str]) -> Result<(), Status> {
    for (field, npi) in named {
        if !on_file.contains(npi) {
            return Err(ServiceError::FailedPrecondition(format!(
                "{field}: provider {npi} is not on file for this tenant; register it with CreateProvider"
            ))
            .into());
        }
    }
    Ok(())
}

/// Parses units by the one rule claims and estimates share ([`ServiceUnits`]).
fn units(field: &str, value: &str) -> Result<Decimal, ServiceError> {
    if value.is_empty() {
        return Err(ServiceError::invalid_argument(
            field,
            "is required (a decimal string such as \"1\")",
        ));
    }
    ServiceUnits::parse(value)
        .map(|u| u.as_decimal())
        .map_err(|e| ServiceError::invalid_argument(field, e.to_string()))
}

/// Checks a facility type code (CLM05-1 on 837I): two digits, like a place of service.
fn facility_type(field: &str, value: &str) -> Result<String, ServiceError> {
    PlaceOfService::parse(value)
        .map(|_| value.to_owned())
        .map_err(|_| {
            ServiceError::invalid_argument(field, "must be a two-digit facility type code")
        })
}

/// Parses and checks each field of a ClaimInput, naming the first offending one (`claim.<field>`);
/// cross-field rules are [`NewClaim::validate`]'s.
pub(crate) fn validate_input(input: &pb::ClaimInput) -> Result<NewClaim, ServiceError> {
    if input.patient_control_number.is_empty() {
        return Err(ServiceError::invalid_argument(
            "claim.patient_control_number",
            "is required",
        ));
    }
    let patient_control_number = PatientControlNumber::parse(&input.patient_control_number)
        .map_err(|e| {
            ServiceError::invalid_argument("claim.patient_control_number", e.to_string())
        })?;
    let claim_type = match pb::ClaimType::try_from(input.claim_type) {
        Ok(pb::ClaimType::Professional) => ClaimType::Professional,
        Ok(pb::ClaimType::Institutional) => ClaimType::Institutional,
        Ok(pb::ClaimType::Unspecified) => {
            return Err(ServiceError::invalid_argument(
                "claim.claim_type",
                "is required (CLAIM_TYPE_PROFESSIONAL or CLAIM_TYPE_INSTITUTIONAL)",
            ));
        }
        Err(_) => {
            return Err(ServiceError::invalid_argument(
                "claim.claim_type",
                format!("{} is not a claim type", input.claim_type),
            ));
        }
    };
    if input.coverage_id.is_empty() {
        return Err(ServiceError::invalid_argument(
            "claim.coverage_id",
            "is required",
        ));
    }
    let coverage_id = CoverageId::parse(&input.coverage_id)
        .map_err(|e| ServiceError::invalid_argument("claim.coverage_id", e.to_string()))?
        .to_string();
    let payer_id = required_text("claim.payer_id", &input.payer_id, MAX_PAYER_ID_LEN)?;
    let patient_ref = required_text("claim.patient_ref", &input.patient_ref, IDENTIFIER_LEN)?;
    if input.billing_provider_npi.is_empty() {
        return Err(ServiceError::invalid_argument(
            "claim.billing_provider_npi",
            "is required",
        ));
    }
    let billing_provider_npi = Npi::parse(&input.billing_provider_npi)
        .map_err(|e| ServiceError::invalid_argument("claim.billing_provider_npi", e.to_string()))?;
    let rendering_provider_npi = match input.rendering_provider_npi.as_str() {
        "" => None,
        raw => Some(Npi::parse(raw).map_err(|e| {
            ServiceError::invalid_argument("claim.rendering_provider_npi", e.to_string())
        })?),
    };
    let (place_of_service, facility_type_code) = match claim_type {
        ClaimType::Professional => {
            if !input.facility_type_code.is_empty() {
                return Err(ServiceError::invalid_argument(
                    "claim.facility_type_code",
                    "is only for institutional claims; a professional claim gives place_of_service",
                ));
            }
            if input.place_of_service.is_empty() {
                return Err(ServiceError::invalid_argument(
                    "claim.place_of_service",
                    "is required on a professional claim",
                ));
            }
            (
                Some(
                    PlaceOfService::parse(&input.place_of_service)
                        .map_err(|e| {
                            ServiceError::invalid_argument("claim.place_of_service", e.to_string())
                        })?
                        .to_string(),
                ),
                None,
            )
        }
        ClaimType::Institutional => {
            if !input.place_of_service.is_empty() {
                return Err(ServiceError::invalid_argument(
                    "claim.place_of_service",
                    "is only for professional claims; an institutional claim gives facility_type_code",
                ));
            }
            if input.facility_type_code.is_empty() {
                return Err(ServiceError::invalid_argument(
                    "claim.facility_type_code",
                    "is required on an institutional claim",
                ));
            }
            (
                None,
                Some(facility_type(
                    "claim.facility_type_code",
                    &input.facility_type_code,
                )?),
            )
        }
    };

    let mut lines = Vec::with_capacity(input.lines.len());
    for (i, line) in input.lines.iter().enumerate() {
        let at = |f: &str| format!("claim.lines[{i}].{f}");
        let expected_number = u32::try_from(i + 1).unwrap_or(u32::MAX);
        if line.line_number != 0 && line.line_number != expected_number {
            return Err(ServiceError::invalid_argument(
                at("line_number"),
                format!(
                    "is {}, but lines must be numbered 1..n in order (expected {expected_number}, or 0 to assign it)",
                    line.line_number
                ),
            ));
        }
        if line.procedure_code.is_empty() {
            return Err(ServiceError::invalid_argument(
                at("procedure_code"),
                "is required",
            ));
        }
        lines.push(NewClaimLine {
            line_control_number: non_empty(&line.line_control_number),
            procedure_code: line.procedure_code.clone(),
            modifiers: line.modifiers.clone(),
            revenue_code: non_empty(&line.revenue_code),
            charge: money(&at("charge"), &line.charge)?,
            units: units(&at("units"), &line.units)?,
            service_date: optional_date(&at("service_date"), &line.service_date)?
                .ok_or_else(|| ServiceError::invalid_argument(at("service_date"), "is required"))?,
            diagnosis_pointers: line.diagnosis_pointers.clone(),
            prior_authorization_number: reference(
                &at("prior_authorization_number"),
                &line.prior_authorization_number,
            )?,
            referral_number: reference(&at("referral_number"), &line.referral_number)?,
        });
    }
    let total_charge = match input.total_charge.as_str() {
        "" => None,
        raw => Some(money("claim.total_charge", raw)?),
    };
    Ok(NewClaim {
        patient_control_number,
        claim_type,
        // CreateClaim makes originals; replacements and voids come from CorrectClaim / VoidClaim.
        frequency_code: FrequencyCode::Original,
        payer_claim_control_number: None,
        coverage_id,
        payer_id,
        patient_ref,
        billing_provider_npi,
        rendering_provider_npi,
        place_of_service,
        facility_type_code,
        diagnoses: input.diagnoses.clone(),
        lines,
        total_charge,
        service_date_from: optional_date("claim.service_date_from", &input.service_date_from)?,
        service_date_to: optional_date("claim.service_date_to", &input.service_date_to)?,
        encounter_ref: identifier("claim.encounter_ref", &input.encounter_ref, false)?,
        details: details_input(input, claim_type)?,
    })
}

pub(crate) fn status_from_proto(raw: i32) -> Option<ClaimStatus> {
    Some(match pb::ClaimStatus::try_from(raw).ok()? {
        pb::ClaimStatus::Unspecified => return None,
        pb::ClaimStatus::Draft => ClaimStatus::Draft,
        pb::ClaimStatus::Held => ClaimStatus::Held,
        pb::ClaimStatus::Ready => ClaimStatus::Ready,
        pb::ClaimStatus::Submitted => ClaimStatus::Submitted,
        pb::ClaimStatus::Accepted => ClaimStatus::Accepted,
        pb::ClaimStatus::Rejected => ClaimStatus::Rejected,
        pb::ClaimStatus::Paid => ClaimStatus::Paid,
        pb::ClaimStatus::PartiallyPaid => ClaimStatus::PartiallyPaid,
        pb::ClaimStatus::Denied => ClaimStatus::Denied,
        pb::ClaimStatus::Void => ClaimStatus::Void,
    })
}

pub(crate) fn status_to_proto(s: ClaimStatus) -> pb::ClaimStatus {
    match s {
        ClaimStatus::Draft => pb::ClaimStatus::Draft,
        ClaimStatus::Held => pb::ClaimStatus::Held,
        ClaimStatus::Ready => pb::ClaimStatus::Ready,
        ClaimStatus::Submitted => pb::ClaimStatus::Submitted,
        ClaimStatus::Accepted => pb::ClaimStatus::Accepted,
        ClaimStatus::Rejected => pb::ClaimStatus::Rejected,
        ClaimStatus::Paid => pb::ClaimStatus::Paid,
        ClaimStatus::PartiallyPaid => pb::ClaimStatus::PartiallyPaid,
        ClaimStatus::Denied => pb::ClaimStatus::Denied,
        ClaimStatus::Void => pb::ClaimStatus::Void,
    }
}

fn line_to_proto(l: &ClaimLine) -> pb::ClaimLine {
    pb::ClaimLine {
        line_number: l.line_number,
        line_control_number: l.line_control_number.clone(),
        procedure_code: l.procedure_code.clone(),
        modifiers: l.modifiers.clone(),
        revenue_code: l.revenue_code.clone().unwrap_or_default(),
        charge: l.charge.to_string(),
        units: l.units.to_string(),
        service_date: format_iso_date(l.service_date),
        diagnosis_pointers: l.diagnosis_pointers.clone(),
        prior_authorization_number: l.prior_authorization_number.clone().unwrap_or_default(),
        referral_number: l.referral_number.clone().unwrap_or_default(),
    }
}

/// Maps a claim type to the wire.
pub(crate) fn claim_type_to_proto(t: ClaimType) -> pb::ClaimType {
    match t {
        ClaimType::Professional => pb::ClaimType::Professional,
        ClaimType::Institutional => pb::ClaimType::Institutional,
    }
}

/// Maps a stored claim to its wire form (money as decimal strings, dates as YYYY-MM-DD).
pub fn to_proto(c: &Claim) -> pb::Claim {
    let mut claim = pb::Claim {
        id: c.id.to_string(),
        patient_control_number: c.patient_control_number.to_string(),
        claim_type: claim_type_to_proto(c.claim_type).into(),
        status: status_to_proto(c.status).into(),
        frequency_code: c.frequency_code.as_str().to_owned(),
        payer_claim_control_number: c.payer_claim_control_number.clone().unwrap_or_default(),
        coverage_id: c.coverage_id.clone(),
        payer_id: c.payer_id.clone(),
        patient_ref: c.patient_ref.clone(),
        billing_provider_npi: c.billing_provider_npi.to_string(),
        rendering_provider_npi: c
            .rendering_provider_npi
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        place_of_service: c.place_of_service.clone().unwrap_or_default(),
        facility_type_code: c.facility_type_code.clone().unwrap_or_default(),
        diagnoses: c.diagnoses.clone(),
        lines: c.lines.iter().map(line_to_proto).collect(),
        total_charge: c.total_charge.to_string(),
        service_date_from: format_iso_date(c.service_date_from),
        service_date_to: format_iso_date(c.service_date_to),
        encounter_ref: c.encounter_ref.clone().unwrap_or_default(),
        submission_batch_id: c
            .submission_batch_id
            .map(|b| b.to_string())
            .unwrap_or_default(),
        created_at: Some(timestamp(c.created_at)),
        updated_at: Some(timestamp(c.updated_at)),
        scrub_findings: c.scrub_findings.iter().map(finding_to_proto).collect(),
        original_claim_id: c
            .original_claim_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        superseded_by_claim_id: c
            .superseded_by_claim_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        adjudication: c
            .adjudication
            .as_ref()
            .map(crate::adjudication::rpc::to_proto),
        primary_claim_id: c
            .coordination
            .primary_claim_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        secondary_claim_id: c
            .coordination
            .secondary_claim_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        secondary_claim_note: c
            .coordination
            .secondary_claim_note
            .clone()
            .unwrap_or_default(),
        ..Default::default()
    };
    fill_claim(&c.details, &mut claim);
    claim
}

/// Maps a scrub finding to its wire form.
pub fn finding_to_proto(f: &ScrubFinding) -> pb::ScrubFinding {
    pb::ScrubFinding {
        edit_code: f.edit_code.as_str().to_owned(),
        severity: match f.severity {
            ScrubSeverity::Info => pb::ScrubSeverity::Info,
            ScrubSeverity::Warning => pb::ScrubSeverity::Warning,
            ScrubSeverity::Error => pb::ScrubSeverity::Error,
        }
        .into(),
        message: f.message.clone(),
        field: f.field.clone(),
        line_number: f.line_number,
        x12_location: f.x12_location.clone(),
    }
}
