//! The claim details on the wire: validation of what a ClaimInput gives (naming the field) and the
//! mapping back onto a Claim message.

use medbill_domain::{Npi, format_iso_date};
use medbill_proto::claims::v1 as pb;
use medbill_proto::common::v1 as common;
use medbill_proto::eligibility::v1 as eligibility;
use medbill_runtime::ServiceError;
use medbill_runtime::fields::{optional_date, phi_date};
use rust_decimal::Decimal;

use super::{
    ClaimDetails, ClaimPerson, CoverageSnapshot, Institutional, MAX_REFERENCE_LEN, MAX_UB_CODES,
    OccurrenceCode, ValueCode,
};
use crate::model::ClaimType;
use crate::providers::rpc::{address, address_to_proto};

/// Relationship codes the 837 allows in SBR02 / PAT01 (005010X222A1).
const RELATIONSHIPS: &[&str] = &["01", "18", "19", "20", "21", "39", "40", "53", "G8"];

/// Parses the details of a ClaimInput.
pub(crate) fn details_input(
    input: &pb::ClaimInput,
    claim_type: ClaimType,
) -> Result<ClaimDetails, ServiceError> {
    let demographics = input.demographics.clone().unwrap_or_default();
    let relationship = match demographics.relationship_to_subscriber.trim() {
        "" => None,
        r if RELATIONSHIPS.contains(&r) => Some(r.to_owned()),
        r => {
            return Err(ServiceError::invalid_argument(
                "claim.demographics.relationship_to_subscriber",
                format!(
                    "{r:?} is not an individual relationship code ({})",
                    RELATIONSHIPS.join(", ")
                ),
            ));
        }
    };
    let institutional = match (claim_type, &input.institutional) {
        (ClaimType::Professional, Some(_)) => {
            return Err(ServiceError::invalid_argument(
                "claim.institutional",
                "is only for institutional claims",
            ));
        }
        (ClaimType::Institutional, None) => {
            return Err(ServiceError::invalid_argument(
                "claim.institutional",
                "is required on an institutional claim (attending provider and discharge status at least)",
            ));
        }
        (ClaimType::Institutional, Some(i)) => Some(institutional(i)?),
        (ClaimType::Professional, None) => None,
    };
    Ok(ClaimDetails {
        patient: person("claim.demographics.patient", demographics.patient.as_ref())?,
        relationship_to_subscriber: relationship,
        subscriber: person(
            "claim.demographics.subscriber",
            demographics.subscriber.as_ref(),
        )?,
        referring_provider_npi: optional_npi(
            "claim.referring_provider_npi",
            &input.referring_provider_npi,
        )?,
        service_facility_npi: optional_npi(
            "claim.service_facility_npi",
            &input.service_facility_npi,
        )?,
        prior_authorization_number: reference(
            "claim.prior_authorization_number",
            &input.prior_authorization_number,
        )?,
        referral_number: reference("claim.referral_number", &input.referral_number)?,
        institutional,
        coverage: None,
        other_payer: None,
    })
}

/// Parses an authorization or referral number: at most 50 characters, letters, digits and '-'.
pub(crate) fn reference(field: &str, raw: &str) -> Result<Option<String>, ServiceError> {
    let value = raw.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if value.len() > MAX_REFERENCE_LEN
        || !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(ServiceError::invalid_argument(
            field,
            format!("must be 1 to {MAX_REFERENCE_LEN} letters, digits or '-'"),
        ));
    }
    Ok(Some(value.to_owned()))
}

fn optional_npi(field: &str, raw: &str) -> Result<Option<String>, ServiceError> {
    match raw.trim() {
        "" => Ok(None),
        v => Npi::parse(v)
            .map(|n| Some(n.as_str().to_owned()))
            .map_err(|e| ServiceError::invalid_argument(field, e.to_string())),
    }
}

fn person(field: &str, p: Option<&pb::ClaimPerson>) -> Result<Option<ClaimPerson>, ServiceError> {
    let Some(p) = p else { return Ok(None) };
    let name = p.name.clone().unwrap_or_default();
    let part = |f: &str, v: &str, required: bool| -> Result<String, ServiceError> {
        let v = v.trim();
        if v.is_empty() && required {
            return Err(ServiceError::invalid_argument(
                format!("{field}.name.{f}"),
                "is required",
            ));
        }
        if v.chars().count() > 60 || v.contains(['*', '~', ':', '^', '|']) {
            // The value is PHI: the message names the rule, never the value.
            return Err(ServiceError::invalid_argument(
                format!("{field}.name.{f}"),
                "must be at most 60 characters without X12 delimiters (* ~ : ^ |)",
            ));
        }
        Ok(v.to_owned())
    };
    let gender = match p.gender.trim() {
        "" => None,
        g @ ("F" | "M" | "U") => Some(g.to_owned()),
        _ => {
            return Err(ServiceError::invalid_argument(
                format!("{field}.gender"),
                "must be F, M or U",
            ));
        }
    };
    Ok(Some(ClaimPerson {
        last_name: part("last_name", &name.last_name, true)?,
        first_name: part("first_name", &name.first_name, false)?,
        middle_name: part("middle_name", &name.middle_name, false)?,
        suffix: part("suffix", &name.suffix, false)?,
        birth_date: phi_date(&format!("{field}.birth_date"), &p.birth_date)?,
        gender,
        address: address(&format!("{field}.address"), p.address.as_ref())?,
    }))
}

fn nubc_code(
    field: &str,
    raw: &str,
    len: std::ops::RangeInclusive<usize>,
) -> Result<String, ServiceError> {
    let v = raw.trim();
    if !len.contains(&v.len()) || !v.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ServiceError::invalid_argument(
            field,
            format!(
                "{v:?} is not a NUBC code of {} to {} letters or digits",
                len.start(),
                len.end()
            ),
        ));
    }
    Ok(v.to_ascii_uppercase())
}

fn optional_nubc(
    field: &str,
    raw: &str,
    len: std::ops::RangeInclusive<usize>,
) -> Result<Option<String>, ServiceError> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    nubc_code(field, raw, len).map(Some)
}

fn at_most(field: &str, n: usize) -> Result<(), ServiceError> {
    if n > MAX_UB_CODES {
        return Err(ServiceError::invalid_argument(
            field,
            format!("at most {MAX_UB_CODES} are allowed, got {n}"),
        ));
    }
    Ok(())
}

fn institutional(i: &pb::InstitutionalDetails) -> Result<Institutional, ServiceError> {
    const F: &str = "claim.institutional";
    let hour = match i.admission_hour.trim() {
        "" => None,
        h if matches!(h.len(), 2 | 4)
            && h.bytes().all(|b| b.is_ascii_digit())
            && h[..2].parse::<u8>().is_ok_and(|hh| hh < 24)
            && (h.len() == 2 || h[2..].parse::<u8>().is_ok_and(|mm| mm < 60)) =>
        {
            Some(h.to_owned())
        }
        _ => {
            return Err(ServiceError::invalid_argument(
                format!("{F}.admission_hour"),
                "must be HH or HHMM on a 24-hour clock",
            ));
        }
    };
    if i.discharge_status.trim().is_empty() {
        return Err(ServiceError::invalid_argument(
            format!("{F}.discharge_status"),
            "is required on an institutional claim (CL103)",
        ));
    }
    let attending = optional_npi(
        &format!("{F}.attending_provider_npi"),
        &i.attending_provider_npi,
    )?
    .ok_or_else(|| {
        ServiceError::invalid_argument(
            format!("{F}.attending_provider_npi"),
            "is required on an institutional claim (loop 2310A)",
        )
    })?;
    at_most(&format!("{F}.occurrence_codes"), i.occurrence_codes.len())?;
    at_most(&format!("{F}.value_codes"), i.value_codes.len())?;
    at_most(&format!("{F}.condition_codes"), i.condition_codes.len())?;
    let mut occurrence_codes = Vec::with_capacity(i.occurrence_codes.len());
    for (n, o) in i.occurrence_codes.iter().enumerate() {
        let at = format!("{F}.occurrence_codes[{n}]");
        occurrence_codes.push(OccurrenceCode {
            code: nubc_code(&format!("{at}.code"), &o.code, 2..=2)?,
            date: optional_date(&format!("{at}.date"), &o.date)?.ok_or_else(|| {
                ServiceError::invalid_argument(format!("{at}.date"), "is required")
            })?,
        });
    }
    let mut value_codes = Vec::with_capacity(i.value_codes.len());
    for (n, v) in i.value_codes.iter().enumerate() {
        let at = format!("{F}.value_codes[{n}]");
        let amount = Decimal::from_str_exact(v.amount.trim()).map_err(|_| {
            ServiceError::invalid_argument(format!("{at}.amount"), "must be a decimal string")
        })?;
        value_codes.push(ValueCode {
            code: nubc_code(&format!("{at}.code"), &v.code, 2..=2)?,
            amount: amount.to_string(),
        });
    }
    let mut condition_codes = Vec::with_capacity(i.condition_codes.len());
    for (n, c) in i.condition_codes.iter().enumerate() {
        condition_codes.push(nubc_code(&format!("{F}.condition_codes[{n}]"), c, 2..=2)?);
    }
    let admitting_diagnosis = match i.admitting_diagnosis.trim() {
        "" => None,
        d if crate::model::is_icd10_cm_format(d) => Some(d.to_owned()),
        d => {
            return Err(ServiceError::invalid_argument(
                format!("{F}.admitting_diagnosis"),
                format!("{d:?} is not an ICD-10-CM code without the dot"),
            ));
        }
    };
    Ok(Institutional {
        admission_date: optional_date(&format!("{F}.admission_date"), &i.admission_date)?,
        admission_hour: hour,
        admission_type: optional_nubc(&format!("{F}.admission_type"), &i.admission_type, 1..=1)?,
        admission_source: optional_nubc(
            &format!("{F}.admission_source"),
            &i.admission_source,
            1..=1,
        )?,
        discharge_status: nubc_code(&format!("{F}.discharge_status"), &i.discharge_status, 2..=2)?,
        attending_provider_npi: attending,
        occurrence_codes,
        value_codes,
        condition_codes,
        admitting_diagnosis,
    })
}

/// Takes what the 837's subscriber loop needs from the eligibility service's coverage.
pub(crate) fn coverage_snapshot(c: &eligibility::Coverage) -> CoverageSnapshot {
    let order = match eligibility::CoverageOrder::try_from(c.coverage_order) {
        Ok(eligibility::CoverageOrder::Primary) => "PRIMARY",
        Ok(eligibility::CoverageOrder::Secondary) => "SECONDARY",
        Ok(eligibility::CoverageOrder::Tertiary) => "TERTIARY",
        _ => "",
    };
    CoverageSnapshot {
        member_id: c.member_id.clone(),
        group_number: c.group_number.clone(),
        plan_name: c.plan_name.clone(),
        payer_name: c.payer_name.clone(),
        subscriber_first_name: c.subscriber_first_name.clone(),
        subscriber_last_name: c.subscriber_last_name.clone(),
        subscriber_birth_date: medbill_domain::parse_iso_date(&c.subscriber_birth_date).ok(),
        relationship_to_subscriber: c.relationship_to_subscriber.clone(),
        order: order.to_owned(),
    }
}

fn person_to_proto(p: &ClaimPerson) -> pb::ClaimPerson {
    pb::ClaimPerson {
        name: Some(common::PersonName {
            last_name: p.last_name.clone(),
            first_name: p.first_name.clone(),
            middle_name: p.middle_name.clone(),
            suffix: p.suffix.clone(),
        }),
        birth_date: p.birth_date.map(format_iso_date).unwrap_or_default(),
        gender: p.gender.clone().unwrap_or_default(),
        address: p.address.as_ref().map(address_to_proto),
    }
}

/// Writes the details onto a claim message.
pub(crate) fn fill_claim(d: &ClaimDetails, claim: &mut pb::Claim) {
    claim.demographics = Some(pb::ClaimDemographics {
        patient: d.patient.as_ref().map(person_to_proto),
        relationship_to_subscriber: d.relationship().to_owned(),
        subscriber: d.subscriber.as_ref().map(person_to_proto),
    });
    claim.referring_provider_npi = d.referring_provider_npi.clone().unwrap_or_default();
    claim.service_facility_npi = d.service_facility_npi.clone().unwrap_or_default();
    claim.prior_authorization_number = d.prior_authorization_number.clone().unwrap_or_default();
    claim.referral_number = d.referral_number.clone().unwrap_or_default();
    claim.institutional = d.institutional.as_ref().map(|i| pb::InstitutionalDetails {
        admission_date: i.admission_date.map(format_iso_date).unwrap_or_default(),
        admission_hour: i.admission_hour.clone().unwrap_or_default(),
        admission_type: i.admission_type.clone().unwrap_or_default(),
        admission_source: i.admission_source.clone().unwrap_or_default(),
        discharge_status: i.discharge_status.clone(),
        attending_provider_npi: i.attending_provider_npi.clone(),
        occurrence_codes: i
            .occurrence_codes
            .iter()
            .map(|o| pb::OccurrenceCode {
                code: o.code.clone(),
                date: format_iso_date(o.date),
            })
            .collect(),
        value_codes: i
            .value_codes
            .iter()
            .map(|v| pb::ValueCode {
                code: v.code.clone(),
                amount: v.amount.clone(),
            })
            .collect(),
        condition_codes: i.condition_codes.clone(),
        admitting_diagnosis: i.admitting_diagnosis.clone().unwrap_or_default(),
    });
}
