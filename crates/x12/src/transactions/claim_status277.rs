//! Reads a 277 claim status response (005010X212) or a 277CA claim acknowledgment
//! (005010X214): STC category, status and entity composites at batch, claim and line level,
//! per-claim trace numbers, payer claim numbers and amounts.
//!
//! A claim starts at a TRN under a subscriber (HL 22) or patient (HL 23, or PT in the 277CA);
//! it ends at the next HL or TRN. An SVC starts a service line inside the claim.

use super::read::{Parsed, Problems, components, opt};
use crate::model::claim::Procedure;
use crate::model::claim_status::{
    ClaimStatus, ClaimStatusResponse, LineStatus, StatusCode, StatusInfo, StatusKind,
};
use crate::segment::Segment;
use crate::tree::TransactionSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Header,
    Source,
    Receiver,
    Provider,
    Person,
}

/// Reads a 277 or 277CA set.
pub fn read_277(set: &TransactionSet<'_>) -> Parsed<ClaimStatusResponse> {
    let mut p = Problems::default();
    p.expect_set(set, "277");
    let version = set.st().map(|s| s.text(3).into_owned()).unwrap_or_default();
    let mut kind = if version.contains("X214") {
        StatusKind::ClaimAcknowledgment
    } else {
        StatusKind::StatusResponse
    };
    let mut r = ClaimStatusResponse {
        kind,
        reference: None,
        payer_name: None,
        payer_id: None,
        receiver_trace: None,
        batch_statuses: Vec::new(),
        claims: Vec::new(),
    };
    let mut level = Level::Header;
    let mut provider_id: Option<String> = None;
    let mut member_id: Option<String> = None;
    let mut claim_open = false;
    let mut line_open = false;
    for seg in set.body() {
        match seg.id() {
            "BHT" => {
                r.reference = opt(seg, 3);
                // Without an ST03, BHT06 = TH (receipt acknowledgment) marks a 277CA.
                if version.is_empty() && seg.text(6) == "TH" {
                    kind = StatusKind::ClaimAcknowledgment;
                    r.kind = kind;
                }
            }
            "HL" => {
                claim_open = false;
                line_open = false;
                level = match seg.text(3).as_ref() {
                    "20" => Level::Source,
                    "21" => Level::Receiver,
                    "19" => {
                        provider_id = None;
                        Level::Provider
                    }
                    // A dependent (23) keeps the subscriber's member id unless its NM1 has one.
                    "22" | "PT" => {
                        member_id = None;
                        Level::Person
                    }
                    "23" => Level::Person,
                    _ => level,
                };
            }
            "NM1" => match level {
                Level::Source => {
                    r.payer_name = opt(seg, 3);
                    r.payer_id = opt(seg, 9);
                }
                Level::Provider => provider_id = opt(seg, 9),
                Level::Person => member_id = opt(seg, 9).or(member_id.take()),
                _ => {}
            },
            "TRN" => match level {
                Level::Receiver => r.receiver_trace = opt(seg, 2),
                Level::Person => {
                    let trace = opt(seg, 2);
                    r.claims.push(ClaimStatus {
                        patient_control_number: if kind == StatusKind::ClaimAcknowledgment {
                            trace.clone()
                        } else {
                            None
                        },
                        trace_number: trace,
                        payer_claim_number: None,
                        bill_type: None,
                        provider_id: provider_id.clone(),
                        member_id: member_id.clone(),
                        statuses: Vec::new(),
                        service_date: None,
                        lines: Vec::new(),
                    });
                    claim_open = true;
                    line_open = false;
                }
                _ => {}
            },
            "STC" => {
                let info = read_stc(seg, &mut p);
                match (claim_open, line_open, r.claims.last_mut()) {
                    (true, true, Some(c)) => {
                        if let Some(l) = c.lines.last_mut() {
                            l.statuses.push(info);
                        }
                    }
                    (true, false, Some(c)) => c.statuses.push(info),
                    _ => r.batch_statuses.push(info),
                }
            }
            "REF" if claim_open => {
                if let Some(c) = r.claims.last_mut() {
                    match (seg.text(1).as_ref(), line_open) {
                        ("1K", false) => c.payer_claim_number = opt(seg, 2),
                        ("BLT", false) => c.bill_type = opt(seg, 2),
                        ("EJ", false) => c.patient_control_number = opt(seg, 2),
                        ("FJ", true) => {
                            if let Some(l) = c.lines.last_mut() {
                                l.line_control_number = opt(seg, 2);
                            }
                        }
                        _ => {}
                    }
                }
            }
            "DTP" if claim_open => {
                let q = seg.text(1);
                if matches!(q.as_ref(), "472" | "232") {
                    let d = p.date_range(seg, 2, "DTP03");
                    if let Some(c) = r.claims.last_mut() {
                        match (line_open, c.lines.last_mut()) {
                            (true, Some(l)) => l.service_date = d,
                            _ => c.service_date = d,
                        }
                    }
                }
            }
            "SVC" if claim_open => {
                let line = read_svc(seg, &mut p);
                if let Some(c) = r.claims.last_mut() {
                    c.lines.push(line);
                    line_open = true;
                }
            }
            _ => {}
        }
    }
    Parsed {
        value: r,
        problems: p.0,
    }
}

fn status_code(parts: &[String]) -> Option<StatusCode> {
    let category = parts.first().filter(|c| !c.is_empty())?.clone();
    Some(StatusCode {
        category_description: medbill_codesets::short_description(
            medbill_codesets::CodeList::ClaimStatusCategory,
            &category,
        )
        .map(str::to_owned),
        category,
        status: parts.get(1).cloned().unwrap_or_default(),
        entity: parts.get(2).filter(|e| !e.is_empty()).cloned(),
    })
}

fn read_stc(seg: &Segment<'_>, p: &mut Problems) -> StatusInfo {
    let codes = [1, 10, 11]
        .iter()
        .filter_map(|&n| status_code(&components(seg, n)))
        .collect();
    StatusInfo {
        codes,
        effective_date: p.date(seg, 2, "STC02"),
        action: opt(seg, 3),
        charge: p.decimal(seg, 4, "STC04"),
        paid: p.decimal(seg, 5, "STC05"),
        message: opt(seg, 12),
    }
}

fn read_svc(seg: &Segment<'_>, p: &mut Problems) -> LineStatus {
    let c = components(seg, 1);
    let procedure = Procedure {
        qualifier: c.first().cloned().unwrap_or_default(),
        code: c.get(1).cloned().unwrap_or_default(),
        modifiers: c
            .iter()
            .skip(2)
            .take(4)
            .filter(|m| !m.is_empty())
            .cloned()
            .collect(),
    };
    LineStatus {
        procedure,
        charge: p.decimal(seg, 2, "SVC02"),
        paid: p.decimal(seg, 3, "SVC03"),
        revenue_code: opt(seg, 4),
        units: p.decimal(seg, 7, "SVC07"),
        statuses: Vec::new(),
        line_control_number: None,
        service_date: None,
    }
}

/// Returns the text of STC01-1 of the first claim status (for quick checks and logs).
pub fn first_category(c: &ClaimStatus) -> Option<&str> {
    c.statuses
        .first()
        .and_then(|s| s.codes.first())
        .map(|c| c.category.as_str())
}
