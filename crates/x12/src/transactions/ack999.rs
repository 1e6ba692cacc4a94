//! Reads a 999 implementation acknowledgment (005010X231A1): AK1 (group), AK2 (set), IK3
//! (segment error), IK4 (element error), IK5 (set status) and AK9 (group status and counts).

use super::read::{Parsed, Problems, components, opt, text};
use crate::error::ErrorKind;
use crate::model::ack::{ElementError, ElementPosition, FunctionalAck, SegmentError, SetAck};
use crate::segment::Segment;
use crate::tree::TransactionSet;

/// Reads a 999 set.
pub fn read_999(set: &TransactionSet<'_>) -> Parsed<FunctionalAck> {
    let mut p = Problems::default();
    p.expect_set(set, "999");
    let mut a = FunctionalAck {
        functional_id: String::new(),
        group_control_number: String::new(),
        version: None,
        sets: Vec::new(),
        status: String::new(),
        included: 0,
        received: 0,
        accepted: 0,
        codes: Vec::new(),
    };
    let mut seen_ak1 = false;
    let mut seen_ak9 = false;
    for seg in set.body() {
        match seg.id() {
            "AK1" => {
                seen_ak1 = true;
                a.functional_id = text(seg, 1);
                a.group_control_number = text(seg, 2);
                a.version = opt(seg, 3);
            }
            "AK2" => a.sets.push(SetAck {
                set_id: text(seg, 1),
                control_number: text(seg, 2),
                version: opt(seg, 3),
                errors: Vec::new(),
                status: String::new(),
                codes: Vec::new(),
            }),
            "IK3" => {
                let position = count(seg, 2, "IK302", &mut p);
                if let Some(s) = a.sets.last_mut() {
                    s.errors.push(SegmentError {
                        segment_id: text(seg, 1),
                        position,
                        loop_id: opt(seg, 3),
                        code: opt(seg, 4),
                        elements: Vec::new(),
                    });
                }
            }
            "IK4" => {
                let c = components(seg, 1);
                let num = |i: usize| c.get(i).and_then(|v| v.parse::<u32>().ok());
                let Some(element) = num(0) else {
                    p.push(seg, 1, ErrorKind::MissingElement("IK401-1"));
                    continue;
                };
                let e = ElementError {
                    position: ElementPosition {
                        element,
                        component: num(1),
                        repetition: num(2),
                    },
                    reference: opt(seg, 2),
                    code: text(seg, 3),
                    bad_value: opt(seg, 4),
                };
                if let Some(err) = a.sets.last_mut().and_then(|s| s.errors.last_mut()) {
                    err.elements.push(e);
                }
            }
            "IK5" => {
                if let Some(s) = a.sets.last_mut() {
                    s.status = text(seg, 1);
                    s.codes = (2..=6).filter_map(|n| opt(seg, n)).collect();
                }
            }
            "AK9" => {
                seen_ak9 = true;
                a.status = text(seg, 1);
                a.included = count(seg, 2, "AK902", &mut p);
                a.received = count(seg, 3, "AK903", &mut p);
                a.accepted = count(seg, 4, "AK904", &mut p);
                a.codes = (5..=9).filter_map(|n| opt(seg, n)).collect();
            }
            _ => {}
        }
    }
    if !seen_ak1 {
        p.missing_segment(set.st(), "AK1");
    }
    if !seen_ak9 {
        p.missing_segment(set.st(), "AK9");
    }
    Parsed {
        value: a,
        problems: p.0,
    }
}

fn count(seg: &Segment<'_>, n: usize, name: &'static str, p: &mut Problems) -> u32 {
    match seg.text(n).parse::<u32>() {
        Ok(v) => v,
        Err(_) => {
            p.push(
                seg,
                n,
                ErrorKind::InvalidDecimal {
                    element: name,
                    value: seg.text(n).into_owned(),
                },
            );
            0
        }
    }
}
