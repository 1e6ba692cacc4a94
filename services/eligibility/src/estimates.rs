//! EstimatePatientCost: validate the services, find the benefits (a completed check, or the
//! coverage's latest one for the date of service), price the lines and store the estimate.

use chrono::{Days, NaiveDate, Utc};
use medbill_domain::{
    CoverageId, EligibilityCheckId, EstimateId, Money, TenantId, format_iso_date,
};
use medbill_proto::common::v1 as common;
use medbill_proto::eligibility::v1 as pb;
use medbill_runtime::ServiceError;
use prost::Message;
use rust_decimal::Decimal;
use tonic::Status;

use crate::pricing::{self, LineInput, PricingError};
use crate::service::{EligibilityService, date, idempotency_key, store_error, timestamp};
use medbill_runtime::fields::required_id;

/// Most services priced in one estimate.
pub const MAX_SERVICES: usize = 100;

/// Days an estimate stays valid.
pub const VALID_DAYS: u64 = 30;

/// Disclaimer of a Good Faith Estimate.
pub const GFE_DISCLAIMER: &str = "This Good Faith Estimate shows the costs of items and services \
that are reasonably expected for your health care needs. It is based on information known at the \
time it was created and is not a contract; actual charges may differ. You have the right to \
dispute a bill substantially higher than this estimate.";

/// Disclaimer of an insured estimate.
pub const INSURED_DISCLAIMER: &str = "This estimate uses the benefits your health plan reported \
at the time of the eligibility check. It is not a guarantee of payment; your actual costs may \
differ once the claim is processed.";

impl EligibilityService {
    /// Answers one EstimatePatientCost call.
    pub(crate) async fn estimate(
        &self,
        tenant: &TenantId,
        req: &pb::EstimatePatientCostRequest,
    ) -> Result<pb::CostEstimate, Status> {
        use pb::estimate_patient_cost_request::BenefitsSource as B;
        let key = idempotency_key(&req.idempotency_key)?;
        let dos = date("date_of_service", &req.date_of_service)?;
        let lines = validate_services(&req.services)?;
        let provider = req.provider.clone();
        let settings = self.checks.settings();

        let (check, coverage_id, payer_id, patient_ref) = if req.self_pay {
            if req.patient_ref.is_empty() {
                return Err(ServiceError::invalid_argument(
                    "patient_ref",
                    "is required for self_pay",
                )
                .into());
            }
            (None, None, None, req.patient_ref.clone())
        } else {
            let check = match &req.benefits_source {
                None => {
                    return Err(ServiceError::invalid_argument(
                        "benefits_source",
                        "eligibility_check_id or coverage_id is required unless self_pay",
                    )
                    .into());
                }
                Some(B::EligibilityCheckId(raw)) => {
                    let id = required_id::<EligibilityCheckId>("eligibility_check_id", raw)?;
                    self.store
                        .get_check(tenant, &id, false)
                        .await
                        .map_err(store_error)?
                        .ok_or_else(|| ServiceError::not_found(format!("eligibility check {id}")))?
                }
                Some(B::CoverageId(raw)) => {
                    let id = required_id::<CoverageId>("coverage_id", raw)?;
                    self.store
                        .latest_completed_check(tenant, &id, dos)
                        .await
                        .map_err(store_error)?
                        .ok_or_else(|| {
                            ServiceError::FailedPrecondition(format!(
                                "coverage {id} has no completed eligibility check for {dos}; \
                                 run CheckEligibility first"
                            ))
                        })?
                }
            };
            if check.status != pb::EligibilityCheckStatus::Completed as i32 {
                return Err(ServiceError::FailedPrecondition(format!(
                    "eligibility check {} did not complete; its benefits cannot be used",
                    check.id
                ))
                .into());
            }
            let summary = check.summary.clone().unwrap_or_default();
            if summary.coverage_status != pb::CoverageStatus::Active as i32 {
                return Err(ServiceError::FailedPrecondition(format!(
                    "eligibility check {} found no active coverage on {}; estimate as self_pay",
                    check.id, check.date_of_service
                ))
                .into());
            }
            let patient_ref = if req.patient_ref.is_empty() {
                check.patient_ref.clone()
            } else {
                req.patient_ref.clone()
            };
            let coverage = (!check.coverage_id.is_empty()).then(|| check.coverage_id.clone());
            let payer = Some(check.payer_id.clone());
            (Some(check), coverage, payer, patient_ref)
        };

        let priced_input: Vec<_> = lines
            .into_iter()
            .map(|line| {
                let per_unit = settings.allowed_amount(
                    tenant.as_str(),
                    payer_id.as_deref(),
                    &line.procedure.code,
                );
                let (allowed, source) = pricing::allowed_amount(&line, per_unit);
                (line, allowed, source)
            })
            .collect();
        let total_charge: Money = priced_input.iter().map(|(l, _, _)| l.charge).sum();
        let total_allowed: Money = priced_input.iter().map(|(_, a, _)| *a).sum();
        let (lines, deductible_after, oop_after) = match &check {
            None => (
                pricing::price_self_pay(&priced_input),
                String::new(),
                String::new(),
            ),
            Some(check) => {
                let summary = check.summary.clone().unwrap_or_default();
                let priced =
                    pricing::price_insured(&summary, &priced_input).map_err(|e| match e {
                        PricingError::Estimate(inner) => Status::from(
                            ServiceError::invalid_argument("services", inner.to_string()),
                        ),
                        other => Status::from(ServiceError::internal(other)),
                    })?;
                (
                    priced.lines,
                    priced.remaining_deductible.round_cents().to_string(),
                    priced
                        .remaining_oop
                        .map(|m| m.round_cents().to_string())
                        .unwrap_or_default(),
                )
            }
        };
        let total = pricing::total(&lines);
        let created = timestamp(Utc::now());
        let today = Utc::now().date_naive();
        let estimate = pb::CostEstimate {
            id: EstimateId::new().to_string(),
            eligibility_check_id: check.as_ref().map(|c| c.id.clone()).unwrap_or_default(),
            coverage_id: coverage_id.unwrap_or_default(),
            patient_ref,
            date_of_service: format_iso_date(dos),
            self_pay: req.self_pay,
            good_faith_estimate: req.self_pay,
            lines,
            total_charge: total_charge.round_cents().to_string(),
            total_allowed: total_allowed.round_cents().to_string(),
            total: Some(total),
            deductible_remaining_after: deductible_after,
            out_of_pocket_remaining_after: oop_after,
            disclaimer: if req.self_pay {
                GFE_DISCLAIMER
            } else {
                INSURED_DISCLAIMER
            }
            .to_owned(),
            valid_until: format_iso_date(valid_until(today)),
            provider,
            created_at: Some(created),
        };
        let mut canonical = req.clone();
        canonical.idempotency_key.clear();
        let stored = self
            .store
            .create_estimate(tenant, &key, &canonical.encode_to_vec(), &estimate)
            .await
            .map_err(store_error)?;
        tracing::info!(
            estimate_id = %stored.id,
            tenant = %tenant,
            lines = stored.lines.len(),
            self_pay = stored.self_pay,
            "cost estimate stored"
        );
        Ok(stored)
    }
}

fn valid_until(today: NaiveDate) -> NaiveDate {
    today
        .checked_add_days(Days::new(VALID_DAYS))
        .unwrap_or(today)
}

/// Returns whether `code` looks like CPT (5 digits, or 4 digits and F/T/U) or HCPCS Level II
/// (a letter and 4 digits).
fn is_procedure_code(code: &str) -> bool {
    let b = code.as_bytes();
    if b.len() != 5 {
        return false;
    }
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    match b {
        [first, rest @ ..] if first.is_ascii_uppercase() => digits(rest),
        [head @ .., last] => digits(head) && (last.is_ascii_digit() || b"FTU".contains(last)),
        [] => false,
    }
}

/// Validates the services to price, naming the first offending field.
fn validate_services(
    services: &[pb::EstimateServiceInput],
) -> Result<Vec<LineInput>, ServiceError> {
    if services.is_empty() {
        return Err(ServiceError::invalid_argument(
            "services",
            "at least one service is required",
        ));
    }
    if services.len() > MAX_SERVICES {
        return Err(ServiceError::invalid_argument(
            "services",
            format!("at most {MAX_SERVICES} services are allowed"),
        ));
    }
    let mut out = Vec::with_capacity(services.len());
    for (i, s) in services.iter().enumerate() {
        let field = |name: &str| format!("services[{i}].{name}");
        let p = s
            .procedure
            .as_ref()
            .ok_or_else(|| ServiceError::invalid_argument(field("procedure"), "is required"))?;
        let qualifier = if p.qualifier.is_empty() {
            "HC"
        } else {
            p.qualifier.as_str()
        };
        if qualifier == "HC" && !is_procedure_code(&p.code) {
            return Err(ServiceError::invalid_argument(
                field("procedure.code"),
                format!("{:?} is not a CPT or HCPCS code", p.code),
            ));
        }
        if p.modifiers.len() > 4
            || p.modifiers
                .iter()
                .any(|m| m.len() != 2 || !m.chars().all(|c| c.is_ascii_alphanumeric()))
        {
            return Err(ServiceError::invalid_argument(
                field("procedure.modifiers"),
                "up to 4 two-character modifiers are allowed",
            ));
        }
        let service_type = match s.service_type_code.as_str() {
            "" => "30".to_owned(),
            st if st.len() <= 2 && st.chars().all(|c| c.is_ascii_alphanumeric()) => {
                st.to_ascii_uppercase()
            }
            _ => {
                return Err(ServiceError::invalid_argument(
                    field("service_type_code"),
                    "is not an X12 service type code",
                ));
            }
        };
        let units = match s.units.as_str() {
            "" => Decimal::ONE,
            raw => {
                let u = Decimal::from_str_exact(raw).map_err(|_| {
                    ServiceError::invalid_argument(
                        field("units"),
                        format!("{raw:?} is not a decimal"),
                    )
                })?;
                if u <= Decimal::ZERO || u.scale() > 3 {
                    return Err(ServiceError::invalid_argument(
                        field("units"),
                        "must be positive with at most 3 decimal places",
                    ));
                }
                u
            }
        };
        if s.charge.is_empty() {
            return Err(ServiceError::invalid_argument(
                field("charge"),
                "is required",
            ));
        }
        let charge = Money::parse(&s.charge)
            .map_err(|e| ServiceError::invalid_argument(field("charge"), e.to_string()))?;
        if charge.is_negative() {
            return Err(ServiceError::invalid_argument(
                field("charge"),
                "must not be negative",
            ));
        }
        out.push(LineInput {
            procedure: common::Procedure {
                qualifier: qualifier.to_owned(),
                code: p.code.clone(),
                modifiers: p.modifiers.clone(),
                description: String::new(),
            },
            service_type,
            units,
            charge,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn procedure_codes_follow_cpt_and_hcpcs_shapes() {
        for ok in ["99213", "0001U", "1234F", "G0008", "J3420"] {
            assert!(is_procedure_code(ok), "{ok}");
        }
        for bad in ["9921", "992133", "99a13", "g0008", "1234X", ""] {
            assert!(!is_procedure_code(bad), "{bad}");
        }
    }

    #[test]
    fn each_bad_service_field_is_named() {
        let good = pb::EstimateServiceInput {
            procedure: Some(common::Procedure {
                code: "99213".into(),
                ..Default::default()
            }),
            charge: "150.00".into(),
            ..Default::default()
        };
        assert!(validate_services(std::slice::from_ref(&good)).is_ok());
        type Breaker = fn(&mut pb::EstimateServiceInput);
        let cases: [(&str, Breaker); 5] = [
            ("services[0].procedure", |s| s.procedure = None),
            ("services[0].procedure.code", |s| {
                s.procedure = Some(common::Procedure {
                    code: "ABC".into(),
                    ..Default::default()
                })
            }),
            ("services[0].charge", |s| s.charge = "1.005".into()),
            ("services[0].charge", |s| s.charge = "-1.00".into()),
            ("services[0].units", |s| s.units = "0".into()),
        ];
        for (field, breaker) in cases {
            let mut s = good.clone();
            breaker(&mut s);
            match validate_services(&[s]) {
                Err(ServiceError::InvalidArgument { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }
}
