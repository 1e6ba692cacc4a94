//! Builds the 999 and TA1 a receiver sends back, from the problems found in what it received.
//!
//! The caller reads the input ([`crate::Document::parse`]), adds the problems of its typed
//! readers if it wants them acknowledged, and passes them here with the group or interchange.
//! Problems are matched to transaction sets by segment index.

use chrono::{NaiveDate, NaiveTime};

use crate::error::{Error, ErrorKind};
use crate::model::ack::{
    ElementError, ElementPosition, FunctionalAck, InterchangeAck, SegmentError, SetAck,
};
use crate::segment::Segment;
use crate::tree::{Group, Interchange, TransactionSet};

/// Builds the 999 for one received functional group.
///
/// A set with any error-severity problem is rejected (IK5 R): SE count and control number
/// problems become IK5 codes 4 and 3, a missing SE code 2; problems in an element become an IK3
/// (code 8) with an IK4 (1 missing, 7 invalid code, 8 invalid date, 6 invalid character); a
/// missing segment an IK3 with code 3; an unexpected segment code 2. GE problems become AK9
/// codes (3 trailer missing, 4 control numbers differ, 5 set count wrong).
pub fn acknowledge_group(group: &Group<'_>, problems: &[Error]) -> FunctionalAck {
    let gs = group.gs.as_ref();
    let sets: Vec<SetAck> = group
        .sets
        .iter()
        .map(|s| acknowledge_set(s, problems))
        .collect();
    let received = u32::try_from(sets.len()).unwrap_or(u32::MAX);
    let accepted =
        u32::try_from(sets.iter().filter(|s| s.is_accepted()).count()).unwrap_or(u32::MAX);
    let included = group
        .ge
        .as_ref()
        .and_then(|ge| ge.text(1).trim().parse::<u32>().ok())
        .unwrap_or(received);
    let (first, last) = group_range(group);
    let mut codes = Vec::new();
    for p in problems
        .iter()
        .filter(|p| p.is_error() && in_range(p, first, last))
    {
        let code = match &p.kind {
            ErrorKind::MissingTrailer { header: "GS", .. } => "3",
            ErrorKind::ControlNumberMismatch {
                trailer: "GE02", ..
            } => "4",
            ErrorKind::CountMismatch {
                element: "GE01", ..
            } => "5",
            _ => continue,
        };
        if !codes.iter().any(|c| c == code) {
            codes.push(code.to_owned());
        }
    }
    let status = if !codes.is_empty() || accepted == 0 {
        "R"
    } else if accepted < received {
        "P"
    } else {
        "A"
    };
    FunctionalAck {
        functional_id: text(gs, 1),
        group_control_number: text(gs, 6),
        version: gs.map(|g| g.text(8).into_owned()).filter(|v| !v.is_empty()),
        sets,
        status: status.to_owned(),
        included,
        received,
        accepted,
        codes,
    }
}

fn acknowledge_set(set: &TransactionSet<'_>, problems: &[Error]) -> SetAck {
    let st = set.st();
    let st_index = st.map_or(0, Segment::index);
    let last = set.segments.last().map_or(st_index, Segment::index);
    let mut errors: Vec<SegmentError> = Vec::new();
    let mut codes: Vec<String> = Vec::new();
    let add_code = |c: &str, codes: &mut Vec<String>| {
        if !codes.iter().any(|x| x == c) && codes.len() < 5 {
            codes.push(c.to_owned());
        }
    };
    for p in problems
        .iter()
        .filter(|p| p.is_error() && in_range(p, st_index, last))
    {
        let position = u32::try_from(p.position.segment_index.saturating_sub(st_index) + 1)
            .unwrap_or(u32::MAX);
        let segment_id: String = p.position.segment_id.chars().take(3).collect();
        match &p.kind {
            ErrorKind::CountMismatch {
                element: "SE01", ..
            } => add_code("4", &mut codes),
            ErrorKind::ControlNumberMismatch {
                trailer: "SE02", ..
            } => add_code("3", &mut codes),
            ErrorKind::MissingTrailer { header: "ST", .. } => add_code("2", &mut codes),
            ErrorKind::MissingSegment(name) => {
                let id: String = name
                    .split(['*', ' '])
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(3)
                    .collect();
                errors.push(segment_error(id, position, "3"));
            }
            ErrorKind::UnexpectedSegment { .. } => {
                errors.push(segment_error(segment_id, position, "2"))
            }
            kind => {
                let mut e = segment_error(segment_id, position, "8");
                if let Some(element) = p.position.element {
                    let code = match kind {
                        ErrorKind::MissingElement(_) => "1",
                        ErrorKind::InvalidCode { .. } => "7",
                        ErrorKind::InvalidDate { .. } => "8",
                        _ => "6",
                    };
                    e.elements.push(ElementError {
                        position: ElementPosition {
                            element: u32::from(element),
                            component: p.position.component.map(u32::from),
                            repetition: None,
                        },
                        reference: None,
                        code: code.to_owned(),
                        bad_value: None,
                    });
                }
                errors.push(e);
            }
        }
    }
    if !errors.is_empty() {
        add_code("5", &mut codes);
    }
    let rejected = !errors.is_empty() || !codes.is_empty();
    SetAck {
        set_id: set.set_id(),
        control_number: set.control_number(),
        version: st.map(|s| s.text(3).into_owned()).filter(|v| !v.is_empty()),
        errors,
        status: if rejected { "R" } else { "A" }.to_owned(),
        codes,
    }
}

fn segment_error(segment_id: String, position: u32, code: &str) -> SegmentError {
    SegmentError {
        segment_id,
        position,
        loop_id: None,
        code: Some(code.to_owned()),
        elements: Vec::new(),
    }
}

/// Builds the TA1 for a received interchange, or `None` when it has no ISA.
///
/// Note codes: 001 ISA13 and IEA02 differ, 021 IEA01 group count wrong, 023 IEA missing
/// (premature end of file), 000 none of these; the status is A for 000, R otherwise.
pub fn acknowledge_interchange(
    interchange: &Interchange<'_>,
    problems: &[Error],
) -> Option<InterchangeAck> {
    let isa = interchange.isa.as_ref()?;
    let first = isa.index();
    let last = interchange.iea.as_ref().map_or(usize::MAX, Segment::index);
    let mut note = "000";
    for p in problems
        .iter()
        .filter(|p| p.is_error() && in_range(p, first, last))
    {
        note = match &p.kind {
            ErrorKind::ControlNumberMismatch {
                trailer: "IEA02", ..
            } => "001",
            ErrorKind::CountMismatch {
                element: "IEA01", ..
            } => "021",
            ErrorKind::MissingTrailer { header: "ISA", .. } => "023",
            _ => continue,
        };
        break;
    }
    Some(InterchangeAck {
        control_number: isa.text(13).trim().parse().unwrap_or(0),
        date: NaiveDate::parse_from_str(&format!("20{}", isa.text(9).trim()), "%Y%m%d")
            .unwrap_or_default(),
        time: NaiveTime::parse_from_str(isa.text(10).trim(), "%H%M").unwrap_or_default(),
        status: if note == "000" { "A" } else { "R" }.to_owned(),
        note_code: note.to_owned(),
    })
}

fn group_range(group: &Group<'_>) -> (usize, usize) {
    let first = group.gs.as_ref().map(Segment::index).unwrap_or_else(|| {
        group
            .sets
            .first()
            .and_then(TransactionSet::st)
            .map_or(0, Segment::index)
    });
    let last = group.ge.as_ref().map(Segment::index).unwrap_or(usize::MAX);
    (first, last)
}

fn in_range(p: &Error, first: usize, last: usize) -> bool {
    (first..=last).contains(&p.position.segment_index)
}

fn text(seg: Option<&Segment<'_>>, n: usize) -> String {
    seg.map(|s| s.text(n).trim().to_owned()).unwrap_or_default()
}
