//! National Provider Identifier (NPI): 10 digits with a Luhn check digit.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The ISO card-issuer prefix (80840) that the NPI check digit is computed over.
const NPI_PREFIX: &[u8; 5] = b"80840";

/// Explains why a string is not a valid NPI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NpiError {
    /// The NPI is empty.
    #[error("NPI is blank")]
    Blank,
    /// The NPI does not have exactly 10 characters.
    #[error("NPI must be exactly 10 digits, got {len} characters")]
    WrongLength {
        /// Characters found.
        len: usize,
    },
    /// A character that is not an ASCII digit.
    #[error("NPI must contain only digits, found {ch:?} at position {position}")]
    NonDigit {
        /// The offending character.
        ch: char,
        /// Zero-based position.
        position: usize,
    },
    /// The last digit does not match the Luhn check digit over "80840" + the first 9 digits.
    #[error("NPI {npi} fails the check digit: last digit is {found}, expected {expected}")]
    CheckDigit {
        /// The NPI as given.
        npi: String,
        /// The check digit the first 9 digits call for.
        expected: u8,
        /// The last digit given.
        found: u8,
    },
}

/// A validated National Provider Identifier.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Npi(String);

impl Npi {
    /// Parses and validates an NPI: exactly 10 ASCII digits whose last digit is the Luhn check
    /// digit of "80840" followed by the first 9 (`1234567893` is valid, `1234567890` is not).
    pub fn parse(s: &str) -> Result<Npi, NpiError> {
        if s.is_empty() {
            return Err(NpiError::Blank);
        }
        if let Some((position, ch)) = s.chars().enumerate().find(|(_, c)| !c.is_ascii_digit()) {
            return Err(NpiError::NonDigit { ch, position });
        }
        let bytes = s.as_bytes();
        let Some((body, last)) = bytes.split_at_checked(9) else {
            return Err(NpiError::WrongLength { len: s.len() });
        };
        if bytes.len() != 10 {
            return Err(NpiError::WrongLength { len: s.len() });
        }
        let expected = Npi::check_digit(body);
        let found = last.first().map_or(0, |b| b - b'0');
        if expected != found {
            return Err(NpiError::CheckDigit {
                npi: s.to_owned(),
                expected,
                found,
            });
        }
        Ok(Npi(s.to_owned()))
    }

    /// Computes the Luhn check digit for 9 leading NPI digits (ASCII), over the 80840 prefix.
    ///
    /// Non-digit bytes count as 0; callers validate digits first.
    pub fn check_digit(first_nine: &[u8]) -> u8 {
        let digits: Vec<u32> = NPI_PREFIX
            .iter()
            .chain(first_nine.iter())
            .map(|b| u32::from(b.saturating_sub(b'0')).min(9))
            .collect();
        // Luhn: double every second digit from the right, counting the missing check digit as
        // position 0, so the rightmost payload digit is doubled.
        let sum: u32 = digits
            .iter()
            .rev()
            .enumerate()
            .map(|(i, &d)| {
                if i % 2 == 0 {
                    let x = d * 2;
                    if x > 9 { x - 9 } else { x }
                } else {
                    d
                }
            })
            .sum();
        // `sum % 10` is below 10, so the cast cannot truncate.
        ((10 - sum % 10) % 10) as u8
    }

    /// Returns the 10 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Npi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Npi {
    type Err = NpiError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Npi::parse(s)
    }
}

impl AsRef<str> for Npi {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for Npi {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Npi {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Npi::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_npis() {
        assert_eq!(
            Npi::parse("1234567893").map(|n| n.to_string()),
            Ok("1234567893".to_owned())
        );
        // Check digits worked by hand from the CMS algorithm.
        assert!(Npi::parse("1245319599").is_ok());
        assert!(Npi::parse("1003000126").is_ok());
        assert_eq!(Npi::check_digit(b"123456789"), 3);
    }

    #[test]
    fn rejects_bad_npis_precisely() {
        assert_eq!(
            Npi::parse("1234567890"),
            Err(NpiError::CheckDigit {
                npi: "1234567890".to_owned(),
                expected: 3,
                found: 0
            })
        );
        assert_eq!(Npi::parse(""), Err(NpiError::Blank));
        assert_eq!(
            Npi::parse("123456789"),
            Err(NpiError::WrongLength { len: 9 })
        );
        assert_eq!(
            Npi::parse("12345678931"),
            Err(NpiError::WrongLength { len: 11 })
        );
        assert_eq!(
            Npi::parse("12345x7893"),
            Err(NpiError::NonDigit {
                ch: 'x',
                position: 5
            })
        );
        assert_eq!(
            Npi::parse(" 1234567893"),
            Err(NpiError::NonDigit {
                ch: ' ',
                position: 0
            })
        );
        assert_eq!(
            Npi::parse("1234567890")
                .map(|_| ())
                .unwrap_err()
                .to_string(),
            "NPI 1234567890 fails the check digit: last digit is 0, expected 3"
        );
    }

    #[test]
    fn every_single_digit_change_is_caught() {
        let good = "1234567893";
        for pos in 0..10 {
            for d in b'0'..=b'9' {
                let mut b = good.as_bytes().to_vec();
                if b[pos] == d {
                    continue;
                }
                b[pos] = d;
                let s = String::from_utf8(b).unwrap_or_default();
                assert!(Npi::parse(&s).is_err(), "{s} should fail");
            }
        }
    }

    #[test]
    fn serde_round_trip() {
        let npi = Npi::parse("1234567893").unwrap_or_else(|e| panic!("{e}"));
        let json = serde_json::to_string(&npi).unwrap_or_default();
        assert_eq!(json, "\"1234567893\"");
        assert!(serde_json::from_str::<Npi>("\"1234567890\"").is_err());
    }
}
