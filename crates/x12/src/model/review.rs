//! Health care services review (prior authorization) models: the X12 278 request we write, the
//! 278 response the payer answers with, and the inquiry that asks again about a pended review
//! (005010X217; the inquiry carries 005010X215 in GS08/ST03). One model serves all three, so a
//! write-then-read round trip compares equal.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::claim::Procedure;
use super::eligibility::Trace;
use super::{DateRange, PartyName, PersonName, TransactionHeader};

/// Which 278 a set is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewKind {
    /// A request for review (BHT02 = 13, 005010X217).
    Request,
    /// An inquiry about an earlier request (BHT02 = 13, 005010X215), naming the payer's
    /// reference (REF*NT) of the pended review.
    Inquiry,
    /// The payer's response (BHT02 = 11).
    Response,
}

/// A 278 for one subscriber and one patient event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicesReview {
    /// Request, inquiry or response.
    pub kind: ReviewKind,
    /// BHT03/04/05.
    pub header: TransactionHeader,
    /// 2010A NM1*X3 NM103: the utilization management organisation (the payer).
    pub payer_name: String,
    /// 2010A NM109 with qualifier PI.
    pub payer_id: String,
    /// 2010B NM1*1P: the requesting provider.
    pub requester_name: PartyName,
    /// 2010B NM109 with qualifier XX.
    pub requester_npi: String,
    /// 2010C NM1*IL. PHI.
    pub subscriber_name: PersonName,
    /// 2010C NM109 with qualifier MI. PHI.
    pub member_id: String,
    /// 2010C DMG02. PHI.
    pub subscriber_birth_date: Option<NaiveDate>,
    /// AAA segments at every level, in file order.
    pub rejections: Vec<ReviewRejection>,
    /// 2000E: the patient event; `None` in a response rejected above it.
    pub event: Option<ReviewEvent>,
}

impl ServicesReview {
    /// Returns our trace number as the payer echoed it (2000E TRN*2), or as we sent it (TRN*1).
    pub fn trace_number(&self) -> Option<&str> {
        let traces = &self.event.as_ref()?.traces;
        let wanted = if self.kind == ReviewKind::Response {
            "2"
        } else {
            "1"
        };
        traces
            .iter()
            .find(|t| t.kind == wanted)
            .map(|t| t.number.as_str())
    }
}

/// The loop an AAA rejection appeared in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewLevel {
    /// 2000A/2010A: the payer.
    Payer,
    /// 2010B: the requesting provider.
    Requester,
    /// 2010C: the subscriber.
    Subscriber,
    /// 2000E/2010E: the patient event.
    Event,
    /// 2000F: one service.
    Service,
}

/// An AAA segment of a 278 response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewRejection {
    /// Loop the AAA appeared in.
    pub level: ReviewLevel,
    /// Index of the service (2000F, in file order) for [`ReviewLevel::Service`].
    pub service: Option<usize>,
    /// AAA01: Y the request was valid but could not be processed, N it was invalid.
    pub valid_request: bool,
    /// AAA03 reject reason (15 required application data missing, 33 input errors, 42 unable
    /// to respond now, 72 invalid member id, 75 subscriber not found, 51 provider not on file...).
    pub reason: String,
    /// AAA04 follow-up action (C correct and resubmit, N no resubmission, R resubmit...).
    pub follow_up: Option<String>,
    /// AAA03 meaning from the code lists (`None` for an unknown code); not written.
    #[serde(default)]
    pub description: Option<String>,
}

/// An HCR decision with the certification dates that go with it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewDecision {
    /// HCR01 action code: A1 certified in total, A2 certified partially, A3 not certified, A4
    /// pended, A6 modified, C cancelled, CT contact payer, NA no action required.
    pub action: String,
    /// HCR02: the certification (authorization) number; required with A1, A2 and A6.
    pub authorization_number: Option<String>,
    /// HCR03: the decision reason code.
    pub reason: Option<String>,
    /// DTP*007 (certification effective date) and DTP*036 (expiration date).
    pub certified: Option<DateRange>,
}

/// A provider in loop 2010E (the patient event's servicing provider or facility).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewProvider {
    /// NM101: SJ service provider, FA facility, 71 attending, 72 operating...
    pub entity: String,
    /// NM102..NM107.
    pub name: PartyName,
    /// NM109 with qualifier XX.
    pub npi: String,
}

/// Loop 2000E: the patient event under review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewEvent {
    /// TRN segments: TRN*1 our trace in a request; in a response TRN*2 echoes it.
    pub traces: Vec<Trace>,
    /// UM01 request category: HS health services review, AR admission review, SC specialty
    /// care review.
    pub request_category: String,
    /// UM02 certification type: I initial, R renewal, S revision, 4 extension, 3 cancel.
    pub certification_type: String,
    /// UM03 service type code (2 surgical, 73 diagnostic medical...).
    pub service_type: String,
    /// UM04-1 place of service (UM04-2 is B, place of service codes).
    pub place_of_service: Option<String>,
    /// UM06 level of service: E elective, U urgent, 03 emergency.
    pub level_of_service: Option<String>,
    /// HCR and its dates, in a response.
    pub decision: Option<ReviewDecision>,
    /// REF*NT: the payer's administrative reference of the review (answered with a pended
    /// decision, quoted by an inquiry).
    pub reference: Option<String>,
    /// DTP*AAH: the event dates requested.
    pub event_dates: Option<DateRange>,
    /// HI: ICD-10-CM codes without the dot, principal (ABK) first, then others (ABF).
    pub diagnoses: Vec<String>,
    /// MSG01: free text for the reviewer.
    pub notes: Option<String>,
    /// 2010EA: the servicing provider or facility.
    pub provider: Option<ReviewProvider>,
    /// 2000F: the services asked about.
    pub services: Vec<ReviewService>,
}

/// Loop 2000F: one service asked about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewService {
    /// TRN segments of the service level.
    pub traces: Vec<Trace>,
    /// UM01 of the service level (HS).
    pub request_category: String,
    /// UM02 of the service level.
    pub certification_type: String,
    /// HCR and its dates, in a response.
    pub decision: Option<ReviewDecision>,
    /// DTP*472: service dates requested.
    pub dates: Option<DateRange>,
    /// SV201 when the service is institutional (written as SV2), `None` for SV1.
    pub revenue_code: Option<String>,
    /// SV101 / SV202 procedure composite.
    pub procedure: Procedure,
    /// SV104 / SV205 units (SV103 / SV204 = UN).
    pub units: Decimal,
    /// HSD*FL HSD02: units certified (in a response).
    pub certified_units: Option<Decimal>,
}
