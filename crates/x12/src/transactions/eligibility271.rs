//! Reads a 271 eligibility response (005010X279A1): payer, provider, subscriber and dependent,
//! EB benefits (service types split on the ISA11 repetition separator, amounts and percents as
//! exact decimals, time period, in-network flag), AAA rejections at every level, and the
//! front-desk [`summary`].

use std::collections::BTreeMap;

use medbill_codesets::{CodeList, short_description};
use rust_decimal::Decimal;

use super::read::{Parsed, Problems, apply_n3, apply_n4, opt, person_name, repetitions, text};
use crate::model::Address;
use crate::model::eligibility::{
    Benefit, EligibilityPerson, EligibilityReport, EligibilityResponse, EligibilitySummary,
    Rejection, RejectionLevel, Trace,
};
use crate::segment::Segment;
use crate::tree::TransactionSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Header,
    Source,
    Receiver,
    Subscriber,
    Dependent,
}

/// Reads a 271 set holding one subscriber (the usual real-time answer).
///
/// When the set holds several subscribers only the first is returned; use [`read_271_all`].
/// A set rejected before any subscriber level (AAA at the source or receiver) returns a
/// response with no subscriber and those rejections.
pub fn read_271(set: &TransactionSet<'_>) -> Parsed<EligibilityResponse> {
    let Parsed { value, problems } = read_271_all(set);
    Parsed {
        value: value.into_iter().next().unwrap_or_default(),
        problems,
    }
}

/// Reads a 271 set, one response per subscriber (HL 22) in file order; each repeats the
/// payer and provider of its HL 20/21 and the rejections found at those levels.
pub fn read_271_all(set: &TransactionSet<'_>) -> Parsed<Vec<EligibilityResponse>> {
    let mut p = Problems::default();
    p.expect_set(set, "271");
    let mut out: Vec<EligibilityResponse> = Vec::new();
    let mut cur = EligibilityResponse::default();
    let mut level = Level::Header;
    let mut in_benefit = false;
    let mut in_ls = false;
    for seg in set.body() {
        match seg.id() {
            "BHT" => cur.reference = opt(seg, 3),
            "HL" => {
                in_benefit = false;
                in_ls = false;
                level = match seg.text(3).as_ref() {
                    "20" => {
                        if cur.subscriber.is_some() {
                            out.push(std::mem::take(&mut cur));
                        }
                        cur = EligibilityResponse {
                            reference: cur.reference.clone(),
                            ..Default::default()
                        };
                        Level::Source
                    }
                    "21" => Level::Receiver,
                    "22" => {
                        if cur.subscriber.is_some() {
                            let next = header_only(&cur);
                            out.push(std::mem::replace(&mut cur, next));
                        }
                        cur.subscriber = Some(EligibilityPerson::default());
                        Level::Subscriber
                    }
                    "23" => {
                        cur.dependent = Some(EligibilityPerson::default());
                        Level::Dependent
                    }
                    _ => level,
                };
            }
            "NM1" if in_ls => {
                if let Some(b) = cur.benefits.last_mut() {
                    b.related_entities
                        .push((text(seg, 1), text(seg, 3), opt(seg, 9)));
                }
            }
            "NM1" => match level {
                Level::Source => {
                    cur.payer_name = opt(seg, 3);
                    cur.payer_id = opt(seg, 9);
                }
                Level::Receiver => {
                    cur.provider_name = opt(seg, 3);
                    cur.provider_id = opt(seg, 9);
                }
                Level::Subscriber | Level::Dependent => {
                    if let Some(person) = person_mut(&mut cur, level) {
                        person.name = person_name(seg);
                        person.member_id = opt(seg, 9);
                    }
                }
                Level::Header => {}
            },
            "LS" => in_ls = true,
            "LE" => in_ls = false,
            "AAA" => {
                let lvl = if in_benefit {
                    RejectionLevel::Benefit
                } else {
                    match level {
                        Level::Header | Level::Source => RejectionLevel::Source,
                        Level::Receiver => RejectionLevel::Receiver,
                        Level::Subscriber => RejectionLevel::Subscriber,
                        Level::Dependent => RejectionLevel::Dependent,
                    }
                };
                cur.rejections.push(Rejection {
                    level: lvl,
                    valid_request: seg.text(1) == "Y",
                    reason: text(seg, 3),
                    follow_up: opt(seg, 4),
                    description: describe(CodeList::AaaReject, &seg.text(3)),
                });
            }
            "EB" => {
                in_benefit = true;
                in_ls = false;
                cur.benefits.push(read_eb(seg, &mut p));
            }
            "MSG" if in_benefit => {
                if let Some(b) = cur.benefits.last_mut() {
                    b.messages.push(text(seg, 1));
                }
            }
            "DTP" => {
                let r = p.date_range(seg, 2, "DTP03");
                if let Some(r) = r {
                    if in_benefit {
                        if let Some(b) = cur.benefits.last_mut() {
                            b.dates.push((text(seg, 1), r));
                        }
                    } else if let Some(person) = person_mut(&mut cur, level) {
                        person.dates.push((text(seg, 1), r));
                    }
                }
            }
            "TRN" if !in_benefit => {
                if let Some(person) = person_mut(&mut cur, level) {
                    person.traces.push(Trace {
                        kind: text(seg, 1),
                        number: text(seg, 2),
                        originator: opt(seg, 3),
                    });
                }
            }
            "REF" if !in_benefit => {
                if let Some(person) = person_mut(&mut cur, level) {
                    person.references.push((text(seg, 1), text(seg, 2)));
                }
            }
            "N3" | "N4" if !in_benefit && !in_ls => {
                if let Some(person) = person_mut(&mut cur, level) {
                    let a = person.address.get_or_insert_with(Address::default);
                    if seg.is("N3") {
                        apply_n3(a, seg)
                    } else {
                        apply_n4(a, seg)
                    }
                }
            }
            "DMG" if !in_benefit => {
                let birth = p.date(seg, 2, "DMG02");
                if let Some(person) = person_mut(&mut cur, level) {
                    person.birth_date = birth;
                    person.gender = opt(seg, 3);
                }
            }
            _ => {}
        }
    }
    out.push(cur);
    Parsed {
        value: out,
        problems: p.0,
    }
}

fn describe(list: CodeList, code: &str) -> Option<String> {
    short_description(list, code).map(str::to_owned)
}

fn header_only(r: &EligibilityResponse) -> EligibilityResponse {
    EligibilityResponse {
        reference: r.reference.clone(),
        payer_name: r.payer_name.clone(),
        payer_id: r.payer_id.clone(),
        provider_name: r.provider_name.clone(),
        provider_id: r.provider_id.clone(),
        rejections: r
            .rejections
            .iter()
            .filter(|x| matches!(x.level, RejectionLevel::Source | RejectionLevel::Receiver))
            .cloned()
            .collect(),
        ..Default::default()
    }
}

fn person_mut(r: &mut EligibilityResponse, level: Level) -> Option<&mut EligibilityPerson> {
    match level {
        Level::Subscriber => r.subscriber.as_mut(),
        Level::Dependent => r.dependent.as_mut(),
        _ => None,
    }
}

fn read_eb(seg: &Segment<'_>, p: &mut Problems) -> Benefit {
    Benefit {
        info: text(seg, 1),
        info_description: describe(CodeList::EligibilityBenefit, &seg.text(1)),
        coverage_level: opt(seg, 2),
        service_types: repetitions(seg, 3),
        insurance_type: opt(seg, 4),
        plan_description: opt(seg, 5),
        time_period: opt(seg, 6),
        amount: p.decimal(seg, 7, "EB07"),
        percent: p.decimal(seg, 8, "EB08"),
        quantity_qualifier: opt(seg, 9),
        quantity: p.decimal(seg, 10, "EB10"),
        authorization_required: opt(seg, 11),
        in_network: match seg.text(12).as_ref() {
            "Y" => Some(true),
            "N" => Some(false),
            _ => None,
        },
        procedure: opt(seg, 13),
        dates: Vec::new(),
        messages: Vec::new(),
        related_entities: Vec::new(),
    }
}

/// Ranks a benefit for the summary: explicit in-network before unspecified; out-of-network and
/// non-individual coverage are excluded (`None`).
fn network_rank(b: &Benefit) -> Option<u8> {
    if !matches!(b.coverage_level.as_deref(), None | Some("IND")) {
        return None;
    }
    match b.in_network {
        Some(true) => Some(0),
        None => Some(1),
        Some(false) => None,
    }
}

/// Ranks a benefit's service types: 30 (plan coverage) first, then none given, then others.
fn service_rank(b: &Benefit) -> u8 {
    if b.service_types.iter().any(|s| s == "30") {
        0
    } else if b.service_types.is_empty() {
        1
    } else {
        2
    }
}

/// Returns the best in-network individual benefit with EB01 `info` and, when given, EB06 `period`.
fn best<'b>(r: &'b EligibilityResponse, info: &str, period: Option<&str>) -> Option<&'b Benefit> {
    r.benefits
        .iter()
        .filter(|b| b.info == info && period.is_none_or(|p| b.time_period.as_deref() == Some(p)))
        .filter_map(|b| network_rank(b).map(|n| ((n, service_rank(b)), b)))
        .min_by_key(|(k, _)| *k)
        .map(|(_, b)| b)
}

/// Summarises in-network individual coverage: active flag, plan, remaining deductible and
/// out-of-pocket (EB06 = 29), coinsurance (EB08) and copays by service type (EB07 of EB01 = B).
///
/// Plan-level (service type 30) figures are preferred; explicit in-network (EB12 = Y) entries win
/// over entries without EB12; out-of-network and family-level entries are ignored.
pub fn summary(r: &EligibilityResponse) -> EligibilitySummary {
    let active_codes = ["1", "2", "3", "4", "5"];
    let inactive_codes = ["6", "7", "8"];
    let active = if r
        .benefits
        .iter()
        .any(|b| active_codes.contains(&b.info.as_str()))
    {
        Some(true)
    } else if r
        .benefits
        .iter()
        .any(|b| inactive_codes.contains(&b.info.as_str()))
    {
        Some(false)
    } else {
        None
    };
    let plan = r
        .benefits
        .iter()
        .filter(|b| active_codes.contains(&b.info.as_str()) && b.plan_description.is_some())
        .min_by_key(|b| service_rank(b))
        .and_then(|b| b.plan_description.clone());
    let deductible_remaining = best(r, "C", Some("29")).and_then(|b| b.amount);
    let oop_remaining = best(r, "G", Some("29")).and_then(|b| b.amount);
    let coinsurance = r
        .benefits
        .iter()
        .filter(|b| b.info == "A" && b.percent.is_some())
        .filter_map(|b| network_rank(b).map(|n| ((n, service_rank(b)), b)))
        .min_by_key(|(k, _)| *k)
        .and_then(|(_, b)| b.percent);
    let mut copays: BTreeMap<String, (u8, Decimal)> = BTreeMap::new();
    for b in r.benefits.iter().filter(|b| b.info == "B") {
        let (Some(rank), Some(amount)) = (network_rank(b), b.amount) else {
            continue;
        };
        for st in &b.service_types {
            let better = copays.get(st).is_none_or(|(r0, _)| rank < *r0);
            if better {
                copays.insert(st.clone(), (rank, amount));
            }
        }
    }
    EligibilitySummary {
        active,
        plan,
        deductible_remaining,
        oop_remaining,
        coinsurance,
        copays: copays.into_iter().map(|(k, (_, v))| (k, v)).collect(),
    }
}

/// Reads a 271 set into the report `medbill x12 inspect` prints: the first subscriber with its
/// summary, and any further subscribers under `more_subscribers`.
pub fn report_271(set: &TransactionSet<'_>) -> Parsed<EligibilityReport> {
    let Parsed { value, problems } = read_271_all(set);
    let mut reports = value.into_iter().map(|response| EligibilityReport {
        summary: summary(&response),
        response,
        more_subscribers: Vec::new(),
    });
    let mut first = reports.next().unwrap_or_default();
    first.more_subscribers = reports.collect();
    Parsed {
        value: first,
        problems,
    }
}

impl EligibilityResponse {
    /// Returns the trace number the payer echoed (TRN01 = 2) for the subscriber or dependent,
    /// which matches the 270's TRN02.
    pub fn echoed_trace(&self) -> Option<&str> {
        [self.dependent.as_ref(), self.subscriber.as_ref()]
            .into_iter()
            .flatten()
            .flat_map(|p| &p.traces)
            .find(|t| t.kind == "2")
            .map(|t| t.number.as_str())
    }

    /// Returns the in-network individual coverage [`summary`].
    pub fn summary(&self) -> EligibilitySummary {
        summary(self)
    }
}
