//! EstimatePatientCost: validate the services, find the benefits (a completed check, or the
//! coverage's latest one for the date of service), price the lines and store the estimate.

use chrono::{Days, NaiveDate, Utc};
use medbill_domain::estimate::{PlaceOfService, ServiceUnits};
use medbill_domain::{CoverageId, EligibilityCheckId, EstimateId, Money, Npi, TenantId};
use medbill_proto::common::v1 as common;
use medbill_proto::eligibility::v1 as pb;
use medbill_runtime::ServiceError;
use medbill_runtime::fields::{date, identifier, required_id, text};
use medbill_runtime::idempotent::{Begun, IdempotentCall};
use tonic::Status;

use crate::mapping::{estimate_to_proto, provider_from_proto};
use crate::model::{CheckStatus, CostEstimate, CoverageStatus, Procedure, ProviderRef};
use crate::pricing::{self, LineInput, PricingError};
use crate::service::EligibilityService;

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
    /// Answers one EstimatePatientCost call: a retry replays the first estimate before the
    /// benefits are read again, a new call prices the services and stores the estimate with its
    /// key.
    pub(crate) async fn estimate(
        &self,
        tenant: &TenantId,
        req: &pb::EstimatePatientCostRequest,
    ) -> Result<pb::EstimatePatientCostResponse, Status> {
        use pb::estimate_patient_cost_request::BenefitsSource as B;
        let call = IdempotentCall::of(req)?;
        let dos = date("date_of_service", &req.date_of_service)?;
        let lines = validate_services(&req.services)?;
        let given_patient_ref = identifier("patient_ref", &req.patient_ref, false)?;
        if req.self_pay && given_patient_ref.is_none() {
            return Err(
                ServiceError::invalid_argument("patient_ref", "is required for self_pay").into(),
            );
        }
        let provider = validate_provider(req.provider.as_ref())?;
        let settings = self.checks.settings();
        let db = self.store.database();
        if let Some(first) = call.replayed(db, tenant).await? {
            return Ok(first);
        }

        let (check, patient_ref) = if req.self_pay {
            (None, given_patient_ref.unwrap_or_default())
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
                        .map_err(ServiceError::from)?
                        .ok_or_else(|| ServiceError::not_found(format!("eligibility check {id}")))?
                }
                Some(B::CoverageId(raw)) => {
                    let id = required_id::<CoverageId>("coverage_id", raw)?;
                    self.store
                        .latest_completed_check(tenant, &id, dos)
                        .await
                        .map_err(ServiceError::from)?
                        .ok_or_else(|| {
                            ServiceError::FailedPrecondition(format!(
                                "coverage {id} has no completed eligibility check for {dos}; \
                                 run CheckEligibility first"
                            ))
                        })?
                }
            };
            if check.status != CheckStatus::Completed {
                return Err(ServiceError::FailedPrecondition(format!(
                    "eligibility check {} did not complete; its benefits cannot be used",
                    check.id
                ))
                .into());
            }
            let active = check
                .summary
                .as_ref()
                .is_some_and(|s| s.coverage_status == CoverageStatus::Active);
            if !active {
                return Err(ServiceError::FailedPrecondition(format!(
                    "eligibility check {} found no active coverage on {}; estimate as self_pay",
                    check.id, check.date_of_service
                ))
                .into());
            }
            let patient_ref = given_patient_ref
                .or_else(|| check.patient_ref.clone())
                .unwrap_or_default();
            (Some(check), patient_ref)
        };
        let payer_id = check.as_ref().map(|c| c.payer_id.as_str());

        let priced_input: Vec<_> = lines
            .into_iter()
            .map(|line| {
                let per_unit =
                    settings.allowed_amount(tenant.as_str(), payer_id, &line.procedure.code);
                let (allowed, source) = pricing::allowed_amount(&line, per_unit);
                (line, allowed, source)
            })
            .collect();
        let total_charge: Money = priced_input.iter().map(|(l, _, _)| l.charge).sum();
        let total_allowed: Money = priced_input.iter().map(|(_, a, _)| *a).sum();
        let (lines, deductible_after, oop_after) = match &check {
            None => (pricing::price_self_pay(&priced_input), None, None),
            Some(check) => {
                let summary = check
                    .summary
                    .clone()
                    .unwrap_or_else(crate::model::BenefitSummary::unknown);
                let priced =
                    pricing::price_insured(&summary, &priced_input).map_err(|e| match e {
                        PricingError::Estimate(inner) => Status::from(
                            ServiceError::invalid_argument("services", inner.to_string()),
                        ),
                        other => Status::from(ServiceError::internal(other)),
                    })?;
                (
                    priced.lines,
                    Some(priced.remaining_deductible.round_cents()),
                    priced.remaining_oop.map(|m| m.round_cents()),
                )
            }
        };
        let total = pricing::total(&lines);
        let now = Utc::now();
        let estimate = CostEstimate {
            id: EstimateId::new(),
            eligibility_check_id: check.as_ref().map(|c| c.id),
            coverage_id: check.as_ref().and_then(|c| c.coverage_id),
            patient_ref,
            date_of_service: dos,
            self_pay: req.self_pay,
            good_faith_estimate: req.self_pay,
            lines,
            total_charge: total_charge.round_cents(),
            total_allowed: total_allowed.round_cents(),
            total,
            deductible_remaining_after: deductible_after,
            out_of_pocket_remaining_after: oop_after,
            disclaimer: if req.self_pay {
                GFE_DISCLAIMER
            } else {
                INSURED_DISCLAIMER
            }
            .to_owned(),
            valid_until: valid_until(now.date_naive()),
            provider,
            created_at: now,
        };
        let mut op = match call.begin(db, tenant).await? {
            Begun::Replay(first) => return Ok(first),
            Begun::New(op) => op,
        };
        self.store
            .insert_estimate(op.tx(), tenant, &estimate)
            .await
            .map_err(ServiceError::from)?;
        let response = pb::EstimatePatientCostResponse {
            estimate: Some(estimate_to_proto(&estimate)),
        };
        op.commit(&response).await?;
        tracing::info!(
            estimate_id = %estimate.id,
            tenant = %tenant,
            lines = estimate.lines.len(),
            self_pay = estimate.self_pay,
            "cost estimate stored"
        );
        Ok(response)
    }
}

/// Validates the provider of an estimate: a given provider carries a valid NPI (checked as
/// CreateClaim checks its NPIs), its identifiers follow the identifier rule, and its names and
/// address fit the X12 element lengths. An empty provider message counts as unset.
fn validate_provider(
    given: Option<&common::ProviderRef>,
) -> Result<Option<ProviderRef>, ServiceError> {
    let Some(p) = given.filter(|p| **p != common::ProviderRef::default()) else {
        return Ok(None);
    };
    if p.npi.is_empty() {
        return Err(ServiceError::invalid_argument(
            "provider.npi",
            "is required when provider is given",
        ));
    }
    Npi::parse(&p.npi)
        .map_err(|e| ServiceError::invalid_argument("provider.npi", e.to_string()))?;
    text(
        "provider.organization_name",
        &p.organization_name,
        60,
        false,
    )?;
    if let Some(n) = &p.person_name {
        text("provider.person_name.last_name", &n.last_name, 60, false)?;
        text("provider.person_name.first_name", &n.first_name, 35, false)?;
        text(
            "provider.person_name.middle_name",
            &n.middle_name,
            25,
            false,
        )?;
        text("provider.person_name.suffix", &n.suffix, 10, false)?;
    }
    identifier("provider.tax_id", &p.tax_id, false)?;
    identifier("provider.taxonomy_code", &p.taxonomy_code, false)?;
    if let Some(a) = &p.address {
        text("provider.address.line1", &a.line1, 55, false)?;
        text("provider.address.line2", &a.line2, 55, false)?;
        text("provider.address.city", &a.city, 30, false)?;
        text("provider.address.state", &a.state, 2, false)?;
        text("provider.address.postal_code", &a.postal_code, 15, false)?;
        text("provider.address.country_code", &a.country_code, 3, false)?;
    }
    Ok(Some(provider_from_proto(p)))
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
        let qualifier = match p.qualifier.as_str() {
            "" => "HC",
            q if q.len() == 2 && q.chars().all(|c| c.is_ascii_alphanumeric()) => q,
            _ => {
                return Err(ServiceError::invalid_argument(
                    field("procedure.qualifier"),
                    "must be a two-character code qualifier such as HC",
                ));
            }
        };
        identifier(&field("procedure.code"), &p.code, true)?;
        if qualifier == "HC" && !is_procedure_code(&p.code) {
            return Err(ServiceError::invalid_argument(
                field("procedure.code"),
                "is not a CPT or HCPCS code (5 digits, 4 digits and F, T or U, or a letter and 4 digits)",
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
            "" => ServiceUnits::ONE,
            raw => ServiceUnits::parse(raw)
                .map_err(|e| ServiceError::invalid_argument(field("units"), e.to_string()))?,
        };
        if !s.place_of_service.is_empty() {
            PlaceOfService::parse(&s.place_of_service).map_err(|e| {
                ServiceError::invalid_argument(field("place_of_service"), e.to_string())
            })?;
        }
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
            procedure: Procedure {
                qualifier: qualifier.to_owned(),
                code: p.code.clone(),
                modifiers: p.modifiers.clone(),
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
            units: "2.5".into(),
            place_of_service: "11".into(),
            ..Default::default()
        };
        assert!(validate_services(std::slice::from_ref(&good)).is_ok());
        type Breaker = fn(&mut pb::EstimateServiceInput);
        let cases: [(&str, Breaker); 12] = [
            ("services[0].procedure", |s| s.procedure = None),
            ("services[0].procedure.code", |s| {
                s.procedure = Some(common::Procedure {
                    code: "ABC".into(),
                    ..Default::default()
                })
            }),
            ("services[0].procedure.code", |s| {
                s.procedure = Some(common::Procedure {
                    qualifier: "ZZ".into(),
                    code: "x".repeat(1 << 20),
                    ..Default::default()
                })
            }),
            ("services[0].procedure.qualifier", |s| {
                s.procedure = Some(common::Procedure {
                    qualifier: "H\u{7}".into(),
                    code: "99213".into(),
                    ..Default::default()
                })
            }),
            ("services[0].charge", |s| s.charge = "1.005".into()),
            ("services[0].charge", |s| s.charge = "-1.00".into()),
            ("services[0].units", |s| s.units = "0".into()),
            ("services[0].units", |s| {
                s.units = "99999999999999999999".into()
            }),
            ("services[0].units", |s| s.units = "1.2345".into()),
            ("services[0].place_of_service", |s| {
                s.place_of_service = "office".into()
            }),
            ("services[0].place_of_service", |s| {
                s.place_of_service = "111".into()
            }),
            ("services[0].place_of_service", |s| {
                s.place_of_service = "1".into()
            }),
        ];
        for (field, breaker) in cases {
            let mut s = good.clone();
            breaker(&mut s);
            match validate_services(&[s]) {
                Err(ServiceError::InvalidArgument { field: f, reason }) => {
                    assert_eq!(f, field);
                    assert!(reason.len() < 200, "the value is not echoed: {reason}");
                }
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_given_provider_needs_a_valid_npi() {
        let provider = |npi: &str| common::ProviderRef {
            npi: npi.into(),
            organization_name: "SUNRISE FAMILY MEDICINE".into(),
            ..Default::default()
        };
        let ok = validate_provider(Some(&provider("1234567893"))).expect("valid");
        assert_eq!(ok.map(|p| p.npi), Some("1234567893".to_owned()));
        assert_eq!(validate_provider(None).ok(), Some(None));
        assert_eq!(
            validate_provider(Some(&common::ProviderRef::default())).ok(),
            Some(None),
            "an empty message is unset"
        );
        for bad in ["", "1234567890", "123456789", "12345678931", "12345678A3"] {
            match validate_provider(Some(&provider(bad))) {
                Err(ServiceError::InvalidArgument { field, .. }) => {
                    assert_eq!(field, "provider.npi", "{bad}")
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        let mut long_tax_id = provider("1234567893");
        long_tax_id.tax_id = "9".repeat(200);
        assert!(matches!(
            validate_provider(Some(&long_tax_id)),
            Err(ServiceError::InvalidArgument { field, .. }) if field == "provider.tax_id"
        ));
    }
}
