//! Acknowledgment models: the 999 implementation acknowledgment (005010X231A1) and the TA1
//! interchange acknowledgment.

use chrono::{NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};

/// A TA1 interchange acknowledgment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterchangeAck {
    /// TA101: the ISA13 control number acknowledged.
    pub control_number: u32,
    /// TA102: the ISA09 date of that interchange.
    pub date: NaiveDate,
    /// TA103: the ISA10 time of that interchange (HHMM).
    pub time: NaiveTime,
    /// TA104: A accepted, E accepted with errors, R rejected.
    pub status: String,
    /// TA105: interchange note code (000 no error, 001..031 errors).
    pub note_code: String,
}

/// The position of a bad element (IK401: element, component, repetition).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElementPosition {
    /// IK401-1: element position in the segment (1-based).
    pub element: u32,
    /// IK401-2: component position in a composite.
    pub component: Option<u32>,
    /// IK401-3: repeating data element position.
    pub repetition: Option<u32>,
}

/// An IK4 element error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElementError {
    /// IK401.
    pub position: ElementPosition,
    /// IK402: data element reference number.
    pub reference: Option<String>,
    /// IK403: implementation element syntax error code (1 required missing, 7 invalid code...).
    pub code: String,
    /// IK404: copy of the bad data element.
    pub bad_value: Option<String>,
}

/// An IK3 segment error and its IK4 element errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentError {
    /// IK301: segment id.
    pub segment_id: String,
    /// IK302: position in the transaction set (ST = 1).
    pub position: u32,
    /// IK303: loop identifier.
    pub loop_id: Option<String>,
    /// IK304: implementation segment syntax error code (1 unrecognized, 3 required missing, 8 ...).
    pub code: Option<String>,
    /// IK4 segments following the IK3.
    pub elements: Vec<ElementError>,
}

/// The acknowledgment of one transaction set (AK2 .. IK5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetAck {
    /// AK201: transaction set id (837, 270...).
    pub set_id: String,
    /// AK202: ST02 acknowledged.
    pub control_number: String,
    /// AK203: implementation convention reference (ST03).
    pub version: Option<String>,
    /// IK3/IK4 errors.
    pub errors: Vec<SegmentError>,
    /// IK501: A accepted, E accepted with errors, M, R rejected, W, X.
    pub status: String,
    /// IK502..IK506: syntax error codes.
    pub codes: Vec<String>,
}

impl SetAck {
    /// Tells whether the set was accepted (IK501 A or E).
    pub fn is_accepted(&self) -> bool {
        matches!(self.status.as_str(), "A" | "E")
    }
}

/// A 999 for one functional group (AK1 .. AK9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionalAck {
    /// AK101: functional identifier code of the group acknowledged (HC, HS...).
    pub functional_id: String,
    /// AK102: GS06 of the group acknowledged.
    pub group_control_number: String,
    /// AK103: GS08 of the group acknowledged.
    pub version: Option<String>,
    /// AK2 loops.
    pub sets: Vec<SetAck>,
    /// AK901: A, E, M, P partially accepted, R, W, X.
    pub status: String,
    /// AK902: number of sets included in the group.
    pub included: u32,
    /// AK903: number of sets received.
    pub received: u32,
    /// AK904: number of sets accepted.
    pub accepted: u32,
    /// AK905..AK909: functional group syntax error codes.
    pub codes: Vec<String>,
}
