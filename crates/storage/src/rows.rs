//! Conversions between row columns and domain values, the same in every service store:
//! money as BIGINT cents, timestamps as BIGINT unix micros, dates as `YYYY-MM-DD` text, codes
//! as their text form. A column that does not read back is [`StorageError::Corrupt`] naming it;
//! a value that cannot be written is [`StorageError::Unstorable`] naming the field.

use std::fmt::Display;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use medbill_domain::{Money, parse_iso_date};

use crate::{StorageError, time};

/// Returns `amount` as BIGINT cents, or [`StorageError::Unstorable`] naming `field`.
pub fn cents(amount: Money, field: &str) -> Result<i64, StorageError> {
    amount
        .to_minor_units()
        .map_err(|e| StorageError::Unstorable {
            field: field.to_owned(),
            reason: e.to_string(),
        })
}

/// Reads BIGINT cents back as an amount.
pub fn money(cents: i64) -> Money {
    Money::from_minor_units(cents)
}

/// Reads a BIGINT unix-micros column (`what` names it in the error).
pub fn timestamp(micros: i64, what: &'static str) -> Result<DateTime<Utc>, StorageError> {
    time::from_micros(micros).ok_or_else(|| {
        StorageError::corrupt(what, format!("{micros} microseconds is out of range"))
    })
}

/// Reads a `YYYY-MM-DD` text column.
pub fn date(text: &str, what: &'static str) -> Result<NaiveDate, StorageError> {
    parse_iso_date(text).map_err(|e| StorageError::corrupt(what, e.to_string()))
}

/// Reads a code column (a status, a type, an X12 code) through its `FromStr`.
pub fn code<T>(text: &str, what: &'static str) -> Result<T, StorageError>
where
    T: FromStr,
    T::Err: Display,
{
    text.parse()
        .map_err(|e: T::Err| StorageError::corrupt(what, e.to_string()))
}

/// The most rows one multi-row INSERT/UPDATE statement carries (well under SQLite's variable
/// limit and PostgreSQL's 65,535 parameters for the widest table written this way).
pub const STATEMENT_ROWS: usize = 64;

/// Splits `rows` into pieces of 64, 32, ... 1 rows, so a table's multi-row statements come in
/// at most seven shapes: each is prepared once and stays in the connection's statement cache
/// (a statement of every row count would be prepared anew, which costs PostgreSQL far more than
/// the insert).
pub fn statement_pieces<T>(rows: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut size = STATEMENT_ROWS;
        while size > rest.len() {
            size /= 2;
        }
        let (piece, tail) = rest.split_at(size);
        rest = tail;
        Some(piece)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_name_the_field_of_a_fractional_amount() {
        let ok: Money = "12.34".parse().unwrap();
        assert_eq!(cents(ok, "charge").unwrap(), 1234);
        assert_eq!(money(1234), ok);
        let fractional = Money::from_decimal(rust_decimal::Decimal::new(12_345, 3));
        let err = cents(fractional, "lines[0].charge").unwrap_err();
        assert!(
            matches!(&err, StorageError::Unstorable { field, .. } if field == "lines[0].charge")
        );
    }

    #[test]
    fn unreadable_columns_are_corrupt_and_named() {
        assert!(matches!(
            timestamp(i64::MAX, "claims.created_at"),
            Err(StorageError::Corrupt {
                what: "claims.created_at",
                ..
            })
        ));
        assert!(matches!(
            date("2026-13-01", "claims.service_date"),
            Err(StorageError::Corrupt {
                what: "claims.service_date",
                ..
            })
        ));
        assert_eq!(date("2026-02-28", "d").unwrap().to_string(), "2026-02-28");
        assert_eq!(code::<u8>("7", "n").unwrap(), 7);
        assert!(matches!(
            code::<u8>("x", "n"),
            Err(StorageError::Corrupt { what: "n", .. })
        ));
    }

    #[test]
    fn statement_pieces_come_in_power_of_two_sizes_and_cover_every_row() {
        let rows: Vec<usize> = (0..200).collect();
        let sizes: Vec<usize> = statement_pieces(&rows).map(<[usize]>::len).collect();
        assert_eq!(sizes, vec![64, 64, 64, 8]);
        let again: Vec<usize> = statement_pieces(&rows).flatten().copied().collect();
        assert_eq!(again, rows);
        assert_eq!(statement_pieces::<usize>(&[]).count(), 0);
        let odd: Vec<usize> = statement_pieces(&rows[..7]).map(<[usize]>::len).collect();
        assert_eq!(odd, vec![4, 2, 1]);
    }
}
