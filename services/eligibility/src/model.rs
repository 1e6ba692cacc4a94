//! The eligibility service's domain model: insurance coverages, eligibility checks with the
//! payer's answer, and cost estimates. The store reads and writes these types; their wire form
//! (the protobuf messages) is [`crate::mapping`]'s business.
//!
//! Subscriber names, birth dates and member ids are PHI: the [`std::fmt::Debug`] output of the
//! types here redacts them, so a stray `?coverage` in a log line leaks nothing.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use medbill_domain::{
    CoverageId, Decimal, EligibilityCheckId, EstimateId, IdempotencyKey, Money, TenantId,
};
use medbill_x12::model::PersonName;

/// Longest accepted free-text name (plan_name), in characters; identifiers follow
/// `medbill_runtime::fields::identifier`.
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

medbill_domain::code_enum!(
    /// The outcome of an eligibility check, by its stored name.
    CheckStatus, "eligibility check status", {
        /// The 270 was built and waits for the payer's 271.
        Pending => "PENDING",
        /// A 271 was received and parsed; the summary says whether coverage is active.
        Completed => "COMPLETED",
        /// The payer answered with AAA rejections and no benefits.
        Rejected => "REJECTED",
        /// No usable answer: the payer was unreachable, timed out or sent an unusable 271.
        Failed => "FAILED",
    }
);

medbill_domain::code_enum!(
    /// Whether coverage is active on the date of service, according to the 271.
    CoverageStatus, "coverage status", {
        /// Active coverage for health benefit plan coverage on the date of service.
        Active => "ACTIVE",
        /// Inactive coverage on the date of service.
        Inactive => "INACTIVE",
        /// The 271 did not say, or the check failed.
        Unknown => "UNKNOWN",
    }
);

medbill_domain::code_enum!(
    /// Whether benefits apply to in-network or out-of-network providers (EB12).
    NetworkStatus, "network status", {
        /// In network (EB12 `Y`).
        InNetwork => "IN_NETWORK",
        /// Out of network (EB12 `N`).
        OutOfNetwork => "OUT_OF_NETWORK",
        /// Not applicable or not sent.
        NotApplicable => "NOT_APPLICABLE",
    }
);

medbill_domain::code_enum!(
    /// The 271 loop an AAA rejection appeared in.
    RejectionLevel, "rejection level", {
        /// Information source (payer), loop 2000A/2100A.
        InformationSource => "INFORMATION_SOURCE",
        /// Information receiver (provider), loop 2100B.
        InformationReceiver => "INFORMATION_RECEIVER",
        /// Subscriber, loops 2100C/2110C.
        Subscriber => "SUBSCRIBER",
        /// Dependent, loops 2100D/2110D.
        Dependent => "DEPENDENT",
    }
);

/// Amounts accumulated toward a deductible or an out-of-pocket maximum, as the 271 gave them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accumulator {
    /// Total for the period, when sent.
    pub total: Option<Money>,
    /// Amount remaining, when sent.
    pub remaining: Option<Money>,
}

impl Accumulator {
    /// Returns the amount met so far (total minus remaining) when both are known.
    pub fn met(&self) -> Option<Money> {
        Some(self.total? - self.remaining?)
    }
}

/// Patient cost sharing for one service type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceTypeBenefit {
    /// X12 service type code (EB03), e.g. `98`.
    pub service_type_code: String,
    /// Plain-language name of the service type.
    pub description: String,
    /// Whether the plan covers the service type (false when the 271 says `I` non-covered).
    pub covered: bool,
    /// Copay per visit or service, when one applies.
    pub copay: Option<Money>,
    /// Coinsurance as a fraction, when the service type has its own rate (as the payer sent it).
    pub coinsurance_rate: Option<Decimal>,
    /// Whether prior authorization is required (EB11 `Y`).
    pub authorization_required: bool,
}

/// The front-desk summary of a 271 for the patient's in-network, individual coverage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenefitSummary {
    /// Whether coverage is active on the date of service.
    pub coverage_status: CoverageStatus,
    /// Plan name, when known.
    pub plan_name: Option<String>,
    /// Group number returned by the payer (REF*6P or REF*18).
    pub group_number: Option<String>,
    /// Plan or eligibility begin date.
    pub plan_begin_date: Option<NaiveDate>,
    /// Plan or eligibility end date; open-ended when absent.
    pub plan_end_date: Option<NaiveDate>,
    /// Network status the amounts are for.
    pub network_status: Option<NetworkStatus>,
    /// Individual deductible (EB01 `C`, EB02 `IND`).
    pub individual_deductible: Option<Accumulator>,
    /// Family deductible (EB01 `C`, EB02 `FAM`).
    pub family_deductible: Option<Accumulator>,
    /// Individual out-of-pocket maximum (EB01 `G`, EB02 `IND`).
    pub individual_out_of_pocket: Option<Accumulator>,
    /// Family out-of-pocket maximum (EB01 `G`, EB02 `FAM`).
    pub family_out_of_pocket: Option<Accumulator>,
    /// Plan-level coinsurance as a fraction, as the payer sent it.
    pub coinsurance_rate: Option<Decimal>,
    /// Cost sharing per service type.
    pub service_types: Vec<ServiceTypeBenefit>,
    /// Insurance type code of the active coverage (EB04), e.g. `C1`.
    pub insurance_type_code: Option<String>,
}

impl BenefitSummary {
    /// Returns the summary of a check that has no usable answer: status unknown, nothing else.
    pub fn unknown() -> Self {
        Self {
            coverage_status: CoverageStatus::Unknown,
            plan_name: None,
            group_number: None,
            plan_begin_date: None,
            plan_end_date: None,
            network_status: None,
            individual_deductible: None,
            family_deductible: None,
            individual_out_of_pocket: None,
            family_out_of_pocket: None,
            coinsurance_rate: None,
            service_types: Vec::new(),
            insurance_type_code: None,
        }
    }
}

/// One EB row of a 271 with its messages, kept so a caller can see everything the payer said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Benefit {
    /// EB01 eligibility or benefit information code.
    pub info_code: String,
    /// Plain-language meaning of EB01.
    pub info_description: Option<String>,
    /// EB02 coverage level code.
    pub coverage_level: Option<String>,
    /// EB03 service type codes.
    pub service_type_codes: Vec<String>,
    /// EB04 insurance type code.
    pub insurance_type_code: Option<String>,
    /// EB05 plan coverage description.
    pub plan_coverage_description: Option<String>,
    /// EB06 time period qualifier.
    pub time_period_qualifier: Option<String>,
    /// EB07 monetary amount, to the cent.
    pub amount: Option<Money>,
    /// EB08 percent as a fraction.
    pub percent: Option<Decimal>,
    /// EB09 quantity qualifier.
    pub quantity_qualifier: Option<String>,
    /// EB10 quantity.
    pub quantity: Option<Decimal>,
    /// EB11 authorization or certification required (`Y`, `N` or `U`).
    pub authorization_required: Option<String>,
    /// EB12 in-plan-network indicator: `Y` true, `N` false, otherwise absent.
    pub in_network: Option<bool>,
    /// MSG01 free-form messages after the EB segment.
    pub messages: Vec<String>,
}

/// A 271 AAA segment: the payer could not answer or rejected the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AaaRejection {
    /// Loop the AAA appeared in.
    pub level: Option<RejectionLevel>,
    /// AAA01: true for `Y`.
    pub valid_request: bool,
    /// AAA03 reject reason code.
    pub reason_code: String,
    /// Plain-language meaning of the reason code.
    pub description: String,
    /// AAA04 follow-up action code.
    pub follow_up_action_code: Option<String>,
}

/// A postal address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    /// First street line.
    pub line1: String,
    /// Second street line.
    pub line2: Option<String>,
    /// City.
    pub city: String,
    /// State or province code.
    pub state: String,
    /// Postal code.
    pub postal_code: String,
    /// ISO 3166 country code; absent means the US.
    pub country_code: Option<String>,
}

/// The subscriber or patient as the payer identified them in the 271. All PHI.
#[derive(Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// Name as returned.
    pub name: PersonName,
    /// Member id as returned.
    pub member_id: Option<String>,
    /// Date of birth.
    pub birth_date: Option<NaiveDate>,
    /// Gender code (DMG03).
    pub gender_code: Option<String>,
    /// Address, when sent.
    pub address: Option<Address>,
}

impl fmt::Debug for MemberInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemberInfo").finish_non_exhaustive()
    }
}

/// One eligibility check: the question asked, the payer's answer and its summary.
#[derive(Clone, PartialEq, Eq)]
pub struct EligibilityCheck {
    /// The check id (UUID v7).
    pub id: EligibilityCheckId,
    /// The coverage asked about; absent when inline subscriber data was used.
    pub coverage_id: Option<CoverageId>,
    /// The EHR's opaque patient id, when known.
    pub patient_ref: Option<String>,
    /// Payer identifier (270 NM1*PR NM109).
    pub payer_id: String,
    /// Member id sent in the 270 (PHI).
    pub member_id: String,
    /// NPI of the provider asking.
    pub provider_npi: String,
    /// Date of service asked about.
    pub date_of_service: NaiveDate,
    /// Service type codes asked about (EQ01), sorted.
    pub service_type_codes: Vec<String>,
    /// Processing outcome.
    pub status: CheckStatus,
    /// Summary of the answer (unknown coverage when the check failed).
    pub summary: Option<BenefitSummary>,
    /// Every EB row of the 271, in order.
    pub benefits: Vec<Benefit>,
    /// AAA rejections, in order.
    pub rejections: Vec<AaaRejection>,
    /// Subscriber as identified by the payer (PHI).
    pub subscriber: Option<MemberInfo>,
    /// Dependent as identified by the payer (PHI).
    pub dependent: Option<MemberInfo>,
    /// Trace number sent in the 270 (TRN02).
    pub trace_number: String,
    /// Why the check failed, in plain words without PHI.
    pub error_message: Option<String>,
    /// Raw X12 270 as sent (PHI); empty unless read with the raw exchange.
    pub raw_request: Vec<u8>,
    /// Raw X12 271 as received (PHI); empty unless read with the raw exchange or none came.
    pub raw_response: Vec<u8>,
    /// When the check was requested.
    pub created_at: DateTime<Utc>,
    /// When the payer's answer arrived.
    pub responded_at: Option<DateTime<Utc>>,
}

impl EligibilityCheck {
    /// Returns whether the answer is worth reusing for the same question: completed checks, and
    /// rejections other than "unable to respond at current time" (AAA03 `42`).
    pub fn is_reusable(&self) -> bool {
        match self.status {
            CheckStatus::Completed => true,
            CheckStatus::Rejected => !self.rejections.iter().any(|r| r.reason_code == "42"),
            CheckStatus::Pending | CheckStatus::Failed => false,
        }
    }
}

impl fmt::Debug for EligibilityCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EligibilityCheck")
            .field("id", &self.id)
            .field("coverage_id", &self.coverage_id)
            .field("payer_id", &self.payer_id)
            .field("date_of_service", &self.date_of_service)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// A new eligibility check to record: the check (raw X12 included) and the bookkeeping that
/// stays server-side.
#[derive(Clone)]
pub struct StoredCheck {
    /// The billing organisation that owns the record.
    pub tenant_id: TenantId,
    /// The idempotency key of the call that made the exchange (the key itself is recorded by
    /// `medbill_runtime::idempotent`, not here).
    pub idempotency_key: IdempotencyKey,
    /// Payer attempts the exchange took (0 when nothing was sent).
    pub payer_attempts: u32,
    /// The check, with `raw_request`/`raw_response` holding the X12 exchanged.
    pub check: EligibilityCheck,
}

impl fmt::Debug for StoredCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredCheck")
            .field("tenant_id", &self.tenant_id)
            .field("check", &self.check)
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
    /// Only checks with this status.
    pub status: Option<CheckStatus>,
    /// Only dates of service on or after this day.
    pub date_of_service_from: Option<NaiveDate>,
    /// Only dates of service on or before this day.
    pub date_of_service_to: Option<NaiveDate>,
    /// Only checks created at or after this instant (unix microseconds).
    pub created_from_micros: Option<i64>,
    /// Only checks created before this instant (unix microseconds).
    pub created_before_micros: Option<i64>,
}

medbill_domain::code_enum!(
    /// Where the allowed amount of an estimate line came from.
    AllowedSource, "allowed amount source", {
        /// The tenant's fee schedule (or self-pay rate) had the procedure.
        FeeSchedule => "FEE_SCHEDULE",
        /// No schedule entry: the billed charge was used.
        Charge => "CHARGE",
    }
);

/// A procedure as priced: code qualifier, code and modifiers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Procedure {
    /// Code qualifier, e.g. `HC` (CPT/HCPCS).
    pub qualifier: String,
    /// The procedure code.
    pub code: String,
    /// Up to four modifiers.
    pub modifiers: Vec<String>,
}

/// How a patient's share of one amount is made up:
/// `deductible + coinsurance + copay - out_of_pocket_cap_reduction == patient_responsibility`,
/// and `patient_responsibility + plan_pays` is the allowed amount.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Breakdown {
    /// Amount applied to the remaining deductible.
    pub deductible: Money,
    /// Coinsurance on the allowed amount above the deductible (all of it for self-pay and for
    /// services the plan does not cover).
    pub coinsurance: Money,
    /// Copay.
    pub copay: Money,
    /// Amount the out-of-pocket maximum removed (zero or positive).
    pub out_of_pocket_cap_reduction: Money,
    /// What the patient owes.
    pub patient_responsibility: Money,
    /// What the plan is expected to pay.
    pub plan_pays: Money,
}

impl Breakdown {
    /// Returns the field-by-field sum of several breakdowns (an estimate's total).
    pub fn sum<'a>(parts: impl IntoIterator<Item = &'a Breakdown>) -> Breakdown {
        parts
            .into_iter()
            .fold(Breakdown::default(), |t, b| Breakdown {
                deductible: t.deductible + b.deductible,
                coinsurance: t.coinsurance + b.coinsurance,
                copay: t.copay + b.copay,
                out_of_pocket_cap_reduction: t.out_of_pocket_cap_reduction
                    + b.out_of_pocket_cap_reduction,
                patient_responsibility: t.patient_responsibility + b.patient_responsibility,
                plan_pays: t.plan_pays + b.plan_pays,
            })
    }
}

/// The estimate for one service line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EstimateLine {
    /// 1-based position in the request's services.
    pub line_number: u32,
    /// Procedure priced.
    pub procedure: Procedure,
    /// Service type code used.
    pub service_type_code: String,
    /// Units priced.
    pub units: Decimal,
    /// Billed charge (all units).
    pub charge: Money,
    /// Allowed amount used.
    pub allowed_amount: Money,
    /// Where the allowed amount came from.
    pub allowed_amount_source: AllowedSource,
    /// The patient's share and its parts.
    pub breakdown: Breakdown,
}

/// The provider who will furnish the estimated services, as the caller named them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderRef {
    /// National Provider Identifier (checked on the way in).
    pub npi: String,
    /// Organisation name.
    pub organization_name: Option<String>,
    /// Individual provider's name.
    pub person_name: Option<PersonName>,
    /// Employer identification number.
    pub tax_id: Option<String>,
    /// Health care provider taxonomy code.
    pub taxonomy_code: Option<String>,
    /// Provider's address.
    pub address: Option<Address>,
}

/// A priced estimate of what a patient will owe for a list of services.
#[derive(Clone, PartialEq, Eq)]
pub struct CostEstimate {
    /// The estimate id (UUID v7).
    pub id: EstimateId,
    /// Eligibility check whose benefits were used; absent for self-pay.
    pub eligibility_check_id: Option<EligibilityCheckId>,
    /// Coverage the estimate is for; absent for self-pay and inline checks.
    pub coverage_id: Option<CoverageId>,
    /// The EHR's opaque patient id.
    pub patient_ref: String,
    /// Planned date of service.
    pub date_of_service: NaiveDate,
    /// True when the patient is uninsured or chose not to use insurance.
    pub self_pay: bool,
    /// True for a Good Faith Estimate under the No Surprises Act (always for self-pay).
    pub good_faith_estimate: bool,
    /// Priced lines in request order.
    pub lines: Vec<EstimateLine>,
    /// Sum of line charges.
    pub total_charge: Money,
    /// Sum of line allowed amounts.
    pub total_allowed: Money,
    /// Sum of the line breakdowns.
    pub total: Breakdown,
    /// Deductible remaining after all lines; absent for self-pay.
    pub deductible_remaining_after: Option<Money>,
    /// Out-of-pocket room remaining after all lines; absent for self-pay or when unknown.
    pub out_of_pocket_remaining_after: Option<Money>,
    /// Notice text shown to the patient.
    pub disclaimer: String,
    /// Last day the estimate is valid.
    pub valid_until: NaiveDate,
    /// Provider who will furnish the services.
    pub provider: Option<ProviderRef>,
    /// When the estimate was made.
    pub created_at: DateTime<Utc>,
}

impl fmt::Debug for CostEstimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CostEstimate")
            .field("id", &self.id)
            .field("eligibility_check_id", &self.eligibility_check_id)
            .field("self_pay", &self.self_pay)
            .field("lines", &self.lines.len())
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
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

    #[test]
    fn check_debug_output_hides_phi() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default();
        let member = MemberInfo {
            name: PersonName::new("SMITHERSON", "JOHANNA"),
            member_id: Some("W987654321".into()),
            birth_date: Some(d(1971, 8, 23)),
            gender_code: Some("F".into()),
            address: None,
        };
        let check = EligibilityCheck {
            id: EligibilityCheckId::new(),
            coverage_id: None,
            patient_ref: Some("pat-1".into()),
            payer_id: "60054".into(),
            member_id: "W987654321".into(),
            provider_npi: "1234567893".into(),
            date_of_service: d(2026, 3, 2),
            service_type_codes: vec!["30".into()],
            status: CheckStatus::Completed,
            summary: Some(BenefitSummary::unknown()),
            benefits: Vec::new(),
            rejections: Vec::new(),
            subscriber: Some(member.clone()),
            dependent: Some(member),
            trace_number: "T1".into(),
            error_message: None,
            raw_request: b"NM1*IL*1*SMITHERSON*JOHANNA****MI*W987654321~".to_vec(),
            raw_response: Vec::new(),
            created_at: Utc::now(),
            responded_at: None,
        };
        let text = format!("{check:?}");
        for phi in [
            "W987654321",
            "JOHANNA",
            "SMITHERSON",
            "1971-08-23",
            "19710823",
        ] {
            assert!(!text.contains(phi), "{phi} leaked into {text}");
        }
        assert!(text.contains("60054"), "{text}");
    }
}
