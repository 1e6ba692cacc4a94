//! Domain types shared by every medbill service: money, identifiers, NPI, dates, benefit math.
//!
//! Everything here is pure (no I/O) and exact: amounts and rates are [`rust_decimal::Decimal`],
//! never floating point.

#![forbid(unsafe_code)]

pub mod money;

pub use money::{AmountError, DecimalSyntax, Money, Rate, RateError};
