//! Exact decimal parsing of X12 numeric elements (type R and N2), no floating point.

use rust_decimal::Decimal;

/// Parses an X12 decimal (`R`): optional leading `-`, digits, optional `.` and
/// digits (`150000.00`, `-9.00`, `.2`, `1175.4`). Returns `None` for anything
/// else: empty text, `+`, exponents, spaces, thousands separators, more than 28
/// significant digits.
#[inline]
pub fn parse_decimal(text: &[u8]) -> Option<Decimal> {
    // Amounts in real files are short (`1234.56`): up to 18 digits fit a u64
    // mantissa, which goes straight into the decimal's parts.
    if text.len() <= 19 {
        return parse_short(text);
    }
    parse_long(text)
}

/// Parses up to 19 bytes (so at most 18 digits, below 10^18): the mantissa fits a
/// u64 and the scale is at most 18, so the result is always representable.
#[inline]
fn parse_short(text: &[u8]) -> Option<Decimal> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    // Whole digits, then the fraction after one dot: two tight loops rather
    // than one that tracks the dot at every byte.
    let mut mantissa: u64 = 0;
    let mut at = take_digits(digits, 0, &mut mantissa);
    let whole_digits = at;
    let mut scale: u32 = 0;
    if digits.get(at) == Some(&b'.') {
        let fraction_start = at + 1;
        at = take_digits(digits, fraction_start, &mut mantissa);
        // At most 18 digits in all, so this fits.
        scale = (at - fraction_start) as u32;
    }
    if at != digits.len() || whole_digits + scale as usize == 0 {
        return None;
    }
    // `-0.00` is zero, not negative zero (as the i128 path gives).
    let negative = negative && mantissa != 0;
    Some(Decimal::from_parts(
        mantissa as u32,
        (mantissa >> 32) as u32,
        0,
        negative,
        scale,
    ))
}

/// Appends the digits of `digits` from `at` to `mantissa` and returns where
/// they stop. The caller bounds the count (at most 18 digits fit).
#[inline(always)]
fn take_digits(digits: &[u8], mut at: usize, mantissa: &mut u64) -> usize {
    while let Some(d) = digits
        .get(at)
        .map(|b| b.wrapping_sub(b'0'))
        .filter(|&d| d < 10)
    {
        *mantissa = *mantissa * 10 + u64::from(d);
        at += 1;
    }
    at
}

fn parse_long(text: &[u8]) -> Option<Decimal> {
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

    #[test]
    fn short_path_matches_long_path() {
        for text in [
            "0",
            "-0",
            "-0.00",
            "0.00",
            "5.",
            ".2",
            "-.5",
            "1175.4",
            "-9.00",
            "150000.00",
            "999999999999999999",
            "-99999999999999999.9",
            ".000000000000000001",
            "4294967296",
            "18446744073.70",
            "-1",
            "1.2.3",
            "",
            "-",
            ".",
            "+1",
            "1e5",
            "12a",
        ] {
            let short = parse_short(text.as_bytes());
            let long = parse_long(text.as_bytes());
            assert_eq!(short, long, "{text:?}");
            assert_eq!(
                short.map(|d| (d.to_string(), d.scale(), d.is_sign_negative())),
                long.map(|d| (d.to_string(), d.scale(), d.is_sign_negative())),
                "{text:?}"
            );
        }
        // Past 19 bytes the long path takes over.
        assert_eq!(
            parse_decimal(b"12345678901234567890.12"),
            Decimal::from_str("12345678901234567890.12").ok()
        );
    }
}
