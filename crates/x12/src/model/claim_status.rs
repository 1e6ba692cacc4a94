//! Claim status models: the 276 inquiry we write (005010X212) and the 277 / 277CA we read
//! (005010X212 / 005010X214).

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{DateRange, PartyName, PersonName, TransactionHeader};
use crate::model::claim::Procedure;

/// A 276 claim status inquiry: one payer, provider and subscriber, one or more claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimStatusInquiry {
    /// BHT03/04/05.
    pub header: TransactionHeader,
    /// 2100A NM1*PR name.
    pub payer_name: String,
    /// 2100A NM109 with qualifier PI.
    pub payer_id: String,
    /// 2100B NM1*41: the information receiver (us or our clearinghouse account).
    pub receiver_name: PartyName,
    /// 2100B NM109 with qualifier 46 (ETIN).
    pub receiver_id: String,
    /// 2100C NM1*1P: the service provider.
    pub provider_name: PartyName,
    /// 2100C NM109 with qualifier XX.
    pub provider_npi: String,
    /// 2100D NM1*IL.
    pub subscriber_name: PersonName,
    /// 2100D NM109 with qualifier MI.
    pub member_id: String,
    /// 2000D DMG02 (required when the subscriber is the patient).
    pub subscriber_birth_date: Option<NaiveDate>,
    /// 2000D DMG03.
    pub subscriber_gender: Option<String>,
    /// HL 23 when the patient is a dependent.
    pub dependent: Option<StatusDependent>,
    /// Claims asked about (2200D or 2200E).
    pub claims: Vec<StatusClaimQuery>,
}

/// A dependent patient in a 276 (2000E/2100E).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusDependent {
    /// NM1*QC.
    pub name: PersonName,
    /// DMG02.
    pub birth_date: NaiveDate,
    /// DMG03.
    pub gender: Option<String>,
}

/// One claim in a 276.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusClaimQuery {
    /// TRN*1 trace number, echoed by the 277 as TRN*2.
    pub trace_number: String,
    /// REF*1K: the payer's claim control number.
    pub payer_claim_number: Option<String>,
    /// REF*BLT: institutional type of bill.
    pub bill_type: Option<String>,
    /// REF*EJ: our patient control number (CLM01).
    pub patient_control_number: Option<String>,
    /// AMT*T3: total claim charge.
    pub total_charge: Option<Decimal>,
    /// DTP*472: service dates.
    pub service_date: Option<DateRange>,
}

/// A status code triple (STC01, STC10 or STC11): category, status and entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCode {
    /// Health care claim status category code (A1, A2, A3, A7, F0, P3...).
    pub category: String,
    /// Category meaning from the code lists (`None` for an unknown code).
    #[serde(default)]
    pub category_description: Option<String>,
    /// Health care claim status code.
    pub status: String,
    /// Entity identifier code the status refers to (85 billing provider, QC patient...).
    pub entity: Option<String>,
}

impl StatusCode {
    /// Tells whether the category means the claim was accepted into adjudication (A1, A2, A5).
    pub fn is_accepted(&self) -> bool {
        matches!(self.category.as_str(), "A1" | "A2" | "A5")
    }

    /// Tells whether the category is a rejection (A3, A4 not found, A6, A7, A8).
    pub fn is_rejected(&self) -> bool {
        matches!(self.category.as_str(), "A3" | "A4" | "A6" | "A7" | "A8")
    }
}

/// One STC segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusInfo {
    /// STC01, then STC10 and STC11 when present.
    pub codes: Vec<StatusCode>,
    /// STC02: status information effective date.
    pub effective_date: Option<NaiveDate>,
    /// STC03: action code (WQ accept, U reject in 277CA).
    pub action: Option<String>,
    /// STC04: total charge.
    pub charge: Option<Decimal>,
    /// STC05: payment amount.
    pub paid: Option<Decimal>,
    /// STC12: free-form message.
    pub message: Option<String>,
}

/// Where a claim status came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusKind {
    /// 277 response to a 276 (005010X212).
    StatusResponse,
    /// 277CA claim acknowledgment (005010X214).
    ClaimAcknowledgment,
}

/// A service line status (2220D/2220E: SVC, STC, REF*FJ, DTP*472).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineStatus {
    /// SVC01.
    pub procedure: Procedure,
    /// SVC02.
    pub charge: Option<Decimal>,
    /// SVC03.
    pub paid: Option<Decimal>,
    /// SVC04: revenue code.
    pub revenue_code: Option<String>,
    /// SVC07: units.
    pub units: Option<Decimal>,
    /// STC segments.
    pub statuses: Vec<StatusInfo>,
    /// REF*FJ: line item control number.
    pub line_control_number: Option<String>,
    /// DTP*472.
    pub service_date: Option<DateRange>,
}

/// The status of one claim (2200D or 2200E of a 277 / 277CA).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimStatus {
    /// TRN02 at claim level: the 276 trace echoed (277) or CLM01 (277CA).
    pub trace_number: Option<String>,
    /// CLM01: REF*EJ when present, else (277CA only) the claim-level TRN02.
    pub patient_control_number: Option<String>,
    /// REF*1K: payer claim control number.
    pub payer_claim_number: Option<String>,
    /// REF*BLT: type of bill.
    pub bill_type: Option<String>,
    /// NM109 of the provider (HL 19) the claim sits under.
    pub provider_id: Option<String>,
    /// NM109 of the subscriber (NM1*IL) or patient (NM1*QC).
    pub member_id: Option<String>,
    /// STC segments at claim level.
    pub statuses: Vec<StatusInfo>,
    /// DTP*472 (or 232/233 claim dates).
    pub service_date: Option<DateRange>,
    /// Service lines.
    pub lines: Vec<LineStatus>,
}

/// A 277 or 277CA transaction set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimStatusResponse {
    /// Which guide the set follows.
    pub kind: StatusKind,
    /// BHT03.
    pub reference: Option<String>,
    /// 2100A payer (NM1*PR) name.
    pub payer_name: Option<String>,
    /// 2100A payer id.
    pub payer_id: Option<String>,
    /// TRN02 and STC at the information receiver level (277CA batch totals).
    pub receiver_trace: Option<String>,
    /// STC at the receiver or provider levels (not tied to a claim).
    pub batch_statuses: Vec<StatusInfo>,
    /// Claims, in file order.
    pub claims: Vec<ClaimStatus>,
}

/// A 277CA claim acknowledgment to write (005010X214): the answer a payer or clearinghouse sends
/// for each accepted 837 transaction set, one STC per claim.
///
/// The receiver-level counts and amounts (2200B QTY*90 / QTY*AA, AMT*YU / AMT*YY) are computed
/// by the writer from the claims' categories and STC04 charges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimAcknowledgment {
    /// BHT03 (the acknowledgment's own reference), BHT04/05.
    pub header: TransactionHeader,
    /// 2100A NM1*PR name.
    pub payer_name: String,
    /// 2100A NM109 with qualifier PI.
    pub payer_id: String,
    /// 2200A TRN*1: the information source's trace of this acknowledgment.
    pub source_trace: String,
    /// 2200A DTP*050: when the 837 was received.
    pub received: NaiveDate,
    /// 2200A DTP*009: when it was processed.
    pub processed: NaiveDate,
    /// 2100B NM1*41: the submitter the acknowledgment goes to.
    pub receiver_name: PartyName,
    /// 2100B NM109 with qualifier 46 (the submitter's ETIN).
    pub receiver_id: String,
    /// 2200B TRN*2: the reference of the 837 acknowledged (its BHT03).
    pub receiver_trace: String,
    /// 2200B STC: the status of the batch as a whole (typically A1:19 or A1:20, action WQ).
    pub receiver_status: StatusInfo,
    /// Billing providers (HL 19) with their claims (HL PT), in file order.
    pub providers: Vec<AcknowledgedProvider>,
}

/// A billing provider in a 277CA (2000C/2100C) and its claims. Its 2200C STC repeats the
/// receiver-level status with the provider's total charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcknowledgedProvider {
    /// NM1*85 name.
    pub name: PartyName,
    /// NM109 with qualifier XX.
    pub npi: String,
    /// 2200C TRN*1: the information source's trace for this provider (required by the guide).
    pub trace: String,
    /// The claims, each under its own patient level (HL PT).
    pub claims: Vec<AcknowledgedClaim>,
}

/// One claim in a 277CA (2000D/2100D/2200D, lines in 2220D).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcknowledgedClaim {
    /// 2100D NM1*QC name.
    pub patient_name: PersonName,
    /// 2100D NM109 with qualifier MI: the subscriber's member id.
    pub member_id: String,
    /// 2200D TRN*2: the claim's CLM01.
    pub patient_control_number: String,
    /// 2200D STC: category/status/entity, date, action (WQ or U) and STC04 total charge
    /// (required); STC12 free text may say why.
    pub status: StatusInfo,
    /// 2200D REF*1K: the payer claim control number (accepted claims).
    pub payer_claim_number: Option<String>,
    /// 2200D REF*BLT: institutional type of bill.
    pub bill_type: Option<String>,
    /// 2200D DTP*472: the claim's service dates.
    pub service_date: DateRange,
    /// 2220D: lines with a status of their own (rejected lines).
    pub lines: Vec<LineStatus>,
}

/// A 277 claim status response to write (005010X212): the answer to one 276 inquiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimStatusAnswer {
    /// BHT03/04/05.
    pub header: TransactionHeader,
    /// 2100A NM1*PR name.
    pub payer_name: String,
    /// 2100A NM109 with qualifier PI.
    pub payer_id: String,
    /// 2100B NM1*41: the information receiver of the 276.
    pub receiver_name: PartyName,
    /// 2100B NM109 with qualifier 46.
    pub receiver_id: String,
    /// 2100C NM1*1P: the service provider of the 276.
    pub provider_name: PartyName,
    /// 2100C NM109 with qualifier XX.
    pub provider_npi: String,
    /// 2100D NM1*IL.
    pub subscriber_name: PersonName,
    /// 2100D NM109 with qualifier MI.
    pub member_id: String,
    /// 2100E NM1*QC when the patient is a dependent (HL 23).
    pub dependent: Option<PersonName>,
    /// The claims answered (2200D, or 2200E under a dependent).
    pub claims: Vec<AnsweredClaim>,
}

/// One claim answered in a 277 (2200D/E, lines in 2220D/E).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnsweredClaim {
    /// TRN*2: the 276's TRN*1 trace number, echoed.
    pub trace_number: String,
    /// STC segments, at least one; the first carries STC04 total charge (required).
    pub statuses: Vec<StatusInfo>,
    /// REF*1K.
    pub payer_claim_number: Option<String>,
    /// REF*BLT.
    pub bill_type: Option<String>,
    /// REF*EJ: the provider's patient control number (CLM01).
    pub patient_control_number: Option<String>,
    /// DTP*472.
    pub service_date: Option<DateRange>,
    /// 2220D/E service lines.
    pub lines: Vec<LineStatus>,
}
