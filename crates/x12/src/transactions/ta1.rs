//! Reads TA1 interchange acknowledgments (found between ISA and GS, see
//! [`crate::tree::Interchange::ta1`]).

use chrono::NaiveTime;

use super::read::{Parsed, Problems, text};
use crate::error::ErrorKind;
use crate::model::ack::InterchangeAck;
use crate::segment::Segment;
use crate::tree::Interchange;

/// Reads one TA1 segment.
pub fn read_ta1(seg: &Segment<'_>) -> Parsed<InterchangeAck> {
    let mut p = Problems::default();
    let control_number = match seg.text(1).parse::<u32>() {
        Ok(v) => v,
        Err(_) => {
            p.push(seg, 1, ErrorKind::MissingElement("TA101"));
            0
        }
    };
    let date_text = format!("20{}", seg.text(2));
    let date = p.date_text(seg, 2, "TA102", &date_text).unwrap_or_default();
    let time = NaiveTime::parse_from_str(&seg.text(3), "%H%M").unwrap_or_else(|_| {
        p.push(
            seg,
            3,
            ErrorKind::InvalidCode {
                element: "TA103",
                value: seg.text(3).into_owned(),
                expected: "HHMM",
            },
        );
        NaiveTime::default()
    });
    let status = text(seg, 4);
    if !matches!(status.as_str(), "A" | "E" | "R") {
        p.push(
            seg,
            4,
            ErrorKind::InvalidCode {
                element: "TA104",
                value: status.clone(),
                expected: "A, E or R",
            },
        );
    }
    let ack = InterchangeAck {
        control_number,
        date,
        time,
        status,
        note_code: text(seg, 5),
    };
    Parsed {
        value: ack,
        problems: p.0,
    }
}

/// Reads every TA1 of an interchange.
pub fn read_ta1s(interchange: &Interchange<'_>) -> Parsed<Vec<InterchangeAck>> {
    let mut value = Vec::new();
    let mut problems = Vec::new();
    for seg in &interchange.ta1 {
        let r = read_ta1(seg);
        value.push(r.value);
        problems.extend(r.problems);
    }
    Parsed { value, problems }
}
