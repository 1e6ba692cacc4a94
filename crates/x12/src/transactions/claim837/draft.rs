//! A claim as read, before it is shaped into the professional or institutional model.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::error::ErrorKind;
use crate::model::DateRange;
use crate::model::claim::{
    Accident, AmbulanceLocation, AmbulanceTransport, Attachment, BillingProvider, ClaimCommon,
    ClaimFrequency, ClaimProvider, IcdProcedure, InstitutionalClaim, InstitutionalLine, Note,
    Occurrence, OccurrenceSpan, Patient, Payer, ProfessionalClaim, ProfessionalLine,
    ServiceFacility, Subscriber,
};
use crate::segment::Segment;
use crate::transactions::read::{Problems, components, text};

use super::segments::read_related_causes;

#[derive(Debug, Clone, Default)]
pub(super) struct Parties {
    pub(super) billing: Option<BillingProvider>,
    pub(super) subscriber: Option<Subscriber>,
    pub(super) patient: Option<Patient>,
    pub(super) payer: Option<Payer>,
}

/// A claim as read, before it is shaped into the professional or institutional model.
pub(super) struct Draft<'a> {
    pub(super) clm: Segment<'a>,
    pub(super) parties: Parties,
    pub(super) common: ClaimCommon,
    pub(super) facility_code: String,
    pub(super) signature: bool,
    pub(super) rendering: Option<ClaimProvider>,
    pub(super) referring: Option<ClaimProvider>,
    pub(super) facility: Option<ServiceFacility>,
    pub(super) patient_paid: Option<Decimal>,
    pub(super) attending: Option<ClaimProvider>,
    pub(super) statement_period: Option<DateRange>,
    /// HI-09 of each diagnosis, by diagnosis position (principal first).
    pub(super) poa: Vec<String>,
    pub(super) principal_poa: String,
    pub(super) procedures: Vec<IcdProcedure>,
    pub(super) admitting: Option<String>,
    pub(super) reasons: Vec<String>,
    pub(super) admission_date: Option<NaiveDate>,
    pub(super) cl1: Option<(Option<String>, Option<String>, String)>,
    pub(super) condition_codes: Vec<String>,
    pub(super) value_codes: Vec<(String, Decimal)>,
    pub(super) occurrences: Vec<Occurrence>,
    pub(super) occurrence_spans: Vec<OccurrenceSpan>,
    pub(super) drg: Option<String>,
    pub(super) operating: Option<ClaimProvider>,
    pub(super) other_operating: Option<ClaimProvider>,
    /// CLM11, with DTP*439 added when it comes.
    pub(super) accident: Option<Accident>,
    pub(super) attachments: Vec<Attachment>,
    pub(super) note: Option<Note>,
    pub(super) transport: Option<AmbulanceTransport>,
    pub(super) pickup: Option<AmbulanceLocation>,
    pub(super) dropoff: Option<AmbulanceLocation>,
    pub(super) plines: Vec<ProfessionalLine>,
    pub(super) ilines: Vec<InstitutionalLine>,
    /// Lines whose required values were unreadable: the claim is dropped.
    pub(super) broken: bool,
    /// Professional lines without a DTP*472 yet.
    pub(super) undated_lines: usize,
}

pub(super) enum LineDraft {
    None,
    Professional(usize),
    Institutional(usize),
}

pub(super) fn start_claim<'a>(seg: &Segment<'a>, parties: &Parties, p: &mut Problems) -> Draft<'a> {
    let total = p.req_decimal(seg, 2, "CLM02");
    let clm05 = components(seg, 5);
    let freq_code = clm05.get(2).cloned().unwrap_or_default();
    let frequency = ClaimFrequency::from_code(&freq_code).unwrap_or_else(|| {
        p.push(
            seg,
            5,
            ErrorKind::InvalidCode {
                element: "CLM05-3",
                value: freq_code.clone(),
                expected: "1, 7 or 8",
            },
        );
        ClaimFrequency::Original
    });
    Draft {
        clm: *seg,
        parties: parties.clone(),
        common: ClaimCommon {
            patient_control_number: text(seg, 1),
            total_charge: total.unwrap_or_default(),
            frequency,
            payer_claim_number: None,
            assignment: text(seg, 7),
            benefits_assigned: text(seg, 8),
            release_of_information: text(seg, 9),
            prior_authorization: None,
            medical_record_number: None,
            diagnoses: Vec::new(),
            other_payers: Vec::new(),
        },
        facility_code: clm05.first().cloned().unwrap_or_default(),
        signature: seg.text(6) == "Y",
        rendering: None,
        referring: None,
        facility: None,
        patient_paid: None,
        attending: None,
        statement_period: None,
        poa: Vec::new(),
        principal_poa: String::new(),
        procedures: Vec::new(),
        admitting: None,
        reasons: Vec::new(),
        admission_date: None,
        cl1: None,
        condition_codes: Vec::new(),
        value_codes: Vec::new(),
        occurrences: Vec::new(),
        occurrence_spans: Vec::new(),
        drg: None,
        operating: None,
        other_operating: None,
        accident: read_related_causes(seg, p),
        attachments: Vec::new(),
        note: None,
        transport: None,
        pickup: None,
        dropoff: None,
        plines: Vec::new(),
        ilines: Vec::new(),
        broken: total.is_none(),
        undated_lines: 0,
    }
}

pub(super) fn read_hi(seg: &Segment<'_>, d: &mut Draft<'_>, p: &mut Problems) {
    for (n, el) in seg.elements().enumerate() {
        let parts: Vec<String> = el
            .components()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        let (Some(q), Some(code)) = (parts.first(), parts.get(1)) else {
            continue;
        };
        let poa = parts.get(8).cloned().unwrap_or_default();
        match q.as_str() {
            "ABK" | "BK" => {
                d.common.diagnoses.insert(0, code.clone());
                d.principal_poa = poa;
            }
            "ABF" | "BF" => {
                d.common.diagnoses.push(code.clone());
                d.poa.push(poa);
            }
            "ABJ" | "BJ" => d.admitting = Some(code.clone()),
            "APR" | "PR" => d.reasons.push(code.clone()),
            "BBR" | "BBQ" => {
                let date = parts
                    .get(3)
                    .and_then(|t| NaiveDate::parse_from_str(t, "%Y%m%d").ok());
                match date {
                    Some(date) if q == "BBR" => d.procedures.insert(
                        0,
                        IcdProcedure {
                            code: code.clone(),
                            date,
                        },
                    ),
                    Some(date) => d.procedures.push(IcdProcedure {
                        code: code.clone(),
                        date,
                    }),
                    None => p.push(
                        seg,
                        n + 1,
                        ErrorKind::InvalidDate {
                            element: "HI-04",
                            value: parts.get(3).cloned().unwrap_or_default(),
                        },
                    ),
                }
            }
            "DR" => d.drg = Some(code.clone()),
            "BH" => match parts.get(3).and_then(|t| ccyymmdd(t)) {
                Some(date) => d.occurrences.push(Occurrence {
                    code: code.clone(),
                    date,
                }),
                None => p.push(seg, n + 1, bad_hi_date(&parts)),
            },
            "BI" => {
                let range = parts
                    .get(3)
                    .and_then(|r| r.split_once('-'))
                    .and_then(|(a, b)| Some((ccyymmdd(a)?, ccyymmdd(b)?)));
                match range {
                    Some((from, to)) => d.occurrence_spans.push(OccurrenceSpan {
                        code: code.clone(),
                        from,
                        to,
                    }),
                    None => p.push(seg, n + 1, bad_hi_date(&parts)),
                }
            }
            "BG" => d.condition_codes.push(code.clone()),
            "BE" => {
                let amount = parts
                    .get(4)
                    .and_then(|a| crate::decimal::parse_decimal(a.as_bytes()));
                match amount {
                    Some(a) => d.value_codes.push((code.clone(), a)),
                    None => p.push(
                        seg,
                        n + 1,
                        ErrorKind::InvalidDecimal {
                            element: "HI-05",
                            value: parts.get(4).cloned().unwrap_or_default(),
                        },
                    ),
                }
            }
            _ => {}
        }
    }
}

fn ccyymmdd(t: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(t, "%Y%m%d").ok()
}

fn bad_hi_date(parts: &[String]) -> ErrorKind {
    ErrorKind::InvalidDate {
        element: "HI-04",
        value: parts.get(3).cloned().unwrap_or_default(),
    }
}

impl Draft<'_> {
    fn parties(&self, p: &mut Problems) -> Option<(BillingProvider, Subscriber, Payer)> {
        let b = self.parties.billing.clone();
        let s = self.parties.subscriber.clone();
        let y = self.parties.payer.clone();
        if b.is_none() {
            p.missing_segment(Some(&self.clm), "HL*20 billing provider");
        }
        if s.is_none() {
            p.missing_segment(Some(&self.clm), "SBR subscriber");
        }
        if y.is_none() {
            p.missing_segment(Some(&self.clm), "NM1*PR payer");
        }
        Some((b?, s?, y?))
    }

    pub(super) fn into_professional(self, p: &mut Problems) -> Option<ProfessionalClaim> {
        if self.broken {
            return None;
        }
        if self.undated_lines > 0 {
            p.missing_segment(Some(&self.clm), "DTP*472 service date");
            return None;
        }
        let (billing_provider, subscriber, payer) = self.parties(p)?;
        Some(ProfessionalClaim {
            billing_provider,
            subscriber,
            patient: self.parties.patient,
            payer,
            claim: self.common,
            place_of_service: self.facility_code,
            provider_signature: self.signature,
            patient_paid: self.patient_paid,
            referring_provider: self.referring,
            rendering_provider: self.rendering,
            service_facility: self.facility,
            accident: self.accident,
            attachments: self.attachments,
            note: self.note,
            ambulance_transport: self.transport,
            ambulance_pickup: self.pickup,
            ambulance_dropoff: self.dropoff,
            lines: self.plines,
        })
    }

    pub(super) fn into_institutional(self, p: &mut Problems) -> Option<InstitutionalClaim> {
        if self.broken {
            return None;
        }
        let Some(statement_period) = self.statement_period else {
            p.missing_segment(Some(&self.clm), "DTP*434 statement dates");
            return None;
        };
        let mut poa = vec![self.principal_poa.clone()];
        poa.extend(self.poa.iter().cloned());
        if poa.iter().all(String::is_empty) {
            poa.clear();
        }
        let (billing_provider, subscriber, payer) = self.parties(p)?;
        let (admission_type, admission_source, patient_status) = self.cl1.unwrap_or_default();
        Some(InstitutionalClaim {
            billing_provider,
            subscriber,
            patient: self.parties.patient,
            payer,
            claim: self.common,
            facility_type: self.facility_code,
            statement_from: statement_period.from,
            // A one-day statement written as D8 (not the TR3's RD8) ends the day it starts.
            statement_to: statement_period.to.unwrap_or(statement_period.from),
            present_on_admission: poa,
            admitting_diagnosis: self.admitting,
            reasons_for_visit: self.reasons,
            procedures: self.procedures,
            admission_date: self.admission_date,
            admission_type,
            admission_source,
            patient_status,
            drg: self.drg,
            occurrence_spans: self.occurrence_spans,
            occurrences: self.occurrences,
            condition_codes: self.condition_codes,
            value_codes: self.value_codes,
            attending_provider: self.attending,
            operating_physician: self.operating,
            other_operating_physician: self.other_operating,
            lines: self.ilines,
        })
    }
}
