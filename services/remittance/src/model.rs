//! Domain structs of the remittance service: a received 835 file (kept once, raw) and its ERAs (one per 835
//! transaction set) with their payment summary and the places where they do not balance.
//!
//! Money is [`Money`] (exact, whole cents when stored), dates are [`NaiveDate`], timestamps are
//! UTC. The wire (proto) and database shapes are mapped to and from these types at their boundaries.

use chrono::{DateTime, NaiveDate, Utc};
use medbill_domain::code_enum;
pub use medbill_domain::codes::UnknownCode;
use medbill_domain::{EraId, Money};

code_enum!(
    /// What happened to a received 835.
    EraStatus, "ERA status", {
        /// Stored; not (yet) parsed.
        Received => "RECEIVED",
        /// Parsed, balanced and posted.
        Posted => "POSTED",
        /// Parsed but does not balance: flagged, not posted.
        Unbalanced => "UNBALANCED",
        /// Does not parse as an 835; the raw bytes are kept for inspection.
        Rejected => "REJECTED",
    }
);

code_enum!(
    /// Which 835 balancing rule failed (DOMAIN.md "Balancing").
    BalanceLevel, "balance level", {
        /// SVC02 - sum(line CAS) = SVC03.
        Line => "LINE",
        /// CLP03 - sum(claim CAS + line CAS) = CLP04.
        Claim => "CLAIM",
        /// BPR02 = sum(CLP04) - sum(PLB).
        Transaction => "TRANSACTION",
    }
);

/// One failed balancing check of an ERA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceProblem {
    /// Which rule failed.
    pub level: BalanceLevel,
    /// CLP01 of the claim concerned; empty at the transaction level.
    pub claim_ref: String,
    /// REF*6R of the line for line problems when the payer sent it; empty otherwise.
    pub line_control_number: String,
    /// 1-based SVC position within the claim for line problems.
    pub line_number: Option<u32>,
    /// The amount the file states (SVC03, CLP04, BPR02).
    pub expected: Money,
    /// The amount computed from the other elements (e.g. CLP03 minus all adjustments).
    pub actual: Money,
    /// `expected - actual`.
    pub difference: Money,
    /// Human-readable explanation naming the elements involved.
    pub message: String,
}

/// One PLB provider-level adjustment (a reason/amount pair), not tied to a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderAdjustment {
    /// PLB01 provider identifier (NPI or TIN).
    pub provider_id: String,
    /// PLB02 fiscal period date, when readable.
    pub fiscal_period_date: Option<NaiveDate>,
    /// PLB03-1 reason code (WO, L6, FB, 72, CS, J1...).
    pub reason: String,
    /// PLB03-2 reference; empty when not sent.
    pub reference: String,
    /// PLB04: positive reduces the payment, negative increases it.
    pub amount: Money,
    /// When it was booked as a provider-level entry (with its ERA's posting); `None` until then.
    pub booked_at: Option<DateTime<Utc>>,
}

/// The payment summary of a parsed 835 (BPR, TRN, N1 loops, claim count).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EraSummary {
    /// BPR01 transaction handling code (C, I, H, D, P...).
    pub handling_code: Option<String>,
    /// N1*PR 02.
    pub payer_name: Option<String>,
    /// The payer's identity as [`crate::ingest::payer_identity`] defines it.
    pub payer_id: Option<String>,
    /// Which element `payer_id` came from: `N104:<N103>`, `REF*2U` or `TRN03`; `None` when there
    /// is no payer id or the ERA was stored before payer identity was defined.
    pub payer_id_source: Option<String>,
    /// N1*PE 02.
    pub payee_name: Option<String>,
    /// N1*PE 04 when qualified XX.
    pub payee_npi: Option<String>,
    /// BPR02 total actual provider payment of the set.
    pub payment_amount: Option<Money>,
    /// BPR03: "C" credit or "D" debit.
    pub credit_debit: Option<String>,
    /// BPR04: ACH, CHK, NON, BOP, FWT.
    pub payment_method: Option<String>,
    /// BPR16.
    pub payment_date: Option<NaiveDate>,
    /// TRN02: check or EFT trace number.
    pub trace_number: Option<String>,
    /// Number of CLP loops of the set.
    pub claim_count: u32,
}

/// Identifies a received 835 file (kept once, raw); UUID v7.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EraFileId(uuid::Uuid);

impl EraFileId {
    /// Returns a new time-ordered id.
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7())
    }

    /// Parses the hyphenated form, naming what is wrong.
    pub fn parse(s: &str) -> Result<Self, String> {
        uuid::Uuid::parse_str(s)
            .map(Self)
            .map_err(|e| format!("{s:?} is not an ERA file id (a UUID): {e}"))
    }
}

impl Default for EraFileId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for EraFileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// A received 835 file as stored: the raw bytes stay in the store (see
/// [`crate::store::EraStore::era_content`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EraFile {
    /// UUID v7, assigned at receipt.
    pub id: EraFileId,
    /// When the file was received.
    pub received_at: DateTime<Utc>,
    /// Lowercase hex SHA-256 of the content.
    pub content_sha256: String,
    /// Size of the content in bytes.
    pub byte_size: u64,
    /// Original file name; empty when not given.
    pub file_name: String,
}

/// One ERA: one 835 transaction set (one BPR payment, one TRN trace) of a received file, or the
/// one ERA standing for a file rejected before its sets could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Era {
    /// UUID v7, assigned at receipt.
    pub id: EraId,
    /// The file the set was read from.
    pub file_id: EraFileId,
    /// 1-based position among the file's 835 sets; 0 for a whole rejected file.
    pub set_position: u32,
    /// ST02; empty for a whole rejected file.
    pub set_control_number: String,
    /// When the file was received.
    pub received_at: DateTime<Utc>,
    /// When the record last changed.
    pub updated_at: DateTime<Utc>,
    /// Lowercase hex SHA-256 of the file's content.
    pub content_sha256: String,
    /// Size of the file's content in bytes.
    pub byte_size: u64,
    /// What happened to the set.
    pub status: EraStatus,
    /// Why the set (or file) was rejected (segment and position); empty unless status is REJECTED.
    pub rejection_reason: String,
    /// Original file name; empty when not given.
    pub file_name: String,
    /// Parsed summary; all `None` / zero when not parsed.
    pub summary: EraSummary,
    /// Failed balancing checks, in file order.
    pub balance_problems: Vec<BalanceProblem>,
    /// PLB provider-level adjustments, in file order.
    pub provider_adjustments: Vec<ProviderAdjustment>,
    /// The last deposit reconciled with the ERA; empty until one names its trace number.
    pub deposit_id: String,
    /// The outcome of that deposit's group; `None` until a deposit names the trace number.
    pub reconciliation: Option<crate::deposits::ReconciliationStatus>,
}

/// An ERA to store: what reading one 835 set (or rejecting a whole file) found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEra {
    /// 1-based position among the file's 835 sets; 0 for a whole rejected file.
    pub set_position: u32,
    /// ST02; empty for a whole rejected file.
    pub set_control_number: String,
    /// Status after parsing.
    pub status: EraStatus,
    /// Why the set or file was rejected; empty unless REJECTED.
    pub rejection_reason: String,
    /// Parsed summary.
    pub summary: EraSummary,
    /// Failed balancing checks.
    pub balance_problems: Vec<BalanceProblem>,
    /// PLB provider-level adjustments.
    pub provider_adjustments: Vec<ProviderAdjustment>,
    /// The set's claim payments (CLP loops) in file order; empty for a rejected set.
    pub claim_payments: Vec<NewClaimPayment>,
}

/// Filters of an ERA listing; `None` means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EraFilter {
    /// Only ERAs in this status.
    pub status: Option<EraStatus>,
    /// Only ERAs from this payer.
    pub payer_id: Option<String>,
    /// Only ERAs with this TRN02.
    pub trace_number: Option<String>,
    /// Only ERAs received at or after this instant.
    pub received_from: Option<DateTime<Utc>>,
    /// Only ERAs received before this instant.
    pub received_to: Option<DateTime<Utc>>,
    /// Only the ERAs of this file.
    pub file_id: Option<EraFileId>,
    /// Only ERAs with this reconciliation outcome (UNMATCHED_ERA: moving money, no deposit).
    pub reconciliation: Option<crate::deposits::ReconciliationStatus>,
}

code_enum!(
    /// Posting state of one claim payment.
    PostingStatus, "posting status", {
        /// Stored, waiting to be matched and posted.
        Pending => "PENDING",
        /// Matched to its claim and posted (messages to claims and collections written).
        Posted => "POSTED",
        /// No claim confirmed the payment; on the unmatched worklist with the reason.
        Unmatched => "UNMATCHED",
        /// Not posted because its ERA does not balance (waits for an operator decision).
        Held => "HELD",
    }
);

code_enum!(
    /// How a service line payment found its claim line.
    LineMatch, "line match", {
        /// Not matched yet (its claim payment is not posted).
        Pending => "PENDING",
        /// By REF*6R, our line item control number.
        ControlNumber => "CONTROL_NUMBER",
        /// By procedure, modifiers, date and charge.
        Procedure => "PROCEDURE",
        /// No claim line matched: posted at claim level and flagged.
        Unmatched => "UNMATCHED",
    }
);

/// Identifies one claim payment (CLP loop) of an ERA; UUID v7.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClaimPaymentId(uuid::Uuid);

impl ClaimPaymentId {
    /// Returns a new time-ordered id.
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7())
    }

    /// Parses the hyphenated form, naming what is wrong.
    pub fn parse(s: &str) -> Result<Self, String> {
        uuid::Uuid::parse_str(s)
            .map(Self)
            .map_err(|e| format!("{s:?} is not a claim payment id (a UUID): {e}"))
    }
}

impl Default for ClaimPaymentId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for ClaimPaymentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// One CAS triplet with its group (CO, PR, OA, PI, CR), as the 835 said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjustment {
    /// CAS01 group code.
    pub group: String,
    /// CARC.
    pub reason: String,
    /// Amount; positive reduces the payment.
    pub amount: Money,
    /// Units, when sent.
    pub quantity: Option<rust_decimal::Decimal>,
}

/// A procedure composite (SVC01 / SVC06).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcedureCode {
    /// Qualifier (HC, AD, NU...).
    pub qualifier: String,
    /// The code.
    pub code: String,
    /// Modifiers in order.
    pub modifiers: Vec<String>,
}

/// One service line payment (SVC loop) as the 835 said, with how it matched a claim line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinePayment {
    /// 1-based SVC position within the claim payment.
    pub line_number: u32,
    /// SVC01 as adjudicated.
    pub procedure: ProcedureCode,
    /// SVC06 as billed, when the payer restated the code.
    pub submitted_procedure: Option<ProcedureCode>,
    /// SVC02.
    pub charge: Money,
    /// SVC03.
    pub paid: Money,
    /// SVC04; empty when not sent.
    pub revenue_code: String,
    /// SVC05; `None` when not sent.
    pub units: Option<rust_decimal::Decimal>,
    /// DTM*472 (or 150).
    pub service_date: Option<NaiveDate>,
    /// REF*6R; empty when not sent.
    pub line_control_number: String,
    /// AMT*B6.
    pub allowed: Option<Money>,
    /// Line CAS.
    pub adjustments: Vec<Adjustment>,
    /// LQ*HE codes.
    pub remarks: Vec<String>,
    /// How the line matched.
    pub matched_by: LineMatch,
    /// The claim line it matched (1-based), when matched.
    pub claim_line_number: Option<u32>,
    /// The claim line's control number, when matched.
    pub claim_line_control_number: String,
}

/// One claim payment (CLP loop) to store, as the 835 said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewClaimPayment {
    /// CLP01.
    pub patient_control_number: String,
    /// CLP02.
    pub status_code: String,
    /// CLP03.
    pub charge: Money,
    /// CLP04 (negative in a reversal).
    pub paid: Money,
    /// CLP05.
    pub patient_responsibility: Option<Money>,
    /// CLP06.
    pub filing_indicator: String,
    /// CLP07.
    pub payer_claim_control_number: String,
    /// CLP08.
    pub facility_type_code: String,
    /// CLP09.
    pub frequency_code: String,
    /// DTM*232.
    pub statement_from: Option<NaiveDate>,
    /// DTM*233.
    pub statement_to: Option<NaiveDate>,
    /// Claim CAS.
    pub adjustments: Vec<Adjustment>,
    /// MIA/MOA remark codes.
    pub remarks: Vec<String>,
    /// SVC loops.
    pub lines: Vec<LinePayment>,
}

impl NewClaimPayment {
    /// Returns true for a reversal (CLP02 22).
    pub fn is_reversal(&self) -> bool {
        self.status_code == "22"
    }
}

/// A stored claim payment: what the 835 said plus where posting took it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPayment {
    /// Its id.
    pub id: ClaimPaymentId,
    /// The ERA it belongs to.
    pub era_id: EraId,
    /// 1-based CLP position within the ERA.
    pub position: u32,
    /// The ERA's payer identity.
    pub payer_id: String,
    /// The ERA's BPR16.
    pub payment_date: Option<NaiveDate>,
    /// What the 835 said.
    pub payment: NewClaimPayment,
    /// Posting state.
    pub status: PostingStatus,
    /// Matched claim id; empty when unmatched.
    pub claim_id: String,
    /// Why the payment is unmatched (or how it was matched by hand); empty otherwise.
    pub match_note: String,
    /// For a reversal: the claim payment it reverses, when found.
    pub reverses: Option<ClaimPaymentId>,
    /// When posted.
    pub posted_at: Option<DateTime<Utc>>,
}

/// Filters of a claim payment listing; `None` means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimPaymentFilter {
    /// Only this ERA's.
    pub era_id: Option<EraId>,
    /// Only those matched to this claim.
    pub claim_id: Option<String>,
    /// Only this CLP01.
    pub patient_control_number: Option<String>,
    /// Only this payer's.
    pub payer_id: Option<String>,
    /// Only those whose ERA payment date (BPR16) is on or after this date.
    pub paid_from: Option<NaiveDate>,
    /// Only those whose ERA payment date is on or before this date.
    pub paid_to: Option<NaiveDate>,
    /// Only this posting state.
    pub status: Option<PostingStatus>,
}

/// Returns the lowercase hex SHA-256 of `content`.
pub fn sha256_hex(content: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(content);
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
        out.push(char::from_digit(u32::from(byte & 0x0f), 16).unwrap_or('0'));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_input() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn codes_round_trip() {
        for s in EraStatus::ALL {
            assert_eq!(s.as_str().parse::<EraStatus>().unwrap(), *s);
        }
        for l in BalanceLevel::ALL {
            assert_eq!(l.as_str().parse::<BalanceLevel>().unwrap(), *l);
        }
        assert!("DONE".parse::<EraStatus>().is_err());
    }
}
