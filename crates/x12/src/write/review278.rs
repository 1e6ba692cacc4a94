//! The 278 (005010X217) writer: requests, inquiries (005010X215) and responses.

use super::claim837::{nm1, procedure, write_dtp};
use super::format::{d8, decimal, invalid, person_elements};
use super::{Element, WriteError, X12Writer, validate as v};
use crate::model::PartyName;
use crate::model::review::{
    ReviewDecision, ReviewEvent, ReviewKind, ReviewLevel, ReviewRejection, ReviewService,
    ServicesReview,
};
use crate::seg;

/// GS08 / ST03 of a 278 request or response.
pub const VERSION: &str = "005010X217";
/// GS08 / ST03 of a 278 inquiry.
pub const INQUIRY_VERSION: &str = "005010X215";

/// HCR01 action codes.
pub const ACTION_CODES: &[&str] = &["A1", "A2", "A3", "A4", "A6", "C", "CT", "NA"];
const CATEGORIES: &[&str] = &["AR", "HS", "SC"];
const CERTIFICATION_TYPES: &[&str] = &["1", "2", "3", "4", "I", "R", "S"];
const LEVELS_OF_SERVICE: &[&str] = &["03", "E", "U"];
/// Diagnoses one HI segment carries.
pub const MAX_DIAGNOSES: usize = 12;

/// Returns GS08 / ST03 for a 278 of `kind`.
pub fn version_of(kind: ReviewKind) -> &'static str {
    match kind {
        ReviewKind::Inquiry => INQUIRY_VERSION,
        ReviewKind::Request | ReviewKind::Response => VERSION,
    }
}

/// Writes one 278 set (ST..SE) with ST02 `control` into the writer's open group.
pub fn write_278(w: &mut X12Writer, r: &ServicesReview, control: u32) -> Result<(), WriteError> {
    check(r)?;
    w.begin_set("278", control, version_of(r.kind))?;
    let h = &r.header;
    let purpose = if r.kind == ReviewKind::Response {
        "11"
    } else {
        "13"
    };
    seg!(
        w,
        "BHT",
        "0007",
        purpose,
        &h.reference,
        d8(h.created_date),
        h.created_time.format("%H%M").to_string()
    )?;
    let payer = w.hl(None, "20", Some(true))?;
    nm1(
        w,
        "X3",
        &PartyName::organization(r.payer_name.clone()),
        "PI",
        &r.payer_id,
    )?;
    write_aaa(w, r, ReviewLevel::Payer, None)?;
    let requester = w.hl(Some(payer), "21", Some(true))?;
    nm1(w, "1P", &r.requester_name, "XX", &r.requester_npi)?;
    write_aaa(w, r, ReviewLevel::Requester, None)?;
    let subscriber = w.hl(Some(requester), "22", Some(r.event.is_some()))?;
    let [a, b, c, d, e] = person_elements(&r.subscriber_name);
    w.segment(
        "NM1",
        &[
            Element::from("IL"),
            a,
            b,
            c,
            d,
            e,
            (&r.subscriber_name.suffix).into(),
            "MI".into(),
            (&r.member_id).into(),
        ],
    )?;
    write_aaa(w, r, ReviewLevel::Subscriber, None)?;
    if let Some(birth) = r.subscriber_birth_date {
        seg!(w, "DMG", "D8", d8(birth))?;
    }
    if let Some(event) = &r.event {
        write_event(w, r, event, subscriber)?;
    }
    w.end_set()
}

fn write_event(
    w: &mut X12Writer,
    r: &ServicesReview,
    ev: &ReviewEvent,
    parent: u32,
) -> Result<(), WriteError> {
    let id = w.hl(Some(parent), "EV", Some(!ev.services.is_empty()))?;
    for t in &ev.traces {
        seg!(w, "TRN", &t.kind, &t.number, &t.originator)?;
    }
    write_aaa(w, r, ReviewLevel::Event, None)?;
    let place = ev
        .place_of_service
        .as_ref()
        .map(|p| Element::composite(&[p.as_str(), "B"]))
        .unwrap_or_else(|| Element::from(""));
    w.segment(
        "UM",
        &[
            (&ev.request_category).into(),
            (&ev.certification_type).into(),
            (&ev.service_type).into(),
            place,
            "".into(),
            (&ev.level_of_service).into(),
        ],
    )?;
    write_decision(w, ev.decision.as_ref(), false)?;
    if let Some(reference) = &ev.reference {
        seg!(w, "REF", "NT", reference)?;
    }
    if let Some(dates) = &ev.event_dates {
        write_dtp(w, "AAH", dates)?;
    }
    write_decision(w, ev.decision.as_ref(), true)?;
    if !ev.diagnoses.is_empty() {
        let codes: Vec<Element> = ev
            .diagnoses
            .iter()
            .enumerate()
            .map(|(i, code)| {
                let qualifier = if i == 0 { "ABK" } else { "ABF" };
                Element::composite(&[qualifier, code.as_str()])
            })
            .collect();
        w.segment("HI", &codes)?;
    }
    if let Some(notes) = &ev.notes {
        seg!(w, "MSG", notes)?;
    }
    if let Some(p) = &ev.provider {
        nm1(w, &p.entity, &p.name, "XX", &p.npi)?;
    }
    for (i, s) in ev.services.iter().enumerate() {
        write_service(w, r, s, i, id)?;
    }
    Ok(())
}

fn write_service(
    w: &mut X12Writer,
    r: &ServicesReview,
    s: &ReviewService,
    index: usize,
    parent: u32,
) -> Result<(), WriteError> {
    w.hl(Some(parent), "SS", Some(false))?;
    for t in &s.traces {
        seg!(w, "TRN", &t.kind, &t.number, &t.originator)?;
    }
    write_aaa(w, r, ReviewLevel::Service, Some(index))?;
    seg!(w, "UM", &s.request_category, &s.certification_type)?;
    write_decision(w, s.decision.as_ref(), false)?;
    if let Some(dates) = &s.dates {
        write_dtp(w, "472", dates)?;
    }
    write_decision(w, s.decision.as_ref(), true)?;
    let units = decimal(s.units);
    match &s.revenue_code {
        None => seg!(w, "SV1", procedure(&s.procedure), "", "UN", units)?,
        Some(revenue) => seg!(w, "SV2", revenue, procedure(&s.procedure), "", "UN", units)?,
    }
    if let Some(certified) = s.certified_units {
        seg!(w, "HSD", "FL", decimal(certified))?;
    }
    Ok(())
}

/// Writes the HCR (`dates` false) or the certification dates (`dates` true) of a decision.
fn write_decision(
    w: &mut X12Writer,
    decision: Option<&ReviewDecision>,
    dates: bool,
) -> Result<(), WriteError> {
    let Some(d) = decision else {
        return Ok(());
    };
    if !dates {
        return seg!(w, "HCR", &d.action, &d.authorization_number, &d.reason);
    }
    if let Some(c) = &d.certified {
        seg!(w, "DTP", "007", "D8", d8(c.from))?;
        if let Some(to) = c.to {
            seg!(w, "DTP", "036", "D8", d8(to))?;
        }
    }
    Ok(())
}

fn write_aaa(
    w: &mut X12Writer,
    r: &ServicesReview,
    level: ReviewLevel,
    service: Option<usize>,
) -> Result<(), WriteError> {
    let found = r
        .rejections
        .iter()
        .filter(|a| a.level == level && a.service == service);
    for a in found {
        let valid = if a.valid_request { "Y" } else { "N" };
        seg!(w, "AAA", valid, "", &a.reason, &a.follow_up)?;
    }
    Ok(())
}

fn check(r: &ServicesReview) -> Result<(), WriteError> {
    let ctx = "services review";
    v::required(ctx, "header.reference", &r.header.reference, 50)?;
    v::required(ctx, "payer_name", &r.payer_name, 60)?;
    v::required(ctx, "payer_id", &r.payer_id, 80)?;
    v::party(ctx, "requester_name", &r.requester_name)?;
    v::npi(ctx, "requester_npi", &r.requester_npi)?;
    v::person(ctx, "subscriber_name", &r.subscriber_name)?;
    v::required(ctx, "member_id", &r.member_id, 80)?;
    for a in &r.rejections {
        check_rejection(ctx, r, a)?;
    }
    let Some(ev) = &r.event else {
        if r.kind == ReviewKind::Response && !r.rejections.is_empty() {
            return Ok(());
        }
        return Err(invalid(
            ctx,
            "event",
            "is required (only a rejected response may leave it out)",
        ));
    };
    for t in &ev.traces {
        v::code(ctx, "event.traces.kind", &t.kind, &["1", "2"])?;
        v::required(ctx, "event.traces.number", &t.number, 50)?;
        if let Some(o) = &t.originator
            && o.len() != 10
        {
            return Err(invalid(
                ctx,
                "event.traces.originator",
                "must be 10 characters",
            ));
        }
    }
    v::code(
        ctx,
        "event.request_category",
        &ev.request_category,
        CATEGORIES,
    )?;
    v::code(
        ctx,
        "event.certification_type",
        &ev.certification_type,
        CERTIFICATION_TYPES,
    )?;
    v::required(ctx, "event.service_type", &ev.service_type, 2)?;
    v::optional(ctx, "event.place_of_service", &ev.place_of_service, 2)?;
    if let Some(level) = &ev.level_of_service {
        v::code(ctx, "event.level_of_service", level, LEVELS_OF_SERVICE)?;
    }
    v::optional(ctx, "event.reference", &ev.reference, 50)?;
    v::optional(ctx, "event.notes", &ev.notes, 264)?;
    if ev.diagnoses.len() > MAX_DIAGNOSES {
        return Err(invalid(ctx, "event.diagnoses", "at most 12 are allowed"));
    }
    for code in &ev.diagnoses {
        v::icd10(ctx, "event.diagnoses", code)?;
    }
    if let Some(p) = &ev.provider {
        v::code(
            ctx,
            "event.provider.entity",
            &p.entity,
            &["SJ", "FA", "71", "72", "DK", "DN", "77"],
        )?;
        v::party(ctx, "event.provider.name", &p.name)?;
        v::npi(ctx, "event.provider.npi", &p.npi)?;
    }
    check_decision(ctx, r.kind, "event.decision", ev.decision.as_ref())?;
    match r.kind {
        ReviewKind::Request if ev.services.is_empty() => {
            return Err(invalid(
                ctx,
                "event.services",
                "a request asks about at least one service",
            ));
        }
        ReviewKind::Inquiry if ev.reference.is_none() => {
            return Err(invalid(
                ctx,
                "event.reference",
                "an inquiry quotes the payer's reference (REF*NT)",
            ));
        }
        _ => {}
    }
    for s in &ev.services {
        v::code(
            ctx,
            "services.request_category",
            &s.request_category,
            CATEGORIES,
        )?;
        v::code(
            ctx,
            "services.certification_type",
            &s.certification_type,
            CERTIFICATION_TYPES,
        )?;
        v::required(
            ctx,
            "services.procedure.qualifier",
            &s.procedure.qualifier,
            2,
        )?;
        v::required(ctx, "services.procedure.code", &s.procedure.code, 48)?;
        if s.procedure.modifiers.len() > 4 || s.procedure.modifiers.iter().any(|m| m.len() != 2) {
            return Err(invalid(
                ctx,
                "services.procedure.modifiers",
                "at most 4 modifiers of 2 characters",
            ));
        }
        if let Some(rev) = &s.revenue_code {
            v::digits(ctx, "services.revenue_code", rev, 4)?;
        }
        if s.units <= rust_decimal::Decimal::ZERO {
            return Err(invalid(ctx, "services.units", "must be greater than zero"));
        }
        if s.certified_units.is_some_and(|u| u.is_sign_negative()) {
            return Err(invalid(
                ctx,
                "services.certified_units",
                "must not be negative",
            ));
        }
        check_decision(ctx, r.kind, "services.decision", s.decision.as_ref())?;
    }
    Ok(())
}

fn check_rejection(ctx: &str, r: &ServicesReview, a: &ReviewRejection) -> Result<(), WriteError> {
    if r.kind != ReviewKind::Response {
        return Err(invalid(ctx, "rejections", "only a response carries AAA"));
    }
    v::required(ctx, "rejections.reason", &a.reason, 2)?;
    v::optional(ctx, "rejections.follow_up", &a.follow_up, 1)?;
    let services = r.event.as_ref().map_or(0, |e| e.services.len());
    match (a.level, a.service) {
        (ReviewLevel::Service, Some(i)) if i < services => Ok(()),
        (ReviewLevel::Service, _) => Err(invalid(
            ctx,
            "rejections.service",
            "a service-level AAA names one of the services",
        )),
        (ReviewLevel::Event, None) if r.event.is_some() => Ok(()),
        (ReviewLevel::Event, _) => Err(invalid(
            ctx,
            "rejections.level",
            "an event-level AAA needs the event",
        )),
        (_, None) => Ok(()),
        (_, Some(_)) => Err(invalid(
            ctx,
            "rejections.service",
            "only a service-level AAA names a service",
        )),
    }
}

fn check_decision(
    ctx: &str,
    kind: ReviewKind,
    field: &'static str,
    d: Option<&ReviewDecision>,
) -> Result<(), WriteError> {
    let Some(d) = d else {
        return Ok(());
    };
    if kind != ReviewKind::Response {
        return Err(invalid(ctx, field, "only a response carries HCR"));
    }
    v::code(ctx, field, &d.action, ACTION_CODES)?;
    v::optional(ctx, field, &d.authorization_number, 50)?;
    v::optional(ctx, field, &d.reason, 2)?;
    if matches!(d.action.as_str(), "A1" | "A2" | "A6") && d.authorization_number.is_none() {
        return Err(invalid(
            ctx,
            field,
            "A1, A2 and A6 carry the certification number (HCR02)",
        ));
    }
    Ok(())
}
