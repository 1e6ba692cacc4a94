//! The loop state machine: walks an 837 set and collects claim drafts.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::model::claim::{
    Accident, AmbulanceLocation, BillingProvider, ClaimProvider, ClaimSetHeader, Drug,
    LineAdjudication, LineProvider, LineProviderRole, OtherPayer, Patient, Payer, ProfessionalLine,
    Receiver, ServiceFacility, Submitter, Subscriber, TaxId,
};
use crate::model::{Address, PartyName, PersonName, TransactionHeader};
use crate::segment::Segment;
use crate::transactions::read::{
    Problems, apply_n3, apply_n4, components, opt, party_name, person_name, text,
};
use crate::tree::TransactionSet;

use super::draft::{Draft, LineDraft, Parties, read_hi, start_claim};
use super::segments::{read_cas, read_cr1, read_note, read_pwk, read_sv1, read_sv2, read_svd};

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
    AmbulancePickup,
    AmbulanceDropoff,
    OtherClaimEntity,
    OtherPayer,
    OtherSubscriberName,
    OtherPayerName,
    Line,
    LineAdjudication,
    /// 837P 2420A..2420F: a provider of the current professional line.
    LineProvider,
    LineEntity,
}

pub(super) fn walk<'a>(set: &TransactionSet<'a>) -> (ClaimSetHeader, Vec<Draft<'a>>, Problems) {
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
                let line_role = LineProviderRole::from_entity_code(&entity);
                // The 2310 loops come before 2320 (other payers), whose 2330C..2330I loops reuse
                // the same entity codes for the other payer's providers.
                let claim_level = matches!(line, LineDraft::None)
                    && drafts
                        .last()
                        .is_some_and(|d| d.common.other_payers.is_empty());
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
                    ("85", Loop::Billing) => {
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
                    ("82", _) if claim_level => {
                        if let Some(d) = drafts.last_mut() {
                            d.rendering = Some(provider(seg));
                        }
                        Loop::Rendering
                    }
                    ("DN", _) if claim_level => {
                        if let Some(d) = drafts.last_mut() {
                            d.referring = Some(provider(seg));
                        }
                        Loop::OtherClaimEntity
                    }
                    ("77", _) if claim_level => {
                        if let Some(d) = drafts.last_mut() {
                            d.facility = Some(ServiceFacility {
                                name: text(seg, 3),
                                npi: opt(seg, 9),
                                address: Address::default(),
                            });
                        }
                        Loop::ServiceFacility
                    }
                    ("71", _) if claim_level => {
                        if let Some(d) = drafts.last_mut() {
                            d.attending = Some(provider(seg));
                        }
                        Loop::Attending
                    }
                    ("72" | "ZZ", _) if claim_level => {
                        if let Some(d) = drafts.last_mut() {
                            let slot = if entity == "72" {
                                &mut d.operating
                            } else {
                                &mut d.other_operating
                            };
                            *slot = Some(provider(seg));
                        }
                        Loop::OtherClaimEntity
                    }
                    ("PW" | "45", _) if claim_level => {
                        let pickup = entity == "PW";
                        if let Some(d) = drafts.last_mut() {
                            let slot = if pickup {
                                &mut d.pickup
                            } else {
                                &mut d.dropoff
                            };
                            *slot = Some(AmbulanceLocation {
                                name: opt(seg, 3),
                                address: Address::default(),
                            });
                        }
                        if pickup {
                            Loop::AmbulancePickup
                        } else {
                            Loop::AmbulanceDropoff
                        }
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
                    (_, Loop::Line | Loop::LineProvider | Loop::LineEntity)
                        if line_role.is_some() && matches!(line, LineDraft::Professional(_)) =>
                    {
                        if let (Some(l), Some(role)) =
                            (current_pline(&mut drafts, &line), line_role)
                        {
                            l.providers.push(LineProvider {
                                role,
                                name: party_name(seg),
                                npi: opt(seg, 9),
                                taxonomy: None,
                                address: None,
                            });
                        }
                        Loop::LineProvider
                    }
                    (
                        _,
                        Loop::Line | Loop::LineAdjudication | Loop::LineEntity | Loop::LineProvider,
                    ) => Loop::LineEntity,
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
                (Loop::LineProvider, "PE") => {
                    let p = current_pline(&mut drafts, &line).and_then(|l| l.providers.last_mut());
                    if let Some(p) = p {
                        p.taxonomy = opt(seg, 3);
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
                    Loop::AmbulancePickup => drafts
                        .last_mut()
                        .and_then(|d| d.pickup.as_mut())
                        .map(|f| &mut f.address),
                    Loop::AmbulanceDropoff => drafts
                        .last_mut()
                        .and_then(|d| d.dropoff.as_mut())
                        .map(|f| &mut f.address),
                    Loop::LineProvider => current_pline(&mut drafts, &line)
                        .and_then(|l| l.providers.last_mut())
                        .map(|p| p.address.get_or_insert_with(Address::default)),
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
                    (Loop::Line, "G1") => {
                        if let (Some(d), &LineDraft::Professional(i)) = (drafts.last_mut(), &line)
                            && let Some(l) = d.plines.get_mut(i)
                        {
                            l.prior_authorization = opt(seg, 2);
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
                    (Loop::Claim, "439") => {
                        let r = p.date_range(seg, 2, "DTP03");
                        if let Some(d) = drafts.last_mut() {
                            // An accident date without CLM11 still says there was an accident.
                            let a = d.accident.get_or_insert_with(Accident::default);
                            a.date = r.map(|r| r.from);
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
            "NTE" if lp == Loop::Claim => {
                if let Some(d) = drafts.last_mut() {
                    d.note = Some(read_note(seg));
                }
            }
            // The third party organisation note (TPO) of 2400 is meant for repricers.
            "NTE" if lp == Loop::Line && seg.text(1) != "TPO" => {
                if let Some(l) = current_pline(&mut drafts, &line) {
                    l.note = Some(read_note(seg));
                }
            }
            "PWK" if lp == Loop::Claim => {
                if let (Some(d), Some(a)) = (drafts.last_mut(), read_pwk(seg)) {
                    d.attachments.push(a);
                }
            }
            "PWK" if lp == Loop::Line => {
                if let (Some(l), Some(a)) = (current_pline(&mut drafts, &line), read_pwk(seg)) {
                    l.attachments.push(a);
                }
            }
            "CR1" if lp == Loop::Claim => {
                let t = read_cr1(seg, &mut p);
                if let Some(d) = drafts.last_mut() {
                    d.transport = Some(t);
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
            "LIN" if lp == Loop::Line => {
                let drug = Drug {
                    ndc: text(seg, 3),
                    quantity: Decimal::ZERO,
                    unit: String::new(),
                };
                if let Some(d) = drafts.last_mut() {
                    match line {
                        LineDraft::Professional(i) => {
                            if let Some(l) = d.plines.get_mut(i) {
                                l.drug = Some(drug);
                            }
                        }
                        LineDraft::Institutional(i) => {
                            if let Some(l) = d.ilines.get_mut(i) {
                                l.drug = Some(drug);
                            }
                        }
                        LineDraft::None => {}
                    }
                }
            }
            "CTP" if lp == Loop::Line => {
                let quantity = p.req_decimal(seg, 4, "CTP04");
                let unit = components(seg, 5).into_iter().next().unwrap_or_default();
                let drug = drafts.last_mut().and_then(|d| match line {
                    LineDraft::Professional(i) => d.plines.get_mut(i).and_then(|l| l.drug.as_mut()),
                    LineDraft::Institutional(i) => {
                        d.ilines.get_mut(i).and_then(|l| l.drug.as_mut())
                    }
                    LineDraft::None => None,
                });
                if let Some(drug) = drug {
                    drug.quantity = quantity.unwrap_or_default();
                    drug.unit = unit;
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

fn current_pline<'d>(
    drafts: &'d mut [Draft<'_>],
    line: &LineDraft,
) -> Option<&'d mut ProfessionalLine> {
    match *line {
        LineDraft::Professional(i) => drafts.last_mut()?.plines.get_mut(i),
        _ => None,
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
