//! Calendar dates: ISO `YYYY-MM-DD` (APIs, databases) and X12 `CCYYMMDD` / `YYMMDD` / `RD8` ranges.

use chrono::NaiveDate;

/// Explains why a date string could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    /// The text is empty.
    #[error("date is blank; expected {expected}")]
    Blank {
        /// The expected format.
        expected: &'static str,
    },
    /// The text has the wrong length or a non-digit where a digit belongs.
    #[error("date {input:?} is not in the form {expected}")]
    Format {
        /// The rejected text.
        input: String,
        /// The expected format.
        expected: &'static str,
    },
    /// The month is not 1..=12.
    #[error("date {input:?} has month {month}; months run from 01 to 12")]
    Month {
        /// The rejected text.
        input: String,
        /// The month found.
        month: u32,
    },
    /// The day does not exist in that month (e.g. February 30, or February 29 of a common year).
    #[error("date {input:?} has day {day}, which does not exist in {year}-{month:02}")]
    Day {
        /// The rejected text.
        input: String,
        /// The year.
        year: i32,
        /// The month.
        month: u32,
        /// The day found.
        day: u32,
    },
    /// A range whose end is before its start.
    #[error("date range {input:?} ends before it starts")]
    Reversed {
        /// The rejected text.
        input: String,
    },
}

/// ISO calendar date format used on the wire and in databases.
pub const ISO_FORMAT: &str = "YYYY-MM-DD";
/// X12 date format (DTP/DTM with qualifier D8, BPR16, ...).
pub const X12_CCYYMMDD: &str = "CCYYMMDD";
/// X12 short date format (ISA09).
pub const X12_YYMMDD: &str = "YYMMDD";
/// X12 date range format (qualifier RD8).
pub const X12_RD8: &str = "CCYYMMDD-CCYYMMDD";

/// Reads `n` ASCII digits as a number, or `None` if any byte is not a digit.
fn digits(bytes: &[u8]) -> Option<u32> {
    bytes.iter().try_fold(0u32, |acc, b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

fn build(input: &str, year: i32, month: u32, day: u32) -> Result<NaiveDate, DateError> {
    if !(1..=12).contains(&month) {
        return Err(DateError::Month {
            input: input.to_owned(),
            month,
        });
    }
    NaiveDate::from_ymd_opt(year, month, day).ok_or_else(|| DateError::Day {
        input: input.to_owned(),
        year,
        month,
        day,
    })
}

fn format_error(input: &str, expected: &'static str) -> DateError {
    if input.is_empty() {
        DateError::Blank { expected }
    } else {
        DateError::Format {
            input: input.chars().take(40).collect(),
            expected,
        }
    }
}

/// Parses an ISO date `YYYY-MM-DD` exactly (no time, no offset, no shortened forms).
pub fn parse_iso_date(s: &str) -> Result<NaiveDate, DateError> {
    let b = s.as_bytes();
    let err = || format_error(s, ISO_FORMAT);
    if b.len() != 10 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return Err(err());
    }
    let year = b.get(0..4).and_then(digits).ok_or_else(err)?;
    let month = b.get(5..7).and_then(digits).ok_or_else(err)?;
    let day = b.get(8..10).and_then(digits).ok_or_else(err)?;
    build(s, year as i32, month, day)
}

/// Formats a date as ISO `YYYY-MM-DD`.
pub fn format_iso_date(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// Parses an X12 `CCYYMMDD` date (8 digits), as in `DTP*472*D8*20260115`.
pub fn parse_x12_date(s: &str) -> Result<NaiveDate, DateError> {
    let b = s.as_bytes();
    let err = || format_error(s, X12_CCYYMMDD);
    if b.len() != 8 {
        return Err(err());
    }
    let year = b.get(0..4).and_then(digits).ok_or_else(err)?;
    let month = b.get(4..6).and_then(digits).ok_or_else(err)?;
    let day = b.get(6..8).and_then(digits).ok_or_else(err)?;
    build(s, year as i32, month, day)
}

/// Formats a date as X12 `CCYYMMDD`.
///
/// Years outside 0..=9999 cannot be written in 8 digits; chrono prints them with a sign, which
/// an X12 validator rejects. Dates in medbill come from parsed 4-digit years, so this does not occur.
pub fn format_x12_date(date: NaiveDate) -> String {
    date.format("%Y%m%d").to_string()
}

/// Parses an X12 `YYMMDD` date (6 digits, as in ISA09) as a date in 2000..=2099.
///
/// X12 interchanges since 5010 (2010) carry only 21st-century dates in ISA09, so the century is
/// fixed rather than guessed with a pivot year.
pub fn parse_x12_short_date(s: &str) -> Result<NaiveDate, DateError> {
    let b = s.as_bytes();
    let err = || format_error(s, X12_YYMMDD);
    if b.len() != 6 {
        return Err(err());
    }
    let year = b.get(0..2).and_then(digits).ok_or_else(err)?;
    let month = b.get(2..4).and_then(digits).ok_or_else(err)?;
    let day = b.get(4..6).and_then(digits).ok_or_else(err)?;
    build(s, 2000 + year as i32, month, day)
}

/// Formats a date as X12 `YYMMDD` (the last two digits of the year).
pub fn format_x12_short_date(date: NaiveDate) -> String {
    date.format("%y%m%d").to_string()
}

/// Parses an X12 `RD8` range `CCYYMMDD-CCYYMMDD` into (from, to), inclusive; `to` may equal `from`.
pub fn parse_x12_date_range(s: &str) -> Result<(NaiveDate, NaiveDate), DateError> {
    let Some((from, to)) = s.split_once('-') else {
        return Err(format_error(s, X12_RD8));
    };
    // A malformed half is reported against the whole range's format; a well-formed but
    // impossible date keeps its precise month/day error.
    let part = |p: &str| {
        parse_x12_date(p).map_err(|e| match e {
            DateError::Format { .. } | DateError::Blank { .. } => format_error(s, X12_RD8),
            other => other,
        })
    };
    let from = part(from)?;
    let to = part(to)?;
    if to < from {
        return Err(DateError::Reversed {
            input: s.to_owned(),
        });
    }
    Ok((from, to))
}

/// Formats an inclusive range as X12 `RD8` `CCYYMMDD-CCYYMMDD`.
pub fn format_x12_date_range(from: NaiveDate, to: NaiveDate) -> String {
    format!("{}-{}", format_x12_date(from), format_x12_date(to))
}

/// Strict ISO `YYYY-MM-DD` serde for `NaiveDate` fields: `#[serde(with = "medbill_domain::dates::iso")]`.
///
/// chrono's own serde accepts more forms (signed and 5-digit years); this accepts only [`parse_iso_date`].
pub mod iso {
    use chrono::NaiveDate;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes a date as `YYYY-MM-DD`.
    pub fn serialize<S: Serializer>(date: &NaiveDate, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format_iso_date(*date))
    }

    /// Deserializes a date from a `YYYY-MM-DD` string.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NaiveDate, D::Error> {
        let s = String::deserialize(deserializer)?;
        super::parse_iso_date(&s).map_err(serde::de::Error::custom)
    }
}

/// Strict ISO serde for `Option<NaiveDate>` fields: `#[serde(default, with = "medbill_domain::dates::iso_option")]`.
pub mod iso_option {
    use chrono::NaiveDate;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes `Some(date)` as `YYYY-MM-DD` and `None` as null.
    pub fn serialize<S: Serializer>(
        date: &Option<NaiveDate>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match date {
            Some(d) => serializer.serialize_some(&super::format_iso_date(*d)),
            None => serializer.serialize_none(),
        }
    }

    /// Deserializes null as `None` and a `YYYY-MM-DD` string as `Some(date)`.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<NaiveDate>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|s| super::parse_iso_date(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    #[test]
    fn iso_round_trip() {
        assert_eq!(parse_iso_date("2026-01-15"), Ok(d(2026, 1, 15)));
        assert_eq!(format_iso_date(d(2026, 1, 5)), "2026-01-05");
        assert_eq!(parse_iso_date("2024-02-29"), Ok(d(2024, 2, 29)));
    }

    #[test]
    fn iso_rejects_precisely() {
        assert_eq!(
            parse_iso_date(""),
            Err(DateError::Blank {
                expected: "YYYY-MM-DD"
            })
        );
        for bad in [
            "2026-1-15",
            "2026/01/15",
            "20260115",
            "2026-01-15T00:00:00",
            "2026-0a-15",
            " 2026-01-1",
        ] {
            assert_eq!(
                parse_iso_date(bad),
                Err(DateError::Format {
                    input: bad.into(),
                    expected: "YYYY-MM-DD"
                }),
                "{bad}"
            );
        }
        assert_eq!(
            parse_iso_date("2026-13-01"),
            Err(DateError::Month {
                input: "2026-13-01".into(),
                month: 13
            })
        );
        assert_eq!(
            parse_iso_date("2025-02-29"),
            Err(DateError::Day {
                input: "2025-02-29".into(),
                year: 2025,
                month: 2,
                day: 29
            })
        );
        assert_eq!(
            parse_iso_date("2025-02-29").map_err(|e| e.to_string()),
            Err("date \"2025-02-29\" has day 29, which does not exist in 2025-02".into())
        );
    }

    #[test]
    fn x12_dates() {
        assert_eq!(parse_x12_date("20260115"), Ok(d(2026, 1, 15)));
        assert_eq!(format_x12_date(d(2026, 1, 5)), "20260105");
        assert_eq!(
            parse_x12_date("2026011"),
            Err(DateError::Format {
                input: "2026011".into(),
                expected: "CCYYMMDD"
            })
        );
        assert_eq!(
            parse_x12_date("20260431"),
            Err(DateError::Day {
                input: "20260431".into(),
                year: 2026,
                month: 4,
                day: 31
            })
        );
        assert_eq!(
            parse_x12_date("20260001"),
            Err(DateError::Month {
                input: "20260001".into(),
                month: 0
            })
        );
        assert_eq!(parse_x12_short_date("261127"), Ok(d(2026, 11, 27)));
        assert_eq!(format_x12_short_date(d(2026, 11, 27)), "261127");
        assert_eq!(
            parse_x12_short_date("26112"),
            Err(DateError::Format {
                input: "26112".into(),
                expected: "YYMMDD"
            })
        );
        assert_eq!(
            parse_x12_short_date("2611٢7"),
            Err(DateError::Format {
                input: "2611٢7".into(),
                expected: "YYMMDD"
            })
        );
    }

    #[test]
    fn x12_ranges() {
        assert_eq!(
            parse_x12_date_range("20260101-20260105"),
            Ok((d(2026, 1, 1), d(2026, 1, 5)))
        );
        assert_eq!(
            parse_x12_date_range("20260101-20260101"),
            Ok((d(2026, 1, 1), d(2026, 1, 1)))
        );
        assert_eq!(
            format_x12_date_range(d(2026, 1, 1), d(2026, 1, 5)),
            "20260101-20260105"
        );
        assert_eq!(
            parse_x12_date_range("20260105-20260101"),
            Err(DateError::Reversed {
                input: "20260105-20260101".into()
            })
        );
        assert_eq!(
            parse_x12_date_range("20260105"),
            Err(DateError::Format {
                input: "20260105".into(),
                expected: "CCYYMMDD-CCYYMMDD"
            })
        );
        assert!(matches!(
            parse_x12_date_range("20260230-20260301"),
            Err(DateError::Day { day: 30, .. })
        ));
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Row {
        #[serde(with = "super::iso")]
        on: NaiveDate,
        #[serde(default, with = "super::iso_option")]
        until: Option<NaiveDate>,
    }

    #[test]
    fn strict_serde() {
        let row: Row = serde_json::from_str(r#"{"on":"2026-01-15","until":null}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            row,
            Row {
                on: d(2026, 1, 15),
                until: None
            }
        );
        let row: Row =
            serde_json::from_str(r#"{"on":"2026-01-15"}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(row.until, None);
        let json = serde_json::to_string(&Row {
            on: d(2026, 1, 5),
            until: Some(d(2026, 2, 1)),
        })
        .unwrap_or_default();
        assert_eq!(json, r#"{"on":"2026-01-05","until":"2026-02-01"}"#);
        let err = serde_json::from_str::<Row>(r#"{"on":"+2026-01-15"}"#)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not in the form YYYY-MM-DD"), "{err}");
        assert!(
            serde_json::from_str::<Row>(r#"{"on":"2026-01-15","until":"2026-02-30"}"#).is_err()
        );
    }
}
