//! The eligibility service's domain model: insurance coverages.
//!
//! Subscriber names, birth dates and member ids are PHI: the [`std::fmt::Debug`] output of the
//! types here redacts them, so a stray `?coverage` in a log line leaks nothing.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use medbill_domain::{CoverageId, TenantId};

/// Longest accepted EHR reference or free-text name (patient_ref, plan_name), in characters.
pub const MAX_TEXT_LEN: usize = 128;

/// Which payer pays first when a patient has more than one coverage (coordination of benefits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoverageOrder {
    /// Pays first (SBR01 `P`).
    Primary,
    /// Pays after the primary (SBR01 `S`).
    Secondary,
    /// Pays after the secondary (SBR01 `T`).
    Tertiary,
}

impl CoverageOrder {
    /// Returns the name stored in the database (`PRIMARY`, `SECONDARY`, `TERTIARY`).
    pub fn as_str(self) -> &'static str {
        match self {
            CoverageOrder::Primary => "PRIMARY",
            CoverageOrder::Secondary => "SECONDARY",
            CoverageOrder::Tertiary => "TERTIARY",
        }
    }
}

impl fmt::Display for CoverageOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reports a stored or supplied enum name that is not one of the known values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}")]
pub struct UnknownValue {
    /// What kind of value was expected.
    pub what: &'static str,
    /// The value found.
    pub value: String,
}

impl FromStr for CoverageOrder {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "PRIMARY" => Ok(CoverageOrder::Primary),
            "SECONDARY" => Ok(CoverageOrder::Secondary),
            "TERTIARY" => Ok(CoverageOrder::Tertiary),
            other => Err(UnknownValue {
                what: "coverage order",
                value: other.to_owned(),
            }),
        }
    }
}

/// Individual relationship codes accepted for the patient's relationship to the subscriber
/// (X12 5010 INS02 in the 270/271, SBR02/PAT01 in the 837).
pub const RELATIONSHIP_CODES: &[&str] = &["01", "18", "19", "20", "21", "39", "40", "53", "G8"];

/// The relationship code meaning the patient is the subscriber.
pub const RELATIONSHIP_SELF: &str = "18";

/// Returns whether `code` is a known X12 individual relationship code.
pub fn is_relationship_code(code: &str) -> bool {
    RELATIONSHIP_CODES.contains(&code)
}

/// The fields of a coverage supplied by the caller, already validated.
#[derive(Clone, PartialEq, Eq)]
pub struct NewCoverage {
    /// The EHR's opaque patient id.
    pub patient_ref: String,
    /// The payer identifier (e.g. `60054`), as the clearinghouse knows it.
    pub payer_id: String,
    /// The payer's name.
    pub payer_name: String,
    /// The subscriber's member id at the payer (PHI).
    pub member_id: String,
    /// The employer group number, when the plan has one.
    pub group_number: Option<String>,
    /// The plan's marketing name, when known.
    pub plan_name: Option<String>,
    /// The subscriber's first name (PHI).
    pub subscriber_first_name: String,
    /// The subscriber's last name (PHI).
    pub subscriber_last_name: String,
    /// The subscriber's birth date (PHI).
    pub subscriber_birth_date: NaiveDate,
    /// The patient's relationship to the subscriber, an X12 individual relationship code.
    pub relationship_to_subscriber: String,
    /// Primary, secondary or tertiary.
    pub coverage_order: CoverageOrder,
    /// First day the coverage is in force.
    pub effective_date: NaiveDate,
    /// Last day the coverage is in force; open-ended when absent.
    pub termination_date: Option<NaiveDate>,
}

impl fmt::Debug for NewCoverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewCoverage")
            .field("payer_id", &self.payer_id)
            .field("coverage_order", &self.coverage_order)
            .field("effective_date", &self.effective_date)
            .field("termination_date", &self.termination_date)
            .finish_non_exhaustive()
    }
}

/// A patient's insurance coverage with one payer, as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Coverage {
    /// The coverage id (UUID v7).
    pub id: CoverageId,
    /// The billing organisation that owns the record.
    pub tenant_id: TenantId,
    /// The caller-supplied fields.
    pub fields: NewCoverage,
    /// When the coverage was recorded.
    pub created_at: DateTime<Utc>,
    /// When the coverage last changed.
    pub updated_at: DateTime<Utc>,
}

impl Coverage {
    /// Returns whether the coverage is in force on `date` (effective and termination dates inclusive).
    pub fn is_active_on(&self, date: NaiveDate) -> bool {
        self.fields.effective_date <= date
            && self.fields.termination_date.is_none_or(|end| date <= end)
    }
}

impl fmt::Debug for Coverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coverage")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("fields", &self.fields)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// Narrows a coverage listing; an absent field matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoverageFilter {
    /// Only coverages of this patient.
    pub patient_ref: Option<String>,
    /// Only coverages with this payer.
    pub payer_id: Option<String>,
}

/// An eligibility check as recorded: the answer (the proto message, raw X12 included) and the
/// bookkeeping that stays server-side.
#[derive(Clone)]
pub struct StoredCheck {
    /// The billing organisation that owns the record.
    pub tenant_id: TenantId,
    /// The caller's idempotency key.
    pub idempotency_key: String,
    /// Hash of the request the key came with (hex).
    pub request_fingerprint: String,
    /// Payer attempts the exchange took (0 when nothing was sent).
    pub payer_attempts: u32,
    /// The check, with `raw_request`/`raw_response` holding the X12 exchanged.
    pub check: medbill_proto::eligibility::v1::EligibilityCheck,
}

impl fmt::Debug for StoredCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredCheck")
            .field("tenant_id", &self.tenant_id)
            .field("id", &self.check.id)
            .field("status", &self.check.status)
            .finish_non_exhaustive()
    }
}

/// Narrows an eligibility-check listing; an absent field matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckFilter {
    /// Only checks of this coverage.
    pub coverage_id: Option<CoverageId>,
    /// Only checks of this patient.
    pub patient_ref: Option<String>,
    /// Only checks with this payer.
    pub payer_id: Option<String>,
    /// Only checks with this stored status (`COMPLETED`, `REJECTED`, `FAILED`, `PENDING`).
    pub status: Option<String>,
    /// Only dates of service on or after this day.
    pub date_of_service_from: Option<NaiveDate>,
    /// Only dates of service on or before this day.
    pub date_of_service_to: Option<NaiveDate>,
    /// Only checks created at or after this instant (unix microseconds).
    pub created_from_micros: Option<i64>,
    /// Only checks created before this instant (unix microseconds).
    pub created_before_micros: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_order_round_trips_through_its_name() {
        for order in [
            CoverageOrder::Primary,
            CoverageOrder::Secondary,
            CoverageOrder::Tertiary,
        ] {
            assert_eq!(order.as_str().parse::<CoverageOrder>(), Ok(order));
        }
        let err = "primary".parse::<CoverageOrder>().unwrap_err();
        assert_eq!(err.value, "primary");
    }

    fn sample() -> Coverage {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default();
        Coverage {
            id: CoverageId::new(),
            tenant_id: TenantId::parse("clinic-a").unwrap_or_else(|e| panic!("{e}")),
            fields: NewCoverage {
                patient_ref: "pat-1".into(),
                payer_id: "60054".into(),
                payer_name: "AETNA".into(),
                member_id: "W987654321".into(),
                group_number: Some("GRP-1".into()),
                plan_name: None,
                subscriber_first_name: "JOHANNA".into(),
                subscriber_last_name: "SMITHERSON".into(),
                subscriber_birth_date: d(1971, 8, 23),
                relationship_to_subscriber: RELATIONSHIP_SELF.into(),
                coverage_order: CoverageOrder::Primary,
                effective_date: d(2026, 1, 1),
                termination_date: Some(d(2026, 6, 30)),
            },
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn debug_output_hides_phi() {
        let text = format!("{:?}", sample());
        // The birth date in any form; a bare "1971" could match the clock's nanoseconds.
        for phi in [
            "W987654321",
            "JOHANNA",
            "SMITHERSON",
            "1971-08-23",
            "19710823",
            "Aug",
        ] {
            assert!(!text.contains(phi), "{phi} leaked into {text}");
        }
        assert!(
            text.contains("60054"),
            "non-PHI fields stay visible: {text}"
        );
    }

    #[test]
    fn activity_includes_both_ends() {
        let c = sample();
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default();
        assert!(!c.is_active_on(d(2025, 12, 31)));
        assert!(c.is_active_on(d(2026, 1, 1)));
        assert!(c.is_active_on(d(2026, 6, 30)));
        assert!(!c.is_active_on(d(2026, 7, 1)));
        let mut open_ended = c.clone();
        open_ended.fields.termination_date = None;
        assert!(open_ended.is_active_on(d(2040, 1, 1)));
    }

    #[test]
    fn relationship_codes_follow_x12() {
        assert!(is_relationship_code(RELATIONSHIP_SELF));
        assert!(is_relationship_code("G8"));
        assert!(!is_relationship_code("99"));
        assert!(!is_relationship_code(""));
    }
}
