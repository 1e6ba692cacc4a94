//! Exact money amounts and rates over [`rust_decimal::Decimal`].
//!
//! Amounts never touch floating point: they are parsed from decimal strings with a strict
//! grammar (optional `-`, digits, optional `.` and digits), kept as `Decimal`, and stored in
//! databases as `i64` minor units (cents).

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest input echoed back in an error message; longer inputs are cut so an error stays readable.
const MAX_ECHO: usize = 40;

/// Explains what is wrong with the text of a decimal number (amount or rate).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalSyntax {
    /// The text is empty or only whitespace.
    #[error("it is blank")]
    Blank,
    /// The text starts or ends with whitespace.
    #[error("it has leading or trailing whitespace")]
    Whitespace,
    /// The text uses scientific notation such as `1e3`.
    #[error("exponent notation is not allowed; write a plain decimal such as 1000.00")]
    Exponent,
    /// The text is a floating-point special value such as `NaN` or `inf`.
    #[error("it is not a finite decimal number")]
    NotFinite,
    /// A sign appears somewhere other than the first character, or a `+` sign is used.
    #[error("misplaced or unsupported sign at position {position} (only a leading '-' is allowed)")]
    MisplacedSign {
        /// Zero-based character position of the sign.
        position: usize,
    },
    /// More than one decimal point.
    #[error("it has more than one decimal point")]
    MultipleDecimalPoints,
    /// A character that is not a digit, `-` or `.`.
    #[error("unexpected character {ch:?} at position {position}")]
    InvalidCharacter {
        /// The offending character.
        ch: char,
        /// Zero-based character position.
        position: usize,
    },
    /// Only a sign and/or a decimal point, no digits.
    #[error("it has no digits")]
    NoDigits,
    /// More fractional digits than the context allows.
    #[error("it has {places} decimal places; at most {max} are allowed")]
    TooManyDecimalPlaces {
        /// Fractional digits found.
        places: usize,
        /// Fractional digits allowed.
        max: usize,
    },
    /// More integer digits than the context allows.
    #[error("it has {digits} digits before the decimal point; at most {max} are allowed")]
    TooManyIntegerDigits {
        /// Integer digits found.
        digits: usize,
        /// Integer digits allowed.
        max: usize,
    },
}

/// Checks the strict decimal grammar and returns the exact value.
///
/// Leading zeros (`007.50`) and a bare fraction (`.5`, as X12 `R` elements allow) are accepted;
/// `+`, exponents, whitespace, separators and special values are not.
fn parse_decimal(
    s: &str,
    max_places: usize,
    max_int_digits: usize,
) -> Result<Decimal, DecimalSyntax> {
    if s.trim().is_empty() {
        return Err(DecimalSyntax::Blank);
    }
    if s.trim() != s {
        return Err(DecimalSyntax::Whitespace);
    }
    let lower = s.trim_start_matches('-').to_ascii_lowercase();
    if matches!(lower.as_str(), "nan" | "inf" | "infinity") {
        return Err(DecimalSyntax::NotFinite);
    }
    let mut int_digits = 0usize;
    let mut frac_digits = 0usize;
    let mut seen_point = false;
    for (position, ch) in s.chars().enumerate() {
        match ch {
            '0'..='9' if seen_point => frac_digits += 1,
            '0'..='9' => int_digits += 1,
            '.' if seen_point => return Err(DecimalSyntax::MultipleDecimalPoints),
            '.' => seen_point = true,
            '-' if position == 0 => {}
            '-' | '+' => return Err(DecimalSyntax::MisplacedSign { position }),
            'e' | 'E' => return Err(DecimalSyntax::Exponent),
            _ => return Err(DecimalSyntax::InvalidCharacter { ch, position }),
        }
    }
    if int_digits + frac_digits == 0 {
        return Err(DecimalSyntax::NoDigits);
    }
    if frac_digits > max_places {
        return Err(DecimalSyntax::TooManyDecimalPlaces {
            places: frac_digits,
            max: max_places,
        });
    }
    // Leading zeros do not make a number large.
    let significant_int = s
        .trim_start_matches('-')
        .split('.')
        .next()
        .unwrap_or("")
        .trim_start_matches('0')
        .len();
    if significant_int > max_int_digits {
        return Err(DecimalSyntax::TooManyIntegerDigits {
            digits: significant_int,
            max: max_int_digits,
        });
    }
    // The grammar above guarantees `from_str_exact` accepts the text; it still decides exactness.
    let text = s.strip_suffix('.').unwrap_or(s);
    let value = Decimal::from_str_exact(text).map_err(|_| DecimalSyntax::TooManyIntegerDigits {
        digits: significant_int,
        max: max_int_digits,
    })?;
    Ok(normalize_zero(value))
}

/// Drops the sign of a zero so `-0.00` behaves and prints like `0.00`.
fn normalize_zero(d: Decimal) -> Decimal {
    if d.is_zero() {
        let mut z = d;
        z.set_sign_positive(true);
        z
    } else {
        d
    }
}

fn echo(input: &str) -> String {
    if input.chars().count() > MAX_ECHO {
        let cut: String = input.chars().take(MAX_ECHO).collect();
        format!("{cut}...")
    } else {
        input.to_owned()
    }
}

/// Explains why an amount could not be parsed or converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// The text is not a valid amount.
    #[error("invalid amount {input:?}: {problem}")]
    Syntax {
        /// The rejected text (cut after 40 characters).
        input: String,
        /// What is wrong with it.
        problem: DecimalSyntax,
    },
    /// The amount has a fraction of a cent and cannot become minor units without rounding.
    #[error("amount {amount} is not a whole number of cents; round it first")]
    NotWholeCents {
        /// The amount as text.
        amount: String,
    },
    /// The amount does not fit in `i64` minor units.
    #[error("amount {amount} is too large to store as 64-bit cents")]
    Overflow {
        /// The amount as text.
        amount: String,
    },
}

/// An exact amount of money (US dollars in medbill), positive, zero or negative.
///
/// Parsed amounts carry at most 2 decimal places; amounts computed in code (for example a
/// coinsurance share) may carry more until [`Money::round_cents`] is called.
/// Equality and ordering compare values, so `1.5` equals `1.50`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(Decimal);

impl Money {
    /// Zero dollars.
    pub const ZERO: Money = Money(Decimal::ZERO);
    /// Decimal places allowed in an amount on the wire (X12, JSON, protobuf strings).
    pub const WIRE_DECIMAL_PLACES: usize = 2;
    /// Integer digits allowed when parsing; any parsed amount therefore fits in `i64` cents.
    pub const MAX_INTEGER_DIGITS: usize = 16;

    /// Parses a wire amount such as `"125.00"`, `"-12.5"` or `".75"`, exactly.
    ///
    /// Rejects blank text, whitespace, exponents (`1e3`), `+`, thousands separators,
    /// `NaN`/`inf`, more than 2 decimal places and more than 16 integer digits.
    pub fn parse(s: &str) -> Result<Money, AmountError> {
        parse_decimal(s, Self::WIRE_DECIMAL_PLACES, Self::MAX_INTEGER_DIGITS)
            .map(Money)
            .map_err(|problem| AmountError::Syntax {
                input: echo(s),
                problem,
            })
    }

    /// Wraps a decimal computed in code; any scale is kept as is.
    pub const fn from_decimal(value: Decimal) -> Money {
        Money(value)
    }

    /// Returns the exact decimal value.
    pub const fn as_decimal(&self) -> Decimal {
        self.0
    }

    /// Builds an amount from `i64` minor units (cents): `12345` is `123.45`.
    pub fn from_minor_units(cents: i64) -> Money {
        Money(Decimal::new(cents, 2))
    }

    /// Returns the amount in `i64` minor units (cents).
    ///
    /// Fails when the amount has a fraction of a cent (call [`Money::round_cents`] first, so the
    /// rounding is a visible decision) or does not fit in `i64`.
    pub fn to_minor_units(&self) -> Result<i64, AmountError> {
        if !self.is_whole_cents() {
            return Err(AmountError::NotWholeCents {
                amount: self.to_string(),
            });
        }
        let cents =
            self.0
                .checked_mul(Decimal::ONE_HUNDRED)
                .ok_or_else(|| AmountError::Overflow {
                    amount: self.to_string(),
                })?;
        i64::try_from(cents).map_err(|_| AmountError::Overflow {
            amount: self.to_string(),
        })
    }

    /// Rounds to whole cents, half away from zero: `0.125` becomes `0.13`, `-0.125` becomes `-0.13`.
    ///
    /// This is the commercial rounding used on claims and remittances (not banker's rounding).
    pub fn round_cents(&self) -> Money {
        Money(normalize_zero(self.0.round_dp_with_strategy(
            2,
            RoundingStrategy::MidpointAwayFromZero,
        )))
    }

    /// Tells whether the amount is a whole number of cents.
    pub fn is_whole_cents(&self) -> bool {
        self.0.normalize().scale() <= 2
    }

    /// Tells whether the amount is zero.
    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }

    /// Tells whether the amount is below zero.
    pub fn is_negative(&self) -> bool {
        self.0.is_sign_negative() && !self.0.is_zero()
    }

    /// Tells whether the amount is above zero.
    pub fn is_positive(&self) -> bool {
        self.0.is_sign_positive() && !self.0.is_zero()
    }

    /// Returns the absolute value.
    pub fn abs(&self) -> Money {
        Money(self.0.abs())
    }

    /// Multiplies by a rate without rounding (the caller rounds once at the end of a line).
    pub fn mul_rate(&self, rate: Rate) -> Money {
        Money(normalize_zero(self.0 * rate.0))
    }

    /// Adds, returning `None` on decimal overflow instead of panicking.
    pub fn checked_add(&self, rhs: Money) -> Option<Money> {
        self.0.checked_add(rhs.0).map(Money)
    }

    /// Subtracts, returning `None` on decimal overflow instead of panicking.
    pub fn checked_sub(&self, rhs: Money) -> Option<Money> {
        self.0.checked_sub(rhs.0).map(|d| Money(normalize_zero(d)))
    }
}

impl fmt::Display for Money {
    /// Prints a plain decimal with at least 2 places (`125.00`, `-0.50`); an unrounded computed
    /// amount prints all its significant places (`0.125`) rather than hiding them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = normalize_zero(self.0.normalize());
        if d.scale() < 2 {
            d.rescale(2);
        }
        write!(f, "{d}")
    }
}

impl FromStr for Money {
    type Err = AmountError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Money::parse(s)
    }
}

impl From<Decimal> for Money {
    fn from(value: Decimal) -> Self {
        Money(value)
    }
}

impl From<Money> for Decimal {
    fn from(value: Money) -> Self {
        value.0
    }
}

// Arithmetic on `Decimal` only overflows near 7.9e28; parsed amounts are bounded to 16 integer
// digits, so the plain operators are safe for any realistic data. `checked_*` exist for the rest.
impl Add for Money {
    type Output = Money;

    fn add(self, rhs: Money) -> Money {
        Money(normalize_zero(self.0 + rhs.0))
    }
}

impl Sub for Money {
    type Output = Money;

    fn sub(self, rhs: Money) -> Money {
        Money(normalize_zero(self.0 - rhs.0))
    }
}

impl AddAssign for Money {
    fn add_assign(&mut self, rhs: Money) {
        *self = *self + rhs;
    }
}

impl SubAssign for Money {
    fn sub_assign(&mut self, rhs: Money) {
        *self = *self - rhs;
    }
}

impl Neg for Money {
    type Output = Money;

    fn neg(self) -> Money {
        Money(normalize_zero(-self.0))
    }
}

impl Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, Add::add)
    }
}

impl<'a> Sum<&'a Money> for Money {
    fn sum<I: Iterator<Item = &'a Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, |acc, m| acc + *m)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Money::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Explains why a rate could not be parsed or built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateError {
    /// The text is not a valid decimal.
    #[error("invalid rate {input:?}: {problem}")]
    Syntax {
        /// The rejected text (cut after 40 characters).
        input: String,
        /// What is wrong with it.
        problem: DecimalSyntax,
    },
    /// The value is below 0 or above 1.
    #[error("rate {value} is out of range: a rate is a fraction from 0 to 1 (0.2 = 20%)")]
    OutOfRange {
        /// The value as text.
        value: String,
    },
}

/// A percentage held as an exact decimal fraction from 0 to 1 (coinsurance `0.2` = 20%).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rate(Decimal);

impl Rate {
    /// 0%.
    pub const ZERO: Rate = Rate(Decimal::ZERO);
    /// 100%.
    pub const ONE: Rate = Rate(Decimal::ONE);
    /// Fractional digits accepted when parsing (`0.1234567890`).
    pub const MAX_DECIMAL_PLACES: usize = 10;

    /// Parses a fraction such as `".2"`, `"0.125"` or `"1"`, exactly; rejects values outside 0..=1.
    ///
    /// This is the X12 EB08 form: `.2` means 20%, not 0.2%.
    pub fn parse(s: &str) -> Result<Rate, RateError> {
        // Integer digits are bounded only loosely so "20" reads as out of range, not as a syntax error.
        let value = parse_decimal(s, Self::MAX_DECIMAL_PLACES, Money::MAX_INTEGER_DIGITS).map_err(
            |problem| RateError::Syntax {
                input: echo(s),
                problem,
            },
        )?;
        Rate::new(value)
    }

    /// Checks that a decimal lies in 0..=1 and wraps it.
    pub fn new(value: Decimal) -> Result<Rate, RateError> {
        if value < Decimal::ZERO || value > Decimal::ONE {
            return Err(RateError::OutOfRange {
                value: value.to_string(),
            });
        }
        Ok(Rate(normalize_zero(value)))
    }

    /// Returns the exact fraction.
    pub const fn as_decimal(&self) -> Decimal {
        self.0
    }

    /// Returns the complement `1 - rate` (the plan's share when the rate is the patient's).
    pub fn complement(&self) -> Rate {
        Rate(Decimal::ONE - self.0)
    }
}

impl fmt::Display for Rate {
    /// Prints the normalized fraction (`0.2`, `1`, `0.125`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.normalize())
    }
}

impl FromStr for Rate {
    type Err = RateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Rate::parse(s)
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Rate::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Money {
        match Money::parse(s) {
            Ok(v) => v,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn parses_exact_amounts() {
        assert_eq!(m("125.00").as_decimal(), Decimal::new(12500, 2));
        assert_eq!(m("-12.5").as_decimal(), Decimal::new(-125, 1));
        assert_eq!(m(".75").as_decimal(), Decimal::new(75, 2));
        assert_eq!(m("007.10").as_decimal(), Decimal::new(710, 2));
        assert_eq!(m("5.").as_decimal(), Decimal::new(5, 0));
        assert_eq!(m("0.1") + m("0.2"), m("0.3"));
        assert_eq!(
            m("9999999999999999.99").to_minor_units(),
            Ok(999_999_999_999_999_999)
        );
    }

    #[test]
    fn rejects_bad_amounts_with_a_reason() {
        let cases: &[(&str, DecimalSyntax)] = &[
            ("", DecimalSyntax::Blank),
            ("   ", DecimalSyntax::Blank),
            (" 1.00", DecimalSyntax::Whitespace),
            ("1e3", DecimalSyntax::Exponent),
            ("1.5E2", DecimalSyntax::Exponent),
            ("NaN", DecimalSyntax::NotFinite),
            ("-inf", DecimalSyntax::NotFinite),
            ("+5", DecimalSyntax::MisplacedSign { position: 0 }),
            ("5-", DecimalSyntax::MisplacedSign { position: 1 }),
            ("1.2.3", DecimalSyntax::MultipleDecimalPoints),
            (
                "1,000.00",
                DecimalSyntax::InvalidCharacter {
                    ch: ',',
                    position: 1,
                },
            ),
            (
                "$5",
                DecimalSyntax::InvalidCharacter {
                    ch: '$',
                    position: 0,
                },
            ),
            (
                "12abc",
                DecimalSyntax::InvalidCharacter {
                    ch: 'a',
                    position: 2,
                },
            ),
            ("-.", DecimalSyntax::NoDigits),
            (
                "1.005",
                DecimalSyntax::TooManyDecimalPlaces { places: 3, max: 2 },
            ),
            (
                "12345678901234567",
                DecimalSyntax::TooManyIntegerDigits {
                    digits: 17,
                    max: 16,
                },
            ),
        ];
        for (input, problem) in cases {
            assert_eq!(
                Money::parse(input),
                Err(AmountError::Syntax {
                    input: (*input).to_owned(),
                    problem: problem.clone()
                }),
                "input {input:?}"
            );
        }
        let msg = Money::parse("1e3").map(|_| ()).unwrap_err().to_string();
        assert_eq!(
            msg,
            "invalid amount \"1e3\": exponent notation is not allowed; write a plain decimal such as 1000.00"
        );
    }

    #[test]
    fn rounds_half_away_from_zero() {
        let r = |s: &str| {
            Money::from_decimal(Decimal::from_str_exact(s).unwrap_or_default()).round_cents()
        };
        assert_eq!(r("0.125").to_string(), "0.13");
        assert_eq!(r("-0.125").to_string(), "-0.13");
        assert_eq!(r("0.135").to_string(), "0.14");
        assert_eq!(r("2.345").to_string(), "2.35");
        assert_eq!(r("2.344999").to_string(), "2.34");
        assert_eq!(r("-0.001").to_string(), "0.00");
    }

    #[test]
    fn converts_minor_units() {
        assert_eq!(Money::from_minor_units(12345).to_string(), "123.45");
        assert_eq!(Money::from_minor_units(-5).to_string(), "-0.05");
        assert_eq!(
            Money::from_minor_units(i64::MIN).to_minor_units(),
            Ok(i64::MIN)
        );
        assert_eq!(m("-0.07").to_minor_units(), Ok(-7));
        let third = Money::from_decimal(Decimal::new(1, 0) / Decimal::new(3, 0));
        assert!(matches!(
            third.to_minor_units(),
            Err(AmountError::NotWholeCents { .. })
        ));
        assert_eq!(third.round_cents().to_minor_units(), Ok(33));
        let huge = Money::from_decimal(Decimal::new(i64::MAX, 0));
        assert!(matches!(
            huge.to_minor_units(),
            Err(AmountError::Overflow { .. })
        ));
        // trailing zeros beyond cents are still whole cents
        assert_eq!(
            Money::from_decimal(Decimal::new(1_2300, 4)).to_minor_units(),
            Ok(123)
        );
    }

    #[test]
    fn displays_two_places() {
        assert_eq!(m("5").to_string(), "5.00");
        assert_eq!(m("5.5").to_string(), "5.50");
        assert_eq!(m("-0.00").to_string(), "0.00");
        assert_eq!(m("-10.10").to_string(), "-10.10");
        assert_eq!(
            Money::from_decimal(Decimal::new(12500, 3)).to_string(),
            "12.50"
        );
        assert_eq!(
            Money::from_decimal(Decimal::new(125, 3)).to_string(),
            "0.125"
        );
    }

    #[test]
    fn arithmetic_and_sum() {
        assert_eq!(m("10.00") - m("12.50"), m("-2.50"));
        assert_eq!(-m("3.10"), m("-3.10"));
        let total: Money = ["1.10", "2.20", "3.30"].iter().map(|s| m(s)).sum();
        assert_eq!(total.to_string(), "6.60");
        let by_ref: Money = [m("1"), m("-1")].iter().sum();
        assert!(by_ref.is_zero());
        let mut acc = Money::ZERO;
        acc += m("1.01");
        acc -= m("0.02");
        assert_eq!(acc.to_string(), "0.99");
        assert!(m("1.5") == m("1.50"));
        assert!(m("-1") < m("0.01"));
        assert_eq!(
            m("100").mul_rate(Rate::parse(".2").unwrap_or_default()),
            m("20")
        );
    }

    #[test]
    fn serde_as_string() {
        let json = serde_json::to_string(&m("125.5")).unwrap_or_default();
        assert_eq!(json, "\"125.50\"");
        let back: Money = serde_json::from_str("\"-3.07\"").unwrap_or_default();
        assert_eq!(back, m("-3.07"));
        assert!(
            serde_json::from_str::<Money>("12.5").is_err(),
            "numbers are not accepted"
        );
        let err = serde_json::from_str::<Money>("\"1e3\"")
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains("exponent notation"), "{err}");
    }

    #[test]
    fn rates() {
        assert_eq!(
            Rate::parse(".2").map(|r| r.as_decimal()),
            Ok(Decimal::new(2, 1))
        );
        assert_eq!(Rate::parse("1").map(|r| r.to_string()), Ok("1".to_owned()));
        assert_eq!(
            Rate::parse("0.125").map(|r| r.to_string()),
            Ok("0.125".to_owned())
        );
        assert!(matches!(
            Rate::parse("1.01"),
            Err(RateError::OutOfRange { .. })
        ));
        assert!(matches!(
            Rate::parse("-0.1"),
            Err(RateError::OutOfRange { .. })
        ));
        assert!(matches!(
            Rate::parse("20%"),
            Err(RateError::Syntax {
                problem: DecimalSyntax::InvalidCharacter {
                    ch: '%',
                    position: 2
                },
                ..
            })
        ));
        assert!(matches!(
            Rate::parse("2e-1"),
            Err(RateError::Syntax {
                problem: DecimalSyntax::Exponent,
                ..
            })
        ));
        assert_eq!(
            Rate::parse("20"),
            Err(RateError::OutOfRange {
                value: "20".to_owned()
            })
        );
        assert!(matches!(
            Rate::parse("0.12345678901"),
            Err(RateError::Syntax {
                problem: DecimalSyntax::TooManyDecimalPlaces {
                    places: 11,
                    max: 10
                },
                ..
            })
        ));
        assert_eq!(
            Rate::parse("0.2").map(|r| r.complement().to_string()),
            Ok("0.8".to_owned())
        );
        let json =
            serde_json::to_string(&Rate::parse(".2").unwrap_or_default()).unwrap_or_default();
        assert_eq!(json, "\"0.2\"");
    }
}
