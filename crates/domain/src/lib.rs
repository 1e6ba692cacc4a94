//! Domain types shared by every medbill service: money, identifiers, NPI, dates, benefit math.
//!
//! Everything here is pure (no I/O) and exact: amounts and rates are [`rust_decimal::Decimal`],
//! never floating point.
//!
//! ```
//! use medbill_domain::{CopayRule, Money, PlanBenefits, Rate, ServiceToPrice, estimate_patient_responsibility};
//!
//! let charge = Money::parse("125.50")?;
//! assert_eq!(charge.to_minor_units()?, 12550);
//! assert!(Money::parse("1e3").is_err());
//!
//! let plan = PlanBenefits {
//!     remaining_deductible: Money::parse("100")?,
//!     coinsurance: Rate::parse(".2")?,
//!     copay: Some(Money::parse("25")?),
//!     remaining_oop: Some(Money::parse("3000")?),
//! };
//! let services = [
//!     ServiceToPrice { allowed: Money::parse("150")?, copay: CopayRule::Plan },
//!     ServiceToPrice { allowed: Money::parse("250")?, copay: CopayRule::None },
//! ];
//! let estimate = estimate_patient_responsibility(&plan, &services)?;
//! assert_eq!(estimate.lines[0].patient.to_string(), "25.00"); // copay
//! assert_eq!(estimate.lines[1].patient.to_string(), "130.00"); // 100 deductible + 20% of 150
//! assert_eq!(estimate.total_patient.to_string(), "155.00");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

pub mod codes;
pub mod dates;
pub mod estimate;
pub mod ids;
pub mod money;
pub mod npi;

pub use dates::{
    DateError, format_iso_date, format_x12_date, format_x12_date_range, format_x12_short_date,
    parse_iso_date, parse_x12_date, parse_x12_date_range, parse_x12_short_date,
};
pub use estimate::{
    CopayRule, Estimate, EstimateError, LineEstimate, PlanBenefits, ServiceToPrice,
    estimate_patient_responsibility,
};
pub use ids::{
    AccountId, AcknowledgementId, AgencyPlacementId, ClaimId, ClaimLineId, CoverageId, DepositId,
    EligibilityCheckId, EraId, EstimateId, IdError, IdempotencyKey, IdempotencyKeyError,
    JournalEntryId, OutboxMessageId, PatientControlNumber, PatientControlNumberError,
    PaymentPlanId, PriorAuthorizationId, RefundId, StatementId, SubmissionBatchId, TenantId,
    TenantIdError,
};
pub use money::{AmountError, DecimalSyntax, Money, Rate, RateError};
pub use npi::{Npi, NpiError};
pub use rust_decimal::Decimal;
