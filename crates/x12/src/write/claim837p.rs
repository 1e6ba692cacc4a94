//! The 837P (005010X222A1) writer.

use rust_decimal::Decimal;

use super::claim837::{self as c, Hierarchy, Parties};
use super::claim837p_loops as loops;
use super::format::{amount, decimal, invalid};
use super::{Element, WriteError, X12Writer, validate as v};
use crate::model::claim::{ProfessionalClaim, ProfessionalClaimSet};
use crate::seg;

/// GS08 / ST03 of the 837P.
pub const VERSION: &str = "005010X222A1";

/// Writes one 837P transaction set (ST..SE) with ST02 `control` into the writer's open group.
///
/// Claims are validated first: nothing is written when any claim breaks a rule.
pub fn write_837p(
    w: &mut X12Writer,
    set: &ProfessionalClaimSet,
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

fn parties(c: &ProfessionalClaim) -> Parties<'_> {
    Parties {
        billing: &c.billing_provider,
        subscriber: &c.subscriber,
        patient: c.patient.as_ref(),
        payer: &c.payer,
    }
}

fn check(ctx: &str, claim: &ProfessionalClaim) -> Result<(), WriteError> {
    c::check_parties(ctx, &parties(claim), false)?;
    let total: Decimal = claim.lines.iter().map(|l| l.charge).sum();
    c::check_common(ctx, &claim.claim, total, claim.lines.len(), 50)?;
    v::digits(ctx, "place_of_service", &claim.place_of_service, 2)?;
    if let Some(p) = claim.patient_paid {
        amount(ctx, "patient_paid", p)?;
        if p < Decimal::ZERO {
            return Err(invalid(ctx, "patient_paid", "must not be negative"));
        }
    }
    if let Some(r) = &claim.referring_provider {
        c::check_provider(ctx, "referring_provider", r, true, false)?;
    }
    if let Some(f) = &claim.service_facility {
        v::required(ctx, "service_facility.name", &f.name, 60)?;
        if let Some(n) = &f.npi {
            v::npi(ctx, "service_facility.npi", n)?;
        }
        v::address(ctx, &f.address)?;
        if f.address.postal_code.len() != 9 {
            return Err(invalid(
                ctx,
                "service_facility.address.postal_code",
                "the TR3 requires the 9-digit ZIP+4",
            ));
        }
    }
    if let Some(r) = &claim.rendering_provider {
        c::check_provider(ctx, "rendering_provider", r, false, true)?;
    }
    loops::check_accident(ctx, claim.accident.as_ref())?;
    c::check_attachments(ctx, &claim.attachments)?;
    c::check_note(
        ctx,
        claim.note.as_ref(),
        &["ADD", "CER", "DCP", "DGN", "TPO"],
    )?;
    loops::check_ambulance(
        ctx,
        claim.ambulance_transport.as_ref(),
        claim.ambulance_pickup.as_ref(),
        claim.ambulance_dropoff.as_ref(),
    )?;
    let n_dx = claim.claim.diagnoses.len();
    for (j, l) in claim.lines.iter().enumerate() {
        let lctx = format!("{ctx} line {}", j + 1);
        c::check_procedure(&lctx, "procedure", &l.procedure)?;
        amount(&lctx, "charge", l.charge)?;
        if l.charge < Decimal::ZERO {
            return Err(invalid(&lctx, "charge", "must not be negative"));
        }
        v::code(&lctx, "unit_basis", &l.unit_basis, &["UN", "MJ"])?;
        if l.units <= Decimal::ZERO {
            return Err(invalid(&lctx, "units", "must be positive"));
        }
        if let Some(p) = &l.place_of_service {
            v::digits(&lctx, "place_of_service", p, 2)?;
        }
        if l.diagnosis_pointers.is_empty() || l.diagnosis_pointers.len() > 4 {
            return Err(invalid(
                &lctx,
                "diagnosis_pointers",
                "must hold 1 to 4 pointers",
            ));
        }
        if l.diagnosis_pointers
            .iter()
            .any(|&p| p == 0 || usize::from(p) > n_dx)
        {
            return Err(invalid(
                &lctx,
                "diagnosis_pointers",
                "must point at one of the claim's diagnoses (1-based)",
            ));
        }
        v::optional(&lctx, "line_control_number", &l.line_control_number, 50)?;
        v::optional(&lctx, "prior_authorization", &l.prior_authorization, 50)?;
        c::check_drug(&lctx, l.drug.as_ref())?;
        c::check_attachments(&lctx, &l.attachments)?;
        // TPO notes have their own 2400 NTE, meant for repricers, which the model does not hold.
        c::check_note(&lctx, l.note.as_ref(), &["ADD", "DCP"])?;
        loops::check_line_providers(&lctx, &l.providers)?;
        c::check_adjudications(&lctx, &claim.claim, &l.adjudications)?;
    }
    Ok(())
}

fn write_claim(w: &mut X12Writer, ctx: &str, claim: &ProfessionalClaim) -> Result<(), WriteError> {
    let k = &claim.claim;
    w.segment(
        "CLM",
        &[
            (&k.patient_control_number).into(),
            amount(ctx, "total_charge", k.total_charge)?.into(),
            "".into(),
            "".into(),
            Element::composite(&[claim.place_of_service.as_str(), "B", k.frequency.code()]),
            (if claim.provider_signature { "Y" } else { "N" }).into(),
            (&k.assignment).into(),
            (&k.benefits_assigned).into(),
            (&k.release_of_information).into(),
            "".into(),
            loops::related_causes(claim.accident.as_ref()),
        ],
    )?;
    // TR3 order in 2300: DTP (accident), PWK, AMT, REF, NTE, CR1, HI, then the 2310 loops.
    loops::write_accident_date(w, claim.accident.as_ref())?;
    c::write_attachments(w, &claim.attachments)?;
    if let Some(p) = claim.patient_paid {
        seg!(w, "AMT", "F5", amount(ctx, "patient_paid", p)?)?;
    }
    c::write_claim_refs(w, k)?;
    c::write_note(w, claim.note.as_ref())?;
    loops::write_transport(w, claim.ambulance_transport.as_ref())?;
    c::write_diagnoses(w, k, &[])?;
    if let Some(r) = &claim.referring_provider {
        c::write_provider(w, "DN", r, None)?;
    }
    if let Some(r) = &claim.rendering_provider {
        c::write_provider(w, "82", r, Some("PE"))?;
    }
    if let Some(f) = &claim.service_facility {
        let name = crate::model::PartyName::organization(f.name.clone());
        match &f.npi {
            Some(npi) => c::nm1(w, "77", &name, "XX", npi)?,
            None => c::nm1(w, "77", &name, "", "")?,
        }
        c::n3n4(w, &f.address)?;
    }
    loops::write_locations(
        w,
        claim.ambulance_pickup.as_ref(),
        claim.ambulance_dropoff.as_ref(),
    )?;
    c::write_other_payers(w, ctx, k)?;
    for (j, l) in claim.lines.iter().enumerate() {
        let lctx = format!("{ctx} line {}", j + 1);
        seg!(w, "LX", (j + 1).to_string())?;
        let pointers: Vec<String> = l.diagnosis_pointers.iter().map(u8::to_string).collect();
        w.segment(
            "SV1",
            &[
                c::procedure(&l.procedure),
                amount(&lctx, "charge", l.charge)?.into(),
                (&l.unit_basis).into(),
                decimal(l.units).into(),
                (&l.place_of_service).into(),
                "".into(),
                Element::Composite(pointers),
            ],
        )?;
        // TR3 order in 2400: PWK, DTP, REF, NTE, then loops 2410, 2420A..F and 2430.
        c::write_attachments(w, &l.attachments)?;
        c::write_dtp(w, "472", &l.service_date)?;
        // 2400 REF order: G1 (prior authorization) before 6R (line item control number).
        if let Some(n) = &l.prior_authorization {
            seg!(w, "REF", "G1", n)?;
        }
        if let Some(n) = &l.line_control_number {
            seg!(w, "REF", "6R", n)?;
        }
        c::write_note(w, l.note.as_ref())?;
        c::write_drug(w, l.drug.as_ref())?;
        loops::write_line_providers(w, &l.providers)?;
        c::write_line_adjudications(w, &lctx, &l.adjudications)?;
    }
    Ok(())
}
