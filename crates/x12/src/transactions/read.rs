//! Element helpers shared by the typed readers: text, decimals, dates, names, addresses.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::decimal::parse_decimal;
use crate::error::{Error, ErrorKind};
use crate::model::claim::Procedure;
use crate::model::{Address, DateRange, PartyName, PersonName};
use crate::segment::Segment;
use crate::tree::TransactionSet;

/// A typed reader's result: the value read and the problems found on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed<T> {
    /// What could be read.
    pub value: T,
    /// Problems found (errors and warnings), in segment order.
    pub problems: Vec<Error>,
}

impl<T> Parsed<T> {
    /// Returns true when any problem is an error (not only a warning).
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(Error::is_error)
    }

    /// Returns the value when no problem is an error, else the problems.
    pub fn into_result(self) -> Result<T, Vec<Error>> {
        if self.has_errors() {
            Err(self.problems)
        } else {
            Ok(self.value)
        }
    }
}

/// Collects problems while a reader walks a set.
#[derive(Debug, Default)]
pub(crate) struct Problems(pub Vec<Error>);

impl Problems {
    pub(crate) fn push(&mut self, seg: &Segment<'_>, element: usize, kind: ErrorKind) {
        self.0.push(Error::at(seg.position_at(element), kind));
    }

    pub(crate) fn missing_segment(&mut self, seg: Option<&Segment<'_>>, id: &'static str) {
        let position = seg.map(Segment::position).unwrap_or_default();
        self.0
            .push(Error::at(position, ErrorKind::MissingSegment(id)));
    }

    /// Checks ST01; returns false (with a problem) when the set is of another type.
    pub(crate) fn expect_set(&mut self, set: &TransactionSet<'_>, expected: &'static str) -> bool {
        let found = set.set_id();
        if found == expected {
            return true;
        }
        let position = set.st().map(Segment::position).unwrap_or_default();
        self.0.push(Error::at(
            position,
            ErrorKind::WrongTransactionType { expected, found },
        ));
        false
    }

    /// Returns element `n` as a decimal, `None` when empty; records a problem when it is not a number.
    pub(crate) fn decimal(
        &mut self,
        seg: &Segment<'_>,
        n: usize,
        name: &'static str,
    ) -> Option<Decimal> {
        let b = seg.bytes(n);
        if b.is_empty() {
            return None;
        }
        let v = parse_decimal(b);
        if v.is_none() {
            self.push(
                seg,
                n,
                ErrorKind::InvalidDecimal {
                    element: name,
                    value: seg.text(n).into_owned(),
                },
            );
        }
        v
    }

    /// Returns element `n` as a required decimal; records a problem when missing or invalid.
    pub(crate) fn req_decimal(
        &mut self,
        seg: &Segment<'_>,
        n: usize,
        name: &'static str,
    ) -> Option<Decimal> {
        if seg.bytes(n).is_empty() {
            self.push(seg, n, ErrorKind::MissingElement(name));
            return None;
        }
        self.decimal(seg, n, name)
    }

    /// Parses a CCYYMMDD date (longer text such as CCYYMMDDHHMM is cut to its date).
    pub(crate) fn date_text(
        &mut self,
        seg: &Segment<'_>,
        n: usize,
        name: &'static str,
        text: &str,
    ) -> Option<NaiveDate> {
        let d = text
            .get(..8)
            .and_then(|t| NaiveDate::parse_from_str(t, "%Y%m%d").ok());
        if d.is_none() {
            // A birth date is PHI even when malformed: it is not echoed.
            let value = if name == "DMG02" {
                "(redacted)".to_owned()
            } else {
                text.to_owned()
            };
            self.push(
                seg,
                n,
                ErrorKind::InvalidDate {
                    element: name,
                    value,
                },
            );
        }
        d
    }

    /// Returns element `n` as a date, `None` when empty.
    pub(crate) fn date(
        &mut self,
        seg: &Segment<'_>,
        n: usize,
        name: &'static str,
    ) -> Option<NaiveDate> {
        let t = seg.text(n);
        if t.is_empty() {
            return None;
        }
        self.date_text(seg, n, name, &t)
    }

    /// Reads a date or range from a DTP (DTP02 format, DTP03 value) or from elements
    /// (`format_at`, `format_at + 1`) of another segment.
    pub(crate) fn date_range(
        &mut self,
        seg: &Segment<'_>,
        format_at: usize,
        name: &'static str,
    ) -> Option<DateRange> {
        let format = seg.text(format_at);
        let value = seg.text(format_at + 1);
        match format.as_ref() {
            "RD8" => {
                let (from, to) = value.split_once('-').unwrap_or((&value, ""));
                let from = self.date_text(seg, format_at + 1, name, from)?;
                let to = self.date_text(seg, format_at + 1, name, to)?;
                Some(DateRange { from, to: Some(to) })
            }
            "D8" | "DT" => Some(DateRange::day(self.date_text(
                seg,
                format_at + 1,
                name,
                &value,
            )?)),
            _ => {
                self.push(
                    seg,
                    format_at,
                    ErrorKind::InvalidCode {
                        element: name,
                        value: format.into_owned(),
                        expected: "D8, DT or RD8",
                    },
                );
                None
            }
        }
    }
}

/// Returns element `n` as an owned string (`""` when absent).
pub(crate) fn text(seg: &Segment<'_>, n: usize) -> String {
    seg.text(n).into_owned()
}

/// Returns element `n` as `Some` owned string, `None` when absent or empty.
pub(crate) fn opt(seg: &Segment<'_>, n: usize) -> Option<String> {
    let t = seg.text(n);
    if t.is_empty() {
        None
    } else {
        Some(t.into_owned())
    }
}

/// Returns the components of element `n` as owned strings.
pub(crate) fn components(seg: &Segment<'_>, n: usize) -> Vec<String> {
    seg.element(n)
        .map(|e| {
            e.components()
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Returns the non-empty repetitions of element `n` as owned strings.
pub(crate) fn repetitions(seg: &Segment<'_>, n: usize) -> Vec<String> {
    seg.element(n)
        .map(|e| {
            e.repetitions()
                .map(|r| r.text().into_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Reads NM103 (last), NM104, NM105 and NM107 as a person name.
pub(crate) fn person_name(nm1: &Segment<'_>) -> PersonName {
    PersonName {
        last: text(nm1, 3),
        first: opt(nm1, 4),
        middle: opt(nm1, 5),
        suffix: opt(nm1, 7),
    }
}

/// Reads an NM1 name as a person (NM102 = 1) or an organisation.
pub(crate) fn party_name(nm1: &Segment<'_>) -> PartyName {
    if nm1.text(2) == "1" {
        PartyName::Person(person_name(nm1))
    } else {
        PartyName::Organization { name: text(nm1, 3) }
    }
}

/// Fills address line fields from an N3.
pub(crate) fn apply_n3(a: &mut Address, n3: &Segment<'_>) {
    a.line1 = text(n3, 1);
    a.line2 = opt(n3, 2);
}

/// Fills city, state and postal code from an N4.
pub(crate) fn apply_n4(a: &mut Address, n4: &Segment<'_>) {
    a.city = text(n4, 1);
    a.state = text(n4, 2);
    a.postal_code = text(n4, 3);
}

/// Parses an HHMM (or HHMMSS) time, midnight when unreadable.
pub(crate) fn hhmm(t: &str) -> chrono::NaiveTime {
    t.get(..4)
        .and_then(|t| chrono::NaiveTime::parse_from_str(t, "%H%M").ok())
        .unwrap_or_default()
}

/// Reads a procedure composite (qualifier, code, up to four modifiers) from element `n`.
pub(crate) fn procedure(seg: &Segment<'_>, n: usize) -> Procedure {
    let c = components(seg, n);
    let mut it = c.into_iter();
    let qualifier = it.next().unwrap_or_default();
    let code = it.next().unwrap_or_default();
    // Components 3..6 are modifiers; 7 is a description, which the model does not hold.
    let modifiers = it.take(4).filter(|m| !m.is_empty()).collect();
    Procedure {
        qualifier,
        code,
        modifiers,
    }
}
