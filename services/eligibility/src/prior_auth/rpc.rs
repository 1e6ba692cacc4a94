//! The prior authorization RPCs on the idempotency path: validate (every error names its
//! field), ask the key first (a retry never repeats the payer call), exchange with the payer
//! outside any transaction, then commit the authorization with its exchange and the key. A failed
//! exchange is kept as FAILED in a transaction of its own without the key, so a retry under the
//! same key asks the payer again.

use medbill_domain::{PriorAuthorizationId, TenantId, format_iso_date};
use medbill_proto::common::v1 as common;
use medbill_proto::eligibility::v1 as pb;
use medbill_runtime::ServiceError;
use medbill_runtime::fields::{optional_date, required_id, text, timestamp};
use medbill_runtime::idempotent::{Begun, IdempotentCall};
use medbill_runtime::paging::{PageSize, QueryFingerprint, decode_page_token, split_page};
use medbill_x12::write::is_icd10_format;
use rust_decimal::Decimal;
use tonic::Status;

use super::store::{ListFilter, status_name};
use super::{Exchanged, PriorAuths};
use crate::payer;

/// Most services one request asks about.
const MAX_SERVICES: usize = 50;
/// Most diagnoses one 278 carries (one HI segment).
const MAX_DIAGNOSES: usize = medbill_x12::write::review278::MAX_DIAGNOSES;
/// Characters that cannot appear in X12 values we write.
const X12_RESERVED: &[char] = &['*', '~', '^', ':', '|'];

impl PriorAuths {
    /// RequestPriorAuthorization.
    pub async fn request(
        &self,
        tenant: &TenantId,
        req: &pb::RequestPriorAuthorizationRequest,
    ) -> Result<pb::RequestPriorAuthorizationResponse, Status> {
        let call = IdempotentCall::of(req)?;
        let coverage = self
            .checks
            .coverage(&self.coverages, tenant, &req.coverage_id)
            .await?;
        let f = &coverage.fields;
        if self.checks.connections().get(&f.payer_id).is_err() {
            return Err(ServiceError::FailedPrecondition(format!(
                "coverage {} names payer {:?}, for which no clearinghouse connection is configured",
                coverage.id, f.payer_id
            ))
            .into());
        }
        let requester = self.checks.provider(
            tenant,
            "requesting_provider",
            req.requesting_provider.as_ref(),
        )?;
        let mut a = validate(req)?;
        a.coverage_id = coverage.id.to_string();
        a.patient_ref = f.patient_ref.clone();
        a.payer_id = f.payer_id.clone();
        a.requesting_provider = Some(common::ProviderRef {
            npi: requester.npi,
            organization_name: requester.name,
            ..common::ProviderRef::default()
        });
        let db = self.store.database();
        if let Some(first) = call.replayed(db, tenant).await? {
            return Ok(first);
        }
        let Exchanged { exchange, failure } = self.exchange(&mut a, &coverage, false).await?;
        if let Some((message, status)) = failure {
            a.status = pb::PriorAuthorizationStatus::Failed as i32;
            a.error_message = message;
            // Kept for audit without the key: the failure is the payer's, so a retry with the
            // same key asks again.
            let mut tx = db.begin().await.map_err(ServiceError::from)?;
            self.store
                .insert(&mut tx, tenant, &a, &exchange)
                .await
                .map_err(ServiceError::from)?;
            tx.commit().await.map_err(ServiceError::from)?;
            tracing::info!(prior_authorization_id = %a.id, tenant = %tenant, "prior authorization failed; exchange kept");
            return Err(status);
        }
        let mut op = match call.begin(db, tenant).await? {
            Begun::Replay(first) => return Ok(first),
            Begun::New(op) => op,
        };
        self.store
            .insert(op.tx(), tenant, &a, &exchange)
            .await
            .map_err(ServiceError::from)?;
        let response = pb::RequestPriorAuthorizationResponse {
            prior_authorization: Some(a),
        };
        op.commit(&response).await?;
        if let Some(a) = &response.prior_authorization {
            tracing::info!(prior_authorization_id = %a.id, tenant = %tenant, status = status_name(a.status()), "prior authorization recorded");
        }
        Ok(response)
    }

    /// GetPriorAuthorization.
    pub async fn get(
        &self,
        tenant: &TenantId,
        req: &pb::GetPriorAuthorizationRequest,
    ) -> Result<pb::GetPriorAuthorizationResponse, Status> {
        let id = required_id::<PriorAuthorizationId>("id", &req.id)?;
        let mut a = self.stored(tenant, &id).await?;
        if req.include_raw {
            a.exchanges = self
                .store
                .exchanges(tenant, &a.id)
                .await
                .map_err(ServiceError::from)?;
        }
        Ok(pb::GetPriorAuthorizationResponse {
            prior_authorization: Some(a),
        })
    }

    async fn stored(
        &self,
        tenant: &TenantId,
        id: &PriorAuthorizationId,
    ) -> Result<pb::PriorAuthorization, Status> {
        Ok(self
            .store
            .get(tenant, id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found(format!("prior authorization {id}")))?
            .authorization)
    }

    /// ListPriorAuthorizations.
    pub async fn list(
        &self,
        tenant: &TenantId,
        req: &pb::ListPriorAuthorizationsRequest,
    ) -> Result<pb::ListPriorAuthorizationsResponse, Status> {
        let size = PageSize::from_i32(req.page_size)?;
        let filter = list_filter(req)?;
        let fingerprint = QueryFingerprint::builder("eligibility.ListPriorAuthorizations")
            .field("tenant", tenant.as_str())
            .optional("patient_ref", filter.patient_ref.as_deref())
            .optional("coverage_id", filter.coverage_id.as_deref())
            .field("statuses", filter.statuses.join(","))
            .optional("from", filter.requested_from.as_deref())
            .optional("to", filter.requested_to.as_deref())
            .optional("created_from", filter.created_from.map(|m| m.to_string()))
            .optional(
                "created_before",
                filter.created_before.map(|m| m.to_string()),
            )
            .finish();
        let after = decode_page_token(&req.page_token, &fingerprint)?
            .map(|cursor| {
                PriorAuthorizationId::parse(&cursor)
                    .map(|id| id.to_string())
                    .map_err(|_| {
                        ServiceError::invalid_argument("page_token", "malformed page token")
                    })
            })
            .transpose()?;
        let rows = self
            .store
            .list(tenant, &filter, after.as_deref(), size.fetch_limit())
            .await
            .map_err(ServiceError::from)?;
        let (rows, next_page_token) = split_page(rows, size, &fingerprint, |a| a.id.clone());
        Ok(pb::ListPriorAuthorizationsResponse {
            prior_authorizations: rows,
            next_page_token,
        })
    }

    /// RefreshPriorAuthorization.
    pub async fn refresh(
        &self,
        tenant: &TenantId,
        req: &pb::RefreshPriorAuthorizationRequest,
    ) -> Result<pb::RefreshPriorAuthorizationResponse, Status> {
        let call = IdempotentCall::of(req)?;
        let id = required_id::<PriorAuthorizationId>("id", &req.id)?;
        let mut a = self.stored(tenant, &id).await?;
        let db = self.store.database();
        if !is_undecided(&a) {
            // Nothing to ask: the answer is recorded under the key, nothing else is written.
            let response = pb::RefreshPriorAuthorizationResponse {
                prior_authorization: Some(a),
            };
            return Ok(call.record(db, tenant, response).await?);
        }
        if a.payer_reference.is_empty() {
            return Err(ServiceError::FailedPrecondition(format!(
                "prior authorization {id} has no payer reference (REF*NT) to ask about"
            ))
            .into());
        }
        if let Some(first) = call.replayed(db, tenant).await? {
            return Ok(first);
        }
        let coverage = self.coverage_of(tenant, &a).await?;
        let Exchanged { exchange, failure } = self.exchange(&mut a, &coverage, true).await?;
        if let Some((_, status)) = failure {
            let mut tx = db.begin().await.map_err(ServiceError::from)?;
            self.store
                .add_exchange(&mut tx, tenant, &a.id, &exchange)
                .await
                .map_err(ServiceError::from)?;
            tx.commit().await.map_err(ServiceError::from)?;
            return Err(status);
        }
        let mut op = match call.begin(db, tenant).await? {
            Begun::Replay(first) => return Ok(first),
            Begun::New(op) => op,
        };
        self.store
            .update(op.tx(), tenant, &a, &exchange)
            .await
            .map_err(ServiceError::from)?;
        let response = pb::RefreshPriorAuthorizationResponse {
            prior_authorization: Some(a),
        };
        op.commit(&response).await?;
        Ok(response)
    }
}

/// Tells whether the payer has still to decide.
pub fn is_undecided(a: &pb::PriorAuthorization) -> bool {
    matches!(
        a.status(),
        pb::PriorAuthorizationStatus::Pended | pb::PriorAuthorizationStatus::Pending
    )
}

/// Validates a request into a PENDING authorization (coverage, patient, payer and requester are
/// filled by the caller).
fn validate(
    req: &pb::RequestPriorAuthorizationRequest,
) -> Result<pb::PriorAuthorization, ServiceError> {
    let service_type = req.service_type_code.as_str();
    if service_type.is_empty()
        || service_type.len() > 2
        || !service_type.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Err(ServiceError::invalid_argument(
            "service_type_code",
            "is required: an X12 service type code of 1 or 2 letters or digits (e.g. \"2\" surgical)",
        ));
    }
    let certification_type = match req.certification_type.as_str() {
        "" => "I",
        c @ ("I" | "R" | "S" | "4") => c,
        _ => {
            return Err(ServiceError::invalid_argument(
                "certification_type",
                "must be I (initial), R (renewal), S (revision) or 4 (extension)",
            ));
        }
    };
    if !req.place_of_service.is_empty()
        && (req.place_of_service.len() != 2
            || !req.place_of_service.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(ServiceError::invalid_argument(
            "place_of_service",
            "must be a 2-digit place of service code",
        ));
    }
    if req.diagnoses.is_empty() || req.diagnoses.len() > MAX_DIAGNOSES {
        return Err(ServiceError::invalid_argument(
            "diagnoses",
            format!("1 to {MAX_DIAGNOSES} ICD-10-CM codes are required"),
        ));
    }
    let mut diagnoses = Vec::with_capacity(req.diagnoses.len());
    for (i, code) in req.diagnoses.iter().enumerate() {
        let code = code.to_ascii_uppercase();
        if !is_icd10_format(&code) {
            return Err(ServiceError::invalid_argument(
                format!("diagnoses[{i}]"),
                "must be an ICD-10-CM code without the dot (e.g. M1711)",
            ));
        }
        diagnoses.push(code);
    }
    let requested_dates = dates("requested_dates", req.requested_dates.as_ref(), true)?;
    if req.services.is_empty() || req.services.len() > MAX_SERVICES {
        return Err(ServiceError::invalid_argument(
            "services",
            format!("1 to {MAX_SERVICES} services are required"),
        ));
    }
    let mut services = Vec::with_capacity(req.services.len());
    for (i, s) in req.services.iter().enumerate() {
        let at = |f: &str| format!("services[{i}].{f}");
        let p = s.procedure.clone().unwrap_or_default();
        let qualifier = if p.qualifier.is_empty() {
            "HC".to_owned()
        } else {
            p.qualifier.to_ascii_uppercase()
        };
        if !matches!(qualifier.as_str(), "HC" | "IV" | "ER" | "WK") {
            return Err(ServiceError::invalid_argument(
                at("procedure.qualifier"),
                "must be HC (CPT/HCPCS), IV, ER or WK",
            ));
        }
        if p.code.is_empty()
            || p.code.len() > 48
            || !p.code.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(ServiceError::invalid_argument(
                at("procedure.code"),
                "is required: 1 to 48 letters or digits",
            ));
        }
        if p.modifiers.len() > 4
            || p.modifiers
                .iter()
                .any(|m| m.len() != 2 || !m.chars().all(|c| c.is_ascii_alphanumeric()))
        {
            return Err(ServiceError::invalid_argument(
                at("procedure.modifiers"),
                "at most 4 modifiers of 2 letters or digits",
            ));
        }
        let units = Decimal::from_str_exact(&s.requested_units).map_err(|_| {
            ServiceError::invalid_argument(
                at("requested_units"),
                "is required: a decimal string such as \"1\" or \"12\"",
            )
        })?;
        if units <= Decimal::ZERO || units.scale() > 3 || units > Decimal::from(99_999) {
            return Err(ServiceError::invalid_argument(
                at("requested_units"),
                "must be more than 0 and at most 99999, with at most 3 decimals",
            ));
        }
        if !s.approved_units.is_empty() || !s.action_code.is_empty() {
            return Err(ServiceError::invalid_argument(
                at("approved_units"),
                "is the payer's to fill: leave approved_units and action_code empty",
            ));
        }
        let own_dates = dates(&at("requested_dates"), s.requested_dates.as_ref(), false)?;
        services.push(pb::AuthorizedService {
            procedure: Some(common::Procedure {
                qualifier,
                code: p.code.to_ascii_uppercase(),
                modifiers: p.modifiers.iter().map(|m| m.to_ascii_uppercase()).collect(),
                description: p.description,
            }),
            requested_units: units.normalize().to_string(),
            requested_dates: own_dates,
            ..pb::AuthorizedService::default()
        });
    }
    let notes = text("notes", &req.notes, 264, false)?.unwrap_or_default();
    if notes.contains(X12_RESERVED) {
        return Err(ServiceError::invalid_argument(
            "notes",
            "must not contain X12 separators (* ~ ^ : |)",
        ));
    }
    let servicing_provider = match &req.servicing_provider {
        Some(p) if *p != common::ProviderRef::default() => Some(servicing(p)?),
        _ => None,
    };
    let id = PriorAuthorizationId::new();
    let now = payer::now();
    Ok(pb::PriorAuthorization {
        id: id.to_string(),
        servicing_provider,
        service_type_code: service_type.to_ascii_uppercase(),
        certification_type: certification_type.to_owned(),
        place_of_service: req.place_of_service.clone(),
        diagnoses,
        services,
        requested_dates,
        status: pb::PriorAuthorizationStatus::Pending as i32,
        trace_number: id.as_uuid().simple().to_string(),
        notes,
        created_at: Some(timestamp(now)),
        updated_at: Some(timestamp(now)),
        ..pb::PriorAuthorization::default()
    })
}

fn servicing(p: &common::ProviderRef) -> Result<common::ProviderRef, ServiceError> {
    medbill_domain::Npi::parse(&p.npi)
        .map_err(|e| ServiceError::invalid_argument("servicing_provider.npi", e.to_string()))?;
    let name = if !p.organization_name.is_empty() {
        &p.organization_name
    } else {
        p.person_name
            .as_ref()
            .map(|n| &n.last_name)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                ServiceError::invalid_argument(
                    "servicing_provider.organization_name",
                    "a name (organization_name or person_name) is required",
                )
            })?
    };
    if name.chars().count() > 60 || name.contains(X12_RESERVED) || name.trim() != name {
        return Err(ServiceError::invalid_argument(
            "servicing_provider.organization_name",
            "must be 1 to 60 characters without X12 separators",
        ));
    }
    Ok(common::ProviderRef {
        npi: p.npi.clone(),
        organization_name: p.organization_name.clone(),
        person_name: p.person_name.clone(),
        ..common::ProviderRef::default()
    })
}

/// Validates a date range ("YYYY-MM-DD"; an empty `to_date` means the same day).
fn dates(
    field: &str,
    r: Option<&common::ServiceDateRange>,
    required: bool,
) -> Result<Option<common::ServiceDateRange>, ServiceError> {
    let Some(r) = r.filter(|r| !r.from_date.is_empty() || !r.to_date.is_empty()) else {
        return if required {
            Err(ServiceError::invalid_argument(field, "is required"))
        } else {
            Ok(None)
        };
    };
    let from = optional_date(&format!("{field}.from_date"), &r.from_date)?.ok_or_else(|| {
        ServiceError::invalid_argument(format!("{field}.from_date"), "is required")
    })?;
    let to = optional_date(&format!("{field}.to_date"), &r.to_date)?.unwrap_or(from);
    if to < from {
        return Err(ServiceError::invalid_argument(
            format!("{field}.to_date"),
            "is before from_date",
        ));
    }
    Ok(Some(common::ServiceDateRange {
        from_date: format_iso_date(from),
        to_date: format_iso_date(to),
    }))
}

fn list_filter(req: &pb::ListPriorAuthorizationsRequest) -> Result<ListFilter, ServiceError> {
    let coverage_id = match req.coverage_id.as_str() {
        "" => None,
        raw => Some(
            medbill_domain::CoverageId::parse(raw)
                .map_err(|e| ServiceError::invalid_argument("coverage_id", e.to_string()))?
                .to_string(),
        ),
    };
    let patient_ref = text("patient_ref", &req.patient_ref, 128, false)?;
    let mut statuses = Vec::new();
    for (i, s) in req.statuses.iter().enumerate() {
        let status = pb::PriorAuthorizationStatus::try_from(*s)
            .ok()
            .filter(|s| *s != pb::PriorAuthorizationStatus::Unspecified)
            .ok_or_else(|| {
                ServiceError::invalid_argument(format!("statuses[{i}]"), "is not a status")
            })?;
        let name = status_name(status);
        if !statuses.contains(&name) {
            statuses.push(name);
        }
    }
    let range = req.requested_dates.clone().unwrap_or_default();
    let created = req.created.unwrap_or_default();
    let micros = |field: &str, t: Option<&prost_types::Timestamp>| {
        medbill_runtime::fields::optional_instant(field, t).map(|t| t.map(|t| t.timestamp_micros()))
    };
    Ok(ListFilter {
        patient_ref,
        coverage_id,
        statuses,
        requested_from: optional_date("requested_dates.start_date", &range.start_date)?
            .map(format_iso_date),
        requested_to: optional_date("requested_dates.end_date", &range.end_date)?
            .map(format_iso_date),
        created_from: micros("created.start_time", created.start_time.as_ref())?,
        created_before: micros("created.end_time", created.end_time.as_ref())?,
    })
}
