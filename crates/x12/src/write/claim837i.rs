//! The 837I (005010X223A2) writer.

use rust_decimal::Decimal;

use super::claim837::{self as c, Hierarchy, Parties};
use super::format::{amount, d8, decimal, invalid};
use super::{Element, WriteError, X12Writer, validate as v};
use crate::model::claim::{InstitutionalClaim, InstitutionalClaimSet};
use crate::seg;

/// GS08 / ST03 of the 837I.
pub const VERSION: &str = "005010X223A2";

/// Writes one 837I transaction set (ST..SE) with ST02 `control` into the writer's open group.
///
/// Claims are validated first: nothing is written when any claim breaks a rule.
pub fn write_837i(
    w: &mut X12Writer,
    set: &InstitutionalClaimSet,
    control: u32,
) -> Result<(), WriteError> {
    if set.claims.is_empty() {
        return Err(invalid("set", "claims", "an 837 needs at least one claim"));
    }
    for (i, claim) in set.claims.iter().enumerate() {
        check(&format!("claim {}", i + 1), claim)?;
    }
    c::write_header(w, &set.header, control, VERSION)?;
    let mut h = Hierarchy::new();
    let mut prev: Option<Parties<'_>> = None;
    for (i, claim) in set.claims.iter().enumerate() {
        let parties = parties(claim);
        h.open(w, &parties, prev.as_ref())?;
        write_claim(w, &format!("claim {}", i + 1), claim)?;
        prev = Some(parties);
    }
    w.end_set()
}

fn parties(c: &InstitutionalClaim) -> Parties<'_> {
    Parties {
        billing: &c.billing_provider,
        subscriber: &c.subscriber,
        patient: c.patient.as_ref(),
        payer: &c.payer,
    }
}

fn check(ctx: &str, claim: &InstitutionalClaim) -> Result<(), WriteError> {
    c::check_parties(ctx, &parties(claim), true)?;
    let total: Decimal = claim.lines.iter().map(|l| l.charge).sum();
    c::check_common(ctx, &claim.claim, total, claim.lines.len(), 999)?;
    v::digits(ctx, "facility_type", &claim.facility_type, 2)?;
    if claim.statement_to < claim.statement_from {
        return Err(invalid(ctx, "statement_to", "ends before it starts"));
    }
    let poa = &claim.present_on_admission;
    if !poa.is_empty() {
        if poa.len() != claim.claim.diagnoses.len() {
            return Err(invalid(
                ctx,
                "present_on_admission",
                "needs one indicator per diagnosis",
            ));
        }
        if poa.iter().all(String::is_empty) {
            return Err(invalid(
                ctx,
                "present_on_admission",
                "leave it empty when nothing is reported",
            ));
        }
        for p in poa {
            if !p.is_empty() {
                v::code(ctx, "present_on_admission", p, &["N", "U", "W", "Y", "1"])?;
            }
        }
    }
    if let Some(a) = &claim.admitting_diagnosis {
        v::icd10(ctx, "admitting_diagnosis", a)?;
    }
    if claim.reasons_for_visit.len() > 3 {
        return Err(invalid(ctx, "reasons_for_visit", "at most 3 codes"));
    }
    for r in &claim.reasons_for_visit {
        v::icd10(ctx, "reasons_for_visit", r)?;
    }
    if claim.procedures.len() > 25 {
        return Err(invalid(
            ctx,
            "procedures",
            "at most 25 ICD-10-PCS procedures",
        ));
    }
    for p in &claim.procedures {
        if p.code.len() != 7
            || !p
                .code
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return Err(invalid(
                ctx,
                "procedures",
                "ICD-10-PCS codes are 7 letters or digits",
            ));
        }
    }
    v::optional(ctx, "admission_type", &claim.admission_type, 1)?;
    v::optional(ctx, "admission_source", &claim.admission_source, 1)?;
    v::digits(ctx, "patient_status", &claim.patient_status, 2)?;
    // Each of these HI segments repeats at most twice with 12 codes each.
    for (field, n) in [
        ("condition_codes", claim.condition_codes.len()),
        ("value_codes", claim.value_codes.len()),
        ("occurrences", claim.occurrences.len()),
        ("occurrence_spans", claim.occurrence_spans.len()),
    ] {
        if n > 24 {
            return Err(invalid(ctx, field, "at most 24 codes (two HI segments)"));
        }
    }
    for (code, amt) in &claim.value_codes {
        v::required(ctx, "value_codes", code, 2)?;
        amount(ctx, "value_codes", *amt)?;
    }
    for code in &claim.condition_codes {
        v::required(ctx, "condition_codes", code, 2)?;
    }
    for o in &claim.occurrences {
        v::required(ctx, "occurrences", &o.code, 2)?;
    }
    for s in &claim.occurrence_spans {
        v::required(ctx, "occurrence_spans", &s.code, 2)?;
        if s.to < s.from {
            return Err(invalid(ctx, "occurrence_spans", "ends before it starts"));
        }
    }
    if let Some(d) = &claim.drg {
        v::required(ctx, "drg", d, 30)?;
    }
    if let Some(a) = &claim.attending_provider {
        c::check_provider(ctx, "attending_provider", a, false, true)?;
    }
    if let Some(p) = &claim.operating_physician {
        c::check_provider(ctx, "operating_physician", p, true, false)?;
    }
    if let Some(p) = &claim.other_operating_physician {
        c::check_provider(ctx, "other_operating_physician", p, true, false)?;
    }
    for (j, l) in claim.lines.iter().enumerate() {
        let lctx = format!("{ctx} line {}", j + 1);
        v::digits(&lctx, "revenue_code", &l.revenue_code, 4)?;
        if let Some(p) = &l.procedure {
            c::check_procedure(&lctx, "procedure", p)?;
        }
        amount(&lctx, "charge", l.charge)?;
        if l.charge < Decimal::ZERO {
            return Err(invalid(&lctx, "charge", "must not be negative"));
        }
        v::code(&lctx, "unit_basis", &l.unit_basis, &["UN", "DA"])?;
        if l.units <= Decimal::ZERO {
            return Err(invalid(&lctx, "units", "must be positive"));
        }
        v::optional(&lctx, "line_control_number", &l.line_control_number, 50)?;
        c::check_drug(&lctx, l.drug.as_ref())?;
        c::check_adjudications(&lctx, &claim.claim, &l.adjudications)?;
    }
    Ok(())
}

fn write_claim(w: &mut X12Writer, ctx: &str, claim: &InstitutionalClaim) -> Result<(), WriteError> {
    let k = &claim.claim;
    w.segment(
        "CLM",
        &[
            (&k.patient_control_number).into(),
            amount(ctx, "total_charge", k.total_charge)?.into(),
            "".into(),
            "".into(),
            Element::composite(&[claim.facility_type.as_str(), "A", k.frequency.code()]),
            "".into(),
            (&k.assignment).into(),
            (&k.benefits_assigned).into(),
            (&k.release_of_information).into(),
        ],
    )?;
    // The TR3 allows only RD8 here, even for a one-day statement.
    let period = crate::model::DateRange {
        from: claim.statement_from,
        to: Some(claim.statement_to),
    };
    c::write_dtp(w, "434", &period)?;
    if let Some(a) = claim.admission_date {
        seg!(w, "DTP", "435", "D8", d8(a))?;
    }
    seg!(
        w,
        "CL1",
        &claim.admission_type,
        &claim.admission_source,
        &claim.patient_status
    )?;
    c::write_claim_refs(w, k)?;
    c::write_institutional_diagnoses(
        w,
        k,
        &claim.present_on_admission,
        claim.admitting_diagnosis.as_deref(),
        &claim.reasons_for_visit,
        claim.drg.as_deref(),
    )?;
    if let Some((first, rest)) = claim.procedures.split_first() {
        let comp = |q: &str, p: &crate::model::claim::IcdProcedure| {
            Element::composite(&[q, p.code.as_str(), "D8", d8(p.date).as_str()])
        };
        w.segment("HI", &[comp("BBR", first)])?;
        let others: Vec<Element> = rest.iter().map(|p| comp("BBQ", p)).collect();
        c::write_hi_chunks(w, &others)?;
    }
    // TR3 order after the procedures: occurrence spans (BI), occurrences (BH), values (BE),
    // conditions (BG).
    let spans: Vec<Element> = claim
        .occurrence_spans
        .iter()
        .map(|s| {
            let range = format!("{}-{}", d8(s.from), d8(s.to));
            Element::composite(&["BI", s.code.as_str(), "RD8", range.as_str()])
        })
        .collect();
    c::write_hi_chunks(w, &spans)?;
    let occurrences: Vec<Element> = claim
        .occurrences
        .iter()
        .map(|o| Element::composite(&["BH", o.code.as_str(), "D8", d8(o.date).as_str()]))
        .collect();
    c::write_hi_chunks(w, &occurrences)?;
    let values: Vec<Element> = claim
        .value_codes
        .iter()
        .map(|(code, amt)| {
            Ok(Element::Composite(vec![
                "BE".into(),
                code.clone(),
                String::new(),
                String::new(),
                amount(ctx, "value_codes", *amt)?,
            ]))
        })
        .collect::<Result<_, WriteError>>()?;
    c::write_hi_chunks(w, &values)?;
    let conditions: Vec<Element> = claim
        .condition_codes
        .iter()
        .map(|code| Element::composite(&["BG", code.as_str()]))
        .collect();
    c::write_hi_chunks(w, &conditions)?;
    if let Some(a) = &claim.attending_provider {
        c::write_provider(w, "71", a, Some("AT"))?;
    }
    if let Some(p) = &claim.operating_physician {
        c::write_provider(w, "72", p, None)?;
    }
    if let Some(p) = &claim.other_operating_physician {
        c::write_provider(w, "ZZ", p, None)?;
    }
    c::write_other_payers(w, ctx, k)?;
    for (j, l) in claim.lines.iter().enumerate() {
        let lctx = format!("{ctx} line {}", j + 1);
        seg!(w, "LX", (j + 1).to_string())?;
        w.segment(
            "SV2",
            &[
                (&l.revenue_code).into(),
                l.procedure.as_ref().map_or(Element::from(""), c::procedure),
                amount(&lctx, "charge", l.charge)?.into(),
                (&l.unit_basis).into(),
                decimal(l.units).into(),
            ],
        )?;
        if let Some(d) = &l.service_date {
            c::write_dtp(w, "472", d)?;
        }
        if let Some(n) = &l.line_control_number {
            seg!(w, "REF", "6R", n)?;
        }
        c::write_drug(w, l.drug.as_ref())?;
        c::write_line_adjudications(w, &lctx, &l.adjudications)?;
    }
    Ok(())
}
