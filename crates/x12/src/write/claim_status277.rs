//! The 277CA (005010X214) and 277 (005010X212) writers: what a payer answers to an 837 batch and
//! to a 276 inquiry. Both read back with [`crate::transactions::claim_status277::read_277`].

use rust_decimal::Decimal;

use super::claim837::{nm1, procedure, write_dtp};
use super::format::{amount, d8, decimal, invalid, opt_amount, person_elements};
use super::{Element, WriteError, X12Writer, validate as v};
use crate::model::claim_status::{
    AcknowledgedClaim, AnsweredClaim, ClaimAcknowledgment, ClaimStatusAnswer, LineStatus,
    StatusInfo,
};
use crate::model::{PartyName, PersonName};
use crate::seg;

/// GS08 / ST03 of the 277CA.
pub const ACK_VERSION: &str = "005010X214";

/// GS08 / ST03 of the 277 claim status response.
pub const STATUS_VERSION: &str = "005010X212";

/// Writes one 277CA transaction set (ST..SE) with ST02 `control` into the writer's open group.
pub fn write_277ca(
    w: &mut X12Writer,
    a: &ClaimAcknowledgment,
    control: u32,
) -> Result<(), WriteError> {
    check_ack(a)?;
    w.begin_set("277", control, ACK_VERSION)?;
    let h = &a.header;
    seg!(
        w,
        "BHT",
        "0085",
        "08",
        &h.reference,
        d8(h.created_date),
        h.created_time.format("%H%M").to_string(),
        "TH"
    )?;
    let source = w.hl(None, "20", Some(true))?;
    nm1(
        w,
        "PR",
        &PartyName::organization(a.payer_name.clone()),
        "PI",
        &a.payer_id,
    )?;
    seg!(w, "TRN", "1", &a.source_trace)?;
    seg!(w, "DTP", "050", "D8", d8(a.received))?;
    seg!(w, "DTP", "009", "D8", d8(a.processed))?;

    let receiver = w.hl(Some(source), "21", Some(!a.providers.is_empty()))?;
    nm1(w, "41", &a.receiver_name, "46", &a.receiver_id)?;
    seg!(w, "TRN", "2", &a.receiver_trace)?;
    write_stc(w, &a.receiver_status, "receiver_status")?;
    // Counts and amounts of accepted and rejected claims, as 2200B reports them.
    let claims = a.providers.iter().flat_map(|p| &p.claims);
    let (mut accepted, mut rejected) = (0u32, 0u32);
    let (mut accepted_amount, mut rejected_amount) = (Decimal::ZERO, Decimal::ZERO);
    for c in claims {
        let charge = c.status.charge.unwrap_or_default();
        if is_rejection(&c.status) {
            rejected += 1;
            rejected_amount += charge;
        } else {
            accepted += 1;
            accepted_amount += charge;
        }
    }
    if accepted > 0 {
        seg!(w, "QTY", "90", accepted.to_string())?;
    }
    if rejected > 0 {
        seg!(w, "QTY", "AA", rejected.to_string())?;
    }
    if accepted > 0 {
        seg!(
            w,
            "AMT",
            "YU",
            amount("batch", "accepted_amount", accepted_amount)?
        )?;
    }
    if rejected > 0 {
        seg!(
            w,
            "AMT",
            "YY",
            amount("batch", "rejected_amount", rejected_amount)?
        )?;
    }

    for p in &a.providers {
        let provider = w.hl(Some(receiver), "19", Some(!p.claims.is_empty()))?;
        nm1(w, "85", &p.name, "XX", &p.npi)?;
        seg!(w, "TRN", "1", &p.trace)?;
        // 2200C STC: the batch status again, with this provider's total charge (STC02 is not
        // used at this level).
        let total: Decimal = p.claims.iter().filter_map(|c| c.status.charge).sum();
        let provider_status = StatusInfo {
            effective_date: None,
            charge: Some(total),
            message: None,
            ..a.receiver_status.clone()
        };
        write_stc(w, &provider_status, "receiver_status")?;
        for c in &p.claims {
            w.hl(Some(provider), "PT", None)?;
            patient_nm1(w, &c.patient_name, &c.member_id)?;
            write_ack_claim(w, c)?;
        }
    }
    w.end_set()
}

fn patient_nm1(w: &mut X12Writer, name: &PersonName, member_id: &str) -> Result<(), WriteError> {
    let [a, b, c, d, e] = person_elements(name);
    w.segment(
        "NM1",
        &[
            Element::from("QC"),
            a,
            b,
            c,
            d,
            e,
            (&name.suffix).into(),
            "MI".into(),
            member_id.into(),
        ],
    )
}

fn write_ack_claim(w: &mut X12Writer, c: &AcknowledgedClaim) -> Result<(), WriteError> {
    seg!(w, "TRN", "2", &c.patient_control_number)?;
    write_stc(w, &c.status, "status")?;
    if let Some(n) = &c.payer_claim_number {
        seg!(w, "REF", "1K", n)?;
    }
    if let Some(n) = &c.bill_type {
        seg!(w, "REF", "BLT", n)?;
    }
    write_dtp(w, "472", &c.service_date)?;
    write_lines(w, &c.lines)
}

/// Writes one 277 claim status response set (ST..SE) with ST02 `control` into the open group.
pub fn write_277(w: &mut X12Writer, a: &ClaimStatusAnswer, control: u32) -> Result<(), WriteError> {
    check_answer(a)?;
    w.begin_set("277", control, STATUS_VERSION)?;
    let h = &a.header;
    seg!(
        w,
        "BHT",
        "0010",
        "08",
        &h.reference,
        d8(h.created_date),
        h.created_time.format("%H%M").to_string(),
        "DG"
    )?;
    let source = w.hl(None, "20", Some(true))?;
    nm1(
        w,
        "PR",
        &PartyName::organization(a.payer_name.clone()),
        "PI",
        &a.payer_id,
    )?;
    let receiver = w.hl(Some(source), "21", Some(true))?;
    nm1(w, "41", &a.receiver_name, "46", &a.receiver_id)?;
    let provider = w.hl(Some(receiver), "19", Some(true))?;
    nm1(w, "1P", &a.provider_name, "XX", &a.provider_npi)?;
    let subscriber = w.hl(Some(provider), "22", Some(a.dependent.is_some()))?;
    let [n2, n3, n4, n5, n6] = person_elements(&a.subscriber_name);
    w.segment(
        "NM1",
        &[
            Element::from("IL"),
            n2,
            n3,
            n4,
            n5,
            n6,
            (&a.subscriber_name.suffix).into(),
            "MI".into(),
            (&a.member_id).into(),
        ],
    )?;
    if let Some(dep) = &a.dependent {
        w.hl(Some(subscriber), "23", None)?;
        let [n2, n3, n4, n5, n6] = person_elements(dep);
        w.segment(
            "NM1",
            &[
                Element::from("QC"),
                n2,
                n3,
                n4,
                n5,
                n6,
                (&dep.suffix).into(),
            ],
        )?;
    }
    for c in &a.claims {
        write_answered_claim(w, c)?;
    }
    w.end_set()
}

fn write_answered_claim(w: &mut X12Writer, c: &AnsweredClaim) -> Result<(), WriteError> {
    seg!(w, "TRN", "2", &c.trace_number)?;
    for s in &c.statuses {
        write_stc(w, s, "statuses")?;
    }
    if let Some(n) = &c.payer_claim_number {
        seg!(w, "REF", "1K", n)?;
    }
    if let Some(n) = &c.bill_type {
        seg!(w, "REF", "BLT", n)?;
    }
    if let Some(n) = &c.patient_control_number {
        seg!(w, "REF", "EJ", n)?;
    }
    if let Some(d) = &c.service_date {
        write_dtp(w, "472", d)?;
    }
    write_lines(w, &c.lines)
}

fn write_lines(w: &mut X12Writer, lines: &[LineStatus]) -> Result<(), WriteError> {
    for (i, l) in lines.iter().enumerate() {
        let ctx = format!("line {}", i + 1);
        seg!(
            w,
            "SVC",
            procedure(&l.procedure),
            opt_amount(&ctx, "charge", l.charge)?,
            opt_amount(&ctx, "paid", l.paid)?,
            &l.revenue_code,
            "",
            "",
            l.units.map(decimal).unwrap_or_default()
        )?;
        for s in &l.statuses {
            write_stc(w, s, "line status")?;
        }
        if let Some(n) = &l.line_control_number {
            seg!(w, "REF", "FJ", n)?;
        }
        if let Some(d) = &l.service_date {
            write_dtp(w, "472", d)?;
        }
    }
    Ok(())
}

/// Writes STC: STC01 (first code), STC02 date, STC03 action, STC04 charge, STC05 paid, STC10 and
/// STC11 (further codes), STC12 free text.
fn write_stc(w: &mut X12Writer, s: &StatusInfo, field: &'static str) -> Result<(), WriteError> {
    let composite = |i: usize| -> Element {
        match s.codes.get(i) {
            None => "".into(),
            Some(c) => {
                let mut parts = vec![c.category.clone(), c.status.clone()];
                if let Some(e) = &c.entity {
                    parts.push(e.clone());
                }
                Element::composite(&parts)
            }
        }
    };
    let ctx = "status";
    w.segment(
        "STC",
        &[
            composite(0),
            s.effective_date.map(d8).unwrap_or_default().into(),
            (&s.action).into(),
            opt_amount(ctx, field, s.charge)?.into(),
            opt_amount(ctx, field, s.paid)?.into(),
            "".into(),
            "".into(),
            "".into(),
            "".into(),
            composite(1),
            composite(2),
            (&s.message).into(),
        ],
    )
}

/// Tells whether an STC reports a rejection (its first category is A3, A4, A6, A7 or A8).
fn is_rejection(s: &StatusInfo) -> bool {
    s.codes.first().is_some_and(|c| c.is_rejected())
}

fn check_stc(ctx: &str, field: &'static str, s: &StatusInfo) -> Result<(), WriteError> {
    if s.codes.is_empty() || s.codes.len() > 3 {
        return Err(invalid(ctx, field, "must carry 1 to 3 status codes"));
    }
    for c in &s.codes {
        v::required(ctx, field, &c.category, 3)?;
        v::required(ctx, field, &c.status, 30)?;
        v::optional(ctx, field, &c.entity, 3)?;
    }
    v::optional(ctx, field, &s.message, 264)?;
    opt_amount(ctx, field, s.charge)?;
    opt_amount(ctx, field, s.paid)?;
    Ok(())
}

fn check_lines(ctx: &str, lines: &[LineStatus]) -> Result<(), WriteError> {
    for (i, l) in lines.iter().enumerate() {
        let lctx = format!("{ctx} line {}", i + 1);
        v::required(&lctx, "procedure.code", &l.procedure.code, 48)?;
        v::required(&lctx, "procedure.qualifier", &l.procedure.qualifier, 2)?;
        if l.charge.is_none() {
            return Err(invalid(&lctx, "charge", "is required (SVC02)"));
        }
        for s in &l.statuses {
            check_stc(&lctx, "statuses", s)?;
        }
        v::optional(&lctx, "line_control_number", &l.line_control_number, 50)?;
    }
    Ok(())
}

fn check_ack(a: &ClaimAcknowledgment) -> Result<(), WriteError> {
    let ctx = "acknowledgment";
    v::required(ctx, "header.reference", &a.header.reference, 50)?;
    v::required(ctx, "payer_name", &a.payer_name, 60)?;
    v::required(ctx, "payer_id", &a.payer_id, 80)?;
    v::required(ctx, "source_trace", &a.source_trace, 50)?;
    v::party(ctx, "receiver_name", &a.receiver_name)?;
    v::required(ctx, "receiver_id", &a.receiver_id, 80)?;
    v::required(ctx, "receiver_trace", &a.receiver_trace, 50)?;
    check_stc(ctx, "receiver_status", &a.receiver_status)?;
    if a.receiver_status.action.is_none() {
        return Err(invalid(
            ctx,
            "receiver_status",
            "STC03 action code is required",
        ));
    }
    for (pi, p) in a.providers.iter().enumerate() {
        let pctx = format!("provider {}", pi + 1);
        v::party(&pctx, "name", &p.name)?;
        v::required(&pctx, "npi", &p.npi, 80)?;
        v::required(&pctx, "trace", &p.trace, 50)?;
        for (ci, c) in p.claims.iter().enumerate() {
            let cctx = format!("{pctx} claim {}", ci + 1);
            v::person(&cctx, "patient_name", &c.patient_name)?;
            v::required(&cctx, "member_id", &c.member_id, 80)?;
            v::required(
                &cctx,
                "patient_control_number",
                &c.patient_control_number,
                50,
            )?;
            check_stc(&cctx, "status", &c.status)?;
            if c.status.charge.is_none() {
                return Err(invalid(&cctx, "status", "STC04 total charge is required"));
            }
            if c.status.action.is_none() {
                return Err(invalid(&cctx, "status", "STC03 action code is required"));
            }
            v::optional(&cctx, "payer_claim_number", &c.payer_claim_number, 50)?;
            v::optional(&cctx, "bill_type", &c.bill_type, 50)?;
            check_lines(&cctx, &c.lines)?;
        }
    }
    Ok(())
}

fn check_answer(a: &ClaimStatusAnswer) -> Result<(), WriteError> {
    let ctx = "answer";
    v::required(ctx, "header.reference", &a.header.reference, 50)?;
    v::required(ctx, "payer_name", &a.payer_name, 60)?;
    v::required(ctx, "payer_id", &a.payer_id, 80)?;
    v::party(ctx, "receiver_name", &a.receiver_name)?;
    v::required(ctx, "receiver_id", &a.receiver_id, 80)?;
    v::party(ctx, "provider_name", &a.provider_name)?;
    v::required(ctx, "provider_npi", &a.provider_npi, 80)?;
    v::person(ctx, "subscriber_name", &a.subscriber_name)?;
    v::required(ctx, "member_id", &a.member_id, 80)?;
    if let Some(d) = &a.dependent {
        v::person(ctx, "dependent", d)?;
    }
    if a.claims.is_empty() {
        return Err(invalid(ctx, "claims", "at least one claim is required"));
    }
    for (i, c) in a.claims.iter().enumerate() {
        let cctx = format!("claim {}", i + 1);
        v::required(&cctx, "trace_number", &c.trace_number, 50)?;
        let Some(first) = c.statuses.first() else {
            return Err(invalid(&cctx, "statuses", "at least one STC is required"));
        };
        if first.charge.is_none() {
            return Err(invalid(&cctx, "statuses", "STC04 total charge is required"));
        }
        for s in &c.statuses {
            check_stc(&cctx, "statuses", s)?;
        }
        v::optional(&cctx, "payer_claim_number", &c.payer_claim_number, 50)?;
        v::optional(&cctx, "bill_type", &c.bill_type, 50)?;
        v::optional(
            &cctx,
            "patient_control_number",
            &c.patient_control_number,
            50,
        )?;
        check_lines(&cctx, &c.lines)?;
    }
    Ok(())
}
