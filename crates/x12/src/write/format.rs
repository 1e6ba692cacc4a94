//! Formatting helpers shared by the typed writers.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::{Element, WriteError};
use crate::model::{DateRange, PartyName, PersonName};

/// Formats an amount (at most 2 decimal places) without trailing zeros, as the R type allows.
pub(crate) fn amount(context: &str, field: &'static str, v: Decimal) -> Result<String, WriteError> {
    if v.round_dp(2) != v {
        return Err(invalid(
            context,
            field,
            "amount has more than 2 decimal places",
        ));
    }
    Ok(v.normalize().to_string())
}

/// Formats a quantity or percent (any scale) without trailing zeros.
pub(crate) fn decimal(v: Decimal) -> String {
    v.normalize().to_string()
}

pub(crate) fn opt_amount(
    context: &str,
    field: &'static str,
    v: Option<Decimal>,
) -> Result<String, WriteError> {
    v.map_or(Ok(String::new()), |v| amount(context, field, v))
}

/// Formats a date as CCYYMMDD.
pub(crate) fn d8(d: NaiveDate) -> String {
    d.format("%Y%m%d").to_string()
}

/// Returns the DTP02 format qualifier and DTP03 value for a date or range.
pub(crate) fn dtp(r: &DateRange) -> (&'static str, String) {
    match r.to {
        Some(to) => ("RD8", format!("{}-{}", d8(r.from), d8(to))),
        None => ("D8", d8(r.from)),
    }
}

/// Returns NM102..NM107 for a party name.
pub(crate) fn nm1_name(name: &PartyName) -> [Element; 5] {
    match name {
        PartyName::Organization { name } => {
            ["2".into(), name.into(), "".into(), "".into(), "".into()]
        }
        PartyName::Person(p) => person_elements(p),
    }
}

/// Returns NM102..NM107 for a person.
pub(crate) fn person_elements(p: &PersonName) -> [Element; 5] {
    [
        "1".into(),
        (&p.last).into(),
        (&p.first).into(),
        (&p.middle).into(),
        "".into(),
    ]
}

/// Returns NM107 (name suffix) for a party name.
pub(crate) fn suffix(name: &PartyName) -> Element {
    match name {
        PartyName::Person(p) => (&p.suffix).into(),
        PartyName::Organization { .. } => "".into(),
    }
}

pub(crate) fn invalid(context: &str, field: &'static str, reason: &str) -> WriteError {
    WriteError::Invalid {
        context: context.to_owned(),
        field,
        reason: reason.to_owned(),
    }
}
