//! The 270 (005010X279A1) writer.

use super::claim837::{nm1, write_dtp};
use super::format::{d8, invalid, person_elements};
use super::{Element, WriteError, X12Writer, validate as v};
use crate::model::PartyName;
use crate::model::eligibility::EligibilityInquiry;
use crate::seg;

/// GS08 / ST03 of the 270.
pub const VERSION: &str = "005010X279A1";

/// Writes one 270 transaction set (ST..SE) with ST02 `control` into the writer's open group.
pub fn write_270(
    w: &mut X12Writer,
    q: &EligibilityInquiry,
    control: u32,
) -> Result<(), WriteError> {
    check(q)?;
    w.begin_set("270", control, VERSION)?;
    let h = &q.header;
    seg!(
        w,
        "BHT",
        "0022",
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
    nm1(w, "1P", &q.provider_name, "XX", &q.provider_npi)?;
    let subscriber = w.hl(Some(receiver), "22", Some(q.dependent.is_some()))?;
    seg!(
        w,
        "TRN",
        &q.trace.kind,
        &q.trace.number,
        &q.trace.originator
    )?;
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
    if q.subscriber_birth_date.is_some() || q.subscriber_gender.is_some() {
        seg!(
            w,
            "DMG",
            "D8",
            q.subscriber_birth_date.map(d8),
            &q.subscriber_gender
        )?;
    }
    let eq = Element::Repeated(q.service_types.clone());
    match &q.dependent {
        None => {
            if let Some(d) = &q.service_date {
                write_dtp(w, "291", d)?;
            }
            w.segment("EQ", &[eq])?;
        }
        Some(dep) => {
            w.hl(Some(subscriber), "23", Some(false))?;
            let [a, b, c, d, e] = person_elements(&dep.name);
            w.segment(
                "NM1",
                &[
                    Element::from("03"),
                    a,
                    b,
                    c,
                    d,
                    e,
                    (&dep.name.suffix).into(),
                ],
            )?;
            seg!(w, "DMG", "D8", d8(dep.birth_date), &dep.gender)?;
            if let Some(d) = &q.service_date {
                write_dtp(w, "291", d)?;
            }
            w.segment("EQ", &[eq])?;
        }
    }
    w.end_set()
}

fn check(q: &EligibilityInquiry) -> Result<(), WriteError> {
    let ctx = "inquiry";
    v::required(ctx, "header.reference", &q.header.reference, 50)?;
    v::required(ctx, "payer_name", &q.payer_name, 60)?;
    v::required(ctx, "payer_id", &q.payer_id, 80)?;
    v::party(ctx, "provider_name", &q.provider_name)?;
    v::npi(ctx, "provider_npi", &q.provider_npi)?;
    v::code(ctx, "trace.kind", &q.trace.kind, &["1"])?;
    v::required(ctx, "trace.number", &q.trace.number, 50)?;
    if let Some(o) = &q.trace.originator
        && o.len() != 10
    {
        return Err(invalid(ctx, "trace.originator", "must be 10 characters"));
    }
    v::person(ctx, "subscriber_name", &q.subscriber_name)?;
    v::required(ctx, "member_id", &q.member_id, 80)?;
    if let Some(g) = &q.subscriber_gender {
        v::gender(ctx, "subscriber_gender", g)?;
    }
    if let Some(d) = &q.dependent {
        v::person(ctx, "dependent.name", &d.name)?;
        if let Some(g) = &d.gender {
            v::gender(ctx, "dependent.gender", g)?;
        }
    }
    if q.service_types.is_empty() || q.service_types.len() > 99 {
        return Err(invalid(
            ctx,
            "service_types",
            "must hold 1 to 99 service type codes",
        ));
    }
    for s in &q.service_types {
        if s.is_empty() || s.len() > 2 {
            return Err(invalid(ctx, "service_types", "codes are 1 or 2 characters"));
        }
    }
    Ok(())
}
