//! The TA1 (interchange acknowledgment) writer.

use super::format::invalid;
use super::{WriteError, X12Writer, validate as v};
use crate::model::ack::InterchangeAck;
use crate::seg;

/// Writes a TA1 segment into the writer's open interchange (before any GS).
pub fn write_ta1(w: &mut X12Writer, a: &InterchangeAck) -> Result<(), WriteError> {
    let ctx = "TA1";
    if a.control_number == 0 || a.control_number > 999_999_999 {
        return Err(invalid(ctx, "control_number", "must be 1 to 999999999"));
    }
    v::code(ctx, "status", &a.status, &["A", "E", "R"])?;
    v::digits(ctx, "note_code", &a.note_code, 3)?;
    seg!(
        w,
        "TA1",
        format!("{:09}", a.control_number),
        a.date.format("%y%m%d").to_string(),
        a.time.format("%H%M").to_string(),
        &a.status,
        &a.note_code
    )
}
