//! Eligibility models: the 270 inquiry we write and the 271 response we read (005010X279A1).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{Address, DateRange, PartyName, PersonName, TransactionHeader};

/// A trace number (TRN): TRN02 the number, TRN03 the originating company id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    /// TRN01: 1 current transaction trace (ours), 2 referenced (echoed by the payer).
    pub kind: String,
    /// TRN02.
    pub number: String,
    /// TRN03: 10 characters, "1" followed by the originator's EIN by convention.
    pub originator: Option<String>,
}

/// A 270 eligibility inquiry for one subscriber (and optionally one dependent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EligibilityInquiry {
    /// BHT03/04/05.
    pub header: TransactionHeader,
    /// HL 20 / 2100A NM1*PR: the payer asked.
    pub payer_name: String,
    /// 2100A NM109 with qualifier PI.
    pub payer_id: String,
    /// HL 21 / 2100B NM1*1P: the provider asking.
    pub provider_name: PartyName,
    /// 2100B NM109 with qualifier XX.
    pub provider_npi: String,
    /// 2000C TRN*1: our trace number, echoed by the 271 as TRN*2.
    pub trace: Trace,
    /// 2100C NM1*IL.
    pub subscriber_name: PersonName,
    /// 2100C NM109 with qualifier MI.
    pub member_id: String,
    /// 2100C DMG02.
    pub subscriber_birth_date: Option<NaiveDate>,
    /// 2100C DMG03.
    pub subscriber_gender: Option<String>,
    /// HL 23 when the patient is a dependent without their own member id.
    pub dependent: Option<Dependent>,
    /// DTP*291: plan date (date of service asked about).
    pub service_date: Option<DateRange>,
    /// EQ01 service type codes (30 health benefit plan coverage, 98, 47...): repetition-separated.
    pub service_types: Vec<String>,
}

/// A dependent in a 270 (loop 2100D).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependent {
    /// NM1*03 name.
    pub name: PersonName,
    /// DMG02.
    pub birth_date: NaiveDate,
    /// DMG03.
    pub gender: Option<String>,
}

/// Where in a 271 an AAA rejection was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionLevel {
    /// 2000A/2100A: the information source (payer).
    Source,
    /// 2100B: the information receiver (provider).
    Receiver,
    /// 2100C: the subscriber.
    Subscriber,
    /// 2100D: the dependent.
    Dependent,
    /// 2110C/2110D: a benefit inquiry (EQ).
    Benefit,
}

/// An AAA rejection in a 271.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// Loop the AAA appeared in.
    pub level: RejectionLevel,
    /// AAA01: Y the request was valid but could not be processed, N the request was invalid.
    pub valid_request: bool,
    /// AAA03: reject reason (42 unable to respond now, 72 invalid member id, 75 subscriber not found...).
    pub reason: String,
    /// AAA04: follow-up action (C correct and resubmit, N resubmission not allowed, R resubmit, ...).
    pub follow_up: Option<String>,
    /// AAA03 meaning from the code lists (`None` for an unknown code).
    #[serde(default)]
    pub description: Option<String>,
}

/// A person (subscriber or dependent) in a 271.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EligibilityPerson {
    /// NM103..NM107.
    pub name: PersonName,
    /// NM109 with qualifier MI.
    pub member_id: Option<String>,
    /// N3/N4.
    pub address: Option<Address>,
    /// DMG02.
    pub birth_date: Option<NaiveDate>,
    /// DMG03.
    pub gender: Option<String>,
    /// TRN segments (TRN*2 echoes our 270 trace).
    pub traces: Vec<Trace>,
    /// REF segments as (qualifier, value): 18 plan number, 6P group number...
    pub references: Vec<(String, String)>,
    /// DTP segments as (qualifier, dates): 346 plan begin, 356 eligibility begin, 307 eligibility...
    pub dates: Vec<(String, DateRange)>,
}

/// An EB benefit in a 271 (loop 2110C/2110D).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Benefit {
    /// EB01: 1 active coverage, 6 inactive, A coinsurance, B copay, C deductible, G out of pocket, F limitations...
    pub info: String,
    /// EB01 meaning from the code lists (`None` for an unknown code).
    #[serde(default)]
    pub info_description: Option<String>,
    /// EB02: IND, FAM, EMP, ESP, CHD...
    pub coverage_level: Option<String>,
    /// EB03: service type codes (repetition-separated in the file).
    pub service_types: Vec<String>,
    /// EB04: insurance type (HM HMO, PR PPO, MB Medicare B...).
    pub insurance_type: Option<String>,
    /// EB05: plan coverage description.
    pub plan_description: Option<String>,
    /// EB06: time period (23 calendar year, 29 remaining, 27 visit...).
    pub time_period: Option<String>,
    /// EB07: monetary amount.
    pub amount: Option<Decimal>,
    /// EB08: percent as a decimal (0.2 = 20%).
    pub percent: Option<Decimal>,
    /// EB09: quantity qualifier.
    pub quantity_qualifier: Option<String>,
    /// EB10: quantity.
    pub quantity: Option<Decimal>,
    /// EB11: authorization or certification required (Y, N, U).
    pub authorization_required: Option<String>,
    /// EB12: Y in network, N out of network; `None` when absent or W (not applicable).
    pub in_network: Option<bool>,
    /// EB13: procedure the benefit applies to.
    pub procedure: Option<String>,
    /// DTP segments in the benefit loop (qualifier, dates).
    pub dates: Vec<(String, DateRange)>,
    /// MSG01 free-form messages.
    pub messages: Vec<String>,
    /// NM1 entities inside LS/LE (2120C): (entity code, name, id).
    pub related_entities: Vec<(String, String, Option<String>)>,
}

/// A 271 eligibility response (one subscriber, optionally one dependent).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EligibilityResponse {
    /// BHT03.
    pub reference: Option<String>,
    /// 2100A payer name.
    pub payer_name: Option<String>,
    /// 2100A payer id (NM109).
    pub payer_id: Option<String>,
    /// 2100B provider name (NM103).
    pub provider_name: Option<String>,
    /// 2100B provider id (NM109).
    pub provider_id: Option<String>,
    /// 2100C.
    pub subscriber: Option<EligibilityPerson>,
    /// 2100D.
    pub dependent: Option<EligibilityPerson>,
    /// EB loops of the subscriber or, when present, the dependent, in file order.
    pub benefits: Vec<Benefit>,
    /// AAA segments at every level.
    pub rejections: Vec<Rejection>,
}

/// The in-network, individual-coverage figures the front desk needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EligibilitySummary {
    /// `Some(true)` when an EB01 1-5 is present, `Some(false)` when only 6-8 are, `None` otherwise.
    pub active: Option<bool>,
    /// The plan description of the active coverage (EB05).
    pub plan: Option<String>,
    /// EB01 C with EB06 29 (remaining).
    pub deductible_remaining: Option<Decimal>,
    /// EB01 G with EB06 29 (remaining).
    pub oop_remaining: Option<Decimal>,
    /// EB01 A, EB08 as a decimal.
    pub coinsurance: Option<Decimal>,
    /// EB01 B amounts by service type code.
    pub copays: BTreeMap<String, Decimal>,
}

/// A 271 response with its summary: what `medbill x12 inspect` prints for a 271.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EligibilityReport {
    /// The response as read.
    #[serde(flatten)]
    pub response: EligibilityResponse,
    /// In-network individual coverage summary.
    pub summary: EligibilitySummary,
    /// Further subscribers when the set holds more than one (each with its own summary).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub more_subscribers: Vec<EligibilityReport>,
}
