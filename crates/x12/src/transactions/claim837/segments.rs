//! Readers of single 837 segments: CAS, SV1, SV2, SVD, procedure composites, CLM11, NTE, PWK
//! and CR1.

use chrono::NaiveDate;

use crate::error::ErrorKind;
use crate::model::DateRange;
use crate::model::claim::{
    Accident, Adjustment, AmbulanceTransport, Attachment, InstitutionalLine, LineAdjudication,
    Note, ProfessionalLine, RelatedCause,
};
use crate::segment::Segment;
use crate::transactions::read::{Problems, components, opt, procedure, text};

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

pub(super) fn read_sv1(seg: &Segment<'_>, p: &mut Problems) -> Option<ProfessionalLine> {
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
        procedure: procedure(seg, 1),
        charge,
        unit_basis: text(seg, 3),
        units,
        place_of_service: opt(seg, 5),
        diagnosis_pointers: pointers,
        service_date: DateRange::day(NaiveDate::default()),
        line_control_number: None,
        prior_authorization: None,
        drug: None,
        attachments: Vec::new(),
        note: None,
        providers: Vec::new(),
        adjudications: Vec::new(),
    })
}

pub(super) fn read_sv2(seg: &Segment<'_>, p: &mut Problems) -> Option<InstitutionalLine> {
    let charge = p.req_decimal(seg, 3, "SV203")?;
    let units = p.req_decimal(seg, 5, "SV205")?;
    let procedure = if seg.bytes(2).is_empty() {
        None
    } else {
        Some(procedure(seg, 2))
    };
    Some(InstitutionalLine {
        revenue_code: text(seg, 1),
        procedure,
        charge,
        unit_basis: text(seg, 4),
        units,
        service_date: None,
        line_control_number: None,
        drug: None,
        adjudications: Vec::new(),
    })
}

pub(super) fn read_svd(seg: &Segment<'_>, p: &mut Problems) -> Option<LineAdjudication> {
    let paid = p.req_decimal(seg, 2, "SVD02")?;
    let units = p.req_decimal(seg, 5, "SVD05")?;
    Some(LineAdjudication {
        payer_id: text(seg, 1),
        paid_amount: paid,
        procedure: procedure(seg, 3),
        revenue_code: opt(seg, 4),
        units,
        adjustments: Vec::new(),
        adjudication_date: NaiveDate::default(),
    })
}

/// Reads CLM11 (related causes and auto accident state); `None` when CLM11 is absent.
pub(super) fn read_related_causes(clm: &Segment<'_>, p: &mut Problems) -> Option<Accident> {
    let parts = components(clm, 11);
    let mut causes = Vec::new();
    for code in parts.iter().take(2).filter(|c| !c.is_empty()) {
        match RelatedCause::from_code(code) {
            Some(c) => causes.push(c),
            None => p.push(
                clm,
                11,
                ErrorKind::InvalidCode {
                    element: "CLM11",
                    value: code.clone(),
                    expected: "AA, EM or OA",
                },
            ),
        }
    }
    let state = parts.get(3).filter(|s| !s.is_empty()).cloned();
    if causes.is_empty() && state.is_none() {
        return None;
    }
    Some(Accident {
        causes,
        state,
        date: None,
    })
}

/// Reads an NTE.
pub(super) fn read_note(seg: &Segment<'_>) -> Note {
    Note {
        code: text(seg, 1),
        text: text(seg, 2),
    }
}

/// Reads a PWK; `None` for the DME certificate of medical necessity PWK of 2400 (its PWK02
/// codes are AB, AD, AF, AG and NS), which is not an attachment.
pub(super) fn read_pwk(seg: &Segment<'_>) -> Option<Attachment> {
    let transmission = text(seg, 2);
    if matches!(transmission.as_str(), "AB" | "AD" | "AF" | "AG" | "NS") {
        return None;
    }
    Some(Attachment {
        report_type: text(seg, 1),
        transmission,
        control_number: opt(seg, 6),
    })
}

/// Reads CR1 (ambulance transport information).
pub(super) fn read_cr1(seg: &Segment<'_>, p: &mut Problems) -> AmbulanceTransport {
    AmbulanceTransport {
        patient_weight_lb: p.decimal(seg, 2, "CR102"),
        reason: text(seg, 4),
        distance_miles: p.req_decimal(seg, 6, "CR106").unwrap_or_default(),
        round_trip_purpose: opt(seg, 9),
        stretcher_purpose: opt(seg, 10),
    }
}
