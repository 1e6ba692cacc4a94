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

/// The meaning of a 999 IK304 implementation segment syntax error code (X12 element 620), or
/// `None` for a code the standard does not define.
pub fn segment_error_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "1" => "unrecognized segment id",
        "2" => "unexpected segment",
        "3" => "required segment missing",
        "4" => "loop occurs over maximum times",
        "5" => "segment exceeds maximum use",
        "6" => "segment not in defined transaction set",
        "7" => "segment not in proper sequence",
        "8" => "segment has data element errors",
        "I4" => "implementation \"not used\" segment present",
        "I6" => "implementation dependent segment missing",
        "I7" => "implementation loop occurs under minimum times",
        "I8" => "implementation segment below minimum use",
        "I9" => "implementation dependent \"not used\" segment present",
        _ => return None,
    })
}

/// The meaning of a 999 IK403 implementation data element syntax error code (X12 element 621).
pub fn element_error_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "1" => "required data element missing",
        "2" => "conditional required data element missing",
        "3" => "too many data elements",
        "4" => "data element too short",
        "5" => "data element too long",
        "6" => "invalid character in data element",
        "7" => "invalid code value",
        "8" => "invalid date",
        "9" => "invalid time",
        "10" => "exclusion condition violated",
        "12" => "too many repetitions",
        "13" => "too many components",
        "I6" => "code value not used in implementation",
        "I9" => "implementation dependent data element missing",
        "I10" => "implementation \"not used\" data element present",
        "I11" => "implementation too few repetitions",
        "I12" => "implementation pattern match failure",
        "I13" => "implementation dependent \"not used\" data element present",
        _ => return None,
    })
}

/// The meaning of a 999 IK501 / AK901 acknowledgment code (X12 elements 717 / 715).
pub fn ack_code_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "A" => "accepted",
        "E" => "accepted but errors were noted",
        "M" => "rejected, message authentication code failed",
        "P" => "partially accepted, at least one transaction set rejected",
        "R" => "rejected",
        "W" => "rejected, assurance failed validity tests",
        "X" => "rejected, content after decryption could not be analyzed",
        _ => return None,
    })
}

/// The meaning of a TA105 interchange note code (X12 element I18).
pub fn interchange_note_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "000" => "no error",
        "001" => "the interchange control numbers in the header and trailer do not match",
        "002" => "the standard in the control standards identifier is not supported",
        "003" => "this version of the controls is not supported",
        "004" => "the segment terminator is invalid",
        "005" => "invalid interchange id qualifier for the sender",
        "006" => "invalid interchange sender id",
        "007" => "invalid interchange id qualifier for the receiver",
        "008" => "invalid interchange receiver id",
        "009" => "unknown interchange receiver id",
        "010" => "invalid authorization information qualifier value",
        "011" => "invalid authorization information value",
        "012" => "invalid security information qualifier value",
        "013" => "invalid security information value",
        "014" => "invalid interchange date value",
        "015" => "invalid interchange time value",
        "016" => "invalid interchange standards identifier value",
        "017" => "invalid interchange version id value",
        "018" => "invalid interchange control number value",
        "019" => "invalid acknowledgment requested value",
        "020" => "invalid test indicator value",
        "021" => "invalid number of included groups value",
        "022" => "invalid control structure",
        "023" => "improper (premature) end of file",
        "024" => "invalid interchange content (e.g. an invalid GS segment)",
        "025" => "duplicate interchange control number",
        "026" => "invalid data element separator",
        "027" => "invalid component element separator",
        "028" => "invalid delivery date in a deferred delivery request",
        "029" => "invalid delivery time in a deferred delivery request",
        "030" => "invalid delivery time code in a deferred delivery request",
        "031" => "invalid grade of service code",
        _ => return None,
    })
}
