//! The 999 (005010X231A1) writer.

use super::format::invalid;
use super::{Element, WriteError, X12Writer, validate as v};
use crate::model::ack::FunctionalAck;
use crate::seg;

/// GS08 / ST03 of the 999.
pub const VERSION: &str = "005010X231A1";

/// Writes one 999 transaction set (ST..SE) with ST02 `control` into the writer's open group.
pub fn write_999(w: &mut X12Writer, a: &FunctionalAck, control: u32) -> Result<(), WriteError> {
    check(a)?;
    w.begin_set("999", control, VERSION)?;
    seg!(
        w,
        "AK1",
        &a.functional_id,
        &a.group_control_number,
        &a.version
    )?;
    for s in &a.sets {
        seg!(w, "AK2", &s.set_id, &s.control_number, &s.version)?;
        for e in &s.errors {
            seg!(
                w,
                "IK3",
                &e.segment_id,
                e.position.to_string(),
                &e.loop_id,
                &e.code
            )?;
            for el in &e.elements {
                let p = el.position;
                let pos = Element::Composite(vec![
                    p.element.to_string(),
                    p.component.map(|c| c.to_string()).unwrap_or_default(),
                    p.repetition.map(|r| r.to_string()).unwrap_or_default(),
                ]);
                w.segment(
                    "IK4",
                    &[
                        pos,
                        (&el.reference).into(),
                        (&el.code).into(),
                        (&el.bad_value).into(),
                    ],
                )?;
            }
        }
        let mut ik5: Vec<Element> = vec![(&s.status).into()];
        ik5.extend(s.codes.iter().map(Element::from));
        w.segment("IK5", &ik5)?;
    }
    let mut ak9: Vec<Element> = vec![
        (&a.status).into(),
        a.included.to_string().into(),
        a.received.to_string().into(),
        a.accepted.to_string().into(),
    ];
    ak9.extend(a.codes.iter().map(Element::from));
    w.segment("AK9", &ak9)?;
    w.end_set()
}

fn check(a: &FunctionalAck) -> Result<(), WriteError> {
    let ctx = "999";
    v::required(ctx, "functional_id", &a.functional_id, 2)?;
    v::required(ctx, "group_control_number", &a.group_control_number, 9)?;
    v::code(
        ctx,
        "status",
        &a.status,
        &["A", "E", "M", "P", "R", "W", "X"],
    )?;
    // AK902 repeats the received GE01, which may be wrong; only accepted <= received must hold.
    if a.accepted > a.received {
        return Err(invalid(
            ctx,
            "accepted",
            "accepted must not exceed received",
        ));
    }
    if a.codes.len() > 5 {
        return Err(invalid(ctx, "codes", "AK9 carries at most 5 error codes"));
    }
    for s in &a.sets {
        v::required(ctx, "sets.set_id", &s.set_id, 3)?;
        v::required(ctx, "sets.control_number", &s.control_number, 9)?;
        v::code(
            ctx,
            "sets.status",
            &s.status,
            &["A", "E", "M", "R", "W", "X"],
        )?;
        if s.codes.len() > 5 {
            return Err(invalid(
                ctx,
                "sets.codes",
                "IK5 carries at most 5 error codes",
            ));
        }
        for e in &s.errors {
            v::required(ctx, "sets.errors.segment_id", &e.segment_id, 3)?;
        }
    }
    Ok(())
}
