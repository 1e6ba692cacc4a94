//! Input and output models for the transactions medbill writes (837P, 837I, 270, 276, 278, 999,
//! TA1) and reads back (271, 277/277CA, 278, 999, TA1, 837P, 837I).
//!
//! The writers in [`crate::write`] take these models and the readers in
//! [`crate::transactions`] return them, so a write-then-read round trip compares equal.
//! Amounts and percents are [`rust_decimal::Decimal`]; dates are [`chrono::NaiveDate`].

pub mod ack;
pub mod claim;
pub mod claim_status;
pub mod eligibility;
pub mod review;

use chrono::{NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};

/// A name as NM1 carries it: an organisation (NM102 = 2) or a person (NM102 = 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PartyName {
    /// An organisation name (NM103).
    Organization {
        /// NM103.
        name: String,
    },
    /// A person: NM103 last, NM104 first, NM105 middle, NM107 suffix.
    Person(PersonName),
}

impl PartyName {
    /// Returns an organisation name.
    pub fn organization(name: impl Into<String>) -> Self {
        Self::Organization { name: name.into() }
    }
}

/// A person's name (NM103 last, NM104 first, NM105 middle, NM107 suffix).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonName {
    /// NM103.
    pub last: String,
    /// NM104.
    pub first: Option<String>,
    /// NM105.
    pub middle: Option<String>,
    /// NM107.
    pub suffix: Option<String>,
}

impl PersonName {
    /// Returns a name with a last and first name only.
    pub fn new(last: impl Into<String>, first: impl Into<String>) -> Self {
        Self {
            last: last.into(),
            first: Some(first.into()),
            middle: None,
            suffix: None,
        }
    }
}

/// A postal address (N3 and N4).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// N301.
    pub line1: String,
    /// N302.
    pub line2: Option<String>,
    /// N401.
    pub city: String,
    /// N402, two letters for US addresses.
    pub state: String,
    /// N403, 5 or 9 digits for US addresses.
    pub postal_code: String,
}

/// A date or a date range (DTP with D8 or RD8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DateRange {
    /// The first (or only) day.
    pub from: NaiveDate,
    /// The last day; `None` writes a single date (D8), `Some` a range (RD8).
    pub to: Option<NaiveDate>,
}

impl DateRange {
    /// Returns a single-day date.
    pub fn day(date: NaiveDate) -> Self {
        Self {
            from: date,
            to: None,
        }
    }
}

/// The BHT values a writer emits at the start of a transaction set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionHeader {
    /// BHT03: the originator's reference for this transaction set.
    pub reference: String,
    /// BHT04.
    pub created_date: NaiveDate,
    /// BHT05, written as HHMM (seconds are not carried).
    pub created_time: NaiveTime,
}
