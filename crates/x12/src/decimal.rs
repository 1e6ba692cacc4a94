//! Exact decimal parsing of X12 numeric elements (type R and N2), no floating point.

use rust_decimal::Decimal;

/// Parses an X12 decimal (`R`): optional leading `-`, digits, optional `.` and
/// digits (`150000.00`, `-9.00`, `.2`, `1175.4`). Returns `None` for anything
/// else: empty text, `+`, exponents, spaces, thousands separators, more than 28
/// significant digits.
pub fn parse_decimal(text: &[u8]) -> Option<Decimal> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 29 {
        return None;
    }
    let mut mantissa: u128 = 0;
    let mut scale: u32 = 0;
    let mut seen_dot = false;
    let mut seen_digit = false;
    for &b in digits {
        match b {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u128::from(b - b'0');
                seen_digit = true;
                if seen_dot {
                    scale += 1;
                }
            }
            b'.' if !seen_dot => seen_dot = true,
            _ => return None,
        }
    }
    if !seen_digit || scale > 28 {
        return None;
    }
    let mantissa = i128::try_from(mantissa).ok()?;
    let value =
        Decimal::try_from_i128_with_scale(if negative { -mantissa } else { mantissa }, scale)
            .ok()?;
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn parses_exactly() {
        for (text, want) in [
            ("150000.00", "150000.00"),
            ("-9.00", "-9.00"),
            (".2", "0.2"),
            ("1175.4", "1175.4"),
            ("0", "0"),
            ("5.", "5"),
            ("-0.01", "-0.01"),
        ] {
            assert_eq!(
                parse_decimal(text.as_bytes()),
                Some(Decimal::from_str(want).unwrap()),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_junk() {
        for text in [
            "", "-", ".", "+1", "1e5", "1,000", " 1", "1 ", "1.2.3", "--1", "12a", "NaN",
        ] {
            assert_eq!(parse_decimal(text.as_bytes()), None, "{text:?}");
        }
        assert_eq!(parse_decimal("9".repeat(40).as_bytes()), None);
    }
}
