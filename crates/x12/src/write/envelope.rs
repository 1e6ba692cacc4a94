//! Separators and envelope (ISA, GS) header values.

use chrono::{NaiveDate, NaiveTime};

use super::WriteError;

/// The four separator characters of an interchange, plus whether a newline follows each segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Separators {
    /// Data element separator (ISA position 4).
    pub element: char,
    /// Component element separator (ISA16).
    pub component: char,
    /// Repetition separator (ISA11).
    pub repetition: char,
    /// Segment terminator (may be `'\n'`).
    pub segment: char,
    /// Writes a `'\n'` after each segment terminator (ignored when the terminator is `'\n'`).
    pub newline: bool,
}

impl Default for Separators {
    fn default() -> Self {
        Self {
            element: '*',
            component: ':',
            repetition: '^',
            segment: '~',
            newline: false,
        }
    }
}

impl Separators {
    /// Pipe elements, `>` components, `!` repetitions and newline-terminated
    /// segments: a set some trading partners use, and the one the writers'
    /// tests use to catch a hard-coded `*` or `~`.
    pub fn unusual() -> Self {
        Self {
            element: '|',
            component: '>',
            repetition: '!',
            segment: '\n',
            newline: false,
        }
    }

    /// Checks that the separators are distinct, single-byte and neither alphanumeric nor spaces.
    pub fn validate(&self) -> Result<(), WriteError> {
        let all = [self.element, self.component, self.repetition, self.segment];
        for (i, c) in all.iter().enumerate() {
            if !c.is_ascii() || c.is_ascii_alphanumeric() || *c == ' ' {
                return Err(WriteError::InvalidSeparators(format!(
                    "{c:?} must be an ASCII punctuation or control character"
                )));
            }
            if all[i + 1..].contains(c) {
                return Err(WriteError::InvalidSeparators(format!(
                    "{c:?} is used twice"
                )));
            }
        }
        Ok(())
    }
}

/// ISA15: production or test data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Usage {
    /// P.
    Production,
    /// T.
    #[default]
    Test,
}

/// Values of the ISA segment that the caller chooses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterchangeHeader {
    /// ISA05: sender id qualifier (ZZ mutually defined, 01 DUNS, 30 federal tax id...).
    pub sender_qualifier: String,
    /// ISA06: at most 15 characters (padded with spaces).
    pub sender_id: String,
    /// ISA07.
    pub receiver_qualifier: String,
    /// ISA08: at most 15 characters (padded with spaces).
    pub receiver_id: String,
    /// ISA09 (YYMMDD).
    pub date: NaiveDate,
    /// ISA10 (HHMM).
    pub time: NaiveTime,
    /// ISA13 / IEA02: 1 to 999999999, written as 9 digits.
    pub control_number: u32,
    /// ISA14: ask for a TA1.
    pub ack_requested: bool,
    /// ISA15.
    pub usage: Usage,
}

impl InterchangeHeader {
    /// Returns a test-usage header between ZZ SENDER and ZZ RECEIVER dated 2026-01-02 12:00.
    pub fn test_default(control_number: u32) -> Self {
        Self {
            sender_qualifier: "ZZ".into(),
            sender_id: "SENDER".into(),
            receiver_qualifier: "ZZ".into(),
            receiver_id: "RECEIVER".into(),
            date: NaiveDate::from_ymd_opt(2026, 1, 2).unwrap_or_default(),
            time: NaiveTime::from_hms_opt(12, 0, 0).unwrap_or_default(),
            control_number,
            ack_requested: false,
            usage: Usage::Test,
        }
    }
}

/// Values of the GS segment that the caller chooses (GS01 and GS08 come from the typed writer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupHeader {
    /// GS02: application sender's code, 2 to 15 characters.
    pub sender_code: String,
    /// GS03: application receiver's code, 2 to 15 characters.
    pub receiver_code: String,
    /// GS04 (CCYYMMDD).
    pub date: NaiveDate,
    /// GS05 (HHMM).
    pub time: NaiveTime,
    /// GS06 / GE02: 1 to 999999999.
    pub control_number: u32,
}

impl GroupHeader {
    /// Returns a group header.
    pub fn new(
        sender_code: impl Into<String>,
        receiver_code: impl Into<String>,
        date: NaiveDate,
        time: NaiveTime,
        control_number: u32,
    ) -> Self {
        Self {
            sender_code: sender_code.into(),
            receiver_code: receiver_code.into(),
            date,
            time,
            control_number,
        }
    }
}
