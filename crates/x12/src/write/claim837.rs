//! Parts shared by the 837P and 837I writers: header loops, the HL hierarchy, subscriber,
//! payer, patient and COB (2320/2330/2430) loops, and the shared claim checks.

use rust_decimal::Decimal;

use super::format::{amount, d8, dtp, invalid, nm1_name, opt_amount, person_elements, suffix};
use super::{Element, WriteError, X12Writer, validate as v};
use crate::model::Address;
use crate::model::claim::{
    Adjustment, BillingProvider, ClaimCommon, ClaimFrequency, ClaimSetHeader, LineAdjudication,
    OtherPayer, Patient, Payer, Procedure, Subscriber, TaxId,
};
use crate::seg;

/// The parts of a claim that decide its place in the HL hierarchy.
pub(crate) struct Parties<'a> {
    pub billing: &'a BillingProvider,
    pub subscriber: &'a Subscriber,
    pub patient: Option<&'a Patient>,
    pub payer: &'a Payer,
}

impl Parties<'_> {
    fn same_subscriber(&self, other: &Parties<'_>) -> bool {
        self.subscriber == other.subscriber
            && self.patient == other.patient
            && self.payer == other.payer
    }
}

/// Writes ST, BHT, 1000A and 1000B.
pub(crate) fn write_header(
    w: &mut X12Writer,
    h: &ClaimSetHeader,
    control: u32,
    version: &str,
) -> Result<(), WriteError> {
    let ctx = "header";
    v::required(ctx, "transaction.reference", &h.transaction.reference, 50)?;
    v::party(ctx, "submitter.name", &h.submitter.name)?;
    v::required(ctx, "submitter.id", &h.submitter.id, 80)?;
    v::required(ctx, "submitter.contact_name", &h.submitter.contact_name, 60)?;
    v::required(ctx, "submitter.phone", &h.submitter.phone, 256)?;
    v::required(ctx, "receiver.name", &h.receiver.name, 60)?;
    v::required(ctx, "receiver.id", &h.receiver.id, 80)?;
    w.begin_set("837", control, version)?;
    let t = &h.transaction;
    seg!(
        w,
        "BHT",
        "0019",
        "00",
        &t.reference,
        d8(t.created_date),
        t.created_time.format("%H%M").to_string(),
        "CH"
    )?;
    nm1(w, "41", &h.submitter.name, "46", &h.submitter.id)?;
    seg!(
        w,
        "PER",
        "IC",
        &h.submitter.contact_name,
        "TE",
        &h.submitter.phone
    )?;
    nm1(
        w,
        "40",
        &crate::model::PartyName::organization(h.receiver.name.clone()),
        "46",
        &h.receiver.id,
    )
}

/// Writes an NM1 with an id.
pub(crate) fn nm1(
    w: &mut X12Writer,
    entity: &str,
    name: &crate::model::PartyName,
    qualifier: &str,
    id: &str,
) -> Result<(), WriteError> {
    let [a, b, c, d, e] = nm1_name(name);
    w.segment(
        "NM1",
        &[
            entity.into(),
            a,
            b,
            c,
            d,
            e,
            suffix(name),
            qualifier.into(),
            id.into(),
        ],
    )
}

pub(crate) fn n3n4(w: &mut X12Writer, a: &Address) -> Result<(), WriteError> {
    seg!(w, "N3", &a.line1, &a.line2)?;
    seg!(w, "N4", &a.city, &a.state, &a.postal_code)
}

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

/// Writes the HL 20 / HL 22 / HL 23 levels a claim needs, reusing open levels when the claim
/// shares its billing provider (and subscriber) with the previous claim.
pub(crate) struct Hierarchy {
    billing_hl: Option<u32>,
}

impl Hierarchy {
    pub(crate) fn new() -> Self {
        Self { billing_hl: None }
    }

    /// Opens the levels for `cur`; `prev` is the previous claim's parties.
    pub(crate) fn open(
        &mut self,
        w: &mut X12Writer,
        cur: &Parties<'_>,
        prev: Option<&Parties<'_>>,
    ) -> Result<bool, WriteError> {
        let new_billing = prev.is_none_or(|p| p.billing != cur.billing);
        let new_subscriber = new_billing || prev.is_none_or(|p| !p.same_subscriber(cur));
        if new_billing {
            let id = w.hl(None, "20", Some(true))?;
            self.billing_hl = Some(id);
            write_billing(w, cur.billing)?;
        }
        if new_subscriber {
            let parent = self.billing_hl;
            let sub_id = w.hl(parent, "22", Some(cur.patient.is_some()))?;
            write_subscriber(w, cur.subscriber, cur.patient.is_none())?;
            write_payer(w, cur.payer)?;
            if let Some(pt) = cur.patient {
                w.hl(Some(sub_id), "23", Some(false))?;
                seg!(w, "PAT", &pt.relationship)?;
                let [a, b, c, d, e] = person_elements(&pt.name);
                w.segment(
                    "NM1",
                    &[Element::from("QC"), a, b, c, d, e, (&pt.name.suffix).into()],
                )?;
                n3n4(w, &pt.address)?;
                seg!(w, "DMG", "D8", d8(pt.birth_date), &pt.gender)?;
            }
        }
        Ok(new_subscriber)
    }
}

fn write_billing(w: &mut X12Writer, b: &BillingProvider) -> Result<(), WriteError> {
    if let Some(t) = &b.taxonomy {
        seg!(w, "PRV", "BI", "PXC", t)?;
    }
    nm1(w, "85", &b.name, "XX", &b.npi)?;
    n3n4(w, &b.address)?;
    match &b.tax_id {
        TaxId::Ein(t) => seg!(w, "REF", "EI", t),
        TaxId::Ssn(t) => seg!(w, "REF", "SY", t),
    }
}

fn write_subscriber(w: &mut X12Writer, s: &Subscriber, is_patient: bool) -> Result<(), WriteError> {
    let rel = if is_patient { "18" } else { "" };
    seg!(
        w,
        "SBR",
        &s.payer_responsibility,
        rel,
        &s.group_number,
        &s.group_name,
        "",
        "",
        "",
        "",
        &s.claim_filing_indicator
    )?;
    let [a, b, c, d, e] = person_elements(&s.name);
    w.segment(
        "NM1",
        &[
            Element::from("IL"),
            a,
            b,
            c,
            d,
            e,
            (&s.name.suffix).into(),
            "MI".into(),
            (&s.member_id).into(),
        ],
    )?;
    if let Some(addr) = &s.address {
        n3n4(w, addr)?;
    }
    if let Some(dob) = s.birth_date {
        seg!(w, "DMG", "D8", d8(dob), &s.gender)?;
    }
    Ok(())
}

fn write_payer(w: &mut X12Writer, p: &Payer) -> Result<(), WriteError> {
    nm1(
        w,
        "PR",
        &crate::model::PartyName::organization(p.name.clone()),
        "PI",
        &p.id,
    )?;
    if let Some(a) = &p.address {
        n3n4(w, a)?;
    }
    Ok(())
}

/// Writes the REF segments of loop 2300 that both guides share, in TR3 order.
pub(crate) fn write_claim_refs(w: &mut X12Writer, c: &ClaimCommon) -> Result<(), WriteError> {
    if let Some(a) = &c.prior_authorization {
        seg!(w, "REF", "G1", a)?;
    }
    if let Some(n) = &c.payer_claim_number {
        seg!(w, "REF", "F8", n)?;
    }
    if let Some(m) = &c.medical_record_number {
        seg!(w, "REF", "EA", m)?;
    }
    Ok(())
}

/// Writes the diagnosis HI segments: ABK principal then ABF others, with HI-09
/// present-on-admission indicators when `poa` is not empty. An 837P puts all codes in one HI;
/// an 837I (`poa` given or not) gives the principal diagnosis its own HI.
pub(crate) fn write_diagnoses(
    w: &mut X12Writer,
    c: &ClaimCommon,
    poa: &[String],
) -> Result<(), WriteError> {
    let mut comps: Vec<Element> = Vec::new();
    for (i, d) in c.diagnoses.iter().enumerate() {
        let q = if i == 0 { "ABK" } else { "ABF" };
        let mut parts = vec![q.to_owned(), d.clone()];
        if let Some(p) = poa.get(i).filter(|p| !p.is_empty()) {
            parts.extend(std::iter::repeat_n(String::new(), 6));
            parts.push(p.clone());
        }
        comps.push(Element::Composite(parts));
    }
    w.segment("HI", &comps)
}

/// Writes the 837I diagnosis HI segments: the principal diagnosis alone, then the others.
pub(crate) fn write_institutional_diagnoses(
    w: &mut X12Writer,
    c: &ClaimCommon,
    poa: &[String],
) -> Result<(), WriteError> {
    let principal = ClaimCommon {
        diagnoses: c.diagnoses.iter().take(1).cloned().collect(),
        ..c.clone()
    };
    write_diagnoses(w, &principal, poa)?;
    if c.diagnoses.len() > 1 {
        let mut comps: Vec<Element> = Vec::new();
        for (i, d) in c.diagnoses.iter().enumerate().skip(1) {
            let mut parts = vec!["ABF".to_owned(), d.clone()];
            if let Some(p) = poa.get(i).filter(|p| !p.is_empty()) {
                parts.extend(std::iter::repeat_n(String::new(), 6));
                parts.push(p.clone());
            }
            comps.push(Element::Composite(parts));
        }
        w.segment("HI", &comps)?;
    }
    Ok(())
}

/// Writes loops 2320, 2330A and 2330B.
pub(crate) fn write_other_payers(
    w: &mut X12Writer,
    ctx: &str,
    c: &ClaimCommon,
) -> Result<(), WriteError> {
    for o in &c.other_payers {
        write_other_payer(w, ctx, o)?;
    }
    Ok(())
}

fn write_other_payer(w: &mut X12Writer, ctx: &str, o: &OtherPayer) -> Result<(), WriteError> {
    seg!(
        w,
        "SBR",
        &o.payer_responsibility,
        &o.relationship,
        &o.group_number,
        "",
        "",
        "",
        "",
        "",
        &o.claim_filing_indicator
    )?;
    write_cas(w, ctx, &o.adjustments)?;
    if let Some(p) = o.paid_amount {
        seg!(w, "AMT", "D", amount(ctx, "paid_amount", p)?)?;
    }
    if let Some(p) = o.remaining_patient_liability {
        seg!(
            w,
            "AMT",
            "EAF",
            amount(ctx, "remaining_patient_liability", p)?
        )?;
    }
    seg!(
        w,
        "OI",
        "",
        "",
        &o.benefits_assigned,
        "",
        "",
        &o.release_of_information
    )?;
    let [a, b, cc, d, e] = person_elements(&o.subscriber_name);
    w.segment(
        "NM1",
        &[
            Element::from("IL"),
            a,
            b,
            cc,
            d,
            e,
            (&o.subscriber_name.suffix).into(),
            "MI".into(),
            (&o.subscriber_id).into(),
        ],
    )?;
    nm1(
        w,
        "PR",
        &crate::model::PartyName::organization(o.payer_name.clone()),
        "PI",
        &o.payer_id,
    )?;
    if let Some(d) = o.adjudication_date {
        seg!(w, "DTP", "573", "D8", d8(d))?;
    }
    Ok(())
}

/// Writes CAS segments, one per group, at most six triplets each.
pub(crate) fn write_cas(
    w: &mut X12Writer,
    ctx: &str,
    adj: &[Adjustment],
) -> Result<(), WriteError> {
    let mut groups: Vec<&str> = Vec::new();
    for a in adj {
        if !groups.contains(&a.group.as_str()) {
            groups.push(&a.group);
        }
    }
    for g in groups {
        let items: Vec<&Adjustment> = adj.iter().filter(|a| a.group == g).collect();
        for chunk in items.chunks(6) {
            let mut els: Vec<Element> = vec![g.into()];
            for a in chunk {
                els.push((&a.reason).into());
                els.push(amount(ctx, "adjustments.amount", a.amount)?.into());
                els.push(a.quantity.map(super::format::decimal).into());
            }
            w.segment("CAS", &els)?;
        }
    }
    Ok(())
}

/// Returns the procedure composite (qualifier, code, modifiers).
pub(crate) fn procedure(p: &Procedure) -> Element {
    let mut parts = vec![p.qualifier.clone(), p.code.clone()];
    parts.extend(p.modifiers.iter().cloned());
    Element::Composite(parts)
}

/// Writes loop 2430 for a line.
pub(crate) fn write_line_adjudications(
    w: &mut X12Writer,
    ctx: &str,
    adj: &[LineAdjudication],
) -> Result<(), WriteError> {
    for a in adj {
        w.segment(
            "SVD",
            &[
                (&a.payer_id).into(),
                amount(ctx, "adjudications.paid_amount", a.paid_amount)?.into(),
                procedure(&a.procedure),
                (&a.revenue_code).into(),
                super::format::decimal(a.units).into(),
            ],
        )?;
        write_cas(w, ctx, &a.adjustments)?;
        seg!(w, "DTP", "573", "D8", d8(a.adjudication_date))?;
    }
    Ok(())
}

/// Writes DTP*qualifier with D8 or RD8.
pub(crate) fn write_dtp(
    w: &mut X12Writer,
    qualifier: &str,
    r: &crate::model::DateRange,
) -> Result<(), WriteError> {
    let (f, val) = dtp(r);
    seg!(w, "DTP", qualifier, f, val)
}
