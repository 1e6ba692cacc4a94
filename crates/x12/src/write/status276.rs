//! The 276 (005010X212) writer.

use super::claim837::{nm1, write_dtp};
use super::format::{amount, d8, invalid, opt_amount, person_elements};
use super::{Element, WriteError, X12Writer, validate as v};
use crate::model::PartyName;
use crate::model::claim_status::{ClaimStatusInquiry, StatusClaimQuery};
use crate::seg;

/// GS08 / ST03 of the 276.
pub const VERSION: &str = "005010X212";

/// Writes one 276 transaction set (ST..SE) with ST02 `control` into the writer's open group.
pub fn write_276(
    w: &mut X12Writer,
    q: &ClaimStatusInquiry,
    control: u32,
) -> Result<(), WriteError> {
    check(q)?;
    w.begin_set("276", control, VERSION)?;
    let h = &q.header;
    seg!(
        w,
        "BHT",
        "0010",
        "13",
        &h.reference,
        d8(h.created_date),
        h.created_time.format("%H%M").to_string()
    )?;
    let source = w.hl(None, "20", Some(true))?;
    nm1(
        w,
        "PR",
        &PartyName::organization(q.payer_name.clone()),
        "PI",
        &q.payer_id,
    )?;
    let receiver = w.hl(Some(source), "21", Some(true))?;
    nm1(w, "41", &q.receiver_name, "46", &q.receiver_id)?;
    let provider = w.hl(Some(receiver), "19", Some(true))?;
    nm1(w, "1P", &q.provider_name, "XX", &q.provider_npi)?;
    let subscriber = w.hl(Some(provider), "22", Some(q.dependent.is_some()))?;
    if q.dependent.is_none() {
        seg!(
            w,
            "DMG",
            "D8",
            q.subscriber_birth_date.map(d8),
            &q.subscriber_gender
        )?;
    }
    let [a, b, c, d, e] = person_elements(&q.subscriber_name);
    w.segment(
        "NM1",
        &[
            Element::from("IL"),
            a,
            b,
            c,
            d,
            e,
            (&q.subscriber_name.suffix).into(),
            "MI".into(),
            (&q.member_id).into(),
        ],
    )?;
    match &q.dependent {
        None => write_claims(w, &q.claims)?,
        Some(dep) => {
            w.hl(Some(subscriber), "23", None)?;
            seg!(w, "DMG", "D8", d8(dep.birth_date), &dep.gender)?;
            let [a, b, c, d, e] = person_elements(&dep.name);
            w.segment(
                "NM1",
                &[
                    Element::from("QC"),
                    a,
                    b,
                    c,
                    d,
                    e,
                    (&dep.name.suffix).into(),
                ],
            )?;
            write_claims(w, &q.claims)?;
        }
    }
    w.end_set()
}

fn write_claims(w: &mut X12Writer, claims: &[StatusClaimQuery]) -> Result<(), WriteError> {
    for c in claims {
        seg!(w, "TRN", "1", &c.trace_number)?;
        if let Some(n) = &c.payer_claim_number {
            seg!(w, "REF", "1K", n)?;
        }
        if let Some(n) = &c.bill_type {
            seg!(w, "REF", "BLT", n)?;
        }
        if let Some(n) = &c.patient_control_number {
            seg!(w, "REF", "EJ", n)?;
        }
        if let Some(t) = c.total_charge {
            seg!(w, "AMT", "T3", amount("claim", "total_charge", t)?)?;
        }
        if let Some(d) = &c.service_date {
            write_dtp(w, "472", d)?;
        }
    }
    Ok(())
}

fn check(q: &ClaimStatusInquiry) -> Result<(), WriteError> {
    let ctx = "inquiry";
    v::required(ctx, "header.reference", &q.header.reference, 50)?;
    v::required(ctx, "payer_name", &q.payer_name, 60)?;
    v::required(ctx, "payer_id", &q.payer_id, 80)?;
    v::party(ctx, "receiver_name", &q.receiver_name)?;
    v::required(ctx, "receiver_id", &q.receiver_id, 80)?;
    v::party(ctx, "provider_name", &q.provider_name)?;
    v::npi(ctx, "provider_npi", &q.provider_npi)?;
    v::person(ctx, "subscriber_name", &q.subscriber_name)?;
    v::required(ctx, "member_id", &q.member_id, 80)?;
    if q.dependent.is_none() && q.subscriber_birth_date.is_none() {
        return Err(invalid(
            ctx,
            "subscriber_birth_date",
            "is required when the subscriber is the patient",
        ));
    }
    if q.claims.is_empty() {
        return Err(invalid(ctx, "claims", "at least one claim is required"));
    }
    for (i, c) in q.claims.iter().enumerate() {
        let cctx = format!("claim {}", i + 1);
        v::required(&cctx, "trace_number", &c.trace_number, 50)?;
        v::optional(&cctx, "payer_claim_number", &c.payer_claim_number, 50)?;
        v::optional(
            &cctx,
            "patient_control_number",
            &c.patient_control_number,
            50,
        )?;
        opt_amount(&cctx, "total_charge", c.total_charge)?;
    }
    Ok(())
}
