//! Domain types shared by every medbill service: money, identifiers, NPI, dates, benefit math.
//!
//! Everything here is pure (no I/O) and exact: amounts and rates are [`rust_decimal::Decimal`],
//! never floating point.

#![forbid(unsafe_code)]

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
