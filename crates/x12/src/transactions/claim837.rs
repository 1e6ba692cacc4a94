//! Reads 837P (005010X222A1) and 837I (005010X223A2) sets back into the models the writers
//! take ([`crate::model::claim`]), so written claims round-trip and received claims can be imported.
//!
//! Loops are found by their leading segment and qualifier: HL 20/22/23 set the billing provider,
//! subscriber and patient; CLM starts a claim; SBR after CLM starts an other-payer loop (2320);
//! LX starts a line; SVD starts a line adjudication (2430). Segments the model does not hold
//! (PER in 2010AA, NM1*87 pay-to address, REF*G2, ...) are skipped.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::read::{
    Parsed, Problems, apply_n3, apply_n4, components, opt, party_name, person_name, text,
};
use crate::error::ErrorKind;
use crate::model::claim::{
    Adjustment, BillingProvider, ClaimCommon, ClaimFrequency, ClaimProvider, ClaimSetHeader,
    IcdProcedure, InstitutionalClaim, InstitutionalClaimSet, InstitutionalLine, LineAdjudication,
    OtherPayer, Patient, Payer, Procedure, ProfessionalClaim, ProfessionalClaimSet,
    ProfessionalLine, Receiver, ServiceFacility, Submitter, Subscriber, TaxId,
};
use crate::model::{Address, DateRange, PartyName, PersonName, TransactionHeader};
use crate::segment::Segment;
use crate::tree::TransactionSet;

/// An 837 set of either kind (serialised as the set itself, without a tag).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum ClaimSet {
    /// 837P.
    Professional(ProfessionalClaimSet),
    /// 837I.
    Institutional(InstitutionalClaimSet),
}

/// Reads an 837 set, telling professional from institutional by ST03 (X222 / X223), else by
/// the first SV1/SV2 or CL1 segment.
pub fn read_837(set: &TransactionSet<'_>) -> Parsed<ClaimSet> {
    if is_institutional(set) {
        let p = read_837i(set);
        Parsed {
            value: ClaimSet::Institutional(p.value),
            problems: p.problems,
        }
    } else {
        let p = read_837p(set);
        Parsed {
            value: ClaimSet::Professional(p.value),
            problems: p.problems,
        }
    }
}

fn is_institutional(set: &TransactionSet<'_>) -> bool {
    let version = set.st().map(|s| s.text(3).into_owned()).unwrap_or_default();
    if version.contains("X223") {
        return true;
    }
    if version.contains("X222") {
        return false;
    }
    set.body()
        .iter()
        .find(|s| s.is("SV1") || s.is("SV2") || s.is("CL1"))
        .is_some_and(|s| !s.is("SV1"))
}

/// Reads an 837P set.
pub fn read_837p(set: &TransactionSet<'_>) -> Parsed<ProfessionalClaimSet> {
    let (header, drafts, mut problems) = walk(set);
    let mut claims = Vec::with_capacity(drafts.len());
    for d in drafts {
        if let Some(c) = d.into_professional(&mut problems) {
            claims.push(c);
        }
    }
    Parsed {
        value: ProfessionalClaimSet { header, claims },
        problems: problems.0,
    }
}

/// Reads an 837I set.
pub fn read_837i(set: &TransactionSet<'_>) -> Parsed<InstitutionalClaimSet> {
    let (header, drafts, mut problems) = walk(set);
    let mut claims = Vec::with_capacity(drafts.len());
    for d in drafts {
        if let Some(c) = d.into_institutional(&mut problems) {
            claims.push(c);
        }
    }
    Parsed {
        value: InstitutionalClaimSet { header, claims },
        problems: problems.0,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loop {
    Header,
    Submitter,
    Receiver,
    Billing,
    PayTo,
    Subscriber,
    SubscriberName,
    PayerName,
    Patient,
    Claim,
    Rendering,
    Attending,
    ServiceFacility,
    OtherClaimEntity,
    OtherPayer,
    OtherSubscriberName,
    OtherPayerName,
    Line,
    LineAdjudication,
    LineEntity,
}

#[derive(Debug, Clone, Default)]
struct Parties {
    billing: Option<BillingProvider>,
    subscriber: Option<Subscriber>,
    patient: Option<Patient>,
    payer: Option<Payer>,
}

/// A claim as read, before it is shaped into the professional or institutional model.
struct Draft<'a> {
    clm: Segment<'a>,
    parties: Parties,
    common: ClaimCommon,
    facility_code: String,
    signature: bool,
    rendering: Option<ClaimProvider>,
    referring: Option<ClaimProvider>,
    facility: Option<ServiceFacility>,
    patient_paid: Option<Decimal>,
    attending: Option<ClaimProvider>,
    statement_period: Option<DateRange>,
    /// HI-09 of each diagnosis, by diagnosis position (principal first).
    poa: Vec<String>,
    principal_poa: String,
    procedures: Vec<IcdProcedure>,
    admission_date: Option<NaiveDate>,
    cl1: Option<(Option<String>, Option<String>, String)>,
    condition_codes: Vec<String>,
    value_codes: Vec<(String, Decimal)>,
    plines: Vec<ProfessionalLine>,
    ilines: Vec<InstitutionalLine>,
    /// Lines whose required values were unreadable: the claim is dropped.
    broken: bool,
    /// Professional lines without a DTP*472 yet.
    undated_lines: usize,
}

enum LineDraft {
    None,
    Professional(usize),
    Institutional(usize),
}

fn walk<'a>(set: &TransactionSet<'a>) -> (ClaimSetHeader, Vec<Draft<'a>>, Problems) {
    let mut p = Problems::default();
    p.expect_set(set, "837");
    let mut header = ClaimSetHeader {
        transaction: TransactionHeader {
            reference: String::new(),
            created_date: NaiveDate::default(),
            created_time: chrono::NaiveTime::default(),
        },
        submitter: Submitter {
            name: PartyName::organization(""),
            id: String::new(),
            contact_name: String::new(),
            phone: String::new(),
        },
        receiver: Receiver {
            name: String::new(),
            id: String::new(),
        },
    };
    let mut lp = Loop::Header;
    let mut parties = Parties::default();
    let mut drafts: Vec<Draft<'a>> = Vec::new();
    let mut line = LineDraft::None;
    for seg in set.body() {
        let id = seg.id();
        // A new HL or CLM closes the current claim.
        match id {
            "BHT" => {
                header.transaction.reference = text(seg, 3);
                header.transaction.created_date = p.date(seg, 4, "BHT04").unwrap_or_default();
                let t = seg.text(5);
                header.transaction.created_time = t
                    .get(..4)
                    .and_then(|t| chrono::NaiveTime::parse_from_str(t, "%H%M").ok())
                    .unwrap_or_default();
            }
            "HL" => {
                line = LineDraft::None;
                match seg.text(3).as_ref() {
                    "20" => {
                        parties = Parties {
                            billing: Some(empty_billing()),
                            ..Parties::default()
                        };
                        lp = Loop::Billing;
                    }
                    "22" => {
                        parties.subscriber = None;
                        parties.patient = None;
                        parties.payer = None;
                        lp = Loop::Subscriber;
                    }
                    "23" => {
                        parties.patient = Some(Patient {
                            relationship: String::new(),
                            name: PersonName::default(),
                            address: Address::default(),
                            birth_date: NaiveDate::default(),
                            gender: String::new(),
                        });
                        lp = Loop::Patient;
                    }
                    _ => {}
                }
            }
            "NM1" => {
                let entity = seg.text(1);
                lp = match (entity.as_ref(), lp) {
                    ("41", _) => {
                        header.submitter.name = party_name(seg);
                        header.submitter.id = text(seg, 9);
                        Loop::Submitter
                    }
                    ("40", _) => {
                        header.receiver = Receiver {
                            name: text(seg, 3),
                            id: text(seg, 9),
                        };
                        Loop::Receiver
                    }
                    ("85", _) => {
                        if let Some(b) = parties.billing.as_mut() {
                            b.name = party_name(seg);
                            b.npi = text(seg, 9);
                        }
                        Loop::Billing
                    }
                    ("87", _) | ("PE", Loop::Billing | Loop::PayTo) => Loop::PayTo,
                    ("IL", Loop::Subscriber | Loop::SubscriberName) => {
                        let s = parties.subscriber.get_or_insert_with(empty_subscriber);
                        s.name = person_name(seg);
                        s.member_id = text(seg, 9);
                        Loop::SubscriberName
                    }
                    ("PR", Loop::Subscriber | Loop::SubscriberName | Loop::PayerName) => {
                        parties.payer = Some(Payer {
                            name: text(seg, 3),
                            id: text(seg, 9),
                            address: None,
                        });
                        Loop::PayerName
                    }
                    ("QC", _) => {
                        if let Some(pt) = parties.patient.as_mut() {
                            pt.name = person_name(seg);
                        }
                        Loop::Patient
                    }
                    ("82", _) if matches!(line, LineDraft::None) => {
                        if let Some(d) = drafts.last_mut() {
                            d.rendering = Some(provider(seg));
                        }
                        Loop::Rendering
                    }
                    ("DN", _) if matches!(line, LineDraft::None) => {
                        if let Some(d) = drafts.last_mut() {
                            d.referring = Some(provider(seg));
                        }
                        Loop::OtherClaimEntity
                    }
                    ("77", _) if matches!(line, LineDraft::None) => {
                        if let Some(d) = drafts.last_mut() {
                            d.facility = Some(ServiceFacility {
                                name: text(seg, 3),
                                npi: opt(seg, 9),
                                address: Address::default(),
                            });
                        }
                        Loop::ServiceFacility
                    }
                    ("71", _) if matches!(line, LineDraft::None) => {
                        if let Some(d) = drafts.last_mut() {
                            d.attending = Some(provider(seg));
                        }
                        Loop::Attending
                    }
                    ("IL", Loop::OtherPayer | Loop::OtherSubscriberName | Loop::OtherPayerName) => {
                        if let Some(o) = last_other(&mut drafts) {
                            o.subscriber_name = person_name(seg);
                            o.subscriber_id = text(seg, 9);
                        }
                        Loop::OtherSubscriberName
                    }
                    ("PR", Loop::OtherPayer | Loop::OtherSubscriberName | Loop::OtherPayerName) => {
                        if let Some(o) = last_other(&mut drafts) {
                            o.payer_name = text(seg, 3);
                            o.payer_id = text(seg, 9);
                        }
                        Loop::OtherPayerName
                    }
                    (_, Loop::Line | Loop::LineAdjudication | Loop::LineEntity) => Loop::LineEntity,
                    _ => Loop::OtherClaimEntity,
                };
            }
            "PER" if lp == Loop::Submitter && header.submitter.contact_name.is_empty() => {
                header.submitter.contact_name = text(seg, 2);
                if let Some(q) = [3, 5, 7].into_iter().find(|&q| seg.text(q) == "TE") {
                    header.submitter.phone = text(seg, q + 1);
                }
            }
            "PRV" => match (lp, seg.text(1).as_ref()) {
                (Loop::Billing, "BI") => {
                    if let Some(b) = parties.billing.as_mut() {
                        b.taxonomy = opt(seg, 3);
                    }
                }
                (Loop::Rendering, "PE") => {
                    if let Some(r) = drafts.last_mut().and_then(|d| d.rendering.as_mut()) {
                        r.taxonomy = opt(seg, 3);
                    }
                }
                (Loop::Attending, "AT") => {
                    if let Some(r) = drafts.last_mut().and_then(|d| d.attending.as_mut()) {
                        r.taxonomy = opt(seg, 3);
                    }
                }
                _ => {}
            },
            "N3" | "N4" => {
                let target: Option<&mut Address> = match lp {
                    Loop::Billing => parties.billing.as_mut().map(|b| &mut b.address),
                    Loop::SubscriberName => parties
                        .subscriber
                        .as_mut()
                        .map(|s| s.address.get_or_insert_with(Address::default)),
                    Loop::PayerName => parties
                        .payer
                        .as_mut()
                        .map(|s| s.address.get_or_insert_with(Address::default)),
                    Loop::Patient => parties.patient.as_mut().map(|pt| &mut pt.address),
                    Loop::ServiceFacility => drafts
                        .last_mut()
                        .and_then(|d| d.facility.as_mut())
                        .map(|f| &mut f.address),
                    _ => None,
                };
                if let Some(a) = target {
                    if id == "N3" {
                        apply_n3(a, seg)
                    } else {
                        apply_n4(a, seg)
                    }
                }
            }
            "REF" => {
                let q = seg.text(1);
                match (lp, q.as_ref()) {
                    (Loop::Billing, "EI") => {
                        if let Some(b) = parties.billing.as_mut() {
                            b.tax_id = TaxId::Ein(text(seg, 2));
                        }
                    }
                    (Loop::Billing, "SY") => {
                        if let Some(b) = parties.billing.as_mut() {
                            b.tax_id = TaxId::Ssn(text(seg, 2));
                        }
                    }
                    (Loop::Claim, "F8" | "G1" | "EA") => {
                        if let Some(d) = drafts.last_mut() {
                            let v = opt(seg, 2);
                            match q.as_ref() {
                                "F8" => d.common.payer_claim_number = v,
                                "G1" => d.common.prior_authorization = v,
                                _ => d.common.medical_record_number = v,
                            }
                        }
                    }
                    (Loop::Line, "6R") => {
                        if let Some(d) = drafts.last_mut() {
                            match line {
                                LineDraft::Professional(i) => {
                                    if let Some(l) = d.plines.get_mut(i) {
                                        l.line_control_number = opt(seg, 2);
                                    }
                                }
                                LineDraft::Institutional(i) => {
                                    if let Some(l) = d.ilines.get_mut(i) {
                                        l.line_control_number = opt(seg, 2);
                                    }
                                }
                                LineDraft::None => {}
                            }
                        }
                    }
                    _ => {}
                }
            }
            "DMG" => {
                let birth = p.date(seg, 2, "DMG02");
                let gender = opt(seg, 3);
                match lp {
                    Loop::SubscriberName => {
                        if let Some(s) = parties.subscriber.as_mut() {
                            s.birth_date = birth;
                            s.gender = gender;
                        }
                    }
                    Loop::Patient => {
                        if let Some(pt) = parties.patient.as_mut() {
                            pt.birth_date = birth.unwrap_or_default();
                            pt.gender = gender.unwrap_or_default();
                        }
                    }
                    _ => {}
                }
            }
            "SBR" => {
                if lp == Loop::Subscriber {
                    parties.subscriber = Some(Subscriber {
                        payer_responsibility: text(seg, 1),
                        group_number: opt(seg, 3),
                        group_name: opt(seg, 4),
                        claim_filing_indicator: text(seg, 9),
                        ..empty_subscriber()
                    });
                } else if let Some(d) = drafts.last_mut()
                    && matches!(line, LineDraft::None)
                {
                    d.common.other_payers.push(OtherPayer {
                        payer_responsibility: text(seg, 1),
                        relationship: text(seg, 2),
                        group_number: opt(seg, 3),
                        claim_filing_indicator: text(seg, 9),
                        adjustments: Vec::new(),
                        paid_amount: None,
                        remaining_patient_liability: None,
                        benefits_assigned: String::new(),
                        release_of_information: String::new(),
                        subscriber_name: PersonName::default(),
                        subscriber_id: String::new(),
                        payer_name: String::new(),
                        payer_id: String::new(),
                        adjudication_date: None,
                    });
                    lp = Loop::OtherPayer;
                }
            }
            "PAT" => {
                if let Some(pt) = parties.patient.as_mut() {
                    pt.relationship = text(seg, 1);
                }
            }
            "CLM" => {
                line = LineDraft::None;
                drafts.push(start_claim(seg, &parties, &mut p));
                lp = Loop::Claim;
            }
            "DTP" => {
                let q = seg.text(1);
                match (lp, q.as_ref()) {
                    (Loop::Claim, "434") => {
                        let r = p.date_range(seg, 2, "DTP03");
                        if let Some(d) = drafts.last_mut() {
                            d.statement_period = r;
                        }
                    }
                    (Loop::Claim, "435") => {
                        let r = p.date_range(seg, 2, "DTP03");
                        if let Some(d) = drafts.last_mut() {
                            d.admission_date = r.map(|r| r.from);
                        }
                    }
                    (Loop::OtherPayerName, "573") => {
                        let r = p.date_range(seg, 2, "DTP03");
                        if let Some(o) = last_other(&mut drafts) {
                            o.adjudication_date = r.map(|r| r.from);
                        }
                    }
                    (Loop::Line, "472") => {
                        let r = p.date_range(seg, 2, "DTP03");
                        if let (Some(d), Some(r)) = (drafts.last_mut(), r) {
                            match line {
                                LineDraft::Professional(i) => {
                                    if let Some(l) = d.plines.get_mut(i) {
                                        l.service_date = r;
                                        d.undated_lines = d.undated_lines.saturating_sub(1);
                                    }
                                }
                                LineDraft::Institutional(i) => {
                                    if let Some(l) = d.ilines.get_mut(i) {
                                        l.service_date = Some(r);
                                    }
                                }
                                LineDraft::None => {}
                            }
                        }
                    }
                    (Loop::LineAdjudication, "573") => {
                        let r = p.date_range(seg, 2, "DTP03");
                        if let (Some(a), Some(r)) = (last_line_adjudication(&mut drafts, &line), r)
                        {
                            a.adjudication_date = r.from;
                        }
                    }
                    _ => {}
                }
            }
            "CL1" => {
                if let Some(d) = drafts.last_mut() {
                    d.cl1 = Some((opt(seg, 1), opt(seg, 2), text(seg, 3)));
                }
            }
            "HI" => {
                if let Some(d) = drafts.last_mut() {
                    read_hi(seg, d, &mut p);
                }
            }
            "CAS" => {
                let adj = read_cas(seg, &mut p);
                match lp {
                    Loop::OtherPayer => {
                        if let Some(o) = last_other(&mut drafts) {
                            o.adjustments.extend(adj);
                        }
                    }
                    Loop::LineAdjudication => {
                        if let Some(a) = last_line_adjudication(&mut drafts, &line) {
                            a.adjustments.extend(adj);
                        }
                    }
                    _ => {}
                }
            }
            "AMT" if lp == Loop::Claim && seg.text(1) == "F5" => {
                let v = p.req_decimal(seg, 2, "AMT02");
                if let Some(d) = drafts.last_mut() {
                    d.patient_paid = v;
                }
            }
            "AMT" if lp == Loop::OtherPayer => {
                let q = seg.text(1);
                let v = p.req_decimal(seg, 2, "AMT02");
                if let Some(o) = last_other(&mut drafts) {
                    match q.as_ref() {
                        "D" => o.paid_amount = v,
                        "EAF" => o.remaining_patient_liability = v,
                        _ => {}
                    }
                }
            }
            "OI" if lp == Loop::OtherPayer => {
                if let Some(o) = last_other(&mut drafts) {
                    o.benefits_assigned = text(seg, 3);
                    o.release_of_information = text(seg, 6);
                }
            }
            "LX" => {
                lp = Loop::Line;
                line = LineDraft::None;
            }
            "SV1" => {
                if let Some(d) = drafts.last_mut() {
                    match read_sv1(seg, &mut p) {
                        Some(l) => {
                            d.plines.push(l);
                            d.undated_lines += 1;
                            line = LineDraft::Professional(d.plines.len() - 1);
                        }
                        None => d.broken = true,
                    }
                }
            }
            "SV2" => {
                if let Some(d) = drafts.last_mut() {
                    match read_sv2(seg, &mut p) {
                        Some(l) => {
                            d.ilines.push(l);
                            line = LineDraft::Institutional(d.ilines.len() - 1);
                        }
                        None => d.broken = true,
                    }
                }
            }
            "SVD" => {
                let adj = read_svd(seg, &mut p);
                if let (Some(d), Some(a)) = (drafts.last_mut(), adj) {
                    match line {
                        LineDraft::Professional(i) => {
                            if let Some(l) = d.plines.get_mut(i) {
                                l.adjudications.push(a);
                            }
                        }
                        LineDraft::Institutional(i) => {
                            if let Some(l) = d.ilines.get_mut(i) {
                                l.adjudications.push(a);
                            }
                        }
                        LineDraft::None => {}
                    }
                }
                lp = Loop::LineAdjudication;
            }
            _ => {}
        }
    }
    (header, drafts, p)
}

fn empty_billing() -> BillingProvider {
    BillingProvider {
        name: PartyName::organization(""),
        npi: String::new(),
        tax_id: TaxId::Ein(String::new()),
        address: Address::default(),
        taxonomy: None,
    }
}

fn empty_subscriber() -> Subscriber {
    Subscriber {
        payer_responsibility: String::new(),
        group_number: None,
        group_name: None,
        claim_filing_indicator: String::new(),
        name: PersonName::default(),
        member_id: String::new(),
        address: None,
        birth_date: None,
        gender: None,
    }
}

fn provider(nm1: &Segment<'_>) -> ClaimProvider {
    ClaimProvider {
        name: party_name(nm1),
        npi: text(nm1, 9),
        taxonomy: None,
    }
}

fn last_other<'d>(drafts: &'d mut [Draft<'_>]) -> Option<&'d mut OtherPayer> {
    drafts
        .last_mut()
        .and_then(|d| d.common.other_payers.last_mut())
}

fn last_line_adjudication<'d>(
    drafts: &'d mut [Draft<'_>],
    line: &LineDraft,
) -> Option<&'d mut LineAdjudication> {
    let d = drafts.last_mut()?;
    match *line {
        LineDraft::Professional(i) => d.plines.get_mut(i)?.adjudications.last_mut(),
        LineDraft::Institutional(i) => d.ilines.get_mut(i)?.adjudications.last_mut(),
        LineDraft::None => None,
    }
}

fn start_claim<'a>(seg: &Segment<'a>, parties: &Parties, p: &mut Problems) -> Draft<'a> {
    let total = p.req_decimal(seg, 2, "CLM02");
    let clm05 = components(seg, 5);
    let freq_code = clm05.get(2).cloned().unwrap_or_default();
    let frequency = ClaimFrequency::from_code(&freq_code).unwrap_or_else(|| {
        p.push(
            seg,
            5,
            ErrorKind::InvalidCode {
                element: "CLM05-3",
                value: freq_code.clone(),
                expected: "1, 7 or 8",
            },
        );
        ClaimFrequency::Original
    });
    Draft {
        clm: *seg,
        parties: parties.clone(),
        common: ClaimCommon {
            patient_control_number: text(seg, 1),
            total_charge: total.unwrap_or_default(),
            frequency,
            payer_claim_number: None,
            assignment: text(seg, 7),
            benefits_assigned: text(seg, 8),
            release_of_information: text(seg, 9),
            prior_authorization: None,
            medical_record_number: None,
            diagnoses: Vec::new(),
            other_payers: Vec::new(),
        },
        facility_code: clm05.first().cloned().unwrap_or_default(),
        signature: seg.text(6) == "Y",
        rendering: None,
        referring: None,
        facility: None,
        patient_paid: None,
        attending: None,
        statement_period: None,
        poa: Vec::new(),
        principal_poa: String::new(),
        procedures: Vec::new(),
        admission_date: None,
        cl1: None,
        condition_codes: Vec::new(),
        value_codes: Vec::new(),
        plines: Vec::new(),
        ilines: Vec::new(),
        broken: total.is_none(),
        undated_lines: 0,
    }
}

fn read_hi(seg: &Segment<'_>, d: &mut Draft<'_>, p: &mut Problems) {
    for (n, el) in seg.elements().enumerate() {
        let parts: Vec<String> = el
            .components()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        let (Some(q), Some(code)) = (parts.first(), parts.get(1)) else {
            continue;
        };
        let poa = parts.get(8).cloned().unwrap_or_default();
        match q.as_str() {
            "ABK" | "BK" => {
                d.common.diagnoses.insert(0, code.clone());
                d.principal_poa = poa;
            }
            "ABF" | "BF" => {
                d.common.diagnoses.push(code.clone());
                d.poa.push(poa);
            }
            "BBR" | "BBQ" => {
                let date = parts
                    .get(3)
                    .and_then(|t| NaiveDate::parse_from_str(t, "%Y%m%d").ok());
                match date {
                    Some(date) if q == "BBR" => d.procedures.insert(
                        0,
                        IcdProcedure {
                            code: code.clone(),
                            date,
                        },
                    ),
                    Some(date) => d.procedures.push(IcdProcedure {
                        code: code.clone(),
                        date,
                    }),
                    None => p.push(
                        seg,
                        n + 1,
                        ErrorKind::InvalidDate {
                            element: "HI-04",
                            value: parts.get(3).cloned().unwrap_or_default(),
                        },
                    ),
                }
            }
            "BG" => d.condition_codes.push(code.clone()),
            "BE" => {
                let amount = parts
                    .get(4)
                    .and_then(|a| crate::decimal::parse_decimal(a.as_bytes()));
                match amount {
                    Some(a) => d.value_codes.push((code.clone(), a)),
                    None => p.push(
                        seg,
                        n + 1,
                        ErrorKind::InvalidDecimal {
                            element: "HI-05",
                            value: parts.get(4).cloned().unwrap_or_default(),
                        },
                    ),
                }
            }
            _ => {}
        }
    }
}

/// Reads a CAS segment: group then (reason, amount, quantity) triplets.
pub(crate) fn read_cas(seg: &Segment<'_>, p: &mut Problems) -> Vec<Adjustment> {
    let group = text(seg, 1);
    let mut out = Vec::new();
    for k in 0..6 {
        let at = 2 + k * 3;
        let reason = seg.text(at);
        if reason.is_empty() {
            continue;
        }
        let Some(amount) = p.req_decimal(seg, at + 1, "CAS amount") else {
            continue;
        };
        let quantity = p.decimal(seg, at + 2, "CAS quantity");
        out.push(Adjustment {
            group: group.clone(),
            reason: reason.into_owned(),
            amount,
            quantity,
        });
    }
    out
}

fn procedure_of(seg: &Segment<'_>, n: usize) -> Procedure {
    let c = components(seg, n);
    let mut it = c.into_iter();
    let qualifier = it.next().unwrap_or_default();
    let code = it.next().unwrap_or_default();
    // Components 3..6 are modifiers; 7 is a description, which the model does not hold.
    let modifiers = it.take(4).filter(|m| !m.is_empty()).collect();
    Procedure {
        qualifier,
        code,
        modifiers,
    }
}

fn read_sv1(seg: &Segment<'_>, p: &mut Problems) -> Option<ProfessionalLine> {
    let charge = p.req_decimal(seg, 2, "SV102")?;
    let units = p.req_decimal(seg, 4, "SV104")?;
    let mut pointers = Vec::new();
    for c in components(seg, 7) {
        match c.parse::<u8>() {
            Ok(v) => pointers.push(v),
            Err(_) => p.push(
                seg,
                7,
                ErrorKind::InvalidCode {
                    element: "SV107",
                    value: c,
                    expected: "1 to 12",
                },
            ),
        }
    }
    Some(ProfessionalLine {
        procedure: procedure_of(seg, 1),
        charge,
        unit_basis: text(seg, 3),
        units,
        place_of_service: opt(seg, 5),
        diagnosis_pointers: pointers,
        service_date: DateRange::day(NaiveDate::default()),
        line_control_number: None,
        adjudications: Vec::new(),
    })
}

fn read_sv2(seg: &Segment<'_>, p: &mut Problems) -> Option<InstitutionalLine> {
    let charge = p.req_decimal(seg, 3, "SV203")?;
    let units = p.req_decimal(seg, 5, "SV205")?;
    let procedure = if seg.bytes(2).is_empty() {
        None
    } else {
        Some(procedure_of(seg, 2))
    };
    Some(InstitutionalLine {
        revenue_code: text(seg, 1),
        procedure,
        charge,
        unit_basis: text(seg, 4),
        units,
        service_date: None,
        line_control_number: None,
        adjudications: Vec::new(),
    })
}

fn read_svd(seg: &Segment<'_>, p: &mut Problems) -> Option<LineAdjudication> {
    let paid = p.req_decimal(seg, 2, "SVD02")?;
    let units = p.req_decimal(seg, 5, "SVD05")?;
    Some(LineAdjudication {
        payer_id: text(seg, 1),
        paid_amount: paid,
        procedure: procedure_of(seg, 3),
        revenue_code: opt(seg, 4),
        units,
        adjustments: Vec::new(),
        adjudication_date: NaiveDate::default(),
    })
}

impl Draft<'_> {
    fn parties(&self, p: &mut Problems) -> Option<(BillingProvider, Subscriber, Payer)> {
        let b = self.parties.billing.clone();
        let s = self.parties.subscriber.clone();
        let y = self.parties.payer.clone();
        if b.is_none() {
            p.missing_segment(Some(&self.clm), "HL*20 billing provider");
        }
        if s.is_none() {
            p.missing_segment(Some(&self.clm), "SBR subscriber");
        }
        if y.is_none() {
            p.missing_segment(Some(&self.clm), "NM1*PR payer");
        }
        Some((b?, s?, y?))
    }

    fn into_professional(self, p: &mut Problems) -> Option<ProfessionalClaim> {
        if self.broken {
            return None;
        }
        if self.undated_lines > 0 {
            p.missing_segment(Some(&self.clm), "DTP*472 service date");
            return None;
        }
        let (billing_provider, subscriber, payer) = self.parties(p)?;
        Some(ProfessionalClaim {
            billing_provider,
            subscriber,
            patient: self.parties.patient,
            payer,
            claim: self.common,
            place_of_service: self.facility_code,
            provider_signature: self.signature,
            patient_paid: self.patient_paid,
            referring_provider: self.referring,
            rendering_provider: self.rendering,
            service_facility: self.facility,
            lines: self.plines,
        })
    }

    fn into_institutional(self, p: &mut Problems) -> Option<InstitutionalClaim> {
        if self.broken {
            return None;
        }
        let Some(statement_period) = self.statement_period else {
            p.missing_segment(Some(&self.clm), "DTP*434 statement dates");
            return None;
        };
        let mut poa = vec![self.principal_poa.clone()];
        poa.extend(self.poa.iter().cloned());
        if poa.iter().all(String::is_empty) {
            poa.clear();
        }
        let (billing_provider, subscriber, payer) = self.parties(p)?;
        let (admission_type, admission_source, patient_status) = self.cl1.unwrap_or_default();
        Some(InstitutionalClaim {
            billing_provider,
            subscriber,
            patient: self.parties.patient,
            payer,
            claim: self.common,
            facility_type: self.facility_code,
            statement_from: statement_period.from,
            // A one-day statement written as D8 (not the TR3's RD8) ends the day it starts.
            statement_to: statement_period.to.unwrap_or(statement_period.from),
            present_on_admission: poa,
            procedures: self.procedures,
            admission_date: self.admission_date,
            admission_type,
            admission_source,
            patient_status,
            condition_codes: self.condition_codes,
            value_codes: self.value_codes,
            attending_provider: self.attending,
            lines: self.ilines,
        })
    }
}
