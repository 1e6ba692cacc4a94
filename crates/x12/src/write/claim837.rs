//! Parts shared by the 837P and 837I writers: the header loops, the HL hierarchy with the
//! billing provider, subscriber, payer and patient loops, claim REF and HI segments. Checks live
//! in `claim837_check`, the COB loops in `claim837_cob`; both are re-exported here. The NTE, PWK,
//! provider NM1/PRV and chunked HI writers serve both guides; 837P-only loops are in
//! `claim837p_loops`.

use super::format::{d8, dtp, nm1_name, person_elements, suffix};
use super::{Element, WriteError, X12Writer, validate as v};
use crate::model::Address;
use crate::model::claim::{
    Attachment, BillingProvider, ClaimCommon, ClaimProvider, ClaimSetHeader, Note, Patient, Payer,
    Procedure, Subscriber, TaxId,
};
use crate::seg;

pub(crate) use super::claim837_check::{
    check_adjudications, check_attachments, check_common, check_drug, check_note, check_parties,
    check_procedure, check_provider, taxonomy,
};
pub(crate) use super::claim837_cob::{write_line_adjudications, write_other_payers};

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

/// Writes a provider loop's NM1 (NPI qualifier XX) and, when the loop has one (`prv` is the
/// PRV01 code) and a taxonomy is given, its PRV.
pub(crate) fn write_provider(
    w: &mut X12Writer,
    entity: &str,
    p: &ClaimProvider,
    prv: Option<&str>,
) -> Result<(), WriteError> {
    nm1(w, entity, &p.name, "XX", &p.npi)?;
    if let (Some(code), Some(t)) = (prv, &p.taxonomy) {
        seg!(w, "PRV", code, "PXC", t)?;
    }
    Ok(())
}

/// Writes PWK segments (claim or line supplemental information): PWK05 = AC with the control number.
pub(crate) fn write_attachments(w: &mut X12Writer, a: &[Attachment]) -> Result<(), WriteError> {
    for x in a {
        let q = if x.control_number.is_some() { "AC" } else { "" };
        seg!(
            w,
            "PWK",
            &x.report_type,
            &x.transmission,
            "",
            "",
            q,
            &x.control_number
        )?;
    }
    Ok(())
}

/// Writes an NTE (claim or line note).
pub(crate) fn write_note(w: &mut X12Writer, n: Option<&Note>) -> Result<(), WriteError> {
    if let Some(n) = n {
        seg!(w, "NTE", &n.code, &n.text)?;
    }
    Ok(())
}

/// Writes HI segments of up to 12 composites each (condition, value, occurrence codes...).
pub(crate) fn write_hi_chunks(w: &mut X12Writer, els: &[Element]) -> Result<(), WriteError> {
    for chunk in els.chunks(12) {
        w.segment("HI", chunk)?;
    }
    Ok(())
}

pub(crate) fn n3n4(w: &mut X12Writer, a: &Address) -> Result<(), WriteError> {
    seg!(w, "N3", &a.line1, &a.line2)?;
    seg!(w, "N4", &a.city, &a.state, &a.postal_code)
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

/// Writes the 837I diagnosis HI segments: the principal diagnosis alone, then the others, with
/// the DRG (HI*DR) in its TR3 place between the reasons for visit and the other diagnoses.
pub(crate) fn write_institutional_diagnoses(
    w: &mut X12Writer,
    c: &ClaimCommon,
    poa: &[String],
    admitting: Option<&str>,
    reasons: &[String],
    drg: Option<&str>,
) -> Result<(), WriteError> {
    let principal = ClaimCommon {
        diagnoses: c.diagnoses.iter().take(1).cloned().collect(),
        ..c.clone()
    };
    write_diagnoses(w, &principal, poa)?;
    // TR3 order: principal (ABK), admitting (ABJ), reason for visit (APR), DRG (DR), then
    // others (ABF).
    if let Some(a) = admitting {
        w.segment("HI", &[Element::composite(&["ABJ", a])])?;
    }
    if !reasons.is_empty() {
        let els: Vec<Element> = reasons
            .iter()
            .map(|r| Element::composite(&["APR", r.as_str()]))
            .collect();
        w.segment("HI", &els)?;
    }
    if let Some(d) = drg {
        w.segment("HI", &[Element::composite(&["DR", d])])?;
    }
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

/// Writes loop 2410 (LIN*N4 and CTP) for a line's drug.
pub(crate) fn write_drug(
    w: &mut X12Writer,
    drug: Option<&crate::model::claim::Drug>,
) -> Result<(), WriteError> {
    if let Some(d) = drug {
        seg!(w, "LIN", "", "N4", &d.ndc)?;
        w.segment(
            "CTP",
            &[
                "".into(),
                "".into(),
                "".into(),
                super::format::decimal(d.quantity).into(),
                Element::composite(&[d.unit.as_str()]),
            ],
        )?;
    }
    Ok(())
}

/// Returns the procedure composite (qualifier, code, modifiers).
pub(crate) fn procedure(p: &Procedure) -> Element {
    let mut parts = vec![p.qualifier.clone(), p.code.clone()];
    parts.extend(p.modifiers.iter().cloned());
    Element::Composite(parts)
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
