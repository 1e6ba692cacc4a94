//! Typed fields out of gRPC requests, and typed values back into responses, the same way in
//! every service: each failure is an INVALID_ARGUMENT naming the field, and values that may
//! identify a patient are never echoed in the message.

use std::fmt::Display;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use medbill_domain::{IdempotencyKey, Money, TenantId, parse_iso_date};
use tonic::{Request, Status};

use crate::ServiceError;

/// Answers an RPC this version does not provide, saying in plain words what is missing.
pub fn unimplemented(rpc: &str, what: &str) -> Status {
    Status::unimplemented(format!(
        "{rpc} is not available in this version of medbill: {what} is not built yet"
    ))
}

/// Returns the caller's tenant as resolved by the auth layer.
pub fn tenant_id<T>(request: &Request<T>) -> Result<TenantId, Status> {
    let tenant = crate::tenant(request)?;
    // Tenant ids come from configuration; one that is not a valid id is a deployment error.
    TenantId::parse(tenant.as_str()).map_err(|e| ServiceError::internal(e).into())
}

/// Reads the required `idempotency_key` of a mutating request.
pub fn idempotency_key(raw: &str) -> Result<IdempotencyKey, ServiceError> {
    if raw.is_empty() {
        return Err(ServiceError::invalid_argument(
            "idempotency_key",
            "is required",
        ));
    }
    IdempotencyKey::parse(raw)
        .map_err(|e| ServiceError::invalid_argument("idempotency_key", e.to_string()))
}

/// Reports an idempotency key already used for a different request.
pub fn key_reused(key: impl Display) -> ServiceError {
    ServiceError::AlreadyExists(format!(
        "idempotency key \"{key}\" was already used with a different request; \
         use a new key for a new request"
    ))
}

/// Parses a required identifier (any typed id with `FromStr`).
pub fn required_id<I>(field: &str, raw: &str) -> Result<I, ServiceError>
where
    I: FromStr,
    I::Err: Display,
{
    if raw.is_empty() {
        return Err(ServiceError::invalid_argument(field, "is required"));
    }
    raw.parse()
        .map_err(|e: I::Err| ServiceError::invalid_argument(field, e.to_string()))
}

/// Returns `None` for an unset (empty) proto string.
pub fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// Checks a free-text field: not blank when required, at most `max` characters, no control
/// characters and no surrounding whitespace. The value is not echoed (it may identify a
/// patient).
pub fn text(
    field: &str,
    value: &str,
    max: usize,
    required: bool,
) -> Result<Option<String>, ServiceError> {
    if value.is_empty() {
        return if required {
            Err(ServiceError::invalid_argument(field, "is required"))
        } else {
            Ok(None)
        };
    }
    let len = value.chars().count();
    if len > max {
        return Err(ServiceError::invalid_argument(
            field,
            format!("is {len} characters long; at most {max} are allowed"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ServiceError::invalid_argument(
            field,
            "contains control characters",
        ));
    }
    if value.trim() != value {
        return Err(ServiceError::invalid_argument(
            field,
            "has leading or trailing whitespace",
        ));
    }
    Ok(Some(value.to_owned()))
}

/// Checks a required free-text field (see [`text`]).
pub fn required_text(field: &str, value: &str, max: usize) -> Result<String, ServiceError> {
    text(field, value, max, true)?
        .ok_or_else(|| ServiceError::invalid_argument(field, "is required"))
}

/// Parses a required `YYYY-MM-DD` date.
pub fn date(field: &str, value: &str) -> Result<NaiveDate, ServiceError> {
    optional_date(field, value)?.ok_or_else(|| {
        ServiceError::invalid_argument(field, "is required (a date such as 2026-03-02)")
    })
}

/// Parses an optional `YYYY-MM-DD` date (empty = unset).
pub fn optional_date(field: &str, value: &str) -> Result<Option<NaiveDate>, ServiceError> {
    if value.is_empty() {
        return Ok(None);
    }
    parse_iso_date(value)
        .map(Some)
        .map_err(|e| ServiceError::invalid_argument(field, e.to_string()))
}

/// Parses an optional `YYYY-MM-DD` date of a field that may identify a patient (a birth date):
/// the error names the field and says what is wrong, but never repeats the value.
pub fn phi_date(field: &str, value: &str) -> Result<Option<NaiveDate>, ServiceError> {
    if value.is_empty() {
        return Ok(None);
    }
    parse_iso_date(value).map(Some).map_err(|_| {
        ServiceError::invalid_argument(
            field,
            "is not a real date in the form YYYY-MM-DD (the value is not repeated: it may identify a patient)",
        )
    })
}

/// Parses a required money amount (a decimal string such as "125.00").
pub fn money(field: &str, value: &str) -> Result<Money, ServiceError> {
    if value.is_empty() {
        return Err(ServiceError::invalid_argument(
            field,
            "is required (a decimal string such as \"125.00\")",
        ));
    }
    Money::parse(value).map_err(|e| ServiceError::invalid_argument(field, e.to_string()))
}

/// Reads an optional protobuf timestamp (unset = `None`), refusing out-of-range values.
pub fn optional_instant(
    field: &str,
    t: Option<&prost_types::Timestamp>,
) -> Result<Option<DateTime<Utc>>, ServiceError> {
    let Some(t) = t else { return Ok(None) };
    let nanos = u32::try_from(t.nanos)
        .ok()
        .filter(|n| *n < 1_000_000_000)
        .ok_or_else(|| ServiceError::invalid_argument(field, "nanos must be in 0..1e9"))?;
    DateTime::from_timestamp(t.seconds, nanos)
        .map(Some)
        .ok_or_else(|| ServiceError::invalid_argument(field, "is out of range"))
}

/// Converts an instant to a protobuf timestamp.
pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        // Always below one billion, so it fits.
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// Checks an identifier field (an EHR patient reference, a payer id, a member or group number,
/// any opaque id a caller sends): one rule for every service, at most 128 characters, no control
/// characters, no surrounding whitespace, not blank when required. The value is never echoed.
pub fn identifier(
    field: &str,
    value: &str,
    required: bool,
) -> Result<Option<String>, ServiceError> {
    text(field, value, IDENTIFIER_LEN, required)
}

/// Longest identifier accepted by [`identifier`] (a patient, guarantor or encounter reference).
pub const IDENTIFIER_LEN: usize = 128;

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn names(err: ServiceError, field: &str) {
        let status = Status::from(err);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains(field), "{}", status.message());
    }

    #[test]
    fn failures_name_the_field_and_never_echo_text() {
        names(idempotency_key("").unwrap_err(), "idempotency_key");
        names(
            required_text("patient_ref", "", 10).unwrap_err(),
            "patient_ref",
        );
        let long = text("patient_ref", "SECRET-NAME-XYZ", 5, true).unwrap_err();
        let status = Status::from(long);
        assert!(!status.message().contains("SECRET"), "{}", status.message());
        names(text("x", " padded", 50, false).unwrap_err(), "x");
        names(text("x", "a\u{7}b", 50, false).unwrap_err(), "x");
        names(
            date("service_date", "2026-02-30").unwrap_err(),
            "service_date",
        );
        names(date("service_date", "").unwrap_err(), "service_date");
        let birth = Status::from(phi_date("subscriber_birth_date", "1971-02-30").unwrap_err());
        assert!(
            birth
                .message()
                .starts_with("invalid subscriber_birth_date: ")
        );
        assert!(
            !birth.message().contains("1971") && !birth.message().contains("02"),
            "{}",
            birth.message()
        );
        assert_eq!(phi_date("d", "").unwrap(), None);
        names(money("charge", "1e3").unwrap_err(), "charge");
        let bad = prost_types::Timestamp {
            seconds: 0,
            nanos: -1,
        };
        names(
            optional_instant("received.from", Some(&bad)).unwrap_err(),
            "received.from",
        );
        names(
            required_id::<medbill_domain::ClaimId>("id", "nope").unwrap_err(),
            "id",
        );
    }

    #[test]
    fn good_values_come_back_typed() {
        assert_eq!(text("x", "", 5, false).unwrap(), None);
        assert_eq!(required_text("x", "abc", 5).unwrap(), "abc");
        assert_eq!(
            optional_date("d", "2026-03-02").unwrap(),
            NaiveDate::from_ymd_opt(2026, 3, 2)
        );
        assert_eq!(money("m", "125.10").unwrap().to_string(), "125.10");
        assert_eq!(non_empty(""), None);
        let t = DateTime::from_timestamp(1_700_000_000, 5_000).unwrap();
        assert_eq!(timestamp(t).seconds, 1_700_000_000);
        assert_eq!(timestamp(t).nanos, 5_000);
        assert_eq!(
            optional_instant("at", Some(&timestamp(t))).unwrap(),
            Some(t)
        );
        assert_eq!(optional_instant("at", None).unwrap(), None);
    }
}
