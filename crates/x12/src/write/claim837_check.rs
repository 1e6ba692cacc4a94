//! Input checks shared by the 837P and 837I writers: parties, claim values, COB data.

use rust_decimal::Decimal;

use super::claim837::Parties;
use super::format::{amount, invalid, opt_amount};
use super::{WriteError, validate as v};
use crate::model::PartyName;
use crate::model::claim::{
    Adjustment, Attachment, ClaimCommon, ClaimFrequency, ClaimProvider, LineAdjudication, Note,
    Procedure, TaxId,
};

/// Checks the billing provider, subscriber, patient and payer of claim `ctx`.
pub(crate) fn check_parties(
    ctx: &str,
    p: &Parties<'_>,
    organization_only: bool,
) -> Result<(), WriteError> {
    let b = p.billing;
    v::party(ctx, "billing_provider.name", &b.name)?;
    if organization_only && !matches!(b.name, crate::model::PartyName::Organization { .. }) {
        return Err(invalid(
            ctx,
            "billing_provider.name",
            "must be an organisation on an 837I",
        ));
    }
    v::npi(ctx, "billing_provider.npi", &b.npi)?;
    match &b.tax_id {
        TaxId::Ein(t) | TaxId::Ssn(t) => v::digits(ctx, "billing_provider.tax_id", t, 9)?,
    }
    v::address(ctx, &b.address)?;
    if b.address.postal_code.len() != 9 {
        return Err(invalid(
            ctx,
            "billing_provider.address.postal_code",
            "the TR3 requires the 9-digit ZIP+4",
        ));
    }
    if let Some(t) = &b.taxonomy {
        taxonomy(ctx, "billing_provider.taxonomy", t)?;
    }
    let s = p.subscriber;
    v::code(
        ctx,
        "subscriber.payer_responsibility",
        &s.payer_responsibility,
        RESPONSIBILITY,
    )?;
    v::required(
        ctx,
        "subscriber.claim_filing_indicator",
        &s.claim_filing_indicator,
        2,
    )?;
    v::optional(ctx, "subscriber.group_number", &s.group_number, 50)?;
    v::optional(ctx, "subscriber.group_name", &s.group_name, 60)?;
    v::person(ctx, "subscriber.name", &s.name)?;
    v::required(ctx, "subscriber.member_id", &s.member_id, 80)?;
    if let Some(a) = &s.address {
        v::address(ctx, a)?;
    }
    if let Some(g) = &s.gender {
        v::gender(ctx, "subscriber.gender", g)?;
    }
    if p.patient.is_none() && (s.address.is_none() || s.birth_date.is_none() || s.gender.is_none())
    {
        return Err(invalid(
            ctx,
            "subscriber",
            "address, birth date and gender are required when the subscriber is the patient",
        ));
    }
    if let Some(pt) = p.patient {
        v::required(ctx, "patient.relationship", &pt.relationship, 2)?;
        if pt.relationship == "18" {
            return Err(invalid(
                ctx,
                "patient.relationship",
                "18 (self) means no separate patient",
            ));
        }
        v::person(ctx, "patient.name", &pt.name)?;
        v::address(ctx, &pt.address)?;
        v::gender(ctx, "patient.gender", &pt.gender)?;
    }
    v::required(ctx, "payer.name", &p.payer.name, 60)?;
    v::required(ctx, "payer.id", &p.payer.id, 80)?;
    if let Some(a) = &p.payer.address {
        v::address(ctx, a)?;
    }
    Ok(())
}

const RESPONSIBILITY: &[&str] = &["A", "B", "C", "D", "E", "F", "G", "H", "P", "S", "T", "U"];

pub(crate) fn taxonomy(ctx: &str, field: &'static str, t: &str) -> Result<(), WriteError> {
    let b = t.as_bytes();
    let ok = b.len() == 10
        && b.iter().take(3).all(u8::is_ascii_digit)
        && b.iter()
            .skip(3)
            .take(6)
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        && b.get(9) == Some(&b'X');
    if !ok {
        return Err(invalid(
            ctx,
            field,
            "must be a 10-character NUCC taxonomy code ending in X",
        ));
    }
    Ok(())
}

/// Checks the claim-level values shared by 837P and 837I; `line_total` is the sum of line charges.
pub(crate) fn check_common(
    ctx: &str,
    c: &ClaimCommon,
    line_total: Decimal,
    lines: usize,
    max_lines: usize,
) -> Result<(), WriteError> {
    v::required(ctx, "patient_control_number", &c.patient_control_number, 20)?;
    amount(ctx, "total_charge", c.total_charge)?;
    if c.total_charge < Decimal::ZERO {
        return Err(invalid(ctx, "total_charge", "must not be negative"));
    }
    if lines == 0 || lines > max_lines {
        return Err(invalid(
            ctx,
            "lines",
            &format!("must hold 1 to {max_lines} lines"),
        ));
    }
    if line_total != c.total_charge {
        return Err(invalid(
            ctx,
            "total_charge",
            &format!(
                "{} does not equal the sum of line charges {}",
                c.total_charge, line_total
            ),
        ));
    }
    match (c.frequency, &c.payer_claim_number) {
        (ClaimFrequency::Replacement | ClaimFrequency::Void, None) => {
            return Err(invalid(
                ctx,
                "payer_claim_number",
                "REF*F8 is required for frequency 7 and 8",
            ));
        }
        (_, Some(n)) => v::required(ctx, "payer_claim_number", n, 50)?,
        _ => {}
    }
    v::code(ctx, "assignment", &c.assignment, &["A", "B", "C"])?;
    v::code(
        ctx,
        "benefits_assigned",
        &c.benefits_assigned,
        &["N", "W", "Y"],
    )?;
    v::code(
        ctx,
        "release_of_information",
        &c.release_of_information,
        &["I", "Y"],
    )?;
    v::optional(ctx, "prior_authorization", &c.prior_authorization, 50)?;
    v::optional(ctx, "medical_record_number", &c.medical_record_number, 50)?;
    if c.diagnoses.is_empty() || c.diagnoses.len() > 12 {
        return Err(invalid(ctx, "diagnoses", "must hold 1 to 12 codes"));
    }
    for d in &c.diagnoses {
        v::icd10(ctx, "diagnoses", d)?;
    }
    for (i, o) in c.other_payers.iter().enumerate() {
        let octx = format!("{ctx} other payer {}", i + 1);
        v::code(
            &octx,
            "payer_responsibility",
            &o.payer_responsibility,
            RESPONSIBILITY,
        )?;
        v::required(&octx, "relationship", &o.relationship, 2)?;
        v::required(
            &octx,
            "claim_filing_indicator",
            &o.claim_filing_indicator,
            2,
        )?;
        v::code(
            &octx,
            "benefits_assigned",
            &o.benefits_assigned,
            &["N", "W", "Y"],
        )?;
        v::code(
            &octx,
            "release_of_information",
            &o.release_of_information,
            &["I", "Y"],
        )?;
        v::person(&octx, "subscriber_name", &o.subscriber_name)?;
        v::required(&octx, "subscriber_id", &o.subscriber_id, 80)?;
        v::required(&octx, "payer_name", &o.payer_name, 60)?;
        v::required(&octx, "payer_id", &o.payer_id, 80)?;
        check_adjustments(&octx, &o.adjustments)?;
        opt_amount(&octx, "paid_amount", o.paid_amount)?;
        opt_amount(
            &octx,
            "remaining_patient_liability",
            o.remaining_patient_liability,
        )?;
    }
    Ok(())
}

pub(crate) fn check_procedure(
    ctx: &str,
    field: &'static str,
    p: &Procedure,
) -> Result<(), WriteError> {
    v::code(
        ctx,
        field,
        &p.qualifier,
        &["HC", "ER", "IV", "WK", "AD", "HP", "N4"],
    )?;
    v::required(ctx, field, &p.code, 48)?;
    if p.modifiers.len() > 4 || p.modifiers.iter().any(|m| m.len() != 2) {
        return Err(invalid(ctx, field, "at most 4 modifiers of 2 characters"));
    }
    Ok(())
}

/// Checks a line's NDC drug (11 digits, positive quantity, known unit).
pub(crate) fn check_drug(
    ctx: &str,
    drug: Option<&crate::model::claim::Drug>,
) -> Result<(), WriteError> {
    let Some(d) = drug else { return Ok(()) };
    v::digits(ctx, "drug.ndc", &d.ndc, 11)?;
    if d.quantity <= Decimal::ZERO {
        return Err(invalid(ctx, "drug.quantity", "must be positive"));
    }
    v::code(ctx, "drug.unit", &d.unit, &["F2", "GR", "ME", "ML", "UN"])
}

/// Checks a provider loop (NM1 with an NPI, PRV when `prv_allowed`); `person_only` for loops
/// whose NM102 must be 1.
pub(crate) fn check_provider(
    ctx: &str,
    field: &'static str,
    p: &ClaimProvider,
    person_only: bool,
    prv_allowed: bool,
) -> Result<(), WriteError> {
    if person_only && !matches!(p.name, PartyName::Person(_)) {
        return Err(invalid(ctx, field, "must be a person"));
    }
    v::party(ctx, field, &p.name)?;
    v::npi(ctx, field, &p.npi)?;
    match &p.taxonomy {
        Some(t) if prv_allowed => taxonomy(ctx, field, t),
        Some(_) => Err(invalid(
            ctx,
            field,
            "this loop has no PRV: leave the taxonomy empty",
        )),
        None => Ok(()),
    }
}

/// Checks a note: `codes` are the NTE01 values the loop allows; NTE02 is 1 to 80 characters.
pub(crate) fn check_note(ctx: &str, n: Option<&Note>, codes: &[&str]) -> Result<(), WriteError> {
    let Some(n) = n else { return Ok(()) };
    v::code(ctx, "note.code", &n.code, codes)?;
    v::required(ctx, "note.text", &n.text, 80)
}

/// PWK01 attachment report type codes of the 837P TR3.
const REPORT_TYPES: &[&str] = &[
    "03", "04", "05", "06", "07", "08", "09", "10", "11", "13", "15", "21", "A3", "A4", "AM", "AS",
    "B2", "B3", "B4", "BR", "BS", "BT", "CB", "CK", "CT", "D2", "DA", "DB", "DG", "DJ", "DS", "EB",
    "HC", "HR", "I5", "IR", "LA", "M1", "MT", "NN", "OB", "OC", "OD", "OE", "OX", "OZ", "P4", "P5",
    "PE", "PN", "PO", "PQ", "PY", "PZ", "RB", "RR", "RT", "RX", "SG", "V5", "XP",
];

/// Checks PWK attachments: at most 10, known codes, and a control number exactly when the
/// paperwork is sent (every transmission code but AA, available on request at the provider).
pub(crate) fn check_attachments(ctx: &str, a: &[Attachment]) -> Result<(), WriteError> {
    if a.len() > 10 {
        return Err(invalid(ctx, "attachments", "at most 10 PWK segments"));
    }
    for x in a {
        v::code(ctx, "attachments.report_type", &x.report_type, REPORT_TYPES)?;
        v::code(
            ctx,
            "attachments.transmission",
            &x.transmission,
            &["AA", "BM", "EL", "EM", "FT", "FX"],
        )?;
        match (&x.control_number, x.transmission.as_str()) {
            (Some(_), "AA") => {
                return Err(invalid(
                    ctx,
                    "attachments.control_number",
                    "not sent when the paperwork is only available on request (AA)",
                ));
            }
            (Some(n), _) => {
                v::required(ctx, "attachments.control_number", n, 80)?;
                if n.chars().count() < 2 {
                    return Err(invalid(
                        ctx,
                        "attachments.control_number",
                        "must be 2 to 80 characters",
                    ));
                }
            }
            (None, "AA") => {}
            (None, _) => {
                return Err(invalid(
                    ctx,
                    "attachments.control_number",
                    "is required when the paperwork is sent (PWK02 other than AA)",
                ));
            }
        }
    }
    Ok(())
}

pub(crate) fn check_adjudications(
    ctx: &str,
    c: &ClaimCommon,
    adj: &[LineAdjudication],
) -> Result<(), WriteError> {
    for a in adj {
        if !c.other_payers.iter().any(|o| o.payer_id == a.payer_id) {
            return Err(invalid(
                ctx,
                "adjudications.payer_id",
                "must name one of the claim's other payers",
            ));
        }
        amount(ctx, "adjudications.paid_amount", a.paid_amount)?;
        check_procedure(ctx, "adjudications.procedure", &a.procedure)?;
        check_adjustments(ctx, &a.adjustments)?;
    }
    Ok(())
}

fn check_adjustments(ctx: &str, adj: &[Adjustment]) -> Result<(), WriteError> {
    for a in adj {
        v::code(
            ctx,
            "adjustments.group",
            &a.group,
            &["CO", "CR", "OA", "PI", "PR"],
        )?;
        v::required(ctx, "adjustments.reason", &a.reason, 5)?;
        amount(ctx, "adjustments.amount", a.amount)?;
    }
    Ok(())
}
