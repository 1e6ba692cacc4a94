//! Input checks the typed writers run before writing.

use super::WriteError;
use super::format::invalid;
use crate::model::{Address, PartyName, PersonName};

/// Tells whether `npi` is 10 digits with a valid Luhn check digit over the prefix 80840.
pub fn is_valid_npi(npi: &str) -> bool {
    if npi.len() != 10 || !npi.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let digits = "80840"
        .bytes()
        .chain(npi.bytes())
        .map(|b| u32::from(b - b'0'));
    let sum: u32 = digits
        .collect::<Vec<_>>()
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

pub(crate) fn npi(ctx: &str, field: &'static str, v: &str) -> Result<(), WriteError> {
    if v.is_empty() {
        return Err(invalid(ctx, field, "NPI is missing"));
    }
    if !is_valid_npi(v) {
        return Err(invalid(
            ctx,
            field,
            "NPI must be 10 digits with a valid check digit",
        ));
    }
    Ok(())
}

pub(crate) fn digits(
    ctx: &str,
    field: &'static str,
    v: &str,
    len: usize,
) -> Result<(), WriteError> {
    if v.len() != len || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(ctx, field, &format!("must be {len} digits")));
    }
    Ok(())
}

pub(crate) fn required(
    ctx: &str,
    field: &'static str,
    v: &str,
    max: usize,
) -> Result<(), WriteError> {
    if v.trim().is_empty() {
        return Err(invalid(ctx, field, "is required"));
    }
    if v.chars().count() > max {
        return Err(invalid(
            ctx,
            field,
            &format!("is longer than {max} characters"),
        ));
    }
    Ok(())
}

pub(crate) fn optional(
    ctx: &str,
    field: &'static str,
    v: &Option<String>,
    max: usize,
) -> Result<(), WriteError> {
    match v {
        Some(v) => required(ctx, field, v, max),
        None => Ok(()),
    }
}

pub(crate) fn code(
    ctx: &str,
    field: &'static str,
    v: &str,
    allowed: &[&str],
) -> Result<(), WriteError> {
    if !allowed.contains(&v) {
        return Err(invalid(
            ctx,
            field,
            &format!("must be one of {}", allowed.join(", ")),
        ));
    }
    Ok(())
}

pub(crate) fn party(ctx: &str, field: &'static str, p: &PartyName) -> Result<(), WriteError> {
    match p {
        PartyName::Organization { name } => required(ctx, field, name, 60),
        PartyName::Person(p) => person(ctx, field, p),
    }
}

pub(crate) fn person(ctx: &str, field: &'static str, p: &PersonName) -> Result<(), WriteError> {
    required(ctx, field, &p.last, 60)?;
    optional(ctx, field, &p.first, 35)?;
    optional(ctx, field, &p.middle, 25)?;
    optional(ctx, field, &p.suffix, 10)
}

pub(crate) fn address(ctx: &str, a: &Address) -> Result<(), WriteError> {
    required(ctx, "address.line1", &a.line1, 55)?;
    optional(ctx, "address.line2", &a.line2, 55)?;
    required(ctx, "address.city", &a.city, 30)?;
    if a.state.len() != 2 || !a.state.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(invalid(
            ctx,
            "address.state",
            "must be a 2-letter state code",
        ));
    }
    let zip = &a.postal_code;
    if !(zip.len() == 5 || zip.len() == 9) || !zip.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(ctx, "address.postal_code", "must be 5 or 9 digits"));
    }
    Ok(())
}

pub(crate) fn gender(ctx: &str, field: &'static str, v: &str) -> Result<(), WriteError> {
    code(ctx, field, v, &["F", "M", "U"])
}

/// Tells whether `code` has the ICD-10-CM format without the dot: a letter, a digit, then 1 to
/// 5 capital letters or digits (3 to 7 characters). Says nothing about whether the code exists.
pub fn is_icd10_format(code: &str) -> bool {
    let b = code.as_bytes();
    (3..=7).contains(&b.len())
        && b.first().is_some_and(u8::is_ascii_uppercase)
        && b.get(1).is_some_and(u8::is_ascii_digit)
        && b.iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// ICD-10-CM without the dot: a letter, a digit, then up to 5 alphanumerics.
pub(crate) fn icd10(ctx: &str, field: &'static str, v: &str) -> Result<(), WriteError> {
    if !is_icd10_format(v) {
        return Err(invalid(
            ctx,
            field,
            "must be an ICD-10-CM code without the dot (e.g. E119)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_valid_npi;

    #[test]
    fn npi_check_digit() {
        assert!(is_valid_npi("1234567893"));
        assert!(!is_valid_npi("1234567890"));
        assert!(is_valid_npi("1912301953"));
        assert!(!is_valid_npi("123456789"));
        assert!(!is_valid_npi("12345678a3"));
    }
}
