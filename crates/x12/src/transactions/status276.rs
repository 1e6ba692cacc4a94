//! Reads a 276 claim status inquiry (005010X212) into the model the 276 writer takes.

use chrono::{NaiveDate, NaiveTime};

use super::read::{Parsed, Problems, opt, party_name, person_name, text};
use crate::model::claim_status::{ClaimStatusInquiry, StatusClaimQuery, StatusDependent};
use crate::model::{PartyName, PersonName, TransactionHeader};
use crate::tree::TransactionSet;

/// Reads a 276 set: the first provider and subscriber (and dependent), with every claim under them.
pub fn read_276(set: &TransactionSet<'_>) -> Parsed<ClaimStatusInquiry> {
    let mut p = Problems::default();
    p.expect_set(set, "276");
    let mut q = ClaimStatusInquiry {
        header: TransactionHeader {
            reference: String::new(),
            created_date: NaiveDate::default(),
            created_time: NaiveTime::default(),
        },
        payer_name: String::new(),
        payer_id: String::new(),
        receiver_name: PartyName::organization(""),
        receiver_id: String::new(),
        provider_name: PartyName::organization(""),
        provider_npi: String::new(),
        subscriber_name: PersonName::default(),
        member_id: String::new(),
        subscriber_birth_date: None,
        subscriber_gender: None,
        dependent: None,
        claims: Vec::new(),
    };
    let mut level = "";
    let mut persons = 0;
    let mut dmg: Option<(Option<NaiveDate>, Option<String>)> = None;
    for seg in set.body() {
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
                    "19" => "19",
                    "22" => "22",
                    "23" => "23",
                    _ => level,
                };
                if matches!(level, "22" | "23") {
                    persons += 1;
                }
                if persons > 2 || (persons > 1 && level == "22") {
                    // Only the first subscriber (and its dependent) is modelled.
                    break;
                }
            }
            "DMG" => dmg = Some((p.date(seg, 2, "DMG02"), opt(seg, 3))),
            "NM1" => match level {
                "20" => {
                    q.payer_name = text(seg, 3);
                    q.payer_id = text(seg, 9);
                }
                "21" => {
                    q.receiver_name = party_name(seg);
                    q.receiver_id = text(seg, 9);
                }
                "19" => {
                    q.provider_name = party_name(seg);
                    q.provider_npi = text(seg, 9);
                }
                "22" => {
                    q.subscriber_name = person_name(seg);
                    q.member_id = text(seg, 9);
                    if let Some((b, g)) = dmg.take() {
                        q.subscriber_birth_date = b;
                        q.subscriber_gender = g;
                    }
                }
                "23" => {
                    let (b, g) = dmg.take().unwrap_or_default();
                    q.dependent = Some(StatusDependent {
                        name: person_name(seg),
                        birth_date: b.unwrap_or_default(),
                        gender: g,
                    });
                }
                _ => {}
            },
            "TRN" => q.claims.push(StatusClaimQuery {
                trace_number: text(seg, 2),
                payer_claim_number: None,
                bill_type: None,
                patient_control_number: None,
                total_charge: None,
                service_date: None,
            }),
            "REF" => {
                if let Some(c) = q.claims.last_mut() {
                    match seg.text(1).as_ref() {
                        "1K" => c.payer_claim_number = opt(seg, 2),
                        "BLT" => c.bill_type = opt(seg, 2),
                        "EJ" => c.patient_control_number = opt(seg, 2),
                        _ => {}
                    }
                }
            }
            "AMT" if seg.text(1) == "T3" => {
                let v = p.decimal(seg, 2, "AMT02");
                if let Some(c) = q.claims.last_mut() {
                    c.total_charge = v;
                }
            }
            "DTP" if seg.text(1) == "472" => {
                let d = p.date_range(seg, 2, "DTP03");
                if let Some(c) = q.claims.last_mut() {
                    c.service_date = d;
                }
            }
            _ => {}
        }
    }
    Parsed {
        value: q,
        problems: p.0,
    }
}
