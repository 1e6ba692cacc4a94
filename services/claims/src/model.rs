//! Domain structs of the claims service: a claim with its diagnoses, service lines and status history.
//!
//! Money is [`Money`] (exact, whole cents when stored), dates are [`NaiveDate`], timestamps are
//! UTC. The wire (proto) and database shapes are mapped to and from these types at their boundaries.

use chrono::{DateTime, NaiveDate, Utc};
use medbill_codesets::procedures::is_cpt_format;
use medbill_domain::code_enum;
pub use medbill_domain::codes::UnknownCode;
use medbill_domain::{ClaimId, Money, Npi, PatientControlNumber};
use rust_decimal::Decimal;
use thiserror::Error;
use uuid::Uuid;

use crate::details::ClaimDetails;

/// Maximum number of procedure modifiers on a service line (SV101-3..SV101-6).
pub const MAX_MODIFIERS: usize = 4;
/// Maximum number of diagnosis pointers on a professional service line (SV107-1..SV107-4).
pub const MAX_DIAGNOSIS_POINTERS: usize = 4;
/// Maximum number of diagnoses on a claim (HI segments: 12 on an 837P).
pub const MAX_DIAGNOSES: usize = 12;
/// Maximum number of service lines on a professional claim (loop 2400 repeats 50 times on an 837P).
pub const MAX_LINES: usize = 50;

code_enum!(
    /// Whether a claim is professional (837P, CMS-1500) or institutional (837I, UB-04).
    ClaimType, "claim type", {
        /// 837P.
        Professional => "PROFESSIONAL",
        /// 837I.
        Institutional => "INSTITUTIONAL",
    }
);

code_enum!(
    /// Where a claim is in its life cycle.
    ClaimStatus, "claim status", {
        /// Created, not yet scrubbed.
        Draft => "DRAFT",
        /// Scrubbing failed; held with the reasons, not sent.
        Held => "HELD",
        /// Scrubbed clean, waiting for submission.
        Ready => "READY",
        /// Sent in an 837 batch.
        Submitted => "SUBMITTED",
        /// Accepted into adjudication (277CA A1/A2).
        Accepted => "ACCEPTED",
        /// Rejected by the clearinghouse or payer (999 / 277CA).
        Rejected => "REJECTED",
        /// Paid in full by the payer (835).
        Paid => "PAID",
        /// Paid in part (835).
        PartiallyPaid => "PARTIALLY_PAID",
        /// Denied by the payer (835 CLP02 = 4).
        Denied => "DENIED",
        /// Voided (frequency 8 sent, or never submitted and cancelled).
        Void => "VOID",
    }
);

code_enum!(
    /// CLM05-3 claim frequency type code.
    FrequencyCode, "claim frequency code", {
        /// Original claim.
        Original => "1",
        /// Replacement of a prior claim (needs REF*F8).
        Replacement => "7",
        /// Void / cancel of a prior claim (needs REF*F8).
        Void => "8",
    }
);

code_enum!(
    /// What caused a claim's status change.
    StatusChangeSource, "status change source", {
        /// CreateClaim.
        Create => "CREATE",
        /// ScrubClaim.
        Scrub => "SCRUB",
        /// SubmitClaims.
        Submission => "SUBMISSION",
        /// A 999 or TA1.
        SyntaxAcknowledgement => "SYNTAX_ACKNOWLEDGEMENT",
        /// A 277CA.
        ClaimAcknowledgement => "CLAIM_ACKNOWLEDGEMENT",
        /// An ERA applied through ApplyAdjudication.
        Adjudication => "ADJUDICATION",
        /// CorrectClaim.
        Correction => "CORRECTION",
        /// VoidClaim.
        Void => "VOID",
    }
);

code_enum!(
    /// How serious a scrub finding is.
    ScrubSeverity, "scrub severity", {
        /// Informational; no action needed.
        Info => "INFO",
        /// The claim can be sent but is likely to be reduced or questioned.
        Warning => "WARNING",
        /// The claim would be rejected or denied; it is held.
        Error => "ERROR",
    }
);

code_enum!(
    /// The stable identifier of a scrub edit (ScrubFinding.edit_code); see `crate::scrub`.
    EditCode, "scrub edit code", {
        /// A field an 837 needs is missing.
        RequiredField => "REQUIRED_FIELD",
        /// The ICD-10-CM code is not valid in the code set in force on the date of service.
        Icd10InvalidOnDos => "ICD10_INVALID_ON_DOS",
        /// The ICD-10-CM code is in no loaded code set.
        Icd10Unknown => "ICD10_UNKNOWN",
        /// The ICD-10-CM code is a header, not billable: more characters are needed.
        Icd10NotBillable => "ICD10_NOT_BILLABLE",
        /// No ICD-10-CM code set is loaded for the date of service: the code was not checked.
        Icd10CodeSetMissing => "ICD10_CODE_SET_MISSING",
        /// The HCPCS Level II code is not in the code set.
        HcpcsInvalid => "HCPCS_INVALID",
        /// The procedure code has neither the CPT nor the HCPCS Level II shape.
        CptFormat => "CPT_FORMAT",
        /// The CPT code is not in the licensed CPT file configured.
        CptInvalid => "CPT_INVALID",
        /// No licensed CPT file is configured, so only the CPT code's format was checked.
        CptNotChecked => "CPT_NOT_CHECKED",
        /// An NPI fails its check digit.
        NpiCheckDigit => "NPI_CHECK_DIGIT",
        /// A diagnosis pointer is outside 1..12 or points at no diagnosis.
        DiagnosisPointerRange => "DIAGNOSIS_POINTER_RANGE",
        /// A line points at the same diagnosis twice.
        DiagnosisPointerDuplicate => "DIAGNOSIS_POINTER_DUPLICATE",
        /// The primary (first) diagnosis cannot be first-listed (an external cause code).
        DiagnosisPointerPrimary => "DIAGNOSIS_POINTER_PRIMARY",
        /// No line points at a diagnosis of the claim.
        DiagnosisNotPointed => "DIAGNOSIS_NOT_POINTED",
        /// The modifier is neither a HCPCS Level II modifier nor a known CPT modifier.
        ModifierUnknown => "MODIFIER_UNKNOWN",
        /// The modifier is not allowed with the line's code or other modifiers.
        ModifierNotAllowed => "MODIFIER_NOT_ALLOWED",
        /// The place of service is not a CMS place of service code.
        PosInvalid => "POS_INVALID",
        /// An NCCI procedure-to-procedure edit forbids the pair on one date of service.
        NcciPtp => "NCCI_PTP",
        /// More units than the medically unlikely edit allows.
        MueUnits => "MUE_UNITS",
        /// The payer's timely filing limit has passed (or is close).
        TimelyFiling => "TIMELY_FILING",
        /// The coverage is not in force on the date of service, or no longer exists.
        CoverageInactive => "COVERAGE_INACTIVE",
        /// The payer needs a prior authorization number for the procedure and none is on the claim.
        PriorAuthMissing => "PRIOR_AUTH_MISSING",
    }
);

/// One problem found by scrubbing a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrubFinding {
    /// Which edit fired.
    pub edit_code: EditCode,
    /// How serious it is.
    pub severity: ScrubSeverity,
    /// What is wrong and how to fix it, in plain words (no PHI).
    pub message: String,
    /// Path of the claim field, 0-based list indexes (`lines[1].modifiers[0]`); empty for the claim.
    pub field: String,
    /// 1-based line number; 0 for the claim.
    pub line_number: u32,
    /// Where the field lands in the 837 (`2400 SV1-01-2`); empty when not applicable.
    pub x12_location: String,
}

/// Longest line item control number (REF*6R allows 50 characters).
pub const MAX_LINE_CONTROL_NUMBER_LEN: usize = 50;

/// One service line of a claim (loop 2400: SV1 on 837P, SV2 on 837I).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimLine {
    /// 1-based position on the claim (LX01).
    pub line_number: u32,
    /// Our line item control number, sent as REF*6R and echoed back in the 835.
    pub line_control_number: String,
    /// CPT or HCPCS Level II code (SV101-2 / SV202-2).
    pub procedure_code: String,
    /// Procedure modifiers, 0 to 4, in order.
    pub modifiers: Vec<String>,
    /// NUBC revenue code (SV201), institutional claims only.
    pub revenue_code: Option<String>,
    /// Line charge (SV102 / SV203).
    pub charge: Money,
    /// Units of service (SV104 / SV205), exact.
    pub units: Decimal,
    /// Date of service (DTP*472).
    pub service_date: NaiveDate,
    /// 1-based pointers into the claim's diagnoses (SV107).
    pub diagnosis_pointers: Vec<u32>,
    /// Line-level prior authorization number (2400 REF*G1).
    pub prior_authorization_number: Option<String>,
    /// Line-level referral number (2400 REF*9F).
    pub referral_number: Option<String>,
}

/// A claim as stored: header, diagnoses and lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// UUID v7, assigned at creation.
    pub id: ClaimId,
    /// CLM01: our patient control number, unique per tenant.
    pub patient_control_number: PatientControlNumber,
    /// Professional or institutional.
    pub claim_type: ClaimType,
    /// Current status.
    pub status: ClaimStatus,
    /// CLM05-3.
    pub frequency_code: FrequencyCode,
    /// The payer's claim control number (REF*F8), required for frequency 7 and 8.
    pub payer_claim_control_number: Option<String>,
    /// The eligibility service's coverage this claim bills.
    pub coverage_id: String,
    /// Payer identifier (e.g. "60054").
    pub payer_id: String,
    /// The EHR's opaque patient id.
    pub patient_ref: String,
    /// Billing provider NPI (loop 2010AA NM109).
    pub billing_provider_npi: Npi,
    /// Rendering provider NPI (loop 2310B), when different from the billing provider.
    pub rendering_provider_npi: Option<Npi>,
    /// CLM05-1 place of service, professional claims.
    pub place_of_service: Option<String>,
    /// CLM05-1 facility type code, institutional claims.
    pub facility_type_code: Option<String>,
    /// ICD-10-CM codes without the dot; the first is the principal diagnosis.
    pub diagnoses: Vec<String>,
    /// Service lines in line-number order.
    pub lines: Vec<ClaimLine>,
    /// CLM02: the sum of the line charges.
    pub total_charge: Money,
    /// First date of service over the lines.
    pub service_date_from: NaiveDate,
    /// Last date of service over the lines.
    pub service_date_to: NaiveDate,
    /// The EHR encounter this claim bills, if given.
    pub encounter_ref: Option<String>,
    /// Demographics, other providers, authorization numbers, institutional fields, coverage snapshot.
    pub details: ClaimDetails,
    /// The submission batch the claim was last sent in.
    pub submission_batch_id: Option<Uuid>,
    /// When the claim was created.
    pub created_at: DateTime<Utc>,
    /// When the claim last changed.
    pub updated_at: DateTime<Utc>,
    /// Findings of the latest scrub, errors first; empty before the first scrub.
    pub scrub_findings: Vec<ScrubFinding>,
    /// For a replacement (7) or void (8): the claim it corrects.
    pub original_claim_id: Option<ClaimId>,
    /// For a corrected or voided claim: the replacement or void claim that superseded it.
    pub superseded_by_claim_id: Option<ClaimId>,
    /// The adjudication in force (the latest no reversal undid).
    pub adjudication: Option<crate::adjudication::AppliedAdjudication>,
    /// Coordination of benefits: the primary / secondary claim link.
    pub coordination: Coordination,
}

/// A claim's place in coordination of benefits (see [`crate::cob`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coordination {
    /// For a secondary claim: the primary whose adjudication it carries.
    pub primary_claim_id: Option<ClaimId>,
    /// For a primary: the secondary claim made from its adjudication.
    pub secondary_claim_id: Option<ClaimId>,
    /// For an adjudicated primary without a secondary claim: why none was made.
    pub secondary_claim_note: Option<String>,
}

/// A claim's status change made in a transaction. Its history entry is written, and given its
/// per-tenant sequence number, when the transaction commits (read it back with the history).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusMove {
    /// UUID v7 of the history entry.
    pub history_id: Uuid,
    /// The claim that changed.
    pub claim_id: ClaimId,
    /// CLM01 of the claim.
    pub patient_control_number: PatientControlNumber,
    /// The status it had.
    pub from: ClaimStatus,
    /// The new status.
    pub to: ClaimStatus,
    /// When it changed.
    pub at: DateTime<Utc>,
}

/// One entry of a claim's status history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    /// UUID v7 of the entry.
    pub id: Uuid,
    /// Per-tenant event number: 1, 2, 3... in commit order, without gaps.
    pub sequence: u64,
    /// The claim that changed.
    pub claim_id: ClaimId,
    /// CLM01 of the claim.
    pub patient_control_number: PatientControlNumber,
    /// The previous status; `None` for the creating entry.
    pub from: Option<ClaimStatus>,
    /// The new status.
    pub to: ClaimStatus,
    /// What caused the change.
    pub source: StatusChangeSource,
    /// Id of the causing record (batch, acknowledgement, ERA, replacement claim); empty when none.
    pub source_id: String,
    /// Why it changed (e.g. scrub failures, 277CA category code).
    pub reason: String,
    /// When it changed.
    pub at: DateTime<Utc>,
}

/// Filters of a claim listing; `None` means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimFilter {
    /// Only claims in any of these statuses; empty means any status.
    pub statuses: Vec<ClaimStatus>,
    /// Only the claim with this CLM01.
    pub patient_control_number: Option<String>,
    /// Only claims billed to this coverage.
    pub coverage_id: Option<String>,
    /// Only claims of this patient.
    pub patient_ref: Option<String>,
    /// Only claims to this payer.
    pub payer_id: Option<String>,
    /// Only claims whose service ends on or after this date.
    pub service_date_from: Option<NaiveDate>,
    /// Only claims whose service starts on or before this date.
    pub service_date_to: Option<NaiveDate>,
}

/// One service line of a claim being created, as validated input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewClaimLine {
    /// REF*6R line item control number; `None` lets the store assign one.
    pub line_control_number: Option<String>,
    /// CPT or HCPCS Level II code.
    pub procedure_code: String,
    /// Procedure modifiers, 0 to 4.
    pub modifiers: Vec<String>,
    /// NUBC revenue code, institutional claims only.
    pub revenue_code: Option<String>,
    /// Line charge.
    pub charge: Money,
    /// Units of service.
    pub units: Decimal,
    /// Date of service.
    pub service_date: NaiveDate,
    /// 1-based pointers into the claim's diagnoses.
    pub diagnosis_pointers: Vec<u32>,
    /// Line-level prior authorization number (2400 REF*G1).
    pub prior_authorization_number: Option<String>,
    /// Line-level referral number (2400 REF*9F).
    pub referral_number: Option<String>,
}

/// A claim to create. [`NewClaim::validate`] checks the rules that span fields; the caller (the gRPC layer)
/// has already parsed each field into its type (NPI check digits, money, dates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewClaim {
    /// CLM01, unique per tenant.
    pub patient_control_number: PatientControlNumber,
    /// Professional or institutional.
    pub claim_type: ClaimType,
    /// CLM05-3.
    pub frequency_code: FrequencyCode,
    /// REF*F8, required for frequency 7 and 8.
    pub payer_claim_control_number: Option<String>,
    /// The coverage billed.
    pub coverage_id: String,
    /// Payer identifier.
    pub payer_id: String,
    /// The EHR's patient id.
    pub patient_ref: String,
    /// Billing provider NPI (already check-digit validated).
    pub billing_provider_npi: Npi,
    /// Rendering provider NPI (already check-digit validated).
    pub rendering_provider_npi: Option<Npi>,
    /// Place of service, professional claims.
    pub place_of_service: Option<String>,
    /// Facility type code, institutional claims.
    pub facility_type_code: Option<String>,
    /// ICD-10-CM codes without the dot, principal first.
    pub diagnoses: Vec<String>,
    /// Service lines in order.
    pub lines: Vec<NewClaimLine>,
    /// The caller's expected total charge; when given it must equal the sum of the line charges.
    pub total_charge: Option<Money>,
    /// First date of service; `None` means the earliest line date.
    pub service_date_from: Option<NaiveDate>,
    /// Last date of service; `None` means the latest line date.
    pub service_date_to: Option<NaiveDate>,
    /// The EHR encounter.
    pub encounter_ref: Option<String>,
    /// Demographics, other providers, authorization numbers, institutional fields; the coverage
    /// snapshot is filled by CreateClaim from the eligibility service.
    pub details: ClaimDetails,
}

/// A rule a claim being created breaks; `field` names the offending request field path.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {message}")]
pub struct ClaimValidationError {
    /// Request field path, e.g. `lines[1].diagnosis_pointers[0]`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl ClaimValidationError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl NewClaim {
    /// Checks the rules that span fields and returns the claim's total charge (the sum of the line
    /// charges) and its service date range.
    pub fn validate(&self) -> Result<ValidatedTotals, ClaimValidationError> {
        if self.diagnoses.is_empty() {
            return Err(ClaimValidationError::new(
                "diagnoses",
                "at least one diagnosis is required",
            ));
        }
        if self.diagnoses.len() > MAX_DIAGNOSES {
            return Err(ClaimValidationError::new(
                "diagnoses",
                format!(
                    "at most {MAX_DIAGNOSES} diagnoses are allowed, got {}",
                    self.diagnoses.len()
                ),
            ));
        }
        for (i, code) in self.diagnoses.iter().enumerate() {
            if !is_icd10_cm_format(code) {
                return Err(ClaimValidationError::new(
                    format!("diagnoses[{i}]"),
                    format!("{code:?} is not an ICD-10-CM code without the dot (e.g. \"E119\")"),
                ));
            }
        }
        if self.lines.is_empty() {
            return Err(ClaimValidationError::new(
                "lines",
                "at least one service line is required",
            ));
        }
        if self.lines.len() > MAX_LINES {
            return Err(ClaimValidationError::new(
                "lines",
                format!(
                    "at most {MAX_LINES} service lines are allowed, got {}",
                    self.lines.len()
                ),
            ));
        }
        match (self.frequency_code, &self.payer_claim_control_number) {
            (FrequencyCode::Original, _) => {}
            (_, Some(pccn)) if !pccn.trim().is_empty() => {}
            (code, _) => {
                return Err(ClaimValidationError::new(
                    "payer_claim_control_number",
                    format!(
                        "is required for frequency code {} (sent as REF*F8)",
                        code.as_str()
                    ),
                ));
            }
        }
        match self.claim_type {
            ClaimType::Professional => {
                if self.place_of_service.as_deref().is_none_or(str::is_empty) {
                    return Err(ClaimValidationError::new(
                        "place_of_service",
                        "is required on a professional claim",
                    ));
                }
            }
            ClaimType::Institutional => {
                if self.facility_type_code.as_deref().is_none_or(str::is_empty) {
                    return Err(ClaimValidationError::new(
                        "facility_type_code",
                        "is required on an institutional claim",
                    ));
                }
            }
        }

        let mut total = Money::ZERO;
        let mut from: Option<NaiveDate> = None;
        let mut to: Option<NaiveDate> = None;
        for (i, line) in self.lines.iter().enumerate() {
            let at = |f: &str| format!("lines[{i}].{f}");
            if !is_procedure_code_format(&line.procedure_code) {
                return Err(ClaimValidationError::new(
                    at("procedure_code"),
                    format!(
                        "{:?} is not a CPT (5 digits, or 4 digits and F/T/U/M) or HCPCS Level II (letter and 4 digits) code",
                        line.procedure_code
                    ),
                ));
            }
            if let Some(lcn) = &line.line_control_number {
                if lcn.is_empty()
                    || lcn.len() > MAX_LINE_CONTROL_NUMBER_LEN
                    || !lcn
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
                {
                    return Err(ClaimValidationError::new(
                        at("line_control_number"),
                        format!(
                            "{lcn:?} is not 1 to {MAX_LINE_CONTROL_NUMBER_LEN} characters of A-Z, a-z, 0-9, '-', '.' and '_'"
                        ),
                    ));
                }
                let first = self
                    .lines
                    .iter()
                    .position(|l| l.line_control_number.as_deref() == Some(lcn.as_str()));
                if first != Some(i) {
                    return Err(ClaimValidationError::new(
                        at("line_control_number"),
                        format!("{lcn:?} is used by more than one line of the claim"),
                    ));
                }
            }
            if line.modifiers.len() > MAX_MODIFIERS {
                return Err(ClaimValidationError::new(
                    at("modifiers"),
                    format!(
                        "at most {MAX_MODIFIERS} modifiers are allowed, got {}",
                        line.modifiers.len()
                    ),
                ));
            }
            for (m, modifier) in line.modifiers.iter().enumerate() {
                if modifier.len() != 2 || !modifier.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(ClaimValidationError::new(
                        format!("lines[{i}].modifiers[{m}]"),
                        format!("{modifier:?} is not a two-character procedure modifier"),
                    ));
                }
            }
            if line.charge.is_negative() {
                return Err(ClaimValidationError::new(
                    at("charge"),
                    "must not be negative",
                ));
            }
            if !line.charge.is_whole_cents() {
                return Err(ClaimValidationError::new(
                    at("charge"),
                    "must have at most two decimal places",
                ));
            }
            if line.units <= Decimal::ZERO {
                return Err(ClaimValidationError::new(
                    at("units"),
                    "must be greater than zero",
                ));
            }
            if line.diagnosis_pointers.is_empty() && self.claim_type == ClaimType::Professional {
                return Err(ClaimValidationError::new(
                    at("diagnosis_pointers"),
                    "at least one diagnosis pointer is required on a professional line",
                ));
            }
            if line.diagnosis_pointers.len() > MAX_DIAGNOSIS_POINTERS {
                return Err(ClaimValidationError::new(
                    at("diagnosis_pointers"),
                    format!(
                        "at most {MAX_DIAGNOSIS_POINTERS} diagnosis pointers are allowed, got {}",
                        line.diagnosis_pointers.len()
                    ),
                ));
            }
            for (p, &pointer) in line.diagnosis_pointers.iter().enumerate() {
                let in_range = usize::try_from(pointer)
                    .is_ok_and(|ptr| ptr >= 1 && ptr <= self.diagnoses.len());
                if !in_range {
                    return Err(ClaimValidationError::new(
                        format!("lines[{i}].diagnosis_pointers[{p}]"),
                        format!(
                            "pointer {pointer} is out of range: the claim has {} diagnoses (pointers are 1-based)",
                            self.diagnoses.len()
                        ),
                    ));
                }
            }
            if let Some(rev) = &line.revenue_code
                && (rev.len() != 4 || !rev.bytes().all(|b| b.is_ascii_digit()))
            {
                return Err(ClaimValidationError::new(
                    at("revenue_code"),
                    format!("{rev:?} is not a four-digit revenue code"),
                ));
            }
            if self.claim_type == ClaimType::Institutional && line.revenue_code.is_none() {
                return Err(ClaimValidationError::new(
                    at("revenue_code"),
                    "is required on an institutional line",
                ));
            }
            total = total.checked_add(line.charge).ok_or_else(|| {
                ClaimValidationError::new(at("charge"), "the sum of the line charges overflows")
            })?;
            from = Some(from.map_or(line.service_date, |d| d.min(line.service_date)));
            to = Some(to.map_or(line.service_date, |d| d.max(line.service_date)));
        }
        if let Some(given) = self.total_charge
            && given != total
        {
            return Err(ClaimValidationError::new(
                "total_charge",
                format!("{given} does not equal the sum of the line charges, {total}"),
            ));
        }
        let (Some(first_line), Some(last_line)) = (from, to) else {
            return Err(ClaimValidationError::new(
                "lines",
                "at least one service line is required",
            ));
        };
        let service_date_from = match self.service_date_from {
            Some(d) if d > first_line => {
                return Err(ClaimValidationError::new(
                    "service_date_from",
                    format!("{d} is after the earliest line date of service, {first_line}"),
                ));
            }
            Some(d) => d,
            None => first_line,
        };
        let service_date_to = match self.service_date_to {
            Some(d) if d < last_line => {
                return Err(ClaimValidationError::new(
                    "service_date_to",
                    format!("{d} is before the latest line date of service, {last_line}"),
                ));
            }
            Some(d) => d,
            None => last_line,
        };
        Ok(ValidatedTotals {
            total_charge: total,
            service_date_from,
            service_date_to,
        })
    }
}

/// What [`NewClaim::validate`] derives from the lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidatedTotals {
    /// The sum of the line charges (CLM02).
    pub total_charge: Money,
    /// The claim's first date of service (given, or the earliest line date).
    pub service_date_from: NaiveDate,
    /// The claim's last date of service (given, or the latest line date).
    pub service_date_to: NaiveDate,
}

/// Returns whether `code` has the shape of an ICD-10-CM code without the dot: a letter, a digit, then one
/// alphanumeric, then up to four more alphanumerics (3 to 7 characters).
pub fn is_icd10_cm_format(code: &str) -> bool {
    let b = code.as_bytes();
    (3..=7).contains(&b.len())
        && b.first().is_some_and(u8::is_ascii_uppercase)
        && b.get(1).is_some_and(u8::is_ascii_digit)
        && b.iter()
            .skip(2)
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
}

/// Returns whether `code` has the shape of a CPT code (5 digits, or 4 digits and F/T/U/M; CPT descriptions are
/// AMA-licensed, so only the format is checked) or a HCPCS Level II code (a letter and 4 digits).
pub fn is_procedure_code_format(code: &str) -> bool {
    let b = code.as_bytes();
    is_cpt_format(code)
        || (b.len() == 5 && b[0].is_ascii_uppercase() && b[1..].iter().all(u8::is_ascii_digit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn m(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn line(code: &str, charge: Money, day: &str, pointers: Vec<u32>) -> NewClaimLine {
        NewClaimLine {
            line_control_number: None,
            procedure_code: code.into(),
            modifiers: vec![],
            revenue_code: None,
            charge,
            units: dec!(1),
            service_date: date(day),
            diagnosis_pointers: pointers,
            prior_authorization_number: None,
            referral_number: None,
        }
    }

    fn claim() -> NewClaim {
        NewClaim {
            patient_control_number: PatientControlNumber::parse("PCN-1").unwrap(),
            claim_type: ClaimType::Professional,
            frequency_code: FrequencyCode::Original,
            payer_claim_control_number: None,
            coverage_id: "cov".into(),
            payer_id: "60054".into(),
            patient_ref: "pat-1".into(),
            billing_provider_npi: Npi::parse("1234567893").unwrap(),
            rendering_provider_npi: None,
            place_of_service: Some("11".into()),
            facility_type_code: None,
            diagnoses: vec!["E119".into(), "I10".into()],
            lines: vec![
                line("99213", m("125.00"), "2026-03-02", vec![1, 2]),
                line("G0439", m("80.55"), "2026-03-01", vec![2]),
            ],
            total_charge: None,
            service_date_from: None,
            service_date_to: None,
            encounter_ref: None,
            details: Default::default(),
        }
    }

    #[test]
    fn a_given_total_must_equal_the_sum() {
        let mut c = claim();
        c.total_charge = Some(m("205.55"));
        assert!(c.validate().is_ok());
        c.total_charge = Some(m("205.50"));
        let e = c.validate().unwrap_err();
        assert_eq!(e.field, "total_charge");
        assert!(e.message.contains("205.55"), "{e}");
    }

    #[test]
    fn given_service_dates_must_cover_the_lines() {
        let mut c = claim();
        c.service_date_from = Some(date("2026-02-28"));
        c.service_date_to = Some(date("2026-03-05"));
        let t = c.validate().unwrap();
        assert_eq!(
            (t.service_date_from, t.service_date_to),
            (date("2026-02-28"), date("2026-03-05"))
        );
        c.service_date_from = Some(date("2026-03-02"));
        assert_eq!(c.validate().unwrap_err().field, "service_date_from");
        c.service_date_from = None;
        c.service_date_to = Some(date("2026-03-01"));
        assert_eq!(c.validate().unwrap_err().field, "service_date_to");
    }

    #[test]
    fn line_control_numbers_are_unique_within_the_claim() {
        let mut c = claim();
        c.lines[0].line_control_number = Some("L-1".into());
        c.lines[1].line_control_number = Some("L-1".into());
        assert_eq!(
            c.validate().unwrap_err().field,
            "lines[1].line_control_number"
        );
        c.lines[1].line_control_number = Some("L 2".into());
        assert_eq!(
            c.validate().unwrap_err().field,
            "lines[1].line_control_number"
        );
    }

    #[test]
    fn totals_are_the_sum_of_lines_and_the_date_range() {
        let t = claim().validate().unwrap();
        assert_eq!(t.total_charge, m("205.55"));
        assert_eq!(t.service_date_from, date("2026-03-01"));
        assert_eq!(t.service_date_to, date("2026-03-02"));
    }

    #[test]
    fn pointer_out_of_range_names_the_pointer() {
        let mut c = claim();
        c.lines[1].diagnosis_pointers = vec![2, 3];
        let e = c.validate().unwrap_err();
        assert_eq!(e.field, "lines[1].diagnosis_pointers[1]");
        let mut c = claim();
        c.lines[0].diagnosis_pointers = vec![0];
        assert_eq!(
            c.validate().unwrap_err().field,
            "lines[0].diagnosis_pointers[0]"
        );
    }

    #[test]
    fn five_modifiers_are_rejected_and_four_accepted() {
        let mut c = claim();
        c.lines[0].modifiers = ["25", "59", "GT", "95"].map(String::from).to_vec();
        assert!(c.validate().is_ok());
        c.lines[0].modifiers.push("XE".into());
        assert_eq!(c.validate().unwrap_err().field, "lines[0].modifiers");
    }

    #[test]
    fn diagnoses_and_lines_are_required() {
        let mut c = claim();
        c.diagnoses.clear();
        assert_eq!(c.validate().unwrap_err().field, "diagnoses");
        let mut c = claim();
        c.lines.clear();
        assert_eq!(c.validate().unwrap_err().field, "lines");
    }

    #[test]
    fn replacement_needs_the_payer_claim_control_number() {
        let mut c = claim();
        c.frequency_code = FrequencyCode::Replacement;
        assert_eq!(
            c.validate().unwrap_err().field,
            "payer_claim_control_number"
        );
        c.payer_claim_control_number = Some("PAYER123".into());
        assert!(c.validate().is_ok());
    }

    #[test]
    fn sub_cent_and_negative_charges_are_rejected() {
        let mut c = claim();
        c.lines[0].charge = Money::from_decimal(dec!(1.005));
        assert_eq!(c.validate().unwrap_err().field, "lines[0].charge");
        c.lines[0].charge = m("-1");
        assert_eq!(c.validate().unwrap_err().field, "lines[0].charge");
        c.lines[0].charge = Money::from_decimal(dec!(1.500));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn code_formats() {
        assert!(is_procedure_code_format("99213"));
        assert!(is_procedure_code_format("0001F"));
        assert!(
            is_procedure_code_format("0001M"),
            "CPT multianalyte assays end in M"
        );
        assert!(is_procedure_code_format("G0439"));
        assert!(!is_procedure_code_format("9921"));
        assert!(!is_procedure_code_format("0001X"));
        assert!(is_icd10_cm_format("E119"));
        assert!(is_icd10_cm_format("S72001A"));
        assert!(!is_icd10_cm_format("E11.9"));
        assert!(!is_icd10_cm_format("11"));
    }

    #[test]
    fn codes_round_trip() {
        for s in ClaimStatus::ALL {
            assert_eq!(s.as_str().parse::<ClaimStatus>().unwrap(), *s);
        }
        assert!("PENDING".parse::<ClaimStatus>().is_err());
    }
}
