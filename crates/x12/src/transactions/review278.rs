//! Reads a 278 (005010X217 request or response, 005010X215 inquiry) into the model the 278
//! writer takes: the payer, requester and subscriber, the patient event (UM, HCR decision, REF*NT,
//! event and certification dates, diagnoses, servicing provider) and its services (SV1/SV2,
//! requested dates, units, HCR, HSD units certified), with AAA rejections at every level.

use chrono::{NaiveDate, NaiveTime};
use medbill_codesets::{CodeList, short_description};

use super::read::{Parsed, Problems, components, opt, party_name, person_name, procedure, text};
use crate::model::claim::Procedure;
use crate::model::eligibility::Trace;
use crate::model::review::{
    ReviewDecision, ReviewEvent, ReviewKind, ReviewLevel, ReviewProvider, ReviewRejection,
    ReviewService, ServicesReview,
};
use crate::model::{DateRange, PartyName, PersonName, TransactionHeader};
use crate::segment::Segment;
use crate::tree::TransactionSet;
use crate::write::review278::INQUIRY_VERSION;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Header,
    Payer,
    Requester,
    Subscriber,
    Dependent,
    Event,
    Service,
}

/// Reads a 278 set (the first patient event when it holds several).
pub fn read_278(set: &TransactionSet<'_>) -> Parsed<ServicesReview> {
    let mut p = Problems::default();
    p.expect_set(set, "278");
    let inquiry = set.st().is_some_and(|st| st.text(3) == INQUIRY_VERSION);
    let mut r = ServicesReview {
        kind: if inquiry {
            ReviewKind::Inquiry
        } else {
            ReviewKind::Request
        },
        header: TransactionHeader {
            reference: String::new(),
            created_date: NaiveDate::default(),
            created_time: NaiveTime::default(),
        },
        payer_name: String::new(),
        payer_id: String::new(),
        requester_name: PartyName::organization(""),
        requester_npi: String::new(),
        subscriber_name: PersonName::default(),
        member_id: String::new(),
        subscriber_birth_date: None,
        rejections: Vec::new(),
        event: None,
    };
    let mut level = Level::Header;
    let mut events = 0;
    for seg in set.body() {
        if events > 1 {
            break;
        }
        match seg.id() {
            "BHT" => {
                if seg.text(2) == "11" {
                    r.kind = ReviewKind::Response;
                }
                r.header.reference = text(seg, 3);
                r.header.created_date = p.date(seg, 4, "BHT04").unwrap_or_default();
                r.header.created_time = super::read::hhmm(&seg.text(5));
            }
            "HL" => {
                level = match seg.text(3).as_ref() {
                    "20" => Level::Payer,
                    "21" => Level::Requester,
                    "22" => Level::Subscriber,
                    "23" => Level::Dependent,
                    "EV" => {
                        events += 1;
                        if events == 1 {
                            r.event = Some(empty_event());
                        }
                        Level::Event
                    }
                    "SS" => {
                        if let Some(ev) = r.event.as_mut() {
                            ev.services.push(empty_service());
                        }
                        Level::Service
                    }
                    _ => level,
                };
            }
            "NM1" => match level {
                Level::Payer => {
                    r.payer_name = text(seg, 3);
                    r.payer_id = text(seg, 9);
                }
                Level::Requester => {
                    r.requester_name = party_name(seg);
                    r.requester_npi = text(seg, 9);
                }
                Level::Subscriber => {
                    r.subscriber_name = person_name(seg);
                    r.member_id = text(seg, 9);
                }
                Level::Event => {
                    if let Some(ev) = r.event.as_mut() {
                        ev.provider = Some(ReviewProvider {
                            entity: text(seg, 1),
                            name: party_name(seg),
                            npi: text(seg, 9),
                        });
                    }
                }
                Level::Header | Level::Dependent | Level::Service => {}
            },
            "DMG" if level == Level::Subscriber => {
                r.subscriber_birth_date = p.date(seg, 2, "DMG02");
            }
            "AAA" => {
                let services = r.event.as_ref().map_or(0, |e| e.services.len());
                let (lvl, service) = match level {
                    Level::Header | Level::Payer => (ReviewLevel::Payer, None),
                    Level::Requester => (ReviewLevel::Requester, None),
                    Level::Subscriber | Level::Dependent => (ReviewLevel::Subscriber, None),
                    Level::Event => (ReviewLevel::Event, None),
                    Level::Service => (ReviewLevel::Service, services.checked_sub(1)),
                };
                let reason = text(seg, 3);
                r.rejections.push(ReviewRejection {
                    level: lvl,
                    service,
                    valid_request: seg.text(1) == "Y",
                    description: short_description(CodeList::AaaReject, &reason).map(str::to_owned),
                    reason,
                    follow_up: opt(seg, 4),
                });
            }
            _ => {
                if let Some(ev) = r.event.as_mut() {
                    match level {
                        Level::Event => read_event_segment(seg, ev, &mut p),
                        Level::Service => {
                            if let Some(s) = ev.services.last_mut() {
                                read_service_segment(seg, s, &mut p);
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    Parsed {
        value: r,
        problems: p.0,
    }
}

fn read_event_segment(seg: &Segment<'_>, ev: &mut ReviewEvent, p: &mut Problems) {
    match seg.id() {
        "TRN" => ev.traces.push(trace(seg)),
        "UM" => {
            ev.request_category = text(seg, 1);
            ev.certification_type = text(seg, 2);
            ev.service_type = text(seg, 3);
            ev.place_of_service = components(seg, 4)
                .into_iter()
                .next()
                .filter(|c| !c.is_empty());
            ev.level_of_service = opt(seg, 6);
        }
        "HCR" => ev.decision = Some(decision(seg)),
        "REF" if seg.text(1) == "NT" => ev.reference = opt(seg, 2),
        "DTP" => match seg.text(1).as_ref() {
            "AAH" => ev.event_dates = p.date_range(seg, 2, "DTP03"),
            q => certification_date(seg, q, ev.decision.as_mut(), p),
        },
        "HI" => {
            for n in 1..=12 {
                let c = components(seg, n);
                if let Some(code) = c.get(1).filter(|c| !c.is_empty()) {
                    ev.diagnoses.push(code.clone());
                }
            }
        }
        "MSG" => ev.notes = opt(seg, 1),
        _ => {}
    }
}

fn read_service_segment(seg: &Segment<'_>, s: &mut ReviewService, p: &mut Problems) {
    match seg.id() {
        "TRN" => s.traces.push(trace(seg)),
        "UM" => {
            s.request_category = text(seg, 1);
            s.certification_type = text(seg, 2);
        }
        "HCR" => s.decision = Some(decision(seg)),
        "DTP" => match seg.text(1).as_ref() {
            "472" => s.dates = p.date_range(seg, 2, "DTP03"),
            q => certification_date(seg, q, s.decision.as_mut(), p),
        },
        "SV1" => {
            s.procedure = procedure(seg, 1);
            s.units = p.req_decimal(seg, 4, "SV104").unwrap_or_default();
        }
        "SV2" => {
            s.revenue_code = opt(seg, 1);
            s.procedure = procedure(seg, 2);
            s.units = p.req_decimal(seg, 5, "SV205").unwrap_or_default();
        }
        "HSD" => s.certified_units = p.decimal(seg, 2, "HSD02"),
        _ => {}
    }
}

/// Reads DTP*007 (certification effective, D8 or RD8) and DTP*036 (expiration) into a decision.
fn certification_date(
    seg: &Segment<'_>,
    qualifier: &str,
    decision: Option<&mut ReviewDecision>,
    p: &mut Problems,
) {
    let Some(d) = decision else {
        return;
    };
    match qualifier {
        "007" => {
            if let Some(range) = p.date_range(seg, 2, "DTP03") {
                let to = range.to.or(d.certified.and_then(|c| c.to));
                d.certified = Some(DateRange {
                    from: range.from,
                    to,
                });
            }
        }
        "036" => {
            if let Some(range) = p.date_range(seg, 2, "DTP03") {
                let end = range.to.unwrap_or(range.from);
                let from = d.certified.map_or(end, |c| c.from);
                d.certified = Some(DateRange {
                    from,
                    to: Some(end),
                });
            }
        }
        _ => {}
    }
}

fn trace(seg: &Segment<'_>) -> Trace {
    Trace {
        kind: text(seg, 1),
        number: text(seg, 2),
        originator: opt(seg, 3),
    }
}

fn decision(seg: &Segment<'_>) -> ReviewDecision {
    ReviewDecision {
        action: text(seg, 1),
        authorization_number: opt(seg, 2),
        reason: opt(seg, 3),
        certified: None,
    }
}

fn empty_event() -> ReviewEvent {
    ReviewEvent {
        traces: Vec::new(),
        request_category: String::new(),
        certification_type: String::new(),
        service_type: String::new(),
        place_of_service: None,
        level_of_service: None,
        decision: None,
        reference: None,
        event_dates: None,
        diagnoses: Vec::new(),
        notes: None,
        provider: None,
        services: Vec::new(),
    }
}

fn empty_service() -> ReviewService {
    ReviewService {
        traces: Vec::new(),
        request_category: String::new(),
        certification_type: String::new(),
        decision: None,
        dates: None,
        revenue_code: None,
        procedure: Procedure {
            qualifier: String::new(),
            code: String::new(),
            modifiers: Vec::new(),
        },
        units: rust_decimal::Decimal::ZERO,
        certified_units: None,
    }
}
