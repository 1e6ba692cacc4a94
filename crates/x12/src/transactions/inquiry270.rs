//! Reads a 270 eligibility inquiry (005010X279A1) into the model the 270 writer takes.

use chrono::{NaiveDate, NaiveTime};

use super::read::{Parsed, Problems, opt, party_name, person_name, repetitions, text};
use crate::model::eligibility::{Dependent, EligibilityInquiry, Trace};
use crate::model::{PartyName, PersonName, TransactionHeader};
use crate::tree::TransactionSet;

/// Reads a 270 set (the first subscriber when it holds several).
pub fn read_270(set: &TransactionSet<'_>) -> Parsed<EligibilityInquiry> {
    let mut p = Problems::default();
    p.expect_set(set, "270");
    let mut q = EligibilityInquiry {
        header: TransactionHeader {
            reference: String::new(),
            created_date: NaiveDate::default(),
            created_time: NaiveTime::default(),
        },
        payer_name: String::new(),
        payer_id: String::new(),
        provider_name: PartyName::organization(""),
        provider_npi: String::new(),
        trace: Trace {
            kind: String::new(),
            number: String::new(),
            originator: None,
        },
        subscriber_name: PersonName::default(),
        member_id: String::new(),
        subscriber_birth_date: None,
        subscriber_gender: None,
        dependent: None,
        service_date: None,
        service_types: Vec::new(),
    };
    let mut level = "";
    let mut subscribers = 0;
    for seg in set.body() {
        if subscribers > 1 {
            break;
        }
        match seg.id() {
            "BHT" => {
                q.header.reference = text(seg, 3);
                q.header.created_date = p.date(seg, 4, "BHT04").unwrap_or_default();
                q.header.created_time = super::read::hhmm(&seg.text(5));
            }
            "HL" => {
                level = match seg.text(3).as_ref() {
                    "20" => "20",
                    "21" => "21",
                    "22" => {
                        subscribers += 1;
                        "22"
                    }
                    "23" => "23",
                    _ => level,
                };
            }
            "NM1" => match level {
                "20" => {
                    q.payer_name = text(seg, 3);
                    q.payer_id = text(seg, 9);
                }
                "21" => {
                    q.provider_name = party_name(seg);
                    q.provider_npi = text(seg, 9);
                }
                "22" => {
                    q.subscriber_name = person_name(seg);
                    q.member_id = text(seg, 9);
                }
                "23" => {
                    q.dependent = Some(Dependent {
                        name: person_name(seg),
                        birth_date: NaiveDate::default(),
                        gender: None,
                    });
                }
                _ => {}
            },
            "TRN" if level == "22" && q.trace.number.is_empty() => {
                q.trace = Trace {
                    kind: text(seg, 1),
                    number: text(seg, 2),
                    originator: opt(seg, 3),
                };
            }
            "DMG" => {
                let birth = p.date(seg, 2, "DMG02");
                match (level, q.dependent.as_mut()) {
                    ("22", _) => {
                        q.subscriber_birth_date = birth;
                        q.subscriber_gender = opt(seg, 3);
                    }
                    ("23", Some(d)) => {
                        d.birth_date = birth.unwrap_or_default();
                        d.gender = opt(seg, 3);
                    }
                    _ => {}
                }
            }
            "DTP" if seg.text(1) == "291" => q.service_date = p.date_range(seg, 2, "DTP03"),
            "EQ" => q.service_types.extend(repetitions(seg, 1)),
            _ => {}
        }
    }
    Parsed {
        value: q,
        problems: p.0,
    }
}
